//! OTs and AND triples derived from Ferret COTs (see [the module documentation](super)).

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ferret::{Params, Receiver, SILENT_DOMAIN, Sender};
use super::kind;
use crate::Error;
use crate::channel::Channel;
use crate::ot::OtError;
use crate::prg::Prg;
use crate::triples::Role;
use crate::wire::{Reader, WireError};

/// `⌊x·m / 2^128⌋`: a uniform 128-bit block mapped to `[0, m)`.
#[inline]
fn reduce(x: u128, m: u64) -> u64 {
    let m = u128::from(m);
    let lo = (x as u64 as u128 * m) >> 64;
    let hi = (x >> 64) * m;
    ((hi + lo) >> 64) as u64
}

/// Bytes per value modulo `m` on the wire.
fn bytes_for(m: u64) -> usize {
    (64 - (m - 1).leading_zeros() as usize).div_ceil(8).max(1)
}

/// Packs bits little-endian into bytes (padding bits zero).
pub(crate) fn pack_bits(bits: impl ExactSizeIterator<Item = bool>) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, b) in bits.enumerate() {
        out[i / 8] |= u8::from(b) << (i % 8);
    }
    out
}

/// Reads `n` packed bits (rejecting nonzero padding and trailing bytes).
pub(crate) fn unpack_bits(body: &[u8], n: usize, what: &'static str) -> Result<Vec<bool>, Error> {
    let mut r = Reader::new(body);
    let raw = r.take(n.div_ceil(8))?;
    r.finish()?;
    if !n.is_multiple_of(8) && raw[n / 8] >> (n % 8) != 0 {
        return Err(WireError::Invalid(what).into());
    }
    Ok((0..n).map(|i| (raw[i / 8] >> (i % 8)) & 1 == 1).collect())
}

fn hash_tweaked(hash: &bunet_kernels::aes_hash::FixedKeyHash, xs: &mut [u128], tweaks: &[u128]) {
    for (x, t) in xs.chunks_mut(256).zip(tweaks.chunks(256)) {
        hash.hash_many(x, t);
    }
}

fn check_modulus(m: u64) -> Result<(), OtError> {
    if !(2..1 << 62).contains(&m) {
        return Err(OtError::ModulusOutOfRange { p: m });
    }
    Ok(())
}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), OtError> {
    if expected != found {
        return Err(OtError::LengthMismatch {
            what,
            expected,
            found,
        });
    }
    Ok(())
}

/// Checks the 1-of-N shape: `N = 2^log_n`, `ℓ`-bit messages, `N·ℓ ≤ 128`.
fn check_one_of_n(log_n: u32, bits: u32) -> Result<(), OtError> {
    if !(1..=8).contains(&bits) || !(1..=7).contains(&log_n) || (bits << log_n) > 128 {
        return Err(OtError::LengthMismatch {
            what: "1-of-N shape (N·bits must be at most 128, bits at most 8)",
            expected: 128,
            found: (bits << log_n.min(16)) as usize,
        });
    }
    Ok(())
}

/// Mask of the `ℓ`-bit fields `x ∈ [0, N)` whose bit `i` is 1.
fn field_mask(log_n: u32, bits: u32, i: u32) -> u128 {
    let ones = (1u128 << bits) - 1;
    (0..1u32 << log_n)
        .filter(|x| (x >> i) & 1 == 1)
        .fold(0, |m, x| m | (ones << (x * bits)))
}

