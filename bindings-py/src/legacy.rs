//! The reader of the previous proxy's objects (SPEC.md §11), as core's `legacy` module.

use isec_core::legacy::{
    self, DEFAULT_SIDECAR_CAP, LegacyDecryptor, LegacyKey, LegacyMetadata, LegacyObject, LegacyRange, LegacySeal,
    LegacySegment, LegacySidecar, PartRecord,
};
use isec_core::{AwsLc, Kek, Stream as _};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::buffers::{In, Out, detached_bytes, maybe_detach};
use crate::convert::{Int, Pairs, py_opt};
use crate::error::OrRaise;
use crate::stream::{Context, stream_class};

/// Read-only properties that forward to the wrapped core value (`self.inner`). The legacy
/// classes only show what core parsed and computed, so properties are declared in lists:
/// `.{a, b}: T;` reads fields `a` and `b`, `{a, b}(): T;` calls core's accessors of those
/// names, and `name -> T = expr;` computes one from `inner` (bound to the name between
/// bars). The class's other methods follow in the same `#[pymethods]` block.
macro_rules! getters {
    ($ty:ident |$i:ident| {
        $(.{$($f:ident),+}: $ft:ty;)*
        $({$($g:ident),+}(): $gt:ty;)*
        $($(#[$m:meta])* $name:ident -> $ret:ty = $e:expr;)*
    } $($rest:tt)*) => {
        #[pymethods]
        impl $ty {
            $($(#[getter] fn $f(&self) -> $ft { self.inner.$f })+)*
            $($(#[getter] fn $g(&self) -> $gt { self.inner.$g() })+)*
            $($(#[$m])* #[getter] fn $name(&self) -> $ret { let $i = &self.inner; $e })*
            $($rest)*
        }
    };
}

/// The proxy's S3 user metadata on one object, parsed strictly.
#[pyclass(module = "isec", name = "LegacyMetadata", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacyMetadata {
    inner: LegacyMetadata,
}

getters! {
    PyLegacyMetadata |m| {
        {kid, client_etag}(): Option<&str>;
        {plaintext_size}(): Option<u64>;
        /// Whether a wrapped DEK or a format tag marks the object as the proxy's.
        is_legacy -> bool = m.is_legacy();
        /// The wrapped DEK as the metadata carries it (standard base64).
        wrapped_dek_b64 -> Option<&str> = m.wrapped_dek_b64();
        /// `single-v3`, `multipart-v3` or None.
        format -> Option<&'static str> = m.format().map(|f| f.as_str());
    }

    /// From a metadata mapping or `(name, value)` pairs; names match case-insensitively,
    /// with or without `x-amz-meta-`, and other names are ignored.
    #[new]
    fn new(metadata: Pairs) -> PyResult<Self> {
        Ok(Self { inner: LegacyMetadata::from_pairs(&metadata.0).or_raise()? })
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
        let m = &self.inner;
        let format = m.format().map(|f| f.as_str());
        format!("LegacyMetadata(kid={}, plaintext_size={}, format={})", py_opt(m.kid()), py_opt(m.plaintext_size()), py_opt(format))
    }
}

/// The proxy's sidecar (base64 of gzip of JSON), parsed with a size cap and checked.
#[pyclass(module = "isec", name = "LegacySidecar", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacySidecar {
    inner: LegacySidecar,
}

getters! {
    PyLegacySidecar |s| {
        {version, part_count}(): u32;
        {total_size, ciphertext_size}(): u64;
        {wrapped_dek_b64}(): &str;
        {kid, generation, upload_id, upload_bucket, upload_key, client_etag}(): Option<&str>;
    }

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

    /// The parts as dicts: `number`, `plaintext_size`, `ciphertext_size`, `etag`, `md5`,
    /// `internal_parts` (dicts with `number`, `plaintext_size`, `ciphertext_size`, `etag`).
    fn parts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // Both kinds of part are a number and a record of sizes and ETag.
        let part = |number: u32, r: &PartRecord| -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            d.set_item("number", number)?;
            d.set_item("plaintext_size", r.plaintext_size)?;
            d.set_item("ciphertext_size", r.ciphertext_size)?;
            d.set_item("etag", r.etag.as_deref())?;
            Ok(d)
        };
        let list = PyList::empty(py);
        for p in self.inner.parts() {
            let d = part(p.number, &p.record)?;
            d.set_item("md5", p.md5.as_deref())?;
            let ips = PyList::empty(py);
            for ip in &p.internal_parts {
                ips.append(part(ip.number, &ip.record)?)?;
            }
            d.set_item("internal_parts", ips)?;
            list.append(d)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!("LegacySidecar(version={}, parts={}, total_size={})", s.version(), s.part_count(), s.total_size())
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

getters! {
    PyLegacySeal |s| {
        .{index, ct_offset, ct_len, pt_offset, pt_len}: u64;
        /// `random`, `part` or `frame`: how the seal's nonce was made.
        nonce_rule -> &'static str = s.nonce.name();
        /// The backend part number of a `part` nonce.
        part_number -> Option<u32> = s.nonce.part_number();
        /// The internal part of a `frame` nonce.
        internal_part -> Option<u32> = s.nonce.internal_part();
        /// The frame index of a `frame` nonce.
        frame_index -> Option<u32> = s.nonce.frame_index();
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
#[pyclass(module = "isec", name = "LegacySegment", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacySegment {
    inner: LegacySegment,
}

getters! {
    PyLegacySegment |s| {
        .{part_number, seal_count}: u32;
        .{internal_part}: Option<u32>;
        .{pt_offset, pt_len, ct_offset, ct_len, first_seal}: u64;
    }
}

/// The ciphertext to fetch for a plaintext range of a legacy object (whole seals).
#[pyclass(module = "isec", name = "LegacyRange", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyLegacyRange {
    inner: LegacyRange,
}

getters! {
    PyLegacyRange |r| {
        .{ct_start, ct_end, skip, len, pt_start, first_seal, end_seal}: u64;
        /// The HTTP `Range` header value for the fetch, or None when nothing is needed.
        http_range -> Option<String> = r.http_range();
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

getters! {
    PyLegacyObject |o| {
        {wrapped_dek_b64}(): &str;
        {kid, upload_id}(): Option<&str>;
        {plaintext_len, ciphertext_len, seal_count}(): u64;
        /// `single`, `streamed`, `framed` or `staged`.
        layout -> &'static str = o.layout().name();
    }

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

    /// The segments, in order.
    fn segments(&self) -> Vec<PyLegacySegment> {
        self.inner.segments().iter().map(|&inner| PyLegacySegment { inner }).collect()
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
        let o = &self.inner;
        let (layout, pt, ct, seals) = (o.layout().name(), o.plaintext_len(), o.ciphertext_len(), o.seal_count());
        format!("LegacyObject(layout={layout:?}, plaintext_len={pt}, ciphertext_len={ct}, seals={seals})")
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
    let (k, o, c) = (&key.inner, &object.inner, ciphertext.as_slice());
    detached_bytes(py, c.len(), || legacy::decrypt::<AwsLc>(k, o, c))
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
    let (k, o, r, c) = (&key.inner, &object.inner, &range.inner, fetched.as_slice());
    detached_bytes(py, c.len(), || legacy::decrypt_range::<AwsLc>(k, o, r, c))
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
