//! The legacy reader against every object in the shared s3proxy vectors (SPEC.md §11):
//! full, streamed and ranged decryption on both backends, and every refusal the reader
//! promises (wrong KEK, tampering, truncation, extension, oversized or malformed sidecars).
//!
//! The vectors live outside the repository (`../shared/vectors/s3proxy`, or the directory
//! in `ISEC_SHARED_VECTORS`). When they are missing, CI (`CI=true`) fails; elsewhere each
//! test says what it did not check and passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::cast_possible_truncation)]

use std::io::Write;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use isec_core::fuzzing::XorShift as Rng;
use isec_core::legacy::{
    self, DEFAULT_SIDECAR_CAP, LegacyDecryptor, LegacyKey, LegacyLayout, LegacyMetadata, LegacyObject, LegacyRange,
    LegacySidecar, NonceRule, SEAL_PLAINTEXT,
};
use isec_core::{AwsLc, Error, FrameCipher, Kek, RustCrypto, Stream};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MIB8: usize = 8 * 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Vector plumbing

fn vectors_dir() -> Option<PathBuf> {
    // An explicit setting wins outright (the shared vectors root or its s3proxy folder), so
    // a wrong one is reported rather than quietly replaced by the default location.
    let candidates = match std::env::var_os("ISEC_SHARED_VECTORS") {
        Some(p) => vec![PathBuf::from(&p).join("s3proxy"), PathBuf::from(p)],
        None => {
            vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/s3proxy")]
        }
    };
    if let Some(found) = candidates.iter().find(|p| p.join("single_put.json").is_file()) {
        return Some(found.clone());
    }
    let msg = format!("s3proxy legacy vectors not found (looked in {candidates:?})");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}: CI must check the legacy reader against them");
    }
    None
}

/// The vectors directory, or `None` after saying which check was skipped.
fn vectors(what: &str) -> Option<PathBuf> {
    let dir = vectors_dir();
    if dir.is_none() {
        // Straight to the process's stderr: libtest hides `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "NOT CHECKED: {what}: s3proxy vectors missing; set ISEC_SHARED_VECTORS or add ../shared/vectors/s3proxy"
        );
    }
    dir
}

/// The vectors directory and the parsed file `name` in it, or `None` as [`vectors`] says.
fn vector_file(what: &str, name: &str) -> Option<(PathBuf, Value)> {
    let dir = vectors(what)?;
    let v = json(&dir, name);
    Some((dir, v))
}

