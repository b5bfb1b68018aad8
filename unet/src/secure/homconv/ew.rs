//! The coefficient HomConv with encrypted weights (`coeff-ew`): the coefficient packing of
//! `coeff` with the roles of encryption swapped, so that per run only responses travel.
//!
//! # Protocol (per layer)
//! - *Set-up, once per layer and session (per extents), before the layer's first run:* the
//!   server, holding a
//!   key pair of its own (fresh per session), encrypts its kernel polynomials — the
//!   [`CoeffLayout`]'s, `(output group, upload polynomial)` in that order — under its secret
//!   key at the plan's upload level and sends them as seeded ciphertexts
//!   ([`KIND_COEFF_UPLOAD`], `⌈c_out/M⌉ · ⌈c_in/G⌉` messages, each bounded by the layout's
//!   length and level). The client expands and keeps them while the layer's extents repeat
//!   (the layout, hence the tile shape, is fixed per extents: every tile of every request
//!   reuses them; edge tiles are padded to the common shape by the layout's gather).
//!   The session driver sends every layer's in a request's offline phase (block `weights`)
//!   when it builds the layouts for new extents — after the request is accepted, so a refused
//!   one costs nothing, and apart from the online blocks, so the reports give the per-run
//!   cost and the set-up separately; a side used alone sends it at its first run.
//! - *Per run:* the client forms its share's upload polynomials (lifted centred,
//!   [`Params::prepare_at`]), computes `Σ_g Enc_S(w_{g,o}) ⊙ x_g` per (output group, tile),
//!   and returns it with its mask `M`, re-randomised with the server's public key, flooded for
//!   the share's bound and switched down ([`Evaluator::finalize_coeffs`], the `coeff`
//!   packing's `respond`); its share of the outputs is `M`. The server decrypts
//!   ([`SecretKey::decrypt_coeffs`], the packing's `decrypt` with its own key) `conv(x_c) − M`
//!   and adds `conv(x_s) + B` computed in the clear. Bit-identical to [`crate::fixed::conv`].
//!
//! The message flow is the `exchange` module's, run in the other direction: the client's
//! half is `send_responses`, the server's `receive_responses`. Privacy and noise: the
//! `bunet-crypto` coefficient module docs, "Encrypted weights" (flood for `c_in·L` share
//! coefficients of `|x| ≤ (p − 1)/2`, [`Params::coeff_share_plan`]; the `2^-40` volume
//! argument unchanged).

use std::sync::{Arc, Mutex};

use bunet_crypto::channel::Channel;
use bunet_crypto::pahe::{
    Ciphertext, CoeffUpload, Evaluator, KIND_COEFF_UPLOAD, PaheError, Params, PreparedPlaintext,
    PublicKey, SecretKey,
};
use bunet_crypto::prg::Prg;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::exchange::{self, Packing, pipeline_step, task_prgs, tile_batches};
use super::{CoeffLayout, HomConvError, LABEL};
use crate::quant::QuantModel;
use crate::tensor::Tensor;

/// The channel label of the weight ciphertexts (the set-up), apart from [`LABEL`] (the runs).
pub const SETUP_LABEL: &str = "homconv-setup";

/// Alice's side of the encrypted-weights HomConv for one layer shape: the server's public key
/// and, after the first run, the layer's weight ciphertexts (NTT domain).
pub struct EwHomConvClient {
    params: Params,
    layout: CoeffLayout,
    server_pk: PublicKey,
    eval: Evaluator,
    /// `weights[og · uploads + u]`, empty until the set-up arrived.
    weights: Mutex<Vec<Ciphertext>>,
}

impl std::fmt::Debug for EwHomConvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwHomConvClient")
            .field("layout", &self.layout)
            .field("holds_weights", &self.holds_weights())
            .finish_non_exhaustive()
    }
}

impl EwHomConvClient {
    /// Alice's side for `layout` (of [`CoeffLayout::encrypted_weights`]) under `params`, with
    /// the server's public key.
    ///
    /// # Errors
    /// [`HomConvError::LayoutMismatch`]; [`HomConvError::Unsupported`] for a layout of the
    /// other mode; [`HomConvError::Pahe`] for a key of other parameters.
    pub fn new(
        params: &Params,
        layout: CoeffLayout,
        server_pk: PublicKey,
    ) -> Result<Self, HomConvError> {
        layout.base().check_params(params)?;
        layout.check_mode(true)?;
        if server_pk.params() != params {
            return Err(PaheError::ParamsMismatch {
                expected: params.fingerprint(),
                found: server_pk.params().fingerprint(),
            }
            .into());
        }
        Ok(Self {
            params: params.clone(),
            eval: Evaluator::new(params),
            layout,
            server_pk,
            weights: Mutex::new(Vec::new()),
        })
    }

    /// The layout.
    pub fn layout(&self) -> &CoeffLayout {
        &self.layout
    }

    /// Whether the layer's weight ciphertexts are held (after the first run).
    pub fn holds_weights(&self) -> bool {
        !self.lock_weights().is_empty()
    }

