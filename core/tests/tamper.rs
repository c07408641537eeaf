//! Tamper matrix (SPEC.md §3-7, §9): every way of damaging an object's envelope, segment
//! table or body must be refused by every decryption path, with the error code SPEC.md
//! names, and without releasing a byte of plaintext that was not authenticated in place.
//!
//! Objects: both frame-cipher backends x frame sizes 4, 8 and 16 KiB x plaintext sizes
//! 0, 1, F-1, F, F+1, 2F, 3F+17, 4F x layouts: single (with and without a declared size);
//! parts of 1, 2 and 3 frames (2 also with a declared size), encrypted part by part with
//! `oneshot::encrypt_part_with_prefix` and concatenated; table with parts of 1.5 F (also with
//! a declared size), F and F/2 + 3 bytes, numbered with gaps.
//!
//! Paths, for every damaged object:
//! - one-shot: `oneshot::decrypt` / `oneshot::decrypt_with_table`;
//! - streaming: `Decryptor::new` (table: `Decryptor::with_shape` from the table) fed in pieces
//!   of 1 byte, F-1, F+1 and all at once;
//! - shape: `Shape::from_ciphertext_len` (table: `Shape::from_table`) then
//!   `oneshot::decrypt_range` over `[0, u64::MAX)` and `Decryptor::with_shape` with the same
//!   splits;
//! - in place: `Decryptor::open_frame_in_place` on whole frames (the sequential reader cuts
//!   `F + 28`-byte frames and a short rest; the shape-driven one cuts the shape's frames),
//!   then `finish`.
//!
//! Expected codes are derived from the SPEC below, case by case (see `cases`). The
//! shape-driven path of the regular layouts learns the object's length before its frames and
//! may therefore report a length error (`truncated`, `bad_frame_length`) where the sequential
//! path reports what it finds in the frames (SPEC.md §7, `ranged_error` in the corpus); the
//! test computes which from the §5.2 length mapping.
//!
//! No-release rule: whatever a streaming decryptor released must be a prefix of the true
//! plaintext that ends at a frame boundary and contains only frames lying entirely before the
//! first modified ciphertext byte; the buffer given to a failing `update` / `finish` must be
//! all zeros afterwards (a frame refused in place: zeros, or the untouched ciphertext when it
//! was refused before opening); and the context must refuse further use (`invalid_state`).
//!
//! Damage, per object (`cases`, `envelope_cases`): one-bit flips in every region of every
//! frame (prefix, index, flags, body, tag) plus ranges over the damaged / an intact frame;
//! adjacent frames swapped; each frame dropped; each frame duplicated; truncation at every
//! frame boundary and inside every frame (nonce, body, tag); 1 byte, 27 bytes, a copy of the
//! first and of the last frame appended; a frame of another object; a frame of a retried
//! encryption of the same segment; the envelope of another object and of an object with
//! another frame size; for the table layout, every byte of the table flipped, the table cut,
//! extended, or taken from another object; and in the envelope: wrong KEK, frame size,
//! declared size, salt, commitment, layout, part size, wrapped DEK, kid, version, suite,
//! wrap algorithm, trailing byte.
//!
//! Finally, objects a key holder sealed at positions no conforming writer uses (`forged_*`):
//! only the position rules of SPEC.md §5.3 step 3 can refuse them.

use isec_core::fuzzing::finish;
use isec_core::shape::Shape;
use isec_core::{
    AwsLc, Decryptor, Dek, Envelope, Error, FrameCipher, FramePosition, Kek, KeyState, Keyring, ObjectKey, Params,
    RustCrypto, SegmentTable, Stream, oneshot,
};

const OVER: usize = 28;
const KID: &str = "tamper-kek";
const OTHER_KID: &str = "tamper-kel";
const FRAME_SIZES: [usize; 3] = [4096, 8192, 16384];

use Error::{AuthenticationFailed as Auth, BadFrameLength, FrameOutOfOrder as Ooo, TrailingData, Truncated};

fn kek() -> Kek {
    Kek::from_bytes([0x4b; 32])
}

fn other_kek() -> Kek {
    Kek::from_bytes([0x4c; 32])
}

fn keyring() -> Keyring {
    let mut ring = Keyring::new();
    ring.add_kek(KID, kek(), KeyState::DecryptOnly).unwrap();
    ring.add_kek(OTHER_KID, other_kek(), KeyState::Active).unwrap();
    ring
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(31) % 251) as u8 ^ 0x5a).collect()
}

