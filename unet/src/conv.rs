//! Direct convolution loops shared by the float and the fixed-point references.
//!
//! No im2col: every output channel is one rayon task that walks its output rows; for each row it
//! accumulates, over input channels and kernel taps, `weight × shifted input row` into a row of
//! accumulators. The inner loop is a contiguous multiply-add over a row that LLVM vectorises
//! (f32 × f32 → f32 for the float reference; i32 × i32 → i64 for the fixed-point one, `vpmuldq`).

use rayon::prelude::*;

use crate::arch::ConvKind;

/// An input element type and its accumulator.
pub(crate) trait Mac: Copy + Send + Sync {
    /// The zero of the input type (padding).
    const ZERO: Self;
    /// Widest pixel tile worth using: the `4 · MAX_TILE` accumulators must fit the 16 vector
    /// registers of the x86-64 baseline with room to spare, or they spill (seen in profiles).
    const MAX_TILE: usize;
    /// The accumulator.
    type Acc: Copy + Send + Sync + Default;
    /// `acc += w · x`.
    fn mac(acc: &mut Self::Acc, w: Self, x: Self);
    /// `a[i] += w · x[i]` for a tile held in registers. Each type picks the loop shape its
    /// code generation likes best (measured on the x86-64 baseline).
    fn mac_tile<const V: usize>(a: &mut [Self::Acc; V], w: Self, x: &[Self; V]);
}

impl Mac for f32 {
    const ZERO: f32 = 0.0;
    const MAX_TILE: usize = 8;
    type Acc = f32;
    #[inline(always)]
    fn mac(acc: &mut f32, w: f32, x: f32) {
        *acc += w * x;
    }
    #[inline(always)]
    fn mac_tile<const V: usize>(a: &mut [f32; V], w: f32, x: &[f32; V]) {
        // Indexed: SLP-vectorises into packed multiply-adds.
        for i in 0..V {
            a[i] += w * x[i];
        }
    }
}

/// Exact integer arithmetic in f64: the fixed-point reference uses it while every product and
/// every partial sum stays below 2^53 in magnitude (the caller reduces mod p often enough), so
/// that packed double multiply-adds do the work of `imul`s.
impl Mac for f64 {
    const ZERO: f64 = 0.0;
    const MAX_TILE: usize = 4;
    type Acc = f64;
    #[inline(always)]
    fn mac(acc: &mut f64, w: f64, x: f64) {
        *acc += w * x;
    }
    #[inline(always)]
    fn mac_tile<const V: usize>(a: &mut [f64; V], w: f64, x: &[f64; V]) {
        for i in 0..V {
            a[i] += w * x[i];
        }
    }
}

impl Mac for i32 {
    const ZERO: i32 = 0;
    const MAX_TILE: usize = 4;
    type Acc = i64;
    #[inline(always)]
    fn mac(acc: &mut i64, w: i32, x: i32) {
        *acc += i64::from(w) * i64::from(x);
    }
    #[inline(always)]
    fn mac_tile<const V: usize>(a: &mut [i64; V], w: i32, x: &[i32; V]) {
        // Scalar `imul`s: the baseline has no packed 64-bit multiply, and the emulated one is
        // slower (measured 2×).
        for (ai, &xv) in a.iter_mut().zip(x) {
            *ai += i64::from(w) * i64::from(xv);
        }
    }
}

/// The weights of one conv in the layout every loop uses: `weight[co][ci][kd][kh][kw]`.
pub(crate) struct Kernel<'a, T: Mac> {
    pub kind: ConvKind,
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: [usize; 3],
    pub weight: &'a [T],
    pub bias: &'a [T::Acc],
}

/// Output extents of a conv of `kind` with `kernel` on input extents `dims`.
pub(crate) fn out_dims(kind: ConvKind, kernel: [usize; 3], dims: [usize; 3]) -> [usize; 3] {
    match kind {
        ConvKind::Same | ConvKind::Pointwise => dims,
        ConvKind::Transposed => [dims[0] * kernel[0], dims[1] * 2, dims[2] * 2],
    }
}

