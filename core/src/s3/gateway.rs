//! An S3 endpoint that encrypts, as data (SPEC.md §18): what a gateway answers a client
//! that speaks plain S3 and which backend keys it touches, decided once here so that no
//! server crate holds a rule of the format.
//!
//! The gateway itself (in the `isec` command) parses requests, checks signatures and moves
//! bytes; this module says which keys are the format's own, what size and ETag a listing
//! shows for a stored object, which client part numbers and ETags complete an upload and
//! into which segment table, and how conditional headers evaluate.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::frame::segment_pt_len;
use crate::legacy::LegacyMetadata;
use crate::limits::MAX_PARTS;
use crate::metadata::{self, META_ETAG};
use crate::nonce::Prefix;
use crate::segment_table::TableEntry;
use base64ct::{Base64UrlUnpadded, Encoding};

/// S3's smallest part, except the last (CompleteMultipartUpload answers `EntityTooSmall`).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// S3's budget for an object's user metadata, keys and values (`MetadataTooLarge` above).
pub const METADATA_BUDGET: usize = 2048;

/// The Content-Encoding to store for a request sent with `value`: without the
/// `aws-chunked` token, which names the request's transfer framing, not the object (S3
/// drops it too). `None` when nothing else is left.
#[must_use]
pub fn stored_content_encoding(value: &str) -> Option<String> {
    let kept: Vec<&str> =
        value.split(',').map(str::trim).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked")).collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// Whether `key` is one of the format's own objects ([`metadata::is_sidecar_key`]), hidden
/// from clients: a listing leaves it out and a request naming it is refused.
#[must_use]
pub fn is_internal_key(key: &str) -> bool {
    metadata::is_sidecar_key(key)
}

/// The keys a client's DeleteObject removes: the object and the sidecars only it can own.
/// The table sidecar is keyed by the object, and so is the previous proxy's object-keyed
/// sidecar; a generation-keyed legacy sidecar may be shared by copies, so it is kept.
#[must_use]
pub fn delete_keys(key: &str) -> [String; 3] {
    [key.to_string(), metadata::table_sidecar_key(key), metadata::legacy_sidecar_key(key)]
}

/// The ETag a client was given for the object, from its metadata: the gateway's
/// `isec-etag`, else the previous proxy's `client-etag`. Bare (no quotes).
#[must_use]
pub fn client_etag<'a>(meta: &'a [(&str, &str)]) -> Option<&'a str> {
    metadata::get(meta, META_ETAG)
        .or_else(|| metadata::get(meta, "client-etag"))
        .map(|e| e.trim_matches('"'))
        .filter(|e| !e.is_empty())
}

/// The ETag to show for an object whose client ETag is not known: the backend's, marked as
/// a one-part multipart ETag so that no client takes it for the MD5 of what it reads
/// (clients skip the hash comparison for such ETags rather than fail).
#[must_use]
pub fn opaque_etag(backend_etag: &str) -> String {
    let bare = backend_etag.trim_matches('"');
    let base = bare.split('-').next().unwrap_or(bare);
    alloc::format!("{base}-1")
}

/// The plaintext size a listing shows for an object stored as `stored` bytes, when only the
/// listing is known: exact for single- and parts-layout objects of frame size `frame`, and
/// for table-layout objects whose parts but the last are whole frames. `None` when no
/// plaintext length encrypts to `stored` (the caller then looks the object up).
#[must_use]
pub fn listed_len(stored: u64, frame: u64) -> Option<u64> {
    segment_pt_len(stored, frame).ok()
}

/// The plaintext size of a previous-proxy object from its metadata, when it records one.
#[must_use]
pub fn legacy_listed_len(meta: &[(&str, &str)]) -> Option<u64> {
    LegacyMetadata::from_pairs(meta).ok()?.plaintext_size()
}

/// One part of a client's multipart upload as the gateway stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    /// Plaintext bytes the client sent.
    pub pt_len: u64,
    /// Nonce prefix of this encryption of the part (the segment table records it).
    pub prefix: Prefix,
    /// The ETag the client was given: hex MD5 of the part's plaintext.
    pub client_etag: String,
    /// The ETag the backend gave the encrypted part.
    pub backend_etag: String,
}

