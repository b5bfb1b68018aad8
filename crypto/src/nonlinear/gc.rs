//! The garbled-circuit backend: Alice garbles, Bob evaluates, Bob's labels by IKNP correlated
//! OT under the garbler's Δ.

use std::collections::VecDeque;

use bunet_kernels::aes_hash::FixedKeyHash;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::{Backend, Block, Call, Config, Nonlinear, NonlinearError, Role, SETUP_LABEL};
use crate::Error;
use crate::channel::Channel;
use crate::gc::circuit::{Bit, Circuit, Party};
use crate::gc::fixed_point::{Gadget, Op};
use crate::gc::half_gates::{FRAME_BYTES, evaluate_instances, garble_instances, sub_batch_size};
use crate::gc::{Delta, Evaluator, Garbler, GcError, malformed};
use crate::ot::{Receiver, Sender};
use crate::prg::Prg;
use crate::wire::pack_bits;

/// One party's state.
#[allow(clippy::large_enum_variant)] // one per session, never moved in a hot loop
enum Side {
    Alice {
        garbler: Garbler,
        ot: Sender,
        prg: Prg,
    },
    Bob {
        evaluator: Evaluator,
        ot: Receiver,
        prg: Prg,
    },
}

/// Channel message kinds of the precomputed path (gc area).
mod kind {
    /// Alice → Bob: the number of precomputed chunks (u64 little-endian).
    pub const PLAN: u16 = 0x0210;
    /// Alice → Bob: garbled tables of a precomputed chunk.
    pub const TABLES: u16 = 0x0211;
    /// Alice → Bob: output decoding bits of a precomputed chunk.
    pub const DECODING: u16 = 0x0212;
    /// Bob → Alice: choice corrections `b ⊕ c`, packed.
    pub const CORRECTIONS: u16 = 0x0213;
    /// Alice → Bob: active labels of Alice's inputs, then Bob's label corrections.
    pub const LABELS: u16 = 0x0214;
    /// Bob → Alice: colour bits of the outputs (argmax), packed.
    pub const COLOURS: u16 = 0x0215;
}

/// Offline gate indices start here, so their tweaks (`2t`, `2t + 1` mod 2^64) never meet
/// those of the streaming path, whose counter stays below 2^62.
const OFFLINE_GATE0: u64 = 1 << 62;

/// One precomputed chunk of `m` instances.
enum PreChunk {
    Alice {
        /// Zero labels of Alice's input wires, instance-major.
        gzero: Zeroizing<Vec<u128>>,
        /// `L0 ⊕ q` per Bob input wire: the garbling's zero label xor the random-COT message.
        pad: Zeroizing<Vec<u128>>,
        /// The output masks `r` (resharing ops).
        r: Zeroizing<Vec<u64>>,
        /// Colours of the output zero labels (outputs to the garbler), instance-major.
        colours: Zeroizing<Vec<bool>>,
    },
    Bob {
        /// Gate index of instance 0.
        first_gate: u64,
        /// Garbled tables, sub-batch after sub-batch.
        tables: Vec<u128>,
        /// Random-COT labels `q ⊕ c·Δ` and the random choices `c`.
        labels: Zeroizing<Vec<u128>>,
        choices: Zeroizing<Vec<bool>>,
        /// Decoding bits of the wire outputs (outputs to the evaluator), instance-major.
        decode: Vec<bool>,
    },
}

/// The precomputed prefix of one call.
struct PreCall {
    call: Call,
    /// `(instances, state bytes, chunk)` in order.
    chunks: VecDeque<(usize, usize, PreChunk)>,
}

