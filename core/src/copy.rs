//! The copy decision: how to copy an object as cheaply as the format allows (SPEC.md §12).
//!
//! Nothing in an isec (or legacy proxy) ciphertext depends on the object's name, so a byte
//! copy is always a valid object. What can force more work is metadata: a REPLACE directive
//! must carry the envelope over, a change of key needs a rewrapped envelope, S3 caps a single
//! CopyObject at 5 GiB, and some policies (DEK rotation, legacy migration, encrypting plain
//! objects) need new ciphertext. This is a pure function of metadata, sizes and the keyring:
//! it never reads object bytes, and it picks the cheapest valid plan.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::envelope::{Envelope, META_ENVELOPE, META_KID};
use crate::error::{Error, Result};
use crate::header::Layout;
use crate::keyring::Keyring;
use crate::metadata::{self, ISEC_KEYS, LEGACY_KEYS, LegacyKind, META_ETAG, META_TABLE, ObjectFormat};
use crate::shape::Shape;

/// S3's limits that shape a copy; smaller values make tests cheap.
///
/// Non-exhaustive so that a limit S3 adds later is not a breaking change: start from
/// [`CopyLimits::default`] (S3's own values) and override with the `with_*` setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyLimits {
    /// Largest object one CopyObject may copy (5 GiB).
    pub single_copy_max: u64,
    /// Smallest UploadPartCopy part except the last (5 MiB).
    pub part_min: u64,
    /// Largest UploadPartCopy part (5 GiB).
    pub part_max: u64,
    /// Most parts in one multipart upload (10000).
    pub max_parts: u32,
    /// User-metadata budget in bytes (2 KB).
    pub metadata_max: usize,
}

impl CopyLimits {
    with_setters! {
        /// These limits with another [`single_copy_max`](Self::single_copy_max).
        with_single_copy_max => single_copy_max: u64;
        /// These limits with another [`part_min`](Self::part_min).
        with_part_min => part_min: u64;
        /// These limits with another [`part_max`](Self::part_max).
        with_part_max => part_max: u64;
        /// These limits with another [`max_parts`](Self::max_parts).
        with_max_parts => max_parts: u32;
        /// These limits with another [`metadata_max`](Self::metadata_max).
        with_metadata_max => metadata_max: usize;
    }

    /// Refuses limits no S3 accepts, before any plan is sized by them: a caller-supplied
    /// `max_parts` of four billion must not turn into four billion ranges.
    fn check(&self) -> Result<()> {
        let sane = self.part_max >= 1
            && self.part_min <= self.part_max
            && (1..=crate::limits::MAX_PARTS).contains(&self.max_parts);
        if sane { Ok(()) } else { Err(Error::InvalidParameter) }
    }
}

impl Default for CopyLimits {
    fn default() -> Self {
        Self { single_copy_max: 5 << 30, part_min: 5 << 20, part_max: 5 << 30, max_parts: 10_000, metadata_max: 2048 }
    }
}

/// The S3 metadata directive of the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Keep the source's metadata.
    Copy,
    /// Replace it with new user metadata.
    Replace,
}

impl Directive {
    /// The directive S3 names `name` (`COPY` or `REPLACE`), if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Copy, Self::Replace].into_iter().find(|d| d.name() == name)
    }

    /// S3's name of the directive.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Copy => "COPY",
            Self::Replace => "REPLACE",
        }
    }
}

