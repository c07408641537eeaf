//! Local objects: the self-contained form through files and pipes, metadata that is not the
//! object's, truncation, open-ended ranges and the permissions of what is written.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

use support::{fails, ok};

fn isec(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("isec").unwrap();
    c.current_dir(dir).env("ISEC_KEYRING", dir.join("ring.json")).env_remove("CI").env_remove("ISEC_PROGRESS");
    c
}

/// Runs `c` with `input` on stdin (written from another thread, so a full pipe cannot block).
fn piped(c: &mut Command, input: Vec<u8>) -> Output {
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The child may exit early on an error and close its stdin: that is not a test failure.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

fn setup(size: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    ok(isec(dir.path()).args(["keygen", "--kid", "kek-1"]));
    let p = dir.path().join("plain.bin");
    fs::write(&p, data(size)).unwrap();
    (dir, p)
}

/// Length of the self-contained header of `file` (magic, version, u16 length, envelope).
fn header_len(file: &[u8]) -> usize {
    assert_eq!(&file[..5], b"ISEC\x01");
    7 + usize::from(u16::from_be_bytes([file[5], file[6]]))
}

#[test]
fn a_pipe_carries_the_envelope_in_the_stream() {
    let (dir, _) = setup(10);
    let d = dir.path();
    let enc = piped(isec(d).args(["encrypt", "-", "-", "--frame-size", "4KiB"]), data(150_000));
    assert!(enc.status.success(), "{}", String::from_utf8_lossy(&enc.stderr));
    let h = header_len(&enc.stdout);
    assert_eq!(enc.stdout.len(), h + 150_000 + 37 * 28, "header, then the body as S3 stores it");
    let dec = piped(isec(d).args(["decrypt", "-", "-"]), enc.stdout.clone());
    assert!(dec.status.success(), "{}", String::from_utf8_lossy(&dec.stderr));
    assert_eq!(dec.stdout, data(150_000));
    // inspect reads the header from stdin too, without any key.
    let info = piped(isec(d).env_remove("ISEC_KEYRING").args(["inspect", "-", "--json"]), enc.stdout.clone());
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!((info["form"].as_str(), info["kid"].as_str()), (Some("self-contained"), Some("kek-1")));
    // A stream cut inside its header is truncated.
    let cut = piped(isec(d).args(["decrypt", "-", "-"]), enc.stdout[..h - 3].to_vec());
    assert_eq!(cut.status.code(), Some(1), "{}", String::from_utf8_lossy(&cut.stderr));
    assert!(String::from_utf8_lossy(&cut.stderr).contains("truncated"));
}

#[test]
fn a_file_cut_short_is_truncated_inside_a_frame_too() {
    let (dir, _) = setup(200_000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    let ct = fs::read(d.join("obj.isec")).unwrap();
    let h = header_len(&ct);
    for (cut, how) in [(h + 65_564, "at a frame boundary"), (h + 100_000, "inside a frame"), (ct.len() - 1, "by one")] {
        fs::write(d.join("short.isec"), &ct[..cut]).unwrap();
        let err = fails(isec(d).args(["decrypt", "short.isec", "out.bin"]), 1, "truncated");
        assert!(!err.contains("authentication_failed"), "{how}: {err}");
        // The same bytes through a pipe: the declared size tells where the body should end.
        let out = piped(isec(d).args(["decrypt", "-", "-"]), ct[..cut].to_vec());
        assert_eq!(out.status.code(), Some(1), "{how}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"), "{how}");
    }
    assert!(!d.join("out.bin").exists());
}

#[test]
fn metadata_of_another_object_is_named_as_such() {
    let (dir, _) = setup(5000);
    let d = dir.path();
    fs::write(d.join("other.bin"), data(9000)).unwrap();
    ok(isec(d).args(["encrypt", "plain.bin", "self.isec"]));
    ok(isec(d).args(["encrypt", "plain.bin", "a.isec", "--meta", "a.meta.json"]));
    ok(isec(d).args(["encrypt", "other.bin", "b.isec", "--meta", "b.meta.json"]));
    ok(isec(d).args(["decrypt", "a.isec", "a.out", "--meta", "a.meta.json"]));
    assert_eq!(fs::read(d.join("a.out")).unwrap(), data(5000));
    // Detached: the declared size shows that b's metadata is not a's.
    let err = fails(isec(d).args(["decrypt", "a.isec", "x", "--meta", "b.meta.json"]), 1, "metadata_mismatch");
    assert!(err.contains("does not belong to this object") && err.contains("b.meta.json"), "{err}");
    let info: Value =
        serde_json::from_str(&ok(isec(d).args(["inspect", "a.isec", "--meta", "b.meta.json", "--json"]))).unwrap();
    assert_eq!(info["size_error"], "metadata_mismatch");
    // Self-contained: metadata given for it must be its own.
    fails(isec(d).args(["decrypt", "self.isec", "x", "--meta", "a.meta.json"]), 1, "metadata_mismatch");
    // A detached body without its metadata: say what is missing, not ENOENT.
    let err = fails(isec(d).args(["decrypt", "a.isec", "x"]), 2, "--meta");
    assert!(err.contains("a.isec.meta.json") && err.contains("self-contained"), "{err}");
    assert!(!d.join("x").exists());
}

#[test]
fn ranges_are_open_ended_as_in_http_and_past_the_end_fails() {
    let (dir, _) = setup(300_001);
    let d = dir.path();
    let all = data(300_001);
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec", "--meta", "obj.meta.json"]));
    ok(isec(d).args(["encrypt", "plain.bin", "self.isec"]));
    for (obj, meta) in [("obj.isec", Some("obj.meta.json")), ("self.isec", None)] {
        let decrypt = |range: &str| {
            let mut c = isec(d);
            c.args(["decrypt", obj, "part.bin", &format!("--range={range}")]);
            if let Some(m) = meta {
                c.args(["--meta", m]);
            }
            c
        };
        for (range, want) in [
            ("299000-", &all[299_000..]),
            ("-100", &all[300_001 - 100..]),
            ("-400000", &all[..]),
            ("65530-65545", &all[65_530..=65_545]),
            ("300000-999999", &all[300_000..]),
        ] {
            ok(&mut decrypt(range));
            assert_eq!(fs::read(d.join("part.bin")).unwrap(), want, "{obj} {range}");
        }
        // The suffix form also without `=`.
        ok(isec(d).args(["decrypt", "self.isec", "part.bin", "--range", "-10"]));
        assert_eq!(fs::read(d.join("part.bin")).unwrap(), &all[300_001 - 10..]);
        fs::remove_file(d.join("part.bin")).unwrap();
        for range in ["300001-", "400000-500000", "-0"] {
            let err = fails(&mut decrypt(range), 2, "range_not_satisfiable");
            assert!(err.contains("300001 bytes"), "names the size: {err}");
            assert!(!d.join("part.bin").exists(), "no output for {range}");
        }
    }
    fails(isec(d).args(["decrypt", "self.isec", "x", "--range=x-"]), 2, "range");
}

#[cfg(unix)]
#[test]
fn outputs_are_never_more_open_than_their_input() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, plain) = setup(1000);
    let d = dir.path();
    let mode = |p: &str| fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o777;
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o600)).unwrap();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    assert_eq!(mode("obj.isec"), 0o600);
    ok(isec(d).args(["decrypt", "obj.isec", "back.bin"]));
    assert_eq!(mode("back.bin"), 0o600, "a private source gives a private output");
    // Overwriting an existing, more open file does not keep its mode.
    fs::write(d.join("open.bin"), b"x").unwrap();
    fs::set_permissions(d.join("open.bin"), fs::Permissions::from_mode(0o644)).unwrap();
    ok(isec(d).args(["decrypt", "obj.isec", "open.bin"]));
    assert_eq!(mode("open.bin"), 0o600);
    // Execute bits are never copied.
    fs::set_permissions(d.join("obj.isec"), fs::Permissions::from_mode(0o700)).unwrap();
    ok(isec(d).args(["decrypt", "obj.isec", "exec.bin"]));
    assert_eq!(mode("exec.bin"), 0o600);
    // A re-encryption's output too.
    fs::write(d.join("re.isec"), b"x").unwrap();
    fs::set_permissions(d.join("re.isec"), fs::Permissions::from_mode(0o644)).unwrap();
    ok(isec(d).args(["reencrypt", "obj.isec", "re.isec", "--quiet"]));
    assert_eq!(mode("re.isec"), 0o600);
}

