//! The re-encryption job: a resumable state machine that decrypts a [`Source`] and encrypts
//! it again as a new parts-layout object, throttled by a [`RateLimiter`] and recorded in
//! checkpoints at part boundaries.

#![cfg_attr(
    not(any(feature = "getrandom", feature = "hazmat")),
    allow(dead_code, unused_imports, reason = "jobs start only where nonce prefixes can be drawn or given")
)]

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::cipher::FrameCipher;
use crate::envelope::{Envelope, Params};
use crate::error::{Error, Result};
use crate::header::Layout;
use crate::kdf::ObjectKey;
use crate::keyring::Keyring;
use crate::limits::FRAME_OVERHEAD;
use crate::nonce::Prefix;
use crate::shape::Shape;
use crate::stream::{Encryptor, Stream};

use super::checkpoint::{CHECKPOINT_MAGIC, CHECKPOINT_VERSION, Checkpoint, UploadCheckpoint, checkpoint_mac};
use super::rate::RateLimiter;
use super::source::{Source, SourceDecryptor};

/// How much of a job is done and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Plaintext bytes re-encrypted and written out.
    pub bytes_done: u64,
    /// Plaintext bytes left.
    pub bytes_left: u64,
    /// Output parts completely written (a checkpoint resumes after the last of them that
    /// holds only authenticated plaintext).
    pub parts_done: u32,
    /// Output parts in the new object.
    pub parts_total: u32,
    /// Whether the final frame has been written.
    pub finished: bool,
    /// Whether the job is paused.
    pub paused: bool,
}

/// What one [`Reencryption::update`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Source ciphertext bytes consumed (the rest must be offered again).
    pub consumed: usize,
    /// Output bytes written.
    pub written: usize,
    /// When nothing could be consumed for the rate limit: milliseconds to wait.
    pub wait_ms: u64,
}
/// Part size of the new object when the caller's parameters do not name one: S3's 5 MiB
/// minimum rounded up to 8 MiB, grown to fit 10000 parts.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// Where the new object's nonce prefixes come from: fresh randomness for every part
/// encryption, or (hazmat, for vectors) one caller-chosen prefix for every part, which is
/// safe only because the job is never resumed with it.
#[derive(Clone, Copy)]
enum Prefixes {
    #[cfg(feature = "getrandom")]
    Random,
    #[cfg(feature = "hazmat")]
    Fixed(Prefix),
}

impl Prefixes {
    fn next(self) -> Result<Prefix> {
        match self {
            #[cfg(feature = "getrandom")]
            Self::Random => crate::stream::random_prefix(),
            #[cfg(feature = "hazmat")]
            Self::Fixed(p) => Ok(p),
        }
    }
}

/// A re-encryption job: one source object to one new isec object under a new DEK, written
/// in the parts layout.
pub struct Reencryption<C: FrameCipher> {
    source: Box<dyn Source>,
    decryptor: Option<SourceDecryptor>,
    encryptor: Option<Encryptor<C>>,
    target_env: Envelope,
    target_key: ObjectKey,
    prefixes: Prefixes,
    /// Plaintext bytes per part, and the number of parts.
    part_size: u64,
    parts: u32,
    /// The part being encrypted (1-based) and the parts whose output is complete.
    part: u32,
    parts_written: u32,
    /// Object plaintext offset of the next byte fed to the encryptor.
    pt_offset: u64,
    src_offset: u64,
    out_offset: u64,
    scratch: Vec<u8>,
    limiter: RateLimiter,
    min_burst: u64,
    paused: bool,
    finished: bool,
    failed: bool,
}

/// The new object's parameters: the caller's frame size and part size (or
/// [`DEFAULT_PART_SIZE`]), fitted to 10000 parts, with the declared size.
///
/// # Errors
/// As [`Params::with_parts_for`].
pub fn target_params(params: Params, plaintext_len: u64) -> Result<Params> {
    let preferred = params.part_size().unwrap_or(DEFAULT_PART_SIZE);
    let mut p =
        Params { layout: Layout::Single, declared_size: None, ..params }.with_parts_for(plaintext_len, preferred)?;
    p.declared_size = Some(plaintext_len);
    Ok(p)
}

