//! Arbitrary bytes into the server's upgrade-request parser and the
//! `Sec-WebSocket-Extensions` parser: neither may panic, and a parsed head
//! never claims more bytes than it was given.
#![no_main]

use hubbub_core::handshake::{format_extensions, parse_extensions, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limit in [64, 8 << 10] {
        if let Ok(Some((request, len))) = parse_request(data, limit) {
            assert!(len <= data.len() && len <= limit);
            assert!(request.target().starts_with(request.path()));
        }
    }
    if let Ok(value) = std::str::from_utf8(data) {
        if let Ok(offers) = parse_extensions(value) {
            // What we format, we parse back to the same offers.
            assert_eq!(parse_extensions(&format_extensions(&offers)), Ok(offers));
        }
    }
});
