//! The data side of the `bunet` command: synthetic chest CT volumes with COVID-19-like lesions
//! and their masks ([`synth`]), NIfTI-1 input and output ([`nifti`]), and slice previews
//! ([`preview`]).
//!
//! The binary `bunet` (in `main.rs`) is a thin command-line layer over these modules.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod nifti;
pub mod preview;
pub mod synth;
