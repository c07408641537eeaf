//! Recognising an isec body whose metadata was stripped (SPEC.md §14.1).
//!
//! Some copy tools copy a large object part by part (UploadPartCopy) without its user
//! metadata: the copy holds isec ciphertext but no envelope, so it reads as plaintext, and a
//! "move" then deletes the only readable original. The frames still show: every frame starts
//! with its nonce (§5.1), so at the start of frame `k` of a segment stand the segment's 7-byte
//! prefix, the index `k` and the flags. [`Probe`] says which few bytes to fetch (at most two
//! rounds of ranged GETs) and judges them, with no key, so a scan can tell such a copy from
//! plaintext before anything deletes its source.
//!
//! False positives must be practically impossible, also on plaintext, which is far from
//! random (runs of zero bytes are common, and a nonce index of 0 is four zero bytes). So
//! every rule compares two places of the body, or adds a check that structured plaintext
//! fails:
//!
//! - **Frames that continue their segment** (the usual case: any object of more than one
//!   frame in its first segment): the first frame's nonce has index 0 and no flag, and the
//!   nonce one frame stride (`F + 28`) further has the *same* 56-bit prefix, index 1 and
//!   flags that fit the object's size. 88 bits must agree between two places of the body; on
//!   plaintext that would need a 7-byte pattern repeated at exactly a frame stride next to a
//!   big-endian counter going from 0 to 1.
//! - **A first frame that ends its segment** (parts of one 8 MiB frame, or a table layout
//!   with a short first part): index 0 with segment end at the start, index 0 again one
//!   stride further under a different prefix, *and* the first 4 KiB look random (below).
//! - **A one-frame object**: index 0 with object end at the start, a size that fits one
//!   frame, and the bytes after the nonce (at least 2,048 of them) look random: every byte
//!   value is present at least 250 times out of 256 and none is more than twice as frequent as
//!   it should be plus 16. Ciphertext passes (a miss has odds below 2^-40); text, sparse or
//!   zero-padded data, which is where zero bytes at offsets 7..11 come from, fail. Smaller
//!   one-frame objects (under 2,060 stored bytes) are not recognised: they are reported as
//!   plaintext.
//!
//! The frame size found is the smallest of the standard sizes (4 KiB..8 MiB) whose stride
//! fits; for a one-frame object it is only a lower bound.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::limits::{FRAME_OVERHEAD, MAX_FRAME_EXP, MIN_FRAME_EXP, NONCE_LEN, PREFIX_LEN};
use crate::nonce::{FramePosition, Nonce};

/// Bytes of the first range: the first nonce and the sample the randomness checks read.
pub const SAMPLE_LEN: u64 = 4096;
/// Fewest sample bytes (after the first nonce) the randomness check judges.
const MIN_RANDOM_SAMPLE: usize = 2048;
/// Smallest object the probe looks at: a first nonce and the randomness sample.
pub const MIN_PROBE_SIZE: u64 = (NONCE_LEN + MIN_RANDOM_SAMPLE) as u64;

/// A byte range to fetch: `[start, end)` (HTTP `Range: bytes=start-(end-1)`).
pub type ByteRange = (u64, u64);

/// What the probe concludes, or what it needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Fetch these ranges and hand their bodies, in this order, to [`Probe::judge`].
    Fetch(Vec<ByteRange>),
    /// The body has the structure of isec frames of this many plaintext bytes.
    Stripped {
        /// Plaintext bytes per frame.
        frame_size: u64,
    },
    /// Not isec frames (or too small to tell).
    NotIsec,
}

/// The probe of one object of `size` stored bytes. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    size: u64,
    /// The first nonce and whether the sample looked random, once the first range came back.
    first: Option<([u8; NONCE_LEN], bool)>,
    /// The frame exponents whose second nonce the pending ranges fetch, in their order.
    pending: Vec<u8>,
}

const fn stride(exp: u8) -> u64 {
    (1u64 << exp) + FRAME_OVERHEAD as u64
}

impl Probe {
    /// The probe of an object of `size` stored bytes.
    #[must_use]
    pub const fn new(size: u64) -> Self {
        Self { size, first: None, pending: Vec::new() }
    }

    /// The first step: the ranges to fetch, or [`Verdict::NotIsec`] for an object too small
    /// to tell.
    #[must_use]
    pub fn start(&self) -> Verdict {
        if self.size < MIN_PROBE_SIZE {
            return Verdict::NotIsec;
        }
        Verdict::Fetch(alloc::vec![(0, self.size.min(SAMPLE_LEN))])
    }

