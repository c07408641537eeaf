//! Envelopes, object keys and the keyring.
//!
//! External (KMS) keys: core runs each keyring operation as a [`KeyTask`] that stops at a
//! request for a key the caller answers for; the JS `Keyring` (`lib/index.js`) awaits the
//! user's wrapper and feeds the answer back. Core makes every decision and checks every
//! answer; the binding only carries bytes.

use isec_core::envelope::Layout;
use isec_core::keyring::KeyState;
use isec_core::recipient::{PrivateKey, PublicKey};
use isec_core::shape::Shape as CoreShape;
use isec_core::{Error as CoreError, Kek, KeyOutput, LayoutRequest, ObjectKey as CoreKey, Params};
use napi::Env;
use napi::bindgen_prelude::{Buffer, Either, Either3};
use napi_derive::napi;

use crate::convert::{Bytes, Flag, Obj, Ref, Text, U64};
use crate::error::{Failure, Fallible};
use crate::{Js, f, getters, made_by};

/// A key state by name; absent: `active`.
fn state_from(name: Option<&Text>) -> Fallible<KeyState> {
    let name = name.map_or("active", |s| s.0.as_str());
    KeyState::from_name(name).map_err(|e| Failure::Detail(e, format!("unknown key state {name:?}")))
}

/// A decoded envelope. Holds no secret.
#[napi]
pub struct Envelope {
    pub(crate) inner: isec_core::Envelope,
}

/// The key-free description of an envelope (SPEC.md §3.3).
#[napi(object, object_from_js = false)]
pub struct EnvelopeInfo {
    pub version: u32,
    pub suite: u32,
    pub kid: String,
    /// `aes-kwp`, `external` or `hpke-x25519`.
    pub wrap_alg: String,
    pub frame_size: f64,
    /// `single`, `parts` or `table`.
    pub layout: String,
    pub part_size: Option<f64>,
    pub declared_size: Option<f64>,
    pub envelope_length: u32,
    /// With a ciphertext length (single and parts layouts): the plaintext length.
    pub plaintext_length: Option<f64>,
    /// With a ciphertext length: frames in the object.
    pub frame_count: Option<f64>,
    /// With a ciphertext length: segments (parts) in the object.
    pub segment_count: Option<u32>,
}

pub(crate) fn info(env: &isec_core::Envelope, ct_len: Option<u64>) -> Fallible<EnvelopeInfo> {
    let i = env.info();
    let shape = match (ct_len, env.header().layout) {
        (Some(len), Layout::Single | Layout::Parts { .. }) => Some(CoreShape::from_ciphertext_len(env.header(), len)?),
        _ => None,
    };
    Ok(EnvelopeInfo {
        version: u32::from(i.version),
        suite: u32::from(i.suite),
        kid: i.kid.to_string(),
        wrap_alg: i.wrap_alg.name().to_string(),
        frame_size: f(i.frame_size),
        layout: i.layout.name().to_string(),
        part_size: i.part_size.map(f),
        declared_size: i.declared_size.map(f),
        envelope_length: u32::try_from(i.envelope_len).unwrap_or(u32::MAX),
        plaintext_length: shape.as_ref().map(|s| f(s.plaintext_len())),
        frame_count: shape.as_ref().map(|s| f(s.frame_count())),
        segment_count: shape.as_ref().map(CoreShape::segment_count),
    })
}

made_by! {
    Envelope,
    "Not constructible with `new`: made by `Envelope.decode`, `Envelope.decodeText` or `Keyring.createEnvelope`."
}

getters!(Envelope {
    #[doc = "The key id."] kid -> String = |s| s.kid().to_string();
    #[doc = "`aes-kwp`, `external` or `hpke-x25519`."] wrap_alg -> String = |s| s.wrap_alg().name().to_string();
    #[doc = "Plaintext bytes per frame."] frame_size -> f64 = |s| f(s.header().frame_size());
    #[doc = "`single`, `parts` or `table`."] layout -> String = |s| s.header().layout.name().to_string();
});

