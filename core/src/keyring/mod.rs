//! The keyring: KEKs by stable key id, their lifecycle states, and the one active key
//! (SPEC.md §10).
//!
//! Rotation of a KEK never touches object bodies: add the new key, make it active (the old
//! one becomes decrypt-only), rewrap envelopes in the background, then disable the old key.
//! Every step keeps serving reads and writes.

#[cfg(feature = "alloc")]
mod file;
mod task;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

#[cfg(any(feature = "getrandom", feature = "hazmat"))]
use crate::envelope::Params;
use crate::envelope::{Envelope, Kid};
use crate::error::{Error, Result};
use crate::kdf::ObjectKey;
use crate::recipient::{PrivateKey, PublicKey};
use crate::wrap::{Kek, KeyWrap, WrapAlg};

pub use task::{KeyOp, KeyOutput, KeyRequest, KeyStep, KeyTask};

/// Format version number given to the legacy proxy's objects for [`Keyring::set_min_version`].
pub const LEGACY_VERSION: u8 = 0;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Wraps new DEKs and unwraps old ones. At most one key is active.
    Active,
    /// Unwraps only: a retired key whose objects still await rewrap.
    DecryptOnly,
    /// Neither: kept so that its objects report `key_disabled` rather than `unknown_kid`.
    Disabled,
}

impl KeyState {
    /// Stable name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::DecryptOnly => "decrypt_only",
            Self::Disabled => "disabled",
        }
    }

    /// Parses a stable name.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an unknown name.
    pub fn from_name(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "decrypt_only" => Ok(Self::DecryptOnly),
            "disabled" => Ok(Self::Disabled),
            _ => Err(Error::InvalidParameter),
        }
    }
}

/// Where a key's material lives.
enum Source {
    /// A local KEK (raw bytes, or the legacy secret-string derivation).
    Local(Kek),
    /// A wrapper outside the process (a KMS) that answers synchronously.
    External(Box<dyn KeyWrap + Send + Sync>),
    /// A wrapper outside the process that the caller reaches itself, typically
    /// asynchronously: operations under this key stop at a [`KeyRequest`] and resume with
    /// the caller's answer.
    Deferred,
    /// A public-key recipient (SPEC.md §3.5): wraps with the public key, held here; opens
    /// with the private key, wherever it is.
    Recipient(PublicKey, Private),
}

/// Where a recipient's private key is.
enum Private {
    /// Nowhere in this keyring: the writer's case. Opening is `public_key_only`.
    Absent,
    /// Here.
    Local(PrivateKey),
    /// In a service that opens HPKE-wrapped DEKs synchronously (an HSM client).
    External(Box<dyn RecipientUnwrap + Send + Sync>),
    /// In a service the caller reaches itself: opening stops at a [`KeyRequest`].
    Deferred,
}

/// A service that holds a recipient's private key and opens wrapped DEKs with it (an HSM or
/// KMS that decapsulates): given the 80-byte wrapped DEK and the envelope's HPKE `info`
/// (SPEC.md §3.5), it returns the DEK, whose commitment core then checks.
pub trait RecipientUnwrap {
    /// Opens `wrapped` under `info`.
    ///
    /// # Errors
    /// [`Error::UnwrapFailed`] when it does not open; [`Error::ExternalWrapperFailed`] when the
    /// service fails.
    fn unwrap(&self, wrapped: &[u8], info: &[u8]) -> Result<crate::wrap::Dek>;
}

impl RecipientUnwrap for PrivateKey {
    fn unwrap(&self, wrapped: &[u8], info: &[u8]) -> Result<crate::wrap::Dek> {
        PrivateKey::unwrap(self, wrapped, info)
    }
}

/// The kind of key an entry holds, as `isec keys list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// A local 256-bit KEK (AES-KWP).
    Kek,
    /// The previous proxy's secret string (decrypt-only).
    Legacy,
    /// A KEK held by an external service (a KMS).
    External,
    /// A recipient's public key only: creates envelopes, opens none.
    PublicKey,
    /// A recipient's key pair, held here.
    PrivateKey,
    /// A recipient whose private key an external service holds.
    ExternalPrivateKey,
}

impl KeyKind {
    /// Stable name: `kek`, `legacy`, `external`, `public_key`, `private_key`,
    /// `external_private_key`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Kek => "kek",
            Self::Legacy => "legacy",
            Self::External => "external",
            Self::PublicKey => "public_key",
            Self::PrivateKey => "private_key",
            Self::ExternalPrivateKey => "external_private_key",
        }
    }
}

