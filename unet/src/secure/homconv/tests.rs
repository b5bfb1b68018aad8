use std::sync::OnceLock;
use std::thread;

use bunet_crypto::channel::ChannelConfig;
use bunet_crypto::pahe::{
    COEFF_WEIGHT_BITS, KIND_CIPHERTEXT, KIND_COEFF_RESPONSE, KIND_COEFF_UPLOAD,
    KIND_SEEDED_CIPHERTEXT,
};
use bunet_crypto::wire::WireError;
use bunet_kernels::primes::primes_congruent_one;

use super::*;
use crate::arch::{Activation, Architecture, ConvSpec, Dims, Pooling};
use crate::quant::{Quant, QuantConv};
use crate::synthetic::SplitMix64;
use crate::weights::Weights;

const SMALL_N: usize = 512;

/// Insecure small-ring parameters whose p is the q32 quant's p (`p ≡ 1 mod 2^14`).
fn small() -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(|| {
        let two_n = 2 * SMALL_N as u64;
        let q = primes_congruent_one(50, two_n, 4);
        Params::insecure_for_tests(SMALL_N, Quant::q32().p, &q).unwrap()
    })
}

fn keys(params: &Params, seed: u8) -> (SecretKey, PublicKey) {
    let mut prg = Prg::from_seed([seed; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    (sk, pk)
}

/// A q32 model whose conv 0 is replaced by a random `c_in → c_out` 2D conv of kernel `k`
/// (`1×k×k`; `k = 1` pointwise, `k = 2` transposed).
fn model(c_in: usize, c_out: usize, k: usize, seed: u64) -> QuantModel {
    let kind = match k {
        1 => ConvKind::Pointwise,
        2 => ConvKind::Transposed,
        _ => ConvKind::Same,
    };
    model_with(Quant::q32(), kind, [1, k, k], c_in, c_out, seed)
}

/// The smallest 2D UNet (one level, two base features): the host whose conv 0 the tests replace.
fn tiny_arch() -> Architecture {
    Architecture {
        in_channels: 1,
        base_features: 2,
        depth: 1,
        activation: Activation::Relu,
        pooling: Pooling::Max,
        dims: Dims::Two,
        classes: 2,
    }
}

/// A model of quantisation `quant` whose conv 0 is replaced by a random `c_in → c_out` conv of
/// `kind` and `kernel` (the reference conv reads only the spec, so any kernel runs).
fn model_with(
    quant: Quant,
    kind: ConvKind,
    kernel: [usize; 3],
    c_in: usize,
    c_out: usize,
    seed: u64,
) -> QuantModel {
    let arch = tiny_arch();
    let folded = Weights::random_trained_like(&arch, 1).unwrap().fold();
    let mut qm = QuantModel::new(&folded, quant).unwrap();
    let mut rng = SplitMix64::from_seed_for_tests(seed);
    let max_w = 1u64 << 15;
    let taps: usize = kernel.iter().product();
    let weight = (0..c_out * c_in * taps)
        .map(|_| ((rng.next_u64() % (2 * max_w + 1)) as i64 - max_w as i64) as i32)
        .collect();
    let bias = (0..c_out)
        .map(|_| (rng.next_u64() % (1 << 20)) as i64 - (1 << 19))
        .collect();
    qm.convs[0] = QuantConv {
        spec: ConvSpec::for_test(kind, c_in, c_out, kernel),
        weight,
        bias,
        frac_in: 4,
        frac_out: 12,
    };
    qm
}

/// The 3D layers of the UNet: 3×3×3 same, 2×2×2 transposed (stride 2), 1×1×1 head.
const SAME_3D: (ConvKind, [usize; 3]) = (ConvKind::Same, [3, 3, 3]);
const UP_3D: (ConvKind, [usize; 3]) = (ConvKind::Transposed, [2, 2, 2]);
const HEAD_3D: (ConvKind, [usize; 3]) = (ConvKind::Pointwise, [1, 1, 1]);

/// Uniform residues mod p.
fn uniform(channels: usize, dims: [usize; 3], p: u64, seed: u64) -> Tensor<u64> {
    let mut rng = SplitMix64::from_seed_for_tests(seed);
    let len = channels * dims.iter().product::<usize>();
    Tensor::from_vec(
        channels,
        dims,
        (0..len).map(|_| rng.next_u64() % p).collect(),
    )
    .unwrap()
}

fn add_mod(a: &Tensor<u64>, b: &Tensor<u64>, p: u64) -> Vec<u64> {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| (x + y) % p)
        .collect()
}

/// `conv(x)` without bias: what Alice would hold if Bob's mask were zero.
fn unbiased(qm: &QuantModel, x: &Tensor<u64>) -> Tensor<u64> {
    let mut qm = qm.clone();
    qm.convs[0].bias.iter_mut().for_each(|b| *b = 0);
    crate::fixed::conv(&qm, 0, x)
}

fn tcp_pair() -> (Channel, Channel) {
    Channel::loopback_pair(ChannelConfig::default()).unwrap()
}

/// The packing in the clear: DFT, slot-wise products, inverse DFT and extraction of `qm`'s conv
/// 0 reproduce the reference conv (without bias).
fn check_embedding(qm: &QuantModel, dims: [usize; 3], max_tile: Option<usize>) -> Layout {
    let params = small();
    let p = params.p();
    let mut qm = qm.clone();
    qm.convs[0].bias.iter_mut().for_each(|b| *b = 0);
    let spec = &qm.convs[0].spec;
    let (c_in, c_out, taps) = (spec.c_in, spec.c_out, spec.taps());
    let x = uniform(c_in, dims, p, 12);
    let l = Layout::new(params, spec, dims, max_tile).unwrap();
    let plan = CyclicPlan::new(l.m, p).unwrap();
    let w = qm.convs[0].weight_mod_p(p);
    let plane = l.out_plane();
    let mut y = vec![0u64; c_out * plane];
    for o in 0..c_out {
        for t in 0..l.tiles() {
            let mut acc = vec![0u64; l.m];
            for c in 0..c_in {
                let mut xd = l.gather(x.channel(c), t);
                plan.forward(&mut xd);
                let i = o * c_in + c;
                let mut wd = l.place_filter(&w[i * taps..(i + 1) * taps]);
                plan.forward(&mut wd);
                for ((a, &u), &v) in acc.iter_mut().zip(&xd).zip(&wd) {
                    *a = ((*a as u128 + u as u128 * v as u128) % p as u128) as u64;
                }
            }
            plan.inverse(&mut acc);
            l.scatter(&acc, t, &mut y[o * plane..(o + 1) * plane], p, false);
        }
    }
    assert_eq!(
        y,
        crate::fixed::conv(&qm, 0, &x).into_vec(),
        "{:?} {dims:?}, tiles {max_tile:?}: {l:?}",
        spec.kernel
    );
    l
}

/// 2D: for every tiling no valid output wraps around.
#[test]
fn cyclic_embedding_equals_reference_conv() {
    for (k, dims, max_tile) in [
        (3, [1, 8, 8], None),
        (3, [1, 20, 20], Some(7)),
        (3, [1, 5, 13], Some(4)),
        (3, [1, 30, 30], None),
        (1, [1, 20, 20], Some(6)),
        (1, [1, 9, 3], None),
        (2, [1, 8, 8], None),
        (2, [1, 10, 7], Some(6)),
    ] {
        let l = check_embedding(&model(3, 5, k, 11), dims, max_tile);
        if max_tile.is_some() || dims[1] == 30 {
            assert!(l.tiles() > 1, "{dims:?} {max_tile:?}: {l:?}");
        }
    }
}

/// 3D: same, transposed and pointwise convs, in one tile and in several tiles along every axis
/// (including partial tiles at the far edges), and a `1×3×3` kernel on a volume (per slice).
#[test]
fn cyclic_embedding_equals_reference_conv_in_3d() {
    let cases = [
        (SAME_3D, [3, 4, 5], None, false),
        (SAME_3D, [5, 7, 6], Some(3), true),
        (SAME_3D, [1, 3, 9], Some(2), false),
        (SAME_3D, [9, 9, 9], None, false),
        (SAME_3D, [9, 8, 10], Some(4), true),
        (UP_3D, [2, 3, 2], None, false),
        (UP_3D, [3, 4, 5], Some(3), true),
        (HEAD_3D, [4, 5, 6], Some(3), true),
        (HEAD_3D, [3, 2, 7], None, false),
        ((ConvKind::Same, [1, 3, 3]), [3, 6, 5], Some(4), false),
        ((ConvKind::Transposed, [1, 2, 2]), [3, 3, 4], Some(5), false),
    ];
    for ((kind, kernel), dims, max_tile, every_axis) in cases {
        let qm = model_with(Quant::q32(), kind, kernel, 3, 4, 13);
        let l = check_embedding(&qm, dims, max_tile);
        if every_axis {
            assert!(
                l.counts.iter().all(|&n| n > 1),
                "{kernel:?} {dims:?}: {l:?}"
            );
        }
    }
}

/// Runs HomConv between two threads; returns (Y_A, Y_B, client bytes sent under the label).
fn run_pair(
    channels: (Channel, Channel),
    params: &Params,
    qm: &QuantModel,
    x_a: &Tensor<u64>,
    x_b: &Tensor<u64>,
    max_tile: Option<usize>,
) -> (Tensor<u64>, Tensor<u64>, u64) {
    let budget = PREPARED_FILTER_BUDGET;
    run_pair_with_budget(channels, params, qm, x_a, x_b, max_tile, budget)
}

/// [`run_pair`] with a server keeping at most `budget` bytes of prepared filters.
fn run_pair_with_budget(
    (mut server_ch, mut client_ch): (Channel, Channel),
    params: &Params,
    qm: &QuantModel,
    x_a: &Tensor<u64>,
    x_b: &Tensor<u64>,
    max_tile: Option<usize>,
    budget: usize,
) -> (Tensor<u64>, Tensor<u64>, u64) {
    let dims = x_a.dims();
    let layout = Layout::new(params, &qm.convs()[0].spec, dims, max_tile).unwrap();
    let (sk, pk) = keys(params, 3);
    let server = HomConvServer::with_filter_budget(params, qm, 0, layout.clone(), budget).unwrap();
    let groups = layout.groups();
    let group_bytes = layout.c_in * params.max_level() * params.n() * 8;
    assert_eq!(
        server.streams_filters(),
        (budget / group_bytes).max(1) < groups
    );
    let client = HomConvClient::new(params, layout).unwrap();
    thread::scope(|s| {
        let bob = s.spawn(|| {
            let mut prg = Prg::from_seed([8; 16]);
            server.run(&mut server_ch, &pk, x_b, &mut prg).unwrap()
        });
        let mut prg = Prg::from_seed([9; 16]);
        let y_a = client.run(&mut client_ch, &sk, x_a, &mut prg).unwrap();
        let y_b = bob.join().unwrap();
        let sent = client_ch.meter().get(LABEL).bytes_sent;
        assert_eq!(client_ch.label(), "unlabelled", "label restored");
        (y_a, y_b, sent)
    })
}

#[test]
fn homconv_shares_reconstruct_the_reference_bit_for_bit() {
    let params = small();
    let p = params.p();
    let cases = [
        (3, [1, 8, 8], None, 0),
        (3, [1, 20, 20], Some(9), 1),
        (1, [1, 20, 20], Some(9), 0),
        (1, [1, 8, 8], None, 1),
        (2, [1, 8, 8], Some(6), 0),
        (2, [1, 5, 6], None, 1),
    ];
    for (k, dims, max_tile, tcp) in cases {
        let qm = model(3, 5, k, 21);
        let x_a = uniform(3, dims, p, 22);
        let x_b = uniform(3, dims, p, 23);
        let x = Tensor::from_vec(3, dims, add_mod(&x_a, &x_b, p)).unwrap();
        let expected = crate::fixed::conv(&qm, 0, &x);
        let channels = if tcp == 1 {
            tcp_pair()
        } else {
            Channel::in_memory_pair(ChannelConfig::default())
        };
        let (y_a, y_b, sent) = run_pair(channels, params, &qm, &x_a, &x_b, max_tile);
        let layout = Layout::new(params, &qm.convs()[0].spec, dims, max_tile).unwrap();
        let what = format!("k = {k}, {dims:?}, tiles {}, tcp {tcp}", layout.tiles());
        assert_eq!(add_mod(&y_a, &y_b, p), expected.data(), "{what}");
        // Masked: neither share alone is the output, nor Alice's the conv of her share.
        assert_ne!(y_a.data(), expected.data(), "{what}");
        assert_ne!(y_b.data(), expected.data(), "{what}");
        assert_ne!(y_a.data(), unbiased(&qm, &x_a).data(), "{what}");
        assert!(
            sent >= (layout.upload_ciphertexts() * params.seeded_ciphertext_len()) as u64,
            "{what}: {sent} bytes"
        );
    }
}

/// Runs `qm`'s conv 0 on fresh shares and checks that they reconstruct the reference conv of
/// the image bit for bit, masked; returns the layout.
fn check_shares(
    channels: (Channel, Channel),
    params: &Params,
    qm: &QuantModel,
    dims: [usize; 3],
    max_tile: Option<usize>,
) -> Layout {
    let p = params.p();
    let c_in = qm.convs()[0].spec.c_in;
    let x_a = uniform(c_in, dims, p, 72);
    let x_b = uniform(c_in, dims, p, 73);
    let x = Tensor::from_vec(c_in, dims, add_mod(&x_a, &x_b, p)).unwrap();
    let expected = crate::fixed::conv(qm, 0, &x);
    let (y_a, y_b, sent) = run_pair(channels, params, qm, &x_a, &x_b, max_tile);
    let layout = Layout::new(params, &qm.convs()[0].spec, dims, max_tile).unwrap();
    let what = format!("{:?} {dims:?}: {layout:?}", qm.convs()[0].spec.kernel);
    assert_eq!(y_a.dims(), layout.out_dims(), "{what}");
    assert_eq!(add_mod(&y_a, &y_b, p), expected.data(), "{what}");
    assert_ne!(y_a.data(), expected.data(), "{what}");
    assert_ne!(y_a.data(), unbiased(qm, &x_a).data(), "{what}");
    assert!(
        sent >= (layout.upload_ciphertexts() * params.seeded_ciphertext_len()) as u64,
        "{what}: {sent} bytes"
    );
    layout
}

/// 3D same / transposed / pointwise convs, several tiles along every axis, in memory and over
/// TCP (small insecure ring).
#[test]
fn homconv_3d_shares_reconstruct_the_reference_bit_for_bit() {
    let params = small();
    for ((kind, kernel), dims, max_tile, tcp) in [
        (SAME_3D, [4, 5, 6], Some(3), false),
        (UP_3D, [2, 3, 3], Some(3), false),
        (HEAD_3D, [3, 4, 5], Some(2), false),
        (SAME_3D, [3, 4, 4], None, true),
    ] {
        let qm = model_with(Quant::q32(), kind, kernel, 3, 5, 81);
        let channels = if tcp {
            tcp_pair()
        } else {
            Channel::in_memory_pair(ChannelConfig::default())
        };
        let l = check_shares(channels, params, &qm, dims, max_tile);
        if max_tile.is_some() {
            assert!(l.counts.iter().all(|&n| n > 1), "{kernel:?}: {l:?}");
        }
    }
}

/// 3D at the real presets (N = 8192): a 3×3×3 conv at q32 and a 2×2×2 up-conv at q24, several
/// tiles along every axis, in memory; the 1×1×1 head at q24 over TCP.
#[test]
fn homconv_3d_at_the_q32_and_q24_presets() {
    let (q32, q24) = (Params::q32(), Params::q24());
    let qm = model_with(Quant::q32(), SAME_3D.0, SAME_3D.1, 3, 4, 91);
    let pair = || Channel::in_memory_pair(ChannelConfig::default());
    let l = check_shares(pair(), &q32, &qm, [5, 7, 6], Some(3));
    assert!(l.counts.iter().all(|&n| n > 1), "{l:?}");
    let qm = model_with(Quant::q24(), UP_3D.0, UP_3D.1, 4, 3, 92);
    let l = check_shares(pair(), &q24, &qm, [2, 3, 3], Some(3));
    assert!(l.counts.iter().all(|&n| n > 1), "{l:?}");
    let qm = model_with(Quant::q24(), HEAD_3D.0, HEAD_3D.1, 4, 2, 93);
    check_shares(tcp_pair(), &q24, &qm, [4, 6, 6], None);
}

/// Filters prepared per batch of output-channel groups in the run (a budget below all of them:
/// one group at a time, two at a time with a partial last batch) give the same shares as filters
/// prepared once, bit for bit.
#[test]
fn streamed_filters_give_the_same_shares() {
    let params = small();
    let p = params.p();
    let qm = model_with(Quant::q32(), SAME_3D.0, SAME_3D.1, 3, 5, 101);
    let dims = [1, 8, 8];
    let layout = Layout::new(params, &qm.convs()[0].spec, dims, None).unwrap();
    assert!(layout.groups() >= 3, "{layout:?}");
    let group_bytes = layout.c_in * params.max_level() * params.n() * 8;
    let x_a = uniform(3, dims, p, 102);
    let x_b = uniform(3, dims, p, 103);
    let x = Tensor::from_vec(3, dims, add_mod(&x_a, &x_b, p)).unwrap();
    let expected = crate::fixed::conv(&qm, 0, &x);
    let pair = || Channel::in_memory_pair(ChannelConfig::default());
    let mut shares = Vec::new();
    for budget in [0, 2 * group_bytes, usize::MAX] {
        let (y_a, y_b, _) = run_pair_with_budget(pair(), params, &qm, &x_a, &x_b, None, budget);
        assert_eq!(add_mod(&y_a, &y_b, p), expected.data(), "budget {budget}");
        shares.push(y_a);
    }
    let server = HomConvServer::with_filter_budget(params, &qm, 0, layout, 0).unwrap();
    let debug = format!("{server:?}");
    assert!(
        debug.contains("streams_filters: true") && !debug.contains("weight"),
        "{debug}"
    );
    // Fixed PRG seeds: the masks, hence Alice's shares, agree across the three schedules.
    assert_eq!(shares[0], shares[2]);
    assert_eq!(shares[1], shares[2]);
}

/// Many input channels: the tiles go in several round trips (`UPLOAD_BATCH`), with the filters
/// prepared once or streamed per group in each round trip; the shares reconstruct the reference.
#[test]
fn several_round_trips_reconstruct_the_reference() {
    let params = small();
    let p = params.p();
    let c_in = 100;
    let qm = model_with(Quant::q32(), SAME_3D.0, SAME_3D.1, c_in, 20, 111);
    let dims = [3, 4, 5];
    let layout = Layout::new(params, &qm.convs()[0].spec, dims, Some(2)).unwrap();
    assert_eq!(layout.tiles_per_batch(), UPLOAD_BATCH / c_in);
    assert!(layout.tiles() > 2 * layout.tiles_per_batch(), "{layout:?}");
    assert!(layout.groups() >= 2, "{layout:?}");
    let x_a = uniform(c_in, dims, p, 112);
    let x_b = uniform(c_in, dims, p, 113);
    let x = Tensor::from_vec(c_in, dims, add_mod(&x_a, &x_b, p)).unwrap();
    let expected = crate::fixed::conv(&qm, 0, &x);
    let mut shares = Vec::new();
    for budget in [0, usize::MAX] {
        let pair = Channel::in_memory_pair(ChannelConfig::default());
        let (y_a, y_b, sent) = run_pair_with_budget(pair, params, &qm, &x_a, &x_b, Some(2), budget);
        assert_eq!(add_mod(&y_a, &y_b, p), expected.data(), "budget {budget}");
        assert!(sent >= (layout.upload_ciphertexts() * params.seeded_ciphertext_len()) as u64);
        shares.push(y_a);
    }
    assert_eq!(shares[0], shares[1]);
}

/// Alice's share is uniformly masked: over the output elements its values are spread over the
/// whole of Z_p (a zero mask would leave `conv(X_A)`, which these tests' small inputs keep
/// near 0 or p).
#[test]
fn alice_share_is_spread_over_z_p() {
    let params = small();
    let p = params.p();
    let qm = model(3, 5, 3, 31);
    let dims = [1, 8, 8];
    // Small inputs: conv(X) is within ±2^24 of 0, i.e. in a tiny part of Z_p.
    let zero = Tensor::filled(3, dims, 0u64);
    let x_a = Tensor::from_vec(3, dims, vec![1u64; 3 * 64]).unwrap();
    let (y_a, y_b, _) = run_pair(
        Channel::in_memory_pair(ChannelConfig::default()),
        params,
        &qm,
        &x_a,
        &zero,
        None,
    );
    let expected = crate::fixed::conv(&qm, 0, &x_a);
    assert_eq!(add_mod(&y_a, &y_b, p), expected.data());
    let mid = y_a
        .data()
        .iter()
        .filter(|&&v| v > p / 4 && v < 3 * (p / 4))
        .count();
    // Uniform: about half of 320 values in the middle half; the unmasked conv has none.
    assert!(
        (100..=220).contains(&mid),
        "{mid} of 320 in the middle half"
    );
}

#[test]
fn malformed_peer_bytes_are_typed_errors() {
    let params = small();
    let p = params.p();
    let qm = model(3, 5, 3, 41);
    let dims = [1, 8, 8];
    let layout = Layout::new(params, &qm.convs()[0].spec, dims, None).unwrap();
    let (sk, pk) = keys(params, 4);
    let x = uniform(3, dims, p, 42);
    let mut prg = Prg::from_seed([1; 16]);

    // Server receives garbage instead of a seeded ciphertext.
    let server = HomConvServer::new(params, &qm, 0, layout.clone()).unwrap();
    let (mut s, mut c) = Channel::in_memory_pair(ChannelConfig::default());
    c.send(KIND_SEEDED_CIPHERTEXT, &[0xff; 40]).unwrap();
    c.flush().unwrap();
    let err = server.run(&mut s, &pk, &x, &mut prg).unwrap_err();
    assert!(
        matches!(err, HomConvError::Crypto(bunet_crypto::Error::Wire(_))),
        "{err:?}"
    );

    // Client receives a ciphertext whose residues are out of range.
    let client = HomConvClient::new(params, layout.clone()).unwrap();
    let (mut s, mut c) = Channel::in_memory_pair(ChannelConfig::default());
    let len = params.ciphertext_len(1);
    let mut body = vec![0xffu8; len];
    body[0] = 1;
    s.send(KIND_CIPHERTEXT, &body).unwrap();
    s.flush().unwrap();
    let err = client.run(&mut c, &sk, &x, &mut prg).unwrap_err();
    assert!(
        matches!(
            err,
            HomConvError::Crypto(bunet_crypto::Error::Wire(
                WireError::OutOfRange { .. } | WireError::Invalid(_)
            ))
        ),
        "{err:?}"
    );

    // Client receives an invalid level; then the peer hangs up.
    let (mut s, mut c) = Channel::in_memory_pair(ChannelConfig::default());
    s.send(KIND_CIPHERTEXT, &[0u8; 8]).unwrap();
    s.flush().unwrap();
    let err = client.run(&mut c, &sk, &x, &mut prg).unwrap_err();
    assert!(matches!(err, HomConvError::Crypto(_)), "{err:?}");
    drop(s);
    let err = client.run(&mut c, &sk, &x, &mut prg).unwrap_err();
    assert!(
        matches!(
            err,
            HomConvError::Channel(_) | HomConvError::Crypto(bunet_crypto::Error::Channel(_))
        ),
        "{err:?}"
    );

    // Bad local inputs.
    let err = client
        .run(&mut c, &sk, &Tensor::filled(2, dims, 0), &mut prg)
        .unwrap_err();
    assert!(matches!(err, HomConvError::Shape { .. }), "{err:?}");
    let err = client
        .run(&mut c, &sk, &Tensor::filled(3, dims, p), &mut prg)
        .unwrap_err();
    assert!(matches!(err, HomConvError::Unreduced { .. }), "{err:?}");
}

#[test]
fn unsupported_layers_and_mismatched_parameters_are_refused() {
    let params = small();
    let mut spec = model(3, 5, 3, 1).convs()[0].spec.clone();
    assert!(matches!(
        Layout::new(params, &spec, [2, 0, 8], None),
        Err(HomConvError::Unsupported(_))
    ));
    // A 1×3×3 kernel on a volume is a per-slice conv; a kernel whose halo fills the slots is not.
    assert!(Layout::new(params, &spec, [2, 8, 8], None).is_ok());
    spec.kernel = [9, 9, 9];
    assert!(matches!(
        Layout::new(params, &spec, [9, 9, 9], None),
        Err(HomConvError::Unsupported(_))
    ));
    spec.kind = ConvKind::Pointwise;
    spec.kernel = [1, 1, 3];
    assert!(matches!(
        Layout::new(params, &spec, [1, 8, 8], None),
        Err(HomConvError::Unsupported(_))
    ));
    spec.kind = ConvKind::Same;
    spec.kernel = [1, 2, 2];
    assert!(matches!(
        Layout::new(params, &spec, [1, 8, 8], None),
        Err(HomConvError::Unsupported(_))
    ));
    spec.kind = ConvKind::Transposed;
    spec.kernel = [1, 3, 3];
    assert!(matches!(
        Layout::new(params, &spec, [1, 8, 8], None),
        Err(HomConvError::Unsupported(_))
    ));
    // A q24 model cannot run under q32-p parameters.
    let arch = tiny_arch();
    let folded = Weights::random_trained_like(&arch, 1).unwrap().fold();
    let q24 = QuantModel::new(&folded, Quant::q24()).unwrap();
    let layout = Layout::new(params, &q24.convs()[0].spec, [1, 8, 8], None).unwrap();
    assert!(matches!(
        HomConvServer::new(params, &q24, 0, layout),
        Err(HomConvError::Modulus { .. })
    ));
}

/// The PAHE presets and the fixed-point configurations share their plaintext modulus.
#[test]
fn pahe_presets_match_quant_moduli() {
    assert_eq!(Params::q32().p(), Quant::q32().p);
    assert_eq!(Params::q24().p(), Quant::q24().p);
    assert_eq!(Quant::q32().p, 4294475777);
    assert_eq!(Quant::q24().p, 16760833);
}

/// The real q32 preset (N = 8192): one small layer, over TCP.
#[test]
fn homconv_at_the_q32_preset() {
    let params = Params::q32();
    assert!(params.is_secure());
    let p = params.p();
    let qm = model(3, 5, 3, 51);
    let dims = [1, 8, 8];
    let x_a = uniform(3, dims, p, 52);
    let x_b = uniform(3, dims, p, 53);
    let x = Tensor::from_vec(3, dims, add_mod(&x_a, &x_b, p)).unwrap();
    let (y_a, y_b, sent) = run_pair(tcp_pair(), &params, &qm, &x_a, &x_b, None);
    assert_eq!(
        add_mod(&y_a, &y_b, p),
        crate::fixed::conv(&qm, 0, &x).data()
    );
    assert_ne!(y_a.data(), unbiased(&qm, &x_a).data());
    assert!(sent > 0);
}

/// Times one 3×3 layer at the q32 preset over an in-memory channel: prints the filter
/// preparation and protocol times and the bytes each way (recorded in docs/PERFORMANCE.md).
fn measure_q32(side: usize, c_in: usize, c_out: usize) {
    use std::time::Instant;
    let params = Params::q32();
    let p = params.p();
    let qm = model(c_in, c_out, 3, 61);
    let dims = [1, side, side];
    let x_a = uniform(c_in, dims, p, 62);
    let x_b = uniform(c_in, dims, p, 63);
    let x = Tensor::from_vec(c_in, dims, add_mod(&x_a, &x_b, p)).unwrap();
    let (sk, pk) = keys(&params, 5);
    let layout = Layout::new(&params, &qm.convs()[0].spec, dims, None).unwrap();
    let start = Instant::now();
    let server = HomConvServer::new(&params, &qm, 0, layout.clone()).unwrap();
    let prepare = start.elapsed();
    let client = HomConvClient::new(&params, layout.clone()).unwrap();
    let (mut s_ch, mut c_ch) = Channel::in_memory_pair(ChannelConfig::default());
    let start = Instant::now();
    let (y_a, y_b) = thread::scope(|s| {
        let bob = s.spawn(|| {
            let mut prg = Prg::from_os_entropy();
            server.run(&mut s_ch, &pk, &x_b, &mut prg).unwrap()
        });
        let mut prg = Prg::from_os_entropy();
        let y_a = client.run(&mut c_ch, &sk, &x_a, &mut prg).unwrap();
        (y_a, bob.join().unwrap())
    });
    let online = start.elapsed();
    assert_eq!(
        add_mod(&y_a, &y_b, p),
        crate::fixed::conv(&qm, 0, &x).data()
    );
    let t = c_ch.meter().get(LABEL);
    println!(
        "homconv q32 {side}x{side} {c_in}->{c_out} 3x3: m = {}, r = {}, tiles = {}, up {} ct, \
         down {} ct; prepare {prepare:?}, protocol {online:?}, client sent {} B, received {} B",
        layout.dft_len(),
        layout.replicas(),
        layout.tiles(),
        layout.upload_ciphertexts(),
        layout.return_ciphertexts(),
        t.bytes_sent,
        t.bytes_received
    );
}

/// `cargo test -p bunet-unet --release homconv_q32_cost -- --ignored --nocapture`
#[test]
#[ignore = "measurement"]
fn homconv_q32_cost_64x64_16_to_16() {
    measure_q32(64, 16, 16);
}

/// The ANCHORS.md layer (Cheetah: 650 ms, 6.97 MB).
/// `cargo test -p bunet-unet --release homconv_q32_cost -- --ignored --nocapture`
#[test]
#[ignore = "measurement, ~seconds and ~0.5 GB of prepared filters"]
fn homconv_q32_cost_56x56_64_to_64() {
    measure_q32(56, 64, 64);
}

// ---- The coefficient-encoded backend -------------------------------------------------------

/// The two modes of the coefficient packing: the client encrypts its share (`coeff`, the
/// layout for weights `|w| ≤ 2^bits`) or the server its weights (`coeff-ew`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Client(u32),
    Ew,
}

