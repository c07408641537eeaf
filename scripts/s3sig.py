#!/usr/bin/env python3
"""Minimal S3 client (AWS Signature V4, path-style) on the Python standard library.

Used by scripts/garage.sh to set the test bucket's CORS rule, and as a self-test of the
local Garage server. Importable: S3(...).request(...), S3.presign(...),
S3.put_chunked(...) (the signed aws-chunked upload no installed SDK sends),
metrics_counter(...).

    python3 scripts/s3sig.py [--env-file F] [--endpoint URL] put-cors BUCKET
    python3 scripts/s3sig.py [--env-file F] [--endpoint URL] selftest
    python3 scripts/s3sig.py [--env-file F] [--endpoint URL] put BUCKET KEY <BODY
    python3 scripts/s3sig.py [--env-file F] [--endpoint URL] get BUCKET KEY >BODY
    python3 scripts/s3sig.py [--env-file F] [--endpoint URL] delete BUCKET KEY
    python3 scripts/s3sig.py [--env-file F] [--endpoint URL] list BUCKET
    python3 scripts/s3sig.py [--env-file F] [--endpoint URL] put-chunked BUCKET KEY \
        [--bad-chunk N] [--declared N] <BODY      # prints the status and the error code

Without --env-file the ISEC_S3_* variables are read from the environment. --endpoint
replaces ISEC_S3_ENDPOINT, so one env file serves every node of a cluster.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import hmac
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
UNSIGNED = "UNSIGNED-PAYLOAD"


def _quote(s: str, safe: str = "") -> str:
    return urllib.parse.quote(s, safe="-_.~" + safe)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers  # email.message.Message: case-insensitive get()
        self.body = body

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


class S3Error(Exception):
    def __init__(self, resp: Response, what: str):
        super().__init__(f"{what}: HTTP {resp.status}: {resp.body[:500].decode(errors='replace')}")
        self.response = resp


class S3:
    def __init__(self, endpoint: str, region: str, access_key: str, secret_key: str):
        self.endpoint = endpoint.rstrip("/")
        u = urllib.parse.urlsplit(self.endpoint)
        self.scheme, self.host = u.scheme, u.netloc
        self.region, self.access_key, self.secret_key = region, access_key, secret_key

    @classmethod
    def from_env(cls, env: dict) -> "S3":
        return cls(
            env["ISEC_S3_ENDPOINT"],
            env.get("ISEC_S3_REGION", "garage"),
            env["ISEC_S3_ACCESS_KEY_ID"],
            env["ISEC_S3_SECRET_ACCESS_KEY"],
        )

    @staticmethod
    def path(bucket: str, key: str = "") -> str:
        p = "/" + _quote(bucket)
        if key:
            p += "/" + _quote(key, "/")
        return p

    def _signing_key(self, date: str) -> bytes:
        k = _hmac(("AWS4" + self.secret_key).encode(), date)
        k = _hmac(k, self.region)
        k = _hmac(k, "s3")
        return _hmac(k, "aws4_request")

    @staticmethod
    def _canonical_query(query: dict) -> str:
        return "&".join(
            f"{_quote(k)}={_quote(str(v))}" for k, v in sorted((query or {}).items())
        )

    def sign(self, method: str, path: str, query: dict, headers: dict, payload_hash: str,
             now: datetime.datetime | None = None) -> dict:
        """Returns headers (including Authorization) for a header-signed request."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        h = {k.lower(): str(v).strip() for k, v in headers.items()}
        h["host"] = self.host
        h["x-amz-date"] = amz_date
        h["x-amz-content-sha256"] = payload_hash
        signed = sorted(h)
        canonical = "\n".join([
            method,
            path,
            self._canonical_query(query),
            "".join(f"{k}:{' '.join(h[k].split())}\n" for k in signed),
            ";".join(signed),
            payload_hash,
        ])
        scope = f"{date}/{self.region}/s3/aws4_request"
        to_sign = "\n".join([
            "AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()
        ])
        sig = hmac.new(self._signing_key(date), to_sign.encode(), hashlib.sha256).hexdigest()
        h["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={sig}"
        )
        del h["host"]
        return h

    def presign(self, method: str, bucket: str, key: str, expires: int = 900,
                query: dict | None = None, now: datetime.datetime | None = None) -> str:
        """A query-signed URL (presigned URL) with UNSIGNED-PAYLOAD, signing only host."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        scope = f"{date}/{self.region}/s3/aws4_request"
        path = self.path(bucket, key)
        q = dict(query or {})
        q.update({
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-SignedHeaders": "host",
        })
        canonical = "\n".join([
            method, path, self._canonical_query(q), f"host:{self.host}\n", "host", UNSIGNED
        ])
        to_sign = "\n".join([
            "AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()
        ])
        q["X-Amz-Signature"] = hmac.new(
            self._signing_key(date), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        return f"{self.endpoint}{path}?{self._canonical_query(q)}"

    def request(self, method: str, bucket: str, key: str = "", query: dict | None = None,
                headers: dict | None = None, body: bytes = b"", ok=(200, 204, 206),
                what: str = "") -> Response:
        path = self.path(bucket, key)
        headers = dict(headers or {})
        if method in ("PUT", "POST") and not any(k.lower() == "content-type" for k in headers):
            # Otherwise urllib adds application/x-www-form-urlencoded, which S3 would store.
            headers["Content-Type"] = "application/octet-stream"
        payload_hash = hashlib.sha256(body).hexdigest()
        h = self.sign(method, path, query or {}, headers, payload_hash)
        url = self.endpoint + path
        if query:
            url += "?" + self._canonical_query(query)
        resp = raw_request(method, url, h, body)
        if ok and resp.status not in ok:
            raise S3Error(resp, what or f"{method} {path}")
        return resp


    def put_chunked(self, bucket: str, key: str, body: bytes, chunk: int = 65536,
                    bad_chunk: int | None = None, declared: int | None = None) -> Response:
        """PutObject with a signed aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
        every chunk carries a signature chained from the request's. `bad_chunk`: the index
        of a chunk whose signature is wrong; `declared`: a decoded length other than
        len(body) (a body that ends early)."""
        streaming = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)] + [b""]
        encoded_len = sum(len(f"{len(p):x};chunk-signature=") + 64 + 2 + len(p) + 2 for p in pieces)
        path = self.path(bucket, key)
        now = datetime.datetime.now(datetime.timezone.utc)
        h = self.sign("PUT", path, {}, {
            "Content-Encoding": "aws-chunked",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(encoded_len),
            "x-amz-decoded-content-length": str(len(body) if declared is None else declared),
        }, streaming, now=now)
        prev = h["authorization"].rsplit("Signature=", 1)[1]
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{amz_date[:8]}/{self.region}/s3/aws4_request"
        key_ = self._signing_key(amz_date[:8])
        empty = hashlib.sha256(b"").hexdigest()
        out = bytearray()
        for i, p in enumerate(pieces):
            to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                                 hashlib.sha256(p).hexdigest()])
            sig = hmac.new(key_, to_sign.encode(), hashlib.sha256).hexdigest()
            prev = sig
            if i == bad_chunk:
                sig = ("0" if sig[0] != "0" else "1") + sig[1:]
            out += f"{len(p):x};chunk-signature={sig}\r\n".encode() + p + b"\r\n"
        return raw_request("PUT", self.endpoint + path, h, bytes(out))


def raw_request(method: str, url: str, headers: dict | None = None, body: bytes = b"",
                timeout: float = 30) -> Response:
    req = urllib.request.Request(url, data=body if body or method in ("PUT", "POST") else None,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.headers, e.read())


def metrics_counter(metrics_url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus counter's samples whose labels include the given ones."""
    text = raw_request("GET", metrics_url).body.decode()
    total = 0.0
    pat = re.compile(r"^" + re.escape(name) + r"(?:\{(.*)\})?\s+(\S+)")
    for line in text.splitlines():
        m = pat.match(line)
        if not m:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


