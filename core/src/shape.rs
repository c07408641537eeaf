//! Where every frame of an object stands: segments, frames, and range mapping (SPEC.md §6-7).
//!
//! A [`Shape`] is an object's geometry once its total size is known (from the ciphertext
//! length a HEAD returns, or from a segment table). Everything here is arithmetic: the
//! regular layouts map a plaintext offset to its frame in O(1); the table layout in
//! O(log parts).

use crate::error::{Error, Result};
pub use crate::frame::{frames_in, segment_ct_len, segment_pt_len};
use crate::header::{Header, Layout};
use crate::limits::{FRAME_OVERHEAD, MAX_PARTS, MAX_PLAINTEXT_SIZE};
use crate::nonce::FramePosition;

#[cfg(feature = "alloc")]
use crate::segment_table::SegmentTable;

const OVERHEAD: u64 = FRAME_OVERHEAD as u64;

/// One segment of an object: the whole body, or one multipart part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Segment number bound into its key: 0 for [`Layout::Single`], the part number otherwise.
    pub number: u32,
    /// Zero-based position among the object's segments.
    pub ordinal: u32,
    /// Whether this is the object's last segment.
    pub is_last: bool,
    /// Plaintext offset of the segment in the object.
    pub pt_start: u64,
    /// Plaintext bytes in the segment.
    pub pt_len: u64,
    /// Ciphertext offset of the segment in the object.
    pub ct_start: u64,
    /// Ciphertext bytes of the segment.
    pub ct_len: u64,
}

/// One frame, with everything a decryptor must check about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    /// The segment the frame belongs to.
    pub segment: Segment,
    /// The position its nonce must carry.
    pub position: FramePosition,
    /// Plaintext offset of the frame in the object.
    pub pt_start: u64,
    /// Plaintext bytes in the frame.
    pub pt_len: u64,
    /// Ciphertext offset of the frame in the object.
    pub ct_start: u64,
}

impl FrameSpec {
    /// Ciphertext bytes of the frame.
    #[must_use]
    pub fn ct_len(&self) -> u64 {
        self.pt_len + OVERHEAD
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Single,
    Parts {
        part_size: u64,
        part_ct: u64,
        count: u32,
    },
    #[cfg(feature = "alloc")]
    Table(SegmentTable),
}

/// An object's geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    frame_exp: u8,
    kind: Kind,
    pt_len: u64,
    ct_len: u64,
}

/// The ciphertext to fetch for a plaintext range, and what to keep of it.
///
/// Non-exhaustive so that a field added later is not a breaking change; a caller that must
/// rebuild a plan it stored (a binding taking one back from its host language) uses
/// [`RangePlan::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RangePlan {
    /// First ciphertext byte to fetch (inclusive).
    pub ct_start: u64,
    /// End of the ciphertext to fetch (exclusive); equal to `ct_start` when nothing is needed.
    pub ct_end: u64,
    /// Plaintext bytes to drop from the front of the first frame.
    pub skip: u64,
    /// Plaintext bytes to return.
    pub len: u64,
    /// The requested range after clamping to the object: `[pt_start, pt_start + len)`.
    pub pt_start: u64,
}

impl RangePlan {
    /// A plan from its fields, in declaration order: fetch `[ct_start, ct_end)`, drop `skip`
    /// plaintext bytes, return `len` bytes starting at plaintext offset `pt_start`.
    #[must_use]
    pub const fn new(ct_start: u64, ct_end: u64, skip: u64, len: u64, pt_start: u64) -> Self {
        Self { ct_start, ct_end, skip, len, pt_start }
    }

    /// Whether nothing needs fetching (empty range, or a range at or past the end).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The HTTP `Range` header value for the fetch, or `None` when nothing is needed.
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn http_range(&self) -> Option<alloc::string::String> {
        (self.ct_end > self.ct_start).then(|| alloc::format!("bytes={}-{}", self.ct_start, self.ct_end - 1))
    }
}

