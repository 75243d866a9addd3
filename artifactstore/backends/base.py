"""The narrow backend contract every storage location implements.

Vocabulary: a *key* is a relative POSIX string (``packs/ab/ab12…``) under the
backend's root; an *object* is the immutable bytes stored under a key. Keys
never start with ``/``, never contain empty segments, ``.`` or ``..``.

The object store (``artifactstore.objects``) is the only caller. It never sees
an fsspec, botocore or OS type: adapters translate everything here, and raise
only :mod:`artifactstore.core.errors` classes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from artifactstore.core.errors import InvalidInputError

__all__ = ["Backend", "ObjectInfo", "capable", "check_key", "is_key", "iter_range", "list_after",
           "put_from_file"]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored object.

    ``etag`` changes whenever the object's content is replaced (an S3 ETag, a
    GCS generation, a local file's mtime and size); ``version_id`` is the
    store's object version where it keeps versions. Either may be None.
    """

    key: str
    size: int
    etag: str | None = None
    version_id: str | None = None


@runtime_checkable
class Backend(Protocol):
    """Create-only object storage over string keys and bytes.

    Capability flags:

    * ``supports_atomic_create``: ``put_if_absent`` is atomic against other
      processes and machines. A backend without it is refused for multi-writer
      use by the layers above.
    * ``supports_range``: ``get_range`` reads only the requested bytes (it is
      always *correct*; without the flag it may read the whole object).
    """

    @property
    def url(self) -> str:
        """The location, credentials stripped, for messages and cache keys."""
        ...

    @property
    def supports_atomic_create(self) -> bool: ...

    @property
    def supports_range(self) -> bool: ...

    def get(self, key: str) -> bytes:
        """Return the whole object. Raises ``NotFoundError`` if absent."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return ``length`` bytes from ``start``.

        Raises ``NotFoundError`` if absent. A range past the end returns the
        bytes that exist (possibly fewer); callers check lengths.
        """
        ...

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any object there.

        Atomic: a concurrent reader sees either the old object, nothing, or all
        of ``data``, never a prefix.
        """
        ...

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """``put`` of the concatenation of ``parts``, with the same atomicity.

        Why: packs are built from thousands of sealed blobs; a backend that can
        write pieces without joining them (local files, ``os.writev``) saves a
        copy of every pack. Others join them.
        """
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` with ``data`` only if no object exists there.

        Returns True if this call created it, False if an object already
        existed (which is then left untouched). Exactly one of any number of
        concurrent callers gets True, and the object holds the winner's bytes.
        """
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (never a cached answer)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object. Removing an absent key is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every key that starts with ``prefix``, in sorted order.

        ``prefix`` is a key prefix, not necessarily a whole segment. Listings
        are never served from a cache: a key written by another client is seen.
        """
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Size of one object. Raises ``NotFoundError`` if absent."""
        ...

    def close(self) -> None:
        """Release connections and event loops. Idempotent."""
        ...


def check_key(key: str) -> str:
    """Reject keys that could escape the backend root or alias another key.

    Why: keys are joined onto filesystem paths and bucket prefixes; ``..``, an
    absolute path or an empty segment could read or overwrite outside the store.
    """
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidInputError(f"invalid storage key {key!r}: keys are relative POSIX paths")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidInputError(
                f"invalid storage key {key!r}: empty, '.' or '..' segments are not allowed"
            )
    return key


def is_key(name: str) -> bool:
    """Whether ``name`` is a valid key (listings skip names other tools made)."""
    try:
        check_key(name)
    except InvalidInputError:
        return False
    return True


def list_after(backend: Backend, prefix: str, after: str) -> Iterator[str]:
    """The keys ``backend.list(prefix)`` yields that sort after ``after``, in order.

    An optional capability, not part of the contract: a backend (or wrapper) with a
    ``list_after(prefix, after)`` method answers it itself, S3 with ``StartAfter`` (one
    request for a short tail of a long prefix); any other backend lists the prefix and
    filters. Used for the change journal (design §12.8).
    """
    native = getattr(backend, "list_after", None)
    if native is not None:
        found: Iterator[str] = native(prefix, after)
        return found
    return (key for key in backend.list(prefix) if key > after)


def capable(backend: Backend, flag: str) -> bool:
    """An optional capability flag, False where the backend does not say.

    The flags beside the contract's two: ``supports_vectored_put`` (``put_parts``
    writes the parts without joining them: local files, ``os.writev``),
    ``supports_streamed_put`` (the same over HTTP: S3) and ``read_only`` (writes
    are refused somewhere down a chain of wrappers).
    """
    return bool(getattr(backend, flag, False))


def put_from_file(backend: Backend, key: str, file: BinaryIO, size: int) -> None:
    """``backend.put(key, …)`` of bytes ``0 .. size`` of the seekable ``file``.

    An optional capability, not part of the contract: a backend (or wrapper) with a
    ``put_file(key, file, size)`` method sends the object from the file, which it
    may read more than once (the fsspec backends; S3's body is streamed, not held);
    any other is given the bytes, read with ``pread``. Used for packs spooled to a
    temporary file.
    """
    native = getattr(backend, "put_file", None)
    if native is not None:
        native(key, file, size)
    else:
        backend.put(key, os.pread(file.fileno(), size, 0))


def iter_range(backend: Backend, key: str, start: int, length: int) -> Iterator[bytes]:
    """``backend.get_range(key, start, length)`` in pieces, in order, as they arrive.

    An optional capability, not part of the contract: a backend (or wrapper) with an
    ``iter_range(key, start, length)`` method answers it itself, S3 by reading the
    body of one ranged GET about a MiB at a time (the caller holds a piece, not the
    range, and the HTTP client never joins the whole body); any other backend yields
    ``get_range``'s bytes as one piece, read when the first piece is asked for. The
    pieces joined are what ``get_range`` returns, or a prefix of it when the stream
    breaks: the caller checks lengths. Used by the object store's remote reads.
    """
    native = getattr(backend, "iter_range", None)
    if native is not None:
        pieces: Iterator[bytes] = native(key, start, length)
        return pieces
    return _whole(backend, key, start, length)


def _whole(backend: Backend, key: str, start: int, length: int) -> Iterator[bytes]:
    yield backend.get_range(key, start, length)
