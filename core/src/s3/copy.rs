//! Executing a copy plan: the S3 requests, in order, with their exact headers and what to
//! undo when one fails (SPEC.md §12.2).
//!
//! [`crate::copy::decide`] says *what kind* of copy is valid; this says *which requests make
//! it*, so that every runtime (the Python and Node helpers, the `isec` command, the gateway)
//! sends the same ones. The caller sends each step's request, in order; if one fails it sends
//! that step's `undo` requests (best effort) and reports the failure.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::copy::{CopyAction, CopyPlan};
use crate::error::{Error, Result};
use crate::metadata::legacy_sidecar_key;

/// The system headers a copy keeps from its source when S3 would otherwise drop them (a
/// REPLACE directive replaces all of them): an envelope rewrap or a new-metadata copy must
/// not turn a `text/html` object into `binary/octet-stream`. A caller's own value for one
/// of them wins.
pub const CARRIED_HEADERS: [&str; 6] =
    ["content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"];

/// An object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectRef {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
}

impl ObjectRef {
    /// `bucket`/`key`.
    #[must_use]
    pub fn new(bucket: &str, key: &str) -> Self {
        Self { bucket: bucket.into(), key: key.into() }
    }

    fn with_key(&self, key: String) -> Self {
        Self { bucket: self.bucket.clone(), key }
    }
}

/// Where a new object's system headers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    /// S3's own COPY directive keeps them (and the user metadata).
    Kept,
    /// The source's [`CARRIED_HEADERS`] (from its HEAD), overridden by the caller's, and
    /// the storage class, sent with the REPLACE directive or on the new upload.
    Carried,
}

impl Headers {
    /// Stable name: `kept` or `carried`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        if matches!(self, Self::Carried) { "carried" } else { "kept" }
    }
}

/// One S3 request, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// CopyObject. `if_match`: send `x-amz-copy-source-if-match` with the source's ETag
    /// from its HEAD (the plan was made for that version). `metadata`: `None` is the COPY
    /// directive; `Some` is REPLACE with exactly these user metadata.
    CopyObject {
        /// Copy source.
        source: ObjectRef,
        /// Destination.
        dest: ObjectRef,
        /// Pin the source's ETag.
        if_match: bool,
        /// REPLACE metadata, or COPY.
        metadata: Option<Vec<(String, String)>>,
        /// System headers.
        headers: Headers,
    },
    /// CreateMultipartUpload with these user metadata and the carried headers.
    CreateMultipartUpload {
        /// Destination.
        dest: ObjectRef,
        /// User metadata of the new object.
        metadata: Vec<(String, String)>,
    },
    /// UploadPartCopy of source bytes `[start, end)` (`x-amz-copy-source-range:
    /// bytes=start-(end-1)`), pinned to the source's ETag.
    UploadPartCopy {
        /// Copy source.
        source: ObjectRef,
        /// Destination (of the upload the previous CreateMultipartUpload started).
        dest: ObjectRef,
        /// Part number, from 1.
        part: u32,
        /// Byte range `[start, end)`.
        range: (u64, u64),
    },
    /// CompleteMultipartUpload with the parts' ETags in order.
    CompleteMultipartUpload {
        /// Destination.
        dest: ObjectRef,
        /// Parts `1..=parts`.
        parts: u32,
    },
    /// AbortMultipartUpload of the upload the CreateMultipartUpload started.
    AbortMultipartUpload {
        /// Destination.
        dest: ObjectRef,
    },
    /// DeleteObject.
    DeleteObject {
        /// The object.
        object: ObjectRef,
    },
    /// The data path: GET the source pinned to its ETag, re-encrypt it with
    /// [`crate::reencrypt::Reencryption`] (or encrypt a plaintext source), and upload the
    /// result (one PutObject for one part, else a multipart upload of the job's parts) with
    /// these user metadata plus the new envelope's keys, and the carried headers.
    Reencrypt {
        /// Source.
        source: ObjectRef,
        /// Destination.
        dest: ObjectRef,
        /// User metadata (format keys added by the writer).
        metadata: Vec<(String, String)>,
    },
    /// Read the object back before anything of its predecessor is deleted: HEAD it (the
    /// ETag the previous step wrote), open it (§12.1), require an isec envelope under
    /// `kid`, and decrypt it in full, pinned to that ETag: `plaintext_len` bytes when known.
    /// Its failure stops the steps; nothing is undone (the new object is in place and
    /// readable or not, and what it replaced is already gone), only later deletions are
    /// not made.
    VerifyIsec {
        /// The object.
        object: ObjectRef,
        /// The kid its envelope must name.
        kid: String,
        /// Its plaintext length, when the source's was known.
        plaintext_len: Option<u64>,
    },
}

