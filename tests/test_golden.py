"""A store written by format 1 (tests/data/golden-v1/, frozen) must keep reading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from artifactstore.backends import open_backend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.core.digest import Digest
from artifactstore.core.synthetic import csv_rows, random_bytes
from artifactstore.maintenance.verify import verify_objects
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.golden import blob_envelopes, read_file_refs

DATA = Path(__file__).parent / "data"
EXPECTED = {
    "empty": b"",
    "tiny.txt": b"hello artifactstore\n",
    "noise.bin": random_bytes(40_000, seed=1),
    "table.csv": csv_rows(30_000, seed=2),
}


def _refs() -> dict[str, FileRef]:
    return read_file_refs(DATA / "golden-v1.json")


@pytest.fixture
def golden(tmp_path: Path) -> ObjectStore:
    # Read-only: a test must never rewrite the frozen store.
    backend = ReadOnlyBackend(open_backend(str(DATA / "golden-v1")))
    return ObjectStore.open(backend, cache_dir=tmp_path / "cache")


def test_golden_files_read_back(golden: ObjectStore) -> None:
    refs = _refs()
    assert set(refs) == set(EXPECTED)
    with golden:
        for name, data in EXPECTED.items():
            assert golden.read_file(refs[name]) == data, name
        tree = json.loads((DATA / "golden-v1.json").read_text())["tree"]
        assert golden.read_blob(Digest.from_hex(tree)) == b"a tree node"


def test_golden_store_verifies(golden: ObjectStore) -> None:
    report = verify_objects(golden)
    golden.close()
    assert report.ok
    assert report.packs_checked == 3
    assert report.unindexed_packs == []


def test_golden_config(golden: ObjectStore) -> None:
    assert golden.config.format == 1
    assert golden.config.chunker.avg_size == 4096
    assert golden.config.pack_target == 16384
    golden.close()


def test_current_writer_reproduces_the_golden_blobs(tmp_path: Path) -> None:
    # Same config and input give byte-identical blob envelopes: the writer did not
    # drift. Where a pack is cut is the writer's choice (design §5; since 2026-11-27
    # on plaintext bytes, sealed in the I/O pool), so packs are compared blob by blob.
    shutil.copy(DATA / "golden-v1" / "config", tmp_path / "config")
    store = ObjectStore.open(open_backend(str(tmp_path)), cache_dir=tmp_path / "c")
    with store:
        for data in EXPECTED.values():
            store.write_bytes(data)
        store.put_blob(Kind.TREE, b"a tree node")
    ours, theirs = blob_envelopes(tmp_path), blob_envelopes(DATA / "golden-v1")
    assert len(theirs) == 16
    assert ours == theirs

