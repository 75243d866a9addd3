"""The content digest of a version: its identity from its files alone (docs/design.md §11.1).

Vocabulary: a version's *content digest* is plain BLAKE3-256 of its *listing*,
a byte string that names every entry by path, permission bits and plain BLAKE3
of its bytes (a reference by its path, URI and digest when known). Nothing in
it depends on the store, the project, its visibility or key, the chunking or
the tree layout, so the same files logged anywhere give the same digest, and a
third party recomputes it with ``b3sum`` (the script is in design §11.1).

The listing is the header ``artifactstore-content-v1\\n`` followed by one line
per entry, entries sorted by the UTF-8 bytes of their full path:

- file: ``f <mode, 3 octal digits> <64 hex of BLAKE3(bytes)> <path>\\0``
- reference: ``r <64 hex of its digest, or -> <path>\\0<uri>\\0``

Paths and URIs never hold NUL (paths are checked, §11), so ``\\0`` ends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from artifactstore.core.digest import Digest, Hasher, hash_bytes
from artifactstore.core.errors import InvalidInputError
from artifactstore.model.entries import Entry, FileEntry, ReferenceEntry

__all__ = ["HEADER", "ContentHasher", "content_digest", "listing", "listing_line"]

HEADER: Final = b"artifactstore-content-v1\n"


def listing_line(entry: Entry) -> bytes:
    """The line of ``entry`` in the listing."""
    path = entry.path.encode("utf-8")
    if isinstance(entry, FileEntry):
        return b"f %03o %s %s\0" % (entry.mode & 0o777, entry.digest.hex.encode(), path)
    assert isinstance(entry, ReferenceEntry)
    digest = b"-" if entry.digest is None else entry.digest.hex.encode()
    return b"r %s %s\0%s\0" % (digest, path, entry.uri.encode("utf-8"))


def listing(entries: Iterable[Entry]) -> bytes:
    """The canonical listing of ``entries`` (any order; paths are unique in a version)."""
    ordered = sorted(entries, key=lambda e: e.path.encode("utf-8"))
    return HEADER + b"".join(listing_line(e) for e in ordered)


def content_digest(entries: Iterable[Entry]) -> Digest:
    """Plain BLAKE3-256 of :func:`listing`: the version's content digest."""
    return hash_bytes(listing(entries))


class ContentHasher:
    """:func:`content_digest` over a stream of entries already in listing order (by the
    UTF-8 bytes of their paths, as :class:`~artifactstore.model.tree.TreeWriter` takes
    them), in constant memory: the listing is hashed as it goes, never held. An entry
    out of order or repeated is InvalidInputError (the digest would be wrong)."""

    __slots__ = ("_hasher", "_last")

    def __init__(self) -> None:
        self._hasher = Hasher(parallel=False)
        self._hasher.update(HEADER)
        self._last = b""

    def add(self, entry: Entry) -> bytes:
        """Hash the line of the next entry; returns it."""
        raw = entry.path.encode("utf-8")
        if raw <= self._last:
            raise InvalidInputError(
                f"content listing: {entry.path!r} is out of order or repeated"
            )
        self._last = raw
        line = listing_line(entry)
        self._hasher.update(line)
        return line

    def add_lines(self, folder: str, lines: bytes) -> None:
        """Add the listing lines of every entry under ``folder`` (a path ending in
        "/"), as :func:`listing` wrote them, at once (an unchanged folder's files)."""
        raw = folder.encode("utf-8")
        if raw <= self._last:
            raise InvalidInputError(f"content listing: {folder!r} is out of order or repeated")
        self._last = raw + b"\xff"  # above every path under it (no UTF-8 byte is 0xff)
        self._hasher.update(lines)

    def digest(self) -> Digest:
        return self._hasher.digest()