#[napi]
impl Envelope {
    /// Parses the binary form (SPEC.md §3.1). Key-free.
    #[napi(factory)]
    pub fn decode(env: Env, #[napi(ts_arg_type = "Uint8Array")] bytes: Bytes) -> napi::Result<Self> {
        isec_core::Envelope::decode(bytes.0).map(|inner| Self { inner }).js(&env)
    }

    /// Parses the metadata text form (base64url, `x-amz-meta-isec`).
    #[napi(factory)]
    pub fn decode_text(env: Env, #[napi(ts_arg_type = "string")] text: Text) -> napi::Result<Self> {
        isec_core::Envelope::decode_text(&text.0).map(|inner| Self { inner }).js(&env)
    }

    /// The binary form.
    #[napi]
    pub fn encode(&self) -> Buffer {
        self.inner.to_bytes().into()
    }

    /// The metadata text (base64url without padding).
    #[napi]
    pub fn to_text(&self) -> String {
        self.inner.to_text()
    }

    /// The key-free summary; with the object's ciphertext length also its plaintext length
    /// and frame and segment counts.
    #[napi]
    pub fn inspect(
        &self,
        env: Env,
        #[napi(ts_arg_type = "number")] ciphertext_length: Option<U64>,
    ) -> napi::Result<EnvelopeInfo> {
        info(&self.inner, ciphertext_length.map(|l| l.0)).js(&env)
    }

    /// The 49 header bytes every derived key is bound to.
    #[napi]
    pub fn header(&self) -> Buffer {
        self.inner.header().to_bytes().to_vec().into()
    }

    /// Whether two envelopes are byte-identical.
    #[napi]
    pub fn equals(&self, #[napi(ts_arg_type = "Envelope")] other: Ref<Envelope>) -> bool {
        self.inner == other.inner
    }
}

/// The key of one object, after its commitment verified. Opaque: no key bytes reach JS.
#[napi]
pub struct ObjectKey {
    pub(crate) inner: CoreKey,
}

made_by! { ObjectKey, "Not constructible with `new`: made by `Keyring.open` or `Keyring.createEnvelope`." }

getters!(ObjectKey {
    #[doc = "Plaintext bytes per frame."] frame_size -> f64 = |s| f(s.header().frame_size());
    #[doc = "`single`, `parts` or `table`."] layout -> String = |s| s.header().layout.name().to_string();
    #[doc = "Plaintext bytes per part (parts layout)."] part_size -> Option<f64> = |s| s.header().part_size().map(f);
    #[doc = "The declared plaintext size, if any."] declared_size -> Option<f64> = |s| s.header().declared_size.map(f);
});

/// Options of a new envelope.
#[napi(object, object_to_js = false)]
pub struct EnvelopeOptions {
    /// Frame size in bytes: a power of two from 4096 to 8388608 (default 65536).
    #[napi(ts_type = "number")]
    pub frame_size: Option<U64>,
    /// Multipart with a fixed part size (a multiple of the frame size).
    #[napi(ts_type = "number")]
    pub part_size: Option<U64>,
    /// Multipart with parts of any size, described by a segment table.
    #[napi(ts_type = "boolean")]
    pub table: Option<Flag>,
    /// The plaintext size, if known; checked on decrypt.
    #[napi(ts_type = "number")]
    pub declared_size: Option<U64>,
    /// Multipart for an object of `size` plaintext bytes with parts of about `preferred`
    /// bytes: rounded up to whole frames and grown until the object fits S3's 10000 parts
    /// (SPEC.md §6.2). The chosen size is the key's and the envelope's `partSize`.
    #[napi(ts_type = "FitParts")]
    pub fit_parts: Option<Obj<FitParts>>,
}

