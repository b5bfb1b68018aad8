//! What a segmentation leaves on disk: the mask as NIfTI with the scan's geometry, PNG overlays
//! of chosen slices (CT in the lung window, mask tinted red, drawn in the radiological
//! convention whatever the storage orientation), and a summary of the mask for reports.

use std::path::{Path, PathBuf};

use crate::nifti;
use crate::preview;
use crate::volume::CtVolume;

/// Why writing the outputs failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the mask failed.
    #[error("writing {}", path.display())]
    Nifti {
        /// The file.
        path: PathBuf,
        /// The codec's error.
        #[source]
        source: nifti::Error,
    },
    /// Writing an overlay failed.
    #[error("writing {}", path.display())]
    Png {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: preview::Error,
    },
    /// Stale overlays could not be removed.
    #[error("removing old overlays from {}", dir.display())]
    Stale {
        /// The output directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An overlay slice is outside the volume.
    #[error("overlay slice {z} is outside the volume of {nz} slices")]
    Slice {
        /// The slice asked for.
        z: usize,
        /// Slices in the volume.
        nz: usize,
    },
}

/// Writes `mask` (`x` fastest, the scan's extents) to `path` with the scan's header and
/// geometry ([`nifti::Header::for_mask`]).
///
/// # Errors
/// [`Error::Nifti`] if writing fails.
pub fn write_mask(path: &Path, ct: &CtVolume, mask: &[u8]) -> Result<PathBuf, Error> {
    let mut header = ct.header.for_mask();
    header.set_description("bunet lesion mask (1 = lesion)");
    nifti::write(path, &header, mask).map_err(|source| Error::Nifti {
        path: path.to_path_buf(),
        source,
    })
}

/// The `k` slices with the most mask voxels (ties to the lower index), in increasing order;
/// slice `nz / 2` if the mask is empty.
pub fn busiest_slices(mask: &[u8], plane: usize, k: usize) -> Vec<usize> {
    let nz = mask.len().checked_div(plane).unwrap_or(0);
    let mut counts: Vec<(usize, usize)> = (0..nz)
        .map(|z| {
            let n = mask[z * plane..(z + 1) * plane]
                .iter()
                .filter(|&&v| v != 0)
                .count();
            (n, z)
        })
        .filter(|&(n, _)| n > 0)
        .collect();
    counts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<usize> = counts.into_iter().take(k).map(|(_, z)| z).collect();
    if out.is_empty() && nz > 0 {
        out.push(nz / 2);
    }
    out.sort_unstable();
    out
}

/// How a stored slice (`x` fastest, `nx × ny`) is drawn so that the image is in the radiological
/// convention: the patient's right on the image's left and anterior (or superior) at the top.
/// Each stored in-plane axis is matched to the world (RAS) axis it runs along most, and each
/// display axis runs towards decreasing world coordinate (right → left, anterior → posterior,
/// superior → inferior); the axis along the lower world axis (x before y before z) becomes the
/// columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Orientation {
    /// Stored axes `x` and `y` swapped (columns come from stored `y`).
    pub transpose: bool,
    /// Columns run against the stored axis they come from.
    pub flip_cols: bool,
    /// Rows run against the stored axis they come from.
    pub flip_rows: bool,
}

impl Orientation {
    /// The display orientation of a volume with voxel-to-world affine `affine` (RAS, mm).
    pub fn of(affine: &[[f64; 4]; 3]) -> Self {
        // For stored axis `a` (0 = x, 1 = y): the world axis it runs along most, and the sign.
        let axis = |a: usize| {
            let col = [affine[0][a], affine[1][a], affine[2][a]];
            let w = (0..3)
                .max_by(|&i, &j| col[i].abs().total_cmp(&col[j].abs()))
                .unwrap_or(a);
            (w, col[w] >= 0.0)
        };
        let (wx, px) = axis(0);
        let (wy, py) = axis(1);
        // Degenerate (both along one world axis, or a zero affine): stored order.
        if wx == wy {
            return Orientation {
                transpose: false,
                flip_cols: false,
                flip_rows: false,
            };
        }
        let transpose = wy < wx;
        let (pc, pr) = if transpose { (py, px) } else { (px, py) };
        // A display axis runs towards decreasing world coordinate: flip where the stored one
        // runs towards increasing.
        Orientation {
            transpose,
            flip_cols: pc,
            flip_rows: pr,
        }
    }

