//! Envelopes, object keys and frame nonces (SPEC.md §3-5).

use isec_core::envelope::Header;
use isec_core::limits::NONCE_LEN;
use isec_core::shape::Shape;
use isec_core::{Envelope, Error, FramePosition, Nonce, ObjectKey, Prefix};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::buffers::In;
use crate::convert::{Int, getters, record};
use crate::error::{OrRaise, to_py};

/// A decoded envelope: everything needed to open an object except the KEK. Holds no secret.
#[pyclass(module = "isec", name = "Envelope", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyEnvelope {
    pub(crate) inner: Envelope,
}

record! {
    /// The key-free summary `inspect` reports (SPEC.md §3.3).
    #[derive(Clone, PartialEq)]
    "EnvelopeInfo" PyEnvelopeInfo [eq] {
        version: u8,
        suite: u8,
        kid: String,
        wrap_alg: String,
        frame_size: u64,
        layout: String,
        part_size: Option<u64>,
        declared_size: Option<u64>,
        envelope_len: usize,
    }
    repr(kid, layout, frame_size, part_size, declared_size, wrap_alg)
    {
        /// The fields as a dict (the corpus's `inspect` object).
        fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            d.set_item("version", self.version)?;
            d.set_item("suite", self.suite)?;
            d.set_item("kid", &self.kid)?;
            d.set_item("wrap_alg", &self.wrap_alg)?;
            d.set_item("frame_size", self.frame_size)?;
            d.set_item("layout", &self.layout)?;
            d.set_item("part_size", self.part_size)?;
            d.set_item("declared_size", self.declared_size)?;
            d.set_item("envelope_len", self.envelope_len)?;
            Ok(d)
        }
    }
}

/// The `#[pymethods]` of a class holding an object's header (`Envelope`, `ObjectKey`): the
/// header's getters, written once for both, then the class's own getters and methods.
macro_rules! header_methods {
    ($ty:ty { $($getters:tt)* } $($methods:tt)*) => {
        getters! { $ty {
            /// Plaintext bytes per frame.
            frame_size: u64 = |s| s.inner.header().frame_size();
            /// `single`, `parts` or `table`.
            layout: &'static str = |s| s.inner.header().layout.name();
            /// Plaintext bytes per part (parts layout).
            part_size: Option<u64> = |s| s.inner.header().part_size();
            /// The declared plaintext size, if any.
            declared_size: Option<u64> = |s| s.inner.header().declared_size;
            $($getters)*
        } $($methods)* }
    };
}

header_methods! { PyEnvelope {
    /// The key id (for `x-amz-meta-isec-kid`).
    kid: &str = |s| s.inner.kid();
    /// `aes-kwp` or `external`.
    wrap_alg: &'static str = |s| s.inner.wrap_alg().name();
}
    /// Parses the metadata text (base64url, no padding).
    #[staticmethod]
    fn decode_text(text: &str) -> PyResult<Self> {
        Ok(Self { inner: Envelope::decode_text(text).or_raise()? })
    }

    /// Parses the binary form.
    #[staticmethod]
    fn decode(data: In) -> PyResult<Self> {
        Ok(Self { inner: Envelope::decode(data.as_slice()).or_raise()? })
    }

    /// The metadata text (for `x-amz-meta-isec`).
    fn to_text(&self) -> String {
        self.inner.to_text()
    }

    /// The binary form.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// The random HKDF salt.
    #[getter]
    fn salt<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.header().salt)
    }

    /// The header bytes bound into every derived key (SPEC.md §3.1).
    fn header_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.header().to_bytes())
    }

    /// The key-free summary.
    fn info(&self) -> PyEnvelopeInfo {
        let i = self.inner.info();
        PyEnvelopeInfo {
            version: i.version,
            suite: i.suite,
            kid: i.kid.to_string(),
            wrap_alg: i.wrap_alg.name().to_string(),
            frame_size: i.frame_size,
            layout: i.layout.name().to_string(),
            part_size: i.part_size,
            declared_size: i.declared_size,
            envelope_len: i.envelope_len,
        }
    }

    /// `info()` as a dict; with the object's ciphertext length, also its plaintext length
    /// and frame and segment counts (single and parts layouts).
    #[pyo3(signature = (ciphertext_len=None))]
    fn inspect<'py>(&self, py: Python<'py>, ciphertext_len: Option<Int<u64>>) -> PyResult<Bound<'py, PyDict>> {
        let d = self.info().to_dict(py)?;
        if let Some(Int(len)) = ciphertext_len {
            let shape = Shape::from_ciphertext_len(self.inner.header(), len).or_raise()?;
            d.set_item("ciphertext_len", len)?;
            d.set_item("plaintext_len", shape.plaintext_len())?;
            d.set_item("frames", shape.frame_count())?;
            d.set_item("segments", shape.segment_count())?;
        }
        Ok(d)
    }

    /// The metadata text.
    fn __str__(&self) -> String {
        self.inner.to_text()
    }

    fn __repr__(&self) -> String {
        let h = self.inner.header();
        format!(
            "Envelope(kid={:?}, layout={:?}, frame_size={}, declared_size={:?})",
            self.inner.kid(),
            h.layout.name(),
            h.frame_size(),
            h.declared_size
        )
    }
}

