//! The bucket job driven against a simulated bucket: answers in random order, crashes with
//! the state saved at random moments (and tasks that landed on the server while their answer
//! was lost), transient and permanent failures, writers that overwrite and delete objects
//! underneath, pause, rate limits on a simulated clock, and the state's size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::cast_possible_truncation)]

use std::collections::BTreeMap;

use isec_core::job::{Action, BucketJob, Entry, Head, JobKind, JobOptions, Limits, Outcome, Read, Task, TaskKind};
use isec_core::metadata::{self, ObjectFormat};
use isec_core::{DefaultCipher, Envelope, Kek, KeyState, Keyring, Params, oneshot};

const OLD: &str = "kek-old";
const NEW: &str = "kek-new";

/// xorshift64*: deterministic randomness for the simulation.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
struct Obj {
    meta: Vec<(String, String)>,
    etag: u64,
    size: u64,
    /// Bumped whenever the job re-encrypts it (a new DEK).
    generation: u32,
    /// Written by the simulated application, not the job.
    by_writer: bool,
    /// The body when it matters (isec frames that lost their metadata); otherwise text.
    body: Option<Vec<u8>>,
}

struct Bucket {
    objects: BTreeMap<String, Obj>,
    next_etag: u64,
    job_ring: Keyring,
    old_text: String,
}

fn keyrings() -> (Keyring, Keyring) {
    let (old, new) = (Kek::from_bytes([1; 32]), Kek::from_bytes([2; 32]));
    let mut writer = Keyring::new();
    writer.add_kek(OLD, old.clone(), KeyState::Active).unwrap();
    let mut job = Keyring::new();
    job.add_kek(OLD, old, KeyState::DecryptOnly).unwrap();
    job.add_kek(NEW, new, KeyState::Active).unwrap();
    (writer, job)
}

/// The key an object is under (`legacy` for a previous-proxy object, its sidecar counted).
fn kid_of(bucket: &Bucket, key: &str) -> Option<String> {
    let o = bucket.objects.get(key)?;
    let meta: Vec<(&str, &str)> = o.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let sidecar = bucket.objects.contains_key(&metadata::legacy_sidecar_key(key));
    match metadata::classify(&meta, sidecar && !key.starts_with(".s3proxy-internal/")) {
        ObjectFormat::Isec(e) => Some(e.kid().to_string()),
        ObjectFormat::Legacy { .. } => Some("legacy".into()),
        _ => None,
    }
}

impl Bucket {
    /// `n` objects: isec under the old key (most), under the new key, plaintext, previous-
    /// proxy objects (inline metadata and sidecar-only, with their sidecars), table sidecars.
    fn new(n: usize, rng: &mut Rng) -> Self {
        let (writer, job_ring) = keyrings();
        let (env, _) = writer.create_envelope(Params::default()).unwrap();
        let old_text = env.to_text();
        let (env_new, _) = job_ring.create_envelope(Params::default()).unwrap();
        let mut b = Bucket { objects: BTreeMap::new(), next_etag: 1, job_ring, old_text };
        for i in 0..n {
            let key = format!("data/{:06}-{}", i, rng.below(1000));
            let size = 1 + rng.below(100_000);
            if i % 20 == 11 {
                // A copy that lost its metadata (a multipart copy by another tool): isec
                // frames, no envelope, sometimes the tool's own metadata.
                let (_, okey) = writer.create_envelope(Params::default()).unwrap();
                let plaintext = vec![b'p'; 5_000 + rng.below(200_000) as usize];
                let body = oneshot::encrypt::<DefaultCipher>(&okey, &plaintext).unwrap();
                let meta = if i % 40 == 11 { Vec::new() } else { vec![("mtime".into(), "1".into())] };
                b.put(&key, meta, body.len() as u64, false);
                b.objects.get_mut(&key).unwrap().body = Some(body);
                continue;
            }
            let meta: Vec<(String, String)> = match i % 10 {
                0 => metadata::object_metadata(&[("owner", "a")], &env_new),
                1 => vec![("owner".into(), "b".into())],
                2 => vec![("s3proxy-format".into(), "v2".into())],
                3 => {
                    b.put(&metadata::legacy_sidecar_key(&key), Vec::new(), 200, false);
                    Vec::new()
                }
                4 => {
                    b.put(&format!("{key}.isec-table"), Vec::new(), 64, false);
                    b.old_meta()
                }
                _ => b.old_meta(),
            };
            b.put(&key, meta, size, false);
        }
        b
    }

    fn old_meta(&self) -> Vec<(String, String)> {
        let env = Envelope::decode_text(&self.old_text).unwrap();
        metadata::object_metadata(&[("owner", "x")], &env)
    }

