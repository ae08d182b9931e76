//! Who is connecting: authentication of sessions ([`Auth`], set with
//! [`HubBuilder::authenticate`](crate::HubBuilder::authenticate)) and room
//! authorization ([`HubBuilder::authorize_rooms`](crate::HubBuilder::authorize_rooms)
//! and the `rooms` claim).
//!
//! A token is looked for, in the order of [`Auth::sources`], in the upgrade
//! request's `Authorization: Bearer <token>` header, its `token` query
//! parameter, and its `Sec-WebSocket-Protocol` offer (an entry
//! `bearer.<token>` beside the real protocols: the hub never selects it,
//! so the token is never echoed in the `101`; an `on_upgrade` must not
//! either. RFC 6455 §4.2.2 lets the server select one offered protocol or
//! none, but browsers fail a handshake whose offer got no protocol back:
//! a browser offers its real protocol too, and `on_upgrade` selects that).
//! A token found there is
//! verified at the handshake: a bad one is answered `401` with a body naming
//! the problem. Without one, and with [`TokenSource::Message`] enabled, the
//! session opens *unauthenticated*: its first message must be
//! `{"type":"auth","payload":{"token":"<token>"}}` within
//! [`Auth::timeout`]; until then nothing reaches the callbacks (`on_open`
//! included), and a bad token or the timeout closes with 1008. The answer is
//! `{"type":"auth.ok","payload":{"user":"<id>"}}`, then `on_open` runs.
//!
//! When the token's expiry passes, the session is closed with
//! [`TOKEN_EXPIRED`] (4001) and reason `token expired`. Another `auth`
//! message with a fresh token for the same user refreshes it in-band (a
//! token for another user closes with 1008).
//!
//! Rooms: [`Hub::authorize`] asks the token's `rooms` claim (a list of room
//! names and `prefix*` patterns; no claim means every room, a claim that is
//! not a list means none), then the hook of `authorize_rooms`. A denied
//! [`Hub::join`] or [`Hub::resume`] joins nothing and sends the session
//! `{"type":"error","payload":{"error":"forbidden","room":R,"message":..}}`;
//! an application reading a room's history from the store itself asks
//! [`Hub::admit_to_room`] first. The HTTP layer asks the same for long polling and
//! `/ws/send` (403).

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use hubbub_core::{CloseCode, Message, Reject, Request};
use serde_json::{json, Value};

use crate::{Envelope, Hub, Session};

/// The close code of a session whose token expired: 4001, reason
/// `token expired` (the 4000-4999 range is the application's, RFC 6455
/// §7.4.2).
pub const TOKEN_EXPIRED: CloseCode = CloseCode(4001);

/// The envelope type of the in-band authentication message.
pub const AUTH: &str = "auth";
/// The envelope type of its answer.
pub const AUTH_OK: &str = "auth.ok";

/// Who a session (or an HTTP request) is: the user id and the token's
/// claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub(crate) user: String,
    pub(crate) claims: Value,
    pub(crate) expires: Option<SystemTime>,
}

impl Identity {
    /// `user` with `claims` (`Value::Null` when there are none), valid
    /// until further notice.
    pub fn new(user: impl Into<String>, claims: Value) -> Self {
        Identity {
            user: user.into(),
            claims,
            expires: None,
        }
    }

    /// Valid until `expires`: the session is then closed with
    /// [`TOKEN_EXPIRED`] unless refreshed.
    pub fn expiring_at(mut self, expires: SystemTime) -> Self {
        self.expires = Some(expires);
        self
    }

    /// The user id.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The token's claims.
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// When the identity expires, if it does.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires
    }

    /// The expiry on the monotonic clock, from `now`.
    pub(crate) fn deadline(&self, now: Instant) -> Option<Instant> {
        let left = self
            .expires?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Some(now + left)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No token where one was needed.
    Missing,
    /// The token is malformed, badly signed, of the wrong algorithm, not
    /// yet valid, or for the wrong issuer or audience (the detail says
    /// which).
    Invalid(String),
    /// The token's `exp` has passed.
    Expired,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str("missing token"),
            AuthError::Invalid(why) => write!(f, "invalid token: {why}"),
            AuthError::Expired => f.write_str("token expired"),
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The reason as a metrics label: `missing`, `invalid` or `expired`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid(_) => "invalid",
            AuthError::Expired => "expired",
        }
    }
}

