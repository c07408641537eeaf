//! The bucket-job runner (SPEC.md §15): core's `BucketJob` decides everything; this sends
//! what it asks for on tokio tasks (at most the job's concurrency are out), answers it, and
//! keeps its state file current: rewritten every second, on every control command, when it
//! stops, and *before* any task it hands out starts, so that a crash at any moment leaves
//! each of those tasks in the state's `in_flight` and the resumed job counts every object
//! once (§15.4).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use isec_core::job::{Action, BucketJob, Entry, Head, JobKind, JobOptions, Limits, ListRequest, Read};
use isec_core::reencrypt::UploadCheckpoint;
use isec_core::{Error, Keyring};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::client::{Fail, sdk};
use super::control::{self, Lock};
use super::object::PutParams;
use super::task::{self, Ctx};
use crate::fail::{CliError, Res};

/// How long a stop waits for the tasks in flight before the state is saved without them
/// (they are then in the state's `in_flight` and looked at afresh on resume).
const STOP_GRACE: Duration = Duration::from_secs(10);
const CONTROL_EVERY: Duration = Duration::from_millis(200);
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// One run of a bucket job, as the command line asked for it.
pub struct JobRun {
    pub kind: JobKind,
    pub bucket: String,
    pub prefix: String,
    pub state: PathBuf,
    pub concurrency: Option<u32>,
    pub objects_per_second: Option<u64>,
    pub bytes_per_second: Option<u64>,
    pub dry_run: bool,
    pub json: bool,
    pub quiet: bool,
    pub params: PutParams,
}

struct Shared {
    job: Mutex<BucketJob>,
    wake: Notify,
    start: Instant,
    /// A task saved a partial upload's checkpoint since the state was last written: written
    /// at once, so that a crash redoes at most the parts in flight.
    checkpointed: AtomicBool,
}

