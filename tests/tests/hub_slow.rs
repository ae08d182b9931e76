//! A consumer that stops reading while the server broadcasts a lot: the
//! slow-consumer policy fires and is counted, its queue never exceeds its
//! byte limit, and the other sessions receive everything, in order.

mod common;

use std::{sync::Arc, time::Duration};

use common::{bounded, raw::Raw};
use hubbub_tests::prelude::*;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

/// Broadcasts of 16 KiB: 600 of them (9.6 MiB) overflow the kernel's
/// socket buffers, the core's 64 KiB and the queue's 256 KiB many times.
const TOTAL: u32 = 600;
const SIZE: usize = 16 << 10;
const MAX_BYTES: usize = 256 << 10;
/// The publisher stays at most this many messages ahead of the readers.
const WINDOW: u32 = 8;
const HEALTHY: usize = 3;

fn message(seq: u32) -> Vec<u8> {
    let mut data = vec![(seq % 251) as u8; SIZE];
    data[..4].copy_from_slice(&seq.to_be_bytes());
    data
}

fn seq_of(data: &[u8]) -> u32 {
    let seq = u32::from_be_bytes(data[..4].try_into().unwrap());
    assert!(data.len() == SIZE && data[4..].iter().all(|b| *b == (seq % 251) as u8));
    seq
}

#[derive(Debug)]
enum Seen {
    Open(SessionId),
    Error(SessionId, SessionError),
    Close(SessionId, u16),
}

async fn start<R: Rt>(
    policy: SlowConsumer,
    close_timeout: Duration,
) -> (HubHandle, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (t1, t2, t3) = (tx.clone(), tx.clone(), tx);
    let hub = Hub::builder()
        .outbound_limit(OutboundLimit {
            max_bytes: MAX_BYTES,
            max_messages: 1024,
            policy,
        })
        .on_open(move |s| t1.send(Seen::Open(s.id())).unwrap())
        // Ignored below: sessions still fail and close at the server's
        // shutdown, after the test has stopped reading (and dropped `rx`).
        .on_error(move |s, e| {
            let _ = t2.send(Seen::Error(s.id(), e.clone()));
        })
        .on_close(move |s, code, _| {
            let _ = t3.send(Seen::Close(s.id(), code.0));
        })
        .build();
    let config = Config {
        close_timeout,
        ..Config::default()
    };
    let server = HubServer::<R>::bind("127.0.0.1:0", hub, Arc::new(config))
        .await
        .unwrap()
        .start()
        .unwrap();
    (server, rx)
}

async fn opened(rx: &mut mpsc::UnboundedReceiver<Seen>) -> SessionId {
    match bounded("open", rx.recv()).await {
        Some(Seen::Open(id)) => id,
        other => panic!("{other:?}"),
    }
}

/// A reader (our own client) that checks every broadcast arrives once and
/// in order, reports its progress, and returns how many it got when the
/// `end` marker comes.
fn healthy<R: Rt>(server: &HubHandle) -> (JoinHandle<u32>, watch::Receiver<u32>) {
    let url = format!("ws://{}/", server.local_addr());
    let (progress, watched) = watch::channel(0);
    let reader = tokio::spawn(async move {
        let mut ws = connect::<R>(&url).await.unwrap();
        ws.send("ready").await.unwrap();
        let mut next = 0;
        loop {
            match ws.recv().await {
                Some(Ok(Message::Binary(data))) => {
                    assert_eq!(seq_of(&data), next, "in order, none lost or repeated");
                    next += 1;
                    progress.send_replace(next);
                }
                Some(Ok(Message::Text(text))) if text == "end" => break,
                other => panic!("healthy reader got {other:?}"),
            }
        }
        // Ignored: the server may already be shutting down; what this
        // reader claims is the count of in-order messages, returned.
        let _ = ws.close(CloseCode::NORMAL, "").await;
        next
    });
    (reader, watched)
}

