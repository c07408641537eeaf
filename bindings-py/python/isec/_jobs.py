"""Bucket jobs over boto3: scan, rotate, re-encrypt or migrate every object under a prefix.

Core's :class:`isec.BucketJob` decides everything (SPEC.md §15): which page to list, which
object to HEAD, which byte ranges of an object without isec metadata to read (to tell
plaintext from isec frames that lost their envelope, §14.1), what each object needs, the limits, the retries and the saved state. This
module sends what it asks for, with a thread pool (the crypto releases the GIL), and hands
the answers back. Each object's task is one of :class:`isec.s3.Client`'s own operations
(``rewrap``, a re-encrypting ``copy_object`` onto itself, ``migrate``), pinned to the ETag
the job's HEAD saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._isec import BucketJob, IsecError, JobAction

if TYPE_CHECKING:
    from .s3 import Client

__all__ = ["Job", "ObjectChangedError"]


class ObjectChangedError(Exception):
    """The object is no longer the version an operation was asked to act on (its ETag
    differs from ``if_match``): nothing was written."""


_HEADS_KEPT = 4096
"""HEAD responses kept for tasks to come: more than a window's worth of decided objects."""


def _now() -> int:
    return int(time.monotonic() * 1000)


def _code(e: BaseException) -> str:
    """An S3 error's code (``SlowDown``, ``AccessDenied``...), or the exception's name."""
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(e).__name__


