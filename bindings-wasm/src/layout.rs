//! An object's geometry (`Shape`, range plans) and segment tables (SPEC.md §6-7):
//! conversions around core's `layout` and `segment_table`.

use isec_core::envelope::Header;
use isec_core::shape::{RangePlan, Shape as CoreShape};
use isec_core::{Error as CoreError, Result as CoreResult, SegmentTable as CoreTable};
use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::convert::{num, set, to_range, to_u64};
use crate::error::Failure;
use crate::keys::{Envelope, ObjectKey};

/// An object's geometry once its size is known (SPEC.md §6-7).
#[wasm_bindgen(js_name = Shape)]
pub struct Shape {
    pub(crate) inner: CoreShape,
}

/// A range plan as the JS `RangePlan` object.
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

impl Shape {
    /// The shape `make` finds for `envelope` and a length (`what`: its argument name).
    fn of(
        envelope: &Envelope,
        len: f64,
        what: &str,
        make: fn(&Header, u64) -> CoreResult<CoreShape>,
    ) -> Result<Shape, Failure> {
        Ok(Self { inner: make(envelope.inner.header(), to_u64(len, what, false)?)? })
    }
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
        Self::of(envelope, ciphertext_length, "ciphertextLength", CoreShape::from_ciphertext_len)
    }

    /// The shape an encryptor will produce for `plaintextLength` bytes.
    #[wasm_bindgen(js_name = forPlaintext)]
    pub fn for_plaintext(
        envelope: &Envelope,
        #[wasm_bindgen(js_name = plaintextLength)] plaintext_length: f64,
    ) -> Result<Shape, Failure> {
        Self::of(envelope, plaintext_length, "plaintextLength", CoreShape::from_plaintext_len)
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
        let (a, b) = to_range(start, end)?;
        Ok(plan_js(&self.inner.map_range(a, b)))
    }

    /// Segment `ordinal` (0-based), or `undefined` past the end.
    #[wasm_bindgen(js_name = segment, unchecked_return_type = "SegmentInfo | undefined")]
    #[must_use]
    pub fn segment(&self, ordinal: u32) -> JsValue {
        let Some(s) = self.inner.segment(ordinal) else { return JsValue::UNDEFINED };
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

    /// The largest frame boundary at or below ciphertext offset `offset`.
    #[wasm_bindgen(js_name = ctBoundaryFloor)]
    pub fn ct_boundary_floor(&self, offset: f64) -> Result<f64, Failure> {
        Ok(num(self.inner.ct_boundary_floor(to_u64(offset, "offset", false)?)))
    }
}

getters!(Shape {
    /// Plaintext bytes in the object.
    plaintextLength plaintext_length -> f64 = |s| num(s.plaintext_len());
    /// Ciphertext bytes in the object.
    ciphertextLength ciphertext_length -> f64 = |s| num(s.ciphertext_len());
    /// Plaintext bytes per frame.
    frameSize frame_size -> f64 = |s| num(s.frame_size());
    /// Segments (parts) in the object.
    segmentCount segment_count -> u32 = |s| s.segment_count();
    /// Frames in the object.
    frameCount frame_count -> f64 = |s| num(s.frame_count());
});

/// The shape of an object from its envelope and stored length (single and parts layouts);
/// the same as `Shape.fromCiphertextLength`.
#[wasm_bindgen(js_name = shapeFor)]
pub fn shape_for(
    envelope: &Envelope,
    #[wasm_bindgen(js_name = ciphertextLength)] ciphertext_length: f64,
) -> Result<Shape, Failure> {
    Shape::from_ciphertext_length(envelope, ciphertext_length)
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
            let p: Uint8Array =
                e.get(2).dyn_into().map_err(|_| Failure::Type("a table entry's prefix must be a Uint8Array".into()))?;
            let mut prefix = [0u8; 7];
            if p.length() != 7 {
                let m = format!("a table entry's prefix is 7 bytes, not {} (Encryptor.prefix)", p.length());
                return Err(Failure::Detail(CoreError::InvalidParameter, m));
            }
            p.copy_to(&mut prefix);
            list.push((
                u32::try_from(n).map_err(|_| Failure::Core(CoreError::InvalidParameter))?,
                l,
                isec_core::Prefix::from(prefix),
            ));
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
            JsValue::from(Array::of3(&(*n).into(), &num(*l).into(), &Uint8Array::from(&p.as_bytes()[..]).into()))
        };
        self.inner.entries().iter().map(entry).collect()
    }
}

getters!(SegmentTable {
    /// Total plaintext bytes.
    plaintextLength plaintext_length -> f64 = |t| num(t.plaintext_len());
});