impl Shape {
    /// The geometry of a [`Layout::Single`] or [`Layout::Parts`] object from its ciphertext
    /// length, checked against the header's declared size.
    ///
    /// # Errors
    /// [`Error::BadFrameLength`] / [`Error::Truncated`] for impossible lengths,
    /// [`Error::LimitExceeded`], [`Error::InvalidParameter`] for a table layout (use
    /// [`Shape::from_table`]), and a declared-size mismatch as [`Error::Truncated`] or
    /// [`Error::TrailingData`].
    pub fn from_ciphertext_len(header: &Header, ct_len: u64) -> Result<Self> {
        header.validate()?;
        let frame = header.frame_size();
        let (kind, pt_len) = match header.layout {
            Layout::Single => (Kind::Single, segment_pt_len(ct_len, frame)?),
            Layout::Parts { .. } => {
                let part_size = header.part_size().ok_or(Error::InvalidParameter)?;
                let part_ct = segment_ct_len(part_size, frame)?;
                let count = ct_len.div_ceil(part_ct).max(1);
                if count > u64::from(MAX_PARTS) {
                    return Err(Error::LimitExceeded);
                }
                let last_pt = segment_pt_len(ct_len - (count - 1) * part_ct, frame)?;
                if count > 1 && last_pt == 0 {
                    return Err(Error::BadFrameLength);
                }
                let count = u32::try_from(count).map_err(|_| Error::LimitExceeded)?;
                (Kind::Parts { part_size, part_ct, count }, (u64::from(count) - 1) * part_size + last_pt)
            }
            Layout::Table => return Err(Error::InvalidParameter),
        };
        if pt_len > MAX_PLAINTEXT_SIZE {
            return Err(Error::LimitExceeded);
        }
        check_declared(header, pt_len)?;
        Ok(Self { frame_exp: header.frame_exp, kind, pt_len, ct_len })
    }

    /// The geometry of a [`Layout::Single`] or [`Layout::Parts`] object of `pt_len` plaintext
    /// bytes (what an encryptor will produce).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`], [`Error::InvalidParameter`] for a table layout.
    pub fn from_plaintext_len(header: &Header, pt_len: u64) -> Result<Self> {
        header.validate()?;
        if pt_len > MAX_PLAINTEXT_SIZE {
            return Err(Error::LimitExceeded);
        }
        let frame = header.frame_size();
        let ct_len = match header.layout {
            Layout::Single => segment_ct_len(pt_len, frame)?,
            Layout::Parts { .. } => {
                let part_size = header.part_size().ok_or(Error::InvalidParameter)?;
                let count = pt_len.div_ceil(part_size).max(1);
                if count > u64::from(MAX_PARTS) {
                    return Err(Error::LimitExceeded);
                }
                (count - 1) * segment_ct_len(part_size, frame)?
                    + segment_ct_len(pt_len - (count - 1) * part_size, frame)?
            }
            Layout::Table => return Err(Error::InvalidParameter),
        };
        Self::from_ciphertext_len(header, ct_len)
    }

    /// The geometry of a [`Layout::Table`] object from its authenticated segment table,
    /// checked against the ciphertext length.
    ///
    /// # Errors
    /// [`Error::Truncated`] / [`Error::TrailingData`] if `ct_len` disagrees with the table.
    #[cfg(feature = "alloc")]
    pub fn from_table(header: &Header, mut table: SegmentTable, ct_len: u64) -> Result<Self> {
        if header.layout != Layout::Table {
            return Err(Error::InvalidParameter);
        }
        header.validate()?;
        let expect_ct = table.index_ciphertext(header.frame_size())?;
        if ct_len < expect_ct {
            return Err(Error::Truncated);
        }
        if ct_len > expect_ct {
            return Err(Error::TrailingData);
        }
        let pt_len = table.plaintext_len();
        check_declared(header, pt_len)?;
        Ok(Self { frame_exp: header.frame_exp, kind: Kind::Table(table), pt_len, ct_len })
    }

