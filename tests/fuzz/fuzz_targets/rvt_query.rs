//! The gateway's target parser: path segment and `rvt-*` query (see `tern_fuzz::rvt_query`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::rvt_query(data));
