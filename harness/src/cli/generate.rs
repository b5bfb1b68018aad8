//! `bunet generate`: a synthetic chest CT volume, its lesion mask and a preview.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bunet_harness::nifti::{self, Header, Writer};
use bunet_harness::preview;
use bunet_harness::synth::{MAX_DIM, Params, Phantom, Slice};

use super::common::OutDir;
use super::progress;

/// Options of `bunet generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// In-plane size: the volume is SIZE × SIZE voxels per slice (1..=512).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=MAX_DIM as i64))]
    size: u16,
    /// Number of slices (1..=512).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=MAX_DIM as i64))]
    slices: u16,
    /// Seed of the phantom: the same seed and size give the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Slice shown in preview.png (default: the slice with the most lesion voxels).
    #[arg(long)]
    preview_slice: Option<usize>,
    /// Write uncompressed .nii files instead of .nii.gz.
    #[arg(long)]
    uncompressed: bool,
}

/// Runs `bunet generate`.
pub fn run(args: &Args) -> Result<()> {
    let (n, nz) = (usize::from(args.size), usize::from(args.slices));
    let phantom = Phantom::new(Params {
        dims: [n, n, nz],
        seed: args.seed,
    })?;
    if let Some(k) = args.preview_slice
        && k >= nz
    {
        return Err(bunet_harness::synth::ParamError::Slice { k, nz }.into());
    }
    let out = OutDir::create(&args.out)?;
    let ext = if args.uncompressed { "nii" } else { "nii.gz" };
    let ct_path = args.out.join(format!("ct.{ext}"));
    let label_path = args.out.join(format!("label.{ext}"));

    let mut header = Header::new(
        phantom.dims(),
        phantom.spacing(),
        nifti::Datatype::I16,
        phantom.affine(),
    );
    header.set_description(&format!("bunet synthetic chest CT seed={}", args.seed));
    header.cal_min = -1000.0;
    header.cal_max = 400.0;
    let mut ct = Writer::<i16>::create(&ct_path, &header)
        .with_context(|| format!("creating {}", ct_path.display()))?;
    let mut label = Writer::<u8>::create(&label_path, &header.for_mask())
        .with_context(|| format!("creating {}", label_path.display()))?;

    let pb = progress::bar(nz as u64, "generate");
    let mut slice = Slice::default();
    let mut per_slice = Vec::with_capacity(nz);
    for k in 0..nz {
        phantom.render_slice(k, &mut slice)?;
        ct.write(&slice.ct)
            .with_context(|| format!("writing {}", ct_path.display()))?;
        label
            .write(&slice.label)
            .with_context(|| format!("writing {}", label_path.display()))?;
        per_slice.push(slice.label.iter().map(|&v| usize::from(v)).sum::<usize>());
        pb.inc(1);
    }
    pb.finish_and_clear();
    ct.finish()
        .with_context(|| format!("writing {}", ct_path.display()))?;
    label
        .finish()
        .with_context(|| format!("writing {}", label_path.display()))?;

    let best = (0..nz)
        .max_by_key(|&k| (per_slice[k], std::cmp::Reverse(k)))
        .unwrap_or(0);
    let k = args.preview_slice.unwrap_or(best);
    phantom.render_slice(k, &mut slice)?;
    let png_path = args.out.join("preview.png");
    preview::write_overlay_png(&png_path, n, n, &slice.ct, &slice.label)
        .with_context(|| format!("writing {}", png_path.display()))?;

    let lesion_voxels: usize = per_slice.iter().sum();
    let [dx, dy, dz] = phantom.spacing();
    println!(
        "wrote {} and {} ({n}x{n}x{nz}, spacing {dx:.3}x{dy:.3}x{dz:.3} mm, seed {}): \
         {} lesions, {lesion_voxels} lesion voxels; preview of slice {k} in {}",
        ct_path.display(),
        label_path.display(),
        args.seed,
        phantom.lesions().len(),
        png_path.display()
    );
    out.keep();
    Ok(())
}
