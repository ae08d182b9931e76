#!/usr/bin/env bash
# Every test of the project, as the README promises: the Rust test suites,
# the Autobahn|Testsuite conformance run, and the chat page in a real
# headless browser. Installs what the suites need on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace

# Autobahn once per runtime; a runtime joins the list once its adapter
# exists (the echo binary's --runtime flag picks it).
RUNTIMES="tokio mio"
for runtime in $RUNTIMES; do
    echo "== Autobahn|Testsuite, sections 1-10, runtime $runtime"
    timeout 2400 bash autobahn/run.sh --runtime "$runtime"
done

echo "== chat page in headless Chromium"
timeout 900 bash scripts/browser-test.sh
