/// Which modulus of a parameter set a [`ParamError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PahePrimeRole {
    /// The plaintext modulus `p`.
    Plaintext,
    /// An RNS prime of the ciphertext modulus `q`.
    Ciphertext,
}

/// Why a parameter set was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The ring degree is not a supported power of two.
    #[error("ring degree {n} is not supported: expected a power of two in [{min}, {max}]")]
    Degree {
        /// The rejected degree.
        n: usize,
        /// Smallest accepted degree.
        min: usize,
        /// Largest accepted degree.
        max: usize,
    },
    /// A modulus is not a prime `≡ 1 (mod 2N)` below `2^62`.
    #[error("{role:?} modulus {value} is not a prime below 2^62 with value = 1 mod {two_n}")]
    NotNttPrime {
        /// Plaintext or ciphertext modulus.
        role: PahePrimeRole,
        /// The rejected modulus.
        value: u64,
        /// `2N`.
        two_n: usize,
    },
    /// The ciphertext modulus has no primes, too many, or a repeated one.
    #[error("ciphertext modulus must be 1..={max} distinct primes other than p; found {found}")]
    PrimeCount {
        /// Number of primes given (or the duplicate's position).
        found: usize,
        /// Largest accepted count.
        max: usize,
    },
    /// The parameter set is below 128-bit security.
    #[error(
        "insecure parameters: log2 q = {log2_q:.1} exceeds the 128-bit maximum {max_log2_q} for N = {n} (HomomorphicEncryption.org table)"
    )]
    Insecure {
        /// Ring degree.
        n: usize,
        /// `log2` of the ciphertext modulus.
        log2_q: f64,
        /// The largest secure `log2 q` for this `N` (0 if `N` is not in the table).
        max_log2_q: u32,
    },
    /// The noise budget does not survive the worst HomConv plus flooding, at any level.
    #[error(
        "noise budget too small: the worst HomConv with flooding leaves log2 |noise| = {log2_noise:.1} at the top level (need below {needed})"
    )]
    NoiseBudget {
        /// `log2` of the predicted worst-case invariant noise.
        log2_noise: f64,
        /// The required bound on that `log2`.
        needed: i32,
    },
}

/// Errors of the PAHE scheme.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaheError {
    /// The parameter set was refused.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A kernel refused a modulus (cannot happen for a validated parameter set).
    #[error(transparent)]
    Kernel(#[from] bunet_kernels::Error),
    /// Two operands are at different levels, or a level is out of range.
    #[error("level mismatch: expected {expected}, found {found}")]
    Level {
        /// The level the operation needs.
        expected: usize,
        /// The level given.
        found: usize,
    },
    /// A slot vector has the wrong length or a value not below `p`.
    #[error("plaintext slots: expected {expected} values below {p}, found length {len}")]
    Slots {
        /// `N`.
        expected: usize,
        /// The plaintext modulus.
        p: u64,
        /// The length given.
        len: usize,
    },
    /// A rotation needs a Galois key that was not generated.
    #[error("no galois key for element {g}")]
    MissingGaloisKey {
        /// The Galois element `g` of `X ↦ X^g`.
        g: u64,
    },
    /// An object belongs to another parameter set.
    #[error("parameter fingerprint mismatch: expected {expected:#018x}, found {found:#018x}")]
    ParamsMismatch {
        /// Our fingerprint.
        expected: u64,
        /// The object's.
        found: u64,
    },
}
