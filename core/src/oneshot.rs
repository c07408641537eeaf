//! One-shot helpers over the streaming contexts, for callers that hold whole objects.
//!
//! Both frame-cipher backends write the same bytes, so either reads what the other wrote:
//!
//! ```
//! # #[cfg(feature = "getrandom")] {
//! use isec_core::{Envelope, Error, Kek, KeyState, Keyring, Params, RustCrypto, oneshot};
//!
//! let mut ring = Keyring::new();
//! ring.add_kek("kek-2026", Kek::generate()?, KeyState::Active)?;
//! let (envelope, key) = ring.create_envelope(Params::default())?;
//! let body = oneshot::encrypt::<RustCrypto>(&key, b"quarterly numbers")?;
//! // PUT `body` with the metadata isec = envelope.to_text(), isec-kid = envelope.kid().
//!
//! // Later, elsewhere: the envelope comes back from HEAD, the keyring opens it.
//! let key = ring.open(&Envelope::decode_text(&envelope.to_text())?)?;
//! assert_eq!(oneshot::decrypt::<RustCrypto>(&key, &body)?, b"quarterly numbers");
//! #[cfg(feature = "aws-lc")]
//! assert_eq!(oneshot::decrypt::<isec_core::AwsLc>(&key, &body)?, b"quarterly numbers");
//!
//! // All or nothing: one flipped bit of the tag and no plaintext comes back.
//! let mut tampered = body.clone();
//! *tampered.last_mut().unwrap() ^= 1;
//! assert_eq!(oneshot::decrypt::<RustCrypto>(&key, &tampered), Err(Error::AuthenticationFailed));
//! # }
//! # Ok::<(), isec_core::Error>(())
//! ```

use alloc::vec;
use alloc::vec::Vec;

use crate::cipher::FrameCipher;
use crate::error::{Error, Result};
use crate::header::Layout;
use crate::kdf::ObjectKey;
use crate::limits::FRAME_OVERHEAD;
use crate::nonce::Prefix;
use crate::segment_table::SegmentTable;
use crate::shape::{Shape, frames_in};
use crate::stream::{Decryptor, Encryptor, Stream};

/// Input the `*_checked` calls handle between two calls of their check.
pub const STEP: usize = 4 << 20;

/// The check a `*_checked` call runs before every [`STEP`] of input. A caller running a long
/// call off its event loop returns its own error (a cancellation) to stop it; the call then
/// returns that error and no output. Bytes and core errors are those of the unchecked call.
pub type Check<'a, E> = &'a mut dyn FnMut() -> core::result::Result<(), E>;

/// Encrypts a whole single- or parts-layout object with fresh nonce prefixes.
///
/// # Errors
/// As [`Encryptor::update`]; [`Error::InvalidParameter`] for the table layout.
#[cfg(feature = "getrandom")]
pub fn encrypt<C: FrameCipher>(key: &ObjectKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    encrypt_checked::<C, Error>(key, plaintext, &mut || Ok(()))
}

/// [`encrypt`], running `check` between steps so that a caller can stop it.
///
/// # Errors
/// As [`encrypt`], or the error `check` returns.
#[cfg(feature = "getrandom")]
pub fn encrypt_checked<C: FrameCipher, E: From<Error>>(
    key: &ObjectKey,
    plaintext: &[u8],
    check: Check<'_, E>,
) -> core::result::Result<Vec<u8>, E> {
    encrypt_inner::<C, E>(key, plaintext, &mut |_| crate::stream::random_prefix(), check)
}

/// [`encrypt`] with caller-chosen prefixes (`prefix(segment_ordinal)`), for vectors.
///
/// # Errors
/// As [`encrypt`].
#[cfg(feature = "hazmat")]
pub fn encrypt_with_prefixes<C: FrameCipher>(
    key: &ObjectKey,
    plaintext: &[u8],
    prefix: &mut dyn FnMut(u32) -> Result<Prefix>,
) -> Result<Vec<u8>> {
    encrypt_inner::<C, Error>(key, plaintext, prefix, &mut || Ok(()))
}

