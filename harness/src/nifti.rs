//! NIfTI-1 single-file images (`.nii` and `.nii.gz`): read a CT volume, write volumes and masks
//! slice by slice.
//!
//! The format is the NIfTI-1 standard (<https://nifti.nimh.nih.gov/nifti-1>, header `nifti1.h`):
//! a 348-byte header, optional extensions up to `vox_offset`, then the voxels with `x` fastest.
//! We keep our own codec rather than the `nifti` crate's writer because that writer needs the
//! whole volume as an `ndarray` (we stream a 512³ volume slice by slice into gzip), and because
//! parsing here checks every field against named bounds before allocating and never panics on a
//! malformed file. The `nifti` crate reads our files back in the interoperability tests.
//!
//! A mask written with [`Header::for_mask`] keeps the input's header field for field (dims,
//! `pixdim`, `qform`/`sform`, description, extensions); only the voxel type, scaling and display
//! range change.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

/// Size of a NIfTI-1 header in bytes (`sizeof_hdr`).
pub const HEADER_LEN: usize = 348;
/// Largest extent accepted along one axis.
pub const MAX_AXIS: usize = 2048;
/// Largest number of voxels accepted in one volume (512 × 512 × 1024).
pub const MAX_VOXELS: usize = 512 * 512 * 1024;
/// Largest `vox_offset` accepted (header plus extensions), in bytes.
pub const MAX_VOX_OFFSET: usize = 1 << 20;
/// Magic of a single-file NIfTI-1 image.
const MAGIC_SINGLE: [u8; 4] = *b"n+1\0";
/// `NIFTI_INTENT_LABEL`: voxel values are labels.
pub const INTENT_LABEL: i16 = 1002;
/// `NIFTI_UNITS_MM | NIFTI_UNITS_SEC`.
pub const UNITS_MM_SEC: u8 = 2 | 8;

/// Errors of NIfTI reading and writing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error("i/o error")]
    Io(#[from] io::Error),
    /// The gzip stream is corrupt.
    #[error("corrupt gzip stream")]
    Gzip(#[source] io::Error),
    /// The header declares more voxels than the reader was allowed to take (checked before
    /// any voxel is decompressed).
    #[error(
        "the volume is {}x{}x{} = {voxels} voxels, more than the limit of {max} \
         (raise it with --max-voxels if the machine has the memory)",
        dims[0], dims[1], dims[2]
    )]
    TooLarge {
        /// The declared extent.
        dims: [usize; 3],
        /// Voxels declared.
        voxels: usize,
        /// The limit.
        max: usize,
    },
    /// The file ended before the header or the voxels were complete.
    #[error("truncated file: expected {expected} bytes of {what}, found {found}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes expected.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// `sizeof_hdr` is 348 in neither byte order.
    #[error("not a NIfTI-1 file: sizeof_hdr is {0}, expected 348")]
    NotNifti(i32),
    /// The magic is not `n+1` (a `ni1` header/image pair, NIfTI-2 or garbage).
    #[error("unsupported magic {0:?}: expected single-file NIfTI-1 \"n+1\"")]
    Magic([u8; 4]),
    /// The voxel type is unknown or not supported.
    #[error("unsupported datatype code {datatype} with bitpix {bitpix}")]
    Datatype {
        /// `datatype` field.
        datatype: i16,
        /// `bitpix` field.
        bitpix: i16,
    },
    /// The dimensions are not a 2D or 3D volume within bounds.
    #[error("bad dimensions {dim:?}: {why}")]
    Dims {
        /// The `dim` field.
        dim: [i16; 8],
        /// What is wrong.
        why: &'static str,
    },
    /// `vox_offset` is not an integer in `352..=MAX_VOX_OFFSET`.
    #[error("bad vox_offset {0}: expected an integer in 352..={MAX_VOX_OFFSET}")]
    VoxOffset(f32),
    /// `scl_slope` or `scl_inter` is not finite.
    #[error("bad scaling: scl_slope {slope}, scl_inter {inter}")]
    Scaling {
        /// `scl_slope`.
        slope: f32,
        /// `scl_inter`.
        inter: f32,
    },
    /// A writer received more or fewer voxels than its header declares.
    #[error("voxel count mismatch: header declares {expected}, got {found}")]
    VoxelCount {
        /// Voxels declared.
        expected: usize,
        /// Voxels written.
        found: usize,
    },
    /// A writer was given a header whose datatype does not match the voxel type written.
    #[error("header datatype {header} does not match the written voxel type {written}")]
    WrongType {
        /// Datatype code in the header.
        header: i16,
        /// Datatype code of the voxels written.
        written: i16,
    },
}