    /// Plaintext bytes in the object.
    #[must_use]
    pub fn plaintext_len(&self) -> u64 {
        self.pt_len
    }

    /// Ciphertext bytes in the object.
    #[must_use]
    pub fn ciphertext_len(&self) -> u64 {
        self.ct_len
    }

    /// Plaintext bytes per frame.
    #[must_use]
    pub fn frame_size(&self) -> u64 {
        1u64 << self.frame_exp
    }

    /// Number of segments.
    #[must_use]
    pub fn segment_count(&self) -> u32 {
        match &self.kind {
            Kind::Single => 1,
            Kind::Parts { count, .. } => *count,
            #[cfg(feature = "alloc")]
            Kind::Table(t) => u32::try_from(t.entries().len()).unwrap_or(u32::MAX),
        }
    }

    /// Total frames in the object.
    #[must_use]
    pub fn frame_count(&self) -> u64 {
        let frame = self.frame_size();
        (0..self.segment_count()).filter_map(|i| self.segment(i)).map(|s| frames_in(s.pt_len, frame)).sum()
    }

    /// Whether this layout marks the object's last frame in its nonce. The table layout
    /// does not (its writer cannot know which part is last); the table's MAC covers that.
    fn marks_object_end(&self) -> bool {
        match self.kind {
            Kind::Single | Kind::Parts { .. } => true,
            #[cfg(feature = "alloc")]
            Kind::Table(_) => false,
        }
    }

    /// The segment at `ordinal`.
    #[must_use]
    pub fn segment(&self, ordinal: u32) -> Option<Segment> {
        let frame = self.frame_size();
        let count = self.segment_count();
        if ordinal >= count {
            return None;
        }
        let is_last = ordinal + 1 == count;
        let (number, pt_start, pt_len, ct_start) = match &self.kind {
            Kind::Single => (0, 0, self.pt_len, 0),
            Kind::Parts { part_size, part_ct, .. } => {
                let pt_start = u64::from(ordinal) * part_size;
                let pt_len = if is_last { self.pt_len - pt_start } else { *part_size };
                (ordinal + 1, pt_start, pt_len, u64::from(ordinal) * part_ct)
            }
            #[cfg(feature = "alloc")]
            Kind::Table(t) => t.segment(usize::try_from(ordinal).ok()?)?,
        };
        let ct_len = pt_len + frames_in(pt_len, frame) * OVERHEAD;
        Some(Segment { number, ordinal, is_last, pt_start, pt_len, ct_start, ct_len })
    }

    /// The nonce prefix every frame of `segment` must carry, where the layout records one
    /// (the table layout, SPEC.md §6.3); `None` where only the frames' agreement is checked.
    #[must_use]
    #[cfg_attr(not(feature = "alloc"), allow(unused_variables, reason = "only tables record prefixes"))]
    pub fn recorded_prefix(&self, segment: &Segment) -> Option<crate::nonce::Prefix> {
        match &self.kind {
            Kind::Single | Kind::Parts { .. } => None,
            #[cfg(feature = "alloc")]
            Kind::Table(t) => t.prefix(usize::try_from(segment.ordinal).ok()?),
        }
    }

    /// The segment holding plaintext offset `offset` (the last segment for `offset >= len`).
    #[must_use]
    pub fn segment_at(&self, offset: u64) -> Option<Segment> {
        let ordinal = match &self.kind {
            Kind::Single => 0,
            Kind::Parts { part_size, count, .. } => {
                u32::try_from(offset / part_size).unwrap_or(u32::MAX).min(count.saturating_sub(1))
            }
            #[cfg(feature = "alloc")]
            Kind::Table(t) => u32::try_from(t.ordinal_at(offset)).ok()?,
        };
        self.segment(ordinal)
    }

