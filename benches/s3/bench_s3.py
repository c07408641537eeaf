"""isec.s3.Client against plain boto3 on a real S3 server, in one process.

Not a test: prints a Markdown table of median MB/s (plaintext bytes per second) per
operation for isec and for the plain SDK, and the ratio isec/plain, then the peak RSS of a
1 GiB put and get through isec, each in a child process (VmHWM), against the budget
(concurrency + 2) parts + 32 MiB.

  put     isec Client.put_object(file-like)  vs  boto3 upload_fileobj (TransferConfig with
          the same part size and max_concurrency); new bytes at every put on both sides
  get     isec Client.get_object (whole)     vs  boto3 download_fileobj (same TransferConfig)
  get into a file object
          isec Client.download_file(BytesIO) vs  boto3 download_fileobj(BytesIO)
  get_object, one GET (plain)
          isec Client.get_object             vs  plain GetObject()["Body"].read()
  range   isec Client.get_range (1 MiB)      vs  plain ranged GetObject of the same 1 MiB
          (ISEC_BENCH_RANGES of them per sample, 32)

Both sides use the same part size and concurrency (isec: part_size=, max_workers=). The
repetitions alternate isec and plain (which goes first flips every repetition), so drift
of the shared machine hits both.

Environment: ISEC_S3_ENDPOINT, ISEC_S3_REGION, ISEC_S3_ACCESS_KEY_ID,
ISEC_S3_SECRET_ACCESS_KEY, ISEC_S3_BUCKET (scripts/garage.sh env --export).
Knobs: ISEC_BENCH_MIB (object size, 96), ISEC_BENCH_PART_MIB (8), ISEC_BENCH_REPS (5),
ISEC_BENCH_CONC ("1,4"), ISEC_BENCH_RSS_MIB (1024; 0 skips the RSS children),
ISEC_BENCH_PROFILE=1 (cProfile of one isec put and get at the highest concurrency, to stderr).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

import isec
import isec.s3

MIB = 1 << 20
SIZE = int(os.environ.get("ISEC_BENCH_MIB", "96")) * MIB
PART = int(os.environ.get("ISEC_BENCH_PART_MIB", "8")) * MIB
REPS = int(os.environ.get("ISEC_BENCH_REPS", "5"))
CONCS = [int(c) for c in os.environ.get("ISEC_BENCH_CONC", "1,4").split(",")]
RSS_MIB = int(os.environ.get("ISEC_BENCH_RSS_MIB", "1024"))
RANGES = int(os.environ.get("ISEC_BENCH_RANGES", "32"))  # 1 MiB ranges per timed range sample
BUCKET = os.environ.get("ISEC_S3_BUCKET", "isec-test")


def boto() -> object:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["ISEC_S3_ENDPOINT"],
        region_name=os.environ.get("ISEC_S3_REGION", "garage"),
        aws_access_key_id=os.environ["ISEC_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["ISEC_S3_SECRET_ACCESS_KEY"],
        config=Config(max_pool_connections=16, s3={"addressing_style": "path"}),
    )


def keyring() -> isec.Keyring:
    ring = isec.Keyring()
    # A fixed KEK: the RSS children read what another child wrote.
    ring.add_kek("bench", bytes(range(32)))
    return ring


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def rss_now_kib() -> int:
    return proc_status_kib("VmRSS")


class Sink(io.RawIOBase):
    """A writable that counts and drops what it is given (for the streamed isec get)."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        n = memoryview(b).nbytes
        self.n += n
        return n


