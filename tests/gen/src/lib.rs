//! Deterministic generator of the isec spec corpus (`tests/vectors/`).
//!
//! A test tool over small, in-memory objects: lengths and offsets always fit `usize`.
//!
//! Every random input (DEKs, salts, nonce prefixes) is derived from the case name with
//! SHA-256, so the files are reproducible byte for byte; a test compares them with the
//! checked-in copies. Expected outcomes are written down per case from SPEC.md's rules, not
//! computed by running the decryptor: the corpus is the contract the code must meet.

#![allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    reason = "test-vector generator over small in-memory objects"
)]

use std::collections::BTreeMap;

use isec_core::envelope::HEADER_LEN;
use isec_core::s3::{Headers, ObjectRef, Request, Step};
use isec_core::{
    Dek, Envelope, FramePosition, Kek, Layout, Nonce, ObjectKey, Params, Prefix, RustCrypto, SegmentTable, Shape,
    oneshot,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Plaintext of length `n`: byte `i` is `i % 251` (shared with every harness).
#[must_use]
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn h(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

fn prefix(label: &str) -> Prefix {
    let d = h(label);
    let mut p = [0u8; 7];
    p.copy_from_slice(&d[..7]);
    Prefix::from(p)
}

/// The named KEKs of `keys.json`.
#[must_use]
pub fn keks() -> Vec<(&'static str, Kek)> {
    vec![("kek-a", Kek::from_bytes(h("isec-vector-kek:kek-a"))), ("kek-b", Kek::from_bytes(h("isec-vector-kek:kek-b")))]
}

fn kek(name: &str) -> Kek {
    keks().into_iter().find(|(n, _)| *n == name).map(|(_, k)| k).unwrap_or_else(|| Kek::from_bytes([0; 32]))
}

type R<T> = Result<T, isec_core::Error>;

fn make_envelope(name: &str, kid: &str, params: Params) -> R<(Envelope, ObjectKey)> {
    Envelope::create_with(
        &kek(kid),
        kid,
        params,
        &Dek::from_bytes(h(&format!("isec-vector-dek:{name}"))),
        h(&format!("isec-vector-salt:{name}")),
    )
}

fn params(frame: u64, part: Option<u64>, declared: Option<u64>) -> R<Params> {
    let mut p = Params::default().with_frame_size(frame)?;
    if let Some(ps) = part {
        p = p.with_part_size(ps)?;
    }
    p.declared_size = declared;
    Ok(p)
}

fn encrypt(name: &str, key: &ObjectKey, pt: &[u8]) -> R<Vec<u8>> {
    oneshot::encrypt_with_prefixes::<RustCrypto>(key, pt, &mut |i| {
        Ok(prefix(&format!("isec-vector-prefix:{name}:{i}")))
    })
}

/// Frame boundaries `(start, end)` of a single- or parts-layout ciphertext.
fn frames(key: &ObjectKey, ct_len: usize) -> R<Vec<(usize, usize)>> {
    let shape = Shape::from_ciphertext_len(key.header(), ct_len as u64)?;
    let mut out = Vec::new();
    let mut f = shape.first_frame();
    while let Some(fr) = f {
        out.push((fr.ct_start as usize, (fr.ct_start + fr.ct_len()) as usize));
        f = shape.next_frame(&fr);
    }
    Ok(out)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn notes_frames() -> Value {
    json!({
        "Tampered": "ciphertext bytes were changed after encryption",
        "Reordered": "authentic frames or parts stand in the wrong place",
        "PartSubstituted": "a part is an earlier, complete and authentic encryption of the same part (a retried upload), not the one the segment table records",
        "Truncated": "the ciphertext ends early",
        "Extended": "bytes follow the final frame",
        "SwappedEnvelope": "the ciphertext is paired with another object's envelope",
        "EdgeSize": "plaintext length at a frame boundary or empty",
        "RangedDiffers": "a ranged read learns the total length first and so may report a different code; see ranged_error",
        "Released": "released is the most plaintext a streaming decryptor may release before the error: exactly that much when fed one byte at a time, at most that much for any other split, since an update call that fails releases nothing"
    })
}

struct Case {
    comment: String,
    flags: Vec<&'static str>,
    ct: Vec<u8>,
    error: Option<&'static str>,
    ranged_error: Option<&'static str>,
    released: usize,
}

fn valid(comment: &str, flags: Vec<&'static str>, ct: Vec<u8>, released: usize) -> Case {
    Case { comment: comment.into(), flags, ct, error: None, ranged_error: None, released }
}

fn bad(comment: &str, flags: Vec<&'static str>, ct: Vec<u8>, error: &'static str, released: usize) -> Case {
    Case { comment: comment.into(), flags, ct, error: Some(error), ranged_error: None, released }
}

fn flip(mut v: Vec<u8>, at: usize, mask: u8) -> Vec<u8> {
    v[at] ^= mask;
    v
}

fn object_case(id: &mut u64, env: &Envelope, pt_len: usize, c: Case, table: Option<&[u8]>) -> Value {
    *id += 1;
    let mut v = json!({
        "tcId": *id,
        "comment": c.comment,
        "flags": c.flags,
        "envelope": env.to_text(),
        "plaintext_len": pt_len,
        "ciphertext": hex::encode(&c.ct),
        "result": if c.error.is_some() { "invalid" } else { "valid" },
        "released": c.released,
    });
    if let Some(t) = table {
        v["segment_table"] = json!(hex::encode(t));
    }
    if let Some(e) = c.error {
        v["error"] = json!(e);
        if let Some(r) = c.ranged_error {
            v["ranged_error"] = json!(r);
        }
    }
    v
}

fn frames_file() -> R<Value> {
    let f = 4096usize;
    let mut tests = Vec::new();
    let mut id = 0u64;

    // Object A: 10000 bytes in 4 KiB frames: 4096 + 4096 + 1808.
    let (env_a, key_a) = make_envelope("A", "kek-a", params(4096, None, None)?)?;
    let pt_a = pattern(10_000);
    let a = encrypt("A", &key_a, &pt_a)?;
    let fa = frames(&key_a, a.len())?;
    let (f0, f1, f2) = (&a[fa[0].0..fa[0].1], &a[fa[1].0..fa[1].1], &a[fa[2].0..fa[2].1]);
    let cases = vec![
        valid("three frames, short final frame", vec![], a.clone(), 10_000),
        bad(
            "bit flipped in frame 1 ciphertext",
            vec!["Tampered"],
            flip(a.clone(), fa[1].0 + 100, 0x01),
            "authentication_failed",
            f,
        ),
        bad(
            "bit flipped in frame 0 tag",
            vec!["Tampered"],
            flip(a.clone(), fa[0].1 - 1, 0x80),
            "authentication_failed",
            0,
        ),
        bad(
            "bit flipped in frame 2 nonce prefix",
            vec!["Tampered"],
            flip(a.clone(), fa[2].0, 0x01),
            "authentication_failed",
            2 * f,
        ),
        bad(
            "frame 0 nonce index changed",
            vec!["Tampered"],
            flip(a.clone(), fa[0].0 + 10, 0x01),
            "authentication_failed",
            0,
        ),
        bad(
            "frame 0 flags set to final",
            vec!["Tampered"],
            flip(a.clone(), fa[0].0 + 11, 0x03),
            "authentication_failed",
            0,
        ),
        bad("frames 0 and 1 swapped", vec!["Reordered"], cat(&[f1, f0, f2]), "frame_out_of_order", 0),
        bad("frame 1 dropped", vec!["Reordered"], cat(&[f0, f2]), "frame_out_of_order", f),
        bad("frame 0 duplicated", vec!["Reordered"], cat(&[f0, f0, f1, f2]), "frame_out_of_order", f),
        bad("final frame dropped (cut at a frame boundary)", vec!["Truncated"], cat(&[f0, f1]), "truncated", 2 * f),
        bad(
            "last 10 bytes cut (inside the final frame)",
            vec!["Truncated"],
            a[..a.len() - 10].to_vec(),
            "authentication_failed",
            2 * f,
        ),
        bad("cut inside frame 1", vec!["Truncated"], a[..fa[1].0 + 2000].to_vec(), "authentication_failed", f),
        bad("empty ciphertext", vec!["Truncated"], Vec::new(), "truncated", 0),
        bad("20 bytes: shorter than one frame", vec!["Truncated"], a[..20].to_vec(), "truncated", 0),
        bad("frame 1 appended after the final frame", vec!["Extended"], cat(&[&a, f1]), "authentication_failed", 2 * f),
        bad("one zero byte appended", vec!["Extended"], cat(&[&a, &[0]]), "authentication_failed", 2 * f),
    ];
    for c in cases {
        tests.push(object_case(&mut id, &env_a, 10_000, c, None));
    }

    // Object B: exactly two full frames (8192 bytes).
    let (env_b, key_b) = make_envelope("B", "kek-a", params(4096, None, None)?)?;
    let b = encrypt("B", &key_b, &pattern(2 * f))?;
    let fb = frames(&key_b, b.len())?;
    let mut c = bad(
        "5 bytes appended after a full final frame",
        vec!["Extended", "RangedDiffers"],
        cat(&[&b, &[1, 2, 3, 4, 5]]),
        "trailing_data",
        2 * f,
    );
    c.ranged_error = Some("truncated");
    let cases = vec![
        valid("two full frames: the final frame is full", vec!["EdgeSize"], b.clone(), 2 * f),
        c,
        bad(
            "frame 0 appended after a full final frame",
            vec!["Extended"],
            cat(&[&b, &b[fb[0].0..fb[0].1]]),
            "trailing_data",
            2 * f,
        ),
        bad("final full frame dropped", vec!["Truncated"], b[..fb[0].1].to_vec(), "truncated", f),
    ];
    for c in cases {
        tests.push(object_case(&mut id, &env_b, 2 * f, c, None));
    }

    // Object C: the empty object is one empty final frame.
    let (env_c, key_c) = make_envelope("C", "kek-b", params(4096, None, Some(0))?)?;
    let cobj = encrypt("C", &key_c, &[])?;
    tests.push(object_case(
        &mut id,
        &env_c,
        0,
        valid("empty plaintext, declared size 0", vec!["EdgeSize"], cobj.clone(), 0),
        None,
    ));
    let mut doubled = bad(
        "empty object with its frame doubled: read as one 28-byte-payload frame",
        vec!["Extended", "RangedDiffers"],
        cat(&[&cobj, &cobj]),
        "authentication_failed",
        0,
    );
    doubled.ranged_error = Some("trailing_data");
    tests.push(object_case(&mut id, &env_c, 0, doubled, None));
    tests.push(object_case(
        &mut id,
        &env_a,
        10_000,
        bad(
            "object A's envelope on object C's body",
            vec!["SwappedEnvelope"],
            cobj.clone(),
            "authentication_failed",
            0,
        ),
        None,
    ));
    let mut swapped = bad(
        "object C's envelope (declared size 0) on object A's body",
        vec!["SwappedEnvelope", "RangedDiffers"],
        a.clone(),
        "authentication_failed",
        0,
    );
    swapped.ranged_error = Some("trailing_data");
    tests.push(object_case(&mut id, &env_c, 0, swapped, None));

    // Object D: one byte, 64 KiB frames (the default), declared size.
    let (env_d, key_d) = make_envelope("D", "kek-a", params(65_536, None, Some(1))?)?;
    tests.push(object_case(
        &mut id,
        &env_d,
        1,
        valid("one byte, default 64 KiB frames", vec!["EdgeSize"], encrypt("D", &key_d, &pattern(1))?, 1),
        None,
    ));

    Ok(json!({
        "schema": "isec-frames-v1",
        "algorithm": "isec v1 single-layout objects (SPEC.md §5)",
        "plaintext": "byte i of a plaintext of length n is i % 251",
        "notes": notes_frames(),
        "numberOfTests": tests.len(),
        "tests": tests,
    }))
}

fn multipart_file() -> R<Value> {
    let f = 4096usize;
    let mut tests = Vec::new();
    let mut id = 0u64;

    // Parts layout: 8 KiB parts (2 frames), 20000 bytes: parts of 8192, 8192, 3616.
    let (env, key) = make_envelope("P", "kek-a", params(4096, Some(8192), Some(20_000))?)?;
    let pt = pattern(20_000);
    let part = |n: u32, attempt: u32| -> R<Vec<u8>> {
        let s = (n as usize - 1) * 8192;
        let e = (s + 8192).min(pt.len());
        oneshot::encrypt_part_with_prefix::<RustCrypto>(
            &key,
            n,
            n == 3,
            prefix(&format!("isec-vector-prefix:P:{n}:{attempt}")),
            &pt[s..e],
        )
    };
    let (p1, p2, p3) = (part(1, 0)?, part(2, 0)?, part(3, 0)?);
    let p1_retry = part(1, 1)?;
    let spliced = cat(&[&p1[..f + 28], &p1_retry[f + 28..]]);
    let ranged = |mut c: Case, e: &'static str| {
        c.ranged_error = Some(e);
        c.flags.push("RangedDiffers");
        c
    };
    let cases = vec![
        valid("three parts encrypted independently", vec![], cat(&[&p1, &p2, &p3]), 20_000),
        bad("parts 1 and 2 swapped", vec!["Reordered"], cat(&[&p2, &p1, &p3]), "authentication_failed", 0),
        ranged(
            bad(
                "part 2 missing (declared size says 20000)",
                vec!["Reordered"],
                cat(&[&p1, &p3]),
                "authentication_failed",
                8192,
            ),
            "truncated",
        ),
        ranged(
            bad(
                "part 1 duplicated (declared size says 20000)",
                vec!["Reordered"],
                cat(&[&p1, &p1, &p2, &p3]),
                "authentication_failed",
                8192,
            ),
            "trailing_data",
        ),
        bad("last part missing", vec!["Truncated"], cat(&[&p1, &p2]), "truncated", 16_384),
        bad(
            "frames of two attempts of part 1 spliced",
            vec!["Reordered"],
            cat(&[&spliced, &p2, &p3]),
            "frame_out_of_order",
            f,
        ),
    ];
    let mut retried = valid(
        "part 1 retried with a fresh prefix; the retry is what was completed",
        vec![],
        cat(&[&p1_retry, &p2, &p3]),
        20_000,
    );
    retried.flags = vec![];
    for c in cases.into_iter().chain(std::iter::once(retried)) {
        let v = object_case(&mut id, &env, 20_000, c, None);
        tests.push(v);
    }

    // Table layout: parts 1, 2, 4 of 5000, 5000 and 300 bytes (a gap in part numbers).
    let (tenv, tkey) = make_envelope("T", "kek-b", params(4096, None, None)?.with_table())?;
    let tpt = pattern(10_300);
    let tpart = |n: u32, s: usize, e: usize| {
        oneshot::encrypt_part_with_prefix::<RustCrypto>(
            &tkey,
            n,
            false,
            prefix(&format!("isec-vector-prefix:T:{n}")),
            &tpt[s..e],
        )
    };
    let (t1, t2, t4) = (tpart(1, 0, 5000)?, tpart(2, 5000, 10_000)?, tpart(4, 10_000, 10_300)?);
    let tprefix = |n: u32| prefix(&format!("isec-vector-prefix:T:{n}"));
    let table =
        SegmentTable::new(vec![(1, 5000, tprefix(1)), (2, 5000, tprefix(2)), (4, 300, tprefix(4))])?.encode(&tkey);
    // An earlier, complete upload of part 2 (a retry with other bytes of the same length).
    let old_t2 = oneshot::encrypt_part_with_prefix::<RustCrypto>(
        &tkey,
        2,
        false,
        prefix("isec-vector-prefix:T:2:earlier"),
        &pattern(5001)[1..],
    )?;
    let bad_table = flip(table.clone(), 10, 0x01);
    let whole = cat(&[&t1, &t2, &t4]);
    let mut cases = vec![
        (valid("relay parts of arbitrary sizes with a segment table", vec![], whole.clone(), 10_300), table.clone()),
        (
            bad("parts 1 and 2 swapped", vec!["Reordered"], cat(&[&t2, &t1, &t4]), "authentication_failed", 0),
            table.clone(),
        ),
        (bad("last part missing", vec!["Truncated"], cat(&[&t1, &t2]), "truncated", 0), table.clone()),
        (bad("segment table tampered", vec!["Tampered"], whole.clone(), "authentication_failed", 0), bad_table),
        (
            bad(
                "part 2 replaced by an earlier, authentic upload of part 2 (prefix differs from the table's)",
                vec!["PartSubstituted"],
                cat(&[&t1, &old_t2, &t4]),
                "frame_out_of_order",
                5000,
            ),
            table.clone(),
        ),
    ];
    for (c, t) in cases.drain(..) {
        tests.push(object_case(&mut id, &tenv, 10_300, c, Some(&t)));
    }

    Ok(json!({
        "schema": "isec-multipart-v1",
        "algorithm": "isec v1 parts and table layouts (SPEC.md §6)",
        "plaintext": "byte i of a plaintext of length n is i % 251",
        "notes": notes_frames(),
        "numberOfTests": tests.len(),
        "tests": tests,
    }))
}

/// Re-encodes an envelope with some header bytes changed, keeping everything else.
fn patch_envelope(env: &Envelope, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut b = env.to_bytes();
    f(&mut b);
    base64url(&b)
}

fn base64url(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = match c.len() {
            3 => (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]),
            2 => (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8),
            _ => u32::from(c[0]) << 16,
        };
        let chars = c.len() + 1;
        for i in 0..chars {
            s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

fn envelope_file() -> R<Value> {
    let (env, key) = make_envelope("E", "kek-a", params(65_536, None, Some(123_456))?)?;
    let (env_p, _) = make_envelope("E2", "kek-b", params(1 << 20, Some(8 << 20), None)?)?;
    let (env_t, _) = make_envelope("E3", "kek-a", params(4096, None, None)?.with_table())?;
    let kid_at = isec_core::envelope::FIXED_LEN;
    let wrap_at = kid_at + 1 + env.kid().len();
    let mut tests = Vec::new();
    let mut id = 0u64;
    let mut push = |comment: &str, flags: Vec<&str>, text: String, result: Value| {
        id += 1;
        let mut v = json!({"tcId": id, "comment": comment, "flags": flags, "envelope": text});
        if let Value::Object(m) = result {
            for (k, x) in m {
                v[k] = x;
            }
        }
        tests.push(v);
    };
    let info = |e: &Envelope| {
        let i = e.info();
        json!({"version": i.version, "suite": i.suite, "kid": i.kid, "wrap_alg": i.wrap_alg.name(), "frame_size": i.frame_size,
               "layout": i.layout.name(), "part_size": i.part_size, "declared_size": i.declared_size, "envelope_len": i.envelope_len})
    };
    push(
        "single layout, 64 KiB frames, declared size",
        vec![],
        env.to_text(),
        json!({"result": "valid", "inspect": info(&env)}),
    );
    push(
        "parts layout, 1 MiB frames, 8 MiB parts",
        vec![],
        env_p.to_text(),
        json!({"result": "valid", "inspect": info(&env_p)}),
    );
    push("table layout", vec![], env_t.to_text(), json!({"result": "valid", "inspect": info(&env_t)}));
    let dec = |e: &str| json!({"result": "invalid", "stage": "decode", "error": e});
    let opn = |e: &str| json!({"result": "invalid", "stage": "open", "error": e});
    push("empty text", vec!["Malformed"], String::new(), dec("malformed_envelope"));
    push("not base64url", vec!["Malformed"], format!("{}*", &env.to_text()[1..]), dec("malformed_envelope"));
    push("padded base64", vec!["Malformed"], format!("{}=", env.to_text()), dec("malformed_envelope"));
    push("version 2", vec!["Version"], patch_envelope(&env, |b| b[0] = 2), dec("unsupported_version"));
    push("suite 9", vec!["Version"], patch_envelope(&env, |b| b[1] = 9), dec("unsupported_suite"));
    push("frame exponent 11 (2 KiB)", vec!["Params"], patch_envelope(&env, |b| b[2] = 11), dec("invalid_frame_size"));
    push("frame exponent 24 (16 MiB)", vec!["Params"], patch_envelope(&env, |b| b[2] = 24), dec("invalid_frame_size"));
    push("unknown layout 7", vec!["Params"], patch_envelope(&env, |b| b[3] = 7), dec("malformed_envelope"));
    push(
        "part frames set on a single layout",
        vec!["Params"],
        patch_envelope(&env, |b| b[7] = 1),
        dec("malformed_envelope"),
    );
    push(
        "parts layout with zero frames per part",
        vec!["Params"],
        patch_envelope(&env_p, |b| b[4..8].copy_from_slice(&[0; 4])),
        dec("malformed_envelope"),
    );
    push("declared-size flag 2", vec!["Params"], patch_envelope(&env, |b| b[8] = 2), dec("malformed_envelope"));
    push(
        "declared size above the 16 TiB limit",
        vec!["Params"],
        patch_envelope(&env, |b| b[9..17].copy_from_slice(&((1u64 << 44) + 1).to_be_bytes())),
        dec("limit_exceeded"),
    );
    push("trailing byte", vec!["Malformed"], patch_envelope(&env, |b| b.push(0)), dec("malformed_envelope"));
    push(
        "last byte missing",
        vec!["Malformed"],
        patch_envelope(&env, |b| {
            b.pop();
        }),
        dec("malformed_envelope"),
    );
    push(
        "cut inside the header",
        vec!["Malformed"],
        patch_envelope(&env, |b| b.truncate(30)),
        dec("malformed_envelope"),
    );
    push(
        "key id with a space",
        vec!["Malformed"],
        patch_envelope(&env, |b| b[kid_at + 2] = b' '),
        dec("malformed_envelope"),
    );
    push("key id length zero", vec!["Malformed"], patch_envelope(&env, |b| b[kid_at] = 0), dec("malformed_envelope"));
    push(
        "unknown wrap algorithm 9",
        vec!["Version"],
        patch_envelope(&env, |b| b[wrap_at] = 9),
        dec("unsupported_suite"),
    );
    push(
        "AES-KWP blob of 39 bytes",
        vec!["Malformed"],
        patch_envelope(&env, |b| {
            b[wrap_at + 1] = 39;
            b.pop();
        }),
        dec("malformed_envelope"),
    );
    push(
        "frame size changed, commitment kept",
        vec!["Binding"],
        patch_envelope(&env, |b| b[2] = 13),
        opn("commitment_mismatch"),
    );
    push("declared size changed", vec!["Binding"], patch_envelope(&env, |b| b[16] ^= 1), opn("commitment_mismatch"));
    push("salt changed", vec!["Binding"], patch_envelope(&env, |b| b[20] ^= 1), opn("commitment_mismatch"));
    push(
        "commitment changed",
        vec!["Binding"],
        patch_envelope(&env, |b| b[HEADER_LEN + 5] ^= 1),
        opn("commitment_mismatch"),
    );
    push("wrapped DEK changed", vec!["Tampered"], patch_envelope(&env, |b| b[wrap_at + 5] ^= 1), opn("unwrap_failed"));
    push(
        "key id changed to another known key",
        vec!["Binding"],
        patch_envelope(&env, |b| b[kid_at + 5] = b'b'),
        opn("unwrap_failed"),
    );
    push(
        "key id changed to an unknown key",
        vec!["Binding"],
        patch_envelope(&env, |b| b[kid_at + 5] = b'z'),
        opn("unknown_kid"),
    );

    // Key schedule of envelope 1, for implementations in other languages.
    let kdf = json!({
        "comment": "key schedule of test 1: DEK, salt and header give the commitment and segment keys (SPEC.md §4)",
        "dek": hex::encode(h("isec-vector-dek:E")),
        "salt": hex::encode(h("isec-vector-salt:E")),
        "header": hex::encode(env.header().to_bytes()),
        "commitment": hex::encode(&env.to_bytes()[HEADER_LEN..HEADER_LEN + 32]),
        "segment_key_0": hex::encode(*key.segment_key(0)),
        "segment_key_1": hex::encode(*key.segment_key(1)),
    });
    Ok(json!({
        "schema": "isec-envelope-v1",
        "algorithm": "isec v1 envelope (SPEC.md §3-4)",
        "notes": {
            "Malformed": "structure or text encoding is wrong: rejected by decode, key-free",
            "Version": "unknown version, suite or wrap algorithm",
            "Params": "a format parameter is out of range",
            "Binding": "a key-bound field was altered: detected when opening",
            "Tampered": "bytes of the wrapped DEK were changed"
        },
        "stages": {"decode": "Envelope text to envelope, no key", "open": "unwrap the DEK with the KEK named by the kid (keys.json) and check the commitment"},
        "numberOfTests": tests.len(),
        "tests": tests,
        "key_schedule": kdf,
    }))
}

fn nonces_file() -> Value {
    let p = prefix("isec-vector-prefix:nonces");
    let mut tests = Vec::new();
    let mut id = 0;
    for (index, seg, obj) in
        [(0u32, false, false), (1, false, false), (0xFFFF_FFFE, true, false), (7, true, true), (0, true, true)]
    {
        id += 1;
        let n = Nonce::new(&p, FramePosition { index, segment_end: seg, object_end: obj });
        tests
            .push(json!({"tcId": id, "comment": "nonce layout", "flags": [], "prefix": hex::encode(p.as_bytes()), "index": index,
            "segment_end": seg, "object_end": obj, "nonce": hex::encode(n.as_bytes()), "result": "valid"}));
    }
    for (flags, comment) in
        [(0x02u8, "object end without segment end"), (0x04, "unknown flag bit 0x04"), (0x80, "unknown flag bit 0x80")]
    {
        id += 1;
        let mut n = *Nonce::new(&p, FramePosition { index: 3, segment_end: false, object_end: false }).as_bytes();
        n[11] = flags;
        tests.push(json!({"tcId": id, "comment": comment, "flags": ["BadFlags"], "nonce": hex::encode(n), "result": "invalid", "error": "bad_frame_flags"}));
    }
    json!({
        "schema": "isec-nonces-v1",
        "algorithm": "frame nonce: prefix(7) || index u32 BE || flags (SPEC.md §5.1)",
        "notes": {"BadFlags": "flag bits that no writer sets"},
        "numberOfTests": tests.len(),
        "tests": tests,
    })
}

fn ranges_file() -> R<Value> {
    // Shapes only need headers; objects come from frames.json (object A) for decrypts.
    let (env_s, _) = make_envelope("RS", "kek-a", params(4096, None, None)?)?;
    let (env_p, _) = make_envelope("RP", "kek-a", params(4096, Some(8192), None)?)?;
    let mut tests = Vec::new();
    let mut id = 0u64;
    let sizes = [(0usize, &env_s), (1, &env_s), (4096, &env_s), (10_000, &env_s), (20_000, &env_p), (16_384, &env_p)];
    for (pt_len, env) in sizes {
        let shape = Shape::from_plaintext_len(env.header(), pt_len as u64)?;
        let ranges = [
            (0u64, 0u64),
            (0, 1),
            (0, pt_len as u64),
            (4095, 4097),
            (4096, 8192),
            (100, 9000),
            (8191, 8193),
            (pt_len as u64, pt_len as u64 + 10),
            (pt_len as u64 + 5, pt_len as u64 + 100),
            (3, 2),
        ];
        for (a, b) in ranges {
            let plan = shape.map_range(a, b);
            id += 1;
            tests.push(json!({
                "tcId": id, "comment": format!("{} layout, {} bytes, range [{a}, {b})", env.header().layout.name(), pt_len), "flags": [],
                "envelope": env.to_text(), "ciphertext_len": shape.ciphertext_len(), "range": [a, b],
                "expect": {"ct_start": plan.ct_start, "ct_end": plan.ct_end, "skip": plan.skip, "len": plan.len},
                "result": "valid"
            }));
        }
    }
    for (ct_len, err, comment) in [
        (0u64, "truncated", "zero-length ciphertext"),
        (27, "truncated", "shorter than a frame"),
        (4124 + 28, "bad_frame_length", "empty frame after a full one"),
        (4124 + 10, "truncated", "10 bytes after a full frame"),
    ] {
        id += 1;
        tests.push(json!({"tcId": id, "comment": comment, "flags": ["ImpossibleLength"], "envelope": env_s.to_text(), "ciphertext_len": ct_len,
            "range": [0, 1], "result": "invalid", "error": err}));
    }
    Ok(json!({
        "schema": "isec-ranges-v1",
        "algorithm": "plaintext range [a, b) to ciphertext bytes [ct_start, ct_end) and the slice [skip, skip+len) of their plaintext (SPEC.md §7)",
        "notes": {"ImpossibleLength": "no plaintext encrypts to this ciphertext length"},
        "numberOfTests": tests.len(),
        "tests": tests,
    }))
}

/// The legacy proxy's configured secret in the shared vectors.
const LEGACY_SECRET: &str = "vector-kek-secret";

fn ring_with(states: &[(&str, isec_core::KeyState)]) -> isec_core::Keyring {
    let mut r = isec_core::Keyring::new();
    for (kid, st) in states {
        // The corpus keyrings hold at most one active key; AKIA... names the legacy key.
        let _ = if kid.starts_with("AKIA") {
            r.add_legacy_secret_string(kid, LEGACY_SECRET)
        } else {
            r.add_kek(kid, kek(kid), *st)
        };
    }
    r
}

fn states_json(states: &[(&str, isec_core::KeyState)]) -> Value {
    let m: serde_json::Map<String, Value> = states.iter().map(|(k, s)| ((*k).to_string(), json!(s.name()))).collect();
    Value::Object(m)
}

fn pairs_json(p: &[(String, String)]) -> Value {
    json!(p.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>())
}

fn request_json(r: &Request) -> Value {
    let obj = |o: &ObjectRef| json!([o.bucket, o.key]);
    let mut v = json!({"op": r.name()});
    match r {
        Request::CopyObject { source, dest, if_match, metadata, headers } => {
            v["source"] = obj(source);
            v["dest"] = obj(dest);
            v["if_match"] = json!(if_match);
            v["directive"] = json!(if metadata.is_some() { "REPLACE" } else { "COPY" });
            v["metadata"] = metadata.as_ref().map_or(Value::Null, |m| pairs_json(m));
            v["headers"] = json!(if *headers == Headers::Carried { "carried" } else { "kept" });
        }
        Request::CreateMultipartUpload { dest, metadata } => {
            v["dest"] = obj(dest);
            v["metadata"] = pairs_json(metadata);
            v["headers"] = json!("carried");
        }
        Request::UploadPartCopy { source, dest, part, range } => {
            v["source"] = obj(source);
            v["dest"] = obj(dest);
            v["part"] = json!(part);
            v["range"] = json!([range.0, range.1]);
            v["if_match"] = json!(true);
        }
        Request::CompleteMultipartUpload { dest, parts } => {
            v["dest"] = obj(dest);
            v["parts"] = json!(parts);
        }
        Request::AbortMultipartUpload { dest } => v["dest"] = obj(dest),
        Request::DeleteObject { object } => v["object"] = obj(object),
        Request::Reencrypt { source, dest, metadata } => {
            v["source"] = obj(source);
            v["dest"] = obj(dest);
            v["metadata"] = pairs_json(metadata);
            v["headers"] = json!("carried");
        }
        Request::VerifyIsec { object, kid, plaintext_len } => {
            v["object"] = obj(object);
            v["kid"] = json!(kid);
            v["plaintext_len"] = json!(plaintext_len);
        }
        _ => {}
    }
    v
}

fn steps_json(steps: &[Step]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| {
                let mut v = request_json(&s.request);
                v["undo"] = Value::Array(s.undo.iter().map(request_json).collect());
                v
            })
            .collect(),
    )
}

fn copy_decisions_file() -> R<Value> {
    use isec_core::KeyState::{Active, DecryptOnly, Disabled};
    use isec_core::copy::{CopyLimits, CopyRequest, Directive, decide};
    use isec_core::s3::copy_steps;
    let small = CopyLimits::default()
        .with_single_copy_max(100_000)
        .with_part_min(20_000)
        .with_part_max(40_000)
        .with_max_parts(10_000)
        .with_metadata_max(2048);
    let (env_a, _) = make_envelope("CA", "kek-a", params(4096, None, None)?)?;
    let (env_p, _) = make_envelope("CP", "kek-a", params(4096, Some(3 * 4096), None)?)?;
    let isec_meta = |e: &Envelope| {
        vec![
            ("isec".to_string(), e.to_text()),
            ("isec-kid".to_string(), e.kid().to_string()),
            ("owner".to_string(), "alice".to_string()),
        ]
    };
    let legacy_meta = vec![
        ("isec".to_string(), "n5924w5wF5rU9jKHoBMcgIuW1jNgfqKKVDgalifQhPLLnbW1vRvWoA==".to_string()),
        ("isec-kid".to_string(), "AKIAVECTORTEST000001".to_string()),
        ("client-etag".to_string(), "d41d8cd98f00b204e9800998ecf8427e".to_string()),
        ("plaintext-size".to_string(), "0".to_string()),
        ("owner".to_string(), "bob".to_string()),
    ];
    let staged = vec![
        ("s3proxy-format".to_string(), "multipart-v3".to_string()),
        (
            "s3proxy-generation".to_string(),
            "718d67941541df9c560f6a3bca2ae74bfddaa78e5006a98c31a7b7cd38f2fece".to_string(),
        ),
    ];
    let plain = vec![("owner".to_string(), "carol".to_string())];
    let ct_a = Shape::from_plaintext_len(env_a.header(), 50_000)?.ciphertext_len();
    let ct_a_big = Shape::from_plaintext_len(env_a.header(), 250_001)?.ciphertext_len();
    let ct_p_big = Shape::from_plaintext_len(env_p.header(), 250_001)?.ciphertext_len();
    let new_meta =
        vec![("owner".to_string(), "dave".to_string()), ("x-amz-meta-isec".to_string(), "stale".to_string())];
    let rings: [(&str, Vec<(&str, isec_core::KeyState)>); 6] = [
        ("a-active", vec![("kek-a", Active)]),
        ("b-active", vec![("kek-a", DecryptOnly), ("kek-b", Active)]),
        ("a-disabled", vec![("kek-a", Disabled), ("kek-b", Active)]),
        ("none", vec![]),
        ("b-decrypt-only", vec![("kek-a", Active), ("kek-b", DecryptOnly)]),
        ("legacy", vec![("AKIAVECTORTEST000001", DecryptOnly), ("kek-b", Active)]),
    ];
    struct C<'a> {
        want: &'a str,
        comment: &'a str,
        meta: &'a [(String, String)],
        size: u64,
        sidecar: bool,
        directive: Directive,
        new_meta: &'a [(String, String)],
        target: Option<&'a str>,
        rotate: bool,
        migrate: bool,
        require: bool,
        ring: usize,
        limits: CopyLimits,
    }
    let d = CopyLimits::default();
    let ia = isec_meta(&env_a);
    let ip = isec_meta(&env_p);
    let huge = vec![("note".to_string(), "x".repeat(2000))];
    let broken = vec![("isec".to_string(), "AQE".to_string())];
    let cases = vec![
        C {
            want: "native",
            comment: "isec, same key, COPY: native copy",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 0,
            limits: d,
        },
        C {
            want: "native_replace",
            comment: "isec, REPLACE: native copy carrying the envelope; a stale isec value is overwritten",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Replace,
            new_meta: &new_meta,
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 0,
            limits: d,
        },
        C {
            want: "native_replace",
            comment: "isec into the active key kek-b: native copy with a rewrapped envelope",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: Some("kek-b"),
            rotate: false,
            migrate: false,
            require: false,
            ring: 1,
            limits: d,
        },
        C {
            want: "native",
            comment: "isec into kek-a, its own key: nothing to rewrap",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: Some("kek-a"),
            rotate: false,
            migrate: false,
            require: false,
            ring: 1,
            limits: d,
        },
        C {
            want: "key_not_active",
            comment: "isec into a key that is not active",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: Some("kek-b"),
            rotate: false,
            migrate: false,
            require: false,
            ring: 4,
            limits: d,
        },
        C {
            want: "key_disabled",
            comment: "isec into kek-b when the source key is disabled",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: Some("kek-b"),
            rotate: false,
            migrate: false,
            require: false,
            ring: 2,
            limits: d,
        },
        C {
            want: "part_copy",
            comment: "isec above the single-copy limit: frame-aligned part copy",
            meta: &ia,
            size: ct_a_big,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 0,
            limits: small,
        },
        C {
            want: "part_copy",
            comment: "isec parts layout above the limit: frame-aligned part copy",
            meta: &ip,
            size: ct_p_big,
            sidecar: false,
            directive: Directive::Replace,
            new_meta: &new_meta,
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 0,
            limits: small,
        },
        C {
            want: "reencrypt",
            comment: "isec, new DEK requested: re-encrypt",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: true,
            migrate: false,
            require: false,
            ring: 1,
            limits: d,
        },
        C {
            want: "limit_exceeded",
            comment: "isec, REPLACE over the metadata budget",
            meta: &ia,
            size: ct_a,
            sidecar: false,
            directive: Directive::Replace,
            new_meta: &huge,
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 0,
            limits: d,
        },
        C {
            want: "truncated",
            comment: "isec with a size no object of its layout has",
            meta: &ia,
            size: 4124 + 5,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 0,
            limits: d,
        },
        C {
            want: "native",
            comment: "plaintext COPY: native",
            meta: &plain,
            size: 10,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: d,
        },
        C {
            want: "part_copy",
            comment: "plaintext above the limit: byte-range part copy",
            meta: &plain,
            size: 250_000,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: small,
        },
        C {
            want: "reencrypt",
            comment: "plaintext into an encrypted-only destination: re-encrypt",
            meta: &plain,
            size: 10,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: true,
            ring: 0,
            limits: d,
        },
        C {
            want: "native",
            comment: "legacy single object, COPY: native",
            meta: &legacy_meta,
            size: 28,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: d,
        },
        C {
            want: "native_replace",
            comment: "legacy single object, REPLACE: carries the legacy keys",
            meta: &legacy_meta,
            size: 28,
            sidecar: false,
            directive: Directive::Replace,
            new_meta: &new_meta,
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: d,
        },
        C {
            want: "native",
            comment: "legacy streamed object (no metadata, object-keyed sidecar): copy the sidecar too",
            meta: &[],
            size: 1000,
            sidecar: true,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: d,
        },
        C {
            want: "native",
            comment: "legacy staged object: generation-keyed sidecar needs no copy",
            meta: &staged,
            size: 1000,
            sidecar: true,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: d,
        },
        C {
            want: "reencrypt",
            comment: "legacy object with migration requested: re-encrypt",
            meta: &legacy_meta,
            size: 28,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: true,
            require: false,
            ring: 5,
            limits: d,
        },
        C {
            want: "reencrypt",
            comment: "legacy object into another key: its format has no rewrap",
            meta: &legacy_meta,
            size: 28,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: Some("kek-b"),
            rotate: false,
            migrate: false,
            require: false,
            ring: 5,
            limits: d,
        },
        C {
            want: "native",
            comment: "unreadable envelope, COPY: a byte copy preserves it",
            meta: &broken,
            size: 10,
            sidecar: false,
            directive: Directive::Copy,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: d,
        },
        C {
            want: "malformed_envelope",
            comment: "unreadable envelope, REPLACE: refused",
            meta: &broken,
            size: 10,
            sidecar: false,
            directive: Directive::Replace,
            new_meta: &[],
            target: None,
            rotate: false,
            migrate: false,
            require: false,
            ring: 3,
            limits: d,
        },
    ];
    let mut tests = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let meta: Vec<(&str, &str)> = c.meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let nm: Vec<(&str, &str)> = c.new_meta.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut req = CopyRequest::new(&meta, c.size);
        req.source_sidecar = c.sidecar;
        req.directive = c.directive;
        req.new_metadata = &nm;
        req.target_kid = c.target;
        req.rotate_dek = c.rotate;
        req.migrate_legacy = c.migrate;
        req.require_encryption = c.require;
        req.limits = c.limits;
        let (ring_name, states) = &rings[c.ring];
        let ring = ring_with(states);
        let mut v = json!({
            "tcId": i + 1, "comment": c.comment, "flags": [],
            "request": {
                "source_metadata": pairs_json(c.meta), "source_size": c.size, "source_sidecar": c.sidecar,
                "directive": if c.directive == Directive::Copy { "COPY" } else { "REPLACE" },
                "new_metadata": pairs_json(c.new_meta), "target_kid": c.target, "rotate_dek": c.rotate,
                "migrate_legacy": c.migrate, "require_encryption": c.require,
                "limits": {"single_copy_max": c.limits.single_copy_max, "part_min": c.limits.part_min, "part_max": c.limits.part_max, "max_parts": c.limits.max_parts, "metadata_max": c.limits.metadata_max},
            },
            "keyring": ring_name, "keys": states_json(states),
        });
        let decided = decide(&req, Some(&ring));
        let got = match &decided {
            Ok(p) => p.action.name(),
            Err(e) => e.code(),
        };
        // Each case's outcome is written by hand from SPEC.md §12; the full plan is recorded.
        if got != c.want {
            eprintln!("copy case {}: expected {}, decided {got}", i + 1, c.want);
            return Err(isec_core::Error::InvalidState);
        }
        match decided {
            Ok(p) => {
                v["result"] = json!("valid");
                v["expect"] = json!({
                    "action": p.action.name(), "metadata": p.metadata.as_ref().map(|m| pairs_json(m)),
                    "ranges": p.ranges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
                    "copy_sidecar": p.copy_sidecar, "rewrapped": p.rewrapped, "reason": p.reason.map(|r| r.code()),
                    "requests": p.requests, "client_bytes": p.client_bytes,
                });
                // The requests that execute it (SPEC.md §12.2): to another bucket and key,
                // and in place (a rewrap or metadata change on the object itself).
                let src = ObjectRef::new("src-bucket", "photos/a.jpg");
                let dst = ObjectRef::new("dst-bucket", "backup/a.jpg");
                v["expect"]["steps"] = steps_json(&copy_steps(&p, &src, &meta, &dst, false));
                v["expect"]["steps_in_place"] = steps_json(&copy_steps(&p, &src, &meta, &src, false));
                // A migration in place (SPEC.md §12.3): with no sidecar, the object's own, and
                // a staged upload's shared generation sidecar.
                if c.migrate && p.action == isec_core::copy::CopyAction::Reencrypt {
                    let inputs: [(Option<&str>, Option<u64>); 3] = [
                        (None, Some(0)),
                        (Some(".s3proxy-internal/photos/a.jpg.meta"), Some(0)),
                        (Some(".s3proxy-internal/generations/g1.meta"), None),
                    ];
                    let mut all = Vec::new();
                    for (sidecar, plaintext_len) in inputs {
                        let m = isec_core::s3::migrate_steps(&p, &src, &meta, sidecar, "kek-new", plaintext_len)?;
                        all.push(json!({
                            "sidecar": sidecar, "active_kid": "kek-new", "plaintext_len": plaintext_len,
                            "steps": steps_json(&m.steps),
                            "sidecar_deleted": m.sidecar_deleted, "sidecar_kept": m.sidecar_kept,
                        }));
                    }
                    v["expect"]["migrations"] = Value::Array(all);
                }
            }
            Err(e) => {
                v["result"] = json!("invalid");
                v["error"] = json!(e.code());
            }
        }
        tests.push(v);
    }
    Ok(json!({
        "schema": "isec-copy-decisions-v1",
        "algorithm": "copy decision (SPEC.md §12): cheapest valid plan from metadata, sizes, directive, target key and keyring",
        "notes": {},
        "keys_file": "keys.json",
        "numberOfTests": tests.len(),
        "tests": tests,
    }))
}

