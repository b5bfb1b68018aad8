//! The server's peak memory for one session, estimated from the plan before the session runs,
//! so that `bunet serve` admits a session only while its estimate fits the memory left.
//!
//! The estimate is an upper bound built from the same quantities the server's driver uses:
//! the prepared HomConv filters (all kept when they fit [`PREPARED_FILTER_BUDGET`] together,
//! else one layer's, or one batch of a layer's, at a time), one round trip of HomConv ciphertexts, the garbled-circuit state
//! precomputed within [`nonlinear::DEFAULT_PRECOMPUTE_BUDGET`] plus one chunk streamed online,
//! the Ferret buffers of the OT backend, the Galois and public keys, the additive shares
//! alive at once as the drivers' plan walk keeps them, and the channel's background I/O queues
//! at their bound ([`channel::io_bytes_bound`]). Each term is counted at its largest moment
//! even where two of them never coincide, so the sum over-counts; the harness's
//! `serve_admission` test compares it with the peak RSS of real sessions.

use bunet_crypto::channel;
use bunet_crypto::gc::fixed_point::{Gadget, Op as GcOp};
use bunet_crypto::nonlinear::{self, Backend, Block, Call};
use bunet_crypto::silent::Params as FerretParams;

use super::config::LinearBackend;
use super::config::SessionConfig;
use super::error::SecureError;
use super::handshake::{BusyReason, Status};
use super::homconv::{CoeffLayout, Layout, PREPARED_FILTER_BUDGET, weight_memory};
use super::protocol;
use crate::arch::{Architecture, Dims};
use crate::quant::{Op, QuantModel, QuantPlan};

/// In-plane extent of the default request: one 512×512 slice (a CT slice's usual size).
pub const DEFAULT_SLICE: usize = 512;

/// Bytes of per-session state that no plan quantity covers: the session thread's stack, the
/// evaluator, small vectors, and the allocator's slack (the channel's buffers and queues are
/// [`Estimate::channel`]).
const SESSION_OVERHEAD: u64 = 32 << 20;

/// Bytes the OT backend holds per shared value of a chunk in flight (the millionaires'
/// comparisons' OT messages, choice bits, AND-tree triples and outputs, both directions): an
/// allowance sized as 8 digits × 16 messages × 16 bytes × 2 directions, not derived from the
/// backend's code; the `serve_admission` tests check the sum against measured peaks.
const OT_BYTES_PER_VALUE: u64 = 8 * 16 * 16 * 2;

/// The default request's extents for `arch`: one 512×512 slice for the 2.5D model, a slab of
/// `2^depth` such slices (the smallest the 3D model's pooling accepts) for the 3D model.
pub fn default_extents(arch: &Architecture) -> [usize; 3] {
    match arch.dims {
        Dims::Two => [1, DEFAULT_SLICE, DEFAULT_SLICE],
        Dims::Three => [1 << arch.depth, DEFAULT_SLICE, DEFAULT_SLICE],
    }
}

/// The server's estimated peak bytes for one session, by term ([`Estimate::total`] sums them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Estimate {
    /// The client's public key and the Galois keys of the request's rotations (with the frame
    /// they arrive in).
    pub keys: u64,
    /// Prepared HomConv filters ([`FilterBytes::peak`]): every conv's when they fit the
    /// filter budget together (kept for the session) plus the largest streamed batch, else one
    /// layer's at a time.
    pub filters: u64,
    /// One HomConv round trip: the uploaded ciphertexts and the returned ones, decoded and on
    /// the wire.
    pub ciphertexts: u64,
    /// Garbled-circuit state precomputed for the request (GC backend), at most
    /// [`nonlinear::DEFAULT_PRECOMPUTE_BUDGET`].
    pub precompute: u64,
    /// The nonlinear backend's working set: one chunk evaluated online (GC), or the Ferret
    /// buffers and one chunk of comparisons (OT).
    pub nonlinear: u64,
    /// Additive shares alive at once (the U-Net's skip connections) plus the largest step's
    /// input, output and flattened copies.
    pub activations: u64,
    /// The channel's background I/O ([`channel::io_bytes_bound`]): its writer and read-ahead
    /// queues, each up to [`channel::queue_bound`] of the session's largest frame (the
    /// nonlinear configuration's [`nonlinear::Config::max_message_len`], to which the session
    /// raises the channel's default [`channel::DEFAULT_MAX_FRAME_LEN`]), and its two transport
    /// buffers. An honest peer that reads as it goes leaves the queues nearly empty; one that
    /// sends ahead of the protocol or stops reading fills them, so they are counted whole
    /// (256 MiB and 2 MiB at the default chunk).
    pub channel: u64,
    /// Fixed per-session overhead.
    pub overhead: u64,
}

