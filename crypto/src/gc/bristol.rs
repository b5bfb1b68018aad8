//! Reader of Bristol Fashion circuit files (Archer, Bogdanov, Lindell, Smart et al., "Bristol
//! Fashion MPC circuits", <https://nigelsmart.github.io/MPC-Circuits/>).
//!
//! Format: line 1 `ngates nwires`; line 2 `niv` then the bit width of each input value; line 3
//! `nov` then the width of each output value; then one gate per line: `2 1 a b out XOR|AND`,
//! `1 1 a out INV|NOT|EQW`, `1 1 c out EQ` (constant `c`), `2k k a1..ak b1..bk o1..ok MAND`.
//! Input values occupy wires from 0 in order; the outputs are the last `Σ o_i` wires. Bits are
//! least significant at the lowest wire.
//!
//! The reader never panics: every count is bounded ([`MAX_WIRES`], [`MAX_GATES`]) before
//! allocation and every malformed line is a [`GcError::Bristol`] naming its line.

use super::GcError;
use super::circuit::{Bit, Builder, Circuit, Party};

/// Largest wire count accepted.
pub const MAX_WIRES: usize = 1 << 24;
/// Largest gate count accepted.
pub const MAX_GATES: usize = 1 << 24;

fn err(line: usize, reason: impl Into<String>) -> GcError {
    GcError::Bristol {
        line,
        reason: reason.into(),
    }
}

fn number(tok: Option<&str>, line: usize, what: &str) -> Result<usize, GcError> {
    let tok = tok.ok_or_else(|| err(line, format!("expected {what}, found end of line")))?;
    tok.parse::<usize>()
        .map_err(|_| err(line, format!("expected {what} (a number), found {tok:?}")))
}

