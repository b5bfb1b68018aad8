//! The secure side of the model: the two-party building blocks that replace the steps of a
//! [`QuantPlan`](crate::QuantPlan) on additive shares over `Z_p`, and the client and server
//! drivers that walk the plan.
//!
//! - [`homconv`]: one convolution layer on additive shares with packed homomorphic encryption
//!   (the seed's §4.3 HomConv); also the decoder's up-convs (zero insertion) and the 1×1 head.
//! - [`avgpool`]: SecAvgPool by PAHE rotations, and the local window sum.
//! - ReLU, rescale, max pool and argmax: one call each of the session's
//!   [`bunet_crypto::nonlinear`] backend; square: rescale then a Beaver square.
//! - [`handshake`], [`Client`], [`Server`]: the session (handshake, offline set-up, requests),
//!   with a [`Report`] of every block's time, bytes and rounds on each side.
//!
//! Alice (the client) holds the secret key and garbles; Bob (the server) holds the weights.
//! The client's share of the input is the input itself and the server's is zero; after every
//! step the two shares add up mod p to [`crate::fixed::apply`]'s output, and the mask goes to
//! the client only.

pub mod avgpool;
pub mod budget;
mod client;
mod config;
mod error;
pub mod handshake;
pub mod homconv;
mod party;
mod protocol;
mod report;
mod server;

pub use client::Client;
pub use config::{LinearBackend, MAX_BATCH, Preset, SessionConfig};
pub use error::{HandshakeField, HandshakeMismatch, SecureError};
pub use homconv::{HomConvClient, HomConvError, HomConvServer, Layout};
pub use protocol::{
    MAX_EXTENT, MAX_SESSION_ROTATIONS, MAX_VOXELS, WEIGHTS_BLOCK, block_name, kind,
};
pub use report::{BlockReport, Phase, Report, Role, process_cpu_time};
pub use server::{Accepted, Server};
