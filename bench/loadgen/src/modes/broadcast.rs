//! `broadcast`: one publisher sends `messages` messages that the server
//! (run in broadcast mode) forwards to every other client; `subscribers`
//! receivers count deliveries, latency, order and loss.
//!
//! Every message carries its sequence number and send time. Binary frames
//! carry them as two little-endian u64 at the start of the payload; in room
//! mode (`--rooms R`) the text `#SEQ.NANOS#` travels inside the chat
//! protocol of the `chat` example (`examples/README.md`: `room.join`,
//! `chat.message`), subscriber `i` joining room `bench-{i % R}` and message
//! `n` going to room `n % R`.
//!
//! Phases, each under a deadline: connect; (rooms) join; probe — the
//! publisher sends probe messages until every subscriber has seen one, which
//! also tells a server that echoes instead of broadcasting; publish — all
//! messages at once by default (how the peers' figures that the targets were
//! set against were taken), or at most `--window` messages not yet delivered
//! to everyone.

use std::time::{Duration, Instant};

use super::{poll_timeout, Clock, Outcome};
use crate::cli::Options;
use crate::conn::ConnEvent;
use crate::frame::{self, opcode, Event, Templates};
use crate::hist::Histogram;
use crate::pool::{establish, Pool};
use crate::report::{CpuMeter, Report};

/// Sequence number of probe messages.
pub(crate) const PROBE: u64 = u64::MAX;
/// Interval between probe rounds.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Longest the probe phase may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The run ends when no delivery arrived for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Slot id -> role.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    None,
    Publisher,
    /// Subscriber index.
    Subscriber(u32),
}

/// The run's connections and what they know.
struct Fanout {
    pool: Pool,
    roles: Vec<Role>,
    publisher: usize,
    /// Room of each subscriber (all 0 without rooms).
    room_of: Vec<u32>,
    /// Subscribers per room (one "room" without rooms).
    members: Vec<u64>,
    /// Rooms mode: text frames in the chat protocol.
    rooms: bool,
    /// Payload size (binary mode) or padded text length (rooms).
    size: usize,
    templates: Templates,
    /// `--deflate on`: messages are JSON-like text behind the stamp, each
    /// compressed as a fresh stream.
    compressor: Option<flate2::Compress>,
}

/// Counters of the publish phase.
#[derive(Default)]
struct Tally {
    sent: u64,
    delivered: u64,
    per_seq: Vec<u32>,
    complete: u64,
    out_of_order: u64,
    bogus: u64,
    self_echo: u64,
    /// Subscribers the server disconnected during the publish phase.
    disconnected: u64,
    /// Why the publish phase ended: `complete`, `stall` or `deadline`.
    ended: &'static str,
    last_seq: Vec<u64>,
    hist: Histogram,
}

/// Runs the broadcast workload.
pub fn run(opts: &Options) -> Result<Outcome, String> {
    let connect_deadline = Instant::now() + opts.connect_timeout;
    let mut pool = Pool::new(opts.target, &opts.path).map_err(|e| e.to_string())?;
    pool.tls = opts.tls.clone();
    pool.deflate = opts.deflate;
    let subs = establish(
        &mut pool,
        opts.subscribers,
        opts.concurrency,
        connect_deadline,
    );
    if subs.ids.is_empty() {
        return Err(format!(
            "no subscriber upgraded: {}",
            subs.first_error.unwrap_or_default()
        ));
    }
    let publisher = establish(&mut pool, 1, 1, connect_deadline);
    let Some(&pub_id) = publisher.ids.first() else {
        return Err(format!(
            "publisher did not upgrade: {}",
            publisher.first_error.unwrap_or_default()
        ));
    };
    let slots = subs.ids.iter().chain([&pub_id]).max().unwrap() + 1;
    let mut roles = vec![Role::None; slots];
    roles[pub_id] = Role::Publisher;
    for (i, &id) in subs.ids.iter().enumerate() {
        roles[id] = Role::Subscriber(i as u32);
    }
    let n_subs = subs.ids.len();
    let rooms = opts.rooms.max(1);
    let templates = Templates::new(opcode::BINARY, opts.size, 16, &mut pool.rng);
    let mut f = Fanout {
        pool,
        roles,
        publisher: pub_id,
        room_of: (0..n_subs).map(|i| (i % rooms) as u32).collect(),
        members: vec![0; rooms],
        rooms: opts.rooms > 0,
        size: opts.size,
        templates,
        compressor: opts
            .deflate
            .then(|| flate2::Compress::new(flate2::Compression::default(), false)),
    };
    let mut r = Report::new("broadcast");
    r.int("subscribers", opts.subscribers)
        .int("established", n_subs)
        .int("rooms", opts.rooms)
        .int("messages", opts.messages)
        .int("size", opts.size)
        .int("deflate", opts.deflate as usize)
        .int("window", opts.window);

    if f.rooms {
        match join_rooms(&mut f, &subs.ids, connect_deadline)? {
            Ok(()) => {}
            Err(note) => return Ok(unsupported(r, &note)),
        }
    } else {
        f.members[0] = n_subs as u64;
    }

    let run_deadline = Instant::now() + opts.duration;
    if let Err(note) = probe(
        &mut f,
        n_subs,
        run_deadline.min(Instant::now() + PROBE_TIMEOUT),
    )? {
        return Ok(unsupported(r, &note));
    }
    let cpu = CpuMeter::start();
    let (tally, elapsed) = publish(&mut f, opts, run_deadline)?;

    let expected: u64 = (0..tally.sent)
        .map(|seq| f.members[(seq % rooms as u64) as usize])
        .sum();
    let full: u64 = (0..opts.messages as u64)
        .map(|seq| f.members[(seq % rooms as u64) as usize])
        .sum();
    r.bool("supported", true)
        .int("sent", tally.sent)
        .int("expected", full)
        .int("delivered", tally.delivered)
        .int("lost", full.saturating_sub(tally.delivered))
        .int("lost_of_sent", expected.saturating_sub(tally.delivered))
        .text("ended", tally.ended)
        .float("duration_s", elapsed)
        .float("deliveries_per_sec", tally.delivered as f64 / elapsed)
        .latency(&tally.hist)
        .int("out_of_order", tally.out_of_order)
        .int("bogus", tally.bogus)
        .int("self_echo", tally.self_echo)
        .int("disconnected", tally.disconnected)
        .float("client_cpu_pct", cpu.percent());
    Ok(Outcome::ok(r))
}