/// Parses a Bristol Fashion circuit. The first `garbler_values` input values belong to the
/// garbler, the rest to the evaluator; the outputs go to `output_to`.
///
/// # Errors
/// [`GcError::Bristol`] on any malformed header or gate, a wire read before it is written, a
/// wire written twice, counts above the bounds, or a gate count that differs from the header.
pub fn parse(text: &str, garbler_values: usize, output_to: Party) -> Result<Circuit, GcError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let header = Header::parse(&mut lines, garbler_values)?;
    let mut b = Builder::new();
    let mut wires = Wires {
        bits: vec![None; header.n_wires],
    };
    let mut next = 0;
    for (v, &w) in header.inputs.iter().enumerate() {
        let bits = if v < garbler_values {
            b.garbler_input(w)
        } else {
            b.evaluator_input(w)
        };
        for bit in bits {
            wires.bits[next] = Some(bit);
            next += 1;
        }
    }
    let mut seen = 0usize;
    for (ln, l) in lines {
        seen += 1;
        if seen > header.n_gates {
            return Err(err(
                ln,
                format!("more gates than the {} announced", header.n_gates),
            ));
        }
        gate(&mut b, &mut wires, ln, l)?;
    }
    if seen != header.n_gates {
        return Err(err(
            0,
            format!("expected {} gates, found {seen}", header.n_gates),
        ));
    }
    let n_wires = header.n_wires;
    let outs = (n_wires - header.n_out..n_wires)
        .map(|w| wires.bits[w].ok_or_else(|| err(0, format!("output wire {w} is never written"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(b.finish(outs, output_to))
}

/// The three header lines, checked against the bounds and against each other.
struct Header {
    n_gates: usize,
    n_wires: usize,
    /// Bit width of each input value.
    inputs: Vec<usize>,
    /// Output bits in total.
    n_out: usize,
}

impl Header {
    fn parse<'t>(
        lines: &mut impl Iterator<Item = (usize, &'t str)>,
        garbler_values: usize,
    ) -> Result<Self, GcError> {
        let mut header = |what: &str| {
            lines
                .next()
                .ok_or_else(|| err(0, format!("expected the {what} line, found end of file")))
        };
        let (ln, l) = header("gate and wire count")?;
        let mut t = l.split_whitespace();
        let n_gates = number(t.next(), ln, "gate count")?;
        let n_wires = number(t.next(), ln, "wire count")?;
        if n_gates > MAX_GATES || n_wires > MAX_WIRES {
            return Err(err(
                ln,
                format!("circuit larger than {MAX_GATES} gates or {MAX_WIRES} wires"),
            ));
        }
        let (ln, l) = header("input values")?;
        let inputs = widths(ln, l, "input values", n_wires)?;
        let (ln, l) = header("output values")?;
        let outputs = widths(ln, l, "output values", n_wires)?;
        let total = |w: &[usize]| {
            w.iter()
                .try_fold(0usize, |a, &w| a.checked_add(w))
                .unwrap_or(usize::MAX)
        };
        let (n_in, n_out) = (total(&inputs), total(&outputs));
        if n_in > n_wires || n_out > n_wires {
            return Err(err(ln, "more input or output bits than wires"));
        }
        if garbler_values > inputs.len() {
            return Err(err(
                ln,
                format!(
                    "{garbler_values} garbler values but only {} inputs",
                    inputs.len()
                ),
            ));
        }
        Ok(Self {
            n_gates,
            n_wires,
            inputs,
            n_out,
        })
    }
}

/// A count of values then their bit widths, at most `n_wires` of them.
fn widths(ln: usize, l: &str, what: &str, n_wires: usize) -> Result<Vec<usize>, GcError> {
    let mut t = l.split_whitespace();
    let n = number(t.next(), ln, what)?;
    if n > n_wires {
        return Err(err(ln, format!("{n} {what} exceed the {n_wires} wires")));
    }
    let w = (0..n)
        .map(|_| number(t.next(), ln, "a value width"))
        .collect::<Result<Vec<_>, _>>()?;
    if t.next().is_some() {
        return Err(err(ln, "trailing tokens"));
    }
    Ok(w)
}

/// The circuit's wires, each written once before it is read.
struct Wires {
    bits: Vec<Option<Bit>>,
}

impl Wires {
    fn read(&self, ln: usize, w: usize) -> Result<Bit, GcError> {
        self.bits.get(w).copied().flatten().ok_or_else(|| {
            err(
                ln,
                format!("wire {w} is read before it is written or out of range"),
            )
        })
    }

    fn write(&mut self, ln: usize, w: usize, bit: Bit) -> Result<(), GcError> {
        let n_wires = self.bits.len();
        match self.bits.get_mut(w) {
            Some(slot @ None) => {
                *slot = Some(bit);
                Ok(())
            }
            Some(Some(_)) => Err(err(ln, format!("wire {w} is written twice"))),
            None => Err(err(ln, format!("wire {w} out of range (< {n_wires})"))),
        }
    }
}

/// Adds the gate of line `ln` to `b`.
fn gate(b: &mut Builder, wires: &mut Wires, ln: usize, l: &str) -> Result<(), GcError> {
    let toks: Vec<&str> = l.split_whitespace().collect();
    let (n_i, n_o) = (
        number(toks.first().copied(), ln, "input count")?,
        number(toks.get(1).copied(), ln, "output count")?,
    );
    if toks.len() != 3 + n_i + n_o {
        return Err(err(
            ln,
            format!("expected {} tokens, found {}", 3 + n_i + n_o, toks.len()),
        ));
    }
    let op = toks[toks.len() - 1];
    let wire_at = |i: usize| number(Some(toks[2 + i]), ln, "a wire index");
    match (op, n_i, n_o) {
        ("XOR" | "AND", 2, 1) => {
            let x = wires.read(ln, wire_at(0)?)?;
            let y = wires.read(ln, wire_at(1)?)?;
            let z = if op == "XOR" {
                b.xor(x, y)
            } else {
                b.and(x, y)
            };
            wires.write(ln, wire_at(2)?, z)
        }
        ("INV" | "NOT", 1, 1) => {
            let x = wires.read(ln, wire_at(0)?)?;
            let z = b.not(x);
            wires.write(ln, wire_at(1)?, z)
        }
        ("EQW", 1, 1) => {
            let x = wires.read(ln, wire_at(0)?)?;
            wires.write(ln, wire_at(1)?, x)
        }
        ("EQ", 1, 1) => {
            let c = match toks[2] {
                "0" => false,
                "1" => true,
                other => {
                    return Err(err(
                        ln,
                        format!("EQ constant must be 0 or 1, found {other:?}"),
                    ));
                }
            };
            wires.write(ln, wire_at(1)?, Bit::Const(c))
        }
        ("MAND", n2, k) if n2 == 2 * k && k > 0 => {
            for i in 0..k {
                let x = wires.read(ln, wire_at(i)?)?;
                let y = wires.read(ln, wire_at(k + i)?)?;
                let z = b.and(x, y);
                wires.write(ln, wire_at(2 * k + i)?, z)?;
            }
            Ok(())
        }
        _ => Err(err(
            ln,
            format!("unknown gate {op:?} with {n_i} inputs and {n_o} outputs"),
        )),
    }
}
