//! Modular arithmetic for word-size moduli `q < 2^62`: the RNS ciphertext primes and the
//! plaintext prime `p` (about 24 or 32 bits).
//!
//! [`Modulus`] holds `q`, its Barrett constant and the backend chosen at construction. Element
//! operations are `const`-cheap scalar code; slice operations dispatch to the backend.
//! Inputs of every operation must be reduced (`< q`) unless the function says otherwise.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
mod scalar;

use crate::{Backend, Error};

/// How a SIMD backend multiplies by a fixed operand `w` (Shoup's method), chosen from the size of
/// `q` and the CPU's features when a [`Modulus`] is built ([`Modulus::kind`]; benches and tests
/// pick another supported one with [`Modulus::with_kind`]). Each integer kind has its own Shoup
/// companion `floor(w * 2^b / q)`; since `floor(floor(x) / 2^s) = floor(x / 2^s)`, every such
/// companion is the 64-bit one shifted right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MulKind {
    /// `q < 2^32`: companion `floor(w * 2^32 / q)`, products from 32x32->64-bit multiplies.
    Shoup32,
    /// `q < 2^50` on AVX-512 IFMA52: companion `floor(w * 2^52 / q)`, 52-bit multiply-adds.
    Ifma52,
    /// `q < 2^62`: companion `floor(w * 2^64 / q)`, 64x64-bit products emulated from 32-bit pieces.
    Shoup64,
    /// `q < 2^50` on AVX2 with FMA: values as doubles, the operand balanced (`|w| <= q/2`) with
    /// the companion `fl(w / q)`, exact products from two FMAs (`avx2::fma50`).
    Fma50,
}

impl MulKind {
    /// Right shift taking the 64-bit Shoup companion to this kind's companion (`Fma50` has no
    /// integer companion: its tables are built by `fma50_operand`).
    pub(crate) fn companion_shift(self) -> u32 {
        match self {
            MulKind::Shoup32 => 32,
            MulKind::Ifma52 => 12,
            MulKind::Shoup64 | MulKind::Fma50 => 0,
        }
    }

    /// Every kind that serves `q` on `backend` on this CPU.
    pub fn supported(q: u64, backend: Backend) -> Vec<MulKind> {
        let mut kinds = vec![MulKind::Shoup64];
        if q < 1 << 32 {
            kinds.push(MulKind::Shoup32);
        }
        if backend == Backend::Avx512 && Backend::has_ifma() && q < 1 << 50 {
            kinds.push(MulKind::Ifma52);
        }
        if backend == Backend::Avx2 && Backend::has_fma() && q < 1 << 50 {
            kinds.push(MulKind::Fma50);
        }
        kinds
    }

    /// The kind a new [`Modulus`] gets: the fastest measured on its backend. On AVX2 with FMA
    /// that is `Fma50` for every `q < 2^50`: at N = 8192 its transforms took 0.55x the time of
    /// `Shoup64` and 0.75x that of `Shoup32` (`docs/PERFORMANCE.md`); its slice products for
    /// `q < 2^32` still run `Shoup32`'s Barrett kernels, which measured faster there.
    fn choose(q: u64, backend: Backend) -> MulKind {
        match backend {
            Backend::Avx512 if q < 1 << 50 && Backend::has_ifma() => MulKind::Ifma52,
            Backend::Avx2 if q < 1 << 50 && Backend::has_fma() => MulKind::Fma50,
            _ if q < 1 << 32 => MulKind::Shoup32,
            _ => MulKind::Shoup64,
        }
    }
}

/// The balanced operand `w_b` (`w − q` when `w > q/2`) and its companion `fl(w_b / q)` of the
/// `Fma50` kind, as the bits of two doubles (the twiddle tables hold `u64`s).
pub(crate) fn fma50_operand(w: u64, q: u64) -> (u64, u64) {
    let wb = if w > q / 2 {
        w as f64 - q as f64
    } else {
        w as f64
    };
    (wb.to_bits(), (wb / q as f64).to_bits())
}

/// Largest supported modulus size in bits: lazy NTT butterflies keep values below `4q < 2^64`.
pub const MAX_MODULUS_BITS: u32 = 62;

