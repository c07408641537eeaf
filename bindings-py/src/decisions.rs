//! Key-free decisions over metadata: object classification, the copy decision (SPEC.md §12)
//! and the bucket scan planner (SPEC.md §14).

use isec_core::Error;
use isec_core::copy::{self, CopyLimits, CopyPlan, CopyRequest, Directive};
use isec_core::metadata::{self, LegacyKind, TableSource};
use isec_core::scan::{ScanClass, ScanPlanner, Tally};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::{Int, Pairs, Repr, getters, record};
use crate::envelope::PyEnvelope;
use crate::error::{OrRaise, clear_callback_error, to_py};
use crate::keyring::PyKeyring;
use crate::layout::PyShape;

record! {
    /// What an object's metadata says it is.
    "ObjectFormat" PyObjectFormat {
        /// `plaintext`, `isec`, `legacy` or `unreadable`.
        format: &'static str,
        /// The key id the object is under, if any.
        kid: Option<String>,
        /// The decoded envelope of an isec object.
        envelope: Option<PyEnvelope>,
        /// For legacy objects: `single`, `staged` or `sidecar_only`.
        legacy_kind: Option<&'static str>,
        /// For staged legacy objects: the generation (hex).
        generation: Option<String>,
        /// For unreadable objects: the error code.
        error: Option<&'static str>,
    }
    repr(format, kid)
}

/// Classifies an object from its user metadata (SPEC.md §3.2, §11.1); `legacy_sidecar` says
/// whether the legacy proxy's object-keyed sidecar exists.
#[pyfunction]
#[pyo3(signature = (metadata, legacy_sidecar=false))]
pub(crate) fn classify(metadata: Pairs, legacy_sidecar: bool) -> PyObjectFormat {
    let f = metadata::classify(&metadata.view(), legacy_sidecar);
    let kind = f.legacy_kind();
    PyObjectFormat {
        format: f.name(),
        kid: f.kid().map(str::to_string),
        envelope: f.envelope().map(|e| PyEnvelope { inner: e.clone() }),
        legacy_kind: kind.map(LegacyKind::name),
        generation: kind.and_then(LegacyKind::generation).map(str::to_string),
        error: f.error().map(|e| e.code()),
    }
}

/// The legacy proxy's sidecar object key for `object_key`.
#[pyfunction]
pub(crate) fn legacy_sidecar_key(object_key: &str) -> String {
    metadata::legacy_sidecar_key(object_key)
}

/// The isec segment-table sidecar key for `object_key`.
#[pyfunction]
pub(crate) fn table_sidecar_key(object_key: &str) -> String {
    metadata::table_sidecar_key(object_key)
}

/// Pairs as a dict, in their order (a key given twice keeps its last value).
fn dict_of<'py>(py: Python<'py>, pairs: &[(String, String)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in pairs {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// The complete metadata of a new isec object: `user` (keys normalised, the format's own
/// keys dropped) with `envelope`'s `isec` and `isec-kid`. Every writer builds it here, so
/// no object gets a stale envelope value a caller passed along.
#[pyfunction]
pub(crate) fn object_metadata<'py>(
    py: Python<'py>,
    user: Pairs,
    envelope: &PyEnvelope,
) -> PyResult<Bound<'py, PyDict>> {
    dict_of(py, &metadata::object_metadata(&user.view(), &envelope.inner))
}

/// The user's part of an object's metadata: every key isec or the legacy proxy owns removed,
/// keys normalised (lower case, no `x-amz-meta-`). What a re-encrypted copy carries over.
#[pyfunction]
pub(crate) fn user_metadata<'py>(py: Python<'py>, metadata: Pairs) -> PyResult<Bound<'py, PyDict>> {
    dict_of(py, &metadata::user_metadata(&metadata.view()))
}

/// Where a table-layout object's segment table is: the table bytes when the metadata holds
/// it inline (`isec-table`), None when it is in the sidecar object `table_sidecar_key(key)`.
/// The bytes are only decoded: `Shape.from_table` checks their MAC. Raises
/// `malformed_segment_table` for an inline value that is not a table's encoding.
#[pyfunction]
pub(crate) fn table_source<'py>(py: Python<'py>, metadata: Pairs) -> PyResult<Option<Bound<'py, PyBytes>>> {
    Ok(match metadata::table_source(&metadata.view()).or_raise()? {
        TableSource::Inline(bytes) => Some(PyBytes::new(py, &bytes)),
        TableSource::Sidecar => None,
    })
}

