"""Issue 20: this machine's metadata about stores (refs, index, catalog, stat) is
measured by ``cache info``, removed by ``cache clean --metadata`` (all, or that of stores
unused for a while), rebuilt from the store when needed; ``known`` (pins, high-water
marks) is never removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cli_calls import cli_json

import artifactstore
from artifactstore.local.metadata import METADATA_KINDS, clean_metadata, metadata_usage


def _store_with_history(tmp_path: Path, name: str) -> str:
    url = str(tmp_path / name)
    data = tmp_path / f"{name}-data"
    data.mkdir()
    with artifactstore.open(url, create=True) as store:
        for i in range(3):
            (data / f"f{i}.bin").write_bytes(os.urandom(5000))
            store.log_artifact(data, "data", aliases=[f"step{i}"])
        assert len(store.runs()) == 0  # the catalog is built
    return url


def test_cache_clean_metadata_removes_what_the_store_rebuilds_and_keeps_known(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(cache))
    url = _store_with_history(tmp_path, "store")
    code, info = cli_json(capsys, "cache", "info")
    assert code == 0
    metadata = info["metadata"]
    assert all(metadata[kind]["bytes"] > 0 for kind in ("refs", "catalog", "stat", "known"))
    known_before = metadata["known"]["bytes"]

    code, out = cli_json(capsys, "cache", "clean", "--metadata")
    assert code == 0
    removed = out["removed_metadata"]
    assert {k: removed[k]["bytes"] for k in METADATA_KINDS} == {
        k: metadata[k]["bytes"] for k in METADATA_KINDS}
    after = metadata_usage(cache)
    assert all(after.bytes[kind] == 0 for kind in METADATA_KINDS)
    assert after.bytes["known"] == known_before  # pins and marks stay

    # Everything still reads, and the metadata comes back as it is used.
    with artifactstore.open(url) as store:
        assert store.artifact("data:step0").ref == "data:v0"
        assert [v.version for v in store.versions("data")] == ["v0", "v1", "v2"]
        assert store.runs() == []
    assert metadata_usage(cache).bytes["catalog"] > 0


def test_only_the_metadata_of_stores_unused_for_a_while_goes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(cache))
    _store_with_history(tmp_path, "old")
    stores_of_old = {kind: {p.name for p in (cache / kind).iterdir()} for kind in ("refs",)}
    month_ago = time.time() - 40 * 86400
    for kind in METADATA_KINDS:
        for folder in (cache / kind).iterdir() if (cache / kind).exists() else ():
            for path in folder.rglob("*"):
                os.utime(path, (month_ago, month_ago))
    _store_with_history(tmp_path, "new")
    gone = clean_metadata(cache, unused_for=30 * 86400)
    assert gone.stores["refs"] == 1
    assert {p.name for p in (cache / "refs").iterdir()}.isdisjoint(stores_of_old["refs"])
    assert metadata_usage(cache).stores["refs"] == 1  # the new store's is kept
