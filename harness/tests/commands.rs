//! The secure commands end to end on tiny inputs: a generated 32×32×16 volume and a tiny random
//! UNet (4 base features, depth 2), so that every test fits a 2-core CI. `serve` + `segment`
//! run as two processes; the others run both parties in one process over loopback TCP, or (for
//! `replay`) spawn `bunet serve` themselves.

mod common;

use std::path::Path;

use common::{Server, bunet, generate, ok, s, segment, tiny_arch, tiny_weights};

use bunet_harness::nifti;

#[test]
fn serve_and_segment_as_two_processes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let vol = generate(dir.path(), "3");
    let ct = vol.join("ct.nii.gz");
    let mut server = Server::start(&weights, "2", &["--preset", "q32"]);
    let arch = tiny_arch().to_string();

    // A client proposing another preset fails the handshake (exit 76)...
    let bad = bunet(&[
        "segment",
        "--insecure",
        "--input",
        s(&ct),
        "--server",
        &server.1,
        "--out",
        s(&dir.path().join("bad")),
        "--arch",
        &arch,
        "--preset",
        "q24",
        "--slices",
        "7",
    ]);
    assert_eq!(
        bad.status.code(),
        Some(76),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("preset"));

    // ...and the server goes on serving the next one.
    let out = dir.path().join("seg");
    let stdout = ok(&segment(
        &ct,
        &server.1,
        &out,
        &["--arch", &arch, "--slices", "6..9", "--overlay", "7"],
    ));
    assert!(stdout.contains("segmented slices 6..9"), "{stdout}");
    let status = server.0.wait().expect("server exits after two clients");
    assert!(status.success());

    // A slice range is a shard: the part holds the segmented slices only, 0/1, with the
    // input's in-plane geometry; the manifest is written (harness/tests/shards.rs merges them).
    let input = nifti::read(&ct).expect("ct");
    let mask = nifti::read(&out.join("part.nii.gz")).expect("part");
    assert_eq!(mask.dims, [input.dims[0], input.dims[1], 3]);
    assert_eq!(mask.header.pixdim, input.header.pixdim);
    assert_eq!(mask.header.datatype, nifti::Datatype::U8.code());
    assert!(mask.data.iter().all(|&v| v == 0.0 || v == 1.0));
    assert!(out.join("manifest.json").exists());
    assert!(!out.join("mask.nii.gz").exists());
    assert!(out.join("overlay_z007.png").exists());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["party"], "client");
    // `ot` is the default nonlinear backend of serve and segment.
    assert_eq!(report["backend"], "ot");

    // No server: exit 69 (peer unavailable).
    let addr = server.1.clone();
    drop(server);
    let gone = bunet(&[
        "segment",
        "--insecure",
        "--input",
        s(&ct),
        "--server",
        &addr,
        "--out",
        s(&out),
        "--arch",
        &arch,
    ]);
    assert_eq!(
        gone.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

#[test]
fn demo_segments_securely_and_matches_the_reference() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let out = dir.path().join("demo");
    let stdout = ok(&bunet(&[
        "demo",
        "--size",
        "32",
        "--slices",
        "16",
        "--crop",
        "0",
        "--segment",
        "2",
        "--weights",
        s(&weights),
        "--out",
        s(&out),
        "--preset",
        "q24",
    ]));
    assert!(
        stdout.contains("bit-identical to the fixed-point reference on 2/2 slices"),
        "{stdout}"
    );
    let ct = nifti::read(&out.join("ct.nii.gz")).expect("ct");
    let mask = nifti::read(&out.join("mask.nii.gz")).expect("mask");
    assert_eq!(ct.dims, [32, 32, 16]);
    assert_eq!(mask.header.geometry(), ct.header.geometry());
    let report = std::fs::read_to_string(out.join("report.md")).expect("report");
    assert!(
        report.contains("preset **q24**, nonlinear backend **ot**"),
        "{report}"
    );
    assert!(report.contains("| relu |"), "{report}");
    let svg = std::fs::read_to_string(out.join("breakdown.svg")).expect("svg");
    assert!(svg.starts_with("<svg"));
}

fn table1(dir: &Path, weights: &Path, seed: &str, secure: &str) -> (String, String) {
    let out = dir.join(format!("t1-{seed}"));
    ok(&bunet(&[
        "table1",
        "--seeds",
        seed,
        "--size",
        "32",
        "--slices",
        "16",
        "--weights",
        s(weights),
        "--secure-slices",
        secure,
        "--out",
        s(&out),
    ]));
    (
        std::fs::read_to_string(out.join("table1.md")).expect("md"),
        std::fs::read_to_string(out.join("table1.csv")).expect("csv"),
    )
}

fn csv_row(csv: &str, key: &str) -> Vec<String> {
    csv.lines()
        .find(|l| l.starts_with(&format!("{key},")))
        .unwrap_or_else(|| panic!("no row {key} in {csv}"))
        .split(',')
        .map(String::from)
        .collect()
}

