//! One-shot encryption and decryption, shapes, ranges and segment tables, and the work the
//! libuv pool runs for them and for the streams (`stream.rs`).
//!
//! Sync functions borrow their input (`&[u8]`, no copy) and run on the calling thread.
//! Async functions (`...Async`, wrapped with `AbortSignal` support in lib/index.js) hold a
//! reference to the caller's bytes and run the same Rust functions on the libuv pool. The
//! whole-object paths drive core's streaming contexts in 4 MiB steps so that a cancellation
//! is seen between steps; the bytes and errors are those of core's `oneshot` calls (the
//! corpus runs both paths); core's `oneshot` functions have no cancellation hook.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use isec_core::Stream as _;
use isec_core::envelope::Layout;
use isec_core::shape::Shape as CoreShape;
use isec_core::{AwsLc, Error as CoreError, ObjectKey as CoreKey, SegmentTable as CoreTable, oneshot};
use napi::bindgen_prelude::{AsyncTask, Buffer, Either};
use napi::{Env, Task};
use napi_derive::napi;

use crate::convert::{Bytes, Flag, OwnedBytes, Ref, TableEntries, U64, disjoint};
use crate::error::{Failure, Fallible, js_error, throw};
use crate::keys::{Envelope, ObjectKey};

/// The frame cipher of this addon: AWS-LC's AES-256-GCM.
pub type C = AwsLc;

/// Input consumed between two cancellation checks.
const STEP: usize = 4 << 20;

pub(crate) fn f(x: u64) -> f64 {
    // Offsets are below 2^45 (SPEC.md §8), exact in a double.
    #[allow(clippy::cast_precision_loss)]
    let v = x as f64;
    v
}

fn usize_of(x: u64) -> Fallible<usize> {
    usize::try_from(x).map_err(|_| Failure::Core(CoreError::LimitExceeded))
}

/// Cancels async calls that were given it; `lib/index.js` ties one to each `AbortSignal`.
#[napi]
pub struct CancelToken {
    pub(crate) flag: Arc<AtomicBool>,
}

#[napi]
impl CancelToken {
    /// A token that is not cancelled.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self { flag: Arc::default() }
    }

    /// Makes work holding this token stop at its next check (`ABORT_ERR`).
    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether `cancel` was called.
    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

pub(crate) type Cancel = Option<Arc<AtomicBool>>;

pub(crate) fn token(t: Option<Ref<CancelToken>>) -> Cancel {
    t.map(|t| t.flag.clone())
}

pub(crate) fn check(c: &Cancel) -> Fallible<()> {
    match c {
        Some(flag) if flag.load(Ordering::SeqCst) => Err(Failure::Aborted),
        _ => Ok(()),
    }
}

/// Work for the libuv pool: yields bytes (`Work`, a `Buffer` in JS) or a count of bytes
/// written into a caller's buffer (`IntoWork`, a number in JS).
pub struct Job<T> {
    job: Option<Box<dyn FnOnce() -> Fallible<T> + Send>>,
    cancel: Cancel,
    /// Runs on the JS thread when the promise settles, before any reaction to it.
    settle: Option<Box<dyn FnOnce() + Send>>,
}

/// Work for the libuv pool that yields bytes.
pub type Work = Job<Vec<u8>>;

/// Work for the libuv pool that writes into a buffer the caller lent and yields the count.
pub type IntoWork = Job<usize>;

impl<T: Send + 'static> Job<T>
where
    Self: Task,
{
    pub(crate) fn new(cancel: Cancel, job: impl FnOnce() -> Fallible<T> + Send + 'static) -> AsyncTask<Self> {
        AsyncTask::new(Self { job: Some(Box::new(job)), cancel, settle: None })
    }

    /// Work that checks its own cancellation, and calls `settle` when its promise settles.
    pub(crate) fn settling(
        job: impl FnOnce() -> Fallible<T> + Send + 'static,
        settle: impl FnOnce() + Send + 'static,
    ) -> AsyncTask<Self> {
        AsyncTask::new(Self { job: Some(Box::new(job)), cancel: None, settle: Some(Box::new(settle)) })
    }

    fn settled(&mut self) {
        if let Some(f) = self.settle.take() {
            f();
        }
    }

    fn run(&mut self) -> Fallible<T> {
        check(&self.cancel)?;
        self.job.take().map_or(Err(Failure::Core(CoreError::InvalidState)), |job| job())
    }
}

