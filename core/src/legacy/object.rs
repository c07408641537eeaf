//! Where every seal of a legacy object stands (SPEC.md §11).
//!
//! The body never records seal boundaries; they follow from sizes alone (metadata for a
//! single PUT, the sidecar otherwise) by the frame-count rule. A [`LegacyObject`] is that
//! arithmetic done once and checked against the body's length. It stores one entry per
//! segment (a part, or an internal part), not per seal, so a 5 TiB object costs the same
//! as its sidecar; seals are computed on demand in O(log segments).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::legacy::metadata::{decode_wrapped, parse_hex32};
use crate::legacy::sidecar::seal_count;
use crate::legacy::{
    LegacyFormat, LegacyMetadata, LegacySidecar, SEAL_OVERHEAD, SEAL_PLAINTEXT, frame_nonce, part_nonce,
};
use crate::limits::{MAX_PLAINTEXT_SIZE, NONCE_LEN};
use crate::shape::RangePlan;

/// How the proxy laid the object out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyLayout {
    /// One seal with a random nonce; the DEK is in the object's metadata.
    Single,
    /// A streamed PUT: backend parts of up to 8 MiB, each one seal with a part nonce.
    Streamed,
    /// Framed multipart: internal parts, each a run of seals with frame nonces.
    Framed,
    /// Staged multipart: runs of seals with random nonces, described by a v3 sidecar.
    Staged,
}

impl LegacyLayout {
    /// The layout's stable lowercase name (`single`, `streamed`, `framed`, `staged`): what
    /// the bindings show users, so each need not keep its own table of them.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Streamed => "streamed",
            Self::Framed => "framed",
            Self::Staged => "staged",
        }
    }
}

/// What a seal's embedded nonce must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRule {
    /// Random (or not derivable from what is known): not checked.
    Random,
    /// [`part_nonce`]`(upload_id, part_number)`.
    Part {
        /// The backend part number.
        part_number: u32,
    },
    /// [`frame_nonce`]`(upload_id, internal_part, frame_index)`.
    Frame {
        /// The internal part number.
        internal_part: u32,
        /// The seal's index within its internal part.
        frame_index: u32,
    },
}

impl NonceRule {
    /// The rule's stable lowercase name (`random`, `part`, `frame`): what the bindings show
    /// users, so each need not match on the variants itself.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Part { .. } => "part",
            Self::Frame { .. } => "frame",
        }
    }

    /// The backend part number of a [`NonceRule::Part`].
    #[must_use]
    pub const fn part_number(self) -> Option<u32> {
        match self {
            Self::Part { part_number } => Some(part_number),
            _ => None,
        }
    }

    /// The internal part of a [`NonceRule::Frame`].
    #[must_use]
    pub const fn internal_part(self) -> Option<u32> {
        match self {
            Self::Frame { internal_part, .. } => Some(internal_part),
            _ => None,
        }
    }

    /// The frame index of a [`NonceRule::Frame`].
    #[must_use]
    pub const fn frame_index(self) -> Option<u32> {
        match self {
            Self::Frame { frame_index, .. } => Some(frame_index),
            _ => None,
        }
    }
}

/// One segment: a run of seals that the frame-count rule splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacySegment {
    /// The sidecar part number, or 0 for a single PUT.
    pub part_number: u32,
    /// The internal part number, when the part was split into internal parts.
    pub internal_part: Option<u32>,
    /// Plaintext offset in the object.
    pub pt_offset: u64,
    /// Plaintext bytes.
    pub pt_len: u64,
    /// Ciphertext offset in the object.
    pub ct_offset: u64,
    /// Ciphertext bytes.
    pub ct_len: u64,
    /// Seals in the segment, `(ct_len - pt_len) / 28`.
    pub seal_count: u32,
    /// Index of the segment's first seal in the object.
    pub first_seal: u64,
    rule: SegmentRule,
}

/// The nonce rule for a whole segment, before the seal index is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegmentRule {
    Random,
    Part(u32),
    Frame(u32),
}

