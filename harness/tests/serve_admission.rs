//! `bunet serve`'s admission control: a full server answers "busy" at once (exit 75 on the
//! client), a session over the whole memory budget is refused (exit 65), an admitted one runs,
//! a probe reports the load; and the memory estimate bounds the measured peak RSS of a real
//! session from above within a sane factor.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_unet::secure::budget::{self, Estimate};
use bunet_unet::secure::handshake::{self, Hello};
use bunet_unet::secure::{Preset, SessionConfig};
use bunet_unet::{Architecture, QuantModel, Weights};
use common::{Server, bunet, generate, ok, s, tiny_arch, tiny_weights};

/// The estimate of a session of `arch` (random weights: only the shapes matter) at `extents`.
fn estimate(arch: &Architecture, config: &SessionConfig, extents: [usize; 3]) -> Estimate {
    let model = Weights::random_trained_like(arch, 11).unwrap().fold();
    let qm = QuantModel::new(&model, config.preset.quant()).unwrap();
    budget::server_session(&qm, config, extents).unwrap()
}

/// A client that passes the handshake and then holds its admitted session (the server waits
/// for its public key) until dropped.
fn hold_session(addr: &str, arch: &Architecture, extents: [usize; 3]) -> Channel {
    let stream = TcpStream::connect(addr).expect("connect");
    let mut ch = Channel::tcp(stream, ChannelConfig::default()).expect("channel");
    let hello = Hello::client_for(arch, &SessionConfig::new(Preset::Q32), extents);
    handshake::propose(&mut ch, &hello).expect("admitted");
    ch
}

/// `bunet segment` of slices 3..5 of `vol`; returns its output and how long it took.
fn segment(vol: &Path, addr: &str, out: &Path) -> (std::process::Output, Duration) {
    let t = Instant::now();
    // The budgets below are estimated for the library's default session (`gc`, `dft`), so
    // both parties run it instead of the command line's defaults `ot` and `coeff`.
    let o = common::segment(
        &vol.join("ct.nii.gz"),
        addr,
        out,
        &["--backend", "gc", "--linear", "dft", "--slices", "3..5"],
    );
    (o, t.elapsed())
}

fn probe(addr: &str) -> String {
    ok(&bunet(&["probe", "--insecure", addr]))
}

