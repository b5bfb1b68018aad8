//! The OT backend: the millionaires' comparison of CrypTFlow2/SCI (Rathee et al., CCS 2020,
//! §3) on silent OT ([`crate::silent`], Ferret), with exact rescaling over `Z_p`.
//!
//! # Building blocks
//! - **Millionaires'** `[x < y]`, `x` Alice's, `y` Bob's, `ℓ`-bit: both are cut into `m`-bit
//!   digits (`m = 4` by default, [`Millionaires`]); per digit one 1-out-of-`2^m` OT (Bob
//!   chooses his digit) gives boolean shares of `lt_d = [x_d < y_d]` and `eq_d = [x_d = y_d]`
//!   (Alice's messages are her random shares XOR the truth table); a tree of
//!   `lt = lt_hi ⊕ eq_hi ∧ lt_lo`, `eq = eq_hi ∧ eq_lo` (Beaver AND on silent triples,
//!   `⌈log2 ⌈ℓ/m⌉⌉` rounds) gives `[x < y]`; the two ANDs of a node share `eq_hi`, so they run
//!   on one shared-operand triple (two COTs, not four). Up to four comparisons against the low
//!   bits of the same `y` share the digit OTs (messages of up to 2 bits per comparison) and
//!   the AND rounds: a ReLU's wrap bit, DReLU threshold and both rescaling carries take one
//!   32-bit millionaires' worth of OTs.
//! - **bit × value**: `g·V` for a boolean-shared `g = g_A ⊕ g_B` and `V` held by party X is
//!   `g_X·V + g_Y·V(1 − 2g_X)`: one correlated OT from X (correlation `V(1 − 2g_X)`), Y choosing
//!   `g_Y`. It converts bits to arithmetic shares (`V = 1`), multiplexes (`V` = one party's
//!   share, once per direction) and lifts to `Z_{2^K}`.
//!
//! # Exact rescaling over `Z_p` (the derivation)
//! Shares `s_A, s_B ∈ [0, p)`, `v = s_A + s_B mod p`, `h = (p − 1)/2`, `signed(v) ∈ [−h, h]`.
//! Alice shifts her share by `h`: `a = s_A + h mod p`, `b = s_B`; then `u = a + b mod p =
//! signed(v) + h ∈ [0, p)` and, as integers, `u = a + b − w·p` with the **wrap bit**
//! `w = [a + b ≥ p] = [b ≥ p − a] = [p − 1 − a < b]` (one `k`-bit millionaires').
//!
//! *Rescale.* For `j ∈ {0, 1}` let Alice's `A_j = a − h − j·p` (an integer, possibly
//! negative), `Q_j = ⌊A_j / 2^s⌋`, `ρ_j = A_j mod 2^s`, and split `b = b_hi·2^s + b_lo`. Then
//! `signed(v) = A_w + b`, so
//! `⌊signed(v)/2^s⌋ = Q_w + b_hi + ⌊(ρ_w + b_lo)/2^s⌋ = Q_w + b_hi + c_w` with the **carry**
//! `c_j = [ρ_j + b_lo ≥ 2^s] = [2^s − 1 − ρ_j < b_lo]` (two `s`-bit millionaires' against the
//! same `b_lo`), because `ρ_w + b_lo < 2^(s+1)`. Hence
//! `R = b_hi + Q_0 + w·(Q_1 − Q_0) + c_sel`, `c_sel = c_0 ⊕ w ∧ (c_0 ⊕ c_1)`, exactly, for every
//! `p` (odd, not a power of two) and every `s < k − 1`: one AND and two bit × value conversions
//! (Alice holds `Q_1 − Q_0` and 1).
//!
//! *DReLU.* `signed(v) ≥ 0 ⟺ u ≥ h ⟺ a + b ∈ [h, p − 1] ∪ [p + h, 2p − 2]`, i.e.
//! `d = [a + b ≥ h] ⊕ w ⊕ [a + b ≥ p + h]`. Since `a + b ∈ [a, a + p − 1]`, an interval of `p`
//! integers, at most one of the thresholds `h` and `p + h` falls inside it and Alice knows
//! which: `d = κ ⊕ w ⊕ [b ≥ θ]` with `κ = [a ≥ h]` and `θ = p + h − a` if `a ≥ h`, else
//! `h − a` (`θ ∈ [1, p]`, so `[b ≥ θ] = [θ − 1 < b]`, the second comparison against `b` in the
//! same OTs as `w`). Then `ReLU(v) >> s = d·R` (floor commutes with `max(0, ·)`), one
//! multiplexer.
//!
//! *Comparing two shared values* (max pool). With the wrap bits, `u = a + b − p·w` is
//! lifted exactly to `Z_{2^K}`, `K = k + 1` (bit × value with `V = p` in `Z_{2^K}`). For two
//! lifted values `[u_1 > u_0] = ¬msb(u_1 − u_0 − 1)` since `u_1 − u_0 − 1 ∈ [−p, p − 2]` fits
//! `K` bits; `msb(X_A + X_B) = msb X_A ⊕ msb X_B ⊕ [lo_A + lo_B ≥ 2^(K−1)]` (a `k`-bit
//! millionaires' on the low bits). `signed` order equals `u` order. Max pool rescales the four
//! values (their wrap bits give the lifts), then a two-round tournament multiplexes the rescaled
//! `Z_p` shares and the `Z_{2^K}` lifts together (`max_j ⌊v_j/2^s⌋ = ⌊max_j v_j / 2^s⌋`).
//!
//! *Re-sharing.* Alice sends `y_A − r mod p` for her fresh mask `r` from her [`Prg`]; her
//! output is `r`, Bob's `y_B + y_A − r`: the convention of
//! [`Gadget::reference`](crate::gc::fixed_point::Gadget::reference), bit for bit.
//!
//! # Digits and trimming (issue #20)
//! *What the tree reads.* Digit 0's `eq` is never read: the lowest node of every level computes
//! only `lt` (its `eq` could only ever meet a lower digit, and there is none), so digit 0's
//! `eq_0` would only feed that dropped `eq`. Trimmed ([`Millionaires::trimmed`], the default),
//! the digit-0 OT carries 1 bit per comparison (`lt`), every other digit 2; the lowest pair of
//! every tree level goes last in the level's AND and its `eq` lane is not opened (the lane's
//! triple bits are dropped); the top digit's OT has `2^r` messages for its `r ≤ m` bits instead
//! of `2^m` of which Bob could only choose the first `2^r`. At 4-bit digits and shift 12 this
//! is 8 B of digit-0 messages and 2.5 B of openings per ReLU (test
//! `trimming_saves_exactly_the_unused_bits`), with the same COTs.
//!
//! *Digit size* `m ∈ 1..=4`: a digit is one 1-of-`2^m` OT from `m` COTs (`m` choice bits up,
//! `2^m` message fields down), and `⌈ℓ/m⌉ − 1` tree nodes per comparison (a shared-operand
//! triple each: two COTs and openings) in `⌈log2 ⌈ℓ/m⌉⌉` rounds. Every digit of every group
//! starts at a multiple of `m` of the same `y`, so groups still share the digit OTs; a group
//! whose width is not a multiple of `m` masks its top digit as before. Smaller digits trade
//! message bits (exponential in `m`) for nodes; measured in `docs/PERFORMANCE.md`, section
//! "silent OT backend".
//!
//! *Security of both.* Neither adds a message kind or changes a derivation: a digit is the
//! same 1-of-N OT on fresh silent COTs ([`crate::silent`]: Bob's choice bits hidden by the
//! corrections against the COTs' uniform choice bits, the unchosen fields masked by pads from
//! keys Bob does not hold) for any `N = 2^r`, `r ≤ 4`; its chosen field is Alice's uniform
//! share bit XOR the truth bit, so Bob's leaves are uniform whatever `m`. Trimming only removes
//! fields and openings from each party's view: what is left is a subset of the old view, each
//! bit still masked by a fresh pad, share or triple bit (an opened lane `y ⊕ b_l` uses its own
//! random OT bit `b_l`, whether or not the other lane is opened), so the old simulator, with
//! the removed parts left out, simulates the new view.
//!
//! # One comparison for both carries (issue #20)
//! Where `p ≡ 1 (mod 2^s)` — the presets' `p ≡ 1 mod 2^14` for BFV batching, so at the UNet's
//! shift of 12 — the two carries are one comparison and its equality bit
//! ([`Millionaires::fused_carries`], the default). Then `A_1 = A_0 − p` gives `ρ_1 = ρ_0 − 1`
//! if `ρ_0 ≥ 1` and `ρ_1 = 2^s − 1` if `ρ_0 = 0`. Let `τ = −ρ_0 mod 2^s` (Alice's) and compare
//! `[τ < b_lo]` keeping the root's `e = [τ = b_lo]`:
//! - `ρ_0 ≥ 1` (`τ = 2^s − ρ_0`): `c_0 = [b_lo ≥ τ] = [τ < b_lo] ⊕ e` and
//!   `c_1 = [b_lo ≥ τ + 1] = [τ < b_lo]`;
//! - `ρ_0 = 0` (`τ = 0`): `c_0 = 0` and `c_1 = [b_lo ≥ 1] = [0 < b_lo]`; here
//!   `[τ < b_lo] ⊕ e = [b_lo ≥ 0] = 1`, so Alice uses `Q̃_0 = Q_0 − 1` in `Q_0`'s place
//!   (`Q̃_0 + 1 = Q_0 + c_0`).
//!
//! With `c̃_0 = [τ < b_lo] ⊕ e`, `c̃_1 = [τ < b_lo]` and `Q̃_0 = Q_0 − [ρ_0 = 0]`,
//! `Q̃_0 + c̃_0 = Q_0 + c_0` and `c̃_1 = c_1` in both cases, so `R = b_hi + Q̃_0 +
//! w·(Q_1 − Q̃_0) + c_sel` with `c_sel = c̃_0 ⊕ w ∧ e` (as `c̃_0 ⊕ c̃_1 = e`) is the exact
//! rescale above, one AND as before. The root's `e` costs digit 0's `eq` leaf of this one
//! comparison and the `eq` lanes of its lowest tree nodes; the second comparison's leaves and
//! its `⌈s/m⌉ − 1` nodes (two COTs each) go. Per ReLU at shift 12 and 4-bit digits: measured in
//! `docs/PERFORMANCE.md`, section "Fewer bytes per ReLU". Security: the same 1-of-N digit OTs
//! and triples with a subset of the old comparisons plus one root `eq`, computed by the same
//! AND gates as every other node's `eq` (each opening masked by its fresh triple bits), so the
//! simulator of the two-comparison protocol, given the outputs, covers it; whether the carries
//! fuse depends only on the public `p` and `s`. Alice's `Q̃_0` is computed without a branch
//! on her share.
//!
//! # Low digits shared (issue #20)
//! Where moreover `2^(s+1)` divides `p − 1` and `s` is a digit boundary at least two digits
//! up (the presets at the UNet's shift of 12 with digits of 1 to 4 bits; with a single low
//! digit the split saves 3 B and measured slower, so it is not taken;
//! [`Millionaires::shared_low_digits`], the default), `h = (p − 1)/2 ≡ 0 (mod 2^s)`, so the wrap threshold `T_w = p − 1 − a` and the
//! carries' `τ` agree in their low `s` bits (`T_w ≡ −a ≡ −ρ_0`), and so does the DReLU
//! threshold: `θ − 1 = T_w + h` for `a ≥ h`, and for `a < h` `[b ≥ θ] = [T_w − h ≤ b]`. Every
//! comparison then splits at bit `s` (`b = b_hi·2^s + b_lo`,
//! `[T < b] = [T_hi < b_hi] ⊕ [T_hi = b_hi] ∧ [T_lo < b_lo]`) and they share one low comparison
//! `c_1 = [τ < b_lo]`, `e = [τ = b_lo]`: `w = W_hi ⊕ E_w ∧ c_1`, `g = G_hi ⊕ E_g ∧ c_1`, and since
//! `c_1 ∧ e = 0`, `w ∧ e = W_hi ∧ e`, so `c_sel = c̃_0 ⊕ W_hi ∧ e`: the three ANDs of one round
//! after the trees (the `s`-bit tree is shallower than the `(k − s)`-bit ones), the same rounds
//! as before. For `a < h`, `g` is `[T_w − h < b]` where `[T_w − h ≤ b]` is meant: the two differ
//! only at `b = h − a`, i.e. `a + b = h`, `v = 0`, where `R = 0` and `d·R = 0` whatever `d`
//! is — the output is exact (tests at every carry boundary and `v = 0`), DReLU itself is
//! never output. Per ReLU at shift 12, 4-bit digits: the DReLU and wrap comparisons' low three
//! digits (messages and tree nodes) go, for `eq` leaves and lanes of the high trees and one AND
//! per comparison; bytes and CPU in `docs/PERFORMANCE.md`. Security: as for fused carries —
//! the same digit OTs, fewer comparisons, `eq` roots from the same AND gates, and three
//! ordinary Beaver ANDs; the split depends only on the public `p`, `s` and digit size.
//!
//! # Argmax from three wraps (issue #20)
//! Argmax needs only the bit `[u_1 > u_0]`, not the lifted values, and gets it from three
//! wrap comparisons in one batch instead of two wraps, two lifts and a comparison of the lifts
//! after them. With `u_j = a_j + b_j − p·w_j` as above, let Alice's part of `u_1 − u_0 − 1` be
//! `A = a_1 − a_0 − 1 ∈ [−p, p − 2]` and Bob's `B = b_1 − b_0 ∈ (−p, p)`, each written as
//! `A = α − p·n_A`, `B = β − p·n_B` with residues `α, β ∈ [0, p)` and local sign bits `n_A`,
//! `n_B`, and `γ = [α + β ≥ p]`. Then `u_1 − u_0 − 1 = r + p·m` with `r = α + β − p·γ ∈ [0, p)`
//! and `m = γ − n_A − n_B − w_1 + w_0`; as `u_1 − u_0 − 1 ∈ [−p, p − 2]`, `m ∈ {−1, 0}`, and
//! `[u_1 > u_0] = [m = 0] = 1 ⊕ γ ⊕ w_0 ⊕ w_1 ⊕ n_A ⊕ n_B`: the XOR of three wrap bits (each
//! `[p − 1 − x_A < x_B]`, a `k`-bit millionaires') and local bits. One comparison phase of
//! `3n` instead of two (`2n`, then `n` after the lifts), no bit × value conversions: fewer
//! bytes and rounds (`docs/PERFORMANCE.md`). Security: three ordinary millionaires' on each
//! party's own values, outputs as fresh boolean shares, opened to Alice only as their XOR (the
//! output itself), as before.
//!
//! # Running ahead (issue #20)
//! In the digit OTs each party waits for the other in turn: Bob for Alice's first COT chunks,
//! Alice for Bob's corrections, Bob while Alice computes her messages, Alice while he decodes
//! them. There, both parties run ahead the silent COTs that the steps after the comparisons
//! will draw (`Wanted::cots_after_comparisons` plus the trees' one COT per AND bit, per
//! direction): Alice generates her direction's chunks after drawing the digit OTs' COTs and
//! computes her messages after that, Bob generates his direction's chunks after sending his
//! corrections and then expands Alice's, and Alice expands Bob's after sending her messages
//! ([`crate::silent::Sender::buffer_ahead`], [`crate::silent::Receiver::buffer_ahead`], the
//! same count on both ends of a direction). The trees, the AND round and the conversions then
//! draw from the buffers and are computation and openings only. The COTs are the same ones in
//! the same order (only generated earlier; test `buffering_ahead_hands_out_the_same_cots`),
//! the outputs are identical, and no message kind is added: each direction's chunk messages
//! move earlier in its stream, which depends only on public sizes. Measured in
//! `docs/PERFORMANCE.md`, section "Running the COTs ahead".
//!
//! # Security
//! Semi-honest, from the silent OT ([`crate::silent`]): every message is either a correction
//! against a fresh pseudorandom pad, an opening `x ⊕ a` of a fresh triple, or Alice's
//! `y_A − r` masked by her uniform `r`. Bob learns his output shares; Alice her masks and, for
//! argmax, the bit.