class Repeated(io.RawIOBase):
    """A readable of `size` bytes that allocates one part-sized block (the 1 GiB put)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(PART)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            n = self.left
        n = min(n, len(self.block))
        self.left -= n
        return self.block[:n]


def child_rss(op: str, conc: int) -> None:
    """The child: one `op` of RSS_MIB MiB through isec; prints baseline and peak RSS (KiB)."""
    s3 = boto()
    client = isec.s3.Client(s3, keyring(), part_size=PART, max_workers=conc)
    key = f"bench-py/rss-{conc}"
    size = RSS_MIB * MIB
    base = rss_now_kib()
    if op == "put":
        # A file of known size on disk (page cache is not RSS): the helper's known-size path.
        with tempfile.TemporaryFile(dir=os.environ.get("ISEC_BENCH_TMP")) as f:
            z = Repeated(size)
            while chunk := z.read(PART):
                f.write(chunk)
            f.flush()
            f.seek(0)
            base = rss_now_kib()
            t = timed(lambda: client.put_object(BUCKET, key, f))
    else:
        sink = Sink()
        t = timed(lambda: client.download_file(BUCKET, key, sink))
        assert sink.n == size, sink.n
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across execve, so a child
    # would report the (larger) peak of the parent it was forked from.
    peak = proc_status_kib("VmHWM")
    print(f"{base} {peak} {size / t / 1e6:.1f}")


def rss_row(op: str, conc: int) -> str:
    out = subprocess.run(
        [sys.executable, __file__, "--rss", op, str(conc)], check=True, capture_output=True, text=True
    ).stdout.split()
    base, peak, mbs = int(out[0]), int(out[1]), float(out[2])
    budget = (conc + 2) * PART + 32 * MIB
    over = (peak - base) * 1024
    ok = "yes" if over <= budget else "no"
    return (
        f"| {op} {RSS_MIB} MiB, concurrency {conc} | {peak / 1024:.0f} | {base / 1024:.0f} | "
        f"{over / MIB:.0f} | {budget / MIB:.0f} | {ok} | {mbs:.0f} |"
    )


def main() -> None:
    s3 = boto()
    ring = keyring()
    data = os.urandom(SIZE)
    rows = []
    load = []
    # Every put sends bytes the server has not stored yet: Garage deduplicates blocks, so a
    # plain re-upload of the same bytes would skip its writes (isec's ciphertext is new at
    # every put anyway). Each MiB block gets a fresh stamp.
    stamp = iter(range(int.from_bytes(os.urandom(4), "little") << 20, 1 << 62))
    for conc in CONCS:
        client = isec.s3.Client(s3, ring, part_size=PART, max_workers=conc)
        cfg = TransferConfig(
            multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=conc, use_threads=True
        )
        ik, pk = f"bench-py/isec-{conc}", f"bench-py/plain-{conc}"
        offsets = [(i * (SIZE - MIB)) // (RANGES - 1) // 4096 * 4096 + 12345 for i in range(RANGES)]
        offsets = [min(o, SIZE - MIB) for o in offsets]

        def fresh() -> bytes:
            b = bytearray(data)
            n = next(stamp).to_bytes(8, "little")
            for at in range(0, SIZE, MIB):
                b[at : at + 8] = n
            return bytes(b)

        put_body = {"isec": fresh(), "plain": fresh()}

        stored = {}

        def isec_put():
            client.put_object(BUCKET, ik, io.BytesIO(put_body["isec"]))
            stored["isec"] = put_body["isec"]

        def plain_put():
            s3.upload_fileobj(io.BytesIO(put_body["plain"]), BUCKET, pk, Config=cfg)

        def isec_get():
            assert len(client.get_object(BUCKET, ik)) == SIZE

        def plain_get():
            b = io.BytesIO()
            s3.download_fileobj(BUCKET, pk, b, Config=cfg)
            assert b.getbuffer().nbytes == SIZE

        def isec_get_file():
            b = io.BytesIO()
            assert client.download_file(BUCKET, ik, b) == SIZE

        def plain_get_bytes():
            assert len(s3.get_object(Bucket=BUCKET, Key=pk)["Body"].read()) == SIZE

        def isec_range():
            for o in offsets:
                assert client.get_range(BUCKET, ik, o, o + MIB) == stored["isec"][o : o + MIB]

        def plain_range():
            for o in offsets:
                r = s3.get_object(Bucket=BUCKET, Key=pk, Range=f"bytes={o}-{o + MIB - 1}")
                assert len(r["Body"].read()) == MIB

        ops = [
            ("put", SIZE, isec_put, plain_put),
            ("get", SIZE, isec_get, plain_get),
            ("get into a file object", SIZE, isec_get_file, plain_get),
            ("get_object, one GET (plain)", SIZE, isec_get, plain_get_bytes),
            ("range 1 MiB", RANGES * MIB, isec_range, plain_range),
        ]
        # Warm-up: creates both objects, opens connections.
        isec_put()
        plain_put()
        assert client.get_object(BUCKET, ik) == stored["isec"]
        put_body["isec"], put_body["plain"] = fresh(), fresh()
        samples = {(name, side): [] for name, *_ in ops for side in ("isec", "plain")}
        for rep in range(REPS):
            for name, nbytes, fi, fp in ops:
                order = [("isec", fi), ("plain", fp)]
                if rep % 2:
                    order.reverse()
                for side, fn in order:
                    samples[(name, side)].append(nbytes / timed(fn) / 1e6)
                if name == "put":
                    put_body["isec"], put_body["plain"] = fresh(), fresh()
            load.append(os.getloadavg()[0])
        for name, *_ in ops:
            i = statistics.median(samples[(name, "isec")])
            p = statistics.median(samples[(name, "plain")])
            ok = "yes" if i / p >= 0.95 else "no"
            rows.append(f"| {name} | {conc} | {i:.0f} | {p:.0f} | {i / p:.2f} | {ok} |")
        if os.environ.get("ISEC_BENCH_PROFILE") == "1" and conc == max(CONCS):
            for label, fn in (("put", isec_put), ("get", isec_get), ("range", isec_range)):
                prof = cProfile.Profile()
                prof.runcall(fn)
                print(f"\n--- cProfile, isec {label}, concurrency {conc} (main thread) ---", file=sys.stderr)
                pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(12)
            # Timing split: the crypto alone, in this thread, and one HEAD round trip.
            env, okey = ring.create_envelope(declared_size=SIZE)
            t_enc = timed(lambda: isec.encrypt(okey, data))
            ct = isec.encrypt(okey, data)
            t_dec = timed(lambda: isec.decrypt(okey, ct))
            t_head = statistics.median(timed(lambda: s3.head_object(Bucket=BUCKET, Key=ik)) for _ in range(9))
            print(
                f"\n--- split: encrypt {SIZE // MIB} MiB {t_enc:.3f} s ({SIZE / t_enc / 1e6:.0f} MB/s), "
                f"decrypt {t_dec:.3f} s ({SIZE / t_dec / 1e6:.0f} MB/s), HEAD {t_head * 1e3:.1f} ms ---",
                file=sys.stderr,
            )

    print(f"object {SIZE // MIB} MiB, parts {PART // MIB} MiB, {REPS} alternating repetitions, median MB/s")
    print(f"(range: {RANGES} ranged reads of 1 MiB per sample); python {sys.version.split()[0]}, boto3 {boto3.__version__}")
    print()
    print("| operation | concurrency | isec MB/s | plain MB/s | isec/plain | >= 0.95 |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"load average (1 min) during the repetitions: min {min(load):.2f}, max {max(load):.2f}")
    if RSS_MIB:
        print()
        print("| isec, child process | peak RSS MiB | RSS before MiB | peak - before MiB | budget MiB | within | MB/s |")
        print("|---|---|---|---|---|---|---|")
        for conc in CONCS:
            print(rss_row("put", conc))
            print(rss_row("get", conc))
        print(f"load average (1 min) after the RSS children: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss":
        child_rss(sys.argv[2], int(sys.argv[3]))
    else:
        main()
