#!/usr/bin/env bash
# permessage-deflate and TLS interop with an independent implementation,
# Python `websockets` over `ssl` (interop/python/, version pinned in
# requirements.txt, installed into interop/python/.venv on first use):
#   1. its client against our `echo --deflate`, on each runtime in turn:
#      tokio, smol and mio (every parameter, many sizes, fragmented
#      messages; the negotiated answer checked exactly);
#   2. our client against its echo server with compression, on each
#      runtime in turn: tokio, smol and mio (tests/tests/deflate.rs
#      `python_server`);
#   3. its client over TLS (certificate verified against a test CA, ALPN
#      http/1.1, many sizes, with and without compression) against our
#      `echo --deflate --tls-cert --tls-key` on each runtime;
#   4. our client over TLS against its wss:// echo server, on each runtime
#      (tests/tests/tls.rs `python_tls_server`);
#   5. its client (with urllib) against the chat demo in auth mode
#      (AUTH_REQUIRED=true), on each runtime in turn (chat_auth.py);
#   6. its client against `chat` with limit settings, on each runtime
#      (interop/python/limits.py: 403, 429, 503 and rate_limited);
#   7. its client against `chat` with PRESENCE_EVENTS=true: acknowledged
#      messages and presence, on each runtime (chat_engine.py);
#   8. Python's `h2` package over TLS with ALPN h2: WebSockets over HTTP/2
#      (RFC 8441) against a hub on every runtime (interop/python/h2_websocket.py,
#      run by tests/tests/h2.rs `python_h2_client`).
#   9. our client with an H2Pool over TLS against hypercorn (an independent
#      HTTP/2 server with RFC 8441) serving interop/python/h2_echo_asgi.py:
#      several WebSockets on one HTTP/2 connection, each answered 200
#      (tests/tests/h2_client.rs `hypercorn_echo`).
# The test CA and the server certificate (127.0.0.1, localhost) are made
# by scripts/test-certs.sh (openssl), in a temporary directory.
# Loopback only; every step has a time limit. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HERE="$ROOT/interop/python"
VENV=${INTEROP_VENV:-$HERE/.venv}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import websockets, h2, hypercorn' 2>/dev/null; then
    echo "== installing websockets, h2 and hypercorn into $VENV"
    python3 -m venv "$VENV"
    timeout 300 "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
fi
PY="$VENV/bin/python"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
# wait_for LOG: until the server in the background says `listening`.
wait_for() {
    for _ in $(seq 100); do
        grep -qs listening "$1" && return 0
        sleep 0.1
    done
    echo "interop: server did not start:" >&2; cat "$1" >&2; exit 1
}

echo "== building echo and chat"
cargo build --release --quiet -p hubbub-examples --bin echo --bin chat
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac

LOGS=$(mktemp -d)
for RUNTIME in tokio smol mio; do
    PORT=$(free_port)
    "$TARGET_DIR/release/echo" --runtime "$RUNTIME" --port "$PORT" --deflate \
        >"$LOGS/echo-$RUNTIME.log" 2>&1 &
    PIDS+=($!)
    wait_for "$LOGS/echo-$RUNTIME.log"
    echo "== Python websockets client -> echo --deflate --runtime $RUNTIME"
    timeout 300 "$PY" "$HERE/client.py" "ws://127.0.0.1:$PORT"
done

"$PY" -u "$HERE/echo_server.py" >"$LOGS/python.log" 2>&1 &
PIDS+=($!)
wait_for "$LOGS/python.log"
PY_PORT=$(sed -n 's/^listening //p' "$LOGS/python.log")
echo "== hubbub client (tokio, smol, mio) -> Python websockets server"
HUBBUB_INTEROP_URL="ws://127.0.0.1:$PY_PORT" timeout 600 \
    cargo test --quiet -p hubbub-tests --test deflate -- --ignored --exact python_server

echo "== test CA and server certificate (scripts/test-certs.sh)"
CERTS="$LOGS/certs"
bash scripts/test-certs.sh "$CERTS" >/dev/null

for RUNTIME in tokio smol mio; do
    PORT=$(free_port)
    "$TARGET_DIR/release/echo" --runtime "$RUNTIME" --port "$PORT" --deflate \
        --tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server.key" \
        >"$LOGS/echo-tls-$RUNTIME.log" 2>&1 &
    PIDS+=($!)
    wait_for "$LOGS/echo-tls-$RUNTIME.log"
    echo "== Python websockets client over TLS -> echo --deflate --tls-cert --tls-key --runtime $RUNTIME"
    timeout 300 "$PY" "$HERE/tls_client.py" "wss://localhost:$PORT" "$CERTS/ca.pem"
done

"$PY" -u "$HERE/echo_server.py" "$CERTS/server.pem" "$CERTS/server.key" >"$LOGS/python-tls.log" 2>&1 &
PIDS+=($!)
wait_for "$LOGS/python-tls.log"
PY_TLS_PORT=$(sed -n 's/^listening //p' "$LOGS/python-tls.log")
echo "== hubbub client (tokio, smol, mio) over TLS -> Python websockets wss:// server"
HUBBUB_INTEROP_WSS_URL="wss://localhost:$PY_TLS_PORT" HUBBUB_INTEROP_CA="$CERTS/ca.pem" \
    timeout 600 cargo test --quiet -p hubbub-tests --test tls -- --ignored --exact python_tls_server

