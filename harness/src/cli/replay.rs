//! `bunet replay`: the full-size segmentation (512×512×512 by default). The server runs as a
//! second process (`bunet serve`); at least one full slice runs for real between the two; the
//! exact operations of every slice are counted from the plan; time and bytes are extrapolated
//! from the measured slices, and the report says which figures were measured and which
//! extrapolated. `--all` runs every slice for real, in parallel sessions.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bunet_harness::breakdown::{BlockRow, Breakdown};
use bunet_harness::extrapolate::Extrapolation;
use bunet_harness::opcount::SliceCount;
use bunet_harness::report::{self, Table};
use bunet_harness::session::{self, ClientRun, SliceSource};
use bunet_harness::synth::{Params, Phantom};
use bunet_harness::volume::{self, CtVolume, Prepared};
use bunet_harness::{output, reference::Reference};
use bunet_unet::range::{self, Interval, Ranges};
use bunet_unet::{Architecture, InputNorm, Quant, Tensor};

use super::common::OutDir;
use super::common::{SessionArgs, WeightsArgs};
use super::progress;

/// Options of `bunet replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// In-plane size of the synthetic volume (SIZE × SIZE voxels per slice).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u16).range(1..=512))]
    size: u16,
    /// Slices of the volume (default: SIZE, a cube).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=512))]
    slices: Option<u16>,
    /// Seed of the synthetic volume.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// A CT volume (NIfTI) to replay instead of a synthetic one.
    #[arg(long, value_name = "PATH")]
    input: Option<PathBuf>,
    /// Slices run for real (the middle ones) when extrapolating.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=512))]
    measure: u16,
    /// Run every slice for real, in --jobs parallel sessions (for machines large enough), and
    /// write the whole mask.
    #[arg(long)]
    all: bool,
    /// Parallel client sessions with --all (each served by its own server thread).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Memory the server may use for prepared HomConv filters, in GB (default: 60 % of the
    /// available memory). Without --max-tile, replay picks the largest tile cap whose filters
    /// (per session) fit.
    #[arg(long, value_name = "GB")]
    memory_gb: Option<f64>,
    /// Output directory: replay.md, replay.json, server.log (and mask.nii.gz with --all).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    weights: WeightsArgs,
}

/// Slices rendered on demand: for slice `z` only the slices its 2.5D stack reads
/// (`z − 5 ..= z + 5`), so a 512³ volume never sits in memory whole.
struct Windowed {
    phantom: Phantom,
    arch: Architecture,
    norm: InputNorm,
}

impl Windowed {
    /// The prepared window around `z` and `z`'s index in it.
    fn window(&self, z: usize) -> Result<(Prepared, usize), session::Error> {
        let [nx, ny, nz] = self.phantom.dims();
        if z >= nz {
            return Err(volume::Error::Slice { z, nz }.into());
        }
        let (lo, hi) = (z.saturating_sub(5), (z + 5).min(nz - 1));
        let mut hu = Vec::with_capacity(nx * ny * (hi - lo + 1));
        let mut s = bunet_harness::synth::Slice::default();
        for k in lo..=hi {
            self.phantom
                .render_slice(k, &mut s)
                .map_err(|e| session::Error::Volume(volume::Error::NotTwoD(e.to_string())))?;
            hu.extend(s.ct.iter().map(|&v| f32::from(v)));
        }
        let header = bunet_harness::nifti::Header::new(
            [nx, ny, hi - lo + 1],
            self.phantom.spacing(),
            bunet_harness::nifti::Datatype::I16,
            self.phantom.affine(),
        );
        let ct = CtVolume {
            header,
            dims: [nx, ny, hi - lo + 1],
            hu,
        };
        Ok((ct.prepare_with(&self.arch, &self.norm)?, z - lo))
    }
}

impl SliceSource for Windowed {
    fn encoded(&self, z: usize, quant: &Quant) -> Result<Tensor<u64>, session::Error> {
        let (p, local) = self.window(z)?;
        Ok(p.encoded_stack(local, quant)?)
    }

    fn crop(&self, mask: &[u8]) -> Vec<u8> {
        let [nx, ny, _] = self.phantom.dims();
        let px = mask.len() / ny.next_multiple_of(1 << self.arch.depth);
        let mut out = Vec::with_capacity(nx * ny);
        for y in 0..ny {
            out.extend_from_slice(&mask[y * px..y * px + nx]);
        }
        out
    }
}

