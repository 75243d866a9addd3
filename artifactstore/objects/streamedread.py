"""One coalesced range read of a remote pack, streamed (docs/design.md §8, "Reading").

A remote store reads neighbouring blobs of a pack with one ranged GET of up to a whole
pack (requests cost more than bytes there). Read whole, that GET held the pack's bytes
until the last blob was consumed, and the HTTP client joined the body from its chunks
(two copies of up to 16 MiB at once), while the next read was in flight. A
:class:`StreamedRead` reads the same range with the same one request on an I/O
thread and hands each blob's stored bytes over as the body arrives
(``backends.base.iter_range``, a MiB at a time) through a queue of at most
:data:`_QUEUED` pieces, so a read holds a few MiB whatever the pack size. A blob
inside one piece is handed over as a view of it (no copy), one across pieces joined.

Vocabulary: a *span* is one blob's ``(offset, length)`` in the pack, in the order of
the range; the *stored bytes* of a span are the blob's envelope, opened and checked
by the consumer (the object store) or by the *opener* it gives, which runs on the
I/O thread (decryption and hashing then leave the consumer's thread). A stream that
breaks is finished with one ``get_range`` of the rest (retried by the backend stack);
a range shorter than its spans (a truncated pack) hands over short bytes, which the
consumer's length check reports. A consumer that stops early calls :meth:`StreamedRead.cancel`:
the I/O thread then stops within :data:`_POLL` seconds and closes the response.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from artifactstore.backends.base import Backend, iter_range

__all__ = ["Opener", "StreamedRead"]

#: what the I/O thread makes of a span's stored bytes (its index, its bytes) before
#: handing it over: the object store opens and checks blobs there (off its caller's thread)
Opener = Callable[[int, "bytes | memoryview"], Any]

#: pieces (each the blobs a body piece of ~1 MiB completed) waiting for the consumer
_QUEUED = 3
#: how often a producer blocked on a full queue looks for a cancel, in seconds
_POLL = 0.05


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class StreamedRead:
    """The stored bytes of ``spans`` of ``key``, read by one streamed range request on
    ``pool``; :meth:`blobs` yields them in order (each iterated once)."""

    def __init__(self, backend: Backend, key: str, spans: list[tuple[int, int]],
                 pool: ThreadPoolExecutor, opener: Opener | None = None) -> None:
        self._backend = backend
        self._key = key
        self._spans = spans
        self._opener = opener
        self._queue: queue.Queue[object] = queue.Queue(maxsize=_QUEUED)
        self._stop = threading.Event()
        self._future = pool.submit(self._produce)

    def blobs(self) -> Iterator[Any]:
        """Each span's stored bytes in order, or what ``opener`` made of them; raises
        what the read or the opener raised (a ``NotFoundError`` when the pack is gone),
        after the spans handed over before it."""
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            assert isinstance(item, list)
            yield from item
            del item  # the pieces its views point into go as the consumer lets go

    def cancel(self) -> None:
        """Stop reading (the consumer is done with this range, early or not)."""
        self._stop.set()

    # -- the I/O thread ------------------------------------------------------------

    def _produce(self) -> None:
        try:
            self._read()
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Failed(exc))
        else:
            self._put(_END)

    def _read(self) -> None:
        spans = self._spans
        first = spans[0][0]
        end = spans[-1][0] + spans[-1][1]
        done = 0
        carry: bytes | memoryview = b""  # bytes from pack offset ``at`` not handed over
        at = first
        pieces = iter_range(self._backend, self._key, first, end - first)
        try:
            for piece in pieces:
                done, carry, at = self._hand_over(carry, at, piece, done)
                if done < 0 or done == len(spans):
                    return  # cancelled, or all handed over
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # a generator: closes the response it reads
        # The stream ended short: read the rest at once (retried), then hand over
        # whatever it holds (short bytes for a truncated pack: the consumer reports it).
        at = spans[done][0]
        done, carry, at = self._hand_over(
            b"", at, self._backend.get_range(self._key, at, end - at), done)
        if 0 <= done < len(spans):
            self._put(self._opened([bytes(carry[offset - at:offset - at + length])
                                    for offset, length in spans[done:]], done))

    def _hand_over(self, carry: bytes | memoryview, at: int, piece: bytes, done: int
                   ) -> tuple[int, bytes | memoryview, int]:
        """Queue the spans ``piece`` completes; it follows ``carry``, the bytes from pack
        offset ``at`` not handed over yet. A blob inside the piece goes as a view of it
        (no copy: the piece lives until its blobs are consumed), one that began before
        it is joined (one copy). Returns the spans done (-1 when cancelled), what to
        carry into the next piece and its offset."""
        piece_at = at + len(carry)
        piece_end = piece_at + len(piece)
        view = memoryview(piece)
        ready: list[bytes | memoryview] = []
        for offset, length in self._spans[done:]:
            stop = offset + length
            if stop > piece_end:
                break
            if offset >= piece_at:
                ready.append(view[offset - piece_at:stop - piece_at])
            else:
                ready.append(bytes(carry[offset - at:]) + bytes(view[:stop - piece_at]))
            done += 1
        if done == len(self._spans):
            carry, at = b"", piece_end
        else:
            following = self._spans[done][0]
            if following >= piece_at:  # in this piece, or past it (a gap between blobs)
                at = min(following, piece_end)
                carry = view[at - piece_at:]
            else:  # a blob that spans more than two pieces
                carry, at = bytes(carry[following - at:]) + piece, following
        if ready and not self._put(self._opened(ready, done - len(ready))):
            return -1, carry, at
        return done, carry, at

    def _opened(self, ready: list[bytes | memoryview], first: int) -> list[Any]:
        """``ready`` (the stored bytes of spans ``first``...) through the opener: on
        this I/O thread, so the consumer's thread only takes the results. The spans
        opened before one that fails are handed over first, then the failure."""
        if self._opener is None:
            return ready
        opened: list[Any] = []
        try:
            for index, data in enumerate(ready, first):
                opened.append(self._opener(index, data))
        except BaseException:
            if opened:
                self._put(opened)
            raise
        return opened

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False
