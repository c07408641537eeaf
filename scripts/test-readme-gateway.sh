#!/usr/bin/env bash
# Runs the README's "Gateway" commands exactly as written (the ```sh block under that
# heading), with `isec` from this checkout and the AWS CLI on the PATH, against the Garage
# server the other suites use. Needs the AWS CLI: scripts/test-gateway.sh installs it into
# bindings-py/.venv (or set AWS_CLI_BIN_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=${ISEC_README_ISEC_DIR:-$PWD/target/debug}
[ -x "$bin_dir/isec" ] || cargo build -q -p isec-cli
block=$(awk '/^## Gateway$/{on=1; next} on && /^## /{exit} on' README.md | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')
[ -n "$block" ] || { echo "README.md: no sh block under ## Gateway" >&2; exit 1; }
export PATH="$bin_dir:${AWS_CLI_BIN_DIR:-$PWD/bindings-py/.venv/bin}:$PATH"
# No shared AWS files of the machine's user: only the server the block names.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN
out=$(bash -euo pipefail -c "$block" 2>&1) || { echo "$out"; echo "README Gateway block FAILED" >&2; exit 1; }
echo "$out" | tail -n 3
echo "$out" | grep -q "read back through the gateway"
echo "README Gateway block: ok"
