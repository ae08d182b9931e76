#!/usr/bin/env bash
# Benchmarks hubbub's `echo` on each of its runtimes against peer servers
# written as their crates' examples are (tokio-tungstenite, fastwebsockets,
# yawc; uWebSockets.js on node, `uws`), on loopback only.
#
#   bench/run.sh [--quick] [--deflate | --tls] [--servers a,b,c]
#
# One table column per server of SERVERS (default: hubbub hubbub-smol
# hubbub-mio tungstenite fastwebsockets; `--servers` picks others, in that
# order, also from yawc and uws): hubbub is `echo` on tokio, hubbub-smol and
# hubbub-mio the same binary with `--runtime smol` / `--runtime mio`; yawc
# is the yawc-echo peer, uws is peers/uws/echo.mjs (uWebSockets.js through
# the npm package uws-pack, pinned in peers/uws/package.json) run by
# `node`; its node_modules are installed with `npm ci` when missing. A
# server that does not start (say "runtime mio is not available yet") is
# left out of the table with a note. Ratio columns: each hubbub column
# against tokio-tungstenite, the first hubbub column against fastwebsockets
# and against uws; with no peer in the list, each hubbub column against the
# first.
#
# Each server runs pinned to CPU 0 (`taskset -c 0`), the single-threaded load
# generator to CPU 1, one fresh server process per workload; workloads run
# row by row, each on every server in turn. The server's CPU
# time (utime+stime from /proc/PID/stat: the whole process, every thread of
# it, which matters for node's helper threads; taskset's affinity is
# inherited by all of them) is read before and after each run and
# divided by the messages (or handshakes, deliveries) the load generator
# counted; RSS comes from /proc/PID/status. Raw JSON lines are kept in
# $BENCH_OUT/results.jsonl, the table also as Markdown in $BENCH_OUT/table.md.
#
# The `rooms` row needs a room protocol: on hubbub runtimes it runs against
# the `chat` example (its rooms, examples/README.md: room.join / chat.message; each
# message is stored in SQLite, in $BENCH_OUT, before it is delivered); the
# peers have no rooms and leave it empty.
#
# --deflate: hubbub alone, permessage-deflate against itself uncompressed:
# three `echo` servers (plain, --deflate, --deflate-takeover) on 1 KiB
# JSON-like echo and broadcast, the load generator with --deflate on for
# the compressed ones; the columns are then plain / deflate / takeover.
# --tls: every server speaks TLS (wss://) with a certificate made for the
# run by scripts/test-certs.sh (a P-256 CA and a server certificate for
# 127.0.0.1, in $BENCH_OUT/certs): hubbub's `echo --tls-cert/--tls-key` on each runtime and
# tokio-tungstenite behind tokio-rustls (fastwebsockets has no TLS in its
# examples and is left out); the load generator runs rustls (`--tls-ca`).
# Rows: idle memory, 20 B and 1 KiB echo, and TLS handshakes (full
# handshake + upgrade + close per connection).
# --quick: 3 s runs (smoke test). Environment: BENCH_DURATION (seconds per
# timed run: 10, --quick 3), SERVER_CPU (0), LOAD_CPU (1),
# BENCH_OUT (a new temporary directory), BENCH_PORT (base port, 9300),
# RETRY_ABOVE (15: a row during which other processes used more than this %
# of a core is run once more, and the quieter run kept), BENCH_ROUNDS (1:
# with N, every throughput row runs N times on each server, the servers in
# turn, and each server keeps the run of its median server CPU).
# Absolute numbers drift 10-15 % between runs: compare ratios within a run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
USAGE="usage: $0 [--quick] [--deflate | --tls] [--servers a,b,c]"
QUICK=0
DEFLATE=0
TLS=0
SERVERS=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --deflate) DEFLATE=1 ;;
        --tls) TLS=1 ;;
        --servers=*) IFS=, read -r -a SERVERS <<<"${1#--servers=}" ;;
        --servers)
            [ "$#" -ge 2 ] || { echo "$USAGE" >&2; exit 2; }
            IFS=, read -r -a SERVERS <<<"$2"; shift ;;
        *) echo "$USAGE" >&2; exit 2 ;;
    esac
    shift
done

