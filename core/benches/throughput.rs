// criterion_group! and criterion_main! generate undocumented items.
#![allow(missing_docs)]
//! hubbub-core against tungstenite, both driving in-memory streams.
//!
//! * `decode`: the server reads masked client text messages (parse, unmask,
//!   UTF-8 validation, an owned message delivered). Both sides get the same
//!   wire bytes, copied out of a "socket" in reads of at most 64 KiB.
//! * `encode`: the server sends text messages, each written out to a `Vec`
//!   "socket" at once (tungstenite's `send` flushes; hubbub drains
//!   `transmit_slices` after each `send`).
//! * `mask`: `apply_mask` (feature `internals`) against a byte-at-a-time
//!   loop.
//!
//! After criterion's own output, a summary table gives messages/s, bytes/s
//! and the hubbub/tungstenite ratio for every pair measured in this run.
//!
//! Run with `cargo bench -p hubbub-core --features internals --bench
//! throughput`; filter as usual (`-- decode/hubbub`). For instruction counts, see `profile.rs`.

mod common;

use std::{
    hint::black_box,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use hubbub_core::internals::apply_mask;

use common::{naive_mask, workload, SIZES};

const LIBRARIES: [&str; 2] = ["hubbub", "tungstenite"];

fn messages(c: &mut Criterion, kind: &str) {
    let mut group = c.benchmark_group(kind);
    for (name, size, count) in SIZES {
        group.throughput(Throughput::Elements(count as u64));
        for library in LIBRARIES {
            group.bench_function(BenchmarkId::new(library, name), |b| {
                let mut work = workload(kind, library, size, count).expect("known workload");
                b.iter(|| work.run());
            });
        }
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    messages(c, "decode");
}

fn encode(c: &mut Criterion) {
    messages(c, "encode");
}

const MASK_SIZES: [(&str, usize); 4] = [
    ("20B", 20),
    ("1KiB", 1024),
    ("64KiB", 64 << 10),
    ("1MiB", 1 << 20),
];

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for (name, size) in MASK_SIZES {
        let mut buf: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let key = [0x37, 0xfa, 0x21, 0x3d];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("apply_mask", name), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(key)));
        });
        group.bench_function(BenchmarkId::new("naive", name), |b| {
            b.iter(|| naive_mask(black_box(&mut buf), black_box(key)));
        });
    }
    group.finish();
}

/// Where criterion writes its results: `<target>/criterion`, found from this
/// executable's path (`<target>/<profile>/deps/<bench>`).
fn criterion_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("bench binary lives in <target>/<profile>/deps");
    target.join("criterion")
}

fn config() -> Criterion {
    Criterion::default()
        .output_directory(&criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, encode, mask
}

/// Mean seconds per iteration of one benchmark, if this run measured it
/// (its estimates file is newer than `since`).
fn mean_seconds(group: &str, function: &str, param: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join(param)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let json = std::fs::read_to_string(path).ok()?;
    // {"mean":{"confidence_interval":{...},"point_estimate":<ns>,...},...}
    let mean = &json[json.find("\"mean\"")?..];
    let key = "\"point_estimate\":";
    let value = &mean[mean.find(key)? + key.len()..];
    let end = value.find([',', '}'])?;
    Some(value[..end].trim().parse::<f64>().ok()? * 1e-9)
}

fn summary(since: SystemTime) {
    let mut lines = Vec::new();
    for kind in ["decode", "encode"] {
        for (name, size, count) in SIZES {
            let (Some(ours), Some(theirs)) = (
                mean_seconds(kind, "hubbub", name, since),
                mean_seconds(kind, "tungstenite", name, since),
            ) else {
                continue;
            };
            let (ours, theirs) = (count as f64 / ours, count as f64 / theirs);
            lines.push(format!(
                "{kind} {name:>5} | hubbub {:>7.3} M msg/s {:>6.2} GB/s | \
                 tungstenite {:>7.3} M msg/s {:>6.2} GB/s | hubbub/tungstenite {:>5.2}x",
                ours / 1e6,
                ours * size as f64 / 1e9,
                theirs / 1e6,
                theirs * size as f64 / 1e9,
                ours / theirs
            ));
        }
    }
    for (name, size) in MASK_SIZES {
        let (Some(ours), Some(naive)) = (
            mean_seconds("mask", "apply_mask", name, since),
            mean_seconds("mask", "naive", name, since),
        ) else {
            continue;
        };
        lines.push(format!(
            "mask   {name:>5} | apply_mask {:>6.2} GB/s | naive {:>6.2} GB/s | apply_mask/naive {:>5.2}x",
            size as f64 / ours / 1e9,
            size as f64 / naive / 1e9,
            naive / ours
        ));
    }
    if !lines.is_empty() {
        println!("\nSummary (payload bytes, GB = 1e9 B; mean time per iteration):");
        for line in lines {
            println!("{line}");
        }
    }
}

fn main() {
    let start = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary(start);
}
