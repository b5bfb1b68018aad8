//! `bunet segment`: the hospital. Reads a CT volume (NIfTI), segments it slice by slice (a 2.5D
//! UNet) or by slab (a volume UNet) with the secure protocol against a `bunet serve`, and writes
//! the mask (NIfTI, the scan's geometry), PNG overlays of chosen slices and the client's cost
//! report. With `--shard I/K` or `--slices A..B` it runs one shard of the volume and writes a
//! partial mask with a manifest instead (see [`bunet_harness::shard`]); `bunet merge` joins them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bunet_harness::output;
use bunet_harness::report;
use bunet_harness::session::{self, ClientRun};
use bunet_harness::shard::{self, Job, ModelId, ProtocolId, Range, VolumeId};
use bunet_harness::volume::{self, CtVolume};
use bunet_unet::{Architecture, Dims};

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
    /// Output directory (created if missing): mask.nii.gz, overlay_zNNN.png, report.json; for a
    /// shard (--shard, --slices) part.nii.gz, report.json and manifest.json (written last).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    /// The model's architecture as the server's weights declare it (the handshake checks it).
    #[arg(long, default_value_t = Architecture::seed(), value_parser = common::parse_arch)]
    arch: Architecture,
    /// Run the shard of slices A..B (half-open, 0-based): a partial mask and a manifest in DIR,
    /// for `bunet merge`.
    #[arg(long, value_name = "A..B", value_parser = parse_range, conflicts_with = "shard")]
    slices: Option<(usize, usize)>,
    /// Run shard I of K (0-based I): the I-th of K contiguous, near-equal slice ranges. A DIR
    /// that already holds this shard, verified, is skipped without connecting (resume).
    #[arg(long, value_name = "I/K", value_parser = shard::parse_shard)]
    shard: Option<(usize, usize)>,
    /// The model's name or digest as the provider publishes it: recorded in a shard's manifest
    /// so that `bunet merge` refuses shards of another model of the same architecture (the
    /// handshake cannot tell: the weights stay secret).
    #[arg(long, value_name = "TEXT")]
    model_id: Option<String>,
    /// Sessions run at once (2D networks): the slices are split into JOBS contiguous shares,
    /// each run in its own session and connection, so one session's transfers overlap
    /// another's compute (what a slow link needs; the server must take JOBS clients).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Slices to draw as overlays (repeatable; default: the 3 with the largest mask, none for a
    /// shard).
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
    let started = shard::unix_now();
    let ct = read_ct(&args.input)?;
    let nz = ct.dims[2];
    let core = core_range(args, nz)?;
    let (a, b) = core.unwrap_or((0, nz));
    let config = args.session.config();
    let slab = (args.arch.dims == Dims::Three).then(|| shard::slab(&args.arch, (a, b), nz));
    let job = core.map(|_| Job {
        volume: VolumeId::of(&ct),
        model: ModelId::new(&args.arch, args.model_id.as_deref()),
        protocol: ProtocolId::new(&args.arch, &config),
        range: Range { core: [a, b], slab },
    });
    if let Some(job) = &job {
        match shard::load_verified(&args.out) {
            Ok(done) if done.job == *job => {
                println!(
                    "skipped slices {a}..{b} of {}: {} already holds them (manifest and part verify)",
                    args.input.display(),
                    args.out.display()
                );
                return Ok(());
            }
            // Another job's finished shard is replaced, said aloud: a scheduler that reuses a
            // directory for another range or model should not lose it silently.
            Ok(_) => eprintln!(
                "bunet segment: {} holds a finished shard of another job; replacing it",
                args.out.display()
            ),
            Err(_) => {}
        }
    }
    let vol = ct.prepare(&args.arch)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    if job.is_some() {
        shard::forget(&args.out)?;
    }
    let run = run_session(args, &vol, (a, b), slab.map(|s| (s.start, s.end)))?;
    let plane = ct.plane_len();
    let mut core_mask = vec![0u8; plane * (b - a)];
    for (&z, m) in run.slices.iter().zip(&run.masks) {
        if (a..b).contains(&z) {
            core_mask[(z - a) * plane..(z - a + 1) * plane].copy_from_slice(m);
        }
    }
    match job {
        Some(job) => write_shard(args, &ct, job, &core_mask, &run, started),
        None => write_volume(args, &ct, &core_mask, &run),
    }
}

/// The core slices asked for: `--shard`, `--slices`, or none (the whole volume, not a shard).
fn core_range(args: &Args, nz: usize) -> Result<Option<(usize, usize)>> {
    Ok(match (args.shard, args.slices) {
        (Some((i, k)), _) => Some(shard::shard_range(i, k, nz)?),
        (None, Some((_, b))) if b > nz => {
            return Err(volume::Error::Slice { z: b - 1, nz }.into());
        }
        (None, range) => range,
    })
}

