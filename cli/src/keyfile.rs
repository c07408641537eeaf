//! The keyring file: JSON `{"min_version": 0, "keys": [{"kid", "kek" (hex) | "legacy_secret",
//! "state"}]}`. Written with mode 0600; the KEKs in it are secrets in plain hex, so a file that
//! group or others may open is refused, as ssh refuses an open private key, unless the
//! user says otherwise (`--allow-open-keyring` / `ISEC_ALLOW_OPEN_KEYRING=1`).

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use isec_core::{Kek, KeyState, Keyring};
use serde_json::{Value, json};

use crate::fail::{CliError, Res};

static ALLOW_OPEN: AtomicBool = AtomicBool::new(false);

/// Accept keyring files that group or others may open (`--allow-open-keyring`).
pub fn allow_open(yes: bool) {
    ALLOW_OPEN.store(yes, Ordering::Relaxed);
}

/// Refuses a keyring file with any permission for group or others (Unix).
fn check_private(path: &Path) -> Res<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(|e| CliError::io(path, e))?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let what = format!(
                "{}: keyring file permissions {mode:04o} are too open: it holds keys in plain hex, and group or others may open it",
                path.display()
            );
            if ALLOW_OPEN.load(Ordering::Relaxed) {
                eprintln!("isec: warning: {what} (used anyway: --allow-open-keyring)");
                return Ok(());
            }
            return Err(CliError::OpenKeyring(format!(
                "{what}. Run `chmod 600 {}`, or pass --allow-open-keyring (ISEC_ALLOW_OPEN_KEYRING=1) to use it anyway",
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads a keyring file (parsed by core, `Keyring::from_file_text`; the text is wiped after).
pub fn load(path: &Path) -> Res<Keyring> {
    check_private(path)?;
    let text = zeroize::Zeroizing::new(fs::read(path).map_err(|e| CliError::io(path, e))?);
    Keyring::from_file_text(&text)
        .map_err(|e| CliError::core(e, format!("{}: not a valid keyring file", path.display())))
}

fn read_doc(path: &Path) -> Res<Value> {
    let text = fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| CliError::usage(format!("{}: not a keyring file: {e}", path.display())))
}

/// Adds a fresh random KEK to the keyring file (creating it); an active key demotes the
/// previous active key to decrypt-only.
pub fn add_generated(path: &Path, kid: &str, state: KeyState) -> Res<()> {
    let mut doc = if path.exists() { read_doc(path)? } else { json!({"min_version": 0, "keys": []}) };
    // Validate against the same rules the keyring applies.
    let mut probe = if path.exists() { load(path)? } else { Keyring::new() };
    let kek = Kek::generate().map_err(|e| CliError::core(e, "randomness".into()))?;
    probe.add_kek(kid, kek.clone(), state).map_err(|e| CliError::core(e, format!("key {kid}")))?;
    let keys =
        doc["keys"].as_array_mut().ok_or_else(|| CliError::usage(format!("{}: no \"keys\" array", path.display())))?;
    if state == KeyState::Active {
        for k in keys.iter_mut() {
            if k["state"] == "active" {
                k["state"] = json!("decrypt_only");
            }
        }
    }
    keys.push(json!({"kid": kid, "kek": hex::encode(kek.expose_secret()), "state": state.name()}));
    write_secret(path, &serde_json::to_string_pretty(&doc).unwrap_or_default())
}

/// Writes a keyring file with mode 0600: to a temporary beside it, synced, then renamed over
/// it, so a crash leaves the old file or the new one, never a torn keyring.
pub fn write_secret(path: &Path, text: &str) -> Res<()> {
    use std::io::Write;
    let tmp = path.with_extension("isec-tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(CliError::io(path, e));
    }
    Ok(())
}
