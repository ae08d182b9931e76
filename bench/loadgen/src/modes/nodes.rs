//! `nodes`: the `chat` example (`examples/README.md`) on one node or on
//! several nodes sharing rooms through Redis. `subscribers` connections are
//! spread evenly over `--sub-ports` (subscriber `i` on port `i % k`) and
//! all join one room; a publisher on `--port` (node A, not a member) sends
//! `messages` acknowledged chat messages
//! (`{"type":"chat.message","id":"pSEQ",..}`) whose text starts with
//! `#SEQ.NANOS#`, the send time. Members receive `room R: #SEQ.NANOS#..`;
//! the publisher receives `{"type":"ack","id":"pSEQ",..}` (or an `error`
//! naming the id).
//!
//! Measured: deliveries/s, publish-to-delivery latency (overall and per
//! node), publish-to-ack latency, order per subscriber and loss. The
//! publisher sends at `--rate` messages per second (0: as fast as the
//! window allows) with at most `--window` messages unanswered (0: no
//! limit); `--window 1 --rate 0` measures one acknowledged publish at a
//! time, the cost of an ack.
//!
//! Phases, each under a deadline: connect (node by node), join, probe (the
//! publisher sends unacknowledged probe messages until every member saw
//! one, so that every node follows the room), publish. `--watch PIDS`
//! reads those processes' CPU time and read/write system calls at the
//! start and the end of the publish phase (`watch_cpu_us`, `watch_syscr`,
//! `watch_syscw`, one value per process, `/`-separated).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::broadcast::{stamp, PROBE};
use super::{poll_timeout, Clock, Outcome};
use crate::cli::Options;
use crate::conn::ConnEvent;
use crate::frame::{self, opcode, Event};
use crate::hist::Histogram;
use crate::pool::{establish, Pool};
use crate::report::{CpuMeter, Report};
use crate::sys::{proc_usage, ProcUsage};

/// Interval between probe rounds.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Longest the probe phase may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The run ends when neither a delivery nor an ack arrived for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Slot id -> role.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    None,
    Publisher,
    /// Subscriber index.
    Subscriber(u32),
}

/// Counters of the publish phase.
#[derive(Default)]
struct Tally {
    sent: u64,
    acked: u64,
    ack_errors: u64,
    /// Send time of each message (ns on the run's clock).
    sent_ns: Vec<u64>,
    answered: Vec<bool>,
    delivered: u64,
    out_of_order: u64,
    duplicates: u64,
    disconnected: u64,
    last_seq: Vec<u64>,
    hist: Histogram,
    ack_hist: Histogram,
    /// Per node: deliveries and their latency.
    node_delivered: Vec<u64>,
    node_hist: Vec<Histogram>,
    ended: &'static str,
}

