"""Sync (docs/design.md, "Sync"): verbatim backups local -> S3 -> local, private projects,
interruptions, diverged stores, one public project, and re-logging across keys."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import artifactstore
import artifactstore.transfer.sync as sync_module
from artifactstore.backends import (
    FaultInjectingBackend,
    LocalBackend,
    open_backend,
    open_backend_stack,
)
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.base import Backend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.cli.main import main
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import (
    AccessDeniedError,
    BackendError,
    ConfigurationError,
    ConflictError,
)
from artifactstore.local.identity import load_or_create_identity
from artifactstore.maintenance.projects import create_project
from artifactstore.maintenance.verify import verify_store
from artifactstore.model.tree import FileEntry
from artifactstore.objects.gcrecords import GcLock
from artifactstore.records.versions import version_key
from artifactstore.repository.opening import open_objects
from artifactstore.testing.keys import CHEAP_SCRYPT
from artifactstore.testing.servers import MotoS3Server
from artifactstore.transfer.relog import relog
from artifactstore.transfer.sync import record_tier, sync, sync_backends

ALIASES = {"data": ("prod", "raw"), "model": ("candidate",)}


@contextmanager
def person(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Iterator[str]:
    """Act as ``name``: their own config folder, so their own identity; yields its line."""
    with monkeypatch.context() as m:
        m.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / f"person-{name}"))
        yield load_or_create_identity().public.to_line()


def fill(store: artifactstore.Store, tmp_path: Path) -> None:
    """Two versions of a dataset, aliases moved and removed, a run with metrics and a
    heartbeat that uses the dataset and logs a model (lineage)."""
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "a.csv").write_text("x,y\n" + "1,2\n" * 2000)
    (folder / "sub" / "big.bin").write_bytes(os.urandom(400_000))
    store.log_artifact(folder, name="data", type="dataset", aliases=["prod", "raw"],
                       metadata={"rows": 2000}, description="first")
    (folder / "a.csv").write_text("x,y\n" + "3,4\n" * 2000)
    store.log_artifact(folder, name="data", type="dataset", aliases=["prod"])
    store.remove_alias("data", "raw")
    with store.run(job_type="train", config={"lr": 0.1}, capture_code=False,
                   heartbeat=0.05) as run:
        data = run.use("data:prod")
        for step in range(3):
            run.log({"loss": 1.0 / (step + 1)})
        time.sleep(0.2)  # a heartbeat or two
        (tmp_path / "model.bin").write_bytes(b"weights" + data.open("a.csv").read())
        run.log_artifact(tmp_path / "model.bin", name="model", type="model",
                         aliases=["candidate"])


def assert_same(src: artifactstore.Store, dst: artifactstore.Store) -> None:
    """Every version (bytes verified), alias history, run and lineage edge is equal."""
    assert dst.artifacts() == src.artifacts()
    for name in src.artifacts():
        theirs = dst.versions(name)
        assert [v.record for v in theirs] == [v.record for v in src.versions(name)]
        for version in theirs:
            assert version.verify() > 0
            mine = src.artifact(version.ref)
            for entry in version.files():
                if isinstance(entry, FileEntry):
                    assert version.open(entry.path).read() == mine.open(entry.path).read()
        for alias in ALIASES.get(name, ()):
            assert dst.alias_history(name, alias) == src.alias_history(name, alias)
            assert [e.signature for e in dst.alias_history(name, alias)] == \
                [e.signature for e in src.alias_history(name, alias)]
    assert [(r.run_id, r.status, r.summary, r.outputs, r.inputs)
            for r in dst.runs(sync=True)] == [
        (r.run_id, r.status, r.summary, r.outputs, r.inputs) for r in src.runs(sync=True)]
    for run in src.runs():
        assert list(dst.run_history(run.run_id)) == list(src.run_history(run.run_id))
    for name in src.artifacts():
        for version in src.versions(name):
            mine, theirs = src.upstream(version.ref), dst.upstream(version.ref)
            assert set(theirs.edges) == set(mine.edges)
            assert set(theirs.nodes) == set(mine.nodes)


class Recording(BackendWrapper):
    """Records every call as ``(operation, key)``."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.calls: list[tuple[str, str]] = []

    def get(self, key: str) -> bytes:
        self.calls.append(("get", key))
        return super().get(key)

    def put(self, key: str, data: bytes) -> None:
        self.calls.append(("put", key))
        super().put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self.calls.append(("put_if_absent", key))
        return super().put_if_absent(key, data)

    def delete(self, key: str) -> None:
        self.calls.append(("delete", key))
        super().delete(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        self.calls.append(("list", prefix))
        return super().list(prefix)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Recording]:
    """Every backend ``sync`` opens, recording its calls."""
    opened: list[Recording] = []
    real = open_backend_stack  # the function sync imports

    def recording(url: str, **options: Any) -> Backend:
        backend = Recording(real(url, **options))
        opened.append(backend)
        return backend

    monkeypatch.setattr(sync_module, "open_backend_stack", recording)
    return opened


