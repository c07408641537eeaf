#!/bin/sh
# Second reader of SPEC.md against tests/vectors/: needs python3 (>= 3.8) and PyPI.
set -eu
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q cryptography pytest
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider test_spec_reader.py "$@"
