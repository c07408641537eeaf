//! Copy decision, bucket scan, re-encryption jobs, the legacy reader, nonces and errors.

#![allow(unsafe_code)] // `Pairs` reads JS arrays and objects through Node-API.

use std::sync::Arc;

use isec_core::copy::{self, CopyLimits, CopyRequest, Directive, Sidecar};
use isec_core::legacy::{self, LegacyMetadata as CoreMeta, LegacyObject as CoreObject, LegacySidecar as CoreSidecar};
use isec_core::metadata::{self, ObjectFormat, TableSource};
use isec_core::nonce::{FramePosition, Nonce};
use isec_core::reencrypt::{Checkpoint, IsecSource, LegacySource, Reencryption, Source, target_params};
use isec_core::scan::{ScanClass, ScanPlanner as CorePlanner};
use isec_core::{Error as CoreError, Kek, LayoutRequest, Params};
use napi::bindgen_prelude::{
    AsyncTask, Buffer, Either, FromNapiValue, Null, ToNapiValue, TypeName, Unknown, ValidateNapiValue,
};
use napi::{Env, ValueType, sys};
use napi_derive::napi;

use crate::convert::{Bytes, BytesMut, Flag, Obj, OwnedBytes, Ref, Text, U64, element};
use crate::crypto::{C, CancelToken, Shape, Work, check, token};
use crate::crypto::{IntoWork, token_of};
use crate::error::{Failure, Fallible, js_error, throw};
use crate::keys::{Envelope, KeyTask, Keyring, ObjectKey};
use crate::stream::{Ctx, stream_class};

pub(crate) fn f(x: u64) -> f64 {
    // Sizes are below 2^53.
    #[allow(clippy::cast_precision_loss)]
    let v = x as f64;
    v
}

fn detail(e: CoreError, m: impl Into<String>) -> Failure {
    Failure::Detail(e, m.into())
}

/// S3 user metadata: `Array<[name, value]>` or `Record<string, string>` (order kept).
pub struct Pairs(pub Vec<(String, String)>);