impl Shared {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, BucketJob> {
        // A panic while holding the lock is a bug; the job itself stays consistent.
        self.job.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Makes the job, or resumes it from its state file (which must be of the same kind, bucket
/// and prefix).
fn open(run: &JobRun, ring: &Keyring) -> Res<BucketJob> {
    let mut job = if run.state.exists() {
        let bytes = std::fs::read(&run.state).map_err(|e| CliError::io(&run.state, e))?;
        let job =
            BucketJob::from_state(&bytes, ring).map_err(|e| CliError::core(e, run.state.display().to_string()))?;
        if job.kind() != run.kind || job.bucket() != run.bucket || job.prefix() != run.prefix {
            return Err(CliError::usage(format!(
                "{} is the state of `{}` on s3://{}/{}, not of this command",
                run.state.display(),
                job.kind().name(),
                job.bucket(),
                job.prefix()
            )));
        }
        job
    } else {
        let options = JobOptions::new(Limits::new(run.concurrency.unwrap_or(8))).with_dry_run(run.dry_run);
        BucketJob::new(run.kind, &run.bucket, &run.prefix, ring, options)
    };
    let mut l = job.limits();
    if let Some(c) = run.concurrency {
        l.concurrency = c;
    }
    if let Some(o) = run.objects_per_second {
        l.objects_per_second = o;
    }
    if let Some(b) = run.bytes_per_second {
        l.bytes_per_second = b;
    }
    job.set_limits(l).map_err(|e| CliError::core(e, "--concurrency".into()))?;
    Ok(job)
}

fn save(path: &Path, job: &BucketJob) -> Res<()> {
    control::write_atomic(path, &job.state())
}

/// Runs the job to its end, a stop (Ctrl-C, SIGTERM: exit 130) or a failed listing.
pub async fn run(c: Client, ring: Arc<Keyring>, run: JobRun) -> Res<()> {
    let _lock = Lock::acquire(&run.state)?;
    let mut job = open(&run, &ring)?;
    apply_control(&run.state, &mut job);
    save(&run.state, &job)?;
    let shared = Arc::new(Shared {
        job: Mutex::new(job),
        wake: Notify::new(),
        start: Instant::now(),
        checkpointed: AtomicBool::new(false),
    });
    let ctx = Arc::new(Ctx { c, ring, bucket: run.bucket.clone(), params: run.params });
    let stop = Arc::new(AtomicBool::new(false));
    listen_for_stop(&stop, &shared);
    let bar = bar(&run);
    let (mut last_save, mut last_report, mut last_control) = (Instant::now(), Instant::now(), Instant::now());
    let mut stopping: Option<(Instant, bool)> = None;
    let result = loop {
        let mut requests = Vec::new();
        let mut hands_out_tasks = false;
        let end = {
            let mut j = shared.lock();
            if stop.load(Ordering::SeqCst) && stopping.is_none() {
                stopping = Some((Instant::now(), j.is_paused()));
                j.pause();
            }
            loop {
                match j.poll(shared.now()) {
                    a @ (Action::List(_) | Action::Head { .. } | Action::Read { .. } | Action::Abort { .. }) => {
                        requests.push(a)
                    }
                    a @ Action::Run(_) => {
                        hands_out_tasks = true;
                        requests.push(a);
                    }
                    other => break other,
                }
            }
        };
        if hands_out_tasks || shared.checkpointed.swap(false, Ordering::SeqCst) {
            save(&run.state, &shared.lock())?;
            last_save = Instant::now();
        }
        for a in requests {
            let (shared, ctx) = (shared.clone(), ctx.clone());
            tokio::spawn(async move { work(&shared, &ctx, a).await });
        }
        match end {
            Action::Done => break "done".to_string(),
            Action::Stopped { code } => break code,
            Action::Paused if stopping.is_some() => break "stopped".to_string(),
            _ => {}
        }
        if stopping.is_some_and(|(since, _)| since.elapsed() > STOP_GRACE) {
            break "stopped".to_string();
        }
        let mut timeout = CONTROL_EVERY;
        if let Action::Wait { until_ms } = end {
            timeout = timeout.min(Duration::from_millis(until_ms.saturating_sub(shared.now())));
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(timeout) => {}
        }
        if last_control.elapsed() >= CONTROL_EVERY {
            last_control = Instant::now();
            let mut j = shared.lock();
            if apply_control(&run.state, &mut j) {
                save(&run.state, &j)?;
                last_save = Instant::now();
            }
        }
        if last_save.elapsed() >= SAVE_EVERY {
            save(&run.state, &shared.lock())?;
            last_save = Instant::now();
        }
        if last_report.elapsed() >= SAVE_EVERY {
            report_progress(&shared, &run, &bar);
            last_report = Instant::now();
        }
    };
    let report = {
        let mut j = shared.lock();
        if let Some((_, was_paused)) = stopping
            && !was_paused
        {
            // A stop pauses only this run: the saved state runs again when resumed.
            j.resume();
        }
        save(&run.state, &j)?;
        let mut r = live_report(&j);
        r["result"] = json!(result);
        r
    };
    bar.finish_and_clear();
    finish(&run, &report, &result)
}

/// Applies a pending control command; whether there was one.
fn apply_control(state: &Path, job: &mut BucketJob) -> bool {
    match control::take(state) {
        None => false,
        Some(Ok(cmd)) => {
            if let Err(e) = cmd.apply(job) {
                eprintln!("isec: control: {e}");
            }
            true
        }
        Some(Err(msg)) => {
            eprintln!("isec: {msg}");
            false
        }
    }
}

/// Ctrl-C and SIGTERM set `stop` (a second one is ignored: the first is being honoured).
fn listen_for_stop(stop: &Arc<AtomicBool>, shared: &Arc<Shared>) {
    let (stop, shared) = (stop.clone(), shared.clone());
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else { return };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        stop.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
    });
}

/// Sends one request of the job and answers it.
async fn work(shared: &Shared, ctx: &Ctx, a: Action) {
    match a {
        Action::List(req) => {
            let answer = list(&ctx.c, &ctx.bucket, &req).await;
            let mut j = shared.lock();
            let now = shared.now();
            let res = match answer {
                Ok((entries, truncated)) => {
                    j.listed(entries, truncated).or_else(|e| j.list_failed(now, e.code(), false))
                }
                Err(f) => {
                    let (code, retryable) = f.code();
                    j.list_failed(now, &code, retryable)
                }
            };
            report_misuse(res);
        }
        Action::Head { ticket, key } => {
            let head = head(&ctx.c, &ctx.bucket, &key).await;
            report_misuse(shared.lock().headed(ticket, shared.now(), head));
        }
        Action::Read { ticket, key, etag, ranges } => {
            let read = read(&ctx.c, &ctx.bucket, &key, &etag, &ranges).await;
            report_misuse(shared.lock().read(ticket, shared.now(), read));
        }
        Action::Run(t) => {
            let save = |cp: &[u8]| {
                report_misuse(shared.lock().save_checkpoint(t.ticket, cp));
                shared.checkpointed.store(true, Ordering::SeqCst);
                shared.wake.notify_one();
            };
            let outcome = task::run(ctx, &t, &save).await;
            report_misuse(shared.lock().finished(t.ticket, shared.now(), outcome));
        }
        Action::Abort { key, checkpoint } => {
            // A partial upload no task will take up (SPEC.md §15.2): best effort, no answer.
            if let Ok(up) = UploadCheckpoint::parse(&checkpoint) {
                let _ =
                    ctx.c.abort_multipart_upload().bucket(&ctx.bucket).key(key).upload_id(up.upload_id).send().await;
            }
        }
        _ => {}
    }
    shared.wake.notify_one();
}

/// An answer the job refused: a bug of this runner, reported rather than hidden.
fn report_misuse(res: Result<(), Error>) {
    if let Err(e) = res {
        eprintln!("isec: the job refused an answer: {e} [code {}]", e.code());
    }
}

async fn list(c: &Client, bucket: &str, req: &ListRequest) -> Result<(Vec<Entry>, bool), Fail> {
    let r = c
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&req.prefix)
        .set_start_after(req.start_after.clone())
        .max_keys(i32::try_from(req.max_keys).unwrap_or(1000))
        .send()
        .await
        .map_err(|e| sdk(e, &format!("s3://{bucket}/{}", req.prefix), false))?;
    let entries = r
        .contents()
        .iter()
        .filter_map(|o| Some(Entry::new(o.key()?, u64::try_from(o.size().unwrap_or(0)).unwrap_or(0))))
        .collect();
    Ok((entries, r.is_truncated().unwrap_or(false)))
}

