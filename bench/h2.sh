#!/usr/bin/env bash
# WebSockets over HTTP/2 (RFC 8441) against WebSockets over HTTP/1.1, with
# hubbub's client (bench/h2load) against hubbub's `echo` under TLS, on
# loopback only.
#
#   bench/h2.sh [--quick] [--runtimes tokio,smol,mio]
#
# For each runtime, three runs, each against a fresh server:
#   h2     SOCKETS WebSockets over HTTP/2, PER_CONN per connection
#          (SOCKETS / PER_CONN TLS connections), against `echo --h2`;
#   h1     SOCKETS WebSockets over HTTP/1.1, each its own TLS connection,
#          against the same `echo --h2` (a hub served by http2::start,
#          ALPN h2 and http/1.1 on one port: the same sessions, only the
#          protocol differs);
#   h1-plain  the same against `echo --tls-cert/--tls-key` without --h2
#          (the plain Server, no hub): the usual HTTP/1.1 figures.
# Figures: time to open all SOCKETS (client wall time, CONCURRENCY connects
# at once), the server's RSS per WebSocket (VmRSS once all are open, less
# VmRSS before the first, over SOCKETS), and the server's CPU time per
# echoed message (utime+stime from /proc/PID/stat around ECHOES echoes of a
# SIZE-byte text on every socket, one in flight per socket).
# The server runs pinned to CPU SERVER_CPU (0), the load to LOAD_CPU (1),
# as bench/run.sh does. The certificate is made for the run by
# scripts/test-certs.sh. Raw JSON lines go to $BENCH_OUT/h2.jsonl, the
# table to $BENCH_OUT/h2.md and stdout.
# Environment: SOCKETS (1000), PER_CONN (100), ECHOES (100; --quick 20),
# SIZE (32), CONCURRENCY (100), SERVER_CPU, LOAD_CPU, BENCH_OUT.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
RUNTIMES=(tokio smol mio)
QUICK=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --runtimes) shift; IFS=, read -r -a RUNTIMES <<<"${1:?--runtimes needs a list}" ;;
        *) echo "usage: $0 [--quick] [--runtimes tokio,smol,mio]" >&2; exit 2 ;;
    esac
    shift
done
SOCKETS=${SOCKETS:-1000}
PER_CONN=${PER_CONN:-100}
ECHOES=${ECHOES:-$([ "$QUICK" = 1 ] && echo 20 || echo 100)}
SIZE=${SIZE:-32}
CONCURRENCY=${CONCURRENCY:-100}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BENCH_OUT=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$BENCH_OUT"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
H2LOAD_TARGET=${CARGO_TARGET_DIR:-$HERE/h2load/target}
echo "== building echo and h2load (release)" >&2
(cd "$ROOT" && cargo build --release --quiet -p hubbub-examples --bin echo)
(cd "$HERE/h2load" && cargo build --release --quiet)
ECHO="$TARGET_DIR/release/echo"
H2LOAD="$H2LOAD_TARGET/release/h2load"

CERTS="$BENCH_OUT/certs"
bash "$ROOT/scripts/test-certs.sh" "$CERTS" >/dev/null

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

# start_server LOG ARGS...: echo on SERVER_CPU, port 0; sets SERVER_PID and PORT.
start_server() {
    local log=$1
    shift
    taskset -c "$SERVER_CPU" "$ECHO" --port 0 --tls-cert "$CERTS/server.pem" \
        --tls-key "$CERTS/server.key" "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "h2.sh: echo did not start:" >&2
    cat "$log" >&2
    exit 1
}

RESULTS="$BENCH_OUT/h2.jsonl"
: >"$RESULTS"
for RUNTIME in "${RUNTIMES[@]}"; do
    for RUN in h2 h1 h1-plain; do
        case "$RUN" in
            h2) MODE=h2; FLAGS=(--h2) ;;
            h1) MODE=h1; FLAGS=(--h2) ;;
            h1-plain) MODE=h1; FLAGS=() ;;
        esac
        start_server "$BENCH_OUT/echo-$RUNTIME-$RUN.log" --runtime "$RUNTIME" "${FLAGS[@]}"
        sleep 0.5
        echo "== $RUNTIME $RUN: $SOCKETS WebSockets, $ECHOES echoes each" >&2
        LINE=$(timeout 600 taskset -c "$LOAD_CPU" "$H2LOAD" --url "wss://127.0.0.1:$PORT/" \
            --ca "$CERTS/ca.pem" --server-pid "$SERVER_PID" --mode "$MODE" \
            --sockets "$SOCKETS" --per-conn "$PER_CONN" --echoes "$ECHOES" --size "$SIZE" \
            --concurrency "$CONCURRENCY")
        echo "{\"runtime\":\"$RUNTIME\",\"run\":\"$RUN\",${LINE#\{}" >>"$RESULTS"
        stop_server
    done
done

TABLE="$BENCH_OUT/h2.md"
python3 - "$RESULTS" >"$TABLE" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| runtime | run | TLS connections | open all (ms) | server RSS / WebSocket (KiB) | server CPU / echo (µs) |")
print("|---|---|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['runtime']} | {r['run']} | {r['connections']} | {r['open_ms']:.0f} | "
          f"{r['rss_per_ws_kib']:.1f} | {r['cpu_us_per_msg']:.2f} |")
PY
cat "$TABLE"
echo "raw: $RESULTS" >&2
