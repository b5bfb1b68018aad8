//! The server's driver (Bob: the model provider). Holds the weights; learns the input's
//! extents and nothing else about it.
//!
//! [`Server::accept`] answers the handshake and runs the session's offline set-up;
//! [`Server::serve`] then serves requests until the client closes: per request it validates the
//! announced extents (refusing politely what does not fit, and carrying on), runs the offline
//! phase (HomConv filters prepared once per extents and reused, Galois keys, square pairs) and
//! then the plan's steps on its shares.

use std::collections::BTreeSet;

use bunet_crypto::channel::Channel;
use bunet_crypto::nonlinear::{self, Nonlinear};
use bunet_crypto::pahe::{
    Evaluator, GaloisKeys, KIND_GALOIS_KEYS, KIND_PUBLIC_KEY, Params, PublicKey,
};
use bunet_crypto::prg::Prg;
use bunet_crypto::triples::{self, SquarePairs};

use super::avgpool::{self, RotationLayout};
use super::budget::{self, Admission, Gate};
use super::config::SessionConfig;
use super::error::SecureError;
use super::handshake::{self, Hello, Purpose, Reply};
use super::homconv::LinearServer;
use super::protocol::{self, Request, RequestReply, kind};
use super::report::{Phase, Report, Role, Timer};
use crate::arch::{Activation, Dims};
use crate::quant::{Op, QuantModel, Step};
use crate::tensor::Tensor;

/// Per input extents: the prepared HomConv sides and pool layouts of every step.
#[derive(Debug)]
struct Layouts<'m> {
    dims: [usize; 3],
    convs: Vec<Option<LinearServer<'m>>>,
    pools: Vec<Option<RotationLayout>>,
}

/// The model provider's side of a session. Holds the weights; learns nothing about the input
/// beyond its shape.
pub struct Server<'m> {
    model: &'m QuantModel,
    config: SessionConfig,
    blocks: Vec<&'static str>,
    params: Params,
    eval: Evaluator,
    pk: PublicKey,
    nonlinear: Box<dyn Nonlinear>,
    triples: Option<triples::Session>,
    galois: Vec<GaloisKeys>,
    rotation_keys: BTreeSet<i64>,
    layouts: Option<Layouts<'m>>,
    /// The memory estimate the session was admitted with: requests that need more are
    /// refused (`None`: no admission control).
    admitted_bytes: Option<u64>,
    report: Report,
    prg: Prg,
}

/// What a hello opened on the server ([`Server::accept_with`]).
#[derive(Debug)]
pub enum Accepted<'m, T> {
    /// An admitted session, with the gate's ticket (hold it until the session ends).
    Session(Box<Server<'m>>, T),
    /// A probe, answered with the server's status; the connection is done.
    Probed,
}

impl std::fmt::Debug for Server<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("arch", self.model.plan().arch())
            .finish_non_exhaustive()
    }
}

