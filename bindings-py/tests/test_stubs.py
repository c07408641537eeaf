"""The type stubs match the native module (mypy.stubtest), and the pure-Python package and
its examples type-check under `mypy --strict`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import isec

pytest.importorskip("mypy")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # From an empty folder, so that the installed package (not the source tree) is checked
    # and mypy's cache stays out of the repository.
    with tempfile.TemporaryDirectory() as cwd:
        env = {**os.environ, "MYPY_CACHE_DIR": os.path.join(cwd, ".mypy_cache")}
        return subprocess.run(
            [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )


def test_stubs_match_the_native_module() -> None:
    r = run("mypy.stubtest", "isec._isec")
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_is_typed_and_checks_strictly() -> None:
    pkg = Path(isec.__file__).parent
    assert (pkg / "py.typed").is_file() and (pkg / "_isec.pyi").is_file()
    r = run("mypy", "--strict", "--no-incremental", "-p", "isec")
    assert r.returncode == 0, r.stdout + r.stderr


def test_stub_all_matches_runtime() -> None:
    import isec._isec as native

    stub = (Path(isec.__file__).parent / "_isec.pyi").read_text()
    for name in native.__all__:
        assert f'"{name}"' in stub, name
    assert set(isec.__all__) >= set(native.__all__) - {"KeyWrapper"}


EXAMPLE = """
import isec

ring = isec.Keyring()
ring.add_kek("kek-2026", isec.generate_kek())
envelope, key = ring.create_envelope(frame_size=1 << 20, declared_size=5)
body: bytes = isec.encrypt(key, b"hello")
enc = isec.Encryptor(key)
out = bytearray(enc.update_len(5))
n: int = enc.update_into(memoryview(b"hello"), out)
plan = isec.shape_for(envelope, len(body)).map_range(0, 2)
rng: str | None = plan.http_range
try:
    isec.decrypt(ring.open(envelope), body[:-1])
except isec.AuthenticationError as e:
    code: str = e.code
"""


def test_user_code_type_checks(tmp_path: Path) -> None:
    f = tmp_path / "example.py"
    f.write_text(EXAMPLE)
    r = run("mypy", "--strict", "--no-incremental", str(f))
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("import isec\nisec.encrypt('not a key', 'not bytes')\n")
    r = run("mypy", "--strict", "--no-incremental", str(bad))
    assert r.returncode != 0 and "arg-type" in r.stdout, "the stubs catch wrong argument types"