impl<C: FrameCipher> Reencryption<C> {
    /// Starts a job that writes `source` as a new parts-layout object under the keyring's
    /// active key, with frames of `params.frame_exp` and parts of `params`' part size (or
    /// [`DEFAULT_PART_SIZE`]), grown to fit 10000 parts. `rate` is bytes per second (0: none).
    ///
    /// # Errors
    /// As [`Keyring::create_envelope`] and [`Params::with_parts_for`].
    #[cfg(feature = "getrandom")]
    pub fn start(keyring: &Keyring, source: Box<dyn Source>, params: Params, rate: u64) -> Result<Self> {
        let target = keyring.create_envelope(target_params(params, source.plaintext_len())?)?;
        Self::start_keyed(source, target, rate)
    }

    /// [`Reencryption::start`] with the new object's envelope and key created beforehand
    /// (by a [`crate::KeyTask`] when the active key answers asynchronously) with
    /// [`target_params`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an envelope that is not the parts layout declaring the
    /// source's size.
    #[cfg(feature = "getrandom")]
    pub fn start_keyed(source: Box<dyn Source>, target: (Envelope, ObjectKey), rate: u64) -> Result<Self> {
        let (env, key) = target;
        let h = env.header();
        if key.header() != h || h.declared_size != Some(source.plaintext_len()) || h.part_size().is_none() {
            return Err(Error::InvalidParameter);
        }
        Self::build(source, env, key, Prefixes::Random, 0, rate)
    }

    /// [`Reencryption::start`] with a caller-chosen DEK, salt and nonce prefix (the same for
    /// every part, each of which has its own key), for vectors. Never resume such a job with
    /// the same prefix: [`Reencryption::resume`] always draws fresh ones.
    ///
    /// # Errors
    /// As [`Reencryption::start`].
    #[cfg(feature = "hazmat")]
    pub fn start_with(
        keyring: &Keyring,
        source: Box<dyn Source>,
        params: Params,
        rate: u64,
        dek: &crate::wrap::Dek,
        salt: [u8; 32],
        prefix: Prefix,
    ) -> Result<Self> {
        let (env, key) = keyring.create_envelope_with(target_params(params, source.plaintext_len())?, dek, salt)?;
        Self::build(source, env, key, Prefixes::Fixed(prefix), 0, rate)
    }

