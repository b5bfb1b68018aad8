//! The HomConv round trips written once for both linear backends. Per round trip of tiles the
//! client encrypts and uploads its share, the server multiplies and accumulates with its
//! prepared filters, masks, floods and returns one response per (output group, tile), and both
//! parties place their share of every output. What a backend packs and how it masks is its
//! [`Packing`] (the DFT backend's [`Dft`] here, [`super::CoeffLayout`] in `coeff`); the order
//! of the messages, the batching, the filter budget and the parallel work are this module's.

use std::ops::Range;
use std::sync::Mutex;

use bunet_crypto::channel::Channel;
use bunet_crypto::pahe::{
    Ciphertext, Evaluator, KIND_CIPHERTEXT, KIND_SEEDED_CIPHERTEXT, PaheError, Params,
    PreparedPlaintext, PublicKey, SecretKey, SeededCiphertext, random_mask,
};
use bunet_crypto::prg::Prg;
use bunet_crypto::wire::{Decode, Encode};
use bunet_kernels::ntt::CyclicPlan;
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::{HomConvError, LABEL, Layout, UPLOAD_BATCH};
use crate::quant::{QuantConv, QuantModel};
use crate::tensor::Tensor;

/// What a linear backend supplies to the shared round trips: its messages, its packing of
/// shares and filters, and how it masks a response.
pub(super) trait Packing: Sync {
    /// A client upload (one ciphertext of input).
    type Upload: Encode + Decode<Context = Params> + Send + Sync;
    /// A server response (one output group of one tile).
    type Response: Encode + Send + Sync;
    /// A response as the client received it, with what decrypting it needs.
    type Received: Send + Sync;
    /// What both parties derive per tile to place a response's outputs.
    type Tile: Send + Sync;
    /// The message kind of an upload.
    const KIND_UPLOAD: u16;
    /// The message kind of a response.
    const KIND_RESPONSE: u16;

    /// The tile geometry.
    fn base(&self) -> &Layout;
    /// Upload ciphertexts per tile.
    fn uploads_per_tile(&self) -> usize;
    /// Output groups (responses per tile).
    fn groups(&self) -> usize;
    /// The per-tile data of tile `t`.
    fn tile(&self, t: usize) -> Self::Tile;

    /// The client's upload `upload` (an input channel or channel group) of tile `t`.
    ///
    /// # Errors
    /// Encoding errors.
    fn encrypt(
        &self,
        params: &Params,
        sk: &SecretKey,
        x: &Tensor<u64>,
        upload: usize,
        t: usize,
        prg: &mut Prg,
    ) -> Result<Self::Upload, PaheError>;
    /// Receives the response of group `group` for `tile`.
    ///
    /// # Errors
    /// Channel and wire errors.
    fn recv_response(
        &self,
        ch: &mut Channel,
        params: &Params,
        group: usize,
        tile: &Self::Tile,
    ) -> Result<Self::Received, HomConvError>;
    /// The client's share of a response's outputs (the decrypted plaintext, erased on drop).
    ///
    /// # Errors
    /// Decryption errors.
    fn decrypt(
        &self,
        params: &Params,
        sk: &SecretKey,
        r: &Self::Received,
    ) -> Result<Zeroizing<Vec<u64>>, PaheError>;

