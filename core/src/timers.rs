//! The connection's named timers: one table, one earliest deadline.

use std::{
    num::NonZeroU64,
    time::{Duration, Instant},
};

/// A timer kept by the core; [`Connection::poll_timeout`](crate::Connection::poll_timeout)
/// reports the earliest armed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Timer {
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
    /// A message (or control frame) began arriving and is not complete
    /// within `message_timeout`: fail the connection with 1008.
    Message,
}

impl Timer {
    pub(crate) const ALL: [Timer; COUNT] = [
        Timer::Handshake,
        Timer::Idle,
        Timer::KeepAlive,
        Timer::PongDeadline,
        Timer::CloseHandshake,
        Timer::Linger,
        Timer::Message,
    ];
}

/// How many timers there are.
const COUNT: usize = 7;

/// Deadlines indexed by [`Timer`], each kept as nanoseconds after the
/// table's origin (the connection's creation) plus one, zero meaning
/// unarmed: 8 bytes a timer rather than an `Option<Instant>`'s 16, exact
/// for any deadline from the origin on (an earlier one counts as the
/// origin, a later one than 584 years as then).
#[derive(Debug, Clone)]
pub(crate) struct TimerTable {
    origin: Instant,
    deadlines: [Option<NonZeroU64>; COUNT],
}

impl TimerTable {
    /// A table with every timer unarmed; `origin` is its earliest instant.
    pub(crate) fn new(origin: Instant) -> Self {
        TimerTable {
            origin,
            deadlines: [None; COUNT],
        }
    }

    pub(crate) fn set(&mut self, timer: Timer, deadline: Option<Instant>) {
        self.deadlines[timer as usize] = deadline.map(|at| {
            let nanos = at.saturating_duration_since(self.origin).as_nanos();
            let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
            NonZeroU64::MIN.saturating_add(nanos)
        });
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize].map(|n| self.origin + Duration::from_nanos(n.get() - 1))
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.deadlines[timer as usize].is_some()
    }

    pub(crate) fn clear_all(&mut self) {
        self.deadlines = [None; COUNT];
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        let earliest = self.deadlines.iter().flatten().min()?;
        Some(self.origin + Duration::from_nanos(earliest.get() - 1))
    }

    /// Disarm and return the timers whose deadline is at or before `now`.
    pub(crate) fn take_expired(&mut self, now: Instant) -> impl Iterator<Item = Timer> {
        let mut expired = [None; COUNT];
        for timer in Timer::ALL {
            if self.get(timer).is_some_and(|at| at <= now) {
                self.set(timer, None);
                expired[timer as usize] = Some(timer);
            }
        }
        expired.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_back_exactly() {
        let origin = Instant::now();
        let mut table = TimerTable::new(origin);
        assert_eq!(table.next(), None);
        let idle = origin + Duration::new(60, 123);
        table.set(Timer::Idle, Some(idle));
        table.set(Timer::Handshake, Some(origin));
        assert_eq!(table.get(Timer::Idle), Some(idle));
        assert_eq!(table.next(), Some(origin));
        // Before the origin counts as the origin; far ahead saturates.
        table.set(Timer::Linger, Some(origin - Duration::from_secs(1)));
        assert_eq!(table.get(Timer::Linger), Some(origin));
        table.set(
            Timer::KeepAlive,
            Some(origin + Duration::from_secs(1 << 40)),
        );
        assert!(table.get(Timer::KeepAlive).unwrap() > origin + Duration::from_secs(1 << 33));
        let expired: Vec<_> = table
            .take_expired(origin + Duration::from_secs(60))
            .collect();
        assert_eq!(expired, [Timer::Handshake, Timer::Linger]);
        assert_eq!(table.next(), Some(idle));
    }
}
