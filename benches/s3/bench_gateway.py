"""boto3 straight to the S3 server against boto3 through `isec gateway`, in one run.

Not a test: prints Markdown tables of median MB/s (plaintext bytes per second), the ratio
gateway/direct, and the CPU time of the gateway process per GiB moved. The client code is
the same on both sides; only the endpoint and the credentials differ (path-style):

  multipart put   upload_fileobj(BytesIO), default TransferConfig (8 MiB parts, 10 threads)
  multipart get   download_fileobj(BytesIO), the same TransferConfig (HEAD, then 8 MiB
                  ranged GETs, 10 at once)
  single put      one PutObject of --single-mib (bytes body, not multipart)
  single get      one GetObject, Body.read()

Each round runs every operation on both sides, direct and gateway in turn, and which side
goes first flips every round, so the drift of a shared machine hits both. The script makes
its own keyring in a temporary directory, starts its own gateway on a free port (stopped
with SIGTERM at the end), checks every read against what was written, and deletes its
objects.

Every put sends bytes the server has not stored yet: Garage deduplicates blocks, so a
plain re-upload of the same bytes would skip its writes, while the gateway's ciphertext is
new at every put anyway. Each MiB gets a fresh stamp before every put (outside the timing).

CPU seconds come from /proc/PID/stat (utime + stime) of the gateway, of Garage (the
ISEC_GARAGE_PID of its env file; a server other jobs may use at the same time) and of this
process (os.times), read before and after each timed operation, per GiB of plaintext moved.
"cores busy" is their sum over the wall time. On a machine whose cores are all taken (other
jobs included), the time of an operation follows the CPU seconds it needs in all: compare
the two sides' CPU s/GiB columns.

Environment: ISEC_BIN (the isec binary, default target/release/isec of this repository),
ISEC_S3_ENDPOINT, ISEC_S3_REGION, ISEC_S3_ACCESS_KEY_ID, ISEC_S3_SECRET_ACCESS_KEY (else read
from $ISEC_GARAGE_STATE/env, default target/garage/env). The bucket must exist
(ISEC_GARAGE_STATE=... bash scripts/garage.sh bucket isec-bench).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import boto3
import botocore
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1 << 20
GIB = 1 << 30
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")
GATEWAY_KEY, GATEWAY_SECRET = "bench", "bench-secret"


def garage_env() -> dict[str, str]:
    """The S3 server's settings: the environment's, else the Garage env file's."""
    env = {k: v for k, v in os.environ.items() if k.startswith("ISEC_")}
    if "ISEC_S3_ENDPOINT" not in env:
        state = os.environ.get("ISEC_GARAGE_STATE", os.path.join(REPO, "target", "garage"))
        with open(os.path.join(state, "env")) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep and k.startswith("ISEC_"):
                    env.setdefault(k, v)
    return env


def proc_cpu(pid: int | None) -> float:
    """utime + stime of a process in seconds (all its threads); 0 when it is not there."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may hold spaces: split after its closing parenthesis.
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid: int | None) -> float:
    """The process's peak resident set (VmHWM) in MiB: what bounded memory per request means
    for a run moving objects many times that size; 0 when it is not there."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


class Gateway:
    """`isec gateway` on a free port, with its own keyring, until stop()."""

    def __init__(self, isec: str, env: dict[str, str], tmp: str) -> None:
        ring = os.path.join(tmp, "ring.json")
        subprocess.run([isec, "--keyring", ring, "keygen", "--kid", "k1"], check=True, capture_output=True)
        os.chmod(ring, 0o600)
        child_env = dict(os.environ)
        child_env.update(
            AWS_ACCESS_KEY_ID=env["ISEC_S3_ACCESS_KEY_ID"],
            AWS_SECRET_ACCESS_KEY=env["ISEC_S3_SECRET_ACCESS_KEY"],
            AWS_REGION=env.get("ISEC_S3_REGION", "garage"),
            ISEC_GATEWAY_ACCESS_KEY=GATEWAY_KEY,
            ISEC_GATEWAY_SECRET_KEY=GATEWAY_SECRET,
        )
        self.log_path = os.path.join(tmp, "gateway.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [isec, "--keyring", ring, "gateway", "--listen", "127.0.0.1:0", "--endpoint-url", env["ISEC_S3_ENDPOINT"]],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=child_env,
            text=True,
        )
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line.startswith("isec gateway on "):
            self.proc.kill()
            raise SystemExit(f"the gateway did not start: {line!r}\n{self.stderr()}")
        self.url = line.removeprefix("isec gateway on ")
        self.pid = self.proc.pid

    def stderr(self) -> str:
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def client(endpoint: str, key: str, secret: str, region: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}),
    )


