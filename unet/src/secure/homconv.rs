//! HomConv (the seed's §4.3): one convolution layer on additive shares over `Z_p`.
//!
//! Two backends with bit-identical shares sit behind [`LinearClient`] / [`LinearServer`]: the
//! seed's DFT HomConv described below, and the coefficient-encoded one of the `coeff` module
//! ([`CoeffHomConvClient`], Cheetah's packing), chosen per session ([`LinearBackend`]).
//!
//! The client (Alice) holds the secret key and the share `X_A`; the server (Bob) holds the
//! weights `W`, the bias `B` and the share `X_B`. Afterwards `Y_A + Y_B = conv(X, W) + B mod p`,
//! bit for bit the fixed-point reference ([`crate::fixed::conv`]).
//!
//! # Packing (no rotations: Hadamard products only)
//! The image (2D, or 3D with a depth axis) is cut into tiles; a tile's input with its halo is
//! flattened into a vector of length `m` (a power of two) and the filter placed so that the
//! tile's outputs are entries of the length-`m` *cyclic* convolution that nothing wraps into
//! ([`Layout`] and the `layout` module document the strides and the argument). The cyclic
//! convolution is a slot-wise product of cyclic DFTs ([`CyclicPlan`] over `p`, length `m`).
//! A transposed conv (`[kd, 2, 2]`, stride = kernel) runs as the conv of the zero-inserted input.
//!
//! The `N` slots of a ciphertext hold `r = N/m` copies of the DFT of one input channel's tile;
//! the server's plaintext for output-channel group `g` and input channel `c` holds, in slot range
//! `j`, the DFT of filter `W[g·r + j][c]`. One ciphertext product per (group, input channel)
//! therefore serves `r` output channels.
//!
//! # Flow
//! 1. Alice encrypts (secret key, seeded) the DFT of each (input channel, tile) of `X_A` and sends
//!    them: `c_in · tiles` seeded ciphertexts.
//! 2. Bob computes, per (group, tile), `Σ_c ct_c ⊙ pt_{g,c}` (an encryption of the DFT of
//!    `conv(X_A)` without bias), draws a uniform mask `M` ([`random_mask`]), and returns
//!    [`Evaluator::finalize_for_return`] of it (HSS share `−M`, re-randomisation with noise flooding,
//!    modulus switch down): `groups · tiles` ciphertexts.
//! 3. Alice decrypts and inverse-DFTs: `Y_A = conv(X_A) − IDFT(M)`. Bob computes his own
//!    share's contribution in the clear: `Y_B = conv(X_B) + B + IDFT(M)`. Since the conv is linear
//!    mod p, `Y_A + Y_B = conv(X) + B`.
//!
//! The tiles go in round trips of [`Layout::tiles_per_batch`] tiles (steps 1–3 per batch, at most
//! [`UPLOAD_BATCH`] uploaded ciphertexts each), so both parties' memory stays bounded whatever
//! the image size.
//!
//! Messages use the PAHE kinds ([`KIND_SEEDED_CIPHERTEXT`], [`KIND_CIPHERTEXT`]), every incoming
//! message is bounded by the parameters' ciphertext length and decoded through
//! [`bunet_crypto::wire`]; traffic is counted under the channel label [`LABEL`].

use bunet_crypto::channel::{Channel, ChannelError};
use bunet_crypto::pahe::{
    Ciphertext, Evaluator, HOMCONV_MAX_CHANNELS, KIND_CIPHERTEXT, KIND_SEEDED_CIPHERTEXT,
    PaheError, Params, PreparedPlaintext, PublicKey, SecretKey, SeededCiphertext, random_mask,
};
use bunet_crypto::prg::Prg;
use bunet_kernels::ntt::CyclicPlan;
use rayon::prelude::*;

use crate::arch::{ConvKind, ConvSpec};
use crate::quant::QuantModel;
use crate::secure::config::LinearBackend;
use crate::tensor::Tensor;

mod coeff;
mod layout;

pub use coeff::{CoeffHomConvClient, CoeffHomConvServer, CoeffLayout};
pub use layout::{Layout, UPLOAD_BATCH};

