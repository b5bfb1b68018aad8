//! Half-gates garbling and evaluation (Zahur–Rosulek–Evans, EUROCRYPT 2015, Fig. 2) of many
//! instances of one circuit at once, streamed over a [`Channel`].
//!
//! Labels of `m` instances are stored wire-major in reused slots (`labels[slot·m + i]`), so a
//! free gate is one vectorisable loop over the instances and an AND gate of all instances is one
//! call of the fused kernel [`FixedKeyHash::garble_and`] / [`FixedKeyHash::evaluate_and`] (4
//! hashes per instance to garble, 2 to evaluate, 32 AES blocks in flight). With fewer than 8
//! instances, each instance's AND gates of one layer are gathered into one such call instead.
//! Tweaks are unique per gate index (see [`garble_instances`]).
//! Instances are garbled in sub-batches of a size fixed by the circuit alone (so both parties
//! agree on the framing without negotiation); groups of sub-batches run in parallel on the rayon
//! pool and are sent in order, so memory stays bounded for any number of instances.
//!
//! Wire format of one sub-batch of `b` instances: kind [`super::kind::GARBLED`], split in frames
//! of at most [`FRAME_BYTES`], carries the garbler's active input labels (16 B each,
//! instance-major) and the garbled tables (32 B per AND gate and instance: for each AND gate in
//! layer order, the `b` values `T_G` then the `b` values `T_E`), all 128-bit words little-endian;
//! then, when the evaluator learns the outputs, one frame of kind
//! [`super::kind::OUTPUT_DECODING`] with one decoding bit per non-constant output bit, packed
//! least significant bit first, zero padded.

use bunet_kernels::aes_hash::{FixedKeyHash, GateTweaks};
use rayon::prelude::*;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::circuit::{Bit, Circuit, FreeGate, Party, WireId, check_len};
use super::{GcError, kind, malformed};
use crate::Error;
use crate::channel::Channel;
use crate::prg::Prg;
use crate::secret::redacted_debug;
use crate::wire::{Reader, pack_bits};

/// Largest frame body of garbled data: 4 MiB (the framing costs 16 B per 4 MiB).
pub const FRAME_BYTES: usize = 4 << 20;
/// Bytes of garbled table per AND gate.
pub const TABLE_BYTES_PER_AND: usize = 32;
/// Target garbled-table bytes per sub-batch.
const SUB_BATCH_TABLE_BYTES: usize = 1 << 20;
/// Target label memory per sub-batch (wire-major labels of all its instances).
const SUB_BATCH_LABEL_BYTES: usize = 2 << 20;
/// Smallest sub-batch.
const MIN_SUB_BATCH: usize = 16;
/// Largest sub-batch.
const MAX_SUB_BATCH: usize = 1024;

/// The global free-XOR offset Δ (least significant bit 1), shared with the OT sender.
///
/// # Security
/// Knowing Δ and any label of a wire reveals both labels of every wire: it must never leave the
/// garbler (and the OT sender that holds the same Δ). Erased on drop; `Debug` prints nothing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Delta(u128);

redacted_debug!(Delta);

impl Delta {
    /// Wraps a caller-supplied Δ (e.g. the IKNP sender's correlation).
    ///
    /// # Errors
    /// [`GcError::DeltaLsbZero`] if `delta` is even.
    pub fn new(delta: u128) -> Result<Self, GcError> {
        if delta & 1 == 1 {
            Ok(Self(delta))
        } else {
            Err(GcError::DeltaLsbZero)
        }
    }

    /// A uniformly random Δ with least significant bit 1.
    pub fn random(prg: &mut Prg) -> Self {
        Self(prg.next_u128() | 1)
    }

    /// The raw value (to hand to correlated OT).
    pub fn expose(&self) -> u128 {
        self.0
    }
}

