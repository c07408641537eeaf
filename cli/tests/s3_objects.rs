//! `isec s3 put|get|head|cp` against a real S3 server (ignored unless asked for:
//! scripts/test-cli-s3.sh runs them against Garage).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use common::{bytes, server};

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn put_get_head_cp_round_trips() {
    let Some(s) = server("objects") else { return };
    let old = s.ring("old.json", &["k1"]);
    let small = bytes(1, 100_003);
    let big = bytes(2, 11 * 1024 * 1024 + 17);
    std::fs::write(s.path("small"), &small).unwrap();
    std::fs::write(s.path("big"), &big).unwrap();
    s.ok(Some(&old), &["s3", "put", "small", &s.url("small"), "-q"]);
    s.ok(Some(&old), &["s3", "put", "big", &s.url("big"), "--part-size", "5MiB", "-q"]);

    let head: serde_json::Value =
        serde_json::from_str(&s.ok(None, &["s3", "head", &s.url("small"), "--json"])).unwrap();
    assert_eq!(
        (head["format"].as_str(), head["kid"].as_str(), head["layout"].as_str()),
        (Some("isec"), Some("k1"), Some("single"))
    );
    assert_eq!(head["plaintext_len"], 100_003);
    let head: serde_json::Value = serde_json::from_str(&s.ok(None, &["s3", "head", &s.url("big"), "--json"])).unwrap();
    assert_eq!((head["layout"].as_str(), head["part_size"].as_u64()), (Some("parts"), Some(5 * 1024 * 1024)));
    assert_eq!(head["plaintext_len"].as_u64(), Some(big.len() as u64));
    assert!(head["etag"].as_str().unwrap().ends_with("-3\""), "{head}");

    s.ok(Some(&old), &["s3", "get", &s.url("small"), "small.out"]);
    assert_eq!(std::fs::read(s.path("small.out")).unwrap(), small);
    let o = s.run(Some(&old), &["s3", "get", &s.url("big"), "-"]);
    assert!(o.status.success());
    assert_eq!(o.stdout, big);

    // Stdin of unknown length, read one part ahead.
    let mut put = s.isec(Some(&old));
    put.args(["s3", "put", "-", &s.url("piped"), "--part-size", "5MiB", "-q"]);
    put.stdin(std::fs::File::open(s.path("big")).unwrap());
    assert!(put.status().unwrap().success());
    let o = s.run(Some(&old), &["s3", "get", &s.url("piped"), "-"]);
    assert_eq!(o.stdout, big);

    // Server-side copies: the same key, then rewrapped under a newer key.
    s.ok(Some(&old), &["s3", "cp", &s.url("big"), &s.url("big-copy")]);
    assert_eq!(s.run(Some(&old), &["s3", "get", &s.url("big-copy"), "-"]).stdout, big);
    let ring = s.path("old.json");
    s.ok(Some(&ring), &["keygen", "--kid", "k2"]);
    s.ok(Some(&ring), &["s3", "cp", &s.url("small"), &s.url("small-k2"), "--target-kid", "k2"]);
    let head: serde_json::Value =
        serde_json::from_str(&s.ok(None, &["s3", "head", &s.url("small-k2"), "--json"])).unwrap();
    assert_eq!(head["kid"].as_str(), Some("k2"));
    assert_eq!(s.run(Some(&ring), &["s3", "get", &s.url("small-k2"), "-"]).stdout, small);

    // A key the keyring does not hold: exit 5, and no output file.
    let other = s.ring("other.json", &["k9"]);
    let o = s.run(Some(&other), &["s3", "get", &s.url("small"), "nokey.out"]);
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!s.path("nokey.out").exists());

    // A tampered body: exit 3, and no output file.
    let (mut body, meta) = s.get_raw("small");
    body[5000] ^= 1;
    s.put_raw("tampered", &body, meta);
    let o = s.run(Some(&ring), &["s3", "get", &s.url("tampered"), "tampered.out"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!s.path("tampered.out").exists());

    // A missing object is an I/O error (4).
    assert_eq!(s.run(Some(&ring), &["s3", "get", &s.url("nothing"), "x"]).status.code(), Some(4));
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn repair_gives_a_stripped_copy_its_sources_envelope_only_if_it_decrypts() {
    let Some(s) = server("repair") else { return };
    let ring = s.ring("ring.json", &["k1"]);
    let big = bytes(3, 9 * 1024 * 1024 + 5);
    std::fs::write(s.path("big"), &big).unwrap();
    s.ok(Some(&ring), &["s3", "put", "big", &s.url("orig"), "--part-size", "5MiB", "-q"]);
    s.ok(Some(&ring), &["s3", "put", "big", &s.url("other"), "--part-size", "5MiB", "-q"]);
    // What a copy tool that drops user metadata leaves: the ciphertext, no envelope.
    let (body, _) = s.get_raw("orig");
    s.put_raw("stripped", &body, Default::default());
    let o = s.run(Some(&ring), &["s3", "get", &s.url("stripped"), "x.out"]);
    assert!(!o.status.success(), "a body without its envelope is not read");

    // The wrong source: its envelope does not decrypt this body (exit 3), nothing written.
    let o = s.run(Some(&ring), &["s3", "repair", &s.url("stripped"), "--from", &s.url("other")]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, meta) = s.get_raw("stripped");
    assert!(meta.is_empty(), "nothing written after a failed verification: {meta:?}");

    s.ok(Some(&ring), &["s3", "repair", &s.url("stripped"), "--from", &s.url("orig"), "-q"]);
    assert_eq!(s.run(Some(&ring), &["s3", "get", &s.url("stripped"), "-"]).stdout, big);
    // An object with metadata of its own is refused (usage: exit 2).
    let o = s.run(Some(&ring), &["s3", "repair", &s.url("other"), "--from", &s.url("orig")]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
#[ignore = "needs an S3 server: scripts/test-cli-s3.sh"]
fn keys_disable_is_refused_while_an_s3_scan_finds_objects_and_a_public_key_writer_cannot_read() {
    let Some(s) = server("keys") else { return };
    let owner = s.path("owner.json");
    let writer = s.path("writer.json");
    s.ok(Some(&owner), &["keys", "add", "old", "--generate", "kek"]);
    std::fs::write(s.path("obj"), bytes(3, 70_001)).unwrap();
    s.ok(Some(&owner), &["s3", "put", "obj", &s.url("a/obj"), "-q"]);
    let o = s.run(Some(&owner), &["keys", "disable", "old", "--check", &s.url("a/")]);
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 in s3://"), "{}", String::from_utf8_lossy(&o.stderr));
    // An empty prefix holds none of its objects.
    s.ok(Some(&owner), &["keys", "disable", "old", "--check", &s.url("empty/")]);

    // A recipient: the writer's keyring holds the public key only.
    s.ok(Some(&owner), &["keys", "add", "archive", "--generate", "x25519"]);
    let public = s.ok(Some(&owner), &["keys", "export-public", "archive"]);
    s.ok(Some(&writer), &["keys", "add", "archive", "--public-key", public.trim()]);
    s.ok(Some(&writer), &["s3", "put", "obj", &s.url("b/obj"), "-q"]);
    let o = s.run(Some(&writer), &["s3", "get", &s.url("b/obj"), "out"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("public_key_only"));
    s.ok(Some(&owner), &["s3", "get", &s.url("b/obj"), "out"]);
    assert_eq!(std::fs::read(s.path("out")).unwrap(), bytes(3, 70_001));
}
