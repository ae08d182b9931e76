//! `block_on_local`: a whole program on the calling thread's own loop.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        mpsc, Arc,
    },
    thread::ThreadId,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use hubbub_mio::{block_on_local, Hub, HubServer, Message, Mio};
use hubbub_ws::Runtime;

const BOUND: Duration = Duration::from_secs(10);

fn here() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn spawned_tasks_and_their_tasks_run_on_the_calling_thread() {
    let caller = here();
    let (tx, rx) = mpsc::channel();
    let ran = block_on_local(async move {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        Mio::spawn(async move {
            let parent = here();
            Mio::spawn(async move {
                Mio::sleep(Duration::from_millis(5)).await;
                // Ignored: `done_rx` is awaited below, where its arrival is
                // asserted; it is gone only if that assertion already failed.
                let _ = done_tx.send((parent, here()));
            });
        });
        tx.send(here()).unwrap();
        done_rx.await.expect("the grandchild task ran")
    })
    .unwrap();
    assert_eq!(rx.recv().unwrap(), caller);
    assert_eq!(ran, (caller, caller));
}

#[test]
fn a_wake_from_another_thread_reaches_the_loop() {
    let value = block_on_local(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(42).unwrap();
        });
        rx.await
    })
    .unwrap();
    assert_eq!(value, Ok(42));
}

#[test]
fn tasks_still_running_are_dropped_on_return() {
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = Flag(dropped.clone());
    block_on_local(async move {
        Mio::spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        Mio::sleep(Duration::from_millis(1)).await;
    })
    .unwrap();
    assert!(dropped.load(SeqCst));
}

#[test]
fn a_hub_server_and_its_clients_share_one_thread() {
    let start = Instant::now();
    let caller = here();
    let callbacks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = callbacks.clone();
    let echoed = block_on_local(async move {
        let hub = Hub::builder()
            .on_message(move |session, text| {
                seen.lock().unwrap().push(here());
                session.send_text(text).expect("echo to an open session");
            })
            .build();
        let server = HubServer::bind("127.0.0.1:0", hub, Default::default())
            .await
            .unwrap();
        let url = format!("ws://{}/", server.local_addr().unwrap());
        let handle = server.start().unwrap();
        let mut echoed = Vec::new();
        for n in 0..3 {
            let (mut ws, _) = hubbub_mio::connect(&url).await.unwrap();
            ws.send(Message::Text(format!("hello {n}"))).await.unwrap();
            match ws.next().await {
                Some(Ok(Message::Text(text))) => echoed.push(text),
                other => panic!("{other:?}"),
            }
        }
        handle.shutdown(Duration::from_secs(1)).await;
        echoed
    })
    .unwrap();
    assert_eq!(echoed, ["hello 0", "hello 1", "hello 2"]);
    assert_eq!(*callbacks.lock().unwrap(), [caller; 3]);
    assert!(start.elapsed() < BOUND);
}