impl Sender {
    /// Draws `n` COTs and their tweak serial.
    fn cots(&mut self, ch: &mut Channel, n: usize) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        let mut q = Zeroizing::new(vec![0u128; n]);
        self.send_cot(ch, &mut q)?;
        Ok((q, self.tweaks(n)))
    }

    /// Receives the receiver's `n` choice corrections.
    fn corrections(ch: &mut Channel, n: usize) -> Result<Vec<bool>, Error> {
        let body = ch.recv(kind::FIX, n.div_ceil(8))?;
        unpack_bits(&body, n, "choice correction padding")
    }

    /// Chosen-message OT of 128-bit strings: the peer's [`Receiver::receive_chosen`] learns
    /// `messages[i][c_i]` and nothing about the other. 32 bytes + 1 bit per OT on the wire.
    ///
    /// # Errors
    /// Channel and wire errors.
    pub fn send_chosen(&mut self, ch: &mut Channel, messages: &[[u128; 2]]) -> Result<(), Error> {
        let n = messages.len();
        let (q, serial) = self.cots(ch, n)?;
        let e = Self::corrections(ch, n)?;
        let delta = self.delta();
        let mut pads = Zeroizing::new(Vec::with_capacity(2 * n));
        let mut tweaks = Vec::with_capacity(2 * n);
        for (i, (&q, &e)) in q.iter().zip(&e).enumerate() {
            let x0 = q ^ if e { delta } else { 0 };
            pads.extend([x0, x0 ^ delta]);
            let t = SILENT_DOMAIN | u128::from(serial + i as u64);
            tweaks.extend([t, t]);
        }
        hash_tweaked(self.hash(), &mut pads, &tweaks);
        let mut body = Vec::with_capacity(32 * n);
        for (m, p) in messages.iter().zip(pads.chunks_exact(2)) {
            body.extend_from_slice(&(m[0] ^ p[0]).to_le_bytes());
            body.extend_from_slice(&(m[1] ^ p[1]).to_le_bytes());
        }
        ch.send(kind::CHOSEN, &body)?;
        ch.flush()?;
        Ok(())
    }

    /// 1-out-of-`2^log_n` OT of `bits`-bit messages (`2^log_n · bits ≤ 128`, `bits ≤ 8`):
    /// `messages` holds `2^log_n` values below `2^bits` per OT; the peer's
    /// [`Receiver::receive_one_of_n`] learns the one it chose. `log_n` COTs, `log_n` bits up
    /// and `2^log_n · bits` bits down per OT.
    ///
    /// # Errors
    /// [`OtError::LengthMismatch`] for a bad shape or length; [`OtError::NotReduced`] for a
    /// message of more than `bits` bits; channel and wire errors.
    pub fn send_one_of_n(
        &mut self,
        ch: &mut Channel,
        log_n: u32,
        bits: u32,
        messages: &[u8],
    ) -> Result<(), Error> {
        check_one_of_n(log_n, bits)?;
        let big_n = 1usize << log_n;
        if !messages.len().is_multiple_of(big_n) {
            return Err(OtError::LengthMismatch {
                what: "1-of-N messages",
                expected: messages.len().next_multiple_of(big_n),
                found: messages.len(),
            }
            .into());
        }
        if let Some(&m) = messages.iter().find(|&&m| u32::from(m) >> bits != 0) {
            return Err(OtError::NotReduced {
                what: "1-of-N message",
                found: u64::from(m),
                p: 1 << bits,
            }
            .into());
        }
        let n = messages.len() / big_n;
        let ln = log_n as usize;
        let (q, serial) = self.cots(ch, n * ln)?;
        let e = Self::corrections(ch, n * ln)?;
        let delta = self.delta();
        let mut keys = Zeroizing::new(Vec::with_capacity(2 * n * ln));
        let mut tweaks = Vec::with_capacity(2 * n * ln);
        for (j, &q) in q.iter().enumerate() {
            keys.extend([q, q ^ delta]);
            let t = SILENT_DOMAIN | u128::from(serial + j as u64);
            tweaks.extend([t, t]);
        }
        hash_tweaked(self.hash(), &mut keys, &tweaks);
        let masks: Vec<u128> = (0..log_n).map(|i| field_mask(log_n, bits, i)).collect();
        let width = (bits as usize) << log_n;
        let mut out = BitWriter::with_capacity(n * width);
        for (i, msgs) in messages.chunks_exact(big_n).enumerate() {
            let mut word = msgs.iter().enumerate().fold(0u128, |w, (x, &m)| {
                w | (u128::from(m) << (x * bits as usize))
            });
            for (l, mask) in masks.iter().enumerate() {
                let j = i * ln + l;
                // Fields whose bit l is 1 use the key of choice 1 ⊕ e, the others of e.
                let (k0, k1) = (keys[2 * j], keys[2 * j + 1]);
                let (ke, kne) = if e[j] { (k1, k0) } else { (k0, k1) };
                word ^= (ke & !mask) | (kne & mask);
            }
            out.put(word, width);
        }
        ch.send(kind::ONE_OF_N, &out.finish())?;
        ch.flush()?;
        Ok(())
    }

    /// Correlated OT modulo `moduli[j]` (`moduli.len()` values per OT, one choice bit): with
    /// `corr` holding `moduli.len()` values per OT (value `j` below `moduli[j]`), returns this
    /// party's shares `s` such that `s + r = c·corr mod m` where `r` is the output of the peer's
    /// [`Receiver::receive_correlated_mod`] with choice `c`.
    ///
    /// # Errors
    /// [`OtError`] for a bad modulus, length or unreduced value; channel and wire errors.
    pub fn send_correlated_mod(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        corr: &[u64],
    ) -> Result<Vec<u64>, Error> {
        let w = moduli.len();
        for &m in moduli {
            check_modulus(m)?;
        }
        if w == 0 {
            return Err(OtError::LengthMismatch {
                what: "moduli",
                expected: 1,
                found: 0,
            }
            .into());
        }
        check_len("correlations", corr.len().next_multiple_of(w), corr.len())?;
        for (i, &x) in corr.iter().enumerate() {
            if x >= moduli[i % w] {
                return Err(OtError::NotReduced {
                    what: "correlation",
                    found: x,
                    p: moduli[i % w],
                }
                .into());
            }
        }
        let n = corr.len() / w;
        let (q, serial) = self.cots(ch, n)?;
        let e = Self::corrections(ch, n)?;
        let delta = self.delta();
        let mut pads = Zeroizing::new(Vec::with_capacity(2 * n * w));
        let mut tweaks = Vec::with_capacity(2 * n * w);
        for (i, (&q, &e)) in q.iter().zip(&e).enumerate() {
            let x0 = q ^ if e { delta } else { 0 };
            for j in 0..w {
                pads.extend([x0, x0 ^ delta]);
                let t = SILENT_DOMAIN | ((j as u128) << 96) | u128::from(serial + i as u64);
                tweaks.extend([t, t]);
            }
        }
        hash_tweaked(self.hash(), &mut pads, &tweaks);
        let bytes: usize = moduli.iter().map(|&m| bytes_for(m)).sum();
        let mut body = Vec::with_capacity(n * bytes);
        let mut shares = Vec::with_capacity(n * w);
        for (i, &x) in corr.iter().enumerate() {
            let m = moduli[i % w];
            let k0 = reduce(pads[2 * i], m);
            let k1 = reduce(pads[2 * i + 1], m);
            let y = ((u128::from(x) + u128::from(k0) + u128::from(m - k1)) % u128::from(m)) as u64;
            body.extend_from_slice(&y.to_le_bytes()[..bytes_for(m)]);
            shares.push((m - k0) % m);
        }
        ch.send(kind::CORRELATED, &body)?;
        ch.flush()?;
        Ok(shares)
    }
}

