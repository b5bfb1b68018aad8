//! Fuzz target bodies of BUNET, one `pub fn(&[u8])` per target.
//!
//! Each function must return normally on every input: a panic is either a library bug (a
//! decoder or protocol step that trusts peer bytes) or a broken law (a differential check).
//! The cargo-fuzz project in `fuzz/` calls these under libFuzzer (nightly); `tests/replay.rs`
//! replays the checked-in corpora on stable, so they run in CI. See `docs/FUZZING.md`.
//!
//! Targets that read what the other party sends drive the real library entry point through a
//! [`Channel`] over loopback TCP whose peer writes the fuzz bytes raw (frame headers included)
//! and then closes its sending side ([`with_raw_peer`]).

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::gc::{self, Builder, Circuit, Delta, Garbler, Party, bristol};
use bunet_crypto::nonlinear;
use bunet_crypto::ot;
use bunet_crypto::pahe::{Ciphertext, GaloisKeys, Params, PublicKey, SeededCiphertext};
use bunet_crypto::prg::Prg;
use bunet_crypto::wire::{Decode, Encode, decode_exact};
use bunet_kernels::modarith::MulKind;
use bunet_kernels::ntt::{CyclicPlan, Kind, Ntt, Plan};
use bunet_kernels::primes::primes_congruent_one;
use bunet_kernels::{Backend, Modulus};
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::quant::QuantModel;
use bunet_unet::secure::{Client, LinearBackend, Preset, Server, SessionConfig};
use bunet_unet::{Tensor, Weights};

pub mod families;
pub use families::{ferret, homconv_extents, ot_backend, silent_ot, triples};

/// A target: a name (the `fuzz/fuzz_targets/<name>.rs` file and corpus directory) and its body.
/// The body returns whether the input was accepted as valid (decoded, or drove the protocol
/// step to success); differential targets return `true` whenever their checks ran.
pub type Target = (&'static str, fn(&[u8]) -> bool);

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("pahe_small", pahe_small),
    ("pahe_q32", pahe_q32),
    ("channel_recv", channel_recv),
    ("gc_evaluate", gc_evaluate),
    ("gc_differential", gc_differential),
    ("ot_sender", ot_sender),
    ("ot_receiver", ot_receiver),
    ("bristol_parse", bristol_parse),
    ("ntt_differential", ntt_differential),
    ("modulus_ops", modulus_ops),
    ("session_server", session_server),
    ("session_client", session_client),
    ("handshake", handshake),
    ("ferret", ferret),
    ("silent_ot", silent_ot),
    ("ot_backend", ot_backend),
    ("triples", triples),
    ("homconv_extents", homconv_extents),
];

// ---------------------------------------------------------------------------------------------
// Parameters

/// The handshake's two messages, decoded exactly (trailing bytes rejected): byte 0 even, a
/// client's hello, which is then printed next to a hello of our own (as a log line would);
/// odd, the server's reply, which must re-encode to the same bytes.
pub fn handshake(data: &[u8]) -> bool {
    use bunet_unet::secure::handshake::{Hello, Reply};
    let Some((&sel, body)) = data.split_first() else {
        return false;
    };
    if sel % 2 == 0 {
        let Ok(theirs) = decode_exact::<Hello>(body, &()) else {
            return false;
        };
        let ours = Hello::client_for(
            &handshake_arch(),
            &SessionConfig::new(Preset::Q32),
            [1, 32, 32],
        );
        let _ = format!("{theirs:?} {ours:?}");
        true
    } else {
        match decode_exact::<Reply>(body, &()) {
            Ok(reply) => {
                assert_eq!(
                    reply.to_bytes(),
                    body,
                    "a decoded reply re-encodes to its bytes"
                );
                true
            }
            Err(_) => false,
        }
    }
}

/// The architecture of the handshake seeds: the seed's, shallower.
pub fn handshake_arch() -> Architecture {
    Architecture {
        base_features: 4,
        depth: 2,
        ..Architecture::seed()
    }
}

/// Degree of the small insecure PAHE sets.
pub const SMALL_N: usize = 32;

/// The two small insecure PAHE parameter sets: `[0]` three 50-bit primes (as the crypto
/// tests), `[1]` primes of 30, 45 and 61 bits (uneven bit packing, a limb at the 62-bit edge).
pub fn small_params() -> &'static [Params; 2] {
    static P: OnceLock<[Params; 2]> = OnceLock::new();
    P.get_or_init(|| {
        let two_n = 2 * SMALL_N as u64;
        let p = primes_congruent_one(20, two_n, 1)[0];
        let even = primes_congruent_one(50, two_n, 3);
        let uneven = [
            primes_congruent_one(30, two_n, 1)[0],
            primes_congruent_one(45, two_n, 1)[0],
            primes_congruent_one(61, two_n, 1)[0],
        ];
        [
            Params::insecure_for_tests(SMALL_N, p, &even).expect("valid small set"),
            Params::insecure_for_tests(SMALL_N, p, &uneven).expect("valid small set"),
        ]
    })
}