fn plaintext_sizes(f: usize) -> [usize; 8] {
    [0, 1, f - 1, f, f + 1, 2 * f, 3 * f + 17, 4 * f]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lay {
    Single,
    Parts,
    Table,
}

/// One frame of the intact object, from this file's own model of SPEC.md §5-6.
#[derive(Clone, Copy, Debug)]
struct Fr {
    ct_start: usize,
    ct_len: usize,
    pt_start: usize,
    pt_len: usize,
    seg: usize,
    idx: usize,
    seg_end: bool,
    obj_end: bool,
}

impl Fr {
    fn ct_end(&self) -> usize {
        self.ct_start + self.ct_len
    }
    fn pt_end(&self) -> usize {
        self.pt_start + self.pt_len
    }
}

#[derive(Clone, Copy, Debug)]
struct Seg {
    number: u32,
    pt_start: usize,
    pt_len: usize,
}

/// How an object is cut: frames per part (parts layout) or the part size (table layout),
/// and whether the envelope declares the size.
#[derive(Clone, Copy, Debug)]
struct Variant {
    part_frames: usize,
    /// Table parts hold `f * chunk_num / chunk_den + chunk_add` bytes.
    chunk: (usize, usize, usize),
    declared: bool,
}

struct Obj {
    lay: Lay,
    f: usize,
    v: Variant,
    declared: bool,
    pt: Vec<u8>,
    env: Envelope,
    key: ObjectKey,
    ct: Vec<u8>,
    table: Option<Vec<u8>>,
    frames: Vec<Fr>,
    /// The same plaintext encrypted again under the same key with fresh prefixes: a retry.
    retry_ct: Vec<u8>,
    /// Another object (other DEK and salt) of the same shape.
    other_key: ObjectKey,
    /// An object key of the same layout with another frame size (4 <-> 8, 16 -> 8 KiB).
    other_frame_key: ObjectKey,
    other_ct: Vec<u8>,
    other_table: Option<Vec<u8>>,
}

impl Obj {
    fn name(&self) -> String {
        match self.lay {
            Lay::Single => format!("Single F={} len={} declared={}", self.f, self.pt.len(), self.declared),
            Lay::Parts => {
                format!("Parts({}) F={} len={} declared={}", self.v.part_frames, self.f, self.pt.len(), self.declared)
            }
            Lay::Table => format!(
                "Table(part {}) F={} len={} declared={}",
                chunk(self.f, self.v),
                self.f,
                self.pt.len(),
                self.declared
            ),
        }
    }
}

fn chunk(f: usize, v: Variant) -> usize {
    f * v.chunk.0 / v.chunk.1 + v.chunk.2
}

fn params(lay: Lay, f: usize, v: Variant, declared: Option<u64>) -> Params {
    let mut p = Params::default().with_frame_size(f as u64).unwrap();
    match lay {
        Lay::Single => {}
        Lay::Parts => p = p.with_part_size((v.part_frames * f) as u64).unwrap(),
        Lay::Table => p = p.with_table(),
    }
    p.declared_size = declared;
    p
}

fn segments(lay: Lay, f: usize, v: Variant, len: usize) -> Vec<Seg> {
    let chunk = match lay {
        Lay::Single => return vec![Seg { number: 0, pt_start: 0, pt_len: len }],
        Lay::Parts => v.part_frames * f,
        Lay::Table => chunk(f, v),
    };
    let count = len.div_ceil(chunk).max(1);
    (0..count)
        .map(|j| {
            let number = match lay {
                Lay::Parts => j as u32 + 1,
                // Gaps, and not starting at 1, as S3 allows.
                _ => 2 + 3 * j as u32,
            };
            Seg { number, pt_start: j * chunk, pt_len: (len - j * chunk).min(chunk) }
        })
        .collect()
}

fn frames_of(lay: Lay, f: usize, segs: &[Seg]) -> Vec<Fr> {
    let mut out = Vec::new();
    let mut ct = 0;
    for (s, seg) in segs.iter().enumerate() {
        let n = seg.pt_len.div_ceil(f).max(1);
        for i in 0..n {
            let pt_len = (seg.pt_len - i * f).min(f);
            let seg_end = i + 1 == n;
            out.push(Fr {
                ct_start: ct,
                ct_len: pt_len + OVER,
                pt_start: seg.pt_start + i * f,
                pt_len,
                seg: s,
                idx: i,
                seg_end,
                obj_end: seg_end && s + 1 == segs.len() && lay != Lay::Table,
            });
            ct += pt_len + OVER;
        }
    }
    out
}

fn prefix(tag: u8, ordinal: usize) -> isec_core::Prefix {
    isec_core::Prefix::from([tag, ordinal as u8, 0x5a, 0xc3, 0x01, 0x02, tag ^ 0xff])
}

fn seal<C: FrameCipher>(key: &ObjectKey, lay: Lay, segs: &[Seg], pt: &[u8], tag: u8) -> (Vec<u8>, Option<Vec<u8>>) {
    if lay == Lay::Single {
        let ct = oneshot::encrypt_with_prefixes::<C>(key, pt, &mut |j| Ok(prefix(tag, j as usize))).unwrap();
        return (ct, None);
    }
    let mut ct = Vec::new();
    for (j, s) in segs.iter().enumerate() {
        let part = &pt[s.pt_start..s.pt_start + s.pt_len];
        let last = j + 1 == segs.len();
        ct.extend(oneshot::encrypt_part_with_prefix::<C>(key, s.number, last, prefix(tag, j), part).unwrap());
    }
    let table = (lay == Lay::Table).then(|| {
        let entries = segs.iter().enumerate().map(|(j, s)| (s.number, s.pt_len as u64, prefix(tag, j))).collect();
        SegmentTable::new(entries).unwrap().encode(key)
    });
    (ct, table)
}

fn build<C: FrameCipher>(lay: Lay, f: usize, len: usize, v: Variant) -> Obj {
    let declared = v.declared;
    let p = params(lay, f, v, declared.then_some(len as u64));
    let (env, key) = Envelope::create_with(&kek(), KID, p, &Dek::from_bytes([0x11; 32]), [0x22; 32]).unwrap();
    let (_, other_key) = Envelope::create_with(&kek(), KID, p, &Dek::from_bytes([0x33; 32]), [0x44; 32]).unwrap();
    let f2 = if f == 4096 { 8192 } else { f / 2 };
    let p2 = params(lay, f2, v, declared.then_some(len as u64));
    let (_, other_frame_key) =
        Envelope::create_with(&kek(), KID, p2, &Dek::from_bytes([0x77; 32]), [0x88; 32]).unwrap();
    let pt = plaintext(len);
    let segs = segments(lay, f, v, len);
    let frames = frames_of(lay, f, &segs);
    let (ct, table) = seal::<C>(&key, lay, &segs, &pt, 0xa1);
    let (retry_ct, _) = seal::<C>(&key, lay, &segs, &pt, 0xb2);
    let (other_ct, other_table) = seal::<C>(&other_key, lay, &segs, &pt, 0xa1);
    let o = Obj {
        lay,
        f,
        v,
        declared,
        pt,
        env,
        key,
        ct,
        table,
        frames,
        retry_ct,
        other_key,
        other_frame_key,
        other_ct,
        other_table,
    };
    // The model of the frames matches what the writer produced, nonce by nonce (SPEC.md §5.1).
    let last = o.frames.last().unwrap();
    assert_eq!(last.ct_end(), o.ct.len(), "{}: frame model", o.name());
    assert_eq!(o.retry_ct.len(), o.ct.len());
    assert_eq!(o.other_ct.len(), o.ct.len());
    for fr in &o.frames {
        let nonce = &o.ct[fr.ct_start..fr.ct_start + 12];
        assert_eq!(&nonce[..7], prefix(0xa1, fr.seg).as_bytes(), "{}: prefix", o.name());
        assert_eq!(&nonce[7..11], &(fr.idx as u32).to_be_bytes(), "{}: index", o.name());
        let flags = u8::from(fr.seg_end) | (u8::from(fr.obj_end) << 1);
        assert_eq!(nonce[11], flags, "{}: flags of frame {:?}", o.name(), fr);
    }
    o
}

/// Ciphertext length -> plaintext length of a regular-layout object (SPEC.md §5.2, §7), or
/// the length error a shape-driven reader reports.
fn model_pt_len(o: &Obj, len: usize) -> Result<usize, Error> {
    let full = o.f + OVER;
    let seg_pt = |len: usize| -> Result<usize, Error> {
        if len < OVER {
            return Err(Truncated);
        }
        let frames = len.div_ceil(full);
        let last = len - (frames - 1) * full;
        if last < OVER {
            return Err(Truncated);
        }
        if frames > 1 && last == OVER {
            return Err(BadFrameLength);
        }
        Ok(len - frames * OVER)
    };
    match o.lay {
        Lay::Single => seg_pt(len),
        Lay::Parts => {
            let part_ct = o.v.part_frames * full;
            let count = len.div_ceil(part_ct).max(1);
            let p = seg_pt(len - (count - 1) * part_ct)?;
            if count > 1 && p == 0 {
                return Err(BadFrameLength);
            }
            Ok((count - 1) * o.v.part_frames * o.f + p)
        }
        Lay::Table => unreachable!(),
    }
}

/// What a reader that knows the length first (table, or shape from the ciphertext length)
/// reports for a damaged ciphertext of `len` bytes whose frames, read in the right slots, give
/// `frames_say`.
fn known_exp(o: &Obj, len: usize, frames_say: Error) -> Vec<Error> {
    let orig = o.ct.len();
    match o.lay {
        // The authenticated table fixes the ciphertext length (SPEC.md §6.3).
        Lay::Table if len < orig => vec![Truncated],
        Lay::Table if len > orig => vec![TrailingData],
        Lay::Table => vec![frames_say],
        _ => match model_pt_len(o, len) {
            Err(e) => vec![e],
            // A declared size that differs from the length (SPEC.md §5.3 end).
            Ok(p) if o.declared && p < o.pt.len() => vec![Truncated],
            Ok(p) if o.declared && p > o.pt.len() => vec![TrailingData],
            Ok(_) => vec![frames_say],
        },
    }
}

struct Case {
    name: String,
    ct: Vec<u8>,
    /// Codes allowed on the sequential path (one-shot and `Decryptor::new`; for the table
    /// layout, every path).
    open: Vec<Error>,
    /// Codes allowed on the shape-driven path.
    known: Vec<Error>,
    /// Most plaintext a streaming decryptor may release.
    bound: usize,
    /// Decrypt with another object's key (its envelope was swapped in).
    key: KeySel,
    /// A replacement segment table.
    table: Option<Vec<u8>>,
    /// Plaintext ranges read through the range path: `Some(code)` must fail with it (the
    /// range fetches the damage), `None` must return the plaintext (it does not).
    sub: Vec<(u64, u64, Option<Error>)>,
}

#[derive(Clone, Copy, Debug)]
enum KeySel {
    Own,
    Other,
    OtherFrame,
}

/// The end of the last frame lying entirely before the first byte where `ct` differs from
/// the intact ciphertext: the most a decryptor may release.
fn release_bound(o: &Obj, ct: &[u8]) -> usize {
    let d = o.ct.iter().zip(ct).position(|(a, b)| a != b).unwrap_or(o.ct.len().min(ct.len()));
    o.frames.iter().filter(|fr| fr.ct_end() <= d).map(Fr::pt_end).max().unwrap_or(0)
}

fn cases(o: &Obj) -> Vec<Case> {
    let mut out = Vec::new();
    let n = o.frames.len();
    let full = o.f + OVER;
    let last = o.frames[n - 1];
    let last_full = last.ct_len == full;
    let table = o.lay == Lay::Table;
    let mk = |name: String, ct: Vec<u8>, open: Error, frames_say: Error| {
        let known = known_exp(o, ct.len(), frames_say);
        let open = if table { known.clone() } else { vec![open] };
        let bound = release_bound(o, &ct);
        Case { name, ct, open, known, bound, key: KeySel::Own, table: None, sub: Vec::new() }
    };
    let frame = |i: usize| &o.ct[o.frames[i].ct_start..o.frames[i].ct_end()];
    let same_seg = |i: usize, j: usize| o.frames[i].seg == o.frames[j].seg;

    // Bit flips in every region of every frame: the nonce is authenticated, so all of them
    // are authentication failures (SPEC.md §5.3 step 2).
    for (i, fr) in o.frames.iter().enumerate() {
        let mut spots: Vec<(&str, usize, u8)> = vec![
            ("prefix", 0, 0x01),
            ("prefix", 6, 0x80),
            ("index", 7, 0x80),
            ("index", 10, 0x01),
            ("flags", 11, 0x01),
            ("flags", 11, 0x02),
            ("flags", 11, 0x04),
        ];
        if fr.pt_len > 0 {
            spots.extend([("body", 12, 0x01), ("body", 12 + fr.pt_len / 2, 0x10), ("body", 12 + fr.pt_len - 1, 0x80)]);
        }
        spots.extend([("tag", fr.ct_len - 16, 0x01), ("tag", fr.ct_len - 1, 0x80)]);
        for (region, off, bit) in spots {
            let mut ct = o.ct.clone();
            ct[fr.ct_start + off] ^= bit;
            out.push(mk(format!("flip {region} byte {off} bit {bit:#04x} of frame {i}"), ct, Auth, Auth));
            // A range that fetches the damaged frame fails; one that does not still opens.
            let sub = &mut out.last_mut().unwrap().sub;
            if fr.pt_len > 0 {
                sub.push((fr.pt_start as u64, fr.pt_end() as u64, Some(Auth)));
                sub.push((fr.pt_end() as u64 - 1, fr.pt_end() as u64, Some(Auth)));
            }
            if let Some(g) = o.frames.iter().find(|g| g.seg != fr.seg || g.idx != fr.idx).filter(|g| g.pt_len > 0) {
                sub.push((g.pt_start as u64, g.pt_end() as u64, None));
            }
        }
    }

    // Adjacent frames swapped: an authentic frame of the same segment at the wrong index is
    // out of order; a frame of another segment does not authenticate under this segment's key,
    // nor does a misaligned read when the two lengths differ.
    for i in 0..n - 1 {
        let (a, b) = (o.frames[i], o.frames[i + 1]);
        let mut ct = o.ct[..a.ct_start].to_vec();
        ct.extend_from_slice(frame(i + 1));
        ct.extend_from_slice(frame(i));
        ct.extend_from_slice(&o.ct[b.ct_end()..]);
        let e = if same_seg(i, i + 1) && a.ct_len == b.ct_len { Ooo } else { Auth };
        out.push(mk(format!("swap frames {i} and {}", i + 1), ct, e, e));
        // A range over either frame alone fetches a frame standing in the other's place.
        for fr in [a, b] {
            if fr.pt_len > 0 {
                out.last_mut().unwrap().sub.push((fr.pt_start as u64, fr.pt_end() as u64, Some(e)));
            }
        }
    }

    // A frame dropped: the next one lands in its slot (out of order, or another segment's
    // key); dropping the final frame is a truncation at a frame boundary.
    for i in 0..n {
        let mut ct = o.ct[..o.frames[i].ct_start].to_vec();
        ct.extend_from_slice(&o.ct[o.frames[i].ct_end()..]);
        let e = if i == n - 1 {
            Truncated
        } else if same_seg(i, i + 1) {
            Ooo
        } else {
            Auth
        };
        out.push(mk(format!("drop frame {i}"), ct, e, e));
    }

    // A frame duplicated in place.
    for i in 0..n {
        let mut ct = o.ct[..o.frames[i].ct_end()].to_vec();
        ct.extend_from_slice(frame(i));
        ct.extend_from_slice(&o.ct[o.frames[i].ct_end()..]);
        let e = if i < n - 1 {
            if same_seg(i, i + 1) { Ooo } else { Auth }
        } else if last_full {
            // The object-end frame verified; anything after it is trailing data.
            TrailingData
        } else {
            // A short final frame followed by more bytes is read as one longer frame.
            Auth
        };
        out.push(mk(format!("duplicate frame {i}"), ct, e, e));
    }

    // Truncation at every frame boundary: the object-end frame never arrives.
    for (k, fr) in o.frames.iter().enumerate() {
        out.push(mk(format!("truncate before frame {k}"), o.ct[..fr.ct_start].to_vec(), Truncated, Truncated));
    }

    // Truncation inside frames: under 28 bytes is not a frame (`truncated`); from 28 bytes on,
    // the cut frame fails its tag.
    for (k, fr) in o.frames.iter().enumerate() {
        let mut offs = vec![1, 7, 11, 12, 27, 28, 29, 12 + fr.pt_len / 2, fr.ct_len - 16, fr.ct_len - 8, fr.ct_len - 1];
        offs.sort_unstable();
        offs.dedup();
        for off in offs.into_iter().filter(|&x| x > 0 && x < fr.ct_len) {
            let e = if off < OVER { Truncated } else { Auth };
            out.push(mk(
                format!("truncate inside frame {k} after {off} bytes"),
                o.ct[..fr.ct_start + off].to_vec(),
                e,
                Auth,
            ));
        }
    }

    // Bytes appended.
    let mut extras: Vec<(&str, Vec<u8>)> =
        vec![("1 byte", vec![0]), ("27 bytes", vec![0xa5; 27]), ("copy of frame 0", frame(0).to_vec())];
    if n > 1 {
        extras.push(("copy of the last frame", frame(n - 1).to_vec()));
    }
    for (what, extra) in extras {
        let mut ct = o.ct.clone();
        ct.extend_from_slice(&extra);
        let e = if last_full { TrailingData } else { Auth };
        out.push(mk(format!("append {what}"), ct, e, e));
    }

    // A frame of another object (another DEK) in place of one of ours.
    for i in 0..n {
        let fr = o.frames[i];
        let mut ct = o.ct.clone();
        ct[fr.ct_start..fr.ct_end()].copy_from_slice(&o.other_ct[fr.ct_start..fr.ct_end()]);
        out.push(mk(format!("foreign frame {i}"), ct, Auth, Auth));
    }

    // A frame of a retried encryption of the same segment (same key, same plaintext, other
    // prefix) spliced in: authentic, in position, but its prefix differs from the segment's
    // other frames (SPEC.md §5.3 step 3). A segment of one frame replaced whole is simply
    // the retry, a valid object, so it is skipped.
    for i in 0..n {
        let fr = o.frames[i];
        if o.frames.iter().filter(|g| g.seg == fr.seg).count() < 2 {
            continue;
        }
        let mut ct = o.ct.clone();
        ct[fr.ct_start..fr.ct_end()].copy_from_slice(&o.retry_ct[fr.ct_start..fr.ct_end()]);
        assert_ne!(ct, o.ct);
        let known = known_exp(o, ct.len(), Ooo);
        let open = if table { known.clone() } else { vec![Ooo] };
        // A spliced first frame is authentic and stands where it should; only the next frame
        // shows the splice, so the first may be released (its plaintext is the same).
        let bound = if fr.idx == 0 { fr.pt_end() } else { fr.pt_start };
        out.push(Case {
            name: format!("splice frame {i} of a retried encryption"),
            ct,
            open,
            known,
            bound,
            key: KeySel::Own,
            sub: Vec::new(),
            table: None,
        });
    }

    // The envelope of another object: its key opens, and nothing of ours authenticates under
    // it (the table neither).
    out.push(Case {
        name: "envelope of another object".into(),
        ct: o.ct.clone(),
        open: vec![Auth],
        known: vec![Auth],
        bound: 0,
        key: KeySel::Other,
        sub: Vec::new(),
        table: None,
    });

    // The envelope of an object with another frame size: the sequential reader cuts the body
    // at the wrong places and nothing authenticates; a length-first reader may already find
    // the length impossible for that frame size.
    if !table {
        out.push(Case {
            name: "envelope of an object with another frame size".into(),
            ct: o.ct.clone(),
            open: vec![Auth],
            known: vec![Auth, Truncated, BadFrameLength, TrailingData],
            bound: 0,
            key: KeySel::OtherFrame,
            table: None,
            sub: Vec::new(),
        });
    }

    if let Some(tb) = &o.table {
        let mut tcase = |name: String, t: Vec<u8>, e: Error| {
            out.push(Case {
                name,
                ct: o.ct.clone(),
                open: vec![e],
                known: vec![e],
                bound: 0,
                key: KeySel::Own,
                sub: Vec::new(),
                table: Some(t),
            });
        };
        tcase("segment table of another object".into(), o.other_table.clone().unwrap(), Auth);
        for at in 0..tb.len() {
            let mut t = tb.clone();
            t[at] ^= if at == 4 { 0x01 } else { 0x80 };
            // Version and count are structure; everything else is under the MAC.
            let e = if at < 5 { Error::MalformedSegmentTable } else { Auth };
            tcase(format!("segment table byte {at} flipped"), t, e);
        }
        tcase("segment table cut by one byte".into(), tb[..tb.len() - 1].to_vec(), Error::MalformedSegmentTable);
        let mut t = tb.clone();
        t.push(0);
        tcase("segment table with a byte appended".into(), t, Error::MalformedSegmentTable);
    }
    out
}

/// Feeds `ct` in pieces of `split` bytes; returns what was released and the outcome. Checks
/// that a failed call leaves its buffer zeroed and that the context then refuses further use.
fn stream<C: FrameCipher>(
    mut dec: Decryptor<C>,
    ct: &[u8],
    split: usize,
    buf: &mut Vec<u8>,
    ctx: &dyn Fn() -> String,
) -> (Vec<u8>, Result<(), Error>) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < ct.len() {
        let end = at.saturating_add(split).min(ct.len());
        let need = dec.update_len(end - at);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let b = &mut buf[..need];
        match dec.update(&ct[at..end], b) {
            Ok(n) => {
                assert!(n <= need, "{}: update wrote {n} > bound {need}", ctx());
                out.extend_from_slice(&b[..n]);
                // One-byte feeding calls update once per byte; checking the whole bound each
                // time would dominate the run, so it is checked when something was written.
                if n > 0 || split > 1 {
                    assert!(b[n..].iter().all(|x| *x == 0), "{}: update wrote past its count", ctx());
                }
                b[..n].fill(0);
            }
            Err(e) => {
                assert!(
                    b.iter().all(|x| *x == 0),
                    "{}: plaintext left in the buffer of a failed update ({e:?})",
                    ctx()
                );
                let mut junk = [0u8; 64];
                assert_eq!(
                    dec.update(&[0u8], &mut junk).err(),
                    Some(Error::InvalidState),
                    "{}: usable after error",
                    ctx()
                );
                assert_eq!(dec.finish(&mut junk).err(), Some(Error::InvalidState), "{}: finish after error", ctx());
                return (out, Err(e));
            }
        }
        at = end;
    }
    finish(dec, out, ctx)
}

