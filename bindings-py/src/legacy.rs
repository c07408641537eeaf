//! The reader of the previous proxy's objects (SPEC.md §11), as core's `legacy` module.

use isec_core::legacy::{
    self, DEFAULT_SIDECAR_CAP, LegacyDecryptor, LegacyKey, LegacyLayout, LegacyMetadata, LegacyObject, LegacyRange,
    LegacySeal, LegacySegment, LegacySidecar, NonceRule,
};
use isec_core::{AwsLc, Kek, Stream as _};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::buffers::{In, Out, maybe_detach};
use crate::convert::{Int, Pairs, py_opt};
use crate::error::OrRaise;
use crate::stream::{Context, stream_class};

/// The proxy's S3 user metadata on one object, parsed strictly.
#[pyclass(module = "isec", name = "LegacyMetadata", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacyMetadata {
    inner: LegacyMetadata,
}

#[pymethods]
impl PyLegacyMetadata {
    /// From a metadata mapping or `(name, value)` pairs; names match case-insensitively,
    /// with or without `x-amz-meta-`, and other names are ignored.
    #[new]
    fn new(metadata: Pairs) -> PyResult<Self> {
        Ok(Self { inner: LegacyMetadata::from_pairs(&metadata.0).or_raise()? })
    }

    /// Whether a wrapped DEK or a format tag marks the object as the proxy's.
    #[getter]
    fn is_legacy(&self) -> bool {
        self.inner.is_legacy()
    }

    /// The wrapped DEK as the metadata carries it (standard base64).
    #[getter]
    fn wrapped_dek_b64(&self) -> Option<&str> {
        self.inner.wrapped_dek_b64()
    }

    #[getter]
    fn kid(&self) -> Option<&str> {
        self.inner.kid()
    }

    #[getter]
    fn client_etag(&self) -> Option<&str> {
        self.inner.client_etag()
    }

    #[getter]
    fn plaintext_size(&self) -> Option<u64> {
        self.inner.plaintext_size()
    }

    /// `single-v3`, `multipart-v3` or None.
    #[getter]
    fn format(&self) -> Option<&'static str> {
        self.inner.format().map(|f| f.as_str())
    }

    /// The staged upload's generation (32 bytes) or None.
    #[getter]
    fn generation<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.generation().map(|g| PyBytes::new(py, g))
    }

    /// The bucket key of the sidecar this object needs, or None.
    fn sidecar_key(&self, object_key: &str) -> Option<String> {
        self.inner.sidecar_key(object_key)
    }

    fn __repr__(&self) -> String {
        format!(
            "LegacyMetadata(kid={}, plaintext_size={}, format={})",
            py_opt(self.inner.kid()),
            py_opt(self.inner.plaintext_size()),
            py_opt(self.inner.format().map(|f| f.as_str()))
        )
    }
}

/// The proxy's sidecar (base64 of gzip of JSON), parsed with a size cap and checked.
#[pyclass(module = "isec", name = "LegacySidecar", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacySidecar {
    inner: LegacySidecar,
}

#[pymethods]
impl PyLegacySidecar {
    /// Parses a sidecar object's body; `max_inflated` caps the JSON's size.
    #[staticmethod]
    #[pyo3(signature = (body, max_inflated=Int(DEFAULT_SIDECAR_CAP)))]
    fn parse(py: Python<'_>, body: In, max_inflated: Int<usize>) -> PyResult<Self> {
        let (b, max_inflated) = (body.as_slice(), max_inflated.0);
        let inner = maybe_detach(py, b.len(), || LegacySidecar::parse(b, max_inflated)).or_raise()?;
        Ok(Self { inner })
    }

    /// Parses and checks the sidecar's JSON.
    #[staticmethod]
    fn from_json(data: In) -> PyResult<Self> {
        Ok(Self { inner: LegacySidecar::from_json(data.as_slice()).or_raise()? })
    }

    #[getter]
    fn version(&self) -> u32 {
        self.inner.version()
    }

