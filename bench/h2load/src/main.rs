//! Load for bench/h2.sh: open `--sockets` WebSockets to a hubbub server
//! over TLS with hubbub's client, either over HTTP/2 (`--mode h2`: an
//! `H2Pool` with `--per-conn` WebSockets per connection, RFC 8441) or
//! each over its own HTTP/1.1 TLS connection (`--mode h1`), then echo
//! `--echoes` small messages on each. It reads the server's RSS and CPU
//! time from /proc (`--server-pid`) and prints one JSON line:
//!
//! - `open_ms`: wall time to open them all (`--concurrency` connects at
//!   once);
//! - `rss_per_ws_kib`: the server's RSS once all are open, less its RSS
//!   before the first, over the number of WebSockets;
//! - `cpu_us_per_msg`: the server's CPU time (utime + stime) during the
//!   echo phase over the messages echoed.
//!
//! ```text
//! h2load --url wss://127.0.0.1:P/ --ca ca.pem --server-pid PID
//!        [--mode h2|h1] [--sockets 1000] [--per-conn 100] [--echoes 100]
//!        [--size 32] [--concurrency 100]
//! ```

use std::{
    error::Error,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use hubbub_tokio::{Message, Tokio};
use hubbub_ws::{h2::H2Pool, ClientConfig, RuntimeWebSocket};
use tokio::{sync::Semaphore, task::JoinSet};

type Ws = RuntimeWebSocket<Tokio>;

struct Args {
    url: String,
    ca: PathBuf,
    server_pid: u32,
    h2: bool,
    sockets: usize,
    per_conn: usize,
    echoes: usize,
    size: usize,
    concurrency: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        ca: PathBuf::new(),
        server_pid: 0,
        h2: true,
        sockets: 1000,
        per_conn: 100,
        echoes: 100,
        size: 32,
        concurrency: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--ca" => args.ca = PathBuf::from(&value),
            "--server-pid" => args.server_pid = number()? as u32,
            "--mode" => {
                args.h2 = match value.as_str() {
                    "h2" => true,
                    "h1" => false,
                    _ => return Err(format!("--mode {value}: h2 or h1")),
                }
            }
            "--sockets" => args.sockets = number()?,
            "--per-conn" => args.per_conn = number()?,
            "--echoes" => args.echoes = number()?,
            "--size" => args.size = number()?,
            "--concurrency" => args.concurrency = number()?.max(1),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if args.url.is_empty() || args.server_pid == 0 {
        return Err("--url and --server-pid are required".into());
    }
    Ok(args)
}

/// The server's resident set, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// The server's CPU time (user + system), in microseconds.
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the name: state is field 3, utime 14 and stime 15.
    let ticks = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let total = ticks(14).unwrap_or(0) + ticks(15).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    total * 1_000_000 / hz
}

async fn echo(mut ws: Ws, echoes: usize, size: usize) -> Result<Ws, String> {
    let payload = "x".repeat(size);
    for _ in 0..echoes {
        ws.send(Message::text(payload.clone()))
            .await
            .map_err(|e| e.to_string())?;
        match ws.recv().await {
            Some(Ok(Message::Text(text))) if text.len() == size => {}
            other => return Err(format!("unexpected echo: {other:?}")),
        }
    }
    Ok(ws)
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let pool = H2Pool::new().max_streams(args.per_conn);
    let mut config = ClientConfig {
        connect_timeout: Some(Duration::from_secs(30)),
        ..ClientConfig::default()
    }
    .trust_pem_ca(&args.ca)?;
    config.config = Arc::new(hubbub_tokio::Config {
        handshake_timeout: Some(Duration::from_secs(60)),
        ..hubbub_tokio::Config::default()
    });
    if args.h2 {
        config = config.with_h2(pool.clone());
    }
    let config = Arc::new(config);
    let rss_base = rss_kib(args.server_pid);

    // Open them all, `concurrency` at a time.
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let mut opening = JoinSet::new();
    for _ in 0..args.sockets {
        let (permits, config, url) = (permits.clone(), config.clone(), args.url.clone());
        opening.spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            hubbub_ws::connect_with::<Tokio>(&url, &config)
                .await
                .map(|(ws, _)| ws)
                .map_err(|e| e.to_string())
        });
    }
    let mut sockets = Vec::with_capacity(args.sockets);
    while let Some(done) = opening.join_next().await {
        sockets.push(done??);
    }
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let h2_streams = sockets.iter().filter(|ws| ws.get_ref().is_h2()).count();
    let connections = if args.h2 {
        pool.connections()
    } else {
        sockets.len()
    };
    // Let the server settle, then its memory with every WebSocket open.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = rss_kib(args.server_pid);

    // The echoes, every socket at once, one message in flight on each.
    let cpu_before = cpu_us(args.server_pid);
    let started = Instant::now();
    let mut echoing = JoinSet::new();
    for ws in sockets.drain(..) {
        echoing.spawn(echo(ws, args.echoes, args.size));
    }
    while let Some(done) = echoing.join_next().await {
        sockets.push(done??);
    }
    let echo_ms = started.elapsed().as_secs_f64() * 1e3;
    let cpu_echo = cpu_us(args.server_pid).saturating_sub(cpu_before);
    let messages = (args.sockets * args.echoes) as f64;

    let mut closing = JoinSet::new();
    for mut ws in sockets.drain(..) {
        closing.spawn(async move {
            let _ = ws.close(hubbub_tokio::CloseCode::NORMAL, "").await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while ws.recv().await.is_some() {}
            })
            .await;
        });
    }
    while closing.join_next().await.is_some() {}

    println!(
        "{{\"mode\":\"{}\",\"sockets\":{},\"connections\":{},\"h2_streams\":{},\"open_ms\":{:.1},\"rss_base_kib\":{},\"rss_open_kib\":{},\"rss_per_ws_kib\":{:.2},\"messages\":{},\"echo_ms\":{:.1},\"server_cpu_ms\":{:.1},\"cpu_us_per_msg\":{:.3}}}",
        if args.h2 { "h2" } else { "h1" },
        args.sockets,
        connections,
        h2_streams,
        open_ms,
        rss_base,
        rss_open,
        rss_open.saturating_sub(rss_base) as f64 / args.sockets as f64,
        messages,
        echo_ms,
        cpu_echo as f64 / 1e3,
        cpu_echo as f64 / messages,
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("h2load: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("h2load: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("h2load: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
