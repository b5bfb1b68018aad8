//! NIfTI-1 reading and writing: round trips, mask geometry, malformed files, interoperability.

use std::io::Write;
use std::path::Path;

use bunet_harness::nifti::{self, Datatype, Error, HEADER_LEN, Header, Writer};
use proptest::prelude::*;

fn ct_header(dims: [usize; 3]) -> Header {
    let spacing = [0.7, 0.8, 1.25];
    let srow = [
        [-0.7, 0.0, 0.0, 120.5],
        [0.0, -0.8, 0.0, 99.0],
        [0.0, 0.0, 1.25, -310.0],
    ];
    let mut h = Header::new(dims, spacing, Datatype::I16, srow);
    h.set_description("test volume");
    h.cal_min = -1000.0;
    h.cal_max = 400.0;
    h
}

fn ramp(n: usize) -> Vec<i16> {
    (0..n).map(|i| ((i * 37) % 4096) as i16 - 1024).collect()
}

fn roundtrip(name: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    let dims = [7, 5, 3];
    let header = ct_header(dims);
    let data = ramp(105);
    nifti::write(&path, &header, &data).expect("write");
    let img = nifti::read(&path).expect("read");
    assert_eq!(img.dims, dims);
    assert_eq!(img.header, header);
    assert_eq!(img.header.geometry(), header.geometry());
    let back: Vec<f32> = data.iter().map(|&v| f32::from(v)).collect();
    assert_eq!(img.data, back);
    assert_eq!(img.spacing(), [0.7, 0.8, 1.25]);
}

#[test]
fn nii_round_trip_keeps_data_and_geometry() {
    roundtrip("a.nii");
}

#[test]
fn nii_gz_round_trip_keeps_data_and_geometry() {
    roundtrip("a.nii.gz");
}

#[test]
fn slice_reader_streams_the_same_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("s.nii.gz");
    let data = ramp(7 * 5 * 3);
    nifti::write(&path, &ct_header([7, 5, 3]), &data).expect("write");
    let mut r = nifti::SliceReader::open(&path).expect("open");
    assert_eq!(r.dims(), [7, 5, 3]);
    let mut slice = Vec::new();
    for z in 0..3 {
        assert!(r.read_slice(&mut slice).expect("slice"));
        let want: Vec<f32> = data[z * 35..(z + 1) * 35]
            .iter()
            .map(|&v| f32::from(v))
            .collect();
        assert_eq!(slice, want);
    }
    assert!(!r.read_slice(&mut slice).expect("end"));
}

#[test]
fn float_volumes_and_scaling_are_read_as_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = dir.path().join("f.nii.gz");
    let mut h = Header::new(
        [4, 2, 1],
        [1.0; 3],
        Datatype::F32,
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
        ],
    );
    let v = [0.5f32, -1.25, 3e4, -1e-3, 0.0, 7.0, 8.0, 9.0];
    nifti::write(&f, &h, &v).expect("write f32");
    assert_eq!(nifti::read(&f).expect("read").data, v);

    // Stored integers with slope 2 and intercept -1024 read as 2 v - 1024.
    h = Header::new(
        [4, 2, 1],
        [1.0; 3],
        Datatype::I16,
        h.affine().map(|r| r.map(|x| x as f32)),
    );
    h.scl_slope = 2.0;
    h.scl_inter = -1024.0;
    let raw: Vec<i16> = vec![0, 1, 2, 3, 500, 1000, -5, 12];
    let p = dir.path().join("s.nii");
    nifti::write(&p, &h, &raw).expect("write");
    let img = nifti::read(&p).expect("read");
    let want: Vec<f32> = raw.iter().map(|&r| 2.0 * f32::from(r) - 1024.0).collect();
    assert_eq!(img.data, want);
}

