//! What an object's S3 user metadata says it is (SPEC.md §3.2, §11.1).
//!
//! isec and the legacy proxy share the metadata keys `isec` and `isec-kid`, so telling them
//! apart is a rule of the format, written once here for every caller: the copy decision,
//! the bucket scan and the bindings' S3 helpers.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64ct::{Base64, Encoding};

use crate::envelope::{Envelope, META_ENVELOPE, META_KID};
use crate::error::Error;

/// Metadata key of a small segment table stored inline (SPEC.md §6.3).
pub const META_TABLE: &str = "isec-table";
/// Suffix of the sidecar object holding a segment table: `<key>.isec-table`.
pub const TABLE_SIDECAR_SUFFIX: &str = ".isec-table";
/// Metadata key of the ETag an S3 client was given for the object's plaintext (the
/// gateway's, SPEC.md §18.3): the hex MD5 of the plaintext, or `hex-N` for a multipart
/// upload. Not authenticated: it only tells a client what it already computed.
pub const META_ETAG: &str = "isec-etag";
/// Metadata keys isec owns on its objects; a metadata REPLACE carries them over.
pub const ISEC_KEYS: [&str; 4] = [META_ENVELOPE, META_KID, META_TABLE, META_ETAG];
/// Metadata keys the legacy proxy owns on its objects.
pub const LEGACY_KEYS: [&str; 6] =
    ["isec", "isec-kid", "client-etag", "plaintext-size", "s3proxy-format", "s3proxy-generation"];
/// The legacy proxy's sidecar for an object key: `.s3proxy-internal/<key>.meta`.
pub const LEGACY_SIDECAR_PREFIX: &str = ".s3proxy-internal/";

/// Prefix of the records `isec gateway` keeps in a bucket (SPEC.md §18.4).
pub const GATEWAY_PREFIX: &str = ".isec-gateway/";

/// Whether `key` is one of the format's own objects, never an object of its own: a segment
/// table sidecar, a previous-proxy sidecar, or a gateway record. Bucket jobs skip them,
/// scans count them as sidecars, the gateway hides them.
#[must_use]
pub fn is_sidecar_key(key: &str) -> bool {
    key.ends_with(TABLE_SIDECAR_SUFFIX) || key.starts_with(LEGACY_SIDECAR_PREFIX) || key.starts_with(GATEWAY_PREFIX)
}

/// The legacy proxy's sidecar object key for `object_key`.
#[must_use]
pub fn legacy_sidecar_key(object_key: &str) -> String {
    alloc::format!("{LEGACY_SIDECAR_PREFIX}{object_key}.meta")
}

/// The isec segment-table sidecar key for `object_key`.
#[must_use]
pub fn table_sidecar_key(object_key: &str) -> String {
    alloc::format!("{object_key}{TABLE_SIDECAR_SUFFIX}")
}

/// Which of the legacy proxy's layouts the metadata points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyKind {
    /// Wrapped DEK in metadata: a single seal (or a v3 single object).
    Single,
    /// `s3proxy-format: multipart-v3`: a generation-keyed sidecar holds the parts.
    Staged {
        /// Hex SHA-256 of the wrapped DEK, naming the sidecar.
        generation: String,
    },
    /// No metadata at all; the DEK and parts live in the object-keyed sidecar.
    SidecarOnly,
}

impl LegacyKind {
    /// Stable name: `single`, `staged` or `sidecar_only`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Staged { .. } => "staged",
            Self::SidecarOnly => "sidecar_only",
        }
    }

    /// The generation (hex) naming a staged object's sidecar.
    #[must_use]
    pub fn generation(&self) -> Option<&str> {
        match self {
            Self::Staged { generation } => Some(generation),
            _ => None,
        }
    }
}

/// An object's format as its metadata (and sidecar presence) tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectFormat {
    /// No encryption metadata.
    Plaintext,
    /// An isec object.
    Isec(alloc::boxed::Box<Envelope>),
    /// A legacy proxy object.
    Legacy {
        /// The writer's key id, where recorded.
        kid: Option<String>,
        /// Its layout.
        kind: LegacyKind,
    },
    /// Encryption metadata that does not parse: neither readable nor safe to treat as plain.
    Unreadable(Error),
}

