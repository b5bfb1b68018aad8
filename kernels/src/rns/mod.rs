//! BFV's scaling between the plaintext modulus `p` and an RNS ciphertext modulus
//! `Q = q_1 ⋯ q_ℓ`: the precise encryption scaling `round(Q·m/p)` (per prime, `Δ_i·m +
//! round(r·m/p)` with `Δ = floor(Q/p)`, `r = Q mod p`) and decryption's scale-and-round
//! `round(p·X/Q) mod p` from the residues of `X`. Scalar reference plus an AVX-512 IFMA52
//! backend that agrees with it bit for bit.

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx512;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use crate::primes::inv_mod_prime;
use crate::{Backend, Error, Modulus};

/// Bits of the fixed-point fraction of `θ_i` ([`ScaleRound`]), two 52-bit IFMA words.
pub const FRACTION_BITS: u32 = 104;

/// The backend of the free functions of this module (detected once).
fn backend() -> Backend {
    static DETECTED: OnceLock<Backend> = OnceLock::new();
    *DETECTED.get_or_init(Backend::detect)
}

/// Whether the IFMA52 kernels of this module may run on `backend` here.
fn ifma(backend: Backend) -> bool {
    cfg!(all(target_arch = "x86_64", not(miri)))
        && backend == Backend::Avx512
        && backend.is_available()
        && Backend::has_ifma()
}

/// Decryption's scale-and-round `round(p·X/Q) mod p` for `X` given by its residues mod the
/// primes `q_i` of `Q` (Halevi–Polyakov–Shoup 2019): `round(Σ_i x_i·θ_i) mod p` with
/// `θ_i = p·q̃_i/q_i`, `q̃_i = (Q/q_i)^-1 mod q_i`, since `Σ_i x_i·θ_i = p·X/Q + p·k` for an
/// integer `k`.
///
/// `θ_i` is kept as its integer part mod `p` and its fraction truncated to
/// [`FRACTION_BITS`] bits; the sum of the fractions is exact (integer arithmetic), so the result
/// is `round(p·X/Q) mod p` unless the fraction of `p·X/Q` is within `ℓ·max x_i·2^-104 <
/// ℓ·2^-42` of `1/2` (for BFV: unless the invariant noise is, where decryption fails anyway).
#[derive(Debug, Clone)]
pub struct ScaleRound {
    p: Modulus,
    backend: Backend,
    /// `floor(θ_i) mod p`, with its Shoup companion for [`Modulus::mul_shoup`].
    w: Vec<(u64, u64)>,
    /// The fraction of `θ_i` times `2^104`, as its high and low 52-bit words.
    frac: Vec<(u64, u64)>,
    /// Whether the IFMA52 path serves these moduli (see [`ScaleRound::round`]; read only where
    /// that path is compiled).
    #[cfg_attr(not(all(target_arch = "x86_64", not(miri))), allow(dead_code))]
    vector: bool,
}

impl ScaleRound {
    /// The constants for the primes `q` (pairwise distinct primes, each `≠ p`) and plaintext
    /// modulus `p`, on the detected backend.
    ///
    /// # Errors
    /// [`Error::ModulusOutOfRange`] if `p` or a `q_i` is outside `[2, 2^62)`.
    ///
    /// # Panics
    /// If `q` is empty, has more than 64 primes, or two of them are equal (a caller's bug).
    pub fn new(q: &[u64], p: u64) -> Result<Self, Error> {
        Self::with_backend(q, p, backend())
    }

    /// [`ScaleRound::new`] on a given backend (an unavailable one runs the scalar reference).
    ///
    /// # Errors
    /// As [`ScaleRound::new`].
    ///
    /// # Panics
    /// As [`ScaleRound::new`].
    pub fn with_backend(q: &[u64], p: u64, backend: Backend) -> Result<Self, Error> {
        assert!(
            !q.is_empty() && q.len() <= 64,
            "1..=64 primes for a scale-and-round"
        );
        let p_mod = Modulus::with_backend(p, Backend::Scalar)?;
        let q_mod = q
            .iter()
            .map(|&qi| Modulus::with_backend(qi, Backend::Scalar))
            .collect::<Result<Vec<_>, _>>()?;
        let mut w = Vec::with_capacity(q.len());
        let mut frac = Vec::with_capacity(q.len());
        for (i, m) in q_mod.iter().enumerate() {
            let qi = m.q() as u128;
            let q_hat = q_mod
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(1u64, |acc, (_, mj)| m.mul(acc, m.reduce(mj.q())));
            let q_tilde = inv_mod_prime(q_hat, m.q()).expect("distinct primes");
            // θ_i = p·q̃_i/q_i: integer part, then the fraction by two 52-bit long-division steps.
            let num = p as u128 * q_tilde as u128;
            let rem = num % qi;
            let hi = (rem << 52) / qi;
            let lo = (((rem << 52) % qi) << 52) / qi;
            let int = p_mod.reduce_u128(num / qi);
            w.push((int, p_mod.shoup(int)));
            frac.push((hi as u64, lo as u64));
        }
        // The IFMA52 path needs 52-bit products of 50-bit values, and its last column (the
        // high words of x_i·floor(θ_i), each < 2^48, plus carries) below 2^52: ℓ ≤ 15.
        let vector =
            ifma(backend) && p < 1 << 50 && q.len() <= 15 && q.iter().all(|&qi| qi < 1 << 50);
        Ok(Self {
            p: p_mod,
            backend,
            w,
            frac,
            vector,
        })
    }

