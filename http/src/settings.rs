//! Application settings from the environment and a `.env` file (the
//! environment wins); every key, with its default, is listed in the
//! `Settings` section of `examples/README.md`.
//! An invalid value stops start-up with an error naming the key and value.

use std::{collections::HashMap, fmt, path::Path, sync::Arc, time::Duration};

use hubbub_core::{Config, DeflateConfig, ReceiveBudget};
use hubbub_hub::HubLimits;

use crate::{HttpRateLimits, LimitSettings, LongPollConfig};

/// Every setting, resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `SERVER_HOST`: address of the HTTP routes.
    pub server_host: String,
    /// `SERVER_PORT`: port of the HTTP routes.
    pub server_port: u16,
    /// `WEBSOCKET_HOST`: address of the WebSocket listener.
    pub websocket_host: String,
    /// `WEBSOCKET_PORT`: port of the WebSocket listener (equal to
    /// `server_port` means one shared port).
    pub websocket_port: u16,
    /// `WEBSOCKET_MAX_MESSAGE_SIZE`: bytes; larger messages close with 1009.
    pub max_message_size: usize,
    /// `WEBSOCKET_IDLE_TIMEOUT`: close after this long without inbound
    /// traffic; `None` when set to 0.
    pub idle_timeout: Option<Duration>,
    /// `WEBSOCKET_PING_INTERVAL`: keep-alive pings; `None` when set to 0.
    pub ping_interval: Option<Duration>,
    /// `WEBSOCKET_MESSAGE_TIMEOUT`: a message must arrive whole within this
    /// long of its first byte (else 1008); `None` when set to 0.
    pub message_timeout: Option<Duration>,
    /// `WEBSOCKET_RECEIVE_BUDGET`: bytes that unfinished incoming messages
    /// of all connections may hold together (past it: 1009); `None` when
    /// set to 0.
    pub receive_budget: Option<usize>,
    /// `WEBSOCKET_AUTO_PING_PONG`: answer pings automatically.
    pub auto_ping_pong: bool,
    /// `WEBSOCKET_ENABLE_DEFLATE`: negotiate permessage-deflate.
    pub enable_deflate: bool,
    /// `PUBLIC_PATH`: directory of static files.
    pub public_path: String,
    /// `PUBLIC_MOUNT`: URL prefix of the static files.
    pub public_mount: String,
    /// `PUBLIC_INDEX`: file served for a directory.
    pub public_index: String,
    /// `PUBLIC_CACHE_CONTROL`: `Cache-Control` of static responses.
    pub public_cache_control: String,
    /// `PUBLIC_SPA_FALLBACK`: serve the index for unknown paths.
    pub public_spa_fallback: bool,
    /// `STORE_PATH`: SQLite history file, if the application wants one.
    pub store_path: Option<String>,
    /// `AUTH_REQUIRED`: clients must authenticate (the chat's auth mode).
    pub auth_required: bool,
    /// `AUTH_JWT_SECRET`: the HS256 secret of the tokens; required when
    /// `auth_required`.
    pub auth_jwt_secret: Option<String>,
    /// `AUTH_TIMEOUT`: how long after open the auth message may take.
    pub auth_timeout: Duration,
    /// `NODE_ID`: this process's name in presence entries (unset: the
    /// application's choice; the chat uses its WebSocket `host:port`).
    pub node_id: Option<String>,
    /// `PRESENCE_EVENTS`: send `presence.join`/`presence.leave` to a
    /// room's members (off by default).
    pub presence_events: bool,
    /// `REDIS_URL`: `redis://HOST:PORT[/DB]` selects the Redis room engine
    /// (rooms, history and presence shared by every node on that Redis);
    /// unset: the embedded engine, one process.
    pub redis_url: Option<String>,
    /// `REDIS_PREFIX`: the prefix of the engine's keys and channels
    /// (default `hubbub`); nodes sharing rooms use the same one.
    pub redis_prefix: String,
    /// `REDIS_LOG_MAX_LEN`: messages kept per room in Redis, about
    /// (default 10000).
    pub redis_log_max_len: u64,
    /// `REDIS_LOG_MAX_AGE`: seconds a message stays in its room's log
    /// (default 86400; 0 = until the length cap).
    pub redis_log_max_age: Option<Duration>,
    /// `PRESENCE_TTL`: seconds a node's presence entries outlive its last
    /// heartbeat in Redis (default 30): a dead node's members drop out
    /// within this.
    pub presence_ttl: Duration,
    /// Origins, rates and connection caps (`ALLOWED_ORIGINS`,
    /// `WEBSOCKET_RATE_LIMIT`, `MAX_CONNECTIONS`, ...): all off by default.
    pub limits: LimitSettings,
    /// The long-poll bounds (`LONGPOLL_MAX_SESSIONS`,
    /// `LONGPOLL_MAX_SESSIONS_PER_IP`, `LONGPOLL_QUEUE_MESSAGES`,
    /// `LONGPOLL_SESSION_BYTES`, `LONGPOLL_TOTAL_BYTES`,
    /// `LONGPOLL_POLL_BYTES`): [`LongPollConfig::default`] unless set.
    pub long_poll: LongPollConfig,
    /// `TLS_CERT_PATH` and `TLS_KEY_PATH`: the PEM certificate chain and
    /// private key to serve TLS with (`https://`, `wss://`); both or
    /// neither, unset by default.
    pub tls: Option<TlsFiles>,
    /// `HTTP2`: under TLS, offer HTTP/2 by ALPN (`h2`, then `http/1.1`):
    /// WebSockets over HTTP/2 (RFC 8441) and the routes over HTTP/2; off,
    /// ALPN offers `http/1.1` only. On by default; no effect without TLS.
    pub http2: bool,
}