fn json(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not a number"))
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn read_body(dir: &Path, cipher: &Value) -> Vec<u8> {
    let body = std::fs::read(dir.join(s(cipher, "bin_file"))).unwrap();
    assert_eq!(body.len() as u64, u(cipher, "len"));
    assert_eq!(sha256_hex(&body), s(cipher, "sha256"), "vector body hash");
    body
}

/// A whole-object vector's plaintext and body, each checked against its recorded hash.
fn whole_object(dir: &Path, v: &Value) -> (Vec<u8>, Vec<u8>) {
    let pt = plaintext(u(&v["plaintext"], "len") as usize);
    assert_eq!(sha256_hex(&pt), s(&v["plaintext"], "sha256"));
    (pt, read_body(dir, &v["object_ciphertext"]))
}

fn metadata_of(v: &Value) -> LegacyMetadata {
    let pairs: Vec<(String, String)> = v
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    LegacyMetadata::from_pairs(&pairs).unwrap()
}

fn kek_of(v: &Value) -> Kek {
    let kek = Kek::legacy_from_secret_string(s(&v["kek"], "kek_secret"));
    assert_eq!(hex::encode(kek.expose_secret()), s(&v["kek"], "hex"));
    kek
}

/// Both the one-shot and the streaming (whole pieces) decryption refuse `ct` with `e`.
fn rejects(key: &LegacyKey, obj: &LegacyObject, ct: &[u8], e: Error) {
    assert_eq!(legacy::decrypt::<AwsLc>(key, obj, ct), Err(e));
    assert_eq!(stream::<AwsLc>(key, obj, None, ct, || 1 << 20), Err(e));
}

/// Feeds `ct` in pieces whose sizes `next` chooses; collects what the decryptor releases.
fn stream<C: FrameCipher>(
    key: &LegacyKey,
    obj: &LegacyObject,
    range: Option<&LegacyRange>,
    ct: &[u8],
    mut next: impl FnMut() -> usize,
) -> Result<Vec<u8>, Error> {
    let mut d = match range {
        None => LegacyDecryptor::<C>::new(key, obj)?,
        Some(r) => LegacyDecryptor::<C>::for_range(key, obj, r)?,
    };
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut at = 0;
    while at < ct.len() {
        let n = next().clamp(1, ct.len() - at);
        let need = d.update_len(n);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let w = d.update(&ct[at..at + n], &mut buf)?;
        assert!(w <= need);
        out.extend_from_slice(&buf[..w]);
        at += n;
    }
    assert_eq!(d.released(), out.len() as u64);
    assert_eq!(d.finish_len(), 0);
    let w = d.finish(&mut [])?;
    assert_eq!(w, 0);
    Ok(out)
}

/// Every way of reading the whole object must give the plaintext.
fn check_full(key: &LegacyKey, obj: &LegacyObject, ct: &[u8], pt: &[u8], seed: u64) {
    assert_eq!(legacy::decrypt::<AwsLc>(key, obj, ct).unwrap(), pt);
    assert_eq!(legacy::decrypt::<RustCrypto>(key, obj, ct).unwrap(), pt);
    let whole = obj.plan_range(0, u64::MAX).unwrap();
    if !pt.is_empty() {
        assert_eq!(legacy::decrypt_range::<AwsLc>(key, obj, &whole, ct).unwrap(), pt);
    }
    assert_eq!(stream::<AwsLc>(key, obj, None, ct, || usize::MAX).unwrap(), pt);
    if ct.len() <= 70_000 {
        assert_eq!(stream::<AwsLc>(key, obj, None, ct, || 1).unwrap(), pt, "1-byte pieces");
    }
    for piece in [MIB8 - 1, MIB8, MIB8 + 1, MIB8 + 28, MIB8 + 29, 4095] {
        assert_eq!(stream::<AwsLc>(key, obj, None, ct, || piece).unwrap(), pt, "pieces of {piece}");
    }
    let mut rng = Rng(seed | 1);
    let max = (ct.len() as u64 / 3).max(2);
    assert_eq!(stream::<AwsLc>(key, obj, None, ct, || rng.below(max) as usize + 1).unwrap(), pt, "random pieces");
    let mut rng = Rng(seed.wrapping_mul(3) | 1);
    assert_eq!(stream::<RustCrypto>(key, obj, None, ct, || rng.below(100_000) as usize + 1).unwrap(), pt);
}

/// One range: the plan covers whole seals, and both the one-shot and streaming range
/// readers return exactly the slice.
fn check_range(key: &LegacyKey, obj: &LegacyObject, ct: &[u8], pt: &[u8], a: u64, b: u64, rng: &mut Rng) {
    let plan = obj.plan_range(a, b).unwrap();
    let (ca, cb) = (a.min(pt.len() as u64), b.min(pt.len() as u64));
    let want = &pt[ca as usize..cb.max(ca) as usize];
    assert_eq!(plan.len, want.len() as u64);
    if plan.is_empty() {
        assert_eq!(plan.http_range(), None);
        assert_eq!(legacy::decrypt_range::<AwsLc>(key, obj, &plan, &[]).unwrap(), Vec::<u8>::new());
        return;
    }
    let first = obj.seal(plan.first_seal).unwrap();
    let last = obj.seal(plan.end_seal - 1).unwrap();
    assert_eq!(plan.ct_start, first.ct_offset);
    assert_eq!(plan.ct_end, last.ct_offset + last.ct_len);
    assert!(first.pt_offset <= a && a < first.pt_offset + first.pt_len.max(1));
    assert!(last.pt_offset < cb && cb <= last.pt_offset + last.pt_len);
    assert_eq!(plan.skip, a - first.pt_offset);
    assert_eq!(plan.http_range().unwrap(), format!("bytes={}-{}", plan.ct_start, plan.ct_end - 1));
    let fetched = &ct[plan.ct_start as usize..plan.ct_end as usize];
    assert_eq!(legacy::decrypt_range::<AwsLc>(key, obj, &plan, fetched).unwrap(), want, "range [{a}, {b})");
    let max = (fetched.len() as u64 / 2).max(2);
    let got = stream::<AwsLc>(key, obj, Some(&plan), fetched, || rng.below(max) as usize + 1).unwrap();
    assert_eq!(got, want, "streamed range [{a}, {b})");
    // A flipped byte anywhere in the fetch, even in a part of a seal that is not returned.
    let mut bad = fetched.to_vec();
    let at = rng.below(bad.len() as u64) as usize;
    bad[at] ^= 0x40;
    assert_eq!(legacy::decrypt_range::<AwsLc>(key, obj, &plan, &bad), Err(Error::AuthenticationFailed));
    assert_eq!(legacy::decrypt_range::<AwsLc>(key, obj, &plan, &fetched[1..]), Err(Error::Truncated));
}

/// Ranges at the ends, around every seal boundary, across several seals, and random ones.
fn check_ranges(key: &LegacyKey, obj: &LegacyObject, ct: &[u8], pt: &[u8], seed: u64) {
    let n = pt.len() as u64;
    let mut rng = Rng(seed | 1);
    let mut ranges =
        vec![(0, 0), (0, 1), (0, n), (n.saturating_sub(1), n), (n, n + 10), (0, u64::MAX), (n / 2, n / 2 + 1)];
    for seal in obj.seals().skip(1) {
        let b = seal.pt_offset;
        ranges.extend([(b - 1, b + 1), (b.saturating_sub(5), b), (b, (b + 5).min(n)), (b - 1, b + SEAL_PLAINTEXT + 2)]);
        ranges.push((b.saturating_sub(SEAL_PLAINTEXT + 3), b + 3));
    }
    for _ in 0..6 {
        let a = rng.below(n + 1);
        let b = a + rng.below(n - a + 1);
        ranges.push((a, b));
    }
    for (a, b) in ranges {
        check_range(key, obj, ct, pt, a, b, &mut rng);
    }
    assert_eq!(obj.plan_range(5, 4), Err(Error::InvalidParameter));
}

/// Tampering, truncation and extension of the whole body.
fn check_refusals(key: &LegacyKey, obj: &LegacyObject, ct: &[u8], rng: &mut Rng) {
    let positions = [0, 11, 12, ct.len() / 2, ct.len() - 17, ct.len() - 1, rng.below(ct.len() as u64) as usize];
    for at in positions {
        let mut bad = ct.to_vec();
        bad[at] ^= 0x01;
        assert_eq!(legacy::decrypt::<AwsLc>(key, obj, &bad), Err(Error::AuthenticationFailed), "flip at {at}");
        assert_eq!(stream::<AwsLc>(key, obj, None, &bad, || 65_536), Err(Error::AuthenticationFailed), "flip at {at}");
    }
    rejects(key, obj, &ct[..ct.len() - 1], Error::Truncated);
    let cut_seal = obj.seal(obj.seal_count() - 1).unwrap().ct_offset as usize;
    if cut_seal > 0 {
        // Whole seals missing at the end: each remaining seal verifies, finish must object.
        assert_eq!(stream::<AwsLc>(key, obj, None, &ct[..cut_seal], || 1 << 20), Err(Error::Truncated));
    }
    let mut longer = ct.to_vec();
    longer.push(0);
    rejects(key, obj, &longer, Error::TrailingData);
}

// ---------------------------------------------------------------------------------------
// single_put.json

#[test]
fn single_put_vectors() {
    let Some((dir, v)) = vector_file("single_put.json (one-seal objects)", "single_put.json") else {
        return;
    };
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for (i, case) in cases.iter().enumerate() {
        let n = u(&case["plaintext"], "len") as usize;
        let pt = plaintext(n);
        assert_eq!(sha256_hex(&pt), s(&case["plaintext"], "sha256"));
        let ct = read_body(&dir, &case["ciphertext"]);
        assert_eq!(hex::encode(&ct[..12]), s(case, "nonce_hex"));
        if let Some(h) = case["ciphertext"]["hex"].as_str() {
            assert_eq!(hex::encode(&ct), h);
        }
        let kek = kek_of(case);
        let variants = case["object_metadata"].as_object().unwrap();
        let mut seen = 0;
        for (name, meta_json) in variants.iter().filter(|(k, _)| !k.starts_with('_')) {
            seen += 1;
            let meta = metadata_of(meta_json);
            assert!(meta.is_legacy());
            assert_eq!(meta.sidecar_key("path/to/object.bin"), None);
            assert_eq!(meta.plaintext_size(), Some(n as u64));
            assert_eq!(meta.client_etag(), Some(s(case, "client_etag")));
            let obj = LegacyObject::new(&meta, None, ct.len() as u64).unwrap();
            assert_eq!(obj.layout(), LegacyLayout::Single);
            assert_eq!(obj.plaintext_len(), n as u64);
            assert_eq!(obj.seal_count(), 1);
            assert_eq!(obj.kid(), meta_json.get("isec-kid").and_then(Value::as_str), "{name}");
            let key = LegacyKey::open_object(&kek, &obj).unwrap();
            check_full(&key, &obj, &ct, &pt, 11 + i as u64);
            // The metadata's size must match the body.
            assert_eq!(LegacyObject::new(&meta, None, ct.len() as u64 - 1).err(), Some(Error::Truncated));
            assert_eq!(LegacyObject::new(&meta, None, ct.len() as u64 + 1).err(), Some(Error::TrailingData));
        }
        assert_eq!(seen, 3);
        let meta = metadata_of(&case["object_metadata"]["pr107_07bca1bf"]);
        let wrapped = Base64::decode_vec(meta.wrapped_dek_b64().unwrap()).unwrap();
        assert_eq!(hex::encode(wrapped), s(case, "wrapped_dek_hex"));
        let obj = LegacyObject::new(&meta, None, ct.len() as u64).unwrap();
        let key = LegacyKey::open(&kek, meta.wrapped_dek_b64().unwrap()).unwrap();
        let mut rng = Rng(99 + i as u64);
        check_refusals(&key, &obj, &ct, &mut rng);
        check_ranges(&key, &obj, &ct, &pt, 5 + i as u64);
        // The oldest objects have no kid and no size: the body alone sets the length.
        let bare = LegacyMetadata::from_pairs(&[("isec", meta.wrapped_dek_b64().unwrap())]).unwrap();
        let obj = LegacyObject::new(&bare, None, ct.len() as u64).unwrap();
        assert_eq!(legacy::decrypt::<AwsLc>(&key, &obj, &ct).unwrap(), pt);
    }
}

#[test]
fn wrong_kek_is_unwrap_failed() {
    let Some((_, v)) = vector_file("wrong KEK on single_put_1", "single_put.json") else {
        return;
    };
    let meta = metadata_of(&v["cases"][1]["object_metadata"]["pr107_07bca1bf"]);
    let wrapped = meta.wrapped_dek_b64().unwrap();
    for kek in [Kek::legacy_from_secret_string("vector-kek-secret "), Kek::from_bytes([0u8; 32])] {
        assert_eq!(LegacyKey::open(&kek, wrapped).err(), Some(Error::UnwrapFailed));
    }
    let kek = Kek::legacy_from_secret_string("vector-kek-secret");
    // A damaged wrapped DEK also fails to unwrap; text that is not a wrapped DEK is malformed.
    let mut raw = Base64::decode_vec(wrapped).unwrap();
    raw[7] ^= 1;
    assert_eq!(LegacyKey::open(&kek, &Base64::encode_string(&raw)).err(), Some(Error::UnwrapFailed));
    assert_eq!(LegacyKey::open(&kek, "AAAA").err(), Some(Error::MalformedLegacy));
    assert_eq!(LegacyKey::open(&kek, "not base64").err(), Some(Error::MalformedLegacy));
}

// ---------------------------------------------------------------------------------------
// Sidecar objects

fn sidecar_of(sc: &Value) -> LegacySidecar {
    let body = s(sc, "body_base64_text");
    let parsed = LegacySidecar::parse(body, DEFAULT_SIDECAR_CAP).unwrap();
    // Compare decoded JSON, never gzip bytes.
    let direct = LegacySidecar::from_json(s(sc, "json_utf8").as_bytes()).unwrap();
    assert_eq!(parsed, direct);
    // Text input, byte input and a trailing newline are all the same sidecar.
    assert_eq!(LegacySidecar::parse(format!("{body}\n").as_bytes(), DEFAULT_SIDECAR_CAP).unwrap(), parsed);
    parsed
}

fn check_sidecar_limits(sc: &Value) {
    let body = s(sc, "body_base64_text");
    let json_len = s(sc, "json_utf8").len();
    assert!(LegacySidecar::parse(body, json_len).is_ok());
    assert_eq!(LegacySidecar::parse(body, json_len - 1).err(), Some(Error::SidecarTooLarge));
    assert_eq!(LegacySidecar::parse(body, 16).err(), Some(Error::SidecarTooLarge));
    // Malformed base64.
    let unpadded = body.trim_end_matches('=');
    let bad_b64 = [
        format!("{body}!"),
        format!("A{body}"),
        body[..body.len() - 1].to_string(),
        format!("{unpadded}="),
        body.replace(['+', '/'], "-"),
    ];
    for bad in bad_b64 {
        assert_eq!(LegacySidecar::parse(&bad, DEFAULT_SIDECAR_CAP).err(), Some(Error::MalformedLegacy), "{bad}");
    }
    // Malformed gzip: header, deflate data, trailer, truncation, appended bytes.
    let gz = Base64::decode_vec(body).unwrap();
    for at in [0, 1, 2, 3, 12, gz.len() / 2, gz.len() - 8, gz.len() - 5, gz.len() - 1] {
        let mut bad = gz.clone();
        bad[at] ^= 0x55;
        let r = LegacySidecar::parse(Base64::encode_string(&bad), DEFAULT_SIDECAR_CAP);
        assert_eq!(r.err(), Some(Error::MalformedLegacy), "gzip byte {at}");
    }
    for cut in [0, 5, 10, gz.len() / 2, gz.len() - 8, gz.len() - 1] {
        let r = LegacySidecar::parse(Base64::encode_string(&gz[..cut]), DEFAULT_SIDECAR_CAP);
        assert_eq!(r.err(), Some(Error::MalformedLegacy), "gzip cut at {cut}");
    }
    let mut longer = gz.clone();
    longer.extend_from_slice(&gz);
    let r = LegacySidecar::parse(Base64::encode_string(&longer), DEFAULT_SIDECAR_CAP);
    assert_eq!(r.err(), Some(Error::MalformedLegacy), "second gzip member");
}

/// gzip of `payload` in one stored block, as a writer other than Python's zlib might do.
fn gzip_stored(payload: &[u8]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    for (i, chunk) in payload.chunks(65_535).enumerate() {
        let last = (i + 1) * 65_535 >= payload.len();
        v.push(u8::from(last));
        let n = chunk.len() as u16;
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&(!n).to_le_bytes());
        v.extend_from_slice(chunk);
    }
    if payload.is_empty() {
        v.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    v.extend_from_slice(&crc32(payload).to_le_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v
}

fn parse_json_text(j: &str) -> Result<LegacySidecar, Error> {
    LegacySidecar::parse(Base64::encode_string(&gzip_stored(j.as_bytes())), DEFAULT_SIDECAR_CAP)
}

#[test]
fn malformed_sidecar_json() {
    let Some((_, v)) = vector_file("sidecar JSON consistency checks", "multipart_v2_framed.json") else {
        return;
    };
    let good = s(&v["sidecar"], "json_utf8");
    // The test's own gzip writer round-trips the real JSON.
    assert_eq!(parse_json_text(good).unwrap(), LegacySidecar::from_json(good.as_bytes()).unwrap());
    let edits: Vec<(&str, String)> = vec![
        ("not JSON", "{\"v\":2,".to_string()),
        ("not an object", "[1,2,3]".to_string()),
        ("empty", String::new()),
        ("ts", good.replace("\"ts\":24117258", "\"ts\":24117259")),
        ("pc", good.replace("\"pc\":3", "\"pc\":4")),
        ("version", good.replace("\"v\":2", "\"v\":1")),
        ("part order", good.replace("\"pn\":3", "\"pn\":2")),
        ("internal order", good.replace("\"ipn\":22", "\"ipn\":21")),
        ("part cs", good.replace("\"cs\":17825907", "\"cs\":17825935")),
        ("ip ps", good.replace("\"ipn\":22,\"ps\":8912897", "\"ipn\":22,\"ps\":8912896")),
        (
            "frame rule",
            good.replace("\"ipn\":22,\"ps\":8912897,\"cs\":8912953", "\"ipn\":22,\"ps\":8912897,\"cs\":8912981"),
        ),
        ("dek", good.replace("4RlQyRtACp6zdsP0GA5eUaAyYMqYPkjCmqtvpLANiAs/bM6P0UW94w==", "4RlQyRtA")),
        ("type", good.replace("\"ts\":24117258", "\"ts\":\"24117258\"")),
        ("negative", good.replace("\"pn\":1,", "\"pn\":-1,")),
        ("missing parts", good.split(",\"parts\"").next().unwrap().to_string() + "}"),
        ("control characters", "{\"v\":2,\u{0}\u{FFFF}".to_string()),
    ];
    for (what, text) in edits {
        assert_ne!(text, good, "{what}: edit did not apply");
        assert_eq!(parse_json_text(&text).err(), Some(Error::MalformedLegacy), "{what}");
    }
    let mut invalid_utf8 = gzip_stored(b"{\"v\":2,\"dek\":\"\xff\"}");
    assert_eq!(
        LegacySidecar::parse(Base64::encode_string(&invalid_utf8), DEFAULT_SIDECAR_CAP).err(),
        Some(Error::MalformedLegacy)
    );
    // A stored member of a large JSON padding is capped like any other.
    let padded = format!("{}{}", " ".repeat(200_000), good);
    assert!(parse_json_text(&padded).is_ok());
    invalid_utf8 = gzip_stored(padded.as_bytes());
    let r = LegacySidecar::parse(Base64::encode_string(&invalid_utf8), 100_000);
    assert_eq!(r.err(), Some(Error::SidecarTooLarge));
    // Unknown fields are ignored.
    let extra = good.replacen('{', "{\"future\":{\"x\":[1,2]},", 1);
    assert!(parse_json_text(&extra).is_ok());
}

// ---------------------------------------------------------------------------------------
// streaming_put_v2.json

#[test]
fn streaming_put_vector() {
    let Some((dir, v)) = vector_file("streaming_put_v2.json (streamed PUT)", "streaming_put_v2.json") else {
        return;
    };
    let (pt, ct) = whole_object(&dir, &v);
    let n = pt.len();
    let kek = kek_of(&v);
    let upload_id = s(&v, "upload_id");
    // No metadata at all: only the sidecar says this is the proxy's.
    let meta = LegacyMetadata::from_lookup(|_| None).unwrap();
    assert!(!meta.is_legacy());
    for (name, variant) in v["sidecars"].as_object().unwrap() {
        let sc = &variant["sidecar"];
        assert_eq!(meta.sidecar_key(s(&v, "object_key")).as_deref(), Some(s(variant, "sidecar_key")));
        let sidecar = sidecar_of(sc);
        check_sidecar_limits(sc);
        assert_eq!(sidecar.version(), 2);
        assert_eq!(sidecar.total_size(), n as u64);
        assert_eq!(sidecar.ciphertext_size(), ct.len() as u64);
        let obj = LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64).unwrap();
        assert_eq!(obj.layout(), LegacyLayout::Streamed);
        assert_eq!(obj.kid(), if name.starts_with("legacy") { None } else { Some("AKIAVECTORTEST000001") });
        assert_eq!(obj.upload_id(), None);
        let wrapped = Base64::decode_vec(obj.wrapped_dek_b64()).unwrap();
        assert_eq!(hex::encode(wrapped), s(&v, "wrapped_dek_hex"));
        let key = LegacyKey::open_object(&kek, &obj).unwrap();

        // Seals are the backend parts, each with its part nonce.
        let parts = v["backend_parts"].as_array().unwrap();
        let seals: Vec<_> = obj.seals().collect();
        assert_eq!(seals.len(), parts.len());
        let checked = obj.clone().with_upload_id(upload_id).unwrap();
        let mut ct_off = 0;
        for (seal, part) in seals.iter().zip(parts) {
            assert_eq!(seal.pt_offset, u(part, "plaintext_offset"));
            assert_eq!(seal.pt_len, u(part, "plaintext_len"));
            assert_eq!(seal.ct_len, u(part, "ciphertext_len"));
            assert_eq!(seal.ct_offset, ct_off);
            ct_off += seal.ct_len;
            let pn = u(part, "backend_part_number") as u32;
            assert_eq!(seal.nonce, NonceRule::Part { part_number: pn });
            let body = &ct[seal.ct_offset as usize..(seal.ct_offset + seal.ct_len) as usize];
            assert_eq!(sha256_hex(body), s(part, "ciphertext_sha256"));
            assert_eq!(hex::encode(&body[..12]), s(part, "nonce_hex"));
            assert_eq!(hex::encode(legacy::part_nonce(upload_id, pn)), s(part, "nonce_hex"));
            assert_eq!(checked.expected_nonce(seal).map(hex::encode).as_deref(), Some(s(part, "nonce_hex")));
            assert_eq!(obj.expected_nonce(seal), None);
        }
        check_full(&key, &obj, &ct, &pt, 21);
        check_full(&key, &checked, &ct, &pt, 22);
        check_ranges(&key, &checked, &ct, &pt, 23);
        check_refusals(&key, &obj, &ct, &mut Rng(24));
        check_reorder(&key, &obj, &checked, &ct, &pt, &seals[0], &seals[1]);
        // A different upload id makes every derived nonce wrong.
        let other = obj.clone().with_upload_id("2~someOtherUpload").unwrap();
        assert_eq!(legacy::decrypt::<AwsLc>(&key, &other, &ct), Err(Error::AuthenticationFailed));
        // Size and body must agree.
        assert_eq!(LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64 - 1).err(), Some(Error::Truncated));
        assert_eq!(LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64 + 28).err(), Some(Error::TrailingData));
        let wrong_size = LegacyMetadata::from_pairs(&[("plaintext-size", "16777222")]).unwrap();
        assert_eq!(LegacyObject::new(&wrong_size, Some(&sidecar), ct.len() as u64).err(), Some(Error::MalformedLegacy));
        let staged_tag = LegacyMetadata::from_pairs(&[("s3proxy-format", "single-v3")]).unwrap();
        assert_eq!(LegacyObject::new(&staged_tag, Some(&sidecar), ct.len() as u64).err(), Some(Error::MalformedLegacy));
    }
}

