"""The GIL is released around crypto on large inputs: another Python thread runs meanwhile,
and two threads encrypting separate objects use both cores."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import pytest

import isec

MIB = 1 << 20


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def counted_during(call: Callable[[], object]) -> int:
    """How often a counter thread ran while `call` was surely still running.

    `call` is timed alone first (d). Then, with a counter thread that yields the GIL after
    every step, the steps it took between 10 ms after `call` started and 80% of d are
    counted: a call that holds the GIL leaves the counter no step in that window (the 10 ms
    cover a switch between taking the start time and making the call), while one that
    releases it leaves the counter free to run throughout."""
    d = timed(call)
    assert d > 0.05, f"the call took only {d * 1000:.1f} ms alone: too short to measure"
    steps: list[float] = []
    stop = False
    started = threading.Event()

    def counter() -> None:
        started.set()
        while not stop:
            steps.append(time.perf_counter())
            time.sleep(0)

    t = threading.Thread(target=counter)
    t.start()
    started.wait()
    t0 = time.perf_counter()
    call()
    stop = True
    t.join()
    lo, hi = t0 + 0.01, t0 + 0.8 * d
    return sum(1 for s in steps if lo < s < hi)


def test_other_threads_run_during_large_calls() -> None:
    ring = isec.Keyring()
    ring.add_kek("k", isec.generate_kek())
    _, key = ring.create_envelope(frame_size=1 << 20)
    data = bytes(256 * MIB)
    ct = isec.encrypt(key, data)
    out = bytearray(len(ct) + MIB)
    plain = bytearray(len(ct))
    enc = isec.Encryptor(key)

    # Control: a C call that holds the GIL (bytes.translate) lets the counter do nothing.
    held = counted_during(lambda: data.translate(bytes(range(256))))
    released = {
        "encrypt": counted_during(lambda: isec.encrypt(key, data)),
        "decrypt": counted_during(lambda: isec.decrypt(key, ct)),
        # These write into a ready buffer and take tens of ms: a few calls in a row.
        "Encryptor.update_into": counted_during(lambda: [enc.update_into(data, out) for _ in range(4)]),
        "Decryptor.update_into": counted_during(
            lambda: [isec.Decryptor(key).update_into(ct, plain) for _ in range(4)]
        ),
    }
    assert held <= 2, f"control: the counter ran {held} times while the GIL was held"
    for name, n in released.items():
        assert n >= 20, f"{name}: the counter thread ran only {n} times ({held} with the GIL held)"


def on_two_threads(work: Callable[[int], object]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_two_threads_scale() -> None:
    """Two threads encrypting separate objects take well under twice the time of one.

    This host's two vCPUs are not always both available, so the measurement is interleaved
    with a yardstick that surely runs in parallel (hashlib, which also releases the GIL),
    and the best of several rounds of each counts: isec must scale like the yardstick does,
    and below 1.6x when the yardstick shows the machine can."""
    ring = isec.Keyring()
    ring.add_kek("k", isec.generate_kek())
    keys = [ring.create_envelope()[1] for _ in range(2)]
    chunk = bytes(MIB)

    def encrypt_object(i: int) -> None:
        enc = isec.Encryptor(keys[i])
        out = bytearray(enc.update_len(MIB) + MIB)
        for _ in range(768):  # 768 MiB per object: ~0.1 s per run
            enc.update_into(chunk, out)
        enc.finalize()

    def hash_object(i: int) -> None:
        h = hashlib.sha256()
        for _ in range(96):
            h.update(chunk)

    encrypt_object(0)  # warm up
    e1 = e2 = h1 = h2 = float("inf")
    for _ in range(10):
        e1 = min(e1, timed(lambda: encrypt_object(0)))
        e2 = min(e2, timed(lambda: on_two_threads(encrypt_object)))
        h1 = min(h1, timed(lambda: hash_object(0)))
        h2 = min(h2, timed(lambda: on_two_threads(hash_object)))
        if e2 < 1.6 * e1:
            return  # twice the work in well under twice the time
    isec_ratio, yardstick = e2 / e1, h2 / h1
    if yardstick >= 1.5:
        pytest.skip(
            f"NOT CHECKED: this machine did not run two GIL-free threads faster than one "
            f"(sha256: {yardstick:.2f}x the time for twice the work; isec: {isec_ratio:.2f}x)"
        )
    # Serialized threads would take ~2x.
    assert isec_ratio < max(1.6, 1.15 * yardstick), (
        f"2 threads took {e2:.3f}s for twice the work of {e1:.3f}s ({isec_ratio:.2f}x) "
        f"while sha256 threads took {yardstick:.2f}x"
    )
