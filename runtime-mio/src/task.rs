//! A loop's task: its future and its waker's state in one allocation.
//!
//! An idle connection is mostly its task, so the task is one `Arc`: the
//! loop, the task's key in the loop's slab, the "scheduled" flag — what a
//! waker needs, from any thread — and the future, which only the loop's
//! thread touches. The `Arc` is the task's waker (no second allocation for
//! it), and the slab keeps a 16-byte pointer to it.
//!
//! The future may not be `Send` (a task spawned on the loop's own thread,
//! see [`Connections::spawn`](crate::Connections::spawn)), while wakers go
//! to any thread. So the future sits in an [`UnsafeCell`] reached only
//! through the task's one [`Slot`]: the executor's handle, which is not
//! `Send` (it stays on the thread where a local future was made), polls
//! through `&mut`, and drops the future in place when it is dropped itself
//! — so that a waker dropped last on another thread drops no future there.

use std::{
    cell::{Cell, UnsafeCell},
    future::Future,
    pin::Pin,
    ptr,
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering::SeqCst},
        Arc,
    },
    task::{Context, Poll, RawWakerVTable, Wake, Waker},
};

use crate::reactor::Shared;

/// A task: what its waker needs, and its future (`None` once cleared).
pub(crate) struct Task<F> {
    shared: Arc<Shared>,
    /// Its key in the loop's slab (set when it joins the slab, before it
    /// is first polled).
    key: AtomicU32,
    /// On the loop's ready list, or about to be: a wake need not push it
    /// again.
    scheduled: AtomicBool,
    future: UnsafeCell<Option<F>>,
}

// SAFETY: `shared`, `key` and `scheduled` are `Send` and `Sync`; `future`
// is reached only through `Run::poll` and `Run::clear`, which only the
// task's `Slot` calls: there is one `Slot` per task (made with it, by
// `Slot::local` or `Slot::spawned`), it is not `Send`, so it calls them on
// the thread where it was made — where a local future was made; a future
// that reaches its `Slot` from another thread is `Send` (`Spawned`) — and
// through `&mut self` or its drop, one call at a time. The `Slot`'s drop
// clears the future (drops it in place) before it lets go of the task, so
// a `Task` dropped on another thread (with the last waker, say) holds
// `None`. What other threads do with a `Task` — wake it, clone and drop
// wakers — touches the other fields only.
unsafe impl<F> Send for Task<F> {}
// SAFETY: as for `Send`: shared references on other threads use only the
// atomics and the loop's `Arc<Shared>` (`Sync`).
unsafe impl<F> Sync for Task<F> {}

/// The task being polled on this thread: its loop, its key and its own
/// waker (by address: data and vtable).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Polling {
    shared: *const Shared,
    key: u32,
    data: *const (),
    vtable: *const RawWakerVTable,
}

thread_local! {
    /// The task this thread is polling, if any (nested loops put theirs
    /// back when they return).
    static POLLING: Cell<Option<Polling>> = const { Cell::new(None) };
}

/// If `waker` is the own waker of the task being polled on this thread:
/// that task's loop (by address) and key. A socket polled so may let its
/// readiness events wake that task directly (see `MioIo`).
pub(crate) fn own_task(waker: &Waker) -> Option<(*const Shared, u32)> {
    let polling = POLLING.with(Cell::get)?;
    (polling.data == waker.data() && ptr::eq(polling.vtable, waker.vtable()))
        .then_some((polling.shared, polling.key))
}

/// Puts back the task polled before (none, or an outer loop's).
struct Restore(Option<Polling>);

impl Drop for Restore {
    fn drop(&mut self) {
        POLLING.with(|polling| polling.set(self.0));
    }
}

/// A task with its future's type erased.
trait Run {
    /// The task joins the slab under `key`.
    fn set_key(&self, key: u32);

    /// The task is about to be polled: wakes from now on schedule it again.
    fn unschedule(&self);

    /// The task's waker.
    fn waker(self: Arc<Self>) -> Waker;

    /// Its loop and its key.
    fn place(&self) -> (*const Shared, u32);

    /// Wake it.
    fn wake_here(&self);

