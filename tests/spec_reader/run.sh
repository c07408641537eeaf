#!/bin/sh
# Second reader of SPEC.md against tests/vectors/: needs python3 (>= 3.9.2) and PyPI.
# cryptography >= 51 for its HPKE (§3.5); an older venv is upgraded rather than recreated.
set -eu
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import cryptography.hazmat.primitives.hpke, pytest" 2>/dev/null; then
    .venv/bin/python -m pip install -q --upgrade "cryptography>=51" pytest
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider test_spec_reader.py "$@"
