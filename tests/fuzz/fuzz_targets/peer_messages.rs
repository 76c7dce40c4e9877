//! The inter-node messages of every service, their replies and the directory's records (see `tern_fuzz::peer_messages`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_fuzz::peer_messages(data));
