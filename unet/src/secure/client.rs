//! The client's driver (Alice: the hospital). Holds the PAHE secret key, garbles, and alone
//! learns the mask.
//!
//! A session: [`Client::connect`] (handshake, public key, nonlinear session, triple session:
//! input-independent), then any number of [`Client::infer`] calls, then [`Client::close`]. Each
//! request announces the input extents (public shape metadata) and runs its offline phase
//! (Galois keys the server lacks, square pairs, HomConv layouts) before it needs the input:
//! [`Client::prepare`] runs that phase ahead, e.g. while the next slice stack is loaded.

use bunet_crypto::channel::Channel;
use bunet_crypto::pahe::{KIND_PUBLIC_KEY, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_crypto::triples::SquarePairs;

use super::config::SessionConfig;
use super::error::SecureError;
use super::handshake::{self, Hello};
use super::party::{Alice, Driver};
use super::protocol::{self, Request, RequestReply, kind};
use super::report::{Phase, Report, Role, Timer, restoring_label};
use crate::arch::Architecture;
use crate::error::QuantError;
use crate::quant::{QuantPlan, Step};
use crate::tensor::{SecretTensor, Tensor};

/// A request whose offline phase has run.
#[derive(Debug)]
struct Pending {
    dims: [usize; 3],
    pairs: Option<SquarePairs>,
}

/// The hospital's side of a session. Holds the secret key; only it learns the mask.
pub struct Client {
    driver: Driver<Alice>,
    pending: Option<Pending>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.driver.config)
            .field("arch", self.driver.plan().arch())
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
        let plan = QuantPlan::new(arch, config.preset.quant())?;
        let mut report = Report::new(Role::Client, config);
        let mut ch = restoring_label(ch);
        let ch = &mut *ch;

        let t = Timer::start(ch, "handshake");
        handshake::propose(ch, &hello)?;
        report.record(t.stop(ch, "handshake", Phase::Offline, 0));

        let t = Timer::start(ch, "keys");
        let params = config.preset.pahe_params();
        let sk = SecretKey::generate(&params, &mut prg);
        let pk = PublicKey::generate(&sk, &mut prg);
        protocol::send_now(ch, KIND_PUBLIC_KEY, &pk)?;
        // The server's key pair of the session, for the encrypted-weights backend.
        let server_pk = if config.linear.server_keys() {
            let len = params.public_key_len();
            Some(ch.recv_message::<PublicKey>(KIND_PUBLIC_KEY, len, &params)?)
        } else {
            None
        };
        report.record(t.stop(ch, "keys", Phase::Offline, 0));

        let alice = Alice {
            plan,
            sk,
            server_pk,
        };
        let driver = Driver::setup(ch, alice, config, prg, report)?;
        Ok(Client {
            driver,
            pending: None,
        })
    }

    /// The agreed configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.driver.config
    }

    /// The plan both parties walk.
    pub fn plan(&self) -> &QuantPlan {
        self.driver.plan()
    }

    /// The costs measured so far.
    pub fn report(&self) -> &Report {
        &self.driver.report
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
        protocol::check_dims(self.driver.plan().arch(), dims)?;
        self.driver
            .config
            .check_batch(self.driver.plan().arch(), dims)?;
        let new_rotations = self.driver.new_rotations(dims)?;
        let mut ch = restoring_label(ch);
        let ch = &mut *ch;

        let t = Timer::start(ch, "request");
        protocol::send_now(ch, kind::REQUEST, &Request::Infer(dims))?;
        let reply = ch.recv_message(kind::REQUEST_REPLY, protocol::MAX_REPLY_LEN, &());
        let report = &mut self.driver.report;
        report.record(t.stop(ch, "request", Phase::Offline, 0));
        if let RequestReply::Refuse(reason) = reply? {
            return Err(SecureError::Refused(reason));
        }
        let pairs = self.driver.prepare(ch, dims, &new_rotations)?;
        self.pending = Some(Pending { dims, pairs });
        Ok(())
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
        observe: impl FnMut(&Step, &Tensor<u64>),
    ) -> Result<Tensor<u8>, SecureError> {
        let arch = self.driver.plan().arch();
        arch.check_input(input.channels(), input.dims())?;
        let p = self.driver.params.p();
        if let Some((index, &value)) = input.data().iter().enumerate().find(|(_, v)| **v >= p) {
            return Err(crate::Error::from(QuantError::Unreduced { value, index, p }).into());
        }
        self.prepare(ch, input.dims())?;
        let pairs = self.pending.take().and_then(|p| p.pairs);
        // The driver's copy of the input is erased once the first layer has used it.
        let input = SecretTensor::new(input.clone());
        let out = self.driver.run(ch, input, pairs, observe)?;
        Ok(out.map(|&v| v as u8))
    }

    /// Ends the session politely (the server's [`Server::serve`](super::Server::serve) returns
    /// `Ok`) and returns the client's report.
    ///
    /// # Errors
    /// Channel errors.
    pub fn close(self, ch: &mut Channel) -> Result<Report, SecureError> {
        let t = Timer::start(ch, "request");
        protocol::send_now(ch, kind::REQUEST, &Request::Close)?;
        let mut report = self.driver.report;
        report.record(t.stop(ch, "request", Phase::Offline, 0));
        Ok(report)
    }
}