/// The real `q32` preset (N = 8192, primes of 50 + 41 + 41 + 41 bits), built once.
pub fn q32_params() -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(Params::q32)
}

// ---------------------------------------------------------------------------------------------
// PAHE decoders

/// Decodes `bytes` exactly as `T`; when that succeeds, re-encoding must give `bytes` back (the
/// PAHE formats are canonical: packed residues are `< q_i` with zero padding bits, Galois
/// elements strictly increasing).
fn decode_canonical<T: Decode + Encode>(bytes: &[u8], ctx: &T::Context) -> bool {
    match decode_exact::<T>(bytes, ctx) {
        Ok(value) => {
            assert_eq!(
                value.to_bytes(),
                bytes,
                "decode then encode is not the identity"
            );
            true
        }
        Err(_) => false,
    }
}

fn pahe_object(selector: u8, bytes: &[u8], params: &Params) -> bool {
    match selector % 4 {
        // Full ciphertext at any level (fresh public-key encryptions and the server's return
        // path after modulus switching, level 1, use the same format).
        0 => decode_canonical::<Ciphertext>(bytes, params),
        1 => decode_canonical::<SeededCiphertext>(bytes, params),
        2 => decode_canonical::<PublicKey>(bytes, params),
        _ => decode_canonical::<GaloisKeys>(bytes, params),
    }
}

/// PAHE peer objects under the small insecure sets: byte 0 selects the object (`% 4`:
/// ciphertext, seeded ciphertext, public key, Galois keys) and the set (`bit 2`); the rest is
/// the encoding.
pub fn pahe_small(data: &[u8]) -> bool {
    let Some((&sel, bytes)) = data.split_first() else {
        return false;
    };
    pahe_object(sel, bytes, &small_params()[usize::from(sel >> 2 & 1)])
}

/// PAHE peer objects under the real `q32` preset: byte 0 selects the object as in
/// [`pahe_small`] (Galois keys too, though a valid one is ~0.8 MB and not in the corpus).
pub fn pahe_q32(data: &[u8]) -> bool {
    let Some((&sel, bytes)) = data.split_first() else {
        return false;
    };
    pahe_object(sel, bytes, q32_params())
}

// ---------------------------------------------------------------------------------------------
// Raw peer over loopback TCP

fn listener() -> &'static Mutex<TcpListener> {
    static L: OnceLock<Mutex<TcpListener>> = OnceLock::new();
    L.get_or_init(|| Mutex::new(TcpListener::bind("127.0.0.1:0").expect("bind loopback")))
}

/// A connected loopback pair (ours, theirs).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = listener().lock().unwrap_or_else(|e| e.into_inner());
    let addr = l.local_addr().expect("listener address");
    let ours = TcpStream::connect(addr).expect("connect loopback");
    let (theirs, _) = l.accept().expect("accept loopback");
    (ours, theirs)
}

/// Runs `f` on a channel whose peer writes `bytes` raw (it is the whole byte stream the channel
/// reads, frame headers included), then shuts its sending side; everything `f` sends is read
/// and discarded. Returns what `f` returns.
pub fn with_raw_peer<R>(bytes: &[u8], f: impl FnOnce(&mut Channel) -> R) -> R {
    let (ours, theirs) = tcp_pair();
    let mut drain = theirs.try_clone().expect("clone loopback stream");
    let cut = theirs.try_clone().expect("clone loopback stream");
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        let mut theirs = theirs;
        let _ = theirs.write_all(&data);
        let _ = theirs.shutdown(Shutdown::Write);
    });
    let drainer = std::thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 16];
        while matches!(drain.read(&mut sink), Ok(n) if n > 0) {}
    });
    let config = ChannelConfig {
        read_timeout: Some(Duration::from_secs(20)),
        ..ChannelConfig::default()
    };
    let mut ch = Channel::tcp(ours, config).expect("channel over loopback");
    let out = f(&mut ch);
    drop(ch);
    // Once `f` is done the rest of `bytes` has no reader: without this the writer can sit in a
    // zero-window `send` until the kernel gives up on the closed end (up to a minute, which
    // libFuzzer reported as a timeout of `session_server` in campaign 7).
    let _ = cut.shutdown(Shutdown::Both);
    writer.join().expect("raw peer writer");
    drainer.join().expect("raw peer drainer");
    out
}