    #[getter]
    fn part_count(&self) -> u32 {
        self.inner.part_count()
    }

    #[getter]
    fn total_size(&self) -> u64 {
        self.inner.total_size()
    }

    #[getter]
    fn ciphertext_size(&self) -> u64 {
        self.inner.ciphertext_size()
    }

    #[getter]
    fn wrapped_dek_b64(&self) -> &str {
        self.inner.wrapped_dek_b64()
    }

    #[getter]
    fn kid(&self) -> Option<&str> {
        self.inner.kid()
    }

    #[getter]
    fn generation(&self) -> Option<&str> {
        self.inner.generation()
    }

    #[getter]
    fn upload_id(&self) -> Option<&str> {
        self.inner.upload_id()
    }

    #[getter]
    fn upload_bucket(&self) -> Option<&str> {
        self.inner.upload_bucket()
    }

    #[getter]
    fn upload_key(&self) -> Option<&str> {
        self.inner.upload_key()
    }

    #[getter]
    fn client_etag(&self) -> Option<&str> {
        self.inner.client_etag()
    }

    /// The parts as dicts: `number`, `plaintext_size`, `ciphertext_size`, `etag`, `md5`,
    /// `internal_parts` (dicts with `number`, `plaintext_size`, `ciphertext_size`, `etag`).
    fn parts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for p in self.inner.parts() {
            let d = PyDict::new(py);
            d.set_item("number", p.number)?;
            d.set_item("plaintext_size", p.plaintext_size)?;
            d.set_item("ciphertext_size", p.ciphertext_size)?;
            d.set_item("etag", p.etag.as_deref())?;
            d.set_item("md5", p.md5.as_deref())?;
            let ips = PyList::empty(py);
            for ip in &p.internal_parts {
                let i = PyDict::new(py);
                i.set_item("number", ip.number)?;
                i.set_item("plaintext_size", ip.plaintext_size)?;
                i.set_item("ciphertext_size", ip.ciphertext_size)?;
                i.set_item("etag", ip.etag.as_deref())?;
                ips.append(i)?;
            }
            d.set_item("internal_parts", ips)?;
            list.append(d)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!(
            "LegacySidecar(version={}, parts={}, total_size={})",
            self.inner.version(),
            self.inner.part_count(),
            self.inner.total_size()
        )
    }
}

fn layout_name(l: LegacyLayout) -> &'static str {
    match l {
        LegacyLayout::Single => "single",
        LegacyLayout::Streamed => "streamed",
        LegacyLayout::Framed => "framed",
        LegacyLayout::Staged => "staged",
    }
}

/// A legacy object's geometry, from its metadata, its sidecar and its body's length.
#[pyclass(module = "isec", name = "LegacyObject", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacyObject {
    pub(crate) inner: LegacyObject,
}

/// One seal: `nonce(12) || ciphertext || tag(16)`.
#[pyclass(module = "isec", name = "LegacySeal", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacySeal {
    inner: LegacySeal,
}

#[pymethods]
impl PyLegacySeal {
    #[getter]
    fn index(&self) -> u64 {
        self.inner.index
    }
    #[getter]
    fn ct_offset(&self) -> u64 {
        self.inner.ct_offset
    }
    #[getter]
    fn ct_len(&self) -> u64 {
        self.inner.ct_len
    }
    #[getter]
    fn pt_offset(&self) -> u64 {
        self.inner.pt_offset
    }
    #[getter]
    fn pt_len(&self) -> u64 {
        self.inner.pt_len
    }
    /// `random`, `part` or `frame`: how the seal's nonce was made.
    #[getter]
    fn nonce_rule(&self) -> &'static str {
        match self.inner.nonce {
            NonceRule::Random => "random",
            NonceRule::Part { .. } => "part",
            NonceRule::Frame { .. } => "frame",
        }
    }
    /// The backend part number of a `part` nonce.
    #[getter]
    fn part_number(&self) -> Option<u32> {
        match self.inner.nonce {
            NonceRule::Part { part_number } => Some(part_number),
            _ => None,
        }
    }
    /// The internal part of a `frame` nonce.
    #[getter]
    fn internal_part(&self) -> Option<u32> {
        match self.inner.nonce {
            NonceRule::Frame { internal_part, .. } => Some(internal_part),
            _ => None,
        }
    }
    /// The frame index of a `frame` nonce.
    #[getter]
    fn frame_index(&self) -> Option<u32> {
        match self.inner.nonce {
            NonceRule::Frame { frame_index, .. } => Some(frame_index),
            _ => None,
        }
    }
    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "LegacySeal(index={}, ct_offset={}, ct_len={}, pt_offset={}, pt_len={})",
            s.index, s.ct_offset, s.ct_len, s.pt_offset, s.pt_len
        )
    }
}