    /// Frame `index` of `segment`.
    #[must_use]
    pub fn frame(&self, segment: &Segment, index: u64) -> Option<FrameSpec> {
        let frame = self.frame_size();
        let n = frames_in(segment.pt_len, frame);
        if index >= n {
            return None;
        }
        let rel = index * frame;
        let pt_len = if index + 1 == n { segment.pt_len - rel } else { frame };
        let segment_end = index + 1 == n;
        Some(FrameSpec {
            segment: *segment,
            position: FramePosition {
                index: u32::try_from(index).ok()?,
                segment_end,
                object_end: segment_end && segment.is_last && self.marks_object_end(),
            },
            pt_start: segment.pt_start + rel,
            pt_len,
            ct_start: segment.ct_start + index * (frame + OVERHEAD),
        })
    }

    /// The frame after `f`, crossing into the next segment as needed.
    #[must_use]
    pub fn next_frame(&self, f: &FrameSpec) -> Option<FrameSpec> {
        if f.position.segment_end {
            let seg = self.segment(f.segment.ordinal + 1)?;
            self.frame(&seg, 0)
        } else {
            self.frame(&f.segment, u64::from(f.position.index) + 1)
        }
    }

    /// The first frame of the object.
    #[must_use]
    pub fn first_frame(&self) -> Option<FrameSpec> {
        self.frame(&self.segment(0)?, 0)
    }

    /// The frame holding plaintext offset `offset`.
    #[must_use]
    pub fn frame_at(&self, offset: u64) -> Option<FrameSpec> {
        let seg = self.segment_at(offset)?;
        let rel = offset.saturating_sub(seg.pt_start);
        let idx = (rel / self.frame_size()).min(frames_in(seg.pt_len, self.frame_size()) - 1);
        self.frame(&seg, idx)
    }

    /// The largest frame boundary (ciphertext offset where a frame starts, or the end) at or
    /// below `offset`.
    #[must_use]
    pub fn ct_boundary_floor(&self, offset: u64) -> u64 {
        if offset >= self.ct_len {
            return self.ct_len;
        }
        let full = self.frame_size() + OVERHEAD;
        match &self.kind {
            // Every frame but the object's last is full, so boundaries are evenly spaced.
            Kind::Single | Kind::Parts { .. } => offset / full * full,
            #[cfg(feature = "alloc")]
            Kind::Table(t) => {
                let seg = u32::try_from(t.ordinal_at_ct(offset)).unwrap_or(u32::MAX);
                self.segment(seg).map_or(0, |s| s.ct_start + (offset - s.ct_start) / full * full)
            }
        }
    }

    /// Maps the plaintext range `[start, end)` to the ciphertext to fetch. The range is
    /// clamped to the object; a range that is empty after clamping needs no fetch.
    #[must_use]
    pub fn map_range(&self, start: u64, end: u64) -> RangePlan {
        let end = end.min(self.pt_len);
        if start >= end {
            let at = start.min(self.pt_len);
            return RangePlan { ct_start: self.ct_len, ct_end: self.ct_len, skip: 0, len: 0, pt_start: at };
        }
        let (Some(first), Some(last)) = (self.frame_at(start), self.frame_at(end - 1)) else {
            return RangePlan { ct_start: self.ct_len, ct_end: self.ct_len, skip: 0, len: 0, pt_start: start };
        };
        RangePlan {
            ct_start: first.ct_start,
            ct_end: last.ct_start + last.ct_len(),
            skip: start - first.pt_start,
            len: end - start,
            pt_start: start,
        }
    }
}

fn check_declared(header: &Header, pt_len: u64) -> Result<()> {
    match header.declared_size {
        Some(d) if pt_len < d => Err(Error::Truncated),
        Some(d) if pt_len > d => Err(Error::TrailingData),
        _ => Ok(()),
    }
}
