//! The operations the gateway answers, each handed to the module that holds it. Every other
//! S3 operation is answered NotImplemented by s3s: nothing reaches the backend unencrypted
//! or unmapped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::Client;
use isec_core::Keyring;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use super::error::from_fail;
use super::list::Sizes;
use super::uploads::Uploads;
use super::{copy, list, read, write};
use crate::s3::client::sdk;

/// The gateway's state: the backend client, the keyring, the uploads in progress.
pub struct Gateway {
    pub c: Client,
    pub ring: Arc<Keyring>,
    /// Frame size of new objects.
    pub frame: u64,
    pub serve_plaintext: bool,
    pub uploads: Uploads,
    pub sizes: Sizes,
    /// Object bytes sent to the backend (ciphertext), for the log.
    moved: AtomicU64,
}

impl Gateway {
    pub fn new(c: Client, ring: Arc<Keyring>, frame: u64, serve_plaintext: bool) -> Self {
        Self {
            c,
            ring,
            frame,
            serve_plaintext,
            uploads: Uploads::default(),
            sizes: Sizes::default(),
            moved: AtomicU64::new(0),
        }
    }

    pub fn moved(&self, n: u64) {
        self.moved.fetch_add(n, Ordering::Relaxed);
    }

    /// Object bytes sent to the backend so far.
    pub fn moved_total(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }
}

/// The service s3s calls.
pub struct Shared(pub Arc<Gateway>);

fn bucket_err<E>(
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    bucket: &str,
) -> s3s::S3Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let f = sdk(e, &format!("s3://{bucket}"), false);
    match f {
        crate::s3::client::Fail::S3 { code, .. } if code == "NotFound" => {
            super::error::s3(s3s::S3ErrorCode::NoSuchBucket, "The specified bucket does not exist")
        }
        f => from_fail(f),
    }
}

#[async_trait::async_trait]
impl S3 for Shared {
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        read::head(&self.0, req.input).await
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        read::get(&self.0, req.input).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        write::put(&self.0, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        write::create(&self.0, req.input).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        write::part(&self.0, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        copy::part_copy(&self.0, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        write::complete(&self.0, req.input).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        write::abort(&self.0, req.input).await
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        write::list_parts(&self.0, req.input).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        write::list_uploads(&self.0, req.input).await
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        copy::copy(&self.0, req.input).await
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        list::list_v2(&self.0, req.input).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        list::list_v1(&self.0, req.input).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        list::delete(&self.0, req.input).await
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        list::delete_many(&self.0, req.input).await
    }

    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let r = self.0.c.list_buckets().send().await.map_err(|e| bucket_err(e, ""))?;
        let buckets = r
            .buckets()
            .iter()
            .map(|b| Bucket {
                name: b.name().map(str::to_string),
                creation_date: b
                    .creation_date()
                    .and_then(|t| std::time::SystemTime::try_from(*t).ok())
                    .map(Timestamp::from),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), ..Default::default() }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        let b = &req.input.bucket;
        self.0.c.head_bucket().bucket(b).send().await.map_err(|e| bucket_err(e, b))?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let b = &req.input.bucket;
        let r = self.0.c.get_bucket_location().bucket(b).send().await.map_err(|e| bucket_err(e, b))?;
        let location_constraint = r
            .location_constraint()
            .map(|l| BucketLocationConstraint::from(l.as_str().to_string()))
            .filter(|l| !l.as_str().is_empty());
        Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let b = &req.input.bucket;
        self.0.c.create_bucket().bucket(b).send().await.map_err(|e| bucket_err(e, b))?;
        Ok(S3Response::new(CreateBucketOutput::default()))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let b = &req.input.bucket;
        self.0.c.delete_bucket().bucket(b).send().await.map_err(|e| bucket_err(e, b))?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }
}
