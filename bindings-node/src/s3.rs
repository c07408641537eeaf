//! The S3 protocol as data (SPEC.md §12.1 to §12.4): what to fetch after a HEAD before an
//! object can be read (`ObjectOpen`), the ordered S3 requests that execute a copy plan with
//! what to undo when one fails (`copySteps`), an in-place migration (`migrateSteps`), and
//! the GETs of a whole read (`WholeRead`). Core decides all of them; this module only
//! converts their values to and from JS.

use isec_core::Error as CoreError;
use isec_core::copy::{CopyAction, CopyPlan as CorePlan, Sidecar};
use isec_core::s3::{self, ObjectRef, Open, Opened, Request, WholeRead as CoreWholeRead};
use napi::Env;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::convert::{Bytes, Flag, Obj, Text, U64};
use crate::decisions::{Pairs, pairs_out};
use crate::error::{Failure, Fallible, throw};
use crate::f;
use crate::keys::Envelope;
use crate::legacy::LegacyObject;

// ----------------------------------------------------------------------------------------
// Opening an object (SPEC.md §12.1)

/// What to do next while opening an object: `kind` `fetch` (GET the sidecar `key`, at most
/// `maxLength` bytes, and `feed` its body, or `null` when it does not exist) or `ready`
/// (`format` `isec`, `legacy` or `plaintext`, with what reading it needs).
#[napi(object, object_from_js = false)]
pub struct OpenStep {
    /// `fetch` or `ready`.
    #[napi(ts_type = "'fetch' | 'ready'")]
    pub kind: String,
    /// For `fetch`: the sidecar's object key.
    pub key: Option<String>,
    /// For `fetch`: `table` (an isec segment table) or `legacy` (the previous proxy's).
    #[napi(ts_type = "'table' | 'legacy'")]
    pub sidecar: Option<String>,
    /// For `fetch`: the longest body to read; a longer one is an error.
    pub max_length: Option<f64>,
    /// For `fetch`: whether the sidecar's absence is an answer (the object may be plain).
    pub probe: Option<bool>,
    /// For `ready`: `isec`, `legacy` or `plaintext`.
    #[napi(ts_type = "'isec' | 'legacy' | 'plaintext'")]
    pub format: Option<String>,
    /// For `isec`: the envelope.
    pub envelope: Option<Envelope>,
    /// For a table-layout `isec` object: its encoded segment table (its MAC is checked by
    /// `Shape.fromTable` with the object key).
    pub table: Option<Buffer>,
    /// For `isec`: the table's sidecar key, when the table was read from one.
    pub table_sidecar: Option<String>,
    /// For `legacy`: the object's geometry and wrapped DEK.
    pub legacy: Option<LegacyObject>,
    /// For `legacy`: the key of the sidecar it was opened from, if any.
    pub legacy_sidecar: Option<String>,
}

impl OpenStep {
    fn empty(kind: &str) -> Self {
        Self {
            kind: kind.into(),
            key: None,
            sidecar: None,
            max_length: None,
            probe: None,
            format: None,
            envelope: None,
            table: None,
            table_sidecar: None,
            legacy: None,
            legacy_sidecar: None,
        }
    }

    fn of(open: &Open) -> Self {
        let o = match open {
            Open::Fetch { key, kind, max_len, probe } => {
                return Self {
                    key: Some(key.clone()),
                    sidecar: Some(kind.name().into()),
                    max_length: Some(f(*max_len)),
                    probe: Some(*probe),
                    ..Self::empty("fetch")
                };
            }
            Open::Ready(o) => o,
        };
        let (format, sidecar) = o.format_and_sidecar();
        let (mut step, sidecar) =
            (Self { format: Some(format.into()), ..Self::empty("ready") }, sidecar.map(str::to_owned));
        match o {
            Opened::Isec { envelope, table, .. } => {
                step.envelope = Some(Envelope { inner: (**envelope).clone() });
                (step.table, step.table_sidecar) = (table.as_ref().map(|t| t.clone().into()), sidecar);
            }
            Opened::Legacy { object, .. } => {
                (step.legacy, step.legacy_sidecar) = (Some(LegacyObject { inner: object.clone() }), sidecar);
            }
            Opened::Plaintext => {}
        }
        step
    }
}

