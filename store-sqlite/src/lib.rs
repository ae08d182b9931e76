//! # hubbub-sqlite
//!
//! A [`MessageStore`] in a SQLite file (`rusqlite`, SQLite bundled): room
//! history that survives restarts and crashes. Run it through a
//! [`StoreWorker`](hubbub_hub::StoreWorker) so its blocking calls stay
//! off the event loop, and attach the worker's handle to a hub with
//! `HubBuilder::store`.
//!
//! - **Ids** are an `INTEGER PRIMARY KEY AUTOINCREMENT`: increasing, and
//!   never reused, even when retention has removed every message (a plain
//!   rowid would start again at the highest id left plus one, so a client's
//!   "last id seen" could name a different message after a purge).
//! - **Durability**: WAL journal; an append is acknowledged once its
//!   transaction has committed. With [`Synchronous::Full`] (the default)
//!   the commit waits for the WAL to reach the disk (survives a power
//!   loss); with [`Synchronous::Normal`] it reaches the OS only, which is
//!   enough to survive `kill -9` of the process but not a power loss.
//!   Batches (group commit) pay one sync for many messages.
//! - **Retention** by count and by age removes the oldest messages, at
//!   most [`PRUNE_BATCH`] per append, so no append pays for a large purge;
//!   age is checked at most once a second.
//! - **Schema versions** are kept in `PRAGMA user_version` and migrated on
//!   open; a file from a newer version is refused.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use hubbub_hub::{
    store::now_ms, MessageStore, NewMessage, Replay, Retention, StoreError, StoredMessage,
};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

/// The most messages retention removes in one append.
pub const PRUNE_BATCH: u64 = 1024;

/// How often (at most) retention by age looks for old messages.
const AGE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The schema, one migration per version: the file's `user_version` says
/// how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: messages, the per-room index, and the retention horizon.
    "CREATE TABLE messages (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         room TEXT NOT NULL,
         type TEXT NOT NULL,
         kind TEXT,
         ts INTEGER NOT NULL,
         payload TEXT NOT NULL
     );
     CREATE INDEX messages_room_id ON messages (room, id);
     CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
     INSERT INTO meta (key, value) VALUES ('pruned_through', 0);",
    // 2: the retention horizon per room, so that retention in one room
    // does not make replays of another incomplete.
    // What version 1 removed counts for every room.
    "CREATE TABLE pruned_rooms (room TEXT PRIMARY KEY, through INTEGER NOT NULL) WITHOUT ROWID;
     INSERT INTO meta (key, value)
         SELECT 'pruned_before_rooms', value FROM meta WHERE key = 'pruned_through';",
    // 3: the history's epoch, random, chosen once when the file is made
    // (or first migrated): a new file is a new history.
    "INSERT INTO meta (key, value) VALUES ('epoch', random());",
];

/// The schema version this crate writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// When a commit counts as done (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// The WAL is synced to disk at every commit: an acknowledged append
    /// survives a crash of the process and a power loss.
    #[default]
    Full,
    /// The WAL is written at every commit and synced at checkpoints: an
    /// acknowledged append survives a crash of the process (`kill -9`);
    /// a power loss may lose the last commits (never corrupts the file).
    Normal,
}

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteConfig {
    /// How much history to keep.
    pub retention: Retention,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// How long to wait for another connection's write lock.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            retention: Retention::UNLIMITED,
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A message history in a SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    db: Connection,
    config: SqliteConfig,
    last_age_check: Option<Instant>,
}

