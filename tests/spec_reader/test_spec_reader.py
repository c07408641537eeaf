"""Runs every decoding/decryption case of tests/vectors/ through spec_reader.py."""
import hashlib
import json
from pathlib import Path

import pytest

import spec_reader as sr

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
FILES = ["envelope", "nonces", "frames", "multipart", "ranges", "rotation", "legacy"]


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