    /// Judges the bodies of the ranges the last [`Verdict::Fetch`] asked for, in order: the
    /// verdict, or the next ranges to fetch. A body shorter than its range counts against
    /// the object.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the number of bodies is not the number of ranges asked
    /// for; [`Error::InvalidState`] after a final verdict.
    pub fn judge(&mut self, bodies: &[&[u8]]) -> Result<Verdict> {
        match self.first {
            None => {
                let [body] = bodies else { return Err(Error::InvalidParameter) };
                Ok(self.judge_first(body))
            }
            Some((first, random)) => {
                if self.pending.is_empty() {
                    return Err(Error::InvalidState);
                }
                if bodies.len() != self.pending.len() {
                    return Err(Error::InvalidParameter);
                }
                let pending = core::mem::take(&mut self.pending);
                let found = pending
                    .iter()
                    .zip(bodies)
                    .find(|(exp, body)| self.second_fits(&first, random, **exp, body))
                    .map(|(exp, _)| *exp);
                Ok(found.map_or(Verdict::NotIsec, |exp| Verdict::Stripped { frame_size: 1 << exp }))
            }
        }
    }

    fn judge_first(&mut self, body: &[u8]) -> Verdict {
        let Some(nonce) = body.get(..NONCE_LEN).and_then(|b| <[u8; NONCE_LEN]>::try_from(b).ok()) else {
            return Verdict::NotIsec;
        };
        let Ok(pos) = Nonce::from_bytes(nonce).position() else { return Verdict::NotIsec };
        if pos.index != 0 {
            return Verdict::NotIsec;
        }
        let random = looks_random(body.get(NONCE_LEN..).unwrap_or_default());
        if pos.object_end {
            // One frame: the smallest frame size it fits in, if the sample looks random.
            let exp = (MIN_FRAME_EXP..=MAX_FRAME_EXP).find(|&e| self.size <= stride(e));
            return match exp {
                Some(e) if random => Verdict::Stripped { frame_size: 1 << e },
                _ => Verdict::NotIsec,
            };
        }
        if pos.segment_end && !random {
            return Verdict::NotIsec;
        }
        self.first = Some((nonce, random));
        // Every frame size whose second frame (at least one byte of plaintext) fits.
        self.pending =
            (MIN_FRAME_EXP..=MAX_FRAME_EXP).filter(|&e| stride(e) + (FRAME_OVERHEAD as u64) < self.size).collect();
        if self.pending.is_empty() {
            return Verdict::NotIsec;
        }
        Verdict::Fetch(self.pending.iter().map(|&e| (stride(e), stride(e) + NONCE_LEN as u64)).collect())
    }

    /// Whether the nonce in `body` (fetched at the stride of `exp`) continues the first frame
    /// as the module docs require.
    fn second_fits(&self, first: &[u8; NONCE_LEN], random: bool, exp: u8, body: &[u8]) -> bool {
        let Some(second) = body.get(..NONCE_LEN).and_then(|b| <[u8; NONCE_LEN]>::try_from(b).ok()) else {
            return false;
        };
        let (Ok(p0), Ok(p1)) = (Nonce::from_bytes(*first).position(), Nonce::from_bytes(second).position()) else {
            return false;
        };
        let same_prefix = first.get(..PREFIX_LEN) == second.get(..PREFIX_LEN);
        if p0.segment_end {
            // A new segment: index 0 again under a fresh prefix (random was checked before).
            return random && p1.index == 0 && !same_prefix;
        }
        let two = stride(exp).saturating_mul(2);
        let FramePosition { index, segment_end, object_end } = p1;
        // An object end must leave no third frame; a frame without segment end needs one.
        same_prefix && index == 1 && (!object_end || self.size <= two) && (segment_end || self.size > two)
    }
}