    /// `plane` (`nx × ny`, `x` fastest) as drawn: `(pixels, width, height)`.
    pub fn apply<T: Copy>(&self, plane: &[T], nx: usize, ny: usize) -> (Vec<T>, usize, usize) {
        let (w, h) = if self.transpose { (ny, nx) } else { (nx, ny) };
        let mut out = Vec::with_capacity(w * h);
        for r in 0..h {
            let r = if self.flip_rows { h - 1 - r } else { r };
            for c in 0..w {
                let c = if self.flip_cols { w - 1 - c } else { c };
                let (x, y) = if self.transpose { (r, c) } else { (c, r) };
                out.push(plane[y * nx + x]);
            }
        }
        (out, w, h)
    }
}

/// Removes `overlay_z*.png` files left in `dir` by an earlier run, so that a re-run into the
/// same directory shows only its own overlays. Returns how many were removed.
///
/// # Errors
/// [`Error::Stale`] if the directory cannot be listed or a file cannot be removed.
pub fn remove_stale_overlays(dir: &Path) -> Result<usize, Error> {
    let stale = |source| Error::Stale {
        dir: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(stale(e)),
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.map_err(stale)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("overlay_z") && name.ends_with(".png") {
            std::fs::remove_file(&path).map_err(stale)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The mask in numbers, for reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MaskSummary {
    /// Voxels of the mask.
    pub voxels: usize,
    /// Voxels marked 1.
    pub positive_voxels: usize,
    /// Their fraction.
    pub positive_fraction: f64,
    /// Their volume in millilitres (from the header's spacing).
    pub positive_ml: f64,
    /// Slices with at least one positive voxel.
    pub slices_with_positive: usize,
    /// The slice with the most positive voxels, if any.
    pub busiest_slice: Option<usize>,
}

impl MaskSummary {
    /// Summarises `mask` (the scan's extents) of `ct`.
    pub fn of(ct: &CtVolume, mask: &[u8]) -> Self {
        let plane = ct.plane_len().max(1);
        let per_slice: Vec<usize> = mask
            .chunks(plane)
            .map(|s| s.iter().filter(|&&v| v != 0).count())
            .collect();
        let positive: usize = per_slice.iter().sum();
        let voxel_ml = [1, 2, 3]
            .iter()
            .map(|&i| f64::from(ct.header.pixdim[i].abs()))
            .product::<f64>()
            / 1000.0;
        let busiest = per_slice
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(z, _)| z);
        Self {
            voxels: mask.len(),
            positive_voxels: positive,
            positive_fraction: positive as f64 / mask.len().max(1) as f64,
            positive_ml: positive as f64 * voxel_ml,
            slices_with_positive: per_slice.iter().filter(|&&n| n > 0).count(),
            busiest_slice: busiest,
        }
    }
}

/// Smallest side of an overlay image: small slices are enlarged (nearest neighbour, an integer
/// factor) to at least this many pixels.
pub const MIN_OVERLAY_SIDE: usize = 256;

/// `plane` (`w × h`, row-major) enlarged `k` times in both axes by repetition.
fn enlarge<T: Copy>(plane: &[T], w: usize, k: usize) -> Vec<T> {
    if k == 1 {
        return plane.to_vec();
    }
    let mut out = Vec::with_capacity(plane.len() * k * k);
    for row in plane.chunks(w) {
        let wide: Vec<T> = row
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, k))
            .collect();
        for _ in 0..k {
            out.extend_from_slice(&wide);
        }
    }
    out
}

