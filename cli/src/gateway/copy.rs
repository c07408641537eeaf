//! CopyObject through core's copy decision (SPEC.md §12): a native copy on the backend
//! whenever core finds one valid, so renames and backups move no object bytes through the
//! gateway; UploadPartCopy decrypts the source range and encrypts it as the new part (part
//! keys derive from the destination's DEK, so no part can be copied natively).

use std::sync::Arc;

use isec_core::copy::{Directive, decide};
use isec_core::s3::gateway as rules;
use isec_core::s3::{ObjectRef, copy_steps};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use super::body::Checks;
use super::error::{self, from_fail, s3};
use super::read::{self, hidden, not_found};
use super::service::Gateway;
use super::write::{part_body, writable};
use crate::s3::object::{self, PutParams};
use crate::s3::steps::Run;
use crate::s3::task::{copy_request, table_shape};

fn source(c: &CopySource) -> S3Result<(String, String)> {
    match c {
        CopySource::Bucket { bucket, key, version_id: None } => Ok((bucket.to_string(), key.to_string())),
        CopySource::Bucket { .. } => {
            Err(s3(S3ErrorCode::NotImplemented, "copies of object versions are not supported"))
        }
        _ => Err(s3(S3ErrorCode::NotImplemented, "access point copy sources are not supported")),
    }
}

/// A copy source's conditions; a failed one answers 412 (S3's copies have no 304).
macro_rules! check_source {
    ($i:expr, $etag:expr, $last_modified:expr) => {{
        let c = read::Cond {
            if_match: $i.copy_source_if_match.as_ref(),
            if_none_match: $i.copy_source_if_none_match.as_ref(),
            modified_since: $i.copy_source_if_modified_since.as_ref(),
            unmodified_since: $i.copy_source_if_unmodified_since.as_ref(),
        };
        match c.evaluate($etag, $last_modified) {
            rules::Precondition::Proceed => Ok(()),
            _ => Err(read::precondition_failed()),
        }
    }};
}

pub async fn copy(g: &Gateway, i: CopyObjectInput) -> S3Result<S3Response<CopyObjectOutput>> {
    let (sb, sk) = source(&i.copy_source)?;
    hidden(&sk)?;
    writable(&i.key)?;
    let mut info = object::head(&g.c, &sb, &sk, None).await.map_err(not_found)?;
    // An object nobody encrypted is unauthenticated: copying it through the gateway would
    // give it an envelope and make it readable, so it is refused as a read is.
    if matches!(info.opened, Ok(isec_core::s3::Opened::Plaintext)) && !g.serve_plaintext {
        return Err(error::core(isec_core::Error::NotEncrypted, &info.where_()));
    }
    let meta_owned = info.metadata.clone();
    let meta: Vec<(&str, &str)> = meta_owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let etag = rules::client_etag(&meta).map_or_else(|| rules::opaque_etag(&info.etag), str::to_string);
    check_source!(i, &etag, info.last_modified)?;
    let replace = i.metadata_directive.as_ref().is_some_and(|d| d.as_str() == "REPLACE");
    let new_meta: Vec<(String, String)> =
        i.metadata.iter().flatten().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    let new_view: Vec<(&str, &str)> = new_meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if replace {
        // The caller's system headers win over the source's (SPEC.md §12.2).
        let h = &mut info.headers;
        for (slot, v) in [
            (&mut h.content_type, &i.content_type),
            (&mut h.content_encoding, &i.content_encoding),
            (&mut h.content_disposition, &i.content_disposition),
            (&mut h.content_language, &i.content_language),
            (&mut h.cache_control, &i.cache_control),
        ] {
            if v.is_some() {
                slot.clone_from(v);
            }
        }
    }
    let shape = table_shape(&g.ring, &info);
    let mut req = copy_request(&info, &meta, shape.as_ref());
    if replace {
        req.directive = Directive::Replace;
        req.new_metadata = &new_view;
    }
    req.require_encryption = true;
    let w = format!("s3://{}/{}", i.bucket, i.key);
    let plan = decide(&req, Some(&g.ring)).map_err(|e| error::core(e, &info.where_()))?;
    let (from, to) = (ObjectRef::new(&sb, &sk), ObjectRef::new(&i.bucket, &i.key));
    let steps = copy_steps(&plan, &from, &meta, &to, false);
    let ring = Arc::clone(&g.ring);
    let mut run = Run::new(&g.c, &ring, &info, PutParams { part_size: 16 << 20, frame_size: g.frame });
    run.steps(&steps).await.map_err(from_fail)?;
    g.moved(run.moved);
    eprintln!("isec gateway: copied s3://{sb}/{sk} to {w} ({})", plan.action.name());
    let out = CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(etag)),
            last_modified: Some(Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}

pub async fn part_copy(g: &Gateway, req: S3Request<UploadPartCopyInput>) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let i = &req.input;
    let (sb, sk) = source(&i.copy_source)?;
    let src = read::open(g, &sb, &sk, true).await?;
    check_source!(i, &src.etag, src.info.last_modified)?;
    let (start, end) = match &i.copy_source_range {
        None => (0, src.len),
        Some(r) => {
            let r = Range::parse(r).map_err(|_| s3(S3ErrorCode::InvalidArgument, "bad x-amz-copy-source-range"))?;
            let span = r
                .check(src.len)
                .map_err(|_| s3(S3ErrorCode::InvalidRange, "The requested range is not satisfiable"))?;
            (span.start, span.end)
        }
    };
    let (blob, len) = read::plaintext(g, &src, start, end).await?;
    let (etag, _) = part_body(g, &i.bucket, &i.key, &i.upload_id, i.part_number, blob, len, Checks::default()).await?;
    let out = UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(etag)),
            last_modified: Some(Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(S3Response::new(out))
}
