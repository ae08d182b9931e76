//! Command line: `loadgen MODE [--option value]...`.
//!
//! Every numeric option has a hard upper bound so that no run can ask for an
//! unbounded amount of work, and the target must be a loopback address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each connection keeps `inflight` messages in flight and counts echoes.
    Echo,
    /// Opens `conns` connections and holds them open for `hold`.
    Idle,
    /// `conns` parallel loops of connect, upgrade, close.
    Handshakes,
    /// One publisher, `subscribers` receivers; the server fans out.
    Broadcast,
    /// The `chat` example over one or several nodes: subscribers spread
    /// over `--sub-ports`, all in one room; an acknowledging publisher on
    /// `--port`, at a fixed rate or under an ack window.
    Nodes,
}

/// Parsed and validated options.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Loopback address of the server under test.
    pub target: SocketAddr,
    /// Request path of the upgrade request.
    pub path: String,
    /// Connections (echo, idle, handshakes).
    pub conns: usize,
    /// Messages kept in flight per connection (echo).
    pub inflight: usize,
    /// Payload size in bytes.
    pub size: usize,
    /// Hard cap on the measured phase (echo, handshakes, broadcast).
    pub duration: Duration,
    /// How long idle connections are held once all are open.
    pub hold: Duration,
    /// Deadline for opening all connections.
    pub connect_timeout: Duration,
    /// Handshakes allowed in progress at once while opening connections.
    pub concurrency: usize,
    /// Broadcast receivers.
    pub subscribers: usize,
    /// Messages the broadcast publisher sends.
    pub messages: usize,
    /// Rooms the subscribers are spread over (0: plain broadcast).
    pub rooms: usize,
    /// Broadcast messages published but not yet delivered to every
    /// subscriber, at most (0: no limit, the publisher sends at once).
    pub window: usize,
    /// How a handshake loop ends its connection.
    pub close: CloseStyle,
    /// Offer permessage-deflate (echo, broadcast): messages are JSON-like
    /// text, sent compressed; received ones are inflated.
    pub deflate: bool,
    /// Speak TLS, trusting the CA of `--tls-ca PATH`.
    pub tls: Option<crate::tls::Tls>,
    /// `nodes`: the ports the subscribers connect to, spread evenly
    /// (empty: the publisher's `--port`).
    pub sub_ports: Vec<u16>,
    /// `nodes`: messages per second the publisher sends (0: as fast as the
    /// window allows).
    pub rate: f64,
    /// `nodes`: the room every subscriber joins.
    pub room: String,
    /// `nodes`: processes whose CPU time and system calls are read at the
    /// start and the end of the publish phase (the servers, Redis).
    pub watch: Vec<u32>,
}

/// How `handshakes` ends each connection once upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseStyle {
    /// Close frame, wait for the server's close (or FIN), then reset.
    Frame,
    /// Reset right after the `101` (no close frame): measures the upgrade
    /// alone and costs the load generator least.
    Reset,
}

/// Usage text printed on `--help` and on errors.
pub const USAGE: &str = "\
usage: loadgen MODE --port P [options]
modes:
  echo        --conns 100 --inflight 1 --size 20 --duration 10
  idle        --conns 10000 --hold 3
  handshakes  --conns 50 --duration 10 [--close frame|reset]
  broadcast   --subscribers 1000 --messages 2000 --size 64 [--rooms R] [--window 0 (no limit)]
  nodes       --subscribers 1000 --messages 2000 --size 64 [--sub-ports P1,P2,..] [--rate 0]
              [--window 0] [--room bench-nodes]: the `chat` example on one or several nodes;
              subscribers spread over --sub-ports (default --port), all in one room; the
              publisher on --port sends acknowledged chat.message (with an id) at --rate
              messages/s (0: at once), at most --window unacknowledged (0: no limit);
              reports delivery latency (publish -> `room R: ..`) and ack latency;
              --watch PID,..: CPU time and read/write calls of those processes over
              the publish phase (from /proc)
  echo and broadcast (not --rooms) take --deflate on: permessage-deflate, JSON-like payloads