/// Frames `(kind, body)` as the channel would send them (for seeds and tests).
pub fn frame(kind: u16, body: &[u8]) -> Vec<u8> {
    use bunet_crypto::channel::{MAGIC, PROTOCOL_VERSION};
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// `Channel::recv` on a raw byte stream: bytes 0..2 are the expected kind, 2..6 the receive
/// bound (`% 2^20`), the rest the stream. Receives up to 8 frames; each body must respect the
/// bound.
pub fn channel_recv(data: &[u8]) -> bool {
    if data.len() < 6 {
        return false;
    }
    let kind = u16::from_le_bytes([data[0], data[1]]);
    let max_len = u32::from_le_bytes([data[2], data[3], data[4], data[5]]) as usize % (1 << 20);
    with_raw_peer(&data[6..], |ch| {
        let mut frames = 0;
        while frames < 8 {
            match ch.recv(kind, max_len) {
                Ok(body) => assert!(body.len() <= max_len, "body longer than the bound"),
                Err(_) => break,
            }
            frames += 1;
        }
        frames > 0
    })
}

// ---------------------------------------------------------------------------------------------
// Garbled circuits

/// The fixed circuits of [`gc_evaluate`]: a 4-bit adder with a comparison, outputs to the
/// evaluator (`[0]`, decoding bits cross the wire) or to the garbler (`[1]`, colour bits go
/// back).
pub fn gc_circuits() -> &'static [Circuit; 2] {
    static C: OnceLock<[Circuit; 2]> = OnceLock::new();
    C.get_or_init(|| {
        let build = |to: Party| {
            let mut b = Builder::new();
            let x = b.garbler_input(4);
            let y = b.evaluator_input(4);
            let (mut sum, carry) = b.add(&x, &y, gc::circuit::ZERO);
            sum.push(carry);
            sum.push(b.less_than(&x, &y));
            sum.push(gc::circuit::ONE);
            b.finish(sum, to)
        };
        [build(Party::Evaluator), build(Party::Garbler)]
    })
}

/// Instance count of [`gc_evaluate`] for selector byte `sel`.
pub fn gc_evaluate_instances(sel: u8) -> usize {
    1 + usize::from(sel >> 1) % 4
}

/// `gc::Evaluator::evaluate` reading a raw garbler stream: byte 0 selects the circuit (`bit 0`,
/// see [`gc_circuits`]) and the instance count ([`gc_evaluate_instances`]); the rest is what
/// the garbler sends (garbled-table frames and decoding-bit frames).
pub fn gc_evaluate(data: &[u8]) -> bool {
    let Some((&sel, stream)) = data.split_first() else {
        return false;
    };
    let circuit = &gc_circuits()[usize::from(sel & 1)];
    let m = gc_evaluate_instances(sel);
    let labels = vec![0x5555u128; m * circuit.n_evaluator_inputs()];
    with_raw_peer(stream, |ch| {
        let mut ev = gc::Evaluator::new();
        let Ok(out) = ev.evaluate(ch, circuit, m, &labels) else {
            return false;
        };
        let expected = match circuit.output_to() {
            Party::Evaluator => m * circuit.n_outputs(),
            Party::Garbler => 0,
        };
        assert_eq!(out.len(), expected, "evaluator output length");
        true
    })
}