/// One seal: `nonce(12) || ciphertext || tag(16)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacySeal {
    /// Index of the seal in the object.
    pub index: u64,
    /// Ciphertext offset in the object.
    pub ct_offset: u64,
    /// Ciphertext bytes, including nonce and tag.
    pub ct_len: u64,
    /// Plaintext offset in the object.
    pub pt_offset: u64,
    /// Plaintext bytes.
    pub pt_len: u64,
    /// What the embedded nonce must be.
    pub nonce: NonceRule,
}

/// The ciphertext to fetch for a plaintext range, and what to keep of it: the same plan as an
/// isec object's ([`RangePlan`], whose fields it derefs to, so callers read both alike), plus
/// the seals it covers. Only whole seals can be authenticated, so the fetch is widened to seal
/// boundaries, and `skip` counts from the front of the first seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyRange {
    /// What to fetch and what to keep of it.
    pub plan: RangePlan,
    /// Index of the first seal fetched.
    pub first_seal: u64,
    /// Index after the last seal fetched.
    pub end_seal: u64,
}

impl core::ops::Deref for LegacyRange {
    type Target = RangePlan;

    fn deref(&self) -> &RangePlan {
        &self.plan
    }
}

/// A legacy object's geometry and key reference, checked against its body's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyObject {
    layout: LegacyLayout,
    wrapped_dek_b64: String,
    kid: Option<String>,
    upload_id: Option<String>,
    segments: Vec<LegacySegment>,
    seal_count: u64,
    pt_len: u64,
    ct_len: u64,
}

impl LegacyObject {
    /// Describes an object from its metadata, its sidecar when it has one, and the body's
    /// length (a HEAD's `Content-Length`). Metadata and sidecar must agree wherever both
    /// speak, since either alone is unauthenticated and a mismatch means one of them belongs
    /// to another object.
    ///
    /// # Errors
    /// [`Error::MalformedLegacy`] if the metadata has no DEK and no sidecar is given, a
    /// `multipart-v3` object lacks its v3 sidecar (or a `single-v3` one has a sidecar), or
    /// metadata and sidecar disagree on DEK, key id, generation, ETag or plaintext size;
    /// [`Error::Truncated`] / [`Error::TrailingData`] if the body is shorter / longer than
    /// the sizes say; [`Error::LimitExceeded`] for a body beyond the format's limit.
    pub fn new(meta: &LegacyMetadata, sidecar: Option<&LegacySidecar>, ciphertext_len: u64) -> Result<Self> {
        let object = match sidecar {
            None => Self::single(meta, ciphertext_len)?,
            Some(s) => Self::from_sidecar(meta, s, ciphertext_len)?,
        };
        if let Some(declared) = meta.plaintext_size()
            && declared != object.pt_len
        {
            // A single PUT's size comes from the body: the body is what is wrong.
            return Err(match (sidecar, object.pt_len < declared) {
                (None, true) => Error::Truncated,
                (None, false) => Error::TrailingData,
                (Some(_), _) => Error::MalformedLegacy,
            });
        }
        Ok(object)
    }

    fn single(meta: &LegacyMetadata, ct_len: u64) -> Result<Self> {
        if meta.format() == Some(LegacyFormat::MultipartV3) {
            return Err(Error::MalformedLegacy);
        }
        let wrapped = meta.wrapped_dek_b64().ok_or(Error::MalformedLegacy)?;
        let pt_len = ct_len.checked_sub(SEAL_OVERHEAD).ok_or(Error::Truncated)?;
        if pt_len > MAX_PLAINTEXT_SIZE {
            return Err(Error::LimitExceeded);
        }
        let seg = LegacySegment {
            part_number: 0,
            internal_part: None,
            pt_offset: 0,
            pt_len,
            ct_offset: 0,
            ct_len,
            seal_count: 1,
            first_seal: 0,
            rule: SegmentRule::Random,
        };
        Ok(Self {
            layout: LegacyLayout::Single,
            wrapped_dek_b64: wrapped.to_string(),
            kid: meta.kid().map(ToString::to_string),
            upload_id: None,
            segments: alloc::vec![seg],
            seal_count: 1,
            pt_len,
            ct_len,
        })
    }

