//! UNet weights: the PyTorch parameters as stored in safetensors files ([`Weights`]), and the
//! inference model with every BatchNorm folded into its conv ([`Model`]).
//!
//! Tensor names are those of the PyTorch `state_dict` of `unet.py` (`encoder1.enc1conv1.weight`,
//! `encoder1.enc1norm1.{weight,bias,running_mean,running_var}`, `upconv4.{weight,bias}`,
//! `decoder4.dec4conv1.weight`, …, `conv.{weight,bias}`). Files carry the metadata
//! `bunet.architecture` (the [`Architecture`] description), `bunet.quantization` and
//! `bunet.training_seed` when known.

use std::collections::{HashMap, HashSet};

use safetensors::{Dtype, SafeTensors};

use crate::arch::{Activation, Architecture, ConvKind, ConvSpec, Graph, LayerKind, Pooling};
use crate::error::{Error, WeightsError};
use crate::float;
use crate::synthetic::{SplitMix64, smooth_image};
use crate::tensor::Tensor;

/// BatchNorm epsilon (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;

/// Metadata key of the architecture description.
pub const META_ARCHITECTURE: &str = "bunet.architecture";
/// Metadata key of the quantization the weights were trained or exported for.
pub const META_QUANTIZATION: &str = "bunet.quantization";
/// Metadata key of the training seed.
pub const META_TRAINING_SEED: &str = "bunet.training_seed";
/// Metadata key of the input normalisation ([`InputNorm`]'s `Display` form).
pub const META_INPUT: &str = "bunet.input";
/// Metadata key of the training voxel spacing in mm, `x,y,z`.
pub const META_SPACING: &str = "bunet.spacing";
/// Metadata key of the class names, comma-separated (class 0 first).
pub const META_CLASSES: &str = "bunet.classes";
/// Metadata key of the head the network was trained with ([`Head`]'s name).
pub const META_HEAD: &str = "bunet.head";
/// Legacy metadata keys that `tools/train.py` wrote before the `bunet.*` keys, with the
/// architecture field each one pins: a file that carries them is checked against them.
const LEGACY_KEYS: [&str; 6] = [
    "pool",
    "activation",
    "in_channels",
    "init_features",
    "depth",
    "out_classes",
];

/// Parameters of one BatchNorm (inference form).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Scale γ (`.weight`).
    pub gamma: Vec<f32>,
    /// Shift β (`.bias`).
    pub beta: Vec<f32>,
    /// Running mean.
    pub running_mean: Vec<f32>,
    /// Running variance (non-negative).
    pub running_var: Vec<f32>,
}

impl BatchNorm {
    /// Per-channel `(scale, shift)` with `BN(x) = scale · x + shift`, in f64:
    /// `scale = γ / sqrt(var + eps)`, `shift = β − mean · scale`.
    pub fn affine(&self) -> Vec<(f64, f64)> {
        (0..self.gamma.len())
            .map(|c| {
                let scale =
                    f64::from(self.gamma[c]) / (f64::from(self.running_var[c]) + BN_EPS).sqrt();
                (
                    scale,
                    f64::from(self.beta[c]) - f64::from(self.running_mean[c]) * scale,
                )
            })
            .collect()
    }
}

/// The PyTorch parameters of one conv and its BatchNorm.
#[derive(Debug, Clone, PartialEq)]
pub struct RawConv {
    /// The conv's description.
    pub spec: ConvSpec,
    /// `<name>.weight` in PyTorch layout (see [`ConvSpec::weight_shape`]).
    pub weight: Vec<f32>,
    /// `<name>.bias` (transposed convs and the head).
    pub bias: Option<Vec<f32>>,
    /// The BatchNorm that follows ([`ConvKind::Same`] convs).
    pub norm: Option<BatchNorm>,
}

impl RawConv {
    /// The conv without its BatchNorm, in inference layout (`[co][ci][k..]`), with a zero bias
    /// where PyTorch has none.
    pub fn unfolded(&self) -> Conv {
        let taps = self.spec.taps();
        let (c_in, c_out) = (self.spec.c_in, self.spec.c_out);
        let weight = match self.spec.kind {
            ConvKind::Transposed => {
                let mut w = vec![0.0f32; self.weight.len()];
                for ci in 0..c_in {
                    for co in 0..c_out {
                        let src = (ci * c_out + co) * taps;
                        let dst = (co * c_in + ci) * taps;
                        w[dst..dst + taps].copy_from_slice(&self.weight[src..src + taps]);
                    }
                }
                w
            }
            _ => self.weight.clone(),
        };
        Conv {
            spec: self.spec.clone(),
            weight,
            bias: self.bias.clone().unwrap_or_else(|| vec![0.0; c_out]),
        }
    }

