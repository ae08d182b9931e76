//! `loadgen`: a single-threaded WebSocket load generator for loopback
//! benchmarks of hubbub and its peers (see `bench/run.sh`).
//!
//! Hand-rolled client framing over non-blocking `mio` sockets: masked frames
//! are copied from templates, server frames are parsed without buffering
//! their payloads, so the generator stays cheap next to the server it
//! measures (its own CPU use is reported as `client_cpu_pct`). It only ever
//! connects to 127.0.0.0/8 or ::1, every loop runs under a deadline, and a
//! watchdog ends the process past the sum of all deadlines.

mod cli;
mod conn;
mod frame;
mod handshake;
mod hist;
mod modes;
mod pool;
mod report;
mod rng;
mod sys;
#[cfg(test)]
mod testserver;
mod tls;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use cli::{Mode, Options, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match Options::parse(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = sys::raise_nofile(opts.max_sockets()) {
        eprintln!("loadgen: warning: cannot raise the open-file limit: {e}");
    }
    start_watchdog(opts.hard_cap());
    let outcome = match opts.mode {
        Mode::Echo => modes::echo::run(&opts),
        Mode::Idle => modes::idle::run(&opts),
        Mode::Handshakes => modes::handshakes::run(&opts),
        Mode::Broadcast => modes::broadcast::run(&opts),
        Mode::Nodes => modes::nodes::run(&opts),
    };
    match outcome {
        Ok(outcome) => {
            // A closed stdout (`| head -1`) is not worth a panic.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", outcome.report.json());
            let _ = writeln!(out, "{}", outcome.report.human());
            ExitCode::from(outcome.status as u8)
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ends the process if it outlives `cap`, whatever it is doing.
fn start_watchdog(cap: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(cap);
        eprintln!("loadgen: watchdog: still running after {cap:?}, exiting");
        std::process::exit(4);
    });
}