common options:
  --host H             loopback address only (127.0.0.0/8, ::1, localhost); default 127.0.0.1
  --path /P            upgrade request path; default /
  --connect-timeout S  deadline for opening the connections; default 30
  --concurrency N      handshakes in progress at once while connecting; default 256
  --tls-ca PATH        speak TLS (wss://), trusting the CA certificate(s) in this PEM file
output: one JSON line (starts with '{') and one human line (starts with '#') on stdout.
exit status: 0 ok, 1 failure, 2 usage, 3 server lacks the feature (broadcast/rooms).";

/// Upper bounds of the numeric options.
const MAX_CONNS: usize = 100_000;
const MAX_INFLIGHT: usize = 4096;
const MAX_SIZE: usize = 16 << 20;
const MAX_SECS: f64 = 600.0;
const MAX_MESSAGES: usize = 10_000_000;

impl Options {
    /// Parses an argument list (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut it = args.into_iter();
        let mode = match it.next().as_deref() {
            Some("echo") => Mode::Echo,
            Some("idle") => Mode::Idle,
            Some("handshakes") => Mode::Handshakes,
            Some("broadcast") => Mode::Broadcast,
            Some("nodes") => Mode::Nodes,
            Some(other) => return Err(format!("unknown mode {other:?}")),
            None => return Err("missing mode".into()),
        };
        let mut opts = Options::defaults(mode);
        let mut host = String::from("127.0.0.1");
        let mut port: Option<u16> = None;
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--host" => host = value,
                "--port" => port = Some(number(&flag, &value, 1, u16::MAX as usize)? as u16),
                "--path" if value.starts_with('/') => opts.path = value,
                "--conns" => opts.conns = number(&flag, &value, 1, MAX_CONNS)?,
                "--inflight" => opts.inflight = number(&flag, &value, 1, MAX_INFLIGHT)?,
                "--size" => opts.size = number(&flag, &value, 0, MAX_SIZE)?,
                "--duration" => opts.duration = seconds(&flag, &value)?,
                "--hold" => opts.hold = seconds(&flag, &value)?,
                "--connect-timeout" => opts.connect_timeout = seconds(&flag, &value)?,
                "--concurrency" => opts.concurrency = number(&flag, &value, 1, MAX_CONNS)?,
                "--subscribers" => opts.subscribers = number(&flag, &value, 1, MAX_CONNS)?,
                "--messages" => opts.messages = number(&flag, &value, 1, MAX_MESSAGES)?,
                "--rooms" => opts.rooms = number(&flag, &value, 0, MAX_CONNS)?,
                "--window" => opts.window = number(&flag, &value, 0, MAX_MESSAGES)?,
                "--sub-ports" => {
                    opts.sub_ports = value
                        .split(',')
                        .map(|p| number(&flag, p.trim(), 1, u16::MAX as usize).map(|p| p as u16))
                        .collect::<Result<_, _>>()?;
                    if opts.sub_ports.len() > 16 {
                        return Err("--sub-ports: at most 16 ports".into());
                    }
                }
                "--watch" => {
                    opts.watch = value
                        .split(',')
                        .map(|p| number(&flag, p.trim(), 1, u32::MAX as usize).map(|p| p as u32))
                        .collect::<Result<_, _>>()?;
                    if opts.watch.len() > 16 {
                        return Err("--watch: at most 16 processes".into());
                    }
                }
                "--rate" => {
                    let r: f64 = value
                        .parse()
                        .map_err(|_| format!("{flag}: not a number: {value:?}"))?;
                    if !(0.0..=1e7).contains(&r) {
                        return Err(format!("{flag}: {r} is outside 0..=1e7"));
                    }
                    opts.rate = r;
                }
                "--room"
                    if !value.is_empty()
                        && value.len() <= 64
                        && !value.contains(['"', '\\', '#']) =>
                {
                    opts.room = value
                }
                "--deflate" => {
                    opts.deflate = match value.as_str() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("--deflate: expected on or off, not {value:?}")),
                    }
                }
                "--tls-ca" => opts.tls = Some(crate::tls::Tls::from_ca_file(value.as_ref())?),
                "--close" => {
                    opts.close = match value.as_str() {
                        "frame" => CloseStyle::Frame,
                        "reset" => CloseStyle::Reset,
                        _ => {
                            return Err(format!("--close: expected frame or reset, not {value:?}"))
                        }
                    }
                }
                _ => return Err(format!("unknown option {flag:?} {value:?}")),
            }
        }
        let port = port.ok_or("--port is required")?;
        opts.target = SocketAddr::new(loopback(&host)?, port);
        if opts.deflate && (!matches!(mode, Mode::Echo | Mode::Broadcast) || opts.rooms > 0) {
            return Err("--deflate applies to echo and plain broadcast only".into());
        }
        if opts.deflate && mode == Mode::Nodes {
            return Err("--deflate applies to echo and plain broadcast only".into());
        }
        if mode == Mode::Nodes && opts.size > 4096 {
            return Err("nodes: --size at most 4096 (text padded in a JSON envelope)".into());
        }
        if matches!(mode, Mode::Broadcast | Mode::Nodes) {
            if opts.size < 16 {
                return Err("broadcast needs --size >= 16 (sequence number and timestamp)".into());
            }
            if opts.rooms > opts.subscribers {
                return Err("--rooms cannot exceed --subscribers".into());
            }
        }
        Ok(opts)
    }

    /// The defaults of each mode (the rows of the benchmark table).
    fn defaults(mode: Mode) -> Options {
        Options {
            mode,
            target: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            path: "/".into(),
            conns: match mode {
                Mode::Echo => 100,
                Mode::Idle => 10_000,
                Mode::Handshakes => 50,
                Mode::Broadcast | Mode::Nodes => 0,
            },
            inflight: 1,
            size: if matches!(mode, Mode::Broadcast | Mode::Nodes) {
                64
            } else {
                20
            },
            duration: Duration::from_secs(10),
            hold: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(30),
            concurrency: 256,
            subscribers: 1000,
            messages: 2000,
            rooms: 0,
            window: 0,
            close: CloseStyle::Frame,
            deflate: false,
            tls: None,
            sub_ports: Vec::new(),
            rate: 0.0,
            room: "bench-nodes".into(),
            watch: Vec::new(),
        }
    }

    /// Sockets this run holds at most (for RLIMIT_NOFILE).
    pub fn max_sockets(&self) -> usize {
        match self.mode {
            Mode::Broadcast | Mode::Nodes => self.subscribers + 1,
            _ => self.conns,
        }
    }

    /// The longest this process may live: every phase's deadline plus slack.
    /// A watchdog ends the process past it whatever it is doing.
    pub fn hard_cap(&self) -> Duration {
        self.connect_timeout + self.duration + self.hold + Duration::from_secs(10)
    }
}

