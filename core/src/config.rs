//! Connection configuration.

use std::{fmt, sync::Arc, time::Duration};

#[cfg(feature = "deflate")]
use crate::deflate::DeflateConfig;
use crate::{budget::ReceiveBudget, extension::ExtensionFactory};

/// Limits, timers and negotiated extensions for a [`Connection`](crate::Connection).
///
/// Shared behind an `Arc` so that thousands of connections cost one copy.
/// Build it with struct-update syntax:
///
/// ```
/// use std::time::Duration;
/// let config = hubbub_core::Config {
///     max_message_size: 16 << 20,
///     idle_timeout: Some(Duration::from_secs(30)),
///     ..Default::default()
/// };
/// ```
#[derive(Clone)]
pub struct Config {
    /// Largest message (summed over its fragments, after decompression)
    /// accepted from the peer; a larger one fails the connection with 1009,
    /// whose reason names this limit and setting. It bounds what one
    /// connection may make us buffer. It does not limit what we send: the
    /// peer has its own limit, which the handshake does not tell.
    ///
    /// Default 1 MiB (`1 << 20`), as Python's `websockets`: room for
    /// realtime payloads (chat, game state, JSON documents) while bounding
    /// each connection's receive buffer (tungstenite defaults to 64 MiB,
    /// uWebSockets to 16 KiB). Raise it for bulk transfers, on both ends.
    pub max_message_size: usize,
    /// The memory that the unfinished messages of every connection using
    /// this `Config` (its clones share it) may hold together; a message
    /// growing past it fails its connection with 1009. `None`: no bound
    /// beyond `max_message_size` per connection. Default 256 MiB, shared
    /// by the connections of one `Config`.
    pub receive_budget: Option<Arc<ReceiveBudget>>,
    /// Largest single frame payload accepted; `None` means the message
    /// limit. Default `None`.
    pub max_frame_size: Option<usize>,
    /// Largest HTTP head (request or response line plus headers); a larger
    /// request is answered 431. Default 64 KiB.
    pub max_head_size: usize,
    /// Answer pings with pongs automatically. Default `true`.
    pub auto_pong: bool,
    /// Outgoing data messages larger than this are split into fragments of
    /// this size; `None` sends every message as one frame. Default `None`.
    pub fragment_size: Option<usize>,
    /// Time allowed for the opening handshake. Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// Close the connection (1001) after this long without inbound bytes.
    /// Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Send a keep-alive ping after this long without inbound bytes.
    /// Default 30 s.
    pub ping_interval: Option<Duration>,
    /// After a keep-alive ping, close (1001) if nothing arrives within this.
    /// Default 20 s.
    pub pong_timeout: Option<Duration>,
    /// A message must arrive whole within this long of its first byte:
    /// every frame of it, fragments and the control frames between them
    /// included (they neither pause nor restart the clock); so must a
    /// control frame outside a message. Otherwise the connection fails
    /// with 1008 (policy violation), the reason naming this setting. Inbound
    /// bytes reset the idle and keep-alive timers, so without this a peer
    /// dripping one frame a byte at a time would hold its connection, and
    /// the buffer of its unfinished message, forever.
    ///
    /// Default 30 s: a 1 MiB message (the default `max_message_size`) needs
    /// about 280 kbit/s. Raise it with `max_message_size` for bulk transfers
    /// over slow links; `None` turns it off.
    pub message_timeout: Option<Duration>,
    /// After sending a close frame, wait this long for the peer's close;
    /// once closed, wait as long for the peer's EOF. Default 5 s.
    pub close_timeout: Duration,
    /// permessage-deflate (RFC 7692), negotiated before
    /// [`extensions`](Self::extensions) when set. Default `None` (off).
    /// Only with the `deflate` feature (on by default).
    #[cfg(feature = "deflate")]
    pub deflate: Option<DeflateConfig>,
    /// Other extensions to negotiate, in order of preference. Default none.
    pub extensions: Vec<Arc<dyn ExtensionFactory>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 1 << 20,
            receive_budget: Some(Arc::new(ReceiveBudget::new(256 << 20))),
            max_frame_size: None,
            max_head_size: 64 << 10,
            auto_pong: true,
            fragment_size: None,
            handshake_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(60)),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Some(Duration::from_secs(20)),
            message_timeout: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(5),
            #[cfg(feature = "deflate")]
            deflate: None,
            extensions: Vec::new(),
        }
    }
}

impl Config {
    /// The effective per-frame payload limit.
    pub fn frame_limit(&self) -> usize {
        self.max_frame_size
            .unwrap_or(self.max_message_size)
            .min(self.max_message_size)
    }

    /// Every extension to negotiate, in order of preference.
    pub(crate) fn factories(&self) -> impl Iterator<Item = &dyn ExtensionFactory> {
        #[cfg(feature = "deflate")]
        let deflate = self.deflate.iter().map(|d| d as &dyn ExtensionFactory);
        #[cfg(not(feature = "deflate"))]
        let deflate = std::iter::empty();
        deflate.chain(self.extensions.iter().map(|e| &**e))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Config");
        f.field("max_message_size", &self.max_message_size)
            .field("receive_budget", &self.receive_budget)
            .field("max_frame_size", &self.max_frame_size)
            .field("max_head_size", &self.max_head_size)
            .field("auto_pong", &self.auto_pong)
            .field("fragment_size", &self.fragment_size)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field("message_timeout", &self.message_timeout)
            .field("close_timeout", &self.close_timeout);
        #[cfg(feature = "deflate")]
        f.field("deflate", &self.deflate);
        f.field(
            "extensions",
            &self.extensions.iter().map(|e| e.name()).collect::<Vec<_>>(),
        )
        .finish()
    }
}
