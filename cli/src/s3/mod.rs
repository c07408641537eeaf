//! `isec s3`: objects and bucket jobs over S3, with the official AWS SDK. Every decision
//! (how to open, copy, migrate or re-encrypt an object, what a bucket job does next) is
//! core's; this module sends the requests and feeds the answers back.

pub(crate) mod client;
mod cmd;
mod control;
mod job;
pub(crate) mod object;
pub(crate) mod steps;
pub(crate) mod task;
pub(crate) mod url;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use isec_core::Keyring;
use isec_core::job::JobKind;

use crate::fail::{CliError, Res};
pub use client::Conn;
use object::PutParams;
use url::S3Url;

fn size_arg(s: &str) -> Result<u64, String> {
    crate::meta::parse_size(s)
}

/// Objects and bucket jobs in S3 (or any S3-compatible server).
///
/// Credentials and region come from the AWS SDK's default chain: AWS_ACCESS_KEY_ID /
/// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE or --profile with
/// ~/.aws/credentials and ~/.aws/config, SSO, web identity, instance metadata. With
/// --endpoint-url (or AWS_ENDPOINT_URL) requests go there with path-style addressing.
#[derive(Args)]
pub struct S3Cmd {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: S3Sub,
}

#[derive(Args, Clone, Copy)]
struct Layout {
    /// Part size of new objects: larger bodies are uploaded in parts of this size (at
    /// least 5 MiB on S3; a multiple of --frame-size).
    #[arg(long, default_value = "8MiB", value_parser = size_arg)]
    part_size: u64,
    /// Frame size of new objects: a power of two from 4KiB to 8MiB.
    #[arg(long, default_value = "64KiB", value_parser = size_arg)]
    frame_size: u64,
}

impl Layout {
    fn params(self) -> PutParams {
        PutParams { part_size: self.part_size, frame_size: self.frame_size }
    }
}

/// A job's limits (those not given keep their saved or default value).
#[derive(Args, Clone, Copy)]
struct LimitArgs {
    /// Object bytes re-encrypted per second, e.g. 50MB/s (0: unlimited; rewraps move none).
    #[arg(long, value_parser = size_arg)]
    rate: Option<u64>,
    /// Objects started per second (0: unlimited).
    #[arg(long)]
    objects_per_second: Option<u64>,
    /// Requests in flight (HEADs and tasks) [default: 8].
    #[arg(long)]
    concurrency: Option<u32>,
}

#[derive(Args)]
struct JobArgs {
    /// s3://BUCKET[/PREFIX]
    #[arg(value_parser = url::prefix)]
    target: S3Url,
    /// The job's state file: created on the first run, rewritten every second; running the
    /// same command again resumes from it. `STATE.lock` marks a running job, `STATE.control`
    /// takes commands from `isec s3 job`.
    #[arg(long)]
    state: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
    /// List, HEAD and decide; count what would be done as `planned`; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// One JSON progress line per second on stdout, and a final JSON report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    layout: Layout,
}

const JOB_HELP: &str = "Ctrl-C or SIGTERM stops the job cleanly: nothing new starts, the tasks in \
flight get up to 10 s, the state is saved; exit 130. Steer a running job from another terminal \
with `isec s3 job status|pause|resume|set-rate --state FILE`.\n\nExit codes: 0 every object done \
or skipped, 1 some objects failed (the report lists them by code), 2 usage, 4 the listing failed, \
5 key error, 130 stopped.";