/// Instances per sub-batch for `circuit`: a function of the circuit only (both parties compute
/// the same framing).
pub fn sub_batch_size(circuit: &Circuit) -> usize {
    let by_tables = SUB_BATCH_TABLE_BYTES / (TABLE_BYTES_PER_AND * circuit.counts().and.max(1));
    let by_labels = SUB_BATCH_LABEL_BYTES / (16 * circuit.n_wires().max(1));
    // At least, and a multiple of, 16 instances: every instance then runs on the fused VAES path
    // (8 / 16 instances per iteration), at the price of sub-batches above the byte targets for
    // circuits of more than 2^15 AND gates.
    by_tables.min(by_labels).clamp(MIN_SUB_BATCH, MAX_SUB_BATCH) / MIN_SUB_BATCH * MIN_SUB_BATCH
}

/// 128-bit words (input labels and tables) the garbler sends for one sub-batch of `b` instances.
fn sub_batch_words(circuit: &Circuit, b: usize) -> usize {
    b * circuit.n_garbler_inputs() + 2 * b * circuit.counts().and
}

/// Bytes of output decoding bits the garbler sends for one sub-batch of `b` instances.
fn sub_batch_decode_bytes(circuit: &Circuit, b: usize) -> usize {
    match circuit.output_to() {
        Party::Evaluator => (b * wire_outputs(circuit)).div_ceil(8),
        Party::Garbler => 0,
    }
}

/// Output bits that are wires (constant outputs need no decoding).
fn wire_outputs(circuit: &Circuit) -> usize {
    circuit
        .outputs
        .iter()
        .filter(|o| matches!(o, Bit::Wire(_)))
        .count()
}

#[inline(always)]
fn mask(bit: u128) -> u128 {
    0u128.wrapping_sub(bit & 1)
}

/// Computes the free gates of one layer on wire-major labels; `inv` is what a NOT xors in
/// (Δ for the garbler, 0 for the evaluator).
fn free_gates(gates: &[FreeGate], labels: &mut [u128], m: usize, inv: u128) {
    if m == 1 {
        // One instance (a large circuit garbled alone): plain indexing beats slicing.
        for g in gates {
            match *g {
                FreeGate::Xor(a, b, o) => {
                    labels[o as usize] = labels[a as usize] ^ labels[b as usize]
                }
                FreeGate::Inv(a, o) => labels[o as usize] = labels[a as usize] ^ inv,
            }
        }
        return;
    }
    for g in gates {
        match *g {
            FreeGate::Xor(a, b, o) => {
                let (out, a, b) = out_and_inputs(labels, m, o, a, b);
                for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                    *o = a ^ b;
                }
            }
            FreeGate::Inv(a, o) => {
                let (out, a, _) = out_and_inputs(labels, m, o, a, a);
                for (o, a) in out.iter_mut().zip(a) {
                    *o = a ^ inv;
                }
            }
        }
    }
}

/// The `m` labels of slot `o` (mutable) and of slots `a`, `b` (which differ from `o`: the slot
/// allocator never gives a gate's output the slot of one of its inputs).
#[inline]
fn out_and_inputs(
    labels: &mut [u128],
    m: usize,
    o: WireId,
    a: WireId,
    b: WireId,
) -> (&mut [u128], &[u128], &[u128]) {
    let (o, a, b) = (o as usize, a as usize, b as usize);
    debug_assert!(o != a && o != b);
    let (left, rest) = labels.split_at_mut(o * m);
    let (out, right) = rest.split_at_mut(m);
    let pick = |s: usize| -> &[u128] {
        if s < o {
            &left[s * m..][..m]
        } else {
            &right[(s - o - 1) * m..][..m]
        }
    };
    (out, pick(a), pick(b))
}

/// Instances per gate from which the fused half-gates kernel runs gate by gate; below it, AND
/// gates of a layer are hashed together across gates.
const FUSED_MIN_INSTANCES: usize = 8;

