//! Replays every checked-in corpus and regression input (`fuzz/corpus/<target>/*`,
//! `fuzz/regressions/<target>/*`) through its target on stable Rust, so CI re-checks every
//! input the fuzzers kept and every crash they ever found. Seeds written by
//! `examples/seed_corpora.rs` are named `valid_*` (must be accepted) or `invalid_*` (must be
//! rejected), so a target that silently rejects everything fails here.

use std::path::{Path, PathBuf};

use bunet_fuzz_targets::TARGETS;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let body = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("known target")
        .1;
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "no seed corpus for {target}");
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).expect("read corpus file");
        let accepted = std::panic::catch_unwind(|| body(&data))
            .unwrap_or_else(|_| panic!("{target} panicked on {}", path.display()));
        // Generated seeds are named for what they are: honest encodings and transcripts
        // (`valid_*`) must be accepted, damaged ones (`invalid_*`) rejected.
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // `large_*` seeds (not in git; written by `seed_corpora` where it runs) follow the same
        // rule.
        let name = name.strip_prefix("large_").unwrap_or(name);
        if name.starts_with("valid_") {
            assert!(
                accepted,
                "{target} rejected the valid seed {}",
                path.display()
            );
        } else if name.starts_with("invalid_") {
            assert!(
                !accepted,
                "{target} accepted the invalid seed {}",
                path.display()
            );
        }
    }
}

#[test]
fn every_target_has_a_fuzz_binary_and_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (name, _) in TARGETS {
        let bin = root.join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&bin).expect("fuzz target file");
        assert!(
            text.contains(&format!("bunet_fuzz_targets::{name}(")),
            "{name}.rs calls its body"
        );
        assert!(!inputs("corpus", name).is_empty(), "corpus of {name}");
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            replay(stringify!($name));
        }
    )*};
}

replay_tests!(
    pahe_small,
    pahe_q32,
    channel_recv,
    gc_evaluate,
    gc_differential,
    ot_sender,
    ot_receiver,
    bristol_parse,
    ntt_differential,
    modulus_ops,
    session_server,
    session_client,
    handshake,
    ferret,
    silent_ot,
    ot_backend,
    triples,
    homconv_extents,
);

/// The family targets' honest transcripts, recorded fresh (the checked-in seeds may predate a
/// protocol change; HomConv's DFT transcripts are too large to check in): each selector's is
/// accepted and the same stream cut short is rejected. (A flipped bit is not always detected:
/// the protocols are semi-honest, and e.g. a different LPN seed is just another code.)
#[test]
fn family_targets_accept_fresh_transcripts_and_reject_truncated_ones() {
    use bunet_fuzz_targets::families::{
        FAMILY_SEEDS, HOMCONV_SEED_CASES, family_transcript, homconv_extents, homconv_transcript,
    };
    for &(name, party, selectors) in FAMILY_SEEDS {
        let body = TARGETS.iter().find(|(n, _)| *n == name).expect("listed").1;
        for &sel in selectors {
            let mut data = vec![sel];
            data.extend(family_transcript(party, sel));
            assert!(
                body(&data),
                "{name} rejected its honest transcript (selector {sel})"
            );
            assert!(
                !body(&data[..data.len() - 1]),
                "{name} accepted a truncated transcript (selector {sel})"
            );
        }
    }
    for (sel, dims) in HOMCONV_SEED_CASES {
        let mut data = homconv_transcript(sel, dims);
        assert!(
            homconv_extents(&data),
            "honest HomConv uploads {sel} {dims:?}"
        );
        assert!(!homconv_extents(&data[..data.len() - 1]));
        // Extents other than the uploads': a 16×-larger request within the budget reads
        // the 8×8 uploads as its first tiles' and then runs out; one far over it is refused.
        data[5..7].copy_from_slice(&4096u16.to_le_bytes());
        data[3..5].copy_from_slice(&4096u16.to_le_bytes());
        assert!(!homconv_extents(&data), "extents over the budget accepted");
    }
}

/// Every frame of the families' honest transcripts (both roles, the smallest sizes), made one
/// byte short, one byte long, of length 2^64 − 1 or of another kind, is refused with an error,
/// never a panic or a hang (the family targets return `false`); for the OT backend one fault
/// in five.
#[test]
fn family_targets_reject_every_malformed_frame() {
    use bunet_fuzz_targets::families::{
        FAMILY_SEEDS, family_transcript, homconv_extents, homconv_transcript,
    };
    use bunet_fuzz_targets::frame_faults;
    let mut checked = 0;
    for &(name, party, _) in FAMILY_SEEDS {
        let body = TARGETS.iter().find(|(n, _)| *n == name).expect("listed").1;
        let selectors: &[u8] = if name == "silent_ot" {
            &[0, 1, 2, 3]
        } else {
            &[0, 1]
        };
        for &sel in selectors {
            // The OT backend's transcripts have ~50 frames: every fifth fault (5 is prime to the
            // four kinds per frame, so each frame still gets one and every kind is used).
            let stride = if name == "ot_backend" { 5 } else { 1 };
            let faults = frame_faults(&family_transcript(party, sel));
            for (what, stream) in faults.into_iter().step_by(stride) {
                let mut data = vec![sel];
                data.extend(stream);
                assert!(!body(&data), "{name} (selector {sel}) accepted {what}");
                checked += 1;
            }
        }
    }
    for sel in [0, 1] {
        let honest = homconv_transcript(sel, [1, 8, 8]);
        let (head, stream) = honest.split_at(7);
        for (what, stream) in frame_faults(stream) {
            let data = [head, &stream].concat();
            assert!(
                !homconv_extents(&data),
                "HomConv (selector {sel}) accepted {what}"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} damaged streams refused");
    assert!(checked > 100, "{checked} damaged streams");
}

/// The budget of the HomConv target refuses the largest extents the protocol's per-axis
/// bound allows, and admits the seeds'.
#[test]
fn homconv_budget_refuses_the_largest_extents() {
    use bunet_fuzz_targets::families::{HOMCONV_SEED_CASES, homconv_admits, homconv_config};
    use bunet_unet::secure::budget::server_session;
    let model = bunet_fuzz_targets::session_model(0);
    for (sel, dims) in HOMCONV_SEED_CASES {
        let e = server_session(model, &homconv_config(sel), dims).expect("seed extents fit");
        assert!(homconv_admits(&e), "{dims:?}: {e:?}");
    }
    let e = server_session(model, &homconv_config(0), [1, 4096, 4096]).expect("within bounds");
    assert!(!homconv_admits(&e), "{e:?}");
}

/// Whole session transcripts are too large to check in, so they are recorded fresh: each
/// replays to success against the other party's target, and damaged ones are rejected. Every
/// selector: both models, both nonlinear and all three linear backends.
#[test]
fn session_targets_accept_recorded_transcripts_and_reject_damaged_ones() {
    use bunet_fuzz_targets::{
        SESSION_SELECTORS, session_client, session_server, session_transcripts,
    };
    for selector in 0..SESSION_SELECTORS {
        let (client_stream, server_stream) = session_transcripts(selector);
        for (name, body, stream) in [
            (
                "session_server",
                session_server as fn(&[u8]) -> bool,
                &client_stream,
            ),
            ("session_client", session_client, &server_stream),
        ] {
            let mut data = vec![selector];
            data.extend_from_slice(stream);
            assert!(body(&data), "{name} rejected an honest transcript");
            // A flipped bit in the middle of the handshake's body.
            data[1 + 16 + 4] ^= 1;
            assert!(!body(&data), "{name} accepted a damaged handshake");
        }
    }
}
