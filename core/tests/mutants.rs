//! Exact-value tests of the envelope codec (SPEC.md §3), the frame nonce (§5.1) and object
//! geometry and range mapping (§5.2, §6, §7): every byte offset, every boundary value on both
//! sides, and the error code of every rejection. `core/MUTANTS.md` records which mutations of
//! `envelope.rs`, `nonce.rs` and `layout.rs` each test exists to catch.

#![allow(clippy::unwrap_used, reason = "fixtures are built from fixed, valid inputs; a failure is a test failure")]

use isec_core::envelope::{FIXED_LEN, HEADER_LEN, Kid, SUITE_AES256GCM_HKDF_SHA256, VERSION};
use isec_core::limits::{
    FRAME_OVERHEAD, MAX_ENVELOPE_LEN, MAX_FRAMES_PER_SEGMENT, MAX_KID_LEN, MAX_PARTS, MAX_PLAINTEXT_SIZE,
    MAX_WRAPPED_LEN, NONCE_LEN,
};
use isec_core::nonce::{FLAG_OBJECT_END, FLAG_SEGMENT_END};
use isec_core::shape::{frames_in, segment_ct_len, segment_pt_len};
use isec_core::{
    Dek, Envelope, Error, FramePosition, FrameSpec, Header, Kek, KeyWrap, Layout, Nonce, ObjectKey, Params, Prefix,
    RangePlan, Segment, SegmentTable, Shape, WrapAlg, WrappedKey,
};

const OVERHEAD: u64 = FRAME_OVERHEAD as u64;
const F: u64 = 4096;
const FULL: u64 = F + OVERHEAD;
const SALT: [u8; 32] = [0x33; 32];

fn kek() -> Kek {
    Kek::from_bytes([0x11; 32])
}

fn dek() -> Dek {
    Dek::from_bytes([0x22; 32])
}

/// A stand-in for a KMS: the blob is the DEK XOR `mask`, padded with `mask` to `len` bytes.
struct Blob {
    len: usize,
    mask: u8,
}

impl KeyWrap for Blob {
    fn alg(&self) -> WrapAlg {
        WrapAlg::External
    }

    fn wrap(&self, dek: &Dek) -> Result<WrappedKey, Error> {
        let mut b: Vec<u8> = dek.expose().iter().map(|x| x ^ self.mask).collect();
        b.resize(self.len, self.mask);
        WrappedKey::from_slice(&b)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Dek, Error> {
        if wrapped.len() != self.len || wrapped[32..].iter().any(|x| *x != self.mask) {
            return Err(Error::ExternalWrapperFailed);
        }
        let mut d = [0u8; 32];
        for (o, w) in d.iter_mut().zip(wrapped) {
            *o = w ^ self.mask;
        }
        Ok(Dek::from_bytes(d))
    }
}

fn create(wrapper: &dyn KeyWrap, kid: &str, params: Params) -> (Envelope, ObjectKey) {
    Envelope::create_with(wrapper, kid, params, &dek(), SALT).unwrap()
}

fn params(frame_size: u64) -> Params {
    Params::default().with_frame_size(frame_size).unwrap()
}

fn parts_params(frame_size: u64, part_frames: u64) -> Params {
    params(frame_size).with_part_size(part_frames * frame_size).unwrap()
}

/// RFC 4648 §5 base64url without padding, written out so the text form is checked against
/// the RFC rather than against the codec under test.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn header(frame_exp: u8, layout: Layout, declared_size: Option<u64>) -> Header {
    Header { frame_exp, layout, declared_size, salt: SALT }
}

// ---------------------------------------------------------------------------------------------
// Envelope (SPEC.md §3)
// ---------------------------------------------------------------------------------------------

#[test]
fn header_bytes_follow_the_table_of_spec_3_1() {
    assert_eq!((HEADER_LEN, FIXED_LEN, VERSION, SUITE_AES256GCM_HKDF_SHA256), (49, 81, 1, 1));
    let salt: [u8; 32] = core::array::from_fn(|i| 0xa0 + u8::try_from(i).unwrap());
    let h = Header {
        frame_exp: 13,
        layout: Layout::Parts { part_frames: 0x0102_0304 },
        declared_size: Some(0x0a0b_0c0d_0e0f_1011),
        salt,
    };
    let mut want = vec![1, 1, 13, 1, 1, 2, 3, 4, 1, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11];
    want.extend_from_slice(&salt);
    assert_eq!(h.to_bytes().to_vec(), want);

    for (layout, code) in [(Layout::Single, 0u8), (Layout::Table, 2)] {
        let h = Header { frame_exp: 23, layout, declared_size: None, salt };
        let mut want = vec![1, 1, 23, code];
        want.extend_from_slice(&[0; 13]);
        want.extend_from_slice(&salt);
        assert_eq!(h.to_bytes().to_vec(), want, "{layout:?}");
    }
    let h = Header { frame_exp: 12, layout: Layout::Single, declared_size: Some(0), salt };
    assert_eq!(&h.to_bytes()[8..17], &[1, 0, 0, 0, 0, 0, 0, 0, 0], "a declared empty object keeps its flag");
}

#[test]
fn layout_names_are_stable() {
    assert_eq!(Layout::Single.name(), "single");
    assert_eq!(Layout::Parts { part_frames: 1 }.name(), "parts");
    assert_eq!(Layout::Table.name(), "table");
}

#[test]
fn header_frame_and_part_sizes() {
    for (exp, size) in [(12u8, 4096u64), (16, 65_536), (23, 8 << 20)] {
        assert_eq!(header(exp, Layout::Single, None).frame_size(), size);
    }
    assert_eq!(header(12, Layout::Parts { part_frames: 3 }, None).part_size(), Some(3 * 4096));
    assert_eq!(header(23, Layout::Parts { part_frames: u32::MAX }, None).part_size(), Some(u64::from(u32::MAX) << 23));
    assert_eq!(header(16, Layout::Single, None).part_size(), None);
    assert_eq!(header(16, Layout::Table, None).part_size(), None);
}

