"""No panic across the boundary: whatever a caller or an attacker hands the package, the
answer is a typed ``IsecError`` with one of core's codes (or ``TypeError`` when the Python
type of an argument is wrong), never a Rust panic (pyo3's ``PanicException``), another
exception class, a crash, a hang or an unbounded allocation.

What test_errors.py already covers (one trigger per code, mutated envelopes, mutated
ciphertexts) is not repeated; this adds garbage envelope bytes and text and other parsers'
garbage (thousands of seeded cases), every truncation, envelopes and objects claiming huge
sizes and counts (in a child process with an address-space limit and a timeout, whose peak
RSS is checked), wrong argument types call by call, out-of-range integers, oversized
inputs, wrong output buffers for the ``*_into`` and in-place calls, and calls after
``finalize`` and after an error.

Classes seen: ``IsecError`` subclasses (one per family) with ``.code``; ``TypeError`` for an
argument of the wrong Python type (``None``, ``str`` for bytes, ``float`` for ``int``, an
object of another class, a read-only buffer where a writable one is needed).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import re
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import isec

from .conftest import FAMILY_CLASS

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"
CODES: dict[str, str] = isec.error_codes()
F = 4096
MIB = 1 << 20
# Peak resident memory a child running the huge-size cases may reach.
RSS_BOUND = 256 * MIB


def vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


# --- outcomes ---------------------------------------------------------------------------------


class Foreign(AssertionError):
    """An exception that is neither a typed isec error nor an accepted TypeError."""


def outcome(fn: Callable[[], object], *, type_error_ok: bool = True) -> str:
    """Runs `fn`: "ok", the code of the typed error it raised, or "TypeError". A Rust panic
    (``pyo3_runtime.PanicException``, a ``BaseException``) or any other class fails here."""
    try:
        fn()
        return "ok"
    except isec.IsecError as e:
        if e.code not in CODES:
            raise Foreign(f"code {e.code!r} is not one of core's codes") from e
        if type(e) is not FAMILY_CLASS[CODES[e.code]]:
            raise Foreign(f"{e.code} raised as {type(e).__name__}, not its family's class") from e
        return e.code
    except TypeError as e:
        if not type_error_ok:
            raise Foreign(f"TypeError where a typed error was expected: {e}") from e
        return "TypeError"
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        kind = "Rust PANIC" if type(e).__name__ == "PanicException" else "foreign exception"
        raise Foreign(f"{kind} {type(e).__module__}.{type(e).__name__} crossed the boundary: {e!r}") from e


def code_of(fn: Callable[[], object]) -> str:
    """The typed error `fn` must raise (fails when it returns or raises anything else)."""
    got = outcome(fn, type_error_ok=False)
    assert got != "ok", "expected a typed error, the call succeeded"
    return got


def test_outcome_rejects_panics_and_foreign_exceptions() -> None:
    class PanicException(BaseException):  # what pyo3 raises for a Rust panic
        pass

    def panic() -> None:
        raise PanicException("boom")

    def value_error() -> None:
        raise ValueError("x")

    for fn in (panic, value_error):
        with pytest.raises(Foreign):
            outcome(fn)
    assert outcome(lambda: isec.Envelope.decode(b"")) == "malformed_envelope"
    assert outcome(lambda: isec.Envelope.decode(None)) == "TypeError"  # type: ignore[arg-type]


def test_codes_are_cores() -> None:
    """The code set every assertion here checks membership in is core's (core/src/error.rs)."""
    src = (REPO / "core" / "src" / "error.rs").read_text()
    body = src.split("pub const fn code(&self)", 1)[1].split("pub const fn family", 1)[0]
    core_codes = set(re.findall(r'=> "([a-z_]+)"', body))
    assert len(core_codes) >= 26
    assert set(CODES) == core_codes


# --- fixtures ---------------------------------------------------------------------------------


def ring_with(kid: str = "kek-a") -> isec.Keyring:
    ring = isec.Keyring()
    ring.add_kek(kid, bytes.fromhex(vectors("keys.json")["keys"]["kek-a"]["kek"]))
    return ring


class World:
    """One of everything, valid, for building calls."""

    def __init__(self) -> None:
        self.ring = ring_with()
        self.env, self.key = self.ring.create_envelope(frame_size=F)
        self.pt = bytes(range(256)) * 40  # 10240 bytes: three frames
        self.ct = isec.encrypt(self.key, self.pt)
        self.shape = isec.shape_for(self.env, len(self.ct))
        self.penv, self.pkey = self.ring.create_envelope(frame_size=F, part_size=2 * F)
        self.pct = isec.encrypt(self.pkey, self.pt)
        self.tenv, self.tkey = self.ring.create_envelope(frame_size=F, table=True)
        t1 = isec.encrypt_part(self.tkey, 1, False, self.pt[:5000])
        t3 = isec.encrypt_part(self.tkey, 3, False, self.pt[5000:])
        self.tct = t1 + t3
        self.table = isec.SegmentTable([(1, 5000, t1[:7]), (3, len(self.pt) - 5000, t3[:7])]).encode(self.tkey)
        self.source = isec.IsecSource(self.ring, self.env, self.shape)
        # Parts of one frame: two frames in, two parts are final.
        job = isec.Reencryption.start(self.ring, self.source, frame_size=F, part_size=F)
        job.update(self.ct[: 2 * (F + 28)], 0)
        self.checkpoint = job.checkpoint()
        assert isec.Checkpoint.parse(self.checkpoint).parts_done == 2
        lv = vectors("legacy.json")["tests"][10]  # a 5000-byte single seal
        self.lmeta = isec.LegacyMetadata([tuple(p) for p in lv["metadata"]])
        self.lct = bytes.fromhex(lv["ciphertext"])
        self.lobj = isec.LegacyObject(self.lmeta, len(self.lct))
        self.lkek = isec.legacy_kek_from_secret(lv["legacy_secret"])
        self.lkey = isec.LegacyKey.open_object(self.lkek, self.lobj)
        self.lpt_len = lv["plaintext_len"]
        self.lkid = lv["kid"]
        self.lsecret = lv["legacy_secret"]


@pytest.fixture(scope="module")
def w() -> World:
    return World()


# --- garbage ----------------------------------------------------------------------------------

DECODE_CODES = {"malformed_envelope", "unsupported_version", "unsupported_suite", "invalid_frame_size", "limit_exceeded"}


def structured_envelope(rng: random.Random) -> bytes:
    """Field by field, each field sometimes valid and sometimes not, lengths sometimes
    consistent: garbage that gets past the first checks."""
    kid = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz-0123456789 \x00\x7f\xff") for _ in range(rng.randrange(0, 70)))
    wrapped_len = rng.choice([40, 40, 0, 1, 200, 201, 255, rng.randrange(256)])
    head = bytes(
        [
            rng.choice([1, 1, 1, 0, 2, 255]),
            rng.choice([1, 1, 1, 0, 2]),
            rng.choice([12, 16, 23, 11, 24, 0, 255, rng.randrange(256)]),
            rng.choice([0, 1, 2, 3, 255]),
        ]
    )
    part_frames = rng.choice([0, 1, 2, 0xFFFFFFFF, rng.randrange(1 << 32)]).to_bytes(4, "big")
    size_flag = bytes([rng.choice([0, 1, 1, 2])])
    declared = rng.choice([0, 1, 1 << 44, (1 << 44) + 1, (1 << 64) - 1, rng.randrange(1 << 64)]).to_bytes(8, "big")
    body = (
        head
        + part_frames
        + size_flag
        + declared
        + rng.randbytes(64)
        + bytes([len(kid) if rng.random() < 0.8 else rng.randrange(256)])
        + kid
        + bytes([rng.choice([1, 1, 2, 0, 3])])
        + bytes([wrapped_len])
        + rng.randbytes(wrapped_len)
    )
    if rng.random() < 0.2:
        body = body[: rng.randrange(len(body) + 1)]
    if rng.random() < 0.1:
        body += rng.randbytes(rng.randrange(1, 20))
    return body


