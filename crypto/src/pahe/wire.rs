//! Wire formats of PAHE objects ([`crate::wire`] `Encode` / `Decode` with the [`Params`] as
//! context). The frame carries the protocol version; bodies are little-endian, and each RNS limb
//! of `N` residues is bit-packed at `⌈log2 q_i⌉` bits per coefficient (LSB first). Decoders check
//! every count against the parameters before allocating, every residue `< q_i`, and the
//! Galois elements for range, order and uniqueness; they never panic.
//!
//! | object | layout |
//! | --- | --- |
//! | [`Ciphertext`] | `level u8` · `c0` (ℓ limbs) · `c1` (ℓ limbs) |
//! | [`SeededCiphertext`] | `seed [16]` · `c0` (k limbs) |
//! | [`PublicKey`] | `seed [16]` · `b` (k limbs) |
//! | [`CoeffUpload`] | `level u8` · `seed [16]` · `c0` (ℓ limbs) |
//! | [`CoeffResponse`] | `level u8` · `a` (ℓ limbs, coefficient domain, `a_drop_bits` low bits dropped: bit-packed below `⌊(q_i − 1)/2^t⌋ + 2`) · `b`: ℓ × `count` residues (count and dropped bits from the context) |
//! | [`GaloisKeys`] | `count u16` · per key, elements strictly increasing: `g u32` · k × (`seed [16]` · `b` (k limbs)) |

use std::collections::BTreeMap;

use super::ciphertext::{Ciphertext, SeededCiphertext};
use super::coeff::{CoeffResponse, CoeffUpload};
use super::keys::{GaloisKey, GaloisKeys, PublicKey};
use super::params::Params;
use super::poly;
use crate::wire::{Decode, Encode, Reader, WireError};

/// Channel message kind of a [`SeededCiphertext`].
pub const KIND_SEEDED_CIPHERTEXT: u16 = 0x0101;
/// Channel message kind of a [`Ciphertext`].
pub const KIND_CIPHERTEXT: u16 = 0x0102;
/// Channel message kind of a [`PublicKey`].
pub const KIND_PUBLIC_KEY: u16 = 0x0103;
/// Channel message kind of [`GaloisKeys`].
pub const KIND_GALOIS_KEYS: u16 = 0x0104;
/// Channel message kind of a [`CoeffUpload`].
pub const KIND_COEFF_UPLOAD: u16 = 0x0105;
/// Channel message kind of a [`CoeffResponse`].
pub const KIND_COEFF_RESPONSE: u16 = 0x0106;
/// Largest number of Galois keys accepted in one message.
pub const MAX_GALOIS_KEYS: usize = 40;

fn bits_of(q: u64) -> u32 {
    64 - (q - 1).leading_zeros()
}