# -- acceptance ----------------------------------------------------------------------


@pytest.mark.s3
def test_local_to_s3_to_local_reproduces_everything(
        tmp_path: Path, s3_server: MotoS3Server, recorded: list[Recording]) -> None:
    src_url, back_url = str(tmp_path / "src"), str(tmp_path / "back")
    s3_url = f"s3://{s3_server.bucket}/sync-{os.urandom(4).hex()}"
    s3 = s3_server.backend_options()
    with artifactstore.open(src_url, cache_dir=tmp_path / "c-src") as src:
        fill(src, tmp_path)
        assert "heartbeat" in {k.rsplit("/", 1)[-1] for k in src.objects.backend.list("")}

        first = sync(src_url, s3_url, dst_options=s3, cache_dir=tmp_path / "c-sync")
        assert first.ok
        assert first.config_copied
        assert first.packs.copied >= 1
        assert first.index.copied >= 1
        assert first.records.copied > 10
        back = sync(s3_url, back_url, src_options=s3, cache_dir=tmp_path / "c-sync")
        assert back.objects_copied == first.objects_copied
        with artifactstore.open(back_url, create=False, cache_dir=tmp_path / "c-back") as copy:
            assert_same(src, copy)

        recorded.clear()
        s3_server.reset_count()
        again = sync(src_url, s3_url, dst_options=s3, cache_dir=tmp_path / "c-sync")
        assert again.objects_copied == 0
        assert again.bytes_copied == 0
        assert again.ok
        assert again.packs.present == first.packs.copied
        assert again.records.present == first.records.copied
        calls = [c for backend in recorded for c in backend.calls]
        assert not [c for c in calls if c[0] in ("put", "put_if_absent", "delete")]
        # nothing present is read but the records that detect divergence: no blob
        assert not [c for c in calls if c[0] == "get" and c[1].startswith("objects/")]
        assert sum(1 for c in calls if c[0] == "list") == 4  # projects/, objects/, per side
        assert s3_server.request_count < 40


def test_private_project_syncs_for_its_members_and_still_verifies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    with person(monkeypatch, tmp_path, "bob"):
        pass
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(src_url, create=True).close()
        create_project("lab", src_url, passphrase="recovery words", scrypt=CHEAP_SCRYPT)
        create_project("other", src_url, visibility="public")
        with artifactstore.open(src_url, "other", cache_dir=tmp_path / "c0") as other:
            (tmp_path / "o.txt").write_text("not in the backup")
            other.log_artifact(tmp_path / "o.txt", name="other", type="text")
        with artifactstore.open(src_url, project="lab", cache_dir=tmp_path / "c1") as src:
            fill(src, tmp_path)
            report = sync(src_url, dst_url, project="lab")
            assert report.ok
            assert report.packs.copied >= 1
            with artifactstore.open(dst_url, project="lab", create=False,
                                    cache_dir=tmp_path / "c2") as dst:
                assert dst.refs.codec.encrypted
                assert_same(src, dst)
                for ref in ("data:v0", "data:v1", "model:v0"):
                    flags = dst.audit(ref).flags  # signatures verify, signers are members
                    assert {f.code for f in flags} <= {"no-code-state"}, flags
                    assert flags == src.audit(ref).flags
    # only lab's keys and blobs: the other project and the plain domain stayed behind
    keys = list(open_backend(dst_url).list(""))
    assert not [k for k in keys if k.startswith(("projects/other/", "objects/plain/"))]
    assert "projects/lab/project" in keys  # its genesis holds the recovery parameters
    with person(monkeypatch, tmp_path, "bob"), pytest.raises(AccessDeniedError):
        artifactstore.open(dst_url, project="lab", create=False, cache_dir=tmp_path / "c3")
    # the recovery passphrase opens the copy too: its slot travelled verbatim
    with person(monkeypatch, tmp_path, "carol"), \
            artifactstore.open(dst_url, project="lab", create=False, passphrase="recovery words",
                               cache_dir=tmp_path / "c4") as dst:
        assert dst.artifact("model:candidate").verify() == 1


