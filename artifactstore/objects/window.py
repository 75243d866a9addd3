"""Waiting out the commit window (docs/design.md §15 "Commit window"), with a sign of life.

Vocabulary:

- **commit window**: ``StoreConfig.commit_window`` seconds. A writer that found a
  blob present commits the record naming it within half the window, so a blob
  condemned at ``t`` can be deleted safely once ``t + window`` has passed: any
  writer that still counted on it has committed by then, and the next mark sees it.
- **wait callback** (:data:`WaitCallback`): told the seconds left while a purge or
  a gc with grace 0 waits, about once a second, and a last time with ``0.0``
  when the wait is over. It is for display only: raising from it aborts the
  operation before anything is deleted (the condemnation stays, a later gc
  sweeps it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["WaitCallback", "wait_until"]

#: called with the seconds still to wait (``0.0`` last)
WaitCallback = Callable[[float], None]


def wait_until(deadline: float, on_wait: WaitCallback | None = None) -> float:
    """Sleep until ``deadline`` (a ``time.time()`` value); return the seconds waited.

    ``on_wait`` is called before each sleep of at most a second, and with ``0.0``
    at the end; it is not called at all when the deadline has already passed.
    """
    start = time.time()
    remaining = deadline - start
    if remaining <= 0:
        return 0.0
    while remaining > 0:
        if on_wait is not None:
            on_wait(remaining)
        # wake on whole seconds left, so a countdown shows 3, 2, 1
        time.sleep(min(remaining, (remaining % 1.0) or 1.0))
        remaining = deadline - time.time()
    if on_wait is not None:
        on_wait(0.0)
    return time.time() - start