/// A byte cursor that yields zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// Garbled evaluation = plain evaluation on a small random circuit built from the bytes with
/// [`Builder`] (XOR, AND, OR, NOT, MUX and constants), garbled and evaluated over an in-memory
/// channel pair for 1–3 instances; the evaluator's labels are `L0 ⊕ b·Δ` (the stand-in for
/// correlated OT used by the crypto tests).
pub fn gc_differential(data: &[u8]) -> bool {
    let mut bytes = Bytes(data);
    let head = bytes.next();
    let ng = 1 + usize::from(head & 3);
    let ne = 1 + usize::from(head >> 2 & 3);
    let to = if head & 0x10 != 0 {
        Party::Garbler
    } else {
        Party::Evaluator
    };
    let m = 1 + usize::from(head >> 5) % 3;
    let mut b = Builder::new();
    let mut wires = b.garbler_input(ng);
    wires.extend(b.evaluator_input(ne));
    let n_ops = usize::from(bytes.next() % 48);
    for _ in 0..n_ops {
        let op = bytes.next();
        let pick = |bytes: &mut Bytes<'_>| wires[usize::from(bytes.next()) % wires.len()];
        let x = pick(&mut bytes);
        let y = pick(&mut bytes);
        let w = match op % 7 {
            0 => b.xor(x, y),
            1 => b.and(x, y),
            2 => b.or(x, y),
            3 => b.not(x),
            4 => {
                let s = pick(&mut bytes);
                b.mux(s, x, y)
            }
            5 => b.and(x, gc::circuit::ONE),
            _ => b.xor(x, gc::circuit::ZERO),
        };
        wires.push(w);
    }
    let n_out = 1 + usize::from(bytes.next() % 8).min(wires.len() - 1);
    let outputs = wires[wires.len() - n_out..].to_vec();
    let circuit = b.finish(outputs, to);
    let bit =
        |bytes: &mut Bytes<'_>, i: usize| bytes.0.get(i / 8).is_some_and(|v| v >> (i % 8) & 1 == 1);
    let g_bits: Vec<bool> = (0..m * ng).map(|i| bit(&mut bytes, i)).collect();
    let e_bits: Vec<bool> = (0..m * ne).map(|i| bit(&mut bytes, 64 + i)).collect();

    let mut prg = Prg::from_seed([head; 16]);
    let delta = Delta::random(&mut prg);
    let mut garbler = Garbler::with_prg(delta, prg);
    let zero = garbler.evaluator_zero_labels(&circuit, m);
    let d = garbler.delta().expose();
    let labels: Vec<u128> = zero
        .iter()
        .zip(&e_bits)
        .map(|(&z, &b)| if b { z ^ d } else { z })
        .collect();
    let (mut ca, mut cb) = Channel::in_memory_pair(ChannelConfig::default());
    let (g_out, e_out) = std::thread::scope(|s| {
        let circuit = &circuit;
        let h = s.spawn(move || {
            gc::Evaluator::new()
                .evaluate(&mut cb, circuit, m, &labels)
                .expect("honest evaluation")
        });
        let g = garbler
            .garble(&mut ca, circuit, m, &g_bits, &zero)
            .expect("honest garbling");
        (g, h.join().expect("evaluator thread"))
    });
    let got = match to {
        Party::Evaluator => {
            assert!(g_out.is_empty());
            e_out
        }
        Party::Garbler => {
            assert!(e_out.is_empty());
            g_out
        }
    };
    let mut expected = Vec::new();
    for i in 0..m {
        expected.extend(
            circuit
                .eval_plain(&g_bits[i * ng..(i + 1) * ng], &e_bits[i * ne..(i + 1) * ne])
                .expect("plain evaluation"),
        );
    }
    assert_eq!(
        got, expected,
        "garbled evaluation differs from plain evaluation"
    );
    true
}

/// `bristol::parse` on arbitrary text: byte 0 is the number of garbler input values, the rest
/// UTF-8 text (non-UTF-8 inputs are skipped). A parsed circuit is evaluated in the clear on
/// all-zero inputs when it has at most 2^16 wires.
pub fn bristol_parse(data: &[u8]) -> bool {
    let Some((&g, text)) = data.split_first() else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let to = if g & 0x80 != 0 {
        Party::Garbler
    } else {
        Party::Evaluator
    };
    let Ok(c) = bristol::parse(text, usize::from(g & 0x7f), to) else {
        return false;
    };
    if c.n_wires() <= 1 << 16 {
        let out = c
            .eval_plain(
                &vec![false; c.n_garbler_inputs()],
                &vec![false; c.n_evaluator_inputs()],
            )
            .expect("inputs of the circuit's own sizes");
        assert_eq!(out.len(), c.n_outputs());
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Oblivious transfer

/// Moduli of the mod-p OT targets, chosen by a selector byte.
pub const OT_MODULI: [u64; 4] = [2, 65537, 4294475777, (1 << 61) - 1];

/// IKNP sender reading a raw receiver: byte 0 picks the OT count (`1 + b % 200`) and the
/// modulus ([`OT_MODULI`], `b >> 6`); then [`ot::Sender::setup`] (base-OT receiver: reads the
/// base sender's point), `send_correlated` (reads the extension columns) and `send_chosen_mod`
/// (reads another extension batch) run on the stream until the first error.
pub fn ot_sender(data: &[u8]) -> bool {
    let Some((&sel, stream)) = data.split_first() else {
        return false;
    };
    let n = 1 + usize::from(sel) % 200;
    let p = OT_MODULI[usize::from(sel >> 6)];
    with_raw_peer(stream, |ch| {
        let mut prg = Prg::from_seed([1; 16]);
        let Ok(mut sender) = ot::Sender::setup(ch, 0x1234_5678_9abc_def1, &mut prg) else {
            return false;
        };
        let mut out = vec![0u128; n];
        if sender.send_correlated(ch, &mut out).is_err() {
            return false;
        }
        let messages: Vec<[u64; 2]> = (0..n as u64).map(|i| [i % p, (i + 1) % p]).collect();
        sender.send_chosen_mod(ch, &messages, p).is_ok()
    })
}

/// IKNP receiver reading a raw sender: byte 0 as in [`ot_sender`]; then
/// [`ot::Receiver::setup`] (base-OT sender: reads the base receiver's points),
/// `receive_chosen_mod` and `receive_correlated_mod` (read mod-p corrections) run on the
/// stream until the first error; outputs must be reduced mod p.
pub fn ot_receiver(data: &[u8]) -> bool {
    let Some((&sel, stream)) = data.split_first() else {
        return false;
    };
    let n = 1 + usize::from(sel) % 200;
    let p = OT_MODULI[usize::from(sel >> 6)];
    let choices: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
    with_raw_peer(stream, |ch| {
        let mut prg = Prg::from_seed([2; 16]);
        let Ok(mut receiver) = ot::Receiver::setup(ch, &mut prg) else {
            return false;
        };
        let Ok(v) = receiver.receive_chosen_mod(ch, &choices, p) else {
            return false;
        };
        assert!(v.len() == n && v.iter().all(|&x| x < p));
        let Ok(v) = receiver.receive_correlated_mod(ch, &choices, p) else {
            return false;
        };
        assert!(v.len() == n && v.iter().all(|&x| x < p));
        true
    })
}

// ---------------------------------------------------------------------------------------------
// Kernels

fn naive_convolution(a: &[u64], b: &[u64], q: u64, negacyclic: bool) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u128; n];
    let q128 = u128::from(q);
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            let p = u128::from(x) * u128::from(y) % q128;
            let k = (i + j) % n;
            out[k] = if negacyclic && i + j >= n {
                (out[k] + q128 - p) % q128
            } else {
                (out[k] + p) % q128
            };
        }
    }
    out.into_iter().map(|v| v as u64).collect()
}

