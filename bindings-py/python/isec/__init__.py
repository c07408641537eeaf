"""isec: client-side envelope encryption for object storage.

Each object gets a random data key (DEK) wrapped under a key-encryption key named by a key
id; the envelope travels in the object's ``x-amz-meta-isec`` metadata and the body is a
sequence of AES-256-GCM frames whose nonces carry their position. Every byte of the format
and every decision lives in the Rust core (``isec-core``); this package is its typed
Python face.

>>> import isec
>>> ring = isec.Keyring()
>>> ring.add_kek("kek-2026", isec.generate_kek())
>>> envelope, key = ring.create_envelope()
>>> body = isec.encrypt(key, b"hello")
>>> isec.decrypt(ring.open(isec.Envelope.decode_text(envelope.to_text())), body)
b'hello'

Bytes-like arguments accept anything with the buffer protocol (``bytes``, ``bytearray``,
``memoryview``, ``array.array``, numpy arrays) and are read in place; ``*_into`` methods
write into any writable buffer. Calls on inputs of 64 KiB or more release the GIL.

Errors are ``IsecError`` subclasses, one per family (``AuthenticationError``,
``IsecKeyError``, ``StreamError``, ``FormatError``, ``UsageError``), each with the stable
``code`` of SPEC.md §9. Wrong Python types raise ``TypeError``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._files import DEFAULT_CHUNK_SIZE, PathOrFile, decrypt_chunks, decrypt_file, encrypt_chunks, encrypt_file
from ._isec import (
    DEFAULT_FRAME_SIZE,
    FORMAT_VERSION,
    FRAME_OVERHEAD,
    GIL_RELEASE_THRESHOLD,
    LEGACY_SIDECAR_CAP,
    MAX_FRAME_SIZE,
    MAX_PARTS,
    META_ENVELOPE,
    META_KID,
    META_TABLE,
    MIN_FRAME_SIZE,
    AuthenticationError,
    Checkpoint,
    CopyLimits,
    CopyPlan,
    Decryptor,
    Encryptor,
    Envelope,
    EnvelopeInfo,
    FormatError,
    FramePosition,
    IsecError,
    IsecKeyError,
    IsecSource,
    KeyInfo,
    Keyring,
    LegacyDecryptor,
    LegacyKey,
    LegacyMetadata,
    LegacyObject,
    LegacyRange,
    LegacySeal,
    LegacySegment,
    LegacySidecar,
    LegacySource,
    Nonce,
    ObjectFormat,
    ObjectKey,
    Progress,
    RangePlan,
    ReencryptStep,
    Reencryption,
    ScanPlanner,
    Segment,
    SegmentTable,
    Shape,
    StreamError,
    Tally,
    UsageError,
    classify,
    decide_copy,
    decrypt,
    decrypt_range,
    decrypt_with_table,
    encrypt,
    encrypt_part,
    error_codes,
    fit_part_size,
    generate_kek,
    isec_error,
    legacy_decrypt,
    legacy_decrypt_range,
    legacy_frame_nonce,
    legacy_generation_for,
    legacy_kek_from_secret,
    legacy_part_nonce,
    legacy_sidecar_key,
    legacy_split_seals,
    object_metadata,
    shape_for,
    table_sidecar_key,
    table_source,
    user_metadata,
)

try:
    __version__ = version("isec")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_FRAME_SIZE",
    "FORMAT_VERSION",
    "FRAME_OVERHEAD",
    "GIL_RELEASE_THRESHOLD",
    "LEGACY_SIDECAR_CAP",
    "MAX_FRAME_SIZE",
    "MAX_PARTS",
    "META_ENVELOPE",
    "META_KID",
    "META_TABLE",
    "MIN_FRAME_SIZE",
    "AuthenticationError",
    "Checkpoint",
    "CopyLimits",
    "CopyPlan",
    "Decryptor",
    "Encryptor",
    "Envelope",
    "EnvelopeInfo",
    "FormatError",
    "FramePosition",
    "IsecError",
    "IsecKeyError",
    "IsecSource",
    "KeyInfo",
    "Keyring",
    "LegacyDecryptor",
    "LegacyKey",
    "LegacyMetadata",
    "LegacyObject",
    "LegacyRange",
    "LegacySeal",
    "LegacySegment",
    "LegacySidecar",
    "LegacySource",
    "Nonce",
    "ObjectFormat",
    "ObjectKey",
    "PathOrFile",
    "Progress",
    "RangePlan",
    "ReencryptStep",
    "Reencryption",
    "ScanPlanner",
    "Segment",
    "SegmentTable",
    "Shape",
    "StreamError",
    "Tally",
    "UsageError",
    "__version__",
    "classify",
    "decide_copy",
    "decrypt",
    "decrypt_chunks",
    "decrypt_file",
    "decrypt_range",
    "decrypt_with_table",
    "encrypt",
    "encrypt_chunks",
    "encrypt_file",
    "encrypt_part",
    "error_codes",
    "fit_part_size",
    "generate_kek",
    "isec_error",
    "legacy_decrypt",
    "legacy_decrypt_range",
    "legacy_frame_nonce",
    "legacy_generation_for",
    "legacy_kek_from_secret",
    "legacy_part_nonce",
    "legacy_sidecar_key",
    "legacy_split_seals",
    "object_metadata",
    "shape_for",
    "table_sidecar_key",
    "table_source",
    "user_metadata",
]