/// The report of a server without the feature (exit status 3).
fn unsupported(mut r: Report, note: &str) -> Outcome {
    r.bool("supported", false).text("note", note);
    Outcome {
        report: r,
        status: 3,
    }
}

/// Joins every subscriber to its room. The first join is tried alone, so a
/// server without rooms is detected before anyone is flooded.
fn join_rooms(
    f: &mut Fanout,
    ids: &[usize],
    deadline: Instant,
) -> Result<Result<(), String>, String> {
    let first_deadline = deadline.min(Instant::now() + Duration::from_secs(3));
    let joined = join_batch(f, &ids[..1], first_deadline)?;
    if joined == 0 {
        return Ok(Err(
            "no `joined room` reply to a room.join: the server has no room protocol".into(),
        ));
    }
    join_batch(f, &ids[1..], deadline)?;
    Ok(Ok(()))
}

/// Sends `room.join` from each of `ids` and waits for the replies; counts
/// members per room. Returns how many joined.
fn join_batch(f: &mut Fanout, ids: &[usize], deadline: Instant) -> Result<usize, String> {
    let mut waiting = vec![false; f.roles.len()];
    for &id in ids {
        let Role::Subscriber(i) = f.roles[id] else {
            continue;
        };
        let json = format!(
            r#"{{"type":"room.join","payload":{{"room":"bench-{}"}}}}"#,
            f.room_of[i as usize]
        );
        let key = f.pool.rng.mask_key();
        let conn = f.pool.get(id).ok_or("subscriber vanished")?;
        frame::push_frame(conn.out(), opcode::TEXT, json.as_bytes(), key);
        conn.flush().map_err(|e| e.to_string())?;
        waiting[id] = true;
    }
    let mut left = ids.len();
    let mut ready = Vec::new();
    while left > 0 && Instant::now() < deadline {
        f.pool
            .wait(
                poll_timeout(deadline, Duration::from_millis(50)),
                &mut ready,
            )
            .map_err(|e| e.to_string())?;
        for &id in &ready {
            let mut joined = false;
            let _ = f.pool.service(id, &mut |e| {
                if let ConnEvent::Frame(Event::Message { prefix, .. }) = e {
                    joined |= prefix.windows(6).any(|w| w == b"joined");
                }
            });
            if joined && waiting.get(id) == Some(&true) {
                waiting[id] = false;
                left -= 1;
                if let Role::Subscriber(i) = f.roles[id] {
                    f.members[f.room_of[i as usize] as usize] += 1;
                }
            }
        }
    }
    Ok(ids.len() - left)
}

