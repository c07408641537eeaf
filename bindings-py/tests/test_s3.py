"""isec.s3 against a real S3 server (Garage on 127.0.0.1, scripts/garage.sh): round trips,
ranges, every copy branch, rewrap, tampering, and the proof that the native copies move no
object bytes through the client (the server's request counters and a byte count of the
client's own connection)."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import isec
import isec.s3

from .conftest import expect_error, pattern, s3_client_for

MIB = 1 << 20
PART = 5 * MIB  # S3's smallest part but the last
FRAME = isec.DEFAULT_FRAME_SIZE
CT_FRAME = FRAME + isec.FRAME_OVERHEAD


@pytest.fixture
def ring() -> isec.Keyring:
    r = isec.Keyring()
    r.add_kek("kek-1", isec.generate_kek())
    return r


@pytest.fixture
def client(s3_raw: Any, ring: isec.Keyring) -> isec.s3.Client:
    return isec.s3.Client(s3_raw, ring, part_size=PART, max_workers=3)


@pytest.fixture
def name(s3_raw: Any, s3_bucket: str) -> Iterator[Callable[[str], str]]:
    """Unique object keys per test, so runs and suites never collide; deleted afterwards
    (sidecars included), so a long-running server does not fill up."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    yield lambda suffix: f"{prefix}/{suffix}"
    listed = s3_raw.list_objects_v2(Bucket=s3_bucket, Prefix=prefix).get("Contents", [])
    if listed:
        s3_raw.delete_objects(Bucket=s3_bucket, Delete={"Objects": [{"Key": o["Key"]} for o in listed]})


