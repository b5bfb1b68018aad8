//! Base OT: the endemic 1-out-of-2 random OT of Masny and Rindal ("Endemic oblivious transfer",
//! CCS 2019, Fig. 9 with a Diffie–Hellman key agreement), on the ristretto255 group.
//!
//! Why this protocol: it avoids the known flaws of the original "simplest OT" of Chou and Orlandi
//! (the receiver's message there is malleable against the sender's point, and its proof does not
//! hold as published), needs one message in each direction that both parties can send at the
//! same time, and its sender reuses one secret scalar for a whole batch (as libOTe does), so a
//! batch of `n` OTs costs the sender one fixed-base and `2n` variable-base multiplications.
//!
//! Protocol for OT number `i`, with `H_i` a hash onto the group and `KDF_i` a key derivation,
//! both SHA-512 with domain separation:
//! - sender: `y` uniform, sends `A = y·G` (once per batch);
//! - receiver with choice `b`: `x` uniform, `r_{1−b}` a uniform point,
//!   `r_b = x·G − H_i(r_{1−b})`; sends `(r_0, r_1)`; outputs `k_b = KDF_i(A, x·A)`;
//! - sender: `m_c = r_c + H_i(r_{1−c})`, outputs `k_c = KDF_i(A, y·m_c)` for `c ∈ {0, 1}`.
//!
//! # Security
//! Semi-honest security (and in fact security against a malicious receiver) in the random-oracle
//! model under CDH in ristretto255 (≈ 126-bit security); SHA-512 is the random oracle and
//! hashes onto the group through the ristretto255 one-way map (RFC 9496 §4.3.4), the standard
//! hash-to-group of this group. Keys are 128 bits.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroizing;

use super::kind;
use crate::Error;
use crate::channel::Channel;
use crate::prg::Prg;
use crate::wire::{Reader, WireError};

/// Most base OTs in one batch (bounds the receiver's message before allocation).
pub const MAX_BASE_OTS: usize = 1 << 16;

const POINT_LEN: usize = 32;
const TAG_HASH_TO_GROUP: &[u8; 16] = b"BUNET-MR-H2G-v1\0";
const TAG_KDF: &[u8; 16] = b"BUNET-MR-KDF-v1\0";

/// `H_i(r)`: SHA-512 of (tag, i, r) mapped onto the group.
fn hash_to_group(i: u64, r: &CompressedRistretto) -> RistrettoPoint {
    let mut h = Sha512::new();
    h.update(TAG_HASH_TO_GROUP);
    h.update(i.to_le_bytes());
    h.update(r.as_bytes());
    let digest: [u8; 64] = h.finalize().into();
    RistrettoPoint::from_uniform_bytes(&digest)
}

/// `KDF_i(A, P)`: the first 128 bits of SHA-512 of (tag, i, A, P).
fn kdf(i: u64, a: &CompressedRistretto, p: &RistrettoPoint) -> u128 {
    let mut h = Sha512::new();
    h.update(TAG_KDF);
    h.update(i.to_le_bytes());
    h.update(a.as_bytes());
    h.update(p.compress().as_bytes());
    let digest: [u8; 64] = h.finalize().into();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(key)
}

fn read_point(r: &mut Reader<'_>) -> Result<(CompressedRistretto, RistrettoPoint), WireError> {
    let c = CompressedRistretto(r.array::<POINT_LEN>()?);
    let p = c
        .decompress()
        .ok_or(WireError::Invalid("ristretto255 point"))?;
    Ok((c, p))
}

fn check_count(n: usize) -> Result<(), Error> {
    if n > MAX_BASE_OTS {
        return Err(super::OtError::LengthMismatch {
            what: "base OT count",
            expected: MAX_BASE_OTS,
            found: n,
        }
        .into());
    }
    Ok(())
}

/// Runs `n` random base OTs as the sender; returns the key pairs `(k_0, k_1)`.
///
/// # Errors
/// Channel failures; [`WireError`] if the receiver's message has the wrong length or holds a
/// point that does not decompress; [`super::OtError`] if `n > MAX_BASE_OTS`.
///
/// # Security
/// See the module documentation. The keys are secret; the caller should erase them when done.
pub fn send(ch: &mut Channel, prg: &mut Prg, n: usize) -> Result<Vec<[u128; 2]>, Error> {
    check_count(n)?;
    // Erased on every return, the error paths included.
    let y = Zeroizing::new(Scalar::random(prg));
    let a = RistrettoPoint::mul_base(&y).compress();
    ch.send(kind::BASE_SENDER, a.as_bytes())?;
    let expected = 8 + 2 * POINT_LEN * n;
    let keys = ch.recv_with(kind::BASE_RECEIVER, expected, |r| {
        r.count_exact("base OT receiver message", n)?;
        let mut keys = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let (c0, r0) = read_point(r)?;
            let (c1, r1) = read_point(r)?;
            let m0 = r0 + hash_to_group(i, &c1);
            let m1 = r1 + hash_to_group(i, &c0);
            keys.push([kdf(i, &a, &(*y * m0)), kdf(i, &a, &(*y * m1))]);
        }
        Ok(keys)
    })?;
    Ok(keys)
}

/// Runs `choices.len()` random base OTs as the receiver; returns `k_{b_i}` for each choice.
///
/// # Errors
/// Channel failures; [`WireError`] if the sender's point does not decompress;
/// [`super::OtError`] if there are more than `MAX_BASE_OTS` choices.
///
/// # Security
/// See the module documentation. The choices select points without branching.
pub fn receive(ch: &mut Channel, prg: &mut Prg, choices: &[bool]) -> Result<Vec<u128>, Error> {
    check_count(choices.len())?;
    let mut body = Vec::with_capacity(8 + 2 * POINT_LEN * choices.len());
    body.extend_from_slice(&(choices.len() as u64).to_le_bytes());
    // Erased on every return, the error paths included.
    let mut secrets = Zeroizing::new(Vec::with_capacity(choices.len()));
    for (i, &b) in choices.iter().enumerate() {
        let x = Scalar::random(prg);
        let other = RistrettoPoint::random(prg);
        let other_c = other.compress();
        let own = RistrettoPoint::mul_base(&x) - hash_to_group(i as u64, &other_c);
        let b = Choice::from(u8::from(b));
        let r0 = RistrettoPoint::conditional_select(&own, &other, b).compress();
        let r1 = RistrettoPoint::conditional_select(&other, &own, b).compress();
        body.extend_from_slice(r0.as_bytes());
        body.extend_from_slice(r1.as_bytes());
        secrets.push(x);
    }
    ch.send(kind::BASE_RECEIVER, &body)?;
    let (a_c, a) = ch.recv_with(kind::BASE_SENDER, POINT_LEN, read_point)?;
    let keys = secrets
        .iter()
        .enumerate()
        .map(|(i, x)| kdf(i as u64, &a_c, &(x * a)))
        .collect();
    Ok(keys)
}
