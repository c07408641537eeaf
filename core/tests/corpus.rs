//! Runs the shared corpus in `tests/vectors/` through every Rust path, on both backends:
//! one-shot, streaming with awkward split points, and ranged. No format logic lives here:
//! every expectation comes from the vector files.

use std::path::PathBuf;

use isec_core::fuzzing::feed_cycling;
use isec_core::s3::{Headers, ObjectRef, Request, Step, copy_steps};
use isec_core::shape::Shape;
use isec_core::{
    AwsLc, Decryptor, Envelope, Error, FrameCipher, FramePosition, Kek, KeyState, Keyring, Nonce, RustCrypto,
    SegmentTable, oneshot,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).expect("vector file")).expect("json")
}

/// A keyring from keys.json: with `states`, exactly those kids in those states; without,
/// every key decrypt-only.
fn keyring_with(states: Option<&Value>) -> Keyring {
    let keys = load("keys.json");
    let mut ring = Keyring::new();
    let all = keys["keys"].as_object().expect("keys");
    let wanted: Vec<(String, KeyState)> = match states.and_then(Value::as_object) {
        Some(m) => m.iter().map(|(k, v)| (k.clone(), KeyState::from_name(v.as_str().unwrap()).unwrap())).collect(),
        None => all.keys().map(|k| (k.clone(), KeyState::DecryptOnly)).collect(),
    };
    for (kid, state) in wanted {
        let k = &all[&kid];
        if let Some(secret) = k["legacy_secret"].as_str() {
            ring.add_legacy_secret_string(&kid, secret).unwrap();
        } else {
            let kek = Kek::from_slice(&hex::decode(k["kek"].as_str().unwrap()).unwrap()).unwrap();
            ring.add_kek(&kid, kek, state).unwrap();
        }
    }
    ring
}

fn keyring() -> Keyring {
    keyring_with(None)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn code(r: Result<impl Sized, Error>) -> Option<&'static str> {
    r.err().map(|e| e.code())
}

#[test]
fn manifest_lists_every_file_with_its_hash_and_count() {
    let m = load("manifest.json");
    let files = m["files"].as_array().unwrap();
    assert!(files.len() >= 6);
    for f in files {
        let name = f["file"].as_str().unwrap();
        let bytes = std::fs::read(dir().join(name)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), f["sha256"].as_str().unwrap(), "{name} hash");
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        if let Some(tests) = doc["tests"].as_array() {
            assert_eq!(tests.len() as u64, f["tests"].as_u64().unwrap(), "{name} count");
            let mut ids: Vec<u64> = tests.iter().map(|t| t["tcId"].as_u64().unwrap()).collect();
            ids.dedup();
            assert_eq!(ids.len(), tests.len(), "{name}: tcIds unique");
        }
    }
}

