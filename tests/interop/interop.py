"""The Python column and row of the interop matrix (scripts/interop.sh, tests/interop/run.mjs).

    bindings-py/.venv/bin/python tests/interop/interop.py write|read NAME DIR

`write` writes every object of DIR/plan.json to DIR/NAME/; `read` reads every writer's objects
(whole, streamed, over the plan's ranges) and the corrupted copies, and writes
DIR/results/NAME.json. The on-disk contract is described in tests/interop/harness.mjs.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import isec

MASK = 0xFFFFFFFF


def generate(seed: int, n: int) -> bytes:
    """The plan's deterministic plaintext: xorshift32 from `seed`, four little-endian bytes per
    step (the same generator as harness.mjs and rust/src/main.rs)."""
    x = seed & MASK or 0x9E3779B9
    words = []
    for _ in range((n + 3) // 4):
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        words.append(x)
    return struct.pack(f"<{len(words)}I", *words)[:n]


def keyring(plan: dict[str, Any]) -> isec.Keyring:
    ring = isec.Keyring()
    ring.add_kek(plan["kid"], bytes.fromhex(plan["kek"]), "active")
    return ring


def pieces(data: bytes | memoryview, sizes: list[int]) -> list[memoryview]:
    view = memoryview(data)
    out, at, i = [], 0, 0
    while at < len(view):
        n = min(max(1, sizes[i % len(sizes)]), len(view) - at)
        out.append(view[at : at + n])
        at += n
        i += 1
    return out


def stream_encrypt(enc: isec.Encryptor, pt: bytes, sizes: list[int]) -> bytes:
    out = bytearray()
    for chunk in pieces(pt, sizes):
        out += enc.update(chunk)
    out += enc.finalize()
    return bytes(out)


def stream_decrypt(dec: isec.Decryptor, ct: bytes, sizes: list[int]) -> bytes:
    """Through the buffer-protocol API (`update_into`), as a zero-copy reader would."""
    out = bytearray()
    for chunk in pieces(ct, sizes):
        buf = bytearray(dec.update_len(len(chunk)))
        n = dec.update_into(chunk, buf)
        out += buf[:n]
    out += dec.finalize()
    return bytes(out)


def encrypt_object(spec: dict[str, Any], key: isec.ObjectKey, pt: bytes, sizes: list[int]) -> tuple[bytes, bytes | None]:
    stream = spec["api"] == "stream"
    if spec["layout"] == "single":
        return (stream_encrypt(isec.Encryptor(key), pt, sizes) if stream else isec.encrypt(key, pt)), None
    if spec["layout"] == "parts":
        p = spec["part_size"]
        count = max(1, -(-len(pt) // p))
        parts: list[bytes] = [b""] * count
        # One-shot parts go in reverse order: a part needs only its number and lastness.
        order = range(1, count + 1) if stream else range(count, 0, -1)
        for n in order:
            body = pt[(n - 1) * p : min(n * p, len(pt))]
            last = n == count
            parts[n - 1] = (
                stream_encrypt(isec.Encryptor.for_part(key, n, last), body, sizes)
                if stream
                else isec.encrypt_part(key, n, last, body)
            )
        return b"".join(parts), None
    ct = bytearray()
    entries = []
    at = 0
    for i, (n, length) in enumerate(spec["parts"]):
        body = pt[at : at + length]
        at += length
        # Relays do not know which part is last; the table records where the object ends,
        # and the nonce prefix of each part's encryption (the encryptor's, or the part's
        # first 7 bytes).
        if i % 2 == 1:
            enc = isec.Encryptor.for_part(key, n, False)
            part = stream_encrypt(enc, body, sizes)
            entries.append((n, length, enc.prefix))
        else:
            part = isec.encrypt_part(key, n, False, body)
            entries.append((n, length, part[:7]))
        ct += part
    table = isec.SegmentTable(entries).encode(key)
    return bytes(ct), table


def write(name: str, root: Path, plan: dict[str, Any]) -> None:
    ring = keyring(plan)
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for spec in plan["objects"]:
        pt = generate(plan["seeds"][name][spec["name"]], spec["size"])
        env, key = ring.create_envelope(
            frame_size=spec["frame_size"],
            part_size=spec["part_size"] if spec["layout"] == "parts" else None,
            table=spec["layout"] == "table",
            declared_size=spec["size"] if spec["declared"] else None,
        )
        ct, table = encrypt_object(spec, key, pt, plan["chunks"])
        (out / f"{spec['name']}.bin").write_bytes(ct)
        meta = {isec.META_ENVELOPE: env.to_text(), isec.META_KID: env.kid}
        (out / f"{spec['name']}.meta.json").write_text(json.dumps(meta))
        if table is not None:
            (out / f"{spec['name']}.isec-table").write_bytes(table)
        written[spec["name"]] = {"sha256": hashlib.sha256(pt).hexdigest(), "ciphertext_len": len(ct)}
    # Written last: its presence says the writer finished.
    (out / "written.json").write_text(json.dumps({"writer": name, "objects": written}))


class Stored:
    def __init__(self, wdir: Path, name: str, table: bool) -> None:
        self.ct = (wdir / f"{name}.bin").read_bytes()
        meta = json.loads((wdir / f"{name}.meta.json").read_text())
        self.text: str = meta["isec"]
        self.meta_kid: str | None = meta.get("isec-kid")
        self.table = (wdir / f"{name}.isec-table").read_bytes() if table else None


def shape_of(env: isec.Envelope, key: isec.ObjectKey, s: Stored) -> isec.Shape:
    if s.table is not None:
        return isec.Shape.from_table(key, s.table, len(s.ct))
    return isec.shape_for(env, len(s.ct))


def full(key: isec.ObjectKey, s: Stored) -> bytes:
    return isec.decrypt_with_table(key, s.table, s.ct) if s.table is not None else isec.decrypt(key, s.ct)


def streamed(env: isec.Envelope, key: isec.ObjectKey, s: Stored, sizes: list[int]) -> bytes:
    dec = isec.Decryptor.with_shape(key, shape_of(env, key, s)) if s.table is not None else isec.Decryptor(key)
    return stream_decrypt(dec, s.ct, sizes)


def ranged(env: isec.Envelope, key: isec.ObjectKey, s: Stored, a: int, b: int) -> bytes:
    """A ranged read as over HTTP: the fetch callback hands over exactly the planned bytes."""
    shape = shape_of(env, key, s)
    return isec.decrypt_range(key, shape, a, b, lambda start, end: s.ct[start:end])


class HarnessError(Exception):
    """A failure of the harness's own checks (not an error raised by the binding)."""


