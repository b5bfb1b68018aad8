//! The protocol circuits over additive shares in Z_p, and their two-party batch API.
//!
//! Convention (fixed for all of BUNET): the value is `v = (s_A + s_B) mod p`, with `s_A, s_B ∈
//! [0, p)`; `signed(v) = v` if `v ≤ (p−1)/2`, else `v − p`; rescaling by `shift` bits is the
//! arithmetic shift `floor(signed / 2^shift)`; results are re-encoded mod p. Alice garbles, Bob
//! evaluates. Re-sharing: Alice supplies a fresh uniform mask `r ∈ [0, p)` as a garbler input and
//! the circuit outputs `y − r mod p` to Bob, so Bob's new share is `y − r` and Alice's is `r`.
//!
//! Values are `k`-bit words, least significant bit first. `signed(v)` is computed without first
//! reducing the sum: with `σ = s_A + s_B ∈ [0, 2p − 2]`, `signed(v) = σ − p·([σ > h] + [σ > p +
//! h])`, `h = (p−1)/2`, and the subtrahend's bits are free functions of the two comparison bits
//! (it is 0, p or 2p); the result fits `k` bits in two's complement since `|signed| ≤ h < 2^(k−1)`.

use super::GcError;
use super::circuit::{Bit, Builder, Circuit, Party, ZERO, check_len, from_bits, to_bits};
use super::half_gates::{Evaluator, Garbler};
use crate::Error;
use crate::channel::Channel;

/// Word size, modulus and rescaling shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    /// Bits per value (24 or 32 in BUNET; 2..=62 accepted).
    pub k: u32,
    /// The odd plaintext modulus, `2 < p < 2^k`.
    pub p: u64,
    /// Fractional bits dropped by rescaling (`shift < k − 1`).
    pub shift: u32,
}

impl Params {
    /// Checks and wraps the parameters.
    ///
    /// # Errors
    /// [`GcError::InvalidParams`] unless `2 ≤ k ≤ 62`, `p` odd with `2 < p < 2^k`, and
    /// `shift < k − 1`.
    pub fn new(k: u32, p: u64, shift: u32) -> Result<Self, GcError> {
        if !(2..=62).contains(&k) {
            return Err(GcError::InvalidParams("k must lie in 2..=62"));
        }
        if p.is_multiple_of(2) || p <= 2 || p >> k != 0 {
            return Err(GcError::InvalidParams("p must be odd with 2 < p < 2^k"));
        }
        if shift + 1 >= k {
            return Err(GcError::InvalidParams("shift must be below k - 1"));
        }
        Ok(Self { k, p, shift })
    }

    /// `signed(v)` for `v ∈ [0, p)`.
    pub fn signed(&self, v: u64) -> i64 {
        if v <= (self.p - 1) / 2 {
            v as i64
        } else {
            v as i64 - self.p as i64
        }
    }

    /// `x mod p` for a signed `x`.
    pub fn encode(&self, x: i64) -> u64 {
        x.rem_euclid(self.p as i64) as u64
    }
}

/// The four protocol circuits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `max(0, signed(v)) >> shift − r mod p` (SecAct ReLU).
    ReluRescaleReshare,
    /// `floor(signed(v) / 2^shift) − r mod p`.
    RescaleReshare,
    /// `max over a 2×2 window of signed(v_j), >> shift, − r mod p` (four shared values).
    Max4RescaleReshare,
    /// `[signed(y1) > signed(y0)]` for two class scores, revealed to the garbler only.
    Argmax2,
}

impl Op {
    /// Shared values per instance.
    pub fn values(self) -> usize {
        match self {
            Op::ReluRescaleReshare | Op::RescaleReshare => 1,
            Op::Max4RescaleReshare => 4,
            Op::Argmax2 => 2,
        }
    }

    /// The channel label its traffic is counted under.
    pub fn label(self) -> &'static str {
        match self {
            Op::ReluRescaleReshare => "gc/relu",
            Op::RescaleReshare => "gc/rescale",
            Op::Max4RescaleReshare => "gc/maxpool",
            Op::Argmax2 => "gc/argmax",
        }
    }

    /// Whether the garbler supplies a re-sharing mask `r`.
    pub fn reshares(self) -> bool {
        self != Op::Argmax2
    }
}

/// A compiled protocol circuit with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gadget {
    params: Params,
    op: Op,
    circuit: Circuit,
}

/// `signed((s_a + s_b) mod p)` as a k-bit two's-complement word (≈ 4k AND gates).
fn signed_of_shares(b: &mut Builder, prm: &Params, sa: &[Bit], sb: &[Bit]) -> Vec<Bit> {
    let k = prm.k as usize;
    let (mut sum, carry) = b.add(sa, sb, ZERO);
    sum.push(carry);
    let h = (prm.p - 1) / 2;
    let c1 = b.less_than(&Builder::constant(h, k + 1), &sum);
    let c2 = b.less_than(&Builder::constant(prm.p + h, k + 1), &sum);
    // Subtrahend c·p with c = c1 + c2 ∈ {0, 1, 2} (c2 implies c1): bit i is
    // p_i·[c = 1] ⊕ p_{i−1}·[c = 2], and [c = 1] = c1 ⊕ c2.
    let one = b.xor(c1, c2);
    let sub: Vec<Bit> = (0..k)
        .map(|i| {
            let pi = Bit::Const((prm.p >> i) & 1 == 1);
            let pim1 = Bit::Const(i > 0 && (prm.p >> (i - 1)) & 1 == 1);
            let x = b.and(pi, one);
            let y = b.and(pim1, c2);
            b.xor(x, y)
        })
        .collect();
    b.sub_wrapping(&sum[..k], &sub)
}

