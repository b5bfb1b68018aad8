//! IKNP OT extension (Ishai, Kilian, Nissim, Petrank, "Extending oblivious transfers
//! efficiently", CRYPTO 2003), semi-honest, κ = 128, in the correlated-OT form of Asharov,
//! Lindell, Schneider, Zohner (CCS 2013) with the sender's base-OT choice vector as global `Δ`.
//!
//! Per batch of `n` OTs (`m = ⌈n/128⌉` blocks): the receiver with packed choices `r` expands
//! column `j` as `t^j = G(k_0^j)`, sends `u^j = t^j ⊕ G(k_1^j) ⊕ r`; the sender computes
//! `q^j = G(k_{Δ_j}^j) ⊕ Δ_j·u^j = t^j ⊕ Δ_j·r`. Transposing the 128 × n bit matrices gives rows
//! with `q_i = t_i ⊕ r_i·Δ`. `G` is AES-128-CTR keyed by the base-OT key, continuing across
//! batches, so every OT of a session uses fresh pseudorandom bits.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use subtle::{Choice, ConditionallySelectable};
use zeroize::{Zeroize, Zeroizing};

use bunet_kernels::aes_hash::FixedKeyHash;

use super::{OtError, base, check_len, hash, kind, pack_choices, transpose};
use crate::Error;
use crate::channel::Channel;
use crate::modm::{add_mod, bytes_per_value, check_modulus, reduce_block, sub_mod};
use crate::prg::Prg;
use crate::secret::{redacted_debug, zeroize_on_drop};
use crate::wire::{Reader, put_words};

/// OTs per extension message (a multiple of 128): 512 KiB of columns per batch, which stays in
/// the L2 cache of current cores.
pub const BATCH: usize = 1 << 15;

/// OTs per batch of the mod-`p` variants: they keep four more arrays per OT alive, so a smaller
/// batch keeps the working set in L2.
const MOD_BATCH: usize = 1 << 13;

/// Security parameter κ: base OTs per session and bits per OT string.
const KAPPA: usize = 128;

fn blocks_for(n: usize) -> usize {
    n.div_ceil(KAPPA)
}

/// Words between columns of `m` words: one cache line more than needed, so that gathering one
/// word from each of the 128 columns does not hit a single cache set (a 4 KiB stride would).
fn stride_for(m: usize) -> usize {
    m + 4
}

/// `out[k] = AES_key(counter + k)`, little-endian.
fn expand(cipher: &Aes128, counter: u64, out: &mut [u128]) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = (u128::from(counter) + k as u128).to_le();
    }
    let bytes: &mut [[u8; 16]] = bytemuck::cast_slice_mut(out);
    cipher.encrypt_blocks(aes::Block::cast_slice_from_core_mut(bytes));
    for o in out.iter_mut() {
        *o = u128::from_le(*o);
    }
}

/// `out[k] = AES_key(counter + k)` as little-endian bytes.
fn expand_bytes(cipher: &Aes128, counter: u64, out: &mut [[u8; 16]]) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = (u128::from(counter) + k as u128).to_le_bytes();
    }
    cipher.encrypt_blocks(aes::Block::cast_slice_from_core_mut(out));
}

/// Transposes column-major `cols` (128 columns, `stride` words apart) into `out` (row `i` =
/// OT `i`), writing only the first `out.len()` rows.
fn transpose_columns(cols: &[u128], stride: usize, out: &mut [u128]) {
    let mut half = [0u64; 256];
    for (w, chunk) in out.chunks_mut(KAPPA).enumerate() {
        transpose::load(&mut half, |j| cols[j * stride + w]);
        transpose::transpose_halves(&mut half);
        transpose::store(&half, |r, x| {
            if let Some(o) = chunk.get_mut(r) {
                *o = x;
            }
        });
    }
    half.zeroize();
}

fn check_reduced(what: &'static str, values: &[u64], p: u64) -> Result<(), OtError> {
    match values.iter().find(|&&v| v >= p) {
        Some(&found) => Err(OtError::NotReduced { what, found, p }),
        None => Ok(()),
    }
}

