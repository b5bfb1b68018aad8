//! Batches over TCP: a 2D session with batch `B` runs requests of up to `B` slices stacked along
//! depth, and every slice's shares after every step, and its mask, equal the fixed-point
//! reference of that slice alone — for both nonlinear backends, both linear backends and the
//! rotation pooling. A batch costs no more bytes per slice than single slices, and fewer
//! rounds; requests deeper than the agreed batch are refused.

use std::thread;

use bunet_crypto::nonlinear::Backend;
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::quant::{Op, QuantModel};
use bunet_unet::secure::{
    Client, LinearBackend, MAX_BATCH, Preset, Report, SecureError, Server, SessionConfig,
};
use bunet_unet::synthetic::smooth_image;
use bunet_unet::tensor::batch;
use bunet_unet::{Tensor, fixed};

mod common;
use common::{against_server, tcp_pair};

fn small(activation: Activation, pooling: Pooling) -> Architecture {
    Architecture::small(activation, pooling, Dims::Two, 4)
}

fn model(arch: &Architecture, preset: Preset) -> QuantModel {
    common::model(arch, preset, 11)
}

/// Every step's output of one request: (client share, server share).
type Steps = Vec<(Op, Tensor<u64>, Tensor<u64>)>;

/// One TCP session with `config` running `requests` (each a batch of slices); returns both
/// reports, the masks and every step's shares per request.
fn session(
    qm: &QuantModel,
    config: SessionConfig,
    requests: &[Tensor<u64>],
) -> (Report, Report, Vec<Tensor<u8>>, Vec<Steps>) {
    let arch = *qm.plan().arch();
    let (mut cch, mut sch) = tcp_pair();
    let steps = qm.plan().steps().len();
    thread::scope(|s| {
        let server = s.spawn(move || {
            let mut shares = Vec::new();
            let srv = Server::accept(&mut sch, qm, config, Prg::from_os_entropy()).unwrap();
            let report = srv
                .serve_observed(&mut sch, |_, t| shares.push(t.clone()))
                .unwrap();
            (report, shares)
        });
        let mut client = Client::connect(&mut cch, &arch, config, Prg::from_os_entropy()).unwrap();
        let mut masks = Vec::new();
        let mut per_request = Vec::new();
        for x in requests {
            let mut shares = Vec::new();
            let mask = client
                .infer_observed(&mut cch, x, |st, t| shares.push((st.op, t.clone())))
                .unwrap();
            masks.push(mask);
            per_request.push(shares);
        }
        let creport = client.close(&mut cch).unwrap();
        let (sreport, sshares) = server.join().unwrap();
        assert_eq!(sshares.len(), steps * requests.len());
        let per_request = per_request
            .into_iter()
            .enumerate()
            .map(|(r, c)| {
                c.into_iter()
                    .zip(sshares[r * steps..(r + 1) * steps].iter().cloned())
                    .map(|((op, a), b)| (op, a, b))
                    .collect()
            })
            .collect();
        (creport, sreport, masks, per_request)
    })
}

/// Bytes both ways of the request-dependent blocks (everything but the session's set-up).
fn request_bytes(r: &Report) -> u64 {
    r.blocks
        .iter()
        .filter(|b| !["handshake", "keys", "setup", "triples"].contains(&b.block.as_str()))
        .map(|b| b.bytes_sent + b.bytes_received)
        .sum()
}

/// Rounds of the request-dependent blocks.
fn request_rounds(r: &Report) -> u64 {
    r.blocks
        .iter()
        .filter(|b| !["handshake", "keys", "setup", "triples"].contains(&b.block.as_str()))
        .map(|b| b.rounds)
        .sum()
}

/// Runs `slices` slices of `[1, h, w]` in batches of `b` and checks every slice against the
/// reference of it alone. Returns the client's report.
fn check_batched(
    arch: Architecture,
    config: SessionConfig,
    slices: usize,
    [h, w]: [usize; 2],
) -> Report {
    let preset = config.preset;
    let qm = model(&arch, preset);
    let q = preset.quant();
    let p = q.p;
    let inputs: Vec<Tensor<u64>> = (0..slices)
        .map(|z| q.encode_tensor(&smooth_image(5, [1, h, w], 40 + z as u64)))
        .collect();
    let requests: Vec<Tensor<u64>> = inputs
        .chunks(config.batch)
        .map(|c| batch(c).unwrap())
        .collect();
    let (creport, _, masks, shares) = session(&qm, config, &requests);
    let what = format!(
        "{arch} {} {} batch {}",
        config.nonlinear.name(),
        config.linear.name(),
        config.batch
    );
    for (z, x) in inputs.iter().enumerate() {
        let (r, k) = (z / config.batch, z % config.batch);
        let mut reference = Vec::new();
        let mask = fixed::run(&qm, x.clone(), |_, t| reference.push(t.clone())).unwrap();
        assert_eq!(reference.len(), shares[r].len(), "{what}");
        for (j, (want, (op, a, b))) in reference.iter().zip(&shares[r]).enumerate() {
            let got = if *op == Op::Argmax2 {
                assert!(
                    b.data().iter().all(|&v| v == 0),
                    "{what}: server learns no mask"
                );
                a.depth_slice(k)
            } else {
                let sum = a.data().iter().zip(b.data()).map(|(&u, &v)| (u + v) % p);
                Tensor::from_vec(a.channels(), a.dims(), sum.collect())
                    .unwrap()
                    .depth_slice(k)
            };
            assert!(
                got == *want,
                "{what}: slice {z} (request {r}, depth {k}), step {j} ({op:?}) differs"
            );
        }
        let mask: Vec<u8> = mask.data().iter().map(|&v| v as u8).collect();
        assert_eq!(
            masks[r].depth_slice(k).data(),
            &mask[..],
            "{what}: mask {z}"
        );
    }
    creport
}

