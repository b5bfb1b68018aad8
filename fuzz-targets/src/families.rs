//! One target per message family of the two-party protocols: Ferret, the silent-OT
//! derivations and AND triples, the OT nonlinear backend, the Beaver-triple generation and the
//! HomConv exchange with peer-chosen extents.
//!
//! Each target runs one honest party of the family at a real library entry point and feeds it
//! the fuzz input as everything the other party sends ([`with_raw_peer`]). Byte 0 selects the
//! party's role (bit 0) and the sizes; the rest is the peer's raw stream, frame headers
//! included. Every party runs with a PRG seeded by its role alone, so the stream an honest peer
//! sends is fixed by the selector: [`family_transcript`] records it between two instances of the
//! same party function (the peer runs the other role), and replayed through the target it drives
//! the party to success through every phase of the family. The seed corpora are these
//! transcripts (`examples/seed_corpora.rs`); `tests/replay.rs` checks that they are accepted.

use bunet_crypto::channel::Channel;
use bunet_crypto::nonlinear::{self, Nonlinear, OtSession};
use bunet_crypto::pahe::{Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_crypto::silent::{self, Duplex};
use bunet_crypto::triples::{self, Role};
use bunet_unet::Tensor;
use bunet_unet::quant::{Op, QuantModel};
use bunet_unet::secure::budget;
use bunet_unet::secure::homconv::{FilterTiming, LinearClient, LinearServer};
use bunet_unet::secure::{LinearBackend, SessionConfig};

use crate::{SESSION_PRESET, record, session_config, session_model, with_raw_peer};

/// The role selected by bit 0 of a selector: `0` Alice (the COT sender in one-way families),
/// `1` Bob.
pub fn family_role(sel: u8) -> Role {
    if sel & 1 == 0 { Role::Alice } else { Role::Bob }
}

/// A party's PRG: fixed per family and role (never per input), so the honest peer's stream is
/// a function of the selector alone.
fn role_prg(family: u8, role: Role) -> Prg {
    let r = match role {
        Role::Alice => 0xa0,
        Role::Bob => 0xb0,
    };
    Prg::from_seed([family ^ r; 16])
}

/// Deterministic values below `p` (a party's shares or messages).
fn values(prg: &mut Prg, n: usize, p: u64) -> Vec<u64> {
    let mut v = vec![0u64; n];
    prg.fill_uniform_below(&mut v, p);
    v
}

/// The honest party of `family` for `sel`, on `ch`: whether it ran to success.
pub type Party = fn(&mut Channel, u8) -> bool;

/// The peer's stream for `sel`: what the party of the other role (`sel ^ 1`) sends to the party
/// of `sel` in an honest run over loopback TCP. Replayed through the target with selector `sel`
/// it is accepted.
pub fn family_transcript(party: Party, sel: u8) -> Vec<u8> {
    record(
        |ch| assert!(party(ch, sel ^ 1), "honest peer (selector {})", sel ^ 1),
        |ch| assert!(party(ch, sel), "honest party (selector {sel})"),
    )
}

/// Runs `party` for byte 0 of `data` on a channel whose peer sends the rest raw.
fn run_on_raw_peer(party: Party, data: &[u8]) -> bool {
    let Some((&sel, stream)) = data.split_first() else {
        return false;
    };
    with_raw_peer(stream, |ch| party(ch, sel))
}

// ---------------------------------------------------------------------------------------------
// Ferret

/// The Ferret parameters of the family targets: small and insecure (rounds of 5,120 COTs, a
/// pre round of 2,048), so a few thousand COTs cross the pre round and two main rounds.
pub fn family_ferret_params() -> silent::Params {
    silent::Params::insecure_for_tests()
}

/// COTs drawn by the [`ferret`] target for `sel`: `1 + 64·(sel >> 1)` (1..=8,129, up to the
/// fourth round), in two calls of a third and the rest (buffered and direct chunk paths).
pub fn ferret_cots(sel: u8) -> usize {
    1 + 64 * usize::from(sel >> 1)
}

/// The Ferret party of [`ferret`]: bit 0 of `sel` even, the COT sender (it reads the IKNP
/// receiver's base-OT points and extension columns; nothing after its set-up); odd, the COT
/// receiver (it reads the LPN seed, the base-OT sender's points and every chunk of half-tree
/// level messages). Sender blocks must have lsb 0.
pub fn ferret_party(ch: &mut Channel, sel: u8) -> bool {
    let n = ferret_cots(sel);
    let (first, rest) = (n / 3, n - n / 3);
    let params = family_ferret_params();
    let prg = role_prg(0x1f, family_role(sel));
    let mut out = vec![0u128; n];
    match family_role(sel) {
        Role::Alice => {
            let Ok(mut s) = silent::Sender::setup(ch, params, prg) else {
                return false;
            };
            let (a, b) = out.split_at_mut(first);
            if s.send_cot(ch, a).and_then(|()| s.send_cot(ch, b)).is_err() {
                return false;
            }
            assert_eq!(rest, b.len());
            assert!(out.iter().all(|q| q & 1 == 0), "sender block with lsb 1");
        }
        Role::Bob => {
            let Ok(mut r) = silent::Receiver::setup(ch, params, prg) else {
                return false;
            };
            let (a, b) = out.split_at_mut(first);
            if r.receive_cot(ch, a)
                .and_then(|()| r.receive_cot(ch, b))
                .is_err()
            {
                return false;
            }
        }
    }
    true
}

/// Ferret random COT with the other party's messages from the input: byte 0 as in
/// [`ferret_party`] and [`ferret_cots`], the rest the peer's stream.
pub fn ferret(data: &[u8]) -> bool {
    run_on_raw_peer(ferret_party, data)
}

// ---------------------------------------------------------------------------------------------
// Silent-OT derivations and AND triples

/// The moduli of the correlated OTs of [`silent_ot`] (two per OT, a multiplexer in two rings)
/// and of [`triples`] (by selector bit 1): the session preset's `p` and the 61-bit prime
/// `2^61 − 1`.
pub fn family_moduli() -> [u64; 2] {
    [SESSION_PRESET.quant().p, (1 << 61) - 1]
}

/// OTs per call of [`silent_ot`] for `sel`: `1 + 4·(sel >> 2)` (1..=253).
pub fn silent_ot_count(sel: u8) -> usize {
    1 + 4 * usize::from(sel >> 2)
}

/// The party of [`silent_ot`]. Bit 1 of `sel` clear: one-way derived OTs on one Ferret
/// session, Alice the sender (`send_chosen`, `send_one_of_n` with 4 messages of 4 bits,
/// `send_correlated_mod` in [`family_moduli`]; reads the choice corrections), Bob the receiver
/// (the matching `receive_*`; reads the ciphertexts). Bit 1 set: a [`Duplex`] (Ferret both
/// ways; the peer's trees and set-up) with `and_triples`, `and`, `and_shared` over two
/// operands (reads the openings) and `correlated_both`. Outputs are checked for length and
/// range.
pub fn silent_ot_party(ch: &mut Channel, sel: u8) -> bool {
    let n = silent_ot_count(sel);
    let role = family_role(sel);
    let mut prg = role_prg(0x2f ^ (sel & 2), role);
    let params = family_ferret_params();
    let moduli = family_moduli();
    let w = moduli.len();
    let choices: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
    if sel & 2 == 0 {
        let setup = Prg::from_seed(prg.next_seed());
        if role == Role::Alice {
            let Ok(mut s) = silent::Sender::setup(ch, params, setup) else {
                return false;
            };
            let chosen: Vec<[u128; 2]> =
                (0..n).map(|_| [prg.next_u128(), prg.next_u128()]).collect();
            let short: Vec<u8> = (0..4 * n).map(|i| (i * 7 % 16) as u8).collect();
            let corr: Vec<u64> = (0..n)
                .flat_map(|i| moduli.map(|m| (i as u64 * 0x9e37_79b9) % m))
                .collect();
            s.send_chosen(ch, &chosen).is_ok()
                && s.send_one_of_n(ch, 2, 4, &short).is_ok()
                && match s.send_correlated_mod(ch, &moduli, &corr) {
                    Ok(shares) => {
                        assert_eq!(shares.len(), n * w);
                        assert!(shares.iter().enumerate().all(|(i, &v)| v < moduli[i % w]));
                        true
                    }
                    Err(_) => false,
                }
        } else {
            let Ok(mut r) = silent::Receiver::setup(ch, params, setup) else {
                return false;
            };
            let picks: Vec<u8> = (0..n).map(|i| (i % 4) as u8).collect();
            let Ok(chosen) = r.receive_chosen(ch, &choices) else {
                return false;
            };
            assert_eq!(chosen.len(), n);
            let Ok(short) = r.receive_one_of_n(ch, 2, 4, &picks) else {
                return false;
            };
            assert!(short.len() == n && short.iter().all(|&v| v < 16));
            let Ok(v) = r.receive_correlated_mod(ch, &moduli, &choices) else {
                return false;
            };
            assert_eq!(v.len(), n * w);
            assert!(v.iter().enumerate().all(|(i, &v)| v < moduli[i % w]));
            true
        }
    } else {
        let Ok(mut d) = Duplex::setup(ch, role, params, Prg::from_seed(prg.next_seed())) else {
            return false;
        };
        let words = n.div_ceil(64);
        let tail = |v: &[u64]| n.is_multiple_of(64) || v[words - 1] >> (n % 64) == 0;
        let bits = |prg: &mut Prg| -> Vec<u64> {
            let mut v: Vec<u64> = (0..words).map(|_| prg.next_u64()).collect();
            if !n.is_multiple_of(64) {
                v[words - 1] &= (1 << (n % 64)) - 1;
            }
            v
        };
        let (x, y, z) = (bits(&mut prg), bits(&mut prg), bits(&mut prg));
        let Ok(t) = d.and_triples(ch, n) else {
            return false;
        };
        assert!(t.a.len() == words && t.b.len() == words && t.c.len() == words);
        let Ok(xy) = d.and(ch, &x, &y, n) else {
            return false;
        };
        assert!(xy.len() == words && tail(&xy), "AND output past n bits");
        let Ok(xs) = d.and_shared(ch, &x, &[&y, &z], n) else {
            return false;
        };
        assert!(xs.len() == 2 && xs.iter().all(|v| v.len() == words && tail(v)));
        let corr: Vec<u64> = (0..n)
            .flat_map(|i| moduli.map(|m| (i as u64 + 3) % m))
            .collect();
        let Ok((sent, got)) = d.correlated_both(ch, &moduli, &corr, &choices) else {
            return false;
        };
        assert!(sent.len() == n * w && got.len() == n * w);
        assert!(got.iter().enumerate().all(|(i, &v)| v < moduli[i % w]));
        true
    }
}

/// The silent-OT derivations (chosen, 1-of-N, correlated mod m) and the duplex's AND triples
/// and Beaver ANDs with the other party's messages from the input: byte 0 as in
/// [`silent_ot_party`] and [`silent_ot_count`], the rest the peer's stream.
pub fn silent_ot(data: &[u8]) -> bool {
    run_on_raw_peer(silent_ot_party, data)
}

// ---------------------------------------------------------------------------------------------
// OT nonlinear backend

/// Shared values per call of [`ot_backend`] for `sel`: `1 + (sel >> 1) % 64`.
pub fn ot_backend_count(sel: u8) -> usize {
    1 + usize::from(sel >> 1) % 64
}

/// Instances per chunk in [`ot_backend`]: small, so one call spans several chunks.
pub const OT_BACKEND_CHUNK: usize = 16;

/// The party of [`ot_backend`]: an [`OtSession`] of role bit 0 (Ferret both ways, insecure
/// parameters) with the session preset's fixed-point configuration and
/// [`OT_BACKEND_CHUNK`]-instance chunks, then `relu_rescale`, `rescale`, `max4_rescale` and
/// `argmax2` on random shares. Outputs are checked for length and range.
pub fn ot_backend_party(ch: &mut Channel, sel: u8) -> bool {
    let n = ot_backend_count(sel);
    let role = family_role(sel);
    let mut prg = role_prg(0x3f, role);
    let config = session_config(2)
        .nonlinear_config()
        .and_then(|c| c.with_chunk(OT_BACKEND_CHUNK))
        .expect("valid nonlinear configuration");
    assert_eq!(config.backend, nonlinear::Backend::Ot);
    let p = config.p;
    let setup = Prg::from_seed(prg.next_seed());
    let Ok(mut s) = OtSession::setup_with(ch, role, config, setup, family_ferret_params()) else {
        return false;
    };
    let in_range = |v: &[u64], len: usize| v.len() == len && v.iter().all(|&x| x < p);
    let shift = 4;
    let x = values(&mut prg, n, p);
    let Ok(v) = s.relu_rescale(ch, &x, shift) else {
        return false;
    };
    assert!(in_range(&v, n), "ReLU output");
    let Ok(v) = s.rescale(ch, &x, shift) else {
        return false;
    };
    assert!(in_range(&v, n), "rescale output");
    let windows = values(&mut prg, 4 * n, p);
    let Ok(v) = s.max4_rescale(ch, &windows, shift) else {
        return false;
    };
    assert!(in_range(&v, n), "max pool output");
    let pairs = values(&mut prg, 2 * n, p);
    let Ok(v) = s.argmax2(ch, &pairs) else {
        return false;
    };
    let expected = if role == Role::Alice { n } else { 0 };
    assert_eq!(v.len(), expected, "argmax output");
    true
}

/// The OT backend's ReLU, rescale, max pool and argmax with the other party's messages from
/// the input: byte 0 as in [`ot_backend_party`] and [`ot_backend_count`], the rest the peer's
/// stream.
pub fn ot_backend(data: &[u8]) -> bool {
    run_on_raw_peer(ot_backend_party, data)
}

// ---------------------------------------------------------------------------------------------
// Beaver triples

/// Triples, square pairs and products per call of [`triples`] for `sel`: `1 + (sel >> 2)`.
pub fn triples_count(sel: u8) -> usize {
    1 + usize::from(sel >> 2)
}

/// The party of [`triples`]: a [`triples::Session`] of role bit 0 modulo
/// `family_moduli()[bit 1]` (IKNP both ways), then `triples`, `square_pairs` (Gilboa
/// multiplications: the peer's correlated-OT messages), `multiply` and `square` (the peer's
/// openings). Outputs are checked for length and range.
pub fn triples_party(ch: &mut Channel, sel: u8) -> bool {
    let n = triples_count(sel);
    let p = family_moduli()[usize::from(sel >> 1 & 1)];
    let role = family_role(sel);
    let mut prg = role_prg(0x4f, role);
    let setup = Prg::from_seed(prg.next_seed());
    let Ok(mut s) = triples::Session::setup(ch, role, p, setup) else {
        return false;
    };
    let in_range = |v: &[u64]| v.len() == n && v.iter().all(|&x| x < p);
    let Ok(t) = s.triples(ch, n) else {
        return false;
    };
    assert!(
        in_range(&t.a) && in_range(&t.b) && in_range(&t.c),
        "triple shares"
    );
    let Ok(sq) = s.square_pairs(ch, n) else {
        return false;
    };
    assert!(in_range(&sq.a) && in_range(&sq.c), "square-pair shares");
    let (x, y) = (values(&mut prg, n, p), values(&mut prg, n, p));
    let Ok(z) = s.multiply(ch, &x, &y, t) else {
        return false;
    };
    assert!(in_range(&z), "product shares");
    let Ok(z) = s.square(ch, &x, sq) else {
        return false;
    };
    assert!(in_range(&z), "square shares");
    true
}

/// Beaver-triple and square-pair generation and the multiply / square protocols with the other
/// party's messages from the input: byte 0 as in [`triples_party`] and [`triples_count`], the
/// rest the peer's stream.
pub fn triples(data: &[u8]) -> bool {
    run_on_raw_peer(triples_party, data)
}

// ---------------------------------------------------------------------------------------------
// HomConv with peer-chosen extents

/// The memory budget of a [`homconv_extents`] session beside its channel: the server refuses
/// extents whose plan estimate ([`budget::server_session`]) exceeds it plus the channel's
/// queues ([`homconv_admits`]), as `bunet serve --memory` would; the fuzz runs set libFuzzer's
/// `-malloc_limit_mb` to it, so no single allocation may exceed it.
pub const HOMCONV_BUDGET: u64 = 256 << 20;

/// Whether the [`homconv_extents`] server admits a session of `estimate`: its terms other than
/// the channel's background queues ([`budget::Estimate::channel`], 258 MiB at their bound
/// whatever the extents, counted since the channel's background I/O) within
/// [`HOMCONV_BUDGET`], i.e. a `--memory` of the budget plus the queues.
pub fn homconv_admits(estimate: &budget::Estimate) -> bool {
    estimate.total() <= HOMCONV_BUDGET + estimate.channel
}

/// The HomConv session configuration for selector bit 0: DFT or coefficient HomConv, the
/// session targets' ReLU model and preset.
pub fn homconv_config(sel: u8) -> SessionConfig {
    SessionConfig {
        linear: if sel & 1 == 0 {
            LinearBackend::Dft
        } else {
            LinearBackend::Coeff
        },
        ..session_config(0)
    }
}

/// The session preset's PAHE parameters, built once (not per execution).
fn homconv_params() -> &'static Params {
    static P: std::sync::OnceLock<Params> = std::sync::OnceLock::new();
    P.get_or_init(|| SESSION_PRESET.pahe_params())
}