/// Two equal-length seals swapped: the format's known weakness is that this decrypts (to
/// reordered plaintext) when nothing binds positions; with the upload id the derived
/// nonces catch it.
fn check_reorder(
    key: &LegacyKey,
    loose: &LegacyObject,
    checked: &LegacyObject,
    ct: &[u8],
    pt: &[u8],
    a: &legacy::LegacySeal,
    b: &legacy::LegacySeal,
) {
    assert_eq!(a.ct_len, b.ct_len);
    let (a0, b0, len) = (a.ct_offset as usize, b.ct_offset as usize, a.ct_len as usize);
    let mut swapped = ct.to_vec();
    swapped[a0..a0 + len].copy_from_slice(&ct[b0..b0 + len]);
    swapped[b0..b0 + len].copy_from_slice(&ct[a0..a0 + len]);
    let got = legacy::decrypt::<AwsLc>(key, loose, &swapped).unwrap();
    assert_ne!(got, pt);
    rejects(key, checked, &swapped, Error::AuthenticationFailed);
}

// ---------------------------------------------------------------------------------------
// multipart_v2_framed.json

#[test]
fn framed_multipart_vector() {
    let Some((dir, v)) = vector_file("multipart_v2_framed.json (framed multipart)", "multipart_v2_framed.json") else {
        return;
    };
    let (pt, ct) = whole_object(&dir, &v);
    let kek = kek_of(&v);
    let upload_id = s(&v, "upload_id");
    let sidecar = sidecar_of(&v["sidecar"]);
    check_sidecar_limits(&v["sidecar"]);
    let meta = LegacyMetadata::from_lookup(|_| None).unwrap();
    assert_eq!(meta.sidecar_key(s(&v, "object_key")).as_deref(), Some(s(&v, "sidecar_key")));
    let obj = LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64).unwrap();
    assert_eq!(obj.layout(), LegacyLayout::Framed);
    assert_eq!(obj.kid(), Some("AKIAVECTORTEST000001"));
    let checked = obj.clone().with_upload_id(upload_id).unwrap();
    let key = LegacyKey::open_object(&kek, &obj).unwrap();

    // Seals are the frames of each internal part, in order, with frame nonces.
    let mut expected = Vec::new();
    for cp in v["client_parts"].as_array().unwrap() {
        for ip in cp["internal_parts"].as_array().unwrap() {
            for f in ip["frames"].as_array().unwrap() {
                expected.push((u(ip, "internal_part_number") as u32, f.clone()));
            }
        }
    }
    let seals: Vec<_> = obj.seals().collect();
    assert_eq!(seals.len(), expected.len());
    assert_eq!(obj.segments().len(), 4);
    let (mut ct_off, mut pt_off) = (0, 0);
    for (seal, (ipn, f)) in seals.iter().zip(&expected) {
        assert_eq!((seal.ct_offset, seal.pt_offset), (ct_off, pt_off));
        assert_eq!(seal.pt_len, u(f, "plaintext_len"));
        assert_eq!(seal.ct_len, u(f, "ciphertext_len"));
        ct_off += seal.ct_len;
        pt_off += seal.pt_len;
        let fi = u(f, "frame_index") as u32;
        assert_eq!(seal.nonce, NonceRule::Frame { internal_part: *ipn, frame_index: fi });
        let body = &ct[seal.ct_offset as usize..(seal.ct_offset + seal.ct_len) as usize];
        assert_eq!(sha256_hex(body), s(f, "ciphertext_sha256"));
        assert_eq!(hex::encode(&body[..12]), s(f, "nonce_hex"));
        assert_eq!(hex::encode(legacy::frame_nonce(upload_id, *ipn, fi)), s(f, "nonce_hex"));
        assert_eq!(checked.expected_nonce(seal).map(hex::encode).as_deref(), Some(s(f, "nonce_hex")));
    }
    check_full(&key, &obj, &ct, &pt, 31);
    check_full(&key, &checked, &ct, &pt, 32);
    check_ranges(&key, &checked, &ct, &pt, 33);
    check_refusals(&key, &checked, &ct, &mut Rng(34));
    // Internal parts 21 and 22 both start with a full 8 MiB seal.
    let (a, b) = (
        seals.iter().find(|s| s.nonce == NonceRule::Frame { internal_part: 21, frame_index: 0 }),
        seals.iter().find(|s| s.nonce == NonceRule::Frame { internal_part: 22, frame_index: 0 }),
    );
    check_reorder(&key, &obj, &checked, &ct, &pt, a.unwrap(), b.unwrap());
}