# --- CORS ----------------------------------------------------------------------------------

CORS_METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]
# "*" does not cover Authorization in browsers (Fetch spec), so it is listed too.
CORS_ALLOW_HEADERS = ["*", "authorization"]
CORS_EXPOSE_HEADERS = [
    "*", "ETag", "Content-Length", "Content-Range", "Content-Type", "Last-Modified",
    "x-amz-meta-isec", "x-amz-meta-isec-kid", "x-amz-request-id", "x-amz-version-id",
]


def cors_xml() -> bytes:
    rule = "".join(
        [f"<AllowedOrigin>*</AllowedOrigin>"]
        + [f"<AllowedMethod>{m}</AllowedMethod>" for m in CORS_METHODS]
        + [f"<AllowedHeader>{h}</AllowedHeader>" for h in CORS_ALLOW_HEADERS]
        + [f"<ExposeHeader>{h}</ExposeHeader>" for h in CORS_EXPOSE_HEADERS]
        + ["<MaxAgeSeconds>3600</MaxAgeSeconds>"]
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><CORSConfiguration xmlns="{S3_NS}">'
            f"<CORSRule>{rule}</CORSRule></CORSConfiguration>").encode()


def put_cors(s3: S3, bucket: str) -> None:
    body = cors_xml()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.request("PUT", bucket, query={"cors": ""}, body=body,
               headers={"Content-MD5": md5, "Content-Type": "application/xml"},
               what=f"PutBucketCors {bucket}")


