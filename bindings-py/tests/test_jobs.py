"""Bucket jobs against Garage: a prefix of objects of every class (isec under an old and the
active key, single and multipart, plaintext, the previous proxy's objects of every layout
with their sidecars) rotated, migrated and re-encrypted; stopped and resumed from the saved
state; paused, resumed and re-rated from another thread; a dry run that writes nothing."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import isec
import isec.s3

from .test_s3_legacy import LAYOUTS, proxy_single_put, vector

MIB = 1 << 20
OLD, NEW = "kek-old", "kek-new"
LEGACY_SECRET = "proxy-secret-for-jobs"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Fixture:
    """The prefix's objects, with what each must read back as."""

    def __init__(self, s3: Any, bucket: str, shared: Path | None) -> None:
        self.s3, self.bucket = s3, bucket
        self.prefix = f"job-{uuid.uuid4().hex[:10]}/"
        self.old, self.new = isec.generate_kek(), isec.generate_kek()
        self.expected: dict[str, tuple[str, dict[str, str]]] = {}
        self.shared = shared
        self.legacy_keys: list[str] = []

    def writer(self, kid: str) -> isec.s3.Client:
        r = isec.Keyring()
        r.add_kek(kid, self.old if kid == OLD else self.new)
        return isec.s3.Client(self.s3, r, part_size=5 * MIB, max_workers=2)

    def ring(self) -> isec.Keyring:
        """The job's keyring: the old key decrypt-only, the new one active, and the previous
        proxy's secrets."""
        r = isec.Keyring()
        r.add_kek(OLD, self.old, "decrypt_only")
        r.add_kek(NEW, self.new, "active")
        r.add_legacy_secret_string("AKIAPROXYBIGSEAL0001", LEGACY_SECRET)
        if self.shared is not None:
            for layout in LAYOUTS:
                o = vector(self.shared, layout, "x")
                if o.kid not in {k.kid for k in r.keys()}:
                    r.add_legacy_secret_string(o.kid, o.secret)
        return r

    def client(self, **kw: Any) -> isec.s3.Client:
        return isec.s3.Client(self.s3, self.ring(), part_size=5 * MIB, max_workers=2, allow_plaintext=True, **kw)

    def fill(
        self, n_old: int = 40, n_new: int = 6, n_plain: int = 6, n_legacy: int = 4, multipart: bool = True, vectors: bool = True
    ) -> None:
        old, new = self.writer(OLD), self.writer(NEW)
        for i in range(n_old):
            self._put(old, f"old/{i:04d}", 100 + i * 37)
        for i in range(n_new):
            self._put(new, f"new/{i:04d}", 1000 + i)
        if multipart:
            self._put(old, "old/multipart", 11 * MIB + 5)
        for i in range(n_plain):
            key = f"{self.prefix}plain/{i}"
            body = f"plain {i}".encode()
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata={"note": "plain"})
            self.expected[key] = (sha(body), {"note": "plain"})
        for i in range(n_legacy):
            key = f"{self.prefix}legacy/single-{i}"
            pt = f"legacy object {i} ".encode() * (i + 3)
            body, meta = proxy_single_put(LEGACY_SECRET, pt)
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata={**meta, "owner": "p"})
            self.expected[key] = (sha(pt), {"owner": "p"})
            self.legacy_keys.append(key)
        if self.shared is not None and vectors:
            for layout in LAYOUTS:
                key = f"{self.prefix}legacy/{layout}"
                o = vector(self.shared, layout, key)
                if o.sidecar_key is not None:
                    self.s3.put_object(Bucket=self.bucket, Key=o.sidecar_key, Body=o.sidecar or b"")
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=o.body, Metadata=o.metadata)
                user = {k: v for k, v in o.metadata.items() if k.lower() in ("owner",)}
                self.expected[key] = (o.plaintext_sha256, user)
                self.legacy_keys.append(key)

    def _put(self, c: isec.s3.Client, suffix: str, n: int) -> None:
        key = self.prefix + suffix
        body = (suffix.encode() + b"|") * (n // (len(suffix) + 1) + 1)
        body = body[:n]
        c.put_object(self.bucket, key, body, metadata={"owner": suffix})
        self.expected[key] = (sha(body), {"owner": suffix})

    def keys(self) -> list[str]:
        out: list[str] = []
        token: dict[str, Any] = {}
        while True:
            r = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, **token)
            out += [c["Key"] for c in r.get("Contents", [])]
            if not r.get("IsTruncated"):
                return out
            token = {"ContinuationToken": r["NextContinuationToken"]}

    def etags(self) -> dict[str, str]:
        return {k: self.s3.head_object(Bucket=self.bucket, Key=k)["ETag"] for k in self.keys()}

    def check_reads(self, c: isec.s3.Client, *, kids: set[str | None]) -> dict[str, str | None]:
        """Every object reads back its plaintext and user metadata; returns kid by key."""
        found: dict[str, str | None] = {}
        for key, (digest, user) in self.expected.items():
            info = c.head_object(self.bucket, key)
            assert sha(c.get_object(self.bucket, key)) == digest, key
            for k, v in user.items():
                assert info.metadata.get(k) == v, (key, k, info.metadata)
            found[key] = info.kid if info.format == "isec" else info.format
            assert found[key] in kids, (key, found[key])
        return found

    def clean(self) -> None:
        for key in self.keys():
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        for c in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=isec.legacy_sidecar_key(self.prefix).removesuffix(".meta")).get("Contents", []):
            self.s3.delete_object(Bucket=self.bucket, Key=c["Key"])
        if self.shared is not None:
            for layout in LAYOUTS:
                o = vector(self.shared, layout, self.prefix + "legacy/" + layout)
                if o.sidecar_key is not None:
                    self.s3.delete_object(Bucket=self.bucket, Key=o.sidecar_key)


