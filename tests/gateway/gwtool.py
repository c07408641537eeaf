"""Small checks for the shell parts of scripts/test-gateway.sh that the AWS CLI, rclone and
s3cmd cannot make themselves: what the backend (Garage, not the gateway) holds, Garage's
request counters, and the ETag a client's upload must get.

    python gwtool.py etag FILE PART_SIZE       ETag S3 gives FILE uploaded in PART_SIZE parts
                                               (PART_SIZE 0: one PUT)
    python gwtool.py etag-parts FILE...        ETag of a multipart upload whose parts are FILEs
    python gwtool.py counters                  Garage's request counters per endpoint (JSON)
    python gwtool.py moved BEFORE AFTER        what moved between two `counters` outputs: one
                                               line "Endpoint +N" per counter that changed
    python gwtool.py backend-status KEY        HTTP status of a HEAD of KEY on the backend
    python gwtool.py backend-differs KEY FILE  exit 0 when the backend's bytes of KEY exist and
                                               differ from FILE (they are ciphertext)
    python gwtool.py backend-clean PREFIX      delete every backend object under PREFIX
    python gwtool.py fetch URL FILE            GET URL (a presigned one) into FILE; print the status

The backend is ISEC_S3_* (target/garage/env); the bucket GW_BUCKET.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def expected_etag(path: str, part_size: int) -> str:
    """MD5 of the bytes for a single PUT; MD5 of the parts' MD5s with "-N" for multipart."""
    with open(path, "rb") as f:
        if part_size == 0:
            return hashlib.md5(f.read()).hexdigest()
        digests = []
        while chunk := f.read(part_size):
            digests.append(hashlib.md5(chunk).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def counters() -> dict[str, float]:
    """api_s3_request_counter summed over its label sets, per api_endpoint."""
    with urllib.request.urlopen(os.environ["ISEC_S3_METRICS"], timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for m in re.finditer(r"^api_s3_request_counter\{([^}]*)\}\s+(\S+)$", text, re.M):
        ep = re.search(r'api_endpoint="(\w+)"', m.group(1))
        if ep:
            out[ep.group(1)] = out.get(ep.group(1), 0.0) + float(m.group(2))
    return out


def backend():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["ISEC_S3_ENDPOINT"],
        region_name=os.environ["ISEC_S3_REGION"],
        aws_access_key_id=os.environ["ISEC_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["ISEC_S3_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


def main(argv: list[str]) -> int:
    cmd = argv[0]
    bucket = os.environ.get("GW_BUCKET", "isec-gw")
    if cmd == "etag":
        print(expected_etag(argv[1], int(argv[2])))
    elif cmd == "etag-parts":
        digests = b"".join(hashlib.md5(open(p, "rb").read()).digest() for p in argv[1:])
        print(f"{hashlib.md5(digests).hexdigest()}-{len(argv) - 1}")
    elif cmd == "counters":
        print(json.dumps(counters()))
    elif cmd == "moved":
        before, after = json.loads(argv[1]), json.loads(argv[2])
        for k in sorted(set(before) | set(after)):
            d = after.get(k, 0) - before.get(k, 0)
            if d:
                print(f"{k} +{d:g}")
    elif cmd == "backend-status":
        try:
            backend().head_object(Bucket=bucket, Key=argv[1])
            print(200)
        except ClientError as e:
            print(e.response["ResponseMetadata"]["HTTPStatusCode"])
    elif cmd == "backend-differs":
        stored = backend().get_object(Bucket=bucket, Key=argv[1])["Body"].read()
        with open(argv[2], "rb") as f:
            plain = f.read()
        # Ciphertext never holds a run of the plaintext (the AEAD's keystream covers it all).
        if stored == plain or (len(plain) >= 64 and plain[:64] in stored):
            print(f"{argv[1]}: the backend holds the plaintext", file=sys.stderr)
            return 1
    elif cmd == "fetch":
        try:
            with urllib.request.urlopen(argv[1], timeout=30) as r:
                code, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, body = e.code, e.read()
        with open(argv[2], "wb") as f:
            f.write(body)
        print(code)
    elif cmd == "backend-clean":
        s3 = backend()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=argv[1]):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=argv[1]):
            for u in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
