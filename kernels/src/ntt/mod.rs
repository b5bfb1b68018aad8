//! Number-theoretic transforms over a word-size prime `q < 2^62`.
//!
//! * [`Plan`]: the negacyclic NTT of length `N` (evaluation of a polynomial of
//!   `Z_q[X]/(X^N + 1)` at the primitive `2N`-th roots of unity), used for RLWE arithmetic.
//! * [`CyclicPlan`]: the cyclic NTT of length `n` (the integer DFT over `Z_p` that HomConv uses to
//!   turn convolutions into Hadamard products).
//!
//! **Order.** `forward` takes coefficients in natural order and leaves the evaluations in
//! bit-reversed order; `inverse` takes bit-reversed evaluations and returns natural-order
//! coefficients, already scaled by `1/N`. Products of two forward transforms can therefore be
//! taken pointwise without any permutation, and `inverse(forward(a)) = a`.
//! All inputs and outputs are reduced (`< q`).
//!
//! Butterflies are Harvey's lazy butterflies with Shoup multiplication (D. Harvey, "Faster
//! arithmetic for number-theoretic transforms", 2014): intermediate values stay below `4q`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
#[cfg(test)]
mod tests;

use crate::primes::{inv_mod_prime, primitive_root_of_unity};
use crate::{Backend, Error, Modulus};

/// Smallest transform length a plan accepts (small lengths serve differential tests).
pub const MIN_LEN: usize = 2;
/// Largest transform length a plan accepts.
pub const MAX_LEN: usize = 1 << 16;

/// A twiddle factor with its Shoup companion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Twiddle {
    pub(crate) w: u64,
    pub(crate) w_shoup: u64,
}

/// One 64-byte cache line of `u64`s (the alignment of a 512-bit vector).
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u64; 8]);

/// A buffer of `u64` aligned to 64 bytes, so that 512-bit loads and stores never split a cache
/// line.
///
/// Transforms accept any `&mut [u64]`; on this buffer they run faster (measured at N = 8192 with
/// the AVX-512 backend: 12.1 µs instead of 14.9 µs for a 50-bit prime, see
/// `docs/PERFORMANCE.md`), so long-lived polynomials should live in one. Plans keep their own
/// twiddle tables in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlignedVec {
    lines: Vec<Line>,
    len: usize,
}

impl PartialEq for Line {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Line {}

impl AlignedVec {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        Self {
            lines: vec![Line::default(); len.div_ceil(8)],
            len,
        }
    }

    /// A copy of `s`.
    pub fn from_slice(s: &[u64]) -> Self {
        let mut v = Self::zeroed(s.len());
        v.copy_from_slice(s);
        v
    }
}

impl core::ops::Deref for AlignedVec {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        &bytemuck::cast_slice::<Line, u64>(&self.lines)[..self.len]
    }
}

impl core::ops::DerefMut for AlignedVec {
    fn deref_mut(&mut self) -> &mut [u64] {
        &mut bytemuck::cast_slice_mut::<Line, u64>(&mut self.lines)[..self.len]
    }
}

/// Twiddles laid out for a SIMD backend: structure of arrays, 64-byte aligned, companions of the
/// modulus's [`MulKind`](crate::modarith::MulKind). Empty for the scalar backend.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tables {
    /// Twiddles in the scalar table's order.
    pub(crate) w: AlignedVec,
    /// Their companions.
    pub(crate) ws: AlignedVec,
    /// Per-lane twiddles of the in-register stages (layout owned by the backend; the NEON
    /// backend needs none).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) lane_w: AlignedVec,
    /// Their companions.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) lane_ws: AlignedVec,
    /// `n^-1` and its companion.
    pub(crate) n_inv: (u64, u64),
    /// `w[1] * n^-1` and its companion (the last inverse stage fused with the scaling).
    pub(crate) last: (u64, u64),
}

