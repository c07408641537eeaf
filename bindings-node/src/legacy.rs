//! The legacy proxy's objects (SPEC.md §11): their metadata, sidecars, geometry and keys,
//! whole and ranged decryption, and the streaming `LegacyDecryptor`.

use std::sync::Arc;

use isec_core::Kek;
use isec_core::legacy::{self, LegacyMetadata as CoreMeta, LegacyObject as CoreObject, LegacySidecar as CoreSidecar};
use napi::Env;
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;

use crate::convert::{Bytes, BytesMut, OwnedBytes, Ref, Text, U64};
use crate::decisions::Pairs;
use crate::error::Fallible;
use crate::keys::Keyring;
use crate::oneshot::sync_and_async;
use crate::pool::{Cancel, CancelToken, IntoWork, Work, token_of};
use crate::stream::{Ctx, stream_class};
use crate::{C, Js, f, getters, made_by};

/// The legacy proxy's user metadata on one object.
#[napi]
pub struct LegacyMetadata {
    inner: CoreMeta,
}

made_by! { LegacyMetadata, "Not constructible with `new`: made by `LegacyMetadata.fromPairs`." }

getters!(LegacyMetadata {
    #[doc = "Whether a wrapped DEK or a format tag marks the object as the proxy's."]
    is_legacy -> bool = |s| s.is_legacy();
    kid -> Option<String> = |s| s.kid().map(ToString::to_string);
    plaintext_size -> Option<f64> = |s| s.plaintext_size().map(f);
    client_etag -> Option<String> = |s| s.client_etag().map(ToString::to_string);
    #[doc = "`single-v3`, `multipart-v3`, or `null`."]
    format -> Option<String> = |s| s.format().map(|f| f.as_str().to_string());
    #[doc = "The wrapped DEK (standard base64), when in metadata."]
    wrapped_dek_b64 -> Option<String> = |s| s.wrapped_dek_b64().map(ToString::to_string);
});

#[napi]
impl LegacyMetadata {
    /// Parses metadata as S3 returns it (names with or without `x-amz-meta-`).
    #[napi(factory)]
    pub fn from_pairs(
        env: Env,
        #[napi(ts_arg_type = "Array<[string, string]> | Record<string, string>")] metadata: Pairs,
    ) -> napi::Result<Self> {
        CoreMeta::from_pairs(&metadata.0).map(|inner| Self { inner }).js(&env)
    }

    /// The bucket key of the sidecar this object needs, or `null`.
    #[napi]
    pub fn sidecar_key(&self, #[napi(ts_arg_type = "string")] object_key: Text) -> Option<String> {
        self.inner.sidecar_key(&object_key.0)
    }
}

/// A parsed and checked legacy sidecar.
#[napi]
pub struct LegacySidecar {
    inner: CoreSidecar,
}

made_by! { LegacySidecar, "Not constructible with `new`: made by `LegacySidecar.parse` or `LegacySidecar.fromJson`." }

getters!(LegacySidecar {
    version -> u32 = |s| s.version();
    part_count -> u32 = |s| s.part_count();
    total_size -> f64 = |s| f(s.total_size());
    ciphertext_size -> f64 = |s| f(s.ciphertext_size());
    kid -> Option<String> = |s| s.kid().map(ToString::to_string);
    upload_id -> Option<String> = |s| s.upload_id().map(ToString::to_string);
    generation -> Option<String> = |s| s.generation().map(ToString::to_string);
});

#[napi]
impl LegacySidecar {
    /// Parses a sidecar object's body (base64 of gzip of JSON), inflating at most
    /// `maxInflated` bytes (default 16 MiB).
    #[napi(factory)]
    pub fn parse(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] body: Bytes,
        #[napi(ts_arg_type = "number")] max_inflated: Option<U64>,
    ) -> napi::Result<Self> {
        let r = max_inflated
            .map_or(Ok(legacy::DEFAULT_SIDECAR_CAP), U64::usize)
            .and_then(|cap| Ok(CoreSidecar::parse(body.0, cap)?));
        r.map(|inner| Self { inner }).js(&env)
    }

    /// Parses and checks the sidecar's JSON.
    #[napi(factory)]
    pub fn from_json(env: Env, #[napi(ts_arg_type = "Uint8Array")] json: Bytes) -> napi::Result<Self> {
        CoreSidecar::from_json(json.0).map(|inner| Self { inner }).js(&env)
    }
}

