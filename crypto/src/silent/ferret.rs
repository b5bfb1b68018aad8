//! Ferret: silent random correlated OT from primal LPN with regular noise (Yang, Weng, Lan,
//! Zhang, Wang, "Ferret: Fast Extension for coRRElated oT with small communication", CCS 2020,
//! ePrint 2020/924, §4 and Figure 7, semi-honest).
//!
//! One round with LPN parameters `(n, k, t)`, `n = t · 2^h`, consumes `k + t·h` base COTs under
//! the sender's `Δ` and produces `n` new ones:
//!
//! 1. **Multi-point COT** (regular noise): the output is cut into `t` bins of `2^h`; per bin one
//!    single-point COT from a *half-tree* (Guo, Yang, Wang, Zhang, Xie, Liu, Zhao, "Half-Tree:
//!    Halving the Cost of Tree Expansion in COT and DPF", Eurocrypt 2023, ePrint 2022/1431, §4,
//!    the GGM tree of Boyle, Couteau, Gilboa, Ishai, Kohl, Scholl, CCS 2019, with correlated
//!    children). The sender draws `s` and sets level 1 to `(s, s ⊕ Δ)`; a node `x` at level
//!    `ℓ − 1` has the left child `H(x, τ_ℓ)` and the right child `x ⊕ H(x, τ_ℓ)`, so the two
//!    children XOR to their parent and **every level XORs to `Δ`**: the XORs `K_0^ℓ`, `K_1^ℓ` of
//!    the left and of the right children satisfy `K_1^ℓ = K_0^ℓ ⊕ Δ`, a COT pair. The sender
//!    sends `c_ℓ = K_0^ℓ ⊕ q_ℓ` on the base COT `(q_ℓ, t_ℓ = q_ℓ ⊕ b_ℓ·Δ)`, and the receiver gets
//!    `c_ℓ ⊕ t_ℓ = K_{b_ℓ}^ℓ`: one block per level (the classic GGM tree sends two, plus a sum),
//!    one hash per node pair (instead of two). Knowing every level-`(ℓ−1)` node but one, the
//!    receiver expands the known ones and solves for the missing child on side `b_ℓ`; it ends with
//!    every leaf except the one at the path `α` of its choice bits `¬b_ℓ`, and sets
//!    `w_α = ⊕_{j≠α} s_j = s_α ⊕ Δ` (the leaves XOR to `Δ`), so `w = s ⊕ e·Δ` with `e` the unit
//!    vector at `α` — a regular noise vector of weight `t` overall. Nothing else is sent. (Children
//!    sit at `j` and `j + 2^(ℓ−1)` rather than `2j`, `2j + 1`: the leaf order is a fixed
//!    permutation of the usual one, which changes nothing.)
//! 2. **LPN encoding**: with the base `(q_B, t_B = q_B ⊕ u·Δ)` of length `k`, output `i` is
//!    `q_i = s_i ⊕ ⊕_{j ∈ S_i} q_B[j]` for the sender and `t_i = w_i ⊕ ⊕_{j ∈ S_i} t_B[j]` for the
//!    receiver, so `t_i ⊕ q_i = (e_i ⊕ ⟨u, A_i⟩)·Δ`; `S_i` is `d = 10` indices of `[0, k)` from
//!    AES-CTR under a public seed (32-bit words, 2.5 blocks per output; the local linear code of
//!    Ferret). `⟨u, A⟩ ⊕ e` is an LPN
//!    sample, so the receiver's output choice bits are pseudorandom.
//! 3. **Bootstrapping**: the first `k + t·h` outputs of each round are kept as the next round's
//!    base; the first round (`pre` parameters) runs on `k' + t'·h'` COTs from IKNP
//!    ([`crate::ot::Sender`], same `Δ`).
//!
//! Choice bits ride in the least significant bit: `Δ` has lsb 1 and every sender block lsb 0
//! (leaves and IKNP blocks are cleared), so a receiver block's lsb is its choice bit and the
//! correlation `t = q ⊕ b·Δ` holds on all 128 bits.
//!
//! Outputs are produced [`CHUNK_COTS`] at a time (one sender → receiver message per
//! chunk, no round trip) and handed out in any batch sizes, so memory stays at two bases
//! (`2 (k + t·h)` blocks) plus one chunk, whatever the number of COTs drawn.
//!
//! # Security
//! Semi-honest, 128-bit computational: primal LPN over `F_2` with regular noise and the
//! `d = 10` local linear code (treated as a random code by every estimate below). The default,
//! [`Params::FERRET_COMPACT`] (`n = 649,728`, `k = 44,000`, `t = 1,269`, bins of 2^9, every
//! round), and [`Params::FERRET`] (the same set as its first round, the Ferret paper's main set
//! after it) keep ≥ 128 bits under the attacks on regular-noise LPN published since Ferret, as
//! `python3 tools/lpn_estimate.py` estimates them (issue #18; sources and cost models in the
//! script and in `SECURITY.md`): pooled Gauss, SD-ISD and BJMM-ISD with the regular-noise
//! reduction to `(n − t, k − t, t)` and statistical decoding (Liu, Wang, Yang, Yu, Eurocrypt 2024,
//! ePrint 2022/712), regular ISD (Esser, Santini, Crypto 2024, ePrint 2023/1568), the algebraic
//! attack of Briaud and Øygarden (Eurocrypt 2023, ePrint 2023/176, as LWYY's estimator models
//! it) and the hybrid algebraic attack of ePrint 2025/1284 (as its authors' estimator models it):
//!
//! | round set (`n`, `k`, `t`) | BJMM | regular ISD | Briaud–Øygarden | hybrid | min |
//! | --- | --- | --- | --- | --- | --- |
//! | `FERRET_COMPACT` (649,728, 44,000, 1,269) | 154.6 | 157.8 | 161.2 | 145.1 | 145.1 |
//! | `FERRET` main (10,608,640, 589,824, 1,295) | 151.8 | 156.6 | 164.9 | 161.9 | 151.8 |
//! | the default until issue #18 (649,728, 36,288, 1,269) | 132.1 | 135.7 | 138.2 | **122.1** | 122.1 |
//!
//! The old default, the Ferret paper's bootstrap set, fell below 128 bits under the hybrid
//! attack; `k` went from 36,288 to 44,000 (+22 to +24 bits per attack, 1.3 % more bytes per COT;
//! `n`, `t` and the trees unchanged). Not counted (`SECURITY.md` says more): attacks that use
//! the sparse rows of the `d = 10` local code, which emp-ot reports 8–17 bits below the generic
//! estimates on its sets, and the improved algebraic attack "AGB 2.0" (ePrint 2025/1476); the
//! 17 bits over 128 are the margin for them, not a proof. [`Params::FERRET_B13`] and
//! [`Params::FERRET_B11`] (emp-ot's) fall below 128 under these estimates (B13: 119.8 pre,
//! 127.8 main; B11: 124.0 pre, 92.8 main): they stay for benchmark comparisons and no
//! protocol uses them. The fixed-key hash `H(x, τ) = π(σ(x) ⊕ τ) ⊕ σ(x)`
//! ([`FixedKeyHash`], Guo–Katz–Wang–Yu, S&P 2020) is modelled as a tweakable circular
//! correlation-robust function, π an ideal permutation. The half-tree's security (Guo et al.,
//! Eurocrypt 2023, §4) rests on `H` being circular correlation robust (CCR): every level XORs to
//! `Δ` and the receiver knows all its nodes but one, so that one is `y ⊕ Δ` with `y` known; its
//! children are `H(y ⊕ Δ, τ_ℓ)` and `y ⊕ Δ ⊕ H(y ⊕ Δ, τ_ℓ)`, and the receiver learns exactly one
//! of them — one query `H(y ⊕ Δ, τ_ℓ) ⊕ β·Δ` to the CCR oracle per level, which looks random
//! without `Δ` (the other child is again "known ⊕ Δ", down to the leaf `s_α`). GKWY prove `H`
//! tweakable CCR when each tweak meets at most one `Δ`-related input; every tree gets its own
//! tweaks `τ_ℓ = GGM_DOMAIN | ℓ·2^67 | tree serial` (serials never repeat in a session), so each
//! `τ_ℓ` meets exactly one, and they are disjoint from IKNP's, garbling's and the OT pads'
//! (`SILENT_DOMAIN | serial`) tweaks. The sender receives nothing in a round. The level messages
//! `K_0^ℓ ⊕ q_ℓ` are one-time pads under base COTs, each used once. The LPN matrix
//! indices are reduced by multiply-shift (bias below `k / 2^32`, public, no security role). The
//! leaves' cleared lsb leaves 127 bits of entropy per leaf, as in emp-ot.

