"""Downloads onto disks that fail them, and targets that cannot be folders (issue 14).

The disks are real: a 1 MiB tmpfs for a full disk, a read-only tmpfs for a read-only
one (mounted as root, unmounted after each test). Whatever happens, the target is
left as it was, no staging folder or temp file remains, and the CLI says one line
with the exit code of the error class (11 full, 8 read-only, 2 a bad target).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from artifactstore.core.errors import InvalidInputError, ReadOnlyError, StorageFullError
from artifactstore.core.synthetic import random_bytes
from artifactstore.repository.download import TEMP_MARK
from cli_calls import cli

import artifactstore

BIG = 3 << 20  # three times the small disk


def _mount(where: Path, options: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system: a 3 MiB version cannot fit."""
    yield from _mount(tmp_path / "small", "size=1m")


@pytest.fixture
def readonly_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A local store holding ds:v0: a 3 MiB file and a small one."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(random_bytes(BIG, seed=14))
    (data / "small.txt").write_text("small\n")
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache") as store:
        store.log_artifact(data, name="ds", type="dataset")
    return str(tmp_path / "store")


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("target", ["new", "new/nested/deeper", "empty"])
def test_cli_get_onto_a_full_disk(url: str, small_disk: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], target: str) -> None:
    (small_disk / "empty").mkdir()
    before = _listing(small_disk)
    code, _, err = cli(capsys, "get", "ds:v0", "--dir", str(small_disk / target),
                         "--store", url, "--quiet")
    assert code == StorageFullError.exit_code == 11
    line = _one_line(err)
    assert str(small_disk / target) in line
    assert "no space left" in line
    assert "3.0 MiB" in line  # how much was asked for
    assert _listing(small_disk) == before  # no staging folder, no folder it made


def test_cli_get_onto_a_full_disk_into_a_folder_with_files(
        url: str, small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = small_disk / "work"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    code, _, err = cli(capsys, "get", "ds:v0", "--dir", str(folder), "--store", url, "-q")
    assert code == 11
    _one_line(err)
    assert (folder / "keep.txt").read_text() == "mine\n"
    # in place: completed files may stay (each verified); no temp file does
    assert [p for p in _listing(small_disk) if TEMP_MARK in p] == []
    assert not (folder / "big.bin").exists()


def test_api_download_onto_a_full_disk(url: str, small_disk: Path, tmp_path: Path) -> None:
    with artifactstore.open(url, cache_dir=tmp_path / "cache2") as store:
        version = store.artifact("ds:v0")
        with pytest.raises(StorageFullError, match="no space left"):
            version.download(small_disk / "out")
        with pytest.raises(StorageFullError):
            version.get_path("big.bin", small_disk / "one")
    assert _listing(small_disk) == []


@pytest.mark.parametrize("target", ["out", "new/out", "empty", "out.tar", "out.tar.gz"])
def test_cli_export_onto_a_full_disk(url: str, small_disk: Path, target: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (small_disk / "empty").mkdir()
    before = _listing(small_disk)
    code, _, err = cli(capsys, "export", "ds:v0", str(small_disk / target), "--store", url)
    assert code == 11
    assert "no space left" in _one_line(err)
    assert _listing(small_disk) == before  # no partial files/, temp file or folder


def test_download_when_the_caches_are_on_a_full_disk(url: str, small_disk: Path,
                                                     tmp_path: Path) -> None:
    """Caches (files, catalog) are an optimisation: a full cache disk must not fail the
    download."""
    (small_disk / "filler").write_bytes(b"\0" * ((1 << 20) - 8192))
    with artifactstore.open(url, cache_dir=small_disk / "cache", file_cache=True) as store:
        out = store.artifact("ds:v0").download(tmp_path / "out")
    assert (out / "big.bin").read_bytes() == random_bytes(BIG, seed=14)
    assert [p for p in _listing(small_disk) if TEMP_MARK in p or p.endswith(".tmp")] == []


def test_cli_get_onto_a_read_only_disk(url: str, readonly_disk: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "get", "ds:v0", "--dir", str(readonly_disk / "out"),
                       "--store", url, "-q")
    assert code == ReadOnlyError.exit_code == 8
    assert "read-only" in _one_line(err)
    assert _listing(readonly_disk) == []


@pytest.mark.parametrize("target", ["file", "file/sub", "dangling", "store", "store/sub"])
def test_a_target_that_cannot_be_a_folder_is_refused_before_writing(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    (tmp_path / "file").write_text("a file\n")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = _listing(tmp_path)
    code, _, err = cli(capsys, "get", "ds:v0", "--dir", str(tmp_path / target),
                       "--store", url, "-q")
    assert code == InvalidInputError.exit_code == 2
    assert f"cannot download into {tmp_path / target}" in _one_line(err)
    assert _listing(tmp_path) == before
    assert (tmp_path / "file").read_text() == "a file\n"
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as store, \
            pytest.raises(InvalidInputError):
        store.artifact("ds:v0").download(tmp_path / target)
