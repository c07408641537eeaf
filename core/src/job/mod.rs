//! Bucket jobs (SPEC.md §15): scan, rotate, re-encrypt or migrate every object under a
//! prefix while the bucket stays in service.
//!
//! Like the rest of core, a [`BucketJob`] does no I/O and reads no clock. The caller asks it
//! what to do next ([`BucketJob::poll`] with its clock), sends that (a listing page, a HEAD,
//! one object's task through the per-object S3 steps of [`crate::s3`]), and hands back the
//! answer with the ticket it came with. As many requests may be out at once as the
//! concurrency limit allows; answers may come back in any order. The job decides what each
//! object needs ([`plan::decide`]), keeps the counts ([`Progress`]), holds the limits on
//! objects and bytes per second, pauses, retries what may be retried with backoff, and saves
//! its position in a state ([`BucketJob::state`]) whose size does not grow with the objects
//! done: the listing position, the few objects past it that are already finished, the
//! objects in flight with their partial-upload checkpoints, the counts and the last failures.

mod pace;
pub mod plan;
mod progress;
mod state;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::metadata::{self, ObjectFormat};
use crate::probe::{ByteRange, Probe, Verdict};
use crate::reencrypt::UploadCheckpoint;
use crate::scan::{ScanClass, ScanPlanner};

use pace::Pace;
pub use plan::{Decision, JobKind, SkipReason, TaskKind};
pub use progress::{FAILURES_KEPT, Failure, Progress};

/// Keys a listing page asks for at most (S3's own maximum).
pub const MAX_PAGE: u32 = 1000;

/// The limits a job obeys; [`BucketJob::set_limits`] changes them while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Requests out at once (HEADs and tasks; the one listing request aside).
    pub concurrency: u32,
    /// Objects started (first HEAD) per second; 0: unlimited.
    pub objects_per_second: u64,
    /// Object bytes re-encrypted per second, charged when a task starts; 0: unlimited. A
    /// rewrap moves no bytes and is not charged.
    pub bytes_per_second: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { concurrency: 8, objects_per_second: 0, bytes_per_second: 0 }
    }
}

impl Limits {
    /// `concurrency` requests at once, no rate limit.
    #[must_use]
    pub const fn new(concurrency: u32) -> Self {
        Self { concurrency, objects_per_second: 0, bytes_per_second: 0 }
    }

    with_setters! {
        /// These limits with another `objects_per_second`.
        with_objects_per_second => objects_per_second: u64;
        /// These limits with another `bytes_per_second`.
        with_bytes_per_second => bytes_per_second: u64;
    }
}

/// How a job runs, fixed at its start (the limits aside).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobOptions {
    /// Plan and count, write nothing: no task is handed out.
    pub dry_run: bool,
    /// The limits to start with.
    pub limits: Limits,
    /// Attempts per object (and per listing page) before a retryable failure is final.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to `backoff_max_ms`.
    pub backoff_ms: u64,
    /// The longest retry delay.
    pub backoff_max_ms: u64,
    /// Objects listed and not yet finished, at most: bounds the memory and the state (the
    /// finished objects past the listing position are saved by key).
    pub window: u32,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            limits: Limits::default(),
            max_attempts: 5,
            backoff_ms: 200,
            backoff_max_ms: 20_000,
            window: 2000,
        }
    }
}

impl JobOptions {
    /// The defaults with `limits`.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { limits, ..Self::default() }
    }

    with_setters! {
        /// These options as a dry run (or not).
        with_dry_run => dry_run: bool;
        /// These options with another window.
        with_window => window: u32;
    }

    /// These options with other retry settings.
    #[must_use]
    pub const fn with_retries(mut self, max_attempts: u32, backoff_ms: u64, backoff_max_ms: u64) -> Self {
        self.max_attempts = max_attempts;
        self.backoff_ms = backoff_ms;
        self.backoff_max_ms = backoff_max_ms;
        self
    }
}

/// A ListObjectsV2 request: keys under `prefix` after `start_after`, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListRequest {
    /// The key prefix.
    pub prefix: String,
    /// `start-after`: list keys after this one.
    pub start_after: Option<String>,
    /// `max-keys`.
    pub max_keys: u32,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Stored bytes.
    pub size: u64,
}

impl Entry {
    /// `key` of `size` stored bytes.
    #[must_use]
    pub fn new(key: &str, size: u64) -> Self {
        Self { key: key.into(), size }
    }
}

