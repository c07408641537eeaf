//! The streaming contexts: `Encryptor`, `Decryptor` and `LegacyDecryptor`, one shape over
//! core's [`Stream`] contexts, which lock themselves after an error or their end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use isec_core::{Error as CoreError, Stream};
use napi::Env;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;

use crate::convert::{Bytes, BytesMut, Flag, OwnedBytes, Ref, U64, disjoint};
use crate::error::{Failure, Fallible};
use crate::keys::ObjectKey;
use crate::layout::Shape;
use crate::pool::{Cancel, CancelToken, IntoWork, Job, Work, Yield, check, lent, token_of};
use crate::{C, Js, f};

type Shared<T> = Arc<Mutex<T>>;

fn busy() -> Failure {
    Failure::Detail(CoreError::InvalidState, "an updateAsync of this context has not settled".into())
}

fn finished() -> Failure {
    Failure::Detail(CoreError::InvalidState, "the context has finished or failed".into())
}

/// The context itself. A call never waits for it: while an async update holds it, calls are
/// refused before they get here (see [`Flight`]).
fn lock<T>(ctx: &Shared<T>) -> MutexGuard<'_, T> {
    ctx.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An `updateAsync` in flight. Both flags are set and read on the JS thread only (by calls,
/// and by the promise settling), so what a context sees is the order in which JS called it:
/// a second call while one is in flight cannot overtake it on the libuv pool.
#[derive(Default)]
struct Flight {
    busy: AtomicBool,
    /// A call that would have fed the stream was refused meanwhile: its input is missing
    /// from the stream, which therefore locks once the call in flight settles.
    lock_when_settled: AtomicBool,
}

/// A streaming context as JS sees it: one call at a time (an `updateAsync` counts until it
/// settles; calls meanwhile are `invalid_state`). Core's context locks itself after `final`
/// and after any error (SPEC.md §5.3); an error of this layer around a call (a
/// cancellation, an overlapping buffer) locks it too, so a caller that ignores an error
/// cannot go on to write a stream with a gap.
pub(crate) struct Ctx<T: Stream + Send + 'static> {
    ctx: Shared<T>,
    flight: Arc<Flight>,
}

impl<T: Stream + Send + 'static> Ctx<T> {
    pub(crate) fn new(t: T) -> Self {
        Self { ctx: Arc::new(Mutex::new(t)), flight: Arc::default() }
    }

    /// The context for a call that feeds or ends the stream.
    fn feed(&self) -> Fallible<MutexGuard<'_, T>> {
        if self.flight.busy.load(Ordering::SeqCst) {
            self.flight.lock_when_settled.store(true, Ordering::SeqCst);
            return Err(busy());
        }
        Ok(lock(&self.ctx))
    }

    /// The live context for a call that only reads it.
    fn query(&self) -> Fallible<MutexGuard<'_, T>> {
        if self.flight.busy.load(Ordering::SeqCst) {
            return Err(busy());
        }
        let c = lock(&self.ctx);
        if c.is_locked() { Err(finished()) } else { Ok(c) }
    }

    /// Runs `f` on the live context; any error locks it.
    fn run<R>(c: &mut T, f: impl FnOnce(&mut T) -> Fallible<R>) -> Fallible<R> {
        if c.is_locked() {
            return Err(finished());
        }
        let r = f(c);
        if r.is_err() {
            c.lock();
        }
        r
    }

    pub(crate) fn update(&self, input: &[u8]) -> Fallible<Vec<u8>> {
        Self::run(&mut *self.feed()?, |c| Ok(c.update_vec(input)?))
    }

    pub(crate) fn update_into(&self, input: &[u8], out: &mut [u8]) -> Fallible<usize> {
        Self::run(&mut *self.feed()?, |c| {
            disjoint(input, out)?;
            Ok(c.update(input, out)?)
        })
    }

    pub(crate) fn update_len(&self, n: usize) -> Fallible<usize> {
        Ok(self.query()?.update_len(n))
    }

    pub(crate) fn finish_len(&self) -> Fallible<usize> {
        Ok(self.query()?.finish_len())
    }

    pub(crate) fn finish(&self) -> Fallible<Vec<u8>> {
        Self::run(&mut *self.feed()?, |c| Ok(c.finish_vec()?))
    }

    pub(crate) fn finish_into(&self, out: &mut [u8]) -> Fallible<usize> {
        Self::run(&mut *self.feed()?, |c| Ok(c.finish(out)?))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Fallible<R> {
        Ok(f(&*self.query()?))
    }

    /// Runs `job` on the libuv pool with the context, under the one-call-at-a-time rule.
    /// A cancellation seen before the input was consumed fails the call and, like any
    /// error, locks the context: the input is missing from the stream.
    fn spawn<R: Yield>(
        &self,
        cancel: Cancel,
        job: impl FnOnce(&mut T) -> Fallible<R> + Send + 'static,
    ) -> AsyncTask<Job<R>> {
        if let Err(e) = self.feed() {
            return Job::new(None, move || Err(e));
        }
        self.flight.busy.store(true, Ordering::SeqCst);
        let (shared, flight) = (self.ctx.clone(), self.flight.clone());
        let job_ctx = shared.clone();
        let run = move || {
            Self::run(&mut *lock(&job_ctx), |c| {
                check(&cancel)?;
                job(c)
            })
        };
        let settle = move || {
            flight.busy.store(false, Ordering::SeqCst);
            if flight.lock_when_settled.swap(false, Ordering::SeqCst) {
                lock(&shared).lock();
            }
        };
        Job::settling(run, settle)
    }

    pub(crate) fn update_async(&self, input: OwnedBytes, cancel: Cancel) -> AsyncTask<Work> {
        self.spawn(cancel, move |c| Ok(c.update_vec(&input.0)?))
    }

    pub(crate) fn update_into_async(
        &self,
        input: OwnedBytes,
        mut output: OwnedBytes,
        cancel: Cancel,
    ) -> AsyncTask<IntoWork> {
        self.spawn(cancel, move |c| {
            let out = lent(&mut output);
            disjoint(&input.0, out)?;
            Ok(c.update(&input.0, out)?)
        })
    }
}

