"""A Hypothesis state machine: delete, restore, purge and gc through ``Store`` against a dict model.

Small versions of two artifacts share files (every file comes from a pool of
five contents), so gc must keep what a live version still names. The model
knows each version's files and state (live, deleted, purged) and which blobs
the store holds. A version's blobs are its manifest and root tree (both fixed by
its files: one token here) and one chunk per distinct file content (every
content is smaller than the smallest chunk).

- log: identical files to the latest live version make no version; otherwise
  the next number, deleted numbers included, and its blobs are stored.
- gc with grace 0 (threshold 0, so every pack holding a dead blob is rewritten):
  the store holds exactly the blobs of live versions; a gc with a long grace
  period only condemns, and changes nothing a reader or a restore sees.
- purge: tombstone, then the version's blobs that no live version names are gone.
- restore: succeeds while every blob of the version is still held (condemned ones
  are rescued), refuses once gc or a purge took one, and never undoes a purge.

After every step live versions read back byte-identical and deleted ones refuse
to be read; after every gc or purge the store verifies clean and the bytes of
every file no held blob has are nowhere on the backend.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import artifactstore
from artifactstore.core.errors import ConflictError, InvalidInputError, NotFoundError
from artifactstore.core.synthetic import random_bytes
from artifactstore.maintenance.verify import verify_store
from artifactstore.testing.stores import init_quick_store
from artifactstore.testing.strategies import artifact_names, flat_file_trees

ARTIFACTS = ("a", "b")
#: distinct incompressible contents below the smallest chunk (16 KiB)
POOL = [random_bytes(size, seed=700 + i) for i, size in enumerate((300, 1500, 4000, 9000))]
NAMES = ("x.bin", "y.bin")
#: seconds: a gc with grace 0 and a purge wait this long
WINDOW = 0.05

Tree = dict[str, bytes]
Blob = tuple[str, object]


def blobs_of(tree: Tree) -> set[Blob]:
    return {("root", frozenset(tree.items()))} | {("chunk", data) for data in tree.values()}


@dataclass
class Version:
    tree: Tree
    state: str = "live"  # or "deleted", "purged"


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="lifecycle-sm-"))
        self.url = str(self.root / "store")
        init_quick_store(self.url, commit_window=WINDOW)
        self.store = artifactstore.open(self.url, cache_dir=self.root / "cache")
        self.model: dict[str, list[Version]] = {a: [] for a in ARTIFACTS}
        self.held: set[Blob] = set()
        self.ever: set[bytes] = set()
        self.logs = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the model --------------------------------------------------------------------

    def _live(self, artifact: str) -> list[int]:
        return [n for n, v in enumerate(self.model[artifact]) if v.state == "live"]

    def _live_blobs(self) -> set[Blob]:
        return {b for vs in self.model.values() for v in vs if v.state == "live"
                for b in blobs_of(v.tree)}

    def _version(self, artifact: str, number: int) -> Version | None:
        versions = self.model[artifact]
        return versions[number] if number < len(versions) else None

    # -- rules ----------------------------------------------------------------------------

    @initialize(first=flat_file_trees(range(len(POOL)), NAMES),
                second=flat_file_trees(range(len(POOL)), NAMES))
    def two_versions(self, first: dict[str, int], second: dict[str, int]) -> None:
        """Every example starts with a history: two logs of one artifact."""
        self.log("a", first)
        self.log("a", second)

    @rule(artifact=artifact_names(ARTIFACTS), files=flat_file_trees(range(len(POOL)), NAMES))
    def log(self, artifact: str, files: dict[str, int]) -> None:
        """Log ``files`` (name -> index of its content in the pool)."""
        tree = {name: POOL[i] for name, i in files.items()}
        self.logs += 1
        folder = self.root / f"src-{self.logs}"
        folder.mkdir()
        for name, data in tree.items():
            (folder / name).write_bytes(data)
        got = self.store.log_artifact(folder, name=artifact, type="dataset")
        live = self._live(artifact)
        if live and self.model[artifact][live[-1]].tree == tree:
            assert (got.created, got.number) == (False, live[-1])
            event("log: unchanged")
        else:
            assert (got.created, got.number) == (True, len(self.model[artifact]))
            self.model[artifact].append(Version(tree))
            self.held |= blobs_of(tree)
            self.ever |= set(tree.values())

    def _pick(self, data: st.DataObject, *states: str) -> tuple[str, int, Version] | None:
        """A version in one of ``states``, drawn; None when there is none."""
        found = [(a, n) for a, vs in self.model.items() for n, v in enumerate(vs)
                 if v.state in states]
        if not found:
            return None
        artifact, number = data.draw(st.sampled_from(found))
        return artifact, number, self.model[artifact][number]

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        picked = self._pick(data, "live")
        if picked is not None:
            artifact, number, version = picked
            self.store.delete(f"{artifact}:v{number}", reason="test")
            version.state = "deleted"

    @rule(artifact=artifact_names(ARTIFACTS), number=st.integers(0, 5))
    def refusals(self, artifact: str, number: int) -> None:
        """Versions that do not exist, or are not live, cannot be deleted or read."""
        version = self._version(artifact, number)
        if version is None or version.state != "live":
            with pytest.raises(NotFoundError):
                self.store.delete(f"{artifact}:v{number}")
        if version is None:
            for call in (self.store.restore, lambda r: self.store.purge(r, reason="x")):
                with pytest.raises(NotFoundError):
                    call(f"{artifact}:v{number}")

    @rule(artifact=artifact_names(ARTIFACTS))
    def delete_artifact(self, artifact: str) -> None:
        live = self._live(artifact)
        if not live:
            with pytest.raises(NotFoundError):
                self.store.delete_artifact(artifact)
            return
        event = self.store.delete_artifact(artifact)
        assert list(event.numbers) == live
        for n in live:
            self.model[artifact][n].state = "deleted"

    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        picked = self._pick(data, "live", "deleted", "deleted", "purged")
        if picked is None:
            return
        artifact, number, version = picked
        ref = f"{artifact}:v{number}"
        if version.state == "live":
            with pytest.raises(InvalidInputError, match="not deleted"):
                self.store.restore(ref)
        elif version.state == "purged":
            with pytest.raises(InvalidInputError, match="purge cannot be undone"):
                self.store.restore(ref)
        elif blobs_of(version.tree) <= self.held:
            self.store.restore(ref)
            version.state = "live"
            event("restore: done")
        else:  # gc or a purge took some of its blobs
            with pytest.raises((NotFoundError, ConflictError)):
                self.store.restore(ref)
            event("restore: refused, data reclaimed")

    @rule()
    def gc(self) -> None:
        report = self.store.gc(grace=0, repack_threshold=0.0)
        event(f"gc: {'freed' if report.bytes_freed else 'nothing to free'}")
        self.held = self._live_blobs()
        self._check_backend()

    @rule()
    def gc_condemning_only(self) -> None:
        """A long grace period: what is unreferenced is condemned, nothing is freed."""
        report = self.store.gc(grace=3600)
        assert report.bytes_freed == 0

    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        picked = self._pick(data, "live", "deleted", "purged")
        if picked is None:
            return
        artifact, number, version = picked
        ref = f"{artifact}:v{number}"
        if version.state == "purged":
            with pytest.raises(InvalidInputError, match="already purged"):
                self.store.purge(ref, reason="test")
            return
        if not blobs_of(version.tree) <= self.held:
            return  # see test_purge_of_a_version_gc_already_reclaimed
        report = self.store.purge(ref, reason="test")
        assert report.absent
        event(f"purge: {version.state} version, {'some' if report.shared_files else 'no'} "
              "files kept")
        version.state = "purged"
        self.held -= blobs_of(version.tree) - self._live_blobs()
        self._check_backend()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def live_versions_read_back_and_deleted_ones_refuse(self) -> None:
        assert self.store.artifacts() == sorted(a for a in ARTIFACTS if self._live(a))
        for artifact, versions in self.model.items():
            live = self._live(artifact)
            if live:
                assert [v.number for v in self.store.versions(artifact)] == live
                assert self.store.artifact(artifact).number == live[-1]
            for number, version in enumerate(versions):
                ref = f"{artifact}:v{number}"
                if version.state == "live":
                    got = self.store.artifact(ref)
                    assert {e.path: got.open(e.path).read() for e in got.files()} == version.tree
                else:
                    with pytest.raises(NotFoundError, match="purged" if version.state ==
                                       "purged" else "restore it"):
                        self.store.artifact(ref)
        assert [(a, n) for a, n, _ in self.store.deleted_versions()] == sorted(
            (a, n) for a, vs in self.model.items() for n, v in enumerate(vs)
            if v.state != "live")

    def _check_backend(self) -> None:
        """The store verifies clean; the bytes of a file no held blob has are gone."""
        report = verify_store(self.url, cache_dir=self.root / "verify-cache")
        assert report.ok, report.damage_lines()
        backend = self.store.objects.backend
        stored = b"".join(backend.get(k) for k in backend.list("objects/"))
        for data in self.ever:
            assert (data[100:164] in stored) == (("chunk", data) in self.held)


LifecycleMachine.TestCase.settings = settings(
    max_examples=20, stateful_step_count=25, deadline=None, derandomize=True, database=None)
TestLifecycle = LifecycleMachine.TestCase


def test_purge_of_a_version_gc_already_reclaimed(tmp_path: Path) -> None:
    """Found by the lifecycle machine: the takedown is recorded (so sync carries it to
    copies holding the data) though gc reclaimed the deleted version's tree first."""
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=WINDOW)
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as store:
        for n, files in enumerate(({"x.bin": POOL[0], "y.bin": POOL[1]}, {"x.bin": POOL[0]})):
            folder = tmp_path / f"v{n}"
            folder.mkdir()
            for name, data in files.items():
                (folder / name).write_bytes(data)
            store.log_artifact(folder, name="a", type="dataset")
        store.delete("a:v0")
        store.gc(grace=0, repack_threshold=0.0)
        report = store.purge("a:v0", reason="takedown after gc")
        assert report.absent
        assert report.tree_reclaimed
        assert store.refs.lifecycle.events()[-1].action == "purge"
