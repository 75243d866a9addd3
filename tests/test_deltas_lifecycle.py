"""Delta chunks through every layer (design §4, §15, §16, §17): logged versions, gc,
purge of a base, sync, re-logging into an encrypted project, re-encryption, a private
store and S3."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_deltas import BIG, edited
from test_privacy_acceptance import person

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.core.synthetic import csv_rows
from artifactstore.maintenance.projects import create_project, rekey_project
from artifactstore.maintenance.verify import verify_objects
from artifactstore.model.tree import FileEntry
from artifactstore.objects import config as config_mod
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind
from artifactstore.objects.layout import pack_prefix
from artifactstore.objects.packs import read_trailer
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.stores import QUICK_WINDOW
from artifactstore.transfer.relog import relog
from artifactstore.transfer.sync import sync


def init_delta_store(url: str, **backend_options: object) -> None:
    """A store with deltas and the unit tests' small big-chunk profile (files of 64 KiB
    and more are big), and a short commit window, so gc and purge sweep in a test."""
    backend = open_backend(url, **backend_options)
    try:
        config_mod.create_or_load(backend, StoreConfig.new(commit_window=QUICK_WINDOW,
                                                           big_chunks=BIG))
    finally:
        backend.close()


def log_two(store: artifactstore.Store, tmp_path: Path, name: str = "t") -> tuple[bytes, bytes]:
    """v0 of a table, then v1 with every 50th row edited; returns both files' bytes."""
    folder = tmp_path / f"data-{name}"
    folder.mkdir(exist_ok=True)
    first = csv_rows(400_000, seed=21)
    (folder / "t.csv").write_bytes(first)
    store.log_artifact(folder, name=name)
    second = edited(first)
    (folder / "t.csv").write_bytes(second)
    store.log_artifact(folder, name=name)
    return first, second


def deltas_of(store: artifactstore.Store, ref: str) -> int:
    """How many of the version's chunks the index reads as delta copies."""
    version = store.artifact(ref)
    objects = store.objects
    count = 0
    for entry in version.files():
        assert isinstance(entry, FileEntry)
        for chunk in entry.chunks:
            location = objects.index.lookup(chunk.id)
            count += location is not None and location.kind is Kind.CHUNK_DELTA
    return count


def chunk_ids(store: artifactstore.Store, ref: str) -> set[bytes]:
    return {c.id.raw for e in store.artifact(ref).files() if isinstance(e, FileEntry)
            for c in e.chunks}


def read(store: artifactstore.Store, ref: str) -> bytes:
    return store.artifact(ref).open("t.csv").read()


def pack_blob_ids(objects: ObjectStore) -> set[bytes]:
    """Every blob id any pack of the domain holds, read from the packs' own trailers."""
    backend = objects.backend
    found = set()
    for key in backend.list(pack_prefix(objects.domain)):
        found |= {e.id.raw for e in read_trailer(backend.get(key), what=key, keys=objects.keys)}
    return found