/// Everything the decision looks at.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CopyRequest<'a> {
    /// The source's user metadata as HEAD returns it.
    pub source_metadata: &'a [(&'a str, &'a str)],
    /// The source's stored (ciphertext) size.
    pub source_size: u64,
    /// Whether the source has a sidecar object (isec segment table, or the legacy proxy's
    /// object-keyed sidecar).
    pub source_sidecar: bool,
    /// For table-layout sources above the single-copy limit: the object's shape, so part
    /// boundaries fall on frame boundaries.
    pub source_shape: Option<&'a Shape>,
    /// The metadata directive.
    pub directive: Directive,
    /// New user metadata for [`Directive::Replace`].
    pub new_metadata: &'a [(&'a str, &'a str)],
    /// Key id the destination must be under (`None`: keep the source's).
    pub target_kid: Option<&'a str>,
    /// Give the destination a new DEK (re-encrypt).
    pub rotate_dek: bool,
    /// Convert legacy proxy objects to isec while copying.
    pub migrate_legacy: bool,
    /// The destination must be encrypted even if the source is not.
    pub require_encryption: bool,
    /// S3 limits.
    pub limits: CopyLimits,
    /// The source's envelope already rewrapped under `target_kid`, by a caller whose key
    /// answers asynchronously (see [`pending_rewrap`]); `None`: the keyring rewraps.
    pub rewrapped: Option<&'a Envelope>,
}

impl<'a> CopyRequest<'a> {
    /// A request with the defaults: COPY directive, no key change, S3's limits.
    #[must_use]
    pub fn new(source_metadata: &'a [(&'a str, &'a str)], source_size: u64) -> Self {
        Self {
            source_metadata,
            source_size,
            source_sidecar: false,
            source_shape: None,
            directive: Directive::Copy,
            new_metadata: &[],
            target_kid: None,
            rotate_dek: false,
            migrate_legacy: false,
            require_encryption: false,
            limits: CopyLimits::default(),
            rewrapped: None,
        }
    }
}

/// The kind of copy, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CopyAction {
    /// CopyObject with the COPY directive.
    Native,
    /// CopyObject with the REPLACE directive and the metadata in the plan.
    NativeReplace,
    /// CreateMultipartUpload with the plan's metadata, UploadPartCopy per range, Complete.
    PartCopy,
    /// Download, decrypt, encrypt, upload: only when nothing cheaper is valid.
    Reencrypt,
}

impl CopyAction {
    /// Stable name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::NativeReplace => "native_replace",
            Self::PartCopy => "part_copy",
            Self::Reencrypt => "reencrypt",
        }
    }
}

/// Why a copy must re-encrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReencryptReason {
    /// The caller asked for a new DEK.
    DekRotation,
    /// The caller asked to migrate a legacy proxy object to isec.
    LegacyMigration,
    /// A legacy object must change key: its format has no rewrap.
    LegacyKeyChange,
    /// The source is plaintext and the destination must be encrypted.
    EncryptPlaintext,
}

impl ReencryptReason {
    /// Stable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::DekRotation => "dek_rotation",
            Self::LegacyMigration => "legacy_migration",
            Self::LegacyKeyChange => "legacy_key_change",
            Self::EncryptPlaintext => "encrypt_plaintext",
        }
    }
}

/// Which companion object a plan copies beside the object itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sidecar {
    /// isec's segment table, `<key>.isec-table` (SPEC.md §6.3).
    Table,
    /// The legacy proxy's `.s3proxy-internal/<key>.meta` (SPEC.md §11).
    Legacy,
}

impl Sidecar {
    /// The sidecar's object key for the object at `object_key`.
    #[must_use]
    pub fn key(&self, object_key: &str) -> String {
        match self {
            Self::Table => metadata::table_sidecar_key(object_key),
            Self::Legacy => metadata::legacy_sidecar_key(object_key),
        }
    }

    /// Stable name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Legacy => "legacy",
        }
    }

    /// The sidecar [`Sidecar::name`] gives `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Table, Self::Legacy].into_iter().find(|k| k.name() == name)
    }
}