    /// The number of primes `ℓ`.
    pub fn primes(&self) -> usize {
        self.w.len()
    }

    /// The backend this instance was built for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `round(p·X/Q) mod p` for one `X` given by its residues `x_i < q_i` (in prime order,
    /// exactly [`ScaleRound::primes`] of them): the scalar reference.
    ///
    /// # Panics
    /// If `x` yields another number of residues than there are primes.
    pub fn round_one(&self, x: impl IntoIterator<Item = u64>) -> u64 {
        let p = &self.p;
        let mut int = 0u64;
        // Σ x_i·hi_i and Σ x_i·lo_i: each product < 2^114, at most 64 of them.
        let (mut a, mut b) = (0u128, 0u128);
        let mut count = 0;
        for ((xi, &(w, ws)), &(hi, lo)) in x.into_iter().zip(&self.w).zip(&self.frac) {
            int = p.add(int, p.mul_shoup(xi, w, ws));
            a += xi as u128 * hi as u128;
            b += xi as u128 * lo as u128;
            count += 1;
        }
        assert_eq!(count, self.w.len(), "one residue per prime");
        // floor((Σ x_i·frac_i + 2^103) / 2^104), frac_i = hi_i·2^52 + lo_i.
        let whole = (a + (b >> 52) + (1 << 51)) >> 52;
        p.add(int, p.reduce_wide(whole))
    }

    /// `out[j] = round(p·X_j/Q) mod p` where the residues of `X_j` are `x[i·stride + j]`,
    /// `i < ℓ` (limb-major polynomials: `stride = N`; a chunk of coefficients starts at an
    /// offset of `x`). Every residue must be below its prime.
    ///
    /// # Panics
    /// If `x` is shorter than `(ℓ − 1)·stride + out.len()`, or `out.len() > stride`.
    pub fn round(&self, x: &[u64], stride: usize, out: &mut [u64]) {
        let l = self.w.len();
        assert!(out.len() <= stride, "a chunk longer than the stride");
        assert!(
            x.len() >= (l - 1) * stride + out.len(),
            "residues missing for the last prime"
        );
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if self.vector {
            // SAFETY: `vector` is set only when this CPU runs AVX-512 F with IFMA52 and the
            // moduli meet the kernel's bounds; the lengths are checked above.
            unsafe { avx512::scale_round(self, x, stride, out) };
            return;
        }
        self.round_scalar(x, stride, 0, out);
    }

    /// The scalar reference for coefficients `start..` of [`ScaleRound::round`] (`out[j]` is
    /// coefficient `start + j`).
    fn round_scalar(&self, x: &[u64], stride: usize, start: usize, out: &mut [u64]) {
        let l = self.w.len();
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.round_one((0..l).map(|i| x[i * stride + start + j]));
        }
    }
}

/// `out[j] = round(r·m[j]/p)` (half up) for `m[j] < p`, `r < p < 2^62`: the fractional offsets of
/// the precise scaling `round(Q·m/p) = Δ·m + round(r·m/p)` (`r = Q mod p`), each `≤ r`.
///
/// # Panics
/// If `r ≥ p`, `p < 2`, `p ≥ 2^62` or the slices differ in length.
pub fn precise_offsets(m: &[u64], r: u64, p: u64, out: &mut [u64]) {
    precise_offsets_with(backend(), m, r, p, out);
}