record! {
    /// S3's limits that shape a copy; defaults are S3's (5 GiB single copy, 5 MiB..5 GiB parts,
    /// 10000 parts, 2 KB metadata).
    #[derive(Clone, PartialEq)]
    "CopyLimits" PyCopyLimits [eq] {
        single_copy_max: u64,
        part_min: u64,
        part_max: u64,
        max_parts: u32,
        metadata_max: usize,
    }
    repr(single_copy_max, part_min, part_max, max_parts, metadata_max)
    {
        #[new]
        #[pyo3(signature = (*, single_copy_max=None, part_min=None, part_max=None, max_parts=None, metadata_max=None))]
        fn new(
            single_copy_max: Option<Int<u64>>,
            part_min: Option<Int<u64>>,
            part_max: Option<Int<u64>>,
            max_parts: Option<Int<u32>>,
            metadata_max: Option<Int<usize>>,
        ) -> Self {
            let d = CopyLimits::default();
            Self {
                single_copy_max: single_copy_max.map_or(d.single_copy_max, |v| v.0),
                part_min: part_min.map_or(d.part_min, |v| v.0),
                part_max: part_max.map_or(d.part_max, |v| v.0),
                max_parts: max_parts.map_or(d.max_parts, |v| v.0),
                metadata_max: metadata_max.map_or(d.metadata_max, |v| v.0),
            }
        }
    }
}

impl From<&PyCopyLimits> for CopyLimits {
    fn from(l: &PyCopyLimits) -> Self {
        CopyLimits::default()
            .with_single_copy_max(l.single_copy_max)
            .with_part_min(l.part_min)
            .with_part_max(l.part_max)
            .with_max_parts(l.max_parts)
            .with_metadata_max(l.metadata_max)
    }
}

/// The copy decision: the cheapest valid plan.
#[pyclass(module = "isec", name = "CopyPlan", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyCopyPlan {
    pub(crate) inner: CopyPlan,
}

impl From<CopyPlan> for PyCopyPlan {
    fn from(inner: CopyPlan) -> Self {
        Self { inner }
    }
}

getters! { PyCopyPlan {
    /// `native`, `native_replace`, `part_copy` or `reencrypt`.
    action: &'static str = |s| s.inner.action.name();
    /// The destination's complete user metadata, when it is not the source's as-is; for
    /// `reencrypt`, the user part only (the new envelope's keys come from `object_metadata`).
    metadata: Option<Vec<(String, String)>> = |s| s.inner.metadata.clone();
    /// Source byte ranges `[start, end)` for UploadPartCopy, in part order.
    ranges: Vec<(u64, u64)> = |s| s.inner.ranges.clone();
    /// Whether the source's sidecar must be copied too.
    copy_sidecar: bool = |s| s.inner.copy_sidecar;
    /// Whether the envelope was rewrapped under another key.
    rewrapped: bool = |s| s.inner.rewrapped;
    /// Why, for `reencrypt`.
    reason: Option<&'static str> = |s| s.inner.reason.map(|r| r.code());
    /// S3 requests the plan makes.
    requests: u64 = |s| s.inner.requests;
    /// Object bytes that pass through the client.
    client_bytes: u64 = |s| s.inner.client_bytes;
    /// The sidecar the plan copies before the object: `table` (isec's segment table) or
    /// `legacy` (the previous proxy's), or None.
    sidecar: Option<&'static str> = |s| s.inner.sidecar.map(|c| c.name());
}
    /// The key of the plan's sidecar for the object at `object_key` (the source's, then the
    /// destination's); None when the plan copies no sidecar.
    fn sidecar_key(&self, object_key: &str) -> Option<String> {
        self.inner.sidecar.map(|s| s.key(object_key))
    }

    /// The plan as a dict (the corpus's `expect` object, with lists for pairs).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = &self.inner;
        let d = PyDict::new(py);
        d.set_item("action", self.action())?;
        let meta: Option<Vec<Vec<&str>>> =
            p.metadata.as_ref().map(|m| m.iter().map(|(k, v)| vec![k.as_str(), v.as_str()]).collect());
        d.set_item("metadata", meta)?;
        let ranges: Vec<Vec<u64>> = p.ranges.iter().map(|(a, b)| vec![*a, *b]).collect();
        d.set_item("ranges", ranges)?;
        d.set_item("copy_sidecar", p.copy_sidecar)?;
        d.set_item("rewrapped", p.rewrapped)?;
        d.set_item("reason", self.reason())?;
        d.set_item("requests", p.requests)?;
        d.set_item("client_bytes", p.client_bytes)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "CopyPlan(action={:?}, ranges={}, sidecar={}, rewrapped={}, reason={:?}, requests={})",
            self.action(),
            self.inner.ranges.len(),
            self.sidecar().repr(),
            self.inner.rewrapped.repr(),
            self.reason(),
            self.inner.requests
        )
    }
}

