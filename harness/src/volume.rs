//! CT volumes on their way into the network: Hounsfield values from a NIfTI file or the
//! synthetic generator, normalised and padded to a shape the UNet takes, cut into the seed's
//! 2.5D slice stacks (by [`bunet_unet::tensor::stack_slices`]) or, for a volume (3D) UNet, into
//! slabs along `z`, and masks cropped back to the scan's geometry.

use bunet_unet::tensor::stack_slices;
use bunet_unet::{Architecture, Dims, InputNorm, Quant, ShapeError, Tensor};

#[cfg(test)]
use crate::model::normalise;
use crate::nifti::{self, Header};
use crate::synth::{Phantom, Slice};

/// Hounsfield value used to pad slices to a multiple of the network's down-sampling (air).
pub const PAD_HU: f32 = -1000.0;

/// Why a volume cannot be segmented.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The architecture is not a 2D (2.5D) UNet: the secure HomConv handles 2D convolutions only.
    #[error("the harness segments with 2D (2.5D) UNets only, found {0}")]
    NotTwoD(String),
    /// The architecture is neither the seed's 2.5D UNet (`dims=2 in=5`) nor a volume UNet on the
    /// CT alone (`dims=3 in=1`).
    #[error(
        "the harness segments with 2.5D UNets (dims=2 in=5) or volume UNets (dims=3 in=1), found {0}"
    )]
    Unsupported(String),
    /// The operation needs the other kind of prepared volume (a 2.5D stack of a 3D volume, a
    /// slab of a 2.5D one).
    #[error("{0}")]
    WrongKind(&'static str),
    /// A slab is empty, leaves the padded volume or does not start on the pooling grid.
    #[error("slab {start}..{end} does not fit a padded volume of {nz} slices on a grid of {step}")]
    Slab {
        /// First slice of the slab.
        start: usize,
        /// One past its last slice.
        end: usize,
        /// Slices of the padded volume.
        nz: usize,
        /// The pooling grid `2^depth`.
        step: usize,
    },
    /// A slice index is outside the volume.
    #[error("slice {z} is outside the volume of {nz} slices")]
    Slice {
        /// The slice asked for.
        z: usize,
        /// Slices in the volume.
        nz: usize,
    },
    /// A crop box is empty or leaves the volume.
    #[error("crop of {extent:?} voxels at {origin:?} does not fit a volume of {dims:?}")]
    Crop {
        /// The box's first voxel.
        origin: [usize; 3],
        /// The box's extent.
        extent: [usize; 3],
        /// The volume's extent.
        dims: [usize; 3],
    },
    /// A tensor shape did not fit the model.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// The volume holds NaN or infinite voxels: no normalisation makes them a CT value.
    #[error(
        "{count} voxel(s) are NaN or infinite (the first at x={}, y={}, z={}): not a CT volume",
        first[0], first[1], first[2]
    )]
    NonFinite {
        /// How many voxels.
        count: usize,
        /// The first one, `[x, y, z]`.
        first: [usize; 3],
    },
}

/// Smallest in-plane extent below which a volume is reported as too small for a CT scan.
pub const MIN_PLANE: usize = 32;

/// What an input check found worth saying that does not stop the run.
#[derive(Clone, Debug, PartialEq)]
pub enum Warning {
    /// The values are not in Hounsfield units as a CT has them (no air, or an 8-bit range).
    NotHounsfield {
        /// Smallest voxel value.
        min: f32,
        /// Largest voxel value.
        max: f32,
    },
    /// The volume is smaller than any CT scan.
    TooSmall {
        /// Its extent.
        dims: [usize; 3],
    },
    /// The voxel spacing differs from the model's training spacing by more than 25 % on an axis.
    Spacing {
        /// The scan's spacing, mm.
        scan: [f32; 3],
        /// The model's, mm.
        model: [f32; 3],
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::NotHounsfield { min, max } => write!(
                f,
                "voxel values span {min}..{max}, which does not look like Hounsfield units \
                 (a CT has air near -1000 HU); an 8-bit or rescaled image gives a meaningless mask"
            ),
            Warning::TooSmall { dims } => write!(
                f,
                "the volume is only {}x{}x{} voxels; a CT slice is usually 256 or more a side",
                dims[0], dims[1], dims[2]
            ),
            Warning::Spacing { scan, model } => write!(
                f,
                "voxel spacing {:.3}x{:.3}x{:.3} mm differs from the model's training spacing \
                 {:.3}x{:.3}x{:.3} mm by more than 25 %; the volume is not resampled, so lesions \
                 appear at another scale than the model learned (resample the scan first)",
                scan[0], scan[1], scan[2], model[0], model[1], model[2]
            ),
        }
    }
}