/// The methods every streaming class has, and its byte counter `$count` (the core context's
/// method of that name); each class adds its own in an `#[napi]` impl block of its own.
macro_rules! stream_class {
    ($class:ident, $(#[doc = $doc:tt])* $count:ident) => {
        #[napi]
        impl $class {
            $(#[doc = $doc])*
            #[napi(getter)]
            pub fn $count(&self, env: Env) -> napi::Result<f64> {
                self.ctx.with(|c| f(c.$count())).js(&env)
            }

            /// Feeds `chunk`; returns every output now complete (an encryptor holds a full
            /// frame back until more input shows it is not the last; a decryptor releases a
            /// frame only once verified).
            #[napi]
            pub fn update(&self, env: Env, #[napi(ts_arg_type = "Uint8Array")] chunk: Bytes) -> napi::Result<Buffer> {
                self.ctx.update(chunk.0).map(Buffer::from).js(&env)
            }

            /// `update` writing into `output` (at least `updateLength(chunk.length)` bytes);
            /// returns the bytes written.
            #[napi]
            pub fn update_into(
                &self,
                env: Env,
                #[napi(ts_arg_type = "Uint8Array")] chunk: Bytes,
                #[napi(ts_arg_type = "Uint8Array")] output: BytesMut,
            ) -> napi::Result<f64> {
                self.ctx.update_into(chunk.0, output.0).map(|n| f(n as u64)).js(&env)
            }

            /// `update` on the libuv pool.
            #[napi(ts_return_type = "Promise<Buffer>")]
            pub fn update_async(
                &self,
                #[napi(ts_arg_type = "Uint8Array")] chunk: OwnedBytes,
                #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
            ) -> AsyncTask<Work> {
                self.ctx.update_async(chunk, token_of(token))
            }

            /// `updateInto` on the libuv pool; resolves to the bytes written. Neither buffer
            /// may be read or changed until the promise settles.
            #[napi(ts_return_type = "Promise<number>")]
            pub fn update_into_async(
                &self,
                #[napi(ts_arg_type = "Uint8Array")] chunk: OwnedBytes,
                #[napi(ts_arg_type = "Uint8Array")] output: OwnedBytes,
                #[napi(ts_arg_type = "CancelToken")] token: Option<Ref<CancelToken>>,
            ) -> AsyncTask<IntoWork> {
                self.ctx.update_into_async(chunk, output, token_of(token))
            }

            /// Bytes `update` returns for `n` more input bytes (exact for an encryptor, an
            /// upper bound for a decryptor).
            #[napi]
            pub fn update_length(&self, env: Env, #[napi(ts_arg_type = "number")] n: U64) -> napi::Result<f64> {
                n.usize().and_then(|n| self.ctx.update_len(n)).map(|x| f(x as u64)).js(&env)
            }

            /// Bytes `final` returns (exact for an encryptor, an upper bound for a decryptor).
            #[napi(getter)]
            pub fn final_length(&self, env: Env) -> napi::Result<f64> {
                self.ctx.finish_len().map(|x| f(x as u64)).js(&env)
            }

            /// Ends the input: an encryptor seals its final frame, a decryptor reports
            /// truncation.
            #[napi(js_name = "final")]
            pub fn finish(&self, env: Env) -> napi::Result<Buffer> {
                self.ctx.finish().map(Buffer::from).js(&env)
            }

            /// `final` writing into `output` (at least `finalLength` bytes).
            #[napi]
            pub fn final_into(
                &self,
                env: Env,
                #[napi(ts_arg_type = "Uint8Array")] output: BytesMut,
            ) -> napi::Result<f64> {
                self.ctx.finish_into(output.0).map(|n| f(n as u64)).js(&env)
            }
        }
    };
}
pub(crate) use stream_class;

/// Streaming encryptor of one segment: a whole single-layout object, or one part.
#[napi]
pub struct Encryptor {
    ctx: Ctx<isec_core::Encryptor<C>>,
    /// Kept apart from the context: a table records it once the part is complete, and the
    /// context is not read while an async update holds it.
    prefix: isec_core::Prefix,
}

impl Encryptor {
    fn wrap(e: isec_core::Encryptor<C>) -> Self {
        Self { prefix: e.prefix(), ctx: Ctx::new(e) }
    }
}

stream_class! { Encryptor, #[doc = "Plaintext bytes taken so far."] consumed }

#[napi]
impl Encryptor {
    /// An encryptor for a whole single-layout object.
    #[napi(constructor)]
    pub fn new(env: Env, #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>) -> napi::Result<Self> {
        isec_core::Encryptor::<C>::new(&key.inner).map(Self::wrap).js(&env)
    }

    /// An encryptor for part `partNumber` (1..=10000) of a multipart object.
    #[napi(factory)]
    pub fn for_part(
        env: Env,
        #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
        #[napi(ts_arg_type = "number")] part_number: U64,
        #[napi(ts_arg_type = "boolean")] is_last: Flag,
    ) -> napi::Result<Self> {
        let r = part_number.u32().and_then(|n| Ok(isec_core::Encryptor::<C>::for_part(&key.inner, n, is_last.0)?));
        r.map(Self::wrap).js(&env)
    }

    /// The 7-byte nonce prefix of this encryption (also the first 7 bytes of its output). A
    /// table-layout writer records it in the `SegmentTable` entry of the part, for the
    /// encryption it completed the upload with. Readable after `final`.
    #[napi(getter)]
    pub fn prefix(&self) -> Buffer {
        self.prefix.as_bytes().to_vec().into()
    }
}

/// Streaming decryptor: a whole object, or a range of one. Releases a frame only after its
/// tag verified and its position checked; `final` reports truncation.
#[napi]
pub struct Decryptor {
    ctx: Ctx<isec_core::Decryptor<C>>,
}

stream_class! { Decryptor, #[doc = "Plaintext bytes released so far."] released }

#[napi]
impl Decryptor {
    /// Decrypts a whole single- or parts-layout object from its first byte.
    #[napi(constructor)]
    pub fn new(env: Env, #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>) -> napi::Result<Self> {
        isec_core::Decryptor::<C>::new(&key.inner).map(|d| Self { ctx: Ctx::new(d) }).js(&env)
    }

    /// Decrypts a whole object of known shape (required for the table layout).
    #[napi(factory)]
    pub fn with_shape(
        env: Env,
        #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
        #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
    ) -> napi::Result<Self> {
        isec_core::Decryptor::<C>::with_shape(&key.inner, shape.inner.clone())
            .map(|d| Self { ctx: Ctx::new(d) })
            .js(&env)
    }

    /// Decrypts the ciphertext `shape.mapRange(start, end)` names and releases exactly the
    /// plaintext `[start, end)` (clamped).
    #[napi(factory)]
    pub fn for_range(
        env: Env,
        #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
        #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
        #[napi(ts_arg_type = "number")] start: U64,
        #[napi(ts_arg_type = "number")] end: U64,
    ) -> napi::Result<Self> {
        let plan = shape.inner.map_range(start.0, end.0);
        isec_core::Decryptor::<C>::for_range(&key.inner, shape.inner.clone(), &plan)
            .map(|d| Self { ctx: Ctx::new(d) })
            .js(&env)
    }

    /// Whether the final expected frame has been verified.
    #[napi(getter)]
    pub fn done(&self, env: Env) -> napi::Result<bool> {
        self.ctx.with(isec_core::Decryptor::is_done).js(&env)
    }
}
