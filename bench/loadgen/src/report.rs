//! The result of a run: one JSON line for scripts and one human line.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::hist::Histogram;
use crate::sys;

/// A value in the report.
#[derive(Debug, Clone)]
pub enum Value {
    Int(u64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// An ordered list of named values, printed as a flat JSON object.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<(&'static str, Value)>,
}

impl Report {
    /// Starts a report for `mode`.
    pub fn new(mode: &str) -> Report {
        let mut r = Report::default();
        r.text("mode", mode);
        r
    }

    pub fn int(&mut self, key: &'static str, v: impl TryInto<u64>) -> &mut Report {
        self.fields
            .push((key, Value::Int(v.try_into().unwrap_or(u64::MAX))));
        self
    }

    pub fn float(&mut self, key: &'static str, v: f64) -> &mut Report {
        self.fields.push((key, Value::Float(v)));
        self
    }

    pub fn bool(&mut self, key: &'static str, v: bool) -> &mut Report {
        self.fields.push((key, Value::Bool(v)));
        self
    }

    pub fn text(&mut self, key: &'static str, v: &str) -> &mut Report {
        self.fields.push((key, Value::Text(v.to_owned())));
        self
    }

    /// Adds `p50_us`, `p99_us` and `max_us` of a latency histogram.
    pub fn latency(&mut self, h: &Histogram) -> &mut Report {
        let us = |ns: u64| ns as f64 / 1000.0;
        self.float("p50_us", us(h.quantile(0.50)));
        self.float("p99_us", us(h.quantile(0.99)));
        self.float("max_us", us(h.max()))
    }

    /// Looks a value up (tests).
    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The JSON line.
    pub fn json(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "\"{k}\":");
            match v {
                Value::Int(n) => {
                    let _ = write!(s, "{n}");
                }
                Value::Float(f) if f.is_finite() => {
                    let _ = write!(s, "{f:.3}");
                }
                Value::Float(_) => s.push_str("null"),
                Value::Bool(b) => {
                    let _ = write!(s, "{b}");
                }
                Value::Text(t) => json_string(&mut s, t),
            }
        }
        s.push('}');
        s
    }

    /// The human line: `# key=value ...`.
    pub fn human(&self) -> String {
        let mut s = String::from("#");
        for (k, v) in &self.fields {
            let _ = match v {
                Value::Int(n) => write!(s, " {k}={n}"),
                Value::Float(f) => write!(s, " {k}={}", human_float(*f)),
                Value::Bool(b) => write!(s, " {k}={b}"),
                Value::Text(t) => write!(s, " {k}={t:?}"),
            };
        }
        s
    }
}

/// A float with as many decimals as its size warrants.
fn human_float(f: f64) -> String {
    match f.abs() {
        a if a >= 1000.0 => format!("{f:.0}"),
        a if a >= 10.0 => format!("{f:.1}"),
        _ => format!("{f:.2}"),
    }
}

/// Appends `t` as a JSON string.
fn json_string(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

/// Measures wall time and this process's CPU time over a phase, to tell
/// whether the load generator itself was the bottleneck.
pub struct CpuMeter {
    wall: Instant,
    cpu: Duration,
}

impl CpuMeter {
    pub fn start() -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            cpu: sys::cpu_time(),
        }
    }

    /// CPU used since start as a percentage of one core.
    pub fn percent(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        100.0 * (sys::cpu_time() - self.cpu).as_secs_f64() / wall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_human_lines() {
        let mut r = Report::new("echo");
        r.int("conns", 100usize)
            .float("msgs_per_sec", 1234.5678)
            .bool("ok", true)
            .text("note", "a \"b\"\n");
        assert_eq!(
            r.json(),
            r#"{"mode":"echo","conns":100,"msgs_per_sec":1234.568,"ok":true,"note":"a \"b\"\u000a"}"#
        );
        assert_eq!(
            r.human(),
            r#"# mode="echo" conns=100 msgs_per_sec=1235 ok=true note="a \"b\"\n""#
        );
        r.float("nan", f64::NAN);
        assert!(r.json().ends_with(r#""nan":null}"#));
    }
}