#[cfg_attr(
    not(any(feature = "getrandom", feature = "hazmat")),
    allow(dead_code, reason = "used by the random and hazmat front ends")
)]
fn encrypt_inner<C: FrameCipher, E: From<Error>>(
    key: &ObjectKey,
    plaintext: &[u8],
    prefix: &mut dyn FnMut(u32) -> Result<Prefix>,
    check: Check<'_, E>,
) -> core::result::Result<Vec<u8>, E> {
    let header = key.header();
    let shape = Shape::from_plaintext_len(header, plaintext.len() as u64)?;
    let total = usize::try_from(shape.ciphertext_len()).map_err(|_| Error::LimitExceeded)?;
    let mut out = vec![0u8; total];
    for ordinal in 0..shape.segment_count() {
        let seg = shape.segment(ordinal).ok_or(Error::InvalidState)?;
        let pt = plaintext.get(idx(seg.pt_start)?..idx(seg.pt_start + seg.pt_len)?).ok_or(Error::InvalidState)?;
        let dst = out.get_mut(idx(seg.ct_start)?..idx(seg.ct_start + seg.ct_len)?).ok_or(Error::InvalidState)?;
        let part = match header.layout {
            Layout::Single => None,
            _ => Some(seg.number),
        };
        seal_segment::<C, E>(key, part, seg.is_last, prefix(ordinal)?, pt, dst, check)?;
    }
    Ok(out)
}

/// Encrypts one segment (a part, or a whole single-layout body) into `out`, which must be
/// exactly [`crate::shape::segment_ct_len`] bytes.
fn seal_segment<C: FrameCipher, E: From<Error>>(
    key: &ObjectKey,
    part: Option<u32>,
    is_last: bool,
    prefix: Prefix,
    pt: &[u8],
    out: &mut [u8],
    check: Check<'_, E>,
) -> core::result::Result<(), E> {
    let mut enc = Encryptor::<C>::build_for(key, part, is_last, prefix)?;
    let mut n = 0;
    for step in pt.chunks(STEP) {
        check()?;
        n += enc.update(step, out.get_mut(n..).ok_or(Error::InvalidState)?)?;
    }
    let m = enc.finish(out.get_mut(n..).ok_or(Error::InvalidState)?)?;
    if n + m == out.len() { Ok(()) } else { Err(Error::InvalidState.into()) }
}

/// Encrypts one multipart part in one call (any layout with parts).
///
/// # Errors
/// As [`Encryptor::for_part`].
#[cfg(feature = "getrandom")]
pub fn encrypt_part<C: FrameCipher>(
    key: &ObjectKey,
    part_number: u32,
    is_last: bool,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    encrypt_part_inner::<C>(key, part_number, is_last, crate::stream::random_prefix()?, plaintext)
}

/// [`encrypt_part`] into `out` (at least the part's ciphertext length), for a caller that
/// reuses its buffers; returns the bytes written.
///
/// # Errors
/// As [`encrypt_part`]; [`Error::BufferTooSmall`] if `out` is too short.
#[cfg(feature = "getrandom")]
pub fn encrypt_part_into<C: FrameCipher>(
    key: &ObjectKey,
    part_number: u32,
    is_last: bool,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize> {
    let mut enc = Encryptor::<C>::for_part(key, part_number, is_last)?;
    let n = enc.update(plaintext, out)?;
    Ok(n + enc.finish(out.get_mut(n..).ok_or(Error::InvalidState)?)?)
}

/// [`encrypt_part`] with a caller-chosen prefix, for vectors.
///
/// # Errors
/// As [`encrypt_part`].
#[cfg(feature = "hazmat")]
pub fn encrypt_part_with_prefix<C: FrameCipher>(
    key: &ObjectKey,
    part_number: u32,
    is_last: bool,
    prefix: Prefix,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    encrypt_part_inner::<C>(key, part_number, is_last, prefix, plaintext)
}

#[cfg_attr(
    not(any(feature = "getrandom", feature = "hazmat")),
    allow(dead_code, reason = "used by the random and hazmat front ends")
)]
fn encrypt_part_inner<C: FrameCipher>(key: &ObjectKey, n: u32, last: bool, p: Prefix, pt: &[u8]) -> Result<Vec<u8>> {
    let frames = frames_in(pt.len() as u64, key.header().frame_size());
    let len = pt.len() + usize::try_from(frames).map_err(|_| Error::LimitExceeded)? * FRAME_OVERHEAD;
    let mut out = vec![0u8; len];
    seal_segment::<C, Error>(key, Some(n), last, p, pt, &mut out, &mut || Ok(()))?;
    Ok(out)
}

/// Decrypts a whole single- or parts-layout object. All or nothing: no plaintext is
/// returned unless every frame verified and the object ended where it should.
///
/// # Errors
/// Any stream or authentication error.
pub fn decrypt<C: FrameCipher>(key: &ObjectKey, ciphertext: &[u8]) -> Result<Vec<u8>> {
    decrypt_checked::<C, Error>(key, ciphertext, &mut || Ok(()))
}