    /// Poll the future (a cleared task is done).
    ///
    /// # Safety
    ///
    /// Only by the task's [`Slot`], with `&mut` to it: on the thread the
    /// future may be used on, and not from within a `poll` or `clear` of
    /// the same task.
    unsafe fn poll(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Drop the future, in place.
    ///
    /// # Safety
    ///
    /// As for [`poll`](Self::poll).
    unsafe fn clear(&self);
}

impl<F: Future<Output = ()> + 'static> Task<F> {
    fn new(future: F, shared: Arc<Shared>) -> Self {
        Task {
            shared,
            key: AtomicU32::new(u32::MAX),
            // Scheduled from the start: it joins the ready list with the slab.
            scheduled: AtomicBool::new(true),
            future: UnsafeCell::new(Some(future)),
        }
    }
}

/// A task made on another thread than its loop's, on its way there (its
/// future is `Send`: it may be dropped anywhere before it reaches the
/// loop).
pub(crate) struct Spawned(Arc<dyn Run + Send + Sync>);

impl Spawned {
    /// `future` as a task of `shared`'s loop.
    pub(crate) fn new(
        future: impl Future<Output = ()> + Send + 'static,
        shared: Arc<Shared>,
    ) -> Self {
        Spawned(Arc::new(Task::new(future, shared)))
    }
}

/// A task as its executor keeps it: the task's one owner. Not `Send`: it
/// stays on the thread where it was made, the loop's. Dropping it drops
/// the future, there, even if wakers of the task live on elsewhere.
pub(crate) struct Slot(Arc<dyn Run>);

impl Slot {
    /// `future` as a task of `shared`'s loop, on the loop's thread (the
    /// future need not be `Send`).
    pub(crate) fn local(future: impl Future<Output = ()> + 'static, shared: Arc<Shared>) -> Self {
        Slot(Arc::new(Task::new(future, shared)))
    }

    /// A task from another thread, arrived on its loop's.
    pub(crate) fn spawned(task: Spawned) -> Self {
        Slot(task.0)
    }

    /// The task joins its loop's slab under `key`.
    pub(crate) fn set_key(&self, key: u32) {
        self.0.set_key(key);
    }

    /// Poll the task once, with its own waker: wakes from here on schedule
    /// it again. Ready when it is done.
    pub(crate) fn poll(&mut self) -> Poll<()> {
        self.0.unschedule();
        let waker = self.0.clone().waker();
        let (shared, key) = self.0.place();
        let polling = Polling {
            shared,
            key,
            data: waker.data(),
            vtable: waker.vtable(),
        };
        let _restore = Restore(POLLING.with(|p| p.replace(Some(polling))));
        // SAFETY: by the task's one `Slot`, through `&mut`, on the thread
        // where the slot was made (it is not `Send`); see `Task`'s `Send`.
        unsafe { self.0.poll(&mut Context::from_waker(&waker)) }
    }
}

impl Slot {
    /// A readiness event for a socket of this task (see
    /// [`own_task`]): wake it.
    pub(crate) fn wake(&self) {
        self.0.wake_here();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: as in `poll`: the one `Slot`, by value, on its thread.
        unsafe { self.0.clear() };
    }
}

impl<F: Future<Output = ()> + 'static> Run for Task<F> {
    fn set_key(&self, key: u32) {
        self.key.store(key, SeqCst);
    }

    fn unschedule(&self) {
        self.scheduled.store(false, SeqCst);
    }

    fn waker(self: Arc<Self>) -> Waker {
        Waker::from(self)
    }

    fn place(&self) -> (*const Shared, u32) {
        (Arc::as_ptr(&self.shared), self.key.load(SeqCst))
    }

    fn wake_here(&self) {
        wake(&self.scheduled, &self.shared, &self.key);
    }

    unsafe fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the caller is on the thread the future belongs to and no
        // other call reaches the cell meanwhile: this is its only reference.
        let future = unsafe { &mut *self.future.get() };
        match future {
            // SAFETY: the future stays where it is, inside the task's `Arc`,
            // until `clear` drops it in place: it is never moved.
            Some(future) => unsafe { Pin::new_unchecked(future) }.poll(cx),
            None => Poll::Ready(()),
        }
    }

    unsafe fn clear(&self) {
        // SAFETY: as in `poll`: the only reference to the cell; assigning
        // drops the future in place (it was pinned there).
        unsafe { *self.future.get() = None };
    }
}

impl<F> Wake for Task<F> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        wake(&self.scheduled, &self.shared, &self.key);
    }
}

