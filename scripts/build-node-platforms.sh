#!/usr/bin/env bash
# Release build of @isec/node's platform packages (bindings-node/npm/<platform>/): the addon
# for each napi target in bindings-node/package.json, cross-compiled from one Linux machine
# with `napi build --cross-compile`, which runs cargo-zigbuild (crates.io) with Zig (the
# `ziglang` wheel from PyPI) as C compiler and linker: no per-target toolchains to install,
# and the glibc builds link against glibc 2.17 symbols, so they load on old distributions
# too. Each binary is staged into its platform package (bindings-node/scripts/stage-platform.mjs)
# and packed into target/npm-dist/, with the main package last (npm publish order: platform
# packages first, since @isec/node names them in its optionalDependencies).
#
# Not part of CI: it needs each target's Rust standard library (rustup, from
# static.rust-lang.org, which CI cannot reach), cargo-zigbuild is built on first use (about
# 2 minutes), and a cold build of one target takes minutes on 2 shared cores
# (aarch64-unknown-linux-gnu: 7.6 minutes, 2.2 CPU-minutes, a 1.3 MB binary needing glibc
# 2.17 at most; x86_64-unknown-linux-musl: 5.3 minutes, 2.1 CPU-minutes).
# CI checks the platform packages' layout with the host binary instead
# (bindings-node/test/package.test.mjs).
#
# Usage: scripts/build-node-platforms.sh [target ...]    (default: every napi target)
#   ISEC_NPM_PUBLISH=1  then `npm publish` each tarball (platform packages first).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export npm_config_yes=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

start=$SECONDS
step() { printf '\n==> [%d s] %s\n' "$((SECONDS - start))" "$*"; }

node_pkg="$repo/bindings-node"
mapfile -t targets < <(node -p 'require("./bindings-node/package.json").napi.targets.join("\n")')
[ "$#" -eq 0 ] || targets=("$@")
out="$repo/target/npm-dist"
build="$repo/target/npm-build"
rm -rf "$out" "$build"
mkdir -p "$out" "$build"

step "Zig from PyPI (target/zig-venv) and cargo-zigbuild (.tools/bin)"
venv="$repo/target/zig-venv"
if ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "ziglang>=0.13"
fi
# napi-rs and cargo-zigbuild look for `zig` on PATH; the wheel ships it as a Python module.
mkdir -p "$venv/shim"
printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$venv/bin/python" >"$venv/shim/zig"
chmod +x "$venv/shim/zig"
export PATH="$venv/shim:$repo/.tools/bin:$PATH"
zig version
if ! command -v cargo-zigbuild >/dev/null; then
  mkdir -p .tools
  [ -f .tools/.gitignore ] || printf '*\n' >.tools/.gitignore
  CARGO_TARGET_DIR="$repo/target/tools-build" cargo install -q --locked cargo-zigbuild --root "$repo/.tools" </dev/null
fi
cargo-zigbuild --version

step "npm packages (bindings-node/node_modules)"
(cd "$node_pkg" && npm install --no-audit --no-fund --no-progress </dev/null)

for t in "${targets[@]}"; do
  rustup target add "$t" >/dev/null
  # glibc targets: versioned (2.17) so that the binary needs no newer glibc symbols.
  spelled="$t"
  case "$t" in *-linux-gnu) spelled="$t.2.17" ;; esac
  step "napi build --release --target $spelled --cross-compile"
  t0=$SECONDS
  (cd "$node_pkg" && npx napi build --platform --release --target "$spelled" --cross-compile \
    --output-dir "$build/$t" </dev/null)
  binary="$(ls "$build/$t"/*.node)"
  platform="$(basename "$binary" .node)"
  platform="${platform#isec.}"
  echo "$t: $(stat -c %s "$binary") bytes in $((SECONDS - t0)) s ($platform)"
  staged="$(node "$node_pkg/scripts/stage-platform.mjs" "$platform" "$binary" "$build/stage")"
  (cd "$staged" && npm pack --pack-destination "$out" </dev/null)
done

step "main package @isec/node"
(cd "$node_pkg" && npm pack --pack-destination "$out" </dev/null)
ls -l "$out"

if [ "${ISEC_NPM_PUBLISH:-0}" = 1 ]; then
  step "npm publish (platform packages, then @isec/node)"
  main="$(ls "$out"/isec-node-[0-9]*.tgz)"
  for f in "$out"/*.tgz; do [ "$f" = "$main" ] || npm publish "$f" </dev/null; done
  npm publish "$main" </dev/null
fi
step "build-node-platforms.sh done in $((SECONDS - start)) s"
