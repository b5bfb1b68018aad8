//! The secure side of the model: the two-party building blocks that replace the steps of a
//! [`QuantPlan`](crate::QuantPlan) on additive shares over `Z_p`.
//!
//! - [`homconv`]: one convolution layer on additive shares with packed homomorphic encryption
//!   (the seed's §4.3 HomConv).

pub mod homconv;

pub use homconv::{HomConvClient, HomConvError, HomConvServer, Layout};
