"""Read-only wrapper: reads pass through, every write raises ``ReadOnlyError``.

Used for stores opened for reading (audits, downloads from a shared bucket)
so that no code path can modify them by accident, whatever the credentials
would allow.
"""

from __future__ import annotations

from collections.abc import Iterator

from artifactstore.backends.base import Backend, ObjectInfo, check_key
from artifactstore.errors import ReadOnlyError

__all__ = ["ReadOnlyBackend"]


class ReadOnlyBackend:
    """Wrap ``inner``; refuse ``put``, ``put_if_absent`` and ``delete``."""

    def __init__(self, inner: Backend) -> None:
        """Give read access to ``inner`` only."""
        self._inner = inner

    def __repr__(self) -> str:
        return f"ReadOnlyBackend({self._inner!r})"

    @property
    def inner(self) -> Backend:
        """The wrapped backend."""
        return self._inner

    @property
    def url(self) -> str:
        """The inner backend's url."""
        return self._inner.url

    @property
    def supports_atomic_create(self) -> bool:
        """As the inner backend (no create will succeed through this view)."""
        return self._inner.supports_atomic_create

    @property
    def supports_range(self) -> bool:
        """As the inner backend."""
        return self._inner.supports_range

    def get(self, key: str) -> bytes:
        """``inner.get``."""
        return self._inner.get(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``inner.get_range``."""
        return self._inner.get_range(key, start, length)

    def exists(self, key: str) -> bool:
        """``inner.exists``."""
        return self._inner.exists(key)

    def stat(self, key: str) -> ObjectInfo:
        """``inner.stat``."""
        return self._inner.stat(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        """``inner.list``."""
        return self._inner.list(prefix)

    def put(self, key: str, data: bytes) -> None:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("put", key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("put_if_absent", key)

    def delete(self, key: str) -> None:
        """Always raises ``ReadOnlyError``."""
        raise self._refuse("delete", key)

    def close(self) -> None:
        """Close the inner backend."""
        self._inner.close()

    def _refuse(self, op: str, key: str) -> ReadOnlyError:
        check_key(key)
        return ReadOnlyError(
            f"{op} {key!r} on {self.url}: the store is opened read-only; "
            "open it writable to change it"
        )
