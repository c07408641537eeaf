//! The security review's findings, one test each (SECURITY.md, "Review findings"): forged
//! checkpoints, legacy keys opening isec envelopes, whole-part substitution in the table
//! layout, a checkpoint taken after `finish`, an empty last part, and re-encryption of empty
//! objects. Finding 2 (nonce reuse on resume) is in `legacy.rs`, next to the staged vector it
//! needs; finding 9 is in the Node and wasm suites.

use isec_core::legacy::{LegacyMetadata, LegacyObject};
use isec_core::reencrypt::{Checkpoint, IsecSource, LegacySource, Reencryption, Source};
use isec_core::shape::Shape;
use isec_core::{
    AwsLc, Dek, Encryptor, Envelope, Error, Kek, KeyState, Keyring, Params, RustCrypto, SegmentTable, Stream, oneshot,
};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Runs a job over the whole source in pieces of `piece` bytes; returns the new object.
fn run(job: &mut Reencryption<AwsLc>, ct: &[u8], piece: usize, out: &mut Vec<u8>) {
    while (job.source_offset() as usize) < ct.len() {
        let at = job.source_offset() as usize;
        let end = (at + piece).min(ct.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        let step = job.update(&ct[at..end], &mut buf, 0).unwrap();
        out.extend_from_slice(&buf[..step.written]);
    }
    let mut buf = vec![0u8; job.finish_len()];
    let n = job.finish(&mut buf).unwrap();
    out.extend_from_slice(&buf[..n]);
}

fn isec_source(ring: &Keyring, env: &Envelope, ct: &[u8]) -> Box<dyn Source> {
    let shape = Shape::from_ciphertext_len(env.header(), ct.len() as u64).unwrap();
    Box::new(IsecSource::<AwsLc>::new(ring, env, shape).unwrap())
}

/// Finding 1: a checkpoint whose envelope is under a decrypt-only kid, with a DEK its maker
/// knows, must not make the job write the source under that DEK.
#[test]
fn forged_checkpoint_under_a_decrypt_only_kid_is_refused() {
    let (a, b) = (Kek::from_bytes([0xA; 32]), Kek::from_bytes([0xB; 32]));
    let mut ring = Keyring::new();
    ring.add_kek("A", a.clone(), KeyState::Active).unwrap();
    ring.add_kek("B", b.clone(), KeyState::DecryptOnly).unwrap();
    let pt = pattern(50_000);
    let (env, key) = ring.create_envelope(Params::default().with_frame_size(4096).unwrap()).unwrap();
    let ct = oneshot::encrypt::<AwsLc>(&key, &pt).unwrap();

    // The forger: B is theirs to wrap under (here: a keyring where B is active), the DEK is
    // one they chose, and they may even hold the source's key.
    let mut forger = Keyring::new();
    forger.add_kek("A", a, KeyState::DecryptOnly).unwrap();
    forger.add_kek("B", b, KeyState::Active).unwrap();
    let params = Params::default().with_frame_size(4096).unwrap();
    let job = Reencryption::<AwsLc>::start_with(
        &forger,
        isec_source(&forger, &env, &ct),
        params,
        0,
        &Dek::from_bytes([0x66; 32]),
        [1; 32],
        isec_core::Prefix::from([2; 7]),
    )
    .unwrap();
    let cp = job.checkpoint();
    assert_eq!(Checkpoint::parse(&cp).unwrap().parts_done, 0);
    assert_eq!(
        Reencryption::<AwsLc>::resume(&ring, isec_source(&ring, &env, &ct), &cp, 0).err(),
        Some(Error::KeyNotActive)
    );
}

/// Finding 3: a previous-proxy secret never wraps an isec DEK, so an isec envelope that names
/// one is a forgery (by anyone who knows SHA-256 of the secret); and an isec KEK is never a
/// previous-proxy key.
#[test]
fn legacy_secrets_and_isec_keks_do_not_stand_in_for_each_other() {
    let mut ring = Keyring::new();
    ring.add_legacy_secret_string("old", "pw").unwrap();
    ring.add_kek("new", Kek::from_bytes([9; 32]), KeyState::Active).unwrap();
    ring.set_min_version(1);
    let forged_kek = Kek::legacy_from_secret_string("pw");
    let (forged, _) =
        Envelope::create_with(&forged_kek, "old", Params::default(), &Dek::from_bytes([1; 32]), [2; 32]).unwrap();
    assert_eq!(ring.open(&forged).err(), Some(Error::WrongKeyKind));
    assert_eq!(ring.rewrap(&forged).err(), Some(Error::WrongKeyKind));
    ring.set_min_version(0);
    assert_eq!(ring.open(&forged).err(), Some(Error::WrongKeyKind), "whatever the minimum version");
    assert_eq!(ring.unwrapper("old").err().map(|e| e.code()), Some("wrong_key_kind"));
    assert_eq!(ring.legacy_kek("new").err(), Some(Error::WrongKeyKind));
    assert!(ring.legacy_kek("old").is_ok());
}

/// Finding 4: an older, complete and authentic encryption of a table-layout part (a retry
/// with other bytes of the same length) is refused in place of the one the table records,
/// by whole reads and range reads.
#[test]
fn table_layout_refuses_an_older_upload_of_a_part() {
    let kek = Kek::from_bytes([7; 32]);
    let (_, key) = Envelope::create(&kek, "k", Params::default().with_frame_size(4096).unwrap().with_table()).unwrap();
    let parts = [(1u32, pattern(10_000)), (2, pattern(7_000))];
    let mut body = Vec::new();
    let mut entries = Vec::new();
    let mut offsets = Vec::new();
    for (n, pt) in &parts {
        let mut enc = Encryptor::<RustCrypto>::for_part(&key, *n, false).unwrap();
        let mut out = vec![0u8; enc.update_len(pt.len()) + enc.finish_len() + 4096];
        let w = enc.update(pt, &mut out).unwrap();
        let prefix = enc.prefix();
        let f = enc.finish(&mut out[w..]).unwrap();
        assert_eq!(out[..7], *prefix.as_bytes(), "the first frame carries the recorded prefix");
        offsets.push(body.len());
        body.extend_from_slice(&out[..w + f]);
        entries.push((*n, pt.len() as u64, prefix));
    }
    let table = SegmentTable::new(entries).unwrap().encode(&key);
    let all: Vec<u8> = parts.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(oneshot::decrypt_with_table::<RustCrypto>(&key, &table, &body).unwrap(), all);

    // The retry: part 2 again, other bytes of the same length, under a fresh prefix.
    let retry = oneshot::encrypt_part::<RustCrypto>(&key, 2, false, &pattern(7_001)[1..]).unwrap();
    assert_eq!(retry.len(), body.len() - offsets[1]);
    let mut substituted = body[..offsets[1]].to_vec();
    substituted.extend_from_slice(&retry);
    assert_eq!(
        oneshot::decrypt_with_table::<RustCrypto>(&key, &table, &substituted).err(),
        Some(Error::FrameOutOfOrder)
    );
    let shape =
        Shape::from_table(key.header(), SegmentTable::decode(&table, &key).unwrap(), substituted.len() as u64).unwrap();
    for (a, b) in [(10_000u64, 10_001u64), (12_000, 17_000), (16_999, 17_000), (9_999, 10_001)] {
        let r = oneshot::decrypt_range::<RustCrypto>(&key, shape.clone(), a, b, &mut |s, e| {
            Ok(substituted[s as usize..e as usize].to_vec())
        });
        assert_eq!(r.err(), Some(Error::FrameOutOfOrder), "range {a}..{b}");
    }
    // Part 1's bytes are still readable by range: the check is per segment.
    let r = oneshot::decrypt_range::<RustCrypto>(&key, shape, 0, 100, &mut |s, e| {
        Ok(substituted[s as usize..e as usize].to_vec())
    });
    assert_eq!(r.unwrap(), all[..100]);
}

/// Finding 6: a checkpoint taken after `finish` resumes to a finished job, without a second
/// object-end frame.
#[test]
fn checkpoint_after_finish_resumes_finished() {
    let mut ring = Keyring::new();
    ring.add_kek("A", Kek::from_bytes([0xA; 32]), KeyState::Active).unwrap();
    let params = Params::default().with_frame_size(4096).unwrap();
    for len in [4096usize * 4, 4096 * 4 + 1, 0, 8192] {
        let pt = pattern(len);
        let (env, key) = ring.create_envelope(params).unwrap();
        let ct = oneshot::encrypt::<AwsLc>(&key, &pt).unwrap();
        let p = params.with_part_size(8192).unwrap();
        let mut job = Reencryption::<AwsLc>::start(&ring, isec_source(&ring, &env, &ct), p, 0).unwrap();
        let mut out = Vec::new();
        run(&mut job, &ct, 5000, &mut out);
        let cp = job.checkpoint();
        let parsed = Checkpoint::parse(&cp).unwrap();
        assert_eq!(parsed.target_offset().unwrap(), out.len() as u64, "len {len}");
        let resumed = Reencryption::<AwsLc>::resume(&ring, isec_source(&ring, &env, &ct), &cp, 0).unwrap();
        assert!(resumed.progress().finished, "len {len}");
        assert_eq!(resumed.target_offset(), out.len() as u64);
        let new_key = ring.open(job.target_envelope()).unwrap();
        assert_eq!(oneshot::decrypt::<AwsLc>(&new_key, &out).unwrap(), pt, "len {len}");
    }
}

/// Finding 7: an empty last part after the first (parts layout, no declared size) is
/// refused when written, since readers refuse it and the object would be lost.
#[test]
fn empty_last_part_is_refused_at_write_time() {
    let kek = Kek::from_bytes([7; 32]);
    let (_, key) =
        Envelope::create(&kek, "k", Params::default().with_frame_size(4096).unwrap().with_part_size(8192).unwrap())
            .unwrap();
    let mut enc = Encryptor::<RustCrypto>::for_part(&key, 2, true).unwrap();
    let mut out = vec![0u8; 64];
    assert_eq!(enc.finish(&mut out).err(), Some(Error::InvalidParameter));
    let mut enc = Encryptor::<RustCrypto>::for_part(&key, 3, true).unwrap();
    assert_eq!(enc.finish_in_place(&mut [0u8; 28]).err(), Some(Error::InvalidParameter));
    assert_eq!(oneshot::encrypt_part::<RustCrypto>(&key, 2, true, &[]).err(), Some(Error::InvalidParameter));
    // A sole empty part stays valid.
    let ct = oneshot::encrypt_part::<RustCrypto>(&key, 1, true, &[]).unwrap();
    assert_eq!(oneshot::decrypt::<RustCrypto>(&key, &ct).unwrap(), b"");
}

/// Re-encrypting an empty object, isec or previous-proxy: fed its whole body, the job
/// verifies the one empty frame (or seal) and writes an empty object.
#[test]
fn empty_objects_reencrypt() {
    let mut ring = Keyring::new();
    ring.add_kek("A", Kek::from_bytes([0xA; 32]), KeyState::Active).unwrap();
    ring.add_legacy_secret_string("old", "secret").unwrap();
    let params = Params::default();
    let (env, key) = ring.create_envelope(params).unwrap();
    let ct = oneshot::encrypt::<AwsLc>(&key, b"").unwrap();
    assert_eq!(ct.len(), 28);
    let mut job = Reencryption::<AwsLc>::start(&ring, isec_source(&ring, &env, &ct), params, 0).unwrap();
    let mut out = Vec::new();
    run(&mut job, &ct, 1 << 20, &mut out);
    assert_eq!(oneshot::decrypt::<AwsLc>(&ring.open(job.target_envelope()).unwrap(), &out).unwrap(), b"");
    // Its one frame is verified: a tampered empty source fails the job.
    let mut bad = ct.clone();
    bad[20] ^= 1;
    let mut job = Reencryption::<AwsLc>::start(&ring, isec_source(&ring, &env, &bad), params, 0).unwrap();
    let mut buf = vec![0u8; job.update_len(bad.len())];
    let r = job.update(&bad, &mut buf, 0).and_then(|_| {
        let mut tail = vec![0u8; job.finish_len()];
        job.finish(&mut tail)
    });
    assert_eq!(r.err(), Some(Error::AuthenticationFailed));

    // The previous proxy's empty single PUT: one 28-byte seal of nothing.
    let dek = Dek::from_bytes([0x33; 32]);
    let legacy_kek = Kek::legacy_from_secret_string("secret");
    let wrapped = isec_core::KeyWrap::wrap(&legacy_kek, &dek).unwrap();
    let b64 = {
        use base64ct::{Base64, Encoding};
        Base64::encode_string(wrapped.as_bytes())
    };
    let meta =
        LegacyMetadata::from_pairs(&[("isec".to_string(), b64), ("isec-kid".to_string(), "old".to_string())]).unwrap();
    let nonce = [0x44u8; 12];
    let mut seal = nonce.to_vec();
    let tag = {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let c = aes_gcm::Aes256Gcm::new_from_slice(dek.expose()).unwrap();
        let mut empty: Vec<u8> = Vec::new();
        c.encrypt_in_place_detached((&nonce).into(), b"", &mut empty).unwrap()
    };
    seal.extend_from_slice(&tag);
    let obj = LegacyObject::new(&meta, None, seal.len() as u64).unwrap();
    let mut job =
        Reencryption::<AwsLc>::start(&ring, Box::new(LegacySource::<AwsLc>::new(&ring, obj, None).unwrap()), params, 0)
            .unwrap();
    let mut out = Vec::new();
    run(&mut job, &seal, 1 << 20, &mut out);
    assert_eq!(oneshot::decrypt::<AwsLc>(&ring.open(job.target_envelope()).unwrap(), &out).unwrap(), b"");
}

/// The previous proxy's single PUT of `pt` as one seal, under a legacy secret's KEK.
fn legacy_single(secret: &str, pt: &[u8]) -> (LegacyObject, Vec<u8>) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use base64ct::{Base64, Encoding};
    let dek = Dek::from_bytes([0x33; 32]);
    let wrapped = isec_core::KeyWrap::wrap(&Kek::legacy_from_secret_string(secret), &dek).unwrap();
    let meta = LegacyMetadata::from_pairs(&[
        ("isec".to_string(), Base64::encode_string(wrapped.as_bytes())),
        ("isec-kid".to_string(), "old".to_string()),
    ])
    .unwrap();
    let nonce = [0x44u8; 12];
    let mut body = pt.to_vec();
    let c = aes_gcm::Aes256Gcm::new_from_slice(dek.expose()).unwrap();
    let tag = c.encrypt_in_place_detached((&nonce).into(), b"", &mut body).unwrap();
    let seal = [&nonce[..], &body, &tag[..]].concat();
    (LegacyObject::new(&meta, None, seal.len() as u64).unwrap(), seal)
}