/// What a HEAD found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Head {
    /// The object, with its user metadata (without the `x-amz-meta-` prefix), ETag and size.
    Found {
        /// User metadata.
        metadata: Vec<(String, String)>,
        /// The ETag, as the server sent it.
        etag: String,
        /// Stored bytes.
        size: u64,
    },
    /// 404: no such object.
    Missing,
    /// Any other failure; `retryable` for throttling (503 SlowDown), 500s, resets, timeouts.
    Failed {
        /// The server's or client's error code.
        code: String,
        /// Whether the same request may succeed later.
        retryable: bool,
    },
}

/// What a ranged read of an object ([`Action::Read`]) brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Read {
    /// The bodies of the ranges asked for, in their order.
    Found(Vec<Vec<u8>>),
    /// The object is no longer the version the HEAD saw (412 on `If-Match`, or 404): the
    /// job looks at it again.
    Changed,
    /// Any other failure; `retryable` as for [`Head::Failed`].
    Failed {
        /// The server's or client's error code.
        code: String,
        /// Whether the same request may succeed later.
        retryable: bool,
    },
}

/// How an object's task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Done; `moved`: object bytes read and written again.
    Done {
        /// Bytes moved.
        moved: u64,
    },
    /// The object changed underneath (its ETag no longer matched: 412) or was deleted
    /// (404): the job looks at it again.
    Changed,
    /// Failed; `retryable` as for [`Head::Failed`].
    Failed {
        /// The error code (a core code for isec errors).
        code: String,
        /// Whether the same task may succeed later.
        retryable: bool,
    },
}

/// An object's task, handed to the caller to run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Task {
    /// The ticket to answer with.
    pub ticket: u64,
    /// What to do.
    pub kind: TaskKind,
    /// The object's key.
    pub key: String,
    /// The ETag every request of the task pins (the HEAD's).
    pub etag: String,
    /// Stored bytes.
    pub size: u64,
    /// A partial upload's checkpoint from an earlier attempt or run
    /// ([`crate::reencrypt::Reencryption::resume_keyed`]), if one was saved.
    pub checkpoint: Option<Vec<u8>>,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// List a page, answer with [`BucketJob::listed`] or [`BucketJob::list_failed`].
    List(ListRequest),
    /// HEAD `key`, answer with [`BucketJob::headed`].
    Head {
        /// The ticket to answer with.
        ticket: u64,
        /// The key to HEAD: the object, or its previous-proxy sidecar
        /// (`.s3proxy-internal/<key>.meta`) when the object has no metadata of its own.
        key: String,
    },
    /// Read these byte ranges of `key` pinned to `etag` (`If-Match`), answer with
    /// [`BucketJob::read`]: an object without isec metadata is probed for isec frames that
    /// lost their envelope ([`crate::probe`]).
    Read {
        /// The ticket to answer with.
        ticket: u64,
        /// The object's key.
        key: String,
        /// The ETag the HEAD saw.
        etag: String,
        /// `[start, end)` byte ranges, one GET each.
        ranges: Vec<ByteRange>,
    },
    /// Run a task, answer with [`BucketJob::finished`].
    Run(Task),
    /// Abort the multipart upload named in `checkpoint`
    /// ([`crate::reencrypt::UploadCheckpoint::parse`]): a task saved it and no task will take
    /// it up (the object changed, was deleted, failed for good, or was found done). Best
    /// effort, no answer: a server that already dropped the upload says `NoSuchUpload`.
    Abort {
        /// The object's key.
        key: String,
        /// The task's last checkpoint.
        checkpoint: Vec<u8>,
    },
    /// Nothing can start before the caller's clock reads this (a rate limit or a retry's
    /// backoff); answers may still arrive before.
    Wait {
        /// The clock reading.
        until_ms: u64,
    },
    /// Nothing can start until an answer arrives.
    Idle,
    /// Paused, and nothing is in flight any more.
    Paused,
    /// Every object under the prefix is done, skipped or failed.
    Done,
    /// The listing failed for good (`code`): the job cannot go on; its state is kept.
    Stopped {
        /// The error code.
        code: String,
    },
}

