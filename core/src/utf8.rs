//! Incremental UTF-8 validation (RFC 6455 §8.1) that fails as soon as the
//! bytes seen so far can no longer begin a valid string.
//!
//! Built on `simdutf8::compat::from_utf8` (SIMD, with std's error
//! semantics: `valid_up_to` and `error_len`, which tells apart "invalid"
//! from "ends in the middle of a character"; inputs under 64 bytes go to
//! std's validator): at most three bytes of an unfinished character are
//! carried between calls. The property tests below compare it with
//! `std::str::from_utf8`.

use simdutf8::compat::from_utf8;

/// Validates a text message piece by piece.
#[derive(Debug, Clone, Default)]
pub(crate) struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// What became of a character carried between pieces.
enum Carried {
    /// None was carried.
    Nothing,
    /// It is complete and valid.
    Completed(char),
    /// The piece ended before it did.
    Unfinished,
}

/// The bytes are not, and cannot become, valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Validate the next piece. Fails as soon as the input is invalid,
    /// including a truncated character whose known bytes already are. (The
    /// tests' second implementation, checked against `push_valid`.)
    #[cfg(test)]
    fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if let Carried::Unfinished = self.finish_carried(&mut input)? {
            return Ok(());
        }
        match from_utf8(input) {
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

    /// Validate the next piece and append it to `out` as text: each byte is
    /// validated once, so the accumulated `String` needs no re-validation.
    /// Fails as soon as the input is invalid, including a truncated
    /// character whose known bytes already are;
    /// an unfinished character at the end is carried to the next call.
    pub(crate) fn push_valid(
        &mut self,
        mut input: &[u8],
        out: &mut String,
    ) -> Result<(), InvalidUtf8> {
        match self.finish_carried(&mut input)? {
            Carried::Unfinished => return Ok(()),
            Carried::Completed(c) => out.push(c),
            Carried::Nothing => {}
        }
        // Set aside a character cut off at the end, so that what is
        // validated (once) is whole characters only.
        let cut = unfinished_tail(input);
        let (whole, tail) = input.split_at(input.len() - cut);
        out.push_str(from_utf8(whole).map_err(|_| InvalidUtf8)?);
        if !tail.is_empty() {
            // Known bytes that can never start a valid character fail now.
            if let Err(e) = from_utf8(tail) {
                if e.error_len().is_some() {
                    return Err(InvalidUtf8);
                }
            }
            self.partial[..tail.len()].copy_from_slice(tail);
            self.partial_len = tail.len() as u8;
        }
        Ok(())
    }

    /// Complete the character carried from the previous piece with the
    /// first bytes of `input`, consuming them.
    fn finish_carried(&mut self, input: &mut &[u8]) -> Result<Carried, InvalidUtf8> {
        if self.partial_len == 0 {
            return Ok(Carried::Nothing);
        }
        let have = self.partial_len as usize;
        let take = (char_width(self.partial[0]) - have).min(input.len());
        self.partial[have..have + take].copy_from_slice(&input[..take]);
        self.partial_len += take as u8;
        *input = &input[take..];
        match from_utf8(&self.partial[..self.partial_len as usize]) {
            Ok(text) => {
                self.partial_len = 0;
                Ok(text
                    .chars()
                    .next()
                    .map_or(Carried::Nothing, Carried::Completed))
            }
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(_) => Ok(Carried::Unfinished), // input exhausted first
        }
    }

    /// Bytes of an unfinished character carried to the next piece.
    pub(crate) fn carried(&self) -> usize {
        self.partial_len as usize
    }

    /// The message ended: valid only if no character is left unfinished.
    pub(crate) fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.partial_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// Validate a whole text (with simdutf8, as [`Utf8Validator`] does).
pub(crate) fn validate(input: &[u8]) -> Result<&str, InvalidUtf8> {
    from_utf8(input).map_err(|_| InvalidUtf8)
}

/// How many bytes at the end of `input` are the start of a character that
/// the input cuts short (0 to 3); invalid bytes are left to the validator.
fn unfinished_tail(input: &[u8]) -> usize {
    for back in 1..=3.min(input.len()) {
        let byte = input[input.len() - back];
        if byte & 0xc0 != 0x80 {
            // A lead byte (or ASCII): is its character cut short?
            let cut = byte >= 0xc0 && char_width(byte) > back;
            return if cut { back } else { 0 };
        }
    }
    0
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

    /// Feed `pieces` with `push_valid`: the text, or the index of the piece
    /// (`pieces.len()` for the end) at which it failed.
    /// `data` cut at `cuts` (clamped to its length, in any order).
    fn split_at_cuts<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts {
            pieces.push(&data[start..cut]);
            start = cut;
        }
        pieces.push(&data[start..]);
        pieces
    }

    /// Cut `data` at `cuts` and check `push_valid` and
    /// `feed` piece by piece against std on the whole: same verdict, same
    /// text, failing on the same piece.
    fn check_pieces(data: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
        let pieces = split_at_cuts(data, cuts);
        let pushed = push_all(&pieces);
        match std::str::from_utf8(data) {
            Ok(text) => prop_assert_eq!(pushed.as_deref(), Ok(text)),
            Err(_) => prop_assert!(pushed.is_err()),
        }
        prop_assert_eq!(pushed.err(), feed_fails_at(&pieces));
        Ok(())
    }

    fn push_all(pieces: &[&[u8]]) -> Result<String, usize> {
        let mut v = Utf8Validator::new();
        let mut out = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            v.push_valid(piece, &mut out).map_err(|_| i)?;
            assert_accounted(&out, &v, pieces[..=i].iter().map(|p| p.len()).sum());
        }
        v.finish().map_err(|_| pieces.len())?;
        Ok(out)
    }

    /// What was consumed is either in `out` or carried.
    fn assert_accounted(out: &str, v: &Utf8Validator, fed: usize) {
        assert_eq!(out.len() + v.carried(), fed);
    }

    /// The index of the piece at which `feed` fails, as for `push_all`.
    fn feed_fails_at(pieces: &[&[u8]]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        for (i, piece) in pieces.iter().enumerate() {
            if v.feed(piece).is_err() {
                return Some(i);
            }
        }
        v.finish().err().map(|_| pieces.len())
    }

    #[test]
    fn push_valid_accumulates_split_characters() {
        let text = "κόσμε 𝄞 €";
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            assert_eq!(
                push_all(&[&bytes[..split], &bytes[split..]]).as_deref(),
                Ok(text)
            );
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(push_all(&one_by_one).as_deref(), Ok(text));
        // Fails fast, on the piece that makes the prefix impossible.
        assert_eq!(push_all(&[b"ok\xf4", b"\x90", b"x"]), Err(1));
        assert_eq!(push_all(&[b"ok\xed\xa0"]), Err(0));
        assert_eq!(push_all(&[b"ok\xf8"]), Err(0));
        assert_eq!(push_all(&[b"abc\xe2\x82"]), Err(1));
    }

    /// Valid text (up to 1,200 bytes, so simdutf8's 64-byte SIMD blocks are
    /// exercised, not only its hand-off to std under 64 bytes) with a few
    /// bytes overwritten and the end possibly cut off.
    fn damaged_text() -> impl Strategy<Value = Vec<u8>> {
        (
            "\\PC{0,300}",
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            proptest::option::of(any::<usize>()),
        )
            .prop_map(|(text, damage, cut)| {
                let mut bytes = text.into_bytes();
                if !bytes.is_empty() {
                    for (at, byte) in damage {
                        let len = bytes.len();
                        bytes[at % len] = byte;
                    }
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut % (bytes.len() + 1));
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// simdutf8's `compat` errors are std's: same `valid_up_to`, same
        /// `error_len` (invalid vs. cut off at the end), which `feed` and
        /// `push_valid` rely on.
        #[test]
        fn simdutf8_errors_are_std_errors(data in damaged_text()) {
            match (from_utf8(&data), std::str::from_utf8(&data)) {
                (Ok(simd), Ok(std)) => prop_assert_eq!(simd, std),
                (Err(simd), Err(std)) => {
                    prop_assert_eq!(simd.valid_up_to(), std.valid_up_to());
                    prop_assert_eq!(simd.error_len(), std.error_len());
                }
                (simd, std) => prop_assert!(false, "simdutf8 {:?}, std {:?}", simd, std),
            }
        }

        /// `feed` and `push_valid` on damaged text cut anywhere: the same
        /// verdict as std on the whole, failing on the same piece.
        #[test]
        fn damaged_text_in_pieces(data in damaged_text(),
                                  cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            let cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            check_pieces(&data, &cuts)?;
            prop_assert_eq!(validate(&data).ok(), std::str::from_utf8(&data).ok());
        }
    }

    proptest! {
        #[test]
        fn push_valid_agrees_with_std_and_feed(
            data in proptest::collection::vec(
                prop_oneof![any::<u8>(), 0x80u8..0xc0, 0xc2u8..0xf5], 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..6),
        ) {
            check_pieces(&data, &cuts)?;
        }

        #[test]
        fn push_valid_passes_valid_strings(text in "\\PC{0,300}", cuts in proptest::collection::vec(0usize..1200, 0..4)) {
            let bytes = text.as_bytes();
            prop_assert_eq!(push_all(&split_at_cuts(bytes, &cuts)), Ok(text.clone()));
        }

        #[test]
        fn agrees_with_std(data in proptest::collection::vec(any::<u8>(), 0..300),
                           cuts in proptest::collection::vec(0usize..300, 0..4)) {
            let pieces = split_at_cuts(&data, &cuts);
            prop_assert_eq!(feed_all(&pieces).is_ok(), std::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn valid_strings_pass_any_split(text in "\\PC{0,300}", cut in 0usize..1200) {
            let bytes = text.as_bytes();
            let cut = cut.min(bytes.len());
            prop_assert_eq!(feed_all(&[&bytes[..cut], &bytes[cut..]]), Ok(()));
        }
    }
}