struct Run {
    server: HubHandle,
    rx: mpsc::UnboundedReceiver<Seen>,
    slow: Raw,
    slow_id: SessionId,
    readers: Vec<(JoinHandle<u32>, watch::Receiver<u32>)>,
    max_queued: usize,
}

/// Connect a slow consumer (tiny receive buffer, never reads) and healthy
/// readers, then broadcast `TOTAL` messages, paced by the healthy readers
/// only, checking the slow session's queue after every broadcast.
async fn broadcast_past_a_slow_consumer<R: Rt>(
    policy: SlowConsumer,
    close_timeout: Duration,
) -> Run {
    let (server, mut rx) = start::<R>(policy, close_timeout).await;
    let slow = Raw::connect_with(server.local_addr(), "/", Some(4096)).await;
    let slow_id = opened(&mut rx).await;
    let session = server.hub().session(slow_id).unwrap();
    let mut readers = Vec::new();
    for _ in 0..HEALTHY {
        readers.push(healthy::<R>(&server));
        opened(&mut rx).await;
    }
    let hub = server.hub().clone();
    let mut max_queued = 0;
    for seq in 0..TOTAL {
        for (_, progress) in &mut readers {
            let wait = progress.wait_for(|got| got + WINDOW > seq);
            bounded("healthy readers keep up", wait).await.unwrap();
        }
        hub.broadcast_binary(&message(seq), None);
        let queued = session.queued_bytes();
        assert!(queued <= MAX_BYTES, "queue over its limit: {queued}");
        max_queued = max_queued.max(queued);
    }
    Run {
        server,
        rx,
        slow,
        slow_id,
        readers,
        max_queued,
    }
}

/// Tell the healthy readers to stop, and check they got everything.
async fn finish_healthy(run: &mut Run) {
    let hub = run.server.hub();
    let slow = hub.session(run.slow_id);
    hub.broadcast_text("end", slow.as_ref());
    for (reader, _) in run.readers.drain(..) {
        assert_eq!(bounded("reader", reader).await.unwrap(), TOTAL);
    }
}

