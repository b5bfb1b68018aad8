//! OTs derived from Ferret COTs: chosen-message 1-of-2, 1-of-N of short messages and
//! correlated OT modulo `m` (see [the module documentation](super) for the derivations).

use zeroize::Zeroizing;

use super::ferret::{Receiver, Sender};
use super::kind;
use super::pads::{pieces, receiver_pads, sender_pads};
use crate::Error;
use crate::channel::Channel;
use crate::modm::{add_mod, bytes_per_value, check_modulus, reduce_block, sub_mod};
use crate::ot::{OtError, check_len};
use crate::wire::{BitWriter, pack_bits};

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

/// Checks that every value has at most `bits` bits.
fn check_short(what: &'static str, values: &[u8], bits: u32) -> Result<(), OtError> {
    match values.iter().find(|&&v| u32::from(v) >> bits != 0) {
        Some(&v) => Err(OtError::NotReduced {
            what,
            found: u64::from(v),
            p: 1 << bits,
        }),
        None => Ok(()),
    }
}

/// Mask of the `ℓ`-bit fields `x ∈ [0, N)` whose bit `i` is 1.
fn field_mask(log_n: u32, bits: u32, i: u32) -> u128 {
    let ones = (1u128 << bits) - 1;
    (0..1u32 << log_n)
        .filter(|x| (x >> i) & 1 == 1)
        .fold(0, |m, x| m | (ones << (x * bits)))
}

/// Index into [`field_masks`] of the mask of bit `i` for `2^log_n` fields of `bits` bits.
fn mask_index(log_n: u32, bits: u32, i: u32) -> usize {
    ((log_n as usize * 9) + bits as usize) * 8 + i as usize
}

/// [`field_mask`] for every valid shape (`log_n ≤ 7`, `bits ≤ 8`, bit `i < log_n`), flat, as
/// [`mask_index`] indexes it; zero elsewhere.
fn field_masks() -> Vec<u128> {
    let mut masks = vec![0u128; 8 * 9 * 8];
    for log_n in 1..=7 {
        for bits in 0..=8 {
            if check_one_of_n(log_n, bits).is_ok() {
                for i in 0..log_n {
                    masks[mask_index(log_n, bits, i)] = field_mask(log_n, bits, i);
                }
            }
        }
    }
    masks
}

/// The first COT of every OT of sizes `2^log_n[i]` (`log_n[i]` COTs each), and the total.
fn cot_offsets(log_n: &[u32]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(log_n.len() + 1);
    let mut at = 0;
    offsets.push(at);
    for &ln in log_n {
        at += ln as usize;
        offsets.push(at);
    }
    offsets
}

impl Sender {
    /// Receives the receiver's `n` choice corrections.
    fn corrections(ch: &mut Channel, n: usize) -> Result<Vec<bool>, Error> {
        ch.recv_with(kind::FIX, n.div_ceil(8), |r| {
            r.bits("choice corrections", n)
        })
    }

    /// Chosen-message OT of 128-bit strings: the peer's [`Receiver::receive_chosen`] learns
    /// `messages[i][c_i]` and nothing about the other. 32 bytes + 1 bit per OT on the wire.
    ///
    /// # Errors
    /// Channel and wire errors.
    pub fn send_chosen(&mut self, ch: &mut Channel, messages: &[[u128; 2]]) -> Result<(), Error> {
        let n = messages.len();
        let (q, serial) = self.cots_and_serial(ch, n)?;
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
        check_short("1-of-N message", messages, bits)?;
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
        self.send_one_of_n_mixed(ch, &vec![log_n; words.len()], bits, words)
    }

    /// [`Sender::send_one_of_n_packed`] with a size `2^log_n[i]` per OT as well (both parties
    /// know them): OT `i` takes `log_n[i]` COTs, the COTs of the OTs in order. The same bytes
    /// on the wire as separate calls per shape, in one exchange.
    ///
    /// # Errors
    /// As [`Sender::send_one_of_n_packed`]; [`OtError::LengthMismatch`] if `log_n` and `words`
    /// differ in length.
    pub fn send_one_of_n_mixed(
        &mut self,
        ch: &mut Channel,
        log_n: &[u32],
        bits: &[u32],
        words: &[u128],
    ) -> Result<(), Error> {
        self.send_one_of_n_mixed_with(ch, log_n, bits, |_, _| Ok(words))
    }

