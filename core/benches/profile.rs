//! Fixed-count runs of the `throughput` workloads, for instruction counts
//! that repeat exactly (criterion's time-based loops do not):
//!
//! ```text
//! cargo bench -p hubbub-core --bench profile --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/deps/profile-<hash> decode hubbub 20 1000 10
//! callgrind_annotate --inclusive=yes cg.out | head -40
//! ```
//!
//! Arguments: `decode|encode hubbub|tungstenite SIZE COUNT [ITERATIONS]`;
//! one warm-up iteration is run (and counted) before ITERATIONS (default 10)
//! more. It prints the total messages handled. Run without arguments (as
//! `cargo bench` does) it does nothing.

mod common;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [kind, library, size, count, rest @ ..] = &args[..] else {
        eprintln!("usage: profile decode|encode hubbub|tungstenite SIZE COUNT [ITERATIONS]");
        return;
    };
    let size: usize = size.parse().expect("SIZE");
    let count: usize = count.parse().expect("COUNT");
    let iterations: usize = rest.first().map_or(10, |n| n.parse().expect("ITERATIONS"));
    let mut work = common::workload(kind, library, size, count).expect("unknown workload");
    for _ in 0..=iterations {
        work.run();
    }
    println!(
        "{kind} {library}: {} messages of {size} B",
        (iterations + 1) * count
    );
}