/// A session of the [`Backend::Gc`] backend: Alice holds the garbler and the IKNP sender under
/// one Δ (lsb 1, drawn once from her [`Prg`]); Bob holds the evaluator and the IKNP receiver.
///
/// Per chunk of a call: Bob's input bits ([`Gadget::evaluator_bits`]) go through correlated OT
/// (Bob → Alice: the IKNP columns), Alice's zero-messages `q_i` become the zero labels of Bob's
/// input wires, Alice draws fresh masks `r` and streams the garbled chunk (Alice → Bob), Bob
/// evaluates; for argmax Bob returns the output colour bits. Two flights per chunk (three for
/// argmax).
///
/// [`Nonlinear::precompute`] moves the input-independent part ahead, chunk by chunk in call
/// order within the budget: a *random* correlated OT per Bob input wire (Bob's random choice
/// `c`; Alice gets `q`, Bob `q ⊕ c·Δ`), Alice's fresh zero labels `L0` (independent of `q`),
/// masks `r`, the garbled tables and decoding bits, sent to and stored by Bob (tweaks from
/// gate index 2^62 on, disjoint from the streaming path's). Online, a precomputed chunk costs
/// Bob's corrections `d = b ⊕ c` (1 bit per wire), Alice's active input labels and
/// `e = L0 ⊕ q ⊕ d·Δ` per Bob wire (Bob's `e ⊕ q ⊕ c·Δ = L0 ⊕ b·Δ`; `e` is padded by the
/// uniform `L0`), then Bob evaluates; chunks beyond the budget stream as above. Bob receives
/// exactly the chunks his own plan of the same calls and budget allows, frames of the exact
/// sizes expected.
///
/// # Security
/// See [the module documentation](super). Δ, labels and masks are erased on drop; `Debug`
/// prints only the role and configuration.
pub struct GcSession {
    config: Config,
    side: Side,
    /// Compiled circuits by (op, shift), built on first use.
    gadgets: Vec<Gadget>,
    /// Precomputed calls, in order.
    pre: VecDeque<PreCall>,
    /// Bytes of precomputed state held (the same count on both sides).
    stored: usize,
    /// Next offline gate index.
    offline_gate: u64,
    hash: FixedKeyHash,
}

impl std::fmt::Debug for GcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcSession")
            .field("role", &self.role())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GcSession {
    /// Sets up the session: Δ and 128 base OTs for the IKNP session (Alice is the OT sender).
    /// The peer calls this with the other role and the same `config`. Traffic is counted under
    /// [`SETUP_LABEL`].
    ///
    /// # Errors
    /// Channel and wire errors of the base OTs.
    pub fn setup(
        ch: &mut Channel,
        role: Role,
        config: Config,
        mut prg: Prg,
    ) -> Result<Self, Error> {
        let ch = &mut ch.labelled(SETUP_LABEL);
        let side = match role {
            Role::Alice => {
                let delta = Delta::random(&mut prg);
                let ot = Sender::setup(ch, delta.expose(), &mut prg);
                let garbler = Garbler::with_prg(delta, Prg::from_seed(prg.next_seed()));
                ot.map(|ot| Side::Alice { garbler, ot, prg })
            }
            Role::Bob => Receiver::setup(ch, &mut prg).map(|ot| Side::Bob {
                evaluator: Evaluator::new(),
                ot,
                prg,
            }),
        }?;
        Ok(Self {
            config,
            side,
            gadgets: Vec::new(),
            pre: VecDeque::new(),
            stored: 0,
            offline_gate: OFFLINE_GATE0,
            hash: FixedKeyHash::new(),
        })
    }

    /// The circuit of `op` at `shift`, compiled once per session.
    fn gadget(
        gadgets: &mut Vec<Gadget>,
        config: &Config,
        op: Op,
        shift: u32,
    ) -> Result<usize, Error> {
        let params = config.params(shift)?;
        if let Some(i) = gadgets
            .iter()
            .position(|g| g.op() == op && *g.params() == params)
        {
            return Ok(i);
        }
        gadgets.push(Gadget::new(params, op));
        Ok(gadgets.len() - 1)
    }

    /// Runs `op` on `inputs` (`op.values()` shares per instance) chunk by chunk; returns Alice's
    /// masks (or argmax bits) and Bob's output shares (or nothing for argmax).
    fn run(
        &mut self,
        ch: &mut Channel,
        block: Block,
        op: Op,
        shift: u32,
        inputs: &[u64],
    ) -> Result<Vec<u64>, Error> {
        let values = op.values();
        if !inputs.len().is_multiple_of(values) {
            return Err(NonlinearError::InputLength {
                what: block.name(),
                values,
                found: inputs.len(),
            }
            .into());
        }
        let p = self.config.p;
        // Checked before any traffic, so that a bad input never leaves the peer mid-call.
        if let Some(&value) = inputs.iter().find(|&&x| x >= p) {
            return Err(GcError::ValueOutOfRange { value, p }.into());
        }
        let g = Self::gadget(&mut self.gadgets, &self.config, op, shift)?;
        let call = Call {
            block,
            instances: inputs.len() / values,
            shift,
        };
        let mut pre = VecDeque::new();
        if let Some(next) = self.pre.front() {
            if next.call != call {
                return Err(NonlinearError::PrecomputeMismatch {
                    expected: next.call,
                    found: call,
                }
                .into());
            }
            pre = self.pre.pop_front().map(|c| c.chunks).unwrap_or_default();
        }
        let gadget = &self.gadgets[g];
        // The chunks below switch between the OT and GC labels; the caller's comes back after.
        let label = ch.label();
        let ch = &mut ch.labelled(label);
        let mut out = Vec::with_capacity(inputs.len() / values);
        for chunk in inputs.chunks(self.config.chunk * values) {
            match pre.pop_front() {
                Some((_, bytes, state)) => {
                    self.stored -= bytes;
                    ch.set_label(block.gc_label());
                    let delta = match &self.side {
                        Side::Alice { garbler, .. } => garbler.delta().expose(),
                        Side::Bob { .. } => 0,
                    };
                    run_precomputed(ch, &self.hash, delta, gadget, chunk, state, &mut out)
                }
                None => run_chunk(&mut self.side, ch, block, gadget, chunk, &mut out),
            }?;
        }
        Ok(out)
    }
}