    /// The largest encoded upload.
    fn upload_max_len(&self, params: &Params) -> usize;
    /// Checks what the wire format cannot (e.g. an upload's level).
    ///
    /// # Errors
    /// [`HomConvError::Pahe`] for an upload the layout did not ask for.
    fn check_upload(&self, u: &Self::Upload) -> Result<(), HomConvError>;
    /// An upload as a ciphertext to multiply.
    fn expand(u: &Self::Upload) -> Ciphertext;
    /// Bytes of the prepared filters of one output group.
    fn group_bytes(&self, params: &Params) -> usize;
    /// The prepared filters of output groups `groups`, `[group][upload]` order.
    ///
    /// # Errors
    /// Encoding errors.
    fn prepare(
        &self,
        params: &Params,
        weight: &[u64],
        groups: Range<usize>,
    ) -> Result<Vec<PreparedPlaintext>, PaheError>;
    /// The response of group `group` for `tile` from the accumulated product `acc`, and the
    /// server's share of its outputs (the mask, erased on drop: with the client's share it
    /// gives the layer's output).
    ///
    /// # Errors
    /// PAHE errors.
    #[allow(clippy::too_many_arguments)] // one response's whole context
    fn respond(
        &self,
        params: &Params,
        eval: &Evaluator,
        acc: Ciphertext,
        group: usize,
        tile: &Self::Tile,
        pk: &PublicKey,
        prg: &mut Prg,
    ) -> Result<(Self::Response, Zeroizing<Vec<u64>>), PaheError>;

    /// Writes (or with `add`, adds mod `p`) a response's share `values` of group `group` in
    /// tile `t` into the output planes `y`.
    #[allow(clippy::too_many_arguments)] // one response's whole context
    fn place(
        &self,
        values: &[u64],
        group: usize,
        t: usize,
        tile: &Self::Tile,
        y: &mut [u64],
        p: u64,
        add: bool,
    );
}

/// Independent PRGs for parallel tasks, drawn from `prg`.
pub(super) fn task_prgs(prg: &mut Prg, count: usize) -> Vec<Prg> {
    (0..count)
        .map(|_| Prg::from_seed(prg.next_seed()))
        .collect()
}

/// The tiles of each round trip: `⌊UPLOAD_BATCH / uploads per tile⌋` (at least one) each.
pub(super) fn tile_batches(
    tiles: usize,
    uploads_per_tile: usize,
) -> impl Iterator<Item = Range<usize>> {
    let step = (UPLOAD_BATCH / uploads_per_tile).clamp(1, tiles);
    (0..tiles)
        .step_by(step)
        .map(move |t| t..(t + step).min(tiles))
}

/// Uploads or responses handled per step of a round trip's pipeline. Each step's work runs in
/// parallel and its frames are queued at once (or taken as they arrived), while the channel's
/// threads move the frames of the steps before and after it: compute overlaps transfer inside a
/// round trip, not only across sessions. A few per thread, so that a step keeps every thread
/// busy and a slow frame delays little work.
pub(super) fn pipeline_step() -> usize {
    4 * rayon::current_num_threads().max(1)
}

/// Alice's side of one layer: her share of the output from her share `x_a`.
///
/// # Errors
/// [`HomConvError::Shape`] / [`HomConvError::Unreduced`] for a bad share; channel, wire and
/// decryption errors.
pub(super) fn run_client<P: Packing>(
    packing: &P,
    params: &Params,
    ch: &mut Channel,
    sk: &SecretKey,
    x_a: &Tensor<u64>,
    prg: &mut Prg,
) -> Result<Tensor<u64>, HomConvError> {
    let l = packing.base();
    l.check_share(x_a, l.c_in, params.p())?;
    let mut ch = ch.labelled(LABEL);
    let ch = &mut *ch;
    let plane = l.out_plane();
    let ups = packing.uploads_per_tile();
    let mut y = vec![0u64; l.c_out * plane];
    let step = pipeline_step();
    for batch in tile_batches(l.tiles(), ups) {
        let nt = batch.len();
        // Upload order within a batch: input channel (group), then tile. One PRG per upload,
        // drawn up front, so the ciphertexts do not depend on the step.
        let mut prgs = task_prgs(prg, ups * nt);
        for (s, piece) in prgs.chunks_mut(step).enumerate() {
            let uploads = piece
                .par_iter_mut()
                .enumerate()
                .map(|(k, prg)| {
                    let i = s * step + k;
                    packing.encrypt(params, sk, x_a, i / nt, batch.start + i % nt, prg)
                })
                .collect::<Result<Vec<_>, PaheError>>()?;
            // Queued at once: the channel's writer sends them while the next step encrypts.
            for u in &uploads {
                ch.send_message(P::KIND_UPLOAD, u)?;
            }
        }
        ch.flush()?;
        drop(prgs);
        receive_responses(packing, params, ch, sk, batch, (&mut y, false))?;
    }
    Ok(Tensor::from_vec(l.c_out, l.dims, y).expect("c_out planes"))
}

