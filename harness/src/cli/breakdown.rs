//! `bunet breakdown`: the seed's Fig. 2 from a real run — time and bytes per building block,
//! input-independent (offline) and input-dependent (online) parts, both parties; JSON, Markdown
//! and an SVG chart.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bunet_harness::session;
use bunet_harness::synth::{Params, Phantom};
use bunet_harness::volume::CtVolume;

use super::common::OutDir;
use super::common::{self, SessionArgs, WeightsArgs};
use super::progress;

/// Options of `bunet breakdown`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A CT volume (NIfTI) to run on; default: a synthetic one (--size, --slices, --seed).
    #[arg(long, value_name = "PATH")]
    input: Option<PathBuf>,
    /// In-plane size of the synthetic volume.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=512))]
    size: u16,
    /// Slices of the synthetic volume.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=512))]
    slices: u16,
    /// Seed of the synthetic volume.
    #[arg(long, default_value_t = 9000)]
    seed: u64,
    /// Slices run securely (the middle ones of the volume), in one session.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=512))]
    run_slices: u16,
    /// Output directory: breakdown.json, breakdown.svg, breakdown.md (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    weights: WeightsArgs,
}

/// Runs `bunet breakdown`.
pub fn run(args: &Args) -> Result<()> {
    let ct = match &args.input {
        Some(path) => super::segment::read_ct(path)?,
        None => {
            let n = usize::from(args.size);
            let ph = Phantom::new(Params {
                dims: [n, n, usize::from(args.slices)],
                seed: args.seed,
            })?;
            CtVolume::from_phantom(&ph)?.0
        }
    };
    let model = args.weights.load()?;
    let arch = *model.arch();
    let config = args.session.config();
    let qm = common::quantise(&model, config.preset)?;
    let vol = ct.prepare_with(&arch, &model.metadata().input)?;
    let nz = vol.slices();
    let k = usize::from(args.run_slices).min(nz);
    let first = (nz - k) / 2;
    let slices: Vec<usize> = (first..first + k).collect();
    let out = OutDir::create(&args.out)?;
    let pb = progress::bar((k * qm.plan().steps().len()) as u64, "breakdown");
    let (run, server) = session::run_local(qm.clone(), config, &vol, &slices, || pb.inc(1))
        .context("secure run")?;
    pb.finish_and_clear();
    let bd = session::breakdown(
        &arch,
        &config,
        &run,
        vol.input_dims(),
        session::rows(&server),
    );
    let md = format!(
        "# BUNET runtime breakdown\n\n{k} slice(s) of {}×{} (slices {first}..{}), `{arch}`, preset \
         **{}**, nonlinear backend **{}**, linear backend **{}**, client and server over loopback TCP; session wall time \
         {} (set-up included). Machine: {}{}.\n\n{}",
        vol.input_dims()[1],
        vol.input_dims()[2],
        first + k,
        config.preset.name(),
        config.nonlinear.name(),
        config.linear.name(),
        bunet_harness::report::seconds(bd.total_wall_s),
        bd.machine,
        bunet_harness::report::load_average()
            .map_or(String::new(), |l| format!(", load average {l:.1}")),
        bd.to_markdown()
    );
    for (name, text) in [
        ("breakdown.json", bd.to_json()),
        ("breakdown.svg", bd.to_svg()),
        ("breakdown.md", md.clone()),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{md}");
    println!(
        "wrote {}/breakdown.json, breakdown.svg, breakdown.md",
        args.out.display()
    );
    out.keep();
    Ok(())
}