/// [`precise_offsets`] on a given backend.
///
/// # Panics
/// As [`precise_offsets`].
pub fn precise_offsets_with(backend: Backend, m: &[u64], r: u64, p: u64, out: &mut [u64]) {
    assert!((2..1 << 62).contains(&p) && r < p, "needs r < p < 2^62");
    assert_eq!(m.len(), out.len(), "slice lengths differ");
    debug_assert!(m.iter().all(|&v| v < p));
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if ifma(backend) && p < 1 << 50 {
        // SAFETY: AVX-512 F and IFMA52 are present; `r < p < 2^50`; lengths checked.
        unsafe { avx512::precise_offsets(m, r, p, out) };
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = backend;
    scalar_precise_offsets(m, r, p, out);
}

fn scalar_precise_offsets(m: &[u64], r: u64, p: u64, out: &mut [u64]) {
    for (o, &c) in out.iter_mut().zip(m) {
        *o = ((r as u128 * c as u128 + (p / 2) as u128) / p as u128) as u64;
    }
}

/// `out[j] = (d·m[j] + y[j]) mod q` for `m[j] < m_bound` and `|y[j]| < y_bound`, `d < q`: one
/// prime's residues of the precise BFV scaling `Δ·m + round(r·m/p) + e` (`y = round(r·m/p) +
/// e`, a small signed value), branch-free in the values (the bounds are public parameters).
///
/// # Panics
/// If `d ≥ q` or the slices differ in length.
pub fn scale_add_signed(
    q: &Modulus,
    d: u64,
    m: &[u64],
    m_bound: u64,
    y: &[i64],
    y_bound: u64,
    out: &mut [u64],
) {
    scale_add_signed_with(backend(), q, d, m, m_bound, y, y_bound, out);
}

/// [`scale_add_signed`] on a given backend.
///
/// # Panics
/// As [`scale_add_signed`].
#[allow(clippy::too_many_arguments)]
pub fn scale_add_signed_with(
    backend: Backend,
    q: &Modulus,
    d: u64,
    m: &[u64],
    m_bound: u64,
    y: &[i64],
    y_bound: u64,
    out: &mut [u64],
) {
    assert!(d < q.q(), "needs d < q");
    assert!(
        m.len() == out.len() && y.len() == out.len(),
        "slice lengths differ"
    );
    debug_assert!(m.iter().all(|&v| v < m_bound));
    debug_assert!(y.iter().all(|&v| v.unsigned_abs() < y_bound));
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if ifma(backend) && q.q() < 1 << 50 && m_bound <= 1 << 52 && y_bound <= q.q() {
        // SAFETY: AVX-512 F and IFMA52 are present; `d < q < 2^50`, `m < 2^52`, `|y| < q`;
        // lengths checked.
        unsafe { avx512::scale_add_signed(q, d, m, y, out) };
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = backend;
    scalar_scale_add_signed(q, d, m, y, y_bound, out);
}

fn scalar_scale_add_signed(
    q: &Modulus,
    d: u64,
    m: &[u64],
    y: &[i64],
    y_bound: u64,
    out: &mut [u64],
) {
    let ds = q.shoup(d);
    let qv = q.q();
    for ((o, &c), &v) in out.iter_mut().zip(m).zip(y) {
        let lifted = if y_bound <= qv {
            // v + q when v < 0, without a branch on the (secret) sign.
            (v as u64).wrapping_add(qv & ((v >> 63) as u64))
        } else {
            (v as i128).rem_euclid(qv as i128) as u64
        };
        *o = q.add(q.mul_shoup(c, d, ds), lifted);
    }
}

/// `out0 = (out0 + Σ_i d_i∘b_i) mod q` and `out1 = (out1 + Σ_i d_i∘a_i) mod q` elementwise: the
/// inner products of a key switch (the digits `d_i` against both halves of the key), in one
/// pass with one reduction per output. Every input value is below `q`.
///
/// # Panics
/// If `d`, `b` and `a` differ in count, or any slice differs in length from `out0`/`out1`.
pub fn mul_sum_pair_add(
    q: &Modulus,
    d: &[&[u64]],
    b: &[&[u64]],
    a: &[&[u64]],
    out0: &mut [u64],
    out1: &mut [u64],
) {
    mul_sum_pair_add_with(backend(), q, d, b, a, out0, out1);
}

/// [`mul_sum_pair_add`] on a given backend.
///
/// # Panics
/// As [`mul_sum_pair_add`].
pub fn mul_sum_pair_add_with(
    backend: Backend,
    q: &Modulus,
    d: &[&[u64]],
    b: &[&[u64]],
    a: &[&[u64]],
    out0: &mut [u64],
    out1: &mut [u64],
) {
    let len = out0.len();
    assert!(
        d.len() == b.len() && d.len() == a.len(),
        "one key pair per digit"
    );
    assert!(
        out1.len() == len && d.iter().chain(b).chain(a).all(|s| s.len() == len),
        "slice lengths differ"
    );
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if ifma(backend) && q.q() < 1 << 50 && d.len() <= 16 {
        // SAFETY: AVX-512 F and IFMA52 are present; `q < 2^50`, at most 16 terms (the column
        // bounds of the backend); lengths checked; values below `q` (caller).
        unsafe { avx512::mul_sum_pair_add(q, d, b, a, out0, out1) };
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = backend;
    scalar_mul_sum_pair_add(q, d, b, a, 0, out0, out1);
}

/// The scalar reference for elements `start..` (`out0[j]` is element `start + j`).
fn scalar_mul_sum_pair_add(
    q: &Modulus,
    d: &[&[u64]],
    b: &[&[u64]],
    a: &[&[u64]],
    start: usize,
    out0: &mut [u64],
    out1: &mut [u64],
) {
    for (j, (o0, o1)) in out0.iter_mut().zip(out1.iter_mut()).enumerate() {
        let e = start + j;
        for ((di, bi), ai) in d.iter().zip(b).zip(a) {
            *o0 = q.add(*o0, q.mul(di[e], bi[e]));
            *o1 = q.add(*o1, q.mul(di[e], ai[e]));
        }
    }
}