/// Decides how to copy an object as cheaply as the format allows: a pure function of the
/// source's metadata and stored size, the directive (`COPY` or `REPLACE`), the target key
/// and the keyring. Raises what the keyring cannot do (`unknown_kid`, `key_disabled`,
/// `key_not_active`), `limit_exceeded` over S3's budgets, and the source's own error when its
/// metadata is unreadable and more than a byte copy is needed.
#[pyfunction]
#[pyo3(signature = (
    source_metadata, source_size, *, keyring=None, source_sidecar=false, source_shape=None,
    directive="COPY", new_metadata=None, target_kid=None, rotate_dek=false, migrate_legacy=false,
    require_encryption=false, limits=None
))]
#[allow(clippy::too_many_arguments)] // One keyword argument per field of core's CopyRequest.
pub(crate) fn decide_copy(
    source_metadata: Pairs,
    source_size: Int<u64>,
    keyring: Option<PyRef<'_, PyKeyring>>,
    source_sidecar: bool,
    source_shape: Option<PyRef<'_, PyShape>>,
    directive: &str,
    new_metadata: Option<Pairs>,
    target_kid: Option<&str>,
    rotate_dek: bool,
    migrate_legacy: bool,
    require_encryption: bool,
    limits: Option<PyRef<'_, PyCopyLimits>>,
) -> PyResult<PyCopyPlan> {
    let directive =
        Directive::from_name(&directive.to_ascii_uppercase()).ok_or_else(|| to_py(Error::InvalidParameter))?;
    let meta = source_metadata.view();
    let new_meta = new_metadata.unwrap_or(Pairs(Vec::new()));
    let new_view = new_meta.view();
    let mut req = CopyRequest::new(&meta, source_size.0);
    req.source_sidecar = source_sidecar;
    req.source_shape = source_shape.as_ref().map(|s| &s.inner);
    req.directive = directive;
    req.new_metadata = &new_view;
    req.target_kid = target_kid;
    req.rotate_dek = rotate_dek;
    req.migrate_legacy = migrate_legacy;
    req.require_encryption = require_encryption;
    if let Some(l) = &limits {
        req.limits = CopyLimits::from(&**l);
    }
    clear_callback_error();
    let plan = copy::decide(&req, keyring.as_ref().map(|k| &k.inner)).or_raise()?;
    Ok(plan.into())
}

record! {
    /// Object count and stored bytes.
    #[derive(Clone, PartialEq)]
    "Tally" PyTally [eq] {
        objects: u64,
        bytes: u64,
    }
    repr(objects, bytes) from(Tally)
}

/// Aggregates a bucket scan: how many objects and bytes are on which key and format, and so
/// how much rotation work is left. Fed one listing entry at a time; needs no object bytes
/// and no key material.
#[pyclass(module = "isec", name = "ScanPlanner")]
pub(crate) struct PyScanPlanner {
    inner: ScanPlanner,
}

#[pymethods]
impl PyScanPlanner {
    /// A planner judging against `keyring`'s key states (no key material is kept).
    #[new]
    fn new(keyring: &PyKeyring) -> Self {
        Self { inner: ScanPlanner::new(&keyring.inner) }
    }

    /// The class names, in report order.
    #[staticmethod]
    fn classes() -> Vec<&'static str> {
        ScanClass::ALL.iter().map(|c| c.name()).collect()
    }

    /// Classifies one listing entry and counts it; returns its class name (`current`,
    /// `needs_rewrap`, `needs_reencrypt`, `plaintext`, `unreadable`, `sidecar`).
    #[pyo3(signature = (key, metadata, size, legacy_sidecar=false))]
    fn add(&mut self, key: &str, metadata: Pairs, size: Int<u64>, legacy_sidecar: bool) -> &'static str {
        self.inner.add(key, &metadata.view(), size.0, legacy_sidecar).name()
    }

    /// Count and bytes of one class.
    fn tally(&self, class_name: &str) -> PyResult<PyTally> {
        Ok(self.inner.tally(ScanClass::from_name(class_name).ok_or_else(|| to_py(Error::InvalidParameter))?).into())
    }

    /// `(kid, class, objects, bytes)` rows, sorted by kid then class; `-` stands for no kid.
    fn by_kid(&self) -> Vec<(String, &'static str, u64, u64)> {
        self.inner.by_kid().map(|(k, c, t)| (k.to_string(), c.name(), t.objects, t.bytes)).collect()
    }

    /// Objects and bytes that still need work (rewrap or re-encryption).
    fn remaining(&self) -> PyTally {
        self.inner.remaining().into()
    }
}