impl Error {
    /// Whether the error says the file itself is malformed (as opposed to missing or unreadable).
    pub fn is_malformed(&self) -> bool {
        !matches!(self, Error::Io(_))
    }
}

/// Voxel types of NIfTI-1 that we read (all converted to `f32`) and the three we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datatype {
    /// `DT_UINT8`.
    U8,
    /// `DT_INT8`.
    I8,
    /// `DT_INT16`.
    I16,
    /// `DT_UINT16`.
    U16,
    /// `DT_INT32`.
    I32,
    /// `DT_UINT32`.
    U32,
    /// `DT_FLOAT32`.
    F32,
    /// `DT_FLOAT64`.
    F64,
}

impl Datatype {
    /// The `datatype` code of the header.
    pub fn code(self) -> i16 {
        match self {
            Datatype::U8 => 2,
            Datatype::I16 => 4,
            Datatype::I32 => 8,
            Datatype::F32 => 16,
            Datatype::F64 => 64,
            Datatype::I8 => 256,
            Datatype::U16 => 512,
            Datatype::U32 => 768,
        }
    }

    /// Bytes per voxel.
    pub fn size(self) -> usize {
        match self {
            Datatype::U8 | Datatype::I8 => 1,
            Datatype::I16 | Datatype::U16 => 2,
            Datatype::I32 | Datatype::U32 | Datatype::F32 => 4,
            Datatype::F64 => 8,
        }
    }

    /// The type with this `datatype` code and `bitpix`.
    ///
    /// # Errors
    /// [`Error::Datatype`] for an unknown code or a `bitpix` that does not match it.
    pub fn from_code(datatype: i16, bitpix: i16) -> Result<Self, Error> {
        let t = match datatype {
            2 => Datatype::U8,
            4 => Datatype::I16,
            8 => Datatype::I32,
            16 => Datatype::F32,
            64 => Datatype::F64,
            256 => Datatype::I8,
            512 => Datatype::U16,
            768 => Datatype::U32,
            _ => return Err(Error::Datatype { datatype, bitpix }),
        };
        if i64::from(bitpix) != 8 * t.size() as i64 {
            return Err(Error::Datatype { datatype, bitpix });
        }
        Ok(t)
    }

    /// Decodes one voxel from its bytes (`bytes.len() == self.size()`) as `f32`.
    fn decode(self, bytes: &[u8], big_endian: bool) -> f32 {
        macro_rules! get {
            ($t:ty, $n:literal) => {{
                let mut a = [0u8; $n];
                a.copy_from_slice(bytes);
                if big_endian {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }
            }};
        }
        match self {
            Datatype::U8 => f32::from(bytes[0]),
            Datatype::I8 => f32::from(bytes[0] as i8),
            Datatype::I16 => f32::from(get!(i16, 2)),
            Datatype::U16 => f32::from(get!(u16, 2)),
            Datatype::I32 => get!(i32, 4) as f32,
            Datatype::U32 => get!(u32, 4) as f32,
            Datatype::F32 => get!(f32, 4),
            Datatype::F64 => get!(f64, 8) as f32,
        }
    }
}

/// A voxel type that [`Writer`] can write.
pub trait Voxel: Copy {
    /// Its NIfTI datatype.
    const DATATYPE: Datatype;
    /// Appends its little-endian bytes.
    fn put_le(self, out: &mut Vec<u8>);
}

