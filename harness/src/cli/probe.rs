//! `bunet probe`: asks a `bunet serve` for its load with a handshake-level probe (no session,
//! no keys): the readiness check of deployments (e.g. a Kubernetes readiness probe).

use anyhow::{Result, bail};
use bunet_harness::session;

use super::transport::ClientTransport;

/// Options of `bunet probe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server to probe.
    #[arg(value_name = "HOST:PORT")]
    server: String,
    #[command(flatten)]
    transport: ClientTransport,
    /// Fail (exit 75) unless the server would admit one more session of the default request
    /// (a 512×512 slice) now: a readiness probe with this flag takes a full replica out of
    /// a Service's rotation until a session ends.
    #[arg(long)]
    require_free: bool,
}

/// Runs `bunet probe`: prints the server's load on stdout.
pub fn run(args: &Args) -> Result<()> {
    // The connect timeout bounds the connection and then the answer.
    let status = session::probe(&args.server, &args.transport.connect()?)?;
    let free = status.default_sessions_free();
    println!(
        "{}: {}/{} sessions running, {} MiB of {} MiB free, {} more default session(s) fit",
        args.server,
        status.running,
        status.max_sessions,
        status.free_bytes >> 20,
        status.budget_bytes >> 20,
        free
    );
    if args.require_free && free == 0 {
        bail!(Full);
    }
    Ok(())
}

/// The server answered but has no room for a default session.
#[derive(Debug, thiserror::Error)]
#[error("the server has no room for another session")]
pub struct Full;
