//! Beaver multiplication triples and square pairs over `Z_p`, made by the two parties themselves
//! with OT (no dealer), and the multiplication and square protocols on additive shares that
//! consume them (seed §4.1 "MT", §4.3 square activation).
//!
//! Cross products use Gilboa's OT multiplication (Gilboa, "Two party RSA key generation",
//! CRYPTO 1999): to share `x·y` where one party holds `x` and the other `y`, run one additively
//! correlated OT per bit `j` of `y` with correlation `x·2^j mod p`
//! ([`Sender::send_correlated_mod`]); the receiver's outputs sum to `Σ s_j + x·y`, the
//! sender keeps `−Σ s_j`. A triple needs two cross products (`a_A·b_B` and `a_B·b_A`), a square
//! pair `(a, a²)` only one (`2·a_A·a_B`), so squares cost half as much.
//!
//! # Security
//! Semi-honest, under the assumptions of [`crate::ot`]. Triples are uniform and secret; each
//! must be consumed once (the consuming functions take them by value). The opened differences
//! `v − a` are uniformly distributed whatever `v` is.

use bunet_kernels::Modulus;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;
use crate::channel::Channel;
use crate::ot::{OtError, Receiver, Sender};
use crate::prg::Prg;
use crate::wire::put_words;

/// Message kinds of the triples area (0x04xx).
pub mod kind {
    /// Square protocol: a party's share of `e = v − a`.
    pub const OPEN_SQUARE: u16 = 0x0400;
    /// Multiplication protocol: a party's shares of `d = x − a` and `e = y − b`.
    pub const OPEN_MULTIPLY: u16 = 0x0401;
}

/// Values per cross-product chunk: bounds memory (`⌈log2 p⌉` OTs per value) while keeping OT
/// batches full.
const CHUNK: usize = 1 << 12;
/// Values per opening message: small enough that both parties may send before receiving.
const OPEN_BATCH: usize = 1 << 14;

/// Which party this is. Alice sends first where order matters and adds the public terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client (first OT sender, adds public terms).
    Alice,
    /// The server.
    Bob,
}

/// One party's shares of Beaver triples: `Rec(a)·Rec(b) = Rec(c) mod p` element-wise.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Triples {
    /// Shares of `a`.
    pub a: Vec<u64>,
    /// Shares of `b`.
    pub b: Vec<u64>,
    /// Shares of `c = a·b`.
    pub c: Vec<u64>,
}

impl std::fmt::Debug for Triples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Triples {{ len: {}, .. }}", self.a.len())
    }
}

/// One party's shares of square pairs: `Rec(a)² = Rec(c) mod p` element-wise.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SquarePairs {
    /// Shares of `a`.
    pub a: Vec<u64>,
    /// Shares of `c = a²`.
    pub c: Vec<u64>,
}

impl std::fmt::Debug for SquarePairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SquarePairs {{ len: {}, .. }}", self.a.len())
    }
}

