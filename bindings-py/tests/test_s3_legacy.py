"""The previous proxy's objects through isec.s3, against the S3 server: each layout stored
exactly as that proxy stores it (../shared/vectors/s3proxy: the body, its user metadata, its
sidecar), read whole, streamed and ranged with the keyring's legacy secret, copied with its
sidecar, and its failures reported with core's codes. Also core's opening of an object
(isec.ObjectOpen) without a server. Under CI=true missing vectors fail; elsewhere these tests
skip and say what they did not check."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import isec
import isec.s3

from .conftest import expect_error, pattern

MIB = 1 << 20
LAYOUTS = ("single", "streamed", "framed", "staged")


@dataclass
class Stored:
    """One of the proxy's objects as it sits in the bucket."""

    layout: str
    key: str
    body: bytes
    metadata: dict[str, str]
    sidecar_key: str | None
    sidecar: bytes | None
    plaintext_len: int
    plaintext_sha256: str
    kid: str
    secret: str


def vector(d: Path, layout: str, key: str) -> Stored:
    """The vector of `layout`, to be stored under `key` (its object-keyed sidecar moves with
    it; the vectors' own key is path/to/object.bin)."""
    if layout == "single":
        case = next(c for c in json.loads((d / "single_put.json").read_text())["cases"] if c["case"] == "single_put_1048583")
        meta = {k: v for k, v in case["object_metadata"]["pr107_07bca1bf"].items() if not k.startswith("_")}
        body = (d / case["ciphertext"]["bin_file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == case["ciphertext"]["sha256"]
        kek = case["kek"]
        return Stored(layout, key, body, meta, None, None, case["plaintext"]["len"], case["plaintext"]["sha256"],
                      kek["kid"], kek["kek_secret"])
    file = {"streamed": "streaming_put_v2.json", "framed": "multipart_v2_framed.json", "staged": "multipart_v3_staged.json"}[layout]
    v = json.loads((d / file).read_text())
    body = (d / v["object_ciphertext"]["bin_file"]).read_bytes()
    assert hashlib.sha256(body).hexdigest() == v["object_ciphertext"]["sha256"], "vector body hash"
    if layout == "streamed":
        sc = v["sidecars"]["pr107-07bca1bf"]
        sidecar_key, text = sc["sidecar_key"], sc["sidecar"]["body_base64_text"]
    else:
        sidecar_key, text = v["sidecar_key"], v["sidecar"]["body_base64_text"]
    meta = {k: val for k, val in (v.get("object_metadata") or {}).items() if not k.startswith("_")}
    if layout == "staged":
        assert sidecar_key == f".s3proxy-internal/generations/{meta['s3proxy-generation']}.meta"
    else:
        # Object-keyed: the sidecar goes where the proxy puts it for the key used here.
        assert sidecar_key == isec.legacy_sidecar_key(v["object_key"])
        sidecar_key = isec.legacy_sidecar_key(key)
    return Stored(layout, key, body, meta, sidecar_key, text.encode(), v["plaintext"]["len"], v["plaintext"]["sha256"],
                  v["kek"]["kid"], v["kek"]["kek_secret"])


class Bucket:
    """Puts objects as the proxy stored them, and deletes everything it put afterwards."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket
        self.prefix = f"t-{uuid.uuid4().hex[:12]}"
        self.keys: set[str] = set()

    def name(self, suffix: str) -> str:
        return f"{self.prefix}/{suffix}"

    def put(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {})
        self.keys.add(key)

    def store(self, o: Stored, *, body: bytes | None = None, sidecar: bytes | None = None, with_sidecar: bool = True) -> None:
        if o.sidecar_key is not None and with_sidecar:
            self.put(o.sidecar_key, sidecar if sidecar is not None else o.sidecar or b"")
        self.put(o.key, body if body is not None else o.body, o.metadata)

    def exists(self, key: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key).get("Contents", [])
        return any(c["Key"] == key for c in listed)

    def clean(self) -> None:
        for prefix in (self.prefix, isec.legacy_sidecar_key(self.prefix).removesuffix(".meta")):
            for c in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", []):
                self.keys.add(c["Key"])
        for k in self.keys:
            self.s3.delete_object(Bucket=self.bucket, Key=k)


@pytest.fixture
def bucket(s3_raw: Any, s3_bucket: str) -> Iterator[Bucket]:
    b = Bucket(s3_raw, s3_bucket)
    yield b
    b.clean()


def ring_for(o: Stored, secret: str | None = None) -> isec.Keyring:
    r = isec.Keyring()
    r.add_kek("kek-1", isec.generate_kek())
    r.add_legacy_secret_string(o.kid, secret if secret is not None else o.secret)
    return r


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Recorder:
    """The S3 client, with a record of every call."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, op: str) -> Callable[..., Any]:
        fn = getattr(self.s3, op)

        def call(**kw: Any) -> Any:
            self.calls.append((op, kw))
            return fn(**kw)

        return call


# --- reads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_previous_proxy_object_reads_whole_streamed_and_ranged(
    layout: str, s3proxy: Path, s3_raw: Any, bucket: Bucket
) -> None:
    o = vector(s3proxy, layout, bucket.name(f"{layout}/object.bin"))
    bucket.store(o)
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring_for(o))
    want = pattern(o.plaintext_len)
    assert sha(want) == o.plaintext_sha256

    info = c.head_object(bucket.bucket, o.key)
    assert info.format == "legacy" and info.kid == o.kid and info.plaintext_len == o.plaintext_len
    assert info.envelope is None and info.legacy is not None and info.details["layout"] == layout
    assert info.details["sidecar"] == o.sidecar_key

    assert sha(c.get_object(bucket.bucket, o.key)) == o.plaintext_sha256
    assert sha(b"".join(c.iter_object(bucket.bucket, o.key, chunk_size=3 * MIB + 1))) == o.plaintext_sha256

    n = o.plaintext_len
    seals = info.legacy.seals()
    ranges = [(0, 10), (n - 7, None), (n // 2, n // 2 + 1000), (5, 5)]
    for seal in seals[1:3]:
        b = seal.pt_offset
        ranges += [(b - 1, b + 1), (b - 4096, b + 4096)]  # across a seal boundary
    if len(seals) > 2:
        ranges.append((seals[1].pt_offset - 3, seals[2].pt_offset + 3))  # three seals
    for a, e in ranges:
        rec.calls.clear()
        assert c.get_range(bucket.bucket, o.key, a, e) == want[a:e], (layout, a, e)
        # Only the seals the range needs: exactly the ranged GET core planned.
        plan = info.legacy.plan_range(a, n if e is None else e)
        got = [kw.get("Range") for op, kw in rec.calls if op == "get_object" and kw["Key"] == o.key]
        assert got == ([] if plan.is_empty() else [plan.http_range]), (a, e, got)
        if plan.http_range is not None:
            assert plan.ct_end - plan.ct_start <= 3 * (8 * MIB + 28)


# --- copies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_previous_proxy_object_copies_with_its_sidecar(layout: str, s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    o = vector(s3proxy, layout, bucket.name(f"{layout}/src.bin"))
    bucket.store(o)
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring_for(o))
    dst = bucket.name(f"{layout}/copy.bin")
    r = c.copy_object(bucket.bucket, o.key, bucket.bucket, dst)
    assert r.action == "native" and r.plan.client_bytes == 0
    copies = [(kw["CopySource"]["Key"], kw["Key"]) for op, kw in rec.calls if op == "copy_object"]
    if layout in ("streamed", "framed"):
        # The object-keyed sidecar first: the copy is unreadable without it.
        assert r.plan.sidecar == "legacy" and r.requests == 2
        assert copies == [(o.sidecar_key, isec.legacy_sidecar_key(dst)), (o.key, dst)]
        assert bucket.exists(isec.legacy_sidecar_key(dst))
    else:
        # A single object has no sidecar; a staged one's is keyed by its generation, which
        # the copy shares.
        assert not r.plan.copy_sidecar and r.requests == 1 and copies == [(o.key, dst)]
    assert not [op for op, _ in rec.calls if op in ("put_object", "upload_part")], "no object bytes moved"
    assert sha(c.get_object(bucket.bucket, dst)) == o.plaintext_sha256
    assert c.head_object(bucket.bucket, dst).format == "legacy"
    assert c.get_range(bucket.bucket, dst, 8 * MIB - 2, 8 * MIB + 2) == pattern(o.plaintext_len)[8 * MIB - 2 : 8 * MIB + 2]


def test_previous_proxy_object_migrates_through_a_copy(s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    o = vector(s3proxy, "framed", bucket.name("framed/src.bin"))
    bucket.store(o)
    c = isec.s3.Client(s3_raw, ring_for(o), part_size=8 * MIB)
    dst = bucket.name("framed/isec.bin")
    r = c.copy_object(bucket.bucket, o.key, bucket.bucket, dst, rotate_dek=True)
    assert r.action == "reencrypt"
    info = c.head_object(bucket.bucket, dst)
    assert info.format == "isec" and info.kid == "kek-1"
    assert sha(c.get_object(bucket.bucket, dst)) == o.plaintext_sha256


# --- failures ---------------------------------------------------------------------------------


def sidecar_tampered(o: Stored) -> bytes:
    """The sidecar's JSON with one size changed, gzipped and encoded again as the proxy does:
    it parses, but no longer matches the body."""
    import gzip

    assert o.sidecar is not None
    doc = json.loads(gzip.decompress(base64.b64decode(o.sidecar)))
    doc["parts"][0]["cs"] += 28
    return base64.b64encode(gzip.compress(json.dumps(doc).encode()))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_previous_proxy_failures_keep_core_codes(layout: str, s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    o = vector(s3proxy, layout, bucket.name(f"{layout}/good.bin"))
    bucket.store(o)
    c = isec.s3.Client(s3_raw, ring_for(o))

    def reads(key: str) -> list[Callable[[], object]]:
        return [
            lambda: c.get_object(bucket.bucket, key),
            lambda: b"".join(c.iter_object(bucket.bucket, key)),
            lambda: c.get_range(bucket.bucket, key, o.plaintext_len // 2, o.plaintext_len // 2 + 10),
        ]

    def variant(suffix: str) -> Stored:
        v = vector(s3proxy, layout, bucket.name(f"{layout}/{suffix}"))
        if layout == "staged":
            v.sidecar_key = None  # shares the original's generation-keyed sidecar
        return v

    # A body byte changed (inside the seal the ranged read needs too).
    bad = variant("tampered-body.bin")
    flipped = bytearray(bad.body)
    flipped[len(flipped) // 2] ^= 0x01
    bucket.store(bad, body=bytes(flipped))
    for read in reads(bad.key):
        with expect_error("authentication_failed"):
            read()

    # The wrong secret under the object's kid.
    wrong = isec.s3.Client(s3_raw, ring_for(o, "not-the-secret"))
    with expect_error("unwrap_failed"):
        wrong.get_object(bucket.bucket, o.key)
    with expect_error("unwrap_failed"):
        wrong.get_range(bucket.bucket, o.key, 0, 1)

    if layout in ("streamed", "framed"):
        # A sidecar that parses but does not match the body; then one that is not the
        # proxy's encoding at all; then one over core's cap.
        for body, code in (
            (sidecar_tampered(o), "malformed_legacy"),
            (b"!" + (o.sidecar or b""), "malformed_legacy"),
            (b"A" * (isec.LEGACY_SIDECAR_CAP + 1), "sidecar_too_large"),
        ):
            v = variant(f"tampered-sidecar-{code}-{len(body)}.bin")
            bucket.store(v, sidecar=body)
            for read in reads(v.key):
                with expect_error(code) as e:
                    read()
                assert v.sidecar_key is not None and v.sidecar_key in str(e.value)
            with expect_error(code):
                c.copy_object(bucket.bucket, v.key, bucket.bucket, bucket.name(f"{layout}/never.bin"))
        assert not bucket.exists(bucket.name(f"{layout}/never.bin"))
        # No sidecar: nothing tells the body from plaintext, which a strict client refuses.
        v = variant("no-sidecar.bin")
        bucket.store(v, with_sidecar=False)
        for read in reads(v.key):
            with expect_error("not_encrypted"):
                read()
    if layout == "staged":
        # The generation-keyed sidecar missing (another generation), then tampered.
        v = variant("other-generation.bin")
        v.metadata = {**v.metadata, "s3proxy-generation": "00" * 32}
        bucket.store(v)
        for read in reads(v.key):
            with expect_error("malformed_legacy"):
                read()
        assert o.sidecar_key is not None and o.sidecar is not None
        try:
            bucket.put(o.sidecar_key, sidecar_tampered(o))
            for read in reads(o.key):
                with expect_error("malformed_legacy"):
                    read()
        finally:
            bucket.put(o.sidecar_key, o.sidecar)

    # The original is untouched and still reads.
    assert sha(c.get_object(bucket.bucket, o.key)) == o.plaintext_sha256
    assert c.get_range(bucket.bucket, o.key, 1, 4) == pattern(4)[1:]


def test_previous_proxy_object_is_never_read_as_plaintext(s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    """A streamed upload of the proxy looks plain from its metadata alone; with
    allow_plaintext and no legacy key, reading it fails rather than handing out its
    ciphertext. A plain object without a sidecar still reads as plaintext."""
    o = vector(s3proxy, "streamed", bucket.name("streamed/object.bin"))
    bucket.store(o)
    no_key = isec.Keyring()
    no_key.add_kek("kek-1", isec.generate_kek())
    lenient = isec.s3.Client(s3_raw, no_key, allow_plaintext=True)
    assert lenient.head_object(bucket.bucket, o.key).format == "legacy"
    for read in (
        lambda: lenient.get_object(bucket.bucket, o.key),
        lambda: b"".join(lenient.iter_object(bucket.bucket, o.key)),
        lambda: lenient.get_range(bucket.bucket, o.key, 0, 10),
    ):
        with expect_error("unknown_kid"):
            read()
    # With the key, the lenient client reads the plaintext, never the stored bytes.
    assert sha(isec.s3.Client(s3_raw, ring_for(o), allow_plaintext=True).get_object(bucket.bucket, o.key)) == o.plaintext_sha256

    plain = bucket.name("plain.txt")
    bucket.put(plain, b"just text", {"owner": "x"})
    strict = isec.s3.Client(s3_raw, ring_for(o))
    assert strict.head_object(bucket.bucket, plain).format == "plaintext"
    with expect_error("not_encrypted"):
        strict.get_object(bucket.bucket, plain)
    assert isec.s3.Client(s3_raw, no_key, allow_plaintext=True).get_object(bucket.bucket, plain) == b"just text"


# --- core's opening of an object, without a server ---------------------------------------------


def test_object_open_steps() -> None:
    ring = isec.Keyring()
    ring.add_kek("k", isec.generate_kek())
    env, _ = ring.create_envelope()
    ready = isec.ObjectOpen("a/b", {"x-amz-meta-isec": env.to_text(), "isec-kid": "k"}, 100).next
    assert ready.kind == "ready" and ready.opened is not None
    assert ready.opened.format == "isec" and ready.opened.envelope == env and ready.opened.sidecar is None

    o = isec.ObjectOpen("dir/file.txt", {"color": "blue"}, 42)
    step = o.next
    assert (step.kind, step.key, step.sidecar, step.probe) == ("fetch", isec.legacy_sidecar_key("dir/file.txt"), "legacy", True)
    assert step.max_len == isec.LEGACY_SIDECAR_CAP
    done = o.feed(None)
    assert done.kind == "ready" and done.opened is not None and done.opened.format == "plaintext"
    with expect_error("invalid_state"):
        o.feed(None)

    table_env, _ = ring.create_envelope(table=True)
    t = isec.ObjectOpen("k", {"isec": table_env.to_text(), "isec-kid": "k"}, 10)
    assert (t.next.kind, t.next.sidecar, t.next.key, t.next.max_len) == ("fetch", "table", isec.table_sidecar_key("k"), isec.MAX_TABLE_LEN)
    with expect_error("malformed_segment_table"):
        t.feed(None)

    with expect_error("malformed_envelope"):
        isec.ObjectOpen("x", {"isec": "not an envelope!"}, 5)
    assert "content-type" in isec.CARRIED_HEADERS


class Failing(Recorder):
    """A Recorder whose `fail` operation raises (once per matching call)."""

    def __init__(self, s3: Any, fail: str, after: int = 0) -> None:
        super().__init__(s3)
        self.fail, self.after = fail, after

    def __getattr__(self, op: str) -> Callable[..., Any]:
        call = super().__getattr__(op)
        if op != self.fail:
            return call

        def failing(**kw: Any) -> Any:
            if sum(1 for o, _ in self.calls if o == op) >= self.after:
                self.calls.append((op, kw))
                raise RuntimeError(f"{op} failed")
            return call(**kw)

        return failing


def test_a_failed_copy_step_sends_its_undo_requests(s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    """copy_steps' undo lists, executed: the destination sidecar copied first is deleted when
    the object's copy fails, and a failed part copy aborts its upload too."""
    o = vector(s3proxy, "streamed", bucket.name("streamed/src.bin"))
    bucket.store(o)
    dst = bucket.name("streamed/dst.bin")

    # The object's CopyObject (the second one, after the sidecar's) fails.
    rec = Failing(s3_raw, "copy_object", after=1)
    with pytest.raises(RuntimeError, match="copy_object failed"):
        isec.s3.Client(rec, ring_for(o)).copy_object(bucket.bucket, o.key, bucket.bucket, dst)
    ops = [op for op, _ in rec.calls if op != "get_object"]
    assert ops == ["head_object", "copy_object", "copy_object", "delete_object"]
    assert rec.calls[-1][1]["Key"] == isec.legacy_sidecar_key(dst)
    assert not bucket.exists(isec.legacy_sidecar_key(dst)) and not bucket.exists(dst)

    # Above the single-copy limit: a part copy whose second part fails.
    limits = isec.CopyLimits(single_copy_max=4 * MIB, part_min=1 * MIB, part_max=6 * MIB)
    rec = Failing(s3_raw, "upload_part_copy", after=1)
    with pytest.raises(RuntimeError, match="upload_part_copy failed"):
        isec.s3.Client(rec, ring_for(o), copy_limits=limits).copy_object(bucket.bucket, o.key, bucket.bucket, dst)
    ops = [op for op, _ in rec.calls if op != "get_object"]
    assert ops == [
        "head_object", "copy_object", "create_multipart_upload", "upload_part_copy", "upload_part_copy",
        "abort_multipart_upload", "delete_object",
    ]
    assert not bucket.exists(isec.legacy_sidecar_key(dst)) and not bucket.exists(dst)
    uploads = s3_raw.list_multipart_uploads(Bucket=bucket.bucket, Prefix=bucket.prefix).get("Uploads", [])
    assert not uploads, "the upload was aborted"

    # The source is untouched; the same copy without failures reads back.
    c = isec.s3.Client(s3_raw, ring_for(o), copy_limits=limits)
    r = c.copy_object(bucket.bucket, o.key, bucket.bucket, dst)
    assert r.action == "part_copy" and r.plan.copy_sidecar
    assert sha(c.get_object(bucket.bucket, dst)) == o.plaintext_sha256


# --- migration ------------------------------------------------------------------------------


def test_default_legacy_key_opens_objects_without_a_kid(s3proxy: Path) -> None:
    """The proxy's oldest objects record no isec-kid: the keyring's default legacy key opens
    them, and only a previous-proxy secret can be that default."""
    case = next(c for c in json.loads((s3proxy / "single_put.json").read_text())["cases"] if c["case"] == "single_put_1048583")
    meta = {k: v for k, v in case["object_metadata"]["legacy_68f2c15"].items() if not k.startswith("_")}
    body = (s3proxy / case["ciphertext"]["bin_file"]).read_bytes()
    obj = isec.LegacyObject(isec.LegacyMetadata(meta), len(body))
    assert obj.kid is None
    kid = case["kek"]["kid"]
    ring = isec.Keyring()
    ring.add_kek("kek-1", isec.generate_kek())
    ring.add_legacy_secret_string(kid, case["kek"]["kek_secret"])
    with expect_error("unknown_kid"):
        ring.open_legacy(obj)
    assert sha(isec.legacy_decrypt(ring.open_legacy(obj, kid), obj, body)) == case["plaintext"]["sha256"]
    with expect_error("wrong_key_kind"):
        ring.set_default_legacy("kek-1")
    with expect_error("unknown_kid"):
        ring.set_default_legacy("no-such-kid")
    with expect_error("unknown_kid"):
        ring.open_legacy(obj)
    ring.set_default_legacy(kid)
    assert sha(isec.legacy_decrypt(ring.open_legacy(obj), obj, body)) == case["plaintext"]["sha256"]
    # An explicit kid still wins over the default.
    with expect_error("unknown_kid"):
        ring.open_legacy(obj, "other")


def store_with_headers(bucket: Bucket, o: Stored, **extra: Any) -> None:
    """`Bucket.store`, with a user key of the caller's and a content type on the object."""
    o.metadata = {**o.metadata, "owner": "alice"}
    if o.sidecar_key is not None:
        bucket.put(o.sidecar_key, o.sidecar or b"")
    bucket.s3.put_object(Bucket=bucket.bucket, Key=o.key, Body=o.body, Metadata=o.metadata, ContentType="application/x-test", **extra)
    bucket.keys.add(o.key)


def absent(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as e:
        return getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
    return False


@pytest.mark.parametrize("layout", LAYOUTS)
def test_migrate_reencrypts_in_place(layout: str, s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    o = vector(s3proxy, layout, bucket.name(f"{layout}/m.bin"))
    store_with_headers(bucket, o)
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring_for(o), part_size=8 * MIB)
    r = c.migrate(bucket.bucket, o.key)
    assert r.migrated and r.kid == "kek-1" and r.plaintext_len == o.plaintext_len and r.etag
    assert r.plan is not None and r.plan.action == "reencrypt"
    ops = [op for op, _ in rec.calls]
    writes = [op for op in ops if op in ("put_object", "create_multipart_upload", "upload_part", "complete_multipart_upload")]
    n_parts = -(-o.plaintext_len // (8 * MIB))
    # In place, even one part goes through a multipart upload, created before the source is
    # read (SPEC.md §15.5).
    assert writes == ["create_multipart_upload"] + ["upload_part"] * n_parts + ["complete_multipart_upload"]
    first_get = next(i for i, (op, kw) in enumerate(rec.calls) if op == "get_object" and kw["Key"] == o.key and "IfMatch" in kw)
    assert ops.index("create_multipart_upload") < first_get
    # The source's GET was pinned to its HEAD's ETag.
    gets = [kw for op, kw in rec.calls if op == "get_object" and kw["Key"] == o.key]
    assert gets and all("IfMatch" in kw for kw in gets)

    if layout in ("streamed", "framed"):
        assert r.sidecar_deleted == o.sidecar_key and r.sidecar_kept is None
        assert o.sidecar_key is not None and absent(s3_raw, bucket.bucket, o.sidecar_key)
        # Deleted only after the new object verified: the last request of all.
        assert ops[-1] == "delete_object" and rec.calls[-1][1]["Key"] == o.sidecar_key
    elif layout == "staged":
        # Keyed by generation, maybe shared by native copies: left in place.
        assert r.sidecar_deleted is None and r.sidecar_kept == o.sidecar_key
        assert o.sidecar_key is not None and bucket.exists(o.sidecar_key)
    else:
        assert r.sidecar_deleted is None and r.sidecar_kept is None
    assert "delete_object" not in ops[:-1]

    assert sha(c.get_object(bucket.bucket, o.key)) == o.plaintext_sha256
    info = c.head_object(bucket.bucket, o.key)
    assert info.format == "isec" and info.kid == "kek-1" and info.plaintext_len == o.plaintext_len
    assert info.content_type == "application/x-test"
    assert isec.user_metadata(info.metadata) == isec.user_metadata(o.metadata)
    assert info.metadata["owner"] == "alice"
    assert not any(k.startswith("s3proxy") or k in ("client-etag", "plaintext-size") for k in info.metadata)

    # Again: nothing to do.
    rec.calls.clear()
    again = c.migrate(bucket.bucket, o.key)
    assert not again.migrated and again.kid == "kek-1" and again.etag is None and again.plan is None
    assert [op for op, _ in rec.calls if op not in ("head_object", "get_object")] == []
    assert c.head_object(bucket.bucket, o.key).etag == info.etag


@pytest.mark.parametrize("layout", LAYOUTS)
def test_migrate_of_a_tampered_object_changes_nothing(layout: str, s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    o = vector(s3proxy, layout, bucket.name(f"{layout}/bad.bin"))
    flipped = bytearray(o.body)
    flipped[len(flipped) - 100] ^= 0x01  # in the last seal: found only at the job's end
    bucket.store(o, body=bytes(flipped))
    before = s3_raw.head_object(Bucket=bucket.bucket, Key=o.key)
    sidecar_before = (
        s3_raw.get_object(Bucket=bucket.bucket, Key=o.sidecar_key)["Body"].read() if o.sidecar_key is not None else None
    )
    rec = Recorder(s3_raw)
    c = isec.s3.Client(rec, ring_for(o), part_size=8 * MIB)
    with expect_error("authentication_failed"):
        c.migrate(bucket.bucket, o.key)
    assert "delete_object" not in [op for op, _ in rec.calls]
    assert "complete_multipart_upload" not in [op for op, _ in rec.calls]
    uploads = s3_raw.list_multipart_uploads(Bucket=bucket.bucket, Prefix=bucket.prefix).get("Uploads", [])
    assert not uploads, "the upload was aborted"

    after = s3_raw.head_object(Bucket=bucket.bucket, Key=o.key)
    assert after["ETag"] == before["ETag"] and after["Metadata"] == before["Metadata"] == o.metadata
    assert s3_raw.get_object(Bucket=bucket.bucket, Key=o.key)["Body"].read() == bytes(flipped)
    if o.sidecar_key is not None:
        assert s3_raw.get_object(Bucket=bucket.bucket, Key=o.sidecar_key)["Body"].read() == sidecar_before
    info = c.head_object(bucket.bucket, o.key)
    assert info.format == "legacy" and info.kid == o.kid


def test_migrate_without_a_recorded_kid_uses_the_default_legacy_key(
    s3proxy: Path, s3_raw: Any, bucket: Bucket
) -> None:
    o = vector(s3proxy, "single", bucket.name("single/nokid.bin"))
    case = next(c for c in json.loads((s3proxy / "single_put.json").read_text())["cases"] if c["case"] == "single_put_1048583")
    o.metadata = {k: v for k, v in case["object_metadata"]["legacy_68f2c15"].items() if not k.startswith("_")}
    assert "isec-kid" not in o.metadata
    bucket.store(o)
    ring = ring_for(o)
    c = isec.s3.Client(s3_raw, ring)
    with expect_error("unknown_kid"):
        c.migrate(bucket.bucket, o.key)
    assert c.head_object(bucket.bucket, o.key).format == "legacy"
    ring.set_default_legacy(o.kid)
    r = c.migrate(bucket.bucket, o.key)
    assert r.migrated and r.kid == "kek-1" and r.plaintext_len == o.plaintext_len
    assert sha(c.get_object(bucket.bucket, o.key)) == o.plaintext_sha256


def test_migrate_refuses_plaintext_and_leaves_isec_alone(s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    o = vector(s3proxy, "single", bucket.name("single/x.bin"))
    c = isec.s3.Client(s3_raw, ring_for(o))
    plain = bucket.name("plain.txt")
    bucket.put(plain, b"just text")
    for client in (c, isec.s3.Client(s3_raw, ring_for(o), allow_plaintext=True)):
        with expect_error("not_encrypted"):
            client.migrate(bucket.bucket, plain)
    assert s3_raw.get_object(Bucket=bucket.bucket, Key=plain)["Body"].read() == b"just text"
    new = bucket.name("new.bin")
    put = c.put_object(bucket.bucket, new, b"hello")
    bucket.keys.add(new)
    r = c.migrate(bucket.bucket, new)
    assert (r.migrated, r.kid, r.plaintext_len, r.etag, r.sidecar_deleted) == (False, "kek-1", 5, None, None)
    assert c.head_object(bucket.bucket, new).etag == put.etag


@pytest.mark.parametrize("fail", ["upload_part", "complete_multipart_upload", "head_object"])
def test_a_failed_migration_deletes_nothing(fail: str, s3proxy: Path, s3_raw: Any, bucket: Bucket) -> None:
    """An upload that fails is aborted and the original stays; a failure after the new object
    is in place (its check) still deletes no sidecar."""
    o = vector(s3proxy, "framed", bucket.name(f"framed/fail-{fail}.bin"))
    bucket.store(o)
    before = s3_raw.head_object(Bucket=bucket.bucket, Key=o.key)
    # head_object: the first HEAD opens the source, the second checks the new object.
    rec = Failing(s3_raw, fail, after=0 if fail == "complete_multipart_upload" else 1)
    c = isec.s3.Client(rec, ring_for(o), part_size=8 * MIB, part_retries=0)
    with pytest.raises(RuntimeError, match=f"{fail} failed"):
        c.migrate(bucket.bucket, o.key)
    assert "delete_object" not in [op for op, _ in rec.calls]
    assert o.sidecar_key is not None and bucket.exists(o.sidecar_key)
    uploads = s3_raw.list_multipart_uploads(Bucket=bucket.bucket, Prefix=bucket.prefix).get("Uploads", [])
    assert not uploads, "the upload was aborted"
    good = isec.s3.Client(s3_raw, ring_for(o))
    if fail == "head_object":
        # The new object is in place; the sidecar is still there and a retry finishes.
        assert good.head_object(bucket.bucket, o.key).format == "isec"
        r = good.migrate(bucket.bucket, o.key)
        assert not r.migrated
    else:
        assert s3_raw.head_object(Bucket=bucket.bucket, Key=o.key)["ETag"] == before["ETag"]
        assert good.head_object(bucket.bucket, o.key).format == "legacy"
        assert sha(good.get_object(bucket.bucket, o.key)) == o.plaintext_sha256


def proxy_single_put(secret: str, pt: bytes) -> tuple[bytes, dict[str, str]]:
    """A single PUT as the previous proxy makes it: one AES-256-GCM seal (nonce || ct || tag)
    under a random DEK, the DEK AES-KWP-wrapped under SHA-256 of the secret (pyca's
    cryptography, independent of isec)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

    dek, nonce = os.urandom(32), os.urandom(12)
    body = nonce + AESGCM(dek).encrypt(nonce, pt, None)
    wrapped = aes_key_wrap_with_padding(hashlib.sha256(secret.encode()).digest(), dek)
    meta = {
        "isec": base64.b64encode(wrapped).decode(),
        "isec-kid": "AKIAPROXYBIGSEAL0001",
        "client-etag": hashlib.md5(pt).hexdigest(),
        "plaintext-size": str(len(pt)),
    }
    return body, meta


@pytest.mark.parametrize("workers", [1, 3])
def test_a_single_put_above_eight_mib_reads_whole_not_streamed(s3_raw: Any, bucket: Bucket, workers: int) -> None:
    """The proxy sealed single PUTs of up to 32 MiB as one seal. A whole read holds the
    object anyway and buffers the seal to verify it; a streamed read refuses a seal above
    8 MiB (limit_exceeded) rather than hold it or release unverified plaintext."""
    secret = "proxy-secret-big-seal"
    pt = os.urandom(9 * MIB + 5)
    body, meta = proxy_single_put(secret, pt)
    key = bucket.name(f"big-seal-{workers}.bin")
    bucket.put(key, body, meta)
    ring = isec.Keyring()
    ring.add_legacy_secret_string("AKIAPROXYBIGSEAL0001", secret)
    c = isec.s3.Client(s3_raw, ring, part_size=4 * MIB, max_workers=workers)
    assert c.get_object(bucket.bucket, key) == pt
    with pytest.raises(isec.IsecError) as e:
        b"".join(c.iter_object(bucket.bucket, key))
    assert e.value.code == "limit_exceeded"
    assert c.get_range(bucket.bucket, key, 9 * MIB, 9 * MIB + 5) == pt[9 * MIB :]
