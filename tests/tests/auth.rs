//! Who is connecting, on every runtime: tokens from the upgrade request's
//! header, query and subprotocol or from an auth message; 401 and 1008
//! naming the problem; the auth deadline; expiry (4001) and in-band
//! refresh; room authorization by hook and by the `rooms` claim on join,
//! resume, long polling and `/ws/send`; HS256, RS256 and ES256. The peer
//! is tokio-tungstenite; tokens are made with jsonwebtoken, the keys in
//! tests/keys by openssl (test-only).

mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{
    bounded,
    http::{connect, read_answer},
};
use futures_util::{SinkExt, StreamExt};
use hubbub_http::{HttpApp, LongPollConfig};
use hubbub_hub::{
    store::{MemoryStore, StoreWorker, WorkerConfig},
    Auth, JwtAuth, TokenSource,
};
use hubbub_tests::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{
    self, client::IntoClientRequest, http::HeaderValue, Message as TMessage,
};

type Peer =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SECRET: &[u8] = b"test secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token for `user`, valid for `secs` seconds (negative:
/// expired), with `extra` claims.
fn token_with(key: &[u8], algorithm: Algorithm, user: &str, secs: i64, extra: Value) -> String {
    let mut claims = json!({"sub": user, "exp": now().saturating_add_signed(secs)});
    if let Value::Object(extra) = extra {
        claims.as_object_mut().unwrap().extend(extra);
    }
    jsonwebtoken::encode(
        &Header::new(algorithm),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn token(user: &str) -> String {
    token_with(SECRET, Algorithm::HS256, user, 3600, Value::Null)
}

/// A hub answering `hello <user>` on open, `join R` with `joined R` when
/// allowed, and echoing other text as `<user>: text`; every text it
/// receives is logged.
fn hub(auth: Auth, log: &Arc<Mutex<Vec<String>>>) -> HubBuilder {
    let log = log.clone();
    Hub::builder()
        .authenticate(auth)
        .authorize_rooms(|_, room| match room {
            "vault" => Err("the vault is closed".into()),
            _ => Ok(()),
        })
        .on_open(|s| {
            let _ = s.send_text(format!("hello {}", s.user().unwrap_or_default()));
        })
        .on_message(move |s, text| {
            log.lock().unwrap().push(text.to_owned());
            let hub = s.hub().unwrap();
            if let Some(room) = text.strip_prefix("join ") {
                if hub.join(s, room) {
                    let _ = s.send_text(format!("joined {room}"));
                }
            } else if let Some(room) = text.strip_prefix("resume ") {
                let _ = hub.resume(s, room, 0, 10);
            } else {
                let _ = s.send_text(format!("{}: {text}", s.user().unwrap_or_default()));
            }
        })
}

fn jwt() -> Auth {
    Auth::new(JwtAuth::hs256(SECRET))
}

async fn start<R: Rt>(hub: HubBuilder) -> HubHandle {
    HubServer::<R>::bind("127.0.0.1:0", hub.build(), Arc::new(Config::default()))
        .await
        .unwrap()
        .start()
        .unwrap()
}

/// Connect with `header` set on the upgrade request.
async fn connect_ws(
    addr: SocketAddr,
    path: &str,
    header: Option<(&'static str, String)>,
) -> Result<(Peer, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some((name, value)) = header {
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(&value).unwrap());
    }
    bounded("connect", tokio_tungstenite::connect_async(request)).await
}

/// The status and body of a refused upgrade.
async fn refused(addr: SocketAddr, path: &str, header: Option<(&'static str, String)>) -> String {
    match connect_ws(addr, path, header).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            format!(
                "{} {}",
                response.status().as_u16(),
                String::from_utf8_lossy(&body)
            )
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the upgrade succeeded"),
    }
}

/// The next text, or `close CODE REASON`.
async fn next(ws: &mut Peer) -> String {
    loop {
        match bounded("a message", ws.next()).await {
            Some(Ok(TMessage::Text(text))) => return text.to_string(),
            Some(Ok(TMessage::Close(frame))) => {
                return match frame {
                    Some(f) => format!("close {} {}", u16::from(f.code), f.reason),
                    None => "close 1005".into(),
                }
            }
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn send(ws: &mut Peer, text: impl Into<String>) {
    ws.send(TMessage::text(text.into())).await.unwrap();
}

fn auth_message(token: &str) -> String {
    json!({"type": "auth", "payload": {"token": token}}).to_string()
}

async fn handshake_tokens_from_header_query_and_subprotocol<R: Rt>() {
    let log = Arc::default();
    let auth = jwt().sources([
        TokenSource::Header,
        TokenSource::Query,
        TokenSource::Protocol,
    ]);
    let server = start::<R>(hub(auth, &log).on_upgrade(|request| {
        // The application's own protocol, chosen among the offered ones.
        match request.protocols().iter().any(|p| p == "chat") {
            true => Ok(Accept::new().protocol("chat")),
            false => Ok(Accept::new()),
        }
    }))
    .await;
    let addr = server.local_addr();

    let bearer = Some(("authorization", format!("Bearer {}", token("ada"))));
    let (mut ws, _) = connect_ws(addr, "/", bearer).await.unwrap();
    assert_eq!(next(&mut ws).await, "hello ada");

    let (mut ws, _) = connect_ws(addr, &format!("/?x=1&token={}", token("bo")), None)
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, "hello bo");

    // The subprotocol convention: `bearer.<token>` beside the real
    // protocol, which is the one selected: the token is never echoed.
    let offer = Some((
        "sec-websocket-protocol",
        format!("chat, bearer.{}", token("cy")),
    ));
    let (mut ws, response) = connect_ws(addr, "/", offer).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "chat"
    );
    assert_eq!(next(&mut ws).await, "hello cy");

    // Refusals: 401 with a body naming the problem.
    let header = |token: String| Some(("authorization", format!("Bearer {token}")));
    assert_eq!(refused(addr, "/", None).await, "401 missing token");
    let forged = token_with(b"other", Algorithm::HS256, "ada", 60, Value::Null);
    assert_eq!(
        refused(addr, "/", header(forged)).await,
        "401 invalid token: bad signature"
    );
    let expired = token_with(SECRET, Algorithm::HS256, "ada", -10, Value::Null);
    assert_eq!(
        refused(addr, "/", header(expired)).await,
        "401 token expired"
    );
    let hs384 = token_with(SECRET, Algorithm::HS384, "ada", 60, Value::Null);
    assert_eq!(
        refused(addr, "/", header(hs384)).await,
        "401 invalid token: wrong algorithm"
    );
    assert_eq!(
        refused(addr, "/?token=garbage", None).await,
        "401 invalid token: malformed"
    );
    assert!(log.lock().unwrap().is_empty());
    let failures = server.hub().metrics().auth_failures.snapshot();
    let expected = [("expired", 1), ("invalid", 3), ("missing", 1)];
    assert_eq!(failures, expected.into_iter().collect());
}

async fn the_auth_message_comes_first_and_nothing_is_processed_before_it<R: Rt>() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let server = start::<R>(hub(jwt(), &log)).await;
    let addr = server.local_addr();
    let (mut ws, _) = connect_ws(addr, "/", None).await.unwrap();
    send(&mut ws, "before auth").await;
    send(&mut ws, "join general").await;
    send(&mut ws, auth_message(&token("ada"))).await;
    assert_eq!(
        next(&mut ws).await,
        r#"{"type":"auth.ok","payload":{"user":"ada"}}"#
    );
    assert_eq!(next(&mut ws).await, "hello ada", "on_open after auth");
    send(&mut ws, "after").await;
    assert_eq!(next(&mut ws).await, "ada: after");
    assert_eq!(*log.lock().unwrap(), ["after"], "nothing before auth");

    // A bad token, a missing one, and silence: 1008 naming the problem.
    let forged = token_with(b"other", Algorithm::HS256, "ada", 60, Value::Null);
    for (message, expected) in [
        (
            auth_message(&forged),
            "close 1008 invalid token: bad signature",
        ),
        (
            r#"{"type":"auth","payload":{}}"#.to_owned(),
            "close 1008 missing token",
        ),
        (
            auth_message(&token_with(SECRET, Algorithm::HS256, "a", -5, Value::Null)),
            "close 1008 token expired",
        ),
    ] {
        let (mut ws, _) = connect_ws(addr, "/", None).await.unwrap();
        send(&mut ws, message).await;
        assert_eq!(next(&mut ws).await, expected);
    }
    let quick = start::<R>(hub(jwt().timeout(Duration::from_millis(300)), &log)).await;
    let (mut ws, _) = connect_ws(quick.local_addr(), "/", None).await.unwrap();
    send(&mut ws, "not an auth message").await;
    assert_eq!(next(&mut ws).await, "close 1008 authentication timeout");
    assert_eq!(log.lock().unwrap().len(), 1);
    let failures = |handle: &HubHandle| handle.hub().metrics().auth_failures.snapshot();
    let expected = [("expired", 1), ("invalid", 1), ("missing", 1)];
    assert_eq!(failures(&server), expected.into_iter().collect());
    assert_eq!(failures(&quick), [("timeout", 1)].into_iter().collect());
}

async fn expiry_closes_with_4001_and_a_refresh_moves_it<R: Rt>() {
    let log = Arc::default();
    let server = start::<R>(hub(jwt(), &log)).await;
    let addr = server.local_addr();

    // Expires within 1-2 s; idle meanwhile.
    let (mut ws, _) = connect_ws(addr, "/", None).await.unwrap();
    let short = token_with(SECRET, Algorithm::HS256, "ada", 2, Value::Null);
    send(&mut ws, auth_message(&short)).await;
    assert!(next(&mut ws).await.contains("auth.ok"));
    assert_eq!(next(&mut ws).await, "hello ada");
    assert_eq!(next(&mut ws).await, "close 4001 token expired");

    // Refreshed in-band before it expires: still open past the first
    // expiry, closed at the second.
    let (mut ws, _) = connect_ws(addr, "/", None).await.unwrap();
    let first = now() + 2;
    send(
        &mut ws,
        auth_message(&token_with(SECRET, Algorithm::HS256, "bo", 2, Value::Null)),
    )
    .await;
    assert!(next(&mut ws).await.contains("auth.ok"));
    assert_eq!(next(&mut ws).await, "hello bo");
    let fresh = token_with(SECRET, Algorithm::HS256, "bo", 4, Value::Null);
    send(&mut ws, auth_message(&fresh)).await;
    assert_eq!(
        next(&mut ws).await,
        r#"{"type":"auth.ok","payload":{"user":"bo"}}"#
    );
    let closed = next(&mut ws).await;
    assert!(now() > first, "open past the first expiry");
    assert_eq!(closed, "close 4001 token expired");

    // A refresh for another user: 1008.
    let (mut ws, _) = connect_ws(addr, "/", None).await.unwrap();
    send(&mut ws, auth_message(&token("cy"))).await;
    assert!(next(&mut ws).await.contains("auth.ok"));
    assert_eq!(next(&mut ws).await, "hello cy");
    send(&mut ws, auth_message(&token("mallory"))).await;
    assert_eq!(next(&mut ws).await, "close 1008 token is for another user");
}

async fn rooms_are_authorized_by_claim_and_hook_on_join_and_resume<R: Rt>() {
    let log = Arc::default();
    let store = StoreWorker::spawn(MemoryStore::default(), WorkerConfig::default()).unwrap();
    let server = start::<R>(hub(jwt(), &log).store(store)).await;
    let addr = server.local_addr();
    let limited = token_with(
        SECRET,
        Algorithm::HS256,
        "ada",
        60,
        json!({"rooms": ["general", "team-*"]}),
    );
    let (mut ws, _) = connect_ws(addr, "/", None).await.unwrap();
    send(&mut ws, auth_message(&limited)).await;
    assert!(next(&mut ws).await.contains("auth.ok"));
    assert_eq!(next(&mut ws).await, "hello ada");
    for (room, answer) in [
        ("general", "joined general".to_owned()),
        ("team-red", "joined team-red".to_owned()),
        (
            "secret",
            r#"{"type":"error","payload":{"error":"forbidden","message":"room secret is not in the token's rooms","room":"secret"}}"#
                .to_owned(),
        ),
    ] {
        send(&mut ws, format!("join {room}")).await;
        assert_eq!(next(&mut ws).await, answer);
    }
    send(&mut ws, "resume secret").await;
    let denied: Value = serde_json::from_str(&next(&mut ws).await).unwrap();
    assert_eq!(denied["payload"]["error"], "forbidden");
    send(&mut ws, "resume team-blue").await;
    let resumed: Value = serde_json::from_str(&next(&mut ws).await).unwrap();
    assert_eq!(resumed["type"], "room.resumed");

    // The hook, for a token without a rooms claim (every room but the
    // hook's refusal).
    let (mut ws, _) = connect_ws(addr, "/", None).await.unwrap();
    send(&mut ws, auth_message(&token("bo"))).await;
    assert!(next(&mut ws).await.contains("auth.ok"));
    assert_eq!(next(&mut ws).await, "hello bo");
    send(&mut ws, "join anything").await;
    assert_eq!(next(&mut ws).await, "joined anything");
    send(&mut ws, "join vault").await;
    let denied: Value = serde_json::from_str(&next(&mut ws).await).unwrap();
    assert_eq!(denied["payload"]["message"], "the vault is closed");
}

/// One raw HTTP request with an optional bearer token: `status body`.
async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: Option<String>,
    body: &str,
) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut stream = connect(addr);
        stream.write_all(raw.as_bytes()).unwrap();
        let answer = read_answer(&mut stream, false);
        format!("{} {}", answer.status, answer.text())
    })
    .await
    .unwrap()
}