#[test]
fn io_errors_name_the_users_path_not_the_temporary() {
    let (dir, _) = setup(1000);
    let d = dir.path();
    ok(isec(d).args(["encrypt", "plain.bin", "obj.isec"]));
    let err = fails(isec(d).args(["decrypt", "obj.isec", "no-such-dir/out.bin"]), 4, "no-such-dir/out.bin");
    assert!(!err.contains("isec-partial"), "{err}");
    let err = fails(isec(d).args(["encrypt", "plain.bin", "no-such-dir/obj.isec"]), 4, "no-such-dir/obj.isec");
    assert!(!err.contains("isec-partial"), "{err}");
}

#[test]
fn rewrap_and_scan_read_self_contained_files() {
    let (dir, _) = setup(70_000);
    let d = dir.path();
    fs::create_dir(d.join("bucket")).unwrap();
    ok(isec(d).args(["encrypt", "plain.bin", "bucket/obj.isec"]));
    let before = fs::read(d.join("bucket/obj.isec")).unwrap();
    ok(isec(d).args(["keygen", "--kid", "kek-2"]));
    let s: Value = serde_json::from_str(&ok(isec(d).args(["scan", "bucket", "--json"]))).unwrap();
    assert_eq!(s["classes"]["needs_rewrap"]["objects"], 1, "{s}");
    let out = ok(isec(d).args(["rewrap", "bucket/obj.isec"]));
    assert!(out.contains("kek-1 -> kek-2"), "{out}");
    let after = fs::read(d.join("bucket/obj.isec")).unwrap();
    assert_eq!(after[header_len(&after)..], before[header_len(&before)..], "body untouched");
    ok(isec(d).args(["decrypt", "bucket/obj.isec", "back.bin"]));
    assert_eq!(fs::read(d.join("back.bin")).unwrap(), data(70_000));
    let s: Value = serde_json::from_str(&ok(isec(d).args(["scan", "bucket", "--json"]))).unwrap();
    assert_eq!(s["classes"]["current"]["objects"], 1, "{s}");
}
