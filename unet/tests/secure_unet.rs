//! End to end: the secure UNet between a client and a server equals the fixed-point reference
//! bit for bit — the mask, and after every step the reconstructed shares — for every
//! activation × pooling × preset, over TCP between two threads and over the in-memory channel;
//! the handshake fails on both sides, naming the field, on every kind of mismatch.

use std::collections::BTreeMap;

use std::thread;

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::quant::{Op, QuantModel, Step};
use bunet_unet::secure::handshake::{self, Hello};
use bunet_unet::secure::{
    Client, HandshakeField, LinearBackend, Phase, Preset, Report, SecureError, Server,
    SessionConfig, block_name,
};
use bunet_unet::synthetic::{smooth_image, smooth_volume};
use bunet_unet::{Tensor, Weights, fixed};

mod common;
use common::{against_server, model, tcp_pair};

fn small(activation: Activation, pooling: Pooling, dims: Dims, base: usize) -> Architecture {
    Architecture::small(activation, pooling, dims, base)
}

type Shares = Vec<(Step, Tensor<u64>)>;

/// One session over `channels` serving every input; returns both reports, the masks, and both
/// parties' shares of every step of every request.
fn session(
    (mut cch, mut sch): (Channel, Channel),
    qm: &QuantModel,
    config: SessionConfig,
    inputs: &[Tensor<u64>],
) -> (Report, Report, Vec<Tensor<u8>>, Shares, Shares) {
    let arch = *qm.plan().arch();
    thread::scope(|s| {
        let server = s.spawn(move || {
            let mut shares = Vec::new();
            let srv = Server::accept(&mut sch, qm, config, Prg::from_os_entropy()).unwrap();
            let report = srv
                .serve_observed(&mut sch, |st, t| shares.push((st.clone(), t.clone())))
                .unwrap();
            (report, shares)
        });
        let mut shares = Vec::new();
        let mut client = Client::connect(&mut cch, &arch, config, Prg::from_os_entropy()).unwrap();
        let masks = inputs
            .iter()
            .map(|x| {
                // The offline phase runs ahead of the input, then the online phase.
                client.prepare(&mut cch, x.dims()).unwrap();
                client
                    .infer_observed(&mut cch, x, |st, t| shares.push((st.clone(), t.clone())))
                    .unwrap()
            })
            .collect();
        let creport = client.close(&mut cch).unwrap();
        let (sreport, sshares) = server.join().unwrap();
        (creport, sreport, masks, shares, sshares)
    })
}

/// Runs a session and checks every step of every request against the fixed-point reference.
fn check(
    arch: Architecture,
    preset: Preset,
    dims: [usize; 3],
    requests: usize,
    tcp: bool,
) -> (Report, Report) {
    check_with(arch, SessionConfig::new(preset), dims, requests, tcp)
}

/// [`check`] under any session configuration (e.g. another nonlinear backend).
fn check_with(
    arch: Architecture,
    config: SessionConfig,
    dims: [usize; 3],
    requests: usize,
    tcp: bool,
) -> (Report, Report) {
    let preset = config.preset;
    let qm = model(&arch, preset, 7);
    let q = preset.quant();
    let inputs: Vec<Tensor<u64>> = (0..requests)
        .map(|r| {
            let x = match arch.dims {
                Dims::Two => smooth_image(arch.in_channels, dims, 99 + r as u64),
                Dims::Three => {
                    let v = smooth_volume(dims, 5 + r as u64);
                    let planes = (0..arch.in_channels)
                        .flat_map(|_| v.data().to_vec())
                        .collect();
                    Tensor::from_vec(arch.in_channels, dims, planes).unwrap()
                }
            };
            q.encode_tensor(&x)
        })
        .collect();
    let channels = if tcp {
        tcp_pair()
    } else {
        Channel::in_memory_pair(ChannelConfig::default())
    };
    let (creport, sreport, masks, cshares, sshares) = session(channels, &qm, config, &inputs);
    let what = format!("{arch} {preset} tcp={tcp}");
    let steps = qm.plan().steps().len();
    assert_eq!(cshares.len(), steps * requests, "{what}");
    assert_eq!(sshares.len(), steps * requests, "{what}");
    for (r, x) in inputs.iter().enumerate() {
        let mut reference = Vec::new();
        let mask = fixed::run(&qm, x.clone(), |_, t| reference.push(t.clone())).unwrap();
        for (j, want) in reference.iter().enumerate() {
            let (step, a) = &cshares[r * steps + j];
            let (_, b) = &sshares[r * steps + j];
            let got = if step.op == Op::Argmax2 {
                assert!(
                    b.data().iter().all(|&v| v == 0),
                    "{what}: server learns no mask"
                );
                a.clone()
            } else {
                Tensor::from_vec(
                    a.channels(),
                    a.dims(),
                    a.data()
                        .iter()
                        .zip(b.data())
                        .map(|(&u, &v)| (u + v) % q.p)
                        .collect(),
                )
                .unwrap()
            };
            assert!(
                got == *want,
                "{what}: request {r}, step {j} ({:?}) differs from the reference",
                step.op
            );
        }
        assert_eq!(
            masks[r].data(),
            &mask.data().iter().map(|&v| v as u8).collect::<Vec<_>>()[..],
            "{what}: mask of request {r}"
        );
    }
    // Both parties report exactly one online call per step and request, under the step's
    // `block_name` (the names the harness's operation counts join on).
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for step in qm.plan().steps() {
        *want.entry(block_name(&arch, &step.op)).or_default() += requests as u64;
    }
    for r in [&creport, &sreport] {
        let got: BTreeMap<&str, u64> = r
            .blocks
            .iter()
            .filter(|b| b.phase == Phase::Online)
            .map(|b| (b.block.as_str(), b.calls))
            .collect();
        assert_eq!(got, want, "{what}: online blocks of the {:?}", r.party);
    }
    (creport, sreport)
}

