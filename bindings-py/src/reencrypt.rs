//! DEK rotation and legacy migration: core's resumable, throttled re-encryption job
//! (SPEC.md §13), with the caller's clock and I/O.

use isec_core::legacy::LegacyObject;
use isec_core::reencrypt::{Checkpoint, IsecSource, LegacySource, Progress, Reencryption, Source, Step};
use isec_core::shape::Shape;
use isec_core::{AwsLc, Envelope, Error, LayoutRequest, Params};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::SCRATCH_KEEP;
use crate::buffers::{In, Out, disjoint, maybe_detach, wipe};
use crate::convert::Int;
use crate::envelope::PyEnvelope;
use crate::errors::{OrRaise, to_py};
use crate::keyring::PyKeyring;
use crate::layout::PyShape;
use crate::legacy::PyLegacyObject;

/// An isec object to re-encrypt under a new DEK: its envelope (opened with `keyring`) and
/// its shape. The source is opened when the job starts or resumes, and checked here.
#[pyclass(module = "isec", name = "IsecSource", frozen)]
pub(crate) struct PyIsecSource {
    keyring: Py<PyKeyring>,
    envelope: Envelope,
    shape: Shape,
}

#[pymethods]
impl PyIsecSource {
    #[new]
    fn new(keyring: Bound<'_, PyKeyring>, envelope: &PyEnvelope, shape: &PyShape) -> PyResult<Self> {
        let py = keyring.py();
        let s = Self { keyring: keyring.unbind(), envelope: envelope.inner.clone(), shape: shape.inner.clone() };
        s.open(keyring_ref(&s.keyring, py)?)?;
        Ok(s)
    }

    #[getter]
    fn plaintext_len(&self) -> u64 {
        self.shape.plaintext_len()
    }

    #[getter]
    fn ciphertext_len(&self) -> u64 {
        self.shape.ciphertext_len()
    }
}

impl PyIsecSource {
    fn open(&self, ring: PyRef<'_, PyKeyring>) -> PyResult<Box<dyn Source>> {
        let s = IsecSource::<AwsLc>::new(&ring.inner, &self.envelope, self.shape.clone()).or_raise()?;
        Ok(Box::new(s))
    }
}

/// A legacy proxy object to migrate to isec, opened with the keyring's legacy key for `kid`
/// (default: the kid the object records).
#[pyclass(module = "isec", name = "LegacySource", frozen)]
pub(crate) struct PyLegacySource {
    keyring: Py<PyKeyring>,
    object: LegacyObject,
    kid: Option<String>,
}

#[pymethods]
impl PyLegacySource {
    #[new]
    #[pyo3(signature = (keyring, object, kid=None))]
    fn new(keyring: Bound<'_, PyKeyring>, object: &PyLegacyObject, kid: Option<String>) -> PyResult<Self> {
        let py = keyring.py();
        let s = Self { keyring: keyring.unbind(), object: object.inner.clone(), kid };
        s.open(keyring_ref(&s.keyring, py)?)?;
        Ok(s)
    }

    #[getter]
    fn plaintext_len(&self) -> u64 {
        self.object.plaintext_len()
    }

    #[getter]
    fn ciphertext_len(&self) -> u64 {
        self.object.ciphertext_len()
    }
}

impl PyLegacySource {
    fn open(&self, ring: PyRef<'_, PyKeyring>) -> PyResult<Box<dyn Source>> {
        let s = LegacySource::<AwsLc>::new(&ring.inner, self.object.clone(), self.kid.as_deref()).or_raise()?;
        Ok(Box::new(s))
    }
}

fn keyring_ref<'py>(k: &'py Py<PyKeyring>, py: Python<'py>) -> PyResult<PyRef<'py, PyKeyring>> {
    Ok(k.bind(py).borrow())
}

fn open_source(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Box<dyn Source>> {
    if let Ok(s) = source.cast::<PyIsecSource>() {
        let s = s.get();
        return s.open(keyring_ref(&s.keyring, py)?);
    }
    if let Ok(s) = source.cast::<PyLegacySource>() {
        let s = s.get();
        return s.open(keyring_ref(&s.keyring, py)?);
    }
    Err(PyTypeError::new_err("source must be an IsecSource or a LegacySource"))
}

// The job runs detached from the GIL (`maybe_detach` needs `Send`) and lives in a pyclass
// (`Send + Sync`): core's `Source` and `SourceDecryptor` trait objects carry both bounds, so the
// job has them without any wrapper. Checked here so that a change in core fails the build
// with this message rather than deep inside pyo3's macros.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Reencryption<AwsLc>>();
};

/// How far a job is.
#[pyclass(module = "isec", name = "Progress", frozen, eq, get_all)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyProgress {
    bytes_done: u64,
    bytes_left: u64,
    parts_done: u32,
    parts_total: u32,
    finished: bool,
    paused: bool,
}

impl From<Progress> for PyProgress {
    fn from(p: Progress) -> Self {
        Self {
            bytes_done: p.bytes_done,
            bytes_left: p.bytes_left,
            parts_done: p.parts_done,
            parts_total: p.parts_total,
            finished: p.finished,
            paused: p.paused,
        }
    }
}

