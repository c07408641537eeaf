//! Keyring operations as tasks: a key the caller answers for stops the task at a request,
//! the answer is checked, and the synchronous path is the same task run to the end.

use isec_core::keyring::{KeyOp, KeyOutput, KeyState, KeyStep, KeyTask};
use isec_core::{Envelope, Error, Kek, Keyring, LayoutRequest, Params, WrapAlg};

/// A toy KMS: the wrapped form of a DEK is the DEK xor 0x5a, plus one marker byte.
fn kms(req_input: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = req_input.iter().map(|b| b ^ 0x5a).collect();
    v.push(0xee);
    v
}

fn unkms(wrapped: &[u8]) -> Vec<u8> {
    wrapped[..wrapped.len() - 1].iter().map(|b| b ^ 0x5a).collect()
}

/// Drives a task the way an async binding does, answering with the toy KMS.
fn drive(ring: &Keyring, mut task: KeyTask) -> Result<KeyOutput, Error> {
    loop {
        match task.step(ring)? {
            KeyStep::Ready(out) => return Ok(out),
            KeyStep::Need(req) => {
                assert_eq!(req.kid(), "kms");
                let out = match req.op() {
                    KeyOp::Wrap => kms(req.input()),
                    KeyOp::Unwrap => unkms(req.input()),
                };
                task.answer(&out)?;
            }
        }
    }
}

fn ring() -> Keyring {
    let mut r = Keyring::new();
    r.add_external_kid("kms", KeyState::Active).unwrap();
    r
}

#[test]
fn external_create_open_and_rewrap_through_requests() {
    let mut r = ring();
    let (env, key) = drive(&r, r.begin_create(Params::default()).unwrap()).unwrap().created().unwrap();
    assert_eq!(env.wrap_alg(), WrapAlg::External);
    assert_eq!(env.kid(), "kms");
    let opened = drive(&r, r.begin_open(&env).unwrap()).unwrap().key().unwrap();
    assert_eq!(opened.segment_key(0), key.segment_key(0));
    // The synchronous path is the same task: it stops at the request and says so.
    assert_eq!(r.open(&env).err(), Some(Error::ExternalWrapperFailed));
    assert!(r.keys()[0].external);
    // To a local key and back: one unwrap answered by the caller, one local wrap.
    r.add_kek("local", Kek::from_bytes([3; 32]), KeyState::Active).unwrap();
    let local = drive(&r, r.begin_rewrap(&env, None).unwrap()).unwrap().envelope().unwrap();
    assert_eq!(local.kid(), "local");
    assert_eq!(r.open(&local).unwrap().segment_key(0), key.segment_key(0));
    r.set_state("kms", KeyState::Active).unwrap();
    let back = drive(&r, r.begin_rewrap(&local, Some("kms")).unwrap()).unwrap().envelope().unwrap();
    assert_eq!(drive(&r, r.begin_open(&back).unwrap()).unwrap().key().unwrap().segment_key(0), key.segment_key(0));
    assert_eq!(r.begin_rewrap(&local, Some("local")).err(), Some(Error::KeyNotActive));
}

#[test]
fn every_create_wraps_its_own_dek_and_an_answer_completes_only_its_task() {
    let r = ring();
    let mut a = r.begin_create(Params::default()).unwrap();
    let mut b = r.begin_create(Params::default()).unwrap();
    let (KeyStep::Need(ra), KeyStep::Need(rb)) = (a.step(&r).unwrap(), b.step(&r).unwrap()) else {
        panic!("external keys stop at a request")
    };
    assert_ne!(ra.input(), rb.input(), "two creates, two DEKs");
    // b's answer given to a: a's envelope then commits to a's DEK but wraps b's, so it
    // cannot be opened; its own answer opens.
    a.answer(&kms(rb.input())).unwrap();
    let KeyStep::Ready(out) = a.step(&r).unwrap() else { panic!() };
    let (crossed, _) = out.created().unwrap();
    assert_eq!(drive(&r, r.begin_open(&crossed).unwrap()).err(), Some(Error::CommitmentMismatch));
    b.answer(&kms(rb.input())).unwrap();
    let KeyStep::Ready(out) = b.step(&r).unwrap() else { panic!() };
    let (env, key) = out.created().unwrap();
    assert_eq!(drive(&r, r.begin_open(&env).unwrap()).unwrap().key().unwrap().segment_key(0), key.segment_key(0));
}

#[test]
fn answers_are_checked_and_a_task_runs_once() {
    let r = ring();
    let (env, _) = drive(&r, r.begin_create(Params::default()).unwrap()).unwrap().created().unwrap();
    let mut t = r.begin_open(&env).unwrap();
    assert!(matches!(t.step(&r).unwrap(), KeyStep::Need(ref q) if q.op() == KeyOp::Unwrap));
    assert_eq!(t.answer(&[0; 31]).err(), Some(Error::ExternalWrapperFailed));
    assert_eq!(t.step(&r).err(), Some(Error::InvalidParameter), "a failed task is spent");
    let mut t = r.begin_open(&env).unwrap();
    let _ = t.step(&r).unwrap();
    assert_eq!(t.answer(&[7; 32]).err(), Some(Error::CommitmentMismatch));
    let mut t = r.begin_create(Params::default()).unwrap();
    let _ = t.step(&r).unwrap();
    assert_eq!(t.answer(&[]).err(), Some(Error::ExternalWrapperFailed));
    let mut t = r.begin_create(Params::default()).unwrap();
    let _ = t.step(&r).unwrap();
    assert_eq!(t.answer(&[1; 201]).err(), Some(Error::ExternalWrapperFailed), "over the wrapped-key limit");
    let mut t = r.begin_create(Params::default()).unwrap();
    let _ = t.step(&r).unwrap();
    t.answer(&[1; 40]).unwrap();
    assert!(matches!(t.step(&r).unwrap(), KeyStep::Ready(_)));
    assert_eq!(t.step(&r).err(), Some(Error::InvalidParameter));
    assert_eq!(t.answer(&[1; 40]).err(), Some(Error::InvalidParameter));
}

