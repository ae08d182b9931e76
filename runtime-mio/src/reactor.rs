//! One loop's reactor and executor: what every task, socket and timer of a
//! `mio::Poll` loop shares, across threads.
//!
//! Sources (sockets, listeners) get a slot and a token each and store the
//! waker of the task polling them, one for reading and one for writing; a
//! readiness event wakes it. A socket polled by its own task with the task's
//! waker takes the task's token instead (no slot): its events wake the task
//! (see `MioIo`). Timers live in the loop's heap with their waker. Tasks sit
//! in a slab on the loop's thread, each one allocation that is also its
//! waker (see `task`); a task's waker puts its key on the ready list, from
//! any thread, and interrupts the loop's poll. A future spawned from another
//! thread is queued and the loop picked up.
//!
//! The loop that is running a task on this thread is the *current* loop:
//! what is created there (a socket, a timer, a spawned task) joins it.

use std::{
    cell::RefCell,
    future::Future,
    io,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    task::{Context, Poll, Wake, Waker},
    time::{Duration, Instant},
};

use mio::{event::Event, Events, Interest, Registry, Token};
use slab::Slab;

use crate::{
    task::{Slot, Spawned},
    timers::Timers,
};

/// Rounds of polling in one [`Executor::process`] before returning to the
/// poll (tasks that keep waking each other must not starve I/O).
const MAX_ROUNDS: usize = 64;

/// Task slots a loop's slab reserves at once: 128 KiB of address space,
/// which the allocator maps without touching it (a page is resident once a
/// task uses it). Growing a small slab step by step instead copies it each
/// time, and the copies it leaves behind stay resident: some 26 bytes per
/// connection at 5 000 connections a loop.
const TASKS_RESERVED: usize = 8192;

/// Lock, ignoring poison: every critical section here leaves its data
/// consistent (a push, a take, a slab insert or removal).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wakers of one registered source.
#[derive(Default)]
struct Source {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// The registered sources of a loop, by id (a plain vector and a free
/// list rather than a `Slab`: a slot is the two wakers, 32 bytes, where a
/// slab's entry would take 40). A free slot holds no waker; an event for
/// it (one that was queued before its source left) wakes nothing.
#[derive(Default)]
struct Sources {
    slots: Vec<Source>,
    free: Vec<u32>,
}

/// Which of a source's wakers.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// What every waker, socket and timer of a loop shares.
pub(crate) struct Shared {
    /// Keys of scheduled tasks.
    ready: Mutex<Vec<usize>>,
    /// The loop is awake or already signalled: a wake need not interrupt
    /// its poll.
    signalled: AtomicBool,
    waker: mio::Waker,
    registry: Registry,
    /// The waker's token; sources take the tokens above it.
    base: usize,
    sources: Mutex<Sources>,
    pub(crate) timers: Mutex<Timers>,
    /// Futures spawned onto this loop, not yet in its slab.
    spawned: Mutex<Vec<Spawned>>,
}

impl Shared {
    pub(crate) fn schedule(&self, key: usize) {
        lock(&self.ready).push(key);
        self.signal();
    }

    /// Make the loop look at its shared state, unless it will anyway.
    pub(crate) fn signal(&self) {
        if !self.signalled.swap(true, SeqCst) {
            // Only fails if the eventfd is gone, i.e. the loop is.
            let _ = self.waker.wake();
        }
    }

    /// Interrupt the loop's poll, whatever it is doing.
    #[cfg_attr(not(feature = "hub"), allow(dead_code))]
    pub(crate) fn wake_loop(&self) {
        let _ = self.waker.wake();
    }

    /// Run `future` on this loop.
    pub(crate) fn spawn(self: &Arc<Self>, future: impl Future<Output = ()> + Send + 'static) {
        lock(&self.spawned).push(Spawned::new(future, self.clone()));
        self.signal();
    }

    /// Register `source` with this loop for `interest`; its id. Free it
    /// with [`remove_source`](Self::remove_source).
    pub(crate) fn add_source(
        &self,
        source: &mut impl mio::event::Source,
        interest: Interest,
    ) -> io::Result<u32> {
        self.add_slot(source, interest, false)
    }

    /// Register `source` for `interest` so that its readiness events wake
    /// the task with `key` (on this loop) directly: no slot, no waker
    /// stored (the task polls it with its own waker, on this loop).
    pub(crate) fn add_task_source(
        &self,
        source: &mut impl mio::event::Source,
        interest: Interest,
        key: u32,
    ) -> io::Result<()> {
        self.registry
            .register(source, self.task_token(key), interest)
    }

    /// Move `source`, registered for a task's key, to a slot of its own
    /// (it is polled by another task now, or with another waker); its id.
    pub(crate) fn move_to_slot(
        &self,
        source: &mut impl mio::event::Source,
        interest: Interest,
    ) -> io::Result<u32> {
        self.add_slot(source, interest, true)
    }

