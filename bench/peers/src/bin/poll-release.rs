//! The long-polling release benchmark (`bench/http.sh`): holds N polls of
//! `room:bench` on a hubbub HTTP server, waits until the server counts them
//! all (`hubbub_lp_polls_total` on `/metrics`), sends one message to the
//! room with `POST /ws/send`, and reports the time from that send to the
//! last poll's answer, as a JSON line.
//!
//! `poll-release HOST:PORT [N]` (default 1000).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinSet,
};

const POLL: &str = "GET /ws/poll?session_id=room:bench&timeout=60 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
const BODY: &str = r#"{"type":"chat.message","room":"bench","payload":{"text":"go"}}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next().and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: poll-release HOST:PORT [N]");
        std::process::exit(2);
    };
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("failed to build the tokio runtime");
    runtime.block_on(run(addr, n));
}

/// One request on a fresh connection; the whole answer (the server closes).
async fn exchange(addr: SocketAddr, request: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    answer
}

async fn polls_counted(addr: SocketAddr) -> u64 {
    let metrics = exchange(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .await;
    String::from_utf8_lossy(&metrics)
        .lines()
        .find(|l| l.starts_with("hubbub_lp_polls_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

async fn run(addr: SocketAddr, n: usize) {
    let before = polls_counted(addr).await;
    let mut polls = JoinSet::new();
    for _ in 0..n {
        polls.spawn(async move {
            let answer = exchange(addr, POLL).await;
            let done = Instant::now();
            assert!(
                answer.starts_with(b"HTTP/1.1 200 "),
                "{}",
                String::from_utf8_lossy(&answer)
            );
            let text = String::from_utf8_lossy(&answer);
            assert!(text.contains(r#""text":"go""#), "no message: {text}");
            done
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while polls_counted(addr).await < before + n as u64 {
        assert!(
            Instant::now() < deadline,
            "the polls were not all held in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let send = format!(
        "POST /ws/send HTTP/1.1\r\nHost: b\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let start = Instant::now();
    let answer = exchange(addr, &send).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 202 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let mut last = start;
    while let Some(done) = polls.join_next().await {
        last = last.max(done.expect("a poll failed"));
    }
    let ms = last.duration_since(start).as_secs_f64() * 1e3;
    println!(r#"{{"workload":"poll-release","polls":{n},"time_to_last_ms":{ms:.2}}}"#);
}