/// Sends probe rounds until every subscriber has received one. `Err(note)`
/// inside when none did (the server does not broadcast).
fn probe(f: &mut Fanout, n_subs: usize, deadline: Instant) -> Result<Result<(), String>, String> {
    let mut seen = vec![false; n_subs];
    let mut missing = n_subs;
    let mut self_echo = 0u64;
    let mut next_round = Instant::now();
    let mut ready = Vec::new();
    while missing > 0 && Instant::now() < deadline {
        if Instant::now() >= next_round {
            next_round += PROBE_EVERY;
            for room in 0..f.members.len() {
                f.send(PROBE, 0, room)?;
            }
            f.flush_publisher()?;
        }
        f.pool
            .wait(
                poll_timeout(deadline.min(next_round), PROBE_EVERY),
                &mut ready,
            )
            .map_err(|e| e.to_string())?;
        for &id in &ready {
            let role = f.roles.get(id).copied().unwrap_or(Role::None);
            let rooms = f.rooms;
            let mut got = false;
            f.pool
                .service(id, &mut |e| {
                    if let ConnEvent::Frame(Event::Message { prefix, .. }) = e {
                        got |= matches!(stamp(prefix, rooms), Some((PROBE, _)));
                    }
                })
                .map_err(|e| format!("connection failed while probing: {e}"))?;
            match role {
                Role::Subscriber(i) if got && !seen[i as usize] => {
                    seen[i as usize] = true;
                    missing -= 1;
                }
                Role::Publisher if got => self_echo += 1,
                _ => {}
            }
        }
    }
    if missing == n_subs {
        let why = if self_echo > 0 {
            "the server echoes to the sender"
        } else {
            "nothing was forwarded"
        };
        return Ok(Err(format!(
            "no subscriber received a probe ({why}): not in broadcast mode"
        )));
    }
    // Probes still in flight are ignored by the publish phase.
    Ok(Ok(()))
}

/// Publishes `opts.messages` messages under the window; returns the tally
/// and the time from the first send to the last delivery.
fn publish(f: &mut Fanout, opts: &Options, deadline: Instant) -> Result<(Tally, f64), String> {
    let messages = opts.messages as u64;
    let window = if opts.window == 0 {
        u64::MAX
    } else {
        opts.window as u64
    };
    let rooms = f.members.len() as u64;
    let n_subs = f.room_of.len();
    let mut t = Tally {
        per_seq: vec![0; opts.messages],
        last_seq: vec![u64::MAX; n_subs],
        ..Tally::default()
    };
    let expected_total: u64 = (0..messages).map(|s| f.members[(s % rooms) as usize]).sum();
    let clock = Clock::start();
    let start = Instant::now();
    let mut last_delivery = start;
    let mut ready = Vec::new();
    while t.delivered < expected_total
        && Instant::now() < deadline
        && last_delivery.elapsed() < STALL_TIMEOUT
    {
        while t.sent < messages && t.sent - t.complete < window {
            f.send(t.sent, clock.now_ns(), (t.sent % rooms) as usize)?;
            t.sent += 1;
        }
        f.flush_publisher()?;
        f.pool
            .wait(
                poll_timeout(deadline, Duration::from_millis(50)),
                &mut ready,
            )
            .map_err(|e| e.to_string())?;
        for &id in &ready {
            let role = f.roles.get(id).copied().unwrap_or(Role::None);
            let now = clock.now_ns();
            let before = t.delivered;
            let rooms_mode = f.rooms;
            let mut closed = false;
            let result = f.pool.service(id, &mut |e| match e {
                ConnEvent::Frame(Event::Message { prefix, .. }) => {
                    t.record(role, stamp(prefix, rooms_mode), now, messages);
                }
                ConnEvent::Frame(Event::Close) | ConnEvent::Eof => closed = true,
                _ => {}
            });
            if t.delivered > before {
                last_delivery = Instant::now();
            }
            if closed || result.is_err() {
                if role == Role::Publisher {
                    let why = result.err().map_or("closed".into(), |e| e.to_string());
                    return Err(format!("the server dropped the publisher: {why}"));
                }
                // A subscriber the server dropped (slow-consumer policy, or
                // an error): its missing deliveries show up as loss.
                t.disconnected += 1;
                f.pool.close(id);
            }
        }
        while t.complete < t.sent
            && t.per_seq[t.complete as usize] as u64 >= f.members[(t.complete % rooms) as usize]
        {
            t.complete += 1;
        }
    }
    t.ended = if t.delivered >= expected_total {
        "complete"
    } else if Instant::now() >= deadline {
        "deadline"
    } else {
        "stall"
    };
    let elapsed = last_delivery.duration_since(start).as_secs_f64().max(1e-9);
    Ok((t, elapsed))
}

