//! `bunet merge`: joins the shards of one volume (`bunet segment --shard I/K`) into the mask of
//! the whole scan and one report, after checking that they belong together and cover every
//! slice exactly once.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bunet_harness::shard::{self, MergedReport};
use bunet_harness::{nifti, report};

use super::common::OutDir;

/// Options of `bunet merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory (created if missing): mask.nii.gz, report.json, report.md.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The shard directories (each with manifest.json and part.nii.gz), in any order.
    #[arg(value_name = "SHARD_DIR", required = true)]
    shards: Vec<PathBuf>,
}

/// Runs `bunet merge`.
pub fn run(args: &Args) -> Result<()> {
    let merged = shard::merge(&args.shards)?;
    let summary = MergedReport::new(&merged)?;
    let out = OutDir::create(&args.out)?;
    let mask_path = args.out.join("mask.nii.gz");
    nifti::write(&mask_path, &merged.header, &merged.mask)
        .with_context(|| format!("writing {}", mask_path.display()))?;
    shard::write_atomic(&args.out, "report.json", summary.to_json().as_bytes())?;
    shard::write_atomic(&args.out, "report.md", summary.to_markdown().as_bytes())?;
    let [nx, ny, nz] = summary.volume.dims;
    println!(
        "merged {} shard(s) of a {nx}x{ny}x{nz} volume: {} lesion voxels; wall time {} (first \
         start to last end), sessions {} in sum, slowest {}; wrote {}, report.json, report.md",
        merged.shards.len(),
        merged.mask.iter().filter(|&&v| v != 0).count(),
        report::seconds(summary.wall_s),
        report::seconds(summary.sum_of_sessions_s),
        summary.slowest_shard,
        mask_path.display()
    );
    out.keep();
    Ok(())
}
