#!/usr/bin/env bash
# The chat demo's page in a real headless browser: Debian's Chromium driven
# by playwright-core (examples/chat/browser-test/). Installs what is missing
# (Chromium from apt, Node.js if absent, the npm packages from the lockfile),
# builds `chat`, and runs the test with a time limit. Exits non-zero on any
# failure. The screenshot goes to $SCREENSHOT (default /tmp/hubbub-chat.png).
# Then the axum-echo page (hubbub-axum) the same way (axum.test.mjs). The
# tests (chat.test.mjs, chat-auth.test.mjs for the chat's auth mode,
# axum.test.mjs) share harness.mjs: the server
# started and stopped, Chromium launched, the watchdog. Then both chat tests
# again over https:// and wss://: a test CA and a server certificate
# (127.0.0.1, localhost) made by scripts/test-certs.sh in a temporary directory,
# given to `chat` as TLS_CERT_PATH/TLS_KEY_PATH; Chromium trusts that one
# key (--ignore-certificate-errors-spki-list with its SHA-256), Node's
# fetch the CA (NODE_EXTRA_CA_CERTS); then h2.test.mjs: the chat on one
# shared TLS port offering ALPN h2 (its HTTP2 setting, on by default), two
# pages chatting with the page, a route and both WebSockets over HTTP/2
# (extended CONNECT, RFC 8441), as /metrics and the pages' nextHopProtocol
# show. Before those: resume.test.mjs (the
# page's history and its resume after its socket was closed, one node) and
# nodes.test.mjs (two chat nodes sharing rooms over a redis-server of its
# own, installed by scripts/install-redis.sh when missing: a page on each).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TEST_DIR="$ROOT/examples/chat/browser-test"
SCREENSHOT=${SCREENSHOT:-/tmp/hubbub-chat.png}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

if [ ! -x /usr/bin/chromium ]; then
    echo "== installing chromium"
    apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "== installing nodejs and npm"
    apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "browser-test: playwright-core needs Node.js 20 or later (found $(node --version))" >&2
    exit 1
fi

echo "== npm ci ($TEST_DIR)"
(cd "$TEST_DIR" && npm ci --no-audit --no-fund)

echo "== building chat and axum-echo"
cargo build --quiet -p hubbub-examples --bin chat --bin axum-echo
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
CHAT_BIN="$TARGET_DIR/debug/chat"

echo "== chat page in headless Chromium"
timeout 180 node "$TEST_DIR/chat.test.mjs" "$CHAT_BIN" "$SCREENSHOT"

echo "== chat page in auth mode (AUTH_REQUIRED=true) in headless Chromium"
timeout 180 node "$TEST_DIR/chat-auth.test.mjs" "$CHAT_BIN" "${SCREENSHOT%.png}-auth.png"

echo "== chat page: history and resume after a reconnect, in headless Chromium"
timeout 180 node "$TEST_DIR/resume.test.mjs" "$CHAT_BIN"

echo "== chat page on two chat nodes over Redis, in headless Chromium"
bash scripts/install-redis.sh
timeout 180 node "$TEST_DIR/nodes.test.mjs" "$CHAT_BIN" "$(command -v redis-server)"

echo "== axum-echo page in headless Chromium"
timeout 180 node "$TEST_DIR/axum.test.mjs" "$TARGET_DIR/debug/axum-echo"

echo "== test CA and server certificate (scripts/test-certs.sh)"
CERTS=$(mktemp -d "${TMPDIR:-/tmp}/hubbub-browser-tls.XXXXXX")
trap 'rm -rf "$CERTS"' EXIT
# The base64 SHA-256 of the server certificate's SubjectPublicKeyInfo.
SPKI=$(bash scripts/test-certs.sh "$CERTS")
export BROWSER_TLS_CERT="$CERTS/server.pem" BROWSER_TLS_KEY="$CERTS/server.key"
export BROWSER_TLS_SPKI="$SPKI" NODE_EXTRA_CA_CERTS="$CERTS/ca.pem"

echo "== chat page over https:// and wss:// in headless Chromium"
timeout 180 node "$TEST_DIR/chat.test.mjs" "$CHAT_BIN" "${SCREENSHOT%.png}-tls.png"

echo "== chat page in auth mode over https:// and wss:// in headless Chromium"
timeout 180 node "$TEST_DIR/chat-auth.test.mjs" "$CHAT_BIN" "${SCREENSHOT%.png}-auth-tls.png"

echo "== chat page over HTTP/2 (one shared TLS port, ALPN h2) in headless Chromium"
timeout 180 node "$TEST_DIR/h2.test.mjs" "$CHAT_BIN"
