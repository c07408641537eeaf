"""A bucket prefix of more than 2,000 objects of every class, through every bucket job in
turn against Garage: scan, rotate (with Garage's request counters showing it uploads and
downloads no object), migrate, re-encrypt, scan again; afterwards every object reads back its
plaintext and user metadata."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import isec
import isec.s3

from .test_jobs import LEGACY_SECRET, MIB, NEW, OLD, Fixture, sha
from .test_s3 import counters
from .test_s3_legacy import proxy_single_put

N_OLD, N_NEW, N_PLAIN, N_LEGACY, N_TABLE = 1150, 300, 300, 200, 40


@pytest.fixture
def fx(s3_raw: Any, s3_bucket: str, s3proxy: Path) -> Iterator[Fixture]:
    f = Fixture(s3_raw, s3_bucket, s3proxy)
    yield f
    f.clean()


def fill_large(fx: Fixture) -> dict[str, int]:
    old, new = fx.writer(OLD), fx.writer(NEW)
    old_ring = isec.Keyring()
    old_ring.add_kek(OLD, fx.old)

    def isec_obj(args: tuple[isec.s3.Client, str, int]) -> None:
        c, suffix, n = args
        fx._put(c, suffix, n)

    def plain(i: int) -> None:
        key = f"{fx.prefix}plain/{i:04d}"
        body = f"plain {i}".encode() * 3
        fx.s3.put_object(Bucket=fx.bucket, Key=key, Body=body, Metadata={"note": "plain"})
        fx.expected[key] = (sha(body), {"note": "plain"})

    def legacy(i: int) -> None:
        key = f"{fx.prefix}legacy/{i:04d}"
        pt = f"legacy {i} ".encode() * (1 + i % 7)
        body, meta = proxy_single_put(LEGACY_SECRET, pt)
        fx.s3.put_object(Bucket=fx.bucket, Key=key, Body=body, Metadata={**meta, "owner": "p"})
        fx.expected[key] = (sha(pt), {"owner": "p"})
        fx.legacy_keys.append(key)

    def table(i: int) -> None:
        # A relay's object: one part of any size and a MAC'd segment table, inline in the
        # metadata for half of them and in a sidecar object for the others.
        key = f"{fx.prefix}table/{i:04d}"
        env, okey = old_ring.create_envelope(table=True)
        data = hashlib.sha256(key.encode()).digest() * (20 + i)
        body = isec.encrypt_part(okey, 1, False, data)
        encoded = isec.SegmentTable([(1, len(data), body[:7])]).encode(okey)
        meta = {"isec": env.to_text(), "isec-kid": env.kid, "owner": f"table/{i:04d}"}
        if i % 2:
            meta["isec-table"] = base64.urlsafe_b64encode(encoded).rstrip(b"=").decode()
        mpu = fx.s3.create_multipart_upload(Bucket=fx.bucket, Key=key, Metadata=meta)
        r = fx.s3.upload_part(Bucket=fx.bucket, Key=key, UploadId=mpu["UploadId"], PartNumber=1, Body=body)
        fx.s3.complete_multipart_upload(
            Bucket=fx.bucket, Key=key, UploadId=mpu["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]},
        )
        if not i % 2:
            fx.s3.put_object(Bucket=fx.bucket, Key=isec.table_sidecar_key(key), Body=encoded)
        fx.expected[key] = (sha(data), {"owner": f"table/{i:04d}"})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(isec_obj, [(old, f"old/{i:05d}", 64 + i % 500) for i in range(N_OLD)]))
        list(pool.map(isec_obj, [(new, f"new/{i:05d}", 64 + i % 300) for i in range(N_NEW)]))
        list(pool.map(plain, range(N_PLAIN)))
        list(pool.map(legacy, range(N_LEGACY)))
        list(pool.map(table, range(N_TABLE)))
    fx._put(old, "old/multipart-a", 11 * MIB + 7)
    fx._put(old, "old/multipart-b", 6 * MIB)
    fx.fill(n_old=0, n_new=0, n_plain=0, n_legacy=0, multipart=False, vectors=True)
    return {"old": N_OLD + 2 + N_TABLE, "legacy": len(fx.legacy_keys)}


def test_two_thousand_objects_of_every_class_through_every_job(fx: Fixture, s3_env: dict[str, str]) -> None:
    want = fill_large(fx)
    total = len(fx.keys())
    assert total >= 2000, total
    c = fx.client()

    scan = c.scan(fx.bucket, fx.prefix, concurrency=16).run()
    assert scan["listed"]["objects"] == total
    by_class = {k: v["objects"] for k, v in scan["by_class"].items()}
    assert by_class["needs_rewrap"] == want["old"]
    assert by_class["current"] == N_NEW
    assert by_class["plaintext"] == N_PLAIN
    assert by_class["needs_reencrypt"] == want["legacy"]
    assert by_class["sidecar"] == total - sum(v for k, v in by_class.items() if k != "sidecar")

    before = counters(s3_env)
    rotated = c.rotate(fx.bucket, fx.prefix, concurrency=16).run()
    after = counters(s3_env)
    assert rotated["done"]["objects"] == want["old"] and rotated["failed"]["objects"] == 0
    assert rotated["moved_bytes"] == 0
    # Metadata only: nothing uploaded; the only reads are the table sidecars and the
    # previous proxy's sidecars that opening an object needs.
    assert after["PutObject"] - before["PutObject"] == 0
    assert after["UploadPart"] - before["UploadPart"] == 0
    assert after["GetObject"] - before["GetObject"] <= N_TABLE
    assert after["CopyObject"] - before["CopyObject"] == want["old"]

    migrated = c.migrate_bucket(fx.bucket, fx.prefix, concurrency=16).run()
    assert migrated["done"]["objects"] == want["legacy"] and migrated["failed"]["objects"] == 0

    encrypted = want["old"] + N_NEW + want["legacy"]
    reenc = c.reencrypt(fx.bucket, fx.prefix, concurrency=16).run()
    assert reenc["done"]["objects"] == encrypted and reenc["failed"]["objects"] == 0, (reenc["failed_by_code"], reenc["skipped_by_reason"], reenc["failures"][:3])

    final = c.scan(fx.bucket, fx.prefix, concurrency=16).run()
    assert {k: v["objects"] for k, v in final["by_class"].items() if k != "sidecar"} == {
        "current": encrypted,
        "plaintext": N_PLAIN,
    }
    assert list(final["by_kid"]) == ["-", NEW]

    def read(key: str) -> None:
        digest, user = fx.expected[key]
        assert sha(c.get_object(fx.bucket, key)) == digest, key
        meta = c.head_object(fx.bucket, key).metadata
        assert all(meta.get(k) == v for k, v in user.items()), key

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(read, sorted(fx.expected)))

