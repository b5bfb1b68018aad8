//! A frame-aware TCP proxy that injects faults between the two parties: it forwards one
//! connection to a target and, at a chosen frame, disconnects both sides, falls silent, or
//! replaces the frame's body with random bytes.
//!
//! Fault-tolerance tests put it between a client and a server to show that every building
//! block ends in a typed error within the read timeout (no hang, no panic), and operators can
//! use it to rehearse broken networks. It parses only the frame header ([`super::MAGIC`],
//! version, kind, length) and streams bodies in bounded chunks, so it never holds a whole
//! frame; what it forwards is otherwise byte for byte what it received.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::FRAME_HEADER_LEN;

/// Which way a frame travels through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the party that connected to the proxy to the target.
    ToTarget,
    /// From the target back to the connecting party.
    FromTarget,
}

/// What happens when the trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Both connections are shut down before the triggering frame is forwarded.
    Disconnect,
    /// Nothing more is forwarded in either direction, but both connections stay open, as with
    /// a peer that hangs; they close once both parties have closed theirs or after
    /// [`SILENCE_LIMIT`].
    Silence,
    /// The triggering frame's body is replaced by pseudo-random bytes of the same length (the
    /// header is kept), and forwarding goes on. (Such bytes may well be a valid message: a
    /// ciphertext is uniformly random bytes of its length.)
    CorruptBody,
    /// The triggering frame's body is replaced by `len / 2 + 1` pseudo-random bytes (the
    /// header's length rewritten to match), and forwarding goes on: a message of the wrong
    /// shape.
    GarbageBody,
    /// The triggering frame is forwarded one byte per interval, as by a peer that trickles
    /// bytes to hold a connection; once the receiver gives up (or after [`SILENCE_LIMIT`])
    /// both connections are shut down.
    Trickle(Duration),
}

/// When the fault fires: at the `skip`-th (from 0) frame whose kind is in `kinds`, travelling
/// in `direction` (either way if `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Message kinds that count.
    pub kinds: RangeInclusive<u16>,
    /// How many counting frames pass untouched first.
    pub skip: usize,
    /// Only frames in this direction count, if given.
    pub direction: Option<Direction>,
}

/// One forwarded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    /// Its direction.
    pub direction: Direction,
    /// Its message kind.
    pub kind: u16,
    /// Its body length.
    pub len: u64,
}

/// What the proxy saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyLog {
    /// Frames in the order they arrived (the first [`MAX_RECORDS`]).
    pub frames: Vec<FrameRecord>,
    /// The frame the fault fired at, if it did.
    pub fired_at: Option<FrameRecord>,
}

/// Frames recorded at most.
pub const MAX_RECORDS: usize = 1 << 20;
/// Longest a silenced connection is held open.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(120);
/// Body bytes copied per read.
const CHUNK: usize = 1 << 16;

/// A proxy for one connection, running on its own threads.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    handle: JoinHandle<io::Result<ProxyLog>>,
}

struct Shared {
    plan: Option<(Trigger, Fault)>,
    counted: usize,
    log: ProxyLog,
}

impl FaultProxy {
    /// Listens on a free loopback port; the first connection to it is forwarded to `target`
    /// with `plan` applied (none: a faithful proxy that only records frames).
    ///
    /// # Errors
    /// I/O errors of binding the listener.
    pub fn spawn(target: SocketAddr, plan: Option<(Trigger, Fault)>) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let handle = thread::spawn(move || run(&listener, target, plan));
        Ok(Self { addr, handle })
    }

    /// The address parties connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until both directions have ended and returns what the proxy saw.
    ///
    /// # Errors
    /// I/O errors of accepting or connecting, or [`io::ErrorKind::Other`] if a proxy thread
    /// panicked.
    pub fn join(self) -> io::Result<ProxyLog> {
        self.handle
            .join()
            .map_err(|_| io::Error::other("fault proxy thread panicked"))?
    }
}

