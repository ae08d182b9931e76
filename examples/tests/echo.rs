//! The `echo` binary as other programs use it (DESIGN.md §6), driven by
//! tokio-tungstenite.

mod common;

use common::{close, connect, next, run_to_end, runtime, send, send_binary, start};

const ECHO: &str = env!("CARGO_BIN_EXE_echo");

/// The runtimes `echo` serves on.
const RUNTIMES: [&str; 2] = ["tokio", "mio"];

#[test]
fn other_runtimes_are_not_available_yet() {
    let (code, _, stderr) = run_to_end(ECHO, &["--port", "1", "--runtime", "smol"], None, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("runtime smol is not available yet"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    for (args, expected) in [
        (
            &["--port", "1", "--runtime", "async-std"][..],
            "unknown runtime \"async-std\"",
        ),
        (&[], "--port is required"),
        (&["--port", "x"], "invalid --port \"x\""),
        (
            &["--port", "1", "--max-message", "0"],
            "invalid --max-message \"0\"",
        ),
        (&["--port", "1", "--loud"], "unknown argument \"--loud\""),
    ] {
        let (code, _, stderr) = run_to_end(ECHO, args, None, &[]);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: echo --port P"), "{stderr}");
    }
    let (code, stdout, _) = run_to_end(ECHO, &["--help"], None, &[]);
    assert_eq!((code, stdout.starts_with("usage: echo")), (Some(0), true));
}

#[test]
fn echoes_in_order_and_exits_on_sigterm() {
    for runtime in RUNTIMES {
        echoes_in_order_on(runtime);
    }
}

fn echoes_in_order_on(name: &str) {
    let server = start(
        ECHO,
        &[
            "--port",
            "0",
            "--max-message",
            "100000",
            "--deflate",
            "--runtime",
            name,
        ],
        None,
        &[],
    );
    assert!(
        server.listening.ends_with(&format!("(runtime {name})")),
        "{}",
        server.listening
    );
    let port = port(&server);
    runtime().block_on(async {
        let mut ws = connect(&format!("ws://127.0.0.1:{port}/")).await;
        send(&mut ws, "hello").await;
        send_binary(&mut ws, &[1, 2, 3]).await;
        send(&mut ws, "").await;
        send_binary(&mut ws, &[b'x'; 100_000]).await;
        assert_eq!(next(&mut ws).await, "hello");
        assert_eq!(next(&mut ws).await, "binary:\u{1}\u{2}\u{3}");
        assert_eq!(next(&mut ws).await, "");
        assert_eq!(
            next(&mut ws).await,
            format!("binary:{}", "x".repeat(100_000))
        );
        // Over --max-message: closed with 1009.
        send_binary(&mut ws, &[0; 100_001]).await;
        assert_eq!(next(&mut ws).await, "close 1009");
    });
    let stderr = server.stderr();
    assert!(server.terminate().success());
    assert!(stderr.contains("--deflate is ignored"), "{stderr}");
}

#[test]
fn broadcast_reaches_every_other_client_in_order() {
    for runtime in RUNTIMES {
        broadcast_on(runtime);
    }
}

fn broadcast_on(name: &str) {
    let server = start(
        ECHO,
        &["--port", "0", "--broadcast", "--runtime", name],
        None,
        &[],
    );
    assert!(
        server.listening.contains("broadcast"),
        "{}",
        server.listening
    );
    let port = port(&server);
    runtime().block_on(async {
        let url = format!("ws://127.0.0.1:{port}/");
        let (mut a, mut b, mut c) = (
            connect(&url).await,
            connect(&url).await,
            connect(&url).await,
        );
        // c's message reaching a and b shows all three are registered.
        send(&mut c, "ready").await;
        assert_eq!(next(&mut a).await, "ready");
        assert_eq!(next(&mut b).await, "ready");
        send(&mut a, "one").await;
        send_binary(&mut a, b"two").await;
        for i in 0..100 {
            send(&mut a, &format!("n{i}")).await;
        }
        for peer in [&mut b, &mut c] {
            assert_eq!(next(peer).await, "one");
            assert_eq!(next(peer).await, "binary:two");
            for i in 0..100 {
                assert_eq!(next(peer).await, format!("n{i}"));
            }
        }
        // The sender got none of its own: the next thing it receives is b's.
        send(&mut b, "from b").await;
        assert_eq!(next(&mut a).await, "from b");
        assert_eq!(next(&mut c).await, "from b");
        // A client that left is skipped; the others go on.
        close(c).await;
        send(&mut a, "after c").await;
        assert_eq!(next(&mut b).await, "after c");
        close(a).await;
        close(b).await;
    });
    assert!(server.terminate().success());
}

/// The port of `echo: listening on 127.0.0.1:PORT ...`.
fn port(server: &common::Running) -> u16 {
    let addr = server
        .listening
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {:?}", server.listening));
    addr["127.0.0.1:".len()..].parse().unwrap()
}
