//! Parameter sets: validation against the 128-bit security table, presets, precomputed NTT plans
//! and slot maps, noise accounting for flooding and the return level, and the fingerprint.

use std::collections::HashMap;
use std::sync::Arc;

use bunet_kernels::ntt::Plan;
use bunet_kernels::primes::{inv_mod_prime, is_prime, primes_congruent_one};
use bunet_kernels::rns::ScaleRound;
use bunet_kernels::{Modulus, modarith::MAX_MODULUS_BITS};

use super::error::{PaheError, PahePrimeRole, ParamError};

/// Largest number of RNS primes in the ciphertext modulus.
pub const MAX_PRIMES: usize = 16;
/// Parameter `η` of the centred binomial error distribution (`σ = sqrt(η/2) ≈ 3.24`).
pub const CBD_ETA: u64 = 21;
/// Input channels of the worst HomConv the flooding and return level are sized for (the seed's
/// UNet bottleneck: 256 channels).
pub const HOMCONV_MAX_CHANNELS: u64 = 256;
/// Key switches (rotations) the flooding bound allows for on top of the worst HomConv.
pub const ROTATION_ALLOWANCE: u64 = 16;
/// Statistical security of noise flooding, in bits: the statistical distance between what the
/// server returns over a whole volume and a simulation without the weights is at most `2^-40`.
pub const STATISTICAL_SECURITY_BITS: u32 = 40;
/// `log2` of the number of noisy coefficients the server returns over one 512³ volume, bounded
/// from above for both linear backends (the composition of the flooding argument).
///
/// The DFT HomConv returns whole ciphertexts: a 512×512 slice returns at most about 15 GB of
/// HomConv and upsampling traffic, i.e. `≤ 2^31.2` coefficients of ≥ 50 bits, so `≤ 2^40.2`
/// per 512-slice volume; the coefficient-encoded HomConv returns one noisy coefficient per
/// output, `≈ 2^34` per volume (16 billion activations). `2^44` covers both with a factor
/// 16 to spare. The flood's distance grows with the square root of the count (Hellinger
/// composition), so this costs `44/2` bits of flood ([`FLOOD_MARGIN_BITS`]).
pub const VOLUME_RETURNED_COEFFS_LOG2: u32 = 44;
/// Bits between the noise bound `B` and the flood's scale `2^f` ([`Params::flood_bits`]):
/// `⌈40 + 44/2 + log2(√(2√3·ln(2 + √3))/2)⌉ = ⌈62.095⌉`, from the Hellinger composition of
/// the smooth flood over `2^`[`VOLUME_RETURNED_COEFFS_LOG2`] coefficients at statistical
/// distance `2^-`[`STATISTICAL_SECURITY_BITS`] (derivation at `flood_exponent`).
pub const FLOOD_MARGIN_BITS: u32 = 63;
/// Worst-case noise budget, in bits, that a returned ciphertext keeps after the worst HomConv,
/// flooding and modulus switching to [`Params::return_level`].
pub const RETURN_MARGIN_BITS: i32 = 2;

const SECURITY_TABLE: [(usize, u32); 6] = [
    (1024, 27),
    (2048, 54),
    (4096, 109),
    (8192, 218),
    (16384, 438),
    (32768, 881),
];
const SECURE_N_MIN: usize = 4096;
const SECURE_N_MAX: usize = 32768;
const TEST_N_MIN: usize = 8;

/// The largest `log2 q` with 128-bit classical security for ring degree `n` and a ternary secret
/// (HomomorphicEncryption.org standard; SEAL and OpenFHE agree), or `None` outside the table.
pub fn max_log2_q_128(n: usize) -> Option<u32> {
    SECURITY_TABLE
        .iter()
        .find(|&&(d, _)| d == n)
        .map(|&(_, bits)| bits)
}

