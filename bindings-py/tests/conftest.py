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


# --- the S3 server (scripts/garage.sh) --------------------------------------------------------

S3_VARS = ("ISEC_S3_ENDPOINT", "ISEC_S3_ACCESS_KEY_ID", "ISEC_S3_SECRET_ACCESS_KEY")


def s3_environment() -> dict[str, str] | None:
    """The server's ISEC_S3_* variables: from the environment (scripts/test-python.sh
    exports them), else from the env file of a server `scripts/garage.sh start` left running."""
    if all(os.environ.get(v) for v in S3_VARS):
        return {k: v for k, v in os.environ.items() if k.startswith("ISEC_")}
    env_file = Path(os.environ.get("ISEC_GARAGE_STATE", REPO / "target" / "garage")) / "env"
    if env_file.is_file():
        pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        found = {k.strip(): v.strip() for k, v in pairs}
        if all(found.get(v) for v in S3_VARS):
            return found
    return None


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    """Skips the S3 tests when no server is configured, except under CI=true, where they
    must run (a missing server fails them); ISEC_S3=0 skips them outside CI."""
    ci = os.environ.get("CI") == "true"
    if os.environ.get("ISEC_S3") == "0" and not ci:
        pytest.skip("NOT CHECKED: S3 helper against a server: ISEC_S3=0")
    env = s3_environment()
    if env is None:
        msg = "no S3 server: ISEC_S3_* unset and no target/garage/env (scripts/garage.sh start)"
        if ci:
            pytest.fail(f"{msg}: CI must test the S3 helper against Garage")
        pytest.skip(f"NOT CHECKED: S3 helper against a server: {msg}")
    return env


def s3_client_for(env: dict[str, str], endpoint: str | None = None) -> Any:
    boto3 = pytest.importorskip("boto3") if os.environ.get("CI") != "true" else __import__("boto3")
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint or env["ISEC_S3_ENDPOINT"],
        region_name=env.get("ISEC_S3_REGION", "garage"),
        aws_access_key_id=env["ISEC_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["ISEC_S3_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
    )


@pytest.fixture(scope="session")
def s3_raw(s3_env: dict[str, str]) -> Any:
    """A plain boto3 client on the server: what an attacker or another tool sees."""
    return s3_client_for(s3_env)


@pytest.fixture(scope="session")
def s3_bucket(s3_env: dict[str, str], s3_raw: Any) -> str:
    """This suite's own bucket (ISEC_PY_BUCKET, default isec-py; created by
    scripts/test-python.sh with `scripts/garage.sh bucket`)."""
    name = os.environ.get("ISEC_PY_BUCKET", "isec-py")
    try:
        s3_raw.head_bucket(Bucket=name)
    except Exception as e:  # noqa: BLE001 - any failure means the bucket is not usable
        pytest.fail(f"bucket {name!r} is not usable ({e}): run `scripts/garage.sh bucket {name}`")
    return name