impl Action {
    /// Stable name: `list`, `head`, `read`, `run`, `abort`, `wait`, `idle`, `paused`, `done`,
    /// `stopped`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::List(_) => "list",
            Self::Head { .. } => "head",
            Self::Read { .. } => "read",
            Self::Run(_) => "run",
            Self::Abort { .. } => "abort",
            Self::Wait { .. } => "wait",
            Self::Idle => "idle",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Stopped { .. } => "stopped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Listed; its HEAD not yet sent.
    Queued,
    /// HEAD out.
    Heading,
    /// No metadata: its previous-proxy sidecar's HEAD is next.
    ProbeQueued,
    /// The sidecar's HEAD out.
    Probing,
    /// Classified plaintext: its ranged read for isec frames is next.
    ReadQueued,
    /// The ranged read out.
    Reading,
    /// Decided; waiting for the limits.
    Ready(TaskKind),
    /// Task out.
    Running(TaskKind),
    /// Waiting for a retry (in `BucketJob::retries`); then back to `Queued` (look again)
    /// or `Ready`.
    Retry { then: Option<TaskKind> },
    /// Done, skipped or failed.
    Finished,
}

#[derive(Debug, Clone)]
struct Slot {
    key: String,
    /// Stored bytes as listed (what `Progress::listed` counted).
    listed_size: u64,
    /// Stored bytes as the HEAD found them.
    size: u64,
    /// Key id (`-`: none) and class, once decided; counted when the object finishes.
    found: Option<(String, ScanClass)>,
    stage: Stage,
    attempts: u32,
    charged: bool,
    etag: String,
    metadata: Vec<(String, String)>,
    checkpoint: Option<Vec<u8>>,
    /// In flight when a previous run stopped: the ETag its task pinned.
    resumed: Option<String>,
    /// The look for isec frames of an object classified plaintext, since its last HEAD.
    look: Look,
}

/// Where the probe for stripped isec frames of one object stands.
#[derive(Debug, Clone)]
enum Look {
    /// Not started.
    NotYet,
    /// Ranges to read (or out); `legacy_sidecar` as the HEADs found it.
    Reading { probe: Probe, ranges: Vec<ByteRange>, legacy_sidecar: bool },
    /// Judged.
    Judged { stripped: bool },
}

/// A job over every object under a prefix. See the module docs.
#[derive(Debug)]
pub struct BucketJob {
    kind: JobKind,
    bucket: String,
    prefix: String,
    options: JobOptions,
    planner: ScanPlanner,
    progress: Progress,
    paused: bool,
    /// Every key up to and including this one is finished.
    after: Option<String>,
    /// The last key listed (the next page starts after it).
    listed_to: Option<String>,
    listing_out: bool,
    list_attempts: u32,
    list_retry_at: Option<u64>,
    stopped: Option<String>,
    /// Listed and not yet past the listing position, by ticket (tickets grow with the key).
    slots: BTreeMap<u64, Slot>,
    next_ticket: u64,
    queued: VecDeque<u64>,
    ready: VecDeque<u64>,
    retries: BTreeSet<(u64, u64)>,
    in_flight: u32,
    objects_pace: Pace,
    bytes_pace: Pace,
    /// From a saved state: keys past `after` already finished, and keys that were in flight
    /// with their pinned ETag and checkpoint. Both only shrink as the listing passes them.
    resumed_done: BTreeSet<String>,
    resumed_running: BTreeMap<String, (String, Option<Vec<u8>>)>,
    /// Checkpoints no task will take up: their uploads are handed out as [`Action::Abort`].
    abandoned: VecDeque<(String, Vec<u8>)>,
}

impl BucketJob {
    /// A new job of `kind` over `bucket`/`prefix`, judging objects against `keyring`'s key
    /// states (no key material is kept).
    #[must_use]
    pub fn new(kind: JobKind, bucket: &str, prefix: &str, keyring: &Keyring, options: JobOptions) -> Self {
        let limits = options.limits;
        Self {
            kind,
            bucket: bucket.into(),
            prefix: prefix.into(),
            planner: ScanPlanner::new(keyring),
            progress: Progress::default(),
            paused: false,
            after: None,
            listed_to: None,
            listing_out: false,
            list_attempts: 0,
            list_retry_at: None,
            stopped: None,
            slots: BTreeMap::new(),
            next_ticket: 0,
            queued: VecDeque::new(),
            ready: VecDeque::new(),
            retries: BTreeSet::new(),
            in_flight: 0,
            objects_pace: Pace::new(limits.objects_per_second),
            bytes_pace: Pace::new(limits.bytes_per_second),
            resumed_done: BTreeSet::new(),
            resumed_running: BTreeMap::new(),
            abandoned: VecDeque::new(),
            options,
        }
    }

    /// The job's kind.
    #[must_use]
    pub const fn kind(&self) -> JobKind {
        self.kind
    }

