//! `POST /ws/send` answers 202 only for what was taken: a full session, a
//! full session table, full queues or a refusing hook (a busy store) get
//! 503 with `Retry-After` and a JSON error naming the reason, counted in
//! `/metrics`.

use std::task::Waker;

use hubbub_http::{HttpApp, HttpAppBuilder, LongPollConfig, Reply, Request, Response, Taken};
use hubbub_hub::{Hub, StoreError};
use serde_json::Value;

fn request(method: &str, path: &str, body: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        query: None,
        version: 1,
        headers: Vec::new(),
        body: body.as_bytes().to_vec().into(),
        peer: None,
    }
}

fn answer(app: &HttpApp, request: &Request) -> Response {
    match app.handle(request) {
        Reply::Now(response) => response,
        Reply::Poll(_) => panic!("answered at once"),
    }
}

fn send(app: &HttpApp, body: &str) -> (u16, Value, Option<String>) {
    let response = answer(app, &request("POST", "/ws/send", body));
    let json = serde_json::from_slice(&response.body).unwrap();
    let retry = response.header("retry-after").map(str::to_owned);
    (response.status, json, retry)
}

fn app(config: LongPollConfig, f: impl FnOnce(HttpAppBuilder) -> HttpAppBuilder) -> HttpApp {
    f(HttpApp::builder(Hub::builder().build()).long_polling(config)).build()
}

fn metrics(app: &HttpApp) -> String {
    let response = answer(app, &request("GET", "/metrics", ""));
    String::from_utf8(response.body.to_vec()).unwrap()
}

#[test]
fn a_full_session_is_refused_not_acknowledged() {
    let app = app(
        LongPollConfig {
            capacity: 2,
            ..LongPollConfig::default()
        },
        |b| b,
    );
    let body = r#"{"type":"t","session_id":"s","payload":1}"#;
    for _ in 0..2 {
        let (status, json, _) = send(&app, body);
        assert_eq!((status, json["status"].as_str()), (202, Some("queued")));
    }
    let (status, json, retry) = send(&app, body);
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["reason"], "session_full");
    assert!(json["error"].as_str().unwrap().contains("full"), "{json}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(
        app.long_poll().unwrap().buffered(),
        2 + 2,
        "s and broadcast"
    );
    let text = metrics(&app);
    assert!(
        text.contains("hubbub_http_send_refused_total{reason=\"session_full\"} 1"),
        "{text}"
    );
}

#[test]
fn a_full_session_table_and_full_queues_are_refused() {
    let app = app(
        LongPollConfig {
            max_sessions: 2,
            max_total_bytes: 4096,
            ..LongPollConfig::default()
        },
        |b| b,
    );
    // Both places hold a poll: no idle session to evict for `b`.
    let long_poll = app.long_poll().unwrap();
    for session in ["a", "broadcast"] {
        let taken = long_poll.take(session, 10, Waker::noop(), None);
        assert!(matches!(taken, Taken::Waiting(_)), "{taken:?}");
    }
    let (status, json, _) = send(&app, r#"{"type":"t","session_id":"b"}"#);
    assert_eq!((status, json["reason"].as_str()), (503, Some("sessions")));
    // 4 KiB over all sessions: a 1.5 KB message (queued in `a` and in
    // `broadcast`, mirrored) fits once.
    let big = format!(
        r#"{{"type":"t","session_id":"a","payload":"{}"}}"#,
        "x".repeat(1500)
    );
    assert_eq!(send(&app, &big).0, 202);
    let (status, json, retry) = send(&app, &big);
    assert_eq!((status, json["reason"].as_str()), (503, Some("memory")));
    assert_eq!(retry.as_deref(), Some("1"));
    let text = metrics(&app);
    for reason in ["sessions", "memory"] {
        let line = format!("hubbub_http_send_refused_total{{reason=\"{reason}\"}} 1");
        assert!(text.contains(&line), "{text}");
    }
}

#[test]
fn a_busy_store_reaches_the_answer() {
    let app = app(LongPollConfig::default(), |b| {
        b.try_on_http_send_as(|_, _, envelope| {
            if envelope.event_type == "busy" {
                Err(StoreError::Busy.into())
            } else {
                Ok(())
            }
        })
    });
    assert_eq!(send(&app, r#"{"type":"ok","room":"r"}"#).0, 202);
    let (status, json, retry) = send(&app, r#"{"type":"busy","room":"r","session_id":"s"}"#);
    assert_eq!((status, json["reason"].as_str()), (503, Some("store_busy")));
    assert!(
        json["error"].as_str().unwrap().starts_with("not stored: "),
        "{json}"
    );
    assert_eq!(retry.as_deref(), Some("1"));
    // Nothing was queued for the refused send.
    assert_eq!(app.long_poll().unwrap().buffered(), 0);
    assert!(metrics(&app).contains("hubbub_http_send_refused_total{reason=\"store_busy\"} 1"));
}
