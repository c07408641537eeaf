//! `isec keys`: the keyring file's lifecycle (SPEC.md §10.3). Core reads and writes the file
//! (`Keyring::from_file_text`, `to_file_text`) and enforces every rule (one active key, kinds,
//! states); this module only chooses what to change and where the file goes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use clap::{Args, Subcommand, ValueEnum};
use isec_core::keyring::KeyKind;
use isec_core::recipient::{PrivateKey, PublicKey};
use isec_core::{Kek, KeyState, Keyring};
use serde_json::{Value, json};

use crate::fail::{CliError, Res};
use crate::keyfile;

/// What `isec keys` does.
#[derive(Subcommand)]
pub enum KeysCmd {
    /// List the keys: kid, kind, state, created (and a recipient's public key).
    List {
        /// One JSON object per key, in an array.
        #[arg(long)]
        json: bool,
    },
    /// Add a key: a fresh one (--generate), a recipient's public key, or a key read from a
    /// file (a private key text, or a KEK as 64 hex digits). The file is created with mode
    /// 0600 if missing.
    ///
    /// Examples:
    ///   isec --keyring ring.json keys add kek-2026 --generate kek
    ///   isec --keyring ring.json keys add archive --generate x25519 --state decrypt_only
    ///   isec --keyring uploads.json keys add archive --public-key isec-x25519-public:...
    #[command(verbatim_doc_comment)]
    Add(AddArgs),
    /// Make KID the active key (the previous active key becomes decrypt-only).
    Activate {
        /// Key id.
        kid: String,
    },
    /// Make KID decrypt-only: it opens its objects but creates none.
    Retire {
        /// Key id.
        kid: String,
    },
    /// Disable KID: it neither creates nor opens. Refused while a scan of the places named
    /// by --check still finds objects under KID, unless --force.
    ///
    /// Example: isec --keyring ring.json keys disable kek-2025 --check s3://bucket/photos --check ./dump
    Disable {
        /// Key id.
        kid: String,
        /// Where objects under KID may live: a directory (as `isec scan`) or s3://BUCKET[/PREFIX]
        /// (as `isec s3 scan`, with the --endpoint-url/--profile/--region options of `isec s3`).
        /// Repeatable.
        #[arg(long)]
        check: Vec<String>,
        /// Disable even though objects were found, or without any --check.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: crate::s3::Conn,
    },
    /// Print a recipient's public key text, for writers that must hold only that.
    ExportPublic {
        /// Key id of a public-key recipient.
        kid: String,
    },
}

/// Arguments of `isec keys add`.
#[derive(Args)]
pub struct AddArgs {
    /// Key id (1-64 visible ASCII characters).
    kid: String,
    /// Generate a fresh key of this kind.
    #[arg(long, value_enum, conflicts_with_all = ["public_key", "from_file"])]
    generate: Option<Generate>,
    /// A recipient's public key text (isec-x25519-public:...): encrypt-only.
    #[arg(long, conflicts_with = "from_file")]
    public_key: Option<String>,
    /// A file holding a private key text (isec-x25519-private:...) or a KEK (64 hex digits).
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Lifecycle state: active (demotes the current active key), decrypt_only, disabled.
    #[arg(long, default_value = "active")]
    state: String,
}

/// Kinds of key `isec keys add --generate` makes.
#[derive(Clone, Copy, ValueEnum)]
enum Generate {
    /// A 256-bit KEK (AES-KWP).
    Kek,
    /// An X25519 recipient key pair (HPKE); its public key is printed.
    X25519,
}

/// Runs `isec keys ...` on the keyring file `path`.
pub fn run(cmd: KeysCmd, path: Option<&PathBuf>) -> Res<()> {
    let path = path.ok_or_else(|| CliError::usage("isec keys needs --keyring FILE (or ISEC_KEYRING)".into()))?;
    match cmd {
        KeysCmd::List { json } => list(&keyfile::load(path)?, json),
        KeysCmd::Add(a) => add(path, &a),
        KeysCmd::Activate { kid } => set_state(path, &kid, KeyState::Active),
        KeysCmd::Retire { kid } => set_state(path, &kid, KeyState::DecryptOnly),
        KeysCmd::Disable { kid, check, force, conn } => disable(path, &kid, &check, force, &conn),
        KeysCmd::ExportPublic { kid } => {
            let ring = keyfile::load(path)?;
            let info = ring.keys().into_iter().find(|k| k.kid == kid).ok_or_else(|| unknown(&kid, path))?;
            let pk = info.public_key.ok_or_else(|| {
                CliError::usage(format!("{kid} is a {}, not a public-key recipient", info.kind.name()))
            })?;
            println!("{}", pk.to_text());
            Ok(())
        }
    }
}

fn unknown(kid: &str, path: &Path) -> CliError {
    CliError::core(isec_core::Error::UnknownKid, format!("key {kid} is not in {}", path.display()))
}

