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

Every decision is the core's: what an object is and which sidecar it needs before it can
be read (:class:`isec.ObjectOpen`, SPEC.md §12.1), which copy to make and with which
metadata (:func:`isec.decide_copy`), which S3 requests execute it, in which order, and what
to undo when one fails (:func:`isec.copy_steps`, SPEC.md §12.2), which ciphertext bytes a
plaintext range needs (:meth:`isec.Shape.map_range`, :meth:`isec.LegacyObject.plan_range`),
how an envelope is rewrapped, which metadata a new object gets
(:func:`isec.object_metadata`), how big parts must be (:func:`isec.fit_part_size`). This
module only turns those answers into S3 requests. Nothing here imports boto3: any object
with boto3's S3 client methods works.

The previous proxy's objects (SPEC.md §11) are read like isec objects, whole, streamed and
ranged, with the legacy secrets of the keyring (:meth:`isec.Keyring.add_legacy_secret_string`),
and copied with their sidecar. An object that looks plain is plaintext only once core's probe
found no previous-proxy sidecar for it, so such an object's ciphertext is never returned as
data, whatever ``allow_plaintext`` says.

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
import itertools
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol, Union, cast

from ._files import PathOrFile
from ._jobs import Job, ObjectChangedError, _Resume
from ._isec import (
    BucketJob,
    CARRIED_HEADERS,
    CopyLimits,
    CopyPlan,
    CopyStep,
    Decryptor,
    EMPTY_OBJECT_STATUS,
    Envelope,
    IsecError,
    IsecSource,
    Keyring,
    LegacyDecryptor,
    LegacyKey,
    LegacyObject,
    LegacySource,
    ObjectKey,
    ObjectOpen,
    Opened,
    OpenStep,
    Reencryption,
    S3Request,
    WholeRead,
    Shape,
    classify,
    copy_steps,
    decide_copy,
    decrypt,
    decrypt_range,
    decrypt_with_table,
    encrypt,
    Encryptor,
    first_part_number,
    fit_part_size,
    isec_error,
    legacy_decrypt,
    legacy_decrypt_range,
    migrate_steps,
    object_metadata,
    table_sidecar_key,
    user_metadata,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DEFAULT_PART_SIZE",
    "Body",
    "Client",
    "CopyResult",
    "Job",
    "ObjectChangedError",
    "MigrateResult",
    "ObjectInfo",
    "PutResult",
    "Readable",
    "RepairResult",
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
_READ_STEP = MIB
_WRITE_STEP = 256 * 1024
DEFAULT_PART_SIZE = 8 * MIB
"""Plaintext bytes per part of a multipart upload, and the size above which uploads are
multipart. A multiple of every frame size up to 8 MiB, and above S3's 5 MiB part minimum."""

# The system headers a REPLACE copy or a new upload carries from the source's HEAD (core's
# CARRIED_HEADERS, in boto3's parameter names), and the storage class; the caller's own
# values win.
_CARRIED = (*("".join(w.capitalize() for w in h.split("-")) for h in CARRIED_HEADERS), "StorageClass")


class UnsupportedObjectError(Exception):
    """No longer raised: the helper reads every format core opens, the previous proxy's
    included, and reports failures as :class:`isec.IsecError` with core's codes. Kept so
    that code catching it still imports."""


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
class MigrateResult:
    """What ``migrate`` did to one object."""

    migrated: bool
    """True when a previous-proxy object was re-encrypted in place; False for an object
    already in the isec format (left alone)."""
    kid: str | None
    """The object's kid afterwards: the active key for a migrated object."""
    plaintext_len: int | None
    etag: str | None
    """The new object's ETag; None when nothing was written."""
    sidecar_deleted: str | None = None
    """The object-keyed sidecar of the previous proxy, deleted after the new object
    verified; None when the object had none."""
    sidecar_kept: str | None = None
    """A generation-keyed sidecar (staged layout), left in place: native copies of the
    object may share it."""
    plan: CopyPlan | None = None
    """The core's copy decision (``reencrypt``), None for an object left alone."""


@dataclass(frozen=True)
class RepairResult:
    """What ``repair`` did: the envelope it attached and how much it verified."""

    etag: str
    """The repaired object's ETag (that of the body which verified)."""
    kid: str | None
    plaintext_len: int
    """Plaintext bytes of the body, all of which decrypted before anything was written."""
    table_sidecar: str | None
    """The segment-table sidecar copied next to the object (table layout), or None."""


@dataclass(frozen=True)
class ObjectInfo:
    """An object's HEAD, read through the core: format, key, sizes, envelope fields."""

    bucket: str
    key: str
    format: str
    """``isec``, ``legacy`` (the previous proxy's), ``plaintext`` or ``unreadable``
    (:class:`isec.ObjectOpen`; ``plaintext`` only when no previous-proxy sidecar exists)."""
    kid: str | None
    envelope: Envelope | None
    ciphertext_len: int
    """Stored bytes (Content-Length)."""
    plaintext_len: int | None
    """For isec objects whose length follows from the stored size (single and parts
    layouts) and for previous-proxy objects; None otherwise."""
    etag: str
    content_type: str | None
    metadata: dict[str, str]
    """The user metadata as stored, isec's keys included."""
    details: dict[str, int | str | None] = field(default_factory=dict)
    """:meth:`isec.Envelope.inspect` for isec objects (frame size, layout, frame and segment
    counts...); ``layout``, ``seal_count`` and ``sidecar`` for previous-proxy objects."""
    error: str | None = None
    """For unreadable objects: the code of what is wrong with the metadata."""
    headers: dict[str, Any] = field(default_factory=dict, repr=False)
    """The HEAD's system headers that a metadata REPLACE must resend."""
    opened: Opened | None = field(default=None, repr=False)
    """What :class:`isec.ObjectOpen` made of the HEAD and the sidecar it named (None for
    unreadable objects)."""

    @property
    def legacy(self) -> LegacyObject | None:
        """A previous-proxy object's geometry and wrapped DEK."""
        return self.opened.legacy if self.opened is not None else None

    @property
    def table(self) -> bytes | None:
        """A table-layout isec object's encoded segment table (inline or from its sidecar)."""
        return self.opened.table if self.opened is not None else None


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
    re-encrypting copies (0: unlimited). ``range_cache``: how many objects' HEADs
    :meth:`get_range` remembers (0: a HEAD before every range). ``allow_plaintext``: read objects that carry no
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
        range_cache: int = 64,
    ) -> None:
        if part_size <= 0:
            raise ValueError("part_size must be positive")
        if max_workers <= 0:
            raise ValueError("max_workers must be positive")
        if part_retries < 0:
            raise ValueError("part_retries must not be negative")
        if range_cache < 0:
            raise ValueError("range_cache must not be negative")
        self.s3 = s3
        self.keyring = keyring
        self.part_size = part_size
        self.max_workers = max_workers
        self.frame_size = frame_size
        self.copy_limits = copy_limits if copy_limits is not None else CopyLimits()
        self.allow_plaintext = allow_plaintext
        self.part_retries = part_retries
        self.reencrypt_rate = reencrypt_rate
        self.range_cache = range_cache
        self._opened: OrderedDict[tuple[str, str], ObjectInfo] = OrderedDict()
        self._opened_lock = threading.Lock()

    # --- head --------------------------------------------------------------------------------

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        """HEADs the object and opens it through the core (:class:`isec.ObjectOpen`),
        fetching the sidecar core names (a table, the previous proxy's metadata, or the probe
        that tells a plain object from a streamed upload of that proxy). No key needed.
        Raises core's code when a sidecar is missing, too large or does not parse."""
        return self._info(bucket, key, self.s3.head_object(Bucket=bucket, Key=key))

    def _info(self, bucket: str, key: str, head: Mapping[str, Any]) -> ObjectInfo:
        meta = dict(head.get("Metadata") or {})
        size = int(head["ContentLength"])
        base: dict[str, Any] = {
            "bucket": bucket,
            "key": key,
            "ciphertext_len": size,
            "etag": str(head.get("ETag", "")),
            "content_type": head.get("ContentType"),
            "metadata": meta,
            "headers": {h: head[h] for h in _CARRIED if head.get(h) is not None},
        }
        try:
            opening = ObjectOpen(key, meta, size)
        except IsecError as e:
            # What is wrong with the metadata: reads raise it; a byte copy may still preserve
            # the object (decide_copy says).
            return ObjectInfo(
                format="unreadable", kid=classify(meta).kid, envelope=None, plaintext_len=None, error=e.code, **base
            )
        step = opening.next
        while step.kind == "fetch":
            body = self._sidecar(bucket, step)
            try:
                step = opening.feed(body)
            except IsecError as e:
                raise isec_error(e.code, f"s3://{bucket}/{step.key} (sidecar of s3://{bucket}/{key})") from e
        opened = step.opened
        assert opened is not None
        details: dict[str, int | str | None] = {}
        plaintext_len: int | None = None
        kid: str | None = None
        env = opened.envelope
        if env is not None:
            kid = env.kid
            try:
                details = env.inspect(size)
                pt = details.get("plaintext_len")
                plaintext_len = pt if isinstance(pt, int) else None
            except IsecError:
                # The table layout (its length needs the table), or a stored size the layout
                # cannot have: the envelope's own fields still describe the object.
                details = env.inspect()
        elif opened.legacy is not None:
            obj = opened.legacy
            kid = obj.kid
            plaintext_len = obj.plaintext_len
            details = {"layout": obj.layout, "seal_count": obj.seal_count, "sidecar": opened.legacy_sidecar}
        return ObjectInfo(
            format=opened.format, kid=kid, envelope=env, plaintext_len=plaintext_len, details=details, opened=opened, **base
        )

    def _sidecar(self, bucket: str, step: OpenStep) -> bytes | None:
        """The body of the sidecar core asked for, or None when it does not exist (404). At
        most one byte over core's cap is read: core refuses such a body with its own code."""
        assert step.key is not None and step.max_len is not None
        try:
            r = self.s3.get_object(Bucket=bucket, Key=step.key)
        except Exception as e:
            if _status(e) == 404:
                return None
            raise
        with contextlib.closing(r["Body"]) as body:
            return bytes(body.read(step.max_len + 1))

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
        self._forget(bucket, key)
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
        sealer = _PartSealer(okey, self.max_workers + 1)

        def parts() -> Iterator[_Part]:
            for n in range(1, count + 1):
                want = min(part, size - (n - 1) * part)
                data = read(want)
                if len(data) != want:
                    raise ValueError(f"the body ended before its announced {size} bytes")
                yield sealer.part(self, bucket, key, n, n == count, data)

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
        sealer = _PartSealer(okey, self.max_workers + 1)

        def parts() -> Iterator[_Part]:
            nonlocal total
            cur, ahead, n = first, nxt, 1
            while True:
                last = len(ahead) == 0
                total += len(cur)
                yield sealer.part(self, bucket, key, n, last, cur)
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
        *,
        upload_id: str | None = None,
        kept: list[dict[str, Any]] | None = None,
        stored: Callable[[str, int], None] | None = None,
    ) -> tuple[str, int, int]:
        """One multipart upload: each of ``parts`` is called with the upload id in a worker
        thread and returns its part entry and the bytes it stored. At most ``max_workers + 1``
        parts are held at once, so memory stays bounded whatever the object's size; input
        stops being read after the first failure. Returns (ETag, bytes stored, part count);
        aborts the upload on any failure.

        ``upload_id`` and ``kept``: an open upload to go on with and the entries of its parts
        already stored. ``stored(upload_id, n)`` is called from this thread, between parts,
        whenever parts ``1..=n`` are all stored; the caller then owns the upload, which a
        failure leaves open for it to take up or abort."""
        if upload_id is None:
            created = self.s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata, **extra)
            upload_id = str(created["UploadId"])
        kept = list(kept or ())
        # Parts 1..upto are stored; a checkpoint of 1..saved is the caller's.
        upto = saved = len(kept)
        try:
            failed = threading.Event()
            slots = threading.BoundedSemaphore(self.max_workers + 1)
            futures: list[Future[tuple[dict[str, Any], int]]] = []
            landed: set[int] = set()
            guard = threading.Lock()

            def release(f: Future[tuple[dict[str, Any], int]]) -> None:
                if f.cancelled() or f.exception() is not None:
                    failed.set()
                else:
                    # Before the slot is free: a part taken after it sees it stored.
                    with guard:
                        landed.add(int(f.result()[0]["PartNumber"]))
                slots.release()

            def report() -> None:
                nonlocal upto, saved
                with guard:
                    while upto + 1 in landed:
                        upto += 1
                if stored is not None and upto > saved:
                    assert upload_id is not None
                    stored(upload_id, upto)
                    saved = upto

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
                        report()
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
            results = [f.result() for f in futures]
            # Every part stored: the checkpoint names the upload about to complete, so a
            # checkpoint of an upload before it (a runner that died) is aborted, not this one.
            report()
            entries = sorted([*kept, *(e for e, _ in results)], key=_part_number)
            r = self.s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": entries}
            )
        except BaseException:
            if stored is None or saved == 0:
                # No checkpoint names the upload: nobody could take it up.
                self._abort(bucket, key, upload_id)
            raise
        return str(r.get("ETag", "")), sum(n for _, n in results), len(entries)

    def _uploaded_part(self, bucket: str, key: str, n: int, make: Callable[[], Buffer]) -> _Part:
        return lambda upload_id: self._upload_part(bucket, key, upload_id, n, make)

    def _upload_part(
        self, bucket: str, key: str, upload_id: str, n: int, make: Callable[[], Buffer]
    ) -> tuple[dict[str, Any], int]:
        """UploadPart with ``make()`` as the body, made again for each retry.

        Nonces and retries: ``put_object`` encrypts each part once, under a fresh random
        nonce prefix the core draws (:class:`isec.Encryptor` ``for_part``), and every
        attempt, the S3 client's own retries and these, sends those identical bytes: the
        same plaintext under the same nonces, which reuses nothing. Whichever attempt S3
        keeps under that part number, no nonce ever protected two different plaintexts.
        What would be unsafe, encrypting other bytes under a prefix already used, cannot be
        expressed: the prefix never leaves the core.
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
        """Downloads and decrypts the whole object; nothing is returned unless every frame (or
        previous-proxy seal) and the object's end verified.

        The body arrives as pieces of about ``part_size``, in one GET with one worker, else in
        up to ``max_workers`` ranged GETs at once, decrypted in order as they land (see
        :meth:`iter_object`)."""
        out = io.BytesIO()
        # Written in small steps: each write holds the GIL, which the GETs in flight need.
        self._read_into(bucket, key, out.write, _WRITE_STEP, whole=True)
        return out.getvalue()

    def iter_object(self, bucket: str, key: str, *, chunk_size: int = MIB) -> Iterator[bytes]:
        """Streams the decrypted object in chunks of at most about ``chunk_size`` bytes.

        With one worker the object comes in one streamed GET, read in ``part_size`` pieces.
        With more, the GET of its first part also brings the metadata, and the rest comes by
        up to ``max_workers`` ranged GETs in flight at once, pinned to that GET's ETag (a
        concurrent overwrite fails the read with 412 instead of mixing two objects). Memory
        stays near ``max_workers + 2`` pieces.

        Each frame is released only after it verified, but frames are released before the
        end of the object is known: a truncated object raises at the end, after its verified
        prefix was yielded. Use ``get_object`` when a prefix must not be acted on."""
        dec, pieces = self._get(bucket, key)
        with contextlib.closing(pieces):
            for view in _plaintext(dec, pieces):
                for i in range(0, len(view), chunk_size):
                    yield bytes(view[i : i + chunk_size])

    def _read_into(
        self,
        bucket: str,
        key: str,
        write: Callable[[memoryview], object],
        chunk_size: int | None = None,
        *,
        whole: bool = False,
    ) -> int:
        """Writes the decrypted object through ``write`` (in ``chunk_size`` slices, or as the
        pieces verify); returns its length. ``write`` must copy what it keeps: the views
        point into a buffer that is reused. ``whole``: the caller holds the whole plaintext
        anyway, so a previous-proxy seal of any size may be buffered."""
        dec, pieces = self._get(bucket, key, whole=whole)
        n = 0
        with contextlib.closing(pieces):
            for view in _plaintext(dec, pieces):
                step = chunk_size or len(view) or 1
                for i in range(0, len(view), step):
                    write(view[i : i + step])
                n += len(view)
        return n

    def _get(
        self, bucket: str, key: str, *, whole: bool = False
    ) -> tuple[Decryptor | LegacyDecryptor | None, Generator[Buffer, None, None]]:
        """Opens an object for a whole read: a GET of its first part (whose headers are the
        object's metadata and, through Content-Range, its stored size), the sidecar core
        names, and the key. Returns the decryptor of the whole stored body (None for a
        plaintext object the client accepts) and the pieces of that body in order.

        Which GETs are made is core's :class:`isec.WholeRead` (SPEC.md §12.4): with one
        worker, the whole object in one streamed GET; with more, its first part, then the
        object's own parts where they are near ``part_size`` (an isec object's parts are its
        segments), else ``part_size`` pieces. Where pieces start has no bearing on what is
        verified: they are decrypted in order as one stream."""
        part = first_part_number(self.max_workers)
        try:
            r = self.s3.get_object(Bucket=bucket, Key=key, **({"PartNumber": part} if part is not None else {}))
        except Exception as e:
            if _status(e) != EMPTY_OBJECT_STATUS:
                raise
            r = self.s3.get_object(Bucket=bucket, Key=key)
        try:
            plan = WholeRead(int(r["ContentLength"]), r.get("ContentRange") or None, self.part_size, self.max_workers)
            info = self._info(bucket, key, {**r, "ContentLength": plan.stored_len})
            k = self._open(info)
            dec = self._decryptor(info, k, whole=whole) if k is not None else None
        except BaseException:
            r["Body"].close()
            raise
        whole = plan.first_len == int(r["ContentLength"])
        return dec, self._pieces(bucket, key, r["Body"], plan, whole, str(r.get("ETag", "")))

    def _pieces(
        self, bucket: str, key: str, body: Any, plan: WholeRead, whole: bool, etag: str
    ) -> Generator[Buffer, None, None]:
        """The stored bytes in order, as core's ``plan`` says: its ``first_len`` from ``body``
        (the response that opened the object, whose other bytes are dropped), then its
        ranged GETs pinned to ``etag``, ``max_workers`` in flight and one queued, started
        before ``body`` is read. Each piece is read into a reused buffer and is valid until
        the next one is asked for. Closing the iterator cancels what has not started."""
        where = f"s3://{bucket}/{key}"
        free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()

        def fetch(a: int, b: int) -> memoryview:
            try:
                buf = free.get_nowait()
            except queue.Empty:
                buf = bytearray(plan.step)
            if len(buf) < b - a:
                buf = bytearray(b - a)
            view = memoryview(buf)[: b - a]
            r = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={a}-{b - 1}", IfMatch=etag)
            with contextlib.closing(r["Body"]) as part:
                got = _read_full(part, view)
            if got != b - a:
                raise _length_error(where, got, a, b)
            return view

        first = plan.first_len
        ranges = iter(plan.ranges())
        pending: deque[Future[memoryview]] = deque()
        with contextlib.ExitStack() as stack:
            stack.callback(body.close)
            pool = stack.enter_context(
                ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="isec-s3-get")
            )
            try:
                # One more than the workers: each finds its next range waiting.
                for a, b in itertools.islice(ranges, self.max_workers + 1):
                    pending.append(pool.submit(fetch, a, b))
                # The first response, in pieces of at most a step (one connection: the
                # whole object); of a large single PUT read in parallel, only the first
                # piece: closing the response drops the rest.
                buf = bytearray(min(first, plan.step))
                at = 0
                while at < first:
                    n = min(plan.step, first - at)
                    view = memoryview(buf)[:n]
                    got = _read_full(body, view, exact=whole and at + n == first)
                    if got != n:
                        raise _length_error(where, got, at, at + n)
                    yield view
                    at += n
                body.close()
                free.put(buf)
                while pending:
                    piece = pending.popleft().result()
                    nxt = next(ranges, None)
                    if nxt is not None:
                        pending.append(pool.submit(fetch, *nxt))
                    yield piece
                    free.put(cast(bytearray, piece.obj))
            finally:
                for f in pending:
                    f.cancel()

    def _decryptor(
        self, info: ObjectInfo, k: ObjectKey | LegacyKey, *, whole: bool = False
    ) -> Decryptor | LegacyDecryptor:
        """The streaming decryptor of a whole stored body: every frame (or seal) and the
        object's end are checked against the size the server reported. A previous-proxy
        seal is verified before any of it is released, so it is buffered whole: up to 8 MiB
        when streaming (larger ones raise ``limit_exceeded``: the proxy wrote single PUTs of
        up to 32 MiB as one seal), any size when the caller holds the whole object
        (``whole``)."""
        if isinstance(k, LegacyKey):
            assert info.legacy is not None
            if whole:
                return LegacyDecryptor.with_seal_limit(k, info.legacy, max(info.ciphertext_len, 1))
            return LegacyDecryptor(k, info.legacy)
        if k.layout == "table":
            assert info.table is not None
            return Decryptor.with_table(k, info.table, info.ciphertext_len)
        return Decryptor.with_shape(k, Shape.from_ciphertext_len(k, info.ciphertext_len))

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
        return self._read_into(bucket, key, f.write, chunk_size)

    def get_range(self, bucket: str, key: str, start: int, end: int | None = None) -> bytes:
        """Plaintext bytes ``[start, end)`` (like a slice: clamped to the object, ``end=None``
        for the rest). Fetches only the whole frames (or previous-proxy seals) the core maps
        the range to, in one ranged GET pinned to the object's ETag, and returns exactly the
        requested bytes after those frames verified.

        What the object is (its HEAD and sidecar, never a key) is remembered for the last
        ``range_cache`` objects read by range, so reading many ranges of one object costs
        one GET each. The pin makes that safe: a replaced object answers 412, and the read
        is made again from a fresh HEAD (once; a second failure is raised), as after any
        format or key error met with a remembered HEAD. Keys are opened for every read,
        never remembered."""
        if start < 0 or (end is not None and end < 0):
            raise ValueError("start and end are offsets from the object's beginning")
        cached = self._recall(bucket, key)
        info = cached if cached is not None else self._remember(self.head_object(bucket, key))
        try:
            return self._range(info, start, end)
        except Exception as e:
            self._forget(bucket, key)
            # From a remembered HEAD, a 412 (replaced) or a format error (what the HEAD
            # said no longer holds) earns one more read from a fresh HEAD.
            if cached is None or not (_status(e) == 412 or isinstance(e, IsecError)):
                raise
        return self._range(self._remember(self.head_object(bucket, key)), start, end)

    def _range(self, info: ObjectInfo, start: int, end: int | None) -> bytes:
        k = self._open(info)

        def fetch(a: int, b: int) -> bytes:
            r = self.s3.get_object(Bucket=info.bucket, Key=info.key, Range=f"bytes={a}-{b - 1}", IfMatch=info.etag)
            with contextlib.closing(r["Body"]) as body:
                return bytes(body.read())

        if k is None:
            stop = info.ciphertext_len if end is None else min(end, info.ciphertext_len)
            return fetch(start, stop) if start < stop else b""
        if isinstance(k, LegacyKey):
            obj = info.legacy
            assert obj is not None
            plan = obj.plan_range(start, obj.plaintext_len if end is None else end)
            if plan.is_empty():
                return b""
            return legacy_decrypt_range(k, obj, plan, fetch(plan.ct_start, plan.ct_end))
        shape = self._shape(info, k)
        stop = shape.plaintext_len if end is None else end
        return decrypt_range(k, shape, start, stop, fetch)

    def _recall(self, bucket: str, key: str) -> ObjectInfo | None:
        with self._opened_lock:
            info = self._opened.get((bucket, key))
            if info is not None:
                self._opened.move_to_end((bucket, key))
            return info

    def _remember(self, info: ObjectInfo) -> ObjectInfo:
        if self.range_cache:
            with self._opened_lock:
                self._opened[(info.bucket, info.key)] = info
                while len(self._opened) > self.range_cache:
                    self._opened.popitem(last=False)
        return info

    def _forget(self, bucket: str, key: str) -> None:
        """Drops what ``get_range`` remembers of an object this client is about to replace
        (or found replaced)."""
        with self._opened_lock:
            self._opened.pop((bucket, key), None)

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
        if_match: str | None = None,
        head: Mapping[str, Any] | None = None,
        _resume: _Resume | None = None,
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

        The source is opened as for a read (:class:`isec.ObjectOpen`), so a sidecar it was
        opened from (a segment table, the previous proxy's metadata) goes along; the copy is
        exactly the requests of :func:`isec.copy_steps`, in order. When one fails, that
        step's undo requests are sent (best effort: an aborted upload, a deleted sidecar
        copy) and the failure is raised.

        ``if_match``: copy only the source version with this ETag; another raises
        :class:`ObjectChangedError` before any request that writes. ``head``: the source's
        HeadObject response when the caller already has it (a bucket job does), which saves
        a request; every copy is pinned to its ETag, so a stale one fails rather than acts.
        """
        self._forget(dst_bucket, dst_key)
        src = self._head_matching(src_bucket, src_key, if_match, head)
        shape: Shape | None = None
        if src.envelope is not None and src.envelope.layout == "table" and src.table is not None:
            # Part copies of the table layout cut on its segments' frame boundaries.
            shape = Shape.from_table(self.keyring.open(src.envelope), src.table, src.ciphertext_len)
        plan = decide_copy(
            src.metadata,
            src.ciphertext_len,
            keyring=self.keyring,
            source_sidecar=src.opened is not None and src.opened.sidecar is not None,
            source_shape=shape,
            directive=metadata_directive,
            new_metadata=new_metadata,
            target_kid=target_kid,
            rotate_dek=rotate_dek,
            require_encryption=require_encryption,
            limits=self.copy_limits,
        )
        return self._execute(plan, src, dst_bucket, dst_key, content_type, extra_args, _resume)

    def rewrap(
        self,
        bucket: str,
        key: str,
        new_kid: str | None = None,
        *,
        if_match: str | None = None,
        head: Mapping[str, Any] | None = None,
    ) -> CopyResult:
        """Puts the object's DEK under ``new_kid`` (default: the keyring's active key) in
        place: a self-copy with the REPLACE directive and the rewrapped envelope, keeping the
        user metadata and system headers. No object bytes move; the body is unchanged
        (SPEC.md §10.2). An object already under ``new_kid`` is left alone (``etag`` None)."""
        kid = new_kid if new_kid is not None else self.keyring.active_kid
        if kid is None:
            # No active key: let the core raise its typed key_not_active.
            self.keyring.create_envelope()
        return self.copy_object(bucket, key, bucket, key, target_kid=kid, if_match=if_match, head=head)

    def migrate(
        self,
        bucket: str,
        key: str,
        *,
        if_match: str | None = None,
        head: Mapping[str, Any] | None = None,
        _resume: _Resume | None = None,
    ) -> MigrateResult:
        """Re-encrypts a previous-proxy object in place into the isec format under the
        keyring's active key (SPEC.md §11, §12).

        The object is opened as for a read (:class:`isec.ObjectOpen`). An isec object is left
        alone (``migrated`` False); a plaintext object raises ``not_encrypted``; an object
        whose metadata is unreadable raises core's code for it. A previous-proxy object is
        copied onto itself by executing core's steps for the copy decision with
        ``migrate_legacy`` (:func:`isec.migrate_steps`): the body is fetched pinned to the HEAD's ETag and fed to a
        :class:`isec.Reencryption` job whose output is uploaded in the job's parts (one
        PutObject, or one S3 part per isec part, completed only after the job verified every
        seal of the source; aborted on any failure). The user metadata (without the previous
        proxy's keys) and content headers are carried.

        Then the new object is checked before anything is deleted (core's ``VerifyIsec``
        step): its HEAD must show the isec format under the active kid and the ETag just
        written, and its whole body must decrypt. Only then is the previous proxy's
        object-keyed sidecar
        (``.s3proxy-internal/<key>.meta``) deleted; a generation-keyed sidecar (staged
        layout) may be shared by native copies and is left in place (``sidecar_kept``).

        Failures raise with core's code. Any failure before the upload completes leaves the
        original object and its sidecar as they were; a failed check afterwards leaves the
        sidecar in place. ``if_match`` and ``head`` as for :meth:`copy_object`."""
        self._forget(bucket, key)
        src = self._head_matching(bucket, key, if_match, head)
        where = f"s3://{bucket}/{key}"
        if src.format == "isec":
            return MigrateResult(False, src.kid, src.plaintext_len, None)
        if src.format != "legacy" or src.legacy is None:
            # not_encrypted for plaintext (allow_plaintext or not: there is nothing to
            # migrate from), else core's code for what is wrong with the metadata.
            raise isec_error("not_encrypted" if src.format == "plaintext" else (src.error or "malformed_envelope"), where)
        active = self.keyring.active_kid
        if active is None:
            # No active key: let the core raise its typed key_not_active.
            self.keyring.create_envelope()
        assert active is not None
        # The key that opens the source (explicit, recorded or default kid), checked first.
        self.keyring.open_legacy(src.legacy)
        plan = decide_copy(
            src.metadata,
            src.ciphertext_len,
            keyring=self.keyring,
            source_sidecar=src.opened is not None and src.opened.sidecar is not None,
            migrate_legacy=True,
            limits=self.copy_limits,
        )
        sidecar = src.details.get("sidecar")
        migration = migrate_steps(
            plan,
            (bucket, key),
            src.metadata,
            sidecar if isinstance(sidecar, str) else None,
            active,
            src.plaintext_len,
        )
        run = self._run(src, migration.steps, {}, _resume)
        assert run.verified is not None
        new, n = run.verified
        return MigrateResult(True, new.kid, n, new.etag, migration.sidecar_deleted, migration.sidecar_kept, plan)

    def repair(self, bucket: str, dest_key: str, *, from_key: str, from_bucket: str | None = None) -> RepairResult:
        """Gives an object that lost its isec metadata (scan class ``stripped_isec``: a copy
        another tool made part by part without the user metadata, SPEC.md §14.1) the
        envelope of the object it was copied from, ``from_bucket``/``from_key`` (default
        bucket: ``bucket``).

        Nothing is written before the whole body of ``dest_key`` decrypted under the
        source's envelope (and segment table, for the table layout): a body that does not
        raises core's code for it (``authentication_failed``, ``truncated``...), and so does
        a destination that has isec metadata of its own (``invalid_parameter``) or a source
        that is not an isec object (``not_encrypted`` or the code of its metadata). Then the
        source's table sidecar, if it has one, is copied next to the destination, and the
        destination is copied onto itself with the REPLACE directive and the source's
        metadata (its envelope and user metadata), pinned to the ETag of the body that
        verified: an object rewritten meanwhile fails with 412 and stays as it is."""
        src_bucket = from_bucket if from_bucket is not None else bucket
        src = self.head_object(src_bucket, from_key)
        where = f"s3://{bucket}/{dest_key}"
        if src.format != "isec" or src.envelope is None:
            raise isec_error(
                "not_encrypted" if src.format == "plaintext" else (src.error or "malformed_envelope"),
                f"s3://{src_bucket}/{from_key}",
            )
        okey = self.keyring.open(src.envelope)
        head = self.s3.head_object(Bucket=bucket, Key=dest_key)
        if classify(dict(head.get("Metadata") or {})).format != "plaintext":
            raise isec_error("invalid_parameter", f"{where} has encryption metadata of its own")
        size, etag = int(head["ContentLength"]), str(head["ETag"])
        self._forget(bucket, dest_key)
        if okey.layout == "table":
            assert src.table is not None
            dec = Decryptor.with_table(okey, src.table, size)
        else:
            dec = Decryptor.with_shape(okey, Shape.from_ciphertext_len(okey, size))
        r = self.s3.get_object(Bucket=bucket, Key=dest_key, IfMatch=etag)
        try:
            with contextlib.closing(r["Body"]) as body:
                pieces = iter(lambda: cast(bytes, body.read(MIB)), b"")
                n = sum(len(v) for v in _plaintext(dec, pieces))
        except IsecError as e:
            raise isec_error(e.code, f"{where} does not decrypt under the envelope of s3://{src_bucket}/{from_key}") from e
        sidecar = src.opened.sidecar if src.opened is not None else None
        copied: str | None = None
        if sidecar is not None:
            copied = table_sidecar_key(dest_key)
            self.s3.copy_object(Bucket=bucket, Key=copied, CopySource={"Bucket": src_bucket, "Key": sidecar})
        self.s3.copy_object(
            Bucket=bucket,
            Key=dest_key,
            CopySource={"Bucket": bucket, "Key": dest_key},
            CopySourceIfMatch=etag,
            MetadataDirective="REPLACE",
            Metadata=dict(src.metadata),
            **src.headers,
        )
        self._forget(bucket, dest_key)
        return RepairResult(etag, src.kid, n, copied)

    def _head_matching(
        self, bucket: str, key: str, if_match: str | None, head: Mapping[str, Any] | None = None
    ) -> ObjectInfo:
        """``head_object`` (or the given HEAD response, opened), refused with
        :class:`ObjectChangedError` unless the ETag is ``if_match`` (when given)."""
        info = self._info(bucket, key, head) if head is not None else self.head_object(bucket, key)
        if if_match is not None and info.etag.strip('"') != if_match.strip('"'):
            raise ObjectChangedError(f"s3://{bucket}/{key} is at ETag {info.etag}, not {if_match}")
        return info

    # --- bucket jobs -------------------------------------------------------------------------

    def job(
        self,
        kind: str,
        bucket: str,
        prefix: str = "",
        *,
        state_path: str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        objects_per_second: int = 0,
        bytes_per_second: int = 0,
        dry_run: bool = False,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        progress_bar: bool = False,
        save_every: float = 1.0,
        **options: Any,
    ) -> Job:
        """A bucket job (SPEC.md §15) of ``kind`` (``scan``, ``rotate``, ``reencrypt``,
        ``migrate``) over every object under ``prefix``; :meth:`Job.run` runs it.

        With ``state_path``, the state is saved there as the job runs, and a job made again
        with the same path resumes where it stopped (or crashed); the state's kind, bucket
        and prefix must then be these. ``options`` go to :class:`isec.BucketJob`
        (``max_attempts``, ``backoff_ms``, ``backoff_max_ms``, ``window``)."""
        if state_path is not None and os.path.exists(state_path):
            with open(state_path, "rb") as f:
                core = BucketJob.from_state(f.read(), self.keyring)
            if (core.kind, core.bucket, core.prefix) != (kind, bucket, prefix):
                raise ValueError(
                    f"{os.fspath(state_path)} holds a {core.kind} job of s3://{core.bucket}/{core.prefix}"
                )
        else:
            core = BucketJob(
                kind,
                bucket,
                prefix,
                self.keyring,
                concurrency=concurrency,
                objects_per_second=objects_per_second,
                bytes_per_second=bytes_per_second,
                dry_run=dry_run,
                **options,
            )
        return Job(
            self, core, state_path=state_path, on_progress=on_progress, progress_bar=progress_bar, save_every=save_every
        )

    def resume_job(self, state: bytes, **kw: Any) -> Job:
        """The job saved as ``state`` (:meth:`Job.state`), to run again."""
        return Job(self, BucketJob.from_state(state, self.keyring), **kw)

    def scan(self, bucket: str, prefix: str = "", **kw: Any) -> Job:
        """How much of the bucket is on which key and format; changes nothing. Objects
        without isec metadata whose body is isec frames (copies that lost their envelope) are
        counted as ``stripped_isec``: :meth:`repair` makes them readable again."""
        return self.job("scan", bucket, prefix, **kw)

    def rotate(self, bucket: str, prefix: str = "", **kw: Any) -> Job:
        """Rewraps every object under a decrypt-only key to the active key: metadata
        only, no object bytes move."""
        return self.job("rotate", bucket, prefix, **kw)

    def reencrypt(self, bucket: str, prefix: str = "", **kw: Any) -> Job:
        """Gives every encrypted object a new DEK and ciphertext under the active key
        (previous-proxy objects are migrated)."""
        return self.job("reencrypt", bucket, prefix, **kw)

    def migrate_bucket(self, bucket: str, prefix: str = "", **kw: Any) -> Job:
        """Migrates every previous-proxy object to the isec format (:meth:`migrate` is
        the one-object form)."""
        return self.job("migrate", bucket, prefix, **kw)

    def _verify(self, run: _CopyRun, req: S3Request) -> None:
        """``VerifyIsec``: the object just written must be isec under the step's kid with the
        ETag the previous step returned, and decrypt in full to the step's length."""
        assert req.object is not None
        bucket, key = req.object
        where = f"s3://{bucket}/{key}"
        new = self.head_object(bucket, key)
        if new.format != "isec" or new.kid != req.kid or new.envelope is None:
            raise isec_error("invalid_state", f"{where} is not isec under {req.kid!r} after its migration")
        if run.etag and new.etag.strip('"') != run.etag.strip('"'):
            raise isec_error("invalid_state", f"{where} changed during its migration")
        n = self._read_through(new)
        if req.plaintext_len is not None and n != req.plaintext_len:
            raise isec_error("invalid_state", f"{where}: {n} bytes after its migration, {req.plaintext_len} before")
        run.verified = (new, n)
        run.requests += 2

    def _read_through(self, info: ObjectInfo) -> int:
        """Decrypts the whole object described by ``info`` (GET pinned to its ETag),
        discarding the plaintext; returns its length. Raises unless every frame and the
        object's end verified."""
        okey = self._open(info)
        assert isinstance(okey, ObjectKey)
        r = self.s3.get_object(Bucket=info.bucket, Key=info.key, IfMatch=info.etag)
        n = 0
        with contextlib.closing(r["Body"]) as body:
            if okey.layout == "table":
                assert info.table is not None
                dec = Decryptor.with_table(okey, info.table, info.ciphertext_len)
            else:
                dec = Decryptor.with_shape(okey, self._shape(info, okey))
            for chunk in body.iter_chunks(MIB):
                n += len(dec.update(chunk))
            n += len(dec.finalize())
        return n

    def _execute(
        self,
        plan: CopyPlan,
        src: ObjectInfo,
        dst_bucket: str,
        dst_key: str,
        content_type: str | None,
        extra_args: Mapping[str, Any] | None,
        resume: _Resume | None = None,
    ) -> CopyResult:
        asked = self._extra(content_type, extra_args)
        steps = copy_steps(plan, (src.bucket, src.key), src.metadata, (dst_bucket, dst_key), bool(asked))
        run = self._run(src, steps, asked, resume)
        return CopyResult(plan, run.etag, run.requests)

    def _run(
        self, src: ObjectInfo, steps: list[CopyStep], asked: dict[str, Any], resume: _Resume | None = None
    ) -> _CopyRun:
        """Sends core's steps in order; when one fails, its undo requests (best effort),
        then the failure."""
        run = _CopyRun(src, {**src.headers, **asked})
        run.resume = resume
        for step in steps:
            try:
                self._send(run, step.request)
            except BaseException:
                for undo in step.undo:
                    with contextlib.suppress(Exception):
                        self._send(run, undo)
                raise
        return run

    def _send(self, run: _CopyRun, req: S3Request) -> None:
        """One request of :func:`isec.copy_steps`, as boto3 spells it."""
        src = run.source
        pin = {"CopySourceIfMatch": src.etag} if req.if_match else {}
        carried = run.headers if req.headers == "carried" else {}
        if req.op == "CopyObject":
            assert req.source is not None and req.dest is not None
            args: dict[str, Any] = {}
            if req.metadata is not None:
                args.update(MetadataDirective="REPLACE", Metadata=dict(req.metadata))
            r = self.s3.copy_object(
                Bucket=req.dest[0], Key=req.dest[1], CopySource=_source(req.source), **pin, **args, **carried
            )
            run.etag = str(r.get("CopyObjectResult", {}).get("ETag", ""))
            run.requests += 1
        elif req.op == "CreateMultipartUpload":
            assert req.dest is not None
            r = self.s3.create_multipart_upload(
                Bucket=req.dest[0], Key=req.dest[1], Metadata=dict(req.metadata or ()), **carried
            )
            run.upload_id = r["UploadId"]
            run.parts = []
            run.requests += 1
        elif req.op == "UploadPartCopy":
            assert req.source is not None and req.dest is not None and req.range is not None
            start, end = req.range
            r = self.s3.upload_part_copy(
                Bucket=req.dest[0],
                Key=req.dest[1],
                UploadId=run.upload_id,
                PartNumber=req.part,
                CopySource=_source(req.source),
                CopySourceRange=f"bytes={start}-{end - 1}",
                **pin,
            )
            run.parts.append({"PartNumber": req.part, "ETag": r["CopyPartResult"]["ETag"]})
            run.requests += 1
        elif req.op == "CompleteMultipartUpload":
            assert req.dest is not None and len(run.parts) == req.parts
            r = self.s3.complete_multipart_upload(
                Bucket=req.dest[0], Key=req.dest[1], UploadId=run.upload_id, MultipartUpload={"Parts": run.parts}
            )
            run.etag = str(r.get("ETag", ""))
            run.requests += 1
        elif req.op == "AbortMultipartUpload":
            assert req.dest is not None
            if run.upload_id is not None:
                self.s3.abort_multipart_upload(Bucket=req.dest[0], Key=req.dest[1], UploadId=run.upload_id)
        elif req.op == "DeleteObject":
            assert req.object is not None
            self.s3.delete_object(Bucket=req.object[0], Key=req.object[1])
        elif req.op == "Reencrypt":
            assert req.dest is not None
            etag, requests = self._reencrypt(src, req.dest, dict(req.metadata or ()), carried, run.resume)
            run.etag = etag
            run.requests += requests
        elif req.op == "VerifyIsec":
            self._verify(run, req)
        else:
            raise AssertionError(f"unknown S3 request {req.op!r}")

    def _reencrypt(
        self,
        src: ObjectInfo,
        dest: tuple[str, str],
        user: dict[str, str],
        headers: dict[str, Any],
        resume: _Resume | None = None,
    ) -> tuple[str, int]:
        """The data path of a ``reencrypt`` step: GET the source pinned to its ETag,
        re-encrypt it with a :class:`isec.Reencryption` job (or encrypt a plaintext source)
        and upload the result with ``user`` metadata plus the new envelope's keys. Returns
        the new ETag and the requests made.

        ``resume`` (a bucket job's, for an object replaced in place): its checkpoint names a
        partial upload to take up, and each part stored is saved as a new checkpoint (SPEC.md
        §13.3), so that a crash or a retry costs only the parts in flight."""
        dst_bucket, dst_key = dest
        if src.format == "plaintext":
            r = self.s3.get_object(Bucket=src.bucket, Key=src.key, IfMatch=src.etag)
            with contextlib.closing(r["Body"]) as body:
                put = self.put_object(dst_bucket, dst_key, _BodyReader(body), metadata=user, extra_args=headers)
            writes = put.parts + 2 if put.parts else 1
            return put.etag, 1 + writes

        def source() -> IsecSource | LegacySource:
            if src.legacy is not None:
                return LegacySource(self.keyring, src.legacy)
            okey = self._open(src)
            assert isinstance(okey, ObjectKey) and src.envelope is not None
            return IsecSource(self.keyring, src.envelope, self._shape(src, okey))

        in_place = (dst_bucket, dst_key) == (src.bucket, src.key)
        resume = resume if in_place else None
        taken = self._take_up(src, resume, source) if resume is not None and resume.checkpoint else None
        upload_id: str | None = None
        kept: list[dict[str, Any]] = []
        if taken is not None:
            job, upload_id, kept = taken
        else:
            # The new object is in the parts layout, one isec part per S3 part.
            job = Reencryption.start(
                self.keyring, source(), frame_size=self.frame_size, part_size=self.part_size, rate=self.reencrypt_rate
            )
        meta = object_metadata(user, job.target_envelope)

        def pieces() -> Iterator[bytes]:
            # Read only when the parts are asked for: for an object replaced in place, after
            # its upload was created (SPEC.md §15.5); a resumed job from its restart point.
            if job.progress.finished:
                return
            at = job.source_offset
            ranged = {"Range": f"bytes={at}-"} if at else {}
            r = self.s3.get_object(Bucket=src.bucket, Key=src.key, IfMatch=src.etag, **ranged)
            with contextlib.closing(r["Body"]) as body:
                yield from _rechunk(_job_output(job, body.iter_chunks(MIB)), job.target_part_len)

        if job.progress.parts_total == 1 and not in_place:
            ct = b"".join(pieces())
            put_r = self.s3.put_object(Bucket=dst_bucket, Key=dst_key, Body=ct, Metadata=meta, **headers)
            return str(put_r.get("ETag", "")), 2
        # In place, even one part goes through a multipart upload created before the source is
        # read: a write to the key that starts afterwards cancels the upload on servers that
        # order writes by their start (Garage: NoSuchUpload), instead of being overwritten by
        # the re-encrypted older version.
        parts = (
            self._uploaded_part(dst_bucket, dst_key, n, _constant(piece))
            for n, piece in enumerate(pieces(), start=len(kept) + 1)
        )
        stored: Callable[[str, int], None] | None = None
        if resume is not None:
            save = resume.save

            def stored(uid: str, n: int) -> None:
                save(job.upload_checkpoint(uid, n))

        etag, _, n_parts = self._multipart(
            dst_bucket, dst_key, meta, headers, parts, upload_id=upload_id, kept=kept, stored=stored
        )
        return etag, (0 if taken is not None else 1) + n_parts - len(kept) + 2

    def _take_up(
        self, src: ObjectInfo, resume: _Resume, source: Callable[[], IsecSource | LegacySource]
    ) -> tuple[Reencryption, str, list[dict[str, Any]]] | None:
        """A bucket job's partial upload of ``src`` in place, where its checkpoint says
        (SPEC.md §13.3): the resumed job, the upload id and the parts kept (ListParts must
        show exactly the parts the checkpoint counts). None when there is nothing to take up:
        an upload that is gone or does not match is aborted, and the object starts afresh. A
        checkpoint that does not authenticate names no upload of this job's, which is left
        alone. A transient failure raises, and the job retries with the same checkpoint."""
        assert resume.checkpoint is not None
        try:
            job, upload_id = Reencryption.resume_upload(
                self.keyring, source(), resume.checkpoint, rate=self.reencrypt_rate
            )
        except IsecError:
            return None
        try:
            listed: list[tuple[int, int, str]] = []
            pages = self.s3.get_paginator("list_parts").paginate(Bucket=src.bucket, Key=src.key, UploadId=upload_id)
            for page in pages:
                listed.extend((int(p["PartNumber"]), int(p["Size"]), str(p["ETag"])) for p in page.get("Parts", []))
            k = job.kept_parts([(n, size) for n, size, _ in listed])
        except IsecError:
            pass
        except Exception as e:
            if _status(e) != 404:
                raise
        else:
            kept = sorted(({"PartNumber": n, "ETag": etag} for n, _, etag in listed if n <= k), key=_part_number)
            return job, upload_id, kept
        self._abort(src.bucket, src.key, upload_id)
        return None

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        """Best effort: an upload the server already dropped answers NoSuchUpload, and one a
        failure left behind is removed by the bucket's lifecycle rule."""
        with contextlib.suppress(Exception):
            self.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    # --- helpers -------------------------------------------------------------------------------

    def _extra(self, content_type: str | None, extra_args: Mapping[str, Any] | None) -> dict[str, Any]:
        extra = dict(extra_args or {})
        for reserved in ("Bucket", "Key", "Body", "Metadata"):
            if reserved in extra:
                raise ValueError(f"{reserved} is set by the helper, not through extra_args")
        if content_type is not None:
            extra["ContentType"] = content_type
        return extra

    def _open(self, info: ObjectInfo) -> ObjectKey | LegacyKey | None:
        """The key of an isec or previous-proxy object; None for a plaintext object the
        client accepts."""
        where = f"s3://{info.bucket}/{info.key}"
        if info.format == "isec" and info.envelope is not None:
            return self.keyring.open(info.envelope)
        if info.format == "legacy" and info.legacy is not None:
            return self.keyring.open_legacy(info.legacy)
        if info.format == "plaintext":
            if self.allow_plaintext:
                return None
            raise isec_error("not_encrypted", where)
        # The core's own code for what is wrong with the metadata.
        raise isec_error(info.error or "malformed_envelope", where)

    def _shape(self, info: ObjectInfo, okey: ObjectKey) -> Shape:
        if okey.layout == "table":
            assert info.table is not None
            return Shape.from_table(okey, info.table, info.ciphertext_len)
        return Shape.from_ciphertext_len(okey, info.ciphertext_len)


