//! Background I/O of a channel: a writer thread that takes whole frames from a queue bounded in
//! bytes and writes them under the send limits of [`super::pace`], and a reader thread that
//! reads frames ahead into a queue bounded in bytes, so that a party's computation overlaps
//! both its own sends and its peer's (a party that computes no longer stops reading, so the
//! peer's sends do not stall on a full TCP window).
//!
//! The two threads and the channel share one [`Shared`] state under one mutex (no I/O is done
//! under it) and one condition variable that every change of state signals.
//!
//! Bounds: a queue admits a frame while its bytes plus the frame's stay within
//! [`queue_bound`] (64 MiB, or twice the largest frame seen in that direction if larger), and
//! always into an empty queue, so any frame the channel accepts can pass and the memory held is
//! at most the bound (or one frame). The reader checks a frame's announced length against the
//! channel's maximum frame length, then waits for room, and only then allocates the body: a
//! hostile peer cannot make it allocate beyond the bound.

use std::collections::VecDeque;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::pace::{Limit, Paced, TimedRead, TimedWrite};
use super::{
    ChannelConfig, ChannelError, FRAME_HEADER_LEN, MAGIC, PROTOCOL_VERSION, WireError, limit_error,
};
use crate::wire::Reader;

/// Smallest byte bound of either queue: far above the bandwidth-delay product of any link a
/// scan is segmented over (1.25 MB at 1 Gbit/s and 10 ms), and above a whole flight of the
/// nonlinear protocols at the default chunk, so a party can queue a flight and compute on.
/// Re-exported as [`super::QUEUE_MIN_BYTES`] for memory budgets.
pub const QUEUE_MIN_BYTES: usize = 64 << 20;
/// Buffer size of the transport halves (the writer coalesces small frames into it).
pub(super) const BUFFER_LEN: usize = 1 << 20;
/// How long the reader waits for a frame's first byte before it looks whether the channel
/// closed: between frames it waits without limit (the consumer's receive holds the idle
/// timeout), in slices of this length.
const POLL: Duration = Duration::from_millis(100);

/// The byte bound of a queue whose largest frame so far is `largest` bytes.
pub(super) fn queue_bound(largest: usize) -> usize {
    QUEUE_MIN_BYTES.max(largest.saturating_mul(2))
}

/// A frame read ahead.
pub(super) enum Inbound {
    /// A whole frame.
    Frame {
        /// Its message kind.
        kind: u16,
        /// Its body.
        body: Vec<u8>,
    },
    /// A header announcing more than the channel's maximum frame length when it was read: the
    /// reader waits for [`State::permit`] (the channel may have raised its maximum since)
    /// before it allocates anything.
    Oversized {
        /// Its message kind.
        kind: u16,
        /// The announced body length.
        len: u64,
    },
}

/// State shared by the channel and its two threads.
#[derive(Default)]
pub(super) struct State {
    /// Frames (header and body) not yet written.
    pub(super) out: VecDeque<Vec<u8>>,
    /// Bytes queued or being written.
    pub(super) out_bytes: usize,
    /// The largest frame queued so far.
    pub(super) out_largest: usize,
    /// The writer's failure, reported at every later call.
    pub(super) writer_error: Option<ChannelError>,
    /// No more frames will be queued: the writer drains the queue and ends.
    pub(super) closing: bool,
    /// The session deadline, for the writer's waits.
    pub(super) session_deadline: Option<Instant>,
    /// Frames read ahead.
    pub(super) inbox: VecDeque<Inbound>,
    /// Body bytes in `inbox` (and of a frame the reader has room for and is reading).
    pub(super) in_bytes: usize,
    /// The largest frame read so far.
    pub(super) in_largest: usize,
    /// A frame's first byte has arrived and it is not yet in `inbox`: its own deadline bounds
    /// it, not the idle timeout.
    pub(super) frame_in_progress: bool,
    /// Why the reader stopped, reported once `inbox` is empty.
    pub(super) reader_end: Option<ChannelError>,
    /// The channel's answer to an [`Inbound::Oversized`] frame: read it (`true`) or stop.
    pub(super) permit: Option<bool>,
    /// The channel is gone: the reader stops.
    pub(super) stop: bool,
    /// The channel's maximum frame length.
    pub(super) max_frame_len: u64,
}

