//! The handshake that opens every session: the client proposes, the server compares field by
//! field and answers; on the first field that differs BOTH sides fail with a
//! [`HandshakeMismatch`] naming it (the server tells the client why before it gives up).
//!
//! Compared, in order ([`HandshakeField::ALL`]): the secure protocol version, the preset name,
//! the fixed-point configuration's fingerprint, the architecture's fingerprint (the server's
//! weights are not fingerprinted: they stay secret), the PAHE parameters' fingerprint, the
//! nonlinear backend's name, the HomConv tile cap, the nonlinear chunk, the linear backend's
//! name and the batch (most slices per request).
//!
//! The hello also states the session's purpose and the extents of its requests: the server
//! admits a session only after the fields match, and only if its memory estimate for those
//! extents fits what it has left ([`super::budget`]); otherwise it answers at once with a
//! typed [`Reply::Busy`] (retry later) or [`Reply::Refuse`] (never fits). A [`Purpose::Probe`]
//! hello asks only for the server's [`Status`] (readiness probes); its fields are not compared.
//!
//! Messages: [`kind::HELLO`] (client → server) and [`kind::REPLY`] (server → client), both
//! bounded by [`MAX_MESSAGE_LEN`] and decoded through [`bunet_crypto::wire`].

use bunet_crypto::channel::Channel;
use bunet_crypto::wire::{Decode, Encode, Reader, WireError};

use super::config::SessionConfig;
use super::error::{HandshakeField, HandshakeMismatch, SecureError};
use crate::arch::Architecture;
use crate::quant::QuantModel;

/// Version of the secure protocol (message order and formats of this module's drivers).
/// Version 2 added the nonlinear chunk and the linear backend; version 3 the hello's purpose
/// and extents and the busy, refusal and status replies; version 4 the batch (requests of
/// several slices stacked along depth); version 5 the OT backend's Ferret set with `k = 44,000`
/// (issue #18: a peer of version 4 would run `k = 36,288` and the two would not agree); version
/// 6 the smooth flood and the presets' smaller primes, and the coefficient HomConv's response
/// with `a` in the coefficient domain, its low bits dropped (issue #14); version 7 the OT
/// backend's trimmed millionaires' (no unused leaf bits or openings on the wire, issue #20);
/// version 8 the coefficient HomConv's per-layer public weight bound (the model's first conv
/// at `2^24`, so its layout and flood differ from a version-7 peer's, issue #14); version 9
/// the encrypted-weights linear backend `coeff-ew` (the server's public key after the
/// client's, the weight ciphertexts at a layer's first run, responses from the client) and the
/// OT backend's fused rescaling carries with the wrap and DReLU comparisons' low digits shared
/// (where `p ≡ 1 mod 2^(s+1)`, issue #20); version 10 the OT backend's COTs for the steps
/// after the digit OTs (comparison trees, the AND round, wrap products, multiplexer) run ahead
/// during them, both directions (Alice's chunks' frames before her messages, Bob's after his
/// corrections, issue #20); version 11 the OT backend's argmax from three wrap comparisons in
/// one batch (no lifts, no second comparison; issue #20).
pub const PROTOCOL_VERSION: u16 = 11;
/// Largest name (preset, backend, printed value) in a handshake message.
pub const MAX_NAME_LEN: usize = 64;
/// Largest handshake message body.
pub const MAX_MESSAGE_LEN: usize = 4 * MAX_NAME_LEN + 64;
/// Longest refusal reason in a [`Reply::Refuse`].
pub const MAX_REASON_LEN: usize = 160;

/// What a hello opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A secure session (the fields are compared, then the session is admitted or not).
    Session,
    /// A status query: the server answers with its [`Status`] and closes.
    Probe,
}

/// Why a server cannot take a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusyReason {
    /// Every session slot (`--max-sessions`) is taken.
    Slots,
    /// The running sessions leave too little of the memory budget for this one.
    Memory,
}

impl BusyReason {
    fn code(self) -> u8 {
        match self {
            BusyReason::Slots => 0,
            BusyReason::Memory => 1,
        }
    }
}

impl std::fmt::Display for BusyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BusyReason::Slots => "every session slot is taken",
            BusyReason::Memory => "not enough free memory for the session",
        })
    }
}

