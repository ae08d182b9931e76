//! The realtime hub served on tokio, driven by tokio-tungstenite (a client
//! we did not write): callbacks, rooms, broadcast, typed events, shutdown.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use hubbub_tokio::{Config, Hub, HubServer, ServerHandle};
use serde_json::json;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message as TMessage;

type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start(hub: Hub) -> ServerHandle {
    HubServer::bind("127.0.0.1:0", hub, Arc::new(Config::default()))
        .await
        .unwrap()
        .start()
        .unwrap()
}

async fn peer(handle: &ServerHandle, path: &str) -> Peer {
    let url = format!("ws://{}{}", handle.local_addr(), path);
    timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .unwrap()
    .unwrap()
    .0
}

async fn next_text(peer: &mut Peer) -> String {
    loop {
        match timeout(Duration::from_secs(5), peer.next())
            .await
            .expect("a message within 5 s")
        {
            Some(Ok(TMessage::Text(text))) => return text.to_string(),
            Some(Ok(TMessage::Close(frame))) => {
                return format!("close {}", frame.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn send(peer: &mut Peer, text: &str) {
    peer.send(TMessage::text(text)).await.unwrap();
}

#[tokio::test]
async fn callbacks_run_in_order_raw_then_typed() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    let hub = Hub::builder()
        .on_open(move |s| l1.lock().unwrap().push(format!("open {}", s.path())))
        .on_message(move |s, text| {
            l2.lock().unwrap().push(format!("raw {text}"));
            let _ = s.send_text(format!("echo {text}"));
        })
        .on_typed_message(move |s, kind, payload| {
            l3.lock().unwrap().push(format!("typed {kind} {payload}"));
            let _ = s.send_json("ack", json!({ "type": kind }));
        })
        .on_close(move |_, code, reason| l4.lock().unwrap().push(format!("close {code} {reason}")))
        .build();
    let server = start(hub).await;
    let mut p = peer(&server, "/room?x=1").await;
    send(&mut p, "plain").await;
    assert_eq!(next_text(&mut p).await, "echo plain");
    send(&mut p, r#"{"type":"chat.message","payload":{"text":"hi"}}"#).await;
    assert_eq!(
        next_text(&mut p).await,
        r#"echo {"type":"chat.message","payload":{"text":"hi"}}"#
    );
    assert_eq!(
        next_text(&mut p).await,
        r#"{"type":"ack","payload":{"type":"chat.message"}}"#
    );
    p.close(None).await.unwrap();
    while p.next().await.is_some() {}
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "open /room".to_string(),
            "raw plain".into(),
            r#"raw {"type":"chat.message","payload":{"text":"hi"}}"#.into(),
            r#"typed chat.message {"text":"hi"}"#.into(),
            "close 1005 ".into(),
        ]
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn rooms_isolate_and_broadcast_excludes_sender() {
    let hub = Hub::builder()
        .on_typed_message(|s, kind, payload| {
            let hub = s.hub().expect("hub alive");
            let room = payload["room"].as_str().unwrap_or("general");
            match kind {
                "join" => {
                    hub.join(s, room);
                    let _ = s.send_text(format!("joined {room}"));
                }
                "say" => {
                    hub.room_text(room, payload["text"].as_str().unwrap_or(""), Some(s));
                }
                _ => {}
            }
        })
        .build();
    let server = start(hub.clone()).await;
    let (mut a, mut b, mut c) = (
        peer(&server, "/").await,
        peer(&server, "/").await,
        peer(&server, "/").await,
    );
    for (p, room) in [(&mut a, "r1"), (&mut b, "r1"), (&mut c, "r2")] {
        send(
            p,
            &json!({"type":"join","payload":{"room":room}}).to_string(),
        )
        .await;
        assert_eq!(next_text(p).await, format!("joined {room}"));
    }
    send(
        &mut a,
        r#"{"type":"say","payload":{"room":"r1","text":"to r1"}}"#,
    )
    .await;
    assert_eq!(next_text(&mut b).await, "to r1");
    send(
        &mut c,
        r#"{"type":"say","payload":{"room":"r2","text":"only c's room"}}"#,
    )
    .await;
    // b gets nothing from r2; a (sender) gets nothing from its own message.
    hub.broadcast_text("everyone", None);
    assert_eq!(next_text(&mut a).await, "everyone");
    assert_eq!(next_text(&mut b).await, "everyone");
    assert_eq!(next_text(&mut c).await, "everyone");
    let mut rooms = hub.rooms();
    rooms.sort();
    assert_eq!(rooms, vec!["r1", "r2"]);
    // Leaving on disconnect: c's room vanishes.
    c.close(None).await.unwrap();
    while c.next().await.is_some() {}
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hub.rooms(), vec!["r1"]);
    assert_eq!(hub.session_count(), 2);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_sends_1001_to_everyone() {
    let server = start(Hub::builder().build()).await;
    let mut peers = Vec::new();
    for _ in 0..20 {
        peers.push(peer(&server, "/").await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.hub().session_count(), 20);
    let hub = server.hub().clone();
    let stopping = tokio::spawn(server.shutdown(Duration::from_secs(3)));
    for p in &mut peers {
        assert_eq!(next_text(p).await, "close 1001");
    }
    // Let each peer flush its close echo and see the server's EOF.
    for p in &mut peers {
        while let Ok(Some(_)) = timeout(Duration::from_secs(5), p.next()).await {}
    }
    drop(peers); // our FIN: the server's sessions finish without lingering
    timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hub.session_count(), 0);
    assert_eq!(hub.metrics().closes_by_code().get(&1001), Some(&20));
}

#[tokio::test]
async fn path_routing_answers_404() {
    let server = start(Hub::builder().path("/chat").build()).await;
    let url = format!("ws://{}/other", server.local_addr());
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    peer(&server, "/chat").await;
    server.shutdown(Duration::from_secs(1)).await;
}