impl Pairs {
    pub(crate) fn view(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

unsafe fn string_at(env: sys::napi_env, v: sys::napi_value) -> Option<String> {
    let mut t = 0;
    // SAFETY: `v` comes from the current callback.
    if unsafe { sys::napi_typeof(env, v, &mut t) } != sys::Status::napi_ok || t != sys::ValueType::napi_string {
        return None;
    }
    // SAFETY: `v` is a string.
    unsafe { String::from_napi_value(env, v) }.ok()
}

unsafe fn length(env: sys::napi_env, arr: sys::napi_value) -> Option<u32> {
    let mut n = 0;
    // SAFETY: as above.
    (unsafe { sys::napi_get_array_length(env, arr, &mut n) } == sys::Status::napi_ok).then_some(n)
}

unsafe fn read_pairs(env: sys::napi_env, v: sys::napi_value) -> Option<Vec<(String, String)>> {
    let mut is_array = false;
    let mut t = 0;
    // SAFETY: every call below reads values of the current callback.
    unsafe {
        if sys::napi_typeof(env, v, &mut t) != sys::Status::napi_ok || t != sys::ValueType::napi_object {
            return None;
        }
        sys::napi_is_array(env, v, &mut is_array);
        let mut out = Vec::new();
        if is_array {
            for i in 0..length(env, v)? {
                let pair = element(env, v, i)?;
                if length(env, pair)? != 2 {
                    return None;
                }
                out.push((string_at(env, element(env, pair, 0)?)?, string_at(env, element(env, pair, 1)?)?));
            }
        } else {
            let mut names = std::ptr::null_mut();
            if sys::napi_get_property_names(env, v, &mut names) != sys::Status::napi_ok {
                return None;
            }
            for i in 0..length(env, names)? {
                let k = element(env, names, i)?;
                let mut val = std::ptr::null_mut();
                if sys::napi_get_property(env, v, k, &mut val) != sys::Status::napi_ok {
                    return None;
                }
                out.push((string_at(env, k)?, string_at(env, val)?));
            }
        }
        Some(out)
    }
}

impl FromNapiValue for Pairs {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: see `read_pairs`.
        match unsafe { read_pairs(env, v) } {
            Some(p) => Ok(Pairs(p)),
            None => {
                Err(js_error(env, &Failure::Type("expected Array<[string, string]> or Record<string, string>".into())))
            }
        }
    }
}

impl TypeName for Pairs {
    fn type_name() -> &'static str {
        "Metadata"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ValidateNapiValue for Pairs {}

pub(crate) fn pairs_out(p: &[(String, String)]) -> Vec<Vec<String>> {
    p.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect()
}

// ----------------------------------------------------------------------------------------
// Object format and copy decision

/// What an object's metadata says it is (SPEC.md §11.1).
#[napi(object, object_from_js = false)]
pub struct Classification {
    /// `plaintext`, `isec`, `legacy` or `unreadable`.
    pub format: String,
    /// The key id, where known.
    pub kid: Option<String>,
    /// For `unreadable`: the error code the metadata gives.
    pub error: Option<String>,
    /// For `isec`: the object's envelope, decoded from the metadata.
    pub envelope: Option<Envelope>,
}

/// Classifies an object from its user metadata (and whether the legacy proxy's
/// object-keyed sidecar exists).
#[napi]
pub fn classify_metadata(
    #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
    #[napi(ts_arg_type = "boolean")] legacy_sidecar: Option<Flag>,
) -> Classification {
    let fmt = metadata::classify(&metadata.view(), legacy_sidecar.is_some_and(|b| b.0));
    let (format, kid) = (fmt.name().to_string(), fmt.kid().map(ToString::to_string));
    let (error, envelope) = match fmt {
        ObjectFormat::Unreadable(e) => (Some(e.code().to_string()), None),
        ObjectFormat::Isec(e) => (None, Some(Envelope { inner: *e })),
        _ => (None, None),
    };
    Classification { format, kid, error, envelope }
}

/// S3 limits that shape a copy (defaults: S3's).
#[napi(object, object_to_js = false)]
pub struct CopyLimitsInput {
    #[napi(ts_type = "number")]
    pub single_copy_max: Option<U64>,
    #[napi(ts_type = "number")]
    pub part_min: Option<U64>,
    #[napi(ts_type = "number")]
    pub part_max: Option<U64>,
    #[napi(ts_type = "number")]
    pub max_parts: Option<U64>,
    #[napi(ts_type = "number")]
    pub metadata_max: Option<U64>,
}

/// What the copy decision looks at (SPEC.md §12).
#[napi(object, object_to_js = false)]
pub struct CopyRequestInput {
    #[napi(ts_type = "Array<[string, string]> | Record<string, string>")]
    pub source_metadata: Pairs,
    #[napi(ts_type = "number")]
    pub source_size: U64,
    #[napi(ts_type = "boolean")]
    pub source_sidecar: Option<Flag>,
    /// For table-layout sources above the single-copy limit.
    #[napi(ts_type = "Shape")]
    pub source_shape: Option<Ref<Shape>>,
    /// `COPY` (default) or `REPLACE`.
    #[napi(ts_type = "'COPY' | 'REPLACE'")]
    pub directive: Option<Text>,
    #[napi(ts_type = "Array<[string, string]> | Record<string, string>")]
    pub new_metadata: Option<Pairs>,
    #[napi(ts_type = "string")]
    pub target_kid: Option<Text>,
    #[napi(ts_type = "boolean")]
    pub rotate_dek: Option<Flag>,
    #[napi(ts_type = "boolean")]
    pub migrate_legacy: Option<Flag>,
    #[napi(ts_type = "boolean")]
    pub require_encryption: Option<Flag>,
    #[napi(ts_type = "CopyLimitsInput")]
    pub limits: Option<Obj<CopyLimitsInput>>,
    /// The source's envelope already rewrapped under `targetKid` (from
    /// `keyring.withExternal(beginCopyRewrap(request, keyring))`, for external keys).
    #[napi(ts_type = "Envelope")]
    pub rewrapped: Option<Ref<Envelope>>,
}

/// The cheapest valid copy plan.
#[napi(object, object_from_js = false)]
pub struct CopyPlan {
    /// `native`, `native_replace`, `part_copy` or `reencrypt`.
    pub action: String,
    /// The destination's complete user metadata, when not the source's as-is; for
    /// `reencrypt`, its user metadata only, to which `objectMetadata` adds the new envelope.
    #[napi(ts_type = "Array<[string, string]> | null")]
    pub metadata: Either<Vec<Vec<String>>, Null>,
    /// Source byte ranges `[start, end)` for UploadPartCopy.
    #[napi(ts_type = "Array<[number, number]>")]
    pub ranges: Vec<Vec<f64>>,
    pub copy_sidecar: bool,
    /// The sidecar to copy before the object, when `copySidecar`: `table` or `legacy`
    /// (its keys: `sidecarKey(sidecar, sourceKey)` and `sidecarKey(sidecar, destinationKey)`).
    #[napi(ts_type = "'table' | 'legacy' | null")]
    pub sidecar: Either<String, Null>,
    pub rewrapped: bool,
    /// For `reencrypt`: `dek_rotation`, `legacy_migration`, `legacy_key_change` or
    /// `encrypt_plaintext`.
    pub reason: Option<String>,
    pub requests: f64,
    pub client_bytes: f64,
}

/// Decides how to copy an object as cheaply as the format allows; reads no object bytes.
#[napi]
pub fn decide_copy(
    env: Env,
    #[napi(ts_arg_type = "CopyRequestInput")] request: Obj<CopyRequestInput>,
    #[napi(ts_arg_type = "Keyring")] keyring: Option<Ref<Keyring>>,
) -> napi::Result<CopyPlan> {
    decide(&request.0, keyring.as_ref().map(|k| &k.inner)).map_err(|e| throw(&env, e))
}

/// The rewrap `decideCopy` makes for `request` (a key change of an isec object), as a task
/// to drive with `keyring.withExternal` before deciding; `null` when there is none.
#[napi]
pub fn begin_copy_rewrap(
    env: Env,
    #[napi(ts_arg_type = "CopyRequestInput")] request: Obj<CopyRequestInput>,
    #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
) -> napi::Result<Option<KeyTask>> {
    let meta = request.0.source_metadata.view();
    let r = copy_request(&request.0, &meta, &[]).and_then(|req| match copy::pending_rewrap(&req) {
        Some((e, to)) => Ok(Some(KeyTask(keyring.inner.begin_rewrap(&e, Some(to))?))),
        None => Ok(None),
    });
    r.map_err(|e| throw(&env, e))
}

fn copy_request<'a>(
    r: &'a CopyRequestInput,
    meta: &'a [(&'a str, &'a str)],
    new_meta: &'a [(&'a str, &'a str)],
) -> Fallible<CopyRequest<'a>> {
    let mut req = CopyRequest::new(meta, r.source_size.0);
    req.source_sidecar = r.source_sidecar.is_some_and(|b| b.0);
    req.source_shape = r.source_shape.as_ref().map(|s| &s.inner);
    req.directive = match r.directive.as_ref().map(|d| d.0.as_str()) {
        None | Some("COPY") => Directive::Copy,
        Some("REPLACE") => Directive::Replace,
        Some(d) => return Err(detail(CoreError::InvalidParameter, format!("unknown directive {d:?}"))),
    };
    req.new_metadata = new_meta;
    req.rewrapped = r.rewrapped.as_ref().map(|e| &e.inner);
    req.target_kid = r.target_kid.as_ref().map(|t| t.0.as_str());
    req.rotate_dek = r.rotate_dek.is_some_and(|b| b.0);
    req.migrate_legacy = r.migrate_legacy.is_some_and(|b| b.0);
    req.require_encryption = r.require_encryption.is_some_and(|b| b.0);
    if let Some(l) = &r.limits {
        let d = CopyLimits::default();
        req.limits = CopyLimits {
            single_copy_max: l.single_copy_max.map_or(d.single_copy_max, |v| v.0),
            part_min: l.part_min.map_or(d.part_min, |v| v.0),
            part_max: l.part_max.map_or(d.part_max, |v| v.0),
            max_parts: l.max_parts.map_or(Ok(d.max_parts), U64::u32)?,
            metadata_max: l.metadata_max.map_or(Ok(d.metadata_max), U64::usize)?,
        };
    }
    Ok(req)
}

