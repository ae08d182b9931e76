//! Memory held by what `POST /ws/send` queues for long polls, measured
//! with a counting allocator (this test binary's own): a queued message
//! costs about its JSON, and held polls share one copy.

use std::{alloc::System, task::Waker};

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

use hubbub_http::{HttpApp, LongPollConfig, Reply, Request, Taken};
use hubbub_hub::Hub;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not freed since the start.
fn live() -> isize {
    let stats = GLOBAL.stats();
    // (A realloc counts its growth as allocated, its shrinking as freed.)
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

fn post(body: &str) -> Request {
    Request {
        method: "POST".into(),
        path: "/ws/send".into(),
        query: None,
        version: 1,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec().into(),
        peer: None,
    }
}

fn status(app: &HttpApp, request: &Request) -> u16 {
    match app.handle(request) {
        Reply::Now(response) => response.status,
        Reply::Poll(_) => panic!("a send is answered at once"),
    }
}

/// One test: the allocator counts the whole process.
#[test]
fn queued_sends_cost_their_json_and_held_polls_share_one_copy() {
    let config = LongPollConfig {
        capacity: 1000,
        max_session_bytes: 64 << 20,
        max_total_bytes: 256 << 20,
        ..LongPollConfig::default()
    };
    let app = HttpApp::builder(Hub::builder().build())
        .long_polling(config)
        .build();
    // A 60 KB payload of `0,` pairs: a JSON tree of it is ~16× its text.
    let zeros = vec!["0"; 30_000].join(",");
    let body = format!(r#"{{"type":"t","session_id":"s","payload":[{zeros}]}}"#);
    let request = post(&body);
    assert_eq!(status(&app, &request), 202);
    const SENDS: isize = 20;
    let before = live();
    for _ in 0..SENDS {
        assert_eq!(status(&app, &request), 202);
    }
    let per_send = (live() - before) / SENDS;
    println!("queued per 60 KB send: {per_send} bytes");
    // Queued twice: in session `s` and, mirrored from the hub's
    // broadcast, in session `broadcast`.
    assert!(
        per_send < 3 * body.len() as isize,
        "{per_send} bytes held per queued {} byte send",
        body.len()
    );
    let long_poll = app.long_poll().unwrap();
    // Drain the session, then hold 500 polls on it.
    while let Taken::Messages(m) = long_poll.take("s", 1000, Waker::noop(), None) {
        if m.is_empty() {
            break;
        }
    }
    for _ in 0..500 {
        assert!(matches!(
            long_poll.take("s", 10, Waker::noop(), None),
            Taken::Waiting(_)
        ));
    }
    let before = live();
    assert_eq!(status(&app, &request), 202);
    let grown = live() - before;
    println!("one 60 KB send with 500 polls held: {grown} bytes");
    assert!(
        grown < 4 * body.len() as isize,
        "{grown} bytes held for one send delivered to 500 held polls"
    );
}