/// Receives and decrypts with `sk` the responses of the round trip of `batch`'s tiles (group,
/// then tile), and writes (with `add`, adds mod `p`) the decrypted shares into the output
/// planes `y`: the client's half of every round trip, and the server's in the
/// encrypted-weights mode (`ew`), which decrypts with its own key.
///
/// # Errors
/// Channel, wire and decryption errors.
pub(super) fn receive_responses<P: Packing>(
    packing: &P,
    params: &Params,
    ch: &mut Channel,
    sk: &SecretKey,
    batch: Range<usize>,
    (y, add): (&mut [u64], bool),
) -> Result<(), HomConvError> {
    let (nt, p, step) = (batch.len(), params.p(), pipeline_step());
    // Response order within a batch: group, then tile. Each step is decrypted as soon as
    // it has arrived, while the channel's reader takes in the next.
    let tiles: Vec<P::Tile> = batch.clone().map(|t| packing.tile(t)).collect();
    let responses = packing.groups() * nt;
    for first in (0..responses).step_by(step) {
        let range = first..(first + step).min(responses);
        let received = range
            .clone()
            .map(|i| packing.recv_response(ch, params, i / nt, &tiles[i % nt]))
            .collect::<Result<Vec<_>, HomConvError>>()?;
        let shares = received
            .par_iter()
            .map(|r| packing.decrypt(params, sk, r))
            .collect::<Result<Vec<_>, PaheError>>()?;
        for (i, share) in range.zip(&shares) {
            let (g, ti) = (i / nt, i % nt);
            packing.place(share, g, batch.start + ti, &tiles[ti], y, p, add);
        }
    }
    Ok(())
}

/// When a server side prepares the filters that fit its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterTiming {
    /// At construction, kept for every run (the library's default for a side built by hand).
    Eager,
    /// When a run's first client upload has arrived, so that a client that announced a
    /// request but sends nothing costs the server no filters; kept for later runs with `keep`,
    /// else dropped when the run ends (the session driver keeps them only while every layer's
    /// fit the budget together).
    Deferred {
        /// Keep the prepared filters for later runs.
        keep: bool,
    },
}

/// Bob's side of one layer for either backend: the filters prepared once if they fit the
/// budget (at construction or at the first run's first upload, per [`FilterTiming`]), else
/// per batch of output groups in every run.
pub(super) struct ServerCore<'a, P> {
    pub(super) params: Params,
    pub(super) packing: P,
    eval: Evaluator,
    model: &'a QuantModel,
    conv: usize,
    /// `W mod p`, `[c_out][c_in][taps]`.
    weight: Vec<u64>,
    /// Output groups whose filters are prepared at a time when they are streamed.
    batch: usize,
    /// When the filters that fit the budget are prepared and whether they are kept.
    timing: FilterTiming,
    /// `filters[g · uploads + u]`: every group once prepared if they fit the budget, else
    /// empty. Behind a mutex because a run (`&self`) may prepare or drop them.
    filters: Mutex<Vec<PreparedPlaintext>>,
}

impl<P: Packing + std::fmt::Debug> std::fmt::Debug for ServerCore<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCore")
            .field("packing", &self.packing)
            .field("conv", &self.conv)
            .field("batch", &self.batch)
            .field("streams_filters", &self.streams_filters())
            .finish_non_exhaustive()
    }
}