/// One segment of a legacy object: a run of seals.
#[pyclass(module = "isec", name = "LegacySegment", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacySegment {
    part_number: u32,
    internal_part: Option<u32>,
    pt_offset: u64,
    pt_len: u64,
    ct_offset: u64,
    ct_len: u64,
    seal_count: u32,
    first_seal: u64,
}

impl From<&LegacySegment> for PyLegacySegment {
    fn from(s: &LegacySegment) -> Self {
        Self {
            part_number: s.part_number,
            internal_part: s.internal_part,
            pt_offset: s.pt_offset,
            pt_len: s.pt_len,
            ct_offset: s.ct_offset,
            ct_len: s.ct_len,
            seal_count: s.seal_count,
            first_seal: s.first_seal,
        }
    }
}

/// The ciphertext to fetch for a plaintext range of a legacy object (whole seals).
#[pyclass(module = "isec", name = "LegacyRange", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacyRange {
    inner: LegacyRange,
}

#[pymethods]
impl PyLegacyRange {
    #[getter]
    fn ct_start(&self) -> u64 {
        self.inner.ct_start
    }
    #[getter]
    fn ct_end(&self) -> u64 {
        self.inner.ct_end
    }
    #[getter]
    fn skip(&self) -> u64 {
        self.inner.skip
    }
    #[getter]
    fn len(&self) -> u64 {
        self.inner.len
    }
    #[getter]
    fn pt_start(&self) -> u64 {
        self.inner.pt_start
    }
    #[getter]
    fn first_seal(&self) -> u64 {
        self.inner.first_seal
    }
    #[getter]
    fn end_seal(&self) -> u64 {
        self.inner.end_seal
    }
    /// The HTTP `Range` header value for the fetch, or None when nothing is needed.
    #[getter]
    fn http_range(&self) -> Option<String> {
        self.inner.http_range()
    }
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "LegacyRange(ct_start={}, ct_end={}, skip={}, len={}, pt_start={})",
            r.ct_start, r.ct_end, r.skip, r.len, r.pt_start
        )
    }
}

#[pymethods]
impl PyLegacyObject {
    /// Describes an object from its metadata, its sidecar when it has one, and the body's
    /// length (HEAD's Content-Length).
    #[new]
    #[pyo3(signature = (metadata, ciphertext_len, sidecar=None))]
    fn new(metadata: &PyLegacyMetadata, ciphertext_len: Int<u64>, sidecar: Option<&PyLegacySidecar>) -> PyResult<Self> {
        let inner = LegacyObject::new(&metadata.inner, sidecar.map(|s| &s.inner), ciphertext_len.0).or_raise()?;
        Ok(Self { inner })
    }

    /// The same object with its multipart upload id known, so derived nonces are checked.
    fn with_upload_id(&self, upload_id: &str) -> PyResult<Self> {
        Ok(Self { inner: self.inner.clone().with_upload_id(upload_id).or_raise()? })
    }