impl PartRecord {
    /// The record's name under [`part_records_prefix`]: every field in the key itself, so
    /// one listing gives a gateway all of an upload's parts:
    /// `<part, 5 digits>.<plaintext length>.<prefix, base64url>.<client ETag>.<backend ETag>`.
    #[must_use]
    pub fn record_name(&self, n: u32) -> String {
        let prefix = Base64UrlUnpadded::encode_string(self.prefix.as_bytes());
        let backend = self.backend_etag.trim_matches('"');
        alloc::format!("{n:05}.{}.{prefix}.{}.{backend}", self.pt_len, self.client_etag)
    }

    /// A record from its name, or `None` for a name no gateway wrote.
    #[must_use]
    pub fn parse_record_name(name: &str) -> Option<(u32, Self)> {
        let mut it = name.splitn(5, '.');
        let n: u32 = it.next()?.parse().ok().filter(|n| TableUpload::valid_part_number(*n))?;
        let pt_len: u64 = it.next()?.parse().ok()?;
        let raw = Base64UrlUnpadded::decode_vec(it.next()?).ok()?;
        let prefix = Prefix::from_bytes(raw.try_into().ok()?);
        let client_etag = it.next()?.to_string();
        let backend_etag = it.next()?.to_string();
        if client_etag.is_empty() || backend_etag.is_empty() {
            return None;
        }
        Some((n, Self { pt_len, prefix, client_etag, backend_etag }))
    }
}

/// The key of an upload's record (its object's metadata, so that any gateway sharing the
/// keyring can continue the upload): `.isec-gateway/uploads/<upload id>`. `None` for an id
/// that cannot be part of a key.
#[must_use]
pub fn upload_record_key(upload_id: &str) -> Option<String> {
    (!upload_id.is_empty() && !upload_id.contains('/'))
        .then(|| alloc::format!("{}uploads/{upload_id}", metadata::GATEWAY_PREFIX))
}

/// The prefix under which an upload's part records are kept (`<upload record key>/`).
#[must_use]
pub fn part_records_prefix(upload_id: &str) -> Option<String> {
    upload_record_key(upload_id).map(|k| k + "/")
}

/// Why a CompleteMultipartUpload is refused, as S3 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartRefusal {
    /// A listed part was not uploaded, or its ETag is not the one the client was given.
    InvalidPart,
    /// Part numbers not strictly increasing.
    InvalidPartOrder,
    /// A part other than the last is under [`MIN_PART_SIZE`].
    EntityTooSmall,
    /// No parts listed, or more than S3 allows.
    MalformedXml,
}

impl PartRefusal {
    /// S3's error code.
    #[must_use]
    pub const fn s3_code(self) -> &'static str {
        match self {
            Self::InvalidPart => "InvalidPart",
            Self::InvalidPartOrder => "InvalidPartOrder",
            Self::EntityTooSmall => "EntityTooSmall",
            Self::MalformedXml => "MalformedXML",
        }
    }
}

/// What completing an upload sends to the backend and records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// `(part number, backend ETag)` for the backend's CompleteMultipartUpload, in order.
    pub backend_parts: Vec<(u32, String)>,
    /// The segment table's entries, in order.
    pub entries: Vec<TableEntry>,
    /// The client parts' ETags in order: the upload's ETag is the MD5 of their 16-byte
    /// values, then `-` and their count.
    pub client_etags: Vec<String>,
    /// Whether every part but the last is a whole number of frames, so that the object's
    /// plaintext size follows from its stored size alone ([`listed_len`]).
    pub aligned: bool,
}

/// The parts of one client multipart upload, as the gateway uploaded them. A part uploaded
/// again replaces its record (the newest upload of a part number is the one S3 keeps).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUpload {
    parts: BTreeMap<u32, PartRecord>,
}

impl TableUpload {
    /// An upload with no parts yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `n` is a part number S3 accepts (1..=10000).
    #[must_use]
    pub const fn valid_part_number(n: u32) -> bool {
        n >= 1 && n <= MAX_PARTS
    }

    /// Records part `n` (replacing an earlier upload of it).
    pub fn record(&mut self, n: u32, part: PartRecord) {
        self.parts.insert(n, part);
    }

