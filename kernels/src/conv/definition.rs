//! The convolution by its definition: one oracle for the differential tests of the kernels and
//! of the model crate (float, fixed-point and secure convolutions).

use super::{Geometry, Kind};

/// The conv of geometry `g` on inputs of extents `dims` by its definition, in the accumulator
/// type of the caller's choice: `bias(co)` starts output channel `co`'s sums and
/// `term(acc, weight index, input index)` adds one product (indices into `[c_out][c_in][taps]`
/// weights and `[c_in][d][h][w]` inputs). Returns the `c_out` output planes.
///
/// `O(c_out · c_in · taps · outputs)` and branchy: the oracle of the differential tests of
/// this crate's backends and of the model's convolutions, never a hot path.
pub fn by_definition<A: Copy>(
    g: &Geometry,
    dims: [usize; 3],
    bias: impl Fn(usize) -> A,
    term: impl Fn(A, usize, usize) -> A,
) -> Vec<A> {
    let [d, h, w] = dims;
    let od = g.out_dims(dims);
    let [kd, kh, kw] = g.kernel;
    let taps = kd * kh * kw;
    let mut out = Vec::with_capacity(g.c_out * od.iter().product::<usize>());
    for co in 0..g.c_out {
        for z in 0..od[0] {
            for y in 0..od[1] {
                for xx in 0..od[2] {
                    let mut s = bias(co);
                    for ci in 0..g.c_in {
                        for a in 0..kd {
                            for b in 0..kh {
                                for c in 0..kw {
                                    let (zi, yi, xi) = match g.kind {
                                        Kind::Transposed => {
                                            if z % kd != a || y % 2 != b || xx % 2 != c {
                                                continue;
                                            }
                                            ((z / kd) as isize, (y / 2) as isize, (xx / 2) as isize)
                                        }
                                        _ => (
                                            (z + a) as isize - (kd / 2) as isize,
                                            (y + b) as isize - (kh / 2) as isize,
                                            (xx + c) as isize - (kw / 2) as isize,
                                        ),
                                    };
                                    if zi < 0
                                        || yi < 0
                                        || xi < 0
                                        || zi >= d as isize
                                        || yi >= h as isize
                                        || xi >= w as isize
                                    {
                                        continue;
                                    }
                                    let wi = (co * g.c_in + ci) * taps + (a * kh + b) * kw + c;
                                    let xi = ci * d * h * w
                                        + ((zi as usize) * h + yi as usize) * w
                                        + xi as usize;
                                    s = term(s, wi, xi);
                                }
                            }
                        }
                    }
                    out.push(s);
                }
            }
        }
    }
    out
}
