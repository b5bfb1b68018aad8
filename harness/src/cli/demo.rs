//! `bunet demo`: both parties on this machine over loopback TCP. Generates a small synthetic
//! chest CT, segments every slice with the secure protocol and the built-in weights, checks the
//! mask bit for bit against the fixed-point reference, and writes the CT, the ground truth, the
//! secure mask, overlays, the runtime breakdown and a report.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bunet_harness::metrics::Overlap;
use bunet_harness::reference::Reference;
use bunet_harness::report;
use bunet_harness::synth::{Params, Phantom};
use bunet_harness::volume::{self, CtVolume};
use bunet_harness::{nifti, output, session};

use super::common::OutDir;
use super::common::{self, SessionArgs, WeightsArgs};
use super::progress;

/// Options of `bunet demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// In-plane size of the synthetic scan (128: the resolution the built-in weights were
    /// trained at).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=512))]
    size: u16,
    /// Slices of the synthetic scan.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u16).range(1..=512))]
    slices: u16,
    /// Crop the scan in-plane to CROP × CROP voxels around its lesions (0: no crop). The demo
    /// volume is the crop: full resolution, a quarter of the secure work.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(0..=512))]
    crop: u16,
    /// Segment only this many consecutive slices, those with the most lesion (0: every slice);
    /// the mask is 0 on the others. Every slice costs the same secure work.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(0..=512))]
    segment: u16,
    /// Seed of the synthetic patient (9000–9003 were held out from training).
    #[arg(long, default_value_t = 9000)]
    seed: u64,
    /// Output directory (created if missing).
    #[arg(long, default_value = "bunet-demo", value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    weights: WeightsArgs,
}

/// The scan the demo segments: the synthetic CT cropped around its lesions, and its truth.
struct Scan {
    ct: CtVolume,
    label: Vec<u8>,
    /// In-plane extent of the crop (`n × n`).
    n: usize,
    /// Slices.
    nz: usize,
    /// Where the crop starts in the full scan.
    origin: (usize, usize),
}

impl Scan {
    fn plane(&self) -> usize {
        self.n * self.n
    }
}

/// The synthetic patient, cropped in-plane to `--crop` around its lesions.
fn synthetic_scan(args: &Args) -> Result<Scan> {
    let (size, nz) = (usize::from(args.size), usize::from(args.slices));
    let phantom = Phantom::new(Params {
        dims: [size, size, nz],
        seed: args.seed,
    })?;
    let (scan, scan_label) = CtVolume::from_phantom(&phantom)?;
    let n = match usize::from(args.crop) {
        0 => size,
        c => c.min(size),
    };
    let (x0, y0) = volume::busiest_window(&scan_label, scan.dims, n, n);
    let ct = scan.crop([x0, y0, 0], [n, n, nz])?;
    let label = volume::crop_mask(&scan_label, scan.dims, [x0, y0, 0], [n, n, nz])?;
    Ok(Scan {
        ct,
        label,
        n,
        nz,
        origin: (x0, y0),
    })
}

/// The first of the `k` consecutive slices with the most lesion voxels (the earliest on a tie).
fn busiest_slices(label: &[u8], plane: usize, nz: usize, k: usize) -> usize {
    let per_slice: Vec<usize> = (0..nz)
        .map(|z| {
            label[z * plane..(z + 1) * plane]
                .iter()
                .filter(|&&v| v != 0)
                .count()
        })
        .collect();
    (0..=nz - k)
        .max_by_key(|&a| {
            (
                per_slice[a..a + k].iter().sum::<usize>(),
                std::cmp::Reverse(a),
            )
        })
        .unwrap_or(0)
}

/// Writes the CT and the ground truth; returns their paths.
fn write_scan(args: &Args, scan: &Scan) -> Result<(PathBuf, PathBuf)> {
    let ct_path = args.out.join("ct.nii.gz");
    let voxels: Vec<i16> = (0..scan.nz).flat_map(|z| scan.ct.slice_i16(z)).collect();
    nifti::write(&ct_path, &scan.ct.header, &voxels)
        .with_context(|| format!("writing {}", ct_path.display()))?;
    let label_path = args.out.join("label.nii.gz");
    nifti::write_mask(&label_path, &scan.ct.header, &scan.label)
        .with_context(|| format!("writing {}", label_path.display()))?;
    Ok((ct_path, label_path))
}