fn splits(f: usize) -> [usize; 4] {
    [1, f - 1, f + 1, usize::MAX]
}

/// Frames of `F + 28` bytes and a short rest: how a sequential reader cuts a body.
fn open_cuts(len: usize, f: usize) -> Vec<usize> {
    let full = f + OVER;
    let mut v = vec![full; len / full];
    if !len.is_multiple_of(full) {
        v.push(len % full);
    }
    v
}

/// The frames of a shape, in order: how a shape-driven reader cuts a body.
fn shape_cuts(shape: &Shape) -> Vec<usize> {
    let mut v = Vec::new();
    let mut next = shape.first_frame();
    while let Some(fr) = next {
        v.push(fr.ct_len() as usize);
        next = shape.next_frame(&fr);
    }
    v
}

/// Opens `ct` frame by frame in place, cut at `cuts`; then `finish`. A failed call must
/// leave its frame wiped and the context refusing further use.
fn in_place<C: FrameCipher>(
    mut dec: Decryptor<C>,
    ct: &[u8],
    cuts: &[usize],
    ctx: &dyn Fn() -> String,
) -> (Vec<u8>, Result<(), Error>) {
    let mut out = Vec::new();
    let mut at = 0;
    for &n in cuts {
        let given = &ct[at..at + n];
        let mut frame = given.to_vec();
        at += n;
        match dec.open_frame_in_place(&mut frame) {
            Ok(r) => out.extend_from_slice(&frame[r]),
            Err(e) => {
                // Wiped, or (refused before opening, e.g. input after the final frame) still
                // the ciphertext it was given: never plaintext.
                assert!(
                    frame.iter().all(|x| *x == 0) || frame == given,
                    "{}: plaintext left in a frame that failed in place ({e:?})",
                    ctx()
                );
                let mut junk = [0u8; 64];
                assert_eq!(
                    dec.open_frame_in_place(&mut junk).err(),
                    Some(Error::InvalidState),
                    "{}: usable after error",
                    ctx()
                );
                assert_eq!(dec.finish(&mut junk).err(), Some(Error::InvalidState), "{}: finish after error", ctx());
                return (out, Err(e));
            }
        }
    }
    assert_eq!(at, ct.len());
    finish(dec, out, ctx)
}

