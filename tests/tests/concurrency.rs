//! Many connections at once, and a peer that vanishes mid-frame without
//! disturbing the others.

mod common;

use common::{bounded, echo_server, url};
use futures_util::StreamExt;
use hubbub_tests::prelude::*;
use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinSet};

const CONNECTIONS: usize = 300;
const MESSAGES: usize = 20;

async fn hundreds_of_concurrent_connections<R: Rt>() {
    let (addr, mut ends, _server) = echo_server::<R>(Config::default()).await;
    let mut clients = JoinSet::new();
    for c in 0..CONNECTIONS {
        let url = url(addr);
        clients.spawn(async move {
            let mut ws = connect::<R>(&url).await.unwrap();
            for m in 0..MESSAGES {
                ws.send(format!("{c}/{m}")).await.unwrap();
                let echo = ws.next().await.unwrap().unwrap();
                assert_eq!(echo, Message::Text(format!("{c}/{m}")));
            }
            let closed = ws.close(CloseCode::NORMAL, "").await.unwrap();
            assert!(closed.clean);
        });
    }
    let all = async {
        let mut done = 0;
        while let Some(result) = clients.join_next().await {
            result.unwrap();
            done += 1;
        }
        done
    };
    assert_eq!(bounded("all clients", all).await, CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let closed = bounded("server end", ends.recv()).await.unwrap().unwrap();
        assert_eq!((closed.code.0, closed.clean), (1000, true));
    }
}

/// A raw client that completes the handshake by hand.
async fn raw_client(addr: std::net::SocketAddr) -> TcpStream {
    use tokio::io::AsyncReadExt;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

async fn peer_vanishing_mid_frame_is_closed_1006_and_others_go_on<R: Rt>() {
    let (addr, mut ends, _server) = echo_server::<R>(Config::default()).await;
    let mut survivor = bounded("connect", connect::<R>(&url(addr))).await.unwrap();
    survivor.send("before").await.unwrap();
    assert_eq!(
        bounded("echo", survivor.recv()).await.unwrap().unwrap(),
        Message::Text("before".into())
    );

    for cut in [1usize, 2, 6, 10] {
        let mut raw = raw_client(addr).await;
        // A masked binary frame of 1000 bytes, cut after `cut` bytes (inside
        // the header for small cuts, inside the payload for larger ones).
        let mut frame = vec![0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4];
        frame.extend(std::iter::repeat_n(0u8, 1000));
        raw.write_all(&frame[..cut.min(frame.len())]).await.unwrap();
        if cut == 10 {
            raw.write_all(&frame[10..500]).await.unwrap();
        }
        drop(raw);
        let closed = bounded("server end", ends.recv()).await.unwrap().unwrap();
        assert_eq!((closed.code.0, closed.clean), (1006, false), "cut at {cut}");
    }

    // The other connection did not notice.
    for i in 0..10 {
        survivor.send(format!("after {i}")).await.unwrap();
        let echo = bounded("echo", survivor.recv()).await.unwrap().unwrap();
        assert_eq!(echo, Message::Text(format!("after {i}")));
    }
    assert!(survivor.is_open());
}

async fn peer_resetting_the_connection_is_closed_1006<R: Rt>() {
    let (addr, mut ends, _server) = echo_server::<R>(Config::default()).await;
    let mut raw = raw_client(addr).await;
    raw.write_all(&[0x81, 0x85, 0, 0, 0]).await.unwrap();
    // SO_LINGER 0: the close sends a reset instead of a FIN.
    raw.set_zero_linger().unwrap();
    drop(raw);
    let closed = bounded("server end", ends.recv()).await.unwrap().unwrap();
    assert_eq!((closed.code.0, closed.clean), (1006, false));
}

hubbub_tests::cross_runtime!(
    hundreds_of_concurrent_connections,
    peer_vanishing_mid_frame_is_closed_1006_and_others_go_on,
    peer_resetting_the_connection_is_closed_1006,
);