    /// [`Sender::send_one_of_n_mixed`] with the messages computed by `words` once the COTs
    /// are drawn, before the corrections are received: the receiver expands its COTs (and
    /// sends its corrections) meanwhile. `words` may also run work of its own on this sender
    /// and channel first (such as [`Sender::buffer_ahead`]; its frames go before the
    /// messages).
    ///
    /// # Errors
    /// As [`Sender::send_one_of_n_mixed`]; those of `words`.
    pub fn send_one_of_n_mixed_with<W: AsRef<[u128]>>(
        &mut self,
        ch: &mut Channel,
        log_n: &[u32],
        bits: &[u32],
        words: impl FnOnce(&mut Self, &mut Channel) -> Result<W, Error>,
    ) -> Result<(), Error> {
        check_len("1-of-N sizes", bits.len(), log_n.len())?;
        for (&ln, &b) in log_n.iter().zip(bits) {
            check_one_of_n(ln, b)?;
        }
        let n = bits.len();
        let offsets = cot_offsets(log_n);
        // The OTs' COTs as a draw would generate them, their tweaks, then held in place while
        // `words` may buffer more behind them.
        self.buffer_ahead(ch, offsets[n])?;
        let serial = self.tweaks(offsets[n]);
        self.hold(offsets[n]);
        let words = words(self, ch)?;
        let words = words.as_ref();
        check_len("1-of-N message widths", words.len(), bits.len())?;
        for ((&ln, &b), &w) in log_n.iter().zip(bits).zip(words) {
            check_one_of_n(ln, b)?;
            let width = (b as usize) << ln;
            if width < 128 && w >> width != 0 {
                return Err(OtError::NotReduced {
                    what: "packed 1-of-N messages",
                    found: (w >> width) as u64,
                    p: 1,
                }
                .into());
            }
        }
        let e = Self::corrections(ch, offsets[n])?;
        let masks = field_masks();
        // The ciphertext words in parallel pieces of whole OTs, then packed in order. Pads
        // come in blocks that may split an OT: its word is carried over to the next block.
        let delta = self.delta();
        let (q, hash) = self.held();
        let parts = pieces(n, 1, |r| {
            let mut cipher = Vec::with_capacity(r.len());
            if r.is_empty() {
                return cipher;
            }
            let (c0, c1) = (offsets[r.start], offsets[r.end]);
            let (mut i, mut j, mut word) = (r.start, 0u32, words[r.start]);
            sender_pads(
                hash,
                delta,
                &q[c0..c1],
                |x| e[c0 + x],
                serial + c0 as u64,
                1,
                1,
                |_, keys| {
                    for k in keys.chunks_exact(2) {
                        // Fields whose bit j is 1 take the pad of the receiver's choice 1.
                        let mask = masks[mask_index(log_n[i], bits[i], j)];
                        word ^= (k[0] & !mask) | (k[1] & mask);
                        j += 1;
                        if j == log_n[i] {
                            cipher.push(word);
                            (i, j) = (i + 1, 0);
                            word = words.get(i).copied().unwrap_or(0);
                        }
                    }
                },
            );
            cipher
        });
        self.release();
        let total: usize = bits
            .iter()
            .zip(log_n)
            .map(|(&b, &ln)| (b as usize) << ln)
            .sum();
        let mut body = Vec::with_capacity(total.div_ceil(8));
        let mut out = BitWriter::new(&mut body);
        for ((&word, &b), &ln) in parts.iter().flatten().zip(bits).zip(log_n) {
            out.put(word, (b as usize) << ln);
        }
        out.finish();
        ch.send(kind::ONE_OF_N, &body)?;
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
    pub(super) fn correlated_begin(
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
        self.cots_and_serial(ch, corr.len() / w)
    }

    /// Receives the corrections and sends the correlated OT's messages; returns the shares.
    pub(super) fn correlated_finish(
        &self,
        ch: &mut Channel,
        moduli: &[u64],
        corr: &[u64],
        (q, serial): (Zeroizing<Vec<u128>>, u64),
    ) -> Result<Vec<u64>, Error> {
        let (n, w) = (q.len(), moduli.len());
        let e = Self::corrections(ch, n)?;
        let widths: Vec<usize> = moduli.iter().map(|&m| bytes_per_value(m)).collect();
        let (hash, delta) = (self.hash(), self.delta());
        // Pieces of whole OTs: each writes its OTs' corrections and shares, concatenated in
        // order below.
        let parts = pieces(n, 1, |r| {
            let mut body = Vec::with_capacity(r.len() * widths.iter().sum::<usize>());
            let mut shares = Zeroizing::new(Vec::with_capacity(r.len() * w));
            sender_pads(
                hash,
                delta,
                &q[r.clone()],
                |i| e[r.start + i],
                serial + r.start as u64,
                w,
                1,
                |first, pads| {
                    for (o, p) in pads.chunks_exact(2).enumerate() {
                        let j = o % w;
                        let m = moduli[j];
                        let (k0, k1) = (reduce_block(p[0], m), reduce_block(p[1], m));
                        let y = add_mod(corr[(r.start + first) * w + o], sub_mod(k0, k1, m), m);
                        body.extend_from_slice(&y.to_le_bytes()[..widths[j]]);
                        shares.push(sub_mod(0, k0, m));
                    }
                },
            );
            (body, shares)
        });
        let body: Vec<u8> = parts.iter().flat_map(|p| p.0.iter().copied()).collect();
        let shares: Vec<u64> = parts.iter().flat_map(|p| p.1.iter().copied()).collect();
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
        choice: impl Fn(usize) -> bool + Sync,
    ) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        let cots = self.cots_and_serial(ch, n)?;
        Self::send_fix(ch, &cots.0, choice)?;
        Ok(cots)
    }

