"""boto3 against `isec gateway`, and the backend behind it read and written directly with the
Python helper (isec.s3). Run by scripts/test-gateway.sh, which starts the gateway and gives
it to these tests through the environment:

    GW_ENDPOINT, GW_ACCESS_KEY, GW_SECRET_KEY   the gateway and a client credential
    GW_BUCKET, GW_PREFIX                         where to write (a fresh prefix per run)
    GW_KEYRING                                   the gateway's keyring file
    GW_BIG, GW_FILES                             the 100 MiB file, the directory of small ones
    ISEC_S3_*                                    the backend (Garage)
"""

from __future__ import annotations

import base64
import filecmp
import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

import isec
# Garage's request counters, read as the shell checks read them (pytest puts this directory
# on sys.path: it has no __init__.py).
from gwtool import counters
import isec.s3

ENV = os.environ
BUCKET = ENV["GW_BUCKET"]
PREFIX = ENV["GW_PREFIX"] + "/boto3"
SIZES = (0, 1, 65536, 65537, 3_000_000)
MIB = 1 << 20
# boto3's part size here: more than the 5 MiB minimum and not a whole number of frames.
PART = 6_000_001


def gateway_client(secret: str | None = None):
    return boto3.client(
        "s3",
        endpoint_url=ENV["GW_ENDPOINT"],
        region_name=ENV["ISEC_S3_REGION"],
        aws_access_key_id=ENV["GW_ACCESS_KEY"],
        aws_secret_access_key=secret or ENV["GW_SECRET_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def gw():
    return gateway_client()


@pytest.fixture(scope="module")
def backend():
    return boto3.client(
        "s3",
        endpoint_url=ENV["ISEC_S3_ENDPOINT"],
        region_name=ENV["ISEC_S3_REGION"],
        aws_access_key_id=ENV["ISEC_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=ENV["ISEC_S3_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="module")
def helper(backend):
    """The Python helper on the backend, with the gateway's own keyring file."""
    return isec.s3.Client(backend, isec.Keyring.from_file(ENV["GW_KEYRING"]), part_size=5 * MIB)


def small(n: int) -> bytes:
    return Path(ENV["GW_FILES"], f"f{n}").read_bytes()


def status(call) -> int:
    """HTTP status of a boto3 call (200 when it succeeds)."""
    try:
        call()
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def md5_etag(parts: list[bytes]) -> str:
    if len(parts) == 1:
        return hashlib.md5(parts[0]).hexdigest()
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def file_etag(path: str, part: int) -> str:
    digests = []
    with open(path, "rb") as f:
        while chunk := f.read(part):
            digests.append(hashlib.md5(chunk).digest())
    return hashlib.md5(b"".join(digests)).hexdigest() + f"-{len(digests)}"


# --- round trips, ETags, listings ------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_put_get_head(gw, backend, n):
    key = f"{PREFIX}/f{n}"
    data = small(n)
    put = gw.put_object(Bucket=BUCKET, Key=key, Body=data, Metadata={"origin": "boto3"})
    assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    got = gw.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == data
    assert got["ContentLength"] == n
    head = gw.head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert head["ContentLength"] == n
    assert head["Metadata"] == {"origin": "boto3"}
    # The backend holds ciphertext, longer than the plaintext by at least a header and a tag.
    raw = backend.get_object(Bucket=BUCKET, Key=key)
    stored = raw["Body"].read()
    assert stored != data and len(stored) > n
    # An isec object: the envelope in its metadata, the client's metadata beside it.
    assert "isec" in raw["Metadata"] and raw["Metadata"]["origin"] == "boto3"
    if n >= 64:
        assert data[:64] not in stored


def test_multipart_100mib(gw, tmp_path):
    key = f"{PREFIX}/big"
    big = ENV["GW_BIG"]
    cfg = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)
    gw.upload_file(big, BUCKET, key, Config=cfg)
    want = file_etag(big, PART)
    assert want.endswith("-18")
    head = gw.head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"].strip('"') == want
    assert head["ContentLength"] == 100 * MIB
    listed = gw.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"].strip('"')) for o in listed] == [(key, 100 * MIB, want)]
    back = tmp_path / "big"
    gw.download_file(BUCKET, key, str(back), Config=TransferConfig(multipart_chunksize=8 * MIB, max_concurrency=4))
    assert filecmp.cmp(big, back, shallow=False)


def range_cases(n: int) -> list[tuple[str, int, int]]:
    """(Range header, first, end) pairs: frame and part boundaries, first and last bytes."""
    cases = [(0, 0), (65535, 65536), (65536 - 7, 65536 + 7), (n // 3, n // 3 + 100_000), (n - 1, n - 1)]
    if n > PART:
        cases += [(PART - 10, PART + 10), (2 * PART - 1, 2 * PART)]
    out = [(f"bytes={a}-{b}", a, b + 1) for a, b in cases]
    out += [("bytes=-100", n - 100, n), (f"bytes={n - 5}-", n - 5, n), (f"bytes={n - 10}-{n + 1000}", n - 10, n)]
    return out


@pytest.mark.parametrize("name", ["f3000000", "big"])
def test_ranges(gw, name):
    data = small(3_000_000) if name == "f3000000" else Path(ENV["GW_BIG"]).read_bytes()
    key = f"{PREFIX}/{name}"
    if name == "big":
        # Uploaded by test_multipart_100mib; stands alone when run by itself.
        if status(lambda: gw.head_object(Bucket=BUCKET, Key=key)) == 404:
            gw.upload_file(ENV["GW_BIG"], BUCKET, key, Config=TransferConfig(multipart_chunksize=PART))
    else:
        gw.put_object(Bucket=BUCKET, Key=key, Body=data)
    n = len(data)
    for header, a, b in range_cases(n):
        r = gw.get_object(Bucket=BUCKET, Key=key, Range=header)
        assert r["Body"].read() == data[a:b], header
        assert r["ContentRange"] == f"bytes {a}-{b - 1}/{n}", header
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert status(lambda: gw.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={n}-")) == 416


def upload_three_parts(gw, key: str) -> tuple[bytes, str]:
    """5 MiB + 3, 5 MiB and 1 byte: an unaligned first part puts the table in a sidecar."""
    parts = [os.urandom(5 * MIB + 3), os.urandom(5 * MIB), b"z"]
    up = gw.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    done = []
    for i, p in enumerate(parts, 1):
        e = gw.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=i, Body=p)["ETag"]
        assert e.strip('"') == hashlib.md5(p).hexdigest()
        done.append({"PartNumber": i, "ETag": e})
    listed = gw.list_parts(Bucket=BUCKET, Key=key, UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(i, len(p)) for i, p in enumerate(parts, 1)]
    r = gw.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up, MultipartUpload={"Parts": done})
    assert r["ETag"].strip('"') == md5_etag(parts)
    return b"".join(parts), md5_etag(parts)


def test_listing_hides_sidecars(gw, backend):
    key = f"{PREFIX}/listing/three-parts"
    data, etag = upload_three_parts(gw, key)
    assert status(lambda: backend.head_object(Bucket=BUCKET, Key=key + ".isec-table")) == 200
    gw.put_object(Bucket=BUCKET, Key=f"{PREFIX}/listing/one", Body=b"1")
    # A previous proxy's sidecar, written straight into the backend.
    legacy = f".s3proxy-internal/{ENV['GW_PREFIX']}/x.meta"
    backend.put_object(Bucket=BUCKET, Key=legacy, Body=b"{}")
    want = [(f"{PREFIX}/listing/one", 1, hashlib.md5(b"1").hexdigest()), (key, len(data), etag)]
    v2 = gw.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/listing/")
    assert [(o["Key"], o["Size"], o["ETag"].strip('"')) for o in v2["Contents"]] == want
    v1 = gw.list_objects(Bucket=BUCKET, Prefix=f"{PREFIX}/listing/")
    assert [(o["Key"], o["Size"], o["ETag"].strip('"')) for o in v1["Contents"]] == want
    # Paged one key at a time, the sidecar still never shows.
    keys, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = gw.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/listing/", MaxKeys=1, **kw)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]
    assert keys == [w[0] for w in want]
    root = gw.list_objects_v2(Bucket=BUCKET, Delimiter="/")
    assert ".s3proxy-internal/" not in [p["Prefix"] for p in root.get("CommonPrefixes", [])]
    assert gw.list_objects_v2(Bucket=BUCKET, Prefix=".s3proxy-internal/").get("Contents", []) == []
    assert gw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


# --- the Python helper on the backend ----------------------------------------------------------


def test_helper_reads_what_the_gateway_wrote(gw, backend, helper, tmp_path):
    single = os.urandom(200_000)
    gw.put_object(Bucket=BUCKET, Key=f"{PREFIX}/cross/single", Body=single)
    assert helper.get_object(BUCKET, f"{PREFIX}/cross/single") == single
    multi, _ = upload_three_parts(gw, f"{PREFIX}/cross/three-parts")
    assert helper.get_object(BUCKET, f"{PREFIX}/cross/three-parts") == multi
    assert helper.get_range(BUCKET, f"{PREFIX}/cross/three-parts", 5 * MIB - 5, 5 * MIB + 10) == multi[
        5 * MIB - 5 : 5 * MIB + 10
    ]
    # 18 parts of 6_000_001 bytes, uploaded by boto3's transfer manager.
    key = f"{PREFIX}/cross/big"
    gw.upload_file(ENV["GW_BIG"], BUCKET, key, Config=TransferConfig(multipart_chunksize=PART, max_concurrency=4))
    helper.download_file(BUCKET, key, tmp_path / "big")
    assert filecmp.cmp(ENV["GW_BIG"], tmp_path / "big", shallow=False)
    stored = backend.get_object(Bucket=BUCKET, Key=f"{PREFIX}/cross/single")["Body"].read()
    assert stored != single and single[:64] not in stored


def test_gateway_reads_what_the_helper_wrote(gw, helper):
    objects = {"single": os.urandom(100_000), "multipart": os.urandom(12 * MIB + 12_345)}
    for name, data in objects.items():
        put = helper.put_object(BUCKET, f"{PREFIX}/from-helper/{name}", data, metadata={"writer": "python"})
        assert put.parts == (3 if name == "multipart" else 0)
    for name, data in objects.items():
        key = f"{PREFIX}/from-helper/{name}"
        got = gw.get_object(Bucket=BUCKET, Key=key)
        assert got["Body"].read() == data
        assert got["Metadata"] == {"writer": "python"}
        head = gw.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentLength"] == len(data)
        cases = [(0, 0), (65530, 65545), (len(data) - 1, len(data) - 1)]
        if len(data) > 5 * MIB:
            cases.append((5 * MIB - 3, 5 * MIB + 3))
        for a, b in cases:
            r = gw.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={a}-{b}")
            assert r["Body"].read() == data[a : b + 1], (name, a, b)
        r = gw.get_object(Bucket=BUCKET, Key=key, Range="bytes=-100")
        assert r["Body"].read() == data[-100:]
    listed = gw.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/from-helper/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1]: o["Size"] for o in listed} == {k: len(v) for k, v in objects.items()}


# --- copies stay on the backend ------------------------------------------------------------------




def test_copy_object_stays_on_the_backend(gw):
    data = os.urandom(2_000_000)
    src = f"{PREFIX}/copy/src"
    gw.put_object(Bucket=BUCKET, Key=src, Body=data, Metadata={"a": "1"})
    # Garage's counters are the server's: another client of it between the two readings is
    # told from the gateway by measuring again (the gateway's own transfers move them every time).
    for attempt in range(8):
        dst = f"{PREFIX}/copy/dst{attempt}"
        before = counters()
        gw.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src})
        after = counters()
        moved = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        assert moved.get("CopyObject", 0) + moved.get("UploadPartCopy", 0) >= 1, moved
        if not any(moved.get(k, 0) for k in ("GetObject", "PutObject", "UploadPart")):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the copy moved bytes through the gateway: {moved}")
    got = gw.get_object(Bucket=BUCKET, Key=dst)
    assert got["Body"].read() == data
    assert got["Metadata"] == {"a": "1"}
    assert gw.head_object(Bucket=BUCKET, Key=dst)["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def test_copy_of_an_object_with_a_sidecar(gw, backend):
    """The copy gets its own table: it reads back whole and by range after the source and
    the source's sidecar are gone."""
    src, dst = f"{PREFIX}/copy/sidecar-src", f"{PREFIX}/copy/sidecar-dst"
    data, etag = upload_three_parts(gw, src)
    gw.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src})
    gw.delete_object(Bucket=BUCKET, Key=src)
    assert status(lambda: backend.head_object(Bucket=BUCKET, Key=src + ".isec-table")) == 404
    assert gw.get_object(Bucket=BUCKET, Key=dst)["Body"].read() == data
    r = gw.get_object(Bucket=BUCKET, Key=dst, Range=f"bytes={5 * MIB - 2}-{5 * MIB + 8}")
    assert r["Body"].read() == data[5 * MIB - 2 : 5 * MIB + 9]
    assert gw.head_object(Bucket=BUCKET, Key=dst)["ETag"].strip('"') == etag


