use crate::channel::ChannelError;
use crate::ot::OtError;
use crate::wire::WireError;

/// Errors of the crypto crate, one variant per domain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the other party did not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The channel to the other party failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A kernel refused its parameters.
    #[error(transparent)]
    Kernel(#[from] bunet_kernels::Error),
    /// An OT or triple protocol step refused its inputs.
    #[error(transparent)]
    Ot(#[from] OtError),
    /// A garbled-circuit input, parameter or peer message was rejected.
    #[error(transparent)]
    Gc(#[from] crate::gc::GcError),
    /// The homomorphic encryption scheme refused an operation or parameter set.
    #[error(transparent)]
    Pahe(#[from] crate::pahe::PaheError),
    /// A nonlinear-layer call refused its inputs or its peer's data.
    #[error(transparent)]
    Nonlinear(#[from] crate::nonlinear::NonlinearError),
}

/// Whose fault an error is: what decides a command's exit code and how a server logs a
/// failed session. Every error type of the crate says it for each of its variants (the
/// matches are exhaustive, so a new variant must be classified where it is defined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The peer: bytes that break the protocol, or a disagreement on parameters.
    Peer,
    /// The connection: closed, silent past a limit, or another transport failure.
    Link,
    /// This side: its inputs, its configuration, or a bug.
    Local,
}

impl Error {
    /// Whose fault this error is.
    pub fn blame(&self) -> Blame {
        match self {
            Error::Wire(e) => e.blame(),
            Error::Channel(e) => e.blame(),
            Error::Kernel(_) => Blame::Local,
            Error::Ot(e) => e.blame(),
            Error::Gc(e) => e.blame(),
            Error::Pahe(e) => e.blame(),
            Error::Nonlinear(e) => e.blame(),
        }
    }
}

impl WireError {
    /// Whose fault this error is: bytes that do not decode came from the peer.
    pub fn blame(&self) -> Blame {
        Blame::Peer
    }
}

impl ChannelError {
    /// Whose fault this error is.
    pub fn blame(&self) -> Blame {
        match self {
            ChannelError::Closed
            | ChannelError::Timeout(_)
            | ChannelError::TooSlow { .. }
            | ChannelError::Deadline(_)
            | ChannelError::Io(_) => Blame::Link,
            ChannelError::BadFrame(_)
            | ChannelError::VersionMismatch { .. }
            | ChannelError::UnexpectedKind { .. }
            | ChannelError::FrameTooLarge { .. } => Blame::Peer,
        }
    }
}

impl OtError {
    /// Whose fault this error is: OT steps refuse their caller's inputs.
    pub fn blame(&self) -> Blame {
        match self {
            OtError::LengthMismatch { .. }
            | OtError::ModulusOutOfRange { .. }
            | OtError::NotReduced { .. } => Blame::Local,
        }
    }
}

impl crate::gc::GcError {
    /// Whose fault this error is.
    pub fn blame(&self) -> Blame {
        use crate::gc::GcError as E;
        match self {
            E::Malformed(_) => Blame::Peer,
            E::DeltaLsbZero
            | E::InputLength { .. }
            | E::ValueOutOfRange { .. }
            | E::InvalidParams(_)
            | E::Bristol { .. } => Blame::Local,
        }
    }
}

impl crate::pahe::PaheError {
    /// Whose fault this error is: an object of another parameter set came from the peer.
    pub fn blame(&self) -> Blame {
        use crate::pahe::PaheError as E;
        match self {
            E::ParamsMismatch { .. } => Blame::Peer,
            E::Param(_)
            | E::Kernel(_)
            | E::Level { .. }
            | E::Slots { .. }
            | E::MissingGaloisKey { .. } => Blame::Local,
        }
    }
}

impl crate::nonlinear::NonlinearError {
    /// Whose fault this error is.
    pub fn blame(&self) -> Blame {
        use crate::nonlinear::NonlinearError as E;
        match self {
            E::PrecomputeRefused { .. } | E::OutputOutOfRange { .. } => Blame::Peer,
            E::InputLength { .. }
            | E::InvalidChunk { .. }
            | E::PrecomputeMismatch { .. }
            | E::InvalidDigitBits { .. } => Blame::Local,
        }
    }
}
