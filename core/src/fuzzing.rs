//! Entry points for the fuzz targets under `fuzz/` (feature `fuzzing`; not a public API).
//!
//! Each function takes arbitrary bytes, drives one parser or state machine with them, and
//! asserts the invariants that must hold for every input: no panic, output only when the
//! input authenticated, and agreement between the one-shot, streaming and ranged paths.
#![allow(
    clippy::missing_panics_doc,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "fuzz harness over small in-memory objects: a panic is the finding"
)]

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::copy::{CopyLimits, CopyRequest, Directive, decide};
use crate::envelope::{Envelope, Params};
use crate::kdf::ObjectKey;
use crate::keyring::{KeyState, Keyring};
use crate::nonce::Prefix;
use crate::shape::Shape;
use crate::stream::{Decryptor, Stream};
use crate::wrap::{Dek, Kek};
use crate::{FrameCipher, RustCrypto, oneshot};

fn key(frame_exp: u8, part: bool) -> (Envelope, ObjectKey) {
    let mut p = Params::default().with_frame_size(1 << frame_exp).unwrap();
    if part {
        p = p.with_part_size(3 << frame_exp).unwrap();
    }
    Envelope::create_with(&Kek::from_bytes([1; 32]), "fuzz", p, &Dek::from_bytes([2; 32]), [3; 32]).unwrap()
}

/// A small deterministic generator (xorshift64) for split sizes, positions and range ends:
/// the tests and these entry points pick "random" pieces reproducibly with it.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value; the state must not start at 0.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value below `n`, or 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// [`XorShift::below`] for sizes and indexes.
    pub fn below_usize(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

/// Feeds `ct` to `dec` in pieces whose sizes `next_size` chooses (0 counts as 1), then
/// finishes; returns what was released and the outcome. A failed call must leave no
/// plaintext in its buffer, and when `pt` is given every release must continue it.
pub fn feed<C: FrameCipher>(
    mut dec: Decryptor<C>,
    ct: &[u8],
    mut next_size: impl FnMut() -> usize,
    pt: Option<&[u8]>,
) -> (Vec<u8>, crate::Result<()>) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < ct.len() {
        let end = at.saturating_add(next_size().max(1)).min(ct.len());
        let mut buf = vec![0u8; dec.update_len(end - at)];
        match dec.update(&ct[at..end], &mut buf) {
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert!(buf.iter().all(|b| *b == 0), "plaintext left in the buffer of a failed update");
                return (out, Err(e));
            }
        }
        if let Some(pt) = pt {
            assert_eq!(&out[..], &pt[..out.len().min(pt.len())], "released bytes are not the plaintext");
        }
        at = end;
    }
    finish(dec, out, &String::new)
}

/// [`feed`] with piece sizes cycling through `sizes`.
pub fn feed_cycling<C: FrameCipher>(
    dec: Decryptor<C>,
    ct: &[u8],
    sizes: &[usize],
    pt: Option<&[u8]>,
) -> (Vec<u8>, crate::Result<()>) {
    let mut i = 0;
    feed(
        dec,
        ct,
        || {
            i += 1;
            sizes.get((i - 1) % sizes.len().max(1)).copied().unwrap_or(usize::MAX)
        },
        pt,
    )
}

/// Finishes `dec`, appending its last release to `out`. A successful finish writes nothing
/// past its count, a failed one leaves its buffer zeroed; `ctx` names the case in a failure.
pub fn finish<C: FrameCipher>(
    mut dec: Decryptor<C>,
    mut out: Vec<u8>,
    ctx: &dyn Fn() -> String,
) -> (Vec<u8>, crate::Result<()>) {
    let mut buf = vec![0u8; dec.finish_len()];
    match dec.finish(&mut buf) {
        Ok(n) => {
            out.extend_from_slice(&buf[..n]);
            assert!(buf[n..].iter().all(|x| *x == 0), "{}: finish wrote past its count", ctx());
            (out, Ok(()))
        }
        Err(e) => {
            assert!(buf.iter().all(|x| *x == 0), "{}: plaintext left in the buffer of a failed finish ({e:?})", ctx());
            (out, Err(e))
        }
    }
}

/// Streams with piece sizes from the fuzzer's bytes (cycled), the whole input when none.
fn stream(dec: Decryptor<RustCrypto>, ct: &[u8], sizes: &[u8]) -> (Vec<u8>, crate::Result<()>) {
    let sizes: Vec<usize> = sizes.iter().map(|b| usize::from(*b) * 37 + 1).collect();
    feed_cycling(dec, ct, &sizes, None)
}

