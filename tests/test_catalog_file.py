"""The catalog's SQLite file (local/catalog.py): another schema is dropped and rebuilt;
opening the current one and a warm sync that finds nothing new write nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from artifactstore.backends.memory import MemoryBackend
from artifactstore.core.digest import Digest
from artifactstore.local.catalog import SCHEMA, Catalog
from artifactstore.records.refs import NewVersion, Refs
from artifactstore.testing import BackendSpec


@pytest.fixture
def b(memory_spec: BackendSpec) -> MemoryBackend:
    """A store of the test's own with one version."""
    b = MemoryBackend(memory_spec.url.removeprefix("memory://"))
    d = Digest(bytes(32))
    Refs(b, "p").commit_version(NewVersion("m", type="model", manifest=d, digest=d,
                                           size=1, files=1))
    return b


def test_a_file_of_another_schema_is_dropped_and_rebuilt(tmp_path: Path, b: MemoryBackend) -> None:
    path = tmp_path / "c.sqlite"
    catalog = Catalog(b, "p", path, journal_head=True)
    catalog.sync()
    catalog.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET v='1' WHERE k='schema'")
    again = Catalog(b, "p", path, journal_head=True)
    assert again.artifact_numbers() == {}  # dropped: nothing read yet
    assert again.sync().full  # rebuilt by a first (full) sync
    assert again.artifact_numbers() == {"m": {0}}
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT v FROM meta WHERE k='schema'").fetchone() == (str(SCHEMA),)


def test_a_warm_sync_that_finds_the_same_head_writes_nothing(tmp_path: Path,
                                                            b: MemoryBackend) -> None:
    path = tmp_path / "c.sqlite"
    catalog = Catalog(b, "p", path, journal_head=True)
    catalog.sync()
    catalog.close()
    before = path.read_bytes()
    warm = Catalog(b, "p", path, journal_head=True)
    stats = warm.sync()
    assert (stats.full, stats.listed, stats.fetched) == (False, 0, 0)
    warm.close()
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()
    Refs(b, "p").commit_version(NewVersion("n", type="model", manifest=Digest(bytes(32)),
                                           digest=Digest(bytes(32)), size=1, files=1))
    changed = Catalog(b, "p", path, journal_head=True)
    assert changed.sync().fetched == 1
    changed.close()
    assert path.read_bytes() != before
