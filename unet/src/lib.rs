//! The model side of BUNET: the UNet architecture, its weights (safetensors, BatchNorm folding),
//! the float reference, and the fixed-point reference over `Z_p` whose arithmetic the secure
//! protocol reproduces bit for bit.
//!
//! - [`Architecture`] describes the network and lowers it to a [`Graph`] of layers; its
//!   [`fingerprint`](Architecture::fingerprint) names it in the handshake.
//! - [`Weights`] reads and writes safetensors files with PyTorch's tensor names and folds into a
//!   [`Model`].
//! - [`float`] evaluates the graph in f32.
//! - [`quant`] fixes the fixed-point conventions ([`Quant`]), lowers the graph to a
//!   [`QuantPlan`] of steps — one per protocol building block — and [`fixed`] evaluates that plan
//!   exactly mod p. The secure driver walks the same plan.
//! - [`secure`] runs that plan between two parties on additive shares: HomConv, the nonlinear
//!   layers, the pools, and the [`secure::Client`] / [`secure::Server`] drivers with their
//!   handshake and per-block reports.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arch;
mod conv;
mod error;
mod exec;
pub mod fixed;
pub mod float;
pub mod quant;
pub mod range;
pub mod secure;
pub mod synthetic;
pub mod tensor;
pub mod weights;

pub use arch::{
    Activation, Architecture, ConvKind, ConvSpec, Dims, Graph, Layer, LayerKind, Pooling, TensorId,
    TensorInfo,
};
pub use error::{ArchError, Error, QuantError, ShapeError, WeightsError};
pub use quant::{Op, Quant, QuantModel, QuantPlan, Step};
pub use tensor::Tensor;
pub use weights::{Head, InputNorm, Metadata, Model, Weights};