impl Receiver {
    /// Draws `n` COTs and their tweak serial; sends the corrections `c_i ⊕ b_i`.
    fn cots_fixed(
        &mut self,
        ch: &mut Channel,
        choices: impl ExactSizeIterator<Item = bool>,
    ) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        let n = choices.len();
        let mut t = Zeroizing::new(vec![0u128; n]);
        self.receive_cot(ch, &mut t)?;
        let serial = self.tweaks(n);
        let fix = pack_bits(choices.zip(t.iter()).map(|(c, &t)| c ^ (t & 1 == 1)));
        ch.send(kind::FIX, &fix)?;
        Ok((t, serial))
    }

    /// Chosen-message OT: returns `messages[i][choices[i]]` of the peer's
    /// [`Sender::send_chosen`].
    ///
    /// # Errors
    /// Channel and wire errors.
    pub fn receive_chosen(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<u128>, Error> {
        let n = choices.len();
        let (mut t, serial) = self.cots_fixed(ch, choices.iter().copied())?;
        let tweaks: Vec<u128> = (0..n)
            .map(|i| SILENT_DOMAIN | u128::from(serial + i as u64))
            .collect();
        hash_tweaked(self.hash(), &mut t, &tweaks);
        let body = ch.recv(kind::CHOSEN, 32 * n)?;
        let mut r = Reader::new(&body);
        let mut out = Vec::with_capacity(n);
        for (&c, &pad) in choices.iter().zip(t.iter()) {
            let y0 = r.u128()?;
            let y1 = r.u128()?;
            out.push(if c { y1 } else { y0 } ^ pad);
        }
        r.finish()?;
        Ok(out)
    }

    /// 1-out-of-`2^log_n` OT: returns the chosen `bits`-bit message per OT of the peer's
    /// [`Sender::send_one_of_n`] (`choices[i] < 2^log_n`).
    ///
    /// # Errors
    /// [`OtError`] for a bad shape or choice; channel and wire errors.
    pub fn receive_one_of_n(
        &mut self,
        ch: &mut Channel,
        log_n: u32,
        bits: u32,
        choices: &[u8],
    ) -> Result<Vec<u8>, Error> {
        check_one_of_n(log_n, bits)?;
        if let Some(&c) = choices.iter().find(|&&c| u32::from(c) >> log_n != 0) {
            return Err(OtError::NotReduced {
                what: "1-of-N choice",
                found: u64::from(c),
                p: 1 << log_n,
            }
            .into());
        }
        let n = choices.len();
        let ln = log_n as usize;
        let bitsof = choices
            .iter()
            .flat_map(|&c| (0..ln).map(move |l| (c >> l) & 1 == 1))
            .collect::<Vec<_>>();
        let (mut t, serial) = self.cots_fixed(ch, bitsof.into_iter())?;
        let tweaks: Vec<u128> = (0..n * ln)
            .map(|j| SILENT_DOMAIN | u128::from(serial + j as u64))
            .collect();
        hash_tweaked(self.hash(), &mut t, &tweaks);
        let width = (bits as usize) << log_n;
        let body = ch.recv(kind::ONE_OF_N, (n * width).div_ceil(8))?;
        let mut reader = BitReader::new(&body, n * width)?;
        let ones = (1u128 << bits) - 1;
        let mut out = Vec::with_capacity(n);
        for (i, &c) in choices.iter().enumerate() {
            let mut word = reader.get(width);
            for l in 0..ln {
                word ^= t[i * ln + l];
            }
            out.push(((word >> (u32::from(c) * bits)) & ones) as u8);
        }
        Ok(out)
    }

    /// Correlated OT modulo `moduli[j]`: returns `moduli.len()` values per choice, `k + c·x`,
    /// the peer's [`Sender::send_correlated_mod`] holding `−k` and `x`.
    ///
    /// # Errors
    /// [`OtError`] for a bad modulus; channel and wire errors.
    pub fn receive_correlated_mod(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        choices: &[bool],
    ) -> Result<Vec<u64>, Error> {
        let w = moduli.len();
        for &m in moduli {
            check_modulus(m)?;
        }
        if w == 0 {
            return Err(OtError::LengthMismatch {
                what: "moduli",
                expected: 1,
                found: 0,
            }
            .into());
        }
        let n = choices.len();
        let (t, serial) = self.cots_fixed(ch, choices.iter().copied())?;
        let mut pads = Zeroizing::new(Vec::with_capacity(n * w));
        let mut tweaks = Vec::with_capacity(n * w);
        for (i, &t) in t.iter().enumerate() {
            for j in 0..w {
                pads.push(t);
                tweaks.push(SILENT_DOMAIN | ((j as u128) << 96) | u128::from(serial + i as u64));
            }
        }
        hash_tweaked(self.hash(), &mut pads, &tweaks);
        let bytes: usize = moduli.iter().map(|&m| bytes_for(m)).sum();
        let body = ch.recv(kind::CORRELATED, n * bytes)?;
        let mut r = Reader::new(&body);
        let mut out = Vec::with_capacity(n * w);
        let mut y = Vec::with_capacity(1);
        for i in 0..n * w {
            let m = moduli[i % w];
            y.clear();
            r.words_below("correlated OT correction", 1, bytes_for(m), m, &mut y)?;
            let k = reduce(pads[i], m);
            let v = if choices[i / w] { (k + y[0]) % m } else { k };
            out.push(v);
        }
        r.finish()?;
        Ok(out)
    }
}

