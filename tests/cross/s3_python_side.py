"""The Python half of the Node <-> Python S3 test (s3_node_python.test.mjs): writes objects with
``isec.s3`` or reads the Node-written ones and checks them against the same deterministic
plaintext. Prints one JSON line with what it did.

    python s3_python_side.py write PREFIX
    python s3_python_side.py read PREFIX
    python s3_python_side.py tampered KEY   (must fail with authentication_failed)
"""

from __future__ import annotations

import json
import os
import sys

import boto3
from botocore.config import Config

import isec
import isec.s3

KEK = bytes(range(32))
KID = "cross-kek"
MIB = 1 << 20
# name -> plaintext length: a one-frame object and a three-part multipart object.
OBJECTS = {"single": 100_000, "multipart": 12 * MIB + 12_345}
PART_SIZE = 5 * MIB


def plaintext(n: int) -> bytes:
    """The pattern both languages generate: byte i is i mod 251."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def ranges(n: int) -> list[tuple[int, int]]:
    """First byte, last byte, a frame boundary straddle, a part boundary straddle, a middle run."""
    out = [(0, 1), (n - 1, n), (65536 - 7, 65536 + 7), (n // 3, n // 3 + 100_000)]
    if n > PART_SIZE:
        out.append((PART_SIZE - 10, PART_SIZE + 10))
    return out


def main() -> int:
    mode, prefix = sys.argv[1], sys.argv[2]
    env = os.environ
    s3 = boto3.client(
        "s3",
        endpoint_url=env["ISEC_S3_ENDPOINT"],
        region_name=env["ISEC_S3_REGION"],
        aws_access_key_id=env["ISEC_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["ISEC_S3_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = env["ISEC_CROSS_BUCKET"]
    ring = isec.Keyring()
    ring.add_kek(KID, KEK)
    client = isec.s3.Client(s3, ring, part_size=PART_SIZE)
    report: dict[str, object] = {"mode": mode}
    if mode == "tampered":
        try:
            client.get_object(bucket, prefix)
        except isec.IsecError as e:
            report["code"] = e.code
        else:
            report["code"] = None
        print(json.dumps(report))
        return 0
    for name, n in OBJECTS.items():
        key = f"{prefix}/{name}"
        want = plaintext(n)
        if mode == "write":
            put = client.put_object(bucket, key, want, metadata={"writer": "python"})
            report[name] = {"parts": put.parts}
        else:
            info = client.head_object(bucket, key)
            assert info.metadata.get("writer") == "node", info.metadata
            got = client.get_object(bucket, key)
            assert got == want, f"{key}: {len(got)} bytes differ from the expected {n}"
            checked = 0
            for a, b in ranges(n):
                part = client.get_range(bucket, key, a, b)
                assert part == want[a:b], f"{key}[{a}:{b}]"
                checked += 1
            report[name] = {"bytes": n, "ranges": checked}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
