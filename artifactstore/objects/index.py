"""Index objects and the merged index (docs/design.md §6).

Vocabulary: an *index object* is an immutable, content-addressed list of
``blob id -> (pack, offset, length)`` for the packs one flush wrote. The
*merged index* is their union, held in memory and cached on local disk so that
opening a store only fetches index objects it has not merged yet.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from artifactstore import encoding
from artifactstore.digest import Digest, hash_bytes
from artifactstore.errors import ArtifactStoreError, IntegrityError
from artifactstore.objects.envelope import Compression, Kind, open_envelope, seal
from artifactstore.objects.packs import BlobEntry, decode_records, encode_records

if TYPE_CHECKING:
    from artifactstore.objects.domainkeys import DomainKeys

#: what an encrypted index object is bound to (design §13.3)
INDEX_BINDING = b"index"

__all__ = [
    "MAX_ENTRIES_PER_INDEX",
    "BlobLocation",
    "MergedIndex",
    "decode_index",
    "encode_indexes",
]

MAX_ENTRIES_PER_INDEX = 65536
_INDEX_VERSION = 1
_CACHE_VERSION = 1
_RECORD = struct.Struct("<32sIQIIB")


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where to read one blob: its pack and the envelope's byte range in it."""

    pack: Digest
    kind: Kind
    offset: int
    length: int
    raw_length: int


def encode_indexes(
    packs: Iterable[tuple[Digest, tuple[BlobEntry, ...]]], compression: Compression,
    keys: DomainKeys | None = None,
) -> Iterator[tuple[Digest, bytes]]:
    """Index objects ``(id, bytes)`` for ``packs``, none listing more than the maximum."""
    batch: list[list[bytes]] = []
    count = 0

    def emit() -> tuple[Digest, bytes]:
        data = seal(Kind.INDEX, encoding.pack({"version": _INDEX_VERSION, "packs": batch}),
                    compression, keys=keys, binding=INDEX_BINDING)
        return hash_bytes(data), data

    for pack_id, all_entries in packs:
        entries = all_entries
        while entries:
            room = MAX_ENTRIES_PER_INDEX - count
            batch.append([pack_id.raw, encode_records(entries[:room])])
            count += len(entries[:room])
            entries = entries[room:]
            if count >= MAX_ENTRIES_PER_INDEX:
                yield emit()
                batch, count = [], 0
    if batch:
        yield emit()


def decode_index(index_id: Digest, data: bytes,
                 keys: DomainKeys | None = None) -> list[tuple[Digest, list[BlobEntry]]]:
    """Verify an index object against its id and return its packs and entries."""
    what = f"index object {index_id.hex}"
    if hash_bytes(data) != index_id:
        raise IntegrityError(f"{what} does not match its id: the store is damaged")
    _, plaintext = open_envelope(data, expected_kind=Kind.INDEX, raw_length=None, what=what,
                                 keys=keys, binding=INDEX_BINDING)
    body = encoding.unpack(plaintext, what=what)
    if not isinstance(body, dict) or body.get("version") != _INDEX_VERSION:
        raise IntegrityError(f"{what} has an unknown layout")
    result = []
    try:
        for pack_raw, records in body["packs"]:
            result.append((Digest(bytes(pack_raw)), decode_records(records, what=what)))
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{what} is malformed: {exc}") from None
    return result


