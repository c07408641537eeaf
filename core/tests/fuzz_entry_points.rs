//! The fuzz targets' entry points on seeded random inputs, so that every test run exercises
//! them (the long runs live under fuzz/, see fuzz/README.md).

use isec_core::fuzzing;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn entry_points_hold_their_invariants(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::envelope_decode(&data);
        fuzzing::keyring_file(&data);
        fuzzing::stream_decrypt(&data);
        fuzzing::differential(&data);
        fuzzing::ranged_decrypt(&data);
        fuzzing::segment_table(&data);
        fuzzing::legacy_sidecar(&data);
        fuzzing::copy_decision(&data);
        fuzzing::checkpoint_restore(&data);
        fuzzing::gcm_stream(&data);
        fuzzing::s3_open(&data);
    }
}

#[test]
fn differential_with_targeted_mutations() {
    // ctl byte 0..=255 picks size and layout; then (op, pos lo, pos hi, value) quads.
    for ctl in [0u8, 1, 2, 3, 85, 86, 170, 255] {
        for op in 0u8..4 {
            for pos in [0u16, 5, 11, 12, 27, 28, 4095, 4123, 4124, 4125, 8248, 9000] {
                let p = pos.to_le_bytes();
                fuzzing::differential(&[ctl, op, p[0], p[1], 0x5a]);
            }
        }
    }
}

#[test]
fn regression_copy_decision_huge_plaintext_size() {
    // Found by the copy_decision fuzz target: a 5.5 PB plaintext "object" used to build
    // billions of part ranges before counting them.
    fuzzing::copy_decision(b"5525555255555555\n5\n55\n5\nX\nX555555\n5\n55\n5\nX\nX");
    let plain: [(&str, &str); 0] = [];
    let mut req = isec_core::copy::CopyRequest::new(&plain, 5_525_555_255_555_555);
    req.limits.part_max = 1 << 18;
    req.limits.part_min = 1 << 18;
    assert_eq!(isec_core::copy::decide(&req, None).err(), Some(isec_core::Error::LimitExceeded));
}

#[test]
fn regression_copy_decision_reencrypt_estimate_overflow() {
    // Found by the copy_decision fuzz target (20-minute run): a re-encrypting plan for a
    // source of more than u64::MAX / 2 bytes overflowed its client-bytes estimate.
    fuzzing::copy_decision(include_bytes!("fuzz-regressions/copy_decision_reencrypt_overflow.bin"));
    let plain: [(&str, &str); 0] = [];
    let mut req = isec_core::copy::CopyRequest::new(&plain, u64::MAX);
    req.require_encryption = true;
    req.limits.part_max = 1;
    req.limits.part_min = 1;
    let plan = isec_core::copy::decide(&req, None).unwrap();
    assert_eq!((plan.client_bytes, plan.requests), (u64::MAX, u64::MAX));
}
