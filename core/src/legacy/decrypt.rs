//! Opening legacy seals: the key, a sans-IO streaming decryptor, and one-shot helpers
//! (SPEC.md §11).
//!
//! A seal is `nonce(12) || AES-256-GCM(dek, nonce, plaintext, aad = "") || tag(16)`. Its
//! plaintext is released only after its tag verified (and, where the layout derives nonces
//! and the upload id is known, after its nonce matched its position); a failure wipes what
//! the failing call had written. Seal boundaries come from the [`LegacyObject`], so the
//! decryptor knows every seal's exact length and buffers at most one.

use alloc::vec;
use alloc::vec::Vec;

use zeroize::Zeroize;

use crate::cipher::FrameCipher;
use crate::error::{Error, Result};
use crate::frame::SegmentOpener;
use crate::legacy::metadata::decode_wrapped;
use crate::legacy::{LegacyObject, LegacyRange, LegacySeal, MAX_BUFFERED_SEAL};
use crate::limits::NONCE_LEN;
use crate::wrap::{Dek, Kek, KeyWrap};

/// A legacy object's DEK. Wiped on drop (it holds a [`Dek`]).
pub struct LegacyKey {
    dek: Dek,
}

impl LegacyKey {
    /// Unwraps the DEK the proxy stored as standard base64 of an AES-KWP blob (`isec`
    /// metadata or a sidecar's `dek`). Build the KEK with
    /// [`Kek::legacy_from_secret_string`].
    ///
    /// # Errors
    /// [`Error::MalformedLegacy`] if the text is not base64 of 40 bytes;
    /// [`Error::UnwrapFailed`] for the wrong KEK or a damaged blob.
    pub fn open(kek: &Kek, wrapped_b64: &str) -> Result<Self> {
        let wrapped = decode_wrapped(wrapped_b64)?;
        Ok(Self { dek: kek.unwrap(&wrapped)? })
    }

    /// [`LegacyKey::open`] on the wrapped DEK the object's metadata or sidecar named.
    ///
    /// # Errors
    /// As [`LegacyKey::open`].
    pub fn open_object(kek: &Kek, object: &LegacyObject) -> Result<Self> {
        Self::open(kek, object.wrapped_dek_b64())
    }

    /// A key from a DEK unwrapped elsewhere (an external keyring).
    #[must_use]
    pub fn from_dek(dek: Dek) -> Self {
        Self { dek }
    }

    /// The DEK, for keys derived from it (a migration checkpoint's MAC).
    pub(crate) fn dek(&self) -> &Dek {
        &self.dek
    }
}

impl core::fmt::Debug for LegacyKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LegacyKey(..)")
    }
}

/// Streaming, sans-IO decryptor for a whole legacy object or a planned range of one.
///
/// Feed ciphertext in pieces of any size with [`LegacyDecryptor::update`]; end with
/// [`LegacyDecryptor::finish`], which is where a short body is reported. Memory is one seal
/// buffer, allocated only when a seal arrives split across calls.
pub struct LegacyDecryptor<C: FrameCipher> {
    opener: SegmentOpener<C>,
    object: LegacyObject,
    next: u64,
    end: u64,
    want_start: u64,
    want_end: u64,
    pending: Vec<u8>,
    failed: bool,
    released: u64,
}

impl<C: FrameCipher> LegacyDecryptor<C> {
    /// Decrypts the whole object from its first byte.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if a seal is larger than [`MAX_BUFFERED_SEAL`] (use
    /// [`LegacyDecryptor::with_seal_limit`]); backend key errors.
    pub fn new(key: &LegacyKey, object: &LegacyObject) -> Result<Self> {
        Self::with_seal_limit(key, object, None, MAX_BUFFERED_SEAL)
    }

    /// Decrypts the ciphertext `[range.ct_start, range.ct_end)` and releases only the
    /// planned plaintext. Every seal fetched is authenticated, including the partial ones
    /// at either end.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `range` is not [`LegacyObject::plan_range`]'s plan
    /// for this object; as [`LegacyDecryptor::new`].
    pub fn for_range(key: &LegacyKey, object: &LegacyObject, range: &LegacyRange) -> Result<Self> {
        Self::with_seal_limit(key, object, Some(range), MAX_BUFFERED_SEAL)
    }

