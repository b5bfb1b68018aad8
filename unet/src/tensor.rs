//! Dense channel-major tensors (`[channel][depth][height][width]`; in 2D the depth axis holds a
//! batch of slices, usually one), the 2.5D slice stacking of the seed's input, and the batching
//! of slice inputs along the depth axis. [`SecretTensor`] is a tensor erased when dropped, for
//! the secure drivers' shares.

use zeroize::{Zeroize, Zeroizing};

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

/// Erases every element and the vector's spare capacity; the shape stays, so an erased tensor
/// is still a valid one (of zeros, for integers). Copies left behind when a vector grew are out
/// of reach: the secure drivers' tensors are built at their final length and never grow.
impl<T: Zeroize> Zeroize for Tensor<T> {
    fn zeroize(&mut self) {
        self.data.iter_mut().for_each(Zeroize::zeroize);
        self.data.spare_capacity_mut().zeroize();
    }
}

/// A tensor erased when dropped ([`Zeroizing`] over [`Tensor`]): how the secure drivers hold
/// additive shares of activations, the masks that are the server's shares and the client's
/// input between layers, so that none outlives its last use in freed memory. Derefs to the
/// tensor; its `Debug` shows nothing of it.
pub type SecretTensor<T = u64> = Zeroizing<Tensor<T>>;

impl<T: Clone> Tensor<T> {
    /// Depth `k` of every channel as a tensor of extents `[1, h, w]` (one slice of a batch made
    /// by [`batch`]).
    ///
    /// # Panics
    /// If `k` is not below the depth.
    pub fn depth_slice(&self, k: usize) -> Tensor<T> {
        let [d, h, w] = self.dims;
        assert!(k < d, "depth {k} of a tensor of depth {d}");
        let plane = h * w;
        let n = self.plane_len();
        let data = (0..self.channels)
            .flat_map(|c| {
                self.data[c * n + k * plane..c * n + (k + 1) * plane]
                    .iter()
                    .cloned()
            })
            .collect();
        Tensor {
            channels: self.channels,
            dims: [1, h, w],
            data,
        }
    }

    /// A tensor filled with `value`.
    pub fn filled(channels: usize, dims: [usize; 3], value: T) -> Self {
        Self {
            channels,
            dims,
            data: vec![value; channels * dims.iter().product::<usize>()],
        }
    }
}

/// Stacks `slices` (each `channels` planes of extents `[1, h, w]`, all alike) along the depth
/// axis: one tensor of extents `[slices.len(), h, w]` whose depth `k` of channel `c` is channel
/// `c` of `slices[k]`. A 2D network segments each depth as if it were alone, so this is how
/// several slices share one inference (and each of its nonlinear exchanges).
///
/// # Errors
/// [`ShapeError::Spatial`] if `slices` is empty or the slices differ in extents or have
/// depth other than 1, [`ShapeError::Channels`] if they differ in channels.
pub fn batch<T: Copy>(slices: &[Tensor<T>]) -> Result<Tensor<T>, ShapeError> {
    let Some(first) = slices.first() else {
        return Err(ShapeError::Spatial {
            found: [0; 3],
            reason: "a batch holds at least one slice".into(),
        });
    };
    let (channels, [d, h, w]) = (first.channels(), first.dims());
    if d != 1 {
        return Err(ShapeError::Spatial {
            found: first.dims(),
            reason: "a batch is made of single slices (depth 1)".into(),
        });
    }
    for s in slices {
        if s.channels() != channels {
            return Err(ShapeError::Channels {
                expected: channels,
                found: s.channels(),
            });
        }
        if s.dims() != first.dims() {
            return Err(ShapeError::Spatial {
                found: s.dims(),
                reason: format!("every slice of a batch has extents {:?}", first.dims()),
            });
        }
    }
    let plane = h * w;
    let mut data = Vec::with_capacity(channels * slices.len() * plane);
    for c in 0..channels {
        for s in slices {
            data.extend_from_slice(s.channel(c));
        }
    }
    Tensor::from_vec(channels, [slices.len(), h, w], data)
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use zeroize::ZeroizeOnDrop;

    /// An element that counts its erasures.
    #[derive(Clone)]
    struct Probe(Arc<AtomicUsize>);

    impl Zeroize for Probe {
        fn zeroize(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn erased_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn secret_tensors_erase_every_element_when_dropped() {
        // The share type erases itself on drop (a plain `Tensor` would not compile here).
        erased_on_drop::<SecretTensor>();
        let erased = Arc::new(AtomicUsize::new(0));
        let t: SecretTensor<Probe> =
            Tensor::filled(2, [1, 2, 3], Probe(Arc::clone(&erased))).into();
        let copy = t.clone();
        assert_eq!(erased.load(Ordering::Relaxed), 0);
        drop(t);
        assert_eq!(erased.load(Ordering::Relaxed), 12, "every element, once");
        // A clone is a secret tensor too.
        drop(copy);
        assert_eq!(erased.load(Ordering::Relaxed), 24);
        // Moved out of a plain tensor, nothing is erased: the wrapper is what erases.
        drop(Tensor::filled(1, [1, 1, 4], Probe(Arc::clone(&erased))));
        assert_eq!(erased.load(Ordering::Relaxed), 24);
    }

    #[test]
    fn an_erased_tensor_is_zeros_of_the_same_shape_and_prints_nothing() {
        let mut v = Vec::with_capacity(16);
        v.extend(1..=12u64);
        let mut t: SecretTensor = Tensor::from_vec(2, [1, 2, 3], v).unwrap().into();
        assert_eq!(format!("{t:?}"), "Zeroizing { .. }");
        t.zeroize();
        assert_eq!((t.channels(), t.dims()), (2, [1, 2, 3]));
        assert!(t.data().iter().all(|&x| x == 0));
    }

    #[test]
    fn batch_then_depth_slice_is_identity() {
        let slices: Vec<Tensor<u32>> = (0..3)
            .map(|k| Tensor::from_vec(2, [1, 2, 3], (0..12).map(|i| 100 * k + i).collect()))
            .collect::<Result<_, _>>()
            .unwrap();
        let b = batch(&slices).unwrap();
        assert_eq!(b.dims(), [3, 2, 3]);
        assert_eq!(&b.channel(1)[6..12], slices[1].channel(1));
        for (k, s) in slices.iter().enumerate() {
            assert_eq!(&b.depth_slice(k), s);
        }
        assert!(batch::<u32>(&[]).is_err());
        assert!(
            batch(std::slice::from_ref(&b)).is_err(),
            "depth 3 is not a slice"
        );
        let other = Tensor::from_vec(2, [1, 3, 2], vec![0u32; 12]).unwrap();
        assert!(batch(&[slices[0].clone(), other]).is_err());
        let fewer = Tensor::from_vec(1, [1, 2, 3], vec![0u32; 6]).unwrap();
        assert!(batch(&[slices[0].clone(), fewer]).is_err());
    }

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
