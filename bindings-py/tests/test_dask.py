"""Bucket jobs on Dask (isec.dask) against a three-node Garage cluster with replication
factor 3 (`scripts/garage.sh cluster start`): a LocalCluster of three worker processes
migrates and rotates a bucket of 3,000 objects of mixed classes while a worker is killed and
a Garage node is stopped and restarted; a re-encryption survives a worker killed mid-upload;
a driver killed with SIGKILL is restarted from its state; and no task carries key bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import isec
import isec.s3

from .conftest import REPO
from .test_s3_legacy import proxy_single_put

distributed = pytest.importorskip("distributed") if os.environ.get("CI") != "true" else __import__("distributed")
import isec.dask  # noqa: E402 - after the check above

MIB = 1 << 20
LEGACY_SECRET = "proxy-secret-for-dask"
LEGACY_KID = "AKIAPROXYBIGSEAL0001"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _cluster_env() -> dict[str, str]:
    path = Path(os.environ.get("ISEC_GARAGE_STATE", REPO / "target" / "garage")) / "cluster" / "env"
    if not path.is_file():
        msg = f"no three-node Garage cluster ({path}): scripts/garage.sh cluster start"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg}: CI must run the Dask tests against it")
        pytest.skip(f"NOT CHECKED: Dask jobs: {msg}")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """The Garage cluster's variables; its credentials in this process's environment (and so
    in the Dask workers', which inherit it): the standard chain, never a task argument."""
    env = _cluster_env()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        AWS_ACCESS_KEY_ID=env["ISEC_S3_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=env["ISEC_S3_SECRET_ACCESS_KEY"],
        AWS_DEFAULT_REGION=env["ISEC_S3_REGION"],
    )
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def dask_client(cluster: dict[str, str]) -> Iterator[Any]:
    """Three worker processes (each restarted by its nanny if killed), two threads each:
    sized for a 2-core machine that also runs the three Garage nodes."""
    lc = distributed.LocalCluster(n_workers=3, threads_per_worker=2, processes=True, dashboard_address=None)
    client = distributed.Client(lc)
    try:
        yield client
    finally:
        client.close()
        lc.close()


class Bucket:
    """A prefix of the cluster's bucket, its keys and what each object must read back as."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env = env
        self.name = env["ISEC_S3_BUCKET"]
        self.prefix = f"dask-{uuid.uuid4().hex[:10]}/"
        self.s3cfg = isec.dask.S3Config(
            endpoints=tuple(env["ISEC_S3_ENDPOINTS"].split(",")),
            region=env["ISEC_S3_REGION"],
            client_options=(("part_size", 5 * MIB), ("max_workers", 2), ("allow_plaintext", True)),
        )
        self.raw = self.s3cfg.boto3_client()
        self.old, self.new = isec.generate_kek(), isec.generate_kek()
        self.ring_path = tmp / "ring.json"
        self.ring_path.write_text(
            json.dumps(
                {
                    "keys": [
                        {"kid": "old", "kek": self.old.hex(), "state": "decrypt_only"},
                        {"kid": "new", "kek": self.new.hex(), "state": "active"},
                        {"kid": LEGACY_KID, "legacy_secret": LEGACY_SECRET},
                    ]
                }
            )
        )
        self.keys = isec.dask.KeySource(path=str(self.ring_path))
        self.expected: dict[str, str] = {}

    def writer(self, kid: str) -> isec.s3.Client:
        r = isec.Keyring()
        r.add_kek(kid, self.old if kid == "old" else self.new)
        return isec.s3.Client(self.raw, r, part_size=5 * MIB, max_workers=2)

    def reader(self) -> isec.s3.Client:
        return isec.s3.Client(self.raw, isec.Keyring.from_file(self.ring_path), allow_plaintext=True, max_workers=2)

    def put_many(self, kind: str, n: int, size: Callable[[int], int]) -> None:
        old, new = self.writer("old"), self.writer("new")

        def one(i: int) -> None:
            key = f"{self.prefix}{kind}/{i:05d}"
            body = (f"{kind}-{i}|".encode() * (size(i) // 8 + 2))[: size(i)]
            if kind in ("old", "big"):
                old.put_object(self.name, key, body)
            elif kind == "new":
                new.put_object(self.name, key, body)
            elif kind == "plain":
                self.raw.put_object(Bucket=self.name, Key=key, Body=body)
            else:
                sealed, meta = proxy_single_put(LEGACY_SECRET, body)
                self.raw.put_object(Bucket=self.name, Key=key, Body=sealed, Metadata=meta)
            self.expected[key] = sha(body)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(n)))

    def check(self, kids: set[str]) -> dict[str, int]:
        """Every object reads back its plaintext; returns the count by kid (or format)."""
        c = self.reader()

        def one(key: str) -> str:
            info = c.head_object(self.name, key)
            assert sha(c.get_object(self.name, key)) == self.expected[key], key
            return info.kid if info.format == "isec" and info.kid else info.format

        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(one, sorted(self.expected)))
        out: dict[str, int] = {}
        for f in found:
            out[f] = out.get(f, 0) + 1
        assert set(out) <= kids, out
        return out

    def open_uploads(self) -> list[str]:
        r = self.raw.list_multipart_uploads(Bucket=self.name, Prefix=self.prefix)
        return [u["Key"] for u in r.get("Uploads", [])]

    def clean(self) -> None:
        """Deletes the large objects (the small ones go with the cluster: thousands of
        deletes through a three-way replicated Garage on two cores take longer than the test)."""
        token: dict[str, Any] = {}
        while True:
            r = self.raw.list_objects_v2(Bucket=self.name, Prefix=self.prefix, **token)
            keys = [{"Key": o["Key"]} for o in r.get("Contents", []) if int(o.get("Size", 0)) > MIB]
            if keys:
                self.raw.delete_objects(Bucket=self.name, Delete={"Objects": keys})
            if not r.get("IsTruncated"):
                return
            token = {"ContinuationToken": r["NextContinuationToken"]}


@pytest.fixture
def bucket(cluster: dict[str, str], tmp_path: Path) -> Iterator[Bucket]:
    b = Bucket(cluster, tmp_path)
    yield b
    b.clean()


def worker_pids(dc: Any) -> dict[str, int]:
    return {addr: int(pid) for addr, pid in dc.run(os.getpid).items()}


def when(cond: Callable[[], bool], then: Callable[[], None], limit: float = 120) -> threading.Thread:
    """Runs ``then`` once ``cond`` holds (polled), in a thread."""

    def go() -> None:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if cond():
                then()
                return
            time.sleep(0.05)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def garage(*args: str) -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "garage.sh"), "cluster", *args], check=True, stdin=subprocess.DEVNULL)


def test_migrate_and_rotate_3000_objects_through_a_lost_worker_and_a_stopped_node(bucket: Bucket, dask_client: Any) -> None:
    b, dc = bucket, dask_client
    b.put_many("old", 2400, lambda i: 100 + i % 300)
    b.put_many("new", 300, lambda i: 200 + i)
    b.put_many("plain", 150, lambda i: 50 + i)
    b.put_many("legacy", 150, lambda i: 64 + 7 * i)
    b.put_many("big", 2, lambda i: 11 * MIB + i)  # under the old key, multipart
    old_keys = 2400 + 2
    total = len(b.expected)
    assert total == 3002

    # Every task the driver hands to Dask is captured as pickled: no key bytes in any of them.
    sent: list[bytes] = []
    submit = dc.submit

    def recording_submit(fn: Any, *args: Any, **kw: Any) -> Any:
        sent.append(distributed.protocol.pickle.dumps((fn, args)))
        return submit(fn, *args, **kw)

    dc.submit = recording_submit
    try:
        # Migrate, with one worker killed (SIGKILL) once the job is under way.
        before = worker_pids(dc)
        job = isec.dask.migrate(dc, b.name, b.prefix, s3=b.s3cfg, keys=b.keys, concurrency=24, batch=8)
        victim = sorted(before.values())[0]
        killer = when(lambda: job.status()["done"]["objects"] >= 20, lambda: os.kill(victim, signal.SIGKILL))
        m = job.run()
        killer.join()
        assert m["result"] == "done", m
        assert m["failed"]["objects"] == 0, m["failures"]
        assert m["done_by_task"]["migrate"]["objects"] == 150, (m["done_by_task"], m["skipped_by_reason"], m["by_class"])
        assert m["skipped_by_reason"]["current"]["objects"] == old_keys + 300
        assert m["skipped_by_reason"]["plaintext"]["objects"] == 150
        assert m["listed"]["objects"] == total
        assert victim not in worker_pids(dc).values(), "the worker was killed (and its nanny started another)"

        # Rotate, with Garage node 3 stopped mid-job and started again (quorum 2 of 3 holds).
        # At most 300 objects/s: the job outlasts the node's stop and restart (a few seconds).
        job = isec.dask.rotate(
            dc, b.name, b.prefix, s3=b.s3cfg, keys=b.keys, concurrency=24, batch=8, objects_per_second=300
        )
        stopped = threading.Event()
        t0 = time.monotonic()
        timeline: list[tuple[str, float]] = []

        def bounce() -> None:
            timeline.append(("stopping node 3", time.monotonic() - t0))
            garage("node-stop", "3")
            stopped.set()
            timeline.append(("node 3 stopped", time.monotonic() - t0))
            time.sleep(2)
            garage("node-start", "3")
            timeline.append(("node 3 answers again", time.monotonic() - t0))

        bouncer = when(lambda: job.status()["done"]["objects"] >= 200, bounce)
        r = job.run()
        timeline.append(("rotation ended", time.monotonic() - t0))
        bouncer.join()
        print("rotation with a node stopped:", timeline)
        assert stopped.is_set(), "node 3 was stopped while the job ran"
        assert r["result"] == "done", r
        assert r["failed"]["objects"] == 0, r["failures"]
        assert r["done_by_task"]["rewrap"]["objects"] == old_keys
        assert r["moved_bytes"] == 0
    finally:
        dc.submit = submit

    scan = isec.dask.scan(dc, b.name, b.prefix, s3=b.s3cfg, keys=b.keys).run()
    assert "needs_rewrap" not in scan["by_class"] and "needs_reencrypt" not in scan["by_class"], scan["by_class"]
    assert scan["by_class"]["current"]["objects"] == total - 150
    assert b.check({"new", "plaintext"}) == {"new": total - 150, "plaintext": 150}

    assert sent, "tasks went through Dask"
    secrets = [b.old, b.new, isec.legacy_kek_from_secret(LEGACY_SECRET)]
    forms = [f(k) for k in secrets for f in (bytes, lambda k: k.hex().encode(), base64.b64encode)]
    forms.append(LEGACY_SECRET.encode())
    for blob in sent:
        assert not any(form in blob for form in forms), "a task carries key material"
    assert any(str(b.ring_path).encode() in blob for blob in sent), "tasks name the key source"


def test_a_reencryption_resumes_the_uploads_of_a_worker_killed_mid_upload(bucket: Bucket, dask_client: Any, tmp_path: Path) -> None:
    b, dc = bucket, dask_client
    b.put_many("old", 6, lambda i: 21 * MIB + i)
    envelopes = {k: b.raw.head_object(Bucket=b.name, Key=k)["Metadata"]["isec"] for k in b.expected}
    state = tmp_path / "job.json"
    job = isec.dask.reencrypt(
        dc, b.name, b.prefix, s3=b.s3cfg, keys=b.keys, state_path=state, concurrency=3, batch=1, save_every=0.2
    )

    def held() -> bool:
        try:
            return any(f.get("checkpoint") for f in json.loads(state.read_text())["in_flight"])
        except (OSError, ValueError, KeyError):
            return False

    killed = sorted(worker_pids(dc).values())[:2]
    killer = when(held, lambda: [os.kill(p, signal.SIGKILL) for p in killed])
    r = job.run()
    killer.join()
    assert held() is False
    assert r["result"] == "done", r
    assert r["failed"]["objects"] == 0, r["failures"]
    assert r["done"]["objects"] == 6
    assert not set(killed) & set(worker_pids(dc).values()), "two workers were killed mid-job"
    assert b.open_uploads() == [], "no partial upload left behind"
    for k in b.expected:
        assert b.raw.head_object(Bucket=b.name, Key=k)["Metadata"]["isec"] != envelopes[k], f"{k}: a new DEK"
    assert b.check({"new"}) == {"new": 6}


DRIVER = textwrap.dedent(
    """
    import json, sys
    import distributed, isec, isec.dask
    address, bucket, prefix, state, ring, endpoints, region = sys.argv[1:]
    cfg = isec.dask.S3Config(endpoints=tuple(endpoints.split(",")), region=region)
    with distributed.Client(address) as dc:
        job = isec.dask.rotate(dc, bucket, prefix, s3=cfg, keys=isec.dask.KeySource(path=ring),
                               state_path=state, concurrency=8, objects_per_second=40, save_every=0.2)
        print(json.dumps(job.run()["result"]))
    """
)


def test_a_driver_killed_and_started_again_resumes_the_job_from_its_state(bucket: Bucket, dask_client: Any, tmp_path: Path) -> None:
    b, dc = bucket, dask_client
    b.put_many("old", 400, lambda i: 100 + i)
    state = tmp_path / "rotate.json"
    args = [b.name, b.prefix, str(state), str(b.ring_path), ",".join(b.s3cfg.endpoints), b.s3cfg.region or ""]
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, dc.scheduler.address, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def done_so_far() -> int:
        try:
            return int(json.loads(state.read_text())["progress"]["done"]["objects"])
        except (OSError, ValueError, KeyError):
            return 0

    end = time.monotonic() + 120
    while done_so_far() < 80 and driver.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
    driver.kill()  # SIGKILL: no chance to save anything more
    driver.wait()
    first = done_so_far()
    assert 80 <= first < 400

    r = isec.dask.rotate(dc, b.name, b.prefix, s3=b.s3cfg, keys=b.keys, state_path=state, concurrency=16).run()
    assert r["result"] == "done", r
    assert r["failed"]["objects"] == 0, r["failures"]
    assert r["done"]["objects"] == 400, "every object counted once across both drivers"
    assert r["listed"]["objects"] == 400
    assert b.check({"new"}) == {"new": 400}


def test_the_readme_example_runs_as_written(cluster: dict[str, str], tmp_path: Path) -> None:
    """README.md's "Scale out with Dask" example, as a user runs it against the cluster."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Scale out with Dask", 1)[1]
    script = section.split("```python\n# scale_out.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "scale_out.py").write_text(script)
    env = {**os.environ, **{k: v for k, v in cluster.items() if k.startswith("ISEC_S3_")}}
    r = subprocess.run(
        [sys.executable, "scale_out.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "'objects': 300" in r.stdout and "{'objects': 0, 'bytes': 0}" in r.stdout, r.stdout


def test_the_dask_extra_names_distributed() -> None:
    """`pip install "./bindings-py[dask]"` brings what `import isec.dask` runs with."""
    from importlib.metadata import requires

    reqs = requires("isec") or []
    dask = [r.split(";")[0].strip() for r in reqs if "extra" in r and "dask" in r.split(";")[1]]
    assert any(r.startswith("distributed") for r in dask) and any(r.startswith("boto3") for r in dask), reqs


def test_pause_resume_and_rate_steer_the_whole_cluster(bucket: Bucket, dask_client: Any) -> None:
    """The driver's controls, from another thread, act on every worker at once: a pause
    stops handing out work (nothing is done while paused), a rate limit holds the whole
    cluster to it, and a resumed job ends with every object done."""
    b, dc = bucket, dask_client
    b.put_many("old", 240, lambda i: 100 + i)
    job = isec.dask.rotate(dc, b.name, b.prefix, s3=b.s3cfg, keys=b.keys, concurrency=12, batch=4, objects_per_second=40)
    seen: dict[str, Any] = {}

    def steer() -> None:
        while job.status()["done"]["objects"] < 20:
            time.sleep(0.02)
        job.pause()
        time.sleep(2.0)  # what was out finishes
        seen["paused_at"] = job.status()["done"]["objects"]
        time.sleep(1.5)
        seen["still"] = job.status()["done"]["objects"]
        seen["paused"] = job.status()["paused"]
        job.set_rate(objects_per_second=20)
        t0, d0 = time.monotonic(), job.status()["done"]["objects"]
        job.resume()
        time.sleep(5.0)
        seen["rate"] = (job.status()["done"]["objects"] - d0) / (time.monotonic() - t0)
        job.set_rate(objects_per_second=0)

    t = threading.Thread(target=steer)
    t.start()
    r = job.run()
    t.join()
    assert r["result"] == "done" and r["done"]["objects"] == 240, r
    assert seen["paused"] is True
    assert seen["still"] == seen["paused_at"], "nothing was done while paused"
    # 20 objects/s (was 40) with a one-second burst, plus the objects decided before the
    # pause (at most the concurrency): at most (12 + 20 + 5 x 20) / 5 = 26.4 per second.
    assert 0 < seen["rate"] <= 30, seen
    assert r["limits"]["objects_per_second"] == 0
