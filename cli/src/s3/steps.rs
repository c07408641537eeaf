//! Sends core's S3 requests (`isec_core::s3::copy_steps` / `migrate_steps`, SPEC.md §12.2,
//! §12.3) in order, with each failed step's undo requests, and the data path of a
//! `Reencrypt` step.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::MetadataDirective;
use isec_core::reencrypt::{IsecSource, LegacySource, Reencryption, Source};
use isec_core::s3::{Headers, ObjectRef, Opened, Request, Step};
use isec_core::{AwsLc, Error, Keyring, LayoutRequest, Params};

use super::client::{CoreCtx, Fail, S3Res, sdk};
use super::object::{self, Info, PutParams, Upload, carry};
use super::url::copy_source;

/// A bucket job's hold on an object's partial upload (SPEC.md §13.3): the checkpoint of an
/// earlier attempt, if any, and where each new one goes.
#[derive(Clone, Copy)]
pub struct Resume<'a> {
    pub checkpoint: Option<&'a [u8]>,
    pub save: &'a (dyn Fn(&[u8]) + Send + Sync),
}

/// What the steps of one copy need and have produced so far.
pub struct Run<'a> {
    pub c: &'a Client,
    pub ring: &'a Arc<Keyring>,
    pub source: &'a Info,
    /// Frame and part size of a re-encrypted object.
    pub params: PutParams,
    upload: Option<Upload>,
    /// The ETag the last write returned.
    pub etag: Option<String>,
    /// Bytes the data path moved.
    pub moved: u64,
    /// For a re-encryption in place by a bucket job.
    pub resume: Option<Resume<'a>>,
}

impl<'a> Run<'a> {
    pub fn new(c: &'a Client, ring: &'a Arc<Keyring>, source: &'a Info, params: PutParams) -> Self {
        Self { c, ring, source, params, upload: None, etag: None, moved: 0, resume: None }
    }

