//! Keyring states, rewrap, the copy decision (every branch, and each plan executed against an
//! in-memory object store), re-encryption with checkpoints, pause and rate limit, and the
//! bucket scan planner.

use std::collections::HashMap;

use isec_core::copy::{CopyAction, CopyLimits, CopyRequest, Directive, ReencryptReason, decide};
use isec_core::reencrypt::{Checkpoint, IsecSource, RateLimiter, Reencryption, UploadCheckpoint};
use isec_core::scan::{ScanClass, ScanPlanner};
use isec_core::shape::Shape;
use isec_core::{AwsLc, Dek, Envelope, Error, Kek, KeyState, Keyring, Params, SegmentTable, oneshot};

fn kek(n: u8) -> Kek {
    Kek::from_bytes([n; 32])
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A keyring with `old` decrypt-only and `new` active.
fn ring() -> Keyring {
    let mut r = Keyring::new();
    r.add_kek("old", kek(1), KeyState::Active).unwrap();
    r.add_kek("new", kek(2), KeyState::Active).unwrap();
    r
}

fn old_only() -> Keyring {
    let mut r = Keyring::new();
    r.add_kek("old", kek(1), KeyState::Active).unwrap();
    r
}

fn encrypt_under(r: &Keyring, params: Params, pt: &[u8]) -> (Envelope, Vec<u8>) {
    let (env, key) = r.create_envelope(params).unwrap();
    (env, oneshot::encrypt::<AwsLc>(&key, pt).unwrap())
}

#[test]
fn keyring_states() {
    let mut r = ring();
    assert_eq!(r.active_kid().unwrap(), "new");
    assert_eq!(r.state("old"), Some(KeyState::DecryptOnly), "activating a key demotes the previous one");
    let (env_old, ct) = encrypt_under(&old_only(), Params::default(), b"x");
    // Decrypt-only opens but never encrypts.
    assert!(r.open(&env_old).is_ok());
    let mut only_old = Keyring::new();
    only_old.add_kek("old", kek(1), KeyState::DecryptOnly).unwrap();
    assert_eq!(only_old.create_envelope(Params::default()).err(), Some(Error::KeyNotActive));
    assert_eq!(only_old.rewrap(&env_old).err(), Some(Error::KeyNotActive));
    // Disabled refuses.
    r.set_state("old", KeyState::Disabled).unwrap();
    assert_eq!(r.open(&env_old).err(), Some(Error::KeyDisabled));
    // Unknown kid.
    assert_eq!(Keyring::new().open(&env_old).err(), Some(Error::UnknownKid));
    // Minimum version.
    let mut m = ring();
    m.set_min_version(2);
    assert_eq!(m.open(&env_old).err(), Some(Error::VersionRefused));
    // Legacy keys never become active.
    let mut l = ring();
    l.add_legacy_secret_string("AKIA", "secret").unwrap();
    assert_eq!(l.state("AKIA"), Some(KeyState::DecryptOnly));
    assert_eq!(l.set_state("AKIA", KeyState::Active).err(), Some(Error::InvalidParameter));
    // Duplicate kids and bad kids.
    assert_eq!(l.add_kek("new", kek(9), KeyState::DecryptOnly).err(), Some(Error::DuplicateKid));
    assert_eq!(l.add_kek("has space", kek(9), KeyState::DecryptOnly).err(), Some(Error::InvalidParameter));
    let _ = ct;
}

#[test]
fn rewrap_moves_only_the_envelope() {
    let pt = pattern(100_000);
    let (env, ct) = encrypt_under(&old_only(), Params::default(), &pt);
    let r = ring();
    let new_env = r.rewrap(&env).unwrap();
    assert_eq!(new_env.kid(), "new");
    assert_eq!(new_env.header(), env.header(), "header (salt, sizes) unchanged");
    assert_eq!(new_env.to_bytes()[49..81], env.to_bytes()[49..81], "commitment unchanged");
    // Opens under the new key, not the old.
    let mut only_new = Keyring::new();
    only_new.add_kek("new", kek(2), KeyState::Active).unwrap();
    assert_eq!(oneshot::decrypt::<AwsLc>(&only_new.open(&new_env).unwrap(), &ct).unwrap(), pt);
    assert_eq!(old_only().open(&new_env).err(), Some(Error::UnknownKid));
    let mut impostor = Keyring::new();
    impostor.add_kek("new", kek(1), KeyState::Active).unwrap();
    assert_eq!(impostor.open(&new_env).err(), Some(Error::UnwrapFailed));
}

/// An in-memory bucket that executes copy plans the way S3 would.
#[derive(Default)]
struct Store {
    objects: HashMap<String, (Vec<u8>, Vec<(String, String)>)>,
    requests: u64,
}

impl Store {
    fn meta(&self, key: &str) -> Vec<(&str, &str)> {
        self.objects[key].1.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    fn execute(&mut self, src: &str, dst: &str, plan: &isec_core::copy::CopyPlan, replace_meta: &[(&str, &str)]) {
        let (body, meta) = self.objects[src].clone();
        match plan.action {
            CopyAction::Native => {
                self.requests += 1;
                self.objects.insert(dst.into(), (body, meta));
            }
            CopyAction::NativeReplace => {
                self.requests += 1;
                self.objects.insert(dst.into(), (body, plan.metadata.clone().unwrap()));
            }
            CopyAction::PartCopy => {
                self.requests += 2 + plan.ranges.len() as u64;
                let mut out = Vec::new();
                for (s, e) in &plan.ranges {
                    out.extend_from_slice(&body[*s as usize..*e as usize]);
                }
                self.objects.insert(dst.into(), (out, plan.metadata.clone().unwrap()));
            }
            CopyAction::Reencrypt => panic!("executed by the re-encryption job, not here"),
        }
        if plan.copy_sidecar {
            self.requests += 1;
            let side = format!("{src}.isec-table");
            if let Some(s) = self.objects.get(&side).cloned() {
                self.objects.insert(format!("{dst}.isec-table"), s);
            }
        }
        let _ = replace_meta;
    }

    fn read(&self, key: &str, r: &Keyring) -> Result<Vec<u8>, Error> {
        let meta = self.meta(key);
        let env = Envelope::decode_text(isec_core::metadata::get(&meta, "isec").unwrap())?;
        let k = r.open(&env)?;
        let (body, _) = &self.objects[key];
        match self.objects.get(&format!("{key}.isec-table")) {
            Some((t, _)) => oneshot::decrypt_with_table::<AwsLc>(&k, t, body),
            None => oneshot::decrypt::<AwsLc>(&k, body),
        }
    }
}

fn view(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn small_limits() -> CopyLimits {
    CopyLimits::default()
        .with_single_copy_max(100_000)
        .with_part_min(20_000)
        .with_part_max(40_000)
        .with_max_parts(10_000)
        .with_metadata_max(2048)
}

fn put(store: &mut Store, key: &str, env: &Envelope, body: Vec<u8>, extra: &[(&str, &str)]) {
    let mut meta = vec![("isec".to_string(), env.to_text()), ("isec-kid".to_string(), env.kid().to_string())];
    meta.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    store.objects.insert(key.into(), (body, meta));
}

#[test]
fn copy_native_and_replace_keep_objects_readable() {
    let r = ring();
    let pt = pattern(50_000);
    let (env, ct) = encrypt_under(&r, Params::default().with_frame_size(4096).unwrap(), &pt);
    let mut s = Store::default();
    put(&mut s, "a", &env, ct.clone(), &[("owner", "alice")]);

    let owned = s.objects["a"].1.clone();
    let meta = view(&owned);
    let plan = decide(&CopyRequest::new(&meta, ct.len() as u64), Some(&r)).unwrap();
    assert_eq!((plan.action, plan.requests, plan.client_bytes, plan.rewrapped), (CopyAction::Native, 1, 0, false));
    s.execute("a", "b", &plan, &[]);
    assert_eq!(s.read("b", &r).unwrap(), pt);

    // REPLACE: the user's new metadata plus the carried envelope; stale isec values from a HEAD
    // are overwritten, never trusted.
    let new_meta = [("owner", "bob"), ("x-amz-meta-isec", "stale"), ("Content-Note", "n")];
    let mut req = CopyRequest::new(&meta, ct.len() as u64);
    req.directive = Directive::Replace;
    req.new_metadata = &new_meta;
    let plan = decide(&req, Some(&r)).unwrap();
    assert_eq!(plan.action, CopyAction::NativeReplace);
    let m = plan.metadata.clone().unwrap();
    assert!(m.contains(&("owner".into(), "bob".into())));
    assert!(m.contains(&("content-note".into(), "n".into())));
    assert!(m.contains(&("isec".into(), env.to_text())));
    assert_eq!(m.iter().filter(|(k, _)| k == "isec").count(), 1);
    s.execute("a", "c", &plan, &new_meta);
    assert_eq!(s.read("c", &r).unwrap(), pt);

    // Metadata over S3's budget is refused rather than silently dropped.
    let big = "v".repeat(2000);
    let huge = [("big", big.as_str())];
    req.new_metadata = &huge;
    assert_eq!(decide(&req, Some(&r)).err(), Some(Error::LimitExceeded));
}

#[test]
fn copy_cross_kid_rewraps_without_moving_data() {
    let pt = pattern(30_000);
    let (env, ct) = encrypt_under(&old_only(), Params::default(), &pt);
    let mut s = Store::default();
    put(&mut s, "a", &env, ct.clone(), &[]);
    let owned = s.objects["a"].1.clone();
    let meta = view(&owned);
    let r = ring();
    let mut req = CopyRequest::new(&meta, ct.len() as u64);
    req.target_kid = Some("new");
    let plan = decide(&req, Some(&r)).unwrap();
    assert_eq!((plan.action, plan.rewrapped, plan.client_bytes), (CopyAction::NativeReplace, true, 0));
    s.execute("a", "b", &plan, &[]);
    assert_eq!(s.objects["b"].0, ct, "body is byte-identical");
    let mut only_new = Keyring::new();
    only_new.add_kek("new", kek(2), KeyState::Active).unwrap();
    assert_eq!(s.read("b", &only_new).unwrap(), pt);
    // The keyring must be able to do it.
    req.target_kid = Some("old");
    let same = decide(&req, Some(&r)).unwrap();
    assert_eq!(same.action, CopyAction::Native, "target equals source kid: nothing to rewrap");
    let mut r2 = ring();
    r2.add_kek("other", kek(3), KeyState::DecryptOnly).unwrap();
    req.target_kid = Some("other");
    assert_eq!(decide(&req, Some(&r2)).err(), Some(Error::KeyNotActive));
    req.target_kid = Some("new");
    assert_eq!(decide(&req, Some(&Keyring::new())).err(), Some(Error::UnknownKid));
    assert_eq!(decide(&req, None).err(), Some(Error::UnknownKid));
}

fn check_part_ranges(plan: &isec_core::copy::CopyPlan, size: u64, limits: &CopyLimits, boundary: impl Fn(u64) -> bool) {
    assert_eq!(plan.action, CopyAction::PartCopy);
    assert_eq!(plan.ranges.first().unwrap().0, 0);
    assert_eq!(plan.ranges.last().unwrap().1, size);
    for w in plan.ranges.windows(2) {
        assert_eq!(w[0].1, w[1].0, "contiguous");
    }
    for (i, (s, e)) in plan.ranges.iter().enumerate() {
        assert!(e - s <= limits.part_max);
        if i + 1 < plan.ranges.len() {
            assert!(e - s >= limits.part_min, "part {i} too small");
        }
        assert!(boundary(*s), "range start {s} is not a frame boundary");
    }
    assert_eq!(plan.requests, 2 + plan.ranges.len() as u64 + u64::from(plan.copy_sidecar));
    assert_eq!(plan.client_bytes, 0);
}

#[test]
fn copy_above_the_limit_uses_frame_aligned_part_copies() {
    let r = ring();
    let limits = small_limits();
    for params in [
        Params::default().with_frame_size(4096).unwrap(),
        Params::default().with_frame_size(4096).unwrap().with_part_size(3 * 4096).unwrap(),
    ] {
        let pt = pattern(250_001);
        let (env, ct) = encrypt_under(&r, params, &pt);
        let mut s = Store::default();
        put(&mut s, "a", &env, ct.clone(), &[("k", "v")]);
        let owned = s.objects["a"].1.clone();
        let meta = view(&owned);
        let mut req = CopyRequest::new(&meta, ct.len() as u64);
        req.limits = limits;
        let plan = decide(&req, Some(&r)).unwrap();
        check_part_ranges(&plan, ct.len() as u64, &limits, |o| o % (4096 + 28) == 0);
        assert!(plan.metadata.as_ref().unwrap().contains(&("k".into(), "v".into())), "COPY keeps user metadata");
        s.execute("a", "b", &plan, &[]);
        assert_eq!(s.read("b", &r).unwrap(), pt);
    }
}

#[test]
fn copy_table_layout_carries_its_sidecar_and_aligns_parts() {
    let r = ring();
    let (env, key) = r.create_envelope(Params::default().with_frame_size(4096).unwrap().with_table()).unwrap();
    let pt = pattern(130_000);
    let cuts = [(1u32, 0usize, 50_000usize), (2, 50_000, 50_100), (5, 50_100, 130_000)];
    let mut body = Vec::new();
    let mut entries = Vec::new();
    for (n, a, b) in cuts {
        let part = oneshot::encrypt_part::<AwsLc>(&key, n, false, &pt[a..b]).unwrap();
        entries.push((n, (b - a) as u64, part[..7].try_into().unwrap()));
        body.extend(part);
    }
    let table = SegmentTable::new(entries).unwrap();
    let table_bytes = table.encode(&key);
    let shape = Shape::from_table(key.header(), table, body.len() as u64).unwrap();
    let mut s = Store::default();
    put(&mut s, "a", &env, body.clone(), &[]);
    s.objects.insert("a.isec-table".into(), (table_bytes, vec![]));
    let owned = s.objects["a"].1.clone();
    let meta = view(&owned);
    let mut req = CopyRequest::new(&meta, body.len() as u64);
    req.source_sidecar = true;
    req.source_shape = Some(&shape);
    req.limits = small_limits();
    let plan = decide(&req, Some(&r)).unwrap();
    assert!(plan.copy_sidecar);
    let mut boundaries = std::collections::HashSet::new();
    let mut f = shape.first_frame();
    while let Some(fr) = f {
        boundaries.insert(fr.ct_start);
        f = shape.next_frame(&fr);
    }
    check_part_ranges(&plan, body.len() as u64, &small_limits(), |o| boundaries.contains(&o));
    s.execute("a", "b", &plan, &[]);
    assert_eq!(s.read("b", &r).unwrap(), pt);
}

#[test]
fn copy_reencrypts_only_when_asked_or_forced() {
    let r = ring();
    let (env, ct) = encrypt_under(&r, Params::default(), &pattern(1000));
    let meta: Vec<(String, String)> = vec![("isec".into(), env.to_text()), ("isec-kid".into(), "new".into())];
    let meta: Vec<(&str, &str)> = meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut req = CopyRequest::new(&meta, ct.len() as u64);
    req.rotate_dek = true;
    let plan = decide(&req, Some(&r)).unwrap();
    assert_eq!(
        (plan.action, plan.reason, plan.client_bytes),
        (CopyAction::Reencrypt, Some(ReencryptReason::DekRotation), 2 * ct.len() as u64)
    );

    // Plaintext: native unless the destination must be encrypted.
    let plain = [("owner", "x")];
    let p = decide(&CopyRequest::new(&plain, 10), None).unwrap();
    assert_eq!(p.action, CopyAction::Native);
    let mut big = CopyRequest::new(&plain, 250_000);
    big.limits = small_limits();
    let p = decide(&big, None).unwrap();
    check_part_ranges(&p, 250_000, &small_limits(), |_| true);
    big.require_encryption = true;
    assert_eq!(decide(&big, None).unwrap().reason, Some(ReencryptReason::EncryptPlaintext));

    // Unreadable metadata: a byte copy preserves it; anything more is refused.
    let broken = [("isec", "not-an-envelope")];
    assert_eq!(decide(&CopyRequest::new(&broken, 10), None).unwrap().action, CopyAction::Native);
    let mut rep = CopyRequest::new(&broken, 10);
    rep.directive = Directive::Replace;
    assert_eq!(decide(&rep, None).err(), Some(Error::MalformedEnvelope));
}

#[test]
fn copy_legacy_objects() {
    let wrapped = "n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvWoA==";
    let meta =
        [("isec", wrapped), ("isec-kid", "AKIA1"), ("client-etag", "e"), ("plaintext-size", "0"), ("owner", "o")];
    let p = decide(&CopyRequest::new(&meta, 28), None).unwrap();
    assert_eq!((p.action, p.copy_sidecar), (CopyAction::Native, false));
    let mut rep = CopyRequest::new(&meta, 28);
    rep.directive = Directive::Replace;
    let new_meta = [("owner", "p")];
    rep.new_metadata = &new_meta;
    let p = decide(&rep, None).unwrap();
    let m = p.metadata.unwrap();
    for k in ["isec", "isec-kid", "client-etag", "plaintext-size"] {
        assert!(m.iter().any(|(a, _)| a == k), "{k} carried");
    }
    assert!(m.contains(&("owner".into(), "p".into())));
    // Streamed legacy uploads keep everything in an object-keyed sidecar.
    let mut side = CopyRequest::new(&[], 100);
    side.source_sidecar = true;
    assert!(decide(&side, None).unwrap().copy_sidecar);
    // Migration and key changes need new ciphertext.
    let mut mig = CopyRequest::new(&meta, 28);
    mig.migrate_legacy = true;
    assert_eq!(decide(&mig, None).unwrap().reason, Some(ReencryptReason::LegacyMigration));
    let mut kc = CopyRequest::new(&meta, 28);
    kc.target_kid = Some("new");
    assert_eq!(decide(&kc, None).unwrap().reason, Some(ReencryptReason::LegacyKeyChange));
}

fn run_job(
    job: &mut Reencryption<AwsLc>,
    src: &[u8],
    chunk: usize,
    out: &mut Vec<u8>,
    stop_after: Option<usize>,
) -> bool {
    let mut now = 0u64;
    let mut calls = 0;
    loop {
        let at = job.source_offset() as usize;
        if at >= src.len() {
            break;
        }
        let end = (at + chunk).min(src.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        let step = job.update(&src[at..end], &mut buf, now).unwrap();
        let off = job.target_offset() as usize - step.written;
        out.truncate(off);
        out.extend_from_slice(&buf[..step.written]);
        now += 10;
        calls += 1;
        if stop_after.is_some_and(|n| calls >= n) {
            return false;
        }
    }
    let mut buf = vec![0u8; job.finish_len()];
    let n = job.finish(&mut buf).unwrap();
    out.extend_from_slice(&buf[..n]);
    true
}

#[test]
fn reencryption_resumes_at_every_part_boundary_under_fresh_prefixes() {
    let r = old_only();
    let pt = pattern(5 * 4096 + 123);
    let (env, ct) = encrypt_under(&r, Params::default().with_frame_size(4096).unwrap(), &pt);
    let mut r2 = ring();
    r2.set_state("new", KeyState::Active).unwrap();
    let source = || -> Box<dyn isec_core::reencrypt::Source> {
        let shape = Shape::from_ciphertext_len(env.header(), ct.len() as u64).unwrap();
        Box::new(IsecSource::<AwsLc>::new(&r2, &env, shape).unwrap())
    };
    // Parts of two frames: three parts, the last 4096 + 4096 + 123 bytes... here 8192, 8192, 4219.
    let params = Params::default().with_frame_size(4096).unwrap().with_part_size(8192).unwrap();
    let mut job = Reencryption::<AwsLc>::start_with(
        &r2,
        source(),
        params,
        0,
        &Dek::from_bytes([7; 32]),
        [8; 32],
        isec_core::Prefix::from([9; 7]),
    )
    .unwrap();
    let mut full = Vec::new();
    assert!(run_job(&mut job, &ct, 1000, &mut full, None));
    let p = job.progress();
    assert!(p.finished && p.bytes_left == 0 && p.parts_done == 3 && p.parts_total == 3);
    assert_eq!(p.bytes_done, pt.len() as u64);
    let new_env = job.target_envelope().clone();
    assert_eq!(new_env.kid(), "new");
    assert_eq!(new_env.header().part_size(), Some(8192));
    assert_eq!(new_env.header().declared_size, Some(pt.len() as u64));
    let new_key = r2.open(&new_env).unwrap();
    assert_eq!(oneshot::decrypt::<AwsLc>(&new_key, &full).unwrap(), pt);
    assert_ne!(new_env.to_bytes()[49..81], env.to_bytes()[49..81], "a new DEK");
    assert_eq!(job.target_part_len(), 8192 + 2 * 28);

    // Interrupt after every number of calls, checkpoint, resume, finish: the same plaintext,
    // and the part being written when it stopped is encrypted again under a new prefix.
    let mut seen_parts = std::collections::BTreeSet::new();
    for stop in 1..80 {
        let mut job = Reencryption::<AwsLc>::start(&r2, source(), params, 0).unwrap();
        let mut out = Vec::new();
        if run_job(&mut job, &ct, 300, &mut out, Some(stop)) {
            continue;
        }
        let cp = job.checkpoint();
        let parsed = Checkpoint::parse(&cp).unwrap();
        seen_parts.insert(parsed.parts_done);
        drop(job);
        let keep = parsed.target_offset().unwrap() as usize;
        assert_eq!(keep as u64, u64::from(parsed.parts_done) * (8192 + 56));
        let interrupted = out.clone();
        out.truncate(keep);
        let mut resumed = Reencryption::<AwsLc>::resume(&r2, source(), &cp, 0).unwrap();
        assert_eq!(resumed.target_offset(), out.len() as u64);
        assert!(run_job(&mut resumed, &ct, 777, &mut out, None));
        assert_eq!(oneshot::decrypt::<AwsLc>(&new_key_of(&r2, &cp), &out).unwrap(), pt, "resume after {stop} calls");
        if interrupted.len() > keep + 12 {
            assert_ne!(interrupted[keep..keep + 7], out[keep..keep + 7], "a fresh prefix for the redone part");
        }
    }
    assert_eq!(seen_parts, (0..=2).collect(), "a checkpoint taken at every part boundary");

    // Checkpoints are authenticated and bound to their source.
    let mut job = Reencryption::<AwsLc>::start_with(
        &r2,
        source(),
        params,
        0,
        &Dek::from_bytes([7; 32]),
        [8; 32],
        isec_core::Prefix::from([9; 7]),
    )
    .unwrap();
    let mut out = Vec::new();
    run_job(&mut job, &ct, 5000, &mut out, Some(2));
    let mut cp = job.checkpoint();
    let n = cp.len();
    cp[n - 1] ^= 1;
    assert_eq!(Reencryption::<AwsLc>::resume(&r2, source(), &cp, 0).err(), Some(Error::AuthenticationFailed));
    assert_eq!(Reencryption::<AwsLc>::resume(&r2, source(), b"junk", 0).err(), Some(Error::MalformedCheckpoint));
    let (env2, ct2) = encrypt_under(&old_only(), Params::default(), &pattern(10));
    let other: Box<dyn isec_core::reencrypt::Source> = Box::new(
        IsecSource::<AwsLc>::new(&r2, &env2, Shape::from_ciphertext_len(env2.header(), ct2.len() as u64).unwrap())
            .unwrap(),
    );
    assert_eq!(Reencryption::<AwsLc>::resume(&r2, other, &job.checkpoint(), 0).err(), Some(Error::MalformedCheckpoint));
}

/// A bucket job's partial upload (SPEC.md §13.3): the upload id is authenticated with the
/// checkpoint, the parts the caller has stored bound it, and ListParts must show exactly
/// the parts kept.
#[test]
fn upload_checkpoints_bind_the_upload_and_its_stored_parts() {
    let r = old_only();
    let pt = pattern(5 * 4096 + 123);
    let (env, ct) = encrypt_under(&r, Params::default().with_frame_size(4096).unwrap(), &pt);
    let mut r2 = ring();
    r2.set_state("new", KeyState::Active).unwrap();
    let source = || -> Box<dyn isec_core::reencrypt::Source> {
        let shape = Shape::from_ciphertext_len(env.header(), ct.len() as u64).unwrap();
        Box::new(IsecSource::<AwsLc>::new(&r2, &env, shape).unwrap())
    };
    let params = Params::default().with_frame_size(4096).unwrap().with_part_size(8192).unwrap();
    let mut job = Reencryption::<AwsLc>::start(&r2, source(), params, 0).unwrap();
    let mut out = Vec::new();
    // Far enough that the job has written two whole parts.
    assert!(!run_job(&mut job, &ct, 4096 + 28, &mut out, Some(5)));
    assert_eq!(job.progress().parts_done, 2);
    let part = job.target_part_len();
    // The caller has stored only part 1: the checkpoint says one part.
    let cp = job.upload_checkpoint("upload-7", 1).unwrap();
    let parsed = UploadCheckpoint::parse(&cp).unwrap();
    assert_eq!(parsed.upload_id, "upload-7");
    assert_eq!(Checkpoint::parse(&parsed.checkpoint).unwrap().parts_done, 1);
    assert_eq!(job.upload_checkpoint("", 1).err(), Some(Error::InvalidParameter));

    let (mut resumed, id) = Reencryption::<AwsLc>::resume_upload(&r2, source(), &cp, 0).unwrap();
    assert_eq!(id, "upload-7");
    assert_eq!(resumed.target_offset(), part);
    // ListParts: part 1 as written, part 2 (uploaded after the checkpoint) is written again.
    assert_eq!(resumed.kept_parts(&[(1, part), (2, part)]), Ok(1));
    assert_eq!(resumed.kept_parts(&[(2, part)]).err(), Some(Error::MalformedCheckpoint));
    assert_eq!(resumed.kept_parts(&[(1, part - 1)]).err(), Some(Error::MalformedCheckpoint));
    out.truncate(part as usize);
    assert!(run_job(&mut resumed, &ct, 999, &mut out, None));
    assert_eq!(oneshot::decrypt::<AwsLc>(&new_key_of(&r2, &parsed.checkpoint), &out).unwrap(), pt);

    // Another upload id under the same MAC, or any flipped bit, is refused.
    let body_at = 7 + "upload-7".len();
    let mut other = cp.clone();
    other[body_at - 1] = b'8';
    assert_eq!(Reencryption::<AwsLc>::resume_upload(&r2, source(), &other, 0).err(), Some(Error::AuthenticationFailed));
    let mut flipped = cp.clone();
    let n = flipped.len();
    flipped[n - 1] ^= 1;
    assert_eq!(
        Reencryption::<AwsLc>::resume_upload(&r2, source(), &flipped, 0).err(),
        Some(Error::AuthenticationFailed)
    );
    assert_eq!(UploadCheckpoint::parse(&cp[..n - 1]).err(), Some(Error::MalformedCheckpoint));
    // A plain checkpoint is not an upload checkpoint, nor the other way round.
    assert_eq!(UploadCheckpoint::parse(&job.checkpoint()).err(), Some(Error::MalformedCheckpoint));
    assert_eq!(Reencryption::<AwsLc>::resume(&r2, source(), &cp, 0).err(), Some(Error::MalformedCheckpoint));

    // Finished: every part is kept, the last one shorter.
    let mut done = Reencryption::<AwsLc>::start(&r2, source(), params, 0).unwrap();
    let mut all = Vec::new();
    assert!(run_job(&mut done, &ct, 5000, &mut all, None));
    let cp = done.upload_checkpoint("u", u32::MAX).unwrap();
    let (fin, _) = Reencryption::<AwsLc>::resume_upload(&r2, source(), &cp, 0).unwrap();
    let last = all.len() as u64 - 2 * part;
    assert_eq!(fin.kept_parts(&[(1, part), (2, part), (3, last)]), Ok(3));
    assert_eq!(fin.kept_parts(&[(1, part), (2, part), (3, part)]).err(), Some(Error::MalformedCheckpoint));
}

fn new_key_of(r: &Keyring, cp: &[u8]) -> isec_core::ObjectKey {
    r.open(&Envelope::decode(&Checkpoint::parse(cp).unwrap().envelope).unwrap()).unwrap()
}

#[test]
fn reencryption_pauses_and_keeps_its_rate() {
    let r = ring();
    let pt = pattern(2_000_000);
    let (env, ct) = encrypt_under(&r, Params::default().with_frame_size(4096).unwrap(), &pt);
    let shape = Shape::from_ciphertext_len(env.header(), ct.len() as u64).unwrap();
    let src = Box::new(IsecSource::<AwsLc>::new(&r, &env, shape).unwrap());
    let rate = 100_000u64; // bytes per second
    let mut job =
        Reencryption::<AwsLc>::start(&r, src, Params::default().with_frame_size(4096).unwrap(), rate).unwrap();
    job.pause();
    let mut buf = vec![0u8; job.update_len(10_000)];
    let s = job.update(&ct[..10_000], &mut buf, 0).unwrap();
    assert_eq!(s.consumed, 0, "paused");
    assert!(job.progress().paused);
    job.unpause();
    // Simulate 10 seconds in 7 ms ticks, always offering 64 KiB.
    let mut now = 0;
    let mut consumed = 0u64;
    while now <= 10_000 {
        let at = job.source_offset() as usize;
        let end = (at + 65_536).min(ct.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        let s = job.update(&ct[at..end], &mut buf, now).unwrap();
        consumed += s.consumed as u64;
        now += 7;
    }
    let expected = rate * 10;
    let err = (consumed as f64 - expected as f64).abs() / expected as f64;
    assert!(err < 0.05, "consumed {consumed} bytes in 10 s at {rate} B/s: {:.1}% off", err * 100.0);
    let p = job.progress();
    assert!(!p.finished && p.bytes_left > 0 && p.bytes_done > 0);
    assert_eq!(p.bytes_done + p.bytes_left, pt.len() as u64);
}

#[test]
fn rate_limiter_tracks_its_rate_over_simulated_time() {
    for (rate, tick) in [(1_000_000u64, 1u64), (50_000_000, 13), (3_000, 250)] {
        let mut l = RateLimiter::new(rate, 1);
        let mut got = 0u64;
        let mut now = 0;
        while now < 100_000 {
            got += l.take(now, u64::MAX / 4);
            now += tick;
        }
        let expected = rate * 100;
        let err = (got as f64 - expected as f64).abs() / expected as f64;
        assert!(err < 0.05, "rate {rate}, tick {tick}: {got} vs {expected}");
    }
}

#[test]
fn scan_planner_counts_what_is_left() {
    let r = ring();
    let (env_new, _) = encrypt_under(&r, Params::default(), b"a");
    let (env_old, _) = encrypt_under(&old_only(), Params::default(), b"a");
    let mut r3 = ring();
    r3.add_kek("gone", kek(5), KeyState::Active).unwrap();
    let (env_gone, _) = encrypt_under(&r3, Params::default(), b"a");
    let mut ring_scan = ring();
    ring_scan.add_kek("gone", kek(5), KeyState::Disabled).unwrap();
    let mut p = ScanPlanner::new(&ring_scan);
    let t_new = env_new.to_text();
    let t_old = env_old.to_text();
    let t_gone = env_gone.to_text();
    let legacy = "n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvWoA==";
    assert_eq!(p.add("a", &[("isec", &t_new)], 100, false), ScanClass::Current);
    assert_eq!(p.add("b", &[("isec", &t_old)], 200, false), ScanClass::NeedsRewrap);
    assert_eq!(p.add("c", &[("isec", &t_old)], 300, false), ScanClass::NeedsRewrap);
    assert_eq!(p.add("d", &[("isec", &t_gone)], 400, false), ScanClass::NeedsReencrypt);
    assert_eq!(p.add("e", &[("isec", legacy), ("isec-kid", "AKIA")], 500, false), ScanClass::NeedsReencrypt);
    assert_eq!(p.add("f", &[], 600, true), ScanClass::NeedsReencrypt);
    assert_eq!(p.add("g", &[("owner", "x")], 700, false), ScanClass::Plaintext);
    assert_eq!(p.add("h", &[("isec", "garbage")], 800, false), ScanClass::Unreadable);
    assert_eq!(p.add(".s3proxy-internal/f.meta", &[], 10, false), ScanClass::Sidecar);
    assert_eq!(p.tally(ScanClass::NeedsRewrap).objects, 2);
    assert_eq!(p.tally(ScanClass::NeedsRewrap).bytes, 500);
    assert_eq!(p.remaining().objects, 5);
    assert_eq!(p.remaining().bytes, 200 + 300 + 400 + 500 + 600);
    let old_rows: Vec<_> = p.by_kid().filter(|(k, _, _)| *k == "old").collect();
    assert_eq!(old_rows.len(), 1);
    assert_eq!(old_rows[0].2.objects, 2);
}

/// Declared lengths that run past the record (up to u32::MAX) are malformed, not a panic.
#[test]
fn upload_checkpoint_lengths_past_the_record_are_refused() {
    for cp_len in [u32::MAX, u32::MAX - 3, 1 << 31, 10] {
        let mut b = b"ISUP\x01\x00\x01u".to_vec();
        b.extend_from_slice(&cp_len.to_be_bytes());
        b.extend_from_slice(&[0; 40]);
        assert_eq!(UploadCheckpoint::parse(&b).err(), Some(Error::MalformedCheckpoint), "{cp_len}");
    }
    for n in 0..12 {
        assert_eq!(
            UploadCheckpoint::parse(&b"ISUP\x01\x00\x01u\xff\xff\xff\xff"[..n]).err(),
            Some(Error::MalformedCheckpoint)
        );
    }
}
