"""Version records and alias events: behaviour, on-store checks and concurrent writers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from artifactstore.backends import (
    Backend,
    FaultInjectingBackend,
    MemoryBackend,
    RetryingBackend,
)
from artifactstore.core import encoding
from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.errors import (
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    TransientBackendError,
)
from artifactstore.objects.envelope import Kind, open_envelope, seal
from artifactstore.records.aliases import alias_event_key
from artifactstore.records.refs import (
    AliasEvent,
    NewVersion,
    ProtectedAliasError,
    Refs,
    VersionRecord,
)
from artifactstore.records.versions import default_writer, version_key
from artifactstore.testing import BackendSpec
from artifactstore.testing.processes import run_workers

PROJECT = "proj"


def digest(text: str) -> Digest:
    return hash_bytes(text.encode())


def commit(refs: Refs, artifact: str, content: str, **kw: Any) -> tuple[VersionRecord, bool]:
    kw.setdefault("type", "model")
    return refs.commit_version(NewVersion(
        artifact,
        manifest=digest("manifest " + content),
        digest=digest(content),
        size=len(content),
        files=1,
        **kw,
    ))


@pytest.fixture(params=["memory", "local"])
def spec(request: pytest.FixtureRequest) -> BackendSpec:
    return cast(BackendSpec, request.getfixturevalue(f"{request.param}_spec"))


@pytest.fixture
def backend(spec: BackendSpec) -> Iterator[Backend]:
    b = spec.open()
    yield b
    b.close()


@pytest.fixture
def refs(backend: Backend) -> Refs:
    return Refs(backend, PROJECT)


# -- versions -------------------------------------------------------------------------


def test_commit_versions(refs: Refs, backend: Backend) -> None:
    v0, created0 = commit(refs, "m", "a", description="first", metadata={"acc": 0.5}, run="r1")
    v1, created1 = commit(refs, "m", "b", created_by="alice@lab")
    assert (created0, created1) == (True, True)
    assert (v0.number, v0.label, v0.ref) == (0, "v0", "m:v0")
    assert (v1.number, v1.created_by) == (1, "alice@lab")
    assert v0.description == "first"
    assert dict(v0.metadata) == {"acc": 0.5}
    assert v0.run == "r1"
    assert "@" in v0.created_by
    assert v0.created_at.endswith("+00:00")
    assert len(v0.created_at.split(".")[1]) == len("123456+00:00")
    assert backend.exists(version_key(PROJECT, "m", 0))
    assert list(backend.list("projects/proj/artifacts/m/versions/")) == [
        "projects/proj/artifacts/m/versions/0000000000",
        "projects/proj/artifacts/m/versions/0000000001",
    ]
    # A fresh instance (no cache) reads the same records back.
    fresh = Refs(backend, PROJECT)
    assert fresh.versions("m") == [v0, v1]
    assert fresh.latest("m") == v1
    assert fresh.version("m", 0) == v0
    assert fresh.artifacts() == ["m"]


def test_identical_content_makes_no_new_version(refs: Refs) -> None:
    v0, _ = commit(refs, "m", "a")
    again, created = commit(refs, "m", "a", description="other text")
    assert created is False
    assert again == v0
    v1, created = commit(refs, "m", "b")
    assert (v1.number, created) == (1, True)
    # Only the *latest* counts: going back to earlier content is a new version.
    v2, created = commit(refs, "m", "a")
    assert (v2.number, created) == (2, True)
    assert [v.number for v in refs.versions("m")] == [0, 1, 2]


def test_type_must_match(refs: Refs) -> None:
    commit(refs, "m", "a", type="model")
    with pytest.raises(InvalidInputError, match=r"type 'model', not 'dataset'"):
        commit(refs, "m", "b", type="dataset")
    with pytest.raises(InvalidInputError, match=r"type 'model', not 'dataset'"):
        commit(refs, "m", "a", type="dataset")  # even for identical content
    assert [v.number for v in refs.versions("m")] == [0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"type": "bad type"}, "artifact type"),
        ({"type": ""}, "artifact type"),
        ({"metadata": {"when": object()}}, "cannot encode"),
        ({"metadata": {1: "x"}}, "metadata keys"),
        ({"description": 3}, "description"),
        ({"created_by": ""}, "created_by"),
    ],
)
def test_commit_refuses_bad_input(refs: Refs, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        commit(refs, "m", "a", **kwargs)
    with pytest.raises(NotFoundError):
        refs.versions("m")


def test_a_new_version_is_a_frozen_value_and_its_writer_defaults_to_user_at_host(
        refs: Refs) -> None:
    new = NewVersion("m", type="model", manifest=digest("m"), digest=digest("d"), size=1,
                     files=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.size = 2  # type: ignore[misc]
    record, created = refs.commit_version(new)
    assert created
    assert record.created_by == default_writer()
    assert new.created_by is None  # the caller's value is left as it was
    assert (record.artifact, record.type, record.size, record.files) == ("m", "model", 1, 1)


def test_commit_refuses_bad_names_and_counts(refs: Refs) -> None:
    with pytest.raises(InvalidInputError, match="artifact name"):
        commit(refs, "a/b", "x")
    with pytest.raises(InvalidInputError, match="size"):
        refs.commit_version(NewVersion("m", type="model", manifest=digest("m"),
                                       digest=digest("d"), size=-1, files=0))
    with pytest.raises(InvalidInputError, match="digest"):
        refs.commit_version(NewVersion("m", type="model", manifest=digest("m"),
                                       digest="ab" * 32,  # type: ignore[arg-type]
                                       size=1, files=0))
    with pytest.raises(InvalidInputError, match="project name"):
        Refs(MemoryBackend("x"), "../p")


def test_metadata_is_a_private_read_only_copy(refs: Refs) -> None:
    meta: dict[str, Any] = {"layers": [1, 2], "cfg": {"lr": 0.1}}
    v0, _ = commit(refs, "m", "a", metadata=meta)
    meta["layers"].append(3)
    assert v0.metadata["layers"] == [1, 2]
    with pytest.raises(TypeError):
        v0.metadata["x"] = 1  # type: ignore[index]
    v0b, _ = commit(refs, "m", "b", metadata={"t": (1, 2)})
    assert v0b.metadata["t"] == [1, 2]  # as every reader decodes it


def test_not_found_messages(refs: Refs) -> None:
    with pytest.raises(NotFoundError) as info:
        refs.versions("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "artifactstore ls" in message
    assert "\n" not in message
    for call in (
        lambda: refs.latest("nope"),
        lambda: refs.version("nope", 0),
        lambda: refs.resolve("nope", "latest"),
        lambda: refs.resolve("nope", "prod"),
        lambda: refs.aliases("nope"),
        lambda: refs.alias_history("nope", "prod"),
    ):
        with pytest.raises(NotFoundError, match="artifact 'nope' not found"):
            call()
    commit(refs, "m", "a")
    with pytest.raises(NotFoundError) as info:
        refs.version("m", 7)
    assert "m:v7" in str(info.value)
    assert "latest is m:v0" in str(info.value)
    with pytest.raises(NotFoundError, match=r"alias m:prod does not exist"):
        refs.resolve("m", "prod")
    with pytest.raises(NotFoundError, match=r"m:prod has never been set"):
        refs.alias_history("m", "prod")
    assert refs.aliases("m") == {}
    assert refs.artifacts() == ["m"]


def test_artifacts_sorted_and_scoped_to_project(backend: Backend) -> None:
    refs = Refs(backend, PROJECT)
    for name in ("zeta", "alpha", "a", "ab", "Beta"):
        commit(refs, name, name)
    commit(Refs(backend, "other"), "other-artifact", "x")
    assert refs.artifacts() == sorted(["zeta", "alpha", "a", "ab", "Beta"])
    assert Refs(backend, "other").artifacts() == ["other-artifact"]
    assert Refs(backend, "empty").artifacts() == []
    assert [v.number for v in refs.versions("a")] == [0]  # 'ab' is not part of 'a'


def test_resolve(refs: Refs) -> None:
    v0, _ = commit(refs, "m", "a")
    v1, _ = commit(refs, "m", "b")
    refs.set_alias("m", "prod", 0)
    assert refs.resolve("m", "latest") == v1
    assert refs.resolve("m", "v0") == v0
    assert refs.resolve("m", "v1") == v1
    assert refs.resolve("m", "prod") == v0
    with pytest.raises(NotFoundError, match="m:v2"):
        refs.resolve("m", "v2")
    with pytest.raises(InvalidInputError, match="leading zeros"):
        refs.resolve("m", "v01")
    with pytest.raises(InvalidInputError):
        refs.resolve("m", "a b")


# -- aliases ---------------------------------------------------------------------------


def _three_versions(refs: Refs) -> None:
    for content in "abc":
        commit(refs, "m", content)


def test_alias_set_move_remove_history(refs: Refs, backend: Backend) -> None:
    _three_versions(refs)
    e0 = refs.set_alias("m", "prod", 0, by="ann")
    e1 = refs.set_alias("m", "prod", 2, by="bob")
    assert refs.aliases("m") == {"prod": 2}
    again = refs.set_alias("m", "prod", 2, by="carl")  # no change: nothing written
    assert again == e1
    e2 = refs.remove_alias("m", "prod", by="dora")
    assert refs.aliases("m") == {}
    with pytest.raises(NotFoundError, match="was removed"):
        refs.resolve("m", "prod")
    with pytest.raises(NotFoundError, match="not set"):
        refs.remove_alias("m", "prod")
    e3 = refs.set_alias("m", "prod", 1, by="ed")
    assert [(e.seq, e.target, e.previous, e.by) for e in (e0, e1, e2, e3)] == [
        (0, 0, None, "ann"), (1, 2, 0, "bob"), (2, None, 2, "dora"), (3, 1, None, "ed"),
    ]  # fmt: skip
    history = Refs(backend, PROJECT).alias_history("m", "prod")
    assert history == [e0, e1, e2, e3]
    assert all(isinstance(e, AliasEvent) and not e.forced and not e.protected for e in history)
    assert list(backend.list("projects/proj/artifacts/m/aliases/")) == [
        alias_event_key(PROJECT, "m", "prod", n) for n in range(4)
    ]
    refs.set_alias("m", "best", 0)
    assert Refs(backend, PROJECT).aliases("m") == {"best": 0, "prod": 1}


def test_alias_target_must_exist(refs: Refs) -> None:
    commit(refs, "m", "a")
    with pytest.raises(NotFoundError, match="m:v5"):
        refs.set_alias("m", "prod", 5)
    with pytest.raises(NotFoundError, match="artifact 'x' not found"):
        refs.set_alias("x", "prod", 0)
    for bad in ("latest", "v1", "-p"):
        with pytest.raises(InvalidInputError):
            refs.set_alias("m", bad, 0)
    assert refs.aliases("m") == {}


def test_protected_alias_needs_force(refs: Refs) -> None:
    _three_versions(refs)
    refs.set_alias("m", "prod", 0, protect=True)
    attempts: list[Callable[[], AliasEvent]] = [
        lambda: refs.set_alias("m", "prod", 1),
        lambda: refs.set_alias("m", "prod", 0, protect=False),
        lambda: refs.remove_alias("m", "prod"),
    ]
    for attempt in attempts:
        with pytest.raises(ProtectedAliasError) as info:
            attempt()
        assert isinstance(info.value, ConflictError)
        assert info.value.exit_code == 10
        assert "force" in str(info.value)
        assert "m:prod" in str(info.value)
    assert refs.aliases("m") == {"prod": 0}
    # Re-affirming the same state is allowed and writes nothing.
    assert refs.set_alias("m", "prod", 0).seq == 0
    assert refs.set_alias("m", "prod", 0, protect=True).seq == 0
    moved = refs.set_alias("m", "prod", 1, force=True)
    assert (moved.target, moved.protected, moved.forced) == (1, True, True)
    with pytest.raises(ProtectedAliasError):
        refs.set_alias("m", "prod", 2)  # protection is kept on a forced move
    freed = refs.set_alias("m", "prod", 1, protect=False, force=True)
    assert (freed.protected, freed.forced) == (False, True)
    assert refs.set_alias("m", "prod", 2).forced is False
    refs.set_alias("m", "prod", 2, protect=True)
    removed = refs.remove_alias("m", "prod", force=True)
    assert (removed.target, removed.previous, removed.protected, removed.forced) == (
        None, 2, False, True,
    )  # fmt: skip
    assert refs.set_alias("m", "prod", 0).seq == removed.seq + 1  # free after removal


# -- backends without atomic create, lost responses ----------------------------------


class _NoAtomicCreate:
    """Delegates everything, but claims no atomic put_if_absent."""

    supports_atomic_create = False

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_writing_needs_atomic_create(memory_spec: BackendSpec) -> None:
    inner = memory_spec.open()
    commit(Refs(inner, PROJECT), "m", "a")
    refs = Refs(cast(Backend, _NoAtomicCreate(inner)), PROJECT)
    assert refs.latest("m").number == 0  # reading is fine
    with pytest.raises(ConfigurationError, match="atomic create"):
        commit(refs, "m", "b")
    with pytest.raises(ConfigurationError, match="atomic create"):
        refs.set_alias("m", "prod", 0)
    assert [v.number for v in refs.versions("m")] == [0]


def test_lost_create_response_is_recognised(memory_spec: BackendSpec) -> None:
    inner = memory_spec.open()
    # creates: 1 the version (lost), 2 its retry, 3 its journal entry, 4 the alias event
    # (lost), 5 its retry, 6 its journal entry
    faulty = FaultInjectingBackend(
        inner, fail_calls=[1, 4], operation="put_if_absent", lost_response=True
    )
    refs = Refs(RetryingBackend(faulty, sleep=lambda _: None), PROJECT)
    v0, created = commit(refs, "m", "a")
    assert (v0.number, created) == (0, True)
    event = refs.set_alias("m", "prod", 0)
    assert event.seq == 0
    records = [k for k in inner.list("projects/")
               if "/journal/" not in k and not k.endswith("/journal-head")]
    assert [k.rsplit("/", 1)[1] for k in records] == ["0000000000"] * 2
    assert len(list(inner.list(f"projects/{PROJECT}/journal/"))) == 2
    assert faulty.calls["put_if_absent"] == 6  # both records' responses were lost


def test_failed_commit_can_be_retried(memory_spec: BackendSpec) -> None:
    inner = memory_spec.open()
    faulty = FaultInjectingBackend(
        inner, fail_calls=[1], operation="put_if_absent", lost_response=True
    )
    refs = Refs(faulty, PROJECT)
    with pytest.raises(TransientBackendError):
        commit(refs, "m", "a")
    v0, created = commit(refs, "m", "a")  # the record landed: no second version
    assert (v0.number, created) == (0, False)
    assert len(list(inner.list())) == 1


# -- damaged and misplaced records -------------------------------------------------------


def _version_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": PROJECT, "artifact": "m", "number": 0, "type": "model",
        "manifest": digest("m").raw, "digest": digest("d").raw, "size": 1, "files": 1,
        "created_at": "2026-01-01T00:00:00.000000+00:00", "created_by": "x@y",
        "description": None, "metadata": {}, "run": None, "nonce": b"n" * 16,
    }  # fmt: skip
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _MISSING}


_MISSING = object()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"garbage", "truncated|envelope"),
        (seal(Kind.ALIAS_EVENT, encoding.pack(_version_body())), "expected VERSION"),
        (seal(Kind.VERSION, b"\xc1"), "malformed msgpack"),
        (seal(Kind.VERSION, encoding.pack([1, 2])), "not a map"),
        (seal(Kind.VERSION, encoding.pack(_version_body(size="1"))), "'size' is str"),
        (seal(Kind.VERSION, encoding.pack(_version_body(size=-1))), "'size'"),
        (seal(Kind.VERSION, encoding.pack(_version_body(size=True))), "'size' is bool"),
        (seal(Kind.VERSION, encoding.pack(_version_body(digest=b"x"))), "'digest'"),
        (seal(Kind.VERSION, encoding.pack(_version_body(files=_MISSING))), "'files' is missing"),
        (seal(Kind.VERSION, encoding.pack(_version_body(metadata=[]))), "'metadata'"),
        (seal(Kind.VERSION, encoding.pack(_version_body(type="a b"))), "invalid type"),
        (seal(Kind.VERSION, encoding.pack(_version_body(number=1))), "misplaced"),
        (seal(Kind.VERSION, encoding.pack(_version_body(artifact="n"))), "misplaced"),
        (seal(Kind.VERSION, encoding.pack(_version_body(project="q"))), "misplaced"),
    ],
)
def test_damaged_version_record(backend: Backend, data: bytes, match: str) -> None:
    key = version_key(PROJECT, "m", 0)
    backend.put(key, data)
    refs = Refs(backend, PROJECT)
    for call in (lambda: refs.version("m", 0), lambda: refs.versions("m"),
                 lambda: refs.latest("m"), lambda: commit(refs, "m", "new")):  # fmt: skip
        with pytest.raises(IntegrityError, match=match) as info:
            call()
        assert key in str(info.value)
        assert "\n" not in str(info.value)


def test_the_test_body_is_valid(backend: Backend) -> None:
    backend.put(version_key(PROJECT, "m", 0), seal(Kind.VERSION, encoding.pack(_version_body())))
    assert Refs(backend, PROJECT).version("m", 0).created_by == "x@y"


def test_copied_records_are_refused(refs: Refs, backend: Backend) -> None:
    commit(refs, "m", "a")
    commit(refs, "n", "a")
    refs.set_alias("m", "prod", 0)
    original = backend.get(version_key(PROJECT, "m", 0))
    backend.put(version_key(PROJECT, "m", 1), original)  # same artifact, other number
    backend.put(version_key(PROJECT, "n", 1), original)  # other artifact
    event = backend.get(alias_event_key(PROJECT, "m", "prod", 0))
    backend.put(alias_event_key(PROJECT, "m", "prod", 1), event)
    backend.put(alias_event_key(PROJECT, "m", "best", 0), event)
    backend.put(alias_event_key(PROJECT, "n", "prod", 0), event)
    fresh = Refs(backend, PROJECT)
    for call, key in (
        (lambda: fresh.version("m", 1), version_key(PROJECT, "m", 1)),
        (lambda: fresh.latest("n"), version_key(PROJECT, "n", 1)),
        (lambda: fresh.resolve("m", "prod"), alias_event_key(PROJECT, "m", "prod", 1)),
        (lambda: fresh.resolve("m", "best"), alias_event_key(PROJECT, "m", "best", 0)),
        (lambda: fresh.aliases("n"), alias_event_key(PROJECT, "n", "prod", 0)),
    ):
        with pytest.raises(IntegrityError, match="misplaced") as info:
            call()
        assert key in str(info.value)


def test_damaged_alias_event(refs: Refs, backend: Backend) -> None:
    commit(refs, "m", "a")
    key = alias_event_key(PROJECT, "m", "prod", 0)
    body = {
        "project": PROJECT, "artifact": "m", "alias": "prod", "seq": 0, "target": "0",
        "previous": None, "protected": False, "at": "t", "by": "b", "forced": False,
    }  # fmt: skip
    backend.put(key, seal(Kind.ALIAS_EVENT, encoding.pack(body)))
    with pytest.raises(IntegrityError, match="'target' is str") as info:
        refs.resolve("m", "prod")
    assert key in str(info.value)
    backend.put(key, seal(Kind.VERSION, encoding.pack(body)))
    with pytest.raises(IntegrityError, match="expected ALIAS_EVENT"):
        Refs(backend, PROJECT).alias_history("m", "prod")


def test_foreign_keys_in_logs_are_ignored(refs: Refs, backend: Backend) -> None:
    commit(refs, "m", "a")
    refs.set_alias("m", "prod", 0)
    backend.put("projects/proj/artifacts/m/versions/0000000000.sig", b"later format")
    backend.put("projects/proj/artifacts/m/aliases/prod/0000000000.sig", b"later format")
    assert [v.number for v in refs.versions("m")] == [0]
    assert commit(refs, "m", "b")[0].number == 1
    assert [e.seq for e in refs.alias_history("m", "prod")] == [0]


def test_records_bytes_are_envelopes(refs: Refs, backend: Backend) -> None:
    commit(refs, "m", "a")
    kind, payload = open_envelope(
        backend.get(version_key(PROJECT, "m", 0)), expected_kind=None, raw_length=None, what="t"
    )
    assert kind is Kind.VERSION
    body = encoding.unpack(payload)
    assert encoding.pack(body) == payload  # canonical
    assert len(body["nonce"]) == 16


# -- concurrent writers in separate processes -------------------------------------------

WORKERS = 8
TIMEOUT = 180.0


def _run_workers(
    target: Callable[..., None], spec: BackendSpec, args: tuple[Any, ...]
) -> dict[int, Any]:
    """Run ``target(worker, barrier, results, spec, *args)`` in WORKERS spawned processes."""
    return run_workers(target, (spec, *args), workers=WORKERS, timeout=TIMEOUT)


class _CountingCreates:
    """Delegates everything; counts ``put_if_absent`` calls that lost (returned False)."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.lost = 0

    def put_if_absent(self, key: str, data: bytes) -> bool:
        created = self._inner.put_if_absent(key, data)
        self.lost += not created
        return created

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _commit_worker(
    worker: int, barrier: Any, results: Any, spec: BackendSpec, count: int, same: bool
) -> None:
    try:
        backend = _CountingCreates(spec.open())
        try:
            refs = Refs(cast(Backend, backend), PROJECT)
            done = []
            for i in range(count):
                barrier.wait(TIMEOUT)  # every round, all writers commit at once
                content = "shared" if same else f"w{worker}-{i}"
                record, created = commit(
                    refs, "m", content, created_by=f"worker-{worker}", metadata={"i": i}
                )
                done.append((record.number, created))
        finally:
            backend.close()
        results.put((worker, (done, backend.lost), None))
    except BaseException as exc:
        barrier.abort()
        results.put((worker, None, f"{type(exc).__name__}: {exc}"))


