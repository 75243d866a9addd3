"""One key domain as the backend holds it now, read for verify and repair.

Implements the reading side of docs/design.md, "Verify and repair". Vocabulary:
a *scan* lists a domain's packs and index objects and decodes every index object
on its own, so a damaged one is named instead of stopping everything. The object
store's merged index and its local cache are not used: they are what is being
checked. A pack is *indexed* when a readable index object lists it. Blobs read
through a scan are verified against their ids, like every read (design §7).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from artifactstore.backends.base import Backend
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import IntegrityError, NotFoundError
from artifactstore.objects.deltas import dictionary
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import Kind, open_envelope
from artifactstore.objects.index import (
    MAX_ENTRIES_PER_INDEX,
    BlobLocation,
    MergedIndex,
    decode_index,
)
from artifactstore.objects.layout import (
    index_key,
    index_prefix,
    pack_key,
    pack_prefix,
    parse_id_key,
)
from artifactstore.objects.packs import BlobEntry, check_pack

__all__ = ["DomainScan", "PackCheck", "scan_domain"]


@dataclass(frozen=True, slots=True)
class PackCheck:
    """What re-hashing one pack found. ``bad`` are raw ids the index places in this
    pack that a reader cannot get from it; ``problem`` is empty for an intact pack."""

    pack: Digest
    blobs: int
    size: int
    bad: frozenset[bytes]
    problem: str = ""
    detail: str = ""


class DomainScan:
    """The packs and readable index objects of one domain; see :func:`scan_domain`."""

    def __init__(self, backend: Backend, domain: str, keys: DomainKeys | None) -> None:
        self.backend = backend
        self.domain = domain
        self.keys = keys
        #: packs on the backend: id -> key
        self.packs: dict[Digest, str] = {}
        #: what the readable index objects list, per pack: raw blob id -> entry
        self.entries: dict[Digest, dict[bytes, BlobEntry]] = {}
        #: lookups as a reader makes them (first listing wins, index objects in id order)
        self.index = MergedIndex(None, keys)
        self.index_objects = 0
        #: index objects that cannot be read: key -> why
        self.damaged_indexes: dict[str, str] = {}
        #: last pack of a full index object: its listing may go on in an object now lost
        self.maybe_partial: set[Digest] = set()

    def blob_id(self, plaintext: bytes | memoryview) -> Digest:
        return hash_bytes(plaintext, key=None if self.keys is None else self.keys.id_key)

    def pack_key(self, pack_id: Digest) -> str:
        return pack_key(self.domain, pack_id)

    def reads_from(self, pack_id: Digest, raw: bytes) -> bool:
        """Whether a reader looking up blob ``raw`` goes to ``pack_id``."""
        location = self.index.lookup(Digest(raw))
        return location is not None and location.pack == pack_id

    def fully_listed(self, pack_id: Digest) -> bool:
        """Listed, not possibly cut short, and its blobs tile from offset 0 without gaps."""
        listed = self.entries.get(pack_id)
        if not listed or pack_id in self.maybe_partial:
            return False
        offset = 0
        for e in sorted(listed.values(), key=lambda e: e.offset):
            if e.offset != offset:
                return False
            offset += e.length
        return True

    # -- reading blobs ---------------------------------------------------------------

    def read_blob(self, blob_id: Digest) -> bytes:
        """The verified plaintext of one blob, located through the scanned index."""
        location = self.index.lookup(blob_id)
        if location is None:
            raise NotFoundError(
                f"blob {blob_id.hex} is in no readable index object of domain {self.domain}; "
                "if index objects were lost, run 'artifactstore repair index'"
            )
        data = self.backend.get_range(self.pack_key(location.pack), location.offset,
                                      location.length)
        return self._opened(blob_id, location, data)

    def _opened(self, blob_id: Digest, location: BlobLocation, data: bytes,
                bases: tuple[Digest, ...] | None = None) -> bytes:
        what = f"blob {blob_id.hex} in pack {self.pack_key(location.pack)}"
        if len(data) != location.length:
            raise IntegrityError(f"{what} is truncated ({len(data)} of {location.length} bytes)")
        joined = None
        if location.kind is Kind.CHUNK_DELTA:  # opened with its bases (objects/deltas.py)
            joined = self._dictionary(blob_id, location, what, bases)
        _, plaintext = open_envelope(data, expected_kind=location.kind,
                                     raw_length=location.raw_length, what=what, keys=self.keys,
                                     binding=blob_id.raw, dictionary=joined)
        if self.blob_id(plaintext) != blob_id:
            raise IntegrityError(f"{what} does not match its id")
        return plaintext

    def _dictionary(self, blob_id: Digest, location: BlobLocation, what: str,
                    bases: tuple[Digest, ...] | None) -> bytes:
        if bases is None:
            bases = self.index.bases(blob_id, location)
        if not bases:
            raise IntegrityError(f"{what} is a delta chunk no readable index links to bases")
        parts = []
        for base in bases:
            found = self.index.lookup(base)
            if found is None or found.kind is not Kind.CHUNK:
                raise IntegrityError(f"{what} is a delta chunk whose base {base.hex} is "
                                     "missing or not a plain chunk")
            parts.append(self.read_blob(base))
        return dictionary(parts)

    def check_pack(self, pack_id: Digest) -> PackCheck:
        """Read a whole pack; check its trailer, every blob, and the index's entries."""
        key = self.pack_key(pack_id)
        listed = self.entries.get(pack_id, {})
        try:
            data = self.backend.get(key)
        except NotFoundError:
            return PackCheck(pack_id, 0, 0, frozenset(listed), "is missing")
        try:
            entries = check_pack(data, pack_id, what=f"pack {key}", keys=self.keys)
        except IntegrityError as exc:
            return PackCheck(pack_id, 0, len(data), frozenset(listed),
                             "is damaged (its trailer does not check)", str(exc))
        bad: set[bytes] = set()
        detail = ""
        for e in entries:
            loc = BlobLocation(pack_id, e.kind, e.offset, e.length, e.raw_length)
            try:
                self._opened(e.id, loc, data[e.offset : e.offset + e.length], e.bases)
            except IntegrityError as exc:
                bad.add(e.id.raw)
                detail = detail or str(exc)
        in_pack = {e.id.raw: e for e in entries}
        for raw, e in listed.items():  # the index must place every blob where it is
            if in_pack.get(raw) != e:
                bad.add(raw)
                detail = detail or f"the index places blob {raw.hex()} where pack {key} has not"
        problem = (f"is damaged ({len(bad)} of {len(entries)} blobs fail their check)" if bad
                   else "")
        return PackCheck(pack_id, len(entries), len(data), frozenset(bad), problem, detail)