impl Tally {
    /// Accounts one received message.
    fn record(&mut self, role: Role, stamp: Option<(u64, u64)>, now: u64, messages: u64) {
        match (role, stamp) {
            (_, Some((PROBE, _))) => {}
            (Role::Publisher, _) => self.self_echo += 1,
            (Role::Subscriber(i), Some((seq, sent_ns))) if seq < messages => {
                self.delivered += 1;
                self.per_seq[seq as usize] += 1;
                self.hist.record(now.saturating_sub(sent_ns));
                let last = &mut self.last_seq[i as usize];
                if *last != u64::MAX && seq <= *last {
                    self.out_of_order += 1;
                }
                *last = seq;
            }
            _ => self.bogus += 1,
        }
    }
}

impl Fanout {
    /// Writes what the publisher has queued.
    fn flush_publisher(&mut self) -> Result<(), String> {
        let conn = self.pool.get(self.publisher).ok_or("publisher vanished")?;
        conn.flush().map_err(|e| format!("publisher: {e}"))
    }

    /// Queues message `seq` stamped `sent_ns` on the publisher, to `room`.
    fn send(&mut self, seq: u64, sent_ns: u64, room: usize) -> Result<(), String> {
        let key = self.pool.rng.mask_key();
        let conn = self.pool.get(self.publisher).ok_or("publisher vanished")?;
        if self.rooms {
            let mut text = format!("#{seq}.{sent_ns}#");
            while text.len() < self.size {
                text.push('x');
            }
            let json = format!(
                r#"{{"type":"chat.message","payload":{{"room":"bench-{room}","text":"{text}"}}}}"#
            );
            frame::push_frame(conn.out(), opcode::TEXT, json.as_bytes(), key);
        } else if let Some(compressor) = self.compressor.as_mut() {
            let mut message = frame::json_like(self.size);
            message[..8].copy_from_slice(&seq.to_le_bytes());
            message[8..16].copy_from_slice(&sent_ns.to_le_bytes());
            frame::push_deflated(conn.out(), opcode::BINARY, &message, compressor, key);
        } else {
            let mut prefix = [0u8; 16];
            prefix[..8].copy_from_slice(&seq.to_le_bytes());
            prefix[8..].copy_from_slice(&sent_ns.to_le_bytes());
            self.templates.push_with_prefix(conn.out(), &prefix);
        }
        Ok(())
    }
}

/// Reads the (sequence, send time) a message carries.
pub(crate) fn stamp(prefix: &[u8], text: bool) -> Option<(u64, u64)> {
    if !text {
        let seq = u64::from_le_bytes(prefix.get(..8)?.try_into().ok()?);
        let ns = u64::from_le_bytes(prefix.get(8..16)?.try_into().ok()?);
        return Some((seq, ns));
    }
    let start = prefix.iter().position(|&b| b == b'#')? + 1;
    let rest = &prefix[start..];
    let dot = rest.iter().position(|&b| b == b'.')?;
    let end = rest.iter().position(|&b| b == b'#')?;
    let num = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<u64>().ok();
    Some((num(&rest[..dot])?, num(rest.get(dot + 1..end)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_binary_and_text() {
        let mut p = [0u8; 64];
        p[..8].copy_from_slice(&7u64.to_le_bytes());
        p[8..16].copy_from_slice(&123u64.to_le_bytes());
        assert_eq!(stamp(&p, false), Some((7, 123)));
        assert_eq!(stamp(&p[..10], false), None);
        assert_eq!(
            stamp(b"room bench-3: #42.99887766#xxxx", true),
            Some((42, 99_887_766))
        );
        assert_eq!(stamp(b"#18446744073709551615.5#", true), Some((PROBE, 5)));
        assert_eq!(stamp(b"welcome to hubbub chat", true), None);
        assert_eq!(stamp(b"#12.34", true), None);
    }

    #[test]
    fn tally_counts_order_and_strays() {
        let mut t = Tally {
            per_seq: vec![0; 4],
            last_seq: vec![u64::MAX; 2],
            ..Tally::default()
        };
        t.record(Role::Subscriber(0), Some((0, 10)), 30, 4);
        t.record(Role::Subscriber(0), Some((2, 10)), 30, 4);
        t.record(Role::Subscriber(0), Some((1, 10)), 30, 4);
        t.record(Role::Subscriber(1), Some((PROBE, 0)), 30, 4);
        t.record(Role::Subscriber(1), Some((9, 0)), 30, 4);
        t.record(Role::Publisher, Some((0, 0)), 30, 4);
        assert_eq!(
            (t.delivered, t.out_of_order, t.bogus, t.self_echo),
            (3, 1, 1, 1)
        );
        assert_eq!(t.per_seq, vec![1, 1, 1, 0]);
        assert_eq!(t.hist.quantile(0.5), 20);
    }
}
