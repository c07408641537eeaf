//! Envelopes, object keys and the keyring.
//!
//! External (KMS) keys: core's `KeyWrap` is synchronous and a JS wrapper is async, so a
//! keyring operation that needs one runs in two phases, repeated per external key (the JS
//! `Keyring` in `js/api.js` drives them, as bindings-node does). An external key is
//! registered in core as a [`Prefetched`] wrapper. When core asks it to wrap or unwrap
//! something it has no answer for, it records the request and fails with
//! `external_wrapper_failed`; JS awaits the user's wrapper, adds the answer, and runs the
//! same core operation again, which now finds it. Core makes every decision (which key, its
//! state, the commitment check) in every round; the binding only carries bytes. Core draws a
//! fresh DEK per attempt, so when an answer for wrapping a DEK is present, the retry creates
//! the envelope with that DEK and a fresh salt (`create_envelope_with`). A wrap answer serves
//! one wrap only: a round that creates several envelopes asks for one wrap per envelope, each
//! of a fresh DEK.

use std::cell::RefCell;
use std::rc::Rc;

use isec_core::envelope::Layout;
use isec_core::keyring::KeyState;
use isec_core::layout::Shape as CoreShape;
use isec_core::wrap::{Dek, WrapAlg, WrappedKey};
use isec_core::{Error as CoreError, Kek, KeyWrap, ObjectKey as CoreKey, Params};
use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error::{Failure, Fallible};
use crate::legacy::{LegacyKey, LegacyObject};
use crate::{get, num, opt_bool, opt_str, opt_u64, set, to_u64};

fn state_from(name: Option<String>) -> Fallible<KeyState> {
    let name = name.unwrap_or_else(|| "active".into());
    KeyState::from_name(&name).map_err(|e| Failure::Detail(e, format!("unknown key state {name:?}")))
}

/// A decoded envelope. Holds no secret.
#[wasm_bindgen(js_name = Envelope)]
pub struct Envelope {
    pub(crate) inner: isec_core::Envelope,
}

/// The key-free description of an envelope (SPEC.md §3.3), with the object's shape when
/// its ciphertext length is known.
pub(crate) fn info(env: &isec_core::Envelope, ct_len: Option<u64>) -> Fallible<Object> {
    let i = env.info();
    let shape = match (ct_len, env.header().layout) {
        (Some(len), Layout::Single | Layout::Parts { .. }) => Some(CoreShape::from_ciphertext_len(env.header(), len)?),
        _ => None,
    };
    let o = Object::new();
    set(&o, "version", u32::from(i.version));
    set(&o, "suite", u32::from(i.suite));
    set(&o, "kid", i.kid);
    set(&o, "wrapAlg", i.wrap_alg.name());
    set(&o, "frameSize", num(i.frame_size));
    set(&o, "layout", i.layout.name());
    set(&o, "partSize", i.part_size.map(num));
    set(&o, "declaredSize", i.declared_size.map(num));
    set(&o, "envelopeLength", num(i.envelope_len as u64));
    if let Some(s) = shape {
        set(&o, "plaintextLength", num(s.plaintext_len()));
        set(&o, "frameCount", num(s.frame_count()));
        set(&o, "segmentCount", s.segment_count());
    }
    Ok(o)
}

#[wasm_bindgen(js_class = Envelope)]
impl Envelope {
    /// Parses the binary form (SPEC.md §3.1). Key-free.
    #[wasm_bindgen(js_name = decode)]
    pub fn decode(bytes: &[u8]) -> Result<Envelope, Failure> {
        Ok(Self { inner: isec_core::Envelope::decode(bytes)? })
    }

    /// Parses the metadata text form (base64url, `x-amz-meta-isec`).
    #[wasm_bindgen(js_name = decodeText)]
    pub fn decode_text(text: &str) -> Result<Envelope, Failure> {
        Ok(Self { inner: isec_core::Envelope::decode_text(text)? })
    }

    /// The binary form.
    #[wasm_bindgen(js_name = encode)]
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    /// The metadata text (base64url without padding): the value of `x-amz-meta-isec`.
    #[wasm_bindgen(js_name = toText)]
    #[must_use]
    pub fn to_text(&self) -> String {
        self.inner.to_text()
    }

