//! permessage-deflate over loopback: our client offers it, our server
//! accepts it, and messages of many sizes round-trip compressed. The
//! `python_server` test runs against a Python `websockets` server started
//! by `scripts/interop-python.sh`.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{bounded, echo_server, payload, url};
use hubbub_core::DeflateConfig;
use hubbub_tests::prelude::*;

fn deflate_config(deflate: DeflateConfig) -> Config {
    Config {
        max_message_size: 16 << 20,
        deflate: Some(deflate),
        ..Config::default()
    }
}

/// JSON-like text of `len` bytes.
fn json(len: usize) -> String {
    let unit = r#"{"type":"chat.message","payload":{"room":"lobby","text":"hello, world"}}"#;
    unit.repeat(len / unit.len() + 1)[..len].to_owned()
}

/// Connect to `address` offering `deflate`, check the negotiated extension
/// starts with `expected`, and round-trip messages of many sizes.
async fn round_trips<R: Rt>(address: &str, deflate: DeflateConfig, expected: &str) {
    let config = ClientConfig {
        config: Arc::new(deflate_config(deflate)),
        ..Default::default()
    };
    let mut ws = bounded("connect", connect_with::<R>(address, &config))
        .await
        .unwrap();
    let negotiated = ws.extensions().unwrap_or_default().to_owned();
    assert!(
        negotiated.starts_with(expected),
        "negotiated {negotiated:?}"
    );
    for len in [
        0,
        1,
        100,
        127,
        128,
        1000,
        1024,
        4096,
        65_535,
        65_536,
        300_000,
        2 << 20,
    ] {
        for message in [
            Message::Text(json(len)),
            Message::Binary(Bytes::from(payload(len, len as u8))),
        ] {
            ws.send(message.clone()).await.unwrap();
            let echo = bounded("echo", ws.recv()).await.unwrap().unwrap();
            assert!(
                echo == message,
                "{len}-byte message changed on the way back"
            );
        }
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert!(bounded("end", ws.recv()).await.is_none());
}

async fn our_client_and_server_negotiate_and_round_trip<R: Rt>() {
    let server_config = deflate_config(DeflateConfig::default());
    let (addr, _ends, _server) = echo_server::<R>(server_config).await;
    round_trips::<R>(
        &url(addr),
        DeflateConfig::default(),
        "permessage-deflate; server_no_context_takeover",
    )
    .await;
    let takeover = DeflateConfig {
        server_no_context_takeover: false,
        client_max_window_bits: Some(10),
        ..DeflateConfig::default()
    };
    round_trips::<R>(&url(addr), takeover, "permessage-deflate").await;
}

async fn server_without_deflate_declines_the_offer<R: Rt>() {
    let (addr, _ends, _server) = echo_server::<R>(Config::default()).await;
    let config = ClientConfig {
        config: Arc::new(deflate_config(DeflateConfig::default())),
        ..Default::default()
    };
    let mut ws = bounded("connect", connect_with::<R>(&url(addr), &config))
        .await
        .unwrap();
    assert_eq!(ws.extensions(), None);
    ws.send(Message::Text(json(1000))).await.unwrap();
    let echo = bounded("echo", ws.recv()).await.unwrap().unwrap();
    assert_eq!(echo, Message::Text(json(1000)));
}

/// Our client against a Python `websockets` echo server with compression,
/// at `HUBBUB_INTEROP_URL` (set by `scripts/interop-python.sh`), on every
/// runtime of `cross_runtime!` (tokio, smol, mio).
#[test]
#[ignore = "needs the Python server: run scripts/interop-python.sh"]
fn python_server() {
    hubbub_tests::run(python_round_trips::<hubbub_tests::Tokio>());
    hubbub_tests::run(python_round_trips::<hubbub_tests::Smol>());
    hubbub_tests::run(python_round_trips::<hubbub_tests::Mio>());
}

async fn python_round_trips<R: Rt>() {
    let address = std::env::var("HUBBUB_INTEROP_URL")
        .expect("HUBBUB_INTEROP_URL: the URL of the Python websockets echo server");
    round_trips::<R>(
        &address,
        DeflateConfig {
            server_no_context_takeover: false,
            ..DeflateConfig::default()
        },
        "permessage-deflate",
    )
    .await;
    round_trips::<R>(
        &address,
        DeflateConfig::default(),
        "permessage-deflate; server_no_context_takeover",
    )
    .await;
    round_trips::<R>(
        &address,
        DeflateConfig {
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(9),
            ..DeflateConfig::default()
        },
        "permessage-deflate",
    )
    .await;
}

hubbub_tests::cross_runtime!(
    our_client_and_server_negotiate_and_round_trip,
    server_without_deflate_declines_the_offer,
);