/// One chunk of `m = chunk.len() / values` instances; appends this party's outputs to `out`.
fn run_chunk(
    side: &mut Side,
    ch: &mut Channel,
    block: Block,
    gadget: &Gadget,
    chunk: &[u64],
    out: &mut Vec<u64>,
) -> Result<(), Error> {
    let op = gadget.op();
    let p = gadget.params().p;
    let m = chunk.len() / op.values();
    let circuit = gadget.circuit();
    match side {
        Side::Alice { garbler, ot, prg } => {
            let mut zero = Zeroizing::new(vec![0u128; m * circuit.n_evaluator_inputs()]);
            ch.set_label(block.ot_label());
            ot.send_correlated(ch, &mut zero)?;
            let mut r = Zeroizing::new(vec![0u64; if op.reshares() { m } else { 0 }]);
            prg.fill_uniform_below(&mut r[..], p);
            let bits = Zeroizing::new(gadget.garbler_bits(m, chunk, &r)?);
            ch.set_label(block.gc_label());
            let decoded = garbler.garble(ch, circuit, m, &bits, &zero)?;
            if op.reshares() {
                out.extend_from_slice(&r);
            } else {
                out.extend(gadget.decode(&decoded));
            }
        }
        Side::Bob { evaluator, ot, .. } => {
            let bits = Zeroizing::new(gadget.evaluator_bits(m, chunk)?);
            let mut labels = Zeroizing::new(vec![0u128; bits.len()]);
            ch.set_label(block.ot_label());
            ot.receive_correlated(ch, &bits, &mut labels)?;
            ch.set_label(block.gc_label());
            let decoded = evaluator.evaluate(ch, circuit, m, &labels)?;
            let words = gadget.decode(&decoded);
            if let Some(&value) = words.iter().find(|&&y| y >= p) {
                return Err(NonlinearError::OutputOutOfRange { value, p }.into());
            }
            out.extend(words);
        }
    }
    Ok(())
}

impl Nonlinear for GcSession {
    fn backend(&self) -> Backend {
        Backend::Gc
    }

    fn role(&self) -> Role {
        match self.side {
            Side::Alice { .. } => Role::Alice,
            Side::Bob { .. } => Role::Bob,
        }
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn relu_rescale(
        &mut self,
        ch: &mut Channel,
        shares: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::Relu, Op::ReluRescaleReshare, shift, shares)
    }