impl Estimate {
    /// The estimated peak, in bytes.
    pub fn total(&self) -> u64 {
        self.keys
            + self.filters
            + self.ciphertexts
            + self.precompute
            + self.nonlinear
            + self.activations
            + self.channel
            + self.overhead
    }
}

/// Estimates the server's peak memory for one session of `model` under `config` whose
/// requests have extents `dims`.
///
/// # Errors
/// [`SecureError::Protocol`] / [`SecureError::Model`] if `dims` do not fit the architecture or
/// the bounds (the server would refuse such a request); HomConv errors if a conv has no
/// layout at these extents.
pub fn server_session(
    model: &QuantModel,
    config: &SessionConfig,
    dims: [usize; 3],
) -> Result<Estimate, SecureError> {
    let plan = model.plan();
    protocol::check_dims(plan.arch(), dims)?;
    let params = config.preset.pahe_params();
    let (n, levels) = (params.n() as u64, params.max_level() as u64);
    // A polynomial at the top level, in memory (one u64 per coefficient and prime).
    let poly = 8 * n * levels;
    let ciphertext = 2 * poly;

    // Keys: the public key (two polynomials), and per rotation step one key-switching key of
    // `levels` ciphertexts, received as one frame.
    let rotations =
        protocol::rotation_steps(&protocol::rotation_layouts(plan, dims, params.slots())?).len()
            as u64;
    let galois = rotations * levels * ciphertext;
    let keys = 2 * ciphertext + 2 * galois;

    let filters = filter_bytes(model, config, dims)?;
    // One round trip of ciphertexts per conv, as HomConvServer sizes them: the uploaded
    // ciphertexts (seeded on the wire, expanded in memory) and the returned ones, each held
    // decoded and encoded.
    let mut round_trip = 0u64;
    for (step, d) in plan.steps().iter().zip(protocol::step_dims(plan, dims)) {
        let Op::Conv { conv } = step.op else {
            continue;
        };
        let spec = &model.convs()[conv].spec;
        let layout = Layout::new(&params, spec, d, config.max_tile)?;
        let tiles = layout.tiles_per_batch() as u64;
        let groups = layout.groups() as u64;
        round_trip = round_trip.max(2 * tiles * (spec.c_in as u64 + groups) * ciphertext);
    }

    let calls = protocol::nonlinear_calls(plan, dims);
    let nl = config.nonlinear_config()?;
    let (precompute, nonlinear) = match config.nonlinear {
        Backend::Gc => gc_bytes(&nl, &calls)?,
        _ => (0, ot_bytes(&nl, &calls)),
    };

    // The encrypted-weights backend's server prepares no filters (its weights leave
    // encrypted, a pipeline step at a time) and holds its own key pair besides.
    let (filters, own_keys) = match config.linear {
        LinearBackend::CoeffEw => (0, 2 * ciphertext + poly),
        _ => (filters.peak(), 0),
    };
    Ok(Estimate {
        keys: keys + own_keys,
        filters,
        ciphertexts: round_trip,
        precompute,
        nonlinear,
        activations: activation_bytes(model, dims),
        channel: channel::io_bytes_bound(nl.max_message_len()),
        overhead: SESSION_OVERHEAD,
    })
}

/// The prepared HomConv filters of a request, as the server's driver sizes them
/// ([`filter_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilterBytes {
    /// All convs' filters that fit [`PREPARED_FILTER_BUDGET`] each (prepared whole), summed.
    pub resident_total: u64,
    /// The largest of those.
    pub resident_max: u64,
    /// The largest batch of groups of a conv whose filters exceed the budget (prepared per
    /// batch in every run).
    pub streamed_max: u64,
}