impl Voxel for u8 {
    const DATATYPE: Datatype = Datatype::U8;
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

impl Voxel for i16 {
    const DATATYPE: Datatype = Datatype::I16;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Voxel for f32 {
    const DATATYPE: Datatype = Datatype::F32;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// The fields of a NIfTI-1 header (`nifti1.h`), plus the raw extension bytes between the header
/// and `vox_offset`. Field names are those of the standard.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // the fields are documented by the standard under the same names
pub struct Header {
    pub data_type: [u8; 10],
    pub db_name: [u8; 18],
    pub extents: i32,
    pub session_error: i16,
    pub regular: u8,
    pub dim_info: u8,
    pub dim: [i16; 8],
    pub intent_p1: f32,
    pub intent_p2: f32,
    pub intent_p3: f32,
    pub intent_code: i16,
    pub datatype: i16,
    pub bitpix: i16,
    pub slice_start: i16,
    pub pixdim: [f32; 8],
    pub vox_offset: f32,
    pub scl_slope: f32,
    pub scl_inter: f32,
    pub slice_end: i16,
    pub slice_code: u8,
    pub xyzt_units: u8,
    pub cal_max: f32,
    pub cal_min: f32,
    pub slice_duration: f32,
    pub toffset: f32,
    pub glmax: i32,
    pub glmin: i32,
    pub descrip: [u8; 80],
    pub aux_file: [u8; 24],
    pub qform_code: i16,
    pub sform_code: i16,
    pub quatern_b: f32,
    pub quatern_c: f32,
    pub quatern_d: f32,
    pub qoffset_x: f32,
    pub qoffset_y: f32,
    pub qoffset_z: f32,
    pub srow_x: [f32; 4],
    pub srow_y: [f32; 4],
    pub srow_z: [f32; 4],
    pub intent_name: [u8; 16],
    pub magic: [u8; 4],
    /// Bytes `348..vox_offset`: the extender and any extensions, kept verbatim.
    pub extensions: Vec<u8>,
}

/// The spatial fields of a header: what must agree between a scan and its mask.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// `dim`.
    pub dim: [i16; 8],
    /// `pixdim` (voxel spacing; `pixdim[0]` is qfac).
    pub pixdim: [f32; 8],
    /// `xyzt_units`.
    pub xyzt_units: u8,
    /// `qform_code`.
    pub qform_code: i16,
    /// `sform_code`.
    pub sform_code: i16,
    /// `quatern_b, quatern_c, quatern_d, qoffset_x, qoffset_y, qoffset_z`.
    pub quatern: [f32; 6],
    /// `srow_x, srow_y, srow_z`.
    pub srow: [[f32; 4]; 3],
}

impl Header {
    /// A header for a `dims` volume of `datatype` with voxel `spacing` in millimetres and the
    /// given voxel-to-world affine rows (used as both sform and, as a pure rotation + offset,
    /// qform when it is diagonal up to signs; otherwise qform is left unset).
    pub fn new(
        dims: [usize; 3],
        spacing: [f32; 3],
        datatype: Datatype,
        srow: [[f32; 4]; 3],
    ) -> Self {
        let d = |v: usize| i16::try_from(v).unwrap_or(i16::MAX);
        let mut h = Header {
            data_type: [0; 10],
            db_name: [0; 18],
            extents: 0,
            session_error: 0,
            regular: b'r',
            dim_info: 0,
            dim: [3, d(dims[0]), d(dims[1]), d(dims[2]), 1, 1, 1, 1],
            intent_p1: 0.0,
            intent_p2: 0.0,
            intent_p3: 0.0,
            intent_code: 0,
            datatype: datatype.code(),
            bitpix: 8 * datatype.size() as i16,
            slice_start: 0,
            pixdim: [1.0, spacing[0], spacing[1], spacing[2], 1.0, 1.0, 1.0, 1.0],
            vox_offset: 352.0,
            scl_slope: 1.0,
            scl_inter: 0.0,
            slice_end: 0,
            slice_code: 0,
            xyzt_units: UNITS_MM_SEC,
            cal_max: 0.0,
            cal_min: 0.0,
            slice_duration: 0.0,
            toffset: 0.0,
            glmax: 0,
            glmin: 0,
            descrip: [0; 80],
            aux_file: [0; 24],
            qform_code: 0,
            sform_code: 1,
            quatern_b: 0.0,
            quatern_c: 0.0,
            quatern_d: 0.0,
            qoffset_x: srow[0][3],
            qoffset_y: srow[1][3],
            qoffset_z: srow[2][3],
            srow_x: srow[0],
            srow_y: srow[1],
            srow_z: srow[2],
            intent_name: [0; 16],
            magic: MAGIC_SINGLE,
            extensions: vec![0; 4],
        };
        // A diagonal affine with signs s = (sx, sy, sz) is a rotation times qfac: find the
        // quaternion of diag(sx, sy, sz * qfac) with qfac chosen so that the determinant is +1.
        let diag = [srow[0][0], srow[1][1], srow[2][2]];
        let off_diag_zero = srow[0][1] == 0.0
            && srow[0][2] == 0.0
            && srow[1][0] == 0.0
            && srow[1][2] == 0.0
            && srow[2][0] == 0.0
            && srow[2][1] == 0.0;
        if off_diag_zero && diag.iter().all(|v| *v != 0.0) {
            let s = diag.map(f32::signum);
            let qfac = s[0] * s[1] * s[2];
            let r = [s[0], s[1], s[2] * qfac];
            // Quaternion of a diagonal rotation with entries ±1 (determinant +1).
            let (b, c, dq) = match (r[0] > 0.0, r[1] > 0.0, r[2] > 0.0) {
                (true, true, true) => (0.0, 0.0, 0.0),
                (true, false, false) => (1.0, 0.0, 0.0),
                (false, true, false) => (0.0, 1.0, 0.0),
                (false, false, true) => (0.0, 0.0, 1.0),
                _ => (0.0, 0.0, 0.0), // unreachable for determinant +1
            };
            h.quatern_b = b;
            h.quatern_c = c;
            h.quatern_d = dq;
            h.pixdim[0] = qfac;
            h.qform_code = 1;
        }
        h.set_description("");
        h
    }

