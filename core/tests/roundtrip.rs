//! Property tests: round trips, streaming equals one-shot, ranges equal slices, on both
//! frame-cipher backends and every frame size.

use isec_core::shape::Shape;
use isec_core::{AwsLc, Decryptor, Dek, Encryptor, Envelope, FrameCipher, Kek, Params, RustCrypto, Stream, oneshot};
use proptest::prelude::*;

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn setup(frame_exp: u8, part_frames: Option<u32>, declared: Option<u64>) -> (Envelope, isec_core::ObjectKey) {
    let kek = Kek::from_bytes([7u8; 32]);
    let mut params = Params::default().with_frame_size(1 << frame_exp).unwrap();
    if let Some(pf) = part_frames {
        params = params.with_part_size(u64::from(pf) << frame_exp).unwrap();
    }
    params.declared_size = declared;
    Envelope::create_with(&kek, "test-kek", params, &Dek::from_bytes([9u8; 32]), [3u8; 32]).unwrap()
}

fn stream_encrypt<C: FrameCipher>(key: &isec_core::ObjectKey, pt: &[u8], splits: &[usize]) -> Vec<u8> {
    let mut enc = Encryptor::<C>::with_prefix(key, None, true, isec_core::Prefix::from([1; 7])).unwrap();
    let mut out = Vec::new();
    let mut at = 0usize;
    for &s in splits.iter().chain(std::iter::once(&usize::MAX)) {
        let end = at.saturating_add(s).min(pt.len());
        let mut buf = vec![0u8; enc.update_len(end - at)];
        let n = enc.update(&pt[at..end], &mut buf).unwrap();
        assert_eq!(n, buf.len());
        out.extend_from_slice(&buf[..n]);
        at = end;
        if at == pt.len() {
            break;
        }
    }
    let mut buf = vec![0u8; enc.finish_len()];
    let n = enc.finish(&mut buf).unwrap();
    out.extend_from_slice(&buf[..n]);
    out
}

fn stream_decrypt<C: FrameCipher>(
    key: &isec_core::ObjectKey,
    ct: &[u8],
    splits: &[usize],
) -> Result<Vec<u8>, isec_core::Error> {
    let mut dec = Decryptor::<C>::new(key)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    for &s in splits.iter().chain(std::iter::once(&usize::MAX)) {
        let end = at.saturating_add(s).min(ct.len());
        let mut buf = vec![0u8; dec.update_len(end - at)];
        let n = dec.update(&ct[at..end], &mut buf)?;
        out.extend_from_slice(&buf[..n]);
        at = end;
        if at == ct.len() {
            break;
        }
    }
    let mut buf = vec![0u8; dec.finish_len()];
    let n = dec.finish(&mut buf)?;
    out.extend_from_slice(&buf[..n]);
    Ok(out)
}

fn check_all<C: FrameCipher>(exp: u8, len: usize, splits: &[usize], range: (u64, u64)) {
    let (_, key) = setup(exp, None, None);
    let pt = plaintext(len);
    let one = oneshot::encrypt_with_prefixes::<C>(&key, &pt, &mut |_| Ok(isec_core::Prefix::from([1; 7]))).unwrap();
    let streamed = stream_encrypt::<C>(&key, &pt, splits);
    assert_eq!(one, streamed, "streaming encrypt differs from one-shot");
    assert_eq!(oneshot::decrypt::<C>(&key, &one).unwrap(), pt);
    assert_eq!(stream_decrypt::<C>(&key, &one, splits).unwrap(), pt);
    let shape = Shape::from_ciphertext_len(key.header(), one.len() as u64).unwrap();
    assert_eq!(shape.plaintext_len(), len as u64);
    let (a, b) = range;
    let got =
        oneshot::decrypt_range::<C>(&key, shape, a, b, &mut |s, e| Ok(one[s as usize..e as usize].to_vec())).unwrap();
    let lo = (a as usize).min(len);
    let hi = (b as usize).min(len).max(lo);
    assert_eq!(got, &pt[lo..hi]);
}

#[test]
fn backends_agree_byte_for_byte() {
    let (_, key) = setup(12, None, None);
    let pt = plaintext(20_000);
    let a =
        oneshot::encrypt_with_prefixes::<RustCrypto>(&key, &pt, &mut |_| Ok(isec_core::Prefix::from([5; 7]))).unwrap();
    let b = oneshot::encrypt_with_prefixes::<AwsLc>(&key, &pt, &mut |_| Ok(isec_core::Prefix::from([5; 7]))).unwrap();
    assert_eq!(a, b);
    assert_eq!(oneshot::decrypt::<AwsLc>(&key, &a).unwrap(), pt);
    assert_eq!(oneshot::decrypt::<RustCrypto>(&key, &b).unwrap(), pt);
}

