//! [`MemoryStore`]: the history in a `VecDeque`, bounded by retention.

use std::collections::{HashMap, VecDeque};

use super::{
    new_epoch, now_ms, MessageStore, NewMessage, Replay, Retention, StoreError, StoredMessage,
};

/// A history kept in memory (lost on restart), bounded by [`Retention`]
/// (by default the newest [`MemoryStore::DEFAULT_MAX`] messages).
/// Messages are kept in id order, so replays find their start by binary
/// search; `list_by_room` scans from the newest end.
#[derive(Debug)]
pub struct MemoryStore {
    messages: VecDeque<StoredMessage>,
    retention: Retention,
    /// The last id given.
    last_id: u64,
    /// The highest id retention removed, in all rooms and per room:
    /// replays from below it are not complete.
    pruned_through: u64,
    pruned_rooms: HashMap<String, u64>,
    /// Chosen at creation: the history dies with the store.
    epoch: String,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(Retention {
            max_messages: Some(Self::DEFAULT_MAX),
            max_age: None,
        })
    }
}

impl MemoryStore {
    /// The messages kept by [`MemoryStore::default`].
    pub const DEFAULT_MAX: u64 = 10_000;

    /// An empty store keeping what `retention` allows
    /// ([`Retention::UNLIMITED`] lets it grow without bound).
    pub fn new(retention: Retention) -> Self {
        MemoryStore {
            messages: VecDeque::new(),
            retention,
            last_id: 0,
            pruned_through: 0,
            pruned_rooms: HashMap::new(),
            epoch: new_epoch(),
        }
    }

    /// Number of messages kept.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when no message is kept.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    fn prune(&mut self) {
        let max = self.retention.max_messages.map(|m| m as usize);
        let min_ts = self.retention.min_ts(now_ms());
        while let Some(oldest) = self.messages.front() {
            let over_count = max.is_some_and(|max| self.messages.len() > max);
            let too_old = min_ts.is_some_and(|min| oldest.ts < min);
            if !(over_count || too_old) {
                break;
            }
            self.pruned_through = oldest.id;
            *self.pruned_rooms.entry(oldest.room.clone()).or_default() = oldest.id;
            self.messages.pop_front();
        }
    }
}

impl MessageStore for MemoryStore {
    fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<u64> = (self.last_id + 1..).take(batch.len()).collect();
        for (message, &id) in batch.iter().zip(&ids) {
            self.messages.push_back(message.clone().stored(id));
        }
        self.last_id += batch.len() as u64;
        self.prune();
        Ok(ids)
    }

    fn list_by_room(
        &mut self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let before = before.unwrap_or(u64::MAX);
        let mut found: Vec<StoredMessage> = self
            .messages
            .iter()
            .rev()
            .filter(|m| m.id < before && m.room == room)
            .take(limit)
            .cloned()
            .collect();
        found.reverse();
        Ok(found)
    }

    fn replay_from(
        &mut self,
        after: u64,
        room: Option<&str>,
        limit: usize,
    ) -> Result<Replay, StoreError> {
        let start = self.messages.partition_point(|m| m.id <= after);
        let mut messages: Vec<StoredMessage> = self
            .messages
            .range(start..)
            .filter(|m| room.is_none_or(|room| m.room == room))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        let cut = messages.len() > limit;
        messages.truncate(limit);
        let pruned = match room {
            Some(room) => self.pruned_rooms.get(room).copied().unwrap_or(0),
            None => self.pruned_through,
        };
        let complete = !cut && after >= pruned && after <= self.last_id;
        Ok(Replay { messages, complete })
    }

    fn epoch(&mut self) -> Result<String, StoreError> {
        Ok(self.epoch.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[test]
    fn conformance() {
        testing::run_all(|retention| Ok(MemoryStore::new(retention)));
    }

    #[test]
    fn len_follows_retention() {
        let mut store = MemoryStore::new(Retention {
            max_messages: Some(3),
            max_age: None,
        });
        assert!(store.is_empty());
        for _ in 0..5 {
            store.append(&[testing::message("r", 0)]).unwrap();
        }
        assert_eq!(store.len(), 3);
    }
}