/// A CT volume in Hounsfield units with the header it came with.
#[derive(Clone, Debug)]
pub struct CtVolume {
    /// The header (geometry of the scan; the mask is written with it).
    pub header: Header,
    /// Extent `[nx, ny, nz]`.
    pub dims: [usize; 3],
    /// HU, `hu[x + nx * (y + ny * z)]`.
    pub hu: Vec<f32>,
}

impl CtVolume {
    /// The volume of a NIfTI image.
    pub fn from_image(image: nifti::Image) -> Self {
        Self {
            header: image.header,
            dims: image.dims,
            hu: image.data,
        }
    }

    /// Renders a synthetic phantom: the volume (with an `i16` CT header) and its lesion label.
    ///
    /// # Errors
    /// [`crate::synth::ParamError`] if rendering fails (never for a phantom built by
    /// [`Phantom::new`]).
    pub fn from_phantom(phantom: &Phantom) -> Result<(Self, Vec<u8>), crate::synth::ParamError> {
        let dims = phantom.dims();
        let mut header = Header::new(
            dims,
            phantom.spacing(),
            nifti::Datatype::I16,
            phantom.affine(),
        );
        header.set_description(&format!(
            "bunet synthetic chest CT seed={}",
            phantom.params().seed
        ));
        header.cal_min = -1000.0;
        header.cal_max = 400.0;
        let n = dims[0] * dims[1] * dims[2];
        let (mut hu, mut label) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut slice = Slice::default();
        for k in 0..dims[2] {
            phantom.render_slice(k, &mut slice)?;
            hu.extend(slice.ct.iter().map(|&v| f32::from(v)));
            label.extend_from_slice(&slice.label);
        }
        Ok((Self { header, dims, hu }, label))
    }

    /// Voxels per slice.
    pub fn plane_len(&self) -> usize {
        self.dims[0] * self.dims[1]
    }

    /// Slice `z` in HU.
    ///
    /// # Panics
    /// If `z` is outside the volume.
    pub fn slice(&self, z: usize) -> &[f32] {
        let n = self.plane_len();
        &self.hu[z * n..(z + 1) * n]
    }

    /// Slice `z` as `i16` HU (rounded, saturated), for PNG overlays.
    ///
    /// # Panics
    /// If `z` is outside the volume.
    pub fn slice_i16(&self, z: usize) -> Vec<i16> {
        self.slice(z)
            .iter()
            .map(|&v| v.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16)
            .collect()
    }

    /// The sub-volume of `extent = [w, h, d]` voxels starting at voxel `origin = [x0, y0, z0]`,
    /// with the header's voxel-to-world mapping moved to the new origin (the crop sits where
    /// it sat in the scan).
    ///
    /// # Errors
    /// [`Error::Crop`] if the box is empty or leaves the volume.
    pub fn crop(&self, origin: [usize; 3], extent: [usize; 3]) -> Result<CtVolume, Error> {
        let [nx, ny, _] = self.dims;
        check_box(self.dims, origin, extent)?;
        let mut header = self.header.clone();
        header.dim[1..4].copy_from_slice(&extent.map(|v| i16::try_from(v).unwrap_or(i16::MAX)));
        let o = origin.map(|v| v as f32);
        for row in [&mut header.srow_x, &mut header.srow_y, &mut header.srow_z] {
            row[3] += row[0] * o[0] + row[1] * o[1] + row[2] * o[2];
        }
        let a = self.header.affine();
        let shift = |r: usize| {
            (a[r][0] * f64::from(o[0]) + a[r][1] * f64::from(o[1]) + a[r][2] * f64::from(o[2]))
                as f32
        };
        header.qoffset_x += shift(0);
        header.qoffset_y += shift(1);
        header.qoffset_z += shift(2);
        let [w, h, d] = extent;
        let mut hu = Vec::with_capacity(w * h * d);
        for z in origin[2]..origin[2] + d {
            for y in origin[1]..origin[1] + h {
                let row = (z * ny + y) * nx;
                hu.extend_from_slice(&self.hu[row + origin[0]..row + origin[0] + w]);
            }
        }
        Ok(CtVolume {
            header,
            dims: extent,
            hu,
        })
    }