#[test]
fn a_full_server_answers_busy_at_once_and_an_admitted_session_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let vol = generate(dir.path(), "5");
    let flags = ["--max-sessions", "1", "--backend", "gc", "--linear", "dft"];
    let server = Server::start(&weights, "100", &flags);
    assert!(probe(&server.1).contains("0/1 sessions running"));

    // One admitted session holds the only slot...
    let held = hold_session(&server.1, &tiny_arch(), [1, 32, 32]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe(&server.1).contains("1/1 sessions running") {
        assert!(Instant::now() < deadline, "the held session never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...so the next client is told at once that the server is busy: exit 75, a clear message.
    let (busy, took) = segment(&vol, &server.1, &dir.path().join("busy"));
    assert_eq!(
        busy.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    let msg = String::from_utf8_lossy(&busy.stderr);
    assert!(
        msg.contains("server busy") && msg.contains("retry"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(5), "busy answer took {took:?}");
    // A readiness probe that requires room fails the same way.
    let full = bunet(&["probe", "--insecure", "--require-free", &server.1]);
    assert_eq!(full.status.code(), Some(75));

    // Once the held session ends, its slot is free again and a client is served.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe(&server.1).contains("0/1 sessions running") {
        assert!(Instant::now() < deadline, "the slot was never given back");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (served, _) = segment(&vol, &server.1, &dir.path().join("seg"));
    let stdout = ok(&served);
    assert!(stdout.contains("segmented slices 3..5"), "{stdout}");
}

#[test]
fn memory_budget_refuses_what_never_fits_and_busies_what_does_not_fit_now() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let vol = generate(dir.path(), "6");
    let config = SessionConfig::new(Preset::Q32);
    let one = estimate(&tiny_arch(), &config, [1, 32, 32]).total();

    // A budget below one session: refused for good (exit 65), naming the budget.
    let small = (one / 2).to_string();
    let flags = [
        "--memory",
        small.as_str(),
        "--backend",
        "gc",
        "--linear",
        "dft",
    ];
    let server = Server::start(&weights, "100", &flags);
    let (refused, took) = segment(&vol, &server.1, &dir.path().join("refused"));
    assert_eq!(
        refused.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("memory budget"));
    assert!(took < Duration::from_secs(5), "refusal took {took:?}");
    drop(server);

    // A budget of one and a half sessions with four slots: the second session is busy for
    // lack of memory, not of slots; a request larger than the one admitted is refused.
    let budget = (one + one / 2).to_string();
    let flags = [
        "--memory",
        budget.as_str(),
        "--backend",
        "gc",
        "--linear",
        "dft",
    ];
    let server = Server::start(&weights, "100", &flags);
    let held = hold_session(&server.1, &tiny_arch(), [1, 32, 32]);
    let (busy, _) = segment(&vol, &server.1, &dir.path().join("busy"));
    assert_eq!(busy.status.code(), Some(75));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("memory"));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe(&server.1).contains("0/4 sessions running") {
        assert!(Instant::now() < deadline, "the memory was never given back");
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&segment(&vol, &server.1, &dir.path().join("seg")).0);
}

/// Peak RSS of `pid` (VmHWM) and its current RSS, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("a kB field")
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Runs one session of `slices` against a fresh server with `weights` and returns the
/// server's peak RSS growth over its RSS before the session, next to its estimate.
fn measured_and_estimated(
    dir: &Path,
    weights: &Path,
    arch: &Architecture,
    size: &str,
    backend: &str,
) -> (u64, Estimate) {
    let vol = dir.join(format!("vol{size}"));
    ok(&bunet(&[
        "generate",
        "--size",
        size,
        "--slices",
        "5",
        "--out",
        s(&vol),
    ]));
    let server = Server::start(weights, "100", &["--backend", backend]);
    let (_, before) = rss(server.0.id());
    let out = dir.join(format!("seg{size}{backend}"));
    let arch_text = arch.to_string();
    ok(&bunet(&[
        "segment",
        "--insecure",
        "--input",
        s(&vol.join("ct.nii.gz")),
        "--server",
        &server.1,
        "--out",
        s(&out),
        "--arch",
        &arch_text,
        "--backend",
        backend,
        "--slices",
        "2..3",
    ]));
    let (peak, _) = rss(server.0.id());
    let n: usize = size.parse().unwrap();
    let config = SessionConfig {
        nonlinear: bunet_crypto::nonlinear::Backend::from_name(backend).unwrap(),
        ..SessionConfig::new(Preset::Q32)
    };
    (peak - before, estimate(arch, &config, [1, n, n]))
}

/// The estimate bounds the measured peak from above, and without the channel's queues
/// (counted at their bound, which an honest peer reading as it goes never fills: up to
/// 256 MiB that a small session's peak does not show) it is not far above it.
fn check_bound(measured: u64, estimate: &Estimate, what: &str) {
    let estimated = estimate.total();
    let without_queues = estimated - estimate.channel;
    eprintln!(
        "{what}: measured peak growth {} MiB, estimate {} MiB (ratio {:.2}), {} MiB without \
         the channel's queues (ratio {:.2})",
        measured >> 20,
        estimated >> 20,
        estimated as f64 / measured as f64,
        without_queues >> 20,
        without_queues as f64 / measured as f64
    );
    assert!(
        estimated >= measured,
        "{what}: the estimate is no upper bound"
    );
    assert!(
        without_queues <= 4 * measured + (64 << 20),
        "{what}: the estimate is far above the measured peak"
    );
}

#[test]
fn the_estimate_bounds_a_real_sessions_peak_rss() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    for backend in ["gc", "ot"] {
        let (m, e) = measured_and_estimated(dir.path(), &weights, &tiny_arch(), "32", backend);
        check_bound(m, &e, &format!("tiny model, 32×32, {backend}"));
    }
}

/// The seed model at 64×64 (about 0.4 GB and one to two minutes per backend on a loaded 2-core
/// machine, since each layer's filters are dropped after its run): run with `--ignored`.
#[test]
#[ignore = "0.4 GB and minutes per session"]
fn the_estimate_bounds_the_seed_models_peak_rss() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("../weights/unet.safetensors");
    for backend in ["ot", "gc"] {
        let (m, e) =
            measured_and_estimated(dir.path(), &weights, &Architecture::seed(), "64", backend);
        check_bound(m, &e, &format!("seed model, 64×64, {backend}"));
    }
}

