//! The transport's response reader (see `tern_fuzz::peer_response`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::peer_response(data));
