//! HeadObject and GetObject: the object opened as core says (isec, previous proxy, or not
//! encrypted), its plaintext length and ETag, and only the frames a range needs.

use std::time::UNIX_EPOCH;

use isec_core::legacy::{LegacyDecryptor, LegacyKey, LegacyObject};
use isec_core::s3::Opened;
use isec_core::s3::gateway::{self as rules, Conditions, Precondition};
use isec_core::shape::Shape;
use isec_core::{AwsLc, Decryptor, ObjectKey};
use s3s::dto::{
    ETag, ETagCondition, GetObjectInput, GetObjectOutput, HeadObjectInput, HeadObjectOutput, Range, Timestamp,
};
use s3s::{S3Error, S3ErrorCode, S3Response, S3Result};

use super::body;
use super::error::{self, from_fail, s3};
use super::service::Gateway;
use crate::s3::client::{Fail, sdk};
use crate::s3::object::{self, Info};

/// An object opened for reading.
pub struct Readable {
    pub info: Info,
    /// Plaintext bytes.
    pub len: u64,
    /// The ETag a client sees (bare).
    pub etag: String,
    kind: Kind,
}

enum Kind {
    Isec { key: Option<ObjectKey>, shape: Shape },
    Legacy { key: LegacyKey, object: LegacyObject },
    Plain,
}

/// The key names one of the format's own objects: hidden from clients.
pub fn hidden(key: &str) -> S3Result<()> {
    if rules::is_internal_key(key) {
        return Err(s3(S3ErrorCode::NoSuchKey, "The specified key does not exist."));
    }
    Ok(())
}

/// HEADs and opens `bucket/key`. `with_key`: open the DEK too (a read needs it; a HEAD of a
/// single- or parts-layout object does not).
pub async fn open(g: &Gateway, bucket: &str, key: &str, with_key: bool) -> S3Result<Readable> {
    hidden(key)?;
    let info = object::head(&g.c, bucket, key, None).await.map_err(not_found)?;
    let w = info.where_();
    let opened = info.opened().map_err(from_fail)?;
    let (len, kind) = match opened {
        Opened::Isec { envelope, table, .. } => {
            let key = if with_key || table.is_some() {
                Some(g.ring.open(envelope).map_err(|e| error::core(e, &format!("{w}: envelope")))?)
            } else {
                None
            };
            let shape = match &key {
                Some(k) => object::shape(k, table.as_deref(), info.size),
                None => Shape::from_ciphertext_len(envelope.header(), info.size),
            }
            .map_err(|e| error::core(e, &w))?;
            (shape.plaintext_len(), Kind::Isec { key, shape })
        }
        Opened::Legacy { object, .. } => {
            let key = g.ring.open_legacy(object, None).map_err(|e| error::core(e, &format!("{w}: legacy key")))?;
            (object.plaintext_len(), Kind::Legacy { key, object: object.clone() })
        }
        Opened::Plaintext if g.serve_plaintext => (info.size, Kind::Plain),
        Opened::Plaintext => return Err(error::core(isec_core::Error::NotEncrypted, &w)),
    };
    let meta = info.meta_view();
    let etag = match (&kind, rules::client_etag(&meta)) {
        (Kind::Plain, _) => info.etag.trim_matches('"').to_string(),
        (_, Some(e)) => e.to_string(),
        (_, None) => rules::opaque_etag(&info.etag),
    };
    Ok(Readable { len, etag, kind, info })
}

/// A backend 404 is the client's NoSuchKey.
pub fn not_found(f: Fail) -> S3Error {
    match f {
        Fail::S3 { code, .. } if code == "NotFound" || code == "NoSuchKey" => {
            s3(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
        }
        f => from_fail(f),
    }
}

fn condition_text(c: Option<&ETagCondition>) -> Option<String> {
    c.map(|c| match c {
        ETagCondition::Any => "*".to_string(),
        ETagCondition::ETag(e) => e.value().to_string(),
    })
}

fn secs(t: Option<&Timestamp>) -> Option<u64> {
    t.map(|t| u64::try_from(time::OffsetDateTime::from(t.clone()).unix_timestamp()).unwrap_or(0))
}

/// A request's conditional headers (If-Match, If-None-Match, If-Modified-Since,
/// If-Unmodified-Since, or their copy-source forms), as s3s parsed them.
pub struct Cond<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub modified_since: Option<&'a Timestamp>,
    pub unmodified_since: Option<&'a Timestamp>,
}