fn table_shape(key: &ObjectKey, table: &[u8], ct_len: usize) -> Result<Shape, Error> {
    let t = SegmentTable::decode(table, key)?;
    Shape::from_table(key.header(), t, ct_len as u64)
}

/// The intact object opens on every path, whole and in part.
fn check_intact<C: FrameCipher>(o: &Obj, buf: &mut Vec<u8>) {
    let name = o.name();
    let key = &o.key;
    let one = match &o.table {
        Some(t) => oneshot::decrypt_with_table::<C>(key, t, &o.ct),
        None => oneshot::decrypt::<C>(key, &o.ct),
    };
    assert_eq!(one.unwrap_or_else(|e| panic!("{name}: {e}")), o.pt, "{name}");
    let shape = match &o.table {
        Some(t) => table_shape(key, t, o.ct.len()).unwrap(),
        None => Shape::from_ciphertext_len(key.header(), o.ct.len() as u64).unwrap(),
    };
    assert_eq!(shape.plaintext_len(), o.pt.len() as u64, "{name}");
    assert_eq!(shape.frame_count(), o.frames.len() as u64, "{name}");
    for split in splits(o.f) {
        let ctx = || format!("{name} intact split {split}");
        if o.lay != Lay::Table {
            let (out, r) = stream(Decryptor::<C>::new(key).unwrap(), &o.ct, split, buf, &ctx);
            assert_eq!(r, Ok(()), "{}", ctx());
            assert_eq!(out, o.pt, "{}", ctx());
        }
        let (out, r) = stream(Decryptor::<C>::with_shape(key, shape.clone()).unwrap(), &o.ct, split, buf, &ctx);
        assert_eq!(r, Ok(()), "{} (shape)", ctx());
        assert_eq!(out, o.pt, "{} (shape)", ctx());
    }
    let ctx = || format!("{name} intact in place");
    if o.lay != Lay::Table {
        let (out, r) = in_place(Decryptor::<C>::new(key).unwrap(), &o.ct, &open_cuts(o.ct.len(), o.f), &ctx);
        assert_eq!((out == o.pt, r), (true, Ok(())), "{}", ctx());
    }
    let (out, r) = in_place(Decryptor::<C>::with_shape(key, shape.clone()).unwrap(), &o.ct, &shape_cuts(&shape), &ctx);
    assert_eq!((out == o.pt, r), (true, Ok(())), "{} (shape)", ctx());
    let len = o.pt.len() as u64;
    for (a, b) in [(0, u64::MAX), (1, len.saturating_sub(1)), (len / 2, len / 2 + 1), (len, u64::MAX)] {
        let got =
            oneshot::decrypt_range::<C>(
                key,
                shape.clone(),
                a,
                b,
                &mut |s, e| Ok(o.ct[s as usize..e as usize].to_vec()),
            );
        let lo = (a.min(len)) as usize;
        let hi = (b.min(len) as usize).max(lo);
        assert_eq!(
            got.unwrap_or_else(|e| panic!("{name} range {a}..{b}: {e}")),
            &o.pt[lo..hi],
            "{name} range {a}..{b}"
        );
    }
    // The metadata text round trip and the keyring open the same key.
    let env = Envelope::decode_text(&o.env.to_text()).unwrap();
    let k2 = keyring().open(&env).unwrap();
    assert_eq!(
        oneshot::decrypt_range::<C>(&k2, shape, 0, u64::MAX, &mut |s, e| Ok(o.ct[s as usize..e as usize].to_vec()))
            .unwrap(),
        o.pt
    );
}