/// [`State`] with its condition variable.
#[derive(Default)]
pub(super) struct Shared {
    state: Mutex<State>,
    pub(super) changed: Condvar,
}

impl Shared {
    pub(super) fn new(max_frame_len: u64) -> Self {
        Self {
            state: Mutex::new(State {
                max_frame_len,
                ..State::default()
            }),
            changed: Condvar::new(),
        }
    }

    /// Locks the state (a thread that panicked under the lock left it consistent: every
    /// update is a few field writes).
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a change of state, at most `timeout` (`None`: without limit).
    pub(super) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        match timeout {
            Some(t) => {
                self.changed
                    .wait_timeout(guard, t)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner),
        }
    }
}

/// A copy of `e` (an error is reported at every call after it happened; an I/O error keeps
/// its kind and message).
pub(super) fn duplicate(e: &ChannelError) -> ChannelError {
    match e {
        ChannelError::Closed => ChannelError::Closed,
        ChannelError::Timeout(t) => ChannelError::Timeout(*t),
        ChannelError::TooSlow { min_rate, grace } => ChannelError::TooSlow {
            min_rate: *min_rate,
            grace: *grace,
        },
        ChannelError::Deadline(k) => ChannelError::Deadline(*k),
        ChannelError::Io(e) => ChannelError::Io(io::Error::new(e.kind(), e.to_string())),
        ChannelError::BadFrame(w) => ChannelError::BadFrame(w.clone()),
        ChannelError::VersionMismatch { expected, found } => ChannelError::VersionMismatch {
            expected: *expected,
            found: *found,
        },
        ChannelError::UnexpectedKind { expected, found } => ChannelError::UnexpectedKind {
            expected: *expected,
            found: *found,
        },
        ChannelError::FrameTooLarge { found, max } => ChannelError::FrameTooLarge {
            found: *found,
            max: *max,
        },
    }
}

/// Reports the error in `slot`: the original the first time (an I/O error keeps its inner
/// error, e.g. the TLS alert a caller classifies), a [`duplicate`] left for later calls.
pub(super) fn report(slot: &mut Option<ChannelError>) -> Option<ChannelError> {
    let e = slot.take()?;
    *slot = Some(duplicate(&e));
    Some(e)
}

/// The writer thread: writes queued frames, a batch at a time, until the channel closes and
/// the queue is empty or a write fails.
pub(super) fn run_writer(
    shared: Arc<Shared>,
    transport: Box<dyn TimedWrite>,
    config: ChannelConfig,
) {
    let mut writer =
        BufWriter::with_capacity(BUFFER_LEN, Paced::new(transport, config.read_timeout));
    loop {
        let mut state = shared.lock();
        while state.out.is_empty() && !state.closing {
            state = shared.wait(state, None);
        }
        if state.out.is_empty() {
            return;
        }
        let batch: Vec<Vec<u8>> = state.out.drain(..).collect();
        let deadline = state.session_deadline;
        drop(state);
        let total: usize = batch.iter().map(Vec::len).sum();
        // The batch gets the limits a flush of it had: the idle timeout (the peer may be
        // computing before it reads), then its length at the minimum rate.
        let limits = &mut writer.get_mut().limits;
        limits.frame = config.send_deadline(Instant::now(), total as u64);
        limits.deadline = deadline.map(|d| (d, Limit::Session));
        let outcome = batch
            .iter()
            .try_for_each(|frame| writer.write_all(frame))
            .and_then(|()| writer.flush());
        let error = outcome
            .err()
            .map(|e| limit_error(&config, e, writer.get_ref().last));
        let failed = error.is_some();
        let mut state = shared.lock();
        state.out_bytes -= total;
        if let Some(e) = error {
            state.writer_error = Some(e);
            state.out.clear();
            state.out_bytes = 0;
        }
        drop(state);
        shared.changed.notify_all();
        if failed {
            return;
        }
    }
}

/// Why the reader stops.
enum Stop {
    /// The channel is gone.
    Dropped,
    /// The transport or the peer failed; reported to the channel.
    Failed(ChannelError),
}

