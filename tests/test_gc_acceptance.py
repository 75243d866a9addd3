"""Issue 6 acceptance: gc under load, gc killed at random points, purge with proof."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.maintenance.verify import verify_objects
from artifactstore.model.names import parse_ref, parse_version_label
from artifactstore.testing.gcload import load_worker, pool_blocks
from artifactstore.testing.processes import run_workers
from artifactstore.testing.servers import MotoS3Server
from artifactstore.testing.stores import init_quick_store

LOAD_SECONDS = 30.0
#: the load goes on past LOAD_SECONDS until gc has run often enough, at most this long
LOAD_CAP = 300.0


def _gc_under_load(url: str, options: dict[str, Any], tmp_path: Path, gc_runs: int) -> None:
    init_quick_store(url, **options)
    seed = 7
    with artifactstore.open(url, cache_dir=tmp_path / "seed", **options) as store:
        folder = tmp_path / "pool"
        folder.mkdir()
        for i, block in enumerate(pool_blocks(seed)):
            (folder / f"block-{i}.bin").write_bytes(block)
        store.log_artifact(folder, name="pool", type="dataset")
        store.log_artifact(folder / "block-0.bin", name="pool", type="dataset")  # v0 dies
    got = run_workers(load_worker,
                      (url, options, str(tmp_path), LOAD_SECONDS, seed, gc_runs, LOAD_CAP),
                      workers=5, timeout=LOAD_CAP + 120)
    gc_stats = got.pop(0)
    assert gc_stats["gc_runs"] >= gc_runs, gc_stats
    assert gc_stats["bytes_freed"] > 0, gc_stats
    assert gc_stats["versions_deleted"] > 0
    committed = [c for w in got.values() for c in w["committed"]]
    assert len(committed) >= 8, got
    with artifactstore.open(url, cache_dir=tmp_path / "check", **options) as store:
        state = store.refs.lifecycle_state()
        live = 0
        for ref, digest in committed:
            name, selector = parse_ref(ref)
            number = parse_version_label(selector)
            assert number is not None
            if state.tombstone(name, number) is not None:
                continue  # deleted by the collector: gone on purpose
            version = store.artifact(ref)
            assert version.verify() == 1
            first = version.files()[0]
            assert first.digest is not None
            assert first.digest.hex == digest
            live += 1
        assert live >= len(got)  # each writer's newest version at least
        for name in store.artifacts():
            for version in store.versions(name):
                version.verify()
        checked = verify_objects(store.objects)
        assert checked.ok, checked.damaged
        store.gc(grace=0)  # a final gc completes and breaks nothing
        for name in store.artifacts():
            store.artifact(name).verify()


@pytest.mark.slow
def test_gc_under_load_local(tmp_path: Path) -> None:
    _gc_under_load(str(tmp_path / "store"), {}, tmp_path, gc_runs=10)


@pytest.mark.slow
@pytest.mark.s3
def test_gc_under_load_s3(tmp_path: Path, s3_server: MotoS3Server) -> None:
    url = f"s3://{s3_server.bucket}/gc-load-{os.urandom(4).hex()}"
    _gc_under_load(url, s3_server.backend_options(), tmp_path, gc_runs=2)


_GC_SCRIPT = """
import sys, artifactstore
with artifactstore.open(sys.argv[1], cache_dir=sys.argv[2]) as store:
    store.gc(grace=0, repack_threshold=0.0)