def _part_number(entry: Mapping[str, Any]) -> int:
    return int(entry["PartNumber"])


class _CopyRun:
    """What the requests of one copy have produced so far."""

    def __init__(self, source: ObjectInfo, headers: dict[str, Any]) -> None:
        self.source = source
        self.headers = headers
        """The carried headers: the source's, the caller's own winning."""
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.etag: str | None = None
        self.requests = 0
        # What a VerifyIsec step read back: the object and its plaintext length.
        self.verified: tuple[ObjectInfo, int] | None = None
        # A bucket job's partial upload of this object, for a re-encryption in place.
        self.resume: _Resume | None = None


# --- module helpers ------------------------------------------------------------------------------


class _PartSealer:
    """Encrypts the parts of one upload into reusable part-sized buffers.

    A part is encrypted in the thread that reads the body, while the pool uploads the
    parts before it, so encryption overlaps the network even with one worker. At most
    ``buffers`` ciphertext parts exist at once: :meth:`part` waits for an upload to
    return its buffer. Reusing them spares an 8 MiB allocation and its page faults per
    part."""

    def __init__(self, okey: ObjectKey, buffers: int) -> None:
        self._okey = okey
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(buffers)

    def part(self, client: Client, bucket: str, key: str, n: int, last: bool, data: Buffer) -> _Part:
        self._slots.acquire()
        try:
            enc = Encryptor.for_part(self._okey, n, last)
            # Whole frames' worth of output for every started frame: the exact size of a
            # full part, an upper bound for a shorter last one.
            buf = self._take(enc.update_len(memoryview(data).nbytes + self._okey.frame_size))
            view = memoryview(buf)
            k = enc.update_into(data, view)
            k += enc.finalize_into(view[k:])
        except BaseException:
            self._slots.release()
            raise
        if k != len(buf):
            # The object's last part, shorter: S3 bodies are whole bytes-like objects.
            body = bytearray(view[:k])
            view.release()
            self._free.put(buf)
            buf = body
        else:
            view.release()

        def upload(upload_id: str) -> tuple[dict[str, Any], int]:
            try:
                return client._upload_part(bucket, key, upload_id, n, _constant(buf))
            finally:
                self._give(buf)

        return upload

    def _take(self, need: int) -> bytearray:
        try:
            buf = self._free.get_nowait()
        except queue.Empty:
            return bytearray(need)
        if len(buf) < need:
            return bytearray(need)
        return buf

    def _give(self, buf: bytearray) -> None:
        self._free.put(buf)
        self._slots.release()