impl<'m> Server<'m> {
    /// Answers the handshake (failing, after telling the client, on any mismatch with `config`
    /// or the model's architecture and quantization) and runs the session's offline set-up:
    /// receives the client's public key, sets up the nonlinear session and, for square
    /// networks, the triple session. `prg` must be secret and OS-seeded.
    ///
    /// # Errors
    /// [`SecureError::Handshake`] on a mismatch; channel, wire and crypto errors.
    pub fn accept(
        ch: &mut Channel,
        model: &'m QuantModel,
        config: SessionConfig,
        prg: Prg,
    ) -> Result<Server<'m>, SecureError> {
        let mut report = Report::new(Role::Server, config);
        let previous = ch.label();
        let t = Timer::start(ch, "handshake");
        handshake::answer(ch, &Hello::server(model, &config))?;
        report.record(t.stop(ch, "handshake", Phase::Offline, 0));
        ch.set_label(previous);
        Self::setup(ch, model, config, prg, report, None)
    }

    /// As [`Server::accept`] under admission control: once the hello's fields match, `gate`
    /// decides on the session from its memory estimate ([`budget::server_session`]) for the
    /// extents the hello states (the default request, a 512×512 slice, if it states none). A
    /// session that `gate` does not admit is answered at once with a busy or refusal reply,
    /// before any set-up; an admitted one holds the gate's ticket, and its later requests are
    /// refused if they need more than the admitted estimate. A probe is answered with
    /// `gate`'s status.
    ///
    /// # Errors
    /// As [`Server::accept`]; [`SecureError::Busy`] / [`SecureError::Refused`] if the session
    /// was not admitted (the client was told).
    pub fn accept_with<G: Gate>(
        ch: &mut Channel,
        model: &'m QuantModel,
        config: SessionConfig,
        prg: Prg,
        gate: &G,
    ) -> Result<Accepted<'m, G::Ticket>, SecureError> {
        let mut report = Report::new(Role::Server, config);
        let previous = ch.label();
        let t = Timer::start(ch, "handshake");
        let theirs = handshake::receive(ch)?;
        if theirs.purpose == Purpose::Probe {
            handshake::respond(ch, &Reply::Status(gate.status()))?;
            ch.set_label(previous);
            return Ok(Accepted::Probed);
        }
        handshake::compare(ch, &Hello::server(model, &config), &theirs)?;
        let extents = theirs
            .stated_extents()
            .unwrap_or_else(|| budget::default_extents(model.plan().arch()));
        let estimate = match budget::server_session(model, &config, extents) {
            Ok(e) => e,
            Err(e) => {
                let reason = format!("no session for extents {extents:?}: {e}");
                handshake::respond(ch, &Reply::Refuse(reason.clone()))?;
                return Err(SecureError::Refused(reason));
            }
        };
        let ticket = match gate.admit(extents, &estimate) {
            Admission::Admit(ticket) => ticket,
            Admission::Busy {
                retry_after_s,
                reason,
            } => {
                let reply = Reply::Busy {
                    retry_after_s,
                    reason,
                };
                handshake::respond(ch, &reply)?;
                return Err(SecureError::Busy {
                    retry_after_s,
                    reason,
                });
            }
            Admission::Refuse(reason) => {
                handshake::respond(ch, &Reply::Refuse(reason.clone()))?;
                return Err(SecureError::Refused(reason));
            }
        };
        handshake::respond(ch, &Reply::Accept)?;
        report.record(t.stop(ch, "handshake", Phase::Offline, 0));
        ch.set_label(previous);
        let server = Self::setup(ch, model, config, prg, report, Some(estimate.total()))?;
        Ok(Accepted::Session(Box::new(server), ticket))
    }

    /// The session's offline set-up after an accepted handshake.
    fn setup(
        ch: &mut Channel,
        model: &'m QuantModel,
        config: SessionConfig,
        mut prg: Prg,
        mut report: Report,
        admitted_bytes: Option<u64>,
    ) -> Result<Server<'m>, SecureError> {
        let previous = ch.label();
        let t = Timer::start(ch, "keys");
        let params = config.preset.pahe_params();
        let pk: PublicKey = ch.recv_message(KIND_PUBLIC_KEY, params.public_key_len(), &params)?;
        report.record(t.stop(ch, "keys", Phase::Offline, 0));

        let t = Timer::start(ch, "setup");
        let nl_config = config.nonlinear_config()?;
        let seed = Prg::from_seed(prg.next_seed());
        let nonlinear = nonlinear::setup(ch, triples::Role::Bob, nl_config, seed)?;
        report.record(t.stop(ch, "setup", Phase::Offline, 0));

        let triples = if model.plan().arch().activation == Activation::Square {
            let t = Timer::start(ch, "triples");
            let seed = Prg::from_seed(prg.next_seed());
            let session = triples::Session::setup(ch, triples::Role::Bob, params.p(), seed)?;
            report.record(t.stop(ch, "triples", Phase::Offline, 0));
            Some(session)
        } else {
            None
        };
        ch.set_label(previous);
        Ok(Server {
            model,
            config,
            blocks: protocol::block_names(model.plan()),
            eval: Evaluator::new(&params),
            params,
            pk,
            nonlinear,
            triples,
            galois: Vec::new(),
            rotation_keys: BTreeSet::new(),
            layouts: None,
            admitted_bytes,
            report,
            prg,
        })
    }

    /// The costs measured so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Serves inference requests until the client closes; returns the server-side report.
    ///
    /// # Errors
    /// A request that does not decode (the client is told why), channel, wire, crypto and
    /// HomConv errors. A request whose extents do not fit the model is refused and does not
    /// end the session.
    pub fn serve(self, ch: &mut Channel) -> Result<Report, SecureError> {
        self.serve_observed(ch, |_, _| {})
    }

    /// [`Server::serve`], showing `observe` the server's share of every step's output (for
    /// the mask step: a plane of zeros, the server learns nothing) — for tests.
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub fn serve_observed(
        mut self,
        ch: &mut Channel,
        mut observe: impl FnMut(&Step, &Tensor<u64>),
    ) -> Result<Report, SecureError> {
        let arch = *self.model.plan().arch();
        loop {
            let t = Timer::start(ch, "request");
            let request = ch.recv_message::<Request>(kind::REQUEST, protocol::MAX_REQUEST_LEN, &());
            let request = match request {
                Ok(r) => r,
                Err(bunet_crypto::Error::Wire(e)) => {
                    let reason = format!("malformed request: {e}");
                    protocol::send_now(ch, kind::REQUEST_REPLY, &RequestReply::Refuse(reason))?;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            let dims = match request {
                Request::Close => {
                    self.report.record(t.stop(ch, "request", Phase::Offline, 0));
                    return Ok(self.report);
                }
                Request::Infer(dims) => dims,
            };
            let slots = self.params.slots();
            let checked = protocol::check_dims(&arch, dims)
                .and_then(|()| self.config.check_batch(&arch, dims))
                .and_then(|()| self.check_admitted(dims))
                .and_then(|()| {
                    protocol::new_rotations(self.model.plan(), dims, slots, &self.rotation_keys)
                });
            let (reply, new_rotations) = match checked {
                Ok(new) => (RequestReply::Accept, new),
                Err(e) => (RequestReply::Refuse(e.to_string()), Vec::new()),
            };
            protocol::send_now(ch, kind::REQUEST_REPLY, &reply)?;
            self.report.record(t.stop(ch, "request", Phase::Offline, 0));
            if reply == RequestReply::Accept {
                let pairs = self.prepare(ch, dims, new_rotations)?;
                self.run(ch, dims, pairs, &mut observe)?;
            }
        }
    }

    /// Refuses a request whose memory estimate exceeds what the session was admitted with.
    fn check_admitted(&self, dims: [usize; 3]) -> Result<(), SecureError> {
        let Some(admitted) = self.admitted_bytes else {
            return Ok(());
        };
        let need = budget::server_session(self.model, &self.config, dims)?.total();
        if need > admitted {
            return Err(SecureError::Protocol(format!(
                "extents {dims:?} need an estimated {} MiB; the session was admitted for {} \
                 MiB (state the largest extents when connecting)",
                need >> 20,
                admitted >> 20
            )));
        }
        Ok(())
    }

    /// The offline phase of a request (the client's [`super::Client::prepare`]).
    fn prepare(
        &mut self,
        ch: &mut Channel,
        dims: [usize; 3],
        new: Vec<i64>,
    ) -> Result<Option<SquarePairs>, SecureError> {
        let plan = self.model.plan();
        let t = Timer::start(ch, "prepare");
        if self.layouts.as_ref().is_none_or(|l| l.dims != dims) {
            self.layouts = None;
            self.layouts = Some(self.build_layouts(dims)?);
        }
        self.report.record(t.stop(ch, "prepare", Phase::Offline, 0));

        if !new.is_empty() {
            let t = Timer::start(ch, "keys");
            let max_len = self.params.galois_keys_max_len();
            let keys: GaloisKeys = ch.recv_message(KIND_GALOIS_KEYS, max_len, &self.params)?;
            let mut expected: Vec<u64> = new
                .iter()
                .map(|&k| self.params.rotation_element(k))
                .collect();
            expected.sort_unstable();
            expected.dedup();
            if keys.elements() != expected {
                return Err(SecureError::Protocol(format!(
                    "Galois keys for elements {:?}, expected {expected:?}",
                    keys.elements()
                )));
            }
            self.galois.push(keys);
            self.rotation_keys.extend(new.iter().copied());
            self.report
                .record(t.stop(ch, "keys", Phase::Offline, new.len() as u64));
        }

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

    fn build_layouts(&self, dims: [usize; 3]) -> Result<Layouts<'m>, SecureError> {
        let model = self.model;
        let plan = model.plan();
        let in_dims = protocol::step_dims(plan, dims);
        let convs = plan
            .steps()
            .iter()
            .zip(&in_dims)
            .map(|(s, &d)| match s.op {
                Op::Conv { conv } => {
                    let (tile, linear) = (self.config.max_tile, self.config.linear);
                    let side = LinearServer::new(&self.params, model, conv, d, tile, linear)?;
                    Ok(Some(side))
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, SecureError>>()?;
        let pools = protocol::rotation_layouts(plan, dims, self.params.slots())?;
        Ok(Layouts { dims, convs, pools })
    }

    /// The online phase of a request: the plan's steps on the server's shares (its share of
    /// the input is zero).
    fn run(
        &mut self,
        ch: &mut Channel,
        dims: [usize; 3],
        mut pairs: Option<SquarePairs>,
        observe: &mut impl FnMut(&Step, &Tensor<u64>),
    ) -> Result<(), SecureError> {
        let plan = self.model.plan();
        let input = Tensor::filled(plan.arch().in_channels, dims, 0u64);
        let previous = ch.label();
        let out = protocol::walk(
            plan,
            input,
            |i, step, args| self.step(ch, i, step, args, &mut pairs),
            observe,
        );
        ch.set_label(previous);
        out.map(|_| ())
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
        let deep = self.model.plan().arch().dims == Dims::Three;
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
                hc.run(ch, &self.pk, x, &mut self.prg)?
            }
            (Op::SumPool, Some(layout)) => avgpool::server_by_rotation(
                ch,
                &self.params,
                &self.eval,
                &self.pk,
                &self.galois,
                layout,
                x,
                &mut self.prg,
            )?,
            (Op::Argmax2, _) => {
                self.nonlinear.argmax2(ch, &protocol::score_pairs(x)?)?;
                Tensor::filled(1, x.dims(), 0u64)
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
}
