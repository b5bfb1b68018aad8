//! Direct convolutions of UNet layers: "same" 3×3 (2D) and 3×3×3 (3D) convs with zero padding,
//! pointwise (1×1) convs and stride-2 transposed convs, over `f32` (the float reference) and over
//! integers evaluated exactly in `f64` modulo a prime `p < 2^32` (the fixed-point reference).
//!
//! **Layout.** Tensors are channel-major planes `[c][d][h][w]` (`d = 1` in 2D); weights are
//! `[c_out][c_in][kd][kh][kw]` (for transposed convs `W[co][ci][a][b][c]` produces output voxel
//! `(kd·z + a, 2y + b, 2x + c)` from input voxel `(z, y, x)`).
//!
//! **Algorithm.** Register-tiled direct convolution (no im2col): a tile of `B` output channels ×
//! a run of `NV` vectors of pixels of one output row stays in vector registers while the loop
//! walks every input channel and kernel tap; each loaded input vector feeds `B` fused
//! multiply-adds and each broadcast weight `NV`. Pointwise and transposed convs run as a 1×1
//! conv over the flattened plane (a transposed conv computes one virtual output channel per
//! `(co, tap)` and interleaves them). A [`Plan`] re-lays the weights out once, as
//! `[block][ci][tap][B]`; [`Plan::pad`] copies the input once into zero-bordered planes whose
//! rows are long enough for whole-vector loads, so the inner loops carry no bounds logic.
//!
//! **Exact integers.** [`ExactPlan`] keeps every product and partial sum an integer below 2^53
//! in magnitude, so `f64` fused multiply-adds are exact in any order: it reduces the
//! accumulators mod p every `chunk` input channels (`chunk` derived from the largest weight) and
//! splits weights too large for one pass into `hi · 2^s + lo`. Every backend therefore returns
//! the same residues bit for bit.
//!
//! **Threads.** [`Plan::run`] pads the input channels and runs the blocks of output channels in
//! parallel on the rayon pool; [`Plan::run_block`] runs one block for callers that schedule
//! their own work (the input of [`Plan::pad`] is shared read-only).

// The SIMD tile loop is shared by the x86 backends only (NEON plans run the scalar code).
#[cfg(target_arch = "x86_64")]
#[macro_use]
mod tile;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod definition;
mod scalar;
#[cfg(test)]
mod tests;

pub use definition::by_definition;

use std::ops::Range;

use rayon::prelude::*;

use crate::Backend;

/// Errors of a conv plan: shapes no kernel serves, or inputs that do not fit the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The geometry is not one the kernels serve.
    #[error("unsupported conv geometry: {0}")]
    Geometry(&'static str),
    /// A buffer has the wrong length.
    #[error("{what} has {found} elements, expected {expected}")]
    Length {
        /// Which buffer.
        what: &'static str,
        /// Its expected length.
        expected: usize,
        /// Its length.
        found: usize,
    },
    /// An input element of an exact conv is not reduced mod p.
    #[error("input element {index} is {value}, expected a value below p = {p}")]
    Unreduced {
        /// Its index.
        index: usize,
        /// Its value.
        value: u64,
        /// The modulus.
        p: u64,
    },
    /// The modulus is outside `[2, 2^32)`.
    #[error("modulus {0} is out of range: expected 2 <= p < 2^32")]
    Modulus(u64),
    /// The padded input was made by another plan or for other extents.
    #[error("the padded input does not fit this plan")]
    Padded,
    /// The block index is out of range.
    #[error("block {index} is out of range: the plan has {blocks} blocks")]
    Block {
        /// The requested block.
        index: usize,
        /// The number of blocks.
        blocks: usize,
    },
    /// A backend was requested that this CPU cannot run.
    #[error("backend {0:?} is not available on this CPU")]
    BackendUnavailable(Backend),
}

/// What a conv does with its spatial neighbourhood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// "Same" conv, odd kernel, zero padding of `k / 2` on each side, stride 1.
    Same,
    /// 1×1(×1) conv.
    Pointwise,
    /// Transposed conv of stride `kernel` with kernel `[kd, 2, 2]`: output extents
    /// `[kd·d, 2h, 2w]`.
    Transposed,
}