use bunet_kernels::aes_hash::{Engine, FixedKeyHash};
use bunet_kernels::oblivious::xor_at;
use rayon::prelude::*;
use zeroize::{Zeroize, Zeroizing};

use super::kind;
use crate::Error;
use crate::channel::Channel;
use crate::ot;
use crate::prg::Prg;
use crate::secret::{redacted_debug, zeroize_on_drop};

/// Nonzeros per column of the LPN code.
pub const D: usize = 10;
/// COTs per chunk (512 KiB, L2-resident): `2^15 / 2^h` trees (4 with [`Params::FERRET`]'s
/// `h = 13`, 64 with `h = 9`), so the per-chunk costs (one message and its frame header, a
/// wake-up of the peer) stay amortised.
pub const CHUNK_COTS: usize = 1 << 15;
/// Tweak bit of the GGM expansion.
const GGM_DOMAIN: u128 = 1 << 66;
/// Tweak bit of the hashes that turn silent COTs into OTs (IKNP uses bit 64).
pub(crate) const SILENT_DOMAIN: u128 = 1 << 65;
/// Outputs per AES index batch (even: the stream is 2.5 blocks per output); small, so that the
/// next batch's AES overlaps the last batch's gathers.
const LPN_SUB: usize = 32;

/// LPN parameters of one round: `n = t · 2^log_bin` outputs from `k + t · log_bin` base COTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lpn {
    /// LPN dimension (length of the secret, base COTs of the encoding).
    pub k: usize,
    /// Noise weight: one noisy position per bin, `t` bins.
    pub t: usize,
    /// log2 of the bin size (GGM tree depth `h`).
    pub log_bin: u32,
}

impl Lpn {
    /// Outputs per round, `t · 2^log_bin`.
    pub const fn n(&self) -> usize {
        self.t << self.log_bin
    }

    /// Base COTs a round consumes: `k + t · log_bin`.
    pub const fn base_len(&self) -> usize {
        self.k + self.t * self.log_bin as usize
    }
}

/// The LPN parameters of a Ferret session: a `pre` round bootstrapped from IKNP, then `main`
/// rounds, each keeping `main.base_len()` of its outputs for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    /// The first round's parameters.
    pub pre: Lpn,
    /// Every later round's parameters.
    pub main: Lpn,
}

impl Params {
    /// The Ferret paper's main round (Table 2 / emp-ot `ferret/constants.h`: `n = 10,608,640`,
    /// `k = 589,824`, `t = 1,295`, bins of 2^13) after a first round at
    /// [`Params::FERRET_COMPACT`]'s set (the paper's bootstrap round had `k = 36,288`, which the
    /// estimates of the module's `# Security` put at 122 bits): 10,001,981 COTs delivered per
    /// main round.
    pub const FERRET: Params = Params {
        pre: Lpn {
            k: 44_000,
            t: 1_269,
            log_bin: 9,
        },
        main: Lpn {
            k: 589_824,
            t: 1_295,
            log_bin: 13,
        },
    };