    /// The key-free summary; with the object's ciphertext length also its plaintext length
    /// and frame and segment counts.
    #[wasm_bindgen(js_name = inspect, unchecked_return_type = "EnvelopeInfo")]
    pub fn inspect(
        &self,
        #[wasm_bindgen(js_name = ciphertextLength)] ciphertext_length: Option<f64>,
    ) -> Result<Object, Failure> {
        let len = ciphertext_length.map(|l| to_u64(l, "ciphertextLength", false)).transpose()?;
        info(&self.inner, len)
    }

    /// The key id (also sent in clear as `x-amz-meta-isec-kid`).
    #[wasm_bindgen(getter, js_name = kid)]
    #[must_use]
    pub fn kid(&self) -> String {
        self.inner.kid().to_string()
    }

    /// `aes-kwp` or `external`.
    #[wasm_bindgen(getter, js_name = wrapAlg)]
    #[must_use]
    pub fn wrap_alg(&self) -> String {
        self.inner.wrap_alg().name().to_string()
    }

    /// Plaintext bytes per frame.
    #[wasm_bindgen(getter, js_name = frameSize)]
    #[must_use]
    pub fn frame_size(&self) -> f64 {
        num(self.inner.header().frame_size())
    }

    /// `single`, `parts` or `table`.
    #[wasm_bindgen(getter, js_name = layout)]
    #[must_use]
    pub fn layout(&self) -> String {
        self.inner.header().layout.name().to_string()
    }

    /// The 49 header bytes every derived key is bound to.
    #[wasm_bindgen(js_name = header)]
    #[must_use]
    pub fn header(&self) -> Vec<u8> {
        self.inner.header().to_bytes().to_vec()
    }

    /// Whether two envelopes are byte-identical.
    #[wasm_bindgen(js_name = equals)]
    #[must_use]
    pub fn equals(&self, other: &Envelope) -> bool {
        self.inner == other.inner
    }
}

/// The key of one object, after its commitment verified. Opaque: no key bytes reach JS
/// (the WebCrypto backend imports segment keys as non-extractable `CryptoKey`s).
#[wasm_bindgen(js_name = ObjectKey)]
#[derive(Clone)]
pub struct ObjectKey {
    pub(crate) inner: CoreKey,
}

#[wasm_bindgen(js_class = ObjectKey)]
impl ObjectKey {
    /// Plaintext bytes per frame.
    #[wasm_bindgen(getter, js_name = frameSize)]
    #[must_use]
    pub fn frame_size(&self) -> f64 {
        num(self.inner.header().frame_size())
    }

    /// `single`, `parts` or `table`.
    #[wasm_bindgen(getter, js_name = layout)]
    #[must_use]
    pub fn layout(&self) -> String {
        self.inner.header().layout.name().to_string()
    }

    /// Plaintext bytes per part (parts layout).
    #[wasm_bindgen(getter, js_name = partSize)]
    #[must_use]
    pub fn part_size(&self) -> Option<f64> {
        self.inner.header().part_size().map(num)
    }

    /// The declared plaintext size, if any.
    #[wasm_bindgen(getter, js_name = declaredSize)]
    #[must_use]
    pub fn declared_size(&self) -> Option<f64> {
        self.inner.header().declared_size.map(num)
    }
}

/// `EnvelopeOptions` (`{ frameSize, partSize, table, declaredSize }`) as core parameters.
pub(crate) fn params(opts: Option<&JsValue>) -> Fallible<Params> {
    let mut p = Params::default();
    let Some(opts) = opts.filter(|o| !o.is_undefined() && !o.is_null()) else {
        return Ok(p);
    };
    if !opts.is_object() {
        return Err(Failure::Type("envelope options must be an object".into()));
    }
    if let Some(fs) = opt_u64(opts, "frameSize")? {
        p = p.with_frame_size(fs)?;
    }
    match (opt_u64(opts, "partSize")?, opt_bool(opts, "table")?.unwrap_or(false)) {
        (Some(_), true) => {
            return Err(Failure::Detail(CoreError::InvalidParameter, "partSize and table exclude each other".into()));
        }
        (Some(ps), false) => p = p.with_part_size(ps)?,
        (None, true) => p = p.with_table(),
        (None, false) => {}
    }
    p.declared_size = opt_u64(opts, "declaredSize")?;
    Ok(p)
}