/// Runs the nodes workload.
pub fn run(opts: &Options) -> Result<Outcome, String> {
    let connect_deadline = Instant::now() + opts.connect_timeout;
    let ports = if opts.sub_ports.is_empty() {
        vec![opts.target.port()]
    } else {
        opts.sub_ports.clone()
    };
    let mut pool = Pool::new(opts.target, &opts.path).map_err(|e| e.to_string())?;
    pool.tls = opts.tls.clone();
    // Subscribers node by node: (slot, node index).
    let mut subs: Vec<(usize, u32)> = Vec::with_capacity(opts.subscribers);
    let mut failed = 0;
    let mut first_error = None;
    for (k, &port) in ports.iter().enumerate() {
        let n = opts.subscribers / ports.len() + usize::from(k < opts.subscribers % ports.len());
        pool.set_target(SocketAddr::new(opts.target.ip(), port));
        let e = establish(&mut pool, n, opts.concurrency, connect_deadline);
        failed += e.failed;
        if first_error.is_none() {
            first_error = e.first_error;
        }
        subs.extend(e.ids.iter().map(|&id| (id, k as u32)));
    }
    pool.set_target(opts.target);
    if subs.is_empty() {
        return Err(format!(
            "no subscriber upgraded: {}",
            first_error.unwrap_or_default()
        ));
    }
    let publisher = establish(&mut pool, 1, 1, connect_deadline);
    let Some(&pub_id) = publisher.ids.first() else {
        return Err(format!(
            "publisher did not upgrade: {}",
            publisher.first_error.unwrap_or_default()
        ));
    };
    let slots = subs.iter().map(|s| s.0).chain([pub_id]).max().unwrap_or(0) + 1;
    let mut roles = vec![Role::None; slots];
    roles[pub_id] = Role::Publisher;
    for (i, &(id, _)) in subs.iter().enumerate() {
        roles[id] = Role::Subscriber(i as u32);
    }
    let node_of: Vec<u32> = subs.iter().map(|s| s.1).collect();

    let mut r = Report::new("nodes");
    let port_list: Vec<String> = ports.iter().map(u16::to_string).collect();
    r.int("subscribers", opts.subscribers)
        .int("nodes", ports.len())
        .text("sub_ports", &port_list.join(","))
        .int("publisher_port", opts.target.port())
        .int("established", subs.len())
        .int("failed", failed)
        .int("messages", opts.messages)
        .int("size", opts.size)
        .float("rate", opts.rate)
        .int("window", opts.window);
    if let Some(e) = &first_error {
        r.text("first_error", e);
    }

    let mut members = join(&mut pool, &roles, &subs, &opts.room, connect_deadline)?;
    r.int("joined", members.iter().filter(|&&m| m).count());
    if !members.iter().any(|&m| m) {
        r.bool("supported", false).text(
            "note",
            "no `joined room` reply: the server has no room protocol",
        );
        return Ok(Outcome {
            report: r,
            status: 3,
        });
    }
    let run_deadline = Instant::now() + opts.duration;
    let probed = probe(
        &mut pool,
        &roles,
        &mut members,
        pub_id,
        opts,
        run_deadline.min(Instant::now() + PROBE_TIMEOUT),
    )?;
    r.int("probed", probed);
    let watched: Vec<ProcUsage> = opts.watch.iter().map(|&p| proc_usage(p)).collect();
    let cpu = CpuMeter::start();
    let (t, elapsed) = publish(
        &mut pool,
        &roles,
        &members,
        &node_of,
        pub_id,
        opts,
        ports.len(),
        run_deadline,
    )?;

    let used: Vec<ProcUsage> = opts
        .watch
        .iter()
        .zip(&watched)
        .map(|(&p, before)| {
            let after = proc_usage(p);
            ProcUsage {
                cpu_ns: after.cpu_ns.saturating_sub(before.cpu_ns),
                syscr: after.syscr.saturating_sub(before.syscr),
                syscw: after.syscw.saturating_sub(before.syscw),
            }
        })
        .collect();
    let list = |f: &dyn Fn(&ProcUsage) -> u64| -> String {
        used.iter()
            .map(|u| f(u).to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    r.text("watch_cpu_us", &list(&|u| u.cpu_ns / 1000))
        .text("watch_syscr", &list(&|u| u.syscr))
        .text("watch_syscw", &list(&|u| u.syscw));
    let joined = members.iter().filter(|&&m| m).count() as u64;
    let expected = opts.messages as u64 * joined;
    let per_node = |f: &dyn Fn(usize) -> String| -> String {
        (0..ports.len()).map(f).collect::<Vec<_>>().join("/")
    };
    let us = |ns: u64| format!("{:.0}", ns as f64 / 1000.0);
    r.bool("supported", true)
        .int("sent", t.sent)
        .int("acked", t.acked)
        .int("ack_errors", t.ack_errors)
        .int("expected", expected)
        .int("delivered", t.delivered)
        .int("lost", expected.saturating_sub(t.delivered))
        .text("ended", t.ended)
        .float("duration_s", elapsed)
        .float("deliveries_per_sec", t.delivered as f64 / elapsed)
        .float("publishes_per_sec", t.acked as f64 / elapsed)
        .latency(&t.hist)
        .float("ack_p50_us", t.ack_hist.quantile(0.50) as f64 / 1000.0)
        .float("ack_p99_us", t.ack_hist.quantile(0.99) as f64 / 1000.0)
        .float("ack_max_us", t.ack_hist.max() as f64 / 1000.0)
        .text(
            "node_delivered",
            &per_node(&|k| t.node_delivered[k].to_string()),
        )
        .text(
            "node_p50_us",
            &per_node(&|k| us(t.node_hist[k].quantile(0.50))),
        )
        .text(
            "node_p99_us",
            &per_node(&|k| us(t.node_hist[k].quantile(0.99))),
        )
        .int("out_of_order", t.out_of_order)
        .int("duplicates", t.duplicates)
        .int("disconnected", t.disconnected)
        .float("client_cpu_pct", cpu.percent());
    Ok(Outcome::ok(r))
}

/// Queues a text message on connection `id` and writes it out.
fn send_text(pool: &mut Pool, id: usize, text: &str) -> Result<(), String> {
    let key = pool.rng.mask_key();
    let conn = pool.get(id).ok_or("connection vanished")?;
    frame::push_frame(conn.out(), opcode::TEXT, text.as_bytes(), key);
    conn.flush().map_err(|e| e.to_string())
}

/// Joins every subscriber to `room`; returns, per subscriber, whether it
/// was answered `joined room:` before `deadline`.
fn join(
    pool: &mut Pool,
    roles: &[Role],
    subs: &[(usize, u32)],
    room: &str,
    deadline: Instant,
) -> Result<Vec<bool>, String> {
    let json = format!(r#"{{"type":"room.join","payload":{{"room":"{room}"}}}}"#);
    for &(id, _) in subs {
        send_text(pool, id, &json)?;
    }
    let mut joined = vec![false; subs.len()];
    let mut left = subs.len();
    let mut ready = Vec::new();
    while left > 0 && Instant::now() < deadline {
        pool.wait(
            poll_timeout(deadline, Duration::from_millis(50)),
            &mut ready,
        )
        .map_err(|e| e.to_string())?;
        for &id in &ready {
            let mut got = false;
            let _ = pool.service(id, &mut |e| {
                if let ConnEvent::Frame(Event::Message { prefix, .. }) = e {
                    got |= prefix.starts_with(b"joined room");
                }
            });
            if let Some(Role::Subscriber(i)) = roles.get(id).copied() {
                if got && !joined[i as usize] {
                    joined[i as usize] = true;
                    left -= 1;
                }
            }
        }
    }
    Ok(joined)
}

/// Sends unacknowledged probe messages until every member received one (a
/// member that received none by `deadline` is dropped from `members`).
/// Returns how many members saw a probe.
fn probe(
    pool: &mut Pool,
    roles: &[Role],
    members: &mut [bool],
    publisher: usize,
    opts: &Options,
    deadline: Instant,
) -> Result<usize, String> {
    let json = format!(
        r##"{{"type":"chat.message","payload":{{"room":"{}","text":"#{PROBE}.0#"}}}}"##,
        opts.room
    );
    let mut seen = vec![false; members.len()];
    let mut missing = members.iter().filter(|&&m| m).count();
    let mut next_round = Instant::now();
    let mut ready = Vec::new();
    while missing > 0 && Instant::now() < deadline {
        if Instant::now() >= next_round {
            next_round += PROBE_EVERY;
            send_text(pool, publisher, &json)?;
        }
        pool.wait(
            poll_timeout(deadline.min(next_round), PROBE_EVERY),
            &mut ready,
        )
        .map_err(|e| e.to_string())?;
        for &id in &ready {
            let mut got = false;
            pool.service(id, &mut |e| {
                if let ConnEvent::Frame(Event::Message { prefix, .. }) = e {
                    got |= matches!(stamp(prefix, true), Some((PROBE, _)));
                }
            })
            .map_err(|e| format!("connection failed while probing: {e}"))?;
            if let Some(Role::Subscriber(i)) = roles.get(id).copied() {
                let i = i as usize;
                if got && members[i] && !seen[i] {
                    seen[i] = true;
                    missing -= 1;
                }
            }
        }
    }
    for (m, s) in members.iter_mut().zip(&seen) {
        *m &= *s;
    }
    Ok(seen.iter().filter(|&&s| s).count())
}

/// What the publisher received: an answer to message `seq`.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ack(u64),
    Error(u64),
}

/// Reads the answer to `pSEQ`: `{"type":"ack","id":"pSEQ",..}` or an
/// `error` naming the id, in any key order (the chat example's JSON
/// objects come with their keys sorted: `{"id":..,"payload":..,"type":..}`).
fn answer(prefix: &[u8]) -> Option<Answer> {
    const ID: &[u8] = br#""id":"p"#;
    let has = |needle: &[u8]| prefix.windows(needle.len()).any(|w| w == needle);
    let at = prefix.windows(ID.len()).position(|w| w == ID)? + ID.len();
    let rest = &prefix[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    let seq = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    if has(br#""error""#) {
        Some(Answer::Error(seq))
    } else if has(br#""ack""#) || has(br#""offset":"#) {
        Some(Answer::Ack(seq))
    } else {
        None
    }
}

/// Publishes `opts.messages` acknowledged messages at the rate and under
/// the window; returns the tally and the time from the first send to the
/// last delivery or ack.
#[allow(clippy::too_many_arguments)]
fn publish(
    pool: &mut Pool,
    roles: &[Role],
    members: &[bool],
    node_of: &[u32],
    publisher: usize,
    opts: &Options,
    nodes: usize,
    deadline: Instant,
) -> Result<(Tally, f64), String> {
    let messages = opts.messages as u64;
    let window = if opts.window == 0 {
        u64::MAX
    } else {
        opts.window as u64
    };
    let joined = members.iter().filter(|&&m| m).count() as u64;
    let expected = messages * joined;
    let mut t = Tally {
        sent_ns: vec![0; opts.messages],
        answered: vec![false; opts.messages],
        last_seq: vec![u64::MAX; members.len()],
        node_delivered: vec![0; nodes],
        node_hist: vec![Histogram::default(); nodes],
        ..Tally::default()
    };
    let mut pad = String::new();
    while pad.len() + 24 < opts.size {
        pad.push('x');
    }
    let clock = Clock::start();
    let start = Instant::now();
    let mut last_progress = start;
    let mut ready = Vec::new();
    let interval = (opts.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / opts.rate));
    loop {
        let answers = t.acked + t.ack_errors;
        if (t.delivered >= expected && answers >= messages)
            || Instant::now() >= deadline
            || last_progress.elapsed() >= STALL_TIMEOUT
        {
            break;
        }
        // Send what is due: under the window, and at the rate.
        let mut wrote = false;
        while t.sent < messages && t.sent - answers < window {
            if let Some(iv) = interval {
                if start + iv * (t.sent as u32) > Instant::now() {
                    break;
                }
            }
            let seq = t.sent;
            let now = clock.now_ns();
            let json = format!(
                r##"{{"type":"chat.message","id":"p{seq}","payload":{{"room":"{}","text":"#{seq}.{now}#{pad}"}}}}"##,
                opts.room
            );
            let key = pool.rng.mask_key();
            let conn = pool.get(publisher).ok_or("publisher vanished")?;
            frame::push_frame(conn.out(), opcode::TEXT, json.as_bytes(), key);
            t.sent_ns[seq as usize] = now;
            t.sent += 1;
            wrote = true;
        }
        if wrote {
            let conn = pool.get(publisher).ok_or("publisher vanished")?;
            conn.flush().map_err(|e| format!("publisher: {e}"))?;
        }
        let mut wait_cap = Duration::from_millis(50);
        let window_full = t.sent - (t.acked + t.ack_errors) >= window;
        if let (Some(iv), true) = (interval, t.sent < messages && !window_full) {
            wait_cap = (start + iv * (t.sent as u32)).saturating_duration_since(Instant::now());
        }
        pool.wait(poll_timeout(deadline, wait_cap), &mut ready)
            .map_err(|e| e.to_string())?;
        for &id in &ready {
            let role = roles.get(id).copied().unwrap_or(Role::None);
            let now = clock.now_ns();
            let mut closed = false;
            let mut progress = false;
            let result = pool.service(id, &mut |e| match e {
                ConnEvent::Frame(Event::Message { prefix, .. }) => {
                    progress |= t.record(role, prefix, now, members, node_of);
                }
                ConnEvent::Frame(Event::Close) | ConnEvent::Eof => closed = true,
                _ => {}
            });
            if progress {
                last_progress = Instant::now();
            }
            if closed || result.is_err() {
                if role == Role::Publisher {
                    let why = result.err().map_or("closed".into(), |e| e.to_string());
                    return Err(format!("the server dropped the publisher: {why}"));
                }
                t.disconnected += 1;
                pool.close(id);
            }
        }
    }
    t.ended = if t.delivered >= expected && t.acked + t.ack_errors >= messages {
        "complete"
    } else if Instant::now() >= deadline {
        "deadline"
    } else {
        "stall"
    };
    let elapsed = last_progress.duration_since(start).as_secs_f64().max(1e-9);
    Ok((t, elapsed))
}

impl Tally {
    /// Accounts one received message; true when it was a delivery or an
    /// answer of this run.
    fn record(
        &mut self,
        role: Role,
        prefix: &[u8],
        now: u64,
        members: &[bool],
        node_of: &[u32],
    ) -> bool {
        match role {
            Role::Publisher => {
                let (seq, ok) = match answer(prefix) {
                    Some(Answer::Ack(s)) => (s, true),
                    Some(Answer::Error(s)) => (s, false),
                    None => return false,
                };
                let Some(done) = self.answered.get_mut(seq as usize) else {
                    return false;
                };
                if *done || seq >= self.sent {
                    return false;
                }
                *done = true;
                if ok {
                    self.acked += 1;
                    self.ack_hist
                        .record(now.saturating_sub(self.sent_ns[seq as usize]));
                } else {
                    self.ack_errors += 1;
                }
                true
            }
            Role::Subscriber(i) => {
                let i = i as usize;
                let Some((seq, sent_ns)) = stamp(prefix, true) else {
                    return false;
                };
                if seq == PROBE || seq >= self.sent || !members[i] {
                    return false;
                }
                let last = &mut self.last_seq[i];
                if *last != u64::MAX && seq <= *last {
                    if seq == *last {
                        self.duplicates += 1;
                    } else {
                        self.out_of_order += 1;
                    }
                    return true;
                }
                *last = seq;
                self.delivered += 1;
                let latency = now.saturating_sub(sent_ns);
                self.hist.record(latency);
                let node = node_of[i] as usize;
                self.node_delivered[node] += 1;
                self.node_hist[node].record(latency);
                true
            }
            Role::None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_acks_and_errors() {
        assert_eq!(
            answer(br#"{"type":"ack","id":"p42","payload":{"room":"r","offset":7}}"#),
            Some(Answer::Ack(42))
        );
        assert_eq!(
            answer(br#"{"type":"error","id":"p3","payload":{"error":"not_stored"}}"#),
            Some(Answer::Error(3))
        );
        assert_eq!(
            answer(br#"{"id":"p9","payload":{"offset":12,"room":"bench-nodes"},"type":"ack"}"#),
            Some(Answer::Ack(9))
        );
        assert_eq!(
            answer(
                br#"{"id":"p8","payload":{"error":"not_stored","message":"message store: Redis"#
            ),
            Some(Answer::Error(8))
        );
        assert_eq!(answer(br#"{"type":"ack","id":"q1"}"#), None);
        assert_eq!(answer(b"room r: #1.2#"), None);
    }

    #[test]
    fn tally_counts_deliveries_per_node_and_order() {
        let mut t = Tally {
            sent: 3,
            sent_ns: vec![10, 20, 30],
            answered: vec![false; 3],
            last_seq: vec![u64::MAX; 2],
            node_delivered: vec![0; 2],
            node_hist: vec![Histogram::default(); 2],
            ..Tally::default()
        };
        let members = [true, true];
        let nodes = [0, 1];
        assert!(t.record(
            Role::Subscriber(0),
            b"room r: #0.10#x",
            110,
            &members,
            &nodes
        ));
        assert!(t.record(
            Role::Subscriber(1),
            b"room r: #1.20#x",
            220,
            &members,
            &nodes
        ));
        assert!(t.record(
            Role::Subscriber(1),
            b"room r: #0.10#x",
            230,
            &members,
            &nodes
        ));
        assert!(!t.record(
            Role::Subscriber(1),
            b"room r: #5.20#x",
            230,
            &members,
            &nodes
        ));
        assert!(t.record(
            Role::Publisher,
            br#"{"type":"ack","id":"p1"}"#,
            70,
            &members,
            &nodes
        ));
        assert!(!t.record(
            Role::Publisher,
            br#"{"type":"ack","id":"p1"}"#,
            80,
            &members,
            &nodes
        ));
        assert_eq!((t.delivered, t.out_of_order, t.acked), (2, 1, 1));
        assert_eq!(t.node_delivered, vec![1, 1]);
        assert_eq!(t.ack_hist.quantile(0.5), 50);
    }
}