fn words(bytes: &mut Bytes<'_>, n: usize, q: u64) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let mut w = [0u8; 8];
            w.iter_mut().for_each(|b| *b = bytes.next());
            u64::from_le_bytes(w) % q
        })
        .collect()
}

/// NTT laws on every backend of this CPU and every multiplication kind it offers for `q`
/// ([`MulKind::supported`]: e.g. AVX2's `Shoup32`, `Shoup64` and the FMA kind `Fma50`): byte 0
/// picks `n = 2^(1 + b % 7)` (2..=128) and the prime size (`b >> 3 % 5`: 17, 30, 32, 50 or 61
/// bits), the rest two vectors mod `q`.
/// Negacyclic [`Plan`]: inverse∘forward = identity, forward output equal across backends and
/// kinds, pointwise product = naive negacyclic convolution; the same for [`CyclicPlan`] with
/// cyclic convolution.
pub fn ntt_differential(data: &[u8]) -> bool {
    let mut bytes = Bytes(data);
    let sel = bytes.next();
    let n = 1usize << (1 + sel % 7);
    let bits = [17, 30, 32, 50, 61][usize::from(sel >> 3) % 5];
    let q = primes_congruent_one(bits, 2 * n as u64, 1)[0];
    let a = words(&mut bytes, n, q);
    let b = words(&mut bytes, n, q);
    let nega = naive_convolution(&a, &b, q, true);
    let cyc = naive_convolution(&a, &b, q, false);
    let mut reference: Option<(Vec<u64>, Vec<u64>)> = None;
    for backend in Backend::available() {
        for kind in MulKind::supported(q, backend) {
            let m = Modulus::with_backend(q, backend)
                .expect("an available backend")
                .with_kind(kind)
                .expect("a supported kind");
            let on = format!("{backend:?} {kind:?}");
            let plan = Plan::with_modulus(n, m).expect("NTT-friendly prime");
            let fa = check_transform(&plan, &m, (&a, &b), &nega, &on);
            let cplan = CyclicPlan::with_modulus(n, m).expect("q = 1 mod 2n");
            let ca = check_transform(&cplan, &m, (&a, &b), &cyc, &on);
            match &reference {
                None => reference = Some((fa, ca)),
                Some((ra, rc)) => {
                    assert_eq!(&fa, ra, "negacyclic forward differs on {on}");
                    assert_eq!(&ca, rc, "cyclic forward differs on {on}");
                }
            }
        }
    }
    true
}

/// Checks one transform on `m`'s kind: `inverse(forward(a)) = a` and the pointwise product of
/// the forward transforms of `a` and `b` transforms back to `expected` (the naive product of
/// the transform's ring). Returns the forward transform of `a`, for comparison across kinds.
fn check_transform<K: Kind>(
    plan: &Ntt<K>,
    m: &Modulus,
    (a, b): (&[u64], &[u64]),
    expected: &[u64],
    on: &str,
) -> Vec<u64> {
    let ring = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or("ring");
    let (mut fa, mut fb) = (a.to_vec(), b.to_vec());
    plan.forward(&mut fa);
    plan.forward(&mut fb);
    let mut back = fa.clone();
    plan.inverse(&mut back);
    assert_eq!(back, a, "{ring} inverse(forward) on {on}");
    let mut prod: Vec<u64> = fa.iter().zip(&fb).map(|(&x, &y)| m.mul(x, y)).collect();
    plan.inverse(&mut prod);
    assert_eq!(prod, expected, "{ring} product on {on}");
    fa
}

