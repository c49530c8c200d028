#!/usr/bin/env bash
# Side-by-side benchmark of the refresh_token grant (see BENCHMARKS.md): Ostiary on SQLite,
# Ostiary on PostgreSQL and panva's oidc-provider (bench/oidc-provider/), all driven by the
# same load generator, wrk with bench/refresh.lua (every refresh token used exactly once, each
# rotated token chained into the next request).
#
#   scripts/bench-refresh.sh [--rounds R] [--seconds S] [--connections "8 32"]
#                            [--servers "sqlite postgres oidc-provider"] [--warmup W]
#                            [--families N]
#
# The same settings as environment variables: BENCH_ROUNDS (3), BENCH_SECONDS (10),
# BENCH_CONNECTIONS ("8 32"), BENCH_SERVERS ("sqlite postgres oidc-provider"), BENCH_WARMUP
# (2 seconds, 0: none), BENCH_FAMILIES (refresh families seeded per run: 4 x the largest
# connection count, at least 128; oidc-provider's in-memory adapter loses tokens beyond about
# 200), BENCH_PORT (first of three ports, 18290), BENCH_TIMEOUT (wrk's --timeout, 30 s),
# BENCH_PG_ADMIN_URL (or OSTIARY_LOADTEST_ADMIN_URL; default
# postgres://postgres@127.0.0.1:5432/postgres, used with psql to create and drop a scratch
# database).
#
# Method: the server is pinned to core 0 and wrk (and the seeding client) to core 1 with
# taskset; wrk -t1 -cN with keep-alive; runs alternate A/B/C/A/B/C (servers in turn, for each
# connection count, round after round); every run starts a fresh server (fresh database,
# fresh families), seeds the families, runs wrk for the warm-up (its figures discarded, its
# unused tokens handed on), then the measured run. Any non-200 answer, socket error or
# starved request (no unused token left) is a failure and is reported.
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
# wrk counts an answer slower than its --timeout (default 2 s) as a timeout error and leaves it
# out of the latencies: with a long one, slow answers are measured (and still counted here as
# failures if they come later than that).
timeout="${BENCH_TIMEOUT:-30}"
admin_url="${BENCH_PG_ADMIN_URL:-${OSTIARY_LOADTEST_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
pg() { PGOPTIONS='--client-min-messages=warning' psql -q "$admin_url" "$@"; }

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }
while (($#)); do
    case "$1" in
        --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
        --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
        --connections) connections="${2:?--connections needs a value}"; shift 2 ;;
        --servers) servers="${2:?--servers needs a value}"; shift 2 ;;
        --warmup) warmup="${2:?--warmup needs a value}"; shift 2 ;;
        --families) families="${2:?--families needs a value}"; shift 2 ;;
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
((families > max_conn)) || die "families ($families) must exceed the largest connection count ($max_conn)"
((${#server_list[@]} > 0)) || die "no server given"
declare -A label port
for s in "${server_list[@]}"; do
    case "$s" in
        sqlite) label[$s]="Ostiary SQLite"; port[$s]=$port_base ;;
        postgres) label[$s]="Ostiary PostgreSQL"; port[$s]=$((port_base + 1)) ;;
        oidc-provider) label[$s]="oidc-provider"; port[$s]=$((port_base + 2)) ;;
        *) die "unknown server '$s' (sqlite, postgres, oidc-provider)" ;;
    esac
done
wants() { [[ " ${server_list[*]} " == *" $1 "* ]]; }
wants_ostiary() { wants sqlite || wants postgres; }
if wants oidc-provider && ((families > 200)); then
    # Its default in-memory adapter is an LRU of 1000 entries (two generations); each family
    # keeps a grant, its token index and its live token there, and every rotation adds one:
    # with ~250 families or more, tokens waiting in the queue are evicted ("refresh token not
    # found"), and those show as failures.
    say "warning: $families families may be more than oidc-provider's in-memory adapter keeps (about 200): expect 'refresh token not found' failures"
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
if wants postgres; then
    command -v psql >/dev/null || die "psql is needed for the PostgreSQL server (apt-get install -y postgresql-client)"
    pg -c 'SELECT 1' >/dev/null 2>&1 \
        || die "cannot reach PostgreSQL at $admin_url (set BENCH_PG_ADMIN_URL)"