#[test]
fn header_validate_boundaries() {
    assert_eq!(header(11, Layout::Single, None).validate(), Err(Error::InvalidFrameSize));
    assert_eq!(header(12, Layout::Single, None).validate(), Ok(()));
    assert_eq!(header(23, Layout::Single, None).validate(), Ok(()));
    assert_eq!(header(24, Layout::Single, None).validate(), Err(Error::InvalidFrameSize));

    assert_eq!(header(12, Layout::Parts { part_frames: 0 }, None).validate(), Err(Error::InvalidParameter));
    assert_eq!(header(12, Layout::Parts { part_frames: 1 }, None).validate(), Ok(()));
    // 2^32 - 1 frames per part: the largest index a u32 can carry.
    assert_eq!(header(12, Layout::Parts { part_frames: u32::MAX }, None).validate(), Ok(()));

    assert_eq!(header(12, Layout::Single, Some(MAX_PLAINTEXT_SIZE)).validate(), Ok(()));
    assert_eq!(header(12, Layout::Single, Some(MAX_PLAINTEXT_SIZE + 1)).validate(), Err(Error::LimitExceeded));
    assert_eq!(header(12, Layout::Table, Some(MAX_PLAINTEXT_SIZE + 1)).validate(), Err(Error::LimitExceeded));

    // A declared size that needs more than 10000 parts of the declared part size.
    let parts = Layout::Parts { part_frames: 1 };
    let max = u64::from(MAX_PARTS) * F;
    assert_eq!(header(12, parts, Some(max)).validate(), Ok(()));
    assert_eq!(header(12, parts, Some(max + 1)).validate(), Err(Error::LimitExceeded));
    assert_eq!(header(12, parts, Some(0)).validate(), Ok(()));
}

#[test]
fn params_frame_size() {
    assert_eq!(Params::default(), Params { frame_exp: 16, layout: Layout::Single, declared_size: None });
    assert_eq!(Params::default().with_frame_size(4096).unwrap().frame_exp, 12);
    assert_eq!(Params::default().with_frame_size(8 << 20).unwrap().frame_exp, 23);
    assert_eq!(Params::default().with_frame_size(1 << 16).unwrap().frame_exp, 16);
    for bad in [0, 1, 2048, 4095, 4097, 3 << 12, 16 << 20, 1 << 63, u64::MAX] {
        assert_eq!(Params::default().with_frame_size(bad), Err(Error::InvalidFrameSize), "{bad}");
    }
    // The rest of the parameters are kept.
    let p = Params { frame_exp: 16, layout: Layout::Table, declared_size: Some(5) }.with_frame_size(8192).unwrap();
    assert_eq!(p, Params { frame_exp: 13, layout: Layout::Table, declared_size: Some(5) });
}

#[test]
fn params_part_size() {
    let p = params(4096);
    assert_eq!(p.with_part_size(3 * 4096).unwrap().layout, Layout::Parts { part_frames: 3 });
    assert_eq!(p.with_part_size(4096).unwrap().layout, Layout::Parts { part_frames: 1 });
    assert_eq!(params(8192).with_part_size(5 << 20).unwrap().layout, Layout::Parts { part_frames: 640 });
    assert_eq!(p.with_part_size(0), Err(Error::InvalidParameter));
    assert_eq!(p.with_part_size(4095), Err(Error::InvalidParameter));
    assert_eq!(p.with_part_size(4097), Err(Error::InvalidParameter));
    assert_eq!(p.with_part_size(2 * 4096 + 1), Err(Error::InvalidParameter));
    assert_eq!(p.with_part_size(u64::from(u32::MAX) * 4096).unwrap().layout, Layout::Parts { part_frames: u32::MAX });
    // 2^32 frames do not fit the frame counter.
    assert_eq!(p.with_part_size(1 << 44), Err(Error::InvalidParameter));
    let bad_exp = Params { frame_exp: 64, ..Params::default() };
    assert_eq!(bad_exp.with_part_size(4096), Err(Error::InvalidFrameSize));
    let kept = p.with_part_size(8192).unwrap();
    assert_eq!((kept.frame_exp, kept.declared_size), (12, None));

    assert_eq!(p.with_table(), Params { frame_exp: 12, layout: Layout::Table, declared_size: None });
}

#[test]
fn params_parts_for_boundaries() {
    const S3_PART_MAX: u64 = 5 << 30;
    let p = Params::default();
    // The largest object: parts grow to fit 10000 and stay whole 64 KiB frames.
    let big = p.with_parts_for(MAX_PLAINTEXT_SIZE, 8 << 20).unwrap();
    assert_eq!(big.part_size(), Some(26_844 * 65_536));
    assert!(MAX_PLAINTEXT_SIZE.div_ceil(26_844 * 65_536) <= u64::from(MAX_PARTS));
    assert!(MAX_PLAINTEXT_SIZE.div_ceil(26_843 * 65_536) > u64::from(MAX_PARTS));
    assert_eq!(p.with_parts_for(MAX_PLAINTEXT_SIZE + 1, 8 << 20), Err(Error::LimitExceeded));
    // S3's 5 GiB part maximum is allowed exactly.
    let max = p.with_parts_for(1, S3_PART_MAX).unwrap();
    assert_eq!((max.part_size(), max.layout), (Some(S3_PART_MAX), Layout::Parts { part_frames: 81_920 }));
    assert_eq!(p.with_parts_for(1, S3_PART_MAX + 1), Err(Error::LimitExceeded));
    // Rounded up to whole frames of the chosen size; an empty object is one part.
    let small = params(4096).with_parts_for(10, 4097).unwrap();
    assert_eq!((small.part_size(), small.frame_exp), (Some(8192), 12));
    assert_eq!(params(4096).with_parts_for(0, 1).unwrap().part_size(), Some(4096));
    assert_eq!(p.with_parts_for(0, 0), Err(Error::InvalidParameter));
    assert_eq!(Params { frame_exp: 64, ..p }.with_parts_for(1, 1), Err(Error::InvalidFrameSize));
    assert_eq!(Params { frame_exp: 64, layout: Layout::Parts { part_frames: 1 }, ..p }.part_size(), None);
    assert_eq!(p.with_table().part_size(), None);
}

#[test]
fn kid_rules() {
    for ok in ["a", "!", "~", "kek-2026", &"x".repeat(MAX_KID_LEN)] {
        let kid = Kid::new(ok).unwrap();
        assert_eq!(kid.as_str(), ok);
        assert_eq!(format!("{kid:?}"), format!("Kid({ok:?})"));
    }
    for bad in ["", " ", "a b", "\x7f", "é", "tab\t", &"x".repeat(MAX_KID_LEN + 1)] {
        assert_eq!(Kid::new(bad), Err(Error::InvalidParameter), "{bad:?}");
    }
}

