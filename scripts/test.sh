#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # the Debian package starts a redis-server on 6379; the tests start their own
  $SUDO service redis-server stop >/dev/null 2>&1 || true
fi

python -m pip install -q --disable-pip-version-check -e '.[test,uvloop]'

exec python -m pytest "$@"