/// Constants of one level `ℓ` (modulus `Q_ℓ = q_1 ⋯ q_ℓ`).
#[derive(Debug)]
pub(crate) struct Level {
    /// `Δ_ℓ = floor(Q_ℓ / p) mod q_i`, `i < ℓ`.
    pub(crate) delta: Vec<u64>,
    /// Decryption's scale-and-round `round(p·X/Q_ℓ) mod p` from the residues of `X`
    /// (Halevi–Polyakov–Shoup, in the kernels).
    pub(crate) scale_round: ScaleRound,
    /// `r = Q_ℓ mod p`, so that `Q_ℓ/p = Δ_ℓ + r/p` and `round(Q_ℓ·m/p) = Δ_ℓ·m + round(r·m/p)`
    /// (the precise BFV scaling of encryption and of the coefficient-encoded HSS mask).
    pub(crate) r_mod_p: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) name: &'static str,
    pub(crate) n: usize,
    pub(crate) p: Modulus,
    pub(crate) p_plan: Plan,
    pub(crate) q: Vec<Modulus>,
    pub(crate) plans: Vec<Plan>,
    pub(crate) secure: bool,
    pub(crate) log2_q: f64,
    pub(crate) flood_bits: u32,
    pub(crate) return_level: usize,
    pub(crate) fingerprint: u64,
    /// `t[i]`: the NTT output at position `i` is the evaluation at `ζ^t[i]` (`ζ` = the root at
    /// position 0). The same for every modulus (checked at construction).
    pub(crate) ntt_exp: Vec<u32>,
    /// Inverse of `ntt_exp`, indexed by the odd exponent `t < 2N` (`u32::MAX` for even `t`).
    pub(crate) ntt_pos: Vec<u32>,
    /// Slot `s` lives at NTT position `slot_pos[s]` of the plaintext transform mod `p`.
    pub(crate) slot_pos: Vec<u32>,
    pub(crate) levels: Vec<Level>,
}

/// A validated PAHE parameter set with its precomputed tables. Cloning is cheap (shared).
///
/// # Security
/// Sets from [`Params::new`] and the presets satisfy the 128-bit table (ternary secret, error
/// `σ ≈ 3.24`); [`Params::insecure_for_tests`] skips that check and says so in its name.
#[derive(Clone)]
pub struct Params {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("name", &self.inner.name)
            .field("n", &self.inner.n)
            .field("p", &self.p())
            .field("q", &self.moduli())
            .field("log2_q", &self.inner.log2_q)
            .field("secure", &self.inner.secure)
            .field("flood_bits", &self.inner.flood_bits)
            .field("return_level", &self.inner.return_level)
            .finish()
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.fingerprint == other.inner.fingerprint
    }
}

impl Eq for Params {}

impl Params {
    /// The `q32` preset: `N = 8192`, `p` the largest prime below `2^32` with `p ≡ 1 mod 2N`
    /// (`4294475777`), `q` four primes of 50, 41, 41 and 41 bits (`log2 q ≈ 173 ≤ 218`). Sized
    /// for the seed's q32 configuration (12 integer + 4 fractional bits): the DFT HomConv's
    /// worst case (256 channels of full-range plaintext products, 16 key switches) with its
    /// flood at the top level and the return at the 50-bit prime (invariant noise `≤ 2^-4`
    /// before the switch); the coefficient HomConv uploads at the 132-bit prefix of three
    /// primes (it carries the flood of layers with an ℓ1 count up to `2^11`, which covers the
    /// UNet's 3×3 layers up to 64 channels packed two per upload) and returns at the 50-bit
    /// prime. The primes below 50 bits follow from the smooth flood ([`FLOOD_MARGIN_BITS`]):
    /// with the uniform flood's 21 more bits the set was four 50-bit primes.
    pub fn q32() -> Self {
        Self::preset("q32", 8192, 32, &[50, 41, 41, 41])
    }

    /// The `q24` preset: `N = 8192`, `p` the largest prime below `2^24` with `p ≡ 1 mod 2N`, `q`
    /// four primes of 50, 37, 37 and 41 bits (`log2 q ≈ 165`). Sized for the seed's q24
    /// configuration (8 + 4 bits) the same way as [`Params::q32`] (coefficient uploads at the
    /// 124-bit prefix of three primes).
    pub fn q24() -> Self {
        Self::preset("q24", 8192, 24, &[50, 37, 37, 41])
    }

    /// `q_i` the largest prime below `2^q_bits[i]` with `q_i ≡ 1 mod 2N` not yet taken (and not
    /// `p`).
    fn preset(name: &'static str, n: usize, p_bits: u32, q_bits: &[u32]) -> Self {
        let two_n = 2 * n as u64;
        let p = primes_congruent_one(p_bits, two_n, 1)[0];
        let mut q: Vec<u64> = Vec::with_capacity(q_bits.len());
        for &bits in q_bits {
            let taken = q.iter().filter(|&&x| x < (1 << bits)).count();
            let next = primes_congruent_one(bits, two_n, taken + 2)
                .into_iter()
                .find(|c| *c != p && !q.contains(c))
                .expect("enough NTT primes of each size");
            q.push(next);
        }
        Self::build(name, n, p, &q, true).expect("presets are valid and secure")
    }

