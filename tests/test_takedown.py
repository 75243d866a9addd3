"""Issue 15.2: a takedown reaches the copies (docs/design.md §16, §17 "Purges").

Store A is synced to B (local and S3), a version is purged in A, and the next sync
wipes it in B with the purge's own proof; a destination that cannot be wiped is
reported as not wiped with a non-zero exit; a file cache that meets the purge
tombstone drops the purged content."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.cli.main import main
from artifactstore.maintenance.gc import version_blobs
from artifactstore.maintenance.projects import create_project
from artifactstore.maintenance.verify import verify_store
from artifactstore.objects.sweep import read_layout
from artifactstore.testing.keys import CHEAP_SCRYPT
from artifactstore.testing.servers import MotoS3Server
from artifactstore.testing.stores import init_quick_store
from artifactstore.transfer.sync import sync

#: the file to take down: random, so no other file shares a chunk and compression keeps it
SECRET = os.urandom(300_000)
#: 64-byte windows of it; each one found anywhere means its bytes are still stored
NEEDLES = [SECRET[i:i + 64] for i in range(0, len(SECRET) - 64, 4096)]


def scan(url: str, options: dict[str, Any]) -> list[str]:
    """Every key of the store at ``url`` holding any piece of SECRET."""
    backend = open_backend(url, **options)
    try:
        found = []
        for key in backend.list(""):
            data = backend.get(key)
            if any(n in data for n in NEEDLES):
                found.append(key)
        return found
    finally:
        backend.close()


def fill(store: artifactstore.Store, tmp_path: Path) -> None:
    """data:v0 holds the secret and a shared file; data:v1 only the shared one; and
    another artifact that must survive untouched."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / "shared.csv").write_bytes(b"id,value\n" + b"1,2\n" * 20000)
    (folder / "secret.bin").write_bytes(SECRET)
    store.log_artifact(folder, name="data", type="dataset")
    (folder / "secret.bin").unlink()
    (folder / "new.bin").write_bytes(os.urandom(50_000))
    store.log_artifact(folder, name="data", type="dataset", aliases=["prod"])
    (tmp_path / "model.bin").write_bytes(os.urandom(80_000))
    store.log_artifact(tmp_path / "model.bin", name="model", type="model")


def takedown_roundtrip(a_url: str, b_url: str, a_opts: dict[str, Any],
                       b_opts: dict[str, Any], tmp_path: Path) -> None:
    init_quick_store(a_url, **a_opts)
    with artifactstore.open(a_url, cache_dir=tmp_path / "ca", **a_opts) as a:
        fill(a, tmp_path)
    first = sync(a_url, b_url, src_options=a_opts, dst_options=b_opts,
                 cache_dir=tmp_path / "cs")
    assert first.ok
    assert not first.takedowns
    assert scan(b_url, b_opts)  # the copy holds the secret before the takedown
    with artifactstore.open(a_url, create=False, cache_dir=tmp_path / "ca", **a_opts) as a:
        purged = a.purge("data:v0", reason="takedown request #7")
        assert purged.absent
    assert scan(a_url, a_opts) == []
    assert scan(b_url, b_opts)  # the source's purge alone leaves the copy holding it

    waits: list[float] = []
    second = sync(a_url, b_url, src_options=a_opts, dst_options=b_opts,
                  cache_dir=tmp_path / "cs", on_wait=waits.append)
    assert second.ok, second.as_dict()
    assert waits[-1:] == [0.0]  # the wipe's commit-window wait was told, to its end
    [done] = second.takedowns
    assert done.versions == ["data:v0"]
    assert done.wiped
    assert done.absent
    assert done.blobs_wiped >= 2
    assert done.bytes_wiped >= len(SECRET)
    assert done.indexes_checked >= 1
    assert done.packs_checked >= 1
    assert scan(a_url, a_opts) == []
    assert scan(b_url, b_opts) == []
    checked = verify_store(b_url, read_data=True, cache_dir=tmp_path / "cv", **b_opts)
    assert checked.ok, checked.damage_lines()
    assert checked.versions >= 2
    with artifactstore.open(b_url, create=False, cache_dir=tmp_path / "cb", **b_opts) as b:
        assert b.artifact("data:prod").open("shared.csv").read().startswith(b"id,value")
        assert b.artifact("model:latest").verify() == 1
        assert b.artifact("data:v1").verify() == 2
    # a third sync has nothing left to wipe, and says so by listing nothing
    third = sync(a_url, b_url, src_options=a_opts, dst_options=b_opts,
                 cache_dir=tmp_path / "cs")
    assert third.ok
    assert not third.takedowns
    assert third.objects_copied == 0


