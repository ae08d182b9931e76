//! The native client's typed side against our HubServer: `send_json` on
//! every client type, and the callback client (`Client::builder`) with its
//! handle, typed events, errors, closing and reconnection.

mod common;

use std::{sync::Arc, time::Duration};

use common::{bounded, start_hub};
use hubbub_tests::prelude::*;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

/// A server that answers typed events: `echo` sends the payload back as
/// `echoed`, `kick` closes the session with 4000.
fn typed_server() -> Hub {
    Hub::builder()
        .on_open(|s| {
            s.send_text("welcome").unwrap();
            s.send_json("hello", json!({"id": s.id()})).unwrap();
        })
        .on_typed_message(|s, envelope| match envelope.event_type.as_str() {
            "echo" => s.send_json("echoed", envelope.payload.clone()).unwrap(),
            "kick" => s.close(CloseCode(4000), "kicked"),
            "room.join" => {
                let room = envelope.payload["room"].as_str().unwrap_or("general");
                s.hub().unwrap().join(s, room);
                s.send_json("joined", json!({"room": room})).unwrap();
            }
            kind => s.send_json("app.unknown", json!({"type": kind})).unwrap(),
        })
        .on_binary(|s, data| {
            s.send_binary(data.clone()).unwrap();
        })
        .build()
}

/// What the callback client saw.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Open(u64),
    Text(String),
    Typed(String, Value),
    Binary(Vec<u8>),
    Close(u16, String),
    Error(String),
}

fn recording_client<R: Rt>(url: String) -> (ClientBuilder<R>, mpsc::UnboundedReceiver<Got>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let [t1, t2, t3, t4, t5, t6] = [(); 6].map(|_| tx.clone());
    // The sends below ignore a dropped receiver: a client still calls back
    // (closing, reconnecting) after a test has stopped reading `rx`; what a
    // test expects, it asserts on `rx`.
    let builder = Client::<R>::builder(url)
        .on_open(move |c| {
            let _ = t1.send(Got::Open(c.reconnects()));
        })
        .on_message(move |_, text| {
            let _ = t2.send(Got::Text(text.into()));
        })
        .on_typed_message(move |_, envelope| {
            let typed = Got::Typed(envelope.event_type.clone(), envelope.payload.clone());
            let _ = t3.send(typed);
        })
        .on_binary(move |_, data| {
            let _ = t4.send(Got::Binary(data.to_vec()));
        })
        .on_close(move |_, code, reason| {
            let _ = t5.send(Got::Close(code.0, reason.into()));
        })
        .on_error(move |_, error| {
            let _ = t6.send(Got::Error(error.to_string()));
        });
    (builder, rx)
}

/// The next callback that `want` picks, skipping others.
async fn skip_to(rx: &mut mpsc::UnboundedReceiver<Got>, want: fn(&Got) -> bool) -> Got {
    loop {
        let g = got(rx).await;
        if want(&g) {
            return g;
        }
    }
}

async fn got(rx: &mut mpsc::UnboundedReceiver<Got>) -> Got {
    bounded("a client callback", rx.recv())
        .await
        .expect("client alive")
}

/// The next `n` callbacks.
async fn got_n(rx: &mut mpsc::UnboundedReceiver<Got>, n: usize) -> Vec<Got> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(got(rx).await);
    }
    all
}