    /// The conv with its BatchNorm folded in: `w' = w · scale[co]`, `b' = b · scale + shift`
    /// (computed in f64, eps = [`BN_EPS`]).
    pub fn folded(&self) -> Conv {
        let mut conv = self.unfolded();
        if let Some(norm) = &self.norm {
            let per_co = conv.spec.c_in * conv.spec.taps();
            for (co, (scale, shift)) in norm.affine().into_iter().enumerate() {
                for w in &mut conv.weight[co * per_co..(co + 1) * per_co] {
                    *w = (f64::from(*w) * scale) as f32;
                }
                conv.bias[co] = (f64::from(conv.bias[co]) * scale + shift) as f32;
            }
        }
        conv
    }
}

/// A conv ready for inference: weights `[co][ci][kd][kh][kw]` (transposed convs too) and a bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// The conv's description.
    pub spec: ConvSpec,
    /// Weights, `c_out · c_in · taps` of them.
    pub weight: Vec<f32>,
    /// Bias, `c_out` of them.
    pub bias: Vec<f32>,
}

/// How a Hounsfield value becomes a network input: `x = (clip(hu, lo, hi) − centre) / scale`.
/// Stored as `bunet.input = "hu-window lo=-1000 hi=400 centre=-300 scale=700"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputNorm {
    /// Lower end of the Hounsfield window.
    pub lo: f32,
    /// Upper end of the Hounsfield window.
    pub hi: f32,
    /// The HU value that maps to 0.
    pub centre: f32,
    /// HU per unit of network input.
    pub scale: f32,
}

impl InputNorm {
    /// The normalisation of the seed's recipe and of every file written before the `bunet.input`
    /// key existed: `(clip(hu, −1000, 400) + 300) / 700`, in `[−1, 1]`.
    pub const SEED: InputNorm = InputNorm {
        lo: -1000.0,
        hi: 400.0,
        centre: -300.0,
        scale: 700.0,
    };

    /// The network input of one Hounsfield value. NaN stays NaN (callers refuse such volumes
    /// before they get here).
    pub fn apply(&self, hu: f32) -> f32 {
        // `hu - (-300)` is `hu + 300` bit for bit, so the seed's weights see what they always saw.
        (hu.clamp(self.lo, self.hi) - self.centre) / self.scale
    }

    fn validate(&self) -> bool {
        [self.lo, self.hi, self.centre, self.scale]
            .iter()
            .all(|v| v.is_finite())
            && self.lo < self.hi
            && self.scale > 0.0
    }
}

impl Default for InputNorm {
    fn default() -> Self {
        Self::SEED
    }
}

impl std::fmt::Display for InputNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hu-window lo={} hi={} centre={} scale={}",
            self.lo, self.hi, self.centre, self.scale
        )
    }
}

impl std::str::FromStr for InputNorm {
    type Err = String;

    /// Parses the `Display` form: the tag `hu-window`, then `lo`, `hi`, `centre`, `scale` once
    /// each, finite, `lo < hi`, `scale > 0`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_ascii_whitespace();
        if words.next() != Some("hu-window") {
            return Err("expected the tag `hu-window` first".into());
        }
        let mut vals: [Option<f32>; 4] = [None; 4];
        for word in words {
            let (k, v) = word
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, found `{word}`"))?;
            let slot = match k {
                "lo" => 0,
                "hi" => 1,
                "centre" => 2,
                "scale" => 3,
                _ => return Err(format!("unknown key `{k}`")),
            };
            let v: f32 = v
                .parse()
                .map_err(|_| format!("{k}: `{v}` is not a number"))?;
            if vals[slot].replace(v).is_some() {
                return Err(format!("key `{k}` given twice"));
            }
        }
        let [Some(lo), Some(hi), Some(centre), Some(scale)] = vals else {
            return Err("expected lo, hi, centre and scale".into());
        };
        let n = InputNorm {
            lo,
            hi,
            centre,
            scale,
        };
        if !n.validate() {
            return Err(format!("`{s}`: expected finite values, lo < hi, scale > 0"));
        }
        Ok(n)
    }
}

