//! Byte ranges as HTTP writes them (RFC 9110 §14.1.2): `a-b`, `a-` (from `a` to the end) and
//! `-n` (the last `n` bytes), resolved against an object's plaintext length before any frame
//! is planned (SPEC.md §7). Kept apart from [`crate::shape`] because a range's text and its
//! meaning at the end of the object are a user-facing contract, not geometry.

use crate::error::{Error, Result};

/// A plaintext byte range, before the object's length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last`, both inclusive.
    Closed {
        /// First byte.
        first: u64,
        /// Last byte (inclusive); clamped to the object's last byte.
        last: u64,
    },
    /// `first-`: from `first` to the end.
    From(u64),
    /// `-n`: the last `n` bytes (the whole object if it is shorter).
    Suffix(u64),
}

impl ByteRange {
    /// Parses `a-b`, `a-` or `-n` (decimal digits only, as in an HTTP `Range` header).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for any other text, and for `a-b` with `b < a`.
    pub fn parse(text: &str) -> Result<Self> {
        let (a, b) = text.split_once('-').ok_or(Error::InvalidParameter)?;
        let num = |s: &str| -> Result<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(Error::InvalidParameter);
            }
            s.parse().map_err(|_| Error::InvalidParameter)
        };
        match (a.is_empty(), b.is_empty()) {
            (true, true) => Err(Error::InvalidParameter),
            (true, false) => Ok(Self::Suffix(num(b)?)),
            (false, true) => Ok(Self::From(num(a)?)),
            (false, false) => {
                let (first, last) = (num(a)?, num(b)?);
                if last < first {
                    return Err(Error::InvalidParameter);
                }
                Ok(Self::Closed { first, last })
            }
        }
    }

    /// The range `[start, end)` within an object of `len` bytes: an end past the object is
    /// clamped to it, as HTTP does.
    ///
    /// # Errors
    /// [`Error::RangeNotSatisfiable`] when the range starts at or past the end (every range
    /// of an empty object, and `-0`); [`Error::InvalidParameter`] for `a-b` with `b < a`.
    pub fn resolve(self, len: u64) -> Result<(u64, u64)> {
        let (start, end) = match self {
            Self::Closed { first, last } if last < first => return Err(Error::InvalidParameter),
            Self::Closed { first, last } => (first, last.saturating_add(1).min(len)),
            Self::From(first) => (first, len),
            Self::Suffix(n) => (len - n.min(len), len),
        };
        if start >= end {
            return Err(Error::RangeNotSatisfiable);
        }
        Ok((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_resolve_like_http() {
        let r = |t: &str, len: u64| ByteRange::parse(t).and_then(|r| r.resolve(len));
        assert_eq!(r("0-0", 10), Ok((0, 1)));
        assert_eq!(r("2-5", 10), Ok((2, 6)));
        assert_eq!(r("2-500", 10), Ok((2, 10)));
        assert_eq!(r("9-", 10), Ok((9, 10)));
        assert_eq!(r("-3", 10), Ok((7, 10)));
        assert_eq!(r("-30", 10), Ok((0, 10)));
        assert_eq!(r("18446744073709551615-18446744073709551615", u64::MAX), Err(Error::RangeNotSatisfiable));
        for past in ["10-", "10-20", "-0", "11-11"] {
            assert_eq!(r(past, 10), Err(Error::RangeNotSatisfiable), "{past}");
        }
        for any in ["0-", "-1", "0-0"] {
            assert_eq!(r(any, 0), Err(Error::RangeNotSatisfiable), "{any} of an empty object");
        }
        for bad in ["", "-", "5", "5-3", "a-b", "1-2-3", "+1-2", " 1-2", "1-", "99999999999999999999-"] {
            let want = if bad == "1-" { Ok(ByteRange::From(1)) } else { Err(Error::InvalidParameter) };
            assert_eq!(ByteRange::parse(bad), want, "{bad:?}");
        }
        assert_eq!(ByteRange::Closed { first: 3, last: 2 }.resolve(10), Err(Error::InvalidParameter));
    }
}