fn decide(r: &CopyRequestInput, keyring: Option<&isec_core::Keyring>) -> Fallible<CopyPlan> {
    let meta = r.source_metadata.view();
    let new_meta = r.new_metadata.as_ref().map(Pairs::view).unwrap_or_default();
    let p = copy::decide(&copy_request(r, &meta, &new_meta)?, keyring)?;
    Ok(CopyPlan {
        action: p.action.name().to_string(),
        metadata: p.metadata.as_deref().map_or(Either::B(Null), |m| Either::A(pairs_out(m))),
        ranges: p.ranges.iter().map(|&(a, b)| vec![f(a), f(b)]).collect(),
        copy_sidecar: p.copy_sidecar,
        sidecar: p.sidecar.map_or(Either::B(Null), |s| Either::A(s.name().to_string())),
        rewrapped: p.rewrapped,
        reason: p.reason.map(|r| r.code().to_string()),
        requests: f(p.requests),
        client_bytes: f(p.client_bytes),
    })
}

// ----------------------------------------------------------------------------------------
// What every S3 writer and reader asks (SPEC.md §3.2, §6.3, §12)

/// The complete user metadata of a new isec object under `envelope`: `user` with every key a
/// format owns dropped, plus the envelope's own keys. Every writer of a new object (a PUT, a
/// re-encrypting copy) uses it, so all of them write the same keys.
#[napi(ts_return_type = "Array<[string, string]>")]
pub fn object_metadata(
    #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] user: Pairs,
    #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
) -> Vec<Vec<String>> {
    pairs_out(&metadata::object_metadata(&user.view(), &envelope.inner))
}

/// The user's part of an object's metadata: every key isec or the legacy proxy owns removed,
/// names normalised (lower case, no `x-amz-meta-`).
#[napi(ts_return_type = "Array<[string, string]>")]
pub fn user_metadata(
    #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
) -> Vec<Vec<String>> {
    pairs_out(&metadata::user_metadata(&metadata.view()))
}

/// Bytes S3 counts against its 2 KB user-metadata limit (names and values, UTF-8).
#[napi]
pub fn metadata_size(#[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs) -> f64 {
    f(metadata::metadata_size(&metadata.0) as u64)
}

/// Where a table-layout object's segment table is: its encoded bytes when the metadata
/// holds it inline (not yet verified: `Shape.fromTable` checks its MAC), or `null` when it is
/// in the sidecar object `sidecarKey('table', objectKey)`.
#[napi(ts_return_type = "Buffer | null")]
pub fn table_source(
    env: Env,
    #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
) -> napi::Result<Either<Buffer, Null>> {
    match metadata::table_source(&metadata.view()) {
        Ok(TableSource::Inline(bytes)) => Ok(Either::A(bytes.into())),
        Ok(TableSource::Sidecar) => Ok(Either::B(Null)),
        Err(e) => Err(throw(&env, e)),
    }
}

/// The object key of an object's sidecar: `table` (its segment table) or `legacy` (the
/// legacy proxy's), as a copy plan's `sidecar` names it.
#[napi]
pub fn sidecar_key(
    env: Env,
    #[napi(ts_arg_type = "'table' | 'legacy'")] kind: Text,
    #[napi(ts_arg_type = "string")] object_key: Text,
) -> napi::Result<String> {
    let sidecar = match kind.0.as_str() {
        "table" => Sidecar::Table,
        "legacy" => Sidecar::Legacy,
        k => return Err(throw(&env, detail(CoreError::InvalidParameter, format!("unknown sidecar kind {k:?}")))),
    };
    Ok(sidecar.key(&object_key.0))
}

// ----------------------------------------------------------------------------------------
// Bucket scan

/// Object count and stored bytes.
#[napi(object, object_from_js = false)]
pub struct Tally {
    pub objects: f64,
    pub bytes: f64,
}

/// One `(kid, class)` row of a scan.
#[napi(object, object_from_js = false)]
pub struct KidTally {
    /// The key id, `-` for none.
    pub kid: String,
    pub class: String,
    pub objects: f64,
    pub bytes: f64,
}

fn tally(t: isec_core::scan::Tally) -> Tally {
    Tally { objects: f(t.objects), bytes: f(t.bytes) }
}

/// Classifies listing entries without key material and sums the rotation work left
/// (SPEC.md §14).
#[napi]
pub struct ScanPlanner {
    inner: CorePlanner,
}

#[napi]
impl ScanPlanner {
    /// A planner judging against `keyring`'s key states.
    #[napi(constructor)]
    pub fn new(#[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>) -> Self {
        Self { inner: CorePlanner::new(&keyring.inner) }
    }

    /// Classifies one listing entry and counts it: `current`, `needs_rewrap`,
    /// `needs_reencrypt`, `plaintext`, `unreadable` or `sidecar`.
    #[napi]
    pub fn add(
        &mut self,
        #[napi(ts_arg_type = "string")] key: Text,
        #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
        #[napi(ts_arg_type = "number")] size: U64,
        #[napi(ts_arg_type = "boolean")] legacy_sidecar: Option<Flag>,
    ) -> String {
        self.inner.add(&key.0, &metadata.view(), size.0, legacy_sidecar.is_some_and(|b| b.0)).name().to_string()
    }

    /// Count and bytes of one class.
    #[napi]
    pub fn tally(&self, env: Env, #[napi(ts_arg_type = "string")] name: Text) -> napi::Result<Tally> {
        let c = ScanClass::ALL
            .iter()
            .find(|c| c.name() == name.0)
            .ok_or_else(|| throw(&env, detail(CoreError::InvalidParameter, format!("unknown class {:?}", name.0))))?;
        Ok(tally(self.inner.tally(*c)))
    }

