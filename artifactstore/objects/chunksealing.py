"""Chunks sealed as they come, in a pool (docs/design.md §5, issue 20).

Vocabulary: a blob *to seal* (:class:`ToSeal`) is its id, kind, plaintext and policy
(its own compression, a delta candidate's bases); *sealing* it makes its envelope
(zstd, then AES in an encrypted domain). :class:`ChunkSealing` seals
a local store's big compressible chunks in a pool as the writer adds them, and a
:class:`~.packs.PackBatch` keeps a :class:`SealingChunk` (the job's future) in their
place, in order.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from artifactstore.core.digest import Digest
from artifactstore.objects.envelope import Compression, Kind, seal_parts

if TYPE_CHECKING:
    from artifactstore.objects.domainkeys import DomainKeys

__all__ = ["ChunkSealing", "SealingChunk", "ToSeal", "seal_own"]

#: a sealed blob as PackBatch seals it: its kind, envelope header, payload, and a
#: delta's bases (always empty here: delta candidates are not sealed in the pool)
Sealed = tuple[Kind, bytes, bytes | memoryview, tuple[Digest, ...]]


@dataclass(frozen=True, slots=True)
class ToSeal:
    """A blob to seal and how: what a batch keeps until it seals it."""

    id: Digest
    kind: Kind
    plaintext: bytes | memoryview
    adaptive: bool
    #: the policy of this blob when not the batch's (a big compressible file's chunk)
    compression: Compression | None = None
    #: a delta candidate's bases and their plaintexts (objects/deltas.py)
    bases: tuple[Digest, ...] = ()
    base_data: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SealingChunk:
    """A blob being sealed in the pool (:class:`ChunkSealing`): its envelope comes later."""

    id: Digest
    raw_length: int
    future: Future[Sealed]


class ChunkSealing:
    """Where a local store's batches seal a big compressible file's chunks (zstd and
    AES: the add's costliest steps) as they come, each one job of ``pool``, instead of
    a whole pack at once on one I/O thread when it closes.

    Why (issue 20, docs/benchmarks.md "Table add v1 on two cores (session 15)"): one
    pack sealing at a time left a core idle while the writer's thread read, cut and
    hashed, and each pack kept up to three read buffers alive until it was sealed. Per
    chunk, both cores seal, and a chunk's read buffer is let go as soon as it is sealed.
    At most ``in_flight`` chunks wait or run at once: the writer waits for a slot, which
    bounds the buffers they view. A pack's upload takes the results in order, so its
    bytes are those sealed at once. ``pool`` is not the I/O pool that runs the uploads
    (an upload waits for these jobs). Delta candidates stay on the writer's thread
    (PackBatch.add).
    """

    __slots__ = ("_pool", "_slots")

    def __init__(self, pool: Executor, in_flight: int) -> None:
        self._pool = pool
        self._slots = threading.BoundedSemaphore(in_flight)

    def submit(self, item: ToSeal, keys: DomainKeys | None) -> Future[Sealed]:
        """``item`` sealed in the pool (with ``item.compression``), once a slot is free."""
        self._slots.acquire()
        try:
            future = self._pool.submit(seal_own, item, keys)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future


def seal_own(item: ToSeal, keys: DomainKeys | None) -> Sealed:
    """A chunk sealed with its own compression (a job of :class:`ChunkSealing`)."""
    header, payload = seal_parts(item.kind, item.plaintext, item.compression, keys=keys,
                                 binding=item.id.raw)
    if isinstance(payload, memoryview):  # not compressed nor encrypted: the plaintext
        payload = bytes(payload)  # itself, which would keep its read buffer viewed
    return item.kind, header, payload, ()
