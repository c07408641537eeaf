//! The `*_checked` one-shot calls: same bytes as the plain calls, stopped by their check
//! between steps with the check's own error and no output.

use isec_core::{AwsLc, Dek, Envelope, Error, Kek, Params, oneshot};

#[derive(Debug, PartialEq)]
enum Stop {
    Stopped,
    Core(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Core(e)
    }
}

fn key(part_size: Option<u64>) -> isec_core::ObjectKey {
    let mut params = Params::default();
    if let Some(p) = part_size {
        params = params.with_part_size(p).unwrap();
    }
    Envelope::create_with(&Kek::from_bytes([7u8; 32]), "k", params, &Dek::from_bytes([9u8; 32]), [3u8; 32]).unwrap().1
}

#[test]
fn checked_calls_round_trip_and_count_their_steps() {
    let pt: Vec<u8> = (0..oneshot::STEP * 2 + 5).map(|i| (i % 251) as u8).collect();
    for part_size in [None, Some(3 << 20)] {
        let k = key(part_size);
        let mut calls = 0;
        let ct = oneshot::encrypt_checked::<AwsLc, Stop>(&k, &pt, &mut || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert!(calls >= 3);
        assert_eq!(oneshot::decrypt::<AwsLc>(&k, &ct).unwrap(), pt);
        assert_eq!(oneshot::decrypt_checked::<AwsLc, Stop>(&k, &ct, &mut || Ok(())).unwrap(), pt);
    }
}

#[test]
fn a_failing_check_stops_with_its_error() {
    let k = key(None);
    let pt = vec![1u8; oneshot::STEP + 1];
    let ct = oneshot::encrypt::<AwsLc>(&k, &pt).unwrap();
    let mut n = 0;
    let mut second = || {
        n += 1;
        if n > 1 { Err(Stop::Stopped) } else { Ok(()) }
    };
    assert_eq!(oneshot::decrypt_checked::<AwsLc, Stop>(&k, &ct, &mut second), Err(Stop::Stopped));
    assert_eq!(oneshot::encrypt_checked::<AwsLc, Stop>(&k, &pt, &mut || Err(Stop::Stopped)), Err(Stop::Stopped));
    let bad = &ct[..ct.len() - 1];
    assert!(matches!(oneshot::decrypt_checked::<AwsLc, Stop>(&k, bad, &mut || Ok(())), Err(Stop::Core(_))));
}
