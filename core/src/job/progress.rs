//! What a bucket job has done and has left: counts and bytes by outcome, scan class, source
//! key and error code. Every map is keyed by a bounded set of names (classes, reasons, task
//! kinds, error codes, key ids), and the failure list is capped, so the record stays the same
//! size whether the job has seen a thousand objects or a hundred million.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;

use serde::{Deserialize, Serialize};

use crate::scan::Tally;

/// Failures kept by key (the most recent); every failure is still counted by code.
pub const FAILURES_KEPT: usize = 100;

/// One object the job gave up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Failure {
    /// The object's key.
    pub key: String,
    /// What was being done: `list`, `head`, `rewrap`, `reencrypt`, `migrate`.
    pub stage: String,
    /// The error code: a core code (`authentication_failed`, ...) or the server's
    /// (`AccessDenied`, ...).
    pub code: String,
}

/// The job's counts. Every object listed ends in exactly one of `done`, `skipped`, `failed`
/// and (in a dry run) `planned`; until then it is `left`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// Objects (and their stored bytes) the listing returned.
    pub listed: Tally,
    /// Objects the job changed (rewrapped, re-encrypted, migrated).
    pub done: Tally,
    /// Objects left as they were, for a reason in `skipped_by_reason`.
    pub skipped: Tally,
    /// Objects given up on, by code in `failed_by_code`.
    pub failed: Tally,
    /// A dry run's objects that would have been changed.
    pub planned: Tally,
    /// Object bytes the job read and wrote again (a rewrap moves none).
    pub moved_bytes: u64,
    /// Whether the listing has reached the end of the prefix.
    pub listing_complete: bool,
    /// Objects by scan class (`current`, `needs_rewrap`, ...), as found.
    pub by_class: BTreeMap<String, Tally>,
    /// Objects by the key id they were found under (`-`: none) and scan class.
    pub by_kid: BTreeMap<String, BTreeMap<String, Tally>>,
    /// Done objects by task (`rewrap`, `reencrypt`, `migrate`).
    pub done_by_task: BTreeMap<String, Tally>,
    /// Skipped objects by reason.
    pub skipped_by_reason: BTreeMap<String, Tally>,
    /// Failed objects by error code.
    pub failed_by_code: BTreeMap<String, Tally>,
    /// The last [`FAILURES_KEPT`] failures.
    pub failures: VecDeque<Failure>,
}

impl Progress {
    /// Objects listed and not yet done, skipped, failed or (in a dry run) planned: in flight
    /// or queued. Until `listing_complete`, more may follow.
    #[must_use]
    pub fn left(&self) -> Tally {
        let ended = [self.done, self.skipped, self.failed, self.planned];
        let ended_objects = ended.iter().map(|t| t.objects).fold(0u64, u64::saturating_add);
        let ended_bytes = ended.iter().map(|t| t.bytes).fold(0u64, u64::saturating_add);
        Tally::new(self.listed.objects.saturating_sub(ended_objects), self.listed.bytes.saturating_sub(ended_bytes))
    }

    /// The counts as JSON (the same object a saved state holds under `progress`): what the
    /// bindings and the CLI report, so every runtime spells them alike.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn found(&mut self, kid: &str, class: &str, size: u64) {
        self.by_class.entry(class.into()).or_default().add(size);
        self.by_kid.entry(kid.into()).or_default().entry(class.into()).or_default().add(size);
    }

    pub(crate) fn skip(&mut self, reason: &str, size: u64) {
        self.skipped.add(size);
        self.skipped_by_reason.entry(reason.into()).or_default().add(size);
    }

    pub(crate) fn fail(&mut self, key: &str, stage: &str, code: &str, size: u64) {
        self.failed.add(size);
        self.failed_by_code.entry(code.into()).or_default().add(size);
        if self.failures.len() == FAILURES_KEPT {
            self.failures.pop_front();
        }
        self.failures.push_back(Failure { key: key.into(), stage: stage.into(), code: code.into() });
    }

    pub(crate) fn plan(&mut self, size: u64) {
        self.planned.add(size);
    }

    pub(crate) fn finish(&mut self, task: &str, size: u64, moved: u64) {
        self.done.add(size);
        self.done_by_task.entry(task.into()).or_default().add(size);
        self.moved_bytes = self.moved_bytes.saturating_add(moved);
    }
}