/// The reader thread: reads frames ahead until the channel is dropped or the transport fails.
pub(super) fn run_reader(
    shared: Arc<Shared>,
    transport: Box<dyn TimedRead>,
    config: ChannelConfig,
) {
    let mut reader =
        BufReader::with_capacity(BUFFER_LEN, Paced::new(transport, config.read_timeout));
    let stop = loop {
        match read_frame(&shared, &mut reader, &config) {
            Ok(()) => {}
            Err(stop) => break stop,
        }
    };
    let mut state = shared.lock();
    state.frame_in_progress = false;
    if let Stop::Failed(e) = stop {
        state.reader_end = Some(e);
    }
    drop(state);
    shared.changed.notify_all();
}

fn read_frame(
    shared: &Shared,
    reader: &mut BufReader<Paced<dyn TimedRead>>,
    config: &ChannelConfig,
) -> Result<(), Stop> {
    let fail = |reader: &BufReader<Paced<dyn TimedRead>>, e: io::Error| {
        Stop::Failed(limit_error(config, e, reader.get_ref().last))
    };
    let mut header = [0u8; FRAME_HEADER_LEN];
    // The first byte: without limit, in slices, looking between them whether the channel is
    // gone.
    let first = loop {
        if shared.lock().stop {
            return Err(Stop::Dropped);
        }
        {
            let limits = &mut reader.get_mut().limits;
            limits.idle = Some(POLL);
            limits.frame = None;
        }
        match reader.read(&mut header) {
            Ok(0) => return Err(Stop::Failed(ChannelError::Closed)),
            Ok(n) => break n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(fail(reader, e)),
        }
    };
    let began = Instant::now();
    shared.lock().frame_in_progress = true;
    {
        let limits = &mut reader.get_mut().limits;
        limits.idle = config.read_timeout;
        limits.frame = config.frame_deadline(began, FRAME_HEADER_LEN as u64);
    }
    reader
        .read_exact(&mut header[first..])
        .map_err(|e| fail(reader, e))?;
    let mut r = Reader::new(&header);
    let fields =
        (|| -> Result<_, WireError> { Ok((r.array::<4>()?, r.u16()?, r.u16()?, r.u64()?)) })();
    let (magic, version, kind, len) = fields.map_err(|e| Stop::Failed(e.into()))?;
    if magic != MAGIC {
        return Err(Stop::Failed(ChannelError::BadFrame(WireError::Invalid(
            "frame magic",
        ))));
    }
    if version != PROTOCOL_VERSION {
        return Err(Stop::Failed(ChannelError::VersionMismatch {
            expected: PROTOCOL_VERSION,
            found: version,
        }));
    }
    // Nothing is allocated for the body before its length passed the channel's maximum and
    // the queue has room for it.
    let mut state = shared.lock();
    if len > state.max_frame_len {
        state.inbox.push_back(Inbound::Oversized { kind, len });
        state.permit = None;
        shared.changed.notify_all();
        loop {
            if state.stop {
                return Err(Stop::Dropped);
            }
            match state.permit.take() {
                Some(true) => break,
                Some(false) => return Err(Stop::Dropped),
                None => state = shared.wait(state, None),
            }
        }
    }
    // The channel's checks keep `len` within its maximum frame length, itself an allocation
    // the caller agreed to.
    let len = usize::try_from(len).map_err(|_| {
        Stop::Failed(ChannelError::FrameTooLarge {
            found: len,
            max: usize::MAX as u64,
        })
    })?;
    let bound = queue_bound(state.in_largest.max(len));
    while state.in_bytes > 0 && state.in_bytes + len > bound {
        if state.stop {
            return Err(Stop::Dropped);
        }
        state = shared.wait(state, None);
    }
    state.in_bytes += len;
    state.in_largest = state.in_largest.max(len);
    drop(state);
    // The body's deadline runs from now: while the queue was full the reader did not read,
    // and the peer's bytes waited in the kernel, not on the link.
    reader.get_mut().limits.frame =
        config.frame_deadline(Instant::now(), (FRAME_HEADER_LEN + len) as u64);
    let mut body = vec![0u8; len];
    if let Err(e) = reader.read_exact(&mut body) {
        let stop = fail(reader, e);
        shared.lock().in_bytes -= len;
        return Err(stop);
    }
    let mut state = shared.lock();
    state.inbox.push_back(Inbound::Frame { kind, body });
    state.frame_in_progress = false;
    drop(state);
    shared.changed.notify_all();
    Ok(())
}
