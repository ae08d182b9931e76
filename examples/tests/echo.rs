//! The `echo` binary as other programs use it (DESIGN.md §6).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hubbub_tokio::{CloseCode, Message};

const ECHO: &str = env!("CARGO_BIN_EXE_echo");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_to_end(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(ECHO).args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn other_runtimes_are_not_available_yet() {
    for runtime in ["smol", "mio"] {
        let (code, stderr) = run_to_end(&["--port", "1", "--runtime", runtime]);
        assert_eq!(code, Some(2));
        assert!(
            stderr.contains(&format!("runtime {runtime} is not available yet")),
            "{stderr}"
        );
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    let (code, stderr) = run_to_end(&["--port", "1", "--runtime", "async-std"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown runtime \"async-std\""), "{stderr}");
    let (code, stderr) = run_to_end(&[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--port is required"), "{stderr}");
    let (code, stderr) = run_to_end(&["--port", "1", "--broadcast"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not available yet"), "{stderr}");
}

#[test]
fn echoes_in_order_and_exits_on_sigterm() {
    let port = free_port();
    let mut child = Command::new(ECHO)
        .args([
            "--port",
            &port.to_string(),
            "--max-message",
            "100000",
            "--deflate",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line:?}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("ws://127.0.0.1:{port}/");
        let config = hubbub_tokio::ClientConfig {
            config: std::sync::Arc::new(hubbub_tokio::Config {
                max_message_size: 1 << 20,
                ..Default::default()
            }),
            ..Default::default()
        };
        let connecting = hubbub_tokio::connect_with(&url, &config);
        let mut ws = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .unwrap()
            .unwrap();
        let sent = vec![
            Message::Text("hello".into()),
            Message::Binary(vec![1, 2, 3].into()),
            Message::Text(String::new()),
            Message::Binary(vec![9; 100_000].into()),
        ];
        for message in &sent {
            ws.feed(message.clone()).await.unwrap();
        }
        ws.flush().await.unwrap();
        for expected in &sent {
            let got = tokio::time::timeout(Duration::from_secs(10), ws.recv())
                .await
                .unwrap();
            assert_eq!(&got.unwrap().unwrap(), expected);
        }
        // Over --max-message: closed with 1009.
        ws.send(Message::Binary(vec![0; 100_001].into()))
            .await
            .unwrap();
        assert!(tokio::time::timeout(Duration::from_secs(10), ws.recv())
            .await
            .unwrap()
            .is_none());
        assert_eq!(ws.closed().unwrap().code, CloseCode::MESSAGE_TOO_BIG);
    });

    // SIGTERM: a clean exit.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "echo did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("--deflate is ignored"), "{stderr}");
}