    /// [`LegacyDecryptor::new`] (`range` = `None`) or [`LegacyDecryptor::for_range`] with
    /// another bound on the one seal it may buffer, for objects whose lone seals exceed
    /// 8 MiB, at the memory cost of the largest.
    ///
    /// # Errors
    /// As [`LegacyDecryptor::for_range`].
    pub fn with_seal_limit(
        key: &LegacyKey,
        object: &LegacyObject,
        range: Option<&LegacyRange>,
        max_seal: usize,
    ) -> Result<Self> {
        let (first, end, want_start, want_end) = match range {
            None => (0, object.seal_count(), 0, object.plaintext_len()),
            Some(r) => {
                let want_end = r.pt_start.checked_add(r.len).ok_or(Error::InvalidParameter)?;
                if object.plan_range(r.pt_start, want_end)? != *r {
                    return Err(Error::InvalidParameter);
                }
                (r.first_seal, r.end_seal, r.pt_start, want_end)
            }
        };
        if object.max_seal_len(first, end) > max_seal as u64 {
            return Err(Error::LimitExceeded);
        }
        let cipher = C::new(key.dek.bytes())?;
        Ok(Self {
            opener: SegmentOpener::new(cipher),
            object: object.clone(),
            next: first,
            end,
            want_start,
            want_end,
            pending: Vec::new(),
            failed: false,
            released: 0,
        })
    }

    /// An upper bound on what [`LegacyDecryptor::update`] writes for `input_len` more bytes.
    #[must_use]
    pub fn update_len(&self, input_len: usize) -> usize {
        self.pending.len().saturating_add(input_len)
    }

    /// What [`LegacyDecryptor::finish`] writes: nothing, since seal lengths are known and
    /// each seal is released as soon as its last byte arrives.
    #[must_use]
    pub fn finish_len(&self) -> usize {
        0
    }

    /// Plaintext bytes released so far.
    #[must_use]
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Whether every expected seal has been verified.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.next >= self.end
    }

    /// Feeds ciphertext; writes the plaintext of every seal completed and verified by it.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`LegacyDecryptor::update_len`]
    /// (nothing is consumed); [`Error::AuthenticationFailed`] for a seal that fails its tag
    /// or carries the wrong derived nonce; [`Error::TrailingData`] for input past the last
    /// seal; [`Error::InvalidState`] after an earlier error. On error, everything this call
    /// wrote to `out` is wiped and the context refuses further use.
    pub fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.failed {
            return Err(Error::InvalidState);
        }
        if out.len() < self.update_len(input.len()) {
            return Err(Error::BufferTooSmall);
        }
        let mut written = 0;
        let r = self.update_inner(input, out, &mut written);
        if r.is_err() {
            self.failed = true;
            self.pending.as_mut_slice().zeroize();
            self.pending.clear();
            if let Some(w) = out.get_mut(..written) {
                w.zeroize();
            }
        }
        r.map(|()| written)
    }

    /// Ends the input.
    ///
    /// # Errors
    /// [`Error::Truncated`] if seals are missing or one is incomplete;
    /// [`Error::InvalidState`] after an earlier error.
    pub fn finish(self, _out: &mut [u8]) -> Result<usize> {
        if self.failed {
            return Err(Error::InvalidState);
        }
        if !self.is_done() || !self.pending.is_empty() {
            return Err(Error::Truncated);
        }
        Ok(0)
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut [u8], written: &mut usize) -> Result<()> {
        while !input.is_empty() {
            if self.is_done() {
                return Err(Error::TrailingData);
            }
            let seal = self.object.seal(self.next).ok_or(Error::InvalidState)?;
            let need = usize::try_from(seal.ct_len).map_err(|_| Error::LimitExceeded)?;
            let dst = out.get_mut(*written..).ok_or(Error::BufferTooSmall)?;
            if self.pending.is_empty() && input.len() >= need {
                // The whole seal is in the caller's buffer: open it from there, no copy.
                let (frame, rest) = input.split_at_checked(need).ok_or(Error::InvalidState)?;
                *written += self.release(&seal, Some(frame), dst)?;
                input = rest;
            } else {
                let take = need.saturating_sub(self.pending.len()).min(input.len());
                let want = self.pending.len().saturating_add(take);
                if self.pending.capacity() < want {
                    // Grow geometrically but never past this seal: memory follows the bytes
                    // that actually arrived, not a length the unauthenticated sizes claim,
                    // and never exceeds one seal.
                    let target = want.max(self.pending.capacity().saturating_mul(2).min(need));
                    self.pending.reserve_exact(target - self.pending.len());
                }
                let (head, rest) = input.split_at_checked(take).ok_or(Error::InvalidState)?;
                self.pending.extend_from_slice(head);
                input = rest;
                if self.pending.len() == need {
                    *written += self.release(&seal, None, dst)?;
                }
            }
        }
        Ok(())
    }

    /// Verifies one complete seal (`direct`, or the pending buffer) and writes the wanted
    /// part of its plaintext to the front of `out`.
    fn release(&mut self, seal: &LegacySeal, direct: Option<&[u8]>, out: &mut [u8]) -> Result<usize> {
        let seal_end = seal.pt_offset + seal.pt_len;
        let lo = self.want_start.clamp(seal.pt_offset, seal_end) - seal.pt_offset;
        let hi = self.want_end.clamp(seal.pt_offset, seal_end) - seal.pt_offset;
        let lo = usize::try_from(lo).map_err(|_| Error::LimitExceeded)?;
        let hi = usize::try_from(hi).map_err(|_| Error::LimitExceeded)?.max(lo);
        let pt_len = usize::try_from(seal.pt_len).map_err(|_| Error::LimitExceeded)?;
        {
            let frame = direct.unwrap_or(&self.pending);
            if let Some(expected) = self.object.expected_nonce(seal) {
                // The derived nonce is public, so a plain comparison leaks nothing.
                if frame.get(..NONCE_LEN) != Some(&expected[..]) {
                    return Err(Error::AuthenticationFailed);
                }
            }
            if lo == 0 && hi == pt_len {
                let dst = out.get_mut(..pt_len).ok_or(Error::BufferTooSmall)?;
                // Wipes `dst` itself if the tag fails.
                self.opener.open_to(frame, dst)?;
                self.pending.clear();
                self.next += 1;
                self.released += pt_len as u64;
                return Ok(pt_len);
            }
        }
        // A partial seal: verify in place in the one seal buffer, copy out only the slice.
        if let Some(frame) = direct {
            self.pending.clear();
            self.pending.extend_from_slice(frame);
        }
        let opened = self.opener.open_in_place(&mut self.pending);
        let n = hi - lo;
        let copied = opened.and_then(|_| {
            let src = self.pending.get(NONCE_LEN + lo..NONCE_LEN + hi).ok_or(Error::InvalidState)?;
            let dst = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
            dst.copy_from_slice(src);
            Ok(n)
        });
        self.pending.as_mut_slice().zeroize();
        self.pending.clear();
        let n = copied?;
        self.next += 1;
        self.released += n as u64;
        Ok(n)
    }
}

