//! HomConv (the seed's §4.3): one convolution layer on additive shares over `Z_p`.
//!
//! Three backends with bit-identical shares sit behind [`LinearClient`] / [`LinearServer`]: the
//! seed's DFT HomConv described below, the coefficient-encoded one of the `coeff` module
//! ([`CoeffHomConvClient`], Cheetah's packing), and the same packing with the server's weights
//! encrypted once per session under a key pair of its own (`ew`, [`EwHomConvClient`]: per run
//! only the client's responses travel), chosen per session ([`LinearBackend`]).
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
//!    `conv(X_A)` without bias), draws a uniform mask `M` ([`random_mask`](bunet_crypto::pahe::random_mask)), and returns
//!    [`Evaluator::finalize_for_return`](bunet_crypto::pahe::Evaluator::finalize_for_return) of it (HSS share `−M`, re-randomisation with noise flooding,
//!    modulus switch down): `groups · tiles` ciphertexts.
//! 3. Alice decrypts and inverse-DFTs: `Y_A = conv(X_A) − IDFT(M)`. Bob computes his own
//!    share's contribution in the clear: `Y_B = conv(X_B) + B + IDFT(M)`. Since the conv is linear
//!    mod p, `Y_A + Y_B = conv(X) + B`.
//!
//! The tiles go in round trips of [`Layout::tiles_per_batch`] tiles (steps 1–3 per batch, at most
//! [`UPLOAD_BATCH`] uploaded ciphertexts each), so both parties' memory stays bounded whatever
//! the image size.
//!
//! Messages use the PAHE kinds ([`KIND_SEEDED_CIPHERTEXT`](bunet_crypto::pahe::KIND_SEEDED_CIPHERTEXT),
//! [`KIND_CIPHERTEXT`](bunet_crypto::pahe::KIND_CIPHERTEXT)), every incoming
//! message is bounded by the parameters' ciphertext length and decoded through
//! [`bunet_crypto::wire`]; traffic is counted under the channel label [`LABEL`]. The round trips
//! are written once for both backends (`exchange`, a `Packing` per backend).

use bunet_crypto::channel::{Channel, ChannelError};
use std::sync::Arc;

use bunet_crypto::pahe::{HOMCONV_MAX_CHANNELS, PaheError, Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_kernels::ntt::CyclicPlan;

use crate::arch::{ConvKind, ConvSpec};
use crate::quant::QuantModel;
use crate::secure::config::LinearBackend;
use crate::tensor::Tensor;

mod coeff;
mod ew;
mod exchange;
mod layout;

pub use exchange::FilterTiming;
use exchange::{Dft, ServerCore};

pub use coeff::{CoeffHomConvClient, CoeffHomConvServer, CoeffLayout, coeff_weight_bits};
pub use ew::{EwHomConvClient, EwHomConvServer, SETUP_LABEL, weight_memory};
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

/// Alice's side of HomConv for one layer shape.
#[derive(Debug)]
pub struct HomConvClient {
    params: Params,
    dft: Dft,
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
            dft: Dft { layout, plan },
        })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.dft.layout
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
        exchange::run_client(&self.dft, &self.params, ch, sk, x_a, prg)
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
#[derive(Debug)]
pub struct HomConvServer<'a> {
    core: ServerCore<'a, Dft>,
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
        Self::with_timing(params, model, conv, layout, budget, FilterTiming::Eager)
    }

    /// As [`HomConvServer::with_filter_budget`], preparing the filters that fit `budget` at
    /// the time `timing` says (the session driver defers them to the first upload).
    ///
    /// # Errors
    /// As [`HomConvServer::new`].
    pub fn with_timing(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        layout: Layout,
        budget: usize,
        timing: FilterTiming,
    ) -> Result<Self, HomConvError> {
        let qc = layer_for(params, model, conv, &layout)?;
        if qc.spec.c_in as u64 > HOMCONV_MAX_CHANNELS {
            return Err(HomConvError::TooManyChannels {
                c_in: qc.spec.c_in,
                max: HOMCONV_MAX_CHANNELS,
            });
        }
        let plan = CyclicPlan::new(layout.m, params.p())?;
        let dft = Dft { layout, plan };
        let core = ServerCore::new(params, model, conv, qc, dft, budget, timing)?;
        Ok(Self { core })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.core.packing.layout
    }

    /// Whether the filters are prepared per batch of groups in every run (they exceed the
    /// budget) rather than once.
    pub fn streams_filters(&self) -> bool {
        self.core.streams_filters()
    }

    /// Whether prepared filters are held now (false before a deferred side's first run and
    /// after a run that dropped them).
    pub fn holds_filters(&self) -> bool {
        self.core.holds_filters()
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
        self.core.run(ch, pk, x_b, prg)
    }
}

/// Alice's side of one linear layer under the session's [`LinearBackend`].
#[derive(Debug)]
pub enum LinearClient {
    /// The seed's DFT HomConv (boxed, as the other: the sides are large).
    Dft(Box<HomConvClient>),
    /// The coefficient-encoded HomConv.
    Coeff(Box<CoeffHomConvClient>),
    /// The coefficient-encoded HomConv with the server's weights encrypted.
    CoeffEw(Box<EwHomConvClient>),
}

/// The error of an encrypted-weights side built without the server's key.
fn missing_server_key() -> HomConvError {
    HomConvError::Unsupported(
        "the coeff-ew backend without the server's key pair (sent once per session)".into(),
    )
}