/// Writes fields of up to 128 bits into a little-endian bit stream.
struct BitWriter {
    out: Vec<u8>,
    acc: u128,
    fill: usize,
}

impl BitWriter {
    fn with_capacity(bits: usize) -> Self {
        Self {
            out: Vec::with_capacity(bits.div_ceil(8)),
            acc: 0,
            fill: 0,
        }
    }

    fn put(&mut self, word: u128, width: usize) {
        let mut word = if width == 128 {
            word
        } else {
            word & ((1u128 << width) - 1)
        };
        let mut width = width;
        while width > 0 {
            let take = width.min(64);
            let part = word & ((1u128 << take) - 1);
            self.acc |= part << self.fill;
            self.fill += take;
            while self.fill >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.fill -= 8;
            }
            word = word.checked_shr(take as u32).unwrap_or(0);
            width -= take;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.fill > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Reads the fields of a [`BitWriter`] stream of exactly `total` bits.
struct BitReader<'a> {
    bytes: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8], total: usize) -> Result<Self, Error> {
        if bytes.len() != total.div_ceil(8) {
            return Err(WireError::LengthMismatch {
                what: "1-of-N ciphertexts",
                expected: total.div_ceil(8) as u64,
                found: bytes.len() as u64,
            }
            .into());
        }
        if !total.is_multiple_of(8) && bytes[total / 8] >> (total % 8) != 0 {
            return Err(WireError::Invalid("1-of-N ciphertext padding").into());
        }
        Ok(Self { bytes, bit: 0 })
    }

    fn get(&mut self, width: usize) -> u128 {
        let mut word = 0u128;
        for k in 0..width {
            let b = self.bit + k;
            word |= u128::from((self.bytes[b / 8] >> (b % 8)) & 1) << k;
        }
        self.bit += width;
        word
    }
}

