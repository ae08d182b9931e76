//! The connection's named timers: one table, one earliest deadline.

use std::time::Instant;

/// A timer kept by the core; [`Connection::poll_timeout`](crate::Connection::poll_timeout)
/// reports the earliest armed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timer {
    /// The opening handshake must finish by then.
    Handshake,
    /// No inbound bytes since `idle_timeout`: close with 1001.
    Idle,
    /// No inbound bytes since `ping_interval`: send a keep-alive ping.
    KeepAlive,
    /// A keep-alive ping is unanswered: close with 1001.
    PongDeadline,
    /// Our close frame is unanswered: give up on the close handshake.
    CloseHandshake,
    /// The connection is closed: stop waiting for the peer's EOF.
    Linger,
}

impl Timer {
    pub(crate) const ALL: [Timer; 6] = [
        Timer::Handshake,
        Timer::Idle,
        Timer::KeepAlive,
        Timer::PongDeadline,
        Timer::CloseHandshake,
        Timer::Linger,
    ];
}

/// Deadlines indexed by [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; 6],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, deadline: Option<Instant>) {
        self.deadlines[timer as usize] = deadline;
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub fn clear_all(&mut self) {
        self.deadlines = [None; 6];
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarm and return the timers whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: Instant) -> impl Iterator<Item = Timer> {
        let mut expired = [None; 6];
        for timer in Timer::ALL {
            if self.get(timer).is_some_and(|at| at <= now) {
                self.set(timer, None);
                expired[timer as usize] = Some(timer);
            }
        }
        expired.into_iter().flatten()
    }
}
