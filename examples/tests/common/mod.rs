//! What the demo tests share: starting a binary and reading its
//! `listening` line, stopping it with SIGTERM, and a WebSocket peer from a
//! client library we did not write (tokio-tungstenite). Every wait is
//! bounded.
#![allow(dead_code)] // each test file uses a part

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message};

/// The runtimes every program is tested on (`--runtime`).
pub(crate) const RUNTIMES: &[&str] = &["tokio", "smol", "mio"];

thread_local! {
    /// The runtime the programs started on this thread run on.
    static RUNTIME: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Run `test` once per runtime in [`RUNTIMES`]: every program it starts
/// gets that `--runtime`.
pub(crate) fn each_runtime(test: impl Fn()) {
    for runtime in RUNTIMES {
        eprintln!("-- runtime {runtime}");
        RUNTIME.set(Some(runtime));
        test();
        RUNTIME.set(None);
    }
}

/// Inside [`each_runtime`], `--runtime NAME` (put first, so that `args`
/// naming another runtime win); otherwise nothing.
pub(crate) fn runtime_args() -> Vec<&'static str> {
    RUNTIME
        .get()
        .map_or(Vec::new(), |runtime| vec!["--runtime", runtime])
}

/// Longest wait for anything a test expects.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A running binary.
pub(crate) struct Running {
    child: Child,
    /// The `listening` line.
    pub listening: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

/// Start `binary` with `args`, in `dir` (if any), with `env` added, and wait
/// for its `listening` line.
pub(crate) fn start(
    binary: &str,
    args: &[&str],
    dir: Option<&Path>,
    env: &[(&str, &str)],
) -> Running {
    spawn(command(binary, args, dir, env))
}

/// Spawn `command` (stdout and stderr piped) and wait for its `listening`
/// line.
pub(crate) fn spawn(mut command: Command) -> Running {
    let mut child = command.spawn().expect("spawn the binary");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines = stdout.clone();
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if line.contains("listening") {
                // Ignored: `spawn` stops listening after the first such line.
                let _ = tx.send(line.clone());
            }
            lines.lock().unwrap().push(line);
        }
    });
    let mut err = child.stderr.take().unwrap();
    let errors = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            errors
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let listening = match rx.recv_timeout(WAIT) {
        Ok(line) => line,
        Err(_) => {
            // Ignored: cleanup before the panic below, which is the failure.
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "no `listening` line within {WAIT:?}; stderr: {}",
                stderr.lock().unwrap()
            );
        }
    };
    Running {
        child,
        listening,
        stdout,
        stderr,
    }
}

impl Running {
    /// The ports of the URLs in the `listening` line, in order
    /// (`http://0.0.0.0:8080 ... ws://0.0.0.0:9090/`).
    pub(crate) fn ports(&self) -> Vec<u16> {
        ports_in(&self.listening)
    }

