#!/usr/bin/env bash
# Everything a release uploads to PyPI, built on one x86_64 Linux machine with rustup and
# Python 3.11+, into target/wheels/release/:
#
#   isec      the Python package: abi3 wheels (CPython 3.11+) for manylinux2014 (glibc 2.17
#             and later) and musllinux_1_2 (musl 1.2: Alpine 3.13+), and the sdist
#   isec-cli  the `isec` command (cli/pyproject.toml, maturin `bin`): the same two platforms
#
# zig (the ziglang package) links every wheel against the oldest C library its tag allows,
# whatever this machine has; AWS-LC's C code is compiled by the same zig clang. Each wheel
# goes through `twine check --strict` and an ELF audit: `auditwheel show` for glibc (the tag
# must be the one the wheel claims, and no library outside the base system may be linked),
# the same rules read from the ELF files for musl (see audit_musl); the glibc wheels
# are installed into a scratch venv and run (`import isec` and a round trip; `isec
# --version` and `isec demo`). The musl isec wheel cannot run here (no musl Python); the musl
# isec-cli is a static executable and runs here as it is.
#
# CI builds and tests only the isec manylinux2014 wheel and the sdist
# (scripts/test-python.sh): the others are release artifacts, each a full release build of
# its own (on 2 cores: isec musl about 4 min, isec-cli about 8 min per platform).
#
#   bash scripts/build-wheels.sh                   # all of them
#   ISEC_WHEELS="isec-musl cli-gnu" bash scripts/build-wheels.sh
#   twine upload target/wheels/release/*           # after checking the versions
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "build-wheels: $*" >&2; exit 1; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
python=${PYTHON:-python3}
tools=bindings-py/.venv-build
out=target/wheels/release
kinds=${ISEC_WHEELS:-isec-gnu isec-musl cli-gnu cli-musl}
start=$SECONDS

step "build tools ($tools): maturin, ziglang, auditwheel, twine"
[ -x "$tools/bin/python" ] || "$python" -m venv "$tools"
"$tools/bin/pip" install -q "maturin>=1.16,<2" "ziglang>=0.13" "auditwheel>=6.1" "twine>=6.1"
case " $kinds " in *-musl*) rustup target add x86_64-unknown-linux-musl >/dev/null ;; esac
rm -rf "$out"
mkdir -p "$out"