    fn rescale(&mut self, ch: &mut Channel, shares: &[u64], shift: u32) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::Rescale, Op::RescaleReshare, shift, shares)
    }

    fn max4_rescale(
        &mut self,
        ch: &mut Channel,
        windows: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::MaxPool, Op::Max4RescaleReshare, shift, windows)
    }

    fn precompute(&mut self, ch: &mut Channel, calls: &[Call], budget: usize) -> Result<(), Error> {
        self.precompute_calls(ch, calls, budget)
    }

    fn argmax2(&mut self, ch: &mut Channel, pairs: &[u64]) -> Result<Vec<bool>, Error> {
        // The comparison needs no rescaling; shift 0 is valid for every k.
        let bits = self.run(ch, Block::Argmax, Op::Argmax2, 0, pairs)?;
        Ok(bits.into_iter().map(|b| b == 1).collect())
    }
}

/// The op of a block.
fn op_of(block: Block) -> Op {
    match block {
        Block::Relu => Op::ReluRescaleReshare,
        Block::Rescale => Op::RescaleReshare,
        Block::MaxPool => Op::Max4RescaleReshare,
        Block::Argmax => Op::Argmax2,
    }
}

/// Bytes of precomputed state one chunk of `m` instances of `circuit` costs the party that
/// holds more (Bob: tables and labels; Alice: labels and masks); both parties count the same.
pub(super) fn chunk_state_bytes(circuit: &Circuit, m: usize) -> usize {
    let ng = circuit.n_garbler_inputs();
    let ne = circuit.n_evaluator_inputs();
    let outs = circuit.n_outputs();
    let bob = m * (32 * circuit.counts().and + 17 * ne + outs);
    let alice = m * (16 * ng + 16 * ne + 8 + outs);
    bob.max(alice)
}

/// Sub-batch ranges of a chunk of `m` instances (the same on both sides).
fn sub_batches(circuit: &Circuit, m: usize) -> Vec<std::ops::Range<usize>> {
    let sb = sub_batch_size(circuit).max(1);
    (0..m).step_by(sb).map(|s| s..(s + sb).min(m)).collect()
}

/// Receives exactly `n` packed bits (one frame, zero padding).
fn recv_bits(ch: &mut Channel, kind: u16, n: usize) -> Result<Vec<bool>, Error> {
    ch.recv_with(kind, n.div_ceil(8), |r| r.bits("packed bits", n))
        .map_err(malformed)
}

/// Receives exactly `n` words sent with [`Channel::send_blocks`] in frames of at most
/// [`FRAME_BYTES`], so at most `16 n` bytes are ever allocated.
fn recv_words(ch: &mut Channel, kind: u16, n: usize) -> Result<Vec<u128>, Error> {
    ch.recv_blocks(kind, n, FRAME_BYTES).map_err(malformed)
}

/// The plain output bits (instance-major, constants included) from the wire-output bits.
fn with_constants(circuit: &Circuit, m: usize, wire_bits: &[bool]) -> Vec<bool> {
    let mut it = wire_bits.iter();
    let mut out = Vec::with_capacity(m * circuit.n_outputs());
    for _ in 0..m {
        for o in &circuit.outputs {
            out.push(match *o {
                Bit::Const(c) => c,
                Bit::Wire(_) => *it.next().expect("one bit per wire output"),
            });
        }
    }
    out
}

/// Colour bits of the wire outputs of `outs` (instance-major output labels).
fn colours_of(circuit: &Circuit, m: usize, outs: &[u128]) -> Vec<bool> {
    let n = circuit.n_outputs();
    (0..m)
        .flat_map(|i| {
            circuit
                .outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o, Bit::Wire(_)))
                .map(move |(j, _)| outs[i * n + j] & 1 == 1)
        })
        .collect()
}

