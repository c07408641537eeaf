"""Shared fixtures: the corpus in tests/vectors (part of the spec), its keys, and the
previous proxy's objects in ../shared/vectors/s3proxy."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import isec

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"


@cache
def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def pattern(n: int) -> bytes:
    """The corpus plaintext: byte i of a plaintext of length n is i % 251."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def keyring_with(states: dict[str, str] | None = None) -> isec.Keyring:
    """A keyring from keys.json: with `states`, exactly those kids in those states; without,
    every key decrypt-only (the corpus's rule, keys.json `comment`)."""
    keys = load("keys.json")["keys"]
    wanted = states if states is not None else {kid: "decrypt_only" for kid in keys}
    ring = isec.Keyring()
    for kid, state in wanted.items():
        k = keys[kid]
        if "legacy_secret" in k:
            ring.add_legacy_secret_string(kid, k["legacy_secret"])
        else:
            ring.add_kek(kid, bytes.fromhex(k["kek"]), state)
    return ring


def raises_code(exc: type[BaseException], code: str) -> Any:
    """`pytest.raises` for an isec error class that also checks `.code`."""
    return _RaisesCode(exc, code)


class _RaisesCode:
    def __init__(self, exc: type[BaseException], code: str) -> None:
        self.cm = pytest.raises(exc)
        self.code = code

    def __enter__(self) -> Any:
        self.info = self.cm.__enter__()
        return self.info

    def __exit__(self, *args: Any) -> bool:
        # pytest.raises fails by itself when nothing was raised, and returns False (so the
        # exception propagates) when another class was raised.
        if not self.cm.__exit__(*args):
            return False
        got = getattr(self.info.value, "code", None)
        assert got == self.code, f"code {got!r}, expected {self.code!r}"
        return True


FAMILY_CLASS: dict[str, type[isec.IsecError]] = {
    "authentication": isec.AuthenticationError,
    "key": isec.IsecKeyError,
    "stream": isec.StreamError,
    "format": isec.FormatError,
    "usage": isec.UsageError,
}


def class_for(code: str) -> type[isec.IsecError]:
    """The exception class core's family table assigns to `code`."""
    return FAMILY_CLASS[isec.error_codes()[code]]


def expect_error(code: str) -> Any:
    return raises_code(class_for(code), code)


# --- the previous proxy's objects -----------------------------------------------------------


def shared_vectors_dir() -> Path | None:
    """../shared/vectors/s3proxy (or $ISEC_SHARED_VECTORS). Under CI=true a missing folder
    fails the tests that need it; elsewhere they skip and say what was not checked."""
    env = os.environ.get("ISEC_SHARED_VECTORS")
    candidates = [Path(env) / "s3proxy", Path(env)] if env else [REPO.parent / "shared" / "vectors" / "s3proxy"]
    for c in candidates:
        if (c / "single_put.json").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def s3proxy() -> Iterator[Path]:
    d = shared_vectors_dir()
    if d is None:
        msg = "s3proxy legacy vectors not found (../shared/vectors/s3proxy or $ISEC_SHARED_VECTORS)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg}: CI must check the legacy reader against them")
        pytest.skip(f"NOT CHECKED: legacy reader against the previous proxy's objects: {msg}")
    yield d


def splitter(sizes: list[int]) -> Callable[[bytes], Iterator[memoryview]]:
    """Cuts data into pieces of the given sizes, cycled."""

    def cut(data: bytes) -> Iterator[memoryview]:
        view = memoryview(data)
        at, i = 0, 0
        while at < len(data):
            n = max(1, sizes[i % len(sizes)])
            yield view[at : at + n]
            at += n
            i += 1

    return cut