DUR=10; HOLD=2; MESSAGES=2000
if [ "$QUICK" = 1 ]; then DUR=3; HOLD=1; MESSAGES=500; fi
DUR=${BENCH_DURATION:-$DUR}
# The broadcast runs end when every delivery arrived; this only caps them.
BROADCAST_CAP=20
# Rerun a row when other processes used more than this % of a core meanwhile.
RETRY_ABOVE=${RETRY_ABOVE:-15}
ROUNDS=${BENCH_ROUNDS:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${BENCH_PORT:-9300}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/hubbub-bench.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

LOADGEN="$HERE/target/release/loadgen"
HUBBUB_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ECHO="$HUBBUB_TARGET/release/echo"
CHAT="$HUBBUB_TARGET/release/chat"

# ------------------------------------------------------------- the servers
# RUNTIME: hubbub servers (the `--runtime` of `echo` and `chat`); anything
# else is a peer. ECHO_FLAGS / LOAD_FLAGS: extra server and load generator
# arguments. HEAD / SHORT: the column and ratio headings.
declare -A RUNTIME=(
    [hubbub]=tokio [hubbub-smol]=smol [hubbub-mio]=mio
    [plain]=tokio [deflate]=tokio [takeover]=tokio
)
declare -A PEER_BIN=(
    [tungstenite]="$HERE/target/release/tungstenite-echo"
    [fastwebsockets]="$HERE/target/release/fastwebsockets-echo"
    [yawc]="$HERE/target/release/yawc-echo"
)
# uWebSockets.js: a node script, its package pinned in peers/uws/package.json.
UWS_DIR="$HERE/peers/uws"
NODE=${NODE:-node}
declare -A ECHO_FLAGS=([deflate]="--deflate" [takeover]="--deflate-takeover")
declare -A LOAD_FLAGS=([deflate]="--deflate on" [takeover]="--deflate on")
declare -A HEAD=(
    [hubbub]=hubbub [hubbub-smol]=hub-smol [hubbub-mio]=hub-mio
    [tungstenite]=tungstenite [fastwebsockets]=fastws [yawc]=yawc [uws]=uws
    [plain]=plain [deflate]=deflate [takeover]=takeover
)
declare -A SHORT=(
    [hubbub]=hub [hubbub-smol]=smol [hubbub-mio]=mio
    [tungstenite]=tung [fastwebsockets]=fws [yawc]=yawc [uws]=uws
    [plain]=plain [deflate]=defl [takeover]=take
)
if [ "${#SERVERS[@]}" = 0 ]; then
    if [ "$DEFLATE" = 1 ]; then
        SERVERS=(plain deflate takeover)
    elif [ "$TLS" = 1 ]; then
        SERVERS=(hubbub hubbub-smol hubbub-mio tungstenite)
    else
        SERVERS=(hubbub hubbub-smol hubbub-mio tungstenite fastwebsockets)
    fi
fi
declare -A SEEN=()
for server in "${SERVERS[@]}"; do
    if [ -z "${HEAD[$server]:-}" ]; then
        echo "unknown server ${server@Q}: expected one of: hubbub hubbub-smol hubbub-mio tungstenite fastwebsockets yawc uws plain deflate takeover" >&2
        exit 2
    fi
    if [ -n "${SEEN[$server]:-}" ]; then echo "server $server given twice" >&2; exit 2; fi
    SEEN[$server]=1
done
is_hubbub() { [ -n "${RUNTIME[$1]:-}" ]; }
if [ "$DEFLATE" = 1 ] && [ "$TLS" = 1 ]; then echo "--deflate and --tls are separate runs" >&2; exit 2; fi

# --tls: a CA and a server certificate for 127.0.0.1 (P-256), made for this run.
TLS_SERVER=()
TLS_LOAD=()
if [ "$TLS" = 1 ]; then
    bash "$ROOT/scripts/test-certs.sh" "$OUT/certs" >/dev/null
    TLS_SERVER=(--tls-cert "$OUT/certs/server.pem" --tls-key "$OUT/certs/server.key")
    TLS_LOAD=(--tls-ca "$OUT/certs/ca.pem")
fi

# ---------------------------------------------------------------- cleanup
SERVER_PID=""
LOADGEN_PID=""
cleanup() {
    if [ -n "$LOADGEN_PID" ]; then kill "$LOADGEN_PID" 2>/dev/null || true; fi
    stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# --------------------------------------------------------------- /proc readers
# utime+stime in clock ticks (fields 14 and 15; the command name in field 2
# is skipped by cutting at its closing parenthesis).
# Prints 0 when the process is gone.
cpu_ticks() { { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null || true; } | awk '{t = $12 + $13} END {print t + 0}'; }
# A /proc/PID/status field in KiB (VmRSS, VmHWM); 0 when the process is gone.
status_kib() { { cat "/proc/$1/status" 2>/dev/null || true; } | awk -v k="$2:" '$1 == k {v = $2} END {print v + 0}'; }
# Busy ticks of all CPUs (user, nice, system, irq, softirq, steal).
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# CPU ticks of this shell's reaped children (the load generator runs).
child_ticks() { sed 's/^.*) //' "/proc/$$/stat" | awk '{print $14 + $15}'; }
# A field of a flat JSON line: numbers as they are, strings unquoted.
jget() { sed -n "s/.*\"$2\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" <<<"$1" | tr -d '"'; }

# ---------------------------------------------------------------- servers
# server_command NAME ROW [ARGS...]: sets CMD to the command line of NAME's
# server for ROW on PORT (the `chat` example for `rooms`, configured through
# its environment; otherwise `echo` or the peer, with ARGS).
server_command() {
    local name=$1 row=$2; shift 2
    if [ "$row" = rooms ]; then
        # Both listeners on loopback, HTTP on any free port, a fresh history
        # file; run in $OUT, where there is no .env.
        CMD=(env SERVER_HOST=127.0.0.1 SERVER_PORT=0 WEBSOCKET_HOST=127.0.0.1 "WEBSOCKET_PORT=$PORT"
            "PUBLIC_PATH=$ROOT/examples/chat/public" "STORE_PATH=$OUT/chat.$PORT.db"
            "$CHAT" --runtime "${RUNTIME[$name]}")
    elif is_hubbub "$name"; then
        # shellcheck disable=SC2206  # the flags are words
        CMD=("$ECHO" --port "$PORT" --runtime "${RUNTIME[$name]}" ${ECHO_FLAGS[$name]:-} "${TLS_SERVER[@]}" "$@")
    elif [ "$name" = uws ]; then
        CMD=("$NODE" "$UWS_DIR/echo.mjs" --port "$PORT" "${TLS_SERVER[@]}" "$@")
    else
        CMD=("${PEER_BIN[$name]}" --port "$PORT" "${TLS_SERVER[@]}" "$@")
    fi
}

# start_server NAME ROW [ARGS...]: starts NAME's server for ROW pinned to
# SERVER_CPU on a fresh port and waits (at most 10 s) for its `listening`
# line. On failure returns 1 with the server's output in SERVER_ERROR.
start_server() {
    local name=$1 row=$2; shift 2
    PORT=$((PORT + 1))
    SERVER_LOG="$OUT/$name.$row.$PORT.log"
    server_command "$name" "$row" "$@"
    (cd "$OUT" && exec taskset -c "$SERVER_CPU" "${CMD[@]}") >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    local _
    for _ in $(seq 100); do
        if grep -qs listening "$SERVER_LOG"; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            SERVER_ERROR=$(tr '\n' ' ' <"$SERVER_LOG")
            return 1
        fi
        sleep 0.1
    done
    SERVER_ERROR="no 'listening' line within 10 s"
    stop_server
    return 1
}

# Stops the current server: SIGTERM, then SIGKILL after 5 s.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local _
    for _ in $(seq 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
# ---------------------------------------------------------------- results
declare -A R   # R[server|row|metric] = value
# What one throughput run records.
METRICS="rate cpu rss p99 lg other lost"
NOTES=()

# record SERVER ROW KEY VALUE
record() { R["$1|$2|$3"]=$4; }

# Runs the load generator pinned to LOAD_CPU against the current server;
# prints its JSON line. A hard `timeout` backs its own watchdog.
loadgen() {
    local line rc=0
    line=$(timeout -k 5 300 taskset -c "$LOAD_CPU" "$LOADGEN" "$@" "${TLS_LOAD[@]}" --port "$PORT" | grep '^{') || rc=$?
    printf '%s\n' "$line"
    return "$rc"
}

# measure SERVER ROW COUNT_FIELD LOADGEN_ARGS...: one throughput run; records
# rate, server CPU per counted item, peak RSS and the loadgen's own CPU.
measure() {
    local server=$1 row=$2 count_field=$3 rate_field=$4; shift 4
    local t0 t1 b0 b1 c0 c1 w0 w1 json rc=0
    t0=$(cpu_ticks "$SERVER_PID"); b0=$(busy_ticks); c0=$(child_ticks); w0=$(date +%s%N)
    # shellcheck disable=SC2086  # the flags are words
    json=$(loadgen "$@" ${LOAD_FLAGS[$server]:-}) || rc=$?
    t1=$(cpu_ticks "$SERVER_PID"); b1=$(busy_ticks); c1=$(child_ticks); w1=$(date +%s%N)
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        NOTES+=("$server $row: the server died during the run ($(tail -n 1 "$SERVER_LOG"))")
        return 0
    fi
    printf '{"server":"%s","row":"%s","server_cpu_ticks":%s,"server_hwm_kib":%s,"result":%s}\n' \
        "$server" "$row" "$((t1 - t0))" "$(status_kib "$SERVER_PID" VmHWM)" "${json:-null}" >>"$RESULTS"
    if [ -z "$json" ]; then
        NOTES+=("$server $row: load generator failed (status $rc)")
        return 0
    fi
    if [ "$(jget "$json" supported)" = false ]; then
        NOTES+=("$server $row: $(jget "$json" note)")
        return 0
    fi
    local count rate
    count=$(jget "$json" "$count_field")
    rate=$(jget "$json" "$rate_field")
    record "$server" "$row" rate "$rate"
    record "$server" "$row" cpu "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$count" \
        'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n }')"
    record "$server" "$row" rss "$(awk -v k="$(status_kib "$SERVER_PID" VmHWM)" 'BEGIN { printf "%.1f", k / 1024 }')"
    record "$server" "$row" p99 "$(jget "$json" p99_us)"
    record "$server" "$row" lg "$(jget "$json" client_cpu_pct)"
    # CPU used by anything but this server and the load generator, in % of
    # one core over the run: how noisy the machine was.
    record "$server" "$row" other "$(awk -v b=$((b1 - b0)) -v s=$((t1 - t0)) -v c=$((c1 - c0)) \
        -v ns=$((w1 - w0)) -v hz="$CLK_TCK" 'BEGIN { o = b - s - c; if (o < 0) o = 0; printf "%.0f", 100 * o / hz / (ns / 1e9) }')"
    record "$server" "$row" lost "$(jget "$json" lost)"
    local first_error ended mismatched
    first_error=$(jget "$json" first_error)
    if [ -n "$first_error" ]; then NOTES+=("$server $row: $first_error"); fi
    mismatched=$(jget "$json" mismatched)
    if [ -n "$mismatched" ] && [ "$mismatched" != 0 ]; then
        NOTES+=("$server $row: $mismatched echoes differed in opcode or length")
    fi
    ended=$(jget "$json" ended)
    if [ -n "$ended" ] && [ "$ended" != complete ]; then
        NOTES+=("$server $row: ended by $ended with $(jget "$json" delivered) of $(jget "$json" expected) delivered")
    fi
}

# idle SERVER: holds 10 000 connections; RSS growth per connection.
measure_idle() {
    local server=$1 conns=10000
    local out="$OUT/idle.$server.out" rss0 rss1 json _
    sleep 0.2
    rss0=$(status_kib "$SERVER_PID" VmRSS)
    timeout -k 5 120 taskset -c "$LOAD_CPU" "$LOADGEN" idle --conns "$conns" --hold "$HOLD" \
        "${TLS_LOAD[@]}" --port "$PORT" >"$out" 2>&1 &
    LOADGEN_PID=$!
    for _ in $(seq 600); do
        grep -q holding "$out" && break
        kill -0 "$LOADGEN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if grep -q holding "$out"; then
        sleep 0.5   # let the server settle (buffers released after the upgrade)
        rss1=$(status_kib "$SERVER_PID" VmRSS)
    fi
    wait "$LOADGEN_PID" || true
    LOADGEN_PID=""
    json=$(grep '^{' "$out" || true)
    printf '{"server":"%s","row":"idle","rss_before_kib":%s,"rss_holding_kib":%s,"result":%s}\n' \
        "$server" "$rss0" "${rss1:-null}" "${json:-null}" >>"$RESULTS"
    if [ -z "${rss1:-}" ] || [ -z "$json" ]; then
        NOTES+=("$server idle: $(tail -n 2 "$out" | tr '\n' ' ')")
        return 0
    fi
    local established
    established=$(jget "$json" established)
    record "$server" idle rss "$(awk -v a="$rss0" -v b="$rss1" -v n="$established" \
        'BEGIN { if (n > 0) printf "%.2f", (b - a) / n }')"
    record "$server" idle established "$established"
    record "$server" idle lg "$(jget "$json" client_cpu_pct)"
    if [ "$established" != "$conns" ]; then
        NOTES+=("$server idle: only $established of $conns connections ($(jget "$json" first_error))")
    fi
}

# ---------------------------------------------------------------- build
log "== building (release)"
(cd "$ROOT" && cargo build --release --quiet -p hubbub-examples --bin echo --bin chat)
(cd "$HERE" && CARGO_TARGET_DIR="$HERE/target" cargo build --release --quiet -p loadgen -p peers)
if [ -n "${SEEN[uws]:-}" ]; then
    # uWebSockets.js from the npm registry, the version of package-lock.json.
    if ! command -v "$NODE" >/dev/null || ! command -v npm >/dev/null; then
        log "warning: uws needs node and npm (not found); it will be left out"
    elif [ ! -d "$UWS_DIR/node_modules/uws-pack" ]; then
        log "== installing uWebSockets.js (npm ci in bench/peers/uws)"
        (cd "$UWS_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
            log "warning: npm ci failed in bench/peers/uws; uws will be left out"
    fi
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(nproc)" -lt 2 ]; then log "warning: fewer than 2 CPUs; server and load generator share one"; fi
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

# ---------------------------------------------------------------- runs
ECHO_ROWS=(echo20 echo1k echo64k)
declare -A ECHO_ARGS=(
    [echo20]="--conns 100 --inflight 1 --size 20"
    [echo1k]="--conns 10 --inflight 64 --size 1024"
    [echo64k]="--conns 1 --inflight 1 --size 65536"
)
# run_row SERVER ROW [SERVER_ARGS...] -- MEASURE_ARGS...: a fresh server, one
# measured run, stop. When other processes used more than RETRY_ABOVE % of a
# core meanwhile, the row is run once more and the quieter run is kept.
# Returns 1 when the server did not start.
run_row() {
    local server=$1 row=$2; shift 2
    local server_args=()
    while [ "$1" != -- ]; do server_args+=("$1"); shift; done
    shift
    local attempt k other best_other=""
    local -A best=()
    for attempt in 1 2; do
        log "== $server: $row$([ "$attempt" = 2 ] && echo " (again)")"
        if ! start_server "$server" "$row" "${server_args[@]}"; then
            NOTES+=("$server $row: server did not start: $SERVER_ERROR")
            return 1
        fi
        measure "$server" "$row" "$@"
        stop_server
        other=${R["$server|$row|other"]:-0}
        if [ -n "$best_other" ] && [ "$best_other" -le "$other" ]; then
            for k in "${!best[@]}"; do R["$server|$row|$k"]=${best[$k]}; done
            other=$best_other
        fi
        if [ "$other" -le "$RETRY_ABOVE" ] || [ "$attempt" = 2 ]; then break; fi
        for k in $METRICS; do best[$k]=${R["$server|$row|$k"]:-}; done
        best_other=$other
        log "   (other processes used $other % of a core: once more)"
    done
    if [ "$other" -gt "$RETRY_ABOVE" ]; then NOTES+=("$server $row: noisy, other processes used $other % of a core"); fi
    return 0
}

# each_server ROW ONLY_HUBBUB [SERVER_ARGS...] -- MEASURE_ARGS...: run_row
# on every server shown (hubbub's alone when ONLY_HUBBUB is 1), in turn,
# ROUNDS times; each server keeps the round of its median server CPU.
each_server() {
    local row=$1 only_hubbub=$2; shift 2
    local round server k median
    local -A kept=()
    for ((round = 1; round <= ROUNDS; round++)); do
        for server in "${SHOWN[@]}"; do
            if [ "$only_hubbub" = 1 ] && ! is_hubbub "$server"; then continue; fi
            if [ "$ROUNDS" -gt 1 ]; then log "== round $round of $ROUNDS"; fi
            for k in $METRICS; do unset -v 'R[$server|$row|$k]'; done
            run_row "$server" "$row" "$@" || true
            for k in $METRICS; do kept["$server|$round|$k"]=${R["$server|$row|$k"]:-}; done
        done
    done
    if [ "$ROUNDS" -gt 1 ]; then
        for server in "${SHOWN[@]}"; do
            median=$(for ((round = 1; round <= ROUNDS; round++)); do
                k=${kept["$server|$round|cpu"]:-}
                if [ -n "$k" ]; then echo "$k $round"; fi
            done | sort -g | awk '{ r[NR] = $2 } END { if (NR) print r[int((NR + 1) / 2)] }')
            if [ -z "$median" ]; then continue; fi
            for k in $METRICS; do
                if [ -n "${kept["$server|$median|$k"]}" ]; then R["$server|$row|$k"]=${kept["$server|$median|$k"]}; fi
            done
        done
    fi
}

# The idle row on a fresh server, which also tells whether SERVER runs at
# all: returns 1 (with a note) when it does not start, e.g. a runtime this
# build does not have yet.
run_idle() {
    local server=$1
    log "== $server: idle"
    if ! start_server "$server" idle; then
        NOTES+=("$server: left out, the server did not start: $SERVER_ERROR")
        return 1
    fi
    measure_idle "$server"
    stop_server
}

START=$(date +%s)
SHOWN=()   # the servers that ran, in SERVERS order
if [ "$DEFLATE" = 1 ]; then
    for server in "${SERVERS[@]}"; do
        # A probe start, so that a missing runtime is one note, not two.
        log "== $server: starting"
        if ! start_server "$server" zecho; then
            NOTES+=("$server: left out, the server did not start: $SERVER_ERROR")
            continue
        fi
        stop_server
        SHOWN+=("$server")
    done
    each_server zecho 0 -- msgs msgs_per_sec echo --conns 100 --inflight 8 --size 1024 --duration "$DUR"
    each_server zbroadcast 0 --broadcast -- delivered deliveries_per_sec broadcast --subscribers 200 \
        --messages "$MESSAGES" --size 1024 --duration "$BROADCAST_CAP"
elif [ "$TLS" = 1 ]; then
    for server in "${SERVERS[@]}"; do
        if run_idle "$server"; then SHOWN+=("$server"); fi
    done
    for row in echo20 echo1k; do
        # shellcheck disable=SC2086  # the arguments are words
        each_server "$row" 0 -- msgs msgs_per_sec echo ${ECHO_ARGS[$row]} --duration "$DUR"
    done
    each_server handshakes 0 -- handshakes handshakes_per_sec handshakes --conns 50 --duration "$DUR"
else
    # Row by row, every server in turn: the machine's slow and fast spells
    # then fall on the servers of a row alike, not on one server's column.
    for server in "${SERVERS[@]}"; do
        if run_idle "$server"; then SHOWN+=("$server"); fi
    done
    for row in "${ECHO_ROWS[@]}"; do
        # shellcheck disable=SC2086  # the arguments are words
        each_server "$row" 0 -- msgs msgs_per_sec echo ${ECHO_ARGS[$row]} --duration "$DUR"
    done
    each_server handshakes 0 -- handshakes handshakes_per_sec handshakes --conns 50 --duration "$DUR"
    each_server broadcast 0 --broadcast -- delivered deliveries_per_sec broadcast --subscribers 1000 \
        --messages "$MESSAGES" --size 64 --duration "$BROADCAST_CAP"
    each_server rooms 1 -- delivered deliveries_per_sec broadcast --subscribers 10000 \
        --messages "$MESSAGES" --size 64 --rooms 100 --duration "$BROADCAST_CAP"
fi
ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- table
# cell SERVER ROW METRIC: the value or "-".
cell() { local v=${R["$1|$2|$3"]:-}; printf '%s' "${v:--}"; }
# ratio A B: A/B to two decimals, or "-".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# human N: 1234567 -> 1.23 M, 12345 -> 12.3 k, 1234.5 -> 1235.
human() {
    awk -v n="$1" 'BEGIN {
        if (n == "-") print "-";
        else if (n >= 1e6) printf "%.2f M", n / 1e6;
        else if (n >= 1e4) printf "%.1f k", n / 1e3;
        else printf "%.0f", n }'
}
# whole N: rounded to an integer.
whole() { awk -v n="$1" 'BEGIN { if (n == "-") print "-"; else printf "%.0f", n }'; }
# marks SERVER ROW: "*" when the load generator used >= 90 % of its CPU in
# that run (the rate is then limited by the load generator too), "~" when
# other processes used more than RETRY_ABOVE % of a core (noisy).
marks() {
    awk -v c="${R["$1|$2|lg"]:-0}" -v o="${R["$1|$2|other"]:-0}" -v r="$RETRY_ABOVE" \
        'BEGIN { if (c >= 90) printf "*"; if (o > r) printf "~" }'
}
# with_other SERVER ROW LG: "loadgen % / other %".
with_other() {
    [ "$3" = - ] && { printf -- -; return; }
    printf '%s / %s' "$(whole "$3")" "${R["$1|$2|other"]:--}"
}
# pad TEXT WIDTH: TEXT left-aligned in WIDTH characters (not bytes: µ).
pad() {
    local n
    n=$(printf '%s' "$1" | LC_ALL=C.UTF-8 wc -m)
    printf '%s%*s' "$1" $(($2 > n ? $2 - n : 0)) ""
}

declare -A LABEL=(
    [echo20]="echo, 100 conns x 1 in flight x 20 B"
    [echo1k]="echo, 10 conns x 64 pipelined x 1 KiB"
    [echo64k]="echo, 1 conn x 64 KiB"
    [idle]="10 000 idle connections"
    [handshakes]="handshakes, 50 parallel"
    [broadcast]="broadcast, 1000 subscribers x $MESSAGES x 64 B"
    [rooms]="rooms, 10 000 subscribers in 100 rooms x $MESSAGES x 64 B (hubbub: the chat example, SQLite-stored)"
    [zecho]="echo, 100 conns x 8 in flight x 1 KiB JSON"
    [zbroadcast]="broadcast, 200 subscribers x $MESSAGES x 1 KiB JSON"
)
# ROW METRIC UNIT-LABEL FORMAT (h: 1.2 M / 12.3 k, i: integer, p: as
# recorded, o: loadgen / other CPU)
TABLE=(
    "echo20 rate msg/s h" "echo20 cpu µs-server-CPU/msg p" "echo20 p99 p99-latency-µs i" "echo20 lg loadgen/other-CPU-% o"
    "echo1k rate msg/s h" "echo1k cpu µs-server-CPU/msg p" "echo1k lg loadgen/other-CPU-% o"
    "echo64k rate msg/s h" "echo64k cpu µs-server-CPU/msg p" "echo64k lg loadgen/other-CPU-% o"
    "idle rss KiB-RSS/conn p"
    "handshakes rate handshakes/s h" "handshakes cpu µs-server-CPU/handshake p" "handshakes lg loadgen/other-CPU-% o"
    "broadcast rate deliveries/s h" "broadcast cpu µs-server-CPU/delivery p" "broadcast lost lost p"
    "broadcast rss peak-RSS-MiB p" "broadcast lg loadgen/other-CPU-% o"
    "rooms rate deliveries/s h" "rooms lost lost p" "rooms rss peak-RSS-MiB p" "rooms lg loadgen/other-CPU-% o"
)
if [ "$DEFLATE" = 1 ]; then
    TABLE=(
        "zecho rate msg/s h" "zecho cpu µs-server-CPU/msg p" "zecho rss peak-RSS-MiB p"
        "zecho lg loadgen/other-CPU-% o"
        "zbroadcast rate deliveries/s h" "zbroadcast cpu µs-server-CPU/delivery p" "zbroadcast lost lost p"
        "zbroadcast rss peak-RSS-MiB p" "zbroadcast lg loadgen/other-CPU-% o"
    )
fi
if [ "$TLS" = 1 ]; then
    TABLE=(
        "echo20 rate msg/s h" "echo20 cpu µs-server-CPU/msg p" "echo20 p99 p99-latency-µs i" "echo20 lg loadgen/other-CPU-% o"
        "echo1k rate msg/s h" "echo1k cpu µs-server-CPU/msg p" "echo1k lg loadgen/other-CPU-% o"
        "idle rss KiB-RSS/conn p"
        "handshakes rate handshakes/s h" "handshakes cpu µs-server-CPU/handshake p" "handshakes lg loadgen/other-CPU-% o"
    )
fi

# The ratio columns, "A B" for A/B: each hubbub column against
# tokio-tungstenite, the first hubbub column against fastwebsockets and
# against uWebSockets.js; with no
# peer, each hubbub column against the first.
HUBS=(); PEERS=()
for server in "${SHOWN[@]}"; do
    if is_hubbub "$server"; then HUBS+=("$server"); else PEERS+=("$server"); fi
done
RATIOS=()
if [[ " ${PEERS[*]} " == *" tungstenite "* ]]; then
    for h in "${HUBS[@]}"; do RATIOS+=("$h tungstenite"); done
fi
if [ "${#HUBS[@]}" -gt 0 ] && [[ " ${PEERS[*]} " == *" fastwebsockets "* ]]; then
    RATIOS+=("${HUBS[0]} fastwebsockets")
fi
if [ "${#HUBS[@]}" -gt 0 ] && [[ " ${PEERS[*]} " == *" uws "* ]]; then
    RATIOS+=("${HUBS[0]} uws")
fi
if [ "${#PEERS[@]}" = 0 ] && [ "${#HUBS[@]}" -gt 1 ]; then
    for h in "${HUBS[@]:1}"; do RATIOS+=("$h ${HUBS[0]}"); done
fi

MD="$OUT/table.md"
COMMAND=bench/run.sh
if [ "$QUICK" = 1 ]; then COMMAND+=" --quick"; fi
if [ "$DEFLATE" = 1 ]; then COMMAND+=" --deflate"; fi
if [ "$TLS" = 1 ]; then COMMAND+=" --tls"; fi
COMMAND+=" --servers $(IFS=,; echo "${SERVERS[*]}")"
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
# emit LABEL-OR-METRIC MD-WORKLOAD MD-METRIC VALUES...: one table line, as
# text on stdout and as Markdown in $MD.
emit() {
    local text=$1 mdw=$2 mdm=$3; shift 3
    local v line
    line=$(pad "$text" 34)
    for v in "$@"; do line+=$(printf ' %11s' "$v"); done
    printf '%s\n' "$line"
    line="| $mdw | $mdm |"
    for v in "$@"; do line+=" $v |"; done
    printf '%s\n' "$line" >>"$MD"
}

{
    printf '\nhubbub benchmark — %s, %s s runs (%s per row and server, the median kept), server on CPU %s, loadgen on CPU %s, load average %s before, %s after\n' \
        "$(date -u +%Y-%m-%dT%H:%MZ)" "$DUR" "$ROUNDS" "$SERVER_CPU" "$LOAD_CPU" "$LOAD_BEFORE" "$LOAD_AFTER"
    printf 'command: %s   (raw results: %s, Markdown: %s)\n\n' "$COMMAND" "$RESULTS" "$MD"
} | tee "$MD"
HEADINGS=()
for server in "${SHOWN[@]}"; do HEADINGS+=("${HEAD[$server]}"); done
for pair in "${RATIOS[@]}"; do
    read -r a b <<<"$pair"
    HEADINGS+=("${SHORT[$a]}/${SHORT[$b]}")
done
emit "" workload metric "${HEADINGS[@]}"
seps=(); for _ in "${HEADINGS[@]}"; do seps+=(---); done
printf '|---|---|%s\n' "$(printf -- '%s|' "${seps[@]}")" >>"$MD"
last_row=""
for spec in "${TABLE[@]}"; do
    read -r row metric unit fmt <<<"$spec"
    declare -A raw=()
    values=(); any=""
    for server in "${SHOWN[@]}"; do
        raw[$server]=$(cell "$server" "$row" "$metric")
        [ "${raw[$server]}" = - ] || any=1
    done
    [ -z "$any" ] && [ "$metric" != rate ] && [ "$metric" != rss ] && continue
    for server in "${SHOWN[@]}"; do
        v=${raw[$server]}
        case $fmt in
            h) v=$(human "$v") ;;
            i) v=$(whole "$v") ;;
            o) v=$(with_other "$server" "$row" "$v") ;;
        esac
        if [ "$metric" = rate ] && [ "$v" != - ]; then v+=$(marks "$server" "$row"); fi
        values+=("$v")
    done
    for pair in "${RATIOS[@]}"; do
        read -r a b <<<"$pair"
        case $metric in
            lg|lost|p99) values+=("") ;;
            *) values+=("$(ratio "${raw[$a]}" "${raw[$b]}")") ;;
        esac
    done
    mdw=""
    if [ "$row" != "$last_row" ]; then
        printf '%s\n' "${LABEL[$row]}"
        mdw=${LABEL[$row]}
        last_row=$row
    fi
    emit "  ${unit//-/ }" "$mdw" "${unit//-/ }" "${values[@]}"
    unset raw