/// Turns a token into an [`Identity`]: [`JwtAuth`](crate::JwtAuth) with
/// the `jwt` feature, or any function `Fn(&str) -> Result<Identity,
/// AuthError>`.
pub trait Authenticator: Send + Sync {
    /// Verify `token`.
    fn verify(&self, token: &str) -> Result<Identity, AuthError>;
}

impl<F: Fn(&str) -> Result<Identity, AuthError> + Send + Sync> Authenticator for F {
    fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self(token)
    }
}

/// Where a token may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` on the upgrade request.
    Header,
    /// The `token` query parameter of the upgrade request (it ends up in
    /// access logs: prefer the others).
    Query,
    /// A `bearer.<token>` entry of `Sec-WebSocket-Protocol`.
    Protocol,
    /// The first message, `{"type":"auth","payload":{"token":..}}`
    /// (browser-friendly, kept out of URLs and logs).
    Message,
}

/// How a hub authenticates its sessions.
#[derive(Clone)]
pub struct Auth {
    authenticator: Arc<dyn Authenticator>,
    sources: Vec<TokenSource>,
    timeout: Duration,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("sources", &self.sources)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Verify tokens with `authenticator`, from every source (header,
    /// query, protocol, then message), with an auth message due within 10 s.
    pub fn new(authenticator: impl Authenticator + 'static) -> Self {
        Auth {
            authenticator: Arc::new(authenticator),
            sources: vec![
                TokenSource::Header,
                TokenSource::Query,
                TokenSource::Protocol,
                TokenSource::Message,
            ],
            timeout: Duration::from_secs(10),
        }
    }

    /// Look for the token in these sources only, in this order (the
    /// message, if listed, is always the last resort).
    pub fn sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// How long after open the auth message may take (10 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The auth message's deadline.
    pub(crate) fn message_timeout(&self) -> Duration {
        self.timeout
    }

    /// True when the auth message is accepted.
    pub(crate) fn in_band(&self) -> bool {
        self.sources.contains(&TokenSource::Message)
    }

    /// Verify `token`.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.authenticator.verify(token)
    }

    /// The token of an upgrade request, from the first handshake source
    /// that has one; `headers` yields `(name, value)`.
    pub(crate) fn handshake_token<'a>(
        &self,
        query: Option<&'a str>,
        headers: impl Fn(&str) -> Vec<&'a str>,
    ) -> Option<&'a str> {
        self.sources.iter().find_map(|source| match source {
            TokenSource::Header => headers("authorization").into_iter().find_map(bearer_token),
            TokenSource::Query => query.and_then(query_token),
            TokenSource::Protocol => headers("sec-websocket-protocol")
                .into_iter()
                .flat_map(|value| value.split(','))
                .find_map(|entry| entry.trim().strip_prefix("bearer."))
                .filter(|token| !token.is_empty()),
            TokenSource::Message => None,
        })
    }

    /// The token of a session's upgrade request.
    pub(crate) fn session_token<'a>(&self, session: &'a Session) -> Option<&'a str> {
        self.handshake_token(session.query(), |name| {
            session
                .headers()
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
                .collect()
        })
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is
/// case-insensitive, RFC 7235 §2.1).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `token` parameter of a query string (JWTs need no decoding:
/// base64url and dots).
fn query_token(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
}

/// The token of an auth message's payload.
pub(crate) fn message_token(payload: &Value) -> Result<&str, AuthError> {
    payload
        .get("token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or(AuthError::Missing)
}

/// The standard room rule: a `rooms` claim, when present, lists the rooms
/// an identity may use, each a name or a pattern ending in `*` (a prefix;
/// `*` alone is every room). No claim: every room.
pub(crate) fn rooms_claim_allows(claims: &Value, room: &str) -> Result<(), String> {
    let Some(rooms) = claims.get("rooms") else {
        return Ok(());
    };
    let Some(patterns) = rooms.as_array() else {
        return Err("the rooms claim is not a list".into());
    };
    let allowed =
        patterns
            .iter()
            .filter_map(Value::as_str)
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => room.starts_with(prefix),
                None => pattern == room,
            });
    if allowed {
        Ok(())
    } else {
        Err(format!("room {room} is not in the token's rooms"))
    }
}

