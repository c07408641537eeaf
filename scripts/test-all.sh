#!/usr/bin/env bash
# Installs what a fresh machine lacks, then runs every test of every package.
# Used as is by README.md and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain targets for the no_std builds"
rustup target add wasm32-unknown-unknown thumbv7em-none-eabihf >/dev/null

step "core builds no_std (no alloc, then alloc) for wasm32 and thumbv7em"
for target in wasm32-unknown-unknown thumbv7em-none-eabihf; do
  cargo build -q -p isec-core --no-default-features --target "$target"
  cargo build -q -p isec-core --no-default-features --features alloc --target "$target"
done

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy -q --workspace --lib --bins -- -D warnings

step "Rust tests: core (both backends), corpus, CLI"
cargo test --workspace