fn assert_code<T: std::fmt::Debug>(r: Result<T, Error>, allowed: &[Error], ctx: &dyn Fn() -> String) {
    match r {
        Ok(v) => panic!("{}: accepted ({v:?}); expected one of {allowed:?}", ctx()),
        Err(e) => assert!(allowed.contains(&e), "{}: got {e:?}, expected one of {allowed:?}", ctx()),
    }
}

/// Runs one damaged object through every path; returns the number of path runs.
fn run_case<C: FrameCipher>(o: &Obj, c: &Case, buf: &mut Vec<u8>) -> usize {
    let key = match c.key {
        KeySel::Own => &o.key,
        KeySel::Other => &o.other_key,
        KeySel::OtherFrame => &o.other_frame_key,
    };
    let table = c.table.as_ref().or(o.table.as_ref());
    let name = format!("{} / {} [{}]", o.name(), c.name, C::NAME);
    let boundaries: Vec<usize> = std::iter::once(0).chain(o.frames.iter().map(Fr::pt_end)).collect();
    let check_release = |out: &[u8], ctx: &dyn Fn() -> String| {
        assert!(
            out.len() <= c.bound,
            "{}: released {} bytes, at most {} precede the damage",
            ctx(),
            out.len(),
            c.bound
        );
        assert!(boundaries.contains(&out.len()), "{}: released {} bytes, not a frame boundary", ctx(), out.len());
        assert_eq!(out, &o.pt[..out.len()], "{}: released bytes are not the plaintext", ctx());
    };
    let mut runs = 0;

    // One-shot: all or nothing.
    let r = match table {
        Some(t) => oneshot::decrypt_with_table::<C>(key, t, &c.ct),
        None => oneshot::decrypt::<C>(key, &c.ct),
    };
    assert_code(r.map(|v| v.len()), &c.open, &|| format!("{name} one-shot"));
    runs += 1;

    // The shape a length-first reader computes.
    let shape = match table {
        Some(t) => table_shape(key, t, c.ct.len()),
        None => Shape::from_ciphertext_len(key.header(), c.ct.len() as u64),
    };

    // Streaming.
    for split in splits(o.f) {
        let ctx = || format!("{name} streaming split {split}");
        let dec = match (o.lay, &shape) {
            (Lay::Table, Ok(s)) => Decryptor::<C>::with_shape(key, s.clone()),
            (Lay::Table, Err(e)) => Err(*e),
            _ => Decryptor::<C>::new(key),
        };
        runs += 1;
        let dec = match dec {
            Ok(d) => d,
            Err(e) => {
                assert_code::<()>(Err(e), &c.open, &ctx);
                continue;
            }
        };
        let (out, r) = stream(dec, &c.ct, split, buf, &ctx);
        assert_code(r, &c.open, &ctx);
        check_release(&out, &ctx);
    }
    if o.lay != Lay::Table {
        let ctx = || format!("{name} in place");
        let (out, r) = in_place(Decryptor::<C>::new(key).unwrap(), &c.ct, &open_cuts(c.ct.len(), o.f), &ctx);
        assert_code(r, &c.open, &ctx);
        check_release(&out, &ctx);
        runs += 1;
    }

    // Shape-driven: the range path over the whole object, and a whole-object decryptor.
    let shape = match shape {
        Ok(s) => s,
        Err(e) => {
            assert_code::<()>(Err(e), &c.known, &|| format!("{name} shape"));
            return runs + 1;
        }
    };
    let r = oneshot::decrypt_range::<C>(key, shape.clone(), 0, u64::MAX, &mut |s, e| {
        Ok(c.ct[s as usize..e as usize].to_vec())
    });
    runs += 1;
    if shape.plaintext_len() == 0 {
        // An empty range fetches and authenticates nothing, and so releases nothing.
        if let Ok(v) = &r {
            assert!(v.is_empty(), "{name} range: released from an empty range");
        } else {
            assert_code(r, &c.known, &|| format!("{name} range"));
        }
    } else {
        assert_code(r.map(|v| v.len()), &c.known, &|| format!("{name} range"));
    }
    for &(a, b, want) in &c.sub {
        let r =
            oneshot::decrypt_range::<C>(
                key,
                shape.clone(),
                a,
                b,
                &mut |s, e| Ok(c.ct[s as usize..e as usize].to_vec()),
            );
        match want {
            Some(e) => assert_code(r.map(|v| v.len()), &[e], &|| format!("{name} range {a}..{b}")),
            None => {
                assert_eq!(r.as_deref(), Ok(&o.pt[a as usize..b as usize]), "{name} range {a}..{b} (intact frames)")
            }
        }
        runs += 1;
    }
    let ctx = || format!("{name} with_shape in place");
    let (out, r) = in_place(Decryptor::<C>::with_shape(key, shape.clone()).unwrap(), &c.ct, &shape_cuts(&shape), &ctx);
    // For the table layout this is the sequential path, with its codes.
    assert_code(r, if o.lay == Lay::Table { &c.open } else { &c.known }, &ctx);
    check_release(&out, &ctx);
    runs += 1;
    if o.lay != Lay::Table {
        for split in splits(o.f) {
            let ctx = || format!("{name} with_shape split {split}");
            let dec = Decryptor::<C>::with_shape(key, shape.clone()).unwrap();
            let (out, r) = stream(dec, &c.ct, split, buf, &ctx);
            assert_code(r, &c.known, &ctx);
            check_release(&out, &ctx);
            runs += 1;
        }
    }
    runs
}