#[test]
fn envelope_vectors() {
    let ring = keyring();
    let doc = load("envelope.json");
    let mut checked = 0;
    for t in doc["tests"].as_array().unwrap() {
        let id = &t["tcId"];
        let decoded = Envelope::decode_text(t["envelope"].as_str().unwrap());
        let stage = t["stage"].as_str();
        if stage == Some("decode") {
            assert_eq!(code(decoded), t["error"].as_str(), "tc {id}");
            checked += 1;
            continue;
        }
        let env = decoded.unwrap_or_else(|e| panic!("tc {id}: {e}"));
        if let Some(i) = t.get("inspect") {
            let info = env.info();
            assert_eq!(info.kid, i["kid"].as_str().unwrap(), "tc {id}");
            assert_eq!(info.frame_size, i["frame_size"].as_u64().unwrap(), "tc {id}");
            assert_eq!(info.layout.name(), i["layout"].as_str().unwrap(), "tc {id}");
            assert_eq!(info.part_size, i["part_size"].as_u64(), "tc {id}");
            assert_eq!(info.declared_size, i["declared_size"].as_u64(), "tc {id}");
            assert_eq!(info.wrap_alg.name(), i["wrap_alg"].as_str().unwrap(), "tc {id}");
            assert_eq!(info.envelope_len as u64, i["envelope_len"].as_u64().unwrap(), "tc {id}");
            assert_eq!(env.to_text(), t["envelope"].as_str().unwrap(), "tc {id}: re-encode");
        }
        let opened = ring.open(&env);
        match t["result"].as_str().unwrap() {
            "valid" => assert!(opened.is_ok(), "tc {id}: {:?}", opened.err()),
            _ => assert_eq!(code(opened), t["error"].as_str(), "tc {id}"),
        }
        checked += 1;
    }
    assert_eq!(checked, doc["numberOfTests"].as_u64().unwrap());
    // The key schedule of test 1.
    let ks = &doc["key_schedule"];
    let env = Envelope::decode_text(doc["tests"][0]["envelope"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(env.header().to_bytes()), ks["header"].as_str().unwrap());
    let key = ring.open(&env).unwrap();
    assert_eq!(hex::encode(*key.segment_key(0)), ks["segment_key_0"].as_str().unwrap());
    assert_eq!(hex::encode(*key.segment_key(1)), ks["segment_key_1"].as_str().unwrap());
}

#[test]
fn nonce_vectors() {
    for t in load("nonces.json")["tests"].as_array().unwrap() {
        let bytes: [u8; 12] = hex::decode(t["nonce"].as_str().unwrap()).unwrap().try_into().unwrap();
        let n = Nonce::from_bytes(bytes);
        if t["result"] == "valid" {
            let prefix =
                isec_core::Prefix::try_from(hex::decode(t["prefix"].as_str().unwrap()).unwrap().as_slice()).unwrap();
            let pos = FramePosition {
                index: t["index"].as_u64().unwrap() as u32,
                segment_end: t["segment_end"].as_bool().unwrap(),
                object_end: t["object_end"].as_bool().unwrap(),
            };
            assert_eq!(Nonce::new(&prefix, pos), n);
            assert_eq!(n.position().unwrap(), pos);
            assert_eq!(n.prefix(), prefix);
        } else {
            assert_eq!(code(n.position()), t["error"].as_str(), "tc {}", t["tcId"]);
        }
    }
}

#[test]
fn range_vectors() {
    for t in load("ranges.json")["tests"].as_array().unwrap() {
        let id = &t["tcId"];
        let env = Envelope::decode_text(t["envelope"].as_str().unwrap()).unwrap();
        let shape = Shape::from_ciphertext_len(env.header(), t["ciphertext_len"].as_u64().unwrap());
        if t["result"] == "invalid" {
            assert_eq!(code(shape), t["error"].as_str(), "tc {id}");
            continue;
        }
        let shape = shape.unwrap();
        let plan = shape.map_range(t["range"][0].as_u64().unwrap(), t["range"][1].as_u64().unwrap());
        let e = &t["expect"];
        assert_eq!(
            (plan.ct_start, plan.ct_end, plan.skip, plan.len),
            (
                e["ct_start"].as_u64().unwrap(),
                e["ct_end"].as_u64().unwrap(),
                e["skip"].as_u64().unwrap(),
                e["len"].as_u64().unwrap()
            ),
            "tc {id}"
        );
    }
}

fn object_vectors<C: FrameCipher>(file: &str) -> usize {
    let ring = keyring();
    let doc = load(file);
    let mut n = 0;
    for t in doc["tests"].as_array().unwrap() {
        let id = &t["tcId"];
        let env = Envelope::decode_text(t["envelope"].as_str().unwrap()).unwrap();
        let key = ring.open(&env).unwrap();
        let ct = hex::decode(t["ciphertext"].as_str().unwrap()).unwrap();
        let pt_len = t["plaintext_len"].as_u64().unwrap() as usize;
        let pt = pattern(pt_len);
        let error = t["error"].as_str();
        let ranged_error = t["ranged_error"].as_str().or(error);
        let released = t["released"].as_u64().unwrap() as usize;
        let table = t["segment_table"].as_str().map(|h| hex::decode(h).unwrap());
        let frame = env.header().frame_size() as usize;

        // One-shot: all or nothing.
        let one = match &table {
            Some(tb) => oneshot::decrypt_with_table::<C>(&key, tb, &ct),
            None => oneshot::decrypt::<C>(&key, &ct),
        };
        match error {
            None => assert_eq!(one.as_deref().unwrap_or_else(|e| panic!("tc {id}: {e}")), &pt[..], "tc {id}"),
            Some(e) => assert_eq!(code(one), Some(e), "tc {id} one-shot"),
        }

        // Streaming with awkward split points.
        let splits: [&[usize]; 6] =
            [&[1], &[frame - 1], &[frame + 1], &[frame + 27, frame + 29], &[7, 4099, 13, 65_536], &[usize::MAX]];
        for sizes in splits {
            let dec = match &table {
                Some(tb) => {
                    let shape = SegmentTable::decode(tb, &key)
                        .and_then(|st| Shape::from_table(key.header(), st, ct.len() as u64));
                    match shape {
                        Ok(s) => Decryptor::<C>::with_shape(&key, s).unwrap(),
                        Err(e) => {
                            assert_eq!(Some(e.code()), error, "tc {id} table");
                            continue;
                        }
                    }
                }
                None => Decryptor::<C>::new(&key).unwrap(),
            };
            let (out, r) = feed_cycling(dec, &ct, sizes, None);
            assert_eq!(code(r), error, "tc {id} streaming {sizes:?}");
            if sizes == [1] || error.is_none() {
                assert_eq!(out.len(), released, "tc {id} released with splits {sizes:?}");
            } else {
                assert!(out.len() <= released, "tc {id} released {} > {released} with splits {sizes:?}", out.len());
            }
            assert_eq!(out, pt[..out.len()], "tc {id} released plaintext");
        }

        // Ranged: the whole object through the range path, and sub-ranges of valid objects.
        let shape = match &table {
            Some(tb) => {
                SegmentTable::decode(tb, &key).and_then(|st| Shape::from_table(key.header(), st, ct.len() as u64))
            }
            None => Shape::from_ciphertext_len(key.header(), ct.len() as u64),
        };
        let ranges: Vec<(u64, u64)> = if error.is_none() {
            let l = pt_len as u64;
            vec![(0, l), (0, 1), (1, l / 2 + 1), (l / 3, l), (l.saturating_sub(1), l + 5), (l, l + 1), (4096, 8193)]
        } else {
            vec![(0, pt_len as u64 + 1)]
        };
        for (a, b) in ranges {
            let r = shape.clone().and_then(|s| {
                oneshot::decrypt_range::<C>(&key, s, a, b, &mut |s, e| Ok(ct[s as usize..e as usize].to_vec()))
            });
            if ranged_error == None {
                let lo = (a as usize).min(pt_len);
                let hi = (b as usize).min(pt_len).max(lo);
                assert_eq!(
                    r.as_deref().unwrap_or_else(|e| panic!("tc {id} range {a}..{b}: {e}")),
                    &pt[lo..hi],
                    "tc {id} range {a}..{b}"
                );
            }
        }
        // The whole object through the shape-driven path (what a ranged reader of the full
        // object does after a HEAD), with odd splits.
        if let Some(e) = ranged_error {
            for sizes in [&[1usize][..], &[frame + 1], &[usize::MAX]] {
                let r = shape.clone().and_then(|s| {
                    let dec = Decryptor::<C>::with_shape(&key, s)?;
                    let (out, r) = feed_cycling(dec, &ct, sizes, None);
                    assert!(out.len() <= released.max(pt_len), "tc {id}");
                    assert_eq!(out, pt[..out.len()], "tc {id} released plaintext (ranged)");
                    r
                });
                assert_eq!(code(r), Some(e), "tc {id} ranged {sizes:?}");
            }
        }
        n += 1;
    }
    assert_eq!(n as u64, doc["numberOfTests"].as_u64().unwrap());
    n
}

#[test]
fn frame_vectors_rustcrypto() {
    assert!(object_vectors::<RustCrypto>("frames.json") > 20);
}

#[test]
fn frame_vectors_awslc() {
    assert!(object_vectors::<AwsLc>("frames.json") > 20);
}

#[test]
fn multipart_vectors_rustcrypto() {
    assert!(object_vectors::<RustCrypto>("multipart.json") >= 10);
}

#[test]
fn multipart_vectors_awslc() {
    assert!(object_vectors::<AwsLc>("multipart.json") >= 10);
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
        .collect()
}

fn view(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn copy_decision_vectors() {
    use isec_core::copy::{CopyLimits, CopyRequest, Directive, decide};
    let doc = load("copy_decisions.json");
    for t in doc["tests"].as_array().unwrap() {
        let id = &t["tcId"];
        let r = &t["request"];
        let meta = pairs(&r["source_metadata"]);
        let new_meta = pairs(&r["new_metadata"]);
        let (meta, new_meta) = (view(&meta), view(&new_meta));
        let l = &r["limits"];
        let mut req = CopyRequest::new(&meta, r["source_size"].as_u64().unwrap());
        req.source_sidecar = r["source_sidecar"].as_bool().unwrap();
        req.directive = if r["directive"] == "COPY" { Directive::Copy } else { Directive::Replace };
        req.new_metadata = &new_meta;
        req.target_kid = r["target_kid"].as_str();
        req.rotate_dek = r["rotate_dek"].as_bool().unwrap();
        req.migrate_legacy = r["migrate_legacy"].as_bool().unwrap();
        req.require_encryption = r["require_encryption"].as_bool().unwrap();
        req.limits = CopyLimits::default()
            .with_single_copy_max(l["single_copy_max"].as_u64().unwrap())
            .with_part_min(l["part_min"].as_u64().unwrap())
            .with_part_max(l["part_max"].as_u64().unwrap())
            .with_max_parts(l["max_parts"].as_u64().unwrap() as u32)
            .with_metadata_max(l["metadata_max"].as_u64().unwrap() as usize);
        let ring = keyring_with(Some(&t["keys"]));
        let got = decide(&req, Some(&ring));
        if t["result"] == "invalid" {
            assert_eq!(code(got), t["error"].as_str(), "tc {id}");
            continue;
        }
        let p = got.unwrap_or_else(|e| panic!("tc {id}: {e}"));
        let e = &t["expect"];
        assert_eq!(p.action.name(), e["action"].as_str().unwrap(), "tc {id}");
        assert_eq!(
            p.metadata.as_deref().map(|m| m.to_vec()),
            e["metadata"].as_array().map(|_| pairs(&e["metadata"])),
            "tc {id}"
        );
        let ranges: Vec<(u64, u64)> =
            e["ranges"].as_array().unwrap().iter().map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap())).collect();
        assert_eq!(p.ranges, ranges, "tc {id}");
        assert_eq!(p.copy_sidecar, e["copy_sidecar"].as_bool().unwrap(), "tc {id}");
        assert_eq!(p.rewrapped, e["rewrapped"].as_bool().unwrap(), "tc {id}");
        assert_eq!(p.reason.map(|r| r.code()), e["reason"].as_str(), "tc {id}");
        assert_eq!(p.requests, e["requests"].as_u64().unwrap(), "tc {id}");
        assert_eq!(p.client_bytes, e["client_bytes"].as_u64().unwrap(), "tc {id}");
        // The requests that execute the plan (SPEC.md §12.2), to another object and in place.
        let src = ObjectRef::new("src-bucket", "photos/a.jpg");
        let dst = ObjectRef::new("dst-bucket", "backup/a.jpg");
        check_steps(&copy_steps(&p, &src, &meta, &dst, false), &e["steps"], &format!("tc {id}"));
        check_steps(&copy_steps(&p, &src, &meta, &src, false), &e["steps_in_place"], &format!("tc {id} in place"));
        // A migration in place (SPEC.md §12.3), for each recorded sidecar.
        let migrations = e["migrations"].as_array().map_or(&[][..], Vec::as_slice);
        assert_eq!(!migrations.is_empty(), req.migrate_legacy && p.action.name() == "reencrypt", "tc {id} migrations");
        for (k, m) in migrations.iter().enumerate() {
            let got = isec_core::s3::migrate_steps(
                &p,
                &src,
                &meta,
                m["sidecar"].as_str(),
                m["active_kid"].as_str().unwrap(),
                m["plaintext_len"].as_u64(),
            )
            .unwrap();
            let what = format!("tc {id} migration {k}");
            check_steps(&got.steps, &m["steps"], &what);
            assert_eq!(got.sidecar_deleted.as_deref(), m["sidecar_deleted"].as_str(), "{what}");
            assert_eq!(got.sidecar_kept.as_deref(), m["sidecar_kept"].as_str(), "{what}");
        }
    }
}