    /// `(kid, class)` rows, sorted by kid then class.
    #[napi]
    pub fn by_kid(&self) -> Vec<KidTally> {
        self.inner
            .by_kid()
            .map(|(kid, c, t)| KidTally {
                kid: kid.to_string(),
                class: c.name().to_string(),
                objects: f(t.objects),
                bytes: f(t.bytes),
            })
            .collect()
    }

    /// Objects and bytes still needing a rewrap or re-encryption.
    #[napi]
    pub fn remaining(&self) -> Tally {
        tally(self.inner.remaining())
    }
}

// ----------------------------------------------------------------------------------------
// Re-encryption

/// Options of a re-encryption job.
#[napi(object, object_to_js = false)]
pub struct ReencryptOptions {
    /// Frame size of the new object (default 65536).
    #[napi(ts_type = "number")]
    pub frame_size: Option<U64>,
    /// Plaintext bytes per part of the new object (a parts-layout object): rounded up to
    /// whole frames and grown to fit 10000 parts (default 8 MiB). Ignored on resume (the
    /// checkpoint's envelope has it).
    #[napi(ts_type = "number")]
    pub part_size: Option<U64>,
    /// Bytes per second (0 or absent: unlimited).
    #[napi(ts_type = "number")]
    pub rate: Option<U64>,
    /// Legacy sources: the key id to use when the object recorded none.
    #[napi(ts_type = "string")]
    pub kid: Option<Text>,
    /// Isec sources: the source's key, opened beforehand (`await keyring.open(envelope)`,
    /// for external keys); else the keyring opens it.
    #[napi(ts_type = "ObjectKey")]
    pub source_key: Option<Ref<ObjectKey>>,
    /// Start: the new object's envelope, created beforehand with
    /// `keyring.withExternal(ReencryptionJob.beginTarget(...))` (for an external active key).
    #[napi(ts_type = "Envelope")]
    pub target_envelope: Option<Ref<Envelope>>,
    /// Start: the key of `targetEnvelope`. Resume: the key of the checkpoint's envelope,
    /// opened beforehand (for an external active key).
    #[napi(ts_type = "ObjectKey")]
    pub target_key: Option<Ref<ObjectKey>>,
}

/// Progress of a re-encryption job.
#[napi(object, object_from_js = false)]
pub struct Progress {
    pub bytes_done: f64,
    pub bytes_left: f64,
    /// Parts of the new object whose output is final (what a checkpoint now covers).
    pub parts_done: u32,
    /// Parts of the new object.
    pub parts_total: u32,
    pub finished: bool,
    pub paused: bool,
}

/// What one `update` did.
#[napi(object, object_from_js = false)]
pub struct ReencryptStep {
    /// Source bytes consumed; offer the rest again.
    pub consumed: f64,
    /// New ciphertext to append at the target offset.
    pub output: Buffer,
    /// When nothing was consumed for the rate limit: milliseconds to wait.
    pub wait_ms: f64,
}

/// A checkpoint's fields, readable without a key.
#[napi(object, object_from_js = false)]
pub struct CheckpointInfo {
    pub source_identity: Buffer,
    pub source_ciphertext_length: f64,
    pub envelope: Envelope,
    /// Parts of the new object whose output is final.
    pub parts_done: u32,
    /// Bytes of the new object that are final (a part boundary): truncate the output here
    /// before resuming.
    pub target_offset: f64,
}

fn reencrypt_params(o: Option<&ReencryptOptions>) -> Fallible<Params> {
    // The preferred part size, in whole frames; the job fits it to the source's length.
    let layout = o
        .and_then(|o| o.part_size)
        .map_or(LayoutRequest::Single, |p| LayoutRequest::FitParts { size: 0, preferred: p.0 });
    Ok(Params::new(layout, o.and_then(|o| o.frame_size).map(|f| f.0), None)?)
}

/// A re-encryption job: one source object to a new parts-layout isec object under a new
/// DEK (SPEC.md §13). Sans-IO: feed source bytes from `sourceOffset`, append the output at
/// `targetOffset` (part `n` is the output from `(n - 1) * targetPartLength`), keep
/// `checkpoint()` to resume after a crash. A resumed job writes the part that was
/// unfinished again under a fresh nonce prefix: its output past the checkpoint's
/// `targetOffset` differs from the first run's, and decrypts the same.
#[napi]
pub struct ReencryptionJob {
    inner: Reencryption<C>,
}

fn start(keyring: &Keyring, source: Box<dyn Source>, o: Option<&ReencryptOptions>) -> Fallible<ReencryptionJob> {
    let rate = o.and_then(|o| o.rate).map_or(0, |r| r.0);
    let inner = match o.and_then(|o| Some((o.target_envelope.as_ref()?, o.target_key.as_ref()?))) {
        Some((e, k)) => Reencryption::<C>::start_keyed(source, (e.inner.clone(), k.inner.clone()), rate)?,
        None => Reencryption::<C>::start(&keyring.inner, source, reencrypt_params(o)?, rate)?,
    };
    Ok(ReencryptionJob { inner })
}

fn resume(k: &Keyring, source: Box<dyn Source>, cp: &[u8], o: Option<&ReencryptOptions>) -> Fallible<ReencryptionJob> {
    let rate = o.and_then(|o| o.rate).map_or(0, |r| r.0);
    let inner = match o.and_then(|o| o.target_key.as_ref()) {
        Some(key) => Reencryption::<C>::resume_keyed(&k.inner, source, cp, key.inner.clone(), rate)?,
        None => Reencryption::<C>::resume(&k.inner, source, cp, rate)?,
    };
    Ok(ReencryptionJob { inner })
}

fn isec_source(k: &Keyring, e: &Envelope, s: &Shape, o: Option<&ReencryptOptions>) -> Fallible<Box<dyn Source>> {
    Ok(match o.and_then(|o| o.source_key.as_ref()) {
        Some(key) => Box::new(IsecSource::<C>::with_key(key.inner.clone(), &e.inner, s.inner.clone())?),
        None => Box::new(IsecSource::<C>::new(&k.inner, &e.inner, s.inner.clone())?),
    })
}