    /// Sends `steps` in order; when one fails, its undo requests (best effort), then the failure.
    pub async fn steps(&mut self, steps: &[Step]) -> S3Res<()> {
        for step in steps {
            if let Err(e) = self.send(&step.request).await {
                for undo in &step.undo {
                    let _ = self.send(undo).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn send(&mut self, req: &Request) -> S3Res<()> {
        let c = self.c;
        let etag = self.source.etag.clone();
        match req {
            Request::CopyObject { source, dest, if_match, metadata, headers } => {
                let w = format!("s3://{}/{}", dest.bucket, dest.key);
                let mut b = c
                    .copy_object()
                    .bucket(&dest.bucket)
                    .key(&dest.key)
                    .copy_source(copy_source(&source.bucket, &source.key));
                if *if_match {
                    b = b.copy_source_if_match(&etag);
                }
                if let Some(m) = metadata {
                    b = b.metadata_directive(MetadataDirective::Replace).set_metadata(Some(to_map(m)));
                }
                if *headers == Headers::Carried {
                    b = carry!(b, self.source.headers);
                }
                let r = b.send().await.map_err(|e| sdk(e, &w, *if_match))?;
                self.etag = r.copy_object_result().and_then(|r| r.e_tag()).map(str::to_string);
            }
            Request::CreateMultipartUpload { dest, metadata } => {
                let up = Upload::create(c, &dest.bucket, &dest.key, to_map(metadata), &self.source.headers).await?;
                self.upload = Some(up);
            }
            Request::UploadPartCopy { source, dest, part, range } => {
                let up = self.upload()?;
                let w = format!("s3://{}/{}", dest.bucket, dest.key);
                let r = c
                    .upload_part_copy()
                    .bucket(&dest.bucket)
                    .key(&dest.key)
                    .upload_id(&up.id)
                    .part_number(i32::try_from(*part).unwrap_or(i32::MAX))
                    .copy_source(copy_source(&source.bucket, &source.key))
                    .copy_source_range(format!("bytes={}-{}", range.0, range.1.saturating_sub(1)))
                    .copy_source_if_match(&etag)
                    .send()
                    .await
                    .map_err(|e| sdk(e, &w, true))?;
                up.add(*part, r.copy_part_result().and_then(|p| p.e_tag()).unwrap_or_default());
            }
            Request::CompleteMultipartUpload { .. } => {
                self.etag = Some(self.upload()?.complete(c).await?);
            }
            Request::AbortMultipartUpload { .. } => {
                if let Some(up) = &self.upload {
                    up.abort(c).await;
                }
            }
            Request::DeleteObject { object } => {
                let w = format!("s3://{}/{}", object.bucket, object.key);
                c.delete_object()
                    .bucket(&object.bucket)
                    .key(&object.key)
                    .send()
                    .await
                    .map_err(|e| sdk(e, &w, false))?;
            }
            Request::Reencrypt { dest, metadata, .. } => {
                self.etag = Some(self.reencrypt(dest, metadata).await?);
                self.moved += self.source.size;
            }
            Request::VerifyIsec { object, kid, plaintext_len } => self.verify(object, kid, *plaintext_len).await?,
            _ => return Err(Fail::core(Error::InvalidState, format!("unknown S3 request {}", req.name()))),
        }
        Ok(())
    }

    fn upload(&self) -> S3Res<&Upload> {
        self.upload.as_ref().ok_or_else(|| Fail::core(Error::InvalidState, "no multipart upload is open"))
    }

    /// The data path (§12.2 step 4, §13): the new object's multipart upload is created
    /// *before* the source is read pinned to its ETag, so that on a server without
    /// conditional writes (Garage) a write to the key that starts afterwards cancels the
    /// upload (`NoSuchUpload`: [`Fail::Changed`]) instead of being overwritten (§15.5). The
    /// upload is completed only after the job's `finish` verified the whole source.
    ///
    /// With a bucket job's [`Resume`] (in place only), a checkpoint of an earlier attempt is
    /// taken up where it stopped and each part stored is checkpointed (§13.3); a failure then
    /// leaves the upload to the job, which retries from it or has it aborted.
    async fn reencrypt(&mut self, dest: &ObjectRef, user: &[(String, String)]) -> S3Res<String> {
        let (c, src) = (self.c, self.source);
        let w = src.where_();
        let in_place = dest.bucket == src.bucket && dest.key == src.key;
        let resume = if in_place { self.resume } else { None };
        let taken = match resume.and_then(|r| r.checkpoint) {
            Some(cp) => self.take_up(cp).await?,
            None => None,
        };
        let (mut job, up, kept) = match taken {
            Some(t) => t,
            None => {
                let params =
                    Params::new(LayoutRequest::Parts(self.params.part_size), Some(self.params.frame_size), None)
                        .at("--part-size (a multiple of --frame-size)")?;
                let job = Reencryption::<AwsLc>::start(self.ring, self.open_source()?, params, 0).at("keyring")?;
                let view: Vec<(&str, &str)> = user.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let meta = isec_core::metadata::object_metadata(&view, job.target_envelope());
                let up = Upload::create(c, &dest.bucket, &dest.key, meta.into_iter().collect(), &src.headers).await?;
                (job, up, 0)
            }
        };
        // Whether a checkpoint names the upload (then the job owns it).
        let mut held = kept > 0;
        let res = async {
            let part_len = usize::try_from(job.target_part_len()).unwrap_or(usize::MAX);
            let mut n = kept;
            let mut stored = async |job: &Reencryption<AwsLc>, n: u32, body: Vec<u8>| -> S3Res<()> {
                up.part(c, n, body).await?;
                if let Some(r) = resume {
                    (r.save)(&job.upload_checkpoint(&up.id, n).at(&w)?);
                    held = true;
                }
                Ok(())
            };
            if !job.progress().finished {
                let mut body = object::get_pinned_from(c, src, job.source_offset()).await?;
                let (mut pending, mut buf) = (Vec::new(), Vec::new());
                while let Some(chunk) = body.next().await? {
                    let mut input: &[u8] = &chunk;
                    while !input.is_empty() {
                        buf.resize(job.update_len(input.len()), 0);
                        let step = job.update(input, &mut buf, 0).at(&w)?;
                        pending.extend_from_slice(&buf[..step.written]);
                        input = &input[step.consumed..];
                        if step.consumed == 0 && step.written == 0 {
                            return Err(Fail::core(
                                Error::InvalidState,
                                format!("{w}: re-encryption made no progress"),
                            ));
                        }
                    }
                    while pending.len() > part_len {
                        let rest = pending.split_off(part_len);
                        n += 1;
                        stored(&job, n, std::mem::replace(&mut pending, rest)).await?;
                    }
                }
                buf.resize(job.finish_len(), 0);
                let k = job.finish(&mut buf).at(&w)?;
                pending.extend_from_slice(&buf[..k]);
                while !pending.is_empty() {
                    let rest = pending.split_off(part_len.min(pending.len()));
                    n += 1;
                    stored(&job, n, std::mem::replace(&mut pending, rest)).await?;
                }
            }
            up.complete(c).await
        }
        .await;
        if res.is_err() && !held {
            up.abort(c).await;
        }
        res
    }

    /// The source as a re-encryption job reads it.
    fn open_source(&self) -> S3Res<Box<dyn Source>> {
        let src = self.source;
        let w = src.where_();
        Ok(match src.opened()? {
            Opened::Isec { envelope, table, .. } => {
                let key = self.ring.open(envelope).at(&format!("{w}: envelope"))?;
                let shape = object::shape(&key, table.as_deref(), src.size).at(&w)?;
                Box::new(IsecSource::<AwsLc>::with_key(key, envelope, shape).at(&w)?)
            }
            Opened::Legacy { object, .. } => {
                let kid = self.ring.legacy_kid_for(object, None).at(&w)?.to_string();
                Box::new(LegacySource::<AwsLc>::new(self.ring, object.clone(), Some(&kid)).at(&w)?)
            }
            Opened::Plaintext => return Err(Fail::core(Error::NotEncrypted, w)),
        })
    }

    /// A bucket job's partial upload of the source, where its checkpoint says (§13.3): the
    /// resumed job, the upload with the parts kept, and their count. None when there is
    /// nothing to take up: an upload that is gone or does not match the checkpoint is
    /// aborted, and a checkpoint that does not authenticate names no upload of this job's.
    async fn take_up(&self, cp: &[u8]) -> S3Res<Option<(Reencryption<AwsLc>, Upload, u32)>> {
        let src = self.source;
        let Ok((job, id)) = Reencryption::<AwsLc>::resume_upload(self.ring, self.open_source()?, cp, 0) else {
            return Ok(None);
        };
        let (up, listed) = match Upload::listed(self.c, &src.bucket, &src.key, &id).await {
            Ok(found) => found,
            Err(Fail::Changed(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let sizes: Vec<(u32, u64)> = listed.iter().map(|(n, size, _)| (*n, *size)).collect();
        let Ok(kept) = job.kept_parts(&sizes) else {
            up.abort(self.c).await;
            return Ok(None);
        };
        for (n, _, etag) in listed.iter().filter(|(n, _, _)| *n <= kept) {
            up.add(*n, etag);
        }
        Ok(Some((job, up, kept)))
    }

    /// `VerifyIsec`: the object just written must be isec under `kid` with the ETag the
    /// previous step returned, and decrypt in full (to `plaintext_len` when known).
    async fn verify(&mut self, object: &ObjectRef, kid: &str, plaintext_len: Option<u64>) -> S3Res<()> {
        let info = object::head(self.c, &object.bucket, &object.key, self.etag.as_deref()).await?;
        let w = info.where_();
        let is_isec = matches!(info.opened(), Ok(Opened::Isec { envelope, .. }) if envelope.kid() == kid);
        if !is_isec {
            return Err(Fail::core(Error::InvalidState, format!("{w} is not isec under {kid:?} after its migration")));
        }
        let n = object::read_through(self.c, self.ring, &info, |_| Ok(())).await?;
        if plaintext_len.is_some_and(|p| p != n) {
            return Err(Fail::core(Error::InvalidState, format!("{w}: {n} bytes after its migration")));
        }
        Ok(())
    }
}

fn to_map(m: &[(String, String)]) -> HashMap<String, String> {
    m.iter().cloned().collect()
}