    /// A parameter set with ring degree `n`, plaintext prime `p` and ciphertext RNS primes `q`
    /// (the first prime is the one a ciphertext keeps when switched down to level 1).
    ///
    /// # Errors
    /// [`ParamError::Degree`] unless `n` is a power of two in `4096..=32768`;
    /// [`ParamError::NotNttPrime`] unless `p` and every `q_i` are primes `≡ 1 mod 2n` below
    /// `2^62`; [`ParamError::PrimeCount`] for no, too many or repeated primes;
    /// [`ParamError::Insecure`] if `log2 q` exceeds the 128-bit table;
    /// [`ParamError::NoiseBudget`] if no level keeps the worst HomConv decryptable.
    pub fn new(n: usize, p: u64, q: &[u64]) -> Result<Self, PaheError> {
        Self::build("custom", n, p, q, true)
    }

    /// A parameter set **without the security check**, for fast tests only (any power-of-two
    /// `n ≥ 8`). The noise-budget requirement is also waived: the flood is capped to what the
    /// modulus carries, and if no level survives the worst HomConv, the return level is the
    /// top level.
    ///
    /// # Errors
    /// As [`Params::new`] except [`ParamError::Insecure`] and [`ParamError::NoiseBudget`].
    ///
    /// # Security
    /// None: these sets are for tests.
    pub fn insecure_for_tests(n: usize, p: u64, q: &[u64]) -> Result<Self, PaheError> {
        Self::build("insecure-for-tests", n, p, q, false)
    }

    fn build(
        name: &'static str,
        n: usize,
        p: u64,
        q: &[u64],
        secure: bool,
    ) -> Result<Self, PaheError> {
        let log2_q = check_moduli(n, p, q, secure)?;
        let (flood_bits, return_level) = noise_plan(n, p, q, log2_q, secure)?;

        let p_mod = Modulus::new(p)?;
        let p_plan = Plan::new(n, p)?;
        let q_mod = q
            .iter()
            .map(|&qi| Modulus::new(qi))
            .collect::<Result<Vec<_>, _>>()?;
        let plans = q
            .iter()
            .map(|&qi| Plan::new(n, qi))
            .collect::<Result<Vec<_>, _>>()?;
        let SlotOrder {
            ntt_exp,
            ntt_pos,
            slot_pos,
        } = SlotOrder::of(&p_plan, &plans);
        let levels = (1..=q.len())
            .map(|l| level_constants(&q_mod[..l], &p_mod))
            .collect();
        let fingerprint = fingerprint(n, p, q, flood_bits, return_level, secure);
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                n,
                p: p_mod,
                p_plan,
                q: q_mod,
                plans,
                secure,
                log2_q,
                flood_bits,
                return_level,
                fingerprint,
                ntt_exp,
                ntt_pos,
                slot_pos,
                levels,
            }),
        })
    }

    /// The preset or construction name (`q32`, `q24`, `custom`, `insecure-for-tests`).
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Ring degree `N`, which is also the number of plaintext slots.
    pub fn n(&self) -> usize {
        self.inner.n
    }

    /// Number of plaintext slots (`N`): two rows of `N/2`.
    pub fn slots(&self) -> usize {
        self.inner.n
    }

    /// The plaintext modulus `p`.
    pub fn p(&self) -> u64 {
        self.inner.p.q()
    }

    /// The RNS primes `q_1 … q_k` of the ciphertext modulus.
    pub fn moduli(&self) -> Vec<u64> {
        self.inner.q.iter().map(Modulus::q).collect()
    }

    /// The top level `k` (number of RNS primes).
    pub fn max_level(&self) -> usize {
        self.inner.q.len()
    }

    /// `log2 q` of the full ciphertext modulus.
    pub fn log2_q(&self) -> f64 {
        self.inner.log2_q
    }

    /// `log2 Q_ℓ` at level `ℓ` (`1 ≤ ℓ ≤ k`).
    ///
    /// # Panics
    /// If `level` is out of range.
    pub fn log2_q_at(&self, level: usize) -> f64 {
        self.inner.q[..level]
            .iter()
            .map(|m| (m.q() as f64).log2())
            .sum()
    }

    /// Whether the set passed the 128-bit security check.
    pub fn is_secure(&self) -> bool {
        self.inner.secure
    }

    /// `f`: the flooding noise added before a ciphertext leaves the server (DFT HomConv) is
    /// a centred sum of three uniforms of `[0, 2^f)` (`|flood| ≤ 3·2^(f−1)`), with
    /// `2^f ≥ 2^`[`FLOOD_MARGIN_BITS`]` · B` for `B` the worst-case noise of a HomConv over
    /// [`HOMCONV_MAX_CHANNELS`] channels of full-range plaintext products plus
    /// [`ROTATION_ALLOWANCE`] key switches: statistical distance `≤ 2^-40` over everything
    /// returned for a 512³ volume ([`VOLUME_RETURNED_COEFFS_LOG2`]; derivation in the docs of
    /// the private `flood_exponent`: Hellinger composition of the smooth flood).
    pub fn flood_bits(&self) -> u32 {
        self.inner.flood_bits
    }

    /// The smallest level whose worst-case noise after the worst HomConv, flooding and modulus
    /// switching keeps at least [`RETURN_MARGIN_BITS`] of budget: returned ciphertexts are
    /// switched down to it.
    pub fn return_level(&self) -> usize {
        self.inner.return_level
    }

    /// A 64-bit fingerprint of every parameter (FNV-1a over a canonical encoding of name-free
    /// values: version, `N`, `p`, `q_i`, `η`, flooding and return level, security flag), for
    /// the handshake to detect a mismatch. Not a cryptographic commitment.
    pub fn fingerprint(&self) -> u64 {
        self.inner.fingerprint
    }

    pub(crate) fn level(&self, level: usize) -> &Level {
        &self.inner.levels[level - 1]
    }
}