#[test]
fn every_slice_of_a_batch_equals_its_reference_on_both_backends_over_tcp() {
    let relu_max = small(Activation::Relu, Pooling::Max);
    let square_rot = small(Activation::Square, Pooling::AvgByRotation);
    for (arch, nonlinear, linear, preset, b) in [
        (relu_max, Backend::Gc, LinearBackend::Dft, Preset::Q24, 2),
        (relu_max, Backend::Ot, LinearBackend::Dft, Preset::Q32, 3),
        (relu_max, Backend::Ot, LinearBackend::Coeff, Preset::Q24, 2),
        (square_rot, Backend::Gc, LinearBackend::Dft, Preset::Q24, 2),
    ] {
        let config = SessionConfig {
            nonlinear,
            linear,
            batch: b,
            ..SessionConfig::new(preset)
        };
        // b + 1 slices: one full batch and a shorter last one.
        check_batched(arch, config, b + 1, [16, 16]);
    }
}

#[test]
fn a_batch_costs_no_more_bytes_per_slice_and_fewer_rounds() {
    let arch = small(Activation::Relu, Pooling::Max);
    for nonlinear in [Backend::Gc, Backend::Ot] {
        let single = SessionConfig {
            nonlinear,
            ..SessionConfig::new(Preset::Q24)
        };
        let batched = SessionConfig { batch: 4, ..single };
        let one = check_batched(arch, single, 4, [16, 16]);
        let four = check_batched(arch, batched, 4, [16, 16]);
        let (b1, b4) = (request_bytes(&one), request_bytes(&four));
        assert!(
            b4 <= b1,
            "{}: 4 slices cost {b1} bytes one by one, {b4} as a batch",
            nonlinear.name()
        );
        // The set-up is per session; every request-dependent flight carries the whole batch.
        let (r1, r4) = (request_rounds(&one), request_rounds(&four));
        assert!(
            3 * r4 <= r1,
            "{}: {r1} rounds one by one, {r4} as a batch",
            nonlinear.name()
        );
    }
}

#[test]
fn requests_deeper_than_the_batch_are_refused_and_the_session_goes_on() {
    let arch = small(Activation::Relu, Pooling::AvgLocal);
    let qm = model(&arch, Preset::Q24);
    let q = Preset::Q24.quant();
    let config = SessionConfig {
        batch: 2,
        ..SessionConfig::new(Preset::Q24)
    };
    let ((), served) = against_server(tcp_pair(), &qm, config, |mut client, mut cch| {
        let slice = |z| q.encode_tensor(&smooth_image(5, [1, 8, 8], z));
        let three = batch(&[slice(1), slice(2), slice(3)]).unwrap();
        let e = client.infer(&mut cch, &three).unwrap_err();
        assert!(
            matches!(&e, SecureError::Protocol(m) if m.contains("batch of 2")),
            "{e}"
        );
        let two = batch(&[slice(1), slice(2)]).unwrap();
        let mask = client.infer(&mut cch, &two).unwrap();
        let want = fixed::run(&qm, slice(2), |_, _| {}).unwrap();
        let want: Vec<u8> = want.data().iter().map(|&v| v as u8).collect();
        assert_eq!(mask.depth_slice(1).data(), &want[..]);
        client.close(&mut cch).unwrap();
    });
    served.unwrap();
    let bad = SessionConfig {
        batch: MAX_BATCH + 1,
        ..config
    };
    assert!(bad.check_batch(&arch, [1, 8, 8]).is_err());
}

#[test]
fn the_batch_is_agreed_in_the_handshake() {
    use bunet_unet::secure::HandshakeField;
    let arch = small(Activation::Relu, Pooling::Max);
    let qm = model(&arch, Preset::Q24);
    let server_config = SessionConfig {
        batch: 4,
        ..SessionConfig::new(Preset::Q24)
    };
    let client_config = SessionConfig {
        batch: 2,
        ..server_config
    };
    let (mut cch, mut sch) = tcp_pair();
    thread::scope(|s| {
        let server =
            s.spawn(|| Server::accept(&mut sch, &qm, server_config, Prg::from_os_entropy()).err());
        let c = Client::connect(&mut cch, &arch, client_config, Prg::from_os_entropy()).err();
        for e in [c, server.join().unwrap()] {
            assert!(
                matches!(&e, Some(SecureError::Handshake(m)) if m.field == HandshakeField::Batch),
                "{e:?}"
            );
        }
    });
}