def check_decoded(env: isec.Envelope, raw: bytes, ring: isec.Keyring, rng: random.Random) -> None:
    """An accepted envelope re-encodes to exactly the bytes given (no malleability), and
    everything done with it is typed."""
    assert env.to_bytes() == raw, "accepted envelope does not re-encode to its input"
    assert isec.Envelope.decode_text(env.to_text()).to_bytes() == raw
    for n in (0, 28, rng.randrange(1 << 20), rng.randrange(1 << 64)):
        outcome(lambda n=n: env.inspect(n))
        outcome(lambda n=n: isec.shape_for(env, n).map_range(rng.randrange(1 << 64), rng.randrange(1 << 64)))
    got = outcome(lambda: ring.open(env), type_error_ok=False)
    assert got != "ok" or env.to_bytes() == raw


def test_garbage_envelope_bytes() -> None:
    rng = random.Random(20260101)
    ring = ring_with("kek-a")
    good = ring_with().create_envelope(frame_size=F)[0].to_bytes()
    accepted = 0
    for i in range(6000):
        kind = i % 3
        if kind == 0:
            raw = rng.randbytes(rng.randrange(0, 400))
        elif kind == 1:
            raw = structured_envelope(rng)
        else:
            b = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                op = rng.randrange(3)
                at = rng.randrange(len(b) + 1)
                if op == 0 and at < len(b):
                    b[at] = rng.randrange(256)
                elif op == 1:
                    b[at:at] = rng.randbytes(rng.randrange(1, 4))
                else:
                    del b[at : at + rng.randrange(1, 4)]
            raw = bytes(b)
        got = outcome(lambda raw=raw: isec.Envelope.decode(raw), type_error_ok=False)
        if got == "ok":
            accepted += 1
            check_decoded(isec.Envelope.decode(raw), raw, ring, rng)
        else:
            assert got in DECODE_CODES, (raw.hex(), got)
    # The structured generator must reach past decoding, or it tests nothing deep.
    assert accepted > 50, accepted


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_garbage_envelope_text() -> None:
    rng = random.Random(20260102)
    alphabets = [B64URL, B64URL + "=+/", "".join(map(chr, range(32, 127))), "é€\u0000\ud7ff\U0001f600\t\n A"]
    good = ring_with().create_envelope()[0].to_text()
    for i in range(6000):
        if i % 4 == 3:
            t = list(good)
            for _ in range(rng.randrange(1, 4)):
                t[rng.randrange(len(t))] = rng.choice(alphabets[i % 3])
            text = "".join(t)
        else:
            alphabet = alphabets[i % 4]
            text = "".join(rng.choice(alphabet) for _ in range(rng.choice([rng.randrange(0, 500), rng.randrange(0, 4000)])))
        got = outcome(lambda text=text: isec.Envelope.decode_text(text), type_error_ok=False)
        if got == "ok":
            assert isec.Envelope.decode_text(text).to_text() == text, "accepted text does not re-encode to itself"
        else:
            assert got in DECODE_CODES, (text[:80], got)
        # The same text as S3 metadata: classified, never raised.
        fmt = isec.classify({"isec": text, "isec-kid": text[:10]})
        assert fmt.format in {"isec", "legacy", "unreadable", "plaintext"}
        if fmt.format == "unreadable":
            assert fmt.error in CODES


def test_garbage_for_every_other_parser(w: World) -> None:
    rng = random.Random(20260103)
    gz = gzip.compress(b'{"version": 1, "parts": []}')
    parsers: dict[str, Callable[[bytes], object]] = {
        "SegmentTable.decode": lambda b: isec.SegmentTable.decode(b, w.tkey),
        "Shape.from_table": lambda b: isec.Shape.from_table(w.tkey, b, len(w.tct)),
        "Decryptor.with_table": lambda b: isec.Decryptor.with_table(w.tkey, b, len(w.tct)),
        "Checkpoint.parse": isec.Checkpoint.parse,
        "Reencryption.resume": lambda b: isec.Reencryption.resume(w.ring, w.source, b),
        "LegacySidecar.parse": isec.LegacySidecar.parse,
        "LegacySidecar.parse(gzip)": lambda b: isec.LegacySidecar.parse(base64.b64encode(gz[:10] + b)),
        "LegacySidecar.from_json": isec.LegacySidecar.from_json,
        "LegacyKey.open": lambda b: isec.LegacyKey.open(w.lkek, base64.b64encode(b).decode()),
        "LegacyMetadata": lambda b: isec.LegacyMetadata({"isec": b.decode("latin-1"), "plaintext-size": str(len(b))}),
        "Nonce": lambda b: isec.Nonce(b[:12]).position(),
        "legacy_generation_for": isec.legacy_generation_for,
        "decrypt": lambda b: isec.decrypt(w.key, b),
        "decrypt(parts)": lambda b: isec.decrypt(w.pkey, b),
        "decrypt_with_table": lambda b: isec.decrypt_with_table(w.tkey, w.table, b),
        "legacy_decrypt": lambda b: isec.legacy_decrypt(w.lkey, w.lobj, b),
    }
    seeds = {
        "SegmentTable.decode": w.table,
        "Shape.from_table": w.table,
        "Decryptor.with_table": w.table,
        "Checkpoint.parse": w.checkpoint,
        "Reencryption.resume": w.checkpoint,
        "decrypt": w.ct,
        "decrypt(parts)": w.pct,
        "decrypt_with_table": w.tct,
        "legacy_decrypt": w.lct,
        "LegacySidecar.from_json": json.dumps({"version": 1, "part_count": 1, "parts": [{"part_number": 1}]}).encode(),
    }
    authenticated = set(seeds) - {"Checkpoint.parse", "LegacySidecar.from_json"}
    for name, parse in parsers.items():
        seed = seeds.get(name, b"")
        for _ in range(400):
            if seed and rng.random() < 0.7:
                b = bytearray(seed)
                for _ in range(rng.randrange(1, 4)):
                    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                if rng.random() < 0.3:
                    b = b[: rng.randrange(len(b) + 1)]
                raw = bytes(b)
            else:
                raw = rng.randbytes(rng.randrange(0, 300))
            got = outcome(lambda raw=raw: parse(raw), type_error_ok=False)
            # Authenticated inputs (ciphertexts, tables, checkpoints on resume) must not be
            # accepted once changed.
            if name in authenticated and raw != seed:
                assert got != "ok", (name, raw.hex()[:80])


# --- truncations ------------------------------------------------------------------------------