    fn from_sidecar(meta: &LegacyMetadata, s: &LegacySidecar, ct_len: u64) -> Result<Self> {
        let layout = match s.version() {
            3 => LegacyLayout::Staged,
            _ if s.parts().iter().all(|p| p.internal_parts.is_empty()) => LegacyLayout::Streamed,
            _ => LegacyLayout::Framed,
        };
        // Format tag and sidecar version must tell the same story.
        match (meta.format(), layout) {
            (Some(LegacyFormat::SingleV3), _) => return Err(Error::MalformedLegacy),
            (Some(LegacyFormat::MultipartV3), l) if l != LegacyLayout::Staged => {
                return Err(Error::MalformedLegacy);
            }
            _ => {}
        }
        if let (Some(g), Some(sg)) = (meta.generation(), s.generation())
            && *g != parse_hex32(sg)?
        {
            return Err(Error::MalformedLegacy);
        }
        if let Some(m) = meta.wrapped_dek_b64()
            && decode_wrapped(m)? != decode_wrapped(s.wrapped_dek_b64())?
        {
            return Err(Error::MalformedLegacy);
        }
        if let (Some(a), Some(b)) = (meta.kid(), s.kid())
            && a != b
        {
            return Err(Error::MalformedLegacy);
        }
        if let (Some(a), Some(b)) = (meta.client_etag(), s.client_etag())
            && !a.eq_ignore_ascii_case(b)
        {
            return Err(Error::MalformedLegacy);
        }

        let mut segments = Vec::new();
        let (mut pt, mut ct, mut seals) = (0u64, 0u64, 0u64);
        let mut push =
            |part_number: u32, internal_part: Option<u32>, ps: u64, cs: u64, rule: SegmentRule| -> Result<()> {
                let n = seal_count(ps, cs)?;
                let rule = match (rule, n) {
                    // A lone part seal uses the part nonce; a multi-seal part without internal
                    // parts is nothing the proxy was seen to write, so its nonces stay unchecked.
                    (SegmentRule::Part(_), 2..) => SegmentRule::Random,
                    (r, _) => r,
                };
                segments.push(LegacySegment {
                    part_number,
                    internal_part,
                    pt_offset: pt,
                    pt_len: ps,
                    ct_offset: ct,
                    ct_len: cs,
                    seal_count: n,
                    first_seal: seals,
                    rule,
                });
                pt = pt.checked_add(ps).ok_or(Error::MalformedLegacy)?;
                ct = ct.checked_add(cs).ok_or(Error::MalformedLegacy)?;
                seals = seals.checked_add(u64::from(n)).ok_or(Error::MalformedLegacy)?;
                Ok(())
            };
        for part in s.parts() {
            if part.internal_parts.is_empty() {
                let rule =
                    if layout == LegacyLayout::Staged { SegmentRule::Random } else { SegmentRule::Part(part.number) };
                push(part.number, None, part.record.plaintext_size, part.record.ciphertext_size, rule)?;
            } else {
                for ip in &part.internal_parts {
                    let rule = if layout == LegacyLayout::Staged {
                        SegmentRule::Random
                    } else {
                        SegmentRule::Frame(ip.number)
                    };
                    push(part.number, Some(ip.number), ip.record.plaintext_size, ip.record.ciphertext_size, rule)?;
                }
            }
        }
        if pt != s.total_size() {
            return Err(Error::MalformedLegacy);
        }
        if ct_len < ct {
            return Err(Error::Truncated);
        }
        if ct_len > ct {
            return Err(Error::TrailingData);
        }
        Ok(Self {
            layout,
            wrapped_dek_b64: s.wrapped_dek_b64().to_string(),
            kid: s.kid().or(meta.kid()).map(ToString::to_string),
            upload_id: s.upload_id().map(ToString::to_string),
            segments,
            seal_count: seals,
            pt_len: pt,
            ct_len,
        })
    }

