//! The `isec` command on success and failure paths, as an operator would run it.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

use support::{fails, ok};

fn isec(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("isec").unwrap();
    c.current_dir(dir).env("ISEC_KEYRING", dir.join("ring.json")).env_remove("CI");
    c
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

/// A temp dir with a keyring holding one active key, and a plaintext file.
fn setup(size: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    ok(isec(dir.path()).args(["keygen", "--kid", "kek-1"]));
    let p = dir.path().join("plain.bin");
    fs::write(&p, data(size)).unwrap();
    (dir, p)
}

#[test]
fn keygen_writes_a_private_keyring_with_one_active_key() {
    let (dir, _) = setup(10);
    ok(isec(dir.path()).args(["keygen", "--kid", "kek-2"]));
    let ring: Value = serde_json::from_str(&fs::read_to_string(dir.path().join("ring.json")).unwrap()).unwrap();
    let states: Vec<_> =
        ring["keys"].as_array().unwrap().iter().map(|k| k["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(states, ["decrypt_only", "active"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(dir.path().join("ring.json")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    fails(isec(dir.path()).args(["keygen", "--kid", "kek-2"]), 2, "duplicate_kid");
    fails(isec(dir.path()).args(["keygen", "--kid", "bad kid"]), 2, "invalid_parameter");
}

#[test]
fn encrypt_decrypt_inspect_and_ranges() {
    let (dir, plain) = setup(300_001);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    assert!(!d.join("obj.isec.meta.json").exists(), "self-contained: no metadata file");
    assert_eq!(&fs::read(d.join("obj.isec")).unwrap()[..5], b"ISEC\x01");
    ok(isec(d).args(["decrypt", "obj.isec", "back.bin"]));
    assert_eq!(fs::read(d.join("back.bin")).unwrap(), fs::read(&plain).unwrap());

    let info: Value =
        serde_json::from_str(&ok(isec(d).env_remove("ISEC_KEYRING").args(["inspect", "obj.isec", "--json"]))).unwrap();
    assert_eq!(info["format"], "isec");
    assert_eq!(info["kid"], "kek-1");
    assert_eq!(info["plaintext_len"], 300_001);
    assert_eq!(info["frame_size"], 65_536);

    // Inspect's failure paths: a missing metadata file is an I/O error; unreadable metadata
    // is reported with its code.
    fails(isec(d).env_remove("ISEC_KEYRING").args(["inspect", "--meta", "missing.json"]), 4, "missing.json");
    let bad: Value = serde_json::from_str(&ok(isec(d).args(["inspect", "--envelope", "AAAA", "--json"]))).unwrap();
    assert_eq!((bad["format"].as_str(), bad["error"].as_str()), (Some("unreadable"), Some("unsupported_version")));
    for (a, b) in [(0u64, 0u64), (65_530, 65_545), (100_000, 299_999), (300_000, 300_000), (299_990, 400_000)] {
        ok(isec(d).args(["decrypt", "obj.isec", "part.bin", "--range", &format!("{a}-{b}")]));
        let want = &data(300_001)[a as usize..=(b as usize).min(300_000)];
        assert_eq!(fs::read(d.join("part.bin")).unwrap(), want, "range {a}-{b}");
    }
    fails(isec(d).args(["decrypt", "obj.isec", "x", "--range", "9-3"]), 2, "range");
}

#[test]
fn stdin_and_stdout_pipe() {
    let (dir, _) = setup(70_000);
    let d = dir.path();
    let mut enc = isec(d)
        .args(["encrypt", "-", "-", "--meta", "m.json", "--frame-size", "4KiB"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = enc.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data(70_000)).unwrap());
    let out = enc.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    fs::write(d.join("piped.isec"), &out.stdout).unwrap();
    let mut dec = isec(d)
        .args(["decrypt", "-", "-", "--meta", "m.json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = dec.stdin.take().unwrap();
    let ct = out.stdout.clone();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &ct).unwrap());
    let back = dec.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(back.status.success());
    assert_eq!(back.stdout, data(70_000));
    // Detached ciphertext on stdin without its metadata: the message says what is missing.
    fails(isec(d).args(["decrypt", "-", "-"]).stdin(fs::File::open(d.join("piped.isec")).unwrap()), 2, "--meta");
}

#[test]
fn tampered_object_fails_authentication_and_leaves_no_output() {
    let (dir, _) = setup(200_000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    let mut ct = fs::read(d.join("obj.isec")).unwrap();
    ct[150_000] ^= 1;
    fs::write(d.join("obj.isec"), &ct).unwrap();
    let err = fails(isec(d).args(["decrypt", "obj.isec", "out.bin"]), 3, "authentication_failed");
    assert!(err.contains("obj.isec"), "error names the file: {err}");
    assert!(!d.join("out.bin").exists(), "no output file after a failed decrypt");
    assert!(!d.join("out.bin.isec-partial").exists());
    // Truncation is a stream error; missing key is a key error; missing file is I/O.
    let header = ct.len() - (200_000 / 65_536 + 1) * 28 - 200_000;
    fs::write(d.join("short.isec"), &ct[..header + 65_564]).unwrap();
    fails(isec(d).args(["decrypt", "short.isec", "o2"]), 1, "truncated");
    let other = tempfile::tempdir().unwrap();
    ok(isec(other.path()).args(["keygen", "--kid", "kek-9"]));
    fails(
        isec(d).env("ISEC_KEYRING", other.path().join("ring.json")).args(["decrypt", "obj.isec", "o3"]),
        5,
        "unknown_kid",
    );
    fails(isec(d).args(["decrypt", "nope.isec", "o4"]), 4, "nope.isec");
    fails(isec(d).args(["decrypt", "obj.isec", "o5", "--envelope", "AAAA"]), 1, "unsupported_version");
}

#[test]
fn rewrap_changes_only_the_metadata() {
    let (dir, plain) = setup(50_000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec", "--meta", "obj.isec.meta.json"]));
    let body = fs::read(d.join("obj.isec")).unwrap();
    ok(isec(d).args(["keygen", "--kid", "kek-2"]));
    let out = ok(isec(d).args(["rewrap", "obj.isec.meta.json"]));
    assert!(out.contains("kek-1 -> kek-2"), "{out}");
    assert_eq!(fs::read(d.join("obj.isec")).unwrap(), body, "body untouched");
    let meta: Value = serde_json::from_str(&fs::read_to_string(d.join("obj.isec.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["isec-kid"], "kek-2");
    ok(isec(d).args(["decrypt", "obj.isec", "back.bin"]));
    assert_eq!(fs::read(d.join("back.bin")).unwrap(), fs::read(&plain).unwrap());
    // Without any active key, rewrap is refused with a key error.
    let ring = fs::read_to_string(d.join("ring.json")).unwrap().replace("\"active\"", "\"decrypt_only\"");
    fs::write(d.join("ring.json"), ring).unwrap();
    fails(isec(d).args(["rewrap", "obj.isec.meta.json"]), 5, "key_not_active");
}

#[test]
fn copy_plan_reports_each_branch() {
    let (dir, _) = setup(1000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec", "--meta", "obj.isec.meta.json"]));
    let plan = |extra: &[&str]| -> Value {
        let mut args = vec!["copy-plan", "--meta", "obj.isec.meta.json", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(isec(d).args(&args))).unwrap()
    };
    assert_eq!(plan(&["--size", "1028"])["action"], "native");
    fs::write(d.join("new.json"), r#"{"owner": "x"}"#).unwrap();
    assert_eq!(plan(&["--size", "1028", "--replace", "new.json"])["action"], "native_replace");
    // A size that contradicts the declared size is refused, saying so.
    let err =
        fails(isec(d).args(["copy-plan", "--meta", "obj.isec.meta.json", "--size", "6442550000"]), 1, "does not fit");
    assert!(err.contains("metadata_mismatch") && err.contains("--size 6442550000"), "{err}");
    // An object streamed from stdin declares no size: over 5 GiB it becomes a part copy.
    ok(isec(d)
        .args(["encrypt", "-", "s.isec", "--meta", "s.meta.json"])
        .stdin(fs::File::open(d.join("plain.bin")).unwrap()));
    let big_size = (6u64 << 30) / 65_536 * 65_564;
    let mut args = vec!["copy-plan", "--meta", "s.meta.json", "--json", "--size"];
    let size_text = big_size.to_string();
    args.push(&size_text);
    let big: Value = serde_json::from_str(&ok(isec(d).args(&args))).unwrap();
    assert_eq!(big["action"], "part_copy", "{big}");
    let ranges = big["ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 2);
    assert_eq!(ranges[0][1].as_u64().unwrap() % 65_564, 0, "part boundary on a frame boundary");
    assert_eq!(ranges[1][1].as_u64().unwrap(), big_size);
    let p = plan(&["--size", "1028", "--rotate-dek"]);
    assert_eq!((p["action"].as_str(), p["reason"].as_str()), (Some("reencrypt"), Some("dek_rotation")));
    ok(isec(d).args(["keygen", "--kid", "kek-2"]));
    let p = plan(&["--size", "1028", "--target-kid", "kek-2"]);
    assert_eq!((p["action"].as_str(), p["rewrapped"].as_bool()), (Some("native_replace"), Some(true)));
    let text = ok(isec(d).args(["copy-plan", "--meta", "obj.isec.meta.json", "--size", "1028"]));
    assert!(text.contains("action:        native"), "{text}");
    let err = fails(
        isec(d).args(["copy-plan", "--meta", "obj.isec.meta.json", "--size", "1028", "--target-kid", "nope"]),
        5,
        "unknown_kid",
    );
    assert!(err.contains("\"nope\""), "names the kid: {err}");
}

#[test]
fn scan_summarises_a_directory() {
    let (dir, _) = setup(1000);
    let d = dir.path();
    let bucket = d.join("bucket");
    fs::create_dir_all(bucket.join(".s3proxy-internal")).unwrap();
    ok(isec(d).args(["encrypt", "plain.bin", "bucket/a.isec"]));
    ok(isec(d).args(["keygen", "--kid", "kek-2"]));
    ok(isec(d).args(["encrypt", "plain.bin", "bucket/b.isec"]));
    fs::write(bucket.join("plain.txt"), b"hi").unwrap();
    fs::write(bucket.join("legacy.bin"), b"x".repeat(100)).unwrap();
    fs::write(bucket.join(".s3proxy-internal/legacy.bin.meta"), b"sidecar").unwrap();
    let s: Value = serde_json::from_str(&ok(isec(d).args(["scan", "bucket", "--json"]))).unwrap();
    assert_eq!(s["classes"]["current"]["objects"], 1);
    assert_eq!(s["classes"]["needs_rewrap"]["objects"], 1);
    assert_eq!(s["classes"]["needs_reencrypt"]["objects"], 1);
    assert_eq!(s["classes"]["plaintext"]["objects"], 1);
    assert_eq!(s["classes"]["sidecar"]["objects"], 1);
    assert_eq!(s["remaining"]["objects"], 2);
    fails(isec(d).args(["scan", "missing-dir"]), 4, "missing-dir");
}

fn reencrypt_args<'a>(rate: &'a str) -> Vec<&'a str> {
    vec![
        "reencrypt",
        "obj.isec",
        "new.isec",
        "--checkpoint",
        "job.ckpt",
        "--rate",
        rate,
        "--frame-size",
        "4KiB",
        "--part-size",
        "256KiB",
        "--quiet",
    ]
}

#[test]
fn interrupted_reencrypt_resumes_from_its_checkpoint_at_a_part_boundary() {
    let (dir, plain) = setup(3_000_000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    ok(isec(d).args(["keygen", "--kid", "kek-2"]));
    // Throttled so that the interruption lands mid-way.
    let mut child = isec(d).args(reencrypt_args("1MB/s")).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130");
    let cp = fs::read(d.join("job.ckpt")).expect("checkpoint left behind");
    let partial = fs::read(d.join("new.isec")).unwrap();
    assert!(!partial.is_empty() && partial.len() < 3_000_000, "interrupted part-way: {}", partial.len());
    // Parts of 256 KiB in 4 KiB frames: 64 frames of 4124 bytes each.
    let part_ct = 64 * 4124;
    let keep = partial.len() / part_ct * part_ct;
    assert!(keep > 0, "at least one part final before the interruption");

    // Resuming twice from the same checkpoint: both keep the checkpointed parts as they
    // were, redo the rest under fresh nonce prefixes (so they differ), and decrypt.
    let mut outputs = Vec::new();
    for _ in 0..2 {
        fs::write(d.join("job.ckpt"), &cp).unwrap();
        fs::write(d.join("new.isec"), &partial).unwrap();
        ok(isec(d).args(reencrypt_args("0")));
        assert!(!d.join("job.ckpt").exists(), "checkpoint removed when done");
        outputs.push(fs::read(d.join("new.isec")).unwrap());
    }
    assert_eq!(outputs[0].len(), outputs[1].len());
    assert_ne!(outputs[0], outputs[1], "the unfinished part is encrypted again under a new prefix");
    for o in &outputs {
        assert_eq!(o[..keep], partial[..keep], "kept output untouched");
    }
    assert_ne!(outputs[0][keep..keep + 7], outputs[1][keep..keep + 7]);
    let meta: Value = serde_json::from_str(&fs::read_to_string(d.join("new.isec.meta.json")).unwrap()).unwrap();
    assert_eq!(meta["isec-kid"], "kek-2");
    ok(isec(d).args(["decrypt", "new.isec", "back.bin"]));
    assert_eq!(fs::read(d.join("back.bin")).unwrap(), fs::read(&plain).unwrap());
    // A damaged checkpoint is refused.
    let mut bad = cp.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    fs::write(d.join("job.ckpt"), &bad).unwrap();
    fails(isec(d).args(reencrypt_args("0")), 3, "authentication_failed");
}

#[test]
fn demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(isec(dir.path()).args(["demo", "--size", "300000"]));
    assert!(out.contains("every check passed"), "{out}");
}

#[test]
fn help_has_examples_for_every_subcommand() {
    for sub in ["keygen", "encrypt", "decrypt", "inspect", "rewrap", "reencrypt", "copy-plan", "scan", "demo"] {
        let out = ok(Command::cargo_bin("isec").unwrap().args([sub, "--help"]));
        assert!(out.contains("Usage"), "{sub}");
        if sub != "demo" {
            assert!(out.contains("Example"), "{sub} --help has an example");
        }
    }
    fails(&mut Command::cargo_bin("isec").unwrap().args(["encrypt"]), 2, "Usage");
}

#[test]
fn legacy_objects_decrypt_and_migrate() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/s3proxy");
    if !dir.join("single_put.json").exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must have ../shared/vectors/s3proxy");
        eprintln!("NOT CHECKED: legacy CLI paths (../shared/vectors/s3proxy missing)");
        return;
    }
    let v: Value = serde_json::from_str(&fs::read_to_string(dir.join("single_put.json")).unwrap()).unwrap();
    let case = v["cases"].as_array().unwrap().iter().find(|c| c["plaintext"]["len"] == 4096).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fs::copy(dir.join(case["ciphertext"]["bin_file"].as_str().unwrap()), d.join("old.bin")).unwrap();
    fs::write(d.join("old.bin.meta.json"), serde_json::to_string(&case["object_metadata"]["pr107_07bca1bf"]).unwrap())
        .unwrap();
    let secret = case["kek"]["kek_secret"].as_str().unwrap();
    let ring = serde_json::json!({"keys": [
        {"kid": "AKIAVECTORTEST000001", "legacy_secret": secret},
        {"kid": "kek-new", "kek": "11".repeat(32), "state": "active"}]});
    fs::write(d.join("ring.json"), ring.to_string()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(d.join("ring.json"), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let info: Value = serde_json::from_str(&ok(isec(d).args(["inspect", "old.bin", "--json"]))).unwrap();
    assert_eq!(info["format"], "legacy");
    ok(isec(d).args(["decrypt", "old.bin", "plain.bin"]));
    let want: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
    assert_eq!(fs::read(d.join("plain.bin")).unwrap(), want);
    ok(isec(d).args(["reencrypt", "old.bin", "new.isec", "--quiet"]));
    ok(isec(d).args(["decrypt", "new.isec", "again.bin"]));
    assert_eq!(fs::read(d.join("again.bin")).unwrap(), want);
}
