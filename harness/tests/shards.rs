//! One volume as shards (`bunet segment --shard I/K`, `bunet merge`), between processes: the
//! merged mask equals the one-process mask bit for bit for 1, 2 and 4 shards, with the 2.5D
//! UNet and with a volume (3D) UNet run by slabs with their halo (which also equals the
//! fixed-point reference); a finished shard is skipped when re-run; merge refuses a missing
//! range, an overlap, and shards of another volume, model or protocol, naming the shard.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use bunet_harness::nifti;
use bunet_harness::shard;
use bunet_harness::volume::CtVolume;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::secure::Preset;
use bunet_unet::{QuantModel, Tensor, Weights, fixed};
use common::{Server, bunet, ok, s};

fn arch_2d(base: usize) -> Architecture {
    Architecture {
        base_features: base,
        depth: 2,
        ..Architecture::seed()
    }
}

fn arch_3d() -> Architecture {
    Architecture {
        in_channels: 1,
        base_features: 2,
        depth: 1,
        activation: Activation::Relu,
        pooling: Pooling::AvgLocal,
        dims: Dims::Three,
        classes: 2,
    }
}

fn weights(dir: &Path, arch: &Architecture, name: &str) -> PathBuf {
    let bytes = Weights::random_trained_like(arch, 11)
        .expect("valid architecture")
        .to_safetensors()
        .expect("serialise");
    let path = dir.join(format!("{name}.safetensors"));
    std::fs::write(&path, bytes).expect("write weights");
    path
}

fn volume(dir: &Path, size: u32, slices: u32, seed: u32) -> PathBuf {
    let out = dir.join(format!("vol{seed}"));
    ok(&bunet(&[
        "generate",
        "--size",
        &size.to_string(),
        "--slices",
        &slices.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        s(&out),
    ]));
    out.join("ct.nii.gz")
}

fn segment(ct: &Path, server: &str, out: &Path, arch: &Architecture, extra: &[&str]) -> Output {
    let arch = arch.to_string();
    let mut args = vec!["--arch", &arch];
    if !extra.contains(&"--preset") {
        args.extend(["--preset", "q24"]);
    }
    args.extend(extra);
    common::segment(ct, server, out, &args)
}

/// Runs shards `I/k` for every `I` of `k` into `root/k-I`; returns the directories.
fn shards(ct: &Path, server: &str, root: &Path, arch: &Architecture, k: usize) -> Vec<PathBuf> {
    (0..k)
        .map(|i| {
            let dir = root.join(format!("{k}-{i}"));
            let spec = format!("{i}/{k}");
            let out = ok(&segment(ct, server, &dir, arch, &["--shard", &spec]));
            assert!(out.contains("segmented slices"), "{out}");
            dir
        })
        .collect()
}

fn merge(out: &Path, dirs: &[PathBuf]) -> Output {
    let mut args = vec!["merge", "--out", s(out)];
    args.extend(dirs.iter().map(|d| s(d)));
    bunet(&args)
}

