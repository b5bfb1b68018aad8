//! `bunet table1`: the seed's Table 1 — Dice of the float, q32 and q24 masks and runtimes.
//!
//! The secure mask equals the fixed-point reference bit for bit, so Dice over whole volumes comes
//! from the fixed-point reference; sampled slices are run through the secure protocol (two
//! parties over loopback TCP) and checked bit for bit against it, and their measured cost is
//! extrapolated to a volume.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bunet_crypto::nonlinear::Backend;
use bunet_harness::breakdown::Breakdown;
use bunet_harness::extrapolate::Extrapolation;
use bunet_harness::metrics::Overlap;
use bunet_harness::opcount::SliceCount;
use bunet_harness::reference::{Reference, Segmentation};
use bunet_harness::report::{self, Table};
use bunet_harness::synth::{Params, Phantom};
use bunet_harness::volume::{CtVolume, Prepared};
use bunet_harness::{output, session};
use bunet_unet::secure::{Preset, SessionConfig};

use super::common::OutDir;
use super::common::{self, WeightsArgs};
use super::progress;

/// Options of `bunet table1`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seeds of the synthetic volumes (default: the held-out seeds of tools/train.py).
    #[arg(long, value_delimiter = ',', default_values_t = [9000u64, 9001, 9002, 9003])]
    seeds: Vec<u64>,
    /// In-plane size of the synthetic volumes.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=512))]
    size: u16,
    /// Slices of the synthetic volumes.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u16).range(1..=512))]
    slices: u16,
    /// CT volumes (NIfTI) to use instead of synthetic ones (repeatable).
    #[arg(long = "input", value_name = "PATH")]
    inputs: Vec<PathBuf>,
    /// Ground-truth masks of the --input volumes, in the same order (optional).
    #[arg(long = "label", value_name = "PATH")]
    labels: Vec<PathBuf>,
    #[command(flatten)]
    weights: WeightsArgs,
    /// Backend of the nonlinear layers in the secure runs.
    #[arg(long, default_value = common::DEFAULT_BACKEND, value_parser = common::backend_parser())]
    backend: Backend,
    /// Backend of the linear layers: `coeff` (coefficient encoding, the default; weights up to
    /// ±2^24 in the first conv, ±2^16 in the others), `dft` (the seed's; any weight) or
    /// `coeff-ew` (coefficient encoding with the server's weights encrypted once per session;
    /// any weight).
    #[arg(long, default_value = common::DEFAULT_LINEAR, value_parser = common::linear_parser())]
    linear: bunet_unet::secure::LinearBackend,
    /// Fixed-point presets (columns), repeatable; default both.
    #[arg(long = "preset", value_parser = common::preset_parser(), default_values_t = Preset::ALL)]
    presets: Vec<Preset>,
    /// Slices run through the secure protocol per preset (the first volume's slices with the
    /// most lesion voxels, by its ground truth if given); 0 skips the secure runs.
    #[arg(long, default_value_t = 1)]
    secure_slices: usize,
    /// Output directory: table1.md, table1.csv (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

struct Volume {
    name: String,
    ct: CtVolume,
    label: Option<Vec<u8>>,
}

/// Per preset: what the fixed-point reference and the secure samples gave.
struct Column {
    preset: Preset,
    /// `k` of the calibrated activation scale `2^k` folded into the server's weights.
    activation_scale: u32,
    vs_float: Overlap,
    vs_truth: Overlap,
    reference_s: f64,
    masks: Vec<Segmentation>,
    secure: Option<Secure>,
}

struct Secure {
    slices: Vec<usize>,
    identical: usize,
    slice_s: f64,
    slice_bytes: u64,
    volume: Extrapolation,
}

fn volumes(args: &Args) -> Result<Vec<Volume>> {
    if !args.labels.is_empty() && args.labels.len() != args.inputs.len() {
        return Err(super::Usage(format!(
            "{} --label for {} --input: give one label per input or none",
            args.labels.len(),
            args.inputs.len()
        ))
        .into());
    }
    if !args.inputs.is_empty() {
        return args
            .inputs
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let ct = super::segment::read_ct(path)?;
                let label = match args.labels.get(i) {
                    Some(l) => {
                        let img = bunet_harness::nifti::read(l)
                            .with_context(|| format!("reading {}", l.display()))?;
                        if img.dims != ct.dims {
                            return Err(super::BadData(format!(
                                "label {} is {:?} voxels, its CT {} is {:?}",
                                l.display(),
                                img.dims,
                                path.display(),
                                ct.dims
                            ))
                            .into());
                        }
                        Some(img.data.iter().map(|&v| u8::from(v > 0.5)).collect())
                    }
                    None => None,
                };
                Ok(Volume {
                    name: path.display().to_string(),
                    ct,
                    label,
                })
            })
            .collect();
    }
    args.seeds
        .iter()
        .map(|&seed| {
            let ph = Phantom::new(Params {
                dims: [
                    usize::from(args.size),
                    usize::from(args.size),
                    usize::from(args.slices),
                ],
                seed,
            })?;
            let (ct, label) = CtVolume::from_phantom(&ph)?;
            Ok(Volume {
                name: format!("synthetic seed {seed}"),
                ct,
                label: Some(label),
            })
        })
        .collect()
}

