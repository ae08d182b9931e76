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
    handshake::accept_key,
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
        if let Some(chosen) = &accept.protocol {
            if !self.protocols().contains(chosen) {
                return Err(UsageError::UnofferedProtocol(chosen.clone()));
            }
        }
        let extension = negotiate_extension(config, self.extensions());
        let mut headers = Vec::with_capacity(5 + accept.headers.len());
        if !self.extended_connect {
            headers.push(("Upgrade".into(), "websocket".into()));
            headers.push(("Connection".into(), "Upgrade".into()));
            headers.push((
                "Sec-WebSocket-Accept".into(),
                accept_key(self.key.as_bytes()),
            ));
        }
        if let Some(protocol) = &accept.protocol {
            headers.push(("Sec-WebSocket-Protocol".into(), protocol.clone()));
        }
        if let Some((value, _)) = &extension {
            headers.push(("Sec-WebSocket-Extensions".into(), value.clone()));
        }
        headers.extend(accept.headers);
        let negotiated = Negotiated {
            protocol: accept.protocol,
            extension,
        };
        Ok(Upgrade {
            headers,
            negotiated,
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