    /// The token of source slot `id`: tokens above `base` alternate between
    /// source slots (even offsets) and tasks' keys (odd ones).
    fn slot_token(&self, id: u32) -> Token {
        Token(self.base + 1 + 2 * id as usize)
    }

    /// The token whose events wake the task with `key`.
    fn task_token(&self, key: u32) -> Token {
        Token(self.base + 2 + 2 * key as usize)
    }

    fn add_slot(
        &self,
        source: &mut impl mio::event::Source,
        interest: Interest,
        registered: bool,
    ) -> io::Result<u32> {
        let id = {
            let mut sources = lock(&self.sources);
            match sources.free.pop() {
                Some(id) => id,
                None => {
                    let id = u32::try_from(sources.slots.len())
                        .map_err(|_| io::Error::other("too many sources on one loop"))?;
                    sources.slots.push(Source::default());
                    id
                }
            }
        };
        let token = self.slot_token(id);
        let registering = match registered {
            true => self.registry.reregister(source, token, interest),
            false => self.registry.register(source, token, interest),
        };
        if let Err(error) = registering {
            self.remove_source(id);
            return Err(error);
        }
        Ok(id)
    }

    /// Source slots in use: for tests.
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        let sources = lock(&self.sources);
        sources.slots.len() - sources.free.len()
    }

    /// Source `id` is gone: drop its wakers, free its id.
    pub(crate) fn remove_source(&self, id: u32) {
        let mut sources = lock(&self.sources);
        if let Some(source) = sources.slots.get_mut(id as usize) {
            *source = Source::default();
            sources.free.push(id);
        }
    }

    /// Set the waker of source `id`'s `direction`; true if one was set
    /// (and not taken by an event).
    pub(crate) fn swap_waker(&self, id: u32, direction: Direction, waker: &Waker) -> bool {
        let mut sources = lock(&self.sources);
        let Some(source) = sources.slots.get_mut(id as usize) else {
            return false;
        };
        let slot = match direction {
            Direction::Read => &mut source.reader,
            Direction::Write => &mut source.writer,
        };
        let waiting = slot.is_some();
        match slot {
            Some(old) if old.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
        waiting
    }

    /// Whether this loop is the one running on this thread.
    pub(crate) fn is_current(self: &Arc<Self>) -> bool {
        CURRENT.with(|current| {
            current
                .borrow()
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, self))
        })
    }
}

thread_local! {
    /// The loop processing tasks on this thread, if any.
    static CURRENT: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

/// The loop a new socket or timer joins: the current one, else one of the
/// default loops (round-robin).
pub(crate) fn pick() -> Arc<Shared> {
    CURRENT
        .with(|current| current.borrow().clone())
        .unwrap_or_else(default_loop)
}

/// The loop a new task joins: a loop of the user's own keeps its tasks;
/// from a default loop (or no loop), tasks are spread over the default
/// loops, so that a server's accept task does not keep every connection
/// on its own thread.
pub(crate) fn pick_for_task() -> Arc<Shared> {
    match CURRENT.with(|current| current.borrow().clone()) {
        Some(current) if !is_default(&current) => current,
        _ => default_loop(),
    }
}

/// The default loops: one thread each, started on first use.
static LOOPS: OnceLock<Vec<Arc<Shared>>> = OnceLock::new();

/// One of the default loops (round-robin).
fn default_loop() -> Arc<Shared> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let loops = LOOPS.get_or_init(|| (0..default_loops()).map(start_default_loop).collect());
    loops[NEXT.fetch_add(1, SeqCst) % loops.len()].clone()
}

/// How many default loops there are, or will be once started:
/// `HUBBUB_MIO_THREADS`, else the number of CPUs this process may use.
pub fn default_loops() -> usize {
    std::env::var("HUBBUB_MIO_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1)
}

fn is_default(shared: &Arc<Shared>) -> bool {
    LOOPS
        .get()
        .is_some_and(|loops| loops.iter().any(|l| Arc::ptr_eq(l, shared)))
}

fn start_default_loop(n: usize) -> Arc<Shared> {
    let (started, shared) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("hubbub-mio-rt-{n}"))
        .spawn(move || {
            let poll = mio::Poll::new().expect("hubbub-mio: cannot create a mio poll");
            let executor =
                Executor::new(poll.registry(), Token(0)).expect("hubbub-mio: cannot start a loop");
            let _ = started.send(executor.shared.clone());
            run_forever(poll, executor);
        })
        .expect("hubbub-mio: cannot start a loop thread");
    shared
        .recv()
        .expect("hubbub-mio: a loop thread failed to start")
}

