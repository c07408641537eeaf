"""File and iterator helpers written on top of the streaming classes.

They hold one chunk of input and one chunk of output at a time, whatever the object's
size, and reuse both buffers (``readinto`` / ``update_into``) so that large files stream at
the speed of the cipher.

Streaming decryption releases each frame only after it verified, but it does release
frames before the end of the object is known: a ``decrypt_*`` helper that fails part way
has already produced a verified *prefix*. ``decrypt_file`` deletes a destination *path*
it created when decryption fails; a destination *file object* is left to the caller.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Union

from ._isec import Decryptor, Encryptor, LegacyDecryptor, ObjectKey, isec_error

if TYPE_CHECKING:
    from typing_extensions import Buffer

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]
"""A filesystem path, or a binary file object (opened for reading or writing)."""

DEFAULT_CHUNK_SIZE = 1 << 20
"""Bytes read per step by the file helpers."""

_AnyDecryptor = Union[Decryptor, LegacyDecryptor]


def _encryptor(key: ObjectKey | Encryptor) -> Encryptor:
    if isinstance(key, Encryptor):
        return key
    if isinstance(key, ObjectKey):
        return Encryptor(key)
    raise TypeError(f"expected an ObjectKey or an Encryptor, not {type(key).__name__!r}")


def _decryptor(key: ObjectKey | _AnyDecryptor) -> _AnyDecryptor:
    if isinstance(key, (Decryptor, LegacyDecryptor)):
        return key
    if isinstance(key, ObjectKey):
        return Decryptor(key)
    raise TypeError(f"expected an ObjectKey, a Decryptor or a LegacyDecryptor, not {type(key).__name__!r}")


def encrypt_chunks(key: ObjectKey | Encryptor, chunks: Iterable[Buffer]) -> Iterator[bytes]:
    """Encrypts an iterable of plaintext chunks; yields ciphertext chunks.

    ``key`` is the object key (a whole single-layout object) or a ready ``Encryptor`` (for
    instance ``Encryptor.for_part(key, n, is_last)``). The last chunk yielded is the final
    frame.
    """
    enc = _encryptor(key)
    for chunk in chunks:
        out = enc.update(chunk)
        if out:
            yield out
    yield enc.finalize()


def decrypt_chunks(key: ObjectKey | _AnyDecryptor, chunks: Iterable[Buffer]) -> Iterator[bytes]:
    """Decrypts an iterable of ciphertext chunks; yields verified plaintext chunks.

    ``key`` is the object key (a whole single- or parts-layout object) or a ready decryptor
    (``Decryptor.with_table``, ``Decryptor.for_range``, ``LegacyDecryptor``...). Raises at
    the first frame that fails, and at the end if the object was truncated.
    """
    dec = _decryptor(key)
    for chunk in chunks:
        out = dec.update(chunk)
        if out:
            yield out
    tail = dec.finalize()
    if tail:
        yield tail


@contextlib.contextmanager
def _opened(target: PathOrFile, mode: str) -> Iterator[tuple[IO[bytes], bool]]:
    """Yields a binary file object for ``target`` and whether this helper opened it."""
    if isinstance(target, (str, os.PathLike)):
        with open(target, mode) as f:
            yield f, True
    elif hasattr(target, "read") or hasattr(target, "write"):
        yield target, False
    else:
        raise TypeError(f"expected a path or a binary file object, not {type(target).__name__!r}")


def _read_into(src: IO[bytes], view: memoryview) -> int:
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        n = readinto(view)
        return int(n or 0)
    data = src.read(len(view))
    view[: len(data)] = data
    return len(data)


def _pump(
    src: IO[bytes],
    dst: IO[bytes],
    ctx: Encryptor | _AnyDecryptor,
    chunk_size: int,
) -> int:
    if chunk_size <= 0:
        raise isec_error("invalid_parameter", f"chunk_size {chunk_size} is not positive")
    # Sized by the core first: a chunk size no buffer can have is its typed error.
    outbuf = bytearray(ctx.update_len(chunk_size))
    inbuf = bytearray(chunk_size)
    inview = memoryview(inbuf)
    written = 0
    while True:
        n = _read_into(src, inview)
        if n == 0:
            break
        need = ctx.update_len(n)
        if len(outbuf) < need:
            outbuf = bytearray(need)
        w = ctx.update_into(inview[:n], outbuf)
        if w:
            dst.write(memoryview(outbuf)[:w])
            written += w
    tail = ctx.finalize()
    if tail:
        dst.write(tail)
        written += len(tail)
    return written


def encrypt_file(
    src: PathOrFile,
    dst: PathOrFile,
    key: ObjectKey | Encryptor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Encrypts ``src`` into ``dst`` (paths or binary file objects); returns the ciphertext
    length. Memory use is two chunks whatever the file's size."""
    enc = _encryptor(key)
    with _opened(src, "rb") as (fin, _), _opened(dst, "wb") as (fout, _):
        return _pump(fin, fout, enc, chunk_size)


def decrypt_file(
    src: PathOrFile,
    dst: PathOrFile,
    key: ObjectKey | _AnyDecryptor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Decrypts ``src`` into ``dst`` (paths or binary file objects); returns the plaintext
    length. If decryption fails and ``dst`` is a path, the partial file is deleted before the
    exception propagates."""
    dec = _decryptor(key)
    with _opened(src, "rb") as (fin, _):
        try:
            with _opened(dst, "wb") as (fout, _):
                return _pump(fin, fout, dec, chunk_size)
        except BaseException:
            if isinstance(dst, (str, os.PathLike)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dst)
            raise
