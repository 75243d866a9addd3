"""The merged index's sorted record table and its local cache file (docs/design.md §6).

Vocabulary: a *row* is one blob's location as one index object lists it, packed as a
fixed 57-byte *record* (blob id, pack number, offset, length, raw length, kind, index
number; the numbers point into the cache's lists of packs and index objects). A
*table* is records sorted by blob id in one buffer (the cache file, memory-mapped when
big, read when small, or bytes built in memory) with a *fanout*: for each value of the
ids' first ``bits`` bits, how many records sort below it. A lookup reads the fanout's
two numbers and searches the few records between them, so no Python object is made per
blob and opening a store costs the same at any size.

The cache file is local to one user (never shared, never part of a store); its layout,
version ``CACHE_VERSION``, little-endian::

    header   magic, version, bits, records, more, meta length, checksum (72 bytes)
    meta     msgpack {"packs": [id], "indexes": [id], "merged": [index number],
                      "links": [[blob id, pack number, [base id]]]} (delta chunks' bases)
    fanout   2**bits + 1 uint32
    checks   the first 16 bytes of BLAKE3 of each block of 1,024 records
    more     further rows of blobs listed by several index objects (rare), unsorted
    records  the table

The checksum (BLAKE3 of the header with a zero checksum, then everything up to the
records) is checked on opening; each block of records the first time it is read, so a
damaged block is found before a row from it is used (:class:`CacheDamagedError`: the
merged index drops the cache and rebuilds it from the store). A file of another
version, a truncated one or one whose checksum fails is ignored: it is rebuilt.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifactstore.core import encoding
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import ArtifactStoreError, IntegrityError
from artifactstore.core.privatefiles import write_private_file

__all__ = [
    "CACHE_VERSION",
    "RECORD",
    "CacheDamagedError",
    "CacheImage",
    "Table",
    "load_cache",
    "merge_table",
    "write_cache",
]

CACHE_VERSION = 4  # 4: links of delta chunks in the meta
#: blob id, pack number, offset, length, raw length, kind, index number
RECORD = struct.Struct("<32sIQIIBI")
R = RECORD.size
_MAGIC = b"asindex\n"
_HEADER = struct.Struct("<8sIIQQQ32s")
_BLOCK = 1024  # records per checked block (57 KiB)
_CHECK = 16  # bytes of each block's BLAKE3 kept
_MAX_BITS = 16
_MAP_FROM = 16 << 20  # a cache file bigger than this (~290,000 blobs) is mapped, not read


class CacheDamagedError(IntegrityError):
    """A block of the cache file does not match its checksum (never reaches users:
    the merged index rebuilds itself from the store)."""


def _bits_for(count: int) -> int:
    """Fanout bits for ``count`` records: about 4 to 16 records between two entries."""
    return max(0, min(_MAX_BITS, count.bit_length() - 3))


def _native(values: array[int]) -> array[int]:
    if sys.byteorder == "big":  # the file and the records are little-endian
        values.byteswap()
    return values


def _fanout(buf: bytes | bytearray | memoryview, count: int, bits: int) -> array[int]:
    """The fanout of ``count`` sorted records: C-speed, no object per record."""
    if not count:
        return array("I", bytes(4 * ((1 << bits) + 1)))
    end = count * R
    # The first two bytes of every id as one big-endian 16-bit key, in a C array.
    pairs = bytearray(2 * count)
    pairs[0::2], pairs[1::2] = bytes(buf[1:end:R]), bytes(buf[0:end:R])
    keys = _native(array("H", bytes(pairs)))
    shift = _MAX_BITS - bits
    return array("I", [bisect_left(keys, p << shift) for p in range(1 << bits)] + [count])


class Table:
    """Sorted records in one buffer; see the module's vocabulary.

    ``checks`` (a file's table) are verified block by block on first use; a table
    built in memory has none and is trusted.
    """

    __slots__ = ("_base", "_buf", "_checks", "_fanout", "_shift", "_verified", "count")

    def __init__(self, buf: Any, count: int, fanout: array[int], *, base: int = 0,
                 checks: bytes | None = None) -> None:
        self._buf = buf  # bytes, bytearray or mmap: each has find() and slicing
        self._base = base
        self.count = count
        self._fanout = fanout
        self._shift = _MAX_BITS - (len(fanout) - 1).bit_length() + 1
        self._checks = checks
        self._verified: set[int] = set()

    @classmethod
    def build(cls, buf: bytes | bytearray) -> Table:
        """A table over ``buf``: records already sorted by blob id, each id once."""
        count = len(buf) // R
        return cls(buf, count, _fanout(buf, count, _bits_for(count)))

    @classmethod
    def empty(cls) -> Table:
        return cls.build(b"")

    @property
    def bits(self) -> int:
        return (len(self._fanout) - 1).bit_length() - 1

    def _bucket(self, raw: bytes) -> tuple[int, int]:
        p = int.from_bytes(raw[:2], "big") >> self._shift
        lo, hi = self._fanout[p], self._fanout[p + 1]
        if not 0 <= lo <= hi <= self.count:
            raise CacheDamagedError("the index cache's fanout is damaged")
        self._check(lo, hi)
        return lo, hi

    def _check(self, lo: int, hi: int) -> None:
        checks = self._checks
        if checks is None or lo >= hi:
            return
        for block in range(lo // _BLOCK, (hi - 1) // _BLOCK + 1):
            if block in self._verified:
                continue
            start = self._base + block * _BLOCK * R
            end = self._base + min((block + 1) * _BLOCK, self.count) * R
            if hash_bytes(self._buf[start:end]).raw[:_CHECK] != checks[
                    block * _CHECK:(block + 1) * _CHECK]:
                raise CacheDamagedError(f"block {block} of the index cache is damaged")
            self._verified.add(block)

    def verify_all(self) -> None:
        self._check(0, self.count)

    def find(self, raw: bytes) -> int | None:
        """The number of the record of blob ``raw``, or None."""
        if not self.count:
            return None
        # :meth:`_bucket` inline, with its block check only for blocks not yet checked:
        # a re-log of a million files asks this once per file (~1 us less each).
        fanout = self._fanout
        p = ((raw[0] << 8) | raw[1]) >> self._shift
        lo, hi = fanout[p], fanout[p + 1]
        if lo == hi and 0 <= lo <= self.count:
            return None
        verified = self._verified
        if not 0 <= lo < hi <= self.count or (self._checks is not None and (
                lo // _BLOCK not in verified or (hi - 1) // _BLOCK not in verified)):
            lo, hi = self._bucket(raw)  # raises on a damaged fanout or block
        base, buf = self._base, self._buf
        end = base + hi * R
        pos = buf.find(raw, base + lo * R, end)
        while pos >= 0 and (pos - base) % R:  # a match across two records is no match
            pos = buf.find(raw, pos + 1, end)
        return None if pos < 0 else (pos - base) // R

    def missing(self, raws: Iterable[bytes]) -> list[bytes]:
        """The ids of ``raws`` that the table does not hold: :meth:`find` of each, in one
        loop (a re-log asks it of every blob of an unchanged folder)."""
        if not self.count:
            return list(raws)
        fanout, shift, count, base, buf = self._fanout, self._shift, self.count, self._base, \
            self._buf
        verified, checks, find = self._verified, self._checks, self.find
        absent = []
        for raw in raws:
            p = ((raw[0] << 8) | raw[1]) >> shift
            lo, hi = fanout[p], fanout[p + 1]
            if not 0 <= lo < hi <= count or (checks is not None and (
                    lo // _BLOCK not in verified or (hi - 1) // _BLOCK not in verified)):
                if find(raw) is None:  # the careful way: raises on damage
                    absent.append(raw)
                continue
            pos = buf.find(raw, base + lo * R, base + hi * R)
            # not found, or a match across two records: the careful way
            if (pos < 0 or (pos - base) % R) and find(raw) is None:
                absent.append(raw)
        return absent

    def record(self, number: int) -> bytes:
        """Record ``number`` (its block is checked: :meth:`find` did)."""
        start = self._base + number * R
        return bytes(self._buf[start:start + R])

    def position(self, raw: bytes) -> int:
        """Where a record of blob ``raw`` (not in the table) would be inserted."""
        if not self.count:
            return 0
        lo, hi = self._bucket(raw)
        buf, base = self._buf, self._base
        for number in range(lo, hi):
            start = base + number * R
            if buf[start:start + 32] > raw:
                return number
        return hi

    def span(self, lo: int, hi: int) -> bytes:
        """Records ``lo`` to ``hi`` as bytes (checked by :meth:`verify_all` first)."""
        return bytes(self._buf[self._base + lo * R:self._base + hi * R])

    def view(self) -> memoryview:
        """Every record, in place (checked)."""
        self.verify_all()
        return memoryview(self._buf)[self._base:self._base + self.count * R]

    def column(self, offset: int, size: int) -> list[int]:
        """One little-endian field of every record (``offset``, ``size`` bytes)."""
        self.verify_all()
        start, end = self._base + offset, self._base + self.count * R
        columns = [bytes(self._buf[start + i:end:R]) for i in range(size)]
        if size == 1:
            return list(columns[0])
        return [int.from_bytes(bytes(parts), "little") for parts in zip(*columns, strict=True)]


def merge_table(table: Table, fresh: Iterable[bytes], replace: Iterable[bytes]) -> Table:
    """A new in-memory table: ``table`` with the records ``fresh`` (blobs it does not
    hold) inserted and the records ``replace`` (blobs it holds) put in their place.

    Costs a lookup per new record and one copy of the table (no object per record)."""
    table.verify_all()
    pieces: list[bytes] = []
    done = 0
    for record in sorted(fresh):
        at = table.position(record[:32])
        pieces += (table.span(done, at), record)
        done = at
    pieces.append(table.span(done, table.count))
    buf = bytearray().join(pieces)
    pieces.clear()
    merged = Table.build(buf)
    for record in replace:
        number = merged.find(record[:32])
        if number is None:
            raise ValueError("a replaced record's blob is not in the table")
        buf[number * R:(number + 1) * R] = record
    return merged


@dataclass(frozen=True, slots=True)
class CacheImage:
    """What a cache file holds, as read by :func:`load_cache`."""

    packs: list[bytes]
    indexes: list[bytes]
    merged: list[int]
    table: Table
    more: list[bytes]
    #: the bases of delta copies: (blob id, pack number, base ids)
    links: list[tuple[bytes, int, tuple[bytes, ...]]]


def load_cache(path: Path) -> CacheImage | None:
    """The cache at ``path`` (memory-mapped when big), or None when it is absent, of another
    layout version, truncated or damaged before its records."""
    try:
        with path.open("rb") as f:
            buf: Any = None
            if os.fstat(f.fileno()).st_size > _MAP_FROM:
                # A map keeps a file descriptor open while the index lives: only for big
                # stores, where reading the file would cost its size at every open.
                with contextlib.suppress(OSError, ValueError):
                    buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            if buf is None:
                buf = f.read()
        return _parse(buf)
    except (OSError, ArtifactStoreError, KeyError, TypeError, ValueError, struct.error,
            AttributeError, IndexError):
        return None


def _parse(buf: Any) -> CacheImage | None:
    if len(buf) < _HEADER.size:
        return None
    magic, version, bits, count, n_more, meta_len, checksum = _HEADER.unpack_from(buf, 0)
    if magic != _MAGIC or version != CACHE_VERSION or bits > _MAX_BITS:
        return None
    fan_len = 4 * ((1 << bits) + 1)
    checks_len = _CHECK * -(-count // _BLOCK)
    records_at = _HEADER.size + meta_len + fan_len + checks_len + R * n_more
    if len(buf) != records_at + R * count:
        return None  # truncated, or grown by something else
    header = _HEADER.pack(magic, version, bits, count, n_more, meta_len, bytes(32))
    if hash_bytes(header + bytes(buf[_HEADER.size:records_at])).raw != checksum:
        return None
    at = _HEADER.size
    meta = encoding.unpack(bytes(buf[at:at + meta_len]), what="index cache")
    at += meta_len
    fanout = _native(array("I", bytes(buf[at:at + fan_len])))
    at += fan_len
    checks = bytes(buf[at:at + checks_len])
    at += checks_len
    more = [bytes(buf[at + i * R:at + (i + 1) * R]) for i in range(n_more)]
    packs = [bytes(p) for p in meta["packs"]]
    indexes = [bytes(i) for i in meta["indexes"]]
    merged = [int(n) for n in meta["merged"]]
    links = [(bytes(raw), int(pack_no), tuple(bytes(b) for b in bases))
             for raw, pack_no, bases in meta["links"]]
    if fanout[-1] != count or any(not 0 <= n < len(indexes) for n in merged) or any(
            not 0 <= n < len(packs) for _, n, _ in links):
        return None
    return CacheImage(packs, indexes, merged,
                      Table(buf, count, fanout, base=records_at, checks=checks), more, links)


def write_cache(path: Path, image: CacheImage, *, root: Path | None) -> CacheImage:
    """Write ``image`` to ``path`` atomically (its table is verified first); returns
    the image of the written file, memory-mapped, or ``image`` if it cannot be read
    back. Raises OSError."""
    table = image.table
    records = table.view()
    bits = _bits_for(table.count)
    fanout = _fanout(records, table.count, bits)
    checks = b"".join(hash_bytes(records[i:i + _BLOCK * R]).raw[:_CHECK]
                      for i in range(0, len(records), _BLOCK * R))
    meta = encoding.pack({"packs": image.packs, "indexes": image.indexes,
                          "merged": sorted(image.merged),
                          "links": [[raw, pack_no, list(bases)]
                                    for raw, pack_no, bases in sorted(image.links)]})
    fan = _native(array("I", fanout)).tobytes()
    rest = meta + fan + checks + b"".join(image.more)
    fields = (_MAGIC, CACHE_VERSION, bits, table.count, len(image.more), len(meta))
    checksum = hash_bytes(_HEADER.pack(*fields, bytes(32)) + rest).raw
    body = b"".join((_HEADER.pack(*fields, checksum), rest, records))
    records.release()
    write_private_file(path, body, root=root)
    del body
    with contextlib.suppress(Exception):
        loaded = load_cache(path)
        if loaded is not None:
            return loaded
    return image
