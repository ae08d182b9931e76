//! The realtime hub served on tokio, end to end: every callback, rooms,
//! ordering, protocol errors and shutdown. Peers are tokio-tungstenite (a
//! client we did not write), our own client, and a raw socket client that
//! can break the protocol.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use common::{
    bounded,
    raw::{self, Raw},
    until,
};
use futures_util::{SinkExt, StreamExt};
use hubbub_tests::prelude::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{
    protocol::{frame::coding::CloseCode as TCode, CloseFrame},
    Message as TMessage,
};

type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start<R: Rt>(hub: Hub) -> HubHandle {
    start_with::<R>(hub, Config::default()).await
}

async fn start_with<R: Rt>(hub: Hub, config: Config) -> HubHandle {
    HubServer::<R>::bind("127.0.0.1:0", hub, Arc::new(config))
        .await
        .unwrap()
        .start()
        .unwrap()
}

async fn peer(handle: &HubHandle, path: &str) -> Peer {
    let url = format!("ws://{}{}", handle.local_addr(), path);
    bounded("connect", tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .0
}

async fn next_text(peer: &mut Peer) -> String {
    loop {
        match bounded("a message", peer.next()).await {
            Some(Ok(TMessage::Text(text))) => return text.to_string(),
            Some(Ok(TMessage::Close(frame))) => {
                return format!("close {}", frame.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Read until the connection is over (bounded).
async fn drain(peer: &mut Peer) {
    while let Some(Ok(_)) = bounded("the end of the stream", peer.next()).await {}
}

async fn send(peer: &mut Peer, text: &str) {
    peer.send(TMessage::text(text)).await.unwrap();
}

/// Everything the callbacks saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Open(SessionId),
    Text(SessionId, String),
    Binary(SessionId, Vec<u8>),
    Typed(SessionId, String, Value),
    Close(SessionId, u16, String),
    Error(SessionId, SessionError),
}

/// A hub builder whose every callback reports to the returned channel.
fn recording() -> (HubBuilder, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = [(); 6].map(|_| tx.clone());
    let [t1, t2, t3, t4, t5, t6] = t;
    let builder = Hub::builder()
        .on_open(move |s| t1.send(Seen::Open(s.id())).unwrap())
        .on_message(move |s, text| t2.send(Seen::Text(s.id(), text.into())).unwrap())
        .on_binary(move |s, data| t3.send(Seen::Binary(s.id(), data.to_vec())).unwrap())
        .on_typed_message(move |s, envelope| {
            let (kind, payload) = (envelope.event_type.clone(), envelope.payload.clone());
            t4.send(Seen::Typed(s.id(), kind, payload)).unwrap()
        })
        // Ignored below: sessions still close and fail at the server's
        // shutdown, after a test has stopped reading (and dropped `rx`).
        .on_close(move |s, code, reason| {
            let _ = t5.send(Seen::Close(s.id(), code.0, reason.into()));
        })
        .on_error(move |s, error| {
            let _ = t6.send(Seen::Error(s.id(), error.clone()));
        });
    (builder, rx)
}

async fn seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    bounded("a callback", rx.recv()).await.expect("hub alive")
}

/// The id of the next session to open.
async fn opened(rx: &mut mpsc::UnboundedReceiver<Seen>) -> SessionId {
    match seen(rx).await {
        Seen::Open(id) => id,
        other => panic!("expected an open, got {other:?}"),
    }
}

async fn callbacks_run_in_order_raw_then_typed<R: Rt>() {
    let (builder, mut rx) = recording();
    let hub = builder.build();
    let server = start::<R>(hub.clone()).await;
    let mut p = peer(&server, "/room?x=1").await;
    let id = opened(&mut rx).await;
    let nested = json!({"text": "hi", "meta": {"tags": [1, {"deep": null}], "n": 2.5}});
    let envelope = json!({"type": "chat.message", "payload": nested, "room": "r", "ts": 7});
    send(&mut p, "plain").await;
    send(&mut p, &envelope.to_string()).await;
    for not_envelope in ["[1,2]", r#"{"type":""}"#, r#"{"kind":"x"}"#, "{broken"] {
        send(&mut p, not_envelope).await;
    }
    p.send(TMessage::binary(vec![0u8, 1, 255])).await.unwrap();
    p.close(Some(CloseFrame {
        code: TCode::from(4001),
        reason: "bye now".into(),
    }))
    .await
    .unwrap();
    drain(&mut p).await;
    let mut all = Vec::new();
    loop {
        let event = seen(&mut rx).await;
        let last = matches!(event, Seen::Close(..));
        all.push(event);
        if last {
            break;
        }
    }
    assert_eq!(
        all,
        vec![
            Seen::Text(id, "plain".into()),
            Seen::Text(id, envelope.to_string()),
            Seen::Typed(id, "chat.message".into(), nested),
            Seen::Text(id, "[1,2]".into()),
            Seen::Text(id, r#"{"type":""}"#.into()),
            Seen::Text(id, r#"{"kind":"x"}"#.into()),
            Seen::Text(id, "{broken".into()),
            Seen::Binary(id, vec![0, 1, 255]),
            Seen::Close(id, 4001, "bye now".into()),
        ]
    );
    server.shutdown(Duration::from_secs(1)).await;
    assert!(rx.try_recv().is_err(), "nothing after the close");
    assert_eq!(hub.metrics().messages_in.get(), 7);
}

async fn sessions_know_their_handshake<R: Rt>() {
    let seen_info = Arc::new(Mutex::new(None));
    let info = seen_info.clone();
    let hub = Hub::builder()
        .on_upgrade(|request| {
            if request.protocols().iter().any(|p| p == "chat") {
                Ok(Accept::new().protocol("chat"))
            } else {
                Ok(Accept::new())
            }
        })
        .on_open(move |s| {
            *info.lock().unwrap() = Some((
                s.path().to_owned(),
                s.query().map(str::to_owned),
                s.header("x-token").map(str::to_owned),
                s.protocol().map(str::to_owned),
                s.peer_addr(),
            ));
            s.send_text("ready").unwrap();
        })
        .build();
    let server = start::<R>(hub).await;
    let url = format!("ws://{}/live/feed?since=3", server.local_addr());
    let request = ClientRequest::from_url(&url)
        .unwrap()
        .protocol("chat")
        .header("X-Token", "abc");
    let mut ws = bounded(
        "connect",
        connect_with::<R>(request, &ClientConfig::default()),
    )
    .await
    .unwrap();
    assert_eq!(ws.protocol(), Some("chat"));
    let ready = bounded("ready", ws.recv()).await;
    assert!(matches!(ready, Some(Ok(Message::Text(t))) if t == "ready"));
    let local = R::stream_local_addr(ws.get_ref()).unwrap();
    assert_eq!(
        seen_info.lock().unwrap().take().unwrap(),
        (
            "/live/feed".into(),
            Some("since=3".into()),
            Some("abc".into()),
            Some("chat".into()),
            Some(local)
        )
    );
    bounded("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    server.shutdown(Duration::from_secs(1)).await;
}

async fn a_vanished_peer_is_closed_once_with_1006<R: Rt>() {
    let (builder, mut rx) = recording();
    let server = start::<R>(builder.build()).await;
    let closes = |all: &[Seen], id| {
        all.iter()
            .filter(|e| matches!(e, Seen::Close(i, ..) if *i == id))
            .count()
    };

    // FIN without a close frame.
    let quiet = Raw::connect(server.local_addr(), "/").await;
    let a = opened(&mut rx).await;
    drop(quiet);
    assert_eq!(
        seen(&mut rx).await,
        Seen::Close(a, 1006, "connection ended without a close frame".into())
    );

    // A reset: the transport error is reported, then the 1006 close.
    let rude = Raw::connect(server.local_addr(), "/").await;
    let b = opened(&mut rx).await;
    #[allow(deprecated)] // SO_LINGER 0: drop sends a reset and does not block
    rude.stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(rude);
    let mut all = Vec::new();
    while closes(&all, b) == 0 {
        all.push(seen(&mut rx).await);
    }
    assert!(
        matches!(&all[..], [Seen::Error(i, SessionError::Io(_)), Seen::Close(j, 1006, _)] if *i == b && *j == b),
        "{all:?}"
    );

    let hub = server.hub().clone();
    server.shutdown(Duration::from_secs(1)).await;
    while let Ok(event) = rx.try_recv() {
        all.push(event);
    }
    assert_eq!(
        (closes(&all, a), closes(&all, b)),
        (0, 1),
        "no second close"
    );
    assert_eq!(hub.metrics().closes_by_code().get("1006"), Some(&2));
    assert_eq!(hub.session_count(), 0);
}

async fn protocol_errors_reach_on_error_and_close_with_their_code<R: Rt>() {
    let (builder, mut rx) = recording();
    let config = Config {
        max_message_size: 1024,
        ..Config::default()
    };
    let server = start_with::<R>(builder.build(), config).await;
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("unmasked", raw::encode(true, raw::TEXT, b"hi", false), 1002),
        (
            "bad utf-8",
            raw::encode(true, raw::TEXT, b"\xff\xfe", true),
            1007,
        ),
        (
            "too big",
            raw::encode(true, raw::BINARY, &[0; 2000], true),
            1009,
        ),
        ("reserved opcode", raw::encode(true, 0x3, b"", true), 1002),
    ];
    for (what, bytes, code) in cases {
        let mut peer = Raw::connect(server.local_addr(), "/").await;
        let id = opened(&mut rx).await;
        tokio::io::AsyncWriteExt::write_all(&mut peer.stream, &bytes)
            .await
            .unwrap();
        assert_eq!(
            bounded("the close", peer.close_code()).await,
            Some(code),
            "{what}"
        );
        match seen(&mut rx).await {
            Seen::Error(i, SessionError::Protocol(error)) => {
                assert_eq!((i, error.close_code().0), (id, code), "{what}: {error}");
                if what == "unmasked" {
                    assert_eq!(error, ProtocolError::UnmaskedFrame);
                }
            }
            other => panic!("{what}: {other:?}"),
        }
        assert!(
            matches!(seen(&mut rx).await, Seen::Close(i, c, _) if i == id && c == code),
            "{what}"
        );
        assert_eq!(
            bounded("EOF", peer.frame()).await,
            None,
            "{what}: server ends the TCP stream"
        );
    }
    assert_eq!(server.hub().metrics().errors.get(), 4);
    server.shutdown(Duration::from_secs(1)).await;
}

async fn emit_error_reaches_on_error<R: Rt>() {
    let (builder, mut rx) = recording();
    let hub = builder
        .on_message(|s, text| {
            if text.is_empty() {
                s.emit_error("empty message");
                s.close(CloseCode::POLICY_VIOLATION, "empty");
            }
        })
        .build();
    let server = start::<R>(hub).await;
    let mut p = peer(&server, "/").await;
    let id = opened(&mut rx).await;
    send(&mut p, "").await;
    assert_eq!(next_text(&mut p).await, "close 1008");
    assert_eq!(
        seen(&mut rx).await,
        Seen::Error(id, SessionError::Application("empty message".into()))
    );
    drain(&mut p).await;
    assert!(matches!(seen(&mut rx).await, Seen::Close(i, 1008, _) if i == id));
    server.shutdown(Duration::from_secs(1)).await;
}

async fn callbacks_call_back_into_the_hub_without_deadlock<R: Rt>() {
    let closes = Arc::new(AtomicUsize::new(0));
    let c = closes.clone();
    let hub = Hub::builder()
        .on_open(|s| {
            let hub = s.hub().unwrap();
            s.send_text(format!("welcome {}", s.id())).unwrap();
            hub.join(s, "lobby");
            hub.room_text("lobby", &format!("{} arrived", s.id()), Some(s));
        })
        .on_message(|s, text| {
            let hub = s.hub().unwrap();
            match text.split_once(' ') {
                Some(("join", room)) => {
                    hub.join(s, room);
                    hub.room_text(room, &format!("{} joined {room}", s.id()), None);
                }
                Some(("say", words)) => {
                    hub.broadcast_json("said", json!({"from": s.id(), "text": words}), Some(s));
                }
                _ if text == "bye" => {
                    s.send_text("closing").unwrap();
                    s.close(CloseCode::NORMAL, "bye");
                    assert_eq!(s.send_text("after"), Err(SendError::Closed));
                }
                _ => {}
            }
        })
        .on_close(move |s, _, _| {
            let hub = s.hub().unwrap();
            assert_eq!(s.send_text("to myself"), Err(SendError::Closed));
            hub.broadcast_text(&format!("{} left", s.id()), None);
            hub.room_text("lobby", "lobby shrank", None);
            // The hub answers from `on_close`: it no longer counts the
            // session (a closes first, b at shutdown), and the lobby is
            // still there (b is in it; so is the closing session itself).
            assert_eq!(hub.session_count() + c.load(Ordering::SeqCst), 1);
            assert!(hub.rooms().contains(&"lobby".to_owned()));
            c.fetch_add(1, Ordering::SeqCst);
        })
        .build();
    let server = start::<R>(hub.clone()).await;
    let mut a = peer(&server, "/").await;
    let welcome_a = next_text(&mut a).await;
    let a_id: u64 = welcome_a.strip_prefix("welcome ").unwrap().parse().unwrap();
    let mut b = peer(&server, "/").await;
    let welcome_b = next_text(&mut b).await;
    let b_id: u64 = welcome_b.strip_prefix("welcome ").unwrap().parse().unwrap();
    assert_eq!(next_text(&mut a).await, format!("{b_id} arrived"));
    send(&mut b, "join dev").await;
    assert_eq!(next_text(&mut b).await, format!("{b_id} joined dev"));
    send(&mut b, "say hello").await;
    let said: Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    assert_eq!(
        said,
        json!({"type": "said", "payload": {"from": b_id, "text": "hello"}})
    );
    send(&mut a, "bye").await;
    assert_eq!(next_text(&mut a).await, "closing");
    assert_eq!(next_text(&mut a).await, "close 1000");
    drain(&mut a).await;
    assert_eq!(next_text(&mut b).await, format!("{a_id} left"));
    assert_eq!(next_text(&mut b).await, "lobby shrank");
    assert_eq!(hub.members("lobby"), vec![b_id]);
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    server.shutdown(Duration::from_secs(1)).await;
    assert_eq!(closes.load(Ordering::SeqCst), 2);
}

async fn rooms_isolate_leave_and_vanish_over_the_wire<R: Rt>() {
    let hub = Hub::builder()
        .on_typed_message(|s, envelope| {
            let hub = s.hub().expect("hub alive");
            let payload = &envelope.payload;
            let room = payload["room"].as_str().unwrap_or("general");
            match envelope.event_type.as_str() {
                "join" => {
                    let first = hub.join(s, room);
                    s.send_text(format!("joined {room} {first}")).unwrap();
                }
                "leave" => {
                    let was = hub.leave(s, room);
                    s.send_text(format!("left {room} {was}")).unwrap();
                }
                "say" => {
                    let n = hub.room_text(room, payload["text"].as_str().unwrap_or(""), Some(s));
                    s.send_text(format!("sent to {n}")).unwrap();
                }
                _ => {}
            }
        })
        .build();
    let server = start::<R>(hub.clone()).await;
    let (mut a, mut b, mut c) = (
        peer(&server, "/").await,
        peer(&server, "/").await,
        peer(&server, "/").await,
    );
    let join = |room: &str| json!({"type": "join", "payload": {"room": room}}).to_string();
    let say = |room: &str, text: &str| {
        json!({"type": "say", "payload": {"room": room, "text": text}}).to_string()
    };
    for (p, room) in [(&mut a, "r1"), (&mut b, "r1"), (&mut c, "r2")] {
        send(p, &join(room)).await;
        assert_eq!(next_text(p).await, format!("joined {room} true"));
    }
    send(&mut a, &join("r1")).await;
    assert_eq!(
        next_text(&mut a).await,
        "joined r1 false",
        "twice is harmless"
    );
    send(&mut a, &say("r1", "to r1")).await;
    assert_eq!(next_text(&mut a).await, "sent to 1", "sender excluded");
    assert_eq!(next_text(&mut b).await, "to r1");
    send(&mut c, &say("r2", "only c's room")).await;
    assert_eq!(next_text(&mut c).await, "sent to 0");
    send(&mut c, &say("nowhere", "void")).await;
    assert_eq!(next_text(&mut c).await, "sent to 0", "unknown room: no-op");
    // A marker proves nothing from r2 or `nowhere` reached a or b before it.
    hub.broadcast_text("everyone", None);
    for p in [&mut a, &mut b, &mut c] {
        assert_eq!(next_text(p).await, "everyone");
    }
    // Leave; leaving again or an unknown room is a no-op.
    send(
        &mut b,
        &json!({"type": "leave", "payload": {"room": "r1"}}).to_string(),
    )
    .await;
    assert_eq!(next_text(&mut b).await, "left r1 true");
    send(
        &mut b,
        &json!({"type": "leave", "payload": {"room": "r1"}}).to_string(),
    )
    .await;
    assert_eq!(next_text(&mut b).await, "left r1 false");
    send(&mut a, &say("r1", "b is gone")).await;
    assert_eq!(next_text(&mut a).await, "sent to 0");
    let mut rooms = hub.rooms();
    rooms.sort();
    assert_eq!(rooms, vec!["r1", "r2"]);
    // Leaving on disconnect: c's room vanishes, a's stays.
    c.close(None).await.unwrap();
    drain(&mut c).await;
    until("c's session ends", || hub.session_count() == 2).await;
    assert_eq!(hub.rooms(), vec!["r1"]);
    assert_eq!(hub.members("r1").len(), 1);
    server.shutdown(Duration::from_secs(1)).await;
    assert!(hub.rooms().is_empty());
}

async fn direct_sends_and_broadcasts_arrive_in_order_past_the_high_water_mark<R: Rt>() {
    // One message triggers 600 sends of ~1 KiB (600 KiB, ten times what
    // the runner keeps in the core), interleaving direct sends and
    // broadcasts; nothing else happens afterwards, so every part of the
    // queue must be written without a further wake-up.
    let hub = Hub::builder()
        .on_message(|s, text| {
            if text != "go" {
                return;
            }
            let hub = s.hub().unwrap();
            let pad = "p".repeat(1000);
            for i in 0..600 {
                if i % 2 == 0 {
                    s.send_text(format!("{i} direct {pad}")).unwrap();
                } else {
                    hub.broadcast_text(&format!("{i} broadcast {pad}"), None);
                }
            }
        })
        .build();
    let server = start::<R>(hub).await;
    let mut a = peer(&server, "/").await;
    let mut b = peer(&server, "/").await;
    until("two sessions", || server.hub().session_count() == 2).await;
    send(&mut a, "go").await;
    for i in 0..600 {
        let text = next_text(&mut a).await;
        let kind = if i % 2 == 0 { "direct" } else { "broadcast" };
        assert!(
            text.starts_with(&format!("{i} {kind} ")),
            "a #{i}: {}",
            &text[..20]
        );
    }
    for i in (1..600).step_by(2) {
        let text = next_text(&mut b).await;
        assert!(
            text.starts_with(&format!("{i} broadcast ")),
            "b #{i}: {}",
            &text[..20]
        );
    }
    server.shutdown(Duration::from_secs(1)).await;
}

async fn shutdown_sends_1001_to_everyone<R: Rt>() {
    let (builder, mut rx) = recording();
    let server = start::<R>(builder.build()).await;
    let mut peers = Vec::new();
    for _ in 0..20 {
        peers.push(peer(&server, "/").await);
    }
    for _ in 0..20 {
        opened(&mut rx).await;
    }
    assert_eq!(server.hub().session_count(), 20);
    let hub = server.hub().clone();
    let stopping = tokio::spawn(server.shutdown(Duration::from_secs(10)));
    for p in &mut peers {
        assert_eq!(next_text(p).await, "close 1001");
    }
    // Each peer echoes the close and sees the server's end of stream...
    for p in &mut peers {
        drain(p).await;
    }
    // ...and its FIN lets the server's sessions finish well within the
    // grace period, without waiting for a linger timer.
    drop(peers);
    let began = Instant::now();
    bounded("shutdown", stopping).await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(hub.session_count(), 0);
    assert_eq!(hub.metrics().closes_by_code().get("1001"), Some(&20));
    for _ in 0..20 {
        assert!(matches!(seen(&mut rx).await, Seen::Close(_, 1001, _)));
    }
}

async fn shutdown_waits_a_bounded_time_and_refuses_new_connections<R: Rt>() {
    let (builder, mut rx) = recording();
    let server = start::<R>(builder.build()).await;
    let addr = server.local_addr();
    // Two peers that never answer the close (nor read), one that does, and
    // a TCP connection still in its opening handshake.
    let mut deaf = vec![Raw::connect(addr, "/").await, Raw::connect(addr, "/").await];
    let mut polite = peer(&server, "/").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(opened(&mut rx).await);
    }
    let half_open = Raw::tcp(addr).await;
    let hub = server.hub().clone();
    let began = Instant::now();
    let grace = Duration::from_millis(600);
    let stopping = tokio::spawn(server.shutdown(grace));
    assert_eq!(next_text(&mut polite).await, "close 1001");
    drain(&mut polite).await;
    // Phase one is over as soon as the 1001s are out: new connections are
    // refused while the deaf sessions hold phase two.
    until("the polite session ends", || hub.session_count() == 2).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "connected during shutdown: {refused:?}");
    bounded("shutdown", stopping).await.unwrap();
    let took = began.elapsed();
    assert!(
        took >= grace,
        "waited the grace period for the deaf peers: {took:?}"
    );
    assert!(
        took < grace + Duration::from_secs(3),
        "then gave up: {took:?}"
    );
    // The deaf sessions were released, and reported closed (1006) once.
    assert_eq!(hub.session_count(), 0);
    let mut closes = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let Seen::Close(id, code, _) = event {
            closes.push((id, code));
        }
    }
    closes.sort();
    let mut expected = vec![(ids[0], 1006), (ids[1], 1006), (ids[2], 1001)];
    expected.sort();
    assert_eq!(closes, expected);
    // The deaf peers got the 1001 all the same.
    for d in &mut deaf {
        assert_eq!(bounded("close", d.close_code()).await, Some(1001));
    }
    drop(half_open);
}

async fn path_routing_answers_404<R: Rt>() {
    let server = start::<R>(Hub::builder().path("/chat").build()).await;
    let url = format!("ws://{}/other", server.local_addr());
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    peer(&server, "/chat").await;
    server.shutdown(Duration::from_secs(1)).await;
}

async fn idle_sessions_are_closed_by_the_core_timer<R: Rt>() {
    let (builder, mut rx) = recording();
    let config = Config {
        idle_timeout: Some(Duration::from_millis(300)),
        ping_interval: None,
        ..Config::default()
    };
    let server = start_with::<R>(builder.build(), config).await;
    let mut p = Raw::connect(server.local_addr(), "/").await;
    let id = opened(&mut rx).await;
    assert_eq!(bounded("idle close", p.close_code()).await, Some(1001));
    p.send_close(1001, "").await;
    assert!(matches!(seen(&mut rx).await, Seen::Close(i, 1001, _) if i == id));
    assert_eq!(bounded("EOF", p.frame()).await, None);
    drop(p);
    server.shutdown(Duration::from_secs(1)).await;
}

async fn a_panicking_callback_ends_only_its_own_session<R: Rt>() {
    let hub = Hub::builder()
        .on_open(|s| {
            s.hub().unwrap().join(s, "all");
            assert!(s.path() != "/panic-on-open", "on_open panics (on purpose)");
        })
        .on_message(|s, text| {
            assert!(text != "boom", "on_message panics (on purpose)");
            s.send_text(text).unwrap();
        })
        .build();
    let server = start::<R>(hub.clone()).await;
    let mut calm = peer(&server, "/").await;
    until("one session", || hub.session_count() == 1).await;

    let mut doomed = peer(&server, "/").await;
    until("two sessions", || hub.session_count() == 2).await;
    send(&mut doomed, "boom").await;
    // Its connection ends (abruptly: no close frame from a panicked task).
    bounded("the doomed connection ends", async {
        while let Some(Ok(_)) = doomed.next().await {}
    })
    .await;
    until("the doomed session is released", || {
        hub.session_count() == 1
    })
    .await;
    assert_eq!(hub.members("all").len(), 1, "it left its rooms");

    let url = format!("ws://{}/panic-on-open", server.local_addr());
    if let Ok((mut early, _)) = tokio_tungstenite::connect_async(url).await {
        bounded("the early connection ends", async {
            while let Some(Ok(_)) = early.next().await {}
        })
        .await;
    }
    until("a session whose on_open panicked is released", || {
        hub.metrics().connections_total.get() == 3 && hub.session_count() == 1
    })
    .await;
    assert_eq!(hub.members("all").len(), 1);

    // The server and the other session carry on.
    send(&mut calm, "still here").await;
    assert_eq!(next_text(&mut calm).await, "still here");
    let mut late = peer(&server, "/").await;
    send(&mut late, "hello").await;
    assert_eq!(next_text(&mut late).await, "hello");
    drop((calm, late));
    server.shutdown(Duration::from_secs(1)).await;
    assert_eq!(hub.session_count(), 0);
}

async fn dropping_the_server_handle_shuts_down<R: Rt>() {
    let hub = Hub::builder().build();
    let server = start::<R>(hub.clone()).await;
    let addr = server.local_addr();
    let mut p = peer(&server, "/").await;
    until("one session", || hub.session_count() == 1).await;
    drop(server);
    assert_eq!(next_text(&mut p).await, "close 1001");
    drain(&mut p).await;
    until("the listener is closed", || !hub.is_accepting()).await;
    bounded("refused", async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

hubbub_tests::cross_runtime!(
    callbacks_run_in_order_raw_then_typed,
    sessions_know_their_handshake,
    a_vanished_peer_is_closed_once_with_1006,
    protocol_errors_reach_on_error_and_close_with_their_code,
    emit_error_reaches_on_error,
    callbacks_call_back_into_the_hub_without_deadlock,
    rooms_isolate_leave_and_vanish_over_the_wire,
    direct_sends_and_broadcasts_arrive_in_order_past_the_high_water_mark,
    shutdown_sends_1001_to_everyone,
    shutdown_waits_a_bounded_time_and_refuses_new_connections,
    path_routing_answers_404,
    idle_sessions_are_closed_by_the_core_timer,
    a_panicking_callback_ends_only_its_own_session,
    dropping_the_server_handle_shuts_down,
);