impl Task for Work {
    type Output = Fallible<Vec<u8>>;
    type JsValue = Buffer;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Buffer> {
        self.settled();
        output.map(Buffer::from).map_err(|e| js_error(env.raw(), &e))
    }

    fn reject(&mut self, _env: Env, err: napi::Error) -> napi::Result<Buffer> {
        self.settled();
        Err(err)
    }
}

impl Task for IntoWork {
    type Output = Fallible<usize>;
    type JsValue = f64;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<f64> {
        self.settled();
        output.map(|n| f(n as u64)).map_err(|e| js_error(env.raw(), &e))
    }

    fn reject(&mut self, _env: Env, err: napi::Error) -> napi::Result<f64> {
        self.settled();
        Err(err)
    }
}

/// The bytes of a `Uint8Array` lent to an async call for writing.
///
/// The caller of every `...IntoAsync` function promises (lib/index.js documents it) not to
/// read or change `output` until the promise settles, exactly as it promises not to change
/// the input of any async call; `disjoint` refuses an output that overlaps the input.
pub(crate) fn lent(output: &mut OwnedBytes) -> &mut [u8] {
    // SAFETY: `output` holds a reference to the JS array, so its memory stays alive for the
    // duration of the task; the JS side does not touch it until the promise settles (the
    // contract above), so this is the only access meanwhile.
    unsafe { output.0.as_mut() }
}

/// One part into `out`: the bytes of `oneshot::encrypt_part` (a fresh nonce prefix).
fn encrypt_part_into(key: &CoreKey, part_number: u32, is_last: bool, pt: &[u8], out: &mut [u8]) -> Fallible<usize> {
    disjoint(pt, out)?;
    let mut enc = isec_core::Encryptor::<C>::for_part(key, part_number, is_last)?;
    let w = enc.update(pt, out)?;
    let rest = out.get_mut(w..).ok_or(CoreError::InvalidState)?;
    Ok(w + enc.finish(rest)?)
}

/// A whole single- or parts-layout object, checking `cancel` between steps.
pub(crate) fn encrypt_steps(key: &CoreKey, pt: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    // The shape gives the exact output length and the same errors as `oneshot::encrypt`.
    let shape = CoreShape::from_plaintext_len(key.header(), pt.len() as u64)?;
    let mut out = vec![0u8; usize_of(shape.ciphertext_len())?];
    let mut w = 0;
    for ordinal in 0..shape.segment_count() {
        check(cancel)?;
        let seg = shape.segment(ordinal).ok_or(CoreError::InvalidState)?;
        let body = &pt[usize_of(seg.pt_start)?..usize_of(seg.pt_start + seg.pt_len)?];
        let mut enc = match key.header().layout {
            Layout::Single => isec_core::Encryptor::<C>::new(key)?,
            _ => isec_core::Encryptor::<C>::for_part(key, seg.number, seg.is_last)?,
        };
        for chunk in body.chunks(STEP) {
            check(cancel)?;
            w += enc.update(chunk, &mut out[w..])?;
        }
        w += enc.finish(&mut out[w..])?;
    }
    out.truncate(w);
    Ok(out)
}

/// Runs a decryptor over a whole ciphertext in steps; all or nothing, as `oneshot`.
fn decrypt_steps(mut dec: isec_core::Decryptor<C>, ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    let mut out = vec![0u8; dec.update_len(ct.len())];
    let mut w = 0;
    let r = (|| {
        for chunk in ct.chunks(STEP) {
            check(cancel)?;
            w += dec.update(chunk, &mut out[w..])?;
        }
        w += dec.finish(&mut out[w..])?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            out.truncate(w);
            Ok(out)
        }
        Err(e) => {
            out.fill(0);
            Err(e)
        }
    }
}

pub(crate) fn decrypt_whole(key: &CoreKey, ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    decrypt_steps(isec_core::Decryptor::<C>::new(key)?, ct, cancel)
}

pub(crate) fn decrypt_table(key: &CoreKey, table: &[u8], ct: &[u8], cancel: &Cancel) -> Fallible<Vec<u8>> {
    let table = CoreTable::decode(table, key)?;
    let shape = CoreShape::from_table(key.header(), table, ct.len() as u64)?;
    decrypt_steps(isec_core::Decryptor::<C>::with_shape(key, shape)?, ct, cancel)
}

