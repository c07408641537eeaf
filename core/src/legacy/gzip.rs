//! A bounded gzip (RFC 1952) reader for the proxy's sidecars (SPEC.md §11).
//!
//! miniz_oxide inflates raw deflate only; the gzip wrapper is parsed here. The inflate is
//! driven through the low-level API so that (a) output stops at the caller's cap, since a
//! sidecar is fetched from the bucket and a few KiB of deflate can claim gigabytes, and
//! (b) the reader knows exactly where the deflate stream ended and can insist that the
//! 8-byte trailer follows and nothing else.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

use crate::error::{Error, Result};

const FTEXT: u8 = 0x01;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// Inflates one gzip member. Output beyond `max` bytes is [`Error::SidecarTooLarge`]; any
/// structural fault, a CRC-32 or ISIZE mismatch, or bytes after the member is
/// [`Error::MalformedLegacy`].
pub(crate) fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>> {
    let body_at = header_len(data)?;
    let body = data.get(body_at..).ok_or(Error::MalformedLegacy)?;
    let (out, used) = inflate_raw(body, max)?;
    let trailer = body.get(used..).ok_or(Error::MalformedLegacy)?;
    // Exactly one member: Python's gzip.compress writes one, and anything after it would be
    // bytes the proxy never read.
    let trailer: [u8; 8] = trailer.try_into().map_err(|_| Error::MalformedLegacy)?;
    let [c0, c1, c2, c3, s0, s1, s2, s3] = trailer;
    let crc = u32::from_le_bytes([c0, c1, c2, c3]);
    let isize = u32::from_le_bytes([s0, s1, s2, s3]);
    // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
    let [l0, l1, l2, l3, ..] = (out.len() as u64).to_le_bytes();
    if isize != u32::from_le_bytes([l0, l1, l2, l3]) || crc != crc32(&out) {
        return Err(Error::MalformedLegacy);
    }
    Ok(out)
}

/// Length of the member header, checking what can be checked.
fn header_len(data: &[u8]) -> Result<usize> {
    let fixed: &[u8; 10] = data.get(..10).and_then(|h| h.try_into().ok()).ok_or(Error::MalformedLegacy)?;
    let [id1, id2, cm, flg, ..] = *fixed;
    if id1 != 0x1f || id2 != 0x8b || cm != 8 || flg & !(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT) != 0 {
        return Err(Error::MalformedLegacy);
    }
    let mut at = 10usize;
    if flg & FEXTRA != 0 {
        let xlen: [u8; 2] = data.get(at..at + 2).and_then(|x| x.try_into().ok()).ok_or(Error::MalformedLegacy)?;
        let xlen = usize::from(u16::from_le_bytes(xlen));
        at = at.checked_add(2 + xlen).ok_or(Error::MalformedLegacy)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flg & flag != 0 {
            let rest = data.get(at..).ok_or(Error::MalformedLegacy)?;
            let nul = rest.iter().position(|&b| b == 0).ok_or(Error::MalformedLegacy)?;
            at += nul + 1;
        }
    }
    if flg & FHCRC != 0 {
        let covered = data.get(..at).ok_or(Error::MalformedLegacy)?;
        let stored = data.get(at..at + 2).ok_or(Error::MalformedLegacy)?;
        let [w0, w1, ..] = crc32(covered).to_le_bytes();
        if stored != [w0, w1] {
            return Err(Error::MalformedLegacy);
        }
        at += 2;
    }
    if at > data.len() {
        return Err(Error::MalformedLegacy);
    }
    Ok(at)
}