    /// `single`, `streamed`, `framed` or `staged`.
    #[getter]
    fn layout(&self) -> &'static str {
        layout_name(self.inner.layout())
    }

    #[getter]
    fn wrapped_dek_b64(&self) -> &str {
        self.inner.wrapped_dek_b64()
    }

    #[getter]
    fn kid(&self) -> Option<&str> {
        self.inner.kid()
    }

    #[getter]
    fn upload_id(&self) -> Option<&str> {
        self.inner.upload_id()
    }

    #[getter]
    fn plaintext_len(&self) -> u64 {
        self.inner.plaintext_len()
    }

    #[getter]
    fn ciphertext_len(&self) -> u64 {
        self.inner.ciphertext_len()
    }

    #[getter]
    fn seal_count(&self) -> u64 {
        self.inner.seal_count()
    }

    /// The segments, in order.
    fn segments(&self) -> Vec<PyLegacySegment> {
        self.inner.segments().iter().map(PyLegacySegment::from).collect()
    }

    /// Seal `index`, or None past the end.
    fn seal(&self, index: Int<u64>) -> Option<PyLegacySeal> {
        self.inner.seal(index.0).map(|inner| PyLegacySeal { inner })
    }

    /// Every seal, in order.
    fn seals(&self) -> Vec<PyLegacySeal> {
        self.inner.seals().map(|inner| PyLegacySeal { inner }).collect()
    }

    /// The nonce `seal` must carry, when its layout derives nonces and the upload id is known.
    fn expected_nonce<'py>(&self, py: Python<'py>, seal: &PyLegacySeal) -> Option<Bound<'py, PyBytes>> {
        self.inner.expected_nonce(&seal.inner).map(|n| PyBytes::new(py, &n))
    }

    /// The largest seal among seals `[first, end)`, in ciphertext bytes.
    fn max_seal_len(&self, first: Int<u64>, end: Int<u64>) -> u64 {
        self.inner.max_seal_len(first.0, end.0)
    }

    /// Maps the plaintext range `[start, end)` (clamped) to the whole seals covering it.
    fn plan_range(&self, start: Int<u64>, end: Int<u64>) -> PyResult<PyLegacyRange> {
        Ok(PyLegacyRange { inner: self.inner.plan_range(start.0, end.0).or_raise()? })
    }

    fn __repr__(&self) -> String {
        format!(
            "LegacyObject(layout={:?}, plaintext_len={}, ciphertext_len={}, seals={})",
            layout_name(self.inner.layout()),
            self.inner.plaintext_len(),
            self.inner.ciphertext_len(),
            self.inner.seal_count()
        )
    }
}

/// A legacy object's DEK (from `Keyring.open_legacy`, `LegacyKey.open` or `open_object`).
#[pyclass(module = "isec", name = "LegacyKey", frozen)]
pub(crate) struct PyLegacyKey {
    pub(crate) inner: LegacyKey,
}

#[pymethods]
impl PyLegacyKey {
    /// Unwraps a wrapped DEK (standard base64, as the proxy stored it) with a 32-byte KEK.
    #[staticmethod]
    fn open(kek: In, wrapped_b64: &str) -> PyResult<Self> {
        let kek = Kek::from_slice(kek.as_slice()).or_raise()?;
        Ok(Self { inner: LegacyKey::open(&kek, wrapped_b64).or_raise()? })
    }

    /// `open` on the wrapped DEK the object's metadata or sidecar names.
    #[staticmethod]
    fn open_object(kek: In, object: &PyLegacyObject) -> PyResult<Self> {
        let kek = Kek::from_slice(kek.as_slice()).or_raise()?;
        Ok(Self { inner: LegacyKey::open_object(&kek, &object.inner).or_raise()? })
    }

    fn __repr__(&self) -> &'static str {
        "LegacyKey(..)"
    }
}

/// Decrypts a whole legacy object held in memory: all or nothing.
#[pyfunction]
pub(crate) fn legacy_decrypt<'py>(
    py: Python<'py>,
    key: &PyLegacyKey,
    object: &PyLegacyObject,
    ciphertext: In,
) -> PyResult<Bound<'py, PyBytes>> {
    let c = ciphertext.as_slice();
    let (k, o) = (&key.inner, &object.inner);
    let pt = maybe_detach(py, c.len(), || legacy::decrypt::<AwsLc>(k, o, c)).or_raise()?;
    Ok(PyBytes::new(py, &pt))
}