@pytest.fixture
def fx(s3_raw: Any, s3_bucket: str, s3proxy: Path) -> Iterator[Fixture]:
    f = Fixture(s3_raw, s3_bucket, s3proxy)
    yield f
    f.clean()


def counts(status: dict[str, Any], name: str) -> int:
    return int(status[name]["objects"])


def test_rotate_rewraps_the_old_key_objects_and_moves_no_bytes(fx: Fixture, tmp_path: Path) -> None:
    fx.fill()
    c = fx.client()
    before = fx.etags()
    n_old = sum(1 for k in fx.expected if k.startswith(fx.prefix + "old/"))
    state = tmp_path / "rotate.json"
    job = c.rotate(fx.bucket, fx.prefix, state_path=state, concurrency=6)
    s = job.run()
    assert s["result"] == "done"
    assert counts(s, "done") == n_old
    assert s["done_by_task"]["rewrap"]["objects"] == n_old
    assert s["moved_bytes"] == 0
    assert counts(s, "listed") == counts(s, "done") + counts(s, "skipped") + counts(s, "failed")
    assert s["left"]["objects"] == 0
    assert s["by_kid"][OLD]["needs_rewrap"]["objects"] == n_old
    assert s["skipped_by_reason"]["needs_reencrypt"]["objects"] == len(fx.legacy_keys)
    assert s["skipped_by_reason"]["plaintext"]["objects"] == 6
    found = fx.check_reads(c, kids={NEW, "plaintext", "legacy"})
    assert not any(v == OLD for v in found.values())
    # A rewrap is a self-copy: single-part bodies (and so their ETags) stay as they were.
    after = fx.etags()
    assert all(after[k] == before[k] for k in before if "multipart" not in k)
    saved = json.loads(state.read_text())
    assert saved["format"] == "isec-bucket-job/1" and saved["kind"] == "rotate"
    assert len(state.read_bytes()) < 16 * 1024

    # Run again from the same state: nothing left. A fresh scan finds nothing on the old key.
    assert c.rotate(fx.bucket, fx.prefix, state_path=state).run()["done"]["objects"] == n_old
    scan = c.scan(fx.bucket, fx.prefix).run()
    assert "needs_rewrap" not in scan["by_class"]
    assert scan["by_class"]["current"]["objects"] == n_old + 6
    assert fx.etags() == after, "a scan writes nothing"


