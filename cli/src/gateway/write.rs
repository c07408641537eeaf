//! PutObject and the multipart operations: every body encrypted as it streams, the client's
//! ETag (the MD5 of its plaintext) kept in the object's `isec-etag` metadata.

use std::collections::HashMap;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use isec_core::frame::segment_ct_len;
use isec_core::metadata::{self, META_ETAG, META_TABLE};
use isec_core::s3::gateway::{self as rules, METADATA_BUDGET, PartRecord, TablePlacement};
use isec_core::{AwsLc, Encryptor, LayoutRequest, Params, SegmentTable};
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use super::body::{self, Checks, hex16};
use super::error::{self, from_fail, s3};
use super::service::Gateway;
use super::uploads::{self, Upload};
use crate::s3::client::sdk;
use crate::s3::object::{Carried, carry};
use crate::s3::url::copy_source;

/// Writes to the format's own keys are refused.
pub fn writable(key: &str) -> S3Result<()> {
    if rules::is_internal_key(key) {
        return Err(s3(S3ErrorCode::InvalidArgument, format!("{key}: this key name is reserved by isec")));
    }
    Ok(())
}

/// The system headers a new object keeps from the request that writes it.
macro_rules! carried {
    ($i:expr) => {
        Carried {
            content_type: $i.content_type.clone(),
            content_encoding: stored_encoding($i.content_encoding.clone()),
            content_disposition: $i.content_disposition.clone(),
            content_language: $i.content_language.clone(),
            cache_control: $i.cache_control.clone(),
        }
    };
}

/// The `x-amz-checksum-*` values a request carries in headers.
macro_rules! checksums {
    ($i:expr) => {
        Checksum {
            checksum_crc32: $i.checksum_crc32.clone(),
            checksum_crc32c: $i.checksum_crc32c.clone(),
            checksum_sha1: $i.checksum_sha1.clone(),
            checksum_sha256: $i.checksum_sha256.clone(),
            checksum_crc64nvme: $i.checksum_crc64nvme.clone(),
            ..Default::default()
        }
    };
}

/// An upload's answer: the client's ETag and the checksums it asked for, as computed.
macro_rules! answer {
    ($ty:ident, $etag:expr, $c:expr) => {
        $ty {
            e_tag: Some(ETag::Strong($etag)),
            checksum_crc32: $c.checksum_crc32,
            checksum_crc32c: $c.checksum_crc32c,
            checksum_sha1: $c.checksum_sha1,
            checksum_sha256: $c.checksum_sha256,
            checksum_crc64nvme: $c.checksum_crc64nvme,
            ..Default::default()
        }
    };
}

fn stored_encoding(v: Option<String>) -> Option<String> {
    rules::stored_content_encoding(&v?)
}

fn user_meta(m: &Option<Metadata>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m.iter().flatten().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    v.sort();
    v
}

fn view(m: &[(String, String)]) -> Vec<(&str, &str)> {
    m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn content_length(n: Option<i64>) -> S3Result<u64> {
    let n =
        n.ok_or_else(|| s3(S3ErrorCode::MissingContentLength, "You must provide the Content-Length HTTP header."))?;
    u64::try_from(n).map_err(|_| s3(S3ErrorCode::InvalidArgument, "negative Content-Length"))
}

/// The digests a request carries, and its announced trailer.
fn checks<T>(req: &S3Request<T>, content_md5: Option<String>, header: Checksum) -> Checks {
    let trailer = req
        .headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| v.starts_with("x-amz-checksum-"))
        .and_then(|name| req.trailing_headers.clone().map(|t| (name, t)));
    Checks { content_md5, header, trailer }
}

/// The client's Content-MD5 as the hex ETag it will be given, if it is one.
fn md5_hex(content_md5: Option<&str>) -> Option<String> {
    let raw = Base64::decode_vec(content_md5?.trim()).ok()?;
    (raw.len() == 16).then(|| hex::encode(raw))
}