/// Garbles `m` instances of `circuit` in memory (no I/O; what [`Garbler::garble`] runs per
/// sub-batch, exposed for benchmarks and custom transports).
///
/// Inputs are zero labels, instance-major (`m · n_garbler_inputs`, `m · n_evaluator_inputs`);
/// `tables` receives `2 · m · ands` ciphertexts: for each AND gate in layer order, the `m`
/// values `T_G` then the `m` values `T_E`. Returns the zero labels of the outputs,
/// instance-major (0 for constant outputs). Instance `i`'s AND gate of ordinal `j` uses the
/// tweaks of gate index `t = first_gate + i · ands + j` ([`GateTweaks`]).
///
/// # Panics
/// If a slice has the wrong length.
///
/// # Security
/// The ranges `[first_gate, first_gate + m · ands)` of all calls under one Δ must be disjoint.
#[allow(clippy::too_many_arguments)] // the inner loop's inputs, all borrowed
pub fn garble_instances(
    circuit: &Circuit,
    hash: &FixedKeyHash,
    delta: &Delta,
    first_gate: u64,
    m: usize,
    garbler_zero: &[u128],
    evaluator_zero: &[u128],
    tables: &mut [u128],
) -> Zeroizing<Vec<u128>> {
    let role = Garbling {
        delta: delta.0,
        tables,
    };
    walk_instances(
        circuit,
        hash,
        first_gate,
        m,
        [garbler_zero, evaluator_zero],
        role,
    )
}

/// Evaluates `m` instances in memory (no I/O; what [`Evaluator::evaluate`] runs per
/// sub-batch) from their active input labels and the garbled tables of
/// [`garble_instances`] with the same `first_gate`; returns the active output labels,
/// instance-major (0 for constant outputs).
///
/// # Panics
/// If a slice has the wrong length.
pub fn evaluate_instances(
    circuit: &Circuit,
    hash: &FixedKeyHash,
    first_gate: u64,
    m: usize,
    garbler_labels: &[u128],
    evaluator_labels: &[u128],
    tables: &[u128],
) -> Zeroizing<Vec<u128>> {
    let role = Evaluating { tables };
    walk_instances(
        circuit,
        hash,
        first_gate,
        m,
        [garbler_labels, evaluator_labels],
        role,
    )
}

/// What garbling and evaluating an AND gate do differently; [`walk_instances`] is the rest,
/// written once for both (the way fancy-garbling writes a gadget once for garbler and
/// evaluator). Table entries: a gate's `T_G` at `entry`, its `T_E` at `entry + m`.
trait AndRole {
    /// The constant a free inversion XORs in: Δ for the garbler (the label of 1 is zero ⊕ Δ),
    /// 0 for the evaluator, whose active label does not change.
    fn inversion(&self) -> u128;

    /// The total number of table entries this role reads or writes.
    fn table_len(&self) -> usize;

    /// One gate across `m` instances (tweak stride = ANDs per instance); its `T_G`s are
    /// entries `entry..entry + m`.
    #[allow(clippy::too_many_arguments)] // one fused kernel call's operands
    fn across_instances(
        &mut self,
        hash: &FixedKeyHash,
        a: &[u128],
        b: &[u128],
        tweaks: GateTweaks,
        out: &mut [u128],
        entry: usize,
        m: usize,
    );

    /// The `n = a.len()` gathered gates of one layer of one instance (tweak stride 1); gate
    /// `g`'s `T_G` is entry `first_entry + 2·m·g`. `tg`, `te` are scratch of length `n`.
    #[allow(clippy::too_many_arguments)] // one fused kernel call's operands and scratch
    fn gathered(
        &mut self,
        hash: &FixedKeyHash,
        gathered: (&[u128], &[u128]),
        tweaks: GateTweaks,
        out: &mut [u128],
        scratch: (&mut [u128], &mut [u128]),
        first_entry: usize,
        m: usize,
    );
}

/// The garbler's side: hashes under Δ and writes the tables.
struct Garbling<'t> {
    delta: u128,
    tables: &'t mut [u128],
}