#[pymethods]
impl PyProgress {
    fn __repr__(&self) -> String {
        format!(
            "Progress(bytes_done={}, bytes_left={}, parts_done={}, parts_total={}, finished={}, paused={})",
            self.bytes_done,
            self.bytes_left,
            self.parts_done,
            self.parts_total,
            crate::convert::py_bool(self.finished),
            crate::convert::py_bool(self.paused)
        )
    }
}

/// What one `update` did: source bytes consumed (offer the rest again), output bytes
/// written, and, when the rate limit let nothing through, milliseconds to wait. `output` is
/// the new ciphertext for `update` (None for `update_into`).
#[pyclass(module = "isec", name = "ReencryptStep", frozen, get_all)]
pub(crate) struct PyStep {
    consumed: usize,
    written: usize,
    wait_ms: u64,
    output: Option<Py<PyBytes>>,
}

impl PyStep {
    fn new(s: Step, output: Option<Py<PyBytes>>) -> Self {
        Self { consumed: s.consumed, written: s.written, wait_ms: s.wait_ms, output }
    }
}

#[pymethods]
impl PyStep {
    fn __repr__(&self) -> String {
        format!("ReencryptStep(consumed={}, written={}, wait_ms={})", self.consumed, self.written, self.wait_ms)
    }
}

/// A re-encryption job: one source object to one new parts-layout isec object under the
/// keyring's active key and a new DEK. Sans-IO: read source ciphertext from
/// `source_offset`, feed it to `update` with the current time in milliseconds, write the
/// output at `target_offset`, and `finish`. The output from `(n - 1) * target_part_len` to
/// `n * target_part_len` is part `n` (of an S3 multipart upload, say). `checkpoint()`
/// returns bytes from which `Reencryption.resume` continues after the last complete part:
/// the unfinished part is encrypted again under a fresh nonce prefix, so the resumed output
/// differs from the first run's past the checkpoint's `target_offset` (both decrypt to the
/// same plaintext). After an error, `update` and `finish` raise `invalid_state`;
/// `checkpoint()` still describes the last good boundary.
#[pyclass(module = "isec", name = "Reencryption")]
pub(crate) struct PyReencryption {
    job: Reencryption<AwsLc>,
    failed: bool,
    scratch: Vec<u8>,
}

impl PyReencryption {
    fn live(&mut self) -> PyResult<&mut Reencryption<AwsLc>> {
        if self.failed {
            return Err(to_py(Error::InvalidState));
        }
        Ok(&mut self.job)
    }

    fn lock_on_err<T>(&mut self, r: PyResult<T>) -> PyResult<T> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }
}