/// The decision.
///
/// Non-exhaustive so that a field added later is not a breaking change; a caller that gets a
/// plan back from its host language rebuilds it with [`CopyPlan::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyPlan {
    /// What to do.
    pub action: CopyAction,
    /// The destination's complete user metadata, when it is not the source's as-is. For
    /// [`CopyAction::Reencrypt`]: the user metadata only, to which the new envelope's keys are
    /// added with [`metadata::object_metadata`].
    pub metadata: Option<Vec<(String, String)>>,
    /// Source byte ranges `[start, end)` for UploadPartCopy, in part order.
    pub ranges: Vec<(u64, u64)>,
    /// Whether the source's sidecar must be copied to the destination's sidecar key.
    pub copy_sidecar: bool,
    /// Which sidecar, when `copy_sidecar`: its keys come from [`Sidecar::key`], first the
    /// source's then the destination's. Copied before the object, which is unreadable without it.
    pub sidecar: Option<Sidecar>,
    /// Whether the plan's envelope was rewrapped under another key.
    pub rewrapped: bool,
    /// Why, for [`CopyAction::Reencrypt`].
    pub reason: Option<ReencryptReason>,
    /// S3 requests the plan makes (sidecar copy included).
    pub requests: u64,
    /// Object bytes that pass through the client (down plus up).
    pub client_bytes: u64,
}

impl CopyPlan {
    /// A plan from what executing it needs (what [`crate::s3::copy_steps`] reads), for a plan
    /// a binding handed out and takes back from its host language. The fields that only
    /// describe the decision (`rewrapped`, `reason`, `requests`, `client_bytes`) are empty.
    #[must_use]
    pub fn new(
        action: CopyAction,
        metadata: Option<Vec<(String, String)>>,
        ranges: Vec<(u64, u64)>,
        copy_sidecar: bool,
        sidecar: Option<Sidecar>,
    ) -> Self {
        Self {
            action,
            metadata,
            ranges,
            copy_sidecar,
            sidecar,
            rewrapped: false,
            reason: None,
            requests: 0,
            client_bytes: 0,
        }
    }
}

/// Decides how to copy. `keyring` is needed only when a key must change or the source must
/// be re-encrypted; the decision checks that the keyring can do what the plan needs.
///
/// ```
/// # #[cfg(feature = "getrandom")] {
/// use isec_core::copy::{self, CopyAction, CopyRequest, Directive, ReencryptReason};
/// use isec_core::{Kek, KeyState, Keyring, Params, Shape, metadata};
///
/// let mut ring = Keyring::new();
/// ring.add_kek("kek-2026", Kek::generate()?, KeyState::Active)?;
/// let (envelope, _key) = ring.create_envelope(Params::default())?;
/// // The source as HEAD returns it: user metadata with the envelope, and its size.
/// let head = metadata::object_metadata(&[("owner", "finance")], &envelope);
/// let head: Vec<(&str, &str)> = head.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
/// let size = Shape::from_plaintext_len(envelope.header(), 1 << 20)?.ciphertext_len();
///
/// // A byte copy is a valid object: one CopyObject, no object byte through the client.
/// let plan = copy::decide(&CopyRequest::new(&head, size), Some(&ring))?;
/// assert_eq!((plan.action, plan.requests, plan.client_bytes), (CopyAction::Native, 1, 0));
///
/// // REPLACE carries the envelope into the new metadata.
/// let mut req = CopyRequest::new(&head, size);
/// req.directive = Directive::Replace;
/// req.new_metadata = &[("owner", "audit")];
/// let plan = copy::decide(&req, Some(&ring))?;
/// assert_eq!(plan.action, CopyAction::NativeReplace);
/// let meta = plan.metadata.unwrap_or_default();
/// assert!(meta.iter().any(|(k, v)| k == "isec" && *v == envelope.to_text()));
///
/// // Above CopyObject's 5 GiB: UploadPartCopy ranges that fall on frame boundaries.
/// let big = Shape::from_plaintext_len(envelope.header(), 6 << 30)?.ciphertext_len();
/// let plan = copy::decide(&CopyRequest::new(&head, big), Some(&ring))?;
/// assert_eq!(plan.action, CopyAction::PartCopy);
/// assert_eq!(plan.ranges.last().map(|r| r.1), Some(big));
///
/// // A new DEK is the one thing that needs the bytes.
/// let mut req = CopyRequest::new(&head, size);
/// req.rotate_dek = true;
/// let plan = copy::decide(&req, Some(&ring))?;
/// assert_eq!((plan.action, plan.reason), (CopyAction::Reencrypt, Some(ReencryptReason::DekRotation)));
/// # }
/// # Ok::<(), isec_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::UnknownKid`], [`Error::KeyDisabled`], [`Error::KeyNotActive`] when the keyring
/// cannot do the plan; [`Error::LimitExceeded`] when the metadata would exceed S3's budget or
/// the parts S3's count; the source's own error when its metadata is unreadable and the copy
/// needs more than a byte copy.
pub fn decide(req: &CopyRequest<'_>, keyring: Option<&Keyring>) -> Result<CopyPlan> {
    req.limits.check()?;
    let format = metadata::classify(req.source_metadata, req.source_sidecar);
    match format {
        ObjectFormat::Plaintext => plaintext(req),
        ObjectFormat::Isec(env) => isec(req, &env, keyring),
        ObjectFormat::Legacy { kid, kind } => legacy(req, kid.as_deref(), &kind, keyring),
        ObjectFormat::Unreadable(e) => {
            // A byte copy preserves even what we cannot parse; anything else would need it.
            if req.directive == Directive::Copy
                && req.target_kid.is_none()
                && !req.rotate_dek
                && req.source_size <= req.limits.single_copy_max
            {
                Ok(native(req, None, req.source_sidecar.then_some(Sidecar::Legacy), false))
            } else {
                Err(e)
            }
        }
    }
}