# --- self-test -----------------------------------------------------------------------------

def selftest(s3: S3, env: dict) -> None:
    bucket = env["ISEC_S3_BUCKET"]
    metrics = env.get("ISEC_S3_METRICS") or env["ISEC_S3_ADMIN"].rstrip("/") + "/metrics"
    prefix = f"selftest-{os.getpid()}-{os.urandom(3).hex()}/"
    checks = 0

    def check(cond: bool, what: str) -> None:
        nonlocal checks
        if not cond:
            raise AssertionError(what)
        checks += 1
        print(f"ok   {what}")

    def copy_count(endpoint: str) -> float:
        return metrics_counter(metrics, "api_s3_request_counter", api_endpoint=endpoint)

    size = 6 * 1024 * 1024 + 12345  # > 5 MiB so a copied part can be a non-last part
    data = os.urandom(size)
    src, dst, mp = prefix + "src obj+é", prefix + "copy", prefix + "multipart"
    created = []

    try:
        # PutObject with user metadata.
        r = s3.request("PUT", bucket, src, body=data, headers={
            "Content-Type": "application/octet-stream",
            "x-amz-meta-isec": "v1;test=1", "x-amz-meta-isec-kid": "kid-A",
        })
        created.append(src)
        check(r.headers.get("ETag", "").strip('"') == hashlib.md5(data).hexdigest(),
              "PutObject ETag is the MD5 of the body")

        # HeadObject.
        r = s3.request("HEAD", bucket, src)
        check(r.headers.get("x-amz-meta-isec") == "v1;test=1"
              and r.headers.get("x-amz-meta-isec-kid") == "kid-A",
              "HeadObject returns the user metadata")
        check(int(r.headers.get("Content-Length")) == size, "HeadObject Content-Length")

        # Ranged GET.
        r = s3.request("GET", bucket, src, headers={"Range": "bytes=1000-1999"})
        check(r.status == 206 and r.body == data[1000:2000]
              and r.headers.get("Content-Range") == f"bytes 1000-1999/{size}",
              "ranged GET returns 206, the bytes and Content-Range")
        r = s3.request("GET", bucket, src, headers={"Range": f"bytes=-100"})
        check(r.status == 206 and r.body == data[-100:], "suffix-ranged GET")

        # CopyObject with REPLACE metadata: counted by the server, no data through us.
        before = copy_count("CopyObject")
        r = s3.request("PUT", bucket, dst, headers={
            "x-amz-copy-source": S3.path(bucket, src),
            "x-amz-metadata-directive": "REPLACE",
            "Content-Type": "application/x-isec",
            "x-amz-meta-isec": "v2",
        })
        created.append(dst)
        check(r.xml().find(f"{{{S3_NS}}}ETag") is not None
              or r.xml().find("ETag") is not None, "CopyObject returns CopyObjectResult")
        r = s3.request("HEAD", bucket, dst)
        check(r.headers.get("x-amz-meta-isec") == "v2"
              and r.headers.get("x-amz-meta-isec-kid") is None
              and r.headers.get("Content-Type") == "application/x-isec",
              "CopyObject REPLACE replaced the metadata")
        check(s3.request("GET", bucket, dst).body == data, "copied object has the same bytes")

        # CopyObject onto the same key, REPLACE (metadata-only rewrite, as key rotation does).
        s3.request("PUT", bucket, dst, headers={
            "x-amz-copy-source": S3.path(bucket, dst),
            "x-amz-metadata-directive": "REPLACE",
            "x-amz-meta-isec": "v3", "x-amz-meta-isec-kid": "kid-B",
        })
        r = s3.request("HEAD", bucket, dst)
        check(r.headers.get("x-amz-meta-isec") == "v3"
              and r.headers.get("x-amz-meta-isec-kid") == "kid-B",
              "CopyObject onto the same key with REPLACE")
        after = copy_count("CopyObject")
        check(after - before == 2,
              f"metrics api_s3_request_counter{{api_endpoint=\"CopyObject\"}} +2 "
              f"({before:g} -> {after:g})")

        # Multipart upload from UploadPartCopy with ranges.
        before_upc = copy_count("UploadPartCopy")
        r = s3.request("POST", bucket, mp, query={"uploads": ""},
                       headers={"x-amz-meta-isec": "mp"})
        upload_id = r.xml().findtext(f"{{{S3_NS}}}UploadId") or r.xml().findtext("UploadId")
        check(bool(upload_id), "CreateMultipartUpload returns an UploadId")
        split = 5 * 1024 * 1024
        ranges = [(100, 100 + split - 1), (100 + split, size - 1)]
        etags = []
        for n, (a, b) in enumerate(ranges, 1):
            r = s3.request("PUT", bucket, mp,
                           query={"partNumber": str(n), "uploadId": upload_id},
                           headers={"x-amz-copy-source": S3.path(bucket, src),
                                    "x-amz-copy-source-range": f"bytes={a}-{b}"})
            etag = r.xml().findtext(f"{{{S3_NS}}}ETag") or r.xml().findtext("ETag")
            etags.append(etag)
        check(all(etags), "UploadPartCopy with x-amz-copy-source-range returns ETags")
        parts = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                        for n, e in enumerate(etags, 1))
        s3.request("POST", bucket, mp, query={"uploadId": upload_id},
                   body=f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode())
        created.append(mp)
        r = s3.request("GET", bucket, mp)
        check(r.body == data[100:], "multipart object equals the copied ranges")
        check(r.headers.get("x-amz-meta-isec") == "mp", "multipart object keeps its metadata")
        r = s3.request("GET", bucket, mp, headers={"Range": f"bytes={split - 5}-{split + 4}"})
        check(r.status == 206 and r.body == data[100 + split - 5:100 + split + 5],
              "ranged GET across the part boundary")
        check(copy_count("UploadPartCopy") - before_upc == 2,
              "metrics count 2 UploadPartCopy requests")

        # Presigned PUT and GET (what a browser without credentials would use).
        pkey = prefix + "presigned"
        r = raw_request("PUT", s3.presign("PUT", bucket, pkey), body=b"hello presigned")
        created.append(pkey)
        check(r.status == 200, f"presigned PUT ({r.status})")
        r = raw_request("GET", s3.presign("GET", bucket, pkey))
        check(r.status == 200 and r.body == b"hello presigned", "presigned GET")

        # CORS: the rule is stored and a browser preflight passes.
        r = s3.request("GET", bucket, query={"cors": ""})
        check(b"AllowedOrigin" in r.body, "GetBucketCors returns the rule")
        r = raw_request("OPTIONS", f"{s3.endpoint}{S3.path(bucket, src)}", headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers":
                "authorization,content-type,x-amz-content-sha256,x-amz-date,x-amz-meta-isec",
        })
        check(r.status == 200 and r.headers.get("Access-Control-Allow-Origin") == "*"
              and "PUT" in (r.headers.get("Access-Control-Allow-Methods") or ""),
              "CORS preflight for a signed PUT is allowed")
        r = s3.request("GET", bucket, src, headers={"Origin": "http://127.0.0.1:8000",
                                                    "Range": "bytes=0-0"})
        check(r.headers.get("Access-Control-Allow-Origin") == "*"
              and "ETag" in (r.headers.get("Access-Control-Expose-Headers") or ""),
              "GET with Origin gets CORS headers exposing ETag")

        # Errors are S3 errors.
        r = s3.request("GET", bucket, prefix + "missing", ok=None)
        check(r.status == 404 and b"NoSuchKey" in r.body, "missing key is 404 NoSuchKey")
        bad = S3(s3.endpoint, s3.region, s3.access_key, "wrong" + s3.secret_key[5:])
        r = bad.request("GET", bucket, src, ok=None)
        check(r.status == 403, "a wrong secret is refused (403)")
    finally:
        for k in created:
            s3.request("DELETE", bucket, k, ok=None)
    print(f"garage selftest OK: {checks} checks")


