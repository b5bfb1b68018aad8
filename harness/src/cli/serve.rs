//! `bunet serve`: the model provider. Loads the weights, listens on a TCP address and serves
//! every client in its own thread; a client's failure ends only that client's session.
//!
//! Admission: a connection takes nothing until its hello has been checked. A session is then
//! admitted only if a slot (`--max-sessions`) is free and its memory estimate (from the plan,
//! [`bunet_unet::secure::budget`]) fits what the running sessions leave of `--memory`;
//! otherwise the client is told at once that the server is busy (retry later) or, if the
//! session could never fit, refused. Several replicas behind one address (a Kubernetes
//! Service, a load balancer) thus state their capacity instead of queueing clients in the
//! listen backlog. A probe (`bunet probe`) gets the server's load.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bunet_harness::session::{self, Served};
use bunet_unet::QuantModel;
use bunet_unet::secure::budget::{self, Admission, Estimate, Gate};
use bunet_unet::secure::handshake::{BusyReason, Status};
use bunet_unet::secure::{Phase, SecureError, SessionConfig};

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
    /// Stop after this many clients have been served, successfully or not (probes and clients
    /// told the server is busy do not count; default: serve until killed).
    #[arg(long, value_name = "N")]
    max_clients: Option<u64>,
    /// Sessions served at the same time; a client that finds every slot taken is told at once
    /// that the server is busy (exit code 75 on its side) rather than queued.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1 << 16))]
    max_sessions: u64,
    /// Memory budget of the sessions, e.g. 8G, 512M or bytes (K, M, G, T are powers of 1024).
    /// A session is admitted only if its estimate fits what the running ones leave. Default:
    /// three quarters of the machine's available memory (MemAvailable) at start.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    /// The wait, in seconds, that busy answers suggest to clients.
    #[arg(long, value_name = "S", default_value_t = 30)]
    retry_after: u32,
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
    let budget_bytes = match args.memory {
        Some(m) => m,
        None => {
            default_memory().context("reading MemAvailable from /proc/meminfo (pass --memory)")?
        }
    };
    let extents = budget::default_extents(qm.plan().arch());
    let default_session = budget::server_session(&qm, &config, extents)
        .context("estimating the memory of a default session")?
        .total();
    let gate = Arc::new(Budget::new(
        args.max_sessions,
        budget_bytes,
        default_session,
        args.retry_after,
    ));
    let listener = TcpListener::bind(&args.listen).map_err(|source| session::Error::Net {
        what: "listening on",
        addr: args.listen.clone(),
        source,
    })?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    eprintln!(
        "bunet serve: {} ({}, {} backend, weights {}); one thread per client",
        qm.plan().arch(),
        config.preset.name(),
        config.nonlinear.name(),
        args.weights.label()
    );
    let fits = budget_bytes / default_session.max(1);
    eprintln!(
        "bunet serve: memory budget {}, a default session ({}×{} slice) needs an estimated {}: \
         takes {} such session(s) at once (--max-sessions {})",
        gib(budget_bytes),
        extents[1],
        extents[2],
        gib(default_session),
        fits.min(args.max_sessions),
        args.max_sessions
    );
    if fits == 0 {
        eprintln!(
            "bunet serve: warning: the budget is below one default session; only smaller \
             requests will be admitted"
        );
    }
    println!("listening on {addr}");
    std::io::stdout().flush().context("writing to stdout")?;
    accept_loop(&listener, &qm, config, &gate, args)
}