impl Tables {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // `lanes`: x86 layouts
    fn new(m: &Modulus, t: &[Twiddle], n_inv: u64, lanes: bool) -> Self {
        // NEON has kernels only for `Shoup32`; its other moduli run the scalar transforms.
        let neon_scalar =
            m.backend() == Backend::Neon && m.kind() != crate::modarith::MulKind::Shoup32;
        if m.backend() == Backend::Scalar || neon_scalar {
            return Self::default();
        }
        let shift = m.kind().companion_shift();
        let companion = |w: u64| m.shoup(w) >> shift;
        let w: Vec<u64> = t.iter().map(|t| t.w).collect();
        let ws: Vec<u64> = t.iter().map(|t| t.w_shoup >> shift).collect();
        let (lane_w, lane_ws) = match m.backend() {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 if lanes && w.len() >= 16 => {
                (avx512::lane_twiddles(&w), avx512::lane_twiddles(&ws))
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 if lanes && w.len() >= 8 => {
                (avx2::lane_twiddles(&w), avx2::lane_twiddles(&ws))
            }
            _ => (Vec::new(), Vec::new()),
        };
        let last = m.mul(t.get(1).map_or(1, |t| t.w), n_inv);
        Self {
            w: AlignedVec::from_slice(&w),
            ws: AlignedVec::from_slice(&ws),
            lane_w: AlignedVec::from_slice(&lane_w),
            lane_ws: AlignedVec::from_slice(&lane_ws),
            n_inv: (n_inv, companion(n_inv)),
            last: (last, companion(last)),
        }
    }
}

/// The four transforms, for the dispatch.
#[derive(Debug, Clone, Copy)]
enum Op {
    NegacyclicForward,
    NegacyclicInverse,
    CyclicForward,
    CyclicInverse,
}

/// Runs `op` on the modulus's SIMD backend; `false` when the backend has no kernel for this
/// length (the caller then runs the scalar reference).
#[allow(unused_variables)]
fn simd(op: Op, a: &mut [u64], tw: &Tables, m: &Modulus) -> bool {
    match m.backend() {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 if a.len() >= 16 => {
            use crate::modarith::MulKind;
            macro_rules! run {
                ($kind:ident) => {
                    match op {
                        Op::NegacyclicForward => avx512::$kind::negacyclic_forward(a, tw, m.q()),
                        Op::NegacyclicInverse => avx512::$kind::negacyclic_inverse(a, tw, m.q()),
                        Op::CyclicForward => avx512::$kind::cyclic_forward(a, tw, m.q()),
                        Op::CyclicInverse => avx512::$kind::cyclic_inverse(a, tw, m.q()),
                    }
                };
            }
            // SAFETY: `Modulus::with_backend` refused the backend unless `is_available()` found
            // AVX-512 F/BW/DQ/VL on this CPU, and chose `Ifma52` only when `Backend::has_ifma()`.
            unsafe {
                match m.kind() {
                    MulKind::Ifma52 => run!(ifma),
                    MulKind::Shoup32 => run!(shoup32),
                    MulKind::Shoup64 => run!(shoup64),
                }
            }
            true
        }
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 if a.len() >= 8 => {
            use crate::modarith::MulKind;
            macro_rules! run {
                ($kind:ident) => {
                    match op {
                        Op::NegacyclicForward => avx2::$kind::negacyclic_forward(a, tw, m.q()),
                        Op::NegacyclicInverse => avx2::$kind::negacyclic_inverse(a, tw, m.q()),
                        Op::CyclicForward => avx2::$kind::cyclic_forward(a, tw, m.q()),
                        Op::CyclicInverse => avx2::$kind::cyclic_inverse(a, tw, m.q()),
                    }
                };
            }
            // SAFETY: `Modulus::with_backend` refused the backend unless `is_available()` found
            // AVX2 on this CPU.
            unsafe {
                match m.kind() {
                    MulKind::Shoup32 => run!(shoup32),
                    MulKind::Shoup64 | MulKind::Ifma52 => run!(shoup64),
                }
            }
            true
        }
        #[cfg(target_arch = "aarch64")]
        Backend::Neon if a.len() >= 4 && m.kind() == crate::modarith::MulKind::Shoup32 => {
            // SAFETY: `Modulus::with_backend` refused the backend unless `is_available()` found
            // NEON on this CPU; `Shoup32` is chosen only for `q < 2^32`, which these kernels need.
            unsafe {
                match op {
                    Op::NegacyclicForward => neon::negacyclic_forward(a, tw, m.q()),
                    Op::NegacyclicInverse => neon::negacyclic_inverse(a, tw, m.q()),
                    Op::CyclicForward => neon::cyclic_forward(a, tw, m.q()),
                    Op::CyclicInverse => neon::cyclic_inverse(a, tw, m.q()),
                }
            }
            true
        }
        _ => false,
    }
}

fn check_len(n: usize) -> Result<(), Error> {
    if n.is_power_of_two() && (MIN_LEN..=MAX_LEN).contains(&n) {
        Ok(())
    } else {
        Err(Error::LengthUnsupported {
            n,
            min: MIN_LEN,
            max: MAX_LEN,
        })
    }
}

fn bit_reverse(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

fn twiddle(m: &Modulus, w: u64) -> Twiddle {
    Twiddle {
        w,
        w_shoup: m.shoup(w),
    }
}

/// A precomputed negacyclic NTT of length `n` modulo a prime `q ≡ 1 (mod 2n)`, `q < 2^62`.
#[derive(Debug, Clone)]
pub struct Plan {
    modulus: Modulus,
    n: usize,
    /// `psi^bitrev(i)` for the forward transform (`psi` a primitive `2n`-th root).
    forward: Vec<Twiddle>,
    /// `psi^-bitrev(i)` for the inverse transform.
    inverse: Vec<Twiddle>,
    /// `n^-1 mod q`.
    n_inv: Twiddle,
    simd_forward: Tables,
    simd_inverse: Tables,
}

impl Plan {
    /// A plan for length `n` and prime `q` on the best backend of this CPU.
    ///
    /// # Errors
    /// [`Error::LengthUnsupported`] unless `n` is a power of two in `[MIN_LEN, MAX_LEN]`;
    /// [`Error::ModulusOutOfRange`] unless `q < 2^62`; [`Error::NotNttFriendly`] unless `q` is a
    /// prime with `q ≡ 1 (mod 2n)`.
    pub fn new(n: usize, q: u64) -> Result<Self, Error> {
        Self::with_backend(n, q, Backend::detect())
    }

    /// A plan that runs on `backend`.
    ///
    /// # Errors
    /// As [`Plan::new`], and [`Error::BackendUnavailable`] if the CPU lacks the backend.
    pub fn with_backend(n: usize, q: u64, backend: Backend) -> Result<Self, Error> {
        Self::with_modulus(n, Modulus::with_backend(q, backend)?)
    }

    /// A plan over a prepared modulus (its backend and multiplication kind).
    pub(crate) fn with_modulus(n: usize, modulus: Modulus) -> Result<Self, Error> {
        check_len(n)?;
        let q = modulus.q();
        let psi = primitive_root_of_unity(2 * n as u64, q).ok_or(Error::NotNttFriendly {
            q,
            n,
            order: 2 * n,
        })?;
        let psi_inv = inv_mod_prime(psi, q).expect("a root of unity is invertible");
        let bits = n.trailing_zeros();
        let mut forward = Vec::with_capacity(n);
        let mut inverse = Vec::with_capacity(n);
        for i in 0..n {
            let e = bit_reverse(i, bits) as u64;
            forward.push(twiddle(&modulus, modulus.pow(psi, e)));
            inverse.push(twiddle(&modulus, modulus.pow(psi_inv, e)));
        }
        let n_inv = twiddle(&modulus, inv_mod_prime(n as u64, q).expect("n < q"));
        Ok(Self {
            simd_forward: Tables::new(&modulus, &forward, n_inv.w, true),
            simd_inverse: Tables::new(&modulus, &inverse, n_inv.w, true),
            modulus,
            n,
            forward,
            inverse,
            n_inv,
        })
    }

    /// The transform length `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The modulus `q`, with its reduction constants.
    pub fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// The backend this plan runs on.
    pub fn backend(&self) -> Backend {
        self.modulus.backend()
    }

    /// In-place forward transform: natural-order coefficients `< q` in, bit-reversed evaluations
    /// `< q` out.
    ///
    /// # Panics
    /// If `a.len() != n`.
    pub fn forward(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n, "input length must equal the plan's length");
        if !simd(Op::NegacyclicForward, a, &self.simd_forward, &self.modulus) {
            scalar::negacyclic_forward(a, &self.forward, self.modulus.q());
        }
    }

    /// In-place inverse transform, scaled by `1/n`: bit-reversed evaluations `< q` in,
    /// natural-order coefficients `< q` out.
    ///
    /// # Panics
    /// If `a.len() != n`.
    pub fn inverse(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n, "input length must equal the plan's length");
        if !simd(Op::NegacyclicInverse, a, &self.simd_inverse, &self.modulus) {
            scalar::negacyclic_inverse(a, &self.inverse, self.n_inv, self.modulus.q());
        }
    }
}