/// Seal range plan of a legacy object.
#[napi(object, object_from_js = false)]
pub struct LegacyRange {
    pub ct_start: f64,
    pub ct_end: f64,
    pub skip: f64,
    pub len: f64,
    pub pt_start: f64,
    pub first_seal: f64,
    pub end_seal: f64,
    pub http_range: Option<String>,
}

/// A legacy object's geometry and key reference, checked against its body's length.
#[napi]
pub struct LegacyObject {
    pub(crate) inner: CoreObject,
}

made_by! { LegacyObject, "Not constructible with `new`: made by `LegacyObject.create`." }

getters!(LegacyObject {
    #[doc = "`single`, `streamed`, `framed` or `staged`."] layout -> String = |s| s.layout().name().to_string();
    kid -> Option<String> = |s| s.kid().map(ToString::to_string);
    plaintext_length -> f64 = |s| f(s.plaintext_len());
    ciphertext_length -> f64 = |s| f(s.ciphertext_len());
    #[doc = "The wrapped DEK (standard base64) the metadata or sidecar named."]
    wrapped_dek_b64 -> String = |s| s.wrapped_dek_b64().to_string();
    seal_count -> f64 = |s| f(s.seal_count());
});

#[napi]
impl LegacyObject {
    /// Describes an object from its metadata, its sidecar (if any) and its stored length.
    #[napi(factory)]
    pub fn create(
        env: Env,
        #[napi(ts_arg_type = "LegacyMetadata")] metadata: Ref<LegacyMetadata>,
        #[napi(ts_arg_type = "LegacySidecar | null")] sidecar: Option<Ref<LegacySidecar>>,
        #[napi(ts_arg_type = "number")] ciphertext_length: U64,
    ) -> napi::Result<Self> {
        CoreObject::new(&metadata.inner, sidecar.as_ref().map(|s| &s.inner), ciphertext_length.0)
            .map(|inner| Self { inner })
            .js(&env)
    }

    /// The same object with its multipart upload id, so derived nonces are checked.
    #[napi]
    pub fn with_upload_id(&self, env: Env, #[napi(ts_arg_type = "string")] upload_id: Text) -> napi::Result<Self> {
        self.inner.clone().with_upload_id(&upload_id.0).map(|inner| Self { inner }).js(&env)
    }

    /// The whole seals covering plaintext `[start, end)` (clamped).
    #[napi]
    pub fn plan_range(
        &self,
        env: Env,
        #[napi(ts_arg_type = "number")] start: U64,
        #[napi(ts_arg_type = "number")] end: U64,
    ) -> napi::Result<LegacyRange> {
        let r = self.inner.plan_range(start.0, end.0).js(&env)?;
        Ok(LegacyRange {
            ct_start: f(r.ct_start),
            ct_end: f(r.ct_end),
            skip: f(r.skip),
            len: f(r.len),
            pt_start: f(r.pt_start),
            first_seal: f(r.first_seal),
            end_seal: f(r.end_seal),
            http_range: r.http_range(),
        })
    }
}

/// A legacy object's DEK.
#[napi]
pub struct LegacyKey {
    inner: Arc<legacy::LegacyKey>,
}

made_by! {
    LegacyKey,
    "Not constructible with `new`: made by `LegacyKey.open`, `LegacyKey.fromSecretString` or `Keyring.legacyKey`."
}

