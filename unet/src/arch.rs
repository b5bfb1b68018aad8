//! The UNet architecture: its parameters, its convolutions (with their PyTorch tensor names), the
//! layer graph that every interpreter walks, and a stable fingerprint for the handshake.
//!
//! The network is the classic brain-segmentation UNet (Buda et al., 2019,
//! `mateuszbuda/brain-segmentation-pytorch`, `unet.py`), which the seed's code uses: `depth`
//! encoder levels of `(3×3 conv without bias → BatchNorm → activation) × 2` with `base · 2^i`
//! features, each followed by a 2×2 pool; a bottleneck block of `base · 2^depth` features; per
//! decoder level a 2×2 stride-2 transposed conv (with bias), the concatenation `[upsampled, skip]`
//! along channels (the order of `torch.cat((dec, enc), dim=1)`), and a block; a 1×1 head with bias
//! to the class scores, and an argmax to the mask. In 3D every kernel gains a depth axis (3×3×3
//! convs, 2×2×2 pools and transposed convs).

use std::fmt;
use std::str::FromStr;

use crate::error::{ArchError, ShapeError};

/// Spatial rank of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dims {
    /// 2D convolutions over slices (the seed's 2.5D set-up).
    Two,
    /// 3D convolutions over the whole volume.
    Three,
}

/// Activation after every conv block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `max(0, x)`: a garbled circuit / OT comparison in the secure protocol.
    Relu,
    /// `x²`: a Beaver multiplication in the secure protocol.
    Square,
}

/// Down-sampling after every encoder level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// Average pool computed by the seed's PAHE rotation sum.
    AvgByRotation,
    /// Average pool computed locally on shares (the same function as
    /// [`Pooling::AvgByRotation`]; only the secure protocol differs).
    AvgLocal,
    /// Max pool (a comparison circuit in the secure protocol).
    Max,
}

impl Pooling {
    /// Whether this is one of the two average pools.
    pub fn is_average(self) -> bool {
        matches!(self, Pooling::AvgByRotation | Pooling::AvgLocal)
    }
}

/// Kind of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvKind {
    /// 3×3 (3×3×3) convolution, stride 1, zero padding 1, followed by BatchNorm (folded).
    Same,
    /// 2×2 (2×2×2) transposed convolution, stride 2, with bias:
    /// `out[co][2y+a][2x+b] = bias[co] + Σ_ci W[co][ci][a][b] · x[ci][y][x]` (and a depth
    /// index likewise in 3D). Equivalently, with `u` the zero-inserted input (`u[2y][2x] =
    /// x[y][x]`, zero elsewhere, 2H × 2W), `out[i][j] = bias + Σ_{a,b ∈ {0,1}} W[a][b] ·
    /// u[i − a][j − b]` (`u` = 0 outside): the form the secure HomConv evaluates.
    Transposed,
    /// 1×1 (1×1×1) convolution with bias (the head).
    Pointwise,
}

/// One convolution of the network, with its PyTorch names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// PyTorch module path of the conv, e.g. `encoder1.enc1conv1`; tensors are `<name>.weight`
    /// and, where there is a bias, `<name>.bias`.
    pub name: String,
    /// PyTorch module path of the BatchNorm that follows, e.g. `encoder1.enc1norm1`.
    pub norm: Option<String>,
    /// What kind of convolution this is.
    pub kind: ConvKind,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel extent (depth, height, width); depth is 1 in 2D.
    pub kernel: [usize; 3],
}

impl ConvSpec {
    /// A conv named `test` with no BatchNorm: the layer the unit tests build by hand.
    #[cfg(test)]
    pub(crate) fn for_test(kind: ConvKind, c_in: usize, c_out: usize, kernel: [usize; 3]) -> Self {
        Self {
            name: "test".into(),
            norm: None,
            kind,
            c_in,
            c_out,
            kernel,
        }
    }

    /// Whether the conv itself has a bias tensor (transposed convs and the head).
    pub fn has_bias(&self) -> bool {
        self.kind != ConvKind::Same
    }