use rayon::prelude::*;
use zeroize::Zeroizing;

use super::{Backend, Block, Config, Nonlinear, NonlinearError, Role, SETUP_LABEL};
use crate::Error;
use crate::channel::Channel;
use crate::gc::GcError;
use crate::modm::{add_mod, bytes_per_value, sub_mod};
use crate::prg::Prg;
use crate::silent::{Duplex, Params};

/// Message kinds of the OT backend (`0x0340..=0x035f`).
pub mod kind {
    /// Alice's re-sharing corrections `y_A − r mod p`.
    pub const RESHARE: u16 = 0x0340;
    /// Bob's argmax bit shares, revealed to Alice.
    pub const REVEAL: u16 = 0x0341;
}

/// Instances per parallel task of the per-instance loops (a multiple of 64, so tasks own whole
/// words of packed bits): enough work per task to dwarf rayon's cost, and a chunk of fewer runs
/// as one task on the calling thread.
const INSTANCES_PER_TASK: usize = 1 << 12;

fn bit(v: &[u64], i: usize) -> bool {
    (v[i / 64] >> (i % 64)) & 1 == 1
}

fn pack(n: usize, f: impl Fn(usize) -> bool) -> Vec<u64> {
    let mut v = vec![0u64; n.div_ceil(64)];
    for i in 0..n {
        v[i / 64] |= u64::from(f(i)) << (i % 64);
    }
    v
}

fn xor(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// The sender's correlation of `g·V` (`g = g_A ⊕ g_B`, `V` the sender's, `n·w` values):
/// `V(1 − 2g_sender)`, branch-free in the secret bit.
fn bit_times_correlation(moduli: &[u64], v: &[u64], g: &[u64], n: usize) -> Vec<u64> {
    let w = moduli.len();
    (0..n * w)
        .map(|o| {
            let neg = sub_mod(0, v[o], moduli[o % w]);
            v[o] ^ ((v[o] ^ neg) & 0u64.wrapping_sub(u64::from(bit(g, o / w))))
        })
        .collect()
}

/// The sender's share of `g·V`: `g_sender·V` plus its correlated-OT share `s`.
fn bit_times_own(moduli: &[u64], v: &[u64], g: &[u64], s: &[u64]) -> Vec<u64> {
    let w = moduli.len();
    s.iter()
        .enumerate()
        .map(|(o, &s)| {
            let own = v[o] & 0u64.wrapping_sub(u64::from(bit(g, o / w)));
            add_mod(own, s, moduli[o % w])
        })
        .collect()
}

/// One group of comparisons of [`OtSession::less_than_groups`]: `count` comparisons per
/// instance of Alice's `x` (`n·count` values, instance-major; empty at Bob) against the
/// `width` bits of Bob's value from digit `digit_offset` up (`y_i >> (m·digit_offset) mod
/// 2^width`); with `with_eq`, the roots' `[x = y']` too.
#[derive(Debug, Clone, Copy)]
struct Comparisons<'a> {
    width: u32,
    count: usize,
    x: &'a [u64],
    with_eq: bool,
    digit_offset: usize,
}

impl<'a> Comparisons<'a> {
    /// `count` plain comparisons of `x` against the low `width` bits.
    fn low(width: u32, count: usize, x: &'a [u64]) -> Self {
        Self {
            width,
            count,
            x,
            with_eq: false,
            digit_offset: 0,
        }
    }

    /// Its digits of `m` bits (the top one partial).
    fn digits(&self, m: u32) -> usize {
        self.width.div_ceil(m) as usize
    }