def test_an_interrupted_sync_leaves_complete_versions_and_resumes(tmp_path: Path) -> None:
    src_url = str(tmp_path / "src")
    with artifactstore.open(src_url, cache_dir=tmp_path / "c-src") as src:
        fill(src, tmp_path)
        # many small packs and several index objects, so cuts fall between them
        for i in range(3):
            (tmp_path / f"f{i}.bin").write_bytes(os.urandom(200_000))
            src.log_artifact(tmp_path / f"f{i}.bin", name=f"extra{i}", type="blob")
    source = ReadOnlyBackend(LocalBackend(src_url))
    counting = FaultInjectingBackend(LocalBackend(str(tmp_path / "probe")))
    sync_backends(source, counting, concurrency=2)
    total = counting.total_calls
    assert total > 30
    for n, cut in enumerate(sorted({3, 8, total // 4, total // 2, 3 * total // 4, total - 3})):
        dst_url = str(tmp_path / f"dst{n}")
        faulty = FaultInjectingBackend(LocalBackend(dst_url), fail_permanently_after=cut)
        with pytest.raises(BackendError):
            sync_backends(source, faulty, concurrency=2)
        # every version the destination shows now is complete
        if LocalBackend(dst_url).exists("config"):
            with artifactstore.open(dst_url, create=False, cache_dir=tmp_path / f"cut{n}") as dst:
                for name in dst.artifacts():
                    for version in dst.versions(name):
                        assert version.verify() > 0
        # the sync held the destination's gc lock; its process would be gone by now
        LocalBackend(dst_url).delete("gc/lock")
        resumed = sync(src_url, dst_url, cache_dir=tmp_path / f"sync{n}")
        assert resumed.ok
        assert resumed.objects_copied > 0
        assert sync(src_url, dst_url).objects_copied == 0
        with artifactstore.open(dst_url, create=False, cache_dir=tmp_path / f"done{n}") as dst, \
                artifactstore.open(src_url, create=False, cache_dir=tmp_path / "c-src") as src:
            assert_same(src, dst)


def test_a_diverged_destination_is_a_conflict_and_nothing_is_overwritten(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    (tmp_path / "f.txt").write_text("v0")
    with artifactstore.open(src_url, cache_dir=tmp_path / "c1") as src:
        src.log_artifact(tmp_path / "f.txt", name="notes", type="text")
    assert sync(src_url, dst_url).ok
    # both sides log a v1 on their own; the source also moves an alias and adds an artifact
    (tmp_path / "f.txt").write_text("destination's v1")
    with artifactstore.open(dst_url, create=False, cache_dir=tmp_path / "c2") as dst:
        dst.log_artifact(tmp_path / "f.txt", name="notes", type="text")
    key = version_key("default", "notes", 1)
    theirs = open_backend(dst_url).get(key)
    (tmp_path / "f.txt").write_text("source's v1")
    with artifactstore.open(src_url, cache_dir=tmp_path / "c3") as src:
        src.log_artifact(tmp_path / "f.txt", name="notes", type="text", aliases=["prod"])
        src.log_artifact(tmp_path / "f.txt", name="other", type="text")

    assert main(["sync", src_url, dst_url, "--json"]) == ConflictError.exit_code
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert [c["key"] for c in report["conflicts"]] == [key]
    assert report["conflicts"][0]["skipped"] == 1  # the alias event that names v1
    assert "diverged" in err
    assert open_backend(dst_url).get(key) == theirs
    with artifactstore.open(dst_url, create=False, cache_dir=tmp_path / "c4") as dst:
        assert dst.artifact("notes:v1").open("f.txt").read() == b"destination's v1"
        assert dst.artifact("other:v0").open("f.txt").read() == b"source's v1"
        assert dst.refs.aliases("notes") == {}
    # the next sync finds the same conflict again, and copies nothing
    again = sync(src_url, dst_url)
    assert [c.key for c in again.conflicts] == [key]
    assert again.objects_copied == 0
    with pytest.raises(ConflictError, match="diverged"):
        again.raise_for_conflicts()


def test_another_project_of_the_same_name_is_a_conflict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    (tmp_path / "f.txt").write_text("data")
    for url, who in ((src_url, "alice"), (dst_url, "bob")):
        with person(monkeypatch, tmp_path, who):
            artifactstore.open(url, create=True).close()
            create_project("lab", url)
            with artifactstore.open(url, "lab", cache_dir=tmp_path / who) as store:
                store.log_artifact(tmp_path / "f.txt", name="notes", type="text")
    before = sorted(open_backend(dst_url).list("projects/"))
    report = sync(src_url, dst_url, project="lab")
    assert [c.key for c in report.conflicts] == ["projects/lab/project"]
    assert report.objects_copied == 0
    assert sorted(open_backend(dst_url).list("projects/")) == before


# -- rules -----------------------------------------------------------------------------


def test_public_project_copies_the_packs_it_needs_and_a_consistent_index(
        tmp_path: Path) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    shared = os.urandom(300_000)
    for project in ("a", "b"):
        with artifactstore.open(src_url, project, cache_dir=tmp_path / project) as store:
            (tmp_path / "shared.bin").write_bytes(shared)
            store.log_artifact(tmp_path / "shared.bin", name="shared", type="blob")
            (tmp_path / "own.bin").write_bytes(os.urandom(300_000))
            store.log_artifact(tmp_path / "own.bin", name="own", type="blob")
    report = sync(src_url, dst_url, project="b", cache_dir=tmp_path / "cs")
    assert report.ok
    assert not report.incomplete
    keys = list(open_backend(dst_url).list(""))
    assert not [k for k in keys if k.startswith("projects/a/")]
    # b's "shared" deduplicated against a's blob: a's flush (a:shared) came along
    assert report.packs.copied == 2
    with artifactstore.open(dst_url, "b", create=False, cache_dir=tmp_path / "cd") as dst, \
            artifactstore.open(src_url, "b", create=False, cache_dir=tmp_path / "b") as src:
        assert_same(src, dst)
    checked = verify_store(dst_url)
    assert checked.ok
    assert not checked.damaged
    again = sync(src_url, dst_url, project="b", cache_dir=tmp_path / "cs")
    assert again.objects_copied == 0


def test_bookkeeping_is_not_copied_and_heartbeats_follow_the_source(tmp_path: Path) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    with artifactstore.open(src_url, cache_dir=tmp_path / "c") as src:
        fill(src, tmp_path)
    raw = LocalBackend(src_url)
    for key in ("gc/state", "locks/writer", "projects/default/gc/x", "projects/default/locks/y"):
        raw.put(key, b"bookkeeping")
    raw.put("projects/default/lifecycle/0000000000", b"a record of a kind sync does not know")
    report = sync(src_url, dst_url)
    dst = LocalBackend(dst_url)
    keys = set(dst.list(""))
    assert not [k for k in keys if "/gc/" in f"/{k}" or "/locks/" in f"/{k}"]
    assert "projects/default/lifecycle/0000000000" in keys
    assert report.ignored == 2  # the project's own; root gc/ and locks/ are never listed
    beat = next(k for k in raw.list("projects/") if k.endswith("/heartbeat"))
    assert dst.get(beat) == raw.get(beat)
    assert sync(src_url, dst_url).objects_copied == 0
    newer = dst.get(beat)
    raw.put(beat, b"newer heartbeat")  # only bytes matter to sync
    again = sync(src_url, dst_url)
    assert (again.records.copied, again.objects_copied) == (1, 1)
    assert dst.get(beat) == b"newer heartbeat" != newer


def test_a_gc_running_at_the_destination_stops_a_sync_that_would_write(
        tmp_path: Path) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    (tmp_path / "f.txt").write_text("v0")
    with artifactstore.open(src_url, cache_dir=tmp_path / "c") as src:
        src.log_artifact(tmp_path / "f.txt", name="notes", type="text")
        assert sync(src_url, dst_url).ok
        gc = GcLock(LocalBackend(dst_url))
        gc.acquire()
        assert sync(src_url, dst_url).objects_copied == 0  # nothing to write: no lock
        (tmp_path / "f.txt").write_text("v1")
        src.log_artifact(tmp_path / "f.txt", name="notes", type="text")
        with pytest.raises(ConflictError, match="lock"):
            sync(src_url, dst_url)
        assert not LocalBackend(dst_url).exists(version_key("default", "notes", 1))
        gc.release()
        assert sync(src_url, dst_url).records.copied == 1
        assert not LocalBackend(dst_url).exists("gc/lock")


def test_record_tiers_follow_what_records_name() -> None:
    order = ["project", "recovery", "members/0000000000", "keys/0000000000/info",
             "keys/0000000000/slots/ab", "runs/r/start", "artifacts/a/versions/0000000000",
             "artifacts/a/aliases/prod/0000000000", "runs/r/events/0000000000",
             "lifecycle/0000000000", "runs/r/heartbeat"]
    tiers = [record_tier(rest) for rest in order]
    assert tiers == sorted(tiers)
    assert len(set(tiers)) == len(tiers)


def test_destination_with_other_chunking_is_refused(tmp_path: Path) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    artifactstore.open(src_url, create=True).close()
    open_objects(dst_url, create=True, chunker=ChunkerParams(min_size=8192, avg_size=32768,
                                                             max_size=131072)).close()
    with pytest.raises(ConfigurationError, match="chunks with"):
        sync(src_url, dst_url)
    assert main(["sync", src_url, dst_url, "-q"]) == ConfigurationError.exit_code
    assert list(LocalBackend(dst_url).list("projects/")) == []


def test_cli_sync_reports_and_a_second_sync_copies_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    (tmp_path / "f.txt").write_text("hello")
    with artifactstore.open(src_url, cache_dir=tmp_path / "c") as src:
        src.log_artifact(tmp_path / "f.txt", name="notes", type="text")
    assert main(["sync", src_url, dst_url]) == 0
    assert "synced every project" in capsys.readouterr().out
    assert main(["sync", src_url, dst_url, "--project", "default", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["objects_copied"] == 0
    assert report["records"]["present"] == 2  # the project record (genesis) and v0
    assert main(["sync", src_url, src_url]) == 2
    assert main(["sync", src_url, dst_url, "--project", "nope"]) == 3


# -- re-logging --------------------------------------------------------------------------


def test_relog_publishes_a_private_project_into_a_public_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(src_url, create=True).close()
        create_project("lab", src_url)
        with artifactstore.open(src_url, "lab", cache_dir=tmp_path / "c1") as src:
            fill(src, tmp_path)
        report = relog(src_url, dst_url, "lab", "public", cache_dir=tmp_path / "c2")
        assert not report.conflicts
        assert report.logged == [("data:v0", "data:v0"), ("data:v1", "data:v1"),
                                 ("model:v0", "model:v0")]
        assert sorted(report.aliases) == ["data:prod -> v1", "model:candidate -> v0"]
        again = relog(src_url, dst_url, "lab", "public", cache_dir=tmp_path / "c2")
        assert again.logged == []
        assert again.aliases == []
        assert len(again.present) == 3
        assert main(["sync", src_url, dst_url, "--project", "lab", "--to-project", "public",
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["objects_copied"] == 0
    with person(monkeypatch, tmp_path, "carol"), \
            artifactstore.open(dst_url, "public", create=False, cache_dir=tmp_path / "c3") as dst:
        assert not dst.refs.codec.encrypted
        v1 = dst.artifact("data:prod")
        assert (v1.number, v1.metadata, v1.type) == (1, {}, "dataset")
        assert dst.artifact("data:v0").metadata == {"rows": 2000}
        assert dst.artifact("data:v0").description == "first"
        assert v1.verify() == 2
        assert dst.artifact("model:candidate").open("model.bin").read().startswith(b"weights")
