//! Work for the libuv pool: the jobs behind every `...Async` call, and the token that
//! cancels them. A job checks its token before it starts; the long ones check it between
//! steps too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use isec_core::Error as CoreError;
use napi::bindgen_prelude::{AsyncTask, Buffer, ToNapiValue, TypeName};
use napi::{Env, Task};
use napi_derive::napi;

use crate::convert::{OwnedBytes, Ref};
use crate::error::{Failure, Fallible, js_error};
use crate::f;

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

pub(crate) fn token_of(t: Option<Ref<CancelToken>>) -> Cancel {
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

impl<T: Yield> Job<T> {
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

/// What a job yields, as JS gets it.
pub trait Yield: Send + 'static {
    type Js: ToNapiValue + TypeName;
    fn js(self) -> Self::Js;
}

impl Yield for Vec<u8> {
    type Js = Buffer;
    fn js(self) -> Buffer {
        self.into()
    }
}

impl Yield for usize {
    type Js = f64;
    fn js(self) -> f64 {
        f(self as u64)
    }
}

impl<T: Yield> Task for Job<T> {
    type Output = Fallible<T>;
    type JsValue = T::Js;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(self.run())
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<T::Js> {
        self.settled();
        output.map(T::js).map_err(|e| js_error(env.raw(), &e))
    }

    fn reject(&mut self, _env: Env, err: napi::Error) -> napi::Result<T::Js> {
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