/// An object size and a preferred part size, for `EnvelopeOptions.fitParts`.
#[napi(object, object_to_js = false)]
pub struct FitParts {
    /// The object's plaintext size in bytes.
    #[napi(ts_type = "number")]
    pub size: U64,
    /// The part size to start from, in bytes.
    #[napi(ts_type = "number")]
    pub preferred: U64,
}

pub(crate) fn params(opts: Option<&EnvelopeOptions>) -> Fallible<Params> {
    let Some(o) = opts else { return Ok(Params::default()) };
    let fit = o.fit_parts.as_deref().map(|f| (f.size.0, f.preferred.0));
    let layout = LayoutRequest::from_options(o.part_size.map(|p| p.0), fit, o.table.is_some_and(|t| t.0))
        .map_err(|e| Failure::Detail(e, "partSize, fitParts and table exclude each other".into()))?;
    Ok(Params::new(layout, o.frame_size.map(|f| f.0), o.declared_size.map(|d| d.0))?)
}

/// A new envelope and the key that encrypts its object.
#[napi(object, object_from_js = false)]
pub struct CreatedEnvelope {
    pub envelope: Envelope,
    pub key: ObjectKey,
}

/// One key's public description.
#[napi(object, object_from_js = false)]
pub struct KeyInfo {
    pub kid: String,
    /// `active`, `decrypt_only` or `disabled`.
    pub state: String,
    pub legacy: bool,
    pub external: bool,
    /// `kek`, `legacy`, `external`, `public_key`, `private_key` or `external_private_key`.
    pub kind: String,
    /// A public-key recipient's public key text (`isec-x25519-public:...`).
    pub public_key: Option<String>,
    /// When the key was made, as its keyring file records it.
    pub created: Option<String>,
}

impl From<isec_core::KeyInfo> for KeyInfo {
    fn from(k: isec_core::KeyInfo) -> Self {
        Self {
            kid: k.kid,
            state: k.state.name().to_string(),
            legacy: k.legacy,
            external: k.external,
            kind: k.kind.name().to_string(),
            public_key: k.public_key.map(|p| p.to_text()),
            created: k.created,
        }
    }
}

/// A recipient key pair, as texts (SPEC.md §3.5).
#[napi(object, object_from_js = false)]
pub struct RecipientKeys {
    /// `isec-x25519-private:...`
    pub private_key: String,
    /// `isec-x25519-public:...`
    pub public_key: String,
}

/// A wrap or unwrap a `KeyTask` needs from an external key.
#[napi(object, object_from_js = false)]
pub struct ExternalRequest {
    pub kid: String,
    /// `wrap` (input: the DEK) or `unwrap` (input: the wrapped DEK).
    pub op: String,
    pub input: Buffer,
    /// `external` for a KMS key, `hpke-x25519` for a recipient whose private key a service holds.
    pub wrap_alg: String,
    /// For `hpke-x25519`, the HPKE info the wrapped DEK opens under; empty otherwise.
    pub info: Buffer,
}

/// A fresh recipient key pair.
#[napi]
pub fn generate_recipient(env: Env) -> napi::Result<RecipientKeys> {
    let sk = PrivateKey::generate().js(&env)?;
    Ok(RecipientKeys { private_key: sk.to_text().to_string(), public_key: sk.public_key().to_text() })
}

/// The public key text of a recipient's private key text.
#[napi]
pub fn public_key_of(env: Env, #[napi(ts_arg_type = "string")] private_key: Text) -> napi::Result<String> {
    Ok(PrivateKey::from_text(&private_key.0).js(&env)?.public_key().to_text())
}

/// What a service holding a recipient's private key computes for an external private key:
/// the DEK sealed in `wrapped` under `info` (`unwrap_failed` when it does not open).
#[napi]
pub fn open_wrapped_dek(
    env: Env,
    #[napi(ts_arg_type = "string")] private_key: Text,
    #[napi(ts_arg_type = "Uint8Array")] wrapped: Bytes,
    #[napi(ts_arg_type = "Uint8Array")] info: Bytes,
) -> napi::Result<Buffer> {
    let sk = PrivateKey::from_text(&private_key.0).js(&env)?;
    Ok(sk.unwrap(wrapped.0, info.0).js(&env)?.expose().to_vec().into())
}

