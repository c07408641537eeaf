//! One object: its HEAD opened by core (§12.1), whole reads through a verifying decryptor,
//! and encrypted uploads (one PutObject up to a part, else a parts-layout multipart upload).

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use isec_core::legacy::LegacyDecryptor;
use isec_core::s3::{ObjectOpen, ObjectRef, Open, Opened};
use isec_core::shape::Shape;
use isec_core::{AwsLc, Decryptor, Error, Keyring, LayoutRequest, ObjectKey, Params, SegmentTable, Stream};

use super::client::{CoreCtx, Fail, S3Res, is_not_found, sdk};

/// The system headers a REPLACE copy or a new upload carries from its source
/// (`isec_core::s3::CARRIED_HEADERS`), as the HEAD returned them.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
}

/// Sets the carried headers on any request builder that has them.
macro_rules! carry {
    ($b:expr, $h:expr) => {
        $b.set_content_type($h.content_type.clone())
            .set_content_encoding($h.content_encoding.clone())
            .set_content_disposition($h.content_disposition.clone())
            .set_content_language($h.content_language.clone())
            .set_cache_control($h.cache_control.clone())
    };
}
pub(crate) use carry;

/// What a HEAD says about an object, opened as core decides.
#[derive(Debug)]
pub struct Info {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
    pub metadata: Vec<(String, String)>,
    pub headers: Carried,
    /// When the backend last wrote the object.
    pub last_modified: Option<std::time::SystemTime>,
    /// The opened object, or the metadata's own error (a byte copy may still keep it).
    pub opened: Result<Opened, Error>,
}

impl Info {
    pub fn where_(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    pub fn meta_view(&self) -> Vec<(&str, &str)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// The opened object, or its metadata's error.
    pub fn opened(&self) -> S3Res<&Opened> {
        self.opened.as_ref().map_err(|e| Fail::core(*e, format!("{}: metadata", self.where_())))
    }
}

/// HEADs `key` (a 404 is [`Fail::Changed`] when `pinned`, else an error) and opens it,
/// fetching the sidecar core asks for. `if_match`: the ETag the caller expects.
pub async fn head(c: &Client, bucket: &str, key: &str, if_match: Option<&str>) -> S3Res<Info> {
    let where_ = format!("s3://{bucket}/{key}");
    let r = c.head_object().bucket(bucket).key(key).send().await.map_err(|e| sdk(e, &where_, if_match.is_some()))?;
    let etag = r.e_tag().unwrap_or_default().to_string();
    if let Some(want) = if_match
        && etag.trim_matches('"') != want.trim_matches('"')
    {
        return Err(Fail::Changed(format!("{where_} is at ETag {etag}, not {want}")));
    }
    let size = u64::try_from(r.content_length().unwrap_or(0)).unwrap_or(0);
    let mut metadata: Vec<(String, String)> =
        r.metadata().map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect()).unwrap_or_default();
    metadata.sort();
    let headers = Carried {
        content_type: r.content_type().map(str::to_string),
        content_encoding: r.content_encoding().map(str::to_string),
        content_disposition: r.content_disposition().map(str::to_string),
        content_language: r.content_language().map(str::to_string),
        cache_control: r.cache_control().map(str::to_string),
    };
    let last_modified = r.last_modified().and_then(|t| std::time::SystemTime::try_from(*t).ok());
    let view: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let opened = match ObjectOpen::new(key, &view, size) {
        Err(e) => Err(e),
        Ok((mut opening, mut next)) => loop {
            match next {
                Open::Ready(o) => break Ok(o),
                Open::Fetch { key: side, max_len, .. } => {
                    let body = sidecar(c, bucket, &side, max_len).await?;
                    next = opening.feed(body.as_deref()).at(&format!("s3://{bucket}/{side} (sidecar of {where_})"))?;
                }
            }
        },
    };
    Ok(Info { bucket: bucket.into(), key: key.into(), etag, size, metadata, headers, last_modified, opened })
}