/// Appends one limb bit-packed at `bits` per value.
fn put_packed(out: &mut Vec<u8>, limb: &[u64], bits: u32) {
    out.reserve((limb.len() * bits as usize).div_ceil(8));
    let mut acc: u128 = 0;
    let mut filled = 0u32;
    // Eight bytes at a time (the same little-endian bit stream as byte by byte): `filled`
    // stays below 64 between values and `v < 2^bits ≤ 2^64`, so `acc` never overflows.
    for &v in limb {
        acc |= (v as u128) << filled;
        filled += bits;
        if filled >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            filled -= 64;
        }
    }
    while filled >= 8 {
        out.push(acc as u8);
        acc >>= 8;
        filled -= 8;
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// Reads one bit-packed limb of `n` values, each checked `< q`; padding bits must be zero.
fn read_packed(
    reader: &mut Reader<'_>,
    what: &'static str,
    n: usize,
    q: u64,
    out: &mut Vec<u64>,
) -> Result<(), WireError> {
    let bits = bits_of(q);
    let raw = reader.take((n * bits as usize).div_ceil(8))?;
    let mask = (1u128 << bits) - 1;
    let mut acc: u128 = 0;
    let mut filled = 0u32;
    // Eight bytes at a time while whole words remain (`filled < bits ≤ 64` before a read, so
    // `acc` never overflows), the tail byte by byte: the same bits as reading bytewise.
    let mut words = raw.chunks_exact(8);
    let mut bytes = words.remainder().iter();
    for _ in 0..n {
        if filled < bits
            && let Some(w) = words.next()
        {
            let w = u64::from_le_bytes(w.try_into().expect("an 8-byte chunk"));
            acc |= (w as u128) << filled;
            filled += 64;
        }
        while filled < bits {
            let b = *bytes
                .next()
                .ok_or(WireError::Invalid("packed limb length"))?;
            acc |= (b as u128) << filled;
            filled += 8;
        }
        let v = (acc & mask) as u64;
        if v >= q {
            return Err(WireError::OutOfRange {
                what,
                found: v,
                bound: q,
            });
        }
        out.push(v);
        acc >>= bits;
        filled -= bits;
    }
    if acc != 0 {
        return Err(WireError::Invalid("nonzero padding bits"));
    }
    Ok(())
}

/// Exclusive bound of a residue mod `q` sent with `t` low bits dropped (`round(b/2^t)`).
pub(super) fn dropped_bound(q: u64, t: u32) -> u64 {
    super::coeff::drop_low(q - 1, t) + 1
}

/// Exclusive bound of a residue mod `q` rounded at random to drop `t` low bits.
pub(super) fn random_dropped_bound(q: u64, t: u32) -> u64 {
    if t == 0 { q } else { ((q - 1) >> t) + 2 }
}

/// Bytes of a polynomial of `level` limbs, `t` low bits of each coefficient dropped at random.
pub(super) fn rounded_poly_len(params: &Params, level: usize, t: u32) -> usize {
    let n = params.n();
    params.inner.q[..level]
        .iter()
        .map(|m| (n * bits_of(random_dropped_bound(m.q(), t)) as usize).div_ceil(8))
        .sum()
}

/// Bytes of `count` bit-packed residues per limb for the first `level` limbs, `t` low bits
/// dropped from each.
pub(super) fn coeffs_len(params: &Params, level: usize, count: usize, t: u32) -> usize {
    params.inner.q[..level]
        .iter()
        .map(|m| (count * bits_of(dropped_bound(m.q(), t)) as usize).div_ceil(8))
        .sum()
}

pub(super) fn poly_len(params: &Params, level: usize) -> usize {
    let n = params.n();
    params.inner.q[..level]
        .iter()
        .map(|m| (n * bits_of(m.q()) as usize).div_ceil(8))
        .sum()
}

impl Params {
    /// Encoded length of a [`Ciphertext`] at `level` (a receive bound for the channel).
    ///
    /// # Panics
    /// If `level` exceeds the top level.
    pub fn ciphertext_len(&self, level: usize) -> usize {
        1 + 2 * poly_len(self, level)
    }

    /// Encoded length of a [`SeededCiphertext`].
    pub fn seeded_ciphertext_len(&self) -> usize {
        16 + poly_len(self, self.max_level())
    }

    /// Encoded length of a [`PublicKey`].
    pub fn public_key_len(&self) -> usize {
        16 + poly_len(self, self.max_level())
    }

    /// Largest encoded length of [`GaloisKeys`] ([`MAX_GALOIS_KEYS`] keys).
    pub fn galois_keys_max_len(&self) -> usize {
        2 + MAX_GALOIS_KEYS * (4 + self.max_level() * self.public_key_len())
    }
}

fn put_poly(out: &mut Vec<u8>, params: &Params, poly: &[u64]) {
    let n = params.n();
    for (limb, m) in poly.chunks(n).zip(&params.inner.q) {
        put_packed(out, limb, bits_of(m.q()));
    }
}

fn read_poly(
    reader: &mut Reader<'_>,
    params: &Params,
    what: &'static str,
    level: usize,
) -> Result<Vec<u64>, WireError> {
    let n = params.n();
    let needed = poly_len(params, level);
    if reader.remaining() < needed {
        return Err(WireError::Truncated {
            needed,
            remaining: reader.remaining(),
        });
    }
    let mut out = Vec::with_capacity(level * n);
    for m in &params.inner.q[..level] {
        read_packed(reader, what, n, m.q(), &mut out)?;
    }
    Ok(out)
}

impl Encode for Ciphertext {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.level as u8);
        put_poly(out, &self.params, &self.c0);
        put_poly(out, &self.params, &self.c1);
    }
}