    /// The upload as stored records say, for the parts the backend holds: `backend` is the
    /// backend's own part list (`(number, ETag)`), and of the records for a part number
    /// (one per upload of it, by any gateway) the one naming that ETag is the part's.
    #[must_use]
    pub fn from_records(records: impl IntoIterator<Item = (u32, PartRecord)>, backend: &[(u32, &str)]) -> Self {
        let mut parts = BTreeMap::new();
        for (n, rec) in records {
            let current = backend.iter().any(|(b, e)| *b == n && same_etag(e, &rec.backend_etag));
            if current {
                parts.insert(n, rec);
            }
        }
        Self { parts }
    }

    /// The recorded parts in part-number order (ListParts).
    pub fn parts(&self) -> impl Iterator<Item = (u32, &PartRecord)> {
        self.parts.iter().map(|(n, p)| (*n, p))
    }

    /// Completes the upload with the parts the client lists (`(number, ETag)`, quotes
    /// allowed), checked as S3 checks them: strictly increasing numbers, each uploaded and
    /// with the ETag the client was given, every part but the last at least
    /// [`MIN_PART_SIZE`]. `frame`: the object's frame size.
    ///
    /// # Errors
    /// The [`PartRefusal`] S3 would answer.
    pub fn complete(&self, listed: &[(u32, &str)], frame: u64) -> Result<Completion, PartRefusal> {
        if listed.is_empty() || listed.len() > MAX_PARTS as usize {
            return Err(PartRefusal::MalformedXml);
        }
        let mut out = Completion {
            backend_parts: Vec::with_capacity(listed.len()),
            entries: Vec::with_capacity(listed.len()),
            client_etags: Vec::with_capacity(listed.len()),
            aligned: true,
        };
        let mut prev = 0u32;
        for (i, &(n, etag)) in listed.iter().enumerate() {
            if n <= prev {
                return Err(PartRefusal::InvalidPartOrder);
            }
            prev = n;
            let part = self.parts.get(&n).ok_or(PartRefusal::InvalidPart)?;
            if !same_etag(etag, &part.client_etag) {
                return Err(PartRefusal::InvalidPart);
            }
            let last = i + 1 == listed.len();
            if !last && part.pt_len < MIN_PART_SIZE {
                return Err(PartRefusal::EntityTooSmall);
            }
            if !last && (frame == 0 || part.pt_len % frame != 0) {
                out.aligned = false;
            }
            out.backend_parts.push((n, part.backend_etag.clone()));
            out.entries.push((n, part.pt_len, part.prefix));
            out.client_etags.push(part.client_etag.clone());
        }
        Ok(out)
    }
}

/// Where a completed upload's segment table goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TablePlacement {
    /// In the `isec-table` metadata value.
    Inline,
    /// In the `<key>.isec-table` sidecar, written before the upload completes (a table
    /// over the metadata budget, or parts not aligned to frames: the sidecar is also how a
    /// listing learns that the size formula does not hold).
    Sidecar,
}

/// Where to put a table of `table_len` encoded bytes next to `meta_len` bytes of other
/// metadata, under S3's metadata budget of `budget` bytes.
#[must_use]
pub fn table_placement(meta_len: usize, table_len: usize, aligned: bool, budget: usize) -> TablePlacement {
    let inline = metadata::META_TABLE.len() + table_len.div_ceil(3) * 4;
    if aligned && meta_len + inline <= budget { TablePlacement::Inline } else { TablePlacement::Sidecar }
}

/// What a conditional read answers (RFC 9110 §13.2.2, as S3 applies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the request.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// A read's conditional headers, as sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions<'a> {
    /// `If-Match`: a list of ETags or `*`.
    pub if_match: Option<&'a str>,
    /// `If-None-Match`: a list of ETags or `*`.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`, in seconds since the epoch.
    pub if_modified_since: Option<u64>,
    /// `If-Unmodified-Since`, in seconds since the epoch.
    pub if_unmodified_since: Option<u64>,
}

impl Conditions<'_> {
    /// Evaluates the conditions against the object's client ETag (bare) and last-modified
    /// time (seconds since the epoch), in RFC 9110's order: If-Match, else
    /// If-Unmodified-Since; then If-None-Match, else If-Modified-Since.
    #[must_use]
    pub fn evaluate(&self, etag: &str, last_modified: u64) -> Precondition {
        match (self.if_match, self.if_unmodified_since) {
            (Some(list), _) if !matches_any(list, etag) => return Precondition::Failed,
            (None, Some(t)) if last_modified > t => return Precondition::Failed,
            _ => {}
        }
        match (self.if_none_match, self.if_modified_since) {
            (Some(list), _) if matches_any(list, etag) => Precondition::NotModified,
            (None, Some(t)) if last_modified <= t => Precondition::NotModified,
            _ => Precondition::Proceed,
        }
    }
}