impl<'a, P: Packing> ServerCore<'a, P> {
    /// Bob's side of conv `conv` (`qc`, checked by [`super::layer_for`]) of `model`, keeping
    /// at most `budget` bytes of prepared filters.
    ///
    /// # Errors
    /// Encoding errors of the filters.
    pub(super) fn new(
        params: &Params,
        model: &'a QuantModel,
        conv: usize,
        qc: &QuantConv,
        packing: P,
        budget: usize,
        timing: FilterTiming,
    ) -> Result<Self, HomConvError> {
        let weight = qc.weight_mod_p(params.p());
        let groups = packing.groups();
        let batch = (budget / packing.group_bytes(params)).clamp(1, groups);
        let filters = if batch == groups && timing == FilterTiming::Eager {
            packing.prepare(params, &weight, 0..groups)?
        } else {
            Vec::new()
        };
        Ok(Self {
            params: params.clone(),
            eval: Evaluator::new(params),
            packing,
            model,
            conv,
            weight,
            batch,
            timing,
            filters: Mutex::new(filters),
        })
    }

    /// Whether the filters are prepared per batch of groups in every run.
    pub(super) fn streams_filters(&self) -> bool {
        self.batch < self.packing.groups()
    }

    /// Whether prepared filters are held now (for tests of the deferral).
    pub(super) fn holds_filters(&self) -> bool {
        !self.lock_filters().is_empty()
    }