    /// Sets `descrip` (truncated to 79 bytes, NUL-padded).
    pub fn set_description(&mut self, text: &str) {
        self.descrip = [0; 80];
        let n = text.len().min(79);
        self.descrip[..n].copy_from_slice(&text.as_bytes()[..n]);
    }

    /// The description as text (up to the first NUL; lossy UTF-8).
    pub fn description(&self) -> String {
        let end = self.descrip.iter().position(|&b| b == 0).unwrap_or(80);
        String::from_utf8_lossy(&self.descrip[..end]).into_owned()
    }

    /// The header of a binary mask with this header's geometry: every field is kept except the
    /// voxel type (`u8`), the scaling (identity), the display range (`[0, 1]`), and the intent
    /// (`NIFTI_INTENT_LABEL`).
    pub fn for_mask(&self) -> Header {
        Header {
            datatype: Datatype::U8.code(),
            bitpix: 8,
            scl_slope: 1.0,
            scl_inter: 0.0,
            cal_min: 0.0,
            cal_max: 1.0,
            glmin: 0,
            glmax: 0,
            intent_code: INTENT_LABEL,
            ..self.clone()
        }
    }

    /// The spatial fields, for comparing two headers' geometry.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            dim: self.dim,
            pixdim: self.pixdim,
            xyzt_units: self.xyzt_units,
            qform_code: self.qform_code,
            sform_code: self.sform_code,
            quatern: [
                self.quatern_b,
                self.quatern_c,
                self.quatern_d,
                self.qoffset_x,
                self.qoffset_y,
                self.qoffset_z,
            ],
            srow: [self.srow_x, self.srow_y, self.srow_z],
        }
    }

    /// The volume's extent `[nx, ny, nz]` (`nz = 1` for a 2D image), checked against
    /// [`MAX_AXIS`] and [`MAX_VOXELS`].
    ///
    /// # Errors
    /// [`Error::Dims`] if `dim[0]` is not 2..=7, an extent is not positive, a dimension past the
    /// third is not 1, or the volume is too large.
    pub fn dims(&self) -> Result<[usize; 3], Error> {
        let dim = self.dim;
        let bad = |why| Err(Error::Dims { dim, why });
        let rank = dim[0];
        if !(2..=7).contains(&rank) {
            return bad("dim[0] must be in 2..=7");
        }
        let rank = rank as usize;
        let mut out = [1usize; 3];
        for (i, &d) in dim.iter().enumerate().take(rank + 1).skip(1) {
            if d < 1 {
                return bad("every extent must be positive");
            }
            if i <= 3 {
                out[i - 1] = d as usize;
            } else if d != 1 {
                return bad("only one volume (dim[4..] = 1) is supported");
            }
        }
        if out.iter().any(|&n| n > MAX_AXIS) {
            return bad("an extent exceeds MAX_AXIS");
        }
        if out.iter().product::<usize>() > MAX_VOXELS {
            return bad("the volume exceeds MAX_VOXELS");
        }
        Ok(out)
    }