async fn close_policy_closes_the_slow_consumer_with_its_code<R: Rt>() {
    // Room for the slow reader to catch up before the close handshake times
    // out.
    let policy = SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER);
    let mut run = broadcast_past_a_slow_consumer::<R>(policy, Duration::from_secs(15)).await;
    let hub = run.server.hub().clone();
    assert_eq!(hub.metrics().slow_consumer_closes.get(), 1);
    assert_eq!(hub.metrics().slow_consumer_drops.get(), 0);
    assert!(
        run.max_queued > MAX_BYTES - SIZE,
        "the queue filled: {}",
        run.max_queued
    );
    let session = hub.session(run.slow_id).expect("still closing");
    assert!(!session.is_open());
    assert_eq!(session.queued_bytes(), 0, "the queue was released");
    match bounded("on_error", run.rx.recv()).await {
        Some(Seen::Error(id, SessionError::SlowConsumer)) => assert_eq!(id, run.slow_id),
        other => panic!("{other:?}"),
    }
    finish_healthy(&mut run).await;

    // The slow reader wakes up: an unbroken prefix of the broadcasts, then
    // the close frame with 1013.
    let mut next = 0;
    let code = loop {
        let frame = bounded("slow reader", run.slow.frame())
            .await
            .expect("a frame");
        match frame.opcode {
            common::raw::BINARY => {
                assert_eq!(seq_of(&frame.payload), next);
                next += 1;
            }
            common::raw::CLOSE => break frame.close_code(),
            other => panic!("opcode {other}"),
        }
    };
    assert_eq!(code, 1013);
    assert!(next < TOTAL, "the queue's rest was dropped");
    run.slow.send_close(1013, "").await;
    assert_eq!(bounded("EOF", run.slow.frame()).await, None);
    loop {
        match bounded("on_close", run.rx.recv()).await {
            Some(Seen::Close(id, code)) if id == run.slow_id => {
                assert_eq!(code, 1013);
                break;
            }
            Some(Seen::Close(..)) => {} // a healthy reader's
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(hub.metrics().closes_by_code().get("1013"), Some(&1));
    run.server.shutdown(Duration::from_secs(2)).await;
    assert_eq!(hub.metrics().slow_consumer_closes.get(), 1);
}

async fn drop_policy_drops_and_counts_and_the_session_stays_open<R: Rt>() {
    let mut run =
        broadcast_past_a_slow_consumer::<R>(SlowConsumer::Drop, Duration::from_secs(5)).await;
    let hub = run.server.hub().clone();
    let drops = hub.metrics().slow_consumer_drops.get();
    assert!(drops > 0 && drops < TOTAL as u64, "{drops} dropped");
    assert_eq!(hub.metrics().slow_consumer_closes.get(), 0);
    assert!(
        run.max_queued > MAX_BYTES - SIZE,
        "the queue filled: {}",
        run.max_queued
    );
    finish_healthy(&mut run).await;
    let session = hub.session(run.slow_id).unwrap();
    assert!(session.is_open());
    assert!(
        !matches!(run.rx.try_recv(), Ok(Seen::Error(..))),
        "Drop reports no error"
    );

    // The slow reader catches up: what it gets is in order, and with the
    // dropped ones makes up every broadcast exactly once.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            let frame = run.slow.frame().await.expect("a frame");
            match frame.opcode {
                common::raw::BINARY => got.push(seq_of(&frame.payload)),
                common::raw::TEXT if frame.payload == b"done" => break,
                other => panic!("opcode {other}"),
            }
        }
        (got, run.slow)
    });
    // `done` goes out once the queue has room (it would be dropped too).
    bounded("the slow queue drains", async {
        while session.queued_bytes() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    session.send_text("done").unwrap();
    let (got, mut slow) = bounded("slow reader", reader).await.unwrap();
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, no repeats");
    assert_eq!(got.len() as u64 + drops, TOTAL as u64);
    assert_eq!(got[0], 0, "the first ones fit");
    slow.send_close(1000, "").await;
    assert_eq!(bounded("close echo", slow.close_code()).await, Some(1000));
    run.server.shutdown(Duration::from_secs(2)).await;
    assert_eq!(hub.metrics().slow_consumer_drops.get(), drops);
}

async fn close_policy_ends_a_consumer_that_never_reads_again<R: Rt>() {
    // The close cannot wait behind data the consumer will never read: it is
    // handed to the core at once, the close handshake times out, and the
    // session is released (1006: the peer never answered).
    let policy = SlowConsumer::Close(CloseCode::POLICY_VIOLATION);
    let mut run = broadcast_past_a_slow_consumer::<R>(policy, Duration::from_millis(500)).await;
    let hub = run.server.hub().clone();
    assert_eq!(hub.metrics().slow_consumer_closes.get(), 1);
    finish_healthy(&mut run).await;
    loop {
        match bounded("the slow session ends", run.rx.recv()).await {
            Some(Seen::Close(id, code)) if id == run.slow_id => {
                assert_eq!(code, 1006);
                break;
            }
            Some(_) => {}
            None => panic!("hub gone"),
        }
    }
    assert!(hub.session(run.slow_id).is_none());
    // The socket is gone too: the reader sees data, maybe the close, then
    // the end of the stream (or a reset), never a hang.
    bounded("the slow socket ends", async {
        while run.slow.frame().await.is_some() {}
    })
    .await;
    run.server.shutdown(Duration::from_secs(2)).await;
}

hubbub_tests::cross_runtime!(
    close_policy_closes_the_slow_consumer_with_its_code,
    drop_policy_drops_and_counts_and_the_session_stays_open,
    close_policy_ends_a_consumer_that_never_reads_again,
);