/// The ranged GETs the job asks for to tell an object without isec metadata from isec
/// frames that lost it (SPEC.md §14.1), each pinned to the HEAD's ETag.
async fn read(c: &Client, bucket: &str, key: &str, etag: &str, ranges: &[(u64, u64)]) -> Read {
    let mut bodies = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges {
        let got = c
            .get_object()
            .bucket(bucket)
            .key(key)
            .if_match(etag)
            .range(format!("bytes={start}-{}", end.saturating_sub(1)))
            .send()
            .await
            .map_err(|e| sdk(e, key, true));
        let body = match got {
            Ok(r) => r.body.collect().await.map(|b| b.to_vec()).map_err(|e| Fail::S3 {
                code: "ConnectionError".into(),
                retryable: true,
                msg: format!("{key}: {e}"),
            }),
            Err(f) => Err(f),
        };
        match body {
            Ok(b) => bodies.push(b),
            Err(Fail::Changed(_)) => return Read::Changed,
            Err(f) => {
                let (code, retryable) = f.code();
                return Read::Failed { code, retryable };
            }
        }
    }
    Read::Found(bodies)
}

async fn head(c: &Client, bucket: &str, key: &str) -> Head {
    match c.head_object().bucket(bucket).key(key).send().await {
        Ok(r) => Head::Found {
            metadata: r
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect())
                .unwrap_or_default(),
            etag: r.e_tag().unwrap_or_default().into(),
            size: u64::try_from(r.content_length().unwrap_or(0)).unwrap_or(0),
        },
        Err(e) if super::client::is_not_found(&e) => Head::Missing,
        Err(e) => {
            let (code, retryable) = sdk(e, key, false).code();
            Head::Failed { code, retryable }
        }
    }
}

/// The report of a running job: its counts, limits and whether it is paused.
fn live_report(j: &BucketJob) -> Value {
    let l = j.limits();
    let progress: Value = serde_json::from_str(&j.progress().to_json()).unwrap_or(Value::Null);
    let mut r = report(j.kind().name(), j.bucket(), j.prefix(), j.is_paused(), l, progress);
    r["in_flight"] = json!(j.in_flight());
    r
}

/// The report of a saved state (`isec s3 job status`).
pub fn report_of(saved: &Value) -> Value {
    let u = |k: &str| saved.get(k).and_then(Value::as_u64).unwrap_or(0);
    let l = Limits::new(u32::try_from(u("concurrency")).unwrap_or(0))
        .with_objects_per_second(u("objects_per_second"))
        .with_bytes_per_second(u("bytes_per_second"));
    let s = |k: &str| saved.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let paused = saved.get("paused").and_then(Value::as_bool).unwrap_or(false);
    report(&s("kind"), &s("bucket"), &s("prefix"), paused, l, saved.get("progress").cloned().unwrap_or(Value::Null))
}

