//! Opening legacy seals: the key, a sans-IO streaming decryptor, and one-shot helpers
//! (SPEC.md §11).
//!
//! A seal is `nonce(12) || AES-256-GCM(dek, nonce, plaintext, aad = "") || tag(16)`. Its
//! plaintext is released only after its tag verified (and, where the layout derives nonces
//! and the upload id is known, after its nonce matched its position); a failure wipes what
//! the failing call had written. Seal boundaries come from the [`LegacyObject`], so the
//! decryptor knows every seal's exact length and buffers at most one.
//!
//! The one exception is migration ([`LegacyDecryptor::for_migration`], crate-private): a
//! seal too large to buffer is released as it is decrypted and verified at its end, because
//! what migration releases goes only into a new upload that is aborted if the tag fails.

use alloc::vec;
use alloc::vec::Vec;

use zeroize::Zeroize;

use crate::cipher::FrameCipher;
use crate::cipher::gcm_stream::GcmStream;
use crate::error::{Error, Result};
use crate::frame::SegmentOpener;
use crate::legacy::metadata::decode_wrapped;
use crate::legacy::{LegacyObject, LegacyRange, LegacySeal, MAX_BUFFERED_SEAL};
use crate::limits::{NONCE_LEN, TAG_LEN};
use crate::stream::{Stream, lock_field};
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
/// Feed ciphertext in pieces of any size with [`Stream::update`]; end with
/// [`Stream::finish`], which is where a short body is reported. Memory is one seal
/// buffer, allocated only when a seal arrives split across calls.
pub struct LegacyDecryptor<C: FrameCipher> {
    opener: SegmentOpener<C>,
    object: LegacyObject,
    next: u64,
    end: u64,
    want_start: u64,
    want_end: u64,
    pending: Vec<u8>,
    /// Set after an error or the end: every further call is refused.
    locked: bool,
    released: u64,
    /// End of the plaintext released and authenticated: `want_start + released`, except
    /// while a late seal is open.
    verified: u64,
    /// Migration only: the DEK, to open seals above [`MAX_BUFFERED_SEAL`] as they arrive.
    late_key: Option<Dek>,
    /// The late seal being read, from its first byte until its tag checked.
    late: Option<LateSeal>,
}

