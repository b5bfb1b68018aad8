//! Dense channel-major tensors (`[channel][depth][height][width]`, depth 1 in 2D) and the 2.5D
//! slice stacking of the seed's input.

use crate::arch::SLICE_OFFSETS;
use crate::error::ShapeError;

/// A dense tensor of `channels` planes of extents `dims = [depth, height, width]`.
#[derive(Clone, PartialEq)]
pub struct Tensor<T> {
    channels: usize,
    dims: [usize; 3],
    data: Vec<T>,
}

impl<T> std::fmt::Debug for Tensor<T> {
    /// Shape only: tensors are large, and in the secure driver they hold shares.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("channels", &self.channels)
            .field("dims", &self.dims)
            .finish_non_exhaustive()
    }
}

impl<T> Tensor<T> {
    /// Wraps `data` (channel-major, then depth, height, width).
    ///
    /// # Errors
    /// [`ShapeError::DataLength`] if `data.len() != channels · depth · height · width` (or the
    /// product overflows).
    pub fn from_vec(channels: usize, dims: [usize; 3], data: Vec<T>) -> Result<Self, ShapeError> {
        let expected = dims
            .iter()
            .try_fold(channels, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX);
        if data.len() != expected {
            return Err(ShapeError::DataLength {
                expected,
                found: data.len(),
            });
        }
        Ok(Self {
            channels,
            dims,
            data,
        })
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Spatial extents `[depth, height, width]`.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// Elements per channel.
    pub fn plane_len(&self) -> usize {
        self.dims.iter().product()
    }

    /// All elements, channel-major.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// All elements, mutable.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements, consuming the tensor.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Channel `c`.
    ///
    /// # Panics
    /// If `c >= channels`.
    pub fn channel(&self, c: usize) -> &[T] {
        let n = self.plane_len();
        &self.data[c * n..(c + 1) * n]
    }

    /// Elementwise map into a new tensor of the same shape.
    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Tensor<U> {
        Tensor {
            channels: self.channels,
            dims: self.dims,
            data: self.data.iter().map(f).collect(),
        }
    }
}

impl<T: Clone> Tensor<T> {
    /// A tensor filled with `value`.
    pub fn filled(channels: usize, dims: [usize; 3], value: T) -> Self {
        Self {
            channels,
            dims,
            data: vec![value; channels * dims.iter().product::<usize>()],
        }
    }
}

/// The 2.5D input of slice `z` of a one-channel `volume` of extents `[depth, height, width]`: the
/// slices `z + o` for `o` in [`SLICE_OFFSETS`] as channels, zeros outside the volume.
///
/// # Errors
/// [`ShapeError::Channels`] if the volume has more than one channel, [`ShapeError::Spatial`] if
/// `z` is outside it.
pub fn stack_slices(volume: &Tensor<f32>, z: usize) -> Result<Tensor<f32>, ShapeError> {
    if volume.channels() != 1 {
        return Err(ShapeError::Channels {
            expected: 1,
            found: volume.channels(),
        });
    }
    let [d, h, w] = volume.dims();
    if z >= d {
        return Err(ShapeError::Spatial {
            found: volume.dims(),
            reason: format!("slice {z} is outside the volume"),
        });
    }
    let plane = h * w;
    let mut data = vec![0.0f32; SLICE_OFFSETS.len() * plane];
    for (c, &o) in SLICE_OFFSETS.iter().enumerate() {
        let zz = z as isize + o;
        if (0..d as isize).contains(&zz) {
            let zz = zz as usize;
            data[c * plane..(c + 1) * plane]
                .copy_from_slice(&volume.data()[zz * plane..(zz + 1) * plane]);
        }
    }
    Tensor::from_vec(SLICE_OFFSETS.len(), [1, h, w], data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_length() {
        assert!(Tensor::from_vec(2, [1, 2, 3], vec![0u8; 12]).is_ok());
        assert!(Tensor::from_vec(2, [1, 2, 3], vec![0u8; 11]).is_err());
        assert!(Tensor::from_vec(usize::MAX, [2, 2, 2], vec![0u8; 8]).is_err());
    }

    #[test]
    fn stacking_takes_offsets_and_pads_with_zeros() {
        let vol = Tensor::from_vec(1, [8, 1, 2], (0..16).map(|v| v as f32).collect()).unwrap();
        let s = stack_slices(&vol, 3).unwrap();
        // offsets -5, -2, 0, 2, 5 → slices -2 (zero), 1, 3, 5, 8 (zero)
        assert_eq!(s.data(), &[0., 0., 2., 3., 6., 7., 10., 11., 0., 0.][..]);
        assert!(stack_slices(&vol, 8).is_err());
    }
}
