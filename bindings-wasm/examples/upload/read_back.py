#!/usr/bin/env python3
"""Reads an object the upload example stored, with the Python package (isec).

The browser encrypted and uploaded it to the recipient's public key; a Python service that
holds the recipient's private key reads it back: a plain SigV4 GET (scripts/s3sig.py,
standard library only) of the stored ciphertext and its metadata, the envelope opened with the
keyring file holding the private key (the one the example server wrote), then the whole
object decrypted (one-shot and streamed) and byte ranges decrypted from ranged GETs of only
their frames.

    read_back.py [--env-file target/garage/env] --bucket B --key K --keyring FILE \\
        --out DIR [--range START:END ...]

S3 settings: the ISEC_S3_* variables (scripts/garage.sh env), from the environment or
--env-file.

Writes DIR/whole.bin, DIR/stream.bin and DIR/range-START-END.bin, and prints a JSON
summary; the caller compares the files with the original. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import isec

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../scripts"))
import s3sig  # noqa: E402


def parse_range(s: str) -> tuple[int, int]:
    a, b = s.split(":")
    return int(a), int(b)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env-file")
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--keyring", required=True, help="keyring file with the recipient's private key")
    ap.add_argument("--out", required=True)
    ap.add_argument("--range", action="append", type=parse_range, default=[])
    args = ap.parse_args(argv)

    s3 = s3sig.S3.from_env(s3sig.load_env(args.env_file))
    obj = s3.request("GET", args.bucket, args.key, what="GetObject")
    body = obj.body
    meta = obj.headers.get(f"x-amz-meta-{isec.META_ENVELOPE}")
    if meta is None:
        raise SystemExit(f"read_back: {args.key} has no x-amz-meta-{isec.META_ENVELOPE}")
    envelope = isec.Envelope.decode_text(meta)

    ring = isec.Keyring.from_file(args.keyring)
    key = ring.open(envelope)

    os.makedirs(args.out, exist_ok=True)
    whole = isec.decrypt(key, body)
    with open(os.path.join(args.out, "whole.bin"), "wb") as f:
        f.write(whole)
    # The streaming path, in chunks that do not line up with frames or parts.
    with open(os.path.join(args.out, "stream.bin"), "wb") as f:
        chunks = (body[i : i + 1_000_003] for i in range(0, len(body), 1_000_003))
        for piece in isec.decrypt_chunks(key, chunks):
            f.write(piece)

    shape = isec.shape_for(envelope, len(body))
    ranges = []
    for a, b in args.range:
        plan = shape.map_range(a, b)
        fetched = []

        def fetch(ct_start: int, ct_end: int, plan=plan, fetched=fetched) -> bytes:
            # Only the frames holding the range: one ranged GET.
            assert (ct_start, ct_end) == (plan.ct_start, plan.ct_end)
            r = s3.request("GET", args.bucket, args.key, headers={"Range": plan.http_range},
                           ok=(206,), what=f"ranged GetObject {plan.http_range}")
            fetched.append(len(r.body))
            return r.body

        pt = isec.decrypt_range(key, shape, a, b, fetch)
        with open(os.path.join(args.out, f"range-{a}-{b}.bin"), "wb") as f:
            f.write(pt)
        ranges.append({"start": a, "end": b, "len": len(pt), "http_range": plan.http_range,
                       "fetched": sum(fetched)})

    print(json.dumps({
        "isec": isec.__version__,
        "kid": envelope.kid,
        "kid_meta": obj.headers.get(f"x-amz-meta-{isec.META_KID}"),
        "wrap_alg": envelope.wrap_alg,
        "layout": envelope.layout,
        "ciphertext_len": len(body),
        "plaintext_len": shape.plaintext_len,
        "whole_len": len(whole),
        "ranges": ranges,
    }))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (isec.IsecError, s3sig.S3Error, OSError, AssertionError) as e:
        cause = f" (caused by {type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else ""
        print(f"read_back: FAILED: {type(e).__name__}: {e}{cause}", file=sys.stderr)
        sys.exit(1)
