#!/usr/bin/env bash
# Checks the dependency invariants written in ARCHITECTURE.md. Exits non-zero on a violation.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
# Normal (non-dev) dependency tree of a crate, one crate name per line.
deps() { cargo tree -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null | awk '{print $1}' | sort -u; }
# Direct normal dependencies of a crate.
direct() { cargo tree -p "$1" -e normal --depth 1 --prefix none --format '{p}' 2>/dev/null | tail -n +2 | awk '{print $1}' | sort -u; }

forbid() { # crate, list-function, forbidden..., reason in $REASON
  local crate=$1 fn=$2; shift 2
  local found
  found=$($fn "$crate")
  for bad in "$@"; do
    if grep -qx "$bad" <<<"$found"; then
      echo "architecture: $crate must not depend on $bad ($REASON)"
      fail=1
    fi
  done
}

REASON="the domain knows no HTTP and no SQL" forbid ostiary-core deps axum hyper http tower tower-http reqwest sqlx sqlx-core ostiary-store ostiary-server ostiary-verify
REASON="storage knows no HTTP" forbid ostiary-store deps axum hyper tower tower-http reqwest ostiary-server
REASON="the shared JOSE pieces know no HTTP, no SQL and no other Ostiary crate" forbid ostiary-jose deps axum hyper http tower tower-http reqwest sqlx sqlx-core ostiary-core ostiary-store ostiary-server ostiary-verify ostiary-cli ostiary-demo
REASON="the verification library stands alone" forbid ostiary-verify deps ostiary-core ostiary-store ostiary-server ostiary-cli ostiary-demo sqlx
REASON="SQL lives in ostiary-store only" forbid ostiary-server direct sqlx
REASON="SQL lives in ostiary-store only" forbid ostiary-cli direct sqlx
REASON="the demo uses only the public verification library" forbid ostiary-demo deps ostiary-core ostiary-store ostiary-server

# One binary.
bins=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; m=json.load(sys.stdin); print("\n".join(p["name"] + ":" + t["name"] for p in m["packages"] for t in p["targets"] if "bin" in t["kind"]))')
if [ "$bins" != "ostiary-cli:ostiary" ]; then
  echo "architecture: the only binary must be ostiary (in ostiary-cli), found: $bins"
  fail=1
fi

# No SQL strings outside the store.
if grep -rnE '\b(SELECT|INSERT INTO|UPDATE [a-z_]+ SET|DELETE FROM)\b' crates --include=*.rs | grep -v '^crates/ostiary-store/' ; then
  echo "architecture: SQL found outside crates/ostiary-store"
  fail=1
fi

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "architecture: all invariants hold"
