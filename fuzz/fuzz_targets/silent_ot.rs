#![no_main]
//! cargo-fuzz entry of `bunet_fuzz_targets::silent_ot` (the body lives in fuzz-targets/).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bunet_fuzz_targets::silent_ot(data);
});
