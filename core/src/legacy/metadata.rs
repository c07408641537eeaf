//! The proxy's S3 user metadata (SPEC.md §11).
//!
//! These values arrive unauthenticated in a HEAD response. They are parsed strictly (a
//! value that does not parse is an error, not a default) because each one steers the
//! reader: which layout to expect, where the sidecar is, how long the plaintext must be.

use alloc::format;
use alloc::string::{String, ToString};

use base64ct::{Base64, Encoding};

use crate::error::{Error, Result};
use crate::legacy::{INTERNAL_PREFIX, WRAPPED_DEK_LEN};
use crate::limits::MAX_PLAINTEXT_SIZE;

/// Metadata names, lower-case and without `x-amz-meta-`.
const ISEC: &str = "isec";
const KID: &str = "isec-kid";
const CLIENT_ETAG: &str = "client-etag";
const PLAINTEXT_SIZE: &str = "plaintext-size";
const FORMAT: &str = "s3proxy-format";
const GENERATION: &str = "s3proxy-generation";
const NAMES: [&str; 6] = [ISEC, KID, CLIENT_ETAG, PLAINTEXT_SIZE, FORMAT, GENERATION];

/// Longest key id or ETag accepted. Real ones are 20 (AWS key ids) and 32-40 characters;
/// the bound only stops a hostile header from being carried around.
const MAX_TEXT: usize = 256;

/// What `s3proxy-format` says the object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyFormat {
    /// `single-v3`: one seal, DEK in `isec` (what the later proxy's copy path writes).
    SingleV3,
    /// `multipart-v3`: staged multipart; the DEK and sizes are in the generation sidecar.
    MultipartV3,
}

impl LegacyFormat {
    /// The metadata value.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::SingleV3 => "single-v3",
            Self::MultipartV3 => "multipart-v3",
        }
    }
}

/// The proxy's user metadata on one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyMetadata {
    isec: Option<String>,
    kid: Option<String>,
    client_etag: Option<String>,
    plaintext_size: Option<u64>,
    format: Option<LegacyFormat>,
    generation: Option<[u8; 32]>,
}

