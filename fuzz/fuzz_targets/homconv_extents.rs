#![no_main]
//! cargo-fuzz entry of `bunet_fuzz_targets::homconv_extents` (the body lives in fuzz-targets/).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bunet_fuzz_targets::homconv_extents(data);
});
