//! hubbub-sqlite: the shared store suite, restarts, schema versions,
//! concurrent appends, and durability across `kill -9`.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::{mpsc, Arc},
    thread,
    time::{Duration, Instant},
};

use hubbub_hub::{
    store::{
        now_ms,
        testing::{self, message, texts},
        WorkerConfig,
    },
    MessageStore, NewMessage, Retention, StoreError, StoreWorker,
};
use hubbub_sqlite::{SqliteConfig, SqliteStore, Synchronous, SCHEMA_VERSION};

const WAIT: Duration = Duration::from_secs(20);

fn config(retention: Retention) -> SqliteConfig {
    SqliteConfig {
        retention,
        ..SqliteConfig::default()
    }
}

#[test]
fn conformance_on_files_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    testing::run_all(|retention| {
        n += 1;
        SqliteStore::open(dir.path().join(format!("{n}.db")), config(retention))
    });
    testing::run_all(|retention| SqliteStore::open_in_memory(config(retention)));
}

#[test]
fn a_reopened_file_keeps_its_messages_and_goes_on_with_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let first = {
        let mut store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .append(&[message("dev", 0), message("ops", 1), message("dev", 2)])
            .unwrap()
    };
    let mut store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(store.len().unwrap(), 3);
    let epoch = store.epoch().unwrap();
    assert_eq!(
        SqliteStore::open(&path, SqliteConfig::default())
            .unwrap()
            .epoch()
            .unwrap(),
        epoch,
        "a file keeps its epoch"
    );
    let mut fresh = SqliteStore::open(dir.path().join("new.db"), SqliteConfig::default()).unwrap();
    assert_ne!(fresh.epoch().unwrap(), epoch, "a new file is a new history");
    // WAL is recorded in the file: another connection sees it.
    let other = rusqlite::Connection::open(&path).unwrap();
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let dev = store.list_by_room("dev", 10, None).unwrap();
    assert_eq!(texts(&dev), ["m0", "m2"]);
    assert_eq!(dev[1].id, first[2]);
    let next = store.append(&[message("dev", 3)]).unwrap();
    assert_eq!(next, [first[2] + 1]);
    let replay = store.replay_from(first[0], Some("dev"), 10).unwrap();
    assert_eq!(texts(&replay.messages), ["m2", "m3"]);
    assert!(replay.complete);
    assert_eq!(store.get(first[1]).unwrap().unwrap().room, "ops");
    assert_eq!(store.get(999).unwrap(), None);
}

/// The `-wal` and `-shm` files beside the database `path`, as (exists,
/// exists).
fn sidecars(path: &std::path::Path) -> (bool, bool) {
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name).exists()
    };
    (beside("-wal"), beside("-shm"))
}

#[test]
fn checkpoint_close_and_drop_leave_no_wal_or_shm_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");

    // `checkpoint` empties the WAL into the file; `close` leaves nothing.
    let mut store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    store.append(&[message("r", 0), message("r", 1)]).unwrap();
    assert_eq!(sidecars(&path), (true, true), "WAL mode while open");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the commits are in the WAL"
    );
    store.checkpoint().unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "truncated");
    store.append(&[message("r", 2)]).unwrap();
    store.close().unwrap();
    assert_eq!(sidecars(&path), (false, false), "after close");

    // Dropping it does the same.
    let mut store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    store.append(&[message("r", 3)]).unwrap();
    assert_eq!(sidecars(&path), (true, true));
    drop(store);
    assert_eq!(sidecars(&path), (false, false), "after drop");

    // And so does a worker once its last handle is gone (it drops the
    // store on its own thread, after the queued appends).
    let store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    let handle = StoreWorker::spawn(store, WorkerConfig::default()).unwrap();
    let (tx, rx) = mpsc::channel();
    handle
        .append(message("r", 4), move |r| tx.send(r.map(|m| m.id)).unwrap())
        .unwrap();
    drop(handle);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(5));
    let deadline = Instant::now() + WAIT;
    while sidecars(&path) != (false, false) {
        assert!(
            Instant::now() < deadline,
            "the worker never closed the store"
        );
        thread::sleep(Duration::from_millis(10));
    }

    // Nothing was lost on the way.
    let mut store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(
        texts(&store.list_by_room("r", 10, None).unwrap()),
        ["m0", "m1", "m2", "m3", "m4"]
    );
}

