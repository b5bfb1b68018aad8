//! The transport options of the commands that reach a `bunet serve` (`segment`, `probe`):
//! mutual TLS, or plain TCP only when asked for by name, and the connect timeout.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use bunet_harness::{session, tls};

/// How to reach the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientTransport {
    /// The CA certificate (PEM) that signed the server's certificate (mutual TLS).
    #[arg(long, value_name = "PEM", requires_all = ["cert", "key"])]
    ca: Option<PathBuf>,
    /// This client's certificate chain (PEM), signed by the server's client CA.
    #[arg(long, value_name = "PEM", requires_all = ["ca", "key"])]
    cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["ca", "cert"])]
    key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host of the address).
    #[arg(long, value_name = "NAME", requires = "ca")]
    tls_name: Option<String>,
    /// Speak plain TCP: no authentication of either side and no transport encryption, so a
    /// man in the middle can hand back any mask. Only inside a network you trust.
    #[arg(long, conflicts_with_all = ["ca", "cert", "key", "tls_name"])]
    insecure: bool,
    /// Seconds to wait for the connection (and the TLS handshake); for `probe` also for the
    /// answer.
    #[arg(long, alias = "timeout", value_name = "S", default_value_t = 30.0, value_parser = parse_secs)]
    connect_timeout: f64,
    /// Seconds the server may stay silent between messages (it computes between them: a
    /// 512×512 layer takes minutes).
    #[arg(long, value_name = "S", default_value_t = 600.0, value_parser = parse_secs)]
    idle_timeout: f64,
}

impl ClientTransport {
    /// The connection settings.
    ///
    /// # Errors
    /// If neither TLS nor `--insecure` was chosen, or the TLS files do not load.
    pub fn connect(&self) -> Result<session::Connect> {
        let tls = match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Some(tls::client_config(ca, cert, key)?),
            _ if self.insecure => None,
            _ => bail!(NoTransport),
        };
        Ok(session::Connect {
            timeout: Duration::from_secs_f64(self.connect_timeout),
            tls,
            server_name: self.tls_name.clone(),
            idle: Duration::from_secs_f64(self.idle_timeout),
        })
    }
}

/// Neither TLS nor `--insecure` was chosen (a usage error).
#[derive(Debug, thiserror::Error)]
#[error(
    "choose a transport: --ca, --cert and --key for mutual TLS, or --insecure for plain TCP \
     inside a network you trust"
)]
pub struct NoTransport;

/// Parses a positive number of seconds (fractions allowed), at most a year.
pub fn parse_secs(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(v > 0.0 && v <= 365.0 * 86_400.0) {
        return Err(format!("{text:?} is out of range (0 < S <= one year)"));
    }
    Ok(v)
}