# 5. Its client (with urllib) against the chat in auth mode, on each runtime.
for RUNTIME in tokio smol mio; do
    (cd "$ROOT/examples/chat" && SERVER_HOST=127.0.0.1 SERVER_PORT=0 WEBSOCKET_HOST=127.0.0.1 \
        WEBSOCKET_PORT=0 AUTH_REQUIRED=true AUTH_JWT_SECRET=interop-secret AUTH_TIMEOUT=1 \
        STORE_PATH="$LOGS/chat-$RUNTIME.db" exec "$TARGET_DIR/release/chat" --runtime "$RUNTIME") \
        >"$LOGS/chat-$RUNTIME.log" 2>&1 &
    PIDS+=($!)
    wait_for "$LOGS/chat-$RUNTIME.log"
    HTTP_URL=$(grep -o 'http://[^ ]*' "$LOGS/chat-$RUNTIME.log" | head -1)
    WS_URL=$(grep -o 'ws://[^ ]*' "$LOGS/chat-$RUNTIME.log" | head -1)
    echo "== Python websockets client -> chat in auth mode --runtime $RUNTIME"
    timeout 120 "$PY" "$HERE/chat_auth.py" "$HTTP_URL" "$WS_URL"
done

# 6. Its client against `chat` started with limits (origin 403, per-address
#    429, MAX_CONNECTIONS 503, rate_limited), on each runtime in turn.
for RUNTIME in tokio smol mio; do
    PORT=$(free_port)
    (cd "$LOGS" && SERVER_PORT=$PORT WEBSOCKET_PORT=$PORT STORE_PATH="$LOGS/chat-limits-$RUNTIME.db" \
        ALLOWED_ORIGINS=https://chat.example WEBSOCKET_RATE_LIMIT=3 MAX_CONNECTIONS=3 \
        MAX_CONNECTIONS_PER_IP=2 exec "$TARGET_DIR/release/chat" --runtime "$RUNTIME") \
        >"$LOGS/chat-limits-$RUNTIME.log" 2>&1 &
    PIDS+=($!)
    wait_for "$LOGS/chat-limits-$RUNTIME.log"
    echo "== Python websockets client -> chat with limits --runtime $RUNTIME"
    timeout 120 "$PY" "$HERE/limits.py" "ws://127.0.0.1:$PORT/"
done

# 7. Its client against `chat` with presence events: acknowledged messages
#    and presence (interop/python/chat_engine.py), on each runtime.
for RUNTIME in tokio smol mio; do
    PORT=$(free_port)
    (cd "$LOGS" && SERVER_PORT=0 WEBSOCKET_PORT=$PORT STORE_PATH="$LOGS/chat-engine-$RUNTIME.db" \
        PRESENCE_EVENTS=true NODE_ID=py-node exec "$TARGET_DIR/release/chat" --runtime "$RUNTIME") \
        >"$LOGS/chat-engine-$RUNTIME.log" 2>&1 &
    PIDS+=($!)
    wait_for "$LOGS/chat-engine-$RUNTIME.log"
    echo "== Python websockets client -> chat acks and presence --runtime $RUNTIME"
    timeout 120 "$PY" "$HERE/chat_engine.py" "ws://127.0.0.1:$PORT/"
done

# 8. Python's h2 package: WebSockets over HTTP/2 on one TLS connection.
echo "== Python h2 client -> hub over HTTP/2 (RFC 8441, every runtime)"
HUBBUB_PYTHON="$PY" timeout 600 \
    cargo test --quiet -p hubbub-tests --test h2 -- --ignored --exact python_h2_client

# 9. hypercorn (ALPN h2 and http/1.1, SETTINGS_ENABLE_CONNECT_PROTOCOL):
#    our client's WebSockets over HTTP/2 against another server.
HC_PORT=$(free_port)
(cd "$HERE" && exec "$VENV/bin/hypercorn" --certfile "$CERTS/server.pem" \
    --keyfile "$CERTS/server.key" --bind "127.0.0.1:$HC_PORT" h2_echo_asgi:app) \
    >"$LOGS/hypercorn.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    grep -qs "Running on" "$LOGS/hypercorn.log" && break
    sleep 0.1
done
grep -qs "Running on" "$LOGS/hypercorn.log" || { echo "hypercorn did not start:" >&2; cat "$LOGS/hypercorn.log" >&2; exit 1; }
echo "== hubbub client over HTTP/2 (RFC 8441) -> hypercorn"
HUBBUB_HYPERCORN_ADDR="127.0.0.1:$HC_PORT" HUBBUB_HYPERCORN_CA="$CERTS/ca.pem" timeout 300 \
    cargo test --quiet -p hubbub-tests --test h2_client -- --ignored --exact hypercorn_echo
echo "interop: all passed"
