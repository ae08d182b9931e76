#!/usr/bin/env bash
# The soak run (documented, not in CI): mixed clients — connection churn,
# slow consumers, a message flood, pipelined HTTP, long polls and
# /ws/send — against the release `chat` for MINUTES, sampling the server's
# RSS, open descriptors (/proc/PID/fd) and WebSocket ping latency every
# SOAK_INTERVAL seconds into a CSV, then a summary (RSS first/last/max, fds
# first/last, ping p50/p99) that flags growth (exit 1).
#
#   scripts/soak.sh [MINUTES]          (default 30)
#
# Environment: SOAK_RUNTIME (tokio|smol|mio, default tokio), SOAK_INTERVAL
# (seconds, default 10), SOAK_CSV (default soak-RUNTIME.csv in the current
# directory). Loopback only; needs python3 (standard library) and Linux
# /proc. The clients are in scripts/soak.py.
set -euo pipefail
minutes="${1:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
runtime="${SOAK_RUNTIME:-tokio}"
csv="${SOAK_CSV:-$PWD/soak-$runtime.csv}"

(cd "$root" && cargo build --release --quiet -p hubbub-examples --bin chat)
target="${CARGO_TARGET_DIR:-$root/target}"
python3 "$root/scripts/soak.py" --runtime "$runtime" --bin-dir "$target/release" \
    --minutes "$minutes" --interval "${SOAK_INTERVAL:-10}" --csv "$csv"
