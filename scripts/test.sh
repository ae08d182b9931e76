#!/usr/bin/env bash
# Every test of the project, as the README promises: the Rust test suites,
# the Autobahn|Testsuite conformance run, permessage-deflate interop with
# Python `websockets`, and the chat page in a real headless browser.
# Installs what the suites need on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace

# Autobahn 1-13 once per runtime (echo --deflate; the echo binary's
# --runtime flag picks the adapter).
RUNTIMES="tokio smol mio"
for runtime in $RUNTIMES; do
    echo "== Autobahn|Testsuite, sections 1-13, runtime $runtime"
    timeout 2400 bash autobahn/run.sh --runtime "$runtime"
done

echo "== permessage-deflate interop with Python websockets"
timeout 900 bash scripts/interop-python.sh

echo "== chat page in headless Chromium"
timeout 900 bash scripts/browser-test.sh
