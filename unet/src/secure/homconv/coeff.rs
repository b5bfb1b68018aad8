//! The coefficient-encoded HomConv (Cheetah's packing, Huang et al., USENIX Security 2022, §4.1)
//! beside the seed's DFT HomConv: same share algebra, no slots, no DFT, no replication.
//!
//! # Packing
//! A tile of outputs with its halo is flattened exactly as for the DFT backend ([`Layout`]:
//! strides `(S_d, S_h, 1)`, region length `L = (td + halo_d)·S_d`, the filter placed so that the
//! tile's outputs are entries `e` of the *linear* convolution of the region with the placed
//! filter, `F ≤ e < L` for `F` the largest filter index). An upload polynomial holds `G` input
//! channels of one tile, channel `i` at coefficients `i·L + [0, L)`; a kernel polynomial holds,
//! for `M` output channels `j` and the same `G` input channels, the placed filter
//! `W[o_j][c_i]` at `j·G·L + (G − 1 − i)·L`. In their negacyclic product the coefficient
//! `j·G·L + (G − 1)·L + e` is `Σ_i conv(x_{c_i}, W[o_j][c_i])[e]` for every valid `e`:
//! - a pair `(i, i')`, `(j, j')` contributes `x_{c_i} ⋆ w` shifted by
//!   `(i − i' + (j' − j)·G)·L`; the linear convolution `x ⋆ w` lives on `[0, L + F)`, so at a
//!   valid `e ∈ [F, L)` only the shift 0 — `i = i'`, `j = j'` — reaches it;
//! - negacyclic wrap-around: the product has degree at most `M·G·L + (G − 1)·L + F − 1`, so
//!   with `M·G·L ≤ N` a term of degree `≥ N` lands at most at `(G − 1)·L + F − 1`, below the
//!   valid range of block 0.
//!
//! The per-tile products are summed over the `⌈c_in/G⌉` upload polynomials; the server returns,
//! per (tile, group of `M` output channels), the response carrying only the valid outputs
//! ([`Selection`]), masked, flooded and switched down ([`Evaluator::finalize_coeffs`]).
//!
//! # The weight bound
//! The flood is sized for a public bound `|w| ≤ 2^b` on the layer's weights
//! ([`bunet_crypto::pahe`]'s coefficient module docs, "The weight bound"), and `b` must not
//! depend on the weights (the plan is visible on the wire): [`coeff_weight_bits`] derives it
//! from the conv's index alone, and both parties' sides ([`super::LinearClient`],
//! [`super::LinearServer`]) take it from there. The model's first conv (index 0) gets `2^24`,
//! [`crate::quant::MAX_WEIGHT`], since calibration folds the activation scale `2^k` (`k ≤ 4` in
//! the harness) into its weights ([`crate::QuantModel::calibrated`]); every other conv `2^16`
//! ([`COEFF_WEIGHT_BITS`]), and the server refuses a conv beyond its bound
//! ([`CoeffHomConvServer::new`]; the DFT backend takes any weight).
//!
//! # Choice of the tiling
//! Tile extents, `G` and `M` (with `M·G·L ≤ N`) minimise the bytes on the wire,
//! `tiles · (⌈c_in/G⌉ · upload + ⌈c_out/M⌉ · response)`, where the upload level and the
//! response's level follow from the ℓ1 count `⌈c_in/G⌉·G·M·taps` of the kernels that enter an
//! output and the weight bound ([`Params::coeff_plan`]). A response costs a whole `a` (`N`
//! coefficients of `log2 q_1 − ` [`CoeffPlan::a_drop_bits`] bits) plus `M·valid` coefficients
//! of `b`, an upload `N` coefficients of the upload level's bits; at the ANCHORS case (56×56, 64 → 64, q32) that
//! picks one tile, `G = 2`, `M = 1`: 32 uploads of 132 bits per coefficient and 64 responses
//! of 8192 × 44 + 3136 × 34 bits (more output channels per product would need fewer input
//! channels per upload, and an upload costs three times a response's `a`).
//!
//! Transposed convs run as the conv of the zero-inserted input, as in the DFT backend.
//!
//! Messages use [`KIND_COEFF_UPLOAD`] and [`KIND_COEFF_RESPONSE`], bounded by the layout's
//! lengths and decoded through [`bunet_crypto::wire`]; traffic is counted under [`super::LABEL`].