/// A server's load, as a probe sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// Sessions running.
    pub running: u32,
    /// Most sessions at once (`--max-sessions`).
    pub max_sessions: u32,
    /// Bytes of the memory budget not reserved by running sessions.
    pub free_bytes: u64,
    /// The memory budget (`--memory`).
    pub budget_bytes: u64,
    /// The estimate of one session of the default request (a 512×512 slice).
    pub default_session_bytes: u64,
}

impl Status {
    /// How many more sessions of the default request the server would admit now.
    pub fn default_sessions_free(&self) -> u64 {
        let by_memory = self
            .free_bytes
            .checked_div(self.default_session_bytes)
            .unwrap_or(u64::MAX);
        by_memory.min(u64::from(self.max_sessions.saturating_sub(self.running)))
    }
}

/// Message kinds of the handshake (0x00xx).
pub mod kind {
    /// The client's proposal ([`super::Hello`]).
    pub const HELLO: u16 = 0x0001;
    /// The server's answer: accepted, or the first mismatching field and the server's value.
    pub const REPLY: u16 = 0x0002;
}

/// What one party brings to the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The preset's name.
    pub preset: String,
    /// [`crate::Quant::fingerprint`].
    pub quant: u64,
    /// [`Architecture::fingerprint`].
    pub arch: u64,
    /// [`bunet_crypto::pahe::Params::fingerprint`].
    pub pahe_params: u64,
    /// [`bunet_crypto::nonlinear::Backend::name`].
    pub backend: String,
    /// The HomConv tile cap, 0 for none.
    pub max_tile: u64,
    /// Nonlinear instances per chunk ([`SessionConfig::chunk`]).
    pub chunk: u64,
    /// [`super::config::LinearBackend::name`].
    pub linear: String,
    /// Most slices per request ([`SessionConfig::batch`]).
    pub batch: u64,
    /// A session or a probe.
    pub purpose: Purpose,
    /// The largest extents `[d, h, w]` the session's requests will have (what the server's
    /// memory estimate is for), or zeros if unstated (the server then assumes its default
    /// request, a 512×512 slice, and refuses requests that need more).
    pub extents: [u32; 3],
}

impl Hello {
    /// The client's proposal for `arch` under `config`.
    pub fn client(arch: &Architecture, config: &SessionConfig) -> Self {
        Self::new(
            arch.fingerprint(),
            config.preset.quant().fingerprint(),
            config,
        )
    }

    /// The client's proposal for a session whose requests have extents up to `extents`.
    pub fn client_for(arch: &Architecture, config: &SessionConfig, extents: [usize; 3]) -> Self {
        Self {
            extents: extents.map(|e| u32::try_from(e).unwrap_or(u32::MAX)),
            ..Self::client(arch, config)
        }
    }

    /// A status query: no configuration to compare.
    pub fn probe() -> Self {
        Self {
            version: PROTOCOL_VERSION,
            preset: String::new(),
            quant: 0,
            arch: 0,
            pahe_params: 0,
            backend: String::new(),
            max_tile: 0,
            chunk: 0,
            linear: String::new(),
            batch: 0,
            purpose: Purpose::Probe,
            extents: [0; 3],
        }
    }

    /// The stated extents, if any.
    pub fn stated_extents(&self) -> Option<[usize; 3]> {
        (self.extents != [0; 3]).then(|| self.extents.map(|e| e as usize))
    }

    /// What the server holds: its model's architecture and quantization under `config`.
    pub fn server(model: &QuantModel, config: &SessionConfig) -> Self {
        Self::new(
            model.plan().arch().fingerprint(),
            model.quant().fingerprint(),
            config,
        )
    }

    fn new(arch: u64, quant: u64, config: &SessionConfig) -> Self {
        Self {
            version: PROTOCOL_VERSION,
            preset: config.preset.name().to_owned(),
            quant,
            arch,
            pahe_params: config.preset.pahe_params().fingerprint(),
            backend: config.nonlinear.name().to_owned(),
            max_tile: config.max_tile.map_or(0, |t| t as u64),
            chunk: config.chunk as u64,
            linear: config.linear.name().to_owned(),
            batch: config.batch as u64,
            purpose: Purpose::Session,
            extents: [0; 3],
        }
    }

