//! `isec s3 scan|rotate|reencrypt` and `isec s3 job` against a real S3 server (ignored
//! unless asked for: scripts/test-cli-s3.sh runs them against Garage).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{S3, bytes, count, last_json, legacy_vectors, par, server, shared_vectors};
use serde_json::Value;

/// `n_old` objects under k1 (written with a keyring where k1 was active), `n_new` under k2,
/// `n_plain` plaintext; returns the keyring (k1 decrypt-only, k2 active) and each object's
/// plaintext by name.
fn bucket(s: &S3, n_old: usize, n_new: usize, n_plain: usize, size: usize) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let ring = s.ring("ring.json", &["k1"]);
    let objects: Vec<(String, Vec<u8>)> =
        (0..n_old + n_new + n_plain).map(|i| (format!("o{i:04}"), bytes(i as u64 + 7, size + i * 13))).collect();
    for (name, data) in &objects {
        std::fs::write(s.path(name), data).unwrap();
    }
    let put = |i: usize| {
        let (name, _) = &objects[i];
        s.ok(Some(&ring), &["s3", "put", name, &s.url(name), "-q"]);
    };
    par(n_old, 4, put);
    s.ok(Some(&ring), &["keygen", "--kid", "k2"]);
    par(n_new, 4, |i| put(n_old + i));
    for (name, data) in &objects[n_old + n_new..] {
        s.put_raw(name, data, HashMap::new());
    }
    (ring, objects)
}

fn target(s: &S3) -> String {
    format!("s3://{}/{}", s.bucket, s.prefix)
}

/// Every isec object reads back its plaintext with `isec s3 get`, every plaintext one raw.
fn check_all(s: &S3, ring: &Path, objects: &[(String, Vec<u8>)], n_encrypted: usize) {
    par(objects.len(), 4, |i| {
        let (name, data) = &objects[i];
        if i < n_encrypted {
            let o = s.run(Some(ring), &["s3", "get", &s.url(name), "-"]);
            assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
            assert!(o.stdout == *data, "{name}: plaintext differs");
        } else {
            assert!(s.get_raw(name).0 == *data, "{name}: plaintext object changed");
        }
    });
}

fn status(s: &S3, state: &str) -> Value {
    serde_json::from_str(&s.ok(None, &["s3", "job", "status", "--state", state, "--json"])).unwrap()
}