"""


@pytest.mark.slow
def test_gc_killed_at_random_points_leaves_a_readable_store(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=0.5)
    rng = random.Random(11)
    killed = 0
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        kept: list[bytes] = []
        for trial in range(10):
            folder = tmp_path / f"v{trial}"
            folder.mkdir()
            keep = rng.randbytes(300_000)
            kept.append(keep)
            (folder / "keep.bin").write_bytes(keep)
            (folder / "drop.bin").write_bytes(rng.randbytes(300_000))
            store.log_artifact(folder, name=f"a{trial}", type="dataset")
            (folder / "drop.bin").unlink()
            store.log_artifact(folder, name=f"a{trial}", type="dataset")
            store.delete(f"a{trial}:v0")
            proc = subprocess.Popen([sys.executable, "-c", _GC_SCRIPT, url,
                                     str(tmp_path / "gc-cache")])
            time.sleep(rng.uniform(0.1, 2.0))  # start-up, condemn, wait, sweep: ~1-2 s
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait()
            for n in range(trial + 1):  # readable after every kill
                assert store.artifact(f"a{n}").open("keep.bin").read() == kept[n]
        assert killed >= 3  # trials really died mid-way
        store.gc(grace=0, repack_threshold=0.0)  # a later gc completes
        for n in range(10):
            store.artifact(f"a{n}").verify()
        assert verify_objects(store.objects).ok


def _scan(url: str, options: dict[str, Any], needle: bytes) -> list[str]:
    backend = open_backend(url, **options)
    try:
        return [key for key in backend.list("") if needle in backend.get(key)]
    finally:
        backend.close()


def _purge_with_lineage(url: str, options: dict[str, Any], tmp_path: Path) -> None:
    marker = b"PURGE-ME-marker-" * 5000
    cache = tmp_path / "cache"
    with artifactstore.open(url, cache_dir=cache, file_cache=True, **options) as store:
        data = tmp_path / "dataset"
        data.mkdir()
        (data / "shared.csv").write_bytes(b"id,value\n" + b"1,2\n" * 20000)
        (data / "secret.txt").write_bytes(marker)
        dataset = store.log_artifact(data, name="dataset", type="dataset")
        dataset.download(tmp_path / "downloaded")  # fills this machine's file cache
        assert store.file_cache is not None
        assert store.file_cache.info().entries == 2
        (data / "secret.txt").unlink()
        (data / "other.txt").write_bytes(os.urandom(10_000))
        store.log_artifact(data, name="dataset", type="dataset")  # v1 shares shared.csv
        for job in range(2):
            with store.run(job_type="train", capture_code=False) as run:
                run.use("dataset:v0")
                model = tmp_path / f"model-{job}.bin"
                model.write_bytes(os.urandom(20_000))
                run.log_artifact(model, name="model", type="model")
        assert _scan(url, options, b"PURGE-ME-marker-")
        report = store.purge("dataset:v0", reason="takedown request #42")
        assert report.absent
        assert report.blobs_wiped >= 2
        assert report.bytes_wiped > 0
        assert report.downstream_versions == ["model:v0", "model:v1"]
        assert len(report.downstream_runs) == 2
        assert store.artifact("dataset:v1").open("shared.csv").read().startswith(b"id,value")
    assert _scan(url, options, b"PURGE-ME-marker-") == []
    for path in cache.rglob("*"):
        if path.is_file():
            assert b"PURGE-ME-marker-" not in path.read_bytes(), path


def test_purge_wipes_the_bytes_locally_and_lists_downstream(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url)
    _purge_with_lineage(url, {}, tmp_path)


@pytest.mark.s3
def test_purge_wipes_the_bytes_on_s3(tmp_path: Path, s3_server: MotoS3Server) -> None:
    url = f"s3://{s3_server.bucket}/purge-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    init_quick_store(url, **options)
    _purge_with_lineage(url, options, tmp_path)


@pytest.mark.slow
def test_gc_and_purge_in_a_private_project_across_key_epochs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gc marks each key epoch's domain from the versions written under it."""
    from test_privacy_acceptance import identity_line, person

    from artifactstore.maintenance.projects import create_project, remove_member

    url = str(tmp_path / "store")
    init_quick_store(url)
    bob = identity_line(monkeypatch, tmp_path, "bob")
    with person(monkeypatch, tmp_path, "alice"):
        create_project("lab", url, members=[bob])
        old_data, new_data = os.urandom(200_000), os.urandom(200_000)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
            for data in (old_data, os.urandom(200_000)):
                f = tmp_path / "f.bin"
                f.write_bytes(data)
                store.log_artifact(f, name="m", type="model")
        remove_member("lab", bob, url)  # epoch 1: new data in a new domain
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c2") as store:
            f = tmp_path / "f.bin"
            f.write_bytes(new_data)
            store.log_artifact(f, name="m", type="model")
            f.write_bytes(os.urandom(100_000))
            store.log_artifact(f, name="m", type="model")
            store.delete("m:v1")
            report = store.gc(grace=0)
            assert len(report.domains) == 2  # both epochs' domains, none plain
            assert report.bytes_freed >= 200_000
            assert store.artifact("m:v0").open("f.bin").read() == old_data
            assert store.artifact("m:v2").open("f.bin").read() == new_data
            purged = store.purge("m:v3", reason="test")  # content is encrypted: the proof
            assert purged.absent                              # reads index and packs by id
            assert purged.blobs_wiped >= 1
            for name in store.artifacts():
                for version in store.versions(name):
                    version.verify()
