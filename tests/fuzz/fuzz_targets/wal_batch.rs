//! The WAL batch decoder, checksums and shape (see `tern_fuzz::wal_batch`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::wal_batch(data));