/// The rewrap [`decide`] would make for `req`: the source's envelope and the key it moves
/// to. A caller whose keys answer asynchronously runs it first
/// ([`Keyring::begin_rewrap`]) and passes the result as [`CopyRequest::rewrapped`], so the
/// decision itself needs no key.
#[must_use]
pub fn pending_rewrap<'a>(req: &CopyRequest<'a>) -> Option<(Envelope, &'a str)> {
    if req.rotate_dek {
        return None;
    }
    match (metadata::classify(req.source_metadata, req.source_sidecar), req.target_kid) {
        (ObjectFormat::Isec(env), Some(t)) if t != env.kid() => Some((*env, t)),
        _ => None,
    }
}

fn plaintext(req: &CopyRequest<'_>) -> Result<CopyPlan> {
    if req.require_encryption {
        return Ok(reencrypt(req, ReencryptReason::EncryptPlaintext));
    }
    let meta = match req.directive {
        Directive::Copy => None,
        Directive::Replace => Some(metadata::merge(req.new_metadata, &[], &[])),
    };
    plan_bytes(req, meta, None, false, &[], byte_ranges)
}

fn isec(req: &CopyRequest<'_>, env: &Envelope, keyring: Option<&Keyring>) -> Result<CopyPlan> {
    if req.rotate_dek {
        let ring = keyring.ok_or(Error::UnknownKid)?;
        ring.check_open(env)?;
        ring.active_kid()?;
        return Ok(reencrypt(req, ReencryptReason::DekRotation));
    }
    let (env, rewrapped) = match req.target_kid {
        Some(t) if t != env.kid() => match req.rewrapped {
            // Only this object's envelope under the target key stands in for the rewrap.
            Some(r) if r.kid() == t && r.same_dek_as(env) => (r.clone(), true),
            Some(_) => return Err(Error::InvalidParameter),
            None => (keyring.ok_or(Error::UnknownKid)?.rewrap_to(env, t)?, true),
        },
        _ => (env.clone(), false),
    };
    let mut carry =
        alloc::vec![(META_ENVELOPE.to_string(), env.to_text()), (META_KID.to_string(), env.kid().to_string())];
    // The table and the plaintext's ETag describe bytes a copy keeps.
    for k in [META_TABLE, META_ETAG] {
        if let Some(v) = metadata::get(req.source_metadata, k) {
            carry.push((k.to_string(), v.to_string()));
        }
    }
    let sidecar = (env.header().layout == Layout::Table && req.source_sidecar).then_some(Sidecar::Table);
    let meta = (req.directive == Directive::Replace || rewrapped).then(|| base_metadata(req, &carry, &ISEC_KEYS));
    let header = *env.header();
    let shape = match (header.layout, req.source_shape) {
        (Layout::Table, s) => s.cloned(),
        _ => Some(Shape::from_ciphertext_len(&header, req.source_size)?),
    };
    let mut plan = plan_bytes(req, meta, sidecar, rewrapped, &carry, |size, limits| match &shape {
        Some(s) => frame_ranges(s, size, limits),
        None => byte_ranges(size, limits),
    })?;
    plan.rewrapped = rewrapped;
    Ok(plan)
}

