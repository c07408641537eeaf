//! Opening an object stored in S3: what to read after a HEAD, as data (SPEC.md §12.1).
//!
//! A HEAD answers with user metadata and a stored size. Whether that is enough to read the
//! object depends on the format: an isec object of the table layout needs its segment table
//! (inline in metadata, or in a sidecar object), a previous-proxy object of the staged
//! layout needs its generation-keyed sidecar, and an object with no encryption metadata at
//! all is either plaintext or a previous-proxy streamed upload whose only trace is an
//! object-keyed sidecar. Only fetching that sidecar tells which, and treating such an object
//! as plaintext would hand its ciphertext out as data.
//!
//! [`ObjectOpen`] holds that decision in one place for every runtime (rustls-style: core
//! says what to fetch, the caller fetches it and feeds back the body or its absence).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::header::Layout;
use crate::legacy::{DEFAULT_SIDECAR_CAP, LegacyMetadata, LegacyObject, LegacySidecar};
use crate::metadata::{ObjectFormat, TableSource, classify, table_sidecar_key, table_source};

/// The largest encoded segment table (10000 entries): a sidecar above it is refused
/// unread.
pub const MAX_TABLE_LEN: u64 = 5 + 10_000 * 19 + 32;

/// What a sidecar holds, so the caller can name it in errors and size-cap its read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarKind {
    /// The isec segment table of a table-layout object (`<key>.isec-table`).
    Table,
    /// The previous proxy's metadata of a staged or streamed upload
    /// (`.s3proxy-internal/...meta`).
    Legacy,
}

impl SidecarKind {
    /// Stable name: `table` or `legacy`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Legacy => "legacy",
        }
    }
}

/// What the caller does next.
#[derive(Debug)]
pub enum Open {
    /// Everything needed to read the object is known.
    Ready(Opened),
    /// GET `key` (at most `max_len` bytes; a longer body is an error) and feed its body to
    /// [`ObjectOpen::feed`], or `None` if it does not exist (404).
    Fetch {
        /// The sidecar's object key.
        key: String,
        /// Its kind.
        kind: SidecarKind,
        /// The largest body the caller may read.
        max_len: u64,
        /// Whether its absence is an answer rather than an error: the object may be plain.
        probe: bool,
    },
}

/// A readable object.
#[derive(Debug)]
pub enum Opened {
    /// An isec object; `table` is the encoded segment table of a table-layout object (its
    /// MAC is checked when it is decoded with the object key).
    Isec {
        /// The envelope.
        envelope: Box<Envelope>,
        /// The encoded segment table, for the table layout.
        table: Option<Vec<u8>>,
        /// The table's sidecar key, when the table lives in a sidecar (copies carry it).
        table_sidecar: Option<String>,
    },
    /// A previous-proxy object, with the sidecar it was opened from (copies carry it;
    /// migration deletes it last).
    Legacy {
        /// The object's geometry and wrapped DEK.
        object: LegacyObject,
        /// The sidecar's key, if it has one.
        sidecar: Option<String>,
    },
    /// No encryption of any kind: not even a previous-proxy sidecar exists.
    Plaintext,
}

impl Opened {
    /// Stable name of the object's format (`isec`, `legacy` or `plaintext`), and the sidecar
    /// it was opened from (its table's or the previous proxy's), if any: a copy must take it
    /// along.
    #[must_use]
    pub fn format_and_sidecar(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::Isec { table_sidecar: s, .. } => ("isec", s.as_deref()),
            Self::Legacy { sidecar: s, .. } => ("legacy", s.as_deref()),
            Self::Plaintext => ("plaintext", None),
        }
    }
}

enum Waiting {
    Table { key: String, envelope: Box<Envelope> },
    Legacy { key: String, meta: LegacyMetadata, probe: bool },
    Nothing,
}

/// The opening of one object: from its HEAD to a readable [`Opened`].
pub struct ObjectOpen {
    size: u64,
    waiting: Waiting,
}

