//! Re-encryption jobs: one source object (isec or legacy) to a new parts-layout isec object
//! under a new DEK (SPEC.md §13), sans-IO and resumable.

use isec_core::reencrypt::{Checkpoint, IsecSource, LegacySource, Reencryption, Source, target_params};
use isec_core::{Error as CoreError, LayoutRequest, Params};
use napi::Env;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::convert::{Bytes, Obj, Ref, Text, U64};
use crate::error::Fallible;
use crate::keys::{Envelope, KeyTask, Keyring, ObjectKey};
use crate::layout::Shape;
use crate::legacy::LegacyObject;
use crate::{C, Js, f, getters, made_by};

/// Options of a re-encryption job.
#[napi(object, object_to_js = false)]
pub struct ReencryptOptions {
    /// Frame size of the new object (default 65536).
    #[napi(ts_type = "number")]
    pub frame_size: Option<U64>,
    /// Plaintext bytes per part of the new object (a parts-layout object): rounded up to
    /// whole frames and grown to fit 10000 parts (default 8 MiB). Ignored on resume (the
    /// checkpoint's envelope has it).
    #[napi(ts_type = "number")]
    pub part_size: Option<U64>,
    /// Bytes per second (0 or absent: unlimited).
    #[napi(ts_type = "number")]
    pub rate: Option<U64>,
    /// Legacy sources: the key id to use when the object recorded none.
    #[napi(ts_type = "string")]
    pub kid: Option<Text>,
    /// Isec sources: the source's key, opened beforehand (`await keyring.open(envelope)`,
    /// for external keys); else the keyring opens it.
    #[napi(ts_type = "ObjectKey")]
    pub source_key: Option<Ref<ObjectKey>>,
    /// Start: the new object's envelope, created beforehand with
    /// `keyring.withExternal(ReencryptionJob.beginTarget(...))` (for an external active key).
    #[napi(ts_type = "Envelope")]
    pub target_envelope: Option<Ref<Envelope>>,
    /// Start: the key of `targetEnvelope`. Resume: the key of the checkpoint's envelope,
    /// opened beforehand (for an external active key).
    #[napi(ts_type = "ObjectKey")]
    pub target_key: Option<Ref<ObjectKey>>,
}

/// Progress of a re-encryption job.
#[napi(object, object_from_js = false)]
pub struct Progress {
    pub bytes_done: f64,
    pub bytes_left: f64,
    /// Parts of the new object whose output is final (what a checkpoint now covers).
    pub parts_done: u32,
    /// Parts of the new object.
    pub parts_total: u32,
    pub finished: bool,
    pub paused: bool,
}

/// What one `update` did.
#[napi(object, object_from_js = false)]
pub struct ReencryptStep {
    /// Source bytes consumed; offer the rest again.
    pub consumed: f64,
    /// New ciphertext to append at the target offset.
    pub output: Buffer,
    /// When nothing was consumed for the rate limit: milliseconds to wait.
    pub wait_ms: f64,
}

/// A checkpoint's fields, readable without a key.
#[napi(object, object_from_js = false)]
pub struct CheckpointInfo {
    pub source_identity: Buffer,
    pub source_ciphertext_length: f64,
    pub envelope: Envelope,
    /// Parts of the new object whose output is final.
    pub parts_done: u32,
    /// Bytes of the new object that are final (a part boundary): truncate the output here
    /// before resuming.
    pub target_offset: f64,
}

fn reencrypt_params(o: Option<&ReencryptOptions>) -> Fallible<Params> {
    // The preferred part size, in whole frames; the job fits it to the source's length.
    let layout = o
        .and_then(|o| o.part_size)
        .map_or(LayoutRequest::Single, |p| LayoutRequest::FitParts { size: 0, preferred: p.0 });
    Ok(Params::new(layout, o.and_then(|o| o.frame_size).map(|f| f.0), None)?)
}

/// A re-encryption job: one source object to a new parts-layout isec object under a new
/// DEK (SPEC.md §13). Sans-IO: feed source bytes from `sourceOffset`, append the output at
/// `targetOffset` (part `n` is the output from `(n - 1) * targetPartLength`), keep
/// `checkpoint()` to resume after a crash. A resumed job writes the part that was
/// unfinished again under a fresh nonce prefix: its output past the checkpoint's
/// `targetOffset` differs from the first run's, and decrypts the same.
#[napi]
pub struct ReencryptionJob {
    inner: Reencryption<C>,
}