    /// Every round at `n = 649,728`, `k = 44,000`, `t = 1,269`, bins of 2^9: the Ferret paper's
    /// bootstrap-round set with `k` raised from 36,288 so that it keeps 128 bits under the
    /// attacks published since (≥ 145 bits by `tools/lpn_estimate.py`, see the module's
    /// `# Security`; issue #18). The LPN vector (688 KiB) fits L2, so the encoding runs mostly
    /// from cache, at 8× the traffic per COT of [`Params::FERRET`] (≈ 0.31 B instead of
    /// 0.037 B). 594,307 COTs per round.
    pub const FERRET_COMPACT: Params = Params {
        pre: Lpn {
            k: 44_000,
            t: 1_269,
            log_bin: 9,
        },
        main: Lpn {
            k: 44_000,
            t: 1_269,
            log_bin: 9,
        },
    };

    /// emp-ot's `ferret_b13` set (emp-ot `ferret/constants.h`, the default of its Ferret), for
    /// benchmark comparisons only: below 128 bits by the module's `# Security` estimates
    /// (main 127.8 by BJMM-ISD, pre 119.8 by the hybrid attack). Main
    /// `n = 10,485,760`, `k = 452,000`, `t = 1,280`, bins of 2^13; pre `n = 470,016`,
    /// `k = 32,768`, `t = 918`, bins of 2^9. Fewer bytes (0.034 B/COT) and a smaller LPN vector
    /// (7.2 MB) than [`Params::FERRET`]: 10,017,120 COTs per main round.
    pub const FERRET_B13: Params = Params {
        pre: Lpn {
            k: 32_768,
            t: 918,
            log_bin: 9,
        },
        main: Lpn {
            k: 452_000,
            t: 1_280,
            log_bin: 13,
        },
    };

    /// emp-ot's `ferret_b11` set (emp-ot `ferret/constants.h`), for benchmark comparisons only:
    /// below 128 bits by the module's `# Security` estimates (main 92.8, pre 124.0, both by the
    /// hybrid attack). Main `n = 10,180,608`, `k = 124,000`,
    /// `t = 4,971`, bins of 2^11; pre `n = 178,944`, `k = 17,384`, `t = 699`, bins of 2^8. The
    /// LPN vector (2 MB) nearly fits L2, so the encoding's gathers mostly hit the cache: about
    /// twice the rate of [`Params::FERRET`] at 2.5× its bytes (0.093 B/COT), and a third of
    /// [`Params::FERRET_COMPACT`]'s bytes. 10,001,927 COTs per main round.
    pub const FERRET_B11: Params = Params {
        pre: Lpn {
            k: 17_384,
            t: 699,
            log_bin: 8,
        },
        main: Lpn {
            k: 124_000,
            t: 4_971,
            log_bin: 11,
        },
    };

    /// Small, INSECURE parameters that exercise every code path (rounds of 5,120 COTs) in tests.
    pub fn insecure_for_tests() -> Params {
        Params {
            pre: Lpn {
                k: 300,
                t: 16,
                log_bin: 7,
            },
            main: Lpn {
                k: 1_500,
                t: 40,
                log_bin: 7,
            },
        }
    }

    /// COTs delivered per main round (`n − k − t·h`).
    pub fn per_round(&self) -> usize {
        self.main.n() - self.main.base_len()
    }

    fn check(&self) {
        assert!(
            self.pre.n() >= self.main.base_len()
                && self.main.n() > self.main.base_len()
                && (1..=20).contains(&self.pre.log_bin)
                && (1..=20).contains(&self.main.log_bin)
                && self.pre.k > 0
                && self.main.k > 0
                && self.main.k < 1 << 32,
            "inconsistent Ferret parameters"
        );
    }
}

/// What both roles keep: parameters, hashes, bases, the round position and the output buffer.
struct Core {
    params: Params,
    /// Fixed-key π (GGM expansion, OT pads).
    hash: FixedKeyHash,
    /// AES under the public LPN seed (matrix indices).
    lpn: FixedKeyHash,
    /// This round's base: `t·h` GGM COTs, then `k` LPN COTs.
    base: Zeroizing<Vec<u128>>,
    /// The next round's base, filled from this round's first outputs.
    next: Zeroizing<Vec<u128>>,
    round: u64,
    /// Next tree of the round.
    tree: usize,
    /// Generated outputs not yet handed out are `buf[pos..end]`; the rest of `buf` is room
    /// for the next chunks (stale outputs, overwritten before use), kept so that chunks are
    /// generated in place, without clearing or moving memory.
    buf: Zeroizing<Vec<u128>>,
    pos: usize,
    end: usize,
    /// Outputs handed out but kept in place for their caller (`Core::hold`): the start and
    /// length of a run before `pos` that compaction keeps.
    held: Option<(usize, usize)>,
    /// Next OT-pad tweak serial (GGM level OTs and derived OTs share it, in call order).
    serial: u64,
}

impl Core {
    fn new(params: Params, seed: [u8; 16], base: Vec<u128>) -> Self {
        params.check();
        let engine = Engine::detect();
        Self {
            params,
            hash: FixedKeyHash::new(),
            lpn: FixedKeyHash::with_key(seed, engine).expect("the detected engine is available"),
            base: Zeroizing::new(base),
            next: Zeroizing::new(Vec::with_capacity(params.main.base_len())),
            round: 0,
            tree: 0,
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
            end: 0,
            held: None,
            serial: 0,
        }
    }