#[test]
fn ids_are_not_reused_after_a_purge_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let retention = Retention {
        max_messages: None,
        max_age: Some(Duration::from_secs(60)),
    };
    let old = NewMessage {
        ts: now_ms() - 3_600_000,
        ..message("r", 0)
    };
    let old_ids = {
        let mut store = SqliteStore::open(&path, config(retention)).unwrap();
        let ids = store.append(&[old.clone(), old]).unwrap();
        assert!(store.is_empty().unwrap(), "purged by age at once");
        ids
    };
    let mut store = SqliteStore::open(&path, config(retention)).unwrap();
    let new = store.append(&[message("r", 1)]).unwrap();
    assert!(new[0] > old_ids[1], "{new:?} after {old_ids:?}");
    let replay = store.replay_from(0, Some("r"), 10).unwrap();
    assert!(
        !replay.complete,
        "the purge is remembered across the restart"
    );
    assert!(
        store
            .replay_from(old_ids[1], Some("r"), 10)
            .unwrap()
            .complete
    );
}

#[test]
fn retention_removes_a_bounded_number_per_append() {
    let batch: Vec<NewMessage> = (0..3000).map(|n| message("r", n)).collect();
    // 3000 rows, then a retention of 10: each append removes at most
    // PRUNE_BATCH (1024) of the excess, so three appends bring it down.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    let mut store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    store.append(&batch).unwrap();
    drop(store);
    let retention = Retention {
        max_messages: Some(10),
        max_age: None,
    };
    let mut store = SqliteStore::open(&path, config(retention)).unwrap();
    let mut sizes = Vec::new();
    for n in 0..4 {
        store.append(&[message("r", 3000 + n)]).unwrap();
        sizes.push(store.len().unwrap());
    }
    assert_eq!(sizes, [3001 - 1024, 3002 - 2048, 10, 10]);
    assert_eq!(store.list_by_room("r", 100, None).unwrap()[0].id, 2995);
}

/// A version 1 file (before per-room retention horizons), as that version
/// wrote it: messages 3 to 5 kept, 1 and 2 removed by retention.
const VERSION_1: &str = "
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, type TEXT NOT NULL,
        kind TEXT, ts INTEGER NOT NULL, payload TEXT NOT NULL);
    CREATE INDEX messages_room_id ON messages (room, id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('pruned_through', 2);
    INSERT INTO messages VALUES
        (1, 'dev', 'chat.message', NULL, 1, '{}'), (2, 'ops', 'chat.message', NULL, 1, '{}'),
        (3, 'dev', 'chat.message', NULL, 1, '{\"text\":\"m3\"}'),
        (4, 'ops', 'chat.message', 'event', 1, '{\"text\":\"m4\"}'),
        (5, 'dev', 'chat.message', NULL, 1, '{\"text\":\"m5\"}');
    DELETE FROM messages WHERE id <= 2;
    PRAGMA user_version = 1;";

#[test]
fn a_version_1_file_is_migrated_and_keeps_its_messages_and_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(VERSION_1)
        .unwrap();
    let mut store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 3);
    assert_eq!(SCHEMA_VERSION, 3);
    assert_eq!(store.epoch().unwrap().len(), 16, "given an epoch");
    let dev = store.list_by_room("dev", 10, None).unwrap();
    assert_eq!(texts(&dev), ["m3", "m5"]);
    assert_eq!(
        store.get(4).unwrap().unwrap().kind.as_deref(),
        Some("event")
    );
    // What version 1 removed still makes older replays incomplete.
    assert!(!store.replay_from(0, Some("dev"), 10).unwrap().complete);
    assert!(store.replay_from(2, Some("dev"), 10).unwrap().complete);
    assert_eq!(store.append(&[message("dev", 6)]).unwrap(), [6]);
    drop(store);
    // Opening again migrates nothing more.
    let store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(store.len().unwrap(), 4);
}

