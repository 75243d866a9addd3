"""Unit tests of gc.py: marking, retention, and collect_garbage's edges (design §14, §15).

A local store with a short commit window, so grace 0 frees space within a test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifactstore
from artifactstore.core.errors import ConflictError, InvalidInputError
from artifactstore.core.synthetic import random_bytes
from artifactstore.maintenance.gc import (
    collect_garbage,
    dead_layout_blobs,
    expire,
    mark,
    version_blobs,
)
from artifactstore.model.entries import FileEntry
from artifactstore.objects.gcrecords import LOCK_KEY, GcLock, condemnations
from artifactstore.objects.layout import PLAIN_DOMAIN
from artifactstore.testing.stores import init_quick_store

WINDOW = 0.05


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=WINDOW)
    return url


@pytest.fixture
def store(url: str, tmp_path: Path) -> Iterator[artifactstore.Store]:
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as opened:
        yield opened


def log(store: artifactstore.Store, tmp_path: Path, name: str, **files: bytes
        ) -> artifactstore.ArtifactVersion:
    folder = tmp_path / f"src-{name}-{time.monotonic_ns()}"
    folder.mkdir()
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    return store.log_artifact(folder, name=name, type="dataset")


def data(seed: int, size: int = 2000) -> bytes:
    return random_bytes(size, seed=seed)


def stored(store: artifactstore.Store) -> dict[str, bytes]:
    backend = store.objects.backend
    return {k: backend.get(k) for k in backend.list("")}


# -- marking -----------------------------------------------------------------------------


def test_version_blobs_names_manifest_trees_and_chunks(store: artifactstore.Store,
                                                       tmp_path: Path) -> None:
    version = log(store, tmp_path, "d", a=data(1), b=data(2), c=data(1))
    record = version.record
    chunks = {c.id.raw for e in version.files() if isinstance(e, FileEntry) for c in e.chunks}
    assert len(chunks) == 2  # a and c hold the same bytes
    blobs = list(version_blobs(record, store.objects))
    assert set(blobs) == {record.manifest.raw, record.digest.raw} | chunks
    assert blobs[0] == record.manifest.raw


def test_mark_of_an_empty_store(store: artifactstore.Store) -> None:
    marked = mark(store.context)
    assert list(marked) == [PLAIN_DOMAIN]
    objects, live = marked[PLAIN_DOMAIN]
    assert objects is store.objects
    assert live == set()


def test_mark_takes_live_versions_of_every_public_project(
        store: artifactstore.Store, url: str, tmp_path: Path) -> None:
    kept = log(store, tmp_path, "d", f=data(1))
    deleted = log(store, tmp_path, "d", f=data(2))
    with artifactstore.open(url, project="other", cache_dir=tmp_path / "c2") as other:
        theirs = log(other, tmp_path, "x", f=data(3))
        theirs_blobs = set(version_blobs(theirs.record, other.objects))
    store.delete("d:v1")
    live = mark(store.context)[PLAIN_DOMAIN][1]
    assert set(version_blobs(kept.record, store.objects)) <= live
    assert theirs_blobs <= live  # the plain domain is shared: another project's data stays
    only_deleted = set(version_blobs(deleted.record, store.objects)) - live
    assert deleted.record.manifest.raw in only_deleted


# -- retention ---------------------------------------------------------------------------


def test_expire_without_retention_does_nothing(store: artifactstore.Store,
                                               tmp_path: Path) -> None:
    log(store, tmp_path, "d", f=data(1))
    assert expire(store.context, dry_run=False, now=time.time() + 10**9) == []


def test_expire_deletes_old_unaliased_versions(store: artifactstore.Store,
                                               tmp_path: Path) -> None:
    for seed in range(3):
        log(store, tmp_path, "d", f=data(seed))
    log(store, tmp_path, "other", f=data(9))
    store.set_alias("d:v0", "prod")
    store.set_retention("1h", artifact="d")
    assert expire(store.context, dry_run=False) == []  # an hour has not passed
    later = time.time() + 7200
    assert expire(store.context, dry_run=True, now=later) == ["d:v1", "d:v2"]
    assert store.deleted_versions() == []  # a dry run deletes nothing
    assert expire(store.context, dry_run=False, now=later) == ["d:v1", "d:v2"]
    (event,) = store.refs.lifecycle.events()[-1:]
    assert (event.action, event.by, event.numbers) == ("delete", "gc (retention)", (1, 2))
    assert [v.version for v in store.versions("d")] == ["v0"]
    assert [v.version for v in store.versions("other")] == ["v0"]  # no TTL of its own


# -- collect_garbage ---------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"grace": -1}, "grace"), ({"grace": True}, "grace"), ({"grace": "1h"}, "grace"),
    ({"repack_threshold": 1.5}, "repack_threshold"),
    ({"repack_threshold": -0.1}, "repack_threshold"),
])
def test_bad_arguments_are_refused_before_anything(store: artifactstore.Store,
                                                   kwargs: dict[str, object], match: str) -> None:
    before = stored(store)
    with pytest.raises(InvalidInputError, match=match):
        collect_garbage(store.context, **kwargs)  # type: ignore[arg-type]
    assert stored(store) == before


def test_gc_of_an_empty_store(store: artifactstore.Store) -> None:
    report = store.gc(grace=0)  # through the facade: the first write creates the project
    assert list(report.domains) == [PLAIN_DOMAIN]
    domain = report.domains[PLAIN_DOMAIN]
    assert (domain.live_blobs, domain.condemned_blobs, domain.waiting) == (0, 0, 0)
    assert (report.bytes_freed, report.packs_deleted, report.expired) == (0, 0, [])
    assert not store.objects.backend.exists(LOCK_KEY)  # released


def test_nothing_to_collect_when_every_version_is_live(store: artifactstore.Store,
                                                       tmp_path: Path) -> None:
    log(store, tmp_path, "d", f=data(1))
    log(store, tmp_path, "d", f=data(1), g=data(2))
    before = stored(store)
    report = collect_garbage(store.context, grace=0, repack_threshold=0.0)
    assert (report.bytes_freed, report.domains[PLAIN_DOMAIN].condemned_blobs) == (0, 0)
    assert report.domains[PLAIN_DOMAIN].live_blobs == 6  # 2 manifests, 2 trees, 2 chunks
    assert stored(store) == before


def test_a_dry_run_reports_and_changes_nothing(store: artifactstore.Store,
                                               tmp_path: Path) -> None:
    log(store, tmp_path, "d", f=data(1, 5000))
    log(store, tmp_path, "d", f=data(2))
    store.delete("d:v0")
    GcLock(store.objects.backend).acquire()  # a dry run needs no lock: it writes nothing
    before = stored(store)
    report = collect_garbage(store.context, grace=0, dry_run=True)
    assert report.dry_run
    assert report.bytes_freed >= 5000
    assert report.domains[PLAIN_DOMAIN].condemned_blobs == 3
    assert stored(store) == before


def test_a_held_lock_refuses_a_gc(store: artifactstore.Store, tmp_path: Path) -> None:
    log(store, tmp_path, "d", f=data(1))
    lock = GcLock(store.objects.backend)
    lock.acquire()  # held by this live process: not stale
    with pytest.raises(ConflictError, match="holds the store's lock"):
        collect_garbage(store.context, grace=0)
    lock.release()
    collect_garbage(store.context, grace=0)


def test_a_grace_period_condemns_first_and_frees_later(store: artifactstore.Store,
                                                       tmp_path: Path) -> None:
    log(store, tmp_path, "d", f=data(1, 5000))
    log(store, tmp_path, "d", f=data(2))
    store.delete("d:v0")
    first = collect_garbage(store.context, grace=3600)
    domain = first.domains[PLAIN_DOMAIN]
    assert (first.bytes_freed, domain.condemned_blobs, domain.waiting) == (0, 3, 1)
    again = collect_garbage(store.context, grace=3600)  # pending: nothing condemned twice
    assert (again.domains[PLAIN_DOMAIN].condemned_blobs, again.domains[PLAIN_DOMAIN].waiting) \
        == (0, 1)
    assert len(condemnations(store.objects.backend, PLAIN_DOMAIN)) == 1
    freed = collect_garbage(store.context, grace=0)
    assert freed.bytes_freed >= 5000
    assert condemnations(store.objects.backend, PLAIN_DOMAIN) == []


def test_domains_limits_the_work(store: artifactstore.Store, tmp_path: Path) -> None:
    log(store, tmp_path, "d", f=data(1))
    log(store, tmp_path, "d", f=data(2))
    store.delete("d:v0")
    report = collect_garbage(store.context, grace=0, domains=["no-such-domain"])
    assert report.domains == {}
    assert condemnations(store.objects.backend, PLAIN_DOMAIN) == []
    assert collect_garbage(store.context, grace=0, domains=[PLAIN_DOMAIN]).bytes_freed > 0


def test_a_partly_live_pack_waits_for_the_repack_threshold(store: artifactstore.Store,
                                                           tmp_path: Path) -> None:
    """One log writes one pack: v0's pack holds a big live file and a small dead one."""
    log(store, tmp_path, "d", big=data(1, 12_000), small=data(2, 500))
    log(store, tmp_path, "d", big=data(1, 12_000))
    store.delete("d:v0")
    kept = collect_garbage(store.context, grace=0)  # ~5% of the pack is dead: under 0.3
    assert (kept.bytes_freed, kept.packs_deleted) == (0, 0)
    assert condemnations(store.objects.backend, PLAIN_DOMAIN) == []  # condemned again later
    freed = collect_garbage(store.context, grace=0, repack_threshold=0.0)
    assert freed.bytes_freed >= 500
    assert freed.domains[PLAIN_DOMAIN].swept.packs_repacked == 1
    assert store.artifact("d:v1").open("big").read() == data(1, 12_000)


def test_stale_temp_files_are_counted_and_removed(store: artifactstore.Store, url: str,
                                                  tmp_path: Path) -> None:
    temp = Path(url) / "objects" / ".tmp-0123456789abcdef"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_bytes(b"half a pack")
    old = time.time() - 60
    os.utime(temp, (old, old))
    assert store.gc(grace=0, dry_run=True).stale_temps == 1
    assert temp.exists()
    assert store.gc(grace=0).stale_temps == 1
    assert not temp.exists()


def test_dead_layout_blobs_names_what_is_still_listed(store: artifactstore.Store,
                                                      tmp_path: Path) -> None:
    gone = log(store, tmp_path, "d", f=data(1))
    log(store, tmp_path, "d", f=data(2))
    ids = set(version_blobs(gone.record, store.objects))
    assert dead_layout_blobs(store.objects, ids) == ids
    store.delete("d:v0")
    collect_garbage(store.context, grace=0, repack_threshold=0.0)
    assert dead_layout_blobs(store.objects, ids) == set()
    assert dead_layout_blobs(store.objects, set()) == set()
