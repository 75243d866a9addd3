"""Fault-injecting wrapper: deterministic failures for testing the layers above.

Vocabulary: a *call* is one invocation of a backend method; calls are
numbered from 1, overall and per operation (``get``, ``get_range``, ``put``,
``put_if_absent``, ``exists``, ``delete``, ``list``, ``stat``). A *write* is a
``put`` or ``put_if_absent``; writes are numbered separately for truncation.

Every fault is a function of the call numbers and of a seeded RNG that draws
exactly one number per call, so a scenario replays identically run after run
(given the same sequence of calls). Counters of calls made and faults
injected are public for assertions.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO, TypeVar

from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.base import Backend, ObjectInfo
from artifactstore.core.errors import (
    BackendError,
    BackendUnavailableError,
    InvalidInputError,
    TransientBackendError,
)

__all__ = ["OPERATIONS", "FaultInjectingBackend"]

T = TypeVar("T")

OPERATIONS = frozenset(
    {"get", "get_range", "put", "put_if_absent", "exists", "delete", "list", "stat"}
)
_WRITES = frozenset({"put", "put_if_absent", "delete"})


class FaultInjectingBackend(BackendWrapper):
    """Wrap ``inner`` and fail chosen calls, reproducibly."""

    def __init__(
        self,
        inner: Backend,
        *,
        fail_calls: Iterable[int] = (),
        operation: str | None = None,
        error: type[BackendError] = TransientBackendError,
        transient_rate: float = 0.0,
        seed: int = 0,
        fail_permanently_after: int | None = None,
        truncate_writes: Iterable[int] = (),
        truncate_to: int | None = None,
        fail_list_after: int | None = None,
        fail_listings: Iterable[int] | None = None,
        lost_response: bool = False,
        kill_after: str | None = None,
    ) -> None:
        """Configure the faults (all off by default).

        * ``fail_calls``: call numbers that raise ``error``; they count calls
          of ``operation`` only when it is given, else all calls.
        * ``transient_rate``: fraction of calls (of ``operation`` if given)
          failing with ``TransientBackendError``, drawn from ``Random(seed)``.
        * ``fail_permanently_after``: every call after the first N raises
          ``BackendUnavailableError`` (the backend went away).
        * ``truncate_writes``: write numbers whose data reaches the inner
          backend cut to ``truncate_to`` bytes (default: half), after which
          the call raises ``TransientBackendError``, as a crash mid-upload
          on a backend without atomic writes would leave it.
        * ``fail_list_after``: listings raise ``TransientBackendError`` after
          yielding at most that many keys; only the listing calls numbered
          in ``fail_listings`` when it is given, else every listing.
        * ``lost_response``: injected failures of writes and deletes happen
          *after* the inner call succeeded (the response was lost).
        * ``kill_after``: a regular expression; right after the first write whose
          key it matches in full reaches the inner backend, the process SIGKILLs
          itself (a crash at exactly that point, for tests run in a subprocess).
        """
        if operation is not None and operation not in OPERATIONS:
            raise InvalidInputError(f"unknown operation {operation!r}; one of {sorted(OPERATIONS)}")
        super().__init__(inner)
        self._fail_calls = frozenset(fail_calls)
        self._operation = operation
        self._error = error
        self._rate = transient_rate
        self._rng = random.Random(seed)
        self._permanent_after = fail_permanently_after
        self._truncate_writes = frozenset(truncate_writes)
        self._truncate_to = truncate_to
        self._fail_list_after = fail_list_after
        self._fail_listings = None if fail_listings is None else frozenset(fail_listings)
        self._lost_response = lost_response
        self._kill_after = None if kill_after is None else re.compile(kill_after)
        self._lock = threading.Lock()
        #: calls made, per operation
        self.calls: Counter[str] = Counter()
        #: faults injected, per operation
        self.faults: Counter[str] = Counter()
        self._writes = 0

    @property
    def total_calls(self) -> int:
        """Calls made so far, all operations together."""
        return sum(self.calls.values())

    def get(self, key: str) -> bytes:
        """``inner.get``, or an injected fault."""
        return self._run("get", key, lambda: self._inner.get(key))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``inner.get_range``, or an injected fault."""
        return self._run("get_range", key, lambda: self._inner.get_range(key, start, length))

    def exists(self, key: str) -> bool:
        """``inner.exists``, or an injected fault."""
        return self._run("exists", key, lambda: self._inner.exists(key))

    def stat(self, key: str) -> ObjectInfo:
        """``inner.stat``, or an injected fault."""
        return self._run("stat", key, lambda: self._inner.stat(key))

    def delete(self, key: str) -> None:
        """``inner.delete``, or an injected fault."""
        self._run("delete", key, lambda: self._inner.delete(key))

    def put(self, key: str, data: bytes) -> None:
        """``inner.put``, truncated or failed as configured."""
        self._write("put", key, data, self._inner.put)

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """``put`` of the joined parts, truncated or failed as configured."""
        self._write("put", key, b"".join(parts), self._inner.put)

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        """``put`` of the file's first ``size`` bytes, truncated or failed as configured."""
        self._write("put", key, os.pread(file.fileno(), size, 0), self._inner.put)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """``inner.put_if_absent``, truncated or failed as configured."""
        return self._write("put_if_absent", key, data, self._inner.put_if_absent)

    def list(self, prefix: str = "") -> Iterator[str]:
        """``inner.list``, failing at once or after ``fail_list_after`` keys."""
        keys = self._run("list", prefix, lambda: self._inner.list(prefix))
        if self._fail_list_after is None:
            return keys
        if self._fail_listings is not None and self.calls["list"] not in self._fail_listings:
            return keys
        return self._failing_listing(prefix, keys, self._fail_list_after)

    # -- helpers ---------------------------------------------------------

    def _decide(self, op: str) -> BackendError | None:
        """Count the call and return the fault to inject, if any."""
        with self._lock:
            self.calls[op] += 1
            total = sum(self.calls.values())
            draw = self._rng.random()
            targeted = self._operation is None or self._operation == op
            number = total if self._operation is None else self.calls[op]
            fault: BackendError | None = None
            if self._permanent_after is not None and total > self._permanent_after:
                fault = BackendUnavailableError(
                    f"injected fault: {op} on {self.url} (call #{total}): backend gone "
                    f"after {self._permanent_after} calls"
                )
            elif targeted and number in self._fail_calls:
                fault = self._error(
                    f"injected fault: {op} on {self.url} ({op if self._operation else 'call'} "
                    f"#{number}); expected by the test"
                )
            elif targeted and draw < self._rate:
                fault = TransientBackendError(
                    f"injected transient fault: {op} on {self.url} (call #{total}); retry"
                )
            if fault is not None:
                self.faults[op] += 1
            return fault

    def _run(self, op: str, key: str, fn: Callable[[], T]) -> T:
        fault = self._decide(op)
        if fault is not None and not (self._lost_response and op in _WRITES):
            raise fault
        result = fn()
        if fault is not None:
            raise fault
        return result

    def _write(self, op: str, key: str, data: bytes, fn: Callable[[str, bytes], T]) -> T:
        with self._lock:
            self._writes += 1
            truncate = self._writes in self._truncate_writes
        if not truncate:
            result = self._run(op, key, lambda: fn(key, data))
            if self._kill_after is not None and self._kill_after.fullmatch(key):
                os.kill(os.getpid(), signal.SIGKILL)  # the crash under test
            return result
        self._decide(op)
        keep = len(data) // 2 if self._truncate_to is None else self._truncate_to
        fn(key, data[:keep])
        with self._lock:
            self.faults[op] += 1
        raise TransientBackendError(
            f"injected fault: {op} {key!r} on {self.url}: connection lost after "
            f"{keep} of {len(data)} bytes"
        )

    def _failing_listing(self, prefix: str, keys: Iterator[str], after: int) -> Iterator[str]:
        for count, key in enumerate(keys):
            if count >= after:
                break
            yield key
        with self._lock:
            self.faults["list"] += 1
        raise TransientBackendError(
            f"injected fault: list {prefix!r} on {self.url}: connection lost after {after} keys"
        )