# --- CLI -----------------------------------------------------------------------------------

def load_env(path: str | None) -> dict:
    env = dict(os.environ)
    if path:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    env[k.removeprefix("export ").strip()] = v
    return env


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env-file")
    ap.add_argument("--endpoint", help="S3 endpoint instead of ISEC_S3_ENDPOINT")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("put-cors", help="set a permissive CORS rule on BUCKET")
    p.add_argument("bucket")
    sub.add_parser("selftest", help="exercise the S3 API used by the tests")
    for name, what in [("put", "PutObject with the body read from stdin"),
                       ("get", "GetObject, body to stdout"),
                       ("delete", "DeleteObject")]:
        p = sub.add_parser(name, help=what)
        p.add_argument("bucket")
        p.add_argument("key")
    p = sub.add_parser("list", help="ListObjectsV2 (first page), one key a line")
    p.add_argument("bucket")
    p = sub.add_parser("put-chunked", help="PutObject with a signed aws-chunked body from stdin")
    p.add_argument("bucket")
    p.add_argument("key")
    p.add_argument("--bad-chunk", type=int, help="index of a chunk whose signature is wrong")
    p.add_argument("--declared", type=int, help="decoded length to declare instead of the body's")
    args = ap.parse_args(argv)
    env = load_env(args.env_file)
    if args.endpoint:
        env["ISEC_S3_ENDPOINT"] = args.endpoint
    s3 = S3.from_env(env)
    if args.cmd == "put-cors":
        put_cors(s3, args.bucket)
    elif args.cmd == "selftest":
        selftest(s3, env)
    elif args.cmd == "put":
        s3.request("PUT", args.bucket, args.key, body=sys.stdin.buffer.read())
    elif args.cmd == "get":
        sys.stdout.buffer.write(s3.request("GET", args.bucket, args.key).body)
    elif args.cmd == "delete":
        s3.request("DELETE", args.bucket, args.key)
    elif args.cmd == "put-chunked":
        r = s3.put_chunked(args.bucket, args.key, sys.stdin.buffer.read(),
                           bad_chunk=args.bad_chunk, declared=args.declared)
        code = re.search(rb"<Code>([^<]*)</Code>", r.body)
        print(r.status, code.group(1).decode() if code else "-")
    elif args.cmd == "list":
        root = s3.request("GET", args.bucket, query={"list-type": "2"}).xml()
        for k in root.iter(f"{{{S3_NS}}}Key"):
            print(k.text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    # OSError: urllib's URLError (connection refused, timeout) when a node is down.
    except (S3Error, AssertionError, OSError) as e:
        print(f"s3sig: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