#[test]
fn envelope_bytes_follow_spec_3_1() {
    let (env, _) = create(&kek(), "kek-a", params(1 << 16));
    let b = env.to_bytes();
    // 81 fixed bytes, kid_len + 5, wrap_alg + wrapped_len + 40.
    assert_eq!(b.len(), 129);
    assert_eq!(env.encoded_len(), 129);
    assert_eq!(&b[..HEADER_LEN], &env.header().to_bytes());
    assert_eq!(b[81], 5);
    assert_eq!(&b[82..87], b"kek-a");
    assert_eq!(b[87], 1, "wrap_alg 1 is AES-KWP");
    assert_eq!(b[88], 40);
    assert_eq!(&b[89..], kek().wrap(&dek()).unwrap().as_bytes());
    assert_eq!(Envelope::decode(&b).unwrap(), env);

    // External wrapper with the longest kid and blob: the largest envelope.
    let kid = "k".repeat(MAX_KID_LEN);
    let blob = Blob { len: MAX_WRAPPED_LEN, mask: 0x5a };
    let (env, _) = create(&blob, &kid, params(1 << 16));
    let b = env.to_bytes();
    assert_eq!((b.len(), env.encoded_len(), MAX_ENVELOPE_LEN), (348, 348, 348));
    assert_eq!(b[81], 64);
    assert_eq!(&b[82..146], kid.as_bytes());
    assert_eq!((b[146], b[147]), (2, 200));
    assert_eq!(&b[148..], blob.wrap(&dek()).unwrap().as_bytes());
    assert_eq!(Envelope::decode(&b).unwrap(), env);

    // Same header and commitment whatever the wrapper: they depend only on DEK and params.
    let (kwp, _) = create(&kek(), "kek-a", params(1 << 16));
    assert_eq!(&kwp.to_bytes()[..FIXED_LEN], &b[..FIXED_LEN]);
}

#[test]
fn encode_into_writes_exactly_encoded_len() {
    let (env, _) = create(&kek(), "abc", params(4096));
    let len = env.encoded_len();
    assert_eq!(len, 81 + 1 + 3 + 2 + 40);
    let mut short = vec![0u8; len - 1];
    assert_eq!(env.encode_into(&mut short), Err(Error::BufferTooSmall));
    let mut exact = vec![0u8; len];
    assert_eq!(env.encode_into(&mut exact), Ok(len));
    assert_eq!(exact, env.to_bytes());
    let mut long = vec![0xee; len + 10];
    assert_eq!(env.encode_into(&mut long), Ok(len));
    assert_eq!(&long[..len], &exact[..]);
    assert_eq!(&long[len..], &[0xee; 10]);
}

#[test]
fn info_reports_every_field() {
    let p = Params { declared_size: Some(123_456), ..parts_params(8192, 640) };
    let (env, _) = create(&kek(), "kek-7", p);
    let info = env.info();
    assert_eq!(info.version, 1);
    assert_eq!(info.suite, 1);
    assert_eq!(info.kid, "kek-7");
    assert_eq!(info.wrap_alg, WrapAlg::AesKwp);
    assert_eq!(info.frame_size, 8192);
    assert_eq!(info.layout, Layout::Parts { part_frames: 640 });
    assert_eq!(info.part_size, Some(640 * 8192));
    assert_eq!(info.declared_size, Some(123_456));
    assert_eq!(info.envelope_len, 129);
    assert_eq!(env.kid(), "kek-7");
    assert_eq!(env.wrap_alg(), WrapAlg::AesKwp);
    assert_eq!(*env.header(), header(13, Layout::Parts { part_frames: 640 }, Some(123_456)));

    let (env, _) = create(&Blob { len: 33, mask: 1 }, "x", params(4096).with_table());
    let info = env.info();
    assert_eq!((info.kid, info.wrap_alg, info.frame_size), ("x", WrapAlg::External, 4096));
    assert_eq!((info.layout, info.part_size, info.declared_size), (Layout::Table, None, None));
    assert_eq!(info.envelope_len, 81 + 1 + 1 + 2 + 33);
    assert_eq!(env.wrap_alg(), WrapAlg::External);
    assert!(format!("{env:?}").contains("Kid(\"x\")"));
}

#[test]
fn create_checks_parameters_and_kid() {
    let bad = Params { frame_exp: 24, ..Params::default() };
    assert_eq!(Envelope::create_with(&kek(), "k", bad, &dek(), SALT).unwrap_err(), Error::InvalidFrameSize);
    let bad = Params { layout: Layout::Parts { part_frames: 0 }, ..Params::default() };
    assert_eq!(Envelope::create_with(&kek(), "k", bad, &dek(), SALT).unwrap_err(), Error::InvalidParameter);
    assert_eq!(
        Envelope::create_with(&kek(), "", Params::default(), &dek(), SALT).unwrap_err(),
        Error::InvalidParameter
    );
    let (env, key) = Envelope::create(&kek(), "fresh", Params::default()).unwrap();
    assert_eq!(env.kid(), "fresh");
    assert_eq!(env.open(&kek()).unwrap().segment_key(0), key.segment_key(0));
    assert_eq!(*key.header(), *env.header());
}

/// Mutates `b` (a valid envelope) and expects `decode` to fail with `want`.
fn rejects(b: &[u8], edit: impl Fn(&mut Vec<u8>), want: Error, what: &str) {
    let mut v = b.to_vec();
    edit(&mut v);
    assert_eq!(Envelope::decode(&v).map(|_| ()), Err(want), "{what}");
}

#[test]
fn decode_header_fields_with_spec_codes() {
    let (env, _) = create(&kek(), "kek-a", Params { declared_size: Some(77), ..params(4096) });
    let b = env.to_bytes();
    for v in [0u8, 2, 255] {
        rejects(&b, |x| x[0] = v, Error::UnsupportedVersion, "version");
    }
    for s in [0u8, 2, 255] {
        rejects(&b, |x| x[1] = s, Error::UnsupportedSuite, "suite");
    }
    for e in [0u8, 11, 24, 255] {
        rejects(&b, |x| x[2] = e, Error::InvalidFrameSize, "frame_exp");
    }
    for e in [12u8, 23] {
        let mut v = b.clone();
        v[2] = e;
        assert_eq!(Envelope::decode(&v).unwrap().header().frame_exp, e);
    }
    rejects(&b, |x| x[3] = 3, Error::MalformedEnvelope, "layout 3");
    rejects(&b, |x| x[7] = 1, Error::MalformedEnvelope, "part_frames in a single layout");
    rejects(&b, |x| x[4] = 0x80, Error::MalformedEnvelope, "part_frames in a single layout");
    rejects(&b, |x| (x[3], x[7]) = (2, 1), Error::MalformedEnvelope, "part_frames in a table layout");
    // Layout 1 with zero frames per part is a malformed envelope, not a usage error.
    rejects(&b, |x| x[3] = 1, Error::MalformedEnvelope, "part_frames 0");
    rejects(&b, |x| x[8] = 2, Error::MalformedEnvelope, "size_flag 2");
    rejects(&b, |x| x[8] = 0, Error::MalformedEnvelope, "size without size_flag");
    rejects(
        &b,
        |x| x[9..17].copy_from_slice(&(MAX_PLAINTEXT_SIZE + 1).to_be_bytes()),
        Error::LimitExceeded,
        "declared size over 2^44",
    );

    let decoded = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut v = b.clone();
        edit(&mut v);
        *Envelope::decode(&v).unwrap().header()
    };
    assert_eq!(decoded(&|_| {}), header(12, Layout::Single, Some(77)));
    assert_eq!(decoded(&|x| x[3] = 2).layout, Layout::Table);
    assert_eq!(decoded(&|x| (x[3], x[4], x[7]) = (1, 1, 2)).layout, Layout::Parts { part_frames: 0x0100_0002 });
    assert_eq!(decoded(&|x| x[8..17].fill(0)).declared_size, None);
    assert_eq!(
        decoded(&|x| x[9..17].copy_from_slice(&MAX_PLAINTEXT_SIZE.to_be_bytes())).declared_size,
        Some(MAX_PLAINTEXT_SIZE)
    );
    assert_eq!(decoded(&|x| x[17] ^= 1).salt[0], SALT[0] ^ 1);
}

