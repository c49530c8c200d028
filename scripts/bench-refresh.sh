#!/usr/bin/env bash
# Side-by-side benchmark of the refresh_token grant (see BENCHMARKS.md): Ostiary on SQLite,
# Ostiary on PostgreSQL and panva's oidc-provider (bench/oidc-provider/), all driven by the
# same load generator, wrk with bench/refresh.lua (every refresh token used exactly once, each
# rotated token chained into the next request).
#
#   scripts/bench-refresh.sh [--rounds R] [--seconds S] [--connections "8 32"]
#                            [--servers "sqlite postgres oidc-provider"] [--warmup W]
#                            [--families N] [--login-flood] [--flood-clients K]
#                            [--flood-users U] [--background-sessions N] [--dpop]
#
# The same settings as environment variables: BENCH_ROUNDS (3), BENCH_SECONDS (10),
# BENCH_CONNECTIONS ("8 32"), BENCH_SERVERS ("sqlite postgres oidc-provider"), BENCH_WARMUP
# (2 seconds, 0: none), BENCH_FAMILIES (refresh families seeded per run: 4 x the largest
# connection count, at least 128; oidc-provider's in-memory adapter loses tokens beyond about
# 200), BENCH_PORT (first of three ports, 18290), BENCH_TIMEOUT (wrk's --timeout, 30 s),
# BENCH_PG_ADMIN_URL (or OSTIARY_LOADTEST_ADMIN_URL; default
# postgres://postgres@127.0.0.1:5432/postgres, used with psql to create and drop a scratch
# database), BENCH_LOGIN_FLOOD (1: --login-flood), BENCH_FLOOD_CLIENTS (4), BENCH_FLOOD_USERS
# (as many as clients), BENCH_LOG (Ostiary's log filter, OSTIARY_LOG syntax; default: its own
# default, info), BENCH_OSTIARY (the ostiary binary to measure; default: this tree's, built
# with cargo), BENCH_BACKGROUND_SESSIONS (0), BENCH_DPOP (1: --dpop), BENCH_DPOP_RATE (proofs
# made per second of each run, 8000).
#
# --background-sessions N: every Ostiary store starts with N more live sessions, each with a
# refresh family, its refresh token (a random hash, as real ones are) and an audit event, as a
# large deployment's database holds them (written in one statement per table before the
# server starts: python3's sqlite3 module for SQLite, psql for PostgreSQL). Comparing runs with
# and without them shows what the database's size costs the refresh grant.
#
# --login-flood: every Ostiary server X in --servers also runs as X+flood (which --servers can
# name itself, after X): the same server under the same refresh load while K clients
# (crates/ostiary-server/examples/login_flood.rs, on core 1 beside wrk) sign in with the right
# password through the whole code flow (authorize, login form, code exchange), one sign-in
# after another each, as U users (flood-1 ... flood-U, created in every store, with the flood
# or without; client i signs in as user i mod U). One user per client by default: six or more
# concurrent sign-ins of one user from one address can be refused with 429 although every
# password is right (in-flight attempts count as failures until they succeed); --flood-users 1
# shows it, as failed sign-ins. The flood starts after seeding, before the warm-up, and stops
# after the measured run; runs with and without it alternate. Reported per connection count:
# refresh req/s and p99 with and without the flood, their ratios against Ostiary's goal
# (>= 0.7 x the req/s, <= 2 x the p99), the flood's sign-ins/s in the measured run, and every
# failed sign-in (any outcome but a token response), by kind.
#
# --dpop: every server X in --servers also runs as X+dpop (which --servers can name itself:
# sqlite+dpop, postgres+dpop, oidc-provider+dpop), right after X: the same refresh load, each
# request carrying a fresh DPoP proof (RFC 9449) in its `DPoP` header, ES256, a unique jti,
# htm POST, htu the token endpoint as the server's issuer names it
# (http://127.0.0.1:PORT/token), iat the time it was made. wrk's Lua cannot sign ECDSA, so
# crates/ostiary-server/examples/dpop_proofs.rs (on core 1) writes BENCH_DPOP_RATE x seconds
# proofs to a file right before the warm-up and again right before the measured run, and
# bench/refresh.lua takes the next one for each request; each proof is used once (both servers
# keep a replay cache), and a request that finds none left fails and is counted
# (proofs_exhausted) like any failure. The servers accept a proof's iat at most 60 s old
# (Ostiary's default dpop_proof_max_age, ProofPolicy::default(); oidc-provider: 300 s), so
# --seconds is at most 45 with --dpop. One key for every family and run (made once per
# invocation). Ostiary's families are seeded without a proof as always (bearer) and stay
# unbound (a family is bound at its code exchange or never); each refresh with a proof answers
# with an access token bound to the key (the proof checked and recorded). oidc-provider binds
# refresh tokens at the code exchange only, so its families are minted bound to the key
# (bench/oidc-provider/server.js with DPOP=1, DPOP_JKT). A 200 answer counts only with
# "token_type":"DPoP". Reported per connection count: req/s, p99 and the server's CPU per
# refresh (µs, from /proc) with and without DPoP, their ratios, and Ostiary+DPoP against
# oidc-provider+DPoP.
#
# Method: the server is pinned to core 0 and wrk (and the seeding client) to core 1 with
# taskset; wrk -t1 -cN with keep-alive; runs alternate A/B/C/A/B/C (servers in turn, for each
# connection count, round after round); every run starts a fresh server (fresh database,
# fresh families), seeds the families, runs wrk for the warm-up (its figures discarded, its
# unused tokens handed on), then the measured run. Any non-200 answer, socket error or
# starved request (no unused token left) is a failure and is reported. The CPU the server (and
# its Argon2 threads) and the flood client used during each measured run is read from /proc.
# PostgreSQL itself is the machine's service: it is not pinned.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { echo "bench-refresh: $*" >&2; }
die() { say "error: $*"; exit 1; }