/// The sender's side of an IKNP session: it knows `Δ` and, per OT, the zero-message `q_i`
/// (the one-message is `q_i ⊕ Δ`).
///
/// # Security
/// Semi-honest; see [the module documentation](super). `Δ`, the column keys and all outputs are
/// secret and erased on drop.
pub struct Sender {
    delta: u128,
    prgs: Vec<Aes128>,
    counter: u64,
    hash: FixedKeyHash,
    cols: Vec<u128>,
    q: Zeroizing<Vec<u128>>,
    hashed: Zeroizing<Vec<u128>>,
}

redacted_debug!(Sender);
zeroize_on_drop!(Sender { delta, cols });

impl Sender {
    /// Sets up a session with global correlation `delta`: runs 128 base OTs as their receiver,
    /// choosing the bits of `delta`. The peer runs [`Receiver::setup`]. A garbler that wants
    /// `Δ` as its free-XOR offset sets its least significant bit to 1 before calling.
    ///
    /// # Errors
    /// Channel and wire errors of the base OTs.
    pub fn setup(ch: &mut Channel, delta: u128, prg: &mut Prg) -> Result<Self, Error> {
        let choices: Vec<bool> = (0..KAPPA).map(|j| (delta >> j) & 1 == 1).collect();
        let mut keys = base::receive(ch, prg, &choices)?;
        let prgs = keys
            .iter()
            .map(|k| Aes128::new(&k.to_le_bytes().into()))
            .collect();
        keys.zeroize();
        Ok(Self {
            delta,
            prgs,
            counter: 0,
            hash: FixedKeyHash::new(),
            cols: Vec::new(),
            q: Zeroizing::new(Vec::new()),
            hashed: Zeroizing::new(Vec::new()),
        })
    }

    /// The global correlation `Δ`.
    pub fn delta(&self) -> u128 {
        self.delta
    }

    /// One batch: receives the receiver's columns and writes `q_i` for `out.len() <= BATCH` OTs.
    /// Returns the tweak (global OT index) of the first OT.
    fn extend_batch(&mut self, ch: &mut Channel, out: &mut [u128]) -> Result<u64, Error> {
        let n = out.len();
        let m = blocks_for(n);
        let body = ch.recv(kind::EXTEND, 8 + KAPPA * m * 16)?;
        let mut r = Reader::new(&body);
        r.count_exact("extension batch", n)?;
        let u = r.blocks_borrowed("extension columns", KAPPA * m)?;
        r.finish()?;
        let stride = stride_for(m);
        self.cols.resize(KAPPA * stride, 0);
        for (j, (col, u_col)) in self
            .cols
            .chunks_exact_mut(stride)
            .zip(u.chunks_exact(m))
            .enumerate()
        {
            let col = &mut col[..m];
            expand(&self.prgs[j], self.counter, col);
            let mask = 0u128.wrapping_sub((self.delta >> j) & 1);
            for (q, &u) in col.iter_mut().zip(u_col) {
                *q ^= u & mask;
            }
        }
        transpose_columns(&self.cols, stride, out);
        let tweak = self.counter * KAPPA as u64;
        self.counter += m as u64;
        Ok(tweak)
    }

    /// Correlated OT: fills `out[i]` with the zero-message `q_i`; the one-message is
    /// `q_i ⊕ Δ` and the receiver with choice `b_i` obtains `q_i ⊕ b_i·Δ`. The peer runs
    /// [`Receiver::receive_correlated`] with `out.len()` choices.
    ///
    /// # Errors
    /// Channel errors; [`WireError`] if a batch has the wrong length.
    pub fn send_correlated(&mut self, ch: &mut Channel, out: &mut [u128]) -> Result<(), Error> {
        for chunk in out.chunks_mut(BATCH) {
            self.extend_batch(ch, chunk)?;
        }
        Ok(())
    }

    /// Random OT: returns `n` random message pairs `(H(q_i, i), H(q_i ⊕ Δ, i))` with the
    /// tweakable correlation-robust hash; the receiver learns the one it chose.
    ///
    /// # Errors
    /// As [`Sender::send_correlated`].
    pub fn send_random(&mut self, ch: &mut Channel, n: usize) -> Result<Vec<[u128; 2]>, Error> {
        let mut out = vec![[0u128; 2]; n];
        let mut q = std::mem::take(&mut self.q);
        for chunk in out.chunks_mut(BATCH) {
            q.resize(chunk.len(), 0);
            let tweak = self.extend_batch(ch, &mut q)?;
            let flat: &mut [u128] = bytemuck::cast_slice_mut(chunk);
            hash::hash_pairs(&self.hash, &q, self.delta, tweak, flat);
        }
        self.q = q;
        Ok(out)
    }

