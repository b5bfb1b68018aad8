//! The server's driver (Bob: the model provider). Holds the weights; learns the input's
//! extents and nothing else about it.
//!
//! [`Server::accept`] answers the handshake and runs the session's offline set-up;
//! [`Server::serve`] then serves requests until the client closes: per request it validates the
//! announced extents (refusing politely what does not fit, and carrying on), runs the offline
//! phase (HomConv layouts per extents, Galois keys, square pairs, the garbled-circuit tables
//! the client sends) and then the plan's steps on its shares.
//!
//! The server's heavy work waits for the client's data: a layer's HomConv filters are prepared
//! and its plaintext conv of the server's share computed only once the client's first upload
//! for that layer has arrived (and the filters kept for the session's later requests only while
//! all layers' fit the filter budget together); the garbled-circuit precompute stores only what
//! the client garbles and sends, after the client's plan message. A client that announces a
//! request and then sends nothing costs the server its session state (keys, the nonlinear
//! session, the request's zero input share), not the request's filters or activations.

use bunet_crypto::channel::Channel;
use bunet_crypto::pahe::{Evaluator, KIND_PUBLIC_KEY, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;

use super::budget::{self, Admission, Gate};
use super::config::SessionConfig;
use super::error::SecureError;
use super::handshake::{self, Hello, Purpose, Reply};
use super::party::{Bob, Driver};
use super::protocol::{self, Request, RequestReply, kind};
use super::report::{Phase, Report, Role, Timer, restoring_label};
use crate::quant::{QuantModel, Step};
use crate::tensor::{SecretTensor, Tensor};

/// The model provider's side of a session. Holds the weights; learns nothing about the input
/// beyond its shape.
pub struct Server<'m> {
    driver: Driver<Bob<'m>>,
    /// The memory estimate the session was admitted with: requests that need more are
    /// refused (`None`: no admission control).
    admitted_bytes: Option<u64>,
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
            .field("config", &self.driver.config)
            .field("arch", self.driver.plan().arch())
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
        let mut ch = restoring_label(ch);
        let ch = &mut *ch;
        let t = Timer::start(ch, "handshake");
        handshake::answer(ch, &Hello::server(model, &config))?;
        report.record(t.stop(ch, "handshake", Phase::Offline, 0));
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
        let mut ch = restoring_label(ch);
        let ch = &mut *ch;
        let t = Timer::start(ch, "handshake");
        let theirs = handshake::receive(ch)?;
        if theirs.purpose == Purpose::Probe {
            handshake::respond(ch, &Reply::Status(gate.status()))?;
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
        let server = Self::setup(ch, model, config, prg, report, Some(estimate.total()))?;
        Ok(Accepted::Session(Box::new(server), ticket))
    }

    /// The session's offline set-up after an accepted handshake.
    fn setup(
        ch: &mut Channel,
        model: &'m QuantModel,
        config: SessionConfig,
        prg: Prg,
        mut report: Report,
        admitted_bytes: Option<u64>,
    ) -> Result<Server<'m>, SecureError> {
        let mut ch = restoring_label(ch);
        let ch = &mut *ch;
        let t = Timer::start(ch, "keys");
        let params = config.preset.pahe_params();
        let pk: PublicKey = ch.recv_message(KIND_PUBLIC_KEY, params.public_key_len(), &params)?;
        // The encrypted-weights backend's key pair: fresh per session, from the OS (not from
        // `prg`, which a caller may seed for reproducible tests of the other messages).
        let own = if config.linear.server_keys() {
            let mut os = Prg::from_os_entropy();
            let sk = SecretKey::generate(&params, &mut os);
            protocol::send_now(ch, KIND_PUBLIC_KEY, &PublicKey::generate(&sk, &mut os))?;
            Some(std::sync::Arc::new(sk))
        } else {
            None
        };
        report.record(t.stop(ch, "keys", Phase::Offline, 0));
        let bob = Bob {
            model,
            pk,
            own,
            eval: Evaluator::new(&params),
            galois: Vec::new(),
        };
        let driver = Driver::setup(ch, bob, config, prg, report)?;
        Ok(Server {
            driver,
            admitted_bytes,
        })
    }

    /// The costs measured so far.
    pub fn report(&self) -> &Report {
        &self.driver.report
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
                    let mut report = self.driver.report;
                    report.record(t.stop(ch, "request", Phase::Offline, 0));
                    return Ok(report);
                }
                Request::Infer(dims) => dims,
            };
            let checked = protocol::check_dims(self.driver.plan().arch(), dims)
                .and_then(|()| {
                    self.driver
                        .config
                        .check_batch(self.driver.plan().arch(), dims)
                })
                .and_then(|()| self.check_admitted(dims))
                .and_then(|()| self.driver.new_rotations(dims));
            let (reply, new_rotations) = match checked {
                Ok(new) => (RequestReply::Accept, new),
                Err(e) => (RequestReply::Refuse(e.to_string()), Vec::new()),
            };
            protocol::send_now(ch, kind::REQUEST_REPLY, &reply)?;
            self.driver
                .report
                .record(t.stop(ch, "request", Phase::Offline, 0));
            if reply == RequestReply::Accept {
                let pairs = self.driver.prepare(ch, dims, &new_rotations)?;
                // The server's share of the input is zero.
                let arch = self.driver.plan().arch();
                let input = SecretTensor::new(Tensor::filled(arch.in_channels, dims, 0u64));
                self.driver.run(ch, input, pairs, &mut observe)?;
            }
        }
    }

    /// Refuses a request whose memory estimate exceeds what the session was admitted with.
    fn check_admitted(&self, dims: [usize; 3]) -> Result<(), SecureError> {
        let Some(admitted) = self.admitted_bytes else {
            return Ok(());
        };
        let need = budget::server_session(self.driver.party.model, &self.driver.config, dims)?;
        let need = need.total();
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
}