/// Decrypts a planned range from the fetched ciphertext `[range.ct_start, range.ct_end)`.
#[pyfunction]
pub(crate) fn legacy_decrypt_range<'py>(
    py: Python<'py>,
    key: &PyLegacyKey,
    object: &PyLegacyObject,
    range: &PyLegacyRange,
    fetched: In,
) -> PyResult<Bound<'py, PyBytes>> {
    let c = fetched.as_slice();
    let (k, o, r) = (&key.inner, &object.inner, &range.inner);
    let pt = maybe_detach(py, c.len(), || legacy::decrypt_range::<AwsLc>(k, o, r, c)).or_raise()?;
    Ok(PyBytes::new(py, &pt))
}

/// Streaming decryptor for a whole legacy object or a planned range of one.
#[pyclass(module = "isec", name = "LegacyDecryptor")]
pub(crate) struct PyLegacyDecryptor {
    s: Context<LegacyDecryptor<AwsLc>>,
}

impl PyLegacyDecryptor {
    fn wrap(d: Result<LegacyDecryptor<AwsLc>, isec_core::Error>) -> PyResult<Self> {
        Ok(Self { s: Context::new(d.or_raise()?, false) })
    }
}

stream_class! {
    PyLegacyDecryptor;
    decryptor;
    #[new]
    fn new(key: &PyLegacyKey, object: &PyLegacyObject) -> PyResult<Self> {
        Self::wrap(LegacyDecryptor::new(&key.inner, &object.inner))
    }

    /// A decryptor for the fetched ciphertext of `range` that releases exactly its plaintext.
    #[staticmethod]
    fn for_range(key: &PyLegacyKey, object: &PyLegacyObject, range: &PyLegacyRange) -> PyResult<Self> {
        Self::wrap(LegacyDecryptor::for_range(&key.inner, &object.inner, &range.inner))
    }

    /// `LegacyDecryptor(...)` / `for_range` buffering seals of up to `max_seal` bytes.
    #[staticmethod]
    #[pyo3(signature = (key, object, max_seal, range=None))]
    fn with_seal_limit(
        key: &PyLegacyKey,
        object: &PyLegacyObject,
        max_seal: Int<usize>,
        range: Option<&PyLegacyRange>,
    ) -> PyResult<Self> {
        Self::wrap(LegacyDecryptor::with_seal_limit(&key.inner, &object.inner, range.map(|r| &r.inner), max_seal.0))
    }
}

/// `SHA-256(upload_id + decimal(part_number))[:12]`: a streamed PUT's backend-part nonce.
#[pyfunction]
pub(crate) fn legacy_part_nonce<'py>(py: Python<'py>, upload_id: &str, part_number: Int<u32>) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &legacy::part_nonce(upload_id, part_number.0))
}

/// `SHA-256("{upload_id}:{internal_part}:{frame_index}")[:12]`: a framed upload's seal nonce.
#[pyfunction]
pub(crate) fn legacy_frame_nonce<'py>(
    py: Python<'py>,
    upload_id: &str,
    internal_part: Int<u32>,
    frame_index: Int<u32>,
) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &legacy::frame_nonce(upload_id, internal_part.0, frame_index.0))
}

/// The staged layout's generation for a wrapped DEK: SHA-256 of it.
#[pyfunction]
pub(crate) fn legacy_generation_for<'py>(py: Python<'py>, wrapped_dek: In) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &legacy::generation_for(wrapped_dek.as_slice()))
}

/// The ciphertext sizes of the seals the proxy writes for a segment of `plaintext_len` bytes.
#[pyfunction]
pub(crate) fn legacy_split_seals(plaintext_len: Int<u64>) -> PyResult<Vec<u64>> {
    Ok(legacy::split_seals(plaintext_len.0).or_raise()?.collect())
}