def test_every_truncation_and_extension_of_an_envelope(w: World) -> None:
    for env in (w.env, w.penv, w.tenv, w.ring.create_envelope(declared_size=123)[0]):
        raw = env.to_bytes()
        text = env.to_text()
        for n in range(len(raw)):
            assert code_of(lambda n=n: isec.Envelope.decode(raw[:n])) == "malformed_envelope", n
        for n in range(len(text)):
            assert code_of(lambda n=n: isec.Envelope.decode_text(text[:n])) == "malformed_envelope", n
        for extra in (b"\x00", b"\x01" * 7, bytes(300)):
            assert code_of(lambda extra=extra: isec.Envelope.decode(raw + extra)) == "malformed_envelope"
        for extra in ("A", "AA", "=", "AAAA", " "):
            assert code_of(lambda extra=extra: isec.Envelope.decode_text(text + extra)) == "malformed_envelope"


def test_every_truncation_of_ciphertext_table_and_checkpoint(w: World) -> None:
    for key, ct in ((w.key, w.ct), (w.pkey, w.pct)):
        for n in range(len(ct)):
            got = code_of(lambda n=n: isec.decrypt(key, ct[:n]))
            assert got in {"truncated", "authentication_failed", "bad_frame_length"}, (n, got)
            dec = isec.Decryptor(key)
            got = code_of(lambda n=n, dec=dec: (dec.update(ct[:n]), dec.finalize()))
            assert got in {"truncated", "authentication_failed", "bad_frame_length"}, (n, got)
            got = outcome(lambda n=n: isec.shape_for(w.env if key is w.key else w.penv, n), type_error_ok=False)
            assert got in {"ok", "truncated", "bad_frame_length"}, (n, got)
    for n in range(len(w.tct)):
        got = code_of(lambda n=n: isec.decrypt_with_table(w.tkey, w.table, w.tct[:n]))
        assert got == "truncated", (n, got)
    for n in range(len(w.table)):
        got = code_of(lambda n=n: isec.SegmentTable.decode(w.table[:n], w.tkey))
        assert got in {"malformed_segment_table", "authentication_failed"}, (n, got)
    for n in range(len(w.checkpoint)):
        got = code_of(lambda n=n: isec.Reencryption.resume(w.ring, w.source, w.checkpoint[:n]))
        assert got in {"malformed_checkpoint", "authentication_failed"}, (n, got)
    for n in range(len(w.lct)):
        got = code_of(lambda n=n: isec.legacy_decrypt(w.lkey, w.lobj, w.lct[:n]))
        assert got in {"truncated", "authentication_failed", "malformed_legacy"}, (n, got)


# --- argument types ---------------------------------------------------------------------------