use bunet_crypto::channel::Channel;
use bunet_crypto::pahe::{
    COEFF_WEIGHT_BITS, Ciphertext, CoeffPlan, CoeffResponse, CoeffResponseContext, CoeffUpload,
    Evaluator, HOMCONV_MAX_CHANNELS, KIND_COEFF_RESPONSE, KIND_COEFF_UPLOAD, PaheError, Params,
    PreparedPlaintext, PublicKey, SecretKey, Selection,
};
use bunet_crypto::prg::Prg;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::exchange::{self, FilterTiming, Packing, ServerCore};
use super::{HomConvError, Layout, PREPARED_FILTER_BUDGET};
use crate::arch::ConvSpec;
use crate::quant::QuantModel;
use crate::tensor::Tensor;

/// The public weight bound `b` (`|w| ≤ 2^b`) of conv `conv` of a model in the coefficient
/// backend: `24` ([`crate::quant::MAX_WEIGHT`], never refused) for the first conv, into which
/// calibration folds the activation scale ([`crate::QuantModel::calibrated`]), and
/// [`COEFF_WEIGHT_BITS`] (`16`) for every other. A function of the architecture's conv order
/// only, never of the weights (module docs): the one rule both parties' layouts follow.
pub fn coeff_weight_bits(conv: usize) -> u32 {
    if conv == FIRST_CONV {
        MAX_WEIGHT_BITS
    } else {
        COEFF_WEIGHT_BITS
    }
}

/// The conv into which [`crate::weights::Model::with_activation_scale`] folds the activation
/// scale (with every conv's bias).
const FIRST_CONV: usize = 0;

/// `log2` of [`crate::quant::MAX_WEIGHT`], the quantiser's largest weight.
const MAX_WEIGHT_BITS: u32 = crate::quant::MAX_WEIGHT.ilog2();
const _: () = assert!(1i64 << MAX_WEIGHT_BITS == crate::quant::MAX_WEIGHT);

/// How a conv layer is tiled and packed into coefficients (public: both parties derive it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoeffLayout {
    /// The tile geometry (its `m` is the region length `L`).
    base: Layout,
    /// Input channels per upload polynomial.
    g: usize,
    /// Output channels per product.
    mo: usize,
    plan: CoeffPlan,
    /// The public weight bound `b` (`|w| ≤ 2^b`) the plan is sized for; with
    /// `encrypted_weights`, `63` (the client's full-range share takes the weights' place).
    weight_bits: u32,
    /// The encrypted-weights mode (`ew`): the server encrypts its kernel polynomials once per
    /// session and the client multiplies, so the plan is for the share and the tiling
    /// minimises the per-run responses (then the set-up).
    encrypted_weights: bool,
    n: usize,
}

/// A tiling of the layout search: its cost (bytes of the client's weight ciphertexts beyond
/// [`PREPARED_FILTER_BUDGET`], bytes of a run, bytes of the set-up, compared in that order),
/// tile extents, `G`, `M` and plan.
type Candidate = ((u128, u128, u128), [usize; 3], usize, usize, CoeffPlan);

/// `{⌈n/k⌉ : k ≥ 1}`, at most `cap`: the tile extents worth trying along one axis.
fn extents(n: usize, cap: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=n)
        .map(|k| n.div_ceil(k))
        .filter(|&e| e <= cap)
        .collect();
    v.dedup();
    v
}

impl CoeffLayout {
    /// The layout of conv `spec` on images of extents `dims` under `params`, with at most
    /// `max_tile` outputs per tile side if given, for weights `|w| ≤ 2^weight_bits` (the
    /// layer's public bound, [`coeff_weight_bits`]; see the module docs for the choice).
    ///
    /// # Errors
    /// [`HomConvError::Unsupported`] for kernels the DFT [`Layout`] does not support either, or a
    /// tile of one output that does not fit `N`; [`HomConvError::TooManyChannels`];
    /// [`HomConvError::Pahe`] if no level carries the flood of this layer.
    pub fn new(
        params: &Params,
        spec: &ConvSpec,
        dims: [usize; 3],
        max_tile: Option<usize>,
        weight_bits: u32,
    ) -> Result<Self, HomConvError> {
        Self::search(params, spec, dims, max_tile, Some(weight_bits))
    }