fn legacy_source(k: &Keyring, o: &LegacyObject, opts: Option<&ReencryptOptions>) -> Fallible<Box<dyn Source>> {
    let kid = opts.and_then(|o| o.kid.as_ref()).map(|t| t.0.as_str());
    Ok(Box::new(LegacySource::<C>::new(&k.inner, o.inner.clone(), kid)?))
}

#[napi]
impl ReencryptionJob {
    /// Not constructible with `new`: made by `ReencryptionJob.startIsec`, `startLegacy`, `resumeIsec` or `resumeLegacy`.
    #[napi(constructor)]
    pub fn new(env: Env) -> napi::Result<Self> {
        Err(throw(&env, Failure::Type("ReencryptionJob objects are made by ReencryptionJob.startIsec, startLegacy, resumeIsec or resumeLegacy, not new".into())))
    }

    /// Starts re-encrypting an isec object (`shape` from its stored length or table) under
    /// the keyring's active key.
    #[napi(factory)]
    pub fn start_isec(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        isec_source(&keyring, &envelope, &shape, options.as_deref())
            .and_then(|s| start(&keyring, s, options.as_deref()))
            .map_err(|e| throw(&env, e))
    }

    /// Starts migrating a legacy proxy object to isec.
    #[napi(factory)]
    pub fn start_legacy(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        legacy_source(&keyring, &object, options.as_deref())
            .and_then(|s| start(&keyring, s, options.as_deref()))
            .map_err(|e| throw(&env, e))
    }

    /// Starts creating the new object's envelope for a source of `plaintextLength` bytes
    /// under the active key (drive it with `keyring.withExternal`, then pass its result as
    /// `targetEnvelope` / `targetKey`): what `startIsec` and `startLegacy` do themselves for
    /// local keys.
    #[napi]
    pub fn begin_target(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "number")] plaintext_length: U64,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<KeyTask> {
        let r = reencrypt_params(options.as_deref())
            .and_then(|p| Ok(keyring.inner.begin_create(target_params(p, plaintext_length.0)?)?));
        r.map(KeyTask).map_err(|e| throw(&env, e))
    }

    /// Resumes an isec job from a checkpoint.
    #[napi(factory)]
    pub fn resume_isec(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
        #[napi(ts_arg_type = "Uint8Array")] checkpoint: Bytes,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        isec_source(&keyring, &envelope, &shape, options.as_deref())
            .and_then(|s| resume(&keyring, s, checkpoint.0, options.as_deref()))
            .map_err(|e| throw(&env, e))
    }

    /// Resumes a legacy migration from a checkpoint.
    #[napi(factory)]
    pub fn resume_legacy(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "Uint8Array")] checkpoint: Bytes,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        legacy_source(&keyring, &object, options.as_deref())
            .and_then(|s| resume(&keyring, s, checkpoint.0, options.as_deref()))
            .map_err(|e| throw(&env, e))
    }

    /// Reads a checkpoint's fields without a key.
    #[napi]
    pub fn parse_checkpoint(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] checkpoint: Bytes,
    ) -> napi::Result<CheckpointInfo> {
        let r = (|| {
            let cp = Checkpoint::parse(checkpoint.0)?;
            let env = isec_core::Envelope::decode(&cp.envelope).map_err(|_| CoreError::MalformedCheckpoint)?;
            Ok(CheckpointInfo {
                source_identity: cp.source_identity.to_vec().into(),
                source_ciphertext_length: f(cp.source_ciphertext_len),
                target_offset: f(cp.target_offset()?),
                parts_done: cp.parts_done,
                envelope: Envelope { inner: env },
            })
        })();
        r.map_err(|e: Failure| throw(&env, e))
    }

    /// The new object's envelope.
    #[napi(getter)]
    pub fn target_envelope(&self) -> Envelope {
        Envelope { inner: self.inner.target_envelope().clone() }
    }

    /// Where the next source byte to feed comes from.
    #[napi(getter)]
    pub fn source_offset(&self) -> f64 {
        f(self.inner.source_offset())
    }

    /// Where the next output byte goes.
    #[napi(getter)]
    pub fn target_offset(&self) -> f64 {
        f(self.inner.target_offset())
    }

    /// Ciphertext bytes of every part of the new object but the last.
    #[napi(getter)]
    pub fn target_part_length(&self) -> f64 {
        f(self.inner.target_part_len())
    }

    /// Progress in bytes and parts.
    #[napi(getter)]
    pub fn progress(&self) -> Progress {
        let p = self.inner.progress();
        Progress {
            bytes_done: f(p.bytes_done),
            bytes_left: f(p.bytes_left),
            parts_done: p.parts_done,
            parts_total: p.parts_total,
            finished: p.finished,
            paused: p.paused,
        }
    }

    /// Stops taking input until `unpause`.
    #[napi]
    pub fn pause(&mut self) {
        self.inner.pause();
    }

    /// Takes input again.
    #[napi]
    pub fn unpause(&mut self) {
        self.inner.unpause();
    }

    /// Changes the rate limit (bytes per second; 0: none).
    #[napi]
    pub fn set_rate(&mut self, #[napi(ts_arg_type = "number")] rate: U64) {
        self.inner.set_rate(rate.0);
    }

    /// Feeds source ciphertext read from `sourceOffset` at time `nowMs`.
    #[napi]
    pub fn update(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] chunk: Bytes,
        #[napi(ts_arg_type = "number")] now_ms: U64,
    ) -> napi::Result<ReencryptStep> {
        let mut out = vec![0u8; self.inner.update_len(chunk.0.len())];
        let step = self.inner.update(chunk.0, &mut out, now_ms.0).map_err(|e| throw(&env, e))?;
        out.truncate(step.written);
        Ok(ReencryptStep { consumed: f(step.consumed as u64), output: out.into(), wait_ms: f(step.wait_ms) })
    }

    /// Ends the job once all source bytes were fed; returns the final output.
    #[napi]
    pub fn finish(&mut self, env: Env) -> napi::Result<Buffer> {
        let mut out = vec![0u8; self.inner.finish_len()];
        let n = self.inner.finish(&mut out).map_err(|e| throw(&env, e))?;
        out.truncate(n);
        Ok(out.into())
    }

    /// A checkpoint for the last part boundary whose output is final.
    #[napi]
    pub fn checkpoint(&self) -> Buffer {
        self.inner.checkpoint().into()
    }
}

