//! Helpers shared by the command tests: running `bunet`, a tiny random UNet, generated
//! volumes and a `bunet serve` child process.
#![allow(dead_code)] // each test crate uses a subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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
    Architecture {
        base_features: 4,
        depth: 2,
        ..Architecture::seed()
    }
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

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
