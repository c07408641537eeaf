#!/usr/bin/env bash
# Long fuzzing runs: each target until 10 million executions or the time limit, whichever
# comes first. Usage: fuzz/run-long.sh [SECONDS_PER_TARGET] [TARGET...]
# FUZZ_SANITIZER=none runs without AddressSanitizer (safe Rust; about 3x the executions).
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-1200}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=($(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v isec-fuzz))
python3 seed.py >/dev/null
mkdir -p logs
for t in "${targets[@]}"; do
  PATH="$PWD/../.tools/bin:$PATH" cargo +nightly fuzz run --sanitizer "${FUZZ_SANITIZER:-address}" "$t" -- -runs=10000000 -max_total_time="$secs" -rss_limit_mb=2048 \
    >"logs/$t.log" 2>&1
  rc=$?
  line=$(grep -E '^Done [0-9]+ runs' "logs/$t.log" | tail -n 1)
  crash=$(ls artifacts/"$t" 2>/dev/null | wc -l)
  echo "$t rc=$rc ${line:-no summary} artifacts=$crash"
done