    fn put(&mut self, key: &str, meta: Vec<(String, String)>, size: u64, by_writer: bool) {
        self.next_etag += 1;
        let generation = self.objects.get(key).map_or(0, |o| o.generation);
        self.objects.insert(key.into(), Obj { meta, etag: self.next_etag, size, generation, by_writer, body: None });
    }

    /// A ranged read pinned to `etag`, as the S3 helpers send it.
    fn read(&self, key: &str, etag: &str, ranges: &[(u64, u64)]) -> Read {
        let Some(o) = self.objects.get(key).filter(|o| o.etag.to_string() == etag) else { return Read::Changed };
        let byte = |i: u64| o.body.as_ref().map_or(b"plain text "[(i % 11) as usize], |b| b[i as usize]);
        Read::Found(ranges.iter().map(|&(a, z)| (a..z.min(o.size)).map(byte).collect()).collect())
    }

    fn stripped(&self) -> u64 {
        self.objects.values().filter(|o| o.body.is_some()).count() as u64
    }

    fn list(&self, prefix: &str, after: Option<&str>, max: u32) -> (Vec<Entry>, bool) {
        let mut out = Vec::new();
        let mut it = self
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .map(|(k, o)| Entry::new(k, o.size));
        for e in it.by_ref().take(max as usize) {
            out.push(e);
        }
        (out, it.next().is_some())
    }

    fn head(&self, key: &str) -> Head {
        match self.objects.get(key) {
            Some(o) => Head::Found { metadata: o.meta.clone(), etag: o.etag.to_string(), size: o.size },
            None => Head::Missing,
        }
    }

    /// Runs a task as the S3 helpers would: pinned to its ETag.
    fn run(&mut self, t: &Task) -> Outcome {
        let Some(o) = self.objects.get(&t.key).cloned() else { return Outcome::Changed };
        if o.etag.to_string() != t.etag {
            return Outcome::Changed;
        }
        let meta: Vec<(&str, &str)> = o.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let user = metadata::user_metadata(&meta);
        let user: Vec<(&str, &str)> = user.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match t.kind {
            TaskKind::Rewrap => {
                let ObjectFormat::Isec(env) = metadata::classify(&meta, false) else {
                    panic!("rewrap of a non-isec object")
                };
                let new = self.job_ring.rewrap(&env).unwrap();
                // A self-copy keeps the body, and (single part) its ETag.
                self.objects.get_mut(&t.key).unwrap().meta = metadata::object_metadata(&user, &new);
                Outcome::Done { moved: 0 }
            }
            TaskKind::Reencrypt | TaskKind::Migrate => {
                let (env, _) = self.job_ring.create_envelope(Params::default()).unwrap();
                self.put(&t.key, metadata::object_metadata(&user, &env), o.size, o.by_writer);
                self.objects.get_mut(&t.key).unwrap().generation += 1;
                if t.kind == TaskKind::Migrate {
                    self.objects.remove(&metadata::legacy_sidecar_key(&t.key));
                }
                Outcome::Done { moved: o.size }
            }
        }
    }
}

/// One request out: what it was, to be answered later in any order.
enum Out {
    List(Option<String>, u32),
    Head(u64, String),
    Read(u64, String, String, Vec<(u64, u64)>),
    Run(Task),
}

struct Driver {
    now: u64,
    out: Vec<Out>,
    rng: Rng,
    /// Percent of HEADs and tasks that fail with a retryable error.
    flaky: u64,
    /// Percent of steps at which a writer overwrites or deletes a random object.
    writers: u64,
    /// Keys whose task always fails for good.
    broken: Vec<String>,
}

impl Driver {
    fn new(seed: u64) -> Self {
        Driver { now: 1_000, out: Vec::new(), rng: Rng(seed), flaky: 0, writers: 0, broken: Vec::new() }
    }

    /// Polls until the job has nothing more to hand out now.
    fn pump(&mut self, job: &mut BucketJob) -> Option<Action> {
        loop {
            match job.poll(self.now) {
                Action::List(r) => self.out.push(Out::List(r.start_after.clone(), r.max_keys)),
                Action::Head { ticket, key } => self.out.push(Out::Head(ticket, key)),
                Action::Read { ticket, key, etag, ranges } => self.out.push(Out::Read(ticket, key, etag, ranges)),
                Action::Run(t) => self.out.push(Out::Run(t)),
                other => return Some(other),
            }
        }
    }