/// A default loop's thread: wait, then process, for ever.
fn run_forever(mut poll: mio::Poll, mut executor: Executor) {
    let mut events = Events::with_capacity(1024);
    while wait(&mut poll, &mut events, &mut executor, false).is_ok() {
        executor.process();
    }
}

/// Wait for a loop's events (until its next deadline; not at all when
/// `busy`) and wake the tasks they are for. Call it after
/// [`Executor::process`].
pub(crate) fn wait(
    poll: &mut mio::Poll,
    events: &mut Events,
    executor: &mut Executor,
    busy: bool,
) -> io::Result<()> {
    let timeout = match busy {
        true => Some(Duration::ZERO),
        false => executor.next_timeout(),
    };
    match poll.poll(events, timeout) {
        Err(error) if error.kind() != io::ErrorKind::Interrupted => return Err(error),
        _ => {}
    }
    for event in &*events {
        executor.handle_event(event);
    }
    Ok(())
}

/// A source's place in its loop: its token and wakers. Dropping it frees
/// the token (the socket leaves the poll when it is closed).
pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: u32,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish()
    }
}

impl Registration {
    /// Register `source` with `shared`'s loop for read and write readiness.
    pub(crate) fn new(
        shared: Arc<Shared>,
        source: &mut impl mio::event::Source,
        interest: Interest,
    ) -> io::Result<Self> {
        let id = shared.add_source(source, interest)?;
        Ok(Registration { shared, id })
    }

    /// Have the next readiness event in `direction` wake `waker`.
    pub(crate) fn set_waker(&self, direction: Direction, waker: &Waker) {
        self.shared.swap_waker(self.id, direction, waker);
    }

    /// Whether the source is still waiting in `direction`: no readiness
    /// event came since the last [`set_waker`](Self::set_waker). If so, the
    /// next one wakes `waker` instead.
    #[cfg_attr(not(feature = "signal"), allow(dead_code))]
    pub(crate) fn still_waiting(&self, direction: Direction, waker: &Waker) -> bool {
        self.shared.swap_waker(self.id, direction, waker)
    }

    /// Poll `op` on this source; while it is pending, the next readiness
    /// event in `direction` wakes the task. Off the source's loop an event
    /// may come between `op` and storing the waker, so `op` is tried once
    /// more after.
    pub(crate) fn poll_ready<T>(
        &self,
        direction: Direction,
        cx: &Context<'_>,
        mut op: impl FnMut() -> Poll<T>,
    ) -> Poll<T> {
        if let Poll::Ready(value) = op() {
            return Poll::Ready(value);
        }
        self.set_waker(direction, cx.waker());
        if self.shared.is_current() {
            return Poll::Pending;
        }
        op()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.remove_source(self.id);
    }
}

/// The waker of a future polled outside the slab (`block_on_local`'s):
/// marks it woken, and makes the loop look.
pub(crate) struct TaskWaker {
    key: usize,
    scheduled: AtomicBool,
    shared: Arc<Shared>,
}

impl TaskWaker {
    /// The waker of a future polled outside the slab (`block_on_local`'s),
    /// scheduled to begin with: its key is none of the slab's, so a wake
    /// marks it and makes the loop look, and processing skips the key.
    pub(crate) fn outside(shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(TaskWaker {
            key: usize::MAX,
            scheduled: AtomicBool::new(true),
            shared,
        })
    }

    /// Whether it was woken since the last call.
    pub(crate) fn take_woken(&self) -> bool {
        self.scheduled.swap(false, SeqCst)
    }

    /// Whether it was woken and not yet taken.
    pub(crate) fn is_woken(&self) -> bool {
        self.scheduled.load(SeqCst)
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, SeqCst) {
            self.shared.schedule(self.key);
        }
    }
}

/// Puts the previous current loop back when a loop's processing ends.
pub(crate) struct Enter(Option<Arc<Shared>>);

impl Enter {
    /// Make `shared` this thread's current loop.
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        Enter(CURRENT.with(|current| current.replace(Some(shared.clone()))))
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|current| *current.borrow_mut() = self.0.take());
    }
}

/// A loop's tasks, polled on its thread.
pub(crate) struct Executor {
    tasks: Slab<Slot>,
    pub(crate) shared: Arc<Shared>,
    /// The ready list being worked on (swapped with the shared one, so
    /// both keep their capacity).
    batch: Vec<usize>,
}

impl Executor {
    /// An executor on `registry`'s poll; its `mio::Waker` takes token
    /// `base`, sources the tokens above.
    pub(crate) fn new(registry: &Registry, base: Token) -> io::Result<Self> {
        let waker = mio::Waker::new(registry, base)?;
        Ok(Executor {
            tasks: Slab::with_capacity(TASKS_RESERVED),
            shared: Arc::new(Shared {
                ready: Mutex::new(Vec::new()),
                signalled: AtomicBool::new(false),
                waker,
                registry: registry.try_clone()?,
                base: base.0,
                sources: Mutex::default(),
                timers: Mutex::default(),
                spawned: Mutex::new(Vec::new()),
            }),
            batch: Vec::new(),
        })
    }