    /// Normalises with the default weights' window ([`InputNorm::SEED`]) and pads the volume
    /// for `arch`; see [`CtVolume::prepare_with`].
    ///
    /// # Errors
    /// As [`CtVolume::prepare_with`].
    pub fn prepare(&self, arch: &Architecture) -> Result<Prepared, Error> {
        Prepared::new(self, arch, &InputNorm::SEED)
    }

    /// Normalises with `norm` (the model's, [`bunet_unet::Model::metadata`]) and pads the
    /// volume for `arch`: in-plane for a 2.5D UNet, and along `z` too for a volume UNet (whose
    /// pooling halves every axis).
    ///
    /// # Errors
    /// [`Error::Unsupported`] unless `arch` is a 2D UNet whose input is the seed's 2.5D stack or
    /// a 3D UNet with one input channel.
    pub fn prepare_with(&self, arch: &Architecture, norm: &InputNorm) -> Result<Prepared, Error> {
        Prepared::new(self, arch, norm)
    }

    /// Checks the voxels before a run: NaN or infinite voxels are refused; values that do not
    /// look like Hounsfield units (no voxel below −500 HU, or all within 0..=255), a volume
    /// smaller than [`MIN_PLANE`] in-plane, and a spacing more than 25 % off the model's
    /// `spacing` (when known) are returned as warnings.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first such voxel.
    pub fn check(&self, spacing: Option<[f32; 3]>) -> Result<Vec<Warning>, Error> {
        let bad = self.hu.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            let i = self
                .hu
                .iter()
                .position(|v| !v.is_finite())
                .expect("counted above");
            let [nx, ny, _] = self.dims;
            return Err(Error::NonFinite {
                count: bad,
                first: [i % nx, (i / nx) % ny, i / (nx * ny)],
            });
        }
        let mut out = Vec::new();
        let (min, max) = self
            .hu
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if !self.hu.is_empty() && (min > -500.0 || (min >= 0.0 && max <= 255.0)) {
            out.push(Warning::NotHounsfield { min, max });
        }
        if self.dims[0] < MIN_PLANE || self.dims[1] < MIN_PLANE {
            out.push(Warning::TooSmall { dims: self.dims });
        }
        if let Some(model) = spacing {
            let scan = [1, 2, 3].map(|i| self.header.pixdim[i].abs());
            let off = (0..3).any(|i| {
                let r = scan[i] / model[i];
                !(r.is_finite() && (0.8..=1.25).contains(&r))
            });
            if off {
                out.push(Warning::Spacing { scan, model });
            }
        }
        Ok(out)
    }
}

fn check_box(dims: [usize; 3], origin: [usize; 3], extent: [usize; 3]) -> Result<(), Error> {
    if (0..3).any(|i| extent[i] == 0 || origin[i] + extent[i] > dims[i]) {
        return Err(Error::Crop {
            origin,
            extent,
            dims,
        });
    }
    Ok(())
}

