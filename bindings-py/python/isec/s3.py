"""isec for boto3: encrypted objects through an ordinary S3 client.

``Client`` wraps a boto3 S3 client (``boto3.client("s3")``; install with
``pip install "isec[s3]"``) and a :class:`isec.Keyring`::

    import boto3, isec, isec.s3

    ring = isec.Keyring()
    ring.add_kek("kek-2026", kek)
    s3 = isec.s3.Client(boto3.client("s3"), ring)
    s3.put_object("bucket", "report.pdf", "/tmp/report.pdf")   # bytes, a file object or a path
    data = s3.get_object("bucket", "report.pdf")
    page = s3.get_range("bucket", "report.pdf", 1 << 20, 2 << 20)
    s3.copy_object("bucket", "report.pdf", "archive", "2026/report.pdf")
    s3.rewrap("bucket", "report.pdf", "kek-2027")

Every decision is the core's: which copy to make and with which metadata
(:func:`isec.decide_copy`), which sidecar goes along (:meth:`isec.CopyPlan.sidecar_key`),
which ciphertext bytes a plaintext range needs (:meth:`isec.Shape.map_range`), how an
envelope is rewrapped, which metadata a new object gets (:func:`isec.object_metadata`),
where a segment table is (:func:`isec.table_source`), how big parts must be
(:func:`isec.fit_part_size`). This module only turns those answers into S3 requests.
Nothing here imports boto3: any object with boto3's S3 client methods works.

Errors: S3 failures stay the client's own exceptions (``botocore.exceptions.ClientError``
and friends); format and key failures are :class:`isec.IsecError` subclasses with their
stable ``code``. Reading an object that is not encrypted raises :class:`isec.FormatError`
with code ``not_encrypted`` unless the client was made with ``allow_plaintext=True``.

Consistency: a call that HEADs an object and then reads or copies it sends the HEAD's ETag
as ``If-Match`` / ``x-amz-copy-source-if-match``, so a concurrent overwrite makes the call
fail (HTTP 412) rather than pair one object's envelope with another object's body.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol, Union, cast

from ._files import PathOrFile
from ._isec import (
    CopyLimits,
    CopyPlan,
    Decryptor,
    Envelope,
    IsecError,
    IsecSource,
    Keyring,
    ObjectKey,
    Reencryption,
    Shape,
    classify,
    decide_copy,
    decrypt,
    decrypt_range,
    decrypt_with_table,
    encrypt,
    encrypt_part,
    fit_part_size,
    isec_error,
    object_metadata,
    table_sidecar_key,
    table_source,
    user_metadata,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DEFAULT_PART_SIZE",
    "Body",
    "Client",
    "CopyResult",
    "ObjectInfo",
    "PutResult",
    "Readable",
    "UnsupportedObjectError",
]

S3Client = Any
"""A boto3 S3 client (``boto3.client("s3")``); typed loosely because boto3 ships no types."""

class Readable(Protocol):
    """A binary stream: anything with ``read(n) -> bytes`` (files, sockets, response bodies)."""

    def read(self, n: int = -1, /) -> bytes: ...


Body = Union["Buffer", Readable, IO[bytes], str, "os.PathLike[str]"]
"""What ``put_object`` uploads: a bytes-like object, a binary file object or stream, or a
path."""

_Part = Callable[[str], tuple[dict[str, Any], int]]
"""One part of a multipart upload: called with the upload id, returns the part's entry for
CompleteMultipartUpload and the bytes it stored."""

MIB = 1 << 20
DEFAULT_PART_SIZE = 8 * MIB
"""Plaintext bytes per part of a multipart upload, and the size above which uploads are
multipart. A multiple of every frame size up to 8 MiB, and above S3's 5 MiB part minimum."""

# Headers a metadata REPLACE would otherwise drop: copied from the source's HEAD unless the
# caller gives new values.
_KEPT_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Expires")


class UnsupportedObjectError(Exception):
    """The object is in a format this helper does not read (the previous proxy's layouts:
    read and migrate them with :class:`isec.LegacyObject` and :class:`isec.LegacySource`)."""


