//! Fixed-key AES hashing for garbled circuits.
//!
//! [`FixedKeyHash`] computes the tweakable circular correlation-robust hash of Guo, Katz, Wang and
//! Yu ("Efficient and secure multiparty computation from fixed-key block ciphers", IEEE S&P 2020,
//! §7.3, the `H(x, i)` used by half-gates garbling):
//!
//! ```text
//! H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x),   σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L,
//! ```
//!
//! where π is AES-128 under a fixed public key and `x_L`, `x_R` are the high and low 64 bits of
//! the 128-bit block `x`. A block is a `u128`; the AES input bytes are its little-endian bytes.
//!
//! Garbling a layer of half-gates AND gates hashes four labels per gate and evaluating hashes two,
//! each under its gate's tweak: both are one call of [`FixedKeyHash::hash_many`] over the whole
//! layer, which keeps 16–32 blocks in flight in the AES units.
//!
//! Engines ([`Engine`]): `Scalar` (the RustCrypto `aes` crate's `encrypt_blocks`, portable and
//! constant-time), `AesNi` (x86-64 AES-NI, 8 blocks per iteration), `Vaes512` (x86-64
//! VAES on 512-bit vectors, 32 blocks per iteration) and `ArmAes` (aarch64 ARMv8 cryptography
//! extension on NEON registers, 8 blocks per iteration). The best engine is chosen once, at
//! construction, from [`crate::Backend::detect`] and the CPU's AES features, so
//! `BUNET_FORCE_SCALAR=1` forces the scalar engine.

