//! `echo`: every connection keeps `inflight` messages in flight; each echo
//! received is counted, timed, and replaced by a new message until the
//! deadline.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{poll_timeout, Clock, Outcome};
use crate::cli::Options;
use crate::conn::ConnEvent;
use crate::frame::{opcode, Event, Templates};
use crate::hist::Histogram;
use crate::pool::{establish, Pool};
use crate::report::{CpuMeter, Report};

/// Runs the echo workload.
pub fn run(opts: &Options) -> Result<Outcome, String> {
    let mut pool = Pool::new(opts.target, &opts.path).map_err(|e| e.to_string())?;
    pool.tls = opts.tls.clone();
    pool.deflate = opts.deflate;
    let est = establish(
        &mut pool,
        opts.conns,
        opts.concurrency,
        Instant::now() + opts.connect_timeout,
    );
    if est.ids.is_empty() {
        return Err(format!(
            "no connection upgraded: {}",
            est.first_error.unwrap_or_default()
        ));
    }
    // With --deflate: JSON-like text, compressed; echoes are inflated.
    let (mut templates, sent_opcode) = if opts.deflate {
        let message = crate::frame::json_like(opts.size);
        let t = Templates::deflated(opcode::TEXT, &message, 16, &mut pool.rng);
        (t, opcode::TEXT)
    } else {
        let t = Templates::new(opcode::BINARY, opts.size, 16, &mut pool.rng);
        (t, opcode::BINARY)
    };
    let slots = est.ids.iter().max().map_or(0, |m| m + 1);
    // Send times of the messages in flight, per connection slot (echoes
    // come back in order).
    let mut sent: Vec<VecDeque<u64>> = vec![VecDeque::new(); slots];

    let clock = Clock::start();
    let cpu = CpuMeter::start();
    let start = Instant::now();
    let deadline = start + opts.duration;
    for &id in &est.ids {
        let conn = pool.get(id).expect("established connection");
        for _ in 0..opts.inflight {
            templates.push(conn.out());
            sent[id].push_back(clock.now_ns());
        }
        conn.flush().map_err(|e| e.to_string())?;
    }

    let mut hist = Histogram::default();
    let mut received: u64 = 0;
    let mut errors = 0usize;
    // Echoes whose opcode or length differ from what was sent.
    let mut mismatched = 0u64;
    let size = opts.size as u64;
    let mut first_error: Option<String> = None;
    let mut ready = Vec::new();
    while Instant::now() < deadline {
        pool.wait(
            poll_timeout(deadline, Duration::from_millis(50)),
            &mut ready,
        )
        .map_err(|e| e.to_string())?;
        for &id in &ready {
            let Some(fifo) = sent.get_mut(id) else {
                continue;
            };
            let now = clock.now_ns();
            let mut got = 0;
            let mut closed = false;
            let result = pool.service(id, &mut |e| match e {
                ConnEvent::Frame(Event::Message { opcode, len, .. }) => {
                    got += 1;
                    if opcode != sent_opcode || len != size {
                        mismatched += 1;
                    }
                    if let Some(t) = fifo.pop_front() {
                        hist.record(now.saturating_sub(t));
                    }
                }
                ConnEvent::Frame(Event::Close) | ConnEvent::Eof => closed = true,
                _ => {}
            });
            received += got;
            let result = result.and_then(|()| {
                let Some(conn) = pool.get(id) else {
                    return Ok(());
                };
                if got > 0 && Instant::now() < deadline {
                    for _ in 0..got {
                        templates.push(conn.out());
                        fifo.push_back(now);
                    }
                }
                conn.flush()
            });
            let failed = match result {
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                    true
                }
                Ok(()) => closed,
            };
            if failed {
                errors += 1;
                pool.close(id);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();

    let mut r = Report::new("echo");
    r.int("conns", opts.conns)
        .int("established", est.ids.len())
        .int("inflight", opts.inflight)
        .int("deflate", opts.deflate as usize)
        .int("size", opts.size)
        .float("duration_s", elapsed)
        .int("msgs", received)
        .float("msgs_per_sec", received as f64 / elapsed)
        .float(
            "mbytes_per_sec",
            received as f64 * opts.size as f64 / elapsed / 1e6,
        )
        .latency(&hist)
        .int("conn_errors", errors + est.failed)
        .int("mismatched", mismatched)
        .float("client_cpu_pct", cpu.percent());
    if let Some(e) = first_error.or(est.first_error) {
        r.text("first_error", &e);
    }
    Ok(Outcome::ok(r))
}
