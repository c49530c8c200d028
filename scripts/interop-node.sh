#!/usr/bin/env bash
# Node.js interoperability tests: Ostiary's DPoP support (RFC 9449) driven by two stock npm
# client libraries, openid-client and oauth4webapi, with node's test runner. See
# tests/interop-node/README.md.
#
#   scripts/interop-node.sh [extra `node --test` options, e.g. --test-name-pattern=nonce]
#
# Installs the npm dependencies of tests/interop-node (only when node_modules is missing or
# package-lock.json changed), builds the binary, runs every tests/interop-node/*.test.mjs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dir="tests/interop-node"

say() { echo "interop-node: $*" >&2; }

# Node.js 20 or newer, with npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "node and npm are needed (Node.js 20 or newer)"
    exit 1
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    say "Node.js 20 or newer is needed, found $(node --version)"
    exit 1
fi

# npm dependencies (openid-client, oauth4webapi, pinned), reinstalled only when the lock file
# changed.
stamp="$dir/node_modules/.ostiary-package-lock.sha256"
if [ ! -f "$dir/package-lock.json" ]; then
    say "no package-lock.json yet: npm install (commit the lock file it writes)"
    (cd "$dir" && npm install --no-audit --no-fund)
    sha256sum "$dir/package-lock.json" | cut -d' ' -f1 >"$stamp"
else
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [ ! -d "$dir/node_modules/openid-client" ] || [ ! -d "$dir/node_modules/oauth4webapi" ] ||
        [ "$want" != "$have" ]; then
        say "npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund)
        echo "$want" >"$stamp"
    fi
fi

cargo build -p ostiary-cli
export OSTIARY_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/ostiary"

# One file at a time: each starts its own `ostiary serve`. node's runner exits non-zero when
# any test fails.
node --test --test-concurrency=1 "$@" "$dir"/*.test.mjs
