//! Secure sessions for the commands: the client segmenting slices of a volume with a server,
//! the server answering one connection, a local server thread for single-machine runs, and the
//! conversion of the driver's reports into the [`Breakdown`] rows.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bunet_crypto::channel::{Channel, ChannelConfig, DEFAULT_FRAME_GRACE, DEFAULT_MIN_RATE};
use bunet_crypto::prg::Prg;
use bunet_unet::secure::budget::Gate;
use bunet_unet::secure::handshake::{self, Status};
use bunet_unet::secure::{Accepted, Client, Report, SecureError, Server, SessionConfig};
use bunet_unet::{Architecture, Dims, Quant, QuantModel, Tensor};

use crate::breakdown::{BlockRow, Breakdown};
use crate::tls;
use crate::volume::{self, Prepared};

/// Why a secure run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting to or listening on the network failed.
    #[error("{what} {addr}")]
    Net {
        /// `connecting to` or `listening on`.
        what: &'static str,
        /// The address.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The secure protocol failed.
    #[error(transparent)]
    Secure(#[from] SecureError),
    /// The volume could not be cut into slice stacks.
    #[error(transparent)]
    Volume(#[from] volume::Error),
    /// A thread of the run panicked (a bug): the local server's, or one of the client
    /// sessions of [`run_client_jobs`].
    #[error("a session thread panicked")]
    ServerPanicked,
    /// TLS failed: a configuration, a refused certificate, a peer that does not speak TLS.
    #[error(transparent)]
    Tls(#[from] tls::Error),
}

/// The channel settings of the commands: the default frame bound and a 10-minute read timeout
/// (a 512×512 GC layer keeps a party busy for minutes between messages).
pub fn channel_config() -> ChannelConfig {
    ChannelConfig {
        read_timeout: Some(Duration::from_secs(600)),
        ..ChannelConfig::default()
    }
}

/// Default longest wait for a server to accept a connection (and finish the TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a client reaches a server.
#[derive(Debug, Clone)]
pub struct Connect {
    /// Longest wait for the TCP connection and then for the TLS handshake.
    pub timeout: Duration,
    /// Mutual TLS ([`tls::client_config`]); `None`: plain TCP (`--insecure`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name the server's certificate must carry; default: the host part of the address.
    pub server_name: Option<String>,
    /// Longest silence of the server between frames ([`ChannelConfig::read_timeout`]).
    pub idle: Duration,
}

impl Connect {
    /// Plain TCP with the default connect timeout: for the single-machine runs over loopback.
    pub fn insecure() -> Self {
        Self {
            timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
            server_name: None,
            idle: channel_config()
                .read_timeout
                .unwrap_or(Duration::from_secs(600)),
        }
    }
}

/// Connects to a server at `addr` over plain TCP ([`Connect::insecure`]).
///
/// # Errors
/// As [`connect_with`].
pub fn connect(addr: &str) -> Result<Channel, Error> {
    connect_with(addr, &Connect::insecure())
}

/// Connects to a server at `addr` (`host:port`) as `how` says: each resolved address is tried
/// for at most the timeout, then the TLS handshake (if any) runs by the same timeout.
///
/// # Errors
/// [`Error::Net`] if no address of `addr` accepts the connection in time, [`Error::Tls`] if
/// the TLS handshake fails.
pub fn connect_with(addr: &str, how: &Connect) -> Result<Channel, Error> {
    let net = |source| Error::Net {
        what: "connecting to",
        addr: addr.to_string(),
        source,
    };
    let mut last = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
    let mut stream = None;
    for target in addr.to_socket_addrs().map_err(net)? {
        match TcpStream::connect_timeout(&target, how.timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let stream = stream.ok_or_else(|| net(last))?;
    let config = ChannelConfig {
        read_timeout: Some(how.idle),
        ..channel_config()
    };
    let ch = match &how.tls {
        None => Channel::tcp(stream, config),
        Some(tls_config) => {
            let name = match &how.server_name {
                Some(n) => n.clone(),
                None => host_of(addr).to_string(),
            };
            let socket = stream.try_clone().map_err(net)?;
            let deadline = Instant::now() + how.timeout;
            let tls_stream = tls::connect(tls_config, &name, stream, deadline)?;
            Channel::over_stream(tls_stream, &socket, config)
        }
    };
    ch.map_err(|e| Error::Secure(e.into()))
}

/// The host part of `host:port` (`[v6]:port` too).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Time limits of a connection to `bunet serve` (a server that strangers can reach).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the accepted connection to the server's answer to the hello, the TLS handshake
    /// included: a connection that does not complete its hello in time is dropped.
    pub handshake: Duration,
    /// The whole session, from the accepted connection to the close.
    pub session: Duration,
    /// Longest silence of the peer between frames (it may be computing: a 512×512 GC layer
    /// keeps a party busy for minutes).
    pub idle: Duration,
    /// Slowest pace inside a frame, bytes per second ([`ChannelConfig::min_rate`]).
    pub min_rate: u64,
    /// Time a frame gets on top of its length at the minimum rate.
    pub frame_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            session: Duration::from_secs(8 * 3600),
            idle: Duration::from_secs(600),
            min_rate: DEFAULT_MIN_RATE,
            frame_grace: DEFAULT_FRAME_GRACE,
        }
    }
}

/// An accepted connection whose transport is set up (TLS handshake done, if any), with the
/// handshake and session deadlines running.
#[derive(Debug)]
pub struct Incoming {
    ch: Channel,
    /// The client's identity: its certificate's subject under TLS ([`tls::identity`]).
    pub identity: Option<String>,
}

/// Sets up the transport of an accepted connection under `limits`: the session and handshake
/// deadlines start now; under TLS the handshake runs by the handshake deadline and the
/// client's certificate names it.
///
/// # Errors
/// [`Error::Tls`] if the TLS handshake fails or runs out of time, [`Error::Secure`] if the
/// socket cannot be configured.
pub fn open(
    stream: TcpStream,
    limits: &Limits,
    tls_config: Option<&Arc<rustls::ServerConfig>>,
) -> Result<Incoming, Error> {
    let started = Instant::now();
    let config = ChannelConfig {
        read_timeout: Some(limits.idle),
        min_rate: limits.min_rate,
        frame_grace: limits.frame_grace,
        ..ChannelConfig::default()
    };
    let handshake_deadline = started + limits.handshake;
    let (mut ch, identity) = match tls_config {
        None => (
            Channel::tcp(stream, config).map_err(SecureError::from)?,
            None,
        ),
        Some(tls_config) => {
            let socket = stream.try_clone().map_err(|source| Error::Net {
                what: "configuring",
                addr: "an accepted connection".into(),
                source,
            })?;
            let (tls_stream, who) = tls::accept(tls_config, stream, handshake_deadline)?;
            let ch =
                Channel::over_stream(tls_stream, &socket, config).map_err(SecureError::from)?;
            (ch, Some(who))
        }
    };
    ch.set_deadline(started.checked_add(limits.session));
    ch.set_handshake_deadline(Some(handshake_deadline));
    Ok(Incoming { ch, identity })
}

/// The outcome of a client's run over some slices of a volume.
#[derive(Debug)]
pub struct ClientRun {
    /// The slices run, in order.
    pub slices: Vec<usize>,
    /// Their masks, cropped to the scan (`nx · ny` each).
    pub masks: Vec<Vec<u8>>,
    /// Client wall time of each slice's inference (of the one slab's for a volume UNet); the
    /// slices of a batch share its wall equally.
    pub slice_walls: Vec<Duration>,
    /// Wall time of the whole session (connect, set-up, slices, close).
    pub wall: Duration,
    /// The client's report.
    pub report: Report,
}

impl ClientRun {
    /// Sum of [`ClientRun::slice_walls`].
    pub fn slices_wall(&self) -> Duration {
        self.slice_walls.iter().sum()
    }
}

/// Where a client's slice inputs come from.
pub trait SliceSource {
    /// The encoded network input of slice `z` (the 2.5D stack, residues below `quant.p`).
    ///
    /// # Errors
    /// [`Error::Volume`] if `z` is outside the volume.
    fn encoded(&self, z: usize, quant: &Quant) -> Result<Tensor<u64>, Error>;

    /// The mask of one padded slice cropped to the scan.
    fn crop(&self, mask: &[u8]) -> Vec<u8>;
}

impl SliceSource for Prepared {
    fn encoded(&self, z: usize, quant: &Quant) -> Result<Tensor<u64>, Error> {
        Ok(self.encoded_stack(z, quant)?)
    }

    fn crop(&self, mask: &[u8]) -> Vec<u8> {
        Prepared::crop(self, mask)
    }
}

/// Runs the client over `slices` of `vol` in one session on `ch`: handshake and set-up, one
/// secure inference per batch of up to [`SessionConfig::batch`] slices (stacked along depth,
/// [`bunet_unet::tensor::batch`]), close. `tick` is called after every plan step of every
/// slice (for progress bars: a batch's step ticks once per slice in it).
///
/// # Errors
/// [`Error::Secure`] if the protocol fails, [`Error::Volume`] for a slice outside the volume.
pub fn run_client(
    ch: &mut Channel,
    arch: &Architecture,
    config: SessionConfig,
    vol: &(impl SliceSource + ?Sized),
    slices: &[usize],
    mut tick: impl FnMut(),
) -> Result<ClientRun, Error> {
    let start = Instant::now();
    let quant = config.preset.quant();
    // A volume UNet's requests are slabs, not batches of slices.
    let batch = match arch.dims {
        Dims::Two => config.batch.max(1),
        Dims::Three => 1,
    };
    // State the session's largest extents (every slice stack of a volume has the same, and the
    // first batch is the fullest) so that a server under admission control sizes its memory
    // estimate by them.
    let mut client = match slices.first() {
        Some(&z) => {
            let [d, h, w] = vol.encoded(z, &quant)?.dims();
            let extents = [d * batch.min(slices.len()), h, w];
            Client::connect_for(ch, arch, config, extents, Prg::from_os_entropy())?
        }
        None => Client::connect(ch, arch, config, Prg::from_os_entropy())?,
    };
    let mut masks = Vec::with_capacity(slices.len());
    let mut slice_walls = Vec::with_capacity(slices.len());
    for group in slices.chunks(batch) {
        let inputs = group
            .iter()
            .map(|&z| vol.encoded(z, &quant))
            .collect::<Result<Vec<_>, _>>()?;
        let input = if inputs.len() == 1 {
            inputs.into_iter().next().expect("one input")
        } else {
            bunet_unet::tensor::batch(&inputs).map_err(SecureError::from)?
        };
        let t = Instant::now();
        let mask = client.infer_observed(ch, &input, |_, _| group.iter().for_each(|_| tick()))?;
        let wall = t.elapsed();
        let n = group.len() as u32;
        for k in 0..group.len() {
            slice_walls.push(wall / n);
            masks.push(vol.crop(mask.depth_slice(k).data()));
        }
    }
    let report = client.close(ch)?;
    Ok(ClientRun {
        slices: slices.to_vec(),
        masks,
        slice_walls,
        wall: start.elapsed(),
        report,
    })
}

/// Runs the client over `slices` of `vol` in `jobs` sessions at once with the server at
/// `server` = (address, how to connect) (each its own connection and thread, [`run_client`] on a contiguous share of the slices):
/// while one session waits for its bytes to cross the link, another computes, so a link's
/// transfer time and the parties' compute overlap. Returns one run: the slices and masks in
/// order, the sessions' reports merged ([`Report::merge`]) and the elapsed wall time of all.
///
/// # Errors
/// The first failing session's error ([`Error::Net`] if a connection fails).
pub fn run_client_jobs(
    (addr, how): (&str, &Connect),
    arch: &Architecture,
    config: SessionConfig,
    vol: &(impl SliceSource + Sync + ?Sized),
    slices: &[usize],
    jobs: usize,
    tick: &(impl Fn() + Sync),
) -> Result<ClientRun, Error> {
    let start = Instant::now();
    let jobs = jobs.clamp(1, slices.len().max(1));
    // Contiguous shares, in batches: job j takes batches j·k.. so that only the last batch of
    // the whole run is short.
    let batch = match arch.dims {
        Dims::Two => config.batch.max(1),
        Dims::Three => 1,
    };
    let batches = slices.len().div_ceil(batch);
    let per_job = batches.div_ceil(jobs);
    let shares: Vec<&[usize]> = slices.chunks((per_job * batch).max(1)).collect();
    let runs = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|&mine| {
                s.spawn(move || -> Result<ClientRun, Error> {
                    let mut ch = connect_with(addr, how)?;
                    run_client(&mut ch, arch, config, vol, mine, tick)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| Error::ServerPanicked)?)
            .collect::<Result<Vec<_>, Error>>()
    })?;
    let mut runs = runs.into_iter();
    let mut all = runs
        .next()
        .ok_or_else(|| Error::Secure(SecureError::Protocol("no slices to run".into())))?;
    for r in runs {
        all.slices.extend(r.slices);
        all.masks.extend(r.masks);
        all.slice_walls.extend(r.slice_walls);
        all.report.merge(&r.report);
    }
    all.wall = start.elapsed();
    Ok(all)
}

/// Runs the client of a volume (3D) UNet over slices `start..end` of the padded volume `vol` in
/// one session on `ch`: handshake and set-up, one secure inference on the slab, close. The run's
/// slices are those of the slab inside the scan, each cropped to the scan; its one slice wall is
/// the slab's inference. `tick` is called after every plan step.
///
/// # Errors
/// [`Error::Secure`] if the protocol fails, [`Error::Volume`] for a slab that does not fit.
pub fn run_client_slab(
    ch: &mut Channel,
    arch: &Architecture,
    config: SessionConfig,
    vol: &Prepared,
    (start, end): (usize, usize),
    mut tick: impl FnMut(),
) -> Result<ClientRun, Error> {
    let started = Instant::now();
    let input = vol.encoded_slab(start, end, &config.preset.quant())?;
    // State the slab's extents: a server under admission control sizes its estimate by them.
    let mut client = Client::connect_for(ch, arch, config, input.dims(), Prg::from_os_entropy())?;
    let t = Instant::now();
    let mask = client.infer_observed(ch, &input, |_, _| tick())?;
    let slab_wall = t.elapsed();
    let report = client.close(ch)?;
    let [_, py, px] = input.dims();
    let slices: Vec<usize> = (start..end.min(vol.slices())).collect();
    let masks = slices
        .iter()
        .map(|&z| {
            let k = z - start;
            vol.crop(&mask.data()[k * py * px..(k + 1) * py * px])
        })
        .collect();
    Ok(ClientRun {
        slices,
        masks,
        slice_walls: vec![slab_wall],
        wall: started.elapsed(),
        report,
    })
}

/// Serves one client on `stream` until it closes: handshake (refusing any mismatch with
/// `config` or the model), set-up, requests. Returns the server's report.
///
/// # Errors
/// [`Error::Secure`] if the session fails.
pub fn serve_connection(
    stream: TcpStream,
    model: &QuantModel,
    config: SessionConfig,
) -> Result<Report, Error> {
    let mut ch = Channel::tcp(stream, channel_config()).map_err(SecureError::from)?;
    let server = Server::accept(&mut ch, model, config, Prg::from_os_entropy())?;
    Ok(server.serve(&mut ch)?)
}

/// What one connection to a server under admission control came to.
#[derive(Debug)]
pub enum Served {
    /// A session ran; the server's report.
    Session(Report),
    /// A probe was answered.
    Probed,
}

/// Serves one connection (its transport set up by [`open`]) under `gate`'s admission control
/// ([`Server::accept_with`]): a probe is answered with the gate's status; a session is
/// admitted or told at once that the server is busy or never takes it, and if admitted runs
/// until the client closes, holding the gate's ticket.
///
/// # Errors
/// [`Error::Secure`] if the session fails or is not admitted ([`SecureError::Busy`],
/// [`SecureError::Refused`]: the client was told).
pub fn serve_gated<G: Gate>(
    incoming: Incoming,
    model: &QuantModel,
    config: SessionConfig,
    gate: &G,
) -> Result<Served, Error> {
    let mut ch = incoming.ch;
    match Server::accept_with(&mut ch, model, config, Prg::from_os_entropy(), gate)? {
        Accepted::Probed => Ok(Served::Probed),
        Accepted::Session(server, ticket) => {
            let report = server.serve(&mut ch);
            drop(ticket);
            Ok(Served::Session(report?))
        }
    }
}

/// Asks the server at `addr`, reached as `how` says, for its load with a handshake-level probe
/// (no session set-up).
///
/// # Errors
/// [`Error::Net`] if it cannot be reached, [`Error::Secure`] if it does not answer a probe.
pub fn probe(addr: &str, how: &Connect) -> Result<Status, Error> {
    let mut ch = connect_with(addr, how)?;
    // The connection and the answer, each within the timeout.
    ch.set_deadline(Some(Instant::now() + how.timeout));
    Ok(handshake::probe(&mut ch)?)
}

/// A server thread on a loopback port serving exactly one client (single-machine runs: demo,
/// breakdown, Table 1 samples), over real TCP.
#[derive(Debug)]
pub struct LocalServer {
    addr: SocketAddr,
    handle: JoinHandle<Result<Report, Error>>,
}

impl LocalServer {
    /// Listens on `127.0.0.1` (a free port) and serves one client with `model` and `config`
    /// in a new thread.
    ///
    /// # Errors
    /// [`Error::Net`] if the port cannot be opened.
    pub fn spawn(model: Arc<QuantModel>, config: SessionConfig) -> Result<Self, Error> {
        let net = |source| Error::Net {
            what: "listening on",
            addr: "127.0.0.1:0".into(),
            source,
        };
        let listener = TcpListener::bind("127.0.0.1:0").map_err(net)?;
        let addr = listener.local_addr().map_err(net)?;
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().map_err(|source| Error::Net {
                what: "accepting on",
                addr: addr.to_string(),
                source,
            })?;
            serve_connection(stream, &model, config)
        });
        Ok(Self { addr, handle })
    }

    /// The address to connect to.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the session to end and returns the server's report.
    ///
    /// # Errors
    /// The session's error, or [`Error::ServerPanicked`].
    pub fn join(self) -> Result<Report, Error> {
        self.handle.join().map_err(|_| Error::ServerPanicked)?
    }
}

