//! Boolean circuits: a [`Builder`] that circuits are written against once (with constant
//! folding), and the compiled, AND-layered [`Circuit`] that the interpreters run — plain
//! evaluation here, gate counting ([`Circuit::counts`]), garbling and evaluation in
//! [`super::half_gates`].

use super::GcError;

/// Index of a wire in a circuit.
pub type WireId = u32;

/// A circuit value: a public constant or a wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bit {
    /// A constant known to both parties (folded away by the builder, never garbled).
    Const(bool),
    /// A wire carrying a secret bit.
    Wire(WireId),
}

/// Constant zero.
pub const ZERO: Bit = Bit::Const(false);
/// Constant one.
pub const ONE: Bit = Bit::Const(true);

/// Which party learns the outputs of a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// The garbler (Alice): the evaluator returns the outputs' colour bits.
    Garbler,
    /// The evaluator (Bob): the garbler sends the outputs' decoding bits.
    Evaluator,
}

/// A gate whose output costs nothing to garble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreeGate {
    /// `out = a ⊕ b`.
    Xor(WireId, WireId, WireId),
    /// `out = ¬a`.
    Inv(WireId, WireId),
}

/// Gates of one AND-depth: free gates first (in topological order), then AND gates whose
/// inputs they and earlier layers produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layer {
    pub(crate) free: Vec<FreeGate>,
    /// AND gates `(a, b, out)`.
    pub(crate) ands: Vec<[WireId; 3]>,
}

#[derive(Debug, Clone, Copy)]
enum Gate {
    Xor(WireId, WireId),
    Inv(WireId),
    And(WireId, WireId),
}

/// Gate counts of a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateCounts {
    /// AND gates (each costs 32 bytes of garbled table and 4 hashes to garble, 2 to evaluate).
    pub and: usize,
    /// XOR gates (free).
    pub xor: usize,
    /// NOT gates (free).
    pub inv: usize,
    /// AND-depth (the number of AND layers).
    pub and_depth: usize,
}

/// Writes a circuit once; [`Builder::finish`] compiles it.
///
/// Every operation folds constants (`x ⊕ 0 = x`, `x ∧ 0 = 0`, `x ∧ 1 = x`, `x ⊕ x = 0`, …), so
/// arithmetic with public constants (the modulus p) costs only the AND gates it must.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    /// Gates with their output wires, in the order written (a topological order).
    gates: Vec<(Gate, WireId)>,
    garbler_inputs: Vec<WireId>,
    evaluator_inputs: Vec<WireId>,
    n_wires: u32,
}

impl Builder {
    /// An empty circuit.
    pub fn new() -> Self {
        Self::default()
    }

    fn wire(&mut self) -> WireId {
        let w = self.n_wires;
        self.n_wires = self.n_wires.checked_add(1).expect("fewer than 2^32 wires");
        w
    }

    /// `n` new input bits of the garbler.
    pub fn garbler_input(&mut self, n: usize) -> Vec<Bit> {
        (0..n)
            .map(|_| {
                let w = self.wire();
                self.garbler_inputs.push(w);
                Bit::Wire(w)
            })
            .collect()
    }

    /// `n` new input bits of the evaluator.
    pub fn evaluator_input(&mut self, n: usize) -> Vec<Bit> {
        (0..n)
            .map(|_| {
                let w = self.wire();
                self.evaluator_inputs.push(w);
                Bit::Wire(w)
            })
            .collect()
    }

    fn gate(&mut self, g: Gate) -> Bit {
        let w = self.wire();
        self.gates.push((g, w));
        Bit::Wire(w)
    }