/// Asserts that merging `dirs` is refused with exit 65 and a message naming `offender`.
fn refused(root: &Path, dirs: &[PathBuf], offender: &Path, what: &str) {
    let out = merge(&root.join("refused"), dirs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{what}: {stderr}");
    assert!(
        stderr.contains(s(offender)) && stderr.contains(what),
        "{what}: the message must name {}: {stderr}",
        offender.display()
    );
    assert!(!root.join("refused").join("mask.nii.gz").exists());
}

fn same_mask(a: &Path, b: &Path) -> Vec<u8> {
    let (x, y) = (
        nifti::read(a).expect("first mask"),
        nifti::read(b).expect("second mask"),
    );
    assert_eq!(x.header, y.header, "{} vs {}", a.display(), b.display());
    assert!(x.data == y.data, "{} vs {}", a.display(), b.display());
    x.data.iter().map(|&v| v as u8).collect()
}

#[test]
fn two_d_shards_merge_to_the_one_process_mask_and_bad_sets_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let arch = arch_2d(4);
    let w = weights(root, &arch, "tiny");
    // 6 slices: 4 shards of 1, 2, 1 and 2 slices.
    let ct = volume(root, 16, 6, 3);
    let mut server = Server::start(&w, "10", &["--preset", "q24"]);

    // Shard specifications that do not fit are usage errors, found before connecting.
    for bad in [
        &["--shard", "6/6"][..],
        &["--shard", "0/7"],
        &["--shard", "1"],
        &["--shard", "0/2", "--slices", "0..3"],
        &["--slices", "4..7"],
    ] {
        let out = segment(&ct, "127.0.0.1:9", &root.join("bad"), &arch, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }

    let whole = root.join("whole");
    ok(&segment(&ct, &server.1, &whole, &arch, &[]));
    let mut sets = Vec::new();
    for k in [1, 2, 4] {
        let dirs = shards(&ct, &server.1, root, &arch, k);
        let merged = root.join(format!("merged-{k}"));
        let stdout = ok(&merge(&merged, &dirs));
        assert!(stdout.contains(&format!("merged {k} shard(s)")), "{stdout}");
        let mask = same_mask(&whole.join("mask.nii.gz"), &merged.join("mask.nii.gz"));
        assert!(mask.len() == 16 * 16 * 6);
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(merged.join("report.json")).expect("report"),
        )
        .expect("json");
        assert_eq!(report["shards"].as_array().map(Vec::len), Some(k));
        let argmax = report["blocks"]
            .as_array()
            .and_then(|b| {
                b.iter()
                    .find(|b| b["block"] == "argmax" && b["phase"] == "online")
            })
            .expect("argmax block");
        assert_eq!(
            argmax["calls"], 6,
            "one argmax per slice, summed over shards"
        );
        assert!(merged.join("report.md").exists());
        sets.push(dirs);
    }
    let (two, four) = (&sets[1], &sets[2]);

    // Resume: a finished shard is skipped without connecting (the address is dead).
    let again = ok(&segment(
        &ct,
        "127.0.0.1:9",
        &two[0],
        &arch,
        &["--shard", "0/2"],
    ));
    assert!(again.contains("skipped"), "{again}");
    // A shard whose part was damaged is not finished: merge refuses it, naming it.
    let damaged = root.join("damaged");
    std::fs::create_dir_all(&damaged).expect("dir");
    for f in ["manifest.json", "part.nii.gz"] {
        std::fs::copy(four[3].join(f), damaged.join(f)).expect("copy");
    }
    let mut part = std::fs::read(damaged.join("part.nii.gz")).expect("part");
    let last = part.len() - 9;
    part[last] ^= 1;
    std::fs::write(damaged.join("part.nii.gz"), part).expect("write");
    let with_damaged = [four[0].clone(), four[1].clone(), four[2].clone(), damaged];
    refused(root, &with_damaged, &with_damaged[3], "sha256");
    // A directory without a manifest (a shard that died) is refused too.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    refused(
        root,
        &[two[0].clone(), empty.clone()],
        &empty,
        "no manifest.json",
    );

    // A missing range.
    let gap = [four[0].clone(), four[1].clone(), four[3].clone()];
    refused(root, &gap, &four[3], "missing");
    let tail = [four[0].clone(), four[1].clone()];
    refused(root, &tail, &four[1], "missing");
    // An overlap: shards 0/2 (0..3), 1/4 (1..3) and 1/2 (3..6).
    let overlap = [two[0].clone(), four[1].clone(), two[1].clone()];
    refused(root, &overlap, &four[1], "overlap");

    // The shards of another volume, model or protocol are refused before their ranges are
    // looked at: one slice each is enough. Another volume first.
    let other_ct = volume(root, 16, 6, 4);
    let other_vol = root.join("other-volume");
    ok(&segment(
        &other_ct,
        &server.1,
        &other_vol,
        &arch,
        &["--slices", "3"],
    ));
    refused(
        root,
        &[two[0].clone(), other_vol.clone()],
        &other_vol,
        "another volume",
    );

    // Another model (another architecture, another server) and another protocol (q32).
    let arch2 = arch_2d(2);
    let w2 = weights(root, &arch2, "tiny2");
    let server2 = Server::start(&w2, "1", &["--preset", "q24"]);
    let other_model = root.join("other-model");
    ok(&segment(
        &ct,
        &server2.1,
        &other_model,
        &arch2,
        &["--slices", "3"],
    ));
    refused(
        root,
        &[two[0].clone(), other_model.clone()],
        &other_model,
        "another model",
    );
    // The same architecture under another provider-given model id (other weights).
    let other_id = root.join("other-id");
    let id = ["--slices", "3", "--model-id", "sha256:0123"];
    ok(&segment(&ct, &server.1, &other_id, &arch, &id));
    refused(
        root,
        &[two[0].clone(), other_id.clone()],
        &other_id,
        "another model",
    );
    assert!(server.0.wait().expect("server exits").success());
    let server_q32 = Server::start(&w, "1", &["--preset", "q32"]);
    let other_protocol = root.join("other-protocol");
    let q32 = ["--slices", "3", "--preset", "q32"];
    ok(&segment(&ct, &server_q32.1, &other_protocol, &arch, &q32));
    refused(
        root,
        &[two[0].clone(), other_protocol.clone()],
        &other_protocol,
        "another protocol",
    );
}

