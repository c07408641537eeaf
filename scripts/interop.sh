#!/usr/bin/env bash
# The cross-binding interop matrix: objects written by each of Rust (isec-core), Python, Node,
# the wasm package under Node and the wasm package in headless Chromium (each wasm side on both
# backends, WebCrypto and wasm) are read by every other, whole, streamed and over ranges, for
# single, multipart and table-layout objects; corrupted copies must fail everywhere with the
# same error code. Prints the 7x7 matrix; exits non-zero on any failure.
#
# It uses the packages as the per-package scripts built them (run those first: test-python.sh,
# test-node.sh, test-wasm.sh) and fails, naming the script, when a build is missing. It builds
# only its own small Rust program (tests/interop/rust, into target/interop-rust).
#
#   bash scripts/interop.sh
#
# Output: target/interop/ (plan.json, every writer's objects, results/<reader>.json).
# Knobs: see tests/interop/run.mjs (ISEC_INTEROP_DIR, ISEC_INTEROP_TIMEOUT, ISEC_INTEROP_FAULT...).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export CI="${CI:-true}"

step() { printf '\n==> %s\n' "$*"; }
missing=()
need() { missing+=("$1"); }

step "built packages"
command -v node >/dev/null || need "node (Node.js >= 20): see scripts/test-node.sh"
command -v cargo >/dev/null || need "cargo (the Rust toolchain)"
python="$repo/bindings-py/.venv/bin/python"
if ! "$python" -c 'import isec' 2>/dev/null; then
  need "the Python package in bindings-py/.venv: run bash scripts/test-python.sh"
fi
if ! node -e 'require("./bindings-node/lib/index.js")' 2>/dev/null; then
  need "the Node addon (bindings-node/*.node): run bash scripts/test-node.sh"
fi
for f in bindings-wasm/pkg/node/isec_wasm.js bindings-wasm/pkg/web/isec_wasm.js bindings-wasm/node_modules/playwright-core/package.json; do
  [ -f "$f" ] || need "$f (the wasm package's builds and npm packages): run bash scripts/test-wasm.sh"
done
chromium="${ISEC_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || need "$chromium (Debian's chromium package): run bash scripts/test-wasm.sh"
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'interop: missing builds, nothing run:\n' >&2
  printf '  - %s\n' "${missing[@]}" | sort -u >&2
  exit 2
fi
echo "python: $("$python" -c 'import isec; print(isec.__version__, isec.__file__)')"
echo "node:   $(node --version), addon $(ls bindings-node/*.node | head -n 1)"
echo "wasm:   bindings-wasm/pkg/{node,web}; chromium: $("$chromium" --version 2>/dev/null || echo "$chromium")"

step "the Rust side (tests/interop/rust -> target/interop-rust)"
# Not --locked: its lock file follows core's dependencies, which change with core.
CARGO_TARGET_DIR="$repo/target/interop-rust" cargo build -q --release \
  --manifest-path tests/interop/rust/Cargo.toml </dev/null

step "the matrix"
ISEC_INTEROP_RUST_BIN="$repo/target/interop-rust/release/isec-interop" ISEC_INTEROP_PYTHON="$python" \
  ISEC_CHROMIUM="$chromium" node tests/interop/run.mjs </dev/null
