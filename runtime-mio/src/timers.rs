//! The loop's deadlines: one binary heap for every timer on the loop, with
//! lazy invalidation, and the [`Timer`] a driver (or `sleep`) waits with.
//!
//! Each timer has an id and at most one deadline that counts
//! (`queued[id]`), with the waker of the task that last polled it. Arming
//! pushes a heap entry only when it is earlier than the one that counts;
//! a later deadline waits until the earlier entry fires, whose task then
//! re-arms (the driver only ever moves its timer earlier, or re-arms after
//! it fired). Entries that no longer count are skipped when popped, and the
//! heap is rebuilt from the live deadlines once it holds more than twice as
//! many entries as there are live ones (plus a little slack): its size stays
//! bounded by the number of timers, however often they re-arm.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{Arc, MutexGuard},
    task::{Context, Poll, Waker},
    time::Instant,
};

use hubbub_ws::driver::Timer;

use crate::reactor::{lock, pick, Shared};

/// Entries allowed beyond twice the live deadlines before a rebuild.
const SLACK: usize = 64;

/// Every deadline of one loop.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// By timer id: the deadline whose heap entry counts.
    queued: Vec<Option<Instant>>,
    /// By timer id: the waker of the task waiting for it.
    wakers: Vec<Option<Waker>>,
    /// By timer id: the deadline its [`LoopTimer`] is set to (kept here,
    /// not in the timer, which every connection's task holds).
    deadlines: Vec<Option<Instant>>,
    /// Ids free for new timers.
    free: Vec<usize>,
    /// How many `queued` slots are set.
    live: usize,
}

impl Timers {
    /// A new timer's id.
    pub(crate) fn insert(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.queued.push(None);
            self.wakers.push(None);
            self.deadlines.push(None);
            self.queued.len() - 1
        })
    }

    /// Timer `id` is gone: its entries no longer count, its id is reused.
    pub(crate) fn remove(&mut self, id: usize) {
        self.forget(id);
        if let Some(waker) = self.wakers.get_mut(id) {
            *waker = None;
            self.deadlines[id] = None;
            self.free.push(id);
        }
    }

    /// Make sure timer `id` fires at `at` (or earlier), waking `waker` if
    /// given (else the last one given). True if a heap entry was pushed.
    pub(crate) fn arm(&mut self, id: usize, at: Instant, waker: Option<&Waker>) -> bool {
        if self.queued.len() <= id {
            self.queued.resize(id + 1, None);
            self.wakers.resize(id + 1, None);
            self.deadlines.resize(id + 1, None);
        }
        if let Some(waker) = waker {
            match &mut self.wakers[id] {
                Some(old) if old.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        }
        let slot = &mut self.queued[id];
        if slot.is_some_and(|queued| queued <= at) {
            return false;
        }
        if slot.replace(at).is_none() {
            self.live += 1;
        }
        self.heap.push(Reverse((at, id)));
        if self.heap.len() > 2 * self.live + SLACK {
            self.rebuild();
        }
        true
    }

    fn forget(&mut self, id: usize) {
        if let Some(slot) = self.queued.get_mut(id) {
            if slot.take().is_some() {
                self.live -= 1;
            }
        }
    }

    /// Hand every timer whose deadline passed by `now` to `wake`, with its
    /// waker.
    pub(crate) fn expire(&mut self, now: Instant, mut wake: impl FnMut(usize, Option<Waker>)) {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.counts(at, id) {
                self.queued[id] = None;
                self.live -= 1;
                wake(id, self.wakers[id].take());
            }
        }
    }

    /// The earliest deadline that counts.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if self.counts(at, id) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Heap entries held (live or not): for tests of the bound.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.heap.len()
    }

    fn counts(&self, at: Instant, id: usize) -> bool {
        self.queued.get(id).copied().flatten() == Some(at)
    }

    fn rebuild(&mut self) {
        self.heap = self
            .queued
            .iter()
            .enumerate()
            .filter_map(|(id, at)| at.map(|at| Reverse((at, id))))
            .collect();
    }
}

/// A [`Timer`] in a loop's heap. [`Default`] makes an unset timer that
/// joins a loop (the current one, else a default one) when first armed;
/// it may be polled from any thread.
///
/// Its deadline is kept in the loop's table, by the timer's id, so that
/// the timer is 16 bytes: it is part of every connection's task.
pub struct LoopTimer {
    /// The loop, once chosen.
    shared: Option<Arc<Shared>>,
    /// The timer's id in its loop's table, or [`NO_ID`].
    id: u32,
    /// A deadline is set (and has not been seen to pass).
    set: bool,
}

/// [`LoopTimer::id`] of a timer that has none in its loop's table.
const NO_ID: u32 = u32::MAX;

impl Default for LoopTimer {
    fn default() -> Self {
        LoopTimer {
            shared: None,
            id: NO_ID,
            set: false,
        }
    }
}

impl std::fmt::Debug for LoopTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopTimer")
            .field("set", &self.set)
            .finish_non_exhaustive()
    }
}

