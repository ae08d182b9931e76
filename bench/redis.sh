#!/usr/bin/env bash
# The `chat` example's Redis room engine against its embedded engine, on
# loopback: one room, SUBSCRIBERS members spread evenly over the nodes, one
# publisher (not a member) on node A sending acknowledged chat messages.
#
#   bench/redis.sh [--quick] [--nodes 1,2,3]
#
# Columns: `embedded` (one chat node, no REDIS_URL, history in SQLite in
# $BENCH_OUT) and `redis xN` for each N of --nodes (default 1,2,3: N chat
# nodes with REDIS_URL, a fresh redis-server per column). Rows, each a
# separate `loadgen nodes` run against the same processes:
#   rate  SUBSCRIBERS members, the publisher at BENCH_RATE messages/s for
#         BENCH_DURATION s (no window): deliveries/s, publish-to-delivery
#         latency (all members; per node), chat and Redis CPU;
#   max   the same members, the publisher as fast as acks allow with
#         BENCH_WINDOW messages unanswered, BENCH_DURATION s: the ceiling;
#   ack   one member per node, one acknowledged publish at a time
#         (--window 1), BENCH_ACKS messages: publish-to-ack latency, and
#         what Redis did per ack — read and write system calls
#         (/proc/PID/io syscr/syscw: a read is a request batch arriving, so
#         reads per ack are the node's round trips to Redis) and commands
#         (INFO stats/commandstats); writes are replies, pub/sub pushes
#         and AOF writes.
# CPU: loadgen reads the CPU time of Redis and of each node (summed over
# their threads, /proc/PID/task/*/schedstat) and Redis's read/write calls
# (/proc/PID/io) at the start and the end of its publish phase (`--watch`):
# Redis CPU per published message = Redis CPU / acked messages. "other" is
# what the rest of the machine used during the loadgen run, in % of one
# core (from /proc/stat).
# Nothing is pinned: on a 2-CPU box the nodes, Redis and the load generator
# share both cores, as they would on one small server.
#
# redis-server: installed when missing (scripts/install-redis.sh), started
# on a free loopback port with `--save ''` and, by default, `--appendonly
# yes --appendfsync everysec` (BENCH_REDIS_PERSIST=off: no AOF either);
# its data directory is in $BENCH_OUT.
#
# Environment: BENCH_SUBSCRIBERS (1000), BENCH_RATE (500), BENCH_DURATION
# (15; --quick 4), BENCH_WINDOW (64), BENCH_ACKS (5000; --quick 500),
# BENCH_RUNTIME (tokio: the chat nodes' --runtime), BENCH_REDIS_PERSIST
# (aof | off), BENCH_OUT (a new temporary directory), CARGO_TARGET_DIR
# (chat's build), BENCH_TARGET (the load generator's: $HERE/target).
# Prints a table; writes it as Markdown to $BENCH_OUT/redis.md and every
# raw JSON line to $BENCH_OUT/redis.jsonl. Loopback only; every wait is
# bounded.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
USAGE="usage: $0 [--quick] [--nodes 1,2,3]"
QUICK=0
NODE_COUNTS=(1 2 3)
while [ "$#" -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --nodes)
            [ "$#" -ge 2 ] || { echo "$USAGE" >&2; exit 2; }
            IFS=, read -r -a NODE_COUNTS <<<"$2"; shift ;;
        *) echo "$USAGE" >&2; exit 2 ;;
    esac
    shift
done
for n in "${NODE_COUNTS[@]}"; do
    case "$n" in [1-8]) ;; *) echo "--nodes: counts from 1 to 8, not ${n@Q}" >&2; exit 2 ;; esac
done

