//! DEK rotation and legacy migration: re-encryption as a resumable, throttled state machine
//! (SPEC.md §13).
//!
//! Like everything in core it does no I/O and reads no clock. The caller fetches source
//! ciphertext from [`Reencryption::source_offset`], feeds it to [`Reencryption::update`] with
//! the current time, and stores what comes out at [`Reencryption::target_offset`]. At any
//! moment [`Reencryption::checkpoint`] gives bytes that, after a crash, resume the job with
//! byte-identical output: the new envelope and nonce prefix are in it, and the job restarts
//! at the last output frame boundary, re-reading the source from the frame that holds it.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::cipher::FrameCipher;
use crate::envelope::Envelope;
#[cfg(any(feature = "getrandom", feature = "hazmat"))]
use crate::envelope::Params;
use crate::error::{Error, Result};
use crate::kdf::{LABEL_CHECKPOINT_MAC, ObjectKey};
use crate::keyring::Keyring;
use crate::layout::Shape;
use crate::limits::FRAME_OVERHEAD;
use crate::nonce::Prefix;
use crate::stream::{Decryptor, Encryptor};

/// A decryptor the job can drive: isec's own, or the legacy proxy's. `Send + Sync` so that
/// bindings can run jobs on worker threads.
pub trait SourceDecrypt: Send + Sync {
    /// Upper bound on plaintext written by `update` for `input_len` more bytes.
    fn update_len(&self, input_len: usize) -> usize;
    /// Feeds ciphertext; writes verified plaintext.
    ///
    /// # Errors
    /// The decryptor's stream and authentication errors.
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize>;
    /// Upper bound on plaintext written by `finish`.
    fn finish_len(&self) -> usize;
    /// Ends the input.
    ///
    /// # Errors
    /// As `update`, and [`Error::Truncated`].
    fn finish(self: Box<Self>, out: &mut [u8]) -> Result<usize>;
}

impl<C: FrameCipher> SourceDecrypt for Decryptor<C> {
    fn update_len(&self, input_len: usize) -> usize {
        Decryptor::update_len(self, input_len)
    }
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        Decryptor::update(self, input, out)
    }
    fn finish_len(&self) -> usize {
        Decryptor::finish_len(self)
    }
    fn finish(self: Box<Self>, out: &mut [u8]) -> Result<usize> {
        Decryptor::finish(*self, out)
    }
}

/// A source object that can be decrypted from any plaintext offset.
pub trait Source: Send + Sync {
    /// Plaintext bytes in the object.
    fn plaintext_len(&self) -> u64;
    /// Stored ciphertext bytes.
    fn ciphertext_len(&self) -> u64;
    /// A digest that changes if the object (its metadata or size) changes.
    fn identity(&self) -> [u8; 32];
    /// The ciphertext offset to read from, and a decryptor that releases plaintext from
    /// exactly `pt_offset` to the end when fed the ciphertext from that offset.
    ///
    /// # Errors
    /// Shape or key errors.
    fn open_from(&self, pt_offset: u64) -> Result<(u64, Box<dyn SourceDecrypt>)>;
}

/// An isec object as a re-encryption source.
pub struct IsecSource<C> {
    key: ObjectKey,
    shape: Shape,
    identity: [u8; 32],
    _cipher: core::marker::PhantomData<C>,
}

impl<C: FrameCipher + 'static> IsecSource<C> {
    /// Opens `envelope` with `keyring` for an object of `shape` (from its ciphertext length,
    /// or its segment table).
    ///
    /// # Errors
    /// As [`Keyring::open`].
    pub fn new(keyring: &Keyring, envelope: &Envelope, shape: Shape) -> Result<Self> {
        let key = keyring.open(envelope)?;
        let mut h = Sha256::new();
        h.update(b"isec source");
        h.update(envelope.to_bytes());
        h.update(shape.ciphertext_len().to_be_bytes());
        Ok(Self { key, shape, identity: h.finalize().into(), _cipher: core::marker::PhantomData })
    }
}