#[test]
fn decode_checks_length_before_fields() {
    assert_eq!(Envelope::decode(&[]), Err(Error::MalformedEnvelope));
    assert_eq!(Envelope::decode(&[1]), Err(Error::MalformedEnvelope));
    assert_eq!(Envelope::decode(&[2]), Err(Error::UnsupportedVersion));
    assert_eq!(Envelope::decode(&[0; 400]), Err(Error::UnsupportedVersion));
    // Over 348 bytes: malformed, even though the suite byte is also wrong.
    let mut long = vec![1u8; MAX_ENVELOPE_LEN + 1];
    long[1] = 9;
    assert_eq!(Envelope::decode(&long), Err(Error::MalformedEnvelope));
    long.truncate(HEADER_LEN);
    assert_eq!(Envelope::decode(&long), Err(Error::UnsupportedSuite));
    long.truncate(HEADER_LEN - 1);
    assert_eq!(Envelope::decode(&long), Err(Error::MalformedEnvelope));

    let (env, _) = create(&Blob { len: 200, mask: 9 }, &"q".repeat(64), params(4096));
    let mut b = env.to_bytes();
    assert_eq!(b.len(), MAX_ENVELOPE_LEN);
    assert_eq!(Envelope::decode(&b).unwrap(), env);
    b.push(0);
    assert_eq!(Envelope::decode(&b), Err(Error::MalformedEnvelope));
}

#[test]
fn every_cut_and_every_extension_is_malformed() {
    for (wrapper, kid) in [
        (&kek() as &dyn KeyWrap, "kek-a"),
        (&Blob { len: 1, mask: 3 }, "a"),
        (&Blob { len: 200, mask: 3 }, "kid-for-a-200-byte-blob"),
    ] {
        let (env, _) = create(wrapper, kid, Params::default());
        let b = env.to_bytes();
        for n in 0..b.len() {
            assert_eq!(Envelope::decode(&b[..n]), Err(Error::MalformedEnvelope), "{kid}: cut to {n}");
        }
        let mut longer = b.clone();
        longer.push(0);
        if longer.len() <= MAX_ENVELOPE_LEN {
            assert_eq!(Envelope::decode(&longer), Err(Error::MalformedEnvelope), "{kid}: one more byte");
        }
        assert_eq!(Envelope::decode(&b).unwrap(), env);
    }
}

#[test]
fn decode_kid_and_wrapped_key_rules() {
    let (env, _) = create(&kek(), "kek-a", params(4096));
    let b = env.to_bytes();
    rejects(&b, |x| x[81] = 0, Error::MalformedEnvelope, "kid_len 0");
    rejects(&b, |x| x[81] = 6, Error::MalformedEnvelope, "kid_len one too many");
    // One too few: the kid's last byte ('a') is then read as the wrap algorithm.
    rejects(&b, |x| x[81] = 4, Error::UnsupportedSuite, "kid_len one too few");
    rejects(&b, |x| (x[81], x[86]) = (4, 1), Error::MalformedEnvelope, "kid_len one too few, alg byte valid");
    for c in [0x20u8, 0x7f, 0x80, 0xff, 0] {
        rejects(&b, |x| x[84] = c, Error::MalformedEnvelope, "kid byte");
    }
    rejects(&b, |x| x[87] = 0, Error::UnsupportedSuite, "wrap_alg 0");
    rejects(&b, |x| x[87] = 4, Error::UnsupportedSuite, "wrap_alg 4");
    // 3 is HPKE-X25519, whose wrap is exactly 80 bytes: a 40-byte one is malformed.
    rejects(&b, |x| x[87] = 3, Error::MalformedEnvelope, "wrap_alg 3 with 40 bytes");
    rejects(&b, |x| x[88] = 0, Error::MalformedEnvelope, "wrapped_len 0");
    rejects(&b, |x| x[88] = 39, Error::MalformedEnvelope, "wrapped_len 39");
    rejects(&b, |x| x[88] = 41, Error::MalformedEnvelope, "wrapped_len 41");
    // AES-KWP must be exactly 40 bytes even when the lengths are consistent.
    rejects(
        &b,
        |x| {
            x[88] = 39;
            x.pop();
        },
        Error::MalformedEnvelope,
        "AES-KWP of 39 bytes",
    );
    // An external blob of 40 bytes is fine, and so is one of 1 byte.
    let mut ext = b.clone();
    ext[87] = 2;
    let e = Envelope::decode(&ext).unwrap();
    assert_eq!((e.wrap_alg(), e.kid()), (WrapAlg::External, "kek-a"));
    ext[88] = 1;
    ext.truncate(90);
    assert_eq!(Envelope::decode(&ext).unwrap().encoded_len(), 90);
    // The kid sits where its length says.
    let mut other = b.clone();
    other[82..87].copy_from_slice(b"kek-b");
    assert_eq!(Envelope::decode(&other).unwrap().kid(), "kek-b");
}

#[test]
fn text_form_is_unpadded_base64url() {
    for (wrapper, kid) in [(&kek() as &dyn KeyWrap, "kek-a"), (&Blob { len: 200, mask: 7 }, &*"z".repeat(64))] {
        let (env, _) = create(wrapper, kid, Params::default());
        let want = base64url(&env.to_bytes());
        assert_eq!(env.to_text(), want);
        let mut buf = [0u8; 464];
        assert_eq!(env.encode_text(&mut buf).unwrap(), want);
        let mut short = vec![0u8; want.len() - 1];
        assert_eq!(env.encode_text(&mut short), Err(Error::BufferTooSmall));
        assert_eq!(Envelope::decode_text(&want).unwrap(), env);
    }
    // The largest envelope is exactly 464 characters and decodes.
    let (env, _) = create(&Blob { len: 200, mask: 7 }, &"z".repeat(64), Params::default());
    let text = env.to_text();
    assert_eq!(text.len(), 464);
    assert_eq!(Envelope::decode_text(&text).unwrap(), env);
    for extra in ["A", "AA", "AAAA"] {
        assert_eq!(Envelope::decode_text(&format!("{text}{extra}")), Err(Error::MalformedEnvelope), "{extra}");
    }

    let (env, _) = create(&kek(), "kek-a", Params::default());
    let text = env.to_text();
    assert_eq!(Envelope::decode_text(&format!("{text}=")), Err(Error::MalformedEnvelope));
    // Characters of the standard alphabet are outside base64url.
    assert_eq!(Envelope::decode_text(&format!("+{}", &text[1..])), Err(Error::MalformedEnvelope));
    assert_eq!(Envelope::decode_text(&format!("{}/", &text[..text.len() - 1])), Err(Error::MalformedEnvelope));
    assert_eq!(Envelope::decode_text(""), Err(Error::MalformedEnvelope));
}

