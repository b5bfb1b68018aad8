//! AVX2 + FMA conv kernels: 4 output channels × up to 3 ymm vectors of pixels (12 accumulators
//! of the 16 registers); `f64` residues reduced with a floor-quotient and an exact FMA.

use std::arch::x86_64::*;

use super::avx_consts::{B256, NV};
use super::{Block, Padded, Reduce};

/// Unused: `f32` plans never reduce.
#[inline(always)]
fn no_reduce(v: __m256, _: &Reduce) -> __m256 {
    v
}

/// `v mod p` in `[0, p)` for exact integers `|v| < 2^53` (see the AVX-512 version).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn reduce_pd(v: __m256d, r: &Reduce) -> __m256d {
    let p = _mm256_set1_pd(r.p);
    let q = _mm256_floor_pd(_mm256_mul_pd(v, _mm256_set1_pd(r.p_inv)));
    let t = _mm256_fnmadd_pd(q, p, v);
    let neg = _mm256_cmp_pd::<_CMP_LT_OQ>(t, _mm256_setzero_pd());
    let t = _mm256_add_pd(t, _mm256_and_pd(neg, p));
    let big = _mm256_cmp_pd::<_CMP_GE_OQ>(t, p);
    _mm256_sub_pd(t, _mm256_and_pd(big, p))
}

simd_conv!(
    conv_f32,
    f32,
    __m256,
    8,
    B256,
    "avx2,fma",
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    no_reduce
);

simd_conv!(
    conv_f64,
    f64,
    __m256d,
    4,
    B256,
    "avx2,fma",
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    reduce_pd
);
