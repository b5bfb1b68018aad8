use super::pump::BUFFER_LEN;
use super::*;
use std::net::TcpListener;
use std::thread;

fn tcp_pair(config: ChannelConfig) -> (Channel, Channel) {
    Channel::loopback_pair(config).unwrap()
}

fn pairs(config: ChannelConfig) -> Vec<(Channel, Channel)> {
    vec![Channel::in_memory_pair(config), tcp_pair(config)]
}

#[test]
fn frames_arrive_intact_and_are_metered_on_both_sides() {
    for (mut a, mut b) in pairs(ChannelConfig::default()) {
        let peer = thread::spawn(move || {
            b.set_label("echo");
            let x = b.recv(7, 1 << 22).unwrap();
            let y = b.recv(8, 1 << 22).unwrap();
            b.send(9, &[x, y].concat()).unwrap();
            b.flush().unwrap();
            b
        });
        a.set_label("echo");
        a.send(7, &[1; 1000]).unwrap();
        a.send(8, &[2; 3_000_000][..1_500_000]).unwrap();
        let back = a.recv(9, 1 << 22).unwrap();
        assert_eq!(back.len(), 1_501_000);
        let b = peer.join().unwrap();
        let (ta, tb) = (a.meter().get("echo"), b.meter().get("echo"));
        assert_eq!(ta.bytes_sent, tb.bytes_received);
        assert_eq!(ta.bytes_received, tb.bytes_sent);
        assert_eq!((ta.messages_sent, ta.flights, tb.flights), (2, 1, 1));
        assert_eq!(ta.bytes_sent, 1_501_000 + 2 * FRAME_HEADER_LEN as u64);
    }
}

/// A hand-made frame header of kind 3 announcing a body of `len` bytes.
fn header_announcing(len: u64) -> Vec<u8> {
    let mut header = Vec::from(MAGIC);
    header.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    header.extend_from_slice(&3u16.to_le_bytes());
    header.extend_from_slice(&len.to_le_bytes());
    header
}

#[test]
fn oversized_frame_is_rejected_before_allocation() {
    for (mut a, mut b) in pairs(ChannelConfig::default()) {
        // A hand-made header announcing 2^40 bytes.
        let header = header_announcing(1u64 << 40);
        a.send_raw(&header).unwrap();
        a.flush().unwrap();
        assert!(matches!(
            b.recv(3, usize::MAX),
            Err(ChannelError::FrameTooLarge { found, .. }) if found == 1 << 40
        ));
    }
}

#[test]
fn wrong_kind_version_and_magic_are_typed_errors() {
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    a.send(1, b"x").unwrap();
    a.flush().unwrap();
    assert!(matches!(
        b.recv(2, 10),
        Err(ChannelError::UnexpectedKind {
            expected: 2,
            found: 1
        })
    ));
    // A failed receive leaves the stream where it failed: the channel is then unusable, so the
    // remaining checks use a fresh pair.
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    let mut bad = Vec::from(*b"BUNT");
    bad.extend_from_slice(&99u16.to_le_bytes());
    bad.extend_from_slice(&[0; 10]);
    a.send_raw(&bad).unwrap();
    a.flush().unwrap();
    assert!(matches!(
        b.recv(0, 10),
        Err(ChannelError::VersionMismatch { found: 99, .. })
    ));
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    a.send_raw(&[0xAB; 16]).unwrap();
    a.flush().unwrap();
    assert!(matches!(b.recv(0, 10), Err(ChannelError::BadFrame(_))));
}

#[test]
fn silent_peer_times_out_and_closed_peer_is_reported() {
    let config = ChannelConfig {
        read_timeout: Some(Duration::from_millis(200)),
        ..ChannelConfig::default()
    };
    for (mut a, b) in pairs(config) {
        let start = std::time::Instant::now();
        assert!(matches!(a.recv(1, 10), Err(ChannelError::Timeout(_))));
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(b);
        assert!(matches!(a.recv(1, 10), Err(ChannelError::Closed)));
    }
}