    /// Records the multipart upload id, so that derived nonces are checked. The proxy kept
    /// the id of streamed and framed uploads only in its own state, never in the sidecar; a
    /// caller that has it (from that state, or a migration log) gains a check that each seal
    /// sits where it was written, which the format otherwise cannot give.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the sidecar recorded a different upload id.
    pub fn with_upload_id(mut self, upload_id: &str) -> Result<Self> {
        match self.upload_id.as_deref() {
            Some(known) if known != upload_id => Err(Error::InvalidParameter),
            _ => {
                self.upload_id = Some(upload_id.to_string());
                Ok(self)
            }
        }
    }

    getters! { self;
        /// The layout.
        layout -> LegacyLayout { self.layout }
        /// The wrapped DEK, standard base64, for [`crate::legacy::LegacyKey::open`].
        wrapped_dek_b64 -> &str { &self.wrapped_dek_b64 }
        /// The key id naming the KEK, when the proxy recorded one.
        kid -> Option<&str> { self.kid.as_deref() }
        /// The upload id, when known.
        upload_id -> Option<&str> { self.upload_id.as_deref() }
        /// Plaintext bytes.
        plaintext_len -> u64 { self.pt_len }
        /// Ciphertext bytes: the body's length.
        ciphertext_len -> u64 { self.ct_len }
        /// The segments, in order.
        segments -> &[LegacySegment] { &self.segments }
        /// Number of seals.
        seal_count -> u64 { self.seal_count }
    }

    /// Seal `index`, or `None` past the end.
    #[must_use]
    pub fn seal(&self, index: u64) -> Option<LegacySeal> {
        let k = self.segments.partition_point(|s| s.first_seal + u64::from(s.seal_count) <= index);
        let seg = self.segments.get(k)?;
        let j = index.checked_sub(seg.first_seal)?;
        if j >= u64::from(seg.seal_count) {
            return None;
        }
        let pt_skip = j * SEAL_PLAINTEXT;
        let pt_len = if seg.seal_count == 1 { seg.pt_len } else { (seg.pt_len - pt_skip).min(SEAL_PLAINTEXT) };
        let nonce = match seg.rule {
            SegmentRule::Random => NonceRule::Random,
            SegmentRule::Part(part_number) => NonceRule::Part { part_number },
            SegmentRule::Frame(internal_part) => {
                NonceRule::Frame { internal_part, frame_index: u32::try_from(j).ok()? }
            }
        };
        Some(LegacySeal {
            index,
            ct_offset: seg.ct_offset + j * (SEAL_PLAINTEXT + SEAL_OVERHEAD),
            ct_len: pt_len + SEAL_OVERHEAD,
            pt_offset: seg.pt_offset + pt_skip,
            pt_len,
            nonce,
        })
    }

