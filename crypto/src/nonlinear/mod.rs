//! The nonlinear layers on additive shares (seed §4.3: SecAct ReLU, SecPool max pool,
//! SecArgmax) behind one interface, [`Nonlinear`], with a backend named in the [`Config`].
//!
//! A session is set up once per connection ([`setup`]) and then serves any number of calls, in
//! the same order on both sides:
//!
//! | call | input per instance | Alice gets | Bob gets |
//! | --- | --- | --- | --- |
//! | [`Nonlinear::relu_rescale`] | one share of `v` | `r` | `(max(0, signed v) >> shift) − r mod p` |
//! | [`Nonlinear::rescale`] | one share of `v` | `r` | `(signed v >> shift) − r mod p` |
//! | [`Nonlinear::max4_rescale`] | four shares (a 2×2 window) | `r` | `(max_j signed v_j >> shift) − r mod p` |
//! | [`Nonlinear::argmax2`] | two shares (class scores `y0, y1`) | `[signed y1 > signed y0]` | nothing |
//!
//! with the fixed-point convention of [`crate::gc::fixed_point`] (centred representatives,
//! arithmetic shift = floor) and `r` a fresh uniform mask Alice draws from her [`Prg`]. Outputs
//! are bit-identical to [`Gadget::reference`](crate::gc::fixed_point::Gadget::reference) for
//! every backend.
//!
//! # Backends
//! - [`Backend::Gc`] ([`GcSession`]): Alice garbles the protocol circuit of
//!   [`crate::gc::fixed_point`] (half-gates, free-XOR), Bob evaluates; Bob's input labels come
//!   from IKNP correlated OT whose global correlation is the garbler's Δ (one Δ with lsb 1,
//!   drawn once per session): Alice's zero-messages `q_i` are the zero labels of Bob's input
//!   wires and Bob receives `q_i ⊕ b_i·Δ`, his active labels. Inputs are processed in chunks of
//!   [`Config::chunk`] instances, so a layer of millions of activations runs in bounded memory
//!   (about `chunk · values · k · 32` bytes of labels per party, plus the garbler's bounded
//!   sub-batches).
//!
//! - [`Backend::Ot`] ([`OtSession`]): CrypTFlow2/SCI's millionaires' comparison on silent
//!   (Ferret) OT, 1-out-of-16 OTs on 4-bit digits and Beaver ANDs on silent triples, with exact
//!   rescaling over `Z_p` from the wrap and carry bits (derivation in [`ot`]); Alice's output
//!   shares are her masks `r`, as in the GC backend. Its traffic (silent OT included) goes under
//!   the `"<block>/ot"` labels only.
//!
//! Drivers hold a `Box<dyn Nonlinear>` and never name the backend; both backends equal the same
//! reference, so they produce identical shares for the same masks.
//!
//! # Traffic labels
//! Each call counts its bytes under two channel labels per building block ([`Block`]):
//! `"<block>/ot"` for the label OTs and `"<block>/gc"` for the garbled tables, decoding bits and
//! (argmax) colour bits, e.g. `"relu/ot"` + `"relu/gc"`; [`traffic`] sums a block. Session
//! set-up (base OTs) is counted under [`SETUP_LABEL`]. Input-independent work run ahead by
//! [`Nonlinear::precompute`] is counted under `"<block>/offline"` ([`Block::offline_label`]).
//!
//! # Precomputation
//! [`Nonlinear::precompute`] takes the upcoming calls ([`Call`], from the public plan) and a
//! memory budget ([`DEFAULT_PRECOMPUTE_BUDGET`]). For [`Backend::Gc`], Alice draws masks and
//! labels, garbles and sends the tables of as many whole chunks, in call order, as fit; Bob's
//! labels come from random correlated OT ahead; online, each precomputed chunk costs one bit
//! per Bob input wire (Bob → Alice) and one label per input wire (Alice → Bob), see
//! [`GcSession`].
//!
//! # Square activations
//! Square is not a comparison and stays with Beaver square pairs ([`crate::triples::Session`],
//! its own OT sessions in both directions). The driver runs `rescale` here, then
//! [`triples::Session::square`](crate::triples::Session::square) on the rescaled shares with
//! pairs made beforehand by `square_pairs` (offline); both sessions share one channel, in the
//! same call order on both sides.
//!
//! # Security
//! Semi-honest two-party security (see [`crate::gc`] and [`crate::ot`]): Bob learns only his
//! output shares, which are uniform because Alice's masks are; Alice learns only her masks and,
//! for argmax, the comparison bits. Both parties must agree beforehand (handshake) on the
//! backend, `k`, `p` and the chunk size; after any error the session is out of step with its
//! peer and must be dropped together with the channel.

