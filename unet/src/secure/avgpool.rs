//! SecAvgPool: the window sum of the average pool on additive shares, in the two protocol
//! variants of [`crate::Pooling`] (the division is absorbed by the next rescale, see
//! [`crate::quant`]).
//!
//! - **Local** ([`sum_local`]): the window sum is linear, so each party sums its own share's
//!   windows mod p. No communication.
//! - **By rotation** (the seed's SecPool with PAHE, §4.3): Alice encrypts her share packed into
//!   slots, Bob adds his share as a plaintext, sums rotations of the ciphertext so that each
//!   window's first slot holds the window sum (rotations by 1 and by the row stride, and in 3D by
//!   the slice stride: 2 or 3 key switches per ciphertext), and returns it HSS-masked
//!   ([`Evaluator::finalize_for_return`]: mask, re-randomisation with noise flooding, modulus
//!   switch). Alice's share is the decrypted slot, Bob's the mask. The Galois keys for the
//!   strides come from Alice in the offline phase ([`RotationLayout::steps`]).
//!
//! # Packing ([`RotationLayout`])
//! The tensor is cut into blocks of `sd × bh × bw` elements (`sd` = 1 in 2D, 2 in 3D; `bh`,
//! `bw` even, so every window lies inside one block), flattened slice-major then row-major;
//! `⌊(N/2) / (sd·bh·bw)⌋` blocks share each row of `N/2` slots (rotations act within a row),
//! two rows per ciphertext. Rotating left by `1`, `bw` and `bh·bw` brings a window's other
//! elements onto its first slot.

use bunet_crypto::channel::Channel;
use bunet_crypto::pahe::{
    Ciphertext, Evaluator, GaloisKeys, KIND_CIPHERTEXT, KIND_SEEDED_CIPHERTEXT, Params, PublicKey,
    SecretKey, SeededCiphertext, random_mask,
};
use bunet_crypto::prg::Prg;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::error::SecureError;
use crate::tensor::Tensor;

/// The channel label of the rotation variant's traffic.
pub const LABEL: &str = "avgpool";

/// The window sums of one party's share, mod p (the local variant): `2×2` windows, `2×2×2` if
/// `deep`.
pub fn sum_local(x: &Tensor<u64>, deep: bool, p: u64) -> Tensor<u64> {
    let (data, dims) = crate::conv::pool(x.data(), x.channels(), x.dims(), deep, &|w: &[u64]| {
        w.iter().fold(0u64, |s, &v| (s + v) % p)
    });
    Tensor::from_vec(x.channels(), dims, data).expect("pool keeps channels")
}

/// How a tensor of given shape is packed for the rotation variant (public: both parties derive
/// it from the shape and the parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationLayout {
    channels: usize,
    dims: [usize; 3],
    sd: usize,
    bh: usize,
    bw: usize,
    blocks_y: usize,
    blocks_x: usize,
    per_row: usize,
    half: usize,
}

impl RotationLayout {
    /// The layout of `channels` planes of extents `dims` with `slots` slots; `deep` for 3D
    /// (`2×2×2` windows).
    ///
    /// # Errors
    /// [`SecureError::Protocol`] if a pooled extent is odd or zero, or the window does not fit
    /// a row of slots.
    pub fn new(
        channels: usize,
        dims: [usize; 3],
        deep: bool,
        slots: usize,
    ) -> Result<Self, SecureError> {
        let sd = if deep { 2 } else { 1 };
        let [d, h, w] = dims;
        let half = slots / 2;
        let even = |v: usize, m: usize| v > 0 && v.is_multiple_of(m);
        if channels == 0 || !even(d, sd) || !even(h, 2) || !even(w, 2) || half < 4 * sd {
            return Err(SecureError::Protocol(format!(
                "average pool of {channels} planes of {dims:?} with {slots} slots"
            )));
        }
        let bw = w.min(half / (2 * sd)) & !1;
        let bh = h.min(half / (sd * bw)) & !1;
        Ok(Self {
            channels,
            dims,
            sd,
            bh,
            bw,
            blocks_y: h.div_ceil(bh),
            blocks_x: w.div_ceil(bw),
            per_row: half / (sd * bh * bw),
            half,
        })
    }

    /// Rotation steps (left) whose Galois keys the server needs.
    pub fn steps(&self) -> Vec<i64> {
        let mut s = vec![1, self.bw as i64];
        if self.sd == 2 {
            s.push((self.bh * self.bw) as i64);
        }
        s
    }

