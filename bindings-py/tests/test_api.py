"""The Python API around the corpus: keyring and KMS callbacks, buffers of every kind,
streaming contracts (exact lengths, locking), ranges, file helpers, decisions, and the
re-encryption job."""

from __future__ import annotations

import array
import base64
import io
import mmap
import os
from pathlib import Path
from typing import Any

import pytest

import isec

from .conftest import expect_error, pattern, splitter

try:
    import numpy as np
except ImportError:  # pragma: no cover - the test script installs numpy
    np = None  # type: ignore[assignment]


@pytest.fixture
def ring() -> isec.Keyring:
    r = isec.Keyring()
    r.add_kek("kek-a", isec.generate_kek())
    return r


# --- keyring ---------------------------------------------------------------------------------


def test_keyring_states_and_rotation() -> None:
    r = isec.Keyring()
    a, b = isec.generate_kek(), isec.generate_kek()
    assert len(a) == 32 and a != b
    r.add_kek("kek-a", a)
    assert r.active_kid == "kek-a"
    env, key = r.create_envelope(declared_size=5)
    body = isec.encrypt(key, b"hello")
    r.add_kek("kek-b", bytearray(b))  # any buffer; the new active key demotes kek-a
    assert [(k.kid, k.state) for k in r.keys()] == [("kek-a", "decrypt_only"), ("kek-b", "active")]
    assert r.state("kek-a") == "decrypt_only" and r.state("nope") is None
    new = r.rewrap(env)
    assert new.kid == "kek-b" and new.header_bytes() == env.header_bytes()
    assert r.rewrap_to(env, "kek-b").kid == "kek-b"
    with expect_error("key_not_active"):
        r.rewrap_to(env, "kek-a")
    r.set_state("kek-a", "disabled")
    with expect_error("key_disabled"):
        r.open(env)
    assert isec.decrypt(r.open(new), body) == b"hello"
    r.set_state("kek-a", "active")
    assert r.active_kid == "kek-a" and r.state("kek-b") == "decrypt_only"
    with expect_error("unknown_kid"):
        r.set_state("nope", "active")
    r.set_min_version(2)
    assert r.min_version == 2
    with expect_error("version_refused"):
        r.open(new)
    assert len(r) == 2
    assert "kek-a" in repr(r)


def test_keyring_refusals() -> None:
    r = isec.Keyring()
    with expect_error("key_not_active"):
        r.create_envelope()
    with expect_error("invalid_parameter"):
        r.add_kek("kek-a", b"\x00" * 31)
    r.add_kek("kek-a", b"\x00" * 32, "decrypt_only")
    assert r.active_kid is None
    with expect_error("duplicate_kid"):
        r.add_kek("kek-a", b"\x01" * 32)
    for bad_kid in ["", "has space", "x" * 65, "tab\t"]:
        with expect_error("invalid_parameter"):
            r.add_kek(bad_kid, b"\x01" * 32)
    with expect_error("invalid_parameter"):
        r.add_kek("kek-b", b"\x01" * 32, "sideways")
    r.add_legacy_secret_string("legacy", "secret")
    assert r.keys()[-1] == r.keys()[-1] and r.keys()[-1].legacy and r.state("legacy") == "decrypt_only"
    with expect_error("invalid_parameter"):
        r.set_state("legacy", "active")  # unsalted string hashes never protect new objects


