"""A second, independent reader of the isec v1 format, written from SPEC.md alone.

No Rust source was read to write it. Section numbers (§) refer to SPEC.md. Where SPEC.md is
silent and the corpus decides, the line is marked `GAP n`, explained in SPEC_GAPS.md.
It reads only: it never writes an object (rewrap, §10.2, is the one metadata-only writer,
and the only place it seals to a public key, §3.5).
"""
import base64
import bisect
import hashlib
import hmac
import json
import re
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

HEADER_LEN = 49
MAX_ENVELOPE = 348
MAX_SIZE = 1 << 44
MAX_PARTS = 10000
OVERHEAD = 28  # nonce(12) + tag(16), §5.2
TABLE_ENTRY = 4 + 8 + 7  # u32 part || u64 plaintext_len || prefix(7), §6.3
LAYOUTS = {0: "single", 1: "parts", 2: "table"}
WRAP_ALGS = {1: "aes-kwp", 2: "external", 3: "hpke-x25519"}
WRAP_LEN = {1: 40, 3: 80}  # §3.1: the exact wrapped_len of the fixed-size wraps


class IsecError(Exception):
    """Every failure, with its SPEC §9 code; `released` is the plaintext let out before it."""

    def __init__(self, code, detail=""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.released = 0


def fail(code, detail=""):
    raise IsecError(code, detail)


def u32(b):
    return struct.unpack(">I", b)[0]


def u64(b):
    return struct.unpack(">Q", b)[0]


# §2: base64url without padding, canonical ------------------------------------------------

_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


def b64url_encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text, code="malformed_envelope"):
    if not _B64URL.match(text) or len(text) % 4 == 1:
        fail(code, "not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(raw) != text:
        fail(code, "non-canonical trailing bits")
    return raw


# §3.1: envelope ------------------------------------------------------------------------


class Envelope:
    def __init__(self, raw):
        n = len(raw)
        if n == 0:
            fail("malformed_envelope", "empty")  # GAP 1
        if raw[0] != 1:
            fail("unsupported_version")
        if n > MAX_ENVELOPE or n < HEADER_LEN:
            fail("malformed_envelope", "length")
        if raw[1] != 1:
            fail("unsupported_suite")
        if not 12 <= raw[2] <= 23:
            fail("invalid_frame_size")
        self.version, self.suite, self.frame_exp, self.layout = raw[0], raw[1], raw[2], raw[3]
        self.part_frames, self.size_flag, self.declared = u32(raw[4:8]), raw[8], u64(raw[9:17])
        if self.layout not in LAYOUTS or (self.layout == 1) != (self.part_frames != 0):
            fail("malformed_envelope", "layout / part_frames")
        if self.size_flag > 1 or (self.size_flag == 0 and self.declared != 0):
            fail("malformed_envelope", "size_flag")
        if self.declared > MAX_SIZE:
            fail("limit_exceeded", "declared size")
        kid_len = raw[81] if n > 81 else 0
        if not 1 <= kid_len <= 64 or n < 82 + kid_len:
            fail("malformed_envelope", "kid length")
        kid = raw[82 : 82 + kid_len]
        if any(not 0x21 <= c <= 0x7E for c in kid):
            fail("malformed_envelope", "kid characters")
        at = 82 + kid_len
        if n <= at:
            fail("malformed_envelope", "no wrap_alg")
        if raw[at] not in WRAP_ALGS:
            fail("unsupported_suite", "wrap_alg")
        self.wrap_alg = raw[at]
        wlen = raw[at + 1] if n > at + 1 else 0
        if not 1 <= wlen <= 200 or WRAP_LEN.get(self.wrap_alg, wlen) != wlen or n != at + 2 + wlen:
            fail("malformed_envelope", "wrapped DEK length")
        self.raw, self.header, self.salt = bytes(raw), bytes(raw[:HEADER_LEN]), raw[17:49]
        self.commitment, self.kid, self.wrapped = raw[49:81], kid.decode("ascii"), raw[at + 2 :]
        self.frame_size = 1 << self.frame_exp

    @classmethod
    def from_text(cls, text):
        return cls(b64url_decode(text))

    def text(self):
        return b64url_encode(self.raw)

    def with_wrap(self, kid, wrap_alg, wrapped):
        """§10.2: the same header and commitment under another kid and wrapped DEK."""
        kid = kid.encode("ascii")
        tail = bytes([len(kid)]) + kid + bytes([wrap_alg, len(wrapped)]) + wrapped
        return Envelope(self.raw[:81] + tail)

    def inspect(self):  # §3.3
        return {
            "version": self.version,
            "suite": self.suite,
            "kid": self.kid,
            "wrap_alg": WRAP_ALGS[self.wrap_alg],  # GAP 9
            "frame_size": self.frame_size,
            "layout": LAYOUTS[self.layout],
            "part_size": self.part_frames * self.frame_size if self.layout == 1 else None,
            "declared_size": self.declared if self.size_flag else None,
            "envelope_len": len(self.raw),
        }


# §4: key schedule ----------------------------------------------------------------------


def hkdf_expand(prk, info):
    return HKDFExpand(hashes.SHA256(), 32, info).derive(prk)


class ObjectKeys:
    """The keys of one object; constructing it checks the commitment (§4)."""

    def __init__(self, env, dek):
        self.env, self.dek = env, dek
        self.prk = hmac.new(env.salt, dek, hashlib.sha256).digest()  # HKDF-Extract(salt, DEK)
        if not hmac.compare_digest(self.derive(b"isec/v1/commitment"), env.commitment):
            fail("commitment_mismatch")

    def derive(self, label, mid=b""):
        return hkdf_expand(self.prk, label + mid + self.env.header)

    def segment_key(self, segment):
        return self.derive(b"isec/v1/frame-key", struct.pack(">I", segment))

    def table_mac_key(self):
        return self.derive(b"isec/v1/segment-table-mac")


# §3.5: public-key recipients (HPKE-X25519) --------------------------------------------

HPKE_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
HPKE_LABEL = b"isec/v1/hpke-x25519"
PUBLIC_PREFIX, PRIVATE_PREFIX = "isec-x25519-public:", "isec-x25519-private:"


def hpke_info(header):
    return HPKE_LABEL + header  # 68 bytes


def hpke_seal(public, dek, header):
    """SealBase(pkR, info, aad = "", DEK) with a fresh ephemeral key: enc || ct || tag."""
    try:
        wrapped = HPKE_SUITE.encrypt(dek, public, info=hpke_info(header))  # aad is empty
    except ValueError:  # GAP 15: a low-order public key (the DH output is all zero)
        fail("invalid_parameter", "public key")
    assert len(wrapped) == 80
    return wrapped


def hpke_open(private, wrapped, header):
    """OpenBase(skR, enc, info, "", ct || tag); any failure is unwrap_failed."""
    try:
        return HPKE_SUITE.decrypt(wrapped, private, info=hpke_info(header))
    except (InvalidTag, ValueError):
        fail("unwrap_failed")


def _key_text(text, prefix):
    if not isinstance(text, str) or not text.startswith(prefix) or len(text) != len(prefix) + 43:
        fail("invalid_parameter", "not " + prefix + "<43 characters>")
    return b64url_decode(text[len(prefix) :], "invalid_parameter")


def public_key_from_text(text):
    return X25519PublicKey.from_public_bytes(_key_text(text, PUBLIC_PREFIX))


def private_key_from_text(text):
    return X25519PrivateKey.from_private_bytes(_key_text(text, PRIVATE_PREFIX))


def public_key_text(public):
    return PUBLIC_PREFIX + b64url_encode(public.public_bytes_raw())


def private_key_text(private):
    return PRIVATE_PREFIX + b64url_encode(private.private_bytes_raw())


# §10: keyring --------------------------------------------------------------------------


class Recipient:
    """A public-key recipient (§10.1): the public key, and the private key when held."""

    def __init__(self, public=None, private=None):
        assert public is not None or private is not None
        self.private = private
        self.public = private.public_key() if public is None else public


class LegacySecret:
    """The previous proxy's secret (§11.3): opens only previous-proxy objects."""

    def __init__(self, secret):
        self.secret = secret


STATES = ("active", "decrypt_only", "disabled")


class Keyring:
    def __init__(self, min_version=0):
        self.min_version, self.keys = min_version, {}  # kid -> [key, state]

    def add(self, kid, key, state="active"):
        """`key`: a 32-byte KEK, a Recipient or a LegacySecret."""
        assert state in STATES
        if state == "active":
            for entry in self.keys.values():
                if entry[1] == "active":
                    entry[1] = "decrypt_only"
        self.keys[kid] = [key, state]

    def open(self, env):
        """§10.1's order: version_refused, unknown_kid, key_disabled, wrong_key_kind,
        public_key_only, then the unwrap (and §4's commitment)."""
        if env.version < self.min_version:
            fail("version_refused")
        if env.kid not in self.keys:
            fail("unknown_kid", env.kid)
        key, state = self.keys[env.kid]
        if state == "disabled":
            fail("key_disabled", env.kid)
        hpke_envelope = env.wrap_alg == 3
        if isinstance(key, LegacySecret) or isinstance(key, Recipient) != hpke_envelope:
            fail("wrong_key_kind", env.kid)
        if hpke_envelope:
            if key.private is None:
                fail("public_key_only", env.kid)
            dek = hpke_open(key.private, env.wrapped, env.header)
        elif env.wrap_alg != 1:
            fail("external_wrapper_failed", "this reader has no KMS")
        else:
            try:
                dek = aes_key_unwrap_with_padding(key, env.wrapped)
            except InvalidUnwrap:
                fail("unwrap_failed")
        if len(dek) != 32:
            fail("unwrap_failed", "DEK is not 32 bytes")
        return ObjectKeys(env, dek)

    def rewrap(self, env):  # §10.2: to the active key, of either family
        keys = self.open(env)
        active = [kid for kid, (_, state) in self.keys.items() if state == "active"]
        if not active:
            fail("key_not_active")
        key = self.keys[active[0]][0]
        if isinstance(key, Recipient):
            return env.with_wrap(active[0], 3, hpke_seal(key.public, keys.dek, env.header))
        return env.with_wrap(active[0], 1, aes_key_wrap_with_padding(key, keys.dek))

    @classmethod
    def from_file(cls, text):
        """§10.3: the keyring file; anything it does not allow is invalid_parameter."""
        if "\\" in text:  # outside strings a backslash is no JSON either
            fail("invalid_parameter", "a string written with a JSON escape")
        try:
            doc = json.loads(text, object_pairs_hook=_unique_members)
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            fail("invalid_parameter", f"not JSON: {e}")
        _fields(doc, {"keys"}, {"min_version"})
        min_version = doc.get("min_version", 0)  # GAP 13
        if type(min_version) is not int or min_version not in (0, 1):  # GAP 14
            fail("invalid_parameter", "min_version")
        if not isinstance(doc["keys"], list):  # GAP 14: an empty list is a keyring of no keys
            fail("invalid_parameter", "keys")
        ring = cls(min_version)
        for entry in doc["keys"]:
            kid, key, state = _file_entry(entry)
            if kid in ring.keys:
                fail("duplicate_kid", "two keys with one kid")
            if state == "active" and any(s == "active" for _, s in ring.keys.values()):
                fail("invalid_parameter", "two active keys")
            ring.add(kid, key, state)
        return ring

    @classmethod
    def from_json(cls, doc):
        """A keyring file given as a parsed JSON object (the corpus's `keyring`)."""
        return cls.from_file(json.dumps(doc, ensure_ascii=False))


def _unique_members(pairs):
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        fail("invalid_parameter", "a member named twice")  # GAP 14
    return dict(pairs)


def _fields(obj, required, optional):
    if not isinstance(obj, dict):
        fail("invalid_parameter", "not an object")
    if not required <= obj.keys() <= required | optional:
        fail("invalid_parameter", f"fields {sorted(obj)}")


_KEK_HEX = re.compile(r"[0-9a-fA-F]{64}\Z")  # GAP 14: either case


def _file_entry(entry):
    """One entry of §10.3: (kid, key, state)."""
    kinds = {"kek", "legacy_secret", "public_key", "private_key"}
    _fields(entry, {"kid"}, kinds | {"state", "created"})
    kid, state = entry["kid"], entry.get("state", "decrypt_only")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 64 or not all("!" <= c <= "~" for c in kid):
        fail("invalid_parameter", "kid")  # GAP 14: §3.1's kid rule
    if state not in STATES:
        fail("invalid_parameter", "state")
    if "created" in entry and not isinstance(entry["created"], str):  # GAP 14: "free text"
        fail("invalid_parameter", "created")
    present = kinds & entry.keys()
    if present == {"private_key", "public_key"}:  # GAP 14: the one pair allowed
        private = private_key_from_text(entry["private_key"])
        public = public_key_from_text(entry["public_key"])
        if public.public_bytes_raw() != private.public_key().public_bytes_raw():
            fail("invalid_parameter", "public_key does not match private_key")
        return kid, Recipient(private=private), state
    if len(present) != 1:
        fail("invalid_parameter", f"key fields {sorted(present)}")
    (kind,) = present
    value = entry[kind]
    if kind == "kek":
        if not isinstance(value, str) or not _KEK_HEX.match(value):
            fail("invalid_parameter", "kek")
        return kid, bytes.fromhex(value), state
    if kind == "legacy_secret":
        if not isinstance(value, str) or not value or state == "active":
            fail("invalid_parameter", "legacy_secret")  # GAP 14: always decrypt-only
        return kid, LegacySecret(value), state
    if kind == "public_key":
        return kid, Recipient(public=public_key_from_text(value)), state
    return kid, Recipient(private=private_key_from_text(value)), state


# §5: nonces and frames -----------------------------------------------------------------


def make_nonce(prefix, index, segment_end, object_end):
    return prefix + struct.pack(">I", index) + bytes([int(segment_end) | 2 * int(object_end)])


def check_flags(flags):
    """(segment_end, object_end); bad_frame_flags for bits no writer sets (§5.1)."""
    if flags & ~3 or flags == 2:
        fail("bad_frame_flags")
    return bool(flags & 1), bool(flags & 2)


def parse_nonce(nonce):
    return (nonce[:7], u32(nonce[7:11])) + check_flags(nonce[11])


def open_frame(key, frame):
    """§5.3 step 2: authenticate; returns (prefix, index, raw flags, plaintext)."""
    try:
        pt = AESGCM(key).decrypt(frame[:12], frame[12:], b"")
    except InvalidTag:
        fail("authentication_failed")
    return frame[:7], u32(frame[7:11]), frame[11], pt


def check_declared(env, size):
    if env.size_flag and size != env.declared:
        fail("truncated" if size < env.declared else "trailing_data", "declared size")


def _releasing(fn):
    """Run fn(out, ...) where out collects released plaintext; errors carry the amount."""

    def run(*args):
        out = []
        try:
            fn(out, *args)
        except IsecError as e:
            e.released = sum(map(len, out))
            raise
        return b"".join(out)

    return run


@_releasing
def _stream(out, env, keys, ct):
    """§5.3, streaming of unknown length (single and parts layouts)."""
    F, FC, parts = env.frame_size, env.frame_size + OVERHEAD, env.layout == 1
    seg, idx, pos, prefix, first = (1 if parts else 0), 0, 0, None, True
    key = keys.segment_key(seg)
    while True:
        if pos == len(ct):
            fail("truncated", "no object-end frame")
        frame = ct[pos : pos + FC]
        if len(frame) < OVERHEAD:
            fail("truncated", "frame shorter than 28 bytes")
        if len(frame) == OVERHEAD and not first:
            fail("bad_frame_length", "empty frame that is not the sole frame")  # GAP 10
        fprefix, findex, flags, pt = open_frame(key, frame)
        if findex != idx:
            fail("frame_out_of_order", "index")
        if prefix is not None and fprefix != prefix:
            fail("frame_out_of_order", "prefix of another encryption")
        prefix = fprefix
        seg_end, obj_end = check_flags(flags)
        part_end = parts and idx == env.part_frames - 1
        if seg_end != (part_end or obj_end):
            fail("bad_frame_flags", "segment end")
        if len(frame) < FC and not obj_end:
            fail("truncated", "short frame without object end")  # GAP 10
        out.append(pt)
        pos, first = pos + len(frame), False
        if obj_end:
            if pos != len(ct):
                fail("trailing_data")
            break
        if seg_end:
            seg, idx, prefix = seg + 1, 0, None
            if seg > MAX_PARTS:
                fail("limit_exceeded", "parts")
            key = keys.segment_key(seg)
        else:
            idx += 1
    check_declared(env, sum(map(len, out)))  # GAP 5


# §6.3: segment table -------------------------------------------------------------------


class Segment:
    def __init__(self, number, pt_start, length, ct_start, F, prefix=None):
        self.number, self.pt_start, self.length, self.ct_start = number, pt_start, length, ct_start
        self.frames = max(1, -(-length // F))
        self.ct_len = length + OVERHEAD * self.frames
        self.prefix = prefix


def parse_table(raw, keys):
    """Verify the MAC first (GAP 6), then the structure; returns the segments."""
    if len(raw) < 5 + 32:
        fail("malformed_segment_table", "too short")
    body, mac = raw[:-32], raw[-32:]
    if not hmac.compare_digest(hmac.new(keys.table_mac_key(), body, hashlib.sha256).digest(), mac):
        fail("authentication_failed", "segment table MAC")
    count = u32(body[1:5])
    if body[0] != 1 or not 1 <= count <= MAX_PARTS or len(body) != 5 + TABLE_ENTRY * count:
        fail("malformed_segment_table", "version, count or length")
    segs, last, pt, ct = [], 0, 0, 0
    for i in range(count):
        e = body[5 + TABLE_ENTRY * i : 5 + TABLE_ENTRY * (i + 1)]
        number, length, prefix = u32(e[:4]), u64(e[4:12]), e[12:]
        if not last < number <= MAX_PARTS or (length == 0 and count > 1):
            fail("malformed_segment_table", "part numbers or empty segment")
        if pt + length > MAX_SIZE:
            fail("limit_exceeded", "table total")
        seg = Segment(number, pt, length, ct, keys.env.frame_size, prefix)
        segs.append(seg)
        last, pt, ct = number, pt + length, ct + seg.ct_len
    return segs


# §7: shape and random access -----------------------------------------------------------


def segment_plaintext_len(ct_len, F, sole):
    """§5.2 inverse: plaintext length of one segment of ct_len bytes (GAP 3 for the codes)."""
    if ct_len < OVERHEAD:
        fail("truncated", "segment shorter than one frame")
    full, rem = divmod(ct_len, F + OVERHEAD)
    if rem == 0:
        return full * F
    if rem < OVERHEAD:
        fail("truncated", "final frame shorter than 28 bytes")
    if rem == OVERHEAD and not (sole and full == 0):
        fail("bad_frame_length", "empty frame that is not the sole frame")
    return full * F + rem - OVERHEAD


def shape(env, ct_len, table_segs=None):
    """Segments of an object of ct_len ciphertext bytes, checked against its declared size."""
    F = env.frame_size
    if env.layout == 0:
        segs = [Segment(0, 0, segment_plaintext_len(ct_len, F, True), 0, F)]
    elif env.layout == 1:
        P = env.part_frames * F
        Pc = P + OVERHEAD * env.part_frames
        count = max(1, -(-ct_len // Pc))
        if count > MAX_PARTS:
            fail("limit_exceeded", "parts")
        segs = [Segment(n, (n - 1) * P, P, (n - 1) * Pc, F) for n in range(1, count)]
        last = segment_plaintext_len(ct_len - (count - 1) * Pc, F, count == 1)
        segs.append(Segment(count, (count - 1) * P, last, (count - 1) * Pc, F))
    else:
        if table_segs is None:
            fail("invalid_parameter", "the table layout needs its segment table")
        segs = table_segs
        total = segs[-1].ct_start + segs[-1].ct_len
        if ct_len != total:
            fail("truncated" if ct_len < total else "trailing_data", "table total")
    size = segs[-1].pt_start + segs[-1].length
    if size > MAX_SIZE:
        fail("limit_exceeded", "object size")
    check_declared(env, size)  # GAP 4
    return segs, size


def _locate(segs, F, off):
    k = bisect.bisect_right([s.pt_start for s in segs], off) - 1
    return k, (off - segs[k].pt_start) // F


def _frame_ct_len(seg, i, F):
    return min(F, seg.length - i * F) + OVERHEAD


def map_range(env, ct_len, a, b, table_segs=None, whole=False):
    """§7: (ct_start, ct_end, skip, len, plan) for plaintext [a, b); `whole` reads everything."""
    segs, size = shape(env, ct_len, table_segs)
    F = env.frame_size
    a, b = (0, size) if whole else (max(0, a), min(b, size))
    if a >= b:
        if whole:  # GAP 11: a whole-object read still verifies an empty object's sole frame
            return 0, ct_len, 0, 0, (segs, 0, 0, 0, 0)
        return ct_len, ct_len, 0, 0, None  # GAP 2
    (ka, ia), (kb, ib) = _locate(segs, F, a), _locate(segs, F, b - 1)
    ct_start = segs[ka].ct_start + ia * (F + OVERHEAD)
    ct_end = segs[kb].ct_start + ib * (F + OVERHEAD) + _frame_ct_len(segs[kb], ib, F)
    skip = a - (segs[ka].pt_start + ia * F)
    return ct_start, ct_end, skip, b - a, (segs, ka, ia, kb, ib)


@_releasing
def _ranged(out, env, keys, ct, a, b, table_segs, whole=False):
    """§7: a ranged read; `ct` is the whole object (the fetch is ct[ct_start:ct_end])."""
    ct_start, ct_end, skip, n, plan = map_range(env, len(ct), a, b, table_segs, whole)
    if plan is None:
        return
    segs, ka, ia, kb, ib = plan
    F, pos, done = env.frame_size, ct_start, 0
    for k in range(ka, kb + 1):
        s = segs[k]
        key, prefix = keys.segment_key(s.number), s.prefix
        for i in range(ia if k == ka else 0, (ib if k == kb else s.frames - 1) + 1):
            flen = _frame_ct_len(s, i, F)
            fprefix, findex, flags, pt = open_frame(key, ct[pos : pos + flen])
            pos += flen
            if findex != i:
                fail("frame_out_of_order", "index")
            if prefix is not None and fprefix != prefix:
                fail("frame_out_of_order", "prefix")
            prefix = fprefix
            seg_end, obj_end = check_flags(flags)
            last_seg = i == s.frames - 1
            last_obj = last_seg and k == len(segs) - 1 and env.layout != 2
            if last_obj and not obj_end:
                fail("truncated", "no object end where the shape ends")
            if obj_end and not last_obj:
                fail("bad_frame_flags" if env.layout == 2 else "trailing_data", "early object end")
            if seg_end != last_seg:
                fail("bad_frame_flags", "segment end")
            out.append(pt[max(0, skip - done) : max(0, skip + n - done)])  # keep [skip, skip+n)
            done += len(pt)
    assert pos == ct_end


def decrypt(env, keys, ct, table=None):
    """One-shot read of a whole object: the streaming path of §5.3 for single and parts; the
    table layout's shape is known from its table, so it is read as one range of everything,
    releasing each frame after its checks (§6.3)."""
    if env.layout == 2:
        return decrypt_ranged(env, keys, ct, table)
    return _stream(env, keys, ct)


def decrypt_ranged(env, keys, ct, table=None):
    """The whole object through the range path (the corpus's `ranged_error`, §7)."""
    return _ranged(env, keys, ct, 0, 0, _table_or_none(table, keys), True)


def read_range(env, keys, ct, a, b, table=None):
    return _ranged(env, keys, ct, a, b, _table_or_none(table, keys))


def _table_or_none(table, keys):
    return None if table is None else parse_table(table, keys)


# §11: the previous proxy's single-seal objects ------------------------------------------

_LEGACY_WRAPPED = re.compile(r"[A-Za-z0-9+/]{54}==\Z")


def classify(meta):
    """§11.1: 'legacy', 'isec', 'unreadable' or 'plaintext' from a metadata map."""
    value = meta.get("isec")
    if "s3proxy-format" in meta or (value is not None and _LEGACY_WRAPPED.match(value)):
        return "legacy"
    if value is None:
        return "plaintext"
    try:
        Envelope.from_text(value)
        return "isec"
    except IsecError:
        return "unreadable"


def legacy_decrypt(metadata, secret, body):
    """A legacy single seal: isec = base64(KWP(SHA-256(secret), DEK)), body = one seal."""
    meta = dict(metadata)
    if classify(meta) != "legacy" or "s3proxy-format" in meta:
        fail("malformed_legacy", "not a single-seal legacy object")
    wrapped = base64.b64decode(meta["isec"], validate=True)
    if base64.b64encode(wrapped).decode() != meta["isec"]:
        fail("malformed_legacy", "non-canonical base64")
    if "plaintext-size" in meta:  # GAP 8
        size_text = meta["plaintext-size"]
        if not re.fullmatch(r"0|[1-9][0-9]{0,15}", size_text):
            fail("malformed_legacy", "plaintext-size")
        expected = int(size_text) + OVERHEAD
        if len(body) != expected:
            fail("truncated" if len(body) < expected else "trailing_data", "plaintext-size")
    if len(body) < OVERHEAD:
        fail("truncated")
    try:
        dek = aes_key_unwrap_with_padding(hashlib.sha256(secret.encode("utf-8")).digest(), wrapped)
    except InvalidUnwrap:
        fail("unwrap_failed")
    try:
        return AESGCM(dek).decrypt(body[:12], body[12:], b"")
    except InvalidTag:
        fail("authentication_failed")