    /// Its own digit at digit `d` of Bob's value, if it has one there.
    fn digit_at(&self, d: usize, m: u32) -> Option<usize> {
        d.checked_sub(self.digit_offset)
            .filter(|&j| j < self.digits(m))
    }

    /// The highest bit of Bob's value it reaches, plus one.
    fn top(&self, m: u32) -> u32 {
        m * self.digit_offset as u32 + self.width
    }
}

/// The millionaires' variant of an [`OtSession`]: how Bob's value is cut into digits and which
/// leaf bits go on the wire (module docs, "Digits and trimming"). Both parties must use the
/// same; [`Millionaires::DEFAULT`] is what [`OtSession::setup`] runs (the unet handshake's
/// protocol version fixes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Millionaires {
    /// Bits per digit `m`, `1..=4`: one 1-out-of-`2^m` OT per digit (max pools, rescaling
    /// alone, argmax).
    pub digit_bits: u32,
    /// Bits per digit of a ReLU's comparisons (its wrap bit, DReLU and carries), `1..=4`.
    pub relu_digit_bits: u32,
    /// Whether only what the tree uses goes on the wire: no `eq` leaf at digit 0, no `eq` lane
    /// opened for a node whose `eq` the tree drops, the top digit's OT only as wide as its bits
    /// (issue #20). `false` is issue #9's wire format (handshake version ≤ 6), kept for
    /// side-by-side benches.
    pub trimmed: bool,
    /// Whether a rescaling's two carries come from one comparison and its equality bit where
    /// `p ≡ 1 (mod 2^s)` (module docs, "One comparison for both carries"; issue #20). `false`
    /// is the wire of handshake versions 7 and 8.
    pub fused_carries: bool,
    /// Whether, where the carries fuse and `2^(s+1)` divides `p − 1` at a digit boundary `s`,
    /// the wrap and DReLU comparisons split at bit `s` and share their low digits with the
    /// carries' comparison (module docs, "Low digits shared"; issue #20).
    pub shared_low_digits: bool,
}

impl Millionaires {
    /// Issue #9's protocol: 4-bit digits, `lt` and `eq` of every digit sent, both lanes of
    /// every node opened.
    pub const ISSUE_9: Self = Self {
        digit_bits: 4,
        relu_digit_bits: 4,
        trimmed: false,
        fused_carries: false,
        shared_low_digits: false,
    };

    /// Handshake versions 7 and 8: 4-bit digits, trimmed, two comparisons for the carries.
    pub const TRIMMED: Self = Self {
        digit_bits: 4,
        relu_digit_bits: 4,
        trimmed: true,
        fused_carries: false,
        shared_low_digits: false,
    };

    /// [`Millionaires::TRIMMED`] with both carries from one comparison where `p` allows.
    pub const FUSED: Self = Self {
        fused_carries: true,
        ..Self::TRIMMED
    };

    /// The default: trimmed, both carries from one comparison and the low digits of the wrap
    /// and DReLU comparisons shared with it where `p` allows; 3-bit digits for a ReLU's
    /// comparisons (93.5 B at the UNet's shift against 104.6 B with 4-bit digits, which run
    /// them about 15 % faster) and 4-bit ones elsewhere (3-bit digits made max pools and
    /// argmaxes about 20 % slower for 10 % fewer bytes); `docs/PERFORMANCE.md`.
    pub const DEFAULT: Self = Self {
        relu_digit_bits: 3,
        shared_low_digits: true,
        ..Self::FUSED
    };

    /// This variant with `bits`-bit digits for every comparison.
    pub const fn with_digits(self, bits: u32) -> Self {
        Self {
            digit_bits: bits,
            relu_digit_bits: bits,
            ..self
        }
    }

    /// The 1-of-N size (`log2 N`) of digit `d`'s OT when the widest comparison has `top` bits.
    fn log_n(&self, d: usize, top: u32) -> u32 {
        let rest = top - self.digit_bits * d as u32;
        if self.trimmed {
            self.digit_bits.min(rest)
        } else {
            self.digit_bits
        }
    }

    /// Message bits of a comparison active at digit `d`: `lt` and `eq`, or `lt` alone at digit
    /// 0 when trimmed (the tree never uses the lowest digit's `eq`) unless the root's `eq` is
    /// wanted (`with_eq`).
    fn stride(&self, d: usize, with_eq: bool) -> usize {
        if self.trimmed && d == 0 && !with_eq {
            1
        } else {
            2
        }
    }
}

/// A comparison active at one digit: its group, its index in the group, the group's own
/// digit there, the mask of the digit's bits that its width reaches, and where its bits sit
/// in the digit's message: `lt` at bit `offset`, `eq` at `offset + 1` if `stride = 2`.
#[derive(Debug, Clone, Copy)]
struct Active {
    group: usize,
    comparison: usize,
    digit: usize,
    mask: u64,
    offset: usize,
    stride: usize,
}

/// The comparisons active at digit `d`, in group order, with their message layout.
fn active_at(groups: &[Comparisons<'_>], d: usize, mill: Millionaires) -> Vec<Active> {
    let m = mill.digit_bits;
    let mut offset = 0;
    let mut out = Vec::new();
    for (group, g) in groups.iter().enumerate() {
        let Some(digit) = g.digit_at(d, m) else {
            continue;
        };
        let mask = (1u64 << (g.width - m * digit as u32).min(m)) - 1;
        let stride = mill.stride(digit, g.with_eq);
        for comparison in 0..g.count {
            let a = Active {
                group,
                comparison,
                digit,
                mask,
                offset,
                stride,
            };
            offset += stride;
            out.push(a);
        }
    }
    assert!(offset <= 8, "at most 8 message bits per digit");
    out
}

/// The shapes of the digit OTs, instance-major (`n·q`): their `log2 N` and message widths
/// ([`Millionaires::stride`] bits per comparison active at the digit, summed).
fn digit_shapes(
    n: usize,
    q: usize,
    groups: &[Comparisons<'_>],
    mill: Millionaires,
) -> (Vec<u32>, Vec<u32>) {
    let m = mill.digit_bits;
    let top = groups.iter().map(|g| g.top(m)).max().unwrap_or(0);
    let per_digit: Vec<(u32, u32)> = (0..q)
        .map(|d| {
            let bits: usize = active_at(groups, d, mill).iter().map(|a| a.stride).sum();
            (mill.log_n(d, top), bits as u32)
        })
        .collect();
    (0..n * q).map(|o| per_digit[o % q]).unzip()
}

/// Alice's message bits of one active comparison of a digit OT with `2^log_n` messages of
/// `field` bits, for every value `x` of her digit and `s` of her two share bits (at
/// `table[x·4 + s]`): at bit `t·field + offset` of message `t` her `lt` share XOR
/// `[x < t & mask]`, and after it, unless trimmed away, her `eq` share XOR `[x = t & mask]`.
/// The share bits are the random byte's bits at the comparison's offset, where her leaves
/// take them ([`Leaves::fill`]).
struct MessageTable<'a> {
    /// The group's values of Alice's (`count` per instance).
    x: &'a [u64],
    count: usize,
    comparison: usize,
    /// Where the digit starts in `x`, and its mask (`2^log_n − 1`).
    shift: u32,
    digit_mask: u64,
    offset: usize,
    table: Zeroizing<Vec<u128>>,
}

impl<'a> MessageTable<'a> {
    fn new(g: &Comparisons<'a>, a: &Active, m: u32, field: usize, log_n: u32) -> Self {
        // Every message's bit 0 set: the spread of a share bit over the messages.
        let all: u128 = (0..1usize << log_n).map(|t| 1u128 << (t * field)).sum();
        let spread = |bit: usize| all & 0u128.wrapping_sub(bit as u128);
        let pick = |f: &dyn Fn(u64) -> bool| -> u128 {
            (0..1u64 << log_n)
                .filter(|&t| f(t & a.mask))
                .map(|t| 1u128 << (t as usize * field))
                .sum()
        };
        let table = (0..64)
            .map(|at| {
                let (x, s) = ((at >> 2) as u64, at & 3);
                let mut w = (spread(s & 1) ^ pick(&|t| x < t)) << a.offset;
                if a.stride == 2 {
                    w |= (spread(s >> 1) ^ pick(&|t| x == t)) << (a.offset + 1);
                }
                w
            })
            .collect();
        Self {
            x: g.x,
            count: g.count,
            comparison: a.comparison,
            shift: m * a.digit as u32,
            digit_mask: (1u64 << log_n) - 1,
            offset: a.offset,
            table: Zeroizing::new(table),
        }
    }

    /// The comparison's bits of instance `i`'s message word, `r` the instance's random byte of
    /// the digit.
    fn word(&self, i: usize, r: u8) -> u128 {
        let x = (self.x[i * self.count + self.comparison] >> self.shift) & self.digit_mask;
        let s = usize::from(r >> self.offset) & 3;
        self.table[(x as usize) << 2 | s]
    }
}

/// One party's shares of the comparison trees' leaves: per group and digit, the packed bits
/// `[x < y]` and `[x = y]` of the digit, comparison `j` of instance `i` at bit `j·n + i`.
/// Every node vector is erased when dropped, here and in the trees built from it.
struct Leaves {
    n: usize,
    /// Words per node vector, per group.
    words: Vec<usize>,
    /// Per group, whether its roots' `eq` is wanted.
    with_eq: Vec<bool>,
    lt: Vec<Vec<Node>>,
    eq: Vec<Vec<Node>>,
}

/// One node vector of a comparison tree: boolean shares, erased on drop.
type Node = Zeroizing<Vec<u64>>;

/// One group's roots from [`OtSession::merge_trees`]: packed `lt` and (if wanted) `eq`
/// shares, comparison `j` of instance `i` at bit `j·n + i`.
type RootBits = (Vec<u64>, Vec<u64>);

/// The results of one group of [`OtSession::less_than_groups`]: per comparison of the group,
/// `n` packed shares of `[x < y]` and, if the group asked (`with_eq`), of `[x = y]`.
struct Roots {
    lt: Vec<Vec<u64>>,
    eq: Vec<Vec<u64>>,
}

impl Leaves {
    fn new(n: usize, groups: &[Comparisons<'_>], m: u32) -> Self {
        let words: Vec<usize> = groups.iter().map(|g| (n * g.count).div_ceil(64)).collect();
        let lt: Vec<Vec<Node>> = groups
            .iter()
            .zip(&words)
            .map(|(g, &w)| vec![Zeroizing::new(vec![0u64; w]); g.digits(m)])
            .collect();
        Self {
            n,
            with_eq: groups.iter().map(|g| g.with_eq).collect(),
            words,
            eq: lt.clone(),
            lt,
        }
    }

    /// Fills the leaves from one byte per instance and digit (`bytes[i·q + d]`) laid out as
    /// the digit's message ([`active_at`], `layouts[d]`): per active comparison its `lt` share,
    /// and its `eq` share if sent (else the leaf's `eq` is left 0: the tree never reads it):
    /// Alice's random shares, Bob's received bits.
    fn fill(&mut self, q: usize, layouts: &[Vec<Active>], bytes: &[u8]) {
        for (d, act) in layouts.iter().enumerate() {
            // The comparisons of one group are consecutive in `act`.
            for group in act.chunk_by(|a, b| a.group == b.group) {
                let (gi, j) = (group[0].group, group[0].digit);
                let offsets = |lane: fn(&Active) -> Option<usize>| -> Vec<Option<usize>> {
                    group.iter().map(lane).collect()
                };
                let lt = offsets(|a| Some(a.offset));
                let eq = offsets(|a| (a.stride == 2).then_some(a.offset + 1));
                let (lt_out, eq_out) = (&mut self.lt[gi][j], &mut self.eq[gi][j]);
                fill_lanes(lt_out, eq_out, self.n, q, d, bytes, [&lt, &eq]);
            }
        }
    }
}

/// Packs the `lt` and `eq` leaf lanes: bit `j·n + i` of lane `l` is bit `bits[l][j]` of
/// `bytes[i·q + d]` (0 where `bits[l][j]` is `None`), for the group's comparisons `j`, in one
/// pass over the bytes. Filled word by word in parallel pieces of [`INSTANCES_PER_TASK`]
/// bits, so the result does not depend on the thread count.
fn fill_lanes(
    lt: &mut [u64],
    eq: &mut [u64],
    n: usize,
    q: usize,
    d: usize,
    bytes: &[u8],
    bits: [&[Option<usize>]; 2],
) {
    let count = bits[0].len();
    let per = INSTANCES_PER_TASK / 64;
    let task = |(c, (lt, eq)): (usize, (&mut [u64], &mut [u64]))| {
        for (w, (l, e)) in lt.iter_mut().zip(eq.iter_mut()).enumerate() {
            let at = (c * per + w) * 64;
            let (mut comparison, mut i) = (at / n, at % n);
            let mut out = [0u64; 2];
            for b in 0..64 {
                if comparison == count {
                    break;
                }
                let byte = bytes[i * q + d];
                for (o, lane) in out.iter_mut().zip(&bits) {
                    if let Some(offset) = lane[comparison] {
                        *o |= u64::from((byte >> offset) & 1) << b;
                    }
                }
                i += 1;
                if i == n {
                    (i, comparison) = (0, comparison + 1);
                }
            }
            [*l, *e] = out;
        }
    };
    if lt.len() >= 2 * per {
        let (lt, eq) = (lt.par_chunks_mut(per), eq.par_chunks_mut(per));
        lt.zip(eq).enumerate().for_each(task);
    } else {
        lt.chunks_mut(per)
            .zip(eq.chunks_mut(per))
            .enumerate()
            .for_each(task);
    }
}

/// A session of the [`Backend::Ot`] backend: both Ferret directions and Alice's mask
/// generator.
///
/// # Security
/// See [the module documentation](self). Keys, triples and masks are erased on drop; `Debug`
/// prints only the role and configuration.
pub struct OtSession {
    config: Config,
    duplex: Duplex,
    prg: Prg,
    millionaires: Millionaires,
}

impl std::fmt::Debug for OtSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtSession")
            .field("role", &self.duplex.role())
            .field("config", &self.config)
            .field("millionaires", &self.millionaires)
            .finish_non_exhaustive()
    }
}

