"""Run the same worker in several spawned processes at once, for race tests.

A worker is called as ``target(worker, barrier, results, *args)``; it meets the
others at ``barrier`` (a ``multiprocessing`` Barrier) so its attempts overlap
theirs, and reports exactly once with ``results.put((worker, value, error))``
where ``error`` is None or a one-line description.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

__all__ = ["run_workers"]


def run_workers(
    target: Callable[..., None], args: tuple[Any, ...], *, workers: int = 8,
    timeout: float = 120.0,
) -> dict[int, Any]:
    """Start ``workers`` processes together; return worker id -> reported value.

    Raises ``AssertionError`` naming every worker that failed or timed out.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(worker, barrier, results, *args),
                    name=f"worker-{worker}", daemon=True)
        for worker in range(workers)
    ]
    for proc in procs:
        proc.start()
    outcomes: dict[int, Any] = {}
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for _ in range(workers):
            try:
                worker, value, error = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                errors.append("timed out waiting for workers")
                break
            if error:
                errors.append(f"worker {worker}: {error}")
            else:
                outcomes[worker] = value
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            proc.close()
        results.close()
        results.join_thread()
    if errors:
        raise AssertionError("; ".join(errors))
    return outcomes
