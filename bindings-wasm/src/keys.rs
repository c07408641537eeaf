//! Envelopes, object keys and the keyring.
//!
//! External (KMS) keys: core runs each keyring operation as a [`KeyTask`] that stops at a
//! request for a key the caller answers for; the JS `Keyring` in `js/api.js` awaits the
//! user's wrapper and feeds the answer back (as bindings-node does). Core makes every
//! decision and checks every answer; the binding only carries bytes.

use std::cell::RefCell;
use std::rc::Rc;

use isec_core::envelope::Layout;
use isec_core::keyring::KeyState;
use isec_core::recipient::{PrivateKey, PublicKey};
use isec_core::shape::Shape as CoreShape;
use isec_core::{Error as CoreError, Kek, KeyOutput, LayoutRequest, ObjectKey as CoreKey, Params};
use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error::{Failure, Fallible};
use crate::legacy::{LegacyKey, LegacyObject};
use crate::{get, num, opt_bool, opt_u64, set, to_u64};

fn state_from(name: Option<String>) -> Fallible<KeyState> {
    let name = name.unwrap_or_else(|| "active".into());
    KeyState::from_name(&name).map_err(|e| Failure::Detail(e, format!("unknown key state {name:?}")))
}

/// A recipient's public key from its text form (`isec-x25519-public:...`).
fn public_key(text: &str) -> Fallible<PublicKey> {
    PublicKey::from_text(text).map_err(|e| Failure::Detail(e, "not a public key (isec-x25519-public:...)".into()))
}

/// Runs `f` on the bytes of a secret the caller handed over (a private key's text, a keyring
/// file), then overwrites them: wasm-bindgen copies a JS string into linear memory, which is
/// reused without being cleared. (The JS string itself is beyond reach.)
fn with_secret<T>(text: String, f: impl FnOnce(&[u8]) -> T) -> T {
    let mut bytes = text.into_bytes();
    let out = f(&bytes);
    bytes.fill(0);
    // Keeps the overwrite from being dropped as a dead store before the free.
    std::hint::black_box(&bytes);
    out
}

/// A recipient's private key from its text form (`isec-x25519-private:...`); the message
/// never repeats the text.
fn private_key(text: String) -> Fallible<PrivateKey> {
    with_secret(text, |b| {
        let parsed = std::str::from_utf8(b).map_err(|_| CoreError::InvalidParameter).and_then(PrivateKey::from_text);
        parsed.map_err(|e| Failure::Detail(e, "not a private key (isec-x25519-private:...)".into()))
    })
}

/// A fresh recipient key pair: `{ privateKey, publicKey }` in their text forms
/// (`isec-x25519-private:...`, `isec-x25519-public:...`). The private key opens what the
/// public key encrypts; give writers only the public key.
#[wasm_bindgen(js_name = generateRecipient, unchecked_return_type = "{ privateKey: string, publicKey: string }")]
pub fn generate_recipient() -> Result<Object, Failure> {
    let sk = PrivateKey::generate()?;
    let o = Object::new();
    set(&o, "privateKey", sk.to_text().as_str());
    set(&o, "publicKey", sk.public_key().to_text());
    Ok(o)
}

/// The public key text of a private key text.
#[wasm_bindgen(js_name = publicKeyOf)]
pub fn public_key_of(#[wasm_bindgen(js_name = privateKey)] private_key_text: String) -> Result<String, Failure> {
    Ok(private_key(private_key_text)?.public_key().to_text())
}

