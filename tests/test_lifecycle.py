"""Delete, restore, retention, gc and purge through the API (design §14-§16)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

import artifactstore
from artifactstore.cli import main
from artifactstore.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.maintenance.lifecycle import parse_duration
from artifactstore.maintenance.verify import verify_objects
from artifactstore.objects.gcrecords import condemnations
from artifactstore.objects.sweep import read_layout
from artifactstore.records.aliases import ProtectedAliasError
from artifactstore.testing.stores import init_quick_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[artifactstore.Store]:
    url = str(tmp_path / "store")
    init_quick_store(url)
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as opened:
        yield opened


class _LogOptions(TypedDict, total=False):
    """The keywords of Store.log_artifact that the tests pass through log()."""

    aliases: Iterable[str]
    run: artifactstore.Run


def log(store: artifactstore.Store, tmp_path: Path, name: str, data: bytes,
        shared: bytes = b"shared " * 1000,
        **kw: Unpack[_LogOptions]) -> artifactstore.ArtifactVersion:
    folder = tmp_path / f"src-{name}-{os.urandom(3).hex()}"
    folder.mkdir()
    (folder / "unique.bin").write_bytes(data)
    (folder / "shared.txt").write_bytes(shared)
    return store.log_artifact(folder, name=name, type="dataset", **kw)


def test_delete_hides_a_version_and_latest_moves_back(store: artifactstore.Store,
                                                       tmp_path: Path) -> None:
    for _ in range(3):
        log(store, tmp_path, "d", os.urandom(50_000))
    store.delete("d:v2", reason="bad labels")
    assert [v.version for v in store.versions("d")] == ["v0", "v1"]
    assert store.artifact("d").version == "v1"
    with pytest.raises(NotFoundError, match=r"was deleted .*restore it"):
        store.artifact("d:v2")
    assert [(a, n, e.reason) for a, n, e in store.deleted_versions()] == [("d", 2, "bad labels")]
    # numbers are never reused, and the content of a deleted version is not "unchanged"
    again = log(store, tmp_path, "d", os.urandom(50_000))
    assert again.version == "v3"


def test_restore_brings_a_version_back(store: artifactstore.Store, tmp_path: Path) -> None:
    data = os.urandom(80_000)
    log(store, tmp_path, "d", data)
    log(store, tmp_path, "d", os.urandom(80_000))
    store.delete("d:v1")
    store.restore("d:v1")
    assert store.artifact("d").version == "v1"
    store.artifact("d:v1").verify()
    with pytest.raises(InvalidInputError, match="not deleted"):
        store.restore("d:v1")


def test_aliases_must_be_removed_or_forced_and_protected_ones_refuse(
        store: artifactstore.Store, tmp_path: Path) -> None:
    log(store, tmp_path, "d", os.urandom(1000))
    log(store, tmp_path, "d", os.urandom(1000), aliases=["staging"])
    with pytest.raises(ConflictError, match="staging"):
        store.delete("d:v1")
    assert store.artifact("d").version == "v1"  # nothing happened
    store.set_alias("d:v0", "production", protect=True)
    with pytest.raises(ProtectedAliasError, match="protected"):
        store.delete("d:v0", force=True)
    store.delete("d:v1", force=True)
    assert "staging" not in store.refs.aliases("d")


def test_delete_a_whole_artifact_and_a_run_with_its_outputs(store: artifactstore.Store,
                                                             tmp_path: Path) -> None:
    log(store, tmp_path, "raw", os.urandom(1000))
    with store.run(job_type="prep", capture_code=False) as run:
        run.use("raw:latest")
        out = log(store, tmp_path, "clean", os.urandom(1000), run=run)
    store.delete_run(run.id, with_artifacts=True)
    with pytest.raises(NotFoundError, match="every version of 'clean'"):
        store.artifact("clean")
    assert run.id not in [r.run_id for r in store.runs(sync=True)]
    assert out.ref == "clean:v0"
    store.delete_artifact("raw")
    assert store.artifacts() == []
    store.restore_run(run.id)
    assert run.id in [r.run_id for r in store.runs(sync=True)]
    store.restore_artifact("clean")
    assert store.artifact("clean").version == "v0"
    with pytest.raises(InvalidInputError, match="not deleted"):
        store.restore_run(run.id)
    store.delete_project(force=True)
    assert store.artifacts() == []
    assert store.runs(sync=True) == []
    store.restore_project()
    assert store.artifacts() == ["clean", "raw"]
    assert [r.run_id for r in store.runs(sync=True)] == [run.id]


def test_gc_frees_what_only_deleted_versions_referenced(store: artifactstore.Store,
                                                       tmp_path: Path) -> None:
    """Issue 6: gc after deleting half of 20 versions frees >= 90% of their own bytes."""
    only_theirs = 0
    for i in range(20):
        data = os.urandom(100_000)
        log(store, tmp_path, "d", data)
        if i % 2:
            only_theirs += len(data)
    for n in range(1, 20, 2):
        store.delete(f"d:v{n}")
    before = _stored_bytes(store)
    report = store.gc(grace=0)
    freed = before - _stored_bytes(store)
    assert freed >= 0.9 * only_theirs, (freed, only_theirs)
    assert report.bytes_freed >= 0.9 * only_theirs
    for version in store.versions("d"):
        version.verify()
    assert verify_objects(store.objects).ok
    assert main(["verify", "--read-data", "--store", store.url, "--quiet"]) == 0
    assert condemnations(store.objects.backend, "plain") == []


def test_gc_with_a_grace_period_condemns_first_and_deletes_later(
        store: artifactstore.Store, tmp_path: Path) -> None:
    log(store, tmp_path, "d", os.urandom(100_000))
    log(store, tmp_path, "d", os.urandom(100_000))
    store.delete("d:v0")
    dry = store.gc(grace=0, dry_run=True)
    assert dry.bytes_freed >= 100_000
    assert condemnations(store.objects.backend, "plain") == []
    first = store.gc(grace=3600)
    assert first.bytes_freed == 0
    assert first.domains["plain"].condemned_bytes >= 100_000
    # still restorable: the blobs are condemned, not deleted; the restore rescues them
    store.restore("d:v0")
    second = store.gc(grace=0)
    assert second.bytes_freed == 0
    store.artifact("d:v0").verify()


def test_a_writer_deduplicating_against_condemned_blobs_rewrites_them(
        store: artifactstore.Store, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    log(store, tmp_path, "d", data)
    log(store, tmp_path, "d", os.urandom(1000))
    store.delete("d:v0")
    store.gc(grace=3600)  # condemns v0's blobs
    again = log(store, tmp_path, "other", data)  # same bytes: must not rely on condemned copies
    store.gc(grace=0)
    assert store.artifact(again.ref).open("unique.bin").read() == data


def test_retention_deletes_unaliased_versions_only(store: artifactstore.Store,
                                                   tmp_path: Path) -> None:
    """Issue 6: with a 0-day TTL, gc deletes unaliased versions, keeps aliased and protected."""
    for _ in range(4):
        log(store, tmp_path, "d", os.urandom(1000))
    store.set_alias("d:v1", "staging")
    store.set_alias("d:v2", "production", protect=True)
    store.set_retention("0d", artifact="d")
    report = store.gc(grace=0)
    assert sorted(report.expired) == ["d:v0", "d:v3"]
    assert [v.version for v in store.versions("d")] == ["v1", "v2"]
    store.set_retention(None, artifact="d")
    log(store, tmp_path, "d", os.urandom(1000))
    assert store.gc(grace=0).expired == []


def test_purge_wipes_bytes_and_keeps_shared_files(store: artifactstore.Store,
                                                  tmp_path: Path) -> None:
    marker = b"takedown-marker-" * 4000
    log(store, tmp_path, "d", os.urandom(50_000))
    log(store, tmp_path, "d", marker)
    report = store.purge("d:v1", reason="DMCA 123")
    assert report.absent
    assert report.blobs_wiped >= 1
    assert report.shared_files == ["shared.txt"]
    for key in store.objects.backend.list(""):
        assert b"takedown-marker-" not in store.objects.backend.get(key), key
    store.artifact("d:v0").verify()
    with pytest.raises(NotFoundError, match="purged"):
        store.artifact("d:v1")
    with pytest.raises(InvalidInputError, match="purge cannot be undone"):
        store.restore("d:v1")
    events = store.refs.lifecycle.events()
    assert events[-1].action == "purge"
    assert "DMCA 123" in (events[-1].reason or "")


def test_purge_of_one_path_logs_a_version_without_it(store: artifactstore.Store,
                                                     tmp_path: Path) -> None:
    log(store, tmp_path, "d", b"secret-marker " * 3000, aliases=["production"])
    store.purge("d:v0", reason="leaked file", path="unique.bin")
    now = store.artifact("d:production")
    assert now.version == "v1"
    assert [e.path for e in now.files()] == ["shared.txt"]
    for key in store.objects.backend.list(""):
        assert b"secret-marker" not in store.objects.backend.get(key), key


def test_a_reader_with_a_stale_index_follows_a_repack(store: artifactstore.Store,
                                                      tmp_path: Path) -> None:
    keep = os.urandom(300_000)
    log(store, tmp_path, "d", keep, shared=os.urandom(400_000))
    log(store, tmp_path, "d", os.urandom(300_000))
    reader = artifactstore.open(store.url, cache_dir=tmp_path / "reader-cache")
    v1 = reader.artifact("d:v1")
    v1.files()  # its index now names today's packs
    store.delete("d:v0")
    store.gc(grace=0, repack_threshold=0.0)
    assert read_layout(store.objects).orphans == set()
    assert v1.open("shared.txt").read()  # the old pack is gone: refreshed and retried
    reader.close()


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("0", 0),
                                           ("90m", 5400), (15, 15)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-1d", "1y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInputError, match="not a duration"):
        parse_duration(text)


def _stored_bytes(store: artifactstore.Store) -> int:
    backend = store.objects.backend
    return sum(backend.stat(k).size for k in backend.list("objects/"))


def test_purge_and_gc_tell_the_wait_callback_the_seconds_left(store: artifactstore.Store,
                                                              tmp_path: Path) -> None:
    """Issue 15, point 5: the commit-window wait is reported, counting down to 0."""
    window = store.objects.config.commit_window
    for _ in range(2):
        log(store, tmp_path, "d", os.urandom(50_000))
    seen: list[float] = []
    assert store.purge("d:v0", reason="test", on_wait=seen.append).absent
    assert seen[-1] == 0.0
    assert 0 < seen[0] <= window
    assert seen == sorted(seen, reverse=True)
    store.delete("d:v1")
    seen.clear()
    assert store.gc(0, on_wait=seen.append).bytes_freed > 0
    assert seen[-1] == 0.0
    assert 0 < seen[0] <= window


def test_gc_grace_0_without_waiting_only_condemns(store: artifactstore.Store,
                                                  tmp_path: Path) -> None:
    """``wait=False``: returns without waiting or freeing; a later gc frees the space."""
    for _ in range(2):
        log(store, tmp_path, "d", os.urandom(50_000))
    store.delete("d:v1")
    seen: list[float] = []
    first = store.gc(0, wait=False, on_wait=seen.append)
    assert seen == []
    assert first.bytes_freed == 0
    assert sum(d.waiting for d in first.domains.values()) > 0
    assert store.gc(0).bytes_freed > 0


def test_a_run_delete_with_its_outputs_is_all_or_nothing(store: artifactstore.Store,
                                                         tmp_path: Path) -> None:
    """Issue 15, point 3: the refusal on the last output comes before the first change."""
    with store.run(job_type="train", capture_code=False) as run:
        log(store, tmp_path, "a-metrics", os.urandom(1000), run=run, aliases=["best"])
        log(store, tmp_path, "z-model", os.urandom(1000), run=run, aliases=["prod"])
    store.protect_alias("z-model", "prod")
    with pytest.raises(ProtectedAliasError, match=r"nothing was deleted.*z-model:prod -> v0"):
        store.delete_run(run.id, with_artifacts=True, force=True)
    assert store.artifacts() == ["a-metrics", "z-model"]
    assert store.refs.aliases("a-metrics") == {"best": 0}
    assert [r.run_id for r in store.runs(sync=True)] == [run.id]
    assert store.deleted_versions() == []
    store.unprotect_alias("z-model", "prod")
    events = store.delete_run(run.id, with_artifacts=True, force=True)
    assert [(e.artifact, e.numbers, e.runs) for e in events] == [
        ("a-metrics", (0,), ()), ("z-model", (0,), ()), (None, (), (run.id,))]
    assert store.artifacts() == []
