//! Helpers shared by the command tests: running `bunet`, a tiny random UNet, generated
//! volumes and a `bunet serve` child process.
#![allow(dead_code)] // each test crate uses a subset

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use bunet_unet::arch::{Activation, Dims, Pooling};
use bunet_unet::{Architecture, Weights};

pub fn bunet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bunet"))
        .args(args)
        .output()
        .expect("run bunet")
}

pub fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn tiny_arch() -> Architecture {
    Architecture::small(Activation::Relu, Pooling::AvgByRotation, Dims::Two, 4)
}

/// Tiny random weights with their architecture in the metadata.
pub fn tiny_weights(dir: &Path) -> PathBuf {
    let bytes = Weights::random_trained_like(&tiny_arch(), 11)
        .expect("valid architecture")
        .to_safetensors()
        .expect("serialise");
    let path = dir.join("tiny.safetensors");
    std::fs::write(&path, bytes).expect("write weights");
    path
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

pub fn generate(dir: &Path, seed: &str) -> PathBuf {
    let out = dir.join(format!("vol{seed}"));
    ok(&bunet(&[
        "generate",
        "--size",
        "32",
        "--slices",
        "16",
        "--seed",
        seed,
        "--out",
        s(&out),
    ]));
    out
}

/// `bunet segment` of `ct` against `server` into `out` over plain TCP (`--insecure`): the tiny
/// architecture unless `extra` names one (`--arch`), then `extra`.
pub fn segment(ct: &Path, server: &str, out: &Path, extra: &[&str]) -> Output {
    segment_over(&["--insecure"], ct, server, out, extra)
}

/// [`segment`] with the transport options `transport` (TLS's, `--insecure`, or none).
pub fn segment_over(
    transport: &[&str],
    ct: &Path,
    server: &str,
    out: &Path,
    extra: &[&str],
) -> Output {
    let arch = tiny_arch().to_string();
    let mut args = vec![
        "segment",
        "--input",
        s(ct),
        "--server",
        server,
        "--out",
        s(out),
    ];
    if !extra.contains(&"--arch") {
        args.extend(["--arch", &arch]);
    }
    args.extend(transport);
    args.extend(extra);
    bunet(&args)
}

pub struct Server(pub Child, pub String);

impl Server {
    pub fn start(weights: &Path, clients: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bunet"))
            .args(["serve", "--listen", "127.0.0.1:0", "--max-clients", clients])
            // Plain TCP unless the test sets up TLS.
            .args(if extra.contains(&"--tls-cert") {
                &[][..]
            } else {
                &["--insecure"][..]
            })
            .args(["--weights", s(weights)])
            .args(extra)
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
            .to_string();
        Server(child, addr)
    }
}

impl Server {
    /// Stops the server and returns everything it logged.
    pub fn kill_and_read_log(mut self) -> String {
        let _ = self.0.kill();
        let mut log = String::new();
        self.0
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut log)
            .expect("server log");
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
