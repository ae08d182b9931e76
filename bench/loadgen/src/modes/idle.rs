//! `idle`: opens `conns` connections, announces `# holding N connections`
//! on stdout (the benchmark script then reads the server's RSS), holds them
//! for `hold`, and closes them.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{poll_timeout, Outcome};
use crate::cli::Options;
use crate::conn::ConnEvent;
use crate::frame::Event;
use crate::pool::{establish, Pool};
use crate::report::{CpuMeter, Report};

/// Runs the idle-connections workload.
pub fn run(opts: &Options) -> Result<Outcome, String> {
    let mut pool = Pool::new(opts.target, &opts.path).map_err(|e| e.to_string())?;
    pool.tls = opts.tls.clone();
    let cpu = CpuMeter::start();
    let est = establish(
        &mut pool,
        opts.conns,
        opts.concurrency,
        Instant::now() + opts.connect_timeout,
    );
    let connect_cpu = cpu.percent();
    if est.ids.is_empty() {
        return Err(format!(
            "no connection upgraded: {}",
            est.first_error.unwrap_or_default()
        ));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "# holding {} connections", est.ids.len());
    let _ = out.flush();
    drop(out);

    // Hold: answer nothing, but notice connections the server drops.
    let deadline = Instant::now() + opts.hold;
    let mut dropped = 0usize;
    let mut ready = Vec::new();
    while Instant::now() < deadline {
        pool.wait(
            poll_timeout(deadline, Duration::from_millis(100)),
            &mut ready,
        )
        .map_err(|e| e.to_string())?;
        for &id in &ready {
            let mut closed = false;
            let result = pool.service(id, &mut |e| {
                if matches!(e, ConnEvent::Eof | ConnEvent::Frame(Event::Close)) {
                    closed = true;
                }
            });
            if closed || result.is_err() {
                dropped += 1;
                pool.close(id);
            }
        }
    }

    let secs = est.elapsed.as_secs_f64();
    let mut r = Report::new("idle");
    r.int("conns", opts.conns)
        .int("established", est.ids.len())
        .int("failed", est.failed)
        .float("connect_s", secs)
        .float("conns_per_sec", est.ids.len() as f64 / secs)
        .float("hold_s", opts.hold.as_secs_f64())
        .int("dropped_by_server", dropped)
        .float("client_cpu_pct", connect_cpu);
    if let Some(e) = est.first_error {
        r.text("first_error", &e);
    }
    Ok(Outcome::ok(r))
}