def _read_full(body: Any, view: memoryview, *, exact: bool = True) -> int:
    """Reads a response body into ``view`` until it is full or the body ends; returns the
    bytes read, one more if ``exact`` and the body had more. ``readinto`` (botocore >= 1.35)
    spares a fresh buffer per piece."""
    readinto = getattr(body, "readinto", None)
    got = 0
    while got < len(view):
        # In steps of a MiB: the HTTP stack reads each request into a buffer of its own and
        # copies it over (cheaper while that stays in cache), and takes the GIL between
        # steps (fewer steps, fewer waits behind the thread that writes the plaintext).
        want = min(len(view) - got, _READ_STEP)
        if readinto is not None:
            k = readinto(view[got : got + want])
        else:
            piece = body.read(want)
            k = len(piece)
            view[got : got + k] = piece
        if not k:
            break
        got += k
    if exact and got == len(view) and (readinto(bytearray(1)) if readinto is not None else len(body.read(1))):
        return got + 1  # longer than asked: not the range it should be
    return got


def _length_error(where: str, got: int, a: int, b: int) -> IsecError:
    """A response that carried other than the bytes ``[a, b)`` it was asked for: fewer is
    ``truncated``, more (``_read_full`` reports one byte over) ``trailing_data``."""
    code = "trailing_data" if got > b - a else "truncated"
    return isec_error(code, f"{where}: {got} bytes for bytes {a}-{b - 1}")


