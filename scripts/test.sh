#!/usr/bin/env bash
# Every test of the project, as the README promises: the Rust test suites
# (the fuzz corpus replayed among them), the Autobahn|Testsuite conformance
# runs, permessage-deflate interop with Python `websockets`, chat nodes
# sharing rooms through Redis, the attack suite, and the chat and axum-echo
# pages in a real headless browser. Installs what the suites need on first
# use.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Redis engine's tests (tests/tests/redis_engine.rs) start their own
# redis-server.
bash scripts/install-redis.sh
echo "== cargo test --workspace"
cargo test --workspace

# Autobahn: 1-13 once per runtime (echo --deflate; the echo binary's
# --runtime flag picks the adapter), and the axum integration (axum-echo,
# tokio): 1-10 without compression, 12-13 with permessage-deflate. The
# suite's Python 2 client is single-threaded and the long runs are bound
# by it, so after a first short run (which installs the suite) they go two
# at a time, one per core; each run's output is printed when it ends.
echo "== Autobahn|Testsuite, sections 1-10, axum-echo"
timeout 900 bash autobahn/run.sh --server axum-echo --no-deflate
cargo build --release --quiet -p hubbub-examples --bin echo --bin axum-echo

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
failed=0

# Run the named Autobahn runs side by side; print each one's output.
side_by_side() {
    local - pids=() names=()
    set -f # the case patterns are not file names
    while [ $# -gt 0 ]; do
        local name=$1 args=$2
        shift 2
        # shellcheck disable=SC2086 # the arguments are split on purpose
        timeout 2400 bash autobahn/run.sh $args >"$LOGS/$name.log" 2>&1 &
        pids+=($!)
        names+=("$name")
    done
    for i in "${!pids[@]}"; do
        local status=0
        wait "${pids[$i]}" || status=$?
        echo "== Autobahn|Testsuite, ${names[$i]} (exit $status)"
        cat "$LOGS/${names[$i]}.log"
        [ "$status" = 0 ] || failed=1
    done
}

side_by_side \
    "sections 1-13, runtime tokio" "--runtime tokio" \
    "sections 1-13, runtime smol" "--runtime smol"
side_by_side \
    "sections 1-13, runtime mio" "--runtime mio" \
    "sections 12-13, axum-echo --deflate" "--server axum-echo --cases 12.*,13.*"
if [ "$failed" != 0 ]; then
    echo "Autobahn|Testsuite: a run failed (above)" >&2
    exit 1
fi

echo "== permessage-deflate interop with Python websockets"
timeout 900 bash scripts/interop-python.sh

# Three chat nodes (tokio, smol, mio) sharing rooms through Redis, driven
# by the same independent client: fan-out, one order per room, resume on
# another node after a kill -9, Redis killed and restarted mid-flood, Redis
# unreachable at start-up. Installs Debian's redis-server when missing.
echo "== chat nodes sharing rooms through Redis (interop/python/multinode.py)"
timeout 600 bash scripts/multinode.sh

echo "== the attack suite (issue #16's attacks as checks with thresholds), every runtime"
timeout 600 bash scripts/attack.sh

echo "== the chat page and the axum-echo page in headless Chromium"
timeout 900 bash scripts/browser-test.sh