/// The channel label under which HomConv traffic is counted.
pub const LABEL: &str = "homconv";

/// Why a HomConv call failed.
#[derive(Debug, thiserror::Error)]
pub enum HomConvError {
    /// The layer or image shape is not one HomConv handles.
    #[error("HomConv does not support {0}")]
    Unsupported(String),
    /// An input share does not have the layout's shape.
    #[error(
        "HomConv input has {found_channels} channels of extents {found_dims:?}, the layout expects {channels} of {dims:?}"
    )]
    Shape {
        /// Channels the layout expects.
        channels: usize,
        /// Extents the layout expects.
        dims: [usize; 3],
        /// Channels found.
        found_channels: usize,
        /// Extents found.
        found_dims: [usize; 3],
    },
    /// An input share element is not a residue mod p.
    #[error("input share element {value} at {index} is not below p = {p}")]
    Unreduced {
        /// The element.
        value: u64,
        /// Its index in the tensor's data.
        index: usize,
        /// The plaintext modulus.
        p: u64,
    },
    /// The layer has more input channels than the parameters' noise budget covers.
    #[error("{c_in} input channels exceed the {max} the PAHE noise budget covers")]
    TooManyChannels {
        /// Input channels of the layer.
        c_in: usize,
        /// [`HOMCONV_MAX_CHANNELS`].
        max: u64,
    },
    /// The model's fixed-point modulus is not the PAHE plaintext modulus.
    #[error("the model's p = {quant} differs from the PAHE parameters' p = {pahe}")]
    Modulus {
        /// `Quant::p`.
        quant: u64,
        /// `Params::p`.
        pahe: u64,
    },
    /// The layout was built for other parameters.
    #[error("the layout was built for N = {layout} slots, the parameters have {params}")]
    LayoutMismatch {
        /// The layout's slot count.
        layout: usize,
        /// The parameters' slot count.
        params: usize,
    },
    /// The homomorphic encryption scheme refused an operation.
    #[error(transparent)]
    Pahe(#[from] PaheError),
    /// A peer message did not arrive or did not decode.
    #[error(transparent)]
    Crypto(#[from] bunet_crypto::Error),
    /// The channel failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A kernel refused its parameters.
    #[error(transparent)]
    Kernel(#[from] bunet_kernels::Error),
}

/// The quantized conv `conv` of `model` that `layout` was made for, after checking the layout
/// against `params` and the model's modulus against the PAHE plaintext modulus (both linear
/// backends' servers start here).
///
/// # Errors
/// [`HomConvError::Modulus`] if the moduli differ; [`HomConvError::Unsupported`] for an index
/// past the model's convs or a layout of another conv; the layout's own parameter errors.
pub(crate) fn layer_for<'a>(
    params: &Params,
    model: &'a QuantModel,
    conv: usize,
    layout: &Layout,
) -> Result<&'a crate::quant::QuantConv, HomConvError> {
    layout.check_params(params)?;
    if model.quant().p != params.p() {
        return Err(HomConvError::Modulus {
            quant: model.quant().p,
            pahe: params.p(),
        });
    }
    let Some(qc) = model.convs().get(conv) else {
        return Err(HomConvError::Unsupported(format!("conv index {conv}")));
    };
    let spec = &qc.spec;
    if (spec.kind == ConvKind::Transposed) != layout.transposed
        || spec.kernel != layout.kernel
        || (spec.c_in, spec.c_out) != (layout.c_in, layout.c_out)
    {
        return Err(HomConvError::Unsupported(format!(
            "a layout for another conv than {}",
            spec.name
        )));
    }
    Ok(qc)
}

/// Independent PRGs for parallel tasks, drawn from `prg`.
fn task_prgs(prg: &mut Prg, count: usize) -> Vec<Prg> {
    (0..count)
        .map(|_| Prg::from_seed(prg.next_seed()))
        .collect()
}

/// Alice's side of HomConv for one layer shape.
#[derive(Debug)]
pub struct HomConvClient {
    params: Params,
    layout: Layout,
    plan: CyclicPlan,
}

