//! What the two parties agree on: the fixed-point preset (Table 1's columns), the nonlinear
//! backend and the HomConv tile cap.

use std::sync::OnceLock;

use bunet_crypto::nonlinear::{self, Backend};
use bunet_crypto::pahe::Params;

use crate::quant::Quant;

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

/// What the client proposes and the server accepts (compared field by field in the handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// The fixed-point preset and its PAHE parameters.
    pub preset: Preset,
    /// The backend of ReLU, rescale, max pool and argmax.
    pub nonlinear: Backend,
    /// Largest HomConv tile side (`None`: as large as the slots allow). Both parties derive the
    /// same layouts from it.
    pub max_tile: Option<usize>,
    /// Nonlinear instances per chunk: one OT (or garbling) exchange carries a chunk, so a larger
    /// chunk means fewer round trips per layer at the cost of memory per party
    /// ([`nonlinear::DEFAULT_CHUNK`] unless set; `1..=`[`nonlinear::MAX_CHUNK`]).
    pub chunk: usize,
}

impl SessionConfig {
    /// `preset` with the garbled-circuit backend and the largest tiles.
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            nonlinear: Backend::Gc,
            max_tile: None,
            chunk: nonlinear::DEFAULT_CHUNK,
        }
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
