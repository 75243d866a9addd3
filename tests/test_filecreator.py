"""The download's file-creating processes (repository/filecreator.py): files land in
order with their bytes and modes, new only (O_EXCL|O_NOFOLLOW), a failure reaches
the caller, nothing is written after the download failed, and a download of many
small files through them keeps the download's guarantees (a full disk, a damaged
store, a process that cannot start)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifactstore
from artifactstore.core.errors import IntegrityError, StorageFullError
from artifactstore.core.synthetic import random_bytes
from artifactstore.repository import filecreator
from artifactstore.repository.download import TEMP_MARK
from artifactstore.repository.filecreator import PENDING_BYTES, FileCreator


def _children() -> set[int]:
    """This process's living child processes (Linux's /proc)."""
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def test_files_are_created_with_their_bytes_and_modes_across_folders(tmp_path: Path) -> None:
    folders = [tmp_path / f"d{i}" for i in range(5)]
    for folder in folders:
        folder.mkdir()
    files = {folders[i % 5] / f"f{i}": random_bytes(1000 + 37 * i, seed=i) for i in range(300)}
    before = _children()
    with FileCreator(processes=2) as creator:
        assert creator.start()
        assert len(_children() - before) == 2
        for i, (target, data) in enumerate(sorted(files.items())):
            creator.submit(str(target), 0o600 if i % 2 else 0o640, data,
                           f"{target.parent.name}/{target.name}")
    assert _children() == before  # both processes ended with the with
    for i, (target, data) in enumerate(sorted(files.items())):
        assert target.read_bytes() == data
        assert stat.S_IMODE(target.stat().st_mode) == (0o600 if i % 2 else 0o640)


def test_more_than_the_pending_budget_waits_for_the_processes(tmp_path: Path) -> None:
    big = random_bytes(1 << 20, seed=3)
    count = 3 * PENDING_BYTES // len(big)
    with FileCreator() as creator:
        assert creator.start()
        for i in range(count):
            creator.submit(str(tmp_path / f"f{i}"), 0o644, big, f"f{i}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"f{i}" for i in range(count))
    assert all(p.read_bytes() == big for p in tmp_path.iterdir())


def test_an_existing_name_is_a_collision_and_nothing_after_it_is_written(
        tmp_path: Path) -> None:
    (tmp_path / "f3").write_bytes(b"first")

    def create_all() -> None:
        with FileCreator(processes=1) as creator:
            assert creator.start()
            for i in range(10):
                creator.submit(str(tmp_path / f"f{i}"), 0o644, b"x" * 100, f"in/f{i}")

    with pytest.raises(IntegrityError, match="in/f3 collides with another path"):
        create_all()
    assert (tmp_path / "f3").read_bytes() == b"first"  # not overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f1", "f2", "f3"]


def test_a_link_in_the_way_is_refused_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "f").symlink_to(outside)

    def create() -> None:
        with FileCreator(processes=1) as creator:
            assert creator.start()
            creator.submit(str(inside / "f"), 0o644, b"hostile", "f")

    with pytest.raises(IntegrityError, match="f collides"):  # O_EXCL: the link exists
        create()
    assert outside.read_bytes() == b"keep"


def test_a_failure_of_the_caller_ends_the_processes(tmp_path: Path) -> None:
    before = _children()

    def fail_midway() -> None:
        with FileCreator() as creator:
            assert creator.start()
            for i in range(50):
                creator.submit(str(tmp_path / f"f{i}"), 0o644, b"y" * 1000, f"f{i}")
            raise IntegrityError("the store's side failed")

    with pytest.raises(IntegrityError, match="store's side"):
        fail_midway()
    assert _children() == before  # ended and reaped: nothing is written from here on


# -- a download through them -------------------------------------------------------------

FILES = 700  # past the first batch (download._CREATOR_MIN): the processes start


@pytest.fixture
def many_small(tmp_path: Path) -> tuple[str, Path]:
    """A local store holding ds:v0, 700 small files in 7 folders."""
    data = tmp_path / "data"
    for i in range(FILES):
        path = data / f"d{i % 7}" / f"f{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(3000 + i, seed=i))
        if i % 10 == 0:
            path.chmod(0o755)
    url = str(tmp_path / "store")
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as store:
        store.log_artifact(data, name="ds", type="dataset")
    return url, data


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in root.rglob("*") if p.is_file()}


def test_a_download_of_many_small_files_is_exact(many_small: tuple[str, Path],
                                                 tmp_path: Path) -> None:
    url, data = many_small
    with artifactstore.open(url, cache_dir=tmp_path / "cache2") as store:
        store.artifact("ds:v0").download(tmp_path / "out")
    assert _tree(tmp_path / "out") == _tree(data)
    assert [p for p in tmp_path.iterdir() if TEMP_MARK in p.name] == []


@pytest.mark.parametrize("why", ["no helper file", "not a Python interpreter"])
def test_without_the_processes_the_writer_thread_does_the_same(
        many_small: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        why: str) -> None:
    if why == "no helper file":  # as in an application bundled without the helper's file
        monkeypatch.setattr(filecreator, "_CHILD", tmp_path / "absent.py")
    else:  # a program embedding Python: its executable must not be started as Python
        monkeypatch.setattr(sys, "executable", "/usr/bin/env")  # the one filecreator reads
    assert not FileCreator().start()
    before = _children()
    url, data = many_small
    with artifactstore.open(url, cache_dir=tmp_path / "cache2") as store:
        store.artifact("ds:v0").download(tmp_path / "out")
    assert _tree(tmp_path / "out") == _tree(data)
    assert _children() == before


def test_a_damaged_store_leaves_no_file_under_the_target(many_small: tuple[str, Path],
                                                        tmp_path: Path) -> None:
    url, _ = many_small
    packs = sorted((Path(url)).rglob("packs/**/*"), key=lambda p: p.stat().st_size)
    biggest = [p for p in packs if p.is_file()][-1]
    damaged = bytearray(biggest.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    biggest.chmod(0o644)
    biggest.write_bytes(bytes(damaged))
    before = _children()
    with artifactstore.open(url, cache_dir=tmp_path / "cache2") as store, \
            pytest.raises(IntegrityError):
        store.artifact("ds:v0").download(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _children() == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system: 700 files of ~3.3 KiB (a 4 KiB block each) cannot fit."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_disk_leaves_the_target_as_it_was(many_small: tuple[str, Path],
                                                 small_disk: Path, tmp_path: Path) -> None:
    url, _ = many_small
    with artifactstore.open(url, cache_dir=tmp_path / "cache2") as store, \
            pytest.raises(StorageFullError, match="no space left"):
        store.artifact("ds:v0").download(small_disk / "out")
    assert list(small_disk.iterdir()) == []