/// [`decrypt`], running `check` between steps so that a caller can stop it.
///
/// # Errors
/// As [`decrypt`], or the error `check` returns.
pub fn decrypt_checked<C: FrameCipher, E: From<Error>>(
    key: &ObjectKey,
    ciphertext: &[u8],
    check: Check<'_, E>,
) -> core::result::Result<Vec<u8>, E> {
    run_decryptor(Decryptor::<C>::new(key)?, ciphertext, check)
}

/// Decrypts a whole table-layout object given its encoded, authenticated segment table.
///
/// # Errors
/// Segment-table errors, then as [`decrypt`].
pub fn decrypt_with_table<C: FrameCipher>(key: &ObjectKey, table: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    decrypt_with_table_checked::<C, Error>(key, table, ciphertext, &mut || Ok(()))
}

/// [`decrypt_with_table`], running `check` between steps so that a caller can stop it.
///
/// # Errors
/// As [`decrypt_with_table`], or the error `check` returns.
pub fn decrypt_with_table_checked<C: FrameCipher, E: From<Error>>(
    key: &ObjectKey,
    table: &[u8],
    ciphertext: &[u8],
    check: Check<'_, E>,
) -> core::result::Result<Vec<u8>, E> {
    let table = SegmentTable::decode(table, key)?;
    let shape = Shape::from_table(key.header(), table, ciphertext.len() as u64)?;
    run_decryptor(Decryptor::<C>::with_shape(key, shape)?, ciphertext, check)
}

/// Decrypts the plaintext range `[start, end)` of an object of `ct_len` ciphertext bytes,
/// fetching ciphertext through `fetch(ct_start, ct_end)`.
///
/// # Errors
/// Shape errors for impossible lengths, then as [`decrypt`].
pub fn decrypt_range<C: FrameCipher>(
    key: &ObjectKey,
    shape: Shape,
    start: u64,
    end: u64,
    fetch: &mut dyn FnMut(u64, u64) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let plan = shape.map_range(start, end);
    let ct = if plan.ct_end > plan.ct_start { fetch(plan.ct_start, plan.ct_end)? } else { Vec::new() };
    if ct.len() as u64 != plan.ct_end - plan.ct_start {
        return Err(Error::Truncated);
    }
    run_decryptor::<C, Error>(Decryptor::<C>::for_range(key, shape, &plan)?, &ct, &mut || Ok(()))
}

/// Decrypts the plaintext range `[start, end)` from ciphertext already fetched for it (the
/// bytes `[ct_start, ct_end)` of [`Shape::map_range`]), without a fetch callback.
///
/// # Errors
/// [`Error::Truncated`] if `fetched` has the wrong length, then as [`decrypt`].
pub fn decrypt_fetched<C: FrameCipher>(
    key: &ObjectKey,
    shape: Shape,
    start: u64,
    end: u64,
    fetched: &[u8],
) -> Result<Vec<u8>> {
    let plan = shape.map_range(start, end);
    if fetched.len() as u64 != plan.ct_end - plan.ct_start {
        return Err(Error::Truncated);
    }
    run_decryptor::<C, Error>(Decryptor::<C>::for_range(key, shape, &plan)?, fetched, &mut || Ok(()))
}

/// All or nothing: on any error (the check's included) the partial output is wiped.
fn run_decryptor<C: FrameCipher, E: From<Error>>(
    mut dec: Decryptor<C>,
    ciphertext: &[u8],
    check: Check<'_, E>,
) -> core::result::Result<Vec<u8>, E> {
    let mut out = vec![0u8; dec.update_len(ciphertext.len())];
    let mut run = || -> core::result::Result<usize, E> {
        let mut n = 0;
        for step in ciphertext.chunks(STEP) {
            check()?;
            n += dec.update(step, out.get_mut(n..).ok_or(Error::InvalidState)?)?;
        }
        Ok(n + dec.finish(out.get_mut(n..).ok_or(Error::InvalidState)?)?)
    };
    let result = run();
    match result {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(e) => {
            out.fill(0);
            Err(e)
        }
    }
}

/// A u64 offset as an index; objects held in memory always fit.
fn idx(x: u64) -> Result<usize> {
    usize::try_from(x).map_err(|_| Error::LimitExceeded)
}