/// A previous-proxy seal above 8 MiB (the proxy's copy path wrote single objects of up to
/// 32 MiB as one seal) migrates in bounded memory; no checkpoint covers its plaintext before
/// its tag verified, and a bad tag fails the job.
#[test]
fn migration_of_a_seal_above_8_mib() {
    let mut ring = Keyring::new();
    ring.add_kek("A", Kek::from_bytes([0xA; 32]), KeyState::Active).unwrap();
    ring.add_legacy_secret_string("old", "secret").unwrap();
    let pt = pattern(20 << 20);
    let (obj, seal) = legacy_single("secret", &pt);
    let params = Params::default().with_frame_size(1 << 16).unwrap().with_part_size(8 << 20).unwrap();
    let source = || -> Box<dyn Source> { Box::new(LegacySource::<AwsLc>::new(&ring, obj.clone(), None).unwrap()) };

    let mut job = Reencryption::<AwsLc>::start(&ring, source(), params, 0).unwrap();
    let mut out = Vec::new();
    let mut most = 0;
    while (job.source_offset() as usize) < seal.len() {
        let at = job.source_offset() as usize;
        let end = (at + (1 << 20)).min(seal.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        most = most.max(buf.len());
        let step = job.update(&seal[at..end], &mut buf, 0).unwrap();
        out.extend_from_slice(&buf[..step.written]);
        if end < seal.len() {
            // Output is written as it arrives, but no part is final until the tag verified.
            assert_eq!(Checkpoint::parse(&job.checkpoint()).unwrap().parts_done, 0);
            assert!(job.progress().parts_done == 0);
        }
    }
    assert!(most < 4 << 20, "buffers stay near the piece size, not the seal: {most}");
    assert!(out.len() > 16 << 20, "output written before the tag: {}", out.len());
    let mut buf = vec![0u8; job.finish_len()];
    let n = job.finish(&mut buf).unwrap();
    out.extend_from_slice(&buf[..n]);
    assert_eq!(Checkpoint::parse(&job.checkpoint()).unwrap().parts_done, 3);
    let key = ring.open(job.target_envelope()).unwrap();
    assert_eq!(oneshot::decrypt::<AwsLc>(&key, &out).unwrap(), pt);

    // One flipped tag bit: the job fails when the tag arrives.
    let mut bad = seal.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut job = Reencryption::<AwsLc>::start(&ring, source(), params, 0).unwrap();
    let mut err = None;
    while err.is_none() && (job.source_offset() as usize) < bad.len() {
        let at = job.source_offset() as usize;
        let end = (at + (3 << 20)).min(bad.len());
        let mut buf = vec![0u8; job.update_len(end - at)];
        match job.update(&bad[at..end], &mut buf, 0) {
            Ok(_) => assert_eq!(Checkpoint::parse(&job.checkpoint()).unwrap().parts_done, 0),
            Err(e) => err = Some(e),
        }
    }
    if err.is_none() {
        let mut buf = vec![0u8; job.finish_len()];
        err = job.finish(&mut buf).err();
    }
    assert_eq!(err, Some(Error::AuthenticationFailed));
}

/// A previous-proxy seal longer than any AES-GCM message may be (2^36 - 32 bytes) cannot
/// be authentic: migration refuses it before streaming any of it.
#[test]
fn migration_refuses_a_seal_longer_than_gcm_allows() {
    let mut ring = Keyring::new();
    ring.add_kek("A", Kek::from_bytes([0xA; 32]), KeyState::Active).unwrap();
    ring.add_legacy_secret_string("old", "secret").unwrap();
    let (small, _) = legacy_single("secret", b"x");
    for pt_len in [1u64 << 36, 1 << 40] {
        let meta = LegacyMetadata::from_pairs(&[
            ("isec".to_string(), small.wrapped_dek_b64().to_string()),
            ("isec-kid".to_string(), "old".to_string()),
            ("plaintext-size".to_string(), pt_len.to_string()),
        ])
        .unwrap();
        let obj = LegacyObject::new(&meta, None, pt_len + 28).unwrap();
        let src = Box::new(LegacySource::<AwsLc>::new(&ring, obj, None).unwrap());
        assert_eq!(Reencryption::<AwsLc>::start(&ring, src, Params::default(), 0).err(), Some(Error::LimitExceeded));
    }
}