    /// Bytes the weight ciphertexts take in memory once received (NTT domain, both halves).
    pub fn weight_memory(&self) -> u64 {
        weight_memory(&self.params, &self.layout)
    }

    fn lock_weights(&self) -> std::sync::MutexGuard<'_, Vec<Ciphertext>> {
        // Replaced only whole: complete or empty even after a panic.
        self.weights.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receives the set-up: every weight ciphertext, each bounded by the layout's length and
    /// checked for its level, expanded a pipeline step at a time.
    fn receive_weights(&self, ch: &mut Channel) -> Result<Vec<Ciphertext>, HomConvError> {
        let (params, layout) = (&self.params, &self.layout);
        let level = layout.plan().upload_level;
        let max_len = params.coeff_upload_len(level);
        let (count, _) = layout.setup_ciphertexts(params);
        let mut out = Vec::with_capacity(count);
        let step = pipeline_step();
        for first in (0..count).step_by(step) {
            let seeded = (first..(first + step).min(count))
                .map(|_| {
                    let u: CoeffUpload = ch.recv_message(KIND_COEFF_UPLOAD, max_len, params)?;
                    layout.check_upload(&u)?;
                    Ok(u)
                })
                .collect::<Result<Vec<_>, HomConvError>>()?;
            out.par_extend(seeded.par_iter().map(CoeffUpload::expand));
        }
        Ok(out)
    }

    /// The set-up, if not done yet: receives the layer's weight ciphertexts (counted under
    /// [`SETUP_LABEL`]) and keeps them. The session driver calls it in a request's offline
    /// phase; [`EwHomConvClient::run`] calls it first.
    ///
    /// # Errors
    /// Channel and wire errors (a message of the wrong kind, length or level included).
    pub fn setup(&self, ch: &mut Channel) -> Result<(), HomConvError> {
        let mut weights = self.lock_weights();
        if weights.is_empty() {
            let mut ch = ch.labelled(SETUP_LABEL);
            *weights = self.receive_weights(&mut ch)?;
        }
        Ok(())
    }

    /// Runs the layer on Alice's share `x_a`: her share `Y_A` (the masks). Without the set-up
    /// done ([`EwHomConvClient::setup`]) the server's weight ciphertexts arrive first.
    ///
    /// # Errors
    /// [`HomConvError::Shape`] / [`HomConvError::Unreduced`] for a bad share; channel and
    /// wire errors (a set-up message of the wrong kind, length or level included).
    pub fn run(
        &self,
        ch: &mut Channel,
        x_a: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        let (params, layout) = (&self.params, &self.layout);
        let l = layout.base();
        l.check_share(x_a, l.c_in, params.p())?;
        self.setup(ch)?;
        let weights = self.lock_weights();
        let mut ch = ch.labelled(LABEL);
        let ch = &mut *ch;
        let (ups, groups) = (layout.uploads_per_tile(), layout.groups());
        let level = layout.plan().upload_level;
        let mut y = vec![0u64; l.c_out * l.out_plane()];
        for batch in tile_batches(l.tiles(), ups) {
            let nt = batch.len();
            // The share's upload polynomials of the batch, `[upload][tile]`, lifted centred.
            let shares: Vec<PreparedPlaintext> = (0..ups * nt)
                .into_par_iter()
                .map(|i| {
                    let coeffs = layout.gather(x_a, i / nt, batch.start + i % nt);
                    let pt = params
                        .plaintext_from_coeffs(coeffs)
                        .expect("N residues below p");
                    params.prepare_at(&pt, level)
                })
                .collect();
            let info: Vec<_> = batch.clone().map(|t| Packing::tile(layout, t)).collect();
            let prgs = task_prgs(prg, groups * nt);
            let mut items = vec![(); groups * nt];
            let ctx = (layout, params, &self.eval);
            let job = (&batch, &info[..]);
            let pk = &self.server_pk;
            exchange::send_responses(ctx, ch, pk, job, 0, &mut items, prgs, &mut y, |i, ()| {
                let (g, ti) = (i / nt, i % nt);
                let terms: Vec<_> = (0..ups)
                    .map(|u| (&weights[g * ups + u], &shares[u * nt + ti]))
                    .collect();
                self.eval.mul_plain_sum(&terms)
            })?;
        }
        Ok(Tensor::from_vec(l.c_out, l.dims, y).expect("c_out planes"))
    }
}

/// Bytes of a layer's weight ciphertexts in the client's memory: `⌈c_out/M⌉·⌈c_in/G⌉`
/// ciphertexts of two polynomials at the upload level.
pub fn weight_memory(params: &Params, layout: &CoeffLayout) -> u64 {
    let (count, _) = layout.setup_ciphertexts(params);
    (count * 2 * layout.plan().upload_level * params.n() * 8) as u64
}