/// The head a network was trained with. BUNET runs two class scores and an argmax; a
/// one-output sigmoid head `z` is imported as the scores `(0, z)`, whose argmax is `z > 0`
/// (sigmoid > 0.5) and whose softmax is `(1 − σ(z), σ(z))`: the same mask and probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Head {
    /// Two class scores, softmax / argmax (the seed's head).
    #[default]
    Softmax2,
    /// One logit with a sigmoid, stored as the scores `(0, z)`.
    Sigmoid1,
}

impl Head {
    /// The metadata name: `softmax2` or `sigmoid1`.
    pub fn name(self) -> &'static str {
        match self {
            Head::Softmax2 => "softmax2",
            Head::Sigmoid1 => "sigmoid1",
        }
    }
}

/// Metadata stored with the weights: what the file says about itself besides its tensors.
/// Absent keys take the seed's values (files of the older tools), except the spacing, which
/// stays unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The quantization the weights are meant for (e.g. a [`crate::Quant`] description).
    pub quantization: Option<String>,
    /// The seed of the training run (or of [`Weights::random_trained_like`]).
    pub training_seed: Option<u64>,
    /// The input normalisation the weights were trained with.
    pub input: InputNorm,
    /// The voxel spacing (mm, `x, y, z`) of the training data, if known.
    pub spacing: Option<[f32; 3]>,
    /// Class names, class 0 first.
    pub classes: Vec<String>,
    /// The head the network was trained with.
    pub head: Head,
}

impl Default for Metadata {
    fn default() -> Self {
        Self {
            quantization: None,
            training_seed: None,
            input: InputNorm::SEED,
            spacing: None,
            classes: vec!["background".into(), "lesion".into()],
            head: Head::Softmax2,
        }
    }
}

impl Metadata {
    /// Reads the `bunet.*` keys of a safetensors metadata map (other keys are ignored).
    ///
    /// # Errors
    /// [`WeightsError::Metadata`] naming the first key whose value does not parse.
    pub fn from_map(meta: &HashMap<String, String>) -> Result<Self, WeightsError> {
        let bad = |key: &str, value: &str| WeightsError::Metadata {
            key: key.into(),
            value: value.into(),
        };
        let mut out = Metadata {
            quantization: meta.get(META_QUANTIZATION).cloned(),
            ..Metadata::default()
        };
        if let Some(v) = meta.get(META_TRAINING_SEED) {
            out.training_seed = Some(v.parse().map_err(|_| bad(META_TRAINING_SEED, v))?);
        }
        if let Some(v) = meta.get(META_INPUT) {
            out.input = v.parse().map_err(|_| bad(META_INPUT, v))?;
        }
        if let Some(v) = meta.get(META_SPACING) {
            let parts: Vec<f32> = v
                .split(',')
                .map(|p| p.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad(META_SPACING, v))?;
            match parts[..] {
                [x, y, z] if [x, y, z].iter().all(|s| s.is_finite() && *s > 0.0) => {
                    out.spacing = Some([x, y, z]);
                }
                _ => return Err(bad(META_SPACING, v)),
            }
        }
        if let Some(v) = meta.get(META_CLASSES) {
            let names: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
            if names.len() != 2 || names.iter().any(String::is_empty) {
                return Err(bad(META_CLASSES, v));
            }
            out.classes = names;
        }
        if let Some(v) = meta.get(META_HEAD) {
            out.head = match v.as_str() {
                "softmax2" => Head::Softmax2,
                "sigmoid1" => Head::Sigmoid1,
                _ => return Err(bad(META_HEAD, v)),
            };
        }
        Ok(out)
    }

    /// The `bunet.*` keys of this metadata (all but the architecture).
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut meta = HashMap::new();
        if let Some(q) = &self.quantization {
            meta.insert(META_QUANTIZATION.to_string(), q.clone());
        }
        if let Some(s) = self.training_seed {
            meta.insert(META_TRAINING_SEED.to_string(), s.to_string());
        }
        meta.insert(META_INPUT.to_string(), self.input.to_string());
        if let Some([x, y, z]) = self.spacing {
            meta.insert(META_SPACING.to_string(), format!("{x},{y},{z}"));
        }
        meta.insert(META_CLASSES.to_string(), self.classes.join(","));
        meta.insert(META_HEAD.to_string(), self.head.name().to_string());
        meta
    }
}