fn assert_reports(what: &str, c: &Report, s: &Report, pooling: Pooling, activation: Activation) {
    for (r, blocks) in [
        (c, &["homconv", "upsample", "head", "argmax", "concat"][..]),
        (s, &["homconv", "upsample", "head", "argmax", "concat"][..]),
    ] {
        for b in blocks {
            assert!(r.get(b, Phase::Online).is_some(), "{what}: no {b} block");
        }
        assert!(
            r.get("setup", Phase::Offline)
                .is_some_and(|b| b.bytes_sent > 0)
        );
    }
    // The whole garbled-circuit work of the average-pool networks fits the precompute budget
    // (256 MiB; max pool at 32×32 does not, its tail streams): the tables go offline
    // ("garble"), online only input labels and corrections remain.
    for r in [c, s].into_iter().filter(|_| pooling != Pooling::Max) {
        let garble = r.get("garble", Phase::Offline).expect("garble block");
        let offline = garble.bytes_sent + garble.bytes_received;
        let online: u64 = ["relu", "rescale", "maxpool", "argmax"]
            .iter()
            .filter_map(|b| r.get(b, Phase::Online))
            .map(|b| b.bytes_sent + b.bytes_received)
            .sum();
        println!("{what}: nonlinear online {online} B, garble offline {offline} B");
        assert!(
            online * 3 < offline,
            "{what}: online {online}, offline {offline}"
        );
    }
    let cs = c.get("homconv", Phase::Online).unwrap();
    let ss = s.get("homconv", Phase::Online).unwrap();
    assert_eq!(cs.bytes_sent, ss.bytes_received, "{what}: homconv bytes");
    assert_eq!(cs.bytes_received, ss.bytes_sent, "{what}: homconv bytes");
    assert_eq!(
        c.total().bytes_sent,
        s.total().bytes_received,
        "{what}: total bytes"
    );
    let pool = match pooling {
        Pooling::Max => "maxpool",
        _ => "avgpool",
    };
    assert!(c.get(pool, Phase::Online).is_some(), "{what}: no {pool}");
    let by_rotation = c.get(pool, Phase::Online).unwrap().bytes_sent > 0;
    assert_eq!(
        by_rotation,
        pooling != Pooling::AvgLocal,
        "{what}: pool traffic"
    );
    match activation {
        Activation::Relu => assert!(c.get("relu", Phase::Online).is_some()),
        Activation::Square => {
            assert!(c.get("square", Phase::Online).is_some());
            assert!(c.get("rescale", Phase::Online).is_some());
            assert!(
                c.get("triples", Phase::Offline)
                    .is_some_and(|b| b.elements > 0)
            );
        }
    }
}

fn all_combos_over_tcp(pooling: Pooling) {
    for activation in [Activation::Relu, Activation::Square] {
        for preset in Preset::ALL {
            let arch = small(activation, pooling, Dims::Two, 4);
            let (c, s) = check(arch, preset, [1, 32, 32], 1, true);
            assert_reports(&format!("{arch} {preset}"), &c, &s, pooling, activation);
        }
    }
}

#[test]
fn secure_equals_fixed_point_with_average_pool_by_rotation_over_tcp() {
    all_combos_over_tcp(Pooling::AvgByRotation);
}