/// Connects and runs the secure session: slices `a..b` one by one (2.5D), or the slab.
fn run_session(
    args: &Args,
    vol: &volume::Prepared,
    (a, b): (usize, usize),
    slab: Option<(usize, usize)>,
) -> Result<ClientRun> {
    let config = args.session.config();
    let steps = bunet_unet::QuantPlan::new(&args.arch, config.preset.quant())?
        .steps()
        .len();
    let run = match slab {
        None if args.jobs > 1 => {
            let slices: Vec<usize> = (a..b).collect();
            let pb = progress::bar((slices.len() * steps) as u64, "segment");
            let tick = || pb.inc(1);
            let run = session::run_client_jobs(
                &args.server,
                &args.arch,
                config,
                vol,
                &slices,
                usize::from(args.jobs),
                &tick,
            );
            pb.finish_and_clear();
            run
        }
        None => {
            let mut ch = session::connect(&args.server)?;
            let slices: Vec<usize> = (a..b).collect();
            let pb = progress::bar((slices.len() * steps) as u64, "segment");
            let run = session::run_client(&mut ch, &args.arch, config, vol, &slices, || {
                pb.inc(1);
            });
            pb.finish_and_clear();
            run
        }
        Some(range) => {
            let mut ch = session::connect(&args.server)?;
            let pb = progress::bar(steps as u64, "segment");
            let run = session::run_client_slab(&mut ch, &args.arch, config, vol, range, || {
                pb.inc(1);
            });
            pb.finish_and_clear();
            run
        }
    };
    run.with_context(|| format!("secure segmentation with {}", args.server))
}

/// A shard's outputs: part, report, requested overlays, and the manifest last.
fn write_shard(
    args: &Args,
    ct: &CtVolume,
    job: Job,
    core_mask: &[u8],
    run: &ClientRun,
    started: f64,
) -> Result<()> {
    let [a, b] = job.range.core;
    let part = shard::write_part(&args.out, ct, (a, b), core_mask)?;
    let report = run.report.to_json();
    shard::write_atomic(&args.out, "report.json", report.as_bytes())?;
    let overlays: Vec<usize> = args
        .overlays
        .iter()
        .copied()
        .filter(|z| (a..b).contains(z))
        .collect();
    if !overlays.is_empty() {
        let plane = ct.plane_len();
        let mut mask = vec![0u8; plane * ct.dims[2]];
        mask[a * plane..b * plane].copy_from_slice(core_mask);
        output::write_overlays(&args.out, ct, &mask, &overlays)?;
    }
    let manifest = shard::Manifest {
        format: shard::FORMAT,
        job,
        part,
        timing: shard::Timing {
            started_unix_s: started,
            ended_unix_s: shard::unix_now(),
            session_wall_s: run.wall.as_secs_f64(),
        },
        report: serde_json::from_str(&report).context("re-reading the client report")?,
    };
    let path = shard::write_manifest(&args.out, &manifest)?;
    let t = run.report.total();
    println!(
        "segmented slices {a}..{b} of {} with {} ({}, {} backend) in {}: {} lesion voxels; \
         sent {}, received {}; wrote shard {}",
        args.input.display(),
        args.server,
        manifest.job.protocol.preset,
        manifest.job.protocol.backend,
        report::seconds(run.wall.as_secs_f64()),
        core_mask.iter().filter(|&&v| v != 0).count(),
        report::bytes(t.bytes_sent),
        report::bytes(t.bytes_received),
        path.display()
    );
    Ok(())
}

/// A whole volume's outputs: mask, overlays, report.
fn write_volume(args: &Args, ct: &CtVolume, mask: &[u8], run: &ClientRun) -> Result<()> {
    let [nx, ny, nz] = ct.dims;
    let mask_path = output::write_mask(&args.out.join("mask.nii.gz"), ct, mask)?;
    let overlays = if args.overlays.is_empty() {
        output::busiest_slices(mask, ct.plane_len(), 3)
    } else {
        args.overlays.clone()
    };
    let pngs = output::write_overlays(&args.out, ct, mask, &overlays)?;
    let report_path = args.out.join("report.json");
    std::fs::write(&report_path, run.report.to_json())
        .with_context(|| format!("writing {}", report_path.display()))?;
    let t = run.report.total();
    let config = args.session.config();
    println!(
        "segmented slices 0..{nz} of {} ({nx}x{ny}x{nz}) with {} ({}, {} backend) in {}: {} lesion voxels; \
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
