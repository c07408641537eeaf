"""Bucket jobs on a Dask cluster: the same scan, rotation, re-encryption and migration as
:meth:`isec.s3.Client.rotate` and friends (SPEC.md §15), with the per-object work spread over
the workers of a ``distributed.Client``.

The driver (the process that calls :meth:`DaskJob.run`) owns core's :class:`isec.BucketJob`:
it lists the bucket, and hands the job's HEADs, probes and tasks to the workers in batches;
each worker sends them with its own boto3 client and keyring and returns the answers, which
the driver folds into the one job. So the limits (objects and bytes per second, requests in
flight) are global and can change while the job runs, pause and resume act on the whole
cluster, and the state saved by the driver is the single-machine job's (a job can move
between one machine and a cluster).

Keys never travel: a task carries the bucket, the object's key, ETag and checkpoint (MAC'd,
not secret), an :class:`S3Config` and a :class:`KeySource` that says where a worker finds its
keyring (a file every worker can read, an environment variable, or a factory that builds
one, e.g. around a KMS). S3 credentials come from each worker's own environment (the
standard boto3 chain).

Faults: a batch whose worker dies is run again by Dask on another worker. Every action in it
is safe to repeat: HEADs and probes read; a rewrap already applied is found ``current``; a
re-encryption takes up the partial upload its last checkpoint names (workers stream their
checkpoints to the driver as they store parts), and a re-run that started a new upload has
the older one aborted. A batch that cannot be run (``KilledWorker``) is answered as a
retryable failure and core retries its objects. The driver itself can be killed and started
again with the same ``state_path``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._isec import IsecError, Keyring
from ._jobs import _HEADS_KEPT, Act, Answer, _code, _now, apply, perform

if TYPE_CHECKING:
    from .s3 import Client

__all__ = ["DaskJob", "KeySource", "S3Config", "rotate", "scan", "reencrypt", "migrate"]


@dataclass(frozen=True)
class S3Config:
    """How a worker (and the driver, for listing) builds its boto3 client. Nothing in it is
    secret: credentials come from the environment of the process that builds the client
    (the standard chain: variables, shared files, profiles, instance roles).

    ``endpoints``: S3 endpoint URLs; each worker uses one of them, chosen by its address, so
    that the workers' requests spread over the nodes of a cluster (empty: AWS's own).
    ``client_options``: keyword arguments of :class:`isec.s3.Client` (``part_size``,
    ``max_workers``, ``allow_plaintext``...). ``connect_timeout``, ``read_timeout`` (seconds)
    and ``attempts`` (boto3's own tries per request) are short: a request to a node that
    stopped answering should fail soon and be retried by the job, with backoff, rather than
    hold a worker thread for botocore's default minute."""

    endpoints: tuple[str, ...] = ()
    region: str | None = None
    profile: str | None = None
    path_style: bool = True
    max_pool_connections: int = 32
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    attempts: int = 2
    client_options: tuple[tuple[str, Any], ...] = ()

    def boto3_client(self, endpoint: str | None = None) -> Any:
        boto3: Any = importlib.import_module("boto3")
        config_cls: Any = importlib.import_module("botocore.config").Config
        session = boto3.session.Session(profile_name=self.profile) if self.profile else boto3.session.Session()
        config = config_cls(
            s3={"addressing_style": "path" if self.path_style else "auto"},
            max_pool_connections=self.max_pool_connections,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"max_attempts": self.attempts, "mode": "standard"},
        )
        url = endpoint if endpoint is not None else (self.endpoints[0] if self.endpoints else None)
        return session.client("s3", endpoint_url=url, region_name=self.region, config=config)

    def endpoint_for(self, name: str) -> str | None:
        """The endpoint of the worker called ``name`` (stable across calls)."""
        if not self.endpoints:
            return None
        return self.endpoints[sum(name.encode()) % len(self.endpoints)]


