//! Multipart uploads in progress: each client upload is one backend upload of a
//! table-layout object, whose parts the client sizes as it likes.
//!
//! What completing it needs (the object's metadata, and each part's plaintext length, nonce
//! prefix and ETags) is kept in the bucket beside it, as core names the records (SPEC.md
//! §18.4): the upload's record holds the metadata (the envelope wraps the DEK, so it says
//! nothing a keyring does not), and each part's record is an empty object whose key carries
//! the part's fields. Any gateway process with the keyring can therefore take an upload
//! over: a restart, or another instance behind a load balancer, continues it. The records
//! are deleted when the upload completes or aborts. This process keeps the opened uploads
//! in memory as a cache, forgotten after a week unused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use isec_core::ObjectKey;
use isec_core::metadata::{ObjectFormat, classify};
use isec_core::s3::gateway::{self as rules, PartRecord, TableUpload};
use s3s::{S3Error, S3ErrorCode, S3Result};
use serde_json::{Value, json};

use super::error::{self, from_fail, s3};
use super::service::Gateway;
use crate::s3::client::{is_not_found, sdk};
use crate::s3::object::{self, Carried};

/// One client upload.
pub struct Upload {
    pub bucket: String,
    pub key: String,
    pub okey: ObjectKey,
    /// The object's metadata (user metadata and the envelope).
    pub meta: Vec<(String, String)>,
    pub headers: Carried,
}

