//! A V1 text message (a JSON object), decoded in both directions.
//!
//! Run with: cargo +nightly fuzz run decode_v1_text (from the repository root; see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    alight_protocol_fuzz::decode_v1_text(data);
});
