//! What both drivers share: the unet message kinds (0x05xx), the request messages, their
//! bounds, the step → block-name mapping, and the per-step helpers both parties compute
//! identically (the steps themselves are [`super::party::Driver::step`]).

use bunet_crypto::channel::Channel;
use bunet_crypto::nonlinear::{Block, Call, Nonlinear};
use bunet_crypto::triples::SquarePairs;
use bunet_crypto::wire::{Decode, Encode, Reader, WireError};
use zeroize::Zeroizing;

use super::avgpool::RotationLayout;
use super::error::SecureError;
use crate::arch::{Architecture, ConvKind, Dims, Pooling};
use crate::quant::{Op, QuantPlan};
use crate::tensor::Tensor;

/// Message kinds of the secure UNet (0x05xx).
pub mod kind {
    /// Client → server: the next request (an inference of announced extents, or the end of the
    /// session).
    pub const REQUEST: u16 = 0x0501;
    /// Server → client: the request is accepted, or refused with a reason.
    pub const REQUEST_REPLY: u16 = 0x0502;
}

/// Largest extent of any axis of a request.
pub const MAX_EXTENT: usize = 1 << 12;
/// Largest number of voxels of a request (`d · h · w`).
pub const MAX_VOXELS: usize = 1 << 24;
/// Largest refusal reason.
const MAX_REASON_LEN: usize = 512;

/// A request from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// One inference on an input of extents `[d, h, w]` (public shape metadata).
    Infer([usize; 3]),
    /// The end of the session.
    Close,
}

impl Encode for Request {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Close => out.push(0),
            Request::Infer(dims) => {
                out.push(1);
                for d in dims {
                    out.extend_from_slice(&(*d as u64).to_le_bytes());
                }
            }
        }
    }
}

impl Decode for Request {
    type Context = ();

    fn decode(r: &mut Reader<'_>, _: &()) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(Request::Close),
            1 => {
                let mut dims = [0usize; 3];
                for d in &mut dims {
                    let v = r.u64()?;
                    if v == 0 || v > MAX_EXTENT as u64 {
                        return Err(WireError::OutOfRange {
                            what: "request extent",
                            found: v,
                            bound: MAX_EXTENT as u64 + 1,
                        });
                    }
                    *d = v as usize;
                }
                let voxels = dims.iter().product::<usize>();
                if voxels > MAX_VOXELS {
                    return Err(WireError::TooLong {
                        what: "request voxels",
                        found: voxels as u64,
                        max: MAX_VOXELS as u64,
                    });
                }
                Ok(Request::Infer(dims))
            }
            tag => Err(WireError::OutOfRange {
                what: "request tag",
                found: tag.into(),
                bound: 2,
            }),
        }
    }
}

/// Largest encoded request.
pub(crate) const MAX_REQUEST_LEN: usize = 1 + 3 * 8;
/// Largest encoded reply.
pub(crate) const MAX_REPLY_LEN: usize = 1 + 8 + MAX_REASON_LEN;

/// The server's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestReply {
    Accept,
    Refuse(String),
}

impl Encode for RequestReply {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            RequestReply::Accept => out.push(0),
            RequestReply::Refuse(reason) => {
                out.push(1);
                let mut end = reason.len().min(MAX_REASON_LEN);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&(end as u64).to_le_bytes());
                out.extend_from_slice(&reason.as_bytes()[..end]);
            }
        }
    }
}

impl Decode for RequestReply {
    type Context = ();

    fn decode(r: &mut Reader<'_>, _: &()) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(RequestReply::Accept),
            1 => {
                let len = r.len_at_most("refusal reason", MAX_REASON_LEN)?;
                let bytes = r.take(len)?;
                String::from_utf8(bytes.to_vec())
                    .map(RequestReply::Refuse)
                    .map_err(|_| WireError::Invalid("refusal reason"))
            }
            tag => Err(WireError::OutOfRange {
                what: "request reply tag",
                found: tag.into(),
                bound: 2,
            }),
        }
    }
}

