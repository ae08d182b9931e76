//! The driver's [`Transport`] over a non-blocking [`mio::net::TcpStream`]
//! registered with a loop (an accepted one: with the loop of the task that
//! first polls it).
//!
//! mio's readiness is edge-triggered: an operation that would block stores
//! the polling task's waker with the stream's registration, and the next
//! readiness event wakes it. Polled from another thread than the stream's
//! loop, an event could come between the `WouldBlock` and the waker being
//! stored, so the operation is tried once more after storing it.
//!
//! A read that returns less than the buffer holds has emptied the socket's
//! receive queue, so any later data raises a new edge: on the stream's own
//! loop, the next read in the *same* poll of the task is answered `Pending`
//! without the system call that would only say `WouldBlock` (a poll is
//! numbered by the loop's executor; across polls every read is real, since
//! an event may have been consumed in between).

use std::{
    cell::Cell,
    io::{self, IoSlice, Read, Write},
    net::Shutdown,
    ptr,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use hubbub_ws::driver::Transport;
use mio::{net::TcpStream, Interest};

use crate::{
    reactor::{pick, Direction, Shared},
    task::own_task,
};

thread_local! {
    /// The number of the task poll in progress on this thread (0: none).
    static POLL: Cell<u64> = const { Cell::new(0) };
    /// The stream whose short read emptied its receive queue last on this
    /// thread, and in which poll: its loop (by address) and its socket.
    /// Kept here rather than in every stream, which an idle connection
    /// pays for; a task's poll that drains two streams only remembers the
    /// last (the other one's next read is a real one).
    static DRAINED: Cell<(u64, usize, u64)> = const { Cell::new((0, 0, 0)) };
}

/// Number the task poll that starts now.
pub(crate) fn next_poll() {
    POLL.with(|poll| poll.set(poll.get().wrapping_add(1).max(1)));
}

/// [`MioIo::id`]'s mark of a stream registered for a task's key rather
/// than a source slot.
const TASK: u32 = 1 << 31;

/// A mio TCP stream registered with a loop, as a [`Transport`].
///
/// (Its registration is kept flat, as the loop and the source's id, so
/// that the stream is 16 bytes: it is part of every connection's task.)
///
/// A stream first polled by a task of its loop with the task's own waker
/// (the usual case: a connection's task) is registered with that task's
/// token: its readiness events wake the task directly, and it takes no
/// source slot and stores no waker. Polled by another task or with another
/// waker later (moved elsewhere, or under a combinator with wakers of its
/// own), it moves to a slot of its own for good.
pub struct MioIo {
    stream: TcpStream,
    /// The source's id in its loop once registered, or the key of the task
    /// it is registered for, marked [`TASK`].
    id: u32,
    /// The loop it is registered with: taken when the stream first would
    /// block, if not at creation.
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for MioIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MioIo")
            .field("stream", &self.stream)
            .field("registered", &self.shared.as_ref().map(|_| self.id))
            .finish()
    }
}

impl Drop for MioIo {
    fn drop(&mut self) {
        match &self.shared {
            Some(shared) if self.id & TASK == 0 => shared.remove_source(self.id),
            _ => {}
        }
    }
}

/// The socket underneath, as a number unique among open sockets.
#[cfg(unix)]
fn socket_id(stream: &TcpStream) -> u64 {
    use std::os::fd::AsRawFd;
    u64::from(stream.as_raw_fd().unsigned_abs())
}

/// The socket underneath, as a number unique among open sockets.
#[cfg(windows)]
fn socket_id(stream: &TcpStream) -> u64 {
    use std::os::windows::io::AsRawSocket;
    stream.as_raw_socket()
}

impl MioIo {
    /// Register `stream` with `shared`'s loop for read and write readiness.
    pub(crate) fn register(mut stream: TcpStream, shared: Arc<Shared>) -> io::Result<Self> {
        let id = shared.add_source(&mut stream, Interest::READABLE | Interest::WRITABLE)?;
        Ok(MioIo {
            stream,
            id,
            shared: Some(shared),
        })
    }

    /// `stream`, registered with the loop of the task that first finds it
    /// would block (an accepted stream joins the loop its session runs on;
    /// epoll reports the readiness it already has on registration).
    pub(crate) fn unregistered(stream: TcpStream) -> Self {
        MioIo {
            stream,
            id: 0,
            shared: None,
        }
    }