/// Whether an ETag list header (`"a", "b"`, `W/"c"` or `*`) names `etag`.
fn matches_any(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|e| e == "*" || same_etag(e.trim_start_matches("W/"), etag))
}

/// ETags compared without their quotes.
fn same_etag(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().trim_matches('"'), b.trim().trim_matches('"'));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pt_len: u64, etag: &str) -> PartRecord {
        PartRecord {
            pt_len,
            prefix: Prefix::from_bytes([0; 7]),
            client_etag: etag.into(),
            backend_etag: alloc::format!("b{etag}"),
        }
    }

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn internal_keys_are_the_formats_own() {
        assert!(is_internal_key("a/b.isec-table"));
        assert!(is_internal_key(".s3proxy-internal/x.meta"));
        assert!(is_internal_key(".isec-gateway/uploads/1"));
        assert!(!is_internal_key("a/b.isec-tables"));
        assert!(!is_internal_key("isec-table"));
        assert_eq!(delete_keys("k")[1], "k.isec-table");
        assert_eq!(delete_keys("k")[2], ".s3proxy-internal/k.meta");
    }

    #[test]
    fn client_etag_prefers_the_gateways_and_opaque_never_looks_like_an_md5() {
        assert_eq!(client_etag(&[("isec-etag", "abc"), ("client-etag", "\"def\"")]), Some("abc"));
        assert_eq!(client_etag(&[("client-etag", "\"def\"")]), Some("def"));
        assert_eq!(client_etag(&[("client-etag", "\"\"")]), None);
        assert_eq!(opaque_etag("\"0123\""), "0123-1");
        assert_eq!(opaque_etag("\"0123-4\""), "0123-1");
    }

    #[test]
    fn listed_len_inverts_the_frame_overhead() {
        assert_eq!(listed_len(28, 65536), Some(0));
        assert_eq!(listed_len(65536 + 28, 65536), Some(65536));
        assert_eq!(listed_len(65536 + 28 + 29, 65536), Some(65537));
        assert_eq!(listed_len(65536 + 28 + 28, 65536), None);
        assert_eq!(listed_len(10, 65536), None);
    }

    #[test]
    fn complete_checks_order_etags_and_sizes() {
        let mut up = TableUpload::new();
        up.record(1, rec(5 * MIB, "x"));
        up.record(1, rec(5 * MIB, "a"));
        up.record(2, rec(7 * MIB + 3, "b"));
        up.record(3, rec(1, "c"));
        let done = up.complete(&[(1, "\"a\""), (2, "b"), (3, "c")], 65536).unwrap();
        assert_eq!(done.backend_parts, [(1, "ba".to_string()), (2, "bb".into()), (3, "bc".into())]);
        assert_eq!(done.entries[1], (2, 7 * MIB + 3, Prefix::from_bytes([0; 7])));
        assert_eq!(done.client_etags, ["a", "b", "c"]);
        assert!(!done.aligned);
        assert!(up.complete(&[(1, "a"), (3, "c")], 65536).unwrap().aligned);
        assert_eq!(up.complete(&[(1, "x")], 65536), Err(PartRefusal::InvalidPart));
        assert_eq!(up.complete(&[(4, "a")], 65536), Err(PartRefusal::InvalidPart));
        assert_eq!(up.complete(&[(2, "b"), (1, "a")], 65536), Err(PartRefusal::InvalidPartOrder));
        assert_eq!(up.complete(&[(1, "a"), (1, "a")], 65536), Err(PartRefusal::InvalidPartOrder));
        assert_eq!(up.complete(&[(3, "c"), (4, "d")], 65536), Err(PartRefusal::EntityTooSmall));
        assert_eq!(up.complete(&[], 65536), Err(PartRefusal::MalformedXml));
        assert_eq!(PartRefusal::EntityTooSmall.s3_code(), "EntityTooSmall");
        assert!(TableUpload::valid_part_number(10_000) && !TableUpload::valid_part_number(0));
    }

    #[test]
    fn aws_chunked_is_not_stored_as_a_content_encoding() {
        assert_eq!(stored_content_encoding("aws-chunked"), None);
        assert_eq!(stored_content_encoding("aws-chunked, gzip").as_deref(), Some("gzip"));
        assert_eq!(stored_content_encoding("gzip,br").as_deref(), Some("gzip,br"));
        assert_eq!(stored_content_encoding(" , "), None);
    }

    #[test]
    fn part_records_round_trip_through_their_names_and_the_backend_picks_the_current_one() {
        let a = PartRecord {
            pt_len: 5 * MIB + 3,
            prefix: Prefix::from_bytes([250, 1, 2, 3, 4, 5, 255]),
            client_etag: "0123abcd".into(),
            backend_etag: "\"beef\"".into(),
        };
        let name = a.record_name(7);
        assert_eq!(name, "00007.5242883.-gECAwQF_w.0123abcd.beef");
        let (n, back) = PartRecord::parse_record_name(&name).unwrap();
        assert_eq!((n, back.pt_len, back.prefix, back.backend_etag.as_str()), (7, a.pt_len, a.prefix, "beef"));
        for bad in
            ["", "7", "00000.1.AAAAAAAAAA.x.y", "00001.1.AAAA.x.y", "00001.x.AAAAAAAAAA.x.y", "00001.1.AAAAAAAAAA..y"]
        {
            assert_eq!(PartRecord::parse_record_name(bad), None, "{bad}");
        }
        let older = PartRecord { backend_etag: "old".into(), ..a.clone() };
        let up = TableUpload::from_records([(7, older), (7, back), (8, rec(1, "z"))], &[(7, "\"beef\"")]);
        let parts: Vec<(u32, &str)> = up.parts().map(|(n, p)| (n, p.backend_etag.as_str())).collect();
        assert_eq!(parts, [(7, "beef")]);
        assert_eq!(upload_record_key("abc").as_deref(), Some(".isec-gateway/uploads/abc"));
        assert_eq!(part_records_prefix("abc").as_deref(), Some(".isec-gateway/uploads/abc/"));
        assert_eq!(upload_record_key("a/b"), None);
        assert!(is_internal_key(&upload_record_key("abc").unwrap()));
    }

    #[test]
    fn tables_go_inline_only_when_aligned_and_small() {
        assert_eq!(table_placement(300, 100, true, 2048), TablePlacement::Inline);
        assert_eq!(table_placement(300, 100, false, 2048), TablePlacement::Sidecar);
        assert_eq!(table_placement(300, 1400, true, 2048), TablePlacement::Sidecar);
    }

    #[test]
    fn conditions_follow_rfc_9110_order() {
        let c =
            |m, n, ms, us| Conditions { if_match: m, if_none_match: n, if_modified_since: ms, if_unmodified_since: us };
        let e = "abc";
        assert_eq!(c(None, None, None, None).evaluate(e, 10), Precondition::Proceed);
        assert_eq!(c(Some("\"abc\""), None, None, None).evaluate(e, 10), Precondition::Proceed);
        assert_eq!(c(Some("\"x\", \"abc\""), None, None, None).evaluate(e, 10), Precondition::Proceed);
        assert_eq!(c(Some("*"), None, None, None).evaluate(e, 10), Precondition::Proceed);
        assert_eq!(c(Some("\"x\""), None, None, None).evaluate(e, 10), Precondition::Failed);
        // If-Match true makes If-Unmodified-Since irrelevant.
        assert_eq!(c(Some("abc"), None, None, Some(5)).evaluate(e, 10), Precondition::Proceed);
        assert_eq!(c(None, None, None, Some(5)).evaluate(e, 10), Precondition::Failed);
        assert_eq!(c(None, None, None, Some(10)).evaluate(e, 10), Precondition::Proceed);
        assert_eq!(c(None, Some("W/\"abc\""), None, None).evaluate(e, 10), Precondition::NotModified);
        assert_eq!(c(None, Some("\"x\""), Some(20), None).evaluate(e, 10), Precondition::Proceed);
        assert_eq!(c(None, None, Some(10), None).evaluate(e, 10), Precondition::NotModified);
        assert_eq!(c(None, None, Some(9), None).evaluate(e, 10), Precondition::Proceed);
    }
}