fn rotation_file() -> R<Value> {
    use isec_core::KeyState::{Active, DecryptOnly, Disabled};
    let (env, _) = make_envelope("RO", "kek-a", params(4096, None, Some(10_000))?)?;
    let text = env.to_text();
    let mut tests = Vec::new();
    let mut id = 0;
    let mut push = |comment: &str,
                    op: &str,
                    states: &[(&str, isec_core::KeyState)],
                    min_version: u8,
                    result: Result<Value, isec_core::Error>| {
        id += 1;
        let mut v = json!({"tcId": id, "comment": comment, "flags": [], "operation": op, "envelope": text, "keys": states_json(states), "min_version": min_version});
        match result {
            Ok(x) => {
                v["result"] = json!("valid");
                v["expect"] = x;
            }
            Err(e) => {
                v["result"] = json!("invalid");
                v["error"] = json!(e.code());
            }
        }
        tests.push(v);
    };
    let run_open = |states: &[(&str, isec_core::KeyState)], minv: u8| {
        let mut r = ring_with(states);
        r.set_min_version(minv);
        r.open(&env).map(|_| json!(null))
    };
    let run_rewrap = |states: &[(&str, isec_core::KeyState)], minv: u8| {
        let mut r = ring_with(states);
        r.set_min_version(minv);
        r.rewrap(&env).map(|e| json!({"envelope": e.to_text(), "kid": e.kid()}))
    };
    for (comment, states, minv) in [
        ("open with the active key", vec![("kek-a", Active)], 0u8),
        ("open with a decrypt-only key", vec![("kek-a", DecryptOnly)], 0),
        ("open with a disabled key", vec![("kek-a", Disabled)], 0),
        ("open with the key missing", vec![("kek-b", Active)], 0),
        ("open with minimum version 1", vec![("kek-a", Active)], 1),
        ("open with minimum version 2", vec![("kek-a", Active)], 2),
    ] {
        push(comment, "open", &states, minv, run_open(&states, minv));
    }
    for (comment, states, minv) in [
        (
            "rewrap kek-a -> kek-b (active); AES-KWP is deterministic, so the new envelope is exact",
            vec![("kek-a", DecryptOnly), ("kek-b", Active)],
            0u8,
        ),
        ("rewrap with no active key", vec![("kek-a", DecryptOnly), ("kek-b", DecryptOnly)], 0),
        ("rewrap when the source key is disabled", vec![("kek-a", Disabled), ("kek-b", Active)], 0),
        ("rewrap to the key it is already under", vec![("kek-a", Active)], 0),
    ] {
        push(comment, "rewrap", &states, minv, run_rewrap(&states, minv));
    }
    // The rewrapped envelope opens under the new key alone, not under the old.
    let rewrapped = ring_with(&[("kek-a", DecryptOnly), ("kek-b", Active)]).rewrap(&env)?;
    let old_only = ring_with(&[("kek-a", Active)]);
    id += 1;
    tests.push(json!({"tcId": id, "comment": "the rewrapped envelope under the old key alone", "flags": [], "operation": "open",
        "envelope": rewrapped.to_text(), "keys": states_json(&[("kek-a", Active)]), "min_version": 0, "result": "invalid",
        "error": old_only.open(&rewrapped).err().map(|e| e.code())}));
    Ok(json!({
        "schema": "isec-rotation-v1",
        "algorithm": "keyring states, minimum version and rewrap (SPEC.md §10)",
        "notes": {},
        "keys_file": "keys.json",
        "numberOfTests": tests.len(),
        "tests": tests,
    }))
}