    /// The layout of the encrypted-weights mode (the `ew` module): the same packing, the plan
    /// for the client's share ([`Params::coeff_share_plan`]: `c_in·L` share coefficients
    /// enter each product sum), and the tiling, `G` and `M` that minimise the bytes of a run
    /// (`tiles · ⌈c_out/M⌉` responses), then those of the set-up
    /// (`⌈c_in/G⌉ · ⌈c_out/M⌉` weight ciphertexts), among those whose weight ciphertexts fit
    /// [`PREPARED_FILTER_BUDGET`] in the client's memory (the coefficient server's bound on a
    /// layer's prepared filters, mirrored; if none fits, the one that exceeds it least). The
    /// set-up count is at least `c_in·c_out·L/N` (`G·M ≤ N/L`), so the bound trades larger
    /// tiles (fewer responses per run) for memory on the deep layers of large images. Any
    /// weight is taken.
    ///
    /// # Errors
    /// As [`CoeffLayout::new`].
    pub fn encrypted_weights(
        params: &Params,
        spec: &ConvSpec,
        dims: [usize; 3],
        max_tile: Option<usize>,
    ) -> Result<Self, HomConvError> {
        Self::search(params, spec, dims, max_tile, None)
    }

    /// The search of [`CoeffLayout::new`] (`weight_bits` given: the client encrypts its share)
    /// and [`CoeffLayout::encrypted_weights`] (`None`).
    fn search(
        params: &Params,
        spec: &ConvSpec,
        dims: [usize; 3],
        max_tile: Option<usize>,
        weight_bits: Option<u32>,
    ) -> Result<Self, HomConvError> {
        if spec.c_in as u64 > HOMCONV_MAX_CHANNELS {
            return Err(HomConvError::TooManyChannels {
                c_in: spec.c_in,
                max: HOMCONV_MAX_CHANNELS,
            });
        }
        // The DFT layout validates the kernel and gives the halo and output extents.
        let probe = Layout::new(params, spec, dims, Some(1))?;
        let n = params.n();
        let halo = [0, 1, 2].map(|a| probe.lo[a] + probe.hi[a]);
        let out = probe.dims;
        let taps: usize = spec.kernel.iter().product();
        let cap = max_tile.unwrap_or(usize::MAX).max(1);
        let (c_in, c_out) = (spec.c_in, spec.c_out);
        let mut best: Option<Candidate> = None;
        let mut plans = std::collections::HashMap::new();
        for &td in &extents(out[0], cap) {
            for &th in &extents(out[1], cap) {
                let rows = (td + halo[0]) * (th + halo[1]);
                if rows * (1 + halo[2]) > n {
                    continue;
                }
                let tw_max = (n / rows - halo[2]).min(out[2]);
                for &tw in extents(out[2], cap.min(tw_max)).iter() {
                    let l = rows * (tw + halo[2]);
                    let q = n / l;
                    let tiles =
                        (out[0].div_ceil(td) * out[1].div_ceil(th) * out[2].div_ceil(tw)) as u128;
                    let valid = td * th * tw;
                    for g in 1..=q.min(c_in) {
                        let uploads = c_in.div_ceil(g);
                        // The largest M for this G; fewer output channels per product only
                        // cost more responses.
                        let mo = (q / g).min(c_out).max(1);
                        // The ℓ1 count of what multiplies the encrypted polynomials: the
                        // kernels' taps, or the share's `c_in·L` coefficients.
                        let l1 = match weight_bits {
                            Some(_) => (uploads * g * mo * taps) as u64,
                            None => (c_in * l) as u64,
                        };
                        let plan = match plans.get(&l1) {
                            Some(p) => *p,
                            None => {
                                let p = match weight_bits {
                                    Some(bits) => params.coeff_plan(l1, bits),
                                    None => params.coeff_share_plan(l1),
                                }
                                .map_err(PaheError::from)?;
                                plans.insert(l1, p);
                                p
                            }
                        };
                        let groups = c_out.div_ceil(mo);
                        let upload = params.coeff_upload_len(plan.upload_level) as u128;
                        let responses = tiles
                            * (groups
                                * params.coeff_response_len(
                                    plan.return_level,
                                    mo * valid,
                                    plan.drop_bits,
                                    plan.a_drop_bits,
                                )) as u128;
                        let cost = match weight_bits {
                            Some(_) => (0, tiles * uploads as u128 * upload + responses, 0),
                            None => {
                                let weights = (uploads * groups) as u128;
                                let memory = weights * (2 * plan.upload_level * n * 8) as u128;
                                let excess = memory.saturating_sub(PREPARED_FILTER_BUDGET as u128);
                                (excess, responses, weights * upload)
                            }
                        };
                        if best.as_ref().is_none_or(|b| cost < b.0) {
                            best = Some((cost, [td, th, tw], g, mo, plan));
                        }
                    }
                }
            }
        }
        let Some((_, tile, g, mo, plan)) = best else {
            return Err(HomConvError::Unsupported(format!(
                "kernel {:?} with N = {n} coefficients",
                spec.kernel
            )));
        };
        let mut base = probe;
        base.tile = tile;
        base.counts = [0, 1, 2].map(|a| out[a].div_ceil(tile[a]));
        base.m = (tile[0] + halo[0]) * (tile[1] + halo[1]) * (tile[2] + halo[2]);
        base.replicas = 1;
        Ok(Self {
            base,
            g,
            mo,
            plan,
            weight_bits: weight_bits.unwrap_or(u64::BITS - 1),
            encrypted_weights: weight_bits.is_none(),
            n,
        })
    }