def describe(e: BaseException) -> str:
    if isinstance(e, isec.IsecError) and e.code in isec.error_codes():
        return e.code
    # Anything else is a crash of the binding (pyo3's PanicException is a BaseException) or
    # a harness fault; either way the check fails with what was raised.
    return f"NOT AN ISEC ERROR: {type(e).__module__}.{type(e).__name__}: {e}"


class Cell:
    def __init__(self) -> None:
        self.total = 0
        self.passed = 0
        self.failures: list[str] = []
        self.negatives: dict[str, dict[str, str]] = {}

    def check(self, what: str, fn: Callable[[], None]) -> None:
        self.total += 1
        try:
            fn()
            self.passed += 1
        except (KeyboardInterrupt, SystemExit):
            raise
        except HarnessError as e:
            self.failures.append(f"{what}: {e}")
        except BaseException as e:  # noqa: BLE001 - a panic must be reported, not crash the reader
            self.failures.append(f"{what}: {describe(e)}")


def same(got: bytes, want: bytes) -> None:
    if got != want:
        at = next((i for i, (x, y) in enumerate(zip(got, want, strict=False)) if x != y), min(len(got), len(want)))
        raise HarnessError(f"plaintext differs: {len(got)} bytes, want {len(want)}, first difference at {at}")


