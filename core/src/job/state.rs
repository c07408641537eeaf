//! A job's saved state (SPEC.md §15.4): JSON, so a person can read where a job stands, and
//! small: its size depends on the window, the concurrency and the number of distinct codes,
//! never on the number of objects done. Saved between any two calls; resuming lists again
//! from the position, passes over the finished keys past it, and gives each object that was
//! in flight its pinned ETag and checkpoint back.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

use super::{BucketJob, JobKind, JobOptions, Limits, Progress, Stage};
use crate::error::{Error, Result};
use crate::keyring::Keyring;

/// The `format` value of a saved state.
pub const STATE_FORMAT: &str = "isec-bucket-job/1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    format: String,
    kind: String,
    bucket: String,
    prefix: String,
    dry_run: bool,
    concurrency: u32,
    objects_per_second: u64,
    bytes_per_second: u64,
    max_attempts: u32,
    backoff_ms: u64,
    backoff_max_ms: u64,
    window: u32,
    paused: bool,
    /// Every key up to this one is finished.
    after: Option<String>,
    /// Keys past `after` already finished.
    finished: Vec<String>,
    /// Objects whose task had started: the ETag it pinned and its checkpoint (base64).
    in_flight: Vec<InFlight>,
    /// Partial uploads no task will take up, still to abort: key and checkpoint (base64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    abandoned: Vec<(String, String)>,
    progress: Progress,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InFlight {
    key: String,
    etag: String,
    checkpoint: Option<String>,
}

impl BucketJob {
    /// The job's state, to save (e.g. to a file, replaced atomically) and hand to
    /// [`BucketJob::from_state`] to resume after a stop or a crash.
    #[must_use]
    pub fn state(&self) -> Vec<u8> {
        let mut progress = self.progress.clone();
        let (mut finished, mut in_flight) = (Vec::new(), Vec::new());
        for slot in self.slots.values() {
            if slot.stage == Stage::Finished {
                finished.push(slot.key.clone());
                continue;
            }
            // Listed again on resume, and counted again then.
            progress.listed.objects = progress.listed.objects.saturating_sub(1);
            progress.listed.bytes = progress.listed.bytes.saturating_sub(slot.listed_size);
            // A task that started may have written; one still ambiguous from the last run
            // stays so until it is looked at.
            let started = matches!(slot.stage, Stage::Running(_) | Stage::Retry { then: Some(_) });
            if started || slot.resumed.is_some() {
                let etag = if started { &slot.etag } else { slot.resumed.as_ref().unwrap_or(&slot.etag) };
                in_flight.push(InFlight {
                    key: slot.key.clone(),
                    etag: etag.clone(),
                    checkpoint: slot.checkpoint.as_deref().map(Base64::encode_string),
                });
            }
        }
        // Objects from a saved state not yet listed again stay as they were.
        finished.extend(self.resumed_done.iter().cloned());
        for (key, (etag, cp)) in &self.resumed_running {
            in_flight.push(InFlight {
                key: key.clone(),
                etag: etag.clone(),
                checkpoint: cp.as_deref().map(Base64::encode_string),
            });
        }
        let abandoned = self.abandoned.iter().map(|(k, cp)| (k.clone(), Base64::encode_string(cp))).collect();
        progress.listing_complete = false;
        let o = &self.options;
        let saved = Saved {
            format: STATE_FORMAT.into(),
            kind: self.kind.name().into(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            dry_run: o.dry_run,
            concurrency: o.limits.concurrency,
            objects_per_second: o.limits.objects_per_second,
            bytes_per_second: o.limits.bytes_per_second,
            max_attempts: o.max_attempts,
            backoff_ms: o.backoff_ms,
            backoff_max_ms: o.backoff_max_ms,
            window: o.window,
            paused: self.paused,
            after: self.after.clone(),
            finished,
            in_flight,
            abandoned,
            progress,
        };
        serde_json::to_vec(&saved).unwrap_or_default()
    }

    /// Resumes a job from [`BucketJob::state`], judging objects against `keyring`.
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] when `state` is not a saved job state.
    pub fn from_state(state: &[u8], keyring: &Keyring) -> Result<Self> {
        let s: Saved = serde_json::from_slice(state).map_err(|_| Error::MalformedCheckpoint)?;
        let kind = JobKind::from_name(&s.kind).ok_or(Error::MalformedCheckpoint)?;
        if s.format != STATE_FORMAT || s.concurrency == 0 || s.window == 0 {
            return Err(Error::MalformedCheckpoint);
        }
        let limits = Limits::new(s.concurrency)
            .with_objects_per_second(s.objects_per_second)
            .with_bytes_per_second(s.bytes_per_second);
        let options = JobOptions::new(limits)
            .with_dry_run(s.dry_run)
            .with_retries(s.max_attempts, s.backoff_ms, s.backoff_max_ms)
            .with_window(s.window);
        let mut job = Self::new(kind, &s.bucket, &s.prefix, keyring, options);
        job.paused = s.paused;
        job.after = s.after;
        job.progress = s.progress;
        job.progress.listing_complete = false;
        job.resumed_done = s.finished.into_iter().collect();
        for f in s.in_flight {
            let cp = match f.checkpoint {
                Some(b) => Some(Base64::decode_vec(&b).map_err(|_| Error::MalformedCheckpoint)?),
                None => None,
            };
            job.resumed_running.insert(f.key, (f.etag, cp));
        }
        for (key, cp) in s.abandoned {
            job.abandoned.push_back((key, Base64::decode_vec(&cp).map_err(|_| Error::MalformedCheckpoint)?));
        }
        Ok(job)
    }
}