    /// `a ⊕ b` (free).
    pub fn xor(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x ^ y),
            (Bit::Const(false), w) | (w, Bit::Const(false)) => w,
            (Bit::Const(true), w) | (w, Bit::Const(true)) => self.not(w),
            (Bit::Wire(x), Bit::Wire(y)) if x == y => ZERO,
            (Bit::Wire(x), Bit::Wire(y)) => self.gate(Gate::Xor(x, y)),
        }
    }

    /// `¬a` (free).
    pub fn not(&mut self, a: Bit) -> Bit {
        match a {
            Bit::Const(x) => Bit::Const(!x),
            Bit::Wire(x) => self.gate(Gate::Inv(x)),
        }
    }

    /// `a ∧ b` (one AND gate unless an input is constant or both are the same wire).
    pub fn and(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x & y),
            (Bit::Const(false), _) | (_, Bit::Const(false)) => ZERO,
            (Bit::Const(true), w) | (w, Bit::Const(true)) => w,
            (Bit::Wire(x), Bit::Wire(y)) if x == y => a,
            (Bit::Wire(x), Bit::Wire(y)) => self.gate(Gate::And(x, y)),
        }
    }

    /// `a ∨ b` (one AND).
    pub fn or(&mut self, a: Bit, b: Bit) -> Bit {
        let x = self.xor(a, b);
        let y = self.and(a, b);
        self.xor(x, y)
    }

    /// `if s { y } else { x }` (one AND).
    pub fn mux(&mut self, s: Bit, x: Bit, y: Bit) -> Bit {
        let d = self.xor(x, y);
        let t = self.and(s, d);
        self.xor(x, t)
    }

    /// Word-wise [`Builder::mux`].
    pub fn mux_word(&mut self, s: Bit, x: &[Bit], y: &[Bit]) -> Vec<Bit> {
        assert_eq!(x.len(), y.len(), "mux of words of one width");
        x.iter().zip(y).map(|(&a, &b)| self.mux(s, a, b)).collect()
    }

    /// The `n` low bits of `value`, least significant first, as constants.
    pub fn constant(value: u64, n: usize) -> Vec<Bit> {
        (0..n)
            .map(|i| Bit::Const(i < 64 && (value >> i) & 1 == 1))
            .collect()
    }

    /// One full adder (one AND): returns `(a ⊕ b ⊕ c, carry)`.
    fn full_add(&mut self, a: Bit, b: Bit, c: Bit) -> (Bit, Bit) {
        let ac = self.xor(a, c);
        let bc = self.xor(b, c);
        let s = self.xor(ac, b);
        let t = self.and(ac, bc);
        let carry = self.xor(c, t);
        (s, carry)
    }

    /// The carry out of `a + b + c` without the sum bit (one AND).
    fn carry(&mut self, a: Bit, b: Bit, c: Bit) -> Bit {
        let ac = self.xor(a, c);
        let bc = self.xor(b, c);
        let t = self.and(ac, bc);
        self.xor(c, t)
    }

    /// Ripple-carry `a + b + carry_in` over `a.len()` bits (one AND per bit): the sum modulo
    /// `2^len` and the carry out.
    pub fn add(&mut self, a: &[Bit], b: &[Bit], carry_in: Bit) -> (Vec<Bit>, Bit) {
        assert_eq!(a.len(), b.len(), "add of words of one width");
        let mut c = carry_in;
        let mut sum = Vec::with_capacity(a.len());
        for (&x, &y) in a.iter().zip(b) {
            let (s, c2) = self.full_add(x, y, c);
            sum.push(s);
            c = c2;
        }
        (sum, c)
    }

    /// `a + b mod 2^len` without the carry out (one AND fewer than [`Builder::add`]).
    pub fn add_wrapping(&mut self, a: &[Bit], b: &[Bit]) -> Vec<Bit> {
        assert_eq!(a.len(), b.len(), "add of words of one width");
        let mut c = ZERO;
        let mut sum = Vec::with_capacity(a.len());
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let xy = self.xor(x, y);
            sum.push(self.xor(xy, c));
            if i + 1 < a.len() {
                c = self.carry(x, y, c);
            }
        }
        sum
    }

    /// `a − b mod 2^len` and the borrow `[a < b]` (one AND per bit).
    pub fn sub(&mut self, a: &[Bit], b: &[Bit]) -> (Vec<Bit>, Bit) {
        let nb: Vec<Bit> = b.iter().map(|&x| self.not(x)).collect();
        let (d, carry) = self.add(a, &nb, ONE);
        (d, self.not(carry))
    }

    /// `a − b mod 2^len` without the borrow.
    pub fn sub_wrapping(&mut self, a: &[Bit], b: &[Bit]) -> Vec<Bit> {
        let nb: Vec<Bit> = b.iter().map(|&x| self.not(x)).collect();
        let mut c = ONE;
        let mut out = Vec::with_capacity(a.len());
        for (i, (&x, &y)) in a.iter().zip(&nb).enumerate() {
            let xy = self.xor(x, y);
            out.push(self.xor(xy, c));
            if i + 1 < a.len() {
                c = self.carry(x, y, c);
            }
        }
        out
    }

    /// `[a < b]` for unsigned words (one AND per bit, fewer where bits are constant).
    pub fn less_than(&mut self, a: &[Bit], b: &[Bit]) -> Bit {
        assert_eq!(a.len(), b.len(), "compare words of one width");
        // The carry of a + ¬b + 1 is [a ≥ b].
        let mut c = ONE;
        for (&x, &y) in a.iter().zip(b) {
            let ny = self.not(y);
            c = self.carry(x, ny, c);
        }
        self.not(c)
    }

    /// `[a < b]` for two's-complement words (flip the sign bits, compare unsigned).
    pub fn less_than_signed(&mut self, a: &[Bit], b: &[Bit]) -> Bit {
        let n = a.len();
        assert!(n > 0 && b.len() == n, "compare words of one nonzero width");
        let mut a2 = a.to_vec();
        let mut b2 = b.to_vec();
        a2[n - 1] = self.not(a[n - 1]);
        b2[n - 1] = self.not(b[n - 1]);
        self.less_than(&a2, &b2)
    }

    /// Compiles the circuit with its outputs (and who learns them) into AND layers.
    ///
    /// # Panics
    /// If an output names a wire that does not exist (only possible by mixing builders).
    pub fn finish(self, outputs: Vec<Bit>, output_to: Party) -> Circuit {
        let n = self.n_wires as usize;
        for o in &outputs {
            if let Bit::Wire(w) = o {
                assert!((*w as usize) < n, "output wire of another builder");
            }
        }
        // AND-depth of every wire; inputs have depth 0.
        let mut depth = vec![0u32; n];
        let mut max_depth = 0u32;
        for &(g, out) in &self.gates {
            let d = match g {
                Gate::Xor(a, b) => depth[a as usize].max(depth[b as usize]),
                Gate::Inv(a) => depth[a as usize],
                Gate::And(a, b) => depth[a as usize].max(depth[b as usize]) + 1,
            };
            depth[out as usize] = d;
            max_depth = max_depth.max(d);
        }
        // Layer d: free gates of depth d, then AND gates of depth d + 1.
        let mut layers = vec![Layer::default(); max_depth as usize + 1];
        let mut counts = GateCounts {
            and_depth: max_depth as usize,
            ..GateCounts::default()
        };
        for &(g, out) in &self.gates {
            let d = depth[out as usize] as usize;
            match g {
                Gate::Xor(a, b) => {
                    counts.xor += 1;
                    layers[d].free.push(FreeGate::Xor(a, b, out));
                }
                Gate::Inv(a) => {
                    counts.inv += 1;
                    layers[d].free.push(FreeGate::Inv(a, out));
                }
                Gate::And(a, b) => {
                    counts.and += 1;
                    layers[d - 1].ands.push([a, b, out]);
                }
            }
        }
        let mut circuit = Circuit {
            n_wires: n,
            garbler_inputs: self.garbler_inputs,
            evaluator_inputs: self.evaluator_inputs,
            outputs,
            output_to,
            layers,
            counts,
        };
        circuit.allocate_slots();
        circuit
    }
}