impl<C: FrameCipher + 'static> Source for IsecSource<C> {
    fn plaintext_len(&self) -> u64 {
        self.shape.plaintext_len()
    }
    fn ciphertext_len(&self) -> u64 {
        self.shape.ciphertext_len()
    }
    fn identity(&self) -> [u8; 32] {
        self.identity
    }
    fn open_from(&self, pt_offset: u64) -> Result<(u64, Box<dyn SourceDecrypt>)> {
        let plan = self.shape.map_range(pt_offset, self.shape.plaintext_len());
        let dec = Decryptor::<C>::for_range(&self.key, self.shape.clone(), &plan)?;
        Ok((plan.ct_start, Box::new(dec)))
    }
}

impl<C: FrameCipher> SourceDecrypt for crate::legacy::LegacyDecryptor<C> {
    fn update_len(&self, input_len: usize) -> usize {
        crate::legacy::LegacyDecryptor::update_len(self, input_len)
    }
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        crate::legacy::LegacyDecryptor::update(self, input, out)
    }
    fn finish_len(&self) -> usize {
        crate::legacy::LegacyDecryptor::finish_len(self)
    }
    fn finish(self: Box<Self>, out: &mut [u8]) -> Result<usize> {
        crate::legacy::LegacyDecryptor::finish(*self, out)
    }
}

/// A legacy proxy object as a re-encryption source: migration to isec (SPEC.md §11.4).
pub struct LegacySource<C> {
    key: crate::legacy::LegacyKey,
    object: crate::legacy::LegacyObject,
    identity: [u8; 32],
    _cipher: core::marker::PhantomData<C>,
}

impl<C: FrameCipher + 'static> LegacySource<C> {
    /// Opens a legacy object with the keyring's legacy key for its kid (`kid` overrides the
    /// object's own, for the oldest objects that recorded none).
    ///
    /// # Errors
    /// [`Error::VersionRefused`] if the keyring refuses legacy objects, key errors, and
    /// [`Error::UnwrapFailed`].
    pub fn new(keyring: &Keyring, object: crate::legacy::LegacyObject, kid: Option<&str>) -> Result<Self> {
        let key = keyring.open_legacy(&object, kid)?;
        let mut h = Sha256::new();
        h.update(b"legacy source");
        h.update(object.wrapped_dek_b64().as_bytes());
        h.update(object.ciphertext_len().to_be_bytes());
        h.update(object.plaintext_len().to_be_bytes());
        Ok(Self { key, object, identity: h.finalize().into(), _cipher: core::marker::PhantomData })
    }
}

impl<C: FrameCipher + 'static> Source for LegacySource<C> {
    fn plaintext_len(&self) -> u64 {
        self.object.plaintext_len()
    }
    fn ciphertext_len(&self) -> u64 {
        self.object.ciphertext_len()
    }
    fn identity(&self) -> [u8; 32] {
        self.identity
    }
    fn open_from(&self, pt_offset: u64) -> Result<(u64, Box<dyn SourceDecrypt>)> {
        let range = self.object.plan_range(pt_offset, self.object.plaintext_len())?;
        let dec = crate::legacy::LegacyDecryptor::<C>::for_range(&self.key, &self.object, &range)?;
        Ok((range.ct_start, Box::new(dec)))
    }
}

/// A token bucket in bytes per second, driven by the caller's clock in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimiter {
    rate: u64,
    burst: u64,
    tokens: u64,
    last_ms: Option<u64>,
}

impl RateLimiter {
    /// `rate` bytes per second (0: unlimited), with a burst of one second's worth (at least
    /// `min_burst`, so one frame can always pass): callers that poll up to once a second
    /// still get the full rate.
    #[must_use]
    pub fn new(rate: u64, min_burst: u64) -> Self {
        let burst = rate.max(min_burst);
        // Start nearly empty: a full bucket at start would exceed the rate by a second's worth.
        Self { rate, burst, tokens: min_burst.min(burst), last_ms: None }
    }

