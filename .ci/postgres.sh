#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: Debian's postgresql (installed when missing), a cluster in
# a temp folder, listening on a local port and a socket in that folder. Source it, then stop it:
#   source .ci/postgres.sh start   # exports M_STATION_TEST_POSTGRES (a postgresql:// URL) and PGTMP
#   .ci/postgres.sh stop           # (executed, not sourced) stops that server and removes its folder
set -euo pipefail
action="${1:-start}"
# a free local port unless one is given (a server left on a fixed port would make the next start fail)
port="${M_STATION_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$action" = "stop" ]; then
    dir="${PGTMP:-$(cat /tmp/m-station-pg.dir 2>/dev/null || true)}"
    if [ -n "$dir" ] && [ -d "$dir/data" ]; then
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
        run "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$dir" /tmp/m-station-pg.dir
    fi
    exit 0
fi
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/m-station-pg.XXXXXX)
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then owner=postgres; chown postgres "$dir"; fi  # initdb refuses root
run "$bin/initdb" -D "$dir/data" -U station -A trust --no-sync >/dev/null
run "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
run "$bin/createdb" -h 127.0.0.1 -p "$port" -U station station
echo "$dir" > /tmp/m-station-pg.dir
export PGTMP="$dir" PGBIN="$bin"
export M_STATION_TEST_POSTGRES="postgresql://station@127.0.0.1:$port/station"
echo "PostgreSQL for the tests: $M_STATION_TEST_POSTGRES (cluster in $dir)"
