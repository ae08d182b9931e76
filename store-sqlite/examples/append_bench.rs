//! SQLite appends per second, one message per commit and batched (group
//! commit through a `StoreWorker` fed by several threads), for both
//! synchronous modes.
//!
//! ```text
//! cargo run --release -p hubbub-sqlite --example append_bench [-- DIR]
//! ```
//!
//! DIR (default: a temporary directory) decides the disk measured.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc,
    },
    thread,
    time::{Duration, Instant},
};

use hubbub_hub::{
    store::WorkerConfig, MessageStore, NewMessage, Replay, StoreError, StoreWorker, StoredMessage,
};
use hubbub_sqlite::{SqliteConfig, SqliteStore, Synchronous};
use serde_json::json;

fn message(n: u64) -> NewMessage {
    NewMessage::new(
        "bench",
        "chat.message",
        json!({"room": "bench", "text": format!("message number {n} with some text")}),
    )
}

fn open(dir: &Path, name: &str, synchronous: Synchronous) -> SqliteStore {
    let path = dir.join(name);
    let config = SqliteConfig {
        synchronous,
        ..SqliteConfig::default()
    };
    SqliteStore::open(path, config).expect("open")
}

/// One message per commit, from one thread.
fn unbatched(dir: &Path, synchronous: Synchronous, count: u64) -> Duration {
    let mut store = open(dir, &format!("single-{synchronous:?}.db"), synchronous);
    let started = Instant::now();
    for n in 0..count {
        store.append(&[message(n)]).expect("append");
    }
    started.elapsed()
}

/// A store that counts its commits (calls to `append`).
struct Counted(SqliteStore, Arc<AtomicU64>);

impl MessageStore for Counted {
    fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.append(batch)
    }
    fn list_by_room(
        &mut self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.0.list_by_room(room, limit, before)
    }
    fn replay_from(
        &mut self,
        after: u64,
        room: Option<&str>,
        limit: usize,
    ) -> Result<Replay, StoreError> {
        self.0.replay_from(after, room, limit)
    }
    fn epoch(&mut self) -> Result<String, StoreError> {
        self.0.epoch()
    }
}

/// `count` messages from 8 threads through a worker that commits whatever
/// has queued (up to 512) together; the time until the last
/// acknowledgment, and the number of commits.
fn batched(dir: &Path, synchronous: Synchronous, count: u64) -> (Duration, u64) {
    let commits = Arc::new(AtomicU64::new(0));
    let store = Counted(
        open(dir, &format!("batched-{synchronous:?}.db"), synchronous),
        commits.clone(),
    );
    let handle = StoreWorker::spawn(store, WorkerConfig::default()).expect("worker");
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let producers: Vec<_> = (0..8)
        .map(|t| {
            let (handle, tx) = (handle.clone(), tx.clone());
            thread::spawn(move || {
                let mut n = t;
                while n < count {
                    let tx = tx.clone();
                    match handle.append(message(n), move |r| {
                        let _ = tx.send(r.is_ok());
                    }) {
                        Ok(()) => n += 8,
                        Err(_) => thread::sleep(Duration::from_micros(100)), // busy
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    for _ in 0..count {
        assert!(rx.recv().expect("ack"), "append failed");
    }
    (started.elapsed(), commits.load(Ordering::Relaxed))
}

fn main() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), Into::into);
    println!("| mode | synchronous | messages | commits | seconds | appends/s |");
    println!("|---|---|---:|---:|---:|---:|");
    for synchronous in [Synchronous::Normal, Synchronous::Full] {
        let count = 2_000;
        let time = unbatched(&dir, synchronous, count);
        report("one per commit", synchronous, count, count, time);
        let count = 100_000;
        let (time, commits) = batched(&dir, synchronous, count);
        report(
            "batched (worker, 8 threads)",
            synchronous,
            count,
            commits,
            time,
        );
    }
}

fn report(mode: &str, synchronous: Synchronous, count: u64, commits: u64, time: Duration) {
    let rate = count as f64 / time.as_secs_f64();
    println!(
        "| {mode} | {synchronous:?} | {count} | {commits} | {:.2} | {rate:.0} |",
        time.as_secs_f64()
    );
}