/// Inflates raw deflate from the front of `input`; returns the output and the input bytes
/// the deflate stream occupied.
fn inflate_raw(input: &[u8], max: usize) -> Result<(Vec<u8>, usize)> {
    // One byte of headroom: reaching it proves the output exceeds `max`, while a stream of
    // exactly `max` bytes still finishes inside the buffer.
    let limit = max.saturating_add(1);
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let mut out = vec![0u8; input.len().saturating_mul(4).clamp(1, limit)];
    let mut state = Box::<DecompressorOxide>::default();
    let (mut in_pos, mut out_pos) = (0usize, 0usize);
    loop {
        let rest = input.get(in_pos..).ok_or(Error::MalformedLegacy)?;
        let (status, read, written) = decompress(&mut state, rest, &mut out, out_pos, flags);
        in_pos = in_pos.checked_add(read).ok_or(Error::MalformedLegacy)?;
        out_pos = out_pos.checked_add(written).ok_or(Error::MalformedLegacy)?;
        match status {
            TINFLStatus::Done => break,
            TINFLStatus::HasMoreOutput => {
                if out.len() >= limit {
                    return Err(Error::SidecarTooLarge);
                }
                let grown = out.len().saturating_mul(2).min(limit);
                out.resize(grown, 0);
            }
            // Truncated input, bad block types, bad distances: not a deflate stream.
            _ => return Err(Error::MalformedLegacy),
        }
    }
    if out_pos > max {
        return Err(Error::SidecarTooLarge);
    }
    if in_pos > input.len() {
        return Err(Error::MalformedLegacy);
    }
    out.truncate(out_pos);
    Ok((out, in_pos))
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0u32;
    while i < 256 {
        let mut c = i;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i as usize] = c;
        i += 1;
    }
    table
}

/// CRC-32 as gzip uses it (ISO-HDLC, reflected, init and final xor all ones).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        let [low, ..] = c.to_le_bytes();
        let idx = usize::from(low ^ b);
        c = CRC_TABLE.get(idx).copied().unwrap_or(0) ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    // `printf 'hello' | gzip -n` with FNAME and FHCRC added by hand is overkill; a minimal
    // stored-block member built here exercises the header, trailer and cap paths.
    fn stored_member(payload: &[u8], flags: u8, extra: &[u8]) -> Vec<u8> {
        let mut v = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
        v.extend_from_slice(extra);
        if flags & FHCRC != 0 {
            let c = (crc32(&v) & 0xffff) as u16;
            v.extend_from_slice(&c.to_le_bytes());
        }
        // One final stored block.
        let n = payload.len() as u16;
        v.push(1);
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&(!n).to_le_bytes());
        v.extend_from_slice(payload);
        v.extend_from_slice(&crc32(payload).to_le_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v
    }

    #[test]
    fn header_variants() {
        let p = b"{\"a\":1}";
        assert_eq!(gunzip(&stored_member(p, 0, &[]), 100).ok().as_deref(), Some(&p[..]));
        let named = stored_member(p, FNAME | FCOMMENT, b"name\0comment\0");
        assert_eq!(gunzip(&named, 100).ok().as_deref(), Some(&p[..]));
        let extra = stored_member(p, FEXTRA | FHCRC, &[2, 0, 0xaa, 0xbb]);
        assert_eq!(gunzip(&extra, 100).ok().as_deref(), Some(&p[..]));
        let mut bad_hcrc = extra.clone();
        bad_hcrc[14] ^= 1;
        assert_eq!(gunzip(&bad_hcrc, 100), Err(Error::MalformedLegacy));
    }

    #[test]
    fn cap_is_exact() {
        let p = [7u8; 50];
        let m = stored_member(&p, 0, &[]);
        assert!(gunzip(&m, 50).is_ok());
        assert_eq!(gunzip(&m, 49), Err(Error::SidecarTooLarge));
        assert_eq!(gunzip(&m, 0), Err(Error::SidecarTooLarge));
    }

    #[test]
    fn trailer_faults() {
        let p = b"abc";
        let m = stored_member(p, 0, &[]);
        let mut bad_crc = m.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        assert_eq!(gunzip(&bad_crc, 100), Err(Error::MalformedLegacy));
        let mut bad_size = m.clone();
        let at = bad_size.len() - 1;
        bad_size[at] ^= 1;
        assert_eq!(gunzip(&bad_size, 100), Err(Error::MalformedLegacy));
        let mut trailing = m.clone();
        trailing.push(0);
        assert_eq!(gunzip(&trailing, 100), Err(Error::MalformedLegacy));
        for cut in 0..m.len() {
            assert_eq!(gunzip(&m[..cut], 100), Err(Error::MalformedLegacy), "cut at {cut}");
        }
        let mut reserved = m.clone();
        reserved[3] = 0x20;
        assert_eq!(gunzip(&reserved, 100), Err(Error::MalformedLegacy));
    }
}
