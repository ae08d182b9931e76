//! The application's callbacks, declared once for the hub (handle: a
//! [`Session`](crate::Session)) and the callback client (handle: a
//! [`ClientHandle`](crate::ClientHandle)), and the one raw-then-typed
//! dispatch of a message that serves both.

use bytes::Bytes;
use hubbub_core::{CloseCode, Message};

use crate::Envelope;

type OnOpen<H> = Box<dyn Fn(&H) + Send + Sync>;
type OnText<H> = Box<dyn Fn(&H, &str) + Send + Sync>;
type OnBinary<H> = Box<dyn Fn(&H, &Bytes) + Send + Sync>;
type OnTyped<H> = Box<dyn Fn(&H, &Envelope) + Send + Sync>;
type OnClose<H> = Box<dyn Fn(&H, CloseCode, &str) + Send + Sync>;
type OnError<H, E> = Box<dyn Fn(&H, &E) + Send + Sync>;

/// The callbacks on handle `H` with errors `E`; each is optional.
pub(crate) struct Callbacks<H, E> {
    pub(crate) open: Option<OnOpen<H>>,
    pub(crate) message: Option<OnText<H>>,
    pub(crate) binary: Option<OnBinary<H>>,
    pub(crate) typed: Option<OnTyped<H>>,
    pub(crate) close: Option<OnClose<H>>,
    pub(crate) error: Option<OnError<H, E>>,
}

impl<H, E> Default for Callbacks<H, E> {
    fn default() -> Self {
        Callbacks {
            open: None,
            message: None,
            binary: None,
            typed: None,
            close: None,
            error: None,
        }
    }
}

impl<H, E> Callbacks<H, E> {
    /// Hand `message` to the application: text to `on_message`, then, when
    /// it is an [`Envelope`], to `on_typed_message` (parsed only if that
    /// callback is set); binary to `on_binary`.
    pub(crate) fn message(&self, handle: &H, message: &Message) {
        match message {
            Message::Text(text) => {
                if let Some(on_message) = &self.message {
                    on_message(handle, text);
                }
                if let Some(on_typed) = &self.typed {
                    if let Some(envelope) = Envelope::parse(text) {
                        on_typed(handle, &envelope);
                    }
                }
            }
            Message::Binary(data) => {
                if let Some(on_binary) = &self.binary {
                    on_binary(handle, data);
                }
            }
            _ => {}
        }
    }

    /// Call `on_close`.
    pub(crate) fn close(&self, handle: &H, code: CloseCode, reason: &str) {
        if let Some(on_close) = &self.close {
            on_close(handle, code, reason);
        }
    }

    /// Call `on_error`.
    pub(crate) fn error(&self, handle: &H, error: &E) {
        if let Some(on_error) = &self.error {
            on_error(handle, error);
        }
    }
}

/// The builder methods that set [`Callbacks`], written once for
/// `HubBuilder` and `ClientBuilder` (each keeps its callbacks in a field
/// `callbacks`). `$open`, `$close` and `$error` are the documentation that
/// differs between the two.
macro_rules! callback_setters {
    ($handle:ty, $error:ty, open: $open:literal, close: $close:literal, error: $error_doc:literal) => {
        #[doc = $open]
        pub fn on_open(mut self, f: impl Fn(&$handle) + Send + Sync + 'static) -> Self {
            self.callbacks.open = Some(Box::new(f));
            self
        }

        /// Called for every text message (before `on_typed_message`).
        pub fn on_message(mut self, f: impl Fn(&$handle, &str) + Send + Sync + 'static) -> Self {
            self.callbacks.message = Some(Box::new(f));
            self
        }

        /// Called for every binary message.
        pub fn on_binary(
            mut self,
            f: impl Fn(&$handle, &::bytes::Bytes) + Send + Sync + 'static,
        ) -> Self {
            self.callbacks.binary = Some(Box::new(f));
            self
        }

        /// Called, after `on_message`, for text that is an
        /// [`Envelope`](crate::Envelope) (`{"type": ..., "payload": ...}`,
        /// with its optional `id`, `room`, `kind` and `ts`), parsed. Other
        /// text reaches `on_message` only.
        pub fn on_typed_message(
            mut self,
            f: impl Fn(&$handle, &crate::Envelope) + Send + Sync + 'static,
        ) -> Self {
            self.callbacks.typed = Some(Box::new(f));
            self
        }

        #[doc = $close]
        pub fn on_close(
            mut self,
            f: impl Fn(&$handle, ::hubbub_core::CloseCode, &str) + Send + Sync + 'static,
        ) -> Self {
            self.callbacks.close = Some(Box::new(f));
            self
        }

        #[doc = $error_doc]
        pub fn on_error(mut self, f: impl Fn(&$handle, &$error) + Send + Sync + 'static) -> Self {
            self.callbacks.error = Some(Box::new(f));
            self
        }
    };
}

pub(crate) use callback_setters;