/// A precomputed cyclic NTT (integer DFT) of length `n` modulo a prime `p ≡ 1 (mod n)`,
/// `p < 2^62`.
#[derive(Debug, Clone)]
pub struct CyclicPlan {
    modulus: Modulus,
    n: usize,
    /// Stage twiddles: entry `len + j` holds `omega^(j * n / (2 len))` for the stage whose
    /// butterflies span `len`, `j < len`.
    forward: Vec<Twiddle>,
    /// The same with `omega^-1`.
    inverse: Vec<Twiddle>,
    n_inv: Twiddle,
    simd_forward: Tables,
    simd_inverse: Tables,
}

impl CyclicPlan {
    /// A cyclic plan for length `n` and prime `p` on the best backend of this CPU.
    ///
    /// # Errors
    /// [`Error::LengthUnsupported`], [`Error::ModulusOutOfRange`], or [`Error::NotNttFriendly`]
    /// unless `p` is a prime with `p ≡ 1 (mod n)`.
    pub fn new(n: usize, p: u64) -> Result<Self, Error> {
        Self::with_backend(n, p, Backend::detect())
    }

    /// A cyclic plan that runs on `backend`.
    ///
    /// # Errors
    /// As [`CyclicPlan::new`], and [`Error::BackendUnavailable`].
    pub fn with_backend(n: usize, p: u64, backend: Backend) -> Result<Self, Error> {
        Self::with_modulus(n, Modulus::with_backend(p, backend)?)
    }

