//! The one call into the randomness source, so every random value has one failure mode.

use crate::error::{Error, Result};

/// Fills `buf` from the OS (or, with `wasm-js`, the browser's `crypto.getRandomValues`).
///
/// # Errors
/// [`Error::RandomnessUnavailable`] if the source fails.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::RandomnessUnavailable)
}
