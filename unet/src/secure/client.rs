//! The client's driver (Alice: the hospital). Holds the PAHE secret key, garbles, and alone
//! learns the mask.
//!
//! A session: [`Client::connect`] (handshake, public key, nonlinear session, triple session:
//! input-independent), then any number of [`Client::infer`] calls, then [`Client::close`]. Each
//! request announces the input extents (public shape metadata) and runs its offline phase
//! (Galois keys the server lacks, square pairs, HomConv layouts) before it needs the input:
//! [`Client::prepare`] runs that phase ahead, e.g. while the next slice stack is loaded.

use std::collections::BTreeSet;
use std::sync::Arc;

use bunet_crypto::channel::Channel;
use bunet_crypto::nonlinear::{self, Nonlinear};
use bunet_crypto::pahe::{
    GaloisKeys, KIND_GALOIS_KEYS, KIND_PUBLIC_KEY, Params, PublicKey, SecretKey,
};
use bunet_crypto::prg::Prg;
use bunet_crypto::triples::{self, SquarePairs};

use super::avgpool::{self, RotationLayout};
use super::config::SessionConfig;
use super::error::SecureError;
use super::handshake::{self, Hello};
use super::homconv::LinearClient;
use super::protocol::{self, Request, RequestReply, kind};
use super::report::{Phase, Report, Role, Timer};
use crate::arch::{Activation, Architecture, Dims};
use crate::error::QuantError;
use crate::quant::{Op, QuantPlan, Step};
use crate::tensor::Tensor;

/// Per input extents: the HomConv sides and pool layouts of every step (by step index).
#[derive(Debug)]
struct Layouts {
    dims: [usize; 3],
    convs: Vec<Option<LinearClient>>,
    pools: Vec<Option<RotationLayout>>,
}

/// A request whose offline phase has run.
#[derive(Debug)]
struct Pending {
    dims: [usize; 3],
    pairs: Option<SquarePairs>,
}

/// The hospital's side of a session. Holds the secret key; only it learns the mask.
pub struct Client {
    config: SessionConfig,
    plan: Arc<QuantPlan>,
    blocks: Vec<&'static str>,
    params: Params,
    sk: SecretKey,
    nonlinear: Box<dyn Nonlinear>,
    triples: Option<triples::Session>,
    /// Rotation steps whose Galois keys the server holds.
    rotation_keys: BTreeSet<i64>,
    layouts: Option<Layouts>,
    pending: Option<Pending>,
    report: Report,
    prg: Prg,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("arch", self.plan.arch())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Handshake and the session's offline set-up with a server: a fresh PAHE key pair (the
    /// public key goes to the server), the nonlinear session, and for square networks the
    /// triple session. `prg` must be secret and OS-seeded ([`Prg::from_os_entropy`]).
    ///
    /// # Errors
    /// [`SecureError::Handshake`] if the server's model or configuration differs (the server
    /// fails too); [`SecureError::Model`] for an invalid architecture; channel, wire and
    /// crypto errors.
    pub fn connect(
        ch: &mut Channel,
        arch: &Architecture,
        config: SessionConfig,
        prg: Prg,
    ) -> Result<Client, SecureError> {
        Self::open(ch, arch, config, Hello::client(arch, &config), prg)
    }

    /// As [`Client::connect`], stating that the session's requests have extents up to
    /// `extents`: a server under admission control sizes its memory estimate by them (without
    /// them it assumes a 512×512 slice and refuses larger requests).
    ///
    /// # Errors
    /// As [`Client::connect`]; [`SecureError::Busy`] if the server has no slot or memory for
    /// the session now, [`SecureError::Refused`] if it never admits it.
    pub fn connect_for(
        ch: &mut Channel,
        arch: &Architecture,
        config: SessionConfig,
        extents: [usize; 3],
        prg: Prg,
    ) -> Result<Client, SecureError> {
        let hello = Hello::client_for(arch, &config, extents);
        Self::open(ch, arch, config, hello, prg)
    }

