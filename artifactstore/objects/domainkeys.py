"""Keys of an encrypted key domain (docs/design.md §13.3).

Vocabulary: a **key domain** is the set of blobs that may deduplicate against
each other. A private project's epoch key (32 random bytes, §13.2) defines one:
its **key id** names it (16 bytes, stored in every encrypted envelope and used
as the domain's folder name), its **id key** makes blob ids keyed BLAKE3 (ids do
not reveal plaintext hashes), and its **data key** encrypts objects
(:class:`artifactstore.core.crypto.ObjectCipher`). All three are derived from the
epoch key with BLAKE3 ``derive_key``, one context string per purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from artifactstore.core.crypto import ObjectCipher
from artifactstore.core.digest import KEY_SIZE, derive_key
from artifactstore.core.errors import InvalidInputError

__all__ = ["KEY_ID_SIZE", "DomainKeys"]

KEY_ID_SIZE: Final = 16
_KEY_ID: Final = "artifactstore 2026-11-26 key id v1"
_ID_KEY: Final = "artifactstore 2026-11-26 blob id key v1"
_DATA_KEY: Final = "artifactstore 2026-11-26 data key v1"


@dataclass(frozen=True, slots=True)
class DomainKeys:
    """What an object store needs to write and read one encrypted domain."""

    key_id: bytes
    id_key: bytes = field(repr=False)
    cipher: ObjectCipher = field(repr=False, compare=False)

    @classmethod
    def from_epoch_key(cls, epoch_key: bytes) -> DomainKeys:
        if not isinstance(epoch_key, bytes) or len(epoch_key) != KEY_SIZE:
            raise InvalidInputError(f"an epoch key is {KEY_SIZE} bytes")
        return cls(
            key_id=derive_key(_KEY_ID, epoch_key)[:KEY_ID_SIZE],
            id_key=derive_key(_ID_KEY, epoch_key),
            cipher=ObjectCipher(derive_key(_DATA_KEY, epoch_key)),
        )

    @property
    def domain(self) -> str:
        """The domain's name in keys: the key id in hex."""
        return self.key_id.hex()
