//! Framed, metered channels between the two parties: TCP for real runs, an in-memory pipe for
//! tests and single-process demos. Both share one framing and metering implementation.
//!
//! A frame is `magic (4) | version u16 | kind u16 | body length u64 | body`, little-endian. A
//! receiver checks magic, version, kind and length (against both the caller's bound and the
//! channel's maximum) before allocating the body. Every byte, message and round is counted under
//! the label of the building block that caused it ([`Channel::set_label`]).
//!
//! Time limits ([`pace`]): a wait for a frame's first byte is bounded by the idle timeout; once a
//! frame has begun it must be complete within [`ChannelConfig::frame_grace`] plus its length at
//! [`ChannelConfig::min_rate`]; and a handshake and a session deadline bound the whole exchange,
//! so that no pace of the peer's bytes holds a connection longer than the caller allows.
//!
//! The I/O runs in a writer and a reader thread per channel (module `pump`), behind queues bounded
//! in bytes, so computation overlaps communication in both directions; metering stays at the
//! API (what [`Channel::send`] and [`Channel::recv`] see), so it does not depend on timing.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::wire::{Decode, Encode, Reader, WireError, decode_exact};

pub mod fault;
pub mod pace;
mod pump;

use pace::{Limit, SharedHalf, TimedRead, TimedWrite};
pub use pump::QUEUE_MIN_BYTES;
use pump::Shared;

/// Magic bytes that open every frame.
pub const MAGIC: [u8; 4] = *b"BUNT";
/// Version of the framing and of every message format; bumped on any change.
pub const PROTOCOL_VERSION: u16 = 1;
/// Length of a frame header.
pub const FRAME_HEADER_LEN: usize = 16;
/// Default largest frame body accepted (64 MiB): larger payloads are streamed in batches.
pub const DEFAULT_MAX_FRAME_LEN: u64 = 64 << 20;

/// The most bytes one of a channel's two background queues (the writer's and the read-ahead)
/// holds at once while no frame body exceeds `max_frame_len`: [`QUEUE_MIN_BYTES`], or twice the
/// largest frame (header included) if that is larger (module `pump`, "Bounds"). A peer that
/// sends ahead of the protocol fills the read-ahead queue to it, one that stops reading the
/// writer's; so a memory budget per connection counts both.
pub fn queue_bound(max_frame_len: u64) -> u64 {
    let frame = max_frame_len.saturating_add(FRAME_HEADER_LEN as u64);
    pump::queue_bound(usize::try_from(frame).unwrap_or(usize::MAX)) as u64
}

/// The most bytes a channel's background I/O holds at once while no frame body exceeds
/// `max_frame_len`: both queues at [`queue_bound`] and the buffers of its two transport halves.
/// Frames already handed to the caller ([`Channel::recv`]) or not yet queued
/// ([`Channel::send`]'s argument) are the caller's.
pub fn io_bytes_bound(max_frame_len: u64) -> u64 {
    queue_bound(max_frame_len)
        .saturating_mul(2)
        .saturating_add(2 * pump::BUFFER_LEN as u64)
}