def _status(e: BaseException) -> int | None:
    response = getattr(e, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    return status if isinstance(status, int) else None


def _retryable(e: BaseException) -> bool:
    """Whether the same request may succeed later: a 5xx, a throttle, a timeout or a lost
    connection, not a 4xx that a retry would only repeat, nor a format or key error."""
    if isinstance(e, IsecError):
        return False
    status = _status(e)
    return status is None or status >= 500 or status in (408, 429)


@dataclass
class _Resume:
    """A bucket job's hold on an object's partial upload (SPEC.md §13.3): the checkpoint of an
    earlier attempt, if any, and where each new one goes."""

    checkpoint: bytes | None
    save: Callable[[bytes], None]


class Job:
    """A running (or runnable) bucket job. :meth:`run` works until every object under the
    prefix is done, skipped or failed, or until :meth:`stop`; :meth:`pause`,
    :meth:`resume`, :meth:`set_rate`, :meth:`status` and :meth:`state` are safe from other
    threads while it runs.

    ``state_path``: where the state is saved (atomically, every ``save_every`` seconds and
    when :meth:`run` returns); a job made with an existing ``state_path`` resumes from it.
    ``on_progress(status)`` is called about once a second; ``progress_bar`` shows a tqdm bar
    when tqdm is installed.
    """

    def __init__(
        self,
        client: Client,
        core: BucketJob,
        *,
        state_path: str | os.PathLike[str] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        progress_bar: bool = False,
        save_every: float = 1.0,
        max_threads: int = 64,
    ) -> None:
        self._client = client
        self._core = core
        # Read once: the native job is only touched under the lock.
        self._bucket = core.bucket
        self._state_path = os.fspath(state_path) if state_path is not None else None
        self._on_progress = on_progress
        self._progress_bar = progress_bar
        self._save_every = save_every
        self._max_threads = max_threads
        self._lock = threading.Condition()
        self._ended = threading.Event()
        self._stop = False
        self._quit = False
        self._running = False
        self._result: str | None = None
        self._error: BaseException | None = None
        # The job's HEAD responses by ticket, for the task that follows (saves its HEAD);
        # bounded, since most objects need no task.
        self._heads: OrderedDict[int, tuple[str, dict[str, Any]]] = OrderedDict()
        # Tasks handed out so far, each one's number by ticket, and how many the state file
        # on disk covers (see _save).
        self._handed = 0
        self._task_no: dict[int, int] = {}
        self._saved_upto = 0
        self._save_lock = threading.Lock()

    # --- control, from any thread ------------------------------------------------------------

    def pause(self) -> None:
        """Starts nothing new; what is in flight finishes. The pause is saved in the state."""
        with self._lock:
            self._core.pause()
            self._lock.notify_all()

    def resume(self) -> None:
        """Undoes :meth:`pause`."""
        with self._lock:
            self._core.resume()
            self._lock.notify_all()

    def set_rate(
        self,
        bytes_per_second: int | None = None,
        *,
        objects_per_second: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        """Changes the limits from now on (None keeps a limit as it is; 0 is unlimited)."""
        with self._lock:
            c, o, b = self._core.limits
            self._core.set_limits(
                c if concurrency is None else concurrency,
                o if objects_per_second is None else objects_per_second,
                b if bytes_per_second is None else bytes_per_second,
            )
            self._lock.notify_all()

    def stop(self) -> None:
        """Asks :meth:`run` to return once what is in flight has finished, with the state
        saved; running the job again (or one made from its state) goes on from there."""
        with self._lock:
            self._stop = True
            self._lock.notify_all()

    def status(self) -> dict[str, Any]:
        """The counts (``listed``, ``done``, ``skipped``, ``failed``, ``planned``, ``left``,
        each ``{"objects", "bytes"}``; by class, key id, task, reason and error code; the
        last failures), and ``kind``, ``paused``, ``in_flight`` and ``limits``."""
        with self._lock:
            s: dict[str, Any] = json.loads(self._core.progress_json())
            c, o, b = self._core.limits
            s.update(
                kind=self._core.kind,
                bucket=self._core.bucket,
                prefix=self._core.prefix,
                paused=self._core.paused,
                in_flight=self._core.in_flight,
                limits={"concurrency": c, "objects_per_second": o, "bytes_per_second": b},
            )
        ended = [s[k] for k in ("done", "skipped", "failed", "planned")]
        s["left"] = {
            "objects": s["listed"]["objects"] - sum(t["objects"] for t in ended),
            "bytes": s["listed"]["bytes"] - sum(t["bytes"] for t in ended),
        }
        return s

    def state(self) -> bytes:
        """The job's state, for :meth:`isec.s3.Client.resume_job` (or ``state_path``)."""
        with self._lock:
            return bytes(self._core.state())

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Works until the job is done (or stopped, or its listing failed for good) and
        returns :meth:`status`, with ``"result"``: ``done``, ``stopped`` or the listing's
        error code.

        Worker threads (the job's concurrency, plus one for the listing) each take the next
        request from the job, send it and answer it, then take the next: no hand-off between
        threads per request. This thread saves the state and reports progress."""
        with self._lock:
            if self._running:
                raise RuntimeError("the job is already running")
            self._running, self._stop, self._quit = True, False, False
            self._result, self._error = None, None
        self._ended.clear()
        bar = self._bar()
        workers: list[threading.Thread] = []
        last_save = last_report = time.monotonic()
        try:
            while True:
                with self._lock:
                    want = min(self._max_threads, self._core.limits[0] + 1)
                while len(workers) < want:
                    t = threading.Thread(target=self._worker, name=f"isec-job-{len(workers)}", daemon=True)
                    t.start()
                    workers.append(t)
                ended = self._ended.wait(min(self._save_every, 1.0))
                now = time.monotonic()
                if now - last_save >= self._save_every:
                    self._save()
                    last_save = now
                if now - last_report >= 1.0:
                    self._report(bar)
                    last_report = now
                if ended:
                    break
        finally:
            with self._lock:
                self._quit = True
                self._lock.notify_all()
            for t in workers:
                t.join()
            if self._stop:
                # A stop pauses only this run: the saved state resumes running.
                with self._lock:
                    self._core.resume()
            self._save()
            self._report(bar)
            if bar is not None:
                bar.close()
            with self._lock:
                self._running = False
        if self._error is not None:
            raise self._error
        status = self.status()
        status["result"] = self._result or "stopped"
        return status

    def _worker(self) -> None:
        try:
            while True:
                with self._lock:
                    act = self._next_action()
                    if act is None:
                        return
                    # There may be more to do than this thread: let one more look.
                    self._lock.notify()
                self._work(act)
        except BaseException as e:  # noqa: BLE001 - handed to run(), which raises it
            with self._lock:
                self._error = self._error or e
                self._lock.notify_all()
            self._ended.set()

    def _next_action(self) -> JobAction | None:
        """Under the lock: the job's next request, waiting while there is none; None once
        the job ended (or run() is leaving)."""
        while not self._quit and self._result is None and self._error is None:
            if self._stop:
                self._core.pause()
            act = self._core.poll(_now())
            if act.kind == "run" and act.ticket is not None:
                self._handed += 1
                self._task_no[act.ticket] = self._handed
            if act.kind in ("list", "head", "read", "run", "abort"):
                return act
            if act.kind == "done" or (act.kind == "paused" and self._stop):
                self._result = "stopped" if self._stop else "done"
            elif act.kind == "stopped":
                self._result = act.code or "stopped"
            if self._result is not None:
                self._lock.notify_all()
                self._ended.set()
                return None
            timeout = 0.5
            if act.kind == "wait" and act.until_ms is not None:
                timeout = min(timeout, max(0.0, (act.until_ms - _now()) / 1000))
            self._lock.wait(timeout)
        return None

    def _work(self, act: JobAction) -> None:
        """Sends one action's requests and answers the job."""
        if act.kind == "list":
            self._list(act)
            return
        a = Act.of(act)
        head = None
        if a.kind == "run":
            with self._lock:
                no = self._task_no.pop(a.ticket, 0) if a.ticket is not None else 0
            self._save(upto=no)
            with self._lock:
                kept = self._heads.pop(a.ticket, None) if a.ticket is not None else None
            # Only the object's own HEAD (not its sidecar's) of the version the task pins.
            head = kept[1] if kept is not None and kept[0] == a.key and kept[1].get("ETag") == a.etag else None
        answer, response = perform(self._client, self._bucket, a, self._saver(a), head)
        with self._lock:
            if response is not None and a.ticket is not None:
                # An object with metadata of its own may get a task, which opens it from here.
                self._heads[a.ticket] = (a.key or "", response)
                while len(self._heads) > _HEADS_KEPT:
                    self._heads.popitem(last=False)
            apply(self._core, a, answer, _now())

    def _saver(self, a: Act) -> Callable[[bytes], None]:
        ticket = a.ticket if a.ticket is not None else -1

        def save(checkpoint: bytes) -> None:
            with self._lock:
                self._core.save_checkpoint(ticket, checkpoint)

        return save

    def _list(self, act: JobAction) -> None:
        kw: dict[str, Any] = {"Bucket": self._bucket, "Prefix": act.prefix or "", "MaxKeys": act.max_keys}
        if act.start_after:
            kw["StartAfter"] = act.start_after
        try:
            r = self._client.s3.list_objects_v2(**kw)
        except Exception as e:  # noqa: BLE001 - every failure is the job's to judge
            with self._lock:
                self._core.list_failed(_now(), _code(e), _retryable(e))
            return
        entries = [(o["Key"], int(o.get("Size", 0))) for o in r.get("Contents", [])]
        with self._lock:
            self._core.listed(entries, bool(r.get("IsTruncated")))

    # --- saving and reporting ----------------------------------------------------------------

    def _save(self, upto: int | None = None) -> None:
        """Writes the state file. ``upto``: a worker is about to start the ``upto``-th task
        handed out, which must be in the saved state before it can write (so that a crash
        resumes it as in flight and counts it once); a save made since covers it, so workers
        starting tasks together share one write."""
        if self._state_path is None:
            return
        with self._save_lock:
            if upto is not None and self._saved_upto >= upto:
                return
            with self._lock:
                data = bytes(self._core.state())
                covered = self._handed
            self._write(data)
            self._saved_upto = covered

    def _write(self, data: bytes) -> None:
        assert self._state_path is not None
        folder = os.path.dirname(os.path.abspath(self._state_path))
        fd, tmp = tempfile.mkstemp(prefix=".isec-job-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._state_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _bar(self) -> Any:
        if not self._progress_bar:
            return None
        try:
            from tqdm import tqdm  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError:
            return None
        return tqdm(unit="obj", desc=f"isec {self._core.kind}")

    def _report(self, bar: Any) -> None:
        if self._on_progress is None and bar is None:
            return
        s = self.status()
        if bar is not None:
            ended = sum(s[k]["objects"] for k in ("done", "skipped", "failed", "planned"))
            bar.total = s["listed"]["objects"] if s["listing_complete"] else None
            bar.n = ended
            bar.refresh()
        if self._on_progress is not None:
            self._on_progress(s)



# --- one action: sent by whoever runs it, answered by whoever holds the job ----------------


@dataclass(frozen=True)
class Act:
    """A plain, picklable copy of a :class:`isec.JobAction` of kind ``head``, ``read``,
    ``run`` or ``abort``: what a runner (a thread here, a Dask worker in :mod:`isec.dask`)
    needs to send its requests. It holds no key material (a checkpoint is MAC'd, not secret)."""

    kind: str
    ticket: int | None = None
    key: str | None = None
    task: str | None = None
    etag: str | None = None
    ranges: tuple[tuple[int, int], ...] | None = None
    size: int | None = None
    checkpoint: bytes | None = None
    upload_id: str | None = None
    head: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """``run``: the object's HeadObject response from the job's HEAD, when the runner kept
    it (the task then sends no HEAD of its own; every write is pinned to its ETag anyway)."""

    @staticmethod
    def of(a: JobAction) -> Act:
        return Act(
            a.kind,
            a.ticket,
            a.key,
            a.task,
            a.etag,
            tuple(a.ranges) if a.ranges is not None else None,
            a.size,
            a.checkpoint,
            a.upload_id,
        )


Answer = tuple[Any, ...]
"""An action's outcome, for :func:`apply`: ``("found", ...)``, ``("missing",)``,
``("changed",)``, ``("done", moved)``, ``("failed", code, retryable)``, or ``("none",)``."""


def perform(
    client: Client, bucket: str, act: Act, save: Callable[[bytes], None], head: Any = None
) -> tuple[Answer, dict[str, Any] | None]:
    """Sends ``act``'s requests with ``client``; returns the answer and, for a HEAD of an
    object with metadata of its own, the HeadObject response (a task may reuse it).
    ``save`` keeps a partial upload's checkpoint; ``head`` is the task's object HEAD, if
    the caller kept it."""
    if act.kind == "head":
        return _perform_head(client, bucket, act)
    if act.kind == "read":
        return _perform_read(client, bucket, act), None
    if act.kind == "abort":
        # A partial upload no task will take up (SPEC.md §15.2); no answer.
        if act.key is not None and act.upload_id is not None:
            client._abort(bucket, act.key, act.upload_id)
        return ("none",), None
    return _perform_task(client, bucket, act, save, head), None


def _perform_head(client: Client, bucket: str, act: Act) -> tuple[Answer, dict[str, Any] | None]:
    try:
        r = client.s3.head_object(Bucket=bucket, Key=act.key)
    except Exception as e:  # noqa: BLE001 - every failure is the job's to judge
        if _status(e) == 404:
            return ("missing",), None
        return ("failed", _code(e), _retryable(e)), None
    meta = {k.lower(): v for k, v in (r.get("Metadata") or {}).items()}
    return ("found", meta, r["ETag"], int(r.get("ContentLength", 0))), (r if meta else None)


def _perform_read(client: Client, bucket: str, act: Act) -> Answer:
    """The ranged GETs core asks for to tell an object without isec metadata from isec
    frames that lost it (SPEC.md §14.1), pinned to the HEAD's ETag."""
    bodies: list[bytes] = []
    try:
        for start, end in act.ranges or ():
            r = client.s3.get_object(Bucket=bucket, Key=act.key, Range=f"bytes={start}-{end - 1}", IfMatch=act.etag or "*")
            with contextlib.closing(r["Body"]) as body:
                bodies.append(bytes(body.read(end - start)))
    except Exception as e:  # noqa: BLE001
        if _status(e) in (404, 412):
            return ("changed",)
        return ("failed", _code(e), _retryable(e))
    return ("found", bodies)


def _perform_task(client: Client, bucket: str, act: Act, save: Callable[[bytes], None], head: Any) -> Answer:
    assert act.key is not None
    key, etag = act.key, act.etag
    resume = _Resume(act.checkpoint, save)
    moved = 0
    try:
        if act.task == "rewrap":
            client.rewrap(bucket, key, if_match=etag, head=head)
        elif act.task == "reencrypt":
            client.copy_object(bucket, key, bucket, key, rotate_dek=True, if_match=etag, head=head, _resume=resume)
            moved = act.size or 0
        else:
            r = client.migrate(bucket, key, if_match=etag, head=head, _resume=resume)
            moved = (act.size or 0) if r.migrated else 0
    except ObjectChangedError:
        return ("changed",)
    except Exception as e:  # noqa: BLE001
        if _status(e) in (404, 412):
            return ("changed",)
        return ("failed", e.code if isinstance(e, IsecError) else _code(e), _retryable(e))
    return ("done", moved)


def apply(core: BucketJob, act: Act, answer: Answer, now_ms: int) -> None:
    """Hands ``answer`` to the job (under the caller's lock)."""
    t, what = act.ticket, answer[0]
    if act.kind == "abort" or t is None:
        return
    if act.kind == "head":
        if what == "found":
            core.head_found(t, now_ms, answer[1], answer[2], answer[3])
        elif what == "missing":
            core.head_missing(t, now_ms)
        else:
            core.head_failed(t, now_ms, answer[1], answer[2])
    elif act.kind == "read":
        if what == "found":
            core.read_found(t, now_ms, answer[1])
        elif what == "changed":
            core.read_changed(t, now_ms)
        else:
            core.read_failed(t, now_ms, answer[1], answer[2])
    elif what == "done":
        core.task_done(t, now_ms, answer[1])
    elif what == "changed":
        core.task_changed(t, now_ms)
    else:
        core.task_failed(t, now_ms, answer[1], answer[2])
