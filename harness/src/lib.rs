//! The `bunet` command's library: synthetic chest CT volumes with COVID-19-like lesions and their
//! masks ([`synth`]), NIfTI-1 input and output ([`nifti`]), slice previews ([`preview`]), and
//! the pieces the commands share — the built-in weights ([`model`]), volumes cut into the
//! seed's 2.5D slice stacks ([`volume`]), the plaintext references over a volume
//! ([`reference`](mod@reference)), Dice ([`metrics`]), exact operation counts ([`opcount`]), the runtime
//! breakdown ([`breakdown`]), extrapolation to a whole volume ([`extrapolate`]), report
//! writing ([`report`]), and volumes as shards with manifests, joined by a merge ([`shard`]).
//!
//! The binary `bunet` (in `main.rs`) is a thin command-line layer over these modules.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod breakdown;
pub mod extrapolate;
pub mod metrics;
pub mod model;
pub mod nifti;
pub mod opcount;
pub mod output;
pub mod preview;
pub mod reference;
pub mod report;
pub mod session;
pub mod shard;
pub mod synth;
pub mod tls;
pub mod volume;

/// `text` with control characters (newlines, escapes, ...) written as Rust escapes, for
/// printing strings a peer supplied (handshake names, refusal reasons, certificate subjects)
/// without letting them rewrite the terminal or forge log lines.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