def test_a_purge_reaches_a_local_copy(tmp_path: Path) -> None:
    takedown_roundtrip(str(tmp_path / "a"), str(tmp_path / "b"), {}, {}, tmp_path)


@pytest.mark.s3
def test_a_purge_reaches_an_s3_copy(tmp_path: Path, s3_server: MotoS3Server) -> None:
    b_url = f"s3://{s3_server.bucket}/takedown-{os.urandom(4).hex()}"
    takedown_roundtrip(str(tmp_path / "a"), b_url, {}, s3_server.backend_options(), tmp_path)


@contextmanager
def person(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Iterator[None]:
    with monkeypatch.context() as m:
        m.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / f"person-{name}"))
        yield


def test_a_purge_reaches_the_copy_of_a_private_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Encrypted: no plaintext to scan for, so the evidence is by id: the packs that held
    the purged blobs at B are gone and no index object or pack of B lists a purged blob."""
    a_url, b_url = str(tmp_path / "a"), str(tmp_path / "b")
    init_quick_store(a_url)
    with person(monkeypatch, tmp_path, "alice"):
        create_project("lab", a_url, passphrase="words", scrypt=CHEAP_SCRYPT)
        with artifactstore.open(a_url, "lab", create=False, cache_dir=tmp_path / "ca") as a:
            fill(a, tmp_path)
            v0, v1 = a.artifact("data:v0").record, a.artifact("data:v1").record
            objects = a.context.objects_for(v0)
            gone = set(version_blobs(v0, objects)) - set(version_blobs(v1, objects))
            domain = objects.domain
        assert sync(a_url, b_url, project="lab", cache_dir=tmp_path / "cs").ok
        with artifactstore.open(b_url, "lab", create=False, cache_dir=tmp_path / "cb") as b:
            layout = read_layout(b.context.objects_for(v0))
            held = {p for p, entries in layout.packs.items()
                    if any(e.id.raw in gone for e in entries)}
            assert held
            assert len(gone) >= 3
        with artifactstore.open(a_url, "lab", create=False, cache_dir=tmp_path / "ca") as a:
            a.purge("data:v0", reason="consent withdrawn")
        report = sync(a_url, b_url, project="lab", cache_dir=tmp_path / "cs")
        assert report.ok, report.as_dict()
        assert [t.versions for t in report.takedowns] == [["data:v0"]]
        assert report.takedowns[0].absent
        with artifactstore.open(b_url, "lab", create=False, cache_dir=tmp_path / "cb") as b:
            objects = b.context.objects_for(v0)
            assert objects.domain == domain
            layout = read_layout(objects)
            assert not held & layout.listed  # every pack that held one is rewritten
            assert not {e.id.raw for es in layout.packs.values() for e in es} & gone
            assert b.artifact("data:v1").verify() == 2
            assert b.artifact("model:latest").verify() == 1
        checked = verify_store(b_url, "lab", read_data=True, cache_dir=tmp_path / "cv")
        assert checked.ok, checked.damage_lines()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only for everyone, root included: a bind mount remounted ro."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_read_only_copy_is_reported_not_wiped_and_a_later_sync_wipes_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_url, b = str(tmp_path / "a"), tmp_path / "b"
    init_quick_store(a_url)
    with artifactstore.open(a_url, cache_dir=tmp_path / "ca") as a:
        fill(a, tmp_path)
    assert main(["sync", a_url, str(b), "--quiet"]) == 0
    with artifactstore.open(a_url, create=False, cache_dir=tmp_path / "ca") as a:
        a.purge("data:v0", reason="takedown request #8")
    capsys.readouterr()
    with read_only(b):
        code = main(["sync", a_url, str(b), "--json"])
        out, err = capsys.readouterr()
    assert code == 8  # ReadOnlyError: the copy stopped at its first write
    result = json.loads(out)
    [left] = result["takedowns"]
    assert left["versions"] == ["data:v0"]
    assert left["wiped"] is False
    assert left["error"]
    assert result["exit_code"] == code
    assert "NOT WIPED" in err
    assert "data:v0" in err
    assert scan(str(b), {})  # still there: reported, not hidden
    # writable again: the next sync carries the purge, with its proof on the terminal
    assert main(["sync", a_url, str(b)]) == 0
    out, _ = capsys.readouterr()
    assert "wiped here: default/data:v0" in out
    assert "none holds a wiped blob" in out
    assert scan(str(b), {}) == []


def cached_secret(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and any(n in p.read_bytes()
                                                                for n in NEEDLES)]


def test_a_file_cache_that_meets_the_purge_tombstone_drops_the_purged_content(
        tmp_path: Path) -> None:
    """Another machine (its own cache folder) downloaded data:v0 from the copy B; once
    the purge reached B, its next download from B drops the purged files; the live
    version's files it shares come back from the store."""
    a_url, b_url = str(tmp_path / "a"), str(tmp_path / "b")
    init_quick_store(a_url)
    with artifactstore.open(a_url, cache_dir=tmp_path / "ca") as a:
        fill(a, tmp_path)
    assert sync(a_url, b_url, cache_dir=tmp_path / "cs").ok
    other = tmp_path / "other-machine"
    with artifactstore.open(b_url, create=False, cache_dir=other, file_cache=True) as b:
        b.artifact("data:v0").download(tmp_path / "got-v0")
        assert b.file_cache is not None
        assert b.file_cache.info().entries == 2
    assert cached_secret(other)
    with artifactstore.open(a_url, create=False, cache_dir=tmp_path / "ca") as a:
        a.purge("data:v0", reason="takedown request #9")
    assert sync(a_url, b_url, cache_dir=tmp_path / "cs").ok
    assert cached_secret(other)  # nothing on that machine has looked yet
    with artifactstore.open(b_url, create=False, cache_dir=other, file_cache=True) as b:
        target = b.artifact("data:v1").download(tmp_path / "got-v1")
        assert (target / "shared.csv").read_bytes().startswith(b"id,value")
        assert b.file_cache is not None
        # v1's shared file, cached anew (its other file, under 64 KiB, a download
        # does not cache: design §8)
        assert b.file_cache.info().entries == 1
    assert cached_secret(other) == []


