//! The README's first command: the main job end to end on generated data.

use std::error::Error as StdError;

use isec_core::copy::{CopyRequest, Directive, decide};
use isec_core::shape::Shape;
use isec_core::{AwsLc, Envelope, Kek, KeyState, Keyring, Params, oneshot};
use sha2::{Digest, Sha256};

type R = Result<(), Box<dyn StdError>>;

fn check(ok: bool, what: &str) -> Result<(), Box<dyn StdError>> {
    if ok {
        println!("   ok: {what}");
        Ok(())
    } else {
        Err(format!("demo check failed: {what}").into())
    }
}

/// Runs the demo on `size` bytes of generated plaintext.
pub fn run(size: usize) -> R {
    let plaintext: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0]).collect();
    println!("isec demo: {size} bytes of generated data\n");

    println!("1. encrypt under the active key");
    let mut ring = Keyring::new();
    ring.add_kek("kek-2025", Kek::generate()?, KeyState::Active)?;
    let params = Params::default();
    let (envelope, key) = ring.create_envelope(params)?;
    let ciphertext = oneshot::encrypt::<AwsLc>(&key, &plaintext)?;
    let text = envelope.to_text();
    println!("   x-amz-meta-isec:     {}... ({} characters)", &text[..40.min(text.len())], text.len());
    println!("   x-amz-meta-isec-kid: {}", envelope.kid());
    println!("   body: {} bytes ({} bytes of overhead)", ciphertext.len(), ciphertext.len() - plaintext.len());

    println!("\n2. inspect, with no key");
    let seen = Envelope::decode_text(&text)?;
    let info = seen.info();
    let shape = Shape::from_ciphertext_len(seen.header(), ciphertext.len() as u64)?;
    println!(
        "   version {} suite {} kid {} wrap {} frame {} B layout {}",
        info.version,
        info.suite,
        info.kid,
        info.wrap_alg.name(),
        info.frame_size,
        info.layout.name()
    );
    println!(
        "   plaintext {} B in {} frames, {} segment(s)",
        shape.plaintext_len(),
        shape.frame_count(),
        shape.segment_count()
    );
    check(shape.plaintext_len() == size as u64, "size recovered from the ciphertext length alone")?;

    println!("\n3. ranged decrypt");
    let (a, b) = (size / 3, (size / 3 + 100).min(size));
    let plan = shape.map_range(a as u64, b as u64);
    println!(
        "   plaintext [{a}, {b}) -> fetch {} ({} bytes), keep [{}, {})",
        plan.http_range().unwrap_or_default(),
        plan.ct_end - plan.ct_start,
        plan.skip,
        plan.skip + plan.len
    );
    let got = oneshot::decrypt_range::<AwsLc>(&key, shape.clone(), a as u64, b as u64, &mut |s, e| {
        let s = usize::try_from(s).map_err(|_| isec_core::Error::LimitExceeded)?;
        let e = usize::try_from(e).map_err(|_| isec_core::Error::LimitExceeded)?;
        ciphertext.get(s..e).map(<[u8]>::to_vec).ok_or(isec_core::Error::Truncated)
    })?;
    check(got == plaintext[a..b], "range equals the plaintext slice; every fetched frame authenticated")?;

    println!("\n4. decrypt");
    let opened = ring.open(&Envelope::decode_text(&text)?)?;
    let back = oneshot::decrypt::<AwsLc>(&opened, &ciphertext)?;
    check(Sha256::digest(&back) == Sha256::digest(&plaintext), "SHA-256 of the decrypted object equals the original")?;

    println!("\n5. copy decisions (metadata only, no object bytes)");
    let kek_2026 = Kek::generate()?;
    ring.add_kek("kek-2026", kek_2026.clone(), KeyState::DecryptOnly)?;
    let meta = [("isec", text.as_str()), ("isec-kid", envelope.kid()), ("owner", "demo")];
    let report = |label: &str, req: &CopyRequest<'_>, ring: &Keyring| -> R {
        let p = decide(req, Some(ring))?;
        println!(
            "   {label:<34} -> {:<15} {} request(s), {} bytes through the client{}{}",
            p.action.name(),
            p.requests,
            p.client_bytes,
            if p.rewrapped { ", envelope rewrapped" } else { "" },
            p.reason.map(|r| format!(", reason {}", r.code())).unwrap_or_default()
        );
        Ok(())
    };
    let base = CopyRequest::new(&meta, ciphertext.len() as u64);
    report("same key, COPY", &base, &ring)?;
    let mut replace = base.clone();
    replace.directive = Directive::Replace;
    let new_meta = [("owner", "backup")];
    replace.new_metadata = &new_meta;
    report("same key, REPLACE metadata", &replace, &ring)?;
    let big = Shape::from_plaintext_len(envelope.header(), 8 << 30)?.ciphertext_len();
    report("8 GiB object (over the 5 GiB limit)", &CopyRequest::new(&meta, big), &ring)?;
    let mut rotate = base.clone();
    rotate.rotate_dek = true;
    report("new DEK requested", &rotate, &ring)?;
    ring.set_state("kek-2026", KeyState::Active)?;
    let mut cross = base.clone();
    cross.target_kid = Some("kek-2026");
    report("into kek-2026", &cross, &ring)?;

    println!("\n6. rewrap to kek-2026 (KEK rotation: the body is untouched)");
    let rewrapped = ring.rewrap(&envelope)?;
    println!(
        "   kid {} -> {}; header and commitment unchanged: {}",
        envelope.kid(),
        rewrapped.kid(),
        rewrapped.header() == envelope.header()
    );
    let mut only_new = Keyring::new();
    only_new.add_kek("kek-2026", kek_2026, KeyState::Active)?;
    let k2 = only_new.open(&rewrapped)?;
    check(oneshot::decrypt::<AwsLc>(&k2, &ciphertext)? == plaintext, "the same body decrypts under the new key alone")?;
    let refused = only_new.open(&envelope).err().map(|e| e.code());
    check(refused == Some("unknown_kid"), "the old envelope names a key this keyring lacks: unknown_kid")?;

    println!("\n7. tamper with one byte");
    let mut bad = ciphertext.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    match oneshot::decrypt::<AwsLc>(&opened, &bad) {
        Ok(_) => return Err("tampered object decrypted".into()),
        Err(e) => {
            println!("   byte {at} flipped -> error code `{}` ({} family): {e}", e.code(), e.family().name());
            check(e.code() == "authentication_failed", "typed error, no plaintext released")?;
        }
    }
    println!("\ndemo finished: every check passed");
    Ok(())
}