    /// Lines printed so far.
    pub(crate) fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Wait until a printed line satisfies `pred`.
    pub(crate) fn wait_for_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.stdout().into_iter().find(|l| pred(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no line {what} within {WAIT:?}; stdout: {:?}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What it wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until stderr contains `needle`.
    pub(crate) fn wait_for_stderr(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on stderr within {WAIT:?}: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child's standard input (when spawned with `Stdio::piped()`).
    pub(crate) fn take_stdin(&mut self) -> std::process::ChildStdin {
        self.child.stdin.take().expect("stdin piped")
    }

    /// The names of the threads the process runs (Linux: its `/proc` task
    /// list), leaving out the log's writer threads (`log-stdout`,
    /// `log-stderr`: `hubbub_examples::log`), which run beside any runtime.
    pub(crate) fn thread_names(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks).map_or(Vec::new(), |tasks| {
            tasks
                .filter_map(Result::ok)
                .map(|task| {
                    let comm =
                        std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                    comm.trim_end().to_owned()
                })
                .filter(|name| !name.starts_with("log-std"))
                .collect()
        })
    }

    /// Send SIGTERM.
    pub(crate) fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Send signal `name` (`TERM`, `HUP`, ...).
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let flag = format!("-{name}");
        let sent = Command::new("kill").args([&flag, &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// Send SIGTERM and wait (bounded) for the exit.
    pub(crate) fn terminate(mut self) -> ExitStatus {
        self.sigterm();
        self.wait()
    }

    /// Wait (bounded) for the exit.
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                // Ignored: cleanup before the panic, which is the failure.
                let _ = self.child.kill();
                panic!("the binary did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Ignored: best-effort cleanup of a binary a test left running
            // (or SIGKILLs on purpose); nothing to report from a drop.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every `:PORT` that follows a `scheme://host` in `line`.
pub(crate) fn ports_in(line: &str) -> Vec<u16> {
    line.split("://")
        .skip(1)
        .filter_map(|rest| {
            let authority = rest.split(['/', ' ']).next()?;
            authority.rsplit(':').next()?.parse().ok()
        })
        .collect()
}

/// Run `binary` to its end (bounded) with `env` added, in `dir`; returns
/// the exit code, stdout and stderr.
pub(crate) fn run_to_end(
    binary: &str,
    args: &[&str],
    dir: Option<&Path>,
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let mut command = command(binary, args, dir, env);
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // Ignored: cleanup before the panic, which is the failure.
            let _ = child.kill();
            panic!("{binary} {args:?} did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A fresh empty directory under the system's temp dir.
pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hubbub-examples-{name}-{}", std::process::id()));
    // Ignored: usually there is nothing to remove (a previous run's leftovers
    // only); `create_dir_all` below is asserted.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A single-threaded tokio runtime for a test's client side.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A WebSocket client connection (tokio-tungstenite).
pub(crate) type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connect to `url`.
pub(crate) async fn connect(url: &str) -> Peer {
    try_connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// Connect to `url`, returning the error.
pub(crate) async fn try_connect(url: &str) -> Result<Peer, tungstenite::Error> {
    match timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
        Ok(result) => result.map(|(peer, _)| peer),
        Err(_) => panic!("no connection to {url} within {WAIT:?}"),
    }
}

/// The next data message as text (`binary:` and the bytes, lossily, for a
/// binary one; `close CODE` for a close frame).
pub(crate) async fn next(peer: &mut Peer) -> String {
    loop {
        let message = timeout(WAIT, peer.next())
            .await
            .unwrap_or_else(|_| panic!("no message within {WAIT:?}"));
        match message {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Binary(data))) => {
                return format!("binary:{}", String::from_utf8_lossy(&data))
            }
            Some(Ok(Message::Close(frame))) => {
                return format!("close {}", frame.map_or(1005, |f| u16::from(f.code)))
            }
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The next message, parsed as JSON.
pub(crate) async fn next_json(peer: &mut Peer) -> serde_json::Value {
    let text = next(peer).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

/// Send a text message.
pub(crate) async fn send(peer: &mut Peer, text: &str) {
    timeout(WAIT, peer.send(Message::text(text)))
        .await
        .expect("send in time")
        .expect("send");
}

/// Send a binary message.
pub(crate) async fn send_binary(peer: &mut Peer, data: &[u8]) {
    timeout(WAIT, peer.send(Message::binary(data.to_vec())))
        .await
        .expect("send in time")
        .expect("send");
}

/// Close and read to the end.
pub(crate) async fn close(mut peer: Peer) {
    // Ignored: best effort at the end of a test (the server may be closing
    // too); what the test checks, it checked before.
    let _ = timeout(WAIT, peer.close(None)).await;
    let _ = timeout(WAIT, async { while peer.next().await.is_some() {} }).await;
}

/// `binary` with `args`, run in `dir` (if any) with `env` added, stdin
/// closed and both outputs piped.
fn command(binary: &str, args: &[&str], dir: Option<&Path>, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(runtime_args())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.envs(env.iter().copied());
    command
}