/// A HeadObject's or GetObject's conditional headers.
macro_rules! read_conditions {
    ($req:expr) => {
        Cond {
            if_match: $req.if_match.as_ref(),
            if_none_match: $req.if_none_match.as_ref(),
            modified_since: $req.if_modified_since.as_ref(),
            unmodified_since: $req.if_unmodified_since.as_ref(),
        }
    };
}

impl Cond<'_> {
    /// Core's evaluation against a client ETag and Last-Modified.
    pub fn evaluate(&self, etag: &str, last_modified: Option<std::time::SystemTime>) -> Precondition {
        let (m, n) = (condition_text(self.if_match), condition_text(self.if_none_match));
        let c = Conditions {
            if_match: m.as_deref(),
            if_none_match: n.as_deref(),
            if_modified_since: secs(self.modified_since),
            if_unmodified_since: secs(self.unmodified_since),
        };
        let lm = last_modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        c.evaluate(etag, lm)
    }
}

pub fn precondition_failed() -> S3Error {
    s3(S3ErrorCode::PreconditionFailed, "At least one of the preconditions you specified did not hold.")
}

impl Readable {
    /// Evaluates a read's conditions against the client ETag and Last-Modified.
    fn check(&self, c: &Cond<'_>) -> S3Result<()> {
        match c.evaluate(&self.etag, self.info.last_modified) {
            Precondition::Proceed => Ok(()),
            Precondition::NotModified => Err(S3Error::new(S3ErrorCode::NotModified)),
            Precondition::Failed => Err(precondition_failed()),
        }
    }

    fn metadata(&self) -> Option<s3s::dto::Metadata> {
        let meta = isec_core::metadata::user_metadata(&self.info.meta_view());
        (!meta.is_empty()).then(|| meta.into_iter().collect())
    }

    fn last_modified(&self) -> Option<Timestamp> {
        self.info.last_modified.map(Timestamp::from)
    }
}