fn pow_ref(base: u64, mut exp: u64, q: u64) -> u64 {
    let q = u128::from(q);
    let mut b = u128::from(base) % q;
    let mut r = 1 % q;
    while exp > 0 {
        if exp & 1 == 1 {
            r = r * b % q;
        }
        b = b * b % q;
        exp >>= 1;
    }
    r as u64
}

/// [`Modulus`] against `u128` arithmetic: bytes 0..8 give `q` (mapped into `[2, 2^62)`), the
/// rest operand words. Scalar ops (add, sub, neg, reduce, reduce_u128, mul, Shoup, pow) on
/// every pair, slice ops (add/sub/neg/mul/mul_add/scalar_mul/reduce) on every backend against
/// the scalar results.
pub fn modulus_ops(data: &[u8]) -> bool {
    let mut bytes = Bytes(data);
    let mut qb = [0u8; 8];
    qb.iter_mut().for_each(|b| *b = bytes.next());
    let q = 2 + u64::from_le_bytes(qb) % ((1 << 62) - 2);
    let raw = words(&mut bytes, 16, u64::MAX);
    let m = Modulus::new(q).expect("q in range");
    let q128 = u128::from(q);
    let red: Vec<u64> = raw.iter().map(|&x| x % q).collect();
    for (i, &x) in raw.iter().enumerate() {
        let a = red[i];
        let b = red[(i + 1) % red.len()];
        let (a1, b1) = (u128::from(a), u128::from(b));
        assert_eq!(m.reduce(x), x % q, "reduce({x}) mod {q}");
        assert_eq!(u128::from(m.add(a, b)), (a1 + b1) % q128, "add mod {q}");
        assert_eq!(
            u128::from(m.sub(a, b)),
            (a1 + q128 - b1) % q128,
            "sub mod {q}"
        );
        assert_eq!(u128::from(m.neg(a)), (q128 - a1) % q128, "neg mod {q}");
        assert_eq!(u128::from(m.mul(a, b)), a1 * b1 % q128, "mul mod {q}");
        assert_eq!(
            u128::from(m.reduce_u128(a1 * b1)),
            a1 * b1 % q128,
            "reduce_u128 mod {q}"
        );
        let ws = m.shoup(b);
        let x1 = u128::from(x);
        assert_eq!(
            u128::from(m.mul_shoup(x, b, ws)),
            x1 * b1 % q128,
            "mul_shoup mod {q}"
        );
        let lazy = m.mul_shoup_lazy(x, b, ws);
        assert!(u128::from(lazy) < 2 * q128 && u128::from(lazy) % q128 == x1 * b1 % q128);
        assert_eq!(m.pow(a, x), pow_ref(a, x, q), "pow mod {q}");
    }
    let (va, vb) = (&red[..8], &red[8..]);
    let s = red[3];
    for backend in Backend::available() {
        let mb = Modulus::with_backend(q, backend).expect("available backend");
        let mut t = va.to_vec();
        mb.add_assign(&mut t, vb);
        assert!(
            t.iter()
                .zip(va.iter().zip(vb))
                .all(|(&r, (&x, &y))| r == m.add(x, y))
        );
        let mut t = va.to_vec();
        mb.sub_assign(&mut t, vb);
        assert!(
            t.iter()
                .zip(va.iter().zip(vb))
                .all(|(&r, (&x, &y))| r == m.sub(x, y))
        );
        let mut t = va.to_vec();
        mb.neg_assign(&mut t);
        assert!(t.iter().zip(va).all(|(&r, &x)| r == m.neg(x)));
        let mut t = va.to_vec();
        mb.mul_assign(&mut t, vb);
        assert!(
            t.iter()
                .zip(va.iter().zip(vb))
                .all(|(&r, (&x, &y))| r == m.mul(x, y)),
            "{backend:?} mul_assign mod {q}"
        );
        let mut t = va.to_vec();
        mb.mul_add_assign(&mut t, vb, va);
        assert!(
            t.iter()
                .zip(va.iter().zip(vb))
                .all(|(&r, (&x, &y))| r == m.add(x, m.mul(y, x))),
            "{backend:?} mul_add_assign mod {q}"
        );
        let mut t = va.to_vec();
        mb.scalar_mul_assign(&mut t, s);
        assert!(
            t.iter().zip(va).all(|(&r, &x)| r == m.mul(x, s)),
            "{backend:?} scalar_mul_assign mod {q}"
        );
        let mut t = raw[..8].to_vec();
        mb.reduce_assign(&mut t);
        assert!(
            t.iter().zip(&raw[..8]).all(|(&r, &x)| r == x % q),
            "{backend:?} reduce_assign mod {q}"
        );
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Secure UNet sessions

/// The preset of the session targets (the smaller one: faster iterations, same code paths).
pub const SESSION_PRESET: Preset = Preset::Q24;
/// The server's PRG seed in the session targets (fixed, so that a recorded client transcript
/// replays to success).
pub const SESSION_SERVER_SEED: [u8; 16] = [0x5e; 16];
/// The client's PRG seed in the session targets.
pub const SESSION_CLIENT_SEED: [u8; 16] = [0xc1; 16];

/// The two tiny UNets of the session targets, by selector: `0` ReLU + max pool (garbled
/// circuits, OT), `1` square + average pool by rotation (Beaver square pairs, Galois keys).
pub fn session_arch(selector: u8) -> Architecture {
    let (activation, pooling) = if selector.is_multiple_of(2) {
        (Activation::Relu, Pooling::Max)
    } else {
        (Activation::Square, Pooling::AvgByRotation)
    };
    Architecture {
        in_channels: 5,
        base_features: 2,
        depth: 1,
        activation,
        pooling,
        dims: Dims::Two,
        classes: 2,
    }
}

/// Selectors of the session targets: bit 0 the model ([`session_arch`]), bit 1 the nonlinear
/// backend and bits 2–3 the linear backend ([`session_config`]); higher bits are ignored.
/// Seeds exist for every selector below this.
pub const SESSION_SELECTORS: u8 = 12;

/// The session configuration for `selector`: bit 1 picks the nonlinear backend (`0` garbled
/// circuits, `1` OT on silent OT) and bits 2–3 the linear backend (`0` the seed's DFT HomConv,
/// `1` the coefficient HomConv, the `bunet` commands' default, `2` and `3` the coefficient
/// HomConv with the server's weights encrypted, whose set-up the client parses), so every
/// backend's peer messages are fuzzed. Selectors below 8 mean what they meant before the
/// third backend.
pub fn session_config(selector: u8) -> SessionConfig {
    let nonlinear = if selector & 2 == 0 {
        nonlinear::Backend::Gc
    } else {
        nonlinear::Backend::Ot
    };
    let linear = match (selector >> 2) & 3 {
        0 => LinearBackend::Dft,
        1 => LinearBackend::Coeff,
        _ => LinearBackend::CoeffEw,
    };
    SessionConfig {
        nonlinear,
        linear,
        ..SessionConfig::new(SESSION_PRESET)
    }
}

/// The server's model for `selector` (random trained-like weights, built once).
pub fn session_model(selector: u8) -> &'static QuantModel {
    static MODELS: OnceLock<[QuantModel; 2]> = OnceLock::new();
    let models = MODELS.get_or_init(|| {
        [0, 1].map(|s| {
            let folded = Weights::random_trained_like(&session_arch(s), 5)
                .expect("valid architecture")
                .fold();
            QuantModel::new(&folded, SESSION_PRESET.quant()).expect("valid quantization")
        })
    });
    &models[usize::from(selector % 2)]
}

/// The client's input in the session targets: an 8×8 slice stack.
pub fn session_input() -> Tensor<u64> {
    let x = bunet_unet::synthetic::smooth_image(5, [1, 8, 8], 3);
    SESSION_PRESET.quant().encode_tensor(&x)
}

/// Runs the server's whole session (handshake, keys, nonlinear set-up, requests) as
/// [`bunet_unet::secure::Server`] does in `bunet serve`.
pub fn run_session_server(ch: &mut Channel, selector: u8) -> bool {
    let config = session_config(selector);
    let prg = Prg::from_seed(SESSION_SERVER_SEED);
    Server::accept(ch, session_model(selector), config, prg)
        .and_then(|server| server.serve(ch))
        .is_ok()
}

/// Runs the client's whole session: connect, one inference of [`session_input`], close.
pub fn run_session_client(ch: &mut Channel, selector: u8) -> bool {
    let config = session_config(selector);
    let prg = Prg::from_seed(SESSION_CLIENT_SEED);
    Client::connect(ch, &session_arch(selector), config, prg)
        .and_then(|mut client| {
            client.infer(ch, &session_input())?;
            client.close(ch)
        })
        .is_ok()
}

/// The server of a secure UNet session on a raw client stream: byte 0 selects the model
/// ([`session_arch`]) and the backend ([`session_config`]), the rest is everything the client sends (handshake, keys, OT and
/// triple messages, ciphertexts, requests).
pub fn session_server(data: &[u8]) -> bool {
    let Some((&selector, stream)) = data.split_first() else {
        return false;
    };
    with_raw_peer(stream, |ch| run_session_server(ch, selector))
}

/// The client of a secure UNet session on a raw server stream: byte 0 selects the model and
/// the backend, the rest is everything the server sends.
pub fn session_client(data: &[u8]) -> bool {
    let Some((&selector, stream)) = data.split_first() else {
        return false;
    };
    with_raw_peer(stream, |ch| run_session_client(ch, selector))
}

/// Runs `a` and `b` over loopback TCP through a relay; returns the bytes `a` sent to `b`.
pub fn record<A, B>(a: A, b: B) -> Vec<u8>
where
    A: FnOnce(&mut Channel) + Send,
    B: FnOnce(&mut Channel) + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let pair = || {
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    };
    let (a_end, relay_a) = pair();
    let (b_end, relay_b) = pair();
    let copy = |mut from: TcpStream, mut to: TcpStream, keep: bool| {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keep {
                        kept.extend_from_slice(&buf[..n]);
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        kept
    };
    std::thread::scope(|s| {
        let (ra2, rb2) = (relay_a.try_clone().unwrap(), relay_b.try_clone().unwrap());
        let a_to_b = s.spawn(move || copy(relay_a, relay_b, true));
        s.spawn(move || copy(rb2, ra2, false));
        s.spawn(move || {
            let mut ch = Channel::tcp(b_end, ChannelConfig::default()).unwrap();
            b(&mut ch);
        });
        let mut ch = Channel::tcp(a_end, ChannelConfig::default()).unwrap();
        a(&mut ch);
        ch.flush().unwrap();
        drop(ch);
        a_to_b.join().unwrap()
    })
}

/// Bytes of the session seeds at most (whole frames).
pub const SESSION_SEED_LEN: usize = 1 << 16;

/// The longest prefix of `stream` that ends on a frame boundary and is at most `max` bytes
/// (at least the first frame).
pub fn frames_prefix(stream: &[u8], max: usize) -> &[u8] {
    let mut end = 0;
    while end + 16 <= stream.len() {
        let len = u64::from_le_bytes(stream[end + 8..end + 16].try_into().expect("8 bytes"));
        let next = end
            .saturating_add(16)
            .saturating_add(len as usize)
            .min(stream.len());
        if next > max && end > 0 {
            break;
        }
        end = next;
    }
    &stream[..end]
}

/// The complete frames of a raw stream: (offset of the header, body length) each.
pub fn frame_spans(stream: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 0;
    while at + 16 <= stream.len() {
        let len = u64::from_le_bytes(stream[at + 8..at + 16].try_into().expect("8 bytes"));
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| (at + 16).checked_add(l))
            .filter(|&e| e <= stream.len())
        else {
            break;
        };
        spans.push((at, end - at - 16));
        at = end;
    }
    spans
}

