//! `isec s3 get|put|head|cp`: one object at a time.

use std::io::Read;
use std::sync::Arc;

use aws_sdk_s3::Client;
use isec_core::Keyring;
use isec_core::copy::decide;
use isec_core::s3::{ObjectRef, Opened, copy_steps};
use isec_core::shape::Shape;
use serde_json::json;

use super::client::{CoreCtx, Fail, S3Res};
use super::object::{self, PutParams};
use super::steps::Run;
use super::task::{copy_request, table_shape};
use super::url::S3Url;
use crate::crypt::{Input, Output};
use crate::fail::Res;
use crate::progress;

/// `isec s3 get s3://B/K OUT|-`: nothing is written to OUT (renamed into place) unless the
/// whole object verified; stdout gets the plaintext as it verifies frame by frame.
pub async fn get(c: &Client, ring: &Keyring, src: &S3Url, out: &str, quiet: bool) -> Res<()> {
    let info = object::head(c, &src.bucket, &src.key, None).await?;
    let mut o = Output::create(out)?;
    let bar = progress::bar(Some(info.size), quiet, "get");
    object::read_through(c, ring, &info, |b| {
        bar.inc(b.len() as u64);
        o.write(b).map_err(Fail::Cli)
    })
    .await?;
    bar.finish_and_clear();
    o.commit()
}

/// `isec s3 put IN|- s3://B/K`.
pub async fn put(c: &Client, ring: &Keyring, input: &str, dst: &S3Url, p: PutParams, quiet: bool) -> Res<()> {
    let mut inp = Input::open(input)?;
    let size = inp.len;
    let bar = progress::bar(size, quiet, "put");
    let name = inp.name.clone();
    let mut read = |buf: &mut [u8]| -> S3Res<usize> {
        inp.reader.read(buf).map_err(|e| Fail::Cli(crate::fail::CliError::io(std::path::Path::new(&name), e)))
    };
    let (etag, kid) =
        object::put(c, ring, &ObjectRef::new(&dst.bucket, &dst.key), &mut read, size, p, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!("put s3://{}/{} under {kid} (ETag {etag})", dst.bucket, dst.key);
    }
    Ok(())
}

/// `isec s3 head s3://B/K`: what the object is and which key it needs; no key used.
pub async fn head(c: &Client, src: &S3Url, as_json: bool) -> Res<()> {
    let info = object::head(c, &src.bucket, &src.key, None).await?;
    let mut r = json!({
        "bucket": info.bucket, "key": info.key, "etag": info.etag, "stored_size": info.size,
        "content_type": info.headers.content_type,
    });
    match &info.opened {
        Err(e) => {
            r["format"] = json!("unreadable");
            r["error"] = json!(e.code());
        }
        Ok(o) => {
            let (format, sidecar) = o.format_and_sidecar();
            r["format"] = json!(format);
            r["sidecar"] = json!(sidecar);
            match o {
                Opened::Isec { envelope, table, .. } => {
                    let i = envelope.info();
                    r["kid"] = json!(envelope.kid());
                    r["layout"] = json!(i.layout.name());
                    r["frame_size"] = json!(i.frame_size);
                    r["part_size"] = json!(i.part_size);
                    r["declared_size"] = json!(i.declared_size);
                    if table.is_none()
                        && let Ok(s) = Shape::from_ciphertext_len(envelope.header(), info.size)
                    {
                        r["plaintext_len"] = json!(s.plaintext_len());
                        r["frames"] = json!(s.frame_count());
                    }
                }
                Opened::Legacy { object, .. } => {
                    r["kid"] = json!(object.kid());
                    r["layout"] = json!(format!("{:?}", object.layout()).to_lowercase());
                    r["plaintext_len"] = json!(object.plaintext_len());
                }
                Opened::Plaintext => {}
            }
        }
    }
    crate::crypt::print_report(&r, as_json);
    Ok(())
}