    /// Whether this is the encrypted-weights mode's layout ([`CoeffLayout::encrypted_weights`]).
    pub fn has_encrypted_weights(&self) -> bool {
        self.encrypted_weights
    }

    /// [`HomConvError::Unsupported`] unless the layout is of the mode `encrypted_weights`
    /// (the two modes' plans differ: a side must not run the other's).
    pub(super) fn check_mode(&self, encrypted_weights: bool) -> Result<(), HomConvError> {
        if self.encrypted_weights != encrypted_weights {
            return Err(HomConvError::Unsupported(format!(
                "a layout of the {} mode in a side of the other",
                if self.encrypted_weights {
                    "encrypted-weights"
                } else {
                    "client-encrypted"
                }
            )));
        }
        Ok(())
    }

    /// Weight ciphertexts of the encrypted-weights mode's set-up (one per output group and
    /// upload polynomial), and their encoded bytes.
    pub fn setup_ciphertexts(&self, params: &Params) -> (usize, u64) {
        let count = self.groups() * self.uploads_per_tile();
        let len = params.coeff_upload_len(self.plan.upload_level) as u64;
        (count, count as u64 * len)
    }

    /// Outputs per tile, `[depth, height, width]`.
    pub fn tile(&self) -> [usize; 3] {
        self.base.tile
    }

    /// Number of tiles.
    pub fn tiles(&self) -> usize {
        self.base.tiles()
    }

    /// Input channels per upload polynomial (`G`).
    pub fn channels_per_upload(&self) -> usize {
        self.g
    }

    /// Output channels per product (`M`).
    pub fn outputs_per_product(&self) -> usize {
        self.mo
    }

    /// The noise plan (upload level, flood, return level).
    pub fn plan(&self) -> CoeffPlan {
        self.plan
    }

    /// The public weight bound `b` (`|w| ≤ 2^b`) the plan is sized for.
    pub fn weight_bits(&self) -> u32 {
        self.weight_bits
    }

    /// Output extents.
    pub fn out_dims(&self) -> [usize; 3] {
        self.base.dims
    }

    /// Ciphertexts the client uploads.
    pub fn upload_ciphertexts(&self) -> usize {
        self.uploads_per_tile() * self.tiles()
    }

    /// Responses the server returns.
    pub fn responses(&self) -> usize {
        self.groups() * self.tiles()
    }

    /// Encoded bytes of one run's uploads and responses (frame headers excluded), exactly as
    /// they travel: every upload at the plan's upload level, every response with its whole `a`
    /// and the `b` coefficients of its group's channels at its tile's valid outputs.
    pub fn wire_bytes(&self, params: &Params) -> (u64, u64) {
        let plan = self.plan;
        let upload = params.coeff_upload_len(plan.upload_level) as u64;
        let responses: u64 = (0..self.tiles())
            .map(|t| {
                let valid = self.valid(t).len();
                (0..self.groups())
                    .map(|og| {
                        let count = self.group_channels(og).len() * valid;
                        params.coeff_response_len(
                            plan.return_level,
                            count,
                            plan.drop_bits,
                            plan.a_drop_bits,
                        ) as u64
                    })
                    .sum::<u64>()
            })
            .sum();
        if self.encrypted_weights {
            // Per run the client only sends responses; nothing comes back.
            return (responses, 0);
        }
        (self.upload_ciphertexts() as u64 * upload, responses)
    }

