"""The backend of a store that does not exist yet (docs/design.md §3, "Creating a store").

Vocabulary: an *absent* store is one whose location holds no store: no folder, or no
config. ``artifactstore.open`` hands a pending ``Store`` this backend until its first
write creates the store, so a read answers ``StoreNotFoundError`` and a write that
skipped the creation step fails the same way instead of writing anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NoReturn

from artifactstore.backends.base import ObjectInfo
from artifactstore.core.errors import StoreNotFoundError

__all__ = ["AbsentBackend"]


class AbsentBackend:
    """Every call but ``close`` raises ``StoreNotFoundError`` naming ``url``."""

    def __init__(self, url: str) -> None:
        self._url = url

    def __repr__(self) -> str:
        return f"AbsentBackend({self._url!r})"

    @property
    def url(self) -> str:
        """The location as the user named it."""
        return self._url

    @property
    def supports_atomic_create(self) -> bool:
        """True: nothing is ever written through it, so nothing can race."""
        return True

    @property
    def supports_range(self) -> bool:
        """True (every read fails anyway)."""
        return True

    def _missing(self) -> NoReturn:
        raise StoreNotFoundError.at(self._url)

    def get(self, key: str) -> bytes:
        self._missing()

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self._missing()

    def put(self, key: str, data: bytes) -> None:
        self._missing()

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        self._missing()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._missing()

    def exists(self, key: str) -> bool:
        self._missing()

    def delete(self, key: str) -> None:
        self._missing()

    def list(self, prefix: str = "") -> Iterator[str]:
        self._missing()

    def stat(self, key: str) -> ObjectInfo:
        self._missing()

    def close(self) -> None:
        """Nothing to release."""