/// The same box of a mask laid out like the volume (`x` fastest).
///
/// # Errors
/// [`Error::Crop`] if the box is empty or leaves the volume.
pub fn crop_mask(
    mask: &[u8],
    dims: [usize; 3],
    origin: [usize; 3],
    extent: [usize; 3],
) -> Result<Vec<u8>, Error> {
    check_box(dims, origin, extent)?;
    let [nx, ny, _] = dims;
    let [w, h, d] = extent;
    let mut out = Vec::with_capacity(w * h * d);
    for z in origin[2]..origin[2] + d {
        for y in origin[1]..origin[1] + h {
            let row = (z * ny + y) * nx;
            out.extend_from_slice(&mask[row + origin[0]..row + origin[0] + w]);
        }
    }
    Ok(out)
}

/// The in-plane window of `w × h` voxels (on a grid of 4) holding the most mask voxels over all
/// slices: where to crop a demo volume so that it shows lesions. `(x0, y0)`.
pub fn busiest_window(mask: &[u8], dims: [usize; 3], w: usize, h: usize) -> (usize, usize) {
    let [nx, ny, nz] = dims;
    let (w, h) = (w.min(nx), h.min(ny));
    let mut sum = vec![0u32; nx * ny];
    for z in 0..nz {
        for (s, &m) in sum.iter_mut().zip(&mask[z * nx * ny..(z + 1) * nx * ny]) {
            *s += u32::from(m != 0);
        }
    }
    let mut best = (0u64, 0, 0);
    for y0 in (0..=ny - h).step_by(4) {
        for x0 in (0..=nx - w).step_by(4) {
            let v: u64 = (y0..y0 + h)
                .map(|y| {
                    sum[y * nx + x0..y * nx + x0 + w]
                        .iter()
                        .map(|&v| u64::from(v))
                        .sum::<u64>()
                })
                .sum();
            if v > best.0 {
                best = (v, x0, y0);
            }
        }
    }
    (best.1, best.2)
}

/// A volume ready for the network: normalised, each slice padded at the bottom and right with
/// air ([`PAD_HU`]) to a multiple of `2^depth` in both axes; for a volume UNet also padded with
/// air slices after the last one to a multiple of `2^depth` slices.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// `[nz', ny', nx']`, one channel (the layout of [`stack_slices`]); `nz' = nz` in 2.5D.
    tensor: Tensor<f32>,
    /// The scan's extent `[nx, ny, nz]`.
    dims: [usize; 3],
    /// 2.5D stacks or 3D slabs.
    kind: Dims,
    /// The pooling grid `2^depth`.
    step: usize,
}