/// A fixed key pair of the session preset (the server's re-randomisation key; the honest
/// client's secret key).
fn homconv_keys() -> &'static (SecretKey, PublicKey) {
    static K: std::sync::OnceLock<(SecretKey, PublicKey)> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        let mut prg = Prg::from_seed([0x5f; 16]);
        let sk = SecretKey::generate(homconv_params(), &mut prg);
        let pk = PublicKey::generate(&sk, &mut prg);
        (sk, pk)
    })
}

/// The conv of `model` that byte 0 (bits 1..) selects, and its input extents for a request of
/// extents `dims`.
fn homconv_layer(model: &QuantModel, sel: u8, dims: [usize; 3]) -> (usize, [usize; 3]) {
    let plan = model.plan();
    let conv = usize::from(sel >> 1) % model.convs().len();
    let step = plan
        .steps()
        .iter()
        .find(|s| s.op == Op::Conv { conv })
        .expect("every conv has its step");
    (conv, plan.tensor_dims(step.inputs[0], dims))
}

/// The extents of a [`homconv_extents`] input (bytes 1..7, three little-endian `u16`).
pub fn homconv_dims(data: &[u8]) -> Option<[usize; 3]> {
    let e = data.get(1..7)?;
    Some([0, 2, 4].map(|i| usize::from(u16::from_le_bytes([e[i], e[i + 1]]))))
}

