"""Issue 19.3: PyTorch datasets over a version's files, read through the store.

A private project on S3 (moto) holds a 2,000-file version; ``DataLoader``s with two
worker processes read it map-style and streaming. Each file arrives exactly once per
epoch with its exact bytes; nothing is downloaded up front (the file cache holds
exactly what was read so far); a worker's peak memory does not grow with the bytes it
has read.
"""

from __future__ import annotations

import hashlib
import os
import resource
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")

from test_privacy_acceptance import person  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import artifactstore  # noqa: E402
from artifactstore.core.errors import InvalidInputError  # noqa: E402
from artifactstore.integrations.datasets import (  # noqa: E402
    VersionDataset,
    VersionIterableDataset,
)
from artifactstore.testing.servers import MotoS3Server  # noqa: E402

FILES = 2000
FOLDERS = 20
SIZE = 48 * 1024  # 2,000 x 48 KiB: ~94 MiB in all


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """2,000 files of random bytes in 20 folders, and the sha256 of each by path."""
    root = tmp_path_factory.mktemp("corpus")
    sums: dict[str, str] = {}
    for i in range(FILES):
        path = f"part-{i % FOLDERS:02d}/sample-{i:05d}.bin"
        data = os.urandom(SIZE - (i % 97))
        (root / path).parent.mkdir(exist_ok=True)
        (root / path).write_bytes(data)
        sums[path] = hashlib.sha256(data).hexdigest()
    return root, sums


@pytest.fixture
def private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: MotoS3Server,
                  corpus: tuple[Path, dict[str, str]]) -> Iterator[artifactstore.Store]:
    url = f"s3://{s3_server.bucket}/datasets-{os.urandom(4).hex()}"
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache"))
    with person(monkeypatch, tmp_path, "trainer"):
        new_project_at(url, s3_server)
        with artifactstore.open(url, project="vision", **s3_server.backend_options()) as store:
            store.log_artifact(corpus[0], "images", type="dataset")
            yield store


def new_project_at(url: str, s3_server: MotoS3Server) -> None:
    from artifactstore.maintenance.projects import create_project

    artifactstore.open(url, create=True, **s3_server.backend_options()).close()
    create_project("vision", url, visibility="private", **s3_server.backend_options())


def _sample(path: str, data: bytes) -> tuple[str, str, int]:
    """What a worker hands back: the path, the bytes' sha256, and its peak RSS (KiB)."""
    return path, hashlib.sha256(data).hexdigest(), \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _items(loader: DataLoader[Any]) -> list[tuple[str, str, int]]:
    return [item for batch in loader for item in batch]


def _cached(cache: Path) -> list[Path]:
    """The file cache's entries (/<aa>/<64 hex>), not its version notes."""
    return [p for p in cache.rglob("*") if p.is_file() and p.parent.name == p.name[:2]]


@pytest.mark.s3
def test_a_map_style_dataset_reads_each_file_once_per_epoch_with_two_workers(
        private_store: artifactstore.Store, corpus: tuple[Path, dict[str, str]],
        tmp_path: Path) -> None:
    data = VersionDataset("images:latest", store=private_store, transform=_sample)
    assert (data.ref, len(data)) == ("images:v0", FILES)
    cache = tmp_path / "cache"
    assert _cached(cache) == []  # made without downloading anything

    # A few items first: the cache then holds exactly what was read, nothing more.
    for index in (5, 1999, 700):
        path, digest, _ = data[index]
        assert digest == corpus[1][path]
    assert len(_cached(cache)) == 3

    loader = DataLoader(data, batch_size=50, shuffle=True, num_workers=2,
                        collate_fn=list, generator=torch.Generator().manual_seed(7))
    for _epoch in range(2):
        items = _items(loader)
        seen = Counter(path for path, _, _ in items)
        assert len(seen) == FILES
        assert set(seen.values()) == {1}  # every file exactly once per epoch
        assert all(digest == corpus[1][path] for path, digest, _ in items)
    assert len(_cached(cache)) == FILES


@pytest.mark.s3
def test_a_streaming_dataset_splits_files_between_workers_and_reshuffles_per_epoch(
        private_store: artifactstore.Store, corpus: tuple[Path, dict[str, str]]) -> None:
    data = VersionIterableDataset("images", store=private_store, transform=_sample,
                                  shuffle=True, seed=3)
    loader = DataLoader(data, batch_size=40, num_workers=2, collate_fn=list)
    orders = []
    for epoch in range(2):
        data.set_epoch(epoch)
        items = _items(loader)
        assert Counter(path for path, _, _ in items) == Counter(list(corpus[1]))  # once each
        assert all(digest == corpus[1][path] for path, digest, _ in items)
        orders.append([path for path, _, _ in items])
        # A worker's peak memory after reading everything is what it was a tenth of the
        # way in, give or take: it holds one file at a time, not what it has read.
        rss = [kib for _, _, kib in items]
        early, late = max(rss[: FILES // 10]), max(rss)
        assert late - early < 24 * 1024, (early, late)  # KiB; the data is ~94 MiB
    assert orders[0] != orders[1]


@pytest.mark.s3
def test_a_dataset_keeps_a_folder_and_refuses_an_empty_selection(
        private_store: artifactstore.Store) -> None:
    data = VersionDataset("images:v0", store=private_store, prefix="part-03/")
    assert len(data) == FILES // FOLDERS
    path, raw = data[0]
    assert path.startswith("part-03/")
    assert len(raw) > 0
    with pytest.raises(InvalidInputError, match="no stored file"):
        VersionDataset("images:v0", store=private_store, prefix="nowhere/")
    with pytest.raises(IndexError):
        data[len(data)]