mod gc;
pub mod ot;
#[cfg(test)]
mod tests;

pub use crate::triples::Role;
pub use gc::GcSession;
pub use ot::OtSession;

use crate::Error;
use crate::channel::{Channel, Meter, Traffic};
use crate::gc::fixed_point::Params;
use crate::prg::Prg;

/// Instances per chunk unless configured otherwise: 2^14 (≈ 16 MiB of labels per party for a
/// 32-bit ReLU chunk, 4× that for max pool).
pub const DEFAULT_CHUNK: usize = 1 << 14;
/// Largest accepted chunk: 2^20 instances.
pub const MAX_CHUNK: usize = 1 << 20;
/// Channel label of the session set-up (base OTs).
pub const SETUP_LABEL: &str = "nonlinear/setup";
/// Default budget of [`Nonlinear::precompute`]: 256 MiB of precomputed state per party.
pub const DEFAULT_PRECOMPUTE_BUDGET: usize = 256 << 20;

/// One upcoming call, for [`Nonlinear::precompute`]: which building block, how many instances
/// (ReLU / rescale values, max-pool windows, argmax pixels) and the shift (0 for argmax).
/// Both parties derive the same list from public data (the plan and the extents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Call {
    /// The building block (the method that will be called).
    pub block: Block,
    /// Instances of the call.
    pub instances: usize,
    /// The call's shift (0 for [`Block::Argmax`]).
    pub shift: u32,
}

/// The protocol family that computes the comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Garbled circuits (the seed's protocol): half-gates + IKNP correlated OT for Bob's labels.
    Gc,
    /// OT-based millionaires' comparisons on silent (Ferret) OT, exact rescaling over `Z_p`
    /// ([`OtSession`]); `k ≤ 60`.
    Ot,
}

impl Backend {
    /// Every backend this build offers, in the order command lines list them.
    pub const ALL: &'static [Backend] = &[Backend::Gc, Backend::Ot];

    /// The name reports print and command lines and handshakes use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gc => "gc",
            Backend::Ot => "ot",
        }
    }

    /// The backend named `name` (as [`Backend::name`] prints it), if this build offers it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|b| b.name() == name)
    }
}

/// What both parties agree on before [`setup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// The backend.
    pub backend: Backend,
    /// Bits per value (24 or 32 in BUNET; `2..=62`).
    pub k: u32,
    /// The odd plaintext modulus, `2 < p < 2^k`.
    pub p: u64,
    /// Instances per chunk (`1..=MAX_CHUNK`).
    pub chunk: usize,
}

impl Config {
    /// A configuration with [`DEFAULT_CHUNK`].
    ///
    /// # Errors
    /// [`crate::gc::GcError::InvalidParams`] unless `2 ≤ k ≤ 62` and `p` is odd with
    /// `2 < p < 2^k`.
    pub fn new(backend: Backend, k: u32, p: u64) -> Result<Self, Error> {
        Params::new(k, p, 0)?;
        Ok(Self {
            backend,
            k,
            p,
            chunk: DEFAULT_CHUNK,
        })
    }

    /// An upper bound on the body of any one message of a session with this configuration:
    /// `16·k` bytes per instance of a chunk (the OT backend's largest message, the digit OTs of
    /// a chunk's comparisons, measured at 88 bytes per instance for `k = 32`; max pool's
    /// four-way messages stay within it), and never below the channel's default cap. At most
    /// `2^20 · 16 · 62` bytes (≈ 1 GiB) for the largest chunk and width.
    pub fn max_message_len(&self) -> u64 {
        (self.chunk as u64 * 16 * u64::from(self.k)).max(crate::channel::DEFAULT_MAX_FRAME_LEN)
    }

