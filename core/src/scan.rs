//! The bucket scan planner: how much of a bucket is on which key and format, and so how much
//! rotation work is left (SPEC.md §14).
//!
//! Fed one listing entry (key, metadata, size) at a time, it classifies without any object
//! bytes or key material, so a scan of millions of objects costs HEADs only.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};

use crate::header::VERSION;
use crate::keyring::{KeyState, Keyring};
use crate::metadata::{self, ObjectFormat};

/// What an object needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScanClass {
    /// isec, under the active key: nothing to do.
    Current,
    /// isec under a decrypt-only key: a metadata-only rewrap.
    NeedsRewrap,
    /// Legacy format, a disabled (retired) key, or a format below the minimum version: new
    /// ciphertext is needed.
    NeedsReencrypt,
    /// No encryption metadata.
    Plaintext,
    /// Metadata that does not parse, or a key id the keyring does not know.
    Unreadable,
    /// A sidecar object (segment table, legacy sidecar): travels with its object.
    Sidecar,
    /// No encryption metadata, but a body with the structure of isec frames
    /// ([`crate::probe`]): a copy that lost its envelope. Unreadable until its source's
    /// envelope is attached again; never to be taken for plaintext.
    StrippedIsec,
}

impl ScanClass {
    /// Stable name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::NeedsRewrap => "needs_rewrap",
            Self::NeedsReencrypt => "needs_reencrypt",
            Self::Plaintext => "plaintext",
            Self::Unreadable => "unreadable",
            Self::Sidecar => "sidecar",
            Self::StrippedIsec => "stripped_isec",
        }
    }

    /// The class named `name` (see [`ScanClass::name`]), or None.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Every class, in report order.
    pub const ALL: [ScanClass; 7] = [
        Self::Current,
        Self::NeedsRewrap,
        Self::NeedsReencrypt,
        Self::Plaintext,
        Self::Unreadable,
        Self::Sidecar,
        Self::StrippedIsec,
    ];
}

/// Object count and stored bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Tally {
    /// Objects.
    pub objects: u64,
    /// Stored bytes.
    pub bytes: u64,
}

impl Tally {
    /// `objects` objects of `bytes` bytes in all.
    #[must_use]
    pub const fn new(objects: u64, bytes: u64) -> Self {
        Self { objects, bytes }
    }

    pub(crate) fn add(&mut self, size: u64) {
        self.objects += 1;
        self.bytes = self.bytes.saturating_add(size);
    }
}

/// Aggregates a scan.
#[derive(Debug, Clone, Default)]
pub struct ScanPlanner {
    active: Option<String>,
    states: BTreeMap<String, KeyState>,
    min_version: u8,
    by_class: BTreeMap<ScanClass, Tally>,
    by_kid: BTreeMap<(String, ScanClass), Tally>,
}

impl ScanPlanner {
    /// A planner judging against `keyring`'s key states (no key material is kept).
    #[must_use]
    pub fn new(keyring: &Keyring) -> Self {
        Self {
            active: keyring.active_kid().ok().map(ToString::to_string),
            states: keyring.keys().into_iter().map(|k| (k.kid, k.state)).collect(),
            min_version: keyring.min_version(),
            ..Self::default()
        }
    }

    /// Classifies one listing entry and counts it. `legacy_sidecar` says whether the legacy
    /// proxy's object-keyed sidecar exists for it.
    pub fn add(&mut self, key: &str, meta: &[(&str, &str)], size: u64, legacy_sidecar: bool) -> ScanClass {
        let format = metadata::classify(meta, legacy_sidecar);
        let class = self.classify(key, &format);
        self.by_class.entry(class).or_default().add(size);
        let kid = format.kid().unwrap_or("-").to_string();
        self.by_kid.entry((kid, class)).or_default().add(size);
        class
    }

    /// The state of `kid` in the keyring the planner was made from.
    pub(crate) fn key_state(&self, kid: &str) -> Option<KeyState> {
        self.states.get(kid).copied()
    }

    pub(crate) fn classify(&self, key: &str, format: &ObjectFormat) -> ScanClass {
        if metadata::is_sidecar_key(key) {
            return ScanClass::Sidecar;
        }
        match format {
            ObjectFormat::Plaintext => ScanClass::Plaintext,
            ObjectFormat::Unreadable(_) => ScanClass::Unreadable,
            // Legacy objects always need new ciphertext; below the minimum version they are
            // also unreadable until the keyring admits them for migration.
            ObjectFormat::Legacy { .. } => ScanClass::NeedsReencrypt,
            ObjectFormat::Isec(_) if VERSION < self.min_version => ScanClass::NeedsReencrypt,
            ObjectFormat::Isec(env) => match self.states.get(env.kid()) {
                None => ScanClass::Unreadable,
                Some(KeyState::Disabled) => ScanClass::NeedsReencrypt,
                Some(_) if self.active.as_deref() == Some(env.kid()) => ScanClass::Current,
                Some(_) => ScanClass::NeedsRewrap,
            },
        }
    }

    /// Count and bytes of one class.
    #[must_use]
    pub fn tally(&self, class: ScanClass) -> Tally {
        self.by_class.get(&class).copied().unwrap_or_default()
    }

    /// `(kid, class, tally)` rows, sorted by kid then class; `-` stands for no kid.
    pub fn by_kid(&self) -> impl Iterator<Item = (&str, ScanClass, Tally)> {
        self.by_kid.iter().map(|((k, c), t)| (k.as_str(), *c, *t))
    }

    /// Objects and bytes that still need work (rewrap or re-encryption).
    #[must_use]
    pub fn remaining(&self) -> Tally {
        let a = self.tally(ScanClass::NeedsRewrap);
        let b = self.tally(ScanClass::NeedsReencrypt);
        Tally { objects: a.objects + b.objects, bytes: a.bytes.saturating_add(b.bytes) }
    }
}

#[cfg(test)]
mod class_name_tests {
    use super::ScanClass;

    #[test]
    fn every_class_is_found_by_its_name() {
        for c in ScanClass::ALL {
            assert_eq!(ScanClass::from_name(c.name()), Some(c));
        }
        assert_eq!(ScanClass::from_name("nope"), None);
    }
}
