//! What the streaming `Encryptor` and `Decryptor` share: one core context on either backend,
//! driven one call at a time. A second call while one is pending is `invalid_state`, and
//! after any error the context refuses further use. The wasm backend runs core's context
//! synchronously; the WebCrypto backend runs a [`Window`] of frames in flight.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use isec_core::{Error as CoreError, Stream};
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::Backend;
use crate::convert::{chunks_of, joined, settle, total_len};
use crate::error::{Failure, Fallible, to_js};
use crate::webcrypto::Sink;

/// A context on the WebCrypto backend: frames sent to `crypto.subtle` as soon as they are
/// complete, several in flight, their results written out in order.
pub(crate) trait Window: Sized + 'static {
    /// Whether no frame is in flight.
    fn idle(&self) -> bool;
    /// Whether `n` more bytes only extend the frame being gathered: [`Window::absorb`] them
    /// without a WebCrypto call or an await.
    fn absorbs(&self, n: usize) -> bool;
    fn absorb(&mut self, chunk: &Uint8Array) -> Fallible<()>;
    /// Capacity of the output of [`Window::feed`] for `n` more bytes, and of [`Window::end`].
    fn update_len(&self, n: usize) -> usize;
    fn final_len(&self) -> usize;
    /// Takes input; `pump`: frames may stay in flight, written out by a later call.
    async fn feed(&mut self, chunks: &[Uint8Array], pump: bool, sink: &mut Sink) -> Fallible<()>;
    /// Ends the input and writes out every frame still in flight.
    async fn end(self, sink: &mut Sink) -> Fallible<()>;
}

/// A context on one backend.
pub(crate) enum Ctx<S, W> {
    Wasm(S),
    Web(W),
}

/// A context's state between calls.
enum Slot<T> {
    Ready(T),
    /// An async call holds the context.
    Busy,
    /// `final` ran.
    Done,
    /// A call failed.
    Failed,
}

fn busy() -> Failure {
    Failure::Detail(CoreError::InvalidState, "the previous call on this context has not finished".into())
}

fn needs_wasm(what: &str) -> Failure {
    Failure::Detail(CoreError::InvalidState, format!("{what} needs the wasm backend; use the async method"))
}

impl<T> Slot<T> {
    fn take(&mut self) -> Fallible<T> {
        match std::mem::replace(self, Self::Busy) {
            Self::Ready(t) => Ok(t),
            Self::Busy => Err(busy()),
            ended => {
                *self = ended;
                Err(Failure::Detail(CoreError::InvalidState, "the context has finished, or failed".into()))
            }
        }
    }
}

type Shared<S, W> = Rc<RefCell<Slot<Ctx<S, W>>>>;

/// Puts `ctx` back after a call, or marks the context failed.
fn put_back<S, W>(slot: &Shared<S, W>, ctx: Ctx<S, W>, ok: bool) {
    *slot.borrow_mut() = if ok { Slot::Ready(ctx) } else { Slot::Failed };
}

/// The sink's bytes once `r` succeeded, counted in `out`; wiped after an error (plaintext
/// must not be released then).
fn hand_over(r: Fallible<()>, sink: Sink, out: &Cell<u64>) -> Fallible<JsValue> {
    match r {
        Ok(()) => {
            out.set(out.get() + sink.len());
            Ok(sink.into_js())
        }
        Err(e) => {
            sink.wipe();
            Err(e)
        }
    }
}

/// A streaming context of the JS API: the context, its backend, and the bytes it handed out.
pub(crate) struct Context<S, W> {
    slot: Shared<S, W>,
    pub(crate) backend: Backend,
    out: Rc<Cell<u64>>,
    /// Length of a full frame (frame size + 28).
    pub(crate) full: usize,
}

