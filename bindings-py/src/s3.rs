//! The S3 protocol as data (SPEC.md §12.1, §12.2, §12.4), as core's `s3` module: what to
//! fetch after a HEAD before an object can be read, the requests that execute a copy plan,
//! and the GETs of a whole read.
//! Conversions only; every decision is core's.

use isec_core::s3::{self, ObjectOpen, ObjectRef, Open, Opened, Request, WholeRead};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::In;
use crate::convert::{Int, Pairs};
use crate::decisions::PyCopyPlan;
use crate::envelope::PyEnvelope;
use crate::error::OrRaise;
use crate::legacy::PyLegacyObject;

/// A readable object, as its HEAD (and the sidecar it needed) describe it.
#[pyclass(module = "isec", name = "Opened", frozen)]
#[derive(Clone)]
pub(crate) struct PyOpened {
    /// `isec`, `legacy` or `plaintext`.
    #[pyo3(get)]
    format: &'static str,
    /// An isec object's envelope.
    #[pyo3(get)]
    envelope: Option<PyEnvelope>,
    /// A table-layout isec object's encoded segment table.
    table: Option<Vec<u8>>,
    /// The table's sidecar key, when the table came from a sidecar.
    #[pyo3(get)]
    table_sidecar: Option<String>,
    /// A previous-proxy object's geometry and wrapped DEK.
    #[pyo3(get)]
    legacy: Option<PyLegacyObject>,
    /// The previous-proxy sidecar it was opened from, if any.
    #[pyo3(get)]
    legacy_sidecar: Option<String>,
}

#[pymethods]
impl PyOpened {
    /// A table-layout isec object's encoded segment table (its MAC is checked when a
    /// `Shape` is built from it with the object key).
    #[getter]
    fn table<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.table.as_ref().map(|t| PyBytes::new(py, t))
    }

    /// The sidecar the object was opened from (table or previous-proxy), if any: a copy
    /// must take it along (`decide_copy(source_sidecar=...)`).
    #[getter]
    fn sidecar(&self) -> Option<&str> {
        self.table_sidecar.as_deref().or(self.legacy_sidecar.as_deref())
    }

    fn __repr__(&self) -> String {
        format!("Opened(format={:?}, sidecar={:?})", self.format, self.sidecar())
    }
}

impl PyOpened {
    fn new(o: Opened) -> Self {
        let (format, sidecar) = o.format_and_sidecar();
        let sidecar = sidecar.map(str::to_owned);
        let mut out =
            Self { format, envelope: None, table: None, table_sidecar: None, legacy: None, legacy_sidecar: None };
        match o {
            Opened::Isec { envelope, table, .. } => {
                (out.envelope, out.table, out.table_sidecar) = (Some(PyEnvelope { inner: *envelope }), table, sidecar);
            }
            Opened::Legacy { object, .. } => {
                (out.legacy, out.legacy_sidecar) = (Some(PyLegacyObject { inner: object }), sidecar);
            }
            Opened::Plaintext => {}
        }
        out
    }
}

/// What to do next while opening an object: `ready` (see `opened`) or `fetch` (GET the
/// sidecar `key`, at most `max_len` bytes, and feed its body, or None when it does not
/// exist).
#[pyclass(module = "isec", name = "OpenStep", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct PyOpenStep {
    /// `ready` or `fetch`.
    kind: &'static str,
    /// `fetch`: the sidecar's object key.
    key: Option<String>,
    /// `fetch`: `table` or `legacy`.
    sidecar: Option<&'static str>,
    /// `fetch`: the largest body to read; a longer one is an error.
    max_len: Option<u64>,
    /// `fetch`: whether the sidecar's absence is an answer (the object may be plaintext).
    probe: bool,
    /// `ready`: the readable object.
    opened: Option<PyOpened>,
}

impl PyOpenStep {
    fn new(o: Open) -> Self {
        match o {
            Open::Ready(opened) => Self {
                kind: "ready",
                key: None,
                sidecar: None,
                max_len: None,
                probe: false,
                opened: Some(PyOpened::new(opened)),
            },
            Open::Fetch { key, kind, max_len, probe } => Self {
                kind: "fetch",
                key: Some(key),
                sidecar: Some(kind.name()),
                max_len: Some(max_len),
                probe,
                opened: None,
            },
        }
    }
}

#[pymethods]
impl PyOpenStep {
    fn __repr__(&self) -> String {
        match self.kind {
            "fetch" => format!("OpenStep(kind='fetch', key={:?}, sidecar={:?})", self.key, self.sidecar),
            _ => "OpenStep(kind='ready')".to_string(),
        }
    }
}