fi
op_dir="$root/bench/oidc-provider"
if wants oidc-provider; then
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
ostiary="$target/release/ostiary"
seeder="$target/release/examples/bench_seed"
if wants_ostiary; then
    say "building the release binary and the bench_seed example"
    cargo build --release -q -p ostiary-cli
    cargo build --release -q -p ostiary-server --example bench_seed
    [[ -x "$ostiary" && -x "$seeder" ]] || die "build did not produce $ostiary and $seeder"
fi

# --- servers --------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-refresh.XXXXXX")"
server_pid=""
helper_pid=""
pg_db=""
cleanup() {
    local rc=$?
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

export OSTIARY_LOG=warn
kek=""
if wants postgres; then kek="$("$ostiary" keys generate-kek)"; fi

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

prepare_ostiary() { # database URL
    echo 'load-passw0rd' | "$ostiary" user add load --password-stdin --database-url "$1" >/dev/null
    "$ostiary" client add load --public --redirect-uri http://127.0.0.1/cb --database-url "$1" >/dev/null
}

# Starts server $1 on a fresh store, writes $families refresh tokens to $2.
start_server() { # server, tokens file
    local s="$1" tokens="$2" p="${port[$1]}" dir log url t0
    dir="$work/run"; rm -rf "$dir"; mkdir -p "$dir"
    log="$dir/server.log"
    port_free "$p"
    case "$s" in
        sqlite|postgres)
            if [[ "$s" == sqlite ]]; then
                # The default: the key-encryption key in PATH.kek beside the database.
                url="sqlite://$dir/bench.db"
            else
                pg_db="ostiary_bench_refresh"
                pg -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "CREATE DATABASE $pg_db" >/dev/null
                url="${admin_url%/*}/$pg_db"
            fi
            if [[ "$s" == postgres ]]; then export OSTIARY_KEY_ENCRYPTION_KEY="$kek"; fi
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
            (cd "$op_dir" && NODE_ENV=production PORT="$p" FAMILIES="$families" TOKENS_FILE="$tokens" \
                exec taskset -c 0 node server.js) >"$log" 2>&1 &
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

# Runs wrk; sets res to its RESULT line (key=value ...) and failed to its FAILED lines (the
# first failed answer of each thread). Tokens it did not use go to the 5th argument. wrk runs
# in the background so that a signal stops the script at once.
run_wrk() { # server, connections, seconds, tokens in, tokens out, extra wrk flags...
    local s="$1" c="$2" d="$3" in="$4" out="$5" rc=0; shift 5
    taskset -c 1 wrk -t1 -c"$c" -d"${d}s" --timeout "${timeout}s" "$@" -s "$root/bench/refresh.lua" \
        "http://127.0.0.1:${port[$s]}/token" -- "$in" load 1 "$out" >"$work/wrk.out" 2>&1 &
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

# --- the runs -------------------------------------------------------------------------------
top_cpu() { ps -eo pcpu,pid,etime,args --sort=-pcpu | head -6 | cut -c1-160; }

echo "# Refresh-token grant: Ostiary vs oidc-provider"
echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "nproc:       $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
echo "kernel:      $(uname -sr)"
echo "commit:      $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (uncommitted changes)')"
echo "wrk:         $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
wants_ostiary && echo "ostiary:     $("$ostiary" --version 2>/dev/null || echo '?')"
wants postgres && echo "postgresql:  $(pg -At -c 'SHOW server_version')"
wants oidc-provider && echo "node:        $(node --version), oidc-provider $(node -p "require('$op_dir/node_modules/oidc-provider/package.json').version")"
echo "settings:    rounds=$rounds seconds=$seconds warmup=${warmup}s connections=[${conn_list[*]}] families=$families timeout=${timeout}s servers=[${server_list[*]}]"
echo "method:      server on core 0, wrk -t1 on core 1 (taskset), keep-alive, fresh server and families per run, runs alternate"
echo "top CPU consumers before the runs (ps):"
top_cpu | sed 's/^/    /'
echo

declare -A rps_runs p99_runs fail_runs warm_fail
res="" failed="" seed_time=""
letters=(A B C)
total_failures=0
for ((r = 1; r <= rounds; r++)); do
    for c in "${conn_list[@]}"; do
        i=0
        for s in "${server_list[@]}"; do
            key="$s,$c"
            tokens="$work/tokens"; left="$work/left"; unused="$work/unused"
            rm -f "$tokens" "$left" "$unused"
            start_server "$s" "$tokens"
            wf=0
            if ((warmup > 0)); then
                run_wrk "$s" "$c" "$warmup" "$tokens" "$left"
                wf=$(($(field "$res" failures) + $(field "$res" socket_errors)))
                if ((wf > 0)); then
                    say "warm-up of ${label[$s]} c=$c: $wf failures: $res"
                    [[ -z "$failed" ]] || say "$failed"
                fi
            else
                cp "$tokens" "$left"
            fi
            run_wrk "$s" "$c" "$seconds" "$left" "$unused" --latency
            stop_server
            rps="$(field "$res" rps)"; p99="$(field "$res" p99_ms)"
            f=$(($(field "$res" failures) + $(field "$res" socket_errors)))
            total_failures=$((total_failures + f + wf))
            rps_runs[$key]+="$rps "; p99_runs[$key]+="$p99 "
            fail_runs[$key]=$((${fail_runs[$key]:-0} + f)); warm_fail[$key]=$((${warm_fail[$key]:-0} + wf))
            printf 'round %d/%d  c=%-3s %s %-19s %9s req/s  p99 %8s ms  failures %d (warm-up %d)  seeded %s in %s s\n' \
                "$r" "$rounds" "$c" "${letters[$i]}" "${label[$s]}" "$rps" "$p99" "$f" "$wf" "$families" "$seed_time"
            echo "    $res"
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
        printf '%-19s c=%-3s req/s %-28s median %9s | p99 ms %-28s median %8s | failures %d (warm-up %d)\n' \
            "${label[$s]}" "$c" "[${rr[*]}]" "${med_rps[$key]}" "[${pp[*]}]" "${med_p99[$key]}" \
            "${fail_runs[$key]}" "${warm_fail[$key]}"
    done
done
if wants oidc-provider; then
    echo
    echo "## Ratios of medians (Ostiary / oidc-provider; req/s: above 1 is faster, p99: below 1 is better)"
    for c in "${conn_list[@]}"; do
        for s in sqlite postgres; do
            wants "$s" || continue
            printf 'c=%-3s %-19s / oidc-provider: req/s %s, p99 %s\n' "$c" "${label[$s]}" \
                "$(ratio "${med_rps[$s,$c]}" "${med_rps[oidc-provider,$c]}")" \
                "$(ratio "${med_p99[$s,$c]}" "${med_p99[oidc-provider,$c]}")"
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
        if wants oidc-provider && [[ "$s" != oidc-provider ]]; then
            vs="$(ratio "${med_rps[$key]}" "${med_rps[oidc-provider,$c]}")"
        fi
        printf '| %s | %s | %.0f | %s ms | %d |  %s |\n' "${label[$s]}" "$c" "${med_rps[$key]}" \
            "${med_p99[$key]}" "$((${fail_runs[$key]} + ${warm_fail[$key]}))" "$vs"
    done
done

if ((total_failures > 0)); then
    say "$total_failures failed requests in all: the figures above include them"
    exit 2
fi