impl<S: Stream + 'static, W: Window> Context<S, W> {
    pub(crate) fn new(backend: Backend, ctx: Ctx<S, W>, full: usize) -> Self {
        Self { slot: Rc::new(RefCell::new(Slot::Ready(ctx))), backend, out: Rc::default(), full }
    }

    /// `f` of the context between calls; `None` while a call runs, after `final` or an error.
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&Ctx<S, W>) -> R) -> Option<R> {
        match &*self.slot.borrow() {
            Slot::Ready(c) => Some(f(c)),
            _ => None,
        }
    }

    /// Whether `final` completed.
    pub(crate) fn finished(&self) -> bool {
        matches!(*self.slot.borrow(), Slot::Done)
    }

    /// Bytes handed out so far.
    pub(crate) fn out_bytes(&self) -> u64 {
        self.out.get()
    }

    /// Output of the wasm backend, counted: one array, or a list holding it.
    fn wasm_out(&self, v: &[u8], parts: bool) -> JsValue {
        self.out.set(self.out.get() + v.len() as u64);
        let a = Uint8Array::from(v);
        match (parts, v.is_empty()) {
            (false, _) => a.into(),
            (true, true) => Array::new().into(),
            (true, false) => Array::of1(&a).into(),
        }
    }

    /// `update` (`pump` false: every frame the input completes is written before the promise
    /// resolves) or the streams' `_pump` (`pump` true: frames may stay in flight, written by
    /// a later call; output as pieces).
    pub(crate) fn update(&self, chunk: &JsValue, parts: bool, pump: bool) -> Promise {
        let taken = chunks_of(chunk).and_then(|c| Ok((c, self.slot.borrow_mut().take()?)));
        let (chunks, ctx) = match taken {
            Ok(x) => x,
            Err(e) => return settle(Err(e)),
        };
        match ctx {
            Ctx::Wasm(mut s) => {
                let r = s.update_vec(&joined(&chunks)).map_err(Failure::from);
                put_back(&self.slot, Ctx::Wasm(s), r.is_ok());
                settle(r.map(|v| self.wasm_out(&v, parts)))
            }
            Ctx::Web(mut w) if (pump || w.idle()) && w.absorbs(total_len(&chunks)) => {
                let r = chunks.iter().try_for_each(|c| w.absorb(c));
                put_back(&self.slot, Ctx::Web(w), r.is_ok());
                settle(r.and_then(|()| Ok(Sink::new(parts, 0)?.into_js())))
            }
            Ctx::Web(mut w) => {
                let (slot, out) = (self.slot.clone(), self.out.clone());
                future_to_promise(async move {
                    let r = async {
                        let mut sink = Sink::new(parts, w.update_len(total_len(&chunks)))?;
                        let r = w.feed(&chunks, pump, &mut sink).await;
                        hand_over(r, sink, &out)
                    }
                    .await;
                    put_back(&slot, Ctx::Web(w), r.is_ok());
                    r.map_err(|e| to_js(&e))
                })
            }
        }
    }

    /// `final`: ends the input.
    pub(crate) fn finish(&self, parts: bool) -> Promise {
        let ctx = match self.slot.borrow_mut().take() {
            Ok(c) => c,
            Err(e) => return settle(Err(e)),
        };
        match ctx {
            Ctx::Wasm(mut s) => {
                let r = s.finish_vec().map_err(Failure::from);
                *self.slot.borrow_mut() = if r.is_ok() { Slot::Done } else { Slot::Failed };
                settle(r.map(|v| self.wasm_out(&v, parts)))
            }
            Ctx::Web(w) => {
                let (slot, out) = (self.slot.clone(), self.out.clone());
                future_to_promise(async move {
                    let r = async {
                        let mut sink = Sink::new(parts, w.final_len())?;
                        let r = w.end(&mut sink).await;
                        hand_over(r, sink, &out)
                    }
                    .await;
                    *slot.borrow_mut() = if r.is_ok() { Slot::Done } else { Slot::Failed };
                    r.map_err(|e| to_js(&e))
                })
            }
        }
    }

    /// `updateSync`: `update` on the wasm backend.
    pub(crate) fn update_sync(&self, chunk: &[u8]) -> Fallible<Vec<u8>> {
        let ctx = self.slot.borrow_mut().take()?;
        let (r, ctx) = match ctx {
            Ctx::Wasm(mut s) => (s.update_vec(chunk).map_err(Failure::from), Ctx::Wasm(s)),
            web => (Err(needs_wasm("updateSync")), web),
        };
        // Refusing the backend is no failure of the context.
        let keep = r.is_ok() || matches!(ctx, Ctx::Web(_));
        put_back(&self.slot, ctx, keep);
        let v = r?;
        self.out.set(self.out.get() + v.len() as u64);
        Ok(v)
    }

    /// `finalSync`: `final` on the wasm backend.
    pub(crate) fn finish_sync(&self) -> Fallible<Vec<u8>> {
        let ctx = self.slot.borrow_mut().take()?;
        let r = match ctx {
            Ctx::Wasm(mut s) => s.finish_vec().map_err(Failure::from),
            web => {
                put_back(&self.slot, web, true);
                return Err(needs_wasm("finalSync"));
            }
        };
        *self.slot.borrow_mut() = if r.is_ok() { Slot::Done } else { Slot::Failed };
        let v = r?;
        self.out.set(self.out.get() + v.len() as u64);
        Ok(v)
    }

    /// Exact bytes `update` hands out for `n` more input bytes (an upper bound when
    /// decrypting); 0 while a call runs or after the end.
    pub(crate) fn update_len(&self, n: usize) -> usize {
        self.peek(|c| match c {
            Ctx::Wasm(s) => s.update_len(n),
            Ctx::Web(w) => w.update_len(n),
        })
        .unwrap_or(0)
    }

    /// Exact bytes `final` hands out (an upper bound when decrypting).
    pub(crate) fn final_len(&self) -> usize {
        self.peek(|c| match c {
            Ctx::Wasm(s) => s.finish_len(),
            Ctx::Web(w) => w.final_len(),
        })
        .unwrap_or(0)
    }
}