/// One answer of this round: `(kid, is_wrap, input, output, used)`. A wrap answer serves
/// one wrap only, so that every envelope of a round gets its own DEK.
type Answer = (String, bool, Vec<u8>, Vec<u8>, bool);

#[derive(Default)]
pub(crate) struct Exchange {
    answers: Vec<Answer>,
    request: Option<(String, bool, Vec<u8>)>,
}

/// An external key as core sees it: answers from the current round, else a recorded request.
struct Prefetched {
    kid: String,
    // Core needs `Send + Sync` wrappers; wasm32-unknown-unknown has one thread, and a
    // `std::sync::Mutex` there never contends.
    exchange: std::sync::Arc<std::sync::Mutex<Exchange>>,
}

fn lock(ex: &std::sync::Mutex<Exchange>) -> std::sync::MutexGuard<'_, Exchange> {
    ex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Prefetched {
    /// An unwrap answer serves any number of unwraps (a wrapped DEK always unwraps to the
    /// same DEK); a wrap answer is used up by its wrap.
    fn answer(&self, wrap: bool, input: &[u8]) -> Option<Vec<u8>> {
        let mut ex = lock(&self.exchange);
        let hit = ex.answers.iter_mut().find(|a| !a.4 && a.0 == self.kid && a.1 == wrap && a.2 == input);
        let found = hit.map(|a| {
            a.4 = wrap;
            a.3.clone()
        });
        if found.is_none() && ex.request.is_none() {
            ex.request = Some((self.kid.clone(), wrap, input.to_vec()));
        }
        found
    }
}

impl KeyWrap for Prefetched {
    fn alg(&self) -> WrapAlg {
        WrapAlg::External
    }

    fn wrap(&self, dek: &Dek) -> isec_core::Result<WrappedKey> {
        let out = self.answer(true, dek.expose()).ok_or(CoreError::ExternalWrapperFailed)?;
        WrappedKey::from_slice(&out).map_err(|_| CoreError::ExternalWrapperFailed)
    }

    fn unwrap(&self, wrapped: &[u8]) -> isec_core::Result<Dek> {
        let out = self.answer(false, wrapped).ok_or(CoreError::ExternalWrapperFailed)?;
        let bytes: [u8; 32] = out.as_slice().try_into().map_err(|_| CoreError::ExternalWrapperFailed)?;
        Ok(Dek::from_bytes(bytes))
    }
}

/// KEKs by key id, their states and the one active key (SPEC.md §10).
///
/// The JS `Keyring` (js/api.js) extends this class with `addExternal` and the async
/// `open`, `createEnvelope`, `rewrap`, `rewrapTo` and `withExternal`, which also serve
/// external keys.
#[wasm_bindgen(js_name = Keyring)]
pub struct Keyring {
    pub(crate) inner: Rc<RefCell<isec_core::Keyring>>,
    exchange: std::sync::Arc<std::sync::Mutex<Exchange>>,
}

impl Keyring {
    /// The DEK of this round's first unused wrap answer for the active key, if any. The
    /// wrap that creates the envelope uses the answer up, so the round's next envelope draws
    /// a fresh DEK (and asks the wrapper to wrap it) instead of reusing this one.
    fn answered_dek(&self) -> Option<Dek> {
        let ring = self.inner.borrow();
        let kid = ring.active_kid().ok()?;
        let ex = lock(&self.exchange);
        let a = ex.answers.iter().find(|a| !a.4 && a.0 == kid && a.1)?;
        let bytes: [u8; 32] = a.2.as_slice().try_into().ok()?;
        Some(Dek::from_bytes(bytes))
    }
}

fn created(e: isec_core::Envelope, k: CoreKey) -> Object {
    let o = Object::new();
    set(&o, "envelope", Envelope { inner: e });
    set(&o, "key", ObjectKey { inner: k });
    o
}

#[wasm_bindgen(js_class = Keyring)]
impl Keyring {
    /// An empty keyring.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::new_without_default)]
    #[must_use]
    pub fn new() -> Keyring {
        Self { inner: Rc::default(), exchange: std::sync::Arc::default() }
    }