impl LoopTimer {
    /// An unset timer of `shared`'s loop.
    #[cfg_attr(not(feature = "hub"), allow(dead_code))]
    pub(crate) fn on(shared: Arc<Shared>) -> Self {
        LoopTimer {
            shared: Some(shared),
            id: NO_ID,
            set: false,
        }
    }

    /// The timer's loop, its table locked, and its id there (taken now
    /// if it has none).
    fn table(&mut self) -> (&Arc<Shared>, MutexGuard<'_, Timers>, usize) {
        let shared = self.shared.get_or_insert_with(pick);
        let mut timers = lock(&shared.timers);
        if self.id == NO_ID {
            // Ids stay far below `u32::MAX`: one per live timer of the loop.
            self.id = u32::try_from(timers.insert()).unwrap_or(NO_ID - 1);
        }
        (shared, timers, self.id as usize)
    }
}

impl Drop for LoopTimer {
    fn drop(&mut self) {
        if let (Some(shared), true) = (&self.shared, self.id != NO_ID) {
            lock(&shared.timers).remove(self.id as usize);
        }
    }
}

impl Timer for LoopTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn reset(&mut self, deadline: Instant) {
        self.set = true;
        let (shared, mut timers, id) = self.table();
        timers.deadlines[id] = Some(deadline);
        let pushed = timers.arm(id, deadline, None);
        drop(timers);
        if pushed && !shared.is_current() {
            // The loop may be asleep with a later deadline.
            shared.signal();
        }
    }

    fn cancel(&mut self) {
        self.set = false;
        if let (Some(shared), true) = (&self.shared, self.id != NO_ID) {
            lock(&shared.timers).remove(self.id as usize);
            self.id = NO_ID;
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.set {
            return Poll::Pending;
        }
        let now = Instant::now();
        let (shared, mut timers, id) = self.table();
        let Some(deadline) = timers.deadlines[id] else {
            return Poll::Pending; // not reached: `set` means a deadline
        };
        if deadline <= now {
            timers.deadlines[id] = None;
            drop(timers);
            self.set = false;
            return Poll::Ready(());
        }
        // An earlier entry of this timer may have fired meanwhile.
        let pushed = timers.arm(id, deadline, Some(cx.waker()));
        drop(timers);
        if pushed && !shared.is_current() {
            shared.signal();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Every connection's task holds a timer: its deadline is in the loop's
    /// table.
    #[test]
    fn a_timer_is_16_bytes() {
        assert_eq!(size_of::<LoopTimer>(), 16);
    }

    #[test]
    fn rearming_keeps_the_heap_bounded() {
        let mut timers = Timers::default();
        let start = Instant::now();
        for key in 0..10 {
            // Ever earlier deadlines: each one pushes an entry.
            for i in (0..1000u64).rev() {
                timers.arm(key, start + Duration::from_millis(i), None);
            }
        }
        assert!(timers.entries() <= 2 * 10 + SLACK, "{}", timers.entries());
        // Later deadlines never push while an earlier one counts.
        let before = timers.entries();
        timers.arm(3, start + Duration::from_secs(60), None);
        assert_eq!(timers.entries(), before);
        assert_eq!(timers.next(), Some(start));
    }

    #[test]
    fn a_cancelled_timer_leaves_the_loop() {
        let poll = mio::Poll::new().unwrap();
        let executor = crate::reactor::Executor::new(poll.registry(), mio::Token(0)).unwrap();
        let shared = executor.shared.clone();
        let mut timer = LoopTimer::on(shared.clone());
        let at = Instant::now() + Duration::from_secs(60);
        timer.reset(at);
        assert_eq!(lock(&shared.timers).next(), Some(at));
        timer.cancel();
        let mut timers = lock(&shared.timers);
        assert_eq!((timers.next(), timers.live), (None, 0));
        assert_eq!(timers.free, [0], "its id is free for the next timer");
        drop(timers);
        assert!(timer
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending());
        timer.reset(at); // armed again, with a fresh id
        assert_eq!(lock(&shared.timers).next(), Some(at));
        drop(timer);
        assert_eq!(lock(&shared.timers).live, 0);
    }

    #[test]
    fn expire_wakes_each_due_task_once_and_skips_forgotten_ones() {
        let mut timers = Timers::default();
        let start = Instant::now();
        timers.arm(0, start + Duration::from_millis(5), None);
        timers.arm(0, start + Duration::from_millis(1), None); // earlier: counts
        timers.arm(1, start + Duration::from_millis(2), None);
        timers.arm(2, start + Duration::from_millis(3), None);
        timers.remove(2);
        timers.arm(3, start + Duration::from_secs(9), None);
        let mut woken = Vec::new();
        timers.expire(start + Duration::from_millis(10), |key, _| woken.push(key));
        assert_eq!(woken, [0, 1]);
        assert_eq!(timers.next(), Some(start + Duration::from_secs(9)));
        assert_eq!(timers.live, 1);
    }
}