    /// Answers one random outstanding request. Returns false when none was out.
    fn answer_one(&mut self, job: &mut BucketJob, bucket: &mut Bucket) -> bool {
        if self.out.is_empty() {
            return false;
        }
        let i = self.rng.below(self.out.len() as u64) as usize;
        let req = self.out.swap_remove(i);
        self.now += self.rng.below(5);
        match req {
            Out::List(after, max) => {
                let (page, more) = bucket.list(job.prefix(), after.as_deref(), max);
                job.listed(page, more).unwrap();
            }
            Out::Head(ticket, key) => {
                let head = if self.rng.chance(self.flaky) {
                    Head::Failed { code: "SlowDown".into(), retryable: true }
                } else {
                    bucket.head(&key)
                };
                job.headed(ticket, self.now, head).unwrap();
            }
            Out::Read(ticket, key, etag, ranges) => {
                let read = if self.rng.chance(self.flaky) {
                    Read::Failed { code: "SlowDown".into(), retryable: true }
                } else {
                    bucket.read(&key, &etag, &ranges)
                };
                job.read(ticket, self.now, read).unwrap();
            }
            Out::Run(t) => {
                let outcome = if self.broken.contains(&t.key) {
                    Outcome::Failed { code: "AccessDenied".into(), retryable: false }
                } else if self.rng.chance(self.flaky) {
                    // Half of the failures land on the server with their answer lost.
                    if self.rng.chance(50) {
                        bucket.run(&t);
                    }
                    Outcome::Failed { code: "InternalError".into(), retryable: true }
                } else {
                    bucket.run(&t)
                };
                job.finished(t.ticket, self.now, outcome).unwrap();
            }
        }
        if self.rng.chance(self.writers) {
            self.write(bucket);
        }
        true
    }

    /// Another client: overwrites an object under the old key (a stale writer), writes a
    /// new one, or deletes one.
    fn write(&mut self, bucket: &mut Bucket) {
        let keys: Vec<String> = bucket.objects.keys().filter(|k| k.starts_with("data/")).cloned().collect();
        let key = keys[self.rng.below(keys.len() as u64) as usize].clone();
        if key.ends_with(".isec-table") {
            return;
        }
        match self.rng.below(3) {
            0 => {
                let meta = bucket.old_meta();
                bucket.put(&key, meta, 5, true);
            }
            1 => {
                let meta = bucket.old_meta();
                bucket.put(&format!("{key}-new"), meta, 7, true);
            }
            _ => {
                bucket.objects.remove(&key);
            }
        }
    }

    /// Runs the job to its end (or `limit` answers), advancing the clock at waits.
    fn run(&mut self, job: &mut BucketJob, bucket: &mut Bucket, limit: usize) -> Action {
        for _ in 0..limit {
            match self.pump(job) {
                Some(Action::Wait { until_ms }) if self.out.is_empty() => self.now = until_ms,
                Some(a @ (Action::Done | Action::Paused | Action::Stopped { .. })) => return a,
                _ => {
                    assert!(self.answer_one(job, bucket), "the job waits for an answer but nothing is out");
                }
            }
        }
        Action::Idle
    }
}

fn under(bucket: &Bucket, kid: &str) -> usize {
    bucket.objects.keys().filter(|k| kid_of(bucket, k).as_deref() == Some(kid)).count()
}

#[test]
fn rotate_rewraps_every_old_key_object_and_counts_every_listed_one() {
    let mut rng = Rng(7);
    let mut bucket = Bucket::new(600, &mut rng);
    let total = bucket.objects.len() as u64;
    let old = under(&bucket, OLD) as u64;
    let mut job =
        BucketJob::new(JobKind::Rotate, "b", "", &bucket.job_ring, JobOptions::new(Limits::new(16)).with_window(100));
    let mut d = Driver::new(1);
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    let p = job.progress();
    assert_eq!(under(&bucket, OLD), 0);
    assert_eq!(p.listed.objects, total);
    assert_eq!(p.done.objects, old);
    assert_eq!(p.done.objects + p.skipped.objects + p.failed.objects, total);
    assert_eq!(p.left().objects, 0);
    assert_eq!(p.moved_bytes, 0, "a rewrap moves no object bytes");
    assert_eq!(p.done_by_task["rewrap"].objects, old);
    assert_eq!(p.by_kid[OLD]["needs_rewrap"].objects, old);
    assert!(p.skipped_by_reason["plaintext"].objects > 0);
    assert!(p.skipped_by_reason["sidecar"].objects > 0);
    let stripped = bucket.stripped();
    assert!(stripped > 0);
    assert_eq!(p.skipped_by_reason["stripped_isec"].objects, stripped, "a rotation cannot take them");
    assert_eq!(p.by_class["stripped_isec"].objects, stripped);
    assert!(p.skipped_by_reason["needs_reencrypt"].objects > 0, "previous-proxy objects need a re-encryption");
    assert!(p.listing_complete);

    // A scan afterwards finds nothing left on the old key, and changes nothing.
    let before: Vec<u64> = bucket.objects.values().map(|o| o.etag).collect();
    let mut scan = BucketJob::new(JobKind::Scan, "b", "", &bucket.job_ring, JobOptions::default());
    assert_eq!(Driver::new(2).run(&mut scan, &mut bucket, 1_000_000), Action::Done);
    assert!(!scan.progress().by_class.contains_key("needs_rewrap"));
    assert_eq!(scan.progress().by_class["stripped_isec"].objects, stripped);
    assert_eq!(scan.progress().skipped_by_reason["stripped_isec"].objects, stripped);
    assert_eq!(
        scan.progress().skipped_by_reason["scanned"].objects,
        total - scan.progress().skipped_by_reason["sidecar"].objects - stripped
    );
    assert_eq!(before, bucket.objects.values().map(|o| o.etag).collect::<Vec<_>>());
}

