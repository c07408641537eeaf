"""Streaming memory is bounded: a 1 GiB encrypt + decrypt, generated and checked in chunks,
grows the process's resident memory by less than 32 MiB. A measurement, not a benchmark."""

from __future__ import annotations

import hashlib
import sys

import pytest

import isec

MIB = 1 << 20


def rss() -> int:
    """Resident set size in bytes, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_1gib_stream_has_bounded_rss() -> None:
    ring = isec.Keyring()
    ring.add_kek("k", isec.generate_kek())
    _, key = ring.create_envelope()
    enc, dec = isec.Encryptor(key), isec.Decryptor(key)
    chunk = bytearray(bytes(range(256)) * (MIB // 256))
    ct_buf = bytearray(enc.update_len(MIB) + MIB)
    sent, received = hashlib.sha256(), hashlib.sha256()
    total = 1 << 30
    base = peak = rss()
    for i in range(total // MIB):
        chunk[:8] = i.to_bytes(8, "big")  # every chunk differs
        sent.update(chunk)
        n = enc.update_into(chunk, ct_buf)  # encrypt into a reused buffer ...
        received.update(dec.update(memoryview(ct_buf)[:n]))  # ... decrypt to fresh bytes
        if i % 8 == 0:
            peak = max(peak, rss())
    received.update(dec.update(enc.finalize()))
    received.update(dec.finalize())
    peak = max(peak, rss())
    assert enc.locked and dec.locked
    assert sent.digest() == received.digest(), "1 GiB round trip"
    grown = peak - base
    assert grown < 32 * MIB, f"RSS grew by {grown / MIB:.1f} MiB streaming 1 GiB"