    /// Adds a raw 32-byte KEK in `state` (`active`, `decrypt_only`, `disabled`; default
    /// `active`). Adding an active key demotes the previous one to decrypt-only.
    #[wasm_bindgen(js_name = addKek)]
    pub fn add_kek(
        &self,
        kid: &str,
        kek: &[u8],
        #[wasm_bindgen(unchecked_optional_param_type = "KeyState")] state: Option<String>,
    ) -> Result<(), Failure> {
        let state = state_from(state)?;
        let kek =
            Kek::from_slice(kek).map_err(|e| Failure::Detail(e, format!("a KEK is 32 bytes, not {}", kek.len())))?;
        Ok(self.inner.borrow_mut().add_kek(kid, kek, state)?)
    }

    /// Adds the legacy proxy's key, SHA-256 of its secret string; always decrypt-only.
    #[wasm_bindgen(js_name = addLegacySecretString)]
    pub fn add_legacy_secret_string(&self, kid: &str, secret: &str) -> Result<(), Failure> {
        Ok(self.inner.borrow_mut().add_legacy_secret_string(kid, secret)?)
    }

    /// Makes the previous-proxy key `kid` the one that opens legacy objects recording no
    /// `isec-kid` (`wrong_key_kind` unless `kid` is a legacy secret, `unknown_kid` if absent).
    #[wasm_bindgen(js_name = setDefaultLegacy)]
    pub fn set_default_legacy(&self, kid: &str) -> Result<(), Failure> {
        Ok(self.inner.borrow_mut().set_default_legacy(kid)?)
    }