/// The metadata map of a safetensors file (its header only: the tensors are not checked).
///
/// # Errors
/// [`WeightsError::Format`] if the header is malformed.
pub fn read_metadata(bytes: &[u8]) -> Result<HashMap<String, String>, WeightsError> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// The architecture a metadata map declares: the `bunet.architecture` key, checked against the
/// legacy keys of older `tools/train.py` files (`pool`, `activation`, `in_channels`,
/// `init_features`, `depth`, `out_classes`) where present; `expected` (a caller's `--arch`) must
/// agree with whatever the file declares, and stands in for a file that declares nothing.
///
/// # Errors
/// [`WeightsError::MissingArchitecture`] if the map has no `bunet.architecture` and `expected`
/// is `None`; [`WeightsError::ArchitectureMismatch`] if `expected`, the key or the legacy keys
/// disagree (max-pool weights are never run as average pool); [`Error::Architecture`] if the
/// description does not parse.
pub fn declared_architecture(
    meta: &HashMap<String, String>,
    expected: Option<&Architecture>,
) -> Result<Architecture, Error> {
    let from_file = match meta.get(META_ARCHITECTURE) {
        Some(text) => Some(text.parse::<Architecture>()?),
        None => None,
    };
    let arch = match (from_file, expected) {
        (Some(found), Some(exp)) if found != *exp => {
            return Err(WeightsError::ArchitectureMismatch {
                expected: exp.to_string(),
                found: found.to_string(),
            }
            .into());
        }
        (Some(a), _) => a,
        (None, Some(exp)) => *exp,
        (None, None) => return Err(WeightsError::MissingArchitecture.into()),
    };
    for key in LEGACY_KEYS {
        let Some(value) = meta.get(key) else { continue };
        let agrees = match key {
            "pool" => match value.as_str() {
                "avg" => arch.pooling.is_average(),
                "max" => arch.pooling == Pooling::Max,
                _ => false,
            },
            "activation" => match value.as_str() {
                "relu" => arch.activation == Activation::Relu,
                "square" => arch.activation == Activation::Square,
                _ => false,
            },
            _ => {
                let want = match key {
                    "in_channels" => arch.in_channels,
                    "init_features" => arch.base_features,
                    "depth" => arch.depth,
                    _ => arch.classes,
                };
                value.trim().parse::<usize>().ok() == Some(want)
            }
        };
        if !agrees {
            return Err(WeightsError::ArchitectureMismatch {
                expected: arch.to_string(),
                found: format!("a file whose metadata says {key}={value}"),
            }
            .into());
        }
    }
    Ok(arch)
}

/// All parameters of a UNet, as PyTorch stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// The architecture.
    pub arch: Architecture,
    /// One entry per [`Architecture::convs`], same order.
    pub convs: Vec<RawConv>,
    /// Metadata.
    pub metadata: Metadata,
}

/// The inference model: architecture plus every conv with its BatchNorm folded.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    arch: Architecture,
    graph: Graph,
    convs: Vec<Conv>,
    metadata: Metadata,
}

impl Model {
    /// The architecture.
    pub fn arch(&self) -> &Architecture {
        &self.arch
    }

    /// The layer graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The folded convs, in [`Architecture::convs`] order.
    pub fn convs(&self) -> &[Conv] {
        &self.convs
    }

    /// What the weights file said about itself (input normalisation, spacing, classes, head).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The same network with every tensor after the first conv multiplied by `2^k`: the first
    /// conv's weights and every bias scaled by `2^k` (exact in floating point). ReLU, the
    /// pools, the concatenation and the argmax commute with a positive scale, so the mask is the
    /// same function; the class scores are `2^k` times larger. In fixed point, where every
    /// tensor has a fixed unit of `2^−f`, this buys `k` bits of activation precision at the
    /// cost of `k` bits of headroom below `p/2` (see [`crate::QuantModel::calibrated`]).
    ///
    /// # Panics
    /// If the activation is [`Activation::Square`] and `k > 0` (squaring does not commute with
    /// a scale).
    pub fn with_activation_scale(&self, k: u32) -> Model {
        assert!(
            k == 0 || self.arch.activation == Activation::Relu,
            "only a ReLU network's activations can be rescaled"
        );
        let a = (f64::from(k)).exp2();
        let mut out = self.clone();
        for (i, c) in out.convs.iter_mut().enumerate() {
            if i == 0 {
                for w in &mut c.weight {
                    *w = (f64::from(*w) * a) as f32;
                }
            }
            for b in &mut c.bias {
                *b = (f64::from(*b) * a) as f32;
            }
        }
        out
    }

