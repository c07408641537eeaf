"""The security review's findings as a user of the Python package meets them: re-encrypting
an empty object (isec or the previous proxy's), a checkpoint under a decrypt-only kid, and a
previous-proxy secret named by an isec envelope."""

from __future__ import annotations

import json
from pathlib import Path

import isec
from .conftest import expect_error


def run(job: isec.Reencryption, ct: bytes) -> bytes:
    out = bytearray(job.update(ct, 0).output or b"")
    return bytes(out + job.finish())


def test_empty_isec_object_reencrypts_and_its_frame_is_verified() -> None:
    ring = isec.Keyring()
    ring.add_kek("a", isec.generate_kek())
    env, key = ring.create_envelope()
    ct = isec.encrypt(key, b"")
    ring.add_kek("b", isec.generate_kek())
    source = isec.IsecSource(ring, env, isec.shape_for(env, len(ct)))
    job = isec.Reencryption.start(ring, source)
    out = run(job, ct)
    assert job.target_envelope.kid == "b"
    assert isec.decrypt(ring.open(job.target_envelope), out) == b""
    bad = bytearray(ct)
    bad[20] ^= 1
    job = isec.Reencryption.start(ring, source)
    with expect_error("authentication_failed"):
        run(job, bytes(bad))


def test_empty_previous_proxy_object_reencrypts(s3proxy: Path) -> None:
    v = json.loads((s3proxy / "single_put.json").read_text())
    case = next(c for c in v["cases"] if c["plaintext"]["len"] == 0)
    ct = (s3proxy / case["ciphertext"]["bin_file"]).read_bytes()
    meta = {k: x for k, x in case["object_metadata"]["pr107_07bca1bf"].items() if not k.startswith("_")}
    obj = isec.LegacyObject(isec.LegacyMetadata(meta), len(ct))
    ring = isec.Keyring()
    ring.add_legacy_secret_string(meta["isec-kid"], case["kek"]["kek_secret"])
    ring.add_kek("isec", isec.generate_kek())
    job = isec.Reencryption.start(ring, isec.LegacySource(ring, obj))
    out = run(job, ct)
    assert isec.decrypt(ring.open(job.target_envelope), out) == b""


def test_checkpoint_under_a_decrypt_only_kid_is_refused() -> None:
    a, b = isec.generate_kek(), isec.generate_kek()
    ring = isec.Keyring()
    ring.add_kek("A", a)
    ring.add_kek("B", b, state="decrypt_only")
    env, key = ring.create_envelope(frame_size=4096)
    ct = isec.encrypt(key, bytes(50_000))
    forger = isec.Keyring()
    forger.add_kek("A", a, state="decrypt_only")
    forger.add_kek("B", b)
    job = isec.Reencryption.start(forger, isec.IsecSource(forger, env, isec.shape_for(env, len(ct))))
    cp = job.checkpoint()
    with expect_error("key_not_active"):
        isec.Reencryption.resume(ring, isec.IsecSource(ring, env, isec.shape_for(env, len(ct))), cp)


def test_previous_proxy_secret_opens_no_isec_envelope() -> None:
    ring = isec.Keyring()
    ring.add_legacy_secret_string("old", "pw")
    forged = isec.Keyring()
    forged.add_kek("old", isec.legacy_kek_from_secret("pw"))
    env, _ = forged.create_envelope()
    with expect_error("wrong_key_kind"):
        ring.open(env)
