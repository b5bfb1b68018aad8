//! What the two parties agree on: the fixed-point preset (Table 1's columns), the nonlinear
//! backend, the linear backend, the HomConv tile cap, the nonlinear chunk and the batch.

use std::sync::OnceLock;

use bunet_crypto::nonlinear::{self, Backend};
use bunet_crypto::pahe::Params;

use crate::arch::{Architecture, Dims};
use crate::quant::Quant;

use super::error::SecureError;

/// Largest batch ([`SessionConfig::batch`]): 64 slices of 512×512 are the most voxels a
/// request may carry ([`super::protocol::MAX_VOXELS`]).
pub const MAX_BATCH: usize = 64;

/// A fixed-point configuration with its PAHE parameter set (the seed's Table 1 columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// 32-bit: [`Quant::q32`] with [`Params::q32`].
    Q32,
    /// 24-bit: [`Quant::q24`] with [`Params::q24`].
    Q24,
}

impl Preset {
    /// Every preset, in the order command lines list them.
    pub const ALL: [Preset; 2] = [Preset::Q32, Preset::Q24];

    /// `"q32"` or `"q24"`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Q32 => "q32",
            Preset::Q24 => "q24",
        }
    }

    /// The preset named `name` (as [`Preset::name`] prints it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The fixed-point configuration.
    pub fn quant(self) -> Quant {
        match self {
            Preset::Q32 => Quant::q32(),
            Preset::Q24 => Quant::q24(),
        }
    }

    /// Bits per value of the nonlinear circuits (`k`, 32 or 24).
    pub fn bits(self) -> u32 {
        match self {
            Preset::Q32 => 32,
            Preset::Q24 => 24,
        }
    }

    /// The PAHE parameter set (built once per process; its plaintext modulus is the quant's `p`).
    pub fn pahe_params(self) -> Params {
        static Q32: OnceLock<Params> = OnceLock::new();
        static Q24: OnceLock<Params> = OnceLock::new();
        match self {
            Preset::Q32 => Q32.get_or_init(Params::q32).clone(),
            Preset::Q24 => Q24.get_or_init(Params::q24).clone(),
        }
    }

    /// The nonlinear session configuration for `backend` (default chunk).
    ///
    /// # Errors
    /// Never for the presets (their `p` is below `2^k`); typed as the crypto crate's.
    pub fn nonlinear(self, backend: Backend) -> Result<nonlinear::Config, bunet_crypto::Error> {
        nonlinear::Config::new(backend, self.bits(), self.quant().p)
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The backend of the linear layers (convs, up-convs, head): the seed's DFT-slot HomConv or the
/// coefficient-encoded one (Cheetah's packing). Both give bit-identical shares.
///
/// The default is [`LinearBackend::Coeff`]: it sends fewer bytes and takes less time than the
/// DFT backend on every layer kind of the UNet (3×3 and 3×3×3 same-padded convs, the 2×2
/// stride-2 up-conv, the 1×1 head; docs/PERFORMANCE.md, "Coefficient HomConv speed"). It takes
/// weights up to the quantiser's `2^24` in a model's first conv (where calibration folds the
/// activation scale) and up to `2^16` in the others, public bounds by position
/// ([`crate::secure::homconv::coeff_weight_bits`]); a model beyond them needs
/// [`LinearBackend::Dft`], which takes any weight. The library's [`SessionConfig::new`] keeps the
/// seed's choices (DFT, garbled circuits); the `bunet` commands take this default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LinearBackend {
    /// The seed's HomConv: DFT over `Z_p`, slot packing ([`crate::secure::HomConvClient`]).
    Dft,
    /// The coefficient-encoded HomConv ([`crate::secure::homconv::CoeffHomConvClient`]).
    #[default]
    Coeff,
    /// The coefficient-encoded HomConv with the server's weights encrypted once per layer and
    /// session under a key pair of the server's ([`crate::secure::homconv::EwHomConvClient`]):
    /// per run only the client's responses travel; the set-up (the weight ciphertexts) is
    /// large and the client keeps it in memory for the session. Takes any weight.
    CoeffEw,
}

