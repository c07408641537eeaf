//! The keyring file (SPEC.md §10.3): JSON `{"min_version": 0, "keys": [{"kid", "kek" (64 hex
//! digits) | "legacy_secret" | "public_key" | "private_key", "state", "created"}]}`. Parsed here so that the `isec` command, the Python
//! package and every Dask worker read the same file the same way. The secrets are borrowed
//! from the caller's buffer while parsing (no copy is left behind in a parser's strings) and
//! decoded into zeroized storage.

use serde::Deserialize;
use zeroize::Zeroizing;

use alloc::string::String;

use super::{KeyState, Keyring, Private, Source};
use crate::error::{Error, Result};
use crate::limits::KEY_LEN;
use crate::recipient::{PrivateKey, PublicKey};
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
    public_key: Option<&'a str>,
    #[serde(default)]
    private_key: Option<&'a str>,
    #[serde(default)]
    state: Option<&'a str>,
    #[serde(default)]
    created: Option<&'a str>,
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
        // Adding an active key demotes the previous one, which a file must not rely on: two
        // active keys there are a mistake to report, not to resolve by order.
        let actives = file.keys.iter().filter(|k| k.state == Some("active")).count();
        if file.min_version > crate::header::VERSION || actives > 1 {
            return Err(Error::InvalidParameter);
        }
        let mut ring = Self::new();
        for k in &file.keys {
            let state = KeyState::from_name(k.state.unwrap_or("decrypt_only"))?;
            match (k.kek, k.legacy_secret, k.public_key, k.private_key) {
                (Some(hex), None, None, None) => ring.add_kek(k.kid, Kek::from_bytes(*decode_key(hex)?), state)?,
                (None, Some(secret), None, None) => {
                    // Always decrypt-only, or disabled; never active (SPEC.md §10.1).
                    ring.add_legacy_secret_string(k.kid, secret)?;
                    match state {
                        KeyState::Active => return Err(Error::InvalidParameter),
                        KeyState::Disabled => ring.set_state(k.kid, state)?,
                        KeyState::DecryptOnly => {}
                    }
                }
                (None, None, Some(pk), None) => ring.add_public_key(k.kid, PublicKey::from_text(pk)?, state)?,
                (None, None, pk, Some(sk)) => {
                    let sk = PrivateKey::from_text(sk)?;
                    // A file that also names the public key must name this key's.
                    if pk.map(PublicKey::from_text).transpose()?.is_some_and(|pk| pk != sk.public_key()) {
                        return Err(Error::InvalidParameter);
                    }
                    ring.add_private_key(k.kid, sk, state)?;
                }
                _ => return Err(Error::InvalidParameter),
            }
            if let Some(c) = k.created {
                ring.set_created(k.kid, c)?;
            }
        }
        ring.set_min_version(file.min_version);
        Ok(ring)
    }
}

impl Keyring {
    /// The keyring file's text for this keyring, secrets included: what `isec keys` writes
    /// back after a change. The text is wiped when dropped.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a key held outside the process (a KMS or a service
    /// holding a private key), which a file cannot hold.
    pub fn to_file_text(&self) -> Result<Zeroizing<String>> {
        let mut out = Zeroizing::new(String::with_capacity(256 + 192 * self.entries.len()));
        out.push_str("{\n  \"min_version\": ");
        out.push_str(&alloc::format!("{}", self.min_version));
        out.push_str(",\n  \"keys\": [");
        for (i, e) in self.entries.iter().enumerate() {
            out.push_str(if i == 0 { "\n    {\"kid\": " } else { ",\n    {\"kid\": " });
            push_json(&mut out, &e.kid);
            match &e.source {
                Source::Local(_) if e.legacy => {
                    let secret = e.legacy_secret.as_ref().ok_or(Error::InvalidParameter)?;
                    out.push_str(", \"legacy_secret\": ");
                    push_json(&mut out, secret);
                }
                Source::Local(k) => {
                    out.push_str(", \"kek\": \"");
                    push_hex(&mut out, k.expose_secret());
                    out.push('"');
                }
                Source::Recipient(_, Private::Local(sk)) => {
                    out.push_str(", \"private_key\": \"");
                    out.push_str(&sk.to_text());
                    out.push('"');
                }
                Source::Recipient(pk, Private::Absent) => {
                    out.push_str(", \"public_key\": \"");
                    out.push_str(&pk.to_text());
                    out.push('"');
                }
                _ => return Err(Error::InvalidParameter),
            }
            out.push_str(", \"state\": \"");
            out.push_str(e.state.name());
            out.push('"');
            if let Some(c) = &e.created {
                out.push_str(", \"created\": ");
                push_json(&mut out, c);
            }
            out.push('}');
        }
        out.push_str(if self.entries.is_empty() { "]\n}\n" } else { "\n  ]\n}\n" });
        Ok(out)
    }
}

/// A JSON string literal of `s`, written in place.
fn push_json(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&alloc::format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lowercase hex, written in place (no intermediate string holds the key).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
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