/// A sidecar's body (at most one byte over `max_len`: core refuses a longer one), or `None`.
async fn sidecar(c: &Client, bucket: &str, key: &str, max_len: u64) -> S3Res<Option<Vec<u8>>> {
    let where_ = format!("s3://{bucket}/{key}");
    let r = match c.get_object().bucket(bucket).key(key).send().await {
        Ok(r) => r,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(sdk(e, &where_, false)),
    };
    let mut body = Body { stream: r.body, what: where_ };
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await? {
        out.extend_from_slice(&chunk);
        if out.len() as u64 > max_len {
            break;
        }
    }
    Ok(Some(out))
}

/// A response body, read in the pieces the connection delivers.
pub struct Body {
    stream: ByteStream,
    what: String,
}

impl Body {
    /// The next piece, or `None` at the end; a broken connection is retryable.
    pub async fn next(&mut self) -> S3Res<Option<bytes::Bytes>> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => {
                Err(Fail::S3 { code: "ConnectionError".into(), retryable: true, msg: format!("{}: {e}", self.what) })
            }
        }
    }
}

/// GETs the whole object pinned to the ETag of `info`'s HEAD (412: [`Fail::Changed`]).
pub async fn get_pinned(c: &Client, info: &Info) -> S3Res<Body> {
    get_pinned_from(c, info, 0).await
}

/// [`get_pinned`] from byte `from` on (a resumed re-encryption's restart point).
pub async fn get_pinned_from(c: &Client, info: &Info, from: u64) -> S3Res<Body> {
    let what = info.where_();
    let range = (from > 0).then(|| format!("bytes={from}-"));
    let r = c
        .get_object()
        .bucket(&info.bucket)
        .key(&info.key)
        .if_match(&info.etag)
        .set_range(range)
        .send()
        .await
        .map_err(|e| sdk(e, &what, true))?;
    Ok(Body { stream: r.body, what })
}

/// The decryptor for a whole read of an opened object (isec or previous proxy).
pub fn decryptor(ring: &Keyring, info: &Info) -> S3Res<Box<dyn Stream + Send>> {
    let w = info.where_();
    match info.opened()? {
        Opened::Isec { envelope, table, .. } => {
            let key = ring.open(envelope).at(&format!("{w}: envelope"))?;
            let shape = shape(&key, table.as_deref(), info.size).at(&w)?;
            Ok(Box::new(Decryptor::<AwsLc>::with_shape(&key, shape).at(&w)?))
        }
        Opened::Legacy { object, .. } => {
            let key = ring.open_legacy(object, None).at(&format!("{w}: legacy key"))?;
            Ok(Box::new(LegacyDecryptor::<AwsLc>::new(&key, object).at(&w)?))
        }
        Opened::Plaintext => Err(Fail::core(Error::NotEncrypted, w)),
    }
}

/// The object's shape from its stored size, or from its segment table (table layout).
pub fn shape(key: &ObjectKey, table: Option<&[u8]>, size: u64) -> Result<Shape, Error> {
    match table {
        Some(t) => Shape::from_table(key.header(), SegmentTable::decode(t, key)?, size),
        None => Shape::from_ciphertext_len(key.header(), size),
    }
}

/// GETs the object pinned to the HEAD's ETag and decrypts it into `sink`; returns the
/// plaintext length. Nothing is final until `finish` verified the object's end: the caller
/// commits its output only on `Ok`.
pub async fn read_through(
    c: &Client,
    ring: &Keyring,
    info: &Info,
    mut sink: impl FnMut(&[u8]) -> S3Res<()>,
) -> S3Res<u64> {
    let w = info.where_();
    let mut dec = decryptor(ring, info)?;
    let mut body = get_pinned(c, info).await?;
    let mut buf = Vec::new();
    let mut n = 0u64;
    while let Some(chunk) = body.next().await? {
        buf.resize(dec.update_len(chunk.len()), 0);
        let k = dec.update(&chunk, &mut buf).at(&w)?;
        sink(&buf[..k])?;
        n += k as u64;
    }
    buf.resize(dec.finish_len(), 0);
    let k = dec.finish(&mut buf).at(&w)?;
    sink(&buf[..k])?;
    Ok(n + k as u64)
}

