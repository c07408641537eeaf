//! The proxy's sidecar: base64 of gzip of JSON, stored as its own object (SPEC.md §11).
//!
//! The sidecar is the only record of where a multipart or streamed object's seals stand,
//! and it is unauthenticated. Parsing is therefore bounded (a size cap before and during
//! inflation) and every size is checked against the others: a sidecar that cannot describe
//! a body the proxy could have written is refused before any byte of the body is trusted.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64, Encoding};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::legacy::metadata::{check_wrapped_b64, parse_hex32};
use crate::legacy::{SEAL_OVERHEAD, SEAL_PLAINTEXT, gzip};
use crate::limits::{MAX_PARTS, MAX_PLAINTEXT_SIZE};

/// What every sidecar part records, client or internal: its sizes and its ETag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PartRecord {
    /// Plaintext bytes (`ps`).
    #[serde(rename = "ps")]
    pub plaintext_size: u64,
    /// Ciphertext bytes (`cs`).
    #[serde(rename = "cs")]
    pub ciphertext_size: u64,
    /// The ETag: of the backend part for an internal part, else the one the proxy returned
    /// to the client for this part.
    #[serde(default)]
    pub etag: Option<String>,
}

impl PartRecord {
    /// The number of seals these sizes hold.
    fn seal_count(&self) -> Result<u32> {
        seal_count(self.plaintext_size, self.ciphertext_size)
    }
}

/// One internal (backend) part of a client part: a run of seals.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InternalPart {
    /// Backend part number (`ipn`): framed uploads allocate `(client_part - 1) * 20 + 1..`,
    /// staged uploads count from 1 within each client part.
    #[serde(rename = "ipn")]
    pub number: u32,
    /// Sizes and ETag.
    #[serde(flatten)]
    pub record: PartRecord,
}

/// One client part (or, for a streamed PUT, one backend part).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SidecarPart {
    /// Part number (`pn`).
    #[serde(rename = "pn")]
    pub number: u32,
    /// Sizes and ETag.
    #[serde(flatten)]
    pub record: PartRecord,
    /// Hex MD5 of the part's plaintext.
    #[serde(default)]
    pub md5: Option<String>,
    /// Internal parts in order (`ip`); empty when the part is one segment.
    #[serde(default, rename = "ip")]
    pub internal_parts: Vec<InternalPart>,
}

/// A parsed and checked sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LegacySidecar {
    #[serde(rename = "v")]
    version: u32,
    #[serde(rename = "pc")]
    part_count: u32,
    #[serde(rename = "ts")]
    total_size: u64,
    #[serde(rename = "dek")]
    wrapped_dek_b64: String,
    #[serde(default)]
    kid: Option<String>,
    parts: Vec<SidecarPart>,
    #[serde(default)]
    generation: Option<String>,
    #[serde(default)]
    upload_id: Option<String>,
    #[serde(default)]
    upload_bucket: Option<String>,
    #[serde(default)]
    upload_key: Option<String>,
    #[serde(default)]
    client_etag: Option<String>,
}

impl LegacySidecar {
    /// Parses a sidecar object's body: base64 (standard, padded; surrounding whitespace
    /// ignored) of one gzip member of JSON. `max_inflated` caps the JSON's size; the base64
    /// text is refused up front when it is longer than any deflate of that much JSON could
    /// be, so the cap also bounds the decode buffers.
    ///
    /// # Errors
    /// [`Error::SidecarTooLarge`] past the cap; [`Error::MalformedLegacy`] for bad base64,
    /// gzip or JSON, an unsupported version, or sizes that do not add up (see
    /// [`LegacySidecar::from_json`]).
    pub fn parse(body: impl AsRef<[u8]>, max_inflated: usize) -> Result<Self> {
        let text = body.as_ref().trim_ascii();
        // Deflate expands incompressible input by a few bytes per 16 KiB block; an eighth
        // plus a KiB covers that and any gzip header the proxy's Python writes.
        let gz_cap = max_inflated.saturating_add(max_inflated / 8).saturating_add(1024);
        if text.len() / 4 > gz_cap.div_ceil(3) {
            return Err(Error::SidecarTooLarge);
        }
        let text = core::str::from_utf8(text).map_err(|_| Error::MalformedLegacy)?;
        let gz = Base64::decode_vec(text).map_err(|_| Error::MalformedLegacy)?;
        let json = gzip::gunzip(&gz, max_inflated)?;
        Self::from_json(&json)
    }

