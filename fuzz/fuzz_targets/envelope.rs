//! Fuzz target `envelope`: see hubbub_fuzz::envelope.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::envelope(data));
