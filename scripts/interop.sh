#!/usr/bin/env bash
# Interoperability tests: Ostiary driven by client libraries it did not write
# (authlib, PyJWT, requests), run with pytest. See tests/interop/.
#
#   scripts/interop.sh [extra pytest args, e.g. -k refresh -x]
#
# Needs python3 (with venv) and the Rust toolchain. The virtualenv lives in
# target/interop-venv and is reused while tests/interop/requirements.txt is unchanged.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/target/interop-venv"
py="$venv/bin/python"
requirements="tests/interop/requirements.txt"
stamp="$venv/.interop-requirements.sha256"

if ! "$py" -c 'import sys' >/dev/null 2>&1; then
    echo "interop: creating $venv" >&2
    rm -rf "$venv"
    mkdir -p "$root/target"
    python3 -m venv "$venv"
fi

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ] || ! "$py" -c 'import authlib, jwt, jwt.algorithms, cryptography, requests, pytest' >/dev/null 2>&1; then
    echo "interop: installing $requirements" >&2
    rm -f "$stamp"
    "$py" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi

cargo build -p ostiary-cli
export OSTIARY_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/ostiary"

status=0
PYTHONDONTWRITEBYTECODE=1 "$py" -m pytest -q tests/interop "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "interop: pytest collected no tests; counting that as a failure" >&2
    exit 1
fi
exit "$status"
