//! The actor key parsers: serialized and `rvt-key` forms (see `tern_fuzz::actor_key`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::actor_key(data));