/// Waits until the one-slot server at `addr` runs no session (a finished client's session
/// ends on the server a moment after the client exits).
fn wait_until_idle(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe(addr).contains("0/1 sessions running") {
        assert!(Instant::now() < deadline, "the slot was never given back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `segment` until it is served, retrying while the server answers busy (exit 75);
/// returns how long it took in all.
fn served_after_retries(vol: &Path, addr: &str, out: &Path) -> Duration {
    let t = Instant::now();
    loop {
        let (o, _) = segment(vol, addr, out);
        match o.status.code() {
            Some(0) => return t.elapsed(),
            Some(75) if t.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(300));
            }
            _ => panic!("{}", String::from_utf8_lossy(&o.stderr)),
        }
    }
}

/// Writes `bytes` one at a time every `every` until the peer closes; returns how long the
/// peer took to close (or `None` if all bytes went out first).
fn drip(mut stream: TcpStream, bytes: &[u8], every: Duration) -> Option<Duration> {
    use std::io::{Read, Write};
    let t = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .expect("timeout");
    for b in bytes {
        if stream.write_all(&[*b]).is_err() {
            return Some(t.elapsed());
        }
        std::thread::sleep(every);
        // A closed connection reads as end of stream.
        if matches!(stream.read(&mut [0u8; 64]), Ok(0)) {
            return Some(t.elapsed());
        }
    }
    None
}

/// The first 16 bytes of a frame (magic, version, a kind, a length) followed by padding: what
/// a client that trickles its bytes sends.
fn frame_start(kind: u16, len: u64) -> Vec<u8> {
    let mut v = Vec::from(bunet_crypto::channel::MAGIC);
    v.extend_from_slice(&bunet_crypto::channel::PROTOCOL_VERSION.to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&[0; 16]);
    v
}

#[test]
fn idle_trickling_and_silent_clients_are_cut_off_and_an_honest_client_is_served_in_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    let vol = generate(dir.path(), "7");
    let limits = [
        "--max-sessions",
        "1",
        "--handshake-timeout",
        "1",
        "--idle-timeout",
        "3",
        "--frame-grace",
        "1",
        "--min-rate",
        "64K",
        // The segment helper runs the library's default session (`gc`, `dft`).
        "--backend",
        "gc",
        "--linear",
        "dft",
    ];
    let mut server = Server::start(&weights, "100", &limits);
    let every = Duration::from_millis(700);

    // 1. An idle socket and a client trickling its hello, one byte every 0.7 s: neither takes
    //    the slot, an honest client is served at once, and both are cut off at the handshake
    //    deadline (1 s), not after the idle timeout.
    let idle = TcpStream::connect(&server.1).expect("connect");
    // Watched from its own thread: when the server closes it, whatever the honest run takes.
    let idle = std::thread::spawn(move || {
        use std::io::Read;
        let t = Instant::now();
        idle.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let n = (&idle).read(&mut [0u8; 16]);
        (n.map_err(|e| e.kind()), t.elapsed())
    });
    let trickle = {
        let stream = TcpStream::connect(&server.1).expect("connect");
        std::thread::spawn(move || drip(stream, &frame_start(1, 100), every))
    };
    let (o, _) = segment(&vol, &server.1, &dir.path().join("seg1"));
    ok(&o);
    let cut = trickle.join().expect("drip thread");
    assert!(
        cut.is_some_and(|c| c < Duration::from_secs(4)),
        "trickled hello cut after {cut:?}"
    );
    let (n, after) = idle.join().expect("idle watch");
    assert!(
        matches!(n, Ok(0)) && after < Duration::from_secs(5),
        "the idle socket was not closed in time: {n:?} after {after:?}"
    );

    // 2. A client that passes the handshake (taking the only slot) and then trickles its
    //    public key: cut off at the frame deadline; the honest client, retrying on busy, is
    //    served within a few seconds.
    wait_until_idle(&server.1);
    let stream = TcpStream::connect(&server.1).expect("connect");
    let raw = stream.try_clone().expect("clone");
    let mut ch = Channel::tcp(stream, ChannelConfig::default()).expect("channel");
    let hello = Hello::client_for(&tiny_arch(), &SessionConfig::new(Preset::Q32), [1, 32, 32]);
    handshake::propose(&mut ch, &hello).expect("admitted");
    let trickle = std::thread::spawn(move || drip(raw, &frame_start(0x10, 1 << 17), every));
    let took = served_after_retries(&vol, &server.1, &dir.path().join("seg2"));
    let cut = trickle.join().expect("drip thread");
    drop(ch);
    assert!(
        cut.is_some_and(|c| c < Duration::from_secs(5)),
        "trickled frame cut after {cut:?}"
    );
    assert!(took < Duration::from_secs(30), "served after {took:?}");

    // 3. A client that passes the handshake and falls silent: the slot is freed at the idle
    //    timeout (3 s) and the honest client is served.
    wait_until_idle(&server.1);
    let silent = hold_session(&server.1, &tiny_arch(), [1, 32, 32]);
    let took = served_after_retries(&vol, &server.1, &dir.path().join("seg3"));
    assert!(took < Duration::from_secs(30), "served after {took:?}");
    drop(silent);

    // The server named each cut-off.
    let _ = server.0.kill();
    let mut log = String::new();
    {
        use std::io::Read;
        let mut stderr = server.0.stderr.take().expect("server stderr");
        stderr.read_to_string(&mut log).expect("server log");
    }
    // The idle socket sends nothing, so only the handshake deadline can cut it. The trickled
    // hello has a frame under way when its handshake deadline (1 s) comes, and its frame
    // deadline (1 s grace) falls within milliseconds of it: which of the two the server names
    // depends on scheduling (under load the frame's came first), and either cut is the
    // property step 1 checks above (cut within 4 s, not at the idle timeout). The trickled
    // public key of step 2, after the handshake, can only meet its frame deadline.
    let (handshake_cuts, frame_cuts) = (
        log.matches("handshake deadline passed").count(),
        log.matches("was not complete within its deadline").count(),
    );
    assert!(
        handshake_cuts >= 1 && frame_cuts >= 1 && handshake_cuts + frame_cuts >= 3,
        "{log}"
    );
    assert!(log.contains("no data from the peer within 3s"), "{log}");
}

