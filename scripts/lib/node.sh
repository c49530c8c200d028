# Shared by the scripts that run Node.js test suites (scripts/browser-tests.sh,
# scripts/interop-node.sh): source it after defining `say MESSAGE` (prints to stderr).

# require_node: fails unless node (20 or newer) and npm are on PATH.
require_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        say "node and npm are needed (Node.js 20 or newer)"
        exit 1
    fi
    if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
        say "Node.js 20 or newer is needed, found $(node --version)"
        exit 1
    fi
}

# npm_deps DIR PACKAGE...: installs DIR's pinned npm dependencies, again only when
# DIR/package-lock.json changed (a stamp in node_modules) or one of PACKAGE is missing; without
# a lock file, `npm install` writes one (commit it).
npm_deps() {
    local dir="$1" package want have missing=0
    shift
    local stamp="$dir/node_modules/.ostiary-package-lock.sha256"
    if [ ! -f "$dir/package-lock.json" ]; then
        say "no package-lock.json yet: npm install (commit the lock file it writes)"
        (cd "$dir" && npm install --no-audit --no-fund)
        sha256sum "$dir/package-lock.json" | cut -d' ' -f1 >"$stamp"
        return
    fi
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    have="$(cat "$stamp" 2>/dev/null || true)"
    for package in "$@"; do
        [ -d "$dir/node_modules/$package" ] || missing=1
    done
    if [ "$missing" -eq 1 ] || [ "$want" != "$have" ]; then
        say "npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund)
        echo "$want" >"$stamp"
    fi
}
