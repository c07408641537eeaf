//! The authenticated segment table of [`crate::Layout::Table`] objects (SPEC.md §6.3).
//!
//! A relay that forwards a client's multipart upload cannot choose part sizes, so the
//! object's geometry is recorded after completion: the part numbers in order and their
//! plaintext lengths, under an HMAC-SHA256 whose key derives from the object key. Without a
//! valid table nothing of the object is released, so dropping, reordering or resizing parts
//! is caught.
//!
//! Each entry also records the nonce prefix of the encryption of that part the upload was
//! completed with. Segment keys depend only on the part number, so without it an older,
//! complete and authentic encryption of part `n` (a retry with other bytes of the same
//! length) would be accepted in place of the one the writer completed.
//!
//! Encoding: `version (1) = 1 || count u32 BE || count x (part u32 BE || pt_len u64 BE ||
//! prefix (7)) || HMAC-SHA256 (32)`.

use alloc::vec::Vec;

use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::frame::segment_ct_len;
use crate::kdf::{LABEL_TABLE_MAC, ObjectKey};
use crate::limits::{MAX_PARTS, MAX_PLAINTEXT_SIZE, PREFIX_LEN};
use crate::nonce::Prefix;

const TABLE_VERSION: u8 = 1;
const ENTRY_LEN: usize = 12 + PREFIX_LEN;
const MAC_LEN: usize = 32;

/// One part of a table-layout object: its number, plaintext length, and the nonce prefix
/// of the encryption the writer completed the upload with ([`crate::Encryptor::prefix`]).
pub type TableEntry = (u32, u64, Prefix);

/// Part numbers, plaintext lengths and nonce prefixes of a table-layout object, with
/// plaintext offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentTable {
    entries: Vec<TableEntry>,
    starts: Vec<u64>,
    ct_starts: Vec<u64>,
    total: u64,
}

impl SegmentTable {
    /// Builds a table from `(part number, plaintext length, nonce prefix)` entries in object
    /// order.
    ///
    /// # Errors
    /// [`Error::MalformedSegmentTable`] if empty, longer than 10000 entries, part numbers not
    /// strictly increasing within 1..=10000, an empty segment other than a sole one, or the
    /// total over the size limit.
    pub fn new(entries: Vec<TableEntry>) -> Result<Self> {
        if entries.is_empty() || entries.len() > MAX_PARTS as usize {
            return Err(Error::MalformedSegmentTable);
        }
        let mut starts = Vec::with_capacity(entries.len());
        let mut total = 0u64;
        let mut prev = 0u32;
        for &(number, len, _) in &entries {
            if number <= prev || number > MAX_PARTS || (len == 0 && entries.len() > 1) {
                return Err(Error::MalformedSegmentTable);
            }
            prev = number;
            starts.push(total);
            total = total.checked_add(len).filter(|t| *t <= MAX_PLAINTEXT_SIZE).ok_or(Error::MalformedSegmentTable)?;
        }
        Ok(Self { entries, starts, ct_starts: Vec::new(), total })
    }

    /// Computes ciphertext offsets for frames of `frame` bytes; returns the total
    /// ciphertext length.
    pub(crate) fn index_ciphertext(&mut self, frame: u64) -> Result<u64> {
        self.ct_starts.clear();
        let mut ct = 0u64;
        for &(_, len, _) in &self.entries {
            self.ct_starts.push(ct);
            ct += segment_ct_len(len, frame)?;
        }
        Ok(ct)
    }

    /// `(part number, plaintext length, nonce prefix)` entries.
    #[must_use]
    pub fn entries(&self) -> &[TableEntry] {
        &self.entries
    }

    /// Total plaintext bytes.
    #[must_use]
    pub fn plaintext_len(&self) -> u64 {
        self.total
    }

    /// The nonce prefix every frame of segment `ordinal` must carry.
    pub(crate) fn prefix(&self, ordinal: usize) -> Option<Prefix> {
        self.entries.get(ordinal).map(|e| e.2)
    }

    /// `(number, pt_start, pt_len, ct_start)` of segment `ordinal`.
    pub(crate) fn segment(&self, ordinal: usize) -> Option<(u32, u64, u64, u64)> {
        let &(number, len, _) = self.entries.get(ordinal)?;
        Some((number, self.starts[ordinal], len, *self.ct_starts.get(ordinal)?))
    }

    /// The ordinal of the segment holding plaintext offset `offset` (the last for offsets
    /// past the end).
    pub(crate) fn ordinal_at(&self, offset: u64) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
        .min(self.entries.len().saturating_sub(1))
    }

    /// The ordinal of the segment holding ciphertext offset `offset` (after
    /// `index_ciphertext`).
    pub(crate) fn ordinal_at_ct(&self, offset: u64) -> usize {
        match self.ct_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
        .min(self.entries.len().saturating_sub(1))
    }

    /// Encodes and authenticates the table under `key`.
    #[must_use]
    pub fn encode(&self, key: &ObjectKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.entries.len() * ENTRY_LEN + MAC_LEN);
        out.push(TABLE_VERSION);
        // At most 10000 entries, checked in `new`.
        out.extend_from_slice(&u32::try_from(self.entries.len()).unwrap_or(u32::MAX).to_be_bytes());
        for &(n, l, p) in &self.entries {
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&l.to_be_bytes());
            out.extend_from_slice(p.as_bytes());
        }
        let mac = mac(key, &out);
        out.extend_from_slice(&mac);
        out
    }

    /// Verifies and decodes a table.
    ///
    /// # Errors
    /// [`Error::MalformedSegmentTable`] for bad structure, [`Error::AuthenticationFailed`]
    /// if the MAC does not verify under `key`.
    pub fn decode(bytes: &[u8], key: &ObjectKey) -> Result<Self> {
        if bytes.len() < 5 + MAC_LEN || bytes[0] != TABLE_VERSION {
            return Err(Error::MalformedSegmentTable);
        }
        let count = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if count == 0 || count > MAX_PARTS as usize || bytes.len() != 5 + count * ENTRY_LEN + MAC_LEN {
            return Err(Error::MalformedSegmentTable);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        if !bool::from(mac(key, body).ct_eq(tag)) {
            return Err(Error::AuthenticationFailed);
        }
        let entries = body[5..]
            .chunks_exact(ENTRY_LEN)
            .map(|c| {
                let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                let l = u64::from_be_bytes([c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]]);
                let mut p = [0u8; PREFIX_LEN];
                p.copy_from_slice(&c[12..]);
                (n, l, Prefix::from(p))
            })
            .collect();
        Self::new(entries)
    }
}

fn mac(key: &ObjectKey, body: &[u8]) -> [u8; MAC_LEN] {
    crate::kdf::hmac_sha256(&key.mac_key(LABEL_TABLE_MAC)[..], &[body])
}
