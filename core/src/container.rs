//! The self-contained local file (SPEC.md §17): a short header carrying the binary envelope,
//! then the ciphertext body exactly as an object stores it. S3 keeps the envelope in the
//! object's metadata; a local file has no metadata, so without this form the envelope
//! travels in a second file that is easily lost or mixed up, and a pipe cannot carry it.
//!
//! Sans-IO: [`probe`] needs only the first [`PREFIX_LEN`] bytes and says how many bytes the
//! header takes, so a reader buffers at most [`MAX_HEADER_LEN`] bytes before streaming the
//! body. Every failure is a typed [`Error`]; no input panics ([`parse`] is the fuzz entry).

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::header::Layout;
use crate::limits::MAX_ENVELOPE_LEN;
use crate::shape::Shape;

/// The first bytes of every self-contained file.
pub const MAGIC: [u8; 4] = *b"ISEC";
/// The version of the header layout (not of the envelope, which has its own).
pub const VERSION: u8 = 1;
/// Magic, version and the 2-byte envelope length.
pub const PREFIX_LEN: usize = MAGIC.len() + 1 + 2;
/// The longest header: the prefix and the longest envelope.
pub const MAX_HEADER_LEN: usize = PREFIX_LEN + MAX_ENVELOPE_LEN;

/// What a file's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// No magic: a bare ciphertext body, whose envelope is kept elsewhere (detached).
    Detached,
    /// A self-contained file whose header (prefix and envelope) takes `header_len` bytes.
    Contained {
        /// Offset of the ciphertext body.
        header_len: usize,
    },
}

/// Classifies a file from its first bytes (at least [`PREFIX_LEN`] of them, or the whole
/// file if it is shorter).
///
/// # Errors
/// [`Error::Truncated`] if the file ends inside the prefix, [`Error::UnsupportedVersion`] for
/// another header version, [`Error::MalformedEnvelope`] for an envelope length of zero or
/// above the format's limit.
pub fn probe(first: &[u8]) -> Result<Probe> {
    if first.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Ok(Probe::Detached);
    }
    let prefix = first.get(..PREFIX_LEN).ok_or(Error::Truncated)?;
    if prefix[4] != VERSION {
        return Err(Error::UnsupportedVersion);
    }
    let len = usize::from(u16::from_be_bytes([prefix[5], prefix[6]]));
    if len == 0 || len > MAX_ENVELOPE_LEN {
        return Err(Error::MalformedEnvelope);
    }
    Ok(Probe::Contained { header_len: PREFIX_LEN + len })
}

/// Parses a file's header from its first bytes: `None` for a detached body, otherwise the
/// envelope and the offset of the ciphertext body.
///
/// # Errors
/// As [`probe`]; [`Error::Truncated`] if `first` ends inside the envelope, and the envelope's
/// own decoding errors.
pub fn parse(first: &[u8]) -> Result<Option<(Envelope, usize)>> {
    match probe(first)? {
        Probe::Detached => Ok(None),
        Probe::Contained { header_len } => {
            let env = first.get(PREFIX_LEN..header_len).ok_or(Error::Truncated)?;
            Ok(Some((Envelope::decode(env)?, header_len)))
        }
    }
}

/// Writes the header for `env` into `out`, returning its length.
///
/// # Errors
/// [`Error::BufferTooSmall`] if `out` is shorter than `PREFIX_LEN + env.encoded_len()`.
pub fn encode_header(env: &Envelope, out: &mut [u8]) -> Result<usize> {
    let len = env.encoded_len();
    let total = PREFIX_LEN + len;
    let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    out[..4].copy_from_slice(&MAGIC);
    out[4] = VERSION;
    out[5..PREFIX_LEN].copy_from_slice(&u16::try_from(len).map_err(|_| Error::LimitExceeded)?.to_be_bytes());
    env.encode_into(&mut out[PREFIX_LEN..])?;
    Ok(total)
}

/// The header for `env`.
#[cfg(feature = "alloc")]
#[must_use]
pub fn header(env: &Envelope) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec![0u8; PREFIX_LEN + env.encoded_len()];
    let n = encode_header(env, &mut out).unwrap_or(0);
    out.truncate(n);
    out
}

/// Checks that a detached envelope given for a self-contained file is the file's own (the
/// same data key, possibly rewrapped under another kid).
///
/// # Errors
/// [`Error::MetadataMismatch`] if it is another object's.
pub fn check_given(given: &Envelope, carried: &Envelope) -> Result<()> {
    if given.same_dek_as(carried) { Ok(()) } else { Err(Error::MetadataMismatch) }
}