    fn block_len(&self) -> usize {
        self.sd * self.bh * self.bw
    }

    fn blocks(&self) -> usize {
        self.channels * (self.dims[0] / self.sd) * self.blocks_y * self.blocks_x
    }

    /// Ciphertexts per direction.
    pub fn ciphertexts(&self) -> usize {
        self.blocks().div_ceil(2 * self.per_row)
    }

    /// Output extents.
    pub fn out_dims(&self) -> [usize; 3] {
        let [d, h, w] = self.dims;
        [d / self.sd, h / 2, w / 2]
    }

    /// Slot offset of block `b` in its ciphertext, and the ciphertext.
    fn place(&self, b: usize) -> (usize, usize) {
        let ct = b / (2 * self.per_row);
        let row = (b / self.per_row) % 2;
        (ct, row * self.half + (b % self.per_row) * self.block_len())
    }

    /// Block `b`'s origin: (channel, first slice, first row, first column).
    fn origin(&self, b: usize) -> (usize, usize, usize, usize) {
        let bx = b % self.blocks_x;
        let rest = b / self.blocks_x;
        let by = rest % self.blocks_y;
        let rest = rest / self.blocks_y;
        let slabs = self.dims[0] / self.sd;
        (
            rest / slabs,
            (rest % slabs) * self.sd,
            by * self.bh,
            bx * self.bw,
        )
    }

    /// The slots of every ciphertext holding `x`.
    fn pack(&self, x: &Tensor<u64>) -> Vec<Vec<u64>> {
        let [_, h, w] = self.dims;
        let mut cts = vec![vec![0u64; 2 * self.half]; self.ciphertexts()];
        for b in 0..self.blocks() {
            let (ct, off) = self.place(b);
            let (c, z0, y0, x0) = self.origin(b);
            let plane = x.channel(c);
            for a in 0..self.sd {
                for i in 0..self.bh.min(h - y0) {
                    let src = ((z0 + a) * h + y0 + i) * w + x0;
                    let len = self.bw.min(w - x0);
                    let dst = off + (a * self.bh + i) * self.bw;
                    cts[ct][dst..dst + len].copy_from_slice(&plane[src..src + len]);
                }
            }
        }
        cts
    }

    /// The window sums from the slots of every ciphertext (each window's first slot).
    fn unpack(&self, cts: &[Vec<u64>]) -> Tensor<u64> {
        let [od, oh, ow] = self.out_dims();
        let mut out = vec![0u64; self.channels * od * oh * ow];
        for b in 0..self.blocks() {
            let (ct, off) = self.place(b);
            let (c, z0, y0, x0) = self.origin(b);
            let (z, oy, ox) = (z0 / self.sd, y0 / 2, x0 / 2);
            for i in 0..(self.bh / 2).min(oh - oy) {
                for j in 0..(self.bw / 2).min(ow - ox) {
                    out[((c * od + z) * oh + oy + i) * ow + ox + j] =
                        cts[ct][off + 2 * i * self.bw + 2 * j];
                }
            }
        }
        Tensor::from_vec(self.channels, [od, oh, ow], out).expect("pooled shape")
    }

    fn check(&self, x: &Tensor<u64>, p: u64) -> Result<(), SecureError> {
        if x.channels() != self.channels || x.dims() != self.dims {
            return Err(SecureError::Protocol(format!(
                "average pool share has {} planes of {:?}, the layout expects {} of {:?}",
                x.channels(),
                x.dims(),
                self.channels,
                self.dims
            )));
        }
        if x.data().iter().any(|&v| v >= p) {
            return Err(SecureError::Protocol(
                "average pool share is not reduced mod p".into(),
            ));
        }
        Ok(())
    }
}