/// Which outputs of [`OtSession::parts`] a layer needs.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    /// Shares mod p of the rescaled value.
    rescale: bool,
    /// Shares of DReLU.
    relu: bool,
    /// Shares of the `Z_{2^K}` lift.
    lift: bool,
}

impl Wanted {
    /// COTs per direction (about: the bit × value conversions run one way) that the steps
    /// after the comparisons of `n` instances draw before their next exchange: the AND round
    /// joining the comparisons (`ands` products), the wrap products and the ReLU's multiplexer.
    /// They run ahead in the digit OTs ([`OtSession::less_than_groups`]).
    fn cots_after_comparisons(self, n: usize, ands: usize) -> usize {
        let products = match (self.rescale, self.lift) {
            // Rescaling alone: `w·(Q_1 − Q_0)` and `c_sel·1` in one exchange.
            (true, false) => 2 * n,
            (false, false) => 0,
            _ => n,
        };
        ands.next_multiple_of(64) + products + if self.relu { n } else { 0 }
    }

    /// ReLU with rescaling.
    const RELU_RESCALE: Self = Self {
        rescale: true,
        relu: true,
        lift: false,
    };
    /// Rescaling alone.
    const RESCALE: Self = Self {
        rescale: true,
        relu: false,
        lift: false,
    };
    /// Max pooling: rescaled values to select and lifted values to compare.
    const RESCALE_LIFT: Self = Self {
        rescale: true,
        relu: false,
        lift: true,
    };
}

/// One party's view of its shares in [`OtSession::parts`].
struct View {
    /// Alice's `a = s_A + h mod p`, Bob's `b = s_B`.
    own: Vec<u64>,
    /// Alice's `(Q_j, ρ_j)` for `j = 0, 1` (empty at Bob).
    qs: Vec<[(i64, u64); 2]>,
}

/// The boolean shares of steps 1 and 2 of [`OtSession::parts`].
struct WrapBits {
    /// Whether the rescaling steps run (`s > 0`).
    rescaling: bool,
    /// The wrap bit `w` (packed).
    w: Vec<u64>,
    /// DReLU (packed; empty unless asked for).
    d: Vec<u64>,
    /// The selected carry `c_sel` (packed; empty unless rescaling).
    c_sel: Vec<u64>,
}

/// The arithmetic shares of step 3 of [`OtSession::parts`].
struct WrapProducts {
    /// Values per instance in `wm` (one per modulus).
    stride: usize,
    /// `w·(Q_1 − Q_0) mod p` and / or `w·p mod 2^K`, instance-major.
    wm: Vec<u64>,
    /// `c_sel·1 mod p` when it shared step 3's exchange.
    merged_cb: Option<Vec<u64>>,
}

/// What a rescaling pass leaves for later steps.
struct Parts {
    /// Shares mod p of `⌊signed(v)/2^s⌋` (empty unless asked for).
    r: Vec<u64>,
    /// Shares of `DReLU` (packed; empty unless asked for).
    d: Vec<u64>,
    /// Shares in `Z_{2^K}` of `u = signed(v) + h` (empty unless asked for).
    lift: Vec<u64>,
}

impl OtSession {
    /// Sets up the session with [`Params::FERRET_COMPACT`] (145 bits under the LPN estimates of
    /// `tools/lpn_estimate.py`, issue #18; the L2-resident LPN set, the fastest: a 32-bit ReLU
    /// in 107.4 B at shift 4 and 93.5 B at shift 12 with [`Millionaires::DEFAULT`] at the q32
    /// preset's `p` (118.4 and 138.8 B with issue #20's trimmed 4-bit digits alone);
    /// [`Params::FERRET`] takes 20 B less at shift 12 but runs at less than half the rate,
    /// `docs/PERFORMANCE.md`; [`Params::FERRET_B11`] is below 128 bits, see `SECURITY.md`):
    /// Ferret in both directions (Alice's first), each bootstrapped by 128 base OTs and IKNP,
    /// running [`Millionaires::DEFAULT`]. The peer calls this with the other role and the same
    /// `config`. Traffic is counted under [`SETUP_LABEL`].
    ///
    /// # Errors
    /// Channel and wire errors of the set-up.
    pub fn setup(ch: &mut Channel, role: Role, config: Config, prg: Prg) -> Result<Self, Error> {
        Self::setup_with(ch, role, config, prg, Params::FERRET_COMPACT)
    }

    /// [`OtSession::setup`] with other Ferret parameters (tests use
    /// [`Params::insecure_for_tests`]).
    ///
    /// # Errors
    /// As [`OtSession::setup`].
    pub fn setup_with(
        ch: &mut Channel,
        role: Role,
        config: Config,
        mut prg: Prg,
        params: Params,
    ) -> Result<Self, Error> {
        let duplex = Duplex::setup(
            &mut ch.labelled(SETUP_LABEL),
            role,
            params,
            Prg::from_seed(prg.next_seed()),
        )?;
        Ok(Self {
            config,
            duplex,
            prg,
            millionaires: Millionaires::DEFAULT,
        })
    }

    /// The same session running the millionaires' variant `millionaires` from its next call
    /// (the peer must switch too, at the same point; benches compare variants side by side).
    ///
    /// # Errors
    /// [`NonlinearError::InvalidDigitBits`] unless `1 ≤ digit_bits ≤ 4`.
    pub fn with_millionaires(mut self, millionaires: Millionaires) -> Result<Self, Error> {
        for bits in [millionaires.digit_bits, millionaires.relu_digit_bits] {
            if !(1..=4).contains(&bits) {
                return Err(NonlinearError::InvalidDigitBits { bits }.into());
            }
        }
        self.millionaires = millionaires;
        Ok(self)
    }

