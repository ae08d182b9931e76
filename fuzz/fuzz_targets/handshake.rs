//! Fuzz target `handshake`: see hubbub_fuzz::handshake.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::handshake(data));
