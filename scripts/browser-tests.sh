#!/usr/bin/env bash
# Real-browser tests: `ostiary demo` driven in headless Chromium (Debian's /usr/bin/chromium)
# through playwright-core, with node's test runner. See tests/browser/README.md.
#
#   scripts/browser-tests.sh [extra `node --test` options, e.g. --test-name-pattern=XSS]
#
# Installs Chromium with apt if it is missing (needs root), the npm dependencies of
# tests/browser (only when node_modules is missing or package-lock.json changed), builds the
# binary, runs every tests/browser/*.test.mjs. Screenshots: test-artifacts/browser/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dir="tests/browser"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

say() { echo "browser-tests: $*" >&2; }

# Chromium, from Debian (playwright-core never downloads a browser).
if [ ! -x "$chromium" ]; then
    if [ "$chromium" != /usr/bin/chromium ]; then
        say "CHROMIUM_PATH=$chromium is not an executable"
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "/usr/bin/chromium is missing and installing it needs root:"
        say "  sudo apt-get update && sudo apt-get install -y chromium"
        exit 1
    fi
    say "installing Chromium (apt)"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
export CHROMIUM_PATH="$chromium"

# Node.js 20 or newer, with npm.
# shellcheck source=scripts/lib/node.sh
. "$root/scripts/lib/node.sh"
require_node

# npm dependencies (playwright-core, pinned), reinstalled only when the lock file changed.
npm_deps "$dir" playwright-core

cargo build -p ostiary-cli
export OSTIARY_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/ostiary"

mkdir -p test-artifacts/browser
rm -f test-artifacts/browser/*.png

# One file at a time: each starts its own demo and Chromium, and a loaded 2-core machine would
# only make the timing-dependent parts (token expiry, the refresh grace window) slower.
# node's runner exits non-zero when any test fails.
node --test --test-concurrency=1 "$@" "$dir"/*.test.mjs
