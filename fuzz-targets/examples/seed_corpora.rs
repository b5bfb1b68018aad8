//! Writes the seed corpora of every fuzz target into `fuzz/corpus/<target>/` (run from the
//! workspace root: `cargo run --release -p bunet-fuzz-targets --example seed_corpora`).
//!
//! Valid seeds are real encodings and real peer transcripts: PAHE objects from key generation
//! and encryption, and for the two-party targets the exact bytes the honest peer sent, recorded
//! by a relay between two real parties over loopback TCP. A few invalid seeds (truncations, bit
//! flips, wrong kinds) are added by hand. Seeds are deterministic (fixed PRG seeds).

use std::fs;
use std::path::{Path, PathBuf};

use bunet_crypto::gc::{Delta, Garbler};
use bunet_crypto::ot;
use bunet_crypto::pahe::{Evaluator, GaloisKeys, Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_crypto::wire::Encode;
use bunet_fuzz_targets::{
    OT_MODULI, SESSION_SEED_LEN, SESSION_SELECTORS, frame, frames_prefix, gc_circuits,
    gc_evaluate_instances, q32_params, record, session_transcripts, small_params,
};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new("fuzz/corpus").join(target);
    fs::create_dir_all(&dir).expect("create corpus directory");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    fs::write(corpus(target).join(name), bytes).expect("write seed");
}

fn with_selector(sel: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![sel];
    v.extend_from_slice(body);
    v
}

