"""The shared corpus (tests/vectors, part of SPEC.md) through every Python path: one-shot,
streaming with odd split points (`update` and `update_into` into several buffer types),
and ranged reads. No format logic lives here: every expectation comes from the vector
files, and every geometry from the binding itself."""

from __future__ import annotations

import array
import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

import isec

from .conftest import VECTORS, class_for, expect_error, keyring_with, load, pattern, splitter

try:
    import numpy as np
except ImportError:  # pragma: no cover - the test script installs numpy
    np = None  # type: ignore[assignment]

MANIFEST = load("manifest.json")


def test_manifest_lists_every_file_with_its_hash_and_count() -> None:
    files = MANIFEST["files"]
    assert len(files) >= 6
    for f in files:
        data = (VECTORS / f["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["file"]
        doc = load(f["file"])
        tests = doc.get("tests")
        if tests is not None:
            assert len(tests) == f["tests"], f["file"]
            assert doc["numberOfTests"] == f["tests"], f["file"]
            ids = [t["tcId"] for t in tests]
            assert len(set(ids)) == len(ids), f"{f['file']}: tcIds unique"
        assert f["schema"] in HANDLERS, f"{f['file']}: no harness for schema {f['schema']}"


# --- envelope.json ---------------------------------------------------------------------------


def run_envelope(doc: Any, t: Any) -> None:
    if t.get("stage") == "decode":
        with expect_error(t["error"]):
            isec.Envelope.decode_text(t["envelope"])
        return
    env = isec.Envelope.decode_text(t["envelope"])
    if "inspect" in t:
        assert env.info().to_dict() == t["inspect"]
        assert env.to_text() == t["envelope"], "re-encode"
        assert isec.Envelope.decode(env.to_bytes()) == env
        assert env.kid == t["inspect"]["kid"]
    ring = keyring_with()
    if t["result"] == "valid":
        key = ring.open(env)
        assert key.frame_size == env.frame_size
    else:
        with expect_error(t["error"]):
            ring.open(env)


def test_envelope_key_schedule_header() -> None:
    doc = load("envelope.json")
    env = isec.Envelope.decode_text(doc["tests"][0]["envelope"])
    assert env.header_bytes().hex() == doc["key_schedule"]["header"]
    assert env.salt.hex() == doc["key_schedule"]["salt"]


# --- nonces.json -----------------------------------------------------------------------------


def run_nonce(doc: Any, t: Any) -> None:
    n = isec.Nonce(bytes.fromhex(t["nonce"]))
    assert bytes(n) == bytes.fromhex(t["nonce"])
    if t["result"] == "valid":
        pos = isec.FramePosition(t["index"], t["segment_end"], t["object_end"])
        assert isec.Nonce.build(bytes.fromhex(t["prefix"]), pos) == n
        assert n.position() == pos
        assert n.prefix == bytes.fromhex(t["prefix"])
    else:
        with expect_error(t["error"]):
            n.position()


# --- ranges.json -----------------------------------------------------------------------------


def run_range(doc: Any, t: Any) -> None:
    env = isec.Envelope.decode_text(t["envelope"])
    if t["result"] == "invalid":
        with expect_error(t["error"]):
            isec.shape_for(env, t["ciphertext_len"])
        return
    shape = isec.shape_for(env, t["ciphertext_len"])
    assert shape == isec.Shape.from_ciphertext_len(env, t["ciphertext_len"])
    plan = shape.map_range(*t["range"])
    e = t["expect"]
    assert (plan.ct_start, plan.ct_end, plan.skip, plan.len) == (e["ct_start"], e["ct_end"], e["skip"], e["len"])
    assert plan.is_empty() == (e["len"] == 0)
    assert (plan.http_range is None) == (e["ct_end"] == e["ct_start"])


# --- frames.json, multipart.json -------------------------------------------------------------

_rng = random.Random(0x15EC)


def _out_buffer(kind: int, n: int) -> tuple[Any, Callable[[], bytes]]:
    """A writable buffer of n bytes of one of several types, and a way to read it back."""
    if kind == 0:
        b = bytearray(n)
        return b, lambda: bytes(b)
    if kind == 1:
        b = bytearray(n + 3)
        v = memoryview(b)[3:]
        return v, lambda: bytes(v)
    if kind == 2 and np is not None:
        a = np.zeros(n, dtype=np.uint8)
        return a, lambda: a.tobytes()
    arr = array.array("B", bytes(n))
    return arr, lambda: arr.tobytes()


def stream(dec: Any, ct: bytes, sizes: list[int], into: bool) -> tuple[bytes, BaseException | None]:
    """Feeds ct in pieces; returns what was released and the error, if any. A failed call
    must leave no plaintext behind in the buffer it was given."""
    out = bytearray()
    for piece in splitter(sizes)(ct):
        try:
            if into:
                buf, read = _out_buffer(_rng.randrange(4), dec.update_len(len(piece)))
                try:
                    n = dec.update_into(piece, buf)
                except isec.IsecError:
                    assert not any(read()), "plaintext left in the buffer of a failed update_into"
                    raise
                out += read()[:n]
            else:
                out += dec.update(piece)
        except isec.IsecError as e:
            return bytes(out), e
    try:
        out += dec.finalize()
    except isec.IsecError as e:
        return bytes(out), e
    return bytes(out), None


def code(e: BaseException | None) -> str | None:
    if e is None:
        return None
    assert isinstance(e, isec.IsecError)
    assert isinstance(e, class_for(e.code)), f"{type(e).__name__} for {e.code}"
    return e.code


def assert_locked(dec: Any) -> None:
    """After any error a context refuses further use."""
    assert dec.locked
    with expect_error("invalid_state"):
        dec.update(b"\x00")
    with expect_error("invalid_state"):
        dec.update_into(b"\x00", bytearray(64))
    with expect_error("invalid_state"):
        dec.finalize()


def run_object(doc: Any, t: Any) -> None:
    ring = keyring_with()
    env = isec.Envelope.decode_text(t["envelope"])
    key = ring.open(env)
    ct = bytes.fromhex(t["ciphertext"])
    pt = pattern(t["plaintext_len"])
    error = t.get("error")
    ranged_error = t.get("ranged_error", error)
    released = t["released"]
    table = bytes.fromhex(t["segment_table"]) if "segment_table" in t else None
    frame = env.frame_size

    # One-shot: all or nothing.
    def one_shot() -> bytes:
        if table is not None:
            return isec.decrypt_with_table(key, table, ct)
        return isec.decrypt(key, ct)

    if error is None:
        assert one_shot() == pt
    else:
        with expect_error(error):
            one_shot()

    # Streaming with awkward split points, through update and update_into.
    splits = [[1], [frame - 1], [frame + 1], [frame + 27, frame + 29], [7, 4099, 13, 65_536], [1 << 62]]
    splits.append([_rng.randrange(1, 3 * frame) for _ in range(5)])
    for sizes in splits:
        for into in (False, True):
            if sizes == [1] and into and len(ct) > 30_000:
                continue  # one-byte update_into calls on big objects add time, not coverage
            try:
                dec = isec.Decryptor.with_table(key, table, len(ct)) if table is not None else isec.Decryptor(key)
            except isec.IsecError as e:
                assert code(e) == error, "table"
                continue
            out, err = stream(dec, ct, sizes, into)
            assert code(err) == error, f"streaming {sizes} into={into}"
            if sizes == [1] or error is None:
                assert len(out) == released, f"released with splits {sizes}"
            else:
                assert len(out) <= released, f"released {len(out)} > {released} with splits {sizes}"
            assert out == pt[: len(out)], "released plaintext"
            if err is not None:
                assert_locked(dec)
            else:
                assert dec.locked, "finalized"

    # Ranged: the whole object and sub-ranges of valid objects, through decrypt_range and a
    # streaming for_range decryptor; the whole object of invalid ones through the shape path.
    def shape() -> isec.Shape:
        if table is not None:
            return isec.Shape.from_table(key, table, len(ct))
        return isec.shape_for(env, len(ct))

    fetches: list[tuple[int, int]] = []

    def fetch(a: int, b: int) -> bytes:
        fetches.append((a, b))
        return ct[a:b]

    if ranged_error is None:
        s = shape()
        n = len(pt)
        for a, b in [(0, n), (0, 1), (1, n // 2 + 1), (n // 3, n), (max(n - 1, 0), n + 5), (n, n + 1), (4096, 8193)]:
            want = pt[min(a, n) : max(min(b, n), min(a, n))]
            fetches.clear()
            assert isec.decrypt_range(key, s, a, b, fetch) == want, f"range {a}..{b}"
            plan = s.map_range(a, b)
            assert fetches == ([] if plan.is_empty() else [(plan.ct_start, plan.ct_end)]), "fetched only the plan"
            for sizes in ([1], [frame + 1], [1 << 62]):
                dec = isec.Decryptor.for_range(key, s, plan)
                got, err = stream(dec, ct[plan.ct_start : plan.ct_end], sizes, into=sizes == [frame + 1])
                assert err is None and got == want, f"streamed range {a}..{b} {sizes}"
    else:
        for sizes in ([1], [frame + 1], [1 << 62]):
            try:
                dec = isec.Decryptor.with_shape(key, shape())
            except isec.IsecError as e:
                assert code(e) == ranged_error, f"ranged {sizes}"
                continue
            out, err = stream(dec, ct, sizes, into=False)
            assert code(err) == ranged_error, f"ranged {sizes}"
            assert len(out) <= max(released, len(pt))
            assert out == pt[: len(out)], "released plaintext (ranged)"

    # Valid objects round-trip under the same object key with fresh nonce prefixes.
    if error is None:
        assert_reencrypts(key, env, pt, ct, table)


def assert_reencrypts(key: isec.ObjectKey, env: isec.Envelope, pt: bytes, ct: bytes, table: bytes | None) -> None:
    frame = env.frame_size
    if table is not None:
        entries = isec.SegmentTable.decode(table, key).entries
        shape = isec.Shape.from_table(key, table, len(ct))
        parts, new_entries, at = [], [], 0
        for i, (number, length, prefix) in enumerate(entries):
            seg = shape.segment(i)
            assert seg is not None and ct[seg.ct_start : seg.ct_start + 7] == prefix, "the table records each part's prefix"
            enc = isec.Encryptor.for_part(key, number, False)
            body = b"".join(
                enc.update(p) for p in splitter([frame + 1, 3])(pt[at : at + length])
            ) + enc.finalize()
            parts.append(body)
            assert body != b"" and enc.prefix == body[:7]
            new_entries.append((number, length, enc.prefix))
            at += length
        new_table = isec.SegmentTable(new_entries).encode(key)
        assert isec.decrypt_with_table(key, new_table, b"".join(parts)) == pt
        # The old table names the old encryptions' prefixes: the new parts are refused.
        try:
            isec.decrypt_with_table(key, table, b"".join(parts))
        except isec.IsecError as e:
            assert code(e) == "frame_out_of_order"
        else:
            raise AssertionError("the old table accepted parts under other prefixes")
        return
    if env.layout == "single":
        new = b"".join(isec.encrypt_chunks(key, splitter([frame - 1, 5])(pt)))
    else:
        s = isec.Shape.from_plaintext_len(key, len(pt))
        pieces = []
        for i in range(s.segment_count):
            seg = s.segment(i)
            assert seg is not None
            chunk = pt[seg.pt_start : seg.pt_start + seg.pt_len]
            pieces.append(isec.encrypt_part(key, seg.number, seg.is_last, chunk))
        new = b"".join(pieces)
    assert len(new) == len(ct), "same geometry"
    assert new != ct, "fresh nonce prefixes"
    assert isec.decrypt(key, new) == pt
    assert isec.decrypt(key, isec.encrypt(key, pt)) == pt


# --- copy_decisions.json ---------------------------------------------------------------------


def run_copy(doc: Any, t: Any) -> None:
    r = t["request"]
    ring = keyring_with(t["keys"])

    def decide() -> isec.CopyPlan:
        return isec.decide_copy(
            [tuple(p) for p in r["source_metadata"]],
            r["source_size"],
            keyring=ring,
            source_sidecar=r["source_sidecar"],
            directive=r["directive"],
            new_metadata=[tuple(p) for p in r["new_metadata"]],
            target_kid=r["target_kid"],
            rotate_dek=r["rotate_dek"],
            migrate_legacy=r["migrate_legacy"],
            require_encryption=r["require_encryption"],
            limits=isec.CopyLimits(**r["limits"]),
        )

    if t["result"] == "invalid":
        with expect_error(t["error"]):
            decide()
        return
    plan = decide()
    steps = {k: t["expect"][k] for k in ("steps", "steps_in_place")}
    migrations = t["expect"].get("migrations", [])
    assert plan.to_dict() == {k: v for k, v in t["expect"].items() if k not in (*steps, "migrations")}
    # The requests that execute the plan (SPEC.md §12.2), to another object and in place.
    meta = [tuple(p) for p in r["source_metadata"]]
    src, dst = ("src-bucket", "photos/a.jpg"), ("dst-bucket", "backup/a.jpg")
    check_steps(isec.copy_steps(plan, src, meta, dst), steps["steps"])
    check_steps(isec.copy_steps(plan, src, meta, src), steps["steps_in_place"])
    # A migration in place (SPEC.md §12.3), for each recorded sidecar.
    assert bool(migrations) == (r["migrate_legacy"] and plan.action == "reencrypt")
    for m in migrations:
        got = isec.migrate_steps(plan, src, meta, m["sidecar"], m["active_kid"], m["plaintext_len"])
        check_steps(got.steps, m["steps"])
        assert (got.sidecar_deleted, got.sidecar_kept) == (m["sidecar_deleted"], m["sidecar_kept"])
    # The plan names the sidecar it copies: isec's table beside an isec object, the previous
    # proxy's beside a legacy one.
    if plan.copy_sidecar:
        fmt = isec.classify([tuple(p) for p in r["source_metadata"]], r["source_sidecar"]).format
        assert plan.sidecar == {"isec": "table", "legacy": "legacy"}[fmt]
        key = {"table": isec.table_sidecar_key, "legacy": isec.legacy_sidecar_key}[plan.sidecar]("a/b")
        assert plan.sidecar_key("a/b") == key
    else:
        assert (plan.sidecar, plan.sidecar_key("a/b")) == (None, None)


def check_request(got: isec.S3Request, want: Any) -> None:
    """Every field the corpus records for a request (op, objects, directive, metadata,
    pinning, headers, part, range), as the binding exposes it."""
    for field, value in want.items():
        if field == "undo":
            continue
        have = getattr(got, field)
        if isinstance(have, tuple):
            have = list(have)
        elif isinstance(have, list):
            have = [list(p) for p in have]
        assert have == value, (want["op"], field, have, value)


def check_steps(got: list[isec.CopyStep], want: Any) -> None:
    assert [s.request.op for s in got] == [w["op"] for w in want]
    for s, w in zip(got, want, strict=True):
        check_request(s.request, w)
        assert [u.op for u in s.undo] == [u["op"] for u in w["undo"]]
        for u, wu in zip(s.undo, w["undo"], strict=True):
            check_request(u, wu)


# --- rotation.json ---------------------------------------------------------------------------


def run_rotation(doc: Any, t: Any) -> None:
    ring = keyring_with(t["keys"])
    ring.set_min_version(t["min_version"])
    env = isec.Envelope.decode_text(t["envelope"])
    op = t["operation"]
    assert op in ("open", "rewrap"), f"unknown operation {op}"
    call = (lambda: ring.open(env)) if op == "open" else (lambda: ring.rewrap(env))
    if t["result"] != "valid":
        with expect_error(t["error"]):
            call()
        return
    got = call()
    if op == "rewrap":
        assert isinstance(got, isec.Envelope)
        assert got.to_text() == t["expect"]["envelope"]
        assert got.kid == t["expect"]["kid"]
        active = ring.active_kid
        assert active is not None
        assert ring.rewrap_to(env, active) == got


# --- legacy.json -----------------------------------------------------------------------------


def run_legacy(doc: Any, t: Any) -> None:
    ct = bytes.fromhex(t["ciphertext"])
    kek = isec.legacy_kek_from_secret(t["legacy_secret"])
    meta = [tuple(p) for p in t["metadata"]]

    def one_shot() -> bytes:
        obj = isec.LegacyObject(isec.LegacyMetadata(meta), len(ct))
        return isec.legacy_decrypt(isec.LegacyKey.open_object(kek, obj), obj, ct)

    def through_keyring(sizes: list[int]) -> bytes:
        ring = isec.Keyring()
        ring.add_legacy_secret_string(t["kid"], t["legacy_secret"])
        obj = isec.LegacyObject(isec.LegacyMetadata(dict(meta)), len(ct))
        dec = isec.LegacyDecryptor(ring.open_legacy(obj, t["kid"]), obj)
        out, err = stream(dec, ct, sizes, into=sizes == [3])
        if err is not None:
            assert_locked(dec)
            raise err
        return out

    if t["result"] == "valid":
        want = pattern(t["plaintext_len"])
        assert one_shot() == want
        for sizes in ([1], [3], [1 << 62]):
            assert through_keyring(sizes) == want
    else:
        with expect_error(t["error"]):
            one_shot()
        for sizes in ([1], [1 << 62]):
            with expect_error(t["error"]):
                through_keyring(sizes)


# --- recipients.json -------------------------------------------------------------------------


def run_recipients(doc: Any, t: Any) -> None:
    """Each case's keyring is a keyring file (SPEC.md §10.3), read by core through the binding."""
    if t.get("stage") == "decode":
        with expect_error(t["error"]):
            isec.Envelope.decode_text(t["envelope"])
        return
    env = isec.Envelope.decode_text(t["envelope"])
    ring = isec.Keyring.from_text(json.dumps(t["keyring"]).encode())
    if "inspect" in t:
        assert env.info().to_dict() == t["inspect"]
    if "rewrap_then_open_with" in t:
        env = ring.rewrap(env)
        assert env.info().wrap_alg == t["rewrapped_wrap_alg"]
        ring = isec.Keyring.from_text(json.dumps(t["rewrap_then_open_with"]).encode())
    ct = bytes.fromhex(t["ciphertext"])
    if t["result"] == "valid":
        assert isec.decrypt(ring.open(env), ct) == pattern(t["plaintext_len"])
    else:
        with expect_error(t["error"]):
            ring.open(env)


HANDLERS: dict[str, Callable[[Any, Any], None] | None] = {
    "isec-keys-v1": None,
    "isec-envelope-v1": run_envelope,
    "isec-nonces-v1": run_nonce,
    "isec-frames-v1": run_object,
    "isec-ranges-v1": run_range,
    "isec-multipart-v1": run_object,
    "isec-copy-decisions-v1": run_copy,
    "isec-rotation-v1": run_rotation,
    "isec-legacy-v1": run_legacy,
    "isec-recipients-v1": run_recipients,
}

CASES = [
    pytest.param(f["file"], f["schema"], t, id=f"{f['file'].removesuffix('.json')}-{t['tcId']}")
    for f in MANIFEST["files"]
    for t in load(f["file"]).get("tests", [])
]


@pytest.mark.parametrize(("file", "schema", "case"), CASES)
def test_vector(file: str, schema: str, case: Any) -> None:
    handler = HANDLERS[schema]
    assert handler is not None, f"{file} has tests but no handler"
    handler(load(file), case)


def test_every_case_is_run() -> None:
    assert len(CASES) == sum(f["tests"] for f in MANIFEST["files"])