/// One precomputed chunk, online: Bob sends his corrections `d = b ⊕ c`; Alice answers with
/// her active input labels and `e = L0 ⊕ q ⊕ d·Δ` per Bob wire, so that Bob's
/// `e ⊕ (q ⊕ c·Δ) = L0 ⊕ b·Δ` is his active label; Bob evaluates the stored tables and decodes
/// (argmax: returns the colour bits to Alice).
fn run_precomputed(
    ch: &mut Channel,
    hash: &FixedKeyHash,
    delta: u128,
    gadget: &Gadget,
    chunk: &[u64],
    state: PreChunk,
    out: &mut Vec<u64>,
) -> Result<(), Error> {
    let op = gadget.op();
    let p = gadget.params().p;
    let circuit = gadget.circuit();
    let m = chunk.len() / op.values();
    let (ng, ne) = (circuit.n_garbler_inputs(), circuit.n_evaluator_inputs());
    let n_wire_out = colours_of(circuit, 1, &vec![0u128; circuit.n_outputs()]).len();
    match state {
        PreChunk::Alice {
            gzero,
            pad,
            r,
            colours,
        } => {
            let d = recv_bits(ch, kind::CORRECTIONS, m * ne)?;
            let bits = Zeroizing::new(gadget.garbler_bits(m, chunk, &r)?);
            let mask = |b: bool| 0u128.wrapping_sub(u128::from(b)) & delta;
            let mut words = Zeroizing::new(Vec::with_capacity(m * (ng + ne)));
            words.extend(gzero.iter().zip(bits.iter()).map(|(z, &x)| z ^ mask(x)));
            words.extend(pad.iter().zip(&d).map(|(z, &x)| z ^ mask(x)));
            ch.send_blocks(kind::LABELS, &words, FRAME_BYTES)?;
            ch.flush()?;
            if op.reshares() {
                out.extend_from_slice(&r);
            } else {
                let theirs = recv_bits(ch, kind::COLOURS, m * n_wire_out)?;
                let plain: Vec<bool> = theirs
                    .iter()
                    .zip(colours.iter())
                    .map(|(a, b)| a ^ b)
                    .collect();
                out.extend(gadget.decode(&with_constants(circuit, m, &plain)));
            }
        }
        PreChunk::Bob {
            first_gate,
            tables,
            labels,
            choices,
            decode,
        } => {
            let bits = Zeroizing::new(gadget.evaluator_bits(m, chunk)?);
            let d: Vec<bool> = bits
                .iter()
                .zip(choices.iter())
                .map(|(b, c)| b ^ c)
                .collect();
            ch.send(kind::CORRECTIONS, &pack_bits(d.iter().copied()))?;
            ch.flush()?;
            let words = Zeroizing::new(recv_words(ch, kind::LABELS, m * (ng + ne))?);
            let (glabels, e) = words.split_at(m * ng);
            let elabels: Zeroizing<Vec<u128>> =
                Zeroizing::new(e.iter().zip(labels.iter()).map(|(a, b)| a ^ b).collect());
            let outs = evaluate_stored(circuit, hash, first_gate, m, glabels, &elabels, &tables);
            let colours = colours_of(circuit, m, &outs);
            match circuit.output_to() {
                Party::Evaluator => {
                    let plain: Vec<bool> =
                        colours.iter().zip(&decode).map(|(a, b)| a ^ b).collect();
                    let words = gadget.decode(&with_constants(circuit, m, &plain));
                    if let Some(&value) = words.iter().find(|&&y| y >= p) {
                        return Err(NonlinearError::OutputOutOfRange { value, p }.into());
                    }
                    out.extend(words);
                }
                Party::Garbler => {
                    ch.send(kind::COLOURS, &pack_bits(colours.iter().copied()))?;
                    ch.flush()?;
                }
            }
        }
    }
    Ok(())
}

