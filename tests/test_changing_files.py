"""A file rewritten while it is logged is read again, or refused by name (store.py).

The writer is a real second thread that rewrites the file in place; it is made
deterministic by gating it on the progress callback the API exposes: the callback
(called as the logger consumes chunks, mid-read) lets the writer write and waits
until it has written, so the rewrite lands between two chunks of one read.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from artifactstore.core.errors import InvalidInputError

import artifactstore
from artifactstore.testing.data import random_bytes

SIZE = 3 << 20  # above the one-read size: streamed in chunks


class _Writer:
    """A thread that rewrites ``path`` in place each time the logger reports progress,
    up to ``times`` times (each rewrite a new content of the same size)."""

    def __init__(self, path: Path, times: int) -> None:
        self.path = path
        self.left = times
        self.contents: list[bytes] = []
        self._go = threading.Event()
        self._done = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._go.wait(timeout=60) and not self._stop:
            self._go.clear()
            content = random_bytes(SIZE, seed=100 + len(self.contents))
            with open(self.path, "r+b") as f:  # in place: same inode, new bytes
                f.write(content)
            self.contents.append(content)
            self._done.set()

    def progress(self, _: int) -> None:
        if self.left > 0:
            self.left -= 1
            self._done.clear()
            self._go.set()
            assert self._done.wait(timeout=60), "the writer did not write"

    def close(self) -> None:
        self._stop = True
        self._go.set()
        self._thread.join(timeout=60)


def _store(tmp_path: Path) -> artifactstore.Store:
    return artifactstore.open(str(tmp_path / "store"), create=True, cache_dir=tmp_path / "c")


def _leftovers(tmp_path: Path) -> list[str]:
    return [p.name for p in (tmp_path / "store").rglob(".tmp-*")]


def test_a_file_rewritten_once_mid_read_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(random_bytes(SIZE, seed=1))
    writer = _Writer(path, times=1)
    try:
        with _store(tmp_path) as store:
            version = store.log_artifact(path, "d", type="dataset", progress=writer.progress)
            stored = version.open("data.bin").read()
    finally:
        writer.close()
    assert writer.contents, "the rewrite happened during the read"
    assert stored == writer.contents[-1]  # what was on disk, never a mix


def test_a_file_that_keeps_changing_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(random_bytes(SIZE, seed=1))
    writer = _Writer(path, times=1000)
    try:
        with _store(tmp_path) as store:
            with pytest.raises(InvalidInputError) as caught:
                store.log_artifact(path, "d", type="dataset", progress=writer.progress)
            assert store.artifacts() == []
    finally:
        writer.close()
    assert str(caught.value) == (
        f"file {path} changed while it was read (3 tries); stop what writes it or retry")
    assert _leftovers(tmp_path) == []
    stored = sorted(str(p.relative_to(tmp_path / "store"))
                    for p in (tmp_path / "store").rglob("*") if p.is_file())
    # No pack, index or version record. The project itself was created by this first
    # write before its file was read (design §13.1): its record may stay, holding no data.
    assert set(stored) <= {"config", "projects/default/project"}


def test_a_small_file_rewritten_after_its_read_is_read_again(tmp_path: Path) -> None:
    # Up to 1 MiB a file is read with one call; the rewrite lands before the second look.
    path = tmp_path / "small.txt"
    path.write_bytes(b"a" * 1000)

    def rewrite(_: int) -> None:
        if path.read_bytes() == b"a" * 1000:
            path.write_bytes(b"b" * 1000)

    with _store(tmp_path) as store:
        version = store.log_artifact(path, "d", type="dataset", progress=rewrite)
        assert version.open("small.txt").read() == b"b" * 1000