#[test]
fn peer_that_stops_reading_makes_writes_time_out_instead_of_blocking_forever() {
    let config = ChannelConfig {
        read_timeout: Some(Duration::from_millis(300)),
        ..ChannelConfig::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The peer accepts and then never reads: the socket buffers fill and a write must give up.
    // (It lets go after 10 s at the latest, so a regression fails with `Closed`, not a hang.)
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let _ = wait.recv_timeout(Duration::from_secs(10));
        drop(stream);
    });
    let mut a = Channel::tcp(std::net::TcpStream::connect(addr).unwrap(), config).unwrap();
    let body = vec![7u8; 1 << 20];
    let start = std::time::Instant::now();
    // Sends are queued (up to the writer's bound of bytes) while the writer thread waits for
    // the peer; its timeout is reported at a later send or flush, within the idle timeout of
    // the moment the kernel's and the queue's buffers are full.
    let outcome = (0..4 * pump::QUEUE_MIN_BYTES / body.len())
        .try_for_each(|_| a.send(1, &body).and_then(|()| a.flush()));
    assert!(
        matches!(outcome, Err(ChannelError::Timeout(_))),
        "{outcome:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // The failure stays: every later call reports it.
    assert!(matches!(a.flush(), Err(ChannelError::Timeout(_))));
    assert!(matches!(a.recv(1, 10), Err(ChannelError::Timeout(_))));
    done.send(()).unwrap();
    peer.join().unwrap();
}

mod fault_proxy {
    use super::*;
    use crate::channel::fault::{Direction, Fault, FaultProxy, Trigger};
    use std::time::Instant;

    const TIMEOUT: Duration = Duration::from_millis(400);

    /// A two-party exchange through a proxy: the connecting party sends frames of kinds
    /// 1..=4 and expects each echoed back by the target with kind + 0x10.
    fn exchange(plan: Option<(Trigger, Fault)>) -> (Vec<Result<(), ChannelError>>, Duration) {
        let config = ChannelConfig {
            read_timeout: Some(TIMEOUT),
            ..ChannelConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = FaultProxy::spawn(listener.local_addr().unwrap(), plan).unwrap();
        let target = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut ch = Channel::tcp(stream, config).unwrap();
            (1..=4u16).try_for_each(|kind| {
                let body = ch.recv(kind, 1 << 20)?;
                ch.send(kind + 0x10, &body)?;
                ch.flush()
            })
        });
        let start = Instant::now();
        let mut ch = Channel::tcp(TcpStream::connect(proxy.addr()).unwrap(), config).unwrap();
        let client = (1..=4u16).try_for_each(|kind| {
            let body = vec![kind as u8; 1000 * usize::from(kind)];
            ch.send(kind, &body)?;
            let echo = ch.recv(kind + 0x10, 1 << 20)?;
            assert_eq!(echo, body, "a faithful frame must arrive unchanged");
            Ok(())
        });
        drop(ch);
        let target = target.join().unwrap();
        let elapsed = start.elapsed();
        proxy.join().unwrap();
        (vec![client, target], elapsed)
    }

    #[test]
    fn faithful_proxy_forwards_every_frame_unchanged() {
        let (outcomes, _) = exchange(None);
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    }

    #[test]
    fn disconnect_and_silence_end_both_parties_with_errors_within_the_timeout() {
        for fault in [Fault::Disconnect, Fault::Silence] {
            for direction in [Direction::ToTarget, Direction::FromTarget] {
                let trigger = Trigger {
                    kinds: 2..=0x12,
                    skip: 1,
                    direction: Some(direction),
                };
                let (outcomes, elapsed) = exchange(Some((trigger, fault)));
                for outcome in &outcomes {
                    assert!(
                        matches!(
                            outcome,
                            Err(ChannelError::Closed | ChannelError::Timeout(_))
                        ),
                        "{fault:?} {direction:?}: {outcomes:?}"
                    );
                }
                assert!(elapsed < 6 * TIMEOUT, "{fault:?} took {elapsed:?}");
            }
        }
    }

    /// Sends frames `(2, [5; 64])`, `(3, [5; 64])`, `(4, [6; 10])` through a proxy that
    /// applies `fault` to the first frame of kind 3; returns the three bodies received and the
    /// proxy's log.
    fn three_frames_through(fault: Fault) -> (Vec<Vec<u8>>, crate::channel::fault::ProxyLog) {
        let trigger = Trigger {
            kinds: 3..=3,
            skip: 0,
            direction: None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy =
            FaultProxy::spawn(listener.local_addr().unwrap(), Some((trigger, fault))).unwrap();
        let target = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut ch = Channel::tcp(stream, ChannelConfig::default()).unwrap();
            (2..=4u16)
                .map(|kind| ch.recv(kind, 100).unwrap())
                .collect::<Vec<_>>()
        });
        let mut ch = Channel::tcp(
            TcpStream::connect(proxy.addr()).unwrap(),
            ChannelConfig::default(),
        )
        .unwrap();
        ch.send(2, &[5; 64]).unwrap();
        ch.send(3, &[5; 64]).unwrap();
        ch.send(4, &[6; 10]).unwrap();
        ch.flush().unwrap();
        let bodies = target.join().unwrap();
        drop(ch);
        (bodies, proxy.join().unwrap())
    }

    #[test]
    fn corrupted_body_arrives_with_its_length_but_other_bytes() {
        let (bodies, log) = three_frames_through(Fault::CorruptBody);
        assert_eq!(bodies[0], [5; 64]);
        assert_eq!(bodies[1].len(), 64);
        assert_ne!(bodies[1], [5; 64]);
        assert_eq!(bodies[2], [6; 10]);
        assert_eq!(log.fired_at.map(|r| r.kind), Some(3));
        assert_eq!(log.frames.len(), 3);
    }

    #[test]
    fn garbage_body_arrives_with_another_length_and_the_stream_stays_in_step() {
        let (bodies, log) = three_frames_through(Fault::GarbageBody);
        assert_eq!(bodies[0], [5; 64]);
        assert_eq!(bodies[1].len(), 33);
        assert_eq!(bodies[2], [6; 10]);
        assert_eq!(log.fired_at.map(|r| r.kind), Some(3));
    }
}

