//! `isec`: break-glass and operations tool over `isec-core`.
//!
//! Exit codes: 0 success, 1 format or stream error, 2 usage error, 3 authentication failure,
//! 4 I/O error, 5 key error (unknown, disabled, not active), 6 keyring file open to group or
//! others, 130 interrupted.

mod crypt;
mod demo;
mod fail;
mod gateway;
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
use isec_core::range::ByteRange;

use fail::{CliError, Res};

/// Client-side envelope encryption for object storage.
///
/// Exit codes: 0 ok, 1 format or stream error, 2 usage, 3 authentication failure, 4 I/O,
/// 5 key error, 6 keyring file open to group or others, 130 interrupted.
#[derive(Parser)]
#[command(name = "isec", version, about, long_about)]
struct Cli {
    /// Keyring file (also from ISEC_KEYRING): JSON {"keys": [{"kid", "kek" (64 hex digits) |
    /// "legacy_secret", "state"}], "min_version"}, mode 0600 (`isec keygen --help` has the
    /// details).
    #[arg(long, global = true, env = "ISEC_KEYRING", value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Use a keyring file that group or others may open (refused otherwise, exit code 6).
    #[arg(long, global = true, env = "ISEC_ALLOW_OPEN_KEYRING", value_parser = clap::builder::BoolishValueParser::new())]
    allow_open_keyring: bool,
    /// No progress bars (ISEC_PROGRESS=always draws them even when stderr is not a terminal).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

fn size_arg(s: &str) -> Result<u64, String> {
    meta::parse_size(s)
}

fn range_arg(s: &str) -> Result<ByteRange, String> {
    ByteRange::parse(s)
        .map_err(|_| format!("not a byte range: {s:?} (A-B inclusive, A- to the end, -N the last N bytes; A <= B)"))
}

#[derive(Subcommand)]
enum Command {
    /// Add a fresh random KEK to a keyring file (created with mode 0600).
    ///
    /// The keyring file is JSON: {"min_version": 0, "keys": [{"kid": "kek-2026", "kek":
    /// "<64 hex digits>", "state": "active"}, ...]}. Each key has a kid (1-64 visible ASCII
    /// characters), either "kek" (a 32-byte AES key in hex) or "legacy_secret" (the previous
    /// proxy's secret string; always decrypt-only), and a state: active (at most one; new
    /// objects use it), decrypt_only (the default) or disabled. min_version 1 refuses
    /// previous-proxy objects. The keys are secrets in plain hex: the file must have mode 0600
    /// (isec refuses a keyring file that group or others may open, exit code 6, unless
    /// --allow-open-keyring or ISEC_ALLOW_OPEN_KEYRING=1 is given).
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
    /// The output is self-contained: an ISEC header carrying the envelope, then the
    /// ciphertext (SPEC.md §17), so `isec encrypt - - | isec decrypt - -` works. With --meta
    /// the envelope goes to that file instead (ready for x-amz-meta-isec) and the output is
    /// the bare ciphertext, as stored in S3. The output gets at most the input's permissions.
    ///
    /// Example: isec --keyring ring.json encrypt photo.jpg photo.jpg.isec
    Encrypt {
        /// Plaintext file, or - for stdin.
        input: String,
        /// Encrypted file to write, or - for stdout.
        output: String,
        /// Write the envelope to this metadata file (detached form) instead of the output's
        /// header.
        #[arg(long, value_name = "FILE")]
        meta: Option<PathBuf>,
        /// Frame size: a power of two from 4KiB to 8MiB.
        #[arg(long, default_value = "64KiB", value_parser = size_arg)]
        frame_size: u64,
    },
    /// Decrypt a file or stdin; a failed decrypt leaves no output file.
    ///
    /// A self-contained file (the default output of encrypt) carries its envelope; a detached
    /// one needs its metadata: --meta, --envelope, or INPUT.meta.json beside it. The output
    /// gets at most the input's permissions.
    ///
    /// Example: isec --keyring ring.json decrypt photo.jpg.isec photo.jpg --range 0-1023
    Decrypt {
        /// Encrypted file, or - for stdin.
        input: String,
        /// Plaintext file to write, or - for stdout.
        output: String,
        /// Metadata file of a detached object (default INPUT.meta.json).
        #[arg(long, value_name = "FILE")]
        meta: Option<PathBuf>,
        /// The envelope text itself (the x-amz-meta-isec value), instead of a metadata file.
        #[arg(long, conflicts_with = "meta", value_name = "TEXT")]
        envelope: Option<String>,
        /// Legacy proxy sidecar file (for its multipart objects).
        #[arg(long, value_name = "FILE")]
        sidecar: Option<PathBuf>,
        /// Plaintext byte range as in HTTP: A-B (inclusive), A- (to the end) or -N (the last N
        /// bytes; write --range=-N). Only its frames are read; a range starting past the end
        /// fails.
        #[arg(long, value_parser = range_arg, allow_hyphen_values = true, value_name = "RANGE")]
        range: Option<ByteRange>,
    },
    /// Show what an object is and which key it needs, without any key.
    ///
    /// Example: isec inspect photo.jpg.isec
    Inspect {
        /// The object file (self-contained, or detached with its metadata), or - for stdin;
        /// optional with --meta or --envelope.
        object: Option<String>,
        /// Metadata file of a detached object (default OBJECT.meta.json).
        #[arg(long, value_name = "FILE")]
        meta: Option<PathBuf>,
        /// The envelope text itself (the x-amz-meta-isec value), instead of a metadata file.
        #[arg(long, conflicts_with = "meta", value_name = "TEXT")]
        envelope: Option<String>,
        /// Stored size, when the object file is not at hand.
        #[arg(long, value_parser = size_arg)]
        size: Option<u64>,
        /// Legacy proxy sidecar file (for the layout of its multipart objects).
        #[arg(long, value_name = "FILE")]
        sidecar: Option<PathBuf>,
        /// Print one JSON object instead of aligned lines.
        #[arg(long)]
        json: bool,
    },
    /// Rewrap an envelope under the active key; the ciphertext is not changed.
    ///
    /// Given a metadata file, only it is rewritten; given a self-contained file, the file is
    /// rewritten with the new header and the same ciphertext.
    /// Example: isec --keyring ring.json rewrap photo.jpg.isec
    Rewrap {
        /// Metadata file holding the envelope, or a self-contained encrypted file.
        meta: PathBuf,
        /// Where to write the result (default: in place).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print {"from_kid", "to_kid"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-encrypt under a new DEK (or migrate a legacy object), resumable and throttled.
    ///
    /// Ctrl-C writes the checkpoint; run the same command again to resume.
    /// Example: isec --keyring ring.json reencrypt old.bin new.bin --rate 50MB/s --checkpoint job.ckpt
    Reencrypt {
        /// Source encrypted file (self-contained or detached; legacy objects too).
        input: String,
        /// New encrypted file (parts layout; its envelope goes to OUTPUT.meta.json).
        output: String,
        /// Source metadata file of a detached object (default INPUT.meta.json).
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
        #[arg(long, value_name = "FILE")]
        replace: Option<PathBuf>,
        /// The copy's envelope must be under this key (rewrapped if the source's is not).
        #[arg(long, value_name = "KID")]
        target_kid: Option<String>,
        /// The copy gets a new data key: a re-encryption, never a server-side copy.
        #[arg(long)]
        rotate_dek: bool,
        /// A previous-proxy source is re-encrypted into an isec object.
        #[arg(long)]
        migrate_legacy: bool,
        /// Refuse (not_encrypted) a source with no encryption metadata.
        #[arg(long)]
        require_encryption: bool,
        /// Override the 5 GiB single-copy limit.
        #[arg(long, value_parser = size_arg)]
        single_copy_max: Option<u64>,
        /// Print the plan as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Summarise a directory of objects (self-contained, or with .meta.json files) by class and key.
    ///
    /// Example: isec --keyring ring.json scan ./bucket-dump
    Scan {
        /// Directory of objects: self-contained files, or detached ones with .meta.json beside.
        dir: PathBuf,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Objects and bucket jobs in S3: get, put, head, cp, scan, rotate, reencrypt, migrate, job.
    S3(s3::S3Cmd),
    /// Serve an S3 endpoint that encrypts: any S3 client reads and writes plaintext, the
    /// backend bucket holds isec objects.
    Gateway(gateway::GatewayCmd),
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
    keyfile::allow_open(cli.allow_open_keyring);
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
        Command::Gateway(cmd) => gateway::run(cmd, ring(kr)?),
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
