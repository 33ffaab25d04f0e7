#!/usr/bin/env bash
# A PostgreSQL server on 127.0.0.1 for the store tests; prints its URL as the last line of output.
#
#   export EMOTAG_TEST_PG_URL=$(bash .ci/postgres.sh | tail -n 1)     # or: source .ci/postgres.sh
#
# Installs Debian's postgresql package when no server binaries are found (needs root), then starts a cluster
# of its own (trust authentication, 127.0.0.1 only, fsync off: for tests, not for data) in
# $EMOTAG_PG_DIR (default /var/tmp/emotag-postgres) on port $EMOTAG_PG_PORT (default 54329), as the postgres
# user when run as root. Idempotent: a server already answering there is reused; a stopped one is started.

_emotag_postgres() (
  set -euo pipefail
  port=${EMOTAG_PG_PORT:-54329}
  dir=${EMOTAG_PG_DIR:-/var/tmp/emotag-postgres}
  url="postgresql+psycopg://postgres@127.0.0.1:${port}/postgres"

  find_initdb() { ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true; }
  initdb=$(find_initdb)
  if [ -z "$initdb" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql, as root)" >&2
      exit 1
    fi
    echo "postgres.sh: installing postgresql" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null
    initdb=$(find_initdb)
    [ -n "$initdb" ] || { echo "postgres.sh: postgresql installed but no initdb found" >&2; exit 1; }
  fi
  bin=$(dirname "$initdb")
  major=$(basename "$(dirname "$bin")")

  as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
  }

  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 3; then
    echo "$url"
    exit 0
  fi
  if [ "$(cat "$dir/data/PG_VERSION" 2>/dev/null || true)" != "$major" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" != 0 ] || chown postgres: "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null || { tail -n 20 "$dir/server.log" >&2; exit 1; }
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30
  echo "$url"
)

if [ "${BASH_SOURCE[0]}" != "$0" ]; then  # sourced: export the URL into the caller's shell
  EMOTAG_TEST_PG_URL=$(_emotag_postgres | tail -n 1) && export EMOTAG_TEST_PG_URL && echo "$EMOTAG_TEST_PG_URL"
else
  _emotag_postgres
fi
