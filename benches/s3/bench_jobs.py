"""Bucket jobs against the same work done by a bare boto3 loop, in one process and one run.

Not a test: prints a Markdown table of objects (or MB) per second for isec and for the bare
loop, and the ratio isec / bare.

  rotate     isec Client.rotate (rewrap every object of the prefix to the active key:
             HEAD, then a REPLACE self-copy pinned to the ETag, with the rewrapped envelope)
             vs the bare loop every tool that changes metadata must run: list the prefix,
             then for each key HEAD and CopyObject onto itself with MetadataDirective=REPLACE and the HEAD's metadata
             (pinned with CopySourceIfMatch). ISEC_BENCH_OBJECTS small objects (5000).
  reencrypt  isec Client.reencrypt (a new DEK for every object: pinned GET, verify and
             re-encrypt, multipart upload) vs list, then HEAD + GetObject + PutObject of the
             same bytes.
             ISEC_BENCH_REENCRYPT_MIB in objects of ISEC_BENCH_OBJECT_MIB (2048 in 64).

Same boto3 client, same concurrency (ISEC_BENCH_CONC, 16 for rotate; ISEC_BENCH_REENC_CONC, 4
for reencrypt), repetitions alternate which side goes first.

Environment: ISEC_S3_ENDPOINT, ISEC_S3_REGION, ISEC_S3_ACCESS_KEY_ID,
ISEC_S3_SECRET_ACCESS_KEY, ISEC_S3_BUCKET (scripts/garage.sh env --export).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

import isec
import isec.s3

MIB = 1 << 20
OBJECTS = int(os.environ.get("ISEC_BENCH_OBJECTS", "5000"))
CONC = int(os.environ.get("ISEC_BENCH_CONC", "16"))
REENC_MIB = int(os.environ.get("ISEC_BENCH_REENCRYPT_MIB", "2048"))
OBJECT_MIB = int(os.environ.get("ISEC_BENCH_OBJECT_MIB", "64"))
REENC_CONC = int(os.environ.get("ISEC_BENCH_REENC_CONC", "4"))
REPS = int(os.environ.get("ISEC_BENCH_REPS", "3"))
BUCKET = os.environ.get("ISEC_S3_BUCKET", "isec-test")


def boto(conc: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["ISEC_S3_ENDPOINT"],
        region_name=os.environ.get("ISEC_S3_REGION", "garage"),
        aws_access_key_id=os.environ["ISEC_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["ISEC_S3_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=conc + 4),
    )


def keys(s3: Any, prefix: str) -> list[str]:
    out: list[str] = []
    kw: dict[str, Any] = {}
    while True:
        r = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **kw)
        out += [c["Key"] for c in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            return out
        kw = {"ContinuationToken": r["NextContinuationToken"]}


def clean(s3: Any, prefix: str) -> None:
    ks = keys(s3, prefix)
    for i in range(0, len(ks), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in ks[i : i + 1000]]})


def bare_rewrite(s3: Any, key: str) -> None:
    h = s3.head_object(Bucket=BUCKET, Key=key)
    s3.copy_object(
        Bucket=BUCKET,
        Key=key,
        CopySource={"Bucket": BUCKET, "Key": key},
        CopySourceIfMatch=h["ETag"],
        MetadataDirective="REPLACE",
        Metadata=h["Metadata"],
    )


def bare_get_put(s3: Any, key: str) -> None:
    h = s3.head_object(Bucket=BUCKET, Key=key)
    body = s3.get_object(Bucket=BUCKET, Key=key, IfMatch=h["ETag"])["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=h["Metadata"])


def each(conc: int, op: Callable[[str], None], prefix: str, s3: Any) -> None:
    """Lists `prefix` and runs `op` on every key, `conc` at a time."""
    with ThreadPoolExecutor(conc) as pool:
        list(pool.map(op, keys(s3, prefix)))


def pair(rep: int, work: float, isec_run: Callable[[], None], bare_run: Callable[[], None],
         isec_rates: list[float], bare_rates: list[float]) -> None:
    """Times both sides once (`work` per second), the first side alternating with `rep`."""
    sides = [(isec_run, isec_rates), (bare_run, bare_rates)]
    for run, rates in sides if rep % 2 == 0 else sides[::-1]:
        t = time.perf_counter()
        run()
        rates.append(work / (time.perf_counter() - t))


def bench_rotate(s3: Any) -> tuple[list[float], list[float]]:
    prefix = f"bench-jobs-{uuid.uuid4().hex[:8]}/"
    k1, k2 = isec.generate_kek(), isec.generate_kek()
    writer = isec.Keyring()
    writer.add_kek("k1", k1)
    w = isec.s3.Client(s3, writer)
    with ThreadPoolExecutor(CONC) as pool:
        list(pool.map(lambda i: w.put_object(BUCKET, f"{prefix}{i:06d}", os.urandom(1024)), range(OBJECTS)))
    isec_rates, bare_rates = [], []
    try:
        for rep in range(REPS):
            # Each isec run rotates every object to the other key.
            active, old = ("k2", "k1") if rep % 2 == 0 else ("k1", "k2")
            ring = isec.Keyring()
            ring.add_kek(old, k1 if old == "k1" else k2, "decrypt_only")
            ring.add_kek(active, k1 if active == "k1" else k2, "active")
            client = isec.s3.Client(s3, ring)

            def isec_rotate() -> None:
                s = client.rotate(BUCKET, prefix, concurrency=CONC).run()
                assert s["done"]["objects"] == OBJECTS and s["failed"]["objects"] == 0, s["failed_by_code"]

            # The same work as the job's: list the prefix, then HEAD and copy each key.
            pair(rep, OBJECTS, isec_rotate, lambda: each(CONC, lambda k: bare_rewrite(s3, k), prefix, s3),
                 isec_rates, bare_rates)
    finally:
        clean(s3, prefix)
    return isec_rates, bare_rates


def bench_reencrypt(s3: Any) -> tuple[list[float], list[float]]:
    prefix = f"bench-reenc-{uuid.uuid4().hex[:8]}/"
    ring = isec.Keyring()
    ring.add_kek("k1", isec.generate_kek())
    client = isec.s3.Client(s3, ring, part_size=8 * MIB, max_workers=2)
    n = max(1, REENC_MIB // OBJECT_MIB)
    for i in range(n):
        client.put_object(BUCKET, f"{prefix}{i:04d}", os.urandom(OBJECT_MIB * MIB))
    total_mb = n * OBJECT_MIB * MIB / 1e6
    isec_rates, bare_rates = [], []
    try:
        for rep in range(REPS):

            def isec_reencrypt() -> None:
                s = client.reencrypt(BUCKET, prefix, concurrency=REENC_CONC).run()
                assert s["done"]["objects"] == n and s["failed"]["objects"] == 0, s["failed_by_code"]

            pair(rep, total_mb, isec_reencrypt, lambda: each(REENC_CONC, lambda k: bare_get_put(s3, k), prefix, s3),
                 isec_rates, bare_rates)
    finally:
        clean(s3, prefix)
    return isec_rates, bare_rates


def row(name: str, unit: str, isec_rates: list[float], bare_rates: list[float]) -> str:
    a, b = statistics.median(isec_rates), statistics.median(bare_rates)
    return f"| {name} | {a:,.0f} {unit} | {b:,.0f} {unit} | **{a / b:.2f}x** |"


def main() -> None:
    s3 = boto(max(CONC, REENC_CONC))
    print(f"python {sys.version.split()[0]}, isec {isec.__version__}, {os.cpu_count()} CPUs, bucket {BUCKET}")
    print("| job | isec | bare boto3 loop | isec / bare |")
    print("| --- | --- | --- | --- |")
    r = bench_rotate(s3)
    print(row(f"rotate {OBJECTS} x 1 KiB, concurrency {CONC}", "objects/s", *r), flush=True)
    r = bench_reencrypt(s3)
    print(row(f"reencrypt {REENC_MIB} MiB in {OBJECT_MIB} MiB objects, concurrency {REENC_CONC}", "MB/s", *r))


if __name__ == "__main__":
    main()
