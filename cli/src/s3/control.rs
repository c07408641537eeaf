//! Steering a running bucket job from another terminal, through files next to its state:
//!
//! - `STATE.lock` holds the pid of the job running on `STATE` (a second run refuses to
//!   start; a lock whose process is gone, after a crash, is taken over);
//! - `STATE.control` holds one JSON command (`{"command":"pause"}`, `"resume"`, or
//!   `{"command":"set_limits","concurrency":8,"objects_per_second":5,"bytes_per_second":0}`,
//!   absent limits unchanged), written atomically by `isec s3 job`; the job polls it every
//!   200 ms, applies it, saves its state and deletes the file. A command written while no
//!   job runs is applied when the job next starts.
//!
//! `status` reads the state file, which the job rewrites every second.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use isec_core::job::BucketJob;
use serde_json::{Value, json};

use crate::fail::{CliError, Res};

pub fn lock_path(state: &Path) -> PathBuf {
    suffixed(state, ".lock")
}

pub fn control_path(state: &Path) -> PathBuf {
    suffixed(state, ".control")
}

fn suffixed(state: &Path, suffix: &str) -> PathBuf {
    let mut s = state.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Res<()> {
    let tmp = suffixed(path, &format!(".tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(|e| CliError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| CliError::io(&tmp, e))?;
    f.sync_all().map_err(|e| CliError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| CliError::io(path, e))
}

/// The pid of the job running on `state`, if its process is alive.
pub fn running(state: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(lock_path(state)).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// The lock of a running job, removed when dropped.
pub struct Lock(PathBuf);

impl Lock {
    pub fn acquire(state: &Path) -> Res<Self> {
        if let Some(pid) = running(state)
            && pid != std::process::id()
        {
            return Err(CliError::usage(format!("a job is already running on {} (pid {pid})", state.display())));
        }
        let path = lock_path(state);
        write_atomic(&path, format!("{}\n", std::process::id()).as_bytes())?;
        Ok(Self(path))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    SetLimits { concurrency: Option<u32>, objects_per_second: Option<u64>, bytes_per_second: Option<u64> },
}

impl Command {
    fn to_json(self) -> Value {
        match self {
            Self::Pause => json!({"command": "pause"}),
            Self::Resume => json!({"command": "resume"}),
            Self::SetLimits { concurrency, objects_per_second, bytes_per_second } => json!({
                "command": "set_limits",
                "concurrency": concurrency,
                "objects_per_second": objects_per_second,
                "bytes_per_second": bytes_per_second,
            }),
        }
    }

    fn from_json(v: &Value) -> Option<Self> {
        let u = |k: &str| v.get(k).and_then(Value::as_u64);
        match v.get("command")?.as_str()? {
            "pause" => Some(Self::Pause),
            "resume" => Some(Self::Resume),
            "set_limits" => Some(Self::SetLimits {
                concurrency: u("concurrency").and_then(|c| u32::try_from(c).ok()),
                objects_per_second: u("objects_per_second"),
                bytes_per_second: u("bytes_per_second"),
            }),
            _ => None,
        }
    }

    /// Applies the command to the job.
    pub fn apply(self, job: &mut BucketJob) -> Res<()> {
        match self {
            Self::Pause => job.pause(),
            Self::Resume => job.resume(),
            Self::SetLimits { concurrency, objects_per_second, bytes_per_second } => {
                let mut l = job.limits();
                if let Some(c) = concurrency {
                    l.concurrency = c;
                }
                if let Some(o) = objects_per_second {
                    l.objects_per_second = o;
                }
                if let Some(b) = bytes_per_second {
                    l.bytes_per_second = b;
                }
                job.set_limits(l).map_err(|e| CliError::core(e, "limits".into()))?;
            }
        }
        Ok(())
    }
}

/// The pending command for the job on `state`, removed from its file (a file that does not
/// parse is removed and reported).
pub fn take(state: &Path) -> Option<Result<Command, String>> {
    let path = control_path(state);
    let text = fs::read_to_string(&path).ok()?;
    let _ = fs::remove_file(&path);
    let cmd = serde_json::from_str::<Value>(&text).ok().as_ref().and_then(Command::from_json);
    Some(cmd.ok_or_else(|| format!("{}: not a control command: {text}", path.display())))
}

/// `isec s3 job pause|resume|set-rate`: hands the command to the job and waits (up to a few
/// seconds) until it took it.
pub fn send(state: &Path, cmd: Command) -> Res<()> {
    if !state.exists() {
        return Err(CliError::usage(format!("{}: no such job state", state.display())));
    }
    let path = control_path(state);
    write_atomic(&path, cmd.to_json().to_string().as_bytes())?;
    let Some(pid) = running(state) else {
        println!("no job is running on {}: the command applies when it starts", state.display());
        return Ok(());
    };
    let start = Instant::now();
    while path.exists() {
        if start.elapsed() > Duration::from_secs(5) {
            return Err(CliError::Io(format!("the job (pid {pid}) did not take the command within 5 s")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("applied by the job (pid {pid})");
    Ok(())
}

/// `isec s3 job status`: the progress the job saved last, and whether it runs.
pub fn status(state: &Path, as_json: bool) -> Res<()> {
    let text = fs::read_to_string(state).map_err(|e| CliError::io(state, e))?;
    let saved: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::usage(format!("{}: not a job state: {e}", state.display())))?;
    let pid = running(state);
    let mut report = super::job::report_of(&saved);
    report["running"] = json!(pid.is_some());
    report["pid"] = json!(pid);
    if as_json {
        println!("{report}");
    } else {
        let s = |k: &str| report.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        println!(
            "{} s3://{}/{}: {}{}",
            s("kind").unwrap_or_default(),
            s("bucket").unwrap_or_default(),
            s("prefix").unwrap_or_default(),
            pid.map_or_else(|| "not running".into(), |p| format!("running (pid {p})")),
            if report["paused"] == json!(true) { ", paused" } else { "" },
        );
        println!("{}", super::job::summary(&report));
        println!("limits: {}", report["limits"]);
    }
    Ok(())
}