#[test]
fn a_dry_run_plans_without_a_single_task() {
    let mut rng = Rng(8);
    let mut bucket = Bucket::new(200, &mut rng);
    let old = under(&bucket, OLD) as u64;
    let options = JobOptions::new(Limits::new(4)).with_dry_run(true);
    let mut job = BucketJob::new(JobKind::Rotate, "b", "", &bucket.job_ring, options);
    let mut d = Driver::new(3);
    for _ in 0..100_000 {
        match d.pump(&mut job) {
            Some(Action::Done) => break,
            _ => {
                assert!(!d.out.iter().any(|o| matches!(o, Out::Run(_))), "a dry run handed out a task");
                d.answer_one(&mut job, &mut bucket);
            }
        }
    }
    assert_eq!(job.progress().planned.objects, old);
    assert_eq!(job.progress().done.objects, 0);
    assert_eq!(under(&bucket, OLD) as u64, old);
}

#[test]
fn reencrypt_and_migrate_give_every_encrypted_object_a_new_dek_once() {
    let mut rng = Rng(9);
    let mut bucket = Bucket::new(300, &mut rng);
    let encrypted = bucket.objects.keys().filter(|k| kid_of(&bucket, k).is_some()).count() as u64;
    let legacy = under(&bucket, "legacy") as u64;
    let sidecars = bucket.objects.keys().filter(|k| k.starts_with(".s3proxy-internal/")).count();
    assert!(sidecars > 0 && legacy > sidecars as u64);

    // Migration reaches the previous proxy's objects only, the sidecar-only ones included.
    let mut job = BucketJob::new(JobKind::Migrate, "b", "", &bucket.job_ring, JobOptions::new(Limits::new(8)));
    assert_eq!(Driver::new(4).run(&mut job, &mut bucket, 1_000_000), Action::Done);
    assert_eq!(under(&bucket, "legacy"), 0);
    assert_eq!(job.progress().done_by_task["migrate"].objects, legacy);
    assert!(!bucket.objects.keys().any(|k| k.starts_with(".s3proxy-internal/")), "own sidecars deleted");

    // A re-encryption then gives each encrypted object exactly one new DEK.
    let gens: BTreeMap<String, u32> = bucket.objects.iter().map(|(k, o)| (k.clone(), o.generation)).collect();
    let mut job = BucketJob::new(JobKind::Reencrypt, "b", "data/", &bucket.job_ring, JobOptions::new(Limits::new(8)));
    assert_eq!(Driver::new(5).run(&mut job, &mut bucket, 1_000_000), Action::Done);
    for (k, o) in &bucket.objects {
        if kid_of(&bucket, k).is_some() {
            assert_eq!(o.generation, gens[k] + 1, "{k} re-encrypted once");
            assert_eq!(kid_of(&bucket, k).as_deref(), Some(NEW));
        }
    }
    assert_eq!(job.progress().done.objects, encrypted);
    assert_eq!(job.progress().moved_bytes, job.progress().done.bytes);
}