def test_a_diverged_copy_is_reported_not_wiped_with_the_conflict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """B's lifecycle log took its own event: A's purge record cannot be appended there,
    so B has no tombstone to wipe on; the sync says so and exits 10."""
    a_url, b_url = str(tmp_path / "a"), str(tmp_path / "b")
    init_quick_store(a_url)
    with artifactstore.open(a_url, cache_dir=tmp_path / "ca") as a:
        fill(a, tmp_path)
    assert sync(a_url, b_url, cache_dir=tmp_path / "cs").ok
    with artifactstore.open(b_url, create=False, cache_dir=tmp_path / "cb") as b:
        b.delete("model:v0", reason="someone cleaned up the backup")
    with artifactstore.open(a_url, create=False, cache_dir=tmp_path / "ca") as a:
        a.purge("data:v0", reason="takedown request #10")
    capsys.readouterr()
    code = main(["sync", a_url, b_url, "--json"])
    out, err = capsys.readouterr()
    assert code == 10
    result = json.loads(out)
    assert result["conflicts"]
    [left] = result["takedowns"]
    assert left["versions"] == ["data:v0"]
    assert left["wiped"] is False
    assert "has not reached the destination" in left["error"]
    assert "NOT WIPED" in err
    assert scan(b_url, {})


@pytest.mark.s3
def test_an_unreachable_copy_is_reported_not_wiped(
        tmp_path: Path, s3_server: MotoS3Server) -> None:
    a_url = str(tmp_path / "a")
    init_quick_store(a_url)
    with artifactstore.open(a_url, cache_dir=tmp_path / "ca") as a:
        fill(a, tmp_path)
        a.purge("data:v0", reason="takedown request #11")
    # nothing listens on port 9: every request is refused
    down = {**s3_server.backend_options(), "endpoint_url": "http://127.0.0.1:9",
            "max_attempts": 1, "connect_timeout": 1}
    report = sync(a_url, f"s3://{s3_server.bucket}/gone", dst_options=down,
                  cache_dir=tmp_path / "cs", check=False)
    assert report.failure is not None
    [left] = report.takedowns
    assert left.versions == ["data:v0"]
    assert not left.wiped
    assert left.exit_code == report.failure.exit_code == 7
    assert not report.ok


