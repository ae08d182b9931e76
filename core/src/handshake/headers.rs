//! The header fields of a received head, kept compactly.

use super::trim_ows;

/// The header fields of a received head (and the text leading them, a
/// request's target): every name and value in one string, with the spans
/// of each. However many fields there are, two allocations: a handshake
/// parses its request once and may copy it for the application.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct HeaderList {
    text: String,
    /// Where the leading text ends.
    lead: usize,
    /// Each field: where its name starts, where its value starts (the
    /// name's end) and where its value ends.
    spans: Vec<[usize; 3]>,
}

impl std::fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderList")
            .field("lead", &self.lead())
            .field("fields", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

impl HeaderList {
    /// `lead`, then the fields of `raw` in order, values trimmed of
    /// optional whitespace; `bytes` is room for the fields' text (a guess:
    /// the string grows as needed). Fails with the name of the first field
    /// whose value is not printable UTF-8 text (control characters other
    /// than tab are refused).
    pub(crate) fn collect<N: AsRef<str>, V: AsRef<[u8]>>(
        lead: &str,
        raw: impl IntoIterator<Item = (N, V)>,
        bytes: usize,
    ) -> Result<Self, String> {
        let raw = raw.into_iter();
        let mut list = HeaderList {
            text: String::with_capacity(lead.len() + bytes),
            lead: lead.len(),
            spans: Vec::with_capacity(raw.size_hint().0),
        };
        list.text.push_str(lead);
        for (name, value) in raw {
            let name = name.as_ref();
            let value = std::str::from_utf8(value.as_ref())
                .ok()
                .filter(|value| !value.chars().any(|c| c.is_control() && c != '\t'))
                .ok_or_else(|| name.to_owned())?;
            let start = list.text.len();
            list.text.push_str(name);
            let middle = list.text.len();
            list.text.push_str(trim_ows(value));
            list.spans.push([start, middle, list.text.len()]);
        }
        Ok(list)
    }

    /// The text before the fields.
    pub(crate) fn lead(&self) -> &str {
        &self.text[..self.lead]
    }

    /// Field `index`'s value.
    pub(crate) fn value(&self, index: usize) -> Option<&str> {
        self.spans
            .get(index)
            .map(|&[_, start, end]| &self.text[start..end])
    }

    /// Every field as `(name, value)`, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|&[name, value, end]| (&self.text[name..value], &self.text[value..end]))
    }

    /// The indexes of the fields named `name` (case-insensitive), in order.
    pub(crate) fn positions<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.iter()
            .enumerate()
            .filter(move |(_, (field, _))| field.eq_ignore_ascii_case(name))
            .map(|(index, _)| index)
    }

    /// Every value of the fields named `name` (case-insensitive), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The first value of the fields named `name` (case-insensitive).
    pub(crate) fn get<'a>(&'a self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_order_and_trimmed_values() {
        let raw = [
            ("Host", &b" a.example "[..]),
            ("X-Two", b"1"),
            ("x-two", b"\t2"),
        ];
        let list = HeaderList::collect("/chat?x", raw, 0).unwrap();
        assert_eq!(list.lead(), "/chat?x");
        let fields: Vec<_> = list.iter().collect();
        assert_eq!(
            fields,
            [("Host", "a.example"), ("X-Two", "1"), ("x-two", "2")]
        );
        assert_eq!(list.values("x-TWO").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(list.positions("X-two").collect::<Vec<_>>(), [1, 2]);
        assert_eq!(list.get("host"), Some("a.example"));
        assert_eq!(list.value(2), Some("2"));
        assert_eq!(list.value(3), None);
        assert_eq!(list.get("missing"), None);
    }

    #[test]
    fn a_value_with_control_characters_names_its_field() {
        let raw = [("Ok", &b"fine"[..]), ("Bad", b"a\x01b")];
        assert_eq!(HeaderList::collect("", raw, 64), Err("Bad".to_owned()));
        let raw = [("Utf8", &b"\xff"[..])];
        assert_eq!(HeaderList::collect("", raw, 64), Err("Utf8".to_owned()));
    }
}
