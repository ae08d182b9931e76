//! A memory budget for partly received messages, shared by connections.

use std::{
    fmt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

/// Bytes that the unfinished messages of every connection sharing this
/// budget may hold together (their buffers' capacity, after inflation for
/// permessage-deflate). A connection charges its message's buffer as it
/// grows, in steps of 64 KiB, and releases it when the message is
/// delivered or the connection is dropped. A message whose growth would
/// pass the budget fails its connection with 1009, the reason naming
/// [`Config::receive_budget`](crate::Config::receive_budget).
///
/// `max_message_size` bounds what one connection holds; this bounds what
/// all of them hold at once (without it, 40 peers each sending 16 KB of a
/// compressed message that inflates to 16 MiB would hold 640 MiB).
/// Messages that arrive whole in one read are never charged: they are
/// delivered at once. One atomic counter, no lock: connections on every
/// thread share it through the [`Config`](crate::Config)'s `Arc`.
pub struct ReceiveBudget {
    used: AtomicUsize,
    limit: usize,
}

/// Charges are made in steps of this many bytes, so a growing message
/// touches the shared counter once per step, not once per read.
const STEP: usize = 64 << 10;

impl ReceiveBudget {
    /// A budget of `limit` bytes, none used.
    pub fn new(limit: usize) -> Self {
        ReceiveBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_charge(&self, bytes: usize) -> bool {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl fmt::Debug for ReceiveBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveBudget")
            .field("used", &self.used())
            .field("limit", &self.limit)
            .finish()
    }
}

/// What one unfinished message has charged to a budget; released on drop.
#[derive(Default)]
pub(crate) struct Charge {
    budget: Option<Arc<ReceiveBudget>>,
    bytes: usize,
}

/// The budget was exhausted; carries its limit.
pub(crate) struct Exhausted(pub(crate) usize);

impl Charge {
    pub(crate) fn new(budget: Option<&Arc<ReceiveBudget>>) -> Self {
        Charge {
            budget: budget.cloned(),
            bytes: 0,
        }
    }

    /// Make sure at least `bytes` are charged (rounded up to a step).
    #[inline]
    pub(crate) fn cover(&mut self, bytes: usize) -> Result<(), Exhausted> {
        if bytes <= self.bytes {
            return Ok(());
        }
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        let target = bytes.div_ceil(STEP).saturating_mul(STEP);
        if !budget.try_charge(target - self.bytes) {
            return Err(Exhausted(budget.limit));
        }
        self.bytes = target;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_in_steps_and_releases_on_drop() {
        let budget = Arc::new(ReceiveBudget::new(3 * STEP));
        let mut a = Charge::new(Some(&budget));
        assert!(a.cover(1).is_ok());
        assert_eq!(budget.used(), STEP);
        assert!(a.cover(STEP).is_ok());
        assert_eq!(budget.used(), STEP);
        assert!(a.cover(2 * STEP + 1).is_ok());
        assert_eq!(budget.used(), 3 * STEP);
        let mut b = Charge::new(Some(&budget));
        assert!(matches!(b.cover(1), Err(Exhausted(l)) if l == 3 * STEP));
        assert_eq!(budget.used(), 3 * STEP, "a refused charge takes nothing");
        drop(a);
        assert_eq!(budget.used(), 0);
        assert!(b.cover(1).is_ok());
        let mut none = Charge::new(None);
        assert!(none.cover(usize::MAX).is_ok());
    }
}