/// The secure mask against the references and the truth, on the segmented slices.
struct Comparison {
    /// Segmented slices bit-identical to the fixed-point reference.
    identical: usize,
    vs_truth: Overlap,
    vs_float: Overlap,
    float_truth: Overlap,
    /// Lesion voxels: truth, secure, float.
    voxels: [usize; 3],
}

/// Compares the secure mask `secure` (whole volume, 0 off the segmented slices) with the
/// fixed-point and float references and the truth on `slices`.
fn compare(
    qm: &bunet_unet::QuantModel,
    model: &bunet_unet::Model,
    vol: &volume::Prepared,
    scan: &Scan,
    secure: &[u8],
    slices: &[usize],
) -> Result<Comparison> {
    let plane = scan.plane();
    let (first, k) = (slices[0], slices.len());
    let (mut fixed, mut float) = (Vec::new(), Vec::new());
    for &z in slices {
        fixed.extend(vol.crop(&Reference::Fixed(qm).segment_slice(vol, z)?));
        float.extend(vol.crop(&Reference::Float(model).segment_slice(vol, z)?));
    }
    let range = first * plane..(first + k) * plane;
    let (secure_k, label_k) = (&secure[range.clone()], &scan.label[range]);
    let identical = (0..k)
        .filter(|&i| fixed[i * plane..(i + 1) * plane] == secure_k[i * plane..(i + 1) * plane])
        .count();
    let lesion = |m: &[u8]| m.iter().filter(|&&v| v != 0).count();
    Ok(Comparison {
        identical,
        vs_truth: Overlap::of(secure_k, label_k),
        vs_float: Overlap::of(secure_k, &float),
        float_truth: Overlap::of(&float, label_k),
        voxels: [lesion(label_k), lesion(secure_k), lesion(&float)],
    })
}

/// Runs `bunet demo`: a synthetic scan, the secure segmentation of its busiest slices, the
/// comparison with the references and the truth, and the report.
pub fn run(args: &Args) -> Result<()> {
    let start = std::time::Instant::now();
    let scan = synthetic_scan(args)?;
    let (n, nz, plane) = (scan.n, scan.nz, scan.plane());
    let k = match usize::from(args.segment) {
        0 => nz,
        k => k.min(nz),
    };
    let first = busiest_slices(&scan.label, plane, nz, k);
    let slices: Vec<usize> = (first..first + k).collect();
    let out = OutDir::create(&args.out)?;
    let paths = write_scan(args, &scan)?;

    let model = args.weights.load()?;
    let arch = *model.arch();
    let config = args.session.config();
    let qm = common::quantise(&model, config.preset)?;
    let vol = scan.ct.prepare_with(&arch, &model.metadata().input)?;
    let size = args.size;
    let (x0, y0) = scan.origin;
    eprintln!(
        "bunet demo: segmenting slices {first}..{} of a {n}x{n}x{nz} synthetic CT (seed {}, \
         cropped at ({x0}, {y0}) from {size}x{size}) with the secure protocol ({}, {} backend), \
         client and server over loopback TCP",
        first + k,
        args.seed,
        config.preset.name(),
        config.nonlinear.name()
    );
    let pb = progress::bar((k * qm.plan().steps().len()) as u64, "secure");
    let (run, server) = session::run_local(qm.clone(), config, &vol, &slices, || pb.inc(1))
        .context("secure segmentation")?;
    pb.finish_and_clear();

    // The secure mask of the segmented slices (0 elsewhere); Dice is over those slices only.
    let mut secure = vec![0u8; plane * nz];
    for (&z, m) in run.slices.iter().zip(&run.masks) {
        secure[z * plane..(z + 1) * plane].copy_from_slice(m);
    }
    let cmp = compare(&qm, &model, &vol, &scan, &secure, &slices)?;

    let mask_path = output::write_mask(&args.out.join("mask.nii.gz"), &scan.ct, &secure)?;
    let shown = output::busiest_slices(&secure, plane, 3);
    let pngs = output::write_overlays(&args.out, &scan.ct, &secure, &shown)?;
    let server_rows = session::rows(&server);
    let bd = session::breakdown(&arch, &config, &run, vol.input_dims(), server_rows);
    let json_path = args.out.join("breakdown.json");
    std::fs::write(&json_path, bd.to_json())
        .with_context(|| format!("writing {}", json_path.display()))?;
    let svg_path = args.out.join("breakdown.svg");
    std::fs::write(&svg_path, bd.to_svg())
        .with_context(|| format!("writing {}", svg_path.display()))?;

    let summary = Summary {
        args,
        scan: &scan,
        paths: &paths,
        arch: &arch,
        config: &config,
        run: &run,
        slices: &slices,
        cmp: &cmp,
        pngs: &pngs,
    };
    let mut md = summary.markdown();
    md.push_str(&bd.to_markdown());
    let md_path = args.out.join("report.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    let total = run.report.total();
    println!(
        "bunet demo: {k} slices of {n}x{n} segmented securely ({}, {}) in {}; \
         bit-identical to the fixed-point reference on {}/{k} slices; \
         Dice vs ground truth {:.4}, vs float {:.4}; client sent {}, received {}.\n\
         wrote {} (mask), {} overlay(s), {}, {} (total {})",
        config.preset.name(),
        config.nonlinear.name(),
        report::seconds(run.wall.as_secs_f64()),
        cmp.identical,
        cmp.vs_truth.dice(),
        cmp.vs_float.dice(),
        report::bytes(total.bytes_sent),
        report::bytes(total.bytes_received),
        mask_path.display(),
        pngs.len(),
        svg_path.display(),
        md_path.display(),
        report::seconds(start.elapsed().as_secs_f64()),
    );
    if cmp.identical != k {
        bail!(
            "the secure mask differs from the fixed-point reference on {} slice(s) (a bug)",
            k - cmp.identical
        );
    }
    out.keep();
    Ok(())
}

/// What the report's summary says.
struct Summary<'a> {
    args: &'a Args,
    scan: &'a Scan,
    /// The CT's and the truth's files.
    paths: &'a (PathBuf, PathBuf),
    arch: &'a bunet_unet::Architecture,
    config: &'a bunet_unet::secure::SessionConfig,
    run: &'a session::ClientRun,
    slices: &'a [usize],
    cmp: &'a Comparison,
    pngs: &'a [PathBuf],
}

