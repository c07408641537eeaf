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
    """Two threads encrypting separate objects use two cores at once.

    Measured as parallelism, not speed: the process's CPU time over the wall time of the
    two-thread run. With the GIL held around the crypto only one thread could run it at a
    time (ratio about 1.0); released, both run (ratio near 2.0). This host's two vCPUs are
    not always both free, so a yardstick that surely runs in parallel (hashlib, which also
    releases the GIL) is measured in the same rounds, the best round of each counts, and the
    check is skipped, saying so, when even the yardstick found no second core."""
    ring = isec.Keyring()
    ring.add_kek("k", isec.generate_kek())
    keys = [ring.create_envelope()[1] for _ in range(2)]
    piece = 256 << 10  # above the GIL-release threshold
    chunk = bytes(piece)

    def encrypt_object(i: int) -> None:
        enc = isec.Encryptor(keys[i])
        out = bytearray(enc.update_len(piece) + piece)
        for _ in range(3072):  # 768 MiB per object: ~0.1 s per run
            enc.update_into(chunk, out)
        enc.finalize()

    def hash_object(i: int) -> None:
        h = hashlib.sha256()
        for _ in range(384):
            h.update(chunk)

    def parallelism(work: Callable[[int], object]) -> float:
        c0, t0 = time.process_time(), time.perf_counter()
        on_two_threads(work)
        return (time.process_time() - c0) / (time.perf_counter() - t0)

    encrypt_object(0)  # warm up
    p_isec = p_hash = 0.0
    for _ in range(10):
        p_isec = max(p_isec, parallelism(encrypt_object))
        p_hash = max(p_hash, parallelism(hash_object))
        if p_isec >= 1.4:
            return  # both threads were inside isec at once for most of the run
    if p_hash < 1.4:
        pytest.skip(
            f"NOT CHECKED: this machine did not give two GIL-free threads two cores "
            f"(sha256: {p_hash:.2f} CPU-seconds per second; isec: {p_isec:.2f})"
        )
    # A held GIL would keep isec near 1.0 while the yardstick shows the second core.
    assert p_isec >= min(1.4, 0.85 * p_hash), (
        f"two encrypting threads used {p_isec:.2f} CPU-seconds per second; sha256 threads {p_hash:.2f}"
    )
