//! Shapes and range mapping, segment tables, the copy decision, metadata classification and
//! nonce helpers: conversions around core's pure functions.

use isec_core::copy::{self, CopyLimits, CopyRequest, Directive, decide};
use isec_core::layout::{RangePlan, Shape as CoreShape};
use isec_core::metadata::{ObjectFormat, classify};
use isec_core::nonce::{FramePosition, Nonce};
use isec_core::{Error as CoreError, SegmentTable as CoreTable};
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

use crate::error::{Failure, Fallible};
use crate::keys::{Envelope, KeyTask, Keyring, ObjectKey};
use crate::{get, num, opt_bool, opt_str, opt_u64, pairs, pairs_to_js, set, to_u64};

/// An object's geometry once its size is known (SPEC.md §6-7).
#[wasm_bindgen(js_name = Shape)]
pub struct Shape {
    pub(crate) inner: CoreShape,
}

pub(crate) fn plan_js(p: &RangePlan) -> Object {
    let o = Object::new();
    set(&o, "ctStart", num(p.ct_start));
    set(&o, "ctEnd", num(p.ct_end));
    set(&o, "skip", num(p.skip));
    set(&o, "len", num(p.len));
    set(&o, "ptStart", num(p.pt_start));
    set(&o, "httpRange", p.http_range());
    o
}

#[wasm_bindgen(js_class = Shape)]
impl Shape {
    /// The shape of a single- or parts-layout object from its envelope and stored
    /// (ciphertext) length, e.g. a HEAD's `Content-Length`.
    #[wasm_bindgen(js_name = fromCiphertextLength)]
    pub fn from_ciphertext_length(
        envelope: &Envelope,
        #[wasm_bindgen(js_name = ciphertextLength)] ciphertext_length: f64,
    ) -> Result<Shape, Failure> {
        let len = to_u64(ciphertext_length, "ciphertextLength", false)?;
        Ok(Self { inner: CoreShape::from_ciphertext_len(envelope.inner.header(), len)? })
    }

    /// The shape an encryptor will produce for `plaintextLength` bytes.
    #[wasm_bindgen(js_name = forPlaintext)]
    pub fn for_plaintext(
        envelope: &Envelope,
        #[wasm_bindgen(js_name = plaintextLength)] plaintext_length: f64,
    ) -> Result<Shape, Failure> {
        let len = to_u64(plaintext_length, "plaintextLength", false)?;
        Ok(Self { inner: CoreShape::from_plaintext_len(envelope.inner.header(), len)? })
    }

    /// The shape of a table-layout object from its encoded table (verified with `key`).
    #[wasm_bindgen(js_name = fromTable)]
    pub fn from_table(
        key: &ObjectKey,
        table: &[u8],
        #[wasm_bindgen(js_name = ciphertextLength)] ciphertext_length: f64,
    ) -> Result<Shape, Failure> {
        let len = to_u64(ciphertext_length, "ciphertextLength", false)?;
        let t = CoreTable::decode(table, &key.inner)?;
        Ok(Self { inner: CoreShape::from_table(key.inner.header(), t, len)? })
    }

    /// Maps the plaintext range `[start, end)` (clamped to the object; `end` may be
    /// `Infinity`) to the ciphertext to fetch.
    #[wasm_bindgen(js_name = mapRange, unchecked_return_type = "RangePlan")]
    pub fn map_range(&self, start: f64, end: f64) -> Result<Object, Failure> {
        let (a, b) = (to_u64(start, "start", false)?, to_u64(end, "end", true)?);
        Ok(plan_js(&self.inner.map_range(a, b)))
    }

    /// Plaintext bytes in the object.
    #[wasm_bindgen(getter, js_name = plaintextLength)]
    #[must_use]
    pub fn plaintext_length(&self) -> f64 {
        num(self.inner.plaintext_len())
    }

    /// Ciphertext bytes in the object.
    #[wasm_bindgen(getter, js_name = ciphertextLength)]
    #[must_use]
    pub fn ciphertext_length(&self) -> f64 {
        num(self.inner.ciphertext_len())
    }

    /// Plaintext bytes per frame.
    #[wasm_bindgen(getter, js_name = frameSize)]
    #[must_use]
    pub fn frame_size(&self) -> f64 {
        num(self.inner.frame_size())
    }

    /// Segments (parts) in the object.
    #[wasm_bindgen(getter, js_name = segmentCount)]
    #[must_use]
    pub fn segment_count(&self) -> u32 {
        self.inner.segment_count()
    }

    /// Frames in the object.
    #[wasm_bindgen(getter, js_name = frameCount)]
    #[must_use]
    pub fn frame_count(&self) -> f64 {
        num(self.inner.frame_count())
    }

