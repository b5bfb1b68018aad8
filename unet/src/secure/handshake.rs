//! The handshake that opens every session: the client proposes, the server compares field by
//! field and answers; on the first field that differs BOTH sides fail with a
//! [`HandshakeMismatch`] naming it (the server tells the client why before it gives up).
//!
//! Compared, in order ([`HandshakeField::ALL`]): the secure protocol version, the preset name,
//! the fixed-point configuration's fingerprint, the architecture's fingerprint (the server's
//! weights are not fingerprinted: they stay secret), the PAHE parameters' fingerprint, the
//! nonlinear backend's name, the HomConv tile cap, the nonlinear chunk and the linear backend's
//! name.
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
/// Version 2 added the nonlinear chunk and the linear backend to the handshake.
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest name (preset, backend, printed value) in a handshake message.
pub const MAX_NAME_LEN: usize = 64;
/// Largest handshake message body.
pub const MAX_MESSAGE_LEN: usize = 4 * MAX_NAME_LEN + 64;

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
        })
    }
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Accept,
    Mismatch {
        field: HandshakeField,
        server_value: String,
    },
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
            tag => Err(WireError::OutOfRange {
                what: "handshake reply tag",
                found: tag.into(),
                bound: 2,
            }),
        }
    }
}

/// The client's side: sends `ours`, waits for the answer.
///
/// # Errors
/// [`SecureError::Handshake`] if the server reports a mismatch; channel and wire errors.
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
    }
}

/// The server's side: receives the client's proposal and compares it with `ours`; answers, and
/// on a mismatch fails after telling the client which field differs.
///
/// # Errors
/// [`SecureError::Handshake`] on a mismatch; channel and wire errors.
pub fn answer(ch: &mut Channel, ours: &Hello) -> Result<Hello, SecureError> {
    let theirs: Hello = ch.recv_message(kind::HELLO, MAX_MESSAGE_LEN, &())?;
    match ours.first_mismatch(&theirs) {
        None => {
            ch.send_message(kind::REPLY, &Reply::Accept)?;
            ch.flush()?;
            Ok(theirs)
        }
        Some(field) => {
            let reply = Reply::Mismatch {
                field,
                server_value: ours.value(field),
            };
            ch.send_message(kind::REPLY, &reply)?;
            ch.flush()?;
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
        ] {
            let b = reply.to_bytes();
            assert_eq!(decode_exact::<Reply>(&b, &()).unwrap(), reply);
        }
        assert!(decode_exact::<Reply>(&[1, 200, 0], &()).is_err());
        assert!(decode_exact::<Reply>(&[7], &()).is_err());
    }
}
