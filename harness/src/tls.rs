//! Mutual TLS between `bunet segment` and `bunet serve` (rustls, TLS 1.3 only, ring as the
//! crypto provider): the server proves its name with a certificate the client's CA signed, the
//! client proves its identity with a certificate the server's client CA signed, and the
//! server names each client by its certificate's subject in its log and its per-client quota.
//!
//! The secure protocol's secrecy does not rest on the transport, but its guarantees hold only
//! between the intended parties: without authentication a man in the middle could hand the
//! hospital any mask and anyone who reaches the port could query the model.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// Why setting up or running TLS failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A certificate or key file could not be read or holds no usable PEM item.
    #[error("reading {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match, an unusable CA, ...).
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The server name is not a DNS name or an IP address.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// The TLS handshake failed: the peer's certificate was refused, the peer refused ours, or
    /// the peer does not speak TLS.
    #[error("TLS handshake")]
    Handshake(#[source] rustls::Error),
    /// The connection failed or timed out during the TLS handshake.
    #[error("TLS handshake i/o")]
    Io(#[source] io::Error),
}

/// ring's provider: X25519 and the P-curves for the key exchange, no post-quantum hybrid
/// (rustls deprecates it for that, but its hybrid needs aws-lc-rs, a long C and cmake build).
/// The scan's secrecy rests on the secure protocol, not on TLS; TLS here authenticates the
/// parties and keeps the protocol's public parts from eavesdroppers.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &Path, reason: impl ToString) -> Error {
    Error::Pem {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificates of a PEM file (a chain: the end entity first).
///
/// # Errors
/// [`Error::Pem`] if the file cannot be read or holds no certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// [`Error::Pem`] if the file cannot be read or holds no key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn roots(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The server's TLS configuration: its certificate chain and key, and the CA whose client
/// certificates it accepts (every client must present one).
///
/// # Errors
/// [`Error::Pem`] or [`Error::Config`].
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<Arc<ServerConfig>, Error> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(client_ca)?),
        provider(),
    )
    .build()
    .map_err(|e| Error::Config(e.to_string()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The client's TLS configuration: the CA that signed the server's certificate, and the
/// client's own certificate chain and key.
///
/// # Errors
/// [`Error::Pem`] or [`Error::Config`].
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>, Error> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// A TLS stream over TCP, as the channel carries it.
pub type ServerStream = rustls::StreamOwned<ServerConnection, TcpStream>;
/// The client's end.
pub type ClientStream = rustls::StreamOwned<ClientConnection, TcpStream>;

/// Sets both socket timeouts to what is left until `deadline`.
fn bound(sock: &TcpStream, deadline: Instant) -> Result<(), Error> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::Io(io::Error::from(io::ErrorKind::TimedOut)))?;
    sock.set_read_timeout(Some(left)).map_err(Error::Io)?;
    sock.set_write_timeout(Some(left)).map_err(Error::Io)
}

/// Runs a handshake to its end (or `deadline`).
fn complete<C, S>(conn: &mut C, sock: &mut TcpStream, deadline: Instant) -> Result<(), Error>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    while conn.is_handshaking() {
        bound(sock, deadline)?;
        if let Err(e) = conn.complete_io(sock) {
            // rustls reports a refused certificate or a non-TLS peer as an i/o error that
            // carries its own error: keep it typed.
            if !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                return Err(Error::Io(e));
            }
            return Err(
                match e
                    .into_inner()
                    .map(|inner| inner.downcast::<rustls::Error>())
                {
                    Some(Ok(tls)) => Error::Handshake(*tls),
                    Some(Err(other)) => Error::Io(io::Error::other(other)),
                    None => Error::Io(io::Error::from(io::ErrorKind::InvalidData)),
                },
            );
        }
    }
    // Anything queued by the last step (the client's Finished) goes out before data.
    while conn.wants_write() {
        bound(sock, deadline)?;
        conn.write_tls(sock).map_err(Error::Io)?;
    }
    Ok(())
}

/// The server's side of the TLS handshake on `sock`, finished by `deadline`: returns the
/// stream and the client's identity ([`identity`] of its certificate).
///
/// # Errors
/// [`Error::Handshake`] if the client does not speak TLS or its certificate is refused,
/// [`Error::Io`] on a lost connection or the deadline.
pub fn accept(
    config: &Arc<ServerConfig>,
    mut sock: TcpStream,
    deadline: Instant,
) -> Result<(ServerStream, String), Error> {
    let mut conn = ServerConnection::new(Arc::clone(config)).map_err(Error::Handshake)?;
    complete(&mut conn, &mut sock, deadline)?;
    let who = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map_or_else(|| "no certificate".to_string(), |c| identity(c));
    Ok((rustls::StreamOwned::new(conn, sock), who))
}

/// The client's side of the TLS handshake with server `name` on `sock`, by `deadline`.
///
/// # Errors
/// [`Error::ServerName`], [`Error::Handshake`] (the server's certificate is refused),
/// [`Error::Io`].
pub fn connect(
    config: &Arc<ClientConfig>,
    name: &str,
    mut sock: TcpStream,
    deadline: Instant,
) -> Result<ClientStream, Error> {
    let server_name =
        ServerName::try_from(name.to_string()).map_err(|_| Error::ServerName(name.into()))?;
    let mut conn =
        ClientConnection::new(Arc::clone(config), server_name).map_err(Error::Handshake)?;
    complete(&mut conn, &mut sock, deadline)?;
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// A client's identity for the log and the per-client quota: its certificate's subject
/// common name (control characters escaped), or, without one, the start of the certificate's
/// SHA-256 digest.
pub fn identity(cert: &CertificateDer<'_>) -> String {
    match subject_common_name(cert.as_ref()) {
        Some(cn) => format!("CN={}", crate::escape_controls(&cn)),
        None => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(cert.as_ref());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("certificate sha256:{hex}")
        }
    }
}

/// One DER item: its tag, its contents, and the bytes after it (`None` if malformed).
fn der_item(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subject's common name of a DER certificate (the verifier has checked the certificate;
/// this walk still rejects anything malformed by returning `None`).
fn subject_common_name(cert: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];
    let (SEQUENCE, cert, _) = der_item(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = der_item(cert)? else {
        return None;
    };
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    if tbs.first() == Some(&0xa0) {
        tbs = der_item(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = der_item(tbs)?.2;
    }
    let (SEQUENCE, mut subject, _) = der_item(tbs)? else {
        return None;
    };
    while !subject.is_empty() {
        let (_, set, rest) = der_item(subject)?;
        subject = rest;
        let (_, attribute, _) = der_item(set)?;
        let (_, oid, value) = der_item(attribute)?;
        if oid == CN_OID {
            let (_, text, _) = der_item(value)?;
            return Some(String::from_utf8_lossy(text).into_owned());
        }
    }
    None
}
