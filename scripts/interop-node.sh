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
# shellcheck source=scripts/lib/node.sh
. "$root/scripts/lib/node.sh"
require_node

# npm dependencies (openid-client, oauth4webapi, pinned), reinstalled only when the lock file
# changed.
npm_deps "$dir" openid-client oauth4webapi

cargo build -p ostiary-cli
export OSTIARY_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/ostiary"

# One file at a time: each starts its own `ostiary serve`. node's runner exits non-zero when
# any test fails.
node --test --test-concurrency=1 "$@" "$dir"/*.test.mjs
