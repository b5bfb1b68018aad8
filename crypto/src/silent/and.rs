//! Boolean AND triples and Beaver ANDs from a pair of Ferret sessions, one per direction
//! ([`Duplex`]); the triples cost no traffic beyond their COTs.

use bunet_kernels::aes_hash::FixedKeyHash;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ferret::{Params, Receiver, Sender, buffer_both};
use super::kind;
use super::pads::{block_cots, pieces, receiver_pads, sender_pads};
use crate::Error;
use crate::channel::Channel;
use crate::ot::{OtError, check_len};
use crate::prg::Prg;
use crate::secret::redacted_debug;
use crate::triples::Role;

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

redacted_debug!(BitTriples);

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

redacted_debug!(SharedTriples);

/// Per lane: the random-OT bits `x_l = m_0 ⊕ m_1` and `m_0`, packed.
type Lanes = (Vec<Vec<u64>>, Vec<Vec<u64>>);

/// The pieces' words of one vector, in order.
fn concat<'a>(parts: impl Iterator<Item = &'a Vec<u64>>) -> Vec<u64> {
    parts.flat_map(|p| p.iter().copied()).collect()
}

/// A party's two Ferret sessions, one per direction: Alice's sender with Bob's receiver under
/// Alice's `Δ`, and the reverse. Everything bidirectional (AND triples, multiplexers) is built
/// on this pair.
pub struct Duplex {
    role: Role,
    sender: Sender,
    receiver: Receiver,
}

redacted_debug!(Duplex { role });

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

    /// [`Receiver::receive_one_of_n_mixed`] on this party's receiving direction, running both
    /// directions' COTs ahead by `ahead` each while the peer computes the messages: its own
    /// sending direction's ([`Sender::buffer_ahead`]), then the peer's, whose chunks the peer
    /// sent ahead before its messages ([`Duplex::send_one_of_n_mixed_ahead`]).
    ///
    /// # Errors
    /// As the two calls.
    pub fn receive_one_of_n_mixed_ahead(
        &mut self,
        ch: &mut Channel,
        log_n: &[u32],
        bits: &[u32],
        choices: &[u8],
        ahead: usize,
    ) -> Result<Vec<u8>, Error> {
        let Self {
            sender, receiver, ..
        } = self;
        receiver.receive_one_of_n_mixed_then(ch, log_n, bits, choices, |receiver, ch| {
            sender.buffer_ahead(ch, ahead)?;
            receiver.buffer_ahead(ch, ahead)
        })
    }

    /// [`Sender::send_one_of_n_mixed_with`] on this party's sending direction with both
    /// directions' COTs ahead by `ahead` each: its own sending direction's while the peer
    /// expands the OTs' COTs (before `words` runs), the peer's after the messages are sent.
    /// The peer runs [`Duplex::receive_one_of_n_mixed_ahead`] with the same `ahead`.
    ///
    /// # Errors
    /// As the calls it makes.
    pub fn send_one_of_n_mixed_ahead<W: AsRef<[u128]>>(
        &mut self,
        ch: &mut Channel,
        log_n: &[u32],
        bits: &[u32],
        words: impl FnOnce() -> W,
        ahead: usize,
    ) -> Result<(), Error> {
        self.sender
            .send_one_of_n_mixed_with(ch, log_n, bits, |sender, ch| {
                sender.buffer_ahead(ch, ahead)?;
                Ok(words())
            })?;
        self.receiver.buffer_ahead(ch, ahead)
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
        // Both directions' COTs a chunk of each in turn (the wire of Alice's direction, then
        // Bob's), then the random OTs: the sender's direction's tweaks first, on both sides.
        buffer_both(&mut self.sender, &mut self.receiver, ch, n)?;
        // The tweaks after the chunks (whose trees take theirs first), as when drawn.
        let (serial_q, serial_t) = (self.sender.tweaks(n), self.receiver.tweaks(n));
        let delta = self.sender.delta();
        let (q, hash) = self.sender.lend(n);
        let (x, m0) = sender_bits(hash, delta, q, serial_q, lanes);
        let (t, hash) = self.receiver.lend(n);
        let (y, my) = receiver_bits(hash, t, serial_t, lanes);
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
    /// (`x` holds `⌈n/64⌉` words, bits beyond `n` zero), on [`Duplex::shared_triples`]. A lane
    /// may be shorter than `x` (at most `⌈n/64⌉` words): it ANDs its words with the first words
    /// of `x` and opens only those (the unused bits of its triples are dropped), so a caller
    /// that orders its items puts the ones that need fewer products last. One round trip,
    /// `2·64·(⌈n/64⌉ + Σ_l len(y_l))` bits in total; each result as long as its `y_l`.
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
            if y.len() > words {
                return Err(OtError::LengthMismatch {
                    what: "AND right operand (at most)",
                    expected: words,
                    found: y.len(),
                }
                .into());
            }
        }
        let t = self.shared_triples(ch, n, ys.len())?;
        let count = words + ys.iter().map(|y| y.len()).sum::<usize>();
        let mut mine = Vec::with_capacity(8 * count);
        for (x, a) in x.iter().zip(&t.a) {
            mine.extend_from_slice(&(x ^ a).to_le_bytes());
        }
        for (y, b) in ys.iter().zip(&t.b) {
            for (y, b) in y.iter().zip(b) {
                mine.extend_from_slice(&(y ^ b).to_le_bytes());
            }
        }
        let recv = |ch: &mut Channel| {
            ch.recv_with(kind::AND, mine.len(), |r| r.u64s("AND openings", count))
        };
        let open = match self.role {
            Role::Alice => {
                ch.send(kind::AND, &mine)?;
                recv(ch)?
            }
            Role::Bob => {
                let b = recv(ch)?;
                ch.send(kind::AND, &mine)?;
                ch.flush()?;
                b
            }
        };
        let tail = if n.is_multiple_of(64) {
            u64::MAX
        } else {
            (1u64 << (n % 64)) - 1
        };
        let alice = u64::from(self.role == Role::Alice).wrapping_neg();
        let d: Vec<u64> = (0..words).map(|i| open[i] ^ x[i] ^ t.a[i]).collect();
        let mut first = words;
        Ok(ys
            .iter()
            .enumerate()
            .map(|(l, y)| {
                let at = first;
                first += y.len();
                (0..y.len())
                    .map(|i| {
                        let e = open[at + i] ^ y[i] ^ t.b[l][i];
                        let v = t.c[l][i] ^ (d[i] & t.b[l][i]) ^ (e & t.a[i]) ^ (d[i] & e & alice);
                        if i + 1 == words { v & tail } else { v }
                    })
                    .collect()
            })
            .collect())
    }
}

