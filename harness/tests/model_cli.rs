//! Issue 17 from the command line: self-describing weights (`--arch` required where the file
//! says nothing, wrong pooling refused), `bunet infer`, and the real-CT input checks and run
//! hygiene of `bunet segment`, `bunet infer` and `bunet table1` (one test per item).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use bunet_harness::nifti::{self, Datatype, Header};
use bunet_unet::{Pooling, Weights};
use common::{Server, bunet, generate, ok, s, segment, tiny_arch, tiny_weights};

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The tiny weights re-saved without any metadata, as a plain PyTorch export would be.
fn weights_without_metadata(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(tiny_weights(dir)).unwrap();
    // safetensors: u64 header length, JSON header, data (offsets relative to the data).
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header.as_object_mut().unwrap().remove("__metadata__");
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    let path = dir.join("bare.safetensors");
    std::fs::write(&path, out).unwrap();
    path
}

fn write_ct(dir: &Path, name: &str, dims: [usize; 3], hu: &[f32]) -> PathBuf {
    let header = Header::new(dims, [0.8, 0.8, 2.0], Datatype::F32, [[0.0; 4]; 3]);
    let path = dir.join(name);
    nifti::write(&path, &header, hu).unwrap();
    path
}

#[test]
fn weights_without_architecture_need_arch_and_wrong_pooling_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vol = generate(dir.path(), "3");
    let ct = vol.join("ct.nii.gz");
    let bare = weights_without_metadata(dir.path());
    let out = dir.path().join("inf");
    let refused = bunet(&[
        "infer",
        "--input",
        s(&ct),
        "--weights",
        s(&bare),
        "--out",
        s(&out),
    ]);
    assert_eq!(code(&refused), Some(65), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--arch"), "{}", stderr(&refused));
    assert!(!out.exists(), "no output directory is left behind");
    let arch = tiny_arch().to_string();
    ok(&bunet(&[
        "infer",
        "--input",
        s(&ct),
        "--weights",
        s(&bare),
        "--arch",
        &arch,
        "--out",
        s(&out),
    ]));
    // The same weights under a max-pool --arch: the file's own architecture disagrees.
    let max = bunet_unet::Architecture {
        pooling: Pooling::Max,
        ..tiny_arch()
    };
    let weights = tiny_weights(dir.path());
    for cmd in [
        vec!["infer", "--input", s(&ct), "--out", s(&out)],
        vec!["table1", "--size", "32", "--slices", "16", "--out", s(&out)],
        vec!["serve", "--insecure", "--listen", "127.0.0.1:0"],
    ] {
        let mut args = cmd.clone();
        let max_text = max.to_string();
        args.extend(["--weights", s(&weights), "--arch", &max_text]);
        let r = bunet(&args);
        assert_eq!(code(&r), Some(65), "{cmd:?}: {}", stderr(&r));
        assert!(stderr(&r).contains("pool=max"), "{}", stderr(&r));
    }
}

#[test]
fn infer_writes_mask_and_probabilities_on_the_input_grid() {
    let dir = tempfile::tempdir().unwrap();
    let vol = generate(dir.path(), "4");
    let ct = vol.join("ct.nii.gz");
    let weights = tiny_weights(dir.path());
    let input = nifti::read(&ct).unwrap();
    let mut masks = Vec::new();
    for precision in ["float", "q32", "q24"] {
        let out = dir.path().join(precision);
        let stdout = ok(&bunet(&[
            "infer",
            "--input",
            s(&ct),
            "--weights",
            s(&weights),
            "--precision",
            precision,
            "--logits",
            "--out",
            s(&out),
        ]));
        assert!(stdout.contains(precision), "{stdout}");
        let mask = nifti::read(&out.join("mask.nii.gz")).unwrap();
        let prob = nifti::read(&out.join("probabilities.nii.gz")).unwrap();
        let l0 = nifti::read(&out.join("logits_class0.nii.gz")).unwrap();
        let l1 = nifti::read(&out.join("logits_class1.nii.gz")).unwrap();
        assert_eq!(mask.header.geometry(), input.header.geometry());
        assert_eq!(prob.dims, input.dims);
        assert_eq!(prob.header.pixdim, input.header.pixdim);
        for i in 0..mask.data.len() {
            let p = prob.data[i];
            assert!((0.0..=1.0).contains(&p));
            // The mask is the argmax of the scores, the probability their softmax.
            assert_eq!(
                mask.data[i] == 1.0,
                l1.data[i] > l0.data[i],
                "{precision} voxel {i}"
            );
            let want = 1.0 / (1.0 + f64::from(l0.data[i] - l1.data[i]).exp());
            assert!((f64::from(p) - want).abs() < 1e-6);
        }
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["precision"], precision);
        assert_eq!(report["input"], s(&ct));
        masks.push(mask.data);
    }
    // The fixed-point masks are not the float one bit for bit, but close.
    let agree = masks[0]
        .iter()
        .zip(&masks[1])
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        agree * 100 >= masks[0].len() * 95,
        "{agree}/{}",
        masks[0].len()
    );
}