    /// Output channels of group `og`.
    pub(super) fn group_channels(&self, og: usize) -> std::ops::Range<usize> {
        og * self.mo..((og + 1) * self.mo).min(self.base.c_out)
    }

    /// The valid outputs of `tile`: `(offset e in the region, index in an output plane)`, in
    /// increasing `e`.
    fn valid(&self, tile: usize) -> Vec<(usize, usize)> {
        let b = &self.base;
        let [z0, y0, x0] = b.origin(tile);
        let [s_d, s_h, _] = b.strides();
        let [od, oh, ow] = b.kernel.map(|e| e - 1);
        let [d, h, w] = b.dims;
        let mut out = Vec::new();
        for a in 0..b.tile[0].min(d - z0) {
            for y in 0..b.tile[1].min(h - y0) {
                for x in 0..b.tile[2].min(w - x0) {
                    let e = (a + od) * s_d + (y + oh) * s_h + ow + x;
                    out.push((e, ((z0 + a) * h + y0 + y) * w + x0 + x));
                }
            }
        }
        out
    }

    /// The selection of group `og` in `tile`: output channel `j` of the group at
    /// `j·G·L + (G − 1)·L + e`.
    pub(super) fn selection(
        &self,
        params: &Params,
        og: usize,
        valid: &[(usize, usize)],
    ) -> Selection {
        let l = self.base.m;
        let indices = (0..self.group_channels(og).len())
            .flat_map(|j| {
                valid
                    .iter()
                    .map(move |&(e, _)| (j * self.g * l + (self.g - 1) * l + e) as u32)
            })
            .collect();
        Selection::new(params, indices).expect("valid outputs lie below M·G·L ≤ N, increasing")
    }

    /// Kernel polynomial `(og, cg)` of `weight` (`W mod p`, `[c_out][c_in][taps]`): `W[o_j][c_i]`
    /// at `j·G·L + (G − 1 − i)·L` (module docs), `N` residues.
    pub(super) fn kernel(&self, weight: &[u64], og: usize, cg: usize) -> Vec<u64> {
        let (c_in, big_l) = (self.base.c_in, self.base.m);
        let taps: usize = self.base.kernel.iter().product();
        let mut coeffs = vec![0u64; self.n];
        for (j, o) in self.group_channels(og).enumerate() {
            for (ii, c) in (cg * self.g..((cg + 1) * self.g).min(c_in)).enumerate() {
                let w = &weight[(o * c_in + c) * taps..(o * c_in + c + 1) * taps];
                let at = j * self.g * big_l + (self.g - 1 - ii) * big_l;
                coeffs[at..at + big_l].copy_from_slice(&self.base.place_filter(w));
            }
        }
        coeffs
    }

    /// The upload polynomial of channel group `cg` in `tile`.
    pub(super) fn gather(&self, x: &Tensor<u64>, cg: usize, tile: usize) -> Vec<u64> {
        let l = self.base.m;
        let mut out = vec![0u64; self.n];
        for (i, c) in (cg * self.g..((cg + 1) * self.g).min(self.base.c_in)).enumerate() {
            out[i * l..(i + 1) * l].copy_from_slice(&self.base.gather(x.channel(c), tile));
        }
        out
    }
}

/// Alice's side of the coefficient HomConv for one layer shape.
#[derive(Debug)]
pub struct CoeffHomConvClient {
    params: Params,
    layout: CoeffLayout,
}