/// The geometry of a body of `ct_len` bytes whose envelope was given apart from it (a
/// `.meta.json` file or the envelope text): a length that the envelope's declared size or
/// its frame arithmetic rules out means the envelope is not this object's (or the object
/// was cut or extended), which is said as such rather than as a stream error.
///
/// `None` for the table layout, whose geometry needs its segment table.
///
/// # Errors
/// [`Error::MetadataMismatch`] where [`Shape::from_ciphertext_len`] fails with
/// [`Error::Truncated`], [`Error::TrailingData`] or [`Error::BadFrameLength`]; its other
/// errors as they are.
pub fn detached_shape(env: &Envelope, ct_len: u64) -> Result<Option<Shape>> {
    if env.header().layout == Layout::Table {
        return Ok(None);
    }
    match Shape::from_ciphertext_len(env.header(), ct_len) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Truncated | Error::TrailingData | Error::BadFrameLength) => Err(Error::MetadataMismatch),
        Err(e) => Err(e),
    }
}

/// The ciphertext length the envelope's declared size implies, if it declares one and its
/// layout is regular: a reader that cannot seek (a pipe) compares it with what it read
/// before the final frame is checked, so that a body cut inside a frame is `truncated`
/// rather than a failed tag.
///
/// # Errors
/// As [`Shape::from_plaintext_len`].
pub fn expected_ciphertext_len(env: &Envelope) -> Result<Option<u64>> {
    match (env.header().declared_size, env.header().layout) {
        (Some(size), Layout::Single | Layout::Parts { .. }) => {
            Ok(Some(Shape::from_plaintext_len(env.header(), size)?.ciphertext_len()))
        }
        _ => Ok(None),
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::envelope::Params;
    use crate::wrap::{Dek, Kek};

    fn env(size: Option<u64>, dek: u8) -> Envelope {
        let p = Params::new(crate::LayoutRequest::Single, Some(4096), size).unwrap();
        Envelope::create_with(&Kek::from_bytes([1; 32]), "k", p, &Dek::from_bytes([dek; 32]), [3; 32]).unwrap().0
    }

    #[test]
    fn header_round_trips_and_every_cut_is_a_typed_error() {
        let e = env(Some(10), 2);
        let h = header(&e);
        assert_eq!(&h[..5], b"ISEC\x01");
        assert_eq!(h.len(), PREFIX_LEN + e.encoded_len());
        let mut file = h.clone();
        file.extend_from_slice(b"body");
        let (back, at) = parse(&file).unwrap().unwrap();
        assert_eq!((back.to_bytes(), at), (e.to_bytes(), h.len()));
        for cut in 4..h.len() {
            assert_eq!(parse(&h[..cut]).err(), Some(Error::Truncated), "cut at {cut}");
        }
        assert_eq!(parse(b"ISE"), Ok(None));
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"\x01\x02\x03\x04\x05\x06\x07\x08"), Ok(None));
        assert_eq!(parse(b"ISEC\x02\x00\x10").err(), Some(Error::UnsupportedVersion));
        assert_eq!(parse(b"ISEC\x01\x00\x00").err(), Some(Error::MalformedEnvelope));
        assert_eq!(parse(b"ISEC\x01\xff\xff").err(), Some(Error::MalformedEnvelope));
        let mut bad = h.clone();
        bad[PREFIX_LEN] ^= 0xff;
        assert!(parse(&bad).is_err());
        assert_eq!(encode_header(&e, &mut [0u8; 10]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn given_envelopes_and_lengths_that_do_not_fit_are_a_mismatch() {
        let (a, b) = (env(Some(10), 2), env(Some(10), 9));
        assert_eq!(check_given(&a, &a), Ok(()));
        assert_eq!(check_given(&a, &b), Err(Error::MetadataMismatch));
        let ct = expected_ciphertext_len(&a).unwrap().unwrap();
        assert_eq!(ct, 10 + 28);
        assert!(detached_shape(&a, ct).unwrap().is_some());
        for wrong in [0, ct - 1, ct + 1, 4096 + 28 + 5] {
            assert_eq!(detached_shape(&a, wrong).err(), Some(Error::MetadataMismatch), "{wrong}");
        }
        assert_eq!(expected_ciphertext_len(&env(None, 2)), Ok(None));
    }
}
