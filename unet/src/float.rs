//! The float (f32) reference: the UNet as PyTorch evaluates it in eval mode, per slice (2D) or
//! per volume (3D), layer by layer, in parallel over output channels.

use crate::arch::{Activation, Architecture, Dims, Graph, Layer, LayerKind, TensorId};
use crate::conv;
use crate::error::Error;
use crate::exec::{Node, execute};
use crate::tensor::{Tensor, stack_slices};
use crate::weights::{Conv, Model, Weights};

impl Node for Layer {
    fn inputs(&self) -> &[TensorId] {
        &self.inputs
    }
    fn output(&self) -> TensorId {
        self.output
    }
}

/// Applies one conv (any [`crate::ConvKind`]) to `x`.
///
/// # Panics
/// If `x` does not have `conv.spec.c_in` channels.
pub fn conv(conv: &Conv, x: &Tensor<f32>) -> Tensor<f32> {
    assert_eq!(x.channels(), conv.spec.c_in, "conv {}", conv.spec.name);
    let data = conv::run_float(&conv.spec, &conv.weight, &conv.bias, x.data(), x.dims());
    let dims = conv::out_dims(conv.spec.kind, conv.spec.kernel, x.dims());
    Tensor::from_vec(conv.spec.c_out, dims, data).expect("conv output has c_out planes")
}

/// Concatenates `a` and `b` along channels (`a` first), as `torch.cat((a, b), dim=1)`.
///
/// # Panics
/// If their spatial extents differ.
pub fn concat<T: Clone>(a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    assert_eq!(a.dims(), b.dims(), "concat of different extents");
    let mut data = a.data().to_vec();
    data.extend_from_slice(b.data());
    Tensor::from_vec(a.channels() + b.channels(), a.dims(), data).expect("sum of two tensors")
}

/// Applies a layer that has no weights (activation, pool, concat, argmax) with `arch`'s choices.
///
/// # Panics
/// On a conv layer kind, or on inputs of the wrong count or shape.
pub fn apply_op(arch: &Architecture, kind: LayerKind, args: &[&Tensor<f32>]) -> Tensor<f32> {
    let x = args[0];
    match kind {
        LayerKind::Activation => match arch.activation {
            Activation::Relu => x.map(|v| v.max(0.0)),
            Activation::Square => x.map(|v| v * v),
        },
        LayerKind::Pool => {
            let deep = arch.dims == Dims::Three;
            let (data, dims) = if arch.pooling.is_average() {
                let n = arch.pool_window() as f32;
                conv::pool(x.data(), x.channels(), x.dims(), deep, &|w: &[f32]| {
                    w.iter().sum::<f32>() / n
                })
            } else {
                conv::pool(x.data(), x.channels(), x.dims(), deep, &|w: &[f32]| {
                    w.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                })
            };
            Tensor::from_vec(x.channels(), dims, data).expect("pool keeps channels")
        }
        LayerKind::Concat => concat(args[0], args[1]),
        LayerKind::Argmax => {
            let data = x
                .channel(1)
                .iter()
                .zip(x.channel(0))
                .map(|(&y1, &y0)| if y1 > y0 { 1.0 } else { 0.0 })
                .collect();
            Tensor::from_vec(1, x.dims(), data).expect("one plane")
        }
        LayerKind::Conv { .. } | LayerKind::UpConv { .. } | LayerKind::Head { .. } => {
            panic!("apply_op takes no conv layer")
        }
    }
}

/// Applies `layer` of `model`'s graph to its inputs.
///
/// # Panics
/// On inputs of the wrong count or shape.
pub fn apply(model: &Model, layer: &Layer, args: &[&Tensor<f32>]) -> Tensor<f32> {
    match layer.kind {
        LayerKind::Conv { conv: c }
        | LayerKind::UpConv { conv: c }
        | LayerKind::Head { conv: c } => conv(&model.convs()[c], args[0]),
        kind => apply_op(model.arch(), kind, args),
    }
}

