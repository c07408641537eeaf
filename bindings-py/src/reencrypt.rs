//! DEK rotation and legacy migration: core's resumable, throttled re-encryption job
//! (SPEC.md §13), with the caller's clock and I/O.

use isec_core::reencrypt::{Checkpoint, IsecSource, LegacySource, Progress, Reencryption, Source, Step};
use isec_core::{AwsLc, Envelope, Error, Keyring, LayoutRequest, Params};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::SCRATCH_KEEP;
use crate::buffers::{In, Out, disjoint, maybe_detach, wipe};
use crate::convert::{Int, getters, record};
use crate::envelope::PyEnvelope;
use crate::error::{OrRaise, to_py};
use crate::keyring::PyKeyring;
use crate::layout::PyShape;
use crate::legacy::PyLegacyObject;

/// How a source class opens its object, with the keyring it names: both classes check it
/// once when made, and open it again for each job that starts or resumes.
type Opener = Box<dyn Fn(&Keyring) -> Result<Box<dyn Source>, Error> + Send + Sync>;

/// What `IsecSource` and `LegacySource` hold.
struct SourceSpec {
    keyring: Py<PyKeyring>,
    open: Opener,
    plaintext_len: u64,
    ciphertext_len: u64,
}

impl SourceSpec {
    /// The spec, once `open` succeeded with `keyring`.
    fn checked(keyring: Bound<'_, PyKeyring>, open: Opener) -> PyResult<Self> {
        let s = open(&keyring.borrow().inner).or_raise()?;
        let (plaintext_len, ciphertext_len) = (s.plaintext_len(), s.ciphertext_len());
        Ok(Self { keyring: keyring.unbind(), open, plaintext_len, ciphertext_len })
    }

    fn open(&self, py: Python<'_>) -> PyResult<Box<dyn Source>> {
        (self.open)(&self.keyring.bind(py).borrow().inner).or_raise()
    }
}

