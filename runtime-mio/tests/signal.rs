//! `shutdown_signal` waits on a loop (signal-hook's pipe as a mio source):
//! no thread is started for it, on `block_on_local`'s loop or off a loop.

use std::time::Duration;

use futures_util::future::{select, Either};
use hubbub_mio::Mio;
use hubbub_ws::Runtime;
use signal_hook::{consts::SIGTERM, low_level::raise};

const BOUND: Duration = Duration::from_secs(10);

/// Raise SIGTERM after the handlers are installed (at once, or from
/// another thread while the future waits): `shutdown` resolves (within the
/// bound).
async fn resolves_on_sigterm(after: Option<Duration>) -> bool {
    let shutdown = hubbub_mio::shutdown_signal();
    match after {
        None => raise(SIGTERM).unwrap(),
        Some(delay) => {
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                raise(SIGTERM).unwrap();
            });
        }
    }
    let bound = Mio::sleep(BOUND);
    matches!(
        select(Box::pin(shutdown), Box::pin(bound)).await,
        Either::Left(_)
    )
}

/// One test (the handlers are process-wide: a raise reaches every
/// installed wait).
#[test]
fn sigterm_resolves_the_shutdown_future_on_a_local_loop_and_off_a_loop() {
    // Never signalled: pending.
    let shutdown = hubbub_mio::shutdown_signal();
    let pending = hubbub_mio::block_on_local(async {
        let short = Mio::sleep(Duration::from_millis(50));
        matches!(
            select(Box::pin(shutdown), Box::pin(short)).await,
            Either::Right(_)
        )
    });
    assert!(pending.unwrap());

    let before = threads();
    let later = Some(Duration::from_millis(30));
    assert!(hubbub_mio::block_on_local(resolves_on_sigterm(None)).unwrap());
    assert_eq!(threads(), before, "the local loop started no thread");
    assert!(hubbub_mio::block_on_local(resolves_on_sigterm(later)).unwrap());
    // `block_on` parks this thread: the pipe joins a default loop.
    assert!(hubbub_mio::block_on(resolves_on_sigterm(None)));
    assert!(hubbub_mio::block_on(resolves_on_sigterm(later)));
    // Fresh handlers see only the new signal.
    assert!(hubbub_mio::block_on_local(resolves_on_sigterm(None)).unwrap());
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}
