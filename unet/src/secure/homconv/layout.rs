//! The tiling and flattening of HomConv: how a 2D or 3D conv layer on an image of given extents
//! is cut into tiles whose cyclic convolutions fit the slots of one ciphertext.
//!
//! A tile of `td × th × tw` outputs reads its input with a halo of `lo` elements before and `hi`
//! after it along each axis (zero outside the image). The haloed input is flattened with strides
//! `(S_d, S_h, 1)`, `S_h = tw + halo_w`, `S_d = (th + halo_h) · S_h`, into a vector of length `m`
//! (a power of two `≥ (td + halo_d) · S_d`), and the filter tap `W[a][b][c]` sits at
//! `fd(a)·S_d + fh(b)·S_h + fw(c)` with `f(a) = e − 1 − a` for a "same" conv (a correlation)
//! and `f(a) = a` for a transposed one (a true convolution of the zero-inserted input); `e` is
//! the kernel extent on that axis. Output `(a, b, c)` of the tile is then entry
//! `(a + e_d − 1)·S_d + (b + e_h − 1)·S_h + c + e_w − 1` of the length-`m` *cyclic* convolution:
//! - no term wraps around, because every input index is `< m` and every filter index `≤` the
//!   output index;
//! - no term carries from one axis into the next: along the width, an input offset `i_w ≤ S_w − 1`
//!   and a filter offset `f_w ≤ e_w − 1` sum to at most `S_w + e_w − 2`, less than the
//!   `S_w + e_w − 1` a carry into a valid output's column `c + e_w − 1 ≥ e_w − 1` would need (the
//!   same holds for the height).
//!
//! A transposed conv of kernel `[kd, 2, 2]` (stride = kernel) is the conv of the zero-inserted
//! input `U[kd·z][2y][2x] = X[z][y][x]` with `Y[i] = Σ_a W[a]·U[i − a]`: halo `e − 1` before a
//! tile and none after it, filter not flipped.

use bunet_crypto::pahe::Params;

use super::HomConvError;
use crate::arch::{ConvKind, ConvSpec};
use crate::tensor::Tensor;

/// Upload ciphertexts per round trip of HomConv: the tiles are processed in batches of
/// `⌊UPLOAD_BATCH / c_in⌋` (at least one), each a round trip (the client uploads the batch's
/// tiles of every input channel, the server returns the batch's tiles of every group), which
/// bounds both parties' memory whatever the image size (≈ 50 MB of seeded ciphertexts and 130 MB
/// of expanded ones at N = 8192 with four primes).
pub const UPLOAD_BATCH: usize = 256;

/// How a conv layer on an image of given extents is tiled and packed into slots (public: both
/// parties derive it from the layer shape, the image extents and the parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub(super) c_in: usize,
    pub(super) c_out: usize,
    /// Input extents `[d, h, w]`.
    pub(super) in_dims: [usize; 3],
    /// Output extents (for a transposed conv, those of the zero-inserted input too).
    pub(super) dims: [usize; 3],
    /// Kernel extents `[kd, kh, kw]`.
    pub(super) kernel: [usize; 3],
    pub(super) transposed: bool,
    /// Halo before and after a tile, per axis.
    pub(super) lo: [usize; 3],
    pub(super) hi: [usize; 3],
    /// Outputs per tile, per axis.
    pub(super) tile: [usize; 3],
    /// Tiles per axis.
    pub(super) counts: [usize; 3],
    pub(super) m: usize,
    pub(super) replicas: usize,
    pub(super) slots: usize,
}

/// The tile shape and DFT length that minimise the bytes of one HomConv (then its plaintext
/// products): `tiles · (c_in · upload + groups · download)`.
struct Choice {
    tile: [usize; 3],
    m: usize,
}

#[allow(clippy::too_many_arguments)]
fn choose(
    dims: [usize; 3],
    halo: [usize; 3],
    cap: usize,
    slots: usize,
    c_in: usize,
    c_out: usize,
    upload: usize,
    download: usize,
) -> Option<Choice> {
    let mut best: Option<((u128, u128), Choice)> = None;
    let mut m = 2;
    while m <= slots {
        let groups = c_out.div_ceil(slots / m);
        for td in 1..=dims[0].min(cap) {
            let ed = td + halo[0];
            if ed * (1 + halo[1]) * (1 + halo[2]) > m {
                break;
            }
            for th in 1..=dims[1].min(cap) {
                let eh = th + halo[1];
                if ed * eh * (1 + halo[2]) > m {
                    break;
                }
                let tw = dims[2].min(cap).min(m / (ed * eh) - halo[2]);
                let tiles =
                    (dims[0].div_ceil(td) * dims[1].div_ceil(th) * dims[2].div_ceil(tw)) as u128;
                let bytes = tiles * (c_in * upload + groups * download) as u128;
                let products = tiles * (c_in * groups) as u128;
                let key = (bytes, products);
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((
                        key,
                        Choice {
                            tile: [td, th, tw],
                            m,
                        },
                    ));
                }
            }
        }
        m *= 2;
    }
    best.map(|(_, c)| c)
}