/// Bob's side of the encrypted-weights HomConv for one conv of a model, with the session's
/// own key pair. `Debug` shows the shape, never the weights or the key.
pub struct EwHomConvServer<'a> {
    params: Params,
    layout: CoeffLayout,
    model: &'a QuantModel,
    conv: usize,
    /// `W mod p`, `[c_out][c_in][taps]`.
    weight: Vec<u64>,
    sk: Arc<SecretKey>,
    /// Whether the set-up was sent (the first run sends it).
    sent: Mutex<bool>,
}

impl std::fmt::Debug for EwHomConvServer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwHomConvServer")
            .field("layout", &self.layout)
            .field("conv", &self.conv)
            .finish_non_exhaustive()
    }
}

impl<'a> EwHomConvServer<'a> {
    /// Bob's side for conv `conv` of `model` with `layout` (of
    /// [`CoeffLayout::encrypted_weights`]) under `params`, with the session's secret key `sk`
    /// (its public key goes to the client once per session). Any weight is taken: the noise
    /// does not depend on it.
    ///
    /// # Errors
    /// [`HomConvError::Modulus`]; [`HomConvError::Unsupported`] for a layout of another conv
    /// or of the other mode; [`HomConvError::LayoutMismatch`]; [`HomConvError::Pahe`] for a
    /// key of other parameters.
    pub fn new(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        layout: CoeffLayout,
        sk: Arc<SecretKey>,
    ) -> Result<Self, HomConvError> {
        let qc = super::layer_for(params, model, conv, layout.base())?;
        layout.check_mode(true)?;
        if sk.params() != params {
            return Err(PaheError::ParamsMismatch {
                expected: params.fingerprint(),
                found: sk.params().fingerprint(),
            }
            .into());
        }
        Ok(Self {
            params: params.clone(),
            weight: qc.weight_mod_p(params.p()),
            layout,
            model,
            conv,
            sk,
            sent: Mutex::new(false),
        })
    }

    /// The layout.
    pub fn layout(&self) -> &CoeffLayout {
        &self.layout
    }

    /// Whether the set-up (the weight ciphertexts) was sent.
    pub fn sent_weights(&self) -> bool {
        *self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encrypts and sends every weight ciphertext, a pipeline step at a time (so the server
    /// holds one step's ciphertexts at a time).
    fn send_weights(&self, ch: &mut Channel, prg: &mut Prg) -> Result<(), HomConvError> {
        let (params, layout) = (&self.params, &self.layout);
        let ups = layout.uploads_per_tile();
        let level = layout.plan().upload_level;
        let (count, _) = layout.setup_ciphertexts(params);
        let mut prgs = task_prgs(prg, count);
        let step = pipeline_step();
        for (s, piece) in prgs.chunks_mut(step).enumerate() {
            let cts = piece
                .par_iter_mut()
                .enumerate()
                .map(|(k, prg)| {
                    let i = s * step + k;
                    let kernel = Zeroizing::new(layout.kernel(&self.weight, i / ups, i % ups));
                    self.sk.encrypt_coeffs(&kernel, level, prg)
                })
                .collect::<Result<Vec<_>, PaheError>>()?;
            for ct in &cts {
                ch.send_message(KIND_COEFF_UPLOAD, ct)?;
            }
        }
        ch.flush()?;
        Ok(())
    }

    /// The set-up, if not sent yet: encrypts and sends the layer's weight ciphertexts (counted
    /// under [`SETUP_LABEL`]). The session driver calls it in a request's offline phase;
    /// [`EwHomConvServer::run`] calls it first.
    ///
    /// # Errors
    /// Channel errors.
    pub fn setup(&self, ch: &mut Channel, prg: &mut Prg) -> Result<(), HomConvError> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        if !*sent {
            let mut ch = ch.labelled(SETUP_LABEL);
            self.send_weights(&mut ch, prg)?;
            *sent = true;
        }
        Ok(())
    }

    /// Runs the layer on Bob's share `x_b`: his share `Y_B = conv(X_B) + B + conv(X_A) − M`.
    /// Without the set-up done ([`EwHomConvServer::setup`]) it sends it first.
    ///
    /// # Errors
    /// [`HomConvError::Shape`] / [`HomConvError::Unreduced`] for a bad share; channel, wire
    /// and decryption errors (a response of the wrong kind, length or level included).
    pub fn run(
        &self,
        ch: &mut Channel,
        x_b: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        let (params, layout) = (&self.params, &self.layout);
        let l = layout.base();
        l.check_share(x_b, l.c_in, params.p())?;
        self.setup(ch, prg)?;
        let mut ch = ch.labelled(LABEL);
        let ch = &mut *ch;
        let mut y = crate::fixed::conv(self.model, self.conv, x_b).into_vec();
        for batch in tile_batches(l.tiles(), layout.uploads_per_tile()) {
            exchange::receive_responses(layout, params, ch, &self.sk, batch, (&mut y, true))?;
        }
        Ok(Tensor::from_vec(l.c_out, l.dims, y).expect("c_out planes"))
    }
}