/// Why the channel failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// No data arrived within the read timeout.
    #[error("no data from the peer within {0:?}")]
    Timeout(Duration),
    /// A frame that had begun did not complete in time: the peer sent (or took) its bytes
    /// slower than [`ChannelConfig::min_rate`].
    #[error(
        "a frame was not complete within its deadline (the peer is slower than {min_rate} bytes/s after a {grace:?} grace)"
    )]
    TooSlow {
        /// The configured minimum rate.
        min_rate: u64,
        /// The configured grace.
        grace: Duration,
    },
    /// The handshake or session deadline passed.
    #[error("the {0} deadline passed")]
    Deadline(DeadlineKind),
    /// Another I/O failure.
    #[error("channel i/o: {0}")]
    Io(#[source] io::Error),
    /// The frame header is malformed.
    #[error("bad frame header: {0}")]
    BadFrame(#[from] WireError),
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: expected {expected}, found {found}")]
    VersionMismatch {
        /// Our version.
        expected: u16,
        /// The peer's.
        found: u16,
    },
    /// The frame is of another message kind than the protocol step expects.
    #[error("unexpected message kind: expected {expected}, found {found}")]
    UnexpectedKind {
        /// The kind this step expects.
        expected: u16,
        /// The kind received.
        found: u16,
    },
    /// The frame announces a body longer than allowed.
    #[error("frame of {found} bytes exceeds the maximum {max}")]
    FrameTooLarge {
        /// The announced length.
        found: u64,
        /// The bound.
        max: u64,
    },
}

/// Which absolute deadline passed ([`ChannelError::Deadline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineKind {
    /// [`Channel::set_handshake_deadline`].
    Handshake,
    /// [`Channel::set_deadline`].
    Session,
}

impl std::fmt::Display for DeadlineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeadlineKind::Handshake => "handshake",
            DeadlineKind::Session => "session",
        })
    }
}

/// Settings of a channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelConfig {
    /// How long a read may wait for the first byte of a frame (the peer may be computing), and
    /// over TCP also how long a write may wait for the peer to take bytes, so that a peer that
    /// stops reading cannot block us forever (`None`: forever).
    pub read_timeout: Option<Duration>,
    /// The largest frame body accepted.
    pub max_frame_len: u64,
    /// The slowest pace accepted inside a frame, in bytes per second (0: none): once a frame's
    /// first byte has arrived, the whole frame must pass within
    /// [`ChannelConfig::frame_grace`] plus its length at this rate. A sender never pauses inside
    /// a frame (its writer thread writes whole frames, never waiting on the computation), so
    /// only a slow link or a trickling peer meets this limit; a receiver whose read-ahead queue
    /// is full starts a frame's body deadline once it has room. A batch of queued frames gets
    /// the idle timeout on top (the peer may be computing before it reads), then must be taken
    /// at this rate.
    pub min_rate: u64,
    /// The time a frame gets on top of its length at [`ChannelConfig::min_rate`].
    pub frame_grace: Duration,
}

/// Default [`ChannelConfig::min_rate`]: 32 KiB/s (256 kbit/s), far below any link a scan is
/// segmented over, far above a peer that trickles bytes to hold a connection.
pub const DEFAULT_MIN_RATE: u64 = 32 << 10;
/// Default [`ChannelConfig::frame_grace`].
pub const DEFAULT_FRAME_GRACE: Duration = Duration::from_secs(30);

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            read_timeout: Some(Duration::from_secs(300)),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            min_rate: DEFAULT_MIN_RATE,
            frame_grace: DEFAULT_FRAME_GRACE,
        }
    }
}

impl ChannelConfig {
    /// The deadline of a frame of `len` bytes begun at `began` (none without a minimum rate).
    /// The deadline of sending `len` bytes from `began`: the peer may be computing before it
    /// reads (up to the idle timeout, as between frames), then must take them at the minimum
    /// rate; so a peer that reads one byte at a time cannot hold a send longer than that.
    fn send_deadline(&self, began: Instant, len: u64) -> Option<Instant> {
        self.frame_deadline(began.checked_add(self.read_timeout?)?, len)
    }

    fn frame_deadline(&self, began: Instant, len: u64) -> Option<Instant> {
        if self.min_rate == 0 {
            return None;
        }
        let secs = len as f64 / self.min_rate as f64;
        // Capped so that no length can overflow an Instant; a day is past any real frame.
        let at_rate = Duration::from_secs_f64(secs.min(86_400.0));
        began.checked_add(self.frame_grace + at_rate)
    }
}

/// Traffic of one building block, as seen by one party.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes sent, frame headers included.
    pub bytes_sent: u64,
    /// Bytes received, frame headers included.
    pub bytes_received: u64,
    /// Frames sent.
    pub messages_sent: u64,
    /// Frames received.
    pub messages_received: u64,
    /// Flights sent: runs of sends not interrupted by a receive. The protocol's round count is
    /// the sum of both parties' flights.
    pub flights: u64,
}

