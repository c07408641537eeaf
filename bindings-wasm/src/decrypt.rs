//! The streaming `Decryptor`: a whole object, or a range of one, on either backend.

use isec_core::Decryptor as CoreDec;
use isec_core::cipher::RustCrypto;
use isec_core::shape::Shape as CoreShape;
use wasm_bindgen::prelude::*;

use crate::backend::Backend;
use crate::context::{Context, Ctx, stream_methods};
use crate::convert::{num, to_range};
use crate::error::{Failure, Fallible};
use crate::keys::ObjectKey;
use crate::layout::Shape;
use crate::window::WebDec;

/// Streaming decryptor: a whole object, or a range of one. Releases a frame only after its
/// tag verified and its position checked; `final` reports truncation.
#[wasm_bindgen(js_name = Decryptor)]
pub struct Decryptor {
    ctx: Context<CoreDec<RustCrypto>, WebDec>,
}

impl Decryptor {
    fn build(
        options: Option<JsValue>,
        wasm: impl FnOnce() -> Fallible<CoreDec<RustCrypto>>,
        web: impl FnOnce() -> Fallible<WebDec>,
    ) -> Fallible<Self> {
        let backend = Backend::from_options(options.as_ref())?;
        let (schedule, ctx) = match backend {
            Backend::Wasm => wasm().map(|d| (d.schedule(), Ctx::Wasm(d)))?,
            Backend::WebCrypto => web().map(|w| (w.dec.schedule(), Ctx::Web(w)))?,
        };
        Ok(Self { ctx: Context::new(backend, ctx, schedule.full_frame_len()) })
    }
}

#[wasm_bindgen(js_class = Decryptor)]
impl Decryptor {
    /// Decrypts a whole single- or parts-layout object from its first byte.
    #[wasm_bindgen(constructor)]
    pub fn new(
        key: &ObjectKey,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Decryptor, Failure> {
        let k = &key.inner;
        Self::build(options, || Ok(CoreDec::new(k)?), || WebDec::open(k))
    }

    /// Decrypts a whole object of known shape (required for the table layout).
    #[wasm_bindgen(js_name = withShape)]
    pub fn with_shape(
        key: &ObjectKey,
        shape: &Shape,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Decryptor, Failure> {
        let (k, s) = (&key.inner, &shape.inner);
        Self::build(options, || Ok(CoreDec::with_shape(k, s.clone())?), || WebDec::with_shape(k, s.clone()))
    }

    /// Decrypts the ciphertext `shape.mapRange(start, end)` names and releases exactly the
    /// plaintext `[start, end)` (clamped). `end` may be `Infinity`.
    #[wasm_bindgen(js_name = forRange)]
    pub fn for_range(
        key: &ObjectKey,
        shape: &Shape,
        start: f64,
        end: f64,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Decryptor, Failure> {
        let (k, s): (_, &CoreShape) = (&key.inner, &shape.inner);
        let (a, b) = to_range(start, end)?;
        Self::build(
            options,
            || Ok(CoreDec::for_range(k, s.clone(), &s.map_range(a, b))?),
            || WebDec::for_range(k, s, a, b),
        )
    }

    /// Plaintext bytes released so far.
    #[wasm_bindgen(getter, js_name = released)]
    #[must_use]
    pub fn released(&self) -> f64 {
        num(self.ctx.out_bytes())
    }

    /// Whether the final expected frame has been verified.
    #[wasm_bindgen(getter, js_name = done)]
    #[must_use]
    pub fn done(&self) -> bool {
        let done = self.ctx.peek(|c| match c {
            Ctx::Wasm(d) => d.is_done(),
            Ctx::Web(w) => w.dec.is_done(),
        });
        done.unwrap_or_else(|| self.ctx.finished())
    }
}

stream_methods!(Decryptor,
    update:
    /// Feeds ciphertext (a chunk, or an array of chunks taken as their concatenation);
    /// resolves to the plaintext of every frame completed and verified. The frames of one
    /// call are opened concurrently.
    final:
    /// Ends the input: decrypts a final short frame and reports truncation.
);