impl Layout {
    /// The layout of conv `spec` on images of extents `dims` (`[d, h, w]`, `d = 1` in 2D) with
    /// `params`' slots. Among the tilings (at most `max_tile` outputs per tile side, if given)
    /// it picks the one with the fewest bytes on the wire, then the fewest plaintext products.
    ///
    /// Supported: "same" convs with odd kernel extents (`1×k×k`, `3×3×3`), pointwise convs
    /// (`1×1×1`), and transposed convs of kernel `[kd, 2, 2]` with stride = kernel (2D `1×2×2`,
    /// 3D `2×2×2`), run as the conv of the zero-inserted input `U[kd·z][2y][2x] = X[z][y][x]`:
    /// `Y[i] = Σ_a W[a]·U[i − a]` (see the module documentation).
    ///
    /// # Errors
    /// [`HomConvError::Unsupported`] for other kernels, empty shapes, or a kernel too large for
    /// the slots.
    pub fn new(
        params: &Params,
        spec: &ConvSpec,
        dims: [usize; 3],
        max_tile: Option<usize>,
    ) -> Result<Self, HomConvError> {
        let unsupported = |what: String| Err(HomConvError::Unsupported(what));
        let transposed = spec.kind == ConvKind::Transposed;
        let kernel = spec.kernel;
        let kernel_ok = match spec.kind {
            ConvKind::Transposed => kernel[0] >= 1 && kernel[1..] == [2, 2],
            ConvKind::Pointwise => kernel == [1, 1, 1],
            ConvKind::Same => kernel.iter().all(|&e| e % 2 == 1),
        };
        if !kernel_ok {
            return unsupported(format!("kernel {kernel:?} of {}", spec.name));
        }
        if dims.contains(&0) || spec.c_in == 0 || spec.c_out == 0 {
            return unsupported(format!("image extents {dims:?} for {}", spec.name));
        }
        let (out, lo, hi) = if transposed {
            (
                [0, 1, 2].map(|a| dims[a] * kernel[a]),
                kernel.map(|e| e - 1),
                [0; 3],
            )
        } else {
            (dims, kernel.map(|e| e / 2), kernel.map(|e| e / 2))
        };
        let halo = [0, 1, 2].map(|a| lo[a] + hi[a]);
        let slots = params.slots();
        let cap = max_tile.unwrap_or(usize::MAX).max(1);
        let upload = params.seeded_ciphertext_len();
        let download = params.ciphertext_len(params.return_level());
        let Some(Choice { tile, m }) = choose(
            out, halo, cap, slots, spec.c_in, spec.c_out, upload, download,
        ) else {
            return unsupported(format!("kernel {kernel:?} with {slots} slots"));
        };
        Ok(Self {
            c_in: spec.c_in,
            c_out: spec.c_out,
            in_dims: dims,
            dims: out,
            kernel,
            transposed,
            lo,
            hi,
            tile,
            counts: [0, 1, 2].map(|a| out[a].div_ceil(tile[a])),
            m,
            replicas: slots / m,
            slots,
        })
    }

    /// The DFT length `m` (a power of two, at most `N`).
    pub fn dft_len(&self) -> usize {
        self.m
    }

    /// Output channels per ciphertext, `N/m`.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// Outputs per tile, `[depth, height, width]`.
    pub fn tile(&self) -> [usize; 3] {
        self.tile
    }

    /// Number of tiles.
    pub fn tiles(&self) -> usize {
        self.counts.iter().product()
    }

    /// Output-channel groups, `⌈c_out / r⌉`.
    pub fn groups(&self) -> usize {
        self.c_out.div_ceil(self.replicas)
    }

    /// Ciphertexts the client uploads, `c_in · tiles`.
    pub fn upload_ciphertexts(&self) -> usize {
        self.c_in * self.tiles()
    }

    /// Ciphertexts the server returns, `groups · tiles`.
    pub fn return_ciphertexts(&self) -> usize {
        self.groups() * self.tiles()
    }

    /// Tiles per round trip: `⌊UPLOAD_BATCH / c_in⌋`, at least one.
    pub fn tiles_per_batch(&self) -> usize {
        (UPLOAD_BATCH / self.c_in).clamp(1, self.tiles())
    }

    /// Output extents `[d, h, w]`.
    pub fn out_dims(&self) -> [usize; 3] {
        self.dims
    }

    /// Elements of one output plane.
    pub(super) fn out_plane(&self) -> usize {
        self.dims.iter().product()
    }