/// Envelope damage: every header field and the commitment are bound by the commitment
/// (SPEC.md §4); the wrapped DEK by the key wrap; the kid selects the key. Returns the count.
fn envelope_cases(o: &Obj) -> usize {
    let name = o.name();
    let ring = keyring();
    let bytes = o.env.to_bytes();
    let kid_at = 81;
    let kid_len = bytes[kid_at] as usize;
    assert_eq!(&bytes[kid_at + 1..kid_at + 1 + kid_len], KID.as_bytes());
    let wrapped_at = kid_at + 1 + kid_len + 2;
    assert_eq!(bytes.len(), wrapped_at + 40);
    let mut count = 0;

    assert_eq!(ring.open(&o.env).err(), None, "{name}");
    assert_eq!(o.env.open(&other_kek()).err(), Some(Error::UnwrapFailed), "{name}: wrong KEK");
    count += 1;

    let mut committed: Vec<(String, Vec<u8>)> = Vec::new();
    let mut alter = |what: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        assert_ne!(b, bytes, "{name}: {what} changed nothing");
        committed.push((what.to_string(), b));
    };
    let exp = bytes[2];
    alter("frame size", &|b| b[2] = if exp == 12 { 13 } else { 12 });
    alter("frame size 64 KiB", &|b| b[2] = 16);
    let len = o.pt.len() as u64;
    if o.declared {
        alter("declared size removed", &|b| b[8..17].fill(0));
        alter("declared size + 1", &|b| b[9..17].copy_from_slice(&(len + 1).to_be_bytes()));
        if len > 0 {
            alter("declared size - 1", &|b| b[9..17].copy_from_slice(&(len - 1).to_be_bytes()));
        }
    } else {
        alter("declared size added (true size)", &|b| {
            b[8] = 1;
            b[9..17].copy_from_slice(&len.to_be_bytes());
        });
        alter("declared size added (size + 1)", &|b| {
            b[8] = 1;
            b[9..17].copy_from_slice(&(len + 1).to_be_bytes());
        });
    }
    alter("salt first bit", &|b| b[17] ^= 0x01);
    alter("salt last bit", &|b| b[48] ^= 0x80);
    alter("commitment first bit", &|b| b[49] ^= 0x01);
    alter("commitment last bit", &|b| b[80] ^= 0x80);
    match o.lay {
        Lay::Single => {
            alter("layout single -> table", &|b| b[3] = 2);
            alter("layout single -> parts", &|b| {
                b[3] = 1;
                b[7] = 2;
            });
        }
        Lay::Parts => {
            alter("part size", &|b| b[7] += 1);
            alter("layout parts -> single", &|b| {
                b[3] = 0;
                b[4..8].fill(0);
            });
        }
        Lay::Table => alter("layout table -> single", &|b| b[3] = 0),
    }
    for (what, b) in &committed {
        let env = Envelope::decode(b).unwrap_or_else(|e| panic!("{name}: {what}: decode {e}"));
        assert_eq!(env.open(&kek()).err(), Some(Error::CommitmentMismatch), "{name}: {what}");
        assert_eq!(ring.open(&env).err(), Some(Error::CommitmentMismatch), "{name}: {what} (keyring)");
        assert_eq!(
            env.rewrap(&kek(), &other_kek(), OTHER_KID).err(),
            Some(Error::CommitmentMismatch),
            "{name}: {what} (rewrap)"
        );
        count += 1;
    }

    // The wrapped DEK: the key wrap's integrity check.
    for at in [wrapped_at, wrapped_at + 20, wrapped_at + 39] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let env = Envelope::decode(&b).unwrap();
        assert_eq!(ring.open(&env).err(), Some(Error::UnwrapFailed), "{name}: wrapped byte {at}");
        count += 1;
    }

    // The kid: naming another key of the ring fails to unwrap; naming no key is unknown.
    let last = kid_at + kid_len;
    for (c, want) in [(b'l', Error::UnwrapFailed), (b'x', Error::UnknownKid)] {
        let mut b = bytes.clone();
        b[last] = c;
        let env = Envelope::decode(&b).unwrap();
        assert_eq!(ring.open(&env).err(), Some(want), "{name}: kid {}", env.kid());
        count += 1;
    }
    let mut b = bytes.clone();
    b.remove(last);
    b[kid_at] -= 1;
    let env = Envelope::decode(&b).unwrap();
    assert_eq!(ring.open(&env).err(), Some(Error::UnknownKid), "{name}: shortened kid");
    count += 1;

    // Identifiers the decoder refuses outright.
    let mut b = bytes.clone();
    b[0] = 2;
    assert_eq!(Envelope::decode(&b).err(), Some(Error::UnsupportedVersion), "{name}");
    let mut b = bytes.clone();
    b[1] = 2;
    assert_eq!(Envelope::decode(&b).err(), Some(Error::UnsupportedSuite), "{name}");
    let mut b = bytes.clone();
    b.push(0);
    assert_eq!(Envelope::decode(&b).err(), Some(Error::MalformedEnvelope), "{name}");
    // An envelope claiming an external wrap cannot be opened with a local KEK.
    let mut b = bytes.clone();
    b[wrapped_at - 2] = 2;
    let env = Envelope::decode(&b).unwrap();
    assert_eq!(ring.open(&env).err(), Some(Error::UnsupportedSuite), "{name}: wrap alg");
    count + 4
}