def test_gc_keeps_the_bases_of_live_deltas(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_delta_store(url)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        _first, second = log_two(store, tmp_path)
        assert deltas_of(store, "t:v1") > 0
        bases = chunk_ids(store, "t:v0")
        store.delete("t:v0", force=True)
        report = store.gc(grace=0, repack_threshold=0.0)
        # v0's manifest and tree went; its chunks are the bases of v1's deltas: live
        assert report.domains["plain"].condemned_blobs == 2
        assert report.domains["plain"].swept.blobs_deleted == 2
        assert read(store, "t:v1") == second
        assert bases & pack_blob_ids(store.objects)  # the bases v1's deltas need stayed
        assert verify_objects(store.objects).ok


def test_purge_of_a_base_rewrites_its_deltas_and_wipes_every_byte(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_delta_store(url)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        _first, second = log_two(store, tmp_path)
        assert deltas_of(store, "t:v1") > 0
        purged = chunk_ids(store, "t:v0") - chunk_ids(store, "t:v1")
        assert purged
        report = store.purge("t:v0", reason="test", wait=False)
        assert report.absent
        assert not purged & pack_blob_ids(store.objects)  # no purged chunk in any pack
        assert read(store, "t:v1") == second
        assert deltas_of(store, "t:v1") == 0  # the deltas became full chunks
        assert verify_objects(store.objects).ok
    # A client whose cache still knew the deltas reads the full copies too.
    with artifactstore.open(url, cache_dir=tmp_path / "c2") as store:
        assert read(store, "t:v1") == second


def test_sync_carries_deltas_with_their_bases(tmp_path: Path) -> None:
    src_url, dst_url, one_url = (str(tmp_path / n) for n in ("src", "dst", "one"))
    init_delta_store(src_url)
    with artifactstore.open(src_url, cache_dir=tmp_path / "c") as store:
        _, second = log_two(store, tmp_path)
        wanted = deltas_of(store, "t:v1")
    assert sync(src_url, dst_url, cache_dir=tmp_path / "cs").ok
    # One public project's versions: the packs of the deltas' bases travel too.
    report = sync(src_url, one_url, project="default", cache_dir=tmp_path / "cs1")
    assert report.ok
    assert not report.incomplete
    for url in (dst_url, one_url):
        with artifactstore.open(url, create=False, cache_dir=tmp_path / f"c-{len(url)}") as dst:
            assert deltas_of(dst, "t:v1") == wanted
            assert read(dst, "t:v1") == second
            assert verify_objects(dst.objects).ok


def test_private_project_relog_and_reencryption(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    init_delta_store(src_url)
    init_delta_store(dst_url)
    with person(monkeypatch, tmp_path, "alice"):
        create_project("lab", src_url)
        with artifactstore.open(src_url, "lab", cache_dir=tmp_path / "c1") as src:
            assert src.refs.codec.encrypted
            first, second = log_two(src, tmp_path)
            assert deltas_of(src, "t:v1") > 0  # deltas in an encrypted domain
            assert read(src, "t:v1") == second
            assert verify_objects(src.objects).ok
        # re-logging into another store's encrypted project: re-encoded on the way
        create_project("vault", dst_url)
        report = relog(src_url, dst_url, "lab", "vault", cache_dir=tmp_path / "c2")
        assert not report.conflicts
        assert len(report.logged) == 2
        with artifactstore.open(dst_url, "vault", cache_dir=tmp_path / "c3") as dst:
            assert dst.refs.codec.encrypted
            assert (read(dst, "t:v0"), read(dst, "t:v1")) == (first, second)
            assert verify_objects(dst.objects).ok
        # re-encryption moves every version to a new key epoch (deltas expanded)
        _, reencrypted = rekey_project("lab", src_url, reencrypt=True)
        assert reencrypted is not None
        assert reencrypted.versions_rewritten == 2
        with artifactstore.open(src_url, "lab", cache_dir=tmp_path / "c1") as src:
            assert (read(src, "t:v0"), read(src, "t:v1")) == (first, second)
            assert verify_objects(src.objects).ok


@pytest.mark.s3
def test_s3_round_trip(local_or_s3_url: str, tmp_path: Path) -> None:
    init_delta_store(local_or_s3_url)
    with artifactstore.open(local_or_s3_url, cache_dir=tmp_path / "c") as store:
        first, second = log_two(store, tmp_path)
        assert deltas_of(store, "t:v1") > 0
    with artifactstore.open(local_or_s3_url, cache_dir=tmp_path / "cold") as store:
        assert (read(store, "t:v0"), read(store, "t:v1")) == (first, second)
        out = store.artifact("t:v1").download(tmp_path / "out")
        assert (out / "t.csv").read_bytes() == second
        assert verify_objects(store.objects).ok


def test_export_and_import_of_a_version_with_deltas(tmp_path: Path) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    init_delta_store(src_url)
    init_delta_store(dst_url)
    with artifactstore.open(src_url, cache_dir=tmp_path / "c1") as src:
        _, second = log_two(src, tmp_path)
        assert deltas_of(src, "t:v1") > 0
        src.export("t:v1", tmp_path / "out.tar")
    with artifactstore.open(dst_url, cache_dir=tmp_path / "c2") as dst:
        dst.import_export(tmp_path / "out.tar")
        assert read(dst, "t:v0") == second  # the export's version, stored anew (full)
        assert verify_objects(dst.objects).ok


def test_a_purge_synced_to_a_copy_wipes_the_bases_there_too(tmp_path: Path) -> None:
    src_url, dst_url = str(tmp_path / "src"), str(tmp_path / "dst")
    init_delta_store(src_url)
    with artifactstore.open(src_url, cache_dir=tmp_path / "c1") as src:
        _, second = log_two(src, tmp_path)
        purged = chunk_ids(src, "t:v0") - chunk_ids(src, "t:v1")
    assert sync(src_url, dst_url, cache_dir=tmp_path / "cs").ok
    with artifactstore.open(src_url, cache_dir=tmp_path / "c1") as src:
        src.purge("t:v0", reason="test", wait=False)
    report = sync(src_url, dst_url, cache_dir=tmp_path / "cs")
    assert report.ok
    assert not report.not_wiped
    with artifactstore.open(dst_url, create=False, cache_dir=tmp_path / "c2") as dst:
        assert not purged & pack_blob_ids(dst.objects)
        assert read(dst, "t:v1") == second
        assert deltas_of(dst, "t:v1") == 0
        assert verify_objects(dst.objects).ok
