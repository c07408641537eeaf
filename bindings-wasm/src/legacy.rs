//! Reader for the previous proxy's objects (SPEC.md §11): read and migrate only. Its seals
//! run on the wasm backend (core has no external-cipher path for them).

use isec_core::cipher::RustCrypto;
use isec_core::legacy::{
    self as core_legacy, DEFAULT_SIDECAR_CAP, LegacyDecryptor as CoreLegacyDecryptor, LegacyKey as CoreLegacyKey,
    LegacyMetadata as CoreMeta, LegacyObject as CoreObject, LegacySidecar as CoreSidecar,
};
use isec_core::shape::RangePlan;
use isec_core::{Kek, Stream};
use js_sys::Object;
use wasm_bindgen::prelude::*;

use crate::convert::{num, pairs, set, to_range, to_u64};
use crate::error::Failure;
use crate::layout::plan_js;

/// The legacy proxy's user metadata on one object.
#[wasm_bindgen(js_name = LegacyMetadata)]
pub struct LegacyMetadata {
    inner: CoreMeta,
}

#[wasm_bindgen(js_class = LegacyMetadata)]
impl LegacyMetadata {
    /// Parses metadata as S3 returns it (names with or without `x-amz-meta-`).
    #[wasm_bindgen(js_name = fromPairs)]
    pub fn from_pairs(
        #[wasm_bindgen(unchecked_param_type = "Metadata")] metadata: JsValue,
    ) -> Result<LegacyMetadata, Failure> {
        Ok(Self { inner: CoreMeta::from_pairs(&pairs(&metadata, "metadata")?)? })
    }

    /// The bucket key of the sidecar this object needs, or `undefined`.
    #[wasm_bindgen(js_name = sidecarKey)]
    #[must_use]
    pub fn sidecar_key(&self, #[wasm_bindgen(js_name = objectKey)] object_key: &str) -> Option<String> {
        self.inner.sidecar_key(object_key)
    }
}

getters!(LegacyMetadata {
    /// Whether a wrapped DEK or a format tag marks the object as the proxy's.
    isLegacy is_legacy -> bool = |m| m.is_legacy();
    /// The key id, if recorded.
    kid kid -> Option<String> = |m| m.kid().map(ToString::to_string);
    /// The recorded plaintext size.
    plaintextSize plaintext_size -> Option<f64> = |m| m.plaintext_size().map(num);
    /// `single-v3`, `multipart-v3`, or `undefined`.
    format format -> Option<String> = |m| m.format().map(|f| f.as_str().to_string());
});

/// A parsed and checked legacy sidecar.
#[wasm_bindgen(js_name = LegacySidecar)]
pub struct LegacySidecar {
    inner: CoreSidecar,
}

#[wasm_bindgen(js_class = LegacySidecar)]
impl LegacySidecar {
    /// Parses a sidecar object's body (base64 of gzip of JSON), inflating at most
    /// `maxInflated` bytes (default 16 MiB).
    #[wasm_bindgen(js_name = parse)]
    pub fn parse(
        body: &[u8],
        #[wasm_bindgen(js_name = maxInflated)] max_inflated: Option<f64>,
    ) -> Result<LegacySidecar, Failure> {
        let cap = match max_inflated {
            Some(m) => usize::try_from(to_u64(m, "maxInflated", false)?).unwrap_or(usize::MAX),
            None => DEFAULT_SIDECAR_CAP,
        };
        Ok(Self { inner: CoreSidecar::parse(body, cap)? })
    }

    /// Parses and checks the sidecar's JSON.
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(json: &[u8]) -> Result<LegacySidecar, Failure> {
        Ok(Self { inner: CoreSidecar::from_json(json)? })
    }
}

getters!(LegacySidecar {
    /// Number of parts.
    partCount part_count -> u32 = |s| s.part_count();
    /// Total plaintext size.
    totalSize total_size -> f64 = |s| num(s.total_size());
    /// Total ciphertext size.
    ciphertextSize ciphertext_size -> f64 = |s| num(s.ciphertext_size());
    /// The multipart upload id, where recorded.
    uploadId upload_id -> Option<String> = |s| s.upload_id().map(ToString::to_string);
});

/// A legacy object's geometry and key reference, checked against its body's length.
#[wasm_bindgen(js_name = LegacyObject)]
pub struct LegacyObject {
    pub(crate) inner: CoreObject,
}

#[wasm_bindgen(js_class = LegacyObject)]
impl LegacyObject {
    /// Describes an object without a sidecar from its metadata and its stored length.
    #[wasm_bindgen(js_name = create)]
    pub fn create(
        metadata: &LegacyMetadata,
        #[wasm_bindgen(js_name = ciphertextLength)] ciphertext_length: f64,
    ) -> Result<LegacyObject, Failure> {
        let len = to_u64(ciphertext_length, "ciphertextLength", false)?;
        Ok(Self { inner: CoreObject::new(&metadata.inner, None, len)? })
    }

    /// Describes an object from its metadata, its sidecar and its stored length.
    #[wasm_bindgen(js_name = withSidecar)]
    pub fn with_sidecar(
        metadata: &LegacyMetadata,
        sidecar: &LegacySidecar,
        #[wasm_bindgen(js_name = ciphertextLength)] ciphertext_length: f64,
    ) -> Result<LegacyObject, Failure> {
        let len = to_u64(ciphertext_length, "ciphertextLength", false)?;
        Ok(Self { inner: CoreObject::new(&metadata.inner, Some(&sidecar.inner), len)? })
    }

    /// The same object with its multipart upload id, so derived nonces are checked.
    #[wasm_bindgen(js_name = withUploadId)]
    pub fn with_upload_id(&self, upload_id: &str) -> Result<LegacyObject, Failure> {
        Ok(Self { inner: self.inner.clone().with_upload_id(upload_id)? })
    }

