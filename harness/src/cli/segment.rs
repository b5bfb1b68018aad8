//! `bunet segment`: the hospital. Reads a CT volume (NIfTI), segments it slice by slice (a 2.5D
//! UNet) or by slab (a volume UNet) with the secure protocol against a `bunet serve`, and writes
//! the mask (NIfTI, the scan's geometry), PNG overlays of chosen slices and the client's cost
//! report. With `--shard I/K` or `--slices A..B` it runs one shard of the volume and writes a
//! partial mask with a manifest instead (see [`bunet_harness::shard`]); `bunet merge` joins them.

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bunet_harness::model::{self, Card};
use bunet_harness::output::{self, MaskSummary};
use bunet_harness::report;
use bunet_harness::session::{self, ClientRun};
use bunet_harness::shard::{self, Job, ModelId, ProtocolId, Range, VolumeId};
use bunet_harness::volume::{self, CtVolume};
use bunet_harness::{nifti, volume::Warning};
use bunet_unet::{Architecture, Dims};

use super::common::OutDir;
use super::common::{self, SessionArgs};
use super::progress;
use super::transport::ClientTransport;

/// Options of `bunet segment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CT volume (NIfTI-1, .nii or .nii.gz, in Hounsfield units).
    #[arg(long, value_name = "PATH")]
    input: PathBuf,
    /// Largest volume accepted, in voxels, checked from the NIfTI header before anything is
    /// decompressed (default 512 x 512 x 512).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_VOXELS,
          value_parser = clap::value_parser!(u64).range(1..=nifti::MAX_VOXELS as u64))]
    max_voxels: u64,
    /// The server (`bunet serve`) to segment with.
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "HOST:PORT")]
    server: String,
    /// Output directory (created if missing): mask.nii.gz, overlay_zNNN.png, report.json; for a
    /// shard (--shard, --slices) part.nii.gz, report.json and manifest.json (written last).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    transport: ClientTransport,
    /// The model's architecture as the server's weights declare it (the handshake checks it).
    /// Default: the model card's, or the built-in weights'.
    #[arg(long, value_name = "ARCH", value_parser = common::parse_arch)]
    arch: Option<Architecture>,
    /// The model card of the server's weights (the JSON the tools write beside them, or the
    /// weights file itself): architecture, input normalisation, training spacing. Default: the
    /// built-in weights' card.
    #[arg(long, value_name = "PATH")]
    model_card: Option<PathBuf>,
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
            let end = k
                .checked_add(1)
                .ok_or_else(|| format!("slice {k} is past any volume"))?;
            (k, end)
        }
    };
    if a >= b {
        return Err(format!("empty slice range {a}..{b}"));
    }
    Ok((a, b))
}

/// Default of `--max-voxels`: 512³ voxels (0.5 GiB of f32 Hounsfield values).
pub const DEFAULT_MAX_VOXELS: u64 = 512 * 512 * 512;

/// Reads a CT volume.
pub fn read_ct(path: &Path) -> Result<CtVolume> {
    read_ct_limited(path, nifti::MAX_VOXELS)
}

/// Reads a CT volume of at most `max_voxels` voxels (checked from the header first).
pub fn read_ct_limited(path: &Path, max_voxels: usize) -> Result<CtVolume> {
    let image = nifti::read_limited(path, max_voxels)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(CtVolume::from_image(image))
}

/// The model card the client prepares its input for: `--model-card` (checked against
/// `--arch`), or the built-in weights' card, or — for an `--arch` other than the built-in one
/// without a card — that architecture with the default normalisation.
pub fn resolve_card(card: Option<&Path>, arch: Option<&Architecture>) -> Result<Card> {
    Ok(match (card, arch) {
        (Some(path), arch) => model::read_card(path, arch)?,
        (None, arch) => {
            let built_in = Card::built_in();
            match arch {
                Some(a) if *a != built_in.arch => {
                    // The handshake checks the architecture, not the normalisation: say what
                    // is assumed, since a model trained otherwise gives wrong masks silently.
                    let metadata = bunet_unet::Metadata::default();
                    eprintln!(
                        "bunet segment: warning: no --model-card for --arch {a}; assuming the \
                         input normalisation {} and no training spacing",
                        metadata.input
                    );
                    Card { arch: *a, metadata }
                }
                _ => built_in,
            }
        }
    })
}

/// Checks the voxels (NaN refused) and prints every warning on stderr.
pub fn check_ct(ct: &CtVolume, card: &Card, command: &str) -> Result<Vec<Warning>> {
    let warnings = ct.check(card.metadata.spacing)?;
    for w in &warnings {
        eprintln!("bunet {command}: warning: {w}");
    }
    Ok(warnings)
}

/// Resolves the server's address before anything is computed, so that a typo is reported as
/// such (exit 69) and not as an I/O error after the work.
fn resolve_server(server: &str) -> Result<()> {
    match server.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            Err(super::Unavailable(format!("server address `{server}` resolves to nothing")).into())
        }
        Err(e) => Err(super::Unavailable(format!(
            "cannot resolve the server address `{server}` (expected HOST:PORT): {e}"
        ))
        .into()),
    }
}