fn variants(lay: Lay) -> Vec<Variant> {
    let v = |part_frames, chunk, declared| Variant { part_frames, chunk, declared };
    match lay {
        Lay::Single => vec![v(0, (1, 1, 0), false), v(0, (1, 1, 0), true)],
        Lay::Parts => {
            vec![v(1, (1, 1, 0), false), v(2, (1, 1, 0), false), v(2, (1, 1, 0), true), v(3, (1, 1, 0), false)]
        }
        // Parts of 1.5 frames (short frames inside the object), of exactly one frame, and of
        // half a frame plus 3 bytes (every frame its own segment).
        Lay::Table => {
            vec![v(0, (3, 2, 0), false), v(0, (3, 2, 0), true), v(0, (1, 1, 0), false), v(0, (1, 2, 3), false)]
        }
    }
}

fn matrix<C: FrameCipher>(lay: Lay) {
    let started = std::time::Instant::now();
    let (mut objects, mut damaged, mut runs, mut envelope) = (0, 0, 0, 0);
    let mut buf = Vec::new();
    for f in FRAME_SIZES {
        for len in plaintext_sizes(f) {
            for v in variants(lay) {
                let o = build::<C>(lay, f, len, v);
                check_intact::<C>(&o, &mut buf);
                envelope += envelope_cases(&o);
                for c in cases(&o) {
                    runs += run_case::<C>(&o, &c, &mut buf);
                    damaged += 1;
                }
                objects += 1;
            }
        }
    }
    eprintln!(
        "{lay:?}/{}: {objects} objects, {damaged} damaged ciphertexts/tables ({runs} path runs), {envelope} envelope cases, {:?}",
        C::NAME,
        started.elapsed()
    );
}

/// Declares one `#[test]` per layout and cipher, so each runs, and fails, on its own.
macro_rules! tests {
    ($($name:ident => $run:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $run;
            }
        )*
    };
}

tests! {
    tamper_single_rustcrypto => matrix::<RustCrypto>(Lay::Single);
    tamper_single_awslc => matrix::<AwsLc>(Lay::Single);
    tamper_parts_rustcrypto => matrix::<RustCrypto>(Lay::Parts);
    tamper_parts_awslc => matrix::<AwsLc>(Lay::Parts);
    tamper_table_rustcrypto => matrix::<RustCrypto>(Lay::Table);
    tamper_table_awslc => matrix::<AwsLc>(Lay::Table);
}

// ---------------------------------------------------------------------------------------
// Objects a key holder wrote wrongly (frames sealed at positions no conforming writer uses):
// authentic frames, so only the position checks of SPEC.md §5.3 step 3 and the end-of-input
// rules can refuse them, with the codes SPEC.md names, and still without leaving plaintext in
// a failed call's buffer.

struct Forged {
    name: &'static str,
    declared: Option<u64>,
    part_frames: Option<u32>,
    /// (segment, index, segment end, object end, plaintext length, prefix tag) per frame.
    frames: Vec<(u32, u32, bool, bool, usize, u8)>,
    open: Error,
    known: &'static [Error],
}

fn forge<C: FrameCipher>(key: &ObjectKey, spec: &Forged) -> Vec<u8> {
    let mut ct = Vec::new();
    let mut at = 0usize;
    for &(seg, index, seg_end, obj_end, len, tag) in &spec.frames {
        let sealer = key.sealer::<C>(seg, isec_core::Prefix::from([tag; 7])).unwrap();
        let pt = &plaintext(at + len)[at..];
        let mut frame = vec![0u8; len + OVER];
        frame[12..12 + len].copy_from_slice(pt);
        sealer.seal_in_place(FramePosition { index, segment_end: seg_end, object_end: obj_end }, &mut frame).unwrap();
        ct.extend_from_slice(&frame);
        at += len;
    }
    ct
}

const FORGED_F: usize = 4096;

/// A declared size that disagrees with where the object-end frame puts the end, when that
/// frame is short and so is opened by `finish`.
fn forged_declared_short_final() -> Vec<Forged> {
    let f = FORGED_F;
    vec![
        Forged {
            name: "declared size above the object-end frame (short final frame)",
            declared: Some(10),
            part_frames: None,
            frames: vec![(0, 0, true, true, 5, 1)],
            open: Truncated,
            known: &[Truncated],
        },
        Forged {
            name: "declared size below the object-end frame (short final frame)",
            declared: Some(3),
            part_frames: None,
            frames: vec![(0, 0, true, true, 5, 1)],
            open: TrailingData,
            known: &[TrailingData],
        },
        Forged {
            name: "parts: declared size above the object-end frame",
            declared: Some(3 * f as u64),
            part_frames: Some(2),
            frames: vec![(1, 0, false, false, f, 1), (1, 1, true, false, f, 1), (2, 0, true, true, 5, 1)],
            open: Truncated,
            known: &[Truncated],
        },
    ]
}

