//! Reading a whole object through S3 (SPEC.md §12.4): which GETs, of which bytes.
//!
//! A reader with one connection makes one streamed `GetObject`: nothing is gained by
//! splitting it, and one response is served faster than a run of ranged ones. A reader
//! with more starts with `GetObject` of part 1: its headers are the object's HEAD (user
//! metadata for [`super::ObjectOpen`], the ETag to pin the rest to) and its Content-Range
//! names the stored size. The rest is fetched as ranged GETs of that first part's length,
//! so a multipart object (every isec object above one part: one S3 part per segment) is
//! read part by part, which object stores serve fastest and which keeps pieces the size
//! the writer chose. Pieces far from the reader's part size (a large single PUT, odd
//! parts) fall back to that size. Where pieces start does not matter to what is verified:
//! the reader decrypts them in order as one stream against the stored size.

use crate::error::{Error, Result};

/// The part number of a whole read's first `GetObject` when the reader fetches in parallel.
pub const FIRST_PART: u32 = 1;

/// The part number to ask for in a whole read's first `GetObject`: [`FIRST_PART`] for a
/// reader with `concurrency` above one, none (the whole object, streamed) for one
/// connection.
#[must_use]
pub const fn first_part_number(concurrency: u32) -> Option<u32> {
    if concurrency > 1 { Some(FIRST_PART) } else { None }
}

/// The status that answers a part number or range on an empty object (S3's 416, "the range
/// is not satisfiable"): such an object is read with one plain `GetObject`.
pub const EMPTY_OBJECT_STATUS: u16 = 416;

/// The plan of a whole read, made from the answer to its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WholeRead {
    stored: u64,
    first: u64,
    step: u64,
}

impl WholeRead {
    /// The plan from the first response: `response_len` is its Content-Length,
    /// `content_range` its Content-Range (`None` for a 200: the whole object), `part_size`
    /// the reader's preferred piece size, `concurrency` the reader's (as given to
    /// [`first_part_number`]). With one connection the whole first response is read, in
    /// pieces of at most [`WholeRead::step`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero `part_size` or a Content-Range that is not
    /// `bytes 0-<last>/<size>`; [`Error::Truncated`] / [`Error::TrailingData`] when the
    /// response carries fewer / more bytes than its Content-Range says.
    pub fn from_first_response(
        response_len: u64,
        content_range: Option<&str>,
        part_size: u64,
        concurrency: u32,
    ) -> Result<Self> {
        if part_size == 0 {
            return Err(Error::InvalidParameter);
        }
        let (stored, carried) = match content_range {
            None => (response_len, response_len),
            Some(range) => {
                let (start, last, size) = parse_content_range(range)?;
                if size == 0 {
                    // An object with no stored bytes: S3 answers a part number or range on
                    // it with 416, some servers with a 206 naming an impossible span
                    // (Garage: `bytes 0-18446744073709551615/0`). Either way, it is empty.
                    (0, 0)
                } else if start != 0 || last >= size {
                    return Err(Error::InvalidParameter);
                } else {
                    (size, last + 1)
                }
            }
        };
        if response_len < carried {
            return Err(Error::Truncated);
        }
        if response_len > carried {
            return Err(Error::TrailingData);
        }
        if first_part_number(concurrency).is_none() {
            return Ok(Self { stored, first: carried, step: part_size });
        }
        let step = if carried > 0 && carried <= part_size.saturating_mul(2) { carried } else { part_size };
        Ok(Self { stored, first: carried.min(step), step })
    }

    /// The object's stored size (what the decryptor's shape is made from).
    #[must_use]
    pub const fn stored_len(&self) -> u64 {
        self.stored
    }

    /// The bytes to read from the first response, in pieces of at most [`WholeRead::step`];
    /// the rest of it (a large single PUT read in parallel) is dropped and fetched by range.
    #[must_use]
    pub const fn first_len(&self) -> u64 {
        self.first
    }

    /// The size of every piece but the last.
    #[must_use]
    pub const fn step(&self) -> u64 {
        self.step
    }

    /// The ranged GETs after the first response, in order: `[start, end)` of the stored
    /// bytes, each to be pinned to the first response's ETag (`If-Match`).
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let (stored, step) = (self.stored, self.step);
        let mut at = self.first;
        core::iter::from_fn(move || {
            if at >= stored {
                return None;
            }
            let end = at.saturating_add(step).min(stored);
            let r = (at, end);
            at = end;
            Some(r)
        })
    }

    /// How many ranged GETs follow the first response.
    #[must_use]
    pub fn range_count(&self) -> u64 {
        (self.stored.saturating_sub(self.first)).div_ceil(self.step)
    }
}