def calls(w: World) -> list[tuple[str, Callable[..., object], list[Any]]]:
    """Every entry point with valid arguments. Contexts are made fresh per call, since an
    error locks them."""
    fetch = lambda a, b: w.ct[a:b]  # noqa: E731
    plan = w.shape.map_range(10, 5000)
    return [
        ("Envelope.decode", isec.Envelope.decode, [w.env.to_bytes()]),
        ("Envelope.decode_text", isec.Envelope.decode_text, [w.env.to_text()]),
        ("Envelope.inspect", w.env.inspect, [len(w.ct)]),
        ("Keyring.add_kek", lambda *a: isec.Keyring().add_kek(*a), ["kid", bytes(32), "decrypt_only"]),
        ("Keyring.add_legacy_secret_string", lambda *a: isec.Keyring().add_legacy_secret_string(*a), ["kid", "s"]),
        ("Keyring.set_state", lambda *a: ring_with().set_state(*a), ["kek-a", "decrypt_only"]),
        ("Keyring.set_min_version", lambda *a: ring_with().set_min_version(*a), [1]),
        ("Keyring.state", w.ring.state, ["kek-a"]),
        ("Keyring.open", w.ring.open, [w.env]),
        ("Keyring.rewrap", w.ring.rewrap, [w.env]),
        ("Keyring.rewrap_to", w.ring.rewrap_to, [w.env, "kek-a"]),
        ("Keyring.open_legacy", w.ring.open_legacy, [w.lobj, "kek-a"]),
        (
            "Keyring.create_envelope",
            lambda fs, ps, t, ds: w.ring.create_envelope(frame_size=fs, part_size=ps, table=t, declared_size=ds),
            [F, 2 * F, False, 100],
        ),
        ("encrypt", isec.encrypt, [w.key, w.pt]),
        ("decrypt", isec.decrypt, [w.key, w.ct]),
        ("encrypt_part", isec.encrypt_part, [w.pkey, 1, False, w.pt[: 2 * F]]),
        ("decrypt_with_table", isec.decrypt_with_table, [w.tkey, w.table, w.tct]),
        ("decrypt_range", isec.decrypt_range, [w.key, w.shape, 10, 5000, fetch]),
        ("shape_for", isec.shape_for, [w.env, len(w.ct)]),
        ("Shape.from_ciphertext_len", isec.Shape.from_ciphertext_len, [w.key, len(w.ct)]),
        ("Shape.from_plaintext_len", isec.Shape.from_plaintext_len, [w.env, 100]),
        ("Shape.from_table", isec.Shape.from_table, [w.tkey, w.table, len(w.tct)]),
        ("Shape.map_range", w.shape.map_range, [10, 20]),
        ("Shape.segment", w.shape.segment, [0]),
        ("Shape.ct_boundary_floor", w.shape.ct_boundary_floor, [5000]),
        ("SegmentTable", isec.SegmentTable, [[(1, 5, bytes(7)), (2, 7, bytes(7))]]),
        ("SegmentTable.decode", isec.SegmentTable.decode, [w.table, w.tkey]),
        ("SegmentTable.encode", isec.SegmentTable([(1, 5, bytes(7))]).encode, [w.tkey]),
        ("Encryptor", isec.Encryptor, [w.key]),
        ("Encryptor.for_part", isec.Encryptor.for_part, [w.pkey, 2, False]),
        ("Encryptor.update", lambda *a: isec.Encryptor(w.key).update(*a), [w.pt]),
        ("Encryptor.update_into", lambda *a: isec.Encryptor(w.key).update_into(*a), [w.pt, bytearray(len(w.ct))]),
        ("Encryptor.update_len", isec.Encryptor(w.key).update_len, [100]),
        ("Encryptor.finalize_into", lambda *a: isec.Encryptor(w.key).finalize_into(*a), [bytearray(100)]),
        ("Encryptor.seal_frame_in_place", lambda *a: isec.Encryptor(w.key).seal_frame_in_place(*a), [bytearray(F + 28)]),
        ("Encryptor.finalize_in_place", lambda *a: isec.Encryptor(w.key).finalize_in_place(*a), [bytearray(28)]),
        ("Decryptor", isec.Decryptor, [w.key]),
        ("Decryptor.with_shape", isec.Decryptor.with_shape, [w.key, w.shape]),
        ("Decryptor.with_table", isec.Decryptor.with_table, [w.tkey, w.table, len(w.tct)]),
        ("Decryptor.for_range", isec.Decryptor.for_range, [w.key, w.shape, plan]),
        ("Decryptor.update", lambda *a: isec.Decryptor(w.key).update(*a), [w.ct]),
        ("Decryptor.update_into", lambda *a: isec.Decryptor(w.key).update_into(*a), [w.ct, bytearray(len(w.ct))]),
        ("Decryptor.finalize_into", lambda *a: isec.Decryptor(w.key).finalize_into(*a), [bytearray(10)]),
        (
            "Decryptor.open_frame_in_place",
            lambda *a: isec.Decryptor(w.key).open_frame_in_place(*a),
            [bytearray(w.ct[: F + 28])],
        ),
        ("FramePosition", isec.FramePosition, [3, True, False]),
        ("Nonce", isec.Nonce, [bytes(12)]),
        ("Nonce.build", isec.Nonce.build, [bytes(7), isec.FramePosition(1)]),
        ("classify", isec.classify, [{"isec": w.env.to_text()}, False]),
        ("legacy_sidecar_key", isec.legacy_sidecar_key, ["a/b"]),
        ("table_sidecar_key", isec.table_sidecar_key, ["a/b"]),
        (
            "CopyLimits",
            lambda a, b, c, d, e: isec.CopyLimits(single_copy_max=a, part_min=b, part_max=c, max_parts=d, metadata_max=e),
            [1 << 30, 5 * MIB, 1 << 30, 100, 2048],
        ),
        (
            "decide_copy",
            lambda m, s, k, t: isec.decide_copy(m, s, keyring=k, target_kid=t),
            [{"isec": w.env.to_text()}, len(w.ct), w.ring, "kek-a"],
        ),
        ("ScanPlanner", isec.ScanPlanner, [w.ring]),
        ("ScanPlanner.add", isec.ScanPlanner(w.ring).add, ["k", {"isec": w.env.to_text()}, len(w.ct), False]),
        ("ScanPlanner.tally", isec.ScanPlanner(w.ring).tally, ["current"]),
        ("IsecSource", isec.IsecSource, [w.ring, w.env, w.shape]),
        (
            "Reencryption.start",
            lambda r, s, f, p, q: isec.Reencryption.start(r, s, frame_size=f, part_size=p, rate=q),
            [w.ring, w.source, F, F, 0],
        ),
        ("Reencryption.resume", isec.Reencryption.resume, [w.ring, w.source, w.checkpoint]),
        ("Reencryption.update", lambda *a: isec.Reencryption.start(w.ring, w.source).update(*a), [w.ct[:100], 0]),
        (
            "Reencryption.update_into",
            lambda *a: isec.Reencryption.start(w.ring, w.source).update_into(*a),
            [w.ct[:100], bytearray(200_000), 0],
        ),
        ("Reencryption.set_rate", lambda *a: isec.Reencryption.start(w.ring, w.source).set_rate(*a), [100]),
        ("Checkpoint.parse", isec.Checkpoint.parse, [w.checkpoint]),
        ("LegacyMetadata", isec.LegacyMetadata, [{"isec": "A" * 54 + "==", "plaintext-size": "5"}]),
        ("LegacySidecar.parse", isec.LegacySidecar.parse, [b"H4sI", 1000]),
        ("LegacySidecar.from_json", isec.LegacySidecar.from_json, [b"{}"]),
        ("LegacyObject", isec.LegacyObject, [w.lmeta, len(w.lct), None]),
        ("LegacyObject.plan_range", w.lobj.plan_range, [5, 10]),
        ("LegacyObject.seal", w.lobj.seal, [0]),
        ("LegacyObject.max_seal_len", w.lobj.max_seal_len, [0, 1]),
        ("LegacyObject.with_upload_id", w.lobj.with_upload_id, ["u"]),
        ("LegacyKey.open", isec.LegacyKey.open, [w.lkek, w.lmeta.wrapped_dek_b64]),
        ("LegacyKey.open_object", isec.LegacyKey.open_object, [w.lkek, w.lobj]),
        ("LegacyDecryptor", isec.LegacyDecryptor, [w.lkey, w.lobj]),
        ("LegacyDecryptor.for_range", isec.LegacyDecryptor.for_range, [w.lkey, w.lobj, w.lobj.plan_range(1, 2)]),
        ("LegacyDecryptor.with_seal_limit", isec.LegacyDecryptor.with_seal_limit, [w.lkey, w.lobj, 10000, None]),
        ("LegacyDecryptor.update", lambda *a: isec.LegacyDecryptor(w.lkey, w.lobj).update(*a), [w.lct]),
        ("legacy_decrypt", isec.legacy_decrypt, [w.lkey, w.lobj, w.lct]),
        ("legacy_decrypt_range", isec.legacy_decrypt_range, [w.lkey, w.lobj, w.lobj.plan_range(0, 5), w.lct]),
        ("legacy_part_nonce", isec.legacy_part_nonce, ["upload", 1]),
        ("legacy_frame_nonce", isec.legacy_frame_nonce, ["upload", 1, 0]),
        ("legacy_generation_for", isec.legacy_generation_for, [bytes(40)]),
        ("legacy_kek_from_secret", isec.legacy_kek_from_secret, ["secret"]),
        ("legacy_split_seals", isec.legacy_split_seals, [5]),
        ("encrypt_chunks", lambda k, c: list(isec.encrypt_chunks(k, c)), [w.key, [w.pt, w.pt]]),
        ("decrypt_chunks", lambda k, c: list(isec.decrypt_chunks(k, c)), [w.key, [w.ct[:100], w.ct[100:]]]),
        (
            "encrypt_file",
            lambda s, k, n: isec.encrypt_file(io.BytesIO(s), io.BytesIO(), k, chunk_size=n),
            [w.pt, w.key, 1000],
        ),
        (
            "decrypt_file",
            lambda s, k, n: isec.decrypt_file(io.BytesIO(s), io.BytesIO(), k, chunk_size=n),
            [w.ct, w.key, 1000],
        ),
    ]


class Other:
    """An object of a class the package does not know."""


def wrong_values(w: World, good: Any) -> list[Any]:
    """Values of another type than `good` (and of isec classes other than its own)."""
    vals: list[Any] = [None, "text", 1.5, float("nan"), float("inf"), [1, 2], {"a": 1}, Other(), b"bytes", 7]
    vals += [w.env, w.key, w.shape, w.ring, w.lobj, isec.FramePosition(0)]
    same_type = [v for v in vals if type(v) is type(good) or (isinstance(good, (bytes, bytearray)) and isinstance(v, bytes))]
    return [v for v in vals if not any(v is s for s in same_type)]


def test_valid_calls_succeed_or_raise_typed(w: World) -> None:
    for name, fn, args in calls(w):
        try:
            outcome(lambda fn=fn, args=args: fn(*args), type_error_ok=False)
        except Foreign as e:
            raise AssertionError(f"{name}: {e}") from e


def test_wrong_argument_types(w: World) -> None:
    """Every argument of every call replaced by values of other types: TypeError or a typed
    error, nothing else (a None for an optional argument may also succeed)."""
    tried = 0
    for name, fn, args in calls(w):
        for i, good in enumerate(args):
            for bad in wrong_values(w, good):
                a = list(args)
                a[i] = bad
                try:
                    outcome(lambda fn=fn, a=a: fn(*a))
                except Foreign as e:
                    raise AssertionError(f"{name} argument {i} = {bad!r}: {e}") from e
                tried += 1
    assert tried > 1500, tried


def test_out_of_range_integers_are_typed_errors(w: World) -> None:
    """An int of the right type but outside what the parameter holds (negative, >= 2**64) is
    a value error of the API, like a part number of 10001: the typed error with its code
    (`invalid_parameter` / `limit_exceeded`), as the Node and wasm packages answer -1. Fails
    while the package lets pyo3's conversion raise builtins.OverflowError (no code)."""
    untyped = []
    for name, fn, args in calls(w):
        for i, good in enumerate(args):
            if type(good) is not int:
                continue
            for bad in (-1, -(1 << 70), 1 << 64, 1 << 100):
                a = list(args)
                a[i] = bad
                try:
                    got = outcome(lambda fn=fn, a=a: fn(*a), type_error_ok=False)
                except Foreign as e:
                    untyped.append(f"{name}(arg {i} = {bad}): {e.__cause__.__class__.__name__}")
                    continue
                assert got != "ok" or bad >= 0, f"{name}(arg {i} = {bad}) accepted"
    assert not untyped, f"{len(untyped)} calls raise an untyped error for an out-of-range int:\n" + "\n".join(untyped)