/// The shape of one conv layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// What the conv does.
    pub kind: Kind,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel extents `[kd, kh, kw]` (`kd = 1` in 2D).
    pub kernel: [usize; 3],
}

impl Geometry {
    /// Kernel taps `kd · kh · kw`.
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Output extents for input extents `dims`.
    pub fn out_dims(&self, dims: [usize; 3]) -> [usize; 3] {
        match self.kind {
            Kind::Same | Kind::Pointwise => dims,
            Kind::Transposed => [dims[0] * self.kernel[0], dims[1] * 2, dims[2] * 2],
        }
    }

    fn check(&self) -> Result<(), Error> {
        if self.c_in == 0 || self.c_out == 0 || self.kernel.contains(&0) {
            return Err(Error::Geometry("zero channels or kernel extent"));
        }
        match self.kind {
            Kind::Same if self.kernel.iter().any(|k| k % 2 == 0) => {
                Err(Error::Geometry("a same conv needs an odd kernel"))
            }
            Kind::Pointwise if self.kernel != [1, 1, 1] => {
                Err(Error::Geometry("a pointwise conv has kernel [1, 1, 1]"))
            }
            Kind::Transposed if self.kernel[1] != 2 || self.kernel[2] != 2 => {
                Err(Error::Geometry("a transposed conv has kernel [kd, 2, 2]"))
            }
            _ => Ok(()),
        }
    }
}

/// An element type the kernels serve: `f32`, or `f64` holding exact integers.
pub trait Element: Copy + Default + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// Zero (padding).
    #[doc(hidden)]
    const ZERO: Self;
    /// Output channels per register tile and pixels per widest tile of `backend`.
    #[doc(hidden)]
    fn tile(backend: Backend) -> (usize, usize);
    /// `acc + w · x` as the scalar reference computes it (a product, then a sum).
    #[doc(hidden)]
    fn mac(acc: Self, w: Self, x: Self) -> Self;
    /// The exact integer `self` reduced into `[0, p)`.
    #[doc(hidden)]
    fn reduce(self, r: &Reduce) -> Self;
    /// Runs one block on `backend`.
    #[doc(hidden)]
    fn dispatch(backend: Backend, blk: &Block<'_, Self>, x: &Padded<Self>, out: &mut [&mut [Self]]);
}

impl Element for f32 {
    const ZERO: f32 = 0.0;
    fn tile(backend: Backend) -> (usize, usize) {
        match backend {
            Backend::Avx512 => (avx_consts::B512, 16 * avx_consts::NV),
            Backend::Avx2 => (avx_consts::B256, 8 * avx_consts::NV),
            _ => (scalar::B, 1),
        }
    }
    #[inline(always)]
    fn mac(acc: f32, w: f32, x: f32) -> f32 {
        acc + w * x
    }
    fn reduce(self, _: &Reduce) -> f32 {
        self
    }
    fn dispatch(backend: Backend, blk: &Block<'_, f32>, x: &Padded<f32>, out: &mut [&mut [f32]]) {
        match backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => {
                // SAFETY: `Plan::build` checked avx512f/bw/dq/vl and fma on this CPU
                // (`supports`), and `run_block` checked that `x` was padded for this backend.
                unsafe { avx512::conv_f32(blk, x, out) }
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                // SAFETY: `Plan::build` checked avx2 and fma on this CPU (`supports`).
                unsafe { avx2::conv_f32(blk, x, out) }
            }
            _ => scalar::conv(blk, x, out),
        }
    }
}

impl Element for f64 {
    const ZERO: f64 = 0.0;
    fn tile(backend: Backend) -> (usize, usize) {
        match backend {
            Backend::Avx512 => (avx_consts::B512, 8 * avx_consts::NV),
            Backend::Avx2 => (avx_consts::B256, 4 * avx_consts::NV),
            _ => (scalar::B, 1),
        }
    }
    #[inline(always)]
    fn mac(acc: f64, w: f64, x: f64) -> f64 {
        acc + w * x
    }
    fn reduce(self, r: &Reduce) -> f64 {
        // Exact: `self` is an integer below 2^53 in magnitude.
        (self as i64).rem_euclid(r.p as i64) as f64
    }
    fn dispatch(backend: Backend, blk: &Block<'_, f64>, x: &Padded<f64>, out: &mut [&mut [f64]]) {
        match backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => {
                // SAFETY: `Plan::build` checked avx512f/bw/dq/vl and fma on this CPU
                // (`supports`), and `run_block` checked that `x` was padded for this backend.
                unsafe { avx512::conv_f64(blk, x, out) }
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                // SAFETY: `Plan::build` checked avx2 and fma on this CPU (`supports`).
                unsafe { avx2::conv_f64(blk, x, out) }
            }
            _ => scalar::conv(blk, x, out),
        }
    }
}

