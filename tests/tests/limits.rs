//! Limits over real sockets, on every runtime: the origin allow-list (403
//! at the upgrade and on HTTP), per-session message and byte rates (drop
//! with a notice, or close 1008), the cap on rooms per session and the
//! room name length, connection
//! limits (503 over the global maximum, 429 per address and per-address
//! rate), the HTTP routes' per-address limits, and the refusals in
//! `/metrics`. Refusals are read as raw bytes: the exact status line and
//! body.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use common::{
    bounded,
    http::{connect, get, metric, read_answer, request},
    until,
};
use futures_util::{SinkExt, StreamExt};
use hubbub_http::{HttpApp, HttpRateLimits, LongPollConfig};
use hubbub_hub::{HubLimits, Origins, RatePolicy};
use hubbub_tests::prelude::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as TMessage;

type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A hub that echoes `echo TEXT` and joins `join ROOM` (answering `joined
/// ROOM` when it did), with `limits`, served with HTTP and long polling
/// on one port of runtime `R`.
async fn start<R: Rt>(limits: HubLimits, http: HttpRateLimits) -> (SocketAddr, HubHandle) {
    let hub = Hub::builder()
        .limits(limits)
        .on_message(|session, text| {
            let hub = session.hub().unwrap();
            if let Some(room) = text.strip_prefix("join ") {
                if hub.try_join(session, room).is_ok() {
                    let _ = session.send_text(format!("joined {room}"));
                }
            } else {
                let _ = session.send_text(format!("echo {text}"));
            }
        })
        .build();
    let app = HttpApp::builder(hub.clone())
        .long_polling(LongPollConfig::default())
        .rate_limits(http)
        .build();
    let server = HubServer::<R>::bind("127.0.0.1:0", hub, Config::default().into())
        .await
        .unwrap();
    let handle = app.start_shared(server).unwrap();
    (handle.local_addr(), handle)
}

/// Run blocking client code on tokio's blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    bounded("blocking client", tokio::task::spawn_blocking(work))
        .await
        .unwrap()
}

/// An upgrade request with `extra` header lines over a raw socket: the
/// answer's head, and for a refusal its body (read to the end: the server
/// closes after it).
fn upgrade(addr: SocketAddr, extra: &str) -> (String, String, TcpStream) {
    let mut stream = connect(addr);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed inside the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut body = String::new();
    if !head.starts_with("HTTP/1.1 101 ") {
        stream.read_to_string(&mut body).unwrap();
    }
    (head, body, stream)
}

async fn peer(addr: SocketAddr) -> Peer {
    bounded(
        "connect",
        tokio_tungstenite::connect_async(format!("ws://{addr}/")),
    )
    .await
    .unwrap()
    .0
}