@dataclass(frozen=True)
class KeySource:
    """Where a process finds its keyring: exactly one of

    - ``path``: a keyring file (the ``isec`` command's) every worker can read;
    - ``env``: the name of an environment variable holding a keyring file's path;
    - ``factory``: ``"module:function"``, a function of no arguments returning an
      :class:`isec.Keyring` (for keys behind a KMS: ``Keyring.add_external`` with a wrapper
      that calls it).

    Only the name travels to the workers, never a key."""

    path: str | None = None
    env: str | None = None
    factory: str | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.path, self.env, self.factory)) != 1:
            raise ValueError("KeySource takes exactly one of path, env, factory")

    def keyring(self) -> Keyring:
        if self.path is not None:
            return Keyring.from_file(self.path)
        if self.env is not None:
            path = os.environ.get(self.env)
            if not path:
                raise ValueError(f"environment variable {self.env} (a keyring file's path) is not set")
            return Keyring.from_file(path)
        assert self.factory is not None
        module, _, name = self.factory.partition(":")
        ring = getattr(importlib.import_module(module), name)()
        if not isinstance(ring, Keyring):
            raise TypeError(f"{self.factory} returned {type(ring).__name__}, not isec.Keyring")
        return ring


@dataclass(frozen=True)
class _Spec:
    """What every batch of one job carries: no key, no credential."""

    s3: S3Config
    keys: KeySource
    bucket: str
    checkpoints: str
    """The name of the ``distributed.Queue`` the workers stream checkpoints into."""
    threads: int = 8


def _distributed() -> Any:
    """``distributed``, imported when used (the ``isec[dask]`` extra), untyped."""
    return importlib.import_module("distributed")


_clients: dict[tuple[S3Config, KeySource], Client] = {}
_clients_lock = threading.Lock()


def _worker_client(spec: _Spec) -> Client:
    """This worker's isec client for the spec's S3 config and key source, built once."""
    from .s3 import Client

    with _clients_lock:
        c = _clients.get((spec.s3, spec.keys))
        if c is None:
            try:
                name = str(_distributed().get_worker().address)
            except (ImportError, ValueError):
                name = str(os.getpid())
            s3 = spec.s3.boto3_client(spec.s3.endpoint_for(name))
            c = Client(s3, spec.keys.keyring(), **dict(spec.s3.client_options))
            _clients[(spec.s3, spec.keys)] = c
        return c


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """This worker's pool for sending a batch's actions, one per size, kept for the life of
    the process: a pool per batch would start and stop threads thousands of times, which
    also races Dask's sampling profiler on older Pythons (CPython gh-106883)."""
    with _clients_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="isec-dask")
        return pool


def _run_batch(spec: _Spec, batch: str, acts: tuple[Act, ...]) -> list[tuple[Answer, dict[str, Any] | None]]:
    """Runs on a worker: sends each action's requests (up to ``spec.threads`` at once) and
    returns the answers in order, each with the HEAD response a task may reuse. It first
    tells the driver it started (Dask runs a batch again when its worker dies, and the
    driver must know), and a task's checkpoints go to the driver as parts are stored."""
    client = _worker_client(spec)
    queue: Any = None
    try:
        queue = _distributed().Queue(spec.checkpoints)
    except (ImportError, ValueError):
        queue = None
    if queue is not None:
        queue.put(("started", batch))

    def one(a: Act) -> tuple[Answer, dict[str, Any] | None]:
        def save(cp: bytes) -> None:
            if queue is not None and a.ticket is not None:
                queue.put((a.ticket, cp))

        return perform(client, spec.bucket, a, save, a.head)

    return list(_pool(max(1, spec.threads)).map(one, acts))


@dataclass
class _Batch:
    id: str
    acts: tuple[Act, ...]
    future: Any