/// Alice's side of the rotation variant: returns her share of the window sums.
///
/// # Errors
/// Channel, wire and PAHE errors; [`SecureError::Protocol`] for a share of the wrong shape.
pub fn client_by_rotation(
    ch: &mut Channel,
    params: &Params,
    sk: &SecretKey,
    layout: &RotationLayout,
    x_a: &Tensor<u64>,
    prg: &mut Prg,
) -> Result<Tensor<u64>, SecureError> {
    layout.check(x_a, params.p())?;
    // Her shares, packed and decrypted, are erased when dropped (the plaintexts erase themselves).
    let packed = Zeroizing::new(layout.pack(x_a));
    let prgs: Vec<Prg> = (0..packed.len())
        .map(|_| Prg::from_seed(prg.next_seed()))
        .collect();
    let uploads = packed
        .par_iter()
        .zip(prgs)
        .map(|(slots, mut prg)| Ok(sk.encrypt_seeded(&params.encode(slots)?, &mut prg)))
        .collect::<Result<Vec<SeededCiphertext>, bunet_crypto::pahe::PaheError>>()?;
    let returned = {
        let mut ch = ch.labelled(LABEL);
        for ct in &uploads {
            ch.send_message(KIND_SEEDED_CIPHERTEXT, ct)?;
        }
        let max_len = params.ciphertext_len(params.max_level());
        (0..uploads.len())
            .map(|_| ch.recv_message::<Ciphertext>(KIND_CIPHERTEXT, max_len, params))
            .collect::<Result<Vec<_>, _>>()?
    };
    let slots = Zeroizing::new(
        returned
            .par_iter()
            .map(|ct| Ok(params.decode(&sk.decrypt(ct)?)))
            .collect::<Result<Vec<_>, bunet_crypto::pahe::PaheError>>()?,
    );
    Ok(layout.unpack(&slots))
}

/// The key set among `keys` that holds the rotation by `k`.
fn keys_for<'k>(
    params: &Params,
    keys: &'k [GaloisKeys],
    k: i64,
) -> Result<&'k GaloisKeys, SecureError> {
    let g = params.rotation_element(k);
    keys.iter()
        .find(|set| set.elements().contains(&g))
        .ok_or_else(|| SecureError::Protocol(format!("no Galois key for a rotation by {k}")))
}

