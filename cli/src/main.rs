//! `isec`: break-glass and operations tool over `isec-core`.
//!
//! Exit codes: 0 success, 1 format or stream error, 2 usage error, 3 authentication failure,
//! 4 I/O error, 5 key error (unknown, disabled, not active), 130 interrupted.

mod crypt;
mod demo;
mod fail;
mod jobs;
mod keyfile;
mod keys;
mod meta;
mod plan;
mod progress;
mod s3;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use isec_core::KeyState;

use fail::{CliError, Res};

/// Client-side envelope encryption for object storage.
#[derive(Parser)]
#[command(name = "isec", version, about, long_about = None)]
struct Cli {
    /// Keyring file (JSON; see `isec keygen --help`). Also from ISEC_KEYRING.
    #[arg(long, global = true, env = "ISEC_KEYRING")]
    keyring: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

fn size_arg(s: &str) -> Result<u64, String> {
    meta::parse_size(s)
}

fn range_arg(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("range must be A-B (inclusive): {s}"))?;
    let a: u64 = a.trim().parse().map_err(|_| format!("bad range start: {s}"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("bad range end: {s}"))?;
    if b < a {
        return Err(format!("range end before start: {s}"));
    }
    Ok((a, b))
}

#[derive(Subcommand)]
enum Command {
    /// Add a fresh random KEK to a keyring file (created with mode 0600).
    ///
    /// Example: isec --keyring ring.json keygen --kid kek-2026
    Keygen {
        /// Key id (1-64 visible ASCII characters).
        #[arg(long)]
        kid: String,
        /// Lifecycle state: active (demotes the current active key), decrypt_only, disabled.
        #[arg(long, default_value = "active")]
        state: String,
    },
    /// Encrypt a file or stdin (`-`) under the keyring's active key.
    ///
    /// The envelope goes to OUTPUT.meta.json (or --meta), ready for x-amz-meta-isec.
    /// Example: isec --keyring ring.json encrypt photo.jpg photo.jpg.isec
    Encrypt {
        input: String,
        output: String,
        /// Metadata file to write (default OUTPUT.meta.json; required for stdout).
        #[arg(long)]
        meta: Option<PathBuf>,
        /// Frame size: a power of two from 4KiB to 8MiB.
        #[arg(long, default_value = "64KiB", value_parser = size_arg)]
        frame_size: u64,
    },
    /// Decrypt a file or stdin; a failed decrypt leaves no output file.
    ///
    /// Example: isec --keyring ring.json decrypt photo.jpg.isec photo.jpg --range 0-1023
    Decrypt {
        input: String,
        output: String,
        /// Metadata file (default INPUT.meta.json).
        #[arg(long)]
        meta: Option<PathBuf>,
        /// The envelope text itself, instead of a metadata file.
        #[arg(long, conflicts_with = "meta")]
        envelope: Option<String>,
        /// Legacy proxy sidecar file (for its multipart objects).
        #[arg(long)]
        sidecar: Option<PathBuf>,
        /// Plaintext byte range A-B, inclusive (as HTTP Range); only its frames are read.
        #[arg(long, value_parser = range_arg)]
        range: Option<(u64, u64)>,
    },
    /// Show what an object is and which key it needs, without any key.
    ///
    /// Example: isec inspect photo.jpg.isec
    Inspect {
        /// The object file (for its size); optional.
        object: Option<String>,
        #[arg(long)]
        meta: Option<PathBuf>,
        #[arg(long, conflicts_with = "meta")]
        envelope: Option<String>,
        /// Stored size, when the object file is not at hand.
        #[arg(long, value_parser = size_arg)]
        size: Option<u64>,
        #[arg(long)]
        sidecar: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Rewrap an envelope under the active key; the object body is not touched.
    ///
    /// Example: isec --keyring ring.json rewrap photo.jpg.isec.meta.json
    Rewrap {
        /// Metadata file holding the envelope.
        meta: PathBuf,
        /// Where to write the new metadata (default: in place).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt under a new DEK (or migrate a legacy object), resumable and throttled.
    ///
    /// Ctrl-C writes the checkpoint; run the same command again to resume.
    /// Example: isec --keyring ring.json reencrypt old.bin new.bin --rate 50MB/s --checkpoint job.ckpt
    Reencrypt {
        input: String,
        output: String,
        /// Source metadata file (default INPUT.meta.json).
        #[arg(long)]
        meta: Option<PathBuf>,
        /// New metadata file (default OUTPUT.meta.json).
        #[arg(long)]
        out_meta: Option<PathBuf>,
        /// Legacy proxy sidecar file.
        #[arg(long)]
        sidecar: Option<PathBuf>,
        /// Checkpoint file (default OUTPUT.isec-checkpoint); resumes when it exists.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Rate limit in bytes per second, e.g. 50MB/s (0: unlimited).
        #[arg(long, default_value = "0", value_parser = size_arg)]
        rate: u64,
        /// Frame size of the new object.
        #[arg(long, default_value = "64KiB", value_parser = size_arg)]
        frame_size: u64,
        /// Part size of the new object (a multiple of the frame size; grown to fit 10000
        /// parts): a resumed job redoes at most one part.
        #[arg(long, default_value = "8MiB", value_parser = size_arg)]
        part_size: u64,
    },
    /// Print how a copy of an object should be done, from its metadata and size.
    ///
    /// Example: isec --keyring ring.json copy-plan --meta a.meta.json --size 7GiB --target-kid kek-2026
    CopyPlan {
        /// Source metadata file.
        #[arg(long)]
        meta: Option<PathBuf>,
        /// Source stored size.
        #[arg(long, value_parser = size_arg)]
        size: u64,
        /// The source has a sidecar object.
        #[arg(long)]
        sidecar: bool,
        /// REPLACE directive with this new metadata file.
        #[arg(long)]
        replace: Option<PathBuf>,
        #[arg(long)]
        target_kid: Option<String>,
        #[arg(long)]
        rotate_dek: bool,
        #[arg(long)]
        migrate_legacy: bool,
        #[arg(long)]
        require_encryption: bool,
        /// Override the 5 GiB single-copy limit.
        #[arg(long, value_parser = size_arg)]
        single_copy_max: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Summarise a directory of objects (with .meta.json files) by class and key.
    ///
    /// Example: isec --keyring ring.json scan ./bucket-dump
    Scan {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Objects and bucket jobs in S3: get, put, head, cp, scan, rotate, reencrypt, migrate, job.
    S3(s3::S3Cmd),
    /// Manage the keyring file: list, add (KEK, recipient public or private key), activate,
    /// retire, disable, export-public.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Walk through the main job on generated data: encrypt, inspect, ranged decrypt,
    /// copy decision, rewrap, tamper.
    Demo {
        /// Plaintext size in bytes.
        #[arg(long, default_value_t = 3 * 1024 * 1024 + 17)]
        size: usize,
    },
}

fn ring(cli_ring: Option<&PathBuf>) -> Res<isec_core::Keyring> {
    let path = cli_ring.ok_or_else(|| CliError::usage("this command needs --keyring FILE (or ISEC_KEYRING)".into()))?;
    keyfile::load(path)
}

fn run(cli: Cli) -> Res<()> {
    let quiet = cli.quiet;
    let kr = cli.keyring.as_ref();
    match cli.command {
        Command::Keygen { kid, state } => {
            let path = kr.ok_or_else(|| CliError::usage("keygen needs --keyring FILE".into()))?;
            let st = KeyState::from_name(&state).map_err(|_| CliError::usage(format!("unknown state {state}")))?;
            keyfile::add_generated(path, &kid, st)?;
            println!("added {kid} ({}) to {}", st.name(), path.display());
            Ok(())
        }
        Command::Encrypt { input, output, meta, frame_size } => {
            crypt::encrypt(&input, &output, &ring(kr)?, meta, frame_size, quiet)
        }
        Command::Decrypt { input, output, meta, envelope, sidecar, range } => crypt::decrypt(
            &input,
            &output,
            &ring(kr)?,
            meta.as_deref(),
            envelope.as_deref(),
            sidecar.as_deref(),
            range,
            quiet,
        ),
        Command::Inspect { object, meta, envelope, size, sidecar, json } => {
            crypt::inspect(object.as_deref(), meta.as_deref(), envelope.as_deref(), size, sidecar.as_deref(), json)
        }
        Command::Rewrap { meta, out, json } => crypt::rewrap(&ring(kr)?, &meta, out.as_deref(), json),
        Command::Reencrypt { input, output, meta, out_meta, sidecar, checkpoint, rate, frame_size, part_size } => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            // A second Ctrl-C during the checkpoint write is ignored: the first one is honoured.
            let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
            let cp = checkpoint.unwrap_or_else(|| PathBuf::from(format!("{output}.isec-checkpoint")));
            let job = jobs::Job {
                input: &input,
                output: &output,
                meta_in: meta.as_deref(),
                meta_out: out_meta.as_deref(),
                sidecar: sidecar.as_deref(),
                checkpoint: &cp,
                rate,
                frame_size,
                part_size,
                quiet,
            };
            jobs::reencrypt(&ring(kr)?, &job, &stop)
        }
        Command::CopyPlan {
            meta,
            size,
            sidecar,
            replace,
            target_kid,
            rotate_dek,
            migrate_legacy,
            require_encryption,
            single_copy_max,
            json,
        } => {
            let ring = match kr {
                Some(p) => Some(keyfile::load(p)?),
                None => None,
            };
            let args = plan::PlanArgs {
                meta: match meta {
                    Some(p) => meta::read(&p)?,
                    None => Vec::new(),
                },
                size,
                sidecar,
                replace: replace.is_some(),
                new_meta: match replace {
                    Some(p) => meta::read(&p)?,
                    None => Vec::new(),
                },
                target_kid: target_kid.as_deref(),
                rotate_dek,
                migrate_legacy,
                require_encryption,
                single_copy_max,
                as_json: json,
            };
            plan::copy_plan(ring.as_ref(), &args)
        }
        Command::Scan { dir, json } => plan::scan(&ring(kr)?, &dir, json),
        Command::S3(cmd) => s3::run(cmd, || ring(kr), kr.is_some(), quiet),
        Command::Keys(cmd) => keys::run(cmd, kr),
        Command::Demo { size } => demo::run(size).map_err(|e| CliError::Usage(e.to_string())),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isec: {e}");
            e.exit_code()
        }
    }
}
