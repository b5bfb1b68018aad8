//! The OT pads every derivation hashes from its COTs: the sender's `H(q ⊕ e·Δ)`,
//! `H(q ⊕ ¬e·Δ)` and the receiver's `H(t)`, per lane, under one tweak per COT and lane, hashed
//! in blocks so the scratch stays in L1; [`pieces`] splits a derivation into ranges that the
//! current rayon pool hashes in parallel.

use std::ops::Range;

use rayon::prelude::*;
use zeroize::Zeroizing;

use bunet_kernels::aes_hash::FixedKeyHash;

use super::ferret::SILENT_DOMAIN;

/// Pads hashed per block, so scratch stays in L1 whatever the number of OTs.
const PAD_BLOCK: usize = 512;

/// Items per parallel piece of [`pieces`]: a piece hashes a few thousand blocks (tens of
/// microseconds), far above rayon's cost per task, and a chunk of 2^14 instances still splits
/// into enough pieces for two threads to share it evenly.
const PIECE: usize = 1 << 12;

/// Runs `f` on consecutive ranges covering `0..n`, each a multiple of `align` long except the
/// last, and returns their results in order: on the current rayon pool in parallel when `n` is
/// at least two pieces, else as one range on the calling thread (small batches pay no task
/// cost). The ranges depend only on `n` and `align`, never on the number of threads, and every
/// pad is fixed by its COT's index and serial, so the results do not depend on scheduling.
pub(super) fn pieces<T: Send>(
    n: usize,
    align: usize,
    f: impl Fn(Range<usize>) -> T + Sync + Send,
) -> Vec<T> {
    let piece = PIECE.next_multiple_of(align.max(1));
    if n < 2 * piece {
        return vec![f(0..n)];
    }
    (0..n.div_ceil(piece))
        .into_par_iter()
        .map(|p| f(p * piece..((p + 1) * piece).min(n)))
        .collect()
}

/// The OT-pad tweak of lane `lane` of the COT with serial `serial`.
fn pad_tweak(serial: u64, lane: usize) -> u128 {
    SILENT_DOMAIN | ((lane as u128) << 96) | u128::from(serial)
}

/// COTs per block for `2·lanes` (sender) or `lanes` (receiver) pads per COT, whole groups.
pub(super) const fn block_cots(pads_per_cot: usize, group: usize) -> usize {
    let groups = PAD_BLOCK / pads_per_cot / group;
    (if groups == 0 { 1 } else { groups }) * group
}

/// The sender's pads of COTs `q` (serials from `serial`) whose receiver sent correction
/// `e(i)`: per COT and per lane `H(q ⊕ e·Δ)`, `H(q ⊕ ¬e·Δ)` — the pads of the receiver's
/// choice 0 and 1. `f(first, pads)` gets blocks of whole groups of `group` COTs starting at
/// COT `first`, `2·lanes` pads per COT.
#[allow(clippy::too_many_arguments)]
pub(super) fn sender_pads(
    hash: &FixedKeyHash,
    delta: u128,
    q: &[u128],
    e: impl Fn(usize) -> bool,
    serial: u64,
    lanes: usize,
    group: usize,
    mut f: impl FnMut(usize, &[u128]),
) {
    let per = block_cots(2 * lanes, group);
    let mut pads = Zeroizing::new(vec![0u128; 2 * lanes * per.min(q.len())]);
    let mut tweaks = vec![0u128; pads.len()];
    for (b, qs) in q.chunks(per).enumerate() {
        let first = b * per;
        for (i, &q) in qs.iter().enumerate() {
            // Branch-free: the correction is secret-dependent.
            let x0 = q ^ (delta & 0u128.wrapping_sub(u128::from(e(first + i))));
            for lane in 0..lanes {
                let at = 2 * (i * lanes + lane);
                pads[at] = x0;
                pads[at + 1] = x0 ^ delta;
                let t = pad_tweak(serial + (first + i) as u64, lane);
                tweaks[at] = t;
                tweaks[at + 1] = t;
            }
        }
        let len = 2 * lanes * qs.len();
        hash.hash_many(&mut pads[..len], &tweaks[..len]);
        f(first, &pads[..len]);
    }
}

/// The receiver's pads `H(t)` per COT and lane, in blocks as [`sender_pads`] (`lanes` pads
/// per COT).
pub(super) fn receiver_pads(
    hash: &FixedKeyHash,
    t: &[u128],
    serial: u64,
    lanes: usize,
    group: usize,
    mut f: impl FnMut(usize, &[u128]),
) {
    let per = block_cots(lanes, group);
    let mut pads = Zeroizing::new(vec![0u128; lanes * per.min(t.len())]);
    let mut tweaks = vec![0u128; pads.len()];
    for (b, ts) in t.chunks(per).enumerate() {
        let first = b * per;
        for (i, &t) in ts.iter().enumerate() {
            for lane in 0..lanes {
                pads[i * lanes + lane] = t;
                tweaks[i * lanes + lane] = pad_tweak(serial + (first + i) as u64, lane);
            }
        }
        let len = lanes * ts.len();
        hash.hash_many(&mut pads[..len], &tweaks[..len]);
        f(first, &pads[..len]);
    }
}