/// One keyring operation in progress: `step(keyring)` runs it until it needs an external
/// key's answer (returned as a request) or is done (`null`); `answer(output)` feeds the
/// wrapper's output back; `finish()` hands over the result. `Keyring.withExternal` drives it.
#[napi]
pub struct KeyTask(pub(crate) isec_core::KeyTask);

made_by! { KeyTask, "Not constructible with `new`: made by `Keyring.beginOpen`, `beginCreate` or `beginRewrap`." }

#[napi]
impl KeyTask {
    /// Runs the task as far as core can; the request of an external key, or `null` when done.
    #[napi]
    pub fn step(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
    ) -> napi::Result<Option<ExternalRequest>> {
        let r = self.0.next_request(&keyring.inner).js(&env)?;
        Ok(r.map(|r| ExternalRequest {
            kid: r.kid().to_string(),
            op: r.op().name().to_string(),
            input: r.input().to_vec().into(),
            wrap_alg: r.wrap_alg().name().to_string(),
            info: r.info().to_vec().into(),
        }))
    }

    /// The external wrapper's output for the last request.
    #[napi]
    pub fn answer(&mut self, env: Env, #[napi(ts_arg_type = "Uint8Array")] output: Bytes) -> napi::Result<()> {
        self.0.answer(output.0).js(&env)
    }

    /// The result: an `ObjectKey` (open), `{ envelope, key }` (create) or an `Envelope` (rewrap).
    #[napi]
    pub fn finish(&mut self, env: Env) -> napi::Result<Either3<ObjectKey, CreatedEnvelope, Envelope>> {
        let m = "the task is not finished, or its result was taken";
        let out = self.0.finish().map_err(|e| Failure::Detail(e, m.into())).js(&env)?;
        Ok(match out {
            KeyOutput::Key(inner) => Either3::A(ObjectKey { inner }),
            KeyOutput::Created(e, k) => Either3::B(created(e, k)),
            KeyOutput::Envelope(inner) => Either3::C(Envelope { inner }),
        })
    }
}

pub(crate) fn created(e: isec_core::Envelope, k: CoreKey) -> CreatedEnvelope {
    CreatedEnvelope { envelope: Envelope { inner: e }, key: ObjectKey { inner: k } }
}

/// KEKs by key id, their states and the one active key (SPEC.md §10).
///
/// The JS `Keyring` (lib/index.js) extends this class with `addExternal`, `withExternal`
/// and the async `open`, `createEnvelope`, `rewrap` and `rewrapTo`, which also serve
/// external keys.
#[napi]
pub struct Keyring {
    pub(crate) inner: isec_core::Keyring,
}

getters!(Keyring {
    #[doc = "The minimum format version."] min_version -> u32 = |s| u32::from(s.min_version());
    #[doc = "The active key id, or `null` when no key is active."]
    active_kid -> Option<String> = |s| s.active_kid().ok().map(ToString::to_string);
});