async fn long_polling_and_http_send_need_a_token_and_the_room<R: Rt>() {
    let log = Arc::default();
    let hub = hub(jwt(), &log).build();
    let app = HttpApp::builder(hub.clone())
        .long_polling(LongPollConfig::default())
        .build();
    let server = HubServer::<R>::bind("127.0.0.1:0", hub, Config::default().into())
        .await
        .unwrap();
    let server = app.start_shared(server).unwrap();
    let addr = server.local_addr();
    let limited = token_with(
        SECRET,
        Algorithm::HS256,
        "ada",
        60,
        json!({"rooms": ["general"]}),
    );
    let poll = "/ws/poll?session_id=room:general&timeout=0";
    assert_eq!(
        http(addr, "GET", poll, None, "").await,
        r#"401 {"error":"missing token"}"#
    );
    assert_eq!(
        http(addr, "GET", poll, Some("x.y.z".into()), "").await,
        r#"401 {"error":"invalid token: malformed"}"#
    );
    assert_eq!(
        http(addr, "GET", poll, Some(limited.clone()), "").await,
        "200 []"
    );
    assert_eq!(
        http(
            addr,
            "GET",
            "/ws/poll?session_id=room:secret&timeout=0",
            Some(limited.clone()),
            ""
        )
        .await,
        r#"403 {"error":"room secret is not in the token's rooms"}"#
    );
    assert_eq!(
        http(
            addr,
            "GET",
            "/ws/poll?session_id=room:vault&timeout=0",
            Some(token("bo")),
            ""
        )
        .await,
        r#"403 {"error":"the vault is closed"}"#
    );
    let message = |room: &str| {
        json!({"type": "chat.message", "room": room, "payload": {"text": "hi"}}).to_string()
    };
    assert!(http(addr, "POST", "/ws/send", None, &message("general"))
        .await
        .starts_with("401 "));
    assert_eq!(
        http(
            addr,
            "POST",
            "/ws/send",
            Some(limited.clone()),
            &message("secret")
        )
        .await,
        r#"403 {"error":"room secret is not in the token's rooms"}"#
    );
    assert!(
        http(addr, "POST", "/ws/send", Some(limited), &message("general"))
            .await
            .starts_with("202 ")
    );
}