    fn lpn_params(&self) -> Lpn {
        if self.round == 0 {
            self.params.pre
        } else {
            self.params.main
        }
    }

    /// Reserves `n` OT-pad tweaks and returns the first.
    pub(crate) fn tweaks(&mut self, n: usize) -> u64 {
        let first = self.serial;
        self.serial += n as u64;
        first
    }

    /// Makes room for a chunk of `len` outputs after the buffered ones and returns where it
    /// starts: the buffer restarts at 0 when empty, moves its outputs to the front when the
    /// room behind them is short, and grows (into a fresh allocation, the old one erased) only
    /// when that is not enough.
    fn room(&mut self, len: usize) -> usize {
        if self.pos == self.end && self.held.is_none() {
            (self.pos, self.end) = (0, 0);
        }
        let keep = self.held.map_or(self.pos, |(at, _)| at);
        if self.end + len > self.buf.len() && keep > 0 {
            self.buf.copy_within(keep..self.end, 0);
            (self.pos, self.end) = (self.pos - keep, self.end - keep);
            if let Some((at, _)) = &mut self.held {
                *at -= keep;
            }
        }
        if self.end + len > self.buf.len() {
            let mut grown = Zeroizing::new(vec![0u128; self.end + len]);
            grown[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = grown;
        }
        self.end
    }

    /// Takes in a chunk generated at `buf[at..at + len]` (outputs `first..` of the round): its
    /// outputs below the next base's size are copied to the next base and dropped from the
    /// buffer, the rest join the buffered ones. Moves to the next round after the last tree.
    fn store(&mut self, first: usize, at: usize, len: usize, trees: usize) {
        debug_assert_eq!(at, self.end);
        let reserve = self.params.main.base_len();
        let keep = reserve.saturating_sub(first).min(len);
        self.next.extend_from_slice(&self.buf[at..at + keep]);
        if self.pos == at {
            // Nothing buffered before the chunk: its kept outputs are just skipped.
            self.pos = at + keep;
            self.end = at + len;
        } else {
            self.buf.copy_within(at + keep..at + len, at);
            self.end = at + len - keep;
        }
        self.advance(trees);
    }

    /// Outputs generated and not yet handed out.
    fn buffered(&self) -> usize {
        self.end - self.pos
    }

    /// The next chunk: its first tree, its number of trees, its number of outputs.
    fn next_chunk(&self) -> (usize, usize, usize) {
        let lpn = self.lpn_params();
        let trees = (CHUNK_COTS >> lpn.log_bin).max(1).min(lpn.t - self.tree);
        (self.tree, trees, trees << lpn.log_bin)
    }

    /// The length of the next chunk if it may be written straight into a caller's slice of
    /// `room` outputs (saving a copy): the buffer is empty, the chunk fits and none of it goes
    /// to the next base.
    fn direct(&self, room: usize) -> Option<usize> {
        let (first_tree, _, len) = self.next_chunk();
        let first = first_tree << self.lpn_params().log_bin;
        (self.pos == self.end && room >= len && first >= self.params.main.base_len()).then_some(len)
    }

    /// Counts `trees` more trees of the round done; moves to the next round after the last.
    fn advance(&mut self, trees: usize) {
        self.tree += trees;
        if self.tree == self.lpn_params().t {
            debug_assert_eq!(self.next.len(), self.params.main.base_len());
            std::mem::swap(&mut self.base, &mut self.next);
            self.next.clear();
            self.round += 1;
            self.tree = 0;
        }
    }

    /// The next `n` buffered outputs, handed out in place with the hash (they stay in the buffer until a
    /// later chunk overwrites them).
    ///
    /// # Panics
    /// If fewer than `n` are buffered (the caller buffers them first).
    fn lend(&mut self, n: usize) -> (&[u128], &FixedKeyHash) {
        assert!(
            self.buffered() >= n,
            "COTs are buffered before they are lent"
        );
        self.pos += n;
        (&self.buf[self.pos - n..self.pos], &self.hash)
    }

    /// Hands out the next `n` buffered outputs but keeps them in place, for [`Core::held`],
    /// while later chunks are generated behind them (a hold left by a call that failed half-way
    /// is replaced).
    ///
    /// # Panics
    /// If fewer than `n` are buffered (the caller buffers them first).
    fn hold(&mut self, n: usize) {
        assert!(
            self.buffered() >= n,
            "COTs are buffered before they are held"
        );
        self.held = Some((self.pos, n));
        self.pos += n;
    }

    /// The outputs of the last [`Core::hold`], with the hash.
    ///
    /// # Panics
    /// If nothing is held.
    fn held(&self) -> (&[u128], &FixedKeyHash) {
        let (at, n) = self.held.expect("COTs are held before they are used");
        (&self.buf[at..at + n], &self.hash)
    }

    /// Appends buffered outputs to `out` until it holds `n`.
    fn drain_into(&mut self, out: &mut Vec<u128>, n: usize) {
        let take = n.saturating_sub(out.len()).min(self.buffered());
        out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
        self.pos += take;
    }

    /// Copies buffered outputs into `out`; returns how many were copied.
    fn drain(&mut self, out: &mut [u128]) -> usize {
        let take = out.len().min(self.buffered());
        out[..take].copy_from_slice(&self.buf[self.pos..self.pos + take]);
        self.pos += take;
        take
    }
}

/// `out[i] ^= ⊕_{j ∈ S_i} base[j]` for outputs `first..first + out.len()` of round `round`.
///
/// The gathers from a base larger than L2 (`Params::FERRET`: 9.4 MB) are bound by the core's
/// outstanding cache misses; software prefetching and cache-blocked (bucketed) orders were measured
/// no faster on the reference machine (`docs/PERFORMANCE.md`), so this is the plain loop, with the
/// AES index stream generated into a stack buffer [`LPN_SUB`] outputs at a time.
fn lpn_encode(lpn: &FixedKeyHash, round: u64, first: usize, base: &[u128], out: &mut [u128]) {
    debug_assert!(first.is_multiple_of(2) && out.len().is_multiple_of(2));
    const {
        assert!(
            cfg!(target_endian = "little"),
            "LPN indices read blocks as u32 words"
        )
    };
    let k = u32::try_from(base.len()).expect("an LPN dimension below 2^32");
    let hi = u128::from(round) << 64;
    let mut ctr = [0u128; LPN_SUB * D / 4];
    let mut idx = [0u32; LPN_SUB * D];
    for (s, sub) in out.chunks_mut(LPN_SUB).enumerate() {
        // `first`, LPN_SUB and every length are even: output `o`'s words start in block 5o/2.
        let start = (first + s * LPN_SUB) as u128;
        let ctr = &mut ctr[..sub.len() * D / 4];
        for (j, x) in ctr.iter_mut().enumerate() {
            *x = hi | (start * D as u128 / 4 + j as u128);
        }
        lpn.encrypt_blocks(ctr);
        let idx = &mut idx[..sub.len() * D];
        // Word `m` of a block is bits `32m..32m + 32` (little-endian: the block's `u32`s).
        let words: &[u32] = bytemuck::cast_slice(&ctr[..]);
        bunet_kernels::sample::scale_u32(words, k, idx);
        for (o, ix) in sub.iter_mut().zip(idx.chunks_exact(D)) {
            let mut acc = *o;
            for &j in ix {
                acc ^= base[j as usize];
            }
            *o = acc;
        }
    }
}

/// The GGM tweak of level `level` of the tree numbered `tree`: `GGM_DOMAIN`, the level in bits
/// 67–71, the tree in bits 0–63 (disjoint from IKNP's bit 64, the OT pads' bit 65 and garbling's
/// gate tweaks below bit 64).
fn ggm_tweak(tree: u64, level: u32) -> u128 {
    GGM_DOMAIN | (u128::from(level) << 67) | u128::from(tree)
}

/// The sender's half-tree: leaves into `leaves` (lsb cleared, XOR `Δ` with lsb cleared), `h`
/// level messages `K_0^ℓ ⊕ q_ℓ` into `msg`.
fn sender_tree(
    hash: &FixedKeyHash,
    delta: u128,
    root: u128,
    q: &[u128],
    tree: u64,
    leaves: &mut [u128],
    msg: &mut [u128],
) {
    let h = q.len();
    leaves[0] = root;
    leaves[1] = root ^ delta;
    msg[0] = root ^ q[0];
    for level in 2..=h {
        // Children of node `j` at `j` and `j + 2^(level−1)` (see the module docs).
        let [k0, _] =
            hash.half_tree_level(&mut leaves[..1 << level], ggm_tweak(tree, level as u32));
        msg[level - 1] = k0 ^ q[level - 1];
    }
    for x in leaves.iter_mut() {
        *x &= !1;
    }
}

/// The receiver's half-tree: every leaf of the sender's except `leaves[α] = s_α ⊕ Δ`, with `α`
/// the position the base choice bits select.
///
/// The unknown node of every level is kept at 0, so its children are `H(0, τ_ℓ)` on both sides:
/// public values, taken out of the side sums without finding them. The learnt child and the
/// next unknown node (0 again) are written by [`xor_at`], which touches the whole level alike.
fn receiver_tree(hash: &FixedKeyHash, t: &[u128], tree: u64, msg: &[u128], leaves: &mut [u128]) {
    // The punctured leaf α (the LPN noise position) is the receiver's secret: the path to it is
    // followed with masks and whole-level writes, never a branch or an index that depends on it.
    let h = t.len();
    let b = t[0] & 1;
    let k0 = msg[0] ^ t[0];
    leaves[0] = k0 & mask(b ^ 1);
    leaves[1] = k0 & mask(b);
    let mut path = (1 - b) as usize;
    for level in 2..=h {
        let half = 1usize << (level - 1);
        let tweak = ggm_tweak(tree, level as u32);
        let nodes = &mut leaves[..2 * half];
        let [s0, s1] = hash.half_tree_level(nodes, tweak);
        // The unknown node is 0: both its children are H(0, τ).
        let mut garbage = [0u128];
        hash.hash_many(&mut garbage, &[tweak]);
        let [s0, s1] = [s0 ^ garbage[0], s1 ^ garbage[0]];
        // K_b = K_0 ⊕ b·Δ: the XOR of the side-b children, all known but one. Choice bit 0:
        // the left child is learnt and the path goes right; 1: the right child is learnt.
        let l = level - 1;
        let kb = msg[l] ^ t[l];
        let bit = mask(t[l] & 1);
        let (left, right) = (!bit & (kb ^ s0), bit & (kb ^ s1));
        let (lo, hi) = nodes.split_at_mut(half);
        xor_at(lo, path, garbage[0] ^ left);
        xor_at(hi, path, garbage[0] ^ right);
        path += half & !(bit as usize);
    }
    // The punctured leaf is 0 (the last unknown node); the others lose their lsb.
    let mut sum = 0u128;
    for x in leaves.iter_mut() {
        *x &= !1;
        sum ^= *x;
    }
    // ⊕_j s_j = Δ, so ⊕_{j≠α} (s_j with lsb 0) = (s_α with lsb 0) ⊕ Δ ⊕ 1.
    xor_at(leaves, path, sum | 1);
}

/// All ones if `bit` (0 or 1) is 1, else zero.
fn mask(bit: u128) -> u128 {
    std::hint::black_box(bit).wrapping_neg()
}

/// The accessors both roles forward to their [`Core`]: the parameters, the hash, the next
/// `n` tweaks of the derived OTs built on this correlation, and buffered COTs in place.
macro_rules! core_accessors {
    () => {
        /// The parameters.
        pub fn params(&self) -> &Params {
            &self.core.params
        }

        pub(crate) fn hash(&self) -> &FixedKeyHash {
            &self.core.hash
        }

        pub(crate) fn tweaks(&mut self, n: usize) -> u64 {
            self.core.tweaks(n)
        }

        /// The next `n` COTs in a new vector (see [`draw`]).
        ///
        /// # Errors
        /// Channel and wire errors of the chunks generated for them.
        pub(crate) fn cots(&mut self, ch: &mut Channel, n: usize) -> Result<Cots, Error> {
            draw(self, ch, n)
        }

        /// [`Self::cots`] and the tweak serial of the first (taken after their chunks').
        ///
        /// # Errors
        /// As [`Self::cots`].
        pub(crate) fn cots_and_serial(
            &mut self,
            ch: &mut Channel,
            n: usize,
        ) -> Result<(Cots, u64), Error> {
            let cots = self.cots(ch, n)?;
            Ok((cots, self.tweaks(n)))
        }

        /// The next `n` COTs in place, with the hash (see [`buffer_both`]).
        ///
        /// # Panics
        /// If fewer than `n` are buffered.
        pub(crate) fn lend(&mut self, n: usize) -> (&[u128], &FixedKeyHash) {
            self.core.lend(n)
        }

        /// Hands out the next `n` buffered COTs but keeps them in place while later chunks are
        /// generated (see [`Core::hold`]); [`Self::held`] reads them, [`Self::release`] lets
        /// the buffer reuse their room.
        ///
        /// # Panics
        /// If fewer than `n` are buffered.
        pub(crate) fn hold(&mut self, n: usize) {
            self.core.hold(n);
        }

        /// The COTs of the last [`Self::hold`], with the hash.
        ///
        /// # Panics
        /// If nothing is held.
        pub(crate) fn held(&self) -> (&[u128], &FixedKeyHash) {
            self.core.held()
        }

        /// Ends the last [`Self::hold`].
        pub(crate) fn release(&mut self) {
            self.core.held = None;
        }
    };
}

/// The two roles' chunk generators, for [`fill`], [`draw`] and the run-ahead.
trait Chunks {
    fn core(&mut self) -> &mut Core;
    /// Generates the next chunk, into `direct` when given (it then feeds no base), else into
    /// the core's buffer.
    fn chunk(&mut self, ch: &mut Channel, direct: Option<&mut [u128]>) -> Result<(), Error>;
}

/// Fills `out` with the next COTs: buffered ones first, then whole chunks straight into `out`
/// where they fit, the rest through the buffer.
fn fill(role: &mut impl Chunks, ch: &mut Channel, out: &mut [u128]) -> Result<(), Error> {
    let mut done = role.core().drain(out);
    while done < out.len() {
        done += step(role, ch, &mut out[done..])?;
    }
    Ok(())
}

/// Generates whole chunks into the buffer until it holds at least `count` outputs, so that a
/// party can run its side of the COTs ahead, while it would otherwise wait, and draw them
/// later. The peer's end of the same direction must buffer the same `count` at the matching
/// point of the protocol (the chunks' messages are frames in the stream like any other).
fn buffer_ahead(role: &mut impl Chunks, ch: &mut Channel, count: usize) -> Result<(), Error> {
    while role.core().buffered() < count {
        role.chunk(ch, None)?;
    }
    Ok(())
}

/// One chunk towards `out` (not empty): straight into it where the chunk fits, else through the
/// buffer; returns how many COTs `out` received.
fn step(role: &mut impl Chunks, ch: &mut Channel, out: &mut [u128]) -> Result<usize, Error> {
    if let Some(len) = role.core().direct(out.len()) {
        role.chunk(ch, Some(&mut out[..len]))?;
        Ok(len)
    } else {
        role.chunk(ch, None)?;
        Ok(role.core().drain(out))
    }
}

/// COTs drawn into a vector of their own, erased on drop.
pub(crate) type Cots = Zeroizing<Vec<u128>>;

/// The next `n` COTs as a new vector: the buffered ones, then whole chunks generated into the
/// buffer and appended. After a run-ahead most draws are all buffered, so this is one copy
/// where [`fill`] into a cleared vector would take two passes.
fn draw(role: &mut impl Chunks, ch: &mut Channel, n: usize) -> Result<Cots, Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    role.core().drain_into(&mut out, n);
    while out.len() < n {
        role.chunk(ch, None)?;
        role.core().drain_into(&mut out, n);
    }
    Ok(out)
}