enum Source {
    Synthetic(Box<Windowed>),
    File(Box<(CtVolume, Prepared)>),
}

impl Source {
    fn as_source(&self) -> &(dyn SliceSource + Sync) {
        match self {
            Source::Synthetic(w) => &**w,
            Source::File(f) => &f.1,
        }
    }

    fn dims(&self) -> [usize; 3] {
        match self {
            Source::Synthetic(w) => w.phantom.dims(),
            Source::File(f) => f.0.dims,
        }
    }
}

/// The server process: `bunet serve` on a free loopback port.
struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    fn spawn(
        args: &Args,
        max_tile: Option<usize>,
        clients: usize,
        report_dir: &Path,
        log: &Path,
    ) -> Result<Self> {
        let exe = std::env::current_exe().context("locating the bunet executable")?;
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(exe);
        // Loopback between two processes of one run: plain TCP, said aloud.
        cmd.args([
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--max-clients",
        ])
        .arg(clients.to_string())
        .arg("--report-dir")
        .arg(report_dir)
        .args(["--preset", args.session.preset.name()])
        .args(["--backend", args.session.backend.name()])
        .arg("--chunk")
        .arg(args.session.chunk.to_string())
        .arg("--batch")
        .arg(args.session.batch.to_string())
        .args(["--linear", args.session.linear.name()]);
        if let Some(t) = max_tile {
            cmd.arg("--max-tile").arg(t.to_string());
        }
        if let Some(w) = &args.weights.weights {
            cmd.arg("--weights").arg(w);
        }
        if let Some(a) = &args.weights.arch {
            cmd.arg("--arch").arg(a.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .context("starting the server process")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the server's address")?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the server process did not start (see {}): {}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default().trim()
            );
        };
        Ok(Self {
            addr: addr.to_string(),
            child,
        })
    }

    /// Waits for the server to exit after its sessions and reads their reports.
    fn finish(mut self, report_dir: &Path) -> Result<Vec<BlockRow>> {
        let status = self
            .child
            .wait()
            .context("waiting for the server process")?;
        if !status.success() {
            bail!("the server process failed: {status}");
        }
        let mut rows = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(report_dir)
            .with_context(|| format!("reading {}", report_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        for p in entries {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            rows.extend(
                session::rows_from_json(&text)
                    .with_context(|| format!("parsing {}", p.display()))?,
            );
        }
        Ok(rows)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Reaps the server if the client failed before it exited on its own.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `bunet replay`: opens the volume, sizes the HomConv tiles, runs the measured slices
/// against a `bunet serve` process, checks them against the fixed-point reference and writes
/// the report.
pub fn run(args: &Args) -> Result<()> {
    let model = args.weights.load()?;
    let arch = *model.arch();
    let mut config = args.session.config();
    let source = open_source(args, arch, model.metadata().input)?;
    let [nx, ny, nz] = source.dims();
    let step = 1usize << arch.depth;
    let input_dims = [1, ny.next_multiple_of(step), nx.next_multiple_of(step)];
    let plan = bunet_unet::QuantPlan::new(&arch, config.preset.quant())?;
    let params = config.preset.pahe_params();
    let jobs = if args.all {
        usize::from(args.jobs).min(nz)
    } else {
        1
    };
    if args.session.max_tile.is_none() {
        config.max_tile = tile_cap(args, &plan, &params, input_dims, jobs)?;
    }
    let count = SliceCount::new(&plan, &params, input_dims, config.max_tile, config.linear)?;
    let out = OutDir::create(&args.out)?;
    let slices = slices_to_run(args, nz);
    let filter_bytes = count.server_filter_bytes(&params);
    // The client's cached weight ciphertexts (`--linear coeff-ew`; zero otherwise).
    let client_weights =
        bunet_unet::secure::budget::client_weight_bytes(&plan, &config, input_dims)?;
    let measured = run_sessions(args, &config, &plan, &source, &slices, jobs, filter_bytes)?;
    let Measured { runs, wall, rows } = measured;

    // One breakdown over all sessions: client rows of every session plus the server's.
    let slices_wall: f64 = runs.iter().map(|r| r.slices_wall().as_secs_f64()).sum();
    let bd = Breakdown {
        backend: config.nonlinear.name().to_string(),
        preset: config.preset.name().to_string(),
        architecture: arch.to_string(),
        input_dims,
        slices: slices.len(),
        total_wall_s: if jobs == 1 { wall } else { slices_wall },
        machine: report::machine(),
        rows,
    };
    let extra = Extrapolation::new(&bd, slices_wall, &count, nz);
    let qm = bunet_harness::model::quantise(&model, config.preset.quant())?;
    let ranges = proven_ranges(&qm, model.metadata().input);
    let check: Vec<usize> = slices
        .iter()
        .copied()
        .take(if args.all { 2 } else { slices.len() })
        .collect();
    let identical = bit_identical(&qm, &source, &runs, &check)?;
    if args.all {
        write_volume_mask(args, &source, &runs)?;
    }

    let md = Figures {
        args,
        arch: &arch,
        volume: [nx, ny, nz],
        count: &count,
        bd: &bd,
        extra: &extra,
        wall,
        jobs,
        identical,
        checked: check.len(),
        max_tile: config.max_tile,
        filter_bytes,
        client_weights,
        ranges: &ranges,
    }
    .render();
    let json = serde_json::json!({
        "volume": [nx, ny, nz],
        "input_dims": input_dims,
        "architecture": arch.to_string(),
        "max_tile": config.max_tile,
        "server_filter_bytes_per_session": filter_bytes,
        "client_weight_bytes_per_session": client_weights,
        "preset": config.preset.name(),
        "backend": config.nonlinear.name(),
        "chunk": config.chunk,
        "batch": config.batch,
        "linear": config.linear.name(),
        "machine": report::machine(),
        "all_slices_run": args.all,
        "measured": {
            "slices": slices.len(),
            "sessions": jobs,
            "wall_s": wall,
            "slices_wall_s": slices_wall,
            "bytes": extra.measured_bytes,
            "bit_identical_slices": identical,
            "checked_slices": check.len(),
            "breakdown": serde_json::from_str::<serde_json::Value>(&bd.to_json())?,
        },
        "counted": {
            "per_slice": count.by_block(),
            "volume_total": extra.volume_count,
        },
        "extrapolated": if args.all { serde_json::Value::Null } else { serde_json::to_value(&extra)? },
        "nonlinear_ranges": ranges.nonlinear.iter().map(|r| serde_json::json!({
            "step": r.step,
            "op": format!("{:?}", r.op),
            "proven": r.proven,
            "bound": r.bound.to_string(),
            "needed_bits": r.needed_bits,
            "protocol_bits": r.protocol_bits,
        })).collect::<Vec<_>>(),
    });
    write_reports(args, &md, &json)?;
    if identical != check.len() {
        bail!("a secure slice differs from the fixed-point reference (a bug)");
    }
    out.keep();
    Ok(())
}

/// The volume: the CT file given, or the synthetic phantom rendered slice by slice.
fn open_source(args: &Args, arch: Architecture, norm: InputNorm) -> Result<Source> {
    Ok(match &args.input {
        Some(path) => {
            let ct = super::segment::read_ct(path)?;
            let p = ct.prepare_with(&arch, &norm)?;
            Source::File(Box::new((ct, p)))
        }
        None => {
            let n = usize::from(args.size);
            let nz = args.slices.map_or(n, usize::from);
            let phantom = Phantom::new(Params {
                dims: [n, n, nz],
                seed: args.seed,
            })?;
            Source::Synthetic(Box::new(Windowed {
                phantom,
                arch,
                norm,
            }))
        }
    })
}

/// The largest HomConv tile cap whose prepared filters fit the memory budget per session.
fn tile_cap(
    args: &Args,
    plan: &bunet_unet::QuantPlan,
    params: &bunet_crypto::pahe::Params,
    input_dims: [usize; 3],
    jobs: usize,
) -> Result<Option<usize>> {
    let budget = args
        .memory_gb
        .map_or_else(default_budget, |gb| (gb * 1e9) as u64);
    let caps = [
        None,
        Some(62),
        Some(46),
        Some(30),
        Some(22),
        Some(14),
        Some(6),
    ];
    let per_session = budget / jobs as u64;
    SliceCount::tile_cap_within(
        plan,
        params,
        input_dims,
        &caps,
        (per_session, args.session.linear),
    )?
    .with_context(|| {
        format!(
            "the server's HomConv filters do not fit in {} per session even with the smallest \
             tiles; give --memory-gb or fewer --jobs",
            report::bytes(per_session)
        )
    })
}

/// Every slice with `--all`, else the `--measure` middle ones.
fn slices_to_run(args: &Args, nz: usize) -> Vec<usize> {
    if args.all {
        (0..nz).collect()
    } else {
        let k = usize::from(args.measure).min(nz);
        let first = (nz - k) / 2;
        (first..first + k).collect()
    }
}

/// What the secure sessions measured.
struct Measured {
    /// Every client session's run, in slice order.
    runs: Vec<ClientRun>,
    /// Wall seconds of all sessions.
    wall: f64,
    /// Both parties' report rows.
    rows: Vec<BlockRow>,
}

/// Starts the server process and runs `slices` in `jobs` parallel client sessions against it.
#[allow(clippy::too_many_arguments)] // the run's whole configuration
fn run_sessions(
    args: &Args,
    config: &bunet_unet::secure::SessionConfig,
    plan: &bunet_unet::QuantPlan,
    source: &Source,
    slices: &[usize],
    jobs: usize,
    filter_bytes: u64,
) -> Result<Measured> {
    let [nx, ny, nz] = source.dims();
    let report_dir = args.out.join("server-reports");
    if report_dir.exists() {
        std::fs::remove_dir_all(&report_dir)
            .with_context(|| format!("clearing {}", report_dir.display()))?;
    }
    let log = args.out.join("server.log");
    eprintln!(
        "bunet replay: {nx}x{ny}x{nz}, {} slice(s) for real in {jobs} session(s) against a \
         `bunet serve` process ({}, {} backend, HomConv tiles {}, server filters {} per \
         session); server log in {}",
        slices.len(),
        config.preset.name(),
        config.nonlinear.name(),
        config
            .max_tile
            .map_or("uncapped".to_string(), |t| format!("<= {t}")),
        report::bytes(filter_bytes),
        log.display()
    );
    let server = ServerProcess::spawn(args, config.max_tile, jobs, &report_dir, &log)?;
    let pb = progress::bar((slices.len() * plan.steps().len()) as u64, "replay");
    let start = Instant::now();
    let runs: Mutex<Vec<ClientRun>> = Mutex::new(Vec::new());
    let src = source.as_source();
    let (arch, config) = (plan.arch(), *config);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..jobs)
            .map(|j| {
                let mine: Vec<usize> = slices.iter().copied().skip(j).step_by(jobs).collect();
                let (addr, pb, runs) = (&server.addr, &pb, &runs);
                s.spawn(move || -> Result<()> {
                    let mut ch = session::connect(addr)?;
                    let run = session::run_client(&mut ch, arch, config, src, &mine, || pb.inc(1))?;
                    runs.lock()
                        .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
                        .push(run);
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        Ok(())
    })
    .context("secure replay")?;
    pb.finish_and_clear();
    let wall = start.elapsed().as_secs_f64();
    let server_rows = server.finish(&report_dir)?;
    let mut runs = runs
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
    runs.sort_by_key(|r| r.slices.first().copied());
    let mut rows: Vec<BlockRow> = runs.iter().flat_map(|r| session::rows(&r.report)).collect();
    rows.extend(server_rows);
    Ok(Measured { runs, wall, rows })
}

/// How many of the slices `check` came out of the secure runs bit-identical to the
/// fixed-point reference.
fn bit_identical(
    qm: &bunet_unet::QuantModel,
    source: &Source,
    runs: &[ClientRun],
    check: &[usize],
) -> Result<usize> {
    let mut identical = 0;
    for &z in check {
        let mask = match source {
            Source::Synthetic(w) => {
                let (p, local) = w.window(z)?;
                p.crop(&Reference::Fixed(qm).segment_slice(&p, local)?)
            }
            Source::File(f) => f.1.crop(&Reference::Fixed(qm).segment_slice(&f.1, z)?),
        };
        let secure = runs
            .iter()
            .find_map(|r| r.slices.iter().position(|&s| s == z).map(|i| &r.masks[i]));
        identical += usize::from(secure == Some(&mask));
    }
    Ok(identical)
}

/// With `--all`: the whole mask as `mask.nii.gz`, in the scan's geometry.
fn write_volume_mask(args: &Args, source: &Source, runs: &[ClientRun]) -> Result<()> {
    let [nx, ny, nz] = source.dims();
    let plane = nx * ny;
    let mut mask = vec![0u8; plane * nz];
    for r in runs {
        for (&z, m) in r.slices.iter().zip(&r.masks) {
            mask[z * plane..(z + 1) * plane].copy_from_slice(m);
        }
    }
    let ct = match source {
        Source::File(f) => f.0.clone(),
        Source::Synthetic(w) => CtVolume {
            header: bunet_harness::nifti::Header::new(
                [nx, ny, nz],
                w.phantom.spacing(),
                bunet_harness::nifti::Datatype::I16,
                w.phantom.affine(),
            ),
            dims: [nx, ny, nz],
            hu: Vec::new(),
        },
    };
    output::write_mask(&args.out.join("mask.nii.gz"), &ct, &mask)?;
    Ok(())
}

/// Writes `replay.md` and `replay.json` and prints the Markdown.
fn write_reports(args: &Args, md: &str, json: &serde_json::Value) -> Result<()> {
    let md_path = args.out.join("replay.md");
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    let json_path = args.out.join("replay.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    print!("{md}");
    println!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}

/// What the replay report says.
struct Figures<'a> {
    args: &'a Args,
    arch: &'a Architecture,
    /// The volume's extents `[nx, ny, nz]`.
    volume: [usize; 3],
    count: &'a SliceCount,
    bd: &'a Breakdown,
    extra: &'a Extrapolation,
    /// Wall seconds of the sessions, and how many ran in parallel.
    wall: f64,
    jobs: usize,
    /// Measured slices bit-identical to the reference, of those checked.
    identical: usize,
    checked: usize,
    /// The HomConv tile cap and the server's prepared-filter bytes per session.
    max_tile: Option<usize>,
    filter_bytes: u64,
    /// The client's cached weight ciphertexts per session (`coeff-ew`; zero otherwise).
    client_weights: u64,
    /// The plan's proven ranges for inputs in the model's normalised range.
    ranges: &'a Ranges,
}

impl Figures<'_> {
    /// `replay.md`: the header, the figures and the per-block table.
    fn render(&self) -> String {
        let Figures { args, arch, bd, .. } = *self;
        let [nx, ny, nz] = self.volume;
        let mut s = format!(
            "# BUNET replay: {nx}×{ny}×{nz}\n\n`{arch}`, preset **{}**, nonlinear backend **{}**, \
             linear backend **{}**; \
             client in this process, server in a `bunet serve` process, over loopback TCP. Machine: \
             {}{}.\n\n",
            bd.preset,
            bd.backend,
            args.session.linear.name(),
            bd.machine,
            report::load_average().map_or(String::new(), |l| format!(", load average {l:.1}"))
        );
        s.push_str(&self.summary_table().to_markdown());
        s.push_str(&format!(
            "\n## Per building block\n\nMeasured on {} slice(s); counts are exact for all {nz} slices; \
             per-slice blocks scale with the slices, session blocks ({}) are paid once.\n\n",
            bd.slices,
            bunet_harness::extrapolate::SESSION_BLOCKS.join(", ")
        ));
        s.push_str(&block_table(args, self.extra).to_markdown());
        s.push_str(
            "\n## Proven input ranges of the nonlinear steps\n\nInterval arithmetic over the \
             quantized weights for every client input in the model's normalised range \
             (`bunet_unet::range`): the largest magnitude a step compares, the signed bits that \
             hold it, and the bits the protocol compares over.\n\n",
        );
        s.push_str(&range_table(self.ranges).to_markdown());
        s
    }

    /// The report's figures, each said to be measured, counted or extrapolated.
    fn summary_table(&self) -> Table {
        let Figures {
            args,
            count,
            bd,
            extra,
            wall,
            jobs,
            identical,
            checked,
            max_tile,
            filter_bytes,
            client_weights,
            ..
        } = *self;
        let nz = self.volume[2];
        let mut t = Table::new(["figure", "value", "kind"]);
        let measured = "measured";
        let extrapolated = "extrapolated";
        t.push([
            "slices run for real".to_string(),
            format!("{} of {nz} ({jobs} session(s))", bd.slices),
            measured.into(),
        ]);
        t.push([
            "secure slices bit-identical to the fixed-point reference".to_string(),
            format!("{identical}/{checked} checked"),
            measured.into(),
        ]);
        t.push([
            "HomConv tile cap / server filter memory per session".to_string(),
            format!(
                "{} / {}",
                max_tile.map_or("uncapped".to_string(), |t| t.to_string()),
                report::bytes(filter_bytes)
            ),
            "counted (exact)".into(),
        ]);
        if client_weights > 0 {
            t.push([
                "client memory for the weight ciphertexts per session (coeff-ew)".to_string(),
                report::bytes(client_weights),
                "counted (exact)".into(),
            ]);
        }
        t.push([
            "wall time of the run".to_string(),
            report::seconds(wall),
            measured.into(),
        ]);
        t.push([
            "session set-up (handshake, keys, OT set-up, layouts)".to_string(),
            report::seconds(extra.measured_setup_s),
            measured.into(),
        ]);
        t.push([
            "secure inference time per slice (session blocks excluded)".to_string(),
            report::seconds(extra.per_slice_s),
            measured.into(),
        ]);
        t.push([
            "bytes on the wire (both directions)".to_string(),
            report::bytes(extra.measured_bytes),
            measured.into(),
        ]);
        if !args.all {
            t.push([
                format!("time for all {nz} slices, one session"),
                report::seconds(extra.volume_wall_s),
                extrapolated.into(),
            ]);
            t.push([
                format!("bytes for all {nz} slices"),
                report::bytes(extra.volume_bytes),
                extrapolated.into(),
            ]);
        }
        let total = extra.volume_count;
        t.push([
            format!("multiply-accumulates, all {nz} slices"),
            format!("{:.3e}", total.macs as f64),
            "counted (exact)".into(),
        ]);
        t.push([
            format!("secure comparisons (ReLU, rescale, pool, argmax), all {nz} slices"),
            format!("{:.3e}", (count.nonlinear_elements() * nz as u64) as f64),
            "counted (exact)".into(),
        ]);
        t.push([
            format!("HomConv ciphertexts up / down, all {nz} slices"),
            format!(
                "{} / {}",
                total.upload_ciphertexts, total.return_ciphertexts
            ),
            "counted (exact)".into(),
        ]);
        t
    }
}

/// Per building block: counted elements, measured time and bytes, and their extrapolation.
fn block_table(args: &Args, extra: &Extrapolation) -> Table {
    let mut b = Table::new([
        "block",
        "elements (all slices, counted)",
        "time (measured)",
        "bytes (measured)",
        "time (all slices, extrapolated)",
        "bytes (all slices, extrapolated)",
    ]);
    for r in &extra.rows {
        b.push([
            r.block.clone(),
            r.volume_count
                .map_or_else(String::new, |c| format!("{:.3e}", c.elements as f64)),
            report::seconds(r.measured_s),
            report::bytes(r.measured_bytes),
            if args.all {
                String::new()
            } else {
                report::seconds(r.volume_s)
            },
            if args.all {
                String::new()
            } else {
                report::bytes(r.volume_bytes)
            },
        ]);
    }
    b
}

/// 60 % of the available memory (`MemAvailable` in /proc/meminfo), or 8 GB if unknown.
fn default_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(8_000_000_000, |kb| kb * 1024 / 10 * 6)
}

/// The proven ranges of `qm`'s plan for client inputs in `norm`'s output range.
fn proven_ranges(qm: &bunet_unet::QuantModel, norm: InputNorm) -> Ranges {
    let quant = qm.quant();
    let input = Interval::encoded(quant, norm.apply(norm.lo), norm.apply(norm.hi));
    range::analyse(qm, input)
}

/// One row per nonlinear step: its proven bound, the bits it needs and the bits it uses.
fn range_table(ranges: &Ranges) -> Table {
    let mut t = Table::new([
        "step",
        "operation",
        "proven bound",
        "needed bits",
        "protocol bits",
    ]);
    for r in &ranges.nonlinear {
        let bound = if r.proven {
            format!("< 2^{:.1}", ((r.bound + 1) as f64).log2())
        } else {
            "none (a value may wrap mod p)".to_string()
        };
        t.push([
            r.step.to_string(),
            format!("{:?}", r.op),
            bound,
            r.needed_bits.to_string(),
            r.protocol_bits.to_string(),
        ]);
    }
    t
}