#[test]
fn a_file_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path, SqliteConfig::default()).unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION, "the version is kept in the file");
    db.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(db);
    match SqliteStore::open(&path, SqliteConfig::default()) {
        Err(StoreError::Backend(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn concurrent_appends_get_distinct_increasing_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("shared.db"));
    let config = SqliteConfig {
        synchronous: Synchronous::Normal,
        ..SqliteConfig::default()
    };
    // Two connections (as two processes would) writing the same file.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            thread::spawn(move || {
                let mut store = SqliteStore::open(&*path, config).unwrap();
                let mut ids = Vec::new();
                for n in 0..100 {
                    let batch: Vec<NewMessage> = (0..3)
                        .map(|i| message(&format!("w{w}"), n * 3 + i))
                        .collect();
                    ids.extend(store.append(&batch).unwrap());
                }
                ids
            })
        })
        .collect();
    let per_writer: Vec<Vec<u64>> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    let mut all = HashSet::new();
    for ids in &per_writer {
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for id in ids {
            assert!(all.insert(*id), "id {id} given twice");
        }
    }
    assert_eq!(all.len(), 600);

    // Many threads through one worker: acknowledged in the order queued.
    let store = SqliteStore::open(&*path, config).unwrap();
    let handle = StoreWorker::spawn(store, WorkerConfig::default()).unwrap();
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (handle, tx) = (handle.clone(), tx.clone());
            thread::spawn(move || {
                for n in 0..100 {
                    let tx = tx.clone();
                    handle
                        .append(message("worker", n), move |r| {
                            tx.send((t, n, r.unwrap().id)).unwrap()
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let acks: Vec<(i32, u64, u64)> = (0..800).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    let ids: Vec<u64> = acks.iter().map(|a| a.2).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "acknowledged in id order"
    );
    assert!(ids[0] > *all.iter().max().unwrap());
    for t in 0..8 {
        let mine: Vec<u64> = acks.iter().filter(|a| a.0 == t).map(|a| a.1).collect();
        assert_eq!(
            mine,
            (0..100).collect::<Vec<_>>(),
            "each thread's order kept"
        );
    }
}

/// The environment variable naming the database of the child process.
const CHILD_DB: &str = "HUBBUB_SQLITE_KILL9_DB";

#[test]
fn acknowledged_appends_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_9_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(ack) = line.strip_prefix("ACK ") {
                // Ignored: the receiver is gone only once the test has
                // failed (it panicked waiting for acknowledgments).
                let _ = tx.send(ack.to_owned());
            }
        }
    });
    let started = Instant::now();
    let mut acked = Vec::new();
    while acked.len() < 300 {
        let left = WAIT.saturating_sub(started.elapsed());
        acked.push(
            rx.recv_timeout(left)
                .expect("acknowledgments from the child"),
        );
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint
    child.wait().unwrap();
    reader.join().unwrap();
    // Every acknowledgment printed before the kill.
    acked.extend(rx.try_iter());

    let store = SqliteStore::open(&path, SqliteConfig::default()).unwrap();
    for ack in &acked {
        let (id, text) = ack.split_once(' ').unwrap();
        let message = store.get(id.parse().unwrap()).unwrap();
        let message = message.unwrap_or_else(|| panic!("acknowledged {ack} lost"));
        assert_eq!(message.payload["text"], text);
    }
    assert!(store.len().unwrap() >= acked.len() as u64);
}

/// The child of `acknowledged_appends_survive_kill_9`: appends through a
/// worker from four threads (`Synchronous::Normal`, the weaker setting)
/// and prints `ACK <id> <text>` for each acknowledged append until it is
/// killed (or 60 s pass).
#[test]
#[ignore = "run as a child process by acknowledged_appends_survive_kill_9"]
fn kill_9_child() {
    let path = std::env::var(CHILD_DB).expect("run by acknowledged_appends_survive_kill_9");
    let config = SqliteConfig {
        synchronous: Synchronous::Normal,
        ..SqliteConfig::default()
    };
    let handle = StoreWorker::spawn(
        SqliteStore::open(path, config).unwrap(),
        WorkerConfig::default(),
    )
    .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let handle = handle.clone();
            thread::spawn(move || {
                for n in 0.. {
                    if Instant::now() > until {
                        break;
                    }
                    let text = format!("t{t}-{n}");
                    let message = NewMessage::new(
                        "crash",
                        "chat.message",
                        serde_json::json!({ "room": "crash", "text": text }),
                    );
                    let queued = handle.append(message, move |r| {
                        let id = r.unwrap().id;
                        let mut out = std::io::stdout().lock();
                        // Ignored: the parent stops reading and kills this
                        // process at a moment of its choosing; a line lost
                        // then is only an acknowledgment it does not check.
                        let _ = writeln!(out, "ACK {id} {text}");
                        let _ = out.flush();
                    });
                    if queued.is_err() {
                        thread::sleep(Duration::from_millis(1)); // busy: let it drain
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