fn list(ring: &Keyring, as_json: bool) -> Res<()> {
    let keys = ring.keys();
    if as_json {
        let v: Vec<Value> = keys
            .iter()
            .map(|k| {
                json!({"kid": k.kid, "kind": k.kind.name(), "state": k.state.name(), "created": k.created,
                       "public_key": k.public_key.map(|p| p.to_text())})
            })
            .collect();
        println!("{}", Value::Array(v));
        return Ok(());
    }
    println!("{:<24} {:<12} {:<13} created", "kid", "kind", "state");
    for k in keys {
        println!("{:<24} {:<12} {:<13} {}", k.kid, k.kind.name(), k.state.name(), k.created.as_deref().unwrap_or("-"));
    }
    Ok(())
}

/// The keyring in `path`, or an empty one when the file does not exist yet.
fn load_or_new(path: &Path) -> Res<Keyring> {
    if path.exists() { keyfile::load(path) } else { Ok(Keyring::new()) }
}

fn save(path: &Path, ring: &Keyring) -> Res<()> {
    let text = ring.to_file_text().map_err(|e| CliError::core(e, format!("{}: cannot be written", path.display())))?;
    keyfile::write_secret(path, &text)
}

fn add(path: &Path, a: &AddArgs) -> Res<()> {
    let state = KeyState::from_name(&a.state).map_err(|_| CliError::usage(format!("unknown state {}", a.state)))?;
    let mut ring = load_or_new(path)?;
    let ctx = || format!("key {}", a.kid);
    let mut public = None;
    let added = match (a.generate, &a.public_key, &a.from_file) {
        (Some(Generate::Kek), None, None) => {
            let kek = Kek::generate().map_err(|e| CliError::core(e, "randomness".into()))?;
            ring.add_kek(&a.kid, kek, state)
        }
        (Some(Generate::X25519), None, None) => {
            let sk = PrivateKey::generate().map_err(|e| CliError::core(e, "randomness".into()))?;
            public = Some(sk.public_key());
            ring.add_private_key(&a.kid, sk, state)
        }
        (None, Some(text), None) => {
            let pk = PublicKey::from_text(text)
                .map_err(|e| CliError::core(e, "--public-key is not an isec-x25519-public: key text".into()))?;
            ring.add_public_key(&a.kid, pk, state)
        }
        (None, None, Some(file)) => {
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(file).map_err(|e| CliError::io(file, e))?);
            let t = text.trim();
            if t.starts_with(isec_core::recipient::PRIVATE_PREFIX) {
                let sk = PrivateKey::from_text(t).map_err(|e| CliError::core(e, format!("{}", file.display())))?;
                public = Some(sk.public_key());
                ring.add_private_key(&a.kid, sk, state)
            } else {
                let bytes = zeroize::Zeroizing::new(hex::decode(t).map_err(|_| {
                    CliError::usage(format!("{}: neither a private key text nor a 64-hex-digit KEK", file.display()))
                })?);
                let kek = Kek::from_slice(&bytes)
                    .map_err(|_| CliError::usage(format!("{}: a KEK is 32 bytes (64 hex digits)", file.display())))?;
                ring.add_kek(&a.kid, kek, state)
            }
        }
        _ => return Err(CliError::usage("keys add needs one of --generate, --public-key, --from-file".into())),
    };
    added.map_err(|e| CliError::core(e, ctx()))?;
    let now = DateTime::from(SystemTime::now()).fmt(DateTimeFormat::DateTime).unwrap_or_default();
    ring.set_created(&a.kid, &now).map_err(|e| CliError::core(e, ctx()))?;
    save(path, &ring)?;
    let kind = ring.keys().into_iter().find(|k| k.kid == a.kid).map_or(KeyKind::Kek, |k| k.kind);
    println!("added {} ({}, {}) to {}", a.kid, kind.name(), state.name(), path.display());
    if let Some(pk) = public {
        println!("public key: {}", pk.to_text());
    }
    Ok(())
}

fn set_state(path: &Path, kid: &str, state: KeyState) -> Res<()> {
    let mut ring = keyfile::load(path)?;
    if ring.state(kid).is_none() {
        return Err(unknown(kid, path));
    }
    ring.set_state(kid, state).map_err(|e| CliError::core(e, format!("key {kid}")))?;
    save(path, &ring)?;
    println!("{kid} is {} in {}", state.name(), path.display());
    Ok(())
}

fn disable(path: &Path, kid: &str, check: &[String], force: bool, conn: &crate::s3::Conn) -> Res<()> {
    let ring = std::sync::Arc::new(keyfile::load(path)?);
    if ring.state(kid).is_none() {
        return Err(unknown(kid, path));
    }
    if check.is_empty() && !force {
        return Err(CliError::usage(format!(
            "disabling {kid} makes its objects unreadable: name where they may live with --check DIR or \
             --check s3://BUCKET/PREFIX (refused while any is found), or pass --force"
        )));
    }
    let mut found = Vec::new();
    for place in check {
        let n = if place.starts_with("s3://") {
            crate::s3::objects_under_kid(conn, &ring, place, kid)?
        } else {
            crate::plan::objects_under_kid(&ring, Path::new(place), kid)?
        };
        if n > 0 {
            found.push(format!("{n} in {place}"));
        }
    }
    if !found.is_empty() && !force {
        return Err(CliError::KeyInUse(format!(
            "{kid} still protects objects ({}): rotate them first (isec s3 rotate), or pass --force",
            found.join(", ")
        )));
    }
    set_state(path, kid, KeyState::Disabled)
}
