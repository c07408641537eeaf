//! Key-free decisions over metadata: object classification, the copy decision (SPEC.md
//! §12), what every S3 writer and reader asks of metadata (SPEC.md §3.2, §6.3), and the
//! bucket scan planner (SPEC.md §14).

#![allow(unsafe_code)] // `Pairs` reads JS arrays and objects through Node-API.

use isec_core::Error as CoreError;
use isec_core::copy::{self, CopyLimits, CopyRequest, Directive, Sidecar};
use isec_core::metadata::{self, ObjectFormat, TableSource};
use isec_core::scan::{ScanClass, ScanPlanner as CorePlanner};
use napi::bindgen_prelude::{Buffer, Either, FromNapiValue, Null, TypeName, ValidateNapiValue};
use napi::{Env, ValueType, sys};
use napi_derive::napi;

use crate::convert::{Flag, Obj, Ref, Text, U64, array_length, element};
use crate::error::{Failure, Fallible, js_error};
use crate::keys::{Envelope, KeyTask, Keyring};
use crate::layout::Shape;
use crate::{Js, f};

/// What core's `from_name` parsed from `name`, or `invalid_parameter` naming the unknown `what`.
fn named<T>(parsed: Option<T>, what: &str, name: &str) -> Fallible<T> {
    parsed.ok_or_else(|| Failure::Detail(CoreError::InvalidParameter, format!("unknown {what} {name:?}")))
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

unsafe fn read_pairs(env: sys::napi_env, v: sys::napi_value) -> Option<Vec<(String, String)>> {
    let mut t = 0;
    // SAFETY: every call below reads values of the current callback.
    unsafe {
        if sys::napi_typeof(env, v, &mut t) != sys::Status::napi_ok || t != sys::ValueType::napi_object {
            return None;
        }
        if let Some(n) = array_length(env, v) {
            let pair = |i| {
                let pair = element(env, v, i)?;
                (array_length(env, pair) == Some(2)).then_some(())?;
                Some((string_at(env, element(env, pair, 0)?)?, string_at(env, element(env, pair, 1)?)?))
            };
            return (0..n).map(pair).collect();
        }
        let mut names = std::ptr::null_mut();
        (sys::napi_get_property_names(env, v, &mut names) == sys::Status::napi_ok).then_some(())?;
        let entry = |i| {
            let (k, mut val) = (element(env, names, i)?, std::ptr::null_mut());
            (sys::napi_get_property(env, v, k, &mut val) == sys::Status::napi_ok).then_some(())?;
            Some((string_at(env, k)?, string_at(env, val)?))
        };
        (0..array_length(env, names)?).map(entry).collect()
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
    decide(&request.0, keyring.as_ref().map(|k| &k.inner)).js(&env)
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
    r.js(&env)
}

fn copy_request<'a>(
    r: &'a CopyRequestInput,
    meta: &'a [(&'a str, &'a str)],
    new_meta: &'a [(&'a str, &'a str)],
) -> Fallible<CopyRequest<'a>> {
    let mut req = CopyRequest::new(meta, r.source_size.0);
    req.source_sidecar = r.source_sidecar.is_some_and(|b| b.0);
    req.source_shape = r.source_shape.as_ref().map(|s| &s.inner);
    let d = r.directive.as_ref().map_or("COPY", |d| d.0.as_str());
    req.directive = named(Directive::from_name(d), "directive", d)?;
    req.new_metadata = new_meta;
    req.rewrapped = r.rewrapped.as_ref().map(|e| &e.inner);
    req.target_kid = r.target_kid.as_ref().map(|t| t.0.as_str());
    req.rotate_dek = r.rotate_dek.is_some_and(|b| b.0);
    req.migrate_legacy = r.migrate_legacy.is_some_and(|b| b.0);
    req.require_encryption = r.require_encryption.is_some_and(|b| b.0);
    if let Some(l) = &r.limits {
        let d = CopyLimits::default();
        req.limits = d
            .with_single_copy_max(l.single_copy_max.map_or(d.single_copy_max, |v| v.0))
            .with_part_min(l.part_min.map_or(d.part_min, |v| v.0))
            .with_part_max(l.part_max.map_or(d.part_max, |v| v.0))
            .with_max_parts(l.max_parts.map_or(Ok(d.max_parts), U64::u32)?)
            .with_metadata_max(l.metadata_max.map_or(Ok(d.metadata_max), U64::usize)?);
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
    Ok(match metadata::table_source(&metadata.view()).js(&env)? {
        TableSource::Inline(bytes) => Either::A(bytes.into()),
        TableSource::Sidecar => Either::B(Null),
    })
}

/// The object key of an object's sidecar: `table` (its segment table) or `legacy` (the
/// legacy proxy's), as a copy plan's `sidecar` names it.
#[napi]
pub fn sidecar_key(
    env: Env,
    #[napi(ts_arg_type = "'table' | 'legacy'")] kind: Text,
    #[napi(ts_arg_type = "string")] object_key: Text,
) -> napi::Result<String> {
    named(Sidecar::from_name(&kind.0), "sidecar kind", &kind.0).map(|s| s.key(&object_key.0)).js(&env)
}

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
        let c = named(ScanClass::from_name(&name.0), "class", &name.0).js(&env)?;
        Ok(tally(self.inner.tally(c)))
    }

    /// `(kid, class)` rows, sorted by kid then class.
    #[napi]
    pub fn by_kid(&self) -> Vec<KidTally> {
        self.inner
            .by_kid()
            .map(|(kid, c, t)| KidTally {
                kid: kid.into(),
                class: c.name().into(),
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