    /// `field`'s value, printed.
    pub fn value(&self, field: HandshakeField) -> String {
        match field {
            HandshakeField::Version => self.version.to_string(),
            HandshakeField::Preset => self.preset.clone(),
            HandshakeField::Quant => format!("{:#018x}", self.quant),
            HandshakeField::Architecture => format!("{:#018x}", self.arch),
            HandshakeField::PaheParams => format!("{:#018x}", self.pahe_params),
            HandshakeField::Backend => self.backend.clone(),
            HandshakeField::MaxTile => match self.max_tile {
                0 => "none".to_owned(),
                t => t.to_string(),
            },
            HandshakeField::Chunk => self.chunk.to_string(),
            HandshakeField::Linear => self.linear.clone(),
            HandshakeField::Batch => self.batch.to_string(),
        }
    }

    /// The first field on which `self` and `other` differ.
    pub fn first_mismatch(&self, other: &Hello) -> Option<HandshakeField> {
        HandshakeField::ALL
            .into_iter()
            .find(|&f| self.value(f) != other.value(f))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(MAX_NAME_LEN)];
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

fn read_str(r: &mut Reader<'_>, what: &'static str) -> Result<String, WireError> {
    let len = usize::from(r.u8()?);
    if len > MAX_NAME_LEN {
        return Err(WireError::TooLong {
            what,
            found: len as u64,
            max: MAX_NAME_LEN as u64,
        });
    }
    let bytes = r.take(len)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Invalid(what))
}

impl Encode for Hello {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        put_str(out, &self.preset);
        for v in [self.quant, self.arch, self.pahe_params] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_str(out, &self.backend);
        out.extend_from_slice(&self.max_tile.to_le_bytes());
        out.extend_from_slice(&self.chunk.to_le_bytes());
        put_str(out, &self.linear);
        out.extend_from_slice(&self.batch.to_le_bytes());
        out.push(match self.purpose {
            Purpose::Session => 0,
            Purpose::Probe => 1,
        });
        for e in self.extents {
            out.extend_from_slice(&e.to_le_bytes());
        }
    }
}

impl Decode for Hello {
    type Context = ();

    fn decode(r: &mut Reader<'_>, _: &()) -> Result<Self, WireError> {
        Ok(Self {
            version: r.u16()?,
            preset: read_str(r, "preset name")?,
            quant: r.u64()?,
            arch: r.u64()?,
            pahe_params: r.u64()?,
            backend: read_str(r, "backend name")?,
            max_tile: r.u64()?,
            chunk: r.u64()?,
            linear: read_str(r, "linear backend name")?,
            batch: r.u64()?,
            purpose: match r.u8()? {
                0 => Purpose::Session,
                1 => Purpose::Probe,
                tag => {
                    return Err(WireError::OutOfRange {
                        what: "hello purpose",
                        found: tag.into(),
                        bound: 2,
                    });
                }
            },
            extents: [r.u32()?, r.u32()?, r.u32()?],
        })
    }
}

/// The server's answer to a hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The session is admitted.
    Accept,
    /// The first field that differs, with the server's value; both sides fail.
    Mismatch {
        /// The field.
        field: HandshakeField,
        /// The server's value, printed.
        server_value: String,
    },
    /// No slot or no memory now: retry after about `retry_after_s` seconds.
    Busy {
        /// The server's suggested wait.
        retry_after_s: u32,
        /// What is missing.
        reason: BusyReason,
    },
    /// The session can never be admitted as stated (e.g. its estimate exceeds the whole
    /// budget, or its extents do not fit the model).
    Refuse(String),
    /// The answer to a probe.
    Status(Status),
}