/// `acc[i] += w · x[i]` over the overlap of `acc` and `x` shifted by `dx` (zero padding).
#[inline(always)]
fn mac_row<T: Mac>(acc: &mut [T::Acc], x: &[T], w: T, dx: isize) {
    let n = acc.len();
    let (acc, x) = if dx >= 0 {
        let dx = dx as usize;
        (&mut acc[..n - dx], &x[dx..])
    } else {
        let dx = (-dx) as usize;
        (&mut acc[dx..], &x[..n - dx])
    };
    for (a, &v) in acc.iter_mut().zip(x) {
        T::mac(a, w, v);
    }
}

/// Register-tiled 3×3(×3) "same" conv for `B` output channels starting at `co0`, written to
/// `out` (`B` consecutive output planes). `xpad` is the input with a zero border of one pixel on
/// every padded axis (`pdims` its extents), so the inner loops need no bounds logic: every
/// accumulator tile `[B][V]` stays in registers across all input channels and taps, and each
/// loaded input vector feeds `B` multiply-adds.
#[allow(clippy::too_many_arguments)]
fn same_tile<T: Mac, O: Copy, const V: usize, const B: usize>(
    k: &Kernel<'_, T>,
    packed: &[T],
    xpad: &[T],
    dims: [usize; 3],
    pdims: [usize; 3],
    co0: usize,
    out: &mut [O],
    chunk: usize,
    reduce: &(impl Fn(&mut T::Acc) + Sync),
    finish: &(impl Fn(T::Acc) -> O + Sync),
) {
    let [d, h, w] = dims;
    let [kd, kh, kw] = k.kernel;
    let taps = kd * kh * kw;
    let pplane = pdims[0] * pdims[1] * pdims[2];
    let plane = d * h * w;
    for z in 0..d {
        for y in 0..h {
            for x0 in (0..w).step_by(V) {
                let mut acc = [[T::Acc::default(); V]; B];
                for (b, a) in acc.iter_mut().enumerate() {
                    a.fill(k.bias[co0 + b]);
                }
                for ci in 0..k.c_in {
                    if ci > 0 && ci % chunk == 0 {
                        acc.iter_mut().flatten().for_each(reduce);
                    }
                    let xin = &xpad[ci * pplane..(ci + 1) * pplane];
                    let wk = &packed[ci * taps * B..(ci + 1) * taps * B];
                    for kz in 0..kd {
                        for ky in 0..kh {
                            let start = ((z + kz) * pdims[1] + y + ky) * pdims[2] + x0;
                            let row = &xin[start..start + V + kw - 1];
                            for kx in 0..kw {
                                let xs: &[T; V] = row[kx..kx + V]
                                    .try_into()
                                    .expect("the slice has V elements");
                                let ws = &wk[((kz * kh + ky) * kw + kx) * B..][..B];
                                for (a, &wv) in acc.iter_mut().zip(ws) {
                                    T::mac_tile::<V>(a, wv, xs);
                                }
                            }
                        }
                    }
                }
                for (b, a) in acc.iter().enumerate() {
                    let o = &mut out[b * plane + (z * h + y) * w + x0..][..V];
                    for (o, &v) in o.iter_mut().zip(a) {
                        *o = finish(v);
                    }
                }
            }
        }
    }
}