/// Runs `bunet table1`: the float and fixed-point references on every volume, secure samples
/// of the first volume checked against them, and the table.
pub fn run(args: &Args) -> Result<()> {
    let model = args.weights.load()?;
    let arch = *model.arch();
    let vols = volumes(args)?;
    if vols.is_empty() {
        return Err(super::Usage("no volumes: give --seeds or --input".into()).into());
    }
    for v in &vols {
        for w in
            v.ct.check(model.metadata().spacing)
                .with_context(|| format!("checking {}", v.name))?
        {
            eprintln!("bunet table1: warning: {}: {w}", v.name);
        }
    }
    let out = OutDir::create(&args.out)?;
    let prepared = vols
        .iter()
        .map(|v| v.ct.prepare_with(&arch, &model.metadata().input))
        .collect::<Result<Vec<_>, _>>()?;
    let total_slices: usize = prepared.iter().map(|p| p.slices()).sum();
    let pb = progress::bar(
        (total_slices * (1 + args.presets.len())) as u64,
        "references",
    );
    let float = float_reference(&model, &vols, &prepared, &pb)?;
    let mut columns = Vec::new();
    for &preset in &args.presets {
        columns.push(fixed_column(
            &model,
            preset,
            &vols,
            &prepared,
            &float.masks,
            &pb,
        )?);
    }
    pb.finish_and_clear();
    if args.secure_slices > 0 {
        for col in &mut columns {
            col.secure = Some(secure_sample(args, &model, &vols[0], &prepared[0], col)?);
        }
    }

    let (md, csv) = render(args, &arch, &vols, &float, &columns);
    let md_path = args.out.join("table1.md");
    let csv_path = args.out.join("table1.csv");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    std::fs::write(&csv_path, &csv).with_context(|| format!("writing {}", csv_path.display()))?;
    print!("{md}");
    println!("wrote {} and {}", md_path.display(), csv_path.display());
    if let Some(bad) = columns.iter().find(|c| {
        c.secure
            .as_ref()
            .is_some_and(|s| s.identical != s.slices.len())
    }) {
        bail!(
            "the secure {} masks differ from the fixed-point reference (a bug)",
            bad.preset.name()
        );
    }
    out.keep();
    Ok(())
}

/// The float reference's masks, its Dice against ground truth and its time.
struct FloatColumn {
    masks: Vec<Segmentation>,
    vs_truth: Overlap,
    seconds: f64,
}

/// The float reference on every volume.
fn float_reference(
    model: &bunet_unet::Model,
    vols: &[Volume],
    prepared: &[Prepared],
    pb: &progress::Progress,
) -> Result<FloatColumn> {
    let mut col = FloatColumn {
        masks: Vec::new(),
        vs_truth: Overlap::default(),
        seconds: 0.0,
    };
    for (v, p) in vols.iter().zip(prepared) {
        let seg = Reference::Float(model).segment(p, |_| pb.inc(1))?;
        if let Some(l) = &v.label {
            col.vs_truth.add(&Overlap::of(&seg.mask, l));
        }
        col.seconds += seg.wall.as_secs_f64();
        col.masks.push(seg);
    }
    Ok(col)
}

/// The fixed-point reference of `preset` on every volume: Dice against float and against
/// ground truth.
fn fixed_column(
    model: &bunet_unet::Model,
    preset: Preset,
    vols: &[Volume],
    prepared: &[Prepared],
    float_masks: &[Segmentation],
    pb: &progress::Progress,
) -> Result<Column> {
    let qm = common::quantise(model, preset)?;
    let mut col = Column {
        preset,
        activation_scale: qm.activation_scale(),
        vs_float: Overlap::default(),
        vs_truth: Overlap::default(),
        reference_s: 0.0,
        masks: Vec::new(),
        secure: None,
    };
    for ((v, p), f) in vols.iter().zip(prepared).zip(float_masks) {
        let seg = Reference::Fixed(&qm).segment(p, |_| pb.inc(1))?;
        col.vs_float.add(&Overlap::of(&seg.mask, &f.mask));
        if let Some(l) = &v.label {
            col.vs_truth.add(&Overlap::of(&seg.mask, l));
        }
        col.reference_s += seg.wall.as_secs_f64();
        col.masks.push(seg);
    }
    Ok(col)
}

