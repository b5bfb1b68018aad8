//! Fixed point over `Z_p`: the conventions the secure protocol implements, the lowering of the
//! layer graph to a [`QuantPlan`] of protocol steps, and the quantized weights ([`QuantModel`]).
//!
//! # Conventions (decided; the secure protocol implements exactly these)
//! - Values are elements of `[0, p)`; `signed(v) = v` if `v ≤ (p − 1)/2`, else `v − p`.
//! - Every tensor carries its count `F` of fractional bits: `v` stands for `signed(v) / 2^F`.
//! - The client quantises the input: `encode(x) = round_half_away(x · 2^f)` saturated to the
//!   signed range of `int_bits + f` bits. Nothing else saturates: intermediate values wrap mod p
//!   exactly as the protocol's shares do.
//! - Weights: `W = round_half_away(w · 2^fw)`; a conv's bias is quantised at the conv's output
//!   bits, plus a rounding offset: `B = round_half_away(b · 2^(F_in + fw)) + 2^(s−1)`, where
//!   `s > 0` is the shift of the rescale that consumes the conv's output (no offset when none
//!   does). The rescale stays a floor, but the floor of `v + 2^(s−1)` is `v / 2^s` rounded to
//!   nearest: this removes the −½-ulp bias that floors would add at every layer (it halved the
//!   head-score drift of our test networks), at no protocol cost — the offset is part of the
//!   server's bias. A conv's output is `Σ W·X + B mod p` with `F_out = F_in + fw` (one HomConv).
//! - Nonlinear steps are each ONE call of the secure nonlinear backend:
//!   `rescale(v, s) = floor(signed(v) / 2^s) mod p` (arithmetic shift),
//!   `relu_rescale(v, s) = max(0, signed(v)) >> s mod p`,
//!   `max_rescale(window, s) = max(signed(window)) >> s mod p`,
//!   `argmax2(y0, y1) = [signed(y1) > signed(y0)]`.
//! - ReLU after a conv: `relu_rescale` with `s = F_in − f`, output `F = f`.
//! - Square after a conv: `rescale` to `F = f` (one nonlinear call), then `v² mod p` (one Beaver
//!   multiplication, exact), output `F = 2f`; the next conv's shift absorbs the extra bits.
//! - Average pool (both protocol variants): the window sum mod p, no division; `F` grows by 2
//!   (3 in 3D) — the next rescale's shift absorbs the division.
//! - Max pool: `max_rescale` with `s = 0` (F unchanged; in the square network the pending `f`
//!   extra bits stay and the next conv's shift absorbs them, as after an activation).
//! - Transposed conv: zero insertion + conv mod p (`F_in + fw`); then, at the concatenation, the
//!   operand with more fractional bits is rescaled to the other's `F` (the upsampled tensor to
//!   the skip's `f` with ReLU, `2f` with square), so both halves share one `F`.
//! - Head: 1×1 conv mod p, then `argmax2` of the two class scores (revealed to the client only).

use std::fmt;

use crate::arch::{Activation, Architecture, ConvSpec, Dims, Graph, LayerKind, TensorId};
use crate::error::{Error, QuantError};
use crate::tensor::Tensor;
use crate::weights::Model;

/// The q32 plaintext modulus: the largest prime below 2^32 with `p ≡ 1 mod 2^14`
/// (`bunet_kernels::primes::primes_congruent_one(32, 16384, 1)[0]`).
pub const Q32_P: u64 = 4_294_475_777;
/// The q24 plaintext modulus: the largest prime below 2^24 with `p ≡ 1 mod 2^14`.
pub const Q24_P: u64 = 16_760_833;

/// Largest magnitude of a quantized weight (2^24, i.e. |w| < 2^(24 − fw)): keeps the exact conv
/// sums of the fixed-point reference within i64 for any modulus below 2^32.
pub const MAX_WEIGHT: i64 = 1 << 24;

/// A fixed-point configuration over `Z_p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quant {
    /// `p`: the plaintext modulus, an odd prime below 2^32.
    pub p: u64,
    /// `f`: fractional bits of activations.
    pub frac_bits: u32,
    /// Integer bits of the client's input (sign included in `int_bits + f`).
    pub int_bits: u32,
    /// `fw`: fractional bits of weights.
    pub weight_frac_bits: u32,
}