#[test]
fn mask_written_with_input_header_has_input_geometry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ct = dir.path().join("ct.nii.gz");
    let dims = [6, 4, 5];
    let mut header = ct_header(dims);
    // An extension (code 6, comment) that must survive verbatim.
    let mut ext = vec![1, 0, 0, 0];
    ext.extend(16i32.to_le_bytes());
    ext.extend(6i32.to_le_bytes());
    ext.extend(*b"lesions!");
    header.extensions = ext;
    header.scl_slope = 1.0;
    header.scl_inter = -1024.0;
    nifti::write(&ct, &header, &ramp(120)).expect("write ct");

    let input = nifti::read(&ct).expect("read ct");
    let mask: Vec<u8> = (0..120).map(|i| u8::from(i % 7 == 0)).collect();
    let out = dir.path().join("mask.nii.gz");
    nifti::write_mask(&out, &input.header, &mask).expect("write mask");
    let back = nifti::read(&out).expect("read mask");
    assert_eq!(back.dims, input.dims);
    assert_eq!(back.header.geometry(), input.header.geometry());
    assert_eq!(back.header.affine(), input.header.affine());
    assert_eq!(back.header.extensions, input.header.extensions);
    assert_eq!(back.header.description(), "test volume");
    assert_eq!(back.header.datatype, Datatype::U8.code());
    assert_eq!(back.header.intent_code, nifti::INTENT_LABEL);
    let want: Vec<f32> = mask.iter().map(|&m| f32::from(m)).collect();
    assert_eq!(back.data, want);
}

#[test]
fn qform_and_sform_give_the_same_affine() {
    let mut h = ct_header([4, 4, 4]);
    let sform = h.affine();
    h.sform_code = 0;
    let qform = h.affine();
    for (a, b) in sform.iter().flatten().zip(qform.iter().flatten()) {
        assert!((a - b).abs() < 1e-6, "sform {sform:?} vs qform {qform:?}");
    }
}

#[test]
fn qform_matches_sform_for_every_axis_flip() {
    for flips in 0..8 {
        let sign = |bit: i32| if flips >> bit & 1 == 1 { -1.0f32 } else { 1.0 };
        let srow = [
            [0.7 * sign(0), 0.0, 0.0, 10.0],
            [0.0, 0.9 * sign(1), 0.0, -20.0],
            [0.0, 0.0, 2.5 * sign(2), 30.0],
        ];
        let mut h = Header::new([4, 4, 4], [0.7, 0.9, 2.5], Datatype::I16, srow);
        assert_eq!(h.qform_code, 1);
        let sform = h.affine();
        h.sform_code = 0;
        let qform = h.affine();
        for (a, b) in sform.iter().flatten().zip(qform.iter().flatten()) {
            assert!(
                (a - b).abs() < 1e-6,
                "flips {flips}: {sform:?} vs {qform:?}"
            );
        }
    }
}

#[test]
fn writer_rejects_wrong_counts_and_types() {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = ct_header([2, 2, 2]);
    let p = dir.path().join("x.nii");
    let mut w = Writer::<i16>::create(&p, &h).expect("create");
    w.write(&[0; 4]).expect("one slice");
    assert!(matches!(
        w.write(&[0; 5]),
        Err(Error::VoxelCount {
            expected: 8,
            found: 9
        })
    ));
    assert!(matches!(
        w.finish(),
        Err(Error::VoxelCount {
            expected: 8,
            found: 4
        })
    ));
    assert!(matches!(
        Writer::<u8>::create(&p, &h),
        Err(Error::WrongType { .. })
    ));
}

fn valid_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("v.nii");
    nifti::write(&p, &ct_header([3, 2, 2]), &ramp(12)).expect("write");
    std::fs::read(&p).expect("read back")
}

fn read_bytes(bytes: &[u8]) -> Result<nifti::Image, Error> {
    nifti::read_from(bytes, false)
}

fn with_field(mut b: Vec<u8>, at: usize, value: &[u8]) -> Vec<u8> {
    b[at..at + value.len()].copy_from_slice(value);
    b
}