#[test]
fn bad_voxels_and_odd_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let weights = tiny_weights(dir.path());
    let infer = |ct: &Path, extra: &[&str]| {
        let mut args = vec!["infer", "--input", s(ct), "--weights", s(&weights)];
        args.extend_from_slice(extra);
        let out = dir.path().join("o");
        let _ = std::fs::remove_dir_all(&out);
        args.extend(["--out", s(&out)]);
        bunet(&args)
    };
    // All-NaN: refused (65), nothing segmented, no output directory.
    let nan = write_ct(
        dir.path(),
        "nan.nii",
        [32, 32, 4],
        &vec![f32::NAN; 32 * 32 * 4],
    );
    let r = infer(&nan, &[]);
    assert_eq!(code(&r), Some(65), "{}", stderr(&r));
    assert!(stderr(&r).contains("NaN"), "{}", stderr(&r));
    assert!(!dir.path().join("o").exists());
    let r = bunet(&[
        "segment",
        "--insecure",
        "--input",
        s(&nan),
        "--server",
        "127.0.0.1:1",
        "--out",
        s(&dir.path().join("seg")),
    ]);
    assert_eq!(code(&r), Some(65), "{}", stderr(&r));
    // An 8-bit image and a 1-voxel volume run, with a warning each.
    let bytes: Vec<f32> = (0..32 * 32 * 4).map(|i| (i % 256) as f32).collect();
    let u8ct = write_ct(dir.path(), "u8.nii", [32, 32, 4], &bytes);
    let r = infer(&u8ct, &[]);
    assert_eq!(code(&r), Some(0), "{}", stderr(&r));
    assert!(stderr(&r).contains("Hounsfield"), "{}", stderr(&r));
    let one = write_ct(dir.path(), "one.nii", [1, 1, 1], &[-1000.0]);
    let r = infer(&one, &[]);
    assert_eq!(code(&r), Some(0), "{}", stderr(&r));
    assert!(stderr(&r).contains("1x1x1"), "{}", stderr(&r));
    // Over the size limit: refused from the header (65) before any voxel is read.
    let big = write_ct(
        dir.path(),
        "big.nii",
        [32, 32, 4],
        &vec![-1000.0; 32 * 32 * 4],
    );
    let r = infer(&big, &["--max-voxels", "4000"]);
    assert_eq!(code(&r), Some(65), "{}", stderr(&r));
    assert!(stderr(&r).contains("--max-voxels"), "{}", stderr(&r));
    // A gzip file that claims 512x512x1024 voxels but holds a few bytes: refused at once, not
    // after allocating gigabytes (the header is checked before the voxels are decompressed).
    let mut header = Header::new([512, 512, 1024], [1.0; 3], Datatype::I16, [[0.0; 4]; 3]);
    header.set_description("claims a lot");
    let huge = dir.path().join("huge.nii.gz");
    let mut w = nifti::Writer::<i16>::create(&huge, &header).unwrap();
    w.write(&vec![0i16; 512 * 512]).unwrap();
    drop(w);
    let r = infer(&huge, &[]);
    assert_eq!(code(&r), Some(65), "{}", stderr(&r));
    assert!(stderr(&r).contains("more than the limit"), "{}", stderr(&r));
    // A missing file: 66, and the OS error printed once.
    let r = infer(&dir.path().join("missing.nii.gz"), &[]);
    assert_eq!(code(&r), Some(66), "{}", stderr(&r));
    assert_eq!(
        stderr(&r).matches("No such file").count(),
        1,
        "{}",
        stderr(&r)
    );
}

