//! `isec reencrypt`: a new DEK (or migration of a legacy object), throttled and resumable.
//!
//! Output goes straight to the destination file, in the parts layout; the checkpoint file
//! is written only after the output it covers was flushed to disk, so a crash or Ctrl-C
//! always leaves a checkpoint that resumes at the last complete part. The unfinished part is
//! encrypted again under a fresh nonce prefix (SPEC.md §13.2), so its bytes differ from the
//! interrupted run's; what the checkpoint covers is kept as it is.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use isec_core::metadata::{ObjectFormat, classify};
use isec_core::reencrypt::{Checkpoint, IsecSource, LegacySource, Reencryption, Source};
use isec_core::shape::Shape;
use isec_core::{AwsLc, Error, Keyring, LayoutRequest, Params};

use crate::crypt::{body_shape, key_context, open_object, read_full};
use crate::fail::{CliError, Context, Res};
use crate::meta;
use crate::progress;

const CHUNK: usize = 1 << 20;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Options of one re-encryption.
pub struct Job<'a> {
    pub input: &'a str,
    pub output: &'a str,
    pub meta_in: Option<&'a Path>,
    pub meta_out: Option<&'a Path>,
    pub sidecar: Option<&'a Path>,
    pub checkpoint: &'a Path,
    pub rate: u64,
    pub frame_size: u64,
    pub part_size: u64,
    pub quiet: bool,
}

