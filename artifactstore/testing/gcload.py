"""Workers for the gc-under-load test: writers that deduplicate heavily against data
gc is busy reclaiming, and one process that deletes old versions and runs gc.

Used with :func:`artifactstore.testing.processes.run_workers`; worker ``GC_WORKER``
collects, the others write. Every writer reports ``(ref, blake3 hex)`` of each
version it committed, and how many commits it had to retry.

The load lasts ``seconds`` and, past that, until the collector has finished
``gc_runs`` collections (a file in ``cache_root`` says so): on a slow or busy machine
one S3 collection can take longer than the whole window, and a test that wants
collections *under load* must not depend on the machine's speed. ``cap`` seconds end
everything whatever happens (the parent's timeout is beyond it).
"""

from __future__ import annotations

import random
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import blake3

import artifactstore
from artifactstore.core.errors import ConflictError

__all__ = ["BLOCK", "GC_WORKER", "load_worker", "pool_blocks"]

GC_WORKER = 0
BLOCK = 256 << 10


def pool_blocks(seed: int, count: int = 24) -> list[bytes]:
    """The shared old data: ``count`` pseudo-random blocks, the same in every process."""
    rng = random.Random(seed)
    return [rng.randbytes(BLOCK) for _ in range(count)]


def load_worker(worker: int, barrier: Any, results: Any, url: str, options: dict[str, Any],
                cache_root: str, seconds: float, seed: int, gc_runs: int, cap: float) -> None:
    try:
        barrier.wait()
        done = Path(cache_root) / "gc-done"
        end = time.monotonic() + cap
        if worker == GC_WORKER:
            try:
                value: Any = _collect(url, options, Path(cache_root) / "gc", seconds, gc_runs,
                                      end)
            finally:
                done.touch()  # the writers stop even when the collector failed
        else:
            value = _write(worker, url, options, Path(cache_root) / f"w{worker}", seconds, seed,
                           done, end)
        results.put((worker, value, None))
    except BaseException as exc:  # report, never hang the parent
        where = " <- ".join(f"{f.name}:{f.lineno}" for f in
                            reversed(traceback.extract_tb(exc.__traceback__)[-16:]))
        results.put((worker, None, f"{type(exc).__name__}: {exc} (at {where})"))


def _write(worker: int, url: str, options: dict[str, Any], cache: Path, seconds: float,
           seed: int, done: Path, end: float) -> dict[str, Any]:
    pool = pool_blocks(seed)
    rng = random.Random(seed * 100 + worker)
    committed: list[tuple[str, str]] = []
    retries = 0
    deadline = time.monotonic() + seconds
    with artifactstore.open(url, cache_dir=cache, **options) as store, \
            tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.bin"
        while time.monotonic() < end and (time.monotonic() < deadline or not done.exists()):
            data = b"".join(rng.sample(pool, 8)) + rng.randbytes(64 << 10)
            path.write_bytes(data)
            for _ in range(5):
                try:
                    version = store.log_artifact(path, name=f"w{worker}", type="dataset")
                    break
                except ConflictError:  # gc took a blob this commit needed: log again
                    retries += 1
            else:
                raise AssertionError("five commits in a row lost to gc")
            committed.append((version.ref, blake3.blake3(data).hexdigest()))
    return {"committed": committed, "retries": retries}


def _collect(url: str, options: dict[str, Any], cache: Path, seconds: float, gc_runs: int,
             end: float) -> dict[str, Any]:
    runs = freed = deleted = 0
    deadline = time.monotonic() + seconds
    with artifactstore.open(url, cache_dir=cache, **options) as store:
        store.context.ensure_writable()  # it appends lifecycle events itself: create the project
        while time.monotonic() < end and (time.monotonic() < deadline or runs < gc_runs):
            for name in store.artifacts():
                old = [v.number for v in store.versions(name)][:-1]
                if old:
                    store.refs.lifecycle.append("delete", by="gc-load", artifact=name,
                                                numbers=old)
                    deleted += len(old)
            freed += store.gc(grace=0).bytes_freed
            runs += 1
    return {"gc_runs": runs, "bytes_freed": freed, "versions_deleted": deleted}