@dataclass(frozen=True)
class PutResult:
    """What ``put_object`` stored."""

    etag: str
    envelope: Envelope
    plaintext_len: int
    ciphertext_len: int
    parts: int
    """Parts of the multipart upload; 0 for a single PutObject."""


@dataclass(frozen=True)
class CopyResult:
    """What ``copy_object`` or ``rewrap`` did: the core's plan and the S3 requests made."""

    plan: CopyPlan
    etag: str | None
    """The destination's ETag; None when nothing was written (a rewrap that had nothing to do)."""
    requests: int
    """S3 write requests made (CopyObject, UploadPartCopy, PutObject, UploadPart, multipart
    create/complete), the sidecar copy included."""

    @property
    def action(self) -> str:
        """``native``, ``native_replace``, ``part_copy`` or ``reencrypt``."""
        return self.plan.action


@dataclass(frozen=True)
class ObjectInfo:
    """An object's HEAD, read through the core: format, key, sizes, envelope fields."""

    bucket: str
    key: str
    format: str
    """``isec``, ``plaintext``, ``legacy`` or ``unreadable`` (:func:`isec.classify`)."""
    kid: str | None
    envelope: Envelope | None
    ciphertext_len: int
    """Stored bytes (Content-Length)."""
    plaintext_len: int | None
    """For isec objects whose length follows from the stored size (single and parts
    layouts); None otherwise."""
    etag: str
    content_type: str | None
    metadata: dict[str, str]
    """The user metadata as stored, isec's keys included."""
    details: dict[str, int | str | None] = field(default_factory=dict)
    """:meth:`isec.Envelope.inspect` for isec objects (frame size, layout, frame and segment
    counts...)."""
    error: str | None = None
    """For unreadable objects: the code of what is wrong with the metadata."""
    headers: dict[str, Any] = field(default_factory=dict, repr=False)
    """The HEAD's system headers that a metadata REPLACE must resend."""