#[derive(Subcommand)]
enum S3Sub {
    /// Download and decrypt an object to a file or stdout (`-`).
    ///
    /// A file output appears only once every frame and the object's end verified.
    /// Exit 3 when the object fails authentication, 5 when its key is not in the keyring.
    /// Example: isec --keyring ring.json s3 get s3://bucket/photo.jpg photo.jpg
    Get {
        /// The object, s3://BUCKET/KEY.
        #[arg(value_parser = url::object)]
        source: S3Url,
        /// Plaintext file to write, or - for stdout.
        output: String,
    },
    /// Encrypt a file or stdin (`-`) under the active key and upload it.
    ///
    /// Up to --part-size: one PutObject (single layout); larger: a multipart upload in the
    /// parts layout, one isec part per S3 part.
    /// Example: isec --keyring ring.json s3 put photo.jpg s3://bucket/photo.jpg
    Put {
        /// Plaintext file, or - for stdin.
        input: String,
        /// Where to upload, s3://BUCKET/KEY.
        #[arg(value_parser = url::object)]
        dest: S3Url,
        #[command(flatten)]
        layout: Layout,
    },
    /// Show an object's format, key id, layout and sizes (no key needed).
    Head {
        /// The object, s3://BUCKET/KEY.
        #[arg(value_parser = url::object)]
        source: S3Url,
        /// Print one JSON object instead of aligned lines.
        #[arg(long)]
        json: bool,
    },
    /// Copy an object the cheapest valid way (server-side; rewrap with --target-kid).
    ///
    /// Example: isec --keyring ring.json s3 cp s3://a/k s3://b/k --target-kid kek-2026
    Cp {
        /// The object to copy, s3://BUCKET/KEY.
        #[arg(value_parser = url::object)]
        source: S3Url,
        /// The copy, s3://BUCKET/KEY.
        #[arg(value_parser = url::object)]
        dest: S3Url,
        /// Put the copy's DEK under this key (must be active); no object bytes move.
        #[arg(long)]
        target_kid: Option<String>,
        #[command(flatten)]
        layout: Layout,
    },
    /// Give a copy that lost its isec metadata (scan class stripped_isec) its source's envelope.
    ///
    /// DEST's whole body must decrypt under SRC's envelope before anything is written; then
    /// DEST gets SRC's metadata by a REPLACE self-copy pinned to DEST's ETag.
    /// Example: isec --keyring ring.json s3 repair s3://bucket/copy.bin --from s3://bucket/orig.bin
    Repair {
        /// The copy that lost its metadata, s3://BUCKET/KEY.
        #[arg(value_parser = url::object)]
        dest: S3Url,
        /// The object DEST was copied from.
        #[arg(long, value_parser = url::object)]
        from: S3Url,
    },
    /// Classify every object under a prefix by format and key; change nothing.
    #[command(after_help = JOB_HELP)]
    Scan(JobArgs),
    /// Rewrap every object under a decrypt-only key to the active key (metadata only).
    ///
    /// Each object gets a REPLACE self-copy pinned to the ETag its HEAD saw.
    /// Example: isec --keyring ring.json s3 rotate s3://bucket/photos --state rotate.json
    #[command(after_help = JOB_HELP)]
    Rotate(JobArgs),
    /// Re-encrypt every encrypted object under a prefix with a new DEK under the active key.
    #[command(after_help = JOB_HELP)]
    Reencrypt(JobArgs),
    /// Migrate the previous proxy's objects under a prefix into the isec format.
    #[command(after_help = JOB_HELP)]
    Migrate(JobArgs),
    /// Steer or inspect a bucket job through its state file.
    #[command(subcommand)]
    Job(JobCtl),
}

/// Commands for a bucket job, running (applied within a second) or not (applied when it
/// next starts). They write `STATE.control`, which the job polls every 200 ms.
#[derive(Subcommand)]
enum JobCtl {
    /// Progress from the state file (rewritten every second) and whether the job runs.
    Status {
        /// The job's state file.
        #[arg(long)]
        state: PathBuf,
        /// Print the status as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Start nothing new; what is in flight finishes. Saved in the state.
    Pause {
        /// The job's state file.
        #[arg(long)]
        state: PathBuf,
    },
    /// Undo a pause.
    Resume {
        /// The job's state file.
        #[arg(long)]
        state: PathBuf,
    },
    /// Change the job's limits (those not given stay; 0 is unlimited).
    SetRate {
        /// The job's state file.
        #[arg(long)]
        state: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

fn runtime() -> Res<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("async runtime: {e}")))
}