SUBS=${BENCH_SUBSCRIBERS:-1000}
RATE=${BENCH_RATE:-500}
DUR=${BENCH_DURATION:-$([ "$QUICK" = 1 ] && echo 4 || echo 15)}
WINDOW=${BENCH_WINDOW:-64}
ACKS=${BENCH_ACKS:-$([ "$QUICK" = 1 ] && echo 500 || echo 5000)}
RUNTIME=${BENCH_RUNTIME:-tokio}
PERSIST=${BENCH_REDIS_PERSIST:-aof}
case "$PERSIST" in aof | off) ;; *) echo "BENCH_REDIS_PERSIST: aof or off" >&2; exit 2 ;; esac
RATE_MESSAGES=$(awk -v r="$RATE" -v d="$DUR" 'BEGIN { printf "%d", r * d }')
MAX_MESSAGES=1000000   # the `max` run ends at its deadline
OUT=${BENCH_OUT:-$(mktemp -d /tmp/hubbub-redis-bench.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS="$OUT/redis.jsonl"
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- build
timeout 600 bash "$ROOT/scripts/install-redis.sh"
REDIS_SERVER=$(command -v redis-server)
REDIS_CLI=$(command -v redis-cli)
HUBBUB_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$HUBBUB_TARGET" in /*) ;; *) HUBBUB_TARGET="$ROOT/$HUBBUB_TARGET" ;; esac
LOADGEN_TARGET=${BENCH_TARGET:-$HERE/target}
log "== building chat and loadgen (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet -p hubbub-examples --bin chat)
(cd "$HERE" && CARGO_TARGET_DIR="$LOADGEN_TARGET" timeout 1800 cargo build --release --quiet -p loadgen)
CHAT="$HUBBUB_TARGET/release/chat"
LOADGEN="$LOADGEN_TARGET/release/loadgen"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- processes
PIDS=()   # every process started here, stopped at exit
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# wait_for FILE PATTERN PID: at most 10 s for PATTERN in FILE while PID lives.
wait_for() {
    local _
    for _ in $(seq 100); do
        if grep -qs "$2" "$1"; then return 0; fi
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    log "no '$2' in $1:"; tail -n 5 "$1" >&2
    return 1
}

REDIS_PID=""; REDIS_PORT=""
start_redis() {
    REDIS_PORT=$(free_port)
    local dir="$OUT/redis.$REDIS_PORT"
    mkdir -p "$dir"
    local persist=(--appendonly no)
    if [ "$PERSIST" = aof ]; then persist=(--appendonly yes --appendfsync everysec); fi
    "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" --save '' \
        "${persist[@]}" --protected-mode yes >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_for "$dir/redis.log" "Ready to accept connections" "$REDIS_PID"
}

NODE_PIDS=(); NODE_PORTS=()
# start_nodes N REDIS|embedded
start_nodes() {
    local n=$1 engine=$2 i port logf
    NODE_PIDS=(); NODE_PORTS=()
    for ((i = 0; i < n; i++)); do
        port=$(free_port)
        logf="$OUT/chat.$engine.$n.$i.log"
        local env=(SERVER_HOST=127.0.0.1 SERVER_PORT=0 WEBSOCKET_HOST=127.0.0.1 "WEBSOCKET_PORT=$port"
            "PUBLIC_PATH=$ROOT/examples/chat/public" "NODE_ID=node$i")
        if [ "$engine" = redis ]; then
            env+=("REDIS_URL=redis://127.0.0.1:$REDIS_PORT" "REDIS_PREFIX=bench")
        else
            env+=("STORE_PATH=$OUT/chat.$port.db")
        fi
        (cd "$OUT" && exec env "${env[@]}" "$CHAT" --runtime "$RUNTIME") >"$logf" 2>&1 &
        NODE_PIDS+=("$!"); PIDS+=("$!"); NODE_PORTS+=("$port")
        wait_for "$logf" listening "$!"
    done
}

stop_all() { cleanup; REDIS_PID=""; NODE_PIDS=(); }

# ---------------------------------------------------------------- readers
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
child_ticks() { sed 's/^.*) //' "/proc/$$/stat" | awk '{print $14 + $15}'; }
jget() { sed -n "s/.*\"$2\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" <<<"$1" | tr -d '"'; }
redis_info() {
    # total_commands_processed and the EVALSHA calls.
    "$REDIS_CLI" -p "$REDIS_PORT" INFO all 2>/dev/null | tr -d '\r' | awk -F'[:=,]' '
        $1 == "total_commands_processed" { t = $2 }
        $1 == "cmdstat_evalsha" { e = $3 }
        END { printf "%d %d\n", t, e }'
}

declare -A R   # R[column|row|metric]
NOTES=()
# run COLUMN ROW LOADGEN_ARGS...: one loadgen run; records its figures.
run() {
    local col=$1 row=$2; shift 2
    local subs_ports watch json rc=0
    subs_ports=$(IFS=,; echo "${NODE_PORTS[*]}")
    # The processes whose CPU time and system calls loadgen reads at the
    # start and the end of its publish phase: Redis first, then the nodes.
    watch=$(IFS=,; echo "${REDIS_PID:+$REDIS_PID,}${NODE_PIDS[*]}")
    local b0 ch0 w0 info0 b1 ch1 w1 info1
    b0=$(busy_ticks); ch0=$(child_ticks); w0=$(date +%s%N)
    if [ -n "$REDIS_PID" ]; then info0=$(redis_info); fi
    log "== $col: $row"
    json=$(timeout -k 5 300 "$LOADGEN" nodes --port "${NODE_PORTS[0]}" --sub-ports "$subs_ports" \
        --watch "$watch" "$@" | grep '^{') || rc=$?
    b1=$(busy_ticks); ch1=$(child_ticks); w1=$(date +%s%N)
    if [ -n "$REDIS_PID" ]; then info1=$(redis_info); fi
    printf '{"column":"%s","row":"%s","watched":"%s","result":%s}\n' "$col" "$row" "$watch" "${json:-null}" >>"$RESULTS"
    if [ -z "$json" ]; then NOTES+=("$col $row: load generator failed (status $rc)"); return 0; fi
    local acked delivered secs cpu_us syscr syscw redis_us=0 nodes_us=0 a_us i
    acked=$(jget "$json" acked); delivered=$(jget "$json" delivered); secs=$(jget "$json" duration_s)
    IFS=/ read -r -a cpu_us <<<"$(jget "$json" watch_cpu_us)"
    IFS=/ read -r -a syscr <<<"$(jget "$json" watch_syscr)"
    IFS=/ read -r -a syscw <<<"$(jget "$json" watch_syscw)"
    i=0
    if [ -n "$REDIS_PID" ]; then redis_us=${cpu_us[0]}; i=1; fi
    a_us=${cpu_us[$i]}
    for ((; i < ${#cpu_us[@]}; i++)); do nodes_us=$((nodes_us + cpu_us[i])); done
    put() { R["$col|$row|$1"]=$2; }
    put deliveries "$(jget "$json" deliveries_per_sec)"
    put publishes "$(jget "$json" publishes_per_sec)"
    put p50 "$(jget "$json" p50_us)"; put p99 "$(jget "$json" p99_us)"
    put node_p50 "$(jget "$json" node_p50_us)"; put node_p99 "$(jget "$json" node_p99_us)"
    put ack_p50 "$(jget "$json" ack_p50_us)"; put ack_p99 "$(jget "$json" ack_p99_us)"
    put lost "$(jget "$json" lost)"; put order "$(jget "$json" out_of_order)"
    put acked "$acked"; put errors "$(jget "$json" ack_errors)"
    put lg "$(jget "$json" client_cpu_pct)"
    local per='BEGIN { if (n > 0) printf "%.2f", d / n; else print "-" }'
    local pct='BEGIN { if (s > 0) printf "%.0f", d / 1e4 / s; else print "-" }'
    put chat_cpu_msg "$(awk -v d="$nodes_us" -v n="$acked" "$per")"
    put chat_cpu_delivery "$(awk -v d="$nodes_us" -v n="$delivered" "$per")"
    put nodes_pct "$(awk -v d="$nodes_us" -v s="$secs" "$pct")"
    put a_pct "$(awk -v d="$a_us" -v s="$secs" "$pct")"
    if [ -n "$REDIS_PID" ]; then
        put redis_cpu_msg "$(awk -v d="$redis_us" -v n="$acked" "$per")"
        put redis_pct "$(awk -v d="$redis_us" -v s="$secs" "$pct")"
        put reads_msg "$(awk -v d="${syscr[0]}" -v n="$acked" "$per")"
        put writes_msg "$(awk -v d="${syscw[0]}" -v n="$acked" "$per")"
        # Over the whole loadgen run (joins and probes too), minus the INFO
        # that took the second reading.
        put cmds_msg "$(awk -v d=$(( ${info1% *} - ${info0% *} - 1 )) -v n="$acked" "$per")"
        put evalsha_msg "$(awk -v d=$(( ${info1#* } - ${info0#* } )) -v n="$acked" "$per")"
    fi
    # Everything but this shell's children (loadgen), the nodes and Redis,
    # over the whole loadgen run, in % of one core (nodes and Redis taken
    # at their publish-phase rate).
    put other "$(awk -v b=$((b1 - b0)) -v c=$((ch1 - ch0)) -v ns=$((w1 - w0)) -v hz="$CLK_TCK" \
        -v ours="$(awk -v d=$((nodes_us + redis_us)) -v s="$secs" 'BEGIN { if (s > 0) print d / 1e6 / s; else print 0 }')" \
        'BEGIN { w = ns / 1e9; o = b / hz - c / hz - ours * w; if (o < 0) o = 0; printf "%.0f", 100 * o / w }')"
    local ended
    ended=$(jget "$json" ended)
    if [ "$row" != max ] && [ "$ended" != complete ]; then
        NOTES+=("$col $row: ended by $ended, $delivered of $(jget "$json" expected) delivered, $acked acked")
    fi
    if [ "$(jget "$json" joined)" != "$(jget "$json" subscribers)" ]; then
        NOTES+=("$col $row: $(jget "$json" joined) of $(jget "$json" subscribers) subscribers joined ($(jget "$json" first_error))")
    fi
    for p in "${NODE_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || NOTES+=("$col $row: a chat node died")
    done
}

# column NAME N ENGINE: start, the three runs, stop.
column() {
    local col=$1 n=$2 engine=$3
    if [ "$engine" = redis ]; then start_redis; else REDIS_PID=""; fi
    start_nodes "$n" "$engine"
    sleep 0.5
    run "$col" rate --subscribers "$SUBS" --messages "$RATE_MESSAGES" --rate "$RATE" --duration $((DUR + 15))
    run "$col" max --subscribers "$SUBS" --messages "$MAX_MESSAGES" --window "$WINDOW" --duration "$DUR" --room bench-max
    run "$col" ack --subscribers "$n" --messages "$ACKS" --window 1 --duration 60 --room bench-ack
    stop_all
}

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
START=$(date +%s)
COLS=(embedded)
column embedded 1 embedded
for n in "${NODE_COUNTS[@]}"; do
    COLS+=("redis x$n")
    column "redis x$n" "$n" redis
done
ELAPSED=$(( $(date +%s) - START ))
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

# ---------------------------------------------------------------- table
MD="$OUT/redis.md"
human() {
    awk -v n="$1" 'BEGIN {
        if (n == "" || n == "-") print "-";
        else if (n >= 1e6) printf "%.2f M", n / 1e6;
        else if (n >= 1e4) printf "%.1f k", n / 1e3;
        else printf "%.0f", n }'
}
ms() { awk -v n="$1" 'BEGIN { if (n == "" || n == "-") print "-"; else printf "%.2f", n / 1000 }'; }
slash_ms() { awk -v s="$1" 'BEGIN { if (s == "") { print "-"; exit } n = split(s, a, "/"); for (i = 1; i <= n; i++) printf "%s%.2f", (i > 1 ? " / " : ""), a[i] / 1000 }'; }
cell() { local v=${R["$1|$2|$3"]:-}; printf '%s' "${v:--}"; }
# pad TEXT WIDTH: TEXT left-aligned in WIDTH characters (not bytes: µ, →).
pad() {
    local n
    n=$(printf '%s' "$1" | LC_ALL=C.UTF-8 wc -m)
    printf '%s%*s' "$1" $(($2 > n ? $2 - n : 0)) ""
}
emit() {
    local label=$1; shift
    local line v
    line=$(pad "$label" 52)
    for v in "$@"; do line+=" | $(pad "$v" 18)"; done
    printf '%s\n' "$line"
    line="| $label |"
    for v in "$@"; do line+=" $v |"; done
    printf '%s\n' "$line" >>"$MD"
}
# row LABEL ROW METRIC FORMAT
row() {
    local label=$1 r=$2 m=$3 f=$4 col v vals=()
    for col in "${COLS[@]}"; do
        v=$(cell "$col" "$r" "$m")
        case $f in
            h) v=$(human "$v") ;;
            ms) v=$(ms "$v") ;;
            nodes) v=$(slash_ms "${R["$col|$r|$m"]:-}") ;;
            i) v=$(awk -v n="$v" 'BEGIN { if (n == "-") print "-"; else printf "%.0f", n }') ;;
        esac
        vals+=("$v")
    done
    emit "$label" "${vals[@]}"
}
CPUS="loadgen / chat nodes / node A / Redis / other CPU %"
cpus() {
    local r=$1 col vals=()
    for col in "${COLS[@]}"; do
        vals+=("$(awk -v l="${R["$col|$r|lg"]:-}" 'BEGIN { printf "%.0f", l }') / $(cell "$col" "$r" nodes_pct) / $(cell "$col" "$r" a_pct) / $(cell "$col" "$r" redis_pct) / $(cell "$col" "$r" other)")
    done
    emit "$CPUS" "${vals[@]}"
}
{
    printf '\nhubbub chat: Redis engine vs embedded — %s, %s CPUs, load average %s before, %s after, %s s in all\n' \
        "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$ELAPSED"
    printf 'command: bench/redis.sh%s --nodes %s (BENCH_SUBSCRIBERS=%s BENCH_RATE=%s BENCH_DURATION=%s BENCH_WINDOW=%s BENCH_ACKS=%s BENCH_RUNTIME=%s BENCH_REDIS_PERSIST=%s)\n' \
        "$([ "$QUICK" = 1 ] && echo " --quick")" "$(IFS=,; echo "${NODE_COUNTS[*]}")" "$SUBS" "$RATE" "$DUR" "$WINDOW" "$ACKS" "$RUNTIME" "$PERSIST"
    printf 'redis-server %s, %s; chat --runtime %s; raw: %s\n\n' "$("$REDIS_SERVER" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')" \
        "$([ "$PERSIST" = aof ] && echo "appendonly yes, appendfsync everysec, no RDB" || echo "no persistence")" "$RUNTIME" "$RESULTS"
} | tee "$MD"
emit "" "${COLS[@]}"
seps="|---|"; for _ in "${COLS[@]}"; do seps+="---|"; done; echo "$seps" >>"$MD"
row "rate: deliveries/s ($SUBS members, $RATE msg/s)" rate deliveries h
row "rate: p50 publish→delivery ms" rate p50 ms
row "rate: p99 publish→delivery ms" rate p99 ms
row "rate: p99 per node ms (A / B / C)" rate node_p99 nodes
row "rate: lost / out of order" rate lost p
row "rate: chat CPU µs per delivery (all nodes)" rate chat_cpu_delivery p
row "rate: Redis CPU µs per published message" rate redis_cpu_msg p
row "rate: EVALSHA per message" rate evalsha_msg p
cpus rate
row "max: acked publishes/s (window $WINDOW)" max publishes h
row "max: deliveries/s" max deliveries h
row "max: p50 publish→delivery ms" max p50 ms
row "max: p99 publish→delivery ms" max p99 ms
row "max: Redis CPU µs per published message" max redis_cpu_msg p
cpus max
row "ack: acks/s (one in flight, 1 member/node)" ack publishes h
row "ack: p50 publish→ack µs" ack ack_p50 i
row "ack: p99 publish→ack µs" ack ack_p99 i
row "ack: Redis reads (round trips) per ack" ack reads_msg p
row "ack: Redis writes per ack" ack writes_msg p
row "ack: Redis commands per ack (script calls too)" ack cmds_msg p
row "ack: EVALSHA per ack" ack evalsha_msg p
row "ack: Redis CPU µs per ack" ack redis_cpu_msg p
{
    printf '\n"other": CPU used by anything but the chat nodes, Redis and the load generator, in %% of one core.\n'
    if [ "${#NOTES[@]}" -gt 0 ]; then printf '\nNotes:\n'; printf '  - %s\n' "${NOTES[@]}"; fi
} | tee -a "$MD"