/// Runs `bunet segment`.
pub fn run(args: &Args) -> Result<()> {
    let started = shard::unix_now();
    let card = resolve_card(args.model_card.as_deref(), args.arch.as_ref())?;
    let max_voxels = usize::try_from(args.max_voxels).unwrap_or(usize::MAX);
    let ct = read_ct_limited(&args.input, max_voxels)?;
    let nz = ct.dims[2];
    output::check_overlays(&args.overlays, nz)?;
    let core = core_range(args, nz)?;
    let (a, b) = core.unwrap_or((0, nz));
    let config = args.session.config();
    let arch = card.arch;
    let slab = (arch.dims == Dims::Three).then(|| shard::slab(&arch, (a, b), nz));
    let job = core.map(|_| Job {
        volume: VolumeId::of(&ct),
        model: ModelId::new(&arch, args.model_id.as_deref()),
        protocol: ProtocolId::new(&arch, &config),
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
    resolve_server(&args.server)?;
    let warnings = check_ct(&ct, &card, "segment")?;
    let vol = ct.prepare_with(&arch, &card.metadata.input)?;
    let out = OutDir::create(&args.out)?;
    let result = (|| {
        if job.is_some() {
            shard::forget(&args.out)?;
        }
        run_and_write(
            args,
            &card,
            &ct,
            &vol,
            job,
            (a, b),
            slab,
            &warnings,
            started,
        )
    })();
    out.finish(result.is_ok());
    result
}

#[allow(clippy::too_many_arguments)]
fn run_and_write(
    args: &Args,
    card: &Card,
    ct: &CtVolume,
    vol: &volume::Prepared,
    job: Option<Job>,
    (a, b): (usize, usize),
    slab: Option<shard::Slab>,
    warnings: &[Warning],
    started: f64,
) -> Result<()> {
    let run = run_session(
        args,
        &card.arch,
        vol,
        (a, b),
        slab.map(|s| (s.start, s.end)),
    )?;
    let plane = ct.plane_len();
    let mut core_mask = vec![0u8; plane * (b - a)];
    for (&z, m) in run.slices.iter().zip(&run.masks) {
        if (a..b).contains(&z) {
            core_mask[(z - a) * plane..(z - a + 1) * plane].copy_from_slice(m);
        }
    }
    match job {
        Some(job) => write_shard(args, ct, job, &core_mask, &run, started),
        None => write_volume(args, ct, &core_mask, &run, warnings),
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
    arch: &Architecture,
    vol: &volume::Prepared,
    (a, b): (usize, usize),
    slab: Option<(usize, usize)>,
) -> Result<ClientRun> {
    let config = args.session.config();
    let steps = bunet_unet::QuantPlan::new(arch, config.preset.quant())?
        .steps()
        .len();
    let how = args.transport.connect()?;
    let run = match slab {
        None if args.jobs > 1 => {
            let slices: Vec<usize> = (a..b).collect();
            let pb = progress::bar((slices.len() * steps) as u64, "segment");
            let tick = || pb.inc(1);
            let run = session::run_client_jobs(
                (&args.server, &how),
                arch,
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
            let mut ch = session::connect_with(&args.server, &how)?;
            let slices: Vec<usize> = (a..b).collect();
            let pb = progress::bar((slices.len() * steps) as u64, "segment");
            let run = session::run_client(&mut ch, arch, config, vol, &slices, || {
                pb.inc(1);
            });
            pb.finish_and_clear();
            run
        }
        Some(range) => {
            let mut ch = session::connect_with(&args.server, &how)?;
            let pb = progress::bar(steps as u64, "segment");
            let run = session::run_client_slab(&mut ch, arch, config, vol, range, || {
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
    let core_ct = ct.crop([0, 0, a], [ct.dims[0], ct.dims[1], b - a])?;
    let report = with_run_facts(
        &run.report.to_json(),
        &args.input,
        (a, b),
        &core_ct,
        core_mask,
        &[],
    )?;
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

/// The client report with what a reader needs beside the costs: the input path, the slice range
/// run, a summary of the mask and the input warnings.
pub fn with_run_facts(
    report: &str,
    input: &Path,
    (a, b): (usize, usize),
    ct: &CtVolume,
    mask: &[u8],
    warnings: &[Warning],
) -> Result<String> {
    let mut value: serde_json::Value =
        serde_json::from_str(report).context("re-reading the client report")?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert("input".into(), input.display().to_string().into());
        obj.insert("slices".into(), serde_json::json!([a, b]));
        obj.insert(
            "mask".into(),
            serde_json::to_value(MaskSummary::of(ct, mask)).context("mask summary")?,
        );
        obj.insert(
            "warnings".into(),
            warnings
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .into(),
        );
    }
    serde_json::to_string_pretty(&value).context("writing the report")
}

/// A whole volume's outputs: mask, overlays (replacing any left by an earlier run), report.
fn write_volume(
    args: &Args,
    ct: &CtVolume,
    mask: &[u8],
    run: &ClientRun,
    warnings: &[Warning],
) -> Result<()> {
    let [nx, ny, nz] = ct.dims;
    let mask_path = output::write_mask(&args.out.join("mask.nii.gz"), ct, mask)?;
    let overlays = if args.overlays.is_empty() {
        output::busiest_slices(mask, ct.plane_len(), 3)
    } else {
        args.overlays.clone()
    };
    output::remove_stale_overlays(&args.out)?;
    let pngs = output::write_overlays(&args.out, ct, mask, &overlays)?;
    let report_path = args.out.join("report.json");
    let report = with_run_facts(
        &run.report.to_json(),
        &args.input,
        (0, nz),
        ct,
        mask,
        warnings,
    )?;
    std::fs::write(&report_path, report)
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