impl Traffic {
    /// Adds another record to this one.
    pub fn add(&mut self, other: &Traffic) {
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.messages_sent += other.messages_sent;
        self.messages_received += other.messages_received;
        self.flights += other.flights;
    }
}

/// Traffic per building-block label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meter {
    by_label: BTreeMap<&'static str, Traffic>,
}

impl Meter {
    /// The traffic recorded under `label`.
    pub fn get(&self, label: &str) -> Traffic {
        self.by_label.get(label).copied().unwrap_or_default()
    }

    /// Every label with its traffic, sorted by label.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Traffic)> {
        self.by_label.iter().map(|(k, v)| (*k, v))
    }

    /// The sum over all labels.
    pub fn total(&self) -> Traffic {
        let mut t = Traffic::default();
        for v in self.by_label.values() {
            t.add(v);
        }
        t
    }

    fn entry(&mut self, label: &'static str) -> &mut Traffic {
        self.by_label.entry(label).or_default()
    }
}

/// One end of a framed, metered, bidirectional channel.
///
/// Its I/O runs in two threads of its own (module `pump`): [`Channel::send`] queues a frame for the
/// writer thread and returns, and a reader thread reads the peer's frames ahead, so that a
/// party computes while its own and its peer's frames travel. A failure of the writer is
/// reported, typed, at the next call; dropping the channel (or [`Channel::close`]) writes what
/// is queued, within the send limits, before the connection is shut down.
pub struct Channel {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    /// Joined on drop where a socket is shut down under it (which wakes it at once).
    reader: Option<JoinHandle<()>>,
    /// The socket underneath, shut down once the writer has drained (wakes the reader and
    /// tells the peer at once).
    socket: Option<TcpStream>,
    config: ChannelConfig,
    session_deadline: Option<Instant>,
    handshake_deadline: Option<Instant>,
    meter: Meter,
    label: &'static str,
    sending_flight: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("label", &self.label)
            .field("meter", &self.meter)
            .finish_non_exhaustive()
    }
}

impl Channel {
    fn from_halves(
        reader: Box<dyn TimedRead>,
        writer: Box<dyn TimedWrite>,
        socket: Option<TcpStream>,
        config: ChannelConfig,
    ) -> Result<Self, ChannelError> {
        let shared = Arc::new(Shared::new(config.max_frame_len));
        let spawn = |name: &str| std::thread::Builder::new().name(name.to_owned());
        let s = Arc::clone(&shared);
        let writer = spawn("bunet-channel-writer")
            .spawn(move || pump::run_writer(s, writer, config))
            .map_err(ChannelError::Io)?;
        let s = Arc::clone(&shared);
        let reader = match spawn("bunet-channel-reader")
            .spawn(move || pump::run_reader(s, reader, config))
        {
            Ok(reader) => reader,
            Err(e) => {
                shared.lock().closing = true;
                shared.changed.notify_all();
                let _ = writer.join();
                return Err(ChannelError::Io(e));
            }
        };
        Ok(Self {
            shared,
            writer: Some(writer),
            reader: Some(reader),
            socket,
            config,
            session_deadline: None,
            handshake_deadline: None,
            meter: Meter::default(),
            label: "unlabelled",
            sending_flight: false,
        })
    }

    /// A channel over a connected TCP stream (Nagle disabled, every wait bounded by the limits
    /// of [`pace`]).
    ///
    /// # Errors
    /// [`ChannelError::Io`] if the socket cannot be configured or cloned, or a thread not
    /// started.
    pub fn tcp(stream: TcpStream, config: ChannelConfig) -> Result<Self, ChannelError> {
        stream.set_nodelay(true).map_err(ChannelError::Io)?;
        let read_half = stream.try_clone().map_err(ChannelError::Io)?;
        let socket = stream.try_clone().map_err(ChannelError::Io)?;
        Self::from_halves(Box::new(read_half), Box::new(stream), Some(socket), config)
    }