/// The auth state of a session, when its hub authenticates (boxed in the
/// session's queue state: nothing is held without authentication).
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    /// Who, once authenticated.
    pub(crate) identity: Option<Arc<Identity>>,
    /// The auth message's deadline, then the token's expiry.
    pub(crate) deadline: Option<Instant>,
}

impl Hub {
    /// How this hub authenticates, if it does.
    pub fn auth(&self) -> Option<&Auth> {
        self.inner().auth.as_ref()
    }

    /// Authenticate an HTTP request by its `Authorization` header value:
    /// `Ok(None)` when the hub does not authenticate.
    pub fn authenticate_bearer(
        &self,
        authorization: Option<&str>,
    ) -> Result<Option<Identity>, AuthError> {
        let Some(auth) = self.auth() else {
            return Ok(None);
        };
        let token = authorization
            .and_then(bearer_token)
            .ok_or(AuthError::Missing)?;
        auth.verify(token).map(Some)
    }

    /// May `identity` (none without authentication) use `room`? The
    /// `rooms` claim first (a list of names and `prefix*` patterns; no
    /// claim: every room), then the hook of
    /// [`HubBuilder::authorize_rooms`](crate::HubBuilder::authorize_rooms).
    /// `Err` names the reason.
    pub fn authorize(&self, identity: Option<&Identity>, room: &str) -> Result<(), String> {
        if let Some(identity) = identity {
            rooms_claim_allows(identity.claims(), room)?;
        }
        match &self.inner().room_check {
            Some(check) => check(identity, room),
            None => Ok(()),
        }
    }

    /// [`authorize`](Self::authorize) for `session`'s identity.
    pub fn authorize_session(&self, session: &Session, room: &str) -> Result<(), String> {
        let inner = self.inner();
        if inner.auth.is_none() && inner.room_check.is_none() {
            return Ok(());
        }
        self.authorize(session.identity().as_deref(), room)
    }

    /// Room authorization for `session` ([`authorize_session`](Self::authorize_session)):
    /// true when allowed; a denied session is sent
    /// `{"type":"error","payload":{"error":"forbidden","room":R,"message":..}}`.
    /// [`join`](Self::join) and [`resume`](Self::resume) ask it; ask it
    /// before reading a room's history from the store directly.
    pub fn admit_to_room(&self, session: &Session, room: &str) -> bool {
        match self.authorize_session(session, room) {
            Ok(()) => true,
            Err(reason) => {
                let payload = json!({"error": "forbidden", "room": room, "message": reason});
                let _ = session.send_json("error", payload);
                false
            }
        }
    }

    /// The upgrade request's token, verified: the identity, `None` when the
    /// token is to come in-band (or the hub does not authenticate), or the
    /// `401` naming the problem.
    pub(crate) fn authenticate_request(
        &self,
        request: &Request,
    ) -> Result<Option<Identity>, Reject> {
        let Some(auth) = self.auth() else {
            return Ok(None);
        };
        let query = request.target().split_once('?').map(|(_, query)| query);
        let token = auth.handshake_token(query, |name| {
            request
                .headers()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
                .collect()
        });
        let verified = match token {
            Some(token) => auth.verify(token),
            None if auth.in_band() => return Ok(None),
            None => Err(AuthError::Missing),
        };
        verified.map(Some).map_err(|error| {
            self.count_auth_failure(error.reason());
            Reject::new(401)
                .with_header("WWW-Authenticate", "Bearer")
                .with_body(error.to_string())
        })
    }

