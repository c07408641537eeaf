//! Public-key recipients (SPEC.md §3.5): RFC 9180 conformance of the suite, and what the
//! keyring does with public-only, private and external private keys.

use isec_core::keyring::{KeyKind, KeyOp, KeyState, KeyStep, RecipientUnwrap};
use isec_core::recipient::{self, PrivateKey, PublicKey};
use isec_core::{Dek, Envelope, Error, Kek, Keyring, Params, WrapAlg};
use serde_json::Value;

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// RFC 9180's published vectors for DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM in
/// base mode: the recipient's key pair from its seed, and the first sealed message from the
/// ephemeral seed, byte for byte.
#[test]
fn rfc9180_vectors_for_the_suite() {
    let file: Value =
        serde_json::from_str(include_str!("../../tests/vectors/rfc9180/hpke_x25519_aes256gcm.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for v in vectors {
        assert_eq!(
            (v["mode"].as_u64(), v["kem_id"].as_u64(), v["kdf_id"].as_u64(), v["aead_id"].as_u64()),
            (Some(0), Some(32), Some(1), Some(2))
        );
        let sk = PrivateKey::derive(&hex(&v["ikmR"])).unwrap();
        // The crate keeps the scalar clamped (RFC 7748), the vector lists it as derived.
        let mut sk_rm = hex(&v["skRm"]);
        sk_rm[0] &= 248;
        sk_rm[31] = (sk_rm[31] & 127) | 64;
        assert_eq!(sk.expose_secret().to_vec(), sk_rm);
        let pk = sk.public_key();
        assert_eq!(pk.as_bytes().to_vec(), hex(&v["pkRm"]));
        let first = &v["encryptions"][0];
        let (enc, ct) =
            pk.seal_raw(&hex(&v["info"]), &hex(&first["aad"]), &hex(&first["pt"]), &hex(&v["ikmE"])).unwrap();
        assert_eq!(enc.to_vec(), hex(&v["enc"]));
        assert_eq!(ct, hex(&first["ct"]));
        // A different ephemeral seed gives a different encapsulation.
        let (enc2, _) = pk.seal_raw(&hex(&v["info"]), &[], &hex(&first["pt"]), &[7; 32]).unwrap();
        assert_ne!(enc2, enc);
    }
}

fn pair(seed: u8) -> (PrivateKey, PublicKey) {
    let sk = PrivateKey::derive(&[seed; 32]).unwrap();
    let pk = sk.public_key();
    (sk, pk)
}

fn writer(pk: PublicKey) -> Keyring {
    let mut r = Keyring::new();
    r.add_public_key("pub-a", pk, KeyState::Active).unwrap();
    r
}

#[test]
fn a_public_key_creates_envelopes_it_cannot_open() {
    let (sk, pk) = pair(1);
    let w = writer(pk);
    let (env, key) = w.create_envelope(Params::default()).unwrap();
    assert_eq!(env.wrap_alg(), WrapAlg::HpkeX25519);
    assert_eq!(env.encoded_len(), 169, "129 with AES-KWP, 40 more for the 80-byte HPKE wrap");
    assert_eq!(w.open(&env).err(), Some(Error::PublicKeyOnly));
    assert_eq!(w.rewrap(&env).err(), Some(Error::PublicKeyOnly));
    assert_eq!(Error::PublicKeyOnly.code(), "public_key_only");
    assert_eq!(w.keys()[0].kind, KeyKind::PublicKey);
    // Every create seals to a fresh ephemeral key.
    let (env2, _) = w.create_envelope(Params::default()).unwrap();
    assert_ne!(env.to_bytes()[env.encoded_len() - 80..], env2.to_bytes()[env2.encoded_len() - 80..]);

    let mut r = Keyring::new();
    r.add_private_key("pub-a", sk, KeyState::DecryptOnly).unwrap();
    assert_eq!(r.open(&env).unwrap().segment_key(0), key.segment_key(0));
    assert_eq!(r.keys()[0].kind, KeyKind::PrivateKey);
    assert_eq!(r.keys()[0].public_key, Some(pk));
    // The text survives decode.
    let back = Envelope::decode_text(&env.to_text()).unwrap();
    assert_eq!(r.open(&back).unwrap().segment_key(0), key.segment_key(0));
}

#[test]
fn wrong_key_altered_encapsulation_and_a_moved_wrap_fail_to_unwrap() {
    let (sk, pk) = pair(1);
    let (env, _) = writer(pk).create_envelope(Params::default()).unwrap();
    let mut other = Keyring::new();
    other.add_private_key("pub-a", pair(2).0, KeyState::DecryptOnly).unwrap();
    assert_eq!(other.open(&env).err(), Some(Error::UnwrapFailed));

    let mut r = Keyring::new();
    r.add_private_key("pub-a", sk, KeyState::DecryptOnly).unwrap();
    let bytes = env.to_bytes();
    let wrapped_at = bytes.len() - 80;
    for i in [wrapped_at, wrapped_at + 31, wrapped_at + 32, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[i] ^= 1;
        assert_eq!(r.open(&Envelope::decode(&b).unwrap()).err(), Some(Error::UnwrapFailed), "byte {i}");
    }
    // The wrapped DEK of one envelope under another's header: HPKE's info binds the header, so
    // it fails at the HPKE tag.
    let (env2, _) = writer(pk).create_envelope(Params::default().with_frame_size(1 << 20).unwrap()).unwrap();
    let mut moved = env2.to_bytes();
    let n = moved.len();
    moved[n - 80..].copy_from_slice(&bytes[wrapped_at..]);
    assert_eq!(r.open(&Envelope::decode(&moved).unwrap()).err(), Some(Error::UnwrapFailed));
    // An HPKE wrap has exactly 80 bytes.
    let mut short = bytes.clone();
    short.pop();
    let kid_len_at = 81;
    let wrapped_len_at = kid_len_at + 1 + usize::from(short[kid_len_at]) + 1;
    short[wrapped_len_at] = 79;
    assert_eq!(Envelope::decode(&short).err(), Some(Error::MalformedEnvelope));
}

#[test]
fn keys_of_the_other_family_are_the_wrong_kind() {
    let (sk, pk) = pair(1);
    let (hpke_env, _) = writer(pk).create_envelope(Params::default()).unwrap();
    let mut kek_ring = Keyring::new();
    kek_ring.add_kek("pub-a", Kek::from_bytes([9; 32]), KeyState::Active).unwrap();
    assert_eq!(kek_ring.open(&hpke_env).err(), Some(Error::WrongKeyKind));
    let (kwp_env, _) = kek_ring.create_envelope(Params::default()).unwrap();
    let mut r = Keyring::new();
    r.add_private_key("pub-a", sk, KeyState::Active).unwrap();
    assert_eq!(r.open(&kwp_env).err(), Some(Error::WrongKeyKind));
    assert_eq!(r.unwrapper("pub-a").err(), Some(Error::WrongKeyKind));
    r.set_state("pub-a", KeyState::Disabled).unwrap();
    assert_eq!(r.open(&hpke_env).err(), Some(Error::KeyDisabled));
}

#[test]
fn rewrap_moves_between_kek_and_recipient_both_ways_without_touching_the_body() {
    let (sk, pk) = pair(3);
    let mut r = Keyring::new();
    r.add_kek("kek-a", Kek::from_bytes([4; 32]), KeyState::Active).unwrap();
    let (kwp, key) = r.create_envelope(Params::default()).unwrap();
    r.add_private_key("pk-b", sk, KeyState::Active).unwrap();
    let to_pk = r.rewrap(&kwp).unwrap();
    assert_eq!((to_pk.kid(), to_pk.wrap_alg()), ("pk-b", WrapAlg::HpkeX25519));
    assert!(to_pk.same_dek_as(&kwp));
    assert_eq!(r.open(&to_pk).unwrap().segment_key(0), key.segment_key(0));
    // A writer holding only the public key can rewrap nothing, but the private key holder can
    // move it back.
    r.set_state("kek-a", KeyState::Active).unwrap();
    let back = r.rewrap(&to_pk).unwrap();
    assert_eq!((back.kid(), back.wrap_alg()), ("kek-a", WrapAlg::AesKwp));
    assert_eq!(r.open(&back).unwrap().segment_key(0), key.segment_key(0));
    // Rewrap to a public-only recipient works from a keyring that can open the source.
    let mut w = Keyring::new();
    w.add_kek("kek-a", Kek::from_bytes([4; 32]), KeyState::DecryptOnly).unwrap();
    w.add_public_key("pk-c", pair(5).1, KeyState::Active).unwrap();
    let to_c = w.rewrap(&kwp).unwrap();
    assert_eq!(w.open(&to_c).err(), Some(Error::PublicKeyOnly));
}

/// An HSM client that holds the private key: it sees only the wrapped DEK and the info.
struct Hsm(PrivateKey);

impl RecipientUnwrap for Hsm {
    fn unwrap(&self, wrapped: &[u8], info: &[u8]) -> Result<Dek, Error> {
        self.0.unwrap(wrapped, info)
    }
}

#[test]
fn an_external_private_key_opens_synchronously_or_through_requests() {
    let (sk, pk) = pair(6);
    let (env, key) = writer(pk).create_envelope(Params::default()).unwrap();
    let mut sync = Keyring::new();
    sync.add_private_key_external("pub-a", pk, Box::new(Hsm(sk.clone())), KeyState::DecryptOnly).unwrap();
    assert_eq!(sync.open(&env).unwrap().segment_key(0), key.segment_key(0));
    assert_eq!(sync.keys()[0].kind, KeyKind::ExternalPrivateKey);
    assert!(sync.keys()[0].external);

    let mut deferred = Keyring::new();
    deferred.add_private_key_deferred("pub-a", pk, KeyState::Active).unwrap();
    // Creating needs no request: the public key is here.
    let (own, own_key) = deferred.create_envelope(Params::default()).unwrap();
    for (e, k) in [(&env, &key), (&own, &own_key)] {
        let mut task = deferred.begin_open(e).unwrap();
        let KeyStep::Need(req) = task.step(&deferred).unwrap() else { panic!("expected a request") };
        assert_eq!((req.kid(), req.op(), req.wrap_alg()), ("pub-a", KeyOp::Unwrap, WrapAlg::HpkeX25519));
        assert_eq!(req.info(), &recipient::info(e.header())[..]);
        assert!(req.info().starts_with(b"isec/v1/hpke-x25519"));
        let dek = sk.unwrap(req.input(), req.info()).unwrap();
        task.answer(dek.expose()).unwrap();
        let KeyStep::Ready(out) = task.step(&deferred).unwrap() else { panic!("expected the key") };
        assert_eq!(out.key().unwrap().segment_key(0), k.segment_key(0));
    }
    // A wrong answer fails the commitment check.
    let mut task = deferred.begin_open(&env).unwrap();
    let KeyStep::Need(_) = task.step(&deferred).unwrap() else { panic!("expected a request") };
    assert_eq!(task.answer(&[0; 32]).err(), Some(Error::CommitmentMismatch));
}

#[test]
fn key_texts_round_trip_and_refuse_the_other_kind() {
    let (sk, pk) = pair(8);
    let pt = pk.to_text();
    assert!(pt.starts_with("isec-x25519-public:"));
    assert_eq!(pt.len(), "isec-x25519-public:".len() + 43);
    assert_eq!(PublicKey::from_text(&pt).unwrap(), pk);
    let st = sk.to_text();
    assert!(st.starts_with("isec-x25519-private:"));
    assert_eq!(PrivateKey::from_text(&st).unwrap().public_key(), pk);
    for bad in [&st[..], "isec-x25519-public:", "isec-x25519-public:AAAA", &pt[..pt.len() - 1], "age1qqqq", ""] {
        assert_eq!(PublicKey::from_text(bad).err(), Some(Error::InvalidParameter), "{bad}");
    }
    assert_eq!(PrivateKey::from_text(&pt).err(), Some(Error::InvalidParameter));
    assert_eq!(PrivateKey::derive(&[1; 31]).err(), Some(Error::InvalidParameter));
    assert!(!format!("{sk:?}").contains(&st[20..]), "Debug never shows the private key");
}

#[test]
fn keyring_files_hold_every_local_kind_and_write_back_what_they_read() {
    let (sk, pk) = pair(9);
    let text = format!(
        r#"{{"min_version": 1, "keys": [
        {{"kid": "k1", "kek": "{}", "state": "decrypt_only", "created": "2026-12-01T00:00:00Z"}},
        {{"kid": "AKIAPROXY", "legacy_secret": "s3cr3t"}},
        {{"kid": "w", "public_key": "{}", "state": "active"}},
        {{"kid": "r", "private_key": "{}", "public_key": "{}"}}]}}"#,
        "ab".repeat(32),
        pk.to_text(),
        sk.to_text().as_str(),
        pk.to_text()
    );
    let ring = Keyring::from_file_text(text.as_bytes()).unwrap();
    let kinds: Vec<_> = ring.keys().iter().map(|k| k.kind.name()).collect();
    assert_eq!(kinds, ["kek", "legacy", "public_key", "private_key"]);
    assert_eq!(ring.keys()[0].created.as_deref(), Some("2026-12-01T00:00:00Z"));
    let written = ring.to_file_text().unwrap();
    let again = Keyring::from_file_text(written.as_bytes()).unwrap();
    assert_eq!(again.keys(), ring.keys());
    assert_eq!(again.min_version(), 1);
    assert_eq!(again.to_file_text().unwrap().as_str(), written.as_str());
    // A private key named with someone else's public key is refused.
    let wrong = format!(
        r#"{{"keys": [{{"kid": "r", "private_key": "{}", "public_key": "{}"}}]}}"#,
        sk.to_text().as_str(),
        pair(10).1.to_text()
    );
    assert_eq!(Keyring::from_file_text(wrong.as_bytes()).err(), Some(Error::InvalidParameter));
    // Keys held elsewhere cannot be written to a file.
    let mut ext = Keyring::new();
    ext.add_private_key_deferred("d", pk, KeyState::Active).unwrap();
    assert_eq!(ext.to_file_text().err(), Some(Error::InvalidParameter));
}

