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

# The axum integration (axum-echo, tokio): sections 1-10 without
# compression, then 12-13 with permessage-deflate.
echo "== Autobahn|Testsuite, sections 1-10, axum-echo"
timeout 900 bash autobahn/run.sh --server axum-echo --no-deflate
echo "== Autobahn|Testsuite, sections 12-13, axum-echo --deflate"
timeout 2400 bash autobahn/run.sh --server axum-echo --cases "12.*,13.*"

echo "== permessage-deflate interop with Python websockets"
timeout 900 bash scripts/interop-python.sh

echo "== the chat page and the axum-echo page in headless Chromium"
timeout 900 bash scripts/browser-test.sh