    /// Sends the corrections `c_i ⊕ b_i` of the COTs `t` for the choices `choice(i)`.
    pub(super) fn send_fix(
        ch: &mut Channel,
        t: &[u128],
        choice: impl Fn(usize) -> bool + Sync,
    ) -> Result<(), Error> {
        // Pieces of whole bytes, packed in parallel and joined in order.
        let parts = pieces(t.len(), 8, |r| {
            let start = r.start;
            pack_bits(
                t[r].iter()
                    .enumerate()
                    .map(|(i, &t)| choice(start + i) ^ (t & 1 == 1)),
            )
        });
        let fix: Vec<u8> = parts.concat();
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
        let y = ch.recv_with(kind::CHOSEN, 32 * n, |r| {
            r.blocks("chosen OT ciphertexts", 2 * n)
        })?;
        Ok(choices
            .iter()
            .zip(y.chunks_exact(2))
            .zip(pads.iter())
            .map(|((&c, y), &pad)| {
                // Branch-free in the choice.
                let mask = 0u128.wrapping_sub(u128::from(c));
                (y[0] ^ ((y[0] ^ y[1]) & mask)) ^ pad
            })
            .collect())
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
        self.receive_one_of_n_mixed(ch, &vec![log_n; choices.len()], bits, choices)
    }

    /// [`Receiver::receive_one_of_n_fields`] with a size `2^log_n[i]` per OT, the peer's
    /// [`Sender::send_one_of_n_mixed`] using the same `log_n` and `bits`
    /// (`choices[i] < 2^log_n[i]`).
    ///
    /// # Errors
    /// [`OtError`] for a bad shape, size or width list or choice; channel and wire errors.
    pub fn receive_one_of_n_mixed(
        &mut self,
        ch: &mut Channel,
        log_n: &[u32],
        bits: &[u32],
        choices: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.receive_one_of_n_mixed_then(ch, log_n, bits, choices, |_, _| Ok(()))
    }

