//! No panic is reachable from any input (SPEC.md §8: "Exceeding a limit is `limit_exceeded`,
//! never a wrap-around or a panic"), and garbage is never accepted as plaintext.
//!
//! Property tests over: envelope bytes and text; segment-table bytes; ciphertext (random, and
//! valid objects with random mutations) fed in arbitrary pieces to both backends; shapes from
//! arbitrary lengths and headers; range plans for arbitrary ranges; parameters; part numbers;
//! the output-buffer contract of `Encryptor::update` / `Decryptor::update`.
//!
//! Every proptest runs a modest number of cases (`CASES_*`), without failure persistence (no
//! regression files are written next to the sources). The `regression_*` tests at the end are
//! minimal, deterministic reproductions of what the properties found.

use isec_core::Stream;
use isec_core::fuzzing::feed_cycling as feed;
use isec_core::limits::{MAX_PARTS, MAX_PLAINTEXT_SIZE};
use isec_core::shape::{RangePlan, Shape};
use isec_core::{
    AwsLc, Decryptor, Dek, Encryptor, Envelope, Error, FrameCipher, Header, Kek, Layout, Nonce, ObjectKey, Params,
    Prefix, RustCrypto, SegmentTable, oneshot,
};
use proptest::collection::vec as pvec;
use proptest::prelude::*;

const OVER: u64 = 28;
const CASES_CHEAP: u32 = 1024;
const CASES_OBJECT: u32 = 192;

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn kek() -> Kek {
    Kek::from_bytes([0x21; 32])
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(7) % 253) as u8).collect()
}

/// u64 values with the edges weighted in.
fn u64_edge() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        1 => Just(0u64),
        1 => Just(1u64),
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(MAX_PLAINTEXT_SIZE),
        1 => Just(MAX_PLAINTEXT_SIZE + 1),
        1 => Just(1u64 << 63),
        3 => 0u64..200_000,
        2 => (0u32..64).prop_map(|s| 1u64 << s),
        3 => (0u32..64, -64i64..64).prop_map(|(s, d)| (1u64 << s).wrapping_add(d as u64)),
    ]
}

fn part_frames() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 1u32..8, 2 => any::<u32>().prop_map(|x| x.max(1)), 1 => Just(u32::MAX), 1 => Just(1u32 << 20)]
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::Single),
        Just(Layout::Table),
        part_frames().prop_map(|part_frames| Layout::Parts { part_frames })
    ]
}

/// Headers whose frame size is in range; declared sizes anything at all (also above the
/// §8 limit, which only `Header::validate` and the envelope decoder refuse).
fn header() -> impl Strategy<Value = Header> {
    (12u8..=23, layout(), prop::option::of(u64_edge())).prop_map(|(frame_exp, layout, declared_size)| Header {
        frame_exp,
        layout,
        declared_size,
        salt: [9; 32],
    })
}

// ----------------------------------------------------------------------------------------
// Envelopes.

fn check_envelope_bytes(b: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(env) = Envelope::decode(b) {
        // The binary form is fixed-layout, so a decodable input is canonical.
        prop_assert_eq!(env.to_bytes(), b.to_vec());
        prop_assert!(env.header().validate().is_ok());
        let info = env.info();
        prop_assert_eq!(info.envelope_len, b.len());
        prop_assert_eq!(Envelope::decode_text(&env.to_text()), Ok(env.clone()));
        // Opening it with some key is an answer, never a panic.
        let _ = env.open(&kek());
    }
    Ok(())
}

/// Envelope-shaped bytes: each field is usually well-formed and consistent with the others
/// (so that decoding gets deep), sometimes anything.
fn structured_envelope() -> impl Strategy<Value = Vec<u8>> {
    let byte_or = |good: std::ops::RangeInclusive<u8>| prop_oneof![12 => good, 1 => any::<u8>()];
    (
        (byte_or(1..=1), byte_or(1..=1), byte_or(11..=24), byte_or(0..=2)),
        (any::<bool>(), part_frames()),
        (byte_or(0..=1), prop_oneof![4 => 0u64..=MAX_PLAINTEXT_SIZE, 1 => u64_edge()]),
        (
            prop_oneof![8 => Just(None), 1 => any::<u8>().prop_map(Some)],
            pvec(prop_oneof![30 => 0x21u8..0x7f, 1 => any::<u8>()], 0..70),
        ),
        (
            byte_or(1..=2),
            prop_oneof![8 => Just(None), 1 => any::<u8>().prop_map(Some)],
            prop_oneof![Just(40usize), 0usize..210],
        ),
        prop_oneof![8 => Just(vec![]), 1 => pvec(any::<u8>(), 1..3)],
    )
        .prop_map(|((v, s, e, l), (pf_ok, pf), (flag, size), (kid_len, kid), (alg, wlen, wrapped), extra)| {
            let mut b = vec![v, s, e, l];
            // Frames per part: zero unless the layout has parts, when consistent.
            let pf = if pf_ok { if l == 1 { pf } else { 0 } } else { pf };
            b.extend_from_slice(&pf.to_be_bytes());
            b.push(flag);
            b.extend_from_slice(&(if flag == 0 { 0 } else { size }).to_be_bytes());
            b.extend_from_slice(&[0x33; 32]);
            b.extend_from_slice(&[0x44; 32]);
            b.push(kid_len.unwrap_or(kid.len() as u8));
            b.extend_from_slice(&kid);
            b.push(alg);
            b.push(wlen.unwrap_or(wrapped as u8));
            b.extend((0..wrapped).map(|i| i as u8));
            b.extend_from_slice(&extra);
            b
        })
}