struct Entry {
    kid: String,
    state: KeyState,
    legacy: bool,
    source: Source,
    /// When the key was made, as its file records it (free text, RFC 3339 by convention).
    created: Option<String>,
    /// The previous proxy's secret string, kept only to write the keyring file back.
    legacy_secret: Option<zeroize::Zeroizing<String>>,
}

/// How core opens a DEK under one entry.
pub(crate) enum Opener<'a> {
    /// A KEK-family wrapper (local, legacy or KMS).
    Wrap(&'a dyn KeyWrap),
    /// A recipient's private key, here or in a synchronous service.
    Recipient(&'a dyn RecipientUnwrap),
    /// The caller answers.
    Caller,
}

/// How core wraps a new DEK under one entry.
pub(crate) enum Wrapper<'a> {
    /// A KEK-family wrapper.
    Wrap(&'a dyn KeyWrap),
    /// A recipient's public key.
    Recipient(&'a PublicKey),
    /// The caller answers.
    Caller,
}

impl Entry {
    /// The synchronous KEK-family wrapper, or `None` when the caller answers for this key.
    fn wrapper(&self) -> Option<&dyn KeyWrap> {
        match &self.source {
            Source::Local(k) => Some(k),
            Source::External(w) => Some(w.as_ref()),
            Source::Deferred | Source::Recipient(..) => None,
        }
    }

    fn kind(&self) -> KeyKind {
        match &self.source {
            Source::Local(_) if self.legacy => KeyKind::Legacy,
            Source::Local(_) => KeyKind::Kek,
            Source::External(_) | Source::Deferred => KeyKind::External,
            Source::Recipient(_, Private::Absent) => KeyKind::PublicKey,
            Source::Recipient(_, Private::Local(_)) => KeyKind::PrivateKey,
            Source::Recipient(_, Private::External(_) | Private::Deferred) => KeyKind::ExternalPrivateKey,
        }
    }
}

/// A set of KEKs by key id.
///
/// Opening an envelope, then rotating the KEK by rewrapping it (the object's body and DEK
/// stay as they are):
///
/// ```
/// # #[cfg(feature = "getrandom")] {
/// use isec_core::{Error, Kek, KeyState, Keyring, Params, RustCrypto, oneshot};
///
/// let mut ring = Keyring::new();
/// ring.add_kek("kek-2026", Kek::generate()?, KeyState::Active)?;
/// let (envelope, key) = ring.create_envelope(Params::default())?;
/// let body = oneshot::encrypt::<RustCrypto>(&key, b"payroll")?;
/// assert_eq!(oneshot::decrypt::<RustCrypto>(&ring.open(&envelope)?, &body)?, b"payroll");
///
/// // A new active key demotes the old one to decrypt-only.
/// ring.add_kek("kek-2027", Kek::generate()?, KeyState::Active)?;
/// assert_eq!(ring.state("kek-2026"), Some(KeyState::DecryptOnly));
///
/// // Rewrap: the same DEK under the active key, in a new envelope (a metadata-only copy in S3).
/// let rewrapped = ring.rewrap(&envelope)?;
/// assert_eq!(rewrapped.kid(), "kek-2027");
/// assert_eq!(oneshot::decrypt::<RustCrypto>(&ring.open(&rewrapped)?, &body)?, b"payroll");
///
/// // Once every envelope is rewrapped, the old key is disabled: what still names it fails.
/// ring.set_state("kek-2026", KeyState::Disabled)?;
/// assert_eq!(ring.open(&envelope).err(), Some(Error::KeyDisabled));
/// assert_eq!(ring.open(&rewrapped).map(|_| ()), Ok(()));
/// # }
/// # Ok::<(), isec_core::Error>(())
/// ```
#[derive(Default)]
pub struct Keyring {
    entries: Vec<Entry>,
    min_version: u8,
    /// The previous-proxy key for objects that record no kid (the proxy opened those with
    /// the accessing credential's secret).
    default_legacy: Option<String>,
}

impl core::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut l = f.debug_list();
        for e in &self.entries {
            l.entry(&(e.kid.as_str(), e.state.name()));
        }
        l.finish()
    }
}

/// One key's public description.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Lifecycle state.
    pub state: KeyState,
    /// Whether the key comes from the legacy secret-string derivation.
    pub legacy: bool,
    /// Whether an external wrapper holds the key (a KMS KEK, or a recipient's private key).
    pub external: bool,
    /// What kind of key it is.
    pub kind: KeyKind,
    /// A public-key recipient's public key.
    pub public_key: Option<PublicKey>,
    /// When the key was made, as its file records it.
    pub created: Option<String>,
}

