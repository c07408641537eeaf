"""One exception hierarchy, mapped in one place: every core error code reaches Python as the
class of its family with its stable `.code`; bad input never escapes as anything else."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import pytest

import isec
import isec.s3

from .conftest import FAMILY_CLASS, REPO, class_for, expect_error, keyring_with, load


def test_hierarchy() -> None:
    for cls in FAMILY_CLASS.values():
        assert issubclass(cls, isec.IsecError)
        assert cls.__module__ == "isec"
        assert not issubclass(cls, (ValueError, KeyError, TypeError))
    assert issubclass(isec.IsecError, Exception)
    assert set(isec.error_codes().values()) == set(FAMILY_CLASS)


def test_every_spec_code_is_known() -> None:
    spec = (REPO / "SPEC.md").read_text()
    table = spec.split("## 9. Errors", 1)[1].split("## 10.", 1)[0]
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| `")]
    documented = {r[1].strip().strip("`"): r[2].strip() for r in rows}
    assert documented == isec.error_codes()


def _ring() -> isec.Keyring:
    r = isec.Keyring()
    r.add_kek("k", bytes(range(32)))
    return r


def _kms_failing() -> None:
    class Kms:
        def wrap(self, kid: str, dek: bytes) -> bytes:
            raise RuntimeError("down")

        def unwrap(self, kid: str, wrapped: bytes) -> bytes:
            raise RuntimeError("down")

    r = isec.Keyring()
    r.add_external("kms", Kms())
    r.create_envelope()


def _finalized_twice() -> None:
    enc = isec.Encryptor(_ring().create_envelope()[1])
    enc.finalize()
    enc.finalize()


def _disabled() -> None:
    r = _ring()
    env, _ = r.create_envelope()
    r.set_state("k", "disabled")
    r.open(env)


def _refused() -> None:
    r = _ring()
    env, _ = r.create_envelope()
    r.set_min_version(2)
    r.open(env)


def _unwrap_failed() -> None:
    env, _ = _ring().create_envelope()
    other = isec.Keyring()
    other.add_kek("k", bytes(32))
    other.open(env)


def _frames(code: str) -> Callable[[], object]:
    """The first frames.json case that expects `code`, decrypted one-shot."""
    for t in load("frames.json")["tests"] + load("multipart.json")["tests"]:
        if t.get("error") == code and "segment_table" not in t:
            key = keyring_with().open(isec.Envelope.decode_text(t["envelope"]))
            return lambda: isec.decrypt(key, bytes.fromhex(t["ciphertext"]))
    raise AssertionError(f"no vector for {code}")


def _public_key_only() -> None:
    """A writer holding only a recipient's public key opens nothing it wrote."""
    _, public = isec.generate_recipient()
    r = isec.Keyring()
    r.add_public_key("uploads", public)
    r.open(r.create_envelope()[0])


def _wrong_key_kind() -> None:
    """An isec envelope naming a previous-proxy secret's kid: such secrets never wrap, so the
    envelope is refused before any unwrap."""
    writer = isec.Keyring()
    writer.add_kek("old", isec.generate_kek())
    env, _ = writer.create_envelope()
    r = isec.Keyring()
    r.add_legacy_secret_string("old", "pw")
    r.open(env)


def _table_tampered() -> None:
    r = _ring()
    _, key = r.create_envelope(table=True)
    t = bytearray(isec.SegmentTable([(1, 5, bytes(7))]).encode(key))
    t[-1] ^= 1
    isec.SegmentTable.decode(bytes(t), key)


def _duplicate_kid() -> None:
    r = _ring()
    r.add_kek("k", bytes(32))


def _not_encrypted() -> None:
    """The S3 helper reading an object without encryption metadata (an S3 client that
    answers every GET with a plaintext body)."""
    class NotFound(Exception):
        response = {"Error": {"Code": "NoSuchKey"}, "ResponseMetadata": {"HTTPStatusCode": 404}}

    class PlainS3:
        def get_object(self, **kw: object) -> dict[str, object]:
            if kw["Key"] != "key":
                raise NotFound()  # no previous-proxy sidecar: the object is plaintext
            return {"Body": io.BytesIO(b"plain"), "ContentLength": 5, "Metadata": {"owner": "x"}, "ETag": '"e"'}

    isec.s3.Client(PlainS3(), _ring()).get_object("bucket", "key")


