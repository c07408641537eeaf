"""A Dask rotation with 1, 2 and 3 workers against the single-machine job and a bare boto3
loop, in one process and one run, on the three-node Garage cluster.

Not a test: prints a Markdown table of objects per second (median of ISEC_BENCH_REPS runs)
and where the CPU went during each kind of run.

  dask N      isec.dask.rotate on a LocalCluster of N worker processes
              (ISEC_BENCH_THREADS_PER_WORKER threads each): the driver lists and hands out
              batches of ISEC_BENCH_BATCH actions (HEADs, then rewrap tasks); a worker's
              rewrap HEADs the object again (the job's HEAD was answered in another
              batch, maybe on another worker), then sends the ETag-pinned REPLACE
              self-copy. Workers spread over the
              cluster's three S3 endpoints.
  single      isec.s3.Client.rotate on one machine (one process, threads): HEAD, then
              the self-copy, reusing the job's HEAD. Node 1's endpoint.
  bare        the loop every metadata-changing tool runs: list, then per key HEAD and
              CopyObject onto itself with MetadataDirective=REPLACE and the HEAD's
              metadata, pinned with CopySourceIfMatch. Node 1's endpoint.

All three use the same bucket, prefix and objects (ISEC_BENCH_OBJECTS of
ISEC_BENCH_OBJECT_BYTES, written once under key k1) and the same number of requests in
flight (ISEC_BENCH_CONC: the job's concurrency, the bare loop's threads; on Dask at most
workers x threads per worker x min(batch, 8) are out, so 1 worker of 2 threads at batch 4
runs 8). Every isec run rotates every object to the other key (k1 -> k2 -> k1 ...), so each
run rewraps all of them; the bare loop rewrites them in place. A run is timed from the job's start to its
result; Dask clusters are started (and their workers' imports warmed) outside the timing.

CPU: each run reads /proc/stat (whole machine) and /proc/PID/stat of the driver (which
also hosts the Dask scheduler), the Dask worker processes and the Garage nodes, and reports
their CPU seconds per wall second (2.00 is both cores of this machine busy); "other" is the
rest of the machine (the Dask nannies, and whatever else shares it).

Environment: ISEC_GARAGE_STATE (the cluster's env file is $ISEC_GARAGE_STATE/cluster/env,
from `scripts/garage.sh cluster start`; default target/garage).
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

import isec
import isec.s3

REPO = Path(__file__).resolve().parents[2]
OBJECTS = int(os.environ.get("ISEC_BENCH_OBJECTS", "3000"))
OBJECT_BYTES = int(os.environ.get("ISEC_BENCH_OBJECT_BYTES", "512"))
CONC = int(os.environ.get("ISEC_BENCH_CONC", "32"))
BATCH = int(os.environ.get("ISEC_BENCH_BATCH", "4"))
THREADS_PER_WORKER = int(os.environ.get("ISEC_BENCH_THREADS_PER_WORKER", "2"))
WORKERS = [int(n) for n in os.environ.get("ISEC_BENCH_WORKERS", "1,2,3").split(",")]
REPS = int(os.environ.get("ISEC_BENCH_REPS", "3"))
TICK = os.sysconf("SC_CLK_TCK")


def cluster_env() -> dict[str, str]:
    path = Path(os.environ.get("ISEC_GARAGE_STATE", REPO / "target" / "garage")) / "cluster" / "env"
    if not path.is_file():
        sys.exit(f"no three-node Garage cluster ({path}): scripts/garage.sh cluster start")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


ENV = cluster_env()
BUCKET = ENV["ISEC_S3_BUCKET"]
# The standard credential chain, for this process and the Dask workers it starts (which
# inherit it): no credential travels in a task.
os.environ.update(
    AWS_ACCESS_KEY_ID=ENV["ISEC_S3_ACCESS_KEY_ID"],
    AWS_SECRET_ACCESS_KEY=ENV["ISEC_S3_SECRET_ACCESS_KEY"],
    AWS_DEFAULT_REGION=ENV["ISEC_S3_REGION"],
)


def boto(conc: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=ENV["ISEC_S3_ENDPOINT"],
        region_name=ENV["ISEC_S3_REGION"],
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=conc + 4),
    )


# --- CPU accounting ----------------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """Seconds of CPU busy and total (all cores) since boot, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return (sum(f[:8]) - idle) / TICK, sum(f[:8]) / TICK