    /// Two ends of a fresh loopback TCP connection, `(accepting end, connecting end)`, each with
    /// `config`: both parties on one host over a real socket (tests, benches, local runs).
    ///
    /// # Errors
    /// [`ChannelError::Io`] if loopback networking fails.
    pub fn loopback_pair(config: ChannelConfig) -> Result<(Channel, Channel), ChannelError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(ChannelError::Io)?;
        let addr = listener.local_addr().map_err(ChannelError::Io)?;
        // The listen backlog takes the connection before `accept` runs: no thread needed.
        let connecting = TcpStream::connect(addr).map_err(ChannelError::Io)?;
        let (accepting, _) = listener.accept().map_err(ChannelError::Io)?;
        Ok((
            Channel::tcp(accepting, config)?,
            Channel::tcp(connecting, config)?,
        ))
    }

    /// A channel over `stream`, a byte stream layered on the connected TCP socket `socket`
    /// (such as a TLS session): reads and writes go through `stream`, and the socket's timeouts
    /// bound each of its waits, so every limit of [`pace`] holds as over plain TCP. The reader
    /// and writer threads share `stream`, each holding it for at most a short slice of a wait
    /// ([`pace`]), so neither blocks the other.
    ///
    /// # Errors
    /// [`ChannelError::Io`] if the socket cannot be configured or cloned, or a thread not
    /// started.
    pub fn over_stream<S: Read + Write + Send + 'static>(
        stream: S,
        socket: &TcpStream,
        config: ChannelConfig,
    ) -> Result<Self, ChannelError> {
        socket.set_nodelay(true).map_err(ChannelError::Io)?;
        let stream = Arc::new(Mutex::new(stream));
        let half = |stream| -> Result<SharedHalf<S>, ChannelError> {
            Ok(SharedHalf {
                stream,
                socket: socket.try_clone().map_err(ChannelError::Io)?,
            })
        };
        let reader = half(Arc::clone(&stream))?;
        let writer = half(stream)?;
        Self::from_halves(
            Box::new(reader),
            Box::new(writer),
            Some(socket.try_clone().map_err(ChannelError::Io)?),
            config,
        )
    }

    /// Two connected in-memory ends. Each direction buffers a bounded number of chunks, so a
    /// writer that runs ahead blocks as it would on a socket.
    ///
    /// # Panics
    /// If the operating system cannot start the channels' threads.
    pub fn in_memory_pair(config: ChannelConfig) -> (Channel, Channel) {
        let (a_tx, b_rx) = sync_channel(16);
        let (b_tx, a_rx) = sync_channel(16);
        let end = |tx, rx| {
            Channel::from_halves(
                Box::new(PipeReader::new(rx)),
                Box::new(PipeWriter { tx }),
                None,
                config,
            )
            .expect("threads of an in-memory channel")
        };
        (end(a_tx, a_rx), end(b_tx, b_rx))
    }

    /// Sets the building-block label that subsequent traffic is counted under; returns the
    /// previous label.
    pub fn set_label(&mut self, label: &'static str) -> &'static str {
        std::mem::replace(&mut self.label, label)
    }

    /// Counts the traffic under `label` until the returned guard drops, which restores the
    /// label in force before (also on an early `?` return), so a building block cannot leak its
    /// label into the caller's traffic. The guard dereferences to the channel.
    pub fn labelled(&mut self, label: &'static str) -> Labelled<'_> {
        let previous = self.set_label(label);
        Labelled {
            channel: self,
            previous,
        }
    }

    /// The current label.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Traffic counted so far.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The channel's settings.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Sets the session deadline: once it passes, every read and write fails with
    /// [`ChannelError::Deadline`] (`None`: no deadline).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.session_deadline = deadline;
        self.shared.lock().session_deadline = deadline;
    }

    /// Sets the handshake deadline: a deadline that holds until this side next sends a frame
    /// (a server's first frame is its answer to the client's hello), so that a connection that
    /// never completes its hello is dropped in bounded time.
    pub fn set_handshake_deadline(&mut self, deadline: Option<Instant>) {
        self.handshake_deadline = deadline;
    }

    /// The tighter of the two deadlines and which it is.
    fn deadline(&self) -> Option<(Instant, Limit)> {
        match (self.session_deadline, self.handshake_deadline) {
            (Some(s), Some(h)) if h < s => Some((h, Limit::Handshake)),
            (Some(s), _) => Some((s, Limit::Session)),
            (None, Some(h)) => Some((h, Limit::Handshake)),
            (None, None) => None,
        }
    }

    /// The time left before the tighter deadline, or its error once it has passed.
    fn deadline_left(&self) -> Result<Option<Duration>, ChannelError> {
        match self.deadline() {
            None => Ok(None),
            Some((at, limit)) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(limit_error(
                    &self.config,
                    io::Error::from(io::ErrorKind::TimedOut),
                    limit,
                )),
            },
        }
    }

    /// Raises the largest accepted frame body to `max` (never lowers it). For protocols whose
    /// agreed parameters (such as the nonlinear chunk) make single messages larger than the
    /// default; every receive still passes its own exact bound, so nothing larger than the
    /// agreed message is ever delivered.
    pub fn raise_max_frame_len(&mut self, max: u64) {
        self.config.max_frame_len = self.config.max_frame_len.max(max);
        self.shared.lock().max_frame_len = self.config.max_frame_len;
    }

    /// Queues one frame of message `kind` for the writer thread and returns; it waits only
    /// while the queue holds its bound of bytes (module `pump`), so a peer that stops reading holds
    /// it back.
    ///
    /// # Errors
    /// The writer's earlier failure ([`ChannelError::Io`], [`ChannelError::Closed`],
    /// [`ChannelError::Timeout`], [`ChannelError::TooSlow`], [`ChannelError::Deadline`]), or
    /// [`ChannelError::Deadline`] if the session deadline has passed.
    pub fn send(&mut self, kind: u16, body: &[u8]) -> Result<(), ChannelError> {
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
        frame.extend_from_slice(&MAGIC);
        frame.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        frame.extend_from_slice(&kind.to_le_bytes());
        frame.extend_from_slice(&(body.len() as u64).to_le_bytes());
        frame.extend_from_slice(body);
        self.handshake_deadline = None;
        self.enqueue(frame)?;
        let label = self.label;
        let first_of_flight = !std::mem::replace(&mut self.sending_flight, true);
        let traffic = self.meter.entry(label);
        traffic.bytes_sent += (FRAME_HEADER_LEN + body.len()) as u64;
        traffic.messages_sent += 1;
        traffic.flights += u64::from(first_of_flight);
        Ok(())
    }

    /// Hands `bytes` (whole frames) to the writer thread, waiting for room in its queue.
    fn enqueue(&mut self, bytes: Vec<u8>) -> Result<(), ChannelError> {
        let len = bytes.len();
        let mut state = self.shared.lock();
        loop {
            if let Some(e) = pump::report(&mut state.writer_error) {
                return Err(e);
            }
            let left = self.deadline_left()?;
            let bound = pump::queue_bound(state.out_largest.max(len));
            if state.out_bytes == 0 || state.out_bytes + len <= bound {
                break;
            }
            state = self.shared.wait(state, left);
        }
        state.out_bytes += len;
        state.out_largest = state.out_largest.max(len);
        state.out.push_back(bytes);
        drop(state);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Encodes and queues one message.
    ///
    /// # Errors
    /// As [`Channel::send`].
    pub fn send_message<T: Encode>(&mut self, kind: u16, message: &T) -> Result<(), ChannelError> {
        self.send(kind, &message.to_bytes())
    }

    /// Reports the writer's failure, if any. Queued frames need no push: the writer thread
    /// writes them as soon as it can, so this does not wait for the wire ([`Channel::close`]
    /// does).
    ///
    /// # Errors
    /// The writer's failure, as for [`Channel::send`].
    pub fn flush(&mut self) -> Result<(), ChannelError> {
        match pump::report(&mut self.shared.lock().writer_error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes every queued frame (within the send limits) and shuts the connection down.
    ///
    /// # Errors
    /// The writer's failure, as for [`Channel::send`].
    pub fn close(mut self) -> Result<(), ChannelError> {
        self.drain();
        self.flush()
    }

    /// Lets the writer write what is queued and end, then stops the reader.
    fn drain(&mut self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_all();
        if let Some(writer) = self.writer.take() {
            // A panic of the writer thread would be a bug; its frames are lost either way and
            // the peer sees the connection close.
            let _ = writer.join();
        }
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        let reader = self.reader.take();
        if let Some(socket) = self.socket.take() {
            // The peer may have closed first; nothing is left to tell it.
            let _ = socket.shutdown(std::net::Shutdown::Both);
            // The shut-down socket ends the reader's wait at once, so a network channel leaves
            // no thread behind it (a server's sessions come and go; a fuzzer's leak check runs
            // after every input). An in-memory pipe's reader is left to end within its poll
            // slice: joining it would cost every dropped test channel up to that slice.
            if let Some(reader) = reader {
                // A panic of the reader thread would be a bug; nothing is left to receive.
                let _ = reader.join();
            }
        }
    }

    /// Receives one frame of message `kind` whose body is at most `max_len` bytes (and at most
    /// the channel's maximum frame length), from the frames read ahead or waiting for the next.
    ///
    /// # Errors
    /// [`ChannelError`] on a closed or silent peer, a malformed header, a version or kind
    /// mismatch, a body longer than allowed (rejected before allocation, at least against the
    /// channel's maximum), or the writer's failure.
    pub fn recv(&mut self, kind: u16, max_len: usize) -> Result<Vec<u8>, ChannelError> {
        self.flush()?;
        self.sending_flight = false;
        let idle_until = self
            .config
            .read_timeout
            .and_then(|t| Instant::now().checked_add(t));
        let max = self.config.max_frame_len.min(max_len as u64);
        let mut state = self.shared.lock();
        let body = loop {
            match state.inbox.pop_front() {
                Some(pump::Inbound::Frame { kind: found, body }) => {
                    state.in_bytes -= body.len();
                    drop(state);
                    self.shared.changed.notify_all();
                    check_frame(found, kind, body.len() as u64, max)?;
                    break body;
                }
                Some(pump::Inbound::Oversized { kind: found, len }) => {
                    // Read only if this receive allows it (the maximum may have been raised
                    // after the reader saw the header); otherwise the reader stops.
                    let allowed = len <= max && found == kind;
                    state.permit = Some(allowed);
                    self.shared.changed.notify_all();
                    check_frame(found, kind, len, max)?;
                    continue;
                }
                None => {}
            }
            if let Some(e) = pump::report(&mut state.reader_end) {
                return Err(e);
            }
            if let Some(e) = pump::report(&mut state.writer_error) {
                return Err(e);
            }
            let mut wait = self.deadline_left()?;
            // A frame that has begun runs against its own deadline (in the reader); the idle
            // timeout bounds only the wait for its first byte.
            if !state.frame_in_progress
                && let Some(until) = idle_until
            {
                match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => {
                        wait = Some(wait.map_or(left, |w| w.min(left)));
                    }
                    _ => {
                        return Err(ChannelError::Timeout(
                            self.config.read_timeout.unwrap_or_default(),
                        ));
                    }
                }
            }
            state = self.shared.wait(state, wait);
        };
        let traffic = self.meter.entry(self.label);
        traffic.bytes_received += (FRAME_HEADER_LEN + body.len()) as u64;
        traffic.messages_received += 1;
        Ok(body)
    }

    /// Queues raw bytes, for tests that play a misbehaving peer.
    #[cfg(test)]
    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.enqueue(bytes.to_vec())
    }

    /// Receives and decodes one message, rejecting trailing bytes.
    ///
    /// # Errors
    /// As [`Channel::recv`], and [`crate::Error::Wire`] if the body does not decode.
    pub fn recv_message<T: Decode>(
        &mut self,
        kind: u16,
        max_len: usize,
        ctx: &T::Context,
    ) -> Result<T, crate::Error> {
        let body = self.recv(kind, max_len)?;
        Ok(decode_exact(&body, ctx)?)
    }

    /// Receives one frame of message `kind` whose body is exactly `len` bytes.
    ///
    /// # Errors
    /// As [`Channel::recv`]; [`WireError::LengthMismatch`] for a shorter body.
    pub fn recv_exact(&mut self, kind: u16, len: usize) -> Result<Vec<u8>, crate::Error> {
        let body = self.recv(kind, len)?;
        if body.len() != len {
            return Err(WireError::LengthMismatch {
                what: "frame body",
                expected: len as u64,
                found: body.len() as u64,
            }
            .into());
        }
        Ok(body)
    }

    /// Receives one frame of message `kind` (body at most `max_len` bytes) and reads it with
    /// `read`, rejecting trailing bytes: the one way a protocol step decodes a message that has
    /// no [`Decode`] type of its own.
    ///
    /// # Errors
    /// As [`Channel::recv`]; the [`WireError`] of `read`; [`WireError::TrailingBytes`].
    pub fn recv_with<T>(
        &mut self,
        kind: u16,
        max_len: usize,
        read: impl FnOnce(&mut Reader<'_>) -> Result<T, WireError>,
    ) -> Result<T, crate::Error> {
        let body = self.recv(kind, max_len)?;
        let mut reader = Reader::new(&body);
        let value = read(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }

    /// Queues `bytes` as frames of message `kind` of at most `frame_len` bytes each, so that a
    /// large payload never needs one huge allocation on the receiving side.
    ///
    /// # Errors
    /// As [`Channel::send`].
    pub fn send_frames(
        &mut self,
        kind: u16,
        bytes: &[u8],
        frame_len: usize,
    ) -> Result<(), ChannelError> {
        for frame in bytes.chunks(frame_len.max(1)) {
            self.send(kind, frame)?;
        }
        Ok(())
    }

    /// Receives exactly `len` bytes sent by [`Channel::send_frames`] with the same `frame_len`
    /// (every frame of the exact size expected, so at most `len` bytes are ever allocated).
    ///
    /// # Errors
    /// As [`Channel::recv_exact`].
    pub fn recv_frames(
        &mut self,
        kind: u16,
        len: usize,
        frame_len: usize,
    ) -> Result<Vec<u8>, crate::Error> {
        let frame_len = frame_len.max(1);
        if len > 0 && len <= frame_len {
            return self.recv_exact(kind, len);
        }
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let want = (len - out.len()).min(frame_len);
            out.extend_from_slice(&self.recv_exact(kind, want)?);
        }
        Ok(out)
    }

    /// Queues 128-bit blocks little-endian in frames of at most `frame_len` bytes (no copy on a
    /// little-endian machine).
    ///
    /// # Errors
    /// As [`Channel::send`].
    pub fn send_blocks(
        &mut self,
        kind: u16,
        blocks: &[u128],
        frame_len: usize,
    ) -> Result<(), ChannelError> {
        if cfg!(target_endian = "little") {
            self.send_frames(kind, bytemuck::cast_slice(blocks), frame_len)
        } else {
            let mut bytes = Vec::new();
            crate::wire::put_blocks(&mut bytes, blocks);
            self.send_frames(kind, &bytes, frame_len)
        }
    }

    /// Receives exactly `n` blocks sent by [`Channel::send_blocks`] with the same `frame_len`.
    ///
    /// # Errors
    /// As [`Channel::recv_frames`]; [`WireError::TooLong`] if `16·n` overflows.
    pub fn recv_blocks(
        &mut self,
        kind: u16,
        n: usize,
        frame_len: usize,
    ) -> Result<Vec<u128>, crate::Error> {
        let len = n
            .checked_mul(crate::wire::BLOCK_LEN)
            .ok_or(WireError::TooLong {
                what: "blocks",
                found: n as u64,
                max: (usize::MAX / crate::wire::BLOCK_LEN) as u64,
            })?;
        let bytes = self.recv_frames(kind, len, frame_len)?;
        Ok(Reader::new(&bytes).blocks("blocks", n)?)
    }
}

/// A channel whose label is restored when this guard drops ([`Channel::labelled`]).
#[derive(Debug)]
pub struct Labelled<'c> {
    channel: &'c mut Channel,
    previous: &'static str,
}