/// One party's triple generator: an OT session in each direction with the peer.
pub struct Session {
    role: Role,
    q: Modulus,
    bits: usize,
    width: usize,
    sender: Sender,
    receiver: Receiver,
    prg: Prg,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("p", &self.q.q())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Sets up OT sessions in both directions (Alice's sender first). The peer calls this with
    /// the other role and the same `p`.
    ///
    /// # Errors
    /// [`OtError::ModulusOutOfRange`] unless `2 <= p < 2^62`; channel and wire errors.
    pub fn setup(ch: &mut Channel, role: Role, p: u64, mut prg: Prg) -> Result<Self, Error> {
        let q = Modulus::new(p).map_err(|_| OtError::ModulusOutOfRange { p })?;
        let delta = prg.next_u128() | 1;
        let (sender, receiver) = match role {
            Role::Alice => {
                let s = Sender::setup(ch, delta, &mut prg)?;
                (s, Receiver::setup(ch, &mut prg)?)
            }
            Role::Bob => {
                let r = Receiver::setup(ch, &mut prg)?;
                (Sender::setup(ch, delta, &mut prg)?, r)
            }
        };
        let bits = (64 - (p - 1).leading_zeros()) as usize;
        Ok(Self {
            role,
            q,
            bits,
            width: bits.div_ceil(8),
            sender,
            receiver,
            prg,
        })
    }

    /// The modulus `p`.
    pub fn p(&self) -> u64 {
        self.q.q()
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Gilboa, sender side: returns shares of `x_i · y_i` where the peer holds `y`.
    fn cross_send(&mut self, ch: &mut Channel, x: &[u64]) -> Result<Vec<u64>, Error> {
        let p = self.p();
        let mut corr = Vec::with_capacity(x.len() * self.bits);
        for &x in x {
            let mut xj = x;
            for _ in 0..self.bits {
                corr.push(xj);
                xj = self.q.add(xj, xj);
            }
        }
        let mut s = self.sender.send_correlated_mod(ch, &corr, p)?;
        corr.zeroize();
        let shares = s
            .chunks_exact(self.bits)
            .map(|s| self.q.neg(s.iter().fold(0, |acc, &v| self.q.add(acc, v))))
            .collect();
        s.zeroize();
        Ok(shares)
    }

    /// Gilboa, receiver side: returns shares of `x_i · y_i` where the peer holds `x`.
    fn cross_receive(&mut self, ch: &mut Channel, y: &[u64]) -> Result<Vec<u64>, Error> {
        let p = self.p();
        let n = y.len() * self.bits;
        let mut choices = vec![0u128; n.div_ceil(128)];
        for (i, &y) in y.iter().enumerate() {
            // The bits of y_i are the choices of OTs i·bits .. (i+1)·bits.
            let k = i * self.bits;
            let (w, o) = (k / 128, k % 128);
            choices[w] |= u128::from(y) << o;
            if o + self.bits > 128 {
                choices[w + 1] |= u128::from(y) >> (128 - o);
            }
        }
        let mut r = self
            .receiver
            .receive_correlated_mod_packed(ch, &choices, n, p)?;
        choices.zeroize();
        let shares = r
            .chunks_exact(self.bits)
            .map(|r| r.iter().fold(0, |acc, &v| self.q.add(acc, v)))
            .collect();
        r.zeroize();
        Ok(shares)
    }

    /// Generates `n` multiplication triples together with the peer (who calls this too).
    ///
    /// # Errors
    /// Channel and wire errors.
    ///
    /// # Security
    /// Semi-honest; each triple must be used once.
    pub fn triples(&mut self, ch: &mut Channel, n: usize) -> Result<Triples, Error> {
        let p = self.p();
        let mut t = Triples {
            a: vec![0; n],
            b: vec![0; n],
            c: Vec::with_capacity(n),
        };
        self.prg.fill_uniform_below(&mut t.a, p);
        self.prg.fill_uniform_below(&mut t.b, p);
        for (a, b) in t.a.chunks(CHUNK).zip(t.b.chunks(CHUNK)) {
            // Alice sends in the first direction (her a against Bob's b), Bob in the second.
            let (first, second) = match self.role {
                Role::Alice => {
                    let f = self.cross_send(ch, a)?;
                    (f, self.cross_receive(ch, b)?)
                }
                Role::Bob => {
                    let f = self.cross_receive(ch, b)?;
                    (f, self.cross_send(ch, a)?)
                }
            };
            for (((&a, &b), &f), &s) in a.iter().zip(b).zip(&first).zip(&second) {
                t.c.push(self.q.add(self.q.mul(a, b), self.q.add(f, s)));
            }
        }
        Ok(t)
    }

    /// Generates `n` square pairs `(a, a²)` together with the peer: one cross product each.
    /// Chunks alternate which party is the OT sender, so both do the same work.
    ///
    /// # Errors
    /// Channel and wire errors.
    ///
    /// # Security
    /// Semi-honest; each pair must be used once.
    pub fn square_pairs(&mut self, ch: &mut Channel, n: usize) -> Result<SquarePairs, Error> {
        let p = self.p();
        let mut sq = SquarePairs {
            a: vec![0; n],
            c: Vec::with_capacity(n),
        };
        self.prg.fill_uniform_below(&mut sq.a, p);
        for (k, a) in sq.a.chunks(CHUNK).enumerate() {
            let alice_sends = k % 2 == 0;
            let cross = if alice_sends == (self.role == Role::Alice) {
                let twice: Vec<u64> = a.iter().map(|&a| self.q.add(a, a)).collect();
                self.cross_send(ch, &twice)?
            } else {
                self.cross_receive(ch, a)?
            };
            for (&a, &x) in a.iter().zip(&cross) {
                sq.c.push(self.q.add(self.q.mul(a, a), x));
            }
        }
        Ok(sq)
    }

    /// Opens `mine` (this party's shares of public values) with the peer in batches: both send
    /// a batch, then both receive the other's. Returns the reconstructed values.
    fn open(&mut self, ch: &mut Channel, kind: u16, mine: &[u64]) -> Result<Vec<u64>, Error> {
        let p = self.p();
        let mut out = Vec::with_capacity(mine.len());
        let mut body = Vec::new();
        let mut theirs = Vec::new();
        for batch in mine.chunks(OPEN_BATCH) {
            body.clear();
            body.extend_from_slice(&(batch.len() as u64).to_le_bytes());
            put_words(&mut body, batch, self.width);
            ch.send(kind, &body)?;
            theirs.clear();
            ch.recv_with(kind, 8 + batch.len() * self.width, |r| {
                r.count_exact("opened shares", batch.len())?;
                r.words_below("opened share", batch.len(), self.width, p, &mut theirs)
            })?;
            out.extend(batch.iter().zip(&theirs).map(|(&x, &y)| self.q.add(x, y)));
        }
        Ok(out)
    }

    fn check_shares(&self, what: &'static str, v: &[u64], len: usize) -> Result<(), OtError> {
        if v.len() != len {
            return Err(OtError::LengthMismatch {
                what,
                expected: len,
                found: v.len(),
            });
        }
        match v.iter().find(|&&x| x >= self.p()) {
            Some(&found) => Err(OtError::NotReduced {
                what,
                found,
                p: self.p(),
            }),
            None => Ok(()),
        }
    }

    /// The square protocol (seed §4.3): from shares of `v`, returns shares of `v² mod p`,
    /// consuming one square pair per value. Opens `e = v − a` (both parties publish their
    /// shares of `e`); then `v² = e² + 2·e·a + a²`, with only Alice adding `e²`.
    ///
    /// # Errors
    /// [`OtError`] if `v` and `pairs` differ in length or a share is not below `p`; channel and
    /// wire errors.
    pub fn square(
        &mut self,
        ch: &mut Channel,
        v: &[u64],
        pairs: SquarePairs,
    ) -> Result<Vec<u64>, Error> {
        self.check_shares("square input share", v, pairs.a.len())?;
        let q = self.q;
        let e_mine: Vec<u64> = v.iter().zip(&pairs.a).map(|(&v, &a)| q.sub(v, a)).collect();
        let e = self.open(ch, kind::OPEN_SQUARE, &e_mine)?;
        let alice = self.role == Role::Alice;
        Ok(e.iter()
            .zip(pairs.a.iter().zip(&pairs.c))
            .map(|(&e, (&a, &c))| {
                let two_ea = q.mul(q.add(e, e), a);
                let public = if alice { q.mul(e, e) } else { 0 };
                q.add(q.add(two_ea, c), public)
            })
            .collect())
    }

    /// Beaver multiplication (seed §4.1): from shares of `x` and `y`, returns shares of
    /// `x·y mod p` element-wise, consuming one triple per value. Opens `d = x − a` and
    /// `e = y − b`; then `x·y = c + d·b + e·a + d·e`, with only Alice adding `d·e`.
    ///
    /// # Errors
    /// [`OtError`] if the lengths differ or a share is not below `p`; channel and wire errors.
    pub fn multiply(
        &mut self,
        ch: &mut Channel,
        x: &[u64],
        y: &[u64],
        triples: Triples,
    ) -> Result<Vec<u64>, Error> {
        let n = triples.a.len();
        self.check_shares("multiply input share x", x, n)?;
        self.check_shares("multiply input share y", y, n)?;
        let q = self.q;
        let mut mine: Vec<u64> = x
            .iter()
            .zip(&triples.a)
            .map(|(&x, &a)| q.sub(x, a))
            .collect();
        mine.extend(y.iter().zip(&triples.b).map(|(&y, &b)| q.sub(y, b)));
        let opened = self.open(ch, kind::OPEN_MULTIPLY, &mine)?;
        let (d, e) = opened.split_at(n);
        let alice = self.role == Role::Alice;
        Ok((0..n)
            .map(|i| {
                let z = q.add(
                    triples.c[i],
                    q.add(q.mul(d[i], triples.b[i]), q.mul(e[i], triples.a[i])),
                );
                if alice {
                    q.add(z, q.mul(d[i], e[i]))
                } else {
                    z
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
