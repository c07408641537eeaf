//! Listings with plaintext sizes and client ETags, and deletes that take the object's
//! sidecars along.
//!
//! A backend listing gives only stored sizes and backend ETags. The plaintext size follows
//! from the stored size alone for most isec objects, but not for previous-proxy objects,
//! objects not encrypted at all, or multipart uploads with unaligned parts, and the client
//! ETag lives in the object's metadata; so each entry is looked up (a HEAD, bounded
//! concurrency) unless the gateway already knows that (key, backend ETag). A listing is then
//! exact for every object, at one HEAD per object not seen before.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures_util::StreamExt;
use isec_core::s3::gateway as rules;
use s3s::dto::*;
use s3s::{S3Response, S3Result};

use super::error::from_fail;
use super::read;
use super::service::Gateway;
use crate::s3::client::sdk;

/// Objects looked up at once for a listing.
const LOOKUPS: usize = 16;
/// Entries remembered before the cache starts over.
const CACHE_MAX: usize = 200_000;

/// `(bucket, key, backend ETag)`: one stored version of an object.
type Version = (String, String, String);

/// Each stored version's plaintext size and client ETag, as a lookup found them.
#[derive(Default)]
pub struct Sizes(Mutex<HashMap<Version, (u64, String)>>);

impl Sizes {
    fn get(&self, k: &Version) -> Option<(u64, String)> {
        self.0.lock().ok()?.get(k).cloned()
    }

    fn put(&self, k: Version, v: (u64, String)) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= CACHE_MAX {
                m.clear();
            }
            m.insert(k, v);
        }
    }
}

/// One backend listing entry.
struct Entry {
    key: String,
    size: u64,
    etag: String,
    last_modified: Option<Timestamp>,
}

/// The client's view of a page of entries: internal keys dropped, sizes and ETags exact.
/// An entry that vanished since the listing is dropped; one that cannot be opened keeps its
/// stored size and an ETag marked as not an MD5.
async fn view(g: &Gateway, bucket: &str, entries: Vec<Entry>, url: Url) -> Vec<Object> {
    let shown = entries.into_iter().filter(|e| !rules::is_internal_key(&e.key));
    let looked = futures_util::stream::iter(shown)
        .map(|e| async move {
            let ck = (bucket.to_string(), e.key.clone(), e.etag.trim_matches('"').to_string());
            let (size, etag) = match g.sizes.get(&ck) {
                Some(v) => v,
                None => match read::open(g, bucket, &e.key, false).await {
                    Ok(r) => {
                        g.sizes.put(ck, (r.len, r.etag.clone()));
                        (r.len, r.etag)
                    }
                    Err(err) if err.code().as_str() == "NoSuchKey" => return None,
                    Err(_) => (e.size, rules::opaque_etag(&e.etag)),
                },
            };
            Some(Object {
                key: Some(url.key(&e.key)),
                size: i64::try_from(size).ok(),
                e_tag: Some(ETag::Strong(etag)),
                last_modified: e.last_modified,
                storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                ..Default::default()
            })
        })
        .buffered(LOOKUPS);
    looked.filter_map(|o| async move { o }).collect().await
}