done
{
    printf '\nA/B columns: column A over column B; above 1 is better for rates, below 1 for CPU, RSS and latency.\n'
    printf '* the load generator used >= 90 %% of its CPU: that rate is bounded by it (on loopback the sender\n'
    printf '  pays for the receiver'"'"'s TCP work, so a client costs about what the server does); compare server CPU.\n'
    printf '~ noisy: other processes used more than %s %% of a core during that run (twice, the quieter kept).\n' "$RETRY_ABOVE"
    printf '"other" is CPU used by anything else during the run, in %% of one core.\n'
    if [ "$DEFLATE" = 0 ] && [ "$TLS" = 0 ]; then
        printf 'Targets: 20 B echo >= fastwebsockets msg/s at <= 5.5 µs CPU/msg; 1 KiB pipelined\n'
        printf '>= 1.2x tokio-tungstenite; idle <= 4 KiB/conn; handshakes >= 30 k/s; broadcast >= 2x tokio-tungstenite.\n'
    fi
    printf 'Total run time %s s.\n' "$ELAPSED"
    if [ "${#NOTES[@]}" -gt 0 ]; then
        printf '\nNotes:\n'
        printf '  - %s\n' "${NOTES[@]}"
    fi
    awk -v l="$LOAD_BEFORE" 'BEGIN { if (l > 0.5) printf "\nwarning: load average was %s before the run: other work shares the CPUs, numbers are noisy\n", l }'
} | tee -a "$MD"
