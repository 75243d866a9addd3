"""Retry wrapper: repeat transient backend failures with exponential backoff.

Only :class:`TransientBackendError` (timeouts, throttling, 5xx) is retried;
every other error, ``NotFoundError`` included, passes through at once. The
delay before retry *n* is ``min(max_delay, base_delay * 2**(n-1))``; with
jitter it is drawn uniformly from the upper half of that ("equal jitter"), so
clients that failed together spread out without ever retrying immediately.

``put_if_absent`` needs care: a request can fail *after* the server created
the object (the response was lost in a timeout or a dropped connection). The
retry then answers False, "someone else's object is there", although the
object is ours, and a caller committing a version record would wrongly think
it lost the race and orphan its own record. So after any transient failure, a
False is checked by reading the object back: if its bytes equal ours, this
call created it and True is returned. Two different writers with *identical*
bytes would both get True, which is harmless: content-addressed blobs are the
same object either way, and refs carry writer-specific content (ids,
signatures, timestamps), so two writers never produce the same bytes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, TypeVar

from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.base import (
    Backend,
    ObjectInfo,
    iter_range,
    list_after,
    put_from_file,
)
from artifactstore.core.errors import InvalidInputError, NotFoundError, TransientBackendError

__all__ = ["RetryingBackend"]

T = TypeVar("T")


class RetryingBackend(BackendWrapper):
    """Wrap ``inner`` and retry its transient failures."""

    def __init__(
        self,
        inner: Backend,
        *,
        attempts: int = 5,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: bool = True,
        seed: int | None = None,
    ) -> None:
        """Retry up to ``attempts`` tries in total per call.

        ``sleep`` is injectable for tests; ``seed`` makes the jitter
        reproducible; ``jitter=False`` uses the exact exponential delays.
        """
        if attempts < 1:
            raise InvalidInputError(f"attempts must be >= 1, not {attempts}")
        super().__init__(inner)
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._rng: random.Random | None = random.Random(seed) if jitter else None

    def __repr__(self) -> str:
        return f"RetryingBackend({self._inner!r}, attempts={self._attempts})"

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        cap = min(self._max_delay, self._base_delay * 2.0 ** (retry - 1))
        if self._rng is None:
            return cap
        return self._rng.uniform(cap / 2, cap)

    def get(self, key: str) -> bytes:
        """``inner.get`` with retries."""
        return self._call("get", key, lambda: self._inner.get(key))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``inner.get_range`` with retries."""
        return self._call("get_range", key, lambda: self._inner.get_range(key, start, length))

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """``base.iter_range`` of the inner backend, not retried: a stream that breaks
        ends short, and its reader reads the rest with :meth:`get_range`, which is."""
        return iter_range(self._inner, key, start, length)

    def put(self, key: str, data: bytes) -> None:
        """``inner.put`` with retries (a repeated overwrite is harmless)."""
        self._call("put", key, lambda: self._inner.put(key, data))

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """``inner.put_parts`` with retries (a repeated overwrite is harmless)."""
        self._call("put", key, lambda: self._inner.put_parts(key, parts))

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        """``inner.put_file`` with retries (each attempt reads the file from its start)."""
        self._call("put", key, lambda: put_from_file(self._inner, key, file, size))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """``inner.put_if_absent`` with retries and lost-response detection."""
        failed_before = False
        last: TransientBackendError | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                if self._inner.put_if_absent(key, data):
                    return True
                if not failed_before:
                    return False
                return self._inner.get(key) == data
            except NotFoundError:
                # the object vanished between the failed create and the read: create again
                continue
            except TransientBackendError as exc:
                failed_before = True
                last = exc
                if attempt < self._attempts:
                    self._sleep(self.delay(attempt))
        raise self._exhausted("put_if_absent", key, last)

    def exists(self, key: str) -> bool:
        """``inner.exists`` with retries."""
        return self._call("exists", key, lambda: self._inner.exists(key))

    def delete(self, key: str) -> None:
        """``inner.delete`` with retries (deleting twice is a no-op)."""
        self._call("delete", key, lambda: self._inner.delete(key))

    def stat(self, key: str) -> ObjectInfo:
        """``inner.stat`` with retries."""
        return self._call("stat", key, lambda: self._inner.stat(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        """``inner.list`` with retries; a failure mid-listing resumes after the last key.

        Listings are sorted, so a restarted listing skips every key up to the
        last one already yielded: no key is yielded twice or lost.
        """
        first = self._call("list", prefix, lambda: iter(self._inner.list(prefix)))
        return self._resuming(prefix, first)

    def _resuming(self, prefix: str, keys: Iterator[str]) -> Iterator[str]:
        last: str | None = None
        failures = 0
        while True:
            try:
                for key in keys:
                    if last is not None and key <= last:
                        continue
                    last = key
                    failures = 0
                    yield key
                return
            except TransientBackendError as exc:
                failures += 1
                if failures >= self._attempts:
                    raise self._exhausted("list", prefix, exc) from exc
                self._sleep(self.delay(failures))
                keys = self._call("list", prefix, lambda: iter(self._inner.list(prefix)))

    def list_after(self, prefix: str, after: str) -> Iterator[str]:
        """``base.list_after`` of the inner backend, read whole, with retries (a tail is
        short: it is what is new)."""
        return iter(self._call("list", prefix,
                               lambda: list(list_after(self._inner, prefix, after))))

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        last: TransientBackendError | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                return fn()
            except TransientBackendError as exc:
                last = exc
                if attempt < self._attempts:
                    self._sleep(self.delay(attempt))
        raise self._exhausted(op, key, last)

    def _exhausted(
        self, op: str, key: str, last: TransientBackendError | None
    ) -> TransientBackendError:
        error = TransientBackendError(
            f"{op} {key!r} on {self.url}: gave up after {self._attempts} attempts; "
            f"the backend keeps failing, try again later (last error: {last})"
        )
        error.__cause__ = last
        return error