def _plaintext(dec: Decryptor | LegacyDecryptor | None, pieces: Iterable[Buffer]) -> Iterator[memoryview]:
    """The verified plaintext of ``pieces`` (stored bytes in order) as views into one
    reusable buffer, each valid until the next is asked for; ``dec`` None passes a plaintext
    object through. Raises at the end unless the object ended where it should."""
    if dec is None:
        for piece in pieces:
            yield memoryview(piece)
        return
    scratch = bytearray()
    for piece in pieces:
        need = dec.update_len(memoryview(piece).nbytes)
        if len(scratch) < need:
            scratch = bytearray(need)
        view = memoryview(scratch)
        n = dec.update_into(piece, view)
        if n:
            yield view[:n]
    tail = dec.finalize()
    if tail:
        yield memoryview(tail)


def _source(obj: tuple[str, str]) -> dict[str, str]:
    return {"Bucket": obj[0], "Key": obj[1]}


def _status(e: Exception) -> int | None:
    """The HTTP status of an S3 client error, if it is one."""
    response = getattr(e, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    return status if isinstance(status, int) else None


def _refused(e: Exception) -> bool:
    """Whether S3 answered with a client error that a retry would only repeat (access
    denied, no such upload...), as opposed to a lost connection, a timeout or a 5xx."""
    status = _status(e)
    return status is not None and 400 <= status < 500 and status not in (408, 429)


def _constant(body: bytes | bytearray) -> Callable[[], Buffer]:
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
