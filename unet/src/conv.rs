//! Convolutions of the float and the fixed-point references, through the register-tiled SIMD
//! kernels of [`bunet_kernels::conv`] (backend chosen at run time, `BUNET_FORCE_SCALAR=1`
//! respected; parallel over blocks of output channels on the rayon pool); and the pooling
//! windows.

use bunet_kernels::conv::{ExactPlan, Geometry, Kind, Plan};
use rayon::prelude::*;

use crate::arch::{ConvKind, ConvSpec};

/// The kernels' geometry of `spec`.
pub(crate) fn geometry(spec: &ConvSpec) -> Geometry {
    Geometry {
        kind: match spec.kind {
            ConvKind::Same => Kind::Same,
            ConvKind::Pointwise => Kind::Pointwise,
            ConvKind::Transposed => Kind::Transposed,
        },
        c_in: spec.c_in,
        c_out: spec.c_out,
        kernel: spec.kernel,
    }
}

/// Output extents of a conv of `kind` with `kernel` on input extents `dims`.
pub(crate) fn out_dims(kind: ConvKind, kernel: [usize; 3], dims: [usize; 3]) -> [usize; 3] {
    match kind {
        ConvKind::Same | ConvKind::Pointwise => dims,
        ConvKind::Transposed => [dims[0] * kernel[0], dims[1] * 2, dims[2] * 2],
    }
}

/// The float conv `spec` (`weight` `[c_out][c_in][kd][kh][kw]`, `bias` `[c_out]`) on `x`
/// (`c_in` planes of extents `dims`): the `c_out` output planes.
///
/// # Panics
/// If the buffers do not fit `spec` (the callers check shapes first).
pub(crate) fn run_float(
    spec: &ConvSpec,
    weight: &[f32],
    bias: &[f32],
    x: &[f32],
    dims: [usize; 3],
) -> Vec<f32> {
    Plan::new(geometry(spec), weight, bias)
        .and_then(|plan| plan.run(x, dims))
        .expect("weights and input fit their conv spec")
}

/// The integer conv `Σ W·X + B mod p` of `spec` on residues `x` (elements in `[0, p)`, taken
/// centred), exact: the residues of the `c_out` output planes.
///
/// # Panics
/// If the buffers do not fit `spec`, an element is not below p or `p ≥ 2^32` (the callers
/// check all three first).
pub(crate) fn run_exact(
    spec: &ConvSpec,
    weight: &[i32],
    bias: &[i64],
    p: u64,
    x: &[u64],
    dims: [usize; 3],
) -> Vec<u64> {
    ExactPlan::new(geometry(spec), weight, bias, p)
        .and_then(|plan| plan.run(x, dims))
        .expect("weights and residues fit their conv spec, p < 2^32")
}

