//! [`StoreWorker`]: any [`MessageStore`] on its own thread, fed through a
//! bounded queue and answering through completion callbacks, so that
//! callers on an event loop (of any runtime) never block on the store.

use std::{
    io,
    panic::{self, AssertUnwindSafe},
    sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    thread,
    time::Duration,
};

use super::{MessageStore, NewMessage, Replay, StoreError, StoredMessage};

type AppendDone = Box<dyn FnOnce(Result<StoredMessage, StoreError>) + Send>;
type Call = Box<dyn FnOnce(&mut dyn MessageStore) + Send>;

enum Request {
    Append(NewMessage, AppendDone),
    Call(Call),
    /// Drop the store, tell the sender, and stop.
    Close(SyncSender<()>),
}

/// How a [`StoreWorker`] queues and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Requests that may wait; beyond it, requests fail at once with
    /// [`StoreError::Busy`] instead of blocking the caller.
    pub queue: usize,
    /// Appends waiting in the queue are committed together, up to this
    /// many in one call to [`MessageStore::append`] (group commit).
    pub max_batch: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            queue: 8192,
            max_batch: 512,
        }
    }
}

/// Runs a store on a thread of its own.
///
/// Requests are handled one at a time in the order they were queued;
/// consecutive appends are committed as one batch, and their callbacks run
/// (in id order) before the next request is handled. Callbacks run on the
/// worker thread: they must not block (queueing sends to sessions, as the
/// hub does, is fine). A panicking callback is caught and does not stop
/// the worker. The thread ends, dropping the store, once every
/// [`StoreHandle`] is gone and the queue is drained, or at
/// [`StoreHandle::close`].
#[derive(Debug)]
pub struct StoreWorker;

impl StoreWorker {
    /// Start a thread running `store`; the handle queues requests to it.
    pub fn spawn<S: MessageStore>(store: S, config: WorkerConfig) -> io::Result<StoreHandle> {
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        thread::Builder::new()
            .name("hubbub-store".into())
            .spawn(move || run(store, rx, config.max_batch.max(1)))?;
        Ok(StoreHandle { tx })
    }
}

fn run<S: MessageStore>(mut store: S, rx: Receiver<Request>, max_batch: usize) {
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match rx.recv() {
                Ok(request) => request,
                Err(_) => return, // every handle is gone
            },
        };
        match request {
            Request::Close(closed) => {
                drop(store);
                drop(rx); // from here on, requests fail with `Closed`
                let _ = closed.send(()); // the closer may have stopped waiting
                return;
            }
            Request::Call(call) => catch(|| call(&mut store)),
            Request::Append(message, done) => {
                let (mut messages, mut callbacks) = (vec![message], vec![done]);
                while messages.len() < max_batch {
                    match rx.try_recv() {
                        Ok(Request::Append(message, done)) => {
                            messages.push(message);
                            callbacks.push(done);
                        }
                        Ok(call) => {
                            next = Some(call); // after this batch, in order
                            break;
                        }
                        Err(_) => break,
                    }
                }
                match store.append(&messages) {
                    Ok(ids) if ids.len() == messages.len() => {
                        for ((message, id), done) in messages.into_iter().zip(ids).zip(callbacks) {
                            catch(|| done(Ok(message.stored(id))));
                        }
                    }
                    result => {
                        let error = match result {
                            Err(error) => error,
                            Ok(_) => StoreError::Backend("append returned the wrong ids".into()),
                        };
                        for done in callbacks {
                            catch(|| done(Err(error.clone())));
                        }
                    }
                }
            }
        }
    }
}

/// Run a user callback; a panic in it must not stop the worker.
fn catch(f: impl FnOnce()) {
    let _ = panic::catch_unwind(AssertUnwindSafe(f));
}

/// Queues requests to a [`StoreWorker`]. Cheap to clone; no method blocks:
/// each returns [`StoreError::Busy`] when the queue is full and
/// [`StoreError::Closed`] when the worker is gone (the callback is then
/// dropped without being called).
#[derive(Debug, Clone)]
pub struct StoreHandle {
    tx: SyncSender<Request>,
}

impl StoreHandle {
    fn queue(&self, request: Request) -> Result<(), StoreError> {
        self.tx.try_send(request).map_err(|error| match error {
            TrySendError::Full(_) => StoreError::Busy,
            TrySendError::Disconnected(_) => StoreError::Closed,
        })
    }

