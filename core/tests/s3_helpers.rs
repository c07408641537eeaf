//! The core's answers to the questions every S3 helper asks: which metadata a new or
//! re-encrypted object gets, where a segment table lives, which sidecar a copy moves, how big
//! parts must be, and which limits are refused before planning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use isec_core::copy::{self, CopyAction, CopyLimits, CopyRequest, Directive, Sidecar};
use isec_core::metadata::{self, TableSource};
use isec_core::{Error, Kek, KeyState, Keyring, Params, legacy};

fn ring() -> Keyring {
    let mut r = Keyring::new();
    r.add_kek("k1", Kek::from_bytes([7; 32]), KeyState::Active).unwrap();
    r
}

#[test]
fn object_metadata_sets_envelope_keys_and_drops_stale_ones() {
    let (env, _) = ring().create_envelope(Params::default()).unwrap();
    let user = [
        ("X-Amz-Meta-Owner", "ana"),
        ("isec", "stale"),
        ("isec-kid", "old"),
        ("isec-table", "AQID"),
        ("s3proxy-format", "x"),
    ];
    let m = metadata::object_metadata(&user, &env);
    assert_eq!(
        m,
        vec![
            ("owner".to_string(), "ana".to_string()),
            ("isec".to_string(), env.to_text()),
            ("isec-kid".to_string(), "k1".to_string()),
        ]
    );
}

#[test]
fn user_metadata_strips_every_format_key() {
    let meta = [
        ("isec", "e"),
        ("isec-kid", "k"),
        ("isec-table", "t"),
        ("client-etag", "c"),
        ("plaintext-size", "1"),
        ("s3proxy-format", "f"),
        ("s3proxy-generation", "g"),
        ("x-amz-meta-Colour", "blue"),
    ];
    assert_eq!(metadata::user_metadata(&meta), vec![("colour".to_string(), "blue".to_string())]);
}

#[test]
fn table_source_inline_sidecar_and_malformed() {
    assert_eq!(metadata::table_source(&[("owner", "x")]).unwrap(), TableSource::Sidecar);
    assert_eq!(metadata::table_source(&[("isec-table", "AQID")]).unwrap(), TableSource::Inline(vec![1, 2, 3]));
    assert_eq!(metadata::table_source(&[("isec-table", "AQ+D")]), Err(Error::MalformedSegmentTable));
    let huge = "A".repeat(200_000);
    assert_eq!(metadata::table_source(&[("isec-table", huge.as_str())]), Err(Error::MalformedSegmentTable));
}

#[test]
fn parts_for_rounds_to_frames_and_fits_ten_thousand_parts() {
    let p = Params::default().with_parts_for(100 << 20, 5_000_000).unwrap();
    assert_eq!(p.part_size(), Some(77 * 65536)); // 5,000,000 rounded up to whole 64 KiB frames
    // 1 TiB at 8 MiB would be 131072 parts: grows to ceil(1 TiB / 10000) in whole frames.
    let p = Params::default().with_parts_for(1 << 40, 8 << 20).unwrap();
    let part = p.part_size().unwrap();
    assert_eq!(part % 65536, 0);
    assert!((1u64 << 40).div_ceil(part) <= 10_000);
    assert!((1u64 << 40).div_ceil(part - 65536) > 10_000, "smallest fitting size");
    assert_eq!(Params::default().with_parts_for(10, 0).unwrap_err(), Error::InvalidParameter);
    assert_eq!(Params::default().with_parts_for(1 << 45, 8 << 20).unwrap_err(), Error::LimitExceeded);
    assert_eq!(Params::default().with_parts_for(1, 6 << 30).unwrap_err(), Error::LimitExceeded);
    assert_eq!(Params::default().part_size(), None);
}

#[test]
fn copy_limits_no_s3_accepts_are_refused_before_planning() {
    let (env, _) = ring().create_envelope(Params::default()).unwrap();
    let text = env.to_text();
    let meta = [("isec", text.as_str()), ("isec-kid", "k1")];
    let bad = [
        CopyLimits::default().with_max_parts(4_000_000_000).with_part_max(1).with_part_min(1),
        CopyLimits::default().with_max_parts(0),
        CopyLimits::default().with_part_max(0).with_part_min(0),
        CopyLimits::default().with_part_min(10).with_part_max(5),
    ];
    for limits in bad {
        let mut req = CopyRequest::new(&meta, 1 << 40);
        req.limits = limits;
        assert_eq!(copy::decide(&req, None).unwrap_err(), Error::InvalidParameter, "{limits:?}");
    }
}

#[test]
fn plans_name_their_sidecar() {
    let (env, _) = ring().create_envelope(Params::default().with_table()).unwrap();
    let text = env.to_text();
    let meta = [("isec", text.as_str()), ("isec-kid", "k1")];
    let mut req = CopyRequest::new(&meta, 0);
    req.source_sidecar = true;
    let plan = copy::decide(&req, None).unwrap();
    assert_eq!(plan.sidecar, Some(Sidecar::Table));
    assert!(plan.copy_sidecar);
    assert_eq!(Sidecar::Table.key("a/b"), "a/b.isec-table");
    assert_eq!(Sidecar::Legacy.key("a/b"), ".s3proxy-internal/a/b.meta");

    let plain = [("owner", "x")];
    let plan = copy::decide(&CopyRequest::new(&plain, 5), None).unwrap();
    assert_eq!((plan.sidecar, plan.copy_sidecar), (None, false));
}

#[test]
fn reencrypt_plans_carry_user_metadata_without_format_keys() {
    let r = ring();
    let (env, _) = r.create_envelope(Params::default()).unwrap();
    let text = env.to_text();
    let meta = [("isec", text.as_str()), ("isec-kid", "k1"), ("owner", "ana")];
    let mut req = CopyRequest::new(&meta, 100);
    req.rotate_dek = true;
    let plan = copy::decide(&req, Some(&r)).unwrap();
    assert_eq!(plan.action, CopyAction::Reencrypt);
    assert_eq!(plan.metadata, Some(vec![("owner".to_string(), "ana".to_string())]));

    req.directive = Directive::Replace;
    let new = [("team", "b"), ("isec", "forged")];
    req.new_metadata = &new;
    let plan = copy::decide(&req, Some(&r)).unwrap();
    assert_eq!(plan.metadata, Some(vec![("team".to_string(), "b".to_string())]));
}

#[test]
fn legacy_seal_sizes_refuse_impossible_lengths() {
    assert_eq!(legacy::split_seals(1 << 60).err(), Some(Error::LimitExceeded));
    assert_eq!(legacy::split_seals(0).unwrap().collect::<Vec<_>>(), vec![28]);
}

#[test]
fn not_encrypted_is_a_stable_format_error() {
    assert_eq!(Error::NotEncrypted.code(), "not_encrypted");
    assert_eq!(Error::NotEncrypted.family().name(), "format");
    assert_eq!(Error::from_code("not_encrypted"), Some(Error::NotEncrypted));
}
