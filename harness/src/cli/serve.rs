//! `bunet serve`: the model provider. Loads the weights, listens on a TCP address and serves
//! every client in its own thread; a client's failure ends only that client's session.
//!
//! Transport: mutual TLS (`--tls-cert`, `--tls-key`, `--client-ca`): every client presents a
//! certificate signed by the client CA, and its subject names it in the log and in the
//! per-client quota (`--sessions-per-client`). Plain TCP only with `--insecure`.
//!
//! Time limits ([`session::Limits`]): a connection must complete its hello (and TLS handshake)
//! within `--handshake-timeout`, each frame once begun must arrive at `--min-rate` after
//! `--frame-grace`, the peer may fall silent between frames for `--idle-timeout`, and a session
//! ends after `--session-limit`; at most `--max-pending` connections may be in their handshake
//! at once. So neither an idle socket nor a client that trickles bytes holds a thread or a slot
//! for long.
//!
//! Admission: a connection takes nothing until its hello has been checked. A session is then
//! admitted only if a slot (`--max-sessions`) is free and its memory estimate (from the plan,
//! [`bunet_unet::secure::budget`]) fits what the running sessions leave of `--memory`;
//! otherwise the client is told at once that the server is busy (retry later) or, if the
//! session could never fit, refused. Several replicas behind one address (a Kubernetes
//! Service, a load balancer) thus state their capacity instead of queueing clients in the
//! listen backlog. A probe (`bunet probe`) gets the server's load.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bunet_harness::escape_controls;
use bunet_harness::session::{self, Limits, Served};
use bunet_unet::QuantModel;
use bunet_unet::secure::budget::{self, Admission, Estimate, Gate};
use bunet_unet::secure::handshake::{BusyReason, Status};
use bunet_unet::secure::{Phase, SecureError, SessionConfig};

use super::common::{self, SessionArgs, WeightsArgs};
use super::transport::parse_secs;

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
    /// This server's certificate chain (PEM) for mutual TLS.
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "client_ca"])]
    tls_cert: Option<PathBuf>,
    /// This server's private key (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["tls_cert", "client_ca"])]
    tls_key: Option<PathBuf>,
    /// The CA certificate (PEM) whose client certificates are accepted; every client must
    /// present one.
    #[arg(long, value_name = "PEM", requires_all = ["tls_cert", "tls_key"])]
    client_ca: Option<PathBuf>,
    /// Serve plain TCP: no client authentication (anyone who reaches the port may query the
    /// model) and no transport encryption. Only inside a network you trust.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "client_ca"])]
    insecure: bool,
    /// Sessions one client (certificate subject) may run at once; more are told busy.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    sessions_per_client: u64,
    /// Seconds a connection has for its hello (and TLS handshake) before it is dropped.
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = parse_secs)]
    handshake_timeout: f64,
    /// Seconds the peer may stay silent between frames (a client computes between messages).
    #[arg(long, value_name = "S", default_value_t = 600.0, value_parser = parse_secs)]
    idle_timeout: f64,
    /// Seconds a whole session may last.
    #[arg(long, value_name = "S", default_value_t = 28_800.0, value_parser = parse_secs)]
    session_limit: f64,
    /// Slowest pace accepted inside a frame, per second (e.g. 32K; K, M, G powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_size)]
    min_rate: u64,
    /// Seconds a frame gets on top of its length at --min-rate.
    #[arg(long, value_name = "S", default_value_t = 30.0, value_parser = parse_secs)]
    frame_grace: f64,
    /// Largest in-plane extent (rows, columns) of a request: what a real scan needs (CT slices
    /// are 512×512, rarely 1024×1024). Larger requests are refused at the handshake, before
    /// anything is prepared; the depth (a volume UNet's slab) is bounded by --memory.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_extent: u64,
    /// Connections that may be in their handshake at once; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    max_pending: u64,
}

impl Args {
    fn limits(&self) -> Limits {
        Limits {
            handshake: Duration::from_secs_f64(self.handshake_timeout),
            session: Duration::from_secs_f64(self.session_limit),
            idle: Duration::from_secs_f64(self.idle_timeout),
            min_rate: self.min_rate,
            frame_grace: Duration::from_secs_f64(self.frame_grace),
        }
    }

    fn tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>> {
        match (&self.tls_cert, &self.tls_key, &self.client_ca) {
            (Some(cert), Some(key), Some(ca)) => {
                Ok(Some(bunet_harness::tls::server_config(cert, key, ca)?))
            }
            _ if self.insecure => Ok(None),
            _ => bail!(super::transport::NoTransport),
        }
    }
}

