//! The client protocol's decoders in the `json` encoding (see `tern_fuzz::client_protocol`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::client_protocol(tern_proto::Encoding::Json, data));