# --- oversized inputs -------------------------------------------------------------------------


def test_oversized_inputs(w: World) -> None:
    ring = isec.Keyring()
    assert code_of(lambda: ring.add_kek("k" * 65, bytes(32))) == "invalid_parameter"
    assert outcome(lambda: ring.add_kek("k" * 64, bytes(32))) == "ok"
    for kid in ("", "a b", "é", "a\x00", "\x7f"):
        assert code_of(lambda kid=kid: isec.Keyring().add_kek(kid, bytes(32))) == "invalid_parameter", kid
    for kek in (bytes(31), bytes(33), bytes(1 << 20)):
        assert code_of(lambda kek=kek: isec.Keyring().add_kek("k", kek)) == "invalid_parameter"
    assert code_of(lambda: w.ring.rewrap_to(w.env, "x" * 65)) in {"invalid_parameter", "unknown_kid"}
    for fs in (0, 1, 2048, 3000, 4095, 4097, 1 << 24, 1 << 40, (1 << 64) - 1):
        assert code_of(lambda fs=fs: w.ring.create_envelope(frame_size=fs)) == "invalid_frame_size", fs
    for ps in (0, 1, F + 1, (1 << 32) * F):
        assert code_of(lambda ps=ps: w.ring.create_envelope(frame_size=F, part_size=ps)) in {
            "invalid_parameter",
            "limit_exceeded",
        }, ps
    assert code_of(lambda: w.ring.create_envelope(declared_size=(1 << 44) + 1)) == "limit_exceeded"
    assert code_of(lambda: w.ring.create_envelope(part_size=F * 16, table=True)) == "invalid_parameter"

    # External wrappers that misbehave: oversized, empty, wrong type, raising.
    class Kms:
        def __init__(self, out: object) -> None:
            self.out = out

        def wrap(self, kid: str, dek: bytes) -> object:
            if isinstance(self.out, Exception):
                raise self.out
            return self.out

        def unwrap(self, kid: str, wrapped: bytes) -> object:
            return self.wrap(kid, wrapped)

    for out in (bytes(201), bytes(1 << 20), b"", "text", None, 5, RuntimeError("down"), MemoryError()):
        r = isec.Keyring()
        r.add_external("kms", Kms(out))
        got = outcome(lambda r=r: r.create_envelope(), type_error_ok=False)
        assert got in {"external_wrapper_failed", "invalid_parameter", "limit_exceeded"}, (out, got)
    assert outcome(lambda: isec.Keyring().add_external("k" * 65, Kms(bytes(40)))) == "invalid_parameter"
    # A wrapper that returns a DEK of the wrong size on unwrap.
    good = isec.Keyring()
    store: dict[bytes, bytes] = {}

    class Echo:
        def wrap(self, kid: str, dek: bytes) -> bytes:
            store[b"w" + dek[:8]] = dek
            return b"w" + dek[:8]

        def unwrap(self, kid: str, wrapped: bytes) -> bytes:
            return store[wrapped] + b"extra"

    good.add_external("kms", Echo())
    env, _ = good.create_envelope()
    assert code_of(lambda: good.open(env)) in {"external_wrapper_failed", "unwrap_failed", "invalid_parameter"}

    # Envelopes whose kid or wrapped DEK are over their limits (SPEC.md §3.1), by field.
    head = w.env.to_bytes()[:81]
    fields = {
        "kid of 65": (bytes([65]) + b"k" * 65 + bytes([1, 40]) + bytes(40), "malformed_envelope"),
        "kid of 64": (bytes([64]) + b"k" * 64 + bytes([1, 40]) + bytes(40), "ok"),
        "external wrapped DEK of 201": (bytes([5]) + b"kek-a" + bytes([2, 201]) + bytes(201), "malformed_envelope"),
        "external wrapped DEK of 200": (bytes([5]) + b"kek-a" + bytes([2, 200]) + bytes(200), "ok"),
        "AES-KWP wrapped DEK of 41": (bytes([5]) + b"kek-a" + bytes([1, 41]) + bytes(41), "malformed_envelope"),
        "wrapped length past the end": (bytes([5]) + b"kek-a" + bytes([2, 255]) + bytes(10), "malformed_envelope"),
    }
    for name, (tail, want) in fields.items():
        assert outcome(lambda tail=tail: isec.Envelope.decode(head + tail), type_error_ok=False) == want, name

    # Big inputs to the parsers: refused by size, not read through.
    for text in ("A" * 465, "A" * (1 << 20)):
        assert code_of(lambda text=text: isec.Envelope.decode_text(text)) == "malformed_envelope"
    assert code_of(lambda: isec.Envelope.decode(bytes(349))) in DECODE_CODES
    assert code_of(lambda: isec.Nonce(bytes(13))) == "invalid_parameter"
    assert code_of(lambda: isec.Nonce.build(bytes(8), isec.FramePosition(0))) == "invalid_parameter"
    assert code_of(lambda: isec.SegmentTable([(i, 1, bytes(7)) for i in range(1, 10_002)])) == "malformed_segment_table"
    assert code_of(lambda: isec.SegmentTable.decode(bytes(1 << 20), w.tkey)) in {"malformed_segment_table", "authentication_failed"}
    assert code_of(lambda: isec.Checkpoint.parse(b"ISCK\x01" + bytes(1 << 20))) == "malformed_checkpoint"
    assert code_of(lambda: isec.LegacySidecar.parse(b"A" * (17 * MIB))) in {"sidecar_too_large", "malformed_legacy"}
    big_meta = {"isec": "A" * (1 << 20), "isec-kid": "k" * (1 << 16), "x" * 1000: "y"}
    assert isec.classify(big_meta).format == "unreadable"
    assert outcome(lambda: isec.LegacyMetadata(big_meta)) in {"ok", "malformed_legacy"}
    assert outcome(lambda: isec.legacy_kek_from_secret("s" * (1 << 20))) == "ok"


# --- output buffers ---------------------------------------------------------------------------


