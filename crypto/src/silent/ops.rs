//! OTs and AND triples derived from Ferret COTs (see [the module documentation](super)).

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use bunet_kernels::aes_hash::FixedKeyHash;

use super::ferret::{Params, Receiver, SILENT_DOMAIN, Sender};
use super::kind;
use crate::Error;
use crate::channel::Channel;
use crate::ot::{OtError, check_len};
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
    let (mut byte, mut fill, mut at) = (0u8, 0, 0);
    for b in bits {
        byte |= u8::from(b) << fill;
        fill += 1;
        if fill == 8 {
            out[at] = byte;
            (byte, fill, at) = (0, 0, at + 1);
        }
    }
    if fill > 0 {
        out[at] = byte;
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

/// Pads hashed per block, so scratch stays in L1 whatever the number of OTs.
const PAD_BLOCK: usize = 512;

/// The OT-pad tweak of lane `lane` of the COT with serial `serial`.
fn pad_tweak(serial: u64, lane: usize) -> u128 {
    SILENT_DOMAIN | ((lane as u128) << 96) | u128::from(serial)
}

/// COTs per block for `2·lanes` (sender) or `lanes` (receiver) pads per COT, whole groups.
fn block_cots(pads_per_cot: usize, group: usize) -> usize {
    (PAD_BLOCK / pads_per_cot / group).max(1) * group
}

/// The sender's pads of COTs `q` (serials from `serial`) whose receiver sent correction
/// `e(i)`: per COT and per lane `H(q ⊕ e·Δ)`, `H(q ⊕ ¬e·Δ)` — the pads of the receiver's
/// choice 0 and 1. `f(first, pads)` gets blocks of whole groups of `group` COTs starting at
/// COT `first`, `2·lanes` pads per COT.
#[allow(clippy::too_many_arguments)]
fn sender_pads(
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
fn receiver_pads(
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

/// `(x + y) mod m` for `x, y < m < 2^63`, without a division or a secret-dependent branch.
#[inline]
pub(crate) fn add_mod(x: u64, y: u64, m: u64) -> u64 {
    let s = x + y;
    let (d, borrow) = s.overflowing_sub(m);
    if borrow { s } else { d }
}

/// `(x − y) mod m` for `x, y < m < 2^63`.
#[inline]
pub(crate) fn sub_mod(x: u64, y: u64, m: u64) -> u64 {
    let (d, borrow) = x.overflowing_sub(y);
    if borrow { d.wrapping_add(m) } else { d }
}

fn check_modulus(m: u64) -> Result<(), OtError> {
    if !(2..1 << 62).contains(&m) {
        return Err(OtError::ModulusOutOfRange { p: m });
    }
    Ok(())
}

/// Checks a non-empty list of moduli; returns its length.
fn check_moduli(moduli: &[u64]) -> Result<usize, OtError> {
    for &m in moduli {
        check_modulus(m)?;
    }
    if moduli.is_empty() {
        return Err(OtError::LengthMismatch {
            what: "moduli",
            expected: 1,
            found: 0,
        });
    }
    Ok(moduli.len())
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
        let mut body = Vec::with_capacity(32 * n);
        sender_pads(
            self.hash(),
            self.delta(),
            &q,
            |i| e[i],
            serial,
            1,
            1,
            |first, pads| {
                for (m, p) in messages[first..].iter().zip(pads.chunks_exact(2)) {
                    body.extend_from_slice(&(m[0] ^ p[0]).to_le_bytes());
                    body.extend_from_slice(&(m[1] ^ p[1]).to_le_bytes());
                }
            },
        );
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
        let words: Zeroizing<Vec<u128>> = Zeroizing::new(
            messages
                .chunks_exact(big_n)
                .map(|msgs| {
                    msgs.iter().enumerate().fold(0u128, |w, (x, &m)| {
                        w | (u128::from(m) << (x * bits as usize))
                    })
                })
                .collect(),
        );
        self.send_one_of_n_packed(ch, log_n, &vec![bits; words.len()], &words)
    }

    /// [`Sender::send_one_of_n`] with each OT's `2^log_n` messages packed into one word
    /// (message `x` in bits `[x·bits_i, (x + 1)·bits_i)`, the bits above `2^log_n·bits_i` zero),
    /// and a message width `bits[i]` per OT (both parties know them), so OTs of several widths
    /// share one exchange.
    ///
    /// # Errors
    /// As [`Sender::send_one_of_n`]; [`OtError::LengthMismatch`] if `bits` and `words` differ in
    /// length.
    pub fn send_one_of_n_packed(
        &mut self,
        ch: &mut Channel,
        log_n: u32,
        bits: &[u32],
        words: &[u128],
    ) -> Result<(), Error> {
        check_len("1-of-N message widths", words.len(), bits.len())?;
        for (&b, &w) in bits.iter().zip(words) {
            check_one_of_n(log_n, b)?;
            let width = (b as usize) << log_n;
            if width < 128 && w >> width != 0 {
                return Err(OtError::NotReduced {
                    what: "packed 1-of-N messages",
                    found: (w >> width) as u64,
                    p: 1,
                }
                .into());
            }
        }
        let n = words.len();
        let ln = log_n as usize;
        let (q, serial) = self.cots(ch, n * ln)?;
        let e = Self::corrections(ch, n * ln)?;
        // Field masks per valid message width (checked above) and choice bit.
        let masks: Vec<Vec<u128>> = (0..=8u32)
            .map(|b| match check_one_of_n(log_n, b) {
                Ok(()) => (0..log_n).map(|i| field_mask(log_n, b, i)).collect(),
                Err(_) => Vec::new(),
            })
            .collect();
        let total: usize = bits.iter().map(|&b| (b as usize) << log_n).sum();
        let mut out = BitWriter::with_capacity(total);
        sender_pads(
            self.hash(),
            self.delta(),
            &q,
            |j| e[j],
            serial,
            1,
            ln,
            |first, keys| {
                for (o, keys) in keys.chunks_exact(2 * ln).enumerate() {
                    let i = first / ln + o;
                    let mut word = words[i];
                    for (mask, k) in masks[bits[i] as usize].iter().zip(keys.chunks_exact(2)) {
                        // Fields whose bit l is 1 take the pad of the receiver's choice 1.
                        word ^= (k[0] & !mask) | (k[1] & mask);
                    }
                    out.put(word, (bits[i] as usize) << log_n);
                }
            },
        );
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
        let cots = self.correlated_begin(ch, moduli, corr)?;
        self.correlated_finish(ch, moduli, corr, cots)
    }

    /// Checks a correlated OT's inputs and draws its COTs.
    fn correlated_begin(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        corr: &[u64],
    ) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        let w = check_moduli(moduli)?;
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
        self.cots(ch, corr.len() / w)
    }

    /// Receives the corrections and sends the correlated OT's messages; returns the shares.
    fn correlated_finish(
        &self,
        ch: &mut Channel,
        moduli: &[u64],
        corr: &[u64],
        (q, serial): (Zeroizing<Vec<u128>>, u64),
    ) -> Result<Vec<u64>, Error> {
        let (n, w) = (q.len(), moduli.len());
        let e = Self::corrections(ch, n)?;
        let widths: Vec<usize> = moduli.iter().map(|&m| bytes_for(m)).collect();
        let mut body = Vec::with_capacity(n * widths.iter().sum::<usize>());
        let mut shares = Vec::with_capacity(n * w);
        let (hash, delta) = (self.hash(), self.delta());
        sender_pads(
            hash,
            delta,
            &q,
            |i| e[i],
            serial,
            w,
            1,
            |first, pads| {
                for (o, p) in pads.chunks_exact(2).enumerate() {
                    let j = o % w;
                    let m = moduli[j];
                    let (k0, k1) = (reduce(p[0], m), reduce(p[1], m));
                    let y = add_mod(corr[first * w + o], sub_mod(k0, k1, m), m);
                    body.extend_from_slice(&y.to_le_bytes()[..widths[j]]);
                    shares.push(sub_mod(0, k0, m));
                }
            },
        );
        ch.send(kind::CORRELATED, &body)?;
        ch.flush()?;
        Ok(shares)
    }
}

impl Receiver {
    /// Draws `n` COTs and their tweak serial; sends the corrections `c_i ⊕ b_i` for the
    /// choices `choice(i)`.
    fn cots_fixed(
        &mut self,
        ch: &mut Channel,
        n: usize,
        choice: impl Fn(usize) -> bool,
    ) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        let cots = self.cots(ch, n)?;
        Self::send_fix(ch, &cots.0, choice)?;
        Ok(cots)
    }

    /// Draws `n` COTs and their tweak serial.
    fn cots(&mut self, ch: &mut Channel, n: usize) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        let mut t = Zeroizing::new(vec![0u128; n]);
        self.receive_cot(ch, &mut t)?;
        Ok((t, self.tweaks(n)))
    }

    /// Sends the corrections `c_i ⊕ b_i` of the COTs `t` for the choices `choice(i)`.
    fn send_fix(ch: &mut Channel, t: &[u128], choice: impl Fn(usize) -> bool) -> Result<(), Error> {
        let fix = pack_bits(t.iter().enumerate().map(|(i, &t)| choice(i) ^ (t & 1 == 1)));
        ch.send(kind::FIX, &fix)?;
        Ok(())
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
        let (t, serial) = self.cots_fixed(ch, n, |i| choices[i])?;
        let mut pads = Zeroizing::new(Vec::with_capacity(n));
        receiver_pads(self.hash(), &t, serial, 1, 1, |_, p| {
            pads.extend_from_slice(p)
        });
        let body = ch.recv(kind::CHOSEN, 32 * n)?;
        let mut r = Reader::new(&body);
        let mut out = Vec::with_capacity(n);
        for (&c, &pad) in choices.iter().zip(pads.iter()) {
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
        self.receive_one_of_n_fields(ch, log_n, &vec![bits; choices.len()], choices)
    }

    /// [`Receiver::receive_one_of_n`] with a message width per OT, the peer's
    /// [`Sender::send_one_of_n_packed`] using the same `bits`.
    ///
    /// # Errors
    /// [`OtError`] for a bad shape, width list or choice; channel and wire errors.
    pub fn receive_one_of_n_fields(
        &mut self,
        ch: &mut Channel,
        log_n: u32,
        bits: &[u32],
        choices: &[u8],
    ) -> Result<Vec<u8>, Error> {
        check_len("1-of-N message widths", choices.len(), bits.len())?;
        for &b in bits {
            check_one_of_n(log_n, b)?;
        }
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
        let (t, serial) =
            self.cots_fixed(ch, n * ln, |j| (choices[j / ln] >> (j % ln)) & 1 == 1)?;
        // One pad per OT: the XOR of its `log_n` keys.
        let mut pads = Zeroizing::new(Vec::with_capacity(n));
        receiver_pads(self.hash(), &t, serial, 1, ln, |_, keys| {
            pads.extend(
                keys.chunks_exact(ln)
                    .map(|k| k.iter().fold(0, |a, &k| a ^ k)),
            );
        });
        let total: usize = bits.iter().map(|&b| (b as usize) << log_n).sum();
        let body = ch.recv(kind::ONE_OF_N, total.div_ceil(8))?;
        let mut reader = BitReader::new(&body, total)?;
        Ok(choices
            .iter()
            .zip(bits)
            .zip(pads.iter())
            .map(|((&c, &b), &pad)| {
                let word = reader.get((b as usize) << log_n) ^ pad;
                ((word >> (u32::from(c) * b)) & ((1u128 << b) - 1)) as u8
            })
            .collect())
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
        let cots = self.correlated_begin(ch, moduli, choices)?;
        Self::send_fix(ch, &cots.0, |i| choices[i])?;
        self.correlated_finish(ch, moduli, choices, cots)
    }

    /// Checks the moduli and draws the COTs (the corrections go with `correlated_finish`).
    fn correlated_begin(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        choices: &[bool],
    ) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        check_moduli(moduli)?;
        self.cots(ch, choices.len())
    }

    /// Receives the sender's messages; returns `k + c·x` per choice and modulus.
    fn correlated_finish(
        &self,
        ch: &mut Channel,
        moduli: &[u64],
        choices: &[bool],
        (t, serial): (Zeroizing<Vec<u128>>, u64),
    ) -> Result<Vec<u64>, Error> {
        let (n, w) = (choices.len(), moduli.len());
        let mut keys = Vec::with_capacity(n * w);
        receiver_pads(self.hash(), &t, serial, w, 1, |first, pads| {
            keys.extend(
                pads.iter()
                    .enumerate()
                    .map(|(o, &pad)| reduce(pad, moduli[(first * w + o) % w])),
            );
        });
        let widths: Vec<usize> = moduli.iter().map(|&m| bytes_for(m)).collect();
        let body = ch.recv(kind::CORRELATED, n * widths.iter().sum::<usize>())?;
        let mut r = Reader::new(&body);
        let mut out = Vec::with_capacity(n * w);
        let mut y = Vec::with_capacity(1);
        for (o, &k) in keys.iter().enumerate() {
            let m = moduli[o % w];
            y.clear();
            r.words_below("correlated OT correction", 1, widths[o % w], m, &mut y)?;
            // Branch-free in the choice: `k + c·y`.
            let cy = y[0] & 0u64.wrapping_sub(u64::from(choices[o / w]));
            out.push(add_mod(k, cy, m));
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
        if self.fill == 0 && width.is_multiple_of(8) {
            // Byte-aligned: the common case (`2^log_n · bits` a multiple of 8).
            self.out.extend_from_slice(&word.to_le_bytes()[..width / 8]);
            return;
        }
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
        if self.bit.is_multiple_of(8) && width.is_multiple_of(8) {
            let at = self.bit / 8;
            let mut word = [0u8; 16];
            word[..width / 8].copy_from_slice(&self.bytes[at..at + width / 8]);
            self.bit += width;
            return u128::from_le_bytes(word);
        }
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

/// One party's shares of `n` random triples with a common first operand, 64 per word:
/// `(a_A ⊕ a_B) ∧ (b_l,A ⊕ b_l,B) = c_l,A ⊕ c_l,B` for every lane `l`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharedTriples {
    /// Shares of the common operand `a`.
    pub a: Vec<u64>,
    /// Shares of `b_l`, one vector per lane.
    pub b: Vec<Vec<u64>>,
    /// Shares of `c_l = a ∧ b_l`, one vector per lane.
    pub c: Vec<Vec<u64>>,
}

impl std::fmt::Debug for SharedTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedTriples { .. }")
    }
}