    /// The bucket.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The counts so far.
    #[must_use]
    pub const fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The limits in force.
    #[must_use]
    pub const fn limits(&self) -> Limits {
        self.options.limits
    }

    /// Requests the caller has out (HEADs and tasks; the listing aside).
    #[must_use]
    pub const fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Other limits from now on (what already started keeps running).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a concurrency of 0.
    pub fn set_limits(&mut self, limits: Limits) -> Result<()> {
        if limits.concurrency == 0 {
            return Err(Error::InvalidParameter);
        }
        self.options.limits = limits;
        self.objects_pace.set_rate(limits.objects_per_second);
        self.bytes_pace.set_rate(limits.bytes_per_second);
        Ok(())
    }

    /// Starts nothing new until [`BucketJob::resume`]; what is in flight finishes.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Undoes [`BucketJob::pause`].
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Whether the job is paused.
    #[must_use]
    pub const fn is_paused(&self) -> bool {
        self.paused
    }

    /// What to do next at the caller's clock `now_ms` (any monotonic milliseconds). Call it
    /// until it returns `Wait`, `Idle`, `Paused`, `Done` or `Stopped`, sending each request
    /// it returns; call it again after every answer (or at `Wait`'s time).
    pub fn poll(&mut self, now_ms: u64) -> Action {
        if let Some(code) = &self.stopped {
            return Action::Stopped { code: code.clone() };
        }
        if let Some((key, checkpoint)) = self.abandoned.pop_front() {
            return Action::Abort { key, checkpoint };
        }
        let mut wake: Option<u64> = None;
        let mut soonest = |t: u64| wake = Some(wake.map_or(t, |w| w.min(t)));
        self.release_retries(now_ms, &mut soonest);
        if !self.paused {
            if let Some(a) = self.next_list(now_ms, &mut soonest) {
                return a;
            }
            if self.in_flight < self.options.limits.concurrency {
                if let Some(a) = self.next_task(now_ms, &mut soonest) {
                    return a;
                }
                if let Some(a) = self.next_head(now_ms, &mut soonest) {
                    return a;
                }
            }
        }
        if self.in_flight > 0 || self.listing_out {
            return Action::Idle;
        }
        if self.paused {
            return Action::Paused;
        }
        match wake {
            Some(until_ms) => Action::Wait { until_ms },
            None if self.progress.listing_complete && self.slots.is_empty() => Action::Done,
            // Only a full window with nothing startable: cannot happen with a positive
            // concurrency, but never report done while objects remain.
            None => Action::Idle,
        }
    }

    fn release_retries(&mut self, now_ms: u64, soonest: &mut impl FnMut(u64)) {
        while let Some(&(at_ms, ticket)) = self.retries.first() {
            if at_ms > now_ms {
                soonest(at_ms);
                return;
            }
            self.retries.pop_first();
            let Some(slot) = self.slots.get_mut(&ticket) else { continue };
            if let Stage::Retry { then } = slot.stage {
                slot.stage = match then {
                    Some(kind) => {
                        self.ready.push_back(ticket);
                        Stage::Ready(kind)
                    }
                    None => {
                        self.queued.push_back(ticket);
                        Stage::Queued
                    }
                };
            }
        }
    }

    fn next_list(&mut self, now_ms: u64, soonest: &mut impl FnMut(u64)) -> Option<Action> {
        if self.progress.listing_complete || self.listing_out {
            return None;
        }
        let window = u64::from(self.options.window.max(1));
        let room = window.saturating_sub(self.slots.len() as u64);
        // Ask for the next page once half the window (or a full page) is free, so that HEADs
        // rarely wait on the listing and pages are not needlessly small.
        if room == 0 || (room < (window / 2).min(u64::from(MAX_PAGE)) && !self.slots.is_empty()) {
            return None;
        }
        if let Some(at) = self.list_retry_at.filter(|&at| at > now_ms) {
            soonest(at);
            return None;
        }
        self.listing_out = true;
        let max_keys = u32::try_from(room.min(u64::from(MAX_PAGE))).unwrap_or(MAX_PAGE);
        Some(Action::List(ListRequest {
            prefix: self.prefix.clone(),
            start_after: self.listed_to.clone().or_else(|| self.after.clone()),
            max_keys,
        }))
    }