/// Generates chunks until this party holds at least `n` buffered COTs as sender and `n` as
/// receiver (the two directions of a duplex), a chunk of each in turn; [`Sender::lend`] and
/// [`Receiver::lend`] then hand them out in place. Both parties generating their sender chunk
/// while the peer generates its own, then each expanding the other's, keeps both busy; one
/// direction after the other would leave the receiver of each waiting for the sender's first
/// chunk and the sender for the receiver's last. The wire is the same as [`Sender::cots`] then
/// [`Receiver::cots`] (each direction carries only its sender's chunks, in order), and so are
/// the COTs and tweak serials.
///
/// # Errors
/// As the two one-way calls.
pub(crate) fn buffer_both(
    sender: &mut Sender,
    receiver: &mut Receiver,
    ch: &mut Channel,
    n: usize,
) -> Result<(), Error> {
    while sender.core.buffered() < n || receiver.core.buffered() < n {
        if sender.core.buffered() < n {
            sender.chunk(ch, None)?;
        }
        if receiver.core.buffered() < n {
            receiver.chunk(ch, None)?;
        }
    }
    Ok(())
}

/// The sender of a Ferret session: knows `Δ` (lsb 1) and, per COT, the zero-message `q_i`
/// (lsb 0); the receiver holds `q_i ⊕ b_i·Δ`.
///
/// # Security
/// See [the module documentation](self). `Δ`, bases and outputs are secret and erased on drop.
pub struct Sender {
    core: Core,
    delta: u128,
    prg: Prg,
}