/// Both modes, the client-encrypted one for the bound of every conv but a model's first
/// ([`COEFF_WEIGHT_BITS`]: the tests' conv 0 stands for any conv).
const MODES: [Mode; 2] = [Mode::Client(COEFF_WEIGHT_BITS), Mode::Ew];

/// Runs the coefficient HomConv of `qm`'s conv 0 in `mode` on fresh shares between two
/// threads and checks that the shares reconstruct the reference conv bit for bit and are
/// masked; returns the layout and the bytes the client sent and received under the label. In
/// the encrypted-weights mode it runs twice: the first run carries the set-up (under
/// [`SETUP_LABEL`], at least the weight ciphertexts' bytes), the second none, both exact.
fn check_coeff_shares(
    (mut server_ch, mut client_ch): (Channel, Channel),
    params: &Params,
    qm: &QuantModel,
    dims: [usize; 3],
    (max_tile, mode): (Option<usize>, Mode),
) -> (CoeffLayout, u64, u64) {
    let p = params.p();
    let c_in = qm.convs()[0].spec.c_in;
    let x_a = uniform(c_in, dims, p, 82);
    let x_b = uniform(c_in, dims, p, 83);
    let x = Tensor::from_vec(c_in, dims, add_mod(&x_a, &x_b, p)).unwrap();
    let expected = crate::fixed::conv(qm, 0, &x);
    let spec = &qm.convs()[0].spec;
    let (sk, pk) = keys(params, 4);
    let (layout, client, server) = match mode {
        Mode::Client(bits) => {
            let layout = CoeffLayout::new(params, spec, dims, max_tile, bits).unwrap();
            let server = CoeffHomConvServer::new(params, qm, 0, layout.clone()).unwrap();
            let client = CoeffHomConvClient::new(params, layout.clone()).unwrap();
            let (c, s) = (Box::new(client), Box::new(server));
            (layout, LinearClient::Coeff(c), LinearServer::Coeff(s))
        }
        Mode::Ew => {
            let layout = CoeffLayout::encrypted_weights(params, spec, dims, max_tile).unwrap();
            let (own, own_pk) = keys(params, 5);
            let server = EwHomConvServer::new(params, qm, 0, layout.clone(), Arc::new(own));
            let client = EwHomConvClient::new(params, layout.clone(), own_pk).unwrap();
            let (c, s) = (Box::new(client), Box::new(server.unwrap()));
            (layout, LinearClient::CoeffEw(c), LinearServer::CoeffEw(s))
        }
    };
    let runs = if mode == Mode::Ew { 2 } else { 1 };
    let what = format!(
        "{:?} {dims:?} {max_tile:?} {mode:?}: {layout:?}",
        qm.convs()[0].spec.kernel
    );
    let (mut sent, mut received) = (0, 0);
    let mut first_run = 0;
    for run in 0..runs {
        let (y_a, y_b, m, setup) = thread::scope(|s| {
            let bob = s.spawn(|| {
                let mut prg = Prg::from_seed([10 + run as u8; 16]);
                server.run(&mut server_ch, &pk, &x_b, &mut prg).unwrap()
            });
            let mut prg = Prg::from_seed([11 + run as u8; 16]);
            let y_a = client.run(&mut client_ch, &sk, &x_a, &mut prg).unwrap();
            let y_b = bob.join().unwrap();
            assert_eq!(client_ch.label(), "unlabelled", "label restored");
            let meter = client_ch.meter();
            (y_a, y_b, meter.get(LABEL), meter.get(SETUP_LABEL))
        });
        assert_eq!(y_a.dims(), layout.out_dims(), "{what}");
        assert_eq!(add_mod(&y_a, &y_b, p), expected.data(), "{what}");
        assert_ne!(y_a.data(), expected.data(), "{what}");
        assert_ne!(y_b.data(), expected.data(), "{what}");
        assert_ne!(y_a.data(), unbiased(qm, &x_a).data(), "{what}");
        let (wire_up, wire_down) = layout.wire_bytes(params);
        // Per run: the layout's bytes plus the frame headers.
        assert!(
            m.bytes_sent - sent >= wire_up,
            "{what}: {} bytes sent",
            m.bytes_sent
        );
        assert!(m.bytes_received - received >= wire_down, "{what}");
        if run == 1 {
            assert_eq!(
                m.bytes_sent - sent,
                first_run,
                "{what}: the runs send alike"
            );
        }
        first_run = m.bytes_sent - sent;
        (sent, received) = (m.bytes_sent, m.bytes_received);
        let weights = layout.setup_ciphertexts(params).1;
        match mode {
            Mode::Ew => {
                assert!(setup.bytes_received >= weights, "{what}: set-up");
                assert_eq!(setup.bytes_sent, 0, "{what}");
                assert_eq!(m.bytes_received, 0, "{what}: nothing back per run");
            }
            Mode::Client(_) => assert_eq!(setup.bytes_received, 0, "{what}"),
        }
    }
    (layout, sent / runs as u64, received / runs as u64)
}

