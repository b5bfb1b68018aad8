//! Proven value ranges of a fixed-point plan: interval arithmetic over the quantized weights.
//!
//! Every tensor of a [`QuantPlan`] holds values of `Z_p` that stand for signed integers
//! (`Quant::signed`). Starting from the client's input, which [`Quant::encode`] saturates to
//! `int_bits + f` signed bits, [`analyse`] carries one interval `[lo, hi]` per channel through
//! every step with the exact integer semantics of [`crate::fixed`]:
//!
//! - a conv adds `W·[lo, hi]` over its taps and input channels to its bias (a same-padded conv
//!   also reads the zero padding, so its inputs are widened to contain 0; each output of the
//!   2×2 stride-2 transposed conv reads exactly one tap, so the bound is the largest over the
//!   taps);
//! - the rescales floor both ends (`ReLU` first clamps them at 0), the sum pool multiplies
//!   them by the window, the square takes the larger square, concat appends the channels.
//!
//! The interval of a channel holds every value that channel can take for **any** input in the
//! input range, not only for calibration data: the bound is a proof, not an estimate. If an
//! interval leaves `[−(p − 1)/2, (p − 1)/2]`, the reference itself wraps mod p there and nothing
//! is proven; the tensor is then given the whole signed range, which every value of `Z_p`
//! satisfies, so the analysis stays sound after it.
//!
//! The nonlinear steps read the bound on their inputs ([`NonlinearRange`]): a comparison over
//! `needed_bits` bits would suffice where it is proven. The secure protocol compares over the
//! full width of p (`protocol_bits`) at every step today, which is correct for any input; the
//! report states both so that a narrower comparison can be adopted where the proof allows it,
//! and shows where it does not.

use crate::arch::ConvKind;
use crate::quant::{Op, Quant, QuantModel};

/// A closed interval of signed integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Smallest value.
    pub lo: i128,
    /// Largest value.
    pub hi: i128,
}

impl Interval {
    const ZERO: Interval = Interval { lo: 0, hi: 0 };

    fn union(self, other: Interval) -> Interval {
        Interval {
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }

    fn add(self, other: Interval) -> Interval {
        Interval {
            lo: self.lo + other.lo,
            hi: self.hi + other.hi,
        }
    }

    /// `w·[lo, hi]` for a constant `w`.
    fn scale(self, w: i128) -> Interval {
        let (a, b) = (w * self.lo, w * self.hi);
        Interval {
            lo: a.min(b),
            hi: a.max(b),
        }
    }

    /// `[⌊lo / 2^s⌋, ⌊hi / 2^s⌋]`.
    fn floor_shift(self, s: u32) -> Interval {
        Interval {
            lo: self.lo >> s,
            hi: self.hi >> s,
        }
    }

    /// The largest magnitude in the interval.
    pub fn magnitude(self) -> u128 {
        self.lo.unsigned_abs().max(self.hi.unsigned_abs())
    }
}

/// The proven bound on the input of one nonlinear step of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonlinearRange {
    /// Index of the step in [`QuantPlan::steps`](crate::QuantPlan::steps).
    pub step: usize,
    /// The step's operation.
    pub op: Op,
    /// The largest magnitude of a value the step compares (for `Argmax2` the difference of the
    /// two scores), over every input in the input range; meaningful only where `proven`.
    pub bound: u128,
    /// Whether the bound holds without any wrap mod p up to this step.
    pub proven: bool,
    /// Signed bits that hold every compared value (`⌈log2(bound + 1)⌉ + 1`); the full width of
    /// p where nothing is proven.
    pub needed_bits: u32,
    /// Bits the secure protocol compares over: the full width of p.
    pub protocol_bits: u32,
}

/// The intervals of every tensor and the bounds of every nonlinear step of `model`'s plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges {
    /// Per plan tensor, one interval per channel.
    pub tensors: Vec<Vec<Interval>>,
    /// Per nonlinear step, in plan order.
    pub nonlinear: Vec<NonlinearRange>,
}

impl Interval {
    /// Every value [`Quant::encode`] can produce: `int_bits + f` signed bits.
    pub fn encodable(quant: &Quant) -> Interval {
        let bits = quant.int_bits + quant.frac_bits;
        Interval {
            lo: -(1i128 << (bits - 1)),
            hi: (1i128 << (bits - 1)) - 1,
        }
    }

    /// The encodings of the real inputs in `[lo, hi]` (e.g. the ends of a model's
    /// [`InputNorm`](crate::InputNorm), `[−1, 1]` for the seed's): [`Quant::encode`] is monotone,
    /// so its values at the ends bound it.
    pub fn encoded(quant: &Quant, lo: f32, hi: f32) -> Interval {
        Interval {
            lo: i128::from(quant.signed(quant.encode(lo))),
            hi: i128::from(quant.signed(quant.encode(hi))),
        }
    }
}

