"""The delegating base of backend wrappers (read-only, retry, fault injection).

A wrapper holds an inner ``Backend`` and passes every call through unless it
overrides it; it only adds behaviour, so wrappers compose in any order.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from artifactstore.backends.base import Backend, ObjectInfo, capable, list_after, put_from_file
from artifactstore.backends.temps import TempFile

__all__ = ["BackendWrapper"]


class BackendWrapper:
    """Passes every ``Backend`` call to ``inner``; subclasses override what they change."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._inner!r})"

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
        """As the inner backend."""
        return self._inner.supports_atomic_create

    @property
    def supports_range(self) -> bool:
        """As the inner backend."""
        return self._inner.supports_range

    @property
    def supports_vectored_put(self) -> bool:
        """As the inner backend (False when it does not say)."""
        return capable(self._inner, "supports_vectored_put")

    @property
    def supports_streamed_put(self) -> bool:
        """As the inner backend (False when it does not say)."""
        return capable(self._inner, "supports_streamed_put")

    @property
    def read_only(self) -> bool:
        """Whether writes are refused somewhere down the chain of wrappers."""
        return capable(self._inner, "read_only")

    def get(self, key: str) -> bytes:
        return self._inner.get(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self._inner.get_range(key, start, length)

    def put(self, key: str, data: bytes) -> None:
        self._inner.put(key, data)

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        self._inner.put_parts(key, parts)

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        """As the inner backend (:func:`~.base.put_from_file`)."""
        put_from_file(self._inner, key, file, size)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._inner.put_if_absent(key, data)

    def exists(self, key: str) -> bool:
        return self._inner.exists(key)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._inner.list(prefix)

    def list_after(self, prefix: str, after: str) -> Iterator[str]:
        """``base.list_after`` of the inner backend (its native form when it has one)."""
        return list_after(self._inner, prefix, after)

    def stat(self, key: str) -> ObjectInfo:
        return self._inner.stat(key)

    def temp_files(self) -> builtins.list[TempFile]:
        """As the inner backend; none if it keeps no temp files (see temps.py)."""
        finder = getattr(self._inner, "temp_files", None)
        return [] if finder is None else list(finder())

    def remove_temp(self, temp: TempFile, older_than: float) -> None:
        self._inner.remove_temp(temp, older_than)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the inner backend."""
        self._inner.close()