    /// Parses and checks the sidecar's JSON (unknown fields ignored).
    ///
    /// # Errors
    /// [`Error::MalformedLegacy`] if the JSON does not have the sidecar's fields and types,
    /// the version is not 2 or 3, the part count is not the number of parts (1..=10000),
    /// part or internal part numbers are not increasing, a segment's `cs - ps` is not a
    /// positive multiple of 28 or its frame count does not fit its size, internal parts do
    /// not add up to their part, parts do not add up to `ts`, the DEK is not base64 of 40
    /// bytes, or a staged sidecar lacks its generation and upload id.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let s: Self = serde_json::from_slice(json).map_err(|_| Error::MalformedLegacy)?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<()> {
        if !matches!(self.version, 2 | 3) {
            return Err(Error::MalformedLegacy);
        }
        if self.part_count == 0 || self.part_count > MAX_PARTS || self.parts.len() != self.part_count as usize {
            return Err(Error::MalformedLegacy);
        }
        check_wrapped_b64(&self.wrapped_dek_b64)?;
        if self.version == 3 {
            // The generation names the sidecar's own key and ties it to the object.
            parse_hex32(self.generation.as_deref().ok_or(Error::MalformedLegacy)?)?;
            if self.upload_id.as_deref().is_none_or(str::is_empty) {
                return Err(Error::MalformedLegacy);
            }
        } else if let Some(g) = self.generation.as_deref() {
            parse_hex32(g)?;
        }
        let (ps_sum, _) = check_run(self.parts.iter().map(|p| {
            let valid = if p.internal_parts.is_empty() { p.record.seal_count().map(drop) } else { check_internal(p) };
            (p.number, &p.record, valid)
        }))?;
        if ps_sum != self.total_size || self.total_size > MAX_PLAINTEXT_SIZE {
            return Err(Error::MalformedLegacy);
        }
        Ok(())
    }

    /// The sidecar format version (`v`): 2 for streamed PUTs and framed multipart, 3 for
    /// staged multipart.
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Number of parts (`pc`).
    #[must_use]
    pub fn part_count(&self) -> u32 {
        self.part_count
    }

    /// Total plaintext bytes (`ts`).
    #[must_use]
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Total ciphertext bytes: what the object's body must measure.
    #[must_use]
    pub fn ciphertext_size(&self) -> u64 {
        // Checked in `check`: the sum fits.
        self.parts.iter().fold(0u64, |a, p| a.saturating_add(p.record.ciphertext_size))
    }

    /// The wrapped DEK (`dek`), standard base64 of 40 bytes.
    #[must_use]
    pub fn wrapped_dek_b64(&self) -> &str {
        &self.wrapped_dek_b64
    }

    /// The writer's key id (`kid`), absent in the oldest sidecars.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The parts, in order.
    #[must_use]
    pub fn parts(&self) -> &[SidecarPart] {
        &self.parts
    }

    /// The staged upload's generation (hex), v3 only.
    #[must_use]
    pub fn generation(&self) -> Option<&str> {
        self.generation.as_deref()
    }

    /// The multipart upload id the sidecar records (staged uploads).
    #[must_use]
    pub fn upload_id(&self) -> Option<&str> {
        self.upload_id.as_deref()
    }

    /// The bucket the staged upload was made to.
    #[must_use]
    pub fn upload_bucket(&self) -> Option<&str> {
        self.upload_bucket.as_deref()
    }

    /// The key the staged upload was made to.
    #[must_use]
    pub fn upload_key(&self) -> Option<&str> {
        self.upload_key.as_deref()
    }

    /// The ETag the proxy returned for the completed upload.
    #[must_use]
    pub fn client_etag(&self) -> Option<&str> {
        self.client_etag.as_deref()
    }
}

fn check_internal(part: &SidecarPart) -> Result<()> {
    // Seals never span internal parts, so the part's own `cs - ps` only has to be a whole
    // number of overheads; each internal part obeys the frame-count rule itself.
    let extra = part.record.ciphertext_size.checked_sub(part.record.plaintext_size).ok_or(Error::MalformedLegacy)?;
    if extra % SEAL_OVERHEAD != 0 {
        return Err(Error::MalformedLegacy);
    }
    let (ps, cs) =
        check_run(part.internal_parts.iter().map(|ip| (ip.number, &ip.record, ip.record.seal_count().map(drop))))?;
    if ps != part.record.plaintext_size || cs != part.record.ciphertext_size {
        return Err(Error::MalformedLegacy);
    }
    Ok(())
}

/// Checks a run of parts, each given as its number, its record and whether its sizes
/// describe seals the proxy could have written: numbers must increase within
/// `1..=MAX_PARTS` and every part be valid. Returns the summed plaintext and ciphertext sizes.
fn check_run<'a>(parts: impl Iterator<Item = (u32, &'a PartRecord, Result<()>)>) -> Result<(u64, u64)> {
    let mut last = 0u32;
    let (mut ps, mut cs) = (0u64, 0u64);
    for (number, record, valid) in parts {
        if number <= last || number > MAX_PARTS {
            return Err(Error::MalformedLegacy);
        }
        last = number;
        valid?;
        ps = ps.checked_add(record.plaintext_size).ok_or(Error::MalformedLegacy)?;
        cs = cs.checked_add(record.ciphertext_size).ok_or(Error::MalformedLegacy)?;
    }
    Ok((ps, cs))
}

