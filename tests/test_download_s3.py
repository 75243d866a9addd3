"""A whole version of many folders restored from S3 (moto server), its small files
created by the download's writer thread (repository/filewriter.py) from streamed pack
reads: every file whole, and a damaged pack mid-restore publishes nothing and leaves no
file that is not whole (docs/design.md §8, "Restore")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_privacy_acceptance import person

import artifactstore
from artifactstore.core.errors import IntegrityError
from artifactstore.core.synthetic import random_bytes
from artifactstore.repository.download import TEMP_MARK
from artifactstore.testing.servers import MotoS3Server

FOLDERS = 12
FILES = 40


def _tree(root: Path) -> dict[str, bytes]:
    files = {f"d{d:02d}/f{i:02d}.bin": random_bytes(2_000 + 97 * i + d, seed=100 * d + i)
             for d in range(FOLDERS) for i in range(FILES)}
    files["top.txt"] = b"top\n"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def _logged(tmp_path: Path, s3_server: MotoS3Server) -> tuple[str, dict[str, bytes]]:
    url = f"s3://{s3_server.bucket}/restore-{os.urandom(4).hex()}"
    files = _tree(tmp_path / "data")
    with artifactstore.open(url, create=True, cache_dir=tmp_path / "w",
                            **s3_server.backend_options()) as store:
        store.log_artifact(tmp_path / "data", "data")
    return url, files


def _on_disk(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.s3
def test_a_restore_of_many_folders_writes_every_file_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: MotoS3Server) -> None:
    with person(monkeypatch, tmp_path, "alice"):
        url, files = _logged(tmp_path, s3_server)
        with artifactstore.open(url, cache_dir=tmp_path / "r",
                                **s3_server.backend_options()) as store:
            store.artifact("data:v0").download(tmp_path / "out")
    assert _on_disk(tmp_path / "out") == files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_MARK)]


@pytest.mark.s3
def test_a_damaged_pack_mid_restore_publishes_nothing_and_no_half_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: MotoS3Server) -> None:
    from artifactstore.backends import open_backend

    with person(monkeypatch, tmp_path, "alice"):
        url, files = _logged(tmp_path, s3_server)
        backend = open_backend(url, **s3_server.backend_options())
        try:  # one byte of file data near the end of the biggest pack
            packs = {k: backend.stat(k).size for k in backend.list("objects/")
                     if "/packs/" in k}
            key = max(packs, key=packs.__getitem__)
            data = bytearray(backend.get(key))
            data[len(data) * 3 // 4] ^= 1
            backend.put(key, bytes(data))
        finally:
            backend.close()
        with artifactstore.open(url, cache_dir=tmp_path / "r",
                                **s3_server.backend_options()) as store, \
                pytest.raises(IntegrityError):
            store.artifact("data:v0").download(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # What the failed restore left (its staging folder, for a later try to take
    # over) holds whole files only: each was checked before it was created.
    (stage,) = [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_MARK)]
    left = _on_disk(stage)
    assert len(left) < len(files)
    assert all(files[name] == data for name, data in left.items())