/// The opening of one object, from its HEAD to a readable `Opened` (SPEC.md §12.1): start
/// from the object's key, user metadata and stored size; while `next.kind` is `fetch`, GET
/// the sidecar it names and `feed` the body (None for a 404).
#[pyclass(module = "isec", name = "ObjectOpen")]
pub(crate) struct PyObjectOpen {
    inner: ObjectOpen,
    next: PyOpenStep,
}

#[pymethods]
impl PyObjectOpen {
    /// Raises the metadata's own error for unreadable encryption metadata.
    #[new]
    fn new(key: &str, metadata: Pairs, stored_size: Int<u64>) -> PyResult<Self> {
        let (inner, open) = ObjectOpen::new(key, &metadata.view(), stored_size.0).or_raise()?;
        Ok(Self { inner, next: PyOpenStep::new(open) })
    }

    /// The current step.
    #[getter]
    fn next(&self) -> PyOpenStep {
        self.next.clone()
    }

    /// Feeds the sidecar `next` named (None: it does not exist); returns the new step.
    /// Raises what is wrong with it (missing, too large, unparsable) with core's code, and
    /// `invalid_state` when nothing was asked for.
    fn feed(&mut self, body: Option<In>) -> PyResult<PyOpenStep> {
        let open = self.inner.feed(body.as_ref().map(In::as_slice)).or_raise()?;
        self.next = PyOpenStep::new(open);
        Ok(self.next.clone())
    }
}

/// The plan of a whole read (SPEC.md §12.4), from the answer to its first request (GET of
/// part `FIRST_PART`).
#[pyclass(module = "isec", name = "WholeRead", frozen)]
pub(crate) struct PyWholeRead {
    inner: WholeRead,
}

#[pymethods]
impl PyWholeRead {
    /// `concurrency`: the reader's, as given to `first_part_number` (one connection reads
    /// the whole first response).
    #[new]
    #[pyo3(signature = (response_len, content_range, part_size, concurrency=2))]
    fn new(
        response_len: Int<u64>,
        content_range: Option<&str>,
        part_size: Int<u64>,
        concurrency: u32,
    ) -> PyResult<Self> {
        let inner =
            WholeRead::from_first_response(response_len.0, content_range, part_size.0, concurrency).or_raise()?;
        Ok(Self { inner })
    }

    /// The object's stored size.
    #[getter]
    fn stored_len(&self) -> u64 {
        self.inner.stored_len()
    }

    /// Bytes to read from the first response, in pieces of at most `step` (the rest of it
    /// is dropped).
    #[getter]
    fn first_len(&self) -> u64 {
        self.inner.first_len()
    }

    /// The size of every piece but the last.
    #[getter]
    fn step(&self) -> u64 {
        self.inner.step()
    }

    /// The ranged GETs after the first response, `[start, end)` in order, each pinned to
    /// its ETag.
    fn ranges(&self) -> Vec<(u64, u64)> {
        self.inner.ranges().collect()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// The part number of a whole read's first GET for a reader of `concurrency`: 1, or None
/// (the whole object in one streamed GET) for one connection.
#[pyfunction]
pub(crate) fn first_part_number(concurrency: u32) -> Option<u32> {
    s3::first_part_number(concurrency)
}

/// One S3 request of a copy, as data. Fields not used by `op` are None.
#[pyclass(module = "isec", name = "S3Request", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct PyS3Request {
    /// `CopyObject`, `CreateMultipartUpload`, `UploadPartCopy`, `CompleteMultipartUpload`,
    /// `AbortMultipartUpload`, `DeleteObject`, `Reencrypt` or `VerifyIsec`.
    op: &'static str,
    /// `(bucket, key)` of the copy source.
    source: Option<(String, String)>,
    /// `(bucket, key)` of the destination.
    dest: Option<(String, String)>,
    /// `DeleteObject`, `VerifyIsec`: `(bucket, key)`.
    object: Option<(String, String)>,
    /// Send the source's ETag from its HEAD as `x-amz-copy-source-if-match`.
    if_match: bool,
    /// `CopyObject`: `COPY` or `REPLACE`.
    directive: Option<&'static str>,
    /// The user metadata to send (None: S3's COPY directive keeps the source's).
    metadata: Option<Vec<(String, String)>>,
    /// `kept` (S3 keeps the source's system headers) or `carried` (send the source's
    /// carried headers, the caller's own winning).
    headers: Option<&'static str>,
    /// `UploadPartCopy`: the part number, from 1.
    part: Option<u32>,
    /// `UploadPartCopy`: source bytes `[start, end)`.
    range: Option<(u64, u64)>,
    /// `CompleteMultipartUpload`: parts `1..=parts`.
    parts: Option<u32>,
    /// `VerifyIsec`: the kid the object's envelope must name.
    kid: Option<String>,
    /// `VerifyIsec`: the plaintext length it must decrypt to, when known.
    plaintext_len: Option<u64>,
}

#[pymethods]
impl PyS3Request {
    fn __repr__(&self) -> String {
        format!(
            "S3Request(op={:?}, source={:?}, dest={:?})",
            self.op,
            self.source,
            self.dest.as_ref().or(self.object.as_ref())
        )
    }
}

impl PyS3Request {
    fn new(r: &Request) -> Self {
        let f = r.fields();
        let obj = |o: Option<&ObjectRef>| o.map(|o| (o.bucket.clone(), o.key.clone()));
        Self {
            op: r.name(),
            source: obj(f.source),
            dest: obj(f.dest),
            object: obj(f.object),
            if_match: f.if_match == Some(true),
            directive: f.directive,
            metadata: f.metadata.map(<[_]>::to_vec),
            headers: f.headers.map(|h| h.name()),
            part: f.part,
            range: f.range,
            parts: f.parts,
            kid: f.kid.map(str::to_owned),
            plaintext_len: f.plaintext_len,
        }
    }
}

/// A request and the requests to send, in order, if it fails.
#[pyclass(module = "isec", name = "CopyStep", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct PyCopyStep {
    request: PyS3Request,
    undo: Vec<PyS3Request>,
}