#[test]
fn state_checks_come_first_and_debug_shows_no_key_bytes() {
    let mut r = ring();
    r.set_state("kms", KeyState::Disabled).unwrap();
    let env = {
        let r2 = ring();
        drive(&r2, r2.begin_create(Params::default()).unwrap()).unwrap().created().unwrap().0
    };
    let mut t = r.begin_open(&env).unwrap();
    assert_eq!(t.step(&r).err(), Some(Error::KeyDisabled));
    assert_eq!(r.begin_create(Params::default()).err(), Some(Error::KeyNotActive));
    let mut local = Keyring::new();
    local.add_kek("kms", Kek::from_bytes([1; 32]), KeyState::Active).unwrap();
    assert_eq!(local.open(&env).err(), Some(Error::UnsupportedSuite), "an external envelope under a local kid");
    let r = ring();
    let mut t = r.begin_create(Params::default()).unwrap();
    let KeyStep::Need(req) = t.step(&r).unwrap() else { panic!() };
    let dek = req.input().to_vec();
    let shown = format!("{req:?} {t:?}");
    assert!(shown.contains("wrap") && shown.contains("32 bytes"), "{shown}");
    assert!(!shown.contains(&format!("{:?}", &dek[..4]).trim_end_matches(']').to_string()), "{shown}");
    assert!(shown.len() < 80, "{shown}");
    let _ = Envelope::decode(&env.to_bytes()).unwrap();
}

#[test]
fn one_params_constructor_for_every_layout() {
    let p = Params::new(LayoutRequest::FitParts { size: 1 << 30, preferred: 5 << 20 }, Some(1 << 16), Some(1 << 30));
    let p = p.unwrap();
    assert_eq!(p.part_size(), Some(Params::default().with_parts_for(1 << 30, 5 << 20).unwrap().part_size().unwrap()));
    assert_eq!(p.declared_size, Some(1 << 30));
    assert_eq!(Params::new(LayoutRequest::Parts(1 << 20), None, None).unwrap().part_size(), Some(1 << 20));
    assert_eq!(Params::new(LayoutRequest::Parts(1000), None, None).err(), Some(Error::InvalidParameter));
    assert_eq!(Params::new(LayoutRequest::Table, None, None).unwrap(), Params::default().with_table());
    assert_eq!(Params::new(LayoutRequest::Single, Some(3000), None).err(), Some(Error::InvalidFrameSize));
    assert_eq!(LayoutRequest::from_options(Some(1 << 20), None, true).err(), Some(Error::InvalidParameter));
    assert_eq!(LayoutRequest::from_options(Some(1 << 20), Some((1, 1)), false).err(), Some(Error::InvalidParameter));
    assert_eq!(LayoutRequest::from_options(None, None, false), Ok(LayoutRequest::Single));
    assert_eq!(
        LayoutRequest::from_options(None, Some((9, 4096)), false),
        Ok(LayoutRequest::FitParts { size: 9, preferred: 4096 })
    );
}

#[test]
fn a_copy_that_changes_the_key_takes_the_rewrap_resolved_beforehand() {
    use isec_core::copy::{self, CopyRequest};
    let mut r = ring();
    let (env, _) = drive(&r, r.begin_create(Params::default()).unwrap()).unwrap().created().unwrap();
    r.add_kek("new", Kek::from_bytes([5; 32]), KeyState::Active).unwrap();
    let text = env.to_text();
    let meta = [("isec", text.as_str()), ("isec-kid", "kms")];
    let mut req = CopyRequest::new(&meta, 16 + 28);
    assert!(copy::pending_rewrap(&req).is_none(), "no key change");
    req.target_kid = Some("new");
    assert_eq!(copy::decide(&req, Some(&r)).err(), Some(Error::ExternalWrapperFailed));
    let (source, to) = copy::pending_rewrap(&req).unwrap();
    assert_eq!((source.kid(), to), ("kms", "new"));
    let moved = drive(&r, r.begin_rewrap(&source, Some(to)).unwrap()).unwrap().envelope().unwrap();
    req.rewrapped = Some(&moved);
    let plan = copy::decide(&req, Some(&r)).unwrap();
    assert!(plan.rewrapped);
    let other = r.create_envelope(Params::default()).unwrap().0;
    req.rewrapped = Some(&other);
    assert_eq!(copy::decide(&req, Some(&r)).err(), Some(Error::InvalidParameter), "another object's envelope");
}
