//! Cryptography of BUNET: packed additive homomorphic encryption, additive shares over `Z_p`,
//! garbled circuits, oblivious transfer, Beaver triples, the wire format and the channels
//! between the two parties.
//!
//! Nothing here decodes bytes from the other party except through [`wire`], whose decoders check
//! every length against a bound derived from the parameters before allocating and return a typed
//! error on malformed input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
mod error;
pub mod gc;
mod modm;
pub mod nonlinear;
pub mod ot;
pub mod pahe;
pub mod prg;
mod secret;
pub mod silent;
#[cfg(test)]
mod test_support;
pub mod triples;
pub mod wire;

pub use error::{Blame, Error};
