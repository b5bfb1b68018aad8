//! The `bunet` binary end to end.

use std::path::Path;
use std::process::{Command, Output};

use bunet_harness::nifti;

fn bunet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bunet"))
        .args(args)
        .output()
        .expect("run bunet")
}

fn generate(out: &Path, seed: &str) -> Output {
    let out = out.to_str().expect("utf-8 temp path");
    bunet(&[
        "generate", "--size", "32", "--slices", "16", "--seed", seed, "--out", out,
    ])
}

#[test]
fn generate_writes_ct_label_and_preview() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = generate(dir.path(), "7");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ct = nifti::read(&dir.path().join("ct.nii.gz")).expect("ct");
    let label = nifti::read(&dir.path().join("label.nii.gz")).expect("label");
    assert_eq!(ct.dims, [32, 32, 16]);
    assert_eq!(label.header.geometry(), ct.header.geometry());
    assert!(ct.data.iter().all(|&v| (-1024.0..=3071.0).contains(&v)));
    assert!(label.data.iter().all(|&v| v == 0.0 || v == 1.0));
    assert!(label.data.contains(&1.0), "no lesion voxel");
    let png = std::fs::read(dir.path().join("preview.png")).expect("preview");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[16..24], &[0, 0, 0, 32, 0, 0, 0, 32]); // IHDR width, height
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("32x32x16"), "{stdout}");

    // Same seed, same bytes; another seed, other bytes.
    let again = tempfile::tempdir().expect("temp dir");
    assert_eq!(generate(again.path(), "7").status.code(), Some(0));
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).expect("file");
    assert_eq!(
        read(dir.path(), "ct.nii.gz"),
        read(again.path(), "ct.nii.gz")
    );
    assert_eq!(
        read(dir.path(), "label.nii.gz"),
        read(again.path(), "label.nii.gz")
    );
    let other = tempfile::tempdir().expect("temp dir");
    assert_eq!(generate(other.path(), "8").status.code(), Some(0));
    assert_ne!(
        read(dir.path(), "ct.nii.gz"),
        read(other.path(), "ct.nii.gz")
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(bunet(&["--help"]).status.code(), Some(0));
    assert_eq!(bunet(&["generate", "--help"]).status.code(), Some(0));
    assert_eq!(bunet(&[]).status.code(), Some(2));
    assert_eq!(bunet(&["generate"]).status.code(), Some(2));
    assert_eq!(
        bunet(&["generate", "--size", "0", "--out", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        bunet(&["generate", "--size", "513", "--out", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(bunet(&["frobnicate"]).status.code(), Some(2));
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("utf-8");
    let bad_slice = bunet(&[
        "generate",
        "--size",
        "8",
        "--slices",
        "4",
        "--preview-slice",
        "9",
        "--out",
        out,
    ]);
    assert_eq!(bad_slice.status.code(), Some(2));
}

#[test]
fn unwritable_output_exits_74() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let out = file.join("sub");
    let run = bunet(&[
        "generate",
        "--size",
        "8",
        "--slices",
        "4",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        run.status.code(),
        Some(74),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("creating"));
}

#[test]
fn a_refused_connection_exits_69_naming_the_os_error_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(generate(dir.path(), "7").status.code(), Some(0));
    let ct = dir.path().join("ct.nii.gz");
    let out = dir.path().join("seg");
    // Nothing listens on port 1 of the loopback address.
    let run = bunet(&[
        "segment",
        "--insecure",
        "--input",
        ct.to_str().expect("utf-8"),
        "--server",
        "127.0.0.1:1",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(69), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("bunet: error:"))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(error.contains("connecting to 127.0.0.1:1"), "{error}");
    assert_eq!(error.matches("os error").count(), 1, "{error}");
    assert!(!out.exists(), "a failed run leaves no empty --out");
}