class Client:
    """Encrypting S3 operations over a boto3 client.

    ``part_size``: plaintext bytes per part; objects larger than one part are uploaded as a
    multipart upload in the parts layout (SPEC.md §6.2), each part encrypted independently
    and uploaded by a pool of ``max_workers`` threads (the crypto releases the GIL). For an
    upload of known size the core rounds the part size up to whole frames and grows it to
    fit S3's 10000 parts (:func:`isec.fit_part_size`). ``frame_size``: the frame
    size of new objects (default 64 KiB). ``copy_limits``: S3's limits that shape copies
    (smaller values make tests cheap). ``part_retries``: how often one part upload is
    retried after the S3 client itself gave up. ``reencrypt_rate``: bytes per second for
    re-encrypting copies (0: unlimited). ``allow_plaintext``: read objects that carry no
    encryption metadata as they are. Without it they raise ``not_encrypted``: anyone who
    can write to the bucket could otherwise replace an encrypted object with plaintext of
    their choosing and have it read back as authentic.
    """

    def __init__(
        self,
        s3: S3Client,
        keyring: Keyring,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        max_workers: int = 4,
        frame_size: int | None = None,
        copy_limits: CopyLimits | None = None,
        allow_plaintext: bool = False,
        part_retries: int = 2,
        reencrypt_rate: int = 0,
    ) -> None:
        if part_size <= 0:
            raise ValueError("part_size must be positive")
        if max_workers <= 0:
            raise ValueError("max_workers must be positive")
        if part_retries < 0:
            raise ValueError("part_retries must not be negative")
        self.s3 = s3
        self.keyring = keyring
        self.part_size = part_size
        self.max_workers = max_workers
        self.frame_size = frame_size
        self.copy_limits = copy_limits if copy_limits is not None else CopyLimits()
        self.allow_plaintext = allow_plaintext
        self.part_retries = part_retries
        self.reencrypt_rate = reencrypt_rate

    # --- head --------------------------------------------------------------------------------

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        """HEADs the object and reads its metadata through the core (no key needed)."""
        return self._info(bucket, key, self.s3.head_object(Bucket=bucket, Key=key))

    def _info(self, bucket: str, key: str, head: Mapping[str, Any]) -> ObjectInfo:
        meta = dict(head.get("Metadata") or {})
        size = int(head["ContentLength"])
        fmt = classify(meta)
        env = fmt.envelope
        details: dict[str, int | str | None] = {}
        plaintext_len: int | None = None
        if env is not None:
            try:
                details = env.inspect(size)
                pt = details.get("plaintext_len")
                plaintext_len = pt if isinstance(pt, int) else None
            except IsecError:
                # The table layout (its length needs the table), or a stored size the layout
                # cannot have: the envelope's own fields still describe the object.
                details = env.inspect()
        return ObjectInfo(
            bucket=bucket,
            key=key,
            format=fmt.format,
            kid=fmt.kid,
            envelope=env,
            ciphertext_len=size,
            plaintext_len=plaintext_len,
            etag=str(head.get("ETag", "")),
            content_type=head.get("ContentType"),
            metadata=meta,
            details=details,
            error=fmt.error,
            headers={h: head[h] for h in _KEPT_HEADERS if head.get(h) is not None},
        )

    # --- put -----------------------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        body: Body,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        extra_args: Mapping[str, Any] | None = None,
    ) -> PutResult:
        """Encrypts and uploads ``body`` (bytes-like, binary file object, or path).

        Up to ``part_size`` bytes: one PutObject of a single-layout object. Larger: a
        multipart upload in the parts layout whose parts are encrypted and uploaded in
        parallel; a failure aborts the upload. Sizes are declared in the envelope whenever
        they are known (buffers, paths, seekable files), so a reader also checks the total
        length. Streams of unknown length are read one part ahead, to know which part is last.
        ``metadata`` is user metadata (keys with or without ``x-amz-meta-``; a key the format
        owns, such as ``isec``, raises ``ValueError``); ``extra_args`` go to PutObject /
        CreateMultipartUpload as they are (``ServerSideEncryption``, ``Tagging``...).
        """
        extra = self._extra(content_type, extra_args)
        user = _caller_metadata(metadata)
        with _reader(body) as (read, size):
            if size is not None:
                return self._put_known(bucket, key, read, size, user, extra)
            return self._put_stream(bucket, key, read, user, extra)

    def _put_known(
        self,
        bucket: str,
        key: str,
        read: Callable[[int], memoryview],
        size: int,
        user: dict[str, str],
        extra: dict[str, Any],
    ) -> PutResult:
        if size <= self.part_size:
            data = read(size)
            if len(data) != size:
                raise ValueError(f"the body ended after {len(data)} of {size} bytes")
            return self._put_single(bucket, key, data, user, extra, declared=size)
        part = fit_part_size(size, self.part_size, frame_size=self.frame_size)
        env, okey = self.keyring.create_envelope(frame_size=self.frame_size, part_size=part, declared_size=size)
        count = -(-size // part)

        def parts() -> Iterator[_Part]:
            for n in range(1, count + 1):
                want = min(part, size - (n - 1) * part)
                data = read(want)
                if len(data) != want:
                    raise ValueError(f"the body ended before its announced {size} bytes")
                yield self._uploaded_part(bucket, key, n, _encrypting(okey, n, n == count, data))

        etag, ct_len, n_parts = self._multipart(bucket, key, object_metadata(user, env), extra, parts())
        return PutResult(etag, env, size, ct_len, n_parts)

    def _put_stream(
        self,
        bucket: str,
        key: str,
        read: Callable[[int], memoryview],
        user: dict[str, str],
        extra: dict[str, Any],
    ) -> PutResult:
        first = read(self.part_size)
        nxt = read(self.part_size) if len(first) == self.part_size else memoryview(b"")
        if not nxt:
            return self._put_single(bucket, key, first, user, extra, declared=len(first))
        env, okey = self.keyring.create_envelope(frame_size=self.frame_size, part_size=self.part_size)
        total = 0

        def parts() -> Iterator[_Part]:
            nonlocal total
            cur, ahead, n = first, nxt, 1
            while True:
                last = len(ahead) == 0
                total += len(cur)
                yield self._uploaded_part(bucket, key, n, _encrypting(okey, n, last, cur))
                if last:
                    return
                n += 1
                cur = ahead
                ahead = read(self.part_size) if len(cur) == self.part_size else memoryview(b"")

        etag, ct_len, n_parts = self._multipart(bucket, key, object_metadata(user, env), extra, parts())
        return PutResult(etag, env, total, ct_len, n_parts)

    def _put_single(
        self,
        bucket: str,
        key: str,
        data: Buffer,
        user: dict[str, str],
        extra: dict[str, Any],
        *,
        declared: int,
    ) -> PutResult:
        env, okey = self.keyring.create_envelope(frame_size=self.frame_size, declared_size=declared)
        ct = encrypt(okey, data)
        r = self.s3.put_object(Bucket=bucket, Key=key, Body=ct, Metadata=object_metadata(user, env), **extra)
        return PutResult(str(r.get("ETag", "")), env, declared, len(ct), 0)

    def _multipart(
        self,
        bucket: str,
        key: str,
        metadata: dict[str, str],
        extra: Mapping[str, Any],
        parts: Iterable[_Part],
    ) -> tuple[str, int, int]:
        """One multipart upload: each of ``parts`` is called with the upload id in a worker
        thread and returns its part entry and the bytes it stored. At most ``max_workers + 1``
        parts are held at once, so memory stays bounded whatever the object's size; input
        stops being read after the first failure. Returns (ETag, bytes stored, part count);
        aborts the upload on any failure."""
        created = self.s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata, **extra)
        upload_id = created["UploadId"]
        try:
            failed = threading.Event()
            slots = threading.BoundedSemaphore(self.max_workers + 1)
            futures: list[Future[tuple[dict[str, Any], int]]] = []

            def release(f: Future[Any]) -> None:
                slots.release()
                if f.cancelled() or f.exception() is not None:
                    failed.set()

            with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="isec-s3") as pool:
                try:
                    for part in parts:
                        slots.acquire()
                        if failed.is_set():
                            slots.release()
                            break
                        fut = pool.submit(part, upload_id)
                        fut.add_done_callback(release)
                        futures.append(fut)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
            results = [f.result() for f in futures]
            entries = sorted((e for e, _ in results), key=lambda e: int(e["PartNumber"]))
            r = self.s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": entries}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return str(r.get("ETag", "")), sum(n for _, n in results), len(entries)

    def _uploaded_part(self, bucket: str, key: str, n: int, make: Callable[[], Buffer]) -> _Part:
        return lambda upload_id: self._upload_part(bucket, key, upload_id, n, make)

    def _upload_part(
        self, bucket: str, key: str, upload_id: str, n: int, make: Callable[[], Buffer]
    ) -> tuple[dict[str, Any], int]:
        """UploadPart with ``make()`` as the body, made again for each retry.

        Nonces and retries: the makers of ``put_object`` call :func:`isec.encrypt_part`,
        which draws a fresh random nonce prefix inside the core at every call, so a retried
        part is new ciphertext under new nonces; whichever attempt S3 keeps under that part
        number, no nonce ever protected two different plaintexts. The S3 client's own
        retries resend the identical body (same plaintext under the same nonces: the same
        bytes), which reuses nothing either. Re-encrypting rather than keeping the first
        ciphertext costs one more pass of AES-GCM per retry and saves holding a second copy
        of every in-flight part. What would be unsafe, encrypting other bytes under a prefix
        already used, cannot be expressed: the prefix never leaves the core.
        """
        attempt = 0
        while True:
            body = make()
            try:
                r = self.s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=body)
                return {"PartNumber": n, "ETag": r["ETag"]}, memoryview(body).nbytes
            except Exception as e:
                attempt += 1
                if attempt > self.part_retries or _refused(e):
                    raise

    # --- get -----------------------------------------------------------------------------------

    def get_object(self, bucket: str, key: str) -> bytes:
        """Downloads and decrypts the whole object in one GET; nothing is returned unless
        every frame and the object's end verified."""
        r = self.s3.get_object(Bucket=bucket, Key=key)
        with contextlib.closing(r["Body"]) as body:
            data = body.read()
        info = self._info(bucket, key, {**r, "ContentLength": len(data)})
        okey = self._open(info)
        if okey is None:
            return bytes(data)
        if okey.layout == "table":
            return decrypt_with_table(okey, self._table(info), data)
        return decrypt(okey, data)

    def iter_object(self, bucket: str, key: str, *, chunk_size: int = MIB) -> Iterator[bytes]:
        """Streams the decrypted object in chunks, holding one chunk at a time.

        Each frame is released only after it verified, but frames are released before the
        end of the object is known: a truncated object raises at the end, after its verified
        prefix was yielded. Use ``get_object`` when a prefix must not be acted on."""
        r = self.s3.get_object(Bucket=bucket, Key=key)
        with contextlib.closing(r["Body"]) as body:
            info = self._info(bucket, key, r)
            okey = self._open(info)
            if okey is None:
                yield from body.iter_chunks(chunk_size)
                return
            if okey.layout == "table":
                dec = Decryptor.with_table(okey, self._table(info), info.ciphertext_len)
            else:
                dec = Decryptor.with_shape(okey, Shape.from_ciphertext_len(okey, info.ciphertext_len))
            for chunk in body.iter_chunks(chunk_size):
                out = dec.update(chunk)
                if out:
                    yield out
            tail = dec.finalize()
            if tail:
                yield tail

    def download_file(self, bucket: str, key: str, dst: PathOrFile, *, chunk_size: int = MIB) -> int:
        """Streams the decrypted object into ``dst`` (a path or a binary file object);
        returns the plaintext length. A path is written to completion or deleted."""
        if isinstance(dst, (str, os.PathLike)):
            try:
                with open(dst, "wb") as f:
                    return self._download_into(bucket, key, f, chunk_size)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dst)
                raise
        return self._download_into(bucket, key, dst, chunk_size)

    def _download_into(self, bucket: str, key: str, f: IO[bytes], chunk_size: int) -> int:
        n = 0
        for chunk in self.iter_object(bucket, key, chunk_size=chunk_size):
            f.write(chunk)
            n += len(chunk)
        return n

    def get_range(self, bucket: str, key: str, start: int, end: int | None = None) -> bytes:
        """Plaintext bytes ``[start, end)`` (like a slice: clamped to the object, ``end=None``
        for the rest). Fetches only the whole frames the core maps the range to, in one
        ranged GET pinned to the HEAD's ETag, and returns exactly the requested bytes after
        those frames verified."""
        if start < 0 or (end is not None and end < 0):
            raise ValueError("start and end are offsets from the object's beginning")
        info = self.head_object(bucket, key)
        okey = self._open(info)

        def fetch(a: int, b: int) -> bytes:
            r = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={a}-{b - 1}", IfMatch=info.etag)
            with contextlib.closing(r["Body"]) as body:
                return bytes(body.read())

        if okey is None:
            stop = info.ciphertext_len if end is None else min(end, info.ciphertext_len)
            return fetch(start, stop) if start < stop else b""
        shape = self._shape(info, okey)
        stop = shape.plaintext_len if end is None else end
        return decrypt_range(okey, shape, start, stop, fetch)

    # --- copy and rewrap ---------------------------------------------------------------------

    def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        metadata_directive: str = "COPY",
        new_metadata: Mapping[str, str] | None = None,
        target_kid: str | None = None,
        rotate_dek: bool = False,
        require_encryption: bool = False,
        content_type: str | None = None,
        extra_args: Mapping[str, Any] | None = None,
    ) -> CopyResult:
        """Copies an object the cheapest way the core finds valid (SPEC.md §12):

        - ``native``: CopyObject; the server copies the bytes.
        - ``native_replace``: CopyObject with the REPLACE directive and the plan's metadata
          (the new user metadata with the envelope carried over, or rewrapped under
          ``target_kid``); no object bytes move.
        - ``part_copy``: a multipart upload of UploadPartCopy requests over the plan's
          frame-aligned ranges, for sources above the single-copy limit; no object bytes move.
        - ``reencrypt``: download, verify, re-encrypt under a new DEK, upload: only for
          ``rotate_dek`` or a plaintext source with ``require_encryption``.

        ``new_metadata`` is the user metadata for ``metadata_directive="REPLACE"``. System
        headers (Content-Type...) are kept from the source unless ``content_type`` /
        ``extra_args`` say otherwise.
        """
        src = self.head_object(src_bucket, src_key)
        shape: Shape | None = None
        sidecar = False
        if src.envelope is not None and src.envelope.layout == "table":
            okey = self._open(src)
            assert okey is not None
            shape = self._shape(src, okey)
            # A table that is not inline is in the sidecar, which the copy must take along.
            sidecar = table_source(src.metadata) is None
        plan = decide_copy(
            src.metadata,
            src.ciphertext_len,
            keyring=self.keyring,
            source_sidecar=sidecar,
            source_shape=shape,
            directive=metadata_directive,
            new_metadata=new_metadata,
            target_kid=target_kid,
            rotate_dek=rotate_dek,
            require_encryption=require_encryption,
            limits=self.copy_limits,
        )
        return self._execute(plan, src, dst_bucket, dst_key, content_type, extra_args)

    def rewrap(self, bucket: str, key: str, new_kid: str | None = None) -> CopyResult:
        """Puts the object's DEK under ``new_kid`` (default: the keyring's active key) in
        place: a self-copy with the REPLACE directive and the rewrapped envelope, keeping the
        user metadata and system headers. No object bytes move; the body is unchanged
        (SPEC.md §10.2). An object already under ``new_kid`` is left alone (``etag`` None)."""
        kid = new_kid if new_kid is not None else self.keyring.active_kid
        if kid is None:
            # No active key: let the core raise its typed key_not_active.
            self.keyring.create_envelope()
        return self.copy_object(bucket, key, bucket, key, target_kid=kid)

    def _execute(
        self,
        plan: CopyPlan,
        src: ObjectInfo,
        dst_bucket: str,
        dst_key: str,
        content_type: str | None,
        extra_args: Mapping[str, Any] | None,
    ) -> CopyResult:
        same = (src.bucket, src.key) == (dst_bucket, dst_key)
        source = {"Bucket": src.bucket, "Key": src.key}
        asked = self._extra(content_type, extra_args)
        headers = {**src.headers, **asked}
        if plan.action == "native" and same and not asked:
            return CopyResult(plan, None, 0)
        requests = 0
        src_side, dst_side = plan.sidecar_key(src.key), plan.sidecar_key(dst_key)
        if src_side is not None and dst_side is not None:
            # The sidecar first: a destination whose table is missing would be unreadable.
            self.s3.copy_object(Bucket=dst_bucket, Key=dst_side, CopySource={"Bucket": src.bucket, "Key": src_side})
            requests += 1
        if plan.action in ("native", "native_replace"):
            args: dict[str, Any] = {"CopySourceIfMatch": src.etag}
            if plan.metadata is not None:
                args.update(MetadataDirective="REPLACE", Metadata=dict(plan.metadata), **headers)
            elif same or asked:
                # New system headers (or a self-copy, which must change something) need the
                # REPLACE directive; the user metadata goes along unchanged.
                args.update(MetadataDirective="REPLACE", Metadata=src.metadata, **headers)
            r = self.s3.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source, **args)
            etag = str(r.get("CopyObjectResult", {}).get("ETag", ""))
            return CopyResult(plan, etag, requests + 1)
        if plan.action == "part_copy":

            def copy_part(n: int, start: int, end: int) -> _Part:
                def run(upload_id: str) -> tuple[dict[str, Any], int]:
                    r = self.s3.upload_part_copy(
                        Bucket=dst_bucket,
                        Key=dst_key,
                        UploadId=upload_id,
                        PartNumber=n,
                        CopySource=source,
                        CopySourceRange=f"bytes={start}-{end - 1}",
                        CopySourceIfMatch=src.etag,
                    )
                    return {"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]}, end - start

                return run

            parts = [copy_part(n, s, e) for n, (s, e) in enumerate(plan.ranges, start=1)]
            meta = dict(plan.metadata) if plan.metadata is not None else dict(src.metadata)
            etag, _, count = self._multipart(dst_bucket, dst_key, meta, headers, parts)
            return CopyResult(plan, etag, requests + count + 2)
        if plan.action == "reencrypt":
            return self._reencrypt(plan, src, dst_bucket, dst_key, headers)
        raise AssertionError(f"unknown copy action {plan.action!r}")

    def _reencrypt(
        self,
        plan: CopyPlan,
        src: ObjectInfo,
        dst_bucket: str,
        dst_key: str,
        headers: dict[str, Any],
    ) -> CopyResult:
        # The destination's user metadata, format keys removed: the new metadata for REPLACE,
        # the source's for COPY (the core sets it on every reencrypt plan).
        user = dict(plan.metadata or ())
        r = self.s3.get_object(Bucket=src.bucket, Key=src.key, IfMatch=src.etag)
        with contextlib.closing(r["Body"]) as body:
            if src.format == "plaintext":
                put = self.put_object(dst_bucket, dst_key, _BodyReader(body), metadata=user, extra_args=headers)
                writes = put.parts + 2 if put.parts else 1
                return CopyResult(plan, put.etag, 1 + writes)
            if src.envelope is None or src.format != "isec":
                raise UnsupportedObjectError(f"cannot re-encrypt a {src.format} object")
            okey = self._open(src)
            assert okey is not None
            shape = self._shape(src, okey)
            # The new object is in the parts layout, one isec part per S3 part.
            job = Reencryption.start(
                self.keyring, IsecSource(self.keyring, src.envelope, shape), frame_size=self.frame_size,
                part_size=self.part_size, rate=self.reencrypt_rate,
            )
            meta = object_metadata(user, job.target_envelope)
            stream = _job_output(job, body.iter_chunks(MIB))
            if job.progress.parts_total == 1:
                ct = b"".join(stream)
                put = self.s3.put_object(Bucket=dst_bucket, Key=dst_key, Body=ct, Metadata=meta, **headers)
                return CopyResult(plan, str(put.get("ETag", "")), 2)
            pieces = _rechunk(stream, job.target_part_len)

            parts = (
                self._uploaded_part(dst_bucket, dst_key, n, _constant(piece))
                for n, piece in enumerate(pieces, start=1)
            )
            etag, _, n_parts = self._multipart(dst_bucket, dst_key, meta, headers, parts)
            return CopyResult(plan, etag, 1 + n_parts + 2)

    # --- helpers -------------------------------------------------------------------------------

    def _extra(self, content_type: str | None, extra_args: Mapping[str, Any] | None) -> dict[str, Any]:
        extra = dict(extra_args or {})
        for reserved in ("Bucket", "Key", "Body", "Metadata"):
            if reserved in extra:
                raise ValueError(f"{reserved} is set by the helper, not through extra_args")
        if content_type is not None:
            extra["ContentType"] = content_type
        return extra

    def _open(self, info: ObjectInfo) -> ObjectKey | None:
        """The object key of an isec object; None for a plaintext object the client accepts."""
        if info.format == "isec" and info.envelope is not None:
            return self.keyring.open(info.envelope)
        where = f"s3://{info.bucket}/{info.key}"
        if info.format == "plaintext":
            if self.allow_plaintext:
                return None
            raise isec_error("not_encrypted", where)
        if info.format == "unreadable" and info.error is not None:
            # The core's own code for what is wrong with the metadata.
            raise isec_error(info.error, where)
        raise UnsupportedObjectError(f"s3://{info.bucket}/{info.key} is a {info.format} object ({info.error})")

    def _shape(self, info: ObjectInfo, okey: ObjectKey) -> Shape:
        if okey.layout == "table":
            return Shape.from_table(okey, self._table(info), info.ciphertext_len)
        return Shape.from_ciphertext_len(okey, info.ciphertext_len)

    def _table(self, info: ObjectInfo) -> bytes:
        """A table-layout object's segment table: inline in metadata, or its sidecar object
        (SPEC.md §6.3), as the core locates it. The core verifies its MAC before using it."""
        inline = table_source(info.metadata)
        if inline is not None:
            return inline
        r = self.s3.get_object(Bucket=info.bucket, Key=table_sidecar_key(info.key))
        with contextlib.closing(r["Body"]) as body:
            return bytes(body.read())


# --- module helpers ------------------------------------------------------------------------------


def _encrypting(okey: ObjectKey, n: int, last: bool, data: Buffer) -> Callable[[], Buffer]:
    """A part body maker: a fresh encryption (fresh nonce prefix) at every call."""
    return lambda: encrypt_part(okey, n, last, data)


def _refused(e: Exception) -> bool:
    """Whether S3 answered with a client error that a retry would only repeat (access
    denied, no such upload...), as opposed to a lost connection, a timeout or a 5xx."""
    response = getattr(e, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def _constant(body: bytes) -> Callable[[], Buffer]:
    """A part body maker for bytes that are already ciphertext."""
    return lambda: body


def _caller_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's metadata for a new object, normalised by the core. A key the format owns
    is refused rather than dropped: a caller who sets ``isec`` made a mistake, and silently
    losing a value would hide it."""
    given = dict(metadata or {})
    user = user_metadata(given)
    if len(user) != len(given):
        owned = sorted(k for k, v in given.items() if not user_metadata({k: v}))
        raise ValueError(f"metadata keys {owned} belong to the encryption format")
    return user


def _job_output(job: Reencryption, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Feeds source ciphertext to a re-encryption job; yields the new ciphertext."""
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            step = job.update(view, int(time.monotonic() * 1000))
            if step.output:
                yield step.output
            view = view[step.consumed :]
            if step.consumed == 0:
                time.sleep(max(step.wait_ms, 1) / 1000)
    tail = job.finish()
    if tail:
        yield tail


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Pieces of exactly ``size`` bytes (the last one shorter)."""
    buf = bytearray()
    for c in chunks:
        buf += c
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


class _BodyReader:
    """A streaming response body as a file object of unknown length."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, n: int = -1) -> bytes:
        return bytes(self._body.read(n if n >= 0 else None))


@contextlib.contextmanager
def _reader(body: Body) -> Iterator[tuple[Callable[[int], memoryview], int | None]]:
    """``read(n)``: the next n bytes (fewer only at the end), and the total size if known."""
    if isinstance(body, (str, os.PathLike)):
        with open(body, "rb") as f:
            yield _file_read(f), os.fstat(f.fileno()).st_size
        return
    if hasattr(body, "read"):
        stream = cast(Readable, body)
        yield _file_read(stream), _remaining(stream)
        return
    view = memoryview(body).cast("B")
    at = 0

    def read_view(n: int) -> memoryview:
        nonlocal at
        piece = view[at : at + n]
        at += len(piece)
        return piece

    yield read_view, view.nbytes


def _file_read(f: Readable | IO[bytes]) -> Callable[[int], memoryview]:
    def read(n: int) -> memoryview:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        readinto = getattr(f, "readinto", None)
        while got < n:
            if readinto is not None:
                k = readinto(view[got:])
            else:
                piece = f.read(n - got)
                k = len(piece)
                view[got : got + k] = piece
            if not k:
                break
            got += k
        return view[:got]

    return read


def _remaining(f: Readable | IO[bytes]) -> int | None:
    """Bytes left in a seekable regular file, or None (pipes, sockets, response bodies)."""
    if not isinstance(f, io.IOBase):
        return None
    try:
        if not f.seekable():
            return None
        at = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(at)
        return max(0, end - at)
    except (AttributeError, OSError, ValueError):
        return None
