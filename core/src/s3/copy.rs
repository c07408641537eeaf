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

/// The system headers a copy keeps from its source when S3 would otherwise drop them (a
/// REPLACE directive replaces all of them): an envelope rewrap or a new-metadata copy must
/// not turn a `text/html` object into `binary/octet-stream`. A caller's own value for one
/// of them wins.
pub const CARRIED_HEADERS: [&str; 6] =
    ["content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"];

/// An object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headers {
    /// S3's own COPY directive keeps them (and the user metadata).
    Kept,
    /// The source's [`CARRIED_HEADERS`] (from its HEAD), overridden by the caller's, and
    /// the storage class, sent with the REPLACE directive or on the new upload.
    Carried,
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
        }
    }
}

/// A request and what to send, in order, if it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
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