/// Accepts connections until `--max-clients` admitted sessions have ended (or forever), each
/// in its own thread; the loop polls so that it notices the last session's end.
fn accept_loop(
    listener: &TcpListener,
    qm: &Arc<QuantModel>,
    config: SessionConfig,
    gate: &Arc<Budget>,
    args: &Args,
) -> Result<()> {
    listener
        .set_nonblocking(true)
        .context("setting the listener non-blocking")?;
    let mut threads: Vec<thread::JoinHandle<()>> = Vec::new();
    let mut n = 0u64;
    loop {
        if args
            .max_clients
            .is_some_and(|max| gate.served.load(Ordering::SeqCst) >= max)
        {
            break;
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                eprintln!("bunet serve: accepting a connection failed: {e}");
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if let Err(e) = stream.set_nonblocking(false) {
            eprintln!("bunet serve: configuring a connection failed: {e}");
            continue;
        }
        n += 1;
        let (qm, gate) = (Arc::clone(qm), Arc::clone(gate));
        let report_dir = args.report_dir.clone();
        threads.push(thread::spawn(move || {
            connection(stream, n, &qm, config, &gate, report_dir);
        }));
        threads.retain(|h| !h.is_finished());
    }
    for h in threads {
        if h.join().is_err() {
            eprintln!("bunet serve: a session thread panicked");
        }
    }
    Ok(())
}

/// Serves connection `id`: a probe, a refused or busy session (logged), or a session.
fn connection(
    stream: TcpStream,
    id: u64,
    qm: &QuantModel,
    config: SessionConfig,
    gate: &Budget,
    report_dir: Option<PathBuf>,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
    match session::serve_gated(stream, qm, config, &gate) {
        Ok(Served::Probed) => return,
        Err(session::Error::Secure(e @ SecureError::Busy { .. })) => {
            // Not served: the client comes back later.
            eprintln!("bunet serve: connection {id} from {peer} not admitted: {e}");
            return;
        }
        Ok(Served::Session(report)) => {
            let t = report.total();
            eprintln!(
                "bunet serve: session {id} with {peer} done: {} slices, {:.1} s, {} sent, {} received",
                report.get("argmax", Phase::Online).map_or(0, |b| b.calls),
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
        Err(session::Error::Secure(e @ SecureError::Refused(_))) => {
            eprintln!("bunet serve: connection {id} from {peer} refused: {e}");
        }
        Err(e) => {
            eprintln!("bunet serve: session {id} with {peer} failed: {e:#}");
        }
    }
    gate.served.fetch_add(1, Ordering::SeqCst);
}

/// The server's admission control: slots and a memory budget, reserved by admitted sessions'
/// estimates and given back when their [`Reservation`] drops.
#[derive(Debug)]
pub struct Budget {
    max_sessions: u64,
    budget_bytes: u64,
    default_session: u64,
    retry_after_s: u32,
    state: Mutex<Held>,
    /// Clients served, successfully or not (for `--max-clients`).
    served: AtomicU64,
}

/// What the running sessions hold.
#[derive(Debug, Default)]
struct Held {
    running: u64,
    reserved: u64,
}

impl Budget {
    /// A gate of `max_sessions` slots and `budget_bytes` bytes; `default_session` is the
    /// estimate of the default request (reported to probes).
    pub fn new(
        max_sessions: u64,
        budget_bytes: u64,
        default_session: u64,
        retry_after_s: u32,
    ) -> Self {
        Self {
            max_sessions,
            budget_bytes,
            default_session,
            retry_after_s,
            state: Mutex::new(Held::default()),
            served: AtomicU64::new(0),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An admitted session's slot and memory, given back on drop (also if its thread panics).
#[derive(Debug)]
pub struct Reservation<'a> {
    gate: &'a Budget,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut held = self.gate.held();
        held.running -= 1;
        held.reserved -= self.bytes;
    }
}

impl<'a> Gate for &'a Budget {
    type Ticket = Reservation<'a>;

    fn admit(&self, extents: [usize; 3], estimate: &Estimate) -> Admission<Reservation<'a>> {
        let bytes = estimate.total();
        if bytes > self.budget_bytes {
            return Admission::Refuse(format!(
                "a session of extents {extents:?} needs an estimated {}, more than this \
                 server's whole memory budget of {}",
                gib(bytes),
                gib(self.budget_bytes)
            ));
        }
        let mut held = self.held();
        let reason = if held.running >= self.max_sessions {
            BusyReason::Slots
        } else if held.reserved + bytes > self.budget_bytes {
            BusyReason::Memory
        } else {
            held.running += 1;
            held.reserved += bytes;
            return Admission::Admit(Reservation { gate: self, bytes });
        };
        Admission::Busy {
            retry_after_s: self.retry_after_s,
            reason,
        }
    }

    fn status(&self) -> Status {
        let held = self.held();
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Status {
            running: clamp(held.running),
            max_sessions: clamp(self.max_sessions),
            free_bytes: self.budget_bytes - held.reserved,
            budget_bytes: self.budget_bytes,
            default_session_bytes: self.default_session,
        }
    }
}

/// Three quarters of MemAvailable: the rest is left to the process's model, the system and
/// the estimate's misses.
fn default_memory() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    match kib {
        Some(k) => Ok(k * 1024 / 4 * 3),
        None => bail!("no MemAvailable line"),
    }
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024, an optional `i`/`B`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let shift = match unit
        .trim()
        .trim_end_matches(['B', 'b'])
        .trim_end_matches('i')
    {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(format!("unknown unit in {text:?} (use K, M, G or T)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 8G"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// `bytes` in GiB (or MiB below one GiB), for the log.
fn gib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("8X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("0").is_err());
    }
}