// ---------------------------------------------------------------------------------------
// multipart_v3_staged.json

#[test]
fn staged_multipart_vector() {
    let Some((dir, v)) = vector_file("multipart_v3_staged.json (staged multipart)", "multipart_v3_staged.json") else {
        return;
    };
    let (pt, ct) = whole_object(&dir, &v);
    let kek = kek_of(&v);
    let meta = metadata_of(&v["object_metadata"]);
    assert!(meta.is_legacy());
    assert_eq!(meta.format(), Some(legacy::LegacyFormat::MultipartV3));
    assert_eq!(meta.sidecar_key(s(&v, "object_key")).as_deref(), Some(s(&v, "sidecar_key")));
    let sidecar = sidecar_of(&v["sidecar"]);
    check_sidecar_limits(&v["sidecar"]);
    assert_eq!(sidecar.version(), 3);
    assert_eq!(sidecar.generation(), Some(s(&v, "generation")));
    assert_eq!(sidecar.upload_id(), Some(s(&v, "upload_id")));
    assert_eq!(sidecar.upload_bucket(), Some("bucket"));
    assert_eq!(sidecar.upload_key(), Some(s(&v, "object_key")));
    assert_eq!(sidecar.client_etag(), Some(s(&v, "client_etag")));
    let wrapped = Base64::decode_vec(sidecar.wrapped_dek_b64()).unwrap();
    assert_eq!(hex::encode(&wrapped), s(&v, "wrapped_dek_hex"));
    assert_eq!(hex::encode(legacy::generation_for(&wrapped)), s(&v, "generation"));

    let obj = LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64).unwrap();
    assert_eq!(obj.layout(), LegacyLayout::Staged);
    assert_eq!(obj.upload_id(), Some(s(&v, "upload_id")));
    let key = LegacyKey::open_object(&kek, &obj).unwrap();
    // The frame table is the contract for ranged reads.
    let table = v["frame_table"].as_array().unwrap();
    let seals: Vec<_> = obj.seals().collect();
    assert_eq!(seals.len(), table.len());
    for (seal, row) in seals.iter().zip(table) {
        assert_eq!(
            (seal.ct_offset, seal.ct_len, seal.pt_offset, seal.pt_len),
            (u(row, "ct_offset"), u(row, "ct_len"), u(row, "pt_offset"), u(row, "pt_len"))
        );
        // Random nonces: nothing to derive even though the upload id is known.
        assert_eq!(seal.nonce, NonceRule::Random);
        assert_eq!(obj.expected_nonce(seal), None);
        let plan = obj.plan_range(seal.pt_offset, seal.pt_offset + seal.pt_len).unwrap();
        assert_eq!((plan.ct_start, plan.ct_end, plan.skip), (seal.ct_offset, seal.ct_offset + seal.ct_len, 0));
    }
    let nonces: Vec<_> = v["client_parts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|cp| cp["frames"].as_array().unwrap().iter().map(|f| s(f, "nonce_hex").to_string()))
        .collect();
    for (seal, nonce) in seals.iter().zip(&nonces) {
        assert_eq!(&hex::encode(&ct[seal.ct_offset as usize..seal.ct_offset as usize + 12]), nonce);
    }
    check_full(&key, &obj, &ct, &pt, 41);
    check_ranges(&key, &obj, &ct, &pt, 42);
    check_refusals(&key, &obj, &ct, &mut Rng(43));
    // Without a nonce binding, two staged seals of equal length can be swapped.
    let loose_swap = (seals[1], seals[2]);
    let mut swapped = ct.clone();
    let (a0, b0, len) =
        (loose_swap.0.ct_offset as usize, loose_swap.1.ct_offset as usize, loose_swap.0.ct_len as usize);
    swapped[a0..a0 + len].copy_from_slice(&ct[b0..b0 + len]);
    swapped[b0..b0 + len].copy_from_slice(&ct[a0..a0 + len]);
    assert_ne!(legacy::decrypt::<AwsLc>(&key, &obj, &swapped).unwrap(), pt);
    // The recorded upload id cannot be replaced.
    assert_eq!(obj.clone().with_upload_id("other").err(), Some(Error::InvalidParameter));

    // Object metadata and sidecar must belong together.
    let other_gen = LegacyMetadata::from_pairs(&[
        ("s3proxy-format", "multipart-v3"),
        ("s3proxy-generation", "ab".repeat(32).as_str()),
    ])
    .unwrap();
    assert_eq!(LegacyObject::new(&other_gen, Some(&sidecar), ct.len() as u64).err(), Some(Error::MalformedLegacy));
    assert_eq!(LegacyObject::new(&meta, None, ct.len() as u64).err(), Some(Error::MalformedLegacy));
    let pairs = [
        ("s3proxy-format", "multipart-v3"),
        ("s3proxy-generation", s(&v, "generation")),
        ("isec-kid", "AKIASOMEONEELSE00001"),
    ];
    let other_kid = LegacyMetadata::from_pairs(&pairs).unwrap();
    assert_eq!(LegacyObject::new(&other_kid, Some(&sidecar), ct.len() as u64).err(), Some(Error::MalformedLegacy));
    let framed = json(&dir, "multipart_v2_framed.json");
    let v2 = sidecar_of(&framed["sidecar"]);
    assert_eq!(LegacyObject::new(&meta, Some(&v2), ct.len() as u64).err(), Some(Error::MalformedLegacy));
    // A framed object's sidecar cannot stand in for this one's, and its DEK is not this one's.
    let foreign_dek = LegacyMetadata::from_pairs(&[("isec", v2.wrapped_dek_b64())]).unwrap();
    assert_eq!(LegacyObject::new(&foreign_dek, Some(&sidecar), ct.len() as u64).err(), Some(Error::MalformedLegacy));
}