/// `isec s3 cp s3://B/K s3://B2/K2`: the cheapest copy core finds valid (§12), sent as
/// core's steps. `target_kid`: the copy's key (a rewrap; no object bytes move).
pub async fn cp(
    c: &Client,
    ring: Option<Arc<Keyring>>,
    src: &S3Url,
    dst: &S3Url,
    target_kid: Option<&str>,
    p: PutParams,
) -> Res<()> {
    let info = object::head(c, &src.bucket, &src.key, None).await?;
    let ring = ring.unwrap_or_else(|| Arc::new(Keyring::new()));
    let meta = info.meta_view();
    let shape = table_shape(&ring, &info);
    let mut req = copy_request(&info, &meta, shape.as_ref());
    req.target_kid = target_kid;
    let plan = decide(&req, Some(&ring)).at(&info.where_())?;
    let (from, to) = (ObjectRef::new(&src.bucket, &src.key), ObjectRef::new(&dst.bucket, &dst.key));
    let mut run = Run::new(c, &ring, &info, p);
    run.steps(&copy_steps(&plan, &from, &meta, &to, false)).await?;
    eprintln!("copied s3://{}/{} to s3://{}/{} ({})", src.bucket, src.key, dst.bucket, dst.key, plan.action.name());
    Ok(())
}

/// `isec s3 repair s3://B/DEST --from s3://B/SRC`: gives an object that lost its isec
/// metadata (scan class `stripped_isec`: a copy another tool made part by part without the
/// user metadata, SPEC.md §14.1) the envelope of the object it was copied from.
///
/// Nothing is written before DEST's whole body decrypted under SRC's envelope (and segment
/// table, for the table layout), pinned to DEST's ETag; then SRC's table sidecar, if it has
/// one, is copied next to DEST, and DEST is copied onto itself with the REPLACE directive and
/// SRC's metadata and content headers, pinned to the ETag of the body that verified.
pub async fn repair(c: &Client, ring: &Keyring, dest: &S3Url, from: &S3Url, quiet: bool) -> Res<()> {
    let src = object::head(c, &from.bucket, &from.key, None).await?;
    let Opened::Isec { envelope, table, table_sidecar } = src.opened()? else {
        return Err(Fail::core(isec_core::Error::NotEncrypted, format!("{}: not an isec object", src.where_())).into());
    };
    let dst = object::head(c, &dest.bucket, &dest.key, None).await?;
    if !matches!(dst.opened, Ok(Opened::Plaintext)) {
        let msg = format!("{}: has encryption metadata of its own", dst.where_());
        return Err(Fail::core(isec_core::Error::InvalidParameter, msg).into());
    }
    // DEST's body read as if it carried SRC's envelope: every frame and its end verified.
    let probe = object::Info {
        opened: Ok(Opened::Isec { envelope: envelope.clone(), table: table.clone(), table_sidecar: None }),
        ..dst
    };
    let n = object::read_through(c, ring, &probe, |_| Ok(())).await?;
    let w = probe.where_();
    if let Some(side) = table_sidecar {
        let to = isec_core::metadata::table_sidecar_key(&dest.key);
        c.copy_object()
            .bucket(&dest.bucket)
            .key(&to)
            .copy_source(format!("{}/{side}", from.bucket))
            .send()
            .await
            .map_err(|e| super::client::sdk(e, &format!("s3://{}/{to}", dest.bucket), false))?;
    }
    let b = c
        .copy_object()
        .bucket(&dest.bucket)
        .key(&dest.key)
        .copy_source(format!("{}/{}", dest.bucket, dest.key))
        .copy_source_if_match(&probe.etag)
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .set_metadata(Some(src.metadata.iter().cloned().collect()));
    object::carry!(b, src.headers).send().await.map_err(|e| super::client::sdk(e, &w, true))?;
    if !quiet {
        eprintln!("repaired {w}: {n} bytes verified under the envelope of {} ({})", src.where_(), envelope.kid());
    }
    Ok(())
}