def test_migrate_then_reencrypt_keeps_every_plaintext(fx: Fixture) -> None:
    fx.fill(n_old=10, n_new=3, n_plain=3, n_legacy=3, multipart=False)
    c = fx.client()
    s = c.migrate_bucket(fx.bucket, fx.prefix, concurrency=4).run()
    assert s["result"] == "done"
    assert s["done_by_task"]["migrate"]["objects"] == len(fx.legacy_keys)
    assert s["moved_bytes"] > 0
    fx.check_reads(c, kids={OLD, NEW, "plaintext"})
    for key in fx.legacy_keys:
        if not key.endswith("/staged"):
            assert not any(k.startswith(isec.legacy_sidecar_key(key)) for k in fx.s3.list_objects_v2(
                Bucket=fx.bucket, Prefix=isec.legacy_sidecar_key(key)).get("Contents", [])), key

    envelopes = {k: fx.s3.head_object(Bucket=fx.bucket, Key=k)["Metadata"].get("isec") for k in fx.expected}
    s = c.reencrypt(fx.bucket, fx.prefix, concurrency=4).run()
    encrypted = [k for k, v in envelopes.items() if v is not None]
    assert s["done"]["objects"] == len(encrypted)
    assert s["moved_bytes"] == s["done"]["bytes"]
    for k in encrypted:
        assert fx.s3.head_object(Bucket=fx.bucket, Key=k)["Metadata"]["isec"] != envelopes[k], f"{k}: a new DEK"
    fx.check_reads(c, kids={NEW, "plaintext"})


def test_a_stopped_job_resumes_from_its_state_and_does_each_object_once(fx: Fixture, tmp_path: Path) -> None:
    fx.fill(n_old=30, n_new=0, n_plain=2, n_legacy=0, multipart=False, vectors=False)
    c = fx.client()
    state = tmp_path / "job.json"
    job = c.reencrypt(fx.bucket, fx.prefix, state_path=state, concurrency=2, objects_per_second=20)

    def stop_soon() -> None:
        while job.status()["done"]["objects"] < 8:
            time.sleep(0.02)
        job.stop()

    t = threading.Thread(target=stop_soon)
    t.start()
    first = job.run()
    t.join()
    assert first["result"] == "stopped"
    assert 8 <= first["done"]["objects"] < 30
    envelopes = {k: fx.s3.head_object(Bucket=fx.bucket, Key=k)["Metadata"].get("isec") for k in fx.expected}

    second = c.reencrypt(fx.bucket, fx.prefix, state_path=state, concurrency=4).run()
    assert second["result"] == "done"
    assert second["done"]["objects"] == 30, "counted across both runs, each object once"
    changed = [k for k in fx.expected if fx.s3.head_object(Bucket=fx.bucket, Key=k)["Metadata"].get("isec") != envelopes[k]]
    assert len(changed) == 30 - first["done"]["objects"], "the second run redid nothing the first had done"
    fx.check_reads(c, kids={NEW, "plaintext"})
    with pytest.raises(ValueError):
        c.rotate(fx.bucket, fx.prefix, state_path=state)


def test_pause_resume_and_rate_from_another_thread(fx: Fixture) -> None:
    fx.fill(n_old=40, n_new=0, n_plain=0, n_legacy=0, multipart=False, vectors=False)
    c = fx.client()
    job = c.rotate(fx.bucket, fx.prefix, concurrency=4, objects_per_second=5)
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(job.run()))
    t.start()
    time.sleep(1.5)
    slow = job.status()["done"]["objects"]
    assert slow <= 15, f"{slow} objects in 1.5 s at 5 a second (and a one-second burst)"
    job.pause()
    time.sleep(0.5)
    paused = job.status()
    assert paused["paused"] and paused["in_flight"] == 0
    time.sleep(0.5)
    assert job.status()["done"]["objects"] == paused["done"]["objects"], "nothing ran while paused"
    job.set_rate(objects_per_second=0)
    job.resume()
    t.join(timeout=60)
    assert not t.is_alive()
    assert out["result"] == "done" and out["done"]["objects"] == 40
    assert out["limits"]["objects_per_second"] == 0


