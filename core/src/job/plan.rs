//! What a bucket job does with one object, from its scan class (SPEC.md §15.2): the whole
//! decision table in one function, so every runtime skips and works on the same objects.

use crate::keyring::KeyState;
use crate::metadata::ObjectFormat;
use crate::scan::ScanClass;

/// The job's kind: what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobKind {
    /// Classify every object and change nothing.
    Scan,
    /// Rewrap objects under a decrypt-only key to the active key: metadata only.
    Rotate,
    /// New DEKs and ciphertext for every encrypted object (previous-proxy objects are
    /// migrated).
    Reencrypt,
    /// Previous-proxy objects become isec objects under the active key.
    Migrate,
}

/// What a job does to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskKind {
    /// The ETag-pinned REPLACE self-copy with the envelope rewrapped to the active key
    /// ([`crate::copy::pending_rewrap`]); moves no object bytes.
    Rewrap,
    /// Read, verify and re-encrypt under a new DEK in place ([`crate::s3::copy_steps`] onto
    /// the object itself, re-encrypting).
    Reencrypt,
    /// A previous-proxy object re-encrypted in place, read back, then its own sidecar
    /// deleted ([`crate::s3::migrate_steps`]).
    Migrate,
}

/// Why a job leaves an object as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// Already what the job makes it (under the active key, or not a previous-proxy object
    /// for a migration).
    Current,
    /// No encryption metadata.
    Plaintext,
    /// Metadata that does not parse, or a key the keyring does not know.
    Unreadable,
    /// A sidecar: it travels with its object.
    Sidecar,
    /// Under a disabled key: its DEK cannot be unwrapped, so only a keyring that enables the
    /// key again can rotate it.
    KeyDisabled,
    /// Needs new ciphertext, which a rotation does not write (run a re-encryption).
    NeedsReencrypt,
    /// Changed underneath the job each time it was looked at (another writer is busy with
    /// it); the next pass takes it.
    Changed,
    /// Deleted before the job reached it.
    Deleted,
    /// Looked at by a scan, which changes nothing.
    Scanned,
    /// isec frames without their envelope (a copy that lost its metadata): no job can
    /// rotate or re-encrypt it; `isec.s3.Client.repair` attaches its source's envelope.
    StrippedIsec,
}

/// What one object gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// This task.
    Run(TaskKind),
    /// Nothing, for this reason.
    Skip(SkipReason),
}

macro_rules! names {
    ($t:ty { $($v:ident => $n:literal),* $(,)? }) => {
        impl $t {
            /// Stable snake_case name, shared by every binding, the CLI and the job state.
            #[must_use]
            pub const fn name(&self) -> &'static str {
                match self { $(Self::$v => $n),* }
            }

            /// The value named `name` (see `name`), or None.
            #[must_use]
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($n => Some(Self::$v),)* _ => None }
            }
        }
    };
}

names!(JobKind { Scan => "scan", Rotate => "rotate", Reencrypt => "reencrypt", Migrate => "migrate" });
names!(TaskKind { Rewrap => "rewrap", Reencrypt => "reencrypt", Migrate => "migrate" });
names!(SkipReason {
    Current => "current",
    Plaintext => "plaintext",
    Unreadable => "unreadable",
    Sidecar => "sidecar",
    KeyDisabled => "key_disabled",
    NeedsReencrypt => "needs_reencrypt",
    Changed => "changed",
    Deleted => "deleted",
    Scanned => "scanned",
    StrippedIsec => "stripped_isec",
});

/// The decision for an object of `class` and `format` (`key_state`: its isec key's state).
#[must_use]
pub fn decide(kind: JobKind, class: ScanClass, format: &ObjectFormat, key_state: Option<KeyState>) -> Decision {
    use Decision::{Run, Skip};
    let legacy = matches!(format, ObjectFormat::Legacy { .. });
    let disabled = key_state == Some(KeyState::Disabled);
    match (kind, class) {
        (_, ScanClass::Sidecar) => Skip(SkipReason::Sidecar),
        // Before the scan's row, so that even a scan reports them under their own reason.
        (_, ScanClass::StrippedIsec) => Skip(SkipReason::StrippedIsec),
        (JobKind::Scan, _) => Skip(SkipReason::Scanned),
        (_, ScanClass::Plaintext) => Skip(SkipReason::Plaintext),
        (_, ScanClass::Unreadable) => Skip(SkipReason::Unreadable),
        (_, ScanClass::NeedsReencrypt) if disabled => Skip(SkipReason::KeyDisabled),
        (JobKind::Rotate, ScanClass::NeedsRewrap) => Run(TaskKind::Rewrap),
        (JobKind::Rotate, ScanClass::NeedsReencrypt) => Skip(SkipReason::NeedsReencrypt),
        (JobKind::Rotate, ScanClass::Current) => Skip(SkipReason::Current),
        (JobKind::Reencrypt | JobKind::Migrate, _) if legacy => Run(TaskKind::Migrate),
        (JobKind::Migrate, _) => Skip(SkipReason::Current),
        (JobKind::Reencrypt, _) => Run(TaskKind::Reencrypt),
    }
}