impl Request {
    /// Stable name of the S3 operation.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::CopyObject { .. } => "CopyObject",
            Self::CreateMultipartUpload { .. } => "CreateMultipartUpload",
            Self::UploadPartCopy { .. } => "UploadPartCopy",
            Self::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Self::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Self::DeleteObject { .. } => "DeleteObject",
            Self::Reencrypt { .. } => "Reencrypt",
            Self::VerifyIsec { .. } => "VerifyIsec",
        }
    }

    /// The request as one record of optional fields, the same for every operation: what a
    /// runtime without sum types (a Python or JS object, the corpus's JSON) exposes, so the
    /// values derived from the variant (the directive, which requests pin the source's ETag
    /// or carry headers) are decided here and not by each of them.
    #[must_use]
    pub fn fields(&self) -> Fields<'_> {
        let mut f = Fields::default();
        match self {
            Self::CopyObject { source, dest, if_match, metadata, headers } => {
                (f.source, f.dest, f.if_match) = (Some(source), Some(dest), Some(*if_match));
                f.directive = Some(if metadata.is_some() { "REPLACE" } else { "COPY" });
                (f.metadata, f.headers) = (metadata.as_deref(), Some(*headers));
            }
            Self::CreateMultipartUpload { dest, metadata } => {
                (f.dest, f.metadata, f.headers) = (Some(dest), Some(metadata.as_slice()), Some(Headers::Carried));
            }
            Self::UploadPartCopy { source, dest, part, range } => {
                (f.source, f.dest, f.if_match) = (Some(source), Some(dest), Some(true));
                (f.part, f.range) = (Some(*part), Some(*range));
            }
            Self::CompleteMultipartUpload { dest, parts } => (f.dest, f.parts) = (Some(dest), Some(*parts)),
            Self::AbortMultipartUpload { dest } => f.dest = Some(dest),
            Self::DeleteObject { object } => f.object = Some(object),
            Self::Reencrypt { source, dest, metadata } => {
                (f.source, f.dest) = (Some(source), Some(dest));
                (f.metadata, f.headers) = (Some(metadata.as_slice()), Some(Headers::Carried));
            }
            Self::VerifyIsec { object, kid, plaintext_len } => {
                (f.object, f.kid, f.plaintext_len) = (Some(object), Some(kid.as_str()), *plaintext_len);
            }
        }
        f
    }
}

/// A [`Request`]'s values by field ([`Request::fields`]); a field its operation does not
/// have is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fields<'a> {
    /// The copy source.
    pub source: Option<&'a ObjectRef>,
    /// The destination.
    pub dest: Option<&'a ObjectRef>,
    /// `DeleteObject`, `VerifyIsec`: the object.
    pub object: Option<&'a ObjectRef>,
    /// The server-side copies (`CopyObject`, `UploadPartCopy`): whether to send
    /// `x-amz-copy-source-if-match` with the source's ETag from its HEAD.
    pub if_match: Option<bool>,
    /// `CopyObject`: the `x-amz-metadata-directive`, `COPY` or `REPLACE`.
    pub directive: Option<&'static str>,
    /// The user metadata to send (`None` for a COPY: S3 keeps the source's).
    pub metadata: Option<&'a [(String, String)]>,
    /// Where the new object's system headers come from.
    pub headers: Option<Headers>,
    /// `UploadPartCopy`: the part number, from 1.
    pub part: Option<u32>,
    /// `UploadPartCopy`: source bytes `[start, end)`.
    pub range: Option<(u64, u64)>,
    /// `CompleteMultipartUpload`: parts `1..=parts`.
    pub parts: Option<u32>,
    /// `VerifyIsec`: the kid the object's envelope must name.
    pub kid: Option<&'a str>,
    /// `VerifyIsec`: the plaintext length it must decrypt to, when known.
    pub plaintext_len: Option<u64>,
}

/// A request and what to send, in order, if it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// The request.
    pub request: Request,
    /// Best-effort clean-up after a failure of this step.
    pub undo: Vec<Request>,
}

