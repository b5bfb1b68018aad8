use crate::Backend;
use crate::aes_hash::Engine;

/// Errors of the kernels crate: parameters that no kernel can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The modulus is outside the supported range.
    #[error("modulus {q} is out of range: expected 2 <= q < 2^{max_bits}")]
    ModulusOutOfRange {
        /// The rejected modulus.
        q: u64,
        /// The largest supported bit size.
        max_bits: u32,
    },
    /// The modulus is not prime, or has no root of unity of the needed order.
    #[error(
        "modulus {q} is not an NTT prime for length {n}: expected a prime q with q = 1 mod {order}"
    )]
    NotNttFriendly {
        /// The rejected modulus.
        q: u64,
        /// The transform length.
        n: usize,
        /// The order of the root of unity the transform needs (2n negacyclic, n cyclic).
        order: usize,
    },
    /// The transform length is not a supported power of two.
    #[error("transform length {n} is not supported: expected a power of two in [{min}, {max}]")]
    LengthUnsupported {
        /// The rejected length.
        n: usize,
        /// The smallest supported length.
        min: usize,
        /// The largest supported length.
        max: usize,
    },
    /// A backend was requested that this CPU cannot run.
    #[error("backend {0:?} is not available on this CPU")]
    BackendUnavailable(Backend),
    /// A multiplication kind was requested that cannot serve the modulus on this backend and
    /// CPU.
    #[error("multiplication kind {kind:?} cannot serve q = {q} on backend {backend:?} here")]
    KindUnsupported {
        /// The requested kind.
        kind: crate::modarith::MulKind,
        /// The modulus.
        q: u64,
        /// The modulus's backend.
        backend: Backend,
    },
    /// An AES engine was requested that this CPU cannot run.
    #[error("aes engine {0} is not available on this CPU")]
    AesEngineUnavailable(Engine),
}