    /// Have the next readiness event in `direction` wake `waker`
    /// (registering the stream first if it is not yet).
    fn set_waker(&mut self, direction: Direction, waker: &Waker) -> io::Result<()> {
        let Some(shared) = &self.shared else {
            return self.register_now(direction, waker);
        };
        if self.id & TASK == 0 {
            shared.swap_waker(self.id, direction, waker);
            return Ok(());
        }
        if own_task(waker) == Some((Arc::as_ptr(shared), self.id & !TASK)) {
            return Ok(()); // its events wake this task
        }
        self.leave_task(direction, waker)
    }

    /// Register the stream with the current loop (else a default one):
    /// once in its life, out of the read and write paths. Polled by a task
    /// of that loop with its own waker, for that task.
    #[cold]
    #[inline(never)]
    fn register_now(&mut self, direction: Direction, waker: &Waker) -> io::Result<()> {
        let shared = pick();
        let interest = Interest::READABLE | Interest::WRITABLE;
        match own_task(waker) {
            Some((on, key)) if ptr::eq(on, Arc::as_ptr(&shared)) && key < TASK => {
                shared.add_task_source(&mut self.stream, interest, key)?;
                self.id = key | TASK;
            }
            _ => {
                self.id = shared.add_source(&mut self.stream, interest)?;
                shared.swap_waker(self.id, direction, waker);
            }
        }
        self.shared = Some(shared);
        Ok(())
    }

    /// The stream, registered for a task, is polled by another one or with
    /// another waker: give it a source slot, for good.
    #[cold]
    #[inline(never)]
    fn leave_task(&mut self, direction: Direction, waker: &Waker) -> io::Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.id = shared.move_to_slot(&mut self.stream, interest)?;
        shared.swap_waker(self.id, direction, waker);
        Ok(())
    }

    fn on_its_loop(&self) -> bool {
        self.shared.as_ref().is_some_and(Shared::is_current)
    }

    /// This stream's mark in [`DRAINED`]: its loop's address and its
    /// socket.
    fn drained_key(&self, poll: u64) -> (u64, usize, u64) {
        let shared = self.shared.as_ref().map_or(0, |s| Arc::as_ptr(s) as usize);
        (poll, shared, socket_id(&self.stream))
    }

    /// The stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Run `op` until it does not block; when it would, have `direction`'s
    /// next readiness wake the task.
    #[inline(always)]
    fn poll_op<T>(
        &mut self,
        cx: &Context<'_>,
        direction: Direction,
        mut op: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        if let Poll::Ready(result) = ready(|| op(&mut self.stream)) {
            return Poll::Ready(result);
        }
        if let Err(error) = self.set_waker(direction, cx.waker()) {
            return Poll::Ready(Err(error));
        }
        if self.on_its_loop() {
            return Poll::Pending;
        }
        ready(|| op(&mut self.stream))
    }

    /// Wait until a connection started with `TcpStream::connect` is
    /// established (or failed).
    pub(crate) fn poll_connected(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        for attempt in 0..2 {
            if let Some(error) = self.stream.take_error()? {
                return Poll::Ready(Err(error));
            }
            match self.stream.peer_addr() {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        || e.kind() == io::ErrorKind::WouldBlock =>
                {
                    if attempt == 0 {
                        // Store first, check again: no event is lost.
                        self.set_waker(Direction::Write, cx.waker())?;
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Pending
    }
}

/// `WouldBlock` is `Pending`; `Interrupted` is retried.
pub(crate) fn ready<T>(mut op: impl FnMut() -> io::Result<T>) -> Poll<io::Result<T>> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return Poll::Ready(result),
        }
    }
}

