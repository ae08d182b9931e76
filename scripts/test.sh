#!/usr/bin/env bash
# Every test of the project, as the README promises: the Rust test suites,
# the Autobahn|Testsuite conformance run, permessage-deflate interop with
# Python `websockets`, and the chat page in a real headless browser.
# Installs what the suites need on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace

echo "== Autobahn|Testsuite, sections 1-13 (echo --deflate)"
timeout 2400 bash autobahn/run.sh

echo "== permessage-deflate interop with Python websockets"
timeout 900 bash scripts/interop-python.sh

echo "== chat page in headless Chromium"
timeout 900 bash scripts/browser-test.sh