/// Damaged copies of a peer's stream, named: for every frame, its body one byte short and one
/// byte long (the header's length adjusted, the stream after it unchanged), its length field
/// at `u64::MAX` with nothing after the header, and its kind in an unassigned area. An honest
/// party must reject each with an error (the family and session tests assert it).
pub fn frame_faults(stream: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, (at, len)) in frame_spans(stream).into_iter().enumerate() {
        let body = at + 16;
        let with_len =
            |v: &mut Vec<u8>, l: u64| v[at + 8..at + 16].copy_from_slice(&l.to_le_bytes());
        if len > 0 {
            let mut v = stream.to_vec();
            v.remove(body + len - 1);
            with_len(&mut v, len as u64 - 1);
            out.push((format!("frame {i} one byte short"), v));
        }
        let mut v = stream.to_vec();
        v.insert(body + len, 0);
        with_len(&mut v, len as u64 + 1);
        out.push((format!("frame {i} one byte long"), v));
        let mut v = stream[..body].to_vec();
        with_len(&mut v, u64::MAX);
        out.push((format!("frame {i} of length 2^64 - 1"), v));
        let mut v = stream.to_vec();
        v[at + 7] ^= 0x80;
        out.push((format!("frame {i} of another kind"), v));
    }
    out
}

/// A real session between the targets' client and server for `selector`: (what the client
/// sent, what the server sent). With the fixed PRG seeds each replays to success against the
/// other target.
pub fn session_transcripts(selector: u8) -> (Vec<u8>, Vec<u8>) {
    let client = record(
        |ch| assert!(run_session_client(ch, selector), "honest client"),
        |ch| assert!(run_session_server(ch, selector), "honest server"),
    );
    let server = record(
        |ch| assert!(run_session_server(ch, selector), "honest server"),
        |ch| assert!(run_session_client(ch, selector), "honest client"),
    );
    (client, server)
}
