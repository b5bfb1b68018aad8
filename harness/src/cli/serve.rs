//! `bunet serve`: the model provider. Loads the weights, listens on a TCP address and serves
//! every client in its own thread; a client's failure ends only that client's session.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use anyhow::{Context, Result};
use bunet_harness::session;
use bunet_unet::secure::Phase;

use super::common::{self, SessionArgs, WeightsArgs};

/// Options of `bunet serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. The address is printed on stdout as
    /// `listening on HOST:PORT` once the server accepts clients.
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "HOST:PORT")]
    listen: String,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    weights: WeightsArgs,
    /// Stop after this many client sessions (default: serve until killed).
    #[arg(long, value_name = "N")]
    max_clients: Option<u64>,
    /// Sessions served at the same time; further clients wait in the listen backlog until one
    /// ends (each session holds its own prepared filters, so this bounds the server's memory).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    max_sessions: u64,
    /// Write each session's server-side report as JSON to DIR/session-N.json.
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
}

/// Runs `bunet serve`.
pub fn run(args: &Args) -> Result<()> {
    let model = args.weights.load()?;
    let config = args.session.config();
    let qm = common::quantise(&model, config.preset)?;
    if let Some(dir) = &args.report_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener = TcpListener::bind(&args.listen).map_err(|source| session::Error::Net {
        what: "listening on",
        addr: args.listen.clone(),
        source,
    })?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    println!("listening on {addr}");
    std::io::stdout().flush().context("writing to stdout")?;
    eprintln!(
        "bunet serve: {} ({}, {} backend, weights {}); one thread per client",
        qm.plan().arch(),
        config.preset.name(),
        config.nonlinear.name(),
        args.weights.label()
    );
    let mut sessions = Vec::new();
    let mut n = 0u64;
    let slots = Arc::new(Slots::new(args.max_sessions));
    loop {
        if args.max_clients.is_some_and(|max| n >= max) {
            break;
        }
        let slot = slots.acquire();
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                eprintln!("bunet serve: accepting a connection failed: {e}");
                continue;
            }
        };
        n += 1;
        let (qm, report_dir, id) = (qm.clone(), args.report_dir.clone(), n);
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
        eprintln!("bunet serve: session {id} with {peer} started");
        sessions.push(thread::spawn(move || {
            let _slot = slot;
            match session::serve_connection(stream, &qm, config) {
                Ok(report) => {
                    let t = report.total();
                    eprintln!(
                        "bunet serve: session {id} with {peer} done: {} slices, {:.1} s, {} sent, {} received",
                        report
                            .get("argmax", Phase::Online)
                            .map_or(0, |b| b.calls),
                        t.wall.as_secs_f64(),
                        bunet_harness::report::bytes(t.bytes_sent),
                        bunet_harness::report::bytes(t.bytes_received)
                    );
                    if let Some(dir) = report_dir {
                        let path = dir.join(format!("session-{id}.json"));
                        if let Err(e) = std::fs::write(&path, report.to_json()) {
                            eprintln!("bunet serve: writing {}: {e}", path.display());
                        }
                    }
                }
                Err(e) => eprintln!("bunet serve: session {id} with {peer} failed: {e:#}"),
            }
        }));
        sessions.retain(|h| !h.is_finished());
        if args.max_clients.is_some_and(|max| n >= max) {
            break;
        }
    }
    for h in sessions {
        if h.join().is_err() {
            eprintln!("bunet serve: a session thread panicked");
        }
    }
    Ok(())
}

/// Running sessions against a maximum: [`Slots::acquire`] waits for a free slot, and the slot is
/// given back when its [`Slot`] is dropped (also when the session thread panics).
struct Slots {
    max: u64,
    running: Mutex<u64>,
    freed: Condvar,
}

impl Slots {
    fn new(max: u64) -> Self {
        Self {
            max,
            running: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    fn acquire(self: &Arc<Self>) -> Slot {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= self.max {
            running = self
                .freed
                .wait(running)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *running += 1;
        Slot(Arc::clone(self))
    }
}

/// One running session's slot.
struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *running -= 1;
        self.0.freed.notify_one();
    }
}