    /// Chosen-message OT of 128-bit strings: the receiver learns `messages[i][b_i]` and nothing
    /// about the other message. 48 bytes per OT on the wire.
    ///
    /// # Errors
    /// As [`Sender::send_correlated`].
    pub fn send_chosen(&mut self, ch: &mut Channel, messages: &[[u128; 2]]) -> Result<(), Error> {
        let mut q = std::mem::take(&mut self.q);
        let mut pads = std::mem::take(&mut self.hashed);
        let mut body = Vec::new();
        for chunk in messages.chunks(BATCH) {
            q.resize(chunk.len(), 0);
            let tweak = self.extend_batch(ch, &mut q)?;
            pads.resize(2 * chunk.len(), 0);
            hash::hash_pairs(&self.hash, &q, self.delta, tweak, &mut pads);
            body.resize(8 + 32 * chunk.len(), 0);
            let (count, cts) = body.split_at_mut(8);
            count.copy_from_slice(&(chunk.len() as u64).to_le_bytes());
            for ((msg, pad), ct) in chunk
                .iter()
                .zip(pads.chunks_exact(2))
                .zip(cts.chunks_exact_mut(32))
            {
                ct[..16].copy_from_slice(&(msg[0] ^ pad[0]).to_le_bytes());
                ct[16..].copy_from_slice(&(msg[1] ^ pad[1]).to_le_bytes());
            }
            ch.send(kind::CHOSEN, &body)?;
            ch.flush()?;
        }
        self.q = q;
        self.hashed = pads;
        Ok(())
    }

    /// Hashes the batch's OTs to values mod `p`: `h[2i + c] = H(q_i ⊕ c·Δ, i) mod p`.
    fn mod_pads(
        &mut self,
        ch: &mut Channel,
        n: usize,
        p: u64,
        h: &mut Vec<u64>,
    ) -> Result<(), Error> {
        let mut q = std::mem::take(&mut self.q);
        q.resize(n, 0);
        let tweak = self.extend_batch(ch, &mut q)?;
        let mut hashed = std::mem::take(&mut self.hashed);
        hashed.resize(2 * n, 0);
        hash::hash_pairs(&self.hash, &q, self.delta, tweak, &mut hashed);
        h.clear();
        h.extend(hashed.iter().map(|&x| reduce_block(x, p)));
        self.q = q;
        self.hashed = hashed;
        Ok(())
    }

    /// Chosen-message OT of values modulo `p`: the receiver learns `messages[i][b_i]`.
    /// `2⌈log2 p⌉` bits (rounded up to bytes) per OT on top of the extension.
    ///
    /// # Errors
    /// [`OtError`] if `p` is out of range or a message is not below `p`; channel and wire errors.
    pub fn send_chosen_mod(
        &mut self,
        ch: &mut Channel,
        messages: &[[u64; 2]],
        p: u64,
    ) -> Result<(), Error> {
        check_modulus(p)?;
        check_reduced("chosen message", bytemuck::cast_slice(messages), p)?;
        let width = bytes_per_value(p);
        let mut h = Vec::new();
        let mut words = Vec::new();
        let mut body = Vec::new();
        for chunk in messages.chunks(MOD_BATCH) {
            self.mod_pads(ch, chunk.len(), p, &mut h)?;
            words.clear();
            for (msg, pad) in chunk.iter().zip(h.chunks_exact(2)) {
                words.push(add_mod(msg[0], pad[0], p));
                words.push(add_mod(msg[1], pad[1], p));
            }
            send_mod_batch(ch, &mut body, chunk.len(), &words, width)?;
        }
        h.zeroize();
        Ok(())
    }

