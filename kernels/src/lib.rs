//! Arithmetic kernels of BUNET: word-size modular arithmetic, negacyclic and cyclic NTTs, and
//! fixed-key AES hashing for garbling.
//!
//! Every operation has one safe entry point. Inside, a portable scalar reference is always
//! compiled and tested, and SIMD backends are chosen once, when a plan or context is built
//! ([`Backend::detect`]), from the CPU's features. `BUNET_FORCE_SCALAR=1` forces the portable path.
//! This crate holds no protocol logic and performs no I/O; [`memory`] sets the process's heap
//! policy for the binaries.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod aes_hash;
pub mod automorph;
mod backend;
pub mod conv;
mod error;
pub mod memory;
pub mod modarith;
pub mod ntt;
pub mod oblivious;
pub mod primes;
pub mod rns;
pub mod sample;

pub use backend::{Backend, cpu_model};
pub use error::Error;
pub use modarith::Modulus;
