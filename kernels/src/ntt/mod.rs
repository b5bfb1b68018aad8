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
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod schedule;
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
    /// `n^-1` and its companion (both as the kind stores them, like `w` and `ws`).
    pub(crate) n_inv: (u64, u64),
    /// `w[1] * n^-1` and its companion (the last inverse stage fused with the scaling).
    pub(crate) last: (u64, u64),
}

impl Tables {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // `lanes`: x86 layouts
    fn new(m: &Modulus, t: &[Twiddle], n_inv: u64, lanes: bool, forward: bool) -> Self {
        // NEON has kernels only for `Shoup32`; its other moduli run the scalar transforms.
        let neon_scalar =
            m.backend() == Backend::Neon && m.kind() != crate::modarith::MulKind::Shoup32;
        if m.backend() == Backend::Scalar || neon_scalar {
            return Self::default();
        }
        let shift = m.kind().companion_shift();
        let fma = m.kind() == crate::modarith::MulKind::Fma50;
        // Each kind's pair (operand, companion): `Fma50` stores doubles' bits.
        let pair = |w: u64, w_shoup: u64| {
            if fma {
                crate::modarith::fma50_operand(w, m.q())
            } else {
                (w, w_shoup >> shift)
            }
        };
        let companion = |w: u64| pair(w, m.shoup(w));
        let (w, ws): (Vec<u64>, Vec<u64>) = t.iter().map(|t| pair(t.w, t.w_shoup)).unzip();
        let (lane_w, lane_ws) = match m.backend() {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 if lanes && forward && w.len() >= 32 => (
                avx512::forward_lane_twiddles(&w),
                avx512::forward_lane_twiddles(&ws),
            ),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 if lanes && !forward && w.len() >= 16 => {
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
            n_inv: companion(n_inv),
            last: companion(last),
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
        // The negacyclic forward tail works on chunks of 32 (length 16 runs the scalar code).
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512
            if a.len() >= 32 || (a.len() >= 16 && !matches!(op, Op::NegacyclicForward)) =>
        {
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
                    MulKind::Ifma52 if crate::modarith::avx512::vpmullq_is_fast() => {
                        run!(ifma_mullo)
                    }
                    MulKind::Ifma52 => run!(ifma),
                    MulKind::Shoup32 => run!(shoup32),
                    // `Fma50` is never chosen for (nor accepted on) this backend. `Shoup64`'s lazy
                    // products (`< 4q`) need `8q < 2^64`.
                    MulKind::Shoup64 | MulKind::Fma50 if m.q() < 1 << 61 => run!(shoup64),
                    MulKind::Shoup64 | MulKind::Fma50 => run!(shoup64_wide),
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
            // AVX2 on this CPU, and `Fma50` is chosen (or accepted by `Modulus::with_kind`) only
            // when `Backend::has_fma()` and `q < 2^50`, which its butterflies need.
            unsafe {
                match m.kind() {
                    MulKind::Shoup32 => run!(shoup32),
                    MulKind::Fma50 => run!(fma50),
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

/// Which transform an [`Ntt`] computes: [`Negacyclic`] or [`Cyclic`]. Sealed.
pub trait Kind: sealed::Sealed + Copy + core::fmt::Debug + Send + Sync + 'static {
    /// Whether the transform is negacyclic (evaluation at the primitive `2n`-th roots of unity)
    /// rather than cyclic (at the `n`-th roots).
    const NEGACYCLIC: bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Negacyclic {}
    impl Sealed for super::Cyclic {}
}

/// The negacyclic NTT: `Z_q[X]/(X^n + 1)`, for RLWE arithmetic; needs `q ≡ 1 (mod 2n)`.
#[derive(Debug, Clone, Copy)]
pub struct Negacyclic;

/// The cyclic NTT (integer DFT): `Z_p[X]/(X^n − 1)`, for HomConv; needs `p ≡ 1 (mod n)`.
#[derive(Debug, Clone, Copy)]
pub struct Cyclic;

impl Kind for Negacyclic {
    const NEGACYCLIC: bool = true;
}

impl Kind for Cyclic {
    const NEGACYCLIC: bool = false;
}

/// A precomputed NTT of kind `K` and length `n` modulo a prime `q < 2^62`.
#[derive(Debug, Clone)]
pub struct Ntt<K: Kind> {
    modulus: Modulus,
    n: usize,
    /// Negacyclic: `psi^bitrev(i)` (`psi` a primitive `2n`-th root). Cyclic: stage twiddles,
    /// entry `len + j` holds `omega^(j * n / (2 len))` for the stage whose butterflies span
    /// `len`, `j < len`.
    forward: Vec<Twiddle>,
    /// The same with the inverse root.
    inverse: Vec<Twiddle>,
    /// `n^-1 mod q`.
    n_inv: Twiddle,
    simd_forward: Tables,
    simd_inverse: Tables,
    kind: core::marker::PhantomData<K>,
}

/// The negacyclic NTT of RLWE arithmetic.
pub type Plan = Ntt<Negacyclic>;

/// The cyclic NTT (integer DFT over `Z_p`) of HomConv.
pub type CyclicPlan = Ntt<Cyclic>;

impl<K: Kind> Ntt<K> {
    /// A plan for length `n` and prime `q` on the best backend of this CPU.
    ///
    /// # Errors
    /// [`Error::LengthUnsupported`] unless `n` is a power of two in `[MIN_LEN, MAX_LEN]`;
    /// [`Error::ModulusOutOfRange`] unless `q < 2^62`; [`Error::NotNttFriendly`] unless `q` is a
    /// prime with `q ≡ 1 (mod 2n)` (negacyclic) or `q ≡ 1 (mod n)` (cyclic).
    pub fn new(n: usize, q: u64) -> Result<Self, Error> {
        Self::with_backend(n, q, Backend::detect())
    }

    /// A plan that runs on `backend`.
    ///
    /// # Errors
    /// As [`Ntt::new`], and [`Error::BackendUnavailable`] if the CPU lacks the backend.
    pub fn with_backend(n: usize, q: u64, backend: Backend) -> Result<Self, Error> {
        Self::with_modulus(n, Modulus::with_backend(q, backend)?)
    }

    /// A plan over a prepared modulus: its backend and multiplication kind (benches compare
    /// kinds with [`Modulus::with_kind`]).
    ///
    /// # Errors
    /// As [`Ntt::new`], except [`Error::ModulusOutOfRange`] (the modulus is built).
    pub fn with_modulus(n: usize, modulus: Modulus) -> Result<Self, Error> {
        check_len(n)?;
        let q = modulus.q();
        let order = if K::NEGACYCLIC { 2 * n } else { n };
        let root = primitive_root_of_unity(order as u64, q).ok_or(Error::NotNttFriendly {
            q,
            n,
            order,
        })?;
        let root_inv = inv_mod_prime(root, q).expect("a root of unity is invertible");
        let (forward, inverse) = if K::NEGACYCLIC {
            let bits = n.trailing_zeros();
            (0..n)
                .map(|i| {
                    let e = bit_reverse(i, bits) as u64;
                    let power = |r| twiddle(&modulus, modulus.pow(r, e));
                    (power(root), power(root_inv))
                })
                .unzip()
        } else {
            let mut forward = vec![Twiddle::default(); n];
            let mut inverse = vec![Twiddle::default(); n];
            let mut len = 1;
            while len < n {
                let step = (n / (2 * len)) as u64;
                for j in 0..len {
                    let e = j as u64 * step;
                    forward[len + j] = twiddle(&modulus, modulus.pow(root, e));
                    inverse[len + j] = twiddle(&modulus, modulus.pow(root_inv, e));
                }
                len *= 2;
            }
            (forward, inverse)
        };
        let n_inv = twiddle(&modulus, inv_mod_prime(n as u64, q).expect("n < q"));
        Ok(Self {
            simd_forward: Tables::new(&modulus, &forward, n_inv.w, K::NEGACYCLIC, true),
            simd_inverse: Tables::new(&modulus, &inverse, n_inv.w, K::NEGACYCLIC, false),
            modulus,
            n,
            forward,
            inverse,
            n_inv,
            kind: core::marker::PhantomData,
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
        let op = if K::NEGACYCLIC {
            Op::NegacyclicForward
        } else {
            Op::CyclicForward
        };
        if !simd(op, a, &self.simd_forward, &self.modulus) {
            let q = self.modulus.q();
            if K::NEGACYCLIC {
                scalar::negacyclic_forward(a, &self.forward, q);
            } else {
                scalar::cyclic_forward(a, &self.forward, q);
            }
        }
    }

    /// In-place inverse transform, scaled by `1/n`: bit-reversed evaluations `< q` in,
    /// natural-order coefficients `< q` out.
    ///
    /// # Panics
    /// If `a.len() != n`.
    pub fn inverse(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n, "input length must equal the plan's length");
        let op = if K::NEGACYCLIC {
            Op::NegacyclicInverse
        } else {
            Op::CyclicInverse
        };
        if !simd(op, a, &self.simd_inverse, &self.modulus) {
            let (q, n_inv) = (self.modulus.q(), self.n_inv);
            if K::NEGACYCLIC {
                scalar::negacyclic_inverse(a, &self.inverse, n_inv, q);
            } else {
                scalar::cyclic_inverse(a, &self.inverse, n_inv, q);
            }
        }
    }
}
