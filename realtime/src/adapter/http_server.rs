//! An HTTP-only listener on any [`Runtime`]: the accept loop, each
//! connection running the shared [`serve_connection`].

use std::{pin::pin, sync::Arc, time::Duration};

use futures_util::future::select;

use super::flag::Flag;
use crate::{
    http::{serve_connection, HttpApp},
    Runtime,
};

/// Serve `app` on `listener` (routes only: an upgrade request is an
/// ordinary request here) until this future is dropped, which also ends
/// every connection it serves.
pub async fn serve_http<R: Runtime>(listener: R::Listener, app: HttpApp) {
    let stop = Stopped(Arc::new(Flag::default()));
    loop {
        match R::accept(&listener).await {
            Ok((stream, _)) => {
                let (app, stop) = (app.clone(), stop.0.clone());
                R::spawn(async move {
                    let served = pin!(serve_connection(stream, R::Timer::default(), &app, false));
                    let _ = select(served, pin!(stop.wait())).await;
                });
            }
            // Out of descriptors or similar: back off instead of spinning.
            Err(_) => R::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Ends the connections of a [`serve_http`] when its future is dropped.
struct Stopped(Arc<Flag>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.set();
    }
}