/// Checks that every overlay slice is inside a volume of `nz` slices (before a long run).
///
/// # Errors
/// [`Error::Slice`] for the first slice outside.
pub fn check_overlays(slices: &[usize], nz: usize) -> Result<(), Error> {
    match slices.iter().find(|&&z| z >= nz) {
        Some(&z) => Err(Error::Slice { z, nz }),
        None => Ok(()),
    }
}

/// Writes `overlay_zNNN.png` into `dir` for every slice in `slices`: the CT slice in the lung
/// window with `mask` tinted red, in the radiological convention ([`Orientation`]), enlarged to
/// at least [`MIN_OVERLAY_SIDE`] pixels. Returns the files written.
///
/// # Errors
/// [`Error::Slice`] for a slice outside the volume, [`Error::Png`] if writing fails.
pub fn write_overlays(
    dir: &Path,
    ct: &CtVolume,
    mask: &[u8],
    slices: &[usize],
) -> Result<Vec<PathBuf>, Error> {
    let [nx, ny, nz] = ct.dims;
    let plane = nx * ny;
    check_overlays(slices, nz)?;
    let orient = Orientation::of(&ct.header.affine());
    let mut out = Vec::with_capacity(slices.len());
    for &z in slices {
        let path = dir.join(format!("overlay_z{z:03}.png"));
        let k = MIN_OVERLAY_SIDE.div_ceil(nx.max(ny).max(1)).max(1);
        let (image, w, h) = orient.apply(&ct.slice_i16(z), nx, ny);
        let (tint, _, _) = orient.apply(&mask[z * plane..(z + 1) * plane], nx, ny);
        preview::write_overlay_png(
            &path,
            w * k,
            h * k,
            &enlarge(&image, w, k),
            &enlarge(&tint, w, k),
        )
        .map_err(|source| Error::Png {
            path: path.clone(),
            source,
        })?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One volume stored twice: as the phantom stores it (voxel x towards the patient's left,
    /// y towards posterior: LPS order) and flipped in x and y with the affine that says so (RAS
    /// order). The overlays are the same bytes; a transposed copy draws the same too.
    #[test]
    fn ras_and_lps_stored_copies_give_identical_overlays() {
        let ph = crate::synth::Phantom::new(crate::synth::Params {
            dims: [24, 20, 3],
            seed: 5,
        })
        .unwrap();
        let (lps, label) = CtVolume::from_phantom(&ph).unwrap();
        let [nx, ny, nz] = lps.dims;
        let flip = |v: &[f32]| -> Vec<f32> {
            let mut out = Vec::with_capacity(v.len());
            for z in 0..nz {
                for y in (0..ny).rev() {
                    for x in (0..nx).rev() {
                        out.push(v[(z * ny + y) * nx + x]);
                    }
                }
            }
            out
        };
        let a = lps.header.affine();
        // Voxel (nx-1-i, ny-1-j) of the flipped copy is voxel (i, j) of the original.
        let mut srow = [lps.header.srow_x, lps.header.srow_y, lps.header.srow_z];
        for (r, row) in srow.iter_mut().enumerate() {
            row[3] = (a[r][3] + a[r][0] * (nx - 1) as f64 + a[r][1] * (ny - 1) as f64) as f32;
            row[0] = -row[0];
            row[1] = -row[1];
        }
        let mut ras = lps.clone();
        ras.hu = flip(&lps.hu);
        ras.header.srow_x = srow[0];
        ras.header.srow_y = srow[1];
        ras.header.srow_z = srow[2];
        ras.header.sform_code = 1;
        let mut lps = lps;
        lps.header.sform_code = 1;
        let ras_label: Vec<u8> = flip(&label.iter().map(|&v| f32::from(v)).collect::<Vec<_>>())
            .iter()
            .map(|&v| v as u8)
            .collect();
        assert_ne!(ras.hu, lps.hu, "the copies are stored differently");
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let f1 = write_overlays(d1.path(), &lps, &label, &[1]).unwrap();
        let f2 = write_overlays(d2.path(), &ras, &ras_label, &[1]).unwrap();
        assert_eq!(
            std::fs::read(&f1[0]).unwrap(),
            std::fs::read(&f2[0]).unwrap()
        );
        assert_eq!(
            Orientation::of(&lps.header.affine()),
            Orientation {
                transpose: false,
                flip_cols: false,
                flip_rows: false
            }
        );
        // A transposed store (stored x runs along world y) is drawn the same way.
        let t = Orientation::of(&[
            [0.0, -1.0, 0.0, 0.0],
            [-1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
        ]);
        assert!(t.transpose && !t.flip_cols && !t.flip_rows);
        let (img, w, h) = t.apply(&[1, 2, 3, 4, 5, 6], 3, 2);
        assert_eq!((w, h), (2, 3));
        assert_eq!(img, vec![1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn stale_overlays_are_removed_and_masks_summarised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("overlay_z007.png"), b"old").unwrap();
        std::fs::write(dir.path().join("keep.txt"), b"x").unwrap();
        assert_eq!(remove_stale_overlays(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep.txt").exists());
        assert!(check_overlays(&[0, 2], 3).is_ok());
        assert!(matches!(
            check_overlays(&[0, 3], 3),
            Err(Error::Slice { z: 3, nz: 3 })
        ));
        let header = nifti::Header::new(
            [2, 2, 2],
            [1.0, 1.0, 2.0],
            nifti::Datatype::I16,
            [[0.0; 4]; 3],
        );
        let ct = CtVolume {
            header,
            dims: [2, 2, 2],
            hu: vec![0.0; 8],
        };
        let s = MaskSummary::of(&ct, &[0, 0, 0, 0, 1, 1, 1, 0]);
        assert_eq!(s.positive_voxels, 3);
        assert_eq!(s.slices_with_positive, 1);
        assert_eq!(s.busiest_slice, Some(1));
        assert!((s.positive_ml - 0.006).abs() < 1e-12);
    }

    #[test]
    fn busiest_slices_pick_the_largest_masks() {
        let plane = 4;
        let mask = [
            0, 0, 0, 0, // z0: 0
            1, 1, 0, 0, // z1: 2
            1, 0, 0, 0, // z2: 1
            1, 1, 1, 0, // z3: 3
        ];
        assert_eq!(busiest_slices(&mask, plane, 2), vec![1, 3]);
        assert_eq!(busiest_slices(&mask, plane, 9), vec![1, 2, 3]);
        assert_eq!(busiest_slices(&[0; 12], plane, 2), vec![1]);
    }

    #[test]
    fn mask_keeps_geometry_and_overlays_are_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let ph = crate::synth::Phantom::new(crate::synth::Params {
            dims: [8, 6, 3],
            seed: 1,
        })
        .unwrap();
        let (ct, label) = CtVolume::from_phantom(&ph).unwrap();
        let p = write_mask(&dir.path().join("mask.nii.gz"), &ct, &label).unwrap();
        let back = nifti::read(&p).unwrap();
        assert_eq!(back.header.geometry(), ct.header.geometry());
        assert_eq!(
            back.data,
            label.iter().map(|&v| f32::from(v)).collect::<Vec<_>>()
        );
        let files = write_overlays(dir.path(), &ct, &label, &[0, 2]).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[1].ends_with("overlay_z002.png"));
        assert!(write_overlays(dir.path(), &ct, &label, &[3]).is_err());
        // 8 × 6 voxels are drawn 32× larger: 256 × 192 pixels.
        let png = std::fs::read(&files[0]).unwrap();
        assert_eq!(&png[16..24], &[0, 0, 1, 0, 0, 0, 0, 192]);
        assert_eq!(
            enlarge(&[1, 2, 3, 4], 2, 2),
            vec![1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]
        );
    }
}