redacted_debug!(Sender);
// The core and the PRG erase themselves.
zeroize_on_drop!(Sender { delta });

impl Chunks for Sender {
    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    fn chunk(&mut self, ch: &mut Channel, direct: Option<&mut [u128]>) -> Result<(), Error> {
        self.generate(ch, direct)
    }
}

impl Sender {
    /// Sets up a session: draws `Δ` (lsb 1) and the public LPN seed (sent to the peer), runs
    /// IKNP (128 base OTs) for the pre round's base COTs. The peer runs [`Receiver::setup`]
    /// with the same `params`.
    ///
    /// # Errors
    /// Channel and wire errors.
    ///
    /// # Panics
    /// If `params` is inconsistent (a pre round too small for the main round's base).
    pub fn setup(ch: &mut Channel, params: Params, mut prg: Prg) -> Result<Self, Error> {
        params.check();
        let delta = prg.next_u128() | 1;
        let seed = prg.next_seed();
        ch.send(kind::SEED, &seed)?;
        let mut iknp = ot::Sender::setup(ch, delta, &mut prg)?;
        let mut base = vec![0u128; params.pre.base_len()];
        iknp.send_correlated(ch, &mut base)?;
        for x in base.iter_mut() {
            *x &= !1;
        }
        Ok(Self {
            core: Core::new(params, seed, base),
            delta,
            prg,
        })
    }