/// Bob's side of the rotation variant: returns his share of the window sums.
///
/// # Errors
/// Channel, wire and PAHE errors; [`SecureError::Protocol`] for a share of the wrong shape or
/// a missing Galois key.
#[allow(clippy::too_many_arguments)] // one protocol step's whole context
pub fn server_by_rotation(
    ch: &mut Channel,
    params: &Params,
    eval: &Evaluator,
    pk: &PublicKey,
    keys: &[GaloisKeys],
    layout: &RotationLayout,
    x_b: &Tensor<u64>,
    prg: &mut Prg,
) -> Result<Tensor<u64>, SecureError> {
    layout.check(x_b, params.p())?;
    let steps = layout.steps();
    let step_keys = steps
        .iter()
        .map(|&k| keys_for(params, keys, k))
        .collect::<Result<Vec<_>, _>>()?;
    let received = {
        let mut ch = ch.labelled(LABEL);
        let max_len = params.seeded_ciphertext_len();
        (0..layout.ciphertexts())
            .map(|_| ch.recv_message::<SeededCiphertext>(KIND_SEEDED_CIPHERTEXT, max_len, params))
            .collect::<Result<Vec<_>, _>>()?
    };
    // Bob's packed share and his masks (his output share) are erased when dropped.
    let own = Zeroizing::new(layout.pack(x_b));
    let prgs: Vec<Prg> = (0..received.len())
        .map(|_| Prg::from_seed(prg.next_seed()))
        .collect();
    let outputs = received
        .par_iter()
        .zip(own.par_iter())
        .zip(prgs)
        .map(|((seeded, mine), mut prg)| {
            let mut ct = seeded.expand();
            eval.add_plain_assign(&mut ct, &params.encode(mine)?)?;
            for (&k, set) in steps.iter().zip(&step_keys) {
                let rotated = eval.rotate_rows(&ct, k, set)?;
                eval.add_assign(&mut ct, &rotated)?;
            }
            let mask = random_mask(params, &mut prg);
            let ct = eval.finalize_for_return(ct, &mask, pk, &mut prg)?;
            Ok((ct, mask))
        })
        .collect::<Result<Vec<_>, bunet_crypto::pahe::PaheError>>()?;
    {
        let mut ch = ch.labelled(LABEL);
        for (ct, _) in &outputs {
            ch.send_message(KIND_CIPHERTEXT, ct)?;
        }
        ch.flush()?;
    }
    let masks: Zeroizing<Vec<Vec<u64>>> =
        Zeroizing::new(outputs.into_iter().map(|(_, m)| m).collect());
    Ok(layout.unpack(&masks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SplitMix64;

    fn random(channels: usize, dims: [usize; 3], p: u64, seed: u64) -> Tensor<u64> {
        let mut rng = SplitMix64::from_seed_for_tests(seed);
        let n = channels * dims.iter().product::<usize>();
        Tensor::from_vec(channels, dims, (0..n).map(|_| rng.next_u64() % p).collect()).unwrap()
    }

    /// The rotation sums simulated in the clear on the packed slots equal the local sums.
    fn simulate(layout: &RotationLayout, x: &Tensor<u64>, p: u64) -> Tensor<u64> {
        let half = layout.half;
        let mut cts = layout.pack(x);
        for ct in &mut cts {
            for k in layout.steps() {
                let k = k as usize;
                let rotated: Vec<u64> = (0..2 * half)
                    .map(|s| {
                        let (row, j) = (s / half, s % half);
                        ct[row * half + (j + k) % half]
                    })
                    .collect();
                for (a, b) in ct.iter_mut().zip(rotated) {
                    *a = (*a + b) % p;
                }
            }
        }
        layout.unpack(&cts)
    }

    /// The protocol with the q24 preset (N = 8192) in 2D and 3D: the shares reconstruct the
    /// window sums of the shared tensor; Alice's share alone is not the sum.
    #[test]
    fn rotation_protocol_reconstructs_window_sums() {
        use bunet_crypto::channel::ChannelConfig;
        use bunet_crypto::pahe::{GaloisKeys, PublicKey, SecretKey};
        let params = crate::secure::Preset::Q24.pahe_params();
        let p = params.p();
        for (c, dims, deep) in [(3, [4, 8, 8], true), (2, [1, 16, 96], false)] {
            let x = random(c, dims, p, 1);
            let x_a = random(c, dims, p, 2);
            let x_b = Tensor::from_vec(
                c,
                dims,
                x.data()
                    .iter()
                    .zip(x_a.data())
                    .map(|(&x, &a)| (x + p - a) % p)
                    .collect(),
            )
            .unwrap();
            let layout = RotationLayout::new(c, dims, deep, params.slots()).unwrap();
            let mut prg = Prg::from_os_entropy();
            let sk = SecretKey::generate(&params, &mut prg);
            let pk = PublicKey::generate(&sk, &mut prg);
            let keys = vec![GaloisKeys::generate(&sk, &layout.steps(), false, &mut prg)];
            let eval = Evaluator::new(&params);
            let (mut ca, mut cb) = Channel::in_memory_pair(ChannelConfig::default());
            let (ya, yb) = std::thread::scope(|s| {
                let bob = s.spawn(|| {
                    let mut prg = Prg::from_os_entropy();
                    server_by_rotation(&mut cb, &params, &eval, &pk, &keys, &layout, &x_b, &mut prg)
                        .unwrap()
                });
                let ya =
                    client_by_rotation(&mut ca, &params, &sk, &layout, &x_a, &mut prg).unwrap();
                (ya, bob.join().unwrap())
            });
            let want = sum_local(&x, deep, p);
            let got: Vec<u64> = ya
                .data()
                .iter()
                .zip(yb.data())
                .map(|(&a, &b)| (a + b) % p)
                .collect();
            assert_eq!(got, want.data(), "{dims:?}");
            assert_ne!(ya.data(), want.data());
        }
    }

    #[test]
    fn packed_rotation_sums_equal_local_window_sums() {
        let p = crate::quant::Q24_P;
        let cases = [
            (3, [1, 8, 12], false, 64),
            (5, [1, 32, 32], false, 8192),
            (2, [1, 64, 128], false, 512),
            (3, [4, 8, 8], true, 256),
            (2, [2, 16, 32], true, 64),
            (1, [1, 2, 2], false, 8),
        ];
        for (i, (c, dims, deep, slots)) in cases.into_iter().enumerate() {
            let x = random(c, dims, p, i as u64);
            let layout = RotationLayout::new(c, dims, deep, slots).unwrap();
            assert_eq!(
                simulate(&layout, &x, p),
                sum_local(&x, deep, p),
                "{dims:?} {slots}"
            );
        }
        assert!(RotationLayout::new(1, [1, 3, 4], false, 64).is_err());
        assert!(RotationLayout::new(1, [3, 4, 4], true, 64).is_err());
    }
}