// ---------------------------------------------------------------------------------------
// nonce_and_sizes.json

#[test]
fn nonce_and_size_vectors() {
    let Some((_, v)) = vector_file("nonce_and_sizes.json (nonce derivations, splits)", "nonce_and_sizes.json") else {
        return;
    };
    for c in v["derive_part_nonce"].as_array().unwrap() {
        let (id, pn) = (s(c, "upload_id"), u(c, "part_number") as u32);
        assert_eq!(format!("{id}{pn}"), s(c, "input_utf8"));
        assert_eq!(hex::encode(legacy::part_nonce(id, pn)), s(c, "nonce_hex"));
    }
    for c in v["derive_frame_nonce"].as_array().unwrap() {
        let (id, pn, fi) = (s(c, "upload_id"), u(c, "part_number") as u32, u(c, "frame_index") as u32);
        assert_eq!(format!("{id}:{pn}:{fi}"), s(c, "input_utf8"));
        assert_eq!(hex::encode(legacy::frame_nonce(id, pn, fi)), s(c, "nonce_hex"));
    }
    // The collision the missing separator allows, reproduced as the proxy computes it.
    let a = legacy::part_nonce("x1", 1);
    let b = legacy::part_nonce("x", 11);
    assert_eq!(a, b);
    assert_eq!(hex::encode(a), s(&v["collision_demo"], "a"));
    assert_eq!(hex::encode(b), s(&v["collision_demo"], "b"));
    for (n, sizes) in v["frame_sizes_examples"].as_object().unwrap() {
        let n: u64 = n.parse().unwrap();
        let want: Vec<u64> = sizes.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        assert_eq!(legacy::split_seals(n).unwrap().collect::<Vec<_>>(), want, "{n}");
    }
    let kek = Kek::legacy_from_secret_string(s(&v["kwp_kek_from_secret"], "secret"));
    assert_eq!(hex::encode(kek.expose_secret()), s(&v["kwp_kek_from_secret"], "kek_hex"));
}