    /// Number of kernel taps (`kd · kh · kw`).
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// The PyTorch shape of `<name>.weight`: `[c_out, c_in, k..]` for convolutions and
    /// `[c_in, c_out, k..]` for transposed convolutions; the depth axis is omitted in 2D.
    pub fn weight_shape(&self, dims: Dims) -> Vec<usize> {
        let (a, b) = match self.kind {
            ConvKind::Transposed => (self.c_in, self.c_out),
            _ => (self.c_out, self.c_in),
        };
        let mut shape = vec![a, b];
        if dims == Dims::Three {
            shape.push(self.kernel[0]);
        }
        shape.extend_from_slice(&self.kernel[1..]);
        shape
    }
}

/// Index of a tensor in a [`Graph`] (or in a lowered plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// Shape of a graph tensor relative to the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorInfo {
    /// Channels.
    pub channels: usize,
    /// Down-sampling level: the spatial extents are the input's divided by `2^level` (the depth
    /// axis only in 3D).
    pub level: u32,
}

/// What a layer computes (float semantics; the fixed-point plan lowers each one further).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A [`ConvKind::Same`] conv with its BatchNorm (folded into weight and bias).
    Conv {
        /// Index into [`Architecture::convs`].
        conv: usize,
    },
    /// The architecture's activation.
    Activation,
    /// The architecture's pooling.
    Pool,
    /// A [`ConvKind::Transposed`] conv.
    UpConv {
        /// Index into [`Architecture::convs`].
        conv: usize,
    },
    /// Channel concatenation `[inputs[0], inputs[1]]`.
    Concat,
    /// The [`ConvKind::Pointwise`] head to the class scores.
    Head {
        /// Index into [`Architecture::convs`].
        conv: usize,
    },
    /// Argmax over the class scores: the mask (1 where class 1 wins strictly).
    Argmax,
}

/// One layer of the graph: single assignment, every tensor is written once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// What the layer computes.
    pub kind: LayerKind,
    /// Its inputs (two for [`LayerKind::Concat`], one otherwise).
    pub inputs: Vec<TensorId>,
    /// Its output.
    pub output: TensorId,
}

/// The layer graph of an architecture, in execution order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Every tensor; `TensorId(0)` is the input.
    pub tensors: Vec<TensorInfo>,
    /// The layers in execution order.
    pub layers: Vec<Layer>,
    /// The mask (output of the final argmax).
    pub output: TensorId,
}

impl Graph {
    /// The input tensor.
    pub const INPUT: TensorId = TensorId(0);
}

/// The parameters of a UNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Architecture {
    /// Input channels (5 for the seed's 2.5D input).
    pub in_channels: usize,
    /// Features of the first level; level `i` has `base_features · 2^i`.
    pub base_features: usize,
    /// Number of encoder (and decoder) levels.
    pub depth: usize,
    /// Activation of every block.
    pub activation: Activation,
    /// Pooling after every encoder level.
    pub pooling: Pooling,
    /// Spatial rank.
    pub dims: Dims,
    /// Output classes (BUNET supports 2: background and lesion).
    pub classes: usize,
}

/// Slice offsets of the seed's 2.5D input: the input of slice `z` stacks slices
/// `z − 5, z − 2, z, z + 2, z + 5` as channels.
pub const SLICE_OFFSETS: [isize; 5] = [-5, -2, 0, 2, 5];

impl Default for Architecture {
    fn default() -> Self {
        Self::seed()
    }
}

impl Architecture {
    /// The seed's network: 5 input channels (2.5D), 16 base features, depth 4, ReLU, average pool
    /// by PAHE rotations, 2D, 2 classes.
    pub fn seed() -> Self {
        Self {
            in_channels: SLICE_OFFSETS.len(),
            base_features: 16,
            depth: 4,
            activation: Activation::Relu,
            pooling: Pooling::AvgByRotation,
            dims: Dims::Two,
            classes: 2,
        }
    }

    /// The seed's network at depth 2 with `base_features` features and the given activation,
    /// pooling and dimensionality: every kind of layer the seed's has, at a size that tests,
    /// benches and examples run in seconds.
    pub fn small(
        activation: Activation,
        pooling: Pooling,
        dims: Dims,
        base_features: usize,
    ) -> Self {
        Self {
            base_features,
            depth: 2,
            activation,
            pooling,
            dims,
            ..Self::seed()
        }
    }