/// Test hook (feature `test-hooks`, never in the shipped build): what a service holding a
/// recipient's private key computes for `addExternalPrivateKey` (core's `PrivateKey::unwrap`),
/// so the tests can answer its requests. Returns the DEK.
#[cfg(feature = "test-hooks")]
#[wasm_bindgen(js_name = __recipientUnwrap, skip_typescript)]
pub fn recipient_unwrap(private_key_text: String, wrapped: &[u8], info: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(private_key(private_key_text)?.unwrap(wrapped, info)?.expose().to_vec())
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

getters!(Envelope {
    /// The key id (also sent in clear as `x-amz-meta-isec-kid`).
    kid kid -> String = |e| e.kid().to_string();
    /// `aes-kwp`, `external` or `hpke-x25519`.
    wrapAlg wrap_alg -> String = |e| e.wrap_alg().name().to_string();
    /// Plaintext bytes per frame.
    frameSize frame_size -> f64 = |e| num(e.header().frame_size());
    /// `single`, `parts` or `table`.
    layout layout -> String = |e| e.header().layout.name().to_string();
});

/// The key of one object, after its commitment verified. Opaque: no key bytes reach JS
/// (the WebCrypto backend imports segment keys as non-extractable `CryptoKey`s).
#[wasm_bindgen(js_name = ObjectKey)]
#[derive(Clone)]
pub struct ObjectKey {
    pub(crate) inner: CoreKey,
}

getters!(ObjectKey {
    /// Plaintext bytes per frame.
    frameSize frame_size -> f64 = |k| num(k.header().frame_size());
    /// `single`, `parts` or `table`.
    layout layout -> String = |k| k.header().layout.name().to_string();
    /// Plaintext bytes per part (parts layout).
    partSize part_size -> Option<f64> = |k| k.header().part_size().map(num);
    /// The declared plaintext size, if any.
    declaredSize declared_size -> Option<f64> = |k| k.header().declared_size.map(num);
});

/// `EnvelopeOptions` (`{ frameSize, partSize, fitParts: { size, preferred }, table,
/// declaredSize }`) as core parameters.
pub(crate) fn params(opts: Option<&JsValue>) -> Fallible<Params> {
    let Some(opts) = opts.filter(|o| !o.is_undefined() && !o.is_null()) else {
        return Ok(Params::default());
    };
    if !opts.is_object() {
        return Err(Failure::Type("envelope options must be an object".into()));
    }
    let fit = get(opts, "fitParts");
    let fit = if fit.is_undefined() || fit.is_null() {
        None
    } else {
        let need = |k: &str| opt_u64(&fit, k)?.ok_or_else(|| Failure::Type(format!("fitParts.{k} is required")));
        Some((need("size")?, need("preferred")?))
    };
    let layout =
        LayoutRequest::from_options(opt_u64(opts, "partSize")?, fit, opt_bool(opts, "table")?.unwrap_or(false))
            .map_err(|e| Failure::Detail(e, "partSize, fitParts and table exclude each other".into()))?;
    Ok(Params::new(layout, opt_u64(opts, "frameSize")?, opt_u64(opts, "declaredSize")?)?)
}

/// One keyring operation in progress: `step(keyring)` runs it until it needs an external
/// key's answer (returned as `{ kid, op, input, wrapAlg, info }`) or is done (`undefined`);
/// `answer(output)` feeds the wrapper's output back; `finish()` hands over the result.
/// `Keyring.withExternal` drives it.
#[wasm_bindgen(js_name = KeyTask)]
pub struct KeyTask(pub(crate) isec_core::KeyTask);

#[wasm_bindgen(js_class = KeyTask)]
impl KeyTask {
    /// Runs the task as far as core can: the request of an external key, or `undefined`
    /// when done. `wrapAlg` is `external` for a KMS key and `hpke-x25519` for the unwrap of
    /// a recipient's envelope by the service holding its private key, which opens `input`
    /// under `info` (empty for a KMS key).
    #[wasm_bindgen(
        unchecked_return_type = "{ kid: string, op: 'wrap' | 'unwrap', input: Uint8Array, wrapAlg: 'external' | 'hpke-x25519', info: Uint8Array } | undefined"
    )]
    pub fn step(&mut self, keyring: &Keyring) -> Result<JsValue, Failure> {
        let Some(r) = self.0.next_request(&keyring.inner.borrow())? else { return Ok(JsValue::UNDEFINED) };
        let o = Object::new();
        set(&o, "kid", r.kid());
        set(&o, "op", r.op().name());
        set(&o, "input", Uint8Array::from(r.input()));
        set(&o, "wrapAlg", r.wrap_alg().name());
        set(&o, "info", Uint8Array::from(r.info()));
        Ok(o.into())
    }

    /// The external wrapper's output for the last request.
    pub fn answer(&mut self, output: &[u8]) -> Result<(), Failure> {
        Ok(self.0.answer(output)?)
    }

    /// The result: an `ObjectKey` (open), `{ envelope, key }` (create) or an `Envelope`
    /// (rewrap).
    #[wasm_bindgen(unchecked_return_type = "ObjectKey | { envelope: Envelope, key: ObjectKey } | Envelope")]
    pub fn finish(&mut self) -> Result<JsValue, Failure> {
        Ok(match self.0.finish()? {
            KeyOutput::Key(inner) => ObjectKey { inner }.into(),
            KeyOutput::Created(e, k) => created(e, k).into(),
            KeyOutput::Envelope(inner) => Envelope { inner }.into(),
        })
    }
}

/// KEKs by key id, their states and the one active key (SPEC.md §10).
///
/// The JS `Keyring` (js/api.js) extends this class with `addExternal`, `withExternal` and
/// the async `open`, `createEnvelope`, `rewrap` and `rewrapTo`, which also serve external
/// keys.
#[wasm_bindgen(js_name = Keyring)]
pub struct Keyring {
    pub(crate) inner: Rc<RefCell<isec_core::Keyring>>,
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
        Self { inner: Rc::default() }
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

    /// Adds a public-key recipient by its public key (`isec-x25519-public:...`) in `state`
    /// (default `active`): it creates envelopes that only the private key opens; opening one
    /// with this keyring is `public_key_only`. What a writer that must never read holds.
    #[wasm_bindgen(js_name = addPublicKey)]
    pub fn add_public_key(
        &self,
        kid: &str,
        #[wasm_bindgen(js_name = publicKey)] public_key_text: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "KeyState")] state: Option<String>,
    ) -> Result<(), Failure> {
        let state = state_from(state)?;
        let pk = public_key(public_key_text)?;
        Ok(self.inner.borrow_mut().add_public_key(kid, pk, state)?)
    }