/// Evaluates `m` instances of `circuit` from stored garbled `tables` (their first gate
/// `first_gate`) and the active labels, in sub-batches on the rayon pool; returns the output
/// labels, instance-major.
fn evaluate_stored(
    circuit: &Circuit,
    hash: &FixedKeyHash,
    first_gate: u64,
    m: usize,
    glabels: &[u128],
    elabels: &[u128],
    tables: &[u128],
) -> Zeroizing<Vec<u128>> {
    let (ng, ne) = (circuit.n_garbler_inputs(), circuit.n_evaluator_inputs());
    let n_and = circuit.counts().and;
    let parts: Vec<Zeroizing<Vec<u128>>> = sub_batches(circuit, m)
        .par_iter()
        .map(|r| {
            evaluate_instances(
                circuit,
                hash,
                first_gate + (r.start * n_and) as u64,
                r.len(),
                &glabels[r.start * ng..r.end * ng],
                &elabels[r.start * ne..r.end * ne],
                &tables[2 * r.start * n_and..2 * r.end * n_and],
            )
        })
        .collect();
    let mut outs = Zeroizing::new(Vec::with_capacity(m * circuit.n_outputs()));
    for part in &parts {
        outs.extend_from_slice(part);
    }
    outs
}

impl GcSession {
    /// The precomputed chunks `(call index, instances, bytes)` of `calls` that fit in `budget`
    /// beside the state already held: whole chunks in call order, stopping at the first that
    /// does not fit. Both parties compute the same plan.
    fn plan(&mut self, calls: &[Call], budget: usize) -> Result<Vec<(usize, usize, usize)>, Error> {
        let mut plan = Vec::new();
        let mut used = self.stored;
        for (i, call) in calls.iter().enumerate() {
            let g = Self::gadget(
                &mut self.gadgets,
                &self.config,
                op_of(call.block),
                call.shift,
            )?;
            let circuit = self.gadgets[g].circuit();
            let mut left = call.instances;
            while left > 0 {
                let m = left.min(self.config.chunk);
                let bytes = chunk_state_bytes(circuit, m);
                if used.saturating_add(bytes) > budget {
                    return Ok(plan);
                }
                used += bytes;
                plan.push((i, m, bytes));
                left -= m;
            }
        }
        Ok(plan)
    }

    /// [`Nonlinear::precompute`] for this backend.
    fn precompute_calls(
        &mut self,
        ch: &mut Channel,
        calls: &[Call],
        budget: usize,
    ) -> Result<(), Error> {
        let plan = self.plan(calls, budget)?;
        let label = ch.label();
        self.precompute_plan(&mut ch.labelled(label), calls, &plan)
    }

    fn precompute_plan(
        &mut self,
        ch: &mut Channel,
        calls: &[Call],
        plan: &[(usize, usize, usize)],
    ) -> Result<(), Error> {
        let Some(call0) = calls.first() else {
            return Ok(());
        };
        ch.set_label(call0.block.offline_label());
        let announced = plan.len() as u64;
        match &self.side {
            Side::Alice { .. } => ch.send(kind::PLAN, &announced.to_le_bytes())?,
            Side::Bob { .. } => {
                let theirs = ch
                    .recv_with(kind::PLAN, 8, |r| r.u64())
                    .map_err(malformed)?;
                // Bob never takes more (or other) chunks than his own plan within the budget.
                if theirs != announced {
                    return Err(NonlinearError::PrecomputeRefused {
                        announced: theirs,
                        allowed: announced,
                    }
                    .into());
                }
            }
        }
        // Every call up to the last planned one gets an entry (empty calls included), so the
        // online calls are checked against the list in order.
        let last = plan.last().map_or(0, |&(i, _, _)| i + 1);
        let mut pre: Vec<PreCall> = calls[..last]
            .iter()
            .map(|&call| PreCall {
                call,
                chunks: VecDeque::new(),
            })
            .collect();
        for &(i, m, bytes) in plan {
            let call = calls[i];
            ch.set_label(call.block.offline_label());
            let g = Self::gadget(
                &mut self.gadgets,
                &self.config,
                op_of(call.block),
                call.shift,
            )?;
            let gadget = &self.gadgets[g];
            let first_gate = self.offline_gate;
            let state = precompute_chunk(&mut self.side, ch, &self.hash, gadget, m, first_gate)?;
            self.offline_gate += (m * gadget.circuit().counts().and) as u64;
            self.stored += bytes;
            pre[i].chunks.push_back((m, bytes, state));
        }
        self.pre.extend(pre);
        ch.flush()?;
        Ok(())
    }
}

