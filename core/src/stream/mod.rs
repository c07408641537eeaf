//! Sans-IO streaming encryption and decryption (SPEC.md §5-7).
//!
//! Neither context reads or writes anything: the caller pushes input of any size and gives
//! an output buffer; the context says how much it wrote. Memory is one frame buffer,
//! allocated at construction, never per frame. `finish` consumes the context, so nothing can
//! be written after the final frame, and it is where truncation is reported.
//!
//! The decryptor releases a frame's plaintext only after the frame's tag verified and its
//! nonce matched its position; on any failure the output region it was writing is wiped and
//! the context refuses further use.
//!
//! Both contexts, and the legacy decryptor, share one shape: the [`Stream`] trait.
//!
//! ```
//! # #[cfg(feature = "getrandom")] {
//! use isec_core::{Decryptor, Encryptor, Error, Kek, KeyState, Keyring, Params, RustCrypto, Shape, Stream};
//!
//! let mut ring = Keyring::new();
//! ring.add_kek("kek-2026", Kek::generate()?, KeyState::Active)?;
//! let (envelope, key) = ring.create_envelope(Params::default().with_frame_size(4096)?)?;
//!
//! // Input arrives in pieces of any size; `update_len` bounds what each call writes.
//! let plaintext: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
//! let mut enc = Encryptor::<RustCrypto>::new(&key)?;
//! let mut body = Vec::new();
//! for piece in plaintext.chunks(3000) {
//!     let mut out = vec![0u8; enc.update_len(piece.len())];
//!     let n = enc.update(piece, &mut out)?;
//!     body.extend_from_slice(&out[..n]);
//! }
//! body.extend_from_slice(&enc.finish_vec()?);
//!
//! // The whole object, fed at odd split points: a frame is released once its tag verified.
//! let key = ring.open(&envelope)?;
//! let mut dec = Decryptor::<RustCrypto>::new(&key)?;
//! let mut got = Vec::new();
//! for chunk in body.chunks(777) {
//!     got.extend_from_slice(&dec.update_vec(chunk)?);
//! }
//! got.extend_from_slice(&dec.finish_vec()?);
//! assert_eq!(got, plaintext);
//!
//! // A body cut short is refused at its end.
//! let mut dec = Decryptor::<RustCrypto>::new(&key)?;
//! dec.update_vec(&body[..4096 + 28])?;
//! assert_eq!(dec.finish_vec(), Err(Error::Truncated));
//!
//! // A range: fetch only the frames that hold plaintext bytes [5000, 5100).
//! let shape = Shape::from_ciphertext_len(key.header(), body.len() as u64)?;
//! let plan = shape.map_range(5000, 5100);
//! assert_eq!(plan.http_range().as_deref(), Some("bytes=4124-8247"));
//! let fetched = &body[plan.ct_start as usize..plan.ct_end as usize];
//! let mut dec = Decryptor::<RustCrypto>::for_range(&key, shape, &plan)?;
//! let mut got = dec.update_vec(fetched)?;
//! got.extend_from_slice(&dec.finish_vec()?);
//! assert_eq!(got, &plaintext[5000..5100]);
//! # }
//! # Ok::<(), isec_core::Error>(())
//! ```
//!
//! Multipart: with [`Params::with_part_size`](crate::Params::with_part_size), each part is
//! encrypted on its own, in any order, on any machine:
//!
//! ```
//! # #[cfg(feature = "getrandom")] {
//! use isec_core::{Decryptor, Encryptor, Kek, KeyState, Keyring, Params, RustCrypto, Stream};
//!
//! let mut ring = Keyring::new();
//! ring.add_kek("kek-2026", Kek::generate()?, KeyState::Active)?;
//! let (_envelope, key) = ring.create_envelope(Params::default().with_frame_size(4096)?.with_part_size(8192)?)?;
//! let plaintext = vec![7u8; 20_000];
//! let parts: Vec<&[u8]> = plaintext.chunks(8192).collect();
//!
//! // Part 3 (the last) first, then parts 1 and 2: each is one UploadPart body.
//! let mut bodies = vec![Vec::new(); parts.len()];
//! for n in [3u32, 1, 2] {
//!     let i = n as usize - 1;
//!     let mut enc = Encryptor::<RustCrypto>::for_part(&key, n, n == 3)?;
//!     bodies[i] = enc.update_vec(parts[i])?;
//!     bodies[i].extend_from_slice(&enc.finish_vec()?);
//! }
//!
//! // S3 joins the parts in order; the whole object decrypts as one stream.
//! let mut dec = Decryptor::<RustCrypto>::new(&key)?;
//! let mut got = dec.update_vec(&bodies.concat())?;
//! got.extend_from_slice(&dec.finish_vec()?);
//! assert_eq!(got, plaintext);
//! # }
//! # Ok::<(), isec_core::Error>(())
//! ```