    /// The global correlation `Δ` (lsb 1).
    pub fn delta(&self) -> u128 {
        self.delta
    }

    core_accessors!();

    /// Random COTs: fills `out` with the zero-messages `q_i` (lsb 0) of the next `out.len()`
    /// COTs; the receiver's [`Receiver::receive_cot`] of the same length gets `q_i ⊕ b_i·Δ`.
    ///
    /// # Errors
    /// Channel errors.
    pub fn send_cot(&mut self, ch: &mut Channel, out: &mut [u128]) -> Result<(), Error> {
        fill(self, ch, out)
    }

    /// Generates (and sends) whole chunks ahead until at least `count` COTs are buffered for
    /// later draws; the receiver calls [`Receiver::buffer_ahead`] with the same `count` before
    /// it receives anything this side sends after this call.
    ///
    /// # Errors
    /// Channel errors.
    pub fn buffer_ahead(&mut self, ch: &mut Channel, count: usize) -> Result<(), Error> {
        buffer_ahead(self, ch, count)
    }

    /// Generates the next chunk into `direct` (see [`Core::direct`]) or else the buffer.
    fn generate(&mut self, ch: &mut Channel, direct: Option<&mut [u128]>) -> Result<(), Error> {
        let lpn = self.core.lpn_params();
        let h = lpn.log_bin as usize;
        let (first_tree, trees, len) = self.core.next_chunk();
        let bin = 1usize << h;
        let serial = self.core.tweaks(trees * h);
        let mut buffered_at = None;
        let out: &mut [u128] = match direct {
            Some(o) => o,
            None => {
                let at = *buffered_at.insert(self.core.room(len));
                &mut self.core.buf[at..at + len]
            }
        };
        let mut msg = vec![0u128; trees * h];
        let roots: Zeroizing<Vec<u128>> =
            Zeroizing::new((0..trees).map(|_| self.prg.next_u128()).collect());
        let (ggm, lpn_base) = self.core.base.split_at(lpn.t * h);
        let (hash, delta) = (&self.core.hash, self.delta);
        let (lpn_hash, round) = (&self.core.lpn, self.core.round);
        out.par_chunks_mut(bin)
            .zip(msg.par_chunks_mut(h))
            .enumerate()
            .for_each(|(i, (leaves, m))| {
                let j = first_tree + i;
                let q = &ggm[j * h..(j + 1) * h];
                sender_tree(hash, delta, roots[i], q, serial + (i * h) as u64, leaves, m);
                lpn_encode(lpn_hash, round, j * bin, lpn_base, leaves);
            });
        match buffered_at {
            Some(at) => self.core.store(first_tree * bin, at, len, trees),
            None => self.core.advance(trees),
        }
        let bytes: Vec<u8> = msg.iter().flat_map(|x| x.to_le_bytes()).collect();
        ch.send(kind::TREES, &bytes)?;
        // One-way stream: the receiver may be waiting for it while this side only sends.
        ch.flush()?;
        Ok(())
    }
}

/// The receiver of a Ferret session: per COT, `t_i = q_i ⊕ b_i·Δ` whose lsb is the random
/// choice bit `b_i`.
///
/// # Security
/// See [the module documentation](self). Bases and outputs are secret and erased on drop.
pub struct Receiver {
    core: Core,
}

redacted_debug!(Receiver);

impl Chunks for Receiver {
    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    fn chunk(&mut self, ch: &mut Channel, direct: Option<&mut [u128]>) -> Result<(), Error> {
        self.generate(ch, direct)
    }
}

