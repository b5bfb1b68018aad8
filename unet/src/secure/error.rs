//! Errors of the secure drivers.

use bunet_crypto::channel::ChannelError;
use bunet_crypto::wire::WireError;

use super::homconv::HomConvError;

/// A handshake field on which client and server disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeField {
    /// The secure protocol's version ([`super::handshake::PROTOCOL_VERSION`]).
    Version,
    /// The preset name (`q32`, `q24`).
    Preset,
    /// The fixed-point configuration's fingerprint ([`crate::Quant::fingerprint`]).
    Quant,
    /// The architecture's fingerprint ([`crate::Architecture::fingerprint`]).
    Architecture,
    /// The PAHE parameter set's fingerprint.
    PaheParams,
    /// The nonlinear backend's name.
    Backend,
    /// The HomConv tile cap.
    MaxTile,
    /// Nonlinear instances per chunk (one OT / garbling exchange each).
    Chunk,
    /// The linear backend's name.
    Linear,
    /// Most slices per request ([`super::config::SessionConfig::batch`]).
    Batch,
}

impl HandshakeField {
    /// Every field, in the order the handshake compares them.
    pub const ALL: [HandshakeField; 10] = [
        HandshakeField::Version,
        HandshakeField::Preset,
        HandshakeField::Quant,
        HandshakeField::Architecture,
        HandshakeField::PaheParams,
        HandshakeField::Backend,
        HandshakeField::MaxTile,
        HandshakeField::Chunk,
        HandshakeField::Linear,
        HandshakeField::Batch,
    ];

    /// The field's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeField::Version => "protocol version",
            HandshakeField::Preset => "preset",
            HandshakeField::Quant => "quantization fingerprint",
            HandshakeField::Architecture => "architecture fingerprint",
            HandshakeField::PaheParams => "PAHE parameters fingerprint",
            HandshakeField::Backend => "nonlinear backend",
            HandshakeField::MaxTile => "HomConv tile cap",
            HandshakeField::Chunk => "nonlinear chunk",
            HandshakeField::Linear => "linear backend",
            HandshakeField::Batch => "batch",
        }
    }

    pub(crate) fn code(self) -> u8 {
        Self::ALL
            .iter()
            .position(|&f| f == self)
            .expect("every field is listed") as u8
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

impl std::fmt::Display for HandshakeField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The two parties disagree on one handshake field (the first that differs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handshake mismatch on the {field}: this side has {ours}, the peer has {theirs}")]
pub struct HandshakeMismatch {
    /// The field.
    pub field: HandshakeField,
    /// This side's value, printed.
    pub ours: String,
    /// The peer's value, printed.
    pub theirs: String,
}

/// Why a secure session failed. After any error the session is out of step with its peer: drop
/// it together with the channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureError {
    /// The handshake found a field on which the parties disagree (both sides get this error).
    #[error(transparent)]
    Handshake(#[from] HandshakeMismatch),
    /// The peer broke the protocol (a message out of order, a refused request, a bad value).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server has no session slot or not enough memory for this session now; the client
    /// may retry after about `retry_after_s` seconds.
    #[error("server busy ({reason}): retry in about {retry_after_s} s")]
    Busy {
        /// The server's suggested wait.
        retry_after_s: u32,
        /// What the server lacks.
        reason: super::handshake::BusyReason,
    },
    /// The server refused an inference request or a session it can never admit (the client's view of a [`SecureError::Protocol`]
    /// or [`SecureError::Model`] on the server).
    #[error("the server refused the request: {0}")]
    Refused(String),
    /// The channel failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Bytes from the peer did not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A cryptographic building block failed (nonlinear, triples, PAHE, OT).
    #[error(transparent)]
    Crypto(#[from] bunet_crypto::Error),
    /// HomConv failed.
    #[error(transparent)]
    HomConv(#[from] HomConvError),
    /// The model, its plan or an input does not fit.
    #[error(transparent)]
    Model(#[from] crate::Error),
}

impl SecureError {
    /// The channel failure underneath this error, however deep in the building blocks it was
    /// raised (a lost or silent peer shows up inside HomConv, OT or garbling errors too).
    pub fn channel_error(&self) -> Option<&ChannelError> {
        match self {
            SecureError::Channel(c)
            | SecureError::Crypto(bunet_crypto::Error::Channel(c))
            | SecureError::HomConv(
                HomConvError::Channel(c) | HomConvError::Crypto(bunet_crypto::Error::Channel(c)),
            ) => Some(c),
            _ => None,
        }
    }

    /// Whether the peer's bytes failed to decode, in any building block.
    pub fn is_malformed_peer_data(&self) -> bool {
        matches!(
            self,
            SecureError::Wire(_)
                | SecureError::Crypto(bunet_crypto::Error::Wire(_))
                | SecureError::HomConv(HomConvError::Crypto(bunet_crypto::Error::Wire(_)))
        )
    }
}

impl From<bunet_crypto::pahe::PaheError> for SecureError {
    fn from(e: bunet_crypto::pahe::PaheError) -> Self {
        SecureError::Crypto(e.into())
    }
}

impl From<crate::ShapeError> for SecureError {
    fn from(e: crate::ShapeError) -> Self {
        SecureError::Model(e.into())
    }
}

impl HandshakeMismatch {
    /// Whose fault this error is: the parties disagree on a parameter.
    pub fn blame(&self) -> bunet_crypto::Blame {
        bunet_crypto::Blame::Peer
    }
}

impl SecureError {
    /// Whose fault this error is, decided by the building block that raised it (every
    /// variant is classified here, and nested errors by their own types).
    pub fn blame(&self) -> bunet_crypto::Blame {
        use bunet_crypto::Blame;
        match self {
            SecureError::Handshake(e) => e.blame(),
            SecureError::Protocol(_) | SecureError::Refused(_) | SecureError::Wire(_) => {
                Blame::Peer
            }
            // The server has no room now: its answer arrived intact, the link is fine.
            SecureError::Busy { .. } => Blame::Peer,
            SecureError::Channel(c) => c.blame(),
            SecureError::Crypto(e) => e.blame(),
            SecureError::HomConv(e) => e.blame(),
            SecureError::Model(_) => Blame::Local,
        }
    }
}

impl HomConvError {
    /// Whose fault this error is.
    pub fn blame(&self) -> bunet_crypto::Blame {
        use bunet_crypto::Blame;
        match self {
            HomConvError::Pahe(e) => e.blame(),
            HomConvError::Crypto(e) => e.blame(),
            HomConvError::Channel(e) => e.blame(),
            HomConvError::Unsupported(_)
            | HomConvError::Shape { .. }
            | HomConvError::Unreduced { .. }
            | HomConvError::TooManyChannels { .. }
            | HomConvError::Modulus { .. }
            | HomConvError::LayoutMismatch { .. }
            | HomConvError::Kernel(_) => Blame::Local,
        }
    }
}