#[test]
fn multipart_parts_in_any_order_assemble() {
    let (_, key) = setup(12, Some(3), Some(40_000));
    let pt = plaintext(40_000);
    let part = 3 * 4096;
    let n = 40_000usize.div_ceil(part);
    let mut parts: Vec<(u32, Vec<u8>)> = (1..=n as u32)
        .rev()
        .map(|p| {
            let s = (p as usize - 1) * part;
            let e = (s + part).min(pt.len());
            (p, oneshot::encrypt_part::<AwsLc>(&key, p, p as usize == n, &pt[s..e]).unwrap())
        })
        .collect();
    parts.sort_by_key(|(p, _)| *p);
    let obj: Vec<u8> = parts.into_iter().flat_map(|(_, c)| c).collect();
    assert_eq!(oneshot::decrypt::<AwsLc>(&key, &obj).unwrap(), pt);
    let shape = Shape::from_ciphertext_len(key.header(), obj.len() as u64).unwrap();
    let got = oneshot::decrypt_range::<AwsLc>(&key, shape, 12_000, 30_000, &mut |s, e| {
        Ok(obj[s as usize..e as usize].to_vec())
    })
    .unwrap();
    assert_eq!(got, &pt[12_000..30_000]);
}

#[test]
fn retried_part_never_reuses_a_nonce() {
    let (_, key) = setup(12, Some(2), None);
    let a = oneshot::encrypt_part::<AwsLc>(&key, 1, false, &plaintext(8192)).unwrap();
    let b = oneshot::encrypt_part::<AwsLc>(&key, 1, false, &vec![0xAA; 8192]).unwrap();
    assert_ne!(a[..12], b[..12]);
    assert_ne!(a[4096 + 28..4096 + 40], b[4096 + 28..4096 + 40]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn roundtrip_stream_range_rustcrypto(exp in 12u8..=14, len in 0usize..70_000, s1 in 1usize..9000, s2 in 1usize..20, a in 0u64..80_000, w in 0u64..40_000) {
        check_all::<RustCrypto>(exp, len, &[s1, s2, 1, (1usize << exp) + 1, (1usize << exp) - 1], (a, a + w));
    }

    #[test]
    fn roundtrip_stream_range_awslc(exp in 12u8..=14, len in 0usize..70_000, s1 in 1usize..9000, s2 in 1usize..20, a in 0u64..80_000, w in 0u64..40_000) {
        check_all::<AwsLc>(exp, len, &[s1, s2, 1, (1usize << exp) + 1, (1usize << exp) - 1], (a, a + w));
    }
}

/// Encrypts frame by frame in place (plaintext read straight into the output buffer).
fn in_place_encrypt<C: FrameCipher>(key: &isec_core::ObjectKey, pt: &[u8]) -> Vec<u8> {
    let f = key.header().frame_size() as usize;
    let frames = pt.len().div_ceil(f).max(1);
    let mut out = vec![0u8; pt.len() + frames * 28];
    let mut enc = Encryptor::<C>::with_prefix(key, None, true, isec_core::Prefix::from([1; 7])).unwrap();
    for i in 0..frames - 1 {
        let frame = &mut out[i * (f + 28)..(i + 1) * (f + 28)];
        frame[12..12 + f].copy_from_slice(&pt[i * f..(i + 1) * f]);
        enc.seal_frame_in_place(frame).unwrap();
    }
    let last = &mut out[(frames - 1) * (f + 28)..];
    let n = last.len() - 28;
    last[12..12 + n].copy_from_slice(&pt[(frames - 1) * f..]);
    enc.finish_in_place(last).unwrap();
    out
}

#[test]
fn in_place_frames_match_the_streaming_api() {
    for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096, 20_000] {
        let (_, key) = setup(12, None, None);
        let pt = plaintext(len);
        let streamed = stream_encrypt::<AwsLc>(&key, &pt, &[7, 5000]);
        let mut in_place = in_place_encrypt::<AwsLc>(&key, &pt);
        assert_eq!(in_place, streamed, "len {len}");
        assert_eq!(in_place_encrypt::<RustCrypto>(&key, &pt), streamed, "len {len}");
        // Decrypt frame by frame in place.
        let mut dec = Decryptor::<AwsLc>::new(&key).unwrap();
        let mut got = Vec::new();
        for frame in in_place.chunks_mut(4096 + 28) {
            let r = dec.open_frame_in_place(frame).unwrap();
            got.extend_from_slice(&frame[r]);
        }
        assert_eq!(dec.finish(&mut []).unwrap(), 0);
        assert_eq!(got, pt);
    }
    // A tampered frame is wiped and refused; a truncated stream is reported.
    let (_, key) = setup(12, None, None);
    let mut ct = in_place_encrypt::<AwsLc>(&key, &plaintext(10_000));
    ct[4124 + 50] ^= 1;
    let mut dec = Decryptor::<AwsLc>::new(&key).unwrap();
    let mut frames = ct.chunks_mut(4124);
    assert!(dec.open_frame_in_place(frames.next().unwrap()).is_ok());
    let f1 = frames.next().unwrap();
    assert_eq!(dec.open_frame_in_place(f1).err(), Some(isec_core::Error::AuthenticationFailed));
    assert!(f1.iter().all(|b| *b == 0));
    let mut ok = in_place_encrypt::<AwsLc>(&key, &plaintext(10_000));
    let mut dec = Decryptor::<AwsLc>::new(&key).unwrap();
    dec.open_frame_in_place(&mut ok[..4124]).unwrap();
    assert_eq!(dec.finish(&mut []).err(), Some(isec_core::Error::Truncated));
    // Sealing past the declared size is refused.
    let (_, key) = setup(12, None, Some(4096));
    let mut enc = Encryptor::<AwsLc>::with_prefix(&key, None, true, isec_core::Prefix::from([1; 7])).unwrap();
    assert_eq!(enc.seal_frame_in_place(&mut vec![0; 4124]).err(), Some(isec_core::Error::InvalidParameter));
}