def _split(outcomes: dict[int, Any]) -> tuple[dict[int, Any], int]:
    """Worker -> results, and the total of lost creates the workers counted."""
    return {w: done for w, (done, _) in outcomes.items()}, sum(n for _, n in outcomes.values())


def _check_concurrent_commits(spec: BackendSpec) -> None:
    per_worker = 5
    outcomes, lost = _split(_run_workers(_commit_worker, spec, (per_worker, False)))
    backend = spec.open()
    try:
        records = Refs(backend, PROJECT).versions("m")
    finally:
        backend.close()
    total = WORKERS * per_worker
    assert [r.number for r in records] == list(range(total))  # no gaps, none lost
    claimed = sorted(n for done in outcomes.values() for n, _ in done)
    assert claimed == list(range(total))  # two writers never share a number
    assert all(created for done in outcomes.values() for _, created in done)
    for worker, done in outcomes.items():
        numbers = [n for n, _ in done]
        assert numbers == sorted(numbers)
        for i, number in enumerate(numbers):
            record = records[number]
            assert record.created_by == f"worker-{worker}"  # names its writer
            assert record.digest == digest(f"w{worker}-{i}")
            assert record.metadata == {"i": i}
    assert len({r.digest for r in records}) == total
    assert lost > 0, "the writers never collided: the test did not exercise the race"


