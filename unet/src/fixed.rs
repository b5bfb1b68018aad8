//! The fixed-point reference: a [`QuantPlan`](crate::QuantPlan) evaluated exactly mod p, step by step, with the
//! semantics of [`crate::quant`] — what the secure protocol must reproduce bit for bit.
//!
//! [`apply`] runs one step, so the secure driver can replace each step by its protocol and
//! compare the reconstructed shares with the reference after every step; [`run`] walks the whole
//! plan and reports every step's output.

use rayon::prelude::*;

use crate::arch::Dims;
use crate::conv;
use crate::error::{Error, QuantError};
use crate::exec::execute;
use crate::quant::{Op, Quant, QuantModel, Step};
use crate::tensor::{Tensor, stack_slices};

/// `Σ W·X + B mod p` for conv `conv` of `model` (any kind) on `x`, whose elements are in `[0, p)`.
///
/// The arithmetic is exact ([`bunet_kernels::conv::ExactPlan`]): inputs are centred
/// (`|signed(x)| < 2^31`); sums run in f64 fused multiply-adds while they provably stay below
/// 2^53, reduced mod p every `⌊(2^53 − 2p) / (max|W| · taps · (p − 1)/2)⌋` input channels;
/// weights too large for that are split as `hi · 2^16 + lo` and run in two passes.
///
/// # Panics
/// If `x` does not have the conv's input channels.
pub fn conv(model: &QuantModel, conv_index: usize, x: &Tensor<u64>) -> Tensor<u64> {
    let q = *model.quant();
    let c = &model.convs()[conv_index];
    assert_eq!(x.channels(), c.spec.c_in, "conv {}", c.spec.name);
    let data = conv::run_exact(&c.spec, &c.weight, &c.bias, q.p, x.data(), x.dims());
    let dims = conv::out_dims(c.spec.kind, c.spec.kernel, x.dims());
    Tensor::from_vec(c.spec.c_out, dims, data).expect("conv output has c_out planes")
}

fn map_par(x: &Tensor<u64>, f: impl Fn(u64) -> u64 + Sync) -> Tensor<u64> {
    let data = x.data().par_iter().map(|&v| f(v)).collect();
    Tensor::from_vec(x.channels(), x.dims(), data).expect("same shape")
}

/// Applies one step of `model`'s plan to its inputs (elements in `[0, p)`).
///
/// # Panics
/// On inputs of the wrong count or shape.
pub fn apply(model: &QuantModel, step: &Step, args: &[&Tensor<u64>]) -> Tensor<u64> {
    let q: Quant = *model.quant();
    let x = args[0];
    let deep = model.plan().arch().dims == Dims::Three;
    match step.op {
        Op::Conv { conv: c } => conv(model, c, x),
        Op::Rescale { shift } => map_par(x, |v| q.rescale(v, shift)),
        Op::ReluRescale { shift } => map_par(x, |v| q.relu_rescale(v, shift)),
        Op::Square => map_par(x, |v| q.square(v)),
        Op::SumPool => {
            let (data, dims) =
                conv::pool(x.data(), x.channels(), x.dims(), deep, &|w: &[u64]| {
                    w.iter().sum::<u64>() % q.p
                });
            Tensor::from_vec(x.channels(), dims, data).expect("pool keeps channels")
        }
        Op::MaxPoolRescale { shift } => {
            let (data, dims) =
                conv::pool(x.data(), x.channels(), x.dims(), deep, &|w: &[u64]| {
                    q.max_rescale(w, shift)
                });
            Tensor::from_vec(x.channels(), dims, data).expect("pool keeps channels")
        }
        Op::Concat => crate::float::concat(args[0], args[1]),
        Op::Argmax2 => {
            let data = x
                .channel(0)
                .iter()
                .zip(x.channel(1))
                .map(|(&y0, &y1)| q.argmax2(y0, y1))
                .collect();
            Tensor::from_vec(1, x.dims(), data).expect("one plane")
        }
    }
}

/// Runs the whole plan on an encoded input (elements in `[0, p)`, `F = f`) and returns the mask
/// (one channel of 0 / 1); `observe` sees every step's output in order.
///
/// # Errors
/// [`Error::Shape`] if the input does not fit the architecture, [`QuantError::Unreduced`] if an
/// element is not below p.
pub fn run(
    model: &QuantModel,
    input: Tensor<u64>,
    observe: impl FnMut(&Step, &Tensor<u64>),
) -> Result<Tensor<u64>, Error> {
    let plan = model.plan();
    plan.arch().check_input(input.channels(), input.dims())?;
    let p = plan.quant().p;
    if let Some((index, &value)) = input.data().iter().enumerate().find(|(_, v)| **v >= p) {
        return Err(QuantError::Unreduced { value, index, p }.into());
    }
    execute(
        plan.steps(),
        plan.tensors().len(),
        input,
        plan.output(),
        |_, s, args| Ok(apply(model, s, args)),
        observe,
    )
}

/// Encodes a float input with [`Quant::encode`] and segments it: the mask, one byte per voxel.
///
/// # Errors
/// [`Error::Shape`] if `input` does not fit the architecture.
pub fn segment(model: &QuantModel, input: &Tensor<f32>) -> Result<Tensor<u8>, Error> {
    let encoded = model.quant().encode_tensor(input);
    Ok(run(model, encoded, |_, _| {})?.map(|&v| v as u8))
}