/// A new job (no checkpoint) or a resumed one, on the caller's target keys where given.
fn job(
    k: &Keyring,
    source: Box<dyn Source>,
    cp: Option<&[u8]>,
    o: Option<&ReencryptOptions>,
) -> Fallible<ReencryptionJob> {
    let rate = o.and_then(|o| o.rate).map_or(0, |r| r.0);
    let key = o.and_then(|o| o.target_key.as_ref()).map(|k| k.inner.clone());
    let envelope = o.and_then(|o| o.target_envelope.as_ref()).map(|e| e.inner.clone());
    let inner = match (cp, envelope, key) {
        (Some(cp), _, Some(key)) => Reencryption::<C>::resume_keyed(&k.inner, source, cp, key, rate)?,
        (Some(cp), _, None) => Reencryption::<C>::resume(&k.inner, source, cp, rate)?,
        (None, Some(e), Some(key)) => Reencryption::<C>::start_keyed(source, (e, key), rate)?,
        (None, ..) => Reencryption::<C>::start(&k.inner, source, reencrypt_params(o)?, rate)?,
    };
    Ok(ReencryptionJob { inner })
}

fn isec_source(k: &Keyring, e: &Envelope, s: &Shape, o: Option<&ReencryptOptions>) -> Fallible<Box<dyn Source>> {
    Ok(match o.and_then(|o| o.source_key.as_ref()) {
        Some(key) => Box::new(IsecSource::<C>::with_key(key.inner.clone(), &e.inner, s.inner.clone())?),
        None => Box::new(IsecSource::<C>::new(&k.inner, &e.inner, s.inner.clone())?),
    })
}

fn legacy_source(k: &Keyring, o: &LegacyObject, opts: Option<&ReencryptOptions>) -> Fallible<Box<dyn Source>> {
    let kid = opts.and_then(|o| o.kid.as_ref()).map(|t| t.0.as_str());
    Ok(Box::new(LegacySource::<C>::new(&k.inner, o.inner.clone(), kid)?))
}

made_by! {
    ReencryptionJob,
    "Not constructible with `new`: made by `ReencryptionJob.startIsec`, `startLegacy`, `resumeIsec` or `resumeLegacy`."
}

getters!(ReencryptionJob {
    #[doc = "The new object's envelope."]
    target_envelope -> Envelope = |s| Envelope { inner: s.target_envelope().clone() };
    #[doc = "Where the next source byte to feed comes from."] source_offset -> f64 = |s| f(s.source_offset());
    #[doc = "Where the next output byte goes."] target_offset -> f64 = |s| f(s.target_offset());
    #[doc = "Ciphertext bytes of every part of the new object but the last."]
    target_part_length -> f64 = |s| f(s.target_part_len());
    #[doc = "Progress in bytes and parts."]
    progress -> Progress = |s| {
        let p = s.progress();
        Progress {
            bytes_done: f(p.bytes_done),
            bytes_left: f(p.bytes_left),
            parts_done: p.parts_done,
            parts_total: p.parts_total,
            finished: p.finished,
            paused: p.paused,
        }
    };
});

#[napi]
impl ReencryptionJob {
    /// Starts re-encrypting an isec object (`shape` from its stored length or table) under
    /// the keyring's active key.
    #[napi(factory)]
    pub fn start_isec(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        isec_source(&keyring, &envelope, &shape, options.as_deref())
            .and_then(|s| job(&keyring, s, None, options.as_deref()))
            .js(&env)
    }

    /// Starts migrating a legacy proxy object to isec.
    #[napi(factory)]
    pub fn start_legacy(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        legacy_source(&keyring, &object, options.as_deref())
            .and_then(|s| job(&keyring, s, None, options.as_deref()))
            .js(&env)
    }