pub async fn head(g: &Gateway, req: HeadObjectInput) -> S3Result<S3Response<HeadObjectOutput>> {
    if req.part_number.is_some() || req.version_id.is_some() {
        return Err(s3(S3ErrorCode::NotImplemented, "partNumber and versionId reads are not supported"));
    }
    let r = open(g, &req.bucket, &req.key, false).await?;
    r.check(&read_conditions!(req))?;
    let (len, content_range) = match &req.range {
        None => (r.len, None),
        Some(range) => {
            let span = checked(range, r.len)?;
            (span.end - span.start, Some(format!("bytes {}-{}/{}", span.start, span.end - 1, r.len)))
        }
    };
    let h = &r.info.headers;
    let out = HeadObjectOutput {
        accept_ranges: Some("bytes".into()),
        content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
        content_range,
        e_tag: Some(ETag::Strong(r.etag.clone())),
        last_modified: r.last_modified(),
        metadata: r.metadata(),
        content_type: h.content_type.clone(),
        content_encoding: h.content_encoding.clone(),
        content_disposition: h.content_disposition.clone(),
        content_language: h.content_language.clone(),
        cache_control: h.cache_control.clone(),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

/// The bytes a Range names; none (any range of an empty object, a start past the end) is
/// 416.
fn checked(range: &Range, len: u64) -> S3Result<std::ops::Range<u64>> {
    range
        .check(len)
        .ok()
        .filter(|span| !span.is_empty())
        .ok_or_else(|| s3(S3ErrorCode::InvalidRange, "The requested range is not satisfiable"))
}

pub async fn get(g: &Gateway, req: GetObjectInput) -> S3Result<S3Response<GetObjectOutput>> {
    if req.part_number.is_some() || req.version_id.is_some() {
        return Err(s3(S3ErrorCode::NotImplemented, "partNumber and versionId reads are not supported"));
    }
    let r = open(g, &req.bucket, &req.key, true).await?;
    r.check(&read_conditions!(req))?;
    let span = match &req.range {
        Some(range) => Some(checked(range, r.len)?),
        None => None,
    };
    let (start, end) = span.clone().map_or((0, r.len), |s| (s.start, s.end));
    let (body, len) = plaintext(g, &r, start, end).await?;
    let h = &r.info.headers;
    let out = GetObjectOutput {
        body: Some(body),
        accept_ranges: Some("bytes".into()),
        content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
        content_range: span.map(|s| format!("bytes {}-{}/{}", s.start, s.end - 1, r.len)),
        e_tag: Some(ETag::Strong(r.etag.clone())),
        last_modified: r.last_modified(),
        metadata: r.metadata(),
        content_type: req.response_content_type.clone().or_else(|| h.content_type.clone()),
        content_encoding: req.response_content_encoding.clone().or_else(|| h.content_encoding.clone()),
        content_disposition: req.response_content_disposition.clone().or_else(|| h.content_disposition.clone()),
        content_language: req.response_content_language.clone().or_else(|| h.content_language.clone()),
        cache_control: req.response_cache_control.clone().or_else(|| h.cache_control.clone()),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

/// The plaintext bytes `[start, end)` of an opened object as a stream, fetching only the
/// frames (or the previous proxy's seals) they lie in, pinned to the HEAD's ETag.
pub async fn plaintext(g: &Gateway, r: &Readable, start: u64, end: u64) -> S3Result<(s3s::dto::StreamingBlob, u64)> {
    let w = r.info.where_();
    let whole = start == 0 && end == r.len;
    let (dec, range): (Box<dyn isec_core::Stream + Send>, Option<String>) = match &r.kind {
        Kind::Isec { key: Some(key), shape } if whole => {
            (Box::new(Decryptor::<AwsLc>::with_shape(key, shape.clone()).map_err(|e| error::core(e, &w))?), None)
        }
        Kind::Isec { key: Some(key), shape } => {
            let plan = shape.map_range(start, end);
            let dec = Decryptor::<AwsLc>::for_range(key, shape.clone(), &plan).map_err(|e| error::core(e, &w))?;
            (Box::new(dec), plan.http_range())
        }
        Kind::Isec { key: None, .. } => return Err(s3(S3ErrorCode::InternalError, "object opened without its key")),
        Kind::Legacy { key, object } if whole => {
            (Box::new(LegacyDecryptor::<AwsLc>::new(key, object).map_err(|e| error::core(e, &w))?), None)
        }
        Kind::Legacy { key, object } => {
            let plan = object.plan_range(start, end).map_err(|e| error::core(e, &w))?;
            let dec = LegacyDecryptor::<AwsLc>::for_range(key, object, &plan).map_err(|e| error::core(e, &w))?;
            (Box::new(dec), plan.http_range())
        }
        Kind::Plain => (Box::new(Identity), (!whole).then(|| format!("bytes={}-{}", start, end - 1))),
    };
    if start == end && !whole {
        return Ok((
            s3s::dto::StreamingBlob::wrap(futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>()),
            0,
        ));
    }
    let resp =
        g.c.get_object()
            .bucket(&r.info.bucket)
            .key(&r.info.key)
            .if_match(&r.info.etag)
            .set_range(range)
            .send()
            .await
            .map_err(|e| from_fail(sdk(e, &w, true)))?;
    Ok((body::decrypt(resp.body, dec, w), end - start))
}

/// An unencrypted object's bytes, passed as they are (`--serve-plaintext`).
struct Identity;

impl isec_core::Stream for Identity {
    fn update_len(&self, n: usize) -> usize {
        n
    }
    fn finish_len(&self) -> usize {
        0
    }
    fn is_locked(&self) -> bool {
        false
    }
    fn lock(&mut self) {}
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> isec_core::Result<usize> {
        out[..input.len()].copy_from_slice(input);
        Ok(input.len())
    }
    fn finish(&mut self, _out: &mut [u8]) -> isec_core::Result<usize> {
        Ok(0)
    }
}