impl ObjectFormat {
    /// Stable name of the format family.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Isec(_) => "isec",
            Self::Legacy { .. } => "legacy",
            Self::Unreadable(_) => "unreadable",
        }
    }

    /// The key id the object is under, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        match self {
            Self::Isec(e) => Some(e.kid()),
            Self::Legacy { kid, .. } => kid.as_deref(),
            _ => None,
        }
    }

    /// The decoded envelope of an isec object.
    #[must_use]
    pub fn envelope(&self) -> Option<&Envelope> {
        match self {
            Self::Isec(e) => Some(e),
            _ => None,
        }
    }

    /// The layout of a legacy object.
    #[must_use]
    pub fn legacy_kind(&self) -> Option<&LegacyKind> {
        match self {
            Self::Legacy { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// Why an unreadable object's metadata does not parse.
    #[must_use]
    pub fn error(&self) -> Option<Error> {
        match self {
            Self::Unreadable(e) => Some(*e),
            _ => None,
        }
    }
}

/// Looks a metadata key up, ignoring ASCII case (S3 returns keys lower-cased) and an
/// `x-amz-meta-` prefix.
#[must_use]
pub fn get<'a>(meta: &'a [(&str, &str)], key: &str) -> Option<&'a str> {
    meta.iter().find(|(k, _)| normalize(k) == key).map(|(_, v)| *v)
}

/// Lower-cases a metadata key and strips the `x-amz-meta-` prefix.
#[must_use]
pub fn normalize(key: &str) -> String {
    let k = key.to_ascii_lowercase();
    k.strip_prefix("x-amz-meta-").map(ToString::to_string).unwrap_or(k)
}

/// Classifies an object from its user metadata; `legacy_sidecar` says whether the legacy
/// proxy's object-keyed sidecar exists (its streamed and framed uploads keep nothing in
/// metadata).
///
/// Rule (SPEC.md §11.1): `s3proxy-format` present, or an `isec` value that is padded
/// standard base64 of exactly 40 bytes, is legacy; any other `isec` value must decode as an
/// isec envelope, else the object is unreadable.
#[must_use]
pub fn classify(meta: &[(&str, &str)], legacy_sidecar: bool) -> ObjectFormat {
    let kid = get(meta, META_KID).map(ToString::to_string);
    if let Some(fmt) = get(meta, "s3proxy-format") {
        if fmt == "multipart-v3" {
            return match get(meta, "s3proxy-generation") {
                Some(g) if g.len() == 64 && g.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    ObjectFormat::Legacy { kid, kind: LegacyKind::Staged { generation: g.to_ascii_lowercase() } }
                }
                _ => ObjectFormat::Unreadable(Error::MalformedLegacy),
            };
        }
        return ObjectFormat::Legacy { kid, kind: LegacyKind::Single };
    }
    match get(meta, META_ENVELOPE) {
        Some(v) if is_legacy_wrapped_dek(v) => ObjectFormat::Legacy { kid, kind: LegacyKind::Single },
        Some(v) => match Envelope::decode_text(v) {
            Ok(e) => ObjectFormat::Isec(alloc::boxed::Box::new(e)),
            Err(e) => ObjectFormat::Unreadable(e),
        },
        None if legacy_sidecar => ObjectFormat::Legacy { kid, kind: LegacyKind::SidecarOnly },
        None => ObjectFormat::Plaintext,
    }
}

/// Whether `v` is the legacy proxy's wrapped DEK: padded standard base64 of 40 bytes.
fn is_legacy_wrapped_dek(v: &str) -> bool {
    let mut buf = [0u8; 40];
    v.len() == 56 && v.ends_with('=') && Base64::decode(v, &mut buf).map(|b| b.len() == 40).unwrap_or(false)
}

/// Bytes S3 counts against its 2 KB user-metadata limit: keys and values in UTF-8.
#[must_use]
pub fn metadata_size(meta: &[(String, String)]) -> usize {
    meta.iter().map(|(k, v)| normalize(k).len() + v.len()).sum()
}