/// A valid envelope for arbitrary parameters.
fn valid_envelope() -> impl Strategy<Value = Envelope> {
    (12u8..=23, layout(), prop::option::of(0u64..=MAX_PLAINTEXT_SIZE), "[!-~]{1,64}", any::<[u8; 32]>())
        .prop_filter_map("parameters out of range", |(exp, layout, declared_size, kid, salt)| {
            let params = Params { frame_exp: exp, layout, declared_size };
            Envelope::create_with(&kek(), &kid, params, &Dek::from_bytes([1; 32]), salt).ok().map(|(e, _)| e)
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        3 => (any::<usize>(), 0u8..8).prop_map(|(p, b)| Edit::Flip(p, 1 << b)),
        1 => (any::<usize>(), pvec(any::<u8>(), 1..40)).prop_map(|(p, v)| Edit::Insert(p, v)),
        1 => (any::<usize>(), 1usize..5000).prop_map(|(p, n)| Edit::Delete(p, n)),
        1 => (any::<usize>(), 1usize..5000).prop_map(|(p, n)| Edit::Duplicate(p, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(b: &mut Vec<u8>, e: &Edit) {
    let len = b.len();
    let at = |p: usize| if len == 0 { 0 } else { p % (len + 1) };
    match e {
        Edit::Set(p, v) if len > 0 => b[p % len] = *v,
        Edit::Flip(p, m) if len > 0 => b[p % len] ^= *m,
        Edit::Insert(p, v) => {
            let i = at(*p);
            b.splice(i..i, v.iter().copied());
        }
        Edit::Delete(p, n) => {
            let i = at(*p);
            let j = (i + n).min(len);
            b.drain(i..j);
        }
        Edit::Duplicate(p, n) => {
            let i = at(*p);
            let j = (i + n).min(len);
            let copy = b[i..j].to_vec();
            b.splice(j..j, copy);
        }
        Edit::Truncate(p) => b.truncate(at(*p)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(cfg(CASES_CHEAP))]

    #[test]
    fn envelope_decode_arbitrary_bytes(b in pvec(any::<u8>(), 0..400)) {
        check_envelope_bytes(&b)?;
    }

    #[test]
    fn envelope_decode_structured_bytes(b in structured_envelope()) {
        check_envelope_bytes(&b)?;
    }

    #[test]
    fn envelope_decode_edited_valid(env in valid_envelope(), edits in pvec(edit(), 1..4)) {
        let mut b = env.to_bytes();
        prop_assert_eq!(Envelope::decode(&b), Ok(env.clone()));
        for e in &edits {
            apply(&mut b, e);
        }
        check_envelope_bytes(&b)?;
    }

    #[test]
    fn envelope_decode_text_arbitrary(s in prop_oneof![".{0,500}", "[A-Za-z0-9_=+/-]{0,480}", "AQE[A-Za-z0-9_-]{150,200}"]) {
        if let Ok(env) = Envelope::decode_text(&s) {
            // Canonical base64url only (SPEC.md §2).
            prop_assert_eq!(env.to_text(), s);
        }
    }

    #[test]
    fn envelope_decode_text_edited_valid(env in valid_envelope(), at in any::<usize>(), c in prop_oneof![any::<char>(), prop::sample::select(vec!['A', 'B', 'g', '_', '-', '=', '+', '/', ' '])], cut in any::<bool>()) {
        let mut s: Vec<char> = env.to_text().chars().collect();
        let i = at % s.len();
        if cut { s.truncate(i) } else { s[i] = c }
        let s: String = s.into_iter().collect();
        if let Ok(e) = Envelope::decode_text(&s) {
            prop_assert_eq!(e.to_text(), s);
        }
    }

    #[test]
    fn nonce_position_arbitrary(b in any::<[u8; 12]>()) {
        let n = Nonce::from_bytes(b);
        if let Ok(pos) = n.position() {
            prop_assert_eq!(Nonce::new(&n.prefix(), pos), n);
        } else {
            prop_assert_eq!(n.position(), Err(Error::BadFrameFlags));
        }
    }
}

// ----------------------------------------------------------------------------------------
// Segment tables.

fn table_key() -> ObjectKey {
    let p = Params::default().with_frame_size(4096).unwrap().with_table();
    Envelope::create_with(&kek(), "t", p, &Dek::from_bytes([2; 32]), [3; 32]).unwrap().1
}

fn table_entries() -> impl Strategy<Value = Vec<(u32, u64, Prefix)>> {
    pvec(
        (
            prop_oneof![3 => 0u32..40, 1 => any::<u32>(), 1 => Just(MAX_PARTS), 1 => Just(MAX_PARTS + 1)],
            prop_oneof![3 => 0u64..100_000, 1 => u64_edge()],
            any::<[u8; 7]>().prop_map(Prefix::from),
        ),
        0..12,
    )
}

/// Strictly increasing part numbers and lengths that fit the limits: a valid table.
fn valid_table_entries() -> impl Strategy<Value = Vec<(u32, u64, Prefix)>> {
    (pvec((1u32..900, prop_oneof![3 => 1u64..100_000, 1 => 1u64..(MAX_PLAINTEXT_SIZE / 16)]), 1..11), any::<bool>())
        .prop_map(|(v, empty)| {
            if empty {
                return vec![(v[0].0, 0, Prefix::from([v[0].0 as u8; 7]))];
            }
            let mut n = 0u32;
            v.into_iter()
                .map(|(gap, len)| {
                    n += gap;
                    (n, len, Prefix::from([n as u8; 7]))
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(cfg(CASES_CHEAP))]

    #[test]
    fn segment_table_decode_arbitrary(b in pvec(any::<u8>(), 0..300)) {
        let key = table_key();
        prop_assert!(SegmentTable::decode(&b, &key).is_err());
    }

    #[test]
    fn segment_table_decode_structured(version in prop_oneof![Just(1u8), any::<u8>()], count in prop_oneof![0u32..12, any::<u32>()], entries in table_entries(), mac in pvec(any::<u8>(), 30..34)) {
        let key = table_key();
        let mut b = vec![version];
        b.extend_from_slice(&count.to_be_bytes());
        for (n, l, p) in &entries {
            b.extend_from_slice(&n.to_be_bytes());
            b.extend_from_slice(&l.to_be_bytes());
            b.extend_from_slice(p.as_bytes());
        }
        b.extend_from_slice(&mac);
        let r = SegmentTable::decode(&b, &key);
        prop_assert!(r.is_err());
    }

    #[test]
    fn segment_table_new_encode_decode(entries in prop_oneof![table_entries(), valid_table_entries()], edits in pvec(edit(), 0..3)) {
        let key = table_key();
        if let Ok(t) = SegmentTable::new(entries.clone()) {
            prop_assert_eq!(t.entries(), &entries[..]);
            let mut b = t.encode(&key);
            prop_assert_eq!(SegmentTable::decode(&b, &key), Ok(t.clone()));
            let orig = b.clone();
            for e in &edits {
                apply(&mut b, e);
            }
            match SegmentTable::decode(&b, &key) {
                Ok(t2) => prop_assert_eq!(b, orig, "an edited table decoded: {:?}", t2),
                Err(e) => prop_assert!(matches!(e, Error::MalformedSegmentTable | Error::AuthenticationFailed), "{:?}", e),
            }
        }
    }

    #[test]
    fn shape_from_table_and_ranges(entries in valid_table_entries(), exp in 12u8..=23, declared in prop::option::of(u64_edge()), ct_delta in prop_oneof![Just(0i64), -100i64..100, any::<i64>()], ranges in pvec((u64_edge(), u64_edge()), 1..6)) {
        let t = SegmentTable::new(entries.clone()).unwrap();
        let header = Header { frame_exp: exp, layout: Layout::Table, declared_size: declared, salt: [0; 32] };
        let f = 1u64 << exp;
        let expect_ct: u64 = entries.iter().map(|(_, l, _)| l + l.div_ceil(f).max(1) * OVER).sum();
        let ct_len = expect_ct.wrapping_add(ct_delta as u64);
        match Shape::from_table(&header, t, ct_len) {
            Ok(shape) => {
                prop_assert_eq!(ct_len, expect_ct);
                prop_assert_eq!(shape.ciphertext_len(), expect_ct);
                let total: u64 = entries.iter().map(|(_, l, _)| l).sum();
                prop_assert_eq!(shape.plaintext_len(), total);
                prop_assert_eq!(shape.segment_count() as usize, entries.len());
                for (a, b) in ranges {
                    check_plan(&shape, a, b)?;
                }
            }
            Err(e) => prop_assert!(ct_len != expect_ct || declared.is_some_and(|d| d != entries.iter().map(|(_, l, _)| l).sum::<u64>()), "{:?}", e),
        }
    }
}

// ----------------------------------------------------------------------------------------
// Shapes and range plans.

/// The invariants of a range plan (SPEC.md §7).
fn check_plan(shape: &Shape, a: u64, b: u64) -> Result<(), TestCaseError> {
    let plan = shape.map_range(a, b);
    let (pt, ct, f) = (shape.plaintext_len(), shape.ciphertext_len(), shape.frame_size());
    prop_assert!(plan.ct_start <= plan.ct_end && plan.ct_end <= ct, "{:?} ct_len {}", plan, ct);
    let end = b.min(pt);
    let want = end.saturating_sub(a);
    prop_assert_eq!(plan.len, want, "{:?} for {}..{} of {}", plan, a, b, pt);
    prop_assert!(plan.skip < f, "{:?}", plan);
    if want == 0 {
        prop_assert_eq!(plan.ct_start, plan.ct_end);
        prop_assert!(plan.is_empty());
        prop_assert_eq!(plan.http_range(), None);
        return Ok(());
    }
    prop_assert_eq!(plan.pt_start, a);
    let first = shape.frame_at(a).unwrap();
    let last = shape.frame_at(a + want - 1).unwrap();
    prop_assert!(first.pt_start <= a && a < first.pt_start + first.pt_len, "{:?} {}", first, a);
    prop_assert!(last.pt_start < a + want && a + want <= last.pt_start + last.pt_len, "{:?} {}", last, a + want);
    prop_assert!(first.pt_len <= f && last.pt_len <= f);
    prop_assert_eq!(plan.ct_start, first.ct_start);
    prop_assert_eq!(plan.ct_end, last.ct_start + last.ct_len());
    prop_assert_eq!(plan.skip, a - first.pt_start);
    // Whole frames: the fetch is the covered plaintext plus 28 bytes per frame.
    let covered = last.pt_start + last.pt_len - first.pt_start;
    let fetched = plan.ct_end - plan.ct_start;
    prop_assert!(
        fetched > covered && (fetched - covered).is_multiple_of(OVER),
        "{:?}: fetched {} covered {}",
        plan,
        fetched,
        covered
    );
    prop_assert!(plan.skip + plan.len <= covered);
    prop_assert_eq!(first.ct_start, first.segment.ct_start + u64::from(first.position.index) * (f + OVER));
    if first.segment == last.segment {
        prop_assert_eq!((fetched - covered) / OVER, u64::from(last.position.index - first.position.index) + 1);
    }
    prop_assert_eq!(plan.http_range(), Some(format!("bytes={}-{}", plan.ct_start, plan.ct_end - 1)));
    Ok(())
}

proptest! {
    #![proptest_config(cfg(CASES_CHEAP))]

    #[test]
    fn shape_from_ciphertext_len_arbitrary(h in header(), ct_len in u64_edge(), ranges in pvec((u64_edge(), u64_edge()), 1..6)) {
        match Shape::from_ciphertext_len(&h, ct_len) {
            Ok(shape) => {
                prop_assert!(h.layout != Layout::Table);
                prop_assert_eq!(shape.ciphertext_len(), ct_len);
                prop_assert!(shape.plaintext_len() <= MAX_PLAINTEXT_SIZE);
                if let Some(d) = h.declared_size {
                    prop_assert_eq!(shape.plaintext_len(), d);
                }
                // The length mapping is one-to-one (SPEC.md §5.2).
                prop_assert_eq!(Shape::from_plaintext_len(&h, shape.plaintext_len()), Ok(shape.clone()));
                prop_assert!(shape.segment_count() >= 1 && shape.segment_count() <= MAX_PARTS);
                for (a, b) in ranges {
                    check_plan(&shape, a, b)?;
                }
            }
            Err(e) => prop_assert!(
                matches!(e, Error::Truncated | Error::TrailingData | Error::BadFrameLength | Error::LimitExceeded | Error::InvalidParameter),
                "{:?}", e
            ),
        }
    }

    #[test]
    fn shape_from_plaintext_len_and_ranges(h in header(), pt_len in prop_oneof![u64_edge(), 0u64..=MAX_PLAINTEXT_SIZE], ranges in pvec((u64_edge(), u64_edge()), 1..8)) {
        if let Ok(shape) = Shape::from_plaintext_len(&h, pt_len) {
            prop_assert_eq!(shape.plaintext_len(), pt_len);
            prop_assert_eq!(Shape::from_ciphertext_len(&h, shape.ciphertext_len()), Ok(shape.clone()));
            for (a, b) in ranges {
                check_plan(&shape, a, b)?;
            }
            check_plan(&shape, 0, u64::MAX)?;
            check_plan(&shape, u64::MAX, u64::MAX)?;
            check_plan(&shape, pt_len.saturating_sub(1), u64::MAX)?;
        }
    }

    #[test]
    fn params_frame_size(x in u64_edge()) {
        match Params::default().with_frame_size(x) {
            Ok(p) => {
                prop_assert!(x.is_power_of_two() && (4096..=1 << 23).contains(&x));
                prop_assert_eq!(1u64 << p.frame_exp, x);
            }
            Err(e) => {
                prop_assert_eq!(e, Error::InvalidFrameSize);
                prop_assert!(!(x.is_power_of_two() && (4096..=1 << 23).contains(&x)));
            }
        }
    }

    #[test]
    fn params_part_size(exp in 12u8..=23, x in prop_oneof![u64_edge(), (1u64..1 << 33).prop_map(|k| k << 23)]) {
        let f = 1u64 << exp;
        let base = Params::default().with_frame_size(f).unwrap();
        match base.with_part_size(x) {
            Ok(p) => {
                prop_assert!(x > 0 && x % f == 0 && x / f <= u64::from(u32::MAX));
                prop_assert_eq!(p.layout, Layout::Parts { part_frames: (x / f) as u32 });
                prop_assert!(Envelope::create_with(&kek(), "k", p, &Dek::from_bytes([4; 32]), [5; 32]).is_ok());
            }
            Err(e) => {
                prop_assert_eq!(e, Error::InvalidParameter);
                prop_assert!(!(x > 0 && x % f == 0 && x / f <= u64::from(u32::MAX)));
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// Shapes and plans a caller builds by hand (`Header` and `RangePlan` have public fields).

proptest! {
    #![proptest_config(cfg(CASES_CHEAP))]

    /// Headers and parameters no decoder would produce (frame exponent out of range, zero
    /// frames per part) are refused, not a panic.
    #[test]
    fn shape_from_unvalidated_header(exp in prop_oneof![any::<u8>(), 12u8..=23], pf in prop_oneof![Just(0u32), part_frames()], lay in 0u8..3, declared in prop::option::of(u64_edge()), len in u64_edge(), ranges in pvec((u64_edge(), u64_edge()), 1..4), entries in valid_table_entries()) {
        let layout = match lay {
            0 => Layout::Single,
            1 => Layout::Parts { part_frames: pf },
            _ => Layout::Table,
        };
        let h = Header { frame_exp: exp, layout, declared_size: declared, salt: [0; 32] };
        let table = SegmentTable::new(entries).unwrap();
        let shapes = [Shape::from_ciphertext_len(&h, len), Shape::from_plaintext_len(&h, len), Shape::from_table(&h, table, len)];
        for shape in shapes.into_iter().flatten() {
            prop_assert!(h.validate().is_ok(), "a shape from an invalid header: {:?}", h);
            for &(a, b) in &ranges {
                let _ = shape.map_range(a, b);
            }
        }
        let p = Params { frame_exp: exp, layout, declared_size: declared };
        let _ = p.with_part_size(len);
        let _ = p.with_frame_size(len);
    }
}

// ----------------------------------------------------------------------------------------
// Ciphertext.

#[derive(Debug, Clone, Copy)]
enum Lay {
    Single,
    Parts(u32),
    Table,
}

fn lay() -> impl Strategy<Value = Lay> {
    prop_oneof![Just(Lay::Single), (1u32..4).prop_map(Lay::Parts), Just(Lay::Table)]
}

struct Obj {
    key: ObjectKey,
    pt: Vec<u8>,
    ct: Vec<u8>,
    table: Option<Vec<u8>>,
}

fn object<C: FrameCipher>(lay: Lay, len: usize, declared: bool, table_part: usize) -> Obj {
    let f = 4096usize;
    let mut p = Params::default().with_frame_size(f as u64).unwrap();
    match lay {
        Lay::Single => {}
        Lay::Parts(pf) => p = p.with_part_size(u64::from(pf) * f as u64).unwrap(),
        Lay::Table => p = p.with_table(),
    }
    p.declared_size = declared.then_some(len as u64);
    let (_, key) = Envelope::create_with(&kek(), "k", p, &Dek::from_bytes([6; 32]), [7; 32]).unwrap();
    let pt = plaintext(len);
    let (ct, table) = match lay {
        Lay::Single | Lay::Parts(_) => (oneshot::encrypt::<C>(&key, &pt).unwrap(), None),
        Lay::Table => {
            // Part numbers 1, 3, 5, ...: at most 5000 parts keeps them within S3's 10000.
            let table_part = table_part.max(len.div_ceil(5000));
            let chunks: Vec<&[u8]> = if pt.is_empty() { vec![&pt[..]] } else { pt.chunks(table_part).collect() };
            let mut ct = Vec::new();
            let mut entries = Vec::new();
            for (j, c) in chunks.iter().enumerate() {
                let n = 1 + 2 * j as u32;
                let part = oneshot::encrypt_part::<C>(&key, n, j + 1 == chunks.len(), c).unwrap();
                entries.push((n, c.len() as u64, part[..7].try_into().unwrap()));
                ct.extend(part);
            }
            (ct, Some(SegmentTable::new(entries).unwrap().encode(&key)))
        }
    };
    Obj { key, pt, ct, table }
}

/// Opens `ct` frame by frame in place, cut at `cuts` (the last cut may be short), then
/// `finish`. A refused frame must not hold plaintext.
fn frames_in_place<C: FrameCipher>(mut dec: Decryptor<C>, ct: &[u8], cut: usize) -> (Vec<u8>, Result<(), Error>) {
    let mut out = Vec::new();
    for given in ct.chunks(cut) {
        let mut frame = given.to_vec();
        match dec.open_frame_in_place(&mut frame) {
            Ok(r) => out.extend_from_slice(&frame[r]),
            Err(e) => {
                assert!(frame.iter().all(|b| *b == 0) || frame == given, "plaintext left in a refused frame");
                return (out, Err(e));
            }
        }
    }
    let mut buf = vec![0u8; dec.finish_len()];
    let r = dec.finish(&mut buf).map(|n| out.extend_from_slice(&buf[..n]));
    (out, r)
}

/// Every decryption path on `ct`: must succeed only with exactly the object's plaintext.
fn all_paths<C: FrameCipher>(o: &Obj, ct: &[u8], sizes: &[usize]) -> Result<(), TestCaseError> {
    let intact = ct == &o.ct[..];
    let check = |what: &str, r: Result<Vec<u8>, Error>| -> Result<(), TestCaseError> {
        match r {
            Ok(v) => prop_assert!(v == o.pt, "{} accepted a damaged object ({} bytes)", what, v.len()),
            Err(e) => prop_assert!(!intact, "{} refused the intact object: {:?}", what, e),
        }
        Ok(())
    };
    let shape = match &o.table {
        Some(t) => {
            SegmentTable::decode(t, &o.key).and_then(|st| Shape::from_table(o.key.header(), st, ct.len() as u64))
        }
        None => Shape::from_ciphertext_len(o.key.header(), ct.len() as u64),
    };
    match &o.table {
        Some(t) => check("one-shot", oneshot::decrypt_with_table::<C>(&o.key, t, ct))?,
        None => {
            check("one-shot", oneshot::decrypt::<C>(&o.key, ct))?;
            let (out, r) = feed(Decryptor::<C>::new(&o.key).unwrap(), ct, sizes, Some(&o.pt));
            check("streaming", r.map(|()| out))?;
            let (out, r) = frames_in_place(Decryptor::<C>::new(&o.key).unwrap(), ct, 4096 + OVER as usize);
            check("in place", r.map(|()| out))?;
        }
    }
    match shape {
        Ok(s) => {
            let (out, r) = feed(Decryptor::<C>::with_shape(&o.key, s.clone()).unwrap(), ct, sizes, Some(&o.pt));
            check("with_shape", r.map(|()| out))?;
            if s.plaintext_len() > 0 {
                let r = oneshot::decrypt_range::<C>(&o.key, s, 0, u64::MAX, &mut |a, b| {
                    Ok(ct[a as usize..b as usize].to_vec())
                });
                check("range", r)?;
            }
        }
        Err(e) => prop_assert!(!intact, "shape refused the intact object: {:?}", e),
    }
    Ok(())
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    pvec(prop_oneof![1usize..64, 4000usize..4200, 1usize..20_000, Just(usize::MAX)], 1..6)
}

fn mutated<C: FrameCipher>(
    l: Lay,
    len: usize,
    declared: bool,
    table_part: usize,
    edits: &[Edit],
    sizes: &[usize],
) -> Result<(), TestCaseError> {
    let o = object::<C>(l, len, declared, table_part);
    all_paths::<C>(&o, &o.ct, sizes)?;
    let mut ct = o.ct.clone();
    for e in edits {
        apply(&mut ct, e);
    }
    all_paths::<C>(&o, &ct, sizes)
}

fn random_ct<C: FrameCipher>(l: Lay, len: usize, ct: &[u8], exact: bool, sizes: &[usize]) -> Result<(), TestCaseError> {
    let o = object::<C>(l, len, false, 5000);
    // Random bytes, or random bytes of exactly the object's length (so that the shape and
    // the table accept them and every frame is opened).
    let ct: Vec<u8> = if exact { ct.iter().copied().cycle().take(o.ct.len()).collect() } else { ct.to_vec() };
    prop_assume!(ct != o.ct);
    all_paths::<C>(&o, &ct, sizes)
}

proptest! {
    #![proptest_config(cfg(CASES_OBJECT))]

    #[test]
    fn decrypt_random_ciphertext_rustcrypto(l in lay(), len in 0usize..13_000, ct in pvec(any::<u8>(), 1..13_000), exact in any::<bool>(), s in sizes()) {
        random_ct::<RustCrypto>(l, len, &ct, exact, &s)?;
    }

    #[test]
    fn decrypt_random_ciphertext_awslc(l in lay(), len in 0usize..13_000, ct in pvec(any::<u8>(), 1..13_000), exact in any::<bool>(), s in sizes()) {
        random_ct::<AwsLc>(l, len, &ct, exact, &s)?;
    }

    #[test]
    fn decrypt_mutated_object_rustcrypto(l in lay(), len in 0usize..13_000, declared in any::<bool>(), part in 1usize..9000, edits in pvec(edit(), 1..4), s in sizes()) {
        mutated::<RustCrypto>(l, len, declared, part, &edits, &s)?;
    }

    #[test]
    fn decrypt_mutated_object_awslc(l in lay(), len in 0usize..13_000, declared in any::<bool>(), part in 1usize..9000, edits in pvec(edit(), 1..4), s in sizes()) {
        mutated::<AwsLc>(l, len, declared, part, &edits, &s)?;
    }

    /// A range plan with arbitrary fields (it is a plain struct a caller may build or receive)
    /// is refused or decrypted, never a panic, and releases nothing but plaintext; a plan from
    /// `map_range` releases exactly its range.
    #[test]
    fn decryptor_for_arbitrary_plan(l in lay(), len in 1usize..13_000, ct_start in u64_edge(), ct_end in u64_edge(), skip in u64_edge(), plen in u64_edge(), pt_start in u64_edge(), mapped in any::<bool>(), s in sizes()) {
        let o = object::<AwsLc>(l, len, false, 3000);
        let shape = match &o.table {
            Some(t) => Shape::from_table(o.key.header(), SegmentTable::decode(t, &o.key).unwrap(), o.ct.len() as u64).unwrap(),
            None => Shape::from_ciphertext_len(o.key.header(), o.ct.len() as u64).unwrap(),
        };
        let plan = if mapped {
            shape.map_range(pt_start % (len as u64 + 2), (pt_start % (len as u64 + 2)).saturating_add(plen))
        } else {
            RangePlan::new(ct_start, ct_end, skip, plen, pt_start)
        };
        match Decryptor::<AwsLc>::for_range(&o.key, shape.clone(), &plan) {
            Ok(dec) => {
                let from = (plan.ct_start as usize).min(o.ct.len());
                let to = (plan.ct_end as usize).clamp(from, o.ct.len());
                let (out, r) = feed(dec, &o.ct[from..to], &s, None);
                let at = (plan.pt_start as usize).min(len);
                prop_assert!(o.pt[at..].starts_with(&out), "released bytes that are not the plaintext at {}", at);
                if mapped {
                    prop_assert_eq!(r, Ok(()));
                    prop_assert_eq!(out.len() as u64, plan.len);
                }
            }
            Err(e) => prop_assert!(!mapped, "refused a plan from map_range: {:?}", e),
        }
    }
}

// ----------------------------------------------------------------------------------------
// Part numbers, parameters and output buffers.

proptest! {
    #![proptest_config(cfg(CASES_CHEAP))]

    /// `Encryptor::for_part` with any part number, for any part size the envelope can carry
    /// (part_frames up to 2^32-1, SPEC.md §3.1), with or without a declared size.
    #[test]
    fn encryptor_for_part_arbitrary(exp in 12u8..=23, pf in part_frames(), declared in prop::option::of(u64_edge()), n in prop_oneof![any::<u32>(), 0u32..=10_001, Just(MAX_PARTS)], is_last in any::<bool>(), table in any::<bool>()) {
        let mut p = Params::default().with_frame_size(1 << exp).unwrap();
        p = if table { p.with_table() } else { p.with_part_size(u64::from(pf) << exp).unwrap() };
        p.declared_size = declared;
        let Ok((_, key)) = Envelope::create_with(&kek(), "k", p, &Dek::from_bytes([8; 32]), [9; 32]) else { return Ok(()) };
        match Encryptor::<AwsLc>::for_part(&key, n, is_last) {
            Ok(mut enc) => {
                prop_assert!((1..=MAX_PARTS).contains(&n));
                let mut out = vec![0u8; enc.update_len(3)];
                let _ = enc.update(b"abc", &mut out);
            }
            Err(e) => prop_assert!(matches!(e, Error::InvalidParameter | Error::LimitExceeded), "{:?}", e),
        }
        prop_assert_eq!(Encryptor::<AwsLc>::new(&key).err(), Some(Error::InvalidParameter));
    }

    /// The length helpers answer for any length a binding may pass, without overflow.
    #[test]
    fn update_len_arbitrary(n in prop_oneof![any::<usize>(), Just(usize::MAX), 0usize..100_000], pending in 0usize..5000) {
        let o = object::<AwsLc>(Lay::Single, 0, false, 1);
        let mut enc = Encryptor::<AwsLc>::with_prefix(&o.key, None, true, Prefix::from([1; 7])).unwrap();
        let mut out = vec![0u8; enc.update_len(pending)];
        enc.update(&plaintext(pending), &mut out).unwrap();
        let _ = enc.update_len(n);
        let _ = enc.finish_len();
        let mut dec = Decryptor::<AwsLc>::new(&o.key).unwrap();
        let mut out = vec![0u8; dec.update_len(pending.min(27))];
        let _ = dec.update(&[0u8; 27][..pending.min(27)], &mut out);
        let _ = dec.update_len(n);
    }
}

proptest! {
    #![proptest_config(cfg(CASES_OBJECT))]

    /// `Encryptor::update` with a buffer one byte short of `update_len` returns
    /// `buffer_too_small` and consumes nothing; the same call then succeeds with the right
    /// size, and the object decrypts. The decryptor's `update` keeps the same contract.
    #[test]
    fn update_buffer_one_short(l in lay(), len in 0usize..20_000, chunks in pvec(1usize..9000, 1..8), exp in 12u8..=13) {
        let f = 1usize << exp;
        let mut p = Params::default().with_frame_size(f as u64).unwrap();
        let part = match l {
            Lay::Parts(pf) => {
                p = p.with_part_size(u64::from(pf) * f as u64).unwrap();
                pf as usize * f
            }
            _ => len.max(1),
        };
        let (_, key) = Envelope::create_with(&kek(), "k", p, &Dek::from_bytes([10; 32]), [11; 32]).unwrap();
        let pt = plaintext(len);
        // One segment: the whole object, or its first part.
        let seg_len = len.min(part);
        let last = seg_len == len;
        let mut enc = match l {
            Lay::Parts(_) => Encryptor::<RustCrypto>::with_prefix(&key, Some(1), last, Prefix::from([2; 7])).unwrap(),
            _ => Encryptor::<RustCrypto>::with_prefix(&key, None, true, Prefix::from([2; 7])).unwrap(),
        };
        let mut ct = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < seg_len {
            let end = (at + chunks[i % chunks.len()]).min(seg_len);
            i += 1;
            let need = enc.update_len(end - at);
            let mut out = vec![0u8; need];
            prop_assert_eq!(enc.update(&pt[at..end], &mut out), Ok(need));
            ct.extend_from_slice(&out);
            at = end;
        }
        let mut out = vec![0u8; enc.finish_len()];
        let n = enc.finish(&mut out).unwrap();
        prop_assert_eq!(n, out.len());
        ct.extend_from_slice(&out);

        // Decrypt the segment with the same contract.
        let mut dec = Decryptor::<RustCrypto>::new(&key).unwrap();
        let mut got = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < ct.len() {
            let end = (at + chunks[i % chunks.len()]).min(ct.len());
            i += 1;
            let need = dec.update_len(end - at);
            let mut out = vec![0u8; need];
            let n = dec.update(&ct[at..end], &mut out).unwrap();
            got.extend_from_slice(&out[..n]);
            at = end;
        }
        if last {
            let mut out = vec![0u8; dec.finish_len()];
            let n = dec.finish(&mut out).unwrap();
            got.extend_from_slice(&out[..n]);
            prop_assert_eq!(got, pt);
        } else {
            // A first part that is not the last: every frame released, the end not reached.
            prop_assert_eq!(&got[..], &pt[..seg_len]);
        }
    }
}

// ----------------------------------------------------------------------------------------
// Minimal reproductions of what the properties above found (see the report in each test).

/// `Encryptor::build` computes a part's start as `(n - 1) * part_size` unchecked. A part size
/// the envelope may carry (part_frames up to 2^32-1, SPEC.md §3.1) times a part number up to
/// 10000 overflows u64: a panic in debug builds, a wrapped start (and so a wrong declared-size
/// check) in release builds. SPEC.md §8: exceeding a limit is `limit_exceeded`, never a
/// wrap-around or a panic.
#[test]
fn regression_for_part_start_overflows() {
    let p = Params::default().with_frame_size(1 << 23).unwrap().with_part_size(u64::from(u32::MAX) << 23).unwrap();
    let (_, key) = Envelope::create_with(&kek(), "k", p, &Dek::from_bytes([1; 32]), [2; 32]).unwrap();
    let r = Encryptor::<RustCrypto>::for_part(&key, MAX_PARTS, true);
    assert!(matches!(r, Err(Error::LimitExceeded | Error::InvalidParameter)), "{:?}", r.err());
}

/// `Decryptor::for_range` trusts the plan's fields: `pt_start + len` overflows (a panic in
/// debug builds), and a plan starting past the object slices the frame buffer out of range
/// (a panic in every build). `RangePlan` is a plain struct with public fields (a proxy may
/// receive one), so a plan that `map_range` would not have produced must be refused.
#[test]
fn regression_for_range_trusts_the_plan() {
    let o = object::<RustCrypto>(Lay::Single, 1, false, 1);
    let shape = Shape::from_ciphertext_len(o.key.header(), o.ct.len() as u64).unwrap();
    let overflowing = RangePlan::new(0, 29, 0, u64::MAX, 1);
    let past_end = RangePlan::new(0, 29, 0, 5, 100);
    let outcomes: Vec<_> = [overflowing, past_end]
        .iter()
        .map(|plan| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match Decryptor::<RustCrypto>::for_range(&o.key, shape.clone(), plan) {
                    Ok(dec) => feed(dec, &o.ct, &[usize::MAX], None).0.is_empty(),
                    Err(_) => true,
                }
            }))
            .ok()
        })
        .collect();
    assert_eq!(
        outcomes,
        [Some(true), Some(true)],
        "overflowing plan / plan past the end: refused, or nothing released"
    );
}

/// `Shape::from_ciphertext_len` accepts lengths whose plaintext exceeds the 2^44-byte object
/// limit (SPEC.md §8) when frames or parts are large, although `from_plaintext_len` refuses
/// the same plaintext length; the length mapping then stops being one-to-one within the
/// limits.
#[test]
fn regression_shape_over_plaintext_limit() {
    let single = Header { frame_exp: 23, layout: Layout::Single, declared_size: None, salt: [0; 32] };
    let pt = MAX_PLAINTEXT_SIZE + 1;
    let ct = pt + pt.div_ceil(1 << 23) * OVER;
    assert_eq!(Shape::from_plaintext_len(&single, pt).err(), Some(Error::LimitExceeded));
    assert_eq!(Shape::from_ciphertext_len(&single, ct).err(), Some(Error::LimitExceeded));
    // Two parts of 2^44 bytes each.
    let parts =
        Header { frame_exp: 23, layout: Layout::Parts { part_frames: 1 << 21 }, declared_size: None, salt: [0; 32] };
    let part_ct = MAX_PLAINTEXT_SIZE + (1 << 21) * OVER;
    assert_eq!(Shape::from_ciphertext_len(&parts, 2 * part_ct).err(), Some(Error::LimitExceeded));
}

/// `Encryptor::update_len` / `Decryptor::update_len` overflow for lengths near `usize::MAX`
/// (a binding passing a caller's number through): a panic in debug builds, a wrapped (too
/// small) bound in release builds.
#[test]
fn regression_update_len_overflows() {
    let o = object::<RustCrypto>(Lay::Single, 0, false, 1);
    let enc = Encryptor::<RustCrypto>::with_prefix(&o.key, None, true, Prefix::from([1; 7])).unwrap();
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| enc.update_len(usize::MAX) >= usize::MAX / 2));
    let mut dec = Decryptor::<RustCrypto>::new(&o.key).unwrap();
    assert_eq!(dec.update(&[0u8; 5], &mut [0u8; 5]), Ok(0));
    let d = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dec.update_len(usize::MAX) >= usize::MAX - 5));
    assert_eq!((e.ok(), d.ok()), (Some(true), Some(true)), "Encryptor / Decryptor update_len(usize::MAX)");
}

/// `Header` and `Params` have public fields; values no decoder would produce reach
/// `1u64 << frame_exp` (shift overflow: a panic in debug builds, a frame size of 1 in release
/// builds) and `pt_len.div_ceil(part_size)` with a zero part size (a panic in every build).
#[test]
fn regression_unvalidated_header_panics() {
    let wide = Header { frame_exp: 64, layout: Layout::Single, declared_size: None, salt: [0; 32] };
    let r = std::panic::catch_unwind(|| Shape::from_ciphertext_len(&wide, 100).is_err());
    let zero_parts =
        Header { frame_exp: 12, layout: Layout::Parts { part_frames: 0 }, declared_size: None, salt: [0; 32] };
    let z = std::panic::catch_unwind(|| Shape::from_plaintext_len(&zero_parts, 1).is_err());
    let p = Params { frame_exp: 64, layout: Layout::Single, declared_size: None };
    let q = std::panic::catch_unwind(|| p.with_part_size(1 << 20).is_err());
    assert_eq!(
        (r.ok(), z.ok(), q.ok()),
        (Some(true), Some(true), Some(true)),
        "frame_exp 64 shape / zero part size / frame_exp 64 params"
    );
}

/// An encryptor refused input past its part's size; it must not go on accepting input after
/// that (the bytes it refused would be a hole in the object), nor seal frames in place.
#[test]
fn encryptor_locks_after_refusing_input() {
    let f = 4096usize;
    let p = Params::default().with_frame_size(f as u64).unwrap().with_part_size(2 * f as u64).unwrap();
    let (_, key) = Envelope::create_with(&kek(), "k", p, &Dek::from_bytes([3; 32]), [4; 32]).unwrap();
    let pt = plaintext(2 * f + 1);
    let mut enc = Encryptor::<RustCrypto>::for_part(&key, 1, false).unwrap();
    let mut out = vec![0u8; enc.update_len(pt.len())];
    assert_eq!(enc.update(&pt, &mut out), Err(Error::InvalidParameter));
    assert_eq!(enc.update(&pt[..10], &mut vec![0u8; 4200]), Err(Error::InvalidState));
    let mut frame = vec![0u8; f + 28];
    assert_eq!(enc.seal_frame_in_place(&mut frame), Err(Error::InvalidState));
    assert_eq!(enc.finish(&mut out), Err(Error::InvalidState));

    // A buffer one byte short locks too: the caller has lost track of what was consumed.
    let mut enc = Encryptor::<RustCrypto>::for_part(&key, 1, false).unwrap();
    let need = enc.update_len(f + 1);
    assert_eq!(enc.update(&pt[..=f], &mut vec![0u8; need - 1]), Err(Error::BufferTooSmall));
    assert!(enc.is_locked());
    assert_eq!(enc.update(&pt[..=f], &mut vec![0u8; need]), Err(Error::InvalidState));
}