// ----------------------------------------------------------------------------------------
// Legacy reader (SPEC.md §11)

/// The legacy proxy's user metadata on one object.
#[napi]
pub struct LegacyMetadata {
    inner: CoreMeta,
}

#[napi]
impl LegacyMetadata {
    /// Not constructible with `new`: made by `LegacyMetadata.fromPairs`.
    #[napi(constructor)]
    pub fn new(env: Env) -> napi::Result<Self> {
        Err(throw(&env, Failure::Type("LegacyMetadata objects are made by LegacyMetadata.fromPairs, not new".into())))
    }

    /// Parses metadata as S3 returns it (names with or without `x-amz-meta-`).
    #[napi(factory)]
    pub fn from_pairs(
        env: Env,
        #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
    ) -> napi::Result<Self> {
        CoreMeta::from_pairs(&metadata.0).map(|inner| Self { inner }).map_err(|e| throw(&env, e))
    }

    /// Whether a wrapped DEK or a format tag marks the object as the proxy's.
    #[napi(getter)]
    pub fn is_legacy(&self) -> bool {
        self.inner.is_legacy()
    }

    #[napi(getter)]
    pub fn kid(&self) -> Option<String> {
        self.inner.kid().map(ToString::to_string)
    }

    #[napi(getter)]
    pub fn plaintext_size(&self) -> Option<f64> {
        self.inner.plaintext_size().map(f)
    }

    #[napi(getter)]
    pub fn client_etag(&self) -> Option<String> {
        self.inner.client_etag().map(ToString::to_string)
    }

    /// `single-v3`, `multipart-v3`, or `null`.
    #[napi(getter)]
    pub fn format(&self) -> Option<String> {
        self.inner.format().map(|f| f.as_str().to_string())
    }

    /// The wrapped DEK (standard base64), when in metadata.
    #[napi(getter)]
    pub fn wrapped_dek_b64(&self) -> Option<String> {
        self.inner.wrapped_dek_b64().map(ToString::to_string)
    }

    /// The bucket key of the sidecar this object needs, or `null`.
    #[napi]
    pub fn sidecar_key(&self, #[napi(ts_arg_type = "string")] object_key: Text) -> Option<String> {
        self.inner.sidecar_key(&object_key.0)
    }
}

/// A parsed and checked legacy sidecar.
#[napi]
pub struct LegacySidecar {
    inner: CoreSidecar,
}

#[napi]
impl LegacySidecar {
    /// Not constructible with `new`: made by `LegacySidecar.parse` or `LegacySidecar.fromJson`.
    #[napi(constructor)]
    pub fn new(env: Env) -> napi::Result<Self> {
        Err(throw(
            &env,
            Failure::Type(
                "LegacySidecar objects are made by LegacySidecar.parse or LegacySidecar.fromJson, not new".into(),
            ),
        ))
    }

    /// Parses a sidecar object's body (base64 of gzip of JSON), inflating at most
    /// `maxInflated` bytes (default 16 MiB).
    #[napi(factory)]
    pub fn parse(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] body: Bytes,
        #[napi(ts_arg_type = "number")] max_inflated: Option<U64>,
    ) -> napi::Result<Self> {
        let r = max_inflated
            .map_or(Ok(legacy::DEFAULT_SIDECAR_CAP), U64::usize)
            .and_then(|cap| Ok(CoreSidecar::parse(body.0, cap)?));
        r.map(|inner| Self { inner }).map_err(|e| throw(&env, e))
    }

    /// Parses and checks the sidecar's JSON.
    #[napi(factory)]
    pub fn from_json(env: Env, #[napi(ts_arg_type = "Uint8Array")] json: Bytes) -> napi::Result<Self> {
        CoreSidecar::from_json(json.0).map(|inner| Self { inner }).map_err(|e| throw(&env, e))
    }

    #[napi(getter)]
    pub fn version(&self) -> u32 {
        self.inner.version()
    }

    #[napi(getter)]
    pub fn part_count(&self) -> u32 {
        self.inner.part_count()
    }

    #[napi(getter)]
    pub fn total_size(&self) -> f64 {
        f(self.inner.total_size())
    }

    #[napi(getter)]
    pub fn ciphertext_size(&self) -> f64 {
        f(self.inner.ciphertext_size())
    }

    #[napi(getter)]
    pub fn kid(&self) -> Option<String> {
        self.inner.kid().map(ToString::to_string)
    }

    #[napi(getter)]
    pub fn upload_id(&self) -> Option<String> {
        self.inner.upload_id().map(ToString::to_string)
    }

    #[napi(getter)]
    pub fn generation(&self) -> Option<String> {
        self.inner.generation().map(ToString::to_string)
    }
}

/// Seal range plan of a legacy object.
#[napi(object, object_from_js = false)]
pub struct LegacyRange {
    pub ct_start: f64,
    pub ct_end: f64,
    pub skip: f64,
    pub len: f64,
    pub pt_start: f64,
    pub first_seal: f64,
    pub end_seal: f64,
    pub http_range: Option<String>,
}

/// A legacy object's geometry and key reference, checked against its body's length.
#[napi]
pub struct LegacyObject {
    pub(crate) inner: CoreObject,
}

#[napi]
impl LegacyObject {
    /// Not constructible with `new`: made by `LegacyObject.create`.
    #[napi(constructor)]
    pub fn new(env: Env) -> napi::Result<Self> {
        Err(throw(&env, Failure::Type("LegacyObject objects are made by LegacyObject.create, not new".into())))
    }