/// The same conv through [`same_tile`], parallel over blocks of output channels.
fn run_same<T: Mac, O: Copy + Default + Send>(
    k: &Kernel<'_, T>,
    x: &[T],
    dims: [usize; 3],
    chunk: usize,
    reduce: &(impl Fn(&mut T::Acc) + Sync),
    finish: &(impl Fn(T::Acc) -> O + Sync),
) -> Vec<O> {
    let [d, h, w] = dims;
    let [kd, kh, kw] = k.kernel;
    let (pd, ph, pw) = (kd / 2, kh / 2, kw / 2);
    let pdims = [d + 2 * pd, h + 2 * ph, w + 2 * pw];
    let pplane = pdims.iter().product::<usize>();
    let plane = d * h * w;
    let mut xpad: Vec<T> = Vec::with_capacity(k.c_in * pplane);
    let taps = kd * kh * kw;
    for ci in 0..k.c_in {
        let xin = &x[ci * plane..(ci + 1) * plane];
        for pz in 0..pdims[0] {
            for py in 0..pdims[1] {
                let inside = pz >= pd && pz < d + pd && py >= ph && py < h + ph;
                for px in 0..pdims[2] {
                    if inside && px >= pw && px < w + pw {
                        xpad.push(xin[((pz - pd) * h + py - ph) * w + px - pw]);
                    } else {
                        xpad.push(T::ZERO);
                    }
                }
            }
        }
    }
    let b = if k.c_out.is_multiple_of(4) { 4 } else { 1 };
    let v = [16, 8, 4]
        .into_iter()
        .filter(|&v| v <= T::MAX_TILE)
        .find(|v| w.is_multiple_of(*v))
        .unwrap_or(1);
    let mut out = vec![O::default(); k.c_out * plane];
    out.par_chunks_mut((b * plane).max(1))
        .enumerate()
        .for_each(|(blk, out)| {
            let co0 = blk * b;
            // Weights of this block as [ci][tap][b].
            let mut packed = Vec::with_capacity(k.c_in * taps * b);
            for ci in 0..k.c_in {
                for t in 0..taps {
                    for j in 0..b {
                        packed.push(k.weight[((co0 + j) * k.c_in + ci) * taps + t]);
                    }
                }
            }
            macro_rules! tile {
                ($v:literal, $b:literal) => {
                    same_tile::<T, O, $v, $b>(
                        k, &packed, &xpad, dims, pdims, co0, out, chunk, reduce, finish,
                    )
                };
            }
            match (v, b) {
                (16, 4) => tile!(16, 4),
                (8, 4) => tile!(8, 4),
                (4, 4) => tile!(4, 4),
                (_, 4) => tile!(1, 4),
                (16, _) => tile!(16, 1),
                (8, _) => tile!(8, 1),
                (4, _) => tile!(4, 1),
                _ => tile!(1, 1),
            }
        });
    out
}