/// Resolves `addr` to check it before a long set-up (a typo fails at once).
///
/// # Errors
/// [`Error::Net`] if it does not resolve.
pub fn resolve(addr: &str) -> Result<SocketAddr, Error> {
    let net = |source| Error::Net {
        what: "resolving",
        addr: addr.to_string(),
        source,
    };
    addr.to_socket_addrs()
        .map_err(net)?
        .next()
        .ok_or_else(|| net(std::io::Error::from(std::io::ErrorKind::AddrNotAvailable)))
}

/// One party's report as breakdown rows.
pub fn rows(report: &Report) -> Vec<BlockRow> {
    report
        .blocks
        .iter()
        .map(|b| BlockRow {
            party: report.party.name().to_string(),
            block: b.block.clone(),
            phase: b.phase.name().to_string(),
            calls: b.calls,
            elements: b.elements,
            wall_s: b.wall.as_secs_f64(),
            cpu_s: b.cpu.as_secs_f64(),
            bytes_sent: b.bytes_sent,
            bytes_received: b.bytes_received,
            rounds: b.rounds,
        })
        .collect()
}

/// Parses the JSON of the driver's [`Report::to_json`] into breakdown rows (the server's report
/// when it ran in another process).
///
/// # Errors
/// A [`serde_json::Error`] if the text is not such a report.
pub fn rows_from_json(json: &str) -> Result<Vec<BlockRow>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Block {
        block: String,
        phase: String,
        calls: u64,
        elements: u64,
        wall_s: f64,
        cpu_s: f64,
        bytes_sent: u64,
        bytes_received: u64,
        rounds: u64,
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        party: String,
        blocks: Vec<Block>,
    }
    let doc: Doc = serde_json::from_str(json)?;
    Ok(doc
        .blocks
        .into_iter()
        .map(|b| BlockRow {
            party: doc.party.clone(),
            block: b.block,
            phase: b.phase,
            calls: b.calls,
            elements: b.elements,
            wall_s: b.wall_s,
            cpu_s: b.cpu_s,
            bytes_sent: b.bytes_sent,
            bytes_received: b.bytes_received,
            rounds: b.rounds,
        })
        .collect())
}