async fn next_text(peer: &mut Peer) -> String {
    loop {
        match bounded("a message", peer.next()).await {
            Some(Ok(TMessage::Text(text))) => return text.to_string(),
            Some(Ok(TMessage::Close(frame))) => {
                let frame = frame.expect("a close code");
                return format!("close {} {}", u16::from(frame.code), frame.reason);
            }
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn send(peer: &mut Peer, text: &str) {
    peer.send(TMessage::text(text)).await.unwrap();
}

fn origins(list: &str) -> HubLimits {
    HubLimits {
        origins: Origins::parse(list).unwrap(),
        ..HubLimits::default()
    }
}

async fn origins_are_checked_at_the_upgrade_and_on_http<R: Rt>() {
    let (addr, handle) =
        start::<R>(origins("https://chat.example"), HttpRateLimits::default()).await;
    blocking(move || {
        let (head, _, _open) = upgrade(addr, "Origin: https://chat.example\r\n");
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        let (head, _, _open) = upgrade(addr, "");
        assert!(
            head.starts_with("HTTP/1.1 101 "),
            "no Origin: allowed: {head}"
        );
        let (head, body, _) = upgrade(addr, "Origin: https://evil.example\r\n");
        assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
        assert_eq!(body, "origin not allowed: https://evil.example");

        let health = |origin: &str| {
            request(
                addr,
                &format!("GET /api/health HTTP/1.1\r\nHost: t\r\n{origin}\r\n"),
            )
        };
        assert_eq!(health("").status, 200);
        assert_eq!(health("Origin: https://CHAT.example:443\r\n").status, 200);
        let refused = health("Origin: https://evil.example\r\n");
        assert_eq!(refused.status, 403);
        assert_eq!(
            refused.json()["error"],
            "origin not allowed: https://evil.example"
        );
        assert_eq!(
            metric(
                addr,
                "hubbub_ws_connections_rejected_total{reason=\"origin\"}"
            ),
            1
        );
        assert_eq!(metric(addr, "hubbub_http_origin_rejected_total"), 1);
        assert_eq!(
            metric(addr, "hubbub_ws_handshakes_rejected_total{status=\"403\"}"),
            1
        );
    })
    .await;
    drop(handle);
}

async fn over_its_message_rate_a_session_is_dropped_and_told_once_a_second<R: Rt>() {
    let limits = HubLimits {
        messages_per_second: 5,
        ..HubLimits::default()
    };
    let (addr, handle) = start::<R>(limits, HttpRateLimits::default()).await;
    let hub = handle.hub().clone();
    let (mut a, mut b) = (peer(addr).await, peer(addr).await);
    for i in 0..15 {
        send(&mut a, &format!("{i}")).await;
    }
    until("15 messages in", || hub.metrics().messages_in.get() == 15).await;
    // Once the bucket is full again, the session is served as before.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut a, "last").await;
    let (mut echoes, mut notices) = (0, Vec::new());
    loop {
        let text = next_text(&mut a).await;
        if text == "echo last" {
            break;
        }
        if text.starts_with("echo ") {
            echoes += 1;
        } else {
            notices.push(serde_json::from_str::<Value>(&text).unwrap());
        }
    }
    let dropped = hub.metrics().limits.rate_limited.snapshot();
    let dropped = dropped.get(&("messages", "drop")).copied().unwrap_or(0);
    assert!((5..=7).contains(&echoes), "{echoes} of 15 passed at 5/s");
    assert_eq!(echoes + dropped, 15);
    assert_eq!(notices.len(), 1, "at most one notice a second: {notices:?}");
    assert_eq!(notices[0]["type"], "error");
    assert_eq!(notices[0]["payload"]["error"], "rate_limited");
    assert_eq!(notices[0]["payload"]["limit"], "messages");
    // Another session is not affected.
    send(&mut b, "b").await;
    assert_eq!(next_text(&mut b).await, "echo b");
    blocking(move || {
        let line = "hubbub_ws_rate_limited_total{limit=\"messages\",policy=\"drop\"}";
        assert_eq!(metric(addr, line), dropped);
    })
    .await;
}

async fn over_its_rate_with_policy_close_a_session_is_closed_1008<R: Rt>() {
    let limits = HubLimits {
        messages_per_second: 2,
        rate_policy: RatePolicy::Close,
        ..HubLimits::default()
    };
    let (addr, _handle) = start::<R>(limits, HttpRateLimits::default()).await;
    let mut a = peer(addr).await;
    for i in 0..5 {
        let _ = a.send(TMessage::text(format!("{i}"))).await;
    }
    assert_eq!(next_text(&mut a).await, "echo 0");
    assert_eq!(next_text(&mut a).await, "echo 1");
    assert_eq!(
        next_text(&mut a).await,
        "close 1008 rate limit: over 2 messages per second"
    );
}

async fn over_its_byte_rate_a_session_is_dropped<R: Rt>() {
    let limits = HubLimits {
        bytes_per_second: 1000,
        ..HubLimits::default()
    };
    let (addr, handle) = start::<R>(limits, HttpRateLimits::default()).await;
    let mut a = peer(addr).await;
    let big = "x".repeat(400);
    for _ in 0..3 {
        send(&mut a, &big).await;
    }
    assert_eq!(next_text(&mut a).await, format!("echo {big}"));
    assert_eq!(next_text(&mut a).await, format!("echo {big}"));
    let notice: Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    assert_eq!(notice["payload"]["error"], "rate_limited");
    assert_eq!(notice["payload"]["limit"], "bytes");
    let counts = handle.hub().metrics().limits.rate_limited.snapshot();
    assert_eq!(counts.get(&("bytes", "drop")), Some(&1));
}

async fn a_join_over_the_room_cap_is_refused_with_an_error<R: Rt>() {
    let limits = HubLimits {
        max_rooms_per_session: 2,
        ..HubLimits::default()
    };
    let (addr, handle) = start::<R>(limits, HttpRateLimits::default()).await;
    let mut a = peer(addr).await;
    for room in ["a", "b", "c"] {
        send(&mut a, &format!("join {room}")).await;
    }
    assert_eq!(next_text(&mut a).await, "joined a");
    assert_eq!(next_text(&mut a).await, "joined b");
    let refused: Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"]["error"], "room_limit");
    assert_eq!(refused["payload"]["room"], "c");
    assert_eq!(refused["payload"]["limit"], 2);
    let mut rooms = handle.hub().rooms();
    rooms.sort();
    assert_eq!(rooms, ["a", "b"]);
    blocking(move || assert_eq!(metric(addr, "hubbub_ws_room_joins_refused_total"), 1)).await;
}

async fn a_join_of_an_overlong_or_empty_room_name_is_refused<R: Rt>() {
    // The default limits: room names of 1 to 128 bytes.
    let (addr, handle) = start::<R>(HubLimits::default(), HttpRateLimits::default()).await;
    let mut a = peer(addr).await;
    let (fits, long) = ("r".repeat(128), "r".repeat(60_000));
    for room in [fits.as_str(), long.as_str(), ""] {
        send(&mut a, &format!("join {room}")).await;
    }
    assert_eq!(next_text(&mut a).await, format!("joined {fits}"));
    let refused: Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"]["error"], "room_name_too_long");
    assert_eq!(refused["payload"]["length"], 60_000);
    assert_eq!(refused["payload"]["limit"], 128);
    let refused: Value = serde_json::from_str(&next_text(&mut a).await).unwrap();
    assert_eq!(refused["payload"]["error"], "room_name_empty");
    assert_eq!(handle.hub().rooms(), [fits]);
    // The session is still served.
    send(&mut a, "still here").await;
    assert_eq!(next_text(&mut a).await, "echo still here");
}

async fn beyond_max_connections_upgrades_get_503_until_a_slot_frees<R: Rt>() {
    let limits = HubLimits {
        max_connections: 2,
        ..HubLimits::default()
    };
    let (addr, handle) = start::<R>(limits, HttpRateLimits::default()).await;
    let (mut a, mut b) = (peer(addr).await, peer(addr).await);
    let (head, body, _) = blocking(move || upgrade(addr, "")).await;
    assert!(
        head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{head}"
    );
    assert!(head.contains("Retry-After: 1\r\n"), "{head}");
    assert_eq!(body, "server full: at most 2 connections");
    // The open sessions are unaffected.
    send(&mut a, "a").await;
    assert_eq!(next_text(&mut a).await, "echo a");
    send(&mut b, "b").await;
    assert_eq!(next_text(&mut b).await, "echo b");
    // Closing one frees its place (once its task has ended).
    a.close(None).await.unwrap();
    while let Some(Ok(_)) = bounded("a's end", a.next()).await {}
    let hub = handle.hub().clone();
    until("a's session gone", || hub.session_count() == 1).await;
    let mut c = bounded("a freed place", async {
        loop {
            if let Ok((ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await {
                break ws;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    send(&mut c, "c").await;
    assert_eq!(next_text(&mut c).await, "echo c");
    blocking(move || {
        let line = "hubbub_ws_connections_rejected_total{reason=\"max_connections\"}";
        assert!(metric(addr, line) >= 1);
    })
    .await;
}

async fn a_connection_in_its_handshake_counts_toward_max_connections<R: Rt>() {
    let limits = HubLimits {
        max_connections: 1,
        ..HubLimits::default()
    };
    // A WebSocket port (on a shared port, a connection is HTTP until its
    // upgrade request).
    let hub = Hub::builder().limits(limits).build();
    let handle = HubServer::<R>::bind("127.0.0.1:0", hub, Config::default().into())
        .await
        .unwrap()
        .start()
        .unwrap();
    let addr = handle.local_addr();
    blocking(move || {
        // Accepted, no request yet: it holds the one place.
        let idle = connect(addr);
        std::thread::sleep(Duration::from_millis(300));
        let (head, body, _) = upgrade(addr, "");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert_eq!(body, "server full: at most 1 connections");
        drop(idle);
        for attempt in 0.. {
            let (head, _, _open) = upgrade(addr, "");
            if head.starts_with("HTTP/1.1 101 ") {
                break;
            }
            assert!(attempt < 100, "the place never came back: {head}");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await;
}

async fn one_address_over_its_share_gets_429<R: Rt>() {
    let limits = HubLimits {
        max_connections_per_ip: 2,
        ..HubLimits::default()
    };
    let (addr, _handle) = start::<R>(limits, HttpRateLimits::default()).await;
    let (_a, _b) = (peer(addr).await, peer(addr).await);
    let (head, body, _) = blocking(move || upgrade(addr, "")).await;
    assert!(
        head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{head}"
    );
    assert_eq!(
        body,
        "too many connections from 127.0.0.1: at most 2 at once"
    );

    let limits = HubLimits {
        connections_per_ip_per_second: 2,
        ..HubLimits::default()
    };
    let (addr, _handle) = start::<R>(limits, HttpRateLimits::default()).await;
    blocking(move || {
        let (_a, _, _) = upgrade(addr, "");
        let (_b, _, _) = upgrade(addr, "");
        let (head, body, _) = upgrade(addr, "");
        assert!(
            head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{head}"
        );
        assert!(head.contains("Retry-After: 1\r\n"), "{head}");
        assert_eq!(
            body,
            "too many new connections from 127.0.0.1: at most 2 per second"
        );
        std::thread::sleep(Duration::from_millis(600));
        let (head, _, _open) = upgrade(addr, "");
        assert!(
            head.starts_with("HTTP/1.1 101 "),
            "after the window: {head}"
        );
        let line = "hubbub_ws_connections_rejected_total{reason=\"per_ip_rate\"}";
        assert_eq!(metric(addr, line), 1);
    })
    .await;
}

async fn http_routes_are_limited_per_address<R: Rt>() {
    let http = HttpRateLimits {
        send_per_second: 2,
        polls_per_ip: 1,
        ..HttpRateLimits::default()
    };
    let (addr, _handle) = start::<R>(HubLimits::default(), http).await;
    blocking(move || {
        let send = || {
            let body = r#"{"type":"note","payload":{}}"#;
            request(
                addr,
                &format!(
                    "POST /ws/send HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            )
        };
        assert_eq!(send().status, 202);
        assert_eq!(send().status, 202);
        let refused = send();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert_eq!(
            refused.json()["error"],
            "too many requests to /ws/send: at most 2 per second"
        );
        assert_eq!(
            get(addr, "/api/health").status,
            200,
            "other routes are free"
        );

        // One poll held; a second from the same address is refused at once.
        let mut held = connect(addr);
        held.write_all(b"GET /ws/poll?session_id=s&timeout=3 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let line = "hubbub_lp_polls_total";
        while metric(addr, line) < 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let second = get(addr, "/ws/poll?session_id=t&timeout=3");
        assert_eq!(second.status, 429);
        assert_eq!(
            second.json()["error"],
            "too many long polls from 127.0.0.1: at most 1 at once"
        );
        assert_eq!(read_answer(&mut held, false).status, 200);
        assert_eq!(get(addr, "/ws/poll?session_id=s&timeout=0").status, 200);
        let line = "hubbub_http_rate_limited_total{route=\"/ws/send\",reason=\"rate\"}";
        assert_eq!(metric(addr, line), 1);
        let line = "hubbub_http_rate_limited_total{route=\"/ws/poll\",reason=\"polls\"}";
        assert_eq!(metric(addr, line), 1);
    })
    .await;
}

hubbub_tests::cross_runtime!(
    origins_are_checked_at_the_upgrade_and_on_http,
    over_its_message_rate_a_session_is_dropped_and_told_once_a_second,
    over_its_rate_with_policy_close_a_session_is_closed_1008,
    over_its_byte_rate_a_session_is_dropped,
    a_join_over_the_room_cap_is_refused_with_an_error,
    a_join_of_an_overlong_or_empty_room_name_is_refused,
    beyond_max_connections_upgrades_get_503_until_a_slot_frees,
    a_connection_in_its_handshake_counts_toward_max_connections,
    one_address_over_its_share_gets_429,
    http_routes_are_limited_per_address,
);