pub async fn put(g: &Gateway, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let i = &req.input;
    writable(&i.key)?;
    if i.if_match.is_some() || i.if_none_match.is_some() {
        return Err(s3(S3ErrorCode::NotImplemented, "conditional writes are not supported"));
    }
    let len = content_length(i.content_length)?;
    let w = format!("s3://{}/{}", i.bucket, i.key);
    let params = Params::new(LayoutRequest::Single, Some(g.frame), Some(len)).map_err(|e| error::core(e, &w))?;
    let (env, okey) = g.ring.create_envelope(params).map_err(|e| error::core(e, &w))?;
    let user = user_meta(&i.metadata);
    let mut meta = metadata::object_metadata(&view(&user), &env);
    let known_etag = md5_hex(i.content_md5.as_deref());
    if let Some(e) = &known_etag {
        meta.push((META_ETAG.into(), e.clone()));
    }
    // Room for the ETag the self-copy adds once the body's MD5 is known.
    let etag_room = if known_etag.is_none() { META_ETAG.len() + 32 } else { 0 };
    if metadata::metadata_size(&meta) + etag_room > METADATA_BUDGET {
        return Err(s3(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    let headers = carried!(i);
    let ct_len = segment_ct_len(len, g.frame).map_err(|e| error::core(e, &w))?;
    let enc = Encryptor::<AwsLc>::new(&okey).map_err(|e| error::core(e, &w))?;
    let header = checksums!(i);
    let checks = checks(&req, i.content_md5.clone(), header);
    let mut req = req;
    let blob = req.input.body.take().unwrap_or_else(empty);
    let (backend_body, task) = body::encrypt(blob, len, ct_len, enc, checks);
    let b =
        g.c.put_object()
            .bucket(&req.input.bucket)
            .key(&req.input.key)
            .set_metadata(Some(meta.iter().cloned().collect()))
            .content_length(i64::try_from(ct_len).unwrap_or(i64::MAX))
            .body(backend_body.into_stream());
    let sent = carry!(b, headers).send().await;
    let (r, received) = body::settle(task, sent.map_err(|e| from_fail(sdk(e, &w, false)))).await?;
    g.moved(ct_len);
    let etag = hex16(&received.md5);
    if known_etag.is_none() {
        meta.push((META_ETAG.into(), etag.clone()));
        set_metadata(g, &req.input.bucket, &req.input.key, &meta, &headers, r.e_tag().unwrap_or_default()).await;
    }
    let c = received.checksum;
    let out = answer!(PutObjectOutput, etag, c);
    Ok(S3Response::new(out))
}

fn empty() -> StreamingBlob {
    StreamingBlob::wrap(futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
}

/// Gives the object just written its final metadata by copying it onto itself, pinned to
/// the ETag the write returned (a newer write by someone else is left alone). Until this
/// lands a HEAD shows an ETag marked as not an MD5 (SPEC.md §18.3); it is retried, and a
/// failure is logged, never fatal to the write.
async fn set_metadata(
    g: &Gateway,
    bucket: &str,
    key: &str,
    meta: &[(String, String)],
    h: &Carried,
    etag: &str,
) -> bool {
    for _ in 0..3 {
        let b =
            g.c.copy_object()
                .bucket(bucket)
                .key(key)
                .copy_source(copy_source(bucket, key))
                .copy_source_if_match(etag)
                .metadata_directive(MetadataDirective::Replace)
                .set_metadata(Some(meta.iter().cloned().collect()));
        match carry!(b, h).send().await {
            Ok(_) => return true,
            Err(e) => {
                let f = sdk(e, &format!("s3://{bucket}/{key}"), true);
                if matches!(f, crate::s3::client::Fail::Changed(_)) {
                    return false;
                }
                eprintln!("isec gateway: setting the metadata of s3://{bucket}/{key}: {}", from_fail(f));
            }
        }
    }
    false
}

pub async fn create(g: &Gateway, i: CreateMultipartUploadInput) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    writable(&i.key)?;
    let w = format!("s3://{}/{}", i.bucket, i.key);
    let params = Params::new(LayoutRequest::Table, Some(g.frame), None).map_err(|e| error::core(e, &w))?;
    let (envelope, okey) = g.ring.create_envelope(params).map_err(|e| error::core(e, &w))?;
    let user = user_meta(&i.metadata);
    let meta = metadata::object_metadata(&view(&user), &envelope);
    // Room for the `hex-N` ETag the completion adds.
    if metadata::metadata_size(&meta) + META_ETAG.len() + 38 > METADATA_BUDGET {
        return Err(s3(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    let headers = carried!(i);
    let b =
        g.c.create_multipart_upload()
            .bucket(&i.bucket)
            .key(&i.key)
            .set_metadata(Some(meta.iter().cloned().collect::<HashMap<_, _>>()));
    let r = carry!(b, headers).send().await.map_err(|e| from_fail(sdk(e, &w, false)))?;
    let id = r.upload_id().unwrap_or_default().to_string();
    if id.is_empty() {
        return Err(s3(S3ErrorCode::InternalError, "the backend returned no upload id"));
    }
    let up = Upload { bucket: i.bucket.clone(), key: i.key.clone(), okey, meta, headers };
    if let Err(e) = uploads::begin(g, &id, up).await {
        // No record, no upload: a client could not complete it.
        let _ = g.c.abort_multipart_upload().bucket(&i.bucket).key(&i.key).upload_id(&id).send().await;
        return Err(e);
    }
    let out = CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(id),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

/// Encrypts `blob` (`len` plaintext bytes) as part `n` of an upload and uploads it; returns
/// the client's ETag for the part and the checksums it asked for.
#[allow(clippy::too_many_arguments)]
pub async fn part_body(
    g: &Gateway,
    bucket: &str,
    key: &str,
    id: &str,
    n: i32,
    blob: StreamingBlob,
    len: u64,
    checks: Checks,
) -> S3Result<(String, Checksum)> {
    let w = format!("s3://{bucket}/{key} part {n}");
    let up = uploads::find(g, bucket, key, id).await?;
    let number = u32::try_from(n).ok().filter(|n| rules::TableUpload::valid_part_number(*n));
    let number =
        number.ok_or_else(|| s3(S3ErrorCode::InvalidArgument, "Part number must be an integer between 1 and 10000"))?;
    let enc = Encryptor::<AwsLc>::for_part(&up.okey, number, false).map_err(|e| error::core(e, &w))?;
    let prefix = enc.prefix();
    let ct_len = segment_ct_len(len, g.frame).map_err(|e| error::core(e, &w))?;
    let (backend_body, task) = body::encrypt(blob, len, ct_len, enc, checks);
    let sent =
        g.c.upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .content_length(i64::try_from(ct_len).unwrap_or(i64::MAX))
            .body(backend_body.into_stream())
            .send()
            .await;
    let (r, received) = body::settle(task, sent.map_err(|e| from_fail(sdk(e, &w, false)))).await?;
    g.moved(ct_len);
    let client_etag = hex16(&received.md5);
    let rec = PartRecord {
        pt_len: len,
        prefix,
        client_etag: client_etag.clone(),
        backend_etag: r.e_tag().unwrap_or_default().to_string(),
    };
    // Recorded before the client hears of the part: a part it was told about is one any
    // gateway can complete.
    uploads::record(g, &up, id, number, &rec).await?;
    Ok((client_etag, received.checksum))
}

pub async fn part(g: &Gateway, mut req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
    let len = content_length(req.input.content_length)?;
    let i = &req.input;
    let header = checksums!(i);
    let checks = checks(&req, i.content_md5.clone(), header);
    let blob = req.input.body.take().unwrap_or_else(empty);
    let i = &req.input;
    let (etag, c) = part_body(g, &i.bucket, &i.key, &i.upload_id, i.part_number, blob, len, checks).await?;
    let out = answer!(UploadPartOutput, etag, c);
    Ok(S3Response::new(out))
}

pub async fn complete(
    g: &Gateway,
    i: CompleteMultipartUploadInput,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    if i.if_match.is_some() || i.if_none_match.is_some() {
        return Err(s3(S3ErrorCode::NotImplemented, "conditional writes are not supported"));
    }
    let w = format!("s3://{}/{}", i.bucket, i.key);
    let up = uploads::find(g, &i.bucket, &i.key, &i.upload_id).await?;
    let listed: Vec<(u32, String)> = i
        .multipart_upload
        .as_ref()
        .and_then(|m| m.parts.as_ref())
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let n = p.part_number.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
                    (n, p.e_tag.as_ref().map(|e| e.value().to_string()).unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    let listed_ref: Vec<(u32, &str)> = listed.iter().map(|(n, e)| (*n, e.as_str())).collect();
    let done = uploads::table(g, &up, &i.upload_id).await?.complete(&listed_ref, g.frame).map_err(|r| {
        let code = S3ErrorCode::from_bytes(r.s3_code().as_bytes()).unwrap_or(S3ErrorCode::InvalidPart);
        s3(code, format!("{w}: {}", r.s3_code()))
    })?;
    let (mut meta, headers) = (up.meta.clone(), up.headers.clone());
    let table = SegmentTable::new(done.entries.clone()).map_err(|e| error::core(e, &w))?.encode(&up.okey);
    let placement =
        rules::table_placement(metadata::metadata_size(&meta) + 64, table.len(), done.aligned, METADATA_BUDGET);
    let mut md5 = Md5::new();
    for e in &done.client_etags {
        md5.update(&hex::decode(e).unwrap_or_default());
    }
    let etag = format!("{}-{}", hex16(&md5.finalize()), done.client_etags.len());
    if placement == TablePlacement::Sidecar {
        // Before the object exists, so that no reader finds it without its table.
        let side = metadata::table_sidecar_key(&i.key);
        g.c.put_object()
            .bucket(&i.bucket)
            .key(&side)
            .body(table.clone().into())
            .send()
            .await
            .map_err(|e| from_fail(sdk(e, &format!("s3://{}/{side}", i.bucket), false)))?;
    }
    let parts: Vec<CompletedPart> = done
        .backend_parts
        .iter()
        .map(|(n, e)| CompletedPart::builder().part_number(i32::try_from(*n).unwrap_or(i32::MAX)).e_tag(e).build())
        .collect();
    let r =
        g.c.complete_multipart_upload()
            .bucket(&i.bucket)
            .key(&i.key)
            .upload_id(&i.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| from_fail(sdk(e, &w, false)))?;
    uploads::forget(g, &i.bucket, &i.upload_id).await;
    meta.push((META_ETAG.into(), etag.clone()));
    if placement == TablePlacement::Inline {
        meta.push((META_TABLE.into(), Base64UrlUnpadded::encode_string(&table)));
    }
    let stored = set_metadata(g, &i.bucket, &i.key, &meta, &headers, r.e_tag().unwrap_or_default()).await;
    if !stored && placement == TablePlacement::Inline {
        eprintln!("isec gateway: {w}: the segment table could not be stored; the object will not open");
        return Err(s3(S3ErrorCode::InternalError, format!("{w}: storing the segment table failed")));
    }
    let out = CompleteMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        e_tag: Some(ETag::Strong(etag)),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

pub async fn abort(g: &Gateway, i: AbortMultipartUploadInput) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let w = format!("s3://{}/{}", i.bucket, i.key);
    g.c.abort_multipart_upload()
        .bucket(&i.bucket)
        .key(&i.key)
        .upload_id(&i.upload_id)
        .send()
        .await
        .map_err(|e| from_fail(sdk(e, &w, false)))?;
    uploads::forget(g, &i.bucket, &i.upload_id).await;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(g: &Gateway, i: ListPartsInput) -> S3Result<S3Response<ListPartsOutput>> {
    let up = uploads::find(g, &i.bucket, &i.key, &i.upload_id).await?;
    let table = uploads::table(g, &up, &i.upload_id).await?;
    let after = i.part_number_marker.and_then(|m| u32::try_from(m).ok()).unwrap_or(0);
    let max = usize::try_from(i.max_parts.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
    let all: Vec<Part> = table
        .parts()
        .filter(|(n, _)| *n > after)
        .map(|(n, p)| Part {
            part_number: i32::try_from(n).ok(),
            size: i64::try_from(p.pt_len).ok(),
            e_tag: Some(ETag::Strong(p.client_etag.clone())),
            ..Default::default()
        })
        .collect();
    let truncated = all.len() > max;
    let parts: Vec<Part> = all.into_iter().take(max).collect();
    let out = ListPartsOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        upload_id: Some(i.upload_id.clone()),
        is_truncated: Some(truncated),
        next_part_number_marker: parts.last().and_then(|p| p.part_number),
        max_parts: i32::try_from(max).ok(),
        parts: Some(parts),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

/// The backend's multipart uploads, the format's own keys left out.
pub async fn list_uploads(
    g: &Gateway,
    i: ListMultipartUploadsInput,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let w = format!("s3://{}", i.bucket);
    let r =
        g.c.list_multipart_uploads()
            .bucket(&i.bucket)
            .set_prefix(i.prefix.clone())
            .set_delimiter(i.delimiter.clone())
            .set_key_marker(i.key_marker.clone())
            .set_upload_id_marker(i.upload_id_marker.clone())
            .set_max_uploads(i.max_uploads)
            .send()
            .await
            .map_err(|e| from_fail(sdk(e, &w, false)))?;
    let uploads = r
        .uploads()
        .iter()
        .filter(|u| !u.key().is_some_and(rules::is_internal_key))
        .map(|u| MultipartUpload {
            key: u.key().map(str::to_string),
            upload_id: u.upload_id().map(str::to_string),
            initiated: u.initiated().and_then(|t| std::time::SystemTime::try_from(*t).ok()).map(Timestamp::from),
            ..Default::default()
        })
        .collect();
    let out = ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        delimiter: i.delimiter,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        max_uploads: r.max_uploads(),
        is_truncated: r.is_truncated(),
        next_key_marker: r.next_key_marker().map(str::to_string),
        next_upload_id_marker: r.next_upload_id_marker().map(str::to_string),
        uploads: Some(uploads),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}