/// The JS methods both streaming classes have, each a call into their [`Context`] (field
/// `ctx`); `update` and `final` take the class's own documentation.
macro_rules! stream_methods {
    ($class:ident, update: $(#[$u:meta])* final: $(#[$f:meta])*) => {
        #[wasm_bindgen(js_class = $class)]
        impl $class {
            /// `webcrypto` or `wasm`.
            #[wasm_bindgen(getter, js_name = backend)]
            #[must_use]
            pub fn backend(&self) -> String {
                self.ctx.backend.name().to_string()
            }

            /// Length of a full frame of this object (frame size + 28), for callers sizing
            /// their chunks.
            #[wasm_bindgen(getter, js_name = frameCiphertextLength)]
            #[must_use]
            pub fn frame_ciphertext_length(&self) -> f64 {
                crate::convert::num(self.ctx.full as u64)
            }

            $(#[$u])*
            #[wasm_bindgen(js_name = update, unchecked_return_type = "Promise<Uint8Array>")]
            pub fn update(
                &self,
                #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
            ) -> js_sys::Promise {
                self.ctx.update(chunk, false, false)
            }

            /// `update` resolving to the output as pieces, without concatenating them (what
            /// the streams enqueue).
            #[wasm_bindgen(js_name = updateParts, unchecked_return_type = "Promise<Uint8Array[]>")]
            pub fn update_parts(
                &self,
                #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
            ) -> js_sys::Promise {
                self.ctx.update(chunk, true, false)
            }

            /// What the streams call: `updateParts`, except that frames may stay in flight in
            /// WebCrypto when the call resolves (a later call or `finalParts` hands them
            /// over), so that WebCrypto keeps working while the stream reads its next chunk.
            /// The chunk itself is not kept.
            #[wasm_bindgen(js_name = _pump, skip_typescript)]
            pub fn pump(&self, chunk: &JsValue) -> js_sys::Promise {
                self.ctx.update(chunk, true, true)
            }

            $(#[$f])*
            #[wasm_bindgen(js_name = final, unchecked_return_type = "Promise<Uint8Array>")]
            pub fn final_(&self) -> js_sys::Promise {
                self.ctx.finish(false)
            }

            /// `final` resolving to the output as pieces.
            #[wasm_bindgen(js_name = finalParts, unchecked_return_type = "Promise<Uint8Array[]>")]
            pub fn final_parts(&self) -> js_sys::Promise {
                self.ctx.finish(true)
            }

            /// `update` for the wasm backend, synchronously.
            #[wasm_bindgen(js_name = updateSync)]
            pub fn update_sync(&self, chunk: &[u8]) -> Result<Vec<u8>, Failure> {
                self.ctx.update_sync(chunk)
            }

            /// `final` for the wasm backend, synchronously.
            #[wasm_bindgen(js_name = finalSync)]
            pub fn final_sync(&self) -> Result<Vec<u8>, Failure> {
                self.ctx.finish_sync()
            }
        }
    };
}
pub(crate) use stream_methods;