/// One party's deterministic input share of `channels` planes of `dims`.
fn homconv_share(role: Role, channels: usize, dims: [usize; 3], p: u64) -> Tensor<u64> {
    let mut prg = role_prg(0x6f, role);
    let len = channels * dims.iter().product::<usize>();
    Tensor::from_vec(channels, dims, values(&mut prg, len, p)).expect("shape of its length")
}

/// The server of one HomConv layer whose extents the client chose, as the session driver
/// runs it: admission by the plan's memory estimate within [`HOMCONV_BUDGET`] (refused:
/// `false`), the layer's server side ([`LinearServer`], filters deferred to the first upload),
/// then its run on the client's uploads from `ch`. The output must have the layer's shape.
pub fn homconv_server(ch: &mut Channel, sel: u8, dims: [usize; 3]) -> bool {
    let config = homconv_config(sel);
    let model = session_model(0);
    let Ok(estimate) = budget::server_session(model, &config, dims) else {
        return false;
    };
    if !homconv_admits(&estimate) {
        return false;
    }
    let (conv, d) = homconv_layer(model, sel, dims);
    let params = homconv_params();
    let timing = FilterTiming::Deferred { keep: false };
    let Ok(server) = LinearServer::new(
        params,
        model,
        conv,
        d,
        (config.max_tile, config.linear),
        (timing, None),
    ) else {
        return false;
    };
    let spec = &model.convs()[conv].spec;
    let x_b = homconv_share(Role::Bob, spec.c_in, d, params.p());
    let mut prg = role_prg(0x7f, Role::Bob);
    match server.run(ch, &homconv_keys().1, &x_b, &mut prg) {
        Ok(y) => {
            assert_eq!(y.channels(), spec.c_out, "output channels");
            true
        }
        Err(_) => false,
    }
}