    /// A plan over a prepared modulus (its backend and multiplication kind).
    pub(crate) fn with_modulus(n: usize, modulus: Modulus) -> Result<Self, Error> {
        check_len(n)?;
        let p = modulus.q();
        let omega = primitive_root_of_unity(n as u64, p).ok_or(Error::NotNttFriendly {
            q: p,
            n,
            order: n,
        })?;
        let omega_inv = inv_mod_prime(omega, p).expect("a root of unity is invertible");
        let mut forward = vec![Twiddle::default(); n];
        let mut inverse = vec![Twiddle::default(); n];
        let mut len = 1;
        while len < n {
            let step = (n / (2 * len)) as u64;
            for j in 0..len {
                forward[len + j] = twiddle(&modulus, modulus.pow(omega, j as u64 * step));
                inverse[len + j] = twiddle(&modulus, modulus.pow(omega_inv, j as u64 * step));
            }
            len *= 2;
        }
        let n_inv = twiddle(&modulus, inv_mod_prime(n as u64, p).expect("n < p"));
        Ok(Self {
            simd_forward: Tables::new(&modulus, &forward, n_inv.w, false),
            simd_inverse: Tables::new(&modulus, &inverse, n_inv.w, false),
            modulus,
            n,
            forward,
            inverse,
            n_inv,
        })
    }

    /// The transform length `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The modulus `p`, with its reduction constants.
    pub fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// The backend this plan runs on.
    pub fn backend(&self) -> Backend {
        self.modulus.backend()
    }

    /// In-place forward DFT: natural order in, bit-reversed order out, values `< p`.
    ///
    /// # Panics
    /// If `a.len() != n`.
    pub fn forward(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n, "input length must equal the plan's length");
        if !simd(Op::CyclicForward, a, &self.simd_forward, &self.modulus) {
            scalar::cyclic_forward(a, &self.forward, self.modulus.q());
        }
    }

    /// In-place inverse DFT scaled by `1/n`: bit-reversed order in, natural order out.
    ///
    /// # Panics
    /// If `a.len() != n`.
    pub fn inverse(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n, "input length must equal the plan's length");
        if !simd(Op::CyclicInverse, a, &self.simd_inverse, &self.modulus) {
            scalar::cyclic_inverse(a, &self.inverse, self.n_inv, self.modulus.q());
        }
    }
}