/// 2D: 3×3 same, 1×1 head and 2×2 stride-2 transposed convs, one tile and several (partial
/// tiles at the edges), several channels per upload and outputs per product, in memory and
/// over TCP.
#[test]
fn coeff_homconv_shares_reconstruct_the_reference_bit_for_bit() {
    let params = small();
    let cases = [
        (3, 3, 5, [1, 8, 8], None, false),
        (3, 6, 4, [1, 20, 20], Some(9), true),
        (3, 2, 3, [1, 5, 13], Some(4), false),
        (1, 5, 7, [1, 20, 20], Some(6), false),
        (1, 4, 2, [1, 9, 3], None, true),
        (2, 3, 5, [1, 8, 8], None, false),
        (2, 4, 3, [1, 10, 7], Some(6), true),
    ];
    for (k, c_in, c_out, dims, max_tile, tcp) in cases {
        let qm = model(c_in, c_out, k, 31);
        for mode in MODES {
            let channels = if tcp {
                tcp_pair()
            } else {
                Channel::in_memory_pair(ChannelConfig::default())
            };
            let (l, _, _) = check_coeff_shares(channels, params, &qm, dims, (max_tile, mode));
            if max_tile.is_some() {
                assert!(l.tiles() > 1, "{dims:?} {max_tile:?}: {l:?}");
            }
        }
    }
    // Several input channels per upload and several outputs per product occur.
    let qm = model(4, 4, 3, 1);
    let spec = &qm.convs()[0].spec;
    let l = CoeffLayout::new(params, spec, [1, 4, 4], None, COEFF_WEIGHT_BITS).unwrap();
    assert!(
        l.channels_per_upload() * l.outputs_per_product() > 1,
        "{l:?}"
    );
}