/// One party's shares of `n` boolean AND triples, 64 per word (bit `i` of word `i / 64`):
/// `(a_A ⊕ a_B) ∧ (b_A ⊕ b_B) = c_A ⊕ c_B`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BitTriples {
    /// Shares of `a`.
    pub a: Vec<u64>,
    /// Shares of `b`.
    pub b: Vec<u64>,
    /// Shares of `c`.
    pub c: Vec<u64>,
}

impl std::fmt::Debug for BitTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BitTriples { .. }")
    }
}

/// A party's two Ferret sessions, one per direction: Alice's sender with Bob's receiver under
/// Alice's `Δ`, and the reverse. Everything bidirectional (AND triples, multiplexers) is built
/// on this pair.
pub struct Duplex {
    role: Role,
    sender: Sender,
    receiver: Receiver,
}

impl std::fmt::Debug for Duplex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Duplex")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Duplex {
    /// Sets up both directions (Alice's sender first). The peer calls this with the other role
    /// and the same `params`.
    ///
    /// # Errors
    /// Channel and wire errors.
    pub fn setup(
        ch: &mut Channel,
        role: Role,
        params: Params,
        mut prg: Prg,
    ) -> Result<Self, Error> {
        let (sender, receiver) = match role {
            Role::Alice => {
                let s = Sender::setup(ch, params, Prg::from_seed(prg.next_seed()))?;
                let r = Receiver::setup(ch, params, Prg::from_seed(prg.next_seed()))?;
                (s, r)
            }
            Role::Bob => {
                let r = Receiver::setup(ch, params, Prg::from_seed(prg.next_seed()))?;
                let s = Sender::setup(ch, params, Prg::from_seed(prg.next_seed()))?;
                (s, r)
            }
        };
        Ok(Self {
            role,
            sender,
            receiver,
        })
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The session in which this party is the COT sender.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.sender
    }

    /// The session in which this party is the COT receiver.
    pub fn receiver(&mut self) -> &mut Receiver {
        &mut self.receiver
    }

    /// Random OT bits of `n` COTs as sender: `(m_0, m_1)` packed as `(x = m_0 ⊕ m_1, m_0)`.
    fn sender_bits(&mut self, ch: &mut Channel, n: usize) -> Result<(Vec<u64>, Vec<u64>), Error> {
        let mut q = Zeroizing::new(vec![0u128; n]);
        self.sender.send_cot(ch, &mut q)?;
        let serial = self.sender.tweaks(n);
        let delta = self.sender.delta();
        let words = n.div_ceil(64);
        let (mut x, mut m0) = (vec![0u64; words], vec![0u64; words]);
        let mut pads = Zeroizing::new(vec![0u128; 512]);
        let mut tweaks = vec![0u128; 512];
        for (c, q) in q.chunks(256).enumerate() {
            for (i, &q) in q.iter().enumerate() {
                pads[2 * i] = q;
                pads[2 * i + 1] = q ^ delta;
                let t = SILENT_DOMAIN | u128::from(serial + (c * 256 + i) as u64);
                tweaks[2 * i] = t;
                tweaks[2 * i + 1] = t;
            }
            let len = 2 * q.len();
            self.sender
                .hash()
                .hash_many(&mut pads[..len], &tweaks[..len]);
            for i in 0..q.len() {
                let j = c * 256 + i;
                let (a, b) = ((pads[2 * i] & 1) as u64, (pads[2 * i + 1] & 1) as u64);
                x[j / 64] |= (a ^ b) << (j % 64);
                m0[j / 64] |= a << (j % 64);
            }
        }
        Ok((x, m0))
    }

    /// Random OT bits of `n` COTs as receiver: `(b, m_b)` packed.
    fn receiver_bits(&mut self, ch: &mut Channel, n: usize) -> Result<(Vec<u64>, Vec<u64>), Error> {
        let mut t = Zeroizing::new(vec![0u128; n]);
        self.receiver.receive_cot(ch, &mut t)?;
        let serial = self.receiver.tweaks(n);
        let words = n.div_ceil(64);
        let (mut b, mut mb) = (vec![0u64; words], vec![0u64; words]);
        for (i, &x) in t.iter().enumerate() {
            b[i / 64] |= ((x & 1) as u64) << (i % 64);
        }
        let tweaks: Vec<u128> = (0..n)
            .map(|i| SILENT_DOMAIN | u128::from(serial + i as u64))
            .collect();
        hash_tweaked(self.receiver.hash(), &mut t, &tweaks);
        for (i, &x) in t.iter().enumerate() {
            mb[i / 64] |= ((x & 1) as u64) << (i % 64);
        }
        Ok((b, mb))
    }

    /// `n` random AND triples from one COT per direction each; no traffic beyond the COTs'.
    ///
    /// # Errors
    /// Channel and wire errors of the COT generation.
    pub fn and_triples(&mut self, ch: &mut Channel, n: usize) -> Result<BitTriples, Error> {
        // Direction of Alice's Δ first, on both sides.
        let ((x, m0), (y, my)) = match self.role {
            Role::Alice => {
                let s = self.sender_bits(ch, n)?;
                (s, self.receiver_bits(ch, n)?)
            }
            Role::Bob => {
                let r = self.receiver_bits(ch, n)?;
                (self.sender_bits(ch, n)?, r)
            }
        };
        let c = (0..x.len())
            .map(|i| (x[i] & y[i]) ^ m0[i] ^ my[i])
            .collect();
        Ok(BitTriples { a: x, b: y, c })
    }

    /// Beaver AND of packed boolean shares: returns shares of `x ∧ y` for the first `n` bits
    /// (`x`, `y` hold `⌈n/64⌉` words, bits beyond `n` zero). One round trip, `4n` bits in total.
    ///
    /// # Errors
    /// [`OtError::LengthMismatch`] for bad lengths; channel and wire errors.
    pub fn and(
        &mut self,
        ch: &mut Channel,
        x: &[u64],
        y: &[u64],
        n: usize,
    ) -> Result<Vec<u64>, Error> {
        let words = n.div_ceil(64);
        check_len("AND left operand", words, x.len())?;
        check_len("AND right operand", words, y.len())?;
        let t = self.and_triples(ch, n)?;
        let mut mine = Vec::with_capacity(16 * words);
        for (x, a) in x.iter().zip(&t.a) {
            mine.extend_from_slice(&(x ^ a).to_le_bytes());
        }
        for (y, b) in y.iter().zip(&t.b) {
            mine.extend_from_slice(&(y ^ b).to_le_bytes());
        }
        let theirs = match self.role {
            Role::Alice => {
                ch.send(kind::AND, &mine)?;
                ch.recv(kind::AND, mine.len())?
            }
            Role::Bob => {
                let b = ch.recv(kind::AND, mine.len())?;
                ch.send(kind::AND, &mine)?;
                ch.flush()?;
                b
            }
        };
        let mut r = Reader::new(&theirs);
        let mut open = vec![0u64; 2 * words];
        for w in open.iter_mut() {
            *w = r.u64()?;
        }
        r.finish()?;
        let tail = if n.is_multiple_of(64) {
            u64::MAX
        } else {
            (1u64 << (n % 64)) - 1
        };
        let mut z = Vec::with_capacity(words);
        for i in 0..words {
            let d = open[i] ^ x[i] ^ t.a[i];
            let e = open[words + i] ^ y[i] ^ t.b[i];
            let mut v = t.c[i] ^ (d & t.b[i]) ^ (e & t.a[i]);
            if self.role == Role::Alice {
                v ^= d & e;
            }
            if i + 1 == words {
                v &= tail;
            }
            z.push(v);
        }
        Ok(z)
    }
}