/// The per-object key that `Keyring.open` / `Keyring.create_envelope` return. It never
/// exposes key material; it says which format parameters it is bound to.
#[pyclass(module = "isec", name = "ObjectKey", frozen)]
pub(crate) struct PyObjectKey {
    pub(crate) inner: ObjectKey,
}

header_methods! { PyObjectKey {}
    fn __repr__(&self) -> String {
        let h = self.inner.header();
        format!("ObjectKey(layout={:?}, frame_size={})", h.layout.name(), h.frame_size())
    }
}

/// The header of an `Envelope` or an `ObjectKey`.
pub(crate) fn header_of(obj: &Bound<'_, PyAny>) -> PyResult<Header> {
    if let Ok(e) = obj.cast::<PyEnvelope>() {
        return Ok(*e.get().inner.header());
    }
    if let Ok(k) = obj.cast::<PyObjectKey>() {
        return Ok(*k.get().inner.header());
    }
    Err(PyTypeError::new_err("expected an Envelope or an ObjectKey"))
}

record! {
    /// Where a frame stands, as its nonce says (SPEC.md §5.1).
    #[derive(Clone, PartialEq)]
    "FramePosition" PyFramePosition [eq] {
        index: u32,
        segment_end: bool,
        object_end: bool,
    }
    repr(index, segment_end, object_end) from(FramePosition)
    {
        #[new]
        #[pyo3(signature = (index, segment_end=false, object_end=false))]
        fn new(index: Int<u32>, segment_end: bool, object_end: bool) -> Self {
            Self { index: index.0, segment_end, object_end }
        }
    }
}

/// A 12-byte frame nonce: prefix(7) || index u32 BE || flags (SPEC.md §5.1).
#[pyclass(module = "isec", name = "Nonce", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyNonce {
    inner: Nonce,
}

#[pymethods]
impl PyNonce {
    /// A nonce from its bytes (exactly the nonce length).
    #[new]
    fn new(data: In) -> PyResult<Self> {
        let b = data.as_slice();
        let bytes: [u8; NONCE_LEN] = b.try_into().map_err(|_| to_py(Error::InvalidParameter))?;
        Ok(Self { inner: Nonce::from_bytes(bytes) })
    }

    /// The nonce of the frame at `position` in the segment encryption with `prefix`.
    #[staticmethod]
    fn build(prefix: In, position: &PyFramePosition) -> PyResult<Self> {
        let p: Prefix = prefix.as_slice().try_into().map_err(|_| to_py(Error::InvalidParameter))?;
        let pos =
            FramePosition { index: position.index, segment_end: position.segment_end, object_end: position.object_end };
        Ok(Self { inner: Nonce::new(&p, pos) })
    }

    /// The segment prefix.
    #[getter]
    fn prefix<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.prefix().as_bytes())
    }

    /// The decoded position; `bad_frame_flags` for flags no writer sets.
    fn position(&self) -> PyResult<PyFramePosition> {
        Ok(self.inner.position().or_raise()?.into())
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    fn __repr__(&self) -> String {
        format!("Nonce({})", crate::convert::hex(self.inner.as_bytes()))
    }
}
