//! `bunet infer`: plaintext inference of given weights on a NIfTI volume — the float UNet or its
//! fixed-point version (q32, q24: bit for bit what the secure protocol computes) — writing the
//! mask and the class probabilities as NIfTI on the input grid. The baseline a researcher
//! compares a secure run with; no server, no cryptography.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use bunet_harness::model::{self, Card};
use bunet_harness::nifti::{self, Writer};
use bunet_harness::output::{self, MaskSummary};
use bunet_harness::report;
use bunet_harness::volume::{CtVolume, Prepared};
use bunet_unet::secure::Preset;
use bunet_unet::{Dims, Model, QuantModel, Tensor, fixed, float};

use super::common::OutDir;
use super::common::WeightsArgs;
use super::progress;
use super::segment::{self, DEFAULT_MAX_VOXELS};

/// The arithmetic `bunet infer` runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// The float (f32) UNet.
    Float,
    /// Fixed point over p ≈ 2^32 (12 integer + 4 fractional bits), as the secure q32 run.
    Q32,
    /// Fixed point over p ≈ 2^24 (8 integer + 4 fractional bits), as the secure q24 run.
    Q24,
}

/// Options of `bunet infer`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CT volume (NIfTI-1, .nii or .nii.gz, in Hounsfield units).
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    #[command(flatten)]
    weights: WeightsArgs,
    /// Arithmetic: float, or the fixed point of a secure preset.
    #[arg(long, value_enum, default_value = "float")]
    precision: Precision,
    /// Also write the class scores before the softmax (logits_class0.nii.gz,
    /// logits_class1.nii.gz; for an imported sigmoid head class 0 is 0 and class 1 is the logit).
    #[arg(long)]
    logits: bool,
    /// Largest volume accepted, in voxels, checked from the NIfTI header first.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_VOXELS,
          value_parser = clap::value_parser!(u64).range(1..=nifti::MAX_VOXELS as u64))]
    max_voxels: u64,
    /// Output directory (created if missing): mask.nii.gz, probabilities.nii.gz (P(class 1)
    /// as f32; P(class 0) = 1 − P(class 1)), report.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// The network's arithmetic, loaded.
enum Engine<'m> {
    Float(&'m Model),
    Fixed(QuantModel),
}

impl Engine<'_> {
    /// Mask and class scores of one input (2.5D stack or 3D slab), padded extents.
    fn run(&self, input: Tensor<f32>) -> Result<(Tensor<u8>, Tensor<f32>)> {
        Ok(match self {
            Engine::Float(m) => float::segment_with_scores(m, input)?,
            Engine::Fixed(q) => {
                let (mask, scores) = fixed::segment_with_scores(q, &input)?;
                (mask, scores.map(|&v| v as f32))
            }
        })
    }
}

/// Per voxel of the scan: mask, and the two class scores.
struct Outputs {
    mask: Vec<u8>,
    score0: Vec<f32>,
    score1: Vec<f32>,
}

/// Runs `bunet infer`.
pub fn run(args: &Args) -> Result<()> {
    let model = args.weights.load()?;
    let card = Card::of(&model);
    let max_voxels = usize::try_from(args.max_voxels).unwrap_or(usize::MAX);
    let ct = segment::read_ct_limited(&args.input, max_voxels)?;
    let warnings = segment::check_ct(&ct, &card, "infer")?;
    let vol = ct.prepare_with(model.arch(), &model.metadata().input)?;
    let engine = match args.precision {
        Precision::Float => Engine::Float(&model),
        Precision::Q32 => Engine::Fixed(model::quantise(&model, Preset::Q32.quant())?),
        Precision::Q24 => Engine::Fixed(model::quantise(&model, Preset::Q24.quant())?),
    };
    let out = OutDir::create(&args.out)?;
    let started = Instant::now();
    let result = infer(&engine, &ct, &vol).and_then(|o| {
        let wall = started.elapsed().as_secs_f64();
        write(args, &card, &ct, &o, wall, &warnings)
    });
    out.finish(result.is_ok());
    result
}