impl AndRole for Garbling<'_> {
    fn inversion(&self) -> u128 {
        self.delta
    }

    fn table_len(&self) -> usize {
        self.tables.len()
    }

    fn across_instances(
        &mut self,
        hash: &FixedKeyHash,
        a: &[u128],
        b: &[u128],
        tweaks: GateTweaks,
        out: &mut [u128],
        entry: usize,
        m: usize,
    ) {
        let (tg, te) = self.tables[entry..entry + 2 * m].split_at_mut(m);
        hash.garble_and(self.delta, a, b, tweaks, out, tg, te);
    }

    fn gathered(
        &mut self,
        hash: &FixedKeyHash,
        (a, b): (&[u128], &[u128]),
        tweaks: GateTweaks,
        out: &mut [u128],
        (tg, te): (&mut [u128], &mut [u128]),
        first_entry: usize,
        m: usize,
    ) {
        hash.garble_and(self.delta, a, b, tweaks, out, tg, te);
        for (g, (&t_g, &t_e)) in tg.iter().zip(te.iter()).enumerate() {
            let entry = first_entry + 2 * m * g;
            self.tables[entry] = t_g;
            self.tables[entry + m] = t_e;
        }
    }
}

/// The evaluator's side: reads the tables and hashes the active labels.
struct Evaluating<'t> {
    tables: &'t [u128],
}

impl AndRole for Evaluating<'_> {
    fn inversion(&self) -> u128 {
        0
    }

    fn table_len(&self) -> usize {
        self.tables.len()
    }

    fn across_instances(
        &mut self,
        hash: &FixedKeyHash,
        a: &[u128],
        b: &[u128],
        tweaks: GateTweaks,
        out: &mut [u128],
        entry: usize,
        m: usize,
    ) {
        let (tg, te) = self.tables[entry..entry + 2 * m].split_at(m);
        hash.evaluate_and(a, b, tg, te, tweaks, out);
    }

    fn gathered(
        &mut self,
        hash: &FixedKeyHash,
        (a, b): (&[u128], &[u128]),
        tweaks: GateTweaks,
        out: &mut [u128],
        (tg, te): (&mut [u128], &mut [u128]),
        first_entry: usize,
        m: usize,
    ) {
        for (g, (t_g, t_e)) in tg.iter_mut().zip(te.iter_mut()).enumerate() {
            let entry = first_entry + 2 * m * g;
            *t_g = self.tables[entry];
            *t_e = self.tables[entry + m];
        }
        hash.evaluate_and(a, b, tg, te, tweaks, out);
    }
}

/// Runs `m` instances of `circuit` layer by layer for either role from the input labels
/// (`[garbler's, evaluator's]`, instance-major); returns the output labels.
fn walk_instances<R: AndRole>(
    circuit: &Circuit,
    hash: &FixedKeyHash,
    first_gate: u64,
    m: usize,
    [garbler, evaluator]: [&[u128]; 2],
    mut role: R,
) -> Zeroizing<Vec<u128>> {
    let n_and = circuit.counts().and;
    assert_eq!(
        garbler.len(),
        m * circuit.n_garbler_inputs(),
        "garbler labels"
    );
    assert_eq!(
        evaluator.len(),
        m * circuit.n_evaluator_inputs(),
        "evaluator labels"
    );
    assert_eq!(role.table_len(), 2 * m * n_and, "table entries");
    let inversion = role.inversion();
    let mut labels = Zeroizing::new(vec![0u128; circuit.n_wires() * m]);
    load_inputs(circuit, &mut labels, m, garbler, evaluator);
    let mut ordinal = 0u64;
    let mut pos = 0usize;
    if m >= FUSED_MIN_INSTANCES {
        for layer in &circuit.layers {
            free_gates(&layer.free, &mut labels, m, inversion);
            for &[a, b, o] in &layer.ands {
                let (out, la, lb) = out_and_inputs(&mut labels, m, o, a, b);
                let tweaks = GateTweaks {
                    first: first_gate + ordinal,
                    stride: n_and as u64,
                };
                role.across_instances(hash, la, lb, tweaks, out, pos, m);
                pos += 2 * m;
                ordinal += 1;
            }
        }
        return read_outputs(circuit, &labels, m);
    }
    // Few instances: per instance, the AND gates of a layer have consecutive gate indices, so
    // they are gathered into one fused-kernel call (tweak stride 1).
    let widest = circuit.widest_and_layer();
    let mut ga = Zeroizing::new(vec![0u128; widest]);
    let mut gb = Zeroizing::new(vec![0u128; widest]);
    let mut go = Zeroizing::new(vec![0u128; widest]);
    let (mut gtg, mut gte) = (vec![0u128; widest], vec![0u128; widest]);
    for layer in &circuit.layers {
        free_gates(&layer.free, &mut labels, m, inversion);
        let n = layer.ands.len();
        for i in 0..m {
            for (g, &[a, b, _]) in layer.ands.iter().enumerate() {
                ga[g] = labels[a as usize * m + i];
                gb[g] = labels[b as usize * m + i];
            }
            let tweaks = GateTweaks {
                first: first_gate + i as u64 * n_and as u64 + ordinal,
                stride: 1,
            };
            role.gathered(
                hash,
                (&ga[..n], &gb[..n]),
                tweaks,
                &mut go[..n],
                (&mut gtg[..n], &mut gte[..n]),
                pos + i,
                m,
            );
            for (g, &[_, _, o]) in layer.ands.iter().enumerate() {
                labels[o as usize * m + i] = go[g];
            }
        }
        pos += 2 * m * n;
        ordinal += n as u64;
    }
    read_outputs(circuit, &labels, m)
}

