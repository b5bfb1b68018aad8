//! `bunet serve` defers a request's heavy work until the client's data for it arrives: a
//! client that states a large request (1024×1024 slices of the seed model) and then sends
//! nothing — after its hello, or after the whole set-up and an accepted request — leaves the
//! server's peak RSS small until the server cuts it off at the idle timeout.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::nonlinear::Backend;
use bunet_crypto::prg::Prg;
use bunet_unet::Architecture;
use bunet_unet::secure::handshake::{self, Hello};
use bunet_unet::secure::{Client, Preset, SessionConfig};
use common::{Server, bunet, ok};

/// What a silent client may make the server allocate: the session's keys, the OT backend's
/// Ferret buffers and the request's zero input share, not a layer's filters or activations.
const SILENT_PEAK_LIMIT: u64 = 200 << 20;

/// Peak RSS (VmHWM) of `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("a VmHWM field")
        * 1024
}

/// Waits until the one-slot server at `addr` runs no session.
fn wait_until_idle(addr: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !ok(&bunet(&["probe", "--insecure", addr])).contains("0/1 sessions running") {
        assert!(
            Instant::now() < deadline,
            "the silent session was never cut off"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_silent_client_of_a_large_request_costs_the_server_little_memory() {
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("../weights/unet.safetensors");
    let server = Server::start(
        &weights,
        "100",
        &[
            "--max-sessions",
            "1",
            "--backend",
            "ot",
            // The hello below is the library's default linear backend (`dft`).
            "--linear",
            "dft",
            // Admission is arithmetic: a budget that admits the large request.
            "--memory",
            "64G",
            "--idle-timeout",
            "8",
        ],
    );
    let pid = server.0.id();
    let arch = Architecture::seed();
    let extents = [1, 1024, 1024];
    let config = SessionConfig {
        nonlinear: Backend::Ot,
        ..SessionConfig::new(Preset::Q32)
    };
    let connect = || {
        let stream = TcpStream::connect(&server.1).expect("connect");
        Channel::tcp(stream, ChannelConfig::default()).expect("channel")
    };
    let start = peak_rss(pid);

    // 1. A valid hello for the large request, then silence.
    let mut ch = connect();
    handshake::propose(&mut ch, &Hello::client_for(&arch, &config, extents)).expect("admitted");
    wait_until_idle(&server.1, Duration::from_secs(30));
    drop(ch);
    let after_hello = peak_rss(pid);

    // 2. The whole set-up (public key, Ferret) and an accepted request with its offline phase
    //    (Galois keys), then silence where the first layer's uploads should come.
    let mut ch = connect();
    let mut client =
        Client::connect_for(&mut ch, &arch, config, extents, Prg::from_os_entropy()).unwrap();
    client.prepare(&mut ch, extents).expect("request accepted");
    wait_until_idle(&server.1, Duration::from_secs(60));
    drop(ch);
    let after_request = peak_rss(pid);

    eprintln!(
        "server peak RSS: {} MiB at start, {} MiB after a silent hello, {} MiB after a silent \
         request",
        start >> 20,
        after_hello >> 20,
        after_request >> 20
    );
    assert!(
        after_hello - start < SILENT_PEAK_LIMIT,
        "a silent hello grew the server's peak by {} MiB",
        (after_hello - start) >> 20
    );
    assert!(
        after_request - start < SILENT_PEAK_LIMIT,
        "a silent request grew the server's peak by {} MiB",
        (after_request - start) >> 20
    );
}
