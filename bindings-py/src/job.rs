//! Bucket jobs: core's sans-IO `BucketJob` (SPEC.md §15). Python's `isec.s3.Client.scan /
//! rotate / reencrypt / migrate` drive it with boto3 and a thread pool; this class only
//! converts the job's actions and the answers.

use isec_core::job::{Action, BucketJob, Entry, Head, JobKind, JobOptions, Limits, Outcome, Read};
use isec_core::reencrypt::UploadCheckpoint;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{Int, Pairs, getters, record};
use crate::error::{OrRaise, to_py};
use crate::keyring::PyKeyring;

record! {
    /// What the caller does next (`BucketJob.poll`): `kind` is `list`, `head`, `read`,
    /// `run`, `abort`, `wait`, `idle`, `paused`, `done` or `stopped`; the other fields are those of
    /// its kind and None otherwise.
    "JobAction" PyJobAction {
        kind: &'static str,
        /// `head`, `read`, `run`: the ticket to answer with.
        ticket: Option<u64>,
        /// `head`: the key to HEAD; `read`, `run`: the object's key.
        key: Option<String>,
        /// `run`: `rewrap`, `reencrypt` or `migrate`.
        task: Option<&'static str>,
        /// `read`, `run`: the ETag the requests pin.
        etag: Option<String>,
        /// `read`: `(start, end)` byte ranges (end exclusive), one ranged GET each.
        ranges: Option<Vec<(u64, u64)>>,
        /// `run`: stored bytes.
        size: Option<u64>,
        /// `run`, `abort`: a saved partial upload's checkpoint.
        checkpoint: Option<Vec<u8>>,
        /// `abort`: the multipart upload to abort (None if the checkpoint names none).
        upload_id: Option<String>,
        /// `run`: 1 for the first attempt.
        attempt: Option<u32>,
        /// `list`: the prefix.
        prefix: Option<String>,
        /// `list`: `StartAfter`.
        start_after: Option<String>,
        /// `list`: `MaxKeys`.
        max_keys: Option<u32>,
        /// `wait`: the clock reading to wait for.
        until_ms: Option<u64>,
        /// `stopped`: the error code.
        code: Option<String>,
    }
    repr(kind, ticket, key, task)
}

impl From<Action> for PyJobAction {
    fn from(a: Action) -> Self {
        let mut r = Self {
            kind: a.name(),
            ticket: None,
            key: None,
            task: None,
            etag: None,
            ranges: None,
            size: None,
            checkpoint: None,
            upload_id: None,
            attempt: None,
            prefix: None,
            start_after: None,
            max_keys: None,
            until_ms: None,
            code: None,
        };
        match a {
            Action::List(l) => {
                (r.prefix, r.start_after, r.max_keys) = (Some(l.prefix), l.start_after, Some(l.max_keys))
            }
            Action::Head { ticket, key } => (r.ticket, r.key) = (Some(ticket), Some(key)),
            Action::Read { ticket, key, etag, ranges } => {
                (r.ticket, r.key, r.etag, r.ranges) = (Some(ticket), Some(key), Some(etag), Some(ranges))
            }
            Action::Run(t) => {
                (r.ticket, r.key, r.task, r.etag) = (Some(t.ticket), Some(t.key), Some(t.kind.name()), Some(t.etag));
                (r.size, r.checkpoint, r.attempt) = (Some(t.size), t.checkpoint, Some(t.attempt));
            }
            Action::Abort { key, checkpoint } => {
                r.upload_id = UploadCheckpoint::parse(&checkpoint).ok().map(|u| u.upload_id);
                (r.key, r.checkpoint) = (Some(key), Some(checkpoint));
            }
            Action::Wait { until_ms } => r.until_ms = Some(until_ms),
            Action::Stopped { code } => r.code = Some(code),
            _ => {}
        }
        r
    }
}