# build KIND: one wheel into $out, its path on stdout's last line.
build() {
  local kind=$1 dir target compat
  case $kind in
    isec-*) dir=bindings-py ;;
    cli-*) dir=cli ;;
    *) fail "unknown wheel kind $kind (isec-gnu isec-musl cli-gnu cli-musl)" ;;
  esac
  case $kind in
    *-gnu) target=x86_64-unknown-linux-gnu compat=manylinux2014 ;;
    *-musl) target=x86_64-unknown-linux-musl compat=musllinux_1_2 ;;
  esac
  local t0=$SECONDS
  (cd "$dir" && PATH="$repo/$tools/bin:$PATH" "$repo/$tools/bin/maturin" build -q --release --zig \
    --target "$target" --compatibility "$compat" --out "$repo/$out/$kind") >&2
  echo "$kind: built in $((SECONDS - t0)) s" >&2
  ls "$out/$kind"/*.whl
}

# audit WHEEL TAG: auditwheel agrees with the tag and finds no outside library.
audit() {
  local show
  show=$("$tools/bin/auditwheel" show "$1" 2>&1) || { echo "$show"; fail "auditwheel show failed on $1"; }
  echo "$show"
  show=$(tr -s '\n' ' ' <<<"$show")
  grep -q "consistent with the following platform tag: \"$2\"" <<<"$show" || fail "$1 is not $2"
  if grep -q 'external shared libraries are required' <<<"$show"; then
    fail "$1 links a library outside the $2 base system"
  fi
}

# audit_musl WHEEL: what auditwheel would check, for a wheel zig linked against musl.
# auditwheel cannot judge these here: on a glibc machine it reads the host's libc.so (a
# linker script) and stops, and with --ldpaths it expects the C library under Alpine's name,
# libc.musl-x86_64.so.1, while zig records musl's own name, libc.so. musl's loader resolves
# either name to itself, so the wheel loads on any musl system; what matters is that the
# wheel's ELF files need no other library and no glibc symbol version.
audit_musl() {
  "$tools/bin/python" - "$1" <<'PY'
import io, sys, zipfile
from elftools.elf.elffile import ELFFile
from elftools.elf.dynamic import DynamicSection
from elftools.elf.gnuversions import GNUVerNeedSection

allowed = {"libc.so", "libc.musl-x86_64.so.1"}
with zipfile.ZipFile(sys.argv[1]) as wheel:
    objects = [n for n in wheel.namelist() if n.endswith(".so") or "/bin/" in n or ".data/scripts/" in n]
    assert objects, "no ELF file in the wheel"
    for name in objects:
        elf = ELFFile(io.BytesIO(wheel.read(name)))
        needed = {t.needed for s in elf.iter_sections() if isinstance(s, DynamicSection)
                  for t in s.iter_tags() if t.entry.d_tag == "DT_NEEDED"}
        versions = {a.name for s in elf.iter_sections() if isinstance(s, GNUVerNeedSection)
                    for _, auxes in s.iter_versions() for a in auxes}
        print(f"{name}: needs {sorted(needed) or 'nothing (static)'}; symbol versions {sorted(versions) or 'none'}")
        assert needed <= allowed, f"{name} needs {sorted(needed - allowed)} beyond musl's libc"
        assert not versions, f"{name} asks for symbol versions {sorted(versions)} (glibc's)"
        assert elf.header.e_machine == "EM_X86_64", elf.header.e_machine
PY
}

for kind in $kinds; do
  step "$kind"
  wheel=$(build "$kind" | tail -n 1)
  case $kind in
    *-gnu) audit "$wheel" manylinux_2_17_x86_64 ;;
    *-musl) audit_musl "$wheel" ;;
  esac
  mv "$wheel" "$out/"
  rmdir "$out/$kind"
done

if [[ " $kinds " == *" isec-gnu "* ]]; then
  step "isec sdist"
  (cd bindings-py && "$repo/$tools/bin/maturin" sdist --out "$repo/$out")
fi

step "twine check --strict"
"$tools/bin/twine" check --strict "$out"/*
python3 scripts/readme_links.py bindings-py/README.md cli/README.md

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if ls "$out"/isec-[0-9]*manylinux_2_17_x86_64*.whl >/dev/null 2>&1; then
  step "isec wheel in a scratch venv: import and round trip"
  "$python" -m venv "$scratch/isec"
  "$scratch/isec/bin/pip" install -q "$out"/isec-[0-9]*manylinux_2_17_x86_64*.whl
  (cd "$scratch" && "$scratch/isec/bin/python" -c '
import isec
ring = isec.Keyring()
ring.add_kek("k", isec.generate_kek())
env, key = ring.create_envelope()
assert isec.decrypt(key, isec.encrypt(key, b"wheel")) == b"wheel"
print("isec", isec.__version__, "from", isec.__file__)')
fi
if ls "$out"/isec_cli-*manylinux_2_17_x86_64*.whl >/dev/null 2>&1; then
  step "isec-cli wheel in a scratch venv: isec --version, isec demo"
  "$python" -m venv "$scratch/cli"
  "$scratch/cli/bin/pip" install -q "$out"/isec_cli-*manylinux_2_17_x86_64*.whl
  version=$("$scratch/cli/bin/isec" --version)
  echo "$version"
  [ "$version" = "isec $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)" ] || fail "unexpected version: $version"
  (cd "$scratch" && "$scratch/cli/bin/isec" demo >/dev/null)
fi

if ls "$out"/isec_cli-*musllinux_1_2_x86_64.whl >/dev/null 2>&1; then
  # The musl build of the command is one static executable: it runs on this machine too.
  step "isec-cli musl wheel: its static isec runs (isec --version, isec demo)"
  mkdir "$scratch/cli-musl"
  wheel=$(ls "$repo/$out"/isec_cli-*musllinux_1_2_x86_64.whl)
  (cd "$scratch/cli-musl" && "$python" -m zipfile -e "$wheel" . &&
    chmod +x isec_cli-*.data/scripts/isec && ./isec_cli-*.data/scripts/isec --version &&
    ./isec_cli-*.data/scripts/isec demo >/dev/null)
fi

ls -l "$out"
step "build-wheels.sh done in $((SECONDS - start)) s"
