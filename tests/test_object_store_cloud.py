"""The object store on real S3 (moto server) and GCS (fake-gcs-server) endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from artifactstore.core.digest import hash_bytes
from artifactstore.core.synthetic import random_bytes

from artifactstore.objects.config import StoreConfig
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.conformance import BackendSpec
from artifactstore.testing.servers import MotoS3Server


def _round_trip(spec: BackendSpec, cache: Path) -> None:
    files = [random_bytes(n, seed=n) for n in (0, 1, 5000, 300_000, 1_500_000)]
    with ObjectStore.open(spec.open(), create=StoreConfig.new(pack_target=256 << 10),
                          cache_dir=cache / "w") as store:
        refs = [store.write_bytes(f) for f in files]
    with ObjectStore.open(spec.open(), cache_dir=cache / "r") as store:
        for ref, data in zip(refs, files, strict=True):
            assert ref.digest == hash_bytes(data)
            assert store.read_file(ref) == data


@pytest.mark.s3
def test_round_trip_on_s3(s3_spec: BackendSpec, tmp_path: Path) -> None:
    _round_trip(s3_spec, tmp_path)


@pytest.mark.gcs
def test_round_trip_on_gcs(gcs_spec: BackendSpec, tmp_path: Path) -> None:
    _round_trip(gcs_spec, tmp_path)


def _write_small_files(spec: BackendSpec, cache: Path, files: list[bytes]) -> ObjectStore:
    store = ObjectStore.open(spec.open(), create=StoreConfig.new(), cache_dir=cache)
    for data in files:
        store.write_bytes(data)
    store.close()
    return store


@pytest.mark.s3
@pytest.mark.slow
def test_20000_small_files_cost_at_most_40_requests(
    s3_server: MotoS3Server, s3_spec: BackendSpec, tmp_path: Path
) -> None:
    sizes = [8192 + int.from_bytes(random_bytes(4, 77, 4 * i), "little") % (24 * 1024 + 1)
             for i in range(20_000)]
    files = [random_bytes(size, seed=100_000 + i) for i, size in enumerate(sizes)]
    s3_server.reset_count()
    first = _write_small_files(s3_spec, tmp_path / "cache", files)
    first_requests = s3_server.request_count
    print(f"\n20,000 files, {sum(sizes) / 2**20:.0f} MiB: {first_requests} requests, "
          f"{first.stats.packs_written} packs")
    assert first.stats.blobs_new >= 20_000  # files over 16 KiB may be two chunks
    assert first_requests <= 40

    s3_server.reset_count()
    again = _write_small_files(s3_spec, tmp_path / "cache", files)
    print(f"same files again: {s3_server.request_count} requests")
    assert again.stats.blobs_new == 0
    assert s3_server.request_count <= 5

    # A client without the local index cache pays only for listing and fetching the index.
    s3_server.reset_count()
    fresh = _write_small_files(s3_spec, tmp_path / "fresh-cache", files)
    assert fresh.stats.blobs_new == 0
    assert s3_server.request_count <= 5