fn legacy(req: &CopyRequest<'_>, kid: Option<&str>, kind: &LegacyKind, keyring: Option<&Keyring>) -> Result<CopyPlan> {
    let key_change = req.target_kid.is_some_and(|t| Some(t) != kid);
    if req.migrate_legacy || req.rotate_dek || key_change {
        if let (Some(ring), Some(k)) = (keyring, kid) {
            ring.legacy_kek(k)?;
            ring.active_kid()?;
        }
        let reason = if req.migrate_legacy || req.rotate_dek {
            ReencryptReason::LegacyMigration
        } else {
            ReencryptReason::LegacyKeyChange
        };
        return Ok(reencrypt(req, reason));
    }
    let carry: Vec<(String, String)> = LEGACY_KEYS
        .iter()
        .filter_map(|k| metadata::get(req.source_metadata, k).map(|v| ((*k).to_string(), v.to_string())))
        .collect();
    let sidecar = (matches!(kind, LegacyKind::SidecarOnly)
        || (req.source_sidecar && !matches!(kind, LegacyKind::Staged { .. })))
    .then_some(Sidecar::Legacy);
    let meta = (req.directive == Directive::Replace).then(|| base_metadata(req, &carry, &LEGACY_KEYS));
    plan_bytes(req, meta, sidecar, false, &carry, byte_ranges)
}

/// The destination's metadata: the user's (new, or the source's for COPY) with the format's
/// keys set from `carry`.
fn base_metadata(req: &CopyRequest<'_>, carry: &[(String, String)], reserved: &[&str]) -> Vec<(String, String)> {
    let user = match req.directive {
        Directive::Replace => req.new_metadata,
        Directive::Copy => req.source_metadata,
    };
    metadata::merge(user, carry, reserved)
}

type Ranger<'r> = dyn Fn(u64, &CopyLimits) -> Result<Vec<(u64, u64)>> + 'r;

fn plan_bytes(
    req: &CopyRequest<'_>,
    meta: Option<Vec<(String, String)>>,
    sidecar: Option<Sidecar>,
    rewrapped: bool,
    carry: &[(String, String)],
    ranger: impl Fn(u64, &CopyLimits) -> Result<Vec<(u64, u64)>>,
) -> Result<CopyPlan> {
    let ranger: &Ranger<'_> = &ranger;
    if let Some(m) = &meta
        && metadata::metadata_size(m) > req.limits.metadata_max
    {
        return Err(Error::LimitExceeded);
    }
    if req.source_size <= req.limits.single_copy_max {
        return Ok(native(req, meta, sidecar, rewrapped));
    }
    // A multipart upload takes its metadata at creation: always explicit.
    let meta = meta.unwrap_or_else(|| base_metadata(req, carry, &[]));
    let ranges = ranger(req.source_size, &req.limits)?;
    Ok(CopyPlan {
        action: CopyAction::PartCopy,
        metadata: Some(meta),
        requests: 2 + ranges.len() as u64 + u64::from(sidecar.is_some()),
        ranges,
        copy_sidecar: sidecar.is_some(),
        sidecar,
        rewrapped,
        reason: None,
        client_bytes: 0,
    })
}