impl Decode for Ciphertext {
    type Context = Params;

    fn decode(reader: &mut Reader<'_>, params: &Params) -> Result<Self, WireError> {
        let level = reader.u8()? as usize;
        let k = params.max_level();
        if level == 0 || level > k {
            return Err(WireError::OutOfRange {
                what: "ciphertext level",
                found: level as u64,
                bound: k as u64 + 1,
            });
        }
        let c0 = read_poly(reader, params, "ciphertext c0 residue", level)?;
        let c1 = read_poly(reader, params, "ciphertext c1 residue", level)?;
        Ok(Ciphertext {
            params: params.clone(),
            level,
            c0,
            c1,
        })
    }
}

impl Encode for SeededCiphertext {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seed);
        put_poly(out, &self.params, &self.c0);
    }
}

impl Decode for SeededCiphertext {
    type Context = Params;

    fn decode(reader: &mut Reader<'_>, params: &Params) -> Result<Self, WireError> {
        let seed = reader.array()?;
        let c0 = read_poly(
            reader,
            params,
            "seeded ciphertext residue",
            params.max_level(),
        )?;
        Ok(SeededCiphertext {
            params: params.clone(),
            level: params.max_level(),
            seed,
            c0,
        })
    }
}

fn read_level(
    reader: &mut Reader<'_>,
    params: &Params,
    what: &'static str,
) -> Result<usize, WireError> {
    let level = reader.u8()? as usize;
    let k = params.max_level();
    if level == 0 || level > k {
        return Err(WireError::OutOfRange {
            what,
            found: level as u64,
            bound: k as u64 + 1,
        });
    }
    Ok(level)
}

impl Encode for CoeffUpload {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0.level as u8);
        out.extend_from_slice(&self.0.seed);
        put_poly(out, &self.0.params, &self.0.c0);
    }
}

impl Decode for CoeffUpload {
    type Context = Params;

    fn decode(reader: &mut Reader<'_>, params: &Params) -> Result<Self, WireError> {
        let level = read_level(reader, params, "coefficient upload level")?;
        let seed = reader.array()?;
        let c0 = read_poly(reader, params, "coefficient upload residue", level)?;
        Ok(CoeffUpload(SeededCiphertext {
            params: params.clone(),
            level,
            seed,
            c0,
        }))
    }
}

/// What a [`CoeffResponse`] decodes against: the parameters and the number of `b`
/// coefficients the receiver's [`super::Selection`] expects (at most `N`).
#[derive(Debug, Clone)]
pub struct CoeffResponseContext {
    /// The parameter set.
    pub params: Params,
    /// Coefficients of `b` per limb.
    pub count: usize,
    /// Low bits dropped from each coefficient of `b` ([`super::CoeffPlan::drop_bits`]; only
    /// at level 1, else 0).
    pub drop_bits: u32,
    /// Low bits dropped from each coefficient of `a` ([`super::CoeffPlan::a_drop_bits`]; only
    /// at level 1, else 0).
    pub a_drop_bits: u32,
}

impl Encode for CoeffResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.level as u8);
        let n = self.params.n();
        for (limb, m) in self.a.chunks(n).zip(&self.params.inner.q) {
            put_packed(
                out,
                limb,
                bits_of(random_dropped_bound(m.q(), self.a_drop_bits)),
            );
        }
        let count = self.b.len() / self.level;
        if count > 0 {
            for (limb, m) in self.b.chunks(count).zip(&self.params.inner.q) {
                put_packed(out, limb, bits_of(dropped_bound(m.q(), self.drop_bits)));
            }
        }
    }
}

impl Decode for CoeffResponse {
    type Context = CoeffResponseContext;

