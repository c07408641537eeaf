//! An object's geometry: shapes, range plans, segments, segment tables (SPEC.md §6, §7) and
//! frame nonces (SPEC.md §5.1).

use isec_core::nonce::{FramePosition, Nonce};
use isec_core::shape::Shape as CoreShape;
use isec_core::{Error as CoreError, SegmentTable as CoreTable};
use napi::Env;
use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;

use crate::convert::{Bytes, Flag, Ref, TableEntries, U64};
use crate::error::{Failure, Fallible};
use crate::keys::{Envelope, ObjectKey};
use crate::{Js, f, getters, made_by};

/// The ciphertext to fetch for a plaintext range, and what to keep of it (SPEC.md §7).
#[napi(object, object_from_js = false)]
pub struct RangePlan {
    /// First ciphertext byte to fetch.
    pub ct_start: f64,
    /// End of the fetch (exclusive); equal to `ctStart` when nothing is needed.
    pub ct_end: f64,
    /// Plaintext bytes dropped from the front of the first frame.
    pub skip: f64,
    /// Plaintext bytes returned.
    pub len: f64,
    /// The range after clamping: `[ptStart, ptStart + len)`.
    pub pt_start: f64,
    /// The HTTP `Range` header for the fetch, absent when nothing is needed.
    pub http_range: Option<String>,
}

/// One segment (the body, or one part) of an object.
#[napi(object, object_from_js = false)]
pub struct SegmentInfo {
    pub number: u32,
    pub ordinal: u32,
    pub is_last: bool,
    pub pt_start: f64,
    pub pt_len: f64,
    pub ct_start: f64,
    pub ct_len: f64,
}

/// An object's geometry once its size is known.
#[napi]
pub struct Shape {
    pub(crate) inner: CoreShape,
}

/// The shape of an object from its envelope and stored (ciphertext) length; single and
/// parts layouts (table-layout objects: `Shape.fromTable`).
#[napi]
pub fn shape_for(
    env: Env,
    #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
    #[napi(ts_arg_type = "number")] ciphertext_length: U64,
) -> napi::Result<Shape> {
    CoreShape::from_ciphertext_len(envelope.inner.header(), ciphertext_length.0).map(|inner| Shape { inner }).js(&env)
}

made_by! { Shape, "Not constructible with `new`: made by `shapeFor`, `Shape.forPlaintext` or `Shape.fromTable`." }

getters!(Shape {
    plaintext_length -> f64 = |s| f(s.plaintext_len());
    ciphertext_length -> f64 = |s| f(s.ciphertext_len());
    frame_size -> f64 = |s| f(s.frame_size());
    segment_count -> u32 = |s| s.segment_count();
    frame_count -> f64 = |s| f(s.frame_count());
});

#[napi]
impl Shape {
    /// The shape an encryptor will produce for `plaintextLength` bytes.
    #[napi(factory)]
    pub fn for_plaintext(
        env: Env,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "number")] plaintext_length: U64,
    ) -> napi::Result<Self> {
        CoreShape::from_plaintext_len(envelope.inner.header(), plaintext_length.0).map(|inner| Self { inner }).js(&env)
    }

    /// The shape of a table-layout object from its encoded table (verified with `key`).
    #[napi(factory)]
    pub fn from_table(
        env: Env,
        #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
        #[napi(ts_arg_type = "Uint8Array")] table: Bytes,
        #[napi(ts_arg_type = "number")] ciphertext_length: U64,
    ) -> napi::Result<Self> {
        let r = CoreTable::decode(table.0, &key.inner)
            .and_then(|t| CoreShape::from_table(key.inner.header(), t, ciphertext_length.0));
        r.map(|inner| Self { inner }).js(&env)
    }

    /// Maps the plaintext range `[start, end)` (clamped to the object) to the ciphertext to
    /// fetch. `end` may be `Infinity`.
    #[napi]
    pub fn map_range(
        &self,
        #[napi(ts_arg_type = "number")] start: U64,
        #[napi(ts_arg_type = "number")] end: U64,
    ) -> RangePlan {
        let p = self.inner.map_range(start.0, end.0);
        let http_range = p.http_range();
        RangePlan {
            ct_start: f(p.ct_start),
            ct_end: f(p.ct_end),
            skip: f(p.skip),
            len: f(p.len),
            pt_start: f(p.pt_start),
            http_range,
        }
    }

    /// Segment `ordinal` (0-based), or `null` past the end.
    #[napi]
    pub fn segment(&self, #[napi(ts_arg_type = "number")] ordinal: U64) -> Option<SegmentInfo> {
        let s = self.inner.segment(u32::try_from(ordinal.0).ok()?)?;
        Some(SegmentInfo {
            number: s.number,
            ordinal: s.ordinal,
            is_last: s.is_last,
            pt_start: f(s.pt_start),
            pt_len: f(s.pt_len),
            ct_start: f(s.ct_start),
            ct_len: f(s.ct_len),
        })
    }

    /// The largest frame boundary at or below ciphertext offset `offset`.
    #[napi]
    pub fn ct_boundary_floor(&self, #[napi(ts_arg_type = "number")] offset: U64) -> f64 {
        f(self.inner.ct_boundary_floor(offset.0))
    }
}

