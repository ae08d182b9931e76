//! Fuzz target `client_response`: see hubbub_fuzz::client_response.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::client_response(data));
