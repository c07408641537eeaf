//! The copy decision, metadata classification and nonce helpers: conversions around core's
//! pure functions.

use isec_core::Error as CoreError;
use isec_core::copy::{self, CopyLimits, CopyRequest, Directive, decide};
use isec_core::metadata::{ObjectFormat, classify};
use isec_core::nonce::{FramePosition, Nonce};
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

use crate::convert::{get, num, opt_bool, opt_str, opt_u64, pairs, pairs_to_js, set};
use crate::error::{Failure, Fallible};
use crate::keys::{KeyTask, Keyring};
use crate::layout::Shape;

/// Classifies an object from its user metadata (and whether the legacy proxy's
/// object-keyed sidecar exists): `{ format, kid?, error? }` with `format` one of
/// `plaintext`, `isec`, `legacy`, `unreadable` (SPEC.md §11.1).
#[wasm_bindgen(js_name = classifyMetadata, unchecked_return_type = "Classification")]
pub fn classify_metadata(
    #[wasm_bindgen(unchecked_param_type = "Metadata")] metadata: JsValue,
    #[wasm_bindgen(js_name = legacySidecar)] legacy_sidecar: Option<bool>,
) -> Result<Object, Failure> {
    let p = pairs(&metadata, "metadata")?;
    let view: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let f = classify(&view, legacy_sidecar.unwrap_or(false));
    let o = Object::new();
    set(&o, "format", f.name());
    set(&o, "kid", f.kid().map(ToString::to_string));
    if let ObjectFormat::Unreadable(e) = f {
        set(&o, "error", e.code());
    }
    Ok(o)
}

fn limits_from(v: &JsValue) -> Fallible<CopyLimits> {
    let d = CopyLimits::default();
    let invalid = |_| Failure::Core(CoreError::InvalidParameter);
    Ok(d.with_single_copy_max(opt_u64(v, "singleCopyMax")?.unwrap_or(d.single_copy_max))
        .with_part_min(opt_u64(v, "partMin")?.unwrap_or(d.part_min))
        .with_part_max(opt_u64(v, "partMax")?.unwrap_or(d.part_max))
        .with_max_parts(opt_u64(v, "maxParts")?.map_or(Ok(d.max_parts), u32::try_from).map_err(invalid)?)
        .with_metadata_max(opt_u64(v, "metadataMax")?.map_or(Ok(d.metadata_max), usize::try_from).map_err(invalid)?))
}

/// The copy decision without a keyring (the JS `decideCopy` picks the variant: wasm-bindgen
/// cannot take an optional borrowed class).
#[wasm_bindgen(js_name = _decideCopy, skip_typescript)]
pub fn decide_copy_plain(request: JsValue) -> Result<Object, Failure> {
    decide_copy(&request, None, None)
}

/// The copy decision with a keyring.
#[wasm_bindgen(js_name = _decideCopyKeyring, skip_typescript)]
pub fn decide_copy_keyring(request: JsValue, keyring: &Keyring) -> Result<Object, Failure> {
    decide_copy(&request, Some(keyring), None)
}

/// The copy decision with the source's shape.
#[wasm_bindgen(js_name = _decideCopyShape, skip_typescript)]
pub fn decide_copy_shape(request: JsValue, shape: &Shape) -> Result<Object, Failure> {
    decide_copy(&request, None, Some(shape))
}

/// The copy decision with a keyring and the source's shape.
#[wasm_bindgen(js_name = _decideCopyKeyringShape, skip_typescript)]
pub fn decide_copy_keyring_shape(request: JsValue, keyring: &Keyring, shape: &Shape) -> Result<Object, Failure> {
    decide_copy(&request, Some(keyring), Some(shape))
}

/// The rewrap `decideCopy` makes for `request` (a key change of an isec object), as a task
/// to drive with `keyring.withExternal` before deciding (pass its result as
/// `request.rewrapped`); `undefined` when there is none.
#[wasm_bindgen(js_name = beginCopyRewrap)]
pub fn begin_copy_rewrap(
    #[wasm_bindgen(unchecked_param_type = "CopyRequestInput")] request: JsValue,
    keyring: &Keyring,
) -> Result<Option<KeyTask>, Failure> {
    with_request(&request, false, None, |req| {
        let Some((env, to)) = copy::pending_rewrap(req) else { return Ok(None) };
        Ok(Some(KeyTask(keyring.inner.borrow().begin_rewrap(&env, Some(to))?)))
    })
}

