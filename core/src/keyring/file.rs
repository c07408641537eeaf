//! The keyring file (SPEC.md §10.1): JSON `{"min_version": 0, "keys": [{"kid", "kek" (64 hex
//! digits) | "legacy_secret", "state"}]}`. Parsed here so that the `isec` command, the Python
//! package and every Dask worker read the same file the same way. The secrets are borrowed
//! from the caller's buffer while parsing (no copy is left behind in a parser's strings) and
//! decoded into zeroized storage.

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{KeyState, Keyring};
use crate::error::{Error, Result};
use crate::limits::KEY_LEN;
use crate::wrap::Kek;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File<'a> {
    #[serde(default)]
    min_version: u8,
    #[serde(borrow)]
    keys: alloc::vec::Vec<Entry<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry<'a> {
    kid: &'a str,
    #[serde(default)]
    kek: Option<&'a str>,
    #[serde(default)]
    legacy_secret: Option<&'a str>,
    #[serde(default)]
    state: Option<&'a str>,
}

impl Keyring {
    /// A keyring from the text of a keyring file. A key without `state` is decrypt-only.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for text that is not a keyring file (including strings
    /// written with JSON escapes), a KEK that is not 64 hex digits, an entry with both or
    /// neither of `kek` and `legacy_secret`, and the keyring's own errors
    /// ([`Error::DuplicateKid`] for a kid given twice).
    pub fn from_file_text(text: &[u8]) -> Result<Self> {
        let file: File<'_> = serde_json::from_slice(text).map_err(|_| Error::InvalidParameter)?;
        let mut ring = Self::new();
        for k in &file.keys {
            let state = KeyState::from_name(k.state.unwrap_or("decrypt_only"))?;
            match (k.kek, k.legacy_secret) {
                (Some(hex), None) => ring.add_kek(k.kid, Kek::from_bytes(*decode_key(hex)?), state)?,
                (None, Some(secret)) => ring.add_legacy_secret_string(k.kid, secret)?,
                _ => return Err(Error::InvalidParameter),
            }
        }
        ring.set_min_version(file.min_version);
        Ok(ring)
    }
}

/// 64 hex digits into 32 bytes, without branching on the digits' values.
fn decode_key(hex: &str) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let b = hex.as_bytes();
    if b.len() != 2 * KEY_LEN {
        return Err(Error::InvalidParameter);
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, e1) = nibble(pair[0]);
        let (lo, e2) = nibble(pair[1]);
        *o = (hi << 4) | lo;
        bad |= e1 | e2;
    }
    if bad != 0 {
        return Err(Error::InvalidParameter);
    }
    Ok(out)
}

/// A hex digit's value and 1 if it is not one (either case).
fn nibble(c: u8) -> (u8, u8) {
    let digit = c.wrapping_sub(b'0');
    let lower = (c | 0x20).wrapping_sub(b'a');
    let is_digit = u8::from(digit < 10);
    let is_letter = u8::from(lower < 6);
    let value = digit.wrapping_mul(is_digit).wrapping_add(lower.wrapping_add(10).wrapping_mul(is_letter));
    (value & 0x0f, 1 ^ (is_digit | is_letter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keks_secrets_states_and_refuses_what_is_not_a_keyring() {
        let text = br#"{"min_version": 1, "keys": [
            {"kid": "a", "kek": "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F", "state": "active"},
            {"kid": "b", "kek": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
            {"kid": "AKIAPROXY", "legacy_secret": "s3cr3t"}]}"#;
        let ring = Keyring::from_file_text(text).unwrap();
        assert_eq!(ring.active_kid().unwrap(), "a");
        assert_eq!(ring.state("b"), Some(KeyState::DecryptOnly));
        assert_eq!(ring.min_version(), 1);
        assert_eq!(ring.keys().len(), 3);
        for bad in [
            &br#"{"keys": [{"kid": "a", "kek": "00"}]}"#[..],
            br#"{"keys": [{"kid": "a", "kek": "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}]}"#,
            br#"{"keys": [{"kid": "a"}]}"#,
            br#"{"keys": [{"kid": "a", "legacy_secret": "x", "kek": "00"}]}"#,
            br#"{"keys": [{"kid": "a", "legacy_secret": "x", "state": "sideways"}]}"#,
            br#"{"keys": [], "extra": 1}"#,
            b"[]",
            b"",
        ] {
            assert_eq!(
                Keyring::from_file_text(bad).err(),
                Some(Error::InvalidParameter),
                "{}",
                alloc::string::String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            Keyring::from_file_text(
                br#"{"keys": [{"kid": "a", "legacy_secret": "x"}, {"kid": "a", "legacy_secret": "y"}]}"#
            )
            .err(),
            Some(Error::DuplicateKid)
        );
        for c in 0..=255u8 {
            let (v, bad) = nibble(c);
            match c {
                b'0'..=b'9' => assert_eq!((v, bad), (c - b'0', 0)),
                b'a'..=b'f' => assert_eq!((v, bad), (c - b'a' + 10, 0)),
                b'A'..=b'F' => assert_eq!((v, bad), (c - b'A' + 10, 0)),
                _ => assert_eq!(bad, 1, "{c}"),
            }
        }
    }
}
