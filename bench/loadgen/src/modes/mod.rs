//! The workloads. Each one opens its connections through
//! [`crate::pool::establish`], runs its loop under a deadline, and returns a
//! [`Report`](crate::report::Report).

pub mod broadcast;
pub mod echo;
pub mod handshakes;
pub mod idle;
pub mod nodes;

use std::time::{Duration, Instant};

use crate::report::Report;

/// What a workload hands back to `main`.
pub struct Outcome {
    pub report: Report,
    /// Process exit status (0 ok, 1 failure, 3 feature not supported).
    pub status: i32,
}

impl Outcome {
    pub fn ok(report: Report) -> Outcome {
        Outcome { report, status: 0 }
    }
}

/// Nanoseconds since a fixed start, for timestamps carried in payloads.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// How long to block in `poll`: until `deadline`, but at most `cap`.
pub fn poll_timeout(deadline: Instant, cap: Duration) -> Duration {
    deadline.saturating_duration_since(Instant::now()).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Options;
    use crate::report::Value;
    use crate::testserver;

    /// Runs `args` against a test server and returns the outcome.
    fn run(broadcast: bool, args: &str) -> Outcome {
        let port = testserver::start(broadcast).port();
        let args = format!("{args} --port {port}");
        let opts = Options::parse(args.split_whitespace().map(String::from)).unwrap();
        match opts.mode {
            crate::cli::Mode::Echo => echo::run(&opts),
            crate::cli::Mode::Idle => idle::run(&opts),
            crate::cli::Mode::Handshakes => handshakes::run(&opts),
            crate::cli::Mode::Broadcast => broadcast::run(&opts),
            crate::cli::Mode::Nodes => nodes::run(&opts),
        }
        .unwrap()
    }

    fn int(o: &Outcome, key: &str) -> u64 {
        match o.report.get(key) {
            Some(Value::Int(n)) => *n,
            other => panic!("{key}: {other:?} in {}", o.report.json()),
        }
    }

    #[test]
    fn echo_counts_echoes() {
        for args in ["--conns 4 --inflight 8 --size 20", "--conns 1 --size 70000"] {
            let o = run(false, &format!("echo {args} --duration 0.3"));
            assert_eq!(o.status, 0);
            assert!(int(&o, "msgs") > 0, "{}", o.report.json());
            assert_eq!(int(&o, "conn_errors"), 0, "{}", o.report.json());
            assert_eq!(int(&o, "mismatched"), 0, "{}", o.report.json());
        }
    }

    #[test]
    fn idle_and_handshakes() {
        let o = run(false, "idle --conns 50 --hold 0.2");
        assert_eq!(
            (int(&o, "established"), int(&o, "failed")),
            (50, 0),
            "{}",
            o.report.json()
        );
        let o = run(false, "handshakes --conns 4 --duration 0.3");
        assert!(int(&o, "handshakes") > 0, "{}", o.report.json());
        assert_eq!(int(&o, "failed"), 0, "{}", o.report.json());
        assert_eq!(int(&o, "close_timeouts"), 0, "{}", o.report.json());
    }

    #[test]
    fn broadcast_counts_every_delivery() {
        let o = run(
            true,
            "broadcast --subscribers 20 --messages 50 --duration 5",
        );
        assert_eq!(o.status, 0, "{}", o.report.json());
        assert_eq!(
            (int(&o, "delivered"), int(&o, "lost")),
            (1000, 0),
            "{}",
            o.report.json()
        );
        assert_eq!(int(&o, "out_of_order"), 0);
        let o = run(
            true,
            "broadcast --subscribers 20 --messages 50 --duration 5 --window 4",
        );
        assert_eq!(
            (int(&o, "delivered"), int(&o, "lost")),
            (1000, 0),
            "{}",
            o.report.json()
        );
    }

    #[test]
    fn broadcast_detects_an_echo_server() {
        let o = run(false, "broadcast --subscribers 3 --messages 5 --duration 2");
        assert_eq!(o.status, 3, "{}", o.report.json());
        let o = run(
            false,
            "broadcast --subscribers 3 --messages 5 --rooms 2 --duration 2",
        );
        assert_eq!(o.status, 3, "{}", o.report.json());
    }
}