/// Decrypts a whole legacy object held in memory.
///
/// # Errors
/// [`Error::Truncated`] / [`Error::TrailingData`] if `ciphertext` is not the object's
/// length; [`Error::AuthenticationFailed`] if any seal fails. Nothing is returned unless
/// every seal verified.
pub fn decrypt<C: FrameCipher>(key: &LegacyKey, object: &LegacyObject, ciphertext: &[u8]) -> Result<Vec<u8>> {
    check_len(ciphertext.len(), object.ciphertext_len())?;
    // The whole body is at hand, so no seal is ever buffered: no limit is needed.
    let d = LegacyDecryptor::<C>::with_seal_limit(key, object, None, usize::MAX)?;
    run(d, ciphertext, object.plaintext_len())
}

/// Decrypts a planned range from the fetched ciphertext `[range.ct_start, range.ct_end)`.
///
/// # Errors
/// [`Error::InvalidParameter`] if `range` is not this object's plan; [`Error::Truncated`] /
/// [`Error::TrailingData`] if `fetched` is not the planned length; as [`decrypt`].
pub fn decrypt_range<C: FrameCipher>(
    key: &LegacyKey,
    object: &LegacyObject,
    range: &LegacyRange,
    fetched: &[u8],
) -> Result<Vec<u8>> {
    let d = LegacyDecryptor::<C>::with_seal_limit(key, object, Some(range), usize::MAX)?;
    check_len(fetched.len(), range.ct_end.saturating_sub(range.ct_start))?;
    run(d, fetched, range.len)
}

fn check_len(have: usize, want: u64) -> Result<()> {
    match (have as u64).cmp(&want) {
        core::cmp::Ordering::Less => Err(Error::Truncated),
        core::cmp::Ordering::Greater => Err(Error::TrailingData),
        core::cmp::Ordering::Equal => Ok(()),
    }
}

fn run<C: FrameCipher>(mut d: LegacyDecryptor<C>, input: &[u8], pt_len: u64) -> Result<Vec<u8>> {
    let expect = usize::try_from(pt_len).map_err(|_| Error::LimitExceeded)?;
    let mut out = vec![0u8; d.update_len(input.len())];
    let result = d.update(input, &mut out).and_then(|n| Ok(n + d.finish(&mut [])?));
    match result {
        Ok(n) if n == expect => {
            out.truncate(n);
            Ok(out)
        }
        other => {
            out.as_mut_slice().zeroize();
            Err(other.err().unwrap_or(Error::InvalidState))
        }
    }
}
