//! The one call into the randomness source, so every random value has one failure mode.

use crate::error::{Error, Result};

/// Fills `buf` from the OS (or, with `wasm-js`, the browser's `crypto.getRandomValues`).
///
/// # Errors
/// [`Error::RandomnessUnavailable`] if the source fails.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::RandomnessUnavailable)
}

/// `N` fresh random bytes: a key, salt or nonce prefix in one call.
///
/// # Errors
/// [`Error::RandomnessUnavailable`] if the source fails.
pub fn array<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    fill(&mut bytes)?;
    Ok(bytes)
}
