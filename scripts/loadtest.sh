#!/usr/bin/env bash
# Load test of the refresh grant (see BENCHMARKS.md): release build, real `ostiary serve`
# processes on 127.0.0.1, and the refresh_load example as the client.
#
#   scripts/loadtest.sh [sqlite|pg1|pg2|all] [WORKERS] [SECONDS]
#
# sqlite: one instance on SQLite. pg1: one instance on PostgreSQL. pg2: two instances on one
# PostgreSQL database, every rotation sent to the other instance than the previous one.
# PostgreSQL scenarios use OSTIARY_LOADTEST_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) to create and drop a scratch database, with
# psql.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scenario="${1:-all}"
workers="${2:-32}"
seconds="${3:-20}"
admin_url="${OSTIARY_LOADTEST_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

say() { echo "loadtest: $*" >&2; }

cargo build --release -q -p ostiary-cli
cargo build --release -q -p ostiary-server --example refresh_load
ostiary="$root/target/release/ostiary"
loader="$root/target/release/examples/refresh_load"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export OSTIARY_KEY_ENCRYPTION_KEY="$("$ostiary" keys generate-kek)"
export OSTIARY_LOG=warn

prepare() { # database URL
    echo 'load-passw0rd' | "$ostiary" user add load --password-stdin --database-url "$1" >/dev/null
    "$ostiary" client add load --public --redirect-uri http://127.0.0.1/cb --database-url "$1" >/dev/null
}

start() { # database URL, port
    # Every instance is the same IdP: one issuer, as behind a load balancer.
    "$ostiary" serve --listen "127.0.0.1:$2" --issuer http://loadtest.localhost \
        --database-url "$1" >/dev/null 2>>"$work/serve.log" &
    pids+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return 0
        sleep 0.1
    done
    say "instance on port $2 did not become ready"; cat "$work/serve.log" >&2; exit 1
}

stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

pg_database() { # name -> URL
    command -v psql >/dev/null || { say "psql is needed for the PostgreSQL scenarios"; exit 1; }
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
    echo "${admin_url%/*}/$1"
}

run() { # label, URLs...
    local label="$1"; shift
    say "$label: $workers workers, $seconds s"
    local result
    result="$("$loader" --workers "$workers" --seconds "$seconds" "$@")"
    echo "$label: $result"
}

if [[ "$scenario" == sqlite || "$scenario" == all ]]; then
    url="sqlite://$work/load.db"
    prepare "$url"
    start "$url" 18180
    run "sqlite, 1 instance" http://127.0.0.1:18180
    stop_all
fi
if [[ "$scenario" == pg1 || "$scenario" == all ]]; then
    url="$(pg_database ostiary_load_1)"
    prepare "$url"
    start "$url" 18181
    run "postgres, 1 instance" http://127.0.0.1:18181
    stop_all
    psql -q "$admin_url" -c "DROP DATABASE ostiary_load_1 WITH (FORCE)" >/dev/null
fi
if [[ "$scenario" == pg2 || "$scenario" == all ]]; then
    url="$(pg_database ostiary_load_2)"
    prepare "$url"
    start "$url" 18182
    start "$url" 18183
    run "postgres, 2 instances" http://127.0.0.1:18182 http://127.0.0.1:18183
    stop_all
    psql -q "$admin_url" -c "DROP DATABASE ostiary_load_2 WITH (FORCE)" >/dev/null
fi
