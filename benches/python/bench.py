"""Throughput of the isec Python package against its Python peers, measured in one run.

    bash scripts/test-python.sh -q          # builds bindings-py/.venv with isec installed
    bindings-py/.venv/bin/pip install cryptography aws-encryption-sdk \\
        aws-cryptographic-material-providers tink
    bindings-py/.venv/bin/python benches/python/bench.py [--mib 256]

MB/s of plaintext (10^6 bytes), one thread, best of several runs, for 64 KiB and 1 MiB frames:

- isec streaming `Encryptor.update_into` / `Decryptor.update_into` with reused output
  buffers (4 MiB of plaintext per call), plus `update()` returning new bytes, for reference;
- `cryptography` AESGCM `encrypt_into` / `decrypt_into` once per frame into a reused buffer:
  the raw AES-GCM call a framed format cannot beat, so the target is >= 0.8x of it;
- the AWS Encryption SDK (raw AES keyring, frame length = the frame size), with its default
  suite (key commitment and an ECDSA P-384 signature over every message) and with the
  committing suite without signatures (closer to isec's guarantees): target isec >= 15x;
- tink streaming AEAD (AES256-GCM-HKDF, segment = the frame size).

A peer that is not installed is reported as such and skipped. This is a benchmark script,
not a test: it prints numbers and whether the targets are met, and exits 0 either way.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import isec

KIB, MIB = 1 << 10, 1 << 20
CALL = 4 * MIB  # plaintext per streaming call


def best(fn: Callable[[], object], runs: int) -> float:
    """The fastest of `runs` timed calls, in seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


class Case:
    """One implementation at one frame size; `share` is the fraction of the data it runs on
    (slow peers get less), and times are scaled to the full size."""

    def __init__(self, name: str, frame: int, enc: Callable[[], object], dec: Callable[[], object]) -> None:
        self.name, self.frame, self.enc, self.dec = name, frame, enc, dec
        self.share = 1.0
        self.enc_s = float("inf")
        self.dec_s = float("inf")


# --- isec --------------------------------------------------------------------------------------


def isec_cases(pt: bytes, frame: int) -> list[Case]:
    ring = isec.Keyring()
    ring.add_kek("bench", isec.generate_kek())
    _, key = ring.create_envelope(frame_size=frame)
    ct = isec.encrypt(key, pt)
    view, ctview = memoryview(pt), memoryview(ct)
    ct_call = CALL // frame * (frame + isec.FRAME_OVERHEAD)  # whole frames per call
    out = bytearray(CALL + 2 * frame + 64 * isec.FRAME_OVERHEAD)

    def enc_into() -> None:
        e = isec.Encryptor(key)
        for at in range(0, len(pt), CALL):
            e.update_into(view[at : at + CALL], out)
        e.finalize_into(out)

    def dec_into() -> None:
        d = isec.Decryptor(key)
        for at in range(0, len(ct), ct_call):
            d.update_into(ctview[at : at + ct_call], out)
        d.finalize_into(out)

    def enc_bytes() -> None:
        e = isec.Encryptor(key)
        for at in range(0, len(pt), CALL):
            e.update(view[at : at + CALL])
        e.finalize()

    def dec_bytes() -> None:
        d = isec.Decryptor(key)
        for at in range(0, len(ct), ct_call):
            d.update(ctview[at : at + ct_call])
        d.finalize()

    return [
        Case("isec update_into", frame, enc_into, dec_into),
        Case("isec update -> bytes", frame, enc_bytes, dec_bytes),
    ]


# --- cryptography --------------------------------------------------------------------------------


def cryptography_case(pt: bytes, frame: int) -> Case:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aes = AESGCM(AESGCM.generate_key(bit_length=256))
    prefix = os.urandom(7)
    frames = [(at, min(at + frame, len(pt))) for at in range(0, len(pt), frame)]
    nonces = [prefix + i.to_bytes(5, "big") for i in range(len(frames))]
    view = memoryview(pt)
    out = bytearray(frame + 16)
    cts = [aes.encrypt(nonces[i], view[a:b], None) for i, (a, b) in enumerate(frames)]
    plain = bytearray(frame)

    def enc() -> None:
        for n, (a, b) in zip(nonces, frames):
            aes.encrypt_into(n, view[a:b], None, memoryview(out)[: b - a + 16])

    def dec() -> None:
        for n, c in zip(nonces, cts):
            aes.decrypt_into(n, c, None, memoryview(plain)[: len(c) - 16])

    return Case("cryptography AESGCM *_into per frame", frame, enc, dec)


# --- AWS Encryption SDK ----------------------------------------------------------------------


def aws_case(pt: bytes, frame: int, signed: bool = False) -> Case:
    import aws_encryption_sdk
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import AesWrappingAlg, CreateRawAesKeyringInput
    from aws_encryption_sdk.identifiers import AlgorithmSuite, CommitmentPolicy

    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    keyring = mpl.create_raw_aes_keyring(
        input=CreateRawAesKeyringInput(
            key_namespace="bench",
            key_name="bench-key",
            wrapping_key=os.urandom(32),
            wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
        )
    )
    # The default suite signs every message (ECDSA P-384 over a SHA-384 of the body); the
    # other committing suite does not, which is closer to what isec does.
    suite = (
        AlgorithmSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
        if signed
        else AlgorithmSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    )
    ct, header = client.encrypt(source=pt, keyring=keyring, frame_length=frame, algorithm=suite)
    assert header.algorithm == suite

    def enc() -> None:
        client.encrypt(source=pt, keyring=keyring, frame_length=frame, algorithm=suite)

    def dec() -> None:
        out, _ = client.decrypt(source=ct, keyring=keyring)
        assert len(out) == len(pt)

    name = "AWS Encryption SDK, default suite (signed)" if signed else "AWS Encryption SDK, unsigned commit suite"
    return Case(name, frame, enc, dec)