impl FilterBytes {
    /// Whether the server keeps the prepared filters for the session's later requests: only
    /// while all of them fit the budget together. Otherwise each layer's are dropped after
    /// its run and only one layer's are held at a time.
    pub fn kept(&self) -> bool {
        self.resident_total <= PREPARED_FILTER_BUDGET as u64
    }

    /// The most prepared-filter bytes held at once: all kept ones and a streamed batch, or
    /// one layer's.
    pub fn peak(&self) -> u64 {
        if self.kept() {
            self.resident_total + self.streamed_max
        } else {
            self.resident_max.max(self.streamed_max)
        }
    }
}

/// The prepared-filter bytes of a request of extents `dims` ([`FilterBytes`]), counted with
/// the DFT backend's filter size (a polynomial at the top level per input channel and output
/// group), the larger of the two backends'. The filters are prepared only when a layer's
/// first upload has arrived, so none of this is held before the client sends data.
///
/// # Errors
/// HomConv errors if a conv has no layout at these extents.
pub fn filter_bytes(
    model: &QuantModel,
    config: &SessionConfig,
    dims: [usize; 3],
) -> Result<FilterBytes, SecureError> {
    let plan = model.plan();
    let params = config.preset.pahe_params();
    let poly = 8 * params.n() as u64 * params.max_level() as u64;
    let mut bytes = FilterBytes::default();
    for (step, d) in plan.steps().iter().zip(protocol::step_dims(plan, dims)) {
        let Op::Conv { conv } = step.op else {
            continue;
        };
        let spec = &model.convs()[conv].spec;
        let layout = Layout::new(&params, spec, d, config.max_tile)?;
        let group_bytes = spec.c_in as u64 * poly;
        let groups = layout.groups() as u64;
        let batch = (PREPARED_FILTER_BUDGET as u64 / group_bytes).clamp(1, groups);
        if batch == groups {
            bytes.resident_total += groups * group_bytes;
            bytes.resident_max = bytes.resident_max.max(groups * group_bytes);
        } else {
            bytes.streamed_max = bytes.streamed_max.max(batch * group_bytes);
        }
    }
    Ok(bytes)
}

/// The bytes of HomConv weight ciphertexts the *client* keeps for a session of `plan` under
/// `config` whose requests have extents `dims`: with the encrypted-weights backend
/// ([`LinearBackend::CoeffEw`]) every conv's, received at its first run and held (NTT domain,
/// both halves, at the plan's upload level) while the extents repeat
/// ([`super::homconv::weight_memory`]); zero with the other backends. The server holds none
/// of them (it encrypts and sends them a pipeline step at a time).
///
/// # Errors
/// [`SecureError::Protocol`] / [`SecureError::Model`] for extents the server would refuse;
/// HomConv errors if a conv has no layout at these extents.
pub fn client_weight_bytes(
    plan: &QuantPlan,
    config: &SessionConfig,
    dims: [usize; 3],
) -> Result<u64, SecureError> {
    protocol::check_dims(plan.arch(), dims)?;
    if config.linear != LinearBackend::CoeffEw {
        return Ok(0);
    }
    let params = config.preset.pahe_params();
    let convs = plan.arch().convs();
    let mut total = 0;
    for (step, d) in plan.steps().iter().zip(protocol::step_dims(plan, dims)) {
        let Op::Conv { conv } = step.op else {
            continue;
        };
        let layout = CoeffLayout::encrypted_weights(&params, &convs[conv], d, config.max_tile)?;
        total += weight_memory(&params, &layout);
    }
    Ok(total)
}

/// What a server decides for a session hello whose fields match.
#[derive(Debug)]
pub enum Admission<T> {
    /// Run the session; `T` (e.g. a slot and a memory reservation) is held until it ends.
    Admit(T),
    /// Not now: the client is told to retry.
    Busy {
        /// The suggested wait.
        retry_after_s: u32,
        /// What is missing.
        reason: BusyReason,
    },
    /// Never: the client is told why.
    Refuse(String),
}

