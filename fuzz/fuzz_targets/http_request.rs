//! Fuzz target `http_request`: see hubbub_fuzz::http_request.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::http_request(data));
