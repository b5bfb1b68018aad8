//! Faults between `bunet segment` and `bunet serve` (two processes; a frame-aware proxy in
//! between, [`bunet_crypto::channel::fault`]): a client that sends garbage, a connection cut in
//! the middle of the garbled-circuit traffic, and random bytes of the wrong shape in place of a
//! ciphertext. The client fails with a clear exit code and writes no mask; the server ends that
//! session with an error and goes on serving the next client.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;

use bunet_crypto::channel::fault::{Direction, Fault, FaultProxy, Trigger};
use common::{Server, bunet, generate, s, tiny_arch, tiny_weights};

/// The faults are placed on the message pattern of the seed's garbled circuits, so both parties
/// run `--backend gc` (not the default `ot`).
fn segment(ct: &Path, server: SocketAddr, out: &Path) -> Output {
    bunet(&[
        "segment",
        "--backend",
        "gc",
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
        !out.join("manifest.json").exists() && !out.join("part.nii.gz").exists(),
        "{fault:?}: no (partial) mask may be written after a failed run"
    );
    result.status.code().expect("exit code")
}

#[test]
fn broken_clients_get_errors_and_no_output_while_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let ct: PathBuf = generate(dir.path(), "5").join("ct.nii.gz");
    let mut server = Server::start(&weights, "4", &["--backend", "gc"]);
    let addr: SocketAddr = server.1.parse().expect("socket address");

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
    assert!(out.join("manifest.json").exists());

    let mut stderr = server.0.stderr.take().expect("server stderr");
    let status = server.0.wait().expect("server exits after four clients");
    assert!(status.success(), "the server itself never fails");
    let mut log = String::new();
    stderr.read_to_string(&mut log).expect("server log");
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

#[test]
fn clients_beyond_max_sessions_are_told_busy_at_once_and_served_on_retry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let ct = generate(dir.path(), "6").join("ct.nii.gz");
    let mut server = Server::start(&weights, "2", &["--max-sessions", "1"]);
    let addr: SocketAddr = server.1.parse().expect("socket address");
    let run = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bunet"))
            .args(["segment", "--input", s(&ct), "--server", &addr.to_string()])
            .args(["--out", s(&dir.path().join(name)), "--slices", "7..8"])
            .args(["--arch", &tiny_arch().to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start bunet segment")
    };
    // Two clients at once against one slot: each is served, or told at once that the server
    // is busy (exit 75) instead of waiting in the backlog; a busy one is served on retry.
    let children: Vec<_> = ["a", "b"].iter().map(|n| run(n)).collect();
    let clients: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("bunet segment exits"))
        .collect();
    let mut busy = 0;
    for (c, name) in clients.iter().zip(["a", "b"]) {
        match c.status.code() {
            Some(0) => {}
            Some(75) => {
                busy += 1;
                let err = String::from_utf8_lossy(&c.stderr);
                assert!(err.contains("server busy"), "{err}");
                let again = run(name).wait_with_output().expect("retry exits");
                assert!(
                    again.status.success(),
                    "{}",
                    String::from_utf8_lossy(&again.stderr)
                );
            }
            _ => panic!("{}", String::from_utf8_lossy(&c.stderr)),
        }
    }
    assert!(busy <= 1, "one of the two clients must have been admitted");
    let mut stderr = server.0.stderr.take().expect("server stderr");
    assert!(server.0.wait().expect("server exits").success());
    let mut log = String::new();
    stderr.read_to_string(&mut log).expect("server log");
    assert_eq!(log.matches(" done: ").count(), 2, "{log}");
    assert_eq!(log.matches("server busy").count(), busy, "{log}");
}