    /// The same configuration with `chunk` instances per chunk.
    ///
    /// # Errors
    /// [`NonlinearError::InvalidChunk`] unless `1 ≤ chunk ≤ MAX_CHUNK`.
    pub fn with_chunk(self, chunk: usize) -> Result<Self, Error> {
        if !(1..=MAX_CHUNK).contains(&chunk) {
            return Err(NonlinearError::InvalidChunk { chunk }.into());
        }
        Ok(Self { chunk, ..self })
    }

    /// The fixed-point parameters of a call with `shift`.
    ///
    /// # Errors
    /// [`crate::gc::GcError::InvalidParams`] unless `shift < k − 1`.
    pub fn params(&self, shift: u32) -> Result<Params, Error> {
        Ok(Params::new(self.k, self.p, shift)?)
    }
}

/// The building blocks, for traffic labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Block {
    /// [`Nonlinear::relu_rescale`].
    Relu,
    /// [`Nonlinear::rescale`].
    Rescale,
    /// [`Nonlinear::max4_rescale`].
    MaxPool,
    /// [`Nonlinear::argmax2`].
    Argmax,
}

impl Block {
    /// Every block.
    pub const ALL: [Block; 4] = [Block::Relu, Block::Rescale, Block::MaxPool, Block::Argmax];

    /// The block's name (`relu`, `rescale`, `maxpool`, `argmax`).
    pub fn name(self) -> &'static str {
        match self {
            Block::Relu => "relu",
            Block::Rescale => "rescale",
            Block::MaxPool => "maxpool",
            Block::Argmax => "argmax",
        }
    }

    /// The label of the block's OT traffic.
    pub fn ot_label(self) -> &'static str {
        match self {
            Block::Relu => "relu/ot",
            Block::Rescale => "rescale/ot",
            Block::MaxPool => "maxpool/ot",
            Block::Argmax => "argmax/ot",
        }
    }

    /// The label of the block's input-independent traffic sent by [`Nonlinear::precompute`].
    pub fn offline_label(self) -> &'static str {
        match self {
            Block::Relu => "relu/offline",
            Block::Rescale => "rescale/offline",
            Block::MaxPool => "maxpool/offline",
            Block::Argmax => "argmax/offline",
        }
    }

    /// The label of the block's garbled-circuit traffic.
    pub fn gc_label(self) -> &'static str {
        match self {
            Block::Relu => "relu/gc",
            Block::Rescale => "rescale/gc",
            Block::MaxPool => "maxpool/gc",
            Block::Argmax => "argmax/gc",
        }
    }
}

/// The traffic of one building block (OT and garbled-circuit parts) as seen by one party.
pub fn traffic(meter: &Meter, block: Block) -> Traffic {
    let mut t = meter.get(block.ot_label());
    t.add(&meter.get(block.gc_label()));
    t
}

/// Why a nonlinear call refused its inputs or its peer's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonlinearError {
    /// The input is not a whole number of instances.
    #[error("{what}: expected a multiple of {values} shares, found {found}")]
    InputLength {
        /// Which call.
        what: &'static str,
        /// Shares per instance.
        values: usize,
        /// The number of shares given.
        found: usize,
    },
    /// The chunk size is outside `1..=MAX_CHUNK`.
    #[error("chunk of {chunk} instances: expected 1..={max}", max = MAX_CHUNK)]
    InvalidChunk {
        /// The chunk size given.
        chunk: usize,
    },
    /// An online call does not match the next precomputed call (both parties must make the
    /// calls given to [`Nonlinear::precompute`], in order).
    #[error("call {found:?} does not match the precomputed call {expected:?}")]
    PrecomputeMismatch {
        /// The next precomputed call.
        expected: Call,
        /// The call made.
        found: Call,
    },
    /// The peer announced another number of precomputed chunks (e.g. more) than this party's
    /// budget and call list allow.
    #[error("peer announced {announced} precomputed chunks, the agreed budget allows {allowed}")]
    PrecomputeRefused {
        /// Chunks the peer announced.
        announced: u64,
        /// Chunks this party's budget and call list allow.
        allowed: u64,
    },
    /// An OT-backend millionaires' variant with digits outside `1..=4` bits
    /// ([`ot::Millionaires`]).
    #[error("millionaires' digits of {bits} bits: expected 1..=4")]
    InvalidDigitBits {
        /// The digit size given.
        bits: u32,
    },
    /// The peer's garbled data decoded to an output share that is not below `p` (an honest
    /// garbler never produces one).
    #[error("output share {value} is not below the modulus {p}")]
    OutputOutOfRange {
        /// The decoded value.
        value: u64,
        /// The modulus.
        p: u64,
    },
}