/// A seal read without buffering it (migration only): its nonce is collected before any
/// byte is decrypted, its ciphertext is decrypted as it arrives, its tag collected last.
struct LateSeal {
    /// Bytes of the seal taken: nonce, then ciphertext, then tag.
    at: u64,
    nonce: [u8; NONCE_LEN],
    /// Started once the nonce is complete.
    gcm: Option<GcmStream>,
    tag: [u8; TAG_LEN],
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
        Self::build(key, object, range, Some(max_seal))
    }

    /// The decryptor for migration (SPEC.md §13): the whole object (`range` = `None`) or a
    /// planned range, with no limit on seal size, for [`crate::reencrypt::LegacySource`] only.
    ///
    /// The proxy wrote single objects of up to 32 MiB, and its early multipart parts of up
    /// to 5 GiB, as one seal each. Verifying such a seal before releasing any of it would
    /// hold the whole seal in memory, so here a seal above [`MAX_BUFFERED_SEAL`] is decrypted
    /// as it arrives and its plaintext released at once; its tag is checked when its last
    /// byte arrives, and a mismatch fails the decryptor ([`Error::AuthenticationFailed`])
    /// and, through it, the job. Seals up to the limit are verified before release, as
    /// everywhere else; a derived nonce is checked when its 12 bytes arrive, before any of
    /// its seal is decrypted.
    ///
    /// Releasing unverified plaintext is acceptable here, and nowhere else, because of where
    /// it goes: the job re-encrypts it under a new DEK into an upload that is not completed
    /// until the source has verified to its end, and that upload is aborted when the source
    /// fails, so no reader ever sees the bytes. A checkpoint must not vouch for them either:
    /// the job checkpoints only output below [`Stream::verified_pt_end`]. Anything
    /// that hands plaintext to a user uses [`LegacyDecryptor::new`],
    /// [`LegacyDecryptor::for_range`] or [`LegacyDecryptor::with_seal_limit`], which refuse
    /// such seals instead.
    ///
    /// A range that starts inside a large seal is still fed from the seal's first byte
    /// ([`LegacyObject::plan_range`] widens every fetch to seal boundaries): the tag covers
    /// the whole seal, so the bytes before the range are hashed, though not decrypted.
    /// Memory stays one buffer of at most [`MAX_BUFFERED_SEAL`] for the smaller seals plus
    /// the GCM state, whatever the size of the large ones.
    ///
    /// # Errors
    /// As [`LegacyDecryptor::for_range`], but never [`Error::LimitExceeded`] for a seal's size.
    pub(crate) fn for_migration(key: &LegacyKey, object: &LegacyObject, range: Option<&LegacyRange>) -> Result<Self> {
        Self::build(key, object, range, None)
    }

    /// `max_seal`: the largest seal to accept, all of them buffered; `None`: migration, any
    /// seal, those above [`MAX_BUFFERED_SEAL`] opened late.
    fn build(
        key: &LegacyKey,
        object: &LegacyObject,
        range: Option<&LegacyRange>,
        max_seal: Option<usize>,
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
        if let Some(max_seal) = max_seal
            && object.max_seal_len(first, end) > max_seal as u64
        {
            return Err(Error::LimitExceeded);
        }
        // No AES-GCM message is longer than GCM's limit: a seal that claims more cannot be
        // authentic, so refuse it before a migration streams gigabytes of it.
        if object.max_seal_len(first, end) > crate::cipher::gcm_stream::MAX_GCM_MESSAGE + crate::legacy::SEAL_OVERHEAD {
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
            locked: false,
            released: 0,
            verified: want_start,
            late_key: max_seal.is_none().then(|| key.dek.clone()),
            late: None,
        })
    }

    /// Plaintext bytes released so far. In migration, this includes a large seal's bytes
    /// before its tag is checked; [`Stream::verified_pt_end`] excludes them.
    #[must_use]
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Whether every expected seal has been verified.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.next >= self.end
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut [u8], written: &mut usize) -> Result<()> {
        while !input.is_empty() {
            if self.is_done() {
                return Err(Error::TrailingData);
            }
            let seal = self.object.seal(self.next).ok_or(Error::InvalidState)?;
            if self.late_key.is_some() && seal.ct_len > MAX_BUFFERED_SEAL as u64 {
                let taken = self.open_late(&seal, input, out, written)?;
                input = input.get(taken..).ok_or(Error::InvalidState)?;
                continue;
            }
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

    /// Takes the next bytes of a late seal from the front of `input`: nonce, then
    /// ciphertext (the wanted part decrypted to `out[*written..]`, the rest only hashed),
    /// then tag, checked when its last byte arrives. Returns the input bytes taken.
    /// `written` grows as soon as plaintext is written, so that a failing tag in the same
    /// call has [`Stream::update`] wipe it with the rest of the call's output. Seal
    /// sizes stay u64, so a 5 GiB seal also opens on 32-bit targets. On error the caller
    /// drops the seal's state, wiping its keys.
    fn open_late(&mut self, seal: &LegacySeal, mut input: &[u8], out: &mut [u8], written: &mut usize) -> Result<usize> {
        let key = self.late_key.as_ref().ok_or(Error::InvalidState)?;
        let st = self.late.get_or_insert(LateSeal { at: 0, nonce: [0; NONCE_LEN], gcm: None, tag: [0; TAG_LEN] });
        let tag_at = seal.pt_len.checked_add(NONCE_LEN as u64).ok_or(Error::LimitExceeded)?;
        let mut taken = 0usize;

        if st.at < NONCE_LEN as u64 {
            let at = usize::try_from(st.at).map_err(|_| Error::InvalidState)?;
            let slot = st.nonce.get_mut(at..).ok_or(Error::InvalidState)?;
            let n = slot.len().min(input.len());
            let (head, rest) = input.split_at(n);
            slot[..n].copy_from_slice(head);
            (input, taken, st.at) = (rest, n, st.at + n as u64);
            if st.at == NONCE_LEN as u64 {
                if let Some(expected) = self.object.expected_nonce(seal) {
                    // The derived nonce is public, so a plain comparison leaks nothing.
                    if expected != st.nonce {
                        return Err(Error::AuthenticationFailed);
                    }
                }
                st.gcm = Some(GcmStream::new(key.bytes(), &st.nonce));
            }
        }

        if st.at >= NONCE_LEN as u64 && st.at < tag_at && !input.is_empty() {
            let n = usize::try_from(tag_at - st.at).map_or(input.len(), |left| left.min(input.len()));
            let (ct, rest) = input.split_at(n);
            // Object plaintext offsets of `ct`, and the wanted part of them.
            let p0 = seal.pt_offset + (st.at - NONCE_LEN as u64);
            let p1 = p0 + n as u64;
            let lo = self.want_start.clamp(p0, p1);
            let hi = self.want_end.clamp(lo, p1);
            let a = usize::try_from(lo - p0).map_err(|_| Error::InvalidState)?;
            let b = usize::try_from(hi - p0).map_err(|_| Error::InvalidState)?;
            let gcm = st.gcm.as_mut().ok_or(Error::InvalidState)?;
            gcm.absorb(&ct[..a])?;
            gcm.decrypt(&ct[a..b], out.get_mut(*written..).ok_or(Error::BufferTooSmall)?)?;
            *written += b - a;
            gcm.absorb(&ct[b..])?;
            self.released += (b - a) as u64;
            (input, taken, st.at) = (rest, taken + n, st.at + n as u64);
        }

        if st.at >= tag_at && !input.is_empty() {
            let at = usize::try_from(st.at - tag_at).map_err(|_| Error::InvalidState)?;
            let slot = st.tag.get_mut(at..).ok_or(Error::InvalidState)?;
            let n = slot.len().min(input.len());
            slot[..n].copy_from_slice(&input[..n]);
            (taken, st.at) = (taken + n, st.at + n as u64);
            if st.at == seal.ct_len {
                let (gcm, tag) = (st.gcm.take().ok_or(Error::InvalidState)?, st.tag);
                self.late = None;
                gcm.verify(&tag)?;
                self.next += 1;
                self.verified = self.want_start + self.released;
            }
        }
        Ok(taken)
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
                self.verified = self.want_start + self.released;
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
        self.verified = self.want_start + self.released;
        Ok(n)
    }
}

impl<C: FrameCipher> Stream for LegacyDecryptor<C> {
    lock_field!();

    /// An upper bound on what [`Stream::update`] writes for `input_len` more bytes.
    /// A late seal (migration) writes at most one byte per input byte, so the bound holds
    /// for it too.
    fn update_len(&self, input_len: usize) -> usize {
        self.pending.len().saturating_add(input_len)
    }

    /// What [`Stream::finish`] writes: nothing, since seal lengths are known and
    /// each seal is released as soon as its last byte arrives.
    fn finish_len(&self) -> usize {
        0
    }

    /// Feeds ciphertext; writes the plaintext of every seal completed and verified by it
    /// (in migration, also a large seal's plaintext as it arrives: see
    /// `LegacyDecryptor::for_migration` and [`Stream::verified_pt_end`]).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`Stream::update_len`];
    /// [`Error::AuthenticationFailed`] for a seal that fails its tag
    /// or carries the wrong derived nonce; [`Error::TrailingData`] for input past the last
    /// seal; [`Error::InvalidState`] once locked (after an error or the end). On error, everything this call
    /// wrote to `out` is wiped and the context refuses further use.
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.locked {
            return Err(Error::InvalidState);
        }
        if out.len() < self.update_len(input.len()) {
            self.locked = true;
            return Err(Error::BufferTooSmall);
        }
        let mut written = 0;
        let r = self.update_inner(input, out, &mut written);
        if r.is_err() {
            self.locked = true;
            self.late = None;
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
    /// [`Error::InvalidState`] once locked (after an error or the end).
    fn finish(&mut self, _out: &mut [u8]) -> Result<usize> {
        if self.locked {
            return Err(Error::InvalidState);
        }
        self.locked = true;
        if !self.is_done() || !self.pending.is_empty() {
            return Err(Error::Truncated);
        }
        Ok(0)
    }

    /// The object plaintext offset below which every byte released so far has been
    /// authenticated. It equals the end of what was released except while a large seal is
    /// being read in migration, when it stays at that seal's start (or the range's) until
    /// the tag verifies, then jumps to the seal's end; after a failure it stays where the
    /// last verified seal left it. The migration job checkpoints only output below it, so
    /// that a resumed job never rests on plaintext that might yet fail.
    fn verified_pt_end(&self) -> Option<u64> {
        Some(self.verified)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::cast_possible_truncation)]
mod tests {
    //! Migration's late seals: objects with lone seals above [`MAX_BUFFERED_SEAL`], built
    //! here because the shared vectors have none. Crate-internal, as the constructor is.

    use alloc::format;

    use super::*;
    use crate::RustCrypto;
    use crate::legacy::{LegacyMetadata, LegacySidecar, SEAL_PLAINTEXT, part_nonce};

    const MIB: usize = 1 << 20;
    const DEK_B64: &str = "47bv/V/+5lfiUcb2Rxy8UlbGp5K/QF+NeF01rcMq6MeGvHROluuIcA==";
    const UPLOAD: &str = "2~bigSealUpload";
    const BIG: u64 = MAX_BUFFERED_SEAL as u64;

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            if n == 0 { 0 } else { (self.0 % n as u64) as usize }
        }
    }

    fn key() -> LegacyKey {
        LegacyKey::from_dek(Dek::from_bytes([0x5a; 32]))
    }

    /// Position-dependent bytes, so that a shifted or skipped byte shows.
    fn plaintext(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect()
    }

    fn seal(nonce: [u8; NONCE_LEN], pt: &[u8]) -> Vec<u8> {
        let mut body = pt.to_vec();
        let tag = RustCrypto::new(key().dek.bytes()).unwrap().seal_in_place(&nonce, &mut body).unwrap();
        [&nonce[..], &body, &tag].concat()
    }

    /// A single PUT: one 20 MiB seal.
    fn single() -> (LegacyObject, Vec<u8>, Vec<u8>) {
        let pt = plaintext(20 * MIB);
        let ct = seal(*b"single-nonce", &pt);
        let meta = LegacyMetadata::from_pairs(&[("isec", DEK_B64)]).unwrap();
        (LegacyObject::new(&meta, None, ct.len() as u64).unwrap(), pt, ct)
    }

    /// A streamed upload: part 1 one 3 MiB seal, part 2 one 12 MiB seal, part 3 a run of an
    /// 8 MiB and a 100-byte seal, part 4 one 1000-byte seal. Lone seals carry their part
    /// nonce, which is checked once the upload id is known.
    fn multi() -> (LegacyObject, Vec<u8>, Vec<u8>) {
        let sizes = [3 * MIB + 5, 12 * MIB + 7, 8 * MIB + 100, 1000];
        let pt = plaintext(sizes.iter().sum());
        let (mut ct, mut parts, mut at) = (Vec::new(), Vec::new(), 0);
        for (i, &n) in sizes.iter().enumerate() {
            let pn = i as u32 + 1;
            let part = &pt[at..at + n];
            let before = ct.len();
            if pn == 3 {
                // A run: nonces random (not derivable), boundaries from the frame-count rule.
                let (head, tail) = part.split_at(SEAL_PLAINTEXT as usize);
                ct.extend(seal(*b"run-seal-one", head));
                ct.extend(seal(*b"run-seal-two", tail));
            } else {
                ct.extend(seal(part_nonce(UPLOAD, pn), part));
            }
            parts.push(format!(r#"{{"pn":{pn},"ps":{n},"cs":{},"ip":[]}}"#, ct.len() - before));
            at += n;
        }
        let json = format!(r#"{{"v":2,"pc":4,"ts":{},"dek":"{DEK_B64}","parts":[{}]}}"#, pt.len(), parts.join(","));
        let sc = LegacySidecar::from_json(json.as_bytes()).unwrap();
        let obj = LegacyObject::new(&LegacyMetadata::default(), Some(&sc), ct.len() as u64).unwrap();
        (obj, pt, ct)
    }

    /// What a migration decryptor must have released, and verified, after `fed` bytes of
    /// the fetch for `[a, b)`: whole small seals once complete, a late seal's bytes as they
    /// arrive, its verification only with its last byte.
    fn expected(obj: &LegacyObject, plan: &LegacyRange, fed: u64) -> (u64, u64) {
        let (a, b) = (plan.pt_start, plan.pt_start + plan.len);
        let (mut released, mut verified) = (a, a);
        for i in plan.first_seal..plan.end_seal {
            let s = obj.seal(i).unwrap();
            let at = fed.saturating_sub(s.ct_offset - plan.ct_start);
            if at >= s.ct_len {
                released = (s.pt_offset + s.pt_len).clamp(a, b);
                verified = released;
                continue;
            }
            if s.ct_len > BIG {
                let pt_seen = at.saturating_sub(NONCE_LEN as u64).min(s.pt_len);
                released = (s.pt_offset + pt_seen).clamp(a, b);
            }
            break;
        }
        (released - a, verified)
    }

    /// Feeds the planned fetch in pieces `next(offset)` chooses, checking after every call
    /// that output follows the input (late seals) or the seals (small ones), that
    /// verification lags exactly as documented, and that no buffer grows past one small seal.
    fn migrate(
        obj: &LegacyObject,
        plan: &LegacyRange,
        fetched: &[u8],
        mut next: impl FnMut(usize) -> usize,
    ) -> Result<Vec<u8>> {
        let mut d = LegacyDecryptor::<RustCrypto>::for_migration(&key(), obj, Some(plan))?;
        assert_eq!(d.verified_pt_end().unwrap_or(0), plan.pt_start);
        let (mut out, mut buf, mut at) = (Vec::new(), Vec::new(), 0);
        while at < fetched.len() {
            let n = next(at).clamp(1, fetched.len() - at);
            let need = d.update_len(n);
            if buf.len() < need {
                buf.resize(need, 0);
            }
            let before = d.verified_pt_end().unwrap_or(0);
            let w = d.update(&fetched[at..at + n], &mut buf[..need])?;
            out.extend_from_slice(&buf[..w]);
            at += n;
            assert!(d.pending.capacity() <= MAX_BUFFERED_SEAL, "a buffer grew past one small seal");
            if d.late.is_some() {
                assert!(d.pending.is_empty());
            }
            let (released, verified) = expected(obj, plan, at as u64);
            assert_eq!((d.released(), out.len() as u64), (released, released), "released after {at}");
            assert_eq!(d.verified_pt_end().unwrap_or(0), verified, "verified after {at}");
            assert!(d.verified_pt_end().unwrap_or(0) >= before);
        }
        d.finish(&mut [])?;
        Ok(out)
    }

    /// `assert_eq!` without printing megabytes.
    fn same(got: &[u8], want: &[u8], what: &str) {
        if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
            panic!("{what}: first difference at byte {i}");
        }
        assert_eq!(got.len(), want.len(), "{what}: lengths");
    }

    fn whole(obj: &LegacyObject) -> LegacyRange {
        obj.plan_range(0, u64::MAX).unwrap()
    }

    /// 1-byte pieces around every seal's nonce and tag, 4095 and 1 MiB pieces between.
    fn mixed(obj: &LegacyObject) -> impl FnMut(usize) -> usize + '_ {
        let mut i = 0usize;
        move |at| {
            i += 1;
            let near_edge = obj.seals().any(|s| {
                let (start, end) = (s.ct_offset as usize, (s.ct_offset + s.ct_len) as usize);
                at < start + 40 && at + 40 > start || at + 40 > end && at < end + 40
            });
            if near_edge {
                1
            } else if i.is_multiple_of(2) {
                4095
            } else {
                MIB
            }
        }
    }

    #[test]
    fn a_20_mib_seal_streams_in_bounded_memory() {
        let (obj, pt, ct) = single();
        assert_eq!(obj.seal_count(), 1);
        let plan = whole(&obj);
        same(&migrate(&obj, &plan, &ct, mixed(&obj)).unwrap(), &pt, "mixed pieces");
        for piece in [4095, MIB, usize::MAX] {
            same(&migrate(&obj, &plan, &ct, |_| piece).unwrap(), &pt, &format!("pieces of {piece}"));
        }
        let mut rng = Rng(0x1234_5678_9abc_def1);
        same(&migrate(&obj, &plan, &ct, |_| rng.below(3 * MIB) + 1).unwrap(), &pt, "random pieces");
        // Also through `None`, the whole object.
        let mut d = LegacyDecryptor::<RustCrypto>::for_migration(&key(), &obj, None).unwrap();
        let mut out = vec![0u8; d.update_len(ct.len())];
        assert_eq!(d.update(&ct, &mut out), Ok(pt.len()));
        assert_eq!((d.verified_pt_end().unwrap_or(0), d.pending.capacity()), (pt.len() as u64, 0));
        same(&out[..pt.len()], &pt, "one call");
    }

    #[test]
    fn late_and_verified_seals_mix() {
        let (obj, pt, ct) = multi();
        let seals: Vec<_> = obj.seals().map(|s| s.ct_len).collect();
        assert_eq!(seals, [3 * MIB as u64 + 33, 12 * MIB as u64 + 35, BIG, 128, 1028]);
        let plan = whole(&obj);
        same(&migrate(&obj, &plan, &ct, mixed(&obj)).unwrap(), &pt, "mixed pieces");
        for piece in [1 << 16, MIB, 5 * MIB, usize::MAX] {
            same(&migrate(&obj, &plan, &ct, |_| piece).unwrap(), &pt, &format!("pieces of {piece}"));
        }
        // With the upload id known, the part nonces are checked, the late seal's included.
        let checked = obj.clone().with_upload_id(UPLOAD).unwrap();
        same(&migrate(&checked, &plan, &ct, |_| 777_777).unwrap(), &pt, "nonces checked");
    }

    #[test]
    fn ranges_inside_a_late_seal_release_exactly_the_range() {
        let (obj, pt, ct) = multi();
        let big = obj.seal(1).unwrap();
        let (s, e, n) = (big.pt_offset, big.pt_offset + big.pt_len, pt.len() as u64);
        let ranges = [
            (s + 1, n),
            (s + 5 * MIB as u64 + 3, n),
            (s + 100, s + 200),
            (s + 4095, e),
            (e - 1, e),
            (e - 1, e + 1),
            (s - 1, s + 1),
            (1000, s + 7 * MIB as u64),
            (s + 3, e + SEAL_PLAINTEXT + 50),
        ];
        let mut rng = Rng(77);
        for (a, b) in ranges {
            let plan = obj.plan_range(a, b).unwrap();
            let first = obj.seal(plan.first_seal).unwrap();
            assert_eq!(plan.ct_start, first.ct_offset, "fetches start at a seal");
            let fetched = &ct[plan.ct_start as usize..plan.ct_end as usize];
            let want = &pt[a as usize..b as usize];
            same(&migrate(&obj, &plan, fetched, |_| rng.below(2 * MIB) + 1).unwrap(), want, &format!("[{a}, {b})"));
            same(&migrate(&obj, &plan, fetched, |_| usize::MAX).unwrap(), want, &format!("[{a}, {b}) whole"));
        }
        let (obj, pt, ct) = single();
        for (a, b) in [(5 * MIB as u64 + 3, 20 * MIB as u64), (1, 2), (20 * MIB as u64 - 1, 20 * MIB as u64)] {
            let plan = obj.plan_range(a, b).unwrap();
            assert_eq!(plan.ct_start, 0);
            let got = migrate(&obj, &plan, &ct, |_| 65_537).unwrap();
            same(&got, &pt[a as usize..b as usize], &format!("[{a}, {b})"));
        }
    }

    /// Feeds `ct` in 1 MiB pieces; returns the offset fed when the first error came, the
    /// error, and the decryptor's verified end then.
    fn first_failure(obj: &LegacyObject, ct: &[u8]) -> (usize, Error, u64) {
        let mut d = LegacyDecryptor::<RustCrypto>::for_migration(&key(), obj, None).unwrap();
        let (mut buf, mut at) = (Vec::new(), 0);
        while at < ct.len() {
            let n = MIB.min(ct.len() - at);
            buf.resize(d.update_len(n), 0);
            if let Err(e) = d.update(&ct[at..at + n], &mut buf) {
                let verified = d.verified_pt_end().unwrap_or(0);
                assert_eq!(d.update(&[], &mut buf), Err(Error::InvalidState));
                assert_eq!(d.finish(&mut []), Err(Error::InvalidState));
                return (at + n, e, verified);
            }
            at += n;
        }
        panic!("tampered object decrypted");
    }

    #[test]
    fn a_late_seal_that_fails_its_tag_fails_at_its_end() {
        let (obj, _, ct) = multi();
        let big = obj.seal(1).unwrap();
        let (start, end) = (big.ct_offset as usize, (big.ct_offset + big.ct_len) as usize);
        let fails_at = end.next_multiple_of(MIB).min(ct.len());
        for at in [start, start + 11, start + 12, start + 5 * MIB, end - 17, end - 16, end - 1] {
            let mut bad = ct.clone();
            bad[at] ^= 0x20;
            let r = first_failure(&obj, &bad);
            assert_eq!(r, (fails_at, Error::AuthenticationFailed, big.pt_offset), "flip at {at}");
        }
        // With the upload id known, a wrong nonce fails before any of the seal is released.
        let checked = obj.clone().with_upload_id(UPLOAD).unwrap();
        let mut bad = ct.clone();
        bad[start + 3] ^= 1;
        let mut d = LegacyDecryptor::<RustCrypto>::for_migration(&key(), &checked, None).unwrap();
        let mut buf = vec![0u8; d.update_len(start + 12)];
        assert_eq!(d.update(&bad[..start + 11], &mut buf), Ok(big.pt_offset as usize));
        assert_eq!(d.update(&bad[start + 11..start + 12], &mut buf), Err(Error::AuthenticationFailed));
        assert_eq!((d.released(), d.verified_pt_end().unwrap_or(0)), (big.pt_offset, big.pt_offset));

        // A failure within one call leaves nothing of that call's output, late bytes included.
        let mut bad = ct.clone();
        bad[end - 1] ^= 1;
        let mut d = LegacyDecryptor::<RustCrypto>::for_migration(&key(), &obj, None).unwrap();
        let mut buf = vec![0xAAu8; d.update_len(bad.len())];
        assert_eq!(d.update(&bad, &mut buf), Err(Error::AuthenticationFailed));
        assert!(buf[..(big.pt_offset + big.pt_len) as usize].iter().all(|&b| b == 0), "released bytes not wiped");

        // A small seal after it is still verified before release.
        let small = obj.seal(3).unwrap();
        let mut bad = ct.clone();
        bad[small.ct_offset as usize + 20] ^= 1;
        let (_, e, verified) = first_failure(&obj, &bad);
        assert_eq!((e, verified), (Error::AuthenticationFailed, small.pt_offset));

        // Short and long bodies.
        let plan = whole(&obj);
        assert_eq!(migrate(&obj, &plan, &ct[..end - 1], |_| MIB), Err(Error::Truncated));
        assert_eq!(migrate(&obj, &plan, &ct[..start + 5], |_| MIB), Err(Error::Truncated));
        let (single, _, sct) = single();
        let mut longer = sct.clone();
        longer.push(0);
        let mut d = LegacyDecryptor::<RustCrypto>::for_migration(&key(), &single, None).unwrap();
        let mut buf = vec![0u8; d.update_len(longer.len())];
        assert_eq!(d.update(&longer, &mut buf), Err(Error::TrailingData));
    }

    #[test]
    fn user_facing_readers_still_refuse_late_seals() {
        for (obj, pt, ct) in [single(), multi()] {
            let key = key();
            assert_eq!(LegacyDecryptor::<RustCrypto>::new(&key, &obj).err(), Some(Error::LimitExceeded));
            let whole = whole(&obj);
            assert_eq!(LegacyDecryptor::<RustCrypto>::for_range(&key, &obj, &whole).err(), Some(Error::LimitExceeded));
            assert_eq!(
                LegacyDecryptor::<RustCrypto>::with_seal_limit(&key, &obj, None, MAX_BUFFERED_SEAL).err(),
                Some(Error::LimitExceeded)
            );
            // A caller that accepts the memory buffers the seal and verifies it first.
            let d = LegacyDecryptor::<RustCrypto>::with_seal_limit(&key, &obj, None, 21 * MIB).unwrap();
            assert!(d.late_key.is_none(), "only migration opens seals late");
            // The one-shot reader has the whole body in memory, so it verifies first.
            same(&decrypt::<RustCrypto>(&key, &obj, &ct).unwrap(), &pt, "one-shot");
        }
        // Ranges that avoid the large seal stream as before.
        let (obj, pt, ct) = multi();
        let last = obj.seal(4).unwrap();
        let plan = obj.plan_range(last.pt_offset + 1, u64::MAX).unwrap();
        let mut d = LegacyDecryptor::<RustCrypto>::for_range(&key(), &obj, &plan).unwrap();
        let fetched = &ct[plan.ct_start as usize..];
        let mut out = vec![0u8; d.update_len(fetched.len())];
        let n = d.update(fetched, &mut out).unwrap();
        same(&out[..n], &pt[last.pt_offset as usize + 1..], "range after the large seal");
    }

    #[cfg(feature = "aws-lc")]
    #[test]
    fn small_seals_on_aws_lc() {
        let (obj, pt, ct) = multi();
        let mut d = LegacyDecryptor::<crate::AwsLc>::for_migration(&key(), &obj, None).unwrap();
        let mut out = Vec::new();
        for piece in ct.chunks(3 * MIB + 1) {
            let mut buf = vec![0u8; d.update_len(piece.len())];
            let n = d.update(piece, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        d.finish(&mut []).unwrap();
        same(&out, &pt, "aws-lc");
    }
}
