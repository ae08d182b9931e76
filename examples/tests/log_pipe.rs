//! The programs log through a non-blocking writer (`hubbub_examples::log`):
//! a `chat` whose stdout and stderr pipes are never read still serves.
//! Hundreds of clients that break the protocol each make a `connected`,
//! a `disconnected` (stdout) and an error line (stderr), far more than a
//! pipe holds; with blocking prints the server would stop at the first
//! full pipe.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{connect, each_runtime, next, ports_in, runtime, runtime_args, temp_dir, WAIT};

const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// Clients that break the protocol: about 130 bytes of log each, 260 KiB
/// in all, four times what a Linux pipe holds.
const CLIENTS: usize = 2000;

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A masked text frame with the reserved bits set: a protocol error.
const BAD_FRAME: &[u8] = b"\xf1\x80\x00\x00\x00\x00";

#[test]
fn chat_serves_while_its_log_pipes_are_not_read() {
    each_runtime(|| {
        let store = temp_dir("log-pipe").join("chat.db");
        let mut child = Command::new(CHAT)
            .args(runtime_args())
            .env("SERVER_PORT", "0")
            .env("WEBSOCKET_PORT", "0")
            .env("STORE_PATH", &store)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/chat"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chat");
        // Read up to the `listening` line, then nothing more: both pipes
        // stay open and unread.
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let _stderr = child.stderr.take().expect("stderr");
        let mut line = String::new();
        while !line.contains("listening") {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read stdout");
            assert!(n > 0, "chat ended before its listening line");
        }
        let ws_port = ports_in(&line)[1];

        let started = Instant::now();
        for _ in 0..CLIENTS {
            if started.elapsed() > Duration::from_secs(60) {
                break; // the check below fails
            }
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", ws_port)) else {
                continue;
            };
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let _ = stream.write_all(UPGRADE);
            let _ = stream.write_all(BAD_FRAME);
            // Read the 101, the welcome and the close until the server ends.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }

        // A client is still served, within the usual wait.
        let served = runtime().block_on(async {
            let mut peer = connect(&format!("ws://127.0.0.1:{ws_port}/")).await;
            next(&mut peer).await
        });
        assert_eq!(served, "welcome to hubbub chat");
        assert!(
            started.elapsed() < Duration::from_secs(60) + WAIT,
            "clients were answered slowly: {:?}",
            started.elapsed()
        );
        let _ = child.kill();
        let _ = child.wait();
    });
}