    /// Every seal, in order.
    pub fn seals(&self) -> impl Iterator<Item = LegacySeal> + '_ {
        self.segments
            .iter()
            .flat_map(move |seg| (0..u64::from(seg.seal_count)).filter_map(move |j| self.seal(seg.first_seal + j)))
    }

    /// The nonce seal `seal` must carry, when its layout derives nonces and the upload id
    /// is known.
    #[must_use]
    pub fn expected_nonce(&self, seal: &LegacySeal) -> Option<[u8; NONCE_LEN]> {
        let upload_id = self.upload_id.as_deref()?;
        match seal.nonce {
            NonceRule::Random => None,
            NonceRule::Part { part_number } => Some(part_nonce(upload_id, part_number)),
            NonceRule::Frame { internal_part, frame_index } => Some(frame_nonce(upload_id, internal_part, frame_index)),
        }
    }

    /// The largest seal, in ciphertext bytes, among seals `[first, end)`: what a streaming
    /// reader of them must be able to buffer.
    #[must_use]
    pub fn max_seal_len(&self, first: u64, end: u64) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.first_seal < end && s.first_seal + u64::from(s.seal_count) > first)
            .map(|s| if s.seal_count == 1 { s.ct_len } else { SEAL_PLAINTEXT + SEAL_OVERHEAD })
            .max()
            .unwrap_or(0)
    }

    /// Index of the seal holding plaintext byte `offset` (`offset < plaintext_len`).
    fn seal_index_at(&self, offset: u64) -> Option<u64> {
        let k = self.segments.partition_point(|s| s.pt_offset + s.pt_len <= offset);
        let seg = self.segments.get(k)?;
        let within = offset.checked_sub(seg.pt_offset)?;
        let j = if seg.seal_count == 1 { 0 } else { within / SEAL_PLAINTEXT };
        Some(seg.first_seal + j)
    }

    /// Maps the plaintext range `[start, end)` to the whole seals covering it. The range is
    /// clamped to the object; an empty result fetches nothing.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `start > end`.
    pub fn plan_range(&self, start: u64, end: u64) -> Result<LegacyRange> {
        if start > end {
            return Err(Error::InvalidParameter);
        }
        let end = end.min(self.pt_len);
        let start = start.min(end);
        if start == end {
            let plan = RangePlan { ct_start: 0, ct_end: 0, skip: 0, len: 0, pt_start: start };
            return Ok(LegacyRange { plan, first_seal: 0, end_seal: 0 });
        }
        let first = self.seal_index_at(start).and_then(|i| self.seal(i)).ok_or(Error::InvalidState)?;
        let last = self.seal_index_at(end - 1).and_then(|i| self.seal(i)).ok_or(Error::InvalidState)?;
        let plan = RangePlan {
            ct_start: first.ct_offset,
            ct_end: last.ct_offset + last.ct_len,
            skip: start - first.pt_offset,
            len: end - start,
            pt_start: start,
        };
        Ok(LegacyRange { plan, first_seal: first.index, end_seal: last.index + 1 })
    }
}

/// The ciphertext sizes of the seals the proxy writes for a segment of `plaintext_len`
/// bytes: `min(8 MiB, remaining) + 28` each, and one empty seal for empty input. Useful to
/// predict a body's layout (and its length) before writing or migrating it.
///
/// # Errors
/// [`Error::LimitExceeded`] above [`MAX_PLAINTEXT_SIZE`]: no object is that
/// large, and a caller collecting the sizes must not be led into a huge allocation.
pub fn split_seals(plaintext_len: u64) -> Result<impl Iterator<Item = u64>> {
    if plaintext_len > MAX_PLAINTEXT_SIZE {
        return Err(Error::LimitExceeded);
    }
    let n = plaintext_len.div_ceil(SEAL_PLAINTEXT).max(1);
    Ok((0..n).map(move |i| (plaintext_len - i * SEAL_PLAINTEXT).min(SEAL_PLAINTEXT) + SEAL_OVERHEAD))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn nonce_rule_names_and_fields() {
        let (r, p) = (NonceRule::Random, NonceRule::Part { part_number: 3 });
        let f = NonceRule::Frame { internal_part: 2, frame_index: 7 };
        assert_eq!([r.name(), p.name(), f.name()], ["random", "part", "frame"]);
        assert_eq!([r.part_number(), p.part_number(), f.part_number()], [None, Some(3), None]);
        assert_eq!([r.internal_part(), p.internal_part(), f.internal_part()], [None, None, Some(2)]);
        assert_eq!([r.frame_index(), p.frame_index(), f.frame_index()], [None, None, Some(7)]);
        let names = [LegacyLayout::Single, LegacyLayout::Streamed, LegacyLayout::Framed, LegacyLayout::Staged];
        assert_eq!(names.map(LegacyLayout::name), ["single", "streamed", "framed", "staged"]);
    }

    #[test]
    fn split_matches_vector_examples() {
        // nonce_and_sizes.json, frame_sizes_examples.
        let cases: [(u64, &[u64]); 5] = [
            (0, &[28]),
            (1, &[29]),
            (8_388_608, &[8_388_636]),
            (8_388_609, &[8_388_636, 29]),
            (17_825_795, &[8_388_636, 8_388_636, 1_048_607]),
        ];
        for (n, want) in cases {
            assert_eq!(split_seals(n).unwrap().collect::<Vec<_>>(), want, "{n}");
            let cs: u64 = want.iter().sum();
            assert_eq!(seal_count(n, cs).unwrap() as usize, want.len());
        }
    }
}
