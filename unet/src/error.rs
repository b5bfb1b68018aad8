//! Errors of the unet crate, one typed sub-enum per domain.

/// Errors of the unet crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The architecture description is invalid or does not parse.
    #[error(transparent)]
    Architecture(#[from] ArchError),
    /// A weights file is malformed or does not fit the architecture.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The fixed-point configuration or the quantized model is unusable.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// A tensor handed to the model has the wrong shape.
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// An architecture that BUNET cannot build, or a description that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchError {
    /// A numeric parameter is outside its supported range.
    #[error("architecture parameter {name} = {value} is out of range: expected {min}..={max}")]
    OutOfRange {
        /// The parameter's name.
        name: &'static str,
        /// The rejected value.
        value: u64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// The textual description does not parse.
    #[error("architecture description does not parse: {0}")]
    Parse(String),
}

/// A weights file that is malformed or does not match the architecture.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The safetensors container itself is malformed.
    #[error("malformed safetensors file: {0}")]
    Format(String),
    /// The file has no architecture metadata and none was supplied.
    #[error("the weights file carries no `bunet.architecture` metadata and none was supplied")]
    MissingArchitecture,
    /// The file's architecture metadata differs from the expected architecture.
    #[error("weights are for architecture `{found}`, expected `{expected}`")]
    ArchitectureMismatch {
        /// The architecture the caller expected.
        expected: String,
        /// The architecture named in the file.
        found: String,
    },
    /// A metadata entry does not parse.
    #[error("metadata entry {key} does not parse: {value:?}")]
    Metadata {
        /// The metadata key.
        key: String,
        /// Its value in the file.
        value: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("tensor {0} is missing")]
    MissingTensor(String),
    /// The file holds a tensor the architecture does not have.
    #[error("unexpected tensor {0}")]
    UnexpectedTensor(String),
    /// A tensor has the wrong shape.
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// The shape the architecture implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has an unsupported element type.
    #[error("tensor {name} has dtype {found}, expected F32 or F64")]
    Dtype {
        /// The tensor's name.
        name: String,
        /// The dtype in the file.
        found: String,
    },
    /// A tensor holds NaN or infinity, or a BatchNorm variance is negative.
    #[error("tensor {name} holds an invalid value at index {index}: {value}")]
    InvalidValue {
        /// The tensor's name.
        name: String,
        /// The index of the first offending element.
        index: usize,
        /// The offending value.
        value: f64,
    },
}

/// A fixed-point configuration or quantized model that the protocol cannot run exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// The plaintext modulus is not an odd prime below 2^32.
    #[error("plaintext modulus {p} is unusable: expected an odd prime < 2^32")]
    Modulus {
        /// The rejected modulus.
        p: u64,
    },
    /// The bit budget does not fit the modulus.
    #[error(
        "fixed-point bits do not fit: int_bits {int_bits} + frac_bits {frac_bits} must be >= 1 \
         and < log2(p) = {p_bits}, weight_frac_bits {weight_frac_bits} must be <= 24"
    )]
    Bits {
        /// Integer bits of activations.
        int_bits: u32,
        /// Fractional bits of activations.
        frac_bits: u32,
        /// Fractional bits of weights.
        weight_frac_bits: u32,
        /// Bit length of the modulus.
        p_bits: u32,
    },
    /// A quantized weight or bias does not fit the modulus or the i32 kernel.
    #[error("quantized {what} of conv {conv} is {value}, beyond the bound {bound}")]
    ValueOutOfRange {
        /// `"weight"` or `"bias"`.
        what: &'static str,
        /// The conv's name.
        conv: String,
        /// The quantized value.
        value: i64,
        /// The largest magnitude allowed.
        bound: i64,
    },
    /// The quantized model was built for another plan.
    #[error("quantized model does not match the plan (conv {0})")]
    PlanMismatch(usize),
    /// A value handed to the fixed-point reference is not reduced mod p.
    #[error("value {value} at index {index} is not reduced modulo p = {p}")]
    Unreduced {
        /// The offending value.
        value: u64,
        /// Its index.
        index: usize,
        /// The modulus.
        p: u64,
    },
}

/// A tensor whose shape does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// The data length does not equal channels × depth × height × width.
    #[error("tensor data has {found} elements, expected {expected}")]
    DataLength {
        /// channels × spatial size.
        expected: usize,
        /// The length supplied.
        found: usize,
    },
    /// The input has the wrong number of channels.
    #[error("input has {found} channels, expected {expected}")]
    Channels {
        /// The architecture's input channels.
        expected: usize,
        /// The channels supplied.
        found: usize,
    },
    /// A spatial extent is zero or not divisible by 2^depth (or depth > 1 for a 2D model).
    #[error("input spatial dims {found:?} are unusable: {reason}")]
    Spatial {
        /// The spatial dims supplied (depth, height, width).
        found: [usize; 3],
        /// What is wrong with them.
        reason: String,
    },
}
