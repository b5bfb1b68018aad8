//! Time limits under the channel's buffers: every read or write that reaches the transport
//! waits at most the tightest of the limits in force (idle wait, the current frame's deadline,
//! the handshake's and the session's deadline), and a transport is anything that can read or
//! write with such a bound (a TCP socket, a TLS stream over one, the in-memory pipe).
//!
//! Per-call timeouts alone let a peer that sends one byte just before each timeout hold a
//! connection forever; the absolute deadlines here make every frame, the handshake and the
//! whole session end in bounded time whatever the peer's pace.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The limit that bounded a wait (and so names the error when the wait ran out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    /// The idle timeout ([`super::ChannelConfig::read_timeout`]).
    Idle,
    /// The deadline of the frame being received or sent.
    Frame,
    /// The handshake deadline ([`super::Channel::set_handshake_deadline`]).
    Handshake,
    /// The session deadline ([`super::Channel::set_deadline`]).
    Session,
}

/// A source of bytes that can wait for them with a bound.
pub trait TimedRead: Send {
    /// Reads some bytes, waiting at most `timeout` (`None`: forever); a wait that runs out is
    /// an error of kind `TimedOut` or `WouldBlock`, a closed peer `Ok(0)`.
    ///
    /// # Errors
    /// The transport's I/O errors.
    fn read_within(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize>;
}

/// A sink of bytes that can wait for the peer to take them with a bound.
pub trait TimedWrite: Send {
    /// Writes some bytes, waiting at most `timeout` (`None`: forever) for room.
    ///
    /// # Errors
    /// The transport's I/O errors.
    fn write_within(&mut self, buf: &[u8], timeout: Option<Duration>) -> io::Result<usize>;