impl Summary<'_> {
    /// The report's header and summary table (the breakdown follows it).
    fn markdown(&self) -> String {
        let (args, cmp, config) = (self.args, self.cmp, self.config);
        let (n, nz, (x0, y0)) = (self.scan.n, self.scan.nz, self.scan.origin);
        let size = args.size;
        let (first, k) = (self.slices[0], self.slices.len());
        let total = self.run.report.total();
        let [t, s, f] = cmp.voxels;
        format!(
            "# BUNET demo\n\n\
             - Volume: synthetic chest CT, seed {seed}, {size}×{size}×{nz} cropped in-plane to \
               {n}×{n} at ({x0}, {y0}) ({ct}), ground truth {label}.\n\
             - Model: `{arch}`, weights {weights}.\n\
             - Session: preset **{preset}**, nonlinear backend **{backend}**; client and server in \
               this process over loopback TCP.\n\
             - Machine: {machine}{load}.\n\n\
             | | |\n| --- | --- |\n\
             | slices segmented securely | {first}..{last} ({k} of {nz}; the mask is 0 on the others) |\n\
             | secure session wall time (set-up + {k} slices) | {secure} |\n\
             | client sent / received | {sent} / {recv} |\n\
             | secure mask = fixed-point reference, bit for bit | {identical}/{k} slices |\n\
             | Dice secure mask vs ground truth (segmented slices) | {d_truth:.4} |\n\
             | Dice secure mask vs float mask (segmented slices) | {d_float:.4} |\n\
             | Dice float mask vs ground truth (segmented slices) | {d_ft:.4} |\n\
             | lesion voxels: truth / secure / float (segmented slices) | {t} / {s} / {f} |\n\n\
             Outputs: `mask.nii.gz` (the secure mask, the CT's geometry), {pngs}, `breakdown.json`, \
             `breakdown.svg`.\n\n## Runtime breakdown (both parties)\n\n",
            seed = args.seed,
            ct = self.paths.0.display(),
            label = self.paths.1.display(),
            arch = self.arch,
            weights = args.weights.label(),
            preset = config.preset.name(),
            backend = config.nonlinear.name(),
            machine = report::machine(),
            load =
                report::load_average().map_or(String::new(), |l| format!(", load average {l:.1}")),
            secure = report::seconds(self.run.wall.as_secs_f64()),
            sent = report::bytes(total.bytes_sent),
            recv = report::bytes(total.bytes_received),
            identical = cmp.identical,
            d_truth = cmp.vs_truth.dice(),
            d_float = cmp.vs_float.dice(),
            d_ft = cmp.float_truth.dice(),
            last = first + k,
            pngs = self
                .pngs
                .iter()
                .filter_map(|p| p.file_name().map(|f| format!("`{}`", f.to_string_lossy())))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}