impl Receiver {
    /// Sets up a session with a peer running [`Sender::setup`] with the same `params`.
    ///
    /// # Errors
    /// Channel and wire errors.
    ///
    /// # Panics
    /// If `params` is inconsistent.
    pub fn setup(ch: &mut Channel, params: Params, mut prg: Prg) -> Result<Self, Error> {
        params.check();
        let seed = ch.recv_with(kind::SEED, 16, |r| r.array::<16>())?;
        let mut iknp = ot::Receiver::setup(ch, &mut prg)?;
        let n = params.pre.base_len();
        let mut packed = vec![0u128; n.div_ceil(128)];
        for w in packed.iter_mut() {
            *w = prg.next_u128();
        }
        let mut base = vec![0u128; n];
        iknp.receive_correlated_packed(ch, &packed, &mut base)?;
        for (i, x) in base.iter_mut().enumerate() {
            let b = (packed[i / 128] >> (i % 128)) & 1;
            *x = (*x & !1) | b;
        }
        packed.zeroize();
        Ok(Self {
            core: Core::new(params, seed, base),
        })
    }

    core_accessors!();

    /// Random COTs: fills `out` with `t_i = q_i ⊕ b_i·Δ` of the next `out.len()` COTs; the
    /// choice bit `b_i` is `t_i & 1`.
    ///
    /// # Errors
    /// Channel errors; [`crate::wire::WireError`] if a chunk message has the wrong length.
    pub fn receive_cot(&mut self, ch: &mut Channel, out: &mut [u128]) -> Result<(), Error> {
        fill(self, ch, out)
    }

    /// Receives and generates whole chunks ahead until at least `count` COTs are buffered:
    /// the receiving end of [`Sender::buffer_ahead`] with the same `count`.
    ///
    /// # Errors
    /// As [`Receiver::receive_cot`].
    pub fn buffer_ahead(&mut self, ch: &mut Channel, count: usize) -> Result<(), Error> {
        buffer_ahead(self, ch, count)
    }

    /// Receives and generates the next chunk into `direct` (see [`Core::direct`]) or else the
    /// buffer.
    fn generate(&mut self, ch: &mut Channel, direct: Option<&mut [u128]>) -> Result<(), Error> {
        let lpn = self.core.lpn_params();
        let h = lpn.log_bin as usize;
        let (first_tree, trees, out_len) = self.core.next_chunk();
        let bin = 1usize << h;
        let len = trees * h * 16;
        let msg = ch.recv_with(kind::TREES, len, |r| {
            r.blocks("GGM tree messages", trees * h)
        })?;
        let serial = self.core.tweaks(trees * h);
        let mut buffered_at = None;
        let out: &mut [u128] = match direct {
            Some(o) => o,
            None => {
                let at = *buffered_at.insert(self.core.room(out_len));
                &mut self.core.buf[at..at + out_len]
            }
        };
        let (ggm, lpn_base) = self.core.base.split_at(lpn.t * h);
        let hash = &self.core.hash;
        let (lpn_hash, round) = (&self.core.lpn, self.core.round);
        out.par_chunks_mut(bin)
            .zip(msg.par_chunks(h))
            .enumerate()
            .for_each(|(i, (leaves, m))| {
                let j = first_tree + i;
                let t = &ggm[j * h..(j + 1) * h];
                receiver_tree(hash, t, serial + (i * h) as u64, m, leaves);
                lpn_encode(lpn_hash, round, j * bin, lpn_base, leaves);
            });
        match buffered_at {
            Some(at) => self.core.store(first_tree * bin, at, out_len, trees),
            None => self.core.advance(trees),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For random base COTs, the receiver's half-tree leaves equal the sender's except at the
    /// path `α` of its choice bits `¬b_ℓ` (children of node `j` at `j`, `j + 2^(ℓ−1)`), where they
    /// differ by `Δ`; sender leaves have lsb 0 and XOR to `Δ` without its lsb.
    #[test]
    fn half_tree_leaves_differ_by_delta_exactly_at_the_choice_path() {
        let hash = FixedKeyHash::new();
        let mut prg = Prg::from_seed([5; 16]);
        for h in [1usize, 2, 3, 7, 10] {
            for tree in 0..20u64 {
                let delta = prg.next_u128() | 1;
                let q: Vec<u128> = (0..h).map(|_| prg.next_u128() & !1).collect();
                let bits: Vec<u128> = (0..h).map(|_| u128::from(prg.next_u64() & 1)).collect();
                let t: Vec<u128> = q
                    .iter()
                    .zip(&bits)
                    .map(|(&q, &b)| q ^ (b * delta) | b)
                    .collect();
                let (mut s, mut w) = (vec![0u128; 1 << h], vec![0u128; 1 << h]);
                let mut msg = vec![0u128; h];
                let root = prg.next_u128();
                sender_tree(&hash, delta, root, &q, tree, &mut s, &mut msg);
                receiver_tree(&hash, &t, tree, &msg, &mut w);
                let alpha: usize = (0..h).map(|l| (1 - bits[l] as usize) << l).sum();
                let sum = s.iter().fold(0, |a, &x| a ^ x);
                assert_eq!(sum, delta & !1, "h={h}");
                for j in 0..1 << h {
                    assert_eq!(s[j] & 1, 0);
                    let want = if j == alpha { delta } else { 0 };
                    assert_eq!(
                        s[j] ^ w[j],
                        want,
                        "h={h} tree={tree} leaf {j} (α = {alpha})"
                    );
                }
            }
        }
    }

    /// Distinct trees (serials) and levels never share a GGM tweak, nor an OT-pad or IKNP tweak.
    #[test]
    fn ggm_tweaks_are_distinct_and_in_their_domain() {
        let mut seen = std::collections::HashSet::new();
        for tree in [0u64, 1, 13, u64::MAX] {
            for level in 1..=20 {
                let t = ggm_tweak(tree, level);
                assert!(seen.insert(t));
                assert_eq!(t & (GGM_DOMAIN | SILENT_DOMAIN | 1 << 64), GGM_DOMAIN);
            }
        }
    }
}
