//! Object geometry, range mapping and segment tables (SPEC.md §6-7).

use isec_core::segment_table::TableEntry;
use isec_core::shape::{RangePlan, Segment, Shape};
use isec_core::{Error, LayoutRequest, Params, Prefix, SegmentTable};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::buffers::In;
use crate::convert::{Int, getters, record};
use crate::envelope::{PyObjectKey, header_of};
use crate::error::{OrRaise, detailed, to_py};

/// An object's geometry: where every segment and frame stands.
#[pyclass(module = "isec", name = "Shape", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyShape {
    pub(crate) inner: Shape,
}

/// The ciphertext to fetch for a plaintext range, and what to keep of it.
#[pyclass(module = "isec", name = "RangePlan", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyRangePlan {
    pub(crate) inner: RangePlan,
}

record! {
    /// One segment: the whole body, or one multipart part.
    #[derive(Clone, PartialEq)]
    "Segment" PySegment [eq] {
        number: u32,
        ordinal: u32,
        is_last: bool,
        pt_start: u64,
        pt_len: u64,
        ct_start: u64,
        ct_len: u64,
    }
    repr(number, ordinal, pt_start, pt_len, ct_start, ct_len) from(Segment)
}

getters! { PyShape {
    plaintext_len: u64 = |s| s.inner.plaintext_len();
    ciphertext_len: u64 = |s| s.inner.ciphertext_len();
    frame_size: u64 = |s| s.inner.frame_size();
    segment_count: u32 = |s| s.inner.segment_count();
    frame_count: u64 = |s| s.inner.frame_count();
}
    /// The geometry of a single- or parts-layout object from its ciphertext length (HEAD's
    /// Content-Length). `header` is the object's `Envelope` or `ObjectKey`.
    #[staticmethod]
    fn from_ciphertext_len(header: &Bound<'_, PyAny>, ciphertext_len: Int<u64>) -> PyResult<Self> {
        Ok(Self { inner: Shape::from_ciphertext_len(&header_of(header)?, ciphertext_len.0).or_raise()? })
    }

    /// The geometry a single- or parts-layout object of `plaintext_len` bytes will have.
    #[staticmethod]
    fn from_plaintext_len(header: &Bound<'_, PyAny>, plaintext_len: Int<u64>) -> PyResult<Self> {
        Ok(Self { inner: Shape::from_plaintext_len(&header_of(header)?, plaintext_len.0).or_raise()? })
    }

    /// The geometry of a table-layout object from its encoded segment table (verified
    /// under `key`) and its ciphertext length.
    #[staticmethod]
    fn from_table(key: &PyObjectKey, table: In, ciphertext_len: Int<u64>) -> PyResult<Self> {
        let t = SegmentTable::decode(table.as_slice(), &key.inner).or_raise()?;
        Ok(Self { inner: Shape::from_table(key.inner.header(), t, ciphertext_len.0).or_raise()? })
    }

    /// The segment at `ordinal`, or None.
    fn segment(&self, ordinal: Int<u32>) -> Option<PySegment> {
        self.inner.segment(ordinal.0).map(PySegment::from)
    }

    /// Maps the plaintext range `[start, end)` (clamped to the object) to the ciphertext to
    /// fetch.
    fn map_range(&self, start: Int<u64>, end: Int<u64>) -> PyRangePlan {
        PyRangePlan { inner: self.inner.map_range(start.0, end.0) }
    }

    /// The largest frame boundary at or below ciphertext offset `offset`.
    fn ct_boundary_floor(&self, offset: Int<u64>) -> u64 {
        self.inner.ct_boundary_floor(offset.0)
    }

    fn __repr__(&self) -> String {
        format!(
            "Shape(plaintext_len={}, ciphertext_len={}, frame_size={}, segments={})",
            self.inner.plaintext_len(),
            self.inner.ciphertext_len(),
            self.inner.frame_size(),
            self.inner.segment_count()
        )
    }
}

/// The geometry of a single- or parts-layout object from its envelope and ciphertext length.
#[pyfunction]
pub(crate) fn shape_for(envelope: &Bound<'_, PyAny>, ciphertext_len: Int<u64>) -> PyResult<PyShape> {
    PyShape::from_ciphertext_len(envelope, ciphertext_len)
}

/// The part size of a multipart upload of `plaintext_len` bytes with parts of about
/// `preferred` bytes (SPEC.md §6.2): rounded up to whole frames of `frame_size` (default
/// 64 KiB) and grown, in whole frames, to the smallest size that fits S3's 10000 parts. Pass
/// it to `Keyring.create_envelope(part_size=...)`. Raises `invalid_parameter` for
/// `preferred == 0`, `invalid_frame_size`, and `limit_exceeded` when the object is larger
/// than the format allows or its parts would exceed S3's 5 GiB.
#[pyfunction]
#[pyo3(signature = (plaintext_len, preferred, *, frame_size=None))]
pub(crate) fn fit_part_size(
    plaintext_len: Int<u64>,
    preferred: Int<u64>,
    frame_size: Option<Int<u64>>,
) -> PyResult<u64> {
    let fit = LayoutRequest::FitParts { size: plaintext_len.0, preferred: preferred.0 };
    let params = Params::new(fit, frame_size.map(|f| f.0), None).or_raise()?;
    // A parts-layout Params always has a part size; the fallback is unreachable.
    params.part_size().ok_or_else(|| to_py(Error::InvalidParameter))
}