/// `user` metadata with the keys in `carry` set from `source`, replacing any user value
/// under a reserved key (a REPLACE built from a HEAD response would otherwise resend stale
/// envelope values).
#[must_use]
pub fn merge(user: &[(&str, &str)], carry: &[(String, String)], reserved: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = user
        .iter()
        .map(|(k, v)| (normalize(k), v.to_string()))
        .filter(|(k, _)| !reserved.contains(&k.as_str()) && !carry.iter().any(|(c, _)| c == k))
        .collect();
    out.extend(carry.iter().cloned());
    out
}

/// The user's part of an object's metadata: every key a format owns (isec's and the legacy
/// proxy's) removed, keys normalised. What a re-encrypting copy carries to its destination.
#[must_use]
pub fn user_metadata(meta: &[(&str, &str)]) -> Vec<(String, String)> {
    meta.iter()
        .map(|(k, v)| (normalize(k), v.to_string()))
        .filter(|(k, _)| !ISEC_KEYS.contains(&k.as_str()) && !LEGACY_KEYS.contains(&k.as_str()))
        .collect()
}

/// The complete metadata of a new isec object: `user` (format keys in it dropped) plus the
/// envelope's `isec` and `isec-kid`, so that every writer produces the same keys.
#[must_use]
pub fn object_metadata(user: &[(&str, &str)], envelope: &Envelope) -> Vec<(String, String)> {
    let carry = [(META_ENVELOPE.to_string(), envelope.to_text()), (META_KID.to_string(), envelope.kid().to_string())];
    let reserved: Vec<&str> = ISEC_KEYS.iter().chain(LEGACY_KEYS.iter()).copied().collect();
    merge(user, &carry, &reserved)
}

/// Where a table-layout object's segment table is (SPEC.md §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// Inline in the `isec-table` metadata value: the decoded table bytes (MAC not yet checked).
    Inline(Vec<u8>),
    /// In the sidecar object [`table_sidecar_key`] of the object's key.
    Sidecar,
}

/// Where to read a table-layout object's segment table from its metadata. The bytes are
/// only decoded from base64url here; `SegmentTable::decode` checks their MAC (before
/// `Shape::from_table` can use them).
///
/// # Errors
/// [`Error::MalformedSegmentTable`] when the inline value is not base64url, or decodes to
/// more than a table of the maximum part count can hold.
pub fn table_source(meta: &[(&str, &str)]) -> Result<TableSource, Error> {
    let Some(text) = get(meta, META_TABLE) else { return Ok(TableSource::Sidecar) };
    // 1 + 4 + 12 per entry + 32: the largest valid table; anything longer is refused unread.
    let max = 1 + 4 + 12 * crate::limits::MAX_PARTS as usize + 32;
    if text.len() > max.div_ceil(3) * 4 {
        return Err(Error::MalformedSegmentTable);
    }
    base64ct::Base64UrlUnpadded::decode_vec(text).map(TableSource::Inline).map_err(|_| Error::MalformedSegmentTable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formats_own_keys_are_sidecars() {
        for k in
            ["a.isec-table", ".s3proxy-internal/a.meta", ".isec-gateway/uploads/1", ".isec-gateway/uploads/1/00001.x"]
        {
            assert!(is_sidecar_key(k), "{k}");
        }
        for k in ["a", "a.isec-tables", "x/.isec-gateway/uploads/1", "isec-table"] {
            assert!(!is_sidecar_key(k), "{k}");
        }
    }

    #[test]
    fn accessors_name_each_variant_once() {
        let staged = ObjectFormat::Legacy { kid: None, kind: LegacyKind::Staged { generation: "ab".into() } };
        assert_eq!(staged.legacy_kind().map(LegacyKind::name), Some("staged"));
        assert_eq!(staged.legacy_kind().and_then(LegacyKind::generation), Some("ab"));
        assert_eq!(LegacyKind::Single.name(), "single");
        assert_eq!(LegacyKind::SidecarOnly.name(), "sidecar_only");
        assert_eq!(LegacyKind::SidecarOnly.generation(), None);
        assert!(staged.envelope().is_none() && staged.error().is_none());
        let bad = ObjectFormat::Unreadable(Error::MalformedEnvelope);
        assert_eq!(bad.error(), Some(Error::MalformedEnvelope));
        assert!(bad.legacy_kind().is_none() && ObjectFormat::Plaintext.envelope().is_none());
    }
}