    /// The filters, also after a run panicked while holding them (the vector is only ever
    /// replaced whole, so it is complete or empty).
    fn lock_filters(&self) -> std::sync::MutexGuard<'_, Vec<PreparedPlaintext>> {
        self.filters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bob's share of the output from his share `x_b`, with Alice's public key.
    ///
    /// # Errors
    /// [`HomConvError::Shape`] / [`HomConvError::Unreduced`] for a bad share; channel, wire
    /// and PAHE errors.
    pub(super) fn run(
        &self,
        ch: &mut Channel,
        pk: &PublicKey,
        x_b: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, HomConvError> {
        let l = self.packing.base();
        l.check_share(x_b, l.c_in, self.params.p())?;
        let mut ch = ch.labelled(LABEL);
        let ch = &mut *ch;
        let (packing, params) = (&self.packing, &self.params);
        let max_len = packing.upload_max_len(params);
        let (ups, groups) = (packing.uploads_per_tile(), packing.groups());
        let mut filters = self.lock_filters();
        // Y_B = conv(X_B) + B + the masks, added as they are drawn. Computed (like the
        // filters) only once the client's first upload has arrived, so that a request alone
        // makes the server allocate nothing of the layer's size.
        let mut y: Option<Vec<u64>> = None;
        // With every group's filters at hand, each step of uploads is multiplied into the
        // accumulators as soon as it has arrived (while the channel's reader takes in the next)
        // instead of after the round trip's last; streamed filters need all uploads at hand
        // for each batch of groups.
        let accumulate = !self.streams_filters();
        let step = pipeline_step();
        for tiles in tile_batches(l.tiles(), ups) {
            let nt = tiles.len();
            let count = ups * nt;
            let mut inputs = Vec::with_capacity(if accumulate { 0 } else { count });
            let mut accs: Vec<Option<Ciphertext>> = if accumulate {
                vec![None; groups * nt]
            } else {
                Vec::new()
            };
            let mut pending = Vec::with_capacity(step.min(count));
            for received in 1..=count {
                let u = ch.recv_message::<P::Upload>(P::KIND_UPLOAD, max_len, params)?;
                packing.check_upload(&u)?;
                pending.push(u);
                if y.is_none() {
                    // The rest of the round trip is arriving meanwhile.
                    y = Some(crate::fixed::conv(self.model, self.conv, x_b).into_vec());
                }
                if filters.is_empty() && accumulate {
                    *filters = packing.prepare(params, &self.weight, 0..groups)?;
                }
                if pending.len() == step || received == count {
                    let expanded: Vec<Ciphertext> = pending.par_iter().map(P::expand).collect();
                    pending.clear();
                    if accumulate {
                        let first = received - expanded.len();
                        self.accumulate(&mut accs, &expanded, first, nt, &filters)?;
                    } else {
                        inputs.extend(expanded);
                    }
                }
            }
            let info: Vec<P::Tile> = tiles.clone().map(|t| packing.tile(t)).collect();
            let y = y.as_mut().expect("computed at the first upload");
            if accumulate {
                // One batch of all groups: the PRG draws of `respond_batch` for it.
                let prgs = task_prgs(prg, groups * nt);
                let job = (&tiles, &info[..]);
                let ctx = (&self.packing, &self.params, &self.eval);
                send_responses(ctx, ch, pk, job, 0, &mut accs, prgs, y, |_, acc| {
                    Ok(acc
                        .take()
                        .expect("every accumulator took its tile's uploads"))
                })?;
                continue;
            }
            for first in (0..groups).step_by(self.batch) {
                let batch = first..(first + self.batch).min(groups);
                let job = (&tiles, &info[..], &filters[..]);
                self.respond_batch(ch, pk, &inputs, job, batch, y, prg)?;
            }
        }
        if self.timing == (FilterTiming::Deferred { keep: false }) {
            // Not needed again this request, and the next layer's may be as large.
            *filters = Vec::new();
        }
        let y = match y {
            Some(y) => y,
            // No tiles (empty extents never pass the layout; kept total for safety).
            None => crate::fixed::conv(self.model, self.conv, x_b).into_vec(),
        };
        Ok(Tensor::from_vec(l.c_out, l.dims, y).expect("c_out planes"))
    }

    /// The responses of output groups `batch` for the round trip's `tiles`, sent in (group,
    /// tile) order; the masks are added to `y`.
    #[allow(clippy::too_many_arguments)] // one batch's whole context
    fn respond_batch(
        &self,
        ch: &mut Channel,
        pk: &PublicKey,
        inputs: &[Ciphertext],
        (tiles, info, prepared): (&Range<usize>, &[P::Tile], &[PreparedPlaintext]),
        batch: Range<usize>,
        y: &mut [u64],
        prg: &mut Prg,
    ) -> Result<(), HomConvError> {
        let (packing, params) = (&self.packing, &self.params);
        let (ups, nt) = (packing.uploads_per_tile(), tiles.len());
        let streamed;
        let filters = if prepared.is_empty() {
            streamed = packing.prepare(params, &self.weight, batch.clone())?;
            &streamed[..]
        } else {
            &prepared[batch.start * ups..batch.end * ups]
        };
        let prgs = task_prgs(prg, batch.len() * nt);
        let mut items = vec![(); batch.len() * nt];
        let job = (tiles, info);
        let ctx = (&self.packing, &self.params, &self.eval);
        send_responses(
            ctx,
            ch,
            pk,
            job,
            batch.start,
            &mut items,
            prgs,
            y,
            |i, ()| {
                let (gi, ti) = (i / nt, i % nt);
                let filters = &filters[gi * ups..(gi + 1) * ups];
                let terms: Vec<_> = filters
                    .iter()
                    .enumerate()
                    .map(|(u, w)| (&inputs[u * nt + ti], w))
                    .collect();
                self.eval.mul_plain_sum(&terms)
            },
        )
    }

    /// Multiplies uploads `first..first + inputs.len()` of a round trip (`[upload][tile]`
    /// order, `nt` tiles) into the accumulators `accs` (`[group][tile]`), each with its
    /// filter. Every accumulator takes its tile's uploads in upload order, the order
    /// `respond_batch` adds them in, so the sums are the same ciphertexts.
    fn accumulate(
        &self,
        accs: &mut [Option<Ciphertext>],
        inputs: &[Ciphertext],
        first: usize,
        nt: usize,
        filters: &[PreparedPlaintext],
    ) -> Result<(), PaheError> {
        let ups = self.packing.uploads_per_tile();
        accs.par_iter_mut().enumerate().try_for_each(|(j, acc)| {
            let (g, t) = (j / nt, j % nt);
            let skip = (t + nt - first % nt) % nt;
            // The step's uploads of this tile in one lazy pass (one reduction per coefficient,
            // not per product): the same residues as adding them one by one.
            let terms: Vec<_> = inputs
                .iter()
                .enumerate()
                .skip(skip)
                .step_by(nt)
                .map(|(k, input)| (input, &filters[g * ups + (first + k) / nt]))
                .collect();
            if terms.is_empty() {
                return Ok(());
            }
            match acc {
                Some(acc) => self.eval.mul_plain_sum_add_assign(acc, &terms),
                None => {
                    *acc = Some(self.eval.mul_plain_sum(&terms)?);
                    Ok(())
                }
            }
        })
    }
}

/// Computes and sends the responses of groups `group0 + i / nt` for tiles `i % nt` in
/// (group, tile) order, a pipeline step at a time: `acc(i, &mut items[i])` gives the product
/// of response `i`, computed with the step in parallel, with the PRG `prgs[i]`; the step's
/// responses are queued at once (the channel's writer sends them while the next step is
/// computed) and their masks added to `y`. The server's half of every round trip, and the
/// client's in the encrypted-weights mode (`ew`), which returns with the server's key.
#[allow(clippy::too_many_arguments)] // one batch's whole context
pub(super) fn send_responses<P: Packing, T: Send>(
    (packing, params, eval): (&P, &Params, &Evaluator),
    ch: &mut Channel,
    pk: &PublicKey,
    (tiles, info): (&Range<usize>, &[P::Tile]),
    group0: usize,
    items: &mut [T],
    mut prgs: Vec<Prg>,
    y: &mut [u64],
    acc: impl Fn(usize, &mut T) -> Result<Ciphertext, PaheError> + Sync,
) -> Result<(), HomConvError> {
    let (nt, step) = (tiles.len(), pipeline_step());
    for (s, (items, prgs)) in items
        .chunks_mut(step)
        .zip(prgs.chunks_mut(step))
        .enumerate()
    {
        let first = s * step;
        let outputs = items
            .par_iter_mut()
            .zip(prgs.par_iter_mut())
            .enumerate()
            .map(|(k, (item, prg))| {
                let i = first + k;
                let (g, ti) = (group0 + i / nt, i % nt);
                packing.respond(params, eval, acc(i, item)?, g, &info[ti], pk, prg)
            })
            .collect::<Result<Vec<_>, PaheError>>()?;
        for (k, (response, mask)) in outputs.iter().enumerate() {
            ch.send_message(P::KIND_RESPONSE, response)?;
            let (g, ti) = (group0 + (first + k) / nt, (first + k) % nt);
            packing.place(mask, g, tiles.start + ti, &info[ti], y, params.p(), true);
        }
    }
    ch.flush()?;
    Ok(())
}

/// The seed's DFT packing: the layout and the cyclic DFT of length `m` over `p`.
#[derive(Debug)]
pub(super) struct Dft {
    pub(super) layout: Layout,
    pub(super) plan: CyclicPlan,
}

impl Packing for Dft {
    type Upload = SeededCiphertext;
    type Response = Ciphertext;
    type Received = Ciphertext;
    type Tile = ();
    const KIND_UPLOAD: u16 = KIND_SEEDED_CIPHERTEXT;
    const KIND_RESPONSE: u16 = KIND_CIPHERTEXT;