    /// Additively correlated OT modulo `p` (the OT of Gilboa's multiplication): returns `s_i`
    /// uniform; the receiver with choice `b_i` obtains `s_i + b_i·x_i mod p`. One correction of
    /// `⌈log2 p⌉` bits (rounded up to bytes) per OT on top of the extension.
    ///
    /// # Errors
    /// [`OtError`] if `p` is out of range or an `x_i` is not below `p`; channel and wire errors.
    pub fn send_correlated_mod(
        &mut self,
        ch: &mut Channel,
        x: &[u64],
        p: u64,
    ) -> Result<Vec<u64>, Error> {
        check_modulus(p)?;
        check_reduced("correlation", x, p)?;
        let width = bytes_per_value(p);
        let mut out = Vec::with_capacity(x.len());
        let mut h = Vec::new();
        let mut words = Vec::new();
        let mut body = Vec::new();
        for chunk in x.chunks(MOD_BATCH) {
            self.mod_pads(ch, chunk.len(), p, &mut h)?;
            words.clear();
            for (&x, pad) in chunk.iter().zip(h.chunks_exact(2)) {
                let s = pad[0];
                out.push(s);
                words.push(sub_mod(sub_mod(pad[1], s, p), x, p));
            }
            send_mod_batch(ch, &mut body, chunk.len(), &words, width)?;
        }
        h.zeroize();
        Ok(out)
    }
}

/// Sends one batch of `n` OTs' mod-`p` words (`width` bytes each) as one `MOD_P` message: the
/// count, then the words; `body` is the reused buffer.
fn send_mod_batch(
    ch: &mut Channel,
    body: &mut Vec<u8>,
    n: usize,
    words: &[u64],
    width: usize,
) -> Result<(), Error> {
    body.clear();
    body.extend_from_slice(&(n as u64).to_le_bytes());
    put_words(body, words, width);
    ch.send(kind::MOD_P, body)?;
    ch.flush()?;
    Ok(())
}

/// The receiver's side of an IKNP session: per OT it chooses `b_i` and learns `q_i ⊕ b_i·Δ`.
///
/// # Security
/// Semi-honest; see [the module documentation](super). Its choices are hidden from the sender
/// (each column it sends is masked by a fresh pseudorandom pad); the column keys and outputs are
/// secret and erased on drop.
pub struct Receiver {
    prgs: Vec<[Aes128; 2]>,
    counter: u64,
    hash: FixedKeyHash,
    cols: Vec<u128>,
    body: Vec<u8>,
    t: Zeroizing<Vec<u128>>,
    hashed: Zeroizing<Vec<u128>>,
    h: Zeroizing<Vec<u64>>,
    words: Vec<u64>,
}

redacted_debug!(Receiver);
zeroize_on_drop!(Receiver { cols });

impl Receiver {
    /// Sets up a session: runs 128 base OTs as their sender. The peer runs [`Sender::setup`].
    ///
    /// # Errors
    /// Channel and wire errors of the base OTs.
    pub fn setup(ch: &mut Channel, prg: &mut Prg) -> Result<Self, Error> {
        let mut keys = base::send(ch, prg, KAPPA)?;
        let prgs = keys
            .iter()
            .map(|k| {
                [
                    Aes128::new(&k[0].to_le_bytes().into()),
                    Aes128::new(&k[1].to_le_bytes().into()),
                ]
            })
            .collect();
        keys.zeroize();
        Ok(Self {
            prgs,
            counter: 0,
            hash: FixedKeyHash::new(),
            cols: Vec::new(),
            body: Vec::new(),
            t: Zeroizing::new(Vec::new()),
            hashed: Zeroizing::new(Vec::new()),
            h: Zeroizing::new(Vec::new()),
            words: Vec::new(),
        })
    }

    /// One batch of `out.len() <= BATCH` OTs with packed `choices` (`⌈n/128⌉` words): sends the
    /// masked columns and writes `t_i` to `out`. Returns the tweak of the first OT.
    fn extend_batch(
        &mut self,
        ch: &mut Channel,
        choices: &[u128],
        out: &mut [u128],
    ) -> Result<u64, Error> {
        let n = out.len();
        let m = blocks_for(n);
        debug_assert_eq!(choices.len(), m);
        let stride = stride_for(m);
        self.cols.resize(KAPPA * stride, 0);
        self.body.resize(8 + KAPPA * m * 16, 0);
        let (count, u) = self.body.split_at_mut(8);
        count.copy_from_slice(&(n as u64).to_le_bytes());
        for (j, (col, u_col)) in self
            .cols
            .chunks_exact_mut(stride)
            .zip(u.chunks_exact_mut(m * 16))
            .enumerate()
        {
            let col = &mut col[..m];
            expand(&self.prgs[j][0], self.counter, col);
            // G(k_1^j) straight into the message, then u = G(k_1) ⊕ t ⊕ r in place.
            let u_blocks: &mut [[u8; 16]] = bytemuck::cast_slice_mut(u_col);
            expand_bytes(&self.prgs[j][1], self.counter, u_blocks);
            for ((u, t), r) in u_blocks.iter_mut().zip(col.iter()).zip(choices) {
                *u = (u128::from_le_bytes(*u) ^ t ^ r).to_le_bytes();
            }
        }
        ch.send(kind::EXTEND, &self.body)?;
        ch.flush()?;
        transpose_columns(&self.cols, stride, out);
        let tweak = self.counter * KAPPA as u64;
        self.counter += m as u64;
        Ok(tweak)
    }