impl HomConvClient {
    /// Alice's side for `layout` under `params`.
    ///
    /// # Errors
    /// [`HomConvError::LayoutMismatch`]; [`HomConvError::Kernel`] if `p ≢ 1 mod m`.
    pub fn new(params: &Params, layout: Layout) -> Result<Self, HomConvError> {
        layout.check_params(params)?;
        let plan = CyclicPlan::new(layout.m, params.p())?;
        Ok(Self {
            params: params.clone(),
            layout,
            plan,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Runs HomConv on Alice's share `x_a` (`c_in` planes, residues `< p`) with her secret key:
    /// returns her share `Y_A` of the `c_out` output planes.
    ///
    /// # Errors
    /// [`HomConvError::Shape`] / [`HomConvError::Unreduced`] for a bad share;
    /// [`HomConvError::Crypto`] / [`HomConvError::Channel`] if the server's messages do not
    /// arrive or do not decode; [`HomConvError::Pahe`] if a ciphertext does not decrypt.
    pub fn run(
        &self,
        ch: &mut Channel,
        sk: &SecretKey,
        x_a: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        let l = &self.layout;
        l.check_share(x_a, l.c_in, self.params.p())?;
        let previous = ch.set_label(LABEL);
        let result = self.exchange(ch, sk, x_a, prg);
        ch.set_label(previous);
        result
    }

    fn exchange(
        &self,
        ch: &mut Channel,
        sk: &SecretKey,
        x_a: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        let (l, params) = (&self.layout, &self.params);
        let plane = l.out_plane();
        let mut y = vec![0u64; l.c_out * plane];
        let max_len = params.ciphertext_len(params.max_level());
        for batch in l.tile_batches() {
            let nt = batch.len();
            // Upload order within a batch: input channel, then tile.
            let uploads = task_prgs(prg, l.c_in * nt)
                .into_par_iter()
                .enumerate()
                .map(|(i, mut prg)| {
                    let (c, t) = (i / nt, batch.start + i % nt);
                    let mut dft = l.gather(x_a.channel(c), t);
                    self.plan.forward(&mut dft);
                    let mut slots = vec![0u64; l.slots];
                    for range in slots.chunks_exact_mut(l.m) {
                        range.copy_from_slice(&dft);
                    }
                    let pt = params.encode(&slots)?;
                    Ok(sk.encrypt_seeded(&pt, &mut prg))
                })
                .collect::<Result<Vec<SeededCiphertext>, PaheError>>()?;
            for ct in &uploads {
                ch.send_message(KIND_SEEDED_CIPHERTEXT, ct)?;
            }
            ch.flush()?;
            drop(uploads);
            // Return order within a batch: group, then tile.
            let returned = (0..l.groups() * nt)
                .map(|_| ch.recv_message::<Ciphertext>(KIND_CIPHERTEXT, max_len, params))
                .collect::<Result<Vec<_>, _>>()?;
            let convs = returned
                .par_iter()
                .map(|ct| {
                    let mut slots = params.decode(&sk.decrypt(ct)?);
                    for range in slots.chunks_exact_mut(l.m) {
                        self.plan.inverse(range);
                    }
                    Ok(slots)
                })
                .collect::<Result<Vec<_>, PaheError>>()?;
            for (i, slots) in convs.iter().enumerate() {
                let (g, t) = (i / nt, batch.start + i % nt);
                for (j, conv) in slots.chunks_exact(l.m).enumerate() {
                    let o = g * l.replicas + j;
                    if o < l.c_out {
                        let dst = &mut y[o * plane..(o + 1) * plane];
                        l.scatter(conv, t, dst, params.p(), false);
                    }
                }
            }
        }
        Ok(Tensor::from_vec(l.c_out, l.dims, y).expect("c_out planes"))
    }
}

/// Default bound on the bytes of prepared filters a [`HomConvServer`] keeps (256 MiB): layers
/// whose filters fit are prepared once, larger ones in bounded batches of output-channel groups
/// during each run.
pub const PREPARED_FILTER_BUDGET: usize = 256 << 20;

/// Bob's side of HomConv for one conv of a model: the filters are transformed, packed and
/// prepared once ([`HomConvServer::new`]) and reused for every run — or, if they exceed the
/// memory budget, prepared per batch of output-channel groups while a run processes them.
/// `Debug` shows the shape, never the weights.
pub struct HomConvServer<'a> {
    params: Params,
    layout: Layout,
    plan: CyclicPlan,
    eval: Evaluator,
    model: &'a QuantModel,
    conv: usize,
    /// `W mod p`, `[c_out][c_in][taps]`.
    weight: Vec<u64>,
    /// Output-channel groups whose filters are prepared at a time when they are streamed.
    batch: usize,
    /// `filters[g · c_in + c]`: slot range `j` holds the DFT of `W[g·r + j][c]`; every group if
    /// they fit the budget, else empty (prepared per batch in [`HomConvServer::run`]).
    filters: Vec<PreparedPlaintext>,
}

impl std::fmt::Debug for HomConvServer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomConvServer")
            .field("layout", &self.layout)
            .field("conv", &self.conv)
            .field("batch", &self.batch)
            .field("streams_filters", &self.streams_filters())
            .finish_non_exhaustive()
    }
}