impl LinearBackend {
    /// Every linear backend, in the order command lines list them.
    pub const ALL: [LinearBackend; 3] = [
        LinearBackend::Dft,
        LinearBackend::Coeff,
        LinearBackend::CoeffEw,
    ];

    /// `"dft"`, `"coeff"` or `"coeff-ew"`.
    pub fn name(self) -> &'static str {
        match self {
            LinearBackend::Dft => "dft",
            LinearBackend::Coeff => "coeff",
            LinearBackend::CoeffEw => "coeff-ew",
        }
    }

    /// Whether the server holds a key pair of its own for the session (its public key follows
    /// the client's): the encrypted-weights backend's.
    pub fn server_keys(self) -> bool {
        self == LinearBackend::CoeffEw
    }

    /// The backend named `name` (as [`LinearBackend::name`] prints it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

impl std::fmt::Display for LinearBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the client proposes and the server accepts (compared field by field in the handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// The fixed-point preset and its PAHE parameters.
    pub preset: Preset,
    /// The backend of ReLU, rescale, max pool and argmax.
    pub nonlinear: Backend,
    /// The backend of the linear layers.
    pub linear: LinearBackend,
    /// Largest HomConv tile side (`None`: as large as the slots allow). Both parties derive the
    /// same layouts from it.
    pub max_tile: Option<usize>,
    /// Nonlinear instances per chunk: one OT (or garbling) exchange carries a chunk, so a larger
    /// chunk means fewer round trips per layer at the cost of memory per party
    /// ([`nonlinear::DEFAULT_CHUNK`] unless set; `1..=`[`nonlinear::MAX_CHUNK`]).
    pub chunk: usize,
    /// Most slices per request of a 2D network (`1..=`[`MAX_BATCH`], default 1): a request of
    /// `b ≤ batch` slices stacks them along the depth axis ([`crate::tensor::batch`]) and runs
    /// them as one inference, so every HomConv, OT and garbling exchange carries all `b`
    /// slices' work — a `b`-th of the round trips per slice at the same bytes per slice. Each
    /// slice's mask is the one it gets alone. Volume (3D) networks take one slab per request
    /// whatever the batch.
    pub batch: usize,
}

impl SessionConfig {
    /// `preset` with the garbled-circuit backend, the DFT HomConv and the largest tiles.
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            nonlinear: Backend::Gc,
            linear: LinearBackend::Dft,
            max_tile: None,
            chunk: nonlinear::DEFAULT_CHUNK,
            batch: 1,
        }
    }

    /// Checks a request's extents against the agreed batch: a 2D request holds at most
    /// [`SessionConfig::batch`] slices (its depth).
    ///
    /// # Errors
    /// [`SecureError::Protocol`] for a 2D request deeper than the batch, or a batch outside
    /// `1..=`[`MAX_BATCH`].
    pub fn check_batch(&self, arch: &Architecture, dims: [usize; 3]) -> Result<(), SecureError> {
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(SecureError::Protocol(format!(
                "batch {} outside 1..={MAX_BATCH}",
                self.batch
            )));
        }
        if arch.dims == Dims::Two && dims[0] > self.batch {
            return Err(SecureError::Protocol(format!(
                "a request of {} slices exceeds the session's batch of {}",
                dims[0], self.batch
            )));
        }
        Ok(())
    }

    /// The nonlinear session configuration: the backend and chunk of this session at the
    /// preset's width and modulus.
    ///
    /// # Errors
    /// An out-of-range chunk (typed as the crypto crate's).
    pub fn nonlinear_config(&self) -> Result<nonlinear::Config, bunet_crypto::Error> {
        self.preset
            .nonlinear(self.nonlinear)?
            .with_chunk(self.chunk)
    }
}