fn decrypt_range(key: &CoreKey, shape: &CoreShape, start: u64, end: u64, fetched: &[u8]) -> Fallible<Vec<u8>> {
    let plan = shape.map_range(start, end);
    let expect = (plan.ct_start, plan.ct_end);
    Ok(oneshot::decrypt_range::<C>(key, shape.clone(), start, end, &mut |s, e| {
        if (s, e) != expect {
            return Err(CoreError::InvalidState);
        }
        Ok(fetched.to_vec())
    })?)
}

// ----------------------------------------------------------------------------------------
// One-shot functions

/// Encrypts a whole single- or parts-layout object (fresh nonce prefixes).
#[napi]
pub fn encrypt_sync(
    env: Env,
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Uint8Array")] plaintext: Bytes,
) -> napi::Result<Buffer> {
    encrypt_steps(&key.inner, plaintext.0, &None).map(Buffer::from).map_err(|e| throw(&env, e))
}

/// `encryptSync` on the libuv pool.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn encrypt_async(
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Uint8Array")] plaintext: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
) -> AsyncTask<Work> {
    let k = key.inner.clone();
    let c = crate::crypto::token(token);
    Work::new(c.clone(), move || encrypt_steps(&k, &plaintext.0, &c))
}

/// Decrypts a whole single- or parts-layout object: all or nothing.
#[napi]
pub fn decrypt_sync(
    env: Env,
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Uint8Array")] ciphertext: Bytes,
) -> napi::Result<Buffer> {
    decrypt_whole(&key.inner, ciphertext.0, &None).map(Buffer::from).map_err(|e| throw(&env, e))
}

/// `decryptSync` on the libuv pool.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn decrypt_async(
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Uint8Array")] ciphertext: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
) -> AsyncTask<Work> {
    let k = key.inner.clone();
    let c = token_of(token);
    Work::new(c.clone(), move || decrypt_whole(&k, &ciphertext.0, &c))
}

pub(crate) fn token_of(t: Option<Ref<CancelToken>>) -> Cancel {
    token(t)
}

/// Encrypts part `partNumber` (1..=10000) of a parts- or table-layout object.
#[napi]
pub fn encrypt_part_sync(
    env: Env,
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "number")] part_number: U64,
    #[napi(ts_arg_type = "boolean")] is_last: Flag,
    #[napi(ts_arg_type = "Uint8Array")] plaintext: Bytes,
) -> napi::Result<Buffer> {
    let r = part_number.u32().and_then(|n| Ok(oneshot::encrypt_part::<C>(&key.inner, n, is_last.0, plaintext.0)?));
    r.map(Buffer::from).map_err(|e| throw(&env, e))
}

/// `encryptPartSync` on the libuv pool.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn encrypt_part_async(
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "number")] part_number: U64,
    #[napi(ts_arg_type = "boolean")] is_last: Flag,
    #[napi(ts_arg_type = "Uint8Array")] plaintext: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
) -> AsyncTask<Work> {
    let k = key.inner.clone();
    Work::new(token_of(token), move || {
        let n = part_number.u32()?;
        Ok(oneshot::encrypt_part::<C>(&k, n, is_last.0, &plaintext.0)?)
    })
}

/// `encryptPartAsync` writing into `output` (at least the part's ciphertext length:
/// `Shape.forPlaintext` gives it), for a caller that reuses its buffers; resolves to the
/// bytes written. Every call draws a fresh nonce prefix. Neither buffer may be read or
/// changed until the promise settles.
#[napi(ts_return_type = "Promise<number>")]
pub fn encrypt_part_into_async(
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "number")] part_number: U64,
    #[napi(ts_arg_type = "boolean")] is_last: Flag,
    #[napi(ts_arg_type = "Uint8Array")] plaintext: OwnedBytes,
    #[napi(ts_arg_type = "Uint8Array")] output: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
) -> AsyncTask<IntoWork> {
    let k = key.inner.clone();
    let mut output = output;
    IntoWork::new(token_of(token), move || {
        let n = part_number.u32()?;
        encrypt_part_into(&k, n, is_last.0, &plaintext.0, lent(&mut output))
    })
}

/// Decrypts a whole table-layout object with its encoded segment table.
#[napi]
pub fn decrypt_with_table_sync(
    env: Env,
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Uint8Array")] table: Bytes,
    #[napi(ts_arg_type = "Uint8Array")] ciphertext: Bytes,
) -> napi::Result<Buffer> {
    decrypt_table(&key.inner, table.0, ciphertext.0, &None).map(Buffer::from).map_err(|e| throw(&env, e))
}