def _alias_worker(worker: int, barrier: Any, results: Any, spec: BackendSpec, moves: int) -> None:
    try:
        backend = _CountingCreates(spec.open())
        try:
            refs = Refs(cast(Backend, backend), PROJECT)
            done = []
            for i in range(moves):
                barrier.wait(TIMEOUT)
                event = refs.set_alias("m", "prod", worker * moves + i, by=f"worker-{worker}")
                done.append((event.seq, event.target))
        finally:
            backend.close()
        results.put((worker, (done, backend.lost), None))
    except BaseException as exc:
        barrier.abort()
        results.put((worker, None, f"{type(exc).__name__}: {exc}"))


def _check_concurrent_alias_moves(spec: BackendSpec) -> None:
    moves = 3
    total = WORKERS * moves
    backend = spec.open()
    try:
        refs = Refs(backend, PROJECT)
        for n in range(total):
            commit(refs, "m", f"content {n}")
        outcomes, lost = _split(_run_workers(_alias_worker, spec, (moves,)))
        history = Refs(backend, PROJECT).alias_history("m", "prod")
        current = Refs(backend, PROJECT).aliases("m")
    finally:
        backend.close()
    assert [e.seq for e in history] == list(range(total))  # a contiguous total order
    assert sorted(e.target for e in history if e.target is not None) == list(range(total))
    assert [e.previous for e in history] == [None] + [e.target for e in history[:-1]]
    assert current == {"prod": history[-1].target}
    assert lost > 0, "the writers never collided: the test did not exercise the race"
    for worker, done in outcomes.items():
        mine = [(e.seq, e.target) for e in history if e.by == f"worker-{worker}"]
        assert mine == done  # every move recorded once, in the writer's own order
        assert [t for _, t in done] == [worker * moves + i for i in range(moves)]


@pytest.mark.slow
def test_concurrent_commits_local(local_spec: BackendSpec) -> None:
    _check_concurrent_commits(local_spec)


@pytest.mark.slow
def test_concurrent_alias_moves_local(local_spec: BackendSpec) -> None:
    _check_concurrent_alias_moves(local_spec)


@pytest.mark.slow
def test_concurrent_identical_commits_make_one_version(local_spec: BackendSpec) -> None:
    outcomes, _ = _split(_run_workers(_commit_worker, local_spec, (2, True)))
    results = [pair for done in outcomes.values() for pair in done]
    assert {n for n, _ in results} == {0}
    assert sum(created for _, created in results) == 1
    backend = local_spec.open()
    try:
        assert len(Refs(backend, PROJECT).versions("m")) == 1
    finally:
        backend.close()


@pytest.mark.s3
@pytest.mark.slow
def test_concurrent_commits_s3(s3_spec: BackendSpec) -> None:
    _check_concurrent_commits(s3_spec)


@pytest.mark.s3
@pytest.mark.slow
def test_concurrent_alias_moves_s3(s3_spec: BackendSpec) -> None:
    _check_concurrent_alias_moves(s3_spec)
