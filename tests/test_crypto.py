"""The crypto layer against the external AEAD vectors, and its own properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vectors import load_json

from artifactstore.core.crypto import (
    Algorithm,
    ObjectCipher,
    SigningKey,
    aead_decrypt,
    aead_encrypt,
    generate_key,
    unwrap_key,
    unwrap_with_passphrase,
    verify_signature,
    wrap_key,
    wrap_with_passphrase,
    x25519_keypair,
)
from artifactstore.core.errors import IntegrityError, InvalidInputError
from artifactstore.testing.keys import CHEAP_SCRYPT

AEAD = load_json("aead_vectors.json")


def _bytes(case: dict[str, Any], name: str) -> bytes:
    return bytes.fromhex(case[name] or "")


@pytest.mark.parametrize("case", AEAD["aes_gcm_encrypt"],
                         ids=lambda c: f"{c['file']}-{c['count']}")
def test_aes_gcm_encrypt_vectors(case: dict[str, Any]) -> None:
    sealed = aead_encrypt("aes-gcm", _bytes(case, "key"), _bytes(case, "nonce"),
                          _bytes(case, "plaintext"), _bytes(case, "aad"))
    assert sealed == _bytes(case, "ciphertext") + _bytes(case, "tag")


@pytest.mark.parametrize("case", AEAD["aes_gcm_decrypt"] + AEAD["chacha20poly1305"],
                         ids=lambda c: f"{c['file']}-{c['count']}")
def test_decrypt_vectors_including_must_fail_cases(case: dict[str, Any]) -> None:
    algorithm: Algorithm = "chacha20-poly1305" if case["file"].endswith(".txt") else "aes-gcm"
    sealed = _bytes(case, "ciphertext") + _bytes(case, "tag")
    args = (algorithm, _bytes(case, "key"), _bytes(case, "nonce"), sealed, _bytes(case, "aad"))
    if case.get("valid", True):
        assert aead_decrypt(*args) == _bytes(case, "plaintext")
        if algorithm == "chacha20-poly1305":
            assert aead_encrypt(algorithm, _bytes(case, "key"), _bytes(case, "nonce"),
                                _bytes(case, "plaintext"), _bytes(case, "aad")) == sealed
    else:
        with pytest.raises(IntegrityError, match="failed authentication"):
            aead_decrypt(*args)


def test_the_vector_file_has_must_fail_cases() -> None:
    assert sum(not c["valid"] for c in AEAD["aes_gcm_decrypt"]) == 75
    assert sum(not c.get("valid", True) for c in AEAD["chacha20poly1305"]) == 1


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown AEAD"):
        aead_encrypt("des", bytes(32), bytes(12), b"", b"")  # type: ignore[arg-type]


@given(st.binary(max_size=2048), st.binary(min_size=1, max_size=64), st.binary(max_size=64))
def test_object_cipher_round_trips_and_binds_salt_and_aad(plaintext: bytes, salt: bytes,
                                                          aad: bytes) -> None:
    cipher = ObjectCipher(bytes(range(32)))
    sealed = cipher.seal(salt, plaintext, aad)
    assert len(sealed) == len(plaintext) + 16
    assert cipher.open(salt, sealed, aad, what="x") == plaintext
    with pytest.raises(IntegrityError, match="x failed authentication"):
        cipher.open(salt + b"!", sealed, aad, what="x")
    with pytest.raises(IntegrityError):
        cipher.open(salt, sealed, aad + b"!", what="x")
    with pytest.raises(IntegrityError):
        ObjectCipher(bytes(32)).open(salt, sealed, aad, what="x")


def test_every_flipped_byte_is_detected() -> None:
    cipher = ObjectCipher(generate_key())
    sealed = cipher.seal(b"salt", b"secret model weights", b"header")
    for i in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[i] ^= 0x01
        with pytest.raises(IntegrityError):
            cipher.open(b"salt", bytes(damaged), b"header", what="blob")


def test_key_wrap_reaches_only_its_recipient() -> None:
    alice_private, alice_public = x25519_keypair()
    bob_private, _ = x25519_keypair()
    key = generate_key()
    wrapped = wrap_key(alice_public, key)
    assert unwrap_key(alice_private, wrapped) == key
    assert unwrap_key(bob_private, wrapped) is None
    # Flip a bit: overwriting the last byte with 0 left it unchanged once in 256 runs.
    tampered = type(wrapped)(wrapped.ephemeral,
                             wrapped.sealed[:-1] + bytes([wrapped.sealed[-1] ^ 1]))
    assert unwrap_key(alice_private, tampered) is None
    assert wrap_key(alice_public, key) != wrapped  # a fresh ephemeral key each time


def test_passphrase_slot() -> None:
    key = generate_key()
    params, salt, sealed = wrap_with_passphrase("correct horse", key, CHEAP_SCRYPT)
    assert unwrap_with_passphrase("correct horse", params, salt, sealed) == key
    assert unwrap_with_passphrase("wrong horse", params, salt, sealed) is None
    with pytest.raises(InvalidInputError, match="passphrase is empty"):
        wrap_with_passphrase("", key, CHEAP_SCRYPT)


def test_signatures_are_bound_to_purpose_and_signer() -> None:
    signer, other = SigningKey.generate(), SigningKey.generate()
    signature = signer.sign(b"version", b"record bytes")
    assert verify_signature(signer.public_bytes, b"version", b"record bytes", signature)
    assert not verify_signature(signer.public_bytes, b"alias", b"record bytes", signature)
    assert not verify_signature(signer.public_bytes, b"version", b"record byteZ", signature)
    assert not verify_signature(other.public_bytes, b"version", b"record bytes", signature)
    assert not verify_signature(b"short", b"version", b"record bytes", signature)
    assert SigningKey(signer.private_bytes).public_bytes == signer.public_bytes