impl std::ops::Deref for Labelled<'_> {
    type Target = Channel;

    fn deref(&self) -> &Channel {
        self.channel
    }
}

impl std::ops::DerefMut for Labelled<'_> {
    fn deref_mut(&mut self) -> &mut Channel {
        self.channel
    }
}

impl Drop for Labelled<'_> {
    fn drop(&mut self) {
        self.channel.set_label(self.previous);
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.drain();
    }
}

/// Maps a transport error; a wait that ran out is named by the limit that bounded it.
fn limit_error(config: &ChannelConfig, e: io::Error, last: Limit) -> ChannelError {
    match io_error(e, config.read_timeout) {
        ChannelError::Timeout(t) => match last {
            Limit::Idle => ChannelError::Timeout(t),
            Limit::Frame => ChannelError::TooSlow {
                min_rate: config.min_rate,
                grace: config.frame_grace,
            },
            Limit::Handshake => ChannelError::Deadline(DeadlineKind::Handshake),
            Limit::Session => ChannelError::Deadline(DeadlineKind::Session),
        },
        other => other,
    }
}

/// Maps a transport error; `timeout` is the configured wait that a `WouldBlock`/`TimedOut` means
/// ran out.
fn io_error(e: io::Error, timeout: Option<Duration>) -> ChannelError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ChannelError::Timeout(timeout.unwrap_or_default())
        }
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => ChannelError::Closed,
        _ => ChannelError::Io(e),
    }
}

