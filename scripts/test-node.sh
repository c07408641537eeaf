#!/usr/bin/env bash
# The Node binding from a fresh machine with only node/npm and cargo: installs its npm
# dependencies (inside bindings-node/), builds the addon in release mode, fails when the
# committed index.d.ts / index.js drift from the code, and runs `node --test`.
# Non-interactive (CI=true, no stdin); exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
export npm_config_yes=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step() { printf '\n==> %s\n' "$*"; }

cd bindings-node

step "npm install (bindings-node/node_modules)"
# `npm ci` trips over @napi-rs/cli's optional platform packages on this machine kind.
npm install --no-audit --no-fund --no-progress </dev/null

build_dir="$(mktemp -d "${TMPDIR:-/tmp}/isec-node-build.XXXXXX")"
trap 'rm -rf "$build_dir"' EXIT

step "napi build --platform --release, and the index.d.ts / index.js drift check"
node scripts/check-dts.mjs --out "$build_dir" --install </dev/null

step "node --test"
ISEC_FRESH_BUILD="$build_dir" node --expose-gc --test test/*.test.mjs </dev/null
