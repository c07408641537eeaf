//! One-shot encryption and decryption of bytes in memory, on either backend: core's
//! `oneshot` functions on the wasm backend, the WebCrypto windows over each segment core's
//! shape names on the other.

use isec_core::cipher::RustCrypto;
use isec_core::shape::{Shape as CoreShape, segment_ct_len};
use isec_core::{Error as CoreError, Layout, ObjectKey as CoreKey, SegmentTable, oneshot};
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::Backend;
use crate::context::Window;
use crate::convert::{settle, to_part_number, to_range, to_uint8, u32_of};
use crate::error::{Failure, Fallible, to_js};
use crate::keys::ObjectKey;
use crate::layout::Shape;
use crate::webcrypto::Sink;
use crate::window::{WebDec, WebEnc};

/// A whole single- or parts-layout object on WebCrypto: each segment of core's shape through
/// its own encryptor, written straight where the shape puts it (no intermediate copy).
async fn web_encrypt(key: CoreKey, pt: Uint8Array) -> Fallible<JsValue> {
    let shape = CoreShape::from_plaintext_len(key.header(), u64::from(pt.length()))?;
    let out = Uint8Array::new_with_length(u32_of(shape.ciphertext_len())?);
    let parts = !matches!(key.header().layout, Layout::Single);
    for ordinal in 0..shape.segment_count() {
        let seg = shape.segment(ordinal).ok_or(Failure::Core(CoreError::InvalidState))?;
        let part = parts.then_some((seg.number, seg.is_last));
        let body = pt.subarray(u32_of(seg.pt_start)?, u32_of(seg.pt_start + seg.pt_len)?);
        let mut sink = Sink::region(&out, u32_of(seg.ct_start)?);
        WebEnc::new(&key, part, None)?.run(&body, &mut sink).await?;
        if sink.len() != seg.ct_len {
            return Err(Failure::Core(CoreError::InvalidState));
        }
    }
    Ok(out.into())
}

/// One segment on WebCrypto, into an array of its own.
async fn web_encrypt_segment(w: WebEnc, frame_size: u64, pt: Uint8Array) -> Fallible<JsValue> {
    let mut sink = Sink::new(false, u32_of(segment_ct_len(pt.length().into(), frame_size)?)? as usize)?;
    w.run(&pt, &mut sink).await?;
    Ok(sink.into_js())
}

/// Runs a whole ciphertext through `web` (all or nothing).
async fn web_decrypt(mut web: WebDec, ct: Uint8Array) -> Fallible<JsValue> {
    let mut sink = Sink::new(false, ct.length() as usize)?;
    let r = async {
        web.feed(std::slice::from_ref(&ct), false, &mut sink).await?;
        web.end(&mut sink).await
    }
    .await;
    if r.is_err() {
        sink.wipe();
    }
    r.map(|()| sink.into_js())
}

/// `wasm` on the wasm backend, `web` (a future) on WebCrypto, as the options choose.
fn on_backend<F: Future<Output = Fallible<JsValue>> + 'static>(
    options: Option<&JsValue>,
    wasm: impl FnOnce() -> Fallible<Vec<u8>>,
    web: impl FnOnce() -> Fallible<F>,
) -> Promise {
    match Backend::from_options(options) {
        Err(e) => settle(Err(e)),
        Ok(Backend::Wasm) => settle(wasm().map(|v| to_uint8(v).into())),
        Ok(Backend::WebCrypto) => match web() {
            Err(e) => settle(Err(e)),
            Ok(f) => future_to_promise(async move { f.await.map_err(|e| to_js(&e)) }),
        },
    }
}

/// Encrypts a whole single- or parts-layout object (fresh nonce prefixes).
#[wasm_bindgen(js_name = encrypt, unchecked_return_type = "Promise<Uint8Array>")]
pub fn encrypt(
    key: &ObjectKey,
    plaintext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    on_backend(
        options.as_ref(),
        || encrypt_sync(key, &plaintext.to_vec()),
        || Ok(web_encrypt(key.inner.clone(), plaintext.clone())),
    )
}

/// Encrypts part `partNumber` (1..=10000) of a parts- or table-layout object.
#[wasm_bindgen(js_name = encryptPart, unchecked_return_type = "Promise<Uint8Array>")]
pub fn encrypt_part(
    key: &ObjectKey,
    #[wasm_bindgen(js_name = partNumber)] part_number: f64,
    #[wasm_bindgen(js_name = isLast)] is_last: bool,
    plaintext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    let n = match to_part_number(part_number) {
        Ok(n) => n,
        Err(e) => return settle(Err(e)),
    };
    let k = &key.inner;
    on_backend(
        options.as_ref(),
        || Ok(oneshot::encrypt_part::<RustCrypto>(k, n, is_last, &plaintext.to_vec())?),
        || {
            Ok(web_encrypt_segment(
                WebEnc::new(k, Some((n, is_last)), None)?,
                k.header().frame_size(),
                plaintext.clone(),
            ))
        },
    )
}