    /// Segment `ordinal` (0-based), or `undefined` past the end.
    #[wasm_bindgen(js_name = segment, unchecked_return_type = "SegmentInfo | undefined")]
    #[must_use]
    pub fn segment(&self, ordinal: u32) -> JsValue {
        match self.inner.segment(ordinal) {
            None => JsValue::UNDEFINED,
            Some(s) => {
                let o = Object::new();
                set(&o, "number", s.number);
                set(&o, "ordinal", s.ordinal);
                set(&o, "isLast", s.is_last);
                set(&o, "ptStart", num(s.pt_start));
                set(&o, "ptLen", num(s.pt_len));
                set(&o, "ctStart", num(s.ct_start));
                set(&o, "ctLen", num(s.ct_len));
                o.into()
            }
        }
    }

    /// The largest frame boundary at or below ciphertext offset `offset`.
    #[wasm_bindgen(js_name = ctBoundaryFloor)]
    pub fn ct_boundary_floor(&self, offset: f64) -> Result<f64, Failure> {
        Ok(num(self.inner.ct_boundary_floor(to_u64(offset, "offset", false)?)))
    }
}

/// Part numbers, plaintext lengths and nonce prefixes of a table-layout object (SPEC.md §6.3).
#[wasm_bindgen(js_name = SegmentTable)]
pub struct SegmentTable {
    inner: CoreTable,
}

#[wasm_bindgen(js_class = SegmentTable)]
impl SegmentTable {
    /// A table from `[partNumber, plaintextLength, prefix]` entries in object order. `prefix`
    /// is the 7-byte nonce prefix of the encryption of that part the upload was completed
    /// with (`Encryptor.prefix`, or the part's first 7 bytes): readers refuse a part whose
    /// frames carry another. A prefix that is not a `Uint8Array` is a `TypeError`, one of
    /// another length `invalid_parameter`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "Array<[number, number, Uint8Array]>")] entries: Array,
    ) -> Result<SegmentTable, Failure> {
        let bad = || Failure::Type("entries must be [[partNumber, plaintextLength, prefix], ...]".into());
        let mut list = Vec::new();
        for e in entries.iter() {
            let e: Array = e.dyn_into().map_err(|_| bad())?;
            if e.length() != 3 {
                return Err(bad());
            }
            let n = to_u64(e.get(0).as_f64().ok_or_else(bad)?, "partNumber", false)?;
            let l = to_u64(e.get(1).as_f64().ok_or_else(bad)?, "plaintextLength", false)?;
            let p: js_sys::Uint8Array =
                e.get(2).dyn_into().map_err(|_| Failure::Type("a table entry's prefix must be a Uint8Array".into()))?;
            let mut prefix = [0u8; 7];
            if p.length() != 7 {
                let m = format!("a table entry's prefix is 7 bytes, not {} (Encryptor.prefix)", p.length());
                return Err(Failure::Detail(CoreError::InvalidParameter, m));
            }
            p.copy_to(&mut prefix);
            list.push((u32::try_from(n).map_err(|_| Failure::Core(CoreError::InvalidParameter))?, l, prefix));
        }
        Ok(Self { inner: CoreTable::new(list)? })
    }

    /// Verifies and decodes an encoded table.
    #[wasm_bindgen(js_name = decode)]
    pub fn decode(bytes: &[u8], key: &ObjectKey) -> Result<SegmentTable, Failure> {
        Ok(Self { inner: CoreTable::decode(bytes, &key.inner)? })
    }

    /// Encodes and authenticates the table under `key`.
    #[wasm_bindgen(js_name = encode)]
    #[must_use]
    pub fn encode(&self, key: &ObjectKey) -> Vec<u8> {
        self.inner.encode(&key.inner)
    }

    /// `[partNumber, plaintextLength, prefix]` entries.
    #[wasm_bindgen(getter, js_name = entries, unchecked_return_type = "Array<[number, number, Uint8Array]>")]
    #[must_use]
    pub fn entries(&self) -> Array {
        let entry = |(n, l, p): &(u32, u64, isec_core::Prefix)| {
            JsValue::from(Array::of3(&(*n).into(), &num(*l).into(), &js_sys::Uint8Array::from(&p[..]).into()))
        };
        self.inner.entries().iter().map(entry).collect()
    }

    /// Total plaintext bytes.
    #[wasm_bindgen(getter, js_name = plaintextLength)]
    #[must_use]
    pub fn plaintext_length(&self) -> f64 {
        num(self.inner.plaintext_len())
    }
}

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
    let mut l = CopyLimits::default();
    if v.is_undefined() || v.is_null() {
        return Ok(l);
    }
    if let Some(x) = opt_u64(v, "singleCopyMax")? {
        l.single_copy_max = x;
    }
    if let Some(x) = opt_u64(v, "partMin")? {
        l.part_min = x;
    }
    if let Some(x) = opt_u64(v, "partMax")? {
        l.part_max = x;
    }
    if let Some(x) = opt_u64(v, "maxParts")? {
        l.max_parts = u32::try_from(x).map_err(|_| Failure::Core(CoreError::InvalidParameter))?;
    }
    if let Some(x) = opt_u64(v, "metadataMax")? {
        l.metadata_max = usize::try_from(x).map_err(|_| Failure::Core(CoreError::InvalidParameter))?;
    }
    Ok(l)
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
    if !request.is_object() {
        return Err(Failure::Type("request must be an object".into()));
    }
    let meta = pairs(&get(&request, "sourceMetadata"), "sourceMetadata")?;
    let meta_v: Vec<(&str, &str)> = meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let target = opt_str(&request, "targetKid")?;
    let mut req = CopyRequest::new(&meta_v, 0);
    req.source_sidecar = opt_bool(&request, "sourceSidecar")?.unwrap_or(false);
    req.target_kid = target.as_deref();
    req.rotate_dek = opt_bool(&request, "rotateDek")?.unwrap_or(false);
    let Some((env, to)) = copy::pending_rewrap(&req) else { return Ok(None) };
    Ok(Some(KeyTask(keyring.inner.borrow().begin_rewrap(&env, Some(to))?)))
}