/// Runs (or resumes) the job until done or interrupted.
pub fn reencrypt(ring: &Keyring, job: &Job<'_>, stop: &Arc<AtomicBool>) -> Res<()> {
    if job.input == "-" {
        return Err(CliError::usage("reencrypt reads a file, not stdin (it resumes by seeking)".into()));
    }
    let opened = open_object(job.input, job.meta_in, None)?;
    let meta = opened.meta.clone();
    // The body of a self-contained file starts after its header.
    let body = opened.body_offset;
    let len = opened.body_len.unwrap_or(0);
    let mut input = File::open(job.input).map_err(|e| CliError::io(Path::new(job.input), e))?;
    let source: Box<dyn Source> = match classify(&meta::view(&meta), job.sidecar.is_some()) {
        ObjectFormat::Isec(env) => {
            let shape = match body_shape(&opened, &env, len)? {
                Some(s) => s,
                None => Shape::from_ciphertext_len(env.header(), len).ctx(|| job.input.to_string())?,
            };
            Box::new(IsecSource::<AwsLc>::new(ring, &env, shape).ctx(|| key_context(job.input, env.kid()))?)
        }
        ObjectFormat::Legacy { .. } => {
            let lo = crate::crypt::open_legacy(ring, &meta, job.sidecar, len, job.input)?;
            let kid = lo.object.kid().map(str::to_string);
            Box::new(LegacySource::<AwsLc>::new(ring, lo.object, kid.as_deref()).ctx(|| job.input.to_string())?)
        }
        ObjectFormat::Plaintext => return Err(CliError::usage(format!("{}: metadata has no envelope", job.input))),
        ObjectFormat::Unreadable(e) => return Err(CliError::core(e, format!("{}: metadata", job.input))),
    };
    let total = source.plaintext_len();
    let resuming = job.checkpoint.exists();
    let mut task = if resuming {
        let cp = fs::read(job.checkpoint).map_err(|e| CliError::io(job.checkpoint, e))?;
        if let Ok(c) = Checkpoint::parse(&cp)
            && (c.source_identity != source.identity() || c.source_ciphertext_len != source.ciphertext_len())
        {
            return Err(CliError::core(
                Error::MalformedCheckpoint,
                format!(
                    "{}: this checkpoint belongs to another input than {} (another object, or it changed); \
                     remove it to start over, or give this job its own --checkpoint",
                    job.checkpoint.display(),
                    job.input
                ),
            ));
        }
        Reencryption::<AwsLc>::resume(ring, source, &cp, job.rate).ctx(|| job.checkpoint.display().to_string())?
    } else {
        let params = Params::new(LayoutRequest::Parts(job.part_size), Some(job.frame_size), None).map_err(|e| {
            let flag =
                if e == Error::InvalidFrameSize { "--frame-size" } else { "--part-size (a multiple of --frame-size)" };
            CliError::core(e, flag.into())
        })?;
        Reencryption::<AwsLc>::start(ring, source, params, job.rate).ctx(|| "keyring".into())?
    };
    // A new output gets at most the input's permission bits (an existing file would keep
    // its own: start from a new one); a resumed one is kept as it is.
    if !resuming {
        let _ = fs::remove_file(job.output);
    }
    let mut open = OpenOptions::new();
    open.create(true).write(true).truncate(!resuming);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(opened.inp.mode.map_or(0o666, |m| m & 0o666));
    }
    let mut out = open.open(job.output).map_err(|e| CliError::io(Path::new(job.output), e))?;
    // Output past the checkpoint (the unfinished part) is encrypted again: drop it.
    out.set_len(task.target_offset()).map_err(|e| CliError::io(Path::new(job.output), e))?;
    out.seek(SeekFrom::Start(task.target_offset())).map_err(|e| CliError::io(Path::new(job.output), e))?;
    input.seek(SeekFrom::Start(body + task.source_offset())).map_err(|e| CliError::io(Path::new(job.input), e))?;
    save_checkpoint(job.checkpoint, &task.checkpoint())?;

    let bar = progress::bar_from(Some(total), task.progress().bytes_done, job.quiet, "reencrypt");
    let started = Instant::now();
    let mut last_cp = Instant::now();
    let mut chunk = vec![0u8; CHUNK];
    let mut held = 0usize; // bytes in `chunk` not yet consumed by the job
    let mut buf = Vec::new();
    let mut eof = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            out.sync_data().map_err(|e| CliError::io(Path::new(job.output), e))?;
            save_checkpoint(job.checkpoint, &task.checkpoint())?;
            // The bar is cleared (dropped) before the message is printed: one line, not two.
            drop(bar);
            return Err(CliError::Interrupted(format!(
                "interrupted at {} of {total} bytes; checkpoint {} resumes it",
                task.progress().bytes_done,
                job.checkpoint.display()
            )));
        }
        if held == 0 && !eof {
            held = read_full(&mut input, &mut chunk).map_err(|e| CliError::io(Path::new(job.input), e))?;
            eof = held == 0;
        }
        if held == 0 && eof {
            break;
        }
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        buf.resize(task.update_len(held), 0);
        let step = task.update(&chunk[..held], &mut buf, now).ctx(|| job.input.to_string())?;
        out.write_all(&buf[..step.written]).map_err(|e| CliError::io(Path::new(job.output), e))?;
        chunk.copy_within(step.consumed..held, 0);
        held -= step.consumed;
        if step.wait_ms > 0 {
            std::thread::sleep(Duration::from_millis(step.wait_ms.min(200)));
        }
        bar.set_position(task.progress().bytes_done);
        if last_cp.elapsed() >= CHECKPOINT_EVERY {
            out.sync_data().map_err(|e| CliError::io(Path::new(job.output), e))?;
            save_checkpoint(job.checkpoint, &task.checkpoint())?;
            last_cp = Instant::now();
        }
    }
    buf.resize(task.finish_len(), 0);
    let n = task.finish(&mut buf).ctx(|| job.input.to_string())?;
    out.write_all(&buf[..n]).map_err(|e| CliError::io(Path::new(job.output), e))?;
    out.sync_all().map_err(|e| CliError::io(Path::new(job.output), e))?;
    drop(bar);
    let env = task.target_envelope();
    let meta_out = job.meta_out.map(Path::to_path_buf).or_else(|| meta::default_path(job.output));
    if let Some(p) = meta_out {
        meta::write(&p, &[("isec".into(), env.to_text()), ("isec-kid".into(), env.kid().into())])?;
    }
    let _ = fs::remove_file(job.checkpoint);
    Ok(())
}

/// Writes the checkpoint atomically (temp file, fsync, rename).
fn save_checkpoint(path: &Path, bytes: &[u8]) -> Res<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| CliError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| CliError::io(&tmp, e))?;
    f.sync_all().map_err(|e| CliError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| CliError::io(path, e))
}