impl Quant {
    /// Table 1's 32-bit configuration: p = [`Q32_P`], 12 integer and 4 fractional bits, weights
    /// with 12 fractional bits.
    ///
    /// The weight bits are what the fixed-point masks' agreement with float depends on: the
    /// folded 3×3 weights of a trained UNet are small (a few hundredths), so with 8 fractional
    /// bits each carries a ~4 % error and the errors compound over the 23 convs (measured on
    /// the default weights: 0.64 Dice against float with 8 bits; 4 more bits of activation
    /// precision did not help). Wider weights cost nothing in the protocol (HomConv's noise
    /// budget assumes full-range plaintexts mod p; the ReLU's shift grows, not its circuit); the
    /// limit is headroom: the largest conv output, `F = f + 2 + fw` = 18 fractional bits after
    /// a pool, must stay below p/2 = 2^31, i.e. below 2^13 in value (the default weights reach
    /// ~15, see the harness's `model` tests).
    pub fn q32() -> Self {
        Self {
            p: Q32_P,
            frac_bits: 4,
            int_bits: 12,
            weight_frac_bits: 12,
        }
    }

    /// Table 1's 24-bit configuration: p = [`Q24_P`], 8 integer and 4 fractional bits, weights
    /// with 10 fractional bits (see [`Quant::q32`] for why). Headroom decides: a conv after a
    /// pool has 16 fractional bits and must stay below p/2 ≈ 2^23, i.e. below 2^7 = 128 in
    /// value (the default weights reach ~15). A square network's convs read `2f` fractional
    /// bits and would wrap at ~32: run those with `Quant { weight_frac_bits: 8, ..Quant::q24() }`.
    pub fn q24() -> Self {
        Self {
            p: Q24_P,
            frac_bits: 4,
            int_bits: 8,
            weight_frac_bits: 10,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`QuantError::Modulus`] unless p is an odd prime < 2^32; [`QuantError::Bits`] unless
    /// `1 ≤ int_bits + f < bits(p)` and `fw ≤ 24`.
    pub fn validate(&self) -> Result<(), QuantError> {
        if self.p < 3 || self.p >= 1 << 32 || !bunet_kernels::primes::is_prime(self.p) {
            return Err(QuantError::Modulus { p: self.p });
        }
        let p_bits = 64 - self.p.leading_zeros();
        let total = self.int_bits + self.frac_bits;
        if total == 0 || total >= p_bits || self.weight_frac_bits > 24 {
            return Err(QuantError::Bits {
                int_bits: self.int_bits,
                frac_bits: self.frac_bits,
                weight_frac_bits: self.weight_frac_bits,
                p_bits,
            });
        }
        Ok(())
    }

    /// `signed(v)`: the centred representative of `v ∈ [0, p)`.
    #[inline]
    pub fn signed(&self, v: u64) -> i64 {
        if v <= (self.p - 1) / 2 {
            v as i64
        } else {
            v as i64 - self.p as i64
        }
    }

    /// `s mod p` in `[0, p)`.
    #[inline]
    pub fn reduce_signed(&self, s: i64) -> u64 {
        s.rem_euclid(self.p as i64) as u64
    }

    /// The client's input quantisation: `round_half_away(x · 2^f)` saturated to the signed range
    /// of `int_bits + f` bits, mod p. NaN encodes as 0.
    pub fn encode(&self, x: f32) -> u64 {
        let bits = self.int_bits + self.frac_bits;
        let hi = (1i64 << (bits - 1)) - 1;
        let lo = -(1i64 << (bits - 1));
        let scaled = (f64::from(x) * f64::from(1u32 << self.frac_bits)).round();
        let q = if scaled.is_nan() {
            0
        } else {
            (scaled.clamp(lo as f64, hi as f64)) as i64
        };
        self.reduce_signed(q)
    }

    /// The real number `v` stands for at `frac` fractional bits: `signed(v) / 2^frac`.
    pub fn decode(&self, v: u64, frac: u32) -> f64 {
        self.signed(v) as f64 / (frac as f64).exp2()
    }

    /// [`Quant::encode`] on every element.
    pub fn encode_tensor(&self, x: &Tensor<f32>) -> Tensor<u64> {
        x.map(|&v| self.encode(v))
    }

    /// `rescale(v, s) = floor(signed(v) / 2^s) mod p`.
    #[inline]
    pub fn rescale(&self, v: u64, s: u32) -> u64 {
        self.reduce_signed(self.signed(v) >> s)
    }

    /// `relu_rescale(v, s) = max(0, signed(v)) >> s mod p`.
    #[inline]
    pub fn relu_rescale(&self, v: u64, s: u32) -> u64 {
        (self.signed(v).max(0) >> s) as u64
    }

    /// `max_rescale(window, s) = max(signed(window)) >> s mod p` (the window is non-empty).
    #[inline]
    pub fn max_rescale(&self, window: &[u64], s: u32) -> u64 {
        let m = window.iter().map(|&v| self.signed(v)).max().unwrap_or(0);
        self.reduce_signed(m >> s)
    }

    /// `argmax2(y0, y1) = [signed(y1) > signed(y0)]` (ties go to class 0).
    #[inline]
    pub fn argmax2(&self, y0: u64, y1: u64) -> u64 {
        u64::from(self.signed(y1) > self.signed(y0))
    }

    /// `v² mod p` (what one Beaver multiplication computes).
    #[inline]
    pub fn square(&self, v: u64) -> u64 {
        // p < 2^32, so v² < 2^64.
        v * v % self.p
    }

    /// Canonical bytes: the tag `bunet-quant-v1`, `p` as little-endian u64, then `f`,
    /// `int_bits`, `fw` as little-endian u32.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = b"bunet-quant-v1".to_vec();
        out.extend_from_slice(&self.p.to_le_bytes());
        for v in [self.frac_bits, self.int_bits, self.weight_frac_bits] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Stable 64-bit fingerprint ([`crate::arch::fnv1a64`] of [`Quant::canonical_bytes`]).
    pub fn fingerprint(&self) -> u64 {
        crate::arch::fnv1a64(&self.canonical_bytes())
    }
}

impl fmt::Display for Quant {
    /// `p=4294475777 int=12 frac=4 wfrac=12`, the `bunet.quantization` metadata of weight files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p={} int={} frac={} wfrac={}",
            self.p, self.int_bits, self.frac_bits, self.weight_frac_bits
        )
    }
}