impl LinearClient {
    /// Alice's side of conv `conv` of the architecture, `spec`, on inputs of extents `dims` with
    /// `backend`'s layout (the coefficient one for the conv's public weight bound,
    /// [`coeff_weight_bits`], as the server's [`LinearServer::new`]); `server_pk` is the
    /// server's public key of the session, which [`LinearBackend::CoeffEw`] needs.
    ///
    /// # Errors
    /// As [`Layout::new`] / [`CoeffLayout::new`] and the sides' constructors;
    /// [`HomConvError::Unsupported`] for [`LinearBackend::CoeffEw`] without `server_pk`.
    pub fn new(
        params: &Params,
        (conv, spec): (usize, &ConvSpec),
        dims: [usize; 3],
        max_tile: Option<usize>,
        (backend, server_pk): (LinearBackend, Option<&PublicKey>),
    ) -> Result<Self, HomConvError> {
        Ok(match backend {
            LinearBackend::Dft => {
                let layout = Layout::new(params, spec, dims, max_tile)?;
                Self::Dft(Box::new(HomConvClient::new(params, layout)?))
            }
            LinearBackend::Coeff => {
                let bits = coeff_weight_bits(conv);
                let layout = CoeffLayout::new(params, spec, dims, max_tile, bits)?;
                Self::Coeff(Box::new(CoeffHomConvClient::new(params, layout)?))
            }
            LinearBackend::CoeffEw => {
                let pk = server_pk.ok_or_else(missing_server_key)?.clone();
                let layout = CoeffLayout::encrypted_weights(params, spec, dims, max_tile)?;
                Self::CoeffEw(Box::new(EwHomConvClient::new(params, layout, pk)?))
            }
        })
    }

    /// The backend's once-per-session set-up of this layer, if it has one and it is not done:
    /// the encrypted-weights backend receives the weight ciphertexts; the others do nothing.
    ///
    /// # Errors
    /// As [`EwHomConvClient::setup`].
    pub fn setup(&self, ch: &mut Channel) -> Result<(), HomConvError> {
        match self {
            Self::CoeffEw(c) => c.setup(ch),
            Self::Dft(_) | Self::Coeff(_) => Ok(()),
        }
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
            Self::CoeffEw(c) => c.run(ch, x_a, prg),
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
    /// The coefficient-encoded HomConv with the server's weights encrypted.
    CoeffEw(Box<EwHomConvServer<'a>>),
}

impl<'a> LinearServer<'a> {
    /// Bob's side of conv `conv` of `model` on inputs of extents `dims` with `backend`, its
    /// filters prepared (within [`PREPARED_FILTER_BUDGET`]) when `timing` says (the coefficient
    /// layout for the conv's public weight bound, [`coeff_weight_bits`], as the client's
    /// [`LinearClient::new`]); `own` is the server's secret key of the session, which
    /// [`LinearBackend::CoeffEw`] needs (its weights are encrypted under it).
    ///
    /// # Errors
    /// As [`Layout::new`] / [`CoeffLayout::new`] and the sides' constructors;
    /// [`HomConvError::Unsupported`] for [`LinearBackend::CoeffEw`] without `own`.
    pub fn new(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        dims: [usize; 3],
        (max_tile, backend): (Option<usize>, LinearBackend),
        (timing, own): (FilterTiming, Option<&Arc<SecretKey>>),
    ) -> Result<Self, HomConvError> {
        let Some(qc) = model.convs().get(conv) else {
            return Err(HomConvError::Unsupported(format!("conv index {conv}")));
        };
        let spec = &qc.spec;
        Ok(match backend {
            LinearBackend::Dft => {
                let layout = Layout::new(params, spec, dims, max_tile)?;
                let budget = PREPARED_FILTER_BUDGET;
                Self::Dft(Box::new(HomConvServer::with_timing(
                    params, model, conv, layout, budget, timing,
                )?))
            }
            LinearBackend::Coeff => {
                let bits = coeff_weight_bits(conv);
                let layout = CoeffLayout::new(params, spec, dims, max_tile, bits)?;
                let budget = PREPARED_FILTER_BUDGET;
                Self::Coeff(Box::new(CoeffHomConvServer::with_timing(
                    params, model, conv, layout, budget, timing,
                )?))
            }
            LinearBackend::CoeffEw => {
                let sk = own.ok_or_else(missing_server_key)?.clone();
                let layout = CoeffLayout::encrypted_weights(params, spec, dims, max_tile)?;
                Self::CoeffEw(Box::new(EwHomConvServer::new(
                    params, model, conv, layout, sk,
                )?))
            }
        })
    }

    /// Whether prepared filters are held now.
    pub fn holds_filters(&self) -> bool {
        match self {
            Self::Dft(s) => s.holds_filters(),
            Self::Coeff(s) => s.holds_filters(),
            // No prepared filters: the weights went to the client encrypted.
            Self::CoeffEw(_) => false,
        }
    }

    /// The backend's once-per-session set-up of this layer, if it has one and it is not done:
    /// the encrypted-weights backend encrypts and sends its weights; the others do nothing.
    ///
    /// # Errors
    /// As [`EwHomConvServer::setup`].
    pub fn setup(&self, ch: &mut Channel, prg: &mut Prg) -> Result<(), HomConvError> {
        match self {
            Self::CoeffEw(s) => s.setup(ch, prg),
            Self::Dft(_) | Self::Coeff(_) => Ok(()),
        }
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
            Self::CoeffEw(s) => s.run(ch, x_b, prg),
        }
    }
}

#[cfg(test)]
mod tests;