    /// Loads a safetensors file and folds it (see [`Weights::from_safetensors`]).
    ///
    /// # Errors
    /// As [`Weights::from_safetensors`].
    pub fn from_safetensors(bytes: &[u8], expected: Option<&Architecture>) -> Result<Self, Error> {
        Ok(Weights::from_safetensors(bytes, expected)?.fold())
    }
}

impl Weights {
    /// Folds every BatchNorm into its conv.
    ///
    /// # Panics
    /// If the weights fail [`Weights::check`] (only possible for weights built by hand: the
    /// loader and the generator check them).
    pub fn fold(&self) -> Model {
        if let Err(e) = self.check() {
            panic!("folding inconsistent weights: {e}");
        }
        Model {
            arch: self.arch,
            graph: self.arch.graph(),
            convs: self.convs.iter().map(RawConv::folded).collect(),
            metadata: self.metadata.clone(),
        }
    }

    /// Checks that the parameters fit the architecture: one entry per conv with its spec, and
    /// every tensor of the length its shape implies (weights built by hand may not).
    ///
    /// # Errors
    /// [`WeightsError::ShapeMismatch`] or [`WeightsError::MissingTensor`] naming the first
    /// offending tensor.
    pub fn check(&self) -> Result<(), WeightsError> {
        let specs = self.arch.convs();
        if specs.len() != self.convs.len() {
            return Err(WeightsError::ShapeMismatch {
                name: "convs".into(),
                expected: vec![specs.len()],
                found: vec![self.convs.len()],
            });
        }
        let mismatch = |name: String, expected: usize, found: usize| {
            Err(WeightsError::ShapeMismatch {
                name,
                expected: vec![expected],
                found: vec![found],
            })
        };
        for (spec, c) in specs.iter().zip(&self.convs) {
            if c.spec != *spec {
                return Err(WeightsError::MissingTensor(format!("{}.weight", spec.name)));
            }
            let n = spec.c_in * spec.c_out * spec.taps();
            if c.weight.len() != n {
                return mismatch(format!("{}.weight", spec.name), n, c.weight.len());
            }
            match (&c.bias, spec.has_bias()) {
                (Some(b), true) if b.len() != spec.c_out => {
                    return mismatch(format!("{}.bias", spec.name), spec.c_out, b.len());
                }
                (Some(_), true) | (None, false) => {}
                _ => return Err(WeightsError::MissingTensor(format!("{}.bias", spec.name))),
            }
            match (&c.norm, &spec.norm) {
                (Some(n), Some(prefix)) => {
                    for (suffix, v) in [
                        ("weight", &n.gamma),
                        ("bias", &n.beta),
                        ("running_mean", &n.running_mean),
                        ("running_var", &n.running_var),
                    ] {
                        if v.len() != spec.c_out {
                            return mismatch(format!("{prefix}.{suffix}"), spec.c_out, v.len());
                        }
                    }
                }
                (None, None) => {}
                (_, prefix) => {
                    return Err(WeightsError::MissingTensor(format!(
                        "{}.weight",
                        prefix.as_deref().unwrap_or(&spec.name)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Serialises to a safetensors file (all tensors F32, PyTorch names and shapes, metadata as
    /// described in the module docs plus `format = pt`).
    ///
    /// # Errors
    /// As [`Weights::check`].
    pub fn to_safetensors(&self) -> Result<Vec<u8>, WeightsError> {
        self.check()?;
        let dims = self.arch.dims;
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for c in &self.convs {
            tensors.push((
                format!("{}.weight", c.spec.name),
                c.spec.weight_shape(dims),
                bytes(&c.weight),
            ));
            if let Some(b) = &c.bias {
                tensors.push((format!("{}.bias", c.spec.name), vec![b.len()], bytes(b)));
            }
            if let (Some(n), Some(prefix)) = (&c.norm, &c.spec.norm) {
                for (suffix, v) in [
                    ("weight", &n.gamma),
                    ("bias", &n.beta),
                    ("running_mean", &n.running_mean),
                    ("running_var", &n.running_var),
                ] {
                    tensors.push((format!("{prefix}.{suffix}"), vec![v.len()], bytes(v)));
                }
            }
        }
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(name, shape, data)| {
                let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                    .expect("check() matched every length to its shape");
                (name.clone(), view)
            })
            .collect();
        let mut meta = self.metadata.to_map();
        meta.insert("format".to_string(), "pt".to_string());
        meta.insert(META_ARCHITECTURE.to_string(), self.arch.to_string());
        safetensors::serialize(views, Some(meta)).map_err(|e| WeightsError::Format(e.to_string()))
    }

    /// Parses a safetensors file. The architecture comes from the `bunet.architecture` metadata,
    /// or from `expected` for files without it (a plain PyTorch export); when both exist they
    /// must agree. Every tensor of the architecture must be present with its exact shape, as F32
    /// or F64, finite, with non-negative running variances; `*.num_batches_tracked` entries of
    /// known BatchNorms are ignored and any other tensor is rejected.
    ///
    /// # Errors
    /// [`Error::Weights`] naming the first problem, [`Error::Architecture`] if the described
    /// architecture is invalid. Never panics on any input.
    pub fn from_safetensors(bytes: &[u8], expected: Option<&Architecture>) -> Result<Self, Error> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let arch = declared_architecture(&meta, expected)?;
        arch.validate()?;
        let metadata = Metadata::from_map(&meta)?;
        let specs = arch.convs();
        check_tensor_names(&specs, st.names())?;
        let reader = TensorReader(&st);
        let mut convs = Vec::with_capacity(specs.len());
        for spec in specs {
            let weight = reader.read(
                format!("{}.weight", spec.name),
                spec.weight_shape(arch.dims),
            )?;
            let bias = if spec.has_bias() {
                Some(reader.read(format!("{}.bias", spec.name), vec![spec.c_out])?)
            } else {
                None
            };
            let norm = match &spec.norm {
                Some(n) => Some(reader.batch_norm(n, spec.c_out)?),
                None => None,
            };
            convs.push(RawConv {
                spec,
                weight,
                bias,
                norm,
            });
        }
        Ok(Weights {
            arch,
            convs,
            metadata,
        })
    }

    /// Deterministic "trained-like" weights for tests and benches: He-initialised convs
    /// (`N(0, 2 / fan_in)`), and BatchNorm statistics calibrated on a smooth synthetic image
    /// ([`smooth_image`] of the same seed, `4 · 2^depth` pixels per axis in 2D, `2 · 2^depth` in
    /// 3D): running mean and variance are the per-channel batch statistics of the conv output
    /// there, γ ∈ [0.8, 1.25), β ~ N(0, 0.2²) for ReLU and β ∈ [1.5, 3) for square. Every
    /// pre-activation is therefore roughly standardised, as after training. The head is
    /// fitted like a trained one: a ridge regression of the features onto ±1, where +1 marks the
    /// brightest third of the centre input channel ("lesions"); so the scores have margins, as a
    /// trained network's do, instead of hovering around a tie.
    ///
    /// # Errors
    /// [`Error::Architecture`] if `arch` is invalid.
    pub fn random_trained_like(arch: &Architecture, seed: u64) -> Result<Self, Error> {
        arch.validate()?;
        let mut rng = SplitMix64::from_seed_for_tests(seed ^ 0x5eed_0f0b_u64);
        let side = |k: usize| k << arch.depth;
        let dims = match arch.dims {
            crate::arch::Dims::Two => [1, side(4), side(4)],
            crate::arch::Dims::Three => [side(2), side(2), side(2)],
        };
        let graph = arch.graph();
        let specs = arch.convs();
        let mut convs: Vec<Option<RawConv>> = vec![None; specs.len()];
        let mut slots: Vec<Option<Tensor<f32>>> = vec![None; graph.tensors.len()];
        slots[0] = Some(smooth_image(arch.in_channels, dims, seed));
        for layer in &graph.layers {
            let x = slots[layer.inputs[0].0]
                .as_ref()
                .expect("graph is in topological order");
            let out = match layer.kind {
                LayerKind::Conv { conv }
                | LayerKind::UpConv { conv }
                | LayerKind::Head { conv } => {
                    let mut raw = RawConv::he_initialised(specs[conv].clone(), &mut rng);
                    let mut y = float::conv(&raw.unfolded(), x);
                    if raw.spec.kind == ConvKind::Same {
                        let norm = BatchNorm::calibrated(&y, arch.activation, &mut rng);
                        raw.norm = Some(norm);
                        y = float::conv(&raw.folded(), x);
                    } else if raw.spec.kind == ConvKind::Pointwise {
                        let input = slots[0].as_ref().expect("the input is kept");
                        let (weight, bias) = fit_head(x, input);
                        raw.weight = weight;
                        raw.bias = Some(bias);
                        y = float::conv(&raw.unfolded(), x);
                    }
                    convs[conv] = Some(raw);
                    y
                }
                _ => {
                    let args: Vec<&Tensor<f32>> = layer
                        .inputs
                        .iter()
                        .map(|t| slots[t.0].as_ref().expect("topological order"))
                        .collect();
                    float::apply_op(arch, layer.kind, &args)
                }
            };
            slots[layer.output.0] = Some(out);
        }
        Ok(Weights {
            arch: *arch,
            convs: convs
                .into_iter()
                .map(|c| c.expect("every conv appears in the graph"))
                .collect(),
            metadata: Metadata {
                training_seed: Some(seed),
                ..Metadata::default()
            },
        })
    }
}

/// Fits the head (class 0 weights zero, class 1 a ridge regression of the features `x` onto
/// ±1 targets: +1 on the brightest third of `input`'s centre channel). Returns the head's weights
/// (`[2][c]`) and bias.
fn fit_head(x: &Tensor<f32>, input: &Tensor<f32>) -> (Vec<f32>, Vec<f32>) {
    let c = x.channels();
    let centre = input.channel(input.channels() / 2);
    let mut sorted = centre.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let cut = sorted[sorted.len() * 2 / 3];
    let n = c + 1;
    // Normal equations (XᵀX + λI) θ = Xᵀt over the features plus a constant.
    let mut a = vec![0.0f64; n * n];
    let mut b = vec![0.0f64; n];
    let mut row = vec![0.0f64; n];
    for (i, &v) in centre.iter().enumerate() {
        for (k, r) in row.iter_mut().enumerate().take(c) {
            *r = f64::from(x.channel(k)[i]);
        }
        row[c] = 1.0;
        let t = if v > cut { 1.0 } else { -1.0 };
        for j in 0..n {
            b[j] += row[j] * t;
            for k in 0..n {
                a[j * n + k] += row[j] * row[k];
            }
        }
    }
    let lambda = 1e-3 * x.plane_len() as f64;
    for j in 0..n {
        a[j * n + j] += lambda;
    }
    // Gaussian elimination with partial pivoting; the ridge term keeps the system regular.
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .unwrap_or(col);
        for k in 0..n {
            a.swap(col * n + k, piv * n + k);
        }
        b.swap(col, piv);
        let d = a[col * n + col];
        for r in col + 1..n {
            let m = a[r * n + col] / d;
            for k in col..n {
                a[r * n + k] -= m * a[col * n + k];
            }
            b[r] -= m * b[col];
        }
    }
    let mut theta = vec![0.0f64; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r * n + k] * theta[k]).sum();
        theta[r] = (b[r] - s) / a[r * n + r];
    }
    let mut weight = vec![0.0f32; 2 * c];
    for k in 0..c {
        weight[c + k] = theta[k] as f32;
    }
    (weight, vec![0.0, theta[c] as f32])
}

/// Refuses any tensor that is not one of the architecture's (weights, biases, BatchNorm
/// parameters and statistics; PyTorch's `*.num_batches_tracked` counters are allowed).
fn check_tensor_names(specs: &[ConvSpec], names: Vec<&str>) -> Result<(), WeightsError> {
    let mut known: HashSet<String> = HashSet::new();
    for s in specs {
        known.insert(format!("{}.weight", s.name));
        if s.has_bias() {
            known.insert(format!("{}.bias", s.name));
        }
        if let Some(n) = &s.norm {
            for suffix in [
                "weight",
                "bias",
                "running_mean",
                "running_var",
                "num_batches_tracked",
            ] {
                known.insert(format!("{n}.{suffix}"));
            }
        }
    }
    let mut names = names;
    names.sort_unstable();
    match names.iter().find(|n| !known.contains(**n)) {
        Some(extra) => Err(WeightsError::UnexpectedTensor(extra.to_string())),
        None => Ok(()),
    }
}

/// Reads the tensors of a safetensors file by name, checking shape, dtype and values.
struct TensorReader<'a>(&'a SafeTensors<'a>);

impl TensorReader<'_> {
    /// The tensor `name` of exactly `shape`, F32 or F64, finite and within `f32`'s range.
    fn read(&self, name: String, shape: Vec<usize>) -> Result<Vec<f32>, WeightsError> {
        let view = self
            .0
            .tensor(&name)
            .map_err(|_| WeightsError::MissingTensor(name.clone()))?;
        if view.shape() != shape.as_slice() {
            return Err(WeightsError::ShapeMismatch {
                name,
                expected: shape,
                found: view.shape().to_vec(),
            });
        }
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("chunks_exact yields 8 bytes")))
                .collect(),
            other => {
                return Err(WeightsError::Dtype {
                    name,
                    found: format!("{other:?}"),
                });
            }
        };
        if let Some((index, &value)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite() || v.abs() > f64::from(f32::MAX))
        {
            return Err(WeightsError::InvalidValue { name, index, value });
        }
        Ok(values.into_iter().map(|v| v as f32).collect())
    }

    /// The BatchNorm `n` of `c_out` channels; running variances must be non-negative.
    fn batch_norm(&self, n: &str, c_out: usize) -> Result<BatchNorm, WeightsError> {
        let c = vec![c_out];
        let running_var = self.read(format!("{n}.running_var"), c.clone())?;
        if let Some((index, &v)) = running_var.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(WeightsError::InvalidValue {
                name: format!("{n}.running_var"),
                index,
                value: f64::from(v),
            });
        }
        Ok(BatchNorm {
            gamma: self.read(format!("{n}.weight"), c.clone())?,
            beta: self.read(format!("{n}.bias"), c.clone())?,
            running_mean: self.read(format!("{n}.running_mean"), c)?,
            running_var,
        })
    }
}