/// The flooding exponent and the return level for a parameter set (see [`Params::flood_bits`]).
fn noise_plan(
    n: usize,
    p: u64,
    q: &[u64],
    log2_q: f64,
    secure: bool,
) -> Result<(u32, usize), ParamError> {
    let nf = n as f64;
    let pf = p as f64;
    let eta = CBD_ETA as f64;
    let q_max = q.iter().copied().max().unwrap_or(2) as f64;
    // Absolute noise e in c0 + c1·s = Q·m/p + e: fresh |e| ≤ η + 1/2 (precise scaling
    // round(Q·m/p)); ⊙ a centred plaintext of ℓ1 norm ≤ N·p/2 multiplies it by that norm (the
    // multiple of Q from m·w ≥ p vanishes mod Q); C channels add up; the mask's Δ·M and
    // own-share plaintext additions add ≤ 2p; each key switch adds ≤ k·N·(q_max/2)·η.
    let b = HOMCONV_MAX_CHANNELS as f64 * nf * (pf / 2.0) * (eta + 0.5)
        + 2.0 * pf
        + ROTATION_ALLOWANCE as f64 * q.len() as f64 * nf * (q_max / 2.0) * eta;
    let mut flood_bits = flood_exponent(b);
    if !secure {
        // Small test rings cannot carry a volume-sized flood: cap it to what the modulus
        // holds (the sets say "insecure" in their name; the secure presets never get here).
        let cap = (log2_q - pf.log2()) as i64 - 2 - RETURN_MARGIN_BITS as i64;
        flood_bits = flood_bits.min(cap.max(1) as u32);
    }
    // Invariant noise ν = p·e/Q after flooding, at the top level.
    // The flood is at most 3·2^(f−1); with B ≤ 2^(f−63) and the zero encryption's own
    // noise (≤ 2Nη + η ≈ 2^18.4 at the presets) the total stays below 2^(f+1).
    let log2_nu_top = pf.log2() + flood_bits as f64 + 1.0 - log2_q;
    let needed = -(1 + RETURN_MARGIN_BITS);
    // Switching down to Q_ℓ adds at most p·(3/2)·(1 + N)/Q_ℓ (rounding errors ≤ 3/2 with the
    // floating-point base conversion, ternary s).
    let mut log2_q_l = 0.0;
    for (l, &ql) in q.iter().enumerate() {
        log2_q_l += (ql as f64).log2();
        let nu = 2f64.powf(log2_nu_top) + 1.5 * pf * (1.0 + nf) / 2f64.powf(log2_q_l);
        if nu.log2() <= needed as f64 {
            return Ok((flood_bits, l + 1));
        }
    }
    if secure {
        Err(ParamError::NoiseBudget {
            log2_noise: log2_nu_top,
            needed,
        })
    } else {
        Ok((flood_bits, q.len()))
    }
}