/// The opening of one stored object, from its HEAD answer to what reading it needs: core
/// names each sidecar to fetch; the caller fetches it and feeds back its body or `null`.
#[napi]
pub struct ObjectOpen {
    inner: s3::ObjectOpen,
    next: Open,
}

#[napi]
impl ObjectOpen {
    /// Starts from a HEAD answer: the object's key, its user metadata (names with or without
    /// `x-amz-meta-`) and its stored size. Throws the metadata's own error when it is
    /// unreadable.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "string")] key: Text,
        #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
        #[napi(ts_arg_type = "number")] stored_size: U64,
    ) -> napi::Result<Self> {
        s3::ObjectOpen::new(&key.0, &metadata.view(), stored_size.0)
            .map(|(inner, next)| Self { inner, next })
            .map_err(|e| throw(&env, e))
    }

    /// What to do next.
    #[napi(getter)]
    pub fn next(&self) -> OpenStep {
        OpenStep::of(&self.next)
    }

    /// Feeds the body of the sidecar `next` named (`null`: it does not exist); returns the
    /// next step. A missing required sidecar, an oversized or malformed one throw core's code.
    #[napi]
    pub fn feed(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "Uint8Array | null")] body: Option<Bytes>,
    ) -> napi::Result<OpenStep> {
        let next = self.inner.feed(body.as_ref().map(|b| b.0)).map_err(|e| throw(&env, e))?;
        self.next = next;
        Ok(OpenStep::of(&self.next))
    }
}

// ----------------------------------------------------------------------------------------
// Executing a copy plan (SPEC.md §12.2)

/// An object in a bucket.
#[napi(object)]
pub struct S3Object {
    pub bucket: String,
    pub key: String,
}

/// A copy plan as `decideCopy` returned it (the fields `copySteps` reads).
#[napi(object, object_to_js = false)]
pub struct CopyPlanInput {
    #[napi(ts_type = "'native' | 'native_replace' | 'part_copy' | 'reencrypt'")]
    pub action: Text,
    #[napi(ts_type = "Array<[string, string]> | Record<string, string> | null")]
    pub metadata: Option<Option<Pairs>>,
    #[napi(ts_type = "Array<[number, number]>")]
    pub ranges: Vec<Vec<U64>>,
    #[napi(ts_type = "boolean")]
    pub copy_sidecar: Flag,
    #[napi(ts_type = "'table' | 'legacy' | null")]
    pub sidecar: Option<Option<Text>>,
}

/// Options of `copySteps`.
#[napi(object, object_to_js = false)]
pub struct CopyStepsOptions {
    /// Whether the caller sets system headers of its own (which needs a REPLACE).
    #[napi(ts_type = "boolean")]
    pub new_headers: Option<Flag>,
}

/// One S3 request, as data. `op`: `CopyObject`, `CreateMultipartUpload`, `UploadPartCopy`,
/// `CompleteMultipartUpload`, `AbortMultipartUpload`, `DeleteObject`, `Reencrypt` (GET the
/// source pinned to its ETag, re-encrypt, upload to `dest`) or `VerifyIsec`. A step of
/// `copySteps` is one with `undo`.
#[napi(object, object_from_js = false)]
pub struct S3Request {
    pub op: String,
    pub source: Option<S3Object>,
    pub dest: Option<S3Object>,
    /// For `DeleteObject` and `VerifyIsec`.
    pub object: Option<S3Object>,
    /// Send `x-amz-copy-source-if-match` with the source's ETag from its HEAD.
    pub if_match: Option<bool>,
    /// For `CopyObject`: the metadata directive.
    #[napi(ts_type = "'COPY' | 'REPLACE'")]
    pub directive: Option<String>,
    /// User metadata of the new object (`REPLACE`, a new upload, a re-encryption).
    #[napi(ts_type = "Array<[string, string]>")]
    pub metadata: Option<Vec<Vec<String>>>,
    /// System headers: `kept` by S3's COPY, or `carried` from the source's HEAD (the
    /// caller's own values winning) with its storage class.
    #[napi(ts_type = "'kept' | 'carried'")]
    pub headers: Option<String>,
    /// For `UploadPartCopy`: part number from 1.
    pub part: Option<u32>,
    /// For `UploadPartCopy`: source bytes `[start, end)`.
    #[napi(ts_type = "[number, number]")]
    pub range: Option<Vec<f64>>,
    /// For `CompleteMultipartUpload`: parts `1..=parts`.
    pub parts: Option<u32>,
    /// For `VerifyIsec`: the kid the object's envelope must name.
    pub kid: Option<String>,
    /// For `VerifyIsec`: the plaintext length it must decrypt to, when known.
    pub plaintext_length: Option<f64>,
    /// For a step: what to send if it fails (best effort, in order) before reporting it.
    pub undo: Option<Vec<S3Request>>,
}