/// Where a server's TLS certificate and key are (`TLS_CERT_PATH`,
/// `TLS_KEY_PATH`): read at start-up, and again on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `TLS_CERT_PATH`: the certificate chain (PEM, the server's first).
    pub cert: String,
    /// `TLS_KEY_PATH`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_host: "0.0.0.0".into(),
            server_port: 8080,
            websocket_host: "0.0.0.0".into(),
            websocket_port: 9090,
            max_message_size: 65536,
            idle_timeout: Some(Duration::from_secs(60)),
            ping_interval: Some(Duration::from_secs(30)),
            message_timeout: Some(Duration::from_secs(30)),
            receive_budget: Some(256 << 20),
            auto_ping_pong: true,
            enable_deflate: true,
            public_path: "public".into(),
            public_mount: "/".into(),
            public_index: "index.html".into(),
            public_cache_control: "no-cache".into(),
            public_spa_fallback: false,
            store_path: None,
            auth_required: false,
            auth_jwt_secret: None,
            auth_timeout: Duration::from_secs(10),
            node_id: None,
            presence_events: false,
            redis_url: None,
            redis_prefix: "hubbub".into(),
            redis_log_max_len: 10_000,
            redis_log_max_age: Some(Duration::from_secs(86_400)),
            presence_ttl: Duration::from_secs(30),
            limits: LimitSettings::default(),
            long_poll: LongPollConfig::default(),
            tls: None,
            http2: true,
        }
    }
}