/// The requests that execute `plan` for a copy of `source` (with user metadata
/// `source_metadata`, as its HEAD returned them) to `dest`; `new_headers` says whether the
/// caller sets system headers of its own (which needs the REPLACE directive).
///
/// Rules (SPEC.md §12.2): a sidecar is copied first, since the object is unreadable without
/// it, and deleted again if the object's copy fails; a COPY onto the same key is nothing to
/// do; every copy of object bytes is pinned to the source's ETag; REPLACE copies and new
/// uploads carry the source's content headers; a multipart upload that fails is aborted.
#[must_use]
pub fn copy_steps(
    plan: &CopyPlan,
    source: &ObjectRef,
    source_metadata: &[(&str, &str)],
    dest: &ObjectRef,
    new_headers: bool,
) -> Vec<Step> {
    let same = source == dest;
    let mut steps = Vec::new();
    let mut undo_sidecar = Vec::new();
    if let (true, Some(sc)) = (plan.copy_sidecar, plan.sidecar) {
        let (from, to) = (source.with_key(sc.key(&source.key)), dest.with_key(sc.key(&dest.key)));
        if from != to {
            steps.push(Step {
                request: Request::CopyObject {
                    source: from,
                    dest: to.clone(),
                    if_match: false,
                    metadata: None,
                    headers: Headers::Kept,
                },
                undo: Vec::new(),
            });
            undo_sidecar.push(Request::DeleteObject { object: to });
        }
    }
    let user_metadata = || -> Vec<(String, String)> {
        plan.metadata
            .clone()
            .unwrap_or_else(|| source_metadata.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect())
    };
    match plan.action {
        CopyAction::Native if same && !new_headers => {}
        CopyAction::Native | CopyAction::NativeReplace => {
            // A self-copy must change something, so it is a REPLACE, as are new headers.
            let replace = plan.metadata.is_some() || same || new_headers;
            steps.push(Step {
                request: Request::CopyObject {
                    source: source.clone(),
                    dest: dest.clone(),
                    if_match: true,
                    metadata: replace.then(user_metadata),
                    headers: if replace { Headers::Carried } else { Headers::Kept },
                },
                undo: undo_sidecar,
            });
        }
        CopyAction::PartCopy => {
            steps.push(Step {
                request: Request::CreateMultipartUpload { dest: dest.clone(), metadata: user_metadata() },
                undo: undo_sidecar.clone(),
            });
            let mut abort = vec![Request::AbortMultipartUpload { dest: dest.clone() }];
            abort.extend(undo_sidecar);
            let mut part = 0u32;
            for &range in &plan.ranges {
                part += 1;
                steps.push(Step {
                    request: Request::UploadPartCopy { source: source.clone(), dest: dest.clone(), part, range },
                    undo: abort.clone(),
                });
            }
            steps.push(Step {
                request: Request::CompleteMultipartUpload { dest: dest.clone(), parts: part },
                undo: abort,
            });
        }
        CopyAction::Reencrypt => {
            steps.push(Step {
                request: Request::Reencrypt { source: source.clone(), dest: dest.clone(), metadata: user_metadata() },
                undo: undo_sidecar,
            });
        }
    }
    steps
}

/// The requests of an in-place migration and what becomes of the previous proxy's sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// In order: the plan's copy steps onto the object itself (its `Reencrypt`), the
    /// `VerifyIsec` read-back, then the sidecar's deletion when it is the object's own.
    pub steps: Vec<Step>,
    /// The sidecar the last step deletes: `.s3proxy-internal/<key>.meta`.
    pub sidecar_deleted: Option<String>,
    /// A sidecar left in place: a staged upload's generation-keyed sidecar, which native
    /// copies of the object share.
    pub sidecar_kept: Option<String>,
}

