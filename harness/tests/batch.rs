//! `--batch` and `segment --jobs` end to end, as two processes on a tiny UNet: slices run in
//! batches of 2 over two concurrent sessions give the same part, bit for bit, as slices run one
//! by one in one session, and the report names the batch; a server of another batch refuses
//! the handshake (exit 76).

mod common;

use common::{Server, bunet, generate, ok, s, tiny_arch, tiny_weights};

use bunet_harness::nifti;

#[test]
fn batches_over_two_sessions_give_the_masks_of_single_slices() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let vol = generate(dir.path(), "5");
    let ct = vol.join("ct.nii.gz");
    let arch = tiny_arch().to_string();
    let segment = |server: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "segment",
            "--insecure",
            "--input",
            s(&ct),
            "--server",
            server,
            "--arch",
            &arch,
            "--backend",
            "ot",
            "--slices",
            "5..10",
        ];
        let out = dir.path().join(out);
        args.extend_from_slice(&["--out", s(&out)]);
        args.extend_from_slice(extra);
        (bunet(&args), out)
    };

    let one = Server::start(&weights, "1", &["--backend", "ot"]);
    let (run, single) = segment(&one.1, "single", &[]);
    ok(&run);

    // Five slices in batches of 2 over two sessions: shares of two batches and one.
    let mut batched = Server::start(&weights, "3", &["--backend", "ot", "--batch", "2"]);
    let (bad, _) = segment(&batched.1, "bad", &["--batch", "3"]);
    assert_eq!(
        bad.status.code(),
        Some(76),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("batch"));
    let (run, pair) = segment(&batched.1, "batched", &["--batch", "2", "--jobs", "2"]);
    ok(&run);
    assert!(batched.0.wait().expect("server exits").success());

    let a = nifti::read(&single.join("part.nii.gz")).expect("single part");
    let b = nifti::read(&pair.join("part.nii.gz")).expect("batched part");
    assert_eq!(a.dims, b.dims);
    assert_eq!(
        a.data, b.data,
        "batched masks differ from single-slice masks"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pair.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["batch"], 2);
}