    fn next_task(&mut self, now_ms: u64, soonest: &mut impl FnMut(u64)) -> Option<Action> {
        let &ticket = self.ready.front()?;
        let slot = self.slots.get_mut(&ticket)?;
        let Stage::Ready(kind) = slot.stage else {
            self.ready.pop_front();
            return None;
        };
        let cost = if kind == TaskKind::Rewrap { 0 } else { slot.size };
        if cost > 0 && !slot.charged {
            let wait = self.bytes_pace.wait_ms(now_ms);
            if wait > 0 {
                soonest(now_ms.saturating_add(wait));
                return None;
            }
            self.bytes_pace.take(now_ms, cost);
            slot.charged = true;
        }
        self.ready.pop_front();
        slot.stage = Stage::Running(kind);
        slot.attempts += 1;
        self.in_flight += 1;
        Some(Action::Run(Task {
            ticket,
            kind,
            key: slot.key.clone(),
            etag: slot.etag.clone(),
            size: slot.size,
            checkpoint: slot.checkpoint.clone(),
            attempt: slot.attempts,
        }))
    }

    fn next_head(&mut self, now_ms: u64, soonest: &mut impl FnMut(u64)) -> Option<Action> {
        loop {
            let &ticket = self.queued.front()?;
            let Some(slot) = self.slots.get_mut(&ticket) else {
                self.queued.pop_front();
                continue;
            };
            if slot.stage == Stage::ProbeQueued {
                self.queued.pop_front();
                slot.stage = Stage::Probing;
                self.in_flight += 1;
                return Some(Action::Head { ticket, key: metadata::legacy_sidecar_key(&slot.key) });
            }
            if slot.stage == Stage::ReadQueued {
                self.queued.pop_front();
                let Look::Reading { ranges, .. } = &slot.look else { continue };
                let ranges = ranges.clone();
                slot.stage = Stage::Reading;
                self.in_flight += 1;
                return Some(Action::Read { ticket, key: slot.key.clone(), etag: slot.etag.clone(), ranges });
            }
            if slot.stage != Stage::Queued {
                self.queued.pop_front();
                continue;
            }
            if !slot.charged_object() {
                let wait = self.objects_pace.wait_ms(now_ms);
                if wait > 0 {
                    soonest(now_ms.saturating_add(wait));
                    return None;
                }
                self.objects_pace.take(now_ms, 1);
            }
            self.queued.pop_front();
            slot.stage = Stage::Heading;
            slot.look = Look::NotYet;
            slot.attempts = slot.attempts.max(1);
            self.in_flight += 1;
            return Some(Action::Head { ticket, key: slot.key.clone() });
        }
    }

    /// A listing page: its entries in key order, and whether more follow (`IsTruncated`).
    ///
    /// # Errors
    /// [`Error::InvalidState`] when no listing was asked for; [`Error::InvalidParameter`]
    /// when the keys are not in order after the page's `start_after` or lie outside the
    /// prefix (the position would be wrong), or a truncated page is empty.
    pub fn listed(&mut self, entries: Vec<Entry>, truncated: bool) -> Result<()> {
        if !self.listing_out {
            return Err(Error::InvalidState);
        }
        let mut last = self.listed_to.clone().or_else(|| self.after.clone());
        for e in &entries {
            if last.as_ref().is_some_and(|l| e.key.as_str() <= l.as_str()) || !e.key.starts_with(&self.prefix) {
                return Err(Error::InvalidParameter);
            }
            last = Some(e.key.clone());
        }
        if truncated && entries.is_empty() {
            return Err(Error::InvalidParameter);
        }
        self.listing_out = false;
        self.list_attempts = 0;
        self.list_retry_at = None;
        self.listed_to = last;
        self.progress.listing_complete = !truncated;
        for e in entries {
            self.admit(e);
        }
        self.forget_passed();
        self.advance();
        Ok(())
    }

    /// The listing request failed; a retryable failure is tried again with backoff, any
    /// other (or the last attempt) stops the job.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when no listing was asked for.
    pub fn list_failed(&mut self, now_ms: u64, code: &str, retryable: bool) -> Result<()> {
        if !self.listing_out {
            return Err(Error::InvalidState);
        }
        self.listing_out = false;
        self.list_attempts += 1;
        if retryable && self.list_attempts < self.options.max_attempts {
            let delay = backoff(&self.options, self.list_attempts, self.prefix.as_bytes());
            self.list_retry_at = Some(now_ms.saturating_add(delay));
        } else {
            self.stopped = Some(code.into());
        }
        Ok(())
    }