#[test]
fn open_and_rewrap() {
    let (env, key) = create(&kek(), "old", parts_params(4096, 4));
    let opened = env.open(&kek()).unwrap();
    assert_eq!(opened.segment_key(1), key.segment_key(1));
    assert_eq!(*opened.header(), *env.header());

    let blob = Blob { len: 64, mask: 0xc3 };
    assert_eq!(env.open(&blob).unwrap_err(), Error::UnsupportedSuite);
    assert_eq!(env.open(&Kek::from_bytes([0x12; 32])).unwrap_err(), Error::UnwrapFailed);

    let mut b = env.to_bytes();
    b[60] ^= 1;
    assert_eq!(Envelope::decode(&b).unwrap().open(&kek()).unwrap_err(), Error::CommitmentMismatch);
    let mut b = env.to_bytes();
    b[20] ^= 1;
    assert_eq!(Envelope::decode(&b).unwrap().open(&kek()).unwrap_err(), Error::CommitmentMismatch);

    let moved = env.rewrap(&kek(), &blob, "new-kms").unwrap();
    assert_eq!((moved.kid(), moved.wrap_alg()), ("new-kms", WrapAlg::External));
    assert_eq!(moved.header(), env.header());
    assert_eq!(&moved.to_bytes()[..FIXED_LEN], &env.to_bytes()[..FIXED_LEN]);
    assert_eq!(moved.encoded_len(), 81 + 1 + 7 + 2 + 64);
    assert_eq!(moved.open(&blob).unwrap().segment_key(3), key.segment_key(3));
    assert_eq!(moved.open(&kek()).unwrap_err(), Error::UnsupportedSuite);
    let back = moved.rewrap(&blob, &kek(), "old").unwrap();
    assert_eq!(back, env);

    assert_eq!(env.rewrap(&Kek::from_bytes([0x12; 32]), &blob, "x").unwrap_err(), Error::UnwrapFailed);
    assert_eq!(env.rewrap(&blob, &kek(), "x").unwrap_err(), Error::UnsupportedSuite);
    assert_eq!(env.rewrap(&kek(), &blob, "bad kid").unwrap_err(), Error::InvalidParameter);
    let mut b = env.to_bytes();
    b[17] ^= 1;
    assert_eq!(Envelope::decode(&b).unwrap().rewrap(&kek(), &blob, "x").unwrap_err(), Error::CommitmentMismatch);
}

// ---------------------------------------------------------------------------------------------
// Nonce (SPEC.md §5.1)
// ---------------------------------------------------------------------------------------------

fn pos(index: u32, segment_end: bool, object_end: bool) -> FramePosition {
    FramePosition { index, segment_end, object_end }
}

#[test]
fn nonce_bytes() {
    assert_eq!((FLAG_SEGMENT_END, FLAG_OBJECT_END, NONCE_LEN), (1, 2, 12));
    let prefix = Prefix::from([1, 2, 3, 4, 5, 6, 7]);
    let n = Nonce::new(&prefix, pos(0x0a0b_0c0d, false, false));
    assert_eq!(*n.as_bytes(), [1, 2, 3, 4, 5, 6, 7, 0x0a, 0x0b, 0x0c, 0x0d, 0]);
    assert_eq!(n.prefix(), prefix);
    // Object end always carries segment end too.
    for (seg, obj, flags) in [(false, false, 0u8), (true, false, 1), (false, true, 3), (true, true, 3)] {
        assert_eq!(Nonce::new(&prefix, pos(7, seg, obj)).as_bytes()[11], flags, "{seg} {obj}");
    }
    let mut all = [0xff; 12];
    all[11] = 3;
    assert_eq!(*Nonce::new(&Prefix::from([0xff; 7]), pos(u32::MAX, true, true)).as_bytes(), all);
}

#[test]
fn nonce_read() {
    let frame: Vec<u8> = (0u8..40).collect();
    assert_eq!(
        *Nonce::read(&frame).unwrap().as_bytes(),
        core::array::from_fn::<u8, 12, _>(|i| u8::try_from(i).unwrap())
    );
    assert_eq!(Nonce::read(&frame[..12]).unwrap().as_bytes()[11], 11);
    assert_eq!(Nonce::read(&frame[..11]), Err(Error::BadFrameLength));
    assert_eq!(Nonce::read(&[]), Err(Error::BadFrameLength));
    assert_eq!(Nonce::read(&frame).unwrap().prefix(), Prefix::from([0, 1, 2, 3, 4, 5, 6]));
}

#[test]
fn nonce_position_for_every_flags_byte() {
    for flags in 0..=255u8 {
        let got = Nonce::from_bytes([9, 9, 9, 9, 9, 9, 9, 0x80, 0, 0x01, 0xfe, flags]).position();
        let want = match flags {
            0 => Ok(pos(0x8000_01fe, false, false)),
            1 => Ok(pos(0x8000_01fe, true, false)),
            3 => Ok(pos(0x8000_01fe, true, true)),
            _ => Err(Error::BadFrameFlags),
        };
        assert_eq!(got, want, "flags {flags:#04x}");
    }
    let p = pos(42, true, false);
    assert_eq!(Nonce::new(&Prefix::from([0; 7]), p).position(), Ok(p));
}

// ---------------------------------------------------------------------------------------------
// Frames and segment lengths (SPEC.md §5.2, §8)
// ---------------------------------------------------------------------------------------------

#[test]
fn frame_counts() {
    assert_eq!(frames_in(0, F), 1);
    assert_eq!(frames_in(1, F), 1);
    assert_eq!(frames_in(F, F), 1);
    assert_eq!(frames_in(F + 1, F), 2);
    assert_eq!(frames_in(3 * F, F), 3);
}