    /// The voxel-to-world (RAS, mm) affine, 3 rows of 4, by the standard's rule: sform if
    /// `sform_code > 0`, else qform if `qform_code > 0`, else `pixdim` scaling (method 1).
    pub fn affine(&self) -> [[f64; 4]; 3] {
        if self.sform_code > 0 {
            return [self.srow_x, self.srow_y, self.srow_z].map(|r| r.map(f64::from));
        }
        let p = self.pixdim.map(f64::from);
        if self.qform_code <= 0 {
            return [
                [p[1], 0.0, 0.0, 0.0],
                [0.0, p[2], 0.0, 0.0],
                [0.0, 0.0, p[3], 0.0],
            ];
        }
        let (b, c, d) = (
            f64::from(self.quatern_b),
            f64::from(self.quatern_c),
            f64::from(self.quatern_d),
        );
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if p[0] < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let s = [p[1], p[2], p[3] * qfac];
        let o = [self.qoffset_x, self.qoffset_y, self.qoffset_z].map(f64::from);
        let mut m = [[0.0; 4]; 3];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * s[j];
            }
            m[i][3] = o[i];
        }
        m
    }

    /// Encodes the header (348 bytes, little-endian) followed by its extension bytes; the
    /// `vox_offset` written is `348 + extensions.len()`.
    fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(HEADER_LEN + self.extensions.len());
        let i16s = |o: &mut Vec<u8>, v: &[i16]| v.iter().for_each(|x| o.extend(x.to_le_bytes()));
        let f32s = |o: &mut Vec<u8>, v: &[f32]| v.iter().for_each(|x| o.extend(x.to_le_bytes()));
        o.extend((HEADER_LEN as i32).to_le_bytes());
        o.extend(self.data_type);
        o.extend(self.db_name);
        o.extend(self.extents.to_le_bytes());
        i16s(&mut o, &[self.session_error]);
        o.extend([self.regular, self.dim_info]);
        i16s(&mut o, &self.dim);
        f32s(&mut o, &[self.intent_p1, self.intent_p2, self.intent_p3]);
        i16s(
            &mut o,
            &[
                self.intent_code,
                self.datatype,
                self.bitpix,
                self.slice_start,
            ],
        );
        f32s(&mut o, &self.pixdim);
        let vox_offset = (HEADER_LEN + self.extensions.len()) as f32;
        f32s(&mut o, &[vox_offset, self.scl_slope, self.scl_inter]);
        i16s(&mut o, &[self.slice_end]);
        o.extend([self.slice_code, self.xyzt_units]);
        f32s(
            &mut o,
            &[
                self.cal_max,
                self.cal_min,
                self.slice_duration,
                self.toffset,
            ],
        );
        o.extend(self.glmax.to_le_bytes());
        o.extend(self.glmin.to_le_bytes());
        o.extend(self.descrip);
        o.extend(self.aux_file);
        i16s(&mut o, &[self.qform_code, self.sform_code]);
        f32s(
            &mut o,
            &[
                self.quatern_b,
                self.quatern_c,
                self.quatern_d,
                self.qoffset_x,
                self.qoffset_y,
                self.qoffset_z,
            ],
        );
        f32s(&mut o, &self.srow_x);
        f32s(&mut o, &self.srow_y);
        f32s(&mut o, &self.srow_z);
        o.extend(self.intent_name);
        o.extend(MAGIC_SINGLE);
        debug_assert_eq!(o.len(), HEADER_LEN);
        o.extend(&self.extensions);
        o
    }

    /// Decodes the 348 header bytes (either byte order); `extensions` is left empty.
    fn decode(b: &[u8; HEADER_LEN]) -> Result<(Self, bool), Error> {
        let le = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let big = if le == HEADER_LEN as i32 {
            false
        } else if i32::from_be_bytes([b[0], b[1], b[2], b[3]]) == HEADER_LEN as i32 {
            true
        } else {
            return Err(Error::NotNifti(le));
        };
        let r = Fields { b, big };
        let magic = r.bytes::<4>(344);
        if magic != MAGIC_SINGLE {
            return Err(Error::Magic(magic));
        }
        let mut dim = [0i16; 8];
        let mut pixdim = [0f32; 8];
        for i in 0..8 {
            dim[i] = r.i16(40 + 2 * i);
            pixdim[i] = r.f32(76 + 4 * i);
        }
        let row = |at: usize| [r.f32(at), r.f32(at + 4), r.f32(at + 8), r.f32(at + 12)];
        let h = Header {
            data_type: r.bytes(4),
            db_name: r.bytes(14),
            extents: r.i32(32),
            session_error: r.i16(36),
            regular: b[38],
            dim_info: b[39],
            dim,
            intent_p1: r.f32(56),
            intent_p2: r.f32(60),
            intent_p3: r.f32(64),
            intent_code: r.i16(68),
            datatype: r.i16(70),
            bitpix: r.i16(72),
            slice_start: r.i16(74),
            pixdim,
            vox_offset: r.f32(108),
            scl_slope: r.f32(112),
            scl_inter: r.f32(116),
            slice_end: r.i16(120),
            slice_code: b[122],
            xyzt_units: b[123],
            cal_max: r.f32(124),
            cal_min: r.f32(128),
            slice_duration: r.f32(132),
            toffset: r.f32(136),
            glmax: r.i32(140),
            glmin: r.i32(144),
            descrip: r.bytes(148),
            aux_file: r.bytes(228),
            qform_code: r.i16(252),
            sform_code: r.i16(254),
            quatern_b: r.f32(256),
            quatern_c: r.f32(260),
            quatern_d: r.f32(264),
            qoffset_x: r.f32(268),
            qoffset_y: r.f32(272),
            qoffset_z: r.f32(276),
            srow_x: row(280),
            srow_y: row(296),
            srow_z: row(312),
            intent_name: r.bytes(328),
            magic,
            extensions: Vec::new(),
        };
        Ok((h, big))
    }
}