    fn decode(reader: &mut Reader<'_>, ctx: &CoeffResponseContext) -> Result<Self, WireError> {
        let params = &ctx.params;
        if ctx.count > params.n() {
            return Err(WireError::TooLong {
                what: "coefficient response count",
                found: ctx.count as u64,
                max: params.n() as u64,
            });
        }
        let level = read_level(reader, params, "coefficient response level")?;
        let t = ctx.drop_bits;
        let ta = ctx.a_drop_bits;
        let q1_bits = bits_of(params.inner.q[0].q());
        if (level != 1 && (t != 0 || ta != 0)) || t >= q1_bits || ta >= q1_bits {
            return Err(WireError::Invalid("coefficient response dropped bits"));
        }
        let a_len = rounded_poly_len(params, level, ta);
        if reader.remaining() < a_len {
            return Err(WireError::Truncated {
                needed: a_len,
                remaining: reader.remaining(),
            });
        }
        let mut a = Vec::with_capacity(level * params.n());
        for m in &params.inner.q[..level] {
            read_packed(
                reader,
                "coefficient response a residue",
                params.n(),
                random_dropped_bound(m.q(), ta),
                &mut a,
            )?;
        }
        let needed = coeffs_len(params, level, ctx.count, t);
        if reader.remaining() < needed {
            return Err(WireError::Truncated {
                needed,
                remaining: reader.remaining(),
            });
        }
        let mut b = Vec::with_capacity(level * ctx.count);
        for m in &params.inner.q[..level] {
            read_packed(
                reader,
                "coefficient response b residue",
                ctx.count,
                dropped_bound(m.q(), t),
                &mut b,
            )?;
        }
        Ok(CoeffResponse {
            params: params.clone(),
            level,
            drop_bits: t,
            a_drop_bits: ta,
            a,
            b,
        })
    }
}

impl Encode for PublicKey {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seed);
        put_poly(out, &self.params, &self.b);
    }
}

impl Decode for PublicKey {
    type Context = Params;

    fn decode(reader: &mut Reader<'_>, params: &Params) -> Result<Self, WireError> {
        let seed = reader.array()?;
        let b = read_poly(reader, params, "public key residue", params.max_level())?;
        let inner = &params.inner;
        Ok(PublicKey {
            params: params.clone(),
            seed,
            b,
            a: poly::uniform_from_seed(seed, &inner.q, inner.n),
        })
    }
}

impl Encode for GaloisKeys {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.keys.len() as u16).to_le_bytes());
        for key in self.keys.values() {
            out.extend_from_slice(&(key.g as u32).to_le_bytes());
            for (seed, b) in key.seeds.iter().zip(&key.b) {
                out.extend_from_slice(seed);
                put_poly(out, &self.params, b);
            }
        }
    }
}

impl Decode for GaloisKeys {
    type Context = Params;

    fn decode(reader: &mut Reader<'_>, params: &Params) -> Result<Self, WireError> {
        let count = reader.u16()? as usize;
        if count > MAX_GALOIS_KEYS {
            return Err(WireError::TooLong {
                what: "galois key count",
                found: count as u64,
                max: MAX_GALOIS_KEYS as u64,
            });
        }
        let inner = &params.inner;
        let two_n = 2 * params.n() as u64;
        let k = params.max_level();
        let mut keys = BTreeMap::new();
        let mut previous = 1u64;
        for _ in 0..count {
            let g = reader.u32()? as u64;
            // Odd elements of (Z/2N)^*, strictly increasing (canonical, no duplicates), not 1.
            if g.is_multiple_of(2) || g <= previous || g >= two_n {
                return Err(WireError::Invalid("galois element"));
            }
            previous = g;
            let mut seeds = Vec::with_capacity(k);
            let mut b = Vec::with_capacity(k);
            let mut a = Vec::with_capacity(k);
            for _ in 0..k {
                let seed = reader.array()?;
                b.push(read_poly(reader, params, "galois key residue", k)?);
                a.push(poly::uniform_from_seed(seed, &inner.q, inner.n));
                seeds.push(seed);
            }
            keys.insert(
                g,
                GaloisKey {
                    g,
                    perm: params.galois_perm(g),
                    seeds,
                    b,
                    a,
                },
            );
        }
        Ok(GaloisKeys {
            params: params.clone(),
            keys,
        })
    }
}
