//! AVX-512 conv kernels: 8 output channels × up to 3 zmm vectors of pixels (24 accumulators of
//! the 32 registers), FMA; `f64` residues reduced with a floor-quotient and an exact FMA.

use std::arch::x86_64::*;

use super::avx_consts::{B512, NV};
use super::{Block, Padded, Reduce};

/// Unused: `f32` plans never reduce.
#[inline(always)]
fn no_reduce(v: __m512, _: &Reduce) -> __m512 {
    v
}

/// `v mod p` in `[0, p)` for exact integers `|v| < 2^53`: `q = ⌊v · (1/p)⌋` is off by at most
/// one, `v − q·p` is exact in one FMA (its value is below 2p), and one correction each way
/// lands in `[0, p)`.
#[target_feature(enable = "avx512f")]
#[inline]
fn reduce_pd(v: __m512d, r: &Reduce) -> __m512d {
    let p = _mm512_set1_pd(r.p);
    let q = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(_mm512_mul_pd(
        v,
        _mm512_set1_pd(r.p_inv),
    ));
    let t = _mm512_fnmadd_pd(q, p, v);
    let neg = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(t, _mm512_setzero_pd());
    let t = _mm512_mask_add_pd(t, neg, t, p);
    let big = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(t, p);
    _mm512_mask_sub_pd(t, big, t, p)
}

simd_conv!(
    conv_f32,
    f32,
    __m512,
    16,
    B512,
    "avx512f,avx2,fma",
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    no_reduce
);

simd_conv!(
    conv_f64,
    f64,
    __m512d,
    8,
    B512,
    "avx512f,avx2,fma",
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    reduce_pd
);