/// Runs `isec s3 ...`; `ring` loads the keyring when the command needs it.
pub fn run(s3: S3Cmd, ring: impl FnOnce() -> Res<Keyring>, has_ring: bool, quiet: bool) -> Res<()> {
    let kind = match &s3.cmd {
        S3Sub::Job(ctl) => return job_ctl(ctl),
        S3Sub::Scan(_) => Some(JobKind::Scan),
        S3Sub::Rotate(_) => Some(JobKind::Rotate),
        S3Sub::Reencrypt(_) => Some(JobKind::Reencrypt),
        S3Sub::Migrate(_) => Some(JobKind::Migrate),
        _ => None,
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let c = client::connect(&s3.conn).await;
        match s3.cmd {
            S3Sub::Get { source, output } => cmd::get(&c, &ring()?, &source, &output, quiet).await,
            S3Sub::Put { input, dest, layout } => cmd::put(&c, &ring()?, &input, &dest, layout.params(), quiet).await,
            S3Sub::Head { source, json } => cmd::head(&c, &source, json).await,
            S3Sub::Cp { source, dest, target_kid, layout } => {
                let ring = if has_ring { Some(Arc::new(ring()?)) } else { None };
                cmd::cp(&c, ring, &source, &dest, target_kid.as_deref(), layout.params()).await
            }
            S3Sub::Repair { dest, from } => cmd::repair(&c, &ring()?, &dest, &from, quiet).await,
            S3Sub::Scan(a) | S3Sub::Rotate(a) | S3Sub::Reencrypt(a) | S3Sub::Migrate(a) => {
                let run = job::JobRun {
                    kind: kind.unwrap_or(JobKind::Scan),
                    bucket: a.target.bucket,
                    prefix: a.target.key,
                    state: a.state,
                    concurrency: a.limits.concurrency,
                    objects_per_second: a.limits.objects_per_second,
                    bytes_per_second: a.limits.rate,
                    dry_run: a.dry_run,
                    json: a.json,
                    quiet,
                    params: a.layout.params(),
                };
                job::run(c, Arc::new(ring()?), run).await
            }
            S3Sub::Job(_) => Ok(()),
        }
    })
}

/// How many objects under `place` (s3://BUCKET[/PREFIX]) a scan finds under `kid`: a scan
/// job (`isec s3 scan`) run to its end with a state file of its own, read back afterwards.
pub fn objects_under_kid(conn: &Conn, ring: &Arc<Keyring>, place: &str, kid: &str) -> Res<u64> {
    let target = url::prefix(place).map_err(CliError::usage)?;
    let dir = std::env::temp_dir().join(format!("isec-keys-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| CliError::io(&dir, e))?;
    let state = dir.join("scan.json");
    let _ = std::fs::remove_file(&state);
    let run = job::JobRun {
        kind: JobKind::Scan,
        bucket: target.bucket,
        prefix: target.key,
        state: state.clone(),
        concurrency: None,
        objects_per_second: None,
        bytes_per_second: None,
        dry_run: false,
        json: false,
        quiet: true,
        params: PutParams { part_size: 64 << 20, frame_size: 64 << 10 },
    };
    let ring = ring.clone();
    let scanned = runtime()?.block_on(async move { job::run(client::connect(conn).await, ring, run).await });
    let saved = std::fs::read_to_string(&state).map_err(|e| CliError::io(&state, e));
    let _ = std::fs::remove_dir_all(&dir);
    scanned?;
    let saved: serde_json::Value =
        serde_json::from_str(&saved?).map_err(|e| CliError::Io(format!("scan state: {e}")))?;
    let by_kid = &saved["progress"]["by_kid"][kid];
    Ok(by_kid.as_object().map_or(0, |classes| {
        classes.values().filter_map(|t| t.get("objects").and_then(serde_json::Value::as_u64)).sum()
    }))
}

fn job_ctl(ctl: &JobCtl) -> Res<()> {
    match ctl {
        JobCtl::Status { state, json } => control::status(state, *json),
        JobCtl::Pause { state } => control::send(state, control::Command::Pause),
        JobCtl::Resume { state } => control::send(state, control::Command::Resume),
        JobCtl::SetRate { state, limits: l } => {
            if l.rate.is_none() && l.objects_per_second.is_none() && l.concurrency.is_none() {
                return Err(CliError::usage("set-rate needs --rate, --objects-per-second or --concurrency".into()));
            }
            let cmd = control::Command::SetLimits {
                concurrency: l.concurrency,
                objects_per_second: l.objects_per_second,
                bytes_per_second: l.rate,
            };
            control::send(state, cmd)
        }
    }
}
