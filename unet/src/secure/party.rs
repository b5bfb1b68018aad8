//! Each layer's protocol step written once for both parties, the way fancy-garbling writes a
//! gadget once for garbler and evaluator: the [`Driver`] walks the plan and runs every step,
//! and the few places where the parties differ are the methods of the [`Party`] trait that
//! [`Alice`] (the client: secret key) and [`Bob`] (the server: weights) implement.
//!
//! What is the same for both parties lives here: the session's nonlinear and triple set-up,
//! a request's offline phase (HomConv sides, Galois keys, square pairs, garbled-circuit
//! precomputation) and its online walk. What differs is the party's half of a linear layer
//! ([`Party::linear`]), of the rotation pool ([`Party::rotation_pool`]), of the Galois key
//! exchange ([`Party::rotation_keys`]) and what it keeps of the argmax ([`Party::mask_share`]).
//! To add a layer: give its [`Op`] an arm in [`Driver::step`] (and in
//! [`super::block_name`]); if the parties run it differently, add a method to [`Party`].

use std::collections::BTreeSet;
use std::sync::Arc;

use bunet_crypto::channel::Channel;
use bunet_crypto::nonlinear::{self, Nonlinear};
use bunet_crypto::pahe::{Evaluator, GaloisKeys, KIND_GALOIS_KEYS, Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_crypto::triples::{self, SquarePairs};

use super::avgpool::{self, RotationLayout};
use super::budget;
use super::config::SessionConfig;
use super::error::SecureError;
use super::homconv::{FilterTiming, LinearClient, LinearServer};
use super::protocol::{self, block_name};
use super::report::{Phase, Report, Timer, restoring_label};
use crate::arch::Dims;
use crate::quant::{Op, QuantModel, QuantPlan, Step};
use crate::tensor::{SecretTensor, Tensor};

/// What one party holds that the other does not, and its half of the steps the parties run
/// differently. Everything else of a step is [`Driver::step`]'s, written once.
pub(crate) trait Party {
    /// The party's side of one linear layer (HomConv, up-conv or head), built per extents.
    type Linear: std::fmt::Debug;

    /// The party's role in the nonlinear and triple sessions.
    const ROLE: triples::Role;

    /// The plan both parties walk.
    fn plan(&self) -> &QuantPlan;

    /// The party's sides of a request's convs, `(conv, extents of its input)` in plan order,
    /// for a request of extents `dims`.
    ///
    /// # Errors
    /// The HomConv layout's and the sides' errors.
    fn linear_sides(
        &self,
        params: &Params,
        config: &SessionConfig,
        dims: [usize; 3],
        convs: &[(usize, [usize; 3])],
    ) -> Result<Vec<Self::Linear>, SecureError>;

    /// The linear backend's once-per-session set-up of one layer (the encrypted-weights
    /// backend's weight ciphertexts; nothing for the others).
    ///
    /// # Errors
    /// HomConv errors.
    fn linear_setup(
        &self,
        ch: &mut Channel,
        side: &Self::Linear,
        prg: &mut Prg,
    ) -> Result<(), SecureError>;

    /// Runs one linear layer on the party's share `x`: its share of the output.
    ///
    /// # Errors
    /// HomConv errors.
    fn linear(
        &self,
        ch: &mut Channel,
        side: &Self::Linear,
        x: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, SecureError>;

    /// The rotation variant of SecAvgPool on the party's share `x`.
    ///
    /// # Errors
    /// Channel, wire and PAHE errors.
    fn rotation_pool(
        &self,
        ch: &mut Channel,
        params: &Params,
        layout: &RotationLayout,
        x: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, SecureError>;

    /// The Galois keys of rotations `new` (the client generates and sends them, the server
    /// receives and checks them).
    ///
    /// # Errors
    /// Channel and wire errors; [`SecureError::Protocol`] for keys of other rotations.
    fn rotation_keys(
        &mut self,
        ch: &mut Channel,
        params: &Params,
        new: &[i64],
        prg: &mut Prg,
    ) -> Result<(), SecureError>;

    /// The party's share of the mask from the argmax output `bits` (the client learns the
    /// mask, the server keeps zeros).
    ///
    /// # Errors
    /// [`SecureError::Model`] if `bits` do not fill `dims`.
    fn mask_share(bits: Vec<bool>, dims: [usize; 3]) -> Result<Tensor<u64>, SecureError>;
}

/// The client's half: the plan, the PAHE secret key, and the server's public key when the
/// linear backend has one ([`super::config::LinearBackend::server_keys`]).
pub(crate) struct Alice {
    pub(crate) plan: QuantPlan,
    pub(crate) sk: SecretKey,
    pub(crate) server_pk: Option<PublicKey>,
}

impl Party for Alice {
    type Linear = LinearClient;
    const ROLE: triples::Role = triples::Role::Alice;

    fn plan(&self) -> &QuantPlan {
        &self.plan
    }

    fn linear_sides(
        &self,
        params: &Params,
        config: &SessionConfig,
        _: [usize; 3],
        convs: &[(usize, [usize; 3])],
    ) -> Result<Vec<LinearClient>, SecureError> {
        let specs = self.plan.arch().convs();
        convs
            .iter()
            .map(|&(conv, d)| {
                let spec = &specs[conv];
                Ok(LinearClient::new(
                    params,
                    (conv, spec),
                    d,
                    config.max_tile,
                    (config.linear, self.server_pk.as_ref()),
                )?)
            })
            .collect()
    }

    fn linear_setup(
        &self,
        ch: &mut Channel,
        side: &LinearClient,
        _: &mut Prg,
    ) -> Result<(), SecureError> {
        Ok(side.setup(ch)?)
    }

    fn linear(
        &self,
        ch: &mut Channel,
        side: &LinearClient,
        x: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, SecureError> {
        Ok(side.run(ch, &self.sk, x, prg)?)
    }

    fn rotation_pool(
        &self,
        ch: &mut Channel,
        params: &Params,
        layout: &RotationLayout,
        x: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, SecureError> {
        avgpool::client_by_rotation(ch, params, &self.sk, layout, x, prg)
    }

    fn rotation_keys(
        &mut self,
        ch: &mut Channel,
        _: &Params,
        new: &[i64],
        prg: &mut Prg,
    ) -> Result<(), SecureError> {
        let keys = GaloisKeys::generate(&self.sk, new, false, prg);
        protocol::send_now(ch, KIND_GALOIS_KEYS, &keys)
    }

    fn mask_share(bits: Vec<bool>, dims: [usize; 3]) -> Result<Tensor<u64>, SecureError> {
        let data = bits.into_iter().map(u64::from).collect();
        Ok(Tensor::from_vec(1, dims, data)?)
    }
}

/// The server's half: the model, the client's public key, the Galois keys received, and its
/// own secret key when the linear backend has one
/// ([`super::config::LinearBackend::server_keys`]).
pub(crate) struct Bob<'m> {
    pub(crate) model: &'m QuantModel,
    pub(crate) pk: PublicKey,
    pub(crate) own: Option<Arc<SecretKey>>,
    pub(crate) eval: Evaluator,
    pub(crate) galois: Vec<GaloisKeys>,
}

impl<'m> Party for Bob<'m> {
    type Linear = LinearServer<'m>;
    const ROLE: triples::Role = triples::Role::Bob;

    fn plan(&self) -> &QuantPlan {
        self.model.plan()
    }

    /// The sides prepare their filters only when the layer's first upload arrives, so that a
    /// request alone costs the server no filters; they keep them for the session's later
    /// requests only while all layers' fit
    /// [`super::homconv::PREPARED_FILTER_BUDGET`] together, and otherwise
    /// drop each layer's after its run (one layer's filters at a time).
    fn linear_sides(
        &self,
        params: &Params,
        config: &SessionConfig,
        dims: [usize; 3],
        convs: &[(usize, [usize; 3])],
    ) -> Result<Vec<LinearServer<'m>>, SecureError> {
        let keep = budget::filter_bytes(self.model, config, dims)?.kept();
        let timing = FilterTiming::Deferred { keep };
        let backend = (config.max_tile, config.linear);
        convs
            .iter()
            .map(|&(conv, d)| {
                Ok(LinearServer::new(
                    params,
                    self.model,
                    conv,
                    d,
                    backend,
                    (timing, self.own.as_ref()),
                )?)
            })
            .collect()
    }

    fn linear_setup(
        &self,
        ch: &mut Channel,
        side: &LinearServer<'m>,
        prg: &mut Prg,
    ) -> Result<(), SecureError> {
        Ok(side.setup(ch, prg)?)
    }

    fn linear(
        &self,
        ch: &mut Channel,
        side: &LinearServer<'m>,
        x: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, SecureError> {
        Ok(side.run(ch, &self.pk, x, prg)?)
    }

    fn rotation_pool(
        &self,
        ch: &mut Channel,
        params: &Params,
        layout: &RotationLayout,
        x: &Tensor<u64>,
        prg: &mut Prg,
    ) -> Result<Tensor<u64>, SecureError> {
        let keys = &self.galois;
        avgpool::server_by_rotation(ch, params, &self.eval, &self.pk, keys, layout, x, prg)
    }

    fn rotation_keys(
        &mut self,
        ch: &mut Channel,
        params: &Params,
        new: &[i64],
        _: &mut Prg,
    ) -> Result<(), SecureError> {
        let max_len = params.galois_keys_max_len();
        let keys: GaloisKeys = ch.recv_message(KIND_GALOIS_KEYS, max_len, params)?;
        let mut expected: Vec<u64> = new.iter().map(|&k| params.rotation_element(k)).collect();
        expected.sort_unstable();
        expected.dedup();
        if keys.elements() != expected {
            return Err(SecureError::Protocol(format!(
                "Galois keys for elements {:?}, expected {expected:?}",
                keys.elements()
            )));
        }
        self.galois.push(keys);
        Ok(())
    }

    fn mask_share(_: Vec<bool>, dims: [usize; 3]) -> Result<Tensor<u64>, SecureError> {
        Ok(Tensor::filled(1, dims, 0u64))
    }
}

/// Per input extents: each party's linear sides and the pool layouts of every step (by step
/// index).
#[derive(Debug)]
struct Layouts<L> {
    dims: [usize; 3],
    convs: Vec<Option<L>>,
    pools: Vec<Option<RotationLayout>>,
}

/// One party's session: its [`Party`] half and everything both parties hold alike.
pub(crate) struct Driver<P: Party> {
    pub(crate) party: P,
    pub(crate) config: SessionConfig,
    pub(crate) params: Params,
    nonlinear: Box<dyn Nonlinear>,
    triples: Option<triples::Session>,
    /// Rotation steps whose Galois keys the server holds.
    pub(crate) rotation_keys: BTreeSet<i64>,
    layouts: Option<Layouts<P::Linear>>,
    pub(crate) report: Report,
    prg: Prg,
}

impl<P: Party> Driver<P> {
    /// The session's offline set-up after the handshake and the public key: the nonlinear
    /// session, and for square networks the triple session.
    ///
    /// # Errors
    /// Configuration, channel, wire and crypto errors.
    pub(crate) fn setup(
        ch: &mut Channel,
        party: P,
        config: SessionConfig,
        mut prg: Prg,
        mut report: Report,
    ) -> Result<Self, SecureError> {
        let mut ch = restoring_label(ch);
        let ch = &mut *ch;
        let params = config.preset.pahe_params();
        let t = Timer::start(ch, "setup");
        let nl_config = config.nonlinear_config()?;
        let seed = Prg::from_seed(prg.next_seed());
        let nonlinear = nonlinear::setup(ch, P::ROLE, nl_config, seed)?;
        report.record(t.stop(ch, "setup", Phase::Offline, 0));

        let triples = if party.plan().arch().activation == crate::arch::Activation::Square {
            let t = Timer::start(ch, "triples");
            let seed = Prg::from_seed(prg.next_seed());
            let session = triples::Session::setup(ch, P::ROLE, params.p(), seed)?;
            report.record(t.stop(ch, "triples", Phase::Offline, 0));
            Some(session)
        } else {
            None
        };
        Ok(Self {
            party,
            config,
            params,
            nonlinear,
            triples,
            rotation_keys: BTreeSet::new(),
            layouts: None,
            report,
            prg,
        })
    }

    /// The plan both parties walk.
    pub(crate) fn plan(&self) -> &QuantPlan {
        self.party.plan()
    }

    /// Rotation steps a request for `dims` needs beyond the keys the session holds.
    ///
    /// # Errors
    /// As [`protocol::new_rotations`].
    pub(crate) fn new_rotations(&self, dims: [usize; 3]) -> Result<Vec<i64>, SecureError> {
        let slots = self.params.slots();
        protocol::new_rotations(self.plan(), dims, slots, &self.rotation_keys)
    }

    /// A request's offline phase, after it was accepted: the linear sides and pool layouts
    /// for `dims` (kept while the extents repeat; the server's sides prepare their filters only
    /// at their layer's first upload, see [`Party::linear_sides`]), the Galois keys of rotations `new`, the
    /// square pairs and the input-independent garbled-circuit work. Returns the square pairs.
    ///
    /// # Errors
    /// HomConv, channel, wire and crypto errors.
    pub(crate) fn prepare(
        &mut self,
        ch: &mut Channel,
        dims: [usize; 3],
        new: &[i64],
    ) -> Result<Option<SquarePairs>, SecureError> {
        let t = Timer::start(ch, "prepare");
        let rebuilt = self.layouts.as_ref().is_none_or(|l| l.dims != dims);
        if rebuilt {
            self.layouts = None;
            self.layouts = Some(self.build_layouts(dims)?);
        }
        self.report.record(t.stop(ch, "prepare", Phase::Offline, 0));

        if rebuilt && self.config.linear.server_keys() {
            // The encrypted-weights backend's weight ciphertexts of every layer, once per
            // layouts (the session's extents), apart from the online blocks.
            let t = Timer::start(ch, protocol::WEIGHTS_BLOCK);
            let layouts = self.layouts.as_ref().expect("built above");
            for side in layouts.convs.iter().flatten() {
                self.party.linear_setup(ch, side, &mut self.prg)?;
            }
            let layers = layouts.convs.iter().flatten().count() as u64;
            self.report
                .record(t.stop(ch, protocol::WEIGHTS_BLOCK, Phase::Offline, layers));
        }

        if !new.is_empty() {
            let t = Timer::start(ch, "keys");
            self.party
                .rotation_keys(ch, &self.params, new, &mut self.prg)?;
            self.rotation_keys.extend(new.iter().copied());
            self.report
                .record(t.stop(ch, "keys", Phase::Offline, new.len() as u64));
        }

        let plan = self.party.plan();
        let pairs = match &mut self.triples {
            Some(session) => {
                let n = protocol::square_count(plan, dims);
                let t = Timer::start(ch, "triples");
                let pairs = session.square_pairs(ch, n)?;
                self.report
                    .record(t.stop(ch, "triples", Phase::Offline, n as u64));
                Some(pairs)
            }
            None => None,
        };

        // Input-independent garbled-circuit work of the request's nonlinear calls.
        let calls = protocol::nonlinear_calls(plan, dims);
        let t = Timer::start(ch, protocol::GARBLE_BLOCK);
        self.nonlinear
            .precompute(ch, &calls, nonlinear::DEFAULT_PRECOMPUTE_BUDGET)?;
        let n: usize = calls.iter().map(|c| c.instances).sum();
        self.report
            .record(t.stop(ch, protocol::GARBLE_BLOCK, Phase::Offline, n as u64));
        Ok(pairs)
    }

    fn build_layouts(&self, dims: [usize; 3]) -> Result<Layouts<P::Linear>, SecureError> {
        let plan = self.plan();
        let in_dims = protocol::step_dims(plan, dims);
        let wanted: Vec<(usize, [usize; 3])> = plan
            .steps()
            .iter()
            .zip(&in_dims)
            .filter_map(|(s, &d)| match s.op {
                Op::Conv { conv } => Some((conv, d)),
                _ => None,
            })
            .collect();
        let mut sides = self
            .party
            .linear_sides(&self.params, &self.config, dims, &wanted)?
            .into_iter();
        let convs = plan
            .steps()
            .iter()
            .map(|s| match s.op {
                Op::Conv { .. } => sides.next(),
                _ => None,
            })
            .collect();
        let pools = protocol::rotation_layouts(plan, dims, self.params.slots())?;
        Ok(Layouts { dims, convs, pools })
    }

    /// A request's online phase: the plan's steps from the party's share of the input,
    /// `observe` seeing every step's output share. Returns the party's share of the mask.
    /// Every share between the steps is a [`SecretTensor`], erased when its last step is done.
    ///
    /// # Errors
    /// HomConv, channel, wire and crypto errors.
    pub(crate) fn run(
        &mut self,
        ch: &mut Channel,
        input: SecretTensor,
        mut pairs: Option<SquarePairs>,
        mut observe: impl FnMut(&Step, &Tensor<u64>),
    ) -> Result<SecretTensor, SecureError> {
        let mut ch = restoring_label(ch);
        let ch = &mut *ch;
        let plan = self.party.plan();
        crate::exec::execute(
            plan.steps(),
            plan.tensors().len(),
            input,
            plan.output(),
            |i, step, args| {
                let block = block_name(plan.arch(), &step.op);
                let t = Timer::start(ch, block);
                let out = Self::step(
                    &self.party,
                    StepState {
                        params: &self.params,
                        nonlinear: self.nonlinear.as_mut(),
                        triples: self.triples.as_mut(),
                        layouts: self.layouts.as_ref().expect("prepare built the layouts"),
                        prg: &mut self.prg,
                        pairs: &mut pairs,
                    },
                    ch,
                    i,
                    step,
                    args,
                )?;
                let elements = out.data().len() as u64;
                self.report
                    .record(t.stop(ch, block, Phase::Online, elements));
                Ok(out)
            },
            |step, share| observe(step, share),
        )
    }

    /// Step `i` of the plan on the party's shares `args`: every layer's protocol, once for
    /// both parties. Its output share is erased when dropped.
    fn step(
        party: &P,
        s: StepState<'_, P::Linear>,
        ch: &mut Channel,
        i: usize,
        step: &Step,
        args: &[&SecretTensor],
    ) -> Result<SecretTensor, SecureError> {
        let x: &Tensor<u64> = args[0];
        let deep = party.plan().arch().dims == Dims::Three;
        let nl = s.nonlinear;
        Ok(SecretTensor::new(match step.op {
            Op::Conv { .. } => {
                let side = s.layouts.convs[i].as_ref().expect("a side per conv step");
                party.linear(ch, side, x, s.prg)?
            }
            Op::SumPool => match &s.layouts.pools[i] {
                Some(layout) => party.rotation_pool(ch, s.params, layout, x, s.prg)?,
                None => avgpool::sum_local(x, deep, s.params.p()),
            },
            Op::Rescale { shift } => protocol::same_shape(x, nl.rescale(ch, x.data(), shift)?)?,
            Op::ReluRescale { shift } => {
                protocol::same_shape(x, nl.relu_rescale(ch, x.data(), shift)?)?
            }
            Op::Square => {
                let mine = protocol::take_pairs(s.pairs, x.data().len())?;
                let session = s.triples.ok_or_else(|| {
                    SecureError::Protocol("square without a triple session".into())
                })?;
                protocol::same_shape(x, session.square(ch, x.data(), mine)?)?
            }
            Op::MaxPoolRescale { shift } => protocol::maxpool(nl, ch, x, deep, shift)?,
            Op::Concat => protocol::concat(args[0], args[1])?,
            Op::Argmax2 => {
                let bits = nl.argmax2(ch, &protocol::score_pairs(x)?)?;
                P::mask_share(bits, x.dims())?
            }
        }))
    }
}

/// The shared state one step borrows beside the party.
struct StepState<'a, L> {
    params: &'a Params,
    nonlinear: &'a mut dyn Nonlinear,
    triples: Option<&'a mut triples::Session>,
    layouts: &'a Layouts<L>,
    prg: &'a mut Prg,
    /// The request's square pairs not used yet.
    pairs: &'a mut Option<SquarePairs>,
}