fn legacy_file() -> R<Value> {
    use isec_core::{FrameCipher, KeyWrap};
    let secret = "vector-kek-secret";
    let kek = Kek::legacy_from_secret_string(secret);
    let mut tests = Vec::new();
    let mut id = 0;
    for n in [0usize, 1, 5000] {
        let name = format!("L{n}");
        let dek = Dek::from_bytes(h(&format!("isec-vector-dek:{name}")));
        let wrapped = kek.wrap(&dek)?;
        let nonce: [u8; 12] = h(&format!("isec-vector-nonce:{name}"))[..12].try_into().unwrap_or([0; 12]);
        let pt = pattern(n);
        let mut body = pt.clone();
        let cipher = RustCrypto::new(dek.expose())?;
        let tag = cipher.seal_in_place(&nonce, &mut body)?;
        let ct = [&nonce[..], &body, &tag].concat();
        let wrapped_b64 = std_base64(wrapped.as_bytes());
        let meta = vec![
            ("isec".to_string(), wrapped_b64.clone()),
            ("isec-kid".to_string(), "AKIAVECTORTEST000001".to_string()),
            ("plaintext-size".to_string(), n.to_string()),
        ];
        let mut case = |comment: &str, meta: &[(String, String)], secret: &str, ct: &[u8], result: Result<(), &str>| {
            id += 1;
            let mut v = json!({"tcId": id, "comment": comment, "flags": [], "metadata": pairs_json(meta), "legacy_secret": secret,
                "kid": "AKIAVECTORTEST000001", "plaintext_len": n, "ciphertext": hex::encode(ct)});
            match result {
                Ok(()) => v["result"] = json!("valid"),
                Err(e) => {
                    v["result"] = json!("invalid");
                    v["error"] = json!(e);
                }
            }
            tests.push(v);
        };
        case(&format!("single seal of {n} bytes"), &meta, secret, &ct, Ok(()));
        case(
            "oldest metadata: no kid",
            &meta[..1].iter().cloned().chain(std::iter::once(meta[2].clone())).collect::<Vec<_>>(),
            secret,
            &ct,
            Ok(()),
        );
        case("wrong secret string", &meta, "another-secret", &ct, Err("unwrap_failed"));
        case("flipped tag byte", &meta, secret, &flip(ct.clone(), ct.len() - 1, 1), Err("authentication_failed"));
        let mut short = meta.clone();
        short[2].1 = (n + 1).to_string();
        case("plaintext-size larger than the body", &short, secret, &ct, Err("truncated"));
    }
    Ok(json!({
        "schema": "isec-legacy-v1",
        "algorithm": "the previous proxy's single-seal objects (SPEC.md §11): nonce || AES-256-GCM || tag, DEK in AES-KWP under SHA-256(secret)",
        "notes": {},
        "numberOfTests": tests.len(),
        "tests": tests,
    }))
}