    /// Registers an external key whose wrapper lives in JS (see `addExternal`).
    #[wasm_bindgen(js_name = _registerExternal)]
    pub fn register_external(
        &self,
        kid: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "KeyState")] state: Option<String>,
    ) -> Result<(), Failure> {
        let state = state_from(state)?;
        let w = Prefetched { kid: kid.to_string(), exchange: self.exchange.clone() };
        Ok(self.inner.borrow_mut().add_external(kid, Box::new(w), state)?)
    }

    /// Sets this round's answers (`{ kid, op, input, output }`) and forgets any pending
    /// request.
    #[wasm_bindgen(js_name = _setAnswers)]
    pub fn set_answers(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "Array<{ kid: string, op: 'wrap' | 'unwrap', input: Uint8Array, output: Uint8Array }>"
        )]
        answers: Array,
    ) -> Result<(), Failure> {
        let mut list = Vec::new();
        for a in answers.iter() {
            let kid = opt_str(&a, "kid")?.ok_or_else(|| Failure::Type("answer.kid".into()))?;
            let op = opt_str(&a, "op")?.ok_or_else(|| Failure::Type("answer.op".into()))?;
            let bytes = |k: &str| -> Fallible<Vec<u8>> {
                get(&a, k)
                    .dyn_into::<Uint8Array>()
                    .map(|u| u.to_vec())
                    .map_err(|_| Failure::Type(format!("answer.{k} must be a Uint8Array")))
            };
            list.push((kid, op == "wrap", bytes("input")?, bytes("output")?, false));
        }
        let mut ex = lock(&self.exchange);
        ex.request = None;
        for a in &mut ex.answers {
            a.2.fill(0);
            a.3.fill(0);
        }
        ex.answers = list;
        Ok(())
    }

    /// The request an external key recorded in the last failed call, if any:
    /// `{ kid, op: 'wrap' | 'unwrap', input }`.
    #[wasm_bindgen(
        js_name = _takeRequest,
        unchecked_return_type = "{ kid: string, op: 'wrap' | 'unwrap', input: Uint8Array } | undefined"
    )]
    #[must_use]
    pub fn take_request(&self) -> JsValue {
        let mut ex = lock(&self.exchange);
        match ex.request.take() {
            None => JsValue::UNDEFINED,
            Some((kid, wrap, mut input)) => {
                let o = Object::new();
                set(&o, "kid", kid);
                set(&o, "op", if wrap { "wrap" } else { "unwrap" });
                set(&o, "input", Uint8Array::from(&input[..]));
                input.fill(0);
                o.into()
            }
        }
    }

    /// Changes a key's state; activating one demotes the previous active key.
    #[wasm_bindgen(js_name = setState)]
    pub fn set_state(
        &self,
        kid: &str,
        #[wasm_bindgen(unchecked_param_type = "KeyState")] state: String,
    ) -> Result<(), Failure> {
        let s = state_from(Some(state))?;
        Ok(self.inner.borrow_mut().set_state(kid, s)?)
    }

    /// Refuses objects of a format version below `version` (0: legacy proxy, 1: isec v1).
    #[wasm_bindgen(js_name = setMinVersion)]
    pub fn set_min_version(&self, version: f64) -> Result<(), Failure> {
        let v = u8::try_from(to_u64(version, "version", false)?)
            .map_err(|_| Failure::Detail(CoreError::InvalidParameter, "version must be 0..=255".into()))?;
        self.inner.borrow_mut().set_min_version(v);
        Ok(())
    }

    /// The minimum format version.
    #[wasm_bindgen(getter, js_name = minVersion)]
    #[must_use]
    pub fn min_version(&self) -> u32 {
        u32::from(self.inner.borrow().min_version())
    }

    /// The keys, in insertion order: `{ kid, state, legacy, external }`.
    #[wasm_bindgen(
        js_name = keys,
        unchecked_return_type = "Array<{ kid: string, state: 'active' | 'decrypt_only' | 'disabled', legacy: boolean, external: boolean }>"
    )]
    #[must_use]
    pub fn keys(&self) -> Array {
        self.inner
            .borrow()
            .keys()
            .into_iter()
            .map(|k| {
                let o = Object::new();
                set(&o, "kid", k.kid);
                set(&o, "state", k.state.name());
                set(&o, "legacy", k.legacy);
                set(&o, "external", k.external);
                JsValue::from(o)
            })
            .collect()
    }

    /// The active key id, or `undefined` when no key is active.
    #[wasm_bindgen(getter, js_name = activeKid)]
    #[must_use]
    pub fn active_kid(&self) -> Option<String> {
        self.inner.borrow().active_kid().ok().map(ToString::to_string)
    }

    /// A new envelope under the active key: `{ envelope, key }` (local keys;
    /// `createEnvelope` also serves external ones).
    #[wasm_bindgen(js_name = createEnvelopeSync, unchecked_return_type = "{ envelope: Envelope, key: ObjectKey }")]
    pub fn create_envelope_sync(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "EnvelopeOptions")] options: Option<JsValue>,
    ) -> Result<Object, Failure> {
        let p = params(options.as_ref())?;
        let ring = self.inner.borrow();
        let (e, k) = match self.answered_dek() {
            Some(dek) => {
                let mut salt = [0u8; 32];
                isec_core::random::fill(&mut salt)?;
                ring.create_envelope_with(p, &dek, salt)?
            }
            None => ring.create_envelope(p)?,
        };
        Ok(created(e, k))
    }

    /// Opens an envelope with the key its kid names.
    #[wasm_bindgen(js_name = openSync)]
    pub fn open_sync(&self, envelope: &Envelope) -> Result<ObjectKey, Failure> {
        Ok(ObjectKey { inner: self.inner.borrow().open(&envelope.inner)? })
    }

    /// The same object's envelope under the active key; the body is untouched.
    #[wasm_bindgen(js_name = rewrapSync)]
    pub fn rewrap_sync(&self, envelope: &Envelope) -> Result<Envelope, Failure> {
        Ok(Envelope { inner: self.inner.borrow().rewrap(&envelope.inner)? })
    }

    /// `rewrapSync` to a named key, which must be the active key.
    #[wasm_bindgen(js_name = rewrapToSync)]
    pub fn rewrap_to_sync(&self, envelope: &Envelope, kid: &str) -> Result<Envelope, Failure> {
        Ok(Envelope { inner: self.inner.borrow().rewrap_to(&envelope.inner, kid)? })
    }

    /// The DEK of a legacy object, with the keyring's legacy key for `kid`, else the
    /// object's own kid, else the default set with `setDefaultLegacy`, after the version and
    /// state checks.
    #[wasm_bindgen(js_name = legacyKey)]
    pub fn legacy_key(&self, object: &LegacyObject, kid: Option<String>) -> Result<LegacyKey, Failure> {
        Ok(LegacyKey { inner: self.inner.borrow().open_legacy(&object.inner, kid.as_deref())? })
    }
}
