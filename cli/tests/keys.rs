//! `isec keys`: the keyring file's lifecycle, and public-key recipients from the command
//! line: a writer's keyring with only the public key encrypts and cannot decrypt.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

use support::{fails, ok};

fn isec(dir: &Path, ring: &str) -> Command {
    let mut c = Command::cargo_bin("isec").unwrap();
    c.current_dir(dir).env("ISEC_KEYRING", dir.join(ring)).env_remove("CI").arg("--quiet");
    c
}

fn list(dir: &Path, ring: &str) -> Vec<Value> {
    let out = ok(isec(dir, ring).args(["keys", "list", "--json"]));
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

#[test]
fn keys_are_added_listed_activated_retired_and_exported() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(isec(dir, "ring.json").args(["keys", "add", "kek-1", "--generate", "kek"]));
    let out =
        ok(isec(dir, "ring.json").args(["keys", "add", "archive", "--generate", "x25519", "--state", "decrypt_only"]));
    assert!(out.contains("public key: isec-x25519-public:"), "{out}");
    let keys = list(dir, "ring.json");
    let row = |k: &Value| {
        (
            k["kid"].as_str().unwrap().to_string(),
            k["kind"].as_str().unwrap().to_string(),
            k["state"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        keys.iter().map(row).collect::<Vec<_>>(),
        [
            ("kek-1".into(), "kek".into(), "active".into()),
            ("archive".into(), "private_key".into(), "decrypt_only".into())
        ]
    );
    assert!(keys.iter().all(|k| k["created"].as_str().is_some_and(|c| c.starts_with("20") && c.ends_with('Z'))));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(dir.join("ring.json")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The table form names the same keys.
    let table = ok(isec(dir, "ring.json").args(["keys", "list"]));
    assert!(table.contains("archive") && table.contains("private_key") && table.contains("decrypt_only"), "{table}");

    ok(isec(dir, "ring.json").args(["keys", "activate", "archive"]));
    let states: Vec<_> = list(dir, "ring.json").iter().map(|k| k["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(states, ["decrypt_only", "active"]);
    ok(isec(dir, "ring.json").args(["keys", "retire", "archive"]));
    assert_eq!(list(dir, "ring.json")[1]["state"], "decrypt_only");

    let public = ok(isec(dir, "ring.json").args(["keys", "export-public", "archive"])).trim().to_string();
    assert_eq!(Some(public.as_str()), list(dir, "ring.json")[1]["public_key"].as_str());
    fails(isec(dir, "ring.json").args(["keys", "export-public", "kek-1"]), 2, "not a public-key recipient");
    fails(isec(dir, "ring.json").args(["keys", "activate", "nope"]), 5, "key nope is not in");
    fails(isec(dir, "ring.json").args(["keys", "add", "kek-1", "--generate", "kek"]), 2, "key kek-1");
    fails(
        isec(dir, "ring.json").args(["keys", "add", "x", "--public-key", "isec-x25519-public:AAAA"]),
        2,
        "--public-key",
    );
    fails(isec(dir, "ring.json").args(["keys", "add", "x"]), 2, "needs one of");

    // A KEK and a private key imported from files.
    fs::write(dir.join("kek.hex"), "ab".repeat(32)).unwrap();
    ok(isec(dir, "ring.json").args(["keys", "add", "imported", "--from-file", "kek.hex", "--state", "decrypt_only"]));
    fs::write(dir.join("bad.hex"), "abc").unwrap();
    fails(
        isec(dir, "ring.json").args(["keys", "add", "bad", "--from-file", "bad.hex"]),
        2,
        "neither a private key text",
    );
    assert_eq!(list(dir, "ring.json").len(), 3);
}

#[test]
fn a_writer_with_only_the_public_key_encrypts_and_cannot_decrypt() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(isec(dir, "owner.json").args(["keys", "add", "archive", "--generate", "x25519"]));
    let public = ok(isec(dir, "owner.json").args(["keys", "export-public", "archive"]));
    ok(isec(dir, "writer.json").args(["keys", "add", "archive", "--public-key", public.trim()]));
    assert_eq!(list(dir, "writer.json")[0]["kind"], "public_key");
    let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(dir.join("plain.bin"), &plain).unwrap();
    ok(isec(dir, "writer.json").args(["encrypt", "plain.bin", "obj.isec"]));
    fails(isec(dir, "writer.json").args(["decrypt", "obj.isec", "out.bin"]), 5, "public_key_only");
    assert!(!dir.join("out.bin").exists());
    ok(isec(dir, "owner.json").args(["decrypt", "obj.isec", "out.bin"]));
    assert_eq!(fs::read(dir.join("out.bin")).unwrap(), plain);
    // Rewrapped from the recipient to a KEK (the header only; the ciphertext is unchanged).
    ok(isec(dir, "owner.json").args(["keys", "add", "kek-1", "--generate", "kek"]));
    let before = fs::read(dir.join("obj.isec")).unwrap();
    ok(isec(dir, "owner.json").args(["rewrap", "obj.isec"]));
    let after = fs::read(dir.join("obj.isec")).unwrap();
    assert_ne!(before, after);
    assert!(before.ends_with(&after[after.len() - 200_000..]), "the ciphertext is kept");
    ok(isec(dir, "owner.json").args(["decrypt", "obj.isec", "out2.bin"]));
    assert_eq!(fs::read(dir.join("out2.bin")).unwrap(), plain);
    let inspect = ok(isec(dir, "owner.json").args(["inspect", "obj.isec", "--json"]));
    assert!(inspect.contains("\"kek-1\""), "{inspect}");
}

#[test]
fn disable_is_refused_while_a_scan_finds_objects_under_the_key() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(isec(dir, "ring.json").args(["keys", "add", "old", "--generate", "kek"]));
    fs::create_dir(dir.join("dump")).unwrap();
    fs::write(dir.join("plain.bin"), b"objects under old").unwrap();
    ok(isec(dir, "ring.json").args(["encrypt", "plain.bin", "dump/a.isec", "--meta", "dump/a.isec.meta.json"]));
    fails(isec(dir, "ring.json").args(["keys", "disable", "old"]), 2, "--check");
    fails(isec(dir, "ring.json").args(["keys", "disable", "old", "--check", "dump"]), 5, "1 in dump");
    assert_eq!(list(dir, "ring.json")[0]["state"], "active");
    // Once its objects are gone (rotated elsewhere), the check passes.
    ok(isec(dir, "ring.json").args(["keys", "add", "new", "--generate", "kek"]));
    fs::remove_file(dir.join("dump/a.isec")).unwrap();
    fs::remove_file(dir.join("dump/a.isec.meta.json")).unwrap();
    ok(isec(dir, "ring.json").args(["keys", "disable", "old", "--check", "dump"]));
    assert_eq!(list(dir, "ring.json")[0]["state"], "disabled");
    // --force disables whatever a scan finds.
    ok(isec(dir, "ring.json").args(["encrypt", "plain.bin", "dump/b.isec", "--meta", "dump/b.isec.meta.json"]));
    fails(isec(dir, "ring.json").args(["keys", "disable", "new", "--check", "dump"]), 5, "still protects");
    ok(isec(dir, "ring.json").args(["keys", "disable", "new", "--check", "dump", "--force"]));
    assert_eq!(list(dir, "ring.json")[1]["state"], "disabled");
}