/// Shift counts and `mu` for `q < 2^32` (`vpmuludq` kind): `t = P >> s1 < 2^32`,
/// `quot = (t mu) >> s2` with `mu = floor(2^(s1 + s2) / q) < 2^32`, `s1 + s2 = k + 31`.
/// The quotient is short by less than 4, the remainder below `5q`.
pub(crate) fn barrett32_params(q: u64, k: u32) -> (u64, u32, u32) {
    let s1 = (k - 1).max((2 * k).saturating_sub(32));
    let s2 = k + 31 - s1;
    ((1u128 << (s1 + s2)).div_euclid(q as u128) as u64, s1, s2)
}

/// A modulus `2 <= q < 2^62` with precomputed reduction constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modulus {
    q: u64,
    /// Barrett constant `floor(2^(2k) / q)` with `k` the bit length of `q`.
    barrett: u128,
    /// Bit length of `q`.
    k: u32,
    backend: Backend,
    kind: MulKind,
    /// `2^64 mod q` and its Shoup companion, for [`Modulus::reduce_wide`].
    r64: (u64, u64),
    /// `floor(2^64 / q)`: the Shoup companion of 1.
    one_shoup: u64,
}

impl Modulus {
    /// A modulus with the best backend of this CPU.
    ///
    /// # Errors
    /// [`Error::ModulusOutOfRange`] unless `2 <= q < 2^62`.
    pub fn new(q: u64) -> Result<Self, Error> {
        Self::with_backend(q, Backend::detect())
    }

    /// A modulus whose slice operations run on `backend`.
    ///
    /// # Errors
    /// [`Error::ModulusOutOfRange`] unless `2 <= q < 2^62`; [`Error::BackendUnavailable`] if the CPU
    /// lacks the backend.
    pub fn with_backend(q: u64, backend: Backend) -> Result<Self, Error> {
        if !(2..1u64 << MAX_MODULUS_BITS).contains(&q) {
            return Err(Error::ModulusOutOfRange {
                q,
                max_bits: MAX_MODULUS_BITS,
            });
        }
        if !backend.is_available() {
            return Err(Error::BackendUnavailable(backend));
        }
        let k = 64 - q.leading_zeros();
        let barrett = (1u128 << (2 * k)) / q as u128;
        let r64 = ((1u128 << 64) % q as u128) as u64;
        let companion = |w: u64| (((w as u128) << 64) / q as u128) as u64;
        Ok(Self {
            q,
            barrett,
            k,
            backend,
            kind: MulKind::choose(q, backend),
            r64: (r64, companion(r64)),
            one_shoup: companion(1),
        })
    }

    /// The modulus `q`.
    #[inline]
    pub fn q(&self) -> u64 {
        self.q
    }

    /// The backend that runs this modulus's slice operations.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Bit length of `q`.
    #[inline]
    pub fn bits(&self) -> u32 {
        self.k
    }