def test_a_dry_run_counts_and_writes_nothing(fx: Fixture) -> None:
    fx.fill(n_old=12, n_new=2, n_plain=2, n_legacy=2, multipart=False)
    c = fx.client()
    before = fx.etags()
    s = c.reencrypt(fx.bucket, fx.prefix, dry_run=True).run()
    assert s["planned"]["objects"] == 12 + 2 + len(fx.legacy_keys)
    assert s["done"]["objects"] == 0
    assert fx.etags() == before


def proxied(s3_env: dict[str, str], endpoint: str) -> Any:
    """A boto3 client through the fault proxy that makes one attempt per request, so every
    injected fault reaches the job, and gives up on an answer after one second."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=s3_env.get("ISEC_S3_REGION", "garage"),
        aws_access_key_id=s3_env["ISEC_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["ISEC_S3_SECRET_ACCESS_KEY"],
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=2,
            read_timeout=1,
        ),
    )


def test_faults_slow_the_job_but_lose_nothing(fx: Fixture, s3_env: dict[str, str]) -> None:
    from .faults import FaultProxy

    fx.fill(n_old=24, n_new=2, n_plain=2, n_legacy=3, multipart=False, vectors=False)
    proxy = FaultProxy(
        s3_env["ISEC_S3_ENDPOINT"], slowdown=0.06, internal=0.04, reset_before=0.04, reset_after=0.03, lost_answer=0.02
    )
    try:
        c = isec.s3.Client(proxied(s3_env, proxy.endpoint), fx.ring(), part_size=5 * MIB, max_workers=2, part_retries=0)
        retries = {"max_attempts": 40, "backoff_ms": 10, "backoff_max_ms": 200}
        rotated = c.rotate(fx.bucket, fx.prefix, concurrency=4, **retries).run()
        assert rotated["result"] == "done" and rotated["failed"]["objects"] == 0, rotated["failed_by_code"]
        assert rotated["done"]["objects"] == 24
        reenc = c.reencrypt(fx.bucket, fx.prefix, concurrency=4, **retries).run()
        assert reenc["result"] == "done" and reenc["failed"]["objects"] == 0, reenc["failed_by_code"]
        assert reenc["done"]["objects"] == 24 + 2 + 3
        assert all(proxy.injected[k] > 0 for k in ("slowdown", "internal", "reset_before", "reset_after")), proxy.injected

        # A failure a retry would only repeat is reported with its key and code.
        victim = fx.prefix + "old/0003"
        proxy.deny = [victim]
        proxy.chances = []
        fx.writer(OLD).put_object(fx.bucket, victim, b"again under the old key", metadata={"owner": "old/0003"})
        fx.expected[victim] = (sha(b"again under the old key"), {"owner": "old/0003"})
        denied = c.rotate(fx.bucket, fx.prefix, concurrency=4, **retries).run()
        assert denied["failed"]["objects"] == 1
        assert denied["failed_by_code"] == {"AccessDenied": {"objects": 1, "bytes": denied["failed"]["bytes"]}}
        assert [(f["key"], f["code"], f["stage"]) for f in denied["failures"]] == [(victim, "AccessDenied", "rewrap")]
    finally:
        proxy.close()
    found = fx.check_reads(fx.client(), kids={NEW, OLD, "plaintext"})
    assert [k for k, kid in found.items() if kid == OLD] == [victim]


def test_writers_during_a_job_keep_their_data(fx: Fixture) -> None:
    """Objects overwritten or deleted by another client while a re-encryption runs end with
    the writer's data (or stay deleted), never with the job's re-encrypted older copy."""
    fx.fill(n_old=40, n_new=0, n_plain=0, n_legacy=0, multipart=False, vectors=False)
    c = fx.client()
    job = c.reencrypt(fx.bucket, fx.prefix, concurrency=4, objects_per_second=40)
    writer = fx.writer(OLD)
    keys = sorted(fx.expected)
    written: dict[str, bytes] = {}
    deleted: set[str] = set()
    out: dict[str, Any] = {}
    t = threading.Thread(target=lambda: out.update(job.run()))
    t.start()
    for i, key in enumerate(keys[::3]):
        time.sleep(0.02)
        if i % 4 == 3:
            fx.s3.delete_object(Bucket=fx.bucket, Key=key)
            deleted.add(key)
            written.pop(key, None)
        else:
            body = f"writer's version {i}".encode()
            writer.put_object(fx.bucket, key, body, metadata={"owner": "writer"})
            written[key] = body
            deleted.discard(key)
    t.join(timeout=120)
    assert not t.is_alive() and out["result"] == "done", out.get("failed_by_code")
    for key in deleted:
        with pytest.raises(Exception) as e:
            fx.s3.head_object(Bucket=fx.bucket, Key=key)
        assert "404" in str(e.value) or "Not Found" in str(e.value), key
    for key, body in written.items():
        assert c.get_object(fx.bucket, key) == body, f"{key}: the writer's data"
    assert out["failed"]["objects"] == 0


class _Crash(BaseException):
    """Stands for the process dying: nothing in the job catches it."""


class _Parts:
    """The job's S3 client with UploadPart watched: which part numbers went out, and a fault
    for one part number (raised instead of sending it)."""

    def __init__(self, s3: Any, fail_part: int | None = None, fault: BaseException | None = None) -> None:
        self._s3, self.fail_part, self.fault = s3, fail_part, fault
        self.sent: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def upload_part(self, **kw: Any) -> Any:
        if kw["PartNumber"] == self.fail_part and self.fault is not None:
            raise self.fault
        self.sent.append(int(kw["PartNumber"]))
        return self._s3.upload_part(**kw)


def _open_uploads(fx: Fixture, key: str) -> list[str]:
    r = fx.s3.list_multipart_uploads(Bucket=fx.bucket, Prefix=key)
    return [u["UploadId"] for u in r.get("Uploads", []) if u["Key"] == key]


def test_a_reencryption_cut_mid_upload_resumes_at_its_last_stored_part(fx: Fixture, tmp_path: Path) -> None:
    """SPEC.md §13.3: a job killed while it uploads an object's new version resumes from the
    state's checkpoint: ListParts shows the parts stored, only the later ones are written
    again (under fresh nonces), the same upload completes, and the object reads back."""
    fx.fill(n_old=0, n_new=0, n_plain=0, n_legacy=0, multipart=False, vectors=False)
    fx._put(fx.writer(OLD), "big", 21 * MIB + 7)
    key = fx.prefix + "big"
    state = tmp_path / "job.json"
    cut = _Parts(fx.s3, fail_part=4, fault=_Crash())
    c = isec.s3.Client(cut, fx.ring(), part_size=5 * MIB, max_workers=1)
    with pytest.raises(_Crash):
        c.reencrypt(fx.bucket, fx.prefix, state_path=state).run()
    assert cut.sent[:3] == [1, 2, 3]
    saved = json.loads(state.read_text())
    [held] = saved["in_flight"]
    assert held["key"] == key and held["checkpoint"]
    [upload] = _open_uploads(fx, key)
    assert fx.s3.head_object(Bucket=fx.bucket, Key=key)["Metadata"]["isec"], "the original is untouched"

    again = _Parts(fx.s3)
    s = isec.s3.Client(again, fx.ring(), part_size=5 * MIB, max_workers=1).reencrypt(
        fx.bucket, fx.prefix, state_path=state
    ).run()
    assert s["result"] == "done" and s["done"]["objects"] == 1
    # Parts 1 and 2 (at least) were kept from the first run; the rest written once more.
    assert again.sent and again.sent[0] >= 3 and again.sent == list(range(again.sent[0], 6)), again.sent
    assert _open_uploads(fx, key) == []
    assert fx.client().head_object(fx.bucket, key).kid == NEW
    fx.check_reads(fx.client(), kids={NEW})
    assert upload not in _open_uploads(fx, key)


def test_a_partial_upload_that_fails_for_good_is_aborted(fx: Fixture) -> None:
    """A task that saved a checkpoint and then fails for good (here a 403 on a part) leaves no
    upload behind: the job hands the checkpoint back for abort, and reports the failure."""
    from botocore.exceptions import ClientError

    fx.fill(n_old=0, n_new=0, n_plain=0, n_legacy=0, multipart=False, vectors=False)
    fx._put(fx.writer(OLD), "big", 16 * MIB)
    key = fx.prefix + "big"
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "UploadPart")
    cut = _Parts(fx.s3, fail_part=3, fault=denied)
    s = isec.s3.Client(cut, fx.ring(), part_size=5 * MIB, max_workers=1).reencrypt(fx.bucket, fx.prefix).run()
    assert s["failed_by_code"] == {"AccessDenied": {"objects": 1, "bytes": s["failed"]["bytes"]}}
    assert cut.sent == [1, 2]
    assert _open_uploads(fx, key) == []
    fx.check_reads(fx.client(), kids={OLD})


KILLED_JOB = """
import sys, isec, isec.s3, boto3
from botocore.config import Config
endpoint, region, key_id, secret, bucket, prefix, state, old, new = sys.argv[1:]
ring = isec.Keyring()
ring.add_kek("kek-old", bytes.fromhex(old), "decrypt_only")
ring.add_kek("kek-new", bytes.fromhex(new), "active")
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=key_id,
                  aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}))