/// A setting with an unusable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The key, e.g. `WEBSOCKET_PORT`.
    pub key: &'static str,
    /// The value found.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: expected {}",
            self.key, self.value, self.expected
        )
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Read `.env` in the working directory (if present) and the process
    /// environment; the environment wins.
    pub fn from_env() -> Result<Settings, SettingsError> {
        Self::from_env_and_file(Path::new(".env"))
    }

    /// Like [`from_env`](Self::from_env) with an explicit `.env` path.
    pub fn from_env_and_file(dotenv: &Path) -> Result<Settings, SettingsError> {
        let file = read_dotenv(dotenv).map_err(|why| SettingsError {
            key: "(.env)",
            value: dotenv.display().to_string(),
            expected: why,
        })?;
        Self::from_lookup(|key| std::env::var(key).ok().or_else(|| file.get(key).cloned()))
    }

    /// Resolve every key through `lookup` (unset keys keep their defaults).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let d = Settings::default();
        let get = |key: &'static str| lookup(key).map(|v| (key, v.trim().to_owned()));
        let settings = Settings {
            server_host: get("SERVER_HOST")
                .map(host)
                .transpose()?
                .unwrap_or(d.server_host),
            server_port: get("SERVER_PORT")
                .map(port)
                .transpose()?
                .unwrap_or(d.server_port),
            websocket_host: get("WEBSOCKET_HOST")
                .map(host)
                .transpose()?
                .unwrap_or(d.websocket_host),
            websocket_port: get("WEBSOCKET_PORT")
                .map(port)
                .transpose()?
                .unwrap_or(d.websocket_port),
            max_message_size: get("WEBSOCKET_MAX_MESSAGE_SIZE")
                .map(message_size)
                .transpose()?
                .unwrap_or(d.max_message_size),
            idle_timeout: get("WEBSOCKET_IDLE_TIMEOUT")
                .map(seconds)
                .transpose()?
                .unwrap_or(d.idle_timeout),
            ping_interval: get("WEBSOCKET_PING_INTERVAL")
                .map(seconds)
                .transpose()?
                .unwrap_or(d.ping_interval),
            message_timeout: get("WEBSOCKET_MESSAGE_TIMEOUT")
                .map(seconds)
                .transpose()?
                .unwrap_or(d.message_timeout),
            receive_budget: get("WEBSOCKET_RECEIVE_BUDGET")
                .map(budget)
                .transpose()?
                .unwrap_or(d.receive_budget),
            auto_ping_pong: get("WEBSOCKET_AUTO_PING_PONG")
                .map(boolean)
                .transpose()?
                .unwrap_or(d.auto_ping_pong),
            enable_deflate: get("WEBSOCKET_ENABLE_DEFLATE")
                .map(boolean)
                .transpose()?
                .unwrap_or(d.enable_deflate),
            public_path: get("PUBLIC_PATH")
                .map(non_empty)
                .transpose()?
                .unwrap_or(d.public_path),
            public_mount: get("PUBLIC_MOUNT")
                .map(mount)
                .transpose()?
                .unwrap_or(d.public_mount),
            public_index: get("PUBLIC_INDEX")
                .map(non_empty)
                .transpose()?
                .unwrap_or(d.public_index),
            public_cache_control: get("PUBLIC_CACHE_CONTROL")
                .map(|(_, v)| v)
                .unwrap_or(d.public_cache_control),
            public_spa_fallback: get("PUBLIC_SPA_FALLBACK")
                .map(boolean)
                .transpose()?
                .unwrap_or(d.public_spa_fallback),
            store_path: get("STORE_PATH").map(|(_, v)| v).filter(|v| !v.is_empty()),
            auth_required: get("AUTH_REQUIRED")
                .map(boolean)
                .transpose()?
                .unwrap_or(d.auth_required),
            auth_jwt_secret: get("AUTH_JWT_SECRET")
                .map(|(_, v)| v)
                .filter(|v| !v.is_empty()),
            auth_timeout: get("AUTH_TIMEOUT")
                .map(positive_seconds)
                .transpose()?
                .unwrap_or(d.auth_timeout),
            node_id: get("NODE_ID").map(non_empty).transpose()?,
            presence_events: get("PRESENCE_EVENTS")
                .map(boolean)
                .transpose()?
                .unwrap_or(d.presence_events),
            redis_url: get("REDIS_URL")
                .filter(|(_, v)| !v.is_empty())
                .map(redis_url)
                .transpose()?,
            redis_prefix: get("REDIS_PREFIX")
                .map(non_empty)
                .transpose()?
                .unwrap_or(d.redis_prefix),
            redis_log_max_len: get("REDIS_LOG_MAX_LEN")
                .map(positive_count)
                .transpose()?
                .unwrap_or(d.redis_log_max_len),
            redis_log_max_age: get("REDIS_LOG_MAX_AGE")
                .map(seconds)
                .transpose()?
                .unwrap_or(d.redis_log_max_age),
            presence_ttl: get("PRESENCE_TTL")
                .map(positive_seconds)
                .transpose()?
                .unwrap_or(d.presence_ttl),
            limits: LimitSettings::from_lookup(&lookup)?,
            long_poll: crate::longpoll_settings::from_lookup(&lookup)?,
            tls: tls_files(
                get("TLS_CERT_PATH").map(|(_, v)| v),
                get("TLS_KEY_PATH").map(|(_, v)| v),
            )?,
            http2: get("HTTP2").map(boolean).transpose()?.unwrap_or(d.http2),
        };
        if settings.auth_required && settings.auth_jwt_secret.is_none() {
            return Err(invalid(
                "AUTH_JWT_SECRET",
                String::new(),
                "a secret when AUTH_REQUIRED=true",
            ));
        }
        Ok(settings)
    }

    /// True when HTTP and WebSocket share one listener.
    pub fn shared_port(&self) -> bool {
        self.server_port == self.websocket_port && self.server_host == self.websocket_host
    }

    /// The hub's limits: `Hub::builder().limits(settings.hub_limits())`.
    pub fn hub_limits(&self) -> HubLimits {
        self.limits.hub.clone()
    }

    /// The HTTP side's per-address limits:
    /// `HttpApp::builder(hub).rate_limits(settings.http_rate_limits())`.
    pub fn http_rate_limits(&self) -> HttpRateLimits {
        self.limits.http
    }

    /// The protocol configuration these settings imply.
    pub fn core_config(&self) -> Arc<Config> {
        Arc::new(Config {
            max_message_size: self.max_message_size,
            idle_timeout: self.idle_timeout,
            ping_interval: self.ping_interval,
            message_timeout: self.message_timeout,
            receive_budget: self
                .receive_budget
                .map(|limit| Arc::new(ReceiveBudget::new(limit))),
            auto_pong: self.auto_ping_pong,
            deflate: self.enable_deflate.then(DeflateConfig::default),
            ..Config::default()
        })
    }
}