#[test]
fn secure_equals_fixed_point_with_local_average_pool_over_tcp() {
    all_combos_over_tcp(Pooling::AvgLocal);
}

#[test]
fn secure_equals_fixed_point_with_max_pool_over_tcp() {
    all_combos_over_tcp(Pooling::Max);
}

#[test]
fn one_session_serves_several_requests_in_memory() {
    let arch = small(Activation::Relu, Pooling::AvgByRotation, Dims::Two, 4);
    let (c, s) = check(arch, Preset::Q24, [1, 16, 32], 2, false);
    // Galois keys and HomConv filters are made once for both requests of equal extents.
    assert_eq!(
        c.get("keys", Phase::Offline).unwrap().calls,
        2,
        "public key + one Galois set"
    );
    assert_eq!(
        c.get("request", Phase::Offline).unwrap().calls,
        3,
        "two requests and a close"
    );
    assert_eq!(s.get("head", Phase::Online).unwrap().calls, 2);
    println!("{c}\n{s}");
}

/// Fails on this branch only because `homconv::Layout::new` refuses 3D; passes (1.5 s) on a
/// merge with branch `hc3d`.
#[test]
fn secure_equals_fixed_point_in_3d() {
    for (activation, pooling) in [
        (Activation::Relu, Pooling::Max),
        (Activation::Square, Pooling::AvgByRotation),
    ] {
        let arch = small(activation, pooling, Dims::Three, 2);
        check(arch, Preset::Q32, [4, 8, 8], 1, true);
    }
}

/// Runs a server with `server_config` on `server_model` against a client that proposes `hello`
/// (by hand, so that any field can be wrong); returns both sides' errors.
fn mismatch(
    server_model: &QuantModel,
    server_config: SessionConfig,
    hello: Hello,
) -> (SecureError, SecureError) {
    let (mut cch, mut sch) = Channel::in_memory_pair(ChannelConfig::default());
    thread::scope(|s| {
        let server = s.spawn(move || {
            Server::accept(
                &mut sch,
                server_model,
                server_config,
                Prg::from_os_entropy(),
            )
            .err()
        });
        let client = handshake::propose(&mut cch, &hello).err();
        (
            client.expect("client error"),
            server.join().unwrap().expect("server error"),
        )
    })
}

#[test]
fn drivers_can_move_to_other_threads() {
    fn send<T: Send>() {}
    send::<Client>();
    send::<Server<'static>>();
    send::<Report>();
}

#[test]
fn handshake_mismatch_fails_on_both_sides_naming_the_field() {
    let arch = small(Activation::Relu, Pooling::Max, Dims::Two, 4);
    let qm = model(&arch, Preset::Q32, 1);
    let config = SessionConfig::new(Preset::Q32);
    let good = Hello::client(&arch, &config);
    let other_arch = small(Activation::Square, Pooling::Max, Dims::Two, 4);
    let quant_model = {
        let mut q = Preset::Q32.quant();
        q.frac_bits += 1;
        QuantModel::new(&Weights::random_trained_like(&arch, 1).unwrap().fold(), q).unwrap()
    };
    let cases: Vec<(HandshakeField, &QuantModel, Hello)> = vec![
        (
            HandshakeField::Version,
            &qm,
            Hello {
                version: 99,
                ..good.clone()
            },
        ),
        (
            HandshakeField::Preset,
            &qm,
            Hello::client(&arch, &SessionConfig::new(Preset::Q24)),
        ),
        (HandshakeField::Quant, &quant_model, good.clone()),
        (
            HandshakeField::Architecture,
            &qm,
            Hello::client(&other_arch, &config),
        ),
        (
            HandshakeField::PaheParams,
            &qm,
            Hello {
                pahe_params: 1,
                ..good.clone()
            },
        ),
        (
            HandshakeField::Backend,
            &qm,
            Hello {
                backend: "ot".into(),
                ..good.clone()
            },
        ),
        (
            HandshakeField::MaxTile,
            &qm,
            Hello::client(
                &arch,
                &SessionConfig {
                    max_tile: Some(16),
                    ..config
                },
            ),
        ),
        (
            HandshakeField::Chunk,
            &qm,
            Hello::client(
                &arch,
                &SessionConfig {
                    chunk: 1 << 10,
                    ..config
                },
            ),
        ),
        (
            HandshakeField::Linear,
            &qm,
            Hello::client(
                &arch,
                &SessionConfig {
                    linear: LinearBackend::Coeff,
                    ..config
                },
            ),
        ),
    ];
    for (field, server_model, hello) in cases {
        let (c, s) = mismatch(server_model, config, hello);
        for (side, e) in [("client", &c), ("server", &s)] {
            match e {
                SecureError::Handshake(m) => {
                    assert_eq!(m.field, field, "{side}: {e}");
                    assert_ne!(m.ours, m.theirs);
                    assert!(e.to_string().contains(field.name()), "{side}: {e}");
                }
                other => panic!("{side} for {field}: expected a handshake mismatch, got {other}"),
            }
        }
        if let (SecureError::Handshake(a), SecureError::Handshake(b)) = (&c, &s) {
            assert_eq!((&a.ours, &a.theirs), (&b.theirs, &b.ours), "{field}");
        }
    }
    // Through the public drivers: a client with another architecture.
    let (mut cch, mut sch) = Channel::in_memory_pair(ChannelConfig::default());
    thread::scope(|s| {
        let server =
            s.spawn(|| Server::accept(&mut sch, &qm, config, Prg::from_os_entropy()).err());
        let c = Client::connect(&mut cch, &other_arch, config, Prg::from_os_entropy()).err();
        let s = server.join().unwrap();
        assert!(
            matches!(c, Some(SecureError::Handshake(ref m)) if m.field == HandshakeField::Architecture)
        );
        assert!(
            matches!(s, Some(SecureError::Handshake(ref m)) if m.field == HandshakeField::Architecture)
        );
    });
}