/// A server's admission control: decides on each session from its estimate, and reports the
/// server's load to probes. Called from the session threads, hence `Sync`.
pub trait Gate: Sync {
    /// What an admitted session holds until it ends (dropping it frees the slot and memory).
    type Ticket;

    /// Decides on a session of `extents` whose estimate is `estimate`.
    fn admit(&self, extents: [usize; 3], estimate: &Estimate) -> Admission<Self::Ticket>;

    /// The server's load now.
    fn status(&self) -> Status;
}

/// A gate that admits every session (the library's [`super::Server::accept`], local runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Open;

impl Gate for Open {
    type Ticket = ();

    fn admit(&self, _: [usize; 3], _: &Estimate) -> Admission<()> {
        Admission::Admit(())
    }

    fn status(&self) -> Status {
        Status {
            running: 0,
            max_sessions: u32::MAX,
            free_bytes: u64::MAX,
            budget_bytes: u64::MAX,
            default_session_bytes: 0,
        }
    }
}

/// The op a block's garbled circuit computes (as the GC backend maps them).
fn gc_op(block: Block) -> GcOp {
    match block {
        Block::Relu => GcOp::ReluRescaleReshare,
        Block::Rescale => GcOp::RescaleReshare,
        Block::MaxPool => GcOp::Max4RescaleReshare,
        Block::Argmax => GcOp::Argmax2,
    }
}

/// The GC backend's precomputed state (whole chunks in call order within the budget, as the
/// backend plans them) and its online working set (one chunk's state and wire labels, twice:
/// the chunk evaluated and the next one arriving).
fn gc_bytes(nl: &nonlinear::Config, calls: &[Call]) -> Result<(u64, u64), SecureError> {
    let budget = nonlinear::DEFAULT_PRECOMPUTE_BUDGET as u64;
    let (mut used, mut full, mut online) = (0u64, false, 0u64);
    for call in calls {
        let gadget = Gadget::new(nl.params(call.shift)?, gc_op(call.block));
        let c = gadget.circuit();
        // The backend's `chunk_state_bytes`: Bob's tables and labels or Alice's labels and
        // masks, whichever is larger, per instance.
        let (ng, ne, outs) = (
            c.n_garbler_inputs() as u64,
            c.n_evaluator_inputs() as u64,
            c.n_outputs() as u64,
        );
        let per = (32 * c.counts().and as u64 + 17 * ne + outs).max(16 * ng + 16 * ne + 8 + outs);
        let wires = 16 * c.n_wires() as u64;
        let mut left = call.instances as u64;
        while left > 0 {
            let m = left.min(nl.chunk as u64);
            let bytes = m * per;
            if !full && used + bytes <= budget {
                used += bytes;
            } else {
                full = true;
            }
            online = online.max(2 * bytes + m.min(4096) * wires);
            left -= m;
        }
    }
    Ok((used, online))
}

/// The OT backend's Ferret buffers (both directions: each a round's outputs, the LPN vector
/// and the next round's base COTs, 16 bytes each) and one chunk of comparisons in flight.
fn ot_bytes(nl: &nonlinear::Config, calls: &[Call]) -> u64 {
    let ferret = FerretParams::FERRET_COMPACT;
    let lpn = ferret.main;
    let per_direction = 16 * (2 * lpn.n() as u64 + lpn.k as u64 + lpn.base_len() as u64);
    let values = calls
        .iter()
        .map(|c| {
            let per_instance = match c.block {
                Block::MaxPool => 4,
                Block::Argmax => 2,
                _ => 1,
            };
            per_instance * (c.instances.min(nl.chunk) as u64)
        })
        .max()
        .unwrap_or(0);
    2 * per_direction + values * OT_BYTES_PER_VALUE * u64::from(nl.k).div_ceil(32)
}

