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
use common::{Server, generate, s, tiny_arch, tiny_weights};

/// The faults are placed on the message pattern of the seed's garbled circuits, so both parties
/// run `--backend gc` (not the default `ot`).
fn segment(ct: &Path, server: SocketAddr, out: &Path) -> Output {
    common::segment(
        ct,
        &server.to_string(),
        out,
        &["--backend", "gc", "--slices", "7..9"],
    )
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
            .args([
                "segment",
                "--insecure",
                "--input",
                s(&ct),
                "--server",
                &addr.to_string(),
            ])
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

/// `bunet segment` of slices 7..8 with `extra` options through `via`.
fn segment_with(ct: &Path, via: SocketAddr, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--slices", "7..8"];
    args.extend_from_slice(extra);
    common::segment(ct, &via.to_string(), out, &args)
}

/// One fault at the first frame of `kinds` travelling `direction`; asserts the client's exit
/// code, that it fails with no mask and no panic, and that it ends within `within`.
#[allow(clippy::too_many_arguments)]
fn expect_exit(
    ct: &Path,
    server: SocketAddr,
    out: &Path,
    extra: &[&str],
    (kinds, direction): (std::ops::RangeInclusive<u16>, Direction),
    fault: Fault,
    code: i32,
    within: std::time::Duration,
) {
    let trigger = Trigger {
        kinds: kinds.clone(),
        skip: 0,
        direction: Some(direction),
    };
    let proxy = FaultProxy::spawn(server, Some((trigger, fault))).expect("proxy");
    let t = std::time::Instant::now();
    let result = segment_with(ct, proxy.addr(), out, extra);
    let took = t.elapsed();
    let log = proxy.join().expect("proxy log");
    let what = format!("{fault:?} at {kinds:x?} {direction:?} ({extra:?})");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(log.fired_at.is_some(), "{what}: the fault never fired");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        !out.join("part.nii.gz").exists(),
        "{what}: a mask was written"
    );
    assert_eq!(result.status.code(), Some(code), "{what}: {stderr}");
    assert!(took < within, "{what}: took {took:?}");
}

/// The kinds of each message family a session of `backend` exchanges, with the direction of
/// its first frame that reaches the client (or, failing that, the server), as a faithful
/// proxy sees them.
fn families(
    ct: &Path,
    server: SocketAddr,
    out: &Path,
    extra: &[&str],
    backend: &str,
) -> Vec<(&'static str, std::ops::RangeInclusive<u16>, Direction)> {
    let proxy = FaultProxy::spawn(server, None).expect("proxy");
    let o = segment_with(ct, proxy.addr(), out, extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = proxy.join().expect("proxy log");
    let mut all = vec![
        ("handshake", 0x0001..=0x0002),
        ("HomConv", 0x0101..=0x0106),
        ("base OT", 0x0300..=0x0301),
    ];
    if backend == "gc" {
        all.extend([("IKNP", 0x0310..=0x0312), ("garbling", 0x0201..=0x0215)]);
    } else {
        all.extend([
            ("Ferret", 0x0320..=0x0321),
            ("silent-OT derivations", 0x0330..=0x0334),
            ("reshare and reveal", 0x0340..=0x0341),
        ]);
    }
    all.into_iter()
        .map(|(name, kinds)| {
            let seen = |d| {
                log.frames
                    .iter()
                    .any(|f| f.direction == d && kinds.contains(&f.kind))
            };
            let direction = if seen(Direction::FromTarget) {
                Direction::FromTarget
            } else {
                assert!(seen(Direction::ToTarget), "{backend}: no {name} frame seen");
                Direction::ToTarget
            };
            (name, kinds, direction)
        })
        .collect()
}

#[test]
fn every_family_of_both_backends_and_presets_and_slow_or_silent_peers_exit_by_whose_fault() {
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let ct = generate(dir.path(), "9").join("ct.nii.gz");
    let limits = [
        "--idle-timeout",
        "5",
        "--frame-grace",
        "1",
        "--min-rate",
        "64K",
    ];
    let mut n = 0;
    for (backend, preset) in [("gc", "q24"), ("ot", "q32"), ("ot", "q24")] {
        let mut flags = vec!["--backend", backend, "--preset", preset];
        let mut server_flags = flags.clone();
        server_flags.extend_from_slice(&limits);
        let server = Server::start(&weights, "100", &server_flags);
        let addr: SocketAddr = server.1.parse().expect("socket address");
        let mut out = || {
            n += 1;
            dir.path().join(format!("out{n}"))
        };
        // Garbage of the wrong length in each family: a frame to the client is the peer's
        // fault there (76); a frame to the server ends the session there, and the client then
        // finds the connection gone (69).
        for (name, kinds, direction) in families(&ct, addr, &out(), &flags, backend) {
            let code = if direction == Direction::FromTarget {
                76
            } else {
                69
            };
            eprintln!("{backend} {preset}: garbage in {name} ({direction:?}) -> {code}");
            expect_exit(
                &ct,
                addr,
                &out(),
                &flags,
                (kinds, direction),
                Fault::GarbageBody,
                code,
                Duration::from_secs(60),
            );
        }
        // The connection cut in the nonlinear layers: 69.
        let nonlinear = if backend == "gc" {
            0x0201..=0x0215
        } else {
            0x0330..=0x0334
        };
        expect_exit(
            &ct,
            addr,
            &out(),
            &flags,
            (nonlinear.clone(), Direction::FromTarget),
            Fault::Disconnect,
            69,
            Duration::from_secs(60),
        );
        // A silent server: the client gives up at its idle timeout (75).
        flags.extend_from_slice(&["--idle-timeout", "2"]);
        expect_exit(
            &ct,
            addr,
            &out(),
            &flags,
            (nonlinear, Direction::FromTarget),
            Fault::Silence,
            75,
            Duration::from_secs(30),
        );
        flags.truncate(4);
        // A client that trickles its first HomConv upload: the server cuts it at the frame's
        // deadline, and the client then finds the connection gone (69).
        expect_exit(
            &ct,
            addr,
            &out(),
            &flags,
            (0x0101..=0x0105, Direction::ToTarget),
            Fault::Trickle(Duration::from_millis(200)),
            69,
            Duration::from_secs(60),
        );
        // The server still serves an honest client.
        let o = segment_with(&ct, addr, &out(), &flags);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let log = server.kill_and_read_log();
        assert!(
            log.contains("was not complete within its deadline"),
            "{backend} {preset}: the trickle was not cut by its deadline:\n{log}"
        );
        assert!(!log.contains("panicked"), "{log}");
    }
}