/// One chunk of `m` instances, offline: random correlated OT for Bob's input wires (Bob's
/// random choices `c`; Alice's `q`, Bob's `q ⊕ c·Δ`), then Alice draws fresh zero labels and
/// masks, garbles and sends the tables (and, for outputs to Bob, the decoding bits).
fn precompute_chunk(
    side: &mut Side,
    ch: &mut Channel,
    hash: &FixedKeyHash,
    gadget: &Gadget,
    m: usize,
    first_gate: u64,
) -> Result<PreChunk, Error> {
    let op = gadget.op();
    let p = gadget.params().p;
    let circuit = gadget.circuit();
    let (ng, ne) = (circuit.n_garbler_inputs(), circuit.n_evaluator_inputs());
    let n_and = circuit.counts().and;
    let subs = sub_batches(circuit, m);
    match side {
        Side::Alice { garbler, ot, prg } => {
            let mut q = Zeroizing::new(vec![0u128; m * ne]);
            ot.send_correlated(ch, &mut q)?;
            let ezero = garbler.evaluator_zero_labels(circuit, m);
            let mut gzero = Zeroizing::new(vec![0u128; m * ng]);
            for l in gzero.iter_mut() {
                *l = prg.next_u128();
            }
            let mut r = Zeroizing::new(vec![0u64; if op.reshares() { m } else { 0 }]);
            prg.fill_uniform_below(&mut r[..], p);
            let delta = garbler.delta();
            let parts: Vec<(Vec<u128>, Zeroizing<Vec<u128>>)> = subs
                .par_iter()
                .map(|rg| {
                    let b = rg.len();
                    let mut tables = vec![0u128; 2 * b * n_and];
                    let outs = garble_instances(
                        circuit,
                        hash,
                        delta,
                        first_gate + (rg.start * n_and) as u64,
                        b,
                        &gzero[rg.start * ng..rg.end * ng],
                        &ezero[rg.start * ne..rg.end * ne],
                        &mut tables,
                    );
                    (tables, outs)
                })
                .collect();
            let mut colours = Zeroizing::new(Vec::new());
            for ((tables, outs), rg) in parts.iter().zip(&subs) {
                ch.send_blocks(kind::TABLES, tables, FRAME_BYTES)?;
                colours.extend(colours_of(circuit, rg.len(), outs));
            }
            if circuit.output_to() == Party::Evaluator {
                ch.send(kind::DECODING, &pack_bits(colours.iter().copied()))?;
                colours.clear();
            }
            let pad = Zeroizing::new(ezero.iter().zip(q.iter()).map(|(a, b)| a ^ b).collect());
            Ok(PreChunk::Alice {
                gzero,
                pad,
                r,
                colours,
            })
        }
        Side::Bob { ot, prg, .. } => {
            let mut bytes = Zeroizing::new(vec![0u8; (m * ne).div_ceil(8)]);
            prg.fill_bytes(&mut bytes);
            let choices: Zeroizing<Vec<bool>> = Zeroizing::new(
                (0..m * ne)
                    .map(|i| (bytes[i / 8] >> (i % 8)) & 1 == 1)
                    .collect(),
            );
            let mut labels = Zeroizing::new(vec![0u128; m * ne]);
            ot.receive_correlated(ch, &choices, &mut labels)?;
            let mut tables = Vec::with_capacity(2 * m * n_and);
            for rg in &subs {
                tables.extend(recv_words(ch, kind::TABLES, 2 * rg.len() * n_and)?);
            }
            let n_wire_out = colours_of(circuit, 1, &vec![0u128; circuit.n_outputs()]).len();
            let decode = if circuit.output_to() == Party::Evaluator {
                recv_bits(ch, kind::DECODING, m * n_wire_out)?
            } else {
                Vec::new()
            };
            Ok(PreChunk::Bob {
                first_gate,
                tables,
                labels,
                choices,
                decode,
            })
        }
    }
}