/// Runs the interval analysis over `model`'s plan for client inputs in `input` (every channel;
/// see the module documentation).
pub fn analyse(model: &QuantModel, input: Interval) -> Ranges {
    let plan = model.plan();
    let q = *plan.quant();
    let half = ((q.p - 1) / 2) as i128;
    let full = Interval {
        lo: -half,
        hi: half,
    };
    let p_bits = 64 - q.p.leading_zeros();
    let mut tensors: Vec<Option<Vec<Interval>>> = vec![None; plan.tensors().len()];
    let mut wrapped = vec![false; plan.tensors().len()];
    tensors[0] = Some(vec![input; plan.tensors()[0].channels]);
    let mut nonlinear = Vec::new();
    for (index, step) in plan.steps().iter().enumerate() {
        let args: Vec<&Vec<Interval>> = step
            .inputs
            .iter()
            .map(|t| tensors[t.0].as_ref().expect("plan inputs come first"))
            .collect();
        let inputs_wrapped = step.inputs.iter().any(|t| wrapped[t.0]);
        let x = args[0];
        let out: Vec<Interval> = match step.op {
            Op::Conv { conv } => conv_intervals(model, conv, x),
            Op::Rescale { shift } | Op::MaxPoolRescale { shift } => {
                x.iter().map(|i| i.floor_shift(shift)).collect()
            }
            Op::ReluRescale { shift } => x
                .iter()
                .map(|i| {
                    Interval {
                        lo: i.lo.max(0),
                        hi: i.hi.max(0),
                    }
                    .floor_shift(shift)
                })
                .collect(),
            Op::Square => x
                .iter()
                .map(|i| {
                    let top = (i.lo * i.lo).max(i.hi * i.hi);
                    let bottom = if i.lo <= 0 && i.hi >= 0 {
                        0
                    } else {
                        (i.lo * i.lo).min(i.hi * i.hi)
                    };
                    Interval {
                        lo: bottom,
                        hi: top,
                    }
                })
                .collect(),
            Op::SumPool => {
                let window = model.plan().arch().pool_window() as i128;
                x.iter().map(|i| i.scale(window)).collect()
            }
            Op::Concat => x.iter().chain(args[1].iter()).copied().collect(),
            Op::Argmax2 => vec![Interval { lo: 0, hi: 1 }],
        };
        if step.op.is_nonlinear() {
            let compared = match step.op {
                Op::Argmax2 => Interval {
                    lo: x[1].lo - x[0].hi,
                    hi: x[1].hi - x[0].lo,
                },
                _ => x
                    .iter()
                    .copied()
                    .reduce(Interval::union)
                    .unwrap_or(Interval::ZERO),
            };
            let proven = !inputs_wrapped;
            let bound = compared.magnitude();
            let needed_bits = if proven {
                (128 - bound.leading_zeros()) + 1
            } else {
                p_bits
            };
            nonlinear.push(NonlinearRange {
                step: index,
                op: step.op,
                bound,
                proven,
                needed_bits: needed_bits.min(p_bits),
                protocol_bits: p_bits,
            });
        }
        // A value outside the signed range of Z_p wraps in the reference: from here on only
        // the whole signed range is proven.
        let wraps = out.iter().any(|i| i.lo < -half || i.hi > half);
        let o = step.output.0;
        wrapped[o] = inputs_wrapped || wraps;
        tensors[o] = Some(if wraps { vec![full; out.len()] } else { out });
    }
    Ranges {
        tensors: tensors
            .into_iter()
            .map(|t| t.expect("every tensor is written"))
            .collect(),
        nonlinear,
    }
}