    /// Checks every parameter's range.
    ///
    /// # Errors
    /// [`ArchError::OutOfRange`] naming the first parameter out of range (channels 1..=64, base
    /// 1..=256, depth 1..=6, classes exactly 2).
    pub fn validate(&self) -> Result<(), ArchError> {
        let check = |name, value: usize, min: u64, max: u64| {
            let value = value as u64;
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ArchError::OutOfRange {
                    name,
                    value,
                    min,
                    max,
                })
            }
        };
        check("in_channels", self.in_channels, 1, 64)?;
        check("base_features", self.base_features, 1, 256)?;
        check("depth", self.depth, 1, 6)?;
        check("classes", self.classes, 2, 2)
    }

    /// Features of encoder level `level` (0-based); `level = depth` is the bottleneck.
    pub fn features(&self, level: usize) -> usize {
        self.base_features << level
    }

    fn kernel(&self, extent: usize) -> [usize; 3] {
        match self.dims {
            Dims::Two => [1, extent, extent],
            Dims::Three => [extent; 3],
        }
    }

    /// Every convolution in PyTorch `state_dict` order: encoders 1..=depth, bottleneck, then per
    /// decoder level (depth down to 1) its transposed conv and block, then the head.
    pub fn convs(&self) -> Vec<ConvSpec> {
        let mut out = Vec::new();
        let block = |out: &mut Vec<ConvSpec>, module: &str, prefix: &str, c_in, c_out| {
            for (j, c) in [(1, c_in), (2, c_out)] {
                out.push(ConvSpec {
                    name: format!("{module}.{prefix}conv{j}"),
                    norm: Some(format!("{module}.{prefix}norm{j}")),
                    kind: ConvKind::Same,
                    c_in: c,
                    c_out,
                    kernel: self.kernel(3),
                });
            }
        };
        let mut c_in = self.in_channels;
        for i in 1..=self.depth {
            let c = self.features(i - 1);
            block(
                &mut out,
                &format!("encoder{i}"),
                &format!("enc{i}"),
                c_in,
                c,
            );
            c_in = c;
        }
        block(
            &mut out,
            "bottleneck",
            "bottleneck",
            c_in,
            self.features(self.depth),
        );
        for i in (1..=self.depth).rev() {
            let c = self.features(i - 1);
            out.push(ConvSpec {
                name: format!("upconv{i}"),
                norm: None,
                kind: ConvKind::Transposed,
                c_in: self.features(i),
                c_out: c,
                kernel: self.kernel(2),
            });
            block(
                &mut out,
                &format!("decoder{i}"),
                &format!("dec{i}"),
                2 * c,
                c,
            );
        }
        out.push(ConvSpec {
            name: "conv".into(),
            norm: None,
            kind: ConvKind::Pointwise,
            c_in: self.base_features,
            c_out: self.classes,
            kernel: self.kernel(1),
        });
        out
    }

    /// The layer graph, in the order of the PyTorch `forward`.
    pub fn graph(&self) -> Graph {
        let mut b = GraphBuilder {
            tensors: vec![TensorInfo {
                channels: self.in_channels,
                level: 0,
            }],
            layers: Vec::new(),
        };
        let convs = self.convs();
        let mut conv = 0usize;
        let mut x = Graph::INPUT;
        let block = |b: &mut GraphBuilder, mut x: TensorId, conv: &mut usize| {
            for _ in 0..2 {
                let spec = &convs[*conv];
                x = b.push(LayerKind::Conv { conv: *conv }, &[x], spec.c_out, None);
                x = b.push(LayerKind::Activation, &[x], spec.c_out, None);
                *conv += 1;
            }
            x
        };
        let mut skips = Vec::new();
        for level in 0..self.depth {
            x = block(&mut b, x, &mut conv);
            skips.push(x);
            let c = b.tensors[x.0].channels;
            x = b.push(LayerKind::Pool, &[x], c, Some(level as u32 + 1));
        }
        x = block(&mut b, x, &mut conv);
        for level in (0..self.depth).rev() {
            let c = convs[conv].c_out;
            x = b.push(LayerKind::UpConv { conv }, &[x], c, Some(level as u32));
            conv += 1;
            let skip = skips[level];
            x = b.push(LayerKind::Concat, &[x, skip], 2 * c, None);
            x = block(&mut b, x, &mut conv);
        }
        x = b.push(LayerKind::Head { conv }, &[x], self.classes, None);
        let output = b.push(LayerKind::Argmax, &[x], 1, None);
        Graph {
            tensors: b.tensors,
            layers: b.layers,
            output,
        }
    }

    /// Checks that an input of `channels` channels and spatial extents `dims` (depth, height,
    /// width) fits: the architecture's input channels, a non-zero depth, and every down-sampled
    /// axis non-zero and divisible by `2^depth`.
    ///
    /// In 2D the depth axis is not down-sampled: every 2D op (convs of kernel depth 1, pools
    /// and up-convs on height and width) treats its planes as independent images, so an input
    /// of depth `b` is a batch of `b` slices, each segmented as it would be alone.
    ///
    /// # Errors
    /// [`ShapeError::Channels`] or [`ShapeError::Spatial`].
    pub fn check_input(&self, channels: usize, dims: [usize; 3]) -> Result<(), ShapeError> {
        if channels != self.in_channels {
            return Err(ShapeError::Channels {
                expected: self.in_channels,
                found: channels,
            });
        }
        let spatial = |reason: String| ShapeError::Spatial {
            found: dims,
            reason,
        };
        let first = match self.dims {
            Dims::Two if dims[0] == 0 => {
                return Err(spatial("a 2D batch holds at least one slice".into()));
            }
            Dims::Two => 1,
            Dims::Three => 0,
        };
        let step = 1usize << self.depth;
        for &d in &dims[first..] {
            if d == 0 || !d.is_multiple_of(step) {
                return Err(spatial(format!(
                    "every pooled axis must be a positive multiple of 2^depth = {step}"
                )));
            }
        }
        Ok(())
    }

    /// Spatial extents of a tensor at `level` for an input of extents `dims`.
    pub fn dims_at(&self, dims: [usize; 3], level: u32) -> [usize; 3] {
        match self.dims {
            Dims::Two => [dims[0], dims[1] >> level, dims[2] >> level],
            Dims::Three => dims.map(|d| d >> level),
        }
    }

    /// Multiply-accumulates of all convs for an input of extents `dims` (a transposed conv
    /// counts one tap per input channel and output element).
    pub fn macs(&self, dims: [usize; 3]) -> u64 {
        let g = self.graph();
        let convs = self.convs();
        g.layers
            .iter()
            .filter_map(|l| match l.kind {
                LayerKind::Conv { conv }
                | LayerKind::UpConv { conv }
                | LayerKind::Head { conv } => {
                    let spec = &convs[conv];
                    let out = g.tensors[l.output.0];
                    let n: usize = self.dims_at(dims, out.level).iter().product();
                    let taps = match spec.kind {
                        ConvKind::Transposed => 1,
                        _ => spec.taps(),
                    };
                    Some((n * spec.c_in * spec.c_out * taps) as u64)
                }
                _ => None,
            })
            .sum()
    }

    /// Number of window elements of one pool (4 in 2D, 8 in 3D).
    pub fn pool_window(&self) -> usize {
        match self.dims {
            Dims::Two => 4,
            Dims::Three => 8,
        }
    }

    /// The canonical byte encoding the fingerprint hashes: the tag `bunet-unet-arch-v1`, then
    /// `in_channels`, `base_features`, `depth`, `classes` as little-endian u32, then one byte each
    /// for dims (2 | 3), activation (0 ReLU, 1 square) and pooling (0 avg by rotation, 1 avg
    /// local, 2 max). The two average pools hash differently because their protocols differ.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = b"bunet-unet-arch-v1".to_vec();
        for v in [
            self.in_channels,
            self.base_features,
            self.depth,
            self.classes,
        ] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.push(match self.dims {
            Dims::Two => 2,
            Dims::Three => 3,
        });
        out.push(match self.activation {
            Activation::Relu => 0,
            Activation::Square => 1,
        });
        out.push(match self.pooling {
            Pooling::AvgByRotation => 0,
            Pooling::AvgLocal => 1,
            Pooling::Max => 2,
        });
        out
    }

    /// Stable 64-bit fingerprint of the architecture (not of the weights), for the handshake:
    /// [`fnv1a64`] of [`Architecture::canonical_bytes`].
    pub fn fingerprint(&self) -> u64 {
        fnv1a64(&self.canonical_bytes())
    }
}