/// The colour bits (label lsbs) of the wire outputs of `m` instances' output labels `outs`,
/// instance-major; constant outputs carry no colour.
fn wire_colours<'a>(
    circuit: &'a Circuit,
    outs: &'a [u128],
    m: usize,
) -> impl Iterator<Item = bool> + 'a {
    let n_out = circuit.n_outputs();
    (0..m).flat_map(move |i| {
        circuit
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Bit::Wire(_)))
            .map(move |(j, _)| outs[i * n_out + j] & 1 == 1)
    })
}

/// The outputs of `m` instances: the circuit's constants, and `wire_bits` (one per wire
/// output, instance-major) in between.
fn with_constants(
    circuit: &Circuit,
    m: usize,
    mut wire_bits: impl Iterator<Item = bool>,
) -> Vec<bool> {
    let mut out = Vec::with_capacity(m * circuit.n_outputs());
    for _ in 0..m {
        for o in &circuit.outputs {
            out.push(match *o {
                Bit::Const(c) => c,
                Bit::Wire(_) => wire_bits.next().expect("one bit per wire output"),
            });
        }
    }
    out
}

fn load_inputs(
    circuit: &Circuit,
    labels: &mut [u128],
    m: usize,
    garbler: &[u128],
    evaluator: &[u128],
) {
    for (inputs, given) in [
        (&circuit.garbler_inputs, garbler),
        (&circuit.evaluator_inputs, evaluator),
    ] {
        let n = inputs.len();
        for i in 0..m {
            for (&w, &l) in inputs.iter().zip(&given[i * n..(i + 1) * n]) {
                labels[w as usize * m + i] = l;
            }
        }
    }
}

fn read_outputs(circuit: &Circuit, labels: &[u128], m: usize) -> Zeroizing<Vec<u128>> {
    let n = circuit.outputs.len();
    let mut out = Zeroizing::new(vec![0u128; m * n]);
    for i in 0..m {
        for (j, o) in circuit.outputs.iter().enumerate() {
            if let Bit::Wire(w) = *o {
                out[i * n + j] = labels[w as usize * m + i];
            }
        }
    }
    out
}

/// Sends 128-bit words little-endian in frames of at most [`FRAME_BYTES`] (no copy on
/// little-endian machines).
fn send_words(ch: &mut Channel, words: &[u128]) -> Result<(), Error> {
    Ok(ch.send_blocks(kind::GARBLED, words, FRAME_BYTES)?)
}