    /// Adds a public-key recipient with its private key (`isec-x25519-private:...`) in
    /// `state` (default `active`): it opens and rewraps the recipient's envelopes, and
    /// creates them when active.
    #[wasm_bindgen(js_name = addPrivateKey)]
    pub fn add_private_key(
        &self,
        kid: &str,
        #[wasm_bindgen(js_name = privateKey)] private_key_text: String,
        #[wasm_bindgen(unchecked_optional_param_type = "KeyState")] state: Option<String>,
    ) -> Result<(), Failure> {
        let state = state_from(state)?;
        let sk = private_key(private_key_text)?;
        Ok(self.inner.borrow_mut().add_private_key(kid, sk, state)?)
    }

    /// Registers a recipient whose private key a service holds, reached by a JS callback
    /// (see `addExternalPrivateKey`): opening stops at a request carrying the wrapped DEK and
    /// the HPKE `info`.
    #[wasm_bindgen(js_name = _registerExternalPrivateKey)]
    pub fn register_external_private_key(
        &self,
        kid: &str,
        #[wasm_bindgen(js_name = publicKey)] public_key_text: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "KeyState")] state: Option<String>,
    ) -> Result<(), Failure> {
        let state = state_from(state)?;
        let pk = public_key(public_key_text)?;
        Ok(self.inner.borrow_mut().add_private_key_deferred(kid, pk, state)?)
    }

    /// Fills an empty keyring from the text of a keyring file (SPEC.md §10.3); core parses
    /// it. `Keyring.fromFileText` calls it on a new keyring of the JS class.
    #[wasm_bindgen(js_name = _loadFileText)]
    pub fn load_file_text(&self, text: String) -> Result<(), Failure> {
        if !self.inner.borrow().keys().is_empty() {
            return Err(Failure::Detail(
                CoreError::InvalidParameter,
                "a keyring file loads into an empty keyring".into(),
            ));
        }
        let ring = with_secret(text, isec_core::Keyring::from_file_text)
            .map_err(|e| Failure::Detail(e, "not a keyring file (SPEC.md §10.3)".into()))?;
        *self.inner.borrow_mut() = ring;
        Ok(())
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
        Ok(self.inner.borrow_mut().add_external_kid(kid, state)?)
    }

    /// Starts opening an envelope (drive it with `withExternal`).
    #[wasm_bindgen(js_name = beginOpen)]
    pub fn begin_open(&self, envelope: &Envelope) -> Result<KeyTask, Failure> {
        Ok(KeyTask(self.inner.borrow().begin_open(&envelope.inner)?))
    }

    /// Starts creating an envelope under the active key, around a DEK of its own.
    #[wasm_bindgen(js_name = beginCreate)]
    pub fn begin_create(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "EnvelopeOptions")] options: Option<JsValue>,
    ) -> Result<KeyTask, Failure> {
        let p = params(options.as_ref())?;
        Ok(KeyTask(self.inner.borrow().begin_create(p)?))
    }

    /// Starts rewrapping an envelope to `kid` (default: the active key, which it must be).
    #[wasm_bindgen(js_name = beginRewrap)]
    pub fn begin_rewrap(&self, envelope: &Envelope, kid: Option<String>) -> Result<KeyTask, Failure> {
        Ok(KeyTask(self.inner.borrow().begin_rewrap(&envelope.inner, kid.as_deref())?))
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

    /// The keys, in insertion order: `{ kid, state, kind, legacy, external, publicKey,
    /// created }` (`publicKey` for recipients, `created` when a keyring file records it).
    #[wasm_bindgen(js_name = keys, unchecked_return_type = "Array<KeyInfo>")]
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
                set(&o, "kind", k.kind.name());
                if let Some(pk) = k.public_key {
                    set(&o, "publicKey", pk.to_text());
                }
                if let Some(c) = k.created {
                    set(&o, "created", c);
                }
                JsValue::from(o)
            })
            .collect()
    }

    /// A new envelope under the active key: `{ envelope, key }` (local keys;
    /// `createEnvelope` also serves external ones).
    #[wasm_bindgen(js_name = createEnvelopeSync, unchecked_return_type = "{ envelope: Envelope, key: ObjectKey }")]
    pub fn create_envelope_sync(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "EnvelopeOptions")] options: Option<JsValue>,
    ) -> Result<Object, Failure> {
        let (e, k) = self.inner.borrow().create_envelope(params(options.as_ref())?)?;
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

getters!(Keyring {
    /// The minimum format version.
    minVersion min_version -> u32 = |k| u32::from(k.borrow().min_version());
    /// The active key id, or `undefined` when no key is active.
    activeKid active_kid -> Option<String> = |k| k.borrow().active_kid().ok().map(ToString::to_string);
});
