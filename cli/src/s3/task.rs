//! A bucket job's per-object tasks (SPEC.md §15.2), each pinned to the ETag the job's HEAD
//! saw: a different current ETag is [`Outcome::Changed`] before anything is written.

use std::sync::Arc;

use aws_sdk_s3::Client;
use isec_core::copy::{CopyRequest, decide};
use isec_core::job::{Outcome, Task, TaskKind};
use isec_core::s3::{ObjectRef, Opened, copy_steps, migrate_steps};
use isec_core::shape::Shape;
use isec_core::{Error, Keyring};

use super::client::{CoreCtx, S3Res};
use super::object::{self, Info, PutParams};
use super::steps::{Resume, Run};

/// What every task of a job shares.
pub struct Ctx {
    pub c: Client,
    pub ring: Arc<Keyring>,
    pub bucket: String,
    pub params: PutParams,
}

/// Runs `t` and says how it ended; `save` keeps a partial upload's checkpoint in the job.
pub async fn run(ctx: &Ctx, t: &Task, save: &(dyn Fn(&[u8]) + Send + Sync)) -> Outcome {
    match go(ctx, t, save).await {
        Ok(moved) => Outcome::Done { moved },
        Err(f) => f.outcome(),
    }
}

async fn go(ctx: &Ctx, t: &Task, save: &(dyn Fn(&[u8]) + Send + Sync)) -> S3Res<u64> {
    let src = object::head(&ctx.c, &ctx.bucket, &t.key, Some(&t.etag)).await?;
    let here = ObjectRef::new(&ctx.bucket, &t.key);
    let mut run = Run::new(&ctx.c, &ctx.ring, &src, ctx.params);
    run.resume = Some(Resume { checkpoint: t.checkpoint.as_deref(), save });
    let meta = src.meta_view();
    let shape = table_shape(&ctx.ring, &src);
    let mut req = copy_request(&src, &meta, shape.as_ref());
    let active = ctx.ring.active_kid().at("keyring")?.to_string();
    match t.kind {
        TaskKind::Rewrap => {
            // A REPLACE self-copy with the rewrapped envelope, pinned to the ETag (§10.2).
            req.target_kid = Some(&active);
            let plan = decide(&req, Some(&ctx.ring)).at(&src.where_())?;
            run.steps(&copy_steps(&plan, &here, &meta, &here, false)).await?;
        }
        TaskKind::Reencrypt => {
            req.rotate_dek = true;
            let plan = decide(&req, Some(&ctx.ring)).at(&src.where_())?;
            run.steps(&copy_steps(&plan, &here, &meta, &here, false)).await?;
        }
        TaskKind::Migrate => {
            let (sidecar, plaintext_len) = match src.opened()? {
                Opened::Legacy { object, sidecar } => (sidecar.clone(), Some(object.plaintext_len())),
                // Already isec: nothing to migrate.
                Opened::Isec { .. } => return Ok(0),
                Opened::Plaintext => return Err(super::client::Fail::core(Error::NotEncrypted, src.where_())),
            };
            req.migrate_legacy = true;
            let plan = decide(&req, Some(&ctx.ring)).at(&src.where_())?;
            let m = migrate_steps(&plan, &here, &meta, sidecar.as_deref(), &active, plaintext_len).at(&src.where_())?;
            run.steps(&m.steps).await?;
        }
    }
    Ok(run.moved)
}

/// The copy decision's request for `src` (COPY directive, S3's limits).
pub fn copy_request<'a>(src: &Info, meta: &'a [(&'a str, &'a str)], shape: Option<&'a Shape>) -> CopyRequest<'a> {
    let mut req = CopyRequest::new(meta, src.size);
    req.source_sidecar = src.opened.as_ref().is_ok_and(|o| o.format_and_sidecar().1.is_some());
    req.source_shape = shape;
    req
}

/// A table-layout object's shape, for part copies cut on its frame boundaries.
pub fn table_shape(ring: &Keyring, src: &Info) -> Option<Shape> {
    match &src.opened {
        Ok(Opened::Isec { envelope, table: Some(t), .. }) => {
            let key = ring.open(envelope).ok()?;
            object::shape(&key, Some(t), src.size).ok()
        }
        _ => None,
    }
}