/// The honest client of [`homconv_server`] (for the seeds): uploads its share's ciphertexts
/// and decrypts the responses.
pub fn homconv_client(ch: &mut Channel, sel: u8, dims: [usize; 3]) -> bool {
    let config = homconv_config(sel);
    let model = session_model(0);
    let (conv, d) = homconv_layer(model, sel, dims);
    let params = homconv_params();
    let spec = &model.convs()[conv].spec;
    let backend = (config.linear, None);
    let Ok(client) = LinearClient::new(params, (conv, spec), d, config.max_tile, backend) else {
        return false;
    };
    let x_a = homconv_share(Role::Alice, spec.c_in, d, params.p());
    let mut prg = role_prg(0x7f, Role::Alice);
    client.run(ch, &homconv_keys().0, &x_a, &mut prg).is_ok()
}

/// The HomConv server with the client's extents and uploads from the input: byte 0 selects the
/// linear backend (bit 0: DFT or coefficient) and the conv (bits 1..); bytes 1..7 are the
/// request's extents (three `u16`, any value: too large, zero, not a multiple of the pooling,
/// or over the budget must be refused with a typed error); the rest is the client's stream of
/// uploads.
pub fn homconv_extents(data: &[u8]) -> bool {
    let Some(dims) = homconv_dims(data) else {
        return false;
    };
    with_raw_peer(&data[7..], |ch| homconv_server(ch, data[0], dims))
}