#[test]
fn segment_ciphertext_lengths() {
    assert_eq!(segment_ct_len(0, F), Ok(28));
    assert_eq!(segment_ct_len(1, F), Ok(29));
    assert_eq!(segment_ct_len(F, F), Ok(F + 28));
    assert_eq!(segment_ct_len(F + 1, F), Ok(F + 1 + 56));
    assert_eq!(segment_ct_len(10 * F + 3, F), Ok(10 * F + 3 + 11 * 28));
    // The largest object in 4 KiB frames has exactly 2^32 frames.
    assert_eq!(segment_ct_len(MAX_PLAINTEXT_SIZE, F), Ok(MAX_PLAINTEXT_SIZE + MAX_FRAMES_PER_SEGMENT * 28));
    assert_eq!(segment_ct_len(MAX_PLAINTEXT_SIZE + 1, F), Err(Error::LimitExceeded));
    // Over the size limit with few frames, and over the frame limit with few bytes.
    assert_eq!(segment_ct_len(MAX_PLAINTEXT_SIZE + 1, 8 << 20), Err(Error::LimitExceeded));
    assert_eq!(segment_ct_len(MAX_FRAMES_PER_SEGMENT, 1), Ok(MAX_FRAMES_PER_SEGMENT * 29));
    assert_eq!(segment_ct_len(MAX_FRAMES_PER_SEGMENT + 1, 1), Err(Error::LimitExceeded));
}

#[test]
fn segment_plaintext_lengths() {
    assert_eq!(segment_pt_len(0, F), Err(Error::Truncated));
    assert_eq!(segment_pt_len(27, F), Err(Error::Truncated));
    assert_eq!(segment_pt_len(28, F), Ok(0));
    assert_eq!(segment_pt_len(29, F), Ok(1));
    assert_eq!(segment_pt_len(FULL, F), Ok(F));
    // A second frame shorter than its overhead: the end was cut.
    assert_eq!(segment_pt_len(FULL + 1, F), Err(Error::Truncated));
    assert_eq!(segment_pt_len(FULL + 27, F), Err(Error::Truncated));
    // An empty frame after a full one is impossible (§5.2).
    assert_eq!(segment_pt_len(FULL + 28, F), Err(Error::BadFrameLength));
    assert_eq!(segment_pt_len(FULL + 29, F), Ok(F + 1));
    assert_eq!(segment_pt_len(2 * FULL, F), Ok(2 * F));
    assert_eq!(segment_pt_len(2 * FULL + 28, F), Err(Error::BadFrameLength));
    assert_eq!(segment_pt_len(3 * FULL + 100, F), Ok(3 * F + 72));
    for pt in [0, 1, 27, 28, 29, F - 1, F, F + 1, 2 * F - 1, 2 * F, 2 * F + 1, 7 * F + 4000] {
        assert_eq!(segment_pt_len(segment_ct_len(pt, F).unwrap(), F), Ok(pt), "{pt}");
    }
    assert_eq!(segment_pt_len(MAX_FRAMES_PER_SEGMENT * FULL, F), Ok(MAX_PLAINTEXT_SIZE));
    assert_eq!(segment_pt_len(MAX_FRAMES_PER_SEGMENT * FULL + 29, F), Err(Error::LimitExceeded));
}

#[test]
fn frame_spec_ct_len() {
    let seg = Segment { number: 0, ordinal: 0, is_last: true, pt_start: 0, pt_len: 5, ct_start: 0, ct_len: 33 };
    let f = FrameSpec { segment: seg, position: pos(0, true, true), pt_start: 0, pt_len: 5, ct_start: 0 };
    assert_eq!(f.ct_len(), 33);
}

// ---------------------------------------------------------------------------------------------
// Shapes (SPEC.md §6) and range mapping (§7)
// ---------------------------------------------------------------------------------------------

fn seg(number: u32, ordinal: u32, is_last: bool, pt: (u64, u64), ct: (u64, u64)) -> Segment {
    Segment { number, ordinal, is_last, pt_start: pt.0, pt_len: pt.1, ct_start: ct.0, ct_len: ct.1 }
}

fn frame(segment: Segment, position: FramePosition, pt: (u64, u64), ct_start: u64) -> FrameSpec {
    FrameSpec { segment, position, pt_start: pt.0, pt_len: pt.1, ct_start }
}

/// All frames reached by `first_frame` / `next_frame`; a walk that never ends fails instead
/// of hanging.
fn walk(shape: &Shape) -> Vec<FrameSpec> {
    let mut out = Vec::new();
    let mut f = shape.first_frame();
    while let Some(x) = f {
        out.push(x);
        assert!(out.len() <= 64, "next_frame does not advance: {x:?}");
        f = shape.next_frame(&x);
    }
    out
}

#[test]
fn single_shape() {
    let h = header(12, Layout::Single, None);
    let pt = 2 * F + 100;
    let ct = pt + 3 * OVERHEAD;
    let shape = Shape::from_plaintext_len(&h, pt).unwrap();
    assert_eq!(shape, Shape::from_ciphertext_len(&h, ct).unwrap());
    assert_eq!((shape.plaintext_len(), shape.ciphertext_len(), shape.frame_size()), (pt, ct, F));
    assert_eq!((shape.segment_count(), shape.frame_count()), (1, 3));
    let s = seg(0, 0, true, (0, pt), (0, ct));
    assert_eq!(shape.segment(0), Some(s));
    assert_eq!(shape.segment(1), None);
    assert_eq!(shape.segment_at(0), Some(s));
    assert_eq!(shape.segment_at(pt + 5), Some(s));
    let frames = [
        frame(s, pos(0, false, false), (0, F), 0),
        frame(s, pos(1, false, false), (F, F), FULL),
        frame(s, pos(2, true, true), (2 * F, 100), 2 * FULL),
    ];
    assert_eq!(walk(&shape), frames);
    assert_eq!(shape.frame(&s, 3), None);
    assert_eq!(frames[2].ct_len(), 128);
    for (offset, i) in [(0, 0), (F - 1, 0), (F, 1), (2 * F - 1, 1), (2 * F, 2), (pt - 1, 2), (pt, 2), (u64::MAX, 2)] {
        assert_eq!(shape.frame_at(offset), Some(frames[i]), "offset {offset}");
    }

    // A whole number of frames: offsets at and past the end belong to the last frame.
    let shape = Shape::from_plaintext_len(&h, 2 * F).unwrap();
    assert_eq!(shape.ciphertext_len(), 2 * FULL);
    assert_eq!(shape.frame_at(2 * F).map(|f| f.position), Some(pos(1, true, true)));
    assert_eq!(shape.frame_at(5 * F).map(|f| f.position), Some(pos(1, true, true)));

    // The empty object: one empty frame.
    let shape = Shape::from_ciphertext_len(&h, 28).unwrap();
    assert_eq!((shape.plaintext_len(), shape.frame_count()), (0, 1));
    let s = seg(0, 0, true, (0, 0), (0, 28));
    assert_eq!(walk(&shape), [frame(s, pos(0, true, true), (0, 0), 0)]);
}