    fn base(&self) -> &Layout {
        &self.layout
    }

    fn uploads_per_tile(&self) -> usize {
        self.layout.c_in
    }

    fn groups(&self) -> usize {
        self.layout.groups()
    }

    fn tile(&self, _: usize) {}

    fn encrypt(
        &self,
        params: &Params,
        sk: &SecretKey,
        x: &Tensor<u64>,
        c: usize,
        t: usize,
        prg: &mut Prg,
    ) -> Result<SeededCiphertext, PaheError> {
        let l = &self.layout;
        // The client's share (at the first layer, the image itself): erased once encrypted.
        let mut dft = Zeroizing::new(l.gather(x.channel(c), t));
        self.plan.forward(&mut dft);
        let mut slots = Zeroizing::new(vec![0u64; l.slots]);
        for range in slots.chunks_exact_mut(l.m) {
            range.copy_from_slice(&dft);
        }
        let pt = params.encode(&slots)?;
        Ok(sk.encrypt_seeded(&pt, prg))
    }

    fn recv_response(
        &self,
        ch: &mut Channel,
        params: &Params,
        _: usize,
        _: &(),
    ) -> Result<Ciphertext, HomConvError> {
        let max_len = params.ciphertext_len(params.max_level());
        Ok(ch.recv_message(KIND_CIPHERTEXT, max_len, params)?)
    }