impl SqliteStore {
    /// Open (or create) the store at `path`: WAL mode, schema migrated to
    /// [`SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, StoreError> {
        let db = Connection::open(path).map_err(backend)?;
        Self::with_connection(db, config)
    }

    /// A store in memory (for tests; lost when dropped).
    pub fn open_in_memory(config: SqliteConfig) -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory().map_err(backend)?, config)
    }

    fn with_connection(mut db: Connection, config: SqliteConfig) -> Result<Self, StoreError> {
        db.busy_timeout(config.busy_timeout).map_err(backend)?;
        // Switching to WAL takes the file's exclusive lock from a read lock;
        // SQLite answers BUSY at once rather than wait (the busy handler is
        // skipped where waiting could deadlock), so two processes opening
        // one file together retry here, within the busy timeout.
        let deadline = Instant::now() + config.busy_timeout;
        while let Err(error) = db.pragma_update(None, "journal_mode", "WAL") {
            if !is_busy(&error) || Instant::now() >= deadline {
                return Err(backend(error));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let synchronous = match config.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        db.pragma_update(None, "synchronous", synchronous)
            .map_err(backend)?;
        migrate(&mut db)?;
        Ok(SqliteStore {
            db,
            config,
            last_age_check: None,
        })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        user_version(&self.db)
    }

    /// Number of messages kept.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.db
            .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
            .map_err(backend)
    }

    /// True when no message is kept.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Copy everything in the WAL into the database file and truncate the
    /// WAL to zero bytes (`PRAGMA wal_checkpoint(TRUNCATE)`). Fails when
    /// another connection's reader or writer kept it from completing.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let busy: i64 = self
            .db
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .map_err(backend)?;
        if busy != 0 {
            return Err(StoreError::Backend(
                "checkpoint incomplete: the file is in use by another connection".into(),
            ));
        }
        Ok(())
    }

    /// Checkpoint (see [`checkpoint`](Self::checkpoint)) and close the
    /// file, reporting a failed checkpoint. Dropping the store does the
    /// same without reporting: either way, once the last connection to the
    /// file is closed, no `-wal` or `-shm` file is left beside it.
    pub fn close(self) -> Result<(), StoreError> {
        self.checkpoint()
        // `self` is dropped here: `Drop` finds nothing left to checkpoint
        // and the connection closes.
    }
}

impl Drop for SqliteStore {
    /// Checkpoint, then close the connection (the field's own drop). When
    /// it is the last connection to the file, SQLite checkpoints again and
    /// removes the `-wal` and `-shm` files.
    fn drop(&mut self) {
        // Nothing can be reported from a drop, and a failed checkpoint
        // loses nothing: the WAL keeps every commit and is replayed on the
        // next open.
        let _ = self.checkpoint();
    }
}

/// Remove what retention no longer allows, at most [`PRUNE_BATCH`]
/// messages, oldest first, inside `tx`. Removal is always of a prefix
/// of the ids, and the highest id removed is kept as the horizon
/// below which replays are not complete.
fn prune(
    tx: &Transaction<'_>,
    retention: &Retention,
    last_age_check: &mut Option<Instant>,
    last_id: u64,
) -> rusqlite::Result<()> {
    let mut through = None;
    if let Some(max) = retention.max_messages {
        if let Some(bound) = last_id.checked_sub(max) {
            // Ids above `last_id - max` are at most `max` messages.
            through = tx.query_row(
                "SELECT max(id) FROM (SELECT id FROM messages WHERE id <= ?1 ORDER BY id LIMIT ?2)",
                params![bound, PRUNE_BATCH],
                |row| row.get(0),
            )?;
        }
    }
    let age_due = last_age_check.is_none_or(|at| at.elapsed() >= AGE_CHECK_EVERY);
    if let (Some(min_ts), true) = (retention.min_ts(now_ms()), age_due) {
        *last_age_check = Some(Instant::now());
        // The oldest messages up to the first one young enough (a clock
        // that stepped back delays removal; it never breaks the prefix).
        let mut oldest = tx.prepare_cached("SELECT id, ts FROM messages ORDER BY id LIMIT ?1")?;
        let mut rows = oldest.query([PRUNE_BATCH])?;
        while let Some(row) = rows.next()? {
            if row.get::<_, u64>(1)? >= min_ts {
                break;
            }
            through = through.max(Some(row.get::<_, u64>(0)?));
        }
    }
    if let Some(through) = through {
        // The rooms losing messages, with the last id each loses (at most
        // PRUNE_BATCH rows, through the primary key).
        tx.execute(
            "INSERT INTO pruned_rooms (room, through) \
             SELECT room, max(id) FROM messages WHERE id <= ?1 GROUP BY room \
             ON CONFLICT (room) DO UPDATE SET through = max(through, excluded.through)",
            [through],
        )?;
        tx.execute("DELETE FROM messages WHERE id <= ?1", [through])?;
        tx.execute(
            "UPDATE meta SET value = max(value, ?1) WHERE key = 'pruned_through'",
            [through],
        )?;
    }
    Ok(())
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn user_version(db: &Connection) -> Result<u32, StoreError> {
    db.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend)
}