    /// Append `message`; `done` receives it with its id once it is stored.
    pub fn append(
        &self,
        message: NewMessage,
        done: impl FnOnce(Result<StoredMessage, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.queue(Request::Append(message, Box::new(done)))
    }

    /// [`MessageStore::list_by_room`] on the worker.
    pub fn list_by_room(
        &self,
        room: impl Into<String>,
        limit: usize,
        before: Option<u64>,
        done: impl FnOnce(Result<Vec<StoredMessage>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        let room = room.into();
        self.call(move |store| done(store.list_by_room(&room, limit, before)))
    }

    /// [`MessageStore::replay_from`] on the worker.
    pub fn replay_from(
        &self,
        after: u64,
        room: Option<String>,
        limit: usize,
        done: impl FnOnce(Result<Replay, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.call(move |store| done(store.replay_from(after, room.as_deref(), limit)))
    }

    /// Close the store: once every request queued before has been handled,
    /// the worker drops the store (a database closes its file) and stops;
    /// requests after that fail with [`StoreError::Closed`]. Blocks the
    /// calling thread (call it at shutdown, not on an event loop) until the
    /// store is dropped, or `timeout` passes: then [`StoreError::Busy`].
    pub fn close(&self, timeout: Duration) -> Result<(), StoreError> {
        let (closed, done) = mpsc::sync_channel(1);
        self.tx
            .send(Request::Close(closed))
            .map_err(|_| StoreError::Closed)?;
        match done.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(StoreError::Busy),
            Err(RecvTimeoutError::Disconnected) => Err(StoreError::Closed),
        }
    }

    /// Run `f` on the worker with the store, after every request queued
    /// before it (appends included: their callbacks have run).
    pub fn call(
        &self,
        f: impl FnOnce(&mut dyn MessageStore) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.queue(Request::Call(Box::new(f)))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Barrier, Mutex},
        time::Duration,
    };

    use super::*;
    use crate::store::{testing::message, MemoryStore, Retention};

    const WAIT: Duration = Duration::from_secs(10);

    /// A store that records the size of every batch it was given and can be
    /// held still until released, so appends pile up in the queue.
    struct Gated {
        inner: MemoryStore,
        batches: Arc<Mutex<Vec<usize>>>,
        fail: bool,
    }

    impl MessageStore for Gated {
        fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
            self.batches.lock().unwrap().push(batch.len());
            if self.fail {
                return Err(StoreError::Backend("disk full".into()));
            }
            self.inner.append(batch)
        }
        fn list_by_room(
            &mut self,
            room: &str,
            limit: usize,
            before: Option<u64>,
        ) -> Result<Vec<StoredMessage>, StoreError> {
            self.inner.list_by_room(room, limit, before)
        }
        fn replay_from(
            &mut self,
            after: u64,
            room: Option<&str>,
            limit: usize,
        ) -> Result<Replay, StoreError> {
            self.inner.replay_from(after, room, limit)
        }
        fn epoch(&mut self) -> Result<String, StoreError> {
            self.inner.epoch()
        }
    }