/// Envelope text and binary decoding; a decoded envelope re-encodes to the same bytes.
pub fn envelope_decode(data: &[u8]) {
    if let Ok(e) = Envelope::decode(data) {
        assert_eq!(e.to_bytes(), data);
        let _ = e.info();
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(e) = Envelope::decode_text(text)
    {
        assert_eq!(e.to_text(), text);
    }
}

/// The keyring file parser (SPEC.md §10.3) on arbitrary text: no panic; a file it accepts is
/// written back to text it reads to the same keys; and an HPKE envelope whose wrapped DEK is
/// the input never opens under a recipient's private key (the fuzzer cannot forge the tag).
pub fn keyring_file(data: &[u8]) {
    if let Ok(ring) = Keyring::from_file_text(data)
        && let Ok(text) = ring.to_file_text()
    {
        let again = Keyring::from_file_text(text.as_bytes()).expect("written keyring reads back");
        assert_eq!(again.keys(), ring.keys());
    }
    let sk = crate::recipient::PrivateKey::derive(&[5; 32]).unwrap();
    let mut bytes = vec![0u8; crate::limits::HPKE_WRAPPED_LEN];
    let n = data.len().min(bytes.len());
    bytes[..n].copy_from_slice(&data[..n]);
    let (env, _) = sk
        .public_key()
        .create_envelope_with("fuzz", Params::default(), &Dek::from_bytes([2; 32]), [3; 32], &[4; 32])
        .unwrap();
    let mut b = env.to_bytes();
    let at = b.len() - bytes.len();
    let original = b[at..].to_vec();
    b[at..].copy_from_slice(&bytes);
    let mut ring = Keyring::new();
    ring.add_private_key("fuzz", sk, KeyState::DecryptOnly).unwrap();
    let opened = ring.open(&Envelope::decode(&b).unwrap());
    assert_eq!(opened.is_ok(), bytes == original, "a forged HPKE wrap opened");
}

/// The self-contained file header: whatever parses re-encodes to the same bytes, and the
/// probe agrees with the parse on where the body starts.
pub fn container_parse(data: &[u8]) {
    let probed = crate::container::probe(data);
    if let Ok(Some((env, at))) = crate::container::parse(data) {
        assert_eq!(crate::container::header(&env), data[..at]);
        assert_eq!(probed, Ok(crate::container::Probe::Contained { header_len: at }));
    }
}

/// Streaming decryption of arbitrary ciphertext with arbitrary chunking: it must fail (the
/// key is fixed and the fuzzer cannot forge a tag) and release nothing unauthenticated.
pub fn stream_decrypt(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let (sizes, ct) = rest.split_at(rest.len().min(usize::from(ctl % 8)));
    let (_, k) = key(12, ctl & 0x80 != 0);
    let (out, r) = stream(Decryptor::<RustCrypto>::new(&k).unwrap(), ct, sizes);
    assert!(r.is_err(), "forged ciphertext accepted");
    assert!(out.is_empty(), "plaintext released from forged frames");
}

/// Differential: a real object, mutated by the input; one-shot, streaming (arbitrary
/// chunking) and a full ranged read must agree, and success implies the true plaintext.
pub fn differential(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let (_, k) = key(12, ctl & 1 != 0);
    let len = usize::from(ctl >> 1) * 97;
    let pt: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut ct = oneshot::encrypt_with_prefixes::<RustCrypto>(&k, &pt, &mut |_| Ok(Prefix::from([9; 7]))).unwrap();
    // Mutations: (op, position, value) triples.
    for m in rest.chunks(4).take(4) {
        if m.len() < 4 {
            break;
        }
        let pos = usize::from(u16::from_le_bytes([m[1], m[2]]));
        match m[0] % 4 {
            0 if !ct.is_empty() => {
                let p = pos % ct.len();
                ct[p] ^= m[3] | 1;
            }
            1 => ct.truncate(pos.min(ct.len())),
            2 => ct.insert(pos.min(ct.len()), m[3]),
            _ if !ct.is_empty() => {
                let p = pos % ct.len();
                ct.remove(p);
            }
            _ => {}
        }
    }
    let one = oneshot::decrypt::<RustCrypto>(&k, &ct);
    let (streamed, sr) = stream(Decryptor::<RustCrypto>::new(&k).unwrap(), &ct, rest);
    assert_eq!(one.as_ref().err(), sr.as_ref().err(), "one-shot and streaming disagree");
    assert!(pt.starts_with(&streamed), "streaming released something other than the plaintext");
    if let Ok(o) = &one {
        assert_eq!(o, &pt, "accepted a modified object");
    }
    let ranged = Shape::from_ciphertext_len(k.header(), ct.len() as u64).and_then(|s| {
        let dec = Decryptor::<RustCrypto>::with_shape(&k, s)?;
        let (out, r) = stream(dec, &ct, rest);
        r.map(|()| out)
    });
    assert_eq!(ranged.is_ok(), one.is_ok(), "ranged and one-shot disagree");
    if let Ok(r) = ranged {
        assert_eq!(r, pt);
    }
}

/// Ranged decryption with arbitrary ranges over a valid object: the output is the slice.
pub fn ranged_decrypt(data: &[u8]) {
    if data.len() < 17 {
        return;
    }
    let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let a = u64::from_le_bytes(data[1..9].try_into().unwrap()) % (len as u64 + 10);
    let b = u64::from_le_bytes(data[9..17].try_into().unwrap()) % (len as u64 + 10);
    let (_, k) = key(12, data[0] & 1 != 0);
    let pt: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let ct = oneshot::encrypt_with_prefixes::<RustCrypto>(&k, &pt, &mut |_| Ok(Prefix::from([9; 7]))).unwrap();
    let shape = Shape::from_ciphertext_len(k.header(), ct.len() as u64).unwrap();
    let plan = shape.map_range(a, b);
    assert!(plan.ct_start <= plan.ct_end && plan.ct_end <= ct.len() as u64);
    let got =
        oneshot::decrypt_range::<RustCrypto>(&k, shape, a, b, &mut |s, e| Ok(ct[s as usize..e as usize].to_vec()))
            .unwrap();
    let lo = (a as usize).min(len);
    let hi = (b as usize).min(len).max(lo);
    assert_eq!(got, &pt[lo..hi]);
}

/// Segment-table decoding under a fixed key, and shape construction from it.
pub fn segment_table(data: &[u8]) {
    let (env, k) = Envelope::create_with(
        &Kek::from_bytes([1; 32]),
        "fuzz",
        Params::default().with_table(),
        &Dek::from_bytes([2; 32]),
        [3; 32],
    )
    .unwrap();
    if let Ok(t) = crate::SegmentTable::decode(data, &k) {
        let _ = Shape::from_table(env.header(), t, u64::from(data.first().copied().unwrap_or(0)) * 1000);
    }
    if let Ok(t) = crate::SegmentTable::new(
        data.chunks_exact(3)
            .map(|c| (u32::from(c[0]), u64::from(u16::from_le_bytes([c[1], c[2]])), Prefix::from([c[1]; 7])))
            .collect(),
    ) {
        let enc = t.encode(&k);
        assert_eq!(crate::SegmentTable::decode(&enc, &k).unwrap(), t);
    }
}

/// The legacy sidecar parser (base64, gzip, JSON) with a small cap.
pub fn legacy_sidecar(data: &[u8]) {
    let _ = crate::legacy::LegacySidecar::parse(data, 1 << 16);
    let _ = crate::legacy::LegacySidecar::from_json(data);
}

/// The copy decision on arbitrary metadata and sizes.
pub fn copy_decision(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else { return };
    let mut parts = text.split('\n');
    let size = parts.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let pairs: Vec<(&str, &str)> = parts.filter_map(|l| l.split_once('=')).collect();
    let mut ring = Keyring::new();
    ring.add_kek("fuzz", Kek::from_bytes([1; 32]), KeyState::Active).unwrap();
    for directive in [Directive::Copy, Directive::Replace] {
        let mut req = CopyRequest::new(&pairs, size);
        req.directive = directive;
        req.new_metadata = &pairs;
        req.target_kid = pairs.first().map(|(k, _)| *k);
        req.limits =
            CopyLimits { single_copy_max: 1 << 20, part_min: 1 << 16, part_max: 1 << 18, ..CopyLimits::default() };
        if let Ok(p) = decide(&req, Some(&ring)) {
            let mut at = 0;
            for (s, e) in &p.ranges {
                assert_eq!(*s, at);
                assert!(e > s && e - s <= req.limits.part_max);
                at = *e;
            }
            assert!(p.ranges.is_empty() || at == size);
        }
    }
}

/// Checkpoint restore: arbitrary bytes as a checkpoint for a real source never panic and
/// never resume unless authentic.
pub fn checkpoint_restore(data: &[u8]) {
    use crate::reencrypt::{Checkpoint, IsecSource, Reencryption};
    let _ = Checkpoint::parse(data);
    let mut ring = Keyring::new();
    ring.add_kek("fuzz", Kek::from_bytes([1; 32]), KeyState::Active).unwrap();
    let (env, k) = key(12, false);
    let ct = oneshot::encrypt_with_prefixes::<RustCrypto>(&k, &[7u8; 5000], &mut |_| Ok(Prefix::from([9; 7]))).unwrap();
    let shape = Shape::from_ciphertext_len(env.header(), ct.len() as u64).unwrap();
    let src = alloc::boxed::Box::new(IsecSource::<RustCrypto>::new(&ring, &env, shape).unwrap());
    #[cfg(feature = "getrandom")]
    assert!(Reencryption::<RustCrypto>::resume(&ring, src, data, 0).is_err(), "forged checkpoint accepted");
    #[cfg(not(feature = "getrandom"))]
    let _ = (src, Reencryption::<RustCrypto>::start_with);
}

/// The incremental AES-GCM decryption used to migrate long legacy seals, against aes-gcm's
/// one-shot decryption: arbitrary ciphertexts (a real seal with up to two edits, or garbage)
/// split at arbitrary points must give the same verdict, and on success the same plaintext.
pub fn gcm_stream(data: &[u8]) {
    use crate::cipher::gcm_stream::GcmStream;
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let Some((&ctl, rest)) = data.split_first() else { return };
    let key = [ctl; 32];
    let nonce = [ctl.wrapping_mul(7); 12];
    let (splits, body) = rest.split_at(rest.len().min(4));
    let Ok(cipher) = aes_gcm::Aes256Gcm::new_from_slice(&key) else { return };
    // Half the inputs: a real seal of the body, then edited by the split bytes.
    let mut ct = body.to_vec();
    let mut tag = [0u8; 16];
    if ctl & 1 == 0 {
        let Ok(t) = cipher.encrypt_in_place_detached((&nonce).into(), b"", &mut ct) else { return };
        tag.copy_from_slice(&t);
        if ctl & 2 != 0 && !ct.is_empty() {
            let at = usize::from(splits.first().copied().unwrap_or(0)) % ct.len();
            ct[at] ^= 1;
        }
    } else if ct.len() >= 16 {
        let t = ct.split_off(ct.len() - 16);
        tag.copy_from_slice(&t);
    }
    let mut one = ct.clone();
    let expected = cipher.decrypt_in_place_detached((&nonce).into(), b"", &mut one, (&tag).into()).is_ok();
    let mut g = GcmStream::new(&key, &nonce);
    let mut out = alloc::vec![0u8; ct.len()];
    let mut at = 0;
    for &s in splits {
        let n = usize::from(s).min(ct.len() - at);
        g.decrypt(&ct[at..at + n], &mut out[at..at + n]).unwrap();
        at += n;
    }
    g.decrypt(&ct[at..], &mut out[at..]).unwrap();
    let got = g.verify(&tag).is_ok();
    assert_eq!(got, expected, "incremental and one-shot GCM disagree");
    if expected {
        assert_eq!(out, one, "incremental GCM decrypted other bytes");
    }
}

/// Opening an object from arbitrary HEAD metadata, stored size and sidecar bodies, then
/// planning and listing the copy of it: no panic, and a ready answer only after at most one
/// fetch. The same size and second line are also a whole read's first response (its length
/// and Content-Range): a plan's ranges follow its first piece without gap or overlap.
pub fn s3_open(data: &[u8]) {
    use crate::copy::{CopyRequest, decide};
    use crate::s3::{ObjectOpen, ObjectRef, Open, WholeRead, copy_steps};
    let Ok(text) = core::str::from_utf8(data) else { return };
    let mut parts = text.split('\n');
    let size = parts.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let sidecar = parts.next().unwrap_or("");
    let range = (!sidecar.is_empty()).then_some(sidecar);
    if let Ok(plan) = WholeRead::from_first_response(size, range, (size % 7919).max(1), (size % 3) as u32) {
        assert!(plan.first_len() <= plan.stored_len() && plan.step() > 0);
        let mut at = plan.first_len();
        for (a, b) in plan.ranges().take(1000) {
            assert!(a == at && a < b && b - a <= plan.step() && b <= plan.stored_len(), "a gap or overlap");
            at = b;
        }
        assert!(plan.range_count() > 1000 || at == plan.stored_len(), "ranges stop short");
    }
    let pairs: Vec<(&str, &str)> = parts.filter_map(|l| l.split_once('=')).collect();
    let Ok((mut open, mut next)) = ObjectOpen::new("k/o", &pairs, size) else { return };
    let mut fetches = 0;
    while let Open::Fetch { .. } = next {
        fetches += 1;
        assert!(fetches <= 1, "more than one sidecar asked for");
        let body = (!sidecar.is_empty()).then_some(sidecar.as_bytes());
        match open.feed(body) {
            Ok(n) => next = n,
            Err(_) => return,
        }
    }
    let mut req = CopyRequest::new(&pairs, size);
    req.source_sidecar = fetches > 0 && !sidecar.is_empty();
    if let Ok(plan) = decide(&req, None) {
        let src = ObjectRef::new("b", "k/o");
        let steps = copy_steps(&plan, &src, &pairs, &ObjectRef::new("c", "k/p"), size % 2 == 0);
        assert!(steps.len() <= plan.ranges.len() + 3);
    }
}
