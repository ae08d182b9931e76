//! The long-poll keys of [`Settings`](crate::Settings): the bounds of
//! [`LongPollConfig`], each defaulting to [`LongPollConfig::default`] and
//! listed with its default in the `Settings` section of
//! `examples/README.md`.

use crate::{LongPollConfig, SettingsError};

/// `(key, what it sets)`, in the order of the README's table.
type Field = fn(&mut LongPollConfig) -> &mut usize;

const KEYS: &[(&str, Field)] = &[
    ("LONGPOLL_MAX_SESSIONS", |c| &mut c.max_sessions),
    ("LONGPOLL_MAX_SESSIONS_PER_IP", |c| {
        &mut c.max_sessions_per_ip
    }),
    ("LONGPOLL_QUEUE_MESSAGES", |c| &mut c.capacity),
    ("LONGPOLL_SESSION_BYTES", |c| &mut c.max_session_bytes),
    ("LONGPOLL_TOTAL_BYTES", |c| &mut c.max_total_bytes),
    ("LONGPOLL_POLL_BYTES", |c| &mut c.max_poll_bytes),
];

/// Resolve the long-poll keys through `lookup` (unset keys: the defaults).
pub(crate) fn from_lookup(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<LongPollConfig, SettingsError> {
    let mut config = LongPollConfig::default();
    for (key, field) in KEYS {
        let Some(value) = lookup(key).map(|v| v.trim().to_owned()) else {
            continue;
        };
        // 0 turns off the per-address cap only; the others need room.
        let zero_ok = *key == "LONGPOLL_MAX_SESSIONS_PER_IP";
        match value.parse::<usize>() {
            Ok(n) if n > 0 || zero_ok => *field(&mut config) = n,
            _ => {
                return Err(SettingsError {
                    key,
                    value,
                    expected: if zero_ok {
                        "a whole number, 0 or more (0 = no limit)"
                    } else {
                        "a whole number, at least 1"
                    },
                })
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<LongPollConfig, SettingsError> {
        from_lookup(&|key: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_and_every_key() {
        assert_eq!(config(&[]).unwrap(), LongPollConfig::default());
        let d = LongPollConfig::default();
        assert_eq!(
            (d.max_sessions, d.max_sessions_per_ip, d.capacity),
            (10_000, 100, 256)
        );
        assert_eq!(
            (d.max_session_bytes, d.max_total_bytes, d.max_poll_bytes),
            (1 << 20, 64 << 20, 1 << 20)
        );
        let c = config(&[
            ("LONGPOLL_MAX_SESSIONS", "50"),
            ("LONGPOLL_MAX_SESSIONS_PER_IP", "0"),
            ("LONGPOLL_QUEUE_MESSAGES", "10"),
            ("LONGPOLL_SESSION_BYTES", "4096"),
            ("LONGPOLL_TOTAL_BYTES", " 65536 "),
            ("LONGPOLL_POLL_BYTES", "2048"),
        ])
        .unwrap();
        assert_eq!(
            (c.max_sessions, c.max_sessions_per_ip, c.capacity),
            (50, 0, 10)
        );
        assert_eq!(
            (c.max_session_bytes, c.max_total_bytes, c.max_poll_bytes),
            (4096, 65536, 2048)
        );
        for (key, value) in [
            ("LONGPOLL_MAX_SESSIONS", "0"),
            ("LONGPOLL_TOTAL_BYTES", "64M"),
            ("LONGPOLL_MAX_SESSIONS_PER_IP", "-1"),
        ] {
            let error = config(&[(key, value)]).unwrap_err();
            assert_eq!((error.key, error.value.as_str()), (key, value));
        }
    }
}