# --- what must fail --------------------------------------------------------------------------


def test_wrong_secret_is_refused(gw):
    bad = gateway_client(secret="not-" + ENV["GW_SECRET_KEY"])
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=BUCKET, Key=f"{PREFIX}/bad/wrong-secret", Body=b"x")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert status(lambda: gw.head_object(Bucket=BUCKET, Key=f"{PREFIX}/bad/wrong-secret")) == 404


def test_presigned_urls(gw):
    key = f"{PREFIX}/presigned"
    gw.put_object(Bucket=BUCKET, Key=key, Body=b"presigned bytes")
    fresh = gw.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    with urllib.request.urlopen(fresh, timeout=10) as r:
        assert r.read() == b"presigned bytes"
    stale = gw.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=1)
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(stale, timeout=10)
    assert e.value.code == 403
    assert "expired" in e.value.read().decode().lower()


def test_wrong_content_md5_stores_nothing(gw, backend):
    key = f"{PREFIX}/bad/content-md5"
    other = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    with pytest.raises(ClientError) as e:
        gw.put_object(Bucket=BUCKET, Key=key, Body=b"these bytes", ContentMD5=other)
    assert e.value.response["Error"]["Code"] == "BadDigest"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert status(lambda: gw.head_object(Bucket=BUCKET, Key=key)) == 404
    assert status(lambda: backend.head_object(Bucket=BUCKET, Key=key)) == 404
    # The right digest is accepted.
    right = base64.b64encode(hashlib.md5(b"these bytes").digest()).decode()
    gw.put_object(Bucket=BUCKET, Key=key, Body=b"these bytes", ContentMD5=right)
    assert gw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"these bytes"


