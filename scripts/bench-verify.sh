#!/usr/bin/env bash
# What ostiary-verify's checks cost a resource server, per operation, on one core (see
# BENCHMARKS.md, "Verifying access tokens"): crates/ostiary-verify/examples/bench_verify.rs,
# built in release mode and run pinned to core 0 (taskset -c 0), single thread.
#
#   scripts/bench-verify.sh [--iterations N] [--rounds R] [--core C]
#
# The same settings as environment variables: BENCH_ITERATIONS (operations per round, 20000;
# at most 100,000, the DPoP replay cache's default capacity), BENCH_ROUNDS (7), BENCH_CORE (0).
#
# Measured, each after a warm-up round, as the median over the rounds of the time per
# operation, the operations taking turns in slices of 500: (a) one raw ES256 signature check
# with aws-lc-rs (UnparsedPublicKey::verify, ECDSA_P256_SHA256_FIXED) of one token, again and
# again; (a2) the same raw check of a fresh proof's signature each time; (b)
# Validator::validate of a bearer ES256 access token (RFC 9068, static JWKS); (c)
# Validator::validate_dpop_at of a DPoP-bound token (cnf.jkt) with a fresh proof each time
# (made just before its slice, outside the timed loop; a fixed now; a new validator, so an
# empty replay cache, per round); for the breakdown, a check with a pre-parsed key and
# ostiary_jose::dpop::verify_proof alone. Reported: the ratios validate/raw,
# validate_dpop/(a + a2), and the DPoP overhead beyond its two signature checks,
# (validate_dpop - (a + a2)) / (a + a2), against the target of under 10 % (and, as measured
# before, against 2 x (a)); the header records
# the date, the commit, the CPU and the top CPU consumers before and after (the figures need a
# quiet machine). Nothing listens on the network.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { echo "bench-verify: $*" >&2; }
die() { say "error: $*"; exit 1; }

iterations="${BENCH_ITERATIONS:-20000}"
rounds="${BENCH_ROUNDS:-7}"
core="${BENCH_CORE:-0}"

usage() { awk 'NR == 1 { next } /^# Measured,/ || !/^#/ { exit } { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2; }
while (($#)); do
    case "$1" in
        --iterations) iterations="${2:?--iterations needs a value}"; shift 2 ;;
        --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
        --core) core="${2:?--core needs a value}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $1" ;;
    esac
done
is_pos() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_pos "$iterations" || die "iterations must be a positive integer, not '$iterations'"
((iterations <= 100000)) || die "iterations must be at most 100000 (the replay cache's capacity)"
is_pos "$rounds" || die "rounds must be a positive integer, not '$rounds'"
[[ "$core" =~ ^[0-9]+$ ]] && ((core < $(nproc))) || die "core must be one of 0..$(($(nproc) - 1)), not '$core'"
command -v taskset >/dev/null || die "taskset is needed (Debian: apt-get install -y util-linux)"

target="${CARGO_TARGET_DIR:-$root/target}"
bench="$target/release/examples/bench_verify"
say "building the bench_verify example (release)"
cargo build --release -q -p ostiary-verify --example bench_verify
[[ -x "$bench" ]] || die "build did not produce $bench"

top_cpu() { ps -eo pcpu,pid,etime,args --sort=-pcpu | head -6 | cut -c1-160; }

echo "# ostiary-verify: the cost of validating an access token"
echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "nproc:       $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
echo "kernel:      $(uname -sr)"
echo "commit:      $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (uncommitted changes)')"
echo "rustc:       $(rustc --version)"
echo "settings:    iterations=$iterations rounds=$rounds, one thread pinned to core $core (taskset)"
echo "top CPU consumers before the run (ps):"
top_cpu | sed 's/^/    /'
echo
taskset -c "$core" "$bench" --iterations "$iterations" --rounds "$rounds"
echo
echo "top CPU consumers after the run (ps):"
top_cpu | sed 's/^/    /'