#[test]
fn table1_numbers_come_from_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let (md, csv) = table1(dir.path(), &weights, "5", "1");
    assert!(md.contains("| Float | q32 | q24 |"), "{md}");
    assert!(md.contains("nonlinear backend `ot`"), "{md}");
    assert_eq!(
        csv_row(&csv, "secure_slices_identical")[2..],
        ["1/1", "1/1"]
    );
    let dice = csv_row(&csv, "dice_vs_float");
    assert_eq!(dice[1], "1");
    let truth = csv_row(&csv, "dice_vs_truth");
    for v in &dice[2..] {
        let d: f64 = v.parse().expect("a number");
        assert!((0.0..=1.0).contains(&d));
    }
    // Another volume, other Dice figures.
    let (_, other) = table1(dir.path(), &weights, "6", "0");
    assert_ne!(csv_row(&other, "dice_vs_truth"), truth);
    assert!(!other.contains("secure_slices_identical"));
}

#[test]
fn breakdown_counts_what_ran() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let run = |slices: &str| {
        let out = dir.path().join(format!("bd{slices}"));
        ok(&bunet(&[
            "breakdown",
            "--size",
            "32",
            "--slices",
            "16",
            "--run-slices",
            slices,
            // The seed's garbled circuits stay selectable (`ot` is the default).
            "--backend",
            "gc",
            "--weights",
            s(&weights),
            "--out",
            s(&out),
        ]));
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("breakdown.json")).expect("json"),
        )
        .expect("valid json");
        assert!(
            std::fs::read_to_string(out.join("breakdown.svg"))
                .unwrap()
                .contains("relu")
        );
        json
    };
    let one = run("1");
    let two = run("2");
    assert_eq!(one["backend"], "gc");
    assert_eq!(one["preset"], "q32");
    let relu = |j: &serde_json::Value, party: &str| {
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["block"] == "relu" && r["party"] == party)
            .map(|r| {
                (
                    r["elements"].as_u64().unwrap(),
                    r["bytes_sent"].as_u64().unwrap(),
                )
            })
            .expect("a relu row")
    };
    // 4·(2+2) + 8·2 + 16·2 + 8·2 + 4·2 channels of ReLU at their resolutions, per slice.
    let (e1, b1) = relu(&one, "client");
    let (e2, b2) = relu(&two, "client");
    assert_eq!(e2, 2 * e1);
    assert_eq!(b2, 2 * b1);
    assert!(relu(&one, "server").0 > 0);
    let offline = one["totals"]["keys"]["offline_bytes"].as_u64().unwrap();
    assert!(offline > 0);
}

#[test]
fn replay_measures_counts_and_extrapolates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let out = dir.path().join("replay");
    let md = ok(&bunet(&[
        "replay",
        "--size",
        "32",
        "--slices",
        "16",
        "--weights",
        s(&weights),
        "--out",
        s(&out),
    ]));
    assert!(
        md.contains("| slices run for real | 1 of 16 (1 session(s)) | measured |"),
        "{md}"
    );
    assert!(md.contains("extrapolated"), "{md}");
    assert!(md.contains("1/1 checked"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("replay.json")).unwrap()).unwrap();
    let measured = json["measured"]["bytes"].as_u64().unwrap();
    let extrapolated = json["extrapolated"]["volume_bytes"].as_u64().unwrap();
    assert!(
        extrapolated > 10 * measured && extrapolated < 16 * measured,
        "{measured} {extrapolated}"
    );
    let relu = &json["counted"]["per_slice"]["relu"];
    assert_eq!(
        json["extrapolated"]["volume_count"]["macs"]
            .as_u64()
            .unwrap(),
        tiny_arch().macs([1, 32, 32]) * 16
    );
    assert!(relu["elements"].as_u64().unwrap() > 0);
    // The proven ranges: one row per nonlinear step of the plan, never wider than the protocol.
    assert!(
        md.contains("## Proven input ranges of the nonlinear steps"),
        "{md}"
    );
    let ranges = json["nonlinear_ranges"].as_array().unwrap();
    assert!(!ranges.is_empty());
    for r in ranges {
        assert!(r["needed_bits"].as_u64().unwrap() <= r["protocol_bits"].as_u64().unwrap());
    }

    // --all: every slice for real in two sessions, the whole mask written.
    let all = dir.path().join("all");
    let md = ok(&bunet(&[
        "replay",
        "--size",
        "32",
        "--slices",
        "8",
        "--all",
        "--jobs",
        "2",
        "--weights",
        s(&weights),
        "--out",
        s(&all),
    ]));
    assert!(md.contains("8 of 8 (2 session(s))"), "{md}");
    let mask = nifti::read(&all.join("mask.nii.gz")).expect("mask");
    assert_eq!(mask.dims, [32, 32, 8]);
}

#[test]
fn every_command_has_help_naming_backends_and_presets() {
    for cmd in ["serve", "segment", "demo", "table1", "breakdown", "replay"] {
        let help = ok(&bunet(&[cmd, "--help"]));
        for name in bunet_crypto::nonlinear::Backend::ALL
            .iter()
            .map(|b| b.name())
        {
            assert!(
                help.contains(name),
                "{cmd} --help lacks backend {name}: {help}"
            );
        }
        assert!(
            help.contains("q32") && help.contains("q24"),
            "{cmd}: {help}"
        );
        let bad = bunet(&[cmd, "--backend", "nope"]);
        assert_eq!(bad.status.code(), Some(2), "{cmd}");
    }
}
