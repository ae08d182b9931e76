//! The `events` demo, the typed event protocol of `examples/README.md`,
//! driven by tokio-tungstenite against the real binary on a free port.

mod common;

use common::{
    close, connect, each_runtime, next, next_json, run_to_end, runtime, send, start, temp_dir, Peer,
};
use serde_json::json;

const EVENTS: &str = env!("CARGO_BIN_EXE_events");

const CONNECTED: &str = r#"{"type":"system.connected","payload":{"message":"A client connected"}}"#;
const PONG: &str = r#"{"type":"app.pong","payload":{"status":"ok","transport":"websocket"}}"#;
const REQUIRED: &str = r#"{"type":"chat.error","payload":{"error":"message_required","message":"Message text is required"}}"#;

/// An unknown type: answered to the sender only, so it shows that nothing
/// else was on its way to `peer` before.
async fn fence(peer: &mut Peer) {
    send(peer, r#"{"type":"fence"}"#).await;
    assert_eq!(
        next(peer).await,
        r#"{"type":"app.unknown","payload":{"type":"fence","message":"Unknown event type"}}"#
    );
}

#[test]
fn typed_event_protocol() {
    each_runtime(typed_event_protocol_once);
}

fn typed_event_protocol_once() {
    let dir = temp_dir("events"); // no .env there: the environment alone
    let server = start(EVENTS, &[], Some(&dir), &[("WEBSOCKET_PORT", "0")]);
    let port = server.ports()[0];
    runtime().block_on(async {
        let url = format!("ws://127.0.0.1:{port}/");
        // On connect: system.connected to everyone, the newcomer included.
        let mut a = connect(&url).await;
        assert_eq!(next(&mut a).await, CONNECTED);
        let mut b = connect(&url).await;
        assert_eq!(next(&mut a).await, CONNECTED);
        assert_eq!(next(&mut b).await, CONNECTED);

        // app.ping: app.pong to everyone.
        send(&mut a, r#"{"type":"app.ping","payload":{}}"#).await;
        assert_eq!(next(&mut a).await, PONG);
        assert_eq!(next(&mut b).await, PONG);
        send(&mut b, r#"{"type":"app.ping"}"#).await;
        assert_eq!(next(&mut a).await, PONG);
        assert_eq!(next(&mut b).await, PONG);

        // chat.message with text: to everyone, unchanged.
        let message = r#"{"type":"chat.message","payload":{"user":"Ada","text":"Hello","meta":{"tags":[1,2]}}}"#;
        send(&mut b, message).await;
        assert_eq!(next(&mut a).await, message);
        assert_eq!(next(&mut b).await, message);

        // Empty or missing text: chat.error to the sender only.
        for bad in [
            r#"{"type":"chat.message","payload":{"text":""}}"#,
            r#"{"type":"chat.message","payload":{"user":"Ada"}}"#,
            r#"{"type":"chat.message"}"#,
        ] {
            send(&mut a, bad).await;
            assert_eq!(next(&mut a).await, REQUIRED, "{bad}");
        }
        fence(&mut b).await;

        // Any other type: app.unknown to the sender only.
        send(&mut b, r#"{"type":"room.join","payload":{"room":"x"}}"#).await;
        assert_eq!(
            next_json(&mut b).await,
            json!({"type":"app.unknown","payload":{"type":"room.join","message":"Unknown event type"}})
        );
        send(&mut b, r#"{"type":"we\"ird"}"#).await;
        assert_eq!(
            next(&mut b).await,
            r#"{"type":"app.unknown","payload":{"type":"we\"ird","message":"Unknown event type"}}"#
        );
        fence(&mut a).await;

        // Text that is not an envelope: echo.raw to everyone.
        for raw in ["hello", r#"{"type":""}"#, "[1,2]", "{broken"] {
            send(&mut a, raw).await;
            for peer in [&mut a, &mut b] {
                assert_eq!(
                    next_json(peer).await,
                    json!({"type":"echo.raw","payload":{"text": raw}}),
                    "{raw}"
                );
            }
        }
        send(&mut b, "plain").await;
        assert_eq!(next(&mut a).await, r#"{"type":"echo.raw","payload":{"text":"plain"}}"#);
        assert_eq!(next(&mut b).await, r#"{"type":"echo.raw","payload":{"text":"plain"}}"#);

        // One that leaves does not stop the others.
        close(a).await;
        let mut c = connect(&url).await;
        assert_eq!(next(&mut b).await, CONNECTED);
        assert_eq!(next(&mut c).await, CONNECTED);
        close(b).await;
        close(c).await;
    });
    assert!(server.terminate().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn settings_and_runtime_errors() {
    let dir = temp_dir("events-errors");
    let (code, _, stderr) = run_to_end(EVENTS, &[], Some(&dir), &[("WEBSOCKET_PORT", "99999")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("WEBSOCKET_PORT") && stderr.contains("99999"),
        "{stderr}"
    );
    let (code, _, stderr) = run_to_end(EVENTS, &["extra"], Some(&dir), &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unexpected argument \"extra\""), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
