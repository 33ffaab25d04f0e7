#!/usr/bin/env bash
# Install what the tests need (Debian packages when run as root, a .venv from requirements-dev.txt),
# start a throwaway PostgreSQL for the store tests, and run the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in chromium fonts-noto-cjk postgresql; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${need_apt[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "note: ${need_apt[*]} missing and not root: the browser/PostgreSQL tests will skip"
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

if [ -z "${EMOTAG_TEST_PG_URL:-}" ] && [ -f .ci/postgres.sh ]; then
  # prints the URL of a PostgreSQL server on 127.0.0.1 (started if needed)
  EMOTAG_TEST_PG_URL=$(bash .ci/postgres.sh | tail -n 1) || EMOTAG_TEST_PG_URL=""
  export EMOTAG_TEST_PG_URL
fi

exec .venv/bin/python -m pytest "$@"