/// Per output channel, the interval of conv `conv` of `model` on inputs in `x`.
fn conv_intervals(model: &QuantModel, conv: usize, x: &[Interval]) -> Vec<Interval> {
    let c = &model.convs()[conv];
    let (c_in, c_out, taps) = (c.spec.c_in, c.spec.c_out, c.spec.taps());
    // Inference layout `[co][ci][k..]` for every kind (the transposed conv's too).
    let weight = |o: usize, i: usize, t: usize| i128::from(c.weight[(o * c_in + i) * taps + t]);
    (0..c_out)
        .map(|o| {
            let bias = Interval {
                lo: i128::from(c.bias[o]),
                hi: i128::from(c.bias[o]),
            };
            let sum_over_inputs = |t: usize, padded: bool| {
                (0..c_in).fold(Interval::ZERO, |acc, i| {
                    let xi = if padded {
                        x[i].union(Interval::ZERO)
                    } else {
                        x[i]
                    };
                    acc.add(xi.scale(weight(o, i, t)))
                })
            };
            match c.spec.kind {
                ConvKind::Same => (0..taps).fold(bias, |acc, t| acc.add(sum_over_inputs(t, true))),
                ConvKind::Pointwise => bias.add(sum_over_inputs(0, false)),
                ConvKind::Transposed => (0..taps)
                    .map(|t| bias.add(sum_over_inputs(t, false)))
                    .reduce(Interval::union)
                    .unwrap_or(bias),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Activation, Architecture, Dims, Pooling};
    use crate::tensor::Tensor;
    use crate::weights::Weights;

    fn model(act: Activation, pool: Pooling, dims: Dims, quant: Quant, seed: u64) -> QuantModel {
        let arch = Architecture::small(act, pool, dims, 4);
        let folded = Weights::random_trained_like(&arch, seed)
            .expect("valid")
            .fold();
        QuantModel::new(&folded, quant).expect("quantizes")
    }

    /// Every step's output of the fixed-point reference lies in its proven intervals, for
    /// inputs at the ends of the input range and random ones inside it, with the whole
    /// encodable range and with the seed's normalised range `[−1, 1]`.
    #[test]
    fn the_reference_stays_inside_the_proven_intervals() {
        for (act, pool, dims) in [
            (Activation::Relu, Pooling::Max, Dims::Two),
            (Activation::Relu, Pooling::AvgLocal, Dims::Two),
            (Activation::Relu, Pooling::Max, Dims::Three),
        ] {
            for quant in [Quant::q32(), Quant::q24()] {
                let m = model(act, pool, dims, quant, 7);
                let q = *m.quant();
                for range in [Interval::encodable(&q), Interval::encoded(&q, -1.0, 1.0)] {
                    let ranges = analyse(&m, range);
                    if range != Interval::encodable(&q) {
                        assert!(
                            ranges.nonlinear.iter().any(|r| r.proven),
                            "the normalised range proves something"
                        );
                    }
                    check_inside(&m, &ranges, range, dims);
                }
            }
        }
    }

    fn check_inside(m: &QuantModel, ranges: &Ranges, range: Interval, dims: Dims) {
        let q = *m.quant();
        let extents = if dims == Dims::Three {
            [4, 8, 8]
        } else {
            [1, 8, 8]
        };
        let span = (range.hi - range.lo + 1) as u64;
        for trial in 0..6u64 {
            let c = m.plan().arch().in_channels;
            let n = c * extents.iter().product::<usize>();
            let data: Vec<u64> = (0..n as u64)
                .map(|i| {
                    let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15 ^ (trial << 32));
                    let v = match trial {
                        0 => range.lo,
                        1 => range.hi,
                        2 if (h >> 29) & 1 == 0 => range.lo,
                        2 => range.hi,
                        _ => range.lo + i128::from((h >> 20) % span),
                    };
                    q.reduce_signed(v as i64)
                })
                .collect();
            let input = Tensor::from_vec(c, extents, data).expect("shape");
            crate::fixed::run(m, input, |step, out| {
                let intervals = &ranges.tensors[step.output.0];
                for (ch, &i) in intervals.iter().enumerate() {
                    for &v in out.channel(ch) {
                        let s = i128::from(q.signed(v));
                        assert!(
                            i.lo <= s && s <= i.hi,
                            "{:?}: {s} outside [{}, {}]",
                            step.op,
                            i.lo,
                            i.hi
                        );
                    }
                }
            })
            .expect("runs");
        }
    }

    /// Weights large enough to push a conv past p/2 leave everything after it unproven (the
    /// protocol's full width), and the proven steps before it keep their bounds.
    #[test]
    fn weights_that_break_the_bound_fall_back_to_the_full_width() {
        let quant = Quant::q32();
        let arch = Architecture::small(Activation::Relu, Pooling::Max, Dims::Two, 4);
        let weights = Weights::random_trained_like(&arch, 3).expect("valid");
        let honest = QuantModel::new(&weights.fold(), quant).expect("quantizes");
        let before = analyse(&honest, Interval::encoded(&quant, -1.0, 1.0));
        let mut loud = weights;
        for w in &mut loud.convs[2].weight {
            *w *= 64.0;
        }
        let loud = QuantModel::new(&loud.fold(), quant).expect("quantizes");
        let after = analyse(&loud, Interval::encoded(&quant, -1.0, 1.0));
        let first_unproven = after
            .nonlinear
            .iter()
            .position(|r| !r.proven)
            .expect("a scaled conv breaks a bound");
        for r in &after.nonlinear[first_unproven..] {
            assert!(!r.proven);
            assert_eq!(r.needed_bits, r.protocol_bits);
        }
        // The steps before conv 2 keep their bounds, all proven.
        let conv2 = honest
            .plan()
            .steps()
            .iter()
            .position(|s| s.op == Op::Conv { conv: 2 })
            .expect("conv 2 is in the plan");
        let untouched = before.nonlinear.iter().filter(|r| r.step < conv2).count();
        assert!(untouched > 0 && untouched <= first_unproven);
        assert_eq!(before.nonlinear[..untouched], after.nonlinear[..untouched]);
        assert!(before.nonlinear[..untouched].iter().all(|r| r.proven));
        for r in before.nonlinear.iter().chain(&after.nonlinear) {
            assert!(r.needed_bits <= r.protocol_bits);
            assert_eq!(r.protocol_bits, 32);
        }
    }
}