def test_into_and_in_place_buffers(w: World) -> None:
    np = pytest.importorskip("numpy")
    enc = isec.Encryptor(w.key)
    need = enc.update_len(len(w.pt))
    for size in (0, 1, need - 1):
        assert code_of(lambda size=size: isec.Encryptor(w.key).update_into(w.pt, bytearray(size))) == "buffer_too_small"
    assert outcome(lambda: isec.Encryptor(w.key).update_into(w.pt, bytes(need))) == "TypeError"
    assert outcome(lambda: isec.Encryptor(w.key).update_into(w.pt, memoryview(bytes(need)))) == "TypeError"
    strided = np.zeros(2 * need, dtype=np.uint8)[::2]
    assert outcome(lambda: isec.Encryptor(w.key).update_into(w.pt, strided)) in {"TypeError", "invalid_parameter"}
    assert code_of(lambda: isec.Encryptor(w.key).finalize_into(bytearray(27))) == "buffer_too_small"
    dec_need = isec.Decryptor(w.key).update_len(len(w.ct))
    for size in (0, 1, dec_need - 1):
        assert code_of(lambda size=size: isec.Decryptor(w.key).update_into(w.ct, bytearray(size))) == "buffer_too_small"
    d = isec.Decryptor(w.key)
    d.update(w.ct[:100])
    assert code_of(lambda: d.finalize_into(bytearray(1))) in {"buffer_too_small", "truncated"}

    # Input and output sharing memory: the result is still right (the input is copied first).
    buf = bytearray(w.pt) + bytearray(max(0, need - len(w.pt)))
    e = isec.Encryptor(w.key)
    n = e.update_into(memoryview(buf)[: len(w.pt)], buf)
    ct = bytes(buf[:n]) + e.finalize()
    assert isec.decrypt(w.key, ct) == w.pt
    buf = bytearray(w.ct) + bytearray(dec_need)
    dd = isec.Decryptor(w.key)
    n = dd.update_into(memoryview(buf)[: len(w.ct)], memoryview(buf)[5:])
    assert bytes(buf[5 : 5 + n]) + dd.finalize() == w.pt

    # In-place frames of the wrong length.
    for size in (0, 12, 27, 28, F + 27, F + 29, 2 * F + 56):
        assert code_of(lambda size=size: isec.Encryptor(w.key).seal_frame_in_place(bytearray(size))) in {
            "invalid_parameter",
            "bad_frame_length",
            "buffer_too_small",
        }, size
        got = code_of(lambda size=size: isec.Decryptor(w.key).open_frame_in_place(bytearray(size)))
        assert got in {"invalid_parameter", "bad_frame_length", "truncated", "authentication_failed", "buffer_too_small"}
    for size in (0, 27, F + 29):
        assert code_of(lambda size=size: isec.Encryptor(w.key).finalize_in_place(bytearray(size))) in {
            "invalid_parameter",
            "bad_frame_length",
            "buffer_too_small",
        }
    assert outcome(lambda: isec.Decryptor(w.key).open_frame_in_place(bytes(F + 28))) == "TypeError"
    job = isec.Reencryption.start(w.ring, w.source, frame_size=F)
    assert code_of(lambda: job.update_into(w.ct, bytearray(10), 0)) == "buffer_too_small"
    assert code_of(lambda: isec.LegacyDecryptor(w.lkey, w.lobj).update_into(w.lct, bytearray(10))) == "buffer_too_small"
    assert outcome(lambda: isec.LegacyDecryptor(w.lkey, w.lobj).update_into(w.lct, bytes(len(w.lct)))) == "TypeError"


# --- state ------------------------------------------------------------------------------------


def test_contexts_refuse_use_after_finalize_and_after_error(w: World) -> None:
    bad = bytearray(w.ct)
    bad[50] ^= 1
    # Encryptor: after finalize.
    e = isec.Encryptor(w.key)
    e.update(w.pt)
    e.finalize()
    assert e.locked
    for call in (
        lambda: e.update(b"x"),
        lambda: e.update_into(b"x", bytearray(100)),
        e.finalize,
        lambda: e.finalize_into(bytearray(100)),
        lambda: e.seal_frame_in_place(bytearray(F + 28)),
        lambda: e.finalize_in_place(bytearray(28)),
    ):
        assert code_of(call) == "invalid_state"
    # Encryptor: after an error (a part beyond its size).
    ep = isec.Encryptor.for_part(w.pkey, 1, False)
    assert code_of(lambda: ep.update(bytes(2 * F + 1))) == "invalid_parameter"
    assert code_of(lambda: ep.update(b"x")) == "invalid_state"
    assert code_of(ep.finalize) == "invalid_state"
    # Decryptor: after finalize, and after an error, on every entry point.
    d = isec.Decryptor(w.key)
    d.update(w.ct)
    d.finalize()
    for call in (lambda: d.update(w.ct), d.finalize, lambda: d.open_frame_in_place(bytearray(w.ct[: F + 28]))):
        assert code_of(call) == "invalid_state"
    for start in (lambda: isec.Decryptor(w.key), lambda: isec.Decryptor.with_shape(w.key, w.shape)):
        d = start()
        assert code_of(lambda d=d: d.update(bad)) == "authentication_failed"
        assert d.locked
        for call in (
            lambda d=d: d.update(w.ct),
            lambda d=d: d.update(b""),
            lambda d=d: d.update_into(w.ct, bytearray(len(w.ct))),
            d.finalize,
            lambda d=d: d.finalize_into(bytearray(F)),
            lambda d=d: d.open_frame_in_place(bytearray(w.ct[: F + 28])),
        ):
            assert code_of(call) == "invalid_state"
    # A ranged decryptor fed too much.
    plan = w.shape.map_range(0, 10)
    dr = isec.Decryptor.for_range(w.key, w.shape, plan)
    assert code_of(lambda: dr.update(w.ct)) in {"trailing_data", "invalid_parameter"}
    assert code_of(lambda: dr.update(b"x")) == "invalid_state"
    # Legacy decryptor.
    lbad = bytearray(w.lct)
    lbad[-1] ^= 1
    ld = isec.LegacyDecryptor(w.lkey, w.lobj)
    assert code_of(lambda: (ld.update(lbad), ld.finalize())) == "authentication_failed"
    assert code_of(lambda: ld.update(w.lct)) == "invalid_state"
    assert code_of(ld.finalize) == "invalid_state"
    ld2 = isec.LegacyDecryptor(w.lkey, w.lobj)
    assert len(ld2.update(w.lct) + ld2.finalize()) == w.lpt_len
    assert code_of(lambda: ld2.update(b"x")) == "invalid_state"
    # Re-encryption: after finish, and after a source error.
    job = isec.Reencryption.start(w.ring, w.source, frame_size=F)
    out = bytearray()
    at = 0
    while at < len(w.ct):
        step = job.update(w.ct[at:], 0)
        at += step.consumed
        out += step.output or b""
    out += job.finish()
    assert isec.decrypt(w.ring.open(job.target_envelope), bytes(out)) == w.pt
    assert code_of(lambda: job.update(b"x", 0)) == "invalid_state"
    assert code_of(job.finish) == "invalid_state"
    job2 = isec.Reencryption.start(w.ring, w.source, frame_size=F)
    assert code_of(lambda: job2.update(bytes(bad), 0)) == "authentication_failed"
    assert code_of(lambda: job2.update(w.ct, 0)) == "invalid_state"
    assert code_of(job2.finish) == "invalid_state"


# --- huge sizes and counts, in a child process ------------------------------------------------


