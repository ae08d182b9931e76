//! Incremental UTF-8 validation (RFC 6455 §8.1) that fails as soon as the
//! bytes seen so far can no longer begin a valid string.
//!
//! Built on `std::str::from_utf8`, whose error tells apart "invalid" from
//! "ends in the middle of a character": at most three bytes of an unfinished
//! character are carried between calls.

/// Validates a text message piece by piece.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// The bytes are not, and cannot become, valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate the next piece. Fails as soon as the input is invalid,
    /// including a truncated character whose known bytes already are.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let need = char_width(self.partial[0]) - have;
            let take = need.min(input.len());
            self.partial[have..have + take].copy_from_slice(&input[..take]);
            self.partial_len += take as u8;
            input = &input[take..];
            match std::str::from_utf8(&self.partial[..self.partial_len as usize]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => return Ok(()), // still unfinished, input exhausted
            }
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &input[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// The message ended: valid only if no character is left unfinished.
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.partial_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// Length of the character a (valid) lead byte starts.
fn char_width(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(pieces: &[&[u8]]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for piece in pieces {
            v.feed(piece)?;
        }
        v.finish()
    }

    #[test]
    fn accepts_split_characters() {
        let text = "κόσμε 𝄞 €".as_bytes();
        for split in 0..text.len() {
            assert_eq!(feed_all(&[&text[..split], &text[split..]]), Ok(()));
        }
        let mut v = Utf8Validator::new();
        for byte in text {
            v.feed(std::slice::from_ref(byte)).unwrap();
        }
        v.finish().unwrap();
    }

    #[test]
    fn fails_fast_on_impossible_prefix() {
        // 0xF4 0x90 can never start a valid character (above U+10FFFF).
        let mut v = Utf8Validator::new();
        v.feed(b"ok\xf4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        // Surrogates are rejected at their second byte.
        let mut v = Utf8Validator::new();
        v.feed(b"\xed").unwrap();
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
        // Overlong encodings are rejected at once.
        assert_eq!(Utf8Validator::new().feed(b"\xc0"), Err(InvalidUtf8));
        assert_eq!(Utf8Validator::new().feed(b"\xe0\x80"), Err(InvalidUtf8));
    }

    #[test]
    fn unfinished_character_fails_at_end() {
        assert_eq!(feed_all(&[b"abc\xe2\x82"]), Err(InvalidUtf8));
        assert_eq!(feed_all(&[b"\xf0", b"\x9d", b"\x84"]), Err(InvalidUtf8));
    }

    proptest! {
        #[test]
        fn agrees_with_std(data in proptest::collection::vec(any::<u8>(), 0..64),
                           cuts in proptest::collection::vec(0usize..64, 0..4)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts { pieces.push(&data[start..cut]); start = cut; }
            pieces.push(&data[start..]);
            prop_assert_eq!(feed_all(&pieces).is_ok(), std::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn valid_strings_pass_any_split(text in "\\PC*", cut in 0usize..200) {
            let bytes = text.as_bytes();
            let cut = cut.min(bytes.len());
            prop_assert_eq!(feed_all(&[&bytes[..cut], &bytes[cut..]]), Ok(()));
        }
    }
}