/// The entry points of a block-at-a-time engine (AES-NI, ARMv8 AES), written once: `LANES`
/// blocks per iteration through the engine's `hash_n` / `encrypt_n`, then the tail one block at
/// a time. Expanded inside the engine's module, whose `LANES`, `load_keys`, `hash_n` and
/// `encrypt_n` it calls; `$features` is the engine's `target_feature` list, so the kernels
/// inline into these loops.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! block_drivers {
    ($features:literal) => {
        /// `blocks[j] ← H(blocks[j], tweaks[j])`; the caller checked equal lengths.
        #[target_feature(enable = $features)]
        pub(super) fn hash_many(rk: &[u128; 11], blocks: &mut [u128], tweaks: &[u128]) {
            let k = load_keys(rk);
            let mut bc = blocks.chunks_exact_mut(LANES);
            let mut tc = tweaks.chunks_exact(LANES);
            for (b, t) in (&mut bc).zip(&mut tc) {
                hash_n::<LANES>(&k, b, t);
            }
            for (b, t) in bc
                .into_remainder()
                .chunks_mut(1)
                .zip(tc.remainder().chunks(1))
            {
                hash_n::<1>(&k, b, t);
            }
        }

        /// `blocks[j] ← AES_k(blocks[j])`.
        #[target_feature(enable = $features)]
        pub(super) fn encrypt_blocks(rk: &[u128; 11], blocks: &mut [u128]) {
            let k = load_keys(rk);
            let mut bc = blocks.chunks_exact_mut(LANES);
            for b in &mut bc {
                encrypt_n::<LANES>(&k, b);
            }
            for b in bc.into_remainder().chunks_mut(1) {
                encrypt_n::<1>(&k, b);
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod aesni;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
#[cfg(test)]
mod tests;

use crate::{Backend, Error};

/// The fixed public AES-128 key of π: the first 128 fractional bits of π (hex digits
/// `243f6a88 85a308d3 13198a2e 03707344`), a nothing-up-my-sleeve number.
pub const FIXED_KEY: [u8; 16] = [
    0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44,
];

/// An implementation of the AES rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The `aes` crate (its own runtime choice of bit-sliced software or hardware AES; build
    /// with `RUSTFLAGS='--cfg aes_backend="soft"'` for pure software), used block-batch by
    /// block-batch. Always available; the reference of the tests.
    Scalar,
    /// x86-64 AES-NI on 128-bit registers, 8 blocks in flight.
    AesNi,
    /// x86-64 VAES on 512-bit registers (4 blocks per register), 32 blocks in flight.
    Vaes512,
    /// aarch64 ARMv8 cryptography extension (`AESE`/`AESMC`) on NEON registers, 8 blocks in
    /// flight.
    ArmAes,
}

impl Engine {
    /// Every engine, best first.
    pub const ALL: [Engine; 4] = [
        Engine::Vaes512,
        Engine::AesNi,
        Engine::ArmAes,
        Engine::Scalar,
    ];

    /// The best engine for this CPU within the kernels' detected [`Backend`]: `Scalar` when
    /// `BUNET_FORCE_SCALAR=1`, `Vaes512` on an AVX-512 CPU with VAES, else `AesNi` where AES-NI
    /// exists, `ArmAes` on aarch64 with NEON and the AES extension.
    pub fn detect() -> Engine {
        match Backend::detect() {
            Backend::Scalar => Engine::Scalar,
            _ => Self::ALL
                .into_iter()
                .find(|e| e.is_available())
                .unwrap_or(Engine::Scalar),
        }
    }

    /// Whether this CPU can run the engine.
    pub fn is_available(self) -> bool {
        match self {
            Engine::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Engine::AesNi => {
                std::arch::is_x86_feature_detected!("aes")
                    && std::arch::is_x86_feature_detected!("sse4.1")
            }
            #[cfg(target_arch = "x86_64")]
            Engine::Vaes512 => {
                Backend::Avx512.is_available()
                    && std::arch::is_x86_feature_detected!("aes")
                    && std::arch::is_x86_feature_detected!("vaes")
            }
            #[cfg(target_arch = "aarch64")]
            Engine::ArmAes => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("aes")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The engines this CPU runs, best first (always ends with [`Engine::Scalar`]).
    pub fn available() -> Vec<Engine> {
        Self::ALL.into_iter().filter(|e| e.is_available()).collect()
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Scalar => "scalar",
            Engine::AesNi => "aesni",
            Engine::Vaes512 => "vaes512",
            Engine::ArmAes => "armaes",
        })
    }
}

/// σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L: the linear orthomorphism of the GKWY hash.
#[inline(always)]
pub fn sigma(x: u128) -> u128 {
    let hi = (x >> 64) as u64;
    let lo = x as u64;
    (u128::from(hi ^ lo) << 64) | u128::from(hi)
}

/// The tweakable circular correlation-robust hash `H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x)` with π =
/// AES-128 under a fixed public key; see the [module documentation](self).
///
/// # Security
/// Guo–Katz–Wang–Yu (S&P 2020) prove `H` tweakable circular correlation robust when π is modelled
/// as a random permutation, provided each tweak is used for at most one pair of related inputs
/// — half-gates garbling therefore gives every gate its own tweaks. The key is public; labels
/// hashed here are secrets of the caller, and every engine is constant-time in them.
#[derive(Clone)]
pub struct FixedKeyHash {
    engine: Engine,
    /// Expanded AES-128 round keys (little-endian 128-bit words, as loaded into registers).
    round_keys: [u128; 11],
    scalar: scalar::Cipher,
}

impl std::fmt::Debug for FixedKeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedKeyHash")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Default for FixedKeyHash {
    fn default() -> Self {
        Self::new()
    }
}

/// Blocks hashed per scalar batch (the `aes` crate pipelines them).
const SCALAR_CHUNK: usize = 64;

impl FixedKeyHash {
    /// The hash under [`FIXED_KEY`] with the best engine of this CPU ([`Engine::detect`]).
    pub fn new() -> Self {
        Self::with_key(FIXED_KEY, Engine::detect()).expect("a detected engine is available")
    }

    /// The hash under [`FIXED_KEY`] with a given engine (tests and benches compare engines).
    ///
    /// # Errors
    /// [`Error::AesEngineUnavailable`] if this CPU cannot run `engine`.
    pub fn with_engine(engine: Engine) -> Result<Self, Error> {
        Self::with_key(FIXED_KEY, engine)
    }

    /// The construction with another AES-128 key (for known-answer tests of the raw cipher;
    /// the garbling hash uses [`FIXED_KEY`]).
    ///
    /// # Errors
    /// [`Error::AesEngineUnavailable`] if this CPU cannot run `engine`.
    pub fn with_key(key: [u8; 16], engine: Engine) -> Result<Self, Error> {
        if !engine.is_available() {
            return Err(Error::AesEngineUnavailable(engine));
        }
        Ok(Self {
            engine,
            round_keys: expand_key(key),
            scalar: scalar::Cipher::new(key),
        })
    }

    /// The engine chosen at construction.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Encrypts every block in place with the raw permutation π (AES-128 under the key).
    pub fn encrypt_blocks(&self, blocks: &mut [u128]) {
        match self.engine {
            Engine::Scalar => self.scalar.encrypt(blocks),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_key` checked `Engine::AesNi.is_available()` (aes, sse4.1).
            Engine::AesNi => unsafe { aesni::encrypt_blocks(&self.round_keys, blocks) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_key` checked `Engine::Vaes512.is_available()` (avx512f/bw/dq/vl,
            // aes, vaes).
            Engine::Vaes512 => unsafe { avx512::encrypt_blocks(&self.round_keys, blocks) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `with_key` checked `Engine::ArmAes.is_available()` (neon, aes).
            Engine::ArmAes => unsafe { neon::encrypt_blocks(&self.round_keys, blocks) },
            #[allow(unreachable_patterns)]
            _ => unreachable!("engine availability is checked at construction"),
        }
    }

    /// `H(x, tweak)` for one block (slow: prefer [`FixedKeyHash::hash_many`]).
    pub fn hash(&self, x: u128, tweak: u128) -> u128 {
        let mut block = [x];
        self.hash_many(&mut block, &[tweak]);
        block[0]
    }

    /// Replaces every `blocks[j]` by `H(blocks[j], tweaks[j])`.
    ///
    /// # Panics
    /// If `blocks` and `tweaks` differ in length.
    pub fn hash_many(&self, blocks: &mut [u128], tweaks: &[u128]) {
        assert_eq!(
            blocks.len(),
            tweaks.len(),
            "one tweak per block is required"
        );
        match self.engine {
            Engine::Scalar => {
                let mut sig = [0u128; SCALAR_CHUNK];
                for (bs, ts) in blocks
                    .chunks_mut(SCALAR_CHUNK)
                    .zip(tweaks.chunks(SCALAR_CHUNK))
                {
                    let n = bs.len();
                    for ((b, s), t) in bs.iter_mut().zip(&mut sig[..n]).zip(ts) {
                        *s = sigma(*b);
                        *b = *s ^ t;
                    }
                    self.scalar.encrypt(bs);
                    for (b, s) in bs.iter_mut().zip(&sig[..n]) {
                        *b ^= s;
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_key` checked `Engine::AesNi.is_available()` (aes, sse4.1).
            Engine::AesNi => unsafe { aesni::hash_many(&self.round_keys, blocks, tweaks) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_key` checked `Engine::Vaes512.is_available()` (avx512f/bw/dq/vl,
            // aes, vaes).
            Engine::Vaes512 => unsafe { avx512::hash_many(&self.round_keys, blocks, tweaks) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `with_key` checked `Engine::ArmAes.is_available()` (neon, aes).
            Engine::ArmAes => unsafe { neon::hash_many(&self.round_keys, blocks, tweaks) },
            #[allow(unreachable_patterns)]
            _ => unreachable!("engine availability is checked at construction"),
        }
    }

    /// One level of a half-tree (Guo et al., Eurocrypt 2023): the parents are `nodes[..half]`,
    /// `half = nodes.len() / 2`; the left child `H(x_j, tweak)` of parent `j` replaces it and
    /// the right child `x_j ⊕ H(x_j, tweak)` goes to `nodes[half + j]`. Returns the XOR of the
    /// left children and that of the right ones. One pass over the level, where a copy, a
    /// hash and an xor pass would take three.
    ///
    /// # Panics
    /// If `nodes.len()` is odd.
    pub fn half_tree_level(&self, nodes: &mut [u128], tweak: u128) -> [u128; 2] {
        assert!(
            nodes.len().is_multiple_of(2),
            "a level has two children per parent"
        );
        let (lo, hi) = nodes.split_at_mut(nodes.len() / 2);
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `with_key` checked `Engine::Vaes512.is_available()` (avx512f/bw/dq/vl,
            // aes, vaes); `lo` and `hi` have equal lengths.
            Engine::Vaes512 => unsafe { avx512::half_tree_level(&self.round_keys, lo, hi, tweak) },
            _ => {
                let tweaks = [tweak; SCALAR_CHUNK];
                let [mut sum_lo, mut sum_hi] = [0u128; 2];
                for (l, h) in lo.chunks_mut(SCALAR_CHUNK).zip(hi.chunks_mut(SCALAR_CHUNK)) {
                    h.copy_from_slice(l);
                    self.hash_many(l, &tweaks[..l.len()]);
                    for (l, h) in l.iter().zip(h.iter_mut()) {
                        *h ^= *l;
                        sum_lo ^= *l;
                        sum_hi ^= *h;
                    }
                }
                [sum_lo, sum_hi]
            }
        }
    }

    /// Writes `out[j] = H(input[j], tweaks[j])`.
    ///
    /// # Panics
    /// If the three slices differ in length.
    pub fn hash_into(&self, input: &[u128], tweaks: &[u128], out: &mut [u128]) {
        assert_eq!(input.len(), out.len(), "one output per input is required");
        out.copy_from_slice(input);
        self.hash_many(out, tweaks);
    }
}

/// Tweaks of a run of AND gates in half-gates garbling: instance `i` of the run hashes its
/// `a` label under `2·(first + i·stride)` and its `b` label under `2·(first + i·stride) + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateTweaks {
    /// Gate index of instance 0.
    pub first: u64,
    /// Gate-index distance between consecutive instances.
    pub stride: u64,
}

impl GateTweaks {
    /// The pair of tweaks of instance `i`.
    #[inline(always)]
    pub fn of(&self, i: usize) -> (u128, u128) {
        let t = self
            .first
            .wrapping_add((i as u64).wrapping_mul(self.stride));
        let j = u128::from(t.wrapping_mul(2));
        (j, j | 1)
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the VAES engine
    fn advanced(&self, i: usize) -> Self {
        Self {
            first: self
                .first
                .wrapping_add((i as u64).wrapping_mul(self.stride)),
            stride: self.stride,
        }
    }
}

#[inline(always)]
fn colour_mask(x: u128) -> u128 {
    0u128.wrapping_sub(x & 1)
}

/// Half-gates instances handled per batch of the portable path.
const HALF_GATES_CHUNK: usize = 64;

/// The half-gates kernels' precondition: every slice holds one entry per instance.
fn one_per_instance(lens: [usize; 5]) {
    assert!(
        lens.iter().all(|&l| l == lens[0]),
        "one label of each kind per instance is required"
    );
}

impl FixedKeyHash {
    /// Garbles one AND gate for many instances with half-gates (Zahur–Rosulek–Evans, EUROCRYPT
    /// 2015, Fig. 2), the four hashes fused with the combination step.
    ///
    /// For instance `i` with zero labels `A0 = a0[i]`, `B0 = b0[i]`, colours `pa = lsb(A0)`, `pb
    /// = lsb(B0)` and tweaks `(j, j') = tweaks.of(i)`: `tg[i] = H(A0, j) ⊕ H(A0 ⊕ Δ, j) ⊕ pb·Δ`,
    /// `te[i] = H(B0, j') ⊕ H(B0 ⊕ Δ, j') ⊕ A0`, and the output zero label `out[i] = H(A0, j) ⊕
    /// pa·tg[i] ⊕ H(B0, j') ⊕ pb·(te[i] ⊕ A0)`. Constant time in the labels.
    ///
    /// # Panics
    /// If the slices differ in length.
    #[allow(clippy::too_many_arguments)] // Δ, two inputs, tweaks, three outputs: all needed
    pub fn garble_and(
        &self,
        delta: u128,
        a0: &[u128],
        b0: &[u128],
        tweaks: GateTweaks,
        out: &mut [u128],
        tg: &mut [u128],
        te: &mut [u128],
    ) {
        one_per_instance([a0.len(), b0.len(), out.len(), tg.len(), te.len()]);
        #[cfg(target_arch = "x86_64")]
        if self.engine == Engine::Vaes512 {
            // SAFETY: `with_key` checked `Engine::Vaes512.is_available()` (avx512f/bw/dq/vl,
            // aes, vaes).
            let done =
                unsafe { avx512::garble_and(&self.round_keys, delta, a0, b0, tweaks, out, tg, te) };
            self.garble_and_portable(
                delta,
                &a0[done..],
                &b0[done..],
                tweaks.advanced(done),
                &mut out[done..],
                &mut tg[done..],
                &mut te[done..],
            );
            return;
        }
        self.garble_and_portable(delta, a0, b0, tweaks, out, tg, te);
    }

    /// [`FixedKeyHash::garble_and`] through [`FixedKeyHash::hash_many`] (any engine).
    #[allow(clippy::too_many_arguments)] // mirrors garble_and
    fn garble_and_portable(
        &self,
        delta: u128,
        a0: &[u128],
        b0: &[u128],
        tweaks: GateTweaks,
        out: &mut [u128],
        tg: &mut [u128],
        te: &mut [u128],
    ) {
        let mut blocks = [0u128; 4 * HALF_GATES_CHUNK];
        let mut tw = [0u128; 4 * HALF_GATES_CHUNK];
        for start in (0..a0.len()).step_by(HALF_GATES_CHUNK) {
            let end = (start + HALF_GATES_CHUNK).min(a0.len());
            let n = end - start;
            for i in 0..n {
                let (a, b) = (a0[start + i], b0[start + i]);
                let (j, j1) = tweaks.of(start + i);
                blocks[4 * i..4 * i + 4].copy_from_slice(&[a, a ^ delta, b, b ^ delta]);
                tw[4 * i..4 * i + 4].copy_from_slice(&[j, j, j1, j1]);
            }
            self.hash_many(&mut blocks[..4 * n], &tw[..4 * n]);
            for i in 0..n {
                let (a, b) = (a0[start + i], b0[start + i]);
                let [h0, h1, h2, h3] = [
                    blocks[4 * i],
                    blocks[4 * i + 1],
                    blocks[4 * i + 2],
                    blocks[4 * i + 3],
                ];
                let (pa, pb) = (colour_mask(a), colour_mask(b));
                let g = h0 ^ h1 ^ (pb & delta);
                tg[start + i] = g;
                te[start + i] = h2 ^ h3 ^ a;
                out[start + i] = h0 ^ (pa & g) ^ h2 ^ (pb & (h2 ^ h3));
            }
        }
        blocks.fill(0);
    }

    /// Evaluates one AND gate for many instances with half-gates: for active labels `A = a[i]`,
    /// `B = b[i]`, `out[i] = H(A, j) ⊕ lsb(A)·tg[i] ⊕ H(B, j') ⊕ lsb(B)·(te[i] ⊕ A)`.
    ///
    /// # Panics
    /// If the slices differ in length.
    pub fn evaluate_and(
        &self,
        a: &[u128],
        b: &[u128],
        tg: &[u128],
        te: &[u128],
        tweaks: GateTweaks,
        out: &mut [u128],
    ) {
        one_per_instance([a.len(), b.len(), out.len(), tg.len(), te.len()]);
        #[cfg(target_arch = "x86_64")]
        if self.engine == Engine::Vaes512 {
            // SAFETY: `with_key` checked `Engine::Vaes512.is_available()` (avx512f/bw/dq/vl,
            // aes, vaes).
            let done = unsafe { avx512::evaluate_and(&self.round_keys, a, b, tg, te, tweaks, out) };
            self.evaluate_and_portable(
                &a[done..],
                &b[done..],
                &tg[done..],
                &te[done..],
                tweaks.advanced(done),
                &mut out[done..],
            );
            return;
        }
        self.evaluate_and_portable(a, b, tg, te, tweaks, out);
    }

    fn evaluate_and_portable(
        &self,
        a: &[u128],
        b: &[u128],
        tg: &[u128],
        te: &[u128],
        tweaks: GateTweaks,
        out: &mut [u128],
    ) {
        let mut blocks = [0u128; 2 * HALF_GATES_CHUNK];
        let mut tw = [0u128; 2 * HALF_GATES_CHUNK];
        for start in (0..a.len()).step_by(HALF_GATES_CHUNK) {
            let end = (start + HALF_GATES_CHUNK).min(a.len());
            let n = end - start;
            for i in 0..n {
                let (j, j1) = tweaks.of(start + i);
                blocks[2 * i..2 * i + 2].copy_from_slice(&[a[start + i], b[start + i]]);
                tw[2 * i..2 * i + 2].copy_from_slice(&[j, j1]);
            }
            self.hash_many(&mut blocks[..2 * n], &tw[..2 * n]);
            for i in 0..n {
                let (x, y) = (a[start + i], b[start + i]);
                out[start + i] = blocks[2 * i]
                    ^ (colour_mask(x) & tg[start + i])
                    ^ blocks[2 * i + 1]
                    ^ (colour_mask(y) & (te[start + i] ^ x));
            }
        }
        blocks.fill(0);
    }
}

/// The AES S-box (FIPS-197 Fig. 7); used only to expand the public key.
const SBOX: [u8; 256] = {
    // Generated at compile time: S(x) = affine(x^-1) in GF(2^8) with the AES polynomial.
    let mut sbox = [0u8; 256];
    let mut p: u8 = 1;
    let mut q: u8 = 1;
    loop {
        // p ← p·3, q ← q/3: they walk the multiplicative group in inverse order.
        p = p ^ (p << 1) ^ if p & 0x80 != 0 { 0x1b } else { 0 };
        q ^= q << 1;
        q ^= q << 2;
        q ^= q << 4;
        if q & 0x80 != 0 {
            q ^= 0x09;
        }
        let x = q ^ q.rotate_left(1) ^ q.rotate_left(2) ^ q.rotate_left(3) ^ q.rotate_left(4);
        sbox[p as usize] = x ^ 0x63;
        if p == 1 {
            break;
        }
    }
    sbox[0] = 0x63;
    sbox
};

/// FIPS-197 §5.2 key expansion for AES-128; round key `r` as the little-endian `u128` of its
/// 16 bytes.
fn expand_key(key: [u8; 16]) -> [u128; 11] {
    let mut w = [[0u8; 4]; 44];
    for (i, word) in w.iter_mut().take(4).enumerate() {
        word.copy_from_slice(&key[4 * i..4 * i + 4]);
    }
    let mut rcon: u8 = 1;
    for i in 4..44 {
        let mut t = w[i - 1];
        if i % 4 == 0 {
            t = [
                SBOX[t[1] as usize] ^ rcon,
                SBOX[t[2] as usize],
                SBOX[t[3] as usize],
                SBOX[t[0] as usize],
            ];
            rcon = (rcon << 1) ^ if rcon & 0x80 != 0 { 0x1b } else { 0 };
        }
        for j in 0..4 {
            w[i][j] = w[i - 4][j] ^ t[j];
        }
    }
    let mut rk = [0u128; 11];
    for (r, k) in rk.iter_mut().enumerate() {
        let mut bytes = [0u8; 16];
        for j in 0..4 {
            bytes[4 * j..4 * j + 4].copy_from_slice(&w[4 * r + j]);
        }
        *k = u128::from_le_bytes(bytes);
    }
    rk
}