/// Receives exactly `len` bytes sent in frames of at most [`FRAME_BYTES`]; a frame of another
/// size is a [`GcError::Malformed`] message.
fn recv_frames(ch: &mut Channel, kind: u16, len: usize) -> Result<Vec<u8>, Error> {
    ch.recv_frames(kind, len, FRAME_BYTES).map_err(malformed)
}

/// Splits `0..m` into consecutive ranges of at most `size`.
fn ranges(m: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    (0..m)
        .step_by(size.max(1))
        .map(|s| s..(s + size).min(m))
        .collect()
}

/// The garbler (Alice) of a session: holds Δ, draws labels from its own OS-seeded [`Prg`], and
/// counts gates so that no tweak repeats under its Δ.
pub struct Garbler {
    delta: Delta,
    hash: FixedKeyHash,
    prg: Prg,
    next_gate: u64,
}

redacted_debug!(Garbler { next_gate });

impl Garbler {
    /// A garbler with the caller's Δ (the OT sender's) and fresh OS randomness for labels.
    pub fn new(delta: Delta) -> Self {
        Self::with_prg(delta, Prg::from_os_entropy())
    }

    /// A garbler drawing labels from `prg` (which must be secret and uniformly seeded).
    pub fn with_prg(delta: Delta, prg: Prg) -> Self {
        Self {
            delta,
            hash: FixedKeyHash::new(),
            prg,
            next_gate: 0,
        }
    }

    /// Δ (to run correlated OT for the evaluator's labels).
    pub fn delta(&self) -> &Delta {
        &self.delta
    }

    /// AND gates garbled so far (the next tweak counter; the evaluator's must match).
    pub fn gates_garbled(&self) -> u64 {
        self.next_gate
    }

    /// Fresh uniform zero labels for the evaluator's input wires of `m` instances of `circuit`,
    /// instance-major. The evaluator must obtain `L0 ⊕ b·Δ` for its bit `b` of each, by
    /// correlated OT under this garbler's Δ.
    pub fn evaluator_zero_labels(&mut self, circuit: &Circuit, m: usize) -> Zeroizing<Vec<u128>> {
        let mut labels = Zeroizing::new(vec![0u128; m * circuit.n_evaluator_inputs()]);
        for l in labels.iter_mut() {
            *l = self.prg.next_u128();
        }
        labels
    }