/// Checks that the extents fit the architecture and the bounds.
pub(crate) fn check_dims(arch: &Architecture, dims: [usize; 3]) -> Result<(), SecureError> {
    if dims.iter().any(|&d| d == 0 || d > MAX_EXTENT) || dims.iter().product::<usize>() > MAX_VOXELS
    {
        return Err(SecureError::Protocol(format!(
            "input extents {dims:?} exceed the bounds ({MAX_EXTENT} per axis, {MAX_VOXELS} voxels)"
        )));
    }
    arch.check_input(arch.in_channels, dims)?;
    Ok(())
}

/// The building block a plan step is: the name its cost is reported under by both drivers
/// ([`super::BlockReport::block`]) and counted under by the harness's operation counts, which
/// the Fig. 2 breakdown joins on. A conv is `homconv`, `upsample` (transposed) or `head`
/// (pointwise).
pub fn block_name(arch: &Architecture, op: &Op) -> &'static str {
    match op {
        Op::Conv { conv } => match arch.convs()[*conv].kind {
            ConvKind::Same => "homconv",
            ConvKind::Transposed => "upsample",
            ConvKind::Pointwise => "head",
        },
        Op::Rescale { .. } => "rescale",
        Op::ReluRescale { .. } => "relu",
        Op::Square => "square",
        Op::SumPool => "avgpool",
        Op::MaxPoolRescale { .. } => "maxpool",
        Op::Concat => "concat",
        Op::Argmax2 => "argmax",
    }
}

/// Per request: the input extents of every step's first input.
pub(crate) fn step_dims(plan: &QuantPlan, dims: [usize; 3]) -> Vec<[usize; 3]> {
    plan.steps()
        .iter()
        .map(|s| plan.tensor_dims(s.inputs[0], dims))
        .collect()
}

/// The report block of the request's precomputed garbled-circuit work (offline, both parties).
pub(crate) const GARBLE_BLOCK: &str = "garble";

/// The report block of the encrypted-weights linear backend's set-up (offline, both parties:
/// every layer's weight ciphertexts, once per session and extents).
pub const WEIGHTS_BLOCK: &str = "weights";

/// The nonlinear calls of a request for `dims`, in the order the drivers make them (what both
/// parties pass to [`Nonlinear::precompute`]): one per rescale / ReLU / argmax step, one per
/// max-pool step in 2D and two in 3D (see [`maxpool`]).
pub(crate) fn nonlinear_calls(plan: &QuantPlan, dims: [usize; 3]) -> Vec<Call> {
    let deep = plan.arch().dims == Dims::Three;
    let mut calls = Vec::new();
    for s in plan.steps() {
        let channels = plan.tensors()[s.inputs[0].0].channels;
        let [d, h, w] = plan.tensor_dims(s.inputs[0], dims);
        let elements = channels * d * h * w;
        let call = |block, instances, shift| Call {
            block,
            instances,
            shift,
        };
        match s.op {
            Op::Rescale { shift } => calls.push(call(Block::Rescale, elements, shift)),
            Op::ReluRescale { shift } => calls.push(call(Block::Relu, elements, shift)),
            Op::MaxPoolRescale { shift } => {
                // As `windows`: outputs of extents (d / sd, h / 2, w / 2) per channel.
                let sd = if deep { 2 } else { 1 };
                let outputs = channels * (d / sd) * (h / 2) * (w / 2);
                if deep {
                    calls.push(call(Block::MaxPool, 2 * outputs, 0));
                }
                calls.push(call(Block::MaxPool, outputs, shift));
            }
            Op::Argmax2 => calls.push(call(Block::Argmax, d * h * w, 0)),
            Op::Conv { .. } | Op::Square | Op::SumPool | Op::Concat => {}
        }
    }
    calls
}

/// Square pairs a request needs: the elements of every square step.
pub(crate) fn square_count(plan: &QuantPlan, dims: [usize; 3]) -> usize {
    plan.steps()
        .iter()
        .filter(|s| s.op == Op::Square)
        .map(|s| {
            let t = plan.tensors()[s.output.0];
            t.channels * plan.tensor_dims(s.output, dims).iter().product::<usize>()
        })
        .sum()
}

