"""Wrappers: retry, read-only and fault injection, alone and composed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from artifactstore.backends import (
    Backend,
    FaultInjectingBackend,
    MemoryBackend,
    ReadOnlyBackend,
    RetryingBackend,
    drop_memory_store,
)
from artifactstore.backends.base import capable, put_from_file
from artifactstore.core.errors import (
    BackendError,
    BackendUnavailableError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyError,
    TransientBackendError,
)
from artifactstore.testing import BackendConformance, BackendSpec


@pytest.fixture
def memory() -> Iterator[MemoryBackend]:
    backend = MemoryBackend("wrappers-test")
    yield backend
    drop_memory_store("wrappers-test")


class Sleeps:
    """A fake ``sleep`` that records the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def retrying(inner: Backend, sleeps: Sleeps, attempts: int = 5) -> RetryingBackend:
    return RetryingBackend(inner, attempts=attempts, sleep=sleeps, jitter=False)


# -- retry -------------------------------------------------------------------


def test_transient_errors_are_retried_with_backoff(memory: MemoryBackend) -> None:
    memory.put("k", b"v")
    faulty = FaultInjectingBackend(memory, fail_calls=[1, 2, 3])
    sleeps = Sleeps()
    assert retrying(faulty, sleeps).get("k") == b"v"
    assert faulty.calls["get"] == 4
    assert sleeps.delays == [0.05, 0.1, 0.2]


