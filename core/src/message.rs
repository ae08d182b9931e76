//! Whole WebSocket messages as the application sees them.

use bytes::Bytes;

/// A complete data message, reassembled from its fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message: always valid UTF-8.
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    ///
    /// ```
    /// use hubbub_core::Message;
    /// let message = Message::text("hello");
    /// assert!(message.is_text());
    /// assert_eq!(message.as_text(), Some("hello"));
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    ///
    /// ```
    /// use hubbub_core::Message;
    /// let message = Message::binary(vec![1, 2, 3]);
    /// assert!(message.is_binary());
    /// assert_eq!(message.as_bytes(), [1, 2, 3]);
    /// ```
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }

    /// The text of a text message; `None` for a binary one.
    ///
    /// ```
    /// use hubbub_core::Message;
    /// assert_eq!(Message::text("hi").as_text(), Some("hi"));
    /// assert_eq!(Message::binary(&b"hi"[..]).as_text(), None);
    /// ```
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
        }
    }

    /// The text of a text message, without copying. A binary message is
    /// given back unchanged as the error, even when its bytes are valid
    /// UTF-8 (unlike tungstenite's `into_text`): the kind is what the peer
    /// sent.
    ///
    /// ```
    /// use hubbub_core::Message;
    /// assert_eq!(Message::text("hi").into_text(), Ok("hi".to_owned()));
    /// let binary = Message::binary(&b"hi"[..]);
    /// assert_eq!(binary.clone().into_text(), Err(binary));
    /// ```
    pub fn into_text(self) -> Result<String, Self> {
        match self {
            Message::Text(text) => Ok(text),
            binary => Err(binary),
        }
    }

    /// The payload of either kind, without copying.
    ///
    /// ```
    /// use hubbub_core::Message;
    /// assert_eq!(Message::text("hi").into_data(), &b"hi"[..]);
    /// assert_eq!(Message::binary(vec![0xff]).into_data(), &[0xff][..]);
    /// ```
    pub fn into_data(self) -> Bytes {
        match self {
            Message::Text(text) => Bytes::from(text),
            Message::Binary(data) => data,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_owned())
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data.into())
    }
}