/// `decryptWithTableSync` on the libuv pool.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn decrypt_with_table_async(
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Uint8Array")] table: OwnedBytes,
    #[napi(ts_arg_type = "Uint8Array")] ciphertext: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
) -> AsyncTask<Work> {
    let k = key.inner.clone();
    let c = token_of(token);
    Work::new(c.clone(), move || decrypt_table(&k, &table.0, &ciphertext.0, &c))
}

/// Decrypts the plaintext range `[start, end)` from `fetched`, the ciphertext bytes
/// `shape.mapRange(start, end)` said to fetch.
#[napi]
pub fn decrypt_range_sync(
    env: Env,
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
    #[napi(ts_arg_type = "number")] start: U64,
    #[napi(ts_arg_type = "number")] end: U64,
    #[napi(ts_arg_type = "Uint8Array")] fetched: Bytes,
) -> napi::Result<Buffer> {
    decrypt_range(&key.inner, &shape.inner, start.0, end.0, fetched.0).map(Buffer::from).map_err(|e| throw(&env, e))
}

/// `decryptRangeSync` on the libuv pool.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn decrypt_range_async(
    #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
    #[napi(ts_arg_type = "number")] start: U64,
    #[napi(ts_arg_type = "number")] end: U64,
    #[napi(ts_arg_type = "Uint8Array")] fetched: OwnedBytes,
    #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
) -> AsyncTask<Work> {
    let (k, s) = (key.inner.clone(), shape.inner.clone());
    Work::new(token_of(token), move || decrypt_range(&k, &s, start.0, end.0, &fetched.0))
}

// ----------------------------------------------------------------------------------------
// Shapes and ranges

/// The ciphertext to fetch for a plaintext range, and what to keep of it (SPEC.md §7).
#[napi(object, object_from_js = false)]
pub struct RangePlan {
    /// First ciphertext byte to fetch.
    pub ct_start: f64,
    /// End of the fetch (exclusive); equal to `ctStart` when nothing is needed.
    pub ct_end: f64,
    /// Plaintext bytes dropped from the front of the first frame.
    pub skip: f64,
    /// Plaintext bytes returned.
    pub len: f64,
    /// The range after clamping: `[ptStart, ptStart + len)`.
    pub pt_start: f64,
    /// The HTTP `Range` header for the fetch, absent when nothing is needed.
    pub http_range: Option<String>,
}

/// One segment (the body, or one part) of an object.
#[napi(object, object_from_js = false)]
pub struct SegmentInfo {
    pub number: u32,
    pub ordinal: u32,
    pub is_last: bool,
    pub pt_start: f64,
    pub pt_len: f64,
    pub ct_start: f64,
    pub ct_len: f64,
}

/// An object's geometry once its size is known.
#[napi]
pub struct Shape {
    pub(crate) inner: CoreShape,
}

/// The shape of an object from its envelope and stored (ciphertext) length; single and
/// parts layouts (table-layout objects: `Shape.fromTable`).
#[napi]
pub fn shape_for(
    env: Env,
    #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
    #[napi(ts_arg_type = "number")] ciphertext_length: U64,
) -> napi::Result<Shape> {
    CoreShape::from_ciphertext_len(envelope.inner.header(), ciphertext_length.0)
        .map(|inner| Shape { inner })
        .map_err(|e| throw(&env, e))
}

#[napi]
impl Shape {
    /// Not constructible with `new`: made by `shapeFor`, `Shape.forPlaintext` or `Shape.fromTable`.
    #[napi(constructor)]
    pub fn new(env: Env) -> napi::Result<Self> {
        Err(throw(
            &env,
            Failure::Type("Shape objects are made by shapeFor, Shape.forPlaintext or Shape.fromTable, not new".into()),
        ))
    }