/// Runs the whole graph on `input` and returns the mask (one channel, 0.0 or 1.0); `observe` sees
/// every layer's output in order (conv outputs include the folded BatchNorm).
///
/// # Errors
/// [`Error::Shape`] if `input` does not fit the architecture.
pub fn run(
    model: &Model,
    input: Tensor<f32>,
    observe: impl FnMut(&Layer, &Tensor<f32>),
) -> Result<Tensor<f32>, Error> {
    model.arch().check_input(input.channels(), input.dims())?;
    let g: &Graph = model.graph();
    execute(
        &g.layers,
        g.tensors.len(),
        input,
        g.output,
        |_, l, args| Ok(apply(model, l, args)),
        observe,
    )
}

/// Runs the graph with every BatchNorm applied separately after its (bias-free) conv, as PyTorch
/// does in eval mode — the check that folding changes nothing. Returns the class scores.
///
/// # Errors
/// [`Error::Shape`] if `input` does not fit the architecture.
pub fn run_unfolded_scores(weights: &Weights, input: Tensor<f32>) -> Result<Tensor<f32>, Error> {
    let arch = &weights.arch;
    arch.check_input(input.channels(), input.dims())?;
    let g = arch.graph();
    let head = g.layers[g.layers.len() - 1].inputs[0];
    let convs: Vec<Conv> = weights.convs.iter().map(|c| c.unfolded()).collect();
    execute(
        &g.layers[..g.layers.len() - 1],
        g.tensors.len(),
        input,
        head,
        |_, l, args| {
            Ok(match l.kind {
                LayerKind::Conv { conv: c }
                | LayerKind::UpConv { conv: c }
                | LayerKind::Head { conv: c } => {
                    let mut y = conv(&convs[c], args[0]);
                    if let Some(norm) = &weights.convs[c].norm {
                        let plane = y.plane_len();
                        let affine = norm.affine();
                        for (ch, (scale, shift)) in y.data_mut().chunks_mut(plane).zip(affine) {
                            for v in ch {
                                *v = (f64::from(*v) * scale + shift) as f32;
                            }
                        }
                    }
                    y
                }
                kind => apply_op(arch, kind, args),
            })
        },
        |_, _| {},
    )
}

/// Runs the whole graph on `input` and returns the mask (as [`segment`]) and the class scores
/// of the head (`classes` channels, before the argmax): what `bunet infer` writes.
///
/// # Errors
/// [`Error::Shape`] if `input` does not fit the architecture.
pub fn segment_with_scores(
    model: &Model,
    input: Tensor<f32>,
) -> Result<(Tensor<u8>, Tensor<f32>), Error> {
    let mut scores = None;
    let mask = run(model, input, |l, t| {
        if matches!(l.kind, LayerKind::Head { .. }) {
            scores = Some(t.clone());
        }
    })?;
    let scores = scores.expect("every graph ends in a head and an argmax");
    Ok((to_mask(&mask), scores))
}

/// Converts a 0.0/1.0 mask to bytes.
fn to_mask(t: &Tensor<f32>) -> Tensor<u8> {
    t.map(|&v| u8::from(v > 0.5))
}

/// Segments one input (a 2.5D slice stack for 2D models, a volume for 3D models): the mask, one
/// byte per voxel (1 = class 1).
///
/// # Errors
/// [`Error::Shape`] if `input` does not fit the architecture.
pub fn segment(model: &Model, input: Tensor<f32>) -> Result<Tensor<u8>, Error> {
    Ok(to_mask(&run(model, input, |_, _| {})?))
}

/// Segments a one-channel CT volume (`[depth, height, width]`): a 2D model runs slice by slice on
/// the 2.5D stacks of [`stack_slices`]; a 3D model (one input channel) runs on the whole volume.
///
/// # Errors
/// [`Error::Shape`] if the volume does not fit the architecture.
pub fn segment_volume(model: &Model, volume: &Tensor<f32>) -> Result<Tensor<u8>, Error> {
    match model.arch().dims {
        Dims::Three => segment(model, volume.clone()),
        Dims::Two => {
            let [d, h, w] = volume.dims();
            let mut mask = Vec::with_capacity(d * h * w);
            for z in 0..d {
                let m = segment(model, stack_slices(volume, z)?)?;
                mask.extend_from_slice(m.data());
            }
            Ok(Tensor::from_vec(1, [d, h, w], mask)?)
        }
    }
}