/// The prepared filters of output-channel groups `groups`, `[g][c]` order.
fn prepare_filters(
    params: &Params,
    layout: &Layout,
    plan: &CyclicPlan,
    weight: &[u64],
    groups: std::ops::Range<usize>,
) -> Result<Vec<PreparedPlaintext>, PaheError> {
    let taps: usize = layout.kernel.iter().product();
    let (c_in, r, m) = (layout.c_in, layout.replicas, layout.m);
    let first = groups.start;
    (0..groups.len() * c_in)
        .into_par_iter()
        .map(|i| {
            let (g, c) = (first + i / c_in, i % c_in);
            let mut slots = vec![0u64; layout.slots];
            for (j, range) in slots.chunks_exact_mut(m).enumerate() {
                let o = g * r + j;
                if o < layout.c_out {
                    let w = &weight[(o * c_in + c) * taps..(o * c_in + c + 1) * taps];
                    range.copy_from_slice(&layout.place_filter(w));
                    plan.forward(range);
                }
            }
            Ok(params.prepare(&params.encode(&slots)?))
        })
        .collect()
}

impl<'a> HomConvServer<'a> {
    /// Bob's side for conv `conv` of `model` with `layout` under `params`, keeping at most
    /// [`PREPARED_FILTER_BUDGET`] bytes of prepared filters.
    ///
    /// # Errors
    /// [`HomConvError::Modulus`] unless the model's p is the parameters' p;
    /// [`HomConvError::Unsupported`] if `layout` is not for this conv;
    /// [`HomConvError::TooManyChannels`]; [`HomConvError::LayoutMismatch`].
    pub fn new(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        layout: Layout,
    ) -> Result<Self, HomConvError> {
        Self::with_filter_budget(params, model, conv, layout, PREPARED_FILTER_BUDGET)
    }