/// Bytes of the shares alive at once as the drivers walk the plan (each tensor kept until its
/// last use, `u64` per element), plus the largest step's output and two flattened copies of
/// its inputs (max-pool windows, nonlinear outputs).
fn activation_bytes(model: &QuantModel, dims: [usize; 3]) -> u64 {
    let plan = model.plan();
    let size = |t: crate::arch::TensorId| {
        let v: usize = plan.tensor_dims(t, dims).iter().product();
        8 * (plan.tensors()[t.0].channels * v) as u64
    };
    let steps = plan.steps();
    let mut last_use = vec![0usize; plan.tensors().len()];
    for (i, s) in steps.iter().enumerate() {
        for t in &s.inputs {
            last_use[t.0] = i;
        }
    }
    let (mut live, mut peak) = (size(crate::arch::TensorId(0)), 0u64);
    for (i, s) in steps.iter().enumerate() {
        let inputs: u64 = s.inputs.iter().map(|&t| size(t)).sum();
        let out = size(s.output);
        peak = peak.max(live + out + 2 * inputs + 2 * out);
        live += out;
        for t in &s.inputs {
            if last_use[t.0] == i {
                live -= size(*t);
            }
        }
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Weights;
    use crate::secure::config::Preset;

    fn seed_model(preset: Preset) -> QuantModel {
        let arch = Architecture::seed();
        let model = Weights::random_trained_like(&arch, 1).unwrap().fold();
        QuantModel::new(&model, preset.quant()).unwrap()
    }

    #[test]
    fn the_estimate_grows_with_the_extents_and_refuses_what_the_server_refuses() {
        let qm = seed_model(Preset::Q32);
        for backend in [Backend::Gc, Backend::Ot] {
            let config = SessionConfig {
                nonlinear: backend,
                ..SessionConfig::new(Preset::Q32)
            };
            let small = server_session(&qm, &config, [1, 64, 64]).unwrap();
            let large = server_session(&qm, &config, default_extents(qm.plan().arch())).unwrap();
            assert!(small.total() < large.total(), "{small:?} {large:?}");
            assert!(small.activations < large.activations);
            // The GC precompute never exceeds the backend's budget.
            assert!(large.precompute <= nonlinear::DEFAULT_PRECOMPUTE_BUDGET as u64);
            if backend == Backend::Ot {
                assert_eq!(large.precompute, 0);
            }
            // The channel's queues at the session's frame bound, whatever the extents: at the
            // default chunk two queues of twice a 64 MiB frame, and two 1 MiB buffers.
            let max_frame = config.nonlinear_config().unwrap().max_message_len();
            assert_eq!(large.channel, channel::io_bytes_bound(max_frame));
            assert_eq!(small.channel, large.channel);
            assert!(large.channel >= 256 << 20, "{large:?}");
            assert!(large.total() >= large.channel + large.overhead + large.filters);
            // Extents the server refuses have no estimate.
            assert!(server_session(&qm, &config, [1, 63, 64]).is_err());
            assert!(server_session(&qm, &config, [1, 8192, 8192]).is_err());
        }
    }

    /// The client's cached weight ciphertexts: none but with `coeff-ew`, there the sum of
    /// every conv's, growing with the extents (more tiles allow no fewer ciphertexts), and
    /// the server's estimate then counts no prepared filters.
    #[test]
    fn the_client_keeps_the_weight_ciphertexts_only_with_encrypted_weights() {
        let qm = seed_model(Preset::Q32);
        let plan = qm.plan();
        for dims in [[1, 64, 64], default_extents(plan.arch())] {
            for linear in LinearBackend::ALL {
                let config = SessionConfig {
                    linear,
                    ..SessionConfig::new(Preset::Q32)
                };
                let bytes = client_weight_bytes(plan, &config, dims).unwrap();
                let server = server_session(&qm, &config, dims).unwrap();
                eprintln!(
                    "{linear} {dims:?}: client weight ciphertexts {:.1} MB, server estimate {:.1} MB",
                    bytes as f64 / 1e6,
                    server.total() as f64 / 1e6
                );
                if linear == LinearBackend::CoeffEw {
                    assert!(bytes > 0);
                    assert_eq!(server.filters, 0);
                } else {
                    assert_eq!(bytes, 0);
                }
            }
        }
        let config = SessionConfig {
            linear: LinearBackend::CoeffEw,
            ..SessionConfig::new(Preset::Q32)
        };
        assert!(client_weight_bytes(plan, &config, [1, 63, 64]).is_err());
    }
}