    /// Correlated OT with packed choices: bit `k` of `choices[w]` is the choice of OT
    /// `128 w + k`; `out[i]` receives `q_i ⊕ b_i·Δ`. The peer runs [`Sender::send_correlated`]
    /// with `out.len()` outputs.
    ///
    /// # Errors
    /// [`OtError::LengthMismatch`] unless `choices.len() == ⌈out.len()/128⌉`; channel errors.
    pub fn receive_correlated_packed(
        &mut self,
        ch: &mut Channel,
        choices: &[u128],
        out: &mut [u128],
    ) -> Result<(), Error> {
        check_len("packed choices", blocks_for(out.len()), choices.len())?;
        for (chunk, c) in out.chunks_mut(BATCH).zip(choices.chunks(BATCH / KAPPA)) {
            self.extend_batch(ch, c, chunk)?;
        }
        Ok(())
    }

    /// Correlated OT: `out[i]` receives `q_i ⊕ choices[i]·Δ`.
    ///
    /// # Errors
    /// [`OtError::LengthMismatch`] unless `choices` and `out` have equal lengths; channel errors.
    pub fn receive_correlated(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
        out: &mut [u128],
    ) -> Result<(), Error> {
        check_len("choices", out.len(), choices.len())?;
        self.receive_correlated_packed(ch, &pack_choices(choices), out)
    }