def _huge_declared_size() -> list[str]:
    problems = []
    ring = ring_with()
    env, key = ring.create_envelope(frame_size=F, declared_size=1 << 44)
    shape = isec.Shape.from_plaintext_len(env, 1 << 44)
    if shape.frame_count != 1 << 32:
        problems.append(f"frame_count {shape.frame_count}")
    info = env.inspect(shape.ciphertext_len)
    if info.get("plaintext_len") != 1 << 44:
        problems.append(f"inspect {info}")
    for a, b in ((0, 10), ((1 << 44) - 5, 1 << 44), ((1 << 43) - 3, (1 << 43) + 3), (0, (1 << 64) - 1)):
        plan = shape.map_range(a, b)
        if plan.len > 1 << 20:
            continue
        d = isec.Decryptor.for_range(key, shape, plan)
        got = outcome(lambda d=d, plan=plan: (d.update(bytes(plan.ct_end - plan.ct_start)), d.finalize()), type_error_ok=False)
        if got != "authentication_failed":
            problems.append(f"range {a}..{b} of garbage: {got}")
    # Streaming: garbage in, one frame buffered at a time.
    d = isec.Decryptor(key)
    got = outcome(lambda: [d.update(bytes(MIB)) for _ in range(8)], type_error_ok=False)
    if got != "authentication_failed":
        problems.append(f"stream of garbage: {got}")
    # An encryptor that writes less than declared must not finish.
    e = isec.Encryptor(key)
    e.update(bytes(MIB))
    got = outcome(e.finalize, type_error_ok=False)
    if got == "ok":
        problems.append("1 MiB finished under a declared size of 16 TiB")
    for n in (shape.ciphertext_len + 1, shape.ciphertext_len - 1, (1 << 64) - 1):
        got = outcome(lambda n=n: isec.shape_for(env, n), type_error_ok=False)
        if got == "ok":
            problems.append(f"shape of {n} bytes under declared 2**44 accepted")
    if outcome(lambda: ring.create_envelope(declared_size=(1 << 44) + 1)) != "limit_exceeded":
        problems.append("declared 2**44 + 1 accepted")
    job = isec.Reencryption.start(ring, isec.IsecSource(ring, env, shape), frame_size=F)
    got = outcome(lambda: job.update(bytes(F + 28), 0), type_error_ok=False)
    if got != "authentication_failed":
        problems.append(f"re-encryption of garbage: {got}")
    return problems


def _crafted_headers() -> list[str]:
    """Envelopes whose header fields claim the extremes, made by patching a real one."""
    problems = []
    raw = bytearray(ring_with().create_envelope(frame_size=F)[0].to_bytes())
    ring = ring_with()
    variants = {
        "declared 2**64-1": (8, b"\x01" + ((1 << 64) - 1).to_bytes(8, "big")),
        "declared 2**44": (8, b"\x01" + (1 << 44).to_bytes(8, "big")),
        "parts of 2**32-1 frames of 8 MiB": (2, b"\x17\x01\xff\xff\xff\xff"),
        "parts of 1 frame of 4 KiB": (2, b"\x0c\x01\x00\x00\x00\x01"),
        "table, 8 MiB frames": (2, b"\x17\x02\x00\x00\x00\x00"),
    }
    for name, (at, patch) in variants.items():
        b = bytearray(raw)
        b[at : at + len(patch)] = patch
        got = outcome(lambda b=b: isec.Envelope.decode(bytes(b)), type_error_ok=False)
        if got != "ok":
            if name == "declared 2**64-1" and got == "limit_exceeded":
                continue
            problems.append(f"{name}: decode {got}")
            continue
        env = isec.Envelope.decode(bytes(b))
        for n in (0, 28, 1 << 40, (1 << 63) + 5, (1 << 64) - 1):
            outcome(lambda env=env, n=n: env.inspect(n), type_error_ok=False)
            got = outcome(lambda env=env, n=n: isec.shape_for(env, n).map_range(0, (1 << 64) - 1), type_error_ok=False)
        if outcome(lambda env=env: ring.open(env), type_error_ok=False) != "commitment_mismatch":
            problems.append(f"{name}: opened despite the changed header")
    # Real keys with extreme geometry.
    env, key = ring.create_envelope(frame_size=1 << 23, part_size=1 << 40)
    for n in (1, 10_000, 10_001):
        for last in (True, False):
            outcome(lambda n=n, last=last: isec.Encryptor.for_part(key, n, last).update(b"x"), type_error_ok=False)
    d = isec.Decryptor(key)
    got = outcome(lambda: [d.update(bytes(MIB)) for _ in range(12)], type_error_ok=False)
    if got != "authentication_failed":
        problems.append(f"8 MiB frames, garbage: {got}")
    return problems


def _huge_part_counts() -> list[str]:
    problems = []
    ring = ring_with()
    env, key = ring.create_envelope(frame_size=F, part_size=F)
    part_ct = F + 28
    if isec.shape_for(env, 10_000 * part_ct).segment_count != 10_000:
        problems.append("10000 parts")
    if outcome(lambda: isec.shape_for(env, 10_001 * part_ct), type_error_ok=False) != "limit_exceeded":
        problems.append("10001 parts accepted")
    for n in (0, 10_001, (1 << 32) - 1):
        if outcome(lambda n=n: isec.Encryptor.for_part(key, n, True), type_error_ok=False) != "invalid_parameter":
            problems.append(f"part number {n} accepted")
    tenv, tkey = ring.create_envelope(frame_size=F, table=True)
    t = isec.SegmentTable([(i, 1 << 30, bytes(7)) for i in range(1, 10_001)])
    enc = t.encode(tkey)
    got = outcome(lambda: isec.Shape.from_table(tkey, enc, 10), type_error_ok=False)
    if got != "truncated":
        problems.append(f"10000 x 1 GiB table on 10 bytes: {got}")
    if outcome(lambda: isec.SegmentTable([(i, 1 << 32, bytes(7)) for i in range(1, 10_001)]), type_error_ok=False) != "malformed_segment_table":
        problems.append("table over 2**44 accepted")
    for size in (10_000 * part_ct, (1 << 44) + 1, (1 << 64) - 1):
        outcome(lambda size=size: isec.decide_copy({"isec": env.to_text()}, size, keyring=ring), type_error_ok=False)
    plan = outcome(lambda: isec.decide_copy({}, (1 << 64) - 1), type_error_ok=False)
    if plan != "limit_exceeded":
        problems.append(f"plaintext copy of 2**64-1 bytes: {plan}")
    return problems


