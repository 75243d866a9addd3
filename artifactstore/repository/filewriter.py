"""Writing a download's small files, and their file cache entries, on threads of
their own.

A restore of many small files spends half its main thread in the kernel creating
and writing them (``os.open``, ``os.write``, ``os.close``: ext4's inode and page
cache work, docs/benchmarks.md "Restores, round four"). Those calls release the
GIL, so a :class:`FileWriter` runs them on its own thread(s) while the main thread
walks the tree and takes the next files' bytes from the store: the kernel's work
moves to the second core.

Only files whose bytes are all in hand are handed over, checked (the store's
checked read ended without error: :meth:`ObjectStore.iter_files` with ``check``) or
checked by the job itself before it creates anything (a small file of several
chunks, which the store leaves to its caller: ``caller_hashes``), so a job never
publishes unverified bytes; what a job does is what the main thread did (the same
create, write, mode and rename). Memory is
bounded: at most :data:`PENDING_BYTES` of handed-over bytes wait (one file alone may
exceed it). The first failure of a job is raised by the next :meth:`submit` or by
leaving the ``with``, which always waits for the writer threads first (jobs not
started are skipped once anything failed): nothing is written into a folder after
the download gave up on it (its cleanup removes the folder).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from artifactstore.core.digest import Digest
from artifactstore.local.filecache import FileCache

__all__ = ["BUNDLE_BYTES", "BUNDLE_JOBS", "FEED_PENDING", "PENDING_BYTES", "CacheFeeder",
           "FileWriter"]

#: bytes handed over and not yet written, at most (one bigger bundle alone may exceed it)
PENDING_BYTES = 4 << 20
#: jobs handed over at once, and the bytes after which a bundle goes anyway
BUNDLE_JOBS = 32
BUNDLE_BYTES = 512 << 10
#: small files waiting for the file cache's own thread (bounds their memory: 16 MiB)
FEED_PENDING = 16


class FileWriter:
    """Runs write jobs on ``threads`` threads, ``pending`` bytes at most in flight.

    Jobs are handed over in bundles of up to :data:`BUNDLE_JOBS` (a queue operation
    and a wake-up per bundle, not per file: at 20,000 small files a future per file
    cost a tenth of the main thread); :meth:`flush` hands over a partial bundle.
    """

    def __init__(self, threads: int = 1, pending: int = PENDING_BYTES) -> None:
        self._limit = pending
        self._held = 0
        self._room = threading.Condition()
        self._waiting = False  # the caller waits for room (flush)
        self._failure: BaseException | None = None
        self._queue: queue.SimpleQueue[tuple[int, list[Callable[[], None]]] | None] = (
            queue.SimpleQueue())
        self._bundle: list[Callable[[], None]] = []
        self._bundle_size = 0
        self._threads = [threading.Thread(target=self._work, name=f"artifactstore-write_{i}",
                                          daemon=True) for i in range(threads)]

    def __enter__(self) -> FileWriter:
        for thread in self._threads:
            thread.start()
        return self

    def submit(self, job: Callable[[], None], size: int) -> None:
        """Run ``job`` (which writes ``size`` bytes in hand) on a writer thread; waits
        while more than the budget is pending. Raises a failed job's exception."""
        self._bundle.append(job)
        self._bundle_size += size
        if len(self._bundle) >= BUNDLE_JOBS or self._bundle_size >= BUNDLE_BYTES:
            self.flush()

    def flush(self) -> None:
        """Hand over the jobs submitted and not yet handed over."""
        if not self._bundle:
            return
        size = self._bundle_size
        with self._room:
            if self._held and self._held + size > self._limit:
                # Full: wait until half the budget is free, not until this bundle fits,
                # so the writers wake this thread once per ~2 MiB written, not once per
                # bundle (each wake-up is a futex and a GIL hand-over on both threads).
                self._waiting = True
                while self._held and (self._held > self._limit // 2
                                      or self._held + size > self._limit) \
                        and self._failure is None:
                    self._room.wait()
                self._waiting = False
            if self._failure is not None:
                raise self._failure
            self._held += size
        bundle, self._bundle, self._bundle_size = self._bundle, [], 0
        self._queue.put((size, bundle))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            size, bundle = item
            try:
                for job in bundle:
                    if self._failure is None:  # after a failure, nothing more is written
                        job()
            except BaseException as exc:  # handed to the main thread
                with self._room:
                    if self._failure is None:
                        self._failure = exc
            finally:
                with self._room:
                    self._held -= size
                    if self._waiting and (self._held <= self._limit // 2
                                          or self._failure is not None):
                        self._room.notify_all()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self.flush()
            else:
                with self._room:  # the download failed: the jobs not started are skipped
                    if self._failure is None:
                        self._failure = exc
        finally:
            for _ in self._threads:
                self._queue.put(None)
            for thread in self._threads:
                thread.join()  # every job ended: the folder is ours again
        if kind is None and self._failure is not None:
            raise self._failure


class CacheFeeder:
    """Puts small files into a file cache on a thread of its own, from the bytes in
    hand: the cache's creates, writes and renames release the GIL, so they run on the
    second core beside the download's own (an S3 restore of 20,000 small files spent
    about 40% of its main thread inserting into the cache). At most
    :data:`FEED_PENDING` files wait (each up to 1 MiB); leaving
    the ``with`` waits for all of them, so the cache holds them when the download
    returns. Best effort, as every insert: a failure only leaves the entry out."""

    def __init__(self, cache: FileCache | None) -> None:
        self._cache = cache
        self._room = threading.BoundedSemaphore(FEED_PENDING)
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Callable[[bytes, Digest], None] | None:
        if self._cache is None:
            return None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artifactstore-cache")
        return self._feed

    def _feed(self, data: bytes, digest: Digest) -> None:
        assert self._pool is not None
        assert self._cache is not None
        self._room.acquire()
        try:
            future = self._pool.submit(self._cache.insert_bytes, data, digest)
        except BaseException:
            self._room.release()
            raise
        future.add_done_callback(lambda _: self._room.release())

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