fn run(
    listener: &TcpListener,
    target: SocketAddr,
    plan: Option<(Trigger, Fault)>,
) -> io::Result<ProxyLog> {
    let (client, _) = listener.accept()?;
    let server = TcpStream::connect(target)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let shared = Arc::new(Mutex::new(Shared {
        plan,
        counted: 0,
        log: ProxyLog::default(),
    }));
    let silenced = Arc::new(AtomicBool::new(false));
    let pumps = [
        (
            client.try_clone()?,
            server.try_clone()?,
            Direction::ToTarget,
        ),
        (
            server.try_clone()?,
            client.try_clone()?,
            Direction::FromTarget,
        ),
    ]
    .map(|(from, to, direction)| {
        let (shared, silenced) = (Arc::clone(&shared), Arc::clone(&silenced));
        thread::spawn(move || pump(from, to, direction, &shared, &silenced))
    });
    for pump in pumps {
        // A pump ends on EOF or error of its own stream; either is the parties' business.
        let _ = pump.join();
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let log = std::mem::take(&mut shared.lock().map_err(|_| poisoned())?.log);
    Ok(log)
}

fn poisoned() -> io::Error {
    io::Error::other("fault proxy state poisoned")
}

/// Forwards frames from `from` to `to` until EOF or a fault.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    direction: Direction,
    shared: &Mutex<Shared>,
    silenced: &AtomicBool,
) -> io::Result<()> {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15 ^ direction as u64);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut header = [0u8; FRAME_HEADER_LEN];
        if let Err(e) = from.read_exact(&mut header) {
            let _ = to.shutdown(Shutdown::Write);
            return Err(e);
        }
        if silenced.load(Ordering::SeqCst) {
            return hold_silent(&from, &to);
        }
        let kind = u16::from_le_bytes([header[6], header[7]]);
        let len = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let record = FrameRecord {
            direction,
            kind,
            len,
        };
        let fault = {
            let mut s = shared.lock().map_err(|_| poisoned())?;
            if s.log.frames.len() < MAX_RECORDS {
                s.log.frames.push(record);
            }
            let fires = match &s.plan {
                Some((t, _)) if s.log.fired_at.is_none() => {
                    let counts =
                        t.kinds.contains(&kind) && t.direction.is_none_or(|d| d == direction);
                    let fires = counts && s.counted == t.skip;
                    s.counted += usize::from(counts);
                    fires
                }
                _ => false,
            };
            if fires {
                s.log.fired_at = Some(record);
            }
            fires.then(|| s.plan.as_ref().map(|(_, f)| *f)).flatten()
        };
        match fault {
            Some(Fault::Disconnect) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Fault::Silence) => {
                silenced.store(true, Ordering::SeqCst);
                return hold_silent(&from, &to);
            }
            Some(Fault::GarbageBody) => {
                let garbage: Vec<u8> = (0..len / 2 + 1).map(|_| noise.next_byte()).collect();
                header[8..16].copy_from_slice(&(garbage.len() as u64).to_le_bytes());
                to.write_all(&header)?;
                to.write_all(&garbage)?;
                skip_body(&mut from, len, &mut buf)?;
                continue;
            }
            Some(Fault::Trickle(every)) => {
                trickle(&mut from, &to, &header, len, every);
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Fault::CorruptBody) | None => {}
        }
        let corrupt = fault == Some(Fault::CorruptBody);
        to.write_all(&header)?;
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            from.read_exact(&mut buf[..n])?;
            if corrupt {
                buf[..n].iter_mut().for_each(|b| *b = noise.next_byte());
            }
            to.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
}

/// Forwards `header` and a body of `len` bytes one byte every `every`, until a write fails
/// (the receiver gave up) or [`SILENCE_LIMIT`] passes.
fn trickle(from: &mut TcpStream, mut to: &TcpStream, header: &[u8], len: u64, every: Duration) {
    let start = Instant::now();
    let mut body = io::BufReader::new(from.take(len)).bytes();
    let mut next = header.iter().copied().map(Ok).chain(&mut body);
    while start.elapsed() < SILENCE_LIMIT {
        let Some(Ok(byte)) = next.next() else {
            return;
        };
        thread::sleep(every);
        if to.write_all(&[byte]).and_then(|()| to.flush()).is_err() {
            return;
        }
    }
}

/// Reads and drops a body of `len` bytes.
fn skip_body(from: &mut TcpStream, len: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        from.read_exact(&mut buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Keeps both streams open but forwards nothing, until the party on `from` closes its side
/// (its read timeout fired) or [`SILENCE_LIMIT`] passes.
fn hold_silent(from: &TcpStream, to: &TcpStream) -> io::Result<()> {
    let start = Instant::now();
    let mut sink = [0u8; 4096];
    from.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut reader = from;
    while start.elapsed() < SILENCE_LIMIT {
        match reader.read(&mut sink) {
            Ok(0) => break,
            // Bytes the party still sends are swallowed: nothing reaches its peer any more.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
    Ok(())
}

/// xorshift64: corruption needs arbitrary bytes, not secrecy.
struct Noise(u64);

impl Noise {
    fn next_byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u8
    }
}
