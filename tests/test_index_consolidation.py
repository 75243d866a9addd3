"""gc merges many index objects into few (maintenance/consolidate.py, design §6, issue 20):
every blob stays readable by old and new clients, a crash between writing the merged
objects and deleting the old ones leaves a readable store, and index objects another
writer adds meanwhile are kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifactstore
from artifactstore.backends.memory import MemoryBackend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.digest import Digest
from artifactstore.core.errors import BackendError
from artifactstore.maintenance import consolidate
from artifactstore.maintenance.consolidate import consolidate_index
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.layout import PLAIN_DOMAIN, index_prefix
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.data import random_bytes
from artifactstore.testing.stores import init_quick_store

SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
INDEX = index_prefix(PLAIN_DOMAIN)


class HookedBackend(MemoryBackend):
    """Runs ``after_index_listing`` once, right after ``index/`` was listed; can fail deletes."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.after_index_listing: list[object] = []
        self.deletes_allowed: int | None = None

    def list(self, prefix: str = "") -> Iterator[str]:
        keys = list(super().list(prefix))
        if prefix == INDEX and self.after_index_listing:
            self.after_index_listing.pop()()  # type: ignore[operator]
        return iter(keys)

    def delete(self, key: str) -> None:
        if self.deletes_allowed is not None:
            if self.deletes_allowed <= 0:
                raise BackendError(f"killed before deleting {key}")
            self.deletes_allowed -= 1
        super().delete(key)


def _write(objects: ObjectStore, n: int) -> list[Digest]:
    ref = objects.write_bytes(random_bytes(3_000, seed=n))
    objects.flush()
    return [c.id for c in ref.chunks]


def _readable(backend: MemoryBackend, cache: Path, written: dict[int, list[Digest]]) -> None:
    with ObjectStore.open(backend, cache_dir=cache) as reader:
        for n, chunks in written.items():
            assert b"".join(reader.read_blob(c) for c in chunks) == random_bytes(3_000, seed=n)


@pytest.fixture
def store(tmp_path: Path) -> tuple[HookedBackend, dict[int, list[Digest]]]:
    backend = HookedBackend(f"merge-{uuid.uuid4().hex}")
    config = StoreConfig.new(chunker=SMALL, pack_target=64 << 10)
    with ObjectStore.open(backend, create=config, cache_dir=tmp_path / "writer") as objects:
        written = {n: _write(objects, n) for n in range(12)}
    assert len(list(backend.list(INDEX))) == 12
    return backend, written


def test_many_index_objects_become_one_and_every_client_still_reads(
        store: tuple[HookedBackend, dict[int, list[Digest]]], tmp_path: Path) -> None:
    backend, written = store
    _readable(backend, tmp_path / "old", written)  # a client that cached the 12 objects
    with ObjectStore.open(backend, cache_dir=tmp_path / "admin") as admin:
        done = consolidate_index(admin, at_least=5)
    assert (done.merged, done.written) == (12, 1)
    assert len(list(backend.list(INDEX))) == 1
    _readable(backend, tmp_path / "old", written)  # its cache names vanished objects
    _readable(backend, tmp_path / "fresh", written)
    with ObjectStore.open(backend, cache_dir=tmp_path / "admin") as admin:
        assert consolidate_index(admin, at_least=5) == consolidate.Consolidation(0, 0)
    with ObjectStore.open(backend, cache_dir=tmp_path / "writer") as writer:
        writer.begin_session()  # a writer whose cached index holds the old objects' rows
        written[99] = _write(writer, 99)
        writer.prepare_commit()
        writer.end_session()
    _readable(backend, tmp_path / "fresh2", written)


def test_a_crash_between_writing_and_deleting_leaves_a_readable_store(
        store: tuple[HookedBackend, dict[int, list[Digest]]], tmp_path: Path) -> None:
    backend, written = store
    backend.deletes_allowed = 4
    with ObjectStore.open(backend, cache_dir=tmp_path / "admin") as admin, \
            pytest.raises(BackendError):
        consolidate_index(admin, at_least=5)
    assert len(list(backend.list(INDEX))) == 1 + 12 - 4  # the merged one and 8 old ones
    _readable(backend, tmp_path / "fresh", written)
    backend.deletes_allowed = None
    with ObjectStore.open(backend, cache_dir=tmp_path / "admin") as admin:
        consolidate_index(admin, at_least=5)
    assert len(list(backend.list(INDEX))) == 1
    _readable(backend, tmp_path / "fresh2", written)


def test_an_index_object_written_during_the_merge_is_kept(
        store: tuple[HookedBackend, dict[int, list[Digest]]], tmp_path: Path) -> None:
    backend, written = store

    def another_writer() -> None:
        with ObjectStore.open(backend, cache_dir=tmp_path / "other") as other:
            written[50] = _write(other, 50)

    backend.after_index_listing.append(another_writer)
    with ObjectStore.open(backend, cache_dir=tmp_path / "admin") as admin:
        done = consolidate_index(admin, at_least=5)
    assert done.merged == 12
    assert len(list(backend.list(INDEX))) == 2  # the merged one and the newcomer
    _readable(backend, tmp_path / "fresh", written)


def test_gc_consolidates_once_a_domain_has_many_index_objects(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url)
    monkeypatch.setattr(consolidate, "CONSOLIDATE_FROM", 4)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        for n in range(5):
            (tmp_path / f"f{n}").write_bytes(random_bytes(2_000, seed=n))
            store.log_artifact(tmp_path / f"f{n}", name=f"a{n}", type="dataset")
        backend = store.objects.backend
        assert len(list(backend.list(INDEX))) == 5
        assert store.gc(grace=0, dry_run=True).index_objects_merged == 0
        report = store.gc(grace=0)
        assert (report.index_objects_merged, report.index_objects_written) == (5, 1)
        assert len(list(backend.list(INDEX))) == 1
    with artifactstore.open(url, cache_dir=tmp_path / "fresh") as reader:
        for n in range(5):
            reader.artifact(f"a{n}").verify()