fn spawn(s: &S3, ring: &Path, args: &[&str]) -> Child {
    s.isec(Some(ring)).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap()
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn rotate_rewraps_every_old_key_object() {
    let Some(s) = server("rotate") else { return };
    let (ring, objects) = bucket(&s, 100, 50, 50, 300);
    let t = target(&s);
    let out = s.ok(Some(&ring), &["s3", "rotate", &t, "--state", "rot.json", "--json", "-q"]);
    let r = last_json(&out);
    assert_eq!(r["result"], "done");
    assert_eq!(count(&r, "listed"), 200);
    assert_eq!(count(&r, "done"), 100, "{r}");
    assert_eq!(r["done_by_task"]["rewrap"]["objects"], 100);
    assert_eq!(r["skipped_by_reason"]["current"]["objects"], 50);
    assert_eq!(r["skipped_by_reason"]["plaintext"]["objects"], 50);
    assert_eq!(count(&r, "failed"), 0);
    // Running the finished job again does nothing more.
    let again = last_json(&s.ok(Some(&ring), &["s3", "rotate", &t, "--state", "rot.json", "--json", "-q"]));
    assert_eq!(count(&again, "done"), 100);
    // A state of another kind is refused.
    assert_eq!(s.run(Some(&ring), &["s3", "reencrypt", &t, "--state", "rot.json", "-q"]).status.code(), Some(2));

    let scan = last_json(&s.ok(Some(&ring), &["s3", "scan", &t, "--state", "scan.json", "--json", "-q"]));
    assert_eq!(scan["by_class"]["needs_rewrap"]["objects"].as_u64().unwrap_or(0), 0, "{scan}");
    assert_eq!(scan["by_class"]["current"]["objects"], 150);
    assert_eq!(scan["by_kid"]["k2"]["current"]["objects"], 150);
    for (name, _) in &objects[..150] {
        assert_eq!(s.meta(name).get("isec-kid").map(String::as_str), Some("k2"), "{name}");
    }
    check_all(&s, &ring, &objects, 150);
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn reencrypt_killed_at_random_moments_does_every_object_once() {
    let Some(s) = server("crash") else { return };
    let (ring, objects) = bucket(&s, 40, 20, 20, 20_000);
    let before: Vec<String> = objects[..60].iter().map(|(n, _)| s.meta(n)["isec"].clone()).collect();
    let t = target(&s);
    let args = ["s3", "reencrypt", &t, "--state", "re.json", "--concurrency", "4", "--objects-per-second", "5", "-q"];
    let mut seed = std::process::id() as u64 | 1;
    let mut kills = 0;
    for _ in 0..12 {
        let mut child = spawn(&s, &ring, &args);
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let pause = 100 + (seed >> 33) % 500;
        std::thread::sleep(Duration::from_millis(pause));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if kills >= 6 {
            break;
        }
    }
    assert!(kills >= 5, "only {kills} kills: the job ended too soon");
    let out =
        s.ok(Some(&ring), &["s3", "reencrypt", &t, "--state", "re.json", "--objects-per-second", "0", "--json", "-q"]);
    let r = last_json(&out);
    assert_eq!(r["result"], "done");
    assert_eq!(count(&r, "listed"), 80, "{r}");
    assert_eq!(count(&r, "done"), 60, "every encrypted object once: {r}");
    assert_eq!(r["skipped_by_reason"]["plaintext"]["objects"], 20, "{r}");
    assert_eq!(count(&r, "failed"), 0, "{r}");
    for (i, (name, _)) in objects[..60].iter().enumerate() {
        let m = s.meta(name);
        assert_ne!(m["isec"], before[i], "{name} was not re-encrypted");
        assert_eq!(m["isec-kid"], "k2", "{name}");
    }
    check_all(&s, &ring, &objects, 60);
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn job_control_pauses_resumes_and_rerates_a_running_job() {
    let Some(s) = server("control") else { return };
    let (ring, objects) = bucket(&s, 40, 0, 0, 200);
    let t = target(&s);
    let mut child = spawn(&s, &ring, &["s3", "rotate", &t, "--state", "ctl.json", "--objects-per-second", "5", "-q"]);
    std::thread::sleep(Duration::from_millis(2500));
    let st = status(&s, "ctl.json");
    assert_eq!(st["running"], true, "{st}");
    assert!(count(&st, "done") > 0, "progress after 2.5 s at 5 objects/s: {st}");
    assert_eq!(st["limits"]["objects_per_second"], 5);

    s.ok(None, &["s3", "job", "pause", "--state", "ctl.json"]);
    std::thread::sleep(Duration::from_millis(1500));
    let paused = status(&s, "ctl.json");
    assert_eq!(paused["paused"], true, "{paused}");
    std::thread::sleep(Duration::from_millis(2000));
    let still = status(&s, "ctl.json");
    assert_eq!(count(&still, "done"), count(&paused, "done"), "no progress while paused");
    assert!(count(&still, "done") < 40);

    s.ok(None, &["s3", "job", "resume", "--state", "ctl.json"]);
    std::thread::sleep(Duration::from_millis(1500));
    let resumed = status(&s, "ctl.json");
    assert_eq!(resumed["paused"], false);
    assert!(count(&resumed, "done") > count(&still, "done"), "progress after resume: {resumed}");

    s.ok(None, &["s3", "job", "set-rate", "--state", "ctl.json", "--objects-per-second", "0", "--concurrency", "8"]);
    let st = wait_for(&mut child, Duration::from_secs(8)).expect("the job finishes quickly once unlimited");
    assert!(st.success());
    let done = status(&s, "ctl.json");
    assert_eq!(done["running"], false);
    assert_eq!(count(&done, "done"), 40, "{done}");
    assert_eq!(done["limits"]["objects_per_second"], 0);
    check_all(&s, &ring, &objects, 40);
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn ctrl_c_saves_the_state_and_a_rerun_completes() {
    let Some(s) = server("sigint") else { return };
    let (ring, objects) = bucket(&s, 30, 0, 0, 200);
    let t = target(&s);
    let mut child = spawn(&s, &ring, &["s3", "rotate", &t, "--state", "int.json", "--objects-per-second", "5", "-q"]);
    std::thread::sleep(Duration::from_millis(1200));
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let st = wait_for(&mut child, Duration::from_secs(15)).expect("stops within the grace period");
    assert_eq!(st.code(), Some(130));
    let saved = status(&s, "int.json");
    assert_eq!(saved["running"], false);
    assert_eq!(saved["paused"], false, "a stop does not pause the saved job");
    let first = count(&saved, "done");
    assert!(first > 0 && first < 30, "{saved}");
    let r = last_json(&s.ok(Some(&ring), &["s3", "rotate", &t, "--state", "int.json", "--json", "-q"]));
    assert_eq!(r["result"], "done");
    assert_eq!(count(&r, "done"), 30, "{r}");
    check_all(&s, &ring, &objects, 30);
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn migrate_turns_the_previous_proxys_objects_of_every_layout_into_isec() {
    use sha2::{Digest, Sha256};
    let Some(s) = server("migrate") else { return };
    let Some(d) = shared_vectors() else { return };
    let vectors = legacy_vectors(&d, &s.prefix);
    let ring = common::store_legacy(&s, &vectors);
    let target = format!("s3://{}/{}legacy/", s.bucket, s.prefix);
    let out = s.ok(Some(&ring), &["s3", "migrate", &target, "--state", "m.json", "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["done"]["objects"], vectors.len(), "{report}");
    assert_eq!(report["failed"]["objects"], 0, "{report}");
    for v in &vectors {
        let head: serde_json::Value =
            serde_json::from_str(&s.ok(None, &["s3", "head", &s.url(&v.suffix), "--json"])).unwrap();
        assert_eq!((head["format"].as_str(), head["kid"].as_str()), (Some("isec"), Some("k1")), "{}", v.suffix);
        let pt = s.run(Some(&ring), &["s3", "get", &s.url(&v.suffix), "-"]).stdout;
        assert_eq!(hex::encode(Sha256::digest(&pt)), v.sha256, "{}: plaintext after migration", v.suffix);
        if let Some((side, _)) = &v.sidecar {
            // The object's own sidecar is deleted once the new object read back; a staged
            // upload's generation sidecar, which native copies share, stays.
            assert_eq!(s.exists_abs(side), side.contains("/generations/"), "{side}");
        }
    }
    // Run again: nothing left to migrate.
    let out = s.ok(Some(&ring), &["s3", "migrate", &target, "--state", "m2.json", "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["done"]["objects"], 0, "{report}");
}

/// The partial uploads named by the checkpoints of a job state's objects in flight: key,
/// upload id and the new object's envelope.
fn held_uploads(state: &Path) -> Vec<(String, String, Vec<u8>)> {
    use base64ct::{Base64, Encoding};
    use isec_core::reencrypt::{Checkpoint, UploadCheckpoint};
    let Ok(text) = std::fs::read_to_string(state) else { return Vec::new() };
    let Ok(v) = serde_json::from_str::<Value>(&text) else { return Vec::new() };
    let mut out = Vec::new();
    for f in v["in_flight"].as_array().into_iter().flatten() {
        let Some(cp) = f["checkpoint"].as_str() else { continue };
        let up = UploadCheckpoint::parse(&Base64::decode_vec(cp).unwrap()).unwrap();
        let env = Checkpoint::parse(&up.checkpoint).unwrap().envelope;
        out.push((f["key"].as_str().unwrap().to_string(), up.upload_id, env));
    }
    out
}

fn open_uploads(s: &S3) -> Vec<String> {
    let r = s.rt.block_on(s.c.list_multipart_uploads().bucket(&s.bucket).prefix(&s.prefix).send()).unwrap();
    r.uploads().iter().filter_map(|u| u.upload_id().map(str::to_string)).collect()
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn reencrypt_killed_mid_upload_completes_the_same_upload() {
    let Some(s) = server("midupload") else { return };
    let (ring, objects) = bucket(&s, 3, 0, 0, 40 << 20);
    let t = target(&s);
    let state = s.path("re.json");
    let args = ["s3", "reencrypt", &t, "--state", "re.json", "--concurrency", "1", "--part-size", "5MiB", "-q"];
    // Kill the job as soon as its state names a partial upload that is still open.
    let mut caught = None;
    for _ in 0..6 {
        let mut child = spawn(&s, &ring, &args);
        let start = Instant::now();
        while caught.is_none() && start.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if let Some(h) = held_uploads(&state).into_iter().next() {
                child.kill().unwrap(); // SIGKILL
                if open_uploads(&s).contains(&h.1) {
                    caught = Some(h);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        child.wait().unwrap();
        if caught.is_some() {
            break;
        }
    }
    let (key, upload_id, envelope) = caught.expect("the job was never caught mid-upload");
    let r = last_json(
        &s.ok(Some(&ring), &["s3", "reencrypt", &t, "--state", "re.json", "--part-size", "5MiB", "--json", "-q"]),
    );
    assert_eq!(r["result"], "done", "{r}");
    assert_eq!(count(&r, "done"), 3, "{r}");
    assert_eq!(count(&r, "failed"), 0, "{r}");
    // The upload the crash left was completed, not redone: the object has its envelope.
    let name = key.strip_prefix(&s.prefix).unwrap();
    let meta: Vec<(String, String)> = s.meta(name).into_iter().collect();
    let view: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let isec_core::metadata::ObjectFormat::Isec(env) = isec_core::metadata::classify(&view, false) else {
        panic!("{key} is not isec")
    };
    assert_eq!(env.to_bytes(), envelope, "{key}: a new upload replaced the one the crash left");
    assert!(open_uploads(&s).is_empty(), "no upload left open (was {upload_id})");
    for (name, _) in &objects {
        assert_eq!(s.meta(name)["isec-kid"], "k2", "{name}");
    }
    check_all(&s, &ring, &objects, 3);
}
