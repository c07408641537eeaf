//! Opening an object from its HEAD (SPEC.md §12.1): which sidecar to fetch, and what the
//! object is once fed, for every format, against the previous proxy's own objects.

use std::path::PathBuf;

use isec_core::s3::{ObjectOpen, Open, Opened, SidecarKind};
use isec_core::{Dek, Envelope, Error, Kek, Params, SegmentTable, oneshot};
use serde_json::Value;

fn vectors() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/s3proxy");
    if p.join("single_put.json").is_file() {
        return Some(p);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must check against ../shared/vectors/s3proxy");
    eprintln!("NOT CHECKED: previous-proxy objects through ObjectOpen: ../shared/vectors/s3proxy missing");
    None
}

fn json(name: &str) -> Option<Value> {
    Some(serde_json::from_slice(&std::fs::read(vectors()?.join(name)).unwrap()).unwrap())
}

/// A vector's metadata object as pairs, without its `_note`s.
fn pairs(v: &Value) -> Vec<(String, String)> {
    let m = v.as_object().unwrap().iter().filter(|(k, _)| !k.starts_with('_'));
    m.map(|(k, x)| (k.clone(), x.as_str().unwrap().to_string())).collect()
}

fn fetch(open: &Open) -> (&str, SidecarKind, bool) {
    match open {
        Open::Fetch { key, kind, probe, .. } => (key.as_str(), *kind, *probe),
        Open::Ready(o) => panic!("ready too early: {o:?}"),
    }
}

#[test]
fn isec_objects_open_from_their_head_or_their_table() {
    let kek = Kek::from_bytes([1; 32]);
    let (env, _) = Envelope::create(&kek, "k", Params::default()).unwrap();
    let text = env.to_text();
    let (_, open) = ObjectOpen::new("a/b", &[("x-amz-meta-isec", text.as_str()), ("isec-kid", "k")], 100).unwrap();
    assert!(matches!(open, Open::Ready(Opened::Isec { table: None, .. })));

    let (tenv, tkey) =
        Envelope::create_with(&kek, "k", Params::default().with_table(), &Dek::from_bytes([2; 32]), [3; 32]).unwrap();
    let part = oneshot::encrypt_part::<isec_core::RustCrypto>(&tkey, 1, false, b"hello").unwrap();
    let table = SegmentTable::new(vec![(1, 5, part[..7].try_into().unwrap())]).unwrap().encode(&tkey);
    let ttext = tenv.to_text();
    let meta = [("isec", ttext.as_str())];
    let (mut o, open) = ObjectOpen::new("a/b", &meta, part.len() as u64).unwrap();
    assert_eq!(fetch(&open), ("a/b.isec-table", SidecarKind::Table, false));
    let mut o2 = ObjectOpen::new("a/b", &meta, part.len() as u64).unwrap().0;
    assert_eq!(o2.feed(None).err(), Some(Error::MalformedSegmentTable), "a table-layout object needs its table");
    match o.feed(Some(&table)).unwrap() {
        Open::Ready(Opened::Isec { table: Some(t), table_sidecar: Some(k), .. }) => {
            assert_eq!(t, table);
            assert_eq!(k, "a/b.isec-table");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.feed(None).err(), Some(Error::InvalidState), "nothing more was asked for");

    let b64 = {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(&table)
    };
    let meta = [("isec", ttext.as_str()), ("isec-table", b64.as_str())];
    let (_, open) = ObjectOpen::new("a/b", &meta, part.len() as u64).unwrap();
    assert!(matches!(open, Open::Ready(Opened::Isec { table: Some(_), table_sidecar: None, .. })), "inline table");
    assert_eq!(ObjectOpen::new("x", &[("isec", "not an envelope!")], 5).err(), Some(Error::MalformedEnvelope));
}

#[test]
fn plain_looking_objects_are_probed_for_a_previous_proxy_sidecar() {
    let (mut o, open) = ObjectOpen::new("dir/file.txt", &[("color", "blue")], 42).unwrap();
    assert_eq!(fetch(&open), (".s3proxy-internal/dir/file.txt.meta", SidecarKind::Legacy, true));
    assert!(matches!(o.feed(None).unwrap(), Open::Ready(Opened::Plaintext)));

    // A streamed upload of the previous proxy: no metadata, only its sidecar.
    let Some(v) = json("streaming_put_v2.json") else { return };
    let key = v["object_key"].as_str().unwrap();
    let sc = &v["sidecars"]["legacy-68f2c15"];
    let body = sc["sidecar"]["body_base64_text"].as_str().unwrap();
    let size = v["object_ciphertext"]["len"].as_u64().unwrap();
    let (mut o, open) = ObjectOpen::new(key, &[], size).unwrap();
    assert_eq!(fetch(&open), (sc["sidecar_key"].as_str().unwrap(), SidecarKind::Legacy, true));
    match o.feed(Some(body.as_bytes())).unwrap() {
        Open::Ready(Opened::Legacy { object, sidecar: Some(k) }) => {
            assert_eq!(k, sc["sidecar_key"].as_str().unwrap());
            assert_eq!(object.plaintext_len(), v["plaintext"]["len"].as_u64().unwrap());
        }
        other => panic!("{other:?}"),
    }
    // The same sidecar against another stored size: inconsistent, refused.
    let mut o = ObjectOpen::new(key, &[], size + 1).unwrap().0;
    assert!(o.feed(Some(body.as_bytes())).is_err());
}

#[test]
fn previous_proxy_objects_name_their_sidecar() {
    let Some(v) = json("single_put.json") else { return };
    let case = &v["cases"][0];
    let meta = pairs(&case["object_metadata"]["pr107_07bca1bf"]);
    let view: Vec<(&str, &str)> = meta.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect();
    let size = case["ciphertext"]["len"].as_u64().unwrap();
    let (_, open) = ObjectOpen::new("k", &view, size).unwrap();
    assert!(matches!(open, Open::Ready(Opened::Legacy { sidecar: None, .. })), "a single PUT needs no sidecar");

    let Some(v) = json("multipart_v3_staged.json") else { return };
    let meta = pairs(&v["object_metadata"]);
    let view: Vec<(&str, &str)> = meta.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect();
    let size = v["object_ciphertext"]["len"].as_u64().unwrap();
    let (mut o, open) = ObjectOpen::new(v["object_key"].as_str().unwrap(), &view, size).unwrap();
    assert_eq!(fetch(&open), (v["sidecar_key"].as_str().unwrap(), SidecarKind::Legacy, false));
    let mut missing = ObjectOpen::new(v["object_key"].as_str().unwrap(), &view, size).unwrap().0;
    assert_eq!(missing.feed(None).err(), Some(Error::MalformedLegacy), "a staged object without its sidecar");
    let body = v["sidecar"]["body_base64_text"].as_str().unwrap();
    assert!(matches!(o.feed(Some(body.as_bytes())).unwrap(), Open::Ready(Opened::Legacy { sidecar: Some(_), .. })));
}