    /// Starts creating the new object's envelope for a source of `plaintextLength` bytes
    /// under the active key (drive it with `keyring.withExternal`, then pass its result as
    /// `targetEnvelope` / `targetKey`): what `startIsec` and `startLegacy` do themselves for
    /// local keys.
    #[napi]
    pub fn begin_target(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "number")] plaintext_length: U64,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<KeyTask> {
        let r = reencrypt_params(options.as_deref())
            .and_then(|p| Ok(keyring.inner.begin_create(target_params(p, plaintext_length.0)?)?));
        r.map(KeyTask).js(&env)
    }

    /// Resumes an isec job from a checkpoint.
    #[napi(factory)]
    pub fn resume_isec(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "Envelope")] envelope: Ref<Envelope>,
        #[napi(ts_arg_type = "Shape")] shape: Ref<Shape>,
        #[napi(ts_arg_type = "Uint8Array")] checkpoint: Bytes,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        isec_source(&keyring, &envelope, &shape, options.as_deref())
            .and_then(|s| job(&keyring, s, Some(checkpoint.0), options.as_deref()))
            .js(&env)
    }

    /// Resumes a legacy migration from a checkpoint.
    #[napi(factory)]
    pub fn resume_legacy(
        env: Env,
        #[napi(ts_arg_type = "Keyring")] keyring: Ref<Keyring>,
        #[napi(ts_arg_type = "LegacyObject")] object: Ref<LegacyObject>,
        #[napi(ts_arg_type = "Uint8Array")] checkpoint: Bytes,
        #[napi(ts_arg_type = "ReencryptOptions | undefined | null")] options: Option<Obj<ReencryptOptions>>,
    ) -> napi::Result<Self> {
        legacy_source(&keyring, &object, options.as_deref())
            .and_then(|s| job(&keyring, s, Some(checkpoint.0), options.as_deref()))
            .js(&env)
    }

    /// Reads a checkpoint's fields without a key.
    #[napi]
    pub fn parse_checkpoint(
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] checkpoint: Bytes,
    ) -> napi::Result<CheckpointInfo> {
        let cp = Checkpoint::parse(checkpoint.0).js(&env)?;
        let inner = isec_core::Envelope::decode(&cp.envelope).map_err(|_| CoreError::MalformedCheckpoint).js(&env)?;
        Ok(CheckpointInfo {
            source_identity: cp.source_identity.to_vec().into(),
            source_ciphertext_length: f(cp.source_ciphertext_len),
            target_offset: f(cp.target_offset().js(&env)?),
            parts_done: cp.parts_done,
            envelope: Envelope { inner },
        })
    }

    /// Stops taking input until `unpause`.
    #[napi]
    pub fn pause(&mut self) {
        self.inner.pause();
    }

    /// Takes input again.
    #[napi]
    pub fn unpause(&mut self) {
        self.inner.unpause();
    }

    /// Changes the rate limit (bytes per second; 0: none).
    #[napi]
    pub fn set_rate(&mut self, #[napi(ts_arg_type = "number")] rate: U64) {
        self.inner.set_rate(rate.0);
    }

    /// Feeds source ciphertext read from `sourceOffset` at time `nowMs`.
    #[napi]
    pub fn update(
        &mut self,
        env: Env,
        #[napi(ts_arg_type = "Uint8Array")] chunk: Bytes,
        #[napi(ts_arg_type = "number")] now_ms: U64,
    ) -> napi::Result<ReencryptStep> {
        let mut out = vec![0u8; self.inner.update_len(chunk.0.len())];
        let step = self.inner.update(chunk.0, &mut out, now_ms.0).js(&env)?;
        out.truncate(step.written);
        Ok(ReencryptStep { consumed: f(step.consumed as u64), output: out.into(), wait_ms: f(step.wait_ms) })
    }

    /// Ends the job once all source bytes were fed; returns the final output.
    #[napi]
    pub fn finish(&mut self, env: Env) -> napi::Result<Buffer> {
        let mut out = vec![0u8; self.inner.finish_len()];
        let n = self.inner.finish(&mut out).js(&env)?;
        out.truncate(n);
        Ok(out.into())
    }

    /// A checkpoint for the last part boundary whose output is final.
    #[napi]
    pub fn checkpoint(&self) -> Buffer {
        self.inner.checkpoint().into()
    }
}