_SYNC_SCRIPT = """
import sys
from artifactstore.transfer.sync import sync
sync(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3])
"""


def _condemnations(gc_folder: Path) -> list[Path]:
    """The condemnation objects under a local store's ``gc/`` (not write temp files)."""
    return [p for p in gc_folder.rglob("*") if p.is_file() and "condemned" in p.parts
            and not p.name.startswith(".tmp-")]


def test_a_sync_killed_during_its_wipe_is_finished_by_the_next_one(tmp_path: Path) -> None:
    """B waits 60 s before it sweeps; the sync is SIGKILLed once its purge condemnation
    is in B. The next sync breaks the dead process's lock, sweeps the pending
    condemnation with its own, and proves the bytes gone."""
    a_url, b_url = str(tmp_path / "a"), str(tmp_path / "b")
    init_quick_store(a_url)
    init_quick_store(b_url, commit_window=60.0)  # same chunker: a sync target
    with artifactstore.open(a_url, cache_dir=tmp_path / "ca") as a:
        fill(a, tmp_path)
    assert sync(a_url, b_url, cache_dir=tmp_path / "cs").ok
    with artifactstore.open(a_url, create=False, cache_dir=tmp_path / "ca") as a:
        a.purge("data:v0", reason="takedown request #12")
    proc = subprocess.Popen([sys.executable, "-c", _SYNC_SCRIPT, a_url, b_url,
                             str(tmp_path / "cs")])
    condemned = tmp_path / "b" / "gc"
    try:
        deadline = time.monotonic() + 60
        while not _condemnations(condemned):
            assert proc.poll() is None, "the sync ended before it condemned anything"
            assert time.monotonic() < deadline
            time.sleep(0.05)  # polling for a file, not hoping for a timing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert scan(b_url, {})  # killed in the commit window: nothing swept yet
    report = sync(a_url, b_url, cache_dir=tmp_path / "cs", wait=False)  # no writer at B
    assert report.ok, report.as_dict()
    [done] = report.takedowns
    assert done.absent
    assert scan(b_url, {}) == []
    # (a temp file the kill left mid-write is not a condemnation: gc removes it later)
    assert not _condemnations(condemned)
    checked = verify_store(b_url, read_data=True, cache_dir=tmp_path / "cv")
    assert checked.ok, checked.damage_lines()


def test_a_purge_after_gc_reclaimed_the_version_still_reaches_the_copy(tmp_path: Path) -> None:
    """Deleted, collected, then purged at the source: the source no longer has the tree
    to name the blobs, but the purge is recorded and the copy, which has it, wipes them."""
    a_url, b_url = str(tmp_path / "a"), str(tmp_path / "b")
    init_quick_store(a_url)
    with artifactstore.open(a_url, cache_dir=tmp_path / "ca") as a:
        fill(a, tmp_path)
    assert sync(a_url, b_url, cache_dir=tmp_path / "cs").ok
    with artifactstore.open(a_url, create=False, cache_dir=tmp_path / "ca") as a:
        a.delete("data:v0")
        a.gc(grace=0, repack_threshold=0.0)
        assert scan(a_url, {}) == []  # gc freed it at the source
        purged = a.purge("data:v0", reason="takedown request #9")
        assert purged.tree_reclaimed
        assert purged.absent
    assert scan(b_url, {})  # the copy still holds it
    second = sync(a_url, b_url, cache_dir=tmp_path / "cs")
    assert second.ok, second.as_dict()
    [done] = second.takedowns
    assert (done.versions, done.wiped, done.absent) == (["data:v0"], True, True)
    assert scan(b_url, {}) == []
