//! Server-side negotiation of an accepted upgrade: the headers of the `101`
//! and what the connection needs to start open. [`Connection::accept`]
//! uses it, and so can an HTTP server that answers the upgrade itself
//! (hyper, axum), with [`Connection::upgraded`].
//!
//! [`Connection::accept`]: crate::Connection::accept
//! [`Connection::upgraded`]: crate::Connection::upgraded

use std::fmt;

use crate::{
    extension::{Extension, Offer},
    handshake::{accept_key_in, ACCEPT_LEN},
    Accept, Config, Request, UsageError,
};

/// What the opening handshake settled: the subprotocol and the extension,
/// with the extension's per-connection state (for permessage-deflate, the
/// agreed context takeover and window sizes). Server role; hand it to
/// [`Connection::upgraded`](crate::Connection::upgraded). The default is
/// neither subprotocol nor extension.
#[derive(Default)]
pub struct Negotiated {
    pub(crate) protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` value of the response, and the state.
    pub(crate) extension: Option<(String, Box<dyn Extension>)>,
}

impl Negotiated {
    /// The chosen subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The accepted extension, as sent in `Sec-WebSocket-Extensions`
    /// (e.g. `permessage-deflate; server_no_context_takeover`).
    pub fn extensions(&self) -> Option<&str> {
        self.extension.as_ref().map(|(value, _)| value.as_str())
    }
}

impl fmt::Debug for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Negotiated")
            .field("protocol", &self.protocol())
            .field("extensions", &self.extensions())
            .finish()
    }
}

/// An accepted upgrade, from [`Request::negotiate`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Upgrade {
    /// Every header of the `101 Switching Protocols` response, in order:
    /// `Upgrade`, `Connection`, `Sec-WebSocket-Accept` (none of the three
    /// for an extended CONNECT over HTTP/2, answered `200`), then
    /// `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when
    /// negotiated, then the [`Accept`]'s extra headers.
    pub headers: Vec<(String, String)>,
    /// What the connection starts with.
    pub negotiated: Negotiated,
}

impl Request {
    /// Accept this request: negotiate extensions in the order of
    /// [`Config::deflate`] then [`Config::extensions`] (the first that
    /// accepts one of the client's offers wins), and build the `101`'s
    /// headers. Pure: nothing is sent. Fails if `accept` chose a
    /// subprotocol the client did not offer.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use hubbub_core::{Accept, Config, Connection, Event, Request};
    ///
    /// let headers = [
    ///     ("host", "example.com"),
    ///     ("upgrade", "websocket"),
    ///     ("connection", "Upgrade"),
    ///     ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ///     ("sec-websocket-version", "13"),
    /// ];
    /// let request = Request::from_parts("/chat", headers).unwrap();
    /// let config = Arc::new(Config::default());
    /// let upgrade = request.negotiate(&config, Accept::new()).unwrap();
    /// assert!(upgrade.headers.contains(&(
    ///     "Sec-WebSocket-Accept".into(),
    ///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
    /// )));
    /// // ... the HTTP server sends the 101 with these headers, then:
    /// let mut conn = Connection::upgraded(config, upgrade.negotiated, Instant::now());
    /// assert!(matches!(conn.poll_event(), Some(Event::Open(_))));
    /// ```
    ///
    /// [`Config::deflate`]: crate::Config
    pub fn negotiate(&self, config: &Config, accept: Accept) -> Result<Upgrade, UsageError> {
        let mut headers = Vec::with_capacity(5 + accept.headers.len());
        let negotiated = self.negotiate_with(config, accept, |name, value| {
            headers.push((name.to_owned(), value.to_owned()));
        })?;
        Ok(Upgrade {
            headers,
            negotiated,
        })
    }

    /// [`negotiate`](Self::negotiate), handing the answer's headers to
    /// `emit` in order instead of collecting them (the `101` is written
    /// from them without a copy of each).
    pub(crate) fn negotiate_with(
        &self,
        config: &Config,
        accept: Accept,
        mut emit: impl FnMut(&str, &str),
    ) -> Result<Negotiated, UsageError> {
        if let Some(chosen) = &accept.protocol {
            if !self.protocols().contains(chosen) {
                return Err(UsageError::UnofferedProtocol(chosen.clone()));
            }
        }
        let extension = negotiate_extension(config, self.extensions());
        if !self.is_extended_connect() {
            emit("Upgrade", "websocket");
            emit("Connection", "Upgrade");
            let mut digest = [0; ACCEPT_LEN];
            emit(
                "Sec-WebSocket-Accept",
                accept_key_in(self.key().as_bytes(), &mut digest),
            );
        }
        if let Some(protocol) = &accept.protocol {
            emit("Sec-WebSocket-Protocol", protocol);
        }
        if let Some((value, _)) = &extension {
            emit("Sec-WebSocket-Extensions", value);
        }
        for (name, value) in &accept.headers {
            emit(name, value);
        }
        Ok(Negotiated {
            protocol: accept.protocol,
            extension,
        })
    }
}

/// The first configured extension that accepts the client's offers of it:
/// its response value and state.
fn negotiate_extension(config: &Config, offers: &[Offer]) -> Option<(String, Box<dyn Extension>)> {
    config.factories().find_map(|factory| {
        let offers: Vec<&Offer> = offers.iter().filter(|o| o.name == factory.name()).collect();
        if offers.is_empty() {
            return None;
        }
        let (response, state) = factory.accept_offer(&offers)?;
        Some((response.to_string(), state))
    })
}