#[test]
fn exact_frames_blocks_and_decoders_reject_short_bodies() {
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    // Exactly the announced length, or a typed wire error.
    a.send(7, &[1, 2, 3]).unwrap();
    a.send(7, &[1, 2]).unwrap();
    a.flush().unwrap();
    assert_eq!(b.recv_exact(7, 3).unwrap(), vec![1, 2, 3]);
    assert!(matches!(
        b.recv_exact(7, 3),
        Err(crate::Error::Wire(WireError::LengthMismatch { .. }))
    ));
    // Blocks split over frames of 20 bytes come back whole; a short last frame is rejected.
    let blocks = [1u128, u128::MAX, 1 << 77];
    a.send_blocks(8, &blocks, 20).unwrap();
    a.flush().unwrap();
    assert_eq!(a.meter().get("unlabelled").messages_sent, 2 + 3);
    assert_eq!(b.recv_blocks(8, 3, 20).unwrap(), blocks);
    a.send_frames(8, &[0; 30], 20).unwrap();
    a.flush().unwrap();
    assert!(b.recv_frames(8, 31, 20).is_err());
    // A decoder sees the whole body and trailing bytes are rejected.
    a.send(9, &[5, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    a.send(9, &[5, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    a.flush().unwrap();
    assert!(matches!(
        b.recv_with(9, 9, |r| r.u64()),
        Err(crate::Error::Wire(WireError::TrailingBytes { count: 1 }))
    ));
    assert_eq!(b.recv_with(9, 9, |r| r.u64()).unwrap(), 5);
}

#[test]
fn a_scoped_label_is_restored_on_drop_even_after_an_error() {
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    a.set_label("outer");
    {
        let mut inner = a.labelled("inner");
        inner.send(1, &[0; 4]).unwrap();
        assert_eq!(inner.label(), "inner");
    }
    assert_eq!(a.label(), "outer");
    a.send(1, &[0; 4]).unwrap();
    a.flush().unwrap();
    let failing = |ch: &mut Channel| -> Result<(), crate::Error> {
        let mut ch = ch.labelled("failing");
        ch.recv_exact(1, 5)?;
        Ok(())
    };
    b.set_label("outer");
    assert!(failing(&mut b).is_err());
    assert_eq!(b.label(), "outer");
    assert_eq!(a.meter().get("inner").messages_sent, 1);
    assert_eq!(a.meter().get("outer").messages_sent, 1);
    assert_eq!(b.meter().get("failing").messages_received, 1);
}

/// Short limits for the deadline tests.
fn paced_config() -> ChannelConfig {
    ChannelConfig {
        read_timeout: Some(Duration::from_secs(5)),
        min_rate: 1 << 20,
        frame_grace: Duration::from_millis(300),
        ..ChannelConfig::default()
    }
}

#[test]
fn a_peer_that_trickles_a_frame_is_cut_off_at_the_frame_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dripper = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut frame = Vec::from(MAGIC);
        frame.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        frame.extend_from_slice(&1u16.to_le_bytes());
        frame.extend_from_slice(&8u64.to_le_bytes());
        frame.extend_from_slice(&[0; 8]);
        // One byte every 100 ms: each far within the idle timeout, the frame far beyond its
        // deadline.
        for b in frame {
            if s.write_all(&[b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let (stream, _) = listener.accept().unwrap();
    let mut ch = Channel::tcp(stream, paced_config()).unwrap();
    let start = std::time::Instant::now();
    let outcome = ch.recv(1, 100);
    assert!(
        matches!(outcome, Err(ChannelError::TooSlow { .. })),
        "{outcome:?}"
    );
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1500), "cut off after {took:?}");
    dripper.join().unwrap();
}

#[test]
fn handshake_deadline_holds_until_the_first_send_and_session_deadline_always() {
    for (mut a, mut b) in pairs(paced_config()) {
        // A silent peer: the handshake deadline ends the wait long before the idle timeout.
        a.set_handshake_deadline(Some(std::time::Instant::now() + Duration::from_millis(200)));
        let start = std::time::Instant::now();
        assert!(matches!(
            a.recv(1, 10),
            Err(ChannelError::Deadline(DeadlineKind::Handshake))
        ));
        assert!(start.elapsed() < Duration::from_secs(2));
        // Once this side answers, the handshake deadline no longer applies.
        let (mut a2, mut b2) = Channel::in_memory_pair(paced_config());
        a2.set_handshake_deadline(Some(std::time::Instant::now() + Duration::from_millis(200)));
        b2.send(1, b"hello").unwrap();
        b2.flush().unwrap();
        assert_eq!(a2.recv(1, 10).unwrap(), b"hello");
        a2.send(2, b"reply").unwrap();
        thread::sleep(Duration::from_millis(300));
        b2.send(3, b"later").unwrap();
        b2.flush().unwrap();
        assert_eq!(a2.recv(3, 10).unwrap(), b"later");
        // The session deadline bounds every wait.
        b.set_deadline(Some(std::time::Instant::now() + Duration::from_millis(200)));
        assert!(matches!(
            b.recv(1, 10),
            Err(ChannelError::Deadline(DeadlineKind::Session))
        ));
        assert!(matches!(
            b.send(1, &[0; 10]).and_then(|()| b.flush()),
            Err(ChannelError::Deadline(DeadlineKind::Session))
        ));
    }
}

#[test]
fn a_sender_that_computes_after_a_send_never_leaves_half_a_frame_behind() {
    // Frames that do not fit in the rest of the buffer are written whole at once, so a sender
    // that queues one and then computes for longer than the grace leaves the receiver either
    // nothing (it waits under the idle timeout) or whole frames.
    for (mut a, mut b) in pairs(paced_config()) {
        let peer = thread::spawn(move || {
            let mut got = Vec::new();
            for kind in 1..=3u16 {
                got.push(b.recv(kind, 1 << 21).map(|v| v.len()));
            }
            got
        });
        a.send(1, &vec![1; BUFFER_LEN - 100]).unwrap();
        a.send(2, &vec![2; 1000]).unwrap();
        thread::sleep(Duration::from_millis(800));
        a.send(3, &[3; 10]).unwrap();
        a.flush().unwrap();
        let got = peer.join().unwrap();
        assert_eq!(
            got.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [BUFFER_LEN - 100, 1000, 10]
        );
    }
}

#[test]
fn a_send_waits_out_a_peer_that_computes_before_it_reads() {
    // The grace and rate alone would allow 0.3 s + 8 MiB at 64 MiB/s; the peer computes for
    // 1 s first, within the idle timeout, so the send must still succeed.
    let config = ChannelConfig {
        min_rate: 64 << 20,
        ..paced_config()
    };
    let (mut a, mut b) = tcp_pair(config);
    let peer = thread::spawn(move || {
        thread::sleep(Duration::from_secs(1));
        b.recv(1, 16 << 20).map(|v| v.len())
    });
    let body = vec![9u8; 8 << 20];
    a.send(1, &body).unwrap();
    a.flush().unwrap();
    assert_eq!(peer.join().unwrap().unwrap(), 8 << 20);
}

#[test]
fn a_writer_failure_surfaces_typed_at_the_next_call_and_stays() {
    // The peer goes away: the writer thread's next write fails, and the sender learns it at
    // its next send, flush or receive, as a typed error, never a panic.
    for (mut a, b) in pairs(ChannelConfig::default()) {
        drop(b);
        let start = std::time::Instant::now();
        let outcome = loop {
            if let Err(e) = a.send(1, &[0; 1 << 16]).and_then(|()| a.flush()) {
                break e;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no error reported ({})",
                a.shared.lock().out_bytes
            );
            thread::sleep(Duration::from_millis(5));
        };
        assert!(matches!(outcome, ChannelError::Closed), "{outcome:?}");
        assert!(matches!(a.send(1, b"x"), Err(ChannelError::Closed)));
        assert!(matches!(a.flush(), Err(ChannelError::Closed)));
        assert!(matches!(a.recv(1, 10), Err(ChannelError::Closed)));
        assert!(matches!(a.close(), Err(ChannelError::Closed)));
    }
}

#[test]
fn the_reader_refuses_an_oversized_frame_before_allocating_it() {
    for (mut a, mut b) in pairs(ChannelConfig::default()) {
        // A header announcing 2^40 bytes, then nothing: the reader must not allocate (or wait
        // for) the body, only park the header for the receive to refuse.
        let header = header_announcing(1u64 << 40);
        a.send_raw(&header).unwrap();
        let start = std::time::Instant::now();
        loop {
            let state = b.shared.lock();
            if !state.inbox.is_empty() {
                assert!(matches!(
                    state.inbox.front(),
                    Some(pump::Inbound::Oversized { len, .. }) if *len == 1 << 40
                ));
                assert_eq!(
                    state.in_bytes, 0,
                    "nothing counted (or allocated) for the body"
                );
                break;
            }
            drop(state);
            assert!(start.elapsed() < Duration::from_secs(5));
            thread::sleep(Duration::from_millis(5));
        }
        assert!(matches!(
            b.recv(3, usize::MAX),
            Err(ChannelError::FrameTooLarge { found, .. }) if found == 1 << 40
        ));
    }
}

#[test]
fn a_frame_above_the_maximum_passes_once_the_receiver_raised_it() {
    // The reader may see a large frame before this side's protocol raised its maximum; the
    // frame waits for the receive, which then decides with the raised maximum.
    let config = ChannelConfig {
        max_frame_len: 1 << 10,
        ..ChannelConfig::default()
    };
    for (mut a, mut b) in pairs(config) {
        a.raise_max_frame_len(1 << 20);
        a.send(5, &[4; 5000]).unwrap();
        thread::sleep(Duration::from_millis(50));
        b.raise_max_frame_len(1 << 20);
        assert_eq!(b.recv(5, 1 << 20).unwrap(), [4; 5000]);
        // ... and a receive's own bound still refuses it.
        a.send(5, &[4; 5000]).unwrap();
        assert!(matches!(
            b.recv(5, 4999),
            Err(ChannelError::FrameTooLarge {
                found: 5000,
                max: 4999
            })
        ));
    }
}

#[test]
fn full_queues_hold_the_sender_back_instead_of_growing() {
    // The receiver does not receive: its reader reads ahead up to its bound, the kernel
    // buffers some more, the sender's queue fills up to its bound, and then sends block.
    let (mut a, mut b) = tcp_pair(ChannelConfig::default());
    let frame = 1 << 20;
    let total = 4 * pump::QUEUE_MIN_BYTES / frame;
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<usize>();
    let sender = thread::spawn(move || {
        let body = vec![1u8; frame];
        for i in 0..total {
            a.send(1, &body).unwrap();
            sent_tx.send(i + 1).unwrap();
            let state = a.shared.lock();
            // The exported bound (what memory budgets count) holds for frames of this size.
            assert!(state.out_bytes as u64 <= queue_bound(frame as u64));
        }
        a
    });
    thread::sleep(Duration::from_secs(2));
    let sent = sent_rx.try_iter().last().unwrap_or(0);
    {
        let state = b.shared.lock();
        assert!(
            state.in_bytes as u64 <= queue_bound(frame as u64),
            "{}",
            state.in_bytes
        );
        assert!(state.in_bytes > 0, "the reader reads ahead");
    }
    assert!(
        sent < total,
        "all {total} frames were accepted while nobody received"
    );
    // Receiving lets everything through.
    for _ in 0..total {
        assert_eq!(b.recv(1, frame).unwrap().len(), frame);
    }
    let a = sender.join().unwrap();
    assert_eq!(a.meter().total().messages_sent, total as u64);
}

#[test]
fn the_exported_bounds_are_the_pumps() {
    // At the default frame bound: 128 MiB per queue, two queues and two 1 MiB buffers.
    let max = DEFAULT_MAX_FRAME_LEN;
    assert_eq!(queue_bound(max), 2 * (max + FRAME_HEADER_LEN as u64));
    assert_eq!(
        io_bytes_bound(max),
        4 * (max + FRAME_HEADER_LEN as u64) + 2 * BUFFER_LEN as u64
    );
    // Small frames: the queues' floor.
    assert_eq!(queue_bound(1000), QUEUE_MIN_BYTES as u64);
    assert_eq!(
        queue_bound(1000),
        pump::queue_bound(1000 + FRAME_HEADER_LEN) as u64
    );
    // Never overflows.
    assert!(io_bytes_bound(u64::MAX) >= queue_bound(u64::MAX));
}

#[test]
fn both_ends_can_send_a_large_frame_before_either_receives() {
    // With synchronous writes beyond the kernel's buffers, each end would block in its send
    // waiting for the other to read: a deadlock (here, a timeout). The writer and reader
    // threads let both frames pass.
    let config = ChannelConfig {
        read_timeout: Some(Duration::from_secs(5)),
        ..ChannelConfig::default()
    };
    for (mut a, mut b) in pairs(config) {
        let len = 32 << 20;
        let peer = thread::spawn(move || {
            b.send(2, &vec![2u8; len])?;
            b.flush()?;
            let got = b.recv(1, len)?;
            Ok::<_, ChannelError>((b, got))
        });
        let start = std::time::Instant::now();
        a.send(1, &vec![1u8; len]).unwrap();
        a.flush().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the send waited for the peer"
        );
        let got = a.recv(2, len).unwrap();
        let (_b, theirs) = peer.join().unwrap().unwrap();
        assert_eq!(got, vec![2u8; len]);
        assert_eq!(theirs, vec![1u8; len]);
    }
}

/// Two ends of a loopback connection whose byte streams are shared by the reader and writer
/// threads of each end, as a TLS session is (`Channel::over_stream`, here over the TCP stream
/// itself).
fn shared_stream_pair(config: ChannelConfig) -> (Channel, Channel) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let connecting = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepting, _) = listener.accept().unwrap();
    let end = |s: TcpStream| {
        let socket = s.try_clone().unwrap();
        Channel::over_stream(s, &socket, config).unwrap()
    };
    (end(accepting), end(connecting))
}

#[test]
fn a_shared_stream_carries_both_directions_at_once_and_many_small_flights() {
    // Each end's reader waits for the peer while its writer has frames larger than the
    // kernel's buffers to send: a half that kept the stream while it waited would stall both.
    let config = ChannelConfig {
        read_timeout: Some(Duration::from_secs(10)),
        ..ChannelConfig::default()
    };
    let (mut a, mut b) = shared_stream_pair(config);
    let len = 16 << 20;
    let rounds = 200;
    let peer = thread::spawn(move || {
        b.send(2, &vec![2u8; len])?;
        let got = b.recv(1, len)?;
        for i in 0..rounds {
            let x = b.recv(3, 8)?;
            assert_eq!(x, (i as u64).to_le_bytes());
            b.send(4, &x)?;
        }
        b.flush()?;
        Ok::<_, ChannelError>(got)
    });
    a.send(1, &vec![1u8; len]).unwrap();
    assert_eq!(a.recv(2, len).unwrap(), vec![2u8; len]);
    let t = std::time::Instant::now();
    for i in 0..rounds {
        a.send(3, &(i as u64).to_le_bytes()).unwrap();
        assert_eq!(a.recv(4, 8).unwrap(), (i as u64).to_le_bytes());
    }
    // Over plain TCP these take about 10 ms; with the stream held in timed slices (a socket
    // timeout rounds up to the kernel's tick) a queued frame waited for the reader's slice to
    // end: 3.2 s.
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "{rounds} round trips took {:?}",
        t.elapsed()
    );
    assert_eq!(peer.join().unwrap().unwrap(), vec![1u8; len]);
}