#[test]
fn crashes_at_random_moments_lose_and_repeat_nothing() {
    for seed in 1..=6u64 {
        let mut rng = Rng(100 + seed);
        let mut bucket = Bucket::new(500, &mut rng);
        let total = bucket.objects.len() as u64;
        let encrypted = bucket.objects.keys().filter(|k| kid_of(&bucket, k).is_some()).count() as u64;
        let gens: BTreeMap<String, u32> = bucket.objects.iter().map(|(k, o)| (k.clone(), o.generation)).collect();
        let options = JobOptions::new(Limits::new(12)).with_window(64);
        let mut job = BucketJob::new(JobKind::Reencrypt, "b", "", &bucket.job_ring, options);
        let mut d = Driver::new(seed);
        let mut crashes = 0;
        loop {
            let steps = 1 + d.rng.below(150) as usize;
            let end = d.run(&mut job, &mut bucket, steps);
            if end == Action::Done {
                break;
            }
            // Crash: the state saved at the last call survives; of the requests out, some
            // tasks landed on the server with their answers lost.
            let state = job.state();
            for o in std::mem::take(&mut d.out) {
                if let Out::Run(t) = o
                    && d.rng.chance(50)
                {
                    bucket.run(&t);
                }
            }
            job = BucketJob::from_state(&state, &bucket.job_ring).unwrap();
            crashes += 1;
            assert!(crashes < 500, "no progress across crashes");
        }
        assert!(crashes >= 5, "seed {seed}: {crashes} crashes");
        let p = job.progress();
        assert_eq!(p.listed.objects, total, "seed {seed}: every object counted once");
        assert_eq!(p.done.objects, encrypted, "seed {seed}");
        assert_eq!(p.done.objects + p.skipped.objects, total);
        for (k, o) in &bucket.objects {
            if kid_of(&bucket, k).is_some() {
                assert_eq!(kid_of(&bucket, k).as_deref(), Some(NEW), "{k}");
                assert_eq!(o.generation, gens[k] + 1, "seed {seed}: {k} re-encrypted exactly once");
            }
        }
    }
}

#[test]
fn transient_failures_are_retried_and_permanent_ones_reported_with_their_key() {
    let mut rng = Rng(11);
    let mut bucket = Bucket::new(300, &mut rng);
    let olds: Vec<String> =
        bucket.objects.keys().filter(|k| kid_of(&bucket, k).as_deref() == Some(OLD)).cloned().collect();
    let options = JobOptions::new(Limits::new(8)).with_retries(30, 50, 2_000);
    let mut job = BucketJob::new(JobKind::Rotate, "b", "", &bucket.job_ring, options);
    let mut d = Driver::new(12);
    d.flaky = 30;
    d.broken = vec![olds[3].clone(), olds[10].clone()];
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    let p = job.progress();
    assert_eq!(under(&bucket, OLD), 2, "only the two that always fail remain");
    assert_eq!(p.failed.objects, 2);
    assert_eq!(p.failed_by_code["AccessDenied"].objects, 2);
    let mut failed: Vec<&str> = p.failures.iter().map(|f| f.key.as_str()).collect();
    failed.sort_unstable();
    let mut want = vec![olds[3].as_str(), olds[10].as_str()];
    want.sort_unstable();
    assert_eq!(failed, want);
    assert!(p.failures.iter().all(|f| f.stage == "rewrap"));
    assert!(d.now > 1_000 + 50, "retries waited for their backoff");
}

#[test]
fn writers_underneath_win_and_their_stale_objects_are_taken_too() {
    let mut rng = Rng(13);
    let mut bucket = Bucket::new(400, &mut rng);
    let mut job = BucketJob::new(JobKind::Rotate, "b", "data/", &bucket.job_ring, JobOptions::new(Limits::new(8)));
    let mut d = Driver::new(14);
    d.writers = 10;
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    // Every overwrite is the writer's data (its size), rewrapped where the job saw it; what
    // the writer wrote under the old key after the job passed is left for the next pass,
    // and a scan says how much.
    for o in bucket.objects.values().filter(|o| o.by_writer) {
        assert!(o.size == 5 || o.size == 7, "a writer's object keeps the writer's data");
    }
    let mut scan = BucketJob::new(JobKind::Scan, "b", "data/", &bucket.job_ring, JobOptions::default());
    Driver::new(15).run(&mut scan, &mut bucket, 1_000_000);
    let left = scan.progress().by_class.get("needs_rewrap").map_or(0, |t| t.objects);
    assert_eq!(left, under(&bucket, OLD) as u64);
    let mut second = BucketJob::new(JobKind::Rotate, "b", "data/", &bucket.job_ring, JobOptions::new(Limits::new(8)));
    assert_eq!(Driver::new(16).run(&mut second, &mut bucket, 1_000_000), Action::Done);
    assert_eq!(under(&bucket, OLD), 0);
}