impl Transport for MioIo {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let poll = POLL.with(Cell::get);
        if poll != 0
            && self.shared.is_some()
            && DRAINED.with(Cell::get) == self.drained_key(poll)
            && self.on_its_loop()
        {
            if let Err(error) = self.set_waker(Direction::Read, cx.waker()) {
                return Poll::Ready(Err(error));
            }
            return Poll::Pending;
        }
        let read = self.poll_op(cx, Direction::Read, |stream| stream.read(buf));
        if let Poll::Ready(Ok(n)) = read {
            if n > 0 && n < buf.len() && poll != 0 {
                DRAINED.with(|drained| drained.set(self.drained_key(poll)));
            }
        }
        read
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, |stream| stream.write(buf))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, |stream| stream.write_vectored(bufs))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(())) // a TCP stream does not buffer
    }

    fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream.shutdown(Shutdown::Write) {
            // Already reset or disconnected: nothing left to shut down.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            result => Poll::Ready(result),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{task::Waker, time::Duration};

    /// Poll reads (each in a new task poll) until one is ready.
    fn read_ready(io: &mut MioIo, buf: &mut [u8]) -> usize {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            next_poll();
            if let Poll::Ready(n) = io.poll_read(&mut cx, buf) {
                return n.unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no data within a second");
    }

    /// Every connection's task holds its stream: the registration is kept
    /// flat (no `Option<Registration>` with its padding, no poll number):
    /// 16 bytes with a release build's 4-byte mio stream.
    #[test]
    fn a_stream_is_its_socket_an_id_and_a_pointer() {
        let flat = (size_of::<TcpStream>() + size_of::<u32>()).next_multiple_of(8) + 8;
        assert_eq!(size_of::<MioIo>(), flat);
    }

    /// Counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// One turn of a loop: process its tasks, then its events (10 ms at
    /// most).
    fn turn(poll: &mut mio::Poll, executor: &mut crate::reactor::Executor) {
        executor.process();
        let mut events = mio::Events::with_capacity(16);
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        for event in &events {
            executor.handle_event(event);
        }
    }

    /// A stream a task polls with its own waker is registered for the
    /// task: no source slot, and its readiness wakes the task. Polled with
    /// another waker, it moves to a slot, whose waker its events wake.
    #[test]
    fn a_stream_wakes_its_task_without_a_slot_until_another_waker_polls_it() {
        use std::{cell::RefCell, rc::Rc};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut executor = crate::reactor::Executor::new(poll.registry(), mio::Token(0)).unwrap();
        let shared = executor.shared.clone();
        let io = Rc::new(RefCell::new(MioIo::unregistered(TcpStream::from_std(
            server,
        ))));
        let (got, task_io) = (Rc::new(RefCell::new(Vec::new())), io.clone());
        let into = got.clone();
        executor.spawn(std::future::poll_fn(move |cx| {
            let mut buf = [0u8; 64];
            loop {
                match task_io.borrow_mut().poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        into.borrow_mut().extend_from_slice(&buf[..n]);
                        if into.borrow().len() >= 5 {
                            return Poll::Ready(()); // the stream outlives it
                        }
                    }
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }));
        turn(&mut poll, &mut executor);
        assert_eq!(shared.slots_in_use(), 0, "registered for its task");
        assert!(io.borrow().id & TASK != 0);
        client.write_all(b"hello").unwrap();
        for _ in 0..100 {
            if got.borrow().len() == 5 {
                break;
            }
            turn(&mut poll, &mut executor);
        }
        assert_eq!(&got.borrow()[..], b"hello", "the event woke the task");
        turn(&mut poll, &mut executor);
        assert_eq!(executor.len(), 0, "the task is done");
        // Another waker (outside any task) polls it: it takes a slot.
        let count = Arc::new(Count(Default::default()));
        let waker = Waker::from(count.clone());
        let _enter = crate::reactor::Enter::new(&shared);
        next_poll();
        let mut buf = [0u8; 64];
        let pending = io
            .borrow_mut()
            .poll_read(&mut Context::from_waker(&waker), &mut buf);
        assert!(pending.is_pending());
        assert_eq!(shared.slots_in_use(), 1, "moved to a slot");
        client.write_all(b"more").unwrap();
        for _ in 0..100 {
            if count.0.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                break;
            }
            turn(&mut poll, &mut executor);
        }
        assert!(
            count.0.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "the slot's waker was woken"
        );
        drop(io.borrow_mut()); // the task still holds the stream
        drop(executor);
        drop(io);
        assert_eq!(
            shared.slots_in_use(),
            0,
            "the slot is freed with the stream"
        );
    }

    #[test]
    fn a_short_read_skips_the_next_read_of_the_same_poll_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        // Polled as on the stream's own loop.
        let poll = mio::Poll::new().unwrap();
        let executor = crate::reactor::Executor::new(poll.registry(), mio::Token(0)).unwrap();
        let _enter = crate::reactor::Enter::new(&executor.shared);
        let mut io = MioIo::register(TcpStream::from_std(server), executor.shared.clone()).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 64];
        client.write_all(b"hello").unwrap();
        assert_eq!(read_ready(&mut io, &mut buf), 5);
        // Same poll: the queue was emptied, no system call.
        client.write_all(b"more").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(io.poll_read(&mut cx, &mut buf).is_pending());
        // The next poll reads for real.
        next_poll();
        assert!(matches!(
            io.poll_read(&mut cx, &mut buf),
            Poll::Ready(Ok(4))
        ));
        // A full buffer says nothing about the queue: the next read is real.
        client.write_all(&[7; 100]).unwrap();
        let mut small = [0u8; 10];
        assert_eq!(read_ready(&mut io, &mut small), 10);
        assert!(matches!(
            io.poll_read(&mut cx, &mut small),
            Poll::Ready(Ok(10))
        ));
    }
}
