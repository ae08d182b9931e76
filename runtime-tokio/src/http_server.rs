//! HTTP on tokio: the accept loop of an HTTP-only listener. Each
//! connection runs the shared [`serve_connection`] of hubbub-realtime.

use std::time::Duration;

use hubbub_realtime::http::{serve_connection, HttpApp};
use tokio::{net::TcpListener, task::JoinSet};

use crate::rt::{Io, TokioTimer};

/// Serve `app` on `listener` (routes only: an upgrade request is an
/// ordinary request here) until this future is dropped, which also ends
/// every connection it serves.
pub async fn serve_http(listener: TcpListener, app: HttpApp) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    connections.spawn(async move {
                        serve_connection(Io(stream), TokioTimer::default(), &app, false).await;
                    });
                }
                // Out of descriptors or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
