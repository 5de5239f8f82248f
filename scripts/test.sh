#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v setsid >/dev/null 2>&1 || need_apt+=(util-linux)
# tests/compat drives taskstore with Node.js client libraries (Node.js >= 20; the machine
# image has it, Debian's own package is the fallback)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# tests/console drives the browser console in Debian's headless chromium through its
# chromedriver (Selenium from the test extra; it never downloads a browser)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # the Debian package starts a redis-server on 6379; the tests start their own
  $SUDO service redis-server stop >/dev/null 2>&1 || true
fi

python -m pip install -q --disable-pip-version-check -e '.[test,uvloop]'

# the Node.js clients of tests/compat, exactly as package-lock.json pins them; skipped when
# node_modules was installed from this very lockfile
lock_sum="$(sha256sum tests/compat/package-lock.json | cut -d' ' -f1)"
stamp=tests/compat/node_modules/.installed-from-lock
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --prefix tests/compat --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null
  echo "$lock_sum" >"$stamp"
fi

# the MCP Python SDK 2.x cannot share this environment with the 1.x the test extra pins:
# tests/mcp2 runs in a second one, .venv-mcp2 (tests/client/test_mcp2_env.py drives it),
# made once and refreshed only when pyproject.toml changes (taskstore is installed editable)
mcp2_sum="$(sha256sum pyproject.toml | cut -d' ' -f1)"
mcp2_stamp=.venv-mcp2/.installed-from-pyproject
if [ "$(cat "$mcp2_stamp" 2>/dev/null)" != "$mcp2_sum" ]; then
  [ -x .venv-mcp2/bin/python ] || python -m venv .venv-mcp2
  .venv-mcp2/bin/python -m pip install -q --disable-pip-version-check -e '.[mcp,test-mcp2]'
  echo "$mcp2_sum" >"$mcp2_stamp"
fi

exec python -m pytest "$@"