#[napi]
impl LegacyKey {
    /// Unwraps the DEK the proxy stored (standard base64) with a raw 32-byte KEK.
    #[napi(factory)]
    pub fn open(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] kek: Bytes,
        #[napi(ts_arg_type = "string")] wrapped_b64: Text,
    ) -> napi::Result<Self> {
        Kek::from_slice(kek.0)
            .and_then(|k| legacy::LegacyKey::open(&k, &wrapped_b64.0))
            .map(|k| Self { inner: Arc::new(k) })
            .js(&env)
    }

    /// Unwraps the DEK with the proxy's KEK derived from its secret string.
    #[napi(factory)]
    pub fn from_secret_string(
        env: Env,
        #[napi(ts_arg_type = "string")] secret: Text,
        #[napi(ts_arg_type = "string")] wrapped_b64: Text,
    ) -> napi::Result<Self> {
        legacy::LegacyKey::open(&Kek::legacy_from_secret_string(&secret.0), &wrapped_b64.0)
            .map(|k| Self { inner: Arc::new(k) })
            .js(&env)
    }
}

#[napi]
impl Keyring {
    /// The DEK of a legacy object, with the keyring's legacy key for `kid`, else the
    /// object's own kid, else the default set with `setDefaultLegacy`, after the version and
    /// state checks.
    #[napi]
    pub fn legacy_key(
        &self,
        env: Env,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "string")] kid: Option<Text>,
    ) -> napi::Result<LegacyKey> {
        let r = self.inner.open_legacy(&object.inner, kid.as_ref().map(|k| k.0.as_str()));
        r.map(|k| LegacyKey { inner: Arc::new(k) }).js(&env)
    }
}

fn decrypt(key: &legacy::LegacyKey, object: &CoreObject, ct: &[u8], _: &Cancel) -> Fallible<Vec<u8>> {
    Ok(legacy::decrypt::<C>(key, object, ct)?)
}

sync_and_async! {
    #[doc = "Decrypts a whole legacy object held in memory (all or nothing)."] legacy_decrypt_sync,
    #[doc = "`legacyDecryptSync` on the libuv pool."] legacy_decrypt_async => decrypt,
        (key: LegacyKey "LegacyKey", object: LegacyObject "LegacyObject"), (), (ciphertext)
}

/// Decrypts plaintext `[start, end)` from `fetched`, the bytes `object.planRange(start,
/// end)` said to fetch.
#[napi]
pub fn legacy_decrypt_range_sync(
    env: Env,
    #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
    #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
    #[napi(ts_arg_type = "number")] start: U64,
    #[napi(ts_arg_type = "number")] end: U64,
    #[napi(ts_arg_type = "Uint8Array")] fetched: Bytes,
) -> napi::Result<Buffer> {
    object
        .inner
        .plan_range(start.0, end.0)
        .and_then(|plan| legacy::decrypt_range::<C>(&key.inner, &object.inner, &plan, fetched.0))
        .map(Buffer::from)
        .js(&env)
}

/// Streaming decryptor of a legacy object or a planned range of one.
#[napi]
pub struct LegacyDecryptor {
    ctx: Ctx<legacy::LegacyDecryptor<C>>,
}

stream_class! { LegacyDecryptor, #[doc = "Plaintext bytes released so far."] released }

#[napi]
impl LegacyDecryptor {
    /// Decrypts the whole object from its first byte.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
    ) -> napi::Result<Self> {
        legacy::LegacyDecryptor::<C>::new(&key.inner, &object.inner).map(|d| Self { ctx: Ctx::new(d) }).js(&env)
    }

    /// Decrypts the bytes `object.planRange(start, end)` names; releases `[start, end)`.
    #[napi(factory)]
    pub fn for_range(
        env: Env,
        #[napi(ts_arg_type = "LegacyKey")] key: Ref<LegacyKey>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "number")] start: U64,
        #[napi(ts_arg_type = "number")] end: U64,
    ) -> napi::Result<Self> {
        let d = object.inner.plan_range(start.0, end.0);
        let d = d.and_then(|plan| legacy::LegacyDecryptor::<C>::for_range(&key.inner, &object.inner, &plan));
        d.map(|d| Self { ctx: Ctx::new(d) }).js(&env)
    }
}