#[pymethods]
impl PyCopyStep {
    fn __repr__(&self) -> String {
        format!("CopyStep(op={:?}, undo={})", self.request.op, self.undo.len())
    }
}

/// The S3 requests that execute `plan` for a copy of `source` (`(bucket, key)`, with the
/// user metadata its HEAD returned) to `dest`, in order (SPEC.md §12.2). `new_headers`:
/// whether the caller sets system headers of its own.
#[pyfunction]
#[pyo3(signature = (plan, source, source_metadata, dest, new_headers=false))]
pub(crate) fn copy_steps(
    plan: &PyCopyPlan,
    source: (String, String),
    source_metadata: Pairs,
    dest: (String, String),
    new_headers: bool,
) -> Vec<PyCopyStep> {
    let (src, dst) = (ObjectRef::new(&source.0, &source.1), ObjectRef::new(&dest.0, &dest.1));
    steps(&s3::copy_steps(&plan.inner, &src, &source_metadata.view(), &dst, new_headers))
}

fn steps(steps: &[s3::Step]) -> Vec<PyCopyStep> {
    let step = |s: &s3::Step| PyCopyStep {
        request: PyS3Request::new(&s.request),
        undo: s.undo.iter().map(PyS3Request::new).collect(),
    };
    steps.iter().map(step).collect()
}

/// The requests of an in-place migration (SPEC.md §12.3) and what becomes of the sidecar.
#[pyclass(module = "isec", name = "Migration", frozen, get_all)]
pub(crate) struct PyMigration {
    /// The plan's steps onto the object itself, `VerifyIsec`, then the sidecar's deletion
    /// when it is the object's own.
    steps: Vec<PyCopyStep>,
    /// The sidecar the last step deletes.
    sidecar_deleted: Option<String>,
    /// A sidecar left in place (a staged upload's, shared by native copies).
    sidecar_kept: Option<String>,
}

/// The requests that migrate `object` (`(bucket, key)`, with the user metadata its HEAD
/// returned) in place with `plan` (a `migrate_legacy` decision), read it back under
/// `active_kid`, and delete `sidecar` (the key its opening fetched) if it is the object's
/// own. Raises `invalid_state` for a plan that does not re-encrypt.
#[pyfunction]
#[pyo3(signature = (plan, object, metadata, sidecar, active_kid, plaintext_len=None))]
pub(crate) fn migrate_steps(
    plan: &PyCopyPlan,
    object: (String, String),
    metadata: Pairs,
    sidecar: Option<&str>,
    active_kid: &str,
    plaintext_len: Option<Int<u64>>,
) -> PyResult<PyMigration> {
    let o = ObjectRef::new(&object.0, &object.1);
    let m = s3::migrate_steps(&plan.inner, &o, &metadata.view(), sidecar, active_kid, plaintext_len.map(|n| n.0))
        .or_raise()?;
    Ok(PyMigration { steps: steps(&m.steps), sidecar_deleted: m.sidecar_deleted, sidecar_kept: m.sidecar_kept })
}