#[test]
fn misfit_requests_are_refused_and_the_session_goes_on() {
    let arch = small(Activation::Relu, Pooling::AvgLocal, Dims::Two, 2);
    let qm = model(&arch, Preset::Q24, 3);
    let config = SessionConfig::new(Preset::Q24);
    let q = Preset::Q24.quant();
    let pair = Channel::in_memory_pair(ChannelConfig::default());
    let ((), served) = against_server(pair, &qm, config, |mut client, mut cch| {
        // Refused locally before anything is sent: wrong channels, extents, unreduced input.
        let bad = Tensor::filled(4, [1, 8, 8], 0u64);
        assert!(matches!(
            client.infer(&mut cch, &bad),
            Err(SecureError::Model(_))
        ));
        let bad = Tensor::filled(5, [1, 6, 8], 0u64);
        assert!(matches!(
            client.infer(&mut cch, &bad),
            Err(SecureError::Model(_))
        ));
        let bad = Tensor::filled(5, [1, 8, 8], q.p);
        assert!(matches!(
            client.infer(&mut cch, &bad),
            Err(SecureError::Model(_))
        ));
        let x = q.encode_tensor(&smooth_image(5, [1, 8, 8], 1));
        let mask = client.infer(&mut cch, &x).unwrap();
        let want = fixed::run(&qm, x, |_, _| {}).unwrap();
        assert_eq!(
            mask.data(),
            &want.data().iter().map(|&v| v as u8).collect::<Vec<_>>()[..]
        );
        client.close(&mut cch).unwrap();
    });
    served.unwrap();
}