/// 64-bit FNV-1a (Fowler–Noll–Vo): offset basis `0xcbf29ce484222325`, prime `0x100000001b3`;
/// for every byte, `h ^= byte; h *= prime` (wrapping). Stable across Rust versions and platforms,
/// unlike `std`'s `DefaultHasher`. Not collision resistant: it names parameter sets, it does not
/// authenticate them.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct GraphBuilder {
    tensors: Vec<TensorInfo>,
    layers: Vec<Layer>,
}

impl GraphBuilder {
    fn push(
        &mut self,
        kind: LayerKind,
        inputs: &[TensorId],
        channels: usize,
        level: Option<u32>,
    ) -> TensorId {
        let level = level.unwrap_or(self.tensors[inputs[0].0].level);
        let output = TensorId(self.tensors.len());
        self.tensors.push(TensorInfo { channels, level });
        self.layers.push(Layer {
            kind,
            inputs: inputs.to_vec(),
            output,
        });
        output
    }
}

impl fmt::Display for Architecture {
    /// `unet-v1 dims=2 in=5 base=16 depth=4 act=relu pool=avg-rotation classes=2`; parsed back by
    /// [`FromStr`]. Stored as the `bunet.architecture` metadata of weight files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims = match self.dims {
            Dims::Two => 2,
            Dims::Three => 3,
        };
        let act = match self.activation {
            Activation::Relu => "relu",
            Activation::Square => "square",
        };
        let pool = match self.pooling {
            Pooling::AvgByRotation => "avg-rotation",
            Pooling::AvgLocal => "avg-local",
            Pooling::Max => "max",
        };
        write!(
            f,
            "unet-v1 dims={dims} in={} base={} depth={} act={act} pool={pool} classes={}",
            self.in_channels, self.base_features, self.depth, self.classes
        )
    }
}