#[test]
fn maximal_extent_requests_are_refused_before_the_server_allocates_for_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = tiny_weights(dir.path());
    // The requests below come from the library's default session (`gc`, `dft`).
    let flags = ["--memory", "256M", "--backend", "gc", "--linear", "dft"];
    let server = Server::start(&weights, "100", &flags);
    let (peak_before, _) = rss(server.0.id());
    // Beyond the in-plane cap (1024), at the protocol's maximum, and at the cap but over the
    // memory budget: each refused in the handshake.
    for extents in [[1, 4096, 4096], [1, 1028, 64], [1, 1024, 1024]] {
        let stream = TcpStream::connect(&server.1).expect("connect");
        let mut ch = Channel::tcp(stream, ChannelConfig::default()).expect("channel");
        let hello = Hello::client_for(&tiny_arch(), &SessionConfig::new(Preset::Q32), extents);
        match handshake::propose(&mut ch, &hello) {
            Err(bunet_unet::secure::SecureError::Refused(reason)) => {
                eprintln!("{extents:?}: refused: {reason}");
                if extents[1] > 1024 {
                    assert!(reason.contains("in-plane maximum"), "{reason}");
                }
            }
            other => panic!("{extents:?}: {other:?}"),
        }
    }
    let (peak_after, _) = rss(server.0.id());
    assert!(
        peak_after - peak_before < 32 << 20,
        "refused requests grew the server's peak RSS by {} MiB",
        (peak_after - peak_before) >> 20
    );
}