/// Runs `bunet serve`.
pub fn run(args: &Args) -> Result<()> {
    let tls = args.tls()?;
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
    let gate = Arc::new(Budget {
        max_extent: usize::try_from(args.max_extent).unwrap_or(usize::MAX),
        ..Budget::new(
            args.max_sessions,
            budget_bytes,
            default_session,
            args.retry_after,
        )
    });
    let listener = TcpListener::bind(&args.listen).map_err(|source| session::Error::Net {
        what: "listening on",
        addr: args.listen.clone(),
        source,
    })?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    eprintln!(
        "bunet serve: {} ({}, {} backend, weights {}); one thread per client; {}",
        qm.plan().arch(),
        config.preset.name(),
        config.nonlinear.name(),
        args.weights.label(),
        if tls.is_some() {
            "mutual TLS"
        } else {
            "plain TCP (--insecure): no client authentication"
        }
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
    accept_loop(&listener, &qm, config, &gate, args, tls)
}

/// Accepts connections until `--max-clients` admitted sessions have ended (or forever), each
/// in its own thread; the loop polls so that it notices the last session's end.
fn accept_loop(
    listener: &TcpListener,
    qm: &Arc<QuantModel>,
    config: SessionConfig,
    gate: &Arc<Budget>,
    args: &Args,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<()> {
    let limits = args.limits();
    let pending = Arc::new(AtomicU64::new(0));
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
        // A connection in its handshake holds a thread: beyond --max-pending of them, new ones
        // are closed at once (they may retry), so a flood of idle sockets costs bounded memory.
        if pending.fetch_add(1, Ordering::SeqCst) >= args.max_pending {
            pending.fetch_sub(1, Ordering::SeqCst);
            eprintln!(
                "bunet serve: connection {n} closed: {} handshakes pending",
                args.max_pending
            );
            drop(stream);
            continue;
        }
        let (qm, gate, pending) = (Arc::clone(qm), Arc::clone(gate), Arc::clone(&pending));
        let report_dir = args.report_dir.clone();
        let tls = tls.clone();
        let per_client = args.sessions_per_client;
        threads.push(thread::spawn(move || {
            let conn = Connection {
                id: n,
                limits,
                tls: tls.as_ref(),
                per_client,
                pending: &pending,
            };
            conn.run(stream, &qm, config, &gate, report_dir);
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

/// One accepted connection's settings.
struct Connection<'a> {
    id: u64,
    limits: Limits,
    tls: Option<&'a Arc<rustls::ServerConfig>>,
    per_client: u64,
    /// Connections in their handshake (this one until its transport is set up and its hello
    /// answered or refused).
    pending: &'a AtomicU64,
}

/// Decrements the pending count once (on the first of drop or [`Pending::done`]).
struct Pending<'a>(Option<&'a AtomicU64>);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Connection<'_> {
    /// Serves the connection: a probe, a refused or busy session (logged), or a session.
    fn run(
        &self,
        stream: TcpStream,
        qm: &QuantModel,
        config: SessionConfig,
        gate: &Budget,
        report_dir: Option<PathBuf>,
    ) {
        let id = self.id;
        let pending = Pending(Some(self.pending));
        let addr = stream
            .peer_addr()
            .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
        let incoming = match session::open(stream, &self.limits, self.tls) {
            Ok(i) => i,
            Err(e) => {
                eprintln!(
                    "bunet serve: connection {id} from {addr} dropped: {}",
                    escape_controls(&format!("{e:#}"))
                );
                return;
            }
        };
        let who = incoming.identity.clone();
        let peer = match &who {
            Some(who) => format!("{who} at {addr}"),
            None => addr,
        };
        let client_gate = ClientGate {
            budget: gate,
            client: who.unwrap_or_default(),
            quota: self.per_client,
            pending: Mutex::new(Some(pending)),
        };
        let outcome = session::serve_gated(incoming, qm, config, &client_gate);
        drop(client_gate);
        log_outcome(id, &peer, outcome, gate, report_dir);
    }
}

/// Logs what a connection came to.
fn log_outcome(
    id: u64,
    peer: &str,
    outcome: Result<Served, session::Error>,
    gate: &Budget,
    report_dir: Option<PathBuf>,
) {
    match outcome {
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
            let e = escape_controls(&e.to_string());
            eprintln!("bunet serve: connection {id} from {peer} refused: {e}");
        }
        Err(e) => {
            let e = escape_controls(&format!("{e:#}"));
            eprintln!("bunet serve: session {id} with {peer} failed: {e}");
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
    /// Largest in-plane extent admitted.
    max_extent: usize,
    state: Mutex<Held>,
    /// Clients served, successfully or not (for `--max-clients`).
    served: AtomicU64,
}

/// What the running sessions hold.
#[derive(Debug, Default)]
struct Held {
    running: u64,
    reserved: u64,
    /// Sessions running per client identity (under TLS).
    per_client: HashMap<String, u64>,
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
            max_extent: 1024,
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
    client: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut held = self.gate.held();
        held.running -= 1;
        held.reserved -= self.bytes;
        if let Some(n) = held.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                held.per_client.remove(&self.client);
            }
        }
    }
}

/// The gate one connection sees: the server's [`Budget`] and the client's quota of sessions
/// at once. Answering the hello (admitted or not) ends the connection's pending handshake.
struct ClientGate<'a> {
    budget: &'a Budget,
    /// The client's identity (empty without TLS: all plain-TCP clients share one quota's key,
    /// so the quota applies only under TLS).
    client: String,
    quota: u64,
    pending: Mutex<Option<Pending<'a>>>,
}