impl Circuit {
    /// AND gates in the widest layer (the size of per-layer gather buffers).
    pub(crate) fn widest_and_layer(&self) -> usize {
        self.layers.iter().map(|l| l.ands.len()).max().unwrap_or(0)
    }

    /// Renames wires to label slots, reusing the slot of a wire after its last read, so the
    /// interpreters hold only the live labels (AES-128: 36,919 wires in a few hundred slots) and
    /// a layer of many instances stays in cache. A gate's output never shares a slot with its
    /// inputs, and AND gates of one layer never write a slot that a later gate of the layer
    /// reads (their inputs are live until read).
    fn allocate_slots(&mut self) {
        const LIVE_FOREVER: u64 = u64::MAX;
        let n = self.n_wires;
        // Position of the last read of every wire in schedule order.
        let mut last = vec![0u64; n];
        let mut pos = 0u64;
        for layer in &self.layers {
            for g in &layer.free {
                pos += 1;
                match *g {
                    FreeGate::Xor(a, b, _) => {
                        last[a as usize] = pos;
                        last[b as usize] = pos;
                    }
                    FreeGate::Inv(a, _) => last[a as usize] = pos,
                }
            }
            for &[a, b, _] in &layer.ands {
                pos += 1;
                last[a as usize] = pos;
                last[b as usize] = pos;
            }
        }
        for o in &self.outputs {
            if let Bit::Wire(w) = *o {
                last[w as usize] = LIVE_FOREVER;
            }
        }
        let mut slot = vec![u32::MAX; n];
        let mut free: Vec<u32> = Vec::new();
        let mut n_slots = 0u32;
        let mut alloc = |free: &mut Vec<u32>| {
            free.pop().unwrap_or_else(|| {
                n_slots += 1;
                n_slots - 1
            })
        };
        for &w in self.garbler_inputs.iter().chain(&self.evaluator_inputs) {
            slot[w as usize] = alloc(&mut free);
        }
        let mut pos = 0u64;
        let mut release = |w: WireId, pos: u64, free: &mut Vec<u32>, slot: &[u32]| {
            if last[w as usize] == pos {
                last[w as usize] = LIVE_FOREVER - 1; // released once even if read twice
                free.push(slot[w as usize]);
            }
        };
        for layer in &mut self.layers {
            for g in &mut layer.free {
                pos += 1;
                match g {
                    FreeGate::Xor(a, b, o) => {
                        let s = alloc(&mut free);
                        slot[*o as usize] = s;
                        release(*a, pos, &mut free, &slot);
                        release(*b, pos, &mut free, &slot);
                        *a = slot[*a as usize];
                        *b = slot[*b as usize];
                        *o = s;
                    }
                    FreeGate::Inv(a, o) => {
                        let s = alloc(&mut free);
                        slot[*o as usize] = s;
                        release(*a, pos, &mut free, &slot);
                        *a = slot[*a as usize];
                        *o = s;
                    }
                }
            }
            for [a, b, o] in &mut layer.ands {
                pos += 1;
                let s = alloc(&mut free);
                slot[*o as usize] = s;
                release(*a, pos, &mut free, &slot);
                release(*b, pos, &mut free, &slot);
                *a = slot[*a as usize];
                *b = slot[*b as usize];
                *o = s;
            }
        }
        for w in self
            .garbler_inputs
            .iter_mut()
            .chain(&mut self.evaluator_inputs)
        {
            *w = slot[*w as usize];
        }
        for o in &mut self.outputs {
            if let Bit::Wire(w) = o {
                *w = slot[*w as usize];
            }
        }
        self.n_wires = n_slots as usize;
    }
}