/// Applies `f` to every pooling window of every channel: the 2×2 (2×2×2 when `deep`) windows of
/// `x` (`channels` planes of extents `dims`), each passed as a slice of its 4 (8) elements.
pub(crate) fn pool<T: Copy + Send + Sync, O: Copy + Default + Send>(
    x: &[T],
    channels: usize,
    dims: [usize; 3],
    deep: bool,
    f: &(impl Fn(&[T]) -> O + Sync),
) -> (Vec<O>, [usize; 3]) {
    let [d, h, w] = dims;
    let sd = if deep { 2 } else { 1 };
    let od = [d / sd, h / 2, w / 2];
    let out_plane: usize = od.iter().product();
    let plane = d * h * w;
    let mut out = vec![O::default(); channels * out_plane];
    out.par_chunks_mut(out_plane.max(1))
        .enumerate()
        .for_each(|(c, out)| {
            let xin = &x[c * plane..(c + 1) * plane];
            let mut window = [x[0]; 8];
            for z in 0..od[0] {
                for y in 0..od[1] {
                    for xx in 0..od[2] {
                        let mut n = 0;
                        for a in 0..sd {
                            for b in 0..2 {
                                let base = ((z * sd + a) * h + 2 * y + b) * w + 2 * xx;
                                window[n] = xin[base];
                                window[n + 1] = xin[base + 1];
                                n += 2;
                            }
                        }
                        out[(z * od[1] + y) * od[2] + xx] = f(&window[..n]);
                    }
                }
            }
        });
    (out, od)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conv by its definition (the kernels' oracle, shared with their own tests).
    fn naive(
        spec: &ConvSpec,
        weight: &[f32],
        bias: &[f32],
        x: &[f32],
        dims: [usize; 3],
    ) -> Vec<f32> {
        bunet_kernels::conv::by_definition(
            &geometry(spec),
            dims,
            |co| bias[co],
            |s, wi, xi| s + weight[wi] * x[xi],
        )
    }

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    fn spec(kind: ConvKind, c_in: usize, c_out: usize, kernel: [usize; 3]) -> ConvSpec {
        ConvSpec::for_test(kind, c_in, c_out, kernel)
    }

    #[test]
    fn direct_conv_equals_naive_definition() {
        let mut seed = 1u64;
        for (kind, kernel, dims) in [
            (ConvKind::Same, [1, 3, 3], [1, 5, 7]),
            (ConvKind::Same, [3, 3, 3], [3, 4, 5]),
            (ConvKind::Same, [1, 3, 3], [1, 1, 1]),
            (ConvKind::Same, [1, 3, 3], [1, 3, 16]),
            (ConvKind::Same, [1, 3, 3], [1, 5, 8]),
            (ConvKind::Same, [3, 3, 3], [2, 3, 4]),
            (ConvKind::Transposed, [1, 2, 2], [1, 3, 4]),
            (ConvKind::Transposed, [2, 2, 2], [2, 3, 2]),
            (ConvKind::Pointwise, [1, 1, 1], [1, 4, 4]),
        ] {
            for c_out in [4, 3, 8] {
                let s = spec(kind, 3, c_out, kernel);
                let taps: usize = kernel.iter().product();
                let weight: Vec<f32> = (0..3 * c_out * taps).map(|_| lcg(&mut seed)).collect();
                let bias: Vec<f32> = (0..c_out).map(|_| lcg(&mut seed)).collect();
                let x: Vec<f32> = (0..3 * dims.iter().product::<usize>())
                    .map(|_| lcg(&mut seed))
                    .collect();
                let fast = run_float(&s, &weight, &bias, &x, dims);
                let slow = naive(&s, &weight, &bias, &x, dims);
                assert_eq!(fast.len(), slow.len());
                for (a, b) in fast.iter().zip(&slow) {
                    assert!((a - b).abs() < 1e-5, "{kind:?} {dims:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn transposed_conv_is_a_conv_of_the_zero_inserted_input() {
        let mut seed = 3u64;
        let (c_in, c_out, h, w) = (3, 2, 3, 4);
        let weight: Vec<f32> = (0..c_in * c_out * 4).map(|_| lcg(&mut seed)).collect();
        let bias: Vec<f32> = (0..c_out).map(|_| lcg(&mut seed)).collect();
        let x: Vec<f32> = (0..c_in * h * w).map(|_| lcg(&mut seed)).collect();
        let s = spec(ConvKind::Transposed, c_in, c_out, [1, 2, 2]);
        let fast = run_float(&s, &weight, &bias, &x, [1, h, w]);
        let (oh, ow) = (2 * h, 2 * w);
        for co in 0..c_out {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = bias[co];
                    for ci in 0..c_in {
                        for a in 0..2 {
                            for b in 0..2 {
                                // u[i − a][j − b] is non-zero only at even coordinates.
                                let (ui, uj) = (i as isize - a as isize, j as isize - b as isize);
                                if ui < 0 || uj < 0 || ui % 2 != 0 || uj % 2 != 0 {
                                    continue;
                                }
                                let u = x[ci * h * w + (ui as usize / 2) * w + uj as usize / 2];
                                s += weight[(co * c_in + ci) * 4 + a * 2 + b] * u;
                            }
                        }
                    }
                    let got = fast[(co * oh + i) * ow + j];
                    assert!((got - s).abs() < 1e-5, "{co} {i} {j}: {got} vs {s}");
                }
            }
        }
    }
}