def fresh_body(data: bytes, stamp: int) -> bytes:
    """`data` with `stamp` written at the start of every MiB (new blocks for Garage)."""
    b = bytearray(data)
    n = stamp.to_bytes(8, "little")
    for at in range(0, len(b), MIB):
        b[at : at + 8] = n
    return bytes(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=256, help="multipart object size (256)")
    ap.add_argument("--single-mib", type=int, default=32, help="single PutObject/GetObject size (32)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds, each op on both sides (5)")
    ap.add_argument("--bucket", default="isec-bench")
    args = ap.parse_args()

    env = garage_env()
    isec = os.environ.get("ISEC_BIN", os.path.join(REPO, "target", "release", "isec"))
    region = env.get("ISEC_S3_REGION", "garage")
    garage_pid = int(env["ISEC_GARAGE_PID"]) if env.get("ISEC_GARAGE_PID", "").isdigit() else None
    if garage_pid is not None and proc_cpu(garage_pid) == 0.0:
        garage_pid = None
    direct = client(env["ISEC_S3_ENDPOINT"], env["ISEC_S3_ACCESS_KEY_ID"], env["ISEC_S3_SECRET_ACCESS_KEY"], region)
    try:
        direct.head_bucket(Bucket=args.bucket)
    except botocore.exceptions.ClientError as e:
        raise SystemExit(f"bucket {args.bucket}: {e} (create it: bash scripts/garage.sh bucket {args.bucket})")

    cfg = TransferConfig()  # the defaults: 8 MiB threshold and parts, 10 threads
    big, one = args.size_mib * MIB, args.single_mib * MIB
    data_big, data_one = os.urandom(big), os.urandom(one)
    stamps = iter(range(int.from_bytes(os.urandom(4), "little") << 20, 1 << 62))
    run = uuid.uuid4().hex[:8]
    load_start = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="isec-gwbench-") as tmp:
        gw = Gateway(isec, env, tmp)
        sides = {"direct": direct, "gateway": client(gw.url, GATEWAY_KEY, GATEWAY_SECRET, region)}
        keys = {s: {"mp": f"bench-gw/{run}/{s}/multipart", "one": f"bench-gw/{run}/{s}/single"} for s in sides}
        stored: dict[tuple[str, str], bytes] = {}
        got: dict[str, object] = {}
        bodies = {(s, k): fresh_body(d, next(stamps)) for s in sides for k, d in (("mp", data_big), ("one", data_one))}

        def put_mp(side: str) -> None:
            body = bodies[(side, "mp")]
            sides[side].upload_fileobj(io.BytesIO(body), args.bucket, keys[side]["mp"], Config=cfg)
            stored[(side, "mp")] = body

        def get_mp(side: str) -> None:
            b = io.BytesIO()
            sides[side].download_fileobj(args.bucket, keys[side]["mp"], b, Config=cfg)
            got["mp"] = b

        def put_one(side: str) -> None:
            body = bodies[(side, "one")]
            sides[side].put_object(Bucket=args.bucket, Key=keys[side]["one"], Body=body)
            stored[(side, "one")] = body

        def get_one(side: str) -> None:
            got["one"] = sides[side].get_object(Bucket=args.bucket, Key=keys[side]["one"])["Body"].read()

        def check(side: str, kind: str) -> None:
            """A read gave back what was put (outside the timing)."""
            b = got.pop(kind)
            view = b.getbuffer() if isinstance(b, io.BytesIO) else b
            assert view == stored[(side, kind)], f"{side}: {kind} get differs from what was put"

        ops = [
            (f"multipart put {args.size_mib} MiB", big, put_mp, "mp", False),
            (f"multipart get {args.size_mib} MiB", big, get_mp, "mp", True),
            (f"single put {args.single_mib} MiB", one, put_one, "one", False),
            (f"single get {args.single_mib} MiB", one, get_one, "one", True),
        ]
        # samples[(op, side)] = list of (seconds, client cpu, gateway cpu, garage cpu)
        samples: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {
            (name, s): [] for name, *_ in ops for s in sides
        }
        try:
            # Warm-up: creates the objects, opens the connections.
            for _, _, fn, kind, read in ops:
                for s in sides:
                    fn(s)
                    if read:
                        check(s, kind)
            for k in ("mp", "one"):
                for s in sides:
                    bodies[(s, k)] = fresh_body(data_big if k == "mp" else data_one, next(stamps))
            for r in range(args.rounds):
                for name, _, fn, kind, read in ops:
                    order = ["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]
                    for s in order:
                        c0, g0, s0 = self_cpu(), proc_cpu(gw.pid), proc_cpu(garage_pid)
                        t0 = time.perf_counter()
                        fn(s)
                        dt = time.perf_counter() - t0
                        c1, g1, s1 = self_cpu(), proc_cpu(gw.pid), proc_cpu(garage_pid)
                        samples[(name, s)].append((dt, c1 - c0, g1 - g0, s1 - s0))
                        if read:
                            check(s, kind)
                        else:
                            bodies[(s, kind)] = fresh_body(data_big if kind == "mp" else data_one, next(stamps))
        finally:
            for s, cl in sides.items():
                for k in keys[s].values():
                    try:
                        cl.delete_object(Bucket=args.bucket, Key=k)
                    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                        print(f"cleanup {k}: {e}", file=sys.stderr)
            gw_cpu_total = proc_cpu(gw.pid)
            gw_peak_rss = peak_rss_mib(gw.pid)
            rc = gw.stop()
            log = gw.stderr().strip()
        load_end = os.getloadavg()

    print(
        f"boto3 {boto3.__version__} (botocore {botocore.__version__}), python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores; {args.rounds} rounds, direct and gateway interleaved, median of each"
    )
    print()
    print(
        "| operation | direct MB/s | gateway MB/s | gateway/direct | >= 0.8 | gateway CPU s/GiB "
        "| CPU s/GiB direct: client+Garage | CPU s/GiB gateway: client+gateway+Garage "
        "| cores busy direct | cores busy gateway |"
    )
    print("|---|---:|---:|---:|---|---:|---|---|---:|---:|")
    for name, nbytes, *_ in ops:
        d = samples[(name, "direct")]
        g = samples[(name, "gateway")]
        gib = nbytes / GIB
        dm = statistics.median(nbytes / x[0] / 1e6 for x in d)
        gm = statistics.median(nbytes / x[0] / 1e6 for x in g)
        cpu_gib = statistics.median(x[2] / gib for x in g)

        def per_gib(xs, with_gw: bool) -> str:
            """Median CPU seconds per GiB of each process, and of their sum."""
            c = statistics.median(x[1] / gib for x in xs)
            gg = statistics.median(x[2] / gib for x in xs)
            sg = statistics.median(x[3] / gib for x in xs)
            total = statistics.median((x[1] + (x[2] if with_gw else 0) + x[3]) / gib for x in xs)
            parts = f"{c:.1f}" + (f"+{gg:.1f}" if with_gw else "") + (f"+{sg:.1f}" if garage_pid else "")
            return f"{total:.1f} ({parts})"

        def busy(xs, with_gw: bool) -> float:
            return statistics.median((x[1] + (x[2] if with_gw else 0) + x[3]) / x[0] for x in xs)

        ok = "yes" if gm / dm >= 0.8 else "no"
        print(
            f"| {name} | {dm:.0f} | {gm:.0f} | {gm / dm:.2f} | {ok} | {cpu_gib:.2f} | {per_gib(d, False)} "
            f"| {per_gib(g, True)} | {busy(d, False):.2f} | {busy(g, True):.2f} |"
        )
    print()
    print(
        f"load average (1, 5, 15 min): start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
        f"end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}"
    )
    print(f"gateway: {gw_cpu_total:.1f} CPU s in all (warm-up included); peak resident memory "
          f"{gw_peak_rss:.0f} MiB; exit code {rc} after SIGTERM")
    noise = [ln for ln in log.splitlines() if ln and "stopping" not in ln and "stopped" not in ln]
    if noise:
        print("gateway stderr:\n  " + "\n  ".join(noise[-10:]))
    if rc != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