/// 3D: 3×3×3 same, 2×2×2 transposed and 1×1×1 head convs, several tiles along every axis.
#[test]
fn coeff_homconv_3d_reconstructs_the_reference_bit_for_bit() {
    let params = small();
    let cases = [
        (SAME_3D, [3, 4, 5], None),
        (SAME_3D, [5, 7, 6], Some(3)),
        (UP_3D, [2, 3, 2], None),
        (UP_3D, [3, 4, 5], Some(3)),
        (HEAD_3D, [4, 5, 6], Some(3)),
        ((ConvKind::Same, [1, 3, 3]), [3, 6, 5], Some(4)),
    ];
    for ((kind, kernel), dims, max_tile) in cases {
        let qm = model_with(Quant::q32(), kind, kernel, 3, 4, 33);
        for mode in MODES {
            let pair = Channel::in_memory_pair(ChannelConfig::default());
            check_coeff_shares(pair, params, &qm, dims, (max_tile, mode));
        }
    }
}

/// At the real presets (N = 8192), over TCP, in both modes: a 2D 3×3 conv and a 2×2 stride-2
/// up-conv at q32, a 3D 3×3×3 conv and the 2D head at q24, the 3D up-conv and head at q32.
#[test]
fn coeff_homconv_at_the_q32_and_q24_presets() {
    let (q32, q24) = (Params::q32(), Params::q24());
    for mode in MODES {
        let qm = model_with(Quant::q32(), ConvKind::Same, [1, 3, 3], 8, 6, 41);
        let case = (None, mode);
        let (l, sent, received) = check_coeff_shares(tcp_pair(), &q32, &qm, [1, 40, 40], case);
        eprintln!("q32 8→6 40×40 {mode:?}: {l:?}, sent {sent} B, received {received} B");
        let qm = model_with(Quant::q24(), SAME_3D.0, SAME_3D.1, 3, 4, 42);
        check_coeff_shares(tcp_pair(), &q24, &qm, [6, 9, 9], (Some(5), mode));
        let qm = model_with(Quant::q24(), ConvKind::Pointwise, [1, 1, 1], 16, 2, 43);
        check_coeff_shares(tcp_pair(), &q24, &qm, [1, 30, 30], (None, mode));
        // 3D up-conv and head at q32.
        let qm = model_with(Quant::q32(), UP_3D.0, UP_3D.1, 4, 3, 45);
        check_coeff_shares(tcp_pair(), &q32, &qm, [3, 4, 5], (None, mode));
        let qm = model_with(Quant::q32(), HEAD_3D.0, HEAD_3D.1, 8, 2, 46);
        check_coeff_shares(tcp_pair(), &q32, &qm, [4, 6, 6], (None, mode));
        // The 2×2 stride-2 up-conv at q32 over TCP.
        let qm = model_with(Quant::q32(), ConvKind::Transposed, [1, 2, 2], 6, 4, 44);
        check_coeff_shares(tcp_pair(), &q32, &qm, [1, 12, 12], (None, mode));
    }
}

