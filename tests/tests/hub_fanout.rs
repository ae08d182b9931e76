//! Broadcast to thousands of sessions: one publisher's messages, forwarded
//! by the hub to every other session, reach each one exactly once and in
//! order.

mod common;

use std::{sync::Arc, time::Duration};

use common::bounded;
use hubbub_tests::prelude::*;
use tokio::task::JoinSet;

/// Subscribers wanted; each costs two descriptors in this process.
const SUBSCRIBERS: usize = 2000;
/// Messages the publisher sends.
const MESSAGES: usize = 100;

/// The soft limit on open files (Linux; `None` elsewhere).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn broadcast_reaches_thousands_once_and_in_order<R: Rt>() {
    let subscribers = match open_files_limit() {
        Some(limit) if limit < 2 * SUBSCRIBERS + 200 => {
            let n = limit.saturating_sub(200) / 2;
            assert!(
                n >= 500,
                "RLIMIT_NOFILE {limit} is too low for this test: raise `ulimit -n`"
            );
            eprintln!("RLIMIT_NOFILE {limit}: testing {n} subscribers instead of {SUBSCRIBERS}");
            n
        }
        _ => SUBSCRIBERS,
    };
    let hub = Hub::builder()
        .on_message(|session, text| {
            // The `echo --broadcast` pattern: to everyone but the sender.
            session.hub().unwrap().broadcast_text(text, Some(session));
        })
        .build();
    let server = HubServer::<R>::bind("127.0.0.1:0", hub.clone(), Arc::new(Config::default()))
        .await
        .unwrap()
        .start()
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());

    // Subscribers (our own client), connected a few hundred at a time so
    // the listen backlog never overflows.
    let mut readers = JoinSet::new();
    for batch in 0..subscribers.div_ceil(250) {
        let mut connecting = JoinSet::new();
        for _ in (batch * 250)..subscribers.min((batch + 1) * 250) {
            let url = url.clone();
            connecting.spawn(async move { connect::<R>(&url).await.unwrap() });
        }
        while let Some(ws) = connecting.join_next().await {
            let mut ws = ws.unwrap();
            readers.spawn(async move {
                for i in 0..MESSAGES {
                    match ws.recv().await {
                        Some(Ok(Message::Text(text))) => {
                            assert_eq!(text, format!("message {i}"), "once, in order")
                        }
                        other => panic!("message {i}: {other:?}"),
                    }
                }
                match ws.recv().await {
                    Some(Ok(Message::Text(text))) if text == "end" => {}
                    other => panic!("expected the end, got {other:?}"),
                }
                ws.close(CloseCode::NORMAL, "").await.unwrap();
            });
        }
    }
    let mut publisher = connect::<R>(&url).await.unwrap();
    bounded("every session registered", async {
        while hub.session_count() < subscribers + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    for i in 0..MESSAGES {
        publisher.feed(format!("message {i}")).await.unwrap();
    }
    publisher.send("end").await.unwrap();
    let received = bounded("every subscriber got everything", async {
        let mut done = 0;
        while let Some(reader) = readers.join_next().await {
            reader.unwrap();
            done += 1;
        }
        done
    })
    .await;
    assert_eq!(received, subscribers);
    assert_eq!(
        hub.metrics().broadcast_deliveries.get(),
        ((MESSAGES + 1) * subscribers) as u64
    );
    assert_eq!(hub.metrics().messages_in.get(), (MESSAGES + 1) as u64);
    bounded("publisher close", publisher.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    bounded("every session ended", async {
        while hub.session_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    server.shutdown(Duration::from_secs(2)).await;
    assert_eq!(
        hub.metrics().closes_by_code().get("1000"),
        Some(&(subscribers as u64 + 1))
    );
}

hubbub_tests::cross_runtime!(broadcast_reaches_thousands_once_and_in_order,);