/// Tile shapes of the x86 backends (shared so that padding and packing agree with them).
pub(crate) mod avx_consts {
    /// Output channels per tile with 32 zmm registers.
    pub const B512: usize = 8;
    /// Output channels per tile with 16 ymm registers.
    pub const B256: usize = 4;
    /// Largest number of vectors of pixels per tile.
    pub const NV: usize = 3;
}

/// Reduction mod p of exact `f64` accumulators, every `chunk` input channels.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reduce {
    pub(crate) p: f64,
    pub(crate) p_inv: f64,
    pub(crate) chunk: usize,
}

/// One block of the core conv as a backend sees it: a "same" conv with kernel `kernel` (all
/// extents odd) from `c_in` padded planes to `nb ≤ B` output planes.
#[doc(hidden)]
pub struct Block<'a, T> {
    pub(crate) c_in: usize,
    pub(crate) kernel: [usize; 3],
    /// `[ci][tap][B]`.
    pub(crate) weight: &'a [T],
    /// `B` biases (zeros beyond `nb`).
    pub(crate) bias: &'a [T],
    pub(crate) nb: usize,
    pub(crate) reduce: Option<Reduce>,
    /// Output rows to compute (row `z·h + y` of the core conv's output).
    pub(crate) rows: Range<usize>,
}

/// The input of a plan, copied once into zero-bordered planes with rows padded for whole-vector
/// loads.
#[derive(Clone)]
pub struct Padded<T> {
    /// `c_in` planes of `pdims`.
    pub(crate) data: Vec<T>,
    /// Extents of the core conv's input (`[1, 1, d·h·w]` for pointwise and transposed convs).
    pub(crate) core_dims: [usize; 3],
    /// Padded extents.
    pub(crate) pdims: [usize; 3],
    /// The caller's input extents.
    pub(crate) input_dims: [usize; 3],
    pub(crate) geometry: Geometry,
    pub(crate) backend: Backend,
}

impl<T> std::fmt::Debug for Padded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Padded")
            .field("input_dims", &self.input_dims)
            .field("pdims", &self.pdims)
            .finish_non_exhaustive()
    }
}

impl<T> Padded<T> {
    /// The caller's input extents.
    pub fn dims(&self) -> [usize; 3] {
        self.input_dims
    }
}

/// A conv layer with its weights re-laid-out for one backend.
#[derive(Clone)]
pub struct Plan<T: Element> {
    backend: Backend,
    geometry: Geometry,
    /// Kernel of the core conv (`[1, 1, 1]` for pointwise and transposed convs, which compute
    /// `c_out · taps` virtual output channels).
    core_kernel: [usize; 3],
    /// Channels per register tile.
    b: usize,
    /// Pixels per widest tile (row padding unit).
    tile_px: usize,
    /// Real output channels per block.
    block: usize,
    /// `[virtual chunk of b][ci][tap][b]`.
    weight: Vec<T>,
    /// Virtual biases, padded to a multiple of `b`.
    bias: Vec<T>,
    reduce: Option<Reduce>,
}

impl<T: Element> std::fmt::Debug for Plan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("backend", &self.backend)
            .field("geometry", &self.geometry)
            .finish_non_exhaustive()
    }
}

/// Whether this CPU runs the conv kernels of `backend` (the x86 ones also need FMA).
fn supports(backend: Backend) -> bool {
    if !backend.is_available() {
        return false;
    }
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 | Backend::Avx512 => std::arch::is_x86_feature_detected!("fma"),
        _ => true,
    }
}