/// Whether `sample` looks like ciphertext: long enough, nearly every byte value present, and
/// none far more frequent than the rest (see the module docs for the bounds).
fn looks_random(sample: &[u8]) -> bool {
    if sample.len() < MIN_RANDOM_SAMPLE {
        return false;
    }
    let mut counts = [0usize; 256];
    for &b in sample {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let bound = sample.len() / 256 * 2 + 16;
    counts.iter().filter(|&&c| c > 0).count() >= 250 && counts.iter().all(|&c| c <= bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nonce::Prefix;

    /// A body of `frames` frames of `exp` in one segment, with pseudo-random frame bodies.
    fn frames(exp: u8, plaintext: u64, seed: u64) -> Vec<u8> {
        let f = 1u64 << exp;
        let n = plaintext.div_ceil(f).max(1);
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        };
        let prefix = Prefix::from_bytes([next(), next(), next(), next(), next(), next(), next()]);
        let mut out = Vec::new();
        for i in 0..n {
            let last = i + 1 == n;
            let pos = FramePosition { index: i as u32, segment_end: last, object_end: last };
            out.extend_from_slice(Nonce::new(&prefix, pos).as_bytes());
            let len = if last { plaintext - (n - 1) * f } else { f };
            out.extend((0..len + 16).map(|_| next()));
        }
        out
    }

    fn run(body: &[u8]) -> Verdict {
        let mut p = Probe::new(body.len() as u64);
        let mut v = p.start();
        for _ in 0..3 {
            let Verdict::Fetch(ranges) = &v else { return v };
            let bodies: Vec<&[u8]> = ranges
                .iter()
                .map(|&(a, b)| body.get(a as usize..(b as usize).min(body.len())).unwrap_or_default())
                .collect();
            v = p.judge(&bodies).unwrap();
        }
        panic!("more than two rounds")
    }

    #[test]
    fn finds_frames_of_every_size() {
        for exp in [12u8, 14, 16, 20] {
            for plaintext in [3000u64, (1 << exp) + 1, 3 << exp, (5 << exp) + 17] {
                let body = frames(exp, plaintext, u64::from(exp) * 7 + plaintext);
                let want = if plaintext <= 1 << exp {
                    // One frame: the smallest frame size that holds it.
                    let e = (MIN_FRAME_EXP..=MAX_FRAME_EXP).find(|&e| body.len() as u64 <= stride(e)).unwrap();
                    Verdict::Stripped { frame_size: 1 << e }
                } else {
                    Verdict::Stripped { frame_size: 1 << exp }
                };
                assert_eq!(run(&body), want, "exp {exp} plaintext {plaintext}");
            }
        }
    }

    #[test]
    fn parts_of_one_frame_each() {
        // Segments of one frame: index 0 and segment end, then index 0 under a new prefix.
        let exp = 12;
        let mut body = Vec::new();
        for seg in 0..3u64 {
            let mut one = frames(exp, 1 << exp, 99 + seg);
            if let Some(flags) = one.get_mut(NONCE_LEN - 1) {
                *flags = if seg == 2 { 3 } else { 1 };
            }
            body.extend(one);
        }
        assert_eq!(run(&body), Verdict::Stripped { frame_size: 1 << exp });
    }

    #[test]
    fn plaintext_is_not_isec() {
        let zeros = alloc::vec![0u8; 300_000];
        assert_eq!(run(&zeros), Verdict::NotIsec);
        let text: Vec<u8> =
            b"The quick brown fox jumps over the lazy dog. ".iter().copied().cycle().take(200_000).collect();
        assert_eq!(run(&text), Verdict::NotIsec);
        // Zeros where a first nonce stands, with object end, then text: fails the sample.
        let mut forged = text.clone();
        forged.get_mut(..12).unwrap().copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 3]);
        forged.truncate(4000);
        assert_eq!(run(&forged), Verdict::NotIsec);
        // An isec object too small to tell.
        assert_eq!(run(&frames(12, 100, 5)), Verdict::NotIsec);
    }

    #[test]
    fn random_bytes_and_sizes_never_panic_or_match() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..300 {
            let size = (next() % 300_000) as usize;
            let mut body: Vec<u8> = (0..size).map(|_| next() as u8).collect();
            if round % 3 == 0 {
                // A plausible first nonce of a frame that does not end the object, random
                // rest: the second nonce decides. (A one-frame nonce in front of random
                // bytes is what a one-frame object is: nothing tells them apart.)
                if let Some(h) = body.get_mut(7..12) {
                    h.copy_from_slice(&[0, 0, 0, 0, (round % 2) as u8]);
                }
            }
            assert_eq!(run(&body), Verdict::NotIsec, "round {round}");
            // Bodies of any length, including short and empty ones, at any step.
            let mut p = Probe::new(next() % (1 << 26));
            let cut = body.get(..(next() % 64) as usize).unwrap_or_default();
            let _ = p.judge(&[cut]);
            let _ = p.judge(&[cut, cut, cut]);
            let _ = p.judge(&[]);
        }
    }

    #[test]
    fn wrong_number_of_bodies_is_refused() {
        let body = frames(12, 50_000, 3);
        let mut p = Probe::new(body.len() as u64);
        assert_eq!(p.judge(&[]), Err(Error::InvalidParameter));
        let Ok(Verdict::Fetch(ranges)) = p.judge(&[body.get(..4096).unwrap()]) else { panic!() };
        assert!(ranges.len() > 1);
        assert_eq!(p.judge(&[&[]]), Err(Error::InvalidParameter));
    }
}