impl LegacyMetadata {
    /// Parses metadata through a lookup by name (`isec`, `isec-kid`, `client-etag`,
    /// `plaintext-size`, `s3proxy-format`, `s3proxy-generation`), so callers can pass
    /// whatever map their S3 client returns without copying it.
    ///
    /// # Errors
    /// [`Error::MalformedLegacy`] if a present value does not parse: `isec` not standard
    /// base64 of 40 bytes, a size that is not a decimal number within the format's limit, an
    /// unknown format, a generation that is not 64 hex digits, `multipart-v3` without a
    /// generation, or text longer than 256 bytes.
    pub fn from_lookup<'a, F>(mut lookup: F) -> Result<Self>
    where
        F: FnMut(&str) -> Option<&'a str>,
    {
        let mut values: [Option<&'a str>; 6] = [None; 6];
        for (slot, name) in values.iter_mut().zip(NAMES) {
            *slot = lookup(name);
        }
        Self::build(values)
    }

    /// Parses metadata from (name, value) pairs as an S3 client lists them. Names are matched
    /// case-insensitively, with or without the `x-amz-meta-` prefix; other names are ignored.
    ///
    /// # Errors
    /// As [`LegacyMetadata::from_lookup`]; also [`Error::MalformedLegacy`] if a name occurs
    /// twice, since which copy the proxy meant cannot be known.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Result<Self> {
        let mut values: [Option<&str>; 6] = [None; 6];
        for (k, v) in pairs {
            let name = strip_meta_prefix(k.as_ref().trim());
            let Some(slot) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)).and_then(|i| values.get_mut(i))
            else {
                continue;
            };
            if slot.is_some() {
                return Err(Error::MalformedLegacy);
            }
            *slot = Some(v.as_ref());
        }
        Self::build(values)
    }

    fn build(values: [Option<&str>; 6]) -> Result<Self> {
        let [isec, kid, client_etag, plaintext_size, format, generation] = values.map(|v| v.map(str::trim));
        let isec = isec.map(|v| check_wrapped_b64(v).map(|()| v.to_string())).transpose()?;
        let kid = kid.map(text).transpose()?;
        let client_etag = client_etag.map(text).transpose()?;
        let plaintext_size = plaintext_size.map(parse_size).transpose()?;
        let format = format
            .map(|v| match v {
                "single-v3" => Ok(LegacyFormat::SingleV3),
                "multipart-v3" => Ok(LegacyFormat::MultipartV3),
                _ => Err(Error::MalformedLegacy),
            })
            .transpose()?;
        let generation = generation.map(parse_hex32).transpose()?;
        if format == Some(LegacyFormat::MultipartV3) && generation.is_none() {
            return Err(Error::MalformedLegacy);
        }
        Ok(Self { isec, kid, client_etag, plaintext_size, format, generation })
    }

    /// Whether anything marks the object as the proxy's: a wrapped DEK or a format tag. A
    /// streamed PUT carries neither; only its sidecar tells.
    #[must_use]
    pub fn is_legacy(&self) -> bool {
        self.isec.is_some() || self.format.is_some()
    }

    /// The wrapped DEK as the metadata carries it (standard base64 of 40 bytes).
    #[must_use]
    pub fn wrapped_dek_b64(&self) -> Option<&str> {
        self.isec.as_deref()
    }

    /// The writer's key id (`isec-kid`), absent on the oldest objects.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Hex MD5 of the plaintext (or a multipart ETag), as the proxy told its clients.
    #[must_use]
    pub fn client_etag(&self) -> Option<&str> {
        self.client_etag.as_deref()
    }

    /// The plaintext length the proxy recorded.
    #[must_use]
    pub fn plaintext_size(&self) -> Option<u64> {
        self.plaintext_size
    }

    /// The `s3proxy-format` tag.
    #[must_use]
    pub fn format(&self) -> Option<LegacyFormat> {
        self.format
    }

    /// The staged upload's generation (`s3proxy-generation`).
    #[must_use]
    pub fn generation(&self) -> Option<&[u8; 32]> {
        self.generation.as_ref()
    }

    /// The bucket key of the sidecar this object needs, or `None` when the metadata alone
    /// suffices (a single PUT). Without `isec` or a format tag the object is either a
    /// streamed PUT or not the proxy's at all; only fetching the returned key tells which.
    #[must_use]
    pub fn sidecar_key(&self, object_key: &str) -> Option<String> {
        match (self.format, self.generation) {
            (Some(LegacyFormat::MultipartV3), Some(g)) => {
                Some(format!("{INTERNAL_PREFIX}generations/{}.meta", hex(&g)))
            }
            _ if self.isec.is_some() => None,
            _ => Some(format!("{INTERNAL_PREFIX}{object_key}.meta")),
        }
    }
}

fn strip_meta_prefix(name: &str) -> &str {
    const PREFIX: &str = "x-amz-meta-";
    match name.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => name.get(PREFIX.len()..).unwrap_or(name),
        _ => name,
    }
}

fn text(v: &str) -> Result<String> {
    if v.len() > MAX_TEXT {
        return Err(Error::MalformedLegacy);
    }
    Ok(v.to_string())
}

/// Checks that `v` is standard padded base64 of exactly one wrapped 32-byte DEK.
pub(crate) fn check_wrapped_b64(v: &str) -> Result<()> {
    decode_wrapped(v).map(|_| ())
}

/// Decodes a wrapped DEK from the proxy's base64.
pub(crate) fn decode_wrapped(v: &str) -> Result<[u8; WRAPPED_DEK_LEN]> {
    let mut buf = [0u8; WRAPPED_DEK_LEN];
    let n = Base64::decode(v.trim(), &mut buf).map_err(|_| Error::MalformedLegacy)?.len();
    if n != WRAPPED_DEK_LEN {
        return Err(Error::MalformedLegacy);
    }
    Ok(buf)
}

