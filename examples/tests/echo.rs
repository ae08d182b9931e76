//! The `echo` binary as other programs use it (`examples/README.md`,
//! "echo"), driven by tokio-tungstenite.

mod common;

use common::{close, connect, each_runtime, next, run_to_end, runtime, send, send_binary, start};

const ECHO: &str = env!("CARGO_BIN_EXE_echo");

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
    each_runtime(echoes_in_order_and_exits_on_sigterm_once);
}

fn echoes_in_order_and_exits_on_sigterm_once() {
    let server = start(
        ECHO,
        &["--port", "0", "--max-message", "100000", "--deflate"],
        None,
        &[],
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
    assert_eq!(
        extension_answer(port).as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    assert!(server.terminate().success());
}

/// On one loop (`HUBBUB_MIO_THREADS=1`), the mio program is one thread
/// (besides the log's writers): connections, timers and the signal wait all
/// live on `block_on_local`'s loop. With two loops, tasks spread over two
/// loop threads.
#[test]
fn mio_with_one_loop_is_one_thread_and_still_exits_on_sigterm() {
    for (loops, threads) in [("1", 1), ("2", 3)] {
        let server = start(
            ECHO,
            &["--runtime", "mio", "--port", "0"],
            None,
            &[("HUBBUB_MIO_THREADS", loops)],
        );
        let port = port(&server);
        runtime().block_on(async {
            let mut ws = connect(&format!("ws://127.0.0.1:{port}/")).await;
            send(&mut ws, "hello").await;
            assert_eq!(next(&mut ws).await, "hello");
            let names = server.thread_names();
            assert_eq!(
                names.len(),
                threads,
                "HUBBUB_MIO_THREADS={loops}: {names:?}"
            );
            close(ws).await;
        });
        assert!(server.terminate().success(), "HUBBUB_MIO_THREADS={loops}");
    }
}

/// On tokio the programs run on a current-thread runtime, one thread
/// (besides the log's writers); `TOKIO_WORKER_THREADS=2` gives a
/// multi-thread runtime with two workers, which serves as well.
#[test]
fn tokio_runs_on_one_thread_or_on_the_workers_asked_for() {
    for (workers, expected) in [(None, 0), (Some("2"), 2)] {
        let env: Vec<_> = workers
            .map(|n| ("TOKIO_WORKER_THREADS", n))
            .into_iter()
            .collect();
        let server = start(ECHO, &["--runtime", "tokio", "--port", "0"], None, &env);
        let port = port(&server);
        runtime().block_on(async {
            let mut ws = connect(&format!("ws://127.0.0.1:{port}/")).await;
            for n in 0..20 {
                send(&mut ws, &format!("m{n}")).await;
            }
            for n in 0..20 {
                assert_eq!(next(&mut ws).await, format!("m{n}"));
            }
            let names = server.thread_names();
            let workers_seen = names
                .iter()
                .filter(|name| name.starts_with("tokio-r"))
                .count();
            assert_eq!(workers_seen, expected, "{workers:?}: {names:?}");
            close(ws).await;
        });
        assert!(server.terminate().success(), "{workers:?}");
    }
}

/// The `Sec-WebSocket-Extensions` answer to an upgrade offering
/// permessage-deflate (raw, over a blocking socket with timeouts).
fn extension_answer(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_owned)
}

#[test]
fn deflate_takeover_and_off() {
    let server = start(ECHO, &["--port", "0", "--deflate-takeover"], None, &[]);
    assert_eq!(
        extension_answer(port(&server)).as_deref(),
        Some("permessage-deflate")
    );
    assert!(server.terminate().success());
    let server = start(ECHO, &["--port", "0"], None, &[]);
    assert_eq!(extension_answer(port(&server)), None);
    assert!(server.terminate().success());
    let (code, _, stderr) = run_to_end(
        ECHO,
        &["--port", "1", "--deflate", "--deflate-takeover"],
        None,
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("exclude each other"), "{stderr}");
}

#[test]
fn broadcast_reaches_every_other_client_in_order() {
    each_runtime(broadcast_reaches_every_other_client_in_order_once);
}

fn broadcast_reaches_every_other_client_in_order_once() {
    let server = start(ECHO, &["--port", "0", "--broadcast"], None, &[]);
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

/// A self-signed certificate for 127.0.0.1 (which is its own CA) and its
/// key, as PEM files in `dir`.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (cert_file, key_file)
}

#[test]
fn tls_files_that_are_missing_or_bad_exit_2_naming_the_file() {
    let dir = common::temp_dir("echo-tls-bad");
    let (cert, key) = self_signed(&dir);
    let text = dir.join("text.pem");
    std::fs::write(&text, "not PEM\n").unwrap();
    let missing = dir.join("missing.pem");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    for (cert, key, named, why) in [
        (path(&missing), path(&key), path(&missing), "No such file"),
        (path(&cert), path(&text), path(&text), "no private key"),
        (path(&text), path(&key), path(&text), "no certificate"),
    ] {
        let args = ["--port", "0", "--tls-cert", &cert, "--tls-key", &key];
        let (code, _, stderr) = run_to_end(ECHO, &args, None, &[]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(&named) && stderr.contains(why), "{stderr}");
    }
    let (code, _, stderr) = run_to_end(ECHO, &["--port", "0", "--tls-key", "k"], None, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--tls-cert and --tls-key go together"),
        "{stderr}"
    );
}

#[test]
fn echoes_over_wss_with_tls_files() {
    let dir = common::temp_dir("echo-tls");
    let (cert, key) = self_signed(&dir);
    each_runtime(|| {
        let args = [
            "--port",
            "0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ];
        let server = start(ECHO, &args, None, &[]);
        assert!(
            server.listening.contains("(wss://)"),
            "{}",
            server.listening
        );
        let port = port(&server);
        runtime().block_on(async {
            let config = hubbub_tokio::ClientConfig::default()
                .trust_pem_ca(&cert)
                .unwrap();
            let url = format!("wss://127.0.0.1:{port}/");
            let (mut ws, _) = hubbub_tokio::connect_with(url.as_str(), &config)
                .await
                .unwrap();
            assert!(ws.get_ref().is_tls());
            ws.send("over TLS").await.unwrap();
            let echoed = ws.recv().await.unwrap().unwrap();
            assert_eq!(echoed.as_text(), Some("over TLS"));
            // Plain ws:// to the TLS port: refused, the server goes on.
            assert!(hubbub_tokio::connect(format!("ws://127.0.0.1:{port}/"))
                .await
                .is_err());
            ws.send("still here").await.unwrap();
            let echoed = ws.recv().await.unwrap().unwrap();
            assert_eq!(echoed.as_text(), Some("still here"));
        });
        assert!(server.terminate().success());
    });
}