/// The requests that migrate a previous-proxy object in place (SPEC.md §12.3): `plan`
/// (the copy decision with `migrate_legacy`, which re-encrypts) executed onto `object`
/// itself, then a read-back of the new object under `active_kid` (`plaintext_len`: the
/// source's, when known), then the deletion of `sidecar` (the key its opening fetched)
/// only if it is the object's own.
///
/// # Errors
/// [`Error::InvalidState`] when `plan` does not re-encrypt: nothing else migrates.
pub fn migrate_steps(
    plan: &CopyPlan,
    object: &ObjectRef,
    metadata: &[(&str, &str)],
    sidecar: Option<&str>,
    active_kid: &str,
    plaintext_len: Option<u64>,
) -> Result<Migration> {
    if plan.action != CopyAction::Reencrypt {
        return Err(Error::InvalidState);
    }
    let mut steps = copy_steps(plan, object, metadata, object, false);
    steps.push(Step {
        request: Request::VerifyIsec { object: object.clone(), kid: active_kid.into(), plaintext_len },
        undo: Vec::new(),
    });
    let own = legacy_sidecar_key(&object.key);
    let (mut sidecar_deleted, mut sidecar_kept) = (None, None);
    match sidecar {
        Some(key) if key == own => {
            steps.push(Step {
                request: Request::DeleteObject { object: object.with_key(own.clone()) },
                undo: Vec::new(),
            });
            sidecar_deleted = Some(own);
        }
        Some(key) => sidecar_kept = Some(key.into()),
        None => {}
    }
    Ok(Migration { steps, sidecar_deleted, sidecar_kept })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::{ReencryptReason, Sidecar};

    fn plan(action: CopyAction, sidecar: Option<Sidecar>) -> CopyPlan {
        CopyPlan {
            action,
            metadata: Some(vec![("note".into(), "kept".into())]),
            ranges: Vec::new(),
            copy_sidecar: sidecar.is_some(),
            sidecar,
            rewrapped: false,
            reason: Some(ReencryptReason::LegacyMigration),
            requests: 3,
            client_bytes: 0,
        }
    }

    #[test]
    fn a_migration_reads_back_before_it_deletes_only_the_objects_own_sidecar() {
        let o = ObjectRef::new("b", "dir/obj");
        let meta = [("isec", "x")];
        let own = ".s3proxy-internal/dir/obj.meta";
        let m =
            migrate_steps(&plan(CopyAction::Reencrypt, Some(Sidecar::Legacy)), &o, &meta, Some(own), "kek-2", Some(9))
                .unwrap();
        let ops: Vec<_> = m.steps.iter().map(|s| s.request.name()).collect();
        assert_eq!(ops, ["Reencrypt", "VerifyIsec", "DeleteObject"]);
        assert_eq!(
            m.steps[1].request,
            Request::VerifyIsec { object: o.clone(), kid: "kek-2".into(), plaintext_len: Some(9) }
        );
        assert_eq!(m.steps[2].request, Request::DeleteObject { object: ObjectRef::new("b", own) });
        assert!(m.steps.iter().all(|s| s.undo.is_empty()), "the source was never touched: nothing to undo");
        assert_eq!((m.sidecar_deleted.as_deref(), m.sidecar_kept), (Some(own), None));

        // A staged upload's generation sidecar is shared by native copies: kept.
        let generation = ".s3proxy-internal/generations/g1.meta";
        let m =
            migrate_steps(&plan(CopyAction::Reencrypt, Some(Sidecar::Legacy)), &o, &meta, Some(generation), "k", None)
                .unwrap();
        let ops: Vec<_> = m.steps.iter().map(|s| s.request.name()).collect();
        assert_eq!(ops, ["Reencrypt", "VerifyIsec"]);
        assert_eq!((m.sidecar_deleted, m.sidecar_kept.as_deref()), (None, Some(generation)));

        // A single PUT has no sidecar.
        let m = migrate_steps(&plan(CopyAction::Reencrypt, None), &o, &meta, None, "k", None).unwrap();
        assert_eq!(m.steps.len(), 2);
        assert_eq!((m.sidecar_deleted, m.sidecar_kept), (None, None));
    }

    #[test]
    fn fields_name_what_each_operation_sends() {
        let (s, d) = (ObjectRef::new("b", "s"), ObjectRef::new("b", "d"));
        let meta = vec![("a".into(), "1".into())];
        let copy = |metadata: Option<Vec<(String, String)>>, headers| Request::CopyObject {
            source: s.clone(),
            dest: d.clone(),
            if_match: true,
            metadata,
            headers,
        };
        let r = copy(None, Headers::Kept);
        let f = r.fields();
        assert_eq!(
            (f.directive, f.metadata, f.headers, f.if_match),
            (Some("COPY"), None, Some(Headers::Kept), Some(true))
        );
        let r = copy(Some(meta.clone()), Headers::Carried);
        let f = r.fields();
        assert_eq!((f.directive, f.metadata, f.headers), (Some("REPLACE"), Some(&meta[..]), Some(Headers::Carried)));
        let r = Request::UploadPartCopy { source: s.clone(), dest: d.clone(), part: 2, range: (5, 9) };
        let f = r.fields();
        assert_eq!((f.if_match, f.part, f.range, f.directive), (Some(true), Some(2), Some((5, 9)), None));
        let r = Request::Reencrypt { source: s.clone(), dest: d.clone(), metadata: meta.clone() };
        let f = r.fields();
        // The data path pins its GET itself: no copy-source header to send.
        assert_eq!((f.if_match, f.headers, f.source, f.dest), (None, Some(Headers::Carried), Some(&s), Some(&d)));
        let r = Request::CreateMultipartUpload { dest: d.clone(), metadata: meta };
        assert_eq!((r.fields().headers, r.fields().source), (Some(Headers::Carried), None));
        let r = Request::VerifyIsec { object: d.clone(), kid: "k".into(), plaintext_len: Some(3) };
        let f = r.fields();
        assert_eq!((f.object, f.kid, f.plaintext_len, f.dest), (Some(&d), Some("k"), Some(3), None));
        assert_eq!(Request::CompleteMultipartUpload { dest: d.clone(), parts: 4 }.fields().parts, Some(4));
        assert_eq!(Request::DeleteObject { object: s.clone() }.fields().object, Some(&s));
        assert_eq!((Headers::Kept.name(), Headers::Carried.name()), ("kept", "carried"));
    }

    #[test]
    fn only_a_reencryption_migrates() {
        let o = ObjectRef::new("b", "k");
        for action in [CopyAction::Native, CopyAction::NativeReplace, CopyAction::PartCopy] {
            assert_eq!(migrate_steps(&plan(action, None), &o, &[], None, "k", None), Err(Error::InvalidState));
        }
    }
}
