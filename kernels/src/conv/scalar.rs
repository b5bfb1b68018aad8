//! Portable reference of the conv kernels: one output row of one channel at a time, products
//! then sums (no fused multiply-add), reductions through `i64`.

use super::{Block, Element, Padded};

/// Output channels per weight block.
pub(crate) const B: usize = 4;

/// Runs one block: `out[j]` receives the rows `blk.rows` of output channel `j < blk.nb`.
pub(crate) fn conv<T: Element>(blk: &Block<'_, T>, x: &Padded<T>, out: &mut [&mut [T]]) {
    let [_, h, w] = x.core_dims;
    let [_, ph, pw] = x.pdims;
    let pplane: usize = x.pdims.iter().product();
    let [kd, kh, kw] = blk.kernel;
    let taps = kd * kh * kw;
    let b = blk.bias.len();
    let chunk = blk.reduce.map_or(usize::MAX, |r| r.chunk).max(1);
    let mut acc = vec![T::ZERO; w];
    for (j, out) in out.iter_mut().enumerate().take(blk.nb) {
        for r in blk.rows.clone() {
            let (z, y) = (r / h, r % h);
            {
                acc.fill(blk.bias[j]);
                for ci in 0..blk.c_in {
                    if let Some(r) = &blk.reduce
                        && ci > 0
                        && ci % chunk == 0
                    {
                        acc.iter_mut().for_each(|a| *a = a.reduce(r));
                    }
                    for kz in 0..kd {
                        for ky in 0..kh {
                            let start = ci * pplane + ((z + kz) * ph + y + ky) * pw;
                            let row = &x.data[start..start + w + kw - 1];
                            for kx in 0..kw {
                                let wv = blk.weight[(ci * taps + (kz * kh + ky) * kw + kx) * b + j];
                                for (a, &v) in acc.iter_mut().zip(&row[kx..kx + w]) {
                                    *a = T::mac(*a, wv, v);
                                }
                            }
                        }
                    }
                }
                if let Some(r) = &blk.reduce {
                    acc.iter_mut().for_each(|a| *a = a.reduce(r));
                }
                out[(r - blk.rows.start) * w..][..w].copy_from_slice(&acc);
            }
        }
    }
}