/// A compiled circuit: inputs of each party, gates in AND layers, outputs and their recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circuit {
    pub(crate) n_wires: usize,
    pub(crate) garbler_inputs: Vec<WireId>,
    pub(crate) evaluator_inputs: Vec<WireId>,
    pub(crate) outputs: Vec<Bit>,
    pub(crate) output_to: Party,
    pub(crate) layers: Vec<Layer>,
    counts: GateCounts,
}

impl Circuit {
    /// Gate counts (the gate-counting interpreter: counted once at compilation).
    pub fn counts(&self) -> GateCounts {
        self.counts
    }

    /// Number of label slots the interpreters hold per instance (wires after reuse of dead
    /// ones).
    pub fn n_wires(&self) -> usize {
        self.n_wires
    }

    /// Input bits of the garbler per instance.
    pub fn n_garbler_inputs(&self) -> usize {
        self.garbler_inputs.len()
    }

    /// Input bits of the evaluator per instance.
    pub fn n_evaluator_inputs(&self) -> usize {
        self.evaluator_inputs.len()
    }

    /// Output bits per instance.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Who learns the outputs.
    pub fn output_to(&self) -> Party {
        self.output_to
    }

    /// Plain evaluation of one instance (the reference interpreter).
    ///
    /// # Errors
    /// [`GcError::InputLength`] if an input slice has the wrong length.
    pub fn eval_plain(
        &self,
        garbler_inputs: &[bool],
        evaluator_inputs: &[bool],
    ) -> Result<Vec<bool>, GcError> {
        check_len(
            "garbler input bits",
            self.garbler_inputs.len(),
            garbler_inputs.len(),
        )?;
        check_len(
            "evaluator input bits",
            self.evaluator_inputs.len(),
            evaluator_inputs.len(),
        )?;
        let mut v = vec![false; self.n_wires];
        for (&w, &x) in self.garbler_inputs.iter().zip(garbler_inputs) {
            v[w as usize] = x;
        }
        for (&w, &x) in self.evaluator_inputs.iter().zip(evaluator_inputs) {
            v[w as usize] = x;
        }
        for layer in &self.layers {
            for g in &layer.free {
                match *g {
                    FreeGate::Xor(a, b, o) => v[o as usize] = v[a as usize] ^ v[b as usize],
                    FreeGate::Inv(a, o) => v[o as usize] = !v[a as usize],
                }
            }
            for &[a, b, o] in &layer.ands {
                v[o as usize] = v[a as usize] & v[b as usize];
            }
        }
        Ok(self
            .outputs
            .iter()
            .map(|o| match *o {
                Bit::Const(c) => c,
                Bit::Wire(w) => v[w as usize],
            })
            .collect())
    }
}

pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), GcError> {
    if expected == found {
        Ok(())
    } else {
        Err(GcError::InputLength {
            what,
            expected,
            found,
        })
    }
}

/// Bits of `value`, least significant first.
pub fn to_bits(value: u64, n: usize) -> impl Iterator<Item = bool> {
    (0..n).map(move |i| i < 64 && (value >> i) & 1 == 1)
}

/// The unsigned integer of `bits`, least significant first (at most 64 bits).
pub fn from_bits(bits: &[bool]) -> u64 {
    bits.iter()
        .take(64)
        .enumerate()
        .fold(0, |acc, (i, &b)| acc | (u64::from(b) << i))
}