/// Put a task on its loop's ready list, unless it is there already.
fn wake(scheduled: &AtomicBool, shared: &Shared, key: &AtomicU32) {
    if !scheduled.swap(true, SeqCst) {
        shared.schedule(key.load(SeqCst) as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::Executor;
    use std::{
        cell::Cell,
        marker::{PhantomData, PhantomPinned},
        rc::Rc,
        sync::Mutex,
        thread::{self, ThreadId},
    };

    fn executor() -> (mio::Poll, Executor) {
        let poll = mio::Poll::new().unwrap();
        let executor = Executor::new(poll.registry(), mio::Token(0)).unwrap();
        (poll, executor)
    }

    /// The waker's state adds 16 bytes to the future (beside the `Arc`'s
    /// two counts), and the slab holds a fat pointer.
    #[test]
    fn a_task_is_its_future_and_16_bytes() {
        struct F(Option<[u64; 50]>);
        impl Future for F {
            type Output = ();
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                match self.0 {
                    Some(_) => Poll::Ready(()),
                    None => Poll::Pending,
                }
            }
        }
        assert_eq!(size_of::<Task<F>>(), size_of::<F>() + 16);
        assert_eq!(size_of::<Slot>(), 16);
    }

    /// Records where it is dropped; not `Send`.
    struct Probe(Arc<Mutex<Option<ThreadId>>>, PhantomData<*const ()>);

    impl Drop for Probe {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(thread::current().id());
        }
    }

    /// A future that is not `Send` stays on the loop's thread: when the
    /// loop lets go of its task while another thread holds its waker, the
    /// future is dropped on the loop's thread, and the waker still works
    /// (it wakes nothing) and drops elsewhere.
    #[test]
    fn a_local_future_is_dropped_on_the_loop_even_if_a_waker_outlives_it() {
        let (_poll, mut executor) = executor();
        let dropped = Arc::new(Mutex::new(None));
        let probe = Probe(dropped.clone(), PhantomData);
        let waker_out = Arc::new(Mutex::new(None::<Waker>));
        let out = waker_out.clone();
        executor.spawn(std::future::poll_fn(move |cx| {
            let _keep = &probe;
            *out.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        executor.process();
        let waker = waker_out.lock().unwrap().take().expect("polled once");
        assert!(dropped.lock().unwrap().is_none());
        drop(executor); // the loop ends with the task pending
        assert_eq!(*dropped.lock().unwrap(), Some(thread::current().id()));
        thread::spawn(move || {
            waker.wake_by_ref();
            drop(waker);
        })
        .join()
        .unwrap();
    }

    /// A future is pinned in its task: it never moves between polls, nor
    /// before it is dropped.
    #[test]
    fn a_future_stays_where_it_was_first_polled() {
        struct Pinned {
            at: Cell<usize>,
            polls: Rc<Cell<u32>>,
            _pin: PhantomPinned,
        }
        impl Pinned {
            fn check(&self) {
                let here = ptr::from_ref(self) as usize;
                match self.at.get() {
                    0 => self.at.set(here),
                    at => assert_eq!(at, here, "the future moved"),
                }
            }
        }
        impl Future for Pinned {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                self.check();
                self.polls.set(self.polls.get() + 1);
                if self.polls.get() < 5 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(())
            }
        }
        impl Drop for Pinned {
            fn drop(&mut self) {
                self.check();
            }
        }
        let (_poll, mut executor) = executor();
        let polls = Rc::new(Cell::new(0));
        executor.spawn(Pinned {
            at: Cell::new(0),
            polls: polls.clone(),
            _pin: PhantomPinned,
        });
        for _ in 0..10 {
            executor.process();
        }
        assert_eq!(polls.get(), 5);
        assert_eq!(executor.len(), 0, "done, dropped where it was");
    }

    /// A future spawned from another thread runs on the loop and is woken
    /// from yet another thread.
    #[test]
    fn a_spawned_task_is_woken_from_another_thread() {
        let (_poll, mut executor) = executor();
        let waker_out = Arc::new(Mutex::new(None::<Waker>));
        let (out, polls) = (waker_out.clone(), Arc::new(AtomicU32::new(0)));
        let counted = polls.clone();
        let shared = executor.shared.clone();
        thread::spawn(move || {
            shared.spawn(std::future::poll_fn(move |cx| {
                *out.lock().unwrap() = Some(cx.waker().clone());
                match counted.fetch_add(1, SeqCst) {
                    0 => Poll::Pending,
                    _ => Poll::Ready(()),
                }
            }));
        })
        .join()
        .unwrap();
        executor.process();
        assert_eq!((polls.load(SeqCst), executor.len()), (1, 1));
        let waker = waker_out.lock().unwrap().take().unwrap();
        thread::spawn(move || waker.wake()).join().unwrap();
        executor.process();
        assert_eq!((polls.load(SeqCst), executor.len()), (2, 0));
    }
}