/// Run the migrations the file has not seen, each in a transaction with
/// its `user_version` bump. The version is read inside the write
/// transaction, so two processes opening a new file at once migrate it
/// once.
/// The file is locked by another connection.
fn is_busy(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let version = user_version(&tx)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "schema version {version} is newer than this program's ({SCHEMA_VERSION})"
            )));
        }
        let Some(migration) = MIGRATIONS.get(version as usize) else {
            return Ok(()); // up to date (the transaction rolls back: nothing done)
        };
        tx.execute_batch(migration).map_err(backend)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
}

/// Insert `batch` in order; the ids given.
fn insert(tx: &Transaction<'_>, batch: &[NewMessage]) -> rusqlite::Result<Vec<u64>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO messages (room, type, kind, ts, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut ids = Vec::with_capacity(batch.len());
    for m in batch {
        let payload = m.payload.to_string();
        let id = insert.insert(params![m.room, m.event_type, m.kind, m.ts, payload])?;
        // Ids start at 1 and only grow.
        ids.push(id as u64);
    }
    Ok(ids)
}

fn read_message(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let payload: String = row.get(5)?;
    Ok(StoredMessage {
        id: row.get(0)?,
        room: row.get(1)?,
        event_type: row.get(2)?,
        kind: row.get(3)?,
        ts: row.get(4)?,
        // Written by `append` from a `Value`: always valid JSON.
        payload: serde_json::from_str(&payload).unwrap_or_default(),
    })
}

const COLUMNS: &str = "id, room, type, kind, ts, payload";

impl MessageStore for SqliteStore {
    fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let ids = insert(&tx, batch).map_err(backend)?;
        let last_id = ids[ids.len() - 1];
        prune(
            &tx,
            &self.config.retention,
            &mut self.last_age_check,
            last_id,
        )
        .map_err(backend)?;
        // Acknowledged only once this returns: committed (and synced, as
        // `synchronous` says).
        tx.commit().map_err(backend)?;
        Ok(ids)
    }

    fn list_by_room(
        &mut self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut select = self
            .db
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM messages WHERE room = ?1 AND id < ?2 \
                 ORDER BY id DESC LIMIT ?3"
            ))
            .map_err(backend)?;
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut messages = select
            .query_map(params![room, before, limit], read_message)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(backend)?;
        messages.reverse();
        Ok(messages)
    }

    fn replay_from(
        &mut self,
        after: u64,
        room: Option<&str>,
        limit: usize,
    ) -> Result<Replay, StoreError> {
        // One read transaction: the messages and the horizon agree.
        let tx = self.db.transaction().map_err(backend)?;
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let after_sql = i64::try_from(after).unwrap_or(i64::MAX);
        let mut messages = {
            let sql = match room {
                Some(_) => format!(
                    "SELECT {COLUMNS} FROM messages WHERE room = ?1 AND id > ?2 \
                     ORDER BY id LIMIT ?3"
                ),
                None => format!(
                    "SELECT {COLUMNS} FROM messages WHERE ?1 IS NULL AND id > ?2 \
                     ORDER BY id LIMIT ?3"
                ),
            };
            let mut select = tx.prepare_cached(&sql).map_err(backend)?;
            select
                .query_map(params![room, after_sql, fetch], read_message)
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(backend)?
        };
        let (pruned, last_id): (u64, u64) = tx
            .query_row(
                "SELECT CASE WHEN ?1 IS NULL \
                   THEN (SELECT value FROM meta WHERE key = 'pruned_through') \
                   ELSE max(coalesce((SELECT through FROM pruned_rooms WHERE room = ?1), 0), \
                            (SELECT value FROM meta WHERE key = 'pruned_before_rooms')) END, \
                 (SELECT seq FROM sqlite_sequence WHERE name = 'messages')",
                [room],
                |row| Ok((row.get(0)?, row.get::<_, Option<u64>>(1)?.unwrap_or(0))),
            )
            .map_err(backend)?;
        tx.finish().map_err(backend)?;
        let cut = messages.len() > limit;
        messages.truncate(limit);
        let complete = !cut && after >= pruned && after <= last_id;
        Ok(Replay { messages, complete })
    }

    fn epoch(&mut self) -> Result<String, StoreError> {
        let epoch: i64 = self
            .db
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |row| {
                row.get(0)
            })
            .map_err(backend)?;
        Ok(format!("{:016x}", epoch.cast_unsigned()))
    }
}

impl SqliteStore {
    /// The message with `id`, if kept.
    pub fn get(&self, id: u64) -> Result<Option<StoredMessage>, StoreError> {
        self.db
            .query_row(
                &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
                [id],
                read_message,
            )
            .optional()
            .map_err(backend)
    }
}
