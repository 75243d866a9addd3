"""In-memory backend for tests and scratch stores.

Vocabulary: a *memory store* is a named dict of key -> bytes held in a
process-wide registry, so every ``MemoryBackend("x")`` (and every
``open_backend("memory://x")``) in one process sees the same objects. State is
per process: other processes see nothing. One lock per store makes every
operation, and in particular ``put_if_absent``, atomic between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from artifactstore.backends._keys import check_prefix, check_range
from artifactstore.backends.base import ObjectInfo, check_key
from artifactstore.core.errors import NotFoundError

__all__ = ["MemoryBackend", "drop_memory_store"]


class _Store:
    """The shared state of one named memory store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, bytes] = {}


_REGISTRY: dict[str, _Store] = {}
_REGISTRY_LOCK = threading.Lock()


def _store(name: str) -> _Store:
    with _REGISTRY_LOCK:
        store = _REGISTRY.get(name)
        if store is None:
            store = _REGISTRY[name] = _Store()
        return store


def drop_memory_store(name: str) -> None:
    """Forget the memory store ``name`` and its objects (no error if unknown).

    Backends already open on it keep the old objects; new opens start empty.
    """
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


class MemoryBackend:
    """Objects in a named, process-wide dict; thread-safe and atomic."""

    def __init__(self, name: str = "") -> None:
        """Open the memory store ``name``, creating it empty on first use."""
        self._name = name
        self._store = _store(name)

    def __repr__(self) -> str:
        return f"MemoryBackend({self._name!r})"

    @property
    def url(self) -> str:
        """``memory://<name>``."""
        return f"memory://{self._name}"

    @property
    def supports_atomic_create(self) -> bool:
        """True between threads of one process (the only place the state exists)."""
        return True

    @property
    def supports_range(self) -> bool:
        """True."""
        return True

    def get(self, key: str) -> bytes:
        """Return the whole object. Raises ``NotFoundError`` if absent."""
        check_key(key)
        with self._store.lock:
            data = self._store.objects.get(key)
        if data is None:
            raise self._not_found("get", key)
        return data

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return up to ``length`` bytes from ``start`` (fewer past the end)."""
        check_key(key)
        check_range(start, length)
        with self._store.lock:
            data = self._store.objects.get(key)
        if data is None:
            raise self._not_found("get_range", key)
        return data[start : start + length]

    def put(self, key: str, data: bytes) -> None:
        """Store a copy of ``data`` under ``key``, replacing any object."""
        check_key(key)
        value = bytes(data)
        with self._store.lock:
            self._store.objects[key] = value

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """``put`` of the joined parts (one copy either way)."""
        self.put(key, b"".join(parts))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` unless it exists, under the store lock."""
        check_key(key)
        value = bytes(data)
        with self._store.lock:
            if key in self._store.objects:
                return False
            self._store.objects[key] = value
            return True

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an object."""
        check_key(key)
        with self._store.lock:
            return key in self._store.objects

    def delete(self, key: str) -> None:
        """Remove ``key``; absent keys are ignored."""
        check_key(key)
        with self._store.lock:
            self._store.objects.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield a sorted snapshot of the keys starting with ``prefix``."""
        check_prefix(prefix)
        with self._store.lock:
            keys = [k for k in self._store.objects if k.startswith(prefix)]
        keys.sort()
        return iter(keys)

    def stat(self, key: str) -> ObjectInfo:
        """Size of the object. Raises ``NotFoundError`` if absent."""
        check_key(key)
        with self._store.lock:
            data = self._store.objects.get(key)
        if data is None:
            raise self._not_found("stat", key)
        return ObjectInfo(key=key, size=len(data))

    def close(self) -> None:
        """Nothing to release (the store outlives this handle); idempotent."""

    def _not_found(self, op: str, key: str) -> NotFoundError:
        return NotFoundError(f"{op} {key!r} on {self.url}: no such object; check the key")
