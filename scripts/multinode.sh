#!/usr/bin/env bash
# Several `chat` nodes sharing rooms through Redis, checked by an
# independent client (Python `websockets`, interop/python/multinode.py):
# fan-out across nodes, one order per room, resume on another node after
# a kill -9, Redis killed and restarted mid-flood (AOF), and Redis
# unreachable at start-up. The Python script starts and kills the
# processes itself (a redis-server on a free loopback port, nodes a/tokio,
# b/smol and c/mio with REDIS_URL and PRESENCE_TTL=3, each in its own log)
# and lists every pid it started in $LOGS/pids, which the trap here kills
# too. Installs Debian's redis-server when missing
# (scripts/install-redis.sh, root or sudo), builds `chat` (release,
# honouring CARGO_TARGET_DIR), and installs the pinned `websockets` into
# interop/python/.venv as scripts/interop-python.sh does. `--only a,c`
# (passed to the Python script) runs some of the scenarios.
# Loopback only; every step has a time limit. Exits non-zero on failure,
# printing the end of every log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HERE="$ROOT/interop/python"
VENV=${INTEROP_VENV:-$HERE/.venv}

timeout 600 bash scripts/install-redis.sh
REDIS_SERVER=$(command -v redis-server)
REDIS_CLI=$(command -v redis-cli)

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
    echo "== installing websockets into $VENV"
    python3 -m venv "$VENV"
    timeout 300 "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
fi
PY="$VENV/bin/python"

echo "== building chat"
timeout 1800 cargo build --release --quiet -p hubbub-examples --bin chat
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac

LOGS=$(mktemp -d)
PY_PID=
cleanup() {
    local status=$?
    if [ -n "$PY_PID" ]; then
        kill "$PY_PID" 2>/dev/null || true
        wait "$PY_PID" 2>/dev/null || true
    fi
    # Whatever the script left running (it stops its processes itself;
    # this is for a script that was killed).
    if [ -f "$LOGS/pids" ]; then
        while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$LOGS/pids"
    fi
    if [ "$status" != 0 ]; then
        for log in "$LOGS"/*.log; do
            [ -e "$log" ] || continue
            echo "---- the end of $(basename "$log")" >&2
            tail -n 20 "$log" >&2
        done
    fi
    rm -rf "$LOGS"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

echo "== Python websockets clients -> 3 chat nodes (tokio, smol, mio) sharing rooms through Redis"
timeout 420 "$PY" -u "$HERE/multinode.py" --chat "$TARGET_DIR/release/chat" \
    --redis-server "$REDIS_SERVER" --redis-cli "$REDIS_CLI" --dir "$LOGS" "$@" &
PY_PID=$!
status=0
wait "$PY_PID" || status=$?
PY_PID=
exit "$status"
