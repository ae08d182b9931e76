#!/usr/bin/env bash
# Installs redis-server (the Debian package) when it is missing: the Redis
# engine's tests start their own servers with it on free loopback ports.
#   usage: scripts/install-redis.sh
set -euo pipefail
if command -v redis-server >/dev/null; then
    exit 0
fi
echo "== installing redis-server" >&2
if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
"${SUDO[@]}" apt-get update >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server >&2
# The package may start a service on the default port; the tests use their own.
"${SUDO[@]}" service redis-server stop >/dev/null 2>&1 || true
