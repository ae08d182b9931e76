//! A client connection that reconnects by itself, as a stream of
//! [`ClientEvent`]s.

use std::time::Instant;

use hubbub_core::ClientRequest;
use hubbub_core::{CloseCode, Closed, Message};
use hubbub_ws::{connect_with, ClientConfig, Error, IntoClientRequest, Runtime, RuntimeWebSocket};
use serde_json::Value;

use crate::{ClientBuilder, Envelope};

/// What a [`Client`] reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A data message.
    Message(Message),
    /// The connection dropped (how it ended, when known); reconnection
    /// attempts follow, with backoff.
    Disconnected(Option<Closed>),
    /// A new connection is open, after `attempts` attempts.
    Reconnected {
        /// Attempts this reconnection took (1 if the first one worked).
        attempts: u32,
    },
}

enum State<R: Runtime> {
    Connected(Box<RuntimeWebSocket<R>>),
    /// Waiting to make attempt `attempt` at `at`.
    Waiting {
        attempt: u32,
        at: Instant,
    },
    Done,
}

/// A client connection that reconnects by itself when
/// [`ClientConfig::reconnect`] is set, and tells the application each time
/// through [`ClientEvent`]s.
///
/// Any end of the connection not asked for with [`close`](Self::close)
/// (a dropped socket, a close frame from a restarting server, a keep-alive
/// ping left unanswered) leads to reconnection. `next_event` is cancel-safe: the state it waits in lives in
/// the client, and a dropped reconnection attempt is simply made again.
/// Adapters name it `Client` (e.g. `hubbub_tokio::Client`).
pub struct Client<R: Runtime> {
    request: ClientRequest,
    config: ClientConfig,
    state: State<R>,
    reconnects: u64,
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("request", &self.request)
            .field("connected", &matches!(self.state, State::Connected(_)))
            .field("reconnects", &self.reconnects)
            .finish()
    }
}

impl<R: Runtime> Client<R> {
    /// Build a client driven by callbacks (`on_open`, `on_message`,
    /// `on_typed_message`, `on_binary`, `on_close`, `on_error`), like the
    /// server's hub; see [`ClientBuilder`] (the adapter crates' docs have an
    /// example).
    /// `request` is a `ws://` URL or a [`ClientRequest`](hubbub_core::ClientRequest)
    /// (headers, subprotocols); an invalid one fails at
    /// [`connect`](ClientBuilder::connect).
    pub fn builder(request: impl IntoClientRequest) -> ClientBuilder<R> {
        ClientBuilder::new(request.into_client_request())
    }

    /// Connect to `request` (a `ws://` URL or a
    /// [`ClientRequest`](hubbub_core::ClientRequest)); every reconnection
    /// sends the same request. The first connection is not retried: its
    /// error is returned as is.
    pub async fn connect(
        request: impl IntoClientRequest,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        let request = request.into_client_request()?;
        let (ws, _) = connect_with::<R>(&request, &config).await?;
        Ok(Client {
            request,
            config,
            state: State::Connected(Box::new(ws)),
            reconnects: 0,
        })
    }

    /// The next message or reconnection event; `None` once the connection
    /// is over for good (closed by us, or dropped with reconnection off).
    /// When reconnection gives up, the last error comes first.
    pub async fn next_event(&mut self) -> Option<Result<ClientEvent, Error>> {
        loop {
            match &mut self.state {
                State::Done => return None,
                State::Connected(ws) => match ws.recv().await {
                    Some(Ok(message)) => return Some(Ok(ClientEvent::Message(message))),
                    Some(Err(error)) => return Some(Err(error)),
                    None => {
                        let closed = ws.closed().cloned();
                        let Some(policy) = &self.config.reconnect else {
                            self.state = State::Done;
                            return None;
                        };
                        self.state = State::Waiting {
                            attempt: 1,
                            at: R::now() + policy.delay(1),
                        };
                        return Some(Ok(ClientEvent::Disconnected(closed)));
                    }
                },
                State::Waiting { attempt, at } => {
                    let (attempt, at) = (*attempt, *at);
                    R::sleep(at.saturating_duration_since(R::now())).await;
                    match connect_with::<R>(&self.request, &self.config).await {
                        Ok((ws, _)) => {
                            self.state = State::Connected(Box::new(ws));
                            self.reconnects += 1;
                            return Some(Ok(ClientEvent::Reconnected { attempts: attempt }));
                        }
                        Err(error) => {
                            let policy = self.config.reconnect.clone().unwrap_or_default();
                            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                                self.state = State::Done;
                                return Some(Err(error));
                            }
                            let next = attempt + 1;
                            self.state = State::Waiting {
                                attempt: next,
                                at: R::now() + policy.delay(next),
                            };
                        }
                    }
                }
            }
        }
    }

    /// Send a message; fails with [`Error::Closed`] while disconnected.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        match &mut self.state {
            State::Connected(ws) => ws.send(message).await,
            _ => Err(Error::Closed),
        }
    }

    /// Send the envelope `{"type": event_type, "payload": payload}` as a
    /// text message; fails with [`Error::Closed`] while disconnected.
    pub async fn send_json(&mut self, event_type: &str, payload: Value) -> Result<(), Error> {
        self.send(Message::Text(Envelope::new(event_type, payload).to_json()))
            .await
    }

    /// Close the connection for good (no reconnection) and wait for the
    /// close handshake.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Option<Closed>, Error> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Connected(mut ws) => ws.close(code, reason).await.map(Some),
            _ => Ok(None),
        }
    }

    /// The current connection, if connected.
    pub fn websocket(&mut self) -> Option<&mut RuntimeWebSocket<R>> {
        match &mut self.state {
            State::Connected(ws) => Some(ws),
            _ => None,
        }
    }

    /// How many times the client has reconnected.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }
}