/// How long an opened upload stays in memory without a request.
const IDLE_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The uploads this process has opened, by upload id (the backend's), with their last use.
#[derive(Default)]
pub struct Uploads(Mutex<HashMap<String, (Arc<Upload>, Instant)>>);

pub fn no_upload() -> S3Error {
    s3(S3ErrorCode::NoSuchUpload, "The specified upload does not exist.")
}

fn record_key(id: &str) -> S3Result<String> {
    rules::upload_record_key(id).ok_or_else(no_upload)
}

impl Uploads {
    fn cached(&self, id: &str) -> Option<Arc<Upload>> {
        let mut m = self.0.lock().ok()?;
        let (up, used) = m.get_mut(id)?;
        *used = Instant::now();
        Some(up.clone())
    }

    fn insert(&self, id: &str, up: Arc<Upload>) {
        if let Ok(mut m) = self.0.lock() {
            let now = Instant::now();
            m.retain(|_, (_, used)| now.duration_since(*used) < IDLE_LIMIT);
            m.insert(id.to_string(), (up, now));
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

/// Stores the record of a new upload `id`, then keeps it open in this process.
pub async fn begin(g: &Gateway, id: &str, up: Upload) -> S3Result<()> {
    let h = &up.headers;
    let body = json!({
        "bucket": up.bucket, "key": up.key, "meta": up.meta,
        "headers": [h.content_type, h.content_encoding, h.content_disposition, h.content_language, h.cache_control],
    });
    let rk = record_key(id)?;
    g.c.put_object()
        .bucket(&up.bucket)
        .key(&rk)
        .body(ByteStream::from(body.to_string().into_bytes()))
        .send()
        .await
        .map_err(|e| from_fail(sdk(e, &format!("s3://{}/{rk}", up.bucket), false)))?;
    g.uploads.insert(id, Arc::new(up));
    Ok(())
}

/// The upload `id` of `bucket/key`: from memory, or from its record (begun by another
/// gateway process, or by this one before a restart).
pub async fn find(g: &Gateway, bucket: &str, key: &str, id: &str) -> S3Result<Arc<Upload>> {
    if let Some(up) = g.uploads.cached(id) {
        return if up.bucket == bucket && up.key == key { Ok(up) } else { Err(no_upload()) };
    }
    let rk = record_key(id)?;
    let w = format!("s3://{bucket}/{rk}");
    let r = match g.c.get_object().bucket(bucket).key(&rk).send().await {
        Ok(r) => r,
        Err(e) if is_not_found(&e) => return Err(no_upload()),
        Err(e) => return Err(from_fail(sdk(e, &w, false))),
    };
    let body = r.body.collect().await.map_err(|e| s3(S3ErrorCode::InternalError, format!("{w}: {e}")))?.into_bytes();
    let v: Value = serde_json::from_slice(&body).map_err(|_| no_upload())?;
    if v["bucket"] != bucket || v["key"] != key {
        return Err(no_upload());
    }
    let meta: Vec<(String, String)> = serde_json::from_value(v["meta"].clone()).map_err(|_| no_upload())?;
    let hs: Vec<Option<String>> = serde_json::from_value(v["headers"].clone()).map_err(|_| no_upload())?;
    let h = |i: usize| hs.get(i).cloned().flatten();
    let view: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ObjectFormat::Isec(envelope) = classify(&view, false) else { return Err(no_upload()) };
    let okey = g.ring.open(&envelope).map_err(|e| error::core(e, &format!("{w}: envelope")))?;
    let up = Arc::new(Upload {
        bucket: bucket.into(),
        key: key.into(),
        okey,
        meta,
        headers: Carried {
            content_type: h(0),
            content_encoding: h(1),
            content_disposition: h(2),
            content_language: h(3),
            cache_control: h(4),
        },
    });
    g.uploads.insert(id, up.clone());
    Ok(up)
}

/// Stores the record of part `n`, uploaded to the backend as `rec` says.
pub async fn record(g: &Gateway, up: &Upload, id: &str, n: u32, rec: &PartRecord) -> S3Result<()> {
    let key = format!("{}{}", rules::part_records_prefix(id).ok_or_else(no_upload)?, rec.record_name(n));
    g.c.put_object()
        .bucket(&up.bucket)
        .key(&key)
        .body(ByteStream::from_static(b""))
        .send()
        .await
        .map_err(|e| from_fail(sdk(e, &format!("s3://{}/{key}", up.bucket), false)))?;
    Ok(())
}

/// The upload's parts as the backend holds them, each with its record.
pub async fn table(g: &Gateway, up: &Upload, id: &str) -> S3Result<TableUpload> {
    let prefix = rules::part_records_prefix(id).ok_or_else(no_upload)?;
    let names = list_keys(g, &up.bucket, &prefix).await?;
    let records = names.iter().filter_map(|k| PartRecord::parse_record_name(&k[prefix.len()..]));
    let (_, parts) = object::Upload::listed(&g.c, &up.bucket, &up.key, id).await.map_err(|f| match f {
        crate::s3::client::Fail::Changed(_) => no_upload(),
        f => from_fail(f),
    })?;
    let backend: Vec<(u32, &str)> = parts.iter().map(|(n, _, e)| (*n, e.as_str())).collect();
    Ok(TableUpload::from_records(records, &backend))
}

async fn list_keys(g: &Gateway, bucket: &str, prefix: &str) -> S3Result<Vec<String>> {
    let mut pages = g.c.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| from_fail(sdk(e, &format!("s3://{bucket}/{prefix}"), false)))?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    Ok(keys)
}

/// Deletes the upload's records (after it completed or aborted); best effort: a record
/// left behind names an upload that no longer exists.
pub async fn forget(g: &Gateway, bucket: &str, id: &str) {
    g.uploads.remove(id);
    let (Ok(rk), Some(prefix)) = (record_key(id), rules::part_records_prefix(id)) else { return };
    let mut keys = list_keys(g, bucket, &prefix).await.unwrap_or_default();
    keys.push(rk);
    for chunk in keys.chunks(1000) {
        let ids: Vec<ObjectIdentifier> =
            chunk.iter().filter_map(|k| ObjectIdentifier::builder().key(k).build().ok()).collect();
        if let Ok(del) = Delete::builder().set_objects(Some(ids)).quiet(true).build() {
            let _ = g.c.delete_objects().bucket(bucket).delete(del).send().await;
        }
    }
}
