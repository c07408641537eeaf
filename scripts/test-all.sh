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

step "release packaging of the crates: licenses, metadata, cargo package, docs.rs build (scripts/test-publish.sh)"
bash scripts/test-publish.sh

step "second reader: tests/spec_reader (Python + cryptography, written from SPEC.md alone) against the corpus"
sh tests/spec_reader/run.sh </dev/null

step "S3 server for the package tests: Garage on 127.0.0.1 (scripts/garage.sh; built once into .tools/)"
# One server for every suite below; each suite makes its own bucket. Stopped on exit.
bash scripts/garage.sh install </dev/null
trap 'bash scripts/garage.sh stop || true' EXIT
bash scripts/garage.sh start </dev/null >/dev/null
bash scripts/garage.sh check </dev/null

step "isec s3 (cli): objects, bucket jobs, crashes, job control against the server"
bash scripts/test-cli-s3.sh

step "Node package (bindings-node): build, index.d.ts drift, node --test"
bash scripts/test-node.sh

step "Python package (bindings-py): the release wheel (abi3, manylinux2014), auditwheel, twine, installed in a clean venv; stubtest, pytest"
bash scripts/test-python.sh

step "Node <-> Python: objects written by each S3 helper read by the other (tests/cross)"
node --test tests/cross/ </dev/null

step "isec gateway: AWS CLI, boto3, s3cmd, rclone and JS SDK v3 through it; the backend checked directly (scripts/test-gateway.sh)"
bash scripts/test-gateway.sh </dev/null

step "browser package (bindings-wasm): build, Node and headless-Chromium tests, upload end to end"
bash scripts/test-wasm.sh

step "interop matrix: every writer read by every reader (scripts/interop.sh)"
bash scripts/interop.sh </dev/null

step "fuzz targets: short smoke runs (long runs are recorded in fuzz/README.md)"
if rustup toolchain list | grep -q '^nightly'; then
  if [ ! -x .tools/bin/cargo-fuzz ]; then
    CARGO_TARGET_DIR="$PWD/target/tools-build" cargo install -q cargo-fuzz --locked --root "$PWD/.tools"
  fi
  for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v isec-fuzz); do
    (cd fuzz && PATH="$PWD/../.tools/bin:$PATH" cargo +nightly fuzz run --sanitizer none "$t" -- -max_total_time="${ISEC_FUZZ_SECONDS:-10}" -rss_limit_mb=2048 2>&1 | tail -n 2)
  done
else
  echo "NOT RUN: fuzz smoke runs need the nightly toolchain, which this machine lacks"
fi