/// `TLS_CERT_PATH` and `TLS_KEY_PATH` (empty means unset): both or
/// neither; one alone is an error naming the missing key.
fn tls_files(cert: Option<String>, key: Option<String>) -> Result<Option<TlsFiles>, SettingsError> {
    let (cert, key) = (
        cert.filter(|v| !v.is_empty()),
        key.filter(|v| !v.is_empty()),
    );
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(
            "TLS_KEY_PATH",
            String::new(),
            "a PEM private key file when TLS_CERT_PATH is set (both or neither)",
        )),
        (None, Some(_)) => Err(invalid(
            "TLS_CERT_PATH",
            String::new(),
            "a PEM certificate file when TLS_KEY_PATH is set (both or neither)",
        )),
    }
}

/// Parse a `.env` file without touching the process environment.
fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, &'static str> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(e) if e.not_found() => return Ok(HashMap::new()),
        Err(_) => return Err("a readable .env file"),
    };
    iter.collect::<Result<_, _>>()
        .map_err(|_| "a .env file of KEY=VALUE lines")
}

type Entry = (&'static str, String);

fn invalid(key: &'static str, value: String, expected: &'static str) -> SettingsError {
    SettingsError {
        key,
        value,
        expected,
    }
}

fn host((key, value): Entry) -> Result<String, SettingsError> {
    if value.is_empty() || value.contains(char::is_whitespace) {
        return Err(invalid(key, value, "a host name or IP address"));
    }
    Ok(value)
}

/// Ports are 0 (any free port) or 1024–65535, as in the reference.
fn port((key, value): Entry) -> Result<u16, SettingsError> {
    match value.parse::<u16>() {
        Ok(p) if p == 0 || p >= 1024 => Ok(p),
        _ => Err(invalid(key, value, "a port: 0 or 1024-65535")),
    }
}

fn message_size((key, value): Entry) -> Result<usize, SettingsError> {
    match value.parse::<usize>() {
        Ok(n) if n >= 1024 => Ok(n),
        _ => Err(invalid(key, value, "a size in bytes of at least 1024")),
    }
}

/// Bytes; 0 turns the budget off, else at least 1024.
fn budget((key, value): Entry) -> Result<Option<usize>, SettingsError> {
    match value.parse::<usize>() {
        Ok(0) => Ok(None),
        Ok(n) if n >= 1024 => Ok(Some(n)),
        _ => Err(invalid(
            key,
            value,
            "a size in bytes of at least 1024 (0 = off)",
        )),
    }
}

/// Whole seconds; 0 or less turns the timer off.
fn seconds((key, value): Entry) -> Result<Option<Duration>, SettingsError> {
    match value.parse::<i64>() {
        Ok(n) if n <= 0 => Ok(None),
        Ok(n) => Ok(Some(Duration::from_secs(n as u64))),
        Err(_) => Err(invalid(key, value, "a whole number of seconds (0 = off)")),
    }
}

fn positive_seconds((key, value): Entry) -> Result<Duration, SettingsError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => Err(invalid(key, value, "a positive whole number of seconds")),
    }
}