    /// Resumes from a checkpoint: the job continues at the first part the checkpoint does
    /// not cover, under fresh nonce prefixes; the caller discards output past
    /// [`Reencryption::target_offset`] (in S3: the parts after the checkpoint's).
    ///
    /// A checkpoint is accepted only if its MAC verifies under a key derived from both the
    /// new object's key and the source's key, and its envelope is under the keyring's
    /// active key: being able to wrap a DEK under some kid of the keyring (a decrypt-only
    /// KEK, an encrypt-only KMS grant) is not enough to make the job write under a DEK of
    /// one's choosing.
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] for a damaged checkpoint or one of another source,
    /// [`Error::KeyNotActive`] if its envelope is not under the active key,
    /// [`Error::AuthenticationFailed`] if its MAC fails, and the keyring's errors.
    #[cfg(feature = "getrandom")]
    pub fn resume(keyring: &Keyring, source: Box<dyn Source>, checkpoint: &[u8], rate: u64) -> Result<Self> {
        let (_, env) = Self::resume_target(keyring, source.as_ref(), checkpoint)?;
        let key = keyring.open(&env)?;
        Self::resume_keyed(keyring, source, checkpoint, key, rate)
    }

    /// The checkpoint and its envelope, once it is known to be of `source` and under the
    /// active key.
    fn resume_target(keyring: &Keyring, source: &dyn Source, checkpoint: &[u8]) -> Result<(Checkpoint, Envelope)> {
        let cp = Checkpoint::parse(checkpoint)?;
        if cp.source_identity != source.identity() || cp.source_ciphertext_len != source.ciphertext_len() {
            return Err(Error::MalformedCheckpoint);
        }
        let env = Envelope::decode(&cp.envelope).map_err(|_| Error::MalformedCheckpoint)?;
        if env.kid() != keyring.active_kid()? {
            return Err(Error::KeyNotActive);
        }
        Ok((cp, env))
    }

    /// [`Reencryption::resume`] with the key of the checkpoint's envelope
    /// (`Checkpoint::envelope`) opened beforehand (by a [`crate::KeyTask`] when the
    /// active key answers asynchronously). The keyring is asked only which key is active.
    ///
    /// # Errors
    /// As [`Reencryption::resume`]; [`Error::AuthenticationFailed`] for a key of another
    /// object.
    #[cfg(feature = "getrandom")]
    pub fn resume_keyed(
        keyring: &Keyring,
        source: Box<dyn Source>,
        checkpoint: &[u8],
        key: ObjectKey,
        rate: u64,
    ) -> Result<Self> {
        let (cp, env) = Self::resume_target(keyring, source.as_ref(), checkpoint)?;
        if key.header() != env.header() {
            return Err(Error::AuthenticationFailed);
        }
        use subtle::ConstantTimeEq;
        let mac = checkpoint_mac(&key, source.as_ref(), &checkpoint[..checkpoint.len() - 32]);
        if !bool::from(mac.ct_eq(&checkpoint[checkpoint.len() - 32..])) {
            return Err(Error::AuthenticationFailed);
        }
        let header = env.header();
        let (Layout::Parts { .. }, Some(size)) = (header.layout, header.declared_size) else {
            return Err(Error::MalformedCheckpoint);
        };
        let part_size = header.part_size().ok_or(Error::MalformedCheckpoint)?;
        if size != source.plaintext_len() || u64::from(cp.parts_done) > size.div_ceil(part_size).max(1) {
            return Err(Error::MalformedCheckpoint);
        }
        Self::build(source, env, key, Prefixes::Random, cp.parts_done, rate)
    }

    fn build(
        source: Box<dyn Source>,
        env: Envelope,
        key: ObjectKey,
        prefixes: Prefixes,
        parts_done: u32,
        rate: u64,
    ) -> Result<Self> {
        let header = env.header();
        let frame = header.frame_size();
        let part_size = header.part_size().ok_or(Error::InvalidParameter)?;
        let total = source.plaintext_len();
        let parts = u32::try_from(total.div_ceil(part_size).max(1)).map_err(|_| Error::LimitExceeded)?;
        let part_ct = part_size + part_size.div_ceil(frame) * FRAME_OVERHEAD as u64;
        let min_burst = frame + FRAME_OVERHEAD as u64;
        let mut job = Self {
            source,
            decryptor: None,
            encryptor: None,
            target_env: env,
            target_key: key,
            prefixes,
            part_size,
            parts,
            part: parts_done + 1,
            parts_written: parts_done,
            pt_offset: u64::from(parts_done) * part_size,
            src_offset: 0,
            out_offset: u64::from(parts_done) * part_ct,
            scratch: Vec::new(),
            limiter: RateLimiter::new(rate, min_burst),
            min_burst,
            paused: false,
            finished: false,
            failed: false,
        };
        if parts_done == parts {
            // A checkpoint taken after `finish`: the new object is complete; nothing to redo.
            job.out_offset = job.target_len();
            job.finished = true;
            return Ok(job);
        }
        let (src_offset, decryptor) = job.source.open_from(job.pt_offset)?;
        job.src_offset = src_offset;
        job.decryptor = Some(decryptor);
        job.encryptor = Some(job.part_encryptor(job.part)?);
        Ok(job)
    }

    fn part_encryptor(&self, part: u32) -> Result<Encryptor<C>> {
        Encryptor::build_for(&self.target_key, Some(part), part == self.parts, self.prefixes.next()?)
    }

    /// Plaintext bytes of part `part`.
    fn part_len(&self, part: u32) -> u64 {
        let start = u64::from(part - 1) * self.part_size;
        (self.source.plaintext_len() - start.min(self.source.plaintext_len())).min(self.part_size)
    }

    fn target_len(&self) -> u64 {
        Shape::from_plaintext_len(self.target_env.header(), self.source.plaintext_len())
            .map_or(0, |s| s.ciphertext_len())
    }

    /// The new object's envelope (store it with the output).
    #[must_use]
    pub fn target_envelope(&self) -> &Envelope {
        &self.target_env
    }

    /// Where the next source ciphertext byte to feed comes from.
    #[must_use]
    pub fn source_offset(&self) -> u64 {
        self.src_offset
    }

    /// Where the next output byte goes in the new object.
    #[must_use]
    pub fn target_offset(&self) -> u64 {
        self.out_offset
    }

    /// Ciphertext bytes of every part of the new object but the last: the output from
    /// `(n - 1) * target_part_len()` to `n * target_part_len()` is part `n` of an S3 upload.
    #[must_use]
    pub fn target_part_len(&self) -> u64 {
        let frame = self.target_env.header().frame_size();
        self.part_size + self.part_size.div_ceil(frame) * FRAME_OVERHEAD as u64
    }

    /// Stops taking input until [`Reencryption::unpause`].
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Takes input again.
    pub fn unpause(&mut self) {
        self.paused = false;
    }

    /// Changes the rate limit (bytes per second; 0: none).
    pub fn set_rate(&mut self, rate: u64) {
        self.limiter = RateLimiter::new(rate, self.min_burst);
    }

    /// Progress in bytes and parts.
    #[must_use]
    pub fn progress(&self) -> Progress {
        let total = self.source.plaintext_len();
        let bytes_done = if self.finished { total } else { self.pt_offset.min(total) };
        Progress {
            bytes_done,
            bytes_left: total - bytes_done,
            parts_done: if self.finished { self.parts } else { self.checkpoint_parts() },
            parts_total: self.parts,
            finished: self.finished,
            paused: self.paused,
        }
    }

    /// Upper bound on what `update` writes for `input_len` bytes.
    #[must_use]
    pub fn update_len(&self, input_len: usize) -> usize {
        let (Some(dec), Some(enc)) = (self.decryptor.as_ref(), self.encryptor.as_ref()) else {
            return 0;
        };
        let pt = dec.update_len(input_len).saturating_add(enc.update_len(0)).saturating_add(self.frame_len());
        // Every frame adds 28 bytes; each part boundary crossed closes one more frame.
        let frame = self.frame_len().max(1);
        let part = usize::try_from(self.part_size).unwrap_or(usize::MAX).max(1);
        let frames = (pt / frame).saturating_add(pt / part).saturating_add(3);
        pt.saturating_add(frames.saturating_mul(FRAME_OVERHEAD))
    }

    fn frame_len(&self) -> usize {
        usize::try_from(self.target_env.header().frame_size()).unwrap_or(usize::MAX)
    }

    /// Upper bound on what `finish` writes.
    #[must_use]
    pub fn finish_len(&self) -> usize {
        let pt = self.decryptor.as_ref().map_or(0, |d| d.finish_len());
        self.update_len(0).saturating_add(pt).saturating_add(FRAME_OVERHEAD)
    }

    /// Feeds source ciphertext read from [`Reencryption::source_offset`]; takes as much as the
    /// rate limit allows at `now_ms` (nothing while paused) and writes new ciphertext to
    /// `out` (at least [`Reencryption::update_len`] bytes).
    ///
    /// # Errors
    /// The source's authentication and stream errors; [`Error::BufferTooSmall`];
    /// [`Error::InvalidState`] after an error or after finishing.
    pub fn update(&mut self, input: &[u8], out: &mut [u8], now_ms: u64) -> Result<Step> {
        if self.failed || self.finished {
            return Err(Error::InvalidState);
        }
        if out.len() < self.update_len(input.len()) {
            return Err(Error::BufferTooSmall);
        }
        if self.paused || input.is_empty() {
            return Ok(Step { consumed: 0, written: 0, wait_ms: 0 });
        }
        let allowed = usize::try_from(self.limiter.take(now_ms, input.len() as u64)).unwrap_or(input.len());
        if allowed == 0 {
            return Ok(Step { consumed: 0, written: 0, wait_ms: self.limiter.wait_ms(input.len() as u64).max(1) });
        }
        match self.pump(&input[..allowed], out) {
            Ok(written) => {
                self.src_offset += allowed as u64;
                self.out_offset += written as u64;
                Ok(Step { consumed: allowed, written, wait_ms: 0 })
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn pump(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        let dec = self.decryptor.as_mut().ok_or(Error::InvalidState)?;
        let need = dec.update_len(input.len());
        if self.scratch.len() < need {
            self.scratch.resize(need, 0);
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        let r = dec.update(input, &mut scratch[..need]).and_then(|n| self.encrypt(&scratch[..n], out));
        scratch[..need].fill(0);
        self.scratch = scratch;
        r
    }

    /// Encrypts verified plaintext into the current part, closing every part it completes
    /// (all but the last, which `finish` closes) and opening the next under a fresh prefix.
    fn encrypt(&mut self, mut pt: &[u8], out: &mut [u8]) -> Result<usize> {
        let mut written = 0;
        while !pt.is_empty() {
            let part_len = self.part_len(self.part);
            let enc = self.encryptor.as_mut().ok_or(Error::InvalidState)?;
            let room = part_len - enc.consumed();
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(pt.len());
            if take == 0 {
                return Err(Error::TrailingData);
            }
            written += enc.update(&pt[..take], &mut out[written..])?;
            pt = &pt[take..];
            self.pt_offset += take as u64;
            if take as u64 == room && self.part < self.parts {
                let mut enc = self.encryptor.take().ok_or(Error::InvalidState)?;
                written += enc.finish(&mut out[written..])?;
                self.parts_written = self.part;
                self.part += 1;
                self.encryptor = Some(self.part_encryptor(self.part)?);
            }
        }
        Ok(written)
    }

    /// Ends the job once all source ciphertext was fed: verifies the source's end and writes
    /// the final frame. Returns the bytes written to `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the source ended early, and the source's other errors.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        if self.failed || self.finished {
            return Err(Error::InvalidState);
        }
        if out.len() < self.finish_len() {
            return Err(Error::BufferTooSmall);
        }
        let result = self.finish_inner(out);
        match result {
            Ok(w) => {
                self.out_offset += w as u64;
                self.parts_written = self.parts;
                self.finished = true;
                Ok(w)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn finish_inner(&mut self, out: &mut [u8]) -> Result<usize> {
        let mut dec = self.decryptor.take().ok_or(Error::InvalidState)?;
        let mut tail = Zeroizing::new(vec![0u8; dec.finish_len()]);
        let n = dec.finish(&mut tail[..])?;
        let w = self.encrypt(&tail[..n], out)?;
        if self.part != self.parts || self.pt_offset != self.source.plaintext_len() {
            return Err(Error::Truncated);
        }
        let mut enc = self.encryptor.take().ok_or(Error::InvalidState)?;
        Ok(w + enc.finish(&mut out[w..])?)
    }

    /// Parts a checkpoint may record: completely written, and holding only plaintext whose
    /// source authentication has completed.
    fn checkpoint_parts(&self) -> u32 {
        let verified = self.decryptor.as_ref().and_then(|d| d.verified_pt_end());
        match verified {
            None => self.parts_written,
            Some(v) => self.parts_written.min(u32::try_from(v / self.part_size).unwrap_or(u32::MAX)),
        }
    }

    /// A checkpoint for the last part boundary whose output is final (SPEC.md §13.2). Output
    /// written past [`Checkpoint::target_offset`] of it is encrypted again, under fresh
    /// nonce prefixes, on resume.
    #[must_use]
    pub fn checkpoint(&self) -> Vec<u8> {
        self.checkpoint_upto(u32::MAX)
    }

    /// [`Reencryption::checkpoint`] of at most `parts_stored` parts: the output the caller has
    /// stored may lag behind what the job wrote (parts still uploading).
    fn checkpoint_upto(&self, parts_stored: u32) -> Vec<u8> {
        let parts = if self.finished { self.parts } else { self.checkpoint_parts() }.min(parts_stored);
        let env = self.target_env.to_bytes();
        let mut b = Vec::with_capacity(4 + 1 + 32 + 8 + 2 + env.len() + 4 + 32);
        b.extend_from_slice(CHECKPOINT_MAGIC);
        b.push(CHECKPOINT_VERSION);
        b.extend_from_slice(&self.source.identity());
        b.extend_from_slice(&self.source.ciphertext_len().to_be_bytes());
        b.extend_from_slice(&u16::try_from(env.len()).unwrap_or(u16::MAX).to_be_bytes());
        b.extend_from_slice(&env);
        b.extend_from_slice(&parts.to_be_bytes());
        let mac = checkpoint_mac(&self.target_key, self.source.as_ref(), &b);
        b.extend_from_slice(&mac);
        b
    }

    /// An [`UploadCheckpoint`] (SPEC.md §13.3) for multipart upload `upload_id`, of which parts
    /// `1..=parts_stored` are stored: what a crashed bucket job resumes from.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an empty or over-long upload id.
    pub fn upload_checkpoint(&self, upload_id: &str, parts_stored: u32) -> Result<Vec<u8>> {
        let mut b = UploadCheckpoint::body(upload_id, &self.checkpoint_upto(parts_stored))?;
        let mac = checkpoint_mac(&self.target_key, self.source.as_ref(), &b);
        b.extend_from_slice(&mac);
        Ok(b)
    }

    /// Resumes from an [`UploadCheckpoint`]: the job and the upload id to continue. The
    /// caller lists the upload's parts and checks them with [`Reencryption::kept_parts`];
    /// if the upload is gone or does not match, it aborts it and starts afresh.
    ///
    /// # Errors
    /// As [`Reencryption::resume`], and [`Error::AuthenticationFailed`] for an upload id
    /// that is not the one the job recorded.
    #[cfg(feature = "getrandom")]
    pub fn resume_upload(
        keyring: &Keyring,
        source: Box<dyn Source>,
        checkpoint: &[u8],
        rate: u64,
    ) -> Result<(Self, alloc::string::String)> {
        let up = UploadCheckpoint::parse(checkpoint)?;
        let (_, env) = Self::resume_target(keyring, source.as_ref(), &up.checkpoint)?;
        let key = keyring.open(&env)?;
        let job = Self::resume_keyed(keyring, source, &up.checkpoint, key, rate)?;
        use subtle::ConstantTimeEq;
        let body = &checkpoint[..checkpoint.len() - 32];
        let mac = checkpoint_mac(&job.target_key, job.source.as_ref(), body);
        if !bool::from(mac.ct_eq(&checkpoint[checkpoint.len() - 32..])) {
            return Err(Error::AuthenticationFailed);
        }
        Ok((job, up.upload_id))
    }

    /// Checks a resumed upload's parts (ListParts: part number and size): parts
    /// `1..=parts_done` of the checkpoint must all be there with the sizes this job writes.
    /// Returns how many parts to keep (the rest, if any, are written again).
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] when a kept part is missing or has another size: the
    /// upload is not the one the checkpoint describes, and must be aborted.
    pub fn kept_parts(&self, listed: &[(u32, u64)]) -> Result<u32> {
        let kept = if self.finished { self.parts } else { self.parts_written };
        let part_len = self.target_part_len();
        let target_len = self.target_len();
        for n in 1..=kept {
            let start = u64::from(n - 1) * part_len;
            let want = target_len.saturating_sub(start).min(part_len);
            let mut sizes = listed.iter().filter(|(m, _)| *m == n).map(|&(_, s)| s);
            match (sizes.next(), sizes.next()) {
                (Some(size), None) if size == want => {}
                _ => return Err(Error::MalformedCheckpoint),
            }
        }
        Ok(kept)
    }
}

#[cfg(all(test, feature = "hazmat", feature = "getrandom"))]
mod tests {
    use super::*;
    use crate::cipher::RustCrypto;
    use crate::kdf::{LABEL_CHECKPOINT_MAC, hmac_sha256};
    use crate::keyring::KeyState;
    use crate::reencrypt::IsecSource;
    use crate::wrap::{Dek, Kek};

    /// A checkpoint MAC'd under the new object's key alone (what anyone who can wrap a DEK
    /// under the active kid could compute) is refused: the source's key is half of it.
    #[test]
    fn a_checkpoint_without_the_source_key_half_is_refused() {
        let mut ring = Keyring::new();
        ring.add_kek("A", Kek::from_bytes([0xA; 32]), KeyState::Active).unwrap();
        let params = Params::default().with_frame_size(4096).unwrap();
        let (env, key) = ring.create_envelope(params).unwrap();
        let ct = crate::oneshot::encrypt::<RustCrypto>(&key, &[5u8; 9000]).unwrap();
        let source = || -> Box<dyn Source> {
            let shape = Shape::from_ciphertext_len(env.header(), ct.len() as u64).unwrap();
            Box::new(IsecSource::<RustCrypto>::new(&ring, &env, shape).unwrap())
        };
        let job = Reencryption::<RustCrypto>::start_with(
            &ring,
            source(),
            params,
            0,
            &Dek::from_bytes([6; 32]),
            [7; 32],
            crate::nonce::Prefix::from([8; 7]),
        )
        .unwrap();
        let good = job.checkpoint();
        assert!(Reencryption::<RustCrypto>::resume(&ring, source(), &good, 0).is_ok());
        let body = &good[..good.len() - 32];
        let mut forged = body.to_vec();
        forged.extend_from_slice(&hmac_sha256(&job.target_key.mac_key(LABEL_CHECKPOINT_MAC)[..], &[body]));
        assert_eq!(
            Reencryption::<RustCrypto>::resume(&ring, source(), &forged, 0).err(),
            Some(Error::AuthenticationFailed)
        );
    }
}