/// A model's first conv may hold weights up to the quantiser's `2^24` (calibration folds the
/// activation scale into it): under its public bound ([`coeff_weight_bits`]`(0)`) the shares
/// reconstruct the reference bit for bit, with weights beyond `2^16` and at `±2^24`, on the
/// small ring and at the q32 preset (1 → 8 channels, as a 1-channel CT model's first conv);
/// a layout at the 16-bit bound of the other convs refuses the same weights.
#[test]
fn coeff_first_conv_beyond_2_16_reconstructs_the_reference_bit_for_bit() {
    let bits = coeff_weight_bits(0);
    assert_eq!(1i64 << bits, crate::quant::MAX_WEIGHT);
    let q32 = Params::q32();
    for (params, dims, seed) in [(small(), [1, 12, 12], 61), (&q32, [1, 24, 24], 62)] {
        let mut qm = model(1, 8, 3, seed);
        let mut rng = SplitMix64::from_seed_for_tests(seed);
        let w = &mut qm.convs[0].weight;
        for x in w.iter_mut() {
            // Beyond 2^16 (up to 2^24), either sign.
            let m = (1 << 16) + 1 + (rng.next_u64() % ((1 << 24) - (1 << 16))) as i32;
            *x = if rng.next_u64() & 1 == 0 { m } else { -m };
        }
        (w[0], w[1]) = (1 << 24, -(1 << 24));
        let pair = Channel::in_memory_pair(ChannelConfig::default());
        let case = (None, Mode::Client(bits));
        let (l, sent, received) = check_coeff_shares(pair, params, &qm, dims, case);
        eprintln!(
            "{} first conv 1→8 {dims:?} at 2^{bits}: {l:?}, sent {sent} B, received {received} B",
            params.name()
        );
        assert_eq!(l.weight_bits(), bits);
        let spec = &qm.convs()[0].spec;
        let narrow = CoeffLayout::new(params, spec, dims, None, COEFF_WEIGHT_BITS).unwrap();
        assert!(matches!(
            CoeffHomConvServer::new(params, &qm, 0, narrow),
            Err(HomConvError::Unsupported(_))
        ));
    }
}