    /// Pushes anything the transport itself buffers, waiting at most `timeout`.
    ///
    /// # Errors
    /// The transport's I/O errors.
    fn flush_within(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

/// A socket timeout of zero means "forever" to the OS (and is refused by std): a wait that has
/// already run out is reported before the call, so the smallest one set is a millisecond.
fn socket_timeout(timeout: Option<Duration>) -> Option<Duration> {
    timeout.map(|t| t.max(Duration::from_millis(1)))
}

impl TimedRead for TcpStream {
    fn read_within(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        self.set_read_timeout(socket_timeout(timeout))?;
        self.read(buf)
    }
}

impl TimedWrite for TcpStream {
    fn write_within(&mut self, buf: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        self.set_write_timeout(socket_timeout(timeout))?;
        self.write(buf)
    }

    fn flush_within(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// One half of a stream that reads and writes through one object (a TLS session over a TCP
/// socket): both halves share it, and `socket` is the TCP socket underneath, whose timeouts
/// bound every wait of the stream.
pub(super) struct SharedHalf<S> {
    pub(super) stream: Arc<Mutex<S>>,
    pub(super) socket: TcpStream,
}

/// How long the writer of a [`SharedHalf`] whose socket send buffer is full sleeps outside the
/// lock before it tries again. A half never waits for the socket while it holds the stream:
/// the channel's reader and writer threads share it, and the writer of a queued frame would
/// otherwise wait out the reader's wait for the peer (a latency on every flight), and a reader
/// waiting inside the lock for bytes the peer can send only once this side's writer got
/// through would stall both sides.
const WRITE_RETRY: Duration = Duration::from_millis(1);
/// The longest the reader waits for the socket to become readable outside the lock before it
/// looks again (the stream may hold bytes the socket no longer shows: a write can read a TLS
/// record), and the deadlines are checked.
const READY_SLICE: Duration = Duration::from_millis(20);

/// Whether `e` means that a bounded wait ran out.
fn ran_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// What a half of a [`SharedHalf`] waits for between its turns with the stream.
#[derive(Clone, Copy)]
enum Wait {
    /// Bytes from the peer: waited for on the socket itself (a peek), outside the lock.
    Readable,
    /// Room in the socket's send buffer: std has no wait for it, so a short sleep outside the
    /// lock (the kernel drains the buffer meanwhile).
    Writable,
}

impl<S> SharedHalf<S> {
    /// Runs `op` on the stream until it completes or `timeout` runs out. Each turn runs `op`
    /// once with the socket non-blocking, under the lock; between turns the half waits for
    /// `wait` without the lock, so the other half gets the stream at once when it has
    /// something to do. A TLS stream (rustls) keeps the bytes of a wait that ran out in its own
    /// buffers, so `op` can resume where it stopped.
    fn sliced<R>(
        &self,
        timeout: Option<Duration>,
        wait: Wait,
        mut op: impl FnMut(&mut S) -> io::Result<R>,
    ) -> io::Result<R> {
        let end = timeout.and_then(|t| Instant::now().checked_add(t));
        let left = || end.map(|e| e.saturating_duration_since(Instant::now()));
        loop {
            let outcome = {
                let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
                // Without waiting under the lock (a socket timeout rounds up to the kernel's
                // tick, several ms): every socket call of either half is made under the lock,
                // so the mode is back to blocking before the other half can see it.
                self.socket.set_nonblocking(true)?;
                let outcome = op(&mut stream);
                self.socket.set_nonblocking(false)?;
                outcome
            };
            match outcome {
                Err(e) if ran_out(&e) => {
                    let Some(rest) = left().map_or(Some(READY_SLICE), |l| {
                        (!l.is_zero()).then(|| l.min(READY_SLICE))
                    }) else {
                        return Err(e);
                    };
                    match wait {
                        Wait::Readable => {
                            // The other half may make the socket non-blocking meanwhile: the
                            // peek then returns at once, and the loop goes round once more.
                            self.socket.set_read_timeout(socket_timeout(Some(rest)))?;
                            match self.socket.peek(&mut [0u8; 1]) {
                                Err(e)
                                    if !ran_out(&e) && e.kind() != io::ErrorKind::Interrupted =>
                                {
                                    return Err(e);
                                }
                                // Bytes, the peer's end (read under the lock next) or no bytes.
                                _ => {}
                            }
                        }
                        Wait::Writable => std::thread::sleep(rest.min(WRITE_RETRY)),
                    }
                }
                other => return other,
            }
        }
    }
}

impl<S: Read + Send> TimedRead for SharedHalf<S> {
    fn read_within(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        self.sliced(timeout, Wait::Readable, |s| s.read(buf))
    }
}

impl<S: Write + Send> TimedWrite for SharedHalf<S> {
    fn write_within(&mut self, buf: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
        self.sliced(timeout, Wait::Writable, |s| s.write(buf))
    }

    fn flush_within(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sliced(timeout, Wait::Writable, Write::flush)
    }
}

/// The limits in force on one half of a channel.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Limits {
    /// Longest wait of one call.
    pub(super) idle: Option<Duration>,
    /// Deadline of the frame in progress.
    pub(super) frame: Option<Instant>,
    /// The tighter of the handshake and session deadlines, and which it is.
    pub(super) deadline: Option<(Instant, Limit)>,
}

impl Limits {
    /// The wait allowed now and the limit that sets it; `Err(limit)` if a deadline has passed.
    fn wait(&self) -> Result<(Option<Duration>, Limit), Limit> {
        let now = Instant::now();
        let mut best = (self.idle, Limit::Idle);
        let mut tighten = |at: Instant, limit: Limit| {
            let left = at.checked_duration_since(now).ok_or(limit)?;
            if left.is_zero() {
                return Err(limit);
            }
            if best.0.is_none_or(|b| left < b) {
                best = (Some(left), limit);
            }
            Ok(())
        };
        if let Some(at) = self.frame {
            tighten(at, Limit::Frame)?;
        }
        if let Some((at, limit)) = self.deadline {
            tighten(at, limit)?;
        }
        Ok(best)
    }
}

/// A transport half under [`Limits`]; remembers which limit bounded its last wait.
pub(super) struct Paced<T: ?Sized> {
    pub(super) limits: Limits,
    pub(super) last: Limit,
    pub(super) inner: Box<T>,
}

impl<T: ?Sized> Paced<T> {
    pub(super) fn new(inner: Box<T>, idle: Option<Duration>) -> Self {
        Self {
            limits: Limits {
                idle,
                ..Limits::default()
            },
            last: Limit::Idle,
            inner,
        }
    }

    fn wait(&mut self) -> io::Result<Option<Duration>> {
        match self.limits.wait() {
            Ok((t, limit)) => {
                self.last = limit;
                Ok(t)
            }
            Err(limit) => {
                self.last = limit;
                Err(io::Error::from(io::ErrorKind::TimedOut))
            }
        }
    }
}

impl Read for Paced<dyn TimedRead> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = self.wait()?;
        self.inner.read_within(buf, t)
    }
}

impl Write for Paced<dyn TimedWrite> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = self.wait()?;
        self.inner.write_within(buf, t)
    }

    fn flush(&mut self) -> io::Result<()> {
        let t = self.wait()?;
        self.inner.flush_within(t)
    }
}