#[test]
fn malformed_files_give_typed_errors() {
    let good = valid_bytes();
    assert!(read_bytes(&good).is_ok());
    assert!(matches!(
        read_bytes(&[]),
        Err(Error::Truncated { what: "header", .. })
    ));
    assert!(matches!(read_bytes(&[7u8; 400]), Err(Error::NotNifti(_))));
    assert!(matches!(
        read_bytes(&with_field(good.clone(), 344, b"ni1\0")),
        Err(Error::Magic(_))
    ));
    assert!(matches!(
        read_bytes(&with_field(good.clone(), 70, &1234i16.to_le_bytes())),
        Err(Error::Datatype { .. })
    ));
    assert!(matches!(
        read_bytes(&with_field(good.clone(), 72, &8i16.to_le_bytes())),
        Err(Error::Datatype { .. })
    ));
    assert!(matches!(
        read_bytes(&with_field(good.clone(), 42, &(-3i16).to_le_bytes())),
        Err(Error::Dims { .. })
    ));
    // 2048 x 2048 x 2048 voxels: refused before any allocation.
    let huge = with_field(good.clone(), 42, &[0, 8, 0, 8, 0, 8]);
    assert!(matches!(read_bytes(&huge), Err(Error::Dims { .. })));
    assert!(matches!(
        read_bytes(&with_field(good.clone(), 108, &f32::NAN.to_le_bytes())),
        Err(Error::VoxOffset(_))
    ));
    assert!(matches!(
        read_bytes(&with_field(good.clone(), 112, &f32::INFINITY.to_le_bytes())),
        Err(Error::Scaling { .. })
    ));
    assert!(matches!(
        read_bytes(&good[..good.len() - 1]),
        Err(Error::Truncated { what: "voxels", .. })
    ));
    assert!(matches!(
        read_bytes(&good[..HEADER_LEN + 2]),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn missing_and_corrupt_files_give_typed_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    match nifti::read(&dir.path().join("absent.nii.gz")) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("expected not found, got {other:?}"),
    }
    let p = dir.path().join("bad.nii.gz");
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(b"\x1f\x8b\x08\x00garbage that is not deflate"))
        .expect("write");
    let err = nifti::read(&p).expect_err("corrupt gzip");
    assert!(err.is_malformed(), "{err:?}");
    // A .nii.gz whose stream ends early.
    let full = dir.path().join("full.nii.gz");
    nifti::write(&full, &ct_header([3, 2, 2]), &ramp(12)).expect("write");
    let bytes = std::fs::read(&full).expect("read");
    let cut = dir.path().join("cut.nii.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    assert!(nifti::read(&cut).expect_err("cut").is_malformed());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Truncations and byte corruptions never panic: they read or give a typed error.
    #[test]
    fn corrupted_headers_never_panic(at in 0usize..400, byte in any::<u8>(), cut in 0usize..420) {
        let mut b = valid_bytes();
        if at < b.len() {
            b[at] = byte;
        }
        b.truncate(cut.max(1).min(b.len()));
        let _ = read_bytes(&b);
    }
}

/// Files we write read back through the field's reference crate with the same header and data.
#[test]
fn reference_crate_reads_our_files() {
    use ::nifti::{NiftiObject, ReaderOptions};
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["r.nii", "r.nii.gz"] {
        let path = dir.path().join(name);
        let header = ct_header([5, 4, 3]);
        let data = ramp(60);
        nifti::write(&path, &header, &data).expect("write");
        let obj = ReaderOptions::new()
            .read_file(Path::new(&path))
            .expect("reference reader");
        let h = obj.header();
        assert_eq!(h.dim, [3, 5, 4, 3, 1, 1, 1, 1]);
        assert_eq!(h.pixdim, header.pixdim);
        assert_eq!(
            [h.srow_x, h.srow_y, h.srow_z],
            [header.srow_x, header.srow_y, header.srow_z]
        );
        assert_eq!(
            (h.qform_code, h.sform_code),
            (header.qform_code, header.sform_code)
        );
        assert_eq!(
            [h.quatern_b, h.quatern_c, h.quatern_d],
            [header.quatern_b, header.quatern_c, header.quatern_d]
        );
        let voxels: Vec<i16> = obj
            .into_volume()
            .into_nifti_typed_data()
            .expect("typed data");
        assert_eq!(voxels, data);
    }
}