fn report(kind: &str, bucket: &str, prefix: &str, paused: bool, l: Limits, progress: Value) -> Value {
    let mut r = match progress {
        Value::Object(m) => Value::Object(m),
        _ => json!({}),
    };
    let t = |r: &Value, k: &str, f: &str| r.get(k).and_then(|v| v.get(f)).and_then(Value::as_u64).unwrap_or(0);
    let ended = |f: &str| ["done", "skipped", "failed", "planned"].iter().map(|k| t(&r, k, f)).sum::<u64>();
    let left = json!({
        "objects": t(&r, "listed", "objects").saturating_sub(ended("objects")),
        "bytes": t(&r, "listed", "bytes").saturating_sub(ended("bytes")),
    });
    r["left"] = left;
    r["kind"] = json!(kind);
    r["bucket"] = json!(bucket);
    r["prefix"] = json!(prefix);
    r["paused"] = json!(paused);
    r["limits"] = json!({
        "concurrency": l.concurrency,
        "objects_per_second": l.objects_per_second,
        "bytes_per_second": l.bytes_per_second,
    });
    r
}

/// `done 12, skipped 3 (current 2, plaintext 1), failed 1 (AccessDenied 1), left 0`.
pub fn summary(r: &Value) -> String {
    let n = |k: &str| r.get(k).and_then(|v| v.get("objects")).and_then(Value::as_u64).unwrap_or(0);
    let by = |k: &str| {
        let parts: Vec<String> = r
            .get(k)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(name, t)| format!("{name} {}", t.get("objects").and_then(Value::as_u64).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
    };
    let mut s = format!(
        "listed {}{}, done {}{}, skipped {}{}, failed {}{}",
        n("listed"),
        if r.get("listing_complete") == Some(&json!(true)) { "" } else { " so far" },
        n("done"),
        by("done_by_task"),
        n("skipped"),
        by("skipped_by_reason"),
        n("failed"),
        by("failed_by_code"),
    );
    if n("planned") > 0 {
        s.push_str(&format!(", planned {} (dry run)", n("planned")));
    }
    s.push_str(&format!(", left {}", n("left")));
    if let Some(moved) = r.get("moved_bytes").and_then(Value::as_u64).filter(|m| *m > 0) {
        s.push_str(&format!(", {moved} bytes re-encrypted"));
    }
    s
}

fn bar(run: &JobRun) -> ProgressBar {
    if run.quiet || run.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} objects, eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_draw_target(ProgressDrawTarget::stderr());
    pb
}

fn report_progress(shared: &Shared, run: &JobRun, bar: &ProgressBar) {
    let r = live_report(&shared.lock());
    if run.json {
        println!("{r}");
    }
    let n = |k: &str, f: &str| r.get(k).and_then(|v| v.get(f)).and_then(Value::as_u64).unwrap_or(0);
    bar.set_length(n("listed", "objects"));
    bar.set_position(n("listed", "objects").saturating_sub(n("left", "objects")));
    let paused = if r["paused"] == json!(true) { " (paused)" } else { "" };
    bar.set_message(format!(
        "{} {}/{}{paused}: {} bytes left",
        run.kind.name(),
        run.bucket,
        run.prefix,
        n("left", "bytes")
    ));
}

fn finish(run: &JobRun, report: &Value, result: &str) -> Res<()> {
    if run.json {
        println!("{report}");
    } else {
        println!("{} s3://{}/{}: {result}", run.kind.name(), run.bucket, run.prefix);
        println!("{}", summary(report));
        if let Some(fails) = report.get("failures").and_then(Value::as_array) {
            for f in fails.iter().rev().take(10) {
                println!("  failed: {} ({}: {})", f["key"].as_str().unwrap_or(""), f["stage"], f["code"]);
            }
        }
    }
    let failed = report.get("failed").and_then(|v| v.get("objects")).and_then(Value::as_u64).unwrap_or(0);
    match result {
        "done" if failed == 0 => Ok(()),
        "done" => Err(CliError::Failed(format!("{failed} objects failed"))),
        "stopped" => Err(CliError::Interrupted(format!(
            "stopped; {} resumes it (run the same command again)",
            run.state.display()
        ))),
        code => Err(CliError::Io(format!("the listing failed: {code}; {} resumes the job", run.state.display()))),
    }
}
