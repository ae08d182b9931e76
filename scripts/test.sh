#!/usr/bin/env bash
# Every test of the project, as the README promises: the Rust test suites,
# the Autobahn|Testsuite conformance run, and the chat page in a real
# headless browser. Installs what the suites need on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace

echo "== Autobahn|Testsuite, sections 1-10"
timeout 2400 bash autobahn/run.sh

echo "== chat page in headless Chromium"
timeout 900 bash scripts/browser-test.sh