/// A source class: a `SourceSpec` with its lengths as attributes, and the constructor given.
macro_rules! source_class {
    ($(#[$doc:meta])* $name:literal $ty:ident { $($new:tt)* }) => {
        $(#[$doc])*
        #[pyclass(module = "isec", name = $name, frozen)]
        pub(crate) struct $ty(SourceSpec);

        getters! { $ty {
            plaintext_len: u64 = |s| s.0.plaintext_len;
            ciphertext_len: u64 = |s| s.0.ciphertext_len;
        } $($new)* }
    };
}

source_class! {
    /// An isec object to re-encrypt under a new DEK: its envelope (opened with `keyring`) and
    /// its shape. The source is opened when the job starts or resumes, and checked here.
    "IsecSource" PyIsecSource {
        #[new]
        fn new(keyring: Bound<'_, PyKeyring>, envelope: &PyEnvelope, shape: &PyShape) -> PyResult<Self> {
            let (envelope, shape) = (envelope.inner.clone(), shape.inner.clone());
            let open: Opener = Box::new(move |ring| Ok(Box::new(IsecSource::<AwsLc>::new(ring, &envelope, shape.clone())?)));
            SourceSpec::checked(keyring, open).map(Self)
        }
    }
}

source_class! {
    /// A legacy proxy object to migrate to isec, opened with the keyring's legacy key for `kid`
    /// (default: the kid the object records).
    "LegacySource" PyLegacySource {
        #[new]
        #[pyo3(signature = (keyring, object, kid=None))]
        fn new(keyring: Bound<'_, PyKeyring>, object: &PyLegacyObject, kid: Option<String>) -> PyResult<Self> {
            let object = object.inner.clone();
            let open: Opener =
                Box::new(move |ring| Ok(Box::new(LegacySource::<AwsLc>::new(ring, object.clone(), kid.as_deref())?)));
            SourceSpec::checked(keyring, open).map(Self)
        }
    }
}

fn open_source(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Box<dyn Source>> {
    if let Ok(s) = source.cast::<PyIsecSource>() {
        return s.get().0.open(py);
    }
    if let Ok(s) = source.cast::<PyLegacySource>() {
        return s.get().0.open(py);
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

record! {
    /// How far a job is.
    #[derive(Clone, PartialEq)]
    "Progress" PyProgress [eq] {
        bytes_done: u64,
        bytes_left: u64,
        parts_done: u32,
        parts_total: u32,
        finished: bool,
        paused: bool,
    }
    repr(bytes_done, bytes_left, parts_done, parts_total, finished, paused) from(Progress)
}

record! {
    /// What one `update` did: source bytes consumed (offer the rest again), output bytes
    /// written, and, when the rate limit let nothing through, milliseconds to wait. `output` is
    /// the new ciphertext for `update` (None for `update_into`).
    "ReencryptStep" PyStep {
        consumed: usize,
        written: usize,
        wait_ms: u64,
        output: Option<Py<PyBytes>>,
    }
    repr(consumed, written, wait_ms)
}

impl PyStep {
    fn new(s: Step, output: Option<Py<PyBytes>>) -> Self {
        Self { consumed: s.consumed, written: s.written, wait_ms: s.wait_ms, output }
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
    /// Runs `f` on the job unless an earlier call failed; a failure locks the job.
    fn with_job<T>(&mut self, f: impl FnOnce(&mut Reencryption<AwsLc>) -> PyResult<T>) -> PyResult<T> {
        if self.failed {
            return Err(to_py(Error::InvalidState));
        }
        let r = f(&mut self.job);
        self.failed = r.is_err();
        r
    }
}

getters! { PyReencryption {
    /// The new object's envelope (store it as the output's metadata).
    target_envelope: PyEnvelope = |s| PyEnvelope { inner: s.job.target_envelope().clone() };
    /// Where the next source ciphertext byte to feed comes from.
    source_offset: u64 = |s| s.job.source_offset();
    /// Where the next output byte goes in the new object.
    target_offset: u64 = |s| s.job.target_offset();
    /// Ciphertext bytes of every part of the new object but the last.
    target_part_len: u64 = |s| s.job.target_part_len();
    /// Progress in bytes and parts.
    progress: PyProgress = |s| s.job.progress().into();
}
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

    /// Resumes from an upload checkpoint (`upload_checkpoint`, SPEC.md §13.3): returns the
    /// job and the multipart upload id it continues. List the upload's parts and check them
    /// with `kept_parts` before writing more.
    #[staticmethod]
    #[pyo3(
        signature = (keyring, source, checkpoint, *, rate=Int(0)),
        text_signature = "(keyring, source, checkpoint, *, rate=0)"
    )]
    fn resume_upload(
        py: Python<'_>,
        keyring: &PyKeyring,
        source: &Bound<'_, PyAny>,
        checkpoint: In,
        rate: Int<u64>,
    ) -> PyResult<(Self, String)> {
        let src = open_source(py, source)?;
        let (job, id) =
            Reencryption::<AwsLc>::resume_upload(&keyring.inner, src, checkpoint.as_slice(), rate.0).or_raise()?;
        Ok((Self { job, failed: false, scratch: Vec::new() }, id))
    }

    /// An authenticated checkpoint of multipart upload `upload_id` whose parts
    /// `1..=parts_stored` are stored (fewer if the job has not finished them).
    fn upload_checkpoint<'py>(
        &self,
        py: Python<'py>,
        upload_id: &str,
        parts_stored: Int<u32>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.job.upload_checkpoint(upload_id, parts_stored.0).or_raise()?))
    }

    /// Right after `resume_upload`: checks the upload's parts as ListParts gives them
    /// (`(part number, size)` pairs) and returns how many to keep; raises
    /// `malformed_checkpoint` when they are not the parts the checkpoint describes.
    fn kept_parts(&self, listed: Vec<(u32, u64)>) -> PyResult<u32> {
        self.job.kept_parts(&listed).or_raise()
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
        let r = self.with_job(|job| {
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
        r
    }

    /// `update` writing into `out` (at least `update_len(len(data))` bytes).
    fn update_into(&mut self, py: Python<'_>, data: In, mut out: Out, now_ms: Int<u64>) -> PyResult<PyStep> {
        let now_ms = now_ms.0;
        self.with_job(|job| {
            let (input, out) = disjoint(&data, &mut out);
            let r = maybe_detach(py, input.len(), || job.update(&input, out, now_ms));
            wipe(input);
            Ok(PyStep::new(r.or_raise()?, None))
        })
    }

    /// Ends the job once all source ciphertext was fed: verifies the source's end and
    /// returns the final output bytes.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with_job(|job| {
            let mut out = vec![0u8; job.finish_len()];
            let n = job.finish(&mut out).or_raise()?;
            Ok(PyBytes::new(py, &out[..n]))
        })
    }

    /// `finish` into `out` (at least `finish_len()` bytes); returns the count.
    fn finish_into(&mut self, mut out: Out) -> PyResult<usize> {
        self.with_job(|job| job.finish(out.as_mut_slice()).or_raise())
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

getters! { PyCheckpoint {
    source_ciphertext_len: u64 = |s| s.inner.source_ciphertext_len;
    /// The new object's envelope.
    envelope: PyResult<PyEnvelope> = |s| {
        Ok(PyEnvelope { inner: Envelope::decode(&s.inner.envelope).map_err(|_| to_py(Error::MalformedCheckpoint))? })
    };
    /// Parts of the new object whose output is final.
    parts_done: u32 = |s| s.inner.parts_done;
    /// Bytes of the new object that are final: where output resumes.
    target_offset: PyResult<u64> = |s| s.inner.target_offset().or_raise();
}
    /// Parses a checkpoint's structure.
    #[staticmethod]
    fn parse(data: In) -> PyResult<Self> {
        Ok(Self { inner: Checkpoint::parse(data.as_slice()).or_raise()? })
    }

    #[getter]
    fn source_identity<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.source_identity)
    }
}