/// Parses an integer within `min..=max`.
fn number(flag: &str, value: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))?;
    if n < min || n > max {
        return Err(format!("{flag}: {n} is outside {min}..={max}"));
    }
    Ok(n)
}

/// Parses a positive number of seconds (fractions allowed), at most 600.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    let s: f64 = value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value:?}"))?;
    if !(s > 0.0 && s <= MAX_SECS) {
        return Err(format!("{flag}: {s} s is outside (0, {MAX_SECS}]"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Resolves `host` to a loopback address, refusing anything else.
pub fn loopback(host: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = match host {
        "localhost" => Ipv4Addr::LOCALHOST.into(),
        _ => host
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| format!("--host: not an IP address: {host:?}"))?,
    };
    if !ip.is_loopback() {
        return Err(format!(
            "--host: {ip} is not a loopback address; this tool only targets 127.0.0.0/8 or ::1"
        ));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Options, String> {
        Options::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn mode_defaults_and_overrides() {
        let o =
            parse("echo --port 9000 --conns 10 --inflight 64 --size 1024 --duration 2.5").unwrap();
        assert_eq!(
            (o.mode, o.conns, o.inflight, o.size),
            (Mode::Echo, 10, 64, 1024)
        );
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert_eq!(o.target, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(parse("idle --port 1").unwrap().conns, 10_000);
        let b = parse("broadcast --port 1 --rooms 100 --subscribers 10000").unwrap();
        assert_eq!((b.size, b.rooms, b.max_sockets()), (64, 100, 10_001));
        let n = parse("nodes --port 7 --sub-ports 7,8,9 --rate 500 --window 1").unwrap();
        assert_eq!(
            (n.mode, n.sub_ports, n.rate, n.window, n.room.as_str()),
            (Mode::Nodes, vec![7, 8, 9], 500.0, 1, "bench-nodes")
        );
        assert!(parse("nodes --port 7 --sub-ports 7,x").is_err());
        assert!(parse("nodes --port 7 --rate -1").is_err());
        assert!(parse("nodes --port 7 --room a\"b").is_err());
    }

    #[test]
    fn only_loopback_targets() {
        assert!(parse("echo --port 1 --host 127.0.0.9").is_ok());
        assert!(parse("echo --port 1 --host ::1").is_ok());
        assert!(parse("echo --port 1 --host [::1]").is_ok());
        assert!(parse("echo --port 1 --host localhost").is_ok());
        for bad in [
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "::ffff:127.0.0.1",
            "example.com",
            "0.0.0.0",
        ] {
            assert!(
                parse(&format!("echo --port 1 --host {bad}")).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn bounded_options() {
        assert!(parse("echo").is_err());
        assert!(parse("echo --port 1 --conns 0").is_err());
        assert!(parse("echo --port 1 --conns 1000000").is_err());
        assert!(parse("echo --port 1 --duration 0").is_err());
        assert!(parse("echo --port 1 --duration 601").is_err());
        assert!(parse("echo --port 1 --duration nan").is_err());
        assert!(parse("broadcast --port 1 --size 8").is_err());
        assert!(parse("frob --port 1").is_err());
        assert!(parse("echo --port 1 --path nope").is_err());
        assert!(parse("handshakes --port 1 --close later").is_err());
        assert_eq!(
            parse("handshakes --port 1 --close reset").unwrap().close,
            CloseStyle::Reset
        );
    }
}
