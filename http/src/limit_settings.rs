//! The limit keys of [`Settings`](crate::Settings): origins, rates and
//! connection caps, each off (empty or 0) by default — the test suites and
//! load tests open many connections from 127.0.0.1 quickly — but for the
//! room name length (128 bytes). Every key is
//! listed with its default in the `Settings` section of
//! `examples/README.md`.

use hubbub_hub::{HubLimits, Origins, RatePolicy, DEFAULT_MAX_ROOM_NAME_BYTES};

use crate::{HttpRateLimits, SettingsError};

/// The limits read from the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitSettings {
    /// `ALLOWED_ORIGINS`, `WEBSOCKET_RATE_LIMIT`, `WEBSOCKET_BYTE_RATE_LIMIT`,
    /// `WEBSOCKET_RATE_POLICY`, `WEBSOCKET_MAX_ROOMS`,
    /// `WEBSOCKET_MAX_ROOM_NAME`, `MAX_CONNECTIONS`,
    /// `MAX_CONNECTIONS_PER_IP`, `NEW_CONNECTIONS_PER_IP`.
    pub hub: HubLimits,
    /// `HTTP_SEND_RATE_LIMIT`, `HTTP_POLL_RATE_LIMIT`, `MAX_POLLS_PER_IP`.
    pub http: HttpRateLimits,
}

impl LimitSettings {
    /// Resolve the limit keys through `lookup` (unset keys: off).
    pub(crate) fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let get = |key: &'static str| lookup(key).map(|v| (key, v.trim().to_owned()));
        let rate = |key| {
            get(key)
                .map(count)
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let cap = |key| {
            get(key)
                .map(count)
                .transpose()
                .map(|n| n.unwrap_or_default() as usize)
        };
        let origins = match get("ALLOWED_ORIGINS") {
            None => Origins::any(),
            Some((key, value)) => Origins::parse(&value).map_err(|_| SettingsError {
                key,
                value,
                expected: "comma-separated origins (scheme://host[:port]), or * or empty for any",
            })?,
        };
        let rate_policy = match get("WEBSOCKET_RATE_POLICY") {
            None => RatePolicy::Drop,
            Some((key, value)) => match value.to_ascii_lowercase().as_str() {
                "drop" => RatePolicy::Drop,
                "close" => RatePolicy::Close,
                _ => {
                    return Err(SettingsError {
                        key,
                        value,
                        expected: "drop or close",
                    })
                }
            },
        };
        Ok(LimitSettings {
            hub: HubLimits {
                origins,
                messages_per_second: rate("WEBSOCKET_RATE_LIMIT")?,
                bytes_per_second: rate("WEBSOCKET_BYTE_RATE_LIMIT")?,
                rate_policy,
                max_rooms_per_session: cap("WEBSOCKET_MAX_ROOMS")?,
                max_room_name_bytes: match get("WEBSOCKET_MAX_ROOM_NAME") {
                    None => DEFAULT_MAX_ROOM_NAME_BYTES,
                    Some(pair) => count(pair)? as usize,
                },
                max_connections: cap("MAX_CONNECTIONS")?,
                max_connections_per_ip: cap("MAX_CONNECTIONS_PER_IP")?,
                connections_per_ip_per_second: rate("NEW_CONNECTIONS_PER_IP")?,
            },
            http: HttpRateLimits {
                send_per_second: rate("HTTP_SEND_RATE_LIMIT")?,
                poll_per_second: rate("HTTP_POLL_RATE_LIMIT")?,
                polls_per_ip: cap("MAX_POLLS_PER_IP")?,
            },
        })
    }
}

/// A whole number from 0 (off) up.
fn count((key, value): (&'static str, String)) -> Result<u32, SettingsError> {
    value.parse::<u32>().map_err(|_| SettingsError {
        key,
        value,
        expected: "a whole number, 0 or more (0 = off)",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::Settings;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn limits_are_off_by_default_and_read_from_their_keys() {
        let d = settings(&[]).unwrap();
        assert_eq!(d.limits, LimitSettings::default());
        assert!(d.hub_limits().origins.is_any());
        let s = settings(&[
            (
                "ALLOWED_ORIGINS",
                "https://chat.example, http://localhost:8080",
            ),
            ("WEBSOCKET_RATE_LIMIT", "20"),
            ("WEBSOCKET_BYTE_RATE_LIMIT", "65536"),
            ("WEBSOCKET_RATE_POLICY", "Close"),
            ("WEBSOCKET_MAX_ROOMS", "8"),
            ("WEBSOCKET_MAX_ROOM_NAME", "64"),
            ("MAX_CONNECTIONS", "10000"),
            ("MAX_CONNECTIONS_PER_IP", "50"),
            ("NEW_CONNECTIONS_PER_IP", "10"),
            ("HTTP_SEND_RATE_LIMIT", "5"),
            ("HTTP_POLL_RATE_LIMIT", "4"),
            ("MAX_POLLS_PER_IP", "3"),
        ])
        .unwrap();
        let hub = s.hub_limits();
        assert!(hub.origins.allows(Some("http://localhost:8080")));
        assert!(!hub.origins.allows(Some("https://evil.example")));
        assert_eq!(
            (
                hub.messages_per_second,
                hub.bytes_per_second,
                hub.rate_policy
            ),
            (20, 65536, RatePolicy::Close)
        );
        assert_eq!(
            (
                hub.max_rooms_per_session,
                hub.max_connections,
                hub.max_connections_per_ip,
                hub.connections_per_ip_per_second
            ),
            (8, 10000, 50, 10)
        );
        assert_eq!(hub.max_room_name_bytes, 64);
        assert_eq!(d.hub_limits().max_room_name_bytes, 128);
        assert_eq!(
            s.http_rate_limits(),
            HttpRateLimits {
                send_per_second: 5,
                poll_per_second: 4,
                polls_per_ip: 3
            }
        );
    }

    #[test]
    fn a_bad_limit_names_its_key_and_value() {
        for (key, value) in [
            ("ALLOWED_ORIGINS", "chat.example"),
            ("WEBSOCKET_RATE_LIMIT", "-1"),
            ("WEBSOCKET_RATE_POLICY", "ignore"),
            ("MAX_CONNECTIONS", "lots"),
            ("MAX_POLLS_PER_IP", "1.5"),
        ] {
            let error = settings(&[(key, value)]).unwrap_err();
            assert_eq!((error.key, error.value.as_str()), (key, value));
            assert!(error.to_string().contains(key), "{error}");
        }
    }
}