/// `bytes <start>-<last>/<size>` (RFC 9110 §14.4); a `*` size is refused: the reader needs
/// the stored size.
fn parse_content_range(s: &str) -> Result<(u64, u64, u64)> {
    let bad = Error::InvalidParameter;
    let rest = s.trim().strip_prefix("bytes ").ok_or(bad)?;
    let (span, size) = rest.split_once('/').ok_or(bad)?;
    let (start, last) = span.split_once('-').ok_or(bad)?;
    let num = |t: &str| -> Result<u64> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        t.parse::<u64>().map_err(|_| bad)
    };
    let (start, last, size) = (num(start)?, num(last)?, num(size)?);
    if last < start {
        return Err(bad);
    }
    Ok((start, last, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_multipart_object_is_read_in_its_own_parts() {
        let part = 8 * MIB + 3584; // an isec segment of 8 MiB
        let stored = 12 * part;
        let r =
            WholeRead::from_first_response(part, Some(&alloc::format!("bytes 0-{}/{stored}", part - 1)), 8 * MIB, 4)
                .unwrap();
        assert_eq!((r.stored_len(), r.first_len(), r.step(), r.range_count()), (stored, part, part, 11));
        let ranges: Vec<_> = r.ranges().collect();
        assert_eq!(ranges.first(), Some(&(part, 2 * part)));
        assert_eq!(ranges.last(), Some(&(11 * part, stored)));
    }

    #[test]
    fn a_large_single_put_is_read_in_part_size_pieces() {
        let stored = 100 * MIB;
        // partNumber=1 of a single PUT: the whole object, as a 206 or as a 200.
        for range in [Some("bytes 0-104857599/104857600"), None] {
            let r = WholeRead::from_first_response(stored, range, 8 * MIB, 4).unwrap();
            assert_eq!((r.first_len(), r.step(), r.range_count()), (8 * MIB, 8 * MIB, 12));
            assert_eq!(r.ranges().last(), Some((96 * MIB, stored)));
        }
    }

    #[test]
    fn one_connection_reads_the_whole_object_in_one_streamed_get() {
        assert_eq!((first_part_number(0), first_part_number(1), first_part_number(2)), (None, None, Some(1)));
        let stored = 12 * (8 * MIB + 3584);
        let r = WholeRead::from_first_response(stored, None, 8 * MIB, 1).unwrap();
        assert_eq!((r.stored_len(), r.first_len(), r.step(), r.range_count()), (stored, stored, 8 * MIB, 0));
        assert_eq!(r.ranges().next(), None);
        // A server that answered with a part of it anyway: the rest by range.
        let r = WholeRead::from_first_response(10, Some("bytes 0-9/25"), 8, 1).unwrap();
        assert_eq!(r.ranges().collect::<Vec<_>>(), [(10, 18), (18, 25)]);
    }

    #[test]
    fn small_and_empty_objects_need_no_more_requests() {
        let r = WholeRead::from_first_response(10, Some("bytes 0-9/10"), 8 * MIB, 4).unwrap();
        assert_eq!((r.stored_len(), r.first_len(), r.range_count()), (10, 10, 0));
        let e = WholeRead::from_first_response(0, None, 8 * MIB, 4).unwrap();
        assert_eq!((e.stored_len(), e.first_len(), e.range_count()), (0, 0, 0));
        assert_eq!(e.ranges().next(), None);
        // Garage's answer to partNumber=1 of an object with no stored bytes.
        let g = WholeRead::from_first_response(0, Some("bytes 0-18446744073709551615/0"), 8 * MIB, 4).unwrap();
        assert_eq!((g.stored_len(), g.first_len(), g.range_count()), (0, 0, 0));
        assert_eq!(
            WholeRead::from_first_response(1, Some("bytes 0-18446744073709551615/0"), 8 * MIB, 4),
            Err(Error::TrailingData)
        );
    }

    #[test]
    fn inconsistent_responses_are_refused() {
        let m = 8 * MIB;
        for bad in [
            "bytes 5-9/10",
            "bytes 0-10/10",
            "bytes 0-9/*",
            "bytes=0-9/10",
            "bytes 0-9",
            "bytes -9/10",
            "bytes 9-0/10",
            "bytes 0-+9/10",
        ] {
            for c in [1, 4] {
                assert_eq!(WholeRead::from_first_response(10, Some(bad), m, c), Err(Error::InvalidParameter), "{bad}");
            }
        }
        assert_eq!(WholeRead::from_first_response(9, Some("bytes 0-9/10"), m, 4), Err(Error::Truncated));
        assert_eq!(WholeRead::from_first_response(11, Some("bytes 0-9/10"), m, 4), Err(Error::TrailingData));
        assert_eq!(WholeRead::from_first_response(10, None, 0, 4), Err(Error::InvalidParameter));
        assert_eq!(WholeRead::from_first_response(10, None, 0, 1), Err(Error::InvalidParameter));
    }

    #[test]
    fn ranges_cover_the_stored_bytes_once_in_order() {
        for (first, stored, part) in [(5u64, 17u64, 4u64), (3, 3, 1), (7, 100, 3), (1, u64::MAX, u64::MAX / 3)] {
            let cr = alloc::format!("bytes 0-{}/{stored}", first - 1);
            let r = WholeRead::from_first_response(first, Some(&cr), part, 4).unwrap();
            let mut at = r.first_len();
            let mut n = 0;
            for (a, b) in r.ranges().take(10) {
                assert_eq!(a, at);
                assert!(b > a && b - a <= r.step());
                at = b;
                n += 1;
            }
            if r.range_count() <= 10 {
                assert_eq!((at, n), (stored, r.range_count()));
            }
        }
    }
}
