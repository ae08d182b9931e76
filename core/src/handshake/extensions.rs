//! `Sec-WebSocket-Extensions` values (RFC 6455 §9.1): parsing and formatting.
//!
//! ```text
//! extension-list  = 1#extension
//! extension       = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```

use super::{is_tchar, is_token};
use crate::extension::Offer;

/// Parse one `Sec-WebSocket-Extensions` header value into its offers, in
/// order. Extension and parameter names are lower-cased; quoted values are
/// unquoted and unescaped (and, as §9.1 requires, must then be tokens).
/// Whitespace around separators and empty list elements are tolerated. When
/// the header appears several times, parse each value and concatenate.
///
/// ```
/// let offers = hubbub_core::handshake::parse_extensions(
///     r#"permessage-deflate; client_max_window_bits="10", x-foo"#,
/// ).unwrap();
/// assert_eq!(offers[0].param("client_max_window_bits"), Some(Some("10")));
/// assert_eq!(offers[1].name, "x-foo");
/// ```
pub fn parse_extensions(value: &str) -> Result<Vec<Offer>, String> {
    let mut parser = Parser { src: value, pos: 0 };
    let mut offers = Vec::new();
    loop {
        parser.skip_whitespace();
        match parser.peek() {
            None => return Ok(offers),
            Some(b',') => parser.pos += 1,
            Some(_) => {
                offers.push(parser.offer()?);
                parser.skip_whitespace();
                if parser.peek().is_some() && !parser.eat(b',') {
                    return Err(parser.unexpected("',' or ';'"));
                }
            }
        }
    }
}

/// Format offers as a `Sec-WebSocket-Extensions` value, joined by `", "`.
/// Parameter values that are not tokens are written as quoted strings.
pub fn format_extensions(offers: &[Offer]) -> String {
    let mut out = String::new();
    for (i, offer) in offers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&offer.name);
        for (name, value) in &offer.params {
            out.push_str("; ");
            out.push_str(name);
            match value {
                Some(value) if is_token(value) => {
                    out.push('=');
                    out.push_str(value);
                }
                Some(value) => {
                    out.push_str("=\"");
                    for c in value.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
                None => {}
            }
        }
    }
    out
}

/// A cursor over a header value. It only ever steps over ASCII bytes, so
/// `pos` is always a char boundary.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// `name *( ";" param )`
    fn offer(&mut self) -> Result<Offer, String> {
        let name = self.token("an extension name")?.to_ascii_lowercase();
        let mut params = Vec::new();
        loop {
            self.skip_whitespace();
            if !self.eat(b';') {
                return Ok(Offer { name, params });
            }
            self.skip_whitespace();
            let key = self.token("a parameter name")?.to_ascii_lowercase();
            self.skip_whitespace();
            let value = if self.eat(b'=') {
                self.skip_whitespace();
                Some(self.value()?)
            } else {
                None
            };
            params.push((key, value));
        }
    }

    /// `token | quoted-string`; the unquoted value must be a token.
    fn value(&mut self) -> Result<String, String> {
        if !self.eat(b'"') {
            return self.token("a parameter value").map(str::to_owned);
        }
        let mut value = String::new();
        loop {
            let escaped = self.eat(b'\\');
            match self.peek() {
                Some(b'"') if !escaped => break,
                Some(b) if is_tchar(b) => {
                    value.push(char::from(b));
                    self.pos += 1;
                }
                Some(_) => return Err(self.unexpected("a token character in the quoted value")),
                None => return Err("unterminated quoted string".to_owned()),
            }
        }
        self.pos += 1;
        if value.is_empty() {
            return Err("empty quoted parameter value".to_owned());
        }
        Ok(value)
    }

    /// One or more token characters.
    fn token(&mut self, what: &str) -> Result<&'a str, String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected(what));
        }
        Ok(&self.src[start..self.pos])
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.src[self.pos..].chars().next() {
            Some(c) => format!("expected {expected} at byte {}, found {c:?}", self.pos),
            None => format!("expected {expected} at the end"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offer(name: &str, params: &[(&str, Option<&str>)]) -> Offer {
        Offer {
            name: name.to_owned(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
        }
    }

    // RFC 6455 §9.1: extension-list grammar.
    #[test]
    fn parses_names_and_params() {
        assert_eq!(
            parse_extensions("permessage-deflate; client_max_window_bits, x-foo; a=1; b").unwrap(),
            [
                offer("permessage-deflate", &[("client_max_window_bits", None)]),
                offer("x-foo", &[("a", Some("1")), ("b", None)]),
            ]
        );
    }

    #[test]
    fn lower_cases_names_but_not_values() {
        assert_eq!(
            parse_extensions("PerMessage-Deflate; Server_No_Context_Takeover; X=AbC").unwrap(),
            [offer(
                "permessage-deflate",
                &[("server_no_context_takeover", None), ("x", Some("AbC"))]
            )]
        );
    }

    #[test]
    fn tolerates_whitespace_and_empty_elements() {
        assert_eq!(
            parse_extensions(" ,\ta ;  p = 1 ,, b\t; q ,").unwrap(),
            [offer("a", &[("p", Some("1"))]), offer("b", &[("q", None)])]
        );
        assert_eq!(parse_extensions("").unwrap(), []);
        assert_eq!(parse_extensions(" , ").unwrap(), []);
    }

    // §9.1: quoted-string values are unescaped and must then be tokens.
    #[test]
    fn unquotes_quoted_values() {
        assert_eq!(
            parse_extensions(r#"a; p="10"; q="x\yz", b; r = "7""#).unwrap(),
            [
                offer("a", &[("p", Some("10")), ("q", Some("xyz"))]),
                offer("b", &[("r", Some("7"))]),
            ]
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "a;",
            "a; =1",
            "a; p=",
            "a b",
            "a; p=\"unterminated",
            "a; p=\"two words\"",
            "a; p=\"\"",
            "a; p=\"\\\"\"",
            "a; p=1 2",
            ";a",
            "a=1",
            "é",
        ] {
            assert!(parse_extensions(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_extensions("a b").unwrap_err(),
            "expected ',' or ';' at byte 2, found 'b'"
        );
    }

    #[test]
    fn formats_with_quoting_when_needed() {
        let offers = [
            offer("permessage-deflate", &[("client_max_window_bits", None)]),
            offer("x", &[("a", Some("1")), ("b", Some("two \"words\""))]),
        ];
        assert_eq!(
            format_extensions(&offers),
            r#"permessage-deflate; client_max_window_bits, x; a=1; b="two \"words\"""#
        );
        assert_eq!(format_extensions(&[]), "");
    }

    #[test]
    fn format_then_parse_round_trips_tokens() {
        let offers = [
            offer("a", &[("p", Some("10")), ("q", None)]),
            offer("b", &[]),
        ];
        assert_eq!(
            parse_extensions(&format_extensions(&offers)).unwrap(),
            offers
        );
    }

    proptest! {
        #[test]
        fn never_panics(value in any::<String>()) {
            let _ = parse_extensions(&value);
        }

        #[test]
        fn header_like_input_round_trips(value in "[a-z;=,\" \\\\\t]{0,40}") {
            if let Ok(offers) = parse_extensions(&value) {
                prop_assert_eq!(parse_extensions(&format_extensions(&offers)).unwrap(), offers);
            }
        }
    }
}
