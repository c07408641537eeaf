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

# Builds the crate (extra cargo arguments: features) and prints the path of its .wasm. Both
# builds share one target directory: only isec-wasm itself differs between them, and cargo
# keeps each build's artifact apart (the path comes from cargo's own report).
build_wasm() {
  cargo build --release --target wasm32-unknown-unknown --locked "$@" \
    --message-format=json-render-diagnostics </dev/null |
    node -e '
      let wasm
      require("readline").createInterface({ input: process.stdin }).on("line", (l) => {
        const m = JSON.parse(l)
        if (m.reason === "compiler-artifact" && m.target.name === "isec_wasm") wasm = m.filenames.find((f) => f.endsWith(".wasm"))
      }).on("close", () => { if (!wasm) process.exit(1); console.log(wasm) })'
}

wasm="$(build_wasm)"
rm -rf pkg/web pkg/node
wasm-bindgen --target web --out-dir pkg/web "$wasm"
wasm-bindgen --target nodejs --out-dir pkg/node "$wasm"
printf '%s\n' '{ "type": "commonjs" }' > pkg/node/package.json

# The same crate with test hooks, for the Node tests only (test/node/identical.test.mjs).
wasm="$(build_wasm --features test-hooks)"
rm -rf pkg/test-node
wasm-bindgen --target nodejs --out-dir pkg/test-node "$wasm"
printf '%s\n' '{ "type": "commonjs" }' > pkg/test-node/package.json
# wasm-opt from the npm `binaryen` package (Debian's binaryen 108 miscompiles -Oz): about a
# fifth smaller, and the wasm AES backend faster. The web and nodejs outputs share one .wasm
# (wasm-bindgen writes the same module for both): optimised once. The test-hooks build is
# left as it is. ISEC_WASM_OPT=0 skips it.
opt="$here/node_modules/binaryen/bin/wasm-opt"
if [ "${ISEC_WASM_OPT:-1}" != 0 ] && [ -f "$opt" ]; then
  cmp -s pkg/web/isec_wasm_bg.wasm pkg/node/isec_wasm_bg.wasm || { echo "build.sh: the web and nodejs .wasm differ" >&2; exit 1; }
  node "$opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
    pkg/web/isec_wasm_bg.wasm -o pkg/web/isec_wasm_bg.wasm
  cp pkg/web/isec_wasm_bg.wasm pkg/node/isec_wasm_bg.wasm
elif [ "${ISEC_WASM_OPT:-1}" != 0 ]; then
  echo "build.sh: node_modules/binaryen missing (npm install); .wasm not optimised" >&2
fi
ls -l pkg/web/*.wasm | awk '{print "build.sh: " $5 " bytes " $9}'