    /// [`Receiver::receive_one_of_n_mixed`] running `meanwhile` (on this receiver and the
    /// channel) after the corrections are sent and before the messages are received: work of
    /// this party's that does not need them, done while the sender computes them (its frames
    /// go after the corrections).
    ///
    /// # Errors
    /// As [`Receiver::receive_one_of_n_mixed`]; those of `meanwhile`.
    pub fn receive_one_of_n_mixed_then(
        &mut self,
        ch: &mut Channel,
        log_n: &[u32],
        bits: &[u32],
        choices: &[u8],
        meanwhile: impl FnOnce(&mut Self, &mut Channel) -> Result<(), Error>,
    ) -> Result<Vec<u8>, Error> {
        check_len("1-of-N message widths", choices.len(), bits.len())?;
        check_len("1-of-N sizes", choices.len(), log_n.len())?;
        for ((&ln, &b), &c) in log_n.iter().zip(bits).zip(choices) {
            check_one_of_n(ln, b)?;
            check_short("1-of-N choice", &[c], ln)?;
        }
        let n = choices.len();
        let offsets = cot_offsets(log_n);
        // The choice bit of every COT, OT by OT.
        let choice_bits: Zeroizing<Vec<bool>> = Zeroizing::new(
            choices
                .iter()
                .zip(log_n)
                .flat_map(|(&c, &ln)| (0..ln).map(move |j| (c >> j) & 1 == 1))
                .collect(),
        );
        // The COTs as `cots_fixed` would draw them, held in place while `meanwhile` may buffer
        // more behind them.
        self.buffer_ahead(ch, offsets[n])?;
        let serial = self.tweaks(offsets[n]);
        self.hold(offsets[n]);
        Self::send_fix(ch, self.held().0, |j| choice_bits[j])?;
        meanwhile(self, ch)?;
        // One pad per OT: the XOR of its `log_n[i]` keys (blocks may split an OT).
        let (t, hash) = self.held();
        let parts = pieces(n, 1, |r| {
            let mut pads = Zeroizing::new(Vec::with_capacity(r.len()));
            let (c0, c1) = (offsets[r.start], offsets[r.end]);
            let (mut i, mut j, mut acc) = (r.start, 0u32, 0u128);
            receiver_pads(hash, &t[c0..c1], serial + c0 as u64, 1, 1, |_, keys| {
                for &k in keys {
                    acc ^= k;
                    j += 1;
                    if j == log_n[i] {
                        pads.push(acc);
                        (i, j, acc) = (i + 1, 0, 0);
                    }
                }
            });
            pads
        });
        self.release();
        let pads: Zeroizing<Vec<u128>> =
            Zeroizing::new(parts.iter().flat_map(|p| p.iter().copied()).collect());
        let total: usize = bits
            .iter()
            .zip(log_n)
            .map(|(&b, &ln)| (b as usize) << ln)
            .sum();
        ch.recv_with(kind::ONE_OF_N, total.div_ceil(8), |r| {
            let mut fields = r.bit_fields("1-of-N ciphertexts", total)?;
            let out = choices
                .iter()
                .zip(bits.iter().zip(log_n))
                .zip(pads.iter())
                .map(|((&c, (&b, &ln)), &pad)| {
                    let word = fields.get((b as usize) << ln)? ^ pad;
                    Ok(((word >> (u32::from(c) * b)) & ((1u128 << b) - 1)) as u8)
                })
                .collect::<Result<_, _>>()?;
            fields.finish()?;
            Ok(out)
        })
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
    pub(super) fn correlated_begin(
        &mut self,
        ch: &mut Channel,
        moduli: &[u64],
        choices: &[bool],
    ) -> Result<(Zeroizing<Vec<u128>>, u64), Error> {
        check_moduli(moduli)?;
        self.cots_and_serial(ch, choices.len())
    }

    /// Receives the sender's messages; returns `k + c·x` per choice and modulus.
    pub(super) fn correlated_finish(
        &self,
        ch: &mut Channel,
        moduli: &[u64],
        choices: &[bool],
        (t, serial): (Zeroizing<Vec<u128>>, u64),
    ) -> Result<Vec<u64>, Error> {
        let (n, w) = (choices.len(), moduli.len());
        let hash = self.hash();
        let parts = pieces(n, 1, |r| {
            let mut keys = Zeroizing::new(Vec::with_capacity(r.len() * w));
            receiver_pads(
                hash,
                &t[r.clone()],
                serial + r.start as u64,
                w,
                1,
                |_, pads| {
                    // Every block starts at a whole OT, so its pad `o` has modulus `o mod w`.
                    keys.extend(
                        pads.iter()
                            .enumerate()
                            .map(|(o, &pad)| reduce_block(pad, moduli[o % w])),
                    );
                },
            );
            keys
        });
        let keys: Zeroizing<Vec<u64>> =
            Zeroizing::new(parts.iter().flat_map(|p| p.iter().copied()).collect());
        let widths: Vec<usize> = moduli.iter().map(|&m| bytes_per_value(m)).collect();
        ch.recv_with(kind::CORRELATED, n * widths.iter().sum::<usize>(), |r| {
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
            Ok(out)
        })
    }
}