/// Emulates a frame cipher outside Rust (WebCrypto) with the RustCrypto backend: the
/// decryptor decides the segment and checks positions; the "external" side only runs AES.
fn external_decrypt(key: &isec_core::ObjectKey, ct: &[u8]) -> Result<Vec<u8>, isec_core::Error> {
    let f = key.header().frame_size() as usize + 28;
    let mut dec = Decryptor::<RustCrypto>::new(key)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < ct.len() {
        let end = (at + f).min(ct.len());
        let at_end = end - at < f;
        let seg = dec.external_segment(end - at, at_end)?;
        let cipher = RustCrypto::new(&key.segment_key(seg)).unwrap();
        let mut frame = ct[at..end].to_vec();
        let nonce: [u8; 12] = frame[..12].try_into().unwrap();
        match cipher.open_in_place(&nonce, &mut frame[12..]) {
            Ok(()) => {
                let r = dec.external_accept(&nonce, end - at, at_end)?;
                out.extend_from_slice(&frame[r]);
            }
            Err(_) => return Err(dec.external_reject()),
        }
        at = end;
    }
    dec.finish(&mut [])?;
    Ok(out)
}

#[test]
fn external_cipher_path_matches_the_native_decryptor() {
    for (part, len) in [(None, 0usize), (None, 10_000), (Some(2), 20_000), (Some(1), 8192)] {
        let (_, key) = setup(12, part, None);
        let pt = plaintext(len);
        let ct = match part {
            None => oneshot::encrypt::<AwsLc>(&key, &pt).unwrap(),
            Some(pf) => {
                let ps = pf as usize * 4096;
                let n = len.div_ceil(ps).max(1);
                (1..=n)
                    .flat_map(|p| {
                        let s = (p - 1) * ps;
                        oneshot::encrypt_part::<AwsLc>(&key, p as u32, p == n, &pt[s..(s + ps).min(len)]).unwrap()
                    })
                    .collect()
            }
        };
        assert_eq!(external_decrypt(&key, &ct).unwrap(), pt);
        // Tampering, reordering and truncation give the native decryptor's codes.
        let mut bad = ct.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert_eq!(external_decrypt(&key, &bad).err(), oneshot::decrypt::<AwsLc>(&key, &bad).err());
        if ct.len() > 2 * 4124 {
            let swapped = [&ct[4124..8248], &ct[..4124], &ct[8248..]].concat();
            assert_eq!(external_decrypt(&key, &swapped).err(), oneshot::decrypt::<AwsLc>(&key, &swapped).err());
            assert_eq!(external_decrypt(&key, &ct[..8248]).err(), oneshot::decrypt::<AwsLc>(&key, &ct[..8248]).err());
        }
    }
}

#[test]
fn unsealed_frames_sealed_outside_equal_native_frames() {
    use isec_core::cipher::Unsealed;
    for len in [0usize, 5, 4096, 10_000] {
        let (_, key) = setup(12, None, None);
        let pt = plaintext(len);
        let native = stream_encrypt::<RustCrypto>(&key, &pt, &[1000]);
        let mut frames = stream_encrypt::<Unsealed>(&key, &pt, &[1000]);
        let cipher = RustCrypto::new(&key.segment_key(0)).unwrap();
        for frame in frames.chunks_mut(4096 + 28) {
            let nonce: [u8; 12] = frame[..12].try_into().unwrap();
            let n = frame.len();
            let tag = cipher.seal_in_place(&nonce, &mut frame[12..n - 16]).unwrap();
            frame[n - 16..].copy_from_slice(&tag);
        }
        assert_eq!(frames, native, "len {len}");
    }
}