    /// Describes an object from its metadata, its sidecar (if any) and its stored length.
    #[napi(factory)]
    pub fn create(
        env: Env,
        #[napi(ts_arg_type = "LegacyMetadata")] metadata: Ref<LegacyMetadata>,
        #[napi(ts_arg_type = "LegacySidecar | null")] sidecar: Option<Ref<LegacySidecar>>,
        #[napi(ts_arg_type = "number")] ciphertext_length: U64,
    ) -> napi::Result<Self> {
        CoreObject::new(&metadata.inner, sidecar.as_ref().map(|s| &s.inner), ciphertext_length.0)
            .map(|inner| Self { inner })
            .map_err(|e| throw(&env, e))
    }

    /// The same object with its multipart upload id, so derived nonces are checked.
    #[napi]
    pub fn with_upload_id(&self, env: Env, #[napi(ts_arg_type = "string")] upload_id: Text) -> napi::Result<Self> {
        self.inner.clone().with_upload_id(&upload_id.0).map(|inner| Self { inner }).map_err(|e| throw(&env, e))
    }

    /// `single`, `streamed`, `framed` or `staged`.
    #[napi(getter)]
    pub fn layout(&self) -> String {
        match self.inner.layout() {
            legacy::LegacyLayout::Single => "single",
            legacy::LegacyLayout::Streamed => "streamed",
            legacy::LegacyLayout::Framed => "framed",
            legacy::LegacyLayout::Staged => "staged",
        }
        .to_string()
    }

    #[napi(getter)]
    pub fn kid(&self) -> Option<String> {
        self.inner.kid().map(ToString::to_string)
    }

    #[napi(getter)]
    pub fn plaintext_length(&self) -> f64 {
        f(self.inner.plaintext_len())
    }

    #[napi(getter)]
    pub fn ciphertext_length(&self) -> f64 {
        f(self.inner.ciphertext_len())
    }

    /// The wrapped DEK (standard base64) the metadata or sidecar named.
    #[napi(getter)]
    pub fn wrapped_dek_b64(&self) -> String {
        self.inner.wrapped_dek_b64().to_string()
    }

    #[napi(getter)]
    pub fn seal_count(&self) -> f64 {
        f(self.inner.seal_count())
    }

    /// The whole seals covering plaintext `[start, end)` (clamped).
    #[napi]
    pub fn plan_range(
        &self,
        env: Env,
        #[napi(ts_arg_type = "number")] start: U64,
        #[napi(ts_arg_type = "number")] end: U64,
    ) -> napi::Result<LegacyRange> {
        let r = self.inner.plan_range(start.0, end.0).map_err(|e| throw(&env, e))?;
        Ok(LegacyRange {
            ct_start: f(r.ct_start),
            ct_end: f(r.ct_end),
            skip: f(r.skip),
            len: f(r.len),
            pt_start: f(r.pt_start),
            first_seal: f(r.first_seal),
            end_seal: f(r.end_seal),
            http_range: r.http_range(),
        })
    }
}

/// A legacy object's DEK.
#[napi]
pub struct LegacyKey {
    inner: Arc<legacy::LegacyKey>,
}

#[napi]
impl LegacyKey {
    /// Not constructible with `new`: made by `LegacyKey.open`, `LegacyKey.fromSecretString` or `Keyring.legacyKey`.
    #[napi(constructor)]
    pub fn new(env: Env) -> napi::Result<Self> {
        Err(throw(&env, Failure::Type("LegacyKey objects are made by LegacyKey.open, LegacyKey.fromSecretString or Keyring.legacyKey, not new".into())))
    }

    /// Unwraps the DEK the proxy stored (standard base64) with a raw 32-byte KEK.
    #[napi(factory)]
    pub fn open(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] kek: Bytes,
        #[napi(ts_arg_type = "string")] wrapped_b64: Text,
    ) -> napi::Result<Self> {
        Kek::from_slice(kek.0)
            .and_then(|k| legacy::LegacyKey::open(&k, &wrapped_b64.0))
            .map(|k| Self { inner: Arc::new(k) })
            .map_err(|e| throw(&env, e))
    }

    /// Unwraps the DEK with the proxy's KEK derived from its secret string.
    #[napi(factory)]
    pub fn from_secret_string(
        env: Env,
        #[napi(ts_arg_type = "string")] secret: Text,
        #[napi(ts_arg_type = "string")] wrapped_b64: Text,
    ) -> napi::Result<Self> {
        legacy::LegacyKey::open(&Kek::legacy_from_secret_string(&secret.0), &wrapped_b64.0)
            .map(|k| Self { inner: Arc::new(k) })
            .map_err(|e| throw(&env, e))
    }
}

#[napi]
impl Keyring {
    /// The DEK of a legacy object, with the keyring's legacy key for `kid`, else the
    /// object's own kid, else the default set with `setDefaultLegacy`, after the version and
    /// state checks.
    #[napi]
    pub fn legacy_key(
        &self,
        env: Env,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "string")] kid: Option<Text>,
    ) -> napi::Result<LegacyKey> {
        let r = self.inner.open_legacy(&object.inner, kid.as_ref().map(|k| k.0.as_str()));
        r.map(|k| LegacyKey { inner: Arc::new(k) }).map_err(|e| throw(&env, e))
    }
}

/// Decrypts a whole legacy object held in memory (all or nothing).
#[napi]
pub fn legacy_decrypt_sync(
    env: Env,
    #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
    #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
    #[napi(ts_arg_type = "Uint8Array")] ciphertext: Bytes,
) -> napi::Result<Buffer> {
    legacy::decrypt::<C>(&key.inner, &object.inner, ciphertext.0).map(Buffer::from).map_err(|e| throw(&env, e))
}