    fn open(
        ch: &mut Channel,
        arch: &Architecture,
        config: SessionConfig,
        hello: Hello,
        mut prg: Prg,
    ) -> Result<Client, SecureError> {
        let plan = Arc::new(QuantPlan::new(arch, config.preset.quant())?);
        let mut report = Report::new(Role::Client, config);
        let previous = ch.label();

        let t = Timer::start(ch, "handshake");
        handshake::propose(ch, &hello)?;
        report.record(t.stop(ch, "handshake", Phase::Offline, 0));

        let t = Timer::start(ch, "keys");
        let params = config.preset.pahe_params();
        let sk = SecretKey::generate(&params, &mut prg);
        let pk = PublicKey::generate(&sk, &mut prg);
        protocol::send_now(ch, KIND_PUBLIC_KEY, &pk)?;
        report.record(t.stop(ch, "keys", Phase::Offline, 0));

        let t = Timer::start(ch, "setup");
        let nl_config = config.nonlinear_config()?;
        let seed = Prg::from_seed(prg.next_seed());
        let nonlinear = nonlinear::setup(ch, triples::Role::Alice, nl_config, seed)?;
        report.record(t.stop(ch, "setup", Phase::Offline, 0));

        let triples = if arch.activation == Activation::Square {
            let t = Timer::start(ch, "triples");
            let seed = Prg::from_seed(prg.next_seed());
            let session = triples::Session::setup(ch, triples::Role::Alice, params.p(), seed)?;
            report.record(t.stop(ch, "triples", Phase::Offline, 0));
            Some(session)
        } else {
            None
        };
        ch.set_label(previous);
        Ok(Client {
            config,
            blocks: protocol::block_names(&plan),
            plan,
            params,
            sk,
            nonlinear,
            triples,
            rotation_keys: BTreeSet::new(),
            layouts: None,
            pending: None,
            report,
            prg,
        })
    }

    /// The agreed configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The plan both parties walk.
    pub fn plan(&self) -> &QuantPlan {
        &self.plan
    }

    /// The costs measured so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Announces a request for an input of extents `dims` and runs its offline phase: Galois
    /// keys the server does not hold yet (rotation pooling only), square pairs (square
    /// activations only), HomConv layouts. The next [`Client::infer`] with an input of these
    /// extents uses it. Does nothing if such a request is already prepared. A prepared request
    /// must be run before [`Client::close`]: the server is waiting for its input.
    ///
    /// # Errors
    /// [`SecureError::Model`] / [`SecureError::Protocol`] if `dims` do not fit the
    /// architecture or the bounds, or another request is prepared; [`SecureError::Refused`] if
    /// the server refuses (the session stays usable); channel, wire and crypto errors.
    pub fn prepare(&mut self, ch: &mut Channel, dims: [usize; 3]) -> Result<(), SecureError> {
        match &self.pending {
            Some(p) if p.dims == dims => return Ok(()),
            Some(p) => {
                return Err(SecureError::Protocol(format!(
                    "a request for {:?} is prepared; run it before announcing {dims:?}",
                    p.dims
                )));
            }
            None => {}
        }
        let arch = *self.plan.arch();
        protocol::check_dims(&arch, dims)?;
        self.config.check_batch(&arch, dims)?;
        let new_rotations =
            protocol::new_rotations(&self.plan, dims, self.params.slots(), &self.rotation_keys)?;
        let previous = ch.label();

        let t = Timer::start(ch, "request");
        protocol::send_now(ch, kind::REQUEST, &Request::Infer(dims))?;
        let reply = ch.recv_message(kind::REQUEST_REPLY, protocol::MAX_REPLY_LEN, &());
        self.report.record(t.stop(ch, "request", Phase::Offline, 0));
        if let RequestReply::Refuse(reason) = reply? {
            ch.set_label(previous);
            return Err(SecureError::Refused(reason));
        }

        let t = Timer::start(ch, "prepare");
        if self.layouts.as_ref().is_none_or(|l| l.dims != dims) {
            self.layouts = None;
            self.layouts = Some(self.build_layouts(dims)?);
        }
        self.report.record(t.stop(ch, "prepare", Phase::Offline, 0));

        let new = new_rotations;
        if !new.is_empty() {
            let t = Timer::start(ch, "keys");
            let keys = GaloisKeys::generate(&self.sk, &new, false, &mut self.prg);
            protocol::send_now(ch, KIND_GALOIS_KEYS, &keys)?;
            self.rotation_keys.extend(new.iter().copied());
            self.report
                .record(t.stop(ch, "keys", Phase::Offline, new.len() as u64));
        }

        let pairs = match &mut self.triples {
            Some(session) => {
                let n = protocol::square_count(&self.plan, dims);
                let t = Timer::start(ch, "triples");
                let pairs = session.square_pairs(ch, n)?;
                self.report
                    .record(t.stop(ch, "triples", Phase::Offline, n as u64));
                Some(pairs)
            }
            None => None,
        };

        // Input-independent garbled-circuit work of the request's nonlinear calls.
        let calls = protocol::nonlinear_calls(&self.plan, dims);
        let t = Timer::start(ch, protocol::GARBLE_BLOCK);
        self.nonlinear
            .precompute(ch, &calls, nonlinear::DEFAULT_PRECOMPUTE_BUDGET)?;
        let n: usize = calls.iter().map(|c| c.instances).sum();
        self.report
            .record(t.stop(ch, protocol::GARBLE_BLOCK, Phase::Offline, n as u64));
        ch.set_label(previous);
        self.pending = Some(Pending { dims, pairs });
        Ok(())
    }