    /// As [`HomConvServer::new`] with a bound of `budget` bytes on the prepared filters: if all
    /// of them fit they are prepared now and reused by every run; otherwise each run prepares
    /// them per batch of output-channel groups (as many as fit `budget`, at least one) and
    /// drops a batch when its outputs are sent — bounded memory, at the price of preparing
    /// the filters again in every run (once per round trip of tiles, see [`UPLOAD_BATCH`]).
    ///
    /// # Errors
    /// As [`HomConvServer::new`].
    pub fn with_filter_budget(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        layout: Layout,
        budget: usize,
    ) -> Result<Self, HomConvError> {
        let qc = layer_for(params, model, conv, &layout)?;
        let p = params.p();
        let spec = &qc.spec;
        if spec.c_in as u64 > HOMCONV_MAX_CHANNELS {
            return Err(HomConvError::TooManyChannels {
                c_in: spec.c_in,
                max: HOMCONV_MAX_CHANNELS,
            });
        }
        let plan = CyclicPlan::new(layout.m, p)?;
        let weight = qc.weight_mod_p(p);
        let group_bytes = layout.c_in * params.max_level() * params.n() * 8;
        let groups = layout.groups();
        let batch = (budget / group_bytes).clamp(1, groups);
        let filters = if batch == groups {
            prepare_filters(params, &layout, &plan, &weight, 0..groups)?
        } else {
            Vec::new()
        };
        Ok(Self {
            params: params.clone(),
            eval: Evaluator::new(params),
            layout,
            plan,
            model,
            conv,
            weight,
            batch,
            filters,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether the filters are prepared per batch of groups in every run (they exceed the
    /// budget) rather than once.
    pub fn streams_filters(&self) -> bool {
        self.filters.is_empty()
    }

    /// Runs HomConv on Bob's share `x_b` (`c_in` planes, residues `< p`) with Alice's public key
    /// (for re-randomisation): returns his share `Y_B` of the `c_out` output planes.
    ///
    /// # Errors
    /// [`HomConvError::Shape`] / [`HomConvError::Unreduced`] for a bad share;
    /// [`HomConvError::Crypto`] / [`HomConvError::Channel`] if the client's messages do not
    /// arrive or do not decode; [`HomConvError::Pahe`] if `pk` is for other parameters.
    pub fn run(
        &self,
        ch: &mut Channel,
        pk: &PublicKey,
        x_b: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        let l = &self.layout;
        l.check_share(x_b, l.c_in, self.params.p())?;
        let previous = ch.set_label(LABEL);
        let result = self.exchange(ch, pk, x_b, prg);
        ch.set_label(previous);
        result
    }

    fn exchange(
        &self,
        ch: &mut Channel,
        pk: &PublicKey,
        x_b: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        let (l, params) = (&self.layout, &self.params);
        let p = params.p();
        let max_len = params.seeded_ciphertext_len();
        let groups = l.groups();
        let plane = l.out_plane();
        // Y_B = conv(X_B) + B + IDFT(M), the masks added as they are drawn (computed first: the
        // client is encrypting the first batch meanwhile).
        let mut y = crate::fixed::conv(self.model, self.conv, x_b).into_vec();
        for tiles in l.tile_batches() {
            let nt = tiles.len();
            let seeded = (0..l.c_in * nt)
                .map(|_| {
                    ch.recv_message::<SeededCiphertext>(KIND_SEEDED_CIPHERTEXT, max_len, params)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let inputs: Vec<Ciphertext> = seeded.par_iter().map(SeededCiphertext::expand).collect();
            drop(seeded);
            for first in (0..groups).step_by(self.batch) {
                let batch = first..(first + self.batch).min(groups);
                let streamed;
                let filters = if self.filters.is_empty() {
                    streamed = prepare_filters(params, l, &self.plan, &self.weight, batch.clone())?;
                    &streamed[..]
                } else {
                    &self.filters[batch.start * l.c_in..batch.end * l.c_in]
                };
                let outputs = task_prgs(prg, batch.len() * nt)
                    .into_par_iter()
                    .enumerate()
                    .map(|(i, mut prg)| {
                        let (g, t) = (i / nt, i % nt);
                        let filters = &filters[g * l.c_in..(g + 1) * l.c_in];
                        let mut acc = inputs[t].clone();
                        self.eval.mul_plain_assign(&mut acc, &filters[0])?;
                        for (c, w) in filters.iter().enumerate().skip(1) {
                            self.eval
                                .mul_plain_add_assign(&mut acc, &inputs[c * nt + t], w)?;
                        }
                        let mut mask = random_mask(params, &mut prg);
                        let ct = self.eval.finalize_for_return(acc, &mask, pk, &mut prg)?;
                        for range in mask.chunks_exact_mut(l.m) {
                            self.plan.inverse(range);
                        }
                        Ok((ct, mask))
                    })
                    .collect::<Result<Vec<_>, PaheError>>()?;
                for (i, (ct, mask)) in outputs.iter().enumerate() {
                    ch.send_message(KIND_CIPHERTEXT, ct)?;
                    let (g, t) = (batch.start + i / nt, tiles.start + i % nt);
                    for (j, conv) in mask.chunks_exact(l.m).enumerate() {
                        let o = g * l.replicas + j;
                        if o < l.c_out {
                            l.scatter(conv, t, &mut y[o * plane..(o + 1) * plane], p, true);
                        }
                    }
                }
                ch.flush()?;
            }
        }
        Ok(Tensor::from_vec(l.c_out, l.dims, y).expect("c_out planes"))
    }
}

/// Alice's side of one linear layer under the session's [`LinearBackend`].
#[derive(Debug)]
pub enum LinearClient {
    /// The seed's DFT HomConv (boxed, as the other: the sides are large).
    Dft(Box<HomConvClient>),
    /// The coefficient-encoded HomConv.
    Coeff(Box<CoeffHomConvClient>),
}

impl LinearClient {
    /// Alice's side of conv `spec` on inputs of extents `dims` with `backend`'s layout.
    ///
    /// # Errors
    /// As [`Layout::new`] / [`CoeffLayout::new`] and the sides' constructors.
    pub fn new(
        params: &Params,
        spec: &ConvSpec,
        dims: [usize; 3],
        max_tile: Option<usize>,
        backend: LinearBackend,
    ) -> Result<Self, HomConvError> {
        Ok(match backend {
            LinearBackend::Dft => {
                let layout = Layout::new(params, spec, dims, max_tile)?;
                Self::Dft(Box::new(HomConvClient::new(params, layout)?))
            }
            LinearBackend::Coeff => {
                let layout = CoeffLayout::new(params, spec, dims, max_tile)?;
                Self::Coeff(Box::new(CoeffHomConvClient::new(params, layout)?))
            }
        })
    }

    /// Runs the layer on Alice's share: her share of the output.
    ///
    /// # Errors
    /// As [`HomConvClient::run`].
    pub fn run(
        &self,
        ch: &mut Channel,
        sk: &SecretKey,
        x_a: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        match self {
            Self::Dft(c) => c.run(ch, sk, x_a, prg),
            Self::Coeff(c) => c.run(ch, sk, x_a, prg),
        }
    }
}

/// Bob's side of one linear layer under the session's [`LinearBackend`].
#[derive(Debug)]
pub enum LinearServer<'a> {
    /// The seed's DFT HomConv (boxed, as the other: the sides are large).
    Dft(Box<HomConvServer<'a>>),
    /// The coefficient-encoded HomConv.
    Coeff(Box<CoeffHomConvServer<'a>>),
}

impl<'a> LinearServer<'a> {
    /// Bob's side of conv `conv` of `model` on inputs of extents `dims` with `backend`.
    ///
    /// # Errors
    /// As [`Layout::new`] / [`CoeffLayout::new`] and the sides' constructors.
    pub fn new(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        dims: [usize; 3],
        max_tile: Option<usize>,
        backend: LinearBackend,
    ) -> Result<Self, HomConvError> {
        let Some(qc) = model.convs().get(conv) else {
            return Err(HomConvError::Unsupported(format!("conv index {conv}")));
        };
        let spec = &qc.spec;
        Ok(match backend {
            LinearBackend::Dft => {
                let layout = Layout::new(params, spec, dims, max_tile)?;
                Self::Dft(Box::new(HomConvServer::new(params, model, conv, layout)?))
            }
            LinearBackend::Coeff => {
                let layout = CoeffLayout::new(params, spec, dims, max_tile)?;
                Self::Coeff(Box::new(CoeffHomConvServer::new(
                    params, model, conv, layout,
                )?))
            }
        })
    }

    /// Runs the layer on Bob's share: his share of the output.
    ///
    /// # Errors
    /// As [`HomConvServer::run`].
    pub fn run(
        &self,
        ch: &mut Channel,
        pk: &PublicKey,
        x_b: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        match self {
            Self::Dft(s) => s.run(ch, pk, x_b, prg),
            Self::Coeff(s) => s.run(ch, pk, x_b, prg),
        }
    }
}

#[cfg(test)]
mod tests;
