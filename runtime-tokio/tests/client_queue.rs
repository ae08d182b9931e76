//! The callback client's bounded queue on tokio's single-threaded runtime,
//! where the client's task cannot run between two sends: exactly the first
//! ten are queued. (On a runtime whose tasks run on other threads, such as
//! smol's executor, the queue may drain between sends, so this exact count
//! is a property of this runtime; the cross-runtime suite covers the rest
//! of the client.)

use std::{sync::Arc, time::Duration};

use hubbub_tokio::{
    Client, CloseCode, Config, Hub, HubServer, OutboundLimit, SendError, SlowConsumer,
};
use tokio::{sync::mpsc, time::timeout};

/// Every wait is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_outbound_queue_is_bounded() {
    let (seen, mut seen_rx) = mpsc::unbounded_channel();
    let hub = Hub::builder()
        .on_message(move |_, text| {
            // Ignored: the test drops `seen_rx` once it has counted what it
            // checks; messages may still arrive after that.
            let _ = seen.send(text.to_owned());
        })
        .build();
    let server = HubServer::bind("127.0.0.1:0", hub, Arc::new(Config::default()))
        .await
        .unwrap()
        .start()
        .unwrap();
    let client = Client::builder(format!("ws://{}/", server.local_addr()))
        .outbound_limit(OutboundLimit {
            max_bytes: 1 << 20,
            max_messages: 10,
            policy: SlowConsumer::Drop,
        })
        .connect()
        .await
        .unwrap();
    // On this single-threaded runtime the client's task cannot run between
    // these calls: ten fit, the rest are refused.
    let results: Vec<_> = (0..25).map(|i| client.send_text(format!("{i}"))).collect();
    assert!(results[..10].iter().all(Result::is_ok));
    assert!(results[10..].iter().all(|r| *r == Err(SendError::Full)));
    for i in 0..10 {
        let got = timeout(LIMIT, seen_rx.recv()).await.unwrap();
        assert_eq!(got.as_deref(), Some(i.to_string().as_str()));
    }
    assert!(client.is_connected(), "Drop keeps the connection");
    client.close(CloseCode::NORMAL, "");
    timeout(LIMIT, client.closed()).await.unwrap();
    assert!(
        seen_rx.try_recv().is_err(),
        "nothing past the limit was sent"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
