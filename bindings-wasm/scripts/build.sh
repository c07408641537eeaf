#!/usr/bin/env bash
# Builds the browser package: cargo for wasm32-unknown-unknown, then the pinned wasm-bindgen
# CLI into pkg/web (ES module, `--target web`) and pkg/node (CommonJS, `--target nodejs`, for
# the Node tests). Needs the wasm32 target and wasm-bindgen-cli of the crate's exact version
# on PATH (scripts/test-wasm.sh at the repository root installs both).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$here"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/isec-wasm}"

want="$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" || true
if [ "$have" != "$want" ]; then
  echo "build.sh: wasm-bindgen CLI $want needed on PATH (found: ${have:-none})" >&2
  exit 1
fi

cargo build --release --target wasm32-unknown-unknown --locked 2>&1 | grep -v '^\s*$' || true
test "${PIPESTATUS[0]}" -eq 0
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/isec_wasm.wasm"
rm -rf pkg/web pkg/node
wasm-bindgen --target web --out-dir pkg/web "$wasm"
wasm-bindgen --target nodejs --out-dir pkg/node "$wasm"
printf '%s\n' '{ "type": "commonjs" }' > pkg/node/package.json

# The same crate with test hooks, for the Node tests only (test/node/identical.test.mjs).
cargo build --release --target wasm32-unknown-unknown --locked --features test-hooks \
  --target-dir "$CARGO_TARGET_DIR/test-hooks" 2>&1 | grep -v '^\s*$' || true
test "${PIPESTATUS[0]}" -eq 0
rm -rf pkg/test-node
wasm-bindgen --target nodejs --out-dir pkg/test-node "$CARGO_TARGET_DIR/test-hooks/wasm32-unknown-unknown/release/isec_wasm.wasm"
printf '%s\n' '{ "type": "commonjs" }' > pkg/test-node/package.json
# wasm-opt from the npm `binaryen` package (Debian's binaryen 108 miscompiles -Oz): about a
# fifth smaller, and the wasm AES backend faster. ISEC_WASM_OPT=0 skips it.
opt="$here/node_modules/binaryen/bin/wasm-opt"
if [ "${ISEC_WASM_OPT:-1}" != 0 ] && [ -f "$opt" ]; then
  for d in pkg/web pkg/node pkg/test-node; do
    node "$opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$d/isec_wasm_bg.wasm" -o "$d/isec_wasm_bg.wasm"
  done
elif [ "${ISEC_WASM_OPT:-1}" != 0 ]; then
  echo "build.sh: node_modules/binaryen missing (npm install); .wasm not optimised" >&2
fi
ls -l pkg/web/*.wasm | awk '{print "build.sh: " $5 " bytes " $9}'