fn prefixes(p: &[aws_sdk_s3::types::CommonPrefix], url: Url) -> Option<Vec<CommonPrefix>> {
    let v: Vec<CommonPrefix> = p
        .iter()
        .filter_map(|c| c.prefix())
        .filter(|p| !rules::is_internal_key(p))
        .map(|p| CommonPrefix { prefix: Some(url.key(p)) })
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Whether the client asked for keys URL-encoded (`encoding-type=url`: the AWS CLI and
/// boto3 always do, and decode `+` as a space): keys, prefixes, markers and delimiters in
/// the answer are then encoded.
#[derive(Clone, Copy)]
struct Url(bool);

impl Url {
    fn of(e: Option<&EncodingType>) -> Self {
        Self(e.is_some_and(|e| e.as_str().eq_ignore_ascii_case("url")))
    }

    fn key(self, k: &str) -> String {
        if self.0 { crate::s3::url::encode(k) } else { k.to_string() }
    }

    fn opt(self, k: Option<String>) -> Option<String> {
        k.map(|k| self.key(&k))
    }
}

fn entries(objects: &[aws_sdk_s3::types::Object]) -> Vec<Entry> {
    objects
        .iter()
        .map(|o| Entry {
            key: o.key().unwrap_or_default().to_string(),
            size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
            etag: o.e_tag().unwrap_or_default().to_string(),
            last_modified: o
                .last_modified()
                .and_then(|t| std::time::SystemTime::try_from(*t).ok())
                .map(Timestamp::from),
        })
        .collect()
}

pub async fn list_v2(g: &Gateway, i: ListObjectsV2Input) -> S3Result<S3Response<ListObjectsV2Output>> {
    let w = format!("s3://{}", i.bucket);
    let r =
        g.c.list_objects_v2()
            .bucket(&i.bucket)
            .set_prefix(i.prefix.clone())
            .set_delimiter(i.delimiter.clone())
            .set_continuation_token(i.continuation_token.clone())
            .set_start_after(i.start_after.clone())
            .set_max_keys(i.max_keys)
            .send()
            .await
            .map_err(|e| from_fail(sdk(e, &w, false)))?;
    let url = Url::of(i.encoding_type.as_ref());
    let contents = view(g, &i.bucket, entries(r.contents()), url).await;
    let common = prefixes(r.common_prefixes(), url);
    let out = ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: url.opt(i.prefix),
        delimiter: url.opt(i.delimiter),
        max_keys: i.max_keys.or(Some(1000)),
        key_count: i32::try_from(contents.len() + common.as_ref().map_or(0, Vec::len)).ok(),
        continuation_token: i.continuation_token,
        start_after: url.opt(i.start_after),
        is_truncated: r.is_truncated(),
        next_continuation_token: r.next_continuation_token().map(str::to_string),
        encoding_type: i.encoding_type,
        contents: Some(contents),
        common_prefixes: common,
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

pub async fn list_v1(g: &Gateway, i: ListObjectsInput) -> S3Result<S3Response<ListObjectsOutput>> {
    let w = format!("s3://{}", i.bucket);
    let r =
        g.c.list_objects()
            .bucket(&i.bucket)
            .set_prefix(i.prefix.clone())
            .set_delimiter(i.delimiter.clone())
            .set_marker(i.marker.clone())
            .set_max_keys(i.max_keys)
            .send()
            .await
            .map_err(|e| from_fail(sdk(e, &w, false)))?;
    let raw = entries(r.contents());
    // Without a delimiter S3 leaves NextMarker out: the last key listed (hidden or not) is it.
    let last = raw.last().map(|e| e.key.clone());
    let url = Url::of(i.encoding_type.as_ref());
    let common = prefixes(r.common_prefixes(), url);
    let next =
        r.next_marker().map(str::to_string).or_else(|| r.is_truncated().unwrap_or(false).then_some(last).flatten());
    let contents = view(g, &i.bucket, raw, url).await;
    let out = ListObjectsOutput {
        name: Some(i.bucket),
        prefix: url.opt(i.prefix),
        delimiter: url.opt(i.delimiter),
        marker: url.opt(i.marker),
        max_keys: i.max_keys.or(Some(1000)),
        is_truncated: r.is_truncated(),
        next_marker: url.opt(next),
        encoding_type: i.encoding_type,
        contents: Some(contents),
        common_prefixes: common,
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

/// Deletes `keys` and their sidecars, at most 1000 backend keys per request; returns the
/// client keys deleted and those that failed with their code and message.
async fn delete_keys(
    g: &Gateway,
    bucket: &str,
    keys: &[String],
) -> S3Result<(Vec<String>, Vec<(String, String, String)>)> {
    let (mut deleted, mut failed) = (Vec::new(), Vec::new());
    for chunk in keys.chunks(1000 / 3) {
        let mut ids = Vec::with_capacity(chunk.len() * 3);
        for k in chunk {
            for key in rules::delete_keys(k) {
                let id = ObjectIdentifier::builder()
                    .key(key)
                    .build()
                    .map_err(|e| super::error::s3(s3s::S3ErrorCode::InternalError, e.to_string()))?;
                ids.push(id);
            }
        }
        let del = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| super::error::s3(s3s::S3ErrorCode::InternalError, e.to_string()))?;
        let r =
            g.c.delete_objects()
                .bucket(bucket)
                .delete(del)
                .send()
                .await
                .map_err(|e| from_fail(sdk(e, &format!("s3://{bucket}"), false)))?;
        for k in chunk {
            match r.errors().iter().find(|e| e.key() == Some(k.as_str())) {
                Some(e) => failed.push((
                    k.clone(),
                    e.code().unwrap_or("InternalError").into(),
                    e.message().unwrap_or_default().into(),
                )),
                None => deleted.push(k.clone()),
            }
        }
    }
    Ok((deleted, failed))
}

pub async fn delete(g: &Gateway, i: DeleteObjectInput) -> S3Result<S3Response<DeleteObjectOutput>> {
    super::write::writable(&i.key)?;
    if i.version_id.is_some() || i.if_match.is_some() {
        return Err(super::error::s3(
            s3s::S3ErrorCode::NotImplemented,
            "versioned and conditional deletes are not supported",
        ));
    }
    let (_, failed) = delete_keys(g, &i.bucket, std::slice::from_ref(&i.key)).await?;
    if let Some((k, code, msg)) = failed.into_iter().next() {
        return Err(super::error::backend(&code, format!("{k}: {msg}")));
    }
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub async fn delete_many(g: &Gateway, i: DeleteObjectsInput) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    for o in &i.delete.objects {
        if rules::is_internal_key(&o.key) || o.version_id.is_some() {
            errors.push(Error {
                key: Some(o.key.clone()),
                code: Some("InvalidArgument".into()),
                message: Some("reserved key or versioned delete".into()),
                ..Default::default()
            });
        } else {
            keys.push(o.key.clone());
        }
    }
    let (deleted, failed) = delete_keys(g, &i.bucket, &keys).await?;
    errors.extend(failed.into_iter().map(|(k, code, msg)| Error {
        key: Some(k),
        code: Some(code),
        message: Some(msg),
        ..Default::default()
    }));
    let quiet = i.delete.quiet.unwrap_or(false);
    let out = DeleteObjectsOutput {
        deleted: (!quiet)
            .then(|| deleted.into_iter().map(|k| DeletedObject { key: Some(k), ..Default::default() }).collect()),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}