    fn admit(&mut self, e: Entry) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        // Finished before the last stop and counted then: it holds its place in the window
        // (so the position passes it only in order) but is not counted again.
        let done_before = self.resumed_done.remove(&e.key);
        if !done_before {
            self.progress.listed.add(e.size);
        }
        let resumed = self.resumed_running.remove(&e.key);
        let (resumed, checkpoint) = match resumed {
            Some((etag, cp)) => (Some(etag), cp),
            None => (None, None),
        };
        let mut slot = Slot {
            key: e.key,
            listed_size: e.size,
            found: None,
            size: e.size,
            stage: Stage::Queued,
            attempts: 0,
            charged: false,
            etag: String::new(),
            metadata: Vec::new(),
            checkpoint,
            resumed,
            look: Look::NotYet,
        };
        if done_before {
            slot.stage = Stage::Finished;
        } else if metadata::is_sidecar_key(&slot.key) {
            // Sidecars travel with their objects: no HEAD needed to know that.
            slot.found = Some(("-".into(), ScanClass::Sidecar));
            slot.end(&mut self.progress, &mut self.abandoned, End::Skip(SkipReason::Sidecar));
        } else {
            self.queued.push_back(ticket);
        }
        self.slots.insert(ticket, slot);
    }

    /// A HEAD's answer for `ticket` (the object's, or its sidecar's).
    ///
    /// # Errors
    /// [`Error::InvalidState`] when `ticket` has no HEAD out.
    pub fn headed(&mut self, ticket: u64, now_ms: u64, head: Head) -> Result<()> {
        let slot = self.slots.get_mut(&ticket).ok_or(Error::InvalidState)?;
        let probing = match slot.stage {
            Stage::Heading => false,
            Stage::Probing => true,
            _ => return Err(Error::InvalidState),
        };
        self.in_flight -= 1;
        match (probing, head) {
            (false, Head::Found { metadata, etag, size }) => {
                slot.etag = etag;
                slot.size = size;
                // Every kind asks, so that what it reports as plaintext is plaintext.
                let needs_probe = metadata.is_empty();
                slot.metadata = metadata;
                if needs_probe {
                    // An object without metadata may be a previous-proxy object whose
                    // envelope is only in its sidecar: that HEAD goes out next.
                    slot.stage = Stage::ProbeQueued;
                    self.queued.push_front(ticket);
                    return Ok(());
                }
                self.decide(ticket, false);
            }
            (true, Head::Found { .. }) => self.decide(ticket, true),
            (true, Head::Missing) => self.decide(ticket, false),
            // Deleted by another writer since the listing (or, if it was in flight when the
            // last run stopped, since then): nothing of the job's is lost with it.
            (false, Head::Missing) => slot.end(&mut self.progress, &mut self.abandoned, End::Skip(SkipReason::Deleted)),
            (_, Head::Failed { code, retryable }) => self.retry_or_fail(ticket, now_ms, "head", &code, retryable, None),
        }
        self.advance();
        Ok(())
    }

    /// A ranged read's answer for `ticket` ([`Action::Read`]).
    ///
    /// # Errors
    /// [`Error::InvalidState`] when `ticket` has no read out; [`Error::InvalidParameter`]
    /// when the number of bodies is not the number of ranges asked for.
    pub fn read(&mut self, ticket: u64, now_ms: u64, read: Read) -> Result<()> {
        let slot = self.slots.get_mut(&ticket).ok_or(Error::InvalidState)?;
        let (Stage::Reading, Look::Reading { probe, legacy_sidecar, .. }) = (slot.stage, &mut slot.look) else {
            return Err(Error::InvalidState);
        };
        let legacy_sidecar = *legacy_sidecar;
        match read {
            Read::Found(bodies) => {
                let bodies: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
                let verdict = probe.judge(&bodies)?;
                self.in_flight -= 1;
                match verdict {
                    Verdict::Fetch(ranges) => {
                        let probe = probe.clone();
                        slot.look = Look::Reading { probe, ranges, legacy_sidecar };
                        slot.stage = Stage::ReadQueued;
                        self.queued.push_front(ticket);
                        return Ok(());
                    }
                    v => {
                        let stripped = matches!(v, Verdict::Stripped { .. });
                        slot.look = Look::Judged { stripped };
                        self.decide(ticket, legacy_sidecar);
                    }
                }
            }
            Read::Changed => {
                self.in_flight -= 1;
                slot.attempts += 1;
                if slot.attempts > self.options.max_attempts {
                    slot.end(&mut self.progress, &mut self.abandoned, End::Skip(SkipReason::Changed));
                } else {
                    slot.stage = Stage::Queued;
                    self.queued.push_front(ticket);
                }
            }
            Read::Failed { code, retryable } => {
                self.in_flight -= 1;
                self.retry_or_fail(ticket, now_ms, "read", &code, retryable, None);
            }
        }
        self.advance();
        Ok(())
    }

    /// Classifies an object from its HEAD (and sidecar probe, and its read for stripped isec
    /// frames) and queues its task, its read, or ends it.
    fn decide(&mut self, ticket: u64, legacy_sidecar: bool) {
        let Some(slot) = self.slots.get_mut(&ticket) else { return };
        let meta: Vec<(&str, &str)> = slot.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let format = metadata::classify(&meta, legacy_sidecar);
        let mut class = self.planner.classify(&slot.key, &format);
        if class == ScanClass::Plaintext {
            match &slot.look {
                Look::NotYet => {
                    // What would be reported as plaintext may be isec frames that lost their
                    // envelope: read a few ranges before saying so.
                    let probe = Probe::new(slot.size);
                    if let Verdict::Fetch(ranges) = probe.start() {
                        slot.look = Look::Reading { probe, ranges, legacy_sidecar };
                        slot.stage = Stage::ReadQueued;
                        self.queued.push_front(ticket);
                        return;
                    }
                }
                Look::Judged { stripped: true } => class = ScanClass::StrippedIsec,
                _ => {}
            }
        }
        let (kid, key_state) = match &format {
            ObjectFormat::Isec(env) => (env.kid().to_string(), self.planner.key_state(env.kid())),
            ObjectFormat::Legacy { kid, .. } => (kid.clone().unwrap_or_else(|| "-".into()), None),
            _ => ("-".into(), None),
        };
        let decision = plan::decide(self.kind, class, &format, key_state);
        slot.metadata = Vec::new();
        slot.found = Some((kid, class));
        match decision {
            Decision::Run(_) if self.options.dry_run => slot.end(&mut self.progress, &mut self.abandoned, End::Planned),
            Decision::Run(kind)
                if slot.resumed.as_deref().is_some_and(|e| e != slot.etag) && kind != TaskKind::Rewrap =>
            {
                // In flight when the last run stopped, and replaced since: by that run (its
                // new object) or by another writer; either way under a new DEK.
                slot.end(&mut self.progress, &mut self.abandoned, End::Done(kind, 0));
            }
            Decision::Run(kind) => {
                slot.stage = Stage::Ready(kind);
                self.ready.push_back(ticket);
            }
            Decision::Skip(SkipReason::Current) if slot.resumed.is_some() => {
                // In flight when the last run stopped: that run finished it.
                let task = match self.kind {
                    JobKind::Rotate => TaskKind::Rewrap,
                    JobKind::Migrate => TaskKind::Migrate,
                    _ => TaskKind::Reencrypt,
                };
                slot.end(&mut self.progress, &mut self.abandoned, End::Done(task, 0));
            }
            Decision::Skip(reason) => slot.end(&mut self.progress, &mut self.abandoned, End::Skip(reason)),
        }
    }

    /// How `ticket`'s task ended.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when `ticket` has no task out.
    pub fn finished(&mut self, ticket: u64, now_ms: u64, outcome: Outcome) -> Result<()> {
        let slot = self.slots.get_mut(&ticket).ok_or(Error::InvalidState)?;
        let Stage::Running(kind) = slot.stage else { return Err(Error::InvalidState) };
        self.in_flight -= 1;
        match outcome {
            Outcome::Done { moved } => {
                slot.checkpoint = None;
                slot.end(&mut self.progress, &mut self.abandoned, End::Done(kind, moved));
            }
            Outcome::Changed => {
                // Look again: the new version may need nothing, or another task; a partial
                // upload of the old one is of no use.
                if let Some(cp) = slot.checkpoint.take() {
                    self.abandoned.push_back((slot.key.clone(), cp));
                }
                slot.charged = false;
                if slot.attempts >= self.options.max_attempts {
                    slot.end(&mut self.progress, &mut self.abandoned, End::Skip(SkipReason::Changed));
                } else {
                    slot.stage = Stage::Queued;
                    self.queued.push_front(ticket);
                }
            }
            Outcome::Failed { code, retryable } => {
                if retryable {
                    // The request may have landed with its answer lost (a reset, a timeout):
                    // like a task in flight at a crash, a new ETag seen later is this one's.
                    slot.resumed = Some(slot.etag.clone());
                }
                self.retry_or_fail(ticket, now_ms, kind.name(), &code, retryable, Some(kind));
            }
        }
        self.advance();
        Ok(())
    }

    /// Saves a partial upload's checkpoint for `ticket`'s running task, so that a retry or
    /// a resumed run continues it.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when `ticket` has no task out.
    ///
    /// A checkpoint of another upload than the one saved before (a task run again elsewhere
    /// after its runner died started afresh) hands the older upload out for abort.
    pub fn save_checkpoint(&mut self, ticket: u64, checkpoint: &[u8]) -> Result<()> {
        let slot = self.slots.get_mut(&ticket).ok_or(Error::InvalidState)?;
        if !matches!(slot.stage, Stage::Running(_)) {
            return Err(Error::InvalidState);
        }
        if let Some(old) = slot.checkpoint.replace(checkpoint.to_vec()) {
            let upload = |b: &[u8]| UploadCheckpoint::parse(b).ok().map(|u| u.upload_id);
            let was = upload(&old);
            if was.is_some() && was != upload(checkpoint) {
                self.abandoned.push_back((slot.key.clone(), old));
            }
        }
        Ok(())
    }

    fn retry_or_fail(
        &mut self,
        ticket: u64,
        now_ms: u64,
        stage: &str,
        code: &str,
        retryable: bool,
        then: Option<TaskKind>,
    ) {
        let Some(slot) = self.slots.get(&ticket) else { return };
        let attempts = slot.attempts;
        let delay = backoff(&self.options, attempts, slot.key.as_bytes());
        let Some(slot) = self.slots.get_mut(&ticket) else { return };
        if retryable && attempts < self.options.max_attempts {
            slot.stage = Stage::Retry { then };
            if then.is_none() {
                slot.attempts += 1;
            }
            self.retries.insert((now_ms.saturating_add(delay), ticket));
        } else {
            slot.end(&mut self.progress, &mut self.abandoned, End::Failed(stage, code));
        }
    }

    /// Objects of a saved state that the listing has passed without finding them were
    /// deleted since: a partial upload of theirs is aborted.
    fn forget_passed(&mut self) {
        let complete = self.progress.listing_complete;
        let to = self.listed_to.clone();
        let passed = |k: &String| complete || to.as_ref().is_some_and(|t| k <= t);
        self.resumed_done.retain(|k| !passed(k));
        let gone: Vec<String> = self.resumed_running.keys().filter(|k| passed(k)).cloned().collect();
        for key in gone {
            if let Some((_, Some(cp))) = self.resumed_running.remove(&key) {
                self.abandoned.push_back((key, cp));
            }
        }
    }

    /// Drops the finished slots at the front: the listing position moves past them.
    fn advance(&mut self) {
        while let Some(entry) = self.slots.first_entry() {
            if entry.get().stage != Stage::Finished {
                break;
            }
            let slot = entry.remove();
            self.after = Some(slot.key);
        }
    }
}