/// Secure samples of `col`'s preset on the first volume (`vol`, prepared as `first`), checked
/// against its fixed-point masks, with their cost extrapolated to the volume.
fn secure_sample(
    args: &Args,
    model: &bunet_unet::Model,
    vol: &Volume,
    first: &Prepared,
    col: &Column,
) -> Result<Secure> {
    let arch = *model.arch();
    let plane = vol.ct.plane_len();
    // Slices with lesions: by the ground truth where there is one, else by the mask.
    let by = vol.label.as_deref().unwrap_or(&col.masks[0].mask);
    let slices = output::busiest_slices(by, plane, args.secure_slices);
    let config = SessionConfig {
        nonlinear: args.backend,
        linear: args.linear,
        ..SessionConfig::new(col.preset)
    };
    let qm = common::quantise(model, col.preset)?;
    let steps = qm.plan().steps().len();
    let pb = progress::bar((slices.len() * steps) as u64, col.preset.name());
    let (run, server) = session::run_local(qm.clone(), config, first, &slices, || pb.inc(1))
        .with_context(|| format!("secure {} run", col.preset.name()))?;
    pb.finish_and_clear();
    let identical = run
        .slices
        .iter()
        .zip(&run.masks)
        .filter(|(z, m)| col.masks[0].slice(plane, **z) == m.as_slice())
        .count();
    let bd: Breakdown = session::breakdown(
        &arch,
        &config,
        &run,
        first.input_dims(),
        session::rows(&server),
    );
    let count = SliceCount::new(
        qm.plan(),
        &config.preset.pahe_params(),
        first.input_dims(),
        None,
        config.linear,
    )?;
    let volume = Extrapolation::new(&bd, run.slices_wall().as_secs_f64(), &count, first.slices());
    let n = run.slices.len() as f64;
    let per_slice_bytes = volume
        .rows
        .iter()
        .filter(|r| !r.per_session)
        .map(|r| r.measured_bytes)
        .sum::<u64>() as f64
        / n;
    Ok(Secure {
        slice_s: run.slices_wall().as_secs_f64() / n,
        slice_bytes: per_slice_bytes.round() as u64,
        slices: run.slices,
        identical,
        volume,
    })
}

/// The table's rows in Markdown (labels, formatted) and CSV (keys, raw) at once.
struct Rows<'a> {
    md: Table,
    csv: Table,
    columns: &'a [Column],
}

impl Rows<'_> {
    /// One row: its Markdown label, its CSV key, the float column's cells and each preset's.
    fn row(
        &mut self,
        label: &str,
        key: &str,
        float: (String, String),
        per: &dyn Fn(&Column) -> (String, String),
    ) {
        let mut m = vec![label.to_string(), float.0];
        let mut c = vec![key.to_string(), float.1];
        for col in self.columns {
            let (a, b) = per(col);
            m.push(a);
            c.push(b);
        }
        self.md.push(m);
        self.csv.push(c);
    }
}

fn dash() -> (String, String) {
    ("—".to_string(), String::new())
}

fn dice(o: &Overlap) -> String {
    format!("{:.4}", o.dice())
}

/// `table1.md` and `table1.csv`.
fn render(
    args: &Args,
    arch: &bunet_unet::Architecture,
    vols: &[Volume],
    float: &FloatColumn,
    columns: &[Column],
) -> (String, String) {
    let mut header = vec!["".to_string(), "Float".to_string()];
    header.extend(columns.iter().map(|c| c.preset.name().to_string()));
    let mut rows = Rows {
        md: Table::new(header),
        csv: Table::new(
            ["metric", "float"]
                .into_iter()
                .map(String::from)
                .chain(columns.iter().map(|c| c.preset.name().to_string())),
        ),
        columns,
    };
    reference_rows(&mut rows, vols.iter().all(|v| v.label.is_some()), float);
    if columns.iter().any(|c| c.secure.is_some()) {
        secure_rows(&mut rows, args);
    }
    let [nx, ny, nz] = vols[0].ct.dims;
    let mut text = format!(
        "# BUNET Table 1\n\n{} volume(s) ({}; first is {nx}×{ny}×{nz}), weights {}, architecture `{arch}`, \
         nonlinear backend `{}`, linear backend `{}`. Machine: {}{}.\n\n",
        vols.len(),
        vols.iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        args.weights.label(),
        args.backend.name(),
        args.linear.name(),
        report::machine(),
        report::load_average().map_or(String::new(), |l| format!(", load average {l:.1}")),
    );
    text.push_str(&rows.md.to_markdown());
    text.push_str(
        "\nDice over whole volumes is computed on the fixed-point reference, which the secure \
         protocol reproduces bit for bit (checked on the sampled slices above). Secure times and \
         bytes are measured on the sampled slices of the first volume (client and server on this \
         machine over loopback TCP) and extrapolated to its slices; `bunet replay` does the same \
         for 512×512×512.\n",
    );
    (text, rows.csv.to_csv())
}