#[test]
fn three_d_slabs_merge_to_the_one_process_mask_and_the_fixed_point_reference() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let arch = arch_3d();
    let w = weights(root, &arch, "tiny3d");
    let ct = volume(root, 8, 24, 3);
    let mut server = Server::start(&w, "8", &["--preset", "q24"]);

    let whole = root.join("whole");
    ok(&segment(&ct, &server.1, &whole, &arch, &[]));
    for k in [1, 2, 4] {
        let dirs = shards(&ct, &server.1, root, &arch, k);
        let merged = root.join(format!("merged-{k}"));
        ok(&merge(&merged, &dirs));
        same_mask(&whole.join("mask.nii.gz"), &merged.join("mask.nii.gz"));
        if k == 4 {
            // The first slab stops short of the volume: its halo is real, not the volume's end.
            let m: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dirs[0].join("manifest.json")).expect("manifest"),
            )
            .expect("json");
            assert_eq!(m["range"]["slab"]["end"], 14, "{m}");
        }
    }
    assert!(server.0.wait().expect("server exits").success());

    // The one-process secure mask is the fixed-point reference's on the whole (padded) volume.
    let image = nifti::read(&ct).expect("ct");
    let vol = CtVolume::from_image(image);
    let prepared = vol.prepare(&arch).expect("3D arch");
    // The server's fixed-point model, activation scale calibrated as `bunet serve` does.
    let qm = bunet_harness::model::quantise(
        &Weights::random_trained_like(&arch, 11)
            .expect("weights")
            .fold(),
        Preset::Q24.quant(),
    )
    .expect("quantise");
    let input = prepared.slab(0, prepared.padded_slices()).expect("whole");
    let reference = fixed::segment(&qm, &input).expect("reference");
    let [_, py, px] = reference.dims();
    let mut want = Vec::new();
    for z in 0..24 {
        want.extend(prepared.crop(&reference.data()[z * py * px..(z + 1) * py * px]));
    }
    let got = nifti::read(&whole.join("mask.nii.gz")).expect("mask");
    let got: Vec<u8> = got.data.iter().map(|&v| v as u8).collect();
    assert!(
        got == want,
        "secure whole-volume mask = fixed-point reference"
    );
    let ones = got.iter().filter(|&&v| v == 1).count();
    assert!(
        0 < ones && ones < got.len(),
        "a mask of one value proves little"
    );
}

/// The slab rule in plaintext on a longer volume and a deeper network: every shard's slab, run
/// alone through the fixed-point reference, gives the whole volume's core slices exactly —
/// down to the class scores before the argmax, not only the mask.
#[test]
fn slabs_with_their_halo_give_the_whole_volume_scores() {
    let arch = Architecture {
        depth: 2,
        ..arch_3d()
    };
    let qm = QuantModel::new(
        &Weights::random_trained_like(&arch, 5)
            .expect("weights")
            .fold(),
        Preset::Q24.quant(),
    )
    .expect("quantise");
    let nz = 60;
    let [h, w] = [8, 8];
    let data: Vec<f32> = (0..nz * h * w)
        .map(|i| ((i * 7919 % 251) as f32 / 125.0) - 1.0)
        .collect();
    let volume = Tensor::from_vec(1, [nz, h, w], data).expect("volume");
    let scores = |t: &Tensor<f32>| {
        let mut out = None;
        let x = qm.quant().encode_tensor(t);
        let mask = fixed::run(&qm, x, |step, v| {
            if step.op == bunet_unet::quant::Op::Argmax2 {
                return;
            }
            out = Some(v.clone());
        })
        .expect("run");
        (out.expect("scores"), mask)
    };
    let (whole_scores, whole_mask) = scores(&volume);
    let plane = h * w;
    for k in [2, 3, 5] {
        for i in 0..k {
            let (a, b) = shard::shard_range(i, k, nz).expect("range");
            let sl = shard::slab(&arch, (a, b), nz);
            assert!(sl.start.is_multiple_of(4) && sl.end.is_multiple_of(4));
            let part = Tensor::from_vec(
                1,
                [sl.end - sl.start, h, w],
                volume.data()[sl.start * plane..sl.end * plane].to_vec(),
            )
            .expect("slab");
            let (s, m) = scores(&part);
            for z in a..b {
                let k_ = z - sl.start;
                for c in 0..2 {
                    let got = &s.channel(c)[k_ * plane..(k_ + 1) * plane];
                    let want = &whole_scores.channel(c)[z * plane..(z + 1) * plane];
                    assert!(got == want, "shard {i}/{k}, slice {z}, class {c}");
                }
                assert_eq!(
                    &m.data()[k_ * plane..(k_ + 1) * plane],
                    &whole_mask.data()[z * plane..(z + 1) * plane]
                );
            }
        }
    }
}