/// The nonlinear building blocks on additive shares over `Z_p`, as one party of a session.
///
/// Both parties call the same methods in the same order with inputs of the same length and the
/// same `shift`. `shares` are this party's shares (each below `p`), instance-major.
pub trait Nonlinear: std::fmt::Debug + Send {
    /// The backend of this session.
    fn backend(&self) -> Backend;

    /// This party's role.
    fn role(&self) -> Role;

    /// The session's configuration.
    fn config(&self) -> &Config;

    /// SecAct ReLU with rescaling: returns this party's shares of
    /// `max(0, signed(v)) >> shift mod p`, one per input share.
    ///
    /// # Errors
    /// [`crate::gc::GcError::InvalidParams`] unless `shift < k − 1`;
    /// [`crate::gc::GcError::ValueOutOfRange`] if a share is not below `p`; channel, wire and
    /// peer-data errors.
    fn relu_rescale(
        &mut self,
        ch: &mut Channel,
        shares: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error>;

    /// Rescaling alone (e.g. before a square activation): returns this party's shares of
    /// `floor(signed(v) / 2^shift) mod p`.
    ///
    /// # Errors
    /// As [`Nonlinear::relu_rescale`].
    fn rescale(&mut self, ch: &mut Channel, shares: &[u64], shift: u32) -> Result<Vec<u64>, Error>;

    /// SecPool max pool with rescaling: `windows` holds four shares per output (a 2×2 window,
    /// any order); returns this party's shares of `max_j signed(v_j) >> shift mod p`.
    ///
    /// # Errors
    /// [`NonlinearError::InputLength`] unless `windows.len()` is a multiple of 4; otherwise as
    /// [`Nonlinear::relu_rescale`].
    fn max4_rescale(
        &mut self,
        ch: &mut Channel,
        windows: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error>;

    /// SecArgmax of two classes: `pairs` holds this party's shares of `(y0, y1)` per pixel.
    /// Alice receives `[signed(y1) > signed(y0)]` per pixel (ties give class 0); Bob receives an
    /// empty vector.
    ///
    /// # Errors
    /// [`NonlinearError::InputLength`] unless `pairs.len()` is even; otherwise as
    /// [`Nonlinear::relu_rescale`].
    fn argmax2(&mut self, ch: &mut Channel, pairs: &[u64]) -> Result<Vec<bool>, Error>;

    /// Runs ahead of the inputs whatever input-independent work of the upcoming `calls` (in
    /// order) fits in `budget` bytes of state per party; the calls then consume it first and
    /// run the rest as usual. Both parties pass the same `calls` and `budget`. Traffic is
    /// counted under [`Block::offline_label`]. The default does nothing (a backend with no
    /// offline phase).
    ///
    /// # Errors
    /// Channel and wire errors; [`NonlinearError::PrecomputeRefused`] if the peer sends more
    /// than `budget` allows. Once precomputed, a call that differs from the next listed one is
    /// refused with [`NonlinearError::PrecomputeMismatch`] before any traffic.
    fn precompute(&mut self, ch: &mut Channel, calls: &[Call], budget: usize) -> Result<(), Error> {
        let _ = (ch, calls, budget);
        Ok(())
    }
}

/// Sets up a session of `config.backend` for `role` with the peer (who calls this with the
/// other role and the same `config`), e.g. base OTs; traffic is counted under [`SETUP_LABEL`].
/// `prg` must be secret and uniformly seeded ([`Prg::from_os_entropy`]).
///
/// # Errors
/// Channel and wire errors of the set-up.
pub fn setup(
    ch: &mut Channel,
    role: Role,
    config: Config,
    prg: Prg,
) -> Result<Box<dyn Nonlinear>, Error> {
    // A large agreed chunk makes single messages larger than the channel's default cap.
    ch.raise_max_frame_len(config.max_message_len());
    match config.backend {
        Backend::Gc => Ok(Box::new(GcSession::setup(ch, role, config, prg)?)),
        Backend::Ot => Ok(Box::new(OtSession::setup(ch, role, config, prg)?)),
    }
}