    /// How many of `want` bytes may pass at `now_ms`; those are taken from the bucket.
    pub fn take(&mut self, now_ms: u64, want: u64) -> u64 {
        if self.rate == 0 {
            return want;
        }
        if let Some(last) = self.last_ms {
            let elapsed = now_ms.saturating_sub(last);
            let refill = u128::from(elapsed) * u128::from(self.rate) / 1000;
            let refill = u64::try_from(refill).unwrap_or(u64::MAX);
            if refill > 0 {
                self.tokens = self.tokens.saturating_add(refill).min(self.burst);
                // Keep the remainder of a partial millisecond's worth from being lost.
                let used_ms = u64::try_from(u128::from(refill) * 1000 / u128::from(self.rate)).unwrap_or(elapsed);
                self.last_ms = Some(last + used_ms.min(elapsed));
            }
        } else {
            self.last_ms = Some(now_ms);
        }
        let n = want.min(self.tokens);
        self.tokens -= n;
        n
    }

    /// Milliseconds until `bytes` tokens are available (0 if they are now).
    #[must_use]
    pub fn wait_ms(&self, bytes: u64) -> u64 {
        if self.rate == 0 || self.tokens >= bytes {
            return 0;
        }
        (bytes.min(self.burst) - self.tokens).saturating_mul(1000).div_ceil(self.rate)
    }
}

/// How much of a job is done and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Plaintext bytes re-encrypted and written out.
    pub bytes_done: u64,
    /// Plaintext bytes left.
    pub bytes_left: u64,
    /// Output frames written.
    pub frames_done: u64,
    /// Output frames left.
    pub frames_left: u64,
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

const CHECKPOINT_MAGIC: &[u8; 4] = b"ISCK";
const CHECKPOINT_VERSION: u8 = 1;

/// A re-encryption job: one source object to one new isec object under a new DEK.
pub struct Reencryption<C: FrameCipher> {
    source: Box<dyn Source>,
    decryptor: Option<Box<dyn SourceDecrypt>>,
    encryptor: Option<Encryptor<C>>,
    target_env: Envelope,
    target_key: ObjectKey,
    prefix: Prefix,
    frame: u64,
    /// Output frames and plaintext already written before this run (from a checkpoint).
    base_frames: u64,
    src_offset: u64,
    out_offset: u64,
    scratch: Vec<u8>,
    limiter: RateLimiter,
    paused: bool,
    finished: bool,
    failed: bool,
}

impl<C: FrameCipher> Reencryption<C> {
    /// Starts a job that writes `source` as a new single-layout object under the keyring's
    /// active key, with frames of `params.frame_exp`. `rate` is bytes per second (0: none).
    ///
    /// # Errors
    /// As [`Keyring::create_envelope`].
    #[cfg(feature = "getrandom")]
    pub fn start(keyring: &Keyring, source: Box<dyn Source>, params: Params, rate: u64) -> Result<Self> {
        let mut params = params;
        params.layout = crate::envelope::Layout::Single;
        params.declared_size = Some(source.plaintext_len());
        let (env, key) = keyring.create_envelope(params)?;
        Self::build(source, env, key, crate::stream::random_prefix()?, 0, rate)
    }

    /// [`Reencryption::start`] around a DEK from [`crate::Dek::generate`] (fresh salt and
    /// prefix), for asynchronous external wrappers that wrap the DEK between two attempts.
    ///
    /// # Errors
    /// As [`Reencryption::start`].
    #[cfg(feature = "getrandom")]
    pub fn start_for_dek(
        keyring: &Keyring,
        source: Box<dyn Source>,
        params: Params,
        rate: u64,
        dek: &crate::wrap::Dek,
    ) -> Result<Self> {
        let mut params = params;
        params.layout = crate::envelope::Layout::Single;
        params.declared_size = Some(source.plaintext_len());
        let (env, key) = keyring.create_envelope_for_dek(params, dek)?;
        Self::build(source, env, key, crate::stream::random_prefix()?, 0, rate)
    }