/// Writing half of an in-memory pipe: each flushed buffer travels as one chunk.
struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
}

/// (A full pipe blocks the writer without a bound: both ends live in one process, and a peer
/// that stops reading there is a bug, not an attack.)
impl TimedWrite for PipeWriter {
    fn write_within(&mut self, buf: &[u8], _timeout: Option<Duration>) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .send(buf.to_vec())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush_within(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// Reading half of an in-memory pipe.
struct PipeReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl PipeReader {
    fn new(rx: Receiver<Vec<u8>>) -> Self {
        Self {
            rx,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl TimedRead for PipeReader {
    fn read_within(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            let next = match timeout {
                Some(t) => self.rx.recv_timeout(t).map_err(|e| match e {
                    RecvTimeoutError::Timeout => io::Error::from(io::ErrorKind::TimedOut),
                    RecvTimeoutError::Disconnected => io::Error::from(io::ErrorKind::UnexpectedEof),
                })?,
                None => self
                    .rx
                    .recv()
                    .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?,
            };
            self.chunk = next;
            self.pos = 0;
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A received frame's header against what the receive expects: at most `max` bytes of kind
/// `kind`.
fn check_frame(found: u16, kind: u16, len: u64, max: u64) -> Result<(), ChannelError> {
    if len > max {
        return Err(ChannelError::FrameTooLarge { found: len, max });
    }
    if found != kind {
        return Err(ChannelError::UnexpectedKind {
            expected: kind,
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
