//! Faults between `bunet segment` and `bunet serve` (two processes; a frame-aware proxy in
//! between, [`bunet_crypto::channel::fault`]): a client that sends garbage, a connection cut in
//! the middle of the garbled-circuit traffic, and random bytes of the wrong shape in place of a
//! ciphertext. The client fails with a clear exit code and writes no mask; the server ends that
//! session with an error and goes on serving the next client.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use bunet_crypto::channel::fault::{Direction, Fault, FaultProxy, Trigger};
use bunet_unet::{Architecture, Weights};

fn bunet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bunet"))
        .args(args)
        .output()
        .expect("run bunet")
}

fn tiny_arch() -> Architecture {
    Architecture {
        base_features: 4,
        depth: 2,
        ..Architecture::seed()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `bunet serve` for `clients` sessions; its address and its stderr (read after it exits).
fn start_server(weights: &Path, clients: usize) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bunet"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args([
            "--max-clients",
            &clients.to_string(),
            "--weights",
            s(weights),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bunet serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("socket address");
    (child, addr)
}

fn segment(ct: &Path, server: SocketAddr, out: &Path) -> Output {
    bunet(&[
        "segment",
        "--input",
        s(ct),
        "--server",
        &server.to_string(),
        "--out",
        s(out),
        "--arch",
        &tiny_arch().to_string(),
        "--slices",
        "7..9",
    ])
}

/// `bunet segment` through a proxy that applies `fault` at `trigger`; asserts a failure with
/// no mask written and returns the exit code.
fn broken_segment(
    ct: &Path,
    server: SocketAddr,
    out: &Path,
    trigger: Trigger,
    fault: Fault,
) -> i32 {
    let proxy = FaultProxy::spawn(server, Some((trigger, fault))).expect("proxy");
    let result = segment(ct, proxy.addr(), out);
    let log = proxy.join().expect("proxy log");
    assert!(log.fired_at.is_some(), "{fault:?}: the fault never fired");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{fault:?}: segment must fail");
    assert!(!stderr.contains("panicked"), "{fault:?}: {stderr}");
    assert!(
        !out.join("mask.nii.gz").exists(),
        "{fault:?}: no mask may be written after a failed run"
    );
    result.status.code().expect("exit code")
}

#[test]
fn broken_clients_get_errors_and_no_output_while_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = dir.path().join("tiny.safetensors");
    let bytes = Weights::random_trained_like(&tiny_arch(), 11)
        .expect("valid architecture")
        .to_safetensors()
        .expect("serialise");
    std::fs::write(&weights, bytes).expect("write weights");
    let vol = dir.path().join("vol");
    let generated = bunet(&[
        "generate",
        "--size",
        "32",
        "--slices",
        "16",
        "--seed",
        "5",
        "--out",
        s(&vol),
    ]);
    assert!(generated.status.success());
    let ct: PathBuf = vol.join("ct.nii.gz");
    let (server, addr) = start_server(&weights, 4);

    // 1. A client that sends garbage instead of a handshake.
    let mut raw = TcpStream::connect(addr).expect("connect");
    raw.write_all(&[0xA5; 4096]).expect("write garbage");
    drop(raw);

    // 2. The connection cut in the middle of the garbled-circuit traffic: "peer unavailable".
    let cut = Trigger {
        kinds: 0x0200..=0x02ff,
        skip: 3,
        direction: None,
    };
    let code = broken_segment(&ct, addr, &dir.path().join("cut"), cut, Fault::Disconnect);
    assert_eq!(code, 69, "a lost peer exits 69");

    // 3. Random bytes of the wrong length in place of the client's first HomConv upload.
    let garbage = Trigger {
        kinds: 0x0100..=0x01ff,
        skip: 1,
        direction: Some(Direction::ToTarget),
    };
    broken_segment(
        &ct,
        addr,
        &dir.path().join("garbage"),
        garbage,
        Fault::GarbageBody,
    );

    // 4. The next honest client is served.
    let out = dir.path().join("ok");
    let good = segment(&ct, addr, &out);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(out.join("mask.nii.gz").exists());

    let served = server
        .wait_with_output()
        .expect("server exits after four clients");
    assert!(served.status.success(), "the server itself never fails");
    let log = String::from_utf8_lossy(&served.stderr);
    assert_eq!(
        log.matches("failed").count(),
        3,
        "three sessions failed:\n{log}"
    );
    assert_eq!(
        log.matches(" done: ").count(),
        1,
        "one session served:\n{log}"
    );
}