#[test]
fn pause_drains_and_resume_goes_on() {
    let mut rng = Rng(17);
    let mut bucket = Bucket::new(200, &mut rng);
    let mut job = BucketJob::new(JobKind::Rotate, "b", "", &bucket.job_ring, JobOptions::new(Limits::new(4)));
    let mut d = Driver::new(18);
    d.run(&mut job, &mut bucket, 50);
    job.pause();
    let done = job.progress().done.objects;
    // Nothing new is handed out; what is out may still answer.
    let mut polls = 0;
    loop {
        match job.poll(d.now) {
            Action::Paused => break,
            Action::Idle => assert!(d.answer_one(&mut job, &mut bucket)),
            other => panic!("handed out while paused: {other:?}"),
        }
        polls += 1;
        assert!(polls < 100);
    }
    assert!(d.out.is_empty());
    assert!(job.progress().done.objects >= done);
    // A pause survives a restart.
    let mut job = BucketJob::from_state(&job.state(), &bucket.job_ring).unwrap();
    assert!(job.is_paused());
    assert_eq!(job.poll(d.now), Action::Paused);
    job.resume();
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    assert_eq!(under(&bucket, OLD), 0);
}

#[test]
fn rates_hold_on_the_callers_clock_and_change_while_running() {
    let mut rng = Rng(19);
    let mut bucket = Bucket::new(300, &mut rng);
    let total = bucket.objects.len() as u64;
    let limits = Limits::new(16).with_objects_per_second(50);
    let mut job = BucketJob::new(JobKind::Scan, "b", "", &bucket.job_ring, JobOptions::new(limits));
    let mut d = Driver::new(20);
    let start = d.now;
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    // Sidecars need no HEAD; every other object is one start at 50 a second, after a
    // one-second burst.
    let heads = total - job.progress().skipped_by_reason["sidecar"].objects;
    let secs = (d.now - start) / 1000;
    assert!(secs + 1 >= heads / 50 - 1 && secs <= heads / 50 + 1, "{heads} objects in {secs} s at 50/s");

    // Raised while running: the rest goes faster.
    let mut bucket = Bucket::new(300, &mut Rng(21));
    let mut job = BucketJob::new(JobKind::Scan, "b", "", &bucket.job_ring, JobOptions::new(limits));
    let mut d = Driver::new(22);
    d.run(&mut job, &mut bucket, 100);
    let (t0, seen0) = (d.now, job.progress().skipped.objects);
    job.set_limits(Limits::new(16).with_objects_per_second(0)).unwrap();
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    assert!(job.progress().skipped.objects > seen0);
    assert!(d.now - t0 < 2_000, "unlimited after the change: {} ms", d.now - t0);
    assert!(job.set_limits(Limits::new(0)).is_err());

    // Bytes per second: re-encryption of ~N bytes at R bytes/s takes about N/R seconds.
    let mut bucket = Bucket::new(60, &mut Rng(23));
    let limits = Limits::new(8).with_bytes_per_second(200_000);
    let mut job = BucketJob::new(JobKind::Reencrypt, "b", "", &bucket.job_ring, JobOptions::new(limits));
    let mut d = Driver::new(24);
    let start = d.now;
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    let moved = job.progress().moved_bytes;
    let secs = (d.now - start) as f64 / 1000.0;
    let expect = moved as f64 / 200_000.0;
    assert!(secs > expect - 1.5 && secs < expect + 1.5, "{moved} bytes in {secs} s at 200 kB/s");
}

#[test]
fn the_state_stays_small_however_many_objects_are_done() {
    let mut sizes = Vec::new();
    for n in [2_000usize, 20_000] {
        let mut bucket = Bucket::new(n, &mut Rng(25));
        let options = JobOptions::new(Limits::new(16)).with_window(256);
        let mut job = BucketJob::new(JobKind::Rotate, "b", "", &bucket.job_ring, options);
        let mut d = Driver::new(26);
        let mut biggest = 0;
        loop {
            let end = d.run(&mut job, &mut bucket, 2_000);
            biggest = biggest.max(job.state().len());
            if end == Action::Done {
                break;
            }
        }
        sizes.push(biggest);
    }
    // Ten times the objects: the state grows only by the digits of its counts.
    assert!(sizes[1] < sizes[0] * 2, "{sizes:?}");
    assert!(sizes[1] < 64 * 1024, "{sizes:?}");
}