def test_create_envelope_parameters(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope()
    assert (env.layout, env.frame_size, env.part_size, env.declared_size) == ("single", 65536, None, None)
    assert env.frame_size == isec.DEFAULT_FRAME_SIZE and key.frame_size == env.frame_size
    env, key = ring.create_envelope(frame_size=4096, part_size=3 * 4096, declared_size=10_000)
    assert (env.layout, env.part_size, env.declared_size) == ("parts", 12288, 10_000)
    assert (key.layout, key.part_size, key.declared_size) == ("parts", 12288, 10_000)
    env, _ = ring.create_envelope(table=True)
    assert env.layout == "table"
    with expect_error("invalid_parameter"):
        ring.create_envelope(part_size=8192, table=True)
    with expect_error("invalid_parameter"):
        ring.create_envelope(frame_size=4096, part_size=5000)
    for bad in (1000, 2048, 1 << 24, 3 * 4096):
        with expect_error("invalid_frame_size"):
            ring.create_envelope(frame_size=bad)
    with expect_error("limit_exceeded"):
        ring.create_envelope(declared_size=(1 << 44) + 1)


class ToyKms:
    """A stand-in KMS: wraps by remembering the DEK under an opaque handle."""

    def __init__(self) -> None:
        self.store: dict[bytes, bytes] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: BaseException | None = None
        self.bad_result: Any = None

    def _called(self, op: str, kid: str) -> Any:
        """Records the call; raises `fail` or returns `bad_result` when a test set one."""
        self.calls.append((op, kid))
        if self.fail:
            raise self.fail
        return self.bad_result

    def wrap(self, kid: str, dek: bytes) -> bytes:
        if (bad := self._called("wrap", kid)) is not None:
            return bad  # type: ignore[no-any-return]
        handle = os.urandom(24)
        self.store[handle] = bytes(dek)
        return b"kms:" + handle

    def unwrap(self, kid: str, wrapped: bytes) -> bytes:
        if (bad := self._called("unwrap", kid)) is not None:
            return bad  # type: ignore[no-any-return]
        return self.store[wrapped[4:]]


def test_external_wrapper_round_trip_and_rewrap() -> None:
    kms = ToyKms()
    r = isec.Keyring()
    r.add_external("arn:kms/key-1", kms)
    assert r.keys()[0].external
    env, key = r.create_envelope()
    assert env.wrap_alg == "external" and env.kid == "arn:kms/key-1"
    body = isec.encrypt(key, b"via kms")
    assert isec.decrypt(r.open(isec.Envelope.decode_text(env.to_text())), body) == b"via kms"
    assert kms.calls == [("wrap", "arn:kms/key-1"), ("unwrap", "arn:kms/key-1")]
    # Rotate from the KMS key to a local KEK and back: only the envelope changes.
    r.add_kek("local", isec.generate_kek())
    local_env = r.rewrap(env)
    assert local_env.wrap_alg == "aes-kwp"
    r.set_state("arn:kms/key-1", "active")
    back = r.rewrap(local_env)
    assert back.wrap_alg == "external"
    assert isec.decrypt(r.open(back), body) == b"via kms"


def test_external_wrapper_failures_are_typed_with_cause() -> None:
    kms = ToyKms()
    r = isec.Keyring()
    r.add_external("k", kms)
    env, _ = r.create_envelope()
    kms.fail = ConnectionError("kms unreachable")
    with expect_error("external_wrapper_failed") as info:
        r.open(env)
    assert isinstance(info.value, isec.IsecKeyError)
    assert isinstance(info.value.__cause__, ConnectionError)
    with expect_error("external_wrapper_failed"):
        r.create_envelope()
    kms.fail = None
    kms.bad_result = b"\x00" * 31  # not a 32-byte DEK
    with expect_error("external_wrapper_failed"):
        r.open(env)
    kms.bad_result = "not bytes"
    with expect_error("external_wrapper_failed") as info:
        r.create_envelope()
    assert isinstance(info.value.__cause__, TypeError)
    kms.bad_result = b"x" * 201  # longer than the envelope allows
    with expect_error("limit_exceeded"):
        r.create_envelope()
    kms.bad_result = b"\x00" * 32  # a DEK, but not this object's
    with expect_error("commitment_mismatch"):
        r.open(env)
    with pytest.raises(TypeError):
        r.add_external("k2", object())  # type: ignore[arg-type]


# --- buffers ---------------------------------------------------------------------------------


def buffer_kinds(data: bytes) -> list[Any]:
    kinds: list[Any] = [data, bytearray(data), memoryview(data), memoryview(bytearray(b"__" + data))[2:]]
    if len(data) % 4 == 0:
        kinds.append(array.array("I", data))  # a non-byte item format: read as raw bytes
    if np is not None:
        kinds.append(np.frombuffer(data, dtype=np.uint8))
        doubled = np.frombuffer(bytes(b for pair in zip(data, data) for b in pair), dtype=np.uint8)
        kinds.append(doubled[::2])  # non-contiguous: copied once, same bytes
        if len(data) % 4 == 0:
            kinds.append(np.frombuffer(data, dtype=np.int32))
    return kinds


def test_any_buffer_is_accepted_as_input(ring: isec.Keyring) -> None:
    _, key = ring.create_envelope(frame_size=4096)
    data = pattern(10_000)
    ct = isec.encrypt(key, data)
    for b in buffer_kinds(data):
        assert isec.decrypt(key, isec.encrypt(key, b)) == data, type(b)
        enc = isec.Encryptor(key)
        assert isec.decrypt(key, enc.update(b) + enc.finalize()) == data
    for b in buffer_kinds(ct):
        assert isec.decrypt(key, b) == data, type(b)
    with mmap.mmap(-1, len(ct)) as m:
        m.write(ct)
        assert isec.decrypt(key, m) == data


def test_update_into_any_writable_buffer(ring: isec.Keyring) -> None:
    _, key = ring.create_envelope(frame_size=4096)
    data = pattern(50_000)
    outs: list[Any] = [bytearray(60_000), memoryview(bytearray(60_000)), array.array("B", bytes(60_000))]
    if np is not None:
        outs.append(np.zeros(60_000, dtype=np.uint8))
    for out in outs:
        enc = isec.Encryptor(key)
        n = enc.update_into(data, out)
        assert n == enc.update_len(0) or n > 0
        ct = bytes(memoryview(out).cast("B")[:n])
        m = enc.finalize_into(memoryview(out).cast("B")[n:])
        ct += bytes(memoryview(out).cast("B")[n : n + m])
        assert isec.decrypt(key, ct) == data
    for read_only in (b"x" * 60_000, memoryview(b"x" * 60_000)):
        with pytest.raises(TypeError):
            isec.Encryptor(key).update_into(data, read_only)
    if np is not None:
        with pytest.raises(TypeError):
            isec.Encryptor(key).update_into(data, np.zeros(120_000, dtype=np.uint8)[::2])  # type: ignore[arg-type]


def test_lengths_are_exact_for_the_encryptor(ring: isec.Keyring) -> None:
    _, key = ring.create_envelope(frame_size=4096)
    enc = isec.Encryptor(key)
    total = 0
    for n in [0, 1, 4095, 4096, 1, 9000, 0, 12_000]:
        need = enc.update_len(n)
        out = enc.update(b"\x07" * n)
        assert len(out) == need
        total += n
        assert enc.consumed == total
    assert len(enc.finalize()) > 0


def test_same_buffer_in_and_out(ring: isec.Keyring) -> None:
    """An input sharing memory with the output is copied first, never read while written."""
    _, key = ring.create_envelope(frame_size=4096)
    data = pattern(20_000)
    buf = bytearray(data) + bytearray(1000)
    enc = isec.Encryptor(key)
    n = enc.update_into(memoryview(buf)[:20_000], buf)
    ct = bytes(buf[:n]) + enc.finalize()
    assert isec.decrypt(key, ct) == data
    dbuf = bytearray(ct)
    dec = isec.Decryptor(key)
    m = dec.update_into(dbuf, dbuf)
    assert bytes(dbuf[:m]) + dec.finalize() == data


def test_wrong_python_types_raise_type_error(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope()
    for bad in ["text", 12, None, [1, 2], object()]:
        with pytest.raises(TypeError):
            isec.encrypt(key, bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            isec.Encryptor(key).update(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        isec.encrypt(env, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        isec.Envelope.decode_text(b"AQ")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        isec.Decryptor("key")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        isec.Shape.from_ciphertext_len("envelope", 10)  # type: ignore[arg-type]
    # An int the parameter cannot hold is a wrong value like any other: invalid_parameter.
    for bad_int in (-1, 1 << 64):
        with expect_error("invalid_parameter"):
            isec.shape_for(env, bad_int)
        with expect_error("invalid_parameter"):
            isec.encrypt_part(key, bad_int, True, b"x")
        with expect_error("invalid_parameter"):
            isec.CopyLimits(max_parts=bad_int)
        with expect_error("invalid_parameter"):
            isec.SegmentTable([(1, bad_int, bytes(7))])
        with expect_error("invalid_parameter"):
            isec.encrypt_file(io.BytesIO(b"x"), io.BytesIO(), key, chunk_size=bad_int)
    with expect_error("invalid_parameter"):
        isec.Keyring().set_min_version(256)  # a u8
    with expect_error("invalid_parameter"):
        isec.encrypt_file(io.BytesIO(b"x"), io.BytesIO(), key, chunk_size=0)
    with pytest.raises(TypeError):
        isec.shape_for(env, 1.0)  # type: ignore[arg-type]


# --- streaming contracts ---------------------------------------------------------------------


def test_contexts_lock_after_finalize_and_after_errors(ring: isec.Keyring) -> None:
    _, key = ring.create_envelope(frame_size=4096, declared_size=10)
    enc = isec.Encryptor(key)
    enc.update(b"12345")
    with expect_error("invalid_parameter"):
        enc.finalize()  # shorter than declared
    assert enc.locked
    with expect_error("invalid_state"):
        enc.update(b"67890")
    enc = isec.Encryptor(key)
    with expect_error("invalid_parameter"):
        enc.update(b"x" * 11)  # past the declared size
    with expect_error("invalid_state"):
        enc.update_len(1)
    enc = isec.Encryptor(key)
    ct = enc.update(b"0123456789") + enc.finalize()
    with expect_error("invalid_state"):
        enc.finalize()
    with expect_error("invalid_state"):
        enc.consumed  # noqa: B018
    # A buffer below the bound is an error too, and locks.
    _, free_key = ring.create_envelope(frame_size=4096)
    enc = isec.Encryptor(free_key)
    enc.update(b"01234")
    with expect_error("buffer_too_small"):
        enc.finalize_into(bytearray(3))
    with expect_error("invalid_state"):
        enc.finalize()
    dec = isec.Decryptor(key)
    with expect_error("buffer_too_small"):
        dec.update_into(ct, bytearray(1))
    assert dec.locked
    dec = isec.Decryptor(key)
    assert dec.update(ct) + dec.finalize() == b"0123456789"
    assert dec.locked


def test_in_place_frames(ring: isec.Keyring) -> None:
    """Plaintext read straight into the output buffer, sealed and opened where it lies."""
    _, key = ring.create_envelope(frame_size=4096)
    data = pattern(3 * 4096 + 100)
    full, nonce = 4096 + isec.FRAME_OVERHEAD, 12
    enc = isec.Encryptor(key)
    frames = []
    for i in range(3):
        f = bytearray(full)
        f[nonce : nonce + 4096] = data[i * 4096 : (i + 1) * 4096]
        enc.seal_frame_in_place(f)
        frames.append(f)
    last = bytearray(100 + isec.FRAME_OVERHEAD)
    last[nonce : nonce + 100] = data[3 * 4096 :]
    enc.finalize_in_place(last)
    with expect_error("invalid_state"):
        enc.seal_frame_in_place(bytearray(full))
    ct = b"".join(bytes(f) for f in frames) + bytes(last)
    assert isec.decrypt(key, ct) == data
    dec = isec.Decryptor(key)
    out = bytearray()
    for f in frames + [last]:
        a, b = dec.open_frame_in_place(f)
        out += f[a:b]
    assert dec.finalize() == b"" and bytes(out) == data
    dec = isec.Decryptor(key)
    bad = bytearray(ct[:full])
    bad[40] ^= 1
    with expect_error("authentication_failed"):
        dec.open_frame_in_place(bad)
    assert not any(bad), "a frame that fails is wiped"
    with expect_error("invalid_state"):
        dec.open_frame_in_place(bytearray(ct[full : 2 * full]))
    enc = isec.Encryptor(key)
    enc.update(b"x")
    with expect_error("invalid_state"):
        enc.seal_frame_in_place(bytearray(full))  # buffered input and in-place frames do not mix


def test_truncation_is_reported_at_finalize(ring: isec.Keyring) -> None:
    _, key = ring.create_envelope(frame_size=4096)
    ct = isec.encrypt(key, pattern(10_000))
    dec = isec.Decryptor(key)
    out = dec.update(ct[: 2 * (4096 + isec.FRAME_OVERHEAD)])
    assert out == pattern(8192) and dec.released == 8192 and not dec.is_done
    with expect_error("truncated") as info:
        dec.finalize()
    assert isinstance(info.value, isec.StreamError)
    full = isec.encrypt(key, pattern(8192))  # the final frame is full: nothing may follow it
    with expect_error("trailing_data"):
        isec.Decryptor(key).update(full + b"extra")


def test_parts_encrypted_in_any_order(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope(frame_size=4096, part_size=8192, declared_size=20_000)
    data = pattern(20_000)
    shape = isec.Shape.from_plaintext_len(env, len(data))
    assert shape.segment_count == 3
    parts: dict[int, bytes] = {}
    for i in reversed(range(shape.segment_count)):
        seg = shape.segment(i)
        assert seg is not None
        enc = isec.Encryptor.for_part(key, seg.number, seg.is_last)
        parts[seg.number] = enc.update(data[seg.pt_start : seg.pt_start + seg.pt_len]) + enc.finalize()
    ct = b"".join(parts[n] for n in sorted(parts))
    assert isec.decrypt(key, ct) == data
    assert ct[: len(parts[1])] == parts[1]
    with expect_error("invalid_parameter"):
        isec.Encryptor.for_part(key, 3, False)  # the declared size says part 3 is last
    with expect_error("invalid_parameter"):
        isec.Encryptor.for_part(key, 0, False)
    with expect_error("invalid_parameter"):
        isec.Encryptor(key)  # a parts-layout key encrypts parts


def test_table_layout_round_trip(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope(frame_size=4096, table=True)
    sizes = [(1, 5000), (2, 123), (7, 9000)]
    data = pattern(sum(s for _, s in sizes))
    bodies, entries, at = [], [], 0
    for n, s in sizes:
        if n == 2:
            # Streaming: the encryptor's prefix, readable after finalize.
            enc = isec.Encryptor.for_part(key, n, False)
            body = enc.update(data[at : at + s]) + enc.finalize()
            assert enc.locked and enc.prefix == body[:7] and len(enc.prefix) == 7
        else:
            # One-shot: the prefix is the part's first 7 bytes.
            body = isec.encrypt_part(key, n, False, data[at : at + s])
        bodies.append(body)
        entries.append((n, s, body[:7]))
        at += s
    table = isec.SegmentTable(entries)
    assert len(table) == 3 and table.plaintext_len == len(data) and table.entries == entries
    assert repr(table).startswith("SegmentTable([(1, 5000, b'\\x")
    encoded = table.encode(key)
    assert isec.SegmentTable.decode(encoded, key) == table
    ct = b"".join(bodies)
    assert isec.decrypt_with_table(key, encoded, ct) == data
    shape = isec.Shape.from_table(key, encoded, len(ct))
    assert isec.decrypt_range(key, shape, 4999, 5124, lambda a, b: ct[a:b]) == data[4999:5124]
    dec = isec.Decryptor.with_table(key, encoded, len(ct))
    assert b"".join(dec.update(p) for p in splitter([333])(ct)) + dec.finalize() == data
    bad = bytearray(encoded)
    bad[-1] ^= 1
    with expect_error("authentication_failed"):
        isec.decrypt_with_table(key, bytes(bad), ct)
    with expect_error("truncated"):
        isec.decrypt_with_table(key, encoded, ct[:-1])
    with expect_error("malformed_segment_table"):
        isec.SegmentTable([(2, 10, bytes(7)), (1, 10, bytes(7))])
    with expect_error("malformed_segment_table"):
        isec.SegmentTable([])
    # Prefixes: 7 bytes of any bytes-like type; anything else is invalid_parameter.
    assert isec.SegmentTable([(1, 5, bytearray(7))]) == isec.SegmentTable([(1, 5, memoryview(bytes(7)))])
    for bad_prefix in (bytes(6), bytes(8), b"", "abcdefg", 7, None):
        with expect_error("invalid_parameter"):
            isec.SegmentTable([(1, 5, bad_prefix)])  # type: ignore[list-item]
    with expect_error("invalid_parameter"):
        isec.SegmentTable([(1, 5)])  # type: ignore[list-item]


def test_table_refuses_a_part_encrypted_under_another_prefix(ring: isec.Keyring) -> None:
    """A table records the prefix of the upload the writer completed; an earlier, authentic
    encryption of the same part (a retried upload S3 kept by mistake, or a substitution) is
    refused, whole and by range."""
    _, key = ring.create_envelope(frame_size=4096, table=True)
    data = pattern(10_000)
    first = isec.encrypt_part(key, 1, False, data[:6000])
    kept = isec.encrypt_part(key, 2, False, data[6000:])
    retried = isec.encrypt_part(key, 2, False, data[6000:])
    assert retried[:7] != kept[:7] and len(retried) == len(kept)
    table = isec.SegmentTable([(1, 6000, first[:7]), (2, 4000, kept[:7])]).encode(key)
    assert isec.decrypt_with_table(key, table, first + kept) == data
    with expect_error("frame_out_of_order"):
        isec.decrypt_with_table(key, table, first + retried)
    shape = isec.Shape.from_table(key, table, len(first + retried))
    with expect_error("frame_out_of_order"):
        isec.decrypt_range(key, shape, 7000, 7100, lambda a, b: (first + retried)[a:b])
    with expect_error("invalid_parameter"):
        isec.Decryptor(key)  # a table-layout object needs its table


# --- ranges ----------------------------------------------------------------------------------


def test_range_plan_and_ranged_decryptor(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope(frame_size=4096)
    data = pattern(100_000)
    ct = isec.encrypt(key, data)
    shape = isec.shape_for(env, len(ct))
    assert (shape.plaintext_len, shape.ciphertext_len, shape.frame_size) == (100_000, len(ct), 4096)
    assert shape.frame_count == 25 and shape.segment_count == 1
    plan = shape.map_range(5000, 9000)
    assert plan.http_range == f"bytes={plan.ct_start}-{plan.ct_end - 1}"
    assert not plan.is_empty() and plan.len == 4000 and plan.pt_start == 5000
    dec = isec.Decryptor.for_range(key, shape, plan)
    assert dec.update(ct[plan.ct_start : plan.ct_end]) + dec.finalize() == data[5000:9000]
    empty = shape.map_range(200_000, 300_000)
    assert empty.is_empty() and empty.http_range is None
    assert shape.ct_boundary_floor(5000) == 4096 + isec.FRAME_OVERHEAD
    # A tampered byte inside a fetched frame that is not returned is still caught.
    fetched = bytearray(ct[plan.ct_start : plan.ct_end])
    fetched[20] ^= 1
    with expect_error("authentication_failed"):
        isec.Decryptor.for_range(key, shape, plan).update(bytes(fetched))


def test_decrypt_range_fetch_errors(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope(frame_size=4096)
    ct = isec.encrypt(key, pattern(30_000))
    shape = isec.shape_for(env, len(ct))

    class Offline(Exception):
        pass

    def broken(a: int, b: int) -> bytes:
        raise Offline("s3 down")

    with pytest.raises(Offline):
        isec.decrypt_range(key, shape, 0, 10, broken)
    with expect_error("truncated"):
        isec.decrypt_range(key, shape, 0, 10, lambda a, b: ct[a : b - 1])
    with pytest.raises(TypeError):
        isec.decrypt_range(key, shape, 0, 10, lambda a, b: "text")  # type: ignore[arg-type,return-value]
    assert isec.decrypt_range(key, shape, 10, 10, broken) == b""  # nothing to fetch


# --- file helpers ----------------------------------------------------------------------------


def test_file_helpers_paths_and_file_objects(ring: isec.Keyring, tmp_path: Path) -> None:
    _, key = ring.create_envelope(frame_size=4096)
    data = pattern(300_001)
    src = tmp_path / "plain.bin"
    src.write_bytes(data)
    n = isec.encrypt_file(src, tmp_path / "ct.bin", key, chunk_size=10_000)
    assert n == (tmp_path / "ct.bin").stat().st_size
    m = isec.decrypt_file(str(tmp_path / "ct.bin"), tmp_path / "out.bin", key, chunk_size=7)
    assert m == len(data) and (tmp_path / "out.bin").read_bytes() == data
    # File objects, including one without readinto.
    sink = io.BytesIO()
    isec.encrypt_file(io.BytesIO(data), sink, key)

    class ReadOnly:
        def __init__(self, b: bytes) -> None:
            self.f = io.BytesIO(b)

        def read(self, n: int) -> bytes:
            return self.f.read(n)

    out = io.BytesIO()
    isec.decrypt_file(ReadOnly(sink.getvalue()), out, key)  # type: ignore[arg-type]
    assert out.getvalue() == data
    # Chunk iterators.
    chunks = list(isec.encrypt_chunks(key, splitter([999])(data)))
    assert b"".join(isec.decrypt_chunks(key, chunks)) == data
    # A ready context instead of a key (a part, a range).
    env2, key2 = ring.create_envelope(frame_size=4096, part_size=8192)
    part = b"".join(isec.encrypt_chunks(isec.Encryptor.for_part(key2, 1, True), [b"abc"]))
    assert b"".join(isec.decrypt_chunks(isec.Decryptor(key2), [part])) == b"abc"
    with pytest.raises(TypeError):
        isec.encrypt_file(src, tmp_path / "x", "key")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        isec.encrypt_file(12, tmp_path / "x", key)  # type: ignore[arg-type]


def test_decrypt_file_removes_partial_output(ring: isec.Keyring, tmp_path: Path) -> None:
    _, key = ring.create_envelope(frame_size=4096)
    ct = bytearray(isec.encrypt(key, pattern(100_000)))
    ct[-100] ^= 1
    (tmp_path / "bad.bin").write_bytes(ct)
    with expect_error("authentication_failed"):
        isec.decrypt_file(tmp_path / "bad.bin", tmp_path / "out.bin", key, chunk_size=4096)
    assert not (tmp_path / "out.bin").exists()
    with expect_error("truncated"):
        isec.decrypt_file(io.BytesIO(ct[: 3 * (4096 + isec.FRAME_OVERHEAD)]), io.BytesIO(), key)


# --- decisions -------------------------------------------------------------------------------


def test_classify_and_sidecar_keys(ring: isec.Keyring) -> None:
    env, _ = ring.create_envelope()
    f = isec.classify({"x-amz-meta-isec": env.to_text(), "x-amz-meta-isec-kid": env.kid})
    assert (f.format, f.kid, f.envelope) == ("isec", "kek-a", env)
    assert isec.classify({}).format == "plaintext"
    assert isec.classify([], legacy_sidecar=True).legacy_kind == "sidecar_only"
    bad = isec.classify({"isec": "!!!"})
    assert (bad.format, bad.error) == ("unreadable", "malformed_envelope")
    assert isec.legacy_sidecar_key("a/b") == ".s3proxy-internal/a/b.meta"
    assert isec.table_sidecar_key("a/b") == "a/b" + ".isec-table"
    assert (isec.META_ENVELOPE, isec.META_KID, isec.META_TABLE) == ("isec", "isec-kid", "isec-table")


def test_copy_decision_defaults_and_arguments(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope()
    ct = isec.encrypt(key, b"x" * 100)
    meta = {"isec": env.to_text(), "isec-kid": env.kid, "owner": "alice"}
    limits = isec.CopyLimits()
    assert (limits.single_copy_max, limits.part_min, limits.max_parts) == (5 << 30, 5 << 20, 10_000)
    assert isec.CopyLimits(part_min=1) != limits
    plan = isec.decide_copy(meta, len(ct))
    assert (plan.action, plan.metadata, plan.requests, plan.client_bytes) == ("native", None, 1, 0)
    plan = isec.decide_copy(meta, len(ct), directive="replace", new_metadata={"owner": "bob"})
    assert plan.action == "native_replace" and plan.metadata is not None
    assert ("owner", "bob") in plan.metadata and ("isec", env.to_text()) in plan.metadata
    plan = isec.decide_copy(meta, len(ct), keyring=ring, rotate_dek=True)
    assert (plan.action, plan.reason) == ("reencrypt", "dek_rotation")
    with expect_error("invalid_parameter"):
        isec.decide_copy(meta, len(ct), directive="MOVE")
    with expect_error("unknown_kid"):
        isec.decide_copy(meta, len(ct), target_kid="other")  # a key change needs a keyring


def test_object_and_user_metadata(ring: isec.Keyring) -> None:
    env, _ = ring.create_envelope()
    other, _ = ring.create_envelope()
    user = {"X-Amz-Meta-Owner": "ana", "isec": other.to_text(), "ISEC-KID": "old", "s3proxy-format": "x", "n": "1"}
    meta = isec.object_metadata(user, env)
    # Keys normalised, stale format values dropped, the envelope's own keys last.
    assert list(meta.items()) == [("owner", "ana"), ("n", "1"), ("isec", env.to_text()), ("isec-kid", "kek-a")]
    assert isec.classify(meta).envelope == env
    assert isec.object_metadata([("a", "b")], env) == {"a": "b", "isec": env.to_text(), "isec-kid": "kek-a"}

    stored = {
        **meta,
        "isec-table": "AQID",
        "client-etag": "e",
        "plaintext-size": "3",
        "s3proxy-generation": "g",
        "x-amz-meta-Colour": "blue",
    }
    assert isec.user_metadata(stored) == {"owner": "ana", "n": "1", "colour": "blue"}
    assert isec.user_metadata([]) == {}
    with pytest.raises(TypeError):
        isec.user_metadata({"a": 1})  # type: ignore[dict-item]


def test_table_source_inline_sidecar_and_malformed(ring: isec.Keyring) -> None:
    _, key = ring.create_envelope(table=True)
    table = isec.SegmentTable([(1, 5, bytes(7)), (3, 7, bytes(7))]).encode(key)
    inline = base64.urlsafe_b64encode(table).rstrip(b"=").decode()
    got = isec.table_source({"isec": "e", "isec-table": inline})
    assert got == table and isec.SegmentTable.decode(got, key).plaintext_len == 12
    assert isec.table_source({"X-Amz-Meta-Isec-Table": inline}) == table
    assert isec.table_source({"isec": "e"}) is None, "no inline table: it is in the sidecar"
    with expect_error("malformed_segment_table"):
        isec.table_source({"isec-table": "AQ+D"})  # standard base64, not base64url
    with expect_error("malformed_segment_table"):
        isec.table_source({"isec-table": "A" * 200_000})  # longer than any table


def test_fit_part_size() -> None:
    frame = isec.DEFAULT_FRAME_SIZE
    assert isec.fit_part_size(100 << 20, 5_000_000) == 77 * frame  # rounded up to whole frames
    assert isec.fit_part_size(100 << 20, 8 << 20) == 8 << 20  # already fits: unchanged
    assert isec.fit_part_size(10, 8 << 20) == 8 << 20  # one part
    big = 1 << 40
    part = isec.fit_part_size(big, 8 << 20)
    assert part % frame == 0 and -(-big // part) <= isec.MAX_PARTS < -(-big // (part - frame)), "smallest fit"
    assert isec.fit_part_size(big, 8 << 20, frame_size=4096) % 4096 == 0
    assert isec.fit_part_size(10_000 * 4096 + 1, 4096, frame_size=4096) == 8192
    with expect_error("invalid_parameter"):
        isec.fit_part_size(10, 0)
    with expect_error("limit_exceeded"):
        isec.fit_part_size(1 << 45, 8 << 20)  # above the format's maximum object
    with expect_error("limit_exceeded"):
        isec.fit_part_size(1, 6 << 30)  # above S3's 5 GiB part
    with expect_error("invalid_frame_size"):
        isec.fit_part_size(10, 4096, frame_size=3000)
    r = isec.Keyring()
    r.add_kek("k", bytes(32))
    env, key = r.create_envelope(part_size=isec.fit_part_size(3 << 20, 1 << 20), declared_size=3 << 20)
    assert env.part_size == 1 << 20 and key.layout == "parts"
    # The same fit in one call; the layout options exclude each other.
    env, key = r.create_envelope(fit_parts=(100 << 20, 5_000_000), declared_size=100 << 20)
    assert env.part_size == 77 * frame and key.layout == "parts"
    with expect_error("invalid_parameter"):
        r.create_envelope(fit_parts=(10, 4096), table=True)
    with expect_error("invalid_parameter"):
        r.create_envelope(fit_parts=(10, 4096), part_size=1 << 20)
    with expect_error("invalid_parameter"):
        r.create_envelope(part_size=1 << 20, table=True)


def test_copy_plan_names_its_sidecar(ring: isec.Keyring) -> None:
    env, _ = ring.create_envelope(table=True)
    meta = {"isec": env.to_text(), "isec-kid": env.kid}
    plan = isec.decide_copy(meta, 0, source_sidecar=True)
    assert (plan.action, plan.copy_sidecar, plan.sidecar) == ("native", True, "table")
    assert plan.sidecar_key("a/b") == "a/b.isec-table" == isec.table_sidecar_key("a/b")
    assert 'sidecar="table"' in repr(plan)
    inline = isec.decide_copy({**meta, "isec-table": "AQID"}, 0)
    assert (inline.copy_sidecar, inline.sidecar, inline.sidecar_key("a/b")) == (False, None, None)
    legacy = {"isec": "n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvWoA==", "isec-kid": "AKIA"}
    plan = isec.decide_copy(legacy, 28, source_sidecar=True)
    assert (plan.sidecar, plan.sidecar_key("a/b")) == ("legacy", isec.legacy_sidecar_key("a/b"))
    plain = isec.decide_copy({"owner": "x"}, 5)
    assert (plain.sidecar, plain.sidecar_key("a")) == (None, None)


def test_reencrypt_plans_carry_user_metadata_only(ring: isec.Keyring) -> None:
    env, _ = ring.create_envelope()
    meta = {"isec": env.to_text(), "isec-kid": env.kid, "X-Amz-Meta-Owner": "ana"}
    plan = isec.decide_copy(meta, 100, keyring=ring, rotate_dek=True)
    assert plan.action == "reencrypt" and plan.metadata == [("owner", "ana")]
    plan = isec.decide_copy(
        meta, 100, keyring=ring, rotate_dek=True, directive="REPLACE", new_metadata={"team": "b", "isec": "forged"}
    )
    assert plan.metadata == [("team", "b")]
    plain = isec.decide_copy({"origin": "app"}, 10, keyring=ring, require_encryption=True)
    assert (plain.reason, plain.metadata) == ("encrypt_plaintext", [("origin", "app")])


def test_copy_limits_no_s3_accepts_are_refused(ring: isec.Keyring) -> None:
    env, _ = ring.create_envelope()
    meta = {"isec": env.to_text(), "isec-kid": env.kid}
    for limits in (
        isec.CopyLimits(max_parts=4_000_000_000, part_min=1, part_max=1),
        isec.CopyLimits(max_parts=0),
        isec.CopyLimits(part_min=0, part_max=0),
        isec.CopyLimits(part_min=10, part_max=5),
    ):
        with expect_error("invalid_parameter"):
            isec.decide_copy(meta, 1 << 40, limits=limits)


def test_isec_error_builds_the_core_mapping() -> None:
    e = isec.isec_error("not_encrypted", "s3://b/k")
    assert type(e) is isec.FormatError and isinstance(e, isec.IsecError)
    assert (e.code, e.family) == ("not_encrypted", "format")
    assert str(e) == "s3://b/k: object is not encrypted (not_encrypted)"
    for code, family in isec.error_codes().items():
        err = isec.isec_error(code)
        assert (err.code, err.family) == (code, family)
    with expect_error("invalid_parameter"):
        isec.isec_error("no_such_code")


def test_scan_planner(ring: isec.Keyring) -> None:
    env_a, _ = ring.create_envelope()
    ring.add_kek("kek-b", isec.generate_kek())
    env_b, _ = ring.create_envelope()
    planner = isec.ScanPlanner(ring)
    assert planner.add("a", {"isec": env_a.to_text()}, 100) == "needs_rewrap"
    assert planner.add("b", {"isec": env_b.to_text()}, 50) == "current"
    assert planner.add("c", {}, 7) == "plaintext"
    assert planner.add("d", {"isec": "garbage"}, 1) == "unreadable"
    assert planner.add("e.isec-table", {}, 1) == "sidecar"
    legacy_meta = {"isec": "n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvWoA==", "isec-kid": "AKIA"}
    assert planner.add("f", legacy_meta, 28) == "needs_reencrypt"
    assert planner.tally("needs_rewrap") == planner.tally("needs_rewrap")
    assert (planner.tally("needs_rewrap").objects, planner.tally("needs_rewrap").bytes) == (1, 100)
    rem = planner.remaining()
    assert (rem.objects, rem.bytes) == (2, 128)
    assert ("kek-a", "needs_rewrap", 1, 100) in planner.by_kid()
    assert isec.ScanPlanner.classes()[0] == "current"
    with expect_error("invalid_parameter"):
        planner.tally("bogus")


# --- re-encryption ---------------------------------------------------------------------------


def run_job(job: isec.Reencryption, ct: bytes, piece: int, now: int = 0, stop_at: int | None = None) -> bytes:
    out = bytearray()
    while job.source_offset < len(ct) and (stop_at is None or job.source_offset < stop_at):
        at = job.source_offset
        step = job.update(ct[at : at + piece], now)
        assert step.output is not None and len(step.output) == step.written
        out += step.output
        now += max(step.wait_ms, 1)
    if stop_at is None:
        out += job.finish()
    return bytes(out)


def test_dek_rotation_job_checkpoint_resume(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope(frame_size=4096)
    data = pattern(200_000)
    ct = isec.encrypt(key, data)
    ring.add_kek("kek-new", isec.generate_kek())
    source = isec.IsecSource(ring, env, isec.shape_for(env, len(ct)))
    assert (source.plaintext_len, source.ciphertext_len) == (len(data), len(ct))

    job = isec.Reencryption.start(ring, source, frame_size=8192, part_size=3 * 8192)
    part_ct = 3 * (8192 + isec.FRAME_OVERHEAD)
    assert job.target_part_len == part_ct and job.progress.parts_total == 9  # 200 000 / 24 576
    head = run_job(job, ct, 30_001, stop_at=len(ct) // 2)
    cp = job.checkpoint()
    info = isec.Checkpoint.parse(cp)
    assert info.source_ciphertext_len == len(ct) and info.envelope == job.target_envelope
    # A checkpoint covers whole parts: its target offset is a part boundary.
    assert info.parts_done >= 1 and job.progress.parts_done == info.parts_done
    assert info.target_offset <= len(head) and info.target_offset == info.parts_done * part_ct
    rest = run_job(job, ct, 50_000)
    full = head + rest
    new_env = job.target_envelope
    assert new_env.kid == "kek-new" and new_env.declared_size == len(data)
    assert new_env.layout == "parts" and new_env.part_size == 3 * 8192
    assert job.progress.finished and job.progress.bytes_left == 0 and job.progress.parts_done == 9
    assert isec.decrypt(ring.open(new_env), full) == data
    # Part n of the output (target_part_len bytes each) is part n of the object.
    segment = isec.Shape.from_ciphertext_len(ring.open(new_env), len(full)).segment(1)
    assert segment is not None and (segment.number, segment.ct_start) == (2, part_ct)

    # Resume from the checkpoint: the unfinished part is encrypted again under a fresh
    # nonce prefix, so the output differs from the first run's past the target offset, and
    # the kept head with the resumed tail decrypts to the same plaintext.
    job2 = isec.Reencryption.resume(ring, source, cp)
    assert job2.target_offset == info.target_offset and job2.progress.parts_done == info.parts_done
    tail = run_job(job2, ct, 77_777)
    assert len(tail) == len(full) - info.target_offset
    assert tail[:7] != full[info.target_offset : info.target_offset + 7], "a fresh prefix"
    resumed = full[: info.target_offset] + tail
    assert isec.decrypt(ring.open(job2.target_envelope), resumed) == data
    assert job2.target_envelope == new_env

    # A checkpoint is authenticated and tied to its source.
    bad = bytearray(cp)
    bad[-1] ^= 1
    with expect_error("authentication_failed"):
        isec.Reencryption.resume(ring, source, bytes(bad))
    with expect_error("malformed_checkpoint"):
        isec.Reencryption.resume(ring, source, b"ISCK")
    other_ct = isec.encrypt(key, data[:-1])
    other = isec.IsecSource(ring, env, isec.shape_for(env, len(other_ct)))
    with expect_error("malformed_checkpoint"):
        isec.Reencryption.resume(ring, other, cp)


def test_job_pause_rate_limit_and_locking(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope(frame_size=4096)
    data = pattern(100_000)
    ct = isec.encrypt(key, data)
    source = isec.IsecSource(ring, env, isec.shape_for(env, len(ct)))
    job = isec.Reencryption.start(ring, source, rate=10_000)
    job.pause()
    step = job.update(ct, 0)
    assert (step.consumed, step.written) == (0, 0) and job.progress.paused
    job.unpause()
    first = job.update(ct, 0)
    assert 0 < first.consumed < len(ct)  # the bucket starts nearly empty
    throttled = job.update(ct[first.consumed :], 0)
    assert throttled.consumed == 0 and throttled.wait_ms > 0
    later = job.update(ct[first.consumed :], 1000)
    assert later.consumed > 0
    job.set_rate(0)
    p = job.progress
    assert p.bytes_done + p.bytes_left == len(data) and 0 <= p.parts_done <= p.parts_total == 1
    # update_into, then a tampered byte: the job fails and locks, the checkpoint survives.
    out = bytearray(job.update_len(len(ct)))
    at = job.source_offset
    bad = bytearray(ct[at:])
    bad[-5] ^= 1
    with expect_error("authentication_failed"):
        job.update_into(bytes(bad), out, 2000)
    assert not any(out)
    with expect_error("invalid_state"):
        job.update(ct[job.source_offset :], 3000)
    with expect_error("invalid_state"):
        job.finish()
    assert isec.Checkpoint.parse(job.checkpoint()).parts_done == 0


def test_sources_check_their_keys(ring: isec.Keyring) -> None:
    env, key = ring.create_envelope()
    ct = isec.encrypt(key, b"x")
    shape = isec.shape_for(env, len(ct))
    other = isec.Keyring()
    other.add_kek("kek-b", isec.generate_kek())
    with expect_error("unknown_kid"):
        isec.IsecSource(other, env, shape)
    source = isec.IsecSource(ring, env, shape)
    with expect_error("key_not_active"):
        isec.Reencryption.start(isec.Keyring(), source)
    with pytest.raises(TypeError):
        isec.Reencryption.start(ring, "source")  # type: ignore[arg-type]


def test_package_docstring_example() -> None:
    import doctest

    result = doctest.testmod(isec, verbose=False)
    assert result.attempted >= 5 and result.failed == 0
