"""The backend conformance suite: one pytest base class every backend passes.

A backend's test module subclasses :class:`BackendConformance` and provides a
``backend_spec`` fixture: a picklable :class:`BackendSpec` (URL and options)
naming a fresh, empty store. The suite opens backends from it, in this
process and, for the put-if-absent race, in spawned processes::

    class TestMemoryBackend(BackendConformance):
        race_uses_processes = False  # memory state lives in one process

        @pytest.fixture
        def backend_spec(self) -> BackendSpec:
            return BackendSpec(f"memory://{uuid.uuid4().hex}")

A subclass may also override the ``backend`` fixture (e.g. to wrap it).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from artifactstore.backends import Backend, open_backend
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.testing.processes import run_workers

__all__ = ["BackendConformance", "BackendSpec", "race_put_if_absent"]

INVALID_KEYS = ["", "/abs", "a//b", "a/./b", "../x", "a/..", "a/", "a\\b", "nul\x00"]
INVALID_PREFIXES = ["/a", "../", "a//b", "a/../b", "a\x00"]


@dataclass(frozen=True)
class BackendSpec:
    """How to open a backend anywhere, including in another process."""

    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Backend:
        """A new backend instance on the store."""
        return open_backend(self.url, **self.options)


def _payload(worker: int, key: str) -> bytes:
    return f"worker {worker} claims {key}\n".encode() * 32


def _race_worker(
    worker: int,
    barrier: Any,
    results: Any,
    spec: BackendSpec,
    keys: Sequence[str],
    timeout: float,
) -> None:
    """Open the store, then ``put_if_absent`` each key once all workers are ready."""
    try:
        backend = spec.open()
        try:
            won: list[bool] = []
            barrier.wait(timeout)
            for key in keys:
                barrier.wait(timeout)
                won.append(backend.put_if_absent(key, _payload(worker, key)))
        finally:
            backend.close()
        results.put((worker, won, None))
    except BaseException as exc:
        barrier.abort()
        results.put((worker, None, f"{type(exc).__name__}: {exc}"))


def race_put_if_absent(
    spec: BackendSpec,
    keys: Sequence[str],
    *,
    workers: int = 8,
    processes: bool = True,
    timeout: float = 120.0,
) -> dict[int, list[bool]]:
    """Let ``workers`` clients ``put_if_absent`` every key at the same moment.

    Workers are spawned processes (``processes=True``) or threads; all of
    them open their backend first, then meet at a barrier before each key so
    the attempts really overlap. Returns worker id -> list of results per key.
    """
    if not processes:
        return _race_threads(spec, keys, workers, timeout)
    result: dict[int, list[bool]] = run_workers(
        _race_worker, (spec, list(keys), timeout), workers=workers, timeout=timeout
    )
    return result


def _race_threads(
    spec: BackendSpec, keys: Sequence[str], workers: int, timeout: float
) -> dict[int, list[bool]]:
    barrier = threading.Barrier(workers)
    collected: list[tuple[int, list[bool] | None, str | None]] = []

    class _Sink:
        def put(self, item: tuple[int, list[bool] | None, str | None]) -> None:
            collected.append(item)

    threads = [
        threading.Thread(target=_race_worker, args=(w, barrier, _Sink(), spec, list(keys), timeout))
        for w in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    errors = [f"worker {w}: {e}" for w, _, e in collected if e]
    if errors or len(collected) != workers:
        raise AssertionError("; ".join(errors) or "race workers did not finish")
    return {w: won for w, won, _ in collected if won is not None}


class BackendConformance:
    """Contract tests for every :class:`Backend`; subclass and give ``backend_spec``."""

    #: spawned processes race for ``put_if_absent``; False: threads in this process
    race_uses_processes: ClassVar[bool] = True
    race_workers: ClassVar[int] = 8
    race_keys: ClassVar[int] = 20

    @pytest.fixture
    def backend_spec(self) -> BackendSpec:
        """A fresh, empty store; every subclass must override this fixture."""
        raise NotImplementedError("subclasses provide a backend_spec fixture")

    @pytest.fixture
    def backend(self, backend_spec: BackendSpec) -> Iterator[Backend]:
        """The backend under test, opened from ``backend_spec``."""
        backend = backend_spec.open()
        yield backend
        backend.close()

    @pytest.fixture
    def other_client(self, backend_spec: BackendSpec) -> Iterator[Backend]:
        """A second, independent instance on the same store."""
        backend = backend_spec.open()
        yield backend
        backend.close()

    # -- shape -------------------------------------------------------------

    def test_satisfies_protocol(self, backend: Backend) -> None:
        assert isinstance(backend, Backend)
        assert isinstance(backend.url, str)
        assert backend.url
        assert isinstance(backend.supports_atomic_create, bool)
        assert isinstance(backend.supports_range, bool)

    def test_url_has_no_credentials(self, backend: Backend, backend_spec: BackendSpec) -> None:
        for name in ("key", "secret", "token"):
            value = backend_spec.options.get(name)
            if isinstance(value, str) and len(value) > 3:
                assert value not in backend.url

    def test_close_is_idempotent(self, backend_spec: BackendSpec) -> None:
        backend = backend_spec.open()
        backend.close()
        backend.close()

    # -- get / put ----------------------------------------------------------

    def test_put_get_round_trip(self, backend: Backend) -> None:
        backend.put("a/b/c.bin", b"hello world")
        data = backend.get("a/b/c.bin")
        assert data == b"hello world"
        assert isinstance(data, bytes)

    def test_empty_object(self, backend: Backend) -> None:
        backend.put("empty", b"")
        assert backend.get("empty") == b""
        assert backend.exists("empty")
        assert (backend.stat("empty").key, backend.stat("empty").size) == ("empty", 0)
        assert backend.get_range("empty", 0, 10) == b""
        assert list(backend.list()) == ["empty"]

    def test_large_object(self, backend: Backend) -> None:
        data = random.Random(7).randbytes(3 * 2**20 + 123)
        backend.put("big/object", data)
        assert backend.get("big/object") == data
        assert backend.stat("big/object").size == len(data)
        assert backend.get_range("big/object", 2**20, 4096) == data[2**20 : 2**20 + 4096]

    def test_put_parts_writes_the_concatenation(self, backend: Backend) -> None:
        rng = random.Random(11)
        # More parts than one writev call takes, empty parts, views and bytes mixed.
        parts: list[bytes | memoryview] = []
        for i in range(2500):
            piece = rng.randbytes(rng.randrange(0, 300))
            parts.append(memoryview(piece) if i % 3 else piece)
        expected = b"".join(parts)
        backend.put_parts("packs/p1", parts)
        assert backend.get("packs/p1") == expected
        backend.put_parts("packs/p1", [b"replaced"])
        assert backend.get("packs/p1") == b"replaced"
        backend.put_parts("packs/empty", [])
        assert backend.get("packs/empty") == b""
        assert sorted(backend.list("packs/")) == ["packs/empty", "packs/p1"]

    def test_put_overwrites(self, backend: Backend) -> None:
        backend.put("k", b"first version")
        backend.put("k", b"second")
        assert backend.get("k") == b"second"
        assert backend.stat("k").size == len(b"second")
        assert list(backend.list()) == ["k"]

    def test_unusual_key_characters(self, backend: Backend) -> None:
        keys = ["sp ace/file name.bin", "uni/\u00fcml\u00e4ut-\u6587\u4ef6", "sym/a=b,c;d@e+f"]
        for index, key in enumerate(keys):
            backend.put(key, bytes([index]) * 3)
        for index, key in enumerate(keys):
            assert backend.get(key) == bytes([index]) * 3
        assert list(backend.list()) == sorted(keys)

    # -- ranges -------------------------------------------------------------

    @pytest.mark.parametrize(
        ("start", "length"),
        [(0, 10), (10, 0), (100, 50), (1000, 100), (1023, 1), (1024, 5), (5000, 1), (0, 2000)],
    )
    def test_get_range(self, backend: Backend, start: int, length: int) -> None:
        data = bytes(range(256)) * 4
        backend.put("r", data)
        assert backend.get_range("r", start, length) == data[start : start + length]

    def test_get_range_rejects_negative(self, backend: Backend) -> None:
        backend.put("r", b"abc")
        with pytest.raises(InvalidInputError):
            backend.get_range("r", -1, 2)
        with pytest.raises(InvalidInputError):
            backend.get_range("r", 0, -2)

    # -- missing keys ---------------------------------------------------------

    def test_missing_key_raises_not_found(self, backend: Backend) -> None:
        for call in (
            lambda: backend.get("no/such"),
            lambda: backend.get_range("no/such", 0, 4),
            lambda: backend.get_range("no/such", 0, 0),
            lambda: backend.stat("no/such"),
        ):
            with pytest.raises(NotFoundError) as info:
                call()
            assert isinstance(info.value, FileNotFoundError)
            message = str(info.value)
            assert "no/such" in message
            assert backend.url in message
            assert "\n" not in message

    def test_a_directory_is_not_an_object(self, backend: Backend) -> None:
        backend.put("dir/child", b"x")
        assert not backend.exists("dir")
        with pytest.raises(NotFoundError):
            backend.get("dir")
        with pytest.raises(NotFoundError):
            backend.stat("dir")

    # -- exists / delete ----------------------------------------------------

    def test_exists(self, backend: Backend) -> None:
        assert not backend.exists("e/x")
        backend.put("e/x", b"1")
        assert backend.exists("e/x")
        assert not backend.exists("e/xy")
        assert not backend.exists("e/x/y")

    def test_delete_is_idempotent(self, backend: Backend) -> None:
        backend.put("d/1", b"1")
        backend.delete("d/1")
        assert not backend.exists("d/1")
        backend.delete("d/1")
        backend.delete("never/existed")
        with pytest.raises(NotFoundError):
            backend.get("d/1")
        assert list(backend.list()) == []

    def test_stat(self, backend: Backend) -> None:
        backend.put("s/t", b"12345")
        info = backend.stat("s/t")
        assert (info.key, info.size) == ("s/t", 5)
        backend.put("s/t", b"67890!")
        replaced = backend.stat("s/t")
        assert replaced.size == 6
        if info.etag is not None:  # references rely on it to notice a changed source
            assert replaced.etag is not None
            assert replaced.etag != info.etag

    # -- listing --------------------------------------------------------------

    KEYS: ClassVar[list[str]] = ["a/bx", "a/by/z", "a/c", "ab", "b", "x/y/z/deep"]

    def _fill(self, backend: Backend) -> None:
        for key in random.Random(3).sample(self.KEYS, len(self.KEYS)):
            backend.put(key, key.encode())

    def test_list_empty_store(self, backend: Backend) -> None:
        assert list(backend.list()) == []
        assert list(backend.list("a/")) == []

    def test_list_all_sorted(self, backend: Backend) -> None:
        self._fill(backend)
        keys = backend.list()
        assert iter(keys) is keys or isinstance(keys, Iterator)
        assert list(keys) == sorted(self.KEYS)

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("", ["a/bx", "a/by/z", "a/c", "ab", "b", "x/y/z/deep"]),
            ("a", ["a/bx", "a/by/z", "a/c", "ab"]),
            ("a/", ["a/bx", "a/by/z", "a/c"]),
            ("a/b", ["a/bx", "a/by/z"]),
            ("a/by", ["a/by/z"]),
            ("a/by/", ["a/by/z"]),
            ("a/c", ["a/c"]),
            ("x/y/z/d", ["x/y/z/deep"]),
            ("x/y/", ["x/y/z/deep"]),
            ("zz", []),
            ("a/q", []),
            ("nope/", []),
        ],
    )
    def test_list_prefix(self, backend: Backend, prefix: str, expected: list[str]) -> None:
        self._fill(backend)
        assert list(backend.list(prefix)) == expected

    def test_list_reflects_deletes(self, backend: Backend) -> None:
        self._fill(backend)
        backend.delete("a/c")
        assert "a/c" not in list(backend.list())
        assert list(backend.list("a/")) == ["a/bx", "a/by/z"]

    # -- put_if_absent ------------------------------------------------------

    def test_put_if_absent(self, backend: Backend) -> None:
        assert backend.put_if_absent("p/1", b"first") is True
        assert backend.put_if_absent("p/1", b"second") is False
        assert backend.get("p/1") == b"first"
        assert list(backend.list("p/")) == ["p/1"]

    def test_put_if_absent_after_delete(self, backend: Backend) -> None:
        assert backend.put_if_absent("p/2", b"one") is True
        backend.delete("p/2")
        assert backend.put_if_absent("p/2", b"two") is True
        assert backend.get("p/2") == b"two"

    def test_put_if_absent_empty_and_existing_from_put(self, backend: Backend) -> None:
        assert backend.put_if_absent("p/empty", b"") is True
        assert backend.put_if_absent("p/empty", b"x") is False
        assert backend.get("p/empty") == b""
        backend.put("p/3", b"via put")
        assert backend.put_if_absent("p/3", b"other") is False
        assert backend.get("p/3") == b"via put"

    def test_listing_shows_only_objects(self, backend: Backend) -> None:
        """No temp file, marker or partial upload shows up after writes and refusals."""
        backend.put("o/a", b"1")
        backend.put("o/a", b"2")
        assert backend.put_if_absent("o/b", b"3")
        assert not backend.put_if_absent("o/b", b"4")
        assert not backend.put_if_absent("o/a", b"5")
        backend.delete("o/c")
        assert list(backend.list()) == ["o/a", "o/b"]
        assert list(backend.list("o/")) == ["o/a", "o/b"]

    # -- key validation -----------------------------------------------------

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys_rejected(self, backend: Backend, key: str) -> None:
        calls: dict[str, Callable[[], object]] = {
            "get": lambda: backend.get(key),
            "get_range": lambda: backend.get_range(key, 0, 1),
            "put": lambda: backend.put(key, b"x"),
            "put_if_absent": lambda: backend.put_if_absent(key, b"x"),
            "exists": lambda: backend.exists(key),
            "delete": lambda: backend.delete(key),
            "stat": lambda: backend.stat(key),
        }
        for name, call in calls.items():
            try:
                call()
            except InvalidInputError:
                continue
            pytest.fail(f"{name} accepted invalid key {key!r}")
        assert list(backend.list()) == []

    @pytest.mark.parametrize("prefix", INVALID_PREFIXES)
    def test_invalid_prefixes_rejected(self, backend: Backend, prefix: str) -> None:
        with pytest.raises(InvalidInputError):
            list(backend.list(prefix))

    # -- several clients ----------------------------------------------------

    def test_other_client_sees_changes_at_once(
        self, backend: Backend, other_client: Backend
    ) -> None:
        """No listing or metadata cache: a second instance sees writes immediately."""
        assert list(other_client.list("c/")) == []
        assert not other_client.exists("c/k")
        backend.put("c/k", b"v1")
        assert other_client.exists("c/k")
        assert other_client.stat("c/k").size == 2
        assert list(other_client.list("c/")) == ["c/k"]
        assert list(other_client.list()) == ["c/k"]
        assert other_client.get("c/k") == b"v1"
        backend.put("c/k2", b"v2")
        assert list(other_client.list("c/")) == ["c/k", "c/k2"]
        backend.delete("c/k")
        assert not other_client.exists("c/k")
        assert list(other_client.list("c/")) == ["c/k2"]
        assert other_client.put_if_absent("c/k2", b"late") is False

    @pytest.mark.slow
    def test_put_if_absent_race(self, backend: Backend, backend_spec: BackendSpec) -> None:
        """Workers race for each key: exactly one wins and its bytes are stored."""
        keys = [f"race/{index:02d}" for index in range(self.race_keys)]
        outcomes = race_put_if_absent(
            backend_spec,
            keys,
            workers=self.race_workers,
            processes=self.race_uses_processes,
        )
        assert len(outcomes) == self.race_workers
        for position, key in enumerate(keys):
            winners = [w for w, won in outcomes.items() if won[position]]
            assert len(winners) == 1, f"{key}: winners {winners}"
            assert backend.get(key) == _payload(winners[0], key)
        assert list(backend.list("race/")) == keys