fn infer(engine: &Engine<'_>, ct: &CtVolume, vol: &Prepared) -> Result<Outputs> {
    let plane = ct.plane_len();
    let nz = ct.dims[2];
    let mut o = Outputs {
        mask: Vec::with_capacity(plane * nz),
        score0: Vec::with_capacity(plane * nz),
        score1: Vec::with_capacity(plane * nz),
    };
    let [_, py, px] = vol.input_dims();
    let padded = py * px;
    let mut keep = |mask: &[u8], scores: &Tensor<f32>, z: usize| {
        o.mask.extend(vol.crop(mask));
        o.score0
            .extend(vol.crop(&scores.channel(0)[z * padded..(z + 1) * padded]));
        o.score1
            .extend(vol.crop(&scores.channel(1)[z * padded..(z + 1) * padded]));
    };
    match vol.kind() {
        Dims::Two => {
            let pb = progress::bar(nz as u64, "infer");
            for z in 0..nz {
                let (mask, scores) = engine.run(vol.stack(z)?)?;
                keep(mask.data(), &scores, 0);
                pb.inc(1);
            }
            pb.finish_and_clear();
        }
        Dims::Three => {
            let (mask, scores) = engine.run(vol.slab(0, vol.padded_slices())?)?;
            for z in 0..nz {
                keep(&mask.data()[z * padded..(z + 1) * padded], &scores, z);
            }
        }
    }
    Ok(o)
}

/// P(class 1) of two scores: the softmax, `1 / (1 + e^(s0 − s1))` (for an imported sigmoid
/// head, `s0 = 0` and this is the sigmoid of its logit).
fn probability(s0: f32, s1: f32) -> f32 {
    (1.0 / (1.0 + f64::from(s0 - s1).exp())) as f32
}

fn write_f32(path: PathBuf, ct: &CtVolume, values: &[f32], what: &str) -> Result<PathBuf> {
    let mut header = ct.header.clone();
    header.datatype = nifti::Datatype::F32.code();
    header.bitpix = 32;
    header.scl_slope = 1.0;
    header.scl_inter = 0.0;
    header.cal_min = 0.0;
    header.cal_max = 0.0;
    header.intent_code = 0;
    header.set_description(what);
    let mut w = Writer::<f32>::create(&path, &header)
        .with_context(|| format!("writing {}", path.display()))?;
    w.write(values)
        .with_context(|| format!("writing {}", path.display()))?;
    w.finish()
        .with_context(|| format!("writing {}", path.display()))
}

fn write(
    args: &Args,
    card: &Card,
    ct: &CtVolume,
    o: &Outputs,
    wall: f64,
    warnings: &[bunet_harness::volume::Warning],
) -> Result<()> {
    let mask_path = output::write_mask(&args.out.join("mask.nii.gz"), ct, &o.mask)?;
    let prob: Vec<f32> = o
        .score0
        .iter()
        .zip(&o.score1)
        .map(|(&a, &b)| probability(a, b))
        .collect();
    let class1 = card
        .metadata
        .classes
        .get(1)
        .map_or("class 1", String::as_str);
    write_f32(
        args.out.join("probabilities.nii.gz"),
        ct,
        &prob,
        &format!("bunet P({class1})"),
    )?;
    if args.logits {
        write_f32(
            args.out.join("logits_class0.nii.gz"),
            ct,
            &o.score0,
            "bunet score class 0",
        )?;
        write_f32(
            args.out.join("logits_class1.nii.gz"),
            ct,
            &o.score1,
            "bunet score class 1",
        )?;
    }
    let precision = match args.precision {
        Precision::Float => "float",
        Precision::Q32 => "q32",
        Precision::Q24 => "q24",
    };
    let summary = MaskSummary::of(ct, &o.mask);
    let report = serde_json::json!({
        "command": "infer",
        "input": args.input.display().to_string(),
        "weights": args.weights.label(),
        "architecture": card.arch.to_string(),
        "input_normalisation": card.metadata.input.to_string(),
        "head": card.metadata.head.name(),
        "classes": card.metadata.classes,
        "precision": precision,
        "slices": [0, ct.dims[2]],
        "wall_s": wall,
        "mask": summary,
        "warnings": warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
    });
    let report_path = args.out.join("report.json");
    std::fs::write(
        &report_path,
        serde_json::to_string_pretty(&report).context("report")?,
    )
    .with_context(|| format!("writing {}", report_path.display()))?;
    println!(
        "inferred {} ({}x{}x{}) in {precision} in {}: {} {class1} voxels ({:.1} ml); wrote {}, \
         probabilities.nii.gz{}, report.json",
        args.input.display(),
        ct.dims[0],
        ct.dims[1],
        ct.dims[2],
        report::seconds(wall),
        summary.positive_voxels,
        summary.positive_ml,
        mask_path.display(),
        if args.logits {
            ", logits_class{0,1}.nii.gz"
        } else {
            ""
        },
    );
    Ok(())
}
