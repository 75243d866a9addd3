"""The Python API: log, read back by name/version/alias, download, verify, use()."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.core.synthetic import random_bytes

import artifactstore
from artifactstore import Artifact
from artifactstore.objects.layout import pack_prefix

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[artifactstore.Store]:
    s = artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    yield s
    s.close()


def _tree(root: Path) -> Path:
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "empty.txt").write_bytes(b"")
    (root / "nested" / "données-日本.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / "nested" / "deeper" / "weights.bin").write_bytes(random_bytes(300_000, seed=1))
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    return root


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_log_and_download_round_trip(store: artifactstore.Store, tmp_path: Path) -> None:
    source = _tree(tmp_path / "data")
    version = store.log_artifact(source, name="dataset", type="dataset",
                                 metadata={"rows": 2}, description="first")
    assert version.created
    assert version.version == "v0"
    assert version.type == "dataset"
    assert version.metadata == {"rows": 2}
    assert version.size == sum(len(b) for b, _ in _snapshot(source).values())
    out = version.download(tmp_path / "out")
    assert _snapshot(out) == _snapshot(source)
    for entry in version.files():
        assert entry.digest == hash_bytes((source / entry.path).read_bytes())
    assert version.verify() == 4
    assert version.verify(out) == 4


def test_versions_aliases_and_latest(store: artifactstore.Store, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"one")
    v0 = store.log_artifact(f, name="model", type="model", aliases=["candidate"])
    f.write_bytes(b"two")
    v1 = store.log_artifact(f, name="model", type="model")
    assert (v0.version, v1.version) == ("v0", "v1")
    assert store.artifact("model").version == "v1"
    assert store.artifact("model:latest").version == "v1"
    assert store.artifact("model:v0").version == "v0"
    assert store.artifact("model:candidate").version == "v0"
    assert store.artifact("model:v0").aliases == ["candidate"]
    assert store.artifact("model:v1").aliases == ["latest"]
    store.set_alias("model:v1", "candidate")
    assert store.artifact("model:candidate").version == "v1"
    history = store.alias_history("model", "candidate")
    assert [(e.previous, e.target) for e in history] == [(None, 0), (0, 1)]
    assert [v.version for v in store.versions("model")] == ["v0", "v1"]
    assert store.artifacts() == ["model"]


def test_identical_content_creates_no_new_version(store: artifactstore.Store,
                                                  tmp_path: Path) -> None:
    source = _tree(tmp_path / "d")
    first = store.log_artifact(source, name="ds", type="dataset")
    again = store.log_artifact(source, name="ds", type="dataset")
    assert first.created
    assert not again.created
    assert again.version == "v0"
    assert [v.version for v in store.versions("ds")] == ["v0"]


def test_artifact_builder(store: artifactstore.Store, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "b.txt").write_text("B")
    art = Artifact("bundle", type="dataset", metadata={"k": "v"})
    art.add_file(tmp_path / "a.txt", name="renamed.txt")
    art.add_dir(tmp_path / "dir", name="sub")
    with art.new_file("notes/readme.md") as f:
        f.write("# notes\n")
    art.add_file(tmp_path / "a.txt")
    art.remove("a.txt")
    version = store.log_artifact(art)
    assert [e.path for e in version.files()] == ["notes/readme.md", "renamed.txt", "sub/b.txt"]
    with version.open("notes/readme.md") as f:
        assert f.read() == b"# notes\n"


def test_add_dir_follows_file_links_not_folder_links(tmp_path: Path) -> None:
    # The whole link policy, case by case, is in test_localtree.py.
    root = tmp_path / "data"
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "x.txt").write_text("x")
    (root / "top.txt").write_text("t")
    (root / "linked-folder").symlink_to(root / "deep")  # not followed: no loops
    (root / "linked-file.txt").symlink_to(root / "top.txt")  # followed: its content
    os.mkfifo(root / "pipe")  # not content
    art = Artifact("d", type="dataset")
    assert art.add_dir(root, name="in") == [
        "in/deep/er/x.txt", "in/linked-file.txt", "in/top.txt"]
    assert sorted(s.path.name for s in art.skipped) == ["linked-folder", "pipe"]


def test_open_streams_and_seeks(store: artifactstore.Store, tmp_path: Path) -> None:
    data = random_bytes(3 * MiB, seed=4)
    (tmp_path / "big.bin").write_bytes(data)
    version = store.log_artifact(tmp_path / "big.bin", name="big", type="model")
    with version.open("big.bin") as f:
        f.seek(2 * MiB + 17)
        assert f.read(1000) == data[2 * MiB + 17 : 2 * MiB + 1017]
        f.seek(-10, os.SEEK_END)
        assert f.read() == data[-10:]
        f.seek(0)
        assert f.read() == data


def test_bad_inputs_are_clear(store: artifactstore.Store, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file or folder"):
        store.log_artifact(tmp_path / "missing", name="x", type="dataset")
    with pytest.raises(InvalidInputError, match="bad name"):
        Artifact("bad name", type="dataset")
    with pytest.raises(NotFoundError):
        store.artifact("nothing:latest")
    (tmp_path / "f").write_text("x")
    store.log_artifact(tmp_path / "f", name="f", type="dataset")
    with pytest.raises(NotFoundError):
        store.artifact("f:v7")
    with pytest.raises(NotFoundError):
        store.artifact("f:no-such-alias")
    with pytest.raises(InvalidInputError):
        store.set_alias("f:v0", "v3")
    with pytest.raises(InvalidInputError):
        store.log_artifact(tmp_path / "f", name="f", type="dataset", metadata={"bad": {1, 2}})


def test_unreadable_file_fails_cleanly_and_logs_nothing(store: artifactstore.Store,
                                                        tmp_path: Path) -> None:
    # /proc/self/mem is a regular file whose read fails with EIO, even for root
    # (which reads chmod-000 files, so permission bits cannot make this test).
    art = Artifact("broken", type="dataset")
    (tmp_path / "ok.txt").write_text("fine")
    art.add_file(tmp_path / "ok.txt")
    art.add_file("/proc/self/mem", name="mem.bin")
    with pytest.raises(InvalidInputError, match="cannot read /proc/self/mem"):
        store.log_artifact(art)
    with pytest.raises(NotFoundError):
        store.artifact("broken")


@pytest.mark.skipif(not os.path.exists("/proc/version"), reason="needs Linux /proc")
def test_a_file_is_read_to_its_end_whatever_its_stat_size(store: artifactstore.Store,
                                                          tmp_path: Path) -> None:
    # /proc/version says size 0, as a file that grew after its fstat would say too little.
    assert os.stat("/proc/version").st_size == 0
    expected = Path("/proc/version").read_bytes()
    version = store.log_artifact("/proc/version", name="kernel", type="dataset")
    assert version.size == len(expected) > 0
    assert version.open("version").read() == expected


def test_file_replaced_by_a_folder_after_staging(store: artifactstore.Store,
                                                 tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    art = Artifact("moving", type="dataset")
    art.add_file(tmp_path / "f")
    (tmp_path / "f").unlink()
    (tmp_path / "f").mkdir()
    with pytest.raises(InvalidInputError, match="is a folder"):
        store.log_artifact(art)


def test_download_refuses_path_traversal_and_symlink_escape(store: artifactstore.Store,
                                                            tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "inner").mkdir()
    (tmp_path / "src" / "inner" / "f.txt").write_text("x")
    version = store.log_artifact(tmp_path / "src", name="t", type="dataset")
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, out / "inner")  # an attacker-placed link inside the target folder
    with pytest.raises(InvalidInputError):
        version.download(out)
    assert not (outside / "f.txt").exists()


def test_download_resumes_and_replaces_only_manifest_files(store: artifactstore.Store,
                                                           tmp_path: Path) -> None:
    source = _tree(tmp_path / "d")
    version = store.log_artifact(source, name="ds", type="dataset")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    (out / "empty.txt").write_text("stale content")
    version.download(out)
    assert (out / "mine.txt").read_text() == "keep me"
    assert (out / "empty.txt").read_bytes() == b""
    leftovers = [p for p in out.rglob("*") if ".artifactstore-tmp-" in p.name]
    assert leftovers == []


def test_tampered_blob_fails_download_and_verify(store: artifactstore.Store,
                                                 tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(random_bytes(100_000, seed=9))
    version = store.log_artifact(tmp_path / "f.bin", name="m", type="model")
    store.close()
    packs = sorted((tmp_path / "store" / pack_prefix("plain")).rglob("*"))
    biggest = max((p for p in packs if p.is_file()), key=lambda p: p.stat().st_size)
    raw = bytearray(biggest.read_bytes())
    raw[50] ^= 0xFF
    biggest.write_bytes(bytes(raw))
    reopened = artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c2")
    again = reopened.artifact("m:v0")
    with pytest.raises(IntegrityError, match=r"f\.bin"):
        again.verify()
    with pytest.raises(IntegrityError, match=r"^f\.bin: "):
        again.download(tmp_path / "out")
    assert not (tmp_path / "out" / "f.bin").exists()
    reopened.close()
    del version


def test_download_into_a_new_folder_is_staged_and_renamed_whole(
        store: artifactstore.Store, tmp_path: Path) -> None:
    source = _tree(tmp_path / "d")
    version = store.log_artifact(source, name="ds", type="dataset")
    work = tmp_path / "work"
    version.download(work / "new")  # absent: staged beside it, renamed at the end
    empty = work / "empty"
    empty.mkdir(mode=0o750)
    empty.chmod(0o750)
    version.download(empty)  # empty: the same, keeping the folder's mode
    for out in (work / "new", empty):
        assert _snapshot(out) == _snapshot(source)
    assert stat.S_IMODE(empty.stat().st_mode) == 0o750
    assert sorted(p.name for p in work.iterdir()) == ["empty", "new"]


def test_download_into_the_empty_working_folder_writes_in_place(
        store: artifactstore.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _tree(tmp_path / "d")
    version = store.log_artifact(source, name="ds", type="dataset")
    work = tmp_path / "work"
    work.mkdir()
    before = work.stat().st_ino
    monkeypatch.chdir(work)
    version.download(".")  # staging would replace the folder the process stands in
    assert work.stat().st_ino == before
    assert Path.cwd().resolve() == work.resolve()
    assert _snapshot(work) == _snapshot(source)
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".artifactstore-tmp-")] == []


def test_failed_staged_download_leaves_no_target_and_a_retry_takes_over(
        store: artifactstore.Store, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for i in range(3):
        (tmp_path / "src" / f"f{i}.bin").write_bytes(random_bytes(100_000, seed=20 + i))
    store.log_artifact(tmp_path / "src", name="m", type="model")
    store.close()
    packs = [p for p in (tmp_path / "store" / pack_prefix("plain")).rglob("*") if p.is_file()]
    biggest = max(packs, key=lambda p: p.stat().st_size)
    good = biggest.read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    biggest.write_bytes(bytes(damaged))
    work = tmp_path / "work"
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c2") as reopened:
        with pytest.raises(IntegrityError):
            reopened.artifact("m:v0").download(work / "out")
        assert not (work / "out").exists()  # complete or not at all
        [stage] = work.iterdir()  # what was written and verified stays, for a retry
        assert stage.name.startswith(".artifactstore-tmp-")
        biggest.write_bytes(good)  # repaired
        reopened.artifact("m:v0").download(work / "out")  # same process: takes it over
    assert [p.name for p in work.iterdir()] == ["out"]
    assert _snapshot(work / "out") == _snapshot(tmp_path / "src")


def test_use_from_environment_and_config_file(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as s:
        (tmp_path / "w.bin").write_bytes(b"weights")
        s.log_artifact(tmp_path / "w.bin", name="model", type="model")
    script = "import artifactstore; print(artifactstore.use('model:latest').download())"
    env = {**os.environ, "ARTIFACTSTORE_URL": url}
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (work / done.stdout.strip() / "w.bin").read_bytes() == b"weights"

    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "artifactstore.toml").write_text(f'url = "{url}"\n')
    env.pop("ARTIFACTSTORE_URL")
    script2 = ("from artifactstore import artifact; "
               "print(artifact.use('model:latest').download())")
    done = subprocess.run([sys.executable, "-c", script2], cwd=project / "sub", env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (project / "sub" / done.stdout.strip() / "w.bin").read_bytes() == b"weights"


def test_diff_between_versions(store: artifactstore.Store, tmp_path: Path) -> None:
    source = _tree(tmp_path / "d")
    v0 = store.log_artifact(source, name="ds", type="dataset")
    (source / "nested" / "new.txt").write_text("new")
    (source / "empty.txt").unlink()
    (source / "run.sh").write_text("changed")
    v1 = store.log_artifact(source, name="ds", type="dataset")
    changes = {(c.path, c.kind) for c in v1.diff(v0)}
    assert changes == {("nested/new.txt", "added"), ("empty.txt", "removed"),
                       ("run.sh", "modified")}


def test_second_download_comes_from_the_local_cache(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    (tmp_path / "w.bin").write_bytes(random_bytes(2 * MiB, seed=77))
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as local:
        assert local.file_cache is None  # a local store is its own cache (by default)
    with artifactstore.open(url, cache_dir=tmp_path / "cache", file_cache=True) as store:
        version = store.log_artifact(tmp_path / "w.bin", name="m", type="model")
        first = version.download(tmp_path / "one")
        (first / "w.bin").write_bytes(b"edited by the user")  # must not reach the cache
        assert store.file_cache is not None
        assert store.file_cache.info().entries == 1
    # Damage the file's chunks in the store (they come first in the pack, before
    # the tree nodes): from now on only the cache can produce the right bytes.
    (pack,) = (tmp_path / "store").rglob("packs/*/*")
    raw = bytearray(pack.read_bytes())
    raw[100] ^= 0xFF
    pack.write_bytes(bytes(raw))
    with artifactstore.open(url, cache_dir=tmp_path / "cache", file_cache=True) as store:
        again = store.artifact("m:v0").download(tmp_path / "two")
        assert (again / "w.bin").read_bytes() == random_bytes(2 * MiB, seed=77)
    uncached = artifactstore.open(url, cache_dir=tmp_path / "cache", file_cache=False)
    with uncached, pytest.raises(IntegrityError):
        uncached.artifact("m:v0").download(tmp_path / "three")


@pytest.mark.parametrize("protect", [True, False])
def test_protecting_an_alias_that_is_not_set_creates_nothing(tmp_path: Path,
                                                             protect: bool) -> None:
    """A protection change is a write: its lookup comes before the first write creates
    the store (issue 14), so a mistyped alias leaves no store behind."""
    url = tmp_path / "store"
    with artifactstore.open(str(url)) as store:
        change = store.protect_alias if protect else store.unprotect_alias
        with pytest.raises(NotFoundError):
            change("model", "prod")
    assert not url.exists()
