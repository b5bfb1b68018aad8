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