def _hostile_legacy_sizes() -> list[str]:
    problems = []
    w = World()
    wrapped = w.lobj.wrapped_dek_b64  # a real wrapped DEK: the key opens and seals are read
    for size in ("18446744073709551615", "18446744073709551616", "-1", "1e9", "9" * 100, " 5", "0x10"):
        if outcome(lambda size=size: isec.LegacyMetadata({"isec": wrapped, "plaintext-size": size})) != "ok":
            continue
        meta = isec.LegacyMetadata({"isec": wrapped, "plaintext-size": size})
        for n in (28, 1 << 52, (1 << 64) - 1):
            outcome(lambda meta=meta, n=n: isec.LegacyObject(meta, n).plan_range(0, (1 << 64) - 1), type_error_ok=False)

    def sidecar(**doc: Any) -> isec.LegacySidecar:
        return isec.LegacySidecar.from_json(json.dumps({"v": 2, "dek": wrapped, **doc}).encode())

    # Three parts of 4 TiB: 1.5 million seals, read at a range in the middle and streamed.
    ps = 1 << 42
    seals = -(-ps // (8 * MIB))
    cs = ps + 28 * seals
    obj = isec.LegacyObject(
        isec.LegacyMetadata({}), 3 * cs, sidecar(pc=3, ts=3 * ps, parts=[{"pn": n, "ps": ps, "cs": cs} for n in (1, 2, 3)])
    )
    if obj.seal_count != 3 * seals:
        problems.append(f"seal count {obj.seal_count}")
    a, b = 1 << 43, (1 << 43) + 10
    plan = obj.plan_range(a, b)
    if plan.ct_end - plan.ct_start > 8 * MIB + 28:
        problems.append(f"a 10-byte range fetches {plan.ct_end - plan.ct_start} bytes")
    fetched = bytes(plan.ct_end - plan.ct_start)

    def stream(o: isec.LegacyObject) -> None:
        d = isec.LegacyDecryptor(w.lkey, o)
        for _ in range(40):
            d.update(bytes(MIB))

    for name, fn in (
        ("for_range", lambda: isec.LegacyDecryptor.for_range(w.lkey, obj, plan).update(fetched)),
        ("legacy_decrypt_range", lambda: isec.legacy_decrypt_range(w.lkey, obj, plan, fetched)),
        ("stream", lambda: stream(obj)),
    ):
        got = outcome(fn, type_error_ok=False)
        if got != "authentication_failed":
            problems.append(f"4 TiB parts, {name} of garbage: {got}")
    if outcome(lambda: isec.legacy_decrypt(w.lkey, obj, bytes(100)), type_error_ok=False) != "truncated":
        problems.append("12 TiB object from 100 bytes")
    for i in (0, obj.seal_count - 1, obj.seal_count, 1 << 40):
        outcome(lambda i=i: obj.seal(i), type_error_ok=False)
    # One seal of 1 TiB (a sidecar part, and a single-PUT object): never buffered whole.
    lone = isec.LegacyObject(
        isec.LegacyMetadata({}), (1 << 40) + 28, sidecar(pc=1, ts=1 << 40, parts=[{"pn": 1, "ps": 1 << 40, "cs": (1 << 40) + 28}])
    )
    single = isec.LegacyObject(isec.LegacyMetadata({"isec": wrapped, "plaintext-size": str(1 << 40)}), (1 << 40) + 28)
    ring = isec.Keyring()
    ring.add_legacy_secret_string(w.lkid, w.lsecret)
    ring.add_kek("new", bytes(32))

    def reencrypt(o: isec.LegacyObject) -> list[str]:
        """Migration opens a seal too large to buffer as it arrives (its tag is checked at
        its end): the output streams, and no checkpoint vouches for unverified bytes."""
        job = isec.Reencryption.start(ring, isec.LegacySource(ring, o, w.lkid))
        written = 0
        for _ in range(40):
            step = job.update(bytes(MIB), 0)
            if step.consumed != MIB:
                return [f"took {step.consumed} of 1 MiB"]
            written += step.written
        found = []
        if written < 39 * MIB:  # all but the frame held back
            found.append(f"{written} bytes out for 40 MiB in: buffered")
        if job.progress.parts_done != 0 or isec.Checkpoint.parse(job.checkpoint()).parts_done != 0:
            found.append("a checkpoint covers plaintext whose tag was not checked")
        return found

    for name, o in (("lone seal", lone), ("single PUT", single)):
        for how, fn in (
            ("stream", lambda o=o: stream(o)),
            ("range", lambda o=o: isec.LegacyDecryptor.for_range(w.lkey, o, o.plan_range(5, 10))),
        ):
            if outcome(fn, type_error_ok=False) == "ok":
                problems.append(f"1 TiB seal ({name}), {how}: 40 MiB buffered without an error")
        # Longer than any AES-GCM message may be (2^36 - 32 bytes): not authentic, refused
        # before migration streams any of it.
        got = outcome(lambda o=o: isec.Reencryption.start(ring, isec.LegacySource(ring, o, w.lkid)), type_error_ok=False)
        if got != "limit_exceeded":
            problems.append(f"1 TiB seal ({name}), re-encryption start: {got}")
    # One seal of 32 GiB, within GCM's limit: migration opens it as it arrives.
    lone = isec.LegacyObject(
        isec.LegacyMetadata({}), (1 << 35) + 28, sidecar(pc=1, ts=1 << 35, parts=[{"pn": 1, "ps": 1 << 35, "cs": (1 << 35) + 28}])
    )
    single = isec.LegacyObject(isec.LegacyMetadata({"isec": wrapped, "plaintext-size": str(1 << 35)}), (1 << 35) + 28)
    for name, o in (("lone seal", lone), ("single PUT", single)):
        found: list[str] = []
        got = outcome(lambda o=o: found.extend(reencrypt(o)), type_error_ok=False)
        if got != "ok" or found:
            problems.append(f"32 GiB seal ({name}), re-encryption: {got} {found}")
    # A gzip bomb: 64 MiB of spaces in a small sidecar body, under the default 16 MiB cap
    # (compressed in pieces, so that the test itself stays small in memory).
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    pieces = [co.compress(b"{")] + [co.compress(b" " * MIB) for _ in range(64)] + [co.compress(b"}"), co.flush()]
    bomb = base64.b64encode(b"".join(pieces))
    for cap in (isec.LEGACY_SIDECAR_CAP, 32 * MIB):
        got = outcome(lambda cap=cap: isec.LegacySidecar.parse(bomb, cap), type_error_ok=False)
        if got != "sidecar_too_large":
            problems.append(f"gzip bomb, cap {cap}: {got}")
    return problems


def _copy_with_caller_limits() -> list[str]:
    """Copy limits are the caller's; a max_parts above S3's 10000 must not become an
    allocation of max_parts ranges."""
    problems = []
    limits = isec.CopyLimits(single_copy_max=0, part_min=0, part_max=1, max_parts=4_000_000_000)
    got = outcome(lambda: isec.decide_copy({}, 4_000_000_000, limits=limits), type_error_ok=False)
    if got == "ok":
        problems.append("4e9 one-byte parts planned")
    return problems


def _legacy_split_seals_huge() -> list[str]:
    """Seal sizes of a hostile plaintext size (from metadata) must not be listed without bound."""
    got = outcome(lambda: isec.legacy_split_seals(1 << 60), type_error_ok=False)
    return [] if got != "ok" else ["2**37 seal sizes listed"]


ISOLATED: dict[str, Callable[[], list[str]]] = {
    "huge_declared_size": _huge_declared_size,
    "crafted_headers": _crafted_headers,
    "huge_part_counts": _huge_part_counts,
    "hostile_legacy_sizes": _hostile_legacy_sizes,
    "copy_with_caller_limits": _copy_with_caller_limits,
    "legacy_split_seals_huge": _legacy_split_seals_huge,
}


def _child(case: str) -> None:
    """Runs one case under a 2 GiB address-space limit: an attempt at a huge allocation
    fails instead of succeeding lazily, and Rust aborts, which the parent sees."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    try:
        problems = ISOLATED[case]()
    except Foreign as e:
        problems = [str(e)]
    # VmHWM: the peak RSS of this process image (ru_maxrss would carry the forking parent's).
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"problems": problems, "maxrss": hwm * 1024}))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limit and /proc/self/status")
@pytest.mark.parametrize("case", sorted(ISOLATED))
def test_huge_sizes_and_counts_in_a_child(case: str) -> None:
    """In a child process (a Rust abort must not take pytest down): typed errors, no crash,
    done within a generous time, peak RSS bounded. `copy_with_caller_limits` and
    `legacy_split_seals_huge` fail while core builds max_parts ranges and the package lists
    every seal size (both abort on the failed allocation)."""
    code = f"from tests.test_no_panic import _child; _child({case!r})"
    env = {**os.environ, "RUST_BACKTRACE": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO / "bindings-py", env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, f"{case}: child died ({p.returncode}): {p.stderr.strip()[-800:]}"
    report = json.loads(p.stdout.strip().splitlines()[-1])
    print(f"{case}: peak RSS {report['maxrss'] / MIB:.0f} MiB")
    assert report["problems"] == [], report["problems"]
    assert report["maxrss"] < RSS_BOUND, f"{case}: peak RSS {report['maxrss'] / MIB:.0f} MiB"