/// `legacyDecryptSync` on the libuv pool.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn legacy_decrypt_async(
    #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
    #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
    #[napi(ts_arg_type = "Uint8Array")] ciphertext: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] cancel: Option<Ref<CancelToken>>,
) -> AsyncTask<Work> {
    let (k, o) = (key.inner.clone(), object.inner.clone());
    let c = token(cancel);
    Work::new(c.clone(), move || {
        check(&c)?;
        Ok(legacy::decrypt::<C>(&k, &o, &ciphertext.0)?)
    })
}

/// Decrypts plaintext `[start, end)` from `fetched`, the bytes `object.planRange(start,
/// end)` said to fetch.
#[napi]
pub fn legacy_decrypt_range_sync(
    env: Env,
    #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
    #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
    #[napi(ts_arg_type = "number")] start: U64,
    #[napi(ts_arg_type = "number")] end: U64,
    #[napi(ts_arg_type = "Uint8Array")] fetched: Bytes,
) -> napi::Result<Buffer> {
    object
        .inner
        .plan_range(start.0, end.0)
        .and_then(|plan| legacy::decrypt_range::<C>(&key.inner, &object.inner, &plan, fetched.0))
        .map(Buffer::from)
        .map_err(|e| throw(&env, e))
}

/// Streaming decryptor of a legacy object or a planned range of one.
#[napi]
pub struct LegacyDecryptor {
    ctx: Ctx<legacy::LegacyDecryptor<C>>,
}

impl LegacyDecryptor {
    fn wrap(env: &Env, d: isec_core::Result<legacy::LegacyDecryptor<C>>) -> napi::Result<Self> {
        d.map(|d| Self { ctx: Ctx::new(d) }).map_err(|e| throw(env, e))
    }
}

stream_class!(LegacyDecryptor);

#[napi]
impl LegacyDecryptor {
    /// Decrypts the whole object from its first byte.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
    ) -> napi::Result<Self> {
        Self::wrap(&env, legacy::LegacyDecryptor::<C>::new(&key.inner, &object.inner))
    }

    /// Decrypts the bytes `object.planRange(start, end)` names; releases `[start, end)`.
    #[napi(factory)]
    pub fn for_range(
        env: Env,
        #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "number")] start: U64,
        #[napi(ts_arg_type = "number")] end: U64,
    ) -> napi::Result<Self> {
        let d = object.inner.plan_range(start.0, end.0);
        Self::wrap(&env, d.and_then(|plan| legacy::LegacyDecryptor::<C>::for_range(&key.inner, &object.inner, &plan)))
    }

    /// Plaintext bytes released so far.
    #[napi(getter)]
    pub fn released(&self, env: Env) -> napi::Result<f64> {
        self.ctx.with(|d| f(d.released())).map_err(|e| throw(&env, e))
    }
}

// ----------------------------------------------------------------------------------------
// Nonces and errors

/// A frame nonce's fields (SPEC.md §5.1).
#[napi(object, object_from_js = false)]
pub struct NonceFields {
    pub prefix: Buffer,
    pub index: u32,
    pub segment_end: bool,
    pub object_end: bool,
}

/// Parses a 12-byte frame nonce.
#[napi]
pub fn parse_nonce(env: Env, #[napi(ts_arg_type = "Uint8Array")] nonce: Bytes) -> napi::Result<NonceFields> {
    let r = (|| {
        let bytes: [u8; 12] =
            nonce.0.try_into().map_err(|_| detail(CoreError::InvalidParameter, "a nonce is 12 bytes"))?;
        let n = Nonce(bytes);
        let p = n.position()?;
        Ok(NonceFields {
            prefix: n.prefix().to_vec().into(),
            index: p.index,
            segment_end: p.segment_end,
            object_end: p.object_end,
        })
    })();
    r.map_err(|e: Failure| throw(&env, e))
}

/// Builds the nonce of frame `index` of a segment encryption with `prefix` (7 bytes).
#[napi]
pub fn build_nonce(
    env: Env,
    #[napi(ts_arg_type = "Uint8Array")] prefix: Bytes,
    #[napi(ts_arg_type = "number")] index: U64,
    #[napi(ts_arg_type = "boolean")] segment_end: Flag,
    #[napi(ts_arg_type = "boolean")] object_end: Flag,
) -> napi::Result<Buffer> {
    let r = (|| {
        let p: [u8; 7] = prefix.0.try_into().map_err(|_| detail(CoreError::InvalidParameter, "a prefix is 7 bytes"))?;
        let pos = FramePosition { index: index.u32()?, segment_end: segment_end.0, object_end: object_end.0 };
        Ok(Nonce::new(&p, pos).0.to_vec())
    })();
    r.map(Buffer::from).map_err(|e: Failure| throw(&env, e))
}

/// One error code and its family.
#[napi(object, object_from_js = false)]
pub struct ErrorCode {
    pub code: String,
    pub family: String,
}

/// Every error code core defines, with its family (SPEC.md §9).
#[napi]
pub fn error_codes() -> Vec<ErrorCode> {
    CoreError::ALL
        .iter()
        .map(|e| ErrorCode { code: e.code().to_string(), family: e.family().name().to_string() })
        .collect()
}

/// The error the binding throws for `code` (the same mapper as every other error), for
/// the JS layer's own failures (an external wrapper that rejected, a bad argument).
#[napi(ts_return_type = "Error")]
pub fn isec_error(
    env: Env,
    #[napi(ts_arg_type = "string")] code: Text,
    #[napi(ts_arg_type = "string")] message: Option<Text>,
) -> napi::Result<Unknown<'static>> {
    let failure = match (code.0.as_str(), CoreError::from_code(&code.0)) {
        ("ABORT_ERR", _) => Failure::Aborted,
        (_, Some(e)) => match message {
            Some(m) => Failure::Detail(e, m.0),
            None => Failure::Core(e),
        },
        (c, None) => return Err(throw(&env, detail(CoreError::InvalidParameter, format!("unknown code {c:?}")))),
    };
    let err = js_error(env.raw(), &failure);
    // SAFETY: the value was just created on this env and is returned to JS at once.
    unsafe {
        let v = ToNapiValue::to_napi_value(env.raw(), err)?;
        Ok(Unknown::from_raw_unchecked(env.raw(), v))
    }
}