#[test]
fn segment_checks_its_arguments_before_the_secure_run() {
    let dir = tempfile::tempdir().unwrap();
    let vol = generate(dir.path(), "5");
    let ct = vol.join("ct.nii.gz");
    let out = dir.path().join("seg");
    let seg = |extra: &[&str]| {
        let mut args = vec!["segment", "--insecure", "--input", s(&ct), "--out", s(&out)];
        args.extend_from_slice(extra);
        bunet(&args)
    };
    let arch = tiny_arch().to_string();
    // Out-of-range overlay: usage error before connecting (nobody listens on port 1).
    let r = seg(&[
        "--server",
        "127.0.0.1:1",
        "--overlay",
        "16",
        "--arch",
        &arch,
    ]);
    assert_eq!(code(&r), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("overlay slice 16"), "{}", stderr(&r));
    // Unresolvable server: 69 (peer unavailable), saying so; no empty --out left.
    let r = seg(&["--server", "no-such-host.invalid:7070", "--arch", &arch]);
    assert_eq!(code(&r), Some(69), "{}", stderr(&r));
    assert!(stderr(&r).contains("cannot resolve"), "{}", stderr(&r));
    assert!(!out.exists());
    // Refused connection: 69, and again no empty --out left.
    let r = seg(&["--server", "127.0.0.1:1", "--arch", &arch]);
    assert_eq!(code(&r), Some(69), "{}", stderr(&r));
    assert!(
        !out.exists(),
        "a failed run leaves no empty output directory"
    );
    // A slice number that would wrap.
    let r = seg(&[
        "--server",
        "127.0.0.1:1",
        "--slices",
        "18446744073709551615",
    ]);
    assert_eq!(code(&r), Some(2), "{}", stderr(&r));
    let r = seg(&[
        "--server",
        "127.0.0.1:1",
        "--slices",
        "18446744073709551615..",
    ]);
    assert_eq!(code(&r), Some(2), "{}", stderr(&r));
}

#[test]
fn segment_rerun_replaces_overlays_and_reports_what_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let vol = generate(dir.path(), "6");
    let ct = vol.join("ct.nii.gz");
    let weights = tiny_weights(dir.path());
    let server = Server::start(&weights, "2", &[]);
    let out = dir.path().join("seg");
    let arch = tiny_arch().to_string();
    let run = |overlay: &str| {
        segment(
            &ct,
            &server.1,
            &out,
            &["--arch", &arch, "--overlay", overlay],
        )
    };
    let first = run("3");
    ok(&first);
    // Not a terminal: progress comes as plain lines.
    assert!(
        stderr(&first).contains("bunet: segment"),
        "{}",
        stderr(&first)
    );
    assert!(out.join("overlay_z003.png").exists());
    ok(&run("5"));
    assert!(out.join("overlay_z005.png").exists());
    assert!(
        !out.join("overlay_z003.png").exists(),
        "the stale overlay is removed"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["input"], s(&ct));
    assert_eq!(report["slices"], serde_json::json!([0, 16]));
    let mask = nifti::read(&out.join("mask.nii.gz")).unwrap();
    let positive = mask.data.iter().filter(|&&v| v == 1.0).count();
    assert_eq!(report["mask"]["positive_voxels"], positive);
    assert_eq!(report["mask"]["voxels"], 32 * 32 * 16);
}

#[test]
fn table1_label_mistakes_are_usage_or_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    let vol = generate(dir.path(), "7");
    let ct = vol.join("ct.nii.gz");
    let weights = tiny_weights(dir.path());
    let out = dir.path().join("t1");
    let label_small = write_ct(
        dir.path(),
        "small.nii",
        [16, 16, 4],
        &vec![0.0; 16 * 16 * 4],
    );
    let t1 = |labels: &[&Path]| {
        let mut args = vec![
            "table1",
            "--input",
            s(&ct),
            "--weights",
            s(&weights),
            "--secure-slices",
            "0",
            "--out",
            s(&out),
        ];
        for l in labels {
            args.extend(["--label", s(l)]);
        }
        bunet(&args)
    };
    let label = vol.join("label.nii.gz");
    let r = t1(&[&label, &label]);
    assert_eq!(code(&r), Some(2), "{}", stderr(&r));
    let r = t1(&[&label_small]);
    assert_eq!(code(&r), Some(65), "{}", stderr(&r));
    assert!(stderr(&r).contains("label"), "{}", stderr(&r));
}

#[test]
fn a_model_card_tells_the_client_the_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Weights::random_trained_like(&tiny_arch(), 11).unwrap();
    w.metadata.input.scale = 350.0;
    let path = dir.path().join("w.safetensors");
    std::fs::write(&path, w.to_safetensors().unwrap()).unwrap();
    let card = bunet_harness::model::read_card(&path, None).unwrap();
    assert_eq!(card.arch, tiny_arch());
    assert_eq!(card.metadata.input.scale, 350.0);
    let json = dir.path().join("card.json");
    std::fs::write(&json, card.to_json()).unwrap();
    assert_eq!(bunet_harness::model::read_card(&json, None).unwrap(), card);
    let max = bunet_unet::Architecture {
        pooling: Pooling::Max,
        ..tiny_arch()
    };
    assert!(bunet_harness::model::read_card(&json, Some(&max)).is_err());
}