def proc_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system, all threads) of the processes still alive."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        f = stat.rsplit(")", 1)[1].split()
        total += (int(f[11]) + int(f[12])) / TICK
    return total


@dataclass
class Side:
    name: str
    rates: list[float] = field(default_factory=list)
    # CPU seconds per wall second, per run: machine, driver, workers, garage.
    cpu: list[tuple[float, float, float, float]] = field(default_factory=list)

    def timed(self, run: Callable[[], None], worker_pids: list[int]) -> None:
        garage = [int(p) for p in ENV["ISEC_GARAGE_CLUSTER_PIDS"].split(",")]
        me = [os.getpid()]
        m0, t0 = machine_busy()[0], time.perf_counter()
        d0, w0, g0 = proc_cpu(me), proc_cpu(worker_pids), proc_cpu(garage)
        run()
        wall = time.perf_counter() - t0
        m1 = machine_busy()[0]
        d1, w1, g1 = proc_cpu(me), proc_cpu(worker_pids), proc_cpu(garage)
        self.rates.append(OBJECTS / wall)
        self.cpu.append(((m1 - m0) / wall, (d1 - d0) / wall, (w1 - w0) / wall, (g1 - g0) / wall))
        print(f"  {self.name}: {wall:.2f} s, {OBJECTS / wall:,.0f} objects/s, cpu {self.cpu[-1]}", file=sys.stderr)

    def rate(self) -> float:
        return statistics.median(self.rates)

    def cpu_median(self) -> tuple[float, ...]:
        return tuple(statistics.median(c[i] for c in self.cpu) for i in range(4))


# --- the bucket --------------------------------------------------------------------------------


def keys(s3: Any, prefix: str) -> list[str]:
    out: list[str] = []
    kw: dict[str, Any] = {}
    while True:
        r = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **kw)
        out += [c["Key"] for c in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            return out
        kw = {"ContinuationToken": r["NextContinuationToken"]}


def clean(s3: Any, prefix: str) -> None:
    ks = keys(s3, prefix)
    for i in range(0, len(ks), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in ks[i : i + 1000]]})


def bare_rewrite(s3: Any, key: str) -> None:
    h = s3.head_object(Bucket=BUCKET, Key=key)
    s3.copy_object(
        Bucket=BUCKET,
        Key=key,
        CopySource={"Bucket": BUCKET, "Key": key},
        CopySourceIfMatch=h["ETag"],
        MetadataDirective="REPLACE",
        Metadata=h["Metadata"],
    )


def check(s: dict[str, Any]) -> None:
    """Every object rotated: a run that skipped or failed some measured something else."""
    assert s["done"]["objects"] == OBJECTS and s["failed"]["objects"] == 0, (s["done"], s["failed_by_code"])


def warm() -> int:
    """On a worker: the imports a task needs, before the clock starts; its pid."""
    importlib.import_module("isec.dask")
    importlib.import_module("boto3")
    return os.getpid()