/// A request of `copySteps` and, in `undo`, what to send if it fails.
#[napi]
pub type CopyStep = S3Request;

fn request(r: &Request, undo: Option<Vec<S3Request>>) -> S3Request {
    let q = r.fields();
    let obj = |o: Option<&ObjectRef>| o.map(|o| S3Object { bucket: o.bucket.clone(), key: o.key.clone() });
    S3Request {
        op: r.name().into(),
        source: obj(q.source),
        dest: obj(q.dest),
        object: obj(q.object),
        if_match: q.if_match,
        directive: q.directive.map(Into::into),
        metadata: q.metadata.map(pairs_out),
        headers: q.headers.map(|h| h.name().into()),
        part: q.part,
        range: q.range.map(|(a, b)| vec![f(a), f(b)]),
        parts: q.parts,
        kid: q.kid.map(Into::into),
        plaintext_length: q.plaintext_len.map(f),
        undo,
    }
}

fn plan_of(p: &CopyPlanInput) -> Fallible<CorePlan> {
    let bad = |m: String| Failure::Detail(CoreError::InvalidParameter, m);
    let actions = [CopyAction::Native, CopyAction::NativeReplace, CopyAction::PartCopy, CopyAction::Reencrypt];
    let a = p.action.0.as_str();
    let action =
        actions.into_iter().find(|x| x.name() == a).ok_or_else(|| bad(format!("unknown copy action {a:?}")))?;
    let sidecar = match p.sidecar.as_ref().and_then(Option::as_ref).map(|s| s.0.as_str()) {
        None => None,
        Some(s) => Some(
            [Sidecar::Table, Sidecar::Legacy]
                .into_iter()
                .find(|x| x.name() == s)
                .ok_or_else(|| bad(format!("unknown sidecar kind {s:?}")))?,
        ),
    };
    let mut ranges = Vec::with_capacity(p.ranges.len());
    for r in &p.ranges {
        match r.as_slice() {
            [a, b] => ranges.push((a.0, b.0)),
            _ => return Err(bad("a range is [start, end]".into())),
        }
    }
    let metadata = p.metadata.as_ref().and_then(Option::as_ref).map(|m| m.0.clone());
    Ok(CorePlan::new(action, metadata, ranges, p.copy_sidecar.0, sidecar))
}

/// The S3 requests, in order, that execute `plan` (from `decideCopy`) for a copy of
/// `source` (whose HEAD returned `sourceMetadata`) to `dest`, each with the requests to send
/// if it fails (SPEC.md §12.2).
#[napi]
pub fn copy_steps(
    env: Env,
    #[napi(ts_arg_type = "CopyPlan | CopyPlanInput")] plan: Obj<CopyPlanInput>,
    #[napi(ts_arg_type = "S3Object")] source: Obj<S3Object>,
    #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] source_metadata: Pairs,
    #[napi(ts_arg_type = "S3Object")] dest: Obj<S3Object>,
    #[napi(ts_arg_type = "CopyStepsOptions")] options: Option<Obj<CopyStepsOptions>>,
) -> napi::Result<Vec<CopyStep>> {
    let plan = plan_of(&plan.0).map_err(|e| throw(&env, e))?;
    let src = ObjectRef::new(&source.bucket, &source.key);
    let dst = ObjectRef::new(&dest.bucket, &dest.key);
    let new_headers = options.as_ref().and_then(|o| o.new_headers.as_ref()).is_some_and(|b| b.0);
    Ok(steps_out(&s3::copy_steps(&plan, &src, &source_metadata.view(), &dst, new_headers)))
}

fn steps_out(steps: &[s3::Step]) -> Vec<CopyStep> {
    let step = |s: &s3::Step| request(&s.request, Some(s.undo.iter().map(|u| request(u, None)).collect()));
    steps.iter().map(step).collect()
}