impl RawConv {
    /// He-initialised weights (`N(0, 2 / fan_in)`; transposed and pointwise convs
    /// `N(0, 1 / c_in)`, one tap per input channel reaching each output) and small biases.
    fn he_initialised(spec: ConvSpec, rng: &mut SplitMix64) -> Self {
        let fan_in = (spec.c_in * spec.taps()) as f64;
        let std = match spec.kind {
            ConvKind::Same => (2.0 / fan_in).sqrt(),
            // Each transposed-conv output sees one tap per input channel.
            ConvKind::Transposed | ConvKind::Pointwise => (1.0 / spec.c_in as f64).sqrt(),
        };
        let n = spec.c_in * spec.c_out * spec.taps();
        let weight: Vec<f32> = (0..n).map(|_| (rng.normal() * std) as f32).collect();
        RawConv {
            weight,
            bias: spec.has_bias().then(|| {
                (0..spec.c_out)
                    .map(|_| (rng.normal() * 0.05) as f32)
                    .collect()
            }),
            norm: None,
            spec,
        }
    }
}

impl BatchNorm {
    /// Running statistics = the per-channel batch statistics of the conv output `y`;
    /// γ ∈ [0.8, 1.25), β as a trained network of `activation` keeps it.
    fn calibrated(y: &Tensor<f32>, activation: Activation, rng: &mut SplitMix64) -> Self {
        let plane = y.plane_len();
        let mut norm = BatchNorm {
            gamma: Vec::new(),
            beta: Vec::new(),
            running_mean: Vec::new(),
            running_var: Vec::new(),
        };
        for c in 0..y.channels() {
            let ch = y.channel(c);
            let mean = ch.iter().map(|&v| f64::from(v)).sum::<f64>() / plane as f64;
            let var = ch
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / plane as f64;
            norm.running_mean.push(mean as f32);
            norm.running_var.push(var as f32);
            norm.gamma.push(rng.range(0.8, 1.25) as f32);
            norm.beta.push(match activation {
                Activation::Relu => rng.normal() * 0.2,
                // A square network that trains keeps its pre-activations off zero, where x² is
                // nearly linear; centred ones double the relative error at every layer.
                Activation::Square => rng.range(1.5, 3.0),
            } as f32);
        }
        norm
    }
}