/// The session's sides take the bound from the conv's index alone: conv 0 at `2^24`, the
/// others at `2^16`, the client's layout equal to the server's. A weight beyond `2^16` in a
/// conv other than the first is refused with a typed error that names the DFT backend; the
/// same weight in the first conv is admitted.
#[test]
fn coeff_sides_take_the_public_bound_of_their_conv_and_refuse_beyond_it() {
    let params = small();
    let arch = tiny_arch();
    let folded = Weights::random_trained_like(&arch, 1).unwrap().fold();
    let qm = QuantModel::new(&folded, Quant::q32()).unwrap();
    let dims = [1, 6, 6];
    let backend = (None, LinearBackend::Coeff);
    let timing = FilterTiming::Deferred { keep: false };
    for (conv, bits) in [(0, 24), (1, COEFF_WEIGHT_BITS)] {
        assert_eq!(coeff_weight_bits(conv), bits);
        let spec = &qm.convs()[conv].spec;
        let client = LinearClient::new(params, (conv, spec), dims, None, (backend.1, None));
        let server = LinearServer::new(params, &qm, conv, dims, backend, (timing, None));
        let (Ok(LinearClient::Coeff(c)), Ok(LinearServer::Coeff(s))) = (client, server) else {
            panic!("conv {conv}: coefficient sides");
        };
        assert_eq!(c.layout(), s.layout(), "conv {conv}");
        assert_eq!(c.layout().weight_bits(), bits, "conv {conv}");
    }
    for conv in [0, 1] {
        let mut beyond = qm.clone();
        beyond.convs[conv].weight[3] = (1 << COEFF_WEIGHT_BITS) + 1;
        let server = LinearServer::new(params, &beyond, conv, dims, backend, (timing, None));
        match (conv, server) {
            (0, Ok(_)) => {}
            (1, Err(HomConvError::Unsupported(msg))) => {
                assert!(msg.contains("--linear dft"), "{msg}");
                assert!(msg.contains("2^16"), "{msg}");
            }
            (_, other) => panic!("conv {conv}: {other:?}"),
        }
    }
}