    /// The whole seals covering plaintext `[start, end)` (clamped; `end` may be `Infinity`).
    #[wasm_bindgen(js_name = planRange, unchecked_return_type = "LegacyRange")]
    pub fn plan_range(&self, start: f64, end: f64) -> Result<Object, Failure> {
        let (a, b) = to_range(start, end)?;
        let r = self.inner.plan_range(a, b)?;
        let (ct_start, ct_end, skip, len, pt_start) = (r.ct_start, r.ct_end, r.skip, r.len, r.pt_start);
        let o = plan_js(&RangePlan::new(ct_start, ct_end, skip, len, pt_start));
        set(&o, "firstSeal", num(r.first_seal));
        set(&o, "endSeal", num(r.end_seal));
        Ok(o)
    }
}

getters!(LegacyObject {
    /// `single`, `streamed`, `framed` or `staged`.
    layout layout -> String = |o| o.layout().name().to_string();
    /// The key id, where recorded.
    kid kid -> Option<String> = |o| o.kid().map(ToString::to_string);
    /// Plaintext bytes.
    plaintextLength plaintext_length -> f64 = |o| num(o.plaintext_len());
    /// Ciphertext bytes.
    ciphertextLength ciphertext_length -> f64 = |o| num(o.ciphertext_len());
    /// The wrapped DEK (standard base64) the metadata or sidecar named.
    wrappedDekB64 wrapped_dek_b64 -> String = |o| o.wrapped_dek_b64().to_string();
    /// Number of seals.
    sealCount seal_count -> f64 = |o| num(o.seal_count());
});

/// A legacy object's DEK.
#[wasm_bindgen(js_name = LegacyKey)]
pub struct LegacyKey {
    pub(crate) inner: CoreLegacyKey,
}

#[wasm_bindgen(js_class = LegacyKey)]
impl LegacyKey {
    /// Unwraps the DEK the proxy stored (standard base64) with a raw 32-byte KEK.
    #[wasm_bindgen(js_name = open)]
    pub fn open(kek: &[u8], #[wasm_bindgen(js_name = wrappedB64)] wrapped_b64: &str) -> Result<LegacyKey, Failure> {
        let kek = Kek::from_slice(kek).map_err(|e| Failure::Detail(e, "a KEK is 32 bytes".into()))?;
        Ok(Self { inner: CoreLegacyKey::open(&kek, wrapped_b64)? })
    }

    /// Unwraps the DEK with the proxy's KEK derived from its secret string.
    #[wasm_bindgen(js_name = fromSecretString)]
    pub fn from_secret_string(
        secret: &str,
        #[wasm_bindgen(js_name = wrappedB64)] wrapped_b64: &str,
    ) -> Result<LegacyKey, Failure> {
        Ok(Self { inner: CoreLegacyKey::open(&Kek::legacy_from_secret_string(secret), wrapped_b64)? })
    }
}

/// Streaming decryptor of a legacy object or a planned range of one (wasm backend,
/// synchronous).
#[wasm_bindgen(js_name = LegacyDecryptor)]
pub struct LegacyDecryptor {
    /// Locked by core after an error or `final`.
    inner: CoreLegacyDecryptor<RustCrypto>,
}

#[wasm_bindgen(js_class = LegacyDecryptor)]
impl LegacyDecryptor {
    /// Decrypts the whole object from its first byte.
    #[wasm_bindgen(constructor)]
    pub fn new(key: &LegacyKey, object: &LegacyObject) -> Result<LegacyDecryptor, Failure> {
        Ok(Self { inner: CoreLegacyDecryptor::new(&key.inner, &object.inner)? })
    }

    /// Decrypts the bytes `object.planRange(start, end)` names; releases `[start, end)`.
    #[wasm_bindgen(js_name = forRange)]
    pub fn for_range(key: &LegacyKey, object: &LegacyObject, start: f64, end: f64) -> Result<LegacyDecryptor, Failure> {
        let (a, b) = to_range(start, end)?;
        let plan = object.inner.plan_range(a, b)?;
        Ok(Self { inner: CoreLegacyDecryptor::for_range(&key.inner, &object.inner, &plan)? })
    }

    /// Feeds ciphertext; returns the plaintext of every seal completed and verified.
    #[wasm_bindgen(js_name = update)]
    pub fn update(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Failure> {
        Ok(self.inner.update_vec(chunk)?)
    }

    /// Ends the input; reports missing seals.
    #[wasm_bindgen(js_name = final)]
    pub fn final_(&mut self) -> Result<Vec<u8>, Failure> {
        Ok(self.inner.finish_vec()?)
    }
}

getters!(LegacyDecryptor {
    /// Plaintext bytes released so far.
    released released -> f64 = |d| num(d.released());
});

/// Decrypts a whole legacy object held in memory (all or nothing).
#[wasm_bindgen(js_name = legacyDecrypt)]
pub fn legacy_decrypt(key: &LegacyKey, object: &LegacyObject, ciphertext: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(core_legacy::decrypt::<RustCrypto>(&key.inner, &object.inner, ciphertext)?)
}

/// Decrypts plaintext `[start, end)` from `fetched`, the bytes `object.planRange(start,
/// end)` said to fetch.
#[wasm_bindgen(js_name = legacyDecryptRange)]
pub fn legacy_decrypt_range(
    key: &LegacyKey,
    object: &LegacyObject,
    start: f64,
    end: f64,
    fetched: &[u8],
) -> Result<Vec<u8>, Failure> {
    let (a, b) = to_range(start, end)?;
    let plan = object.inner.plan_range(a, b)?;
    Ok(core_legacy::decrypt_range::<RustCrypto>(&key.inner, &object.inner, &plan, fetched)?)
}