#[test]
fn rotation_vectors() {
    let doc = load("rotation.json");
    for t in doc["tests"].as_array().unwrap() {
        let id = &t["tcId"];
        let mut ring = keyring_with(Some(&t["keys"]));
        ring.set_min_version(t["min_version"].as_u64().unwrap() as u8);
        let env = Envelope::decode_text(t["envelope"].as_str().unwrap()).unwrap();
        match t["operation"].as_str().unwrap() {
            "open" => match t["result"].as_str().unwrap() {
                "valid" => assert!(ring.open(&env).is_ok(), "tc {id}"),
                _ => assert_eq!(code(ring.open(&env)), t["error"].as_str(), "tc {id}"),
            },
            "rewrap" => {
                let r = ring.rewrap(&env);
                match t["result"].as_str().unwrap() {
                    "valid" => {
                        let e = r.unwrap();
                        assert_eq!(e.to_text(), t["expect"]["envelope"].as_str().unwrap(), "tc {id}");
                        assert_eq!(e.kid(), t["expect"]["kid"].as_str().unwrap(), "tc {id}");
                    }
                    _ => assert_eq!(code(r), t["error"].as_str(), "tc {id}"),
                }
            }
            op => panic!("tc {id}: unknown operation {op}"),
        }
    }
}

#[test]
fn legacy_vectors() {
    use isec_core::legacy::{self, LegacyKey, LegacyMetadata, LegacyObject};
    let doc = load("legacy.json");
    for t in doc["tests"].as_array().unwrap() {
        let id = &t["tcId"];
        let meta = pairs(&t["metadata"]);
        let ct = hex::decode(t["ciphertext"].as_str().unwrap()).unwrap();
        let kek = Kek::legacy_from_secret_string(t["legacy_secret"].as_str().unwrap());
        let r = LegacyMetadata::from_pairs(&meta)
            .and_then(|m| LegacyObject::new(&m, None, ct.len() as u64))
            .and_then(|obj| LegacyKey::open_object(&kek, &obj).and_then(|k| legacy::decrypt::<AwsLc>(&k, &obj, &ct)));
        match t["result"].as_str().unwrap() {
            "valid" => assert_eq!(r.unwrap(), pattern(t["plaintext_len"].as_u64().unwrap() as usize), "tc {id}"),
            _ => assert_eq!(code(r), t["error"].as_str(), "tc {id}"),
        }
    }
}

