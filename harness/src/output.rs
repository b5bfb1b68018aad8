//! What a segmentation leaves on disk: the mask as NIfTI with the scan's geometry, and PNG
//! overlays of chosen slices (CT in the lung window, mask tinted red).

use std::path::{Path, PathBuf};

use crate::nifti;
use crate::preview;
use crate::volume::CtVolume;

/// Why writing the outputs failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the mask failed.
    #[error("writing {path}: {source}")]
    Nifti {
        /// The file.
        path: PathBuf,
        /// The codec's error.
        #[source]
        source: nifti::Error,
    },
    /// Writing an overlay failed.
    #[error("writing {path}: {source}")]
    Png {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: preview::Error,
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

/// Writes `overlay_zNNN.png` into `dir` for every slice in `slices`: the CT slice in the lung
/// window with `mask` tinted red, enlarged to at least [`MIN_OVERLAY_SIDE`] pixels. Returns the
/// files written.
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
    let mut out = Vec::with_capacity(slices.len());
    for &z in slices {
        if z >= nz {
            return Err(Error::Slice { z, nz });
        }
        let path = dir.join(format!("overlay_z{z:03}.png"));
        let k = MIN_OVERLAY_SIDE.div_ceil(nx.max(ny).max(1)).max(1);
        preview::write_overlay_png(
            &path,
            nx * k,
            ny * k,
            &enlarge(&ct.slice_i16(z), nx, k),
            &enlarge(&mask[z * plane..(z + 1) * plane], nx, k),
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
