#!/usr/bin/env bash
# The attack suite (issue #16): the attacks of the hardening issue, run as
# regression checks with thresholds against the release `chat` and
# `echo --deflate` binaries on every runtime (tokio, smol, mio). Part of
# scripts/test.sh (after the interop step), about a minute in all.
#
#   scripts/attack.sh [RUNTIME...]      (default: tokio smol mio)
#
# Checks (scripts/attack.py; each prints its measured figure and threshold):
#   - slowloris head (1 byte/s): cut within 12 s (handshake deadline);
#   - a frame dripped at 1 byte/s after the handshake, and a half-finished
#     permessage-deflate message: cut within the receive deadline
#     (chat started with WEBSOCKET_MESSAGE_TIMEOUT=5; ATTACK_RECEIVE_TIMEOUT_KEY
#     names another key) + 3 s;
#   - unfinished deflate messages (15 KB inflating to 15 MiB) on 20
#     connections to `echo --deflate --receive-budget 32 MiB`: RSS growth
#     within the budget + 16 MiB;
#   - a long poll then 64 KiB of pipelined GETs on connections that never
#     read: <= 512 KiB RSS per connection, /api/health still answers;
#   - POST /ws/send of 60 KB payloads queued for one session: RSS growth
#     <= 2x the bytes sent;
#   - a /ws/send flood to a room (12 000 pipelined): every 202 in the
#     room's history, nothing refused in it, refusals only 429/503;
#   - 10 000 long-poll sessions from 127.0.0.2: a fresh client and
#     room:general from 127.0.0.1 still get 200;
#   - room.history of 100 x 60 KB to a reading client: answered, not 1013;
#   - 1500 room joins on one connection: at most WEBSOCKET_MAX_ROOMS (64)
#     joined, <= 4 MiB RSS.
# Exit status 1 when a check fails.
# Needs python3 (standard library only) and Linux /proc.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null; then
    echo "== installing python3"
    apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi

runtimes=("$@")
if [ ${#runtimes[@]} -eq 0 ]; then
    runtimes=(tokio smol mio)
fi

cargo build --release --quiet -p hubbub-examples --bin chat --bin echo
bin_dir="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release"

failed=0
for runtime in "${runtimes[@]}"; do
    echo "== attack suite, runtime $runtime"
    timeout 240 python3 scripts/attack.py --runtime "$runtime" --bin-dir "$bin_dir" || failed=1
done
if [ "$failed" != 0 ]; then
    echo "attack suite: a check failed (above)" >&2
    exit 1
fi
echo "attack suite: every check within its threshold"