TRIGGERS: dict[str, Callable[[], object]] = {
    "malformed_envelope": lambda: isec.Envelope.decode_text("AQ="),
    "unsupported_version": lambda: isec.Envelope.decode(b"\x02" * 130),
    "unsupported_suite": lambda: isec.Envelope.decode_text(load("envelope.json")["tests"][7]["envelope"]),
    "invalid_frame_size": lambda: _ring().create_envelope(frame_size=3000),
    "invalid_parameter": lambda: isec.Nonce(b"short"),
    "buffer_too_small": lambda: isec.Encryptor(_ring().create_envelope()[1]).finalize_into(bytearray(27)),
    "unknown_kid": lambda: isec.Keyring().open(_ring().create_envelope()[0]),
    "key_disabled": _disabled,
    "wrong_key_kind": _wrong_key_kind,
    "key_not_active": lambda: isec.Keyring().create_envelope(),
    "public_key_only": _public_key_only,
    "version_refused": _refused,
    "unwrap_failed": _unwrap_failed,
    "commitment_mismatch": lambda: keyring_with().open(
        isec.Envelope.decode_text(load("envelope.json")["tests"][22]["envelope"])
    ),
    "authentication_failed": _table_tampered,
    "frame_out_of_order": _frames("frame_out_of_order"),
    "bad_frame_flags": lambda: isec.Nonce(bytes(11) + b"\x02").position(),
    "truncated": _frames("truncated"),
    "trailing_data": _frames("trailing_data"),
    # Two full frames and an empty third: no plaintext length encrypts to that.
    "bad_frame_length": lambda: isec.shape_for(
        _ring().create_envelope(frame_size=4096)[0], 2 * (4096 + isec.FRAME_OVERHEAD) + isec.FRAME_OVERHEAD
    ),
    "malformed_segment_table": lambda: isec.SegmentTable([(1, 0, bytes(7)), (2, 5, bytes(7))]),
    "limit_exceeded": lambda: _ring().create_envelope(declared_size=1 << 45),
    "external_wrapper_failed": _kms_failing,
    "malformed_checkpoint": lambda: isec.Checkpoint.parse(b"ISCK\x01"),
    "malformed_legacy": lambda: isec.LegacyMetadata({"plaintext-size": "-1"}),
    "sidecar_too_large": lambda: isec.LegacySidecar.parse(b"A" * 10_000, 16),
    "invalid_state": _finalized_twice,
    "not_encrypted": _not_encrypted,
    "duplicate_kid": _duplicate_kid,
}

# The CSPRNG cannot be made to fail from Python; local files (SPEC.md §17) and textual byte
# ranges are the isec command's, which the Python package does not expose.
UNREACHABLE = {"randomness_unavailable", "metadata_mismatch", "range_not_satisfiable"}


def test_every_code_has_a_trigger() -> None:
    assert set(TRIGGERS) | UNREACHABLE == set(isec.error_codes())


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_code_reaches_python_as_its_family(code: str) -> None:
    with expect_error(code) as info:
        TRIGGERS[code]()
    e = info.value
    assert type(e) is class_for(code)
    assert e.family == isec.error_codes()[code]
    assert code in str(e)


def test_random_envelopes_only_raise_isec_errors() -> None:
    rng = random.Random(7)
    good = isec.Envelope.decode_text(load("envelope.json")["tests"][0]["envelope"]).to_bytes()
    for _ in range(3000):
        b = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if rng.random() < 0.3:
            b = b[: rng.randrange(len(b) + 1)]
        if rng.random() < 0.1:
            b += bytes(rng.randrange(1, 300))
        try:
            isec.Envelope.decode(bytes(b))
        except isec.IsecError as e:
            assert isinstance(e, (isec.FormatError, isec.UsageError)), e.code
    for text in ["", "=", "AQ==", "!" * 10, "A" * 465, "\u00e9t\u00e9"]:
        with pytest.raises(isec.FormatError):
            isec.Envelope.decode_text(text)


def test_random_ciphertexts_only_raise_isec_errors() -> None:
    rng = random.Random(11)
    r = _ring()
    env, key = r.create_envelope(frame_size=4096)
    ct = isec.encrypt(key, bytes(10_000))
    for _ in range(400):
        b = bytearray(ct)
        op = rng.randrange(3)
        if op == 0:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:
            del b[rng.randrange(len(b)) :]
        else:
            b += bytes(rng.randrange(1, 5000))
        with pytest.raises((isec.AuthenticationError, isec.StreamError)):
            isec.decrypt(key, bytes(b))
        dec = isec.Decryptor(key)
        with pytest.raises((isec.AuthenticationError, isec.StreamError)):
            for i in range(0, len(b), 999):
                dec.update(b[i : i + 999])
            dec.finalize()
