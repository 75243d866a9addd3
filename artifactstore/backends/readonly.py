"""Read-only wrapper: reads pass through, every write raises ``ReadOnlyError``.

Used for stores opened for reading (audits, downloads from a shared bucket)
so that no code path can modify them by accident, whatever the credentials
would allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.base import Backend, check_key
from artifactstore.backends.temps import TempFile
from artifactstore.core.errors import ReadOnlyError

__all__ = ["ReadOnlyBackend"]


class ReadOnlyBackend(BackendWrapper):
    """Wrap ``inner``; refuse ``put``, ``put_if_absent`` and ``delete``.

    ``reason`` replaces the end of the refusal message: why this view is read-only
    and what to do (a project not created yet says how to create it).
    """

    def __init__(self, inner: Backend, *, reason: str | None = None) -> None:
        super().__init__(inner)
        self._reason = reason or "the store is opened read-only; open it writable to change it"

    @property
    def read_only(self) -> bool:
        """Always True."""
        return True

    def put(self, key: str, data: bytes) -> None:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("put", key)

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("put", key)

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("put", key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("put_if_absent", key)

    def delete(self, key: str) -> None:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("delete", key)

    def remove_temp(self, temp: TempFile, older_than: float) -> None:
        """Always raises ``ReadOnlyError``."""
        raise ReadOnlyError(f"delete {temp.path!r} on {self.url}: {self._reason}")

    def _refuse(self, op: str, key: str) -> ReadOnlyError:
        check_key(key)
        return ReadOnlyError(f"{op} {key!r} on {self.url}: {self._reason}")