#[test]
fn parts_shape() {
    // Parts of 2 frames: 8192 plaintext, 8248 ciphertext bytes; the last holds 5000 bytes.
    let h = header(12, Layout::Parts { part_frames: 2 }, None);
    let (ps, pc) = (2 * F, 2 * FULL);
    let pt = 2 * ps + 5000;
    let ct = 2 * pc + 5000 + 2 * OVERHEAD;
    let shape = Shape::from_plaintext_len(&h, pt).unwrap();
    assert_eq!(shape, Shape::from_ciphertext_len(&h, ct).unwrap());
    assert_eq!((shape.plaintext_len(), shape.ciphertext_len()), (pt, ct));
    assert_eq!((shape.segment_count(), shape.frame_count()), (3, 6));
    let segs = [
        seg(1, 0, false, (0, ps), (0, pc)),
        seg(2, 1, false, (ps, ps), (pc, pc)),
        seg(3, 2, true, (2 * ps, 5000), (2 * pc, 5056)),
    ];
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(shape.segment(u32::try_from(i).unwrap()), Some(*s));
    }
    assert_eq!(shape.segment(3), None);
    for (offset, i) in [(0, 0), (ps - 1, 0), (ps, 1), (2 * ps - 1, 1), (2 * ps, 2), (pt, 2), (u64::MAX, 2)] {
        assert_eq!(shape.segment_at(offset), Some(segs[i]), "offset {offset}");
    }
    let want = [
        frame(segs[0], pos(0, false, false), (0, F), 0),
        frame(segs[0], pos(1, true, false), (F, F), FULL),
        frame(segs[1], pos(0, false, false), (ps, F), pc),
        frame(segs[1], pos(1, true, false), (ps + F, F), pc + FULL),
        frame(segs[2], pos(0, false, false), (2 * ps, F), 2 * pc),
        frame(segs[2], pos(1, true, true), (2 * ps + F, 904), 2 * pc + FULL),
    ];
    assert_eq!(walk(&shape), want);
    assert_eq!(shape.frame_at(ps + F + 1), Some(want[3]));

    // A part count at the limit, and one over it.
    let h = header(12, Layout::Parts { part_frames: 1 }, None);
    let max = u64::from(MAX_PARTS);
    let shape = Shape::from_ciphertext_len(&h, max * FULL).unwrap();
    assert_eq!((shape.plaintext_len(), shape.segment_count()), (max * F, MAX_PARTS));
    assert_eq!(shape.segment(MAX_PARTS - 1).map(|s| (s.number, s.is_last)), Some((MAX_PARTS, true)));
    assert_eq!(Shape::from_ciphertext_len(&h, max * FULL + 29), Err(Error::LimitExceeded));
    assert_eq!(Shape::from_plaintext_len(&h, max * F).map(|s| s.ciphertext_len()), Ok(max * FULL));
    assert_eq!(Shape::from_plaintext_len(&h, max * F + 1), Err(Error::LimitExceeded));

    // An empty part after full ones cannot exist; a cut last part is caught per segment.
    let h = header(12, Layout::Parts { part_frames: 2 }, None);
    assert_eq!(Shape::from_ciphertext_len(&h, pc + 28), Err(Error::BadFrameLength));
    assert_eq!(Shape::from_ciphertext_len(&h, pc + 27), Err(Error::Truncated));
    assert_eq!(Shape::from_ciphertext_len(&h, pc + FULL + 28), Err(Error::BadFrameLength));
    assert_eq!(Shape::from_ciphertext_len(&h, pc + 29).map(|s| s.plaintext_len()), Ok(ps + 1));
    // The sole part may be empty.
    let empty = Shape::from_ciphertext_len(&h, 28).unwrap();
    assert_eq!((empty.plaintext_len(), empty.segment_count()), (0, 1));
    assert_eq!(empty.first_frame().map(|f| (f.segment.number, f.position)), Some((1, pos(0, true, true))));
    assert_eq!(Shape::from_plaintext_len(&h, 0), Ok(empty));
}

#[test]
fn table_shape() {
    let h = header(12, Layout::Table, None);
    let table = SegmentTable::new(vec![(1, 5000, Prefix::from([1; 7])), (3, 9000, Prefix::from([3; 7]))]).unwrap();
    let ct = (5000 + 56) + (9000 + 84);
    assert_eq!(Shape::from_table(&header(12, Layout::Single, None), table.clone(), ct), Err(Error::InvalidParameter));
    assert_eq!(Shape::from_table(&h, table.clone(), ct - 1), Err(Error::Truncated));
    assert_eq!(Shape::from_table(&h, table.clone(), ct + 1), Err(Error::TrailingData));
    assert_eq!(Shape::from_ciphertext_len(&h, ct), Err(Error::InvalidParameter));
    assert_eq!(Shape::from_plaintext_len(&h, 14_000), Err(Error::InvalidParameter));
    let shape = Shape::from_table(&h, table, ct).unwrap();
    assert_eq!((shape.plaintext_len(), shape.ciphertext_len()), (14_000, ct));
    assert_eq!((shape.segment_count(), shape.frame_count()), (2, 5));
    let segs = [seg(1, 0, false, (0, 5000), (0, 5056)), seg(3, 1, true, (5000, 9000), (5056, 9084))];
    assert_eq!(shape.segment(0), Some(segs[0]));
    assert_eq!(shape.segment(1), Some(segs[1]));
    assert_eq!(shape.segment(2), None);
    assert_eq!(shape.segment_at(4999), Some(segs[0]));
    assert_eq!(shape.segment_at(5000), Some(segs[1]));
    // The table layout never marks the object's end in a nonce (§6.3).
    let want = [
        frame(segs[0], pos(0, false, false), (0, F), 0),
        frame(segs[0], pos(1, true, false), (F, 904), FULL),
        frame(segs[1], pos(0, false, false), (5000, F), 5056),
        frame(segs[1], pos(1, false, false), (5000 + F, F), 5056 + FULL),
        frame(segs[1], pos(2, true, false), (5000 + 2 * F, 808), 5056 + 2 * FULL),
    ];
    assert_eq!(walk(&shape), want);
    assert_eq!(shape.frame_at(5000 + F), Some(want[3]));

    let boundaries = [0, FULL, 5056, 5056 + FULL, 5056 + 2 * FULL, ct];
    for off in 0..=ct + 2 {
        let floor = boundaries.iter().copied().filter(|b| *b <= off).max().unwrap_or(0);
        assert_eq!(shape.ct_boundary_floor(off), floor, "offset {off}");
    }
    let plan = shape.map_range(4000, 9200);
    assert_eq!(plan, RangePlan::new(0, 5056 + 2 * FULL, 4000, 5200, 4000));
}