    /// Garbles `m` instances of `circuit` and streams them to the evaluator.
    ///
    /// `garbler_inputs` holds the garbler's input bits (instance-major, `m ·
    /// n_garbler_inputs`); `evaluator_zero_labels` the zero labels of the evaluator's input
    /// wires (`m · n_evaluator_inputs`, e.g. from [`Garbler::evaluator_zero_labels`] or from a
    /// random correlated OT under Δ). Returns the outputs (instance-major) when the garbler
    /// learns them ([`Party::Garbler`]: after receiving the evaluator's colour bits), else an
    /// empty vector. Traffic is counted under the channel's current label.
    ///
    /// # Errors
    /// [`GcError::InputLength`] on inputs of the wrong length; channel failures; a malformed
    /// colour-bit message.
    pub fn garble(
        &mut self,
        ch: &mut Channel,
        circuit: &Circuit,
        m: usize,
        garbler_inputs: &[bool],
        evaluator_zero_labels: &[u128],
    ) -> Result<Vec<bool>, Error> {
        let ng = circuit.n_garbler_inputs();
        let ne = circuit.n_evaluator_inputs();
        check_len("garbler input bits", m * ng, garbler_inputs.len())?;
        check_len("evaluator zero labels", m * ne, evaluator_zero_labels.len())?;
        let n_and = circuit.counts().and as u64;
        let sb = sub_batch_size(circuit);
        let group = sb * rayon::current_num_threads().max(1);
        let delta = self.delta.0;
        let mut out_colours: Vec<bool> = Vec::new();
        for grange in ranges(m, group) {
            // Garbler input zero labels of this group, drawn sequentially from the PRG.
            let mut gzero = Zeroizing::new(vec![0u128; grange.len() * ng]);
            for l in gzero.iter_mut() {
                *l = self.prg.next_u128();
            }
            let subs = ranges(grange.len(), sb);
            let results: Vec<(Vec<u128>, Vec<u8>, Vec<bool>)> = subs
                .par_iter()
                .map(|r| {
                    let b = r.len();
                    let first = grange.start + r.start;
                    let gz = &gzero[r.start * ng..r.end * ng];
                    let ez = &evaluator_zero_labels[first * ne..(first + b) * ne];
                    let bits = &garbler_inputs[first * ng..(first + b) * ng];
                    // The message is built in place: active input labels, then the tables.
                    let mut words = vec![0u128; sub_batch_words(circuit, b)];
                    let (active, tables) = words.split_at_mut(b * ng);
                    for ((w, z), &x) in active.iter_mut().zip(gz).zip(bits) {
                        *w = z ^ (mask(u128::from(x)) & delta);
                    }
                    let gate0 = self.next_gate + first as u64 * n_and;
                    let outs = garble_instances(
                        circuit,
                        &self.hash,
                        &self.delta,
                        gate0,
                        b,
                        gz,
                        ez,
                        tables,
                    );
                    let colours = wire_colours(circuit, &outs, b);
                    match circuit.output_to() {
                        Party::Evaluator => (words, pack_bits(colours), Vec::new()),
                        Party::Garbler => (words, Vec::new(), colours.collect()),
                    }
                })
                .collect();
            for (words, decode, colours) in results {
                send_words(ch, &words)?;
                if !decode.is_empty() {
                    ch.send(kind::OUTPUT_DECODING, &decode)?;
                }
                out_colours.extend(colours);
            }
        }
        ch.flush()?;
        self.next_gate += m as u64 * n_and;
        let result = match circuit.output_to() {
            Party::Evaluator => Vec::new(),
            Party::Garbler => {
                let n = m * wire_outputs(circuit);
                let bytes = recv_frames(ch, kind::OUTPUT_COLOURS, n.div_ceil(8))?;
                let theirs = Reader::new(&bytes)
                    .bits("output colours", n)
                    .map_err(GcError::Malformed)?;
                let decoded = theirs.iter().zip(&out_colours).map(|(a, b)| a ^ b);
                with_constants(circuit, m, decoded)
            }
        };
        Ok(result)
    }
}

/// The evaluator (Bob) of a session: counts gates exactly as its [`Garbler`] does.
#[derive(Debug)]
pub struct Evaluator {
    hash: FixedKeyHash,
    next_gate: u64,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new()
    }
}

impl Evaluator {
    /// A fresh evaluator (its gate counter starts at 0, like a fresh [`Garbler`]'s).
    pub fn new() -> Self {
        Self {
            hash: FixedKeyHash::new(),
            next_gate: 0,
        }
    }

    /// AND gates evaluated so far.
    pub fn gates_evaluated(&self) -> u64 {
        self.next_gate
    }

