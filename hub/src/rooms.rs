//! Room membership: which sessions are in which rooms, both ways.

use std::collections::{HashMap, HashSet};

/// A session's identifier, unique for the server's lifetime.
pub type SessionId = u64;

/// Rooms and their members. Joining twice is harmless, leaving an unknown
/// room is a no-op, and a room disappears with its last member.
#[derive(Debug, Default)]
pub struct Rooms {
    members: HashMap<String, HashSet<SessionId>>,
    joined: HashMap<SessionId, HashSet<String>>,
}

impl Rooms {
    /// Add `session` to `room`; returns false if it was already a member.
    pub fn join(&mut self, session: SessionId, room: &str) -> bool {
        let added = self
            .members
            .entry(room.to_owned())
            .or_default()
            .insert(session);
        if added {
            self.joined
                .entry(session)
                .or_default()
                .insert(room.to_owned());
        }
        added
    }

    /// Remove `session` from `room`; returns false if it was not a member.
    pub fn leave(&mut self, session: SessionId, room: &str) -> bool {
        let Some(members) = self.members.get_mut(room) else {
            return false;
        };
        if !members.remove(&session) {
            return false;
        }
        if members.is_empty() {
            self.members.remove(room);
        }
        if let Some(rooms) = self.joined.get_mut(&session) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.joined.remove(&session);
            }
        }
        true
    }

    /// Remove `session` from every room (on close); returns the rooms left.
    pub fn leave_all(&mut self, session: SessionId) -> Vec<String> {
        let rooms: Vec<String> = self.joined.remove(&session).into_iter().flatten().collect();
        for room in &rooms {
            if let Some(members) = self.members.get_mut(room) {
                members.remove(&session);
                if members.is_empty() {
                    self.members.remove(room);
                }
            }
        }
        rooms
    }

    /// The members of `room` (empty for an unknown room).
    pub fn members(&self, room: &str) -> impl Iterator<Item = SessionId> + '_ {
        self.members.get(room).into_iter().flatten().copied()
    }

    /// The rooms `session` is in.
    pub fn rooms_of(&self, session: SessionId) -> impl Iterator<Item = &str> + '_ {
        self.joined
            .get(&session)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Every room name that has members.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.keys().map(String::as_str)
    }

    /// Number of members of `room`.
    pub fn len_of(&self, room: &str) -> usize {
        self.members.get(room).map_or(0, HashSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted<T: Ord>(it: impl Iterator<Item = T>) -> Vec<T> {
        let mut v: Vec<T> = it.collect();
        v.sort();
        v
    }

    #[test]
    fn join_leave_and_isolation() {
        let mut rooms = Rooms::default();
        assert!(rooms.join(1, "a"));
        assert!(!rooms.join(1, "a"), "second join is harmless");
        rooms.join(2, "a");
        rooms.join(2, "b");
        assert_eq!(sorted(rooms.members("a")), vec![1, 2]);
        assert_eq!(sorted(rooms.members("b")), vec![2]);
        assert_eq!(sorted(rooms.rooms_of(2)), vec!["a", "b"]);
        assert!(rooms.leave(2, "b"));
        assert!(!rooms.leave(2, "b"));
        assert!(!rooms.leave(9, "nowhere"));
        assert_eq!(sorted(rooms.names()), vec!["a"], "empty room b vanished");
    }

    #[test]
    fn leave_all_on_close() {
        let mut rooms = Rooms::default();
        for room in ["x", "y", "z"] {
            rooms.join(7, room);
        }
        rooms.join(8, "y");
        assert_eq!(sorted(rooms.leave_all(7).into_iter()), vec!["x", "y", "z"]);
        assert_eq!(sorted(rooms.names()), vec!["y"]);
        assert_eq!(rooms.rooms_of(7).count(), 0);
        assert_eq!(rooms.len_of("y"), 1);
    }
}
