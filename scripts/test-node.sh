#!/usr/bin/env bash
# The Node binding from a fresh machine with only node/npm and cargo: installs its npm
# dependencies (inside bindings-node/), builds the addon in release mode, fails when the
# committed index.d.ts / index.js drift from the code, makes an S3 server available for the
# S3 helper's tests, and runs `node --test`. Among them test/package.test.mjs packs the package
# and the host's platform package and installs them into a fresh project (npm registry
# reachable: the other platforms' optional dependencies are looked up; about 25 s).
#
# S3 server: a Garage already running (scripts/garage.sh status; e.g. started by
# test-all.sh) is used as is; otherwise this script starts one (building garage into
# .tools/ first if missing: ~8 min cold) and stops it on exit. The tests use their own
# bucket, isec-node. ISEC_S3=0 skips the S3 tests, except under CI=true.
# Non-interactive (CI=true, no stdin); exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
caller_ci="${CI:-}"
export CI="${CI:-true}"
export npm_config_yes=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step() { printf '\n==> %s\n' "$*"; }

if [ "${ISEC_S3:-}" = 0 ] && [ "$caller_ci" = true ]; then
  echo "ISEC_S3=0 cannot skip the S3 tests under CI=true" >&2
  exit 2
fi

build_dir="$(mktemp -d "${TMPDIR:-/tmp}/isec-node-build.XXXXXX")"
started_garage=0
cleanup() {
  rm -rf "$build_dir"
  if [ "$started_garage" = 1 ]; then bash "$root/scripts/garage.sh" stop </dev/null || true; fi
}
trap cleanup EXIT

s3_env=()
if [ "${ISEC_S3:-}" != 0 ]; then
  step "S3 server for the S3 helper's tests (Garage on 127.0.0.1, bucket isec-node)"
  if bash scripts/garage.sh status </dev/null; then
    echo "using the running Garage"
  else
    started_garage=1
    bash scripts/garage.sh start </dev/null >/dev/null
  fi
  bash scripts/garage.sh bucket isec-node </dev/null
  # The server's env file, for the test process only.
  while IFS= read -r line; do
    case "$line" in ISEC_*=*) s3_env+=("$line") ;; esac
  done <"${ISEC_GARAGE_STATE:-target/garage}/env"
  s3_env+=(ISEC_S3_NODE_BUCKET=isec-node)
fi

cd bindings-node

step "npm install (bindings-node/node_modules)"
# `npm ci` trips over @napi-rs/cli's optional platform packages on this machine kind.
npm install --no-audit --no-fund --no-progress </dev/null

step "napi build --platform --release, and the index.d.ts / index.js drift check"
node scripts/check-dts.mjs --out "$build_dir" --install </dev/null

step "node --test"
# Under CI=true (this script's default) a missing S3 server fails the S3 tests; a local
# ISEC_S3=0 runs them with the caller's CI so that they skip.
test_ci="$CI"
if [ "${ISEC_S3:-}" = 0 ]; then test_ci="$caller_ci"; fi
env ${s3_env[@]+"${s3_env[@]}"} CI="$test_ci" ISEC_FRESH_BUILD="$build_dir" \
  node --expose-gc --test test/*.test.mjs </dev/null