/// The honest client's uploads for selector `sel` and extents `dims`, with the 7-byte header
/// of a [`homconv_extents`] input.
pub fn homconv_transcript(sel: u8, dims: [usize; 3]) -> Vec<u8> {
    let mut out = vec![sel];
    for d in dims {
        out.extend_from_slice(&(d as u16).to_le_bytes());
    }
    out.extend(record(
        |ch| assert!(homconv_client(ch, sel, dims), "honest HomConv client"),
        |ch| assert!(homconv_server(ch, sel, dims), "honest HomConv server"),
    ));
    out
}

/// The one-way and duplex family targets: name, honest party, and the selectors of their
/// seeds (both roles; smallest sizes, sizes that cross chunk and round boundaries, largest).
pub const FAMILY_SEEDS: &[(&str, Party, &[u8])] = &[
    ("ferret", ferret_party, &[0, 1, 11, 201]),
    (
        "silent_ot",
        silent_ot_party,
        &[0, 1, 2, 3, 0x40, 0x41, 0x42, 0x43, 0xfc, 0xfd, 0xfe, 0xff],
    ),
    ("ot_backend", ot_backend_party, &[0, 1, 40, 41, 126, 127]),
    (
        "triples",
        triples_party,
        &[0, 1, 2, 3, 0x80, 0x81, 0x82, 0x83],
    ),
];

/// The seeds of [`homconv_extents`]: (selector, extents) — both backends on the first conv
/// (five input channels) and on the second (two) at the smallest extents the pooling takes.
/// (Larger extents within [`HOMCONV_BUDGET`], up to 32×32, still fit one upload per tile.)
pub const HOMCONV_SEED_CASES: [(u8, [usize; 3]); 4] = [
    (0, [1, 8, 8]),
    (1, [1, 8, 8]),
    (2, [1, 8, 8]),
    (3, [1, 8, 8]),
];
