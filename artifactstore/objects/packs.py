"""Packs: many blob envelopes in one object (docs/design.md §5).

Vocabulary: a *pack* holds blob envelopes back to back, then a *trailer* (an
envelope listing every blob with its offset), the trailer's length and a magic.
A :class:`PackBuilder` collects sealed blobs until the pack target is reached;
:func:`read_trailer` recovers the blob list from a pack's bytes alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, cast

from artifactstore import encoding
from artifactstore.digest import Digest, hash_bytes
from artifactstore.errors import IntegrityError
from artifactstore.objects.envelope import Kind, open_envelope, seal

__all__ = ["PACK_MAGIC", "BlobEntry", "FinishedPack", "PackBuilder", "read_trailer"]

PACK_MAGIC = b"ASP1"
_TAIL = struct.Struct("<I4s")


@dataclass(frozen=True, slots=True)
class BlobEntry:
    """Where one blob's envelope sits inside its pack."""

    id: Digest
    kind: Kind
    offset: int
    length: int
    raw_length: int

    def to_row(self) -> list[object]:
        return [self.id.raw, int(self.kind), self.offset, self.length, self.raw_length]

    @classmethod
    def from_row(cls, row: object, *, what: str) -> BlobEntry:
        try:
            blob_id, kind, offset, length, raw_length = cast(list[Any], row)
            entry = cls(Digest(bytes(blob_id)), Kind(kind), int(offset), int(length),
                        int(raw_length))
        except (TypeError, ValueError) as exc:
            raise IntegrityError(f"{what} has a malformed blob entry: {exc}") from None
        if entry.offset < 0 or entry.length <= 0 or entry.raw_length < 0:
            raise IntegrityError(f"{what} has an impossible blob entry for {entry.id.hex}")
        return entry


@dataclass(frozen=True, slots=True)
class FinishedPack:
    """A complete pack ready to upload."""

    id: Digest
    data: bytes
    entries: tuple[BlobEntry, ...]


class PackBuilder:
    """Appends sealed blobs; :meth:`finish` adds the trailer and names the pack."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._entries: list[BlobEntry] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, blob_id: Digest, kind: Kind, envelope: bytes, raw_length: int) -> None:
        self._entries.append(BlobEntry(blob_id, kind, self._size, len(envelope), raw_length))
        self._parts.append(envelope)
        self._size += len(envelope)

    def finish(self) -> FinishedPack:
        trailer = seal(Kind.PACK_TRAILER, encoding.pack([e.to_row() for e in self._entries]))
        self._parts.append(trailer)
        self._parts.append(_TAIL.pack(len(trailer), PACK_MAGIC))
        data = b"".join(self._parts)
        entries = tuple(self._entries)
        self._parts, self._entries, self._size = [], [], 0
        return FinishedPack(hash_bytes(data), data, entries)


def read_trailer(data: bytes, *, what: str) -> tuple[BlobEntry, ...]:
    """The blob list of a whole pack, checked against the pack's size."""
    if len(data) < _TAIL.size:
        raise IntegrityError(f"{what} is truncated: no pack trailer")
    trailer_length, magic = _TAIL.unpack_from(data, len(data) - _TAIL.size)
    trailer_end = len(data) - _TAIL.size
    if magic != PACK_MAGIC or trailer_length > trailer_end:
        raise IntegrityError(f"{what} has a damaged pack trailer")
    _, rows = open_envelope(
        memoryview(data)[trailer_end - trailer_length : trailer_end],
        expected_kind=Kind.PACK_TRAILER, raw_length=None, what=f"trailer of {what}",
    )
    decoded = encoding.unpack(rows, what=f"trailer of {what}")
    if not isinstance(decoded, list):
        raise IntegrityError(f"trailer of {what} is not a list")
    entries = tuple(BlobEntry.from_row(r, what=what) for r in decoded)
    for e in entries:
        if e.offset + e.length > trailer_end - trailer_length:
            raise IntegrityError(f"{what} lists blob {e.id.hex} beyond its data")
    return entries
