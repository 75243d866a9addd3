"""How many bytes of PUT bodies one server process holds at once.

A PUT's body is read into memory before it is written to the backing store (the
backends take whole objects: ``put_if_absent`` must be one conditional request), so
without a bound, N clients pushing at once cost N bodies of up to ``max_object_mib``
each. :class:`UploadBudget` is that bound: before reading a body, a request reserves
its declared ``Content-Length`` (or the whole per-object limit when the body is
chunked and its size unknown) and gives it back once the write is done, whatever its
outcome. A request that does not fit waits, without reading its body, so TCP's flow
control holds the client back; the server's memory stays under the budget.

Reserving the whole amount at once, never piece by piece, means two waiting requests
can never each hold half of what both need: nothing deadlocks, and the budget is at
least one object (settings check it), so every request is eventually served, in the
order of arrival.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["UploadBudget"]


class UploadBudget:
    """At most ``limit`` bytes reserved at once; reservations are served in order."""

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("an upload budget needs a positive limit")
        self.limit = limit
        #: bytes reserved now, and the most ever reserved at once (for tests and logs)
        self.held = 0
        self.peak = 0
        self._turns: asyncio.Condition | None = None
        self._queue: list[object] = []

    @asynccontextmanager
    async def reserve(self, size: int) -> AsyncIterator[None]:
        """Hold ``size`` bytes (at most the limit) until the block ends."""
        size = min(max(size, 0), self.limit)
        turns = self._condition()
        ticket = object()
        async with turns:
            self._queue.append(ticket)
            try:
                await turns.wait_for(lambda: self._queue[0] is ticket
                                     and self.held + size <= self.limit)
            finally:
                self._queue.remove(ticket)
                turns.notify_all()
            self.held += size
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            async with turns:
                self.held -= size
                turns.notify_all()

    def _condition(self) -> asyncio.Condition:
        # made on first use, inside the server's event loop
        if self._turns is None:
            self._turns = asyncio.Condition()
        return self._turns