/// A tensor of the plan: its shape (as in [`crate::TensorInfo`]) and fractional bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTensor {
    /// Channels.
    pub channels: usize,
    /// Down-sampling level.
    pub level: u32,
    /// Fractional bits `F`.
    pub frac: u32,
}

/// One protocol building block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `Σ W·X + B mod p` (HomConv; the transposed conv by zero insertion). Linear.
    Conv {
        /// Index into [`Architecture::convs`].
        conv: usize,
    },
    /// `rescale(v, shift)`. One nonlinear call.
    Rescale {
        /// Bits dropped.
        shift: u32,
    },
    /// `relu_rescale(v, shift)`. One nonlinear call.
    ReluRescale {
        /// Bits dropped.
        shift: u32,
    },
    /// `v² mod p`. One Beaver multiplication.
    Square,
    /// Window sum of the average pool mod p (by PAHE rotations or locally on shares, as
    /// [`Architecture::pooling`] says). Linear.
    SumPool,
    /// `max_rescale(window, shift)` over each pooling window. One nonlinear call.
    MaxPoolRescale {
        /// Bits dropped.
        shift: u32,
    },
    /// Channel concatenation `[inputs[0], inputs[1]]`. Local on shares.
    Concat,
    /// `argmax2` of the two class scores; the result goes to the client only. One nonlinear
    /// call.
    Argmax2,
}

impl Op {
    /// Whether the step is one call of the secure nonlinear backend (GC or OT).
    pub fn is_nonlinear(&self) -> bool {
        matches!(
            self,
            Op::Rescale { .. } | Op::ReluRescale { .. } | Op::MaxPoolRescale { .. } | Op::Argmax2
        )
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The building block.
    pub op: Op,
    /// Input tensors (two for [`Op::Concat`]).
    pub inputs: Vec<TensorId>,
    /// Output tensor.
    pub output: TensorId,
    /// Index of the graph layer this step belongs to.
    pub layer: usize,
}

impl crate::exec::Node for Step {
    fn inputs(&self) -> &[TensorId] {
        &self.inputs
    }
    fn output(&self) -> TensorId {
        self.output
    }
}

/// The layer graph lowered to protocol steps under a [`Quant`], with every tensor's fractional
/// bits and every nonlinear call's shift. The fixed-point reference and the secure driver both
/// walk [`QuantPlan::steps`], so they agree by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantPlan {
    quant: Quant,
    arch: Architecture,
    tensors: Vec<PlanTensor>,
    steps: Vec<Step>,
    layer_outputs: Vec<TensorId>,
    conv_fracs: Vec<(u32, u32)>,
    output: TensorId,
}