async fn send_json_on_websocket_split_half_and_client<R: Rt>() {
    let server = start_hub::<R>(typed_server()).await;
    let url = format!("ws://{}/", server.local_addr());
    let text = |m: Option<Result<Message, Error>>| match m {
        Some(Ok(Message::Text(t))) => t,
        other => panic!("{other:?}"),
    };

    let mut ws = connect::<R>(&url).await.unwrap();
    assert_eq!(text(ws.recv().await), "welcome");
    text(ws.recv().await);
    ws.send(Envelope::new("echo", json!({"a": [1, {"b": null}]})).to_json())
        .await
        .unwrap();
    assert_eq!(
        text(bounded("echo", ws.recv()).await),
        r#"{"type":"echoed","payload":{"a":[1,{"b":null}]}}"#
    );

    let (mut tx, mut rx) = ws.split();
    tx.send(Envelope::new("nope", Value::Null).to_json())
        .await
        .unwrap();
    let reply = futures_util::StreamExt::next(&mut rx).await;
    assert_eq!(
        text(reply),
        r#"{"type":"app.unknown","payload":{"type":"nope"}}"#
    );

    let mut client = Client::<R>::connect(&url, ClientConfig::default())
        .await
        .unwrap();
    for _ in 0..2 {
        bounded("hello", client.next_event()).await; // welcome, hello
    }
    client
        .send_json("echo", json!("plain string"))
        .await
        .unwrap();
    match bounded("echo", client.next_event()).await {
        Some(Ok(ClientEvent::Message(Message::Text(t)))) => {
            assert_eq!(t, r#"{"type":"echoed","payload":"plain string"}"#)
        }
        other => panic!("{other:?}"),
    }
    client.close(CloseCode::NORMAL, "").await.unwrap();
    tx.close(CloseCode::NORMAL, "").await.unwrap();
    while bounded("close", futures_util::StreamExt::next(&mut rx))
        .await
        .is_some()
    {}
    server.shutdown(Duration::from_secs(1)).await;
}

async fn callback_client_mirrors_the_server<R: Rt>() {
    let server = start_hub::<R>(typed_server()).await;
    let url = format!("ws://{}/", server.local_addr());
    let (builder, mut rx) = recording_client::<R>(url);
    let client = builder
        .on_open(|c| {
            // Sends from on_open go out first.
            c.send_json("room.join", json!({"room": "dev"})).unwrap();
        })
        .connect()
        .await
        .unwrap();
    // `on_open` was replaced by the one above; the recording starts with
    // the server's greeting: raw first, then typed for envelopes only.
    assert_eq!(
        got_n(&mut rx, 5).await,
        vec![
            Got::Text("welcome".into()),
            Got::Text(r#"{"type":"hello","payload":{"id":1}}"#.into()),
            Got::Typed("hello".into(), json!({"id": 1})),
            Got::Text(r#"{"type":"joined","payload":{"room":"dev"}}"#.into()),
            Got::Typed("joined".into(), json!({"room": "dev"})),
        ]
    );
    assert!(client.is_connected());
    assert_eq!(client.peer_addr(), Some(server.local_addr()));
    assert_eq!(server.hub().rooms(), vec!["dev"]);

    // The handle sends from anywhere; nested payloads survive both ways.
    let nested = json!({"list": [1, 2, {"deep": {"deeper": [true, null]}}], "s": "é"});
    client.send_json("echo", nested.clone()).unwrap();
    client.send_binary(vec![9u8, 8, 7]).unwrap();
    client.send_text("not an envelope").unwrap();
    let echoed = format!(r#"{{"type":"echoed","payload":{nested}}}"#);
    assert_eq!(
        got_n(&mut rx, 3).await,
        vec![
            Got::Text(echoed),
            Got::Typed("echoed".into(), nested),
            Got::Binary(vec![9, 8, 7]),
        ]
    );

    // Closing from the handle: on_close with the echoed code, then the end.
    client.close(CloseCode(4100), "done here");
    assert_eq!(got(&mut rx).await, Got::Close(4100, String::new()));
    bounded("the client ends", client.closed()).await;
    assert!(!client.is_connected());
    assert_eq!(client.send_text("late"), Err(SendError::Closed));
    assert!(rx.recv().await.is_none(), "no further callbacks, task gone");
    server.shutdown(Duration::from_secs(1)).await;
}

async fn a_server_close_reaches_on_close_and_ends_the_client<R: Rt>() {
    let server = start_hub::<R>(typed_server()).await;
    let (builder, mut rx) = recording_client::<R>(format!("ws://{}/", server.local_addr()));
    let client = builder.connect().await.unwrap();
    assert_eq!(got(&mut rx).await, Got::Open(0));
    got_n(&mut rx, 3).await; // welcome, hello (raw + typed)
    client.send_json("kick", Value::Null).unwrap();
    assert_eq!(got(&mut rx).await, Got::Close(4000, "kicked".into()));
    bounded("the client ends (no reconnect)", client.closed()).await;
    assert!(rx.recv().await.is_none());
    server.shutdown(Duration::from_secs(1)).await;
}

async fn the_client_reconnects_and_on_open_runs_again<R: Rt>() {
    let hub = typed_server();
    let server = start_hub::<R>(hub.clone()).await;
    let addr = server.local_addr();
    let config = ClientConfig {
        reconnect: Some(Reconnect {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_attempts: None,
            jitter: 0.0,
        }),
        ..ClientConfig::default()
    };
    let (builder, mut rx) = recording_client::<R>(format!("ws://{addr}/"));
    let client = builder
        .config(config)
        .on_open(|c| {
            // Rejoin on every connection.
            c.send_json("room.join", json!({"room": "news"}))
                .expect("queue the join on the new connection");
        })
        .connect()
        .await
        .unwrap();
    skip_to(&mut rx, |g| matches!(g, Got::Typed(k, _) if k == "joined")).await;

    // The server goes away (1001), and comes back on the same port.
    server.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        skip_to(&mut rx, |g| matches!(g, Got::Close(..))).await,
        Got::Close(1001, "server shutting down".into())
    );
    assert!(!client.is_connected());
    let hub2 = typed_server();
    let server2 = HubServer::<R>::bind(addr, hub2.clone(), Arc::new(Config::default()))
        .await
        .unwrap()
        .start()
        .unwrap();
    skip_to(&mut rx, |g| matches!(g, Got::Typed(k, _) if k == "joined")).await;
    assert_eq!(client.reconnects(), 1);
    assert_eq!(hub2.rooms(), vec!["news"], "on_open rejoined");
    client.send_json("echo", json!(2)).unwrap();
    assert_eq!(
        skip_to(&mut rx, |g| matches!(g, Got::Typed(..))).await,
        Got::Typed("echoed".into(), json!(2))
    );

    // While the server is down, attempts fail and are reported; close()
    // stops the waiting client at once.
    server2.shutdown(Duration::from_secs(1)).await;
    skip_to(&mut rx, |g| matches!(g, Got::Close(..))).await;
    assert!(matches!(
        skip_to(&mut rx, |g| matches!(g, Got::Error(_))).await,
        Got::Error(e) if e.contains("TCP connect failed")
    ));
    assert_eq!(client.send_text("nobody there"), Err(SendError::Closed));
    client.close(CloseCode::NORMAL, "");
    bounded("close() ends the reconnection wait", client.closed()).await;
    drop(hub);
}

/// A server written by hand that completes the handshake, then sends
/// `bytes` (breaking the protocol) and waits for the client's close.
async fn misbehaving_server(bytes: Vec<u8>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .or_else(|| {
                head.lines()
                    .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            })
            .unwrap();
        let accept =
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.write_all(response.as_bytes()).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        // The client's close frame (short: one length byte), then we close
        // the TCP connection first, as a server does.
        let mut frame = vec![0u8; 2];
        stream.read_exact(&mut frame).await.unwrap();
        let rest = 4 + (frame[1] & 0x7f) as usize;
        frame.resize(2 + rest, 0);
        stream.read_exact(&mut frame[2..]).await.unwrap();
        frame
    });
    (url, task)
}

async fn a_protocol_error_reaches_on_error_then_on_close<R: Rt>() {
    // A masked frame from a server (1002), then text that is not UTF-8 (1007).
    for (frame, code) in [
        (
            common::raw::encode(true, common::raw::TEXT, b"hi", true),
            1002u16,
        ),
        (
            common::raw::encode(true, common::raw::TEXT, b"\xc3\x28", false),
            1007,
        ),
    ] {
        let (url, server) = misbehaving_server(frame).await;
        let (builder, mut rx) = recording_client::<R>(url);
        let client = builder.connect().await.unwrap();
        assert_eq!(got(&mut rx).await, Got::Open(0));
        match got(&mut rx).await {
            Got::Error(e) => assert!(e.starts_with("protocol error"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(got(&mut rx).await, Got::Close(c, _) if c == code));
        bounded("end", client.closed()).await;
        // The client told the server why, with the code, in a masked close.
        let rest = bounded("server", server).await.unwrap();
        assert_eq!(rest[1] & 0x80, 0x80, "masked");
        assert_eq!(rest[0], 0x88, "a close frame");
        let payload: Vec<u8> = rest[6..8]
            .iter()
            .zip(&rest[2..4])
            .map(|(b, k)| b ^ k)
            .collect();
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
    }
}

hubbub_tests::cross_runtime!(
    send_json_on_websocket_split_half_and_client,
    callback_client_mirrors_the_server,
    a_server_close_reaches_on_close_and_ends_the_client,
    the_client_reconnects_and_on_open_runs_again,
    a_protocol_error_reaches_on_error_then_on_close,
);