#[test]
fn malformed_or_misfit_requests_and_vanishing_peers_are_typed_errors() {
    use bunet_unet::secure::kind;
    let arch = small(Activation::Relu, Pooling::AvgLocal, Dims::Two, 2);
    let qm = model(&arch, Preset::Q24, 3);
    let config = SessionConfig::new(Preset::Q24);
    let request = |tag: u8, dims: [u64; 3]| {
        let mut b = vec![tag];
        for d in dims {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b
    };
    // A request the model does not fit is refused, the session goes on; a malformed one ends
    // it, and the client is told why.
    let pair = Channel::in_memory_pair(ChannelConfig::default());
    let ((), served) = against_server(pair, &qm, config, |_client, mut cch| {
        for (body, fatal) in [
            (request(1, [1, 6, 8]), false),
            (request(1, [2, 8, 8]), false),
            (request(1, [1, 1 << 40, 8]), true),
        ] {
            cch.send(kind::REQUEST, &body).unwrap();
            let reply = cch.recv(kind::REQUEST_REPLY, 1024).unwrap();
            assert_eq!(reply[0], 1, "refused");
            if fatal {
                break;
            }
        }
    });
    assert!(matches!(served, Err(SecureError::Wire(_))));
    // A client that vanishes in the middle of a request: the closure drops its channel.
    let pair = Channel::in_memory_pair(ChannelConfig::default());
    let ((), served) = against_server(pair, &qm, config, |_client, mut cch| {
        cch.send(kind::REQUEST, &request(1, [1, 8, 8])).unwrap();
        cch.recv(kind::REQUEST_REPLY, 1024).unwrap();
    });
    let e = served.unwrap_err();
    assert!(
        matches!(
            e,
            SecureError::HomConv(_) | SecureError::Channel(_) | SecureError::Crypto(_)
        ),
        "{e}"
    );
}

/// The OT nonlinear backend (silent OT) gives the same shares as the garbled backend: the mask
/// and every step equal the fixed-point reference, which `check` also holds the GC runs to —
/// both presets, 2D and 3D, over TCP.
#[test]
fn ot_backend_equals_the_fixed_point_reference_like_gc() {
    use bunet_crypto::nonlinear::Backend;
    for (activation, pooling, preset, dims) in [
        (Activation::Relu, Pooling::Max, Preset::Q32, Dims::Two),
        (
            Activation::Square,
            Pooling::AvgLocal,
            Preset::Q24,
            Dims::Two,
        ),
        (Activation::Relu, Pooling::Max, Preset::Q24, Dims::Three),
        (
            Activation::Relu,
            Pooling::AvgByRotation,
            Preset::Q32,
            Dims::Three,
        ),
    ] {
        let (base, extents) = match dims {
            Dims::Two => (4, [1, 32, 32]),
            Dims::Three => (2, [4, 8, 8]),
        };
        let arch = small(activation, pooling, dims, base);
        let config = SessionConfig {
            nonlinear: Backend::Ot,
            ..SessionConfig::new(preset)
        };
        let (client, server) = check_with(arch, config, extents, 1, true);
        assert_eq!(client.config.nonlinear, Backend::Ot);
        assert_eq!(server.config.nonlinear, Backend::Ot);
    }
}

#[test]
fn every_chunk_size_gives_the_reference_shares_on_both_backends() {
    use bunet_crypto::nonlinear::Backend;
    // An odd chunk splits every layer at uneven boundaries; a large one carries a whole layer in
    // one exchange (the WAN setting). Either way the shares are the reference's bit for bit.
    let arch = small(Activation::Relu, Pooling::Max, Dims::Two, 4);
    for (backend, chunk) in [
        (Backend::Gc, 333),
        (Backend::Ot, 333),
        (Backend::Ot, 1 << 16),
    ] {
        let config = SessionConfig {
            nonlinear: backend,
            chunk,
            ..SessionConfig::new(Preset::Q24)
        };
        let (client, server) = check_with(arch, config, [1, 32, 32], 1, false);
        assert_eq!(client.config.chunk, chunk);
        assert_eq!(server.config.chunk, chunk);
    }
}

/// The coefficient-encoded linear backends give the same shares as the DFT one: the whole
/// secure UNet equals the fixed-point reference bit for bit (every step and the mask), 2D and
/// 3D, q32 and q24, with both nonlinear backends, over TCP. The encrypted-weights one
/// (`coeff-ew`) runs two requests per session in two of the cases: the second reuses the
/// weight ciphertexts of the first.
#[test]
fn coeff_linear_backend_equals_the_fixed_point_reference_like_dft() {
    use bunet_crypto::nonlinear::Backend;
    let both = [LinearBackend::Coeff, LinearBackend::CoeffEw];
    let coeff = [LinearBackend::Coeff, LinearBackend::Coeff];
    for (activation, pooling, preset, nonlinear, dims, linears) in [
        (
            Activation::Relu,
            Pooling::Max,
            Preset::Q32,
            Backend::Gc,
            Dims::Two,
            &both[..],
        ),
        (
            Activation::Relu,
            Pooling::AvgByRotation,
            Preset::Q24,
            Backend::Ot,
            Dims::Two,
            &coeff[..1],
        ),
        (
            Activation::Square,
            Pooling::AvgLocal,
            Preset::Q32,
            Backend::Ot,
            Dims::Two,
            &coeff[..1],
        ),
        (
            Activation::Relu,
            Pooling::Max,
            Preset::Q24,
            Backend::Gc,
            Dims::Three,
            &both[..],
        ),
    ] {
        for &linear in linears {
            let arch = small(
                activation,
                pooling,
                dims,
                if dims == Dims::Two { 4 } else { 2 },
            );
            let config = SessionConfig {
                nonlinear,
                linear,
                ..SessionConfig::new(preset)
            };
            let extents = if dims == Dims::Two {
                [1, 32, 32]
            } else {
                [4, 8, 8]
            };
            let requests = if linear == LinearBackend::CoeffEw {
                2
            } else {
                1
            };
            let (client, server) = check_with(arch, config, extents, requests, true);
            assert_eq!(client.config.linear, linear);
            assert_eq!(server.config.linear, linear);
            let name = format!("\"linear\":\"{}\"", linear.name());
            assert!(client.to_json().contains(&name), "{name}");
        }
    }
}