#[test]
fn a_low_order_public_key_is_refused_when_sealing() {
    // The identity (all zero) and a point of order 8: X25519 yields the all-zero secret.
    let order8 = hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800").unwrap();
    for pk in [[0u8; 32], <[u8; 32]>::try_from(&order8[..]).unwrap()] {
        let w = writer(PublicKey::from_bytes(pk));
        assert_eq!(w.create_envelope(Params::default()).err(), Some(Error::InvalidParameter));
    }
}

#[test]
fn a_keyring_file_with_two_active_keys_or_an_unknown_min_version_is_refused() {
    let k = "ab".repeat(32);
    let two = format!(
        r#"{{"keys": [{{"kid": "a", "kek": "{k}", "state": "active"}}, {{"kid": "b", "kek": "{k}", "state": "active"}}]}}"#
    );
    assert_eq!(Keyring::from_file_text(two.as_bytes()).err(), Some(Error::InvalidParameter));
    let mv = format!(r#"{{"min_version": 2, "keys": [{{"kid": "a", "kek": "{k}"}}]}}"#);
    assert_eq!(Keyring::from_file_text(mv.as_bytes()).err(), Some(Error::InvalidParameter));
    let dup = format!(r#"{{"keys": [{{"kid": "a", "kek": "{k}"}}, {{"kid": "a", "kek": "{k}"}}]}}"#);
    assert_eq!(Keyring::from_file_text(dup.as_bytes()).err(), Some(Error::DuplicateKid));
}

#[test]
fn a_legacy_secret_in_a_file_is_never_active_and_can_be_disabled() {
    let active = br#"{"keys": [{"kid": "p", "legacy_secret": "s", "state": "active"}]}"#;
    assert_eq!(Keyring::from_file_text(active).err(), Some(Error::InvalidParameter));
    let disabled = br#"{"keys": [{"kid": "p", "legacy_secret": "s", "state": "disabled"}]}"#;
    assert_eq!(Keyring::from_file_text(disabled).unwrap().state("p"), Some(KeyState::Disabled));
}