fn std_base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The recipients of `recipients.json`: X25519 private keys derived (RFC 9180 DeriveKeyPair)
/// from SHA-256 of their names.
fn recipient(name: &str) -> isec_core::recipient::PrivateKey {
    isec_core::recipient::PrivateKey::derive(&h(&format!("isec-vector-x25519:{name}"))).unwrap()
}

/// A keyring file (SPEC.md §10.3) naming `kid` with the key material of `entries`.
fn ring_file(entries: &[(&str, &str, &str)]) -> Value {
    let keys: Vec<Value> = entries
        .iter()
        .map(|&(kid, kind, state)| match kind {
            "private_key" => json!({"kid": kid, "private_key": recipient(kid).to_text().as_str(), "state": state}),
            "public_key" => json!({"kid": kid, "public_key": recipient(kid).public_key().to_text(), "state": state}),
            // Another recipient's private key under this kid: the wrong private key.
            "other_private_key" => {
                json!({"kid": kid, "private_key": recipient("x25519-b").to_text().as_str(), "state": state})
            }
            _ => json!({"kid": kid, "kek": hex::encode(kek("kek-a").expose_secret()), "state": state}),
        })
        .collect();
    json!({"keys": keys})
}

fn recipients_file() -> R<Value> {
    let pk = recipient("x25519-a").public_key();
    let make = |name: &str, params: Params| {
        pk.create_envelope_with(
            "x25519-a",
            params,
            &Dek::from_bytes(h(&format!("isec-vector-dek:{name}"))),
            h(&format!("isec-vector-salt:{name}")),
            &h(&format!("isec-vector-ephemeral:{name}")),
        )
    };
    let (env, key) = make("R", params(65_536, None, None)?)?;
    let (env2, _) = make("R2", params(4096, None, Some(1000))?)?;
    let pt = pattern(1000);
    let ct = encrypt("R", &key, &pt)?;
    let wrap_at = env.encoded_len() - 80;
    let private = ring_file(&[("x25519-a", "private_key", "decrypt_only")]);
    let mut tests = Vec::new();
    let mut push = |comment: &str, flags: Vec<&str>, text: String, ring: &Value, result: Value| {
        let mut v = json!({"tcId": tests.len() + 1, "comment": comment, "flags": flags, "envelope": text, "keyring": ring,
                           "plaintext_len": pt.len(), "ciphertext": hex::encode(&ct)});
        if let Value::Object(m) = result {
            for (k, x) in m {
                v[k] = x;
            }
        }
        tests.push(v);
    };
    let i = env.info();
    let inspect = json!({"version": i.version, "suite": i.suite, "kid": i.kid, "wrap_alg": i.wrap_alg.name(), "frame_size": i.frame_size,
                         "layout": i.layout.name(), "part_size": i.part_size, "declared_size": i.declared_size, "envelope_len": i.envelope_len});
    push(
        "opened with the recipient's private key",
        vec![],
        env.to_text(),
        &private,
        json!({"result": "valid", "inspect": inspect}),
    );
    let opn = |e: &str| json!({"result": "invalid", "stage": "open", "error": e});
    let dec = |e: &str| json!({"result": "invalid", "stage": "decode", "error": e});
    push(
        "a keyring holding only the public key creates but never opens",
        vec!["PublicOnly"],
        env.to_text(),
        &ring_file(&[("x25519-a", "public_key", "active")]),
        opn("public_key_only"),
    );
    push(
        "another recipient's private key under the same kid",
        vec!["WrongKey"],
        env.to_text(),
        &ring_file(&[("x25519-a", "other_private_key", "decrypt_only")]),
        opn("unwrap_failed"),
    );
    push(
        "a KEK under the recipient's kid",
        vec!["WrongKind"],
        env.to_text(),
        &ring_file(&[("x25519-a", "kek", "decrypt_only")]),
        opn("wrong_key_kind"),
    );
    push(
        "the recipient's key disabled",
        vec!["WrongKey"],
        env.to_text(),
        &ring_file(&[("x25519-a", "private_key", "disabled")]),
        opn("key_disabled"),
    );
    push(
        "encapsulated key altered (first byte)",
        vec!["Tampered"],
        patch_envelope(&env, |b| b[wrap_at] ^= 1),
        &private,
        opn("unwrap_failed"),
    );
    push(
        "encapsulated key altered (last byte)",
        vec!["Tampered"],
        patch_envelope(&env, |b| b[wrap_at + 31] ^= 0x80),
        &private,
        opn("unwrap_failed"),
    );
    push(
        "sealed DEK altered",
        vec!["Tampered"],
        patch_envelope(&env, |b| b[wrap_at + 40] ^= 1),
        &private,
        opn("unwrap_failed"),
    );
    push(
        "HPKE tag altered",
        vec!["Tampered"],
        patch_envelope(&env, |b| b[wrap_at + 79] ^= 1),
        &private,
        opn("unwrap_failed"),
    );
    let wrapped = env.to_bytes()[wrap_at..].to_vec();
    push(
        "wrapped DEK moved to another envelope's header (HPKE info binds the header)",
        vec!["Binding"],
        patch_envelope(&env2, |b| {
            let n = b.len();
            b[n - 80..].copy_from_slice(&wrapped);
        }),
        &private,
        opn("unwrap_failed"),
    );
    push("salt changed", vec!["Binding"], patch_envelope(&env, |b| b[20] ^= 1), &private, opn("unwrap_failed"));
    push(
        "commitment changed",
        vec!["Binding"],
        patch_envelope(&env, |b| b[HEADER_LEN + 3] ^= 1),
        &private,
        opn("commitment_mismatch"),
    );
    push(
        "HPKE wrap of 79 bytes",
        vec!["Malformed"],
        patch_envelope(&env, |b| {
            b[wrap_at - 1] = 79;
            b.pop();
        }),
        &private,
        dec("malformed_envelope"),
    );
    let kek_env = make_envelope("R", "kek-a", params(65_536, None, None)?)?.0;
    let rewrap_from = ring_file(&[("kek-a", "kek", "decrypt_only"), ("x25519-a", "public_key", "active")]);
    let mut rewrap = json!({"tcId": tests.len() + 1, "comment": "a KEK-wrapped envelope rewrapped to the recipient by a keyring that holds the KEK and the public key; the private key opens the result",
        "flags": ["Rewrap"], "envelope": kek_env.to_text(), "keyring": rewrap_from, "rewrap_then_open_with": private,
        "plaintext_len": pt.len(), "ciphertext": hex::encode(&ct), "result": "valid"});
    rewrap["rewrapped_wrap_alg"] = json!("hpke-x25519");
    tests.push(rewrap);
    Ok(json!({
        "schema": "isec-recipients-v1",
        "algorithm": "isec v1 envelope with an HPKE-X25519 wrapped DEK (SPEC.md §3.5)",
        "notes": {
            "PublicOnly": "the keyring has the recipient's public key only",
            "WrongKey": "the private key is not the recipient's, or the key is disabled",
            "WrongKind": "a key of the other family under the kid",
            "Tampered": "bytes of the wrapped DEK were changed",
            "Binding": "the wrap or a header field was moved or changed",
            "Malformed": "rejected by decode, key-free",
            "Rewrap": "rewrap with `keyring`, then open the result with `rewrap_then_open_with`"
        },
        "stages": {"decode": "Envelope text to envelope, no key", "open": "build the keyring from `keyring` (a keyring file, SPEC.md §10.3), open the envelope, decrypt `ciphertext` to pattern(plaintext_len)"},
        "numberOfTests": tests.len(),
        "tests": tests,
    }))
}