/// Encodes a float input, segments it as [`segment`] does and returns the mask with the class
/// scores that entered the final argmax, decoded to reals (`v / 2^F` of the centred residue,
/// divided by the activation scale of [`QuantModel::calibrated`]).
///
/// # Errors
/// [`Error::Shape`] if `input` does not fit the architecture.
pub fn segment_with_scores(
    model: &QuantModel,
    input: &Tensor<f32>,
) -> Result<(Tensor<u8>, Tensor<f64>), Error> {
    let plan = model.plan();
    let quant = *model.quant();
    let last = plan.steps().last().expect("every plan ends in the argmax");
    let head = last.inputs[0];
    // Scores are decoded in the model's units: the folded activation scale comes off.
    let frac = plan.tensors()[head.0].frac + model.activation_scale();
    let mut scores = None;
    let mask = run(model, quant.encode_tensor(input), |step, t| {
        if step.output == head {
            scores = Some(t.map(|&v| quant.decode(v, frac)));
        }
    })?;
    let scores = scores.expect("the argmax input is a step's output");
    Ok((mask.map(|&v| v as u8), scores))
}

/// Segments a one-channel CT volume as [`crate::float::segment_volume`] does, in fixed point.
///
/// # Errors
/// [`Error::Shape`] if the volume does not fit the architecture.
pub fn segment_volume(model: &QuantModel, volume: &Tensor<f32>) -> Result<Tensor<u8>, Error> {
    match model.plan().arch().dims {
        Dims::Three => segment(model, volume),
        Dims::Two => {
            let [d, h, w] = volume.dims();
            let mut mask = Vec::with_capacity(d * h * w);
            for z in 0..d {
                let m = segment(model, &stack_slices(volume, z)?)?;
                mask.extend_from_slice(m.data());
            }
            Ok(Tensor::from_vec(1, [d, h, w], mask)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Activation, Architecture, Pooling};
    use crate::synthetic::SplitMix64;
    use crate::weights::Weights;

    /// The conv by its definition (the kernels' oracle), in i128, mod p.
    fn naive(model: &QuantModel, ci: usize, x: &Tensor<u64>) -> Vec<u64> {
        let q = *model.quant();
        let c = &model.convs()[ci];
        let sums = bunet_kernels::conv::by_definition(
            &crate::conv::geometry(&c.spec),
            x.dims(),
            |co| i128::from(c.bias[co]),
            |acc, wi, xi| acc + i128::from(c.weight[wi]) * i128::from(q.signed(x.data()[xi])),
        );
        sums.iter()
            .map(|s| s.rem_euclid(i128::from(q.p)) as u64)
            .collect()
    }

    #[test]
    fn conv_is_exact_on_both_arithmetic_paths() {
        let arch = Architecture {
            in_channels: 5,
            base_features: 8,
            depth: 1,
            activation: Activation::Relu,
            pooling: Pooling::Max,
            dims: crate::arch::Dims::Two,
            classes: 2,
        };
        let model = Weights::random_trained_like(&arch, 1).unwrap().fold();
        let mut rng = SplitMix64::from_seed_for_tests(5);
        // Conv 1 has 8 input channels. Large weights force small f64 chunks (frequent
        // reductions) or, above 2^21 / 9, the i64 path; inputs span the whole of Z_p.
        for max_w in [1i64 << 8, 1 << 17, 1 << 20, 1 << 24] {
            let mut qm = QuantModel::new(&model, Quant::q32()).unwrap();
            for w in &mut qm.convs[1].weight {
                *w = ((rng.next_u64() % (2 * max_w as u64 + 1)) as i64 - max_w) as i32;
            }
            let p = qm.quant().p;
            let data = (0..8 * 6 * 8).map(|_| rng.next_u64() % p).collect();
            let x = Tensor::from_vec(8, [1, 6, 8], data).unwrap();
            assert_eq!(
                conv(&qm, 1, &x).data(),
                &naive(&qm, 1, &x)[..],
                "max|W| = {max_w}"
            );
        }
    }

    /// A 2D network on a batch of slices (stacked along depth) gives each slice the mask it
    /// gets alone, for every pooling and activation (the 2D ops keep depths apart).
    #[test]
    fn a_batch_of_slices_gives_each_slice_its_own_mask() {
        for (activation, pooling) in [
            (Activation::Relu, Pooling::Max),
            (Activation::Relu, Pooling::AvgLocal),
            (Activation::Square, Pooling::AvgByRotation),
        ] {
            let arch = Architecture::small(activation, pooling, crate::arch::Dims::Two, 4);
            let model = Weights::random_trained_like(&arch, 3).unwrap().fold();
            let qm = QuantModel::new(&model, Quant::q24()).unwrap();
            let p = qm.quant().p;
            let mut rng = SplitMix64::from_seed_for_tests(9);
            let slices: Vec<Tensor<u64>> = (0..3)
                .map(|_| {
                    let data = (0..5 * 8 * 12).map(|_| rng.next_u64() % p).collect();
                    Tensor::from_vec(5, [1, 8, 12], data).unwrap()
                })
                .collect();
            // Every step's output, not only the mask: a leak between depths anywhere shows.
            let steps = |x: Tensor<u64>| {
                let mut outs = Vec::new();
                run(&qm, x, |_, t| outs.push(t.clone())).unwrap();
                outs
            };
            let batched = steps(crate::tensor::batch(&slices).unwrap());
            assert_eq!(batched.last().unwrap().dims(), [3, 8, 12]);
            for (k, s) in slices.iter().enumerate() {
                let alone = steps(s.clone());
                assert_eq!(alone.len(), batched.len());
                for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
                    assert_eq!(
                        &b.depth_slice(k),
                        a,
                        "{activation:?} {pooling:?} slice {k} step {i}"
                    );
                }
            }
        }
    }
}