    /// The session's millionaires' variant.
    pub fn millionaires(&self) -> Millionaires {
        self.millionaires
    }

    fn party(&self) -> Role {
        self.duplex.role()
    }

    /// `[x_ij < y_i]` for `n` instances of `width`-bit values, `c ∈ {1, 2}` comparisons per
    /// instance: Alice passes `x` (`n·c`, instance-major), Bob `y` (`n`); `after` COTs per
    /// direction for the caller's next steps run ahead. Returns `c` packed share vectors of
    /// `n` bits.
    fn less_than(
        &mut self,
        ch: &mut Channel,
        width: u32,
        c: usize,
        n: usize,
        values: &[u64],
        after: usize,
    ) -> Result<Vec<Vec<u64>>, Error> {
        let group = Comparisons::low(width, c, values);
        Ok(self
            .less_than_groups(ch, n, &[group], values, after)?
            .remove(0)
            .lt)
    }

    /// Several millionaires' at once against digits of one value of Bob's: each group gives
    /// `[x_ij < y'_i]` (and as asked `[x_ij = y'_i]`) for Alice's `x` and
    /// the group's part `y'` of Bob's value (see [`Comparisons`]), Bob passing `y` (`n`, his
    /// values in the groups are ignored). The groups share the digit OTs (Bob's digit `d` is the
    /// same choice in every group that reaches it) and the AND rounds; at most 8 message bits
    /// per digit. The COTs of the trees, and `after` more per direction for the caller's next
    /// steps, run ahead in the digit OTs. Returns per group its [`Roots`].
    fn less_than_groups(
        &mut self,
        ch: &mut Channel,
        n: usize,
        groups: &[Comparisons<'_>],
        y: &[u64],
        after: usize,
    ) -> Result<Vec<Roots>, Error> {
        let mill = self.millionaires;
        let m = mill.digit_bits;
        let q = groups
            .iter()
            .map(|g| g.top(m).div_ceil(m) as usize)
            .max()
            .unwrap_or(0);
        let alice = self.party() == Role::Alice;
        if n == 0 || q == 0 {
            // No digit: `[x < y mod 1]` is 0 and `[x = y mod 1]` is 1, Alice's share.
            return Ok(groups
                .iter()
                .map(|g| Roots {
                    lt: vec![vec![0u64; n.div_ceil(64)]; g.count],
                    eq: if g.with_eq {
                        vec![pack(n, |_| alice); g.count]
                    } else {
                        Vec::new()
                    },
                })
                .collect());
        }
        let layouts: Vec<Vec<Active>> = (0..q).map(|d| active_at(groups, d, mill)).collect();
        let mut leaves = Leaves::new(n, groups, m);
        // The trees' ANDs take one COT per direction and AND bit, `digits − 1` node vectors per
        // group: both directions' run ahead in the digit OTs, where one party would otherwise
        // wait for the other (Alice for Bob's corrections, Bob for her messages), so that the
        // trees are computation and openings only.
        let ahead = groups
            .iter()
            .zip(&leaves.words)
            .map(|(g, &w)| g.digits(m).saturating_sub(1) * w * 64)
            .sum::<usize>()
            + after;
        if alice {
            self.alice_digit_ots(ch, n, groups, &layouts, &mut leaves, ahead)?;
        } else {
            self.bob_digit_ots(ch, groups, y, &layouts, &mut leaves, ahead)?;
        }
        let roots = self.merge_trees(ch, leaves)?;
        let split = |g: &Comparisons<'_>, root: &[u64], wanted: bool| -> Vec<Vec<u64>> {
            if !wanted {
                return Vec::new();
            }
            (0..g.count)
                .map(|j| pack(n, |i| bit(root, j * n + i)))
                .collect()
        };
        Ok(groups
            .iter()
            .zip(&roots)
            .map(|(g, (lt, eq))| Roots {
                lt: split(g, lt, true),
                eq: split(g, eq, g.with_eq),
            })
            .collect())
    }

    /// Alice's side of the digit OTs: per instance and digit `d` one 1-of-`2^log_n` OT whose
    /// message `t` holds, per active comparison `a` (its bits at `a.offset`, `layouts[d]`), the
    /// bits `[x < t & mask]` and, unless trimmed away, `[x = t & mask]` of her digit `x`, each
    /// XOR her random share (which becomes her leaf).
    fn alice_digit_ots(
        &mut self,
        ch: &mut Channel,
        n: usize,
        groups: &[Comparisons<'_>],
        layouts: &[Vec<Active>],
        leaves: &mut Leaves,
        ahead: usize,
    ) -> Result<(), Error> {
        let mill = self.millionaires;
        let (m, q) = (mill.digit_bits, layouts.len());
        let top = groups.iter().map(|g| g.top(m)).max().unwrap_or(0);
        let mut rnd = Zeroizing::new(vec![0u8; n * q]);
        self.prg.fill_bytes(&mut rnd);
        // The messages, computed once the COTs are drawn (while Bob expands his and sends his
        // corrections).
        let words = || {
            // Per digit and active comparison, its message bits for every value of Alice's
            // digit and of her two share bits: a word is one lookup per active comparison.
            let digits: Vec<Vec<MessageTable<'_>>> = layouts
                .iter()
                .enumerate()
                .map(|(d, act)| {
                    let log_n = mill.log_n(d, top);
                    let field = act.iter().map(|a| a.stride).sum::<usize>();
                    act.iter()
                        .map(|a| MessageTable::new(&groups[a.group], a, m, field, log_n))
                        .collect()
                })
                .collect();
            let mut words = Zeroizing::new(vec![0u128; n * q]);
            // Independent per instance: parallel tasks of whole instances (one task on the
            // calling thread for a small chunk).
            let task = |(c, (words, rnd)): (usize, (&mut [u128], &[u8]))| {
                let first = c * INSTANCES_PER_TASK;
                let instances = words.chunks_exact_mut(q).zip(rnd.chunks_exact(q));
                for (i, (words, rnd)) in (first..).zip(instances) {
                    for ((word, &r), tables) in words.iter_mut().zip(rnd).zip(&digits) {
                        *word = tables.iter().fold(0, |w, t| w | t.word(i, r));
                    }
                }
            };
            let per = INSTANCES_PER_TASK * q;
            if n >= 2 * INSTANCES_PER_TASK {
                let (w, r) = (words.par_chunks_mut(per), rnd.par_chunks(per));
                w.zip(r).enumerate().for_each(task);
            } else {
                words
                    .chunks_mut(per)
                    .zip(rnd.chunks(per))
                    .enumerate()
                    .for_each(task);
            }
            // Her shares sit where her messages' bits do.
            leaves.fill(q, layouts, &rnd);
            words
        };
        // One exchange for every digit, each OT with its digit's size and message width.
        let (log_n, widths) = digit_shapes(n, q, groups, mill);
        // Her direction's COTs for the trees ahead while Bob expands the digits', his after
        // the messages, which he ran ahead while she computed them.
        self.duplex
            .send_one_of_n_mixed_ahead(ch, &log_n, &widths, words, ahead)
    }

    /// Bob's side of the digit OTs: he chooses his digits of `y` and his leaves are the bits
    /// he receives.
    fn bob_digit_ots(
        &mut self,
        ch: &mut Channel,
        groups: &[Comparisons<'_>],
        y: &[u64],
        layouts: &[Vec<Active>],
        leaves: &mut Leaves,
        ahead: usize,
    ) -> Result<(), Error> {
        let mill = self.millionaires;
        let (m, q) = (mill.digit_bits, layouts.len());
        let n = leaves.n;
        let (log_n, widths) = digit_shapes(n, q, groups, mill);
        let choices: Zeroizing<Vec<u8>> = Zeroizing::new(
            (0..n * q)
                .map(|o| ((y[o / q] >> (m * (o % q) as u32)) & ((1 << log_n[o]) - 1)) as u8)
                .collect(),
        );
        // While Alice computes her messages, both directions' COTs for the trees.
        let got = Zeroizing::new(
            self.duplex
                .receive_one_of_n_mixed_ahead(ch, &log_n, &widths, &choices, ahead)?,
        );
        leaves.fill(q, layouts, &got);
        Ok(())
    }

    /// The comparison trees' AND rounds, all groups' pairs of a level in one round; returns per
    /// group the root's `lt` and, for a group `with_eq`, its `eq` (else empty; comparison `j`
    /// of instance `i` at bit `j·n + i`). Per group, digit 0 is the least significant; per
    /// pair `eq_hi` meets both `lt_lo` and `eq_lo`: one shared-operand triple (two COTs) each.
    /// The lowest pair of every tree and level needs its `eq` only if the root's is wanted (it
    /// would otherwise only ever meet digit 0's): the others go last in the level's AND and,
    /// trimmed, their `eq` lane is not opened.
    fn merge_trees(&mut self, ch: &mut Channel, leaves: Leaves) -> Result<Vec<RootBits>, Error> {
        let trimmed = self.millionaires.trimmed;
        let Leaves {
            words,
            with_eq: root_eq,
            lt,
            eq,
            ..
        } = leaves;
        let mut trees: Vec<Vec<(Node, Node)>> = lt
            .into_iter()
            .zip(eq)
            .map(|(lt, eq)| lt.into_iter().zip(eq).collect())
            .collect();
        while trees.iter().any(|t| t.len() > 1) {
            // The level's pairs (tree, pair): those whose `eq` is needed, then the lowest ones.
            let mut order: Vec<(usize, usize)> = Vec::new();
            let lowest = |t: usize| usize::from(!root_eq[t]);
            for (t, tree) in trees.iter().enumerate() {
                order.extend((lowest(t)..tree.len() / 2).map(|p| (t, p)));
            }
            let with_eq = order.len();
            for (t, tree) in trees.iter().enumerate() {
                if tree.len() >= 2 && !root_eq[t] {
                    order.push((t, 0));
                }
            }
            // Each pair's first word in the level's vectors.
            let mut at: Vec<Vec<usize>> = trees.iter().map(|t| vec![0; t.len() / 2]).collect();
            let (mut total, mut eq_words) = (0, 0);
            for (o, &(t, p)) in order.iter().enumerate() {
                at[t][p] = total;
                total += words[t];
                if o < with_eq {
                    eq_words = total;
                }
            }
            // Sized up front: a growing vector would leave unerased copies behind.
            let [mut x, mut y_lt, mut y_eq] =
                [(); 3].map(|()| Zeroizing::new(Vec::with_capacity(total)));
            for &(t, p) in &order {
                let tree = &trees[t];
                x.extend_from_slice(&tree[2 * p + 1].1);
                y_lt.extend_from_slice(&tree[2 * p].0);
                if p > 0 || root_eq[t] {
                    y_eq.extend_from_slice(&tree[2 * p].1);
                }
            }
            debug_assert_eq!(y_eq.len(), eq_words);
            if !trimmed {
                // Issue #9's wire: zeros opened in the lowest pairs' `eq` lane.
                y_eq.resize(total, 0);
            }
            let bits = x.len() * 64;
            let z = Zeroizing::new(self.duplex.and_shared(ch, &x, &[&y_lt, &y_eq], bits)?);
            for (t, ((tree, &w), at)) in trees.iter_mut().zip(&words).zip(&at).enumerate() {
                let pairs = tree.len() / 2;
                let mut next = Vec::with_capacity(pairs + 1);
                for (p, &a) in at.iter().enumerate() {
                    let lt = xor(&tree[2 * p + 1].0, &z[0][a..a + w]);
                    let eq = if p > 0 || root_eq[t] {
                        z[1][a..a + w].to_vec()
                    } else {
                        Vec::new()
                    };
                    next.push((Zeroizing::new(lt), Zeroizing::new(eq)));
                }
                if tree.len() % 2 == 1 {
                    next.push(tree.pop().expect("odd node count"));
                }
                *tree = next;
            }
        }
        // A group of width 0 has no digit: `[x < y mod 1]` is 0 and `[x = y mod 1]` is 1
        // (Alice's share).
        let one = if self.party() == Role::Alice { !0 } else { 0 };
        Ok(trees
            .into_iter()
            .zip(&words)
            .zip(&root_eq)
            .map(|((tree, &w), &root_eq)| {
                tree.into_iter().next().map_or_else(
                    || (vec![0; w], if root_eq { vec![one; w] } else { Vec::new() }),
                    |(mut lt, mut eq)| (std::mem::take(&mut *lt), std::mem::take(&mut *eq)),
                )
            })
            .collect())
    }

    /// Shares of `g_i · V_ij` in `Z_{moduli[j]}` with `V` held by `from` (`n·w` values, ignored
    /// at the other party) and `g` boolean-shared (`n` packed bits).
    fn bit_times(
        &mut self,
        ch: &mut Channel,
        from: Role,
        moduli: &[u64],
        v: &[u64],
        g: &[u64],
        n: usize,
    ) -> Result<Vec<u64>, Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.party() == from {
            let corr = bit_times_correlation(moduli, v, g, n);
            let s = self
                .duplex
                .sender()
                .send_correlated_mod(ch, moduli, &corr)?;
            Ok(bit_times_own(moduli, v, g, &s))
        } else {
            let choices: Zeroizing<Vec<bool>> = Zeroizing::new((0..n).map(|i| bit(g, i)).collect());
            self.duplex
                .receiver()
                .receive_correlated_mod(ch, moduli, &choices)
        }
    }

    /// Shares of `g_i · (V_A + V_B)_ij` in `Z_{moduli[j]}`: [`OtSession::bit_times`] from
    /// both parties at once (each holds a `V`), the two directions' OTs in one exchange.
    fn bit_times_both(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        v: &[u64],
        g: &[u64],
        n: usize,
    ) -> Result<Vec<u64>, Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let corr = bit_times_correlation(moduli, v, g, n);
        let choices: Zeroizing<Vec<bool>> = Zeroizing::new((0..n).map(|i| bit(g, i)).collect());
        let (s, r) = self.duplex.correlated_both(ch, moduli, &corr, &choices)?;
        let w = moduli.len();
        Ok(bit_times_own(moduli, v, g, &s)
            .iter()
            .zip(&r)
            .enumerate()
            .map(|(o, (&a, &b))| add_mod(a, b, moduli[o % w]))
            .collect())
    }

