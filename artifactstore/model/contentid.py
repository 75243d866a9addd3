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

from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.model.entries import Entry, FileEntry, ReferenceEntry

__all__ = ["HEADER", "content_digest", "listing"]

HEADER: Final = b"artifactstore-content-v1\n"


def _line(entry: Entry) -> bytes:
    path = entry.path.encode("utf-8")
    if isinstance(entry, FileEntry):
        return b"f %03o %s %s\0" % (entry.mode & 0o777, entry.digest.hex.encode(), path)
    assert isinstance(entry, ReferenceEntry)
    digest = b"-" if entry.digest is None else entry.digest.hex.encode()
    return b"r %s %s\0%s\0" % (digest, path, entry.uri.encode("utf-8"))


def listing(entries: Iterable[Entry]) -> bytes:
    """The canonical listing of ``entries`` (any order; paths are unique in a version)."""
    ordered = sorted(entries, key=lambda e: e.path.encode("utf-8"))
    return HEADER + b"".join(_line(e) for e in ordered)


def content_digest(entries: Iterable[Entry]) -> Digest:
    """Plain BLAKE3-256 of :func:`listing`: the version's content digest."""
    return hash_bytes(listing(entries))