/// The rotation layout of every pool step (by step index) under the rotation variant.
pub(crate) fn rotation_layouts(
    plan: &QuantPlan,
    dims: [usize; 3],
    slots: usize,
) -> Result<Vec<Option<RotationLayout>>, SecureError> {
    let deep = plan.arch().dims == Dims::Three;
    plan.steps()
        .iter()
        .map(|s| {
            if s.op == Op::SumPool && plan.arch().pooling == Pooling::AvgByRotation {
                let t = plan.tensors()[s.inputs[0].0];
                RotationLayout::new(t.channels, plan.tensor_dims(s.inputs[0], dims), deep, slots)
                    .map(Some)
            } else {
                Ok(None)
            }
        })
        .collect()
}

/// Rotation steps a set of layouts needs, sorted and without duplicates.
pub(crate) fn rotation_steps(layouts: &[Option<RotationLayout>]) -> Vec<i64> {
    let mut steps: Vec<i64> = layouts.iter().flatten().flat_map(|l| l.steps()).collect();
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// Largest number of rotation steps whose Galois keys one session may hold (each key is about
/// a megabyte at the presets; distinct extents need distinct row strides).
pub const MAX_SESSION_ROTATIONS: usize = 32;

/// Rotation steps a request for `dims` needs beyond `have` (rotation pooling only).
///
/// # Errors
/// [`SecureError::Protocol`] if the session would then hold more than
/// [`MAX_SESSION_ROTATIONS`]; as [`rotation_layouts`].
pub(crate) fn new_rotations(
    plan: &QuantPlan,
    dims: [usize; 3],
    slots: usize,
    have: &std::collections::BTreeSet<i64>,
) -> Result<Vec<i64>, SecureError> {
    let new: Vec<i64> = rotation_steps(&rotation_layouts(plan, dims, slots)?)
        .into_iter()
        .filter(|k| !have.contains(k))
        .collect();
    if have.len() + new.len() > MAX_SESSION_ROTATIONS {
        return Err(SecureError::Protocol(format!(
            "extents {dims:?} need {} more Galois keys; a session holds at most {MAX_SESSION_ROTATIONS}",
            new.len()
        )));
    }
    Ok(new)
}

/// The elements of every max-pool window, window-major (the order of [`crate::fixed`]'s pool:
/// slice, row, column within the window); `2×2` windows, `2×2×2` if `deep`.
pub(crate) fn windows(x: &Tensor<u64>, deep: bool) -> (Vec<u64>, [usize; 3]) {
    let [d, h, w] = x.dims();
    let sd = if deep { 2 } else { 1 };
    let od = [d / sd, h / 2, w / 2];
    let mut out = Vec::with_capacity(x.data().len());
    for c in 0..x.channels() {
        let plane = x.channel(c);
        for z in 0..od[0] {
            for y in 0..od[1] {
                for xx in 0..od[2] {
                    for a in 0..sd {
                        for b in 0..2 {
                            let base = ((z * sd + a) * h + 2 * y + b) * w + 2 * xx;
                            out.push(plane[base]);
                            out.push(plane[base + 1]);
                        }
                    }
                }
            }
        }
    }
    (out, od)
}

/// `data` in `x`'s shape.
pub(crate) fn same_shape(x: &Tensor<u64>, data: Vec<u64>) -> Result<Tensor<u64>, SecureError> {
    Ok(Tensor::from_vec(x.channels(), x.dims(), data)?)
}

/// SecPool max pool with rescaling: one `max4_rescale` call in 2D; in 3D one over the two
/// `2×2` halves of every `2×2×2` window (shift 0), then one over `(m₀, m₁, m₀, m₁)` with the
/// shift (max commutes with the floor shift, which is monotone).
pub(crate) fn maxpool(
    nl: &mut dyn Nonlinear,
    ch: &mut Channel,
    x: &Tensor<u64>,
    deep: bool,
    shift: u32,
) -> Result<Tensor<u64>, SecureError> {
    // The flattened windows and the 3D pool's intermediate maxima are shares too: erased
    // when dropped.
    let (w, od) = windows(x, deep);
    let w = Zeroizing::new(w);
    let out = if deep {
        let halves = Zeroizing::new(nl.max4_rescale(ch, &w, 0)?);
        let second: Zeroizing<Vec<u64>> = Zeroizing::new(
            halves
                .chunks_exact(2)
                .flat_map(|m| [m[0], m[1], m[0], m[1]])
                .collect(),
        );
        nl.max4_rescale(ch, &second, shift)?
    } else {
        nl.max4_rescale(ch, &w, shift)?
    };
    Ok(Tensor::from_vec(x.channels(), od, out)?)
}

/// The class-score pairs `(y0, y1)` per pixel of a two-channel share, interleaved (a share
/// too: erased when dropped).
pub(crate) fn score_pairs(x: &Tensor<u64>) -> Result<Zeroizing<Vec<u64>>, SecureError> {
    if x.channels() != 2 {
        return Err(SecureError::Protocol(format!(
            "argmax of {} channels, expected 2",
            x.channels()
        )));
    }
    Ok(Zeroizing::new(
        x.channel(0)
            .iter()
            .zip(x.channel(1))
            .flat_map(|(&a, &b)| [a, b])
            .collect(),
    ))
}

/// The channels of share `a`, then those of `b` (a skip connection), built at its final length
/// so that no partial copy is left behind in freed memory.
pub(crate) fn concat(a: &Tensor<u64>, b: &Tensor<u64>) -> Result<Tensor<u64>, SecureError> {
    if a.dims() != b.dims() {
        return Err(SecureError::Protocol(format!(
            "concat of extents {:?} and {:?}",
            a.dims(),
            b.dims()
        )));
    }
    let mut data = Vec::with_capacity(a.data().len() + b.data().len());
    data.extend_from_slice(a.data());
    data.extend_from_slice(b.data());
    Ok(Tensor::from_vec(
        a.channels() + b.channels(),
        a.dims(),
        data,
    )?)
}

/// Splits the first `n` pairs off `pairs` (made offline for the whole request).
pub(crate) fn take_pairs(
    pairs: &mut Option<SquarePairs>,
    n: usize,
) -> Result<SquarePairs, SecureError> {
    match pairs {
        Some(pairs) if pairs.a.len() >= n => Ok(SquarePairs {
            a: pairs.a.drain(..n).collect(),
            c: pairs.c.drain(..n).collect(),
        }),
        _ => Err(SecureError::Protocol(format!(
            "{n} square pairs needed, fewer were made offline"
        ))),
    }
}

/// Sends one message and flushes.
pub(crate) fn send_now<T: Encode>(
    ch: &mut Channel,
    kind: u16,
    message: &T,
) -> Result<(), SecureError> {
    ch.send_message(kind, message)?;
    ch.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Quant;
    use crate::synthetic::SplitMix64;
    use bunet_crypto::channel::ChannelConfig;
    use bunet_crypto::nonlinear::{Backend, Config, setup};
    use bunet_crypto::prg::Prg;
    use bunet_crypto::triples::Role;
    use bunet_crypto::wire::decode_exact;

    /// The two-stage 3D max pool (and the 2D one) on random shares reconstructs the reference
    /// `max_rescale` over every window.
    #[test]
    fn secure_max_pool_equals_reference_in_2d_and_3d() {
        let q = Quant::q24();
        let mut rng = SplitMix64::from_seed_for_tests(11);
        for (deep, dims, shift) in [
            (true, [4, 4, 6], 0),
            (true, [2, 2, 2], 3),
            (false, [1, 6, 4], 2),
        ] {
            let n = 3 * dims.iter().product::<usize>();
            let x: Vec<u64> = (0..n).map(|_| rng.next_u64() % q.p).collect();
            let a: Vec<u64> = (0..n).map(|_| rng.next_u64() % q.p).collect();
            let b: Vec<u64> = x
                .iter()
                .zip(&a)
                .map(|(&x, &a)| (x + q.p - a) % q.p)
                .collect();
            let (xa, xb) = (
                Tensor::from_vec(3, dims, a).unwrap(),
                Tensor::from_vec(3, dims, b).unwrap(),
            );
            let config = Config::new(Backend::Gc, 24, q.p).unwrap();
            let (mut ca, mut cb) = Channel::in_memory_pair(ChannelConfig::default());
            let (ya, yb) = std::thread::scope(|s| {
                let bob = s.spawn(|| {
                    let mut nl = setup(&mut cb, Role::Bob, config, Prg::from_os_entropy()).unwrap();
                    maxpool(nl.as_mut(), &mut cb, &xb, deep, shift).unwrap()
                });
                let mut nl = setup(&mut ca, Role::Alice, config, Prg::from_os_entropy()).unwrap();
                let ya = maxpool(nl.as_mut(), &mut ca, &xa, deep, shift).unwrap();
                (ya, bob.join().unwrap())
            });
            let x = Tensor::from_vec(3, dims, x).unwrap();
            let (want, od) = crate::conv::pool(x.data(), 3, dims, deep, &|w: &[u64]| {
                q.max_rescale(w, shift)
            });
            assert_eq!(ya.dims(), od);
            let got: Vec<u64> = ya
                .data()
                .iter()
                .zip(yb.data())
                .map(|(&a, &b)| (a + b) % q.p)
                .collect();
            assert_eq!(got, want, "{dims:?} deep={deep} shift={shift}");
        }
    }

    #[test]
    fn a_session_holds_a_bounded_number_of_rotation_keys() {
        use crate::arch::{Activation, Architecture};
        let arch = Architecture {
            in_channels: 1,
            base_features: 2,
            depth: 2,
            activation: Activation::Relu,
            pooling: Pooling::AvgByRotation,
            dims: Dims::Two,
            classes: 2,
        };
        let plan = QuantPlan::new(&arch, Quant::q24()).unwrap();
        let mut have = std::collections::BTreeSet::new();
        let new = new_rotations(&plan, [1, 8, 32], 8192, &have).unwrap();
        assert_eq!(new, vec![1, 16, 32]);
        have.extend(new);
        assert!(
            new_rotations(&plan, [1, 16, 32], 8192, &have)
                .unwrap()
                .is_empty()
        );
        have.extend((100..100 + MAX_SESSION_ROTATIONS as i64 - 4).collect::<Vec<_>>());
        assert_eq!(
            new_rotations(&plan, [1, 8, 64], 8192, &have).unwrap(),
            vec![64]
        );
        have.insert(64);
        assert!(new_rotations(&plan, [1, 8, 128], 8192, &have).is_err());
        let max = Architecture {
            pooling: Pooling::Max,
            ..arch
        };
        let plan = QuantPlan::new(&max, Quant::q24()).unwrap();
        assert!(
            new_rotations(&plan, [1, 8, 128], 8192, &have)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn requests_round_trip_and_bounds_are_enforced() {
        for r in [Request::Close, Request::Infer([1, 32, 64])] {
            assert_eq!(decode_exact::<Request>(&r.to_bytes(), &()).unwrap(), r);
        }
        let too_big = Request::Infer([1, MAX_EXTENT + 1, 2]).to_bytes();
        assert!(decode_exact::<Request>(&too_big, &()).is_err());
        let too_many = Request::Infer([MAX_EXTENT, MAX_EXTENT, 2]).to_bytes();
        assert!(decode_exact::<Request>(&too_many, &()).is_err());
        let zero = Request::Infer([0, 2, 2]).to_bytes();
        assert!(decode_exact::<Request>(&zero, &()).is_err());
        let bytes = Request::Infer([1, 8, 8]).to_bytes();
        for cut in 0..bytes.len() {
            assert!(decode_exact::<Request>(&bytes[..cut], &()).is_err());
        }
        let refuse = RequestReply::Refuse("é".repeat(400));
        match decode_exact::<RequestReply>(&refuse.to_bytes(), &()).unwrap() {
            RequestReply::Refuse(s) => assert_eq!(s.len(), 512),
            RequestReply::Accept => panic!("decoded a refusal as acceptance"),
        }
        assert!(decode_exact::<RequestReply>(&[1, 255, 255, 255, 255, 0, 0, 0, 0], &()).is_err());
    }
}
