//! Tasks spawned by a task on a default loop (a server's accept task, say)
//! are spread over all the default loops. Alone in its test binary: it
//! sets the number of loops before they start.

use std::{collections::BTreeSet, sync::mpsc, time::Duration};

use hubbub_mio::Mio;
use hubbub_ws::Runtime;

#[test]
fn a_loop_task_spreads_what_it_spawns_over_the_default_loops() {
    std::env::set_var("HUBBUB_MIO_THREADS", "3");
    let (tx, rx) = mpsc::channel();
    Mio::spawn(async move {
        let parent = std::thread::current().name().unwrap_or("").to_owned();
        for _ in 0..6 {
            let tx = tx.clone();
            let parent = parent.clone();
            Mio::spawn(async move {
                let child = std::thread::current().name().unwrap_or("").to_owned();
                // Ignored: the receiver is gone only once the test gave up
                // waiting (and failed).
                let _ = tx.send((parent, child));
            });
        }
    });
    let mut threads = BTreeSet::new();
    for _ in 0..6 {
        let (parent, child) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a task ran");
        assert!(parent.starts_with("hubbub-mio-rt-"), "{parent}");
        threads.insert(child);
    }
    let expected: BTreeSet<String> = (0..3).map(|n| format!("hubbub-mio-rt-{n}")).collect();
    assert_eq!(threads, expected, "round-robin over the three loops");
}