impl Prepared {
    fn new(ct: &CtVolume, arch: &Architecture, norm: &InputNorm) -> Result<Self, Error> {
        let supported = match arch.dims {
            Dims::Two => arch.in_channels == bunet_unet::arch::SLICE_OFFSETS.len(),
            Dims::Three => arch.in_channels == 1,
        };
        if !supported {
            return Err(Error::Unsupported(arch.to_string()));
        }
        let [nx, ny, nz] = ct.dims;
        let step = 1usize << arch.depth;
        let (px, py) = (nx.next_multiple_of(step), ny.next_multiple_of(step));
        let pz = match arch.dims {
            Dims::Two => nz,
            Dims::Three => nz.next_multiple_of(step),
        };
        let pad = norm.apply(PAD_HU);
        let mut data = vec![pad; px * py * pz];
        for z in 0..nz {
            for y in 0..ny {
                let src = &ct.hu[(z * ny + y) * nx..(z * ny + y + 1) * nx];
                let dst = &mut data[(z * py + y) * px..(z * py + y) * px + nx];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = norm.apply(s);
                }
            }
        }
        let tensor = Tensor::from_vec(1, [pz, py, px], data)?;
        Ok(Self {
            tensor,
            dims: ct.dims,
            kind: arch.dims,
            step,
        })
    }

    /// Slices of the padded volume (`nz'`): a slab may reach up to here.
    pub fn padded_slices(&self) -> usize {
        self.tensor.dims()[0]
    }

    /// The float input of a volume UNet on slices `start..end` of the padded volume,
    /// `[1, end − start, ny', nx']`.
    ///
    /// # Errors
    /// [`Error::WrongKind`] for a 2.5D volume; [`Error::Slab`] unless `start < end <= nz'` and
    /// both are on the pooling grid.
    pub fn slab(&self, start: usize, end: usize) -> Result<Tensor<f32>, Error> {
        if self.kind != Dims::Three {
            return Err(Error::WrongKind(
                "a 2.5D UNet takes slice stacks, not slabs",
            ));
        }
        let nz = self.padded_slices();
        if start >= end
            || end > nz
            || !start.is_multiple_of(self.step)
            || !end.is_multiple_of(self.step)
        {
            return Err(Error::Slab {
                start,
                end,
                nz,
                step: self.step,
            });
        }
        let [_, py, px] = self.tensor.dims();
        let plane = py * px;
        let data = self.tensor.data()[start * plane..end * plane].to_vec();
        Ok(Tensor::from_vec(1, [end - start, py, px], data)?)
    }

    /// The fixed-point input of [`Prepared::slab`] (the client's encoding, residues below `p`).
    ///
    /// # Errors
    /// As [`Prepared::slab`].
    pub fn encoded_slab(
        &self,
        start: usize,
        end: usize,
        quant: &Quant,
    ) -> Result<Tensor<u64>, Error> {
        Ok(quant.encode_tensor(&self.slab(start, end)?))
    }

    /// Whether the volume is cut into 2.5D stacks ([`Dims::Two`]) or 3D slabs.
    pub fn kind(&self) -> Dims {
        self.kind
    }

    /// Number of slices.
    pub fn slices(&self) -> usize {
        self.dims[2]
    }

    /// The scan's extent `[nx, ny, nz]`.
    pub fn scan_dims(&self) -> [usize; 3] {
        self.dims
    }

    /// The network's input extent of one slice stack, `[1, ny', nx']`.
    pub fn input_dims(&self) -> [usize; 3] {
        let [_, py, px] = self.tensor.dims();
        [1, py, px]
    }

    /// The float input of slice `z`: the 2.5D stack of slices `z − 5, z − 2, z, z + 2, z + 5`
    /// (zeros outside the volume), `[5, 1, ny', nx']`.
    ///
    /// # Errors
    /// [`Error::Slice`] if `z` is outside the volume; [`Error::WrongKind`] for a volume UNet.
    pub fn stack(&self, z: usize) -> Result<Tensor<f32>, Error> {
        if self.kind != Dims::Two {
            return Err(Error::WrongKind(
                "a volume UNet takes slabs, not slice stacks",
            ));
        }
        if z >= self.slices() {
            return Err(Error::Slice {
                z,
                nz: self.slices(),
            });
        }
        Ok(stack_slices(&self.tensor, z)?)
    }

    /// The fixed-point input of slice `z` (the client's encoding, residues below `p`).
    ///
    /// # Errors
    /// As [`Prepared::stack`].
    pub fn encoded_stack(&self, z: usize, quant: &Quant) -> Result<Tensor<u64>, Error> {
        Ok(quant.encode_tensor(&self.stack(z)?))
    }

    /// Crops a mask (or any plane of values) of one padded slice (`ny' · nx'` values) to the
    /// scan's `ny · nx`.
    ///
    /// # Panics
    /// If `mask` is not one padded slice long.
    pub fn crop<T: Copy>(&self, mask: &[T]) -> Vec<T> {
        let [_, py, px] = self.tensor.dims();
        assert_eq!(mask.len(), py * px, "one padded slice");
        let [nx, ny, _] = self.dims;
        let mut out = Vec::with_capacity(nx * ny);
        for y in 0..ny {
            out.extend_from_slice(&mask[y * px..y * px + nx]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Params;

    fn arch() -> Architecture {
        Architecture {
            base_features: 4,
            depth: 2,
            ..Architecture::seed()
        }
    }

    #[test]
    fn padding_keeps_the_scan_and_crop_undoes_it() {
        let header = Header::new([6, 5, 3], [1.0; 3], nifti::Datatype::I16, [[0.0; 4]; 3]);
        let hu: Vec<f32> = (0..90).map(|v| v as f32 * 10.0 - 500.0).collect();
        let ct = CtVolume {
            header,
            dims: [6, 5, 3],
            hu: hu.clone(),
        };
        let p = ct.prepare(&arch()).expect("2D arch");
        assert_eq!(p.input_dims(), [1, 8, 8]);
        let s = p.stack(1).expect("inside");
        // Channel 2 is offset 0: slice 1 itself, normalised, padded with air.
        let centre = s.channel(2);
        assert_eq!(centre[0], normalise(hu[30]));
        assert_eq!(centre[8 + 5], normalise(hu[30 + 6 + 5]));
        assert_eq!(centre[6], normalise(PAD_HU));
        assert_eq!(centre[7 * 8], normalise(PAD_HU));
        // Offsets -5 and +5 fall outside the 3 slices: zeros.
        assert!(s.channel(0).iter().all(|&v| v == 0.0));
        let mask: Vec<u8> = (0..64).map(|i| (i % 3 == 0) as u8).collect();
        let cropped = p.crop(&mask);
        assert_eq!(cropped.len(), 30);
        assert_eq!(cropped[6], mask[8]);
        assert!(p.stack(3).is_err());
        let five_3d = Architecture {
            dims: Dims::Three,
            ..arch()
        };
        assert!(ct.prepare(&five_3d).is_err());
        assert!(p.slab(0, 4).is_err(), "a 2.5D volume has no slabs");

        // A volume UNet pads z with air slices too, and takes slabs on the pooling grid.
        let three_d = Architecture {
            dims: Dims::Three,
            in_channels: 1,
            ..arch()
        };
        let v = ct.prepare(&three_d).expect("3D arch");
        assert_eq!(v.padded_slices(), 4);
        let slab = v.slab(0, 4).expect("whole padded volume");
        assert_eq!(slab.dims(), [4, 8, 8]);
        assert_eq!(slab.data()[64 + 8 + 5], normalise(hu[30 + 6 + 5]));
        assert!(
            slab.data()[3 * 64..]
                .iter()
                .all(|&x| x == normalise(PAD_HU))
        );
        assert!(v.slab(2, 4).is_err() && v.slab(0, 8).is_err() && v.slab(0, 2).is_err());
        assert!(v.stack(0).is_err());
    }

    #[test]
    fn phantom_volume_matches_its_slices() {
        let ph = Phantom::new(Params {
            dims: [16, 16, 4],
            seed: 3,
        })
        .expect("phantom");
        let (ct, label) = CtVolume::from_phantom(&ph).expect("render");
        assert_eq!(ct.hu.len(), 16 * 16 * 4);
        assert_eq!(label.len(), ct.hu.len());
        let mut s = Slice::default();
        ph.render_slice(2, &mut s).expect("slice");
        assert_eq!(ct.slice_i16(2), s.ct);

        // A crop keeps the voxels and their world positions.
        let c = ct.crop([4, 2, 1], [8, 10, 2]).expect("inside");
        assert_eq!(c.dims, [8, 10, 2]);
        assert_eq!(c.hu[0], ct.hu[(16 + 2) * 16 + 4]);
        assert_eq!(c.hu[8 * 10 + 8 + 1], ct.hu[(2 * 16 + 3) * 16 + 5]);
        let world = |h: &Header, v: [f64; 3]| {
            let a = h.affine();
            [0, 1, 2].map(|r| a[r][0] * v[0] + a[r][1] * v[1] + a[r][2] * v[2] + a[r][3])
        };
        let (p, q) = (
            world(&c.header, [1.0, 1.0, 1.0]),
            world(&ct.header, [5.0, 3.0, 2.0]),
        );
        assert!((0..3).all(|i| (p[i] - q[i]).abs() < 1e-3), "{p:?} {q:?}");
        let mut qh = c.header.clone();
        qh.sform_code = 0;
        let mut qo = ct.header.clone();
        qo.sform_code = 0;
        let (p, q) = (world(&qh, [1.0, 1.0, 1.0]), world(&qo, [5.0, 3.0, 2.0]));
        assert!(
            (0..3).all(|i| (p[i] - q[i]).abs() < 1e-3),
            "qform {p:?} {q:?}"
        );
        assert_eq!(
            crop_mask(&label, ct.dims, [4, 2, 1], [8, 10, 2])
                .unwrap()
                .len(),
            160
        );
        assert!(ct.crop([10, 0, 0], [8, 4, 1]).is_err());
        assert!(ct.crop([0, 0, 0], [0, 4, 1]).is_err());
    }

    fn volume(dims: [usize; 3], spacing: [f32; 3], hu: Vec<f32>) -> CtVolume {
        let header = Header::new(dims, spacing, nifti::Datatype::I16, [[0.0; 4]; 3]);
        CtVolume { header, dims, hu }
    }

    #[test]
    fn non_finite_voxels_are_refused() {
        let mut hu = vec![-1000.0; 64 * 64 * 2];
        hu[64 * 64 + 3 * 64 + 5] = f32::NAN;
        hu[64 * 64 + 3 * 64 + 6] = f32::INFINITY;
        let err = volume([64, 64, 2], [1.0; 3], hu).check(None).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFinite {
                    count: 2,
                    first: [5, 3, 1]
                }
            ),
            "{err}"
        );
        let nan = volume([64, 64, 1], [1.0; 3], vec![f32::NAN; 64 * 64]);
        assert!(nan.check(None).is_err());
    }

    #[test]
    fn odd_inputs_are_warned_about() {
        let ct: Vec<f32> = (0..64 * 64).map(|i| (i % 1400) as f32 - 1000.0).collect();
        assert_eq!(
            volume([64, 64, 1], [0.8, 0.8, 2.0], ct.clone())
                .check(None)
                .unwrap(),
            []
        );
        // An 8-bit image: 0..255.
        let bytes: Vec<f32> = (0..64 * 64).map(|i| (i % 256) as f32).collect();
        let w = volume([64, 64, 1], [1.0; 3], bytes).check(None).unwrap();
        assert!(
            matches!(
                w[..],
                [Warning::NotHounsfield {
                    min: 0.0,
                    max: 255.0
                }]
            ),
            "{w:?}"
        );
        // One voxel.
        let w = volume([1, 1, 1], [1.0; 3], vec![-1000.0])
            .check(None)
            .unwrap();
        assert!(matches!(w[..], [Warning::TooSmall { .. }]), "{w:?}");
        // Spacing twice the model's.
        let w = volume([64, 64, 1], [1.6, 1.6, 2.0], ct.clone())
            .check(Some([0.8, 0.8, 2.0]))
            .unwrap();
        assert!(matches!(w[..], [Warning::Spacing { .. }]), "{w:?}");
        assert!(w[0].to_string().contains("resample"));
        let w = volume([64, 64, 1], [0.85, 0.85, 2.0], ct)
            .check(Some([0.8, 0.8, 2.0]))
            .unwrap();
        assert!(w.is_empty());
    }

    #[test]
    fn the_model_normalisation_is_applied() {
        let ct = volume([3, 3, 1], [1.0; 3], vec![0.0; 9]);
        let norm = InputNorm {
            lo: -100.0,
            hi: 100.0,
            centre: 0.0,
            scale: 50.0,
        };
        let p = ct.prepare_with(&arch(), &norm).unwrap();
        let s = p.stack(0).unwrap();
        assert_eq!(s.channel(2)[0], 0.0);
        // Padding is air, clipped at the model's lower end: -100 / 50.
        assert_eq!(s.channel(2)[3], -2.0);
    }

    #[test]
    fn busiest_window_finds_the_mask() {
        let dims = [16, 12, 2];
        let mut mask = vec![0u8; 16 * 12 * 2];
        for y in 8..12 {
            for x in 8..12 {
                mask[16 * 12 + y * 16 + x] = 1;
            }
        }
        assert_eq!(busiest_window(&mask, dims, 4, 4), (8, 8));
        assert_eq!(busiest_window(&mask, dims, 32, 32), (0, 0));
    }
}
