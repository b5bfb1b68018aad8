//! Faults between the parties, over TCP through a frame-aware proxy
//! ([`bunet_crypto::channel::fault`]): the peer disconnects or stops answering in the middle of
//! every kind of building block, or sends random bytes in place of a message. Each party must
//! end with a typed error (never a panic) within the read timeout — no hang.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bunet_crypto::channel::fault::{Direction, Fault, FaultProxy, ProxyLog, Trigger};
use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::quant::QuantModel;
use bunet_unet::secure::{Client, Preset, SecureError, Server, SessionConfig};
use bunet_unet::synthetic::smooth_image;
use bunet_unet::{Tensor, Weights};

/// Long enough for the slowest honest gap between two messages of these tiny runs on a loaded
/// 2-core machine, short enough to keep the silence cases quick.
const TIMEOUT: Duration = Duration::from_secs(3);

fn setup(activation: Activation, pooling: Pooling) -> (QuantModel, Tensor<u64>) {
    let arch = Architecture::small(activation, pooling, Dims::Two, 4);
    let preset = Preset::Q24;
    let folded = Weights::random_trained_like(&arch, 3).unwrap().fold();
    let model = QuantModel::new(&folded, preset.quant()).unwrap();
    let input = preset
        .quant()
        .encode_tensor(&smooth_image(5, [1, 16, 16], 11));
    (model, input)
}

/// What each party's run ended with.
struct Outcome {
    client: Result<Tensor<u8>, SecureError>,
    server: Result<(), SecureError>,
    elapsed: Duration,
    log: ProxyLog,
}

/// One session of one request, the client talking to the server through a proxy with `plan`.
fn run(model: &QuantModel, input: &Tensor<u64>, plan: Option<(Trigger, Fault)>) -> Outcome {
    let config = ChannelConfig {
        read_timeout: Some(TIMEOUT),
        ..ChannelConfig::default()
    };
    let session = SessionConfig::new(Preset::Q24);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = FaultProxy::spawn(listener.local_addr().unwrap(), plan).unwrap();
    let arch = *model.plan().arch();
    let start = Instant::now();
    let (client, server) = thread::scope(|s| {
        let server = s.spawn(|| {
            let (stream, _) = listener.accept().unwrap();
            let mut ch = Channel::tcp(stream, config).unwrap();
            Server::accept(&mut ch, model, session, Prg::from_os_entropy())?.serve(&mut ch)?;
            Ok(())
        });
        let mut ch = Channel::tcp(TcpStream::connect(proxy.addr()).unwrap(), config).unwrap();
        let client = (|| {
            let mut client = Client::connect(&mut ch, &arch, session, Prg::from_os_entropy())?;
            let mask = client.infer(&mut ch, input)?;
            client.close(&mut ch)?;
            Ok(mask)
        })();
        drop(ch);
        (
            client,
            server.join().expect("the server thread must not panic"),
        )
    });
    let elapsed = start.elapsed();
    let log = proxy.join().unwrap();
    Outcome {
        client,
        server,
        elapsed,
        log,
    }
}

/// Frames per kind family (`kind >> 8`: handshake, pahe, gc, ot, triples, unet) of a clean run.
fn families(log: &ProxyLog) -> BTreeMap<u16, usize> {
    let mut count = BTreeMap::new();
    for f in &log.frames {
        *count.entry(f.kind >> 8).or_default() += 1;
    }
    count
}

/// For every family of messages the clean run used, the fault at the family's middle frame
/// ends both parties with errors within a few read timeouts.
fn every_block_fails_cleanly(activation: Activation, pooling: Pooling, faults: &[Fault]) {
    let (model, input) = setup(activation, pooling);
    let clean = run(&model, &input, None);
    let reference = clean.client.expect("clean run");
    clean.server.expect("clean run");
    let families = families(&clean.log);
    assert!(
        families.len() >= 4,
        "the run should use handshake, pahe, gc/ot and unet messages: {families:?}"
    );
    for (&family, &frames) in &families {
        for &fault in faults {
            let trigger = Trigger {
                kinds: (family << 8)..=((family << 8) | 0xff),
                skip: frames / 2,
                direction: None,
            };
            let what = format!(
                "{activation:?}/{pooling:?}: {fault:?} at frame {} of family {family:#04x}",
                frames / 2
            );
            let out = run(&model, &input, Some((trigger, fault)));
            assert!(out.log.fired_at.is_some(), "{what}: the fault never fired");
            assert!(
                out.elapsed < 4 * TIMEOUT,
                "{what}: took {:?}, beyond a few read timeouts",
                out.elapsed
            );
            if fault == Fault::CorruptBody {
                // Random bytes of the right length may be a valid message (a ciphertext is
                // uniformly random bytes): a wrong result is possible, a panic or hang is not.
                continue;
            }
            assert!(
                out.client.is_err(),
                "{what}: the client must fail, it returned a mask (equal to the clean one: {})",
                out.client.as_ref().is_ok_and(|m| *m == reference)
            );
            // The party that already sent its last message may finish before the fault: only
            // the side waiting on the cut must fail, but neither may hang.
            if family != 0x05 || fault == Fault::Silence {
                assert!(out.server.is_err(), "{what}: the server must fail");
            }
        }
    }
}

#[test]
fn disconnect_in_every_building_block_is_an_error_on_both_sides_with_relu_and_max_pool() {
    every_block_fails_cleanly(
        Activation::Relu,
        Pooling::Max,
        &[Fault::Disconnect, Fault::CorruptBody],
    );
}

#[test]
fn disconnect_or_silence_in_every_building_block_with_square_and_rotation_pool() {
    every_block_fails_cleanly(
        Activation::Square,
        Pooling::AvgByRotation,
        &[Fault::Disconnect, Fault::Silence],
    );
}

#[test]
fn random_bytes_instead_of_a_ciphertext_are_a_typed_error_and_the_next_session_is_served() {
    let (model, input) = setup(Activation::Relu, Pooling::AvgLocal);
    // The second PAHE message the client sends (after the public key): a HomConv upload,
    // replaced by random bytes of another length.
    let trigger = Trigger {
        kinds: 0x0100..=0x01ff,
        skip: 1,
        direction: Some(Direction::ToTarget),
    };
    let out = run(&model, &input, Some((trigger, Fault::GarbageBody)));
    assert!(out.log.fired_at.is_some());
    let err = out
        .server
        .expect_err("random bytes must not pass as a ciphertext");
    assert!(
        matches!(
            err,
            SecureError::Wire(_) | SecureError::Crypto(_) | SecureError::HomConv(_)
        ),
        "expected a decoding error, got {err:?}"
    );
    assert!(out.client.is_err(), "the client's session ends too");
    // A fresh session with the same server-side model is unaffected.
    let clean = run(&model, &input, None);
    assert!(clean.client.is_ok() && clean.server.is_ok());
}
