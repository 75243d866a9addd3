"""Cryptographic building blocks for private projects (docs/design.md §13, docs/security.md).

Vocabulary:

- **AEAD**: authenticated encryption with associated data. Two are exposed for
  the reference vectors, ``aes-256-gcm`` (used for stored objects: AES-NI makes
  it the fastest here) and ``chacha20-poly1305`` (used to wrap keys).
  Authentication failures are :class:`~artifactstore.core.errors.IntegrityError`.
- **object cipher**: encrypts one stored object under a *subkey* derived from
  the project's data key and a per-object *salt* (the blob id and kind for
  content-addressed blobs, 32 random bytes otherwise). A subkey encrypts one
  plaintext only, so the all-zero nonce is safe and no nonce is stored; the
  associated data binds the envelope header and the object's id or key.
- **key wrap**: age-like. To give a 32-byte key to an X25519 public key: an
  ephemeral X25519 pair, HKDF-SHA256 over the shared secret (salt = ephemeral
  public || recipient public), ChaCha20-Poly1305 with a zero nonce (the wrap
  key is used once). A passphrase slot uses scrypt with recorded parameters.
- **signature**: Ed25519 over a domain-separated message.

Nothing here does I/O; every secret is ``bytes`` passed in by the caller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from artifactstore.core.digest import KEY_SIZE, derive_key, hash_bytes
from artifactstore.core.errors import IntegrityError, InvalidInputError

__all__ = [
    "KEY_SIZE", "TAG_SIZE", "ObjectCipher", "ScryptParams", "SigningKey", "WrappedKey",
    "aead_decrypt", "aead_encrypt", "generate_key", "identity_fingerprint", "sign", "unwrap_key",
    "unwrap_with_passphrase", "verify_signature", "wrap_key", "wrap_with_passphrase",
    "x25519_keypair", "x25519_public",
]  # fmt: skip

Algorithm = Literal["aes-256-gcm", "aes-gcm", "chacha20-poly1305"]
TAG_SIZE: Final = 16
NONCE_SIZE: Final = 12
SALT_SIZE: Final = 32
_ZERO_NONCE: Final = bytes(NONCE_SIZE)
_SUBKEY_CONTEXT: Final = "artifactstore 2026-11-26 object subkey v1"
_WRAP_INFO: Final = b"artifactstore 2026-11-26 x25519 key wrap v1"
_SIGN_DOMAIN: Final = b"artifactstore signature v1\x00"


def identity_fingerprint(x25519_public: bytes, ed25519_public: bytes) -> str:
    """32 hex chars naming an identity's two public keys (its key slots are filed under it)."""
    return hash_bytes(b"artifactstore identity v1" + x25519_public + ed25519_public).raw[:16].hex()


def generate_key() -> bytes:
    """32 random bytes from the operating system."""
    return os.urandom(KEY_SIZE)


# -- AEAD --------------------------------------------------------------------------------


def _cipher(algorithm: str, key: bytes) -> AESGCM | ChaCha20Poly1305:
    if algorithm in ("aes-256-gcm", "aes-gcm"):
        if algorithm == "aes-256-gcm" and len(key) != 32:
            raise InvalidInputError("aes-256-gcm needs a 32-byte key")
        return AESGCM(key)
    if algorithm == "chacha20-poly1305":
        return ChaCha20Poly1305(key)
    raise InvalidInputError(f"unknown AEAD {algorithm!r}: use aes-256-gcm or chacha20-poly1305")


def aead_encrypt(algorithm: Algorithm, key: bytes, nonce: bytes, plaintext: bytes,
                 aad: bytes) -> bytes:
    """``ciphertext || tag``."""
    return _cipher(algorithm, key).encrypt(nonce, plaintext, aad)


def aead_decrypt(algorithm: Algorithm, key: bytes, nonce: bytes, sealed: bytes, aad: bytes,
                 *, what: str = "object") -> bytes:
    """The plaintext; IntegrityError naming ``what`` when the tag does not verify."""
    try:
        return _cipher(algorithm, key).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise IntegrityError(
            f"{what} failed authentication: it was altered, moved, or is not readable with "
            "this key; run 'artifactstore verify'"
        ) from None


# -- per-object encryption ---------------------------------------------------------------


class ObjectCipher:
    """Encrypts stored objects under subkeys of one data key (see the module docstring)."""

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != KEY_SIZE:
            raise InvalidInputError(f"a data key is {KEY_SIZE} bytes")
        self._key = data_key

    def _subkey(self, salt: bytes) -> AESGCM:
        return AESGCM(derive_key(_SUBKEY_CONTEXT, self._key + salt))

    def seal(self, salt: bytes, plaintext: bytes | memoryview, aad: bytes) -> bytes:
        """``ciphertext || tag`` under the subkey for ``salt``; one plaintext per salt."""
        return self._subkey(salt).encrypt(_ZERO_NONCE, plaintext, aad)

    def open(self, salt: bytes, sealed: bytes | memoryview, aad: bytes, *, what: str) -> bytes:
        try:
            return self._subkey(salt).decrypt(_ZERO_NONCE, sealed, aad)
        except InvalidTag:
            raise _failed(what) from None

    def open_into(self, salt: bytes, sealed: bytes | memoryview, aad: bytes, out: memoryview,
                  *, what: str) -> None:
        """:meth:`open` into ``out`` (exactly ``len(sealed) - 16`` bytes), not a new buffer.
        Nothing in ``out`` may be used unless this returned: on a failed tag its bytes are
        unauthenticated."""
        try:
            self._subkey(salt).decrypt_into(_ZERO_NONCE, sealed, aad, out)
        except InvalidTag:
            raise _failed(what) from None