// ---------------------------------------------------------------------------------------
// Decryptor contract, independent of the vectors' contents

#[test]
fn decryptor_contract() {
    let Some((dir, v)) = vector_file("decryptor buffer, wipe and state contract", "streaming_put_v2.json") else {
        return;
    };
    let ct = read_body(&dir, &v["object_ciphertext"]);
    let sidecar = sidecar_of(&v["sidecars"]["pr107-07bca1bf"]["sidecar"]);
    let meta = LegacyMetadata::default();
    let obj = LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64).unwrap();
    let key = LegacyKey::open_object(&kek_of(&v), &obj).unwrap();

    // Too small an output buffer locks the context.
    let mut d = LegacyDecryptor::<AwsLc>::new(&key, &obj).unwrap();
    let mut small = vec![0u8; 10];
    assert_eq!(d.update(&ct[..11], &mut small), Err(Error::BufferTooSmall));
    assert_eq!(d.update(&[], &mut small), Err(Error::InvalidState));
    let mut d = LegacyDecryptor::<AwsLc>::new(&key, &obj).unwrap();
    let mut out = vec![0u8; d.update_len(ct.len())];
    let n = d.update(&ct, &mut out).unwrap();
    assert_eq!(n, 16_777_223);
    assert!(d.is_done());
    assert_eq!(d.finish(&mut []), Ok(0));

    // On failure, nothing this call released survives, and the context is dead.
    let mut bad = ct.clone();
    bad[8_388_636 + 100] ^= 1; // inside the second seal
    let mut d = LegacyDecryptor::<AwsLc>::new(&key, &obj).unwrap();
    let mut out = vec![0xAAu8; d.update_len(bad.len())];
    assert_eq!(d.update(&bad, &mut out), Err(Error::AuthenticationFailed));
    assert!(out[..2 * MIB8].iter().all(|&b| b == 0), "released plaintext was not wiped");
    assert_eq!(d.update(&[], &mut out), Err(Error::InvalidState));
    assert_eq!(d.finish(&mut []), Err(Error::InvalidState));

    // An empty input changes nothing; finish before the end is truncation.
    let mut d = LegacyDecryptor::<RustCrypto>::new(&key, &obj).unwrap();
    assert_eq!(d.update(&[], &mut []), Ok(0));
    assert_eq!(d.finish(&mut []), Err(Error::Truncated));

    // A range plan from elsewhere is refused.
    let plan = obj.plan_range(10, 20).unwrap();
    let forged = LegacyRange {
        plan: isec_core::RangePlan::new(plan.plan.ct_start, plan.plan.ct_end, 3, plan.plan.len, plan.plan.pt_start),
        ..plan
    };
    assert_eq!(LegacyDecryptor::<AwsLc>::for_range(&key, &obj, &forged).err(), Some(Error::InvalidParameter));
    assert_eq!(legacy::decrypt_range::<AwsLc>(&key, &obj, &forged, &[]).err(), Some(Error::InvalidParameter));
    let empty = obj.plan_range(7, 7).unwrap();
    let mut d = LegacyDecryptor::<AwsLc>::for_range(&key, &obj, &empty).unwrap();
    assert!(d.is_done());
    assert_eq!(d.update(&[0], &mut [0]), Err(Error::TrailingData));

    // A lone seal above 8 MiB is buffered only when the caller allows it.
    let big = LegacyMetadata::from_pairs(&[("isec", sidecar.wrapped_dek_b64())]).unwrap();
    let big = LegacyObject::new(&big, None, 9 * 1024 * 1024).unwrap();
    assert_eq!(LegacyDecryptor::<AwsLc>::new(&key, &big).err(), Some(Error::LimitExceeded));
    assert!(LegacyDecryptor::<AwsLc>::with_seal_limit(&key, &big, None, 9 * 1024 * 1024).is_ok());
    assert_eq!(legacy::MAX_BUFFERED_SEAL, MIB8 + 28);
}

// ---------------------------------------------------------------------------------------
// Properties that need no vectors: nothing from the bucket can make the reader panic.

mod properties {
    use super::*;
    use proptest::collection::vec as pvec;
    use proptest::prelude::*;

    /// A framed-looking sidecar: part 1 one internal part of two seals, part 2 one seal.
    const JSON: &str = concat!(
        r#"{"v":2,"pc":2,"ts":8388618,"dek":"47bv/V/+5lfiUcb2Rxy8UlbGp5K/QF+NeF01rcMq6MeGvHROluuIcA==","#,
        r#""parts":[{"pn":1,"ps":8388613,"cs":8388669,"ip":[{"ipn":1,"ps":8388613,"cs":8388669}]},"#,
        r#"{"pn":2,"ps":5,"cs":33,"ip":[]}]}"#
    );

    fn object() -> LegacyObject {
        let sc = LegacySidecar::from_json(JSON.as_bytes()).unwrap();
        LegacyObject::new(&LegacyMetadata::default(), Some(&sc), sc.ciphertext_size()).unwrap()
    }