impl QuantPlan {
    /// Lowers `arch`'s graph under `quant` (conventions in the module docs).
    ///
    /// # Errors
    /// [`Error::Architecture`] or [`Error::Quant`] if either is invalid.
    pub fn new(arch: &Architecture, quant: Quant) -> Result<Self, Error> {
        arch.validate()?;
        quant.validate()?;
        let g: Graph = arch.graph();
        let f = quant.frac_bits;
        let fw = quant.weight_frac_bits;
        let mut plan = QuantPlan {
            quant,
            arch: *arch,
            tensors: vec![PlanTensor {
                channels: arch.in_channels,
                level: 0,
                frac: f,
            }],
            steps: Vec::new(),
            layer_outputs: Vec::with_capacity(g.layers.len()),
            conv_fracs: vec![(0, 0); arch.convs().len()],
            output: TensorId(0),
        };
        let mut map = vec![TensorId(0); g.tensors.len()];
        for (li, layer) in g.layers.iter().enumerate() {
            let info = g.tensors[layer.output.0];
            let x = map[layer.inputs[0].0];
            let fx = plan.tensors[x.0].frac;
            let push = |plan: &mut QuantPlan, op, inputs: &[TensorId], frac| {
                let output = TensorId(plan.tensors.len());
                let level = plan.tensors[inputs[0].0].level;
                let channels = match op {
                    Op::Conv { conv } => arch.convs()[conv].c_out,
                    Op::Concat => inputs.iter().map(|t| plan.tensors[t.0].channels).sum(),
                    Op::Argmax2 => 1,
                    _ => plan.tensors[inputs[0].0].channels,
                };
                plan.tensors.push(PlanTensor {
                    channels,
                    level,
                    frac,
                });
                plan.steps.push(Step {
                    op,
                    inputs: inputs.to_vec(),
                    output,
                    layer: li,
                });
                output
            };
            let out = match layer.kind {
                LayerKind::Conv { conv }
                | LayerKind::UpConv { conv }
                | LayerKind::Head { conv } => {
                    plan.conv_fracs[conv] = (fx, fx + fw);
                    push(&mut plan, Op::Conv { conv }, &[x], fx + fw)
                }
                LayerKind::Activation => match arch.activation {
                    Activation::Relu => push(&mut plan, Op::ReluRescale { shift: fx - f }, &[x], f),
                    Activation::Square => {
                        let y = if fx > f {
                            push(&mut plan, Op::Rescale { shift: fx - f }, &[x], f)
                        } else {
                            x
                        };
                        let fy = plan.tensors[y.0].frac;
                        push(&mut plan, Op::Square, &[y], 2 * fy)
                    }
                },
                LayerKind::Pool if arch.pooling.is_average() => {
                    let extra = match arch.dims {
                        Dims::Two => 2,
                        Dims::Three => 3,
                    };
                    push(&mut plan, Op::SumPool, &[x], fx + extra)
                }
                LayerKind::Pool => push(&mut plan, Op::MaxPoolRescale { shift: 0 }, &[x], fx),
                LayerKind::Concat => {
                    let mut ops = [x, map[layer.inputs[1].0]];
                    let target = ops
                        .iter()
                        .map(|t| plan.tensors[t.0].frac)
                        .min()
                        .unwrap_or(f);
                    for t in &mut ops {
                        let ft = plan.tensors[t.0].frac;
                        if ft > target {
                            *t = push(&mut plan, Op::Rescale { shift: ft - target }, &[*t], target);
                        }
                    }
                    push(&mut plan, Op::Concat, &ops, target)
                }
                LayerKind::Argmax => push(&mut plan, Op::Argmax2, &[x], 0),
            };
            // The level of pools and upconvs comes from the graph.
            plan.tensors[out.0].level = info.level;
            map[layer.output.0] = out;
            plan.layer_outputs.push(out);
        }
        plan.output = map[g.output.0];
        Ok(plan)
    }

    /// The configuration.
    pub fn quant(&self) -> &Quant {
        &self.quant
    }