/// Per lane: the random-OT bits `x_l = m_0 ⊕ m_1` and `m_0`, packed.
type Lanes = (Vec<Vec<u64>>, Vec<Vec<u64>>);

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

    /// Correlated OTs mod `moduli` in both directions in one exchange (two flights per party
    /// instead of three): this party sends `corr` as in [`Sender::send_correlated_mod`] (the
    /// peer chooses) and chooses `choices` as in [`Receiver::receive_correlated_mod`] (the peer
    /// sends). Returns (this party's shares as sender, its values as receiver). The peer calls
    /// this too, with its own `corr` and `choices`.
    ///
    /// # Errors
    /// As the two one-way calls.
    pub fn correlated_both(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        corr: &[u64],
        choices: &[bool],
    ) -> Result<(Vec<u64>, Vec<u64>), Error> {
        // Alice's direction first on both sides, as everywhere in the duplex; each party's
        // corrections follow its own COT trees on the wire.
        let (sent, received) = match self.role {
            Role::Alice => {
                let s = self.sender.correlated_begin(ch, moduli, corr)?;
                let r = self.receiver.correlated_begin(ch, moduli, choices)?;
                (s, r)
            }
            Role::Bob => {
                let r = self.receiver.correlated_begin(ch, moduli, choices)?;
                let s = self.sender.correlated_begin(ch, moduli, corr)?;
                (s, r)
            }
        };
        Receiver::send_fix(ch, &received.0, |i| choices[i])?;
        let shares = self.sender.correlated_finish(ch, moduli, corr, sent)?;
        let values = self
            .receiver
            .correlated_finish(ch, moduli, choices, received)?;
        Ok((shares, values))
    }

    /// Random OTs of `lanes`-bit messages from `n` COTs as sender: per lane `l`, bit `l` of
    /// `(m_0, m_1)` packed as `(x_l = m_0 ⊕ m_1, m_0)`.
    fn sender_bits(&mut self, ch: &mut Channel, n: usize, lanes: usize) -> Result<Lanes, Error> {
        let mut q = Zeroizing::new(vec![0u128; n]);
        self.sender.send_cot(ch, &mut q)?;
        let serial = self.sender.tweaks(n);
        let words = n.div_ceil(64);
        let (mut x, mut m0) = (
            vec![vec![0u64; words]; lanes],
            vec![vec![0u64; words]; lanes],
        );
        let sender = &self.sender;
        sender_pads(
            sender.hash(),
            sender.delta(),
            &q,
            |_| false,
            serial,
            1,
            1,
            |first, pads| {
                for (i, p) in pads.chunks_exact(2).enumerate() {
                    let (j, diff) = (first + i, p[0] ^ p[1]);
                    for l in 0..lanes {
                        x[l][j / 64] |= (((diff >> l) & 1) as u64) << (j % 64);
                        m0[l][j / 64] |= (((p[0] >> l) & 1) as u64) << (j % 64);
                    }
                }
            },
        );
        Ok((x, m0))
    }

    /// Random OTs of `lanes`-bit messages from `n` COTs as receiver: the choice bits `b` and,
    /// per lane `l`, bit `l` of `m_b`, packed.
    fn receiver_bits(
        &mut self,
        ch: &mut Channel,
        n: usize,
        lanes: usize,
    ) -> Result<(Vec<u64>, Vec<Vec<u64>>), Error> {
        let mut t = Zeroizing::new(vec![0u128; n]);
        self.receiver.receive_cot(ch, &mut t)?;
        let serial = self.receiver.tweaks(n);
        let words = n.div_ceil(64);
        let (mut b, mut mb) = (vec![0u64; words], vec![vec![0u64; words]; lanes]);
        for (i, &x) in t.iter().enumerate() {
            b[i / 64] |= ((x & 1) as u64) << (i % 64);
        }
        receiver_pads(self.receiver.hash(), &t, serial, 1, 1, |first, pads| {
            for (i, &p) in pads.iter().enumerate() {
                let j = first + i;
                for (l, mb) in mb.iter_mut().enumerate() {
                    mb[j / 64] |= (((p >> l) & 1) as u64) << (j % 64);
                }
            }
        });
        Ok((b, mb))
    }

    /// `n` random AND triples from one COT per direction each; no traffic beyond the COTs'.
    ///
    /// # Errors
    /// Channel and wire errors of the COT generation.
    pub fn and_triples(&mut self, ch: &mut Channel, n: usize) -> Result<BitTriples, Error> {
        let mut t = self.shared_triples(ch, n, 1)?;
        Ok(BitTriples {
            a: std::mem::take(&mut t.b[0]),
            b: std::mem::take(&mut t.a),
            c: std::mem::take(&mut t.c[0]),
        })
    }

    /// `n` random triples sharing their first operand over `lanes` second operands,
    /// `a ∧ b_l = c_l`, still from one COT per direction each (the COT's choice bit is `a`'s
    /// share, its `lanes` message bits the `b_l` shares): the millionaires' tree ANDs one `eq`
    /// with both the `lt` and the `eq` below it.
    ///
    /// # Errors
    /// Channel and wire errors of the COT generation.
    pub fn shared_triples(
        &mut self,
        ch: &mut Channel,
        n: usize,
        lanes: usize,
    ) -> Result<SharedTriples, Error> {
        // Direction of Alice's Δ first, on both sides.
        let ((x, m0), (y, my)) = match self.role {
            Role::Alice => {
                let s = self.sender_bits(ch, n, lanes)?;
                (s, self.receiver_bits(ch, n, lanes)?)
            }
            Role::Bob => {
                let r = self.receiver_bits(ch, n, lanes)?;
                (self.sender_bits(ch, n, lanes)?, r)
            }
        };
        let c = (0..lanes)
            .map(|l| {
                (0..y.len())
                    .map(|i| (x[l][i] & y[i]) ^ m0[l][i] ^ my[l][i])
                    .collect()
            })
            .collect();
        Ok(SharedTriples { a: y, b: x, c })
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
        Ok(self.and_shared(ch, x, &[y], n)?.remove(0))
    }

    /// Beaver ANDs of one shared operand with several: shares of `x ∧ y_l` for every `l`
    /// (each `⌈n/64⌉` words, bits beyond `n` zero), on [`Duplex::shared_triples`]. One round
    /// trip, `2(1 + ys.len())·n` bits in total.
    ///
    /// # Errors
    /// [`OtError::LengthMismatch`] for bad lengths; channel and wire errors.
    pub fn and_shared(
        &mut self,
        ch: &mut Channel,
        x: &[u64],
        ys: &[&[u64]],
        n: usize,
    ) -> Result<Vec<Vec<u64>>, Error> {
        let words = n.div_ceil(64);
        check_len("AND left operand", words, x.len())?;
        for y in ys {
            check_len("AND right operand", words, y.len())?;
        }
        let t = self.shared_triples(ch, n, ys.len())?;
        let mut mine = Vec::with_capacity(8 * words * (1 + ys.len()));
        for (x, a) in x.iter().zip(&t.a) {
            mine.extend_from_slice(&(x ^ a).to_le_bytes());
        }
        for (y, b) in ys.iter().zip(&t.b) {
            for (y, b) in y.iter().zip(b) {
                mine.extend_from_slice(&(y ^ b).to_le_bytes());
            }
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
        let mut open = vec![0u64; words * (1 + ys.len())];
        for w in open.iter_mut() {
            *w = r.u64()?;
        }
        r.finish()?;
        let tail = if n.is_multiple_of(64) {
            u64::MAX
        } else {
            (1u64 << (n % 64)) - 1
        };
        let alice = u64::from(self.role == Role::Alice).wrapping_neg();
        let d: Vec<u64> = (0..words).map(|i| open[i] ^ x[i] ^ t.a[i]).collect();
        Ok(ys
            .iter()
            .enumerate()
            .map(|(l, y)| {
                (0..words)
                    .map(|i| {
                        let e = open[(1 + l) * words + i] ^ y[i] ^ t.b[l][i];
                        let v = t.c[l][i] ^ (d[i] & t.b[l][i]) ^ (e & t.a[i]) ^ (d[i] & e & alice);
                        if i + 1 == words { v & tail } else { v }
                    })
                    .collect()
            })
            .collect())
    }
}
