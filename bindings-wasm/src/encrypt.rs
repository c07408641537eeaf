//! The streaming `Encryptor`: one segment (a whole single-layout object, or one part) on
//! either backend.

use isec_core::cipher::RustCrypto;
use isec_core::stream::Schedule;
use isec_core::{Encryptor as CoreEnc, ObjectKey as CoreKey, Prefix};
use wasm_bindgen::prelude::*;

use crate::backend::Backend;
use crate::context::{Context, Ctx, stream_methods};
use crate::convert::{num, to_part_number, to_u64};
use crate::error::{Failure, Fallible};
use crate::keys::ObjectKey;
use crate::window::{WebEnc, make_encryptor};

/// Streaming encryptor of one segment: a whole single-layout object, or one part.
#[wasm_bindgen(js_name = Encryptor)]
pub struct Encryptor {
    ctx: Context<CoreEnc<RustCrypto>, WebEnc>,
    /// Kept apart from the context, which `final` consumes: a table records it once the
    /// part is complete.
    prefix: Prefix,
}

impl Encryptor {
    /// `prefix`: a caller-chosen nonce prefix (feature `test-hooks` only).
    fn build(
        key: &CoreKey,
        part: Option<(u32, bool)>,
        options: Option<&JsValue>,
        prefix: Option<Prefix>,
    ) -> Fallible<Self> {
        let backend = Backend::from_options(options)?;
        let (ctx, prefix) = match backend {
            Backend::Wasm => {
                let e = make_encryptor(key, part, prefix)?;
                let p = e.prefix();
                (Ctx::Wasm(e), p)
            }
            Backend::WebCrypto => {
                let w = WebEnc::new(key, part, prefix)?;
                let p = w.prefix()?;
                (Ctx::Web(w), p)
            }
        };
        Ok(Self { ctx: Context::new(backend, ctx, Schedule::of(key)?.full_frame_len()), prefix })
    }
}

#[wasm_bindgen(js_class = Encryptor)]
impl Encryptor {
    /// An encryptor for a whole single-layout object. `options.backend`: `'auto'`
    /// (default: WebCrypto where available), `'webcrypto'` or `'wasm'`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        key: &ObjectKey,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Encryptor, Failure> {
        Self::build(&key.inner, None, options.as_ref(), None)
    }

    /// An encryptor for part `partNumber` (1..=10000) of a parts- or table-layout object;
    /// parts may be encrypted in any order, on any machine.
    #[wasm_bindgen(js_name = forPart)]
    pub fn for_part(
        key: &ObjectKey,
        #[wasm_bindgen(js_name = partNumber)] part_number: f64,
        #[wasm_bindgen(js_name = isLast)] is_last: bool,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Encryptor, Failure> {
        Self::build(&key.inner, Some((to_part_number(part_number)?, is_last)), options.as_ref(), None)
    }

    /// The 7-byte nonce prefix of this encryption (also the first 7 bytes of its output). A
    /// table-layout writer records it in the `SegmentTable` entry of the part, for the
    /// encryption it completed the upload with. Readable after `final`.
    #[wasm_bindgen(getter, js_name = prefix)]
    #[must_use]
    pub fn prefix(&self) -> js_sys::Uint8Array {
        js_sys::Uint8Array::from(&self.prefix.as_bytes()[..])
    }

    /// Exact bytes `update` returns for `n` more input bytes.
    #[wasm_bindgen(js_name = updateLength)]
    #[must_use]
    pub fn update_length(&self, n: f64) -> f64 {
        let n = to_u64(n, "n", false).ok().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        num(self.ctx.update_len(n) as u64)
    }

    /// Exact bytes `final` returns.
    #[wasm_bindgen(getter, js_name = finalLength)]
    #[must_use]
    pub fn final_length(&self) -> f64 {
        num(self.ctx.final_len() as u64)
    }

    /// Plaintext bytes taken so far.
    #[wasm_bindgen(getter, js_name = consumed)]
    #[must_use]
    pub fn consumed(&self) -> f64 {
        let n = self.ctx.peek(|c| match c {
            Ctx::Wasm(e) => e.consumed(),
            Ctx::Web(w) => w.consumed(),
        });
        num(n.unwrap_or(0))
    }
}

stream_methods!(Encryptor,
    update:
    /// Encrypts `chunk` (or an array of chunks, taken as their concatenation); resolves to
    /// every frame now complete (a full frame is held back until more input shows it is not
    /// the last). The frames of one call are sealed concurrently.
    final:
    /// Seals the final frame and ends the segment; resolves to it.
);

/// Test hook (feature `test-hooks`, never in the shipped build): an encryptor with a
/// caller-chosen nonce prefix, so the tests can show both backends write identical bytes.
#[cfg(feature = "test-hooks")]
#[wasm_bindgen(js_class = Encryptor)]
impl Encryptor {
    /// `partNumber` 0: the single layout.
    #[wasm_bindgen(js_name = __withPrefix, skip_typescript)]
    pub fn with_prefix(
        key: &ObjectKey,
        part_number: u32,
        is_last: bool,
        prefix: &[u8],
        options: Option<JsValue>,
    ) -> Result<Encryptor, Failure> {
        let prefix = prefix.try_into().map_err(|_| Failure::Type("a prefix is 7 bytes".into()))?;
        let part = (part_number > 0).then_some((part_number, is_last));
        Self::build(&key.inner, part, options.as_ref(), Some(prefix))
    }
}