fn obj_json(o: &ObjectRef) -> serde_json::Value {
    serde_json::json!([o.bucket, o.key])
}

/// A step list against the corpus's: operation, objects, directive, pinning, headers, ranges
/// and the undo requests, in order.
fn check_steps(got: &[Step], want: &serde_json::Value, what: &str) {
    let want = want.as_array().unwrap_or_else(|| panic!("{what}: no steps recorded"));
    assert_eq!(got.len(), want.len(), "{what}: step count");
    let check = |r: &Request, w: &serde_json::Value, at: &str| {
        assert_eq!(r.name(), w["op"].as_str().unwrap(), "{at}");
        match r {
            Request::CopyObject { source, dest, if_match, metadata, headers } => {
                assert_eq!((obj_json(source), obj_json(dest)), (w["source"].clone(), w["dest"].clone()), "{at}");
                assert_eq!(*if_match, w["if_match"].as_bool().unwrap(), "{at}");
                assert_eq!(
                    metadata.as_ref().map(|m| m.to_vec()),
                    w["metadata"].as_array().map(|_| pairs(&w["metadata"])),
                    "{at}"
                );
                let h = if *headers == Headers::Carried { "carried" } else { "kept" };
                assert_eq!(h, w["headers"].as_str().unwrap(), "{at}");
            }
            Request::UploadPartCopy { source, dest, part, range } => {
                assert_eq!((obj_json(source), obj_json(dest)), (w["source"].clone(), w["dest"].clone()), "{at}");
                assert_eq!(u64::from(*part), w["part"].as_u64().unwrap(), "{at}");
                assert_eq!(serde_json::json!([range.0, range.1]), w["range"], "{at}");
            }
            Request::CreateMultipartUpload { dest, metadata } | Request::Reencrypt { dest, metadata, .. } => {
                assert_eq!(obj_json(dest), w["dest"], "{at}");
                assert_eq!(metadata.to_vec(), pairs(&w["metadata"]), "{at}");
            }
            Request::CompleteMultipartUpload { dest, parts } => {
                assert_eq!(obj_json(dest), w["dest"], "{at}");
                assert_eq!(u64::from(*parts), w["parts"].as_u64().unwrap(), "{at}");
            }
            Request::AbortMultipartUpload { dest } => assert_eq!(obj_json(dest), w["dest"], "{at}"),
            Request::DeleteObject { object } => assert_eq!(obj_json(object), w["object"], "{at}"),
            Request::VerifyIsec { object, kid, plaintext_len } => {
                assert_eq!(obj_json(object), w["object"], "{at}");
                assert_eq!(kid, w["kid"].as_str().unwrap(), "{at}");
                assert_eq!(*plaintext_len, w["plaintext_len"].as_u64(), "{at}");
            }
            other => panic!("{at}: unexpected {other:?}"),
        }
    };
    for (i, (s, w)) in got.iter().zip(want).enumerate() {
        check(&s.request, w, &format!("{what} step {i}"));
        let undo = w["undo"].as_array().unwrap();
        assert_eq!(s.undo.len(), undo.len(), "{what} step {i} undo");
        for (j, (u, wu)) in s.undo.iter().zip(undo).enumerate() {
            check(u, wu, &format!("{what} step {i} undo {j}"));
        }
    }
}

