#!/usr/bin/env bash
# Autobahn|Testsuite (fuzzingclient) against the `echo` example server.
#
#   autobahn/run.sh [--server echo|axum-echo] [--cases "1.*,2.*"] [--runtime tokio] [--timeout SECONDS] [--no-deflate]
#
# Installs the suite into autobahn/.venv when missing (CPython 2.7.18 from
# pyenv, `pip install --target`), builds the server (`echo` by default, or
# `axum-echo`: the echo as an axum app, at /ws, tokio only) in release
# mode, starts it on
# a free loopback port (with --deflate unless --no-deflate), runs the
# selected cases (1-13 by default; --no-deflate leaves out 12 and 13, which
# need permessage-deflate), compares every case's `behavior` and
# `behaviorClose` with autobahn/expected.json, prints the counts, and exits
# non-zero on any mismatch. Reports go to autobahn/reports/ (for axum-echo,
# autobahn/reports/axum/).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,12.*,13.*"
EXCLUDE=""
DEFLATE=--deflate
RUNTIME=tokio
TIMEOUT=${AUTOBAHN_TIMEOUT:-1800}
SUITE_VERSION=25.10.1
SERVER=echo

while [ $# -gt 0 ]; do
    case "$1" in
        --server) SERVER=$2; shift 2 ;;
        --server=*) SERVER=${1#*=}; shift ;;
        --cases) CASES=$2; shift 2 ;;
        --cases=*) CASES=${1#*=}; shift ;;
        --runtime) RUNTIME=$2; shift 2 ;;
        --runtime=*) RUNTIME=${1#*=}; shift ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --no-deflate) DEFLATE=""; EXCLUDE="12.*,13.*"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

log() { echo "autobahn: $*" >&2; }

# What the reports are named after, and the WebSocket's path.
case "$SERVER" in
    echo) NAME=$RUNTIME; WS_PATH="" ;;
    axum-echo)
        [ "$RUNTIME" = tokio ] || { log "axum-echo runs on tokio only"; exit 2; }
        NAME=axum; WS_PATH=/ws ;;
    *) log "unknown server $SERVER: expected echo or axum-echo"; exit 2 ;;
esac

# --- the suite: Python 2.7 and autobahntestsuite ----------------------------
PYTHON=${AUTOBAHN_PYTHON:-}
if [ -z "$PYTHON" ]; then
    command -v pyenv >/dev/null || { log "pyenv not found: it provides CPython 2.7.18"; exit 1; }
    PYTHON="$(pyenv root)/versions/2.7.18/bin/python2.7"
    if [ ! -x "$PYTHON" ]; then
        log "installing CPython 2.7.18 with pyenv"
        timeout 1200 pyenv install -s 2.7.18
    fi
fi
[ -x "$PYTHON" ] || { log "no Python 2.7 at $PYTHON"; exit 1; }
if [ ! -f "$HERE/.venv/autobahntestsuite/__init__.py" ]; then
    log "installing autobahntestsuite $SUITE_VERSION into autobahn/.venv"
    timeout 900 "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        --target "$HERE/.venv" "autobahntestsuite==$SUITE_VERSION"
fi

# --- the server ----------------------------------------------------------------
log "building $SERVER (release)"
(cd "$ROOT" && cargo build --release --quiet -p hubbub-examples --bin "$SERVER")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
ECHO="$TARGET_DIR/release/$SERVER"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REPORTS="$HERE/reports"
mkdir -p "$REPORTS"
SERVER_LOG="$REPORTS/$SERVER-$RUNTIME.log"
"$ECHO" --port "$PORT" --runtime "$RUNTIME" $DEFLATE >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
cleanup() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 300); do
    grep -q listening "$SERVER_LOG" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "$SERVER exited:"; cat "$SERVER_LOG" >&2; exit 1; }
    sleep 0.1
done
grep -q listening "$SERVER_LOG" || { log "$SERVER did not start listening within 30 s"; exit 1; }

# --- the run --------------------------------------------------------------------
OUTDIR="$REPORTS/$NAME"
rm -rf "$OUTDIR"
SPEC="$REPORTS/spec-$NAME.json"
python3 - "$SPEC" "$PORT" "$NAME" "$OUTDIR" "$CASES" "$EXCLUDE" "$WS_PATH" <<'EOF'
import json, sys
spec, port, name, outdir, cases, exclude, path = sys.argv[1:]
split = lambda s: [p.strip() for p in s.split(',') if p.strip()]
json.dump({
    'outdir': outdir,
    'servers': [{'agent': 'hubbub-' + name, 'url': 'ws://127.0.0.1:%s%s' % (port, path)}],
    'cases': split(cases),
    'exclude-cases': split(exclude),
    'exclude-agent-cases': {},
}, open(spec, 'w'), indent=2)
EOF

log "running cases $CASES against $SERVER --runtime $RUNTIME $DEFLATE on port $PORT (timeout ${TIMEOUT}s)"
START=$(date +%s)
(cd "$REPORTS" && timeout "$TIMEOUT" "$PYTHON" "$HERE/wstest.py" -m fuzzingclient -s "$SPEC") \
    >"$REPORTS/wstest-$NAME.log" 2>&1 || {
    status=$?
    log "wstest failed (exit $status; 124 means the ${TIMEOUT}s timeout); last lines:"
    tail -20 "$REPORTS/wstest-$NAME.log" >&2
    exit 1
}
log "suite finished in $(( $(date +%s) - START )) s"
kill -0 "$SERVER_PID" 2>/dev/null || { log "$SERVER died during the run:"; tail -20 "$SERVER_LOG" >&2; exit 1; }

python3 "$HERE/compare.py" "$OUTDIR/index.json" "$HERE/expected.json" "$CASES" "$EXCLUDE"