fn key(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("keys")
        .join(name)
}

async fn rs256_and_es256_with_public_key_files<R: Rt>() {
    let log = Arc::default();
    for (algorithm, verifier, private) in [
        (
            Algorithm::RS256,
            JwtAuth::rs256_pem_file(key("rsa-public.pem")).unwrap(),
            EncodingKey::from_rsa_pem(&std::fs::read(key("rsa-private.pem")).unwrap()).unwrap(),
        ),
        (
            Algorithm::ES256,
            JwtAuth::es256_pem_file(key("ec-public.pem")).unwrap(),
            EncodingKey::from_ec_pem(&std::fs::read(key("ec-private.pem")).unwrap()).unwrap(),
        ),
    ] {
        let server = start::<R>(hub(Auth::new(verifier), &log)).await;
        let addr = server.local_addr();
        let claims = json!({"sub": "ada", "exp": now() + 60});
        let signed = jsonwebtoken::encode(&Header::new(algorithm), &claims, &private).unwrap();
        let (mut ws, _) = connect_ws(addr, &format!("/?token={signed}"), None)
            .await
            .unwrap();
        assert_eq!(next(&mut ws).await, "hello ada");
        // An HS256 token (signed with anything) is the wrong algorithm.
        let hs = token("ada");
        assert_eq!(
            refused(addr, &format!("/?token={hs}"), None).await,
            "401 invalid token: wrong algorithm"
        );
    }
    let missing = JwtAuth::rs256_pem_file(key("none.pem")).unwrap_err();
    assert!(missing.to_string().contains("none.pem"), "{missing}");
}

hubbub_tests::cross_runtime!(
    handshake_tokens_from_header_query_and_subprotocol,
    the_auth_message_comes_first_and_nothing_is_processed_before_it,
    expiry_closes_with_4001_and_a_refresh_moves_it,
    rooms_are_authorized_by_claim_and_hook_on_join_and_resume,
    long_polling_and_http_send_need_a_token_and_the_room,
    rs256_and_es256_with_public_key_files,
);