/// Seals in a segment of `ps` plaintext and `cs` ciphertext bytes: `(cs - ps) / 28`. One
/// seal may hold any size; a run of several must be full 8 MiB seals and a non-empty last.
pub(crate) fn seal_count(ps: u64, cs: u64) -> Result<u32> {
    if ps > MAX_PLAINTEXT_SIZE {
        return Err(Error::MalformedLegacy);
    }
    let extra = cs.checked_sub(ps).ok_or(Error::MalformedLegacy)?;
    if extra == 0 || extra % SEAL_OVERHEAD != 0 {
        return Err(Error::MalformedLegacy);
    }
    let n = extra / SEAL_OVERHEAD;
    if n > 1 {
        // ps is at most 2^44 and n at most 2^40 here, so the products fit.
        let before_last = (n - 1).checked_mul(SEAL_PLAINTEXT).ok_or(Error::MalformedLegacy)?;
        if ps <= before_last || ps - before_last > SEAL_PLAINTEXT {
            return Err(Error::MalformedLegacy);
        }
    }
    u32::try_from(n).map_err(|_| Error::MalformedLegacy)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DEK: &str = "47bv/V/+5lfiUcb2Rxy8UlbGp5K/QF+NeF01rcMq6MeGvHROluuIcA==";

    fn json(parts: &str, ts: u64, pc: u32) -> alloc::string::String {
        alloc::format!("{{\"v\":2,\"pc\":{pc},\"ts\":{ts},\"dek\":\"{DEK}\",\"parts\":[{parts}]}}")
    }

    #[test]
    fn seal_counts() {
        const M: u64 = SEAL_PLAINTEXT;
        assert_eq!(seal_count(0, 28), Ok(1));
        assert_eq!(seal_count(3 * M, 3 * M + 28), Ok(1)); // one seal of any size
        assert_eq!(seal_count(M + 1, M + 1 + 56), Ok(2));
        assert_eq!(seal_count(2 * M, 2 * M + 56), Ok(2));
        assert_eq!(seal_count(M, M + 56), Err(Error::MalformedLegacy)); // empty last seal
        assert_eq!(seal_count(2 * M + 1, 2 * M + 1 + 56), Err(Error::MalformedLegacy));
        assert_eq!(seal_count(5, 5), Err(Error::MalformedLegacy));
        assert_eq!(seal_count(5, 4), Err(Error::MalformedLegacy));
        assert_eq!(seal_count(5, 5 + 27), Err(Error::MalformedLegacy));
    }

    #[test]
    fn json_checks() {
        let ok = json(r#"{"pn":1,"ps":7,"cs":35,"etag":"e","md5":"m","ip":[],"zz":1}"#, 7, 1);
        let s = LegacySidecar::from_json(ok.as_bytes()).unwrap();
        assert_eq!(s.ciphertext_size(), 35);
        for bad in [
            json(r#"{"pn":1,"ps":7,"cs":35}"#, 8, 1),                                 // ts
            json(r#"{"pn":1,"ps":7,"cs":35}"#, 7, 2),                                 // pc
            json(r#"{"pn":1,"ps":7,"cs":36}"#, 7, 1),                                 // cs - ps
            json(r#"{"pn":2,"ps":7,"cs":35},{"pn":1,"ps":0,"cs":28}"#, 7, 2),         // order
            json(r#"{"pn":0,"ps":7,"cs":35}"#, 7, 1),                                 // pn 0
            json(r#"{"pn":1,"ps":7,"cs":63,"ip":[{"ipn":1,"ps":7,"cs":35}]}"#, 7, 1), // ip sum
            json(r#"{"pn":1,"ps":-7,"cs":35}"#, 7, 1),                                // type
            json(r#"{"pn":1,"ps":7,"cs":35,"ps":7}"#, 7, 1),                          // duplicate
            alloc::string::String::from("{\"v\":2}"),
            alloc::string::String::from("[]"),
        ] {
            assert_eq!(LegacySidecar::from_json(bad.as_bytes()), Err(Error::MalformedLegacy), "{bad}");
        }
        let v9 = ok.replace("\"v\":2", "\"v\":9");
        assert_eq!(LegacySidecar::from_json(v9.as_bytes()), Err(Error::MalformedLegacy));
        let v3 = ok.replace("\"v\":2", "\"v\":3");
        assert_eq!(LegacySidecar::from_json(v3.as_bytes()), Err(Error::MalformedLegacy));
        let bad_dek = ok.replace(DEK, "AAAA");
        assert_eq!(LegacySidecar::from_json(bad_dek.as_bytes()), Err(Error::MalformedLegacy));
    }

    #[test]
    fn oversized_text_is_refused_before_decoding() {
        let text = alloc::vec![b'A'; 4 * 2048];
        assert_eq!(LegacySidecar::parse(&text, 100), Err(Error::SidecarTooLarge));
        assert_eq!(LegacySidecar::parse(b"", 100), Err(Error::MalformedLegacy));
    }
}