/// The breakdown of a run from both parties' rows.
pub fn breakdown(
    arch: &Architecture,
    config: &SessionConfig,
    run: &ClientRun,
    input_dims: [usize; 3],
    server_rows: Vec<BlockRow>,
) -> Breakdown {
    let mut all = rows(&run.report);
    all.extend(server_rows);
    Breakdown {
        backend: config.nonlinear.name().to_string(),
        preset: config.preset.name().to_string(),
        architecture: arch.to_string(),
        input_dims,
        slices: run.slices.len(),
        total_wall_s: run.wall.as_secs_f64(),
        machine: crate::report::machine(),
        rows: all,
    }
}

/// Runs `slices` of `vol` securely on this machine: a [`LocalServer`] thread with `model`, and
/// this thread as the client, over loopback TCP. Returns the client's run and the server's
/// report.
///
/// # Errors
/// As [`LocalServer::spawn`], [`run_client`] and [`LocalServer::join`].
pub fn run_local(
    model: Arc<QuantModel>,
    config: SessionConfig,
    vol: &Prepared,
    slices: &[usize],
    tick: impl FnMut(),
) -> Result<(ClientRun, Report), Error> {
    let arch = *model.plan().arch();
    let server = LocalServer::spawn(model, config)?;
    let mut ch = connect(&server.addr())?;
    let run = run_client(&mut ch, &arch, config, vol, slices, tick);
    drop(ch);
    let server_report = server.join();
    let run = run?;
    Ok((run, server_report?))
}
