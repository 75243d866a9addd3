"""Index consolidation (design §6, issue 20): many small index objects merged into few.

A writer writes one index object per flush, so a store of N versions has about N of
them, and a client with an empty cache (a fresh writer, a new reader) GETs every one:
20,000 requests for 20,000 versions. gc (which holds the store's lock, so no sweep
runs meanwhile) rewrites a domain's index objects as few objects of up to 65,536
blobs each, like restic's ``prune`` rewrites its index.

Order and crash safety (design §7, §15): the merged objects are written first, then
the objects they replace are deleted; a crash in between leaves both, which list the
same packs (a blob listed twice may be read from either). Every row keeps naming the
same pack, so a client whose index still holds the old objects' rows reads correctly,
and one that lists again forgets the vanished objects and fetches the merged ones
(an object that vanishes between a listing and its read is skipped and the listing
repeated, as after a sweep). Index objects written by others after the listing are
not touched. Memory: one index object read and one being written at a time, plus a
few reads in flight.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from artifactstore.core.digest import Digest
from artifactstore.core.errors import NotFoundError
from artifactstore.objects.index import decode_index, encode_indexes
from artifactstore.objects.layout import index_key, index_prefix, parse_id_key
from artifactstore.objects.packs import BlobEntry
from artifactstore.objects.store import ObjectStore

__all__ = ["CONSOLIDATE_FROM", "Consolidation", "consolidate_index"]

#: gc merges a domain's index objects once there are at least this many
CONSOLIDATE_FROM = 256
_READ_AHEAD = 16


@dataclass(frozen=True, slots=True)
class Consolidation:
    """What one consolidation did in one domain."""

    merged: int  # index objects read and replaced
    written: int  # index objects written in their place


def consolidate_index(objects: ObjectStore, *, at_least: int | None = None) -> Consolidation:
    """Merge the domain's index objects when there are ``at_least`` of them (default
    :data:`CONSOLIDATE_FROM`).

    The caller holds the store's gc lock (no sweep may replace index objects meanwhile).
    """
    backend = objects.backend
    listed = sorted(i for i in map(parse_id_key, backend.list(index_prefix(objects.domain)))
                    if i is not None)
    if len(listed) < max(CONSOLIDATE_FROM if at_least is None else at_least, 2):
        return Consolidation(0, 0)
    read: list[Digest] = []
    written: list[Digest] = []
    packs = _packs_of(objects, listed, read)
    for index_id, data in encode_indexes(packs, objects.config.compression, objects.keys):
        backend.put(index_key(objects.domain, index_id), data)
        written.append(index_id)
    keep = set(written)
    for index_id in read:
        if index_id not in keep:
            with contextlib.suppress(NotFoundError):  # already gone: nothing to do
                backend.delete(index_key(objects.domain, index_id))
    objects.refresh_index()
    return Consolidation(len(read) - len(keep & set(read)), len(written))


def _packs_of(objects: ObjectStore, ids: list[Digest], read: list[Digest]
              ) -> Iterator[tuple[Digest, tuple[BlobEntry, ...]]]:
    """The packs the index objects ``ids`` list, read a few at a time; ``read`` gets the
    ids that were read (one that vanished meanwhile is skipped: its successor lists it)."""
    backend = objects.backend

    def get(index_id: Digest) -> bytes | None:
        try:
            return backend.get(index_key(objects.domain, index_id))
        except NotFoundError:
            return None

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="artifactstore-merge") as pool:
        pending: deque[tuple[Digest, Future[bytes | None]]] = deque()
        queue = iter(ids)
        for index_id in queue:
            pending.append((index_id, pool.submit(get, index_id)))
            if len(pending) >= _READ_AHEAD:
                break
        while pending:
            index_id, future = pending.popleft()
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(get, nxt)))
            data = future.result()
            if data is None:
                continue
            decoded = decode_index(index_id, data, objects.keys)
            read.append(index_id)
            for pack_id, entries in decoded:
                yield pack_id, tuple(entries)
