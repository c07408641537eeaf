"""Runs every decoding/decryption case of tests/vectors/ through spec_reader.py."""
import hashlib
import hmac
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.bindings._rust import openssl as rust_openssl

import spec_reader as sr

rust_hpke = rust_openssl.hpke  # `_decrypt_with_aad`: RFC 9180's vectors carry an aad

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
FILES = ["envelope", "nonces", "frames", "multipart", "ranges", "rotation", "legacy", "recipients"]


def load(name):
    return json.loads((VECTORS / f"{name}.json").read_text())


def cases(name):
    return [pytest.param(tc, id=f"{name}-{tc['tcId']}") for tc in load(name)["tests"]]


KEYS = load("keys")["keys"]
KEKS = {kid: bytes.fromhex(k["kek"]) for kid, k in KEYS.items() if "kek" in k}


def keyring(states=None, min_version=0):
    ring = sr.Keyring(min_version)
    for kid, state in (states or {kid: "decrypt_only" for kid in KEKS}).items():
        ring.add(kid, KEKS[kid], state)
    return ring


def plaintext(n):  # "byte i of a plaintext of length n is i % 251"
    return bytes(i % 251 for i in range(n))


def raises(code, fn, *args):
    with pytest.raises(sr.IsecError) as info:
        fn(*args)
    assert info.value.code == code, f"got {info.value}, want {code}"
    return info.value


def expect_valid(tc):
    assert tc["result"] in ("valid", "invalid"), tc["result"]
    return tc["result"] == "valid"


# Every case of every file is run; the corpus cannot shrink to nothing unnoticed.