/// Fixed-offset field reader over the 348 header bytes; offsets are constants below 348.
struct Fields<'a> {
    b: &'a [u8; HEADER_LEN],
    big: bool,
}

impl Fields<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b[at..at + N]);
        a
    }
    /// The `N` bytes at `at` read with the header's byte order.
    fn number<const N: usize, T>(
        &self,
        at: usize,
        le: fn([u8; N]) -> T,
        be: fn([u8; N]) -> T,
    ) -> T {
        let a = self.bytes::<N>(at);
        if self.big { be(a) } else { le(a) }
    }
    fn i16(&self, at: usize) -> i16 {
        self.number(at, i16::from_le_bytes, i16::from_be_bytes)
    }
    fn i32(&self, at: usize) -> i32 {
        self.number(at, i32::from_le_bytes, i32::from_be_bytes)
    }
    fn f32(&self, at: usize) -> f32 {
        self.number(at, f32::from_le_bytes, f32::from_be_bytes)
    }
}

/// A volume read into memory: its header and its voxels as `f32` with `scl_slope`/`scl_inter`
/// applied, `x` fastest, then `y`, then `z`.
#[derive(Clone, Debug)]
pub struct Image {
    /// The header as read (its `extensions` filled in).
    pub header: Header,
    /// Extent `[nx, ny, nz]`.
    pub dims: [usize; 3],
    /// Voxel values, `data[x + nx * (y + ny * z)]`.
    pub data: Vec<f32>,
}

impl Image {
    /// Voxel spacing in the header's units (`pixdim[1..4]`).
    pub fn spacing(&self) -> [f32; 3] {
        [
            self.header.pixdim[1],
            self.header.pixdim[2],
            self.header.pixdim[3],
        ]
    }
}

fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Reads exactly `buf.len()` bytes or reports how many were there.
fn read_full(r: &mut impl Read, buf: &mut [u8], what: &'static str, gz: bool) -> Result<(), Error> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => {
                return Err(Error::Truncated {
                    what,
                    expected: buf.len() as u64,
                    found: n as u64,
                });
            }
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_or_gzip(e, gz)),
        }
    }
    Ok(())
}

/// Classifies a read error: inside a gzip stream, data errors mean a corrupt file.
fn io_or_gzip(e: io::Error, gz: bool) -> Error {
    let data_error = matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
    );
    if gz && data_error {
        Error::Gzip(e)
    } else {
        Error::Io(e)
    }
}

/// Reads a NIfTI-1 volume (`.nii`, or gzip-compressed when the name ends in `.gz`).
///
/// Voxels of any integer or float type are converted to `f32` and scaled by `scl_slope` and
/// `scl_inter` (a zero slope means no scaling, as the standard says).
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read; [`Error::Gzip`], [`Error::Truncated`],
/// [`Error::NotNifti`], [`Error::Magic`], [`Error::Datatype`], [`Error::Dims`],
/// [`Error::VoxOffset`] or [`Error::Scaling`] if it is malformed. Memory is allocated only as
/// voxel bytes actually arrive, and never beyond [`MAX_VOXELS`] voxels.
pub fn read(path: &Path) -> Result<Image, Error> {
    let mut reader = SliceReader::open(path)?;
    reader.read_all()
}