    /// Shares of `g·(y − x) + x` in each ring for shared `x`, `y` (`n·w` each).
    fn mux(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        g: &[u64],
        x: &[u64],
        y: &[u64],
        n: usize,
    ) -> Result<Vec<u64>, Error> {
        let w = moduli.len();
        let diff: Zeroizing<Vec<u64>> = Zeroizing::new(
            (0..n * w)
                .map(|o| sub_mod(y[o], x[o], moduli[o % w]))
                .collect(),
        );
        let prod = self.bit_times_both(ch, moduli, &diff, g, n)?;
        Ok((0..n * w)
            .map(|o| add_mod(x[o], prod[o], moduli[o % w]))
            .collect())
    }

    /// The wrap bits, and as asked the rescaled value, DReLU and the `Z_{2^K}` lift, for `n`
    /// shares (see the module documentation).
    fn parts(
        &mut self,
        ch: &mut Channel,
        shares: &[u64],
        s: u32,
        want: Wanted,
    ) -> Result<Parts, Error> {
        let view = self.view(shares, s);
        let bits = if want.relu {
            // A ReLU's comparisons run on their own digit size (the variant's `relu_digit_bits`).
            let all = self.millionaires;
            self.millionaires.digit_bits = all.relu_digit_bits;
            let bits = self.wrap_bits(ch, &view, s, want);
            self.millionaires = all;
            bits?
        } else {
            self.wrap_bits(ch, &view, s, want)?
        };
        let products = self.wrap_products(ch, &view, &bits, want)?;
        let r = if !want.rescale {
            Vec::new()
        } else if !bits.rescaling {
            // s = 0: the rescaled value is v itself, already shared.
            shares.to_vec()
        } else {
            self.rescaled(ch, &view, &bits, &products, s)?
        };
        let lift = if want.lift {
            let big = 1u64 << (self.config.k + 1);
            let stride = products.stride;
            (0..view.own.len())
                .map(|i| {
                    let pw = products.wm[i * stride + stride - 1];
                    view.own[i].wrapping_sub(pw) & (big - 1)
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Parts { r, d: bits.d, lift })
    }

    /// Whether a rescaling by `2^s` takes both carries from one comparison: the variant asks
    /// for it and `p ≡ 1 (mod 2^s)` (module docs, "One comparison for both carries").
    fn fuses_carries(&self, s: u32) -> bool {
        self.millionaires.fused_carries && s > 0 && (self.config.p - 1).is_multiple_of(1u64 << s)
    }

    /// This party's view of its shares: Alice's `a = s_A + h mod p` with her `Q_j, ρ_j` for
    /// `j = 0, 1` (with fused carries, `Q_0 − [ρ_0 = 0]` in `Q_0`'s place), Bob's `b = s_B`.
    fn view(&self, shares: &[u64], s: u32) -> View {
        let p = self.config.p;
        let h = (p - 1) / 2;
        let fused = i64::from(self.fuses_carries(s));
        if self.party() == Role::Alice {
            let own: Vec<u64> = shares.iter().map(|&x| add_mod(x, h, p)).collect();
            let qs = own
                .iter()
                .map(|&a| {
                    let [(q0, rho0), (q1, rho1)] = [0i64, 1].map(|j| {
                        let aj = a as i64 - h as i64 - j * p as i64;
                        (aj.div_euclid(1 << s), aj.rem_euclid(1 << s) as u64)
                    });
                    [(q0 - fused * i64::from(rho0 == 0), rho0), (q1, rho1)]
                })
                .collect();
            View { own, qs }
        } else {
            View {
                own: shares.to_vec(),
                qs: Vec::new(),
            }
        }
    }

    /// Steps 1 and 2: one millionaires' of up to four comparisons against `b`: the wrap bit
    /// `w = [p − 1 − a < b]`, for ReLU `g = [θ − 1 < b]`, and when rescaling the carries
    /// `c_j = [2^s − 1 − ρ_j < b_lo]` (`b_lo = b mod 2^s`, the low digits of the same `b`);
    /// then `c_sel = c_0 ⊕ w ∧ (c_0 ⊕ c_1)`. With fused carries, one comparison
    /// `[τ < b_lo]`, `τ = −ρ_0 mod 2^s`, and its `e = [τ = b_lo]` stand for both:
    /// `c_1 = [τ < b_lo]`, `c̃_0 = c_1 ⊕ e`, so `c_sel = c_1 ⊕ e ⊕ w ∧ e`.
    fn wrap_bits(
        &mut self,
        ch: &mut Channel,
        view: &View,
        s: u32,
        want: Wanted,
    ) -> Result<WrapBits, Error> {
        let (k, p) = (self.config.k, self.config.p);
        let h = (p - 1) / 2;
        let n = view.own.len();
        let alice = self.party() == Role::Alice;
        let rescaling = want.rescale && s > 0;
        if rescaling && self.shares_low_digits(s) {
            return self.wrap_bits_shared_low(ch, view, s, want);
        }
        let fused = rescaling && self.fuses_carries(s);
        let c = 1 + usize::from(want.relu);
        let (x, carry_x): (Vec<u64>, Vec<u64>) = if alice {
            let x = view
                .own
                .iter()
                .flat_map(|&a| {
                    let theta = if a >= h { p + h - a } else { h - a };
                    [p - 1 - a, theta - 1].into_iter().take(c)
                })
                .collect();
            let carry_x = if fused {
                let low = (1u64 << s) - 1;
                view.qs
                    .iter()
                    .map(|q| q[0].1.wrapping_neg() & low)
                    .collect()
            } else {
                view.qs
                    .iter()
                    .flat_map(|q| q.map(|(_, rho)| (1u64 << s) - 1 - rho))
                    .collect()
            };
            (x, carry_x)
        } else {
            (Vec::new(), Vec::new())
        };
        let mut groups = vec![Comparisons::low(k, c, &x)];
        if rescaling {
            groups.push(Comparisons {
                with_eq: fused,
                ..Comparisons::low(s, if fused { 1 } else { 2 }, &carry_x)
            });
        }
        let after = want.cots_after_comparisons(n, if rescaling { n } else { 0 });
        let mut cmp = self.less_than_groups(ch, n, &groups, &view.own, after)?;
        let mut wrap = cmp.remove(0).lt;
        let w = wrap.remove(0);
        let d = if want.relu {
            self.drelu(view, &w, &wrap.remove(0))
        } else {
            Vec::new()
        };
        let c_sel = if rescaling {
            let Roots { lt: cs, eq, .. } = cmp.remove(0);
            // `c_0` and `c_0 ⊕ c_1`: two carries, or one comparison with its `eq`.
            let (c0, diff) = if fused {
                (xor(&cs[0], &eq[0]), eq[0].clone())
            } else {
                (cs[0].clone(), xor(&cs[0], &cs[1]))
            };
            let t = self.duplex.and(ch, &w, &diff, n)?;
            xor(&c0, &t)
        } else {
            Vec::new()
        };
        Ok(WrapBits {
            rescaling,
            w,
            d,
            c_sel,
        })
    }

    /// DReLU's shares `d = κ ⊕ w ⊕ g` from the wrap bit and `g = [b ≥ θ]` (module docs),
    /// `κ = [a ≥ h]` Alice's.
    fn drelu(&self, view: &View, w: &[u64], g: &[u64]) -> Vec<u64> {
        let d = xor(w, g);
        if self.party() == Role::Alice {
            let h = (self.config.p - 1) / 2;
            xor(&d, &pack(view.own.len(), |i| view.own[i] >= h))
        } else {
            d
        }
    }

    /// Whether a rescaling by `2^s` splits the wrap and DReLU comparisons at bit `s`: the
    /// carries fuse, `s` is a digit boundary below `k` and at least two digits up (with one
    /// low digit the split saves 3 B per ReLU and measured 13 % slower), and `2^(s+1)` divides
    /// `p − 1` (so `h ≡ 0 mod 2^s`; module docs, "Low digits shared").
    fn shares_low_digits(&self, s: u32) -> bool {
        let m = self.millionaires.digit_bits;
        self.millionaires.shared_low_digits
            && self.fuses_carries(s)
            && s.is_multiple_of(m)
            && s >= 2 * m
            && s < self.config.k
            && (self.config.p - 1).is_multiple_of(1u64 << (s + 1))
    }

    /// Steps 1 and 2 with the low digits shared (module docs, "Low digits shared"): one
    /// `s`-bit comparison `c_1 = [τ < b_lo]` with its `e = [τ = b_lo]`, the high parts of the
    /// wrap and DReLU comparisons against `b_hi = b >> s` with their `eq`, then in one AND
    /// round `w = W_hi ⊕ E_w ∧ c_1`, `c_sel = c̃_0 ⊕ W_hi ∧ e` and `g = G_hi ⊕ E_g ∧ c_1`.
    fn wrap_bits_shared_low(
        &mut self,
        ch: &mut Channel,
        view: &View,
        s: u32,
        want: Wanted,
    ) -> Result<WrapBits, Error> {
        let (k, p, m) = (self.config.k, self.config.p, self.millionaires.digit_bits);
        let h = (p - 1) / 2;
        let n = view.own.len();
        let alice = self.party() == Role::Alice;
        let c = 1 + usize::from(want.relu);
        let low = (1u64 << s) - 1;
        let (mut lo_x, mut hi_x) = (Vec::new(), Vec::new());
        if alice {
            for (&a, q) in view.own.iter().zip(&view.qs) {
                let t_w = p - 1 - a;
                // `τ = −ρ_0 mod 2^s` is the wrap threshold's low part, as `2^s` divides `h`.
                debug_assert_eq!(t_w & low, q[0].1.wrapping_neg() & low);
                lo_x.push(t_w & low);
                hi_x.push(t_w >> s);
                if want.relu {
                    // `[b ≥ θ]` is `[T_w + h < b]` for `a ≥ h`, and `[T_w − h ≤ b]` below,
                    // where `[T_w − h < b]` stands in for it: they differ only at `v = 0`, whose
                    // rescaled value `R = 0` makes `d·R` exact either way (module docs).
                    let t_g = if a < h { t_w - h } else { t_w + h };
                    hi_x.push(t_g >> s);
                }
            }
        }
        let groups = [
            Comparisons {
                with_eq: true,
                ..Comparisons::low(s, 1, &lo_x)
            },
            Comparisons {
                with_eq: true,
                digit_offset: (s / m) as usize,
                ..Comparisons::low(k - s, c, &hi_x)
            },
        ];
        let ands = (2 + usize::from(want.relu)) * n.div_ceil(64) * 64;
        let after = want.cots_after_comparisons(n, ands);
        let [lo, hi]: [Roots; 2] = self
            .less_than_groups(ch, n, &groups, &view.own, after)?
            .try_into()
            .unwrap_or_else(|_| unreachable!("two groups"));
        let (c1, e) = (&lo.lt[0], &lo.eq[0]);
        // One AND round: `E_w ∧ c_1`, `W_hi ∧ e` and for ReLU `E_g ∧ c_1`, concatenated.
        let words = n.div_ceil(64);
        let mut x = Zeroizing::new(Vec::with_capacity(3 * words));
        let mut y = Zeroizing::new(Vec::with_capacity(3 * words));
        x.extend_from_slice(&hi.eq[0]);
        y.extend_from_slice(c1);
        x.extend_from_slice(&hi.lt[0]);
        y.extend_from_slice(e);
        if want.relu {
            x.extend_from_slice(&hi.eq[1]);
            y.extend_from_slice(c1);
        }
        let z = Zeroizing::new(self.duplex.and(ch, &x, &y, x.len() * 64)?);
        // Each product's first `n` bits (the rest are shares of the zero padding).
        let part = |j: usize, base: &[u64]| {
            let mut v = xor(base, &z[j * words..(j + 1) * words]);
            if !n.is_multiple_of(64) {
                v[words - 1] &= (1u64 << (n % 64)) - 1;
            }
            v
        };
        let w = part(0, &hi.lt[0]);
        let c_sel = part(1, &xor(c1, e));
        let d = if want.relu {
            self.drelu(view, &w, &part(2, &hi.lt[1]))
        } else {
            Vec::new()
        };
        Ok(WrapBits {
            rescaling: true,
            w,
            d,
            c_sel,
        })
    }

    /// Step 3: `w·(Q_1 − Q_0) mod p` (when rescaling) and `w·p mod 2^K` (for the lift) in one
    /// correlated OT per instance; with rescaling alone, `c_sel·1 mod p` joins the same
    /// exchange.
    fn wrap_products(
        &mut self,
        ch: &mut Channel,
        view: &View,
        bits: &WrapBits,
        want: Wanted,
    ) -> Result<WrapProducts, Error> {
        let (k, p) = (self.config.k, self.config.p);
        let n = view.own.len();
        let alice = self.party() == Role::Alice;
        let rescaling = bits.rescaling;
        let mut moduli = Vec::new();
        if rescaling {
            moduli.push(p);
        }
        if want.lift {
            moduli.push(1u64 << (k + 1));
        }
        let stride = moduli.len();
        let dq = |q: &[(i64, u64); 2]| (q[1].0 - q[0].0).rem_euclid(p as i64) as u64;
        let (wm, merged_cb) = if moduli.is_empty() {
            (Vec::new(), None)
        } else if moduli == [p] {
            // Rescaling only: w·(Q_1 − Q_0) and c_sel·1, both from Alice and mod p, in one
            // exchange of 2n OTs.
            let v: Vec<u64> = if alice {
                view.qs
                    .iter()
                    .map(dq)
                    .chain(std::iter::repeat_n(1, n))
                    .collect()
            } else {
                Vec::new()
            };
            let g = pack(2 * n, |i| {
                if i < n {
                    bit(&bits.w, i)
                } else {
                    bit(&bits.c_sel, i - n)
                }
            });
            let mut both = self.bit_times(ch, Role::Alice, &moduli, &v, &g, 2 * n)?;
            let cb = both.split_off(n);
            (both, Some(cb))
        } else {
            let v: Vec<u64> = if alice {
                view.qs
                    .iter()
                    .flat_map(|q| {
                        [dq(q), p]
                            .into_iter()
                            .skip(usize::from(!rescaling))
                            .take(stride)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (
                self.bit_times(ch, Role::Alice, &moduli, &v, &bits.w, n)?,
                None,
            )
        };
        Ok(WrapProducts {
            stride,
            wm,
            merged_cb,
        })
    }

    /// Shares mod p of `⌊signed(v)/2^s⌋ = Q_0 + w·(Q_1 − Q_0) + c_sel` (Alice) and
    /// `⌊b / 2^s⌋` (Bob), `s > 0`.
    fn rescaled(
        &mut self,
        ch: &mut Channel,
        view: &View,
        bits: &WrapBits,
        products: &WrapProducts,
        s: u32,
    ) -> Result<Vec<u64>, Error> {
        let p = self.config.p;
        let n = view.own.len();
        let alice = self.party() == Role::Alice;
        let separate;
        let cb = match &products.merged_cb {
            Some(cb) => cb,
            None => {
                let ones = vec![1u64; if alice { n } else { 0 }];
                separate = self.bit_times(ch, Role::Alice, &[p], &ones, &bits.c_sel, n)?;
                &separate
            }
        };
        Ok((0..n)
            .map(|i| {
                let base = if alice {
                    view.qs[i][0].0.rem_euclid(p as i64) as u64
                } else {
                    view.own[i] >> s
                };
                add_mod(add_mod(base, products.wm[i * products.stride], p), cb[i], p)
            })
            .collect())
    }

    /// Shares of `[u_1 > u_0]` for lifted values `u0`, `u1` (shares in `Z_{2^K}`); `after`
    /// COTs per direction for the caller's next step (a multiplexer) run ahead.
    fn greater(
        &mut self,
        ch: &mut Channel,
        u0: &[u64],
        u1: &[u64],
        after: usize,
    ) -> Result<Vec<u64>, Error> {
        let k = self.config.k;
        let big = 1u64 << (k + 1);
        let half = 1u64 << k;
        let alice = self.party() == Role::Alice;
        let n = u0.len();
        let x: Vec<u64> = (0..n)
            .map(|i| {
                let mut d = u1[i].wrapping_sub(u0[i]);
                if alice {
                    d = d.wrapping_sub(1);
                }
                d & (big - 1)
            })
            .collect();
        let input: Vec<u64> = x
            .iter()
            .map(|&d| {
                let lo = d & (half - 1);
                if alice { half - 1 - lo } else { lo }
            })
            .collect();
        let carry = self.less_than(ch, k, 1, n, &input, after)?.remove(0);
        // [u_1 > u_0] = ¬msb: Alice flips her share.
        Ok(pack(n, |i| ((x[i] >> k) & 1 == 1) ^ alice)
            .iter()
            .zip(&carry)
            .map(|(m, c)| m ^ c)
            .collect())
    }

    /// Alice's re-sharing: she returns her masks `r`, Bob `y_B + y_A − r`.
    fn reshare(&mut self, ch: &mut Channel, y: &[u64]) -> Result<Vec<u64>, Error> {
        let p = self.config.p;
        let bytes = bytes_per_value(p);
        match self.party() {
            Role::Alice => {
                let mut r = vec![0u64; y.len()];
                self.prg.fill_uniform_below(&mut r, p);
                let z: Vec<u64> = y.iter().zip(&r).map(|(&y, &r)| sub_mod(y, r, p)).collect();
                let mut body = Vec::with_capacity(z.len() * bytes);
                crate::wire::put_words(&mut body, &z, bytes);
                ch.send(kind::RESHARE, &body)?;
                ch.flush()?;
                Ok(r)
            }
            Role::Bob => {
                let z = ch.recv_with(kind::RESHARE, y.len() * bytes, |r| {
                    let mut z = Vec::with_capacity(y.len());
                    r.words_below("re-sharing correction", y.len(), bytes, p, &mut z)?;
                    Ok(z)
                })?;
                Ok(y.iter().zip(&z).map(|(&y, &z)| add_mod(y, z, p)).collect())
            }
        }
    }

    fn check(&self, block: Block, values: usize, inputs: &[u64], shift: u32) -> Result<(), Error> {
        if !inputs.len().is_multiple_of(values) {
            return Err(NonlinearError::InputLength {
                what: block.name(),
                values,
                found: inputs.len(),
            }
            .into());
        }
        self.config.params(shift)?;
        let p = self.config.p;
        if let Some(&value) = inputs.iter().find(|&&x| x >= p) {
            return Err(GcError::ValueOutOfRange { value, p }.into());
        }
        Ok(())
    }

    /// Runs `f` on chunks of `values·chunk` inputs under the block's label.
    fn run<T>(
        &mut self,
        ch: &mut Channel,
        block: Block,
        values: usize,
        inputs: &[u64],
        shift: u32,
        mut f: impl FnMut(&mut Self, &mut Channel, &[u64]) -> Result<Vec<T>, Error>,
    ) -> Result<Vec<T>, Error> {
        self.check(block, values, inputs, shift)?;
        let ch = &mut ch.labelled(block.ot_label());
        let mut out = Vec::with_capacity(inputs.len() / values);
        for chunk in inputs.chunks(self.config.chunk * values) {
            out.extend(f(self, ch, chunk)?);
        }
        Ok(out)
    }

    fn relu_chunk(&mut self, ch: &mut Channel, x: &[u64], s: u32) -> Result<Vec<u64>, Error> {
        let p = self.config.p;
        let n = x.len();
        let parts = self.parts(ch, x, s, Wanted::RELU_RESCALE)?;
        let y = self.bit_times_both(ch, &[p], &parts.r, &parts.d, n)?;
        self.reshare(ch, &y)
    }

    fn rescale_chunk(&mut self, ch: &mut Channel, x: &[u64], s: u32) -> Result<Vec<u64>, Error> {
        let parts = self.parts(ch, x, s, Wanted::RESCALE)?;
        self.reshare(ch, &parts.r)
    }

    fn max4_chunk(&mut self, ch: &mut Channel, x: &[u64], s: u32) -> Result<Vec<u64>, Error> {
        let (k, p) = (self.config.k, self.config.p);
        let big = 1u64 << (k + 1);
        let n = x.len() / 4;
        let parts = self.parts(ch, x, s, Wanted::RESCALE_LIFT)?;
        // Round 1: (0, 1) and (2, 3) of every window, 2n comparisons.
        let pick = |v: &[u64], j: usize| -> Vec<u64> {
            (0..2 * n)
                .map(|o| v[4 * (o / 2) + 2 * (o % 2) + j])
                .collect()
        };
        let (u0, u1) = (pick(&parts.lift, 0), pick(&parts.lift, 1));
        let (r0, r1) = (pick(&parts.r, 0), pick(&parts.r, 1));
        // The multiplexer's 2n COTs per direction run ahead.
        let g = self.greater(ch, &u0, &u1, 2 * n)?;
        let both = |r: &[u64], u: &[u64]| -> Vec<u64> {
            r.iter().zip(u).flat_map(|(&r, &u)| [r, u]).collect()
        };
        let m = self.mux(ch, &[p, big], &g, &both(&r0, &u0), &both(&r1, &u1), 2 * n)?;
        // Round 2: the winners of (0, 1) against those of (2, 3).
        let half =
            |j: usize, w: usize| -> Vec<u64> { (0..n).map(|i| m[2 * (2 * i + j) + w]).collect() };
        let g2 = self.greater(ch, &half(0, 1), &half(1, 1), n)?;
        let y = self.mux(ch, &[p], &g2, &half(0, 0), &half(1, 0), n)?;
        self.reshare(ch, &y)
    }

    /// `[u_1 > u_0]` from three wrap comparisons in one batch (module docs, "Argmax from three
    /// wraps"), opened to Alice.
    fn argmax_chunk(&mut self, ch: &mut Channel, x: &[u64]) -> Result<Vec<bool>, Error> {
        let (k, p) = (self.config.k, self.config.p);
        let h = (p - 1) / 2;
        let n = x.len() / 2;
        let alice = self.party() == Role::Alice;
        // Per pair this party's `v_0`, `v_1` (`u_j = v_j^A + v_j^B − p·w_j`) and the residue of
        // its part of `u_1 − u_0 − 1`, whose sign it keeps.
        let mut own = Vec::with_capacity(3 * n);
        let mut negative = Vec::with_capacity(n);
        for pair in x.chunks_exact(2) {
            let [v0, v1] = [pair[0], pair[1]].map(|s| if alice { add_mod(s, h, p) } else { s });
            let part = v1 as i64 - v0 as i64 - i64::from(alice);
            own.extend([v0, v1, part.rem_euclid(p as i64) as u64]);
            negative.push(part < 0);
        }
        // `[v^A + v^B ≥ p] = [p − 1 − v^A < v^B]`.
        if alice {
            for v in own.iter_mut() {
                *v = p - 1 - *v;
            }
        }
        let wraps = self.less_than(ch, k, 1, 3 * n, &own, 0)?.remove(0);
        let g: Vec<bool> = (0..n)
            .map(|i| {
                let parity = (0..3).fold(negative[i], |acc, j| acc ^ bit(&wraps, 3 * i + j));
                parity ^ alice
            })
            .collect();
        let bytes = n.div_ceil(8);
        match self.party() {
            Role::Alice => {
                let theirs = ch.recv_with(kind::REVEAL, bytes, |r| r.bits("argmax reveal", n))?;
                Ok(g.iter().zip(&theirs).map(|(&a, &b)| a ^ b).collect())
            }
            Role::Bob => {
                let body = crate::wire::pack_bits(g.iter().copied());
                ch.send(kind::REVEAL, &body)?;
                ch.flush()?;
                Ok(Vec::new())
            }
        }
    }
}

impl Nonlinear for OtSession {
    fn backend(&self) -> Backend {
        Backend::Ot
    }

    fn role(&self) -> Role {
        self.duplex.role()
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn relu_rescale(
        &mut self,
        ch: &mut Channel,
        shares: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::Relu, 1, shares, shift, |s, ch, x| {
            s.relu_chunk(ch, x, shift)
        })
    }

    fn rescale(&mut self, ch: &mut Channel, shares: &[u64], shift: u32) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::Rescale, 1, shares, shift, |s, ch, x| {
            s.rescale_chunk(ch, x, shift)
        })
    }

    fn max4_rescale(
        &mut self,
        ch: &mut Channel,
        windows: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::MaxPool, 4, windows, shift, |s, ch, x| {
            s.max4_chunk(ch, x, shift)
        })
    }

    fn argmax2(&mut self, ch: &mut Channel, pairs: &[u64]) -> Result<Vec<bool>, Error> {
        self.run(ch, Block::Argmax, 2, pairs, 0, |s, ch, x| {
            s.argmax_chunk(ch, x)
        })
    }
}