#[test]
fn bad_answers_are_errors_not_panics() {
    let (_, ring) = keyrings();
    let mut job = BucketJob::new(JobKind::Rotate, "b", "p/", &ring, JobOptions::default());
    assert!(job.listed(vec![], false).is_err(), "no listing was asked for");
    assert!(job.headed(0, 0, Head::Missing).is_err());
    assert!(job.finished(0, 0, Outcome::Done { moved: 0 }).is_err());
    assert!(matches!(job.poll(0), Action::List(_)));
    // Out of order, or outside the prefix.
    assert!(job.listed(vec![Entry::new("p/b", 1), Entry::new("p/a", 1)], true).is_err());
    assert!(job.listed(vec![Entry::new("q/a", 1)], false).is_err());
    assert!(job.listed(vec![], true).is_err(), "a truncated page with nothing in it");
    job.listed(vec![Entry::new("p/a", 1)], false).unwrap();
    let Action::Head { ticket, .. } = job.poll(0) else { panic!() };
    assert!(job.finished(ticket, 0, Outcome::Changed).is_err(), "a HEAD is not a task");
    job.headed(ticket, 0, Head::Missing).unwrap();
    assert!(job.headed(ticket, 0, Head::Missing).is_err(), "answered twice");
    assert_eq!(job.poll(0), Action::Done);
    assert_eq!(job.progress().skipped_by_reason["deleted"].objects, 1);
    for bad in [&b""[..], b"{}", b"[1]", b"{\"format\":\"isec-bucket-job/9\"}"] {
        assert!(BucketJob::from_state(bad, &ring).is_err());
    }
    // A listing that fails for good stops the job, with its code.
    let mut job = BucketJob::new(JobKind::Scan, "b", "", &ring, JobOptions::default().with_retries(2, 10, 10));
    assert!(matches!(job.poll(0), Action::List(_)));
    job.list_failed(0, "SlowDown", true).unwrap();
    assert!(matches!(job.poll(0), Action::Wait { .. }));
    assert!(matches!(job.poll(100), Action::List(_)));
    job.list_failed(100, "SlowDown", true).unwrap();
    assert_eq!(job.poll(200), Action::Stopped { code: "SlowDown".into() });
}

#[test]
fn a_task_that_landed_but_lost_its_answer_is_not_done_twice() {
    let mut rng = Rng(31);
    let mut bucket = Bucket::new(300, &mut rng);
    let gens: BTreeMap<String, u32> = bucket.objects.iter().map(|(k, o)| (k.clone(), o.generation)).collect();
    let encrypted = bucket.objects.keys().filter(|k| kid_of(&bucket, k).is_some()).count() as u64;
    let options = JobOptions::new(Limits::new(8)).with_retries(40, 10, 100);
    let mut job = BucketJob::new(JobKind::Reencrypt, "b", "", &bucket.job_ring, options);
    let mut d = Driver::new(32);
    d.flaky = 30;
    assert_eq!(d.run(&mut job, &mut bucket, 1_000_000), Action::Done);
    assert_eq!(job.progress().done.objects, encrypted);
    assert_eq!(job.progress().failed.objects, 0);
    for (k, o) in &bucket.objects {
        if kid_of(&bucket, k).is_some() {
            assert_eq!(o.generation, gens[k] + 1, "{k} re-encrypted exactly once");
        }
    }
}