/// `encrypt` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = encryptSync)]
pub fn encrypt_sync(key: &ObjectKey, plaintext: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::encrypt::<RustCrypto>(&key.inner, plaintext)?)
}

/// `encryptPart` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = encryptPartSync)]
pub fn encrypt_part_sync(
    key: &ObjectKey,
    #[wasm_bindgen(js_name = partNumber)] part_number: f64,
    #[wasm_bindgen(js_name = isLast)] is_last: bool,
    plaintext: &[u8],
) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::encrypt_part::<RustCrypto>(&key.inner, to_part_number(part_number)?, is_last, plaintext)?)
}

/// Decrypts a whole single- or parts-layout object: all or nothing.
#[wasm_bindgen(js_name = decrypt, unchecked_return_type = "Promise<Uint8Array>")]
pub fn decrypt(
    key: &ObjectKey,
    ciphertext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    on_backend(
        options.as_ref(),
        || decrypt_sync(key, &ciphertext.to_vec()),
        || Ok(web_decrypt(WebDec::open(&key.inner)?, ciphertext.clone())),
    )
}

/// `decrypt` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = decryptSync)]
pub fn decrypt_sync(key: &ObjectKey, ciphertext: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::decrypt::<RustCrypto>(&key.inner, ciphertext)?)
}

/// Decrypts a whole table-layout object with its encoded segment table (all or nothing).
#[wasm_bindgen(js_name = decryptWithTable, unchecked_return_type = "Promise<Uint8Array>")]
pub fn decrypt_with_table(
    key: &ObjectKey,
    table: &[u8],
    ciphertext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    let k = &key.inner;
    on_backend(
        options.as_ref(),
        || decrypt_with_table_sync(key, table, &ciphertext.to_vec()),
        || {
            let shape = CoreShape::from_table(k.header(), SegmentTable::decode(table, k)?, ciphertext.length().into())?;
            Ok(web_decrypt(WebDec::with_shape(k, shape)?, ciphertext.clone()))
        },
    )
}

/// `decryptWithTable` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = decryptWithTableSync)]
pub fn decrypt_with_table_sync(key: &ObjectKey, table: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::decrypt_with_table::<RustCrypto>(&key.inner, table, ciphertext)?)
}

/// The WebCrypto path's check of what core's `decrypt_fetched` checks on the wasm backend:
/// the fetched bytes are exactly what `shape.mapRange(start, end)` named.
fn check_fetched(shape: &CoreShape, a: u64, b: u64, fetched: u32) -> Fallible<()> {
    let plan = shape.map_range(a, b);
    let named = plan.ct_end - plan.ct_start;
    if u64::from(fetched) != named {
        return Err(Failure::Detail(
            CoreError::Truncated,
            format!("fetched {fetched} bytes; the range plan names {named}"),
        ));
    }
    Ok(())
}

/// Decrypts the plaintext range `[start, end)` (`end` may be `Infinity`) from `fetched`, the
/// ciphertext bytes `shape.mapRange(start, end)` said to fetch. All or nothing.
#[wasm_bindgen(js_name = decryptRange, unchecked_return_type = "Promise<Uint8Array>")]
pub fn decrypt_range(
    key: &ObjectKey,
    shape: &Shape,
    start: f64,
    end: f64,
    fetched: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    let (k, s) = (&key.inner, &shape.inner);
    let (a, b) = match to_range(start, end) {
        Ok(x) => x,
        Err(e) => return settle(Err(e)),
    };
    on_backend(
        options.as_ref(),
        || Ok(oneshot::decrypt_fetched::<RustCrypto>(k, s.clone(), a, b, &fetched.to_vec())?),
        || {
            check_fetched(s, a, b, fetched.length())?;
            Ok(web_decrypt(WebDec::for_range(k, s, a, b)?, fetched.clone()))
        },
    )
}

/// `decryptRange` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = decryptRangeSync)]
pub fn decrypt_range_sync(
    key: &ObjectKey,
    shape: &Shape,
    start: f64,
    end: f64,
    fetched: &[u8],
) -> Result<Vec<u8>, Failure> {
    let (a, b) = to_range(start, end)?;
    Ok(oneshot::decrypt_fetched::<RustCrypto>(&key.inner, shape.inner.clone(), a, b, fetched)?)
}