impl Keyring {
    /// An empty keyring.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, kid: &str, state: KeyState, legacy: bool, source: Source) -> Result<()> {
        Kid::new(kid)?;
        if self.entries.iter().any(|e| e.kid == kid) {
            return Err(Error::DuplicateKid);
        }
        if state == KeyState::Active {
            self.demote_active();
        }
        self.entries.push(Entry { kid: kid.into(), state, legacy, source, created: None, legacy_secret: None });
        Ok(())
    }

    fn demote_active(&mut self) {
        for e in &mut self.entries {
            if e.state == KeyState::Active {
                e.state = KeyState::DecryptOnly;
            }
        }
    }

    /// Adds a raw 32-byte KEK. Adding an active key demotes the previous active key to
    /// decrypt-only, so exactly one key is ever active.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid key id, [`Error::DuplicateKid`] for one
    /// already in the keyring.
    pub fn add_kek(&mut self, kid: &str, kek: Kek, state: KeyState) -> Result<()> {
        self.insert(kid, state, false, Source::Local(kek))
    }

    /// Adds the legacy proxy's key, derived as SHA-256 of its configured secret string. It is
    /// always decrypt-only: an unsalted hash of a string is not fit to protect new objects.
    ///
    /// # Errors
    /// As [`Keyring::add_kek`].
    pub fn add_legacy_secret_string(&mut self, kid: &str, secret: &str) -> Result<()> {
        self.insert(kid, KeyState::DecryptOnly, true, Source::Local(Kek::legacy_from_secret_string(secret)))?;
        if let Some(e) = self.entries.last_mut() {
            e.legacy_secret = Some(zeroize::Zeroizing::new(secret.into()));
        }
        Ok(())
    }

    /// Adds an external wrapper (KMS) under `kid`.
    ///
    /// # Errors
    /// As [`Keyring::add_kek`].
    pub fn add_external(&mut self, kid: &str, wrapper: Box<dyn KeyWrap + Send + Sync>, state: KeyState) -> Result<()> {
        self.insert(kid, state, false, Source::External(wrapper))
    }

    /// Adds an external key (KMS) that the caller answers for: every operation under `kid`
    /// stops at a [`KeyRequest`] (see [`KeyTask`]) that the caller answers, e.g. after
    /// awaiting a network call, instead of core calling a wrapper.
    ///
    /// # Errors
    /// As [`Keyring::add_kek`].
    pub fn add_external_kid(&mut self, kid: &str, state: KeyState) -> Result<()> {
        self.insert(kid, state, false, Source::Deferred)
    }

    /// Adds a public-key recipient by its public key only (SPEC.md §3.5): it creates envelopes
    /// when active; opening one of its envelopes is `public_key_only`. A writer that must never
    /// read holds only this.
    ///
    /// # Errors
    /// As [`Keyring::add_kek`].
    pub fn add_public_key(&mut self, kid: &str, public: PublicKey, state: KeyState) -> Result<()> {
        self.insert(kid, state, false, Source::Recipient(public, Private::Absent))
    }

    /// Adds a public-key recipient with its private key: it opens and rewraps its envelopes,
    /// and creates them when active.
    ///
    /// # Errors
    /// As [`Keyring::add_kek`].
    pub fn add_private_key(&mut self, kid: &str, private: PrivateKey, state: KeyState) -> Result<()> {
        self.insert(kid, state, false, Source::Recipient(private.public_key(), Private::Local(private)))
    }

    /// Adds a public-key recipient whose private key a service holds (an HSM client that
    /// opens wrapped DEKs synchronously).
    ///
    /// # Errors
    /// As [`Keyring::add_kek`].
    pub fn add_private_key_external(
        &mut self,
        kid: &str,
        public: PublicKey,
        opener: Box<dyn RecipientUnwrap + Send + Sync>,
        state: KeyState,
    ) -> Result<()> {
        self.insert(kid, state, false, Source::Recipient(public, Private::External(opener)))
    }

    /// Adds a public-key recipient whose private key a service holds that the caller reaches
    /// itself: opening stops at a [`KeyRequest`] with the wrapped DEK and the HPKE `info`,
    /// answered with the DEK (see [`KeyTask`]).
    ///
    /// # Errors
    /// As [`Keyring::add_kek`].
    pub fn add_private_key_deferred(&mut self, kid: &str, public: PublicKey, state: KeyState) -> Result<()> {
        self.insert(kid, state, false, Source::Recipient(public, Private::Deferred))
    }

    /// Records when `kid` was made (shown by `isec keys list`, kept in the keyring file).
    ///
    /// # Errors
    /// [`Error::UnknownKid`].
    pub fn set_created(&mut self, kid: &str, created: &str) -> Result<()> {
        let i = self.entries.iter().position(|e| e.kid == kid).ok_or(Error::UnknownKid)?;
        self.entries[i].created = Some(created.into());
        Ok(())
    }

    /// Changes a key's state. Making a key active demotes the previous active key; legacy
    /// keys cannot become active.
    ///
    /// # Errors
    /// [`Error::UnknownKid`]; [`Error::InvalidParameter`] to activate a legacy key.
    pub fn set_state(&mut self, kid: &str, state: KeyState) -> Result<()> {
        let i = self.entries.iter().position(|e| e.kid == kid).ok_or(Error::UnknownKid)?;
        if state == KeyState::Active {
            if self.entries[i].legacy {
                return Err(Error::InvalidParameter);
            }
            self.demote_active();
        }
        self.entries[i].state = state;
        Ok(())
    }

    /// Refuses to decrypt objects whose format version is below `version`
    /// ([`LEGACY_VERSION`] for the legacy proxy's objects, 1 for isec v1).
    pub fn set_min_version(&mut self, version: u8) {
        self.min_version = version;
    }

    /// The minimum format version.
    #[must_use]
    pub fn min_version(&self) -> u8 {
        self.min_version
    }

    /// The keys, in insertion order.
    #[must_use]
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.entries
            .iter()
            .map(|e| KeyInfo {
                kid: e.kid.clone(),
                state: e.state,
                legacy: e.legacy,
                external: matches!(e.kind(), KeyKind::External | KeyKind::ExternalPrivateKey),
                kind: e.kind(),
                public_key: match &e.source {
                    Source::Recipient(pk, _) => Some(*pk),
                    _ => None,
                },
                created: e.created.clone(),
            })
            .collect()
    }

    /// The active key id.
    ///
    /// # Errors
    /// [`Error::KeyNotActive`] if no key is active.
    pub fn active_kid(&self) -> Result<&str> {
        self.entries.iter().find(|e| e.state == KeyState::Active).map(|e| e.kid.as_str()).ok_or(Error::KeyNotActive)
    }

    /// The state of `kid`, if present.
    #[must_use]
    pub fn state(&self, kid: &str) -> Option<KeyState> {
        self.entries.iter().find(|e| e.kid == kid).map(|e| e.state)
    }

    fn entry(&self, kid: &str) -> Result<&Entry> {
        self.entries.iter().find(|e| e.kid == kid).ok_or(Error::UnknownKid)
    }

    /// The wrapper that may unwrap isec envelopes under `kid`, after the state and kind
    /// checks.
    ///
    /// A previous-proxy secret never wraps an isec DEK (it can never be active), so an isec
    /// envelope naming one is a forgery by whoever knows SHA-256 of the secret, which is
    /// brute-forceable offline when the secret is weak: it is refused before any unwrap.
    ///
    /// `None` for a key the caller answers for ([`Keyring::add_external_kid`]).
    ///
    /// # Errors
    /// [`Error::UnknownKid`], [`Error::KeyDisabled`], [`Error::WrongKeyKind`] for a legacy key
    /// or a public-key recipient (whose envelopes [`Keyring::open`] opens).
    pub fn unwrapper(&self, kid: &str) -> Result<Option<&dyn KeyWrap>> {
        let e = self.entry(kid)?;
        if e.state == KeyState::Disabled {
            return Err(Error::KeyDisabled);
        }
        if e.legacy || matches!(e.source, Source::Recipient(..)) {
            return Err(Error::WrongKeyKind);
        }
        Ok(e.wrapper())
    }

    /// How the DEK of `envelope` is opened, after the keyring's checks (SPEC.md §10.1): the
    /// key's state, then its kind against the envelope's wrap algorithm. A recipient opens
    /// only HPKE envelopes and KEKs only the others, so a wrapped DEK is never handed to a key
    /// of the other family.
    ///
    /// # Errors
    /// [`Error::UnknownKid`], [`Error::KeyDisabled`], [`Error::WrongKeyKind`],
    /// [`Error::PublicKeyOnly`] for a recipient without its private key,
    /// [`Error::UnsupportedSuite`] for a caller-answered KEK and a local wrap algorithm.
    pub(crate) fn opener(&self, envelope: &Envelope) -> Result<Opener<'_>> {
        let e = self.entry(envelope.kid())?;
        if e.state == KeyState::Disabled {
            return Err(Error::KeyDisabled);
        }
        let hpke = envelope.wrap_alg() == WrapAlg::HpkeX25519;
        match &e.source {
            Source::Recipient(_, private) if hpke => match private {
                Private::Absent => Err(Error::PublicKeyOnly),
                Private::Local(k) => Ok(Opener::Recipient(k)),
                Private::External(o) => Ok(Opener::Recipient(o.as_ref())),
                Private::Deferred => Ok(Opener::Caller),
            },
            Source::Recipient(..) => Err(Error::WrongKeyKind),
            _ if hpke || e.legacy => Err(Error::WrongKeyKind),
            Source::Deferred if envelope.wrap_alg() != WrapAlg::External => Err(Error::UnsupportedSuite),
            Source::Deferred => Ok(Opener::Caller),
            _ => e.wrapper().map(Opener::Wrap).ok_or(Error::WrongKeyKind),
        }
    }

    /// Checks that `envelope` could be opened with this keyring (its key's state and kind),
    /// without unwrapping: what a copy plan needs before it commits to a re-encryption.
    ///
    /// # Errors
    /// [`Error::UnknownKid`], [`Error::KeyDisabled`], [`Error::WrongKeyKind`],
    /// [`Error::PublicKeyOnly`] for a recipient without its private key,
    /// [`Error::UnsupportedSuite`] for a caller-answered KEK and a local wrap algorithm.
    pub fn check_open(&self, envelope: &Envelope) -> Result<()> {
        self.opener(envelope).map(|_| ())
    }

    /// The wrapper for new wrappings under `kid`, which must be the active key: envelopes
    /// are only ever created under the active key. `None` for a key the caller answers for.
    ///
    /// # Errors
    /// [`Error::UnknownKid`], [`Error::KeyNotActive`].
    fn wrapper_for(&self, kid: &str) -> Result<Wrapper<'_>> {
        let e = self.entry(kid)?;
        if e.state != KeyState::Active {
            return Err(Error::KeyNotActive);
        }
        Ok(match &e.source {
            Source::Recipient(pk, _) => Wrapper::Recipient(pk),
            _ => e.wrapper().map_or(Wrapper::Caller, Wrapper::Wrap),
        })
    }

    /// The local KEK of `kid` for reading legacy objects, after the version and state checks.
    ///
    /// Only keys added with [`Keyring::add_legacy_secret_string`] qualify: an isec KEK
    /// used as a previous-proxy key would let anyone holding an old proxy object's
    /// metadata probe isec keys with it.
    ///
    /// # Errors
    /// [`Error::VersionRefused`] if legacy objects are below the minimum version,
    /// [`Error::UnknownKid`], [`Error::KeyDisabled`], [`Error::WrongKeyKind`] for a key that
    /// is not a previous-proxy secret.
    pub fn legacy_kek(&self, kid: &str) -> Result<&Kek> {
        if self.min_version > LEGACY_VERSION {
            return Err(Error::VersionRefused);
        }
        let e = self.entry(kid)?;
        if e.state == KeyState::Disabled {
            return Err(Error::KeyDisabled);
        }
        match &e.source {
            Source::Local(k) if e.legacy => Ok(k),
            _ => Err(Error::WrongKeyKind),
        }
    }

    /// Names the previous-proxy key used for objects that record no kid: the proxy's oldest
    /// objects carry no `isec-kid` because it opened them with the accessing credential's
    /// secret.
    ///
    /// # Errors
    /// [`Error::UnknownKid`] if no key has this kid, [`Error::WrongKeyKind`] if it is not a
    /// previous-proxy secret.
    pub fn set_default_legacy(&mut self, kid: &str) -> Result<()> {
        if !self.entry(kid)?.legacy {
            return Err(Error::WrongKeyKind);
        }
        self.default_legacy = Some(kid.into());
        Ok(())
    }

    /// The kid that opens a previous-proxy object: `kid` if given, else the one the object
    /// records, else the default set with [`Keyring::set_default_legacy`].
    ///
    /// # Errors
    /// [`Error::UnknownKid`] if none of them names a key.
    pub fn legacy_kid_for<'a>(
        &'a self,
        object: &'a crate::legacy::LegacyObject,
        kid: Option<&'a str>,
    ) -> Result<&'a str> {
        kid.or(object.kid()).or(self.default_legacy.as_deref()).ok_or(Error::UnknownKid)
    }

    /// Opens a legacy proxy object with the legacy key of `kid`, of the object's own kid, or
    /// of the default legacy key, in that order.
    ///
    /// # Errors
    /// [`Error::UnknownKid`] if none names a key, else as [`Keyring::legacy_kek`] and
    /// [`crate::legacy::LegacyKey::open_object`].
    pub fn open_legacy(
        &self,
        object: &crate::legacy::LegacyObject,
        kid: Option<&str>,
    ) -> Result<crate::legacy::LegacyKey> {
        let kid = self.legacy_kid_for(object, kid)?;
        crate::legacy::LegacyKey::open_object(self.legacy_kek(kid)?, object)
    }

    /// A new envelope under the active key.
    ///
    /// # Errors
    /// [`Error::KeyNotActive`] without an active key, else as [`Envelope::create`];
    /// [`Error::ExternalWrapperFailed`] for a key the caller answers for (use
    /// [`Keyring::begin_create`]).
    #[cfg(feature = "getrandom")]
    pub fn create_envelope(&self, params: Params) -> Result<(Envelope, ObjectKey)> {
        self.begin_create(params)?.run(self)?.created()
    }

    /// [`Keyring::create_envelope`] with a caller-chosen DEK and salt.
    ///
    /// # Errors
    /// As [`Keyring::create_envelope`].
    #[cfg(feature = "hazmat")]
    pub fn create_envelope_with(
        &self,
        params: Params,
        dek: &crate::wrap::Dek,
        salt: [u8; 32],
    ) -> Result<(Envelope, ObjectKey)> {
        KeyTask::create(self, params, dek.clone(), salt)?.run(self)?.created()
    }

    /// Opens an envelope with the key its kid names.
    ///
    /// # Errors
    /// [`Error::VersionRefused`], [`Error::UnknownKid`], [`Error::KeyDisabled`], then as
    /// [`Envelope::open`]; [`Error::ExternalWrapperFailed`] for a key the caller answers for
    /// (use [`Keyring::begin_open`]).
    pub fn open(&self, envelope: &Envelope) -> Result<ObjectKey> {
        self.begin_open(envelope)?.run(self)?.key()
    }

    /// The same object's envelope under the active key: the DEK is unwrapped with the key
    /// the envelope names, checked against the commitment, and wrapped again. Neither the
    /// DEK nor the object body leaves core.
    ///
    /// # Errors
    /// As [`Keyring::open`] and [`Keyring::active_kid`].
    pub fn rewrap(&self, envelope: &Envelope) -> Result<Envelope> {
        self.begin_rewrap(envelope, None)?.run(self)?.envelope()
    }

    /// [`Keyring::rewrap`] to a named key, which must be the active key: envelopes are only
    /// ever created under the active key.
    ///
    /// # Errors
    /// [`Error::KeyNotActive`] if `kid` is not active, else as [`Keyring::open`].
    pub fn rewrap_to(&self, envelope: &Envelope, kid: &str) -> Result<Envelope> {
        self.begin_rewrap(envelope, Some(kid))?.run(self)?.envelope()
    }

    /// Starts opening `envelope`: the task asks for the unwrap of its DEK under the kid it
    /// names when that key is answered by the caller.
    ///
    /// # Errors
    /// [`Error::VersionRefused`].
    pub fn begin_open(&self, envelope: &Envelope) -> Result<KeyTask> {
        KeyTask::open(self, envelope)
    }

    /// Starts creating an envelope under the active key, around a fresh DEK and salt of its
    /// own: every create wraps its own DEK.
    ///
    /// # Errors
    /// [`Error::KeyNotActive`] without an active key, [`Error::RandomnessUnavailable`], and
    /// the parameters' errors.
    #[cfg(feature = "getrandom")]
    pub fn begin_create(&self, params: Params) -> Result<KeyTask> {
        KeyTask::create(self, params, crate::wrap::Dek::generate()?, crate::random::array()?)
    }

    /// Starts rewrapping `envelope` to `to` (default: the active key), which must be the
    /// active key.
    ///
    /// # Errors
    /// [`Error::VersionRefused`], [`Error::UnknownKid`], [`Error::KeyNotActive`].
    pub fn begin_rewrap(&self, envelope: &Envelope, to: Option<&str>) -> Result<KeyTask> {
        let to = match to {
            Some(kid) => kid,
            None => self.active_kid()?,
        };
        KeyTask::rewrap(self, envelope, to)
    }
}