impl CoeffHomConvClient {
    /// Alice's side for `layout` under `params`.
    ///
    /// # Errors
    /// [`HomConvError::LayoutMismatch`] if the layout is for another ring degree.
    pub fn new(params: &Params, layout: CoeffLayout) -> Result<Self, HomConvError> {
        layout.base.check_params(params)?;
        layout.check_mode(false)?;
        Ok(Self {
            params: params.clone(),
            layout,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &CoeffLayout {
        &self.layout
    }

    /// Runs the HomConv on Alice's share `x_a` with her secret key: returns her share `Y_A`.
    ///
    /// # Errors
    /// As [`super::HomConvClient::run`].
    pub fn run(
        &self,
        ch: &mut Channel,
        sk: &SecretKey,
        x_a: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        exchange::run_client(&self.layout, &self.params, ch, sk, x_a, prg)
    }
}

/// Bob's side of the coefficient HomConv for one conv of a model: kernel polynomials prepared
/// once if they fit [`PREPARED_FILTER_BUDGET`], else per output group in every run. `Debug`
/// shows the shape, never the weights.
#[derive(Debug)]
pub struct CoeffHomConvServer<'a> {
    core: ServerCore<'a, CoeffLayout>,
}

impl<'a> CoeffHomConvServer<'a> {
    /// Bob's side for conv `conv` of `model` with `layout` under `params`.
    ///
    /// # Errors
    /// [`HomConvError::Modulus`]; [`HomConvError::Unsupported`] if the layout is for another
    /// conv or a weight exceeds `2^`[`CoeffLayout::weight_bits`] (the public bound the flood is
    /// sized for, [`coeff_weight_bits`] in a session); [`HomConvError::LayoutMismatch`].
    pub fn new(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        layout: CoeffLayout,
    ) -> Result<Self, HomConvError> {
        Self::with_kernel_budget(params, model, conv, layout, PREPARED_FILTER_BUDGET)
    }

    /// As [`CoeffHomConvServer::new`] with at most `budget` bytes of prepared kernels kept
    /// across runs (beyond it they are prepared per batch of output groups in every run).
    ///
    /// # Errors
    /// As [`CoeffHomConvServer::new`].
    pub fn with_kernel_budget(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        layout: CoeffLayout,
        budget: usize,
    ) -> Result<Self, HomConvError> {
        Self::with_timing(params, model, conv, layout, budget, FilterTiming::Eager)
    }

    /// As [`CoeffHomConvServer::with_kernel_budget`], preparing the kernels that fit
    /// `budget` at the time `timing` says (the session driver defers them to the first upload).
    ///
    /// # Errors
    /// As [`CoeffHomConvServer::new`].
    pub fn with_timing(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        layout: CoeffLayout,
        budget: usize,
        timing: FilterTiming,
    ) -> Result<Self, HomConvError> {
        let qc = super::layer_for(params, model, conv, &layout.base)?;
        layout.check_mode(false)?;
        let bits = layout.weight_bits;
        let bound = 1u64.checked_shl(bits).unwrap_or(u64::MAX);
        if qc
            .weight
            .iter()
            .any(|&w| u64::from(w.unsigned_abs()) > bound)
        {
            return Err(HomConvError::Unsupported(format!(
                "weights of {} beyond ±2^{bits} (this layer's public bound) in the coefficient \
                 backend; use the DFT backend (--linear dft)",
                qc.spec.name
            )));
        }
        let core = ServerCore::new(params, model, conv, qc, layout, budget, timing)?;
        Ok(Self { core })
    }

    /// The layout.
    pub fn layout(&self) -> &CoeffLayout {
        &self.core.packing
    }

    /// Whether the kernels are prepared in every run (they exceed the budget).
    pub fn streams_kernels(&self) -> bool {
        self.core.streams_filters()
    }

    /// Whether prepared kernels are held now (false before a deferred side's first run and
    /// after a run that dropped them).
    pub fn holds_filters(&self) -> bool {
        self.core.holds_filters()
    }

    /// Runs the HomConv on Bob's share `x_b` with Alice's public key: returns `Y_B`.
    ///
    /// # Errors
    /// As [`super::HomConvServer::run`].
    pub fn run(
        &self,
        ch: &mut Channel,
        pk: &PublicKey,
        x_b: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        self.core.run(ch, pk, x_b, prg)
    }
}

/// The coefficient packing: an upload holds `G` input channels of a tile, a response the valid
/// outputs of `M` output channels ([`Selection`]).
impl Packing for CoeffLayout {
    type Upload = CoeffUpload;
    type Response = CoeffResponse;
    type Received = (Selection, CoeffResponse);
    /// The tile's valid outputs: `(offset in the region, index in an output plane)`.
    type Tile = Vec<(usize, usize)>;
    const KIND_UPLOAD: u16 = KIND_COEFF_UPLOAD;
    const KIND_RESPONSE: u16 = KIND_COEFF_RESPONSE;

    fn base(&self) -> &Layout {
        &self.base
    }

    fn uploads_per_tile(&self) -> usize {
        self.base.c_in.div_ceil(self.g)
    }

    fn groups(&self) -> usize {
        self.base.c_out.div_ceil(self.mo)
    }

    fn tile(&self, t: usize) -> Vec<(usize, usize)> {
        self.valid(t)
    }

    fn encrypt(
        &self,
        _: &Params,
        sk: &SecretKey,
        x: &Tensor<u64>,
        cg: usize,
        t: usize,
        prg: &mut Prg,
    ) -> Result<CoeffUpload, PaheError> {
        // The client's share (at the first layer, the image itself): erased once encrypted.
        let share = Zeroizing::new(self.gather(x, cg, t));
        sk.encrypt_coeffs(&share, self.plan.upload_level, prg)
    }

    fn recv_response(
        &self,
        ch: &mut Channel,
        params: &Params,
        og: usize,
        valid: &Vec<(usize, usize)>,
    ) -> Result<(Selection, CoeffResponse), HomConvError> {
        let sel = self.selection(params, og, valid);
        let plan = &self.plan;
        let max_len = params.coeff_response_len(
            plan.return_level,
            sel.len(),
            plan.drop_bits,
            plan.a_drop_bits,
        );
        let ctx = CoeffResponseContext {
            params: params.clone(),
            count: sel.len(),
            drop_bits: plan.drop_bits,
            a_drop_bits: plan.a_drop_bits,
        };
        let resp = ch.recv_message(KIND_COEFF_RESPONSE, max_len, &ctx)?;
        Ok((sel, resp))
    }

    fn decrypt(
        &self,
        _: &Params,
        sk: &SecretKey,
        (sel, resp): &(Selection, CoeffResponse),
    ) -> Result<Zeroizing<Vec<u64>>, PaheError> {
        Ok(Zeroizing::new(sk.decrypt_coeffs(resp, sel)?))
    }

    fn upload_max_len(&self, params: &Params) -> usize {
        params.coeff_upload_len(self.plan.upload_level)
    }

    fn check_upload(&self, u: &CoeffUpload) -> Result<(), HomConvError> {
        if u.level() != self.plan.upload_level {
            return Err(HomConvError::Pahe(PaheError::Level {
                expected: self.plan.upload_level,
                found: u.level(),
            }));
        }
        Ok(())
    }

    fn expand(u: &CoeffUpload) -> Ciphertext {
        u.expand()
    }

    fn group_bytes(&self, params: &Params) -> usize {
        self.uploads_per_tile() * self.plan.upload_level * params.n() * 8
    }

    /// Kernel polynomial `(og, cg)` holds `W[o_j][c_i]` at `j·G·L + (G − 1 − i)·L`.
    fn prepare(
        &self,
        params: &Params,
        weight: &[u64],
        groups: std::ops::Range<usize>,
    ) -> Result<Vec<PreparedPlaintext>, PaheError> {
        let ups = self.uploads_per_tile();
        let first = groups.start;
        Ok((0..groups.len() * ups)
            .into_par_iter()
            .map(|i| {
                let coeffs = self.kernel(weight, first + i / ups, i % ups);
                let pt = params
                    .plaintext_from_coeffs(coeffs)
                    .expect("N residues below p");
                params.prepare_at(&pt, self.plan.upload_level)
            })
            .collect())
    }

    fn respond(
        &self,
        params: &Params,
        eval: &Evaluator,
        acc: Ciphertext,
        og: usize,
        valid: &Vec<(usize, usize)>,
        pk: &PublicKey,
        prg: &mut Prg,
    ) -> Result<(CoeffResponse, Zeroizing<Vec<u64>>), PaheError> {
        let sel = self.selection(params, og, valid);
        let mut mask = Zeroizing::new(vec![0u64; sel.len()]);
        prg.fill_uniform_below(&mut mask, params.p());
        let resp = eval.finalize_coeffs(acc, &sel, &mask, &self.plan, pk, prg)?;
        Ok((resp, mask))
    }

    fn place(
        &self,
        values: &[u64],
        og: usize,
        _: usize,
        valid: &Vec<(usize, usize)>,
        y: &mut [u64],
        p: u64,
        add: bool,
    ) {
        let plane: usize = self.base.dims.iter().product();
        for (j, o) in self.group_channels(og).enumerate() {
            let dst = &mut y[o * plane..(o + 1) * plane];
            for (&(_, idx), &v) in valid.iter().zip(&values[j * valid.len()..]) {
                dst[idx] = if add { (dst[idx] + v) % p } else { v };
            }
        }
    }
}
