//! Fuzz target `frames_deflate`: see hubbub_fuzz::frames_deflate.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hubbub_fuzz::frames_deflate(data));
