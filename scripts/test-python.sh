#!/usr/bin/env bash
# The Python package (bindings-py): builds it with its PEP 517 backend (maturin) into a venv
# inside the repository, then runs its pytest suite. Works on a fresh machine, with CI=true
# and no standard input. Everything it installs stays in bindings-py/.venv (pip's download
# cache and cargo's registry cache aside).
#
#   bash scripts/test-python.sh            # the whole suite
#   bash scripts/test-python.sh -k corpus  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1

venv=bindings-py/.venv
python=${PYTHON:-python3}

step "virtual environment ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'

step "tools: maturin, pytest, mypy, numpy"
"$venv/bin/pip" install -q "maturin>=1.16,<2" "pytest>=8" "mypy>=1.10" numpy

step "the package: pip install ./bindings-py (maturin, release build)"
# --no-build-isolation: use the maturin just installed (found on PATH by its PEP 517 hook)
# rather than fetching another copy into a temporary environment.
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps ./bindings-py

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
