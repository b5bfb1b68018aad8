//! The plaintext references over a whole volume: the float UNet and the fixed-point UNet
//! (bit for bit what the secure protocol computes), slice by slice on the seed's 2.5D stacks,
//! timed.

use std::time::{Duration, Instant};

use bunet_unet::{Model, QuantModel, fixed, float};

use crate::volume::{self, Prepared};

/// Why a reference run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The volume could not be cut into slice stacks.
    #[error(transparent)]
    Volume(#[from] volume::Error),
    /// The model refused the input.
    #[error(transparent)]
    Model(#[from] bunet_unet::Error),
}

/// A mask of a whole scan (`[nx, ny, nz]`, `x` fastest) and the time it took.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// 0/1 per voxel of the scan, `mask[x + nx * (y + ny * z)]`.
    pub mask: Vec<u8>,
    /// Wall time of the whole volume.
    pub wall: Duration,
}

impl Segmentation {
    /// The mask of slice `z`.
    ///
    /// # Panics
    /// If `z` is outside the scan.
    pub fn slice(&self, plane: usize, z: usize) -> &[u8] {
        &self.mask[z * plane..(z + 1) * plane]
    }
}

/// The precision a reference runs in.
#[derive(Clone, Copy, Debug)]
pub enum Reference<'m> {
    /// The float (f32) UNet.
    Float(&'m Model),
    /// The fixed-point UNet over `Z_p`.
    Fixed(&'m QuantModel),
}

impl Reference<'_> {
    /// The mask of slice `z` (padded extents).
    ///
    /// # Errors
    /// [`Error`] if the slice stack does not fit the model.
    pub fn segment_slice(&self, vol: &Prepared, z: usize) -> Result<Vec<u8>, Error> {
        let stack = vol.stack(z)?;
        let mask = match self {
            Reference::Float(m) => float::segment(m, stack)?,
            Reference::Fixed(q) => fixed::segment(q, &stack)?,
        };
        Ok(mask.into_vec())
    }

    /// Segments every slice of `vol` (cropped back to the scan), calling `progress` after each.
    ///
    /// # Errors
    /// As [`Reference::segment_slice`].
    pub fn segment(
        &self,
        vol: &Prepared,
        mut progress: impl FnMut(usize),
    ) -> Result<Segmentation, Error> {
        let start = Instant::now();
        let [nx, ny, nz] = vol.scan_dims();
        let mut mask = Vec::with_capacity(nx * ny * nz);
        for z in 0..nz {
            mask.extend(vol.crop(&self.segment_slice(vol, z)?));
            progress(z);
        }
        Ok(Segmentation {
            mask,
            wall: start.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::CtVolume;
    use bunet_unet::tensor::stack_slices;
    use bunet_unet::{Architecture, Quant, Tensor, Weights};

    #[test]
    fn volume_masks_equal_the_unet_crate_volume_references() {
        let arch = Architecture {
            base_features: 4,
            depth: 2,
            ..Architecture::seed()
        };
        let model = Weights::random_trained_like(&arch, 5).unwrap().fold();
        let qm = QuantModel::new(&model, Quant::q24()).unwrap();
        let dims = [8, 12, 7];
        let hu: Vec<f32> = (0..8 * 12 * 7)
            .map(|i| ((i * 7919) % 1400) as f32 - 1000.0)
            .collect();
        let header =
            crate::nifti::Header::new(dims, [1.0; 3], crate::nifti::Datatype::I16, [[0.0; 4]; 3]);
        let ct = CtVolume { header, dims, hu };
        let vol = ct.prepare(&arch).unwrap();
        // The volume fits without padding, so the unet crate's own volume loop applies.
        let norm = Tensor::from_vec(
            1,
            [7, 12, 8],
            ct.hu.iter().map(|&v| crate::model::normalise(v)).collect(),
        )
        .unwrap();
        assert_eq!(
            vol.stack(3).unwrap().data(),
            stack_slices(&norm, 3).unwrap().data()
        );
        let mut seen = 0;
        let f = Reference::Float(&model)
            .segment(&vol, |_| seen += 1)
            .unwrap();
        assert_eq!(seen, 7);
        assert_eq!(
            f.mask,
            float::segment_volume(&model, &norm).unwrap().into_vec()
        );
        let q = Reference::Fixed(&qm).segment(&vol, |_| {}).unwrap();
        assert_eq!(
            q.mask,
            fixed::segment_volume(&qm, &norm).unwrap().into_vec()
        );
    }
}