fn positive_count((key, value): Entry) -> Result<u64, SettingsError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(key, value, "a positive whole number")),
    }
}

fn redis_url((key, value): Entry) -> Result<String, SettingsError> {
    if !value.starts_with("redis://") {
        return Err(invalid(key, value, "redis://HOST:PORT[/DB]"));
    }
    Ok(value)
}

fn boolean((key, value): Entry) -> Result<bool, SettingsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(invalid(key, value, "true/false (also 1/0, on/off, yes/no)")),
    }
}

fn non_empty((key, value): Entry) -> Result<String, SettingsError> {
    if value.is_empty() {
        return Err(invalid(key, value, "a non-empty value"));
    }
    Ok(value)
}

fn mount((key, value): Entry) -> Result<String, SettingsError> {
    if !value.starts_with('/') {
        return Err(invalid(key, value, "a URL path starting with /"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup over fixed `(key, value)` pairs, for `Settings::from_lookup`.
    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = from(&[]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(
            (s.server_port, s.websocket_port, s.max_message_size),
            (8080, 9090, 65536)
        );
        assert_eq!(
            (s.idle_timeout, s.ping_interval),
            (Some(Duration::from_secs(60)), Some(Duration::from_secs(30)))
        );
        assert!(s.auto_ping_pong && s.enable_deflate && !s.public_spa_fallback);
        assert_eq!(
            (
                s.public_path.as_str(),
                s.public_mount.as_str(),
                s.public_index.as_str()
            ),
            ("public", "/", "index.html")
        );
        assert_eq!(s.core_config().deflate, Some(DeflateConfig::default()));
    }

    #[test]
    fn values_are_parsed() {
        let s = from(&[
            ("WEBSOCKET_PORT", "9001"),
            ("WEBSOCKET_IDLE_TIMEOUT", "0"),
            ("WEBSOCKET_PING_INTERVAL", "-5"),
            ("WEBSOCKET_MESSAGE_TIMEOUT", "90"),
            ("WEBSOCKET_RECEIVE_BUDGET", "1048576"),
            ("WEBSOCKET_ENABLE_DEFLATE", "off"),
            ("WEBSOCKET_AUTO_PING_PONG", "NO"),
            ("PUBLIC_SPA_FALLBACK", "yes"),
            ("WEBSOCKET_MAX_MESSAGE_SIZE", " 1024 "),
            ("SERVER_PORT", "9001"),
            ("SERVER_HOST", "0.0.0.0"),
        ])
        .unwrap();
        assert_eq!(s.websocket_port, 9001);
        assert_eq!((s.idle_timeout, s.ping_interval), (None, None));
        assert!(!s.enable_deflate && !s.auto_ping_pong && s.public_spa_fallback);
        assert_eq!(s.max_message_size, 1024);
        assert!(s.shared_port());
        let config = s.core_config();
        assert_eq!(
            (
                config.max_message_size,
                config.idle_timeout,
                config.auto_pong
            ),
            (1024, None, false)
        );
        assert_eq!(config.deflate, None);
        assert_eq!(config.message_timeout, Some(Duration::from_secs(90)));
        let budget = config.receive_budget.as_ref().map(|b| b.limit());
        assert_eq!(budget, Some(1 << 20));
        let off = from(&[("WEBSOCKET_RECEIVE_BUDGET", "0")]).unwrap();
        assert!(off.core_config().receive_budget.is_none());
        assert!(from(&[("WEBSOCKET_RECEIVE_BUDGET", "12")]).is_err());
    }

    #[test]
    fn auth_keys_need_a_secret_when_required() {
        let off = Settings::from_lookup(lookup(&[])).unwrap();
        assert!(!off.auth_required && off.auth_jwt_secret.is_none());
        assert_eq!(off.auth_timeout, Duration::from_secs(10));
        let on = Settings::from_lookup(lookup(&[
            ("AUTH_REQUIRED", "true"),
            ("AUTH_JWT_SECRET", "s"),
            ("AUTH_TIMEOUT", "3"),
        ]))
        .unwrap();
        assert_eq!(
            (
                on.auth_required,
                on.auth_jwt_secret.as_deref(),
                on.auth_timeout
            ),
            (true, Some("s"), Duration::from_secs(3))
        );
        let missing = Settings::from_lookup(lookup(&[("AUTH_REQUIRED", "yes")])).unwrap_err();
        assert_eq!(
            missing.to_string(),
            r#"invalid AUTH_JWT_SECRET="": expected a secret when AUTH_REQUIRED=true"#
        );
        let zero = Settings::from_lookup(lookup(&[("AUTH_TIMEOUT", "0")])).unwrap_err();
        assert_eq!(zero.key, "AUTH_TIMEOUT");
    }

    #[test]
    fn presence_keys() {
        let off = from(&[]).unwrap();
        assert_eq!((off.node_id, off.presence_events), (None, false));
        let on = from(&[("NODE_ID", " eu-1 "), ("PRESENCE_EVENTS", "true")]).unwrap();
        assert_eq!(
            (on.node_id.as_deref(), on.presence_events),
            (Some("eu-1"), true)
        );
        assert_eq!(from(&[("NODE_ID", "")]).unwrap_err().key, "NODE_ID");
        assert_eq!(
            from(&[("PRESENCE_EVENTS", "maybe")]).unwrap_err().key,
            "PRESENCE_EVENTS"
        );
    }

    #[test]
    fn redis_keys() {
        let off = from(&[]).unwrap();
        assert_eq!(off.redis_url, None);
        assert_eq!(
            (off.redis_prefix.as_str(), off.redis_log_max_len),
            ("hubbub", 10_000)
        );
        assert_eq!(off.redis_log_max_age, Some(Duration::from_secs(86_400)));
        assert_eq!(off.presence_ttl, Duration::from_secs(30));
        let on = from(&[
            ("REDIS_URL", "redis://127.0.0.1:6380/2"),
            ("REDIS_PREFIX", "eu"),
            ("REDIS_LOG_MAX_LEN", "500"),
            ("REDIS_LOG_MAX_AGE", "0"),
            ("PRESENCE_TTL", "3"),
        ])
        .unwrap();
        assert_eq!(on.redis_url.as_deref(), Some("redis://127.0.0.1:6380/2"));
        assert_eq!(
            (on.redis_prefix.as_str(), on.redis_log_max_len),
            ("eu", 500)
        );
        assert_eq!(
            (on.redis_log_max_age, on.presence_ttl),
            (None, Duration::from_secs(3))
        );
        for (key, bad) in [
            ("REDIS_URL", "http://127.0.0.1:6379"),
            ("REDIS_LOG_MAX_LEN", "0"),
            ("PRESENCE_TTL", "0"),
            ("REDIS_PREFIX", ""),
        ] {
            assert_eq!(from(&[(key, bad)]).unwrap_err().key, key);
        }
    }

    #[test]
    fn http2_is_on_by_default_and_a_boolean() {
        assert!(Settings::from_lookup(lookup(&[])).unwrap().http2);
        let off = Settings::from_lookup(lookup(&[("HTTP2", "off")])).unwrap();
        assert!(!off.http2);
        let bad = Settings::from_lookup(lookup(&[("HTTP2", "h2c")])).unwrap_err();
        assert_eq!(bad.key, "HTTP2");
        assert!(bad.to_string().contains("true/false"), "{bad}");
    }

    #[test]
    fn tls_files_go_together() {
        assert_eq!(Settings::from_lookup(lookup(&[])).unwrap().tls, None);
        let both = Settings::from_lookup(lookup(&[
            ("TLS_CERT_PATH", " cert.pem "),
            ("TLS_KEY_PATH", "key.pem"),
        ]))
        .unwrap();
        assert_eq!(
            both.tls,
            Some(TlsFiles {
                cert: "cert.pem".into(),
                key: "key.pem".into()
            })
        );
        let empty = Settings::from_lookup(lookup(&[("TLS_CERT_PATH", ""), ("TLS_KEY_PATH", "")]));
        assert_eq!(empty.unwrap().tls, None);
        let no_key = Settings::from_lookup(lookup(&[("TLS_CERT_PATH", "c.pem")])).unwrap_err();
        assert_eq!(no_key.key, "TLS_KEY_PATH");
        assert!(
            no_key.to_string().contains("when TLS_CERT_PATH is set"),
            "{no_key}"
        );
        let no_cert = Settings::from_lookup(lookup(&[("TLS_KEY_PATH", "k.pem")])).unwrap_err();
        assert_eq!(no_cert.key, "TLS_CERT_PATH");
    }

    #[test]
    fn invalid_values_name_key_and_value() {
        for (key, value) in [
            ("WEBSOCKET_PORT", "80"),
            ("WEBSOCKET_PORT", "70000"),
            ("SERVER_PORT", "http"),
            ("WEBSOCKET_MAX_MESSAGE_SIZE", "1023"),
            ("WEBSOCKET_IDLE_TIMEOUT", "1m"),
            ("WEBSOCKET_ENABLE_DEFLATE", "maybe"),
            ("PUBLIC_MOUNT", "static"),
            ("WEBSOCKET_HOST", ""),
        ] {
            let err = from(&[(key, value)]).unwrap_err();
            assert_eq!((err.key, err.value.as_str()), (key, value));
            let shown = err.to_string();
            assert!(shown.contains(key) && shown.contains(value), "{shown}");
        }
    }

    #[test]
    fn environment_wins_over_dotenv() {
        let dir = std::env::temp_dir().join(format!("hubbub-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(".env");
        std::fs::write(
            &file,
            "# comment\nHUBBUB_TEST_ONLY=1\nWEBSOCKET_PORT=9100\nPUBLIC_INDEX=\"home.html\"\n",
        )
        .unwrap();
        let s = Settings::from_env_and_file(&file).unwrap();
        assert_eq!(
            (s.websocket_port, s.public_index.as_str()),
            (9100, "home.html")
        );
        // A key set in the environment overrides the file (lookup order is
        // the same function; exercised without mutating the process env).
        let map: HashMap<String, String> = dotenvy::from_path_iter(&file)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let s = Settings::from_lookup(|k| {
            if k == "WEBSOCKET_PORT" {
                Some("9200".into())
            } else {
                map.get(k).cloned()
            }
        })
        .unwrap();
        assert_eq!(s.websocket_port, 9200);
        // A missing file is fine; defaults apply.
        assert_eq!(
            Settings::from_env_and_file(&dir.join("missing.env"))
                .unwrap()
                .websocket_port,
            std::env::var("WEBSOCKET_PORT")
                .ok()
                .map_or(9090, |p| p.parse().unwrap())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every settings key, removed from a child's environment so the
    /// parent's cannot leak into a case.
    const KEYS: [&str; 20] = [
        "SERVER_HOST",
        "SERVER_PORT",
        "WEBSOCKET_HOST",
        "WEBSOCKET_PORT",
        "WEBSOCKET_MAX_MESSAGE_SIZE",
        "WEBSOCKET_IDLE_TIMEOUT",
        "WEBSOCKET_PING_INTERVAL",
        "WEBSOCKET_MESSAGE_TIMEOUT",
        "WEBSOCKET_RECEIVE_BUDGET",
        "WEBSOCKET_AUTO_PING_PONG",
        "WEBSOCKET_ENABLE_DEFLATE",
        "PUBLIC_PATH",
        "PUBLIC_MOUNT",
        "PUBLIC_INDEX",
        "PUBLIC_CACHE_CONTROL",
        "PUBLIC_SPA_FALLBACK",
        "STORE_PATH",
        "TLS_CERT_PATH",
        "TLS_KEY_PATH",
        "HTTP2",
    ];

    /// `Settings::from_env` in a child process. Run normally, it starts
    /// this test binary again on this one test (`--exact`), marked as the
    /// child by `HUBBUB_SETTINGS_CHILD`, in an empty directory (no `.env`)
    /// with every settings key (`KEYS`) removed from its environment but a
    /// few set to non-default values, and checks that the child printed
    /// exactly those. As the child (here, or for
    /// `process_environment_wins_over_dotenv_file`) it prints the settings
    /// it read.
    #[test]
    fn child_prints_settings_from_env() {
        if std::env::var_os("HUBBUB_SETTINGS_CHILD").is_some() {
            match Settings::from_env() {
                Ok(s) => println!(
                    "SETTINGS port={} index={} idle={:?} deflate={} store={:?}",
                    s.websocket_port,
                    s.public_index,
                    s.idle_timeout,
                    s.enable_deflate,
                    s.store_path
                ),
                Err(e) => println!("SETTINGS error {e}"),
            }
            return;
        }
        let dir = std::env::temp_dir().join(format!("hubbub-env-child-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let env = [
            ("WEBSOCKET_PORT", "9301"),
            ("PUBLIC_INDEX", "start.html"),
            ("WEBSOCKET_IDLE_TIMEOUT", "7"),
            ("WEBSOCKET_ENABLE_DEFLATE", "no"),
            ("STORE_PATH", "/tmp/child.db"),
        ];
        let (printed, stdout) = child_settings(&dir, &env);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            printed,
            r#"port=9301 index=start.html idle=Some(7s) deflate=false store=Some("/tmp/child.db")"#
        );
        // Exactly one test ran in the child: this one, not the whole suite.
        assert!(stdout.contains("1 passed"), "{stdout}");
    }

    /// Run `child_prints_settings_from_env` as a child process in `dir`,
    /// with no settings key in its environment but `env`: the settings line
    /// it printed, and its whole output.
    fn child_settings(dir: &Path, env: &[(&str, &str)]) -> (String, String) {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "settings::tests::child_prints_settings_from_env"])
            .args(["--nocapture", "--test-threads=1"])
            .current_dir(dir)
            .env("HUBBUB_SETTINGS_CHILD", "1");
        for key in KEYS {
            child.env_remove(key);
        }
        child.envs(env.iter().copied());
        let out = child.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        // The harness prints "test <name> ... " first, on the same line.
        let printed = stdout.lines().find_map(|l| l.split_once("SETTINGS "));
        let printed = printed.unwrap_or_else(|| panic!("the child ran: {stdout}"));
        (printed.1.to_owned(), stdout)
    }

    /// `Settings::from_env` in a real process: `.env` in the working
    /// directory, the process environment winning over it.
    #[test]
    fn process_environment_wins_over_dotenv_file() {
        let dir = std::env::temp_dir().join(format!("hubbub-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |dotenv: &str, env: &[(&str, &str)]| -> String {
            std::fs::write(dir.join(".env"), dotenv).unwrap();
            child_settings(&dir, env).0
        };
        let dotenv = "# the app's defaults\nWEBSOCKET_PORT=9100\nPUBLIC_INDEX=\"home.html\"\n\
                      WEBSOCKET_IDLE_TIMEOUT=soon\nSTORE_PATH=/tmp/h.db\n";
        // The file alone: its invalid idle timeout stops start-up, named.
        assert_eq!(
            run(dotenv, &[]),
            r#"error invalid WEBSOCKET_IDLE_TIMEOUT="soon": expected a whole number of seconds (0 = off)"#
        );
        // The environment wins, key by key; the file fills in the rest.
        assert_eq!(
            run(
                dotenv,
                &[("WEBSOCKET_PORT", "9200"), ("WEBSOCKET_IDLE_TIMEOUT", "5")]
            ),
            r#"port=9200 index=home.html idle=Some(5s) deflate=true store=Some("/tmp/h.db")"#
        );
        // An invalid value in the environment is named too, even where the
        // file's is fine.
        assert_eq!(
            run(
                dotenv,
                &[("WEBSOCKET_IDLE_TIMEOUT", "0"), ("WEBSOCKET_PORT", "80")]
            ),
            r#"error invalid WEBSOCKET_PORT="80": expected a port: 0 or 1024-65535"#
        );
        assert_eq!(
            run("", &[("WEBSOCKET_ENABLE_DEFLATE", "perhaps")]),
            r#"error invalid WEBSOCKET_ENABLE_DEFLATE="perhaps": expected true/false (also 1/0, on/off, yes/no)"#
        );
        // An empty value set in the environment is a value, not "unset".
        assert!(run("", &[("SERVER_PORT", "")]).starts_with(r#"error invalid SERVER_PORT="""#));
        // A broken file is named as such.
        let broken = run("WEBSOCKET_PORT=9100\nthis is not a pair\n", &[]);
        assert!(broken.starts_with("error invalid (.env)="), "{broken}");
        // No file: the defaults.
        std::fs::remove_file(dir.join(".env")).unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "settings::tests::child_prints_settings_from_env",
                "--nocapture",
            ])
            .current_dir(&dir)
            .env("HUBBUB_SETTINGS_CHILD", "1");
        for key in KEYS {
            child.env_remove(key);
        }
        let stdout = String::from_utf8(child.output().unwrap().stdout).unwrap();
        assert!(
            stdout.contains(
                "SETTINGS port=9090 index=index.html idle=Some(60s) deflate=true store=None"
            ),
            "{stdout}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
