#!/usr/bin/env bash
# The `isec s3` tests (cli/tests/s3_*.rs, #[ignore]d in the plain `cargo test`) against Garage
# on 127.0.0.1 (scripts/garage.sh): a server already running is used as it is (test-all.sh
# starts one for every suite); otherwise this script starts one and stops it on exit. The
# tests get the server as the AWS SDK's own variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION) and write under a fresh prefix of bucket isec-cli.
#
#   bash scripts/test-cli-s3.sh                 # every S3 test of the CLI
#   bash scripts/test-cli-s3.sh rotate          # extra arguments go to the test harness
set -euo pipefail
cd "$(dirname "$0")/.."

if bash scripts/garage.sh status </dev/null >/dev/null 2>&1; then
  echo "using the running server"
else
  # Only a server this script started is stopped on exit.
  trap 'bash scripts/garage.sh stop </dev/null || true' EXIT
  bash scripts/garage.sh start </dev/null >/dev/null
fi
bash scripts/garage.sh bucket isec-cli </dev/null
set -a
# shellcheck disable=SC1091
. "${ISEC_GARAGE_STATE:-target/garage}/env"
set +a

export AWS_ENDPOINT_URL="$ISEC_S3_ENDPOINT" AWS_REGION="$ISEC_S3_REGION"
export AWS_ACCESS_KEY_ID="$ISEC_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$ISEC_S3_SECRET_ACCESS_KEY"
export ISEC_CLI_S3_BUCKET=isec-cli
# No shared AWS files of the machine's user: only the server above.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN
# One test at a time: each runs jobs with their own concurrency, and the machine may be small.
cargo test -q -p isec-cli --test 's3_*' -- --ignored --test-threads=1 "$@"