impl ObjectOpen {
    /// Starts from a HEAD answer: the object's key, user metadata (keys with or without
    /// `x-amz-meta-`, any case) and stored size.
    ///
    /// # Errors
    /// The metadata's own error for unreadable encryption metadata (SPEC.md §11.1),
    /// [`Error::MalformedSegmentTable`] for an inline table that does not decode,
    /// [`Error::MalformedLegacy`] for previous-proxy metadata that does not parse.
    pub fn new(object_key: &str, meta: &[(&str, &str)], stored_size: u64) -> Result<(Self, Open)> {
        let mut me = Self { size: stored_size, waiting: Waiting::Nothing };
        let next = match classify(meta, false) {
            ObjectFormat::Isec(env) => {
                let envelope = env;
                if envelope.header().layout != Layout::Table {
                    Open::Ready(Opened::Isec { envelope, table: None, table_sidecar: None })
                } else {
                    match table_source(meta)? {
                        TableSource::Inline(t) => {
                            Open::Ready(Opened::Isec { envelope, table: Some(t), table_sidecar: None })
                        }
                        TableSource::Sidecar => {
                            let key = table_sidecar_key(object_key);
                            me.waiting = Waiting::Table { key: key.clone(), envelope };
                            Open::Fetch { key, kind: SidecarKind::Table, max_len: MAX_TABLE_LEN, probe: false }
                        }
                    }
                }
            }
            ObjectFormat::Legacy { .. } | ObjectFormat::Plaintext => {
                let lm = LegacyMetadata::from_pairs(meta)?;
                match lm.sidecar_key(object_key) {
                    None => Open::Ready(Opened::Legacy {
                        object: LegacyObject::new(&lm, None, stored_size)?,
                        sidecar: None,
                    }),
                    Some(key) => {
                        // No encryption metadata at all: only the sidecar's existence tells
                        // a streamed upload of the proxy from a plain object.
                        let probe = !lm.is_legacy();
                        me.waiting = Waiting::Legacy { key: key.clone(), meta: lm, probe };
                        Open::Fetch { key, kind: SidecarKind::Legacy, max_len: DEFAULT_SIDECAR_CAP as u64, probe }
                    }
                }
            }
            ObjectFormat::Unreadable(e) => return Err(e),
        };
        Ok((me, next))
    }

    /// Feeds the sidecar the last [`Open::Fetch`] named: its body, or `None` if it does not
    /// exist.
    ///
    /// # Errors
    /// [`Error::MalformedSegmentTable`] for a missing table sidecar, [`Error::MalformedLegacy`]
    /// for a missing sidecar the metadata requires, [`Error::SidecarTooLarge`] for a body
    /// over the cap, the sidecar's parse errors, and [`Error::InvalidState`] when nothing
    /// was asked for.
    pub fn feed(&mut self, body: Option<&[u8]>) -> Result<Open> {
        match core::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Nothing => Err(Error::InvalidState),
            Waiting::Table { key, envelope } => {
                let b = body.ok_or(Error::MalformedSegmentTable)?;
                if b.len() as u64 > MAX_TABLE_LEN {
                    return Err(Error::MalformedSegmentTable);
                }
                Ok(Open::Ready(Opened::Isec { envelope, table: Some(b.to_vec()), table_sidecar: Some(key) }))
            }
            Waiting::Legacy { key, meta, probe } => match body {
                None if probe => Ok(Open::Ready(Opened::Plaintext)),
                None => Err(Error::MalformedLegacy),
                Some(b) => {
                    if b.len() > DEFAULT_SIDECAR_CAP {
                        return Err(Error::SidecarTooLarge);
                    }
                    let sc = LegacySidecar::parse(b, DEFAULT_SIDECAR_CAP)?;
                    let object = LegacyObject::new(&meta, Some(&sc), self.size)?;
                    Ok(Open::Ready(Opened::Legacy { object, sidecar: Some(key.to_string()) }))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plaintext_object_says_so_and_names_no_sidecar() {
        let (mut open, _) = ObjectOpen::new("k", &[], 3).unwrap();
        let Open::Ready(o) = open.feed(None).unwrap() else { panic!("no sidecar: plaintext") };
        assert_eq!(o.format_and_sidecar(), ("plaintext", None));
        assert_eq!((SidecarKind::Table.name(), SidecarKind::Legacy.name()), ("table", "legacy"));
    }
}