def test_abandoned_upload_stores_nothing(gw, backend):
    key = f"{PREFIX}/bad/abandoned"
    url = urllib.parse.urlsplit(
        gw.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    )
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", "1000000")
    conn.endheaders()
    conn.send(os.urandom(300_000))
    conn.close()
    # Give the gateway time to see the connection go; then nothing of it may exist.
    deadline = time.monotonic() + 10
    while True:
        uploads = backend.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
        if not uploads or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1)
    assert uploads == [], "a backend multipart upload was left open"
    assert status(lambda: backend.head_object(Bucket=BUCKET, Key=key)) == 404
    assert status(lambda: gw.head_object(Bucket=BUCKET, Key=key)) == 404
    # The same presigned URL with the whole body works (the URL itself was right).
    req = urllib.request.Request(urllib.parse.urlunsplit(url), data=b"y" * 1000, method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    assert gw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"y" * 1000


def test_cut_downloads_leave_the_gateway_serving(gw):
    key = f"{PREFIX}/cut-download"
    data = os.urandom(8 * MIB)
    gw.put_object(Bucket=BUCKET, Key=key, Body=data)
    url = urllib.parse.urlsplit(
        gw.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    )
    for n in (1, 100_000, 3_000_000):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request("GET", f"{url.path}?{url.query}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.read(n) == data[:n]
        conn.sock.close()
        conn.close()
    assert gw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_delete_objects_takes_sidecars(gw, backend):
    key = f"{PREFIX}/delete/three-parts"
    upload_three_parts(gw, key)
    gw.put_object(Bucket=BUCKET, Key=f"{PREFIX}/delete/one", Body=b"1")
    assert status(lambda: backend.head_object(Bucket=BUCKET, Key=key + ".isec-table")) == 200
    r = gw.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": key}, {"Key": f"{PREFIX}/delete/one"}]}
    )
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == sorted([key, f"{PREFIX}/delete/one"])
    assert r.get("Errors", []) == []
    for k in (key, key + ".isec-table", f"{PREFIX}/delete/one"):
        assert status(lambda: backend.head_object(Bucket=BUCKET, Key=k)) == 404, k
    assert json.dumps(gw.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/delete/").get("Contents", [])) == "[]"


@pytest.mark.parametrize("alg", ["SHA256", "CRC32"])
def test_wrong_checksum_stores_nothing(gw, backend, alg):
    key = f"{PREFIX}/bad/checksum-{alg}"
    body = b"checksummed bytes"
    put = gw.put_object(Bucket=BUCKET, Key=key, Body=body, ChecksumAlgorithm=alg)
    assert put[f"Checksum{alg}"]
    assert gw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    other = hashlib.sha256(b"other").digest() if alg == "SHA256" else zlib.crc32(b"other").to_bytes(4, "big")
    bad = f"{key}-bad"
    with pytest.raises(ClientError) as e:
        gw.put_object(Bucket=BUCKET, Key=bad, Body=body, **{f"Checksum{alg}": base64.b64encode(other).decode()})
    assert e.value.response["Error"]["Code"] == "BadDigest"
    assert status(lambda: gw.head_object(Bucket=BUCKET, Key=bad)) == 404
    assert status(lambda: backend.head_object(Bucket=BUCKET, Key=bad)) == 404


def test_overwrites_between_layouts(gw, backend):
    """A single PUT over an object whose table is in a sidecar, and back: each read sees the
    latest bytes, and deleting the last one leaves nothing of either."""
    key = f"{PREFIX}/overwrite"
    data, _ = upload_three_parts(gw, key)
    assert gw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    gw.put_object(Bucket=BUCKET, Key=key, Body=b"now small")
    assert gw.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"now small"
    assert gw.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 9
    data, etag = upload_three_parts(gw, key)
    assert gw.get_object(Bucket=BUCKET, Key=key, Range="bytes=5242870-5242890")["Body"].read() == data[5242870:5242891]
    assert gw.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"') == etag
    gw.delete_object(Bucket=BUCKET, Key=key)
    for k in (key, key + ".isec-table"):
        assert status(lambda: backend.head_object(Bucket=BUCKET, Key=k)) == 404, k


def test_listing_with_url_encoding(gw):
    """boto3 (and the AWS CLI) list with encoding-type=url and decode every key, prefix and
    marker of the answer: the gateway must encode them, or '+' reads back as a space and
    '%41' as 'A' (names that do not exist)."""
    keys = [f"{PREFIX}/enc/a b+c%41d é.txt", f"{PREFIX}/enc/plus+dir/x", f"{PREFIX}/enc/z%2Fslash"]
    for k in keys:
        gw.put_object(Bucket=BUCKET, Key=k, Body=b"k")
    v2 = gw.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/enc/")
    assert [o["Key"] for o in v2["Contents"]] == keys
    v1 = gw.list_objects(Bucket=BUCKET, Prefix=f"{PREFIX}/enc/")
    assert [o["Key"] for o in v1["Contents"]] == keys
    d = gw.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/enc/", Delimiter="/")
    assert [p["Prefix"] for p in d["CommonPrefixes"]] == [f"{PREFIX}/enc/plus+dir/"]
    for o in v2["Contents"]:
        assert gw.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() == b"k"


def test_suffix_range_of_an_empty_object(gw):
    """bytes=-N of an empty object: an answer (416, or the empty body), not a dropped connection."""
    key = f"{PREFIX}/empty-suffix"
    gw.put_object(Bucket=BUCKET, Key=key, Body=b"")
    for rng in ("bytes=-5", "bytes=-1000000"):
        try:
            r = gw.get_object(Bucket=BUCKET, Key=key, Range=rng)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 416, rng
            assert e.response["Error"]["Code"] == "InvalidRange", rng
        else:
            assert r["Body"].read() == b"", rng