/// Upload settings.
#[derive(Debug, Clone, Copy)]
pub struct PutParams {
    pub part_size: u64,
    pub frame_size: u64,
}

/// Reads up to `want` bytes from `read` (short only at the end).
pub type Reader<'a> = &'a mut dyn FnMut(&mut [u8]) -> S3Res<usize>;

fn fill(read: Reader<'_>, want: u64) -> S3Res<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(want).unwrap_or(usize::MAX)];
    let mut got = 0;
    while got < buf.len() {
        let k = read(&mut buf[got..])?;
        if k == 0 {
            break;
        }
        got += k;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Encrypts and uploads a body of `size` bytes (`None`: unknown, read one part ahead) under
/// the active key: up to one part, one PutObject of a single-layout object; larger, a
/// multipart upload in the parts layout, one isec part per S3 part, aborted on failure.
/// Returns the new ETag and the envelope's kid.
pub async fn put(
    c: &Client,
    ring: &Keyring,
    dest: &ObjectRef,
    read: Reader<'_>,
    size: Option<u64>,
    p: PutParams,
    mut progress: impl FnMut(u64),
) -> S3Res<(String, String)> {
    let (bucket, key) = (dest.bucket.as_str(), dest.key.as_str());
    let w = format!("s3://{bucket}/{key}");
    let first = fill(read, p.part_size)?;
    let second = if (first.len() as u64) < p.part_size || size.is_some_and(|s| s <= p.part_size) {
        Vec::new()
    } else {
        fill(read, p.part_size)?
    };
    if second.is_empty() {
        let params =
            Params::new(LayoutRequest::Single, Some(p.frame_size), Some(first.len() as u64)).at("--frame-size")?;
        let (env, okey) = ring.create_envelope(params).at("keyring")?;
        let ct = isec_core::oneshot::encrypt::<AwsLc>(&okey, &first).at(&w)?;
        let meta = isec_core::metadata::object_metadata(&[], &env);
        let r = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .set_metadata(Some(meta.into_iter().collect()))
            .body(ByteStream::from(ct))
            .send()
            .await
            .map_err(|e| sdk(e, &w, false))?;
        progress(first.len() as u64);
        return Ok((r.e_tag().unwrap_or_default().into(), env.kid().into()));
    }
    let layout = match size {
        Some(s) => LayoutRequest::FitParts { size: s, preferred: p.part_size },
        None => LayoutRequest::Parts(p.part_size),
    };
    let params = Params::new(layout, Some(p.frame_size), size).at("--part-size (a multiple of --frame-size)")?;
    let part = params.part_size().unwrap_or(p.part_size);
    let (env, okey) = ring.create_envelope(params).at("keyring")?;
    let meta: HashMap<String, String> = isec_core::metadata::object_metadata(&[], &env).into_iter().collect();
    let up = Upload::create(c, bucket, key, meta, &Carried::default()).await?;
    let res = async {
        // Parts of `part` bytes: refill what was read with the first guess of the size.
        let mut pending = first;
        pending.extend_from_slice(&second);
        let mut n = 0u32;
        let mut eof = false;
        loop {
            while (pending.len() as u64) < 2 * part && !eof {
                let more = fill(read, part)?;
                eof = (more.len() as u64) < part;
                pending.extend_from_slice(&more);
            }
            let take = usize::try_from(part).unwrap_or(usize::MAX).min(pending.len());
            let rest = pending.split_off(take);
            let last = rest.is_empty() && eof;
            n += 1;
            let ct = isec_core::oneshot::encrypt_part::<AwsLc>(&okey, n, last, &pending).at(&w)?;
            up.part(c, n, ct).await?;
            progress(pending.len() as u64);
            pending = rest;
            if last {
                return up.complete(c).await;
            }
        }
    }
    .await;
    match res {
        Ok(etag) => Ok((etag, env.kid().into())),
        Err(e) => {
            up.abort(c).await;
            Err(e)
        }
    }
}

/// An open multipart upload and the parts it has so far.
pub struct Upload {
    pub bucket: String,
    pub key: String,
    pub id: String,
    parts: std::sync::Mutex<Vec<CompletedPart>>,
}

impl Upload {
    pub async fn create(
        c: &Client,
        bucket: &str,
        key: &str,
        meta: HashMap<String, String>,
        h: &Carried,
    ) -> S3Res<Self> {
        let w = format!("s3://{bucket}/{key}");
        let b = c.create_multipart_upload().bucket(bucket).key(key).set_metadata(Some(meta));
        let r = carry!(b, h).send().await.map_err(|e| sdk(e, &w, false))?;
        let id = r.upload_id().ok_or_else(|| Fail::S3 {
            code: "InvalidResponse".into(),
            retryable: true,
            msg: format!("{w}: CreateMultipartUpload returned no upload id"),
        })?;
        Ok(Self { bucket: bucket.into(), key: key.into(), id: id.into(), parts: std::sync::Mutex::default() })
    }

    /// An upload opened earlier, with its parts as ListParts gives them: `(number, size,
    /// ETag)`. A 404 (`NoSuchUpload`) is [`Fail::Changed`].
    pub async fn listed(c: &Client, bucket: &str, key: &str, id: &str) -> S3Res<(Self, Vec<(u32, u64, String)>)> {
        let w = format!("s3://{bucket}/{key}");
        let mut pages = c.list_parts().bucket(bucket).key(key).upload_id(id).into_paginator().send();
        let mut parts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk(e, &w, true))?;
            for p in page.parts() {
                let n = u32::try_from(p.part_number().unwrap_or(0)).unwrap_or(0);
                let size = u64::try_from(p.size().unwrap_or(-1)).unwrap_or(u64::MAX);
                parts.push((n, size, p.e_tag().unwrap_or_default().to_string()));
            }
        }
        let up = Self { bucket: bucket.into(), key: key.into(), id: id.into(), parts: std::sync::Mutex::default() };
        Ok((up, parts))
    }

    fn where_(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Uploads part `n`. A 404 (`NoSuchUpload`: a newer write to the key cancelled the
    /// upload) is [`Fail::Changed`].
    pub async fn part(&self, c: &Client, n: u32, body: Vec<u8>) -> S3Res<()> {
        let r = c
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(i32::try_from(n).unwrap_or(i32::MAX))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk(e, &self.where_(), true))?;
        self.add(n, r.e_tag().unwrap_or_default());
        Ok(())
    }

    /// Records a part uploaded by another request (UploadPartCopy).
    pub fn add(&self, n: u32, etag: &str) {
        let part = CompletedPart::builder().part_number(i32::try_from(n).unwrap_or(i32::MAX)).e_tag(etag).build();
        if let Ok(mut p) = self.parts.lock() {
            p.push(part);
        }
    }

    /// Completes the upload with its parts in order; returns the new ETag.
    pub async fn complete(&self, c: &Client) -> S3Res<String> {
        let mut parts = self.parts.lock().map(|p| p.clone()).unwrap_or_default();
        parts.sort_by_key(|p| p.part_number());
        let r = c
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| sdk(e, &self.where_(), true))?;
        Ok(r.e_tag().unwrap_or_default().into())
    }

    /// Best effort: a failed abort leaves an incomplete upload the bucket's lifecycle removes.
    pub async fn abort(&self, c: &Client) {
        let _ = c.abort_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.id).send().await;
    }
}