impl FromStr for Architecture {
    type Err = ArchError;

    /// Parses the [`Display`](fmt::Display) form; every key exactly once, in any order.
    fn from_str(s: &str) -> Result<Self, ArchError> {
        let err = |m: String| ArchError::Parse(m);
        let mut words = s.split_ascii_whitespace();
        if words.next() != Some("unet-v1") {
            return Err(err("expected the tag `unet-v1` first".into()));
        }
        let mut seen = [false; 7];
        let mut a = Architecture::seed();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| err(format!("expected key=value, found `{word}`")))?;
            let num = || {
                value
                    .parse::<usize>()
                    .map_err(|_| err(format!("{key}: `{value}` is not a number")))
            };
            let slot = match key {
                "dims" => {
                    a.dims = match value {
                        "2" => Dims::Two,
                        "3" => Dims::Three,
                        _ => return Err(err(format!("dims: expected 2 or 3, found `{value}`"))),
                    };
                    0
                }
                "in" => {
                    a.in_channels = num()?;
                    1
                }
                "base" => {
                    a.base_features = num()?;
                    2
                }
                "depth" => {
                    a.depth = num()?;
                    3
                }
                "act" => {
                    a.activation = match value {
                        "relu" => Activation::Relu,
                        "square" => Activation::Square,
                        _ => return Err(err(format!("act: unknown `{value}`"))),
                    };
                    4
                }
                "pool" => {
                    a.pooling = match value {
                        "avg-rotation" => Pooling::AvgByRotation,
                        "avg-local" => Pooling::AvgLocal,
                        "max" => Pooling::Max,
                        _ => return Err(err(format!("pool: unknown `{value}`"))),
                    };
                    5
                }
                "classes" => {
                    a.classes = num()?;
                    6
                }
                _ => return Err(err(format!("unknown key `{key}`"))),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(err(format!("key `{key}` given twice")));
            }
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            let names = ["dims", "in", "base", "depth", "act", "pool", "classes"];
            return Err(err(format!("key `{}` is missing", names[missing])));
        }
        a.validate()?;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_answers() {
        // Reference values of the FNV-1a 64-bit specification.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fingerprint_changes_with_every_parameter() {
        let base = Architecture::seed();
        let variants = [
            Architecture {
                in_channels: 4,
                ..base
            },
            Architecture {
                base_features: 32,
                ..base
            },
            Architecture { depth: 3, ..base },
            Architecture {
                activation: Activation::Square,
                ..base
            },
            Architecture {
                pooling: Pooling::AvgLocal,
                ..base
            },
            Architecture {
                pooling: Pooling::Max,
                ..base
            },
            Architecture {
                dims: Dims::Three,
                ..base
            },
        ];
        let mut seen = vec![base.fingerprint()];
        for v in variants {
            let f = v.fingerprint();
            assert!(!seen.contains(&f), "{v} collides");
            seen.push(f);
        }
        // Frozen: the handshake of every version must agree on this value.
        assert_eq!(base.fingerprint(), fnv1a64(&base.canonical_bytes()));
        assert_eq!(base.fingerprint(), FROZEN_SEED_FINGERPRINT);
    }

    const FROZEN_SEED_FINGERPRINT: u64 = 14_372_765_034_534_689_746;

    #[test]
    fn display_parses_back() {
        for act in [Activation::Relu, Activation::Square] {
            for pooling in [Pooling::AvgByRotation, Pooling::AvgLocal, Pooling::Max] {
                for dims in [Dims::Two, Dims::Three] {
                    let a = Architecture {
                        activation: act,
                        pooling,
                        dims,
                        ..Architecture::seed()
                    };
                    assert_eq!(a.to_string().parse::<Architecture>(), Ok(a));
                }
            }
        }
        for bad in [
            "",
            "unet-v2 dims=2",
            "unet-v1 dims=2 in=5 base=16 depth=4 act=relu pool=max",
            "unet-v1 dims=2 in=5 base=16 depth=4 act=relu pool=max classes=3",
            "unet-v1 dims=2 dims=2 in=5 base=16 depth=4 act=relu pool=max classes=2",
            "unet-v1 dims=4 in=5 base=16 depth=4 act=relu pool=max classes=2",
            "unet-v1 dims=2 in=x base=16 depth=4 act=relu pool=max classes=2",
        ] {
            assert!(bad.parse::<Architecture>().is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_graph_matches_pytorch_structure() {
        let a = Architecture::seed();
        let convs = a.convs();
        // 2 per block × (4 encoders + bottleneck + 4 decoders) + 4 upconvs + head.
        assert_eq!(convs.len(), 2 * 9 + 4 + 1);
        assert_eq!(convs[0].name, "encoder1.enc1conv1");
        assert_eq!(convs[0].weight_shape(a.dims), vec![16, 5, 3, 3]);
        assert_eq!(convs[8].name, "bottleneck.bottleneckconv1");
        assert_eq!(convs[8].weight_shape(a.dims), vec![256, 128, 3, 3]);
        assert_eq!(convs[10].name, "upconv4");
        assert_eq!(convs[10].weight_shape(a.dims), vec![256, 128, 2, 2]);
        assert_eq!(convs[11].name, "decoder4.dec4conv1");
        assert_eq!(convs[11].weight_shape(a.dims), vec![128, 256, 3, 3]);
        assert_eq!(convs[22].weight_shape(a.dims), vec![2, 16, 1, 1]);
        let g = a.graph();
        let concat = g
            .layers
            .iter()
            .find(|l| l.kind == LayerKind::Concat)
            .expect("a concat");
        // torch.cat((dec4, enc4)): upsampled first, then the skip.
        assert!(matches!(
            g.layers[concat.inputs[0].0 - 1].kind,
            LayerKind::UpConv { .. }
        ));
        assert_eq!(g.tensors[concat.inputs[1].0].level, 3);
        assert_eq!(g.tensors[g.output.0].level, 0);
        // DESIGN.md: about 32 million activations and 12 GMAC per 512×512 slice.
        let activations: usize = g
            .layers
            .iter()
            .filter(|l| l.kind == LayerKind::Activation)
            .map(|l| {
                let t = g.tensors[l.output.0];
                t.channels * (512 >> t.level) * (512 >> t.level)
            })
            .sum();
        assert_eq!(activations, 122 * 512 * 512);
        let gmac = a.macs([1, 512, 512]) as f64 / 1e9;
        assert!((11.0..13.0).contains(&gmac), "{gmac}");
    }

    #[test]
    fn input_shape_checks() {
        let a = Architecture::seed();
        assert!(a.check_input(5, [1, 64, 48]).is_ok());
        assert!(a.check_input(4, [1, 64, 64]).is_err());
        assert!(
            a.check_input(5, [3, 64, 64]).is_ok(),
            "a batch of three slices"
        );
        assert!(a.check_input(5, [0, 64, 64]).is_err());
        assert!(a.check_input(5, [1, 64, 40]).is_err());
        assert!(a.check_input(5, [1, 0, 64]).is_err());
        let a3 = Architecture {
            dims: Dims::Three,
            in_channels: 1,
            depth: 2,
            ..a
        };
        assert!(a3.check_input(1, [8, 16, 4]).is_ok());
        assert!(a3.check_input(1, [6, 16, 4]).is_err());
    }
}