/// `recipients.json`: each case's keyring is a keyring file (SPEC.md §10.3), so the file
/// format is part of the contract too.
#[test]
fn recipient_vectors() {
    let doc = load("recipients.json");
    let tests = doc["tests"].as_array().unwrap();
    assert!(tests.len() >= 10);
    for t in tests {
        let id = t["tcId"].as_u64().unwrap();
        let ring_of = |v: &Value| Keyring::from_file_text(v.to_string().as_bytes()).unwrap();
        let ct = hex::decode(t["ciphertext"].as_str().unwrap()).unwrap();
        let want = pattern(t["plaintext_len"].as_u64().unwrap() as usize);
        let env = Envelope::decode_text(t["envelope"].as_str().unwrap());
        if t["stage"] == "decode" {
            assert_eq!(code(env), t["error"].as_str(), "case {id}");
            continue;
        }
        let mut env = env.unwrap_or_else(|e| panic!("case {id}: {e}"));
        let mut ring = ring_of(&t["keyring"]);
        if let Some(i) = t.get("inspect") {
            assert_eq!(env.info().wrap_alg.name(), i["wrap_alg"].as_str().unwrap(), "case {id}");
            assert_eq!(env.info().envelope_len as u64, i["envelope_len"].as_u64().unwrap(), "case {id}");
        }
        if let Some(then) = t.get("rewrap_then_open_with") {
            env = ring.rewrap(&env).unwrap();
            assert_eq!(env.wrap_alg().name(), t["rewrapped_wrap_alg"].as_str().unwrap(), "case {id}");
            ring = ring_of(then);
        }
        let opened = ring.open(&env);
        match t["result"].as_str().unwrap() {
            "valid" => {
                let key = opened.unwrap_or_else(|e| panic!("case {id}: {e}"));
                assert_eq!(oneshot::decrypt::<RustCrypto>(&key, &ct).unwrap(), want, "case {id}");
            }
            _ => assert_eq!(code(opened), t["error"].as_str(), "case {id}"),
        }
    }
}