    /// Count an authentication refused for `reason` (see
    /// [`Metrics::auth_failures`](crate::Metrics::auth_failures)).
    pub(crate) fn count_auth_failure(&self, reason: &'static str) {
        self.inner().metrics.auth_failures.inc(reason);
    }

    /// Set up a new session's auth state; true when it is authenticated
    /// (or the hub does not authenticate) and `on_open` may run.
    pub(crate) fn start_auth(&self, session: &Session, identity: Option<Identity>) -> bool {
        let Some(auth) = self.auth() else {
            return true;
        };
        let now = Instant::now();
        let verified = match identity {
            Some(identity) => Ok(identity),
            None => match auth.session_token(session) {
                Some(token) => auth.verify(token),
                None if auth.in_band() => {
                    session.set_auth(None, Some(now + auth.message_timeout()));
                    return false;
                }
                None => Err(AuthError::Missing),
            },
        };
        match verified {
            Ok(identity) => {
                let deadline = identity.deadline(now);
                session.set_auth(Some(identity), deadline);
                true
            }
            Err(error) => {
                self.count_auth_failure(error.reason());
                session.set_auth(None, None);
                session.close(CloseCode::POLICY_VIOLATION, &error.to_string());
                false
            }
        }
    }

    /// Handle an auth message (first authentication or refresh), and drop
    /// anything a session sends before it authenticated: true when
    /// `message` was consumed here.
    pub(crate) fn auth_message(&self, session: &Session, message: &Message) -> bool {
        let Some(auth) = self.auth() else {
            return false;
        };
        let awaiting = session.awaiting_auth();
        let Message::Text(text) = message else {
            return awaiting;
        };
        // A cheap look before parsing every message of an authenticated
        // session.
        if !auth.in_band() || !text.contains("\"auth\"") {
            return awaiting;
        }
        let Some(envelope) = Envelope::parse(text).filter(|e| e.event_type == AUTH) else {
            return awaiting;
        };
        let identity = match message_token(&envelope.payload).and_then(|t| auth.verify(t)) {
            Ok(identity) => identity,
            Err(error) => {
                self.count_auth_failure(error.reason());
                session.close(CloseCode::POLICY_VIOLATION, &error.to_string());
                return true;
            }
        };
        let previous = session.identity();
        if previous
            .as_ref()
            .is_some_and(|p| p.user() != identity.user())
        {
            self.count_auth_failure("other_user");
            session.close(CloseCode::POLICY_VIOLATION, "token is for another user");
            return true;
        }
        let user = identity.user().to_owned();
        let deadline = identity.deadline(Instant::now());
        session.set_auth(Some(identity), deadline);
        let _ = session.send_json(AUTH_OK, json!({ "user": user }));
        if previous.is_none() {
            self.call_on_open(session);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionInfo;

    #[test]
    fn tokens_are_found_in_the_configured_order() {
        let auth = Auth::new(|_: &str| Err(AuthError::Missing));
        let hub = Hub::builder().build();
        let info = |target: &str, headers: &[(&'static str, &'static str)]| {
            hub.open(SessionInfo::new(None, target, headers.iter().copied()))
                .unwrap()
        };
        let all = info(
            "/?a=1&token=q",
            &[
                ("Authorization", "Bearer h"),
                ("Sec-WebSocket-Protocol", "chat, bearer.p"),
            ],
        );
        assert_eq!(auth.session_token(&all), Some("h"));
        let auth = auth.sources([TokenSource::Protocol, TokenSource::Query]);
        assert_eq!(auth.session_token(&all), Some("p"));
        assert_eq!(auth.session_token(&info("/?token=q", &[])), Some("q"));
        assert_eq!(auth.session_token(&info("/?token=", &[])), None);
        assert!(!auth.in_band());
        assert_eq!(bearer_token("bearer  t "), Some("t"));
        assert_eq!(bearer_token("Basic t"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn a_session_waits_for_its_auth_message_then_expires() {
        use std::sync::{Arc, Mutex};

        use crate::{hub::tests::texts, session::Queued};

        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (opened, got) = (seen.clone(), seen.clone());
        let expires = SystemTime::now() + Duration::from_secs(60);
        let auth = Auth::new(move |token: &str| match token {
            "good" => Ok(Identity::new("ada", json!({})).expiring_at(expires)),
            "other" => Ok(Identity::new("bo", Value::Null)),
            _ => Err(AuthError::Invalid("bad signature".into())),
        })
        .timeout(Duration::from_secs(5));
        let hub = Hub::builder()
            .authenticate(auth)
            .on_open(move |s| opened.lock().unwrap().push(format!("open {:?}", s.user())))
            .on_message(move |_, text| got.lock().unwrap().push(text.to_owned()))
            .build();
        let s = hub.open(SessionInfo::new(None, "/", [])).unwrap();
        assert!(s.awaiting_auth() && s.identity().is_none());
        hub.deliver(&s, &Message::Text("early".into()));
        hub.deliver(&s, &Message::Binary(vec![1].into()));
        assert!(seen.lock().unwrap().is_empty(), "nothing before auth");
        let auth_text = |token: &str| {
            Message::Text(json!({"type": "auth", "payload": {"token": token}}).to_string())
        };
        hub.deliver(&s, &auth_text("good"));
        assert_eq!(
            texts(&s),
            [r#"{"type":"auth.ok","payload":{"user":"ada"}}"#]
        );
        assert_eq!(*seen.lock().unwrap(), [r#"open Some("ada")"#]);
        hub.deliver(&s, &Message::Text("later".into()));
        assert_eq!(seen.lock().unwrap().last().unwrap(), "later");

        // The deadline is the token's expiry; passing it closes with 4001.
        let mut conn = crate::session::tests::open_connection();
        let now = Instant::now();
        let drained = s.drain_into(&mut conn, now, usize::MAX, std::task::Waker::noop());
        let deadline = drained.deadline.unwrap();
        assert!(deadline > now + Duration::from_secs(50));
        s.deadline_passed(now); // not yet: nothing happens
        assert!(s.is_open());
        s.deadline_passed(deadline);
        assert_eq!(s.peek(), [Queued::Close(4001, "token expired".into())]);

        // A refresh for another user closes with 1008; no auth in time too.
        let t = hub.open(SessionInfo::new(None, "/", [])).unwrap();
        hub.deliver(&t, &auth_text("good"));
        hub.deliver(&t, &auth_text("other"));
        assert_eq!(
            t.peek().last(),
            Some(&Queued::Close(1008, "token is for another user".into()))
        );
        let u = hub.open(SessionInfo::new(None, "/", [])).unwrap();
        u.deadline_passed(Instant::now() + Duration::from_secs(6));
        assert_eq!(
            u.peek(),
            [Queued::Close(1008, "authentication timeout".into())]
        );
        hub.closed(&u, CloseCode::POLICY_VIOLATION, "");
        assert_eq!(seen.lock().unwrap().len(), 3, "no on_open for u");
    }

    #[test]
    fn the_rooms_claim_lists_names_and_prefixes() {
        let claims = json!({"rooms": ["general", "team-*"]});
        assert!(rooms_claim_allows(&claims, "general").is_ok());
        assert!(rooms_claim_allows(&claims, "team-a").is_ok());
        let denied = rooms_claim_allows(&claims, "secret").unwrap_err();
        assert_eq!(denied, "room secret is not in the token's rooms");
        assert!(rooms_claim_allows(&json!({}), "any").is_ok(), "no claim");
        assert!(rooms_claim_allows(&json!({"rooms": ["*"]}), "x").is_ok());
        assert!(rooms_claim_allows(&json!({"rooms": "x"}), "x").is_err());
        assert!(rooms_claim_allows(&json!({"rooms": []}), "x").is_err());
    }

    #[test]
    fn auth_messages_name_what_is_missing() {
        assert_eq!(message_token(&json!({"token": "t"})), Ok("t"));
        assert_eq!(message_token(&json!({})), Err(AuthError::Missing));
        assert_eq!(AuthError::Expired.to_string(), "token expired");
        assert_eq!(
            AuthError::Invalid("InvalidSignature".into()).to_string(),
            "invalid token: InvalidSignature"
        );
    }
}