def read_writer(plan: dict[str, Any], root: Path, writer: str, ring: isec.Keyring) -> Cell:
    cell = Cell()
    wdir = root / writer
    sizes = plan["read_chunks"]
    try:
        written = json.loads((wdir / "written.json").read_text())
    except OSError:
        cell.total += 1
        cell.failures.append("no objects: the writer did not finish")
        return cell
    for spec in plan["objects"]:
        name, n = spec["name"], spec["size"]
        pt = generate(plan["seeds"][writer][name], n)
        state: dict[str, Any] = {}

        def ready(spec: dict[str, Any] = spec, state: dict[str, Any] = state) -> tuple[Stored, isec.Envelope, isec.ObjectKey]:
            if "stored" not in state:
                try:
                    state["stored"] = Stored(wdir, spec["name"], spec["layout"] == "table")
                except (OSError, ValueError, KeyError) as e:
                    raise HarnessError(f"{spec['name']}: {e}") from e
            if "env" not in state:
                state["env"] = isec.Envelope.decode_text(state["stored"].text)
            if "key" not in state:
                state["key"] = ring.open(state["env"])
            return state["stored"], state["env"], state["key"]

        def hash_check(name: str = name, pt: bytes = pt) -> None:
            got = written.get("objects", {}).get(name, {}).get("sha256")
            want = hashlib.sha256(pt).hexdigest()
            if got != want:
                raise HarnessError(f"writer recorded {got}, plan gives {want}")

        def envelope_check(spec: dict[str, Any] = spec, n: int = n, ready: Any = ready) -> None:
            s, env, _ = ready()
            i = env.info()
            bad = []
            if i.kid != plan["kid"] or s.meta_kid != plan["kid"]:
                bad.append(f"kid {i.kid} / isec-kid {s.meta_kid}")
            if i.layout != spec["layout"]:
                bad.append(f"layout {i.layout}")
            if i.frame_size != spec["frame_size"]:
                bad.append(f"frame size {i.frame_size}")
            if i.part_size != spec["part_size"]:
                bad.append(f"part size {i.part_size}")
            if i.declared_size != (n if spec["declared"] else None):
                bad.append(f"declared size {i.declared_size}")
            if s.table is None and isec.shape_for(env, len(s.ct)).plaintext_len != n:
                bad.append(f"plaintext length {isec.shape_for(env, len(s.ct)).plaintext_len}")
            if bad:
                raise HarnessError(", ".join(bad))

        def whole(ready: Any = ready, pt: bytes = pt) -> None:
            s, _, key = ready()
            same(full(key, s), pt)

        def stream(ready: Any = ready, pt: bytes = pt) -> None:
            s, env, key = ready()
            same(streamed(env, key, s, sizes), pt)

        cell.check(f"{name} plaintext hash", hash_check)
        cell.check(f"{name} envelope", envelope_check)
        cell.check(f"{name} whole", whole)
        cell.check(f"{name} stream", stream)
        for a, b in spec["ranges"]:

            def rng(a: int = a, b: int = b, ready: Any = ready, pt: bytes = pt, n: int = n) -> None:
                s, env, key = ready()
                lo = min(a, n)
                same(ranged(env, key, s, a, b), pt[lo : max(lo, min(b, n))])

            cell.check(f"{name} range [{a},{b})", rng)
    for neg in plan["negatives"]:
        base = next(o for o in plan["objects"] if o["name"] == neg["base"])
        codes = {}
        for mode in ("oneshot", "stream", "range"):
            try:
                s = Stored(wdir, neg["name"], base["layout"] == "table")
                env = isec.Envelope.decode_text(s.text)
                key = ring.open(env)
                if mode == "oneshot":
                    full(key, s)
                elif mode == "stream":
                    streamed(env, key, s, sizes)
                else:
                    ranged(env, key, s, 0, base["size"])
                codes[mode] = "succeeded"
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001 - a panic is a result here
                codes[mode] = describe(e)
        cell.negatives[neg["name"]] = codes
    return cell


def read(name: str, root: Path, plan: dict[str, Any]) -> None:
    t0 = time.monotonic()
    ring = keyring(plan)
    cells = {}
    for writer in plan["writers"]:
        c = read_writer(plan, root, writer, ring)
        cells[writer] = {"total": c.total, "passed": c.passed, "failures": c.failures, "negatives": c.negatives}
    doc = {"reader": name, "ms": int((time.monotonic() - t0) * 1000), "cells": cells}
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / f"{name}.json").write_text(json.dumps(doc))


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("write", "read"):
        print("usage: interop.py write|read NAME DIR", file=sys.stderr)
        return 2
    mode, name, root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    plan = json.loads((root / "plan.json").read_text())
    (write if mode == "write" else read)(name, root, plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