    /// Random OT: returns `H(t_i, i)`, the message of the sender's [`Sender::send_random`] pair
    /// selected by `choices[i]`.
    ///
    /// # Errors
    /// As [`Receiver::receive_correlated`].
    pub fn receive_random(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<u128>, Error> {
        self.random_batches(ch, choices, |_, _, _| Ok(()))
    }

    /// Chosen-message OT of 128-bit strings: returns `messages[i][choices[i]]` of the sender's
    /// [`Sender::send_chosen`].
    ///
    /// # Errors
    /// Channel errors; [`WireError`] if a ciphertext batch has the wrong length.
    pub fn receive_chosen(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<u128>, Error> {
        self.random_batches(ch, choices, |ch, chunk, bits| {
            let n = chunk.len();
            let cts = ch.recv_with(kind::CHOSEN, 8 + 32 * n, |r| {
                r.count_exact("chosen OT batch", n)?;
                r.blocks("chosen OT ciphertexts", 2 * n)
            })?;
            for ((o, ct), &b) in chunk.iter_mut().zip(cts.chunks_exact(2)).zip(bits) {
                let y = u128::conditional_select(&ct[0], &ct[1], Choice::from(u8::from(b)));
                *o ^= y;
            }
            Ok(())
        })
    }

    /// Random OTs batch by batch (extension, then `H(t_i, i)` into the output); after each
    /// batch, `then(ch, batch outputs, batch choices)` (the chosen-message variant unmasks there).
    fn random_batches(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
        mut then: impl FnMut(&mut Channel, &mut [u128], &[bool]) -> Result<(), Error>,
    ) -> Result<Vec<u128>, Error> {
        let packed = pack_choices(choices);
        let mut out = vec![0u128; choices.len()];
        let mut t = vec![0u128; BATCH.min(choices.len())];
        for ((chunk, c), bits) in out
            .chunks_mut(BATCH)
            .zip(packed.chunks(BATCH / KAPPA))
            .zip(choices.chunks(BATCH))
        {
            let t = &mut t[..chunk.len()];
            let tweak = self.extend_batch(ch, c, t)?;
            hash::hash_many(&self.hash, t, tweak, chunk);
            then(ch, chunk, bits)?;
        }
        t.zeroize();
        Ok(out)
    }

    /// One batch of `n` OTs for the mod-`p` variants, with packed choices: extension, then
    /// `self.h[i] = H(t_i, i) mod p` and `self.words` = the sender's `per_ot` words per OT (each
    /// checked `< p`).
    fn mod_batch(
        &mut self,
        ch: &mut Channel,
        packed: &[u128],
        n: usize,
        p: u64,
        per_ot: usize,
    ) -> Result<(), Error> {
        let mut t = std::mem::take(&mut self.t);
        t.resize(n, 0);
        let tweak = self.extend_batch(ch, packed, &mut t)?;
        let mut hashed = std::mem::take(&mut self.hashed);
        hashed.resize(n, 0);
        hash::hash_many(&self.hash, &t, tweak, &mut hashed);
        self.h.clear();
        self.h.extend(hashed.iter().map(|&x| reduce_block(x, p)));
        self.t = t;
        self.hashed = hashed;
        let width = bytes_per_value(p);
        let words = &mut self.words;
        words.clear();
        ch.recv_with(kind::MOD_P, 8 + per_ot * width * n, |r| {
            r.count_exact("mod-p OT batch", n)?;
            r.words_below("mod-p OT value", per_ot * n, width, p, words)
        })
    }

    /// Chosen-message OT of values modulo `p`: returns `messages[i][choices[i]]` of the
    /// sender's [`Sender::send_chosen_mod`].
    ///
    /// # Errors
    /// [`OtError`] if `p` is out of range; channel errors; [`WireError`] if a batch has the
    /// wrong length or a value is not below `p`.
    pub fn receive_chosen_mod(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
        p: u64,
    ) -> Result<Vec<u64>, Error> {
        check_modulus(p)?;
        let mut out = Vec::with_capacity(choices.len());
        for bits in choices.chunks(MOD_BATCH) {
            self.mod_batch(ch, &pack_choices(bits), bits.len(), p, 2)?;
            for ((&b, y), &pad) in bits
                .iter()
                .zip(self.words.chunks_exact(2))
                .zip(self.h.iter())
            {
                let y = u64::conditional_select(&y[0], &y[1], Choice::from(u8::from(b)));
                out.push(sub_mod(y, pad, p));
            }
        }
        Ok(out)
    }

    /// Additively correlated OT modulo `p`: returns `s_i + choices[i]·x_i mod p` for the
    /// sender's [`Sender::send_correlated_mod`] with correlations `x_i` and outputs `s_i`.
    ///
    /// # Errors
    /// As [`Receiver::receive_chosen_mod`].
    pub fn receive_correlated_mod(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
        p: u64,
    ) -> Result<Vec<u64>, Error> {
        self.receive_correlated_mod_packed(ch, &pack_choices(choices), choices.len(), p)
    }

    /// [`Receiver::receive_correlated_mod`] with `n` packed choices (bit `k` of `choices[w]` is
    /// the choice of OT `128 w + k`).
    ///
    /// # Errors
    /// [`OtError`] if `p` is out of range or `choices.len() != ⌈n/128⌉`; channel errors;
    /// [`WireError`] if a batch has the wrong length or a value is not below `p`.
    pub fn receive_correlated_mod_packed(
        &mut self,
        ch: &mut Channel,
        choices: &[u128],
        n: usize,
        p: u64,
    ) -> Result<Vec<u64>, Error> {
        check_modulus(p)?;
        check_len("packed choices", blocks_for(n), choices.len())?;
        let mut out = Vec::with_capacity(n);
        for (k, packed) in choices.chunks(MOD_BATCH / KAPPA).enumerate() {
            let len = MOD_BATCH.min(n - k * MOD_BATCH);
            self.mod_batch(ch, packed, len, p, 1)?;
            for (i, (&d, &pad)) in self.words.iter().zip(self.h.iter()).enumerate() {
                let b = ((packed[i / KAPPA] >> (i % KAPPA)) & 1) as u64;
                out.push(sub_mod(pad, d & 0u64.wrapping_sub(b), p));
            }
        }
        Ok(out)
    }
}