    #[test]
    fn synthetic_geometry() {
        let obj = object();
        assert_eq!(obj.layout(), LegacyLayout::Framed);
        let seals: Vec<_> = obj.seals().map(|s| (s.ct_offset, s.ct_len, s.pt_offset, s.pt_len)).collect();
        assert_eq!(seals, [(0, 8_388_636, 0, 8_388_608), (8_388_636, 33, 8_388_608, 5), (8_388_669, 33, 8_388_613, 5)]);
        assert_eq!(obj.seal(3), None);
        assert_eq!(obj.max_seal_len(1, 3), 8_388_636);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_sidecar_bytes(bytes in pvec(any::<u8>(), 0..400), cap in 0usize..4096) {
            let _ = LegacySidecar::parse(&bytes, cap);
            let _ = LegacySidecar::from_json(&bytes);
            let _ = LegacySidecar::parse(Base64::encode_string(&bytes), cap);
        }

        #[test]
        fn mutated_sidecar(flips in pvec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
            let mut gz = gzip_stored(JSON.as_bytes());
            for (at, x) in flips {
                let i = at % gz.len();
                gz[i] ^= x;
            }
            gz.truncate(gz.len() - cut % 4);
            if let Ok(sc) = LegacySidecar::parse(Base64::encode_string(&gz), 4096) {
                // Whatever survives must still describe a consistent object.
                let obj = LegacyObject::new(&LegacyMetadata::default(), Some(&sc), sc.ciphertext_size()).unwrap();
                prop_assert_eq!(obj.plaintext_len(), sc.total_size());
            }
        }

        #[test]
        fn mutated_json(at in any::<usize>(), b in any::<u8>()) {
            let mut j = JSON.as_bytes().to_vec();
            let i = at % j.len();
            j[i] = b;
            if let Ok(sc) = LegacySidecar::from_json(&j) {
                prop_assert!(LegacyObject::new(&LegacyMetadata::default(), Some(&sc), sc.ciphertext_size()).is_ok());
            }
        }

        #[test]
        fn arbitrary_ranges(a in 0u64..8_400_000, len in 0u64..8_400_000, big in any::<u64>()) {
            let obj = object();
            for (s, e) in [(a, a + len), (a, big.max(a)), (big, big)] {
                let plan = obj.plan_range(s, e).unwrap();
                let e = e.min(obj.plaintext_len());
                prop_assert_eq!(plan.len, e.saturating_sub(s.min(e)));
                if !plan.is_empty() {
                    let first = obj.seal(plan.first_seal).unwrap();
                    let last = obj.seal(plan.end_seal - 1).unwrap();
                    prop_assert!(first.pt_offset <= s && s < first.pt_offset + first.pt_len);
                    prop_assert!(last.pt_offset < e && e <= last.pt_offset + last.pt_len);
                    prop_assert_eq!((plan.ct_start, plan.ct_end), (first.ct_offset, last.ct_offset + last.ct_len));
                }
            }
        }

        #[test]
        fn garbage_ciphertext(seed in any::<u64>(), piece in 1usize..100_000) {
            let obj = object();
            let key = LegacyKey::from_dek(isec_core::Dek::from_bytes([5; 32]));
            let mut rng = Rng(seed | 1);
            let ct: Vec<u8> = (0..obj.ciphertext_len()).map(|_| rng.next_u64() as u8).collect();
            prop_assert_eq!(stream::<AwsLc>(&key, &obj, None, &ct, || piece), Err(Error::AuthenticationFailed));
            let plan = obj.plan_range(8_388_600, 8_388_620).unwrap();
            let fetched = &ct[plan.ct_start as usize..plan.ct_end as usize];
            prop_assert_eq!(legacy::decrypt_range::<AwsLc>(&key, &obj, &plan, fetched), Err(Error::AuthenticationFailed));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Migration: legacy objects re-encrypted to isec through the re-encryption job.

#[test]
fn legacy_objects_migrate_to_isec() {
    use isec_core::reencrypt::{LegacySource, Reencryption, Source};
    use isec_core::{Envelope, KeyState, Keyring, Params};

    let Some((dir, v)) = vector_file("migration of the framed multipart vector", "multipart_v2_framed.json") else {
        return;
    };
    let pt = plaintext(u(&v["plaintext"], "len") as usize);
    let ct = read_body(&dir, &v["object_ciphertext"]);
    let sidecar = sidecar_of(&v["sidecar"]);
    let meta = LegacyMetadata::from_lookup(|_| None).unwrap();
    let obj = LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64).unwrap();

    let mut ring = Keyring::new();
    ring.add_legacy_secret_string("AKIAVECTORTEST000001", s(&v["kek"], "kek_secret")).unwrap();
    ring.add_kek("isec-2026", Kek::from_bytes([42; 32]), KeyState::Active).unwrap();
    let source = || -> Box<dyn Source> { Box::new(LegacySource::<AwsLc>::new(&ring, obj.clone(), None).unwrap()) };

    // Run part way, checkpoint, resume in a new job, finish.
    let params = Params::default().with_frame_size(1 << 20).unwrap();
    let mut job = Reencryption::<AwsLc>::start(&ring, source(), params, 0).unwrap();
    let mut out = Vec::new();
    let mut now = 0;
    while job.source_offset() < (ct.len() / 2) as u64 {
        let at = job.source_offset() as usize;
        let end = (at + 3_000_001).min(ct.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        let step = job.update(&ct[at..end], &mut buf, now).unwrap();
        out.extend_from_slice(&buf[..step.written]);
        now += 1;
    }
    let cp = job.checkpoint();
    let env_text = job.target_envelope().to_text();
    drop(job);
    let keep = isec_core::reencrypt::Checkpoint::parse(&cp).unwrap().target_offset().unwrap() as usize;
    out.truncate(keep);
    let mut job = Reencryption::<AwsLc>::resume(&ring, source(), &cp, 0).unwrap();
    assert_eq!(job.target_offset() as usize, keep);
    while (job.source_offset() as usize) < ct.len() {
        let at = job.source_offset() as usize;
        let end = (at + 5_000_000).min(ct.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        let step = job.update(&ct[at..end], &mut buf, now).unwrap();
        out.extend_from_slice(&buf[..step.written]);
    }
    let mut buf = vec![0u8; job.finish_len()];
    let n = job.finish(&mut buf).unwrap();
    out.extend_from_slice(&buf[..n]);
    assert!(job.progress().finished);

    let env = Envelope::decode_text(&env_text).unwrap();
    assert_eq!(env.kid(), "isec-2026");
    let key = ring.open(&env).unwrap();
    assert_eq!(
        isec_core::oneshot::decrypt::<AwsLc>(&key, &out).unwrap(),
        pt,
        "migrated object decrypts to the original plaintext"
    );

    // A keyring that refuses legacy objects refuses to migrate them.
    let mut strict = Keyring::new();
    strict.add_legacy_secret_string("AKIAVECTORTEST000001", s(&v["kek"], "kek_secret")).unwrap();
    strict.set_min_version(1);
    assert_eq!(LegacySource::<AwsLc>::new(&strict, obj.clone(), None).err(), Some(Error::VersionRefused));
}

/// Runs `job` over `ct` from its source offset in pieces of `piece` bytes, appending output at
/// the job's target offset, until the source offset reaches `stop_at` (or the end, then
/// finishes).
fn drive(
    job: &mut isec_core::reencrypt::Reencryption<AwsLc>,
    ct: &[u8],
    piece: usize,
    out: &mut Vec<u8>,
    stop_at: Option<u64>,
) {
    let mut now = 0;
    while (job.source_offset() as usize) < ct.len() {
        if stop_at.is_some_and(|s| job.source_offset() >= s) {
            return;
        }
        let at = job.source_offset() as usize;
        let end = (at + piece).min(ct.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        let step = job.update(&ct[at..end], &mut buf, now).unwrap();
        assert_eq!(out.len() as u64 + step.written as u64, job.target_offset());
        out.extend_from_slice(&buf[..step.written]);
        now += 1;
    }
    let mut buf = vec![0u8; job.finish_len()];
    let n = job.finish(&mut buf).unwrap();
    out.extend_from_slice(&buf[..n]);
}

/// Every frame of a parts-layout object: (part number, nonce, frame bytes).
fn frames_of(key: &isec_core::ObjectKey, ct: &[u8]) -> Vec<(u32, [u8; 12], Vec<u8>)> {
    let shape = isec_core::Shape::from_ciphertext_len(key.header(), ct.len() as u64).unwrap();
    let mut v = Vec::new();
    let mut f = shape.first_frame();
    while let Some(fr) = f {
        let a = fr.ct_start as usize;
        let b = a + fr.ct_len() as usize;
        v.push((fr.segment.number, ct[a..a + 12].try_into().unwrap(), ct[a..b].to_vec()));
        f = shape.next_frame(&fr);
    }
    v
}

/// Security review, finding 2: resuming re-encryption must never encrypt other plaintext
/// under a (key, nonce) it already used. The previous proxy's staged objects carry random
/// nonces and no authenticated seal order, so their seals can be swapped between a crash and
/// the resume. Output past the checkpoint that was already uploaded, and the resumed output,
/// must then share no (part, nonce) with different bytes.
#[test]
fn resumed_migration_never_reuses_a_nonce_for_other_plaintext() {
    use isec_core::reencrypt::{Checkpoint, LegacySource, Reencryption, Source};
    use isec_core::{KeyState, Keyring, Params};

    let Some((dir, v)) = vector_file("resume of a staged migration with swapped seals", "multipart_v3_staged.json")
    else {
        return;
    };
    let ct = read_body(&dir, &v["object_ciphertext"]);
    let meta = metadata_of(&v["object_metadata"]);
    let sidecar = sidecar_of(&v["sidecar"]);
    let obj = LegacyObject::new(&meta, Some(&sidecar), ct.len() as u64).unwrap();
    let seals: Vec<_> = obj.seals().collect();
    assert!(seals.len() >= 3, "{} seals", seals.len());
    let mut ring = Keyring::new();
    ring.add_legacy_secret_string("legacy", s(&v["kek"], "kek_secret")).unwrap();
    ring.add_kek("isec", Kek::from_bytes([42; 32]), KeyState::Active).unwrap();

    // Two seals of one length after the first: swapped, the object still "decrypts".
    let (i, j) = (1..seals.len())
        .flat_map(|i| (i + 1..seals.len()).map(move |j| (i, j)))
        .find(|&(i, j)| seals[i].ct_len == seals[j].ct_len)
        .expect("two seals of equal length after the first");
    let mut swapped = ct.clone();
    let (a, b, n) = (seals[i].ct_offset as usize, seals[j].ct_offset as usize, seals[i].ct_len as usize);
    let si = ct[a..a + n].to_vec();
    swapped[a..a + n].copy_from_slice(&ct[b..b + n]);
    swapped[b..b + n].copy_from_slice(&si);

    let source = |o: &LegacyObject| -> Box<dyn Source> {
        Box::new(LegacySource::<AwsLc>::new(&ring, o.clone(), Some("legacy")).unwrap())
    };
    let params = Params::default().with_frame_size(1 << 16).unwrap().with_part_size(1 << 20).unwrap();
    let mut job = Reencryption::<AwsLc>::start(&ring, source(&obj), params, 0).unwrap();
    let mut first = Vec::new();
    // Stop inside seal i: the checkpoint covers whole parts before it.
    drive(&mut job, &ct, 777_777, &mut first, Some(seals[i].ct_offset + 1));
    let cp = job.checkpoint();
    let parsed = Checkpoint::parse(&cp).unwrap();
    assert!(parsed.parts_done >= 1, "some parts final before the crash");
    // The crashed run went on writing (and uploading) output past its checkpoint.
    drive(&mut job, &ct, 777_777, &mut first, None);
    let env = job.target_envelope().clone();
    drop(job);

    let keep = parsed.target_offset().unwrap() as usize;
    let mut second = first[..keep].to_vec();
    let mut resumed = Reencryption::<AwsLc>::resume(&ring, source(&obj), &cp, 0).unwrap();
    assert_eq!(resumed.target_offset() as usize, keep);
    drive(&mut resumed, &swapped, 1_000_003, &mut second, None);

    let key = ring.open(&env).unwrap();
    let mut seen = std::collections::HashMap::new();
    for (part, nonce, bytes) in frames_of(&key, &first).into_iter().chain(frames_of(&key, &second)) {
        if let Some(prev) = seen.insert((part, nonce), bytes.clone()) {
            assert_eq!(prev, bytes, "part {part}: one (key, nonce) for two different frames");
        }
    }
    // The resumed object is the swapped source's plaintext, authentic under the new key.
    let pt = isec_core::oneshot::decrypt::<AwsLc>(&key, &second).unwrap();
    let want =
        legacy::decrypt::<AwsLc>(&legacy::LegacyKey::open_object(&kek_of(&v), &obj).unwrap(), &obj, &swapped).unwrap();
    assert_eq!(pt, want);
}

/// The proxy's oldest objects record no kid: a keyring's default legacy key opens them, and
/// only a previous-proxy secret can be that default.
#[test]
fn objects_without_a_kid_open_with_the_default_legacy_key() {
    use isec_core::{KeyState, Keyring};
    let Some((dir, v)) = vector_file("objects without isec-kid and the default legacy key", "single_put.json") else {
        return;
    };
    let case = &v["cases"][0];
    let meta = metadata_of(&case["object_metadata"]["legacy_68f2c15"]);
    assert_eq!(meta.kid(), None, "the oldest layout records no kid");
    let ct = read_body(&dir, &case["ciphertext"]);
    let obj = LegacyObject::new(&meta, None, ct.len() as u64).unwrap();
    let mut ring = Keyring::new();
    ring.add_legacy_secret_string("AKIAVECTORTEST000001", s(&case["kek"], "kek_secret")).unwrap();
    ring.add_kek("isec", Kek::from_bytes([7; 32]), KeyState::Active).unwrap();
    assert_eq!(ring.open_legacy(&obj, None).err(), Some(Error::UnknownKid));
    assert_eq!(ring.set_default_legacy("isec").err(), Some(Error::WrongKeyKind));
    assert_eq!(ring.set_default_legacy("nobody").err(), Some(Error::UnknownKid));
    ring.set_default_legacy("AKIAVECTORTEST000001").unwrap();
    let key = ring.open_legacy(&obj, None).unwrap();
    let pt = legacy::decrypt::<AwsLc>(&key, &obj, &ct).unwrap();
    assert_eq!(pt.len() as u64, u(&case["plaintext"], "len"));
    assert_eq!(ring.legacy_kid_for(&obj, Some("other")).unwrap(), "other", "an explicit kid wins");
}

#[test]
fn layout_names_are_stable() {
    let all = [LegacyLayout::Single, LegacyLayout::Streamed, LegacyLayout::Framed, LegacyLayout::Staged];
    assert_eq!(all.map(LegacyLayout::name), ["single", "streamed", "framed", "staged"]);
}