#[napi]
impl Keyring {
    /// An empty keyring.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self { inner: isec_core::Keyring::new() }
    }

    /// Adds a raw 32-byte KEK in `state` (`active`, `decrypt_only`, `disabled`; default
    /// `active`). Adding an active key demotes the previous one to decrypt-only.
    #[napi]
    pub fn add_kek(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string")] kid: Text,
        #[napi(ts_arg_type = "Uint8Array")] kek: Bytes,
        #[napi(ts_arg_type = "'active' | 'decrypt_only' | 'disabled'")] state: Option<Text>,
    ) -> napi::Result<()> {
        let state = state_from(state.as_ref()).js(&env)?;
        let kek =
            Kek::from_slice(kek.0).map_err(|e| Failure::Detail(e, format!("a KEK is 32 bytes, not {}", kek.0.len())));
        self.inner.add_kek(&kid.0, kek.js(&env)?, state).js(&env)
    }

    /// Adds the legacy proxy's key, SHA-256 of its secret string; always decrypt-only.
    #[napi]
    pub fn add_legacy_secret_string(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string")] kid: Text,
        #[napi(ts_arg_type = "string")] secret: Text,
    ) -> napi::Result<()> {
        self.inner.add_legacy_secret_string(&kid.0, &secret.0).js(&env)
    }

    /// Makes the previous-proxy key `kid` the one that opens legacy objects recording no
    /// `isec-kid` (`wrong_key_kind` unless `kid` is a legacy secret, `unknown_kid` if absent).
    #[napi]
    pub fn set_default_legacy(&mut self, env: Env, #[napi(ts_arg_type = "string")] kid: Text) -> napi::Result<()> {
        self.inner.set_default_legacy(&kid.0).js(&env)
    }

    /// Replaces this keyring's keys with those of a keyring file's text (SPEC.md §10.3); the
    /// JS `Keyring.fromFileText` calls it on a new keyring.
    #[napi(js_name = "_loadFileText")]
    pub fn load_file_text(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string | Uint8Array")] text: Either<String, Bytes>,
    ) -> napi::Result<()> {
        let bytes = match &text {
            Either::A(s) => s.as_bytes(),
            Either::B(b) => b.0,
        };
        self.inner = isec_core::Keyring::from_file_text(bytes).js(&env)?;
        Ok(())
    }

    /// The keyring file's text for this keyring, secrets included (`invalid_parameter` when a
    /// key is held by a service, which a file cannot hold).
    #[napi]
    pub fn to_file_text(&self, env: Env) -> napi::Result<String> {
        Ok(self.inner.to_file_text().js(&env)?.to_string())
    }

    /// Adds a public-key recipient by its public key text: it creates envelopes when active
    /// and opens none (`public_key_only`).
    #[napi]
    pub fn add_public_key(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string")] kid: Text,
        #[napi(ts_arg_type = "string")] public_key: Text,
        #[napi(ts_arg_type = "'active' | 'decrypt_only' | 'disabled'")] state: Option<Text>,
    ) -> napi::Result<()> {
        let state = state_from(state.as_ref()).js(&env)?;
        let pk = PublicKey::from_text(&public_key.0).js(&env)?;
        self.inner.add_public_key(&kid.0, pk, state).js(&env)
    }

    /// Adds a public-key recipient with its private key text: it opens and rewraps.
    #[napi]
    pub fn add_private_key(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string")] kid: Text,
        #[napi(ts_arg_type = "string")] private_key: Text,
        #[napi(ts_arg_type = "'active' | 'decrypt_only' | 'disabled'")] state: Option<Text>,
    ) -> napi::Result<()> {
        let state = state_from(state.as_ref()).js(&env)?;
        let sk = PrivateKey::from_text(&private_key.0).js(&env)?;
        self.inner.add_private_key(&kid.0, sk, state).js(&env)
    }

    /// Registers a recipient whose private key a service reached from JS holds (see
    /// `addExternalPrivateKey`): opening stops at a request with `wrapAlg: 'hpke-x25519'`.
    #[napi(js_name = "_registerExternalPrivateKey")]
    pub fn register_external_private_key(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string")] kid: Text,
        #[napi(ts_arg_type = "string")] public_key: Text,
        #[napi(ts_arg_type = "'active' | 'decrypt_only' | 'disabled'")] state: Option<Text>,
    ) -> napi::Result<()> {
        let state = state_from(state.as_ref()).js(&env)?;
        let pk = PublicKey::from_text(&public_key.0).js(&env)?;
        self.inner.add_private_key_deferred(&kid.0, pk, state).js(&env)
    }

    /// Registers an external key whose wrapper lives in JS (see `addExternal`).
    #[napi(js_name = "_registerExternal")]
    pub fn register_external(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string")] kid: Text,
        #[napi(ts_arg_type = "'active' | 'decrypt_only' | 'disabled'")] state: Option<Text>,
    ) -> napi::Result<()> {
        let state = state_from(state.as_ref()).js(&env)?;
        self.inner.add_external_kid(&kid.0, state).js(&env)
    }

    /// Starts opening an envelope (drive it with `withExternal`).
    #[napi]
    pub fn begin_open(
        &self,
        env: Env,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
    ) -> napi::Result<KeyTask> {
        self.inner.begin_open(&envelope.inner).map(KeyTask).js(&env)
    }

    /// Starts creating an envelope under the active key, around a DEK of its own.
    #[napi]
    pub fn begin_create(
        &self,
        env: Env,
        #[napi(ts_arg_type = "EnvelopeOptions | undefined | null")] options: Option<Obj<EnvelopeOptions>>,
    ) -> napi::Result<KeyTask> {
        let r = params(options.as_deref()).and_then(|p| Ok(self.inner.begin_create(p)?));
        r.map(KeyTask).js(&env)
    }

    /// Starts rewrapping an envelope to `kid` (default: the active key, which it must be).
    #[napi]
    pub fn begin_rewrap(
        &self,
        env: Env,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "string | undefined | null")] kid: Option<Text>,
    ) -> napi::Result<KeyTask> {
        let to = kid.as_ref().map(|k| k.0.as_str());
        self.inner.begin_rewrap(&envelope.inner, to).map(KeyTask).js(&env)
    }

    /// Changes a key's state; activating one demotes the previous active key.
    #[napi]
    pub fn set_state(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "string")] kid: Text,
        #[napi(ts_arg_type = "'active' | 'decrypt_only' | 'disabled'")] state: Text,
    ) -> napi::Result<()> {
        let state = state_from(Some(&state)).js(&env)?;
        self.inner.set_state(&kid.0, state).js(&env)
    }

    /// Refuses objects of a format version below `version` (0: legacy proxy, 1: isec v1).
    #[napi]
    pub fn set_min_version(&mut self, env: Env, #[napi(ts_arg_type = "number")] version: U64) -> napi::Result<()> {
        let v = u8::try_from(version.0).map_err(|_| CoreError::InvalidParameter).js(&env)?;
        self.inner.set_min_version(v);
        Ok(())
    }

    /// The keys, in insertion order.
    #[napi]
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.inner.keys().into_iter().map(KeyInfo::from).collect()
    }

    /// A new envelope under the active key (local keys; `createEnvelope` also serves
    /// external ones).
    #[napi]
    pub fn create_envelope_sync(
        &self,
        env: Env,
        #[napi(ts_arg_type = "EnvelopeOptions | undefined | null")] options: Option<Obj<EnvelopeOptions>>,
    ) -> napi::Result<CreatedEnvelope> {
        let r = params(options.as_deref()).and_then(|p| Ok(self.inner.create_envelope(p)?));
        r.map(|(e, k)| created(e, k)).js(&env)
    }

    /// Opens an envelope with the key its kid names.
    #[napi]
    pub fn open_sync(
        &self,
        env: Env,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
    ) -> napi::Result<ObjectKey> {
        self.inner.open(&envelope.inner).map(|inner| ObjectKey { inner }).js(&env)
    }

    /// The same object's envelope under the active key; the body is untouched.
    #[napi]
    pub fn rewrap_sync(
        &self,
        env: Env,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
    ) -> napi::Result<Envelope> {
        self.inner.rewrap(&envelope.inner).map(|inner| Envelope { inner }).js(&env)
    }

    /// `rewrapSync` to a named key, which must be the active key.
    #[napi]
    pub fn rewrap_to_sync(
        &self,
        env: Env,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "string")] kid: Text,
    ) -> napi::Result<Envelope> {
        self.inner.rewrap_to(&envelope.inner, &kid.0).map(|inner| Envelope { inner }).js(&env)
    }
}