/// `(y − r) mod p` for `y, r ∈ [0, p)` as k-bit words (≈ 2k AND gates).
fn sub_mod_p(b: &mut Builder, prm: &Params, y: &[Bit], r: &[Bit]) -> Vec<Bit> {
    let (d, borrow) = b.sub(y, r);
    let add: Vec<Bit> = Builder::constant(prm.p, prm.k as usize)
        .into_iter()
        .map(|pi| b.and(pi, borrow))
        .collect();
    b.add_wrapping(&d, &add)
}

/// `t mod p` for a k-bit two's-complement `t` with `|t| < p` (≈ k AND gates).
fn to_residue(b: &mut Builder, prm: &Params, t: &[Bit]) -> Vec<Bit> {
    let neg = t[t.len() - 1];
    let add: Vec<Bit> = Builder::constant(prm.p, prm.k as usize)
        .into_iter()
        .map(|pi| b.and(pi, neg))
        .collect();
    b.add_wrapping(t, &add)
}

/// Arithmetic shift right of a k-bit two's-complement word (free: rewiring).
fn shift_right(t: &[Bit], shift: usize) -> Vec<Bit> {
    let k = t.len();
    (0..k).map(|i| t[(i + shift).min(k - 1)]).collect()
}

/// The larger of two two's-complement words (≈ 2·width AND gates).
fn max_signed(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Vec<Bit> {
    let lt = b.less_than_signed(x, y);
    b.mux_word(lt, x, y)
}

impl Gadget {
    /// Builds the circuit of `op` for `params`.
    ///
    /// Garbler inputs per instance: its shares (`op.values()` words of k bits) then, when
    /// `op.reshares()`, the mask `r`; evaluator inputs: its shares. Outputs: one k-bit word to
    /// the evaluator, or one bit to the garbler for [`Op::Argmax2`].
    pub fn new(params: Params, op: Op) -> Self {
        let k = params.k as usize;
        let s = params.shift as usize;
        let mut b = Builder::new();
        let sa: Vec<Vec<Bit>> = (0..op.values()).map(|_| b.garbler_input(k)).collect();
        let r = if op.reshares() {
            b.garbler_input(k)
        } else {
            Vec::new()
        };
        let sb: Vec<Vec<Bit>> = (0..op.values()).map(|_| b.evaluator_input(k)).collect();
        let signed: Vec<Vec<Bit>> = sa
            .iter()
            .zip(&sb)
            .map(|(x, y)| signed_of_shares(&mut b, &params, x, y))
            .collect();
        let (outputs, to) = match op {
            Op::ReluRescaleReshare => {
                let t = &signed[0];
                let pos = b.not(t[k - 1]);
                // max(0, t) >> s: the k−1−s surviving magnitude bits, zeroed when negative.
                let y: Vec<Bit> = (0..k)
                    .map(|i| {
                        if i + s < k - 1 {
                            b.and(pos, t[i + s])
                        } else {
                            ZERO
                        }
                    })
                    .collect();
                (sub_mod_p(&mut b, &params, &y, &r), Party::Evaluator)
            }
            Op::RescaleReshare => {
                let t = shift_right(&signed[0], s);
                let y = to_residue(&mut b, &params, &t);
                (sub_mod_p(&mut b, &params, &y, &r), Party::Evaluator)
            }
            Op::Max4RescaleReshare => {
                // Flooring commutes with max, so compare the shifted (k−s)-bit words.
                let w = k - s;
                let t: Vec<Vec<Bit>> = signed.iter().map(|x| x[s..].to_vec()).collect();
                debug_assert!(t.iter().all(|x| x.len() == w));
                let m01 = max_signed(&mut b, &t[0], &t[1]);
                let m23 = max_signed(&mut b, &t[2], &t[3]);
                let mx = max_signed(&mut b, &m01, &m23);
                let ext: Vec<Bit> = (0..k).map(|i| mx[i.min(w - 1)]).collect();
                let y = to_residue(&mut b, &params, &ext);
                (sub_mod_p(&mut b, &params, &y, &r), Party::Evaluator)
            }
            Op::Argmax2 => {
                let gt = b.less_than_signed(&signed[0], &signed[1]);
                (vec![gt], Party::Garbler)
            }
        };
        Self {
            params,
            op,
            circuit: b.finish(outputs, to),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The compiled circuit.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// The plaintext reference of one instance: `s_a`, `s_b` hold `op.values()` shares each, `r`
    /// the mask (ignored by [`Op::Argmax2`]). Returns Bob's new share `y − r mod p`, or the bit
    /// `[signed(y1) > signed(y0)]` for [`Op::Argmax2`].
    ///
    /// # Panics
    /// If `s_a` or `s_b` has fewer than `op.values()` entries.
    pub fn reference(&self, s_a: &[u64], s_b: &[u64], r: u64) -> u64 {
        let prm = &self.params;
        let v: Vec<i64> = s_a
            .iter()
            .zip(s_b)
            .take(self.op.values())
            .map(|(a, b)| prm.signed((a + b) % prm.p))
            .collect();
        let y = match self.op {
            Op::ReluRescaleReshare => v[0].max(0) >> prm.shift,
            Op::RescaleReshare => v[0] >> prm.shift,
            Op::Max4RescaleReshare => v.iter().copied().max().expect("four values") >> prm.shift,
            Op::Argmax2 => return u64::from(v[1] > v[0]),
        };
        prm.encode(y - r as i64)
    }

    fn check_residues(&self, xs: &[u64]) -> Result<(), GcError> {
        match xs.iter().find(|&&x| x >= self.params.p) {
            Some(&value) => Err(GcError::ValueOutOfRange {
                value,
                p: self.params.p,
            }),
            None => Ok(()),
        }
    }

    /// The garbler's input bits for `m` instances: shares `s_a` (`m · values`, instance-major)
    /// and masks `r` (`m` of them, or none for [`Op::Argmax2`]).
    ///
    /// # Errors
    /// [`GcError::InputLength`] or [`GcError::ValueOutOfRange`].
    pub fn garbler_bits(&self, m: usize, s_a: &[u64], r: &[u64]) -> Result<Vec<bool>, GcError> {
        let vals = self.op.values();
        check_len("garbler shares", m * vals, s_a.len())?;
        check_len("masks", if self.op.reshares() { m } else { 0 }, r.len())?;
        self.check_residues(s_a)?;
        self.check_residues(r)?;
        let k = self.params.k as usize;
        let mut bits = Vec::with_capacity(self.circuit.n_garbler_inputs() * m);
        for i in 0..m {
            for &x in &s_a[i * vals..(i + 1) * vals] {
                bits.extend(to_bits(x, k));
            }
            if let Some(&ri) = r.get(i) {
                bits.extend(to_bits(ri, k));
            }
        }
        Ok(bits)
    }

    /// The evaluator's input bits for `m` instances of shares `s_b` (instance-major).
    ///
    /// # Errors
    /// [`GcError::InputLength`] or [`GcError::ValueOutOfRange`].
    pub fn evaluator_bits(&self, m: usize, s_b: &[u64]) -> Result<Vec<bool>, GcError> {
        check_len("evaluator shares", m * self.op.values(), s_b.len())?;
        self.check_residues(s_b)?;
        let k = self.params.k as usize;
        Ok(s_b.iter().flat_map(|&x| to_bits(x, k)).collect())
    }

    /// Output words (or bits) of `m` instances from the circuit's output bits.
    pub fn decode(&self, bits: &[bool]) -> Vec<u64> {
        bits.chunks(self.circuit.n_outputs().max(1))
            .map(from_bits)
            .collect()
    }
}

/// Alice's side of a batch of `m` instances: garbles with shares `s_a` and masks `r` (see
/// [`Gadget::garbler_bits`]), the evaluator's zero labels given (their active labels reach Bob by
/// correlated OT). Returns the argmax bits (`m` values in {0, 1}) for [`Op::Argmax2`], else an
/// empty vector (Alice's new shares are her masks `r`). Traffic is counted under
/// [`Op::label`].
///
/// # Errors
/// Invalid inputs ([`GcError`]), channel failures.
pub fn garble_batch(
    garbler: &mut Garbler,
    ch: &mut Channel,
    gadget: &Gadget,
    m: usize,
    s_a: &[u64],
    r: &[u64],
    evaluator_zero_labels: &[u128],
) -> Result<Vec<u64>, Error> {
    let bits = gadget.garbler_bits(m, s_a, r)?;
    let out = garbler.garble(
        &mut ch.labelled(gadget.op.label()),
        &gadget.circuit,
        m,
        &bits,
        evaluator_zero_labels,
    )?;
    Ok(gadget.decode(&out))
}

/// Bob's side of a batch of `m` instances, with the active labels of his input bits (from
/// correlated OT on the bits of [`Gadget::evaluator_bits`]). Returns his new shares `y − r mod
/// p`, or an empty vector for [`Op::Argmax2`] (whose result only Alice learns).
///
/// # Errors
/// Channel failures, malformed garbled data, or an output word that is not below p (which an
/// honest garbler never produces).
pub fn evaluate_batch(
    evaluator: &mut Evaluator,
    ch: &mut Channel,
    gadget: &Gadget,
    m: usize,
    evaluator_labels: &[u128],
) -> Result<Vec<u64>, Error> {
    let out = evaluator.evaluate(
        &mut ch.labelled(gadget.op.label()),
        &gadget.circuit,
        m,
        evaluator_labels,
    )?;
    let words = gadget.decode(&out);
    gadget.check_residues(&words)?;
    Ok(words)
}