/// A decimal size: digits only (Python's `str(int)`), within the format's limit.
pub(crate) fn parse_size(v: &str) -> Result<u64> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::MalformedLegacy);
    }
    let n: u64 = v.parse().map_err(|_| Error::MalformedLegacy)?;
    if n > MAX_PLAINTEXT_SIZE {
        return Err(Error::MalformedLegacy);
    }
    Ok(n)
}

/// 64 hex digits (either case) as 32 bytes.
pub(crate) fn parse_hex32(v: &str) -> Result<[u8; 32]> {
    let b = v.as_bytes();
    if b.len() != 64 {
        return Err(Error::MalformedLegacy);
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = nibble(pair.first().copied())?;
        let lo = nibble(pair.get(1).copied())?;
        *o = (hi << 4) | lo;
    }
    Ok(out)
}

fn nibble(c: Option<u8>) -> Result<u8> {
    match c {
        Some(c @ b'0'..=b'9') => Ok(c - b'0'),
        Some(c @ b'a'..=b'f') => Ok(c - b'a' + 10),
        Some(c @ b'A'..=b'F') => Ok(c - b'A' + 10),
        _ => Err(Error::MalformedLegacy),
    }
}

/// Lower-case hex, as the proxy writes generations.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for n in [b >> 4, b & 0x0f] {
            s.push(char::from(DIGITS.get(usize::from(n)).copied().unwrap_or(b'0')));
        }
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ISEC_V: &str = "n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvWoA==";
    const GEN: &str = "718d67941541df9c560f6a3bca2ae74bfddaa78e5006a98c31a7b7cd38f2fece";

    #[test]
    fn pairs_with_prefix_and_case() {
        let m = LegacyMetadata::from_pairs(&[
            ("X-Amz-Meta-Isec", ISEC_V),
            ("isec-kid", "AKIAVECTORTEST000001"),
            ("plaintext-size", "0"),
            ("content-type", "x"),
        ])
        .unwrap();
        assert_eq!(m.wrapped_dek_b64(), Some(ISEC_V));
        assert_eq!(m.kid(), Some("AKIAVECTORTEST000001"));
        assert_eq!(m.plaintext_size(), Some(0));
        assert!(m.is_legacy());
        assert_eq!(m.sidecar_key("a/b"), None);
    }

    #[test]
    fn duplicates_and_bad_values_are_malformed() {
        let dup = LegacyMetadata::from_pairs(&[("isec", ISEC_V), ("x-amz-meta-isec", ISEC_V)]);
        assert_eq!(dup, Err(Error::MalformedLegacy));
        for (k, v) in [
            ("isec", "n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvW"),
            ("isec", "not base64!"),
            ("plaintext-size", "-1"),
            ("plaintext-size", "+1"),
            ("plaintext-size", "1e3"),
            ("plaintext-size", "99999999999999999999999"),
            ("s3proxy-format", "multipart-v9"),
            ("s3proxy-generation", "abc"),
            ("s3proxy-format", "multipart-v3"),
        ] {
            assert_eq!(LegacyMetadata::from_pairs(&[(k, v)]), Err(Error::MalformedLegacy), "{k}={v}");
        }
    }

    #[test]
    fn sidecar_keys() {
        let staged =
            LegacyMetadata::from_pairs(&[("s3proxy-format", "multipart-v3"), ("s3proxy-generation", GEN)]).unwrap();
        assert_eq!(
            staged.sidecar_key("k").as_deref(),
            Some(".s3proxy-internal/generations/718d67941541df9c560f6a3bca2ae74bfddaa78e5006a98c31a7b7cd38f2fece.meta")
        );
        let streamed = LegacyMetadata::from_lookup(|_| None).unwrap();
        assert!(!streamed.is_legacy());
        assert_eq!(
            streamed.sidecar_key("path/to/object.bin").as_deref(),
            Some(".s3proxy-internal/path/to/object.bin.meta")
        );
    }
}
