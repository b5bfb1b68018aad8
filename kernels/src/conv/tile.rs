//! The register-tiled conv loop, written once and instantiated per instruction set and element
//! type by the backend modules.

/// Defines `pub(super) fn $name(blk, x, out)`: the block `blk` on the padded input `x`, with
/// `$b` output channels × up to `NV` vectors of `$lanes` pixels held in registers; `out[b]`
/// receives the rows `blk.rows` (row `r` is `(z, y) = (r / h, r % h)`) of output channel `b`.
///
/// Arguments: the element type, vector type, lanes, channels per tile, the target features, and
/// the intrinsics `zero()`, `loadu(ptr)`, `storeu(ptr, v)`, `set1(e)`, `fmadd(a, b, c)` and
/// `reduce(v, &Reduce)` (exact residue in `[0, p)`; unused for `f32`).
macro_rules! simd_conv {
    (
        $name:ident, $t:ty, $v:ty, $lanes:expr, $b:expr, $feat:literal,
        $zero:ident, $loadu:ident, $storeu:ident, $set1:ident, $fmadd:ident, $reduce:ident
    ) => {
        #[target_feature(enable = $feat)]
        pub(super) fn $name(blk: &Block<'_, $t>, x: &Padded<$t>, out: &mut [&mut [$t]]) {
            const B: usize = $b;
            const L: usize = $lanes;
            debug_assert_eq!(blk.bias.len(), B);
            let w = x.core_dims[2];
            let tile = L * NV;

            #[target_feature(enable = $feat)]
            #[inline]
            fn run_tile<const N: usize>(
                blk: &Block<'_, $t>,
                x: &Padded<$t>,
                out: &mut [&mut [$t]],
                r: usize,
                x0: usize,
            ) {
                let [_, h, w] = x.core_dims;
                let (z, y) = (r / h, r % h);
                let r = r - blk.rows.start;
                let [_, ph, pw] = x.pdims;
                let pplane: usize = x.pdims.iter().product();
                let [kd, kh, kw] = blk.kernel;
                let taps = kd * kh * kw;
                let chunk = blk.reduce.map_or(usize::MAX, |r| r.chunk).max(1);
                // Every loop over `acc` has a constant trip count, so that LLVM unrolls it and
                // keeps the accumulators in registers (a run-time bound anywhere, as a zip with
                // a slice, would keep them in memory for the whole tile).
                let bias: &[$t; B] = blk.bias.try_into().expect("B biases");
                let mut acc = [[$zero(); N]; B];
                for b in 0..B {
                    acc[b] = [$set1(bias[b]); N];
                }
                let span = N * L + kw - 1;
                for ci in 0..blk.c_in {
                    if let Some(r) = &blk.reduce
                        && ci > 0
                        && ci % chunk == 0
                    {
                        for b in 0..B {
                            for v in 0..N {
                                acc[b][v] = $reduce(acc[b][v], r);
                            }
                        }
                    }
                    let wci = &blk.weight[ci * taps * B..(ci + 1) * taps * B];
                    for kz in 0..kd {
                        for ky in 0..kh {
                            let start = ci * pplane + ((z + kz) * ph + y + ky) * pw + x0;
                            let row = &x.data[start..start + span];
                            for kx in 0..kw {
                                let mut xs = [$zero(); N];
                                for (v, xv) in xs.iter_mut().enumerate() {
                                    // SAFETY: `row` has `N·L + kw − 1` elements and
                                    // `kx + v·L + L ≤ kw − 1 + N·L`; unaligned loads are allowed.
                                    *xv = unsafe { $loadu(row.as_ptr().add(kx + v * L)) };
                                }
                                let ws: &[$t; B] = wci[((kz * kh + ky) * kw + kx) * B..][..B]
                                    .try_into()
                                    .expect("the slice has B elements");
                                for b in 0..B {
                                    let wv = $set1(ws[b]);
                                    for v in 0..N {
                                        acc[b][v] = $fmadd(xs[v], wv, acc[b][v]);
                                    }
                                }
                            }
                        }
                    }
                }
                if let Some(r) = &blk.reduce {
                    for b in 0..B {
                        for v in 0..N {
                            acc[b][v] = $reduce(acc[b][v], r);
                        }
                    }
                }
                let n = (N * L).min(w - x0);
                for (b, a) in acc.iter().enumerate() {
                    if b >= blk.nb {
                        break;
                    }
                    let o = &mut out[b][r * w + x0..][..n];
                    if n == N * L {
                        for (v, &av) in a.iter().enumerate() {
                            // SAFETY: `o` has `N·L` elements, this store writes `v·L..(v+1)·L`.
                            unsafe { $storeu(o.as_mut_ptr().add(v * L), av) };
                        }
                    } else {
                        let mut buf = [<$t>::default(); 4 * 16];
                        for (v, &av) in a.iter().enumerate() {
                            // SAFETY: `buf` holds 64 ≥ N·L elements (N ≤ 4, L ≤ 16).
                            unsafe { $storeu(buf.as_mut_ptr().add(v * L), av) };
                        }
                        o.copy_from_slice(&buf[..n]);
                    }
                }
            }

            for r in blk.rows.clone() {
                let mut x0 = 0;
                while x0 < w {
                    let rem = w - x0;
                    if rem >= tile {
                        run_tile::<NV>(blk, x, out, r, x0);
                        x0 += tile;
                    } else {
                        match rem.div_ceil(L) {
                            1 => run_tile::<1>(blk, x, out, r, x0),
                            2 => run_tile::<2>(blk, x, out, r, x0),
                            _ => run_tile::<NV>(blk, x, out, r, x0),
                        }
                        x0 = w;
                    }
                }
            }
        }
    };
}
