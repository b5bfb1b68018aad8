//! Mutual TLS between `bunet segment` and `bunet serve`: a client with a certificate of the
//! server's client CA is served, bit-exact with a plain-TCP session, and named by its
//! certificate's subject in the server's log; a plaintext client and a client whose
//! certificate another CA signed are refused; neither side speaks plain TCP unless told to.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, bunet, generate, s, tiny_weights};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// PEM files of one party.
struct Party {
    cert: PathBuf,
    key: PathBuf,
}

/// A CA: its certificate file and what it needs to sign.
struct Ca {
    cert: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(dir: &Path, name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed CA");
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, cert.pem()).expect("write CA");
    Ca {
        cert: path,
        issuer: Issuer::new(params, key),
    }
}

fn party(dir: &Path, ca: &Ca, name: &str, sans: &[&str]) -> Party {
    let key = KeyPair::generate().expect("key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    let (cert_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    Party {
        cert: cert_path,
        key: key_path,
    }
}

/// `bunet segment` of slices 2..4 with `transport` flags; its output and wall time.
fn segment(
    ct: &Path,
    addr: &str,
    out: &Path,
    transport: &[&str],
) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let o = common::segment_over(transport, ct, addr, out, &["--slices", "2..4"]);
    (o, t.elapsed())
}

fn mask(out: &Path) -> Vec<f32> {
    bunet_harness::nifti::read(&out.join("part.nii.gz"))
        .expect("part mask")
        .data
}

fn report_bytes(out: &Path) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report"))
            .expect("json");
    json["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|b| b["bytes_sent"].as_u64().unwrap_or(0) + b["bytes_received"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn mutual_tls_serves_known_clients_bit_exact_and_refuses_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let weights = tiny_weights(d);
    let ct = generate(d, "8").join("ct.nii.gz");
    let ca_ = ca(d, "bunet-test-ca");
    let server_id = party(d, &ca_, "server", &["localhost", "127.0.0.1"]);
    let client_id = party(d, &ca_, "hospital-a", &[]);
    let rogue_ca = ca(d, "rogue-ca");
    let rogue = party(d, &rogue_ca, "rogue", &[]);

    let tls_flags = [
        "--tls-cert",
        s(&server_id.cert),
        "--tls-key",
        s(&server_id.key),
        "--client-ca",
        s(&ca_.cert),
    ];
    let server = Server::start(&weights, "100", &tls_flags);
    let client_flags = |p: &Party| {
        vec![
            "--ca".to_string(),
            s(&ca_.cert).to_string(),
            "--cert".to_string(),
            s(&p.cert).to_string(),
            "--key".to_string(),
            s(&p.key).to_string(),
        ]
    };
    let owned = client_flags(&client_id);
    let flags: Vec<&str> = owned.iter().map(String::as_str).collect();

    // A known client is served.
    let (tls_run, tls_wall) = segment(&ct, &server.1, &d.join("tls"), &flags);
    common::ok(&tls_run);

    // Neither side speaks plain TCP unless told: a client without TLS flags or --insecure is
    // a usage error; a plaintext client against the TLS server is refused.
    let (none, _) = segment(&ct, &server.1, &d.join("none"), &[]);
    assert_eq!(
        none.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    let (plain, _) = segment(&ct, &server.1, &d.join("plain"), &["--insecure"]);
    let code = plain.status.code();
    assert!(
        matches!(code, Some(69 | 76)),
        "plaintext client: {code:?} {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(!d.join("plain/part.nii.gz").exists());

    // A client whose certificate another CA signed is refused (76: the parties' credentials
    // do not match).
    let owned = client_flags(&rogue);
    let rogue_flags: Vec<&str> = owned.iter().map(String::as_str).collect();
    let (refused, _) = segment(&ct, &server.1, &d.join("rogue"), &rogue_flags);
    assert_eq!(
        refused.status.code(),
        Some(76),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!d.join("rogue/part.nii.gz").exists());

    // A server without TLS flags or --insecure does not start.
    let no_transport = bunet(&["serve", "--weights", s(&weights), "--listen", "127.0.0.1:0"]);
    assert_eq!(no_transport.status.code(), Some(2));

    let log = server.kill_and_read_log();
    assert!(log.contains("mutual TLS"), "{log}");
    assert!(log.contains("with CN=hospital-a at 127.0.0.1"), "{log}");
    assert!(log.matches("dropped: TLS handshake").count() >= 2, "{log}");

    // Bit-exact with a plain-TCP session of the same slices, and the overhead of TLS.
    let plain_server = Server::start(&weights, "100", &[]);
    let (plain_run, plain_wall) =
        segment(&ct, &plain_server.1, &d.join("plain-ok"), &["--insecure"]);
    common::ok(&plain_run);
    assert_eq!(mask(&d.join("tls")), mask(&d.join("plain-ok")));
    eprintln!(
        "two 32x32 slices, tiny model: TLS {:.2} s, plain TCP {:.2} s (client wall, process \
         start included); protocol bytes {} vs {}",
        tls_wall.as_secs_f64(),
        plain_wall.as_secs_f64(),
        report_bytes(&d.join("tls")),
        report_bytes(&d.join("plain-ok"))
    );
}
