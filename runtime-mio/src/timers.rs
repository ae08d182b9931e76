//! The loop's deadlines: one binary heap for every task on the loop, with
//! lazy invalidation, and the [`Timer`] each task's driver sleeps with.
//!
//! Each task has at most one deadline that counts (`queued[key]`). Arming
//! pushes a heap entry only when it is earlier than the one that counts;
//! a later deadline waits until the earlier entry fires, whose task then
//! re-arms (the driver only ever moves its timer earlier, or re-arms after
//! it fired). Entries that no longer count are skipped when popped, and the
//! heap is rebuilt from the live deadlines once it holds more than twice as
//! many entries as there are live ones (plus a little slack): its size stays
//! bounded by the number of tasks, however often they re-arm.

use std::{
    cell::RefCell,
    cmp::Reverse,
    collections::BinaryHeap,
    rc::Rc,
    task::{Context, Poll},
    time::Instant,
};

use hubbub_realtime::driver::Timer;

/// Entries allowed beyond twice the live deadlines before a rebuild.
const SLACK: usize = 64;

/// Every deadline of one loop.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// By task key: the deadline whose heap entry counts.
    queued: Vec<Option<Instant>>,
    /// How many `queued` slots are set.
    live: usize,
}

impl Timers {
    /// Make sure task `key` is woken at `at` (or earlier).
    pub(crate) fn arm(&mut self, key: usize, at: Instant) {
        if self.queued.len() <= key {
            self.queued.resize(key + 1, None);
        }
        let slot = &mut self.queued[key];
        if slot.is_some_and(|queued| queued <= at) {
            return;
        }
        if slot.replace(at).is_none() {
            self.live += 1;
        }
        self.heap.push(Reverse((at, key)));
        if self.heap.len() > 2 * self.live + SLACK {
            self.rebuild();
        }
    }

    /// Task `key` is gone: its entries no longer count.
    pub(crate) fn forget(&mut self, key: usize) {
        if let Some(slot) = self.queued.get_mut(key) {
            if slot.take().is_some() {
                self.live -= 1;
            }
        }
    }

    /// Hand every task whose deadline passed by `now` to `wake`.
    pub(crate) fn expire(&mut self, now: Instant, mut wake: impl FnMut(usize)) {
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.counts(at, key) {
                self.queued[key] = None;
                self.live -= 1;
                wake(key);
            }
        }
    }

    /// The earliest deadline that counts.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if self.counts(at, key) {
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

    fn counts(&self, at: Instant, key: usize) -> bool {
        self.queued.get(key).copied().flatten() == Some(at)
    }

    fn rebuild(&mut self) {
        self.heap = self
            .queued
            .iter()
            .enumerate()
            .filter_map(|(key, at)| at.map(|at| Reverse((at, key))))
            .collect();
    }
}

/// A task's [`Timer`], backed by its loop's heap.
pub struct LoopTimer {
    timers: Rc<RefCell<Timers>>,
    key: usize,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for LoopTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopTimer")
            .field("key", &self.key)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl LoopTimer {
    pub(crate) fn new(timers: Rc<RefCell<Timers>>, key: usize) -> Self {
        LoopTimer {
            timers,
            key,
            deadline: None,
        }
    }
}

impl Timer for LoopTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn reset(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        self.timers.borrow_mut().arm(self.key, deadline);
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<()> {
        match self.deadline {
            None => Poll::Pending,
            Some(deadline) if deadline <= Instant::now() => {
                self.deadline = None;
                Poll::Ready(())
            }
            Some(deadline) => {
                // An earlier entry of this task may have fired meanwhile.
                self.timers.borrow_mut().arm(self.key, deadline);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rearming_keeps_the_heap_bounded() {
        let mut timers = Timers::default();
        let start = Instant::now();
        for key in 0..10 {
            // Ever earlier deadlines: each one pushes an entry.
            for i in (0..1000u64).rev() {
                timers.arm(key, start + Duration::from_millis(i));
            }
        }
        assert!(timers.entries() <= 2 * 10 + SLACK, "{}", timers.entries());
        // Later deadlines never push while an earlier one counts.
        let before = timers.entries();
        timers.arm(3, start + Duration::from_secs(60));
        assert_eq!(timers.entries(), before);
        assert_eq!(timers.next(), Some(start));
    }

    #[test]
    fn expire_wakes_each_due_task_once_and_skips_forgotten_ones() {
        let mut timers = Timers::default();
        let start = Instant::now();
        timers.arm(0, start + Duration::from_millis(5));
        timers.arm(0, start + Duration::from_millis(1)); // earlier: counts
        timers.arm(1, start + Duration::from_millis(2));
        timers.arm(2, start + Duration::from_millis(3));
        timers.forget(2);
        timers.arm(3, start + Duration::from_secs(9));
        let mut woken = Vec::new();
        timers.expire(start + Duration::from_millis(10), |key| woken.push(key));
        assert_eq!(woken, [0, 1]);
        assert_eq!(timers.next(), Some(start + Duration::from_secs(9)));
        assert_eq!(timers.live, 1);
    }
}
