//! `bunet`: blind UNet segmentation of CT volumes, from the command line.
//!
//! Exit codes: 0 ok, 2 usage, 65 bad input data, 66 missing input, 69 peer unavailable, 70
//! internal error, 74 I/O error, 75 timeout, 76 protocol mismatch.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The protocols' per-chunk buffers are reused instead of page-faulted afresh each chunk.
    bunet_kernels::memory::retain_freed_memory();
    cli::main()
}