impl<'a> Gate for ClientGate<'a> {
    type Ticket = Reservation<'a>;

    fn admit(&self, extents: [usize; 3], estimate: &Estimate) -> Admission<Reservation<'a>> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.budget
            .admit(extents, estimate, &self.client, self.quota)
    }

    fn status(&self) -> Status {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.budget.status()
    }
}

impl Budget {
    /// Admits a session of `client` (empty: no quota) if a slot, the memory and the client's
    /// quota allow, all under one lock.
    fn admit(
        &self,
        extents: [usize; 3],
        estimate: &Estimate,
        client: &str,
        quota: u64,
    ) -> Admission<Reservation<'_>> {
        let bytes = estimate.total();
        if extents[1] > self.max_extent || extents[2] > self.max_extent {
            return Admission::Refuse(format!(
                "extents {extents:?} exceed this server's in-plane maximum of {0}×{0}",
                self.max_extent
            ));
        }
        if bytes > self.budget_bytes {
            return Admission::Refuse(format!(
                "a session of extents {extents:?} needs an estimated {}, more than this \
                 server's whole memory budget of {}",
                gib(bytes),
                gib(self.budget_bytes)
            ));
        }
        let mut held = self.held();
        let of_client = held.per_client.get(client).copied().unwrap_or(0);
        // A client over its quota is told "slots": it holds them.
        let reason =
            if held.running >= self.max_sessions || (!client.is_empty() && of_client >= quota) {
                BusyReason::Slots
            } else if held.reserved + bytes > self.budget_bytes {
                BusyReason::Memory
            } else {
                held.running += 1;
                held.reserved += bytes;
                if !client.is_empty() {
                    *held.per_client.entry(client.to_string()).or_default() += 1;
                }
                return Admission::Admit(Reservation {
                    gate: self,
                    bytes,
                    client: client.to_string(),
                });
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
    use super::*;

    #[test]
    fn a_client_over_its_quota_is_busy_while_others_are_admitted_and_wide_requests_refused() {
        let gate = Budget::new(4, 1 << 30, 1 << 20, 30);
        let est = Estimate {
            keys: 1 << 20,
            ..Estimate::default()
        };
        let first = gate.admit([1, 32, 32], &est, "CN=a", 1);
        assert!(matches!(first, Admission::Admit(_)));
        assert!(matches!(
            gate.admit([1, 32, 32], &est, "CN=a", 1),
            Admission::Busy {
                reason: BusyReason::Slots,
                ..
            }
        ));
        let other = gate.admit([1, 32, 32], &est, "CN=b", 1);
        assert!(matches!(other, Admission::Admit(_)));
        assert_eq!(gate.status().running, 2);
        drop(first);
        assert!(matches!(
            gate.admit([1, 32, 32], &est, "CN=a", 1),
            Admission::Admit(_)
        ));
        // Plain-TCP clients (no identity) share no quota.
        let plain: Vec<_> = (0..2)
            .map(|_| gate.admit([1, 32, 32], &est, "", 1))
            .collect();
        assert!(plain.iter().all(|a| matches!(a, Admission::Admit(_))));
        assert!(matches!(
            gate.admit([1, 2048, 64], &est, "", 1),
            Admission::Refuse(_)
        ));
    }

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