/// A scan, rotation, re-encryption or migration of every object under a prefix, as core's
/// state machine: `poll` says what to send, the answers go back with their ticket.
#[pyclass(module = "isec", name = "BucketJob")]
pub(crate) struct PyBucketJob {
    inner: BucketJob,
}

fn job_kind(name: &str) -> PyResult<JobKind> {
    JobKind::from_name(name).ok_or_else(|| to_py(isec_core::Error::InvalidParameter))
}

fn limits(concurrency: u32, objects_per_second: u64, bytes_per_second: u64) -> Limits {
    Limits::new(concurrency).with_objects_per_second(objects_per_second).with_bytes_per_second(bytes_per_second)
}

getters! { PyBucketJob {
    /// `scan`, `rotate`, `reencrypt` or `migrate`.
    kind: &'static str = |s| s.inner.kind().name();
    /// The bucket.
    bucket: String = |s| s.inner.bucket().into();
    /// The key prefix.
    prefix: String = |s| s.inner.prefix().into();
    /// Whether the job is paused.
    paused: bool = |s| s.inner.is_paused();
    /// HEADs and tasks out.
    in_flight: u32 = |s| s.inner.in_flight();
    /// `(concurrency, objects_per_second, bytes_per_second)`.
    limits: (u32, u64, u64) = |s| {
        let l = s.inner.limits();
        (l.concurrency, l.objects_per_second, l.bytes_per_second)
    };
}
    #[new]
    #[pyo3(signature = (kind, bucket, prefix, keyring, *, concurrency = Int(8), objects_per_second = Int(0),
        bytes_per_second = Int(0), dry_run = false, max_attempts = Int(5), backoff_ms = Int(200),
        backoff_max_ms = Int(20_000), window = Int(2000)))]
    #[allow(clippy::too_many_arguments, reason = "keyword-only options of one constructor")]
    fn new(
        kind: &str,
        bucket: &str,
        prefix: &str,
        keyring: PyRef<'_, PyKeyring>,
        concurrency: Int<u32>,
        objects_per_second: Int<u64>,
        bytes_per_second: Int<u64>,
        dry_run: bool,
        max_attempts: Int<u32>,
        backoff_ms: Int<u64>,
        backoff_max_ms: Int<u64>,
        window: Int<u32>,
    ) -> PyResult<Self> {
        if concurrency.0 == 0 || window.0 == 0 {
            return Err(to_py(isec_core::Error::InvalidParameter));
        }
        let options = JobOptions::new(limits(concurrency.0, objects_per_second.0, bytes_per_second.0))
            .with_dry_run(dry_run)
            .with_retries(max_attempts.0, backoff_ms.0, backoff_max_ms.0)
            .with_window(window.0);
        Ok(Self { inner: BucketJob::new(job_kind(kind)?, bucket, prefix, &keyring.inner, options) })
    }

    /// Resumes a job from `state()`.
    #[staticmethod]
    fn from_state(state: &[u8], keyring: PyRef<'_, PyKeyring>) -> PyResult<Self> {
        BucketJob::from_state(state, &keyring.inner).map(|inner| Self { inner }).or_raise()
    }

    /// What to do next at the caller's clock (monotonic milliseconds).
    fn poll(&mut self, now_ms: Int<u64>) -> PyJobAction {
        self.inner.poll(now_ms.0).into()
    }

    /// A listing page: `(key, size)` pairs in key order; `truncated`: more follow.
    fn listed(&mut self, entries: Vec<(String, Int<u64>)>, truncated: bool) -> PyResult<()> {
        let entries = entries.into_iter().map(|(k, s)| Entry::new(&k, s.0)).collect();
        self.inner.listed(entries, truncated).or_raise()
    }

    /// The listing request failed with `code`.
    fn list_failed(&mut self, now_ms: Int<u64>, code: &str, retryable: bool) -> PyResult<()> {
        self.inner.list_failed(now_ms.0, code, retryable).or_raise()
    }

    /// A HEAD found the object: its user metadata, ETag and size.
    fn head_found(&mut self, ticket: Int<u64>, now_ms: Int<u64>, metadata: Pairs, etag: String, size: Int<u64>) -> PyResult<()> {
        self.inner.headed(ticket.0, now_ms.0, Head::Found { metadata: metadata.0, etag, size: size.0 }).or_raise()
    }

    /// A HEAD answered 404.
    fn head_missing(&mut self, ticket: Int<u64>, now_ms: Int<u64>) -> PyResult<()> {
        self.inner.headed(ticket.0, now_ms.0, Head::Missing).or_raise()
    }

    /// A HEAD failed with `code`.
    fn head_failed(&mut self, ticket: Int<u64>, now_ms: Int<u64>, code: String, retryable: bool) -> PyResult<()> {
        self.inner.headed(ticket.0, now_ms.0, Head::Failed { code, retryable }).or_raise()
    }

    /// A `read` brought back the bodies of its ranges, in order.
    fn read_found(&mut self, ticket: Int<u64>, now_ms: Int<u64>, bodies: Vec<Vec<u8>>) -> PyResult<()> {
        self.inner.read(ticket.0, now_ms.0, Read::Found(bodies)).or_raise()
    }

    /// A `read` found the object changed or gone (412, 404).
    fn read_changed(&mut self, ticket: Int<u64>, now_ms: Int<u64>) -> PyResult<()> {
        self.inner.read(ticket.0, now_ms.0, Read::Changed).or_raise()
    }

    /// A `read` failed with `code`.
    fn read_failed(&mut self, ticket: Int<u64>, now_ms: Int<u64>, code: String, retryable: bool) -> PyResult<()> {
        self.inner.read(ticket.0, now_ms.0, Read::Failed { code, retryable }).or_raise()
    }

    /// The task is done; `moved`: object bytes read and written again.
    #[pyo3(signature = (ticket, now_ms, moved = Int(0)))]
    fn task_done(&mut self, ticket: Int<u64>, now_ms: Int<u64>, moved: Int<u64>) -> PyResult<()> {
        self.inner.finished(ticket.0, now_ms.0, Outcome::Done { moved: moved.0 }).or_raise()
    }

    /// The object changed or vanished underneath the task (412, 404).
    fn task_changed(&mut self, ticket: Int<u64>, now_ms: Int<u64>) -> PyResult<()> {
        self.inner.finished(ticket.0, now_ms.0, Outcome::Changed).or_raise()
    }

    /// The task failed with `code`.
    fn task_failed(&mut self, ticket: Int<u64>, now_ms: Int<u64>, code: String, retryable: bool) -> PyResult<()> {
        self.inner.finished(ticket.0, now_ms.0, Outcome::Failed { code, retryable }).or_raise()
    }

    /// Saves a partial upload's checkpoint for a running task.
    fn save_checkpoint(&mut self, ticket: Int<u64>, checkpoint: &[u8]) -> PyResult<()> {
        self.inner.save_checkpoint(ticket.0, checkpoint).or_raise()
    }

    /// Starts nothing new; what is out finishes.
    fn pause(&mut self) {
        self.inner.pause();
    }

    /// Undoes `pause`.
    fn resume(&mut self) {
        self.inner.resume();
    }

    /// Other limits from now on.
    #[pyo3(signature = (concurrency, objects_per_second = Int(0), bytes_per_second = Int(0)))]
    fn set_limits(&mut self, concurrency: Int<u32>, objects_per_second: Int<u64>, bytes_per_second: Int<u64>) -> PyResult<()> {
        self.inner.set_limits(limits(concurrency.0, objects_per_second.0, bytes_per_second.0)).or_raise()
    }

    /// The counts as JSON (`isec.s3.Job.status()` parses it).
    fn progress_json(&self) -> String {
        self.inner.progress().to_json()
    }

    /// The state to save and resume from.
    fn state<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.state())
    }
}