    fn decrypt(
        &self,
        params: &Params,
        sk: &SecretKey,
        ct: &Ciphertext,
    ) -> Result<Zeroizing<Vec<u64>>, PaheError> {
        let mut slots = Zeroizing::new(params.decode(&sk.decrypt(ct)?));
        for range in slots.chunks_exact_mut(self.layout.m) {
            self.plan.inverse(range);
        }
        Ok(slots)
    }

    fn upload_max_len(&self, params: &Params) -> usize {
        params.seeded_ciphertext_len()
    }

    fn check_upload(&self, _: &SeededCiphertext) -> Result<(), HomConvError> {
        Ok(())
    }

    fn expand(u: &SeededCiphertext) -> Ciphertext {
        u.expand()
    }

    fn group_bytes(&self, params: &Params) -> usize {
        self.layout.c_in * params.max_level() * params.n() * 8
    }

    /// Slot range `j` of filter `(g, c)` holds the DFT of `W[g·r + j][c]`.
    fn prepare(
        &self,
        params: &Params,
        weight: &[u64],
        groups: Range<usize>,
    ) -> Result<Vec<PreparedPlaintext>, PaheError> {
        let layout = &self.layout;
        let taps: usize = layout.kernel.iter().product();
        let (c_in, r, m) = (layout.c_in, layout.replicas, layout.m);
        let first = groups.start;
        (0..groups.len() * c_in)
            .into_par_iter()
            .map(|i| {
                let (g, c) = (first + i / c_in, i % c_in);
                let mut slots = vec![0u64; layout.slots];
                for (j, range) in slots.chunks_exact_mut(m).enumerate() {
                    let o = g * r + j;
                    if o < layout.c_out {
                        let w = &weight[(o * c_in + c) * taps..(o * c_in + c + 1) * taps];
                        range.copy_from_slice(&layout.place_filter(w));
                        self.plan.forward(range);
                    }
                }
                Ok(params.prepare(&params.encode(&slots)?))
            })
            .collect()
    }

    fn respond(
        &self,
        params: &Params,
        eval: &Evaluator,
        acc: Ciphertext,
        _: usize,
        _: &(),
        pk: &PublicKey,
        prg: &mut Prg,
    ) -> Result<(Ciphertext, Zeroizing<Vec<u64>>), PaheError> {
        let mut mask = Zeroizing::new(random_mask(params, prg));
        let ct = eval.finalize_for_return(acc, &mask, pk, prg)?;
        for range in mask.chunks_exact_mut(self.layout.m) {
            self.plan.inverse(range);
        }
        Ok((ct, mask))
    }

    fn place(&self, values: &[u64], g: usize, t: usize, _: &(), y: &mut [u64], p: u64, add: bool) {
        let l = &self.layout;
        let plane = l.out_plane();
        for (j, conv) in values.chunks_exact(l.m).enumerate() {
            let o = g * l.replicas + j;
            if o < l.c_out {
                l.scatter(conv, t, &mut y[o * plane..(o + 1) * plane], p, add);
            }
        }
    }
}