/// Runs `f` on the `CopyRequestInput` as core's request: one reading of its fields for both
/// `beginCopyRewrap` and `decideCopy`, so the two see the same request. `sourceSize` is only
/// required by the decision (`size_required`): the rewrap does not depend on it.
fn with_request<T>(
    request: &JsValue,
    size_required: bool,
    source_shape: Option<&Shape>,
    f: impl FnOnce(&CopyRequest<'_>) -> Fallible<T>,
) -> Fallible<T> {
    if !request.is_object() {
        return Err(Failure::Type("request must be an object".into()));
    }
    let meta = pairs(&get(request, "sourceMetadata"), "sourceMetadata")?;
    let new_meta = pairs(&get(request, "newMetadata"), "newMetadata")?;
    let meta_v: Vec<(&str, &str)> = meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let new_v: Vec<(&str, &str)> = new_meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let size = match opt_u64(request, "sourceSize")? {
        None if size_required => return Err(Failure::Type("sourceSize is required".into())),
        size => size.unwrap_or(0),
    };
    let target = opt_str(request, "targetKid")?;
    let mut req = CopyRequest::new(&meta_v, size);
    req.source_sidecar = opt_bool(request, "sourceSidecar")?.unwrap_or(false);
    req.source_shape = source_shape.map(|s| &s.inner);
    req.directive = match opt_str(request, "directive")?.as_deref() {
        None | Some("COPY") => Directive::Copy,
        Some("REPLACE") => Directive::Replace,
        Some(other) => {
            return Err(Failure::Detail(CoreError::InvalidParameter, format!("directive {other:?}: COPY or REPLACE")));
        }
    };
    req.new_metadata = &new_v;
    req.target_kid = target.as_deref();
    req.rotate_dek = opt_bool(request, "rotateDek")?.unwrap_or(false);
    req.migrate_legacy = opt_bool(request, "migrateLegacy")?.unwrap_or(false);
    req.require_encryption = opt_bool(request, "requireEncryption")?.unwrap_or(false);
    req.limits = limits_from(&get(request, "limits"))?;
    let rewrapped = opt_str(request, "rewrapped")?.map(|t| isec_core::Envelope::decode_text(&t)).transpose()?;
    req.rewrapped = rewrapped.as_ref();
    f(&req)
}

/// Decides how to copy an object as cheaply as the format allows (SPEC.md §12); reads no
/// object bytes. `keyring` is needed when a key must change or the source re-encrypted.
fn decide_copy(request: &JsValue, keyring: Option<&Keyring>, source_shape: Option<&Shape>) -> Result<Object, Failure> {
    let ring = keyring.map(|k| k.inner.borrow());
    let p = with_request(request, true, source_shape, |req| Ok(decide(req, ring.as_deref())?))?;
    let o = Object::new();
    set(&o, "action", p.action.name());
    set(&o, "metadata", p.metadata.as_deref().map_or(JsValue::NULL, |m| pairs_to_js(m).into()));
    let ranges: Array =
        p.ranges.iter().map(|(a, b)| JsValue::from(Array::of2(&num(*a).into(), &num(*b).into()))).collect();
    set(&o, "ranges", ranges);
    set(&o, "copySidecar", p.copy_sidecar);
    set(&o, "rewrapped", p.rewrapped);
    set(&o, "reason", p.reason.map(|r| r.code()));
    set(&o, "requests", num(p.requests));
    set(&o, "clientBytes", num(p.client_bytes));
    Ok(o)
}

/// Parses a 12-byte frame nonce (SPEC.md §5.1): `{ prefix, index, segmentEnd, objectEnd }`.
#[wasm_bindgen(js_name = parseNonce, unchecked_return_type = "NonceFields")]
pub fn parse_nonce(nonce: &[u8]) -> Result<Object, Failure> {
    let n = Nonce::from_bytes(nonce.try_into().map_err(|_| Failure::Type("a nonce is 12 bytes".into()))?);
    let pos = n.position()?;
    let o = Object::new();
    set(&o, "prefix", js_sys::Uint8Array::from(&n.prefix().as_bytes()[..]));
    set(&o, "index", pos.index);
    set(&o, "segmentEnd", pos.segment_end);
    set(&o, "objectEnd", pos.object_end);
    Ok(o)
}

/// Builds the nonce of frame `index` of a segment encryption with `prefix` (7 bytes).
#[wasm_bindgen(js_name = buildNonce)]
pub fn build_nonce(
    prefix: &[u8],
    index: u32,
    #[wasm_bindgen(js_name = segmentEnd)] segment_end: bool,
    #[wasm_bindgen(js_name = objectEnd)] object_end: bool,
) -> Result<Vec<u8>, Failure> {
    let p = prefix.try_into().map_err(|_| Failure::Type("a nonce prefix is 7 bytes".into()))?;
    Ok(Nonce::new(&p, FramePosition { index, segment_end, object_end }).as_bytes().to_vec())
}
