"""A local copy of create-only objects: read once from the backend, then from disk.

Wraps a backend; ``get`` of a key the caller marks *immutable* (created once with
``put_if_absent`` and never changed, such as a project's record, member events,
key epochs and key slots) is answered from ``<folder>/<key>`` after the first
read. The copy is an accelerator only, and what it returns is checked by the
reader exactly like the original (those objects are signed): a damaged or
planted file is no worse than a damaged object. Every other call passes through.

An object that is create-only *with one exception* can be cached too, when its
bytes tell whether the exception may have applied since: ``usable(key, data)``
decides whether a local copy still stands for the stored object (a version record
stays as written while it is sealed under the project's current key epoch; only
re-encryption, after a new epoch, rewrites one). A copy it refuses is read again.
``put`` and ``delete`` through this wrapper drop the local copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.base import Backend, check_key
from artifactstore.core.privatefiles import write_private_file

__all__ = ["ImmutableCacheBackend"]


class ImmutableCacheBackend(BackendWrapper):
    """See the module docstring."""

    def __init__(self, inner: Backend, folder: Path, immutable: Callable[[str], bool],
                 usable: Callable[[str, bytes], bool] | None = None) -> None:
        super().__init__(inner)
        self._folder = folder
        self._immutable = immutable
        self._usable = usable

    def get(self, key: str) -> bytes:
        check_key(key)
        if not self._immutable(key):
            return super().get(key)
        path = self._folder / key
        try:
            copy: bytes | None = path.read_bytes()
        except OSError:  # no copy (or an unreadable one): read the object
            copy = None
        if copy is not None and (self._usable is None or self._usable(key, copy)):
            return copy
        data = super().get(key)
        self._keep(path, data, self._folder)
        return data

    def put(self, key: str, data: bytes) -> None:
        self._drop(key)
        super().put(key, data)

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        self._drop(key)
        super().put_parts(key, parts)

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        self._drop(key)
        super().put_file(key, file, size)

    def delete(self, key: str) -> None:
        self._drop(key)
        super().delete(key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key``; when this call created it, keep the local copy too."""
        created = super().put_if_absent(key, data)
        if created and self._immutable(key):
            self._keep(self._folder / key, data, self._folder)
        return created

    def _drop(self, key: str) -> None:
        check_key(key)
        if self._immutable(key):
            with contextlib.suppress(OSError):  # absent, or a read-only cache
                (self._folder / key).unlink()

    @staticmethod
    def _keep(path: Path, data: bytes, root: Path) -> None:
        with contextlib.suppress(OSError):  # cannot cache: read it again next time
            write_private_file(path, data, root=root)
