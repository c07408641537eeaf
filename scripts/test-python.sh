#!/usr/bin/env bash
# The Python package (bindings-py): builds the wheel a release uploads to PyPI, checks it
# (auditwheel, twine), installs that wheel into a clean venv, then runs the pytest suite
# against it. Works on a fresh machine, with CI=true and no standard input. Everything it
# installs stays in bindings-py/.venv-build (maturin, zig, auditwheel, twine) and
# bindings-py/.venv (the wheel and what its tests use), pip's download cache and cargo's
# registry cache aside; wheels and the sdist go to target/wheels/isec/.
#
# The wheel is abi3 (CPython 3.11+) for manylinux2014, i.e. glibc 2.17 and later (Amazon
# Linux 2, Debian 11, Ubuntu 20.04, RHEL 7): maturin links it with zig's clang against
# glibc 2.17 symbols, whatever glibc this machine has. AWS-LC's C code (aws-lc-sys) is
# compiled by the same zig clang for that target.
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
repo=$PWD

step() { printf '\n==> %s\n' "$*"; }
# What this script started, stopped on exit.
stops=()
stop_started() { local c; for c in "${stops[@]}"; do $c </dev/null || true; done; }
trap stop_started EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1

venv=bindings-py/.venv
tools=bindings-py/.venv-build
wheels=target/wheels/isec
python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'

step "build tools ($tools): maturin, ziglang (the linker for glibc 2.17), auditwheel, twine"
[ -x "$tools/bin/python" ] || "$python" -m venv "$tools"
"$tools/bin/pip" install -q "maturin>=1.16,<2" "ziglang>=0.13" "auditwheel>=6.1" "twine>=6.1"

step "the wheel: maturin build --release --zig --compatibility manylinux2014 (abi3), and the sdist"
rm -rf "$wheels"
# maturin finds zig through the ziglang package of the Python it runs under.
(cd bindings-py && PATH="$PWD/../$tools/bin:$PATH" ../"$tools"/bin/maturin build -q --release \
  --zig --compatibility manylinux2014 --out "../$wheels")
(cd bindings-py && ../"$tools"/bin/maturin sdist --out "../$wheels")
wheel=$(ls "$wheels"/isec-*-cp311-abi3-*manylinux_2_17_x86_64*.whl)
sdist=$(ls "$wheels"/isec-*.tar.gz)
ls -l "$wheels"

step "auditwheel show: the wheel needs nothing above glibc 2.17 and no library outside the system's"
show=$("$tools/bin/auditwheel" show "$wheel")
echo "$show"
# auditwheel wraps its sentences: match on the text joined into one line.
show=$(tr -s '\n' ' ' <<<"$show")
grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' <<<"$show" ||
  { echo "auditwheel: the wheel is not manylinux_2_17 (glibc 2.17)" >&2; exit 1; }
if grep -q 'external shared libraries are required' <<<"$show"; then
  echo "auditwheel: the wheel links a library that is not part of the manylinux2014 system" >&2
  exit 1
fi

step "twine check: wheel and sdist metadata and long description render on PyPI"
"$tools/bin/twine" check --strict "$wheel" "$sdist"
python3 scripts/readme_links.py bindings-py/README.md

step "a clean venv ($venv) with the built wheel and its s3, dask and test extras"
# Made anew each run: nothing of the source tree or a previous build is importable.
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q "$wheel[s3,dask,test]"
(cd / && "$repo/$venv/bin/python" -c 'import isec, importlib.metadata as m
print("isec", isec.__version__, "from", isec.__file__)
print(m.distribution("isec").read_text("WHEEL").strip())')

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