    fn gated(
        fail: bool,
        config: WorkerConfig,
    ) -> (StoreHandle, Arc<Mutex<Vec<usize>>>, Arc<Barrier>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Barrier::new(2));
        let store = Gated {
            inner: MemoryStore::new(Retention::UNLIMITED),
            batches: batches.clone(),
            fail,
        };
        let handle = StoreWorker::spawn(store, config).unwrap();
        // Hold the worker inside a call (the queue empty) until the test
        // has queued and waits on `gate`.
        let gate2 = gate.clone();
        handle
            .call(move |_| {
                gate2.wait();
                gate2.wait();
            })
            .unwrap();
        gate.wait();
        (handle, batches, gate)
    }

    /// A store that tells when it is dropped.
    struct Dropped(MemoryStore, mpsc::Sender<()>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            let _ = self.1.send(());
        }
    }

    impl MessageStore for Dropped {
        fn append(&mut self, b: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
            self.0.append(b)
        }
        fn list_by_room(
            &mut self,
            r: &str,
            l: usize,
            b: Option<u64>,
        ) -> Result<Vec<StoredMessage>, StoreError> {
            self.0.list_by_room(r, l, b)
        }
        fn replay_from(&mut self, a: u64, r: Option<&str>, l: usize) -> Result<Replay, StoreError> {
            self.0.replay_from(a, r, l)
        }
        fn epoch(&mut self) -> Result<String, StoreError> {
            self.0.epoch()
        }
    }

    #[test]
    fn close_drains_then_drops_the_store_while_handles_live() {
        let (dropped_tx, dropped) = mpsc::channel();
        let store = Dropped(MemoryStore::default(), dropped_tx);
        let handle = StoreWorker::spawn(store, WorkerConfig::default()).unwrap();
        let other = handle.clone();
        let (tx, rx) = mpsc::channel();
        handle
            .append(message("dev", 1), move |r| tx.send(r).unwrap())
            .unwrap();
        handle.close(Duration::from_secs(10)).unwrap();
        assert_eq!(dropped.try_recv(), Ok(()), "dropped while a handle lives");
        assert_eq!(rx.try_recv().unwrap().unwrap().id, 1, "queued before: done");
        let after = other.append(message("dev", 2), |_| {});
        assert_eq!(after, Err(StoreError::Closed));
        assert_eq!(other.close(Duration::from_secs(1)), Err(StoreError::Closed));
    }

    #[test]
    fn queued_appends_are_committed_in_batches_in_order_and_calls_wait_for_them() {
        let config = WorkerConfig {
            queue: 100,
            max_batch: 4,
        };
        let (handle, batches, gate) = gated(false, config);
        let (tx, rx) = mpsc::channel();
        for i in 0..10u64 {
            let append_tx = tx.clone();
            handle
                .append(message("r", i), move |stored| {
                    append_tx
                        .send(format!("append {}", stored.unwrap().id))
                        .unwrap();
                })
                .unwrap();
            if i == 5 {
                let tx = tx.clone();
                handle
                    .call(move |store| {
                        let n = store.list_by_room("r", 100, None).unwrap().len();
                        tx.send(format!("call sees {n}")).unwrap();
                    })
                    .unwrap();
            }
        }
        gate.wait(); // release the worker
        let log: Vec<String> = (0..11).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        let mut expected: Vec<String> = (1..=6).map(|i| format!("append {i}")).collect();
        expected.push("call sees 6".into());
        expected.extend((7..=10).map(|i| format!("append {i}")));
        assert_eq!(log, expected);
        // Six appends before the call: batches of 4 and 2; then 4.
        assert_eq!(*batches.lock().unwrap(), vec![4, 2, 4]);
    }

    #[test]
    fn a_full_queue_is_busy_and_a_failed_batch_fails_every_append() {
        let config = WorkerConfig {
            queue: 3,
            max_batch: 10,
        };
        let (handle, batches, gate) = gated(true, config);
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            let tx = tx.clone();
            handle
                .append(message("r", i), move |r| tx.send(r).unwrap())
                .unwrap();
        }
        assert_eq!(
            handle.append(message("r", 9), |_| panic!("never queued")),
            Err(StoreError::Busy)
        );
        gate.wait();
        for _ in 0..3 {
            assert_eq!(
                rx.recv_timeout(WAIT).unwrap(),
                Err(StoreError::Backend("disk full".into()))
            );
        }
        assert_eq!(*batches.lock().unwrap(), vec![3]);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_worker_and_dropping_handles_ends_it() {
        let handle = StoreWorker::spawn(MemoryStore::default(), WorkerConfig::default()).unwrap();
        handle.call(|_| panic!("callback bug")).unwrap();
        let (tx, rx) = mpsc::channel();
        handle
            .list_by_room("r", 1, None, move |r| tx.send(r).unwrap())
            .unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(vec![]));

        // The store is dropped when the last handle is.
        let (tx, rx) = mpsc::channel();
        let handle =
            StoreWorker::spawn(Dropped(MemoryStore::default(), tx), WorkerConfig::default())
                .unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        handle
            .append(message("r", 0), move |r| {
                done_tx.send(r.map(|m| m.id)).unwrap()
            })
            .unwrap();
        drop(handle);
        assert_eq!(
            done_rx.recv_timeout(WAIT).unwrap(),
            Ok(1),
            "queued work is drained"
        );
        rx.recv_timeout(WAIT).expect("the store is dropped");
    }
}