class MergedIndex:
    """The union of index objects, with an on-disk cache.

    ``refresh`` takes the current listing of index ids and a fetch function; it
    merges only ids it has not seen, and starts over when an id it merged is
    gone (gc rewrote the index).
    """

    def __init__(self, cache_path: Path | None, keys: DomainKeys | None = None) -> None:
        #: the domain's keys: index objects of an encrypted domain are encrypted
        self.keys = keys
        self._cache_path = cache_path
        self._clear()
        if cache_path is not None:
            self._load_cache(cache_path)

    def _clear(self) -> None:
        self._merged: set[Digest] = set()
        self._packs: list[Digest] = []
        self._pack_no: dict[Digest, int] = {}
        self._blobs: dict[bytes, tuple[int, int, int, int, int]] = {}

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, blob_id: Digest) -> bool:
        return blob_id.raw in self._blobs

    @property
    def merged_ids(self) -> frozenset[Digest]:
        return frozenset(self._merged)

    @property
    def packs(self) -> tuple[Digest, ...]:
        return tuple(self._packs)

    def lookup(self, blob_id: Digest) -> BlobLocation | None:
        row = self._blobs.get(blob_id.raw)
        if row is None:
            return None
        pack_no, kind, offset, length, raw_length = row
        return BlobLocation(self._packs[pack_no], Kind(kind), offset, length, raw_length)

    def add_pack(
        self, pack_id: Digest, entries: Iterable[BlobEntry], *, prefer: bool = False
    ) -> None:
        """Add a pack's blobs; a blob already located elsewhere keeps its location
        unless ``prefer`` (a pack this client just wrote: it is the freshest copy)."""
        pack_no = self._pack_no.get(pack_id)
        if pack_no is None:
            pack_no = self._pack_no[pack_id] = len(self._packs)
            self._packs.append(pack_id)
        blobs = self._blobs
        for e in entries:
            row = (pack_no, int(e.kind), e.offset, e.length, e.raw_length)
            if prefer:
                blobs[e.id.raw] = row
            else:
                blobs.setdefault(e.id.raw, row)

    def refresh(
        self,
        listed: Iterable[Digest],
        fetch_many: Callable[[list[Digest]], Iterable[tuple[Digest, bytes]]],
    ) -> int:
        """Merge index objects not seen yet; returns how many were fetched."""
        listed_set = set(listed)
        if not self._merged <= listed_set:
            self._clear()
        missing = sorted(listed_set - self._merged)
        for index_id, data in fetch_many(missing):
            for pack_id, entries in decode_index(index_id, data, self.keys):
                self.add_pack(pack_id, entries)
            self._merged.add(index_id)
        if missing:
            self._save_cache()
        return len(missing)

    def note_written(self, index_id: Digest) -> None:
        """Record an index object this client wrote (its packs are already added)."""
        self._merged.add(index_id)

    def save(self) -> None:
        self._save_cache()

    # The cache is only an accelerator: a damaged or foreign file is ignored and rebuilt.
    def _load_cache(self, path: Path) -> None:
        try:
            body = encoding.unpack(path.read_bytes(), what=f"index cache {path}")
            if body.get("version") != _CACHE_VERSION:
                return
            packs = [Digest(bytes(p)) for p in body["packs"]]
            blobs: dict[bytes, tuple[int, int, int, int, int]] = {}
            for raw, pack_no, offset, length, raw_length, kind in _RECORD.iter_unpack(
                body["records"]
            ):
                if pack_no >= len(packs):
                    return
                blobs[raw] = (pack_no, kind, offset, length, raw_length)
            merged = {Digest(bytes(i)) for i in body["indexes"]}
        except (OSError, ArtifactStoreError, KeyError, TypeError, ValueError, struct.error,
                AttributeError):
            return
        self._packs = packs
        self._pack_no = {p: n for n, p in enumerate(packs)}
        self._blobs = blobs
        self._merged = merged

    def _save_cache(self) -> None:
        if self._cache_path is None:
            return
        records = b"".join(
            _RECORD.pack(raw, pack_no, offset, length, raw_length, kind)
            for raw, (pack_no, kind, offset, length, raw_length) in self._blobs.items()
        )
        body = encoding.pack({
            "version": _CACHE_VERSION,
            "indexes": sorted(i.raw for i in self._merged),
            "packs": [p.raw for p in self._packs],
            "records": records,
        })
        path = self._cache_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.replace(tmp, path)
        except OSError:
            # A cache that cannot be written only costs refetching next time.
            return