def test_backoff_is_capped_and_jitter_is_seeded() -> None:
    exact = RetryingBackend(MemoryBackend("x"), base_delay=0.5, max_delay=2.0, jitter=False)
    assert [exact.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    first = RetryingBackend(MemoryBackend("x"), seed=4)
    second = RetryingBackend(MemoryBackend("x"), seed=4)
    delays = [first.delay(n) for n in range(1, 8)]
    assert delays == [second.delay(n) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        cap = min(2.0, 0.05 * 2 ** (n - 1))
        assert cap / 2 <= delay <= cap
    drop_memory_store("x")


@pytest.mark.parametrize("error", [BackendError, BackendUnavailableError, ReadOnlyError])
def test_permanent_errors_pass_through_at_once(
    memory: MemoryBackend, error: type[BackendError]
) -> None:
    faulty = FaultInjectingBackend(memory, fail_calls=[1], error=error)
    sleeps = Sleeps()
    with pytest.raises(error):
        retrying(faulty, sleeps).put("k", b"v")
    assert faulty.total_calls == 1
    assert sleeps.delays == []


def test_not_found_is_not_retried(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory)
    sleeps = Sleeps()
    with pytest.raises(NotFoundError):
        retrying(faulty, sleeps).get("missing")
    assert faulty.total_calls == 1


def test_attempts_exhausted_gives_a_clear_error(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, transient_rate=1.0)
    sleeps = Sleeps()
    with pytest.raises(TransientBackendError) as info:
        retrying(faulty, sleeps, attempts=3).exists("k")
    message = str(info.value)
    assert "gave up after 3 attempts" in message
    assert "exists 'k' on memory://wrappers-test" in message
    assert "\n" not in message
    assert isinstance(info.value.__cause__, TransientBackendError)
    assert faulty.calls["exists"] == 3
    assert len(sleeps.delays) == 2


def test_put_if_absent_lost_response_is_ours(memory: MemoryBackend) -> None:
    """The first create succeeds on the server but its answer is lost: still True."""
    faulty = FaultInjectingBackend(
        memory, fail_calls=[1], operation="put_if_absent", lost_response=True
    )
    assert retrying(faulty, Sleeps()).put_if_absent("ref/1", b"mine") is True
    assert memory.get("ref/1") == b"mine"
    assert faulty.calls["put_if_absent"] == 2


def test_put_if_absent_lost_response_without_the_check_would_say_false(
    memory: MemoryBackend,
) -> None:
    """What the read-back protects against: a plain retry reports the race as lost."""
    faulty = FaultInjectingBackend(
        memory, fail_calls=[1], operation="put_if_absent", lost_response=True
    )
    with pytest.raises(TransientBackendError):
        faulty.put_if_absent("ref/1", b"mine")
    assert faulty.put_if_absent("ref/1", b"mine") is False


def test_put_if_absent_other_writer_still_wins_after_a_transient_failure(
    memory: MemoryBackend,
) -> None:
    memory.put("ref/1", b"theirs")
    faulty = FaultInjectingBackend(memory, fail_calls=[1], operation="put_if_absent")
    assert retrying(faulty, Sleeps()).put_if_absent("ref/1", b"mine") is False
    assert memory.get("ref/1") == b"theirs"


def test_put_if_absent_without_failures_reads_nothing_back(memory: MemoryBackend) -> None:
    memory.put("ref/1", b"theirs")
    faulty = FaultInjectingBackend(memory)
    assert retrying(faulty, Sleeps()).put_if_absent("ref/1", b"theirs") is False
    assert faulty.calls["get"] == 0


def test_listing_resumes_after_a_mid_listing_failure(memory: MemoryBackend) -> None:
    keys = [f"k/{n:02d}" for n in range(10)]
    for key in keys:
        memory.put(key, b"")
    faulty = FaultInjectingBackend(memory, fail_list_after=4, fail_listings=[1])
    assert list(retrying(faulty, Sleeps()).list("k/")) == keys
    assert faulty.calls["list"] == 2


def test_listing_gives_up_when_it_keeps_failing(memory: MemoryBackend) -> None:
    memory.put("k/1", b"")
    faulty = FaultInjectingBackend(memory, fail_list_after=0)
    with pytest.raises(TransientBackendError, match="gave up after 3 attempts"):
        list(retrying(faulty, Sleeps(), attempts=3).list())


def test_attempts_must_be_positive(memory: MemoryBackend) -> None:
    with pytest.raises(InvalidInputError):
        RetryingBackend(memory, attempts=0)


# -- read-only ---------------------------------------------------------------


def test_read_only_refuses_writes(memory: MemoryBackend) -> None:
    memory.put("k", b"v")
    view = ReadOnlyBackend(memory)
    for call in (
        lambda: view.put("k", b"x"),
        lambda: view.put_if_absent("new", b"x"),
        lambda: view.put_parts("k", [b"x"]),
        lambda: view.delete("k"),
    ):
        with pytest.raises(ReadOnlyError, match="read-only") as info:
            call()
        assert isinstance(info.value, PermissionError)
    assert memory.get("k") == b"v"
    assert not memory.exists("new")


def test_read_only_reads_pass_through(memory: MemoryBackend) -> None:
    memory.put("a/k", b"value")
    view = ReadOnlyBackend(memory)
    assert view.get("a/k") == b"value"
    assert view.get_range("a/k", 1, 3) == b"alu"
    assert view.exists("a/k")
    assert view.stat("a/k").size == 5
    assert list(view.list("a/")) == ["a/k"]
    assert view.url == memory.url
    with pytest.raises(InvalidInputError):
        view.put("../escape", b"x")


# -- fault injection -----------------------------------------------------------


def _pattern(backend: FaultInjectingBackend, calls: int) -> list[bool]:
    failed = []
    for n in range(calls):
        try:
            backend.put(f"k{n}", b"v")
        except TransientBackendError:
            failed.append(True)
        else:
            failed.append(False)
    return failed


def test_faults_are_deterministic() -> None:
    runs = []
    for name in ("det-a", "det-b"):
        runs.append(
            _pattern(FaultInjectingBackend(MemoryBackend(name), transient_rate=0.3, seed=1), 200)
        )
        drop_memory_store(name)
    assert runs[0] == runs[1]
    assert 30 < sum(runs[0]) < 90
    other = _pattern(FaultInjectingBackend(MemoryBackend("det-c"), transient_rate=0.3, seed=2), 200)
    drop_memory_store("det-c")
    assert other != runs[0]


def test_fail_nth_call_of_an_operation(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, fail_calls=[2], operation="put")
    faulty.put("a", b"1")
    faulty.exists("a")
    with pytest.raises(TransientBackendError, match="put #2"):
        faulty.put("b", b"2")
    faulty.put("c", b"3")
    assert not memory.exists("b")
    assert faulty.calls == {"put": 3, "exists": 1}
    assert faulty.faults == {"put": 1}
    assert faulty.total_calls == 4


def test_fail_nth_call_overall(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, fail_calls=[3], error=BackendError)
    faulty.put("a", b"1")
    faulty.get("a")
    with pytest.raises(BackendError, match="call #3"):
        faulty.exists("a")


def test_fail_permanently_after(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, fail_permanently_after=2)
    faulty.put("a", b"1")
    faulty.get("a")
    for _ in range(3):
        with pytest.raises(BackendUnavailableError):
            faulty.get("a")


def test_truncated_write_leaves_a_prefix(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, truncate_writes=[2], truncate_to=3)
    faulty.put("a", b"complete")
    with pytest.raises(TransientBackendError, match="3 of 10 bytes"):
        faulty.put_if_absent("b", b"0123456789")
    assert memory.get("b") == b"012"
    assert faulty.faults["put_if_absent"] == 1


def test_truncation_defaults_to_half(memory: MemoryBackend) -> None:
    faulty = FaultInjectingBackend(memory, truncate_writes=[1])
    with pytest.raises(TransientBackendError):
        faulty.put("a", b"abcdefgh")
    assert memory.get("a") == b"abcd"


def test_list_faults(memory: MemoryBackend) -> None:
    for key in ("a", "b", "c"):
        memory.put(key, b"")
    with pytest.raises(TransientBackendError):
        FaultInjectingBackend(memory, fail_calls=[1], operation="list").list()
    listing = FaultInjectingBackend(memory, fail_list_after=2).list()
    assert next(listing) == "a"
    assert next(listing) == "b"
    with pytest.raises(TransientBackendError, match="after 2 keys"):
        next(listing)


def test_unknown_operation_is_rejected(memory: MemoryBackend) -> None:
    with pytest.raises(InvalidInputError, match="unknown operation"):
        FaultInjectingBackend(memory, operation="gett")


# -- composition ---------------------------------------------------------------


def test_wrappers_compose(memory: MemoryBackend) -> None:
    memory.put("k", b"v")
    stack = ReadOnlyBackend(
        RetryingBackend(
            FaultInjectingBackend(memory, transient_rate=0.5, seed=3),
            attempts=20,
            sleep=Sleeps(),
        )
    )
    assert all(stack.get("k") == b"v" for _ in range(20))
    with pytest.raises(ReadOnlyError):
        stack.put("k", b"x")


class TestRetryingOverFlakyMemory(BackendConformance):
    """The retry wrapper over a flaky backend still meets the whole contract."""

    race_uses_processes = False

    @pytest.fixture
    def backend_spec(self, memory_spec: BackendSpec) -> BackendSpec:
        return memory_spec

    @pytest.fixture
    def backend(self, backend_spec: BackendSpec) -> Backend:
        flaky = FaultInjectingBackend(backend_spec.open(), transient_rate=0.2, seed=11)
        return RetryingBackend(flaky, attempts=30, sleep=Sleeps(), seed=0)


# -- optional capabilities through a chain of wrappers -----------------------


def test_a_file_put_through_wrappers_reaches_a_backend_without_put_file(
        memory: MemoryBackend, tmp_path: Path) -> None:
    """A wrapper has ``put_file`` whatever it wraps: over a backend without one (memory,
    local) the file's first ``size`` bytes are read and ``put`` (no AttributeError)."""
    assert not hasattr(memory, "put_file")
    spool = tmp_path / "spool"
    spool.write_bytes(b"pack bytes and then more")
    chain = RetryingBackend(memory, jitter=False, sleep=Sleeps())
    faulty = RetryingBackend(FaultInjectingBackend(memory, fail_calls=[1]), jitter=False,
                             sleep=Sleeps())
    with spool.open("rb") as file:
        put_from_file(chain, "packs/p", file, len(b"pack bytes"))
        chain.put_file("packs/q", file, 4)
        faulty.put_file("packs/s", file, 9)  # failed once, retried from the file's start
    assert memory.get("packs/p") == b"pack bytes"
    assert memory.get("packs/q") == b"pack"
    assert memory.get("packs/s") == b"pack byte"
    assert capable(chain, "supports_atomic_create")
    assert not capable(chain, "supports_streamed_put")
    assert capable(ReadOnlyBackend(chain), "read_only")
    with pytest.raises(ReadOnlyError), spool.open("rb") as file:
        put_from_file(ReadOnlyBackend(chain), "packs/r", file, 4)
