//! What the `isec` command says when something is wrong: errors that name what they are
//! about, the keyring file's permissions, progress lines that do not outlive their run, and
//! help text for every argument.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

use support::{fails, ok};

fn isec(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("isec").unwrap();
    c.current_dir(dir)
        .env("ISEC_KEYRING", dir.join("ring.json"))
        .env_remove("CI")
        .env_remove("ISEC_PROGRESS")
        .env_remove("ISEC_ALLOW_OPEN_KEYRING");
    c
}

fn setup(size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok(isec(dir.path()).args(["keygen", "--kid", "kek-1"]));
    fs::write(dir.path().join("plain.bin"), (0..size).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    dir
}

#[test]
fn key_errors_name_the_key() {
    let dir = setup(1000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    let other = tempfile::tempdir().unwrap();
    ok(isec(other.path()).args(["keygen", "--kid", "kek-9"]));
    let err = fails(
        isec(d).env("ISEC_KEYRING", other.path().join("ring.json")).args(["decrypt", "obj.isec", "o"]),
        5,
        "unknown_kid",
    );
    assert!(err.contains("\"kek-1\""), "names the missing kid: {err}");
    // A kid given twice is its own error, from keygen and from the file.
    fails(isec(d).args(["keygen", "--kid", "kek-1"]), 2, "duplicate_kid");
    let text = fs::read_to_string(d.join("ring.json")).unwrap();
    let twice = text.replacen("\"keys\": [", "\"keys\": [{\"kid\": \"kek-1\", \"legacy_secret\": \"x\"},", 1);
    fs::write(d.join("ring.json"), twice).unwrap();
    fails(isec(d).args(["decrypt", "obj.isec", "o"]), 2, "duplicate_kid");
}

#[test]
fn a_checkpoint_of_another_input_says_so() {
    let dir = setup(2_000_000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "a.isec"]));
    ok(isec(d).args(["encrypt", "plain.bin", "b.isec"]));
    let args = |input: &'static str, rate: &'static str| {
        ["reencrypt", input, "new.isec", "--checkpoint", "job.ckpt", "--rate", rate, "--quiet"]
    };
    // Interrupted early (throttled), the job leaves its checkpoint, and its progress bar
    // (forced on) is cleared before the one message.
    let mut child = isec(d)
        .env("ISEC_PROGRESS", "always")
        .args(["reencrypt", "a.isec", "new.isec", "--checkpoint", "job.ckpt", "--rate", "200KB/s"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(d.join("job.ckpt").exists());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.rfind("reencrypt [").unwrap_or_else(|| panic!("a bar was drawn: {err:?}"));
    let msg = err[last..].find("isec: interrupted").unwrap_or_else(|| panic!("{err:?}"));
    assert!(err[last..last + msg].contains("\x1b[2K"), "bar cleared before the message: {err:?}");
    assert_eq!(err.matches("interrupted at").count(), 1, "{err:?}");
    let err = fails(isec(d).args(args("b.isec", "0")), 1, "belongs to another input");
    assert!(err.contains("job.ckpt") && err.contains("b.isec"), "{err}");
    ok(isec(d).args(args("a.isec", "0")));
}

#[cfg(unix)]
#[test]
fn a_keyring_file_open_to_others_is_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = setup(1000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    fs::set_permissions(d.join("ring.json"), fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(isec(d).args(["decrypt", "obj.isec", "o"]), 6, "0644");
    assert!(err.contains("chmod 600") && err.contains("--allow-open-keyring"), "{err}");
    assert!(!d.join("o").exists());
    fails(isec(d).args(["keygen", "--kid", "kek-2"]), 6, "too open");
    let out = isec(d).args(["decrypt", "obj.isec", "o"]).env("ISEC_ALLOW_OPEN_KEYRING", "1").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"), "still warns");
    ok(isec(d).args(["--allow-open-keyring", "decrypt", "obj.isec", "o2"]));
    fs::set_permissions(d.join("ring.json"), fs::Permissions::from_mode(0o640)).unwrap();
    fails(isec(d).args(["decrypt", "obj.isec", "o3"]), 6, "0640");
    fs::set_permissions(d.join("ring.json"), fs::Permissions::from_mode(0o600)).unwrap();
    ok(isec(d).args(["decrypt", "obj.isec", "o3"]));
}

#[test]
fn the_keyring_format_is_documented_in_help() {
    let top = ok(Command::cargo_bin("isec").unwrap().arg("--help"));
    let keygen = ok(Command::cargo_bin("isec").unwrap().args(["keygen", "--help"]));
    for needle in ["kek", "64 hex", "0600"] {
        assert!(top.contains(needle), "--keyring help lacks {needle:?}: {top}");
    }
    for needle in ["\"kek\"", "legacy_secret", "decrypt_only", "min_version", "0600", "ISEC_ALLOW_OPEN_KEYRING"] {
        assert!(keygen.contains(needle), "keygen --help lacks {needle:?}: {keygen}");
    }
}

/// The text of a forced progress bar, and what stderr holds after its last drawing.
#[test]
fn a_failed_run_leaves_no_progress_line() {
    let dir = setup(3_000_000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    let mut ct = fs::read(d.join("obj.isec")).unwrap();
    let n = ct.len();
    ct[n - 10] ^= 1;
    fs::write(d.join("bad.isec"), &ct).unwrap();
    let out = isec(d).env("ISEC_PROGRESS", "always").args(["decrypt", "bad.isec", "o"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.rfind("eta").unwrap_or_else(|| panic!("a bar was drawn: {err:?}"));
    let rest = &err[last..];
    let msg = rest.find("isec:").expect("the error follows");
    assert!(rest[..msg].contains("\x1b[2K"), "the bar's line is cleared before the message: {rest:?}");
    assert_eq!(err.matches("authentication failed").count(), 1, "one message: {err:?}");
    // And a run that succeeds leaves nothing either.
    let out = isec(d).env("ISEC_PROGRESS", "always").args(["decrypt", "obj.isec", "o"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.rfind("eta").unwrap_or_else(|| panic!("a bar was drawn: {err:?}"));
    assert!(err[last..].contains("\x1b[2K"), "{err:?}");
}

/// Subcommand names listed under `Commands:` in a help text.
fn subcommands(help: &str) -> Vec<String> {
    let Some(at) = help.find("Commands:") else { return Vec::new() };
    help[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  ") || l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Arguments and options in the `Arguments:` and `Options:` sections with no help text.
fn undocumented(help: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut in_section = false;
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_section = line.starts_with("Arguments:") || line.starts_with("Options:");
            continue;
        }
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if !in_section || !(t.starts_with('-') || t.starts_with('<') || t.starts_with('[')) || indent > 6 {
            continue;
        }
        // Short form: help on the same line after two spaces; long form: on the next lines,
        // indented deeper.
        let same_line = t.split_once("  ").is_some_and(|(_, h)| !h.trim().is_empty());
        let next_line = lines.get(i + 1).is_some_and(|n| {
            let nt = n.trim_start();
            !nt.is_empty() && n.len() - nt.len() > indent + 2
        });
        if !same_line && !next_line {
            missing.push(t.to_string());
        }
    }
    missing
}

#[test]
fn every_argument_and_option_has_help() {
    let mut queue = vec![Vec::<String>::new()];
    let mut missing = Vec::new();
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        for flag in ["-h", "--help"] {
            let help = ok(Command::cargo_bin("isec").unwrap().args(&path).arg(flag));
            for m in undocumented(&help) {
                missing.push(format!("isec {} {flag}: {m}", path.join(" ")));
            }
            if flag == "-h" {
                for sub in subcommands(&help) {
                    let mut p = path.clone();
                    p.push(sub);
                    queue.push(p);
                }
            }
        }
        seen += 1;
    }
    assert!(seen > 15, "walked {seen} commands");
    assert!(missing.is_empty(), "arguments without help:\n{}", missing.join("\n"));
}
