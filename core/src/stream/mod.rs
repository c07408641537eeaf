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