/// A partial upload a task saved is handed back for abort whenever no task will take it up:
/// the object changed under it, its task failed for good, or (after a restart) the listing
/// passed the object without finding it. The abort survives a saved state.
#[test]
fn partial_uploads_no_task_takes_up_are_aborted() {
    let (_, ring) = keyrings();
    let meta = {
        let (writer, _) = keyrings();
        let (env, _) = writer.create_envelope(Params::default()).unwrap();
        metadata::object_metadata(&[], &env)
    };
    let start = |keys: &[&str]| {
        let mut job = BucketJob::new(JobKind::Reencrypt, "b", "", &ring, JobOptions::default());
        assert!(matches!(job.poll(0), Action::List(_)));
        job.listed(keys.iter().map(|k| Entry::new(k, 10)).collect(), false).unwrap();
        job
    };
    let run_task = |job: &mut BucketJob| -> Task {
        let Action::Head { ticket, .. } = job.poll(0) else { panic!("a HEAD") };
        job.headed(ticket, 0, Head::Found { metadata: meta.clone(), etag: "e1".into(), size: 10 }).unwrap();
        let Action::Run(t) = job.poll(0) else { panic!("a task") };
        t
    };
    // Changed underneath: the upload of the old version is aborted, the object looked at again.
    let mut job = start(&["a"]);
    let t = run_task(&mut job);
    job.save_checkpoint(t.ticket, b"cp-a").unwrap();
    job.finished(t.ticket, 0, Outcome::Changed).unwrap();
    assert_eq!(job.poll(0), Action::Abort { key: "a".into(), checkpoint: b"cp-a".to_vec() });
    assert!(matches!(job.poll(0), Action::Head { .. }));

    // A retryable failure keeps the checkpoint for the retry; a final failure aborts it.
    let mut job = start(&["b"]);
    let t = run_task(&mut job);
    job.save_checkpoint(t.ticket, b"cp-b").unwrap();
    job.finished(t.ticket, 0, Outcome::Failed { code: "SlowDown".into(), retryable: true }).unwrap();
    let retry = loop {
        match job.poll(1_000_000) {
            Action::Run(r) => break r,
            Action::Wait { .. } | Action::Idle => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(retry.checkpoint.as_deref(), Some(&b"cp-b"[..]));
    job.finished(retry.ticket, 1_000_000, Outcome::Failed { code: "AccessDenied".into(), retryable: false }).unwrap();
    assert_eq!(job.poll(1_000_000), Action::Abort { key: "b".into(), checkpoint: b"cp-b".to_vec() });
    assert_eq!(job.poll(1_000_000), Action::Done);

    // Done: nothing to abort.
    let mut job = start(&["c"]);
    let t = run_task(&mut job);
    job.save_checkpoint(t.ticket, b"cp-c").unwrap();
    job.finished(t.ticket, 0, Outcome::Done { moved: 10 }).unwrap();
    assert_eq!(job.poll(0), Action::Done);

    // Saved mid-task, resumed: the object is gone from the listing, so its upload is aborted,
    // also when the state is saved again before the abort went out.
    let mut job = start(&["d", "e"]);
    let t = run_task(&mut job);
    assert_eq!(t.key, "d");
    job.save_checkpoint(t.ticket, b"cp-d").unwrap();
    let mut resumed = BucketJob::from_state(&job.state(), &ring).unwrap();
    assert!(matches!(resumed.poll(0), Action::List(_)));
    resumed.listed(vec![Entry::new("e", 10)], false).unwrap();
    let again = BucketJob::from_state(&resumed.state(), &ring).unwrap();
    let mut again = again;
    assert_eq!(again.poll(0), Action::Abort { key: "d".into(), checkpoint: b"cp-d".to_vec() });
    assert_eq!(resumed.poll(0), Action::Abort { key: "d".into(), checkpoint: b"cp-d".to_vec() });
}

/// An upload checkpoint's structure (the MACs are not checked here): "ISUP", the upload id,
/// and an inner "ISCK" record.
fn upload_checkpoint(upload_id: &str) -> Vec<u8> {
    let mut inner = b"ISCK\x02".to_vec();
    inner.extend_from_slice(&[7; 32]);
    inner.extend_from_slice(&9u64.to_be_bytes());
    inner.extend_from_slice(&3u16.to_be_bytes());
    inner.extend_from_slice(b"env");
    inner.extend_from_slice(&1u32.to_be_bytes());
    inner.extend_from_slice(&[0; 32]);
    let mut b = b"ISUP\x01".to_vec();
    b.extend_from_slice(&(upload_id.len() as u16).to_be_bytes());
    b.extend_from_slice(upload_id.as_bytes());
    b.extend_from_slice(&(inner.len() as u32).to_be_bytes());
    b.extend_from_slice(&inner);
    b.extend_from_slice(&[0; 32]);
    b
}

/// A task run again after its runner died starts a new upload: its first checkpoint hands
/// the dead runner's upload out for abort; further checkpoints of the same upload do not.
#[test]
fn a_checkpoint_of_another_upload_aborts_the_one_before() {
    let (writer, ring) = keyrings();
    let (env, _) = writer.create_envelope(Params::default()).unwrap();
    let meta = metadata::object_metadata(&[], &env);
    let mut job = BucketJob::new(JobKind::Reencrypt, "b", "", &ring, JobOptions::default());
    assert!(matches!(job.poll(0), Action::List(_)));
    job.listed(vec![Entry::new("k", 10)], false).unwrap();
    let Action::Head { ticket, .. } = job.poll(0) else { panic!("a HEAD") };
    job.headed(ticket, 0, Head::Found { metadata: meta, etag: "e".into(), size: 10 }).unwrap();
    let Action::Run(t) = job.poll(0) else { panic!("a task") };
    let (first, second) = (upload_checkpoint("dead-runner"), upload_checkpoint("second-runner"));
    assert_eq!(isec_core::reencrypt::UploadCheckpoint::parse(&first).unwrap().upload_id, "dead-runner");
    job.save_checkpoint(t.ticket, &first).unwrap();
    job.save_checkpoint(t.ticket, &first).unwrap();
    assert_eq!(job.poll(0), Action::Idle, "the same upload again: nothing to abort");
    job.save_checkpoint(t.ticket, &second).unwrap();
    assert_eq!(job.poll(0), Action::Abort { key: "k".into(), checkpoint: first });
    job.save_checkpoint(t.ticket, &second).unwrap();
    job.finished(t.ticket, 0, Outcome::Done { moved: 10 }).unwrap();
    assert_eq!(job.poll(0), Action::Done, "the upload that completed is not aborted");
}