# --- tink ----------------------------------------------------------------------------------------


def tink_case(pt: bytes, frame: int) -> Case:
    import tink
    from tink import streaming_aead
    from tink.proto import common_pb2

    streaming_aead.register()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # still the way to pick a segment size
        template = streaming_aead.streaming_aead_key_templates.create_aes_gcm_hkdf_streaming_key_template(
            aes_key_size=32, hash_type=common_pb2.HashType.SHA256, derived_key_size=32, ciphertext_segment_size=frame
        )
    primitive: Any = tink.new_keyset_handle(template).primitive(streaming_aead.StreamingAead)

    class Sink(io.RawIOBase):
        """Drops what it is given (or keeps it), so the peer is not charged for a growing
        BytesIO; tink closes the stream it writes to."""

        def __init__(self, keep: bytearray | None = None) -> None:
            self.keep = keep

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            if self.keep is not None:
                self.keep += b
            return len(b)

    view = memoryview(pt)
    ct_buf = bytearray()
    with primitive.new_encrypting_stream(Sink(ct_buf), b"") as s:
        s.write(pt)
    ct = bytes(ct_buf)

    def enc() -> None:
        with primitive.new_encrypting_stream(Sink(), b"") as s:
            for at in range(0, len(pt), CALL):
                s.write(view[at : at + CALL])

    def dec() -> None:
        with primitive.new_decrypting_stream(io.BytesIO(ct), b"") as s:
            n = 0
            while chunk := s.read(CALL):
                n += len(chunk)
        assert n == len(pt)

    return Case("tink streaming AEAD (AES256-GCM-HKDF)", frame, enc, dec)


PEERS: list[tuple[str, Callable[[bytes, int], Case], float]] = [
    ("cryptography", cryptography_case, 1.0),
    ("aws-encryption-sdk", lambda pt, frame: aws_case(pt, frame, signed=True), 0.125),
    ("aws-encryption-sdk", aws_case, 0.125),
    ("tink", tink_case, 0.25),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=256, help="plaintext per run for the fast paths (MiB)")
    ap.add_argument("--runs", type=int, default=5, help="runs per measurement; the best counts")
    args = ap.parse_args()
    data = os.urandom(args.mib * MIB)
    print(f"isec {isec.__version__}, Python {sys.version.split()[0]}, {args.mib} MiB per run, best of {args.runs}")
    sys.stdout.flush()

    rows: list[Case] = []
    missing: list[str] = []
    for frame in (64 * KIB, MIB):
        cases = isec_cases(data, frame)
        for name, make, share in PEERS:
            n = max(int(len(data) * share) // frame * frame, frame)
            try:
                c = make(data[:n], frame)
            except ImportError as e:
                note = f"{name} ({e.name} not installed)"
                if note not in missing:
                    missing.append(note)
                continue
            c.share = n / len(data)
            cases.append(c)
        # Interleaved: one run of each in turn, repeated, so that load drifts affect all alike.
        for _ in range(args.runs):
            for c in cases:
                c.enc_s = min(c.enc_s, best(c.enc, 1) / c.share)
                c.dec_s = min(c.dec_s, best(c.dec, 1) / c.share)
        rows += cases

    def mbps(seconds: float) -> float:
        return len(data) / seconds / 1e6

    print(f"\n{'implementation':44} {'frame':>6} {'enc MB/s':>10} {'dec MB/s':>10} {'isec/this enc':>14} {'dec':>7}")
    by_frame: dict[int, Case] = {r.frame: r for r in rows if r.name == "isec update_into"}
    for r in rows:
        me = by_frame[r.frame]
        label = f"{r.frame // KIB}K" if r.frame < MIB else f"{r.frame // MIB}M"
        ratio_e = mbps(me.enc_s) / mbps(r.enc_s)
        ratio_d = mbps(me.dec_s) / mbps(r.dec_s)
        print(
            f"{r.name:44} {label:>6} {mbps(r.enc_s):10.0f} {mbps(r.dec_s):10.0f} {ratio_e:13.2f}x {ratio_d:6.2f}x"
        )
    print()
    for r in rows:
        me = by_frame[r.frame]
        label = f"{r.frame // KIB} KiB"
        if r.name.startswith("cryptography"):
            ok = mbps(me.enc_s) >= 0.8 * mbps(r.enc_s) and mbps(me.dec_s) >= 0.8 * mbps(r.dec_s)
            print(f"target isec >= 0.8x the encrypt_into loop, {label} frames: {'met' if ok else 'NOT met'}")
        if r.name.startswith("AWS"):
            ok = mbps(me.enc_s) >= 15 * mbps(r.enc_s) and mbps(me.dec_s) >= 15 * mbps(r.dec_s)
            which = r.name.split(", ", 1)[1]
            print(f"target isec >= 15x the AWS Encryption SDK ({which}), {label} frames: {'met' if ok else 'NOT met'}")
    for m in missing:
        print(f"not measured: {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