fn keys_file() -> Value {
    let mut keys: serde_json::Map<String, Value> = keks()
        .into_iter()
        .map(|(n, k)| (n.to_string(), json!({"kid": n, "kek": hex::encode(k.expose_secret())})))
        .collect();
    keys.insert("AKIAVECTORTEST000001".into(), json!({"kid": "AKIAVECTORTEST000001", "legacy_secret": LEGACY_SECRET}));
    json!({
        "schema": "isec-keys-v1",
        "comment": "KEKs by key id. kek: raw 32-byte KEK in hex; legacy_secret: the previous proxy's key, SHA-256 of the string, always decrypt-only. Cases with a `keys` object build a keyring of exactly those kids in those states; other cases open with every key decrypt-only.",
        "keys": keys
    })
}

/// Every corpus file, name to pretty JSON text, including `manifest.json`.
///
/// # Errors
/// Any core error while building vectors (a bug in the generator or core).
pub fn generate() -> R<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    let docs = [
        ("keys.json", keys_file()),
        ("envelope.json", envelope_file()?),
        ("nonces.json", nonces_file()),
        ("frames.json", frames_file()?),
        ("ranges.json", ranges_file()?),
        ("multipart.json", multipart_file()?),
        ("copy_decisions.json", copy_decisions_file()?),
        ("rotation.json", rotation_file()?),
        ("legacy.json", legacy_file()?),
        ("recipients.json", recipients_file()?),
    ];
    let mut manifest = Vec::new();
    for (name, doc) in docs {
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
        let count = doc.get("numberOfTests").and_then(Value::as_u64).unwrap_or(0);
        manifest.push(json!({"file": name, "sha256": hex::encode(Sha256::digest(text.as_bytes())), "tests": count, "schema": doc["schema"]}));
        files.insert(name.to_string(), text);
    }
    let m = json!({"schema": "isec-manifest-v1", "format_version": 1, "comment": "every corpus file with its SHA-256 and case count; harnesses walk this list", "files": manifest});
    files.insert("manifest.json".into(), serde_json::to_string_pretty(&m).unwrap_or_default() + "\n");
    Ok(files)
}

/// Silences the unused-import lint when `Layout` is only used through methods.
#[doc(hidden)]
pub const _LAYOUT: Option<Layout> = None;