#[test]
fn declared_size_must_match() {
    for layout in [Layout::Single, Layout::Parts { part_frames: 1 }] {
        let h = header(12, layout, Some(5000));
        let ct = Shape::from_plaintext_len(&header(12, layout, None), 5000).unwrap().ciphertext_len();
        assert_eq!(Shape::from_ciphertext_len(&h, ct).map(|s| s.plaintext_len()), Ok(5000));
        assert_eq!(Shape::from_ciphertext_len(&h, ct - 1), Err(Error::Truncated), "{layout:?}");
        assert_eq!(Shape::from_ciphertext_len(&h, ct + 1), Err(Error::TrailingData), "{layout:?}");
        assert_eq!(Shape::from_plaintext_len(&h, 4999), Err(Error::Truncated));
        assert_eq!(Shape::from_plaintext_len(&h, 5001), Err(Error::TrailingData));
    }
    let h = header(12, Layout::Table, Some(14_000));
    let table = || SegmentTable::new(vec![(1, 5000, Prefix::from([1; 7])), (3, 9000, Prefix::from([3; 7]))]).unwrap();
    assert_eq!(Shape::from_table(&h, table(), 14_140).map(|s| s.plaintext_len()), Ok(14_000));
    let h = header(12, Layout::Table, Some(14_001));
    assert_eq!(Shape::from_table(&h, table(), 14_140), Err(Error::Truncated));
    let h = header(12, Layout::Table, Some(13_999));
    assert_eq!(Shape::from_table(&h, table(), 14_140), Err(Error::TrailingData));
    let h = header(12, Layout::Single, Some(0));
    assert_eq!(Shape::from_ciphertext_len(&h, 28).map(|s| s.plaintext_len()), Ok(0));
    assert_eq!(Shape::from_ciphertext_len(&h, 29), Err(Error::TrailingData));
}

#[test]
fn shape_size_limits() {
    // 8 MiB frames allow a segment far over 2^44 bytes; the object limit still applies.
    let h = header(23, Layout::Single, None);
    let big = 8u64 << 20;
    let ct_max = MAX_PLAINTEXT_SIZE + (MAX_PLAINTEXT_SIZE / big) * OVERHEAD;
    assert_eq!(Shape::from_ciphertext_len(&h, ct_max).map(|s| s.plaintext_len()), Ok(MAX_PLAINTEXT_SIZE));
    assert_eq!(Shape::from_ciphertext_len(&h, ct_max + 29), Err(Error::LimitExceeded));
    assert_eq!(Shape::from_plaintext_len(&h, MAX_PLAINTEXT_SIZE).map(|s| s.ciphertext_len()), Ok(ct_max));
    assert_eq!(Shape::from_plaintext_len(&h, MAX_PLAINTEXT_SIZE + 1), Err(Error::LimitExceeded));
    assert_eq!(Shape::from_plaintext_len(&header(24, Layout::Single, None), 1), Err(Error::InvalidFrameSize));
    assert_eq!(Shape::from_ciphertext_len(&header(11, Layout::Single, None), 28), Err(Error::InvalidFrameSize));
}

#[test]
fn regular_ct_boundaries() {
    let h = header(12, Layout::Parts { part_frames: 2 }, None);
    let shape = Shape::from_plaintext_len(&h, 4 * F + 10).unwrap();
    let ct = shape.ciphertext_len();
    assert_eq!(ct, 4 * FULL + 38);
    for (off, want) in [
        (0, 0),
        (1, 0),
        (FULL - 1, 0),
        (FULL, FULL),
        (3 * FULL + 5, 3 * FULL),
        (4 * FULL, 4 * FULL),
        (ct - 1, 4 * FULL),
        (ct, ct),
        (ct + 1, ct),
        (u64::MAX, ct),
    ] {
        assert_eq!(shape.ct_boundary_floor(off), want, "offset {off}");
    }
}

#[test]
fn range_plans() {
    let h = header(12, Layout::Single, None);
    let pt = 3 * F + 100;
    let shape = Shape::from_plaintext_len(&h, pt).unwrap();
    let ct = shape.ciphertext_len();
    let plan = RangePlan::new;

    assert_eq!(shape.map_range(0, pt), plan(0, ct, 0, pt, 0));
    assert_eq!(shape.map_range(0, u64::MAX), plan(0, ct, 0, pt, 0));
    assert_eq!(shape.map_range(0, 1), plan(0, FULL, 0, 1, 0));
    assert_eq!(shape.map_range(0, F), plan(0, FULL, 0, F, 0));
    assert_eq!(shape.map_range(0, F + 1), plan(0, 2 * FULL, 0, F + 1, 0));
    assert_eq!(shape.map_range(F - 1, F + 1), plan(0, 2 * FULL, F - 1, 2, F - 1));
    assert_eq!(shape.map_range(F, 2 * F), plan(FULL, 2 * FULL, 0, F, F));
    assert_eq!(shape.map_range(F + 10, 2 * F - 10), plan(FULL, 2 * FULL, 10, F - 20, F + 10));
    assert_eq!(shape.map_range(3 * F + 50, pt), plan(3 * FULL, ct, 50, 50, 3 * F + 50));
    assert_eq!(shape.map_range(pt - 1, pt + 10), plan(3 * FULL, ct, 99, 1, pt - 1));

    // Empty after clamping: nothing to fetch, positioned at the clamped start.
    assert_eq!(shape.map_range(5, 5), plan(ct, ct, 0, 0, 5));
    assert_eq!(shape.map_range(10, 3), plan(ct, ct, 0, 0, 10));
    assert_eq!(shape.map_range(pt, pt + 5), plan(ct, ct, 0, 0, pt));
    assert_eq!(shape.map_range(pt + 7, pt + 9), plan(ct, ct, 0, 0, pt));

    let p = shape.map_range(F + 10, 2 * F - 10);
    assert!(!p.is_empty());
    assert_eq!(p.http_range().as_deref(), Some("bytes=4124-8247"));
    let e = shape.map_range(5, 5);
    assert!(e.is_empty());
    assert_eq!(e.http_range(), None);
    assert_eq!(plan(0, 0, 0, 0, 0).http_range(), None);
    assert_eq!(plan(0, 1, 0, 1, 0).http_range().as_deref(), Some("bytes=0-0"));

    // Across a part boundary.
    let h = header(12, Layout::Parts { part_frames: 2 }, None);
    let shape = Shape::from_plaintext_len(&h, 5 * F).unwrap();
    assert_eq!(shape.map_range(2 * F - 1, 2 * F + 1), plan(FULL, 3 * FULL, F - 1, 2, 2 * F - 1));
    assert_eq!(shape.map_range(4 * F, 5 * F), plan(4 * FULL, 5 * FULL, 0, F, 4 * F));

    // The empty object: any range is empty.
    let empty = Shape::from_plaintext_len(&header(12, Layout::Single, None), 0).unwrap();
    assert_eq!(empty.map_range(0, 10), plan(28, 28, 0, 0, 0));
}