@pytest.mark.parametrize("name", FILES)
def test_case_counts(name):
    data = load(name)
    manifest = {f["file"]: f for f in load("manifest")["files"]}[f"{name}.json"]
    assert len(data["tests"]) == data["numberOfTests"] == manifest["tests"] > 0
    assert len({tc["tcId"] for tc in data["tests"]}) == len(data["tests"])
    raw = (VECTORS / f"{name}.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == manifest["sha256"], "manifest out of date"


def test_every_corpus_file_is_run():  # a new corpus file fails here until it is run or named
    listed = {f["file"] for f in load("manifest")["files"] if f["tests"] > 0}
    not_read = {"copy_decisions.json"}  # §12's decisions are planning, not reading the format
    assert listed - not_read == {f"{name}.json" for name in FILES}


@pytest.mark.parametrize("tc", cases("envelope"))
def test_envelope(tc):
    if expect_valid(tc):
        env = sr.Envelope.from_text(tc["envelope"])
        assert env.inspect() == tc["inspect"]
        assert env.text() == tc["envelope"]
        keyring().open(env)  # commitment verifies
    elif tc["stage"] == "decode":
        raises(tc["error"], sr.Envelope.from_text, tc["envelope"])
    else:
        assert tc["stage"] == "open"
        raises(tc["error"], keyring().open, sr.Envelope.from_text(tc["envelope"]))


def test_key_schedule():
    data = load("envelope")
    ks = data["key_schedule"]
    env = sr.Envelope.from_text(data["tests"][0]["envelope"])
    assert env.header.hex() == ks["header"] and env.salt.hex() == ks["salt"]
    keys = keyring().open(env)
    assert keys.dek.hex() == ks["dek"] and env.commitment.hex() == ks["commitment"]
    assert keys.segment_key(0).hex() == ks["segment_key_0"]
    assert keys.segment_key(1).hex() == ks["segment_key_1"]


@pytest.mark.parametrize("tc", cases("nonces"))
def test_nonce(tc):
    nonce = bytes.fromhex(tc["nonce"])
    if expect_valid(tc):
        fields = (bytes.fromhex(tc["prefix"]), tc["index"], tc["segment_end"], tc["object_end"])
        assert sr.make_nonce(*fields) == nonce
        assert sr.parse_nonce(nonce) == fields
    else:
        raises(tc["error"], sr.parse_nonce, nonce)


def check_object(tc):
    env = sr.Envelope.from_text(tc["envelope"])
    keys = keyring().open(env)
    ct = bytes.fromhex(tc["ciphertext"])
    table = bytes.fromhex(tc["segment_table"]) if "segment_table" in tc else None
    assert (table is not None) == (env.layout == 2)
    if expect_valid(tc):
        pt = plaintext(tc["plaintext_len"])
        assert tc["released"] == len(pt)
        assert sr.decrypt(env, keys, ct, table) == pt
        assert sr.decrypt_ranged(env, keys, ct, table) == pt
        assert sr.read_range(env, keys, ct, 0, sr.MAX_SIZE, table) == pt
        n, F = len(pt), env.frame_size
        for a, b in [(0, 1), (n // 3, 2 * n // 3 + 1), (n - 1, n), (F - 1, F + 1), (5, 3)]:
            assert sr.read_range(env, keys, ct, a, b, table) == pt[max(a, 0) : b], (a, b)
    else:
        err = raises(tc["error"], sr.decrypt, env, keys, ct, table)
        assert err.released == tc["released"]
        raises(tc.get("ranged_error", tc["error"]), sr.decrypt_ranged, env, keys, ct, table)


@pytest.mark.parametrize("tc", cases("frames"))
def test_frames(tc):
    check_object(tc)


@pytest.mark.parametrize("tc", cases("multipart"))
def test_multipart(tc):
    check_object(tc)


@pytest.mark.parametrize("tc", cases("ranges"))
def test_ranges(tc):
    env = sr.Envelope.from_text(tc["envelope"])
    if expect_valid(tc):
        got = sr.map_range(env, tc["ciphertext_len"], *tc["range"])[:4]
        assert dict(zip(["ct_start", "ct_end", "skip", "len"], got)) == tc["expect"]
    else:
        raises(tc["error"], sr.map_range, env, tc["ciphertext_len"], *tc["range"])


@pytest.mark.parametrize("tc", cases("rotation"))
def test_rotation(tc):
    ring = keyring(tc["keys"], tc["min_version"])
    env = sr.Envelope.from_text(tc["envelope"])
    op = {"open": ring.open, "rewrap": ring.rewrap}[tc["operation"]]
    if expect_valid(tc):
        result = op(env)
        if tc["operation"] == "rewrap":
            assert result.text() == tc["expect"]["envelope"] and result.kid == tc["expect"]["kid"]
            assert result.header == env.header and result.commitment == env.commitment
            keyring().open(result)  # the rewrapped envelope opens under its new kid
        else:
            assert tc["expect"] is None
    else:
        raises(tc["error"], op, env)


@pytest.mark.parametrize("tc", cases("legacy"))
def test_legacy(tc):
    meta = dict(tc["metadata"])
    assert sr.classify(meta) == "legacy"
    assert meta.get("isec-kid", tc["kid"]) == tc["kid"]
    body = bytes.fromhex(tc["ciphertext"])
    if expect_valid(tc):
        got = sr.legacy_decrypt(tc["metadata"], tc["legacy_secret"], body)
        assert got == plaintext(tc["plaintext_len"])
    else:
        raises(tc["error"], sr.legacy_decrypt, tc["metadata"], tc["legacy_secret"], body)


def test_base64url_rules():  # §2, beyond the corpus's two text cases
    assert sr.b64url_decode("AQID") == b"\x01\x02\x03" and sr.b64url_decode("") == b""
    for bad in ["AQ==", "AQI=", "A", "AQ+/", "AQ/_", "AR", "AQJ", "AQ I"]:
        raises("malformed_envelope", sr.b64url_decode, bad)


def test_table_prefix_is_checked():  # §6.3: a table naming another prefix refuses the segment
    tc = next(tc for tc in load("multipart")["tests"] if "segment_table" in tc and tc["result"] == "valid")
    env = sr.Envelope.from_text(tc["envelope"])
    keys = keyring().open(env)
    ct, table = bytes.fromhex(tc["ciphertext"]), bytes.fromhex(tc["segment_table"])
    segs = sr.parse_table(table, keys)
    body = bytearray(table[:-32])
    body[5 + sr.TABLE_ENTRY + 12] ^= 1  # first prefix byte of the second entry
    forged = bytes(body) + sr.hmac.new(keys.table_mac_key(), bytes(body), sr.hashlib.sha256).digest()
    raises("frame_out_of_order", sr.decrypt, env, keys, ct, forged)
    a = segs[1].pt_start + segs[1].length - 1  # last byte of segment 2: fetches its last frame only
    raises("frame_out_of_order", sr.read_range, env, keys, ct, a, a + 1, forged)
    assert sr.read_range(env, keys, ct, 0, segs[1].pt_start, forged) == plaintext(segs[1].pt_start)


# §3.5 and §10.3: public-key recipients and the keyring file ----------------------------


def open_and_decrypt(ring, env, ct):
    return sr.decrypt(env, ring.open(env), ct)


@pytest.mark.parametrize("tc", cases("recipients"))
def test_recipients(tc):
    if tc.get("stage") == "decode":
        assert not expect_valid(tc)
        raises(tc["error"], sr.Envelope.from_text, tc["envelope"])
        return
    env = sr.Envelope.from_text(tc["envelope"])
    assert env.text() == tc["envelope"]
    ring = sr.Keyring.from_json(tc["keyring"])
    ct, pt = bytes.fromhex(tc["ciphertext"]), plaintext(tc["plaintext_len"])
    if not expect_valid(tc):
        assert tc["stage"] == "open"
        raises(tc["error"], open_and_decrypt, ring, env, ct)
    elif "rewrap_then_open_with" in tc:
        other = sr.Keyring.from_json(tc["rewrap_then_open_with"])
        first, second = ring.rewrap(env), ring.rewrap(env)
        for new in (first, second):
            assert sr.WRAP_ALGS[new.wrap_alg] == tc["rewrapped_wrap_alg"]
            assert new.kid == next(k for k, (_, s) in ring.keys.items() if s == "active")
            assert (new.header, new.commitment) == (env.header, env.commitment)
            assert sr.Envelope.from_text(new.text()).raw == new.raw
            assert open_and_decrypt(other, new, ct) == pt
        if first.wrap_alg == 3:  # a fresh ephemeral key per envelope; public-only opens nothing
            assert first.wrapped[:32] != second.wrapped[:32]
            raises("public_key_only", ring.open, first)
        assert open_and_decrypt(ring, env, ct) == pt  # the source still opens where it did
    else:
        if "inspect" in tc:
            assert env.inspect() == tc["inspect"]
        assert open_and_decrypt(ring, env, ct) == pt


def recipient_pair():
    """A key pair of the corpus whose halves appear in separate keyrings (texts, unparsed)."""
    entries = [e for tc in load("recipients")["tests"] for e in tc["keyring"]["keys"]]
    publics = {e["public_key"] for e in entries if "public_key" in e}
    for private in (e["private_key"] for e in entries if "private_key" in e):
        public = sr.public_key_text(sr.private_key_from_text(private).public_key())
        if public in publics:
            return private, public
    raise AssertionError("recipients.json names no private key with its public key")


def test_key_text_forms():
    private, public = recipient_pair()
    sk, pk = sr.private_key_from_text(private), sr.public_key_from_text(public)
    assert sr.private_key_text(sk) == private and sr.public_key_text(pk) == public
    assert sk.public_key().public_bytes_raw() == pk.public_bytes_raw()
    body = public[len(sr.PUBLIC_PREFIX) :]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    flipped = alphabet[alphabet.index(body[-1]) ^ 1]  # 43 characters: 258 bits, the last 2 zero
    bad = [
        sr.PRIVATE_PREFIX + body,  # the other prefix
        "isec-x25519-public" + body,
        sr.PUBLIC_PREFIX + body[:-1],  # 42 characters
        sr.PUBLIC_PREFIX + body + "A",  # 44
        sr.PUBLIC_PREFIX + body + "=",  # padding
        sr.PUBLIC_PREFIX + body[:-1] + "+",  # outside the alphabet
        sr.PUBLIC_PREFIX + body[:-1] + flipped,  # non-canonical trailing bits
        sr.PUBLIC_PREFIX.upper() + body,
    ]
    for text in bad:
        raises("invalid_parameter", sr.public_key_from_text, text)
    raises("invalid_parameter", sr.private_key_from_text, public)


def test_hpke_wrap_round_trip():  # §3.5 with a fresh key pair, through rewrap both ways
    tc = next(tc for tc in load("recipients")["tests"] if "rewrap_then_open_with" in tc)
    env, ct = sr.Envelope.from_text(tc["envelope"]), bytes.fromhex(tc["ciphertext"])
    kek_entry = next(k for k in tc["keyring"]["keys"] if "kek" in k)
    sk = sr.X25519PrivateKey.generate()
    ring = sr.Keyring.from_json({"keys": [
        dict(kek_entry, state="decrypt_only"),
        {"kid": "fresh", "private_key": sr.private_key_text(sk), "state": "active"},
    ]})
    moved = ring.rewrap(env)
    assert moved.wrap_alg == 3 and len(moved.wrapped) == 80 and moved.kid == "fresh"
    assert len(moved.raw) == len(env.raw) - len(env.kid) + len("fresh") + 80 - 40
    assert open_and_decrypt(ring, moved, ct) == plaintext(tc["plaintext_len"])
    # back to the KEK: the same metadata-only step in the other direction
    ring2 = sr.Keyring.from_json({"keys": [
        dict(kek_entry, state="active"),
        {"kid": "fresh", "private_key": sr.private_key_text(sk)},
    ]})
    back = ring2.rewrap(moved)
    assert back.raw == env.raw  # AES-KWP is deterministic
    # the header is in HPKE's info: the wrap moved onto another header fails at the tag
    other = sr.Envelope(moved.raw[:17] + bytes([moved.raw[17] ^ 1]) + moved.raw[18:])
    raises("unwrap_failed", ring.open, other)
    # a low-order public key is refused when sealing to it
    zero = sr.Recipient(public=sr.X25519PublicKey.from_public_bytes(bytes(32)))
    raises("invalid_parameter", sr.hpke_seal, zero.public, bytes(32), env.header)


SPEC_EXAMPLE = """{"min_version": 0,
 "keys": [
  {"kid": "kek-2026", "kek": "%s", "state": "active", "created": "2026-12-01T09:00:00Z"},
  {"kid": "AKIAPROXY", "legacy_secret": "the previous proxy's secret"},
  {"kid": "uploads", "public_key": "%s", "state": "decrypt_only"},
  {"kid": "archive", "private_key": "%s", "state": "disabled"}]}"""


def keyring_file(**entry):
    """The §10.3 example with the last entry replaced by `entry` (None: the example itself)."""
    private, public = recipient_pair()
    doc = json.loads(SPEC_EXAMPLE % ("00" * 32, public, private))
    if entry:
        doc["keys"][-1] = entry
    return json.dumps(doc)


def test_keyring_file():  # §10.3
    private, public = recipient_pair()
    ring = sr.Keyring.from_file(keyring_file())
    assert ring.min_version == 0
    assert {kid: s for kid, (_, s) in ring.keys.items()} == {
        "kek-2026": "active",
        "AKIAPROXY": "decrypt_only",
        "uploads": "decrypt_only",
        "archive": "disabled",
    }
    assert isinstance(ring.keys["AKIAPROXY"][0], sr.LegacySecret)
    assert ring.keys["uploads"][0].private is None and ring.keys["archive"][0].private is not None
    both = sr.Keyring.from_file(keyring_file(kid="x", private_key=private, public_key=public))
    assert both.keys["x"][0].private is not None
    assert sr.Keyring.from_file('{"keys": []}').min_version == 0
    assert sr.Keyring.from_file(keyring_file(kid="x", kek="AB" * 32)).keys["x"][0] == b"\xab" * 32
    # a legacy secret never opens an isec envelope (§10.1)
    tc = next(tc for tc in load("recipients")["tests"] if "rewrap_then_open_with" in tc)
    env = sr.Envelope.from_text(tc["envelope"])
    assert env.wrap_alg == 1
    legacy = sr.Keyring.from_json({"keys": [{"kid": env.kid, "legacy_secret": "s"}]})
    raises("wrong_key_kind", legacy.open, env)
    # a recipient holding its private key opens no KEK-wrapped envelope
    rec = sr.Keyring.from_json({"keys": [{"kid": env.kid, "private_key": private}]})
    raises("wrong_key_kind", rec.open, env)


def test_keyring_file_refusals():  # §10.3: each is invalid_parameter, two keys with one kid duplicate_kid
    private, public = recipient_pair()
    other_public = sr.public_key_text(sr.X25519PrivateKey.generate().public_key())
    good = keyring_file()
    bad = [
        keyring_file(kid="x", kek="00" * 32, color="red"),  # unknown field
        keyring_file(kid="x"),  # no key
        keyring_file(kid="x", kek="00" * 32, public_key=public),  # two kinds
        keyring_file(kid="x", kek="00" * 32, legacy_secret="s"),
        keyring_file(kid="x", private_key=private, public_key=other_public),  # mismatch
        keyring_file(kid="x", kek="00" * 31),
        keyring_file(kid="x", kek="0g" * 32),
        keyring_file(kid="x", kek="00" * 32, state="enabled"),
        keyring_file(kid="x", kek="00" * 32, state="active"),  # a second active key
        keyring_file(kid="x", public_key=public + "="),
        keyring_file(kid="x", private_key=public),
        keyring_file(kid="", kek="00" * 32),
        keyring_file(kid="x", kek="00" * 32, created=5),
        good.replace("the previous proxy", "the previous prox\\u0079"),  # a JSON escape
        good.replace('"min_version": 0', '"min_version": 0, "extra": 1'),
        good.replace('"min_version": 0', '"min_version": 2'),
        good.replace('"min_version": 0', '"min_version": 0, "min_version": 1'),  # named twice
        good.replace('{"kid": "uploads",', '{"kid": "uploads", "kid": "uploads2",'),
        good[:-1],  # not JSON
        '{"min_version": 0}',
        "[]",
    ]
    for text in bad:
        raises("invalid_parameter", sr.Keyring.from_file, text)
    raises("duplicate_kid", sr.Keyring.from_file, keyring_file(kid="kek-2026", kek="00" * 32))


def derive_key_pair(ikm):
    """RFC 9180 §7.1.3 DeriveKeyPair for DHKEM(X25519, HKDF-SHA256): sk = LabeledExpand(
    LabeledExtract("", "dkp_prk", ikm), "sk", "", 32), suite_id = "KEM" || I2OSP(0x20, 2)."""
    suite_id = b"KEM\x00\x20"
    prk = hmac.new(b"", b"HPKE-v1" + suite_id + b"dkp_prk" + ikm, hashlib.sha256).digest()
    info = struct.pack(">H", 32) + b"HPKE-v1" + suite_id + b"sk"
    sk = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()  # one HKDF-Expand block
    return sr.X25519PrivateKey.from_private_bytes(sk)


def test_rfc9180_vectors():  # §3.5 conformance of the HPKE the reader uses
    data = json.loads((VECTORS / "rfc9180" / "hpke_x25519_aes256gcm.json").read_text())
    vectors = data["vectors"]
    assert vectors
    for v in vectors:
        assert (v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) == (0, 0x20, 1, 2)
        h = {k: bytes.fromhex(v[k]) for k in ("info", "ikmR", "ikmE", "skRm", "pkRm", "enc")}
        sk, ephemeral = derive_key_pair(h["ikmR"]), derive_key_pair(h["ikmE"])
        assert sk.private_bytes_raw() == h["skRm"]
        assert sk.public_key().public_bytes_raw() == h["pkRm"]
        assert ephemeral.public_key().public_bytes_raw() == h["enc"]
        first = v["encryptions"][0]
        ct, aad, pt = (bytes.fromhex(first[k]) for k in ("ct", "aad", "pt"))
        # the public API has no aad (§3.5 uses none); the vectors' first encryption has one
        got = rust_hpke._decrypt_with_aad(sr.HPKE_SUITE, h["enc"] + ct, sk, info=h["info"], aad=aad)
        assert got == pt
        with pytest.raises(sr.InvalidTag):  # the aad is authenticated: empty is not Count-0
            rust_hpke._decrypt_with_aad(sr.HPKE_SUITE, h["enc"] + ct, sk, info=h["info"], aad=b"")
    # and the public API the reader uses is the same HPKE with an empty aad
    sk = sr.X25519PrivateKey.generate()
    sealed = sr.HPKE_SUITE.encrypt(b"dek", sk.public_key(), info=b"i")
    assert rust_hpke._decrypt_with_aad(sr.HPKE_SUITE, sealed, sk, info=b"i", aad=b"") == b"dek"