/// Decides how to copy an object as cheaply as the format allows (SPEC.md §12); reads no
/// object bytes. `keyring` is needed when a key must change or the source re-encrypted.
fn decide_copy(request: &JsValue, keyring: Option<&Keyring>, source_shape: Option<&Shape>) -> Result<Object, Failure> {
    let request = request.clone();
    if !request.is_object() {
        return Err(Failure::Type("request must be an object".into()));
    }
    let meta = pairs(&get(&request, "sourceMetadata"), "sourceMetadata")?;
    let new_meta = pairs(&get(&request, "newMetadata"), "newMetadata")?;
    let meta_v: Vec<(&str, &str)> = meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let new_v: Vec<(&str, &str)> = new_meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let size = opt_u64(&request, "sourceSize")?.ok_or_else(|| Failure::Type("sourceSize is required".into()))?;
    let shape_ref = source_shape.map(|s| &s.inner);
    let target = opt_str(&request, "targetKid")?;
    let mut req = CopyRequest::new(&meta_v, size);
    req.source_sidecar = opt_bool(&request, "sourceSidecar")?.unwrap_or(false);
    req.source_shape = shape_ref;
    req.directive = match opt_str(&request, "directive")?.as_deref() {
        None | Some("COPY") => Directive::Copy,
        Some("REPLACE") => Directive::Replace,
        Some(other) => {
            return Err(Failure::Detail(CoreError::InvalidParameter, format!("directive {other:?}: COPY or REPLACE")));
        }
    };
    req.new_metadata = &new_v;
    req.target_kid = target.as_deref();
    req.rotate_dek = opt_bool(&request, "rotateDek")?.unwrap_or(false);
    req.migrate_legacy = opt_bool(&request, "migrateLegacy")?.unwrap_or(false);
    req.require_encryption = opt_bool(&request, "requireEncryption")?.unwrap_or(false);
    req.limits = limits_from(&get(&request, "limits"))?;
    let rewrapped = opt_str(&request, "rewrapped")?.map(|t| isec_core::Envelope::decode_text(&t)).transpose()?;
    req.rewrapped = rewrapped.as_ref();
    let ring = keyring.map(|k| k.inner.borrow());
    let p = decide(&req, ring.as_deref())?;
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

/// The shape of an object from its envelope and stored length (single and parts layouts);
/// the same as `Shape.fromCiphertextLength`.
#[wasm_bindgen(js_name = shapeFor)]
pub fn shape_for(
    envelope: &Envelope,
    #[wasm_bindgen(js_name = ciphertextLength)] ciphertext_length: f64,
) -> Result<Shape, Failure> {
    Shape::from_ciphertext_length(envelope, ciphertext_length)
}

/// Parses a 12-byte frame nonce (SPEC.md §5.1): `{ prefix, index, segmentEnd, objectEnd }`.
#[wasm_bindgen(js_name = parseNonce, unchecked_return_type = "NonceFields")]
pub fn parse_nonce(nonce: &[u8]) -> Result<Object, Failure> {
    let n = Nonce(nonce.try_into().map_err(|_| Failure::Type("a nonce is 12 bytes".into()))?);
    let pos = n.position()?;
    let o = Object::new();
    set(&o, "prefix", js_sys::Uint8Array::from(&n.prefix()[..]));
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
    Ok(Nonce::new(&p, FramePosition { index, segment_end, object_end }).0.to_vec())
}
