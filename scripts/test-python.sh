#!/usr/bin/env bash
# The Python package (bindings-py): builds it with its PEP 517 backend (maturin) into a venv
# inside the repository, then runs its pytest suite. Works on a fresh machine, with CI=true
# and no standard input. Everything it installs stays in bindings-py/.venv (pip's download
# cache and cargo's registry cache aside).
#
# The S3 helper's tests (tests/test_s3.py) run against Garage on 127.0.0.1
# (scripts/garage.sh): a server already running is used as it is (test-all.sh starts one for
# every suite); otherwise this script starts one and stops it on exit. ISEC_S3=0 skips them
# (refused under CI=true, where they must run).
#
#   bash scripts/test-python.sh            # the whole suite
#   bash scripts/test-python.sh -k corpus  # extra arguments go to pytest
#   ISEC_S3=0 bash scripts/test-python.sh  # without the S3 server
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
# What this script started, stopped on exit.
stops=()
stop_started() { local c; for c in "${stops[@]}"; do $c </dev/null || true; done; }
trap stop_started EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1

venv=bindings-py/.venv
python=${PYTHON:-python3}

step "virtual environment ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'

step "tools: maturin, pytest, mypy, numpy; boto3 and distributed (the package's s3 and dask extras); cryptography (writes previous-proxy objects in tests); awscli v1 and s3cmd (tests/test_tools.py copies objects with them)"
"$venv/bin/pip" install -q "maturin>=1.16,<2" "pytest>=8" "mypy>=1.10" numpy "boto3>=1.34" "distributed>=2024.1" \
  "cryptography>=42" "awscli>=1.29,<2" "s3cmd>=2.3"

# rclone is not on PyPI: Debian's package. Installed when missing and the machine can (root
# and apt-get); otherwise tests/test_tools.py fails under CI=true and skips elsewhere.
if ! command -v rclone >/dev/null 2>&1; then
  step "rclone (apt-get install rclone)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get install -y -q rclone </dev/null || { apt-get update -q </dev/null && apt-get install -y -q rclone </dev/null; }; } >/dev/null ||
      echo "rclone could not be installed: tests/test_tools.py will say so" >&2
  else
    echo "no root or no apt-get: rclone not installed; tests/test_tools.py will say so" >&2
  fi
fi

step "the package: pip install ./bindings-py (maturin, release build)"
# --no-build-isolation: use the maturin just installed (found on PATH by its PEP 517 hook)
# rather than fetching another copy into a temporary environment.
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps ./bindings-py

if [ "${ISEC_S3:-1}" = 0 ] && [ "${CI:-}" != true ]; then
  step "S3 server: none (ISEC_S3=0: the S3 helper's tests skip)"
else
  if [ "${ISEC_S3:-1}" = 0 ]; then
    echo "ISEC_S3=0 is ignored under CI=true: the S3 helper's tests must run" >&2
    unset ISEC_S3
  fi
  step "S3 server: Garage on 127.0.0.1 (scripts/garage.sh), bucket isec-py"
  if bash scripts/garage.sh status </dev/null 2>/dev/null; then
    echo "using the running server"
  else
    # Only a server this script started is stopped on exit.
    stops+=("bash scripts/garage.sh stop")
    bash scripts/garage.sh start </dev/null >/dev/null
  fi
  bash scripts/garage.sh bucket isec-py </dev/null
  step "S3 cluster: three Garage nodes, replication factor 3 (scripts/garage.sh cluster), for tests/test_dask.py"
  if bash scripts/garage.sh cluster status </dev/null 2>/dev/null; then
    echo "using the running cluster"
  else
    # Only a cluster this script started is stopped on exit.
    stops+=("bash scripts/garage.sh cluster stop")
    bash scripts/garage.sh cluster start </dev/null >/dev/null
  fi
  set -a
  # shellcheck disable=SC1091
  . "${ISEC_GARAGE_STATE:-target/garage}/env"
  set +a
  export ISEC_PY_BUCKET=isec-py
fi

step "pytest"
# From bindings-py/tests' parent so the installed package is what gets imported.
set +e
(cd bindings-py && .venv/bin/python -m pytest tests -p no:cacheprovider "$@")
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: counting that as a failure" >&2
  exit 1
fi
exit "$status"