/// Reads a NIfTI-1 volume like [`read`], refusing it from its header alone — before a voxel is
/// decompressed or allocated — if it declares more than `max_voxels` voxels: a small `.nii.gz`
/// can expand to gigabytes.
///
/// # Errors
/// [`Error::TooLarge`], or as [`read`].
pub fn read_limited(path: &Path, max_voxels: usize) -> Result<Image, Error> {
    let mut reader = SliceReader::open(path)?;
    let dims = reader.dims();
    let voxels = dims.iter().product();
    if voxels > max_voxels {
        return Err(Error::TooLarge {
            dims,
            voxels,
            max: max_voxels,
        });
    }
    reader.read_all()
}

/// Reads a NIfTI-1 volume from a byte stream (already decompressed; `gz` only classifies stream
/// errors). See [`read`].
///
/// # Errors
/// As [`read`].
pub fn read_from(r: impl Read, gz: bool) -> Result<Image, Error> {
    SliceReader::new(r, gz)?.read_all()
}

/// Reads a NIfTI-1 volume one `z` slice at a time, so that a 512³ scan can be processed with a
/// few slices in memory.
pub struct SliceReader<R: Read> {
    r: R,
    gz: bool,
    header: Header,
    dims: [usize; 3],
    datatype: Datatype,
    big_endian: bool,
    slope: f32,
    inter: f32,
    next_z: usize,
    bytes: Vec<u8>,
}

impl<R: Read> std::fmt::Debug for SliceReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceReader")
            .field("dims", &self.dims)
            .field("datatype", &self.datatype)
            .field("next_z", &self.next_z)
            .finish_non_exhaustive()
    }
}

impl SliceReader<Box<dyn Read>> {
    /// Opens `path` (gzip-compressed when the name ends in `.gz`) and reads its header.
    ///
    /// # Errors
    /// As [`read`].
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = BufReader::new(File::open(path)?);
        let gz = is_gz(path);
        let r: Box<dyn Read> = if gz {
            Box::new(MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        SliceReader::new(r, gz)
    }
}

impl<R: Read> SliceReader<R> {
    /// Reads and checks the header and extensions from `r`.
    ///
    /// # Errors
    /// As [`read`].
    pub fn new(mut r: R, gz: bool) -> Result<Self, Error> {
        let mut raw = [0u8; HEADER_LEN];
        read_full(&mut r, &mut raw, "header", gz)?;
        let (mut header, big_endian) = Header::decode(&raw)?;
        let datatype = Datatype::from_code(header.datatype, header.bitpix)?;
        let dims = header.dims()?;
        let off = header.vox_offset;
        if !(off.is_finite()
            && off.fract() == 0.0
            && (352.0..=MAX_VOX_OFFSET as f32).contains(&off))
        {
            return Err(Error::VoxOffset(off));
        }
        let (slope, inter) = (header.scl_slope, header.scl_inter);
        if !(slope.is_finite() && inter.is_finite()) {
            return Err(Error::Scaling { slope, inter });
        }
        let mut ext = vec![0u8; off as usize - HEADER_LEN];
        read_full(&mut r, &mut ext, "extensions", gz)?;
        header.extensions = ext;
        let (slope, inter) = if slope == 0.0 {
            (1.0, 0.0)
        } else {
            (slope, inter)
        };
        Ok(SliceReader {
            r,
            gz,
            header,
            dims,
            datatype,
            big_endian,
            slope,
            inter,
            next_z: 0,
            bytes: Vec::new(),
        })
    }

    /// The header (with its extensions).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Extent `[nx, ny, nz]`.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// Reads the next slice into `out` (`nx * ny` values, scaled), or returns `false` after the
    /// last one.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the file ends inside the slice, [`Error::Gzip`] or [`Error::Io`].
    pub fn read_slice(&mut self, out: &mut Vec<f32>) -> Result<bool, Error> {
        let [nx, ny, nz] = self.dims;
        if self.next_z >= nz {
            return Ok(false);
        }
        let size = self.datatype.size();
        let slice_bytes = nx * ny * size;
        self.bytes.resize(slice_bytes, 0);
        match read_full(&mut self.r, &mut self.bytes, "voxels", self.gz) {
            Ok(()) => {}
            Err(Error::Truncated { found, .. }) => {
                return Err(Error::Truncated {
                    what: "voxels",
                    expected: (nx * ny * nz * size) as u64,
                    found: (self.next_z * slice_bytes) as u64 + found,
                });
            }
            Err(e) => return Err(e),
        }
        out.clear();
        let (dt, big, slope, inter) = (self.datatype, self.big_endian, self.slope, self.inter);
        out.extend(
            self.bytes
                .chunks_exact(size)
                .map(|c| dt.decode(c, big) * slope + inter),
        );
        self.next_z += 1;
        Ok(true)
    }