fn forged_positions() -> Vec<Forged> {
    let f = FORGED_F;
    vec![
        Forged {
            name: "declared size above the object-end frame (full final frame)",
            declared: Some(2 * f as u64),
            part_frames: None,
            frames: vec![(0, 0, true, true, f, 1)],
            open: Truncated,
            known: &[Truncated],
        },
        Forged {
            name: "segment end without object end in the single layout",
            declared: None,
            part_frames: None,
            frames: vec![(0, 0, true, false, f, 1), (0, 1, true, true, 3, 1)],
            open: Error::BadFrameFlags,
            known: &[Error::BadFrameFlags],
        },
        Forged {
            name: "final short frame without end flags",
            declared: None,
            part_frames: None,
            frames: vec![(0, 0, false, false, f, 1), (0, 1, false, false, 3, 1)],
            open: Truncated,
            known: &[Truncated],
        },
        Forged {
            name: "two frames with index 0",
            declared: None,
            part_frames: None,
            frames: vec![(0, 0, false, false, f, 1), (0, 0, true, true, 3, 1)],
            open: Ooo,
            known: &[Ooo],
        },
        Forged {
            name: "empty frame after a full one",
            declared: None,
            part_frames: None,
            frames: vec![(0, 0, false, false, f, 1), (0, 1, true, true, 0, 1)],
            open: BadFrameLength,
            known: &[BadFrameLength],
        },
        Forged {
            name: "object end on a frame followed by more frames",
            declared: None,
            part_frames: None,
            frames: vec![(0, 0, true, true, f, 1), (0, 1, true, true, 3, 1)],
            open: TrailingData,
            known: &[TrailingData],
        },
        Forged {
            name: "two prefixes in one segment",
            declared: None,
            part_frames: None,
            frames: vec![(0, 0, false, false, f, 1), (0, 1, true, true, 3, 2)],
            open: Ooo,
            known: &[Ooo],
        },
        Forged {
            name: "part without segment end after part_frames frames",
            declared: None,
            part_frames: Some(2),
            frames: vec![(1, 0, false, false, f, 1), (1, 1, false, false, f, 1), (2, 0, true, true, 3, 1)],
            open: Error::BadFrameFlags,
            known: &[Error::BadFrameFlags],
        },
        Forged {
            name: "part ends early without object end",
            declared: None,
            part_frames: Some(2),
            frames: vec![(1, 0, true, false, f, 1), (2, 0, true, true, 3, 1)],
            open: Error::BadFrameFlags,
            known: &[Error::BadFrameFlags],
        },
    ]
}

fn forged_matrix<C: FrameCipher>(specs: &[Forged]) {
    let f = FORGED_F;
    let mut buf = Vec::new();
    for spec in specs {
        let mut p = Params::default().with_frame_size(f as u64).unwrap();
        if let Some(pf) = spec.part_frames {
            p = p.with_part_size(u64::from(pf) * f as u64).unwrap();
        }
        p.declared_size = spec.declared;
        let (_, key) = Envelope::create_with(&kek(), KID, p, &Dek::from_bytes([0x55; 32]), [0x66; 32]).unwrap();
        let ct = forge::<C>(&key, spec);
        let name = format!("forged: {} [{}]", spec.name, C::NAME);
        assert_code(oneshot::decrypt::<C>(&key, &ct).map(|v| v.len()), &[spec.open], &|| format!("{name} one-shot"));
        for split in splits(f) {
            let ctx = || format!("{name} streaming split {split}");
            let (_, r) = stream(Decryptor::<C>::new(&key).unwrap(), &ct, split, &mut buf, &ctx);
            assert_code(r, &[spec.open], &ctx);
        }
        let ctx = || format!("{name} in place");
        let (_, r) = in_place(Decryptor::<C>::new(&key).unwrap(), &ct, &open_cuts(ct.len(), f), &ctx);
        assert_code(r, &[spec.open], &ctx);
        match Shape::from_ciphertext_len(key.header(), ct.len() as u64) {
            Err(e) => assert_code::<()>(Err(e), spec.known, &|| format!("{name} shape")),
            Ok(shape) => {
                for split in splits(f) {
                    let ctx = || format!("{name} with_shape split {split}");
                    let (_, r) =
                        stream(Decryptor::<C>::with_shape(&key, shape.clone()).unwrap(), &ct, split, &mut buf, &ctx);
                    assert_code(r, spec.known, &ctx);
                }
            }
        }
    }
}

tests! {
    forged_positions_rustcrypto => forged_matrix::<RustCrypto>(&forged_positions());
    forged_positions_awslc => forged_matrix::<AwsLc>(&forged_positions());
    // The object-end frame verifies and stands where it should, so `process` writes its
    // plaintext to the caller's buffer, then `advance` finds the declared size disagrees and
    // returns the error; `update` wipes its buffer on every error, `finish` does not, so the
    // final frame's plaintext is left in the buffer of a failed `finish` (SPEC.md §5.3 step 4:
    // "On any failure the output region is wiped").
    forged_declared_size_mismatch_finish_rustcrypto => forged_matrix::<RustCrypto>(&forged_declared_short_final());
    forged_declared_size_mismatch_finish_awslc => forged_matrix::<AwsLc>(&forged_declared_short_final());
}

/// Minimal reproduction of the `finish` wipe bug above.
#[test]
fn finish_wipes_buffer_when_declared_size_disagrees() {
    let mut p = Params::default().with_frame_size(4096).unwrap();
    p.declared_size = Some(10);
    let (_, key) = Envelope::create_with(&kek(), KID, p, &Dek::from_bytes([5; 32]), [6; 32]).unwrap();
    // A key holder (or a buggy writer) seals 5 bytes as the whole object.
    let mut frame = vec![0u8; 5 + OVER];
    frame[12..17].copy_from_slice(b"hello");
    let pos = FramePosition { index: 0, segment_end: true, object_end: true };
    key.sealer::<RustCrypto>(0, isec_core::Prefix::from([1; 7])).unwrap().seal_in_place(pos, &mut frame).unwrap();
    let mut dec = Decryptor::<RustCrypto>::new(&key).unwrap();
    assert_eq!(dec.update(&frame, &mut [0u8; 5 + OVER]), Ok(0));
    let mut out = vec![0u8; dec.finish_len()];
    assert_eq!(dec.finish(&mut out), Err(Error::Truncated));
    assert!(out.iter().all(|b| *b == 0), "failed finish left {:?} in its buffer", String::from_utf8_lossy(&out));
}