def scan_domain(backend: Backend, domain: str, keys: DomainKeys | None = None, *,
                concurrency: int = 8) -> DomainScan:
    """List a domain's packs and read each of its index objects (damaged ones named)."""
    scan = DomainScan(backend, domain, keys)
    for key in backend.list(pack_prefix(domain)):
        pack_id = parse_id_key(key)
        if pack_id is not None:
            scan.packs[pack_id] = key
    ids = sorted(i for i in map(parse_id_key, backend.list(index_prefix(domain))) if i)
    with ThreadPoolExecutor(max_workers=concurrency,
                            thread_name_prefix="artifactstore-scan") as pool:
        for index_id, decoded in zip(ids, pool.map(lambda i: _decoded(scan, i), ids),
                                     strict=True):
            if isinstance(decoded, str):
                scan.damaged_indexes[index_key(domain, index_id)] = decoded
            elif decoded is not None:
                _merge(scan, index_id, decoded)
    return scan


_Decoded = list[tuple[Digest, list[BlobEntry]]]


def _decoded(scan: DomainScan, index_id: Digest) -> _Decoded | str | None:
    """An index object's packs, why it is unreadable, or None when it is gone."""
    try:
        data = scan.backend.get(index_key(scan.domain, index_id))
    except NotFoundError:
        return None  # removed since the listing (gc rewrote the index)
    try:
        return decode_index(index_id, data, scan.keys)
    except IntegrityError as exc:
        return str(exc)


def _merge(scan: DomainScan, index_id: Digest, packs: _Decoded) -> None:
    scan.index_objects += 1
    for pack_id, entries in packs:
        scan.index.add_pack(pack_id, entries, index_id=index_id)
        listed = scan.entries.setdefault(pack_id, {})
        for e in entries:
            listed.setdefault(e.id.raw, e)
    if packs and sum(len(e) for _, e in packs) >= MAX_ENTRIES_PER_INDEX:
        scan.maybe_partial.add(packs[-1][0])