/// Exponential backoff with a spread drawn from the key, so that objects throttled together
/// do not all come back together.
fn backoff(options: &JobOptions, attempt: u32, seed: &[u8]) -> u64 {
    let base = options.backoff_ms.max(1);
    let exp = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(20)).min(options.backoff_max_ms.max(base));
    let spread = seed.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    exp.saturating_add(spread % base.div_ceil(2).max(1))
}

/// How an object ends.
enum End<'a> {
    Done(TaskKind, u64),
    Skip(SkipReason),
    Failed(&'a str, &'a str),
    Planned,
}

impl Slot {
    /// Whether the object-rate limit has charged this object already (a second look after
    /// a change or a failed HEAD is not charged again).
    const fn charged_object(&self) -> bool {
        self.attempts > 0
    }

    /// Finishes the object and counts it: its class and key once, and how it ended.
    /// A checkpoint the object still holds goes to `abandoned`: its upload is aborted.
    fn end(&mut self, progress: &mut Progress, abandoned: &mut VecDeque<(String, Vec<u8>)>, end: End<'_>) {
        if let Some(cp) = self.checkpoint.take() {
            abandoned.push_back((self.key.clone(), cp));
        }
        // Counted at the listed size, so that `listed` is the sum of the ends and `left`.
        let size = self.listed_size;
        if let Some((kid, class)) = &self.found {
            progress.found(kid, class.name(), size);
        }
        match end {
            End::Done(task, moved) => progress.finish(task.name(), size, moved),
            End::Skip(reason) => progress.skip(reason.name(), size),
            End::Failed(stage, code) => progress.fail(&self.key, stage, code, size),
            End::Planned => progress.plan(size),
        }
        self.stage = Stage::Finished;
    }
}