fn pahe_seeds(target: &str, params: &Params, set_bit: u8, galois: bool, tag: &str) {
    let mut prg = Prg::from_seed([7; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let slots: Vec<u64> = (0..params.n() as u64).map(|i| i % params.p()).collect();
    let pt = params.encode(&slots).expect("slots below p");
    let seeded = sk.encrypt_seeded(&pt, &mut prg);
    let full = pk.encrypt(&pt, &mut prg);
    let mut low = full.clone();
    Evaluator::new(params)
        .mod_switch_to(&mut low, 1)
        .expect("switch to level 1");
    let sel = set_bit << 2;
    let ct = full.to_bytes();
    write(
        target,
        &format!("valid_{tag}ct_top"),
        &with_selector(sel, &ct),
    );
    write(
        target,
        &format!("valid_{tag}ct_level1"),
        &with_selector(sel, &low.to_bytes()),
    );
    write(
        target,
        &format!("valid_{tag}seeded"),
        &with_selector(sel | 1, &seeded.to_bytes()),
    );
    write(
        target,
        &format!("valid_{tag}public_key"),
        &with_selector(sel | 2, &pk.to_bytes()),
    );
    // Invalid: truncated, and a level byte above the top level (short: the level is checked
    // first). The level-1 ciphertext is the one truncated, to keep the q32 corpus small.
    let low_bytes = low.to_bytes();
    write(
        target,
        &format!("invalid_{tag}ct_truncated"),
        &with_selector(sel, &low_bytes[..low_bytes.len() - 1]),
    );
    let mut bad = ct[..ct.len().min(100)].to_vec();
    bad[0] = 0xff;
    write(
        target,
        &format!("invalid_{tag}ct_bad_level"),
        &with_selector(sel, &bad),
    );
    if galois {
        let gk = GaloisKeys::generate(&sk, &[1, 2], true, &mut prg);
        write(
            target,
            &format!("valid_{tag}galois_keys"),
            &with_selector(sel | 3, &gk.to_bytes()),
        );
        write(
            target,
            &format!("valid_{tag}galois_empty"),
            &with_selector(sel | 3, &[0, 0]),
        );
    }
}

fn gc_seeds() {
    for sel in [0u8, 1, 2, 7] {
        let circuit = &gc_circuits()[usize::from(sel & 1)];
        let m = gc_evaluate_instances(sel);
        let mut garbler =
            Garbler::with_prg(Delta::new(0x1234_5679).unwrap(), Prg::from_seed([3; 16]));
        let zero = garbler.evaluator_zero_labels(circuit, m);
        let labels = zero.to_vec();
        let g_bits: Vec<bool> = (0..m * circuit.n_garbler_inputs())
            .map(|i| i % 2 == 0)
            .collect();
        let stream = record(
            |ch| {
                garbler.garble(ch, circuit, m, &g_bits, &zero).unwrap();
            },
            |ch| {
                bunet_crypto::gc::Evaluator::new()
                    .evaluate(ch, circuit, m, &labels)
                    .unwrap();
            },
        );
        write(
            "gc_evaluate",
            &format!("valid_garbler_sel{sel}"),
            &with_selector(sel, &stream),
        );
        if sel == 0 {
            let mut cut = stream.clone();
            cut.truncate(stream.len() - 1);
            write(
                "gc_evaluate",
                "invalid_garbler_truncated",
                &with_selector(sel, &cut),
            );
            let mut flipped = stream.clone();
            *flipped.last_mut().unwrap() ^= 0x80;
            write(
                "gc_evaluate",
                "invalid_garbler_padding_bit",
                &with_selector(sel, &flipped),
            );
        }
    }
    // gc_differential: a few hand-picked circuits (head, n_ops, ops..., n_out, input bits).
    let seeds: [&[u8]; 4] = [
        &[
            0x05, 6, 1, 0, 1, 0, 2, 3, 2, 1, 4, 3, 4, 5, 4, 0, 1, 2, 3, 0xa5, 0x3c,
        ],
        &[
            0x3f, 10, 0, 1, 2, 1, 3, 4, 2, 5, 6, 3, 7, 0, 4, 1, 2, 3, 5, 4, 0, 6, 7, 1, 8, 9, 2, 1,
            0, 5, 7, 0xff, 0x00, 0x5a,
        ],
        &[0x50, 0, 3, 0xff],
        &[0xe2, 3, 5, 0, 0, 6, 1, 1, 1, 2, 3, 2, 0x81],
    ];
    for (i, s) in seeds.iter().enumerate() {
        write("gc_differential", &format!("valid_circuit{i}"), s);
    }
}

fn ot_seeds() {
    for sel in [9u8, 73, 150, 200] {
        let n = 1 + usize::from(sel) % 200;
        let p = OT_MODULI[usize::from(sel >> 6)];
        let choices: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
        let messages: Vec<[u64; 2]> = (0..n as u64).map(|i| [i % p, (i + 1) % p]).collect();
        // ot_sender reads what an honest receiver sends.
        let from_receiver = record(
            |ch| {
                let mut prg = Prg::from_seed([4; 16]);
                let mut r = ot::Receiver::setup(ch, &mut prg).unwrap();
                let mut out = vec![0u128; n];
                r.receive_correlated(ch, &choices, &mut out).unwrap();
                r.receive_chosen_mod(ch, &choices, p).unwrap();
            },
            |ch| {
                let mut prg = Prg::from_seed([5; 16]);
                let mut s = ot::Sender::setup(ch, 0x1234_5678_9abc_def1, &mut prg).unwrap();
                let mut out = vec![0u128; n];
                s.send_correlated(ch, &mut out).unwrap();
                s.send_chosen_mod(ch, &messages, p).unwrap();
            },
        );
        write(
            "ot_sender",
            &format!("valid_receiver_sel{sel}"),
            &with_selector(sel, &from_receiver),
        );
        // ot_receiver reads what an honest sender sends.
        let xs: Vec<u64> = (0..n as u64).map(|i| (3 * i + 1) % p).collect();
        let from_sender = record(
            |ch| {
                let mut prg = Prg::from_seed([6; 16]);
                let mut s = ot::Sender::setup(ch, 0x0f0f_0f0f_0f0f_0f0f_0f0f, &mut prg).unwrap();
                s.send_chosen_mod(ch, &messages, p).unwrap();
                s.send_correlated_mod(ch, &xs, p).unwrap();
            },
            |ch| {
                let mut prg = Prg::from_seed([8; 16]);
                let mut r = ot::Receiver::setup(ch, &mut prg).unwrap();
                r.receive_chosen_mod(ch, &choices, p).unwrap();
                r.receive_correlated_mod(ch, &choices, p).unwrap();
            },
        );
        write(
            "ot_receiver",
            &format!("valid_sender_sel{sel}"),
            &with_selector(sel, &from_sender),
        );
        if sel == 73 {
            let mut bad = from_receiver.clone();
            bad[1 + 16 + 8 + 5] ^= 0x40; // a byte of the first base-OT point
            write(
                "ot_sender",
                "invalid_receiver_bad_point",
                &with_selector(sel, &bad),
            );
            write(
                "ot_receiver",
                "invalid_sender_truncated",
                &with_selector(sel, &from_sender[..from_sender.len() - 3]),
            );
        }
    }
}

fn channel_seeds() {
    let mut two = frame(0x0102, b"hello");
    two.extend(frame(0x0102, &[0u8; 40]));
    let mut head = vec![0x02, 0x01, 0x00, 0x01, 0x00, 0x00];
    write(
        "channel_recv",
        "valid_two_frames",
        &[head.clone(), two.clone()].concat(),
    );
    write(
        "channel_recv",
        "valid_then_truncated_body",
        &[head.clone(), two[..30].to_vec()].concat(),
    );
    write(
        "channel_recv",
        "invalid_wrong_kind",
        &[vec![0x03, 0x01, 0, 1, 0, 0], two.clone()].concat(),
    );
    let mut bad_version = frame(0x0102, b"x");
    bad_version[4] = 9;
    write(
        "channel_recv",
        "invalid_bad_version",
        &[head.clone(), bad_version].concat(),
    );
    let mut huge = frame(0x0102, b"");
    huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    write(
        "channel_recv",
        "invalid_huge_length",
        &[head.clone(), huge].concat(),
    );
    head[2..6].copy_from_slice(&4u32.to_le_bytes());
    write("channel_recv", "invalid_over_bound", &[head, two].concat());
}

fn bristol_seeds() {
    let adder = fs::read_to_string("crypto/testdata/bristol/adder64.txt").expect("valid_adder64");
    write(
        "bristol_parse",
        "valid_adder64",
        &with_selector(1, adder.as_bytes()),
    );
    let small = "3 5\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 3 INV\n2 1 0 3 4 XOR\n";
    write(
        "bristol_parse",
        "valid_tiny",
        &with_selector(1, small.as_bytes()),
    );
    write(
        "bristol_parse",
        "valid_tiny_to_garbler",
        &with_selector(0x81, small.as_bytes()),
    );
    write(
        "bristol_parse",
        "invalid_gate_count_mismatch",
        &with_selector(1, b"4 7\n2 1 1\n1 1\n2 1 0 1 2 AND\n"),
    );
    write(
        "bristol_parse",
        "invalid_read_before_write",
        &with_selector(1, b"1 3\n1 1\n1 1\n2 1 0 2 1 XOR\n"),
    );
    write(
        "bristol_parse",
        "invalid_huge_counts",
        &with_selector(1, b"99999999999 99999999999\n1 1\n1 1\n"),
    );
}

fn kernel_seeds() {
    let mut prg = Prg::from_seed([9; 16]);
    for sel in [0u8, 6, 11, 20, 30, 38] {
        let mut v = vec![sel];
        let mut rest = vec![0u8; 2 * 8 * 128];
        prg.fill_bytes(&mut rest);
        v.extend(rest);
        write("ntt_differential", &format!("valid_sel{sel}"), &v);
    }
    let edges: [(&str, u64); 5] = [
        ("q2", 0),
        ("q3", 1),
        ("q_max", (1 << 62) - 3),
        ("q_2p61m1", (1 << 61) - 3),
        ("q_2p32p1", (1 << 32) - 1),
    ];
    for (name, q) in edges {
        let mut v = q.to_le_bytes().to_vec();
        let mut rest = vec![0u8; 128];
        prg.fill_bytes(&mut rest);
        rest[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        v.extend(rest);
        write("modulus_ops", &format!("valid_{name}"), &v);
    }
}

/// Real session transcripts for every selector: their first frames (≤ 64 KB, checked in) and,
/// as `large_valid_*` (kept out of git by fuzz/.gitignore), the whole transcripts, megabytes of
/// ciphertexts, which reach every phase of a session (`fuzz/phase_coverage.py`); the campaign
/// script writes them before it fuzzes the session targets.
fn session_seeds() {
    for selector in 0..SESSION_SELECTORS {
        let (client_stream, server_stream) = session_transcripts(selector);
        for (target, stream) in [
            ("session_server", &client_stream),
            ("session_client", &server_stream),
        ] {
            let prefix = frames_prefix(stream, SESSION_SEED_LEN);
            write(
                target,
                &format!("invalid_model{selector}_prefix"),
                &with_selector(selector, prefix),
            );
            write(
                target,
                &format!("large_valid_model{selector}"),
                &with_selector(selector, stream),
            );
        }
    }
}

/// Hellos of both purposes and every reply, honest (`valid_*`) and cut short (`invalid_*`).
fn handshake_seeds() {
    use bunet_unet::secure::handshake::{BusyReason, Hello, Reply};
    use bunet_unet::secure::{Preset, SessionConfig};
    let arch = bunet_fuzz_targets::handshake_arch();
    for preset in [Preset::Q32, Preset::Q24] {
        let hello = Hello::client_for(&arch, &SessionConfig::new(preset), [1, 64, 64]);
        let bytes = with_selector(0, &hello.to_bytes());
        write(
            "handshake",
            &format!("valid_hello_{}", preset.name()),
            &bytes,
        );
        write(
            "handshake",
            &format!("invalid_hello_{}_short", preset.name()),
            &bytes[..bytes.len() - 1],
        );
    }
    let replies = [
        ("accept", Reply::Accept),
        (
            "busy",
            Reply::Busy {
                retry_after_s: 30,
                reason: BusyReason::Memory,
            },
        ),
        ("refuse", Reply::Refuse("extents too large\x1b[2J".into())),
    ];
    for (name, reply) in replies {
        let bytes = with_selector(1, &reply.to_bytes());
        write("handshake", &format!("valid_reply_{name}"), &bytes);
        let mut long = bytes.clone();
        long.push(0);
        write(
            "handshake",
            &format!("invalid_reply_{name}_trailing"),
            &long,
        );
    }
}

/// Whole honest transcripts of the family targets (tens of KB each, HomConv's hundreds), one
/// truncated copy per role, and hostile HomConv extents. `seed_corpora families` writes only
/// these (one command to regenerate them after a protocol change).
fn family_seeds() {
    use bunet_fuzz_targets::families::{
        FAMILY_SEEDS, HOMCONV_SEED_CASES, family_transcript, homconv_transcript,
    };
    for &(target, party, selectors) in FAMILY_SEEDS {
        for &sel in selectors {
            let stream = with_selector(sel, &family_transcript(party, sel));
            write(target, &format!("valid_sel{sel}"), &stream);
            if sel <= 1 {
                write(
                    target,
                    &format!("invalid_sel{sel}_truncated"),
                    &stream[..stream.len() - 1],
                );
            }
        }
    }
    // HomConv uploads are PAHE ciphertexts (a seeded q24 ciphertext is 200 KB): honest
    // transcripts over LARGE_SEED bytes are written as `large_valid_*`, which fuzz/.gitignore
    // keeps out of the repository (tests/replay.rs records them fresh).
    for (sel, dims) in HOMCONV_SEED_CASES {
        let stream = homconv_transcript(sel, dims);
        let name = format!("valid_sel{sel}_{}x{}x{}", dims[0], dims[1], dims[2]);
        let prefix = if stream.len() > LARGE_SEED {
            "large_"
        } else {
            ""
        };
        write("homconv_extents", &format!("{prefix}{name}"), &stream);
    }
    // Hostile extents before the start of honest uploads (the server must refuse before
    // reading them): over the per-axis bound, zero, not a multiple of the pooling, a depth
    // for a 2D model, and over the memory budget.
    let honest = homconv_transcript(1, [1, 8, 8]);
    for (name, dims) in [
        ("over_axis", [1u16, 8, 65535]),
        ("zero", [1, 0, 8]),
        ("odd", [1, 7, 8]),
        ("depth", [2, 8, 8]),
        ("over_budget", [1, 4096, 4096]),
    ] {
        let mut v = honest[..4096].to_vec();
        for (i, d) in dims.iter().enumerate() {
            v[1 + 2 * i..3 + 2 * i].copy_from_slice(&d.to_le_bytes());
        }
        write("homconv_extents", &format!("invalid_extents_{name}"), &v);
    }
    write(
        "homconv_extents",
        "invalid_upload_truncated",
        &honest[..honest.len() / 2],
    );
}

/// Seeds longer than this are written as `large_*` (not checked in).
const LARGE_SEED: usize = 256 << 10;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("families") {
        family_seeds();
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("sessions") {
        session_seeds();
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("handshake") {
        handshake_seeds();
        return;
    }
    handshake_seeds();
    for (i, params) in small_params().iter().enumerate() {
        pahe_seeds("pahe_small", params, i as u8, true, &format!("set{i}_"));
    }
    pahe_seeds("pahe_q32", q32_params(), 0, false, "");
    channel_seeds();
    gc_seeds();
    ot_seeds();
    bristol_seeds();
    kernel_seeds();
    session_seeds();
    family_seeds();
    println!("seed corpora written under fuzz/corpus/");
}