    /// Reads the remaining slices into an [`Image`].
    ///
    /// # Errors
    /// As [`SliceReader::read_slice`].
    pub fn read_all(&mut self) -> Result<Image, Error> {
        let mut data = Vec::new();
        let mut slice = Vec::new();
        while self.read_slice(&mut slice)? {
            data.extend_from_slice(&slice);
        }
        Ok(Image {
            header: self.header.clone(),
            dims: self.dims,
            data,
        })
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gz(w) => w.write_all(bytes),
        }
    }
}

/// Writes a NIfTI-1 volume slice by slice (`.nii`, or gzip-compressed when the name ends in
/// `.gz`): only the slice being written is buffered.
pub struct Writer<T: Voxel> {
    sink: Sink,
    path: PathBuf,
    expected: usize,
    written: usize,
    buf: Vec<u8>,
    _voxel: std::marker::PhantomData<T>,
}

impl<T: Voxel> std::fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("expected", &self.expected)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<T: Voxel> Writer<T> {
    /// Creates `path` and writes `header` (and its extensions) to it.
    ///
    /// # Errors
    /// [`Error::WrongType`] if `header.datatype` is not `T`'s; [`Error::Dims`] if its dims are
    /// out of bounds; [`Error::Io`] if the file cannot be created or written.
    pub fn create(path: &Path, header: &Header) -> Result<Self, Error> {
        if header.datatype != T::DATATYPE.code() || header.bitpix != 8 * T::DATATYPE.size() as i16 {
            return Err(Error::WrongType {
                header: header.datatype,
                written: T::DATATYPE.code(),
            });
        }
        let dims = header.dims()?;
        let mut header = header.clone();
        if header.extensions.len() < 4 {
            header.extensions = vec![0; 4];
        }
        if HEADER_LEN + header.extensions.len() > MAX_VOX_OFFSET {
            return Err(Error::VoxOffset(
                (HEADER_LEN + header.extensions.len()) as f32,
            ));
        }
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let mut sink = if is_gz(path) {
            Sink::Gz(GzEncoder::new(file, Compression::fast()))
        } else {
            Sink::Plain(file)
        };
        sink.write_all(&header.encode())?;
        Ok(Writer {
            sink,
            path: path.to_path_buf(),
            expected: dims.iter().product(),
            written: 0,
            buf: Vec::new(),
            _voxel: std::marker::PhantomData,
        })
    }

    /// Appends voxels (`x` fastest); typically one slice at a time.
    ///
    /// # Errors
    /// [`Error::VoxelCount`] if this would exceed the header's voxel count; [`Error::Io`].
    pub fn write(&mut self, voxels: &[T]) -> Result<(), Error> {
        let found = self.written + voxels.len();
        if found > self.expected {
            return Err(Error::VoxelCount {
                expected: self.expected,
                found,
            });
        }
        self.buf.clear();
        self.buf.reserve(voxels.len() * T::DATATYPE.size());
        voxels.iter().for_each(|v| v.put_le(&mut self.buf));
        self.sink.write_all(&self.buf)?;
        self.written = found;
        Ok(())
    }

    /// Finishes the file (gzip trailer, flush).
    ///
    /// # Errors
    /// [`Error::VoxelCount`] if fewer voxels than declared were written; [`Error::Io`].
    pub fn finish(self) -> Result<PathBuf, Error> {
        if self.written != self.expected {
            return Err(Error::VoxelCount {
                expected: self.expected,
                found: self.written,
            });
        }
        match self.sink {
            Sink::Plain(mut w) => w.flush()?,
            Sink::Gz(w) => w.finish()?.flush()?,
        }
        Ok(self.path)
    }
}

/// Writes a whole volume at once with `header` (see [`Writer`]).
///
/// # Errors
/// As [`Writer::create`], [`Writer::write`] and [`Writer::finish`].
pub fn write<T: Voxel>(path: &Path, header: &Header, voxels: &[T]) -> Result<PathBuf, Error> {
    let mut w = Writer::<T>::create(path, header)?;
    w.write(voxels)?;
    w.finish()
}

/// Writes a binary mask with the geometry and header of `reference` ([`Header::for_mask`]).
///
/// # Errors
/// As [`write()`].
pub fn write_mask(path: &Path, reference: &Header, mask: &[u8]) -> Result<PathBuf, Error> {
    write(path, &reference.for_mask(), mask)
}