    fn build_layouts(&self, dims: [usize; 3]) -> Result<Layouts, SecureError> {
        let plan = &self.plan;
        let specs = plan.arch().convs();
        let in_dims = protocol::step_dims(plan, dims);
        let convs = plan
            .steps()
            .iter()
            .zip(&in_dims)
            .map(|(s, &d)| match s.op {
                Op::Conv { conv } => {
                    let (tile, linear) = (self.config.max_tile, self.config.linear);
                    let side = LinearClient::new(&self.params, &specs[conv], d, tile, linear)?;
                    Ok(Some(side))
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, SecureError>>()?;
        let pools = protocol::rotation_layouts(plan, dims, self.params.slots())?;
        Ok(Layouts { dims, convs, pools })
    }

    /// One secure inference: `input` is the encoded network input (`in_channels` planes of
    /// extents `[1, h, w]` in 2D or `[d, h, w]` in 3D, residues `< p`, e.g.
    /// `Preset::quant().encode_tensor(..)`). Returns the mask (one plane of 0 / 1), bit-identical
    /// to [`crate::fixed::run`] on the same input.
    ///
    /// # Errors
    /// [`SecureError::Model`] for an input that does not fit or is not reduced mod p;
    /// [`SecureError::Refused`] if the server refuses the request (the session stays usable);
    /// otherwise channel, wire, crypto and HomConv errors, after which the session is unusable.
    pub fn infer(
        &mut self,
        ch: &mut Channel,
        input: &Tensor<u64>,
    ) -> Result<Tensor<u8>, SecureError> {
        self.infer_observed(ch, input, |_, _| {})
    }

    /// [`Client::infer`], showing `observe` the client's share of every step's output (for the
    /// mask step: the mask itself) — tests reconstruct them with the server's shares.
    ///
    /// # Errors
    /// As [`Client::infer`].
    pub fn infer_observed(
        &mut self,
        ch: &mut Channel,
        input: &Tensor<u64>,
        mut observe: impl FnMut(&Step, &Tensor<u64>),
    ) -> Result<Tensor<u8>, SecureError> {
        let plan = Arc::clone(&self.plan);
        plan.arch().check_input(input.channels(), input.dims())?;
        let p = self.params.p();
        if let Some((index, &value)) = input.data().iter().enumerate().find(|(_, v)| **v >= p) {
            return Err(crate::Error::from(QuantError::Unreduced { value, index, p }).into());
        }
        self.prepare(ch, input.dims())?;
        let mut pairs = self.pending.take().and_then(|p| p.pairs);
        let previous = ch.label();
        let out = protocol::walk(
            &plan,
            input.clone(),
            |i, step, args| self.step(ch, i, step, args, &mut pairs),
            &mut observe,
        );
        ch.set_label(previous);
        Ok(out?.map(|&v| v as u8))
    }

    fn step(
        &mut self,
        ch: &mut Channel,
        i: usize,
        step: &Step,
        args: &[&Tensor<u64>],
        pairs: &mut Option<SquarePairs>,
    ) -> Result<Tensor<u64>, SecureError> {
        let block = self.blocks[i];
        let deep = self.plan.arch().dims == Dims::Three;
        let x = args[0];
        let t = Timer::start(ch, block);
        let layouts = self.layouts.as_ref().expect("prepare built the layouts");
        let rotation_pool = match step.op {
            Op::SumPool => layouts.pools[i].as_ref(),
            _ => None,
        };
        let out = match (step.op, rotation_pool) {
            (Op::Conv { .. }, _) => {
                let hc = layouts.convs[i].as_ref().expect("a layout per conv step");
                hc.run(ch, &self.sk, x, &mut self.prg)?
            }
            (Op::SumPool, Some(layout)) => {
                avgpool::client_by_rotation(ch, &self.params, &self.sk, layout, x, &mut self.prg)?
            }
            (Op::Argmax2, _) => {
                let bits = self.nonlinear.argmax2(ch, &protocol::score_pairs(x)?)?;
                let data = bits.into_iter().map(u64::from).collect();
                Tensor::from_vec(1, x.dims(), data)?
            }
            _ => protocol::shared_step(
                ch,
                step,
                args,
                deep,
                self.params.p(),
                self.nonlinear.as_mut(),
                self.triples.as_mut(),
                pairs,
            )?,
        };
        self.report
            .record(t.stop(ch, block, Phase::Online, out.data().len() as u64));
        Ok(out)
    }

    /// Ends the session politely (the server's [`Server::serve`](super::Server::serve) returns
    /// `Ok`) and returns the client's report.
    ///
    /// # Errors
    /// Channel errors.
    pub fn close(mut self, ch: &mut Channel) -> Result<Report, SecureError> {
        let t = Timer::start(ch, "request");
        protocol::send_now(ch, kind::REQUEST, &Request::Close)?;
        self.report.record(t.stop(ch, "request", Phase::Offline, 0));
        Ok(self.report)
    }
}