/// Quantization, Dice against float and ground truth, reference times.
fn reference_rows(rows: &mut Rows<'_>, has_truth: bool, float: &FloatColumn) {
    rows.row("Quantization", "quantization", dash(), &|c| {
        let q = c.preset.quant();
        let t = format!(
            "{}-bit int., {}-bit frac. (p = {}), activations scaled by 2^{}",
            q.int_bits, q.frac_bits, q.p, c.activation_scale
        );
        (t.clone(), t)
    });
    rows.row(
        "Dice against float (whole volumes)",
        "dice_vs_float",
        ("1.0".into(), "1".into()),
        &|c| (dice(&c.vs_float), format!("{:.6}", c.vs_float.dice())),
    );
    rows.row(
        "Voxels differing from float",
        "voxels_differing_from_float",
        ("0".into(), "0".into()),
        &|c| {
            (
                c.vs_float.differing().to_string(),
                c.vs_float.differing().to_string(),
            )
        },
    );
    if has_truth {
        let truth = float.vs_truth;
        rows.row(
            "Dice against ground truth",
            "dice_vs_truth",
            (dice(&truth), format!("{:.6}", truth.dice())),
            &|c| (dice(&c.vs_truth), format!("{:.6}", c.vs_truth.dice())),
        );
    }
    let float_s = float.seconds;
    rows.row(
        "Plaintext reference time, all volumes",
        "reference_s",
        (report::seconds(float_s), format!("{float_s:.3}")),
        &|c| {
            (
                report::seconds(c.reference_s),
                format!("{:.3}", c.reference_s),
            )
        },
    );
}

/// The secure samples: bit-exactness, measured and extrapolated time and bytes.
fn secure_rows(rows: &mut Rows<'_>, args: &Args) {
    rows.row(
        "Secure slices run, bit-identical to the fixed-point reference",
        "secure_slices_identical",
        dash(),
        &|c| {
            sec(c, |s| {
                let list: Vec<String> = s.slices.iter().map(|z| z.to_string()).collect();
                (
                    format!(
                        "{}/{} (slices {})",
                        s.identical,
                        s.slices.len(),
                        list.join(", ")
                    ),
                    format!("{}/{}", s.identical, s.slices.len()),
                )
            })
        },
    );
    rows.row(
        &format!("Secure time per slice (measured, {})", args.backend.name()),
        "secure_slice_s",
        dash(),
        &|c| {
            sec(c, |s| {
                (report::seconds(s.slice_s), format!("{:.3}", s.slice_s))
            })
        },
    );
    rows.row(
        "Secure bytes per slice (measured, both directions)",
        "secure_slice_bytes",
        dash(),
        &|c| {
            sec(c, |s| {
                (report::bytes(s.slice_bytes), s.slice_bytes.to_string())
            })
        },
    );
    rows.row(
        "Secure time per volume (extrapolated: set-up + slices × measured)",
        "secure_volume_s",
        dash(),
        &|c| {
            sec(c, |s| {
                (
                    report::seconds(s.volume.volume_wall_s),
                    format!("{:.1}", s.volume.volume_wall_s),
                )
            })
        },
    );
    rows.row(
        "Secure bytes per volume (extrapolated)",
        "secure_volume_bytes",
        dash(),
        &|c| {
            sec(c, |s| {
                (
                    report::bytes(s.volume.volume_bytes),
                    s.volume.volume_bytes.to_string(),
                )
            })
        },
    );
}

fn sec(c: &Column, f: impl Fn(&Secure) -> (String, String)) -> (String, String) {
    c.secure
        .as_ref()
        .map_or_else(|| (String::new(), String::new()), f)
}