    /// The shape an encryptor will produce for `plaintextLength` bytes.
    #[napi(factory)]
    pub fn for_plaintext(
        env: Env,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "number")] plaintext_length: U64,
    ) -> napi::Result<Self> {
        CoreShape::from_plaintext_len(envelope.inner.header(), plaintext_length.0)
            .map(|inner| Self { inner })
            .map_err(|e| throw(&env, e))
    }

    /// The shape of a table-layout object from its encoded table (verified with `key`).
    #[napi(factory)]
    pub fn from_table(
        env: Env,
        #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
        #[napi(ts_arg_type = "Uint8Array")] table: Bytes,
        #[napi(ts_arg_type = "number")] ciphertext_length: U64,
    ) -> napi::Result<Self> {
        let r = CoreTable::decode(table.0, &key.inner)
            .and_then(|t| CoreShape::from_table(key.inner.header(), t, ciphertext_length.0));
        r.map(|inner| Self { inner }).map_err(|e| throw(&env, e))
    }

    /// Maps the plaintext range `[start, end)` (clamped to the object) to the ciphertext to
    /// fetch. `end` may be `Infinity`.
    #[napi]
    pub fn map_range(
        &self,
        #[napi(ts_arg_type = "number")] start: U64,
        #[napi(ts_arg_type = "number")] end: U64,
    ) -> RangePlan {
        let p = self.inner.map_range(start.0, end.0);
        RangePlan {
            ct_start: f(p.ct_start),
            ct_end: f(p.ct_end),
            skip: f(p.skip),
            len: f(p.len),
            pt_start: f(p.pt_start),
            http_range: p.http_range(),
        }
    }

    #[napi(getter)]
    pub fn plaintext_length(&self) -> f64 {
        f(self.inner.plaintext_len())
    }

    #[napi(getter)]
    pub fn ciphertext_length(&self) -> f64 {
        f(self.inner.ciphertext_len())
    }

    #[napi(getter)]
    pub fn frame_size(&self) -> f64 {
        f(self.inner.frame_size())
    }

    #[napi(getter)]
    pub fn segment_count(&self) -> u32 {
        self.inner.segment_count()
    }

    #[napi(getter)]
    pub fn frame_count(&self) -> f64 {
        f(self.inner.frame_count())
    }

    /// Segment `ordinal` (0-based), or `null` past the end.
    #[napi]
    pub fn segment(&self, #[napi(ts_arg_type = "number")] ordinal: U64) -> Option<SegmentInfo> {
        let s = self.inner.segment(u32::try_from(ordinal.0).ok()?)?;
        Some(SegmentInfo {
            number: s.number,
            ordinal: s.ordinal,
            is_last: s.is_last,
            pt_start: f(s.pt_start),
            pt_len: f(s.pt_len),
            ct_start: f(s.ct_start),
            ct_len: f(s.ct_len),
        })
    }

    /// The largest frame boundary at or below ciphertext offset `offset`.
    #[napi]
    pub fn ct_boundary_floor(&self, #[napi(ts_arg_type = "number")] offset: U64) -> f64 {
        f(self.inner.ct_boundary_floor(offset.0))
    }
}

/// Part numbers, plaintext lengths and nonce prefixes of a table-layout object (SPEC.md §6.3).
#[napi]
pub struct SegmentTable {
    inner: CoreTable,
}

#[napi]
impl SegmentTable {
    /// A table from `[partNumber, plaintextLength, prefix]` entries in object order. `prefix`
    /// is the 7-byte nonce prefix of the encryption of that part the upload was completed
    /// with (`Encryptor.prefix`, or the part's first 7 bytes): readers refuse a part whose
    /// frames carry another.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "Array<[number, number, Uint8Array]>")] entries: TableEntries,
    ) -> napi::Result<Self> {
        let r = (|| {
            let entries = entries.0.iter().map(|&(n, l, p)| Ok((n.u32()?, l.0, p))).collect::<Fallible<Vec<_>>>()?;
            Ok(CoreTable::new(entries)?)
        })();
        r.map(|inner| Self { inner }).map_err(|e: Failure| throw(&env, e))
    }

    /// Verifies and decodes an encoded table.
    #[napi(factory)]
    pub fn decode(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] bytes: Bytes,
        #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    ) -> napi::Result<Self> {
        CoreTable::decode(bytes.0, &key.inner).map(|inner| Self { inner }).map_err(|e| throw(&env, e))
    }

    /// Encodes and authenticates the table under `key`.
    #[napi]
    pub fn encode(&self, #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>) -> Buffer {
        self.inner.encode(&key.inner).into()
    }

    /// `[partNumber, plaintextLength, prefix]` entries.
    #[napi(getter, ts_return_type = "Array<[number, number, Buffer]>")]
    pub fn entries(&self) -> Vec<Vec<Either<f64, Buffer>>> {
        let entry = |&(n, l, p): &(u32, u64, isec_core::Prefix)| {
            vec![Either::A(f64::from(n)), Either::A(f(l)), Either::B(p.to_vec().into())]
        };
        self.inner.entries().iter().map(entry).collect()
    }

    /// Total plaintext bytes.
    #[napi(getter)]
    pub fn plaintext_length(&self) -> f64 {
        f(self.inner.plaintext_len())
    }
}