fn native(
    _req: &CopyRequest<'_>,
    meta: Option<Vec<(String, String)>>,
    sidecar: Option<Sidecar>,
    rewrapped: bool,
) -> CopyPlan {
    CopyPlan {
        action: if meta.is_some() { CopyAction::NativeReplace } else { CopyAction::Native },
        metadata: meta,
        ranges: Vec::new(),
        copy_sidecar: sidecar.is_some(),
        sidecar,
        rewrapped,
        reason: None,
        requests: 1 + u64::from(sidecar.is_some()),
        client_bytes: 0,
    }
}

fn reencrypt(req: &CopyRequest<'_>, reason: ReencryptReason) -> CopyPlan {
    let size = req.source_size;
    // Estimates only, saturating: a hostile size must not overflow them.
    let puts = if size <= req.limits.single_copy_max {
        1
    } else {
        size.div_ceil(req.limits.part_max.max(1)).saturating_add(2)
    };
    let user = match req.directive {
        Directive::Replace => req.new_metadata,
        Directive::Copy => req.source_metadata,
    };
    CopyPlan {
        action: CopyAction::Reencrypt,
        metadata: Some(metadata::user_metadata(user)),
        ranges: Vec::new(),
        copy_sidecar: false,
        sidecar: None,
        rewrapped: false,
        reason: Some(reason),
        requests: puts.saturating_add(1),
        client_bytes: size.saturating_mul(2),
    }
}

/// Ranges of at most `part_max` bytes, for sources whose frame boundaries do not matter.
fn byte_ranges(size: u64, limits: &CopyLimits) -> Result<Vec<(u64, u64)>> {
    let step = limits.part_max.max(1);
    // Refuse before allocating: a hostile size must not make us build billions of ranges.
    if size.div_ceil(step) > u64::from(limits.max_parts) {
        return Err(Error::LimitExceeded);
    }
    let ranges: Vec<(u64, u64)> = (0..size.div_ceil(step)).map(|i| (i * step, ((i + 1) * step).min(size))).collect();
    check_parts(&ranges, limits)?;
    Ok(ranges)
}

/// Ranges of at most `part_max` bytes that start and end on frame boundaries.
fn frame_ranges(shape: &Shape, size: u64, limits: &CopyLimits) -> Result<Vec<(u64, u64)>> {
    if shape.ciphertext_len() != size {
        return Err(Error::InvalidParameter);
    }
    let mut ranges = Vec::new();
    let mut start = 0u64;
    while start < size {
        let end = if size - start <= limits.part_max { size } else { shape.ct_boundary_floor(start + limits.part_max) };
        if end <= start {
            return Err(Error::InvalidParameter);
        }
        ranges.push((start, end));
        if ranges.len() > limits.max_parts as usize {
            return Err(Error::LimitExceeded);
        }
        start = end;
    }
    check_parts(&ranges, limits)?;
    Ok(ranges)
}

fn check_parts(ranges: &[(u64, u64)], limits: &CopyLimits) -> Result<()> {
    if ranges.len() > limits.max_parts as usize {
        return Err(Error::LimitExceeded);
    }
    let last = ranges.len().saturating_sub(1);
    for (i, (s, e)) in ranges.iter().enumerate() {
        if e - s > limits.part_max || (i < last && e - s < limits.part_min) {
            return Err(Error::InvalidParameter);
        }
    }
    Ok(())
}

#[cfg(test)]
mod directive_tests {
    use super::Directive;

    #[test]
    fn directive_names_are_s3_spellings() {
        assert_eq!(Directive::from_name("COPY"), Some(Directive::Copy));
        assert_eq!(Directive::from_name("REPLACE"), Some(Directive::Replace));
        assert_eq!(Directive::from_name("copy"), None);
        assert_eq!(Directive::from_name(""), None);
    }
}
