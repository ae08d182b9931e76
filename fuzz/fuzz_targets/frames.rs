//! Fuzz target `frames`: see hubbub_fuzz::frames.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::frames(data));