def _failed(what: str) -> IntegrityError:
    return IntegrityError(f"{what} failed authentication: it was altered, moved, or belongs "
                          "to another key; run 'artifactstore verify'")


# -- key wrapping ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A 32-byte key encrypted for one X25519 recipient."""

    ephemeral: bytes  # 32-byte X25519 public key
    sealed: bytes  # 48 bytes: ciphertext || tag


def x25519_keypair() -> tuple[bytes, bytes]:
    """``(private, public)`` raw 32-byte X25519 keys."""
    private = X25519PrivateKey.generate()
    return _raw_private(private), private.public_key().public_bytes_raw()


def x25519_public(private: bytes) -> bytes:
    """The public key of a raw 32-byte X25519 private key."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _raw_private(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    # here: cryptography's serialization (its SSH formats) costs ~10 ms to import, and
    # reading a store never makes a key
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def _wrap_key_for(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
                info=_WRAP_INFO).derive(shared)


def wrap_key(recipient_public: bytes, key: bytes) -> WrappedKey:
    """Encrypt ``key`` so that only the holder of ``recipient_public``'s private key reads it."""
    recipient = X25519PublicKey.from_public_bytes(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    wrap = _wrap_key_for(ephemeral.exchange(recipient), ephemeral_public, recipient_public)
    return WrappedKey(ephemeral_public, ChaCha20Poly1305(wrap).encrypt(_ZERO_NONCE, key, b""))


def unwrap_key(private: bytes, wrapped: WrappedKey) -> bytes | None:
    """The key, or None when ``wrapped`` is not for this identity (or was altered)."""
    me = X25519PrivateKey.from_private_bytes(private)
    mine = me.public_key().public_bytes_raw()
    try:
        shared = me.exchange(X25519PublicKey.from_public_bytes(wrapped.ephemeral))
        wrap = _wrap_key_for(shared, wrapped.ephemeral, mine)
        return ChaCha20Poly1305(wrap).decrypt(_ZERO_NONCE, wrapped.sealed, b"")
    except (InvalidTag, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost; recorded next to what it protects so it can change later."""

    log_n: int = 17  # N = 2**17, 128 MiB of memory with r = 8
    r: int = 8
    p: int = 1

    def derive(self, passphrase: str, salt: bytes) -> bytes:
        if not passphrase:
            raise InvalidInputError("the passphrase is empty; choose a non-empty passphrase")
        kdf = Scrypt(salt=salt, length=32, n=2**self.log_n, r=self.r, p=self.p)
        return kdf.derive(passphrase.encode("utf-8"))


def wrap_with_passphrase(passphrase: str, key: bytes,
                         params: ScryptParams | None = None) -> tuple[ScryptParams, bytes, bytes]:
    """``(params, salt, sealed)``: ``key`` encrypted under a passphrase."""
    params = params or ScryptParams()
    salt = os.urandom(SALT_SIZE)
    wrap = params.derive(passphrase, salt)
    return params, salt, ChaCha20Poly1305(wrap).encrypt(_ZERO_NONCE, key, salt)


def unwrap_with_passphrase(passphrase: str, params: ScryptParams, salt: bytes,
                           sealed: bytes) -> bytes | None:
    """The key, or None for a wrong passphrase."""
    wrap = params.derive(passphrase, salt)
    try:
        return ChaCha20Poly1305(wrap).decrypt(_ZERO_NONCE, sealed, salt)
    except InvalidTag:
        return None


# -- signatures --------------------------------------------------------------------------


class SigningKey:
    """An Ed25519 private key."""

    def __init__(self, private: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(private)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(_raw_private(Ed25519PrivateKey.generate()))

    @property
    def private_bytes(self) -> bytes:
        return _raw_private(self._key)

    @property
    def public_bytes(self) -> bytes:
        return self._key.public_key().public_bytes_raw()

    def sign(self, purpose: bytes, message: bytes) -> bytes:
        return self._key.sign(_signed(purpose, message))


def _signed(purpose: bytes, message: bytes) -> bytes:
    # Domain separation: a signature made for one kind of record never verifies as another.
    return _SIGN_DOMAIN + len(purpose).to_bytes(2, "big") + purpose + message


def sign(private: bytes, purpose: bytes, message: bytes) -> bytes:
    return SigningKey(private).sign(purpose, message)


def verify_signature(public: bytes, purpose: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, _signed(purpose, message))
    except (InvalidSignature, ValueError):
        return False
    return True