    /// Add a task (made on this thread: need not be `Send`), scheduled
    /// for the next round; its key.
    pub(crate) fn spawn(&mut self, future: impl Future<Output = ()> + 'static) -> usize {
        self.insert(Slot::local(future, self.shared.clone()))
    }

    /// Add `task`, scheduled for the next round (it is made scheduled).
    fn insert(&mut self, task: Slot) -> usize {
        let entry = self.tasks.vacant_entry();
        let key = entry.key();
        // Keys stay far below `u32::MAX`: one per live task of the loop.
        task.set_key(u32::try_from(key).unwrap_or(u32::MAX));
        lock(&self.shared.ready).push(key);
        entry.insert(task);
        key
    }

    /// Wake the tasks waiting for the event's source. False: not one of
    /// this loop's tokens.
    pub(crate) fn handle_event(&mut self, event: &Event) -> bool {
        let token = event.token().0;
        if token < self.shared.base {
            return false;
        }
        // `process` runs next: a wake need not interrupt a poll.
        self.shared.signalled.store(true, SeqCst);
        let Some(offset) = token.checked_sub(self.shared.base + 1) else {
            return true; // the loop's waker
        };
        let id = offset / 2;
        if offset % 2 == 1 {
            // A socket of the task with this key (see `add_task_source`):
            // wake it, whichever way the socket became ready. (An event
            // queued before the task ended may wake the task that took
            // its key since: a spurious wake-up, harmless.)
            if let Some(task) = self.tasks.get(id) {
                task.wake();
            }
            return true;
        }
        let (reader, writer) = {
            let mut sources = lock(&self.shared.sources);
            let Some(source) = sources.slots.get_mut(id) else {
                return true;
            };
            let error = event.is_error();
            let read = error || event.is_readable() || event.is_read_closed();
            let write = error || event.is_writable() || event.is_write_closed();
            (
                source.reader.take_if(|_| read),
                source.writer.take_if(|_| write),
            )
        };
        for waker in [reader, writer].into_iter().flatten() {
            waker.wake();
        }
        true
    }

    /// How long the loop may sleep: zero while tasks are scheduled, else
    /// until the earliest deadline (`None`: no deadline).
    pub(crate) fn next_timeout(&self) -> Option<Duration> {
        if !lock(&self.shared.ready).is_empty() || !lock(&self.shared.spawned).is_empty() {
            return Some(Duration::ZERO);
        }
        let next = lock(&self.shared.timers).next()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    /// The loop's thread is about to [`process`](Self::process): until
    /// then, a wake need not interrupt its poll (a future polled outside
    /// the executor, say, spawning tasks).
    pub(crate) fn awake(&self) {
        self.shared.signalled.store(true, SeqCst);
    }

    /// Take in spawned futures, fire due timers and poll every scheduled
    /// task, a bounded number of rounds.
    pub(crate) fn process(&mut self) {
        let _enter = Enter::new(&self.shared);
        // Wakes from here on are seen by the loop below, or by
        // `next_timeout`: they need not interrupt a poll.
        self.shared.signalled.store(true, SeqCst);
        let mut due = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let spawned = std::mem::take(&mut *lock(&self.shared.spawned));
            for task in spawned {
                self.insert(Slot::spawned(task));
            }
            lock(&self.shared.timers).expire(Instant::now(), |_, waker| due.extend(waker));
            for waker in due.drain(..) {
                waker.wake();
            }
            std::mem::swap(&mut *lock(&self.shared.ready), &mut self.batch);
            if self.batch.is_empty() {
                break;
            }
            let mut batch = std::mem::take(&mut self.batch);
            for key in batch.drain(..) {
                self.poll_task(key);
            }
            self.batch = batch;
        }
        // From here on, a wake must interrupt the coming poll; one that came
        // before is seen by `next_timeout`.
        self.shared.signalled.store(false, SeqCst);
    }

    fn poll_task(&mut self, key: usize) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        crate::io::next_poll();
        // A panicking task ends itself (its connection), not the loop.
        let polled = catch_unwind(AssertUnwindSafe(|| task.poll()));
        if !matches!(polled, Ok(Poll::Pending)) {
            // Dropping the task closes its sockets and frees its timers.
            drop(self.tasks.remove(key));
        }
    }

    /// Drop every task at once.
    pub(crate) fn abort_all(&mut self) {
        let _enter = Enter::new(&self.shared);
        self.tasks.clear();
        lock(&self.shared.spawned).clear();
        lock(&self.shared.ready).clear();
    }

    /// Tasks running.
    #[cfg_attr(not(feature = "hub"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }
}