    /// The architecture.
    pub fn arch(&self) -> &Architecture {
        &self.arch
    }

    /// Every tensor of the plan; `TensorId(0)` is the input (`F = f`).
    pub fn tensors(&self) -> &[PlanTensor] {
        &self.tensors
    }

    /// The steps, in execution order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// For each graph layer (same index as [`Graph::layers`]), the plan tensor holding its
    /// output — where the fixed-point and float references are compared.
    pub fn layer_outputs(&self) -> &[TensorId] {
        &self.layer_outputs
    }

    /// `(F_in, F_out)` of conv `conv` (the bias is quantised at `F_out`).
    pub fn conv_fracs(&self, conv: usize) -> (u32, u32) {
        self.conv_fracs[conv]
    }

    /// The rounding offset added to conv `conv`'s quantised bias: `2^(s−1)` where `s > 0` is
    /// the shift of the rescale (or relu-rescale) step that consumes the conv's output, 0 if
    /// none does. The floor of that rescale then rounds to nearest.
    pub fn rounding_offset(&self, conv: usize) -> i64 {
        let Some(out) = self
            .steps
            .iter()
            .find(|s| s.op == Op::Conv { conv })
            .map(|s| s.output)
        else {
            return 0;
        };
        self.steps
            .iter()
            .filter(|t| t.inputs.contains(&out))
            .find_map(|t| match t.op {
                Op::Rescale { shift } | Op::ReluRescale { shift } if shift > 0 => {
                    Some(1i64 << (shift - 1))
                }
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Extents `[depth, height, width]` of plan tensor `t` for an input of extents `input`.
    pub fn tensor_dims(&self, t: TensorId, input: [usize; 3]) -> [usize; 3] {
        self.arch.dims_at(input, self.tensors[t.0].level)
    }

    /// The mask tensor (output of [`Op::Argmax2`]).
    pub fn output(&self) -> TensorId {
        self.output
    }

    /// Number of nonlinear backend calls per input element position, by kind, for reports:
    /// total elements processed by nonlinear steps for an input of extents `dims`.
    pub fn nonlinear_elements(&self, dims: [usize; 3]) -> u64 {
        self.steps
            .iter()
            .filter(|s| s.op.is_nonlinear())
            .map(|s| {
                let t = self.tensors[s.output.0];
                let n: usize = self.arch.dims_at(dims, t.level).iter().product();
                (t.channels * n) as u64
            })
            .sum()
    }
}

/// One conv with quantized weights, in inference layout (`[co][ci][kd][kh][kw]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantConv {
    /// The conv's description.
    pub spec: ConvSpec,
    /// `W = round_half_away(w · 2^fw)` (signed; |W| ≤ min([`MAX_WEIGHT`], (p − 1)/2)).
    pub weight: Vec<i32>,
    /// `B = round_half_away(b · 2^F_out) + offset` (signed; |B| < p/2), the offset from
    /// [`QuantPlan::rounding_offset`].
    pub bias: Vec<i64>,
    /// Fractional bits of the input.
    pub frac_in: u32,
    /// Fractional bits of the output (`frac_in + fw`).
    pub frac_out: u32,
}

impl QuantConv {
    /// The weights as elements of `Z_p` (what the server's HomConv uses).
    pub fn weight_mod_p(&self, p: u64) -> Vec<u64> {
        self.weight
            .iter()
            .map(|&w| i64::from(w).rem_euclid(p as i64) as u64)
            .collect()
    }

    /// The bias as elements of `Z_p`.
    pub fn bias_mod_p(&self, p: u64) -> Vec<u64> {
        self.bias
            .iter()
            .map(|&b| b.rem_euclid(p as i64) as u64)
            .collect()
    }
}

/// A model quantized for a plan: the server's side of the fixed-point reference.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantModel {
    plan: QuantPlan,
    pub(crate) convs: Vec<QuantConv>,
    /// `k` of [`Model::with_activation_scale`]: the class scores are `2^k` times the model's.
    activation_scale: u32,
}

impl QuantModel {
    /// Plans `model`'s architecture under `quant` and quantizes its folded weights.
    ///
    /// # Errors
    /// As [`QuantPlan::new`]; [`QuantError::ValueOutOfRange`] if a quantized weight or bias does
    /// not fit.
    pub fn new(model: &Model, quant: Quant) -> Result<Self, Error> {
        let plan = QuantPlan::new(model.arch(), quant)?;
        let half = ((quant.p - 1) / 2) as i64;
        let w_bound = half.min(MAX_WEIGHT);
        let round = |x: f32, bits: u32| (f64::from(x) * (bits as f64).exp2()).round();
        let mut convs = Vec::with_capacity(model.convs().len());
        for (i, c) in model.convs().iter().enumerate() {
            let (frac_in, frac_out) = plan.conv_fracs(i);
            let check = |what, v: f64, bound: i64| {
                if v.abs() <= bound as f64 {
                    Ok(v as i64)
                } else {
                    Err(QuantError::ValueOutOfRange {
                        what,
                        conv: c.spec.name.clone(),
                        value: v.clamp(i64::MIN as f64, i64::MAX as f64) as i64,
                        bound,
                    })
                }
            };
            let weight = c
                .weight
                .iter()
                .map(|&w| {
                    check("weight", round(w, quant.weight_frac_bits), w_bound).map(|v| v as i32)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let offset = plan.rounding_offset(i) as f64;
            let bias = c
                .bias
                .iter()
                .map(|&b| check("bias", round(b, frac_out) + offset, half))
                .collect::<Result<Vec<_>, _>>()?;
            convs.push(QuantConv {
                spec: c.spec.clone(),
                weight,
                bias,
                frac_in,
                frac_out,
            });
        }
        Ok(Self {
            plan,
            convs,
            activation_scale: 0,
        })
    }

    /// Quantises `model` with its activations scaled by the largest power of two `2^k`
    /// (`k ≤ max_k`) that keeps every tensor of the plan, on the float model's outputs for the
    /// `calibration` inputs, at least `margin_bits` bits below `p/2`
    /// ([`Model::with_activation_scale`], folded into the first conv's weights and every bias:
    /// the client's input and the protocol are unchanged, only the server's weights differ).
    /// With the seed's 4 fractional bits an activation of a standardised network has about 16
    /// levels per unit; `k` more bits of them is what the masks' agreement with float needs.
    /// A square network, or no calibration input, gets `k = 0` ([`QuantModel::new`]).
    ///
    /// # Errors
    /// As [`QuantModel::new`]; [`Error::Shape`] if a calibration input does not fit.
    pub fn calibrated(
        model: &Model,
        quant: Quant,
        calibration: &[Tensor<f32>],
        margin_bits: u32,
        max_k: u32,
    ) -> Result<Self, Error> {
        let plan = QuantPlan::new(model.arch(), quant)?;
        if model.arch().activation != Activation::Relu || calibration.is_empty() {
            return Self::new(model, quant);
        }
        // Largest |value| · 2^F over the plan's layer outputs (conv outputs before their
        // rescale carry the most fractional bits and decide).
        let mut peak = 0.0f64;
        for x in calibration {
            let mut i = 0usize;
            crate::float::run(model, x.clone(), |_, t| {
                let frac = plan.tensors()[plan.layer_outputs()[i].0].frac;
                let m = t
                    .data()
                    .iter()
                    .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
                peak = peak.max(m * f64::from(frac).exp2());
                i += 1;
            })?;
        }
        let limit = ((quant.p - 1) / 2) as f64 / f64::from(margin_bits).exp2();
        let mut k = 0;
        while k < max_k && peak * f64::from(k + 1).exp2() < limit {
            k += 1;
        }
        let mut qm = Self::new(&model.with_activation_scale(k), quant)?;
        qm.activation_scale = k;
        Ok(qm)
    }

    /// `k` of the activation scale `2^k` folded into the weights (0 for [`QuantModel::new`]).
    pub fn activation_scale(&self) -> u32 {
        self.activation_scale
    }

    /// The plan.
    pub fn plan(&self) -> &QuantPlan {
        &self.plan
    }

    /// The quantized convs, in [`Architecture::convs`] order.
    pub fn convs(&self) -> &[QuantConv] {
        &self.convs
    }

    /// The configuration.
    pub fn quant(&self) -> &Quant {
        &self.plan.quant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_moduli_are_the_largest_ntt_friendly_primes() {
        assert_eq!(
            Q32_P,
            bunet_kernels::primes::primes_congruent_one(32, 16384, 1)[0]
        );
        assert_eq!(
            Q24_P,
            bunet_kernels::primes::primes_congruent_one(24, 16384, 1)[0]
        );
        assert!(Quant::q32().validate().is_ok());
        assert!(Quant::q24().validate().is_ok());
        assert_ne!(Quant::q32().fingerprint(), Quant::q24().fingerprint());
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let q = Quant::q32();
        for bad in [
            Quant { p: 1 << 20, ..q },
            Quant {
                p: 4_294_967_311,
                ..q
            }, // prime above 2^32
            Quant { p: 2, ..q },
            Quant { int_bits: 28, ..q },
            Quant {
                int_bits: 0,
                frac_bits: 0,
                ..q
            },
            Quant {
                weight_frac_bits: 25,
                ..q
            },
        ] {
            assert!(bad.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn elementwise_semantics() {
        let q = Quant::q32();
        let p = q.p;
        let neg = |x: i64| q.reduce_signed(x);
        assert_eq!(q.signed((p - 1) / 2), ((p - 1) / 2) as i64);
        assert_eq!(q.signed(p.div_ceil(2)), -(((p - 1) / 2) as i64));
        // Arithmetic shift floors towards −∞.
        assert_eq!(q.rescale(neg(-5), 1), neg(-3));
        assert_eq!(q.rescale(5, 1), 2);
        assert_eq!(q.relu_rescale(neg(-5), 1), 0);
        assert_eq!(q.relu_rescale(7, 1), 3);
        assert_eq!(
            q.max_rescale(&[neg(-9), neg(-3), neg(-4), neg(-7)], 1),
            neg(-2)
        );
        assert_eq!(q.argmax2(neg(-1), 0), 1);
        assert_eq!(q.argmax2(3, 3), 0);
        assert_eq!(q.square(neg(-3)), 9);
        // Input encoding: round half away from zero, saturating.
        assert_eq!(q.encode(0.03125), 1); // 0.5 ulp → 1
        assert_eq!(q.encode(-0.03125), neg(-1));
        assert_eq!(q.encode(1e9), (1 << 15) - 1);
        assert_eq!(q.encode(-1e9), neg(-(1 << 15)));
        assert_eq!(q.encode(f32::NAN), 0);
        assert!((q.decode(q.encode(-1.25), 4) + 1.25).abs() < 1e-12);
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn nonlinear_steps_follow_their_definitions(
            v in 0u64..Q32_P, w in 0u64..Q32_P, s in 0u32..20, q24 in any::<bool>()
        ) {
            let q = if q24 { Quant::q24() } else { Quant::q32() };
            let (v, w) = (v % q.p, w % q.p);
            let p = i128::from(q.p);
            let signed = |x: u64| {
                let x = i128::from(x);
                if x <= (p - 1) / 2 { x } else { x - p }
            };
            let floor_div = |x: i128| x.div_euclid(1 << s);
            prop_assert_eq!(i128::from(q.rescale(v, s)), floor_div(signed(v)).rem_euclid(p));
            prop_assert_eq!(
                i128::from(q.relu_rescale(v, s)),
                floor_div(signed(v).max(0)).rem_euclid(p)
            );
            prop_assert_eq!(
                i128::from(q.max_rescale(&[v, w], s)),
                floor_div(signed(v).max(signed(w))).rem_euclid(p)
            );
            prop_assert_eq!(q.argmax2(v, w), u64::from(signed(w) > signed(v)));
            prop_assert_eq!(i128::from(q.square(v)), (i128::from(v) * i128::from(v)) % p);
            prop_assert_eq!(i128::from(q.reduce_signed(q.signed(v))), i128::from(v));
        }

        #[test]
        fn encoding_rounds_and_saturates(x in -5000.0f32..5000.0) {
            for q in [Quant::q32(), Quant::q24()] {
                let bits = q.int_bits + q.frac_bits;
                let lim = f64::from(1u32 << (bits - 1));
                let exact = f64::from(x) * f64::from(1u32 << q.frac_bits);
                let want = exact.round().clamp(-lim, lim - 1.0);
                prop_assert_eq!(q.signed(q.encode(x)) as f64, want);
                if exact.abs() < lim - 1.0 {
                    prop_assert!((q.decode(q.encode(x), q.frac_bits) - f64::from(x)).abs()
                        <= 0.5 / f64::from(1u32 << q.frac_bits));
                }
            }
        }
    }
}