/// Random OTs of `lanes`-bit messages from the COTs `q` (tweak serials from `serial`) as sender: per lane `l`, bit `l`
/// of `(m_0, m_1)` packed as `(x_l = m_0 ⊕ m_1, m_0)`.
fn sender_bits(hash: &FixedKeyHash, delta: u128, q: &[u128], serial: u64, lanes: usize) -> Lanes {
    const {
        assert!(
            block_cots(2, 1).is_multiple_of(64) && block_cots(1, 1).is_multiple_of(64),
            "pad blocks of one-lane random OTs start at whole words"
        )
    };
    let n = q.len();
    // Pieces of whole words, so each fills its own words of every lane.
    let parts = pieces(n, 64, |r| {
        let words = r.len().div_ceil(64);
        let mut part: Lanes = (
            vec![vec![0u64; words]; lanes],
            vec![vec![0u64; words]; lanes],
        );
        let (x, m0) = &mut part;
        sender_pads(
            hash,
            delta,
            &q[r.clone()],
            |_| false,
            serial + r.start as u64,
            1,
            1,
            |first, pads| {
                // Blocks start at whole words (`first` is a multiple of 64): each word's
                // 64 bits are gathered in registers and stored once.
                for (w, word) in pads.chunks(128).enumerate() {
                    let at = first / 64 + w;
                    for l in 0..lanes {
                        let (mut xw, mut mw) = (0u64, 0u64);
                        for (i, p) in word.chunks_exact(2).enumerate() {
                            xw |= ((((p[0] ^ p[1]) >> l) & 1) as u64) << i;
                            mw |= (((p[0] >> l) & 1) as u64) << i;
                        }
                        x[l][at] = xw;
                        m0[l][at] = mw;
                    }
                }
            },
        );
        Zeroizing::new(part)
    });
    let x = (0..lanes)
        .map(|l| concat(parts.iter().map(|p| &p.0[l])))
        .collect();
    let m0 = (0..lanes)
        .map(|l| concat(parts.iter().map(|p| &p.1[l])))
        .collect();
    (x, m0)
}

/// Random OTs of `lanes`-bit messages from the COTs `t` (tweak serials from `serial`) as receiver: the choice bits `b`
/// and, per lane `l`, bit `l` of `m_b`, packed.
fn receiver_bits(
    hash: &FixedKeyHash,
    t: &[u128],
    serial: u64,
    lanes: usize,
) -> (Vec<u64>, Vec<Vec<u64>>) {
    let n = t.len();
    let parts = pieces(n, 64, |r| {
        let words = r.len().div_ceil(64);
        let mut part = (vec![0u64; words], vec![vec![0u64; words]; lanes]);
        let (b, mb) = &mut part;
        let t = &t[r.clone()];
        for (bw, word) in b.iter_mut().zip(t.chunks(64)) {
            *bw = word
                .iter()
                .enumerate()
                .fold(0, |acc, (i, &x)| acc | ((x & 1) as u64) << i);
        }
        receiver_pads(hash, t, serial + r.start as u64, 1, 1, |first, pads| {
            // As the sender's: whole words from `first`, a multiple of 64.
            for (w, word) in pads.chunks(64).enumerate() {
                for (l, mb) in mb.iter_mut().enumerate() {
                    mb[first / 64 + w] = word
                        .iter()
                        .enumerate()
                        .fold(0, |acc, (i, &p)| acc | (((p >> l) & 1) as u64) << i);
                }
            }
        });
        Zeroizing::new(part)
    });
    let b = concat(parts.iter().map(|p| &p.0));
    let mb = (0..lanes)
        .map(|l| concat(parts.iter().map(|p| &p.1[l])))
        .collect();
    (b, mb)
}