impl Encode for Reply {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Accept => out.push(0),
            Reply::Mismatch {
                field,
                server_value,
            } => {
                out.push(1);
                out.push(field.code());
                put_str(out, server_value);
            }
            Reply::Busy {
                retry_after_s,
                reason,
            } => {
                out.push(2);
                out.extend_from_slice(&retry_after_s.to_le_bytes());
                out.push(reason.code());
            }
            Reply::Refuse(reason) => {
                out.push(3);
                // Cut at a character boundary so that the reason still decodes.
                let mut end = reason.len().min(MAX_REASON_LEN);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                out.push(end as u8);
                out.extend_from_slice(&reason.as_bytes()[..end]);
            }
            Reply::Status(s) => {
                out.push(4);
                out.extend_from_slice(&s.running.to_le_bytes());
                out.extend_from_slice(&s.max_sessions.to_le_bytes());
                for v in [s.free_bytes, s.budget_bytes, s.default_session_bytes] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

impl Decode for Reply {
    type Context = ();

    fn decode(r: &mut Reader<'_>, _: &()) -> Result<Self, WireError> {
        match r.u8()? {
            0 => Ok(Reply::Accept),
            1 => {
                let code = r.u8()?;
                let field = HandshakeField::from_code(code).ok_or(WireError::OutOfRange {
                    what: "handshake field",
                    found: code.into(),
                    bound: HandshakeField::ALL.len() as u64,
                })?;
                Ok(Reply::Mismatch {
                    field,
                    server_value: read_str(r, "server value")?,
                })
            }
            2 => {
                let retry_after_s = r.u32()?;
                let reason = match r.u8()? {
                    0 => BusyReason::Slots,
                    1 => BusyReason::Memory,
                    code => {
                        return Err(WireError::OutOfRange {
                            what: "busy reason",
                            found: code.into(),
                            bound: 2,
                        });
                    }
                };
                Ok(Reply::Busy {
                    retry_after_s,
                    reason,
                })
            }
            3 => {
                let len = usize::from(r.u8()?);
                if len > MAX_REASON_LEN {
                    return Err(WireError::TooLong {
                        what: "refusal reason",
                        found: len as u64,
                        max: MAX_REASON_LEN as u64,
                    });
                }
                let bytes = r.take(len)?;
                String::from_utf8(bytes.to_vec())
                    .map(Reply::Refuse)
                    .map_err(|_| WireError::Invalid("refusal reason"))
            }
            4 => Ok(Reply::Status(Status {
                running: r.u32()?,
                max_sessions: r.u32()?,
                free_bytes: r.u64()?,
                budget_bytes: r.u64()?,
                default_session_bytes: r.u64()?,
            })),
            tag => Err(WireError::OutOfRange {
                what: "handshake reply tag",
                found: tag.into(),
                bound: 5,
            }),
        }
    }
}

/// The client's side: sends `ours`, waits for the answer.
///
/// # Errors
/// [`SecureError::Handshake`] if the server reports a mismatch, [`SecureError::Busy`] if it has
/// no slot or memory now, [`SecureError::Refused`] if it never admits such a session;
/// [`SecureError::Protocol`] for a status answer to a session hello; channel and wire errors.
pub fn propose(ch: &mut Channel, ours: &Hello) -> Result<(), SecureError> {
    ch.send_message(kind::HELLO, ours)?;
    match ch.recv_message::<Reply>(kind::REPLY, MAX_MESSAGE_LEN, &())? {
        Reply::Accept => Ok(()),
        Reply::Mismatch {
            field,
            server_value,
        } => Err(HandshakeMismatch {
            field,
            ours: ours.value(field),
            theirs: server_value,
        }
        .into()),
        Reply::Busy {
            retry_after_s,
            reason,
        } => Err(SecureError::Busy {
            retry_after_s,
            reason,
        }),
        Reply::Refuse(reason) => Err(SecureError::Refused(reason)),
        Reply::Status(_) => Err(SecureError::Protocol(
            "a status answer to a session hello".into(),
        )),
    }
}

/// A probe: sends a [`Hello::probe`] and returns the server's [`Status`].
///
/// # Errors
/// [`SecureError::Protocol`] if the server answers with anything else; channel and wire errors.
pub fn probe(ch: &mut Channel) -> Result<Status, SecureError> {
    ch.send_message(kind::HELLO, &Hello::probe())?;
    match ch.recv_message::<Reply>(kind::REPLY, MAX_MESSAGE_LEN, &())? {
        Reply::Status(s) => Ok(s),
        other => Err(SecureError::Protocol(format!(
            "a probe was answered with {other:?}"
        ))),
    }
}

/// The server's side: receives the client's hello. The caller compares it
/// ([`Hello::first_mismatch`]), decides on admission and answers with [`respond`].
///
/// # Errors
/// Channel and wire errors.
pub fn receive(ch: &mut Channel) -> Result<Hello, SecureError> {
    Ok(ch.recv_message(kind::HELLO, MAX_MESSAGE_LEN, &())?)
}

/// The server's side: sends `reply` at once.
///
/// # Errors
/// Channel errors.
pub fn respond(ch: &mut Channel, reply: &Reply) -> Result<(), SecureError> {
    ch.send_message(kind::REPLY, reply)?;
    ch.flush()?;
    Ok(())
}

/// The server's side without admission control: receives the client's proposal and compares
/// it with `ours`; accepts, or on a mismatch fails after telling the client which field
/// differs.
///
/// # Errors
/// [`SecureError::Handshake`] on a mismatch; [`SecureError::Protocol`] for a probe; channel
/// and wire errors.
pub fn answer(ch: &mut Channel, ours: &Hello) -> Result<Hello, SecureError> {
    let theirs = receive(ch)?;
    if theirs.purpose == Purpose::Probe {
        respond(ch, &Reply::Refuse("this server answers no probes".into()))?;
        return Err(SecureError::Protocol(
            "a probe where a session was expected".into(),
        ));
    }
    compare(ch, ours, &theirs)?;
    respond(ch, &Reply::Accept)?;
    Ok(theirs)
}

/// Compares the client's hello with `ours`; on a mismatch tells the client which field differs
/// and fails.
///
/// # Errors
/// [`SecureError::Handshake`] on a mismatch; channel errors.
pub fn compare(ch: &mut Channel, ours: &Hello, theirs: &Hello) -> Result<(), SecureError> {
    match ours.first_mismatch(theirs) {
        None => Ok(()),
        Some(field) => {
            let reply = Reply::Mismatch {
                field,
                server_value: ours.value(field),
            };
            respond(ch, &reply)?;
            Err(HandshakeMismatch {
                field,
                ours: ours.value(field),
                theirs: theirs.value(field),
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::config::Preset;
    use bunet_crypto::wire::decode_exact;

    #[test]
    fn hello_decodes_what_it_encodes_and_rejects_truncations() {
        let h = Hello::client(&Architecture::seed(), &SessionConfig::new(Preset::Q24));
        let bytes = h.to_bytes();
        assert_eq!(decode_exact::<Hello>(&bytes, &()).unwrap(), h);
        for cut in 0..bytes.len() {
            assert!(decode_exact::<Hello>(&bytes[..cut], &()).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_exact::<Hello>(&long, &()).is_err());
        for reply in [
            Reply::Accept,
            Reply::Mismatch {
                field: HandshakeField::Backend,
                server_value: "gc".into(),
            },
            Reply::Busy {
                retry_after_s: 30,
                reason: BusyReason::Memory,
            },
            Reply::Refuse("too large".into()),
            Reply::Status(Status {
                running: 1,
                max_sessions: 4,
                free_bytes: 5 << 30,
                budget_bytes: 8 << 30,
                default_session_bytes: 2 << 30,
            }),
        ] {
            let b = reply.to_bytes();
            assert_eq!(decode_exact::<Reply>(&b, &()).unwrap(), reply);
        }
        assert!(decode_exact::<Reply>(&[1, 200, 0], &()).is_err());
        assert!(decode_exact::<Reply>(&[7], &()).is_err());
        assert!(decode_exact::<Reply>(&[2, 1, 0, 0, 0, 9], &()).is_err());
        assert!(decode_exact::<Reply>(&[3, 200], &()).is_err());
        let probe = Hello::probe().to_bytes();
        assert_eq!(decode_exact::<Hello>(&probe, &()).unwrap(), Hello::probe());
        let mut bad_purpose = probe.clone();
        bad_purpose[probe.len() - 13] = 9;
        assert!(decode_exact::<Hello>(&bad_purpose, &()).is_err());
        let sized = Hello::client_for(
            &Architecture::seed(),
            &SessionConfig::new(Preset::Q24),
            [1, 64, 96],
        );
        let back = decode_exact::<Hello>(&sized.to_bytes(), &()).unwrap();
        assert_eq!(back.stated_extents(), Some([1, 64, 96]));
        assert_eq!(h.stated_extents(), None);
    }
}
