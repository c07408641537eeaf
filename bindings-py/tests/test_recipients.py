"""Public-key recipients (SPEC.md §3.5): a writer with only the public key encrypts and can
never read; the private key, here or behind a service, reads; rewrap crosses families."""

from __future__ import annotations

import isec

from .conftest import expect_error


def _writer(public: str) -> isec.Keyring:
    w = isec.Keyring()
    w.add_public_key("uploads", public)
    return w


def test_the_writer_encrypts_and_only_the_private_key_reads() -> None:
    private, public = isec.generate_recipient()
    assert public.startswith("isec-x25519-public:") and private.startswith("isec-x25519-private:")
    assert isec.recipient_public_key(private) == public
    w = _writer(public)
    env, key = w.create_envelope()
    assert env.info().wrap_alg == "hpke-x25519"
    ct = isec.encrypt(key, b"report" * 1000)
    with expect_error("public_key_only") as e:
        w.open(env)
    assert isinstance(e.value, isec.IsecKeyError)
    r = isec.Keyring()
    r.add_private_key("uploads", private, "decrypt_only")
    assert isec.decrypt(r.open(isec.Envelope.decode_text(env.to_text())), ct) == b"report" * 1000
    [info] = r.keys()
    assert (info.kind, info.public_key, info.external) == ("private_key", public, False)
    other, _ = isec.generate_recipient()
    wrong = isec.Keyring()
    wrong.add_private_key("uploads", other)
    with expect_error("unwrap_failed"):
        wrong.open(env)


def test_a_service_holding_the_private_key_opens_through_a_callback() -> None:
    private, public = isec.generate_recipient()
    env, key = _writer(public).create_envelope()
    calls: list[tuple[str, int, bytes]] = []

    class Hsm:
        def unwrap(self, kid: str, wrapped: bytes, info: bytes) -> bytes:
            calls.append((kid, len(wrapped), info[:19]))
            return isec.open_wrapped_dek(private, wrapped, info)

    r = isec.Keyring()
    r.add_external_private_key("uploads", public, Hsm(), "decrypt_only")
    assert r.open(env).frame_size == key.frame_size
    assert calls == [("uploads", 80, b"isec/v1/hpke-x25519")]
    assert r.keys()[0].kind == "external_private_key"

    class Down:
        def unwrap(self, kid: str, wrapped: bytes, info: bytes) -> bytes:
            raise ConnectionError("hsm unreachable")

    d = isec.Keyring()
    d.add_external_private_key("uploads", public, Down(), "decrypt_only")
    with expect_error("external_wrapper_failed") as e:
        d.open(env)
    assert isinstance(e.value.__cause__, ConnectionError)


def test_rewrap_between_a_kek_and_a_recipient_keeps_the_body() -> None:
    private, public = isec.generate_recipient()
    r = isec.Keyring()
    r.add_kek("kek", isec.generate_kek())
    env, key = r.create_envelope()
    ct = isec.encrypt(key, b"x" * 70000)
    r.add_private_key("pk", private)
    to_pk = r.rewrap(env)
    assert (to_pk.kid, to_pk.info().wrap_alg) == ("pk", "hpke-x25519")
    assert isec.decrypt(r.open(to_pk), ct) == b"x" * 70000
    r.set_state("kek", "active")
    back = r.rewrap(to_pk)
    assert (back.kid, back.info().wrap_alg) == ("kek", "aes-kwp")
    assert isec.decrypt(r.open(back), ct) == b"x" * 70000


def test_keyring_text_round_trips_and_refuses_mismatched_keys() -> None:
    private, public = isec.generate_recipient()
    r = isec.Keyring()
    r.add_kek("kek", bytes(range(32)), "decrypt_only")
    r.add_public_key("w", public, "active")
    r.add_private_key("p", private, "decrypt_only")
    again = isec.Keyring.from_text(r.to_text().encode())
    assert again.keys() == r.keys()
    assert [k.kind for k in again.keys()] == ["kek", "public_key", "private_key"]
    with expect_error("invalid_parameter"):
        r.add_public_key("bad", public.replace("public", "private"))
    with expect_error("invalid_parameter"):
        isec.Keyring.from_text(b'{"keys": [{"kid": "p", "private_key": "%s", "public_key": "%s"}]}'
                               % (private.encode(), isec.generate_recipient()[1].encode()))