/// A deferred side prepares its filters only once the client's first upload has arrived:
/// none at construction, none if the client sends nothing; after a run it keeps them (`keep`)
/// or has dropped them, and every run's shares are bit-exact either way.
#[test]
fn deferred_filters_wait_for_the_first_upload_and_are_kept_or_dropped_after_the_run() {
    let params = small();
    let p = params.p();
    let dims = [1, 8, 8];
    let qm = model(3, 5, 3, 31);
    let layout = Layout::new(params, &qm.convs()[0].spec, dims, None).unwrap();
    let (sk, pk) = keys(params, 4);
    for keep in [false, true] {
        let timing = FilterTiming::Deferred { keep };
        let budget = PREPARED_FILTER_BUDGET;
        let server =
            HomConvServer::with_timing(params, &qm, 0, layout.clone(), budget, timing).unwrap();
        assert!(!server.streams_filters() && !server.holds_filters());

        // A client that closes without uploading: the run fails, nothing was prepared.
        let (mut server_ch, client_ch) = Channel::in_memory_pair(ChannelConfig::default());
        drop(client_ch);
        let x_b = uniform(3, dims, p, 32);
        let mut prg = Prg::from_seed([1; 16]);
        assert!(server.run(&mut server_ch, &pk, &x_b, &mut prg).is_err());
        assert!(
            !server.holds_filters(),
            "filters prepared without an upload"
        );

        let client = HomConvClient::new(params, layout.clone()).unwrap();
        for run in 0..2u64 {
            let x_a = uniform(3, dims, p, 40 + run);
            let x_b = uniform(3, dims, p, 50 + run);
            let x = Tensor::from_vec(3, dims, add_mod(&x_a, &x_b, p)).unwrap();
            let (mut server_ch, mut client_ch) = Channel::in_memory_pair(ChannelConfig::default());
            let (y_a, y_b) = thread::scope(|s| {
                let bob = s.spawn(|| {
                    let mut prg = Prg::from_seed([8; 16]);
                    server.run(&mut server_ch, &pk, &x_b, &mut prg).unwrap()
                });
                let mut prg = Prg::from_seed([9; 16]);
                let y_a = client.run(&mut client_ch, &sk, &x_a, &mut prg).unwrap();
                (y_a, bob.join().unwrap())
            });
            let expected = crate::fixed::conv(&qm, 0, &x);
            assert_eq!(
                add_mod(&y_a, &y_b, p),
                expected.data(),
                "keep {keep}, run {run}"
            );
            assert_eq!(server.holds_filters(), keep, "keep {keep}, run {run}");
        }
    }
}