def raw_get(s3: Any, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    r = s3.get_object(Bucket=bucket, Key=key)
    return r["Body"].read(), r


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


# --- put and get ---------------------------------------------------------------------------------


def test_single_put_get_round_trip(client: isec.s3.Client, s3_raw: Any, s3_bucket: str, name: Any) -> None:
    key = name("single")
    data = pattern(300_001)
    put = client.put_object(s3_bucket, key, data, metadata={"Owner": "ops"}, content_type="text/csv")
    assert put.parts == 0 and put.plaintext_len == len(data)
    assert put.envelope.layout == "single" and put.envelope.declared_size == len(data)

    stored, r = raw_get(s3_raw, s3_bucket, key)
    assert len(stored) == put.ciphertext_len == len(data) + isec.FRAME_OVERHEAD * -(-len(data) // FRAME)
    assert data[:4096] not in stored
    assert r["Metadata"] == {"owner": "ops", "isec": put.envelope.to_text(), "isec-kid": "kek-1"}
    assert r["ContentType"] == "text/csv"

    assert client.get_object(s3_bucket, key) == data
    info = client.head_object(s3_bucket, key)
    assert (info.format, info.kid, info.plaintext_len, info.ciphertext_len) == ("isec", "kek-1", len(data), len(stored))
    assert info.details["frames"] == -(-len(data) // FRAME) and info.content_type == "text/csv"

    empty = name("empty")
    assert client.put_object(s3_bucket, empty, b"").ciphertext_len == isec.FRAME_OVERHEAD
    assert client.get_object(s3_bucket, empty) == b""


def test_multipart_put_get_round_trip(client: isec.s3.Client, s3_raw: Any, s3_bucket: str, name: Any) -> None:
    key = name("multi")
    data = random_bytes(2 * PART + 123_457)
    put = client.put_object(s3_bucket, key, bytearray(data), metadata={"a": "1"})
    assert put.parts == 3 and put.plaintext_len == len(data)
    env = put.envelope
    assert (env.layout, env.part_size, env.declared_size) == ("parts", PART, len(data))
    head = s3_raw.head_object(Bucket=s3_bucket, Key=key)
    assert head["ETag"].endswith('-3"'), "a real three-part upload"
    assert head["ContentLength"] == put.ciphertext_len
    assert client.get_object(s3_bucket, key) == data
    assert b"".join(client.iter_object(s3_bucket, key, chunk_size=777_777)) == data


def test_put_from_path_file_and_unknown_length_stream(
    client: isec.s3.Client, s3_bucket: str, name: Any, tmp_path: Path
) -> None:
    data = random_bytes(PART + 4321)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    by_path = client.put_object(s3_bucket, name("path"), path)
    assert by_path.parts == 2 and by_path.envelope.declared_size == len(data)
    with open(path, "rb") as f:
        f.seek(1000)
        by_file = client.put_object(s3_bucket, name("file"), f)
    assert by_file.envelope.declared_size == len(data) - 1000

    class Pipe:
        """A stream of unknown length that returns short reads, like a socket."""

        def __init__(self, b: bytes) -> None:
            self.b, self.at = b, 0

        def read(self, n: int = -1) -> bytes:
            n = min(n if n >= 0 else len(self.b), 100_000)
            out = self.b[self.at : self.at + n]
            self.at += len(out)
            return out

    streamed = client.put_object(s3_bucket, name("pipe"), Pipe(data))
    assert streamed.parts == 2 and streamed.envelope.declared_size is None
    small = client.put_object(s3_bucket, name("pipe-small"), Pipe(data[:1000]))
    assert small.parts == 0 and small.envelope.declared_size == 1000
    exact = client.put_object(s3_bucket, name("pipe-exact"), Pipe(data[:PART]))
    assert exact.parts == 0 and exact.plaintext_len == PART

    assert client.get_object(s3_bucket, name("path")) == data
    assert client.get_object(s3_bucket, name("file")) == data[1000:]
    assert client.get_object(s3_bucket, name("pipe")) == data
    assert client.get_object(s3_bucket, name("pipe-small")) == data[:1000]
    assert client.get_object(s3_bucket, name("pipe-exact")) == data[:PART]
    out = tmp_path / "out.bin"
    assert client.download_file(s3_bucket, name("pipe"), out) == len(data)
    assert out.read_bytes() == data


class Recorder:
    """An S3 client that records calls, can fail chosen ones, and measures how many
    UploadPart calls ran at once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: Callable[[str, dict[str, Any]], bool] = lambda op, kw: False
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.hook: Callable[[str, dict[str, Any]], None] = lambda op, kw: None
        self.error: Callable[[str], Exception] = lambda op: ConnectionError(f"injected failure of {op}")

    def __getattr__(self, op: str) -> Any:
        real = getattr(self.inner, op)

        def call(**kw: Any) -> Any:
            with self.lock:
                # A snapshot of a bytearray body: the helper reuses its part buffers.
                body = kw.get("Body")
                self.calls.append((op, {**kw, "Body": bytes(body)} if isinstance(body, bytearray) else kw))
                failing = self.fail(op, kw)
                if op == "upload_part":
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
            try:
                self.hook(op, kw)
                if op == "upload_part":
                    time.sleep(0.05)  # long enough for the pool's other workers to start
                if failing:
                    raise self.error(op)
                return real(**kw)
            finally:
                if op == "upload_part":
                    with self.lock:
                        self.active -= 1

        return call

    def ops(self, op: str) -> list[dict[str, Any]]:
        return [kw for o, kw in self.calls if o == op]


def test_parts_upload_in_parallel(s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any) -> None:
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring, part_size=PART, max_workers=3)
    data = random_bytes(4 * PART + 1)
    assert c.put_object(s3_bucket, name("par"), data).parts == 5
    assert rec.max_active >= 2, "parts were uploaded one at a time"
    assert sorted(kw["PartNumber"] for kw in rec.ops("upload_part")) == [1, 2, 3, 4, 5]
    assert c.get_object(s3_bucket, name("par")) == data


def test_retried_part_resends_the_same_ciphertext(s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any) -> None:
    rec = Recorder(s3_raw)
    failed: list[int] = []

    def once(op: str, kw: dict[str, Any]) -> bool:
        if op == "upload_part" and kw["PartNumber"] == 2 and not failed:
            failed.append(2)
            return True
        return False

    rec.fail = once
    c = isec.s3.Client(rec, ring, part_size=PART, max_workers=2, part_retries=1)
    data = random_bytes(2 * PART + 10)
    assert c.put_object(s3_bucket, name("retry"), data).parts == 3
    tries = [kw["Body"] for kw in rec.ops("upload_part") if kw["PartNumber"] == 2]
    # Encrypted once: the retry is the same plaintext under the same nonces, byte for byte,
    # so no nonce ever covered two plaintexts whichever attempt S3 kept.
    assert len(tries) == 2 and tries[0] == tries[1]
    stored, _ = raw_get(s3_raw, s3_bucket, name("retry"))
    assert stored[PART + PART // FRAME * isec.FRAME_OVERHEAD :][: len(tries[1])] == tries[1]
    assert c.get_object(s3_bucket, name("retry")) == data


@pytest.mark.parametrize("workers", [1, 3])
def test_reused_part_buffers_carry_fresh_nonces_and_no_stale_bytes(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any, workers: int
) -> None:
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring, part_size=PART, max_workers=workers)
    # Seven parts through at most workers + 1 buffers; the last part is one frame and a byte.
    data = random_bytes(6 * PART + FRAME + 1)
    assert c.put_object(s3_bucket, name(f"reuse{workers}"), io.BytesIO(data)).parts == 7
    bodies = {kw["PartNumber"]: kw["Body"] for kw in rec.ops("upload_part")}
    assert sorted(bodies) == list(range(1, 8))
    # Every frame of every part under its own nonce (prefixes differ between parts).
    nonces = [b[i : i + 12] for b in bodies.values() for i in range(0, len(b), CT_FRAME)]
    assert len(set(nonces)) == len(nonces)
    assert len({b[:7] for b in bodies.values()}) == 7
    assert len(bodies[7]) == FRAME + 1 + 2 * isec.FRAME_OVERHEAD
    assert c.get_object(s3_bucket, name(f"reuse{workers}")) == data


def test_failed_upload_is_aborted(s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any) -> None:
    rec = Recorder(s3_raw)
    rec.fail = lambda op, kw: op == "upload_part" and kw["PartNumber"] == 2
    c = isec.s3.Client(rec, ring, part_size=PART, max_workers=2, part_retries=1)
    key = name("aborted")
    with pytest.raises(ConnectionError):
        c.put_object(s3_bucket, key, random_bytes(3 * PART))
    assert len(rec.ops("abort_multipart_upload")) == 1 and not rec.ops("complete_multipart_upload")
    uploads = s3_raw.list_multipart_uploads(Bucket=s3_bucket, Prefix=key).get("Uploads", [])
    assert uploads == []
    with pytest.raises(s3_raw.exceptions.NoSuchKey):
        s3_raw.get_object(Bucket=s3_bucket, Key=key)
    assert len([kw for kw in rec.ops("upload_part") if kw["PartNumber"] == 2]) == 2, "one retry"

    # A refusal (4xx) is not retried: it would only be refused again.
    from botocore.exceptions import ClientError

    rec.calls.clear()
    rec.error = lambda op: ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, op
    )
    with pytest.raises(ClientError):
        c.put_object(s3_bucket, key, random_bytes(3 * PART))
    assert len([kw for kw in rec.ops("upload_part") if kw["PartNumber"] == 2]) == 1
    assert len(rec.ops("abort_multipart_upload")) == 1


# --- ranges --------------------------------------------------------------------------------------


def test_ranged_gets_fetch_only_the_frames_they_need(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring, part_size=PART)
    key = name("ranges")
    data = random_bytes(2 * PART + 99_999)
    c.put_object(s3_bucket, key, data)
    n = len(data)
    cases = [
        (0, 1),
        (n - 1, n),  # the last byte
        (PART - 10, PART + 10),  # across the part 1 / part 2 boundary
        (2 * PART - 1, 2 * PART + 1),  # into the last part
        (FRAME - 1, FRAME + 1),  # across a frame boundary
        (12_345, 3 * FRAME + 7),
        (0, n),
        (n - 5, n + 1000),  # clamped like a slice
        (500, 500),  # empty: nothing fetched
        (n + 10, n + 20),
    ]
    for a, b in cases:
        rec.calls.clear()
        assert c.get_range(s3_bucket, key, a, b) == data[a:b], (a, b)
        gets = rec.ops("get_object")
        if data[a:b]:
            (get,) = gets
            lo, hi = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", get["Range"]).groups())  # type: ignore[union-attr]
            frames_needed = (b - 1) // FRAME - a // FRAME + 1 + 1  # +1: a part boundary adds one
            assert hi - lo + 1 <= frames_needed * CT_FRAME, (a, b, get["Range"])
            assert get["IfMatch"].startswith('"')
        else:
            assert gets == []
    assert c.get_range(s3_bucket, key, n - 3) == data[-3:]
    with pytest.raises(ValueError):
        c.get_range(s3_bucket, key, -1, 5)


def test_ranged_get_is_pinned_to_the_object_it_planned_for(
    s3_raw: Any, client: isec.s3.Client, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    key = name("pinned")
    client.put_object(s3_bucket, key, pattern(200_000))
    rec = Recorder(s3_raw)

    def overwrite_after_head(op: str, kw: dict[str, Any]) -> None:
        if op == "get_object":
            s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=b"replaced")

    rec.hook = overwrite_after_head
    c = isec.s3.Client(rec, ring)
    with pytest.raises(s3_raw.exceptions.ClientError) as e:
        c.get_range(s3_bucket, key, 10, 20)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_range_reads_remember_the_object_and_follow_an_overwrite(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    key = name("remembered")
    first, second = random_bytes(3 * FRAME), random_bytes(2 * FRAME)
    writer = isec.s3.Client(s3_raw, ring)
    writer.put_object(s3_bucket, key, first)
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring)
    assert c.get_range(s3_bucket, key, 5, 70_000) == first[5:70_000]
    assert c.get_range(s3_bucket, key, FRAME, FRAME + 9) == first[FRAME : FRAME + 9]
    assert [op for op, _ in rec.calls] == ["head_object", "get_object", "get_object"]
    assert all(kw["IfMatch"] for kw in rec.ops("get_object"))
    # Replaced behind this client's back: the pinned GET answers 412, and the range is read
    # again from a fresh HEAD, never from the old envelope.
    writer.put_object(s3_bucket, key, second)
    rec.calls.clear()
    assert c.get_range(s3_bucket, key, 10, 20) == second[10:20]
    assert [op for op, _ in rec.calls] == ["get_object", "head_object", "get_object"]
    # Nothing remembered: a HEAD before every range.
    rec.calls.clear()
    nocache = isec.s3.Client(rec, ring, range_cache=0)
    for _ in range(2):
        assert nocache.get_range(s3_bucket, key, 0, 3) == second[:3]
    assert [op for op, _ in rec.calls] == ["head_object", "get_object"] * 2


@pytest.mark.parametrize("workers", [1, 3])
def test_whole_reads_go_part_by_part_pinned_to_the_first_response(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any, workers: int
) -> None:
    key = name(f"parts{workers}")
    data = random_bytes(3 * PART + 10)
    isec.s3.Client(s3_raw, ring, part_size=PART).put_object(s3_bucket, key, data)
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring, part_size=PART, max_workers=workers)
    assert c.get_object(s3_bucket, key) == data
    first, *rest = rec.ops("get_object")
    if workers == 1:
        # One connection: the whole object in one streamed GET.
        assert ("PartNumber" not in first, "Range" not in first, rest) == (True, True, [])
        assert b"".join(c.iter_object(s3_bucket, key, chunk_size=100_000)) == data
        return
    assert first["PartNumber"] == 1 and "Range" not in first and "IfMatch" not in first
    head = s3_raw.head_object(Bucket=s3_bucket, Key=key)
    etag, stored = head["ETag"], head["ContentLength"]
    ct_part = PART + PART // FRAME * isec.FRAME_OVERHEAD
    assert stored == 3 * ct_part + 10 + isec.FRAME_OVERHEAD
    # The object's own parts (its segments), each pinned to the first response's ETag.
    assert sorted((kw["Range"] for kw in rest), key=lambda r: int(r[6:].split("-")[0])) == [
        f"bytes={n * ct_part}-{min((n + 1) * ct_part, stored) - 1}" for n in (1, 2, 3)
    ]
    assert all(kw["IfMatch"] == etag for kw in rest)
    assert b"".join(c.iter_object(s3_bucket, key, chunk_size=100_000)) == data
    out = io.BytesIO()
    assert c.download_file(s3_bucket, key, out) == len(data) and out.getvalue() == data


def test_whole_read_fails_when_the_object_is_replaced_mid_read(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    key = name("replaced")
    writer = isec.s3.Client(s3_raw, ring, part_size=PART)
    writer.put_object(s3_bucket, key, random_bytes(2 * PART + 1))
    rec = Recorder(s3_raw)

    replaced: list[bool] = []

    def replace_before_the_second_part(op: str, kw: dict[str, Any]) -> None:
        with rec.lock:
            if op == "get_object" and "Range" in kw and not replaced:
                replaced.append(True)
                writer.put_object(s3_bucket, key, random_bytes(2 * PART + 1))

    rec.hook = replace_before_the_second_part
    c = isec.s3.Client(rec, ring, part_size=PART, max_workers=2)
    with pytest.raises(s3_raw.exceptions.ClientError) as e:
        c.get_object(s3_bucket, key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_whole_read_plan_is_cores() -> None:
    seg = 8 * MIB + 3584
    plan = isec.WholeRead(seg, f"bytes 0-{seg - 1}/{3 * seg + 38}", 8 * MIB)
    assert (plan.stored_len, plan.first_len, plan.step) == (3 * seg + 38, seg, seg)
    assert plan.ranges() == [(seg, 2 * seg), (2 * seg, 3 * seg), (3 * seg, 3 * seg + 38)]
    single = isec.WholeRead(20 * MIB, None, 8 * MIB)
    assert (single.first_len, single.ranges()) == (8 * MIB, [(8 * MIB, 16 * MIB), (16 * MIB, 20 * MIB)])
    assert isec.WholeRead(0, None, 8 * MIB).ranges() == []
    # One connection reads the whole first response (a plain GET) in pieces of a step.
    one = isec.WholeRead(3 * seg + 38, None, 8 * MIB, 1)
    assert (one.first_len, one.step, one.ranges()) == (3 * seg + 38, 8 * MIB, [])
    assert (isec.first_part_number(1), isec.first_part_number(4)) == (None, 1)
    for length, content_range, code in [
        (10, "bytes 2-11/12", "invalid_parameter"),
        (10, "bytes 0-9/*", "invalid_parameter"),
        (9, "bytes 0-9/12", "truncated"),
        (11, "bytes 0-9/12", "trailing_data"),
    ]:
        with expect_error(code):
            isec.WholeRead(length, content_range, 8 * MIB)
    assert (isec.FIRST_PART, isec.EMPTY_OBJECT_STATUS) == (1, 416)


@pytest.mark.parametrize("workers", [1, 3])
def test_an_object_with_no_stored_bytes_reads_as_empty(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any, workers: int
) -> None:
    """A zero-byte plaintext object, read by a client that accepts plaintext: S3 answers the
    first part with 416, Garage with a 206 naming `bytes 0-18446744073709551615/0`; both are
    an empty object."""
    key = name(f"zero{workers}")
    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=b"")
    c = isec.s3.Client(s3_raw, ring, max_workers=workers, allow_plaintext=True)
    assert c.get_object(s3_bucket, key) == b""
    assert b"".join(c.iter_object(s3_bucket, key)) == b""
    with pytest.raises(isec.IsecError) as e:
        isec.s3.Client(s3_raw, ring, max_workers=workers).get_object(s3_bucket, key)
    assert e.value.code == "not_encrypted"


@pytest.mark.parametrize(("change", "code"), [(-1, "truncated"), (1, "trailing_data")])
def test_a_range_answered_with_other_bytes_than_asked_is_refused(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any, change: int, code: str
) -> None:
    """A server whose ranged GET carries a byte less or more than the range: the whole read
    stops with the matching code, nothing is returned."""
    key = name(f"bad-range{change}")
    data = random_bytes(2 * PART + 1)
    isec.s3.Client(s3_raw, ring, part_size=PART).put_object(s3_bucket, key, data)

    class Lying:
        def __getattr__(self, op: str) -> Any:
            return getattr(s3_raw, op)

        def get_object(self, **kw: Any) -> Any:
            r = s3_raw.get_object(**kw)
            if "Range" in kw:
                body = r["Body"].read()
                r["Body"] = io.BytesIO(body[:-1] if change < 0 else body + b"x")
            return r

    c = isec.s3.Client(Lying(), ring, part_size=PART, max_workers=2)
    with expect_error(code):
        c.get_object(s3_bucket, key)


def test_large_single_put_is_read_in_part_size_pieces(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    key = name("single")
    data = random_bytes(MIB + 5)
    assert isec.s3.Client(s3_raw, ring, part_size=2 * MIB).put_object(s3_bucket, key, data).parts == 0
    stored = s3_raw.head_object(Bucket=s3_bucket, Key=key)["ContentLength"]
    rec = Recorder(s3_raw)
    step = 200_001  # not a frame multiple: pieces need not align with anything
    c = isec.s3.Client(rec, ring, part_size=step, max_workers=2)
    assert c.get_object(s3_bucket, key) == data
    first, *rest = rec.ops("get_object")
    assert first["PartNumber"] == 1
    assert sorted((kw["Range"] for kw in rest), key=lambda r: int(r[6:].split("-")[0])) == [
        f"bytes={a}-{min(a + step, stored) - 1}" for a in range(step, stored, step)
    ]
    assert b"".join(c.iter_object(s3_bucket, key)) == data


# --- errors --------------------------------------------------------------------------------------


def test_tampered_objects_raise_typed_errors(
    client: isec.s3.Client, s3_raw: Any, s3_bucket: str, name: Any
) -> None:
    key = name("tamper")
    data = random_bytes(3 * FRAME + 5)
    client.put_object(s3_bucket, key, data)
    stored, r = raw_get(s3_raw, s3_bucket, key)
    meta = r["Metadata"]

    flipped = bytearray(stored)
    flipped[CT_FRAME + 40] ^= 1  # inside frame 1
    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=bytes(flipped), Metadata=meta)
    with expect_error("authentication_failed"):
        client.get_object(s3_bucket, key)
    with expect_error("authentication_failed"):
        client.get_range(s3_bucket, key, FRAME + 1, FRAME + 2)
    with expect_error("authentication_failed"):
        b"".join(client.iter_object(s3_bucket, key))
    assert client.get_range(s3_bucket, key, 0, 10) == data[:10], "frame 0 is intact and verifies"

    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=stored[: 3 * CT_FRAME], Metadata=meta)  # the last frame dropped
    with pytest.raises(isec.IsecError) as e:
        client.get_object(s3_bucket, key)
    assert e.value.code == "truncated", e.value.code

    cut = {**meta, "isec": meta["isec"][:-4]}
    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=stored, Metadata=cut)
    code = isec.classify(cut).error
    assert code is not None
    with expect_error(code) as e:
        client.get_object(s3_bucket, key)
    assert f"s3://{s3_bucket}/{key}" in str(e.value)

    other = isec.Keyring()
    other.add_kek("kek-9", isec.generate_kek())
    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=stored, Metadata=meta)
    with expect_error("unknown_kid"):
        isec.s3.Client(s3_raw, other).get_object(s3_bucket, key)

    # S3's own errors stay the S3 client's.
    with pytest.raises(s3_raw.exceptions.NoSuchKey):
        client.get_object(s3_bucket, name("missing"))


def test_plaintext_objects_are_refused_unless_allowed(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    key = name("plain")
    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=b"not encrypted", Metadata={"owner": "x"})
    strict = isec.s3.Client(s3_raw, ring)
    # The core's code: a FormatError like any other isec error, naming the object.
    for read in (
        lambda: strict.get_object(s3_bucket, key),
        lambda: strict.get_range(s3_bucket, key, 0, 3),
        lambda: b"".join(strict.iter_object(s3_bucket, key)),
    ):
        with expect_error("not_encrypted") as e:
            read()
        assert isinstance(e.value, isec.IsecError) and e.value.family == "format"
        assert f"s3://{s3_bucket}/{key}" in str(e.value)
    assert strict.head_object(s3_bucket, key).format == "plaintext"
    lenient = isec.s3.Client(s3_raw, ring, allow_plaintext=True)
    assert lenient.get_object(s3_bucket, key) == b"not encrypted"
    assert lenient.get_range(s3_bucket, key, 4, 7) == b"enc"


def test_reserved_metadata_keys_are_refused(
    client: isec.s3.Client, s3_raw: Any, s3_bucket: str, name: Any
) -> None:
    # isec's keys and the previous proxy's: the core's user_metadata would drop them.
    for k in ("isec", "ISEC-KID", "x-amz-meta-isec-table", "client-etag", "Plaintext-Size", "s3proxy-format"):
        with pytest.raises(ValueError, match=k):
            client.put_object(s3_bucket, name("reserved"), b"x", metadata={k: "forged", "ok": "1"})
    with pytest.raises(s3_raw.exceptions.ClientError):
        s3_raw.head_object(Bucket=s3_bucket, Key=name("reserved"))
    # Keys are normalised by the core as S3 would store them.
    put = client.put_object(s3_bucket, name("normalised"), b"x", metadata={"X-Amz-Meta-Owner": "ana", "Team": "b"})
    stored = s3_raw.head_object(Bucket=s3_bucket, Key=name("normalised"))["Metadata"]
    assert stored == {"owner": "ana", "team": "b", "isec": put.envelope.to_text(), "isec-kid": "kek-1"}


# --- the proof: what moved -----------------------------------------------------------------------


ENDPOINTS = ("GetObject", "PutObject", "UploadPart", "CopyObject", "UploadPartCopy")


def counters(env: dict[str, str]) -> dict[str, float]:
    """Garage's per-endpoint request counters (Prometheus text, ISEC_S3_METRICS)."""
    with urllib.request.urlopen(env["ISEC_S3_METRICS"], timeout=5) as r:
        text = r.read().decode()
    out = dict.fromkeys(ENDPOINTS, 0.0)
    for m in re.finditer(r'^api_s3_request_counter\{api_endpoint="(\w+)"\} (\S+)$', text, re.M):
        if m.group(1) in out:
            out[m.group(1)] = float(m.group(2))
    return out


class CountingRelay:
    """A TCP relay on 127.0.0.1 in front of the S3 server that counts every byte of the
    client's connections, both ways (requests with headers, responses with bodies)."""

    def __init__(self, target: str) -> None:
        m = re.fullmatch(r"https?://([^:/]+):(\d+)/?", target)
        assert m, target
        self.target = (m.group(1), int(m.group(2)))
        self.up = self.down = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.endpoint = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.stopping = False
        self.threads = [threading.Thread(target=self.accept, daemon=True)]
        self.threads[0].start()

    def accept(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            for a, b, up in ((conn, upstream, True), (upstream, conn, False)):
                t = threading.Thread(target=self.pump, args=(a, b, up), daemon=True)
                t.start()
                self.threads.append(t)

    def pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while chunk := src.recv(1 << 16):
                with self.lock:
                    if up:
                        self.up += len(chunk)
                    else:
                        self.down += len(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def reset(self) -> None:
        with self.lock:
            self.up = self.down = 0

    def close(self) -> None:
        self.stopping = True
        self.server.close()
        for t in self.threads:
            t.join(timeout=2)


@pytest.fixture
def relay(s3_env: dict[str, str]) -> Iterator[CountingRelay]:
    r = CountingRelay(s3_env["ISEC_S3_ENDPOINT"])
    yield r
    r.close()


def measured(
    env: dict[str, str], relay: CountingRelay, op: Callable[[], isec.s3.CopyResult], *, tries: int = 3
) -> tuple[isec.s3.CopyResult, dict[str, float], int]:
    """Runs `op` and returns its result, the change of each request counter, and the bytes
    that crossed the client's connection. The counters are the whole server's: another
    client's requests in the same instant would show too, so a measurement is taken again
    (up to `tries` times) when the data-moving counters changed; each `op` is repeatable.
    A copy that moved data itself shows it in every try."""
    for _ in range(tries):
        before = counters(env)
        relay.reset()
        result = op()
        moved = relay.up + relay.down
        after = counters(env)
        delta = {k: after[k] - before[k] for k in ENDPOINTS}
        if not any(delta[k] for k in ("GetObject", "PutObject", "UploadPart")):
            break
    return result, delta, moved


def test_native_copies_move_no_object_bytes(
    s3_env: dict[str, str], s3_raw: Any, relay: CountingRelay, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    """Every branch that the core plans as a server-side copy (native, native_replace, the
    cross-kid rewrap, part_copy, rewrap in place) makes no GetObject, PutObject or UploadPart
    request, and the client's connection carries a few KiB for a multi-MiB object."""
    src = name("proof-src")
    data = random_bytes(7 * MIB + 3)
    isec.s3.Client(s3_raw, ring, part_size=PART).put_object(s3_bucket, src, data, content_type="image/png")
    ring.add_kek("kek-2", isec.generate_kek(), "decrypt_only")
    counted = isec.s3.Client(s3_client_for(s3_env, relay.endpoint), ring, part_size=PART)
    limits = isec.CopyLimits(single_copy_max=4 * MIB, part_min=1 * MIB, part_max=2 * MIB)
    part_copier = isec.s3.Client(s3_client_for(s3_env, relay.endpoint), ring, copy_limits=limits)

    def rewrap_to_the_other_kid() -> isec.s3.CopyResult:
        now = s3_raw.head_object(Bucket=s3_bucket, Key=name("proof-rewrap"))["Metadata"]["isec-kid"]
        ring.set_state("kek-2" if now == "kek-1" else "kek-1", "active")
        try:
            return counted.rewrap(s3_bucket, name("proof-rewrap"))
        finally:
            ring.set_state("kek-1", "active")

    def copy_under_kek2() -> isec.s3.CopyResult:
        ring.set_state("kek-2", "active")
        try:
            return counted.copy_object(s3_bucket, src, s3_bucket, name("proof-kid"), target_kid="kek-2")
        finally:
            ring.set_state("kek-1", "active")

    isec.s3.Client(s3_raw, ring).copy_object(s3_bucket, src, s3_bucket, name("proof-rewrap"))

    cases: list[tuple[str, Callable[[], isec.s3.CopyResult], str]] = [
        ("native", lambda: counted.copy_object(s3_bucket, src, s3_bucket, name("proof-native")), "CopyObject"),
        (
            "native_replace",
            lambda: counted.copy_object(
                s3_bucket, src, s3_bucket, name("proof-replace"), metadata_directive="REPLACE", new_metadata={"x": "y"}
            ),
            "CopyObject",
        ),
        ("native_replace", copy_under_kek2, "CopyObject"),
        ("native_replace", rewrap_to_the_other_kid, "CopyObject"),
        ("part_copy", lambda: part_copier.copy_object(s3_bucket, src, s3_bucket, name("proof-parts")), "UploadPartCopy"),
    ]
    for action, op, endpoint in cases:
        result, delta, moved = measured(s3_env, relay, op)
        print(f"{action:15} {endpoint:15} counters {delta} client connection {moved} B for {len(data)} B")
        assert result.action == action, (action, result.plan)
        assert delta["GetObject"] == delta["PutObject"] == delta["UploadPart"] == 0, (action, delta)
        expected = len(result.plan.ranges) if endpoint == "UploadPartCopy" else 1
        assert delta[endpoint] >= expected, (action, delta)
        assert result.plan.client_bytes == 0
        assert 0 < moved < 16 * 1024, f"{action}: {moved} bytes crossed the client's connection for {len(data)}"

    # Each copy is a real, readable object.
    reader = isec.s3.Client(s3_raw, ring)
    for k in ("proof-native", "proof-replace", "proof-kid", "proof-parts", "proof-rewrap"):
        assert reader.get_object(s3_bucket, name(k)) == data, k

    # The contrast: a re-encrypting copy does move the object both ways.
    _, delta, moved = measured(
        s3_env,
        relay,
        lambda: counted.copy_object(s3_bucket, src, s3_bucket, name("proof-rotate"), rotate_dek=True),
        tries=1,
    )
    print(f"reencrypt       counters {delta} client connection {moved} B for {len(data)} B")
    assert delta["GetObject"] >= 1 and delta["UploadPart"] >= 2
    assert moved > 2 * len(data)


# --- copy branches -------------------------------------------------------------------------------


def test_copy_native_keeps_everything(client: isec.s3.Client, s3_raw: Any, s3_bucket: str, name: Any) -> None:
    src, dst = name("c-src"), name("c-dst")
    data = random_bytes(100_000)
    client.put_object(s3_bucket, src, data, metadata={"k": "v"}, content_type="text/plain")
    r = client.copy_object(s3_bucket, src, s3_bucket, dst)
    assert r.action == "native" and r.plan.metadata is None and r.requests == 1 and r.etag
    a, ra = raw_get(s3_raw, s3_bucket, src)
    b, rb = raw_get(s3_raw, s3_bucket, dst)
    assert a == b and ra["Metadata"] == rb["Metadata"] and rb["ContentType"] == "text/plain"
    assert client.get_object(s3_bucket, dst) == data


def test_copy_replace_carries_the_envelope(client: isec.s3.Client, s3_raw: Any, s3_bucket: str, name: Any) -> None:
    src, dst = name("r-src"), name("r-dst")
    data = random_bytes(70_000)
    put = client.put_object(s3_bucket, src, data, metadata={"old": "1"}, content_type="text/plain")
    r = client.copy_object(
        s3_bucket,
        src,
        s3_bucket,
        dst,
        metadata_directive="REPLACE",
        new_metadata={"new": "2", "isec": "forged"},
        content_type="application/json",
    )
    assert r.action == "native_replace" and not r.plan.rewrapped
    _, rb = raw_get(s3_raw, s3_bucket, dst)
    # The user's "isec" value is overwritten by the source's envelope, never trusted.
    assert rb["Metadata"] == {"new": "2", "isec": put.envelope.to_text(), "isec-kid": "kek-1"}
    assert rb["ContentType"] == "application/json"
    assert client.get_object(s3_bucket, dst) == data

    # REPLACE without a content type keeps the source's.
    r = client.copy_object(s3_bucket, src, s3_bucket, name("r-dst2"), metadata_directive="REPLACE")
    assert s3_raw.head_object(Bucket=s3_bucket, Key=name("r-dst2"))["ContentType"] == "text/plain"


def test_copy_under_another_kid_rewraps_without_moving_bytes(
    client: isec.s3.Client, s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    src, dst = name("k-src"), name("k-dst")
    data = random_bytes(50_000)
    put = client.put_object(s3_bucket, src, data, metadata={"m": "1"})
    kek2 = isec.generate_kek()
    ring.add_kek("kek-2", kek2)  # now active
    r = client.copy_object(s3_bucket, src, s3_bucket, dst, target_kid="kek-2")
    assert r.action == "native_replace" and r.plan.rewrapped
    a, ra = raw_get(s3_raw, s3_bucket, src)
    b, rb = raw_get(s3_raw, s3_bucket, dst)
    assert a == b, "the body is byte-identical: only the wrapped DEK changed"
    assert rb["Metadata"]["isec-kid"] == "kek-2" and rb["Metadata"]["m"] == "1"
    assert ra["Metadata"]["isec"] == put.envelope.to_text(), "the source is untouched"
    only2 = isec.Keyring()
    only2.add_kek("kek-2", kek2)
    assert isec.s3.Client(s3_raw, only2).get_object(s3_bucket, dst) == data
    with expect_error("unknown_kid"):
        isec.s3.Client(s3_raw, only2).get_object(s3_bucket, src)
    ring.set_state("kek-1", "disabled")
    with expect_error("key_disabled"):
        client.copy_object(s3_bucket, src, s3_bucket, name("k-dst2"), target_kid="kek-2")


def test_part_copy_follows_the_planned_frame_aligned_ranges(
    s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    rec = Recorder(s3_raw)
    limits = isec.CopyLimits(single_copy_max=4 * MIB, part_min=1 * MIB, part_max=2 * MIB)
    c = isec.s3.Client(rec, ring, part_size=PART, copy_limits=limits)
    src, dst = name("p-src"), name("p-dst")
    data = random_bytes(6 * MIB + 12_345)
    put = c.put_object(s3_bucket, src, data, metadata={"u": "v"}, content_type="text/x-log")
    rec.calls.clear()
    r = c.copy_object(s3_bucket, src, s3_bucket, dst)
    assert r.action == "part_copy" and len(r.plan.ranges) == 4
    copies = rec.ops("upload_part_copy")
    sent = sorted((kw["PartNumber"], kw["CopySourceRange"]) for kw in copies)
    assert sent == [(n, f"bytes={s}-{e - 1}") for n, (s, e) in enumerate(r.plan.ranges, start=1)]
    # Every cut is on a frame boundary of the source (parts of PART bytes: frames restart at
    # each part's ciphertext start).
    part_ct = PART + PART // FRAME * isec.FRAME_OVERHEAD
    for _, end in r.plan.ranges[:-1]:
        assert (end % part_ct) % CT_FRAME == 0, end
    assert not rec.ops("get_object") and not rec.ops("upload_part")
    head = s3_raw.head_object(Bucket=s3_bucket, Key=dst)
    assert head["ETag"].endswith('-4"') and head["ContentType"] == "text/x-log"
    assert head["Metadata"] == {"u": "v", "isec": put.envelope.to_text(), "isec-kid": "kek-1"}
    assert c.get_object(s3_bucket, dst) == data
    assert c.get_range(s3_bucket, dst, 2 * MIB - 5, 2 * MIB + 5) == data[2 * MIB - 5 : 2 * MIB + 5]


def test_reencrypt_for_dek_rotation(client: isec.s3.Client, s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any) -> None:
    for size, label in ((300_000, "small"), (PART + 777, "multipart")):
        src, dst = name(f"d-src-{label}"), name(f"d-dst-{label}")
        data = random_bytes(size)
        put = client.put_object(s3_bucket, src, data, metadata={"keep": "me"}, content_type="text/x-a")
        ring.add_kek(f"kek-{label}", isec.generate_kek())
        r = client.copy_object(s3_bucket, src, s3_bucket, dst, rotate_dek=True)
        assert r.action == "reencrypt" and r.plan.reason == "dek_rotation"
        info = client.head_object(s3_bucket, dst)
        assert info.envelope is not None and info.kid == f"kek-{label}"
        assert info.envelope.salt != put.envelope.salt and info.envelope.declared_size == size
        assert info.metadata["keep"] == "me" and info.content_type == "text/x-a"
        assert raw_get(s3_raw, s3_bucket, src)[0] != raw_get(s3_raw, s3_bucket, dst)[0]
        assert client.get_object(s3_bucket, dst) == data


def test_reencrypt_with_replace_takes_the_new_user_metadata_only(
    client: isec.s3.Client, s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    src, dst = name("rr-src"), name("rr-dst")
    data = random_bytes(40_000)
    put = client.put_object(s3_bucket, src, data, metadata={"old": "1"})
    r = client.copy_object(
        s3_bucket,
        src,
        s3_bucket,
        dst,
        rotate_dek=True,
        metadata_directive="REPLACE",
        new_metadata={"New": "2", "isec": "forged", "isec-table": "forged", "plaintext-size": "9"},
    )
    assert r.action == "reencrypt" and r.plan.metadata == [("new", "2")]
    stored = s3_raw.head_object(Bucket=s3_bucket, Key=dst)["Metadata"]
    env = isec.Envelope.decode_text(stored["isec"])
    assert stored == {"new": "2", "isec": env.to_text(), "isec-kid": "kek-1"}
    assert env.salt != put.envelope.salt
    assert client.get_object(s3_bucket, dst) == data


def test_reencrypt_plaintext_source(s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any) -> None:
    c = isec.s3.Client(s3_raw, ring, part_size=PART)
    src, dst = name("pt-src"), name("pt-dst")
    data = random_bytes(PART + 5)
    s3_raw.put_object(Bucket=s3_bucket, Key=src, Body=data, Metadata={"origin": "legacy-app"})
    plain = c.copy_object(s3_bucket, src, s3_bucket, name("pt-copy"))
    assert plain.action == "native"
    r = c.copy_object(s3_bucket, src, s3_bucket, dst, require_encryption=True)
    assert r.action == "reencrypt" and r.plan.reason == "encrypt_plaintext"
    info = c.head_object(s3_bucket, dst)
    assert info.format == "isec" and info.metadata["origin"] == "legacy-app"
    assert c.get_object(s3_bucket, dst) == data


# --- rewrap --------------------------------------------------------------------------------------


def test_rewrap_in_place(
    client: isec.s3.Client, s3_env: dict[str, str], s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    key = name("rewrap")
    data = random_bytes(3 * MIB)
    put = client.put_object(s3_bucket, key, data, metadata={"who": "me"}, content_type="video/mp4")
    before, _ = raw_get(s3_raw, s3_bucket, key)
    kek2 = isec.generate_kek()
    ring.add_kek("kek-2", kek2)
    r = client.rewrap(s3_bucket, key)
    assert r.action == "native_replace" and r.plan.rewrapped and r.etag is not None
    after, ra = raw_get(s3_raw, s3_bucket, key)
    assert after == before, "rewrap moves no object bytes"
    assert ra["ContentType"] == "video/mp4" and ra["Metadata"]["who"] == "me"
    new_env = isec.Envelope.decode_text(ra["Metadata"]["isec"])
    assert new_env.kid == "kek-2" and new_env.salt == put.envelope.salt

    only2 = isec.Keyring()
    only2.add_kek("kek-2", kek2)
    assert isec.s3.Client(s3_raw, only2).get_object(s3_bucket, key) == data
    only1 = isec.Keyring()
    with expect_error("unknown_kid"):
        isec.s3.Client(s3_raw, only1).get_object(s3_bucket, key)

    # Already under the target: nothing to do, nothing written.
    again = client.rewrap(s3_bucket, key, "kek-2")
    assert again.action == "native" and again.etag is None and again.requests == 0
    # Without an active key there is nothing to rewrap to.
    bare = isec.Keyring()
    bare.add_kek("kek-2", kek2, "decrypt_only")
    with expect_error("key_not_active"):
        isec.s3.Client(s3_raw, bare).rewrap(s3_bucket, key)


def test_rewrap_refuses_an_object_that_changed_under_it(
    client: isec.s3.Client, s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    key = name("race")
    client.put_object(s3_bucket, key, b"first")
    replacement = client.put_object(s3_bucket, name("race-other"), b"second")
    ring.add_kek("kek-2", isec.generate_kek())
    rec = Recorder(s3_raw)

    def overwrite(op: str, kw: dict[str, Any]) -> None:
        if op == "copy_object":
            other, r = raw_get(s3_raw, s3_bucket, name("race-other"))
            s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=other, Metadata=r["Metadata"])

    rec.hook = overwrite
    with pytest.raises(s3_raw.exceptions.ClientError) as e:
        isec.s3.Client(rec, ring).rewrap(s3_bucket, key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    # The concurrent writer's object is intact: its envelope still matches its body.
    assert client.get_object(s3_bucket, key) == b"second"
    assert client.head_object(s3_bucket, key).envelope == replacement.envelope


# --- table layout (objects written by relays) -----------------------------------------------------


def test_table_layout_objects_read_range_and_copy(
    client: isec.s3.Client, s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    """A relay's object: parts of any size, a MAC'd segment table in a sidecar object."""
    key = name("table")
    env, okey = ring.create_envelope(table=True)
    sizes = [(1, PART + 1000), (2, 70_000), (4, 333)]
    data = random_bytes(sum(s for _, s in sizes))
    mpu = s3_raw.create_multipart_upload(
        Bucket=s3_bucket, Key=key, Metadata={"isec": env.to_text(), "isec-kid": env.kid}
    )
    parts, entries, at = [], [], 0
    for n, s in sizes:
        body = isec.encrypt_part(okey, n, False, data[at : at + s])
        at += s
        r = s3_raw.upload_part(Bucket=s3_bucket, Key=key, UploadId=mpu["UploadId"], PartNumber=n, Body=body)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
        entries.append((n, s, body[:7]))  # the prefix of the upload S3 keeps
    s3_raw.complete_multipart_upload(
        Bucket=s3_bucket, Key=key, UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts}
    )
    table = isec.SegmentTable(entries).encode(okey)
    s3_raw.put_object(Bucket=s3_bucket, Key=isec.table_sidecar_key(key), Body=table)

    assert client.get_object(s3_bucket, key) == data
    assert b"".join(client.iter_object(s3_bucket, key)) == data
    a = PART + 990
    assert client.get_range(s3_bucket, key, a, a + 20) == data[a : a + 20]

    dst = name("table-copy")
    rec = Recorder(s3_raw)
    r = isec.s3.Client(rec, ring).copy_object(s3_bucket, key, s3_bucket, dst)
    assert r.action == "native" and r.plan.copy_sidecar and r.plan.sidecar == "table" and r.requests == 2
    # The sidecar first, under the plan's key for each side, then the object.
    copies = [(kw["Key"], kw["CopySource"]["Key"]) for kw in rec.ops("copy_object")]
    assert copies == [(isec.table_sidecar_key(dst), isec.table_sidecar_key(key)), (dst, key)]
    assert raw_get(s3_raw, s3_bucket, isec.table_sidecar_key(dst))[0] == table
    assert client.get_object(s3_bucket, dst) == data

    bad = bytearray(table)
    bad[-1] ^= 1
    s3_raw.put_object(Bucket=s3_bucket, Key=isec.table_sidecar_key(dst), Body=bytes(bad))
    with expect_error("authentication_failed"):
        client.get_object(s3_bucket, dst)


def test_part_retries_and_workers_are_validated(s3_raw: Any, ring: isec.Keyring) -> None:
    for kw in ({"part_size": 0}, {"max_workers": 0}, {"part_retries": -1}):
        with pytest.raises(ValueError):
            isec.s3.Client(s3_raw, ring, **kw)  # type: ignore[arg-type]


def test_file_object_body_is_read_from_its_position(client: isec.s3.Client, s3_bucket: str, name: Any) -> None:
    buf = io.BytesIO(b"skip" + b"payload")
    buf.read(4)
    client.put_object(s3_bucket, name("pos"), buf)
    assert client.get_object(s3_bucket, name("pos")) == b"payload"


def test_table_layout_with_an_inline_table(
    client: isec.s3.Client, s3_raw: Any, ring: isec.Keyring, s3_bucket: str, name: Any
) -> None:
    """A table small enough for metadata (``isec-table``): read without a sidecar, copied
    without one, and dropped by a re-encryption into another layout."""
    key = name("inline")
    env, okey = ring.create_envelope(table=True)
    sizes = [(1, 70_000), (2, 5_000)]
    data = random_bytes(sum(s for _, s in sizes))
    p1, p2 = isec.encrypt_part(okey, 1, False, data[:70_000]), isec.encrypt_part(okey, 2, False, data[70_000:])
    body = p1 + p2
    table = isec.SegmentTable([(1, 70_000, p1[:7]), (2, 5_000, p2[:7])]).encode(okey)
    inline = base64.urlsafe_b64encode(table).rstrip(b"=").decode()
    meta = {"isec": env.to_text(), "isec-kid": env.kid, "isec-table": inline, "owner": "relay"}
    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=body, Metadata=meta)

    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring)
    assert c.get_object(s3_bucket, key) == data
    assert c.get_range(s3_bucket, key, 69_990, 70_010) == data[69_990:70_010]
    assert all(not kw["Key"].endswith(".isec-table") for kw in rec.ops("get_object")), "no sidecar read"

    dst = name("inline-copy")
    r = c.copy_object(s3_bucket, key, s3_bucket, dst)
    assert (r.action, r.plan.copy_sidecar, r.plan.sidecar, r.requests) == ("native", False, None, 1)
    assert s3_raw.head_object(Bucket=s3_bucket, Key=dst)["Metadata"] == meta
    with pytest.raises(s3_raw.exceptions.ClientError):
        s3_raw.head_object(Bucket=s3_bucket, Key=isec.table_sidecar_key(dst))
    assert client.get_object(s3_bucket, dst) == data

    rotated = name("inline-rotated")
    r = client.copy_object(s3_bucket, key, s3_bucket, rotated, rotate_dek=True)
    assert r.action == "reencrypt" and r.plan.metadata == [("owner", "relay")]
    stored = s3_raw.head_object(Bucket=s3_bucket, Key=rotated)["Metadata"]
    assert set(stored) == {"owner", "isec", "isec-kid"}, "the old table does not describe the new object"
    assert isec.Envelope.decode_text(stored["isec"]).layout == "parts"
    assert client.get_object(s3_bucket, rotated) == data

    bad = {**meta, "isec-table": inline[:-2] + ("A" if inline[-2] != "A" else "B") + inline[-1]}
    s3_raw.put_object(Bucket=s3_bucket, Key=key, Body=body, Metadata=bad)
    with expect_error("authentication_failed"):
        client.get_object(s3_bucket, key)


class MemoryS3:
    """Just enough of an S3 client, in memory, for uploads of many small parts."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.meta: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, Metadata: dict[str, str], **kw: Any) -> Any:
        self.objects[Key] = (bytes(Body), dict(Metadata))
        return {"ETag": '"1"'}

    def create_multipart_upload(self, *, Bucket: str, Key: str, Metadata: dict[str, str], **kw: Any) -> Any:
        upload = f"u{len(self.uploads)}"
        self.uploads[upload], self.meta[upload] = {}, dict(Metadata)
        return {"UploadId": upload}

    def upload_part(self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: Any) -> Any:
        with self.lock:
            self.uploads[UploadId][PartNumber] = bytes(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: Any) -> Any:
        parts = self.uploads.pop(UploadId)
        numbers = [p["PartNumber"] for p in MultipartUpload["Parts"]]
        assert numbers == sorted(parts) and len(numbers) <= isec.MAX_PARTS
        self.objects[Key] = (b"".join(parts[n] for n in numbers), self.meta.pop(UploadId))
        return {"ETag": f'"x-{len(numbers)}"'}

    def abort_multipart_upload(self, **kw: Any) -> Any:
        self.uploads.pop(kw["UploadId"], None)

    def get_object(self, *, Bucket: str, Key: str, **kw: Any) -> Any:
        body, meta = self.objects[Key]
        out: dict[str, Any] = {"Metadata": meta, "ETag": '"1"'}
        if "Range" in kw:
            a, b = (int(x) for x in kw["Range"].removeprefix("bytes=").split("-"))
            out["ContentRange"] = f"bytes {a}-{min(b, len(body) - 1)}/{len(body)}"
            body = body[a : b + 1]
        # PartNumber: served as a single-PUT object, whole.
        return {**out, "Body": io.BytesIO(body), "ContentLength": len(body)}


def test_part_size_grows_to_fit_ten_thousand_parts(ring: isec.Keyring) -> None:
    """More than 10000 parts of the configured size: the core's part size (whole frames,
    the smallest that fits) is used, and the object is stored in at most 10000 parts."""
    s3 = MemoryS3()
    frame = isec.MIN_FRAME_SIZE
    c = isec.s3.Client(s3, ring, part_size=frame, frame_size=frame, max_workers=2)
    data = random_bytes(isec.MAX_PARTS * frame + 1)
    put = c.put_object("b", "big", data)
    want = isec.fit_part_size(len(data), frame, frame_size=frame)
    assert want == 2 * frame
    assert put.envelope.part_size == want and put.parts == -(-len(data) // want) <= isec.MAX_PARTS
    assert c.get_object("b", "big") == data
    # A part size that is not whole frames is rounded up by the core, not refused.
    odd = isec.s3.Client(s3, ring, part_size=frame + 1, frame_size=frame)
    put = odd.put_object("b", "odd", data[: 3 * frame])
    assert (put.envelope.part_size, put.parts) == (2 * frame, 2)
    assert odd.get_object("b", "odd") == data[: 3 * frame]