getters! { PyRangePlan {
    /// First ciphertext byte to fetch.
    ct_start: u64 = |s| s.inner.ct_start;
    /// End of the fetch (exclusive); equal to `ct_start` when nothing is needed.
    ct_end: u64 = |s| s.inner.ct_end;
    /// Plaintext bytes to drop from the front of the first fetched frame.
    skip: u64 = |s| s.inner.skip;
    /// Plaintext bytes the range holds.
    len: u64 = |s| s.inner.len;
    /// Start of the clamped range.
    pt_start: u64 = |s| s.inner.pt_start;
    /// The HTTP `Range` header value for the fetch, or None when nothing is needed.
    http_range: Option<String> = |s| s.inner.http_range();
}
    /// Whether nothing needs fetching.
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "RangePlan(ct_start={}, ct_end={}, skip={}, len={}, pt_start={})",
            p.ct_start, p.ct_end, p.skip, p.len, p.pt_start
        )
    }
}

/// The authenticated segment table of a table-layout object (SPEC.md §6.3).
#[pyclass(module = "isec", name = "SegmentTable", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PySegmentTable {
    inner: SegmentTable,
}

getters! { PySegmentTable {
    /// Total plaintext bytes.
    plaintext_len: u64 = |s| s.inner.plaintext_len();
}
    /// A table from `(part_number, plaintext_len, prefix)` entries in object order. `prefix`
    /// is the 7-byte nonce prefix of the encryption of that part the upload was completed
    /// with (`Encryptor.prefix`, or the first 7 bytes of the part's ciphertext): readers
    /// refuse a part whose frames carry another. A prefix that is not 7 bytes is
    /// `invalid_parameter`.
    #[new]
    fn new(entries: Vec<Bound<'_, PyTuple>>) -> PyResult<Self> {
        let entries = entries.iter().map(entry_of).collect::<PyResult<Vec<TableEntry>>>()?;
        Ok(Self { inner: SegmentTable::new(entries).or_raise()? })
    }

    /// Verifies (under `key`) and decodes an encoded table.
    #[staticmethod]
    fn decode(data: In, key: &PyObjectKey) -> PyResult<Self> {
        Ok(Self { inner: SegmentTable::decode(data.as_slice(), &key.inner).or_raise()? })
    }

    /// The encoded, authenticated table.
    fn encode<'py>(&self, py: Python<'py>, key: &PyObjectKey) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode(&key.inner))
    }

    /// `(part_number, plaintext_len, prefix)` entries.
    #[getter]
    fn entries<'py>(&self, py: Python<'py>) -> Vec<(u32, u64, Bound<'py, PyBytes>)> {
        self.inner.entries().iter().map(|&(n, len, p)| (n, len, PyBytes::new(py, p.as_bytes()))).collect()
    }

    fn __len__(&self) -> usize {
        self.inner.entries().len()
    }

    fn __repr__(&self) -> String {
        let entries: Vec<String> = self
            .inner
            .entries()
            .iter()
            .map(|(n, len, p)| {
                let hex: String = p.as_bytes().iter().map(|b| format!("\\x{b:02x}")).collect();
                format!("({n}, {len}, b'{hex}')")
            })
            .collect();
        format!("SegmentTable([{}])", entries.join(", "))
    }
}

/// One `(part_number, plaintext_len, prefix)` entry. A tuple of another length (such as the
/// `(part_number, plaintext_len)` pairs of format versions without prefixes) and a prefix that
/// is not 7 bytes of a bytes-like object are `invalid_parameter`.
fn entry_of(t: &Bound<'_, PyTuple>) -> PyResult<TableEntry> {
    if t.len() != 3 {
        return Err(detailed(Error::InvalidParameter, "a table entry is (part_number, plaintext_len, prefix)"));
    }
    let Int(number) = t.get_item(0)?.extract::<Int<u32>>()?;
    let Int(len) = t.get_item(1)?.extract::<Int<u64>>()?;
    let bad = || detailed(Error::InvalidParameter, "a table entry's prefix is 7 bytes (Encryptor.prefix)");
    let prefix = In::get(&t.get_item(2)?).map_err(|_| bad())?;
    let prefix: Prefix = prefix.as_slice().try_into().map_err(|_| bad())?;
    Ok((number, len, prefix))
}