/// `f = ⌈log2 B⌉ + `[`FLOOD_MARGIN_BITS`] (63) for noise `|e| ≤ B`: the flood
/// ([`super::Evaluator::rerandomize_and_flood`]) is `⌊V⌋` centred, `V` a sum of three
/// independent continuous uniforms on `[0, U)`, `U = 2^f`.
///
/// **Why 63 bits suffice for a whole volume** (instead of `40 + 44` with a uniform flood and
/// a union bound). Let `g` be the density of `V` (Irwin–Hall of order 3 scaled by `U`), `μ`
/// the weight-dependent noise of one returned coefficient (an integer, `|μ| ≤ B`).
/// 1. *Discretisation:* `⌊V + μ⌋ = ⌊V⌋ + μ`, so the sampled flood shifted by `μ` is a function
///    of `V + μ`; by data processing, every distance below of the continuous pair bounds the
///    discrete one.
/// 2. *One coefficient:* `√g` is absolutely continuous, so `√g(x) − √g(x − μ) =
///    ∫_0^μ (√g)'(x − t) dt` and by Cauchy–Schwarz `∫ (√g(x) − √g(x − μ))² dx ≤ μ² ∫ (√g)'² =
///    μ²·I/4`, with the Fisher information `I = ∫ g'²/g = 2√3·ln(2 + √3)/U² ≈ 4.562/U²`
///    (pieces: `2/U²` on each outer third, `2√3·ln(2 + √3) − 4` in the middle). So the squared
///    Hellinger distance `h² = 1 − BC` (`BC = ∫ √(g·g_μ)`) is at most `μ²·I/8`.
/// 3. *The volume:* the Bhattacharyya coefficient of a sequence of returned coefficients,
///    each flooded independently, is at least the product of the per-coefficient ones, also
///    when the client chooses later inputs after seeing earlier answers (`BC(P_XY, Q_XY) ≥
///    BC(P_X, Q_X) · inf_x BC(P_{Y|x}, Q_{Y|x})`); hence `1 − BC_total ≤ Σ h² ≤ K·B²·I/8` for
///    `K = 2^`[`VOLUME_RETURNED_COEFFS_LOG2`] coefficients, and the statistical distance is
///    `≤ √(1 − BC_total²) ≤ √(2(1 − BC_total)) ≤ (B/2)·√(K·I) ≈ 1.068·B·2^22/U`.
/// 4. With `U ≥ 2^(⌈log2 B⌉ + 63)` that is `≤ 1.068·2^-41 < 2^-40`
///    ([`STATISTICAL_SECURITY_BITS`]). The `c1` half and the rest of `c0` are a fresh RLWE
///    sample after re-randomisation (computational, as before).
///
/// Against the old uniform flood (`2^(⌈log2 B⌉ + 84)`) the largest flood,
/// `3·2^(f−1) ≈ 2^(⌈log2 B⌉ + 63.6)`, is 20.4 bits smaller, and its support is bounded, so
/// decryption stays correct in the worst case (no tail to cut).
pub(crate) fn flood_exponent(b: f64) -> u32 {
    b.log2().ceil() as u32 + FLOOD_MARGIN_BITS
}

/// For each output position of `plan.forward`, the exponent `t` with value `ζ^t`, where `ζ` is
/// the value at position 0, found by transforming the monomial `X`.
fn ntt_exponents(plan: &Plan) -> Vec<u32> {
    let n = plan.n();
    let m = plan.modulus();
    let mut probe = vec![0u64; n];
    probe[1] = 1;
    plan.forward(&mut probe);
    let zeta = probe[0];
    let mut table = HashMap::with_capacity(2 * n);
    let mut x = 1u64;
    for t in 0..2 * n as u32 {
        table.insert(x, t);
        x = m.mul(x, zeta);
    }
    probe
        .iter()
        .map(|v| {
            *table
                .get(v)
                .expect("NTT outputs of X are 2N-th roots of unity")
        })
        .collect()
}

fn level_constants(q: &[Modulus], p: &Modulus) -> Level {
    let pv = p.q();
    // r = Q_ℓ mod p.
    let r = q.iter().fold(1u64, |acc, m| p.mul(acc, p.reduce(m.q())));
    let delta = q
        .iter()
        .map(|m| {
            // Δ = (Q − r)/p ≡ −r · p^-1 (mod q_i).
            let p_inv = inv_mod_prime(m.reduce(pv), m.q()).expect("p ≠ q_i");
            m.neg(m.mul(m.reduce(r), p_inv))
        })
        .collect();
    let moduli: Vec<u64> = q.iter().map(Modulus::q).collect();
    let scale_round = ScaleRound::new(&moduli, pv).expect("validated moduli");
    Level {
        delta,
        scale_round,
        r_mod_p: r,
    }
}