/// Part numbers, plaintext lengths and nonce prefixes of a table-layout object (SPEC.md §6.3).
#[napi]
pub struct SegmentTable {
    inner: CoreTable,
}

getters!(SegmentTable {
    #[doc = "Total plaintext bytes."] plaintext_length -> f64 = |s| f(s.plaintext_len());
});

#[napi]
impl SegmentTable {
    /// A table from `[partNumber, plaintextLength, prefix]` entries in object order. `prefix`
    /// is the 7-byte nonce prefix of the encryption of that part the upload was completed
    /// with (`Encryptor.prefix`, or the part's first 7 bytes): readers refuse a part whose
    /// frames carry another.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "Array<[number, number, Uint8Array]>")] entries: TableEntries,
    ) -> napi::Result<Self> {
        let entries = entries
            .0
            .iter()
            .map(|&(n, l, p)| Ok((n.u32()?, l.0, isec_core::Prefix::from(p))))
            .collect::<Fallible<Vec<_>>>();
        entries.and_then(|e| Ok(CoreTable::new(e)?)).map(|inner| Self { inner }).js(&env)
    }

    /// Verifies and decodes an encoded table.
    #[napi(factory)]
    pub fn decode(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] bytes: Bytes,
        #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>,
    ) -> napi::Result<Self> {
        CoreTable::decode(bytes.0, &key.inner).map(|inner| Self { inner }).js(&env)
    }

    /// Encodes and authenticates the table under `key`.
    #[napi]
    pub fn encode(&self, #[napi(ts_arg_type = "ObjectKey")] key: Ref<ObjectKey>) -> Buffer {
        self.inner.encode(&key.inner).into()
    }

    /// `[partNumber, plaintextLength, prefix]` entries.
    #[napi(getter, ts_return_type = "Array<[number, number, Buffer]>")]
    pub fn entries(&self) -> Vec<Vec<Either<f64, Buffer>>> {
        let entry = |&(n, l, p): &(u32, u64, isec_core::Prefix)| {
            vec![Either::A(f64::from(n)), Either::A(f(l)), Either::B(p.as_bytes().to_vec().into())]
        };
        self.inner.entries().iter().map(entry).collect()
    }
}

/// A frame nonce's fields (SPEC.md §5.1).
#[napi(object, object_from_js = false)]
pub struct NonceFields {
    pub prefix: Buffer,
    pub index: u32,
    pub segment_end: bool,
    pub object_end: bool,
}

fn sized<const N: usize>(b: &[u8], what: &str) -> Fallible<[u8; N]> {
    b.try_into().map_err(|_| Failure::Detail(CoreError::InvalidParameter, format!("a {what} is {N} bytes")))
}

/// Parses a 12-byte frame nonce.
#[napi]
pub fn parse_nonce(env: Env, #[napi(ts_arg_type = "Uint8Array")] nonce: Bytes) -> napi::Result<NonceFields> {
    let n = Nonce::from_bytes(sized(nonce.0, "nonce").js(&env)?);
    let p = n.position().js(&env)?;
    Ok(NonceFields {
        prefix: n.prefix().as_bytes().to_vec().into(),
        index: p.index,
        segment_end: p.segment_end,
        object_end: p.object_end,
    })
}

/// Builds the nonce of frame `index` of a segment encryption with `prefix` (7 bytes).
#[napi]
pub fn build_nonce(
    env: Env,
    #[napi(ts_arg_type = "Uint8Array")] prefix: Bytes,
    #[napi(ts_arg_type = "number")] index: U64,
    #[napi(ts_arg_type = "boolean")] segment_end: Flag,
    #[napi(ts_arg_type = "boolean")] object_end: Flag,
) -> napi::Result<Buffer> {
    let p = sized(prefix.0, "prefix").js(&env)?;
    let pos = FramePosition { index: index.u32().js(&env)?, segment_end: segment_end.0, object_end: object_end.0 };
    Ok(Nonce::new(&isec_core::Prefix::from(p), pos).as_bytes().to_vec().into())
}