use alloc::vec;
use alloc::vec::Vec;

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

/// [`Stream::is_locked`] and [`Stream::lock`] of a context whose lock is its `locked` field.
macro_rules! lock_field {
    () => {
        fn is_locked(&self) -> bool {
            self.locked
        }

        fn lock(&mut self) {
            self.locked = true;
        }
    };
}
pub(crate) use lock_field;

mod decrypt;
mod encrypt;
mod schedule;

pub use decrypt::Decryptor;
pub use encrypt::Encryptor;
#[cfg(feature = "getrandom")]
pub use encrypt::random_prefix;
pub use schedule::{NextFrame, Schedule};

/// One streaming context: input of any size in, output into the caller's buffer, and an end
/// that reports what only the end can tell (truncation, a short segment).
///
/// After any error, and after [`Stream::finish`], the context is locked: every further call
/// returns [`Error::InvalidState`]. A caller that ignored an error cannot go on to release
/// unverified plaintext or write an object with a hole in it, and no binding keeps a lock of
/// its own. That includes [`Error::BufferTooSmall`]: a caller that passed a buffer below the
/// bound has lost track of what the context holds.
pub trait Stream {
    /// An upper bound (exact for an encryptor) on what [`Stream::update`] writes for
    /// `input_len` more bytes.
    fn update_len(&self, input_len: usize) -> usize;

    /// An upper bound (exact for an encryptor) on what [`Stream::finish`] writes.
    fn finish_len(&self) -> usize;

    /// Whether the context refuses further calls: after an error, or after its end.
    fn is_locked(&self) -> bool;

    /// Refuses every further call, for a caller whose own step around a call failed (a
    /// cancellation, a refused overlapping buffer): the stream has lost input and must not
    /// go on as if it had not.
    fn lock(&mut self);

    /// Consumes `input`, writing every output that is now final to `out`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`Stream::update_len`];
    /// [`Error::InvalidState`] once locked; the context's own format and authentication
    /// errors, after which it is locked and `out` holds no plaintext it was writing.
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize>;

    /// Ends the input, writing the last output; the context is locked afterwards.
    ///
    /// # Errors
    /// As [`Stream::update`], and what the end reveals ([`Error::Truncated`], ...).
    fn finish(&mut self, out: &mut [u8]) -> Result<usize>;

    /// For a decryptor that may release plaintext before its tag arrives (the legacy
    /// migration decryptor's long seals): the output offset in the object below which
    /// everything released so far is authenticated. `None`: everything released is.
    fn verified_pt_end(&self) -> Option<u64> {
        None
    }

    /// [`Stream::update`] into a buffer of its own.
    ///
    /// # Errors
    /// As [`Stream::update`].
    fn update_vec(&mut self, input: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.update_len(input.len())];
        let n = self.update(input, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// [`Stream::finish`] into a buffer of its own.
    ///
    /// # Errors
    /// As [`Stream::finish`].
    fn finish_vec(&mut self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.finish_len()];
        let n = self.finish(&mut out)?;
        out.truncate(n);
        Ok(out)
    }
}