#[pymethods]
impl PyReencryption {
    /// Starts a job writing `source` (an `IsecSource` or `LegacySource`) as a new
    /// parts-layout object under `keyring`'s active key, with frames of `frame_size` bytes
    /// and parts of about `part_size` plaintext bytes (default 8 MiB; rounded up to whole
    /// frames, grown to fit 10000 parts); `rate` is bytes per second (0: unlimited).
    #[staticmethod]
    #[pyo3(
        signature = (keyring, source, *, frame_size=None, part_size=None, rate=Int(0)),
        text_signature = "(keyring, source, *, frame_size=None, part_size=None, rate=0)"
    )]
    fn start(
        py: Python<'_>,
        keyring: &PyKeyring,
        source: &Bound<'_, PyAny>,
        frame_size: Option<Int<u64>>,
        part_size: Option<Int<u64>>,
        rate: Int<u64>,
    ) -> PyResult<Self> {
        // The preferred part size, in whole frames; the job fits it to the source's length.
        let layout = part_size.map_or(LayoutRequest::Single, |p| LayoutRequest::FitParts { size: 0, preferred: p.0 });
        let params = Params::new(layout, frame_size.map(|f| f.0), None).or_raise()?;
        let src = open_source(py, source)?;
        let job = Reencryption::<AwsLc>::start(&keyring.inner, src, params, rate.0).or_raise()?;
        Ok(Self { job, failed: false, scratch: Vec::new() })
    }

    /// Resumes a job from `checkpoint` bytes. Output already written up to the resumed
    /// `target_offset` (a part boundary) stays; anything past it is written again, under
    /// fresh nonce prefixes.
    #[staticmethod]
    #[pyo3(
        signature = (keyring, source, checkpoint, *, rate=Int(0)),
        text_signature = "(keyring, source, checkpoint, *, rate=0)"
    )]
    fn resume(
        py: Python<'_>,
        keyring: &PyKeyring,
        source: &Bound<'_, PyAny>,
        checkpoint: In,
        rate: Int<u64>,
    ) -> PyResult<Self> {
        let src = open_source(py, source)?;
        let job = Reencryption::<AwsLc>::resume(&keyring.inner, src, checkpoint.as_slice(), rate.0).or_raise()?;
        Ok(Self { job, failed: false, scratch: Vec::new() })
    }

    /// The new object's envelope (store it as the output's metadata).
    #[getter]
    fn target_envelope(&self) -> PyEnvelope {
        PyEnvelope { inner: self.job.target_envelope().clone() }
    }

    /// Where the next source ciphertext byte to feed comes from.
    #[getter]
    fn source_offset(&self) -> u64 {
        self.job.source_offset()
    }

    /// Where the next output byte goes in the new object.
    #[getter]
    fn target_offset(&self) -> u64 {
        self.job.target_offset()
    }

    /// Ciphertext bytes of every part of the new object but the last.
    #[getter]
    fn target_part_len(&self) -> u64 {
        self.job.target_part_len()
    }

    /// Progress in bytes and parts.
    #[getter]
    fn progress(&self) -> PyProgress {
        self.job.progress().into()
    }

    /// Stops taking input until `unpause`.
    fn pause(&mut self) {
        self.job.pause();
    }

    /// Takes input again.
    fn unpause(&mut self) {
        self.job.unpause();
    }

    /// Changes the rate limit (bytes per second; 0: none).
    fn set_rate(&mut self, rate: Int<u64>) {
        self.job.set_rate(rate.0);
    }

    /// Upper bound on what `update` writes for `input_len` bytes.
    fn update_len(&self, input_len: Int<usize>) -> usize {
        self.job.update_len(input_len.0)
    }

    /// Upper bound on what `finish` writes.
    fn finish_len(&self) -> usize {
        self.job.finish_len()
    }

    /// Feeds source ciphertext read from `source_offset`; takes what the rate limit allows
    /// at `now_ms` (nothing while paused). The step's `output` is the new ciphertext.
    fn update(&mut self, py: Python<'_>, data: In, now_ms: Int<u64>) -> PyResult<PyStep> {
        let (input, now_ms) = (data.as_slice(), now_ms.0);
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = self.live().and_then(|job| {
            let need = job.update_len(input.len());
            if scratch.len() < need {
                scratch.resize(need, 0);
            }
            let out = &mut scratch[..need];
            let step = maybe_detach(py, input.len(), || job.update(input, out, now_ms)).or_raise()?;
            let bytes = PyBytes::new(py, &scratch[..step.written]).unbind();
            Ok(PyStep::new(step, Some(bytes)))
        });
        if scratch.len() <= SCRATCH_KEEP {
            self.scratch = scratch;
        }
        self.lock_on_err(r)
    }

    /// `update` writing into `out` (at least `update_len(len(data))` bytes).
    fn update_into(&mut self, py: Python<'_>, data: In, mut out: Out, now_ms: Int<u64>) -> PyResult<PyStep> {
        let now_ms = now_ms.0;
        let r = self.live().and_then(|job| {
            let (input, out) = disjoint(&data, &mut out);
            let r = maybe_detach(py, input.len(), || job.update(&input, out, now_ms));
            wipe(input);
            Ok(PyStep::new(r.or_raise()?, None))
        });
        self.lock_on_err(r)
    }

    /// Ends the job once all source ciphertext was fed: verifies the source's end and
    /// returns the final output bytes.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let r = self.live().and_then(|job| {
            let mut out = vec![0u8; job.finish_len()];
            let n = job.finish(&mut out).or_raise()?;
            Ok(PyBytes::new(py, &out[..n]))
        });
        self.lock_on_err(r)
    }

    /// `finish` into `out` (at least `finish_len()` bytes); returns the count.
    fn finish_into(&mut self, mut out: Out) -> PyResult<usize> {
        let r = self.live().and_then(|job| job.finish(out.as_mut_slice()).or_raise());
        self.lock_on_err(r)
    }

    /// An authenticated checkpoint for the last part boundary whose output is final.
    fn checkpoint<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.job.checkpoint())
    }
}

/// The key-free fields of a checkpoint (for progress reports; `resume` checks its MAC).
#[pyclass(module = "isec", name = "Checkpoint", frozen)]
pub(crate) struct PyCheckpoint {
    inner: Checkpoint,
}

#[pymethods]
impl PyCheckpoint {
    /// Parses a checkpoint's structure.
    #[staticmethod]
    fn parse(data: In) -> PyResult<Self> {
        Ok(Self { inner: Checkpoint::parse(data.as_slice()).or_raise()? })
    }

    #[getter]
    fn source_identity<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.source_identity)
    }

    #[getter]
    fn source_ciphertext_len(&self) -> u64 {
        self.inner.source_ciphertext_len
    }

    /// The new object's envelope.
    #[getter]
    fn envelope(&self) -> PyResult<PyEnvelope> {
        Ok(PyEnvelope { inner: Envelope::decode(&self.inner.envelope).map_err(|_| to_py(Error::MalformedCheckpoint))? })
    }

    /// Parts of the new object whose output is final.
    #[getter]
    fn parts_done(&self) -> u32 {
        self.inner.parts_done
    }

    /// Bytes of the new object that are final: where output resumes.
    #[getter]
    fn target_offset(&self) -> PyResult<u64> {
        self.inner.target_offset().or_raise()
    }
}