    /// Flattening strides `[S_d, S_h, 1]` of a haloed tile.
    pub(super) fn strides(&self) -> [usize; 3] {
        let s_h = self.tile[2] + self.lo[2] + self.hi[2];
        let s_d = (self.tile[1] + self.lo[1] + self.hi[1]) * s_h;
        [s_d, s_h, 1]
    }

    /// The tile's first output, per axis.
    pub(super) fn origin(&self, tile: usize) -> [usize; 3] {
        let [_, ny, nx] = self.counts;
        let (z, y, x) = (tile / (ny * nx), (tile / nx) % ny, tile % nx);
        [z * self.tile[0], y * self.tile[1], x * self.tile[2]]
    }

    /// Along axis `a` of tile origin `o`: for each haloed tile position, the input index it
    /// reads (`None` outside the image or, for a transposed conv, between inserted zeros).
    fn source_indices(&self, a: usize, o: usize) -> Vec<Option<usize>> {
        let step = if self.transposed { self.kernel[a] } else { 1 };
        (0..self.tile[a] + self.lo[a] + self.hi[a])
            .map(|i| {
                (o + i)
                    .checked_sub(self.lo[a])
                    .filter(|&u| u < self.dims[a] && u % step == 0)
                    .map(|u| u / step)
            })
            .collect()
    }

    /// The tile's input (from one input channel, zero-inserted for a transposed conv) with its
    /// halo (zero outside the image), flattened to length `m`.
    pub(super) fn gather(&self, channel: &[u64], tile: usize) -> Vec<u64> {
        let origin = self.origin(tile);
        let [zs, ys, xs] = [0, 1, 2].map(|a| self.source_indices(a, origin[a]));
        let [s_d, s_h, _] = self.strides();
        let [_, in_h, in_w] = self.in_dims;
        let mut out = vec![0u64; self.m];
        for (i, z) in zs.iter().enumerate() {
            let Some(z) = z else { continue };
            for (j, y) in ys.iter().enumerate() {
                let Some(y) = y else { continue };
                let row = &channel[(z * in_h + y) * in_w..][..in_w];
                let dst = &mut out[i * s_d + j * s_h..][..xs.len()];
                for (d, x) in dst.iter_mut().zip(&xs) {
                    if let Some(x) = x {
                        *d = row[*x];
                    }
                }
            }
        }
        out
    }

    /// One `kd × kh × kw` filter (residues, `[a][b][c]` order) placed for the cyclic
    /// convolution, length `m`: flipped for a "same" conv, as is for a transposed one.
    pub(super) fn place_filter(&self, taps: &[u64]) -> Vec<u64> {
        let [kd, kh, kw] = self.kernel;
        let [s_d, s_h, _] = self.strides();
        let f = |a: usize, e: usize| if self.transposed { a } else { e - 1 - a };
        let mut out = vec![0u64; self.m];
        for a in 0..kd {
            for b in 0..kh {
                for c in 0..kw {
                    out[f(a, kd) * s_d + f(b, kh) * s_h + f(c, kw)] = taps[(a * kh + b) * kw + c];
                }
            }
        }
        out
    }

    /// Writes (or adds mod `p`, if `add`) the tile's valid outputs from a length-`m` cyclic
    /// convolution into an output plane.
    pub(super) fn scatter(&self, conv: &[u64], tile: usize, plane: &mut [u64], p: u64, add: bool) {
        let [z0, y0, x0] = self.origin(tile);
        let [s_d, s_h, _] = self.strides();
        let [od, oh, ow] = self.kernel.map(|e| e - 1);
        let [d, h, w] = self.dims;
        let width = self.tile[2].min(w - x0);
        for a in 0..self.tile[0].min(d - z0) {
            for b in 0..self.tile[1].min(h - y0) {
                let src = &conv[(a + od) * s_d + (b + oh) * s_h + ow..][..width];
                let dst = &mut plane[((z0 + a) * h + y0 + b) * w + x0..][..width];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = if add { (*d + v) % p } else { v };
                }
            }
        }
    }

    pub(super) fn check_share(
        &self,
        x: &Tensor<u64>,
        channels: usize,
        p: u64,
    ) -> Result<(), HomConvError> {
        if x.channels() != channels || x.dims() != self.in_dims {
            return Err(HomConvError::Shape {
                channels,
                dims: self.in_dims,
                found_channels: x.channels(),
                found_dims: x.dims(),
            });
        }
        if let Some((index, &value)) = x.data().iter().enumerate().find(|(_, v)| **v >= p) {
            return Err(HomConvError::Unreduced { value, index, p });
        }
        Ok(())
    }

    pub(super) fn check_params(&self, params: &Params) -> Result<(), HomConvError> {
        if params.slots() != self.slots {
            return Err(HomConvError::LayoutMismatch {
                layout: self.slots,
                params: params.slots(),
            });
        }
        Ok(())
    }
}
