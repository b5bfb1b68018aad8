//! `bunet segment`: the hospital. Reads a CT volume (NIfTI), segments it slice by slice with the
//! secure protocol against a `bunet serve`, and writes the mask (NIfTI, the scan's geometry),
//! PNG overlays of chosen slices and the client's cost report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bunet_harness::output;
use bunet_harness::report;
use bunet_harness::session;
use bunet_harness::volume::CtVolume;
use bunet_unet::Architecture;

use super::common::{self, SessionArgs};
use super::progress;

/// Options of `bunet segment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CT volume (NIfTI-1, .nii or .nii.gz, in Hounsfield units).
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    /// The server (`bunet serve`) to segment with.
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "HOST:PORT")]
    server: String,
    /// Output directory: mask.nii.gz, overlay_zNNN.png, report.json (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    /// The model's architecture as the server's weights declare it (the handshake checks it).
    #[arg(long, default_value_t = Architecture::seed(), value_parser = common::parse_arch)]
    arch: Architecture,
    /// Segment only slices A..B (half-open, 0-based); the mask is 0 elsewhere.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    slices: Option<(usize, usize)>,
    /// Slices to draw as overlays (repeatable; default: the 3 with the largest mask).
    #[arg(long = "overlay", value_name = "Z")]
    overlays: Vec<usize>,
}

/// Parses `A..B` (half-open) or a single slice `K`.
pub fn parse_range(text: &str) -> Result<(usize, usize), String> {
    let num = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{s}` is not a slice number"))
    };
    let (a, b) = match text.split_once("..") {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let k = num(text)?;
            (k, k + 1)
        }
    };
    if a >= b {
        return Err(format!("empty slice range {a}..{b}"));
    }
    Ok((a, b))
}

/// Reads a CT volume.
pub fn read_ct(path: &Path) -> Result<CtVolume> {
    let image =
        bunet_harness::nifti::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(CtVolume::from_image(image))
}

/// Runs `bunet segment`.
pub fn run(args: &Args) -> Result<()> {
    let ct = read_ct(&args.input)?;
    let vol = ct.prepare(&args.arch)?;
    let [nx, ny, nz] = ct.dims;
    let (a, b) = args.slices.unwrap_or((0, nz));
    if b > nz {
        return Err(bunet_harness::volume::Error::Slice { z: b - 1, nz }.into());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let config = args.session.config();
    let slices: Vec<usize> = (a..b).collect();
    let mut ch = session::connect(&args.server)?;
    let steps = bunet_unet::QuantPlan::new(&args.arch, config.preset.quant())?
        .steps()
        .len();
    let pb = progress::bar((slices.len() * steps) as u64, "segment");
    let run = session::run_client(&mut ch, &args.arch, config, &vol, &slices, || pb.inc(1))
        .with_context(|| format!("secure segmentation with {}", args.server))?;
    pb.finish_and_clear();

    let plane = nx * ny;
    let mut mask = vec![0u8; plane * nz];
    for (&z, m) in run.slices.iter().zip(&run.masks) {
        mask[z * plane..(z + 1) * plane].copy_from_slice(m);
    }
    let mask_path = output::write_mask(&args.out.join("mask.nii.gz"), &ct, &mask)?;
    let overlays = if args.overlays.is_empty() {
        output::busiest_slices(&mask, plane, 3)
    } else {
        args.overlays.clone()
    };
    let pngs = output::write_overlays(&args.out, &ct, &mask, &overlays)?;
    let report_path = args.out.join("report.json");
    std::fs::write(&report_path, run.report.to_json())
        .with_context(|| format!("writing {}", report_path.display()))?;
    let t = run.report.total();
    println!(
        "segmented slices {a}..{b} of {} ({nx}x{ny}x{nz}) with {} ({}, {} backend) in {}: {} lesion voxels; \
         sent {}, received {}; wrote {}, {} overlay(s), {}",
        args.input.display(),
        args.server,
        config.preset.name(),
        config.nonlinear.name(),
        report::seconds(run.wall.as_secs_f64()),
        mask.iter().filter(|&&v| v != 0).count(),
        report::bytes(t.bytes_sent),
        report::bytes(t.bytes_received),
        mask_path.display(),
        pngs.len(),
        report_path.display()
    );
    Ok(())
}