def main() -> None:
    # Dask's sampling profiler calls sys._current_frames() on every worker every 10 ms; on
    # CPython before 3.11.9 that can deadlock against a thread starting or ending (the
    # interpreter lock and the GIL taken in opposite orders, CPython gh-106883), and each
    # batch starts and ends its own threads: a worker hung after about a thousand batches
    # here. Off (in this process's config and in the environment the workers inherit).
    os.environ["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    importlib.import_module("dask").config.set({"distributed.worker.profile.enabled": False})
    distributed: Any = importlib.import_module("distributed")
    import isec.dask

    s3 = boto(CONC)
    prefix = f"bench-scale-{uuid.uuid4().hex[:8]}/"
    kek = {"k1": isec.generate_kek(), "k2": isec.generate_kek()}
    tmp = Path(tempfile.mkdtemp(prefix="isec-bench-scale-"))
    # One keyring file per direction: the old key decrypt-only, the new one active.
    rings: dict[str, Path] = {}
    for new, old in (("k2", "k1"), ("k1", "k2")):
        rings[new] = tmp / f"to-{new}.json"
        rings[new].write_text(
            json.dumps(
                {
                    "keys": [
                        {"kid": old, "kek": kek[old].hex(), "state": "decrypt_only"},
                        {"kid": new, "kek": kek[new].hex(), "state": "active"},
                    ]
                }
            )
        )
    os.chmod(tmp, 0o700)
    current = ["k1"]

    def target() -> str:
        """The key the next isec run rotates to (the one the objects are not under)."""
        new = "k2" if current[0] == "k1" else "k1"
        current[0] = new
        return new

    writer = isec.Keyring()
    writer.add_kek("k1", kek["k1"])
    w = isec.s3.Client(s3, writer)
    body = os.urandom(OBJECT_BYTES)
    with ThreadPoolExecutor(CONC) as pool:
        list(pool.map(lambda i: w.put_object(BUCKET, f"{prefix}{i:06d}", body), range(OBJECTS)))

    cfg = isec.dask.S3Config(
        endpoints=tuple(ENV["ISEC_S3_ENDPOINTS"].split(",")),
        region=ENV["ISEC_S3_REGION"],
        max_pool_connections=CONC + 4,
    )
    single, bare = Side("single-machine job"), Side("bare boto3 self-copy loop")
    dask = {n: Side(f"dask, {n} worker{'s' if n > 1 else ''}") for n in WORKERS}

    def single_run() -> None:
        client = isec.s3.Client(s3, isec.Keyring.from_file(rings[target()]))
        check(client.rotate(BUCKET, prefix, concurrency=CONC).run())

    def bare_run() -> None:
        with ThreadPoolExecutor(CONC) as pool:
            list(pool.map(lambda k: bare_rewrite(s3, k), keys(s3, prefix)))

    print(
        f"python {sys.version.split()[0]}, isec {isec.__version__}, distributed {distributed.__version__}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {OBJECTS} objects x {OBJECT_BYTES} B, "
        f"concurrency {CONC}, batch {BATCH}, {THREADS_PER_WORKER} threads per worker, {REPS} reps",
        flush=True,
    )
    try:
        # The single-machine sides alternate which goes first; they run before and between
        # the Dask clusters so that drift over the run hits every side.
        for rep in range(REPS):
            for side, run in [(single, single_run), (bare, bare_run)][:: 1 if rep % 2 == 0 else -1]:
                side.timed(run, [])
        for n in WORKERS:
            lc = distributed.LocalCluster(
                n_workers=n, threads_per_worker=THREADS_PER_WORKER, processes=True, dashboard_address=":0"
            )
            dc = distributed.Client(lc)
            try:
                pids = list(dc.run(warm).values())

                def dask_run() -> None:
                    ks = isec.dask.KeySource(path=str(rings[target()]))
                    job = isec.dask.rotate(dc, BUCKET, prefix, s3=cfg, keys=ks, concurrency=CONC, batch=BATCH)
                    check(job.run())

                for _ in range(REPS):
                    dask[n].timed(dask_run, pids)
            finally:
                dc.close()
                lc.close()
    finally:
        clean(s3, prefix)
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()

    load = os.getloadavg()
    print(f"load after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print()
    print(
        "| run | objects/s | / single-machine job | / bare self-copy loop | machine CPU "
        "| driver (+scheduler) | workers | Garage (3 nodes) | other processes |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for side in [single, bare, *dask.values()]:
        r = side.rate()
        c = side.cpu_median()
        workers = f"{c[2]:.2f}" if side in dask.values() else "-"
        print(
            f"| {side.name} | {r:,.0f} | {r / single.rate():.2f} | {r / bare.rate():.2f} "
            f"| {c[0]:.2f} | {c[1]:.2f} | {workers} | {c[3]:.2f} | {c[0] - c[1] - c[2] - c[3]:.2f} |"
        )
    print()
    print("objects/s: median of the runs; CPU: CPU seconds per wall second (2.00 = both cores), median.")
    for side in [single, bare, *dask.values()]:
        print(f"- {side.name}: " + ", ".join(f"{r:,.0f}" for r in side.rates) + " objects/s")


if __name__ == "__main__":
    main()