rounds="${BENCH_ROUNDS:-3}"
seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_CONNECTIONS:-8 32}"
servers="${BENCH_SERVERS:-sqlite postgres oidc-provider}"
warmup="${BENCH_WARMUP:-2}"
families="${BENCH_FAMILIES:-}"
port_base="${BENCH_PORT:-18290}"
login_flood="${BENCH_LOGIN_FLOOD:-0}"
flood_clients="${BENCH_FLOOD_CLIENTS:-4}"
flood_users="${BENCH_FLOOD_USERS:-}"
background_sessions="${BENCH_BACKGROUND_SESSIONS:-0}"
dpop="${BENCH_DPOP:-0}"
dpop_rate="${BENCH_DPOP_RATE:-8000}"
# wrk counts an answer slower than its --timeout (default 2 s) as a timeout error and leaves it
# out of the latencies: with a long one, slow answers are measured (and still counted here as
# failures if they come later than that).
timeout="${BENCH_TIMEOUT:-30}"
admin_url="${BENCH_PG_ADMIN_URL:-${OSTIARY_LOADTEST_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
pg() { PGOPTIONS='--client-min-messages=warning' psql -q "$admin_url" "$@"; }

usage() { awk 'NR == 1 { next } /^# Method:/ || !/^#/ { exit } { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2; }
while (($#)); do
    case "$1" in
        --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
        --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
        --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
        --servers) servers="${2:?--servers needs a value}"; shift 2 ;;
        --warmup) warmup="${2:?--warmup needs a value}"; shift 2 ;;
        --families) families="${2:?--families needs a value}"; shift 2 ;;
        --login-flood) login_flood=1; shift ;;
        --flood-clients) flood_clients="${2:?--flood-clients needs a value}"; shift 2 ;;
        --flood-users) flood_users="${2:?--flood-users needs a value}"; shift 2 ;;
        --background-sessions) background_sessions="${2:?--background-sessions needs a value}"; shift 2 ;;
        --dpop) dpop=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $1" ;;
    esac
done
connections="${connections//,/ }"
servers="${servers//,/ }"
read -r -a conn_list <<<"$connections"
read -r -a server_list <<<"$servers"