/// The server's mask and the client's decrypted share come back as `Zeroizing` vectors (erased
/// when dropped: the binding's type stops compiling if either becomes a plain vector), and they
/// are the two shares of what the server returned: here the client's upload unmultiplied, so
/// share + mask is the client's gathered input tile.
#[test]
fn server_masks_and_client_shares_are_erased_on_drop_and_add_up() {
    use super::exchange::Packing;
    use bunet_crypto::pahe::{Ciphertext, Evaluator};
    use zeroize::Zeroizing;

    let params = small();
    let p = params.p();
    let dims = [1, 8, 8];
    let qm = model(1, 2, 3, 61);
    let layout = Layout::new(params, &qm.convs()[0].spec, dims, None).unwrap();
    let plan = CyclicPlan::new(layout.m, p).unwrap();
    let dft = Dft { layout, plan };
    let (sk, pk) = keys(params, 5);
    let eval = Evaluator::new(params);
    let mut prg = Prg::from_seed([6; 16]);
    let x = uniform(1, dims, p, 62);
    let upload = dft.encrypt(params, &sk, &x, 0, 0, &mut prg).unwrap();
    let response = dft.respond(params, &eval, upload.expand(), 0, &(), &pk, &mut prg);
    let (ct, mask): (Ciphertext, Zeroizing<Vec<u64>>) = response.unwrap();
    let share: Zeroizing<Vec<u64>> = dft.decrypt(params, &sk, &ct).unwrap();
    let tile = dft.layout.gather(x.channel(0), 0);
    for (s, m) in share
        .chunks_exact(dft.layout.m)
        .zip(mask.chunks_exact(dft.layout.m))
    {
        let sum: Vec<u64> = s.iter().zip(m).map(|(a, b)| (a + b) % p).collect();
        assert_eq!(sum, tile);
    }
}

/// The encrypted-weights backend takes nothing from its peer that it did not ask for: the
/// client refuses a set-up of the wrong kind, length, level or residues and a peer that hangs
/// up; the server refuses a response of the wrong kind or length; a side refuses a layout of
/// the other mode, a key of other parameters, and a backend without its key.
#[test]
fn coeff_ew_peer_damage_and_misuse_are_typed_errors() {
    let params = small();
    let p = params.p();
    let qm = model(3, 4, 3, 71);
    let spec = &qm.convs()[0].spec;
    let dims = [1, 8, 8];
    let layout = CoeffLayout::encrypted_weights(params, spec, dims, None).unwrap();
    let (own, own_pk) = keys(params, 6);
    let own = Arc::new(own);
    let x = uniform(3, dims, p, 72);
    let mut prg = Prg::from_seed([73; 16]);
    let client = EwHomConvClient::new(params, layout.clone(), own_pk.clone()).unwrap();
    let level = layout.plan().upload_level;
    let up_len = params.coeff_upload_len(level);

    // Set-up messages: another kind; too long; another level; residues out of range.
    let mut other_level = vec![0u8; params.coeff_upload_len(level - 1)];
    other_level[0] = (level - 1) as u8;
    let mut out_of_range = vec![0xffu8; up_len];
    out_of_range[0] = level as u8;
    for (kind, body) in [
        (KIND_CIPHERTEXT, vec![0u8; 8]),
        (KIND_COEFF_UPLOAD, vec![0u8; up_len + 1]),
        (KIND_COEFF_UPLOAD, other_level),
        (KIND_COEFF_UPLOAD, out_of_range),
    ] {
        let (mut s, mut c) = Channel::in_memory_pair(ChannelConfig::default());
        s.send(kind, &body).unwrap();
        s.flush().unwrap();
        let err = client.run(&mut c, &x, &mut prg).unwrap_err();
        assert!(
            matches!(err, HomConvError::Crypto(_) | HomConvError::Pahe(_)),
            "{err:?}"
        );
        assert!(!client.holds_weights());
    }
    // The server hangs up mid-set-up.
    let (s, mut c) = Channel::in_memory_pair(ChannelConfig::default());
    drop(s);
    let err = client.run(&mut c, &x, &mut prg).unwrap_err();
    assert!(
        matches!(
            err,
            HomConvError::Channel(_) | HomConvError::Crypto(bunet_crypto::Error::Channel(_))
        ),
        "{err:?}"
    );

    // Responses to the server: another kind; too long.
    for (kind, len) in [(KIND_CIPHERTEXT, 8), (KIND_COEFF_RESPONSE, 1 << 20)] {
        let server = EwHomConvServer::new(params, &qm, 0, layout.clone(), own.clone()).unwrap();
        let (mut s, mut c) = Channel::in_memory_pair(ChannelConfig::default());
        let err = thread::scope(|scope| {
            let bob = scope.spawn(|| server.run(&mut s, &x, &mut Prg::from_seed([74; 16])));
            // Take the set-up in, then answer with garbage.
            client.setup(&mut c).unwrap();
            c.send(kind, &vec![0u8; len]).unwrap();
            c.flush().unwrap();
            bob.join().unwrap().unwrap_err()
        });
        assert!(matches!(err, HomConvError::Crypto(_)), "{err:?}");
        assert!(server.sent_weights());
    }

    // Misuse: layouts of the other mode, keys of other parameters, missing keys.
    let plain = CoeffLayout::new(params, spec, dims, None, COEFF_WEIGHT_BITS).unwrap();
    assert!(EwHomConvClient::new(params, plain.clone(), own_pk.clone()).is_err());
    assert!(EwHomConvServer::new(params, &qm, 0, plain, own.clone()).is_err());
    assert!(CoeffHomConvClient::new(params, layout.clone()).is_err());
    assert!(CoeffHomConvServer::new(params, &qm, 0, layout.clone()).is_err());
    let q24 = Params::q24();
    let (other_sk, other_pk) = keys(&q24, 7);
    assert!(EwHomConvClient::new(params, layout.clone(), other_pk).is_err());
    assert!(EwHomConvServer::new(params, &qm, 0, layout, Arc::new(other_sk)).is_err());
    let backend = (None, LinearBackend::CoeffEw);
    let timing = (FilterTiming::Eager, None);
    assert!(matches!(
        LinearServer::new(params, &qm, 0, dims, backend, timing),
        Err(HomConvError::Unsupported(_))
    ));
    assert!(matches!(
        LinearClient::new(
            params,
            (0, spec),
            dims,
            None,
            (LinearBackend::CoeffEw, None)
        ),
        Err(HomConvError::Unsupported(_))
    ));
}
