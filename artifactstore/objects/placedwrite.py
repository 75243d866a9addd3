"""A big file from a local store written into a descriptor at its offsets (a download's
placed write, :meth:`~.blobreads.BlobReader.read_file_into`).

Each read (about :data:`PLACED_READ` bytes of neighbouring chunks, stored plus opened)
is opened on an I/O thread straight into one of :data:`PLACED_SLOTS` reused buffers
(:func:`~.envelope.open_envelope_into`: no buffer allocated per chunk, whose fresh pages
cost a restore more than its AES-GCM), then, in file order (a read waits for the one
before it), written from there at its offset (``pwrite``) and hashed into the file's
digest, while the next reads are opened beside it; the calling thread only hands reads
out. After a failure every read still running is waited for before anything is
raised, so nothing writes into the descriptor afterwards. The caller checks the size
and digest returned against the file's before it uses the file.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from artifactstore.core.digest import Digest, Hasher
from artifactstore.core.errors import IntegrityError
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import Kind, open_envelope_into
from artifactstore.objects.index import BlobLocation
from artifactstore.objects.layout import pack_key

__all__ = ["PLACED_READ", "PLACED_SLOTS", "write_placed"]

#: reads in flight, each with its own buffers, and
#: the bytes one spans plus opens: smaller than other local reads, because its buffer is
#: written and hashed right after it was filled, while still in the CPU's cache (table
#: v1 restore, 2 MiB against 4 MiB: -20% CPU, a third of the system time; 3 slots and 2
#: the same: docs/benchmarks.md, "The table, round five")
PLACED_SLOTS = 3
PLACED_READ = 2 << 20
#: one read: neighbouring chunks of one pack, with their places
Group = list[tuple[Digest, BlobLocation]]


def write_placed(
    ref: FileRef, fd: int, advance: Callable[[int], None], *, groups: Iterable[Group],
    read_group: Callable[[Group], bytes], pool: ThreadPoolExecutor, domain: str,
    keys: DomainKeys | None,
    open_delta: Callable[[Digest, BlobLocation, memoryview], bytes] | None = None,
) -> tuple[int, Digest]:
    """Write ``ref``'s chunks, read as ``groups`` (runs of neighbouring chunks in file
    order, each read by ``read_group``), into ``fd`` at their offsets (module
    docstring); ``advance`` gets the bytes done so far. Returns the bytes written and
    their digest, for the caller to check against the file's: the file must not be
    used unless they match. Raises what a read raised (NotFoundError: a pack moved)
    once every read still running has stopped. ``open_delta`` opens a delta chunk
    (with its bases: objects/deltas.py) from its stored bytes; without it a delta is
    IntegrityError."""
    lengths = iter(ref.chunks)
    slots: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
    for _ in range(PLACED_SLOTS):
        slots.put(_Slot())
    turn = _InTurn()
    hasher = Hasher(parallel=False)  # one core hashes, the other opens the next read
    running: list[Future[int]] = []
    offset = finished = 0
    try:
        for index, group in enumerate(groups):
            for blob_id, loc in group:
                chunk = next(lengths)
                if loc.raw_length != chunk.length:
                    raise IntegrityError(
                        f"chunk {blob_id.hex} has {loc.raw_length} bytes, the file "
                        f"lists {chunk.length}")
            slot = slots.get()  # at most PLACED_SLOTS reads in flight
            running.append(pool.submit(
                _place_group, group, index, offset, fd, slot, slots, turn, hasher,
                read_group, domain, keys, open_delta))
            offset += sum(loc.raw_length for _, loc in group)
            while running and running[0].done():
                finished += running.pop(0).result()
                advance(finished)
        while running:
            finished += running.pop(0).result()
            advance(finished)
    finally:
        if running:  # a failure: no read may write into fd once this returns
            turn.stop()
            wait(running)
    return offset, hasher.digest()

def _place_group(group: Group, index: int, offset: int, fd: int, slot: _Slot,
                 slots: queue.SimpleQueue[_Slot], turn: _InTurn, hasher: Hasher,
                 read_group: Callable[[Group], bytes], domain: str,
                 keys: DomainKeys | None,
                 open_delta: Callable[[Digest, BlobLocation, memoryview], bytes] | None,
                 ) -> int:
    """One read of :func:`write_placed`, on an I/O thread: opened into ``slot``, then in
    its turn written at ``offset`` and hashed; returns its bytes."""
    try:
        data = memoryview(read_group(group))
        start = group[0][1].offset
        size = sum(loc.raw_length for _, loc in group)
        out = slot.plain(size)
        at = 0
        for blob_id, loc in group:
            stored = data[loc.offset - start : loc.offset - start + loc.length]
            if len(stored) != loc.length:
                raise IntegrityError(
                    f"blob {blob_id.hex} in pack {pack_key(domain, loc.pack)} is "
                    f"truncated ({len(stored)} of {loc.length} bytes at offset "
                    f"{loc.offset}): the pack is damaged; run 'artifactstore verify'")
            if loc.kind is Kind.CHUNK_DELTA and open_delta is not None:
                out[at : at + loc.raw_length] = open_delta(blob_id, loc, stored)
                at += loc.raw_length
                continue
            slot.scratch = open_envelope_into(
                stored, out[at : at + loc.raw_length], slot.scratch,
                expected_kind=loc.kind, keys=keys, binding=blob_id.raw,
                what=f"blob {blob_id.hex} in pack {pack_key(domain, loc.pack)}")
            at += loc.raw_length
        del data, stored  # the pack's bytes are no longer needed
        # In file order, one run at a time: written at its offset, then hashed while
        # still in cache. One writer at a time keeps the writes sequential (as one
        # thread's would be) and the page-cache allocations (and their reclaim, when
        # memory is short) on one thread, while the next runs decompress beside it.
        if turn.wait(index):
            written = 0
            while written < size:  # pwrite may write less than asked (rare)
                written += os.pwrite(fd, out[written:], offset + written)
            hasher.update(out)
            turn.done()
        return size
    except BaseException:
        turn.stop()
        raise
    finally:
        slots.put(slot)


class _Slot:
    """One read's buffers in :func:`write_placed`: the plaintext of its chunks,
    and the scratch they are decrypted into; reused read after read (grown, not
    reallocated), so the pages are touched once per file, not once per chunk."""

    def __init__(self) -> None:
        self._plain = bytearray()
        self.scratch = bytearray()

    def plain(self, size: int) -> memoryview:
        if len(self._plain) < size:
            self._plain = bytearray(size)
        return memoryview(self._plain)[:size]


class _InTurn:
    """Runs of :func:`write_placed` taking their turn in file order, on
    the I/O threads that opened them: :meth:`wait` returns once every run before
    ``index`` is :meth:`done` (True), or once :meth:`stop` was called (a run failed, or
    the caller gave up: False, and nothing more is written or hashed)."""

    def __init__(self) -> None:
        self._done = threading.Condition()
        self._next = 0
        self._stopped = False

    def wait(self, index: int) -> bool:
        with self._done:
            while self._next != index and not self._stopped:
                self._done.wait()
            return not self._stopped

    def done(self) -> None:
        with self._done:
            self._next += 1
            self._done.notify_all()

    def stop(self) -> None:
        with self._done:
            self._stopped = True
            self._done.notify_all()