is_uint() { [[ "$1" =~ ^(0|[1-9][0-9]*)$ ]]; }
is_pos() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_pos "$rounds" || die "rounds must be a positive integer, not '$rounds'"
is_pos "$seconds" || die "seconds must be a positive integer, not '$seconds'"
is_uint "$warmup" || die "warmup must be a whole number of seconds, not '$warmup'"
is_pos "$timeout" || die "BENCH_TIMEOUT must be a positive number of seconds, not '$timeout'"
is_uint "$port_base" || die "BENCH_PORT must be a port number, not '$port_base'"
[[ "$login_flood" == 0 || "$login_flood" == 1 ]] || die "BENCH_LOGIN_FLOOD must be 0 or 1, not '$login_flood'"
[[ "$dpop" == 0 || "$dpop" == 1 ]] || die "BENCH_DPOP must be 0 or 1, not '$dpop'"
is_pos "$dpop_rate" || die "BENCH_DPOP_RATE must be a positive integer, not '$dpop_rate'"
is_pos "$flood_clients" || die "flood clients must be a positive integer, not '$flood_clients'"
flood_users="${flood_users:-$flood_clients}"
is_pos "$flood_users" || die "flood users must be a positive integer, not '$flood_users'"
((${#conn_list[@]} > 0)) || die "no connection count given"
max_conn=0
for c in "${conn_list[@]}"; do
    is_pos "$c" || die "connection counts must be positive integers, not '$c'"
    ((c > max_conn)) && max_conn=$c
done
if [[ -z "$families" ]]; then
    families=$((4 * max_conn))
    ((families < 128)) && families=128
fi
is_pos "$families" || die "families must be a positive integer, not '$families'"
[[ "$background_sessions" =~ ^[0-9]+$ ]] \
    || die "background sessions must be a whole number, not '$background_sessions'"
((families > max_conn)) || die "families ($families) must exceed the largest connection count ($max_conn)"
((${#server_list[@]} > 0)) || die "no server given"
if ((login_flood || dpop)); then # X+flood (Ostiary), then X+dpop, right after each server X
    expanded=()
    for s in "${server_list[@]}"; do
        expanded+=("$s")
        if ((login_flood)) && [[ "$s" == sqlite || "$s" == postgres ]] && [[ " ${server_list[*]} " != *" $s+flood "* ]]; then
            expanded+=("$s+flood")
        fi
        if ((dpop)) && [[ "$s" == sqlite || "$s" == postgres || "$s" == oidc-provider ]] \
            && [[ " ${server_list[*]} " != *" $s+dpop "* ]]; then
            expanded+=("$s+dpop")
        fi
    done
    server_list=("${expanded[@]}")
fi
# The server a variant (X+flood, X+dpop) is X of.
base_of() { local b="${1%+flood}"; echo "${b%+dpop}"; }
declare -A label port seen
label_width=0
for s in "${server_list[@]}"; do
    [[ -z "${seen[$s]:-}" ]] || die "server '$s' is listed twice"
    seen[$s]=1
    case "$s" in
        sqlite|sqlite+flood|sqlite+dpop) label[$s]="Ostiary SQLite"; port[$s]=$port_base ;;
        postgres|postgres+flood|postgres+dpop) label[$s]="Ostiary PostgreSQL"; port[$s]=$((port_base + 1)) ;;
        oidc-provider|oidc-provider+dpop) label[$s]="oidc-provider"; port[$s]=$((port_base + 2)) ;;
        *) die "unknown server '$s' (sqlite, postgres, oidc-provider, sqlite+flood, postgres+flood, sqlite+dpop, postgres+dpop, oidc-provider+dpop)" ;;
    esac
    if [[ "$s" == *+flood ]]; then
        [[ -n "${seen[${s%+flood}]:-}" ]] \
            || die "$s is compared with ${s%+flood}: list ${s%+flood} before it (or use --login-flood)"
        label[$s]+=" + flood"
    fi
    if [[ "$s" == *+dpop ]]; then label[$s]+=" + DPoP"; fi
    ((${#label[$s]} > label_width)) && label_width=${#label[$s]}
done
((${#server_list[@]} <= 8)) || die "at most 8 servers in one run"
wants() { [[ " ${server_list[*]} " == *" $1 "* ]]; }
# Whether server X runs at all, as itself or a variant of it.
wants_base() {
    local s
    for s in "${server_list[@]}"; do [[ "$(base_of "$s")" == "$1" ]] && return 0; done
    return 1
}
wants_ostiary() { wants_base sqlite || wants_base postgres; }
wants_flood() { [[ " ${server_list[*]} " == *"+flood "* ]]; }
is_flood() { [[ "$1" == *+flood ]]; }
wants_dpop() { [[ " ${server_list[*]} " == *"+dpop "* ]]; }
is_dpop() { [[ "$1" == *+dpop ]]; }
if wants_dpop && ((seconds > 45 || warmup > 45)); then
    # Each run's proofs are made just before it, with that time as their iat: Ostiary accepts
    # them for 60 s (ProofPolicy::default(), dpop_proof_max_age).
    die "with DPoP runs, --seconds and --warmup must be at most 45 (proofs are accepted for 60 s after they are made)"
fi
if wants_base oidc-provider && ((families > 200)); then
    # Its default in-memory adapter is an LRU of 1000 entries (two generations); each family
    # keeps a grant, its token index and its live token there, and every rotation adds one:
    # with ~250 families or more, tokens waiting in the queue are evicted ("refresh token not
    # found"), and those show as failures.
    say "warning: $families families may be more than oidc-provider's in-memory adapter keeps (about 200; fewer with DPoP, whose replay entries share it): expect 'refresh token not found' failures"
fi

# --- what is needed -----------------------------------------------------------------------
command -v curl >/dev/null || die "curl is needed"
command -v taskset >/dev/null || die "taskset is needed (Debian: apt-get install -y util-linux)"
(($(nproc) >= 2)) || die "two cores are needed (server on core 0, wrk on core 1); nproc says $(nproc)"
if ! command -v wrk >/dev/null; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        say "wrk is missing: installing Debian's package"
        { apt-get update -qq >&2 && apt-get install -y -qq wrk >&2; } || die "could not install wrk"
    else
        die "wrk is missing: install it (Debian: sudo apt-get install -y wrk)"
    fi
fi
if wants_base postgres; then
    command -v psql >/dev/null || die "psql is needed for the PostgreSQL server (apt-get install -y postgresql-client)"
    pg -c 'SELECT 1' >/dev/null 2>&1 \
        || die "cannot reach PostgreSQL at $admin_url (set BENCH_PG_ADMIN_URL)"
fi
op_dir="$root/bench/oidc-provider"
if wants_base oidc-provider; then
    command -v node >/dev/null || die "node (20 or later) is needed for oidc-provider"
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    ((node_major >= 20)) || die "oidc-provider 9 needs Node 20 or later; node is $(node --version)"
    if [[ ! -d "$op_dir/node_modules/oidc-provider" ]]; then
        command -v npm >/dev/null || die "npm is needed to install bench/oidc-provider"
        say "installing bench/oidc-provider (npm ci)"
        (cd "$op_dir" && npm ci --no-audit --no-fund >&2) || die "npm ci failed in $op_dir"
    fi
fi

target="${CARGO_TARGET_DIR:-$root/target}"
# BENCH_OSTIARY: another build of ostiary to measure (for example one of an earlier commit,
# to compare two builds in alternating runs); by default this tree's, built here.
ostiary="${BENCH_OSTIARY:-$target/release/ostiary}"
seeder="$target/release/examples/bench_seed"
flooder="$target/release/examples/login_flood"
dpop_tool="$target/release/examples/dpop_proofs"
if wants_ostiary; then
    say "building the release binary and the bench_seed example"
    [[ -n "${BENCH_OSTIARY:-}" ]] || cargo build --release -q -p ostiary-cli
    cargo build --release -q -p ostiary-server --example bench_seed
    [[ -x "$ostiary" && -x "$seeder" ]] || die "build did not produce $ostiary and $seeder"
fi
if wants_flood; then
    say "building the login_flood example"
    cargo build --release -q -p ostiary-server --example login_flood
    [[ -x "$flooder" ]] || die "build did not produce $flooder"
fi
if wants_dpop; then
    say "building the dpop_proofs example"
    cargo build --release -q -p ostiary-server --example dpop_proofs
    [[ -x "$dpop_tool" ]] || die "build did not produce $dpop_tool"
fi

# --- servers --------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-refresh.XXXXXX")"
server_pid=""
helper_pid=""
flood_pid=""
pg_db=""
cleanup() {
    local rc=$?
    if [[ -n "$flood_pid" ]]; then
        kill "$flood_pid" 2>/dev/null || true
        wait "$flood_pid" 2>/dev/null || true
    fi
    if [[ -n "$helper_pid" ]]; then
        kill "$helper_pid" 2>/dev/null || true
        wait "$helper_pid" 2>/dev/null || true
    fi
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n "$pg_db" ]]; then
        pg -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The servers log at their default level (Ostiary: info) unless BENCH_LOG names another
# (OSTIARY_LOG's syntax): the default is what is measured.
if [[ -n "${BENCH_LOG:-}" ]]; then export OSTIARY_LOG="$BENCH_LOG"; else unset OSTIARY_LOG; fi
kek=""
dpop_jkt=""
if wants_dpop; then dpop_jkt="$("$dpop_tool" key "$work/dpop.key")"; fi
if wants_base postgres; then kek="$("$ostiary" keys generate-kek)"; fi

wait_ready() { # url, what, log
    for _ in $(seq 300); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            say "$2 exited before it was ready; its log:"; cat "$3" >&2; exit 1
        fi
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    say "$2 was not ready at $1 after 30 s; its log:"; cat "$3" >&2; exit 1
}

port_free() { # port
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; then
        die "something already answers on 127.0.0.1:$1 (set BENCH_PORT)"
    fi
}

flood_password='flood-passw0rd'
flood_user_list=""
for ((u = 1; u <= flood_users; u++)); do flood_user_list+="${flood_user_list:+,}flood-$u"; done

# The flood's users go into every store when there is a flood at all: the runs with and
# without it differ by the flood alone.
# N background sessions (see --background-sessions) into the store at $1 (sqlite://PATH or a
# postgres:// URL), for user and client `load`.
add_background_sessions() { # database URL
    local n="$background_sessions" now
    now=$(date +%s)
    case "$1" in
        sqlite://*)
            python3 - "${1#sqlite://}" "$n" "$now" <<'PY'
import sqlite3, sys
path, n, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path)
users = max(1, n // 4)
series = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
user = "'bgu-' || (i % ?)"
with db:
    db.execute(series + "INSERT INTO users (id, username, password_hash, disabled, created_at) "
               "SELECT 'bgu-' || (i - 1), 'bg-user-' || i, 'none', 0, ? FROM n", (users, now))
    db.execute(series + "INSERT INTO sessions (sid, user_id, auth_time, created_at, last_used_at, ip) "
               f"SELECT 'bg-' || i, {user}, ?, ?, ?, '127.0.0.1' FROM n", (n, users, now, now, now))
    db.execute(series + "INSERT INTO refresh_families (id, sid, client_id, user_id, scope, resource, "
               f"generation, rotated_at, created_at) SELECT 'bgf-' || i, 'bg-' || i, 'load', {user}, "
               "'offline_access', 'http://127.0.0.1/', 0, ?, ? FROM n", (n, users, now, now))
    db.execute(series + "INSERT INTO refresh_tokens (token_hash, family_id, generation) "
               "SELECT lower(hex(randomblob(32))), 'bgf-' || i, 0 FROM n", (n,))
    db.execute(series + "INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, details) "
               f"SELECT ?, 'session_created', 'user:' || {user}, {user}, 'bg-' || i, 'load', '{{}}' FROM n",
               (n, now, users, users))
PY
            ;;
        *)
            psql -q -v ON_ERROR_STOP=1 "$1" <<SQL
\set n $n
\set now $now
\set users $(( n / 4 > 1 ? n / 4 : 1 ))
INSERT INTO users (id, username, password_hash, disabled, created_at)
    SELECT 'bgu-' || (i - 1), 'bg-user-' || i, 'none', FALSE, :now FROM generate_series(1, :users) AS i;
INSERT INTO sessions (sid, user_id, auth_time, created_at, last_used_at, ip)
    SELECT 'bg-' || i, 'bgu-' || (i % :users), :now, :now, :now, '127.0.0.1' FROM generate_series(1, :n) AS i;
INSERT INTO refresh_families (id, sid, client_id, user_id, scope, resource, generation, rotated_at, created_at)
    SELECT 'bgf-' || i, 'bg-' || i, 'load', 'bgu-' || (i % :users), 'offline_access', 'http://127.0.0.1/', 0,
    :now, :now FROM generate_series(1, :n) AS i;
INSERT INTO refresh_tokens (token_hash, family_id, generation)
    SELECT md5(random()::text) || md5(i::text), 'bgf-' || i, 0 FROM generate_series(1, :n) AS i;
INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, details)
    SELECT :now, 'session_created', 'user:bgu-' || (i % :users), 'bgu-' || (i % :users), 'bg-' || i, 'load', '{}'
    FROM generate_series(1, :n) AS i;
ANALYZE;
SQL
            ;;
    esac
}

prepare_ostiary() { # database URL
    echo 'load-passw0rd' | "$ostiary" user add load --password-stdin --database-url "$1" >/dev/null
    "$ostiary" client add load --public --redirect-uri http://127.0.0.1/cb --database-url "$1" >/dev/null
    if ((background_sessions > 0)); then
        local t0
        t0=$(date +%s)
        add_background_sessions "$1"
        say "$background_sessions background sessions written in $(($(date +%s) - t0)) s"
    fi
    if wants_flood; then
        local u
        for ((u = 1; u <= flood_users; u++)); do
            echo "$flood_password" | "$ostiary" user add "flood-$u" --password-stdin --database-url "$1" >/dev/null
        done
    fi
}

# Starts server $1 on a fresh store, writes $families refresh tokens to $2.
start_server() { # server, tokens file
    local s="$1" tokens="$2" p="${port[$1]}" dir log url t0
    dir="$work/run"; rm -rf "$dir"; mkdir -p "$dir"
    log="$dir/server.log"
    port_free "$p"
    case "$(base_of "$s")" in
        sqlite|postgres)
            if [[ "$(base_of "$s")" == sqlite ]]; then
                # The default: the key-encryption key in PATH.kek beside the database.
                url="sqlite://$dir/bench.db"
            else
                pg_db="ostiary_bench_refresh"
                pg -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "CREATE DATABASE $pg_db" >/dev/null
                url="${admin_url%/*}/$pg_db"
            fi
            if [[ "$(base_of "$s")" == postgres ]]; then export OSTIARY_KEY_ENCRYPTION_KEY="$kek"; fi
            prepare_ostiary "$url"
            taskset -c 0 "$ostiary" serve --listen "127.0.0.1:$p" --issuer "http://127.0.0.1:$p" \
                --database-url "$url" >"$log" 2>&1 &
            server_pid=$!
            unset OSTIARY_KEY_ENCRYPTION_KEY
            wait_ready "http://127.0.0.1:$p/readyz" "${label[$s]}" "$log"
            t0=$(date +%s.%N)
            taskset -c 1 "$seeder" --count "$families" --scope offline_access \
                "http://127.0.0.1:$p" >"$tokens" 2>"$dir/seed.log" &
            helper_pid=$!
            local rc=0
            wait "$helper_pid" || rc=$?
            helper_pid=""
            ((rc == 0)) || { say "seeding ${label[$s]} failed:"; cat "$dir/seed.log" "$log" >&2; exit 1; }
            seed_time=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
            ;;
        oidc-provider)
            t0=$(date +%s.%N)
            local op_dpop=0
            if is_dpop "$s"; then op_dpop=1; fi
            (cd "$op_dir" && NODE_ENV=production PORT="$p" FAMILIES="$families" TOKENS_FILE="$tokens" \
                DPOP="$op_dpop" DPOP_JKT="$dpop_jkt" exec taskset -c 0 node server.js) >"$log" 2>&1 &
            server_pid=$!
            wait_ready "http://127.0.0.1:$p/.well-known/openid-configuration" "${label[$s]}" "$log"
            seed_time=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
            ;;
    esac
    local n
    n=$(grep -c . "$tokens" || true)
    ((n == families)) || { say "${label[$s]}: $n refresh tokens seeded, not $families"; cat "$log" >&2; exit 1; }
}

stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [[ -n "$pg_db" ]]; then
        pg -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
        pg_db=""
    fi
}

# CPU time (clock ticks, user + system) of process $1, and of those of its threads named $2.
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() { # pid [thread name]
    local f line name fields total=0
    if [[ -z "${2:-}" ]]; then
        read -r line <"/proc/$1/stat" || { echo 0; return; }
        read -r -a f <<<"${line##*) }"
        echo $((f[11] + f[12]))
        return
    fi
    for f in /proc/"$1"/task/*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        name="${line#*(}"; name="${name%%) *}"
        [[ "$name" == "$2" ]] || continue
        read -r -a fields <<<"${line##*) }"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}
cpu_pct() { # ticks before, ticks after, seconds
    awk -v a="$1" -v b="$2" -v s="$3" -v hz="$clk_tck" 'BEGIN { if (s > 0) printf "%.0f", 100 * (b - a) / hz / s; else print "?" }'
}

# Starts the sign-in flood against server $1 (on core 1, beside wrk) and waits until its first
# sign-in has ended.
start_flood() { # server
    local s="$1" out="$work/run/flood.out"
    taskset -c 1 "$flooder" --workers "$flood_clients" --users "$flood_user_list" \
        --password "$flood_password" "http://127.0.0.1:${port[$s]}" >"$out" 2>"$work/run/flood.err" &
    flood_pid=$!
    for _ in $(seq 300); do
        grep -qs '^FIRST' "$out" && return 0
        kill -0 "$flood_pid" 2>/dev/null \
            || { say "the login flood exited at once:"; cat "$out" "$work/run/flood.err" >&2; exit 1; }
        sleep 0.1
    done
    say "the login flood ended no sign-in in 30 s:"; cat "$out" "$work/run/flood.err" "$work/run/server.log" >&2; exit 1
}

# Asks the flood for a MARK line (its counts so far) and waits for it.
mark_flood() { # the number of MARK lines to wait for
    kill -0 "$flood_pid" 2>/dev/null \
        || { say "the login flood ended early:"; cat "$work/run/flood.out" "$work/run/flood.err" >&2; exit 1; }
    kill -USR1 "$flood_pid"
    for _ in $(seq 100); do
        (($(grep -c '^MARK ' "$work/run/flood.out" || true) >= $1)) && return 0
        sleep 0.05
    done
    say "the login flood printed no MARK line:"; cat "$work/run/flood.out" "$work/run/flood.err" >&2; exit 1
}

# Stops the flood; sets flood_res to its FLOOD line, flood_kinds to its FLOOD-FAILURES lines and
# flood_win_ok, flood_win_failed, flood_win_s to its counts between its two MARK lines.
stop_flood() {
    local out="$work/run/flood.out" rc=0 m1 m2
    kill -0 "$flood_pid" 2>/dev/null \
        || { say "the login flood ended early:"; cat "$out" "$work/run/flood.err" >&2; exit 1; }
    kill -TERM "$flood_pid"
    wait "$flood_pid" || rc=$?
    flood_pid=""
    ((rc == 0)) || { say "the login flood failed (exit $rc):"; cat "$out" "$work/run/flood.err" >&2; exit 1; }
    flood_res="$(grep '^FLOOD ' "$out")" \
        || { say "the login flood printed no FLOOD line:"; cat "$out" "$work/run/flood.err" >&2; exit 1; }
    flood_kinds="$(grep '^FLOOD-FAILURES ' "$out" || true)"
    m1="$(grep '^MARK ' "$out" | sed -n 1p)"; m2="$(grep '^MARK ' "$out" | sed -n 2p)"
    flood_win_ok=$(($(field "$m2" ok) - $(field "$m1" ok)))
    flood_win_failed=$(($(field "$m2" failed) - $(field "$m1" failed)))
    flood_win_s=$(awk -v a="$(field "$m1" elapsed_ms)" -v b="$(field "$m2" elapsed_ms)" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
}

# Writes DPoP proofs for a run of $2 seconds against server $1 to $3 (BENCH_DPOP_RATE a
# second, by the invocation's key, iat now; on core 1); sets proofs_time to the seconds it took.
make_proofs() { # server, seconds, proofs file
    local t0 rc=0
    t0=$(date +%s.%N)
    taskset -c 1 "$dpop_tool" proofs --key "$work/dpop.key" --url "http://127.0.0.1:${port[$1]}/token" \
        --count $((dpop_rate * $2)) >"$3" 2>"$work/proofs.err" &
    helper_pid=$!
    wait "$helper_pid" || rc=$?
    helper_pid=""
    ((rc == 0)) || { say "dpop_proofs failed (exit $rc):"; cat "$work/proofs.err" >&2; exit 1; }
    proofs_time=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# Runs wrk; sets res to its RESULT line (key=value ...) and failed to its FAILED lines (the
# first failed answer of each thread). Tokens it did not use go to the 5th argument. With
# $proofs_file set, each request carries the next DPoP proof from it. wrk runs in the
# background so that a signal stops the script at once.
run_wrk() { # server, connections, seconds, tokens in, tokens out, extra wrk flags...
    local s="$1" c="$2" d="$3" in="$4" out="$5" rc=0; shift 5
    taskset -c 1 wrk -t1 -c"$c" -d"${d}s" --timeout "${timeout}s" "$@" -s "$root/bench/refresh.lua" \
        "http://127.0.0.1:${port[$s]}/token" -- "$in" load 1 "$out" ${proofs_file:+"$proofs_file"} >"$work/wrk.out" 2>&1 &
    helper_pid=$!
    wait "$helper_pid" || rc=$?
    helper_pid=""
    ((rc == 0)) || { say "wrk failed (exit $rc) against ${label[$s]}:"; cat "$work/wrk.out" >&2; exit 1; }
    res="$(grep '^RESULT ' "$work/wrk.out")" \
        || { say "wrk printed no RESULT line:"; cat "$work/wrk.out" >&2; exit 1; }
    failed="$(grep '^FAILED ' "$work/wrk.out" || true)"
}

field() { # RESULT line, key
    local kv
    for kv in $1; do
        [[ "$kv" == "$2="* ]] && { echo "${kv#*=}"; return 0; }
    done
    echo "?"
}

median() { # numbers...
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "?"; exit }
        if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }

# The server's CPU per request, µs, from its share of core 0 (%) and the requests a second.
us_per() { awk -v c="$1" -v r="$2" 'BEGIN { if (c != "?" && r > 0) printf "%.0f", c * 1e4 / r; else print "?" }'; }

# --- the runs -------------------------------------------------------------------------------
top_cpu() { ps -eo pcpu,pid,etime,args --sort=-pcpu | head -6 | cut -c1-160; }

echo "# Refresh-token grant: Ostiary vs oidc-provider"
echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "nproc:       $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
echo "kernel:      $(uname -sr)"
echo "commit:      $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (uncommitted changes)')"
echo "wrk:         $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
wants_ostiary && echo "ostiary:     $("$ostiary" --version 2>/dev/null || echo '?')"
wants_base postgres && echo "postgresql:  $(pg -At -c 'SHOW server_version')"
wants_base oidc-provider && echo "node:        $(node --version), oidc-provider $(node -p "require('$op_dir/node_modules/oidc-provider/package.json').version")"
echo "settings:    rounds=$rounds seconds=$seconds warmup=${warmup}s connections=[${conn_list[*]}] families=$families timeout=${timeout}s servers=[${server_list[*]}]"
wants_dpop && echo "dpop:        ES256 proofs by one key (jkt $dpop_jkt) for every family, $dpop_rate a second of each run made by dpop_proofs on core 1 right before the warm-up and before the measured run"
wants_flood && echo "flood:       $flood_clients clients on core 1 (login_flood: authorize, login form with the right password, code exchange), users [${flood_user_list//,/ }], from seeding's end to the measured run's end"
echo "method:      server on core 0, wrk -t1 on core 1 (taskset), keep-alive, fresh server and families per run, runs alternate"
echo "top CPU consumers before the runs (ps):"
top_cpu | sed 's/^/    /'
echo

declare -A rps_runs p99_runs fail_runs warm_fail cpu_runs cpu_us_runs exhausted_runs
declare -A flood_rate_runs flood_ok flood_fail flood_win_fail flood_cpu_runs hash_cpu_runs
res="" failed="" seed_time="" proofs_file="" proofs_time=""
flood_res="" flood_kinds="" flood_win_ok=0 flood_win_failed=0 flood_win_s=0
letters=(A B C D E F G H)
total_failures=0
total_flood_failures=0
for ((r = 1; r <= rounds; r++)); do
    for c in "${conn_list[@]}"; do
        i=0
        for s in "${server_list[@]}"; do
            key="$s,$c"
            tokens="$work/tokens"; left="$work/left"; unused="$work/unused"
            rm -f "$tokens" "$left" "$unused"
            start_server "$s" "$tokens"
            if is_flood "$s"; then start_flood "$s"; fi
            wf=0
            proofs_file=""; proofs_note=""
            if ((warmup > 0)); then
                if is_dpop "$s"; then
                    proofs_file="$work/proofs"
                    make_proofs "$s" "$warmup" "$proofs_file"
                fi
                run_wrk "$s" "$c" "$warmup" "$tokens" "$left"
                wf=$(($(field "$res" failures) + $(field "$res" socket_errors)))
                if ((wf > 0)); then
                    say "warm-up of ${label[$s]} c=$c: $wf failures: $res"
                    [[ -z "$failed" ]] || say "$failed"
                fi
            else
                cp "$tokens" "$left"
            fi
            if is_dpop "$s"; then
                proofs_file="$work/proofs"
                make_proofs "$s" "$seconds" "$proofs_file"
                proofs_note="  proofs: $((dpop_rate * seconds)) made in $proofs_time s"
            fi
            if is_flood "$s"; then mark_flood 1; fi
            t0=$(date +%s.%N)
            sc0=$(cpu_ticks "$server_pid"); hc0=$(cpu_ticks "$server_pid" ostiary-argon2)
            fc0=0; if is_flood "$s"; then fc0=$(cpu_ticks "$flood_pid"); fi
            run_wrk "$s" "$c" "$seconds" "$left" "$unused" --latency
            sc1=$(cpu_ticks "$server_pid"); hc1=$(cpu_ticks "$server_pid" ostiary-argon2)
            fc1=0; if is_flood "$s"; then fc1=$(cpu_ticks "$flood_pid"); fi
            wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
            if is_flood "$s"; then
                mark_flood 2
                stop_flood
            fi
            proofs_file=""; rm -f "$work/proofs"
            stop_server
            rps="$(field "$res" rps)"; p99="$(field "$res" p99_ms)"
            f=$(($(field "$res" failures) + $(field "$res" socket_errors)))
            total_failures=$((total_failures + f + wf))
            rps_runs[$key]+="$rps "; p99_runs[$key]+="$p99 "
            fail_runs[$key]=$((${fail_runs[$key]:-0} + f)); warm_fail[$key]=$((${warm_fail[$key]:-0} + wf))
            cpu="$(cpu_pct "$sc0" "$sc1" "$wall")"; cpu_runs[$key]+="$cpu "
            cpu_us_runs[$key]+="$(us_per "$cpu" "$rps") "
            exhausted_runs[$key]=$((${exhausted_runs[$key]:-0} + $(field "$res" proofs_exhausted | sed 's/?/0/')))
            printf 'round %d/%d  c=%-3s %s %-*s %9s req/s  p99 %8s ms  failures %d (warm-up %d)  seeded %s in %s s%s\n' \
                "$r" "$rounds" "$c" "${letters[$i]}" "$label_width" "${label[$s]}" "$rps" "$p99" "$f" "$wf" "$families" "$seed_time" "$proofs_note"
            echo "    $res"
            if [[ "$(base_of "$s")" == oidc-provider ]]; then
                echo "    cpu: server ${cpu}% of core 0 ($(us_per "$cpu" "$rps") µs per request)"
            else
                echo "    cpu: server ${cpu}% of core 0 ($(us_per "$cpu" "$rps") µs per request; Argon2 threads $(cpu_pct "$hc0" "$hc1" "$wall")%)$(is_flood "$s" && echo ", flood client $(cpu_pct "$fc0" "$fc1" "$wall")% of core 1")"
            fi
            if is_flood "$s"; then
                fok="$(field "$flood_res" ok)"; ffail="$(field "$flood_res" failed)"
                rate="$(awk -v n="$flood_win_ok" -v s="$flood_win_s" 'BEGIN { if (s > 0) printf "%.1f", n / s; else print "?" }')"
                flood_rate_runs[$key]+="$rate "
                flood_cpu_runs[$key]+="$(cpu_pct "$fc0" "$fc1" "$wall") "
                hash_cpu_runs[$key]+="$(cpu_pct "$hc0" "$hc1" "$wall") "
                flood_ok[$key]=$((${flood_ok[$key]:-0} + fok))
                flood_fail[$key]=$((${flood_fail[$key]:-0} + ffail))
                flood_win_fail[$key]=$((${flood_win_fail[$key]:-0} + flood_win_failed))
                total_flood_failures=$((total_flood_failures + ffail))
                echo "    flood: $rate sign-ins/s in the measured run ($flood_win_ok ok, $flood_win_failed failed in $flood_win_s s); whole flood $fok ok, $ffail failed"
                echo "    $flood_res"
                if [[ -n "$flood_kinds" ]]; then
                    while read -r line; do echo "    $line"; done <<<"$flood_kinds"
                fi
            fi
            if [[ -n "$failed" ]]; then
                while read -r line; do echo "    $line"; done <<<"$failed"
            fi
            if ((f + wf > 0)); then
                echo "    the server's log ends with:"
                tail -n 5 "$work/run/server.log" | while read -r line; do echo "      $line"; done
            fi
            i=$((i + 1))
        done
    done
done

echo
echo "top CPU consumers after the runs (ps):"
top_cpu | sed 's/^/    /'
echo
echo "## Per server and connection count (median over $rounds round(s))"
declare -A med_rps med_p99
for c in "${conn_list[@]}"; do
    for s in "${server_list[@]}"; do
        key="$s,$c"
        read -r -a rr <<<"${rps_runs[$key]}"; read -r -a pp <<<"${p99_runs[$key]}"
        med_rps[$key]="$(median "${rr[@]}")"; med_p99[$key]="$(median "${pp[@]}")"
        printf '%-*s c=%-3s req/s %-28s median %9s | p99 ms %-28s median %8s | failures %d (warm-up %d)\n' \
            "$label_width" "${label[$s]}" "$c" "[${rr[*]}]" "${med_rps[$key]}" "[${pp[*]}]" "${med_p99[$key]}" \
            "${fail_runs[$key]}" "${warm_fail[$key]}"
    done
done
if wants_flood; then
    echo
    echo "## Login flood: refresh with / without $flood_clients clients signing in (the same server; medians over $rounds round(s))"
    echo "goal: with the flood, req/s >= 0.70 x and p99 <= 2.00 x those without it"
    verdict() { awk -v v="$1" -v lim="$2" -v op="$3" 'BEGIN { if (v == "?") print "?"; else if ((op == ">=" && v >= lim) || (op == "<=" && v <= lim)) print "met"; else print "NOT MET" }'; }
    for c in "${conn_list[@]}"; do
        for s in "${server_list[@]}"; do
            is_flood "$s" || continue
            b="${s%+flood}"; key="$s,$c"
            read -r -a ra <<<"${rps_runs[$b,$c]}"; read -r -a rb <<<"${rps_runs[$key]}"
            read -r -a pa <<<"${p99_runs[$b,$c]}"; read -r -a pb <<<"${p99_runs[$key]}"
            per_rps=() per_p99=()
            for ((j = 0; j < ${#ra[@]}; j++)); do
                per_rps+=("$(ratio "${rb[$j]}" "${ra[$j]}")"); per_p99+=("$(ratio "${pb[$j]}" "${pa[$j]}")")
            done
            rr_rps="$(ratio "${med_rps[$key]}" "${med_rps[$b,$c]}")"; rr_p99="$(ratio "${med_p99[$key]}" "${med_p99[$b,$c]}")"
            read -r -a fr <<<"${flood_rate_runs[$key]}"; read -r -a fcpu <<<"${flood_cpu_runs[$key]}"
            read -r -a hcpu <<<"${hash_cpu_runs[$key]}"
            printf '%s c=%-3s req/s %9s without, %9s with: %s (%s; per round [%s]) | p99 %8s ms without, %8s ms with: %s (%s; per round [%s])\n' \
                "${label[$b]}" "$c" "${med_rps[$b,$c]}" "${med_rps[$key]}" "$rr_rps" "$(verdict "$rr_rps" 0.70 '>=')" "${per_rps[*]}" \
                "${med_p99[$b,$c]}" "${med_p99[$key]}" "$rr_p99" "$(verdict "$rr_p99" 2.00 '<=')" "${per_p99[*]}"
            printf '%*s flood: %s sign-ins/s (median; runs [%s]), failed sign-ins %d in the measured runs, %d in all (%d ok); Argon2 threads [%s]%% of core 0, flood client [%s]%% of core 1\n' \
                "${#label[$b]}" "" "$(median "${fr[@]}")" "${fr[*]}" "${flood_win_fail[$key]}" "${flood_fail[$key]}" \
                "${flood_ok[$key]}" "${hcpu[*]}" "${fcpu[*]}"
        done
    done
fi
if wants_dpop; then
    echo
    echo "## DPoP: refresh with a proof / without (the same server; medians over $rounds round(s); CPU: the server's, µs per refresh)"
    for c in "${conn_list[@]}"; do
        for s in "${server_list[@]}"; do
            is_dpop "$s" || continue
            b="${s%+dpop}"; key="$s,$c"
            read -r -a ud <<<"${cpu_us_runs[$key]}"
            if wants "$b"; then
                read -r -a ub <<<"${cpu_us_runs[$b,$c]}"
                printf '%-*s c=%-3s req/s %9s without, %9s with: %s | p99 %8s ms without, %8s ms with: %s | CPU %s µs without [%s], %s µs with [%s]: %s | proofs exhausted %d\n' \
                    "$label_width" "${label[$b]}" "$c" "${med_rps[$b,$c]}" "${med_rps[$key]}" "$(ratio "${med_rps[$key]}" "${med_rps[$b,$c]}")" \
                    "${med_p99[$b,$c]}" "${med_p99[$key]}" "$(ratio "${med_p99[$key]}" "${med_p99[$b,$c]}")" \
                    "$(median "${ub[@]}")" "${ub[*]}" "$(median "${ud[@]}")" "${ud[*]}" \
                    "$(ratio "$(median "${ud[@]}")" "$(median "${ub[@]}")")" "${exhausted_runs[$key]:-0}"
            else
                printf '%-*s c=%-3s req/s %9s with DPoP | p99 %8s ms | CPU %s µs [%s] | proofs exhausted %d\n' \
                    "$label_width" "${label[$s]}" "$c" "${med_rps[$key]}" "${med_p99[$key]}" \
                    "$(median "${ud[@]}")" "${ud[*]}" "${exhausted_runs[$key]:-0}"
            fi
        done
    done
fi
if wants oidc-provider || wants oidc-provider+dpop; then
    echo
    echo "## Ratios of medians (Ostiary / oidc-provider, each with DPoP against oidc-provider with DPoP; req/s: above 1 is faster, p99: below 1 is better)"
    for c in "${conn_list[@]}"; do
        for s in sqlite postgres sqlite+flood postgres+flood sqlite+dpop postgres+dpop; do
            wants "$s" || continue
            ref=oidc-provider; is_dpop "$s" && ref=oidc-provider+dpop
            wants "$ref" || continue
            printf 'c=%-3s %-*s / %s: req/s %s, p99 %s\n' "$c" "$label_width" "${label[$s]}" "${label[$ref]}" \
                "$(ratio "${med_rps[$s,$c]}" "${med_rps[$ref,$c]}")" \
                "$(ratio "${med_p99[$s,$c]}" "${med_p99[$ref,$c]}")"
        done
    done
fi

echo
echo "## Markdown (BENCHMARKS.md)"
echo
echo "$(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(nproc) cores, $rounds round(s) of ${seconds} s (warm-up ${warmup} s) per server and connection count, medians:"
echo
echo "| server | connections | requests/s | p99 | failures | req/s vs oidc-provider |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for c in "${conn_list[@]}"; do
    for s in "${server_list[@]}"; do
        key="$s,$c"
        vs="—"
        ref=oidc-provider; is_dpop "$s" && ref=oidc-provider+dpop
        if wants "$ref" && [[ "$(base_of "$s")" != oidc-provider ]]; then
            vs="$(ratio "${med_rps[$key]}" "${med_rps[$ref,$c]}")"
        fi
        printf '| %s | %s | %.0f | %s ms | %d |  %s |\n' "${label[$s]}" "$c" "${med_rps[$key]}" \
            "${med_p99[$key]}" "$((${fail_runs[$key]} + ${warm_fail[$key]}))" "$vs"
    done
done
if wants_flood; then
    echo
    echo "Login flood ($flood_clients clients, ${flood_users} user(s)), medians:"
    echo
    echo "| server | connections | req/s without | req/s with flood | ratio | p99 without | p99 with flood | ratio | sign-ins/s | failed sign-ins |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for c in "${conn_list[@]}"; do
        for s in "${server_list[@]}"; do
            is_flood "$s" || continue
            b="${s%+flood}"; key="$s,$c"
            read -r -a fr <<<"${flood_rate_runs[$key]}"
            printf '| %s | %s | %.0f | %.0f | %s | %s ms | %s ms | %s | %s | %d |\n' "${label[$b]}" "$c" \
                "${med_rps[$b,$c]}" "${med_rps[$key]}" "$(ratio "${med_rps[$key]}" "${med_rps[$b,$c]}")" \
                "${med_p99[$b,$c]}" "${med_p99[$key]}" "$(ratio "${med_p99[$key]}" "${med_p99[$b,$c]}")" \
                "$(median "${fr[@]}")" "${flood_fail[$key]}"
        done
    done
fi

if wants_dpop; then
    echo
    echo "DPoP (each refresh with a fresh proof) against the same server without, medians:"
    echo
    echo "| server | connections | req/s bearer | req/s DPoP | ratio | p99 bearer | p99 DPoP | ratio | CPU µs/refresh bearer | CPU µs/refresh DPoP | DPoP failures | DPoP req/s vs oidc-provider+DPoP |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for c in "${conn_list[@]}"; do
        for s in "${server_list[@]}"; do
            is_dpop "$s" || continue
            b="${s%+dpop}"; key="$s,$c"
            wants "$b" || continue
            read -r -a ub <<<"${cpu_us_runs[$b,$c]}"; read -r -a ud <<<"${cpu_us_runs[$key]}"
            vs="—"
            if [[ "$b" != oidc-provider ]] && wants oidc-provider+dpop; then
                vs="$(ratio "${med_rps[$key]}" "${med_rps[oidc-provider+dpop,$c]}")"
            fi
            printf '| %s | %s | %.0f | %.0f | %s | %s ms | %s ms | %s | %.0f | %.0f | %d | %s |\n' "${label[$b]}" "$c" \
                "${med_rps[$b,$c]}" "${med_rps[$key]}" "$(ratio "${med_rps[$key]}" "${med_rps[$b,$c]}")" \
                "${med_p99[$b,$c]}" "${med_p99[$key]}" "$(ratio "${med_p99[$key]}" "${med_p99[$b,$c]}")" \
                "$(median "${ub[@]}")" "$(median "${ud[@]}")" "$((${fail_runs[$key]} + ${warm_fail[$key]}))" "$vs"
        done
    done
fi

rc=0
if ((total_failures > 0)); then
    say "$total_failures failed requests in all: the figures above include them"
    rc=2
fi
if ((total_flood_failures > 0)); then
    say "$total_flood_failures failed sign-ins in the login flood (see the FLOOD-FAILURES lines)"
    rc=2
fi
((rc == 0)) || exit "$rc"