/// The requests of an in-place migration (SPEC.md §12.3) and what becomes of the sidecar.
#[napi(object, object_from_js = false)]
pub struct Migration {
    /// The plan's steps onto the object itself, `VerifyIsec`, then the sidecar's deletion
    /// when it is the object's own.
    pub steps: Vec<CopyStep>,
    /// The sidecar the last step deletes.
    pub sidecar_deleted: Option<String>,
    /// A sidecar left in place (a staged upload's, shared by native copies).
    pub sidecar_kept: Option<String>,
}

/// The requests that migrate `object` (whose HEAD returned `metadata`) in place with `plan`
/// (a `migrateLegacy` decision), read it back under `activeKid`, and delete `sidecar` (the
/// key its opening fetched) only if it is the object's own. Throws `invalid_state` for a
/// plan that does not re-encrypt.
#[napi]
pub fn migrate_steps(
    env: Env,
    #[napi(ts_arg_type = "CopyPlan | CopyPlanInput")] plan: Obj<CopyPlanInput>,
    #[napi(ts_arg_type = "S3Object")] object: Obj<S3Object>,
    #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
    sidecar: Option<String>,
    active_kid: String,
    #[napi(ts_arg_type = "number")] plaintext_length: Option<U64>,
) -> napi::Result<Migration> {
    let plan = plan_of(&plan.0).map_err(|e| throw(&env, e))?;
    let o = ObjectRef::new(&object.bucket, &object.key);
    let m =
        s3::migrate_steps(&plan, &o, &metadata.view(), sidecar.as_deref(), &active_kid, plaintext_length.map(|n| n.0))
            .map_err(|e| throw(&env, Failure::Core(e)))?;
    Ok(Migration { steps: steps_out(&m.steps), sidecar_deleted: m.sidecar_deleted, sidecar_kept: m.sidecar_kept })
}

// ----------------------------------------------------------------------------------------
// Reading a whole object (SPEC.md §12.4)

/// The part number of a whole read's first GetObject.
#[napi]
pub const FIRST_PART: u32 = s3::FIRST_PART;

/// The part number of a whole read's first GetObject for a reader of `concurrency`: 1, or
/// `null` (the whole object in one streamed GET) for one connection.
#[napi]
pub fn first_part_number(concurrency: u32) -> Option<u32> {
    s3::first_part_number(concurrency)
}

/// S3's answer to a part number or range on an empty object: read it with one plain GET.
#[napi]
pub const EMPTY_OBJECT_STATUS: u32 = s3::EMPTY_OBJECT_STATUS as u32;

/// The plan of a whole read, from the answer to its first request (GetObject of part
/// `FIRST_PART`): read `firstLength` bytes of that response, then GET `ranges()` pinned to
/// its ETag.
#[napi]
pub struct WholeRead {
    inner: CoreWholeRead,
}

#[napi]
impl WholeRead {
    /// `responseLength`: the first response's Content-Length; `contentRange`: its
    /// Content-Range (`null` for a 200); `partSize`: the reader's piece size;
    /// `concurrency`: the reader's, as given to `firstPartNumber` (default 2; one
    /// connection reads the whole first response). Throws `invalid_parameter`, `truncated`
    /// or `trailing_data` for a response that contradicts itself.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "number")] response_length: U64,
        content_range: Option<String>,
        #[napi(ts_arg_type = "number")] part_size: U64,
        concurrency: Option<u32>,
    ) -> napi::Result<Self> {
        let inner = CoreWholeRead::from_first_response(
            response_length.0,
            content_range.as_deref(),
            part_size.0,
            concurrency.unwrap_or(2),
        )
        .map_err(|e| throw(&env, Failure::Core(e)))?;
        Ok(Self { inner })
    }

    /// The object's stored size.
    #[napi(getter)]
    pub fn stored_length(&self) -> f64 {
        f(self.inner.stored_len())
    }

    /// Bytes to read from the first response, in pieces of at most `step` (the rest of it
    /// is dropped).
    #[napi(getter)]
    pub fn first_length(&self) -> f64 {
        f(self.inner.first_len())
    }

    /// The size of every piece but the last.
    #[napi(getter)]
    pub fn step(&self) -> f64 {
        f(self.inner.step())
    }

    /// The ranged GETs after the first response, `[start, end)` in order.
    #[napi(ts_return_type = "Array<[number, number]>")]
    pub fn ranges(&self) -> Vec<Vec<f64>> {
        self.inner.ranges().map(|(a, b)| vec![f(a), f(b)]).collect()
    }
}