c = isec.s3.Client(s3, ring, part_size=5 << 20, max_workers=2)
c.reencrypt(bucket, prefix, state_path=state, concurrency=4, objects_per_second=10).run()
"""


def test_a_job_killed_at_any_moment_reencrypts_each_object_once(fx: Fixture, s3_env: dict[str, str], tmp_path: Path) -> None:
    """SIGKILL, not a stop: a task is in the saved state before it writes, so the resumed job
    takes up or counts every object the killed one touched, and re-encrypts none twice (each
    in-place re-encryption completes one multipart upload: the server's count says how many)."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    def completes() -> float:
        with urllib.request.urlopen(s3_env["ISEC_S3_METRICS"], timeout=5) as r:
            text = r.read().decode()
        m = re.search(r'^api_s3_request_counter\{api_endpoint="CompleteMultipartUpload"\} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    fx.fill(n_old=60, n_new=0, n_plain=0, n_legacy=0, multipart=False, vectors=False)
    state = tmp_path / "job.json"
    args = [s3_env["ISEC_S3_ENDPOINT"], s3_env.get("ISEC_S3_REGION", "garage"), s3_env["ISEC_S3_ACCESS_KEY_ID"]]
    args += [s3_env["ISEC_S3_SECRET_ACCESS_KEY"], fx.bucket, fx.prefix, str(state), fx.old.hex(), fx.new.hex()]
    before = completes()
    kills = 0
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", KILLED_JOB, *args])
        time.sleep(1.2 + 0.3 * kills)
        if child.poll() is not None:
            break
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
    assert kills >= 2, "the job ended before it could be killed twice"
    s = fx.client().reencrypt(fx.bucket, fx.prefix, state_path=state, concurrency=4).run()
    assert s["result"] == "done" and s["failed"]["objects"] == 0, s
    assert s["done"]["objects"] == 60, "every object counted once across the runs"
    done = completes() - before
    assert done == 60, f"{done} uploads completed for 60 objects: some object was re-encrypted twice"
    fx.check_reads(fx.client(), kids={NEW})