fn fingerprint(n: usize, p: u64, q: &[u64], flood: u32, ret: usize, secure: bool) -> u64 {
    let mut words = vec![
        0x6275_6e65_7401, // "bunet" + format version 1
        n as u64,
        p,
        q.len() as u64,
    ];
    words.extend_from_slice(q);
    words.extend_from_slice(&[CBD_ETA, flood as u64, ret as u64, secure as u64]);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        for b in w.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Checks a parameter set's degree and primes (NTT-friendly, distinct, at most
/// [`MAX_PRIMES`]) and, when `secure`, its total modulus against the 128-bit bound; returns
/// `log2 q`.
fn check_moduli(n: usize, p: u64, q: &[u64], secure: bool) -> Result<f64, PaheError> {
    let (n_min, n_max) = if secure {
        (SECURE_N_MIN, SECURE_N_MAX)
    } else {
        (TEST_N_MIN, SECURE_N_MAX)
    };
    if !n.is_power_of_two() || !(n_min..=n_max).contains(&n) {
        return Err(ParamError::Degree {
            n,
            min: n_min,
            max: n_max,
        }
        .into());
    }
    let two_n = 2 * n as u64;
    let ntt_prime = |v: u64| v < (1 << MAX_MODULUS_BITS) && is_prime(v) && v % two_n == 1;
    if !ntt_prime(p) {
        return Err(ParamError::NotNttPrime {
            role: PahePrimeRole::Plaintext,
            value: p,
            two_n: 2 * n,
        }
        .into());
    }
    if q.is_empty() || q.len() > MAX_PRIMES {
        return Err(ParamError::PrimeCount {
            found: q.len(),
            max: MAX_PRIMES,
        }
        .into());
    }
    for (i, &qi) in q.iter().enumerate() {
        if !ntt_prime(qi) {
            return Err(ParamError::NotNttPrime {
                role: PahePrimeRole::Ciphertext,
                value: qi,
                two_n: 2 * n,
            }
            .into());
        }
        if qi == p || q[..i].contains(&qi) {
            return Err(ParamError::PrimeCount {
                found: q.len(),
                max: MAX_PRIMES,
            }
            .into());
        }
    }
    let log2_q: f64 = q.iter().map(|&qi| (qi as f64).log2()).sum();
    if secure {
        let max = max_log2_q_128(n).unwrap_or(0);
        if log2_q > max as f64 {
            return Err(ParamError::Insecure {
                n,
                log2_q,
                max_log2_q: max,
            }
            .into());
        }
    }
    Ok(log2_q)
}

/// Where the NTT puts each evaluation point, shared by every prime of one degree.
struct SlotOrder {
    /// [`Inner::ntt_exp`].
    ntt_exp: Vec<u32>,
    /// [`Inner::ntt_pos`].
    ntt_pos: Vec<u32>,
    /// [`Inner::slot_pos`]: slots `j < N/2` at `ζ^(3^j)`, slots `N/2 + j` at `ζ^(−3^j)`.
    slot_pos: Vec<u32>,
}

impl SlotOrder {
    fn of(p_plan: &Plan, plans: &[Plan]) -> Self {
        let n = p_plan.n();
        let two_n = 2 * n as u64;
        let ntt_exp = ntt_exponents(p_plan);
        for plan in plans {
            // The evaluation order is a property of the transform's structure, not of the
            // prime; the automorphisms rely on it being shared.
            assert_eq!(
                ntt_exponents(plan),
                ntt_exp,
                "NTT plans of one degree must share their output order"
            );
        }
        let mut ntt_pos = vec![u32::MAX; 2 * n];
        for (i, &t) in ntt_exp.iter().enumerate() {
            ntt_pos[t as usize] = i as u32;
        }
        let half = n / 2;
        let mut slot_pos = vec![0u32; n];
        let mut g = 1u64;
        for j in 0..half {
            slot_pos[j] = ntt_pos[g as usize];
            slot_pos[half + j] = ntt_pos[(two_n - g) as usize];
            g = g * 3 % two_n;
        }
        Self {
            ntt_exp,
            ntt_pos,
            slot_pos,
        }
    }
}
