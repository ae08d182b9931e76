//! `handshakes`: `conns` parallel loops of connect, upgrade, close, until the
//! deadline.
//!
//! With `--close frame` (default) the loop sends a close frame and, once the
//! server's close frame (or its FIN) arrives, closes the socket with a reset
//! (`SO_LINGER` 0) rather than a FIN: the WebSocket close is complete by
//! then, and on loopback the sender pays for the receiver's TCP processing,
//! so a FIN would charge the server's TIME_WAIT bookkeeping to the load
//! generator, which must stay cheaper than the server it measures. With
//! `--close reset` the socket is reset right after the `101`.

use std::time::{Duration, Instant};

use super::{poll_timeout, Clock, Outcome};
use crate::cli::{CloseStyle, Options};
use crate::conn::ConnEvent;
use crate::frame::{self, Event};
use crate::hist::Histogram;
use crate::pool::Pool;
use crate::report::{CpuMeter, Report};

/// Longest wait for the server's `101`.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the server to close after our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where one loop is.
#[derive(Clone, Copy)]
enum Phase {
    /// Connect + upgrade started at this time (ns).
    Upgrading(u64),
    /// Close frame sent at this time (ns); waiting for the server's close.
    Closing(u64),
}

/// Counters of the run.
#[derive(Default)]
struct Tally {
    handshakes: u64,
    cycles: u64,
    failed: u64,
    close_timeouts: u64,
    first_error: Option<String>,
}

/// Runs the handshake-rate workload.
pub fn run(opts: &Options) -> Result<Outcome, String> {
    let mut pool = Pool::new(opts.target, &opts.path).map_err(|e| e.to_string())?;
    pool.tls = opts.tls.clone();
    let clock = Clock::start();
    let cpu = CpuMeter::start();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut phases: Vec<Option<Phase>> = Vec::new();
    let mut active = 0usize;
    let mut hist = Histogram::default();
    let mut tally = Tally::default();
    let mut ready = Vec::new();
    let mut last_sweep = Instant::now();
    while Instant::now() < deadline {
        // Keep `conns` loops going.
        while active < opts.conns {
            match pool.open() {
                Ok(id) => {
                    if id >= phases.len() {
                        phases.resize(id + 1, None);
                    }
                    phases[id] = Some(Phase::Upgrading(clock.now_ns()));
                    active += 1;
                }
                Err(e) => {
                    tally.failed += 1;
                    tally.first_error.get_or_insert_with(|| e.to_string());
                    break;
                }
            }
        }
        pool.wait(
            poll_timeout(deadline, Duration::from_millis(10)),
            &mut ready,
        )
        .map_err(|e| e.to_string())?;
        for &id in &ready {
            let Some(phase) = phases.get(id).copied().flatten() else {
                continue;
            };
            let (mut upgraded, mut ended) = (false, false);
            let result = pool.service(id, &mut |e| match e {
                ConnEvent::Upgraded => upgraded = true,
                ConnEvent::Eof | ConnEvent::Frame(Event::Close) => ended = true,
                ConnEvent::Frame(_) => {}
            });
            let now = clock.now_ns();
            let result = result.and_then(|()| {
                let key = pool.rng.mask_key();
                if let (true, Phase::Upgrading(t0), Some(conn)) = (upgraded, phase, pool.get(id)) {
                    tally.handshakes += 1;
                    hist.record(now.saturating_sub(t0));
                    phases[id] = Some(Phase::Closing(now));
                    match opts.close {
                        CloseStyle::Frame => {
                            frame::push_close(conn.out(), key);
                            conn.flush()?;
                        }
                        CloseStyle::Reset => {
                            conn.reset_on_close()?;
                            ended = true;
                        }
                    }
                }
                Ok(())
            });
            let done = match result {
                Err(e) => {
                    tally.failed += 1;
                    tally.first_error.get_or_insert_with(|| e.to_string());
                    true
                }
                Ok(()) if ended => {
                    if matches!(phases[id], Some(Phase::Closing(_))) {
                        tally.cycles += 1;
                        if let Some(conn) = pool.get(id) {
                            let _ = conn.reset_on_close();
                        }
                    } else {
                        tally.failed += 1;
                        let why = "closed before the upgrade";
                        tally.first_error.get_or_insert_with(|| why.into());
                    }
                    true
                }
                Ok(()) => false,
            };
            if done {
                phases[id] = None;
                pool.close(id);
                active -= 1;
            }
        }
        if last_sweep.elapsed() >= Duration::from_millis(100) {
            last_sweep = Instant::now();
            active -= sweep_stuck(&mut pool, &mut phases, clock.now_ns(), &mut tally);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();

    let mut r = Report::new("handshakes");
    r.int("conns", opts.conns)
        .text(
            "close",
            if opts.close == CloseStyle::Frame {
                "frame"
            } else {
                "reset"
            },
        )
        .float("duration_s", elapsed)
        .int("handshakes", tally.handshakes)
        .float("handshakes_per_sec", tally.handshakes as f64 / elapsed)
        .int("closed_cycles", tally.cycles)
        .latency(&hist)
        .int("failed", tally.failed)
        .int("close_timeouts", tally.close_timeouts)
        .float("client_cpu_pct", cpu.percent());
    if let Some(e) = tally.first_error {
        r.text("first_error", &e);
    }
    Ok(Outcome::ok(r))
}

/// Closes loops stuck past their timeouts; returns how many were closed.
fn sweep_stuck(
    pool: &mut Pool,
    phases: &mut [Option<Phase>],
    now: u64,
    tally: &mut Tally,
) -> usize {
    let mut closed = 0;
    for (id, slot) in phases.iter_mut().enumerate() {
        let stuck = match *slot {
            Some(Phase::Upgrading(t)) => now.saturating_sub(t) > UPGRADE_TIMEOUT.as_nanos() as u64,
            Some(Phase::Closing(t)) => now.saturating_sub(t) > CLOSE_TIMEOUT.as_nanos() as u64,
            None => false,
        };
        if stuck {
            match slot {
                Some(Phase::Upgrading(_)) => {
                    tally.failed += 1;
                    tally
                        .first_error
                        .get_or_insert_with(|| "upgrade timed out".into());
                }
                _ => tally.close_timeouts += 1,
            }
            *slot = None;
            pool.close(id);
            closed += 1;
        }
    }
    closed
}