/// [`Backend::detect`], falling back to scalar where the conv kernels cannot run.
fn detect() -> Backend {
    let b = Backend::detect();
    if supports(b) { b } else { Backend::Scalar }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl<T: Element> Plan<T> {
    /// A plan on the best backend of this CPU ([`Backend::detect`]).
    ///
    /// `weight` is `[c_out][c_in][kd][kh][kw]`, `bias` has `c_out` elements.
    ///
    /// # Errors
    /// [`Error::Geometry`] for shapes the kernels do not serve, [`Error::Length`] if the
    /// buffers do not fit the geometry.
    pub fn new(geometry: Geometry, weight: &[T], bias: &[T]) -> Result<Self, Error> {
        Self::with_backend(geometry, weight, bias, detect())
    }

    /// A plan on `backend` (NEON runs the scalar code).
    ///
    /// # Errors
    /// As [`Plan::new`], and [`Error::BackendUnavailable`] if this CPU cannot run `backend`.
    pub fn with_backend(
        geometry: Geometry,
        weight: &[T],
        bias: &[T],
        backend: Backend,
    ) -> Result<Self, Error> {
        Self::build(geometry, weight, bias, backend, None)
    }

    fn build(
        geometry: Geometry,
        weight: &[T],
        bias: &[T],
        backend: Backend,
        reduce: Option<Reduce>,
    ) -> Result<Self, Error> {
        geometry.check()?;
        if !supports(backend) {
            return Err(Error::BackendUnavailable(backend));
        }
        let backend = if backend == Backend::Neon {
            Backend::Scalar
        } else {
            backend
        };
        let taps = geometry.taps();
        let expected = geometry.c_out * geometry.c_in * taps;
        if weight.len() != expected {
            return Err(Error::Length {
                what: "weight",
                expected,
                found: weight.len(),
            });
        }
        if bias.len() != geometry.c_out {
            return Err(Error::Length {
                what: "bias",
                expected: geometry.c_out,
                found: bias.len(),
            });
        }
        let (b, tile_px) = T::tile(backend);
        let c_in = geometry.c_in;
        // The core conv and its virtual output channels: (real co, tap of a transposed conv).
        let (core_kernel, per_out, block) = match geometry.kind {
            Kind::Same => (geometry.kernel, 1, b),
            Kind::Pointwise => ([1, 1, 1], 1, b),
            // Blocks of whole real channels whose virtual channels start on a tile boundary.
            Kind::Transposed => ([1, 1, 1], taps, b / gcd(b, taps)),
        };
        let virtual_out = geometry.c_out * per_out;
        let chunks = virtual_out.div_ceil(b);
        let core_taps: usize = core_kernel.iter().product();
        let mut packed = vec![T::ZERO; chunks * c_in * core_taps * b];
        let mut vbias = vec![T::ZERO; chunks * b];
        for (v, vb) in vbias.iter_mut().enumerate().take(virtual_out) {
            let (co, t) = (v / per_out, v % per_out);
            let (chunk, j) = (v / b, v % b);
            *vb = bias[co];
            for ci in 0..c_in {
                for ct in 0..core_taps {
                    // Same / pointwise: the tap is the core tap; transposed: the virtual one.
                    let src = (co * c_in + ci) * taps + if per_out > 1 { t } else { ct };
                    packed[((chunk * c_in + ci) * core_taps + ct) * b + j] = weight[src];
                }
            }
        }
        Ok(Self {
            backend,
            geometry,
            core_kernel,
            b,
            tile_px,
            block: block.min(geometry.c_out),
            weight: packed,
            bias: vbias,
            reduce,
        })
    }

    /// The backend this plan runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The conv's shape.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Number of blocks of output channels ([`Plan::run_block`] runs one).
    pub fn blocks(&self) -> usize {
        self.geometry.c_out.div_ceil(self.block)
    }

    /// Output channels per block (the last block may have fewer).
    pub fn block_len(&self) -> usize {
        self.block
    }

    /// The output channels of block `i`.
    pub fn block_channels(&self, i: usize) -> Range<usize> {
        let start = (i * self.block).min(self.geometry.c_out);
        start..(start + self.block).min(self.geometry.c_out)
    }

    /// Copies the input (`c_in` planes of extents `dims`) into the padded layout of this plan.
    ///
    /// # Errors
    /// [`Error::Length`] if `x` does not have `c_in · d · h · w` elements.
    pub fn pad(&self, x: &[T], dims: [usize; 3]) -> Result<Padded<T>, Error> {
        self.pad_with(x, dims, |v| v)
    }

    fn pad_with<S: Copy + Sync>(
        &self,
        x: &[S],
        dims: [usize; 3],
        f: impl Fn(S) -> T + Sync,
    ) -> Result<Padded<T>, Error> {
        let plane: usize = dims.iter().product();
        let expected = self.geometry.c_in * plane;
        if x.len() != expected {
            return Err(Error::Length {
                what: "input",
                expected,
                found: x.len(),
            });
        }
        let core_dims = if self.geometry.kind == Kind::Same {
            dims
        } else {
            [1, 1, plane]
        };
        let [d, h, w] = core_dims;
        let [kd, kh, kw] = self.core_kernel;
        let (hd, hh, hw) = (kd / 2, kh / 2, kw / 2);
        // Rows long enough that a tile starting below `w` loads whole vectors inside its row.
        let pw = w.div_ceil(self.tile_px) * self.tile_px + kw - 1;
        let pdims = [d + 2 * hd, h + 2 * hh, pw];
        let pplane: usize = pdims.iter().product();
        let mut data = vec![T::ZERO; self.geometry.c_in * pplane];
        if plane > 0 {
            let f = &f;
            x.par_chunks_exact(plane)
                .zip(data.par_chunks_exact_mut(pplane))
                .for_each(|(src, dst)| {
                    for (row, src_row) in src.chunks_exact(w).enumerate() {
                        let (z, y) = (row / h, row % h);
                        let start = ((z + hd) * pdims[1] + y + hh) * pw + hw;
                        for (o, &v) in dst[start..start + w].iter_mut().zip(src_row) {
                            *o = f(v);
                        }
                    }
                });
        }
        Ok(Padded {
            data,
            core_dims,
            pdims,
            input_dims: dims,
            geometry: self.geometry,
            backend: self.backend,
        })
    }

    /// Runs block `i` of output channels ([`Plan::block_channels`]) on the padded input `x`,
    /// writing their planes (extents [`Geometry::out_dims`]) to `out`.
    ///
    /// # Errors
    /// [`Error::Padded`] if `x` was padded by a plan of another geometry or backend,
    /// [`Error::Block`] for a block out of range, [`Error::Length`] if `out` does not hold the
    /// block's planes.
    pub fn run_block(&self, x: &Padded<T>, i: usize, out: &mut [T]) -> Result<(), Error> {
        if x.geometry != self.geometry || x.backend != self.backend {
            return Err(Error::Padded);
        }
        if i >= self.blocks() {
            return Err(Error::Block {
                index: i,
                blocks: self.blocks(),
            });
        }
        let channels = self.block_channels(i);
        let out_plane: usize = self.geometry.out_dims(x.input_dims).iter().product();
        let expected = channels.len() * out_plane;
        if out.len() != expected {
            return Err(Error::Length {
                what: "output",
                expected,
                found: out.len(),
            });
        }
        let plane: usize = x.core_dims.iter().product();
        match self.geometry.kind {
            Kind::Same | Kind::Pointwise => self.run_virtual(x, channels, out, plane),
            Kind::Transposed => {
                let taps = self.geometry.taps();
                let v = channels.start * taps..channels.end * taps;
                let mut scratch = vec![T::ZERO; v.len() * plane];
                self.run_virtual(x, v, &mut scratch, plane);
                let [d, h, w] = x.input_dims;
                let kd = self.geometry.kernel[0];
                let (oh, ow) = (2 * h, 2 * w);
                for (o, s) in out
                    .chunks_exact_mut(out_plane)
                    .zip(scratch.chunks_exact(taps * plane))
                {
                    for (t, st) in s.chunks_exact(plane).enumerate() {
                        let (a, bb, c) = (t / 4, (t / 2) % 2, t % 2);
                        for z in 0..d {
                            for y in 0..h {
                                let src = &st[(z * h + y) * w..][..w];
                                let row = ((kd * z + a) * oh + 2 * y + bb) * ow;
                                for (x, &val) in src.iter().enumerate() {
                                    o[row + 2 * x + c] = val;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs virtual output channels `v` (starting on a tile boundary) into `out`.
    fn run_virtual(&self, x: &Padded<T>, v: Range<usize>, out: &mut [T], plane: usize) {
        if plane == 0 {
            return;
        }
        let rows = x.core_dims[0] * x.core_dims[1];
        let mut planes: Vec<&mut [T]> = out.chunks_mut(plane).collect();
        let mut start = v.start;
        for planes in planes.chunks_mut(self.b) {
            self.run_chunk(x, start, planes, 0..rows);
            start += planes.len();
        }
    }

    /// Runs rows `rows` of the virtual output channels `v0..v0 + out.len()` (one tile chunk,
    /// `v0` on its boundary) into `out`, one slice of those rows per channel.
    fn run_chunk(&self, x: &Padded<T>, v0: usize, out: &mut [&mut [T]], rows: Range<usize>) {
        let core_taps: usize = self.core_kernel.iter().product();
        let per_chunk = self.geometry.c_in * core_taps * self.b;
        debug_assert_eq!(v0 % self.b, 0);
        debug_assert!(out.len() <= self.b);
        let chunk = v0 / self.b;
        let blk = Block {
            c_in: self.geometry.c_in,
            kernel: self.core_kernel,
            weight: &self.weight[chunk * per_chunk..(chunk + 1) * per_chunk],
            bias: &self.bias[chunk * self.b..(chunk + 1) * self.b],
            nb: out.len(),
            reduce: self.reduce,
            rows,
        };
        T::dispatch(self.backend, &blk, x, out);
    }

    /// Runs the whole conv on padded input `x` into `out` (`c_out` output planes), in parallel
    /// over tile chunks of output channels and, for "same" convs with few chunks, bands of
    /// rows (so that two threads stay busy on a 16-channel layer).
    fn run_par(&self, x: &Padded<T>, out: &mut [T]) -> Result<(), Error> {
        let out_plane: usize = self.geometry.out_dims(x.input_dims).iter().product();
        if self.geometry.kind == Kind::Transposed || out_plane == 0 {
            return out
                .par_chunks_mut((self.block * out_plane).max(1))
                .enumerate()
                .try_for_each(|(i, o)| self.run_block(x, i, o));
        }
        let rows = x.core_dims[0] * x.core_dims[1];
        let chunks = self.geometry.c_out.div_ceil(self.b);
        let bands = (16 / chunks).clamp(1, rows);
        let band = rows.div_ceil(bands);
        out.par_chunks_mut(self.b * out_plane)
            .enumerate()
            .for_each(|(i, o)| {
                let w = x.core_dims[2];
                // For each band, the band's rows of every channel of the chunk.
                let mut per_band: Vec<Vec<&mut [T]>> = (0..bands).map(|_| Vec::new()).collect();
                for plane in o.chunks_mut(out_plane) {
                    for (k, part) in plane.chunks_mut(band * w).enumerate() {
                        per_band[k].push(part);
                    }
                }
                per_band
                    .into_par_iter()
                    .enumerate()
                    .for_each(|(k, mut planes)| {
                        let r = (k * band).min(rows)..((k + 1) * band).min(rows);
                        if !r.is_empty() {
                            self.run_chunk(x, i * self.b, &mut planes, r);
                        }
                    });
            });
        Ok(())
    }

    /// Runs the whole conv, in parallel over blocks of output channels: `x` has `c_in` planes
    /// of extents `dims`; returns the `c_out` output planes.
    ///
    /// # Errors
    /// As [`Plan::pad`].
    pub fn run(&self, x: &[T], dims: [usize; 3]) -> Result<Vec<T>, Error> {
        let padded = self.pad(x, dims)?;
        let out_plane: usize = self.geometry.out_dims(dims).iter().product();
        let mut out = vec![T::ZERO; self.geometry.c_out * out_plane];
        self.run_par(&padded, &mut out)?;
        Ok(out)
    }
}

/// An integer conv `Σ W·X + B mod p` (any [`Kind`]) evaluated exactly with `f64` fused
/// multiply-adds, for a prime (or any modulus) `p < 2^32`.
///
/// Inputs are residues in `[0, p)`, centred to `(-p/2, p/2)` when padded; outputs are residues.
/// With `|x| < 2^31`, every input channel adds at most `taps · max|W| · (p − 1)/2` to an
/// accumulator, so the plan reduces mod p every `chunk = ⌊(2^53 − 2p) / that⌋` input channels
/// and every sum stays an exact integer. Weights for which `chunk` would be 0 are split as
/// `hi · 2^s + lo` with both halves small, run as two passes and recombined mod p.
#[derive(Clone)]
pub struct ExactPlan {
    p: u64,
    lo: Plan<f64>,
    /// The high half and its shift, when the weights are split.
    hi: Option<(Plan<f64>, u32)>,
}

impl std::fmt::Debug for ExactPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactPlan")
            .field("p", &self.p)
            .field("backend", &self.lo.backend)
            .field("split", &self.hi.as_ref().map(|h| h.1))
            .finish_non_exhaustive()
    }
}

/// The integer in `[0, 2^52)` held by the f64 of bits `bits`, converted without `cvttsd2si`
/// branches so that the loop vectorises: adding 2^52 puts the integer in the mantissa bits.
#[inline(always)]
fn residue(bits: u64) -> u64 {
    const TWO52: f64 = 4_503_599_627_370_496.0;
    (f64::from_bits(bits) + TWO52).to_bits() - TWO52.to_bits()
}

/// Largest exact `f64` integer bound used by [`ExactPlan`].
const EXACT: u128 = 1 << 53;

impl ExactPlan {
    /// A plan on the best backend of this CPU.
    ///
    /// `weight` is `[c_out][c_in][kd][kh][kw]`, `bias` has `c_out` elements (any `i64`; reduced
    /// mod p).
    ///
    /// # Errors
    /// [`Error::Modulus`] unless `2 <= p < 2^32`, and the errors of [`Plan::new`].
    pub fn new(geometry: Geometry, weight: &[i32], bias: &[i64], p: u64) -> Result<Self, Error> {
        Self::with_backend(geometry, weight, bias, p, detect())
    }

    /// A plan on `backend`.
    ///
    /// # Errors
    /// As [`ExactPlan::new`], and [`Error::BackendUnavailable`].
    pub fn with_backend(
        geometry: Geometry,
        weight: &[i32],
        bias: &[i64],
        p: u64,
        backend: Backend,
    ) -> Result<Self, Error> {
        if !(2..1 << 32).contains(&p) {
            return Err(Error::Modulus(p));
        }
        geometry.check()?;
        let taps = geometry.taps() as u128;
        let x_max = u128::from((p - 1) / 2).max(1);
        let chunk_for = |max_w: u128| -> usize {
            let per_channel = taps * max_w.max(1) * x_max;
            ((EXACT - 2 * u128::from(p)) / per_channel).min(usize::MAX as u128) as usize
        };
        let max_w = weight
            .iter()
            .map(|w| u128::from(w.unsigned_abs()))
            .max()
            .unwrap_or(0);
        let bias_r: Vec<f64> = bias
            .iter()
            .map(|&b| b.rem_euclid(p as i64) as f64)
            .collect();
        let reduce = |chunk| Reduce {
            p: p as f64,
            p_inv: 1.0 / p as f64,
            chunk,
        };
        let chunk = chunk_for(max_w);
        if chunk >= 1 {
            let w: Vec<f64> = weight.iter().map(|&w| f64::from(w)).collect();
            let lo = Plan::build(geometry, &w, &bias_r, backend, Some(reduce(chunk)))?;
            return Ok(Self { p, lo, hi: None });
        }
        // W = hi · 2^s + lo with lo in [-2^(s-1), 2^(s-1)): |hi|, |lo| ≤ 2^(32 - s) and 2^(s-1).
        let s = 16u32;
        let half = 1i64 << (s - 1);
        let (mut lo_w, mut hi_w) = (Vec::with_capacity(weight.len()), Vec::new());
        for &w in weight {
            let w = i64::from(w);
            let lo = (w + half).rem_euclid(1 << s) - half;
            lo_w.push(lo as f64);
            hi_w.push(((w - lo) >> s) as f64);
        }
        let part_max = 1u128 << 16;
        let chunk = chunk_for(part_max);
        if chunk == 0 {
            return Err(Error::Geometry("kernel too large for exact f64 sums"));
        }
        let zero = vec![0.0; geometry.c_out];
        let lo = Plan::build(geometry, &lo_w, &bias_r, backend, Some(reduce(chunk)))?;
        let hi = Plan::build(geometry, &hi_w, &zero, backend, Some(reduce(chunk)))?;
        Ok(Self {
            p,
            lo,
            hi: Some((hi, s)),
        })
    }

    /// The backend this plan runs on.
    pub fn backend(&self) -> Backend {
        self.lo.backend
    }

    /// The modulus.
    pub fn p(&self) -> u64 {
        self.p
    }

    /// Whether the weights were split into two passes.
    pub fn is_split(&self) -> bool {
        self.hi.is_some()
    }

    /// The conv's shape.
    pub fn geometry(&self) -> Geometry {
        self.lo.geometry
    }

    /// Number of blocks of output channels.
    pub fn blocks(&self) -> usize {
        self.lo.blocks()
    }

    /// Output channels per block (the last block may have fewer).
    pub fn block_len(&self) -> usize {
        self.lo.block_len()
    }

    /// The output channels of block `i`.
    pub fn block_channels(&self, i: usize) -> Range<usize> {
        self.lo.block_channels(i)
    }

    /// Centres the residues `x` (`c_in` planes of extents `dims`) into the padded layout.
    ///
    /// # Errors
    /// [`Error::Length`] if `x` does not have `c_in · d · h · w` elements,
    /// [`Error::Unreduced`] if an element is not below p.
    pub fn pad(&self, x: &[u64], dims: [usize; 3]) -> Result<Padded<f64>, Error> {
        let p = self.p;
        if x.par_chunks(1 << 14)
            .any(|c| c.iter().fold(false, |bad, &v| bad | (v >= p)))
            && let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| **v >= p)
        {
            return Err(Error::Unreduced { index, value, p });
        }
        let half = (p - 1) / 2;
        self.lo.pad_with(x, dims, |v| {
            if v <= half {
                v as f64
            } else {
                v as f64 - p as f64
            }
        })
    }

    /// Runs block `i` on the padded input `x`, writing the residues of its output planes.
    ///
    /// # Errors
    /// As [`Plan::run_block`].
    pub fn run_block(&self, x: &Padded<f64>, i: usize, out: &mut [u64]) -> Result<(), Error> {
        // The residues come out as f64 in `[0, p)`; convert them in place.
        self.lo
            .run_block(x, i, bytemuck::cast_slice_mut::<u64, f64>(out))?;
        match &self.hi {
            None => {
                for o in out.iter_mut() {
                    *o = residue(*o);
                }
            }
            Some((hi_plan, s)) => {
                let mut hi = vec![0.0f64; out.len()];
                hi_plan.run_block(x, i, &mut hi)?;
                for (o, &h) in out.iter_mut().zip(&hi) {
                    let l = residue(*o);
                    *o = (l + ((h as u64) << s) % self.p) % self.p;
                }
            }
        }
        Ok(())
    }

    /// Runs the whole conv, in parallel over blocks of output channels, and returns the
    /// `c_out` output planes of residues.
    ///
    /// # Errors
    /// As [`ExactPlan::pad`].
    pub fn run(&self, x: &[u64], dims: [usize; 3]) -> Result<Vec<u64>, Error> {
        let padded = self.pad(x, dims)?;
        let out_plane: usize = self.geometry().out_dims(dims).iter().product();
        let mut out = vec![0u64; self.geometry().c_out * out_plane];
        if self.hi.is_some() {
            out.par_chunks_mut((self.block_len() * out_plane).max(1))
                .enumerate()
                .try_for_each(|(i, o)| self.run_block(&padded, i, o))?;
        } else {
            // The residues come out as f64 in `[0, p)`; convert them in place.
            self.lo
                .run_par(&padded, bytemuck::cast_slice_mut::<u64, f64>(&mut out))?;
            out.par_chunks_mut(1 << 14)
                .for_each(|c| c.iter_mut().for_each(|o| *o = residue(*o)));
        }
        Ok(out)
    }
}