    /// [`Reencryption::start`] with a caller-chosen DEK, salt and prefix, for vectors.
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
        let mut params = params;
        params.layout = crate::envelope::Layout::Single;
        params.declared_size = Some(source.plaintext_len());
        let (env, key) = keyring.create_envelope_with(params, dek, salt)?;
        Self::build(source, env, key, prefix, 0, rate)
    }

    /// Resumes from a checkpoint. The job continues at the checkpoint's output frame
    /// boundary; the caller discards output past [`Reencryption::target_offset`].
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] for a damaged checkpoint or one of another source,
    /// [`Error::AuthenticationFailed`] if its MAC fails, and the keyring's errors.
    pub fn resume(keyring: &Keyring, source: Box<dyn Source>, checkpoint: &[u8], rate: u64) -> Result<Self> {
        let cp = Checkpoint::parse(checkpoint)?;
        if cp.source_identity != source.identity() {
            return Err(Error::MalformedCheckpoint);
        }
        let env = Envelope::decode(&cp.envelope).map_err(|_| Error::MalformedCheckpoint)?;
        let key = keyring.open(&env)?;
        let mac = checkpoint_mac(&key, &checkpoint[..checkpoint.len() - 32]);
        if !bool::from(mac.ct_eq(&checkpoint[checkpoint.len() - 32..])) {
            return Err(Error::AuthenticationFailed);
        }
        if cp.frames_done.checked_mul(env.header().frame_size()).is_none_or(|p| p > source.plaintext_len()) {
            return Err(Error::MalformedCheckpoint);
        }
        Self::build(source, env, key, cp.prefix, cp.frames_done, rate)
    }

    fn build(
        source: Box<dyn Source>,
        env: Envelope,
        key: ObjectKey,
        prefix: Prefix,
        frames_done: u64,
        rate: u64,
    ) -> Result<Self> {
        let frame = env.header().frame_size();
        let pt_offset = frames_done * frame;
        let (src_offset, decryptor) = source.open_from(pt_offset)?;
        let encryptor = Encryptor::<C>::resume_at(&key, prefix, frames_done)?;
        Ok(Self {
            source,
            decryptor: Some(decryptor),
            encryptor: Some(encryptor),
            target_env: env,
            target_key: key,
            prefix,
            frame,
            base_frames: frames_done,
            src_offset,
            out_offset: frames_done * (frame + FRAME_OVERHEAD as u64),
            scratch: Vec::new(),
            limiter: RateLimiter::new(rate, frame + FRAME_OVERHEAD as u64),
            paused: false,
            finished: false,
            failed: false,
        })
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
        self.limiter = RateLimiter::new(rate, self.frame + FRAME_OVERHEAD as u64);
    }

    fn frames_done(&self) -> u64 {
        self.out_offset / (self.frame + FRAME_OVERHEAD as u64)
    }

    /// Progress in bytes and frames.
    #[must_use]
    pub fn progress(&self) -> Progress {
        let total_pt = self.source.plaintext_len();
        let total_frames = total_pt.div_ceil(self.frame).max(1);
        let frames_done = if self.finished { total_frames } else { self.frames_done().min(total_frames) };
        let bytes_done = if self.finished { total_pt } else { (frames_done * self.frame).min(total_pt) };
        Progress {
            bytes_done,
            bytes_left: total_pt - bytes_done,
            frames_done,
            frames_left: total_frames - frames_done,
            finished: self.finished,
            paused: self.paused,
        }
    }

    /// Upper bound on what `update` writes for `input_len` bytes.
    #[must_use]
    pub fn update_len(&self, input_len: usize) -> usize {
        let pt = self.decryptor.as_ref().map_or(0, |d| d.update_len(input_len));
        self.encryptor.as_ref().map_or(0, |e| e.update_len(pt))
    }

    /// Upper bound on what `finish` writes.
    #[must_use]
    pub fn finish_len(&self) -> usize {
        let pt = self.decryptor.as_ref().map_or(0, |d| d.finish_len());
        self.encryptor.as_ref().map_or(0, |e| e.update_len(pt) + e.finish_len() + pt + FRAME_OVERHEAD)
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
        let r = self.pump(&input[..allowed], out);
        match r {
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
        let (Some(dec), Some(enc)) = (self.decryptor.as_mut(), self.encryptor.as_mut()) else {
            return Err(Error::InvalidState);
        };
        let need = dec.update_len(input.len());
        if self.scratch.len() < need {
            self.scratch.resize(need, 0);
        }
        let n = dec.update(input, &mut self.scratch[..need])?;
        let r = enc.update(&self.scratch[..n], out);
        self.scratch[..n].fill(0);
        r
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
        let (Some(dec), Some(mut enc)) = (self.decryptor.take(), self.encryptor.take()) else {
            return Err(Error::InvalidState);
        };
        let need = dec.finish_len();
        let mut tail = vec![0u8; need];
        let result = dec.finish(&mut tail).and_then(|n| {
            let w = enc.update(&tail[..n], out)?;
            let f = enc.finish(&mut out[w..])?;
            Ok(w + f)
        });
        tail.fill(0);
        match result {
            Ok(w) => {
                self.out_offset += w as u64;
                self.finished = true;
                Ok(w)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// A checkpoint for the last output frame boundary (SPEC.md §13.2). Output written past
    /// [`Checkpoint::target_offset`] of it is re-created identically on resume.
    #[must_use]
    pub fn checkpoint(&self) -> Vec<u8> {
        let frames = if self.finished { self.frames_done() } else { self.frames_done().max(self.base_frames) };
        let env = self.target_env.to_bytes();
        let mut b = Vec::with_capacity(4 + 1 + 32 + 8 + 2 + env.len() + 7 + 8 + 32);
        b.extend_from_slice(CHECKPOINT_MAGIC);
        b.push(CHECKPOINT_VERSION);
        b.extend_from_slice(&self.source.identity());
        b.extend_from_slice(&self.source.ciphertext_len().to_be_bytes());
        b.extend_from_slice(&u16::try_from(env.len()).unwrap_or(u16::MAX).to_be_bytes());
        b.extend_from_slice(&env);
        b.extend_from_slice(&self.prefix);
        b.extend_from_slice(&frames.to_be_bytes());
        let mac = checkpoint_mac(&self.target_key, &b);
        b.extend_from_slice(&mac);
        b
    }
}

/// The fields of a checkpoint, readable without a key (for progress reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Digest of the source object's metadata and size.
    pub source_identity: [u8; 32],
    /// Source ciphertext length.
    pub source_ciphertext_len: u64,
    /// The new object's binary envelope.
    pub envelope: Vec<u8>,
    /// The new object's nonce prefix.
    pub prefix: Prefix,
    /// Output frames written.
    pub frames_done: u64,
}

impl Checkpoint {
    /// Parses a checkpoint's structure (the MAC is checked by [`Reencryption::resume`]).
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`].
    pub fn parse(b: &[u8]) -> Result<Self> {
        let bad = Error::MalformedCheckpoint;
        if b.get(..4) != Some(CHECKPOINT_MAGIC) || b.get(4) != Some(&CHECKPOINT_VERSION) {
            return Err(bad);
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(b.get(5..37).ok_or(bad)?);
        let ct_len = u64::from_be_bytes(b.get(37..45).and_then(|s| s.try_into().ok()).ok_or(bad)?);
        let env_len = usize::from(u16::from_be_bytes(b.get(45..47).and_then(|s| s.try_into().ok()).ok_or(bad)?));
        let env = b.get(47..47 + env_len).ok_or(bad)?.to_vec();
        let at = 47 + env_len;
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(b.get(at..at + 7).ok_or(bad)?);
        let frames = u64::from_be_bytes(b.get(at + 7..at + 15).and_then(|s| s.try_into().ok()).ok_or(bad)?);
        if b.len() != at + 15 + 32 {
            return Err(bad);
        }
        Ok(Self { source_identity: id, source_ciphertext_len: ct_len, envelope: env, prefix, frames_done: frames })
    }

    /// Where the output resumes: bytes of the new object that are final.
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] if the envelope inside does not decode.
    pub fn target_offset(&self) -> Result<u64> {
        let env = Envelope::decode(&self.envelope).map_err(|_| Error::MalformedCheckpoint)?;
        Ok(self.frames_done * (env.header().frame_size() + FRAME_OVERHEAD as u64))
    }
}

fn checkpoint_mac(key: &ObjectKey, body: &[u8]) -> [u8; 32] {
    let k = key.mac_key(LABEL_CHECKPOINT_MAC);
    let mut out = [0u8; 32];
    if let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(&k[..]) {
        m.update(body);
        out.copy_from_slice(&m.finalize().into_bytes());
    }
    out
}
