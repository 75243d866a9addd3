"""How refs are sealed: signed, and encrypted in private projects (docs/design.md §13.3).

Vocabulary:

- **record codec**: turns a ref's body (a map) into the bytes stored at its key
  and back. The plain codec stores the canonical msgpack body as before; with a
  **signer** the payload is ``{"body": bytes, "signer": ed25519 public, "sig"}``
  where the signature covers the kind, the key and the body (a signed record
  moved to another key no longer verifies); with a **key ring** the envelope is
  encrypted under the ring's current epoch and bound to the key.
- **key ring**: the epoch keys of a private project this identity can open, by
  key id, plus the project's **name key**.
- **segment**: what stands for an artifact or alias name in keys: the name
  itself, or in a private project ``n-`` and 32 hex of its keyed BLAKE3, so keys
  do not reveal names (readers take names from the decrypted records).
- **signature state**: ``valid``, ``invalid`` (present but wrong) or
  ``unsigned``; reads return it and audits judge it (who may sign is a project
  question, not a codec one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from artifactstore.core import encoding
from artifactstore.core.crypto import SigningKey, verify_signature
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import AccessDeniedError, ArtifactStoreError, IntegrityError
from artifactstore.objects.domainkeys import KEY_ID_SIZE, DomainKeys
from artifactstore.objects.envelope import FLAG_ENCRYPTED, HEADER_SIZE, Kind, open_envelope, seal

__all__ = ["PLAIN", "KeyRing", "RecordCodec", "Signature", "reseal", "sealed_as_current",
           "sealing_key_id"]

SignatureState = Literal["valid", "invalid", "unsigned"]
_SIGNED_KEYS: Final = frozenset({"body", "signer", "sig"})
_TAG_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class Signature:
    """Who signed a record, and whether the signature verifies."""

    state: SignatureState
    signer: bytes | None = None  # Ed25519 public key
    #: the key id the record was encrypted under (None: plaintext); tells readers
    #: which key domain holds the version's blobs
    key_id: bytes | None = None

    @property
    def signer_hex(self) -> str | None:
        return None if self.signer is None else self.signer.hex()


UNSIGNED: Final = Signature("unsigned")


class KeyRing:
    """The epoch keys of one private project that this identity holds."""

    def __init__(self, epochs: Mapping[int, DomainKeys], name_key: bytes, *,
                 writable: bool = True) -> None:
        if not epochs:
            raise AccessDeniedError("no key epoch of this project can be opened")
        #: False when this identity lacks the newest epoch (it was removed)
        self.writable = writable
        self._epochs = dict(epochs)
        self._by_id = {keys.key_id: keys for keys in self._epochs.values()}
        self.name_key = name_key

    @property
    def current(self) -> DomainKeys:
        """The newest epoch: new data is encrypted under it."""
        return self._epochs[max(self._epochs)]

    @property
    def epochs(self) -> dict[int, DomainKeys]:
        return dict(self._epochs)

    def for_key_id(self, key_id: bytes) -> DomainKeys | None:
        return self._by_id.get(key_id)


class RecordCodec:
    """Seals and opens refs; see the module docstring."""

    def __init__(self, *, signer: SigningKey | None = None, ring: KeyRing | None = None,
                 refusal: ArtifactStoreError | None = None) -> None:
        self.signer = signer
        self.ring = ring
        #: why this process must not write into the project (not a member, a record
        #: that contradicts the rest, ...); every seal raises it (docs/security.md)
        self.refusal = refusal

    def check_writable(self) -> None:
        """Raise why this process may not write into the project, if it may not.

        Writers call it before uploading anything, so a refused write leaves no bytes
        in the store; :meth:`seal` calls it again as the last line of defence.
        """
        if self.refusal is not None:
            raise self.refusal
        if self.ring is not None and not self.ring.writable:
            raise AccessDeniedError(
                "this identity was removed from the project: it can read what was "
                "shared before, not write; ask a member to add it again"
            )

    @property
    def encrypted(self) -> bool:
        return self.ring is not None

    @property
    def own_signature(self) -> Signature:
        """The signature state of records this codec writes."""
        key_id = None if self.ring is None else self.ring.current.key_id
        if self.signer is None:
            return Signature("unsigned", None, key_id)
        return Signature("valid", self.signer.public_bytes, key_id)

    def segment(self, name: str) -> str:
        """The key segment standing for artifact or alias ``name``."""
        if self.ring is None:
            return name
        return "n-" + hash_bytes(name.encode(), key=self.ring.name_key).raw[:_TAG_BYTES].hex()

    def seal(self, kind: Kind, key: str, body: Mapping[str, Any]) -> bytes:
        self.check_writable()
        payload = encoding.pack(dict(body))
        if self.signer is not None:
            payload = encoding.pack({
                "body": payload, "signer": self.signer.public_bytes,
                "sig": self.signer.sign(_purpose(kind, key), payload),
            })  # fmt: skip
        keys = None if self.ring is None else self.ring.current
        return seal(kind, payload, keys=keys, binding=key.encode())

    def open(self, kind: Kind, key: str, data: bytes, *,
             verified: bytes | None = None) -> tuple[Any, Signature]:
        """The decoded body and its signature state; errors name ``key``.

        ``verified``: the signer :meth:`check` found valid for these very bytes under this
        kind and key (records/bundles.py): that signature is not verified again.
        """
        decoded, key_id, what = self._outer(kind, key, data)
        if not (isinstance(decoded, dict) and decoded.keys() == _SIGNED_KEYS):
            return decoded, Signature("unsigned", None, key_id)
        body, signer, sig = self._signed_fields(decoded, what)
        ok = (verified is not None and verified == signer) or verify_signature(
            signer, _purpose(kind, key), body, sig)
        state: SignatureState = "valid" if ok else "invalid"
        return encoding.unpack(body, what=what), Signature(state, signer, key_id)

    def check(self, kind: Kind, key: str, data: bytes) -> Signature:
        """The signature state of a stored record, its body left undecoded (errors as
        :meth:`open`)."""
        decoded, key_id, what = self._outer(kind, key, data)
        if not (isinstance(decoded, dict) and decoded.keys() == _SIGNED_KEYS):
            return Signature("unsigned", None, key_id)
        body, signer, sig = self._signed_fields(decoded, what)
        ok = verify_signature(signer, _purpose(kind, key), body, sig)
        return Signature("valid" if ok else "invalid", signer, key_id)

    @staticmethod
    def _signed_fields(decoded: dict[str, Any], what: str) -> tuple[bytes, bytes, bytes]:
        body, signer, sig = decoded["body"], decoded["signer"], decoded["sig"]
        if not (isinstance(body, bytes) and isinstance(signer, bytes)
                and isinstance(sig, bytes)):
            raise IntegrityError(f"{what} is malformed: bad signature fields")
        return body, signer, sig

    def _outer(self, kind: Kind, key: str, data: bytes) -> tuple[Any, bytes | None, str]:
        """The envelope opened and its payload decoded (a signed record's outer map)."""
        what = f"ref {key}"
        keys = None
        if self.ring is not None:
            keys = self.ring.current  # a plaintext record is then refused as planted
            sealed_by = sealing_key_id(data)
            if sealed_by is not None:
                found = self.ring.for_key_id(sealed_by)
                if found is None:
                    raise AccessDeniedError(
                        f"{what} is encrypted under a key epoch this identity does not hold; "
                        "ask a project member to run 'artifactstore project members add'"
                    )
                keys = found
        _, plaintext = open_envelope(data, expected_kind=kind, raw_length=None, what=what,
                                     keys=keys, binding=key.encode())
        decoded = encoding.unpack(plaintext, what=what)
        return decoded, None if keys is None else keys.key_id, what


def reseal(codec: RecordCodec, key: str, data: bytes) -> bytes | None:
    """``data`` (a ref stored at ``key``) encrypted under ``codec``'s current epoch with
    its payload unchanged, so its signature still verifies; None when it already is
    (or is a plaintext ref). For ``project rekey --reencrypt`` (design §13.4)."""
    ring = codec.ring
    key_id = sealing_key_id(data)
    if ring is None or key_id is None:
        return None
    if key_id == ring.current.key_id:
        return None
    keys = ring.for_key_id(key_id)
    if keys is None:
        raise AccessDeniedError(f"ref {key} is encrypted under a key epoch this identity "
                                "does not hold; a member holding every epoch must rekey")
    kind = Kind(data[5])
    _, payload = open_envelope(data, expected_kind=kind, raw_length=None, what=f"ref {key}",
                               keys=keys, binding=key.encode())
    return seal(kind, payload, keys=ring.current, binding=key.encode())


def sealed_as_current(codec: RecordCodec, data: bytes) -> bool:
    """Whether ``data`` (a stored ref) is sealed the way ``codec`` seals now: in plain
    for a public project, else under the current key epoch. Such a ref is not
    rewritten until a new epoch exists (re-encryption rewrites only the others)."""
    key_id = sealing_key_id(data)
    if codec.ring is None:
        return key_id is None
    return key_id == codec.ring.current.key_id


def sealing_key_id(data: bytes) -> bytes | None:
    """The id of the key epoch that encrypted ``data`` (a stored ref); None in plain."""
    if len(data) <= HEADER_SIZE + KEY_ID_SIZE or not data[6] & FLAG_ENCRYPTED:
        return None
    return bytes(data[HEADER_SIZE:HEADER_SIZE + KEY_ID_SIZE])


def _purpose(kind: Kind, key: str) -> bytes:
    return f"{kind.name}\x00{key}".encode()


PLAIN: Final = RecordCodec()