class DaskJob:
    """A bucket job whose objects are handled by the workers of ``dask_client``. Same
    controls as :class:`isec.s3.Job`: :meth:`run`, :meth:`pause`, :meth:`resume`,
    :meth:`set_rate`, :meth:`stop`, :meth:`status` and :meth:`state` (safe from other
    threads); ``state_path`` is saved every ``save_every`` seconds and at the end, and a job
    made with an existing one resumes it.

    ``concurrency`` bounds the HEADs, probes and tasks out across the whole cluster;
    ``batch`` is how many of them one Dask task carries (larger batches mean less scheduler
    traffic, smaller ones finer balance); ``threads`` how many a worker sends at once per
    batch."""

    def __init__(
        self,
        dask_client: Any,
        kind: str,
        bucket: str,
        prefix: str = "",
        *,
        s3: S3Config,
        keys: KeySource,
        state_path: str | os.PathLike[str] | None = None,
        concurrency: int = 64,
        objects_per_second: int = 0,
        bytes_per_second: int = 0,
        batch: int = 16,
        threads: int = 8,
        dry_run: bool = False,
        max_attempts: int = 8,
        backoff_ms: int = 200,
        backoff_max_ms: int = 30_000,
        window: int = 4096,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        progress_bar: bool = False,
        save_every: float = 1.0,
    ) -> None:
        from .s3 import Client

        self._dask = dask_client
        ring = keys.keyring()
        listing = Client(s3.boto3_client(), ring)
        self._kind, self._batch_size = kind, max(1, batch)
        self._spec = _Spec(s3, keys, bucket, f"isec-job-{uuid.uuid4().hex}", threads)
        # The single-machine job's core, controls, state file and reports (a saved state at
        # `state_path` is resumed with its own limits); its threads are unused: this driver's
        # loop sends the listing and hands everything else to the workers.
        self._job = listing.job(
            kind,
            bucket,
            prefix,
            state_path=state_path,
            concurrency=concurrency,
            objects_per_second=objects_per_second,
            bytes_per_second=bytes_per_second,
            dry_run=dry_run,
            on_progress=on_progress,
            progress_bar=progress_bar,
            save_every=save_every,
            max_attempts=max_attempts,
            backoff_ms=backoff_ms,
            backoff_max_ms=backoff_max_ms,
            window=window,
        )
        self._out: list[_Batch] = []
        # HEAD responses by ticket, for the object's task (bounded: most objects need none).
        self._heads: OrderedDict[int, tuple[str | None, dict[str, Any]]] = OrderedDict()
        # How many times each batch out has started on a worker.
        self._starts: dict[str, int] = {}
        self._queue: Any = None
        self.batches_sent = 0
        self.batches_lost = 0

    # --- control: the single-machine job's ---------------------------------------------------

    def pause(self) -> None:
        self._job.pause()

    def resume(self) -> None:
        self._job.resume()

    def set_rate(
        self, bytes_per_second: int | None = None, *, objects_per_second: int | None = None, concurrency: int | None = None
    ) -> None:
        self._job.set_rate(bytes_per_second, objects_per_second=objects_per_second, concurrency=concurrency)

    def stop(self) -> None:
        self._job.stop()

    def status(self) -> dict[str, Any]:
        return self._job.status()

    def state(self) -> bytes:
        return self._job.state()

    # --- the driver loop ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Works until the job is done, stopped, or its listing failed for good; returns
        :meth:`status` with ``result`` (``done``, ``stopped`` or the listing's code)."""
        dist = _distributed()
        job, lock = self._job, self._job._lock
        queue = self._queue = dist.Queue(self._spec.checkpoints, client=self._dask)
        bar = job._bar()
        last_save = last_report = time.monotonic()
        result: str | None = None
        try:
            while result is None:
                pending: list[Act] = []
                with lock:
                    if job._stop:
                        job._core.pause()
                    while True:
                        act = job._core.poll(_now())
                        if act.kind == "list":
                            break
                        if act.kind in ("head", "read", "run", "abort"):
                            pending.append(Act.of(act))
                            continue
                        break
                if act.kind == "list":
                    job._work(act)
                if any(a.kind == "run" for a in pending):
                    # A task that starts is in the saved state before it can write: a driver
                    # killed now resumes it as in flight, and counts it once.
                    job._save()
                    last_save = time.monotonic()
                if pending:
                    self._send(pending)
                if act.kind == "done" and not self._out:
                    result = "done"
                elif act.kind == "paused" and job._stop and not self._out:
                    result = "stopped"
                elif act.kind == "stopped":
                    result = act.code or "stopped"
                if result is None and act.kind != "list" and not pending:
                    timeout = 0.2
                    if act.kind == "wait" and act.until_ms is not None:
                        timeout = min(timeout, max(0.0, (act.until_ms - _now()) / 1000))
                    if self._out:
                        # Until a batch ends or the timeout passes (then `wait` raises).
                        with contextlib.suppress(TimeoutError):
                            dist.wait([b.future for b in self._out], timeout=timeout, return_when="FIRST_COMPLETED")
                    else:
                        time.sleep(timeout)
                self._checkpoints(queue)
                self._collect()
                now = time.monotonic()
                if now - last_save >= job._save_every:
                    job._save()
                    last_save = now
                if now - last_report >= 1.0:
                    job._report(bar)
                    last_report = now
        finally:
            for b in self._out:
                b.future.cancel()
            self._out = []
            if job._stop:
                with lock:
                    job._core.resume()
            self._checkpoints(queue)
            job._save()
            job._report(bar)
            if bar is not None:
                bar.close()
            queue.close()
        status = self.status()
        status["result"] = result
        return status

    def _send(self, acts: list[Act]) -> None:
        """Hands the actions to the cluster, ``batch`` per Dask task; aborts go first and
        alone (they need no answer)."""
        acts = [self._with_head(a) for a in acts]
        for i in range(0, len(acts), self._batch_size):
            chunk = tuple(acts[i : i + self._batch_size])
            batch = uuid.uuid4().hex
            fut = self._dask.submit(_run_batch, self._spec, batch, chunk, pure=False)
            self._out.append(_Batch(batch, chunk, fut))
            self.batches_sent += 1

    def _with_head(self, a: Act) -> Act:
        """A task with the HEAD its object's look returned, if it is of the version pinned."""
        kept = self._heads.pop(a.ticket, None) if a.kind == "run" and a.ticket is not None else None
        # Only the object's own HEAD (not its sidecar's) of the version the task pins.
        if kept is None or kept[0] != a.key or kept[1].get("ETag") != a.etag:
            return a
        return dataclasses.replace(a, head=kept[1])

    def _collect(self) -> None:
        """Folds the answers of the batches that ended into the job.

        A batch that started twice ran again after its first worker died, whose writes may
        have landed with their answers lost: a task it reports ``changed`` may have been
        changed by that first run, so it is answered like a lost answer (a retryable failure:
        core looks again and counts a replaced object as done, SPEC.md §15.4)."""
        if any(b.future.done() for b in self._out):
            # Started markers are sent before a batch's result exists: read them first.
            self._checkpoints(self._queue)
        still: list[_Batch] = []
        for b in self._out:
            if not b.future.done():
                still.append(b)
                continue
            again = self._starts.pop(b.id, 0) > 1
            answers: list[tuple[Answer, dict[str, Any] | None]] | None = None
            failure = "WorkerLost"
            try:
                answers = b.future.result()
            except Exception as e:  # noqa: BLE001 - a lost batch is retried object by object
                failure, answers = _code(e), None
                self.batches_lost += 1
            with self._job._lock:
                now = _now()
                for i, a in enumerate(b.acts):
                    answer: Answer = ("failed", failure, True)
                    if answers is not None:
                        answer, head = answers[i]
                        if head is not None and a.ticket is not None:
                            self._heads[a.ticket] = (a.key, head)
                            while len(self._heads) > _HEADS_KEPT:
                                self._heads.popitem(last=False)
                    if again and a.kind == "run" and answer[0] == "changed":
                        answer = ("failed", "WorkerLost", True)
                    apply(self._job._core, a, answer, now)
        self._out = still

    def _checkpoints(self, queue: Any) -> None:
        """Reads what the workers streamed: batches started, and checkpoints (saved for the
        objects still running)."""
        if queue is None:
            return
        try:
            items = queue.get(batch=True)
        except Exception:  # noqa: BLE001 - a queue that failed is read again next time
            return
        with self._job._lock:
            for first, second in items:
                if first == "started":
                    self._starts[second] = self._starts.get(second, 0) + 1
                    continue
                try:
                    self._job._core.save_checkpoint(first, second)
                except IsecError:
                    pass  # the task already ended: its answer came first


def _job(kind: str) -> Callable[..., DaskJob]:
    def make(dask_client: Any, bucket: str, prefix: str = "", **kw: Any) -> DaskJob:
        return DaskJob(dask_client, kind, bucket, prefix, **kw)

    make.__name__ = kind
    make.__doc__ = f"A {kind} job of ``bucket``/``prefix`` on a Dask cluster: see :class:`DaskJob`."
    return make


scan = _job("scan")
rotate = _job("rotate")
reencrypt = _job("reencrypt")
migrate = _job("migrate")