    /// `(a + b) mod q`.
    #[inline]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        scalar::add(a, b, self.q)
    }

    /// `(a - b) mod q`.
    #[inline]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        scalar::sub(a, b, self.q)
    }

    /// `(-a) mod q`.
    #[inline]
    pub fn neg(&self, a: u64) -> u64 {
        scalar::sub(0, a, self.q)
    }

    /// `x mod q` for any 64-bit `x`.
    #[inline]
    pub fn reduce(&self, x: u64) -> u64 {
        self.reduce_u128(x as u128)
    }

    /// `x mod q` for `x < q^2` or more generally `x < 2^(2k)` (Barrett reduction).
    #[inline]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        if x >> (2 * self.k) == 0 {
            scalar::barrett(x, self.q, self.barrett, self.k)
        } else {
            (x % self.q as u128) as u64
        }
    }

    /// `x mod q` for any 128-bit `x` in constant time: `hi·(2^64 mod q) + lo` by two Shoup
    /// products (each in `[0, 2q)`, so the sum is below `4q < 2^64`), then two branch-free
    /// conditional subtractions. For sums of many products accumulated exactly in 128 bits
    /// ([`Modulus::mul_sum_add_assign`]) and wide samples (the flood), where
    /// [`Modulus::reduce_u128`] would divide.
    #[inline]
    pub fn reduce_wide(&self, x: u128) -> u64 {
        scalar::reduce_wide(x, self.q, self.r64, self.one_shoup)
    }

    /// `a * b mod q` (Barrett).
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.q && b < self.q);
        scalar::barrett(a as u128 * b as u128, self.q, self.barrett, self.k)
    }

    /// The Shoup companion `floor(w * 2^64 / q)` of a fixed operand `w < q`.
    #[inline]
    pub fn shoup(&self, w: u64) -> u64 {
        debug_assert!(w < self.q);
        (((w as u128) << 64) / self.q as u128) as u64
    }

    /// `a * w mod q` with the precomputed Shoup companion `w_shoup = self.shoup(w)`; `a` may be
    /// any 64-bit value.
    #[inline]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let r = scalar::mul_shoup_lazy(a, w, w_shoup, self.q);
        if r >= self.q { r - self.q } else { r }
    }

    /// `a * w mod q` in the lazy range `[0, 2q)`, with the Shoup companion of `w`.
    #[inline]
    pub fn mul_shoup_lazy(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        scalar::mul_shoup_lazy(a, w, w_shoup, self.q)
    }

    /// `base^exp mod q`.
    pub fn pow(&self, base: u64, exp: u64) -> u64 {
        crate::primes::pow_mod(base, exp, self.q)
    }

    /// `a += b` elementwise mod q.
    ///
    /// # Panics
    /// If the slices differ in length.
    pub fn add_assign(&self, a: &mut [u64], b: &[u64]) {
        assert_eq!(a.len(), b.len(), "slice lengths differ");
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_backend` checked that this CPU runs AVX-512 F/BW/DQ/VL.
            Backend::Avx512 => unsafe { avx512::add_assign(a, b, self.q) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_backend` checked that this CPU runs AVX2.
            Backend::Avx2 => unsafe { avx2::add_assign(a, b, self.q) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `with_backend` checked that this CPU runs NEON.
            Backend::Neon => unsafe { neon::add_assign(a, b, self.q) },
            _ => scalar::add_assign(a, b, self.q),
        }
    }

    /// `a -= b` elementwise mod q.
    ///
    /// # Panics
    /// If the slices differ in length.
    pub fn sub_assign(&self, a: &mut [u64], b: &[u64]) {
        assert_eq!(a.len(), b.len(), "slice lengths differ");
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_backend` checked that this CPU runs AVX-512 F/BW/DQ/VL.
            Backend::Avx512 => unsafe { avx512::sub_assign(a, b, self.q) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_backend` checked that this CPU runs AVX2.
            Backend::Avx2 => unsafe { avx2::sub_assign(a, b, self.q) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `with_backend` checked that this CPU runs NEON.
            Backend::Neon => unsafe { neon::sub_assign(a, b, self.q) },
            _ => scalar::sub_assign(a, b, self.q),
        }
    }

    /// `a = -a` elementwise mod q.
    pub fn neg_assign(&self, a: &mut [u64]) {
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_backend` checked that this CPU runs AVX-512 F/BW/DQ/VL.
            Backend::Avx512 => unsafe { avx512::neg_assign(a, self.q) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_backend` checked that this CPU runs AVX2.
            Backend::Avx2 => unsafe { avx2::neg_assign(a, self.q) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `with_backend` checked that this CPU runs NEON.
            Backend::Neon => unsafe { neon::neg_assign(a, self.q) },
            _ => scalar::neg_assign(a, self.q),
        }
    }

    /// `a = a ∘ b` (Hadamard product) mod q.
    ///
    /// # Panics
    /// If the slices differ in length.
    pub fn mul_assign(&self, a: &mut [u64], b: &[u64]) {
        assert_eq!(a.len(), b.len(), "slice lengths differ");
        match (self.backend, self.kind) {
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx512, MulKind::Ifma52) if avx512::vector_products(self) => {
                // SAFETY: `with_backend` checked AVX-512; `Ifma52` is chosen only with IFMA52.
                unsafe { avx512::ifma::mul_assign(a, b, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx512, MulKind::Shoup32) if avx512::vector_products(self) => {
                // SAFETY: `with_backend` checked that this CPU runs AVX-512 F/BW/DQ/VL.
                unsafe { avx512::shoup32::mul_assign(a, b, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx2, MulKind::Shoup32 | MulKind::Fma50)
                if self.q < 1 << 32 && !self.q.is_power_of_two() =>
            {
                // `Fma50` too: below 2^32 the Barrett kernels measured faster.
                // SAFETY: `with_backend` checked that this CPU runs AVX2.
                unsafe { avx2::mul_assign_barrett32(a, b, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx2, MulKind::Fma50) => {
                // SAFETY: `with_backend` checked AVX2; `Fma50` is chosen (or accepted by
                // `with_kind`) only when `Backend::has_fma()` and `q < 2^50`.
                unsafe { avx2::fma50::mul_assign(a, b, self) }
            }
            #[cfg(target_arch = "aarch64")]
            (Backend::Neon, MulKind::Shoup32) if !self.q.is_power_of_two() => {
                // SAFETY: `with_backend` checked that this CPU runs NEON.
                unsafe { neon::mul_assign_barrett32(a, b, self) }
            }
            _ => scalar::mul_assign(a, b, self),
        }
    }

    /// `acc += b ∘ c` mod q.
    ///
    /// # Panics
    /// If the slices differ in length.
    pub fn mul_add_assign(&self, acc: &mut [u64], b: &[u64], c: &[u64]) {
        assert!(
            acc.len() == b.len() && b.len() == c.len(),
            "slice lengths differ"
        );
        match (self.backend, self.kind) {
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx512, MulKind::Ifma52) if avx512::vector_products(self) => {
                // SAFETY: `with_backend` checked AVX-512; `Ifma52` is chosen only with IFMA52.
                unsafe { avx512::ifma::mul_add_assign(acc, b, c, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx512, MulKind::Shoup32) if avx512::vector_products(self) => {
                // SAFETY: `with_backend` checked that this CPU runs AVX-512 F/BW/DQ/VL.
                unsafe { avx512::shoup32::mul_add_assign(acc, b, c, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx2, MulKind::Shoup32 | MulKind::Fma50)
                if self.q < 1 << 32 && !self.q.is_power_of_two() =>
            {
                // `Fma50` too: below 2^32 the Barrett kernels measured faster.
                // SAFETY: `with_backend` checked that this CPU runs AVX2.
                unsafe { avx2::mul_add_assign_barrett32(acc, b, c, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx2, MulKind::Fma50) => {
                // SAFETY: `with_backend` checked AVX2; `Fma50` is chosen (or accepted by
                // `with_kind`) only when `Backend::has_fma()` and `q < 2^50`.
                unsafe { avx2::fma50::mul_add_assign(acc, b, c, self) }
            }
            #[cfg(target_arch = "aarch64")]
            (Backend::Neon, MulKind::Shoup32) if !self.q.is_power_of_two() => {
                // SAFETY: `with_backend` checked that this CPU runs NEON.
                unsafe { neon::mul_add_assign_barrett32(acc, b, c, self) }
            }
            _ => scalar::mul_add_assign(acc, b, c, self),
        }
    }

    /// `acc = (acc + Σ_k a_k ∘ b_k) mod q` for `terms = [(a_k, b_k)]`: a sum of Hadamard
    /// products (the server's multiply-accumulate of HomConv, one term per upload), computed
    /// lazily: the products are summed exactly in 128 bits over blocks of coefficients and
    /// reduced once per coefficient (per [`Modulus::lazy_terms`] terms), instead of one
    /// reduction and one pass over `acc` per term. The result is the canonical residue, equal
    /// to applying [`Modulus::mul_add_assign`] term by term.
    ///
    /// Every backend runs the portable code: the 64×64→128-bit product is one `mul`/`mulx`
    /// (x86-64) or `mul` + `umulh` (aarch64), which AVX2 and NEON can only emulate from 32-bit
    /// pieces at a higher cost (as for [`Modulus::mul_add_assign`] with `q ≥ 2^32`).
    ///
    /// # Panics
    /// If a slice's length differs from `acc`'s.
    pub fn mul_sum_add_assign(&self, acc: &mut [u64], terms: &[(&[u64], &[u64])]) {
        assert!(
            terms
                .iter()
                .all(|(a, b)| a.len() == acc.len() && b.len() == acc.len()),
            "slice lengths differ"
        );
        scalar::mul_sum_add_assign(acc, terms, self);
    }

    /// Products of reduced operands that can be summed exactly in 128 bits on top of a reduced
    /// value: `⌊(2^128 − q) / (q − 1)^2⌋`, at least 15 for `q < 2^62`, capped at `2^20`.
    pub fn lazy_terms(&self) -> usize {
        let sq = (self.q as u128 - 1).pow(2).max(1);
        ((u128::MAX - self.q as u128) / sq).min(1 << 20) as usize
    }

    /// `a = s · a` mod q for a scalar `s < q`.
    pub fn scalar_mul_assign(&self, a: &mut [u64], s: u64) {
        let s_shoup = self.shoup(s);
        match (self.backend, self.kind) {
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx512, MulKind::Ifma52) => {
                // SAFETY: `with_backend` checked AVX-512; `Ifma52` is chosen only with IFMA52.
                unsafe { avx512::ifma::scalar_mul_assign(a, s, s_shoup, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx512, MulKind::Shoup32) => {
                // SAFETY: `with_backend` checked that this CPU runs AVX-512 F/BW/DQ/VL.
                unsafe { avx512::shoup32::scalar_mul_assign(a, s, s_shoup, self) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx512, MulKind::Shoup64) => {
                // SAFETY: `with_backend` checked that this CPU runs AVX-512 F/BW/DQ/VL.
                unsafe { avx512::scalar_mul_assign_shoup64(a, s, s_shoup, self.q) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx2, MulKind::Shoup32) => {
                // SAFETY: `with_backend` checked that this CPU runs AVX2.
                unsafe { avx2::scalar_mul_assign_shoup32(a, s, s_shoup, self.q) }
            }
            #[cfg(target_arch = "x86_64")]
            (Backend::Avx2, MulKind::Fma50) => {
                // SAFETY: `with_backend` checked AVX2; `Fma50` is chosen (or accepted by
                // `with_kind`) only when `Backend::has_fma()` and `q < 2^50`.
                unsafe { avx2::fma50::scalar_mul_assign(a, s, s_shoup, self.q) }
            }
            #[cfg(target_arch = "aarch64")]
            (Backend::Neon, MulKind::Shoup32) => {
                // SAFETY: `with_backend` checked that this CPU runs NEON.
                unsafe { neon::scalar_mul_assign_shoup32(a, s, s_shoup, self.q) }
            }
            _ => scalar::scalar_mul_assign(a, s, s_shoup, self.q),
        }
    }

    /// `a = a mod q` elementwise, for arbitrary 64-bit inputs.
    pub fn reduce_assign(&self, a: &mut [u64]) {
        for x in a {
            *x = self.reduce(*x);
        }
    }

    pub(crate) fn barrett_parts(&self) -> (u128, u32) {
        (self.barrett, self.k)
    }

    /// The same modulus with another SIMD multiplication kind, one of
    /// [`MulKind::supported`] (tests run every kind; benches compare them).
    ///
    /// # Errors
    /// [`Error::KindUnsupported`] if the kind cannot serve `q` on this backend and CPU.
    pub fn with_kind(mut self, kind: MulKind) -> Result<Self, Error> {
        if !MulKind::supported(self.q, self.backend).contains(&kind) {
            return Err(Error::KindUnsupported {
                kind,
                q: self.q,
                backend: self.backend,
            });
        }
        self.kind = kind;
        Ok(self)
    }

    /// The SIMD multiplication kind of this modulus's slice operations and transforms.
    pub fn kind(&self) -> MulKind {
        self.kind
    }
}

#[cfg(test)]
mod tests;