    /// Evaluates `m` instances of `circuit` streamed by the garbler.
    ///
    /// `evaluator_labels` are the active labels of the evaluator's input wires (instance-major,
    /// `m · n_evaluator_inputs`), obtained by correlated OT. Returns the outputs
    /// (instance-major) when the evaluator learns them; otherwise sends their colour bits to the
    /// garbler and returns an empty vector. Traffic is counted under the channel's current label.
    ///
    /// # Errors
    /// [`GcError::InputLength`] on inputs of the wrong length; channel failures; a malformed
    /// message from the garbler (wrong frame sizes, nonzero padding).
    pub fn evaluate(
        &mut self,
        ch: &mut Channel,
        circuit: &Circuit,
        m: usize,
        evaluator_labels: &[u128],
    ) -> Result<Vec<bool>, Error> {
        let ng = circuit.n_garbler_inputs();
        let ne = circuit.n_evaluator_inputs();
        check_len("evaluator labels", m * ne, evaluator_labels.len())?;
        let n_and = circuit.counts().and as u64;
        let n_out = circuit.n_outputs();
        let n_wire_out = wire_outputs(circuit);
        let sb = sub_batch_size(circuit);
        let group = sb * rayon::current_num_threads().max(1);
        let mut out = Vec::with_capacity(m * n_out);
        let mut colours: Vec<bool> = Vec::new();
        for grange in ranges(m, group) {
            let subs = ranges(grange.len(), sb);
            let mut msgs = Vec::with_capacity(subs.len());
            for r in &subs {
                let words = recv_frames(ch, kind::GARBLED, 16 * sub_batch_words(circuit, r.len()))?;
                let dlen = sub_batch_decode_bytes(circuit, r.len());
                let decode = if dlen > 0 {
                    ch.recv_exact(kind::OUTPUT_DECODING, dlen)
                        .map_err(malformed)?
                } else {
                    Vec::new()
                };
                msgs.push((words, decode));
            }
            let results: Vec<Result<Vec<bool>, GcError>> = subs
                .par_iter()
                .zip(&msgs)
                .map(|(r, (words, decode))| {
                    let b = r.len();
                    let first = grange.start + r.start;
                    // `recv_frames` returned exactly this sub-batch's words.
                    let words = Reader::new(words)
                        .blocks_borrowed("garbled sub-batch", sub_batch_words(circuit, b))
                        .map_err(GcError::Malformed)?;
                    let (glabels, tables) = words.split_at(b * ng);
                    let el = &evaluator_labels[first * ne..(first + b) * ne];
                    let gate0 = self.next_gate + first as u64 * n_and;
                    let outs =
                        evaluate_instances(circuit, &self.hash, gate0, b, glabels, el, tables);
                    let mine = wire_colours(circuit, &outs, b);
                    match circuit.output_to() {
                        Party::Evaluator => {
                            let mut r = Reader::new(decode);
                            let d = r
                                .bits("output decoding bits", b * n_wire_out)
                                .and_then(|d| r.finish().map(|()| d))
                                .map_err(GcError::Malformed)?;
                            Ok(with_constants(
                                circuit,
                                b,
                                d.iter().zip(mine).map(|(x, y)| x ^ y),
                            ))
                        }
                        Party::Garbler => Ok(mine.collect()),
                    }
                })
                .collect();
            for r in results {
                match circuit.output_to() {
                    Party::Evaluator => out.extend(r?),
                    Party::Garbler => colours.extend(r?),
                }
            }
        }
        self.next_gate += m as u64 * n_and;
        if circuit.output_to() == Party::Garbler {
            ch.send_frames(kind::OUTPUT_COLOURS, &pack_bits(colours), FRAME_BYTES)?;
            ch.flush()?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;
    use crate::channel::ChannelConfig;

    #[test]
    fn payloads_above_one_frame_are_split_and_reassembled_exactly() {
        let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
        let len = 2 * FRAME_BYTES + 12345;
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::thread::scope(|s| {
            let h = s.spawn(|| recv_frames(&mut b, kind::GARBLED, len).unwrap());
            a.send_frames(kind::GARBLED, &payload, FRAME_BYTES).unwrap();
            a.flush().unwrap();
            assert_eq!(h.join().unwrap(), payload);
        });
        assert_eq!(a.meter().get("unlabelled").messages_sent, 3);
    }

    #[test]
    fn words_travel_little_endian() {
        let words = [1u128, u128::MAX - 5, 1 << 100];
        let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
        send_words(&mut a, &words).unwrap();
        a.flush().unwrap();
        let bytes = recv_frames(&mut b, kind::GARBLED, 48).unwrap();
        assert_eq!(&bytes[..16], &1u128.to_le_bytes());
        let as_words = |b| Reader::new(b).blocks_borrowed("words", 3).unwrap();
        assert_eq!(&*as_words(&bytes), &words);
        // Unaligned input is copied, with the same result.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        assert_eq!(&*as_words(&shifted[1..]), &words);
    }
}
