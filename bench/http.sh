#!/usr/bin/env bash
# HTTP benchmarks of hubbub's HTTP layer (the `chat` demo's HTTP port)
# against a hyper server written as hyper's examples are, in one run, on
# loopback only:
#
#   bench/http.sh [--quick]
#
# 1. requests per second with `wrk` (Debian package; installed with apt-get
#    when missing), one connection set per server, on `GET /api/health` and
#    `GET /index.html` (the chat page, a static file);
# 2. 1000 held long polls of one room released by one `POST /ws/send`: time
#    from the send to the last poll's answer (peers/src/bin/poll-release.rs).
#
# Each server runs pinned to CPU 0 (`taskset -c 0`), wrk (one thread) to
# CPU 1. Absolute numbers drift between runs: compare ratios within a run.
# Environment: SERVER_CPU (0), LOAD_CPU (1), BENCH_PORT (9400), CONNS (50),
# POLLS (1000).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
DUR=10
case "${1:-}" in
    --quick) DUR=3 ;;
    "") ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${BENCH_PORT:-9400}
CONNS=${CONNS:-50}
POLLS=${POLLS:-1000}
HUBBUB_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PUBLIC="$ROOT/examples/chat/public"
# The chat's SQLite history goes here, not into examples/chat/.
STORE_DIR=$(mktemp -d /tmp/hubbub-http-bench.XXXXXX)
ulimit -n 8192 2>/dev/null || true

if ! command -v wrk >/dev/null; then
    echo "installing wrk (apt-get)" >&2
    { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null
fi

(cd "$ROOT" && cargo build --release -q -p hubbub-examples --bin chat)
(cd "$HERE" && CARGO_TARGET_DIR="$HERE/target" cargo build --release -q -p peers --bin hyper-http --bin poll-release)

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$STORE_DIR"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    exit 1
}

start_hubbub() {
    (cd "$ROOT/examples/chat" && SERVER_HOST=127.0.0.1 SERVER_PORT=$PORT WEBSOCKET_HOST=127.0.0.1 \
        WEBSOCKET_PORT=$((PORT + 1)) PUBLIC_PATH="$PUBLIC" STORE_PATH="$STORE_DIR/chat.db" \
        exec taskset -c "$SERVER_CPU" "$HUBBUB_TARGET/release/chat" >/dev/null) &
    SERVER_PID=$!
    wait_port "$PORT"
}

start_hyper() {
    taskset -c "$SERVER_CPU" "$HERE/target/release/hyper-http" "$PORT" "$PUBLIC" >/dev/null &
    SERVER_PID=$!
    wait_port "$PORT"
}

# wrk's requests/s for PATH on the running server.
rps() {
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$PORT$1" \
        | awk '/Requests\/sec/ {print $2}'
}

declare -A RESULT
for server in hubbub hyper; do
    "start_$server"
    # Warm-up, then the measured runs.
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/api/health" >/dev/null
    RESULT[$server,health]=$(rps /api/health)
    RESULT[$server,static]=$(rps /index.html)
    stop_server
done

printf '\n%-22s %12s %12s %8s\n' "workload ($CONNS conns)" hubbub hyper ratio
for w in health static; do
    h=${RESULT[hubbub,$w]}; p=${RESULT[hyper,$w]}
    printf '%-22s %12s %12s %8s\n' "$w req/s" "$h" "$p" "$(awk -v a="$h" -v b="$p" 'BEGIN {printf "%.2f", a / b}')"
done

start_hubbub
echo
taskset -c "$LOAD_CPU" "$HERE/target/release/poll-release" "127.0.0.1:$PORT" "$POLLS"
stop_server