/// Runs the conv `k` on `x` (`k.c_in` planes of extents `dims`) and returns the output planes,
/// mapped through `finish`. Every `chunk` input channels the accumulators pass through `reduce`
/// (the fixed-point reference reduces mod p there so that i64 never overflows).
pub(crate) fn run<T: Mac, O: Copy + Default + Send>(
    k: &Kernel<'_, T>,
    x: &[T],
    dims: [usize; 3],
    chunk: usize,
    reduce: &(impl Fn(&mut T::Acc) + Sync),
    finish: &(impl Fn(T::Acc) -> O + Sync),
) -> Vec<O> {
    let [d, h, w] = dims;
    let plane = d * h * w;
    debug_assert_eq!(x.len(), k.c_in * plane);
    let od = out_dims(k.kind, k.kernel, dims);
    let out_plane: usize = od.iter().product();
    let taps: usize = k.kernel.iter().product();
    let chunk = chunk.max(1);
    if k.kind == ConvKind::Same {
        return run_same(k, x, dims, chunk, reduce, finish);
    }
    let mut out = vec![O::default(); k.c_out * out_plane];
    out.par_chunks_mut(out_plane.max(1))
        .enumerate()
        .for_each(|(co, out)| {
            let weights = &k.weight[co * k.c_in * taps..(co + 1) * k.c_in * taps];
            let bias = k.bias[co];
            match k.kind {
                ConvKind::Same => unreachable!("same convs take run_same"),
                ConvKind::Pointwise => {
                    let mut acc = vec![bias; plane];
                    for ci in 0..k.c_in {
                        if ci > 0 && ci % chunk == 0 {
                            acc.iter_mut().for_each(reduce);
                        }
                        mac_row::<T>(&mut acc, &x[ci * plane..(ci + 1) * plane], weights[ci], 0);
                    }
                    for (o, &a) in out.iter_mut().zip(&acc) {
                        *o = finish(a);
                    }
                }
                ConvKind::Transposed => {
                    // out[co][kd·z + a][2y + b][2x + c] = bias + Σ_ci W[co][ci][a][b][c] · x[ci][z][y][x]
                    let kd = k.kernel[0];
                    let (oh, ow) = (2 * h, 2 * w);
                    let mut even = vec![T::Acc::default(); w];
                    let mut odd = vec![T::Acc::default(); w];
                    for zo in 0..d * kd {
                        let (zi, a) = (zo / kd, zo % kd);
                        for yo in 0..oh {
                            let (yi, b) = (yo / 2, yo % 2);
                            even.fill(bias);
                            odd.fill(bias);
                            for ci in 0..k.c_in {
                                if ci > 0 && ci % chunk == 0 {
                                    even.iter_mut().for_each(reduce);
                                    odd.iter_mut().for_each(reduce);
                                }
                                let start = ci * plane + (zi * h + yi) * w;
                                let row = &x[start..start + w];
                                let wk = &weights[ci * taps + (a * 2 + b) * 2..][..2];
                                mac_row::<T>(&mut even, row, wk[0], 0);
                                mac_row::<T>(&mut odd, row, wk[1], 0);
                            }
                            let o = &mut out[(zo * oh + yo) * ow..(zo * oh + yo + 1) * ow];
                            for (pair, (&e, &f)) in o.chunks_exact_mut(2).zip(even.iter().zip(&odd))
                            {
                                pair[0] = finish(e);
                                pair[1] = finish(f);
                            }
                        }
                    }
                }
            }
        });
    out
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

    /// Naive conv straight from the definition, for the differential tests.
    fn naive(k: &Kernel<'_, f32>, x: &[f32], dims: [usize; 3]) -> Vec<f32> {
        let [d, h, w] = dims;
        let od = out_dims(k.kind, k.kernel, dims);
        let [kd, kh, kw] = k.kernel;
        let taps = kd * kh * kw;
        let mut out = vec![0.0f32; k.c_out * od.iter().product::<usize>()];
        for co in 0..k.c_out {
            for z in 0..od[0] {
                for y in 0..od[1] {
                    for xx in 0..od[2] {
                        let mut s = k.bias[co];
                        for ci in 0..k.c_in {
                            for a in 0..kd {
                                for b in 0..kh {
                                    for c in 0..kw {
                                        let wv = k.weight
                                            [(co * k.c_in + ci) * taps + (a * kh + b) * kw + c];
                                        let (zi, yi, xi) = match k.kind {
                                            ConvKind::Transposed => {
                                                if z % kd != a || y % 2 != b || xx % 2 != c {
                                                    continue;
                                                }
                                                (
                                                    (z / kd) as isize,
                                                    (y / 2) as isize,
                                                    (xx / 2) as isize,
                                                )
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
                                        let (zi, yi, xi) = (zi as usize, yi as usize, xi as usize);
                                        s += wv * x[ci * d * h * w + (zi * h + yi) * w + xi];
                                    }
                                }
                            }
                        }
                        out[((co * od[0] + z) * od[1] + y) * od[2] + xx] = s;
                    }
                }
            }
        }
        out
    }

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
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
                let c_in = 3;
                let taps: usize = kernel.iter().product();
                let weight: Vec<f32> = (0..c_in * c_out * taps).map(|_| lcg(&mut seed)).collect();
                let bias: Vec<f32> = (0..c_out).map(|_| lcg(&mut seed)).collect();
                let x: Vec<f32> = (0..c_in * dims.iter().product::<usize>())
                    .map(|_| lcg(&mut seed))
                    .collect();
                let k = Kernel {
                    kind,
                    c_in,
                    c_out,
                    kernel,
                    weight: &weight,
                    bias: &bias,
                };
                let fast = run(&k, &x, dims, usize::MAX, &|_: &mut f32| {}, &|a| a);
                let slow = naive(&k, &x, dims);
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
        let k = Kernel {
            kind: ConvKind::Transposed,
            c_in,
            c_out,
            kernel: [1, 2, 2],
            weight: &weight,
            bias: &bias,
        };
        let fast = run(&k, &x, [1, h, w], usize::MAX, &|_: &mut f32| {}, &|a| a);
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
