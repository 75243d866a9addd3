"""Issue 7: the request budget of logging unchanged content again on S3 (moto server).

A re-log that finds nothing new reads what a writer must see fresh (store config, key
epochs, members, deletions, the version listing) and nothing else: the head version's
record is read from the local copy the first log kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_calls import cli_json
from test_privacy_acceptance import person

import artifactstore
from artifactstore.maintenance.projects import create_project
from artifactstore.testing.servers import MotoS3Server


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(20):
        path = folder / f"f{i}.bin"
        path.write_bytes(os.urandom(5_000 + i))
        os.utime(path, (1.7e9, 1.7e9))  # not just written: the stat cache may trust it
    return folder


@pytest.mark.s3
@pytest.mark.parametrize(("visibility", "budget"), [("private", 5), ("public", 3)])
def test_an_unchanged_relog_reads_no_version_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: MotoS3Server,
        visibility: str, budget: int) -> None:
    url = f"s3://{s3_server.bucket}/budget-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    folder = _folder(tmp_path)
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True, **options).close()
        create_project("lab", url, visibility=visibility, **options)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c",
                                **options) as store:
            first = store.log_artifact(folder, "data")
        s3_server.reset_count()
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c",
                                **options) as store:
            again = store.log_artifact(folder, "data")
        assert again.ref == first.ref == "data:v0"
        assert s3_server.request_count <= budget, s3_server.requests

        # Another client (no local copies) reads the record and finds it the same.
        s3_server.reset_count()
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c2",
                                **options) as store:
            assert store.log_artifact(folder, "data").ref == "data:v0"
        assert s3_server.request_count > budget


@pytest.mark.s3
def test_the_aliases_of_a_version_cost_three_listings(
        tmp_path: Path, s3_server: MotoS3Server) -> None:
    url = f"s3://{s3_server.bucket}/aliases-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    folder = _folder(tmp_path)
    with artifactstore.open(url, create=True, cache_dir=tmp_path / "c", **options) as store:
        first = store.log_artifact(folder, "data")
        s3_server.reset_count()
        assert first.aliases == ["latest"]
        assert s3_server.request_count <= 3, s3_server.requests  # aliases, versions, deletions
        (folder / "new.bin").write_bytes(b"more")
        second = store.log_artifact(folder, "data", aliases=["candidate"])
        s3_server.reset_count()
        assert first.aliases == []
        assert second.aliases == ["latest", "candidate"]
        assert s3_server.request_count <= 6, s3_server.requests


@pytest.mark.s3
def test_the_cli_costs_what_the_api_costs_for_log_and_get(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        s3_server: MotoS3Server) -> None:
    """Issue 20: the CLI's ``log`` and ``get`` make exactly the requests of the API calls
    they stand for (the aliases a log reports are known without listing them; a ``get``
    meets the tombstones through the listing that resolved its ref)."""
    base = f"s3://{s3_server.bucket}/cli-api-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    for name, value in (("AWS_ENDPOINT_URL", s3_server.endpoint_url),
                        ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    folder = _folder(tmp_path)
    with person(monkeypatch, tmp_path, "alice"):
        counts: dict[str, int] = {}
        for how in ("api", "cli"):  # the same work in two stores made alike, fresh caches
            url = f"{base}-{how}"
            with artifactstore.open(url, create=True, cache_dir=tmp_path / f"warm-{how}",
                                    **options) as store:
                store.log_artifact(folder, "warm")
            monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / f"cache-{how}"))
            (folder / "new.bin").write_bytes(os.urandom(3000))  # one new file each time
            s3_server.reset_count()
            if how == "api":
                with artifactstore.open(url, **options) as store:
                    store.log_artifact(folder, "a", type="dataset", aliases=["candidate"])
            else:
                code, out = cli_json(capsys, "log", "b", str(folder), "--alias", "candidate",
                                     "--store", url)
                assert code == 0, out
                assert out["aliases"] == ["latest", "candidate"]
            counts[f"{how} log"] = s3_server.request_count
            s3_server.reset_count()
            if how == "api":
                with artifactstore.open(url, **options) as store:
                    store.artifact("a:candidate").download(tmp_path / "api-get")
            else:
                code, out = cli_json(capsys, "get", "b:candidate", "--dir",
                                     str(tmp_path / "cli-get"), "--store", url)
                assert code == 0, out
                assert out["ref"] == "b:v0"
            counts[f"{how} get"] = s3_server.request_count
    assert counts["cli log"] == counts["api log"], counts
    assert counts["cli get"] == counts["api get"], counts


@pytest.mark.s3
def test_the_first_log_into_a_new_project_reads_config_and_record_as_few_times_as_it_can(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: MotoS3Server) -> None:
    """Opening saw the project absent; creating it on the first write reads the store's
    config and lists the project's keys no more (that listing judged who may claim it a
    moment ago) and reads the project record once more, just before creating it, and
    replays its members from that listing too: the images push of the side-by-side suite
    stays within 40 requests with the journal entry and its head."""
    url = f"s3://{s3_server.bucket}/budget-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    folder = _folder(tmp_path)
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True, **options).close()
        s3_server.reset_count()
        with artifactstore.open(url, project="fresh", cache_dir=tmp_path / "c",
                                **options) as store:
            assert store.log_artifact(folder, "data").ref == "data:v0"
        requests = s3_server.requests
    prefix = url.removeprefix("s3://")
    config = [r for r in requests if r.startswith(f"GET /{prefix}/config")]
    record = [r for r in requests if r.startswith(f"GET /{prefix}/projects/fresh/project")]
    assert len(config) == 1, requests
    assert len(record) == 3, requests  # open: read, list, read; create: read, write
    under = prefix.split("/", 1)[1]
    whole = [r for r in requests if f"prefix={under}%2Fprojects%2Ffresh%2F&" in r]
    assert len(whole) == 1, requests  # the project's keys, listed once
    # members/ and keys/ were empty in that listing; our record won: not listed again
    again = [r for r in requests if f"prefix={under}%2Fprojects%2Ffresh%2Fmembers" in r
             or f"prefix={under}%2Fprojects%2Ffresh%2Fkeys" in r]
    assert again == [], requests


@pytest.mark.s3
def test_a_restore_reads_each_pack_about_once_after_a_log_of_many_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: MotoS3Server) -> None:
    """A streamed log writes each folder's tree node when the walk leaves the folder,
    between the folders' file data. Nodes sharing packs with that data would cost a
    restore one more range read per data pack (130 GETs instead of 31 for the suite's
    20,000 images, session 11): structured blobs are packed apart and land together
    in the last pack, so a restore GETs each pack once, plus the reads of the manifest
    root and of the nodes (33 GETs of 17 packs before, 18 after)."""
    from artifactstore.backends import open_backend
    from artifactstore.objects import config as config_mod
    from artifactstore.objects.config import StoreConfig

    url = f"s3://{s3_server.bucket}/nodes-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    backend = open_backend(url, **options)
    try:  # small packs: the data spans many, as a big version's does with real ones
        config_mod.create_or_load(backend, StoreConfig.new(pack_target=64 << 10))
    finally:
        backend.close()
    folder = tmp_path / "data"
    for d in range(16):
        sub = folder / f"d{d:02d}"
        sub.mkdir(parents=True)
        for i in range(8):
            (sub / f"f{i}.bin").write_bytes(os.urandom(9_000 + i))
    with person(monkeypatch, tmp_path, "alice"):
        with artifactstore.open(url, create=True, cache_dir=tmp_path / "w", **options) as store:
            store.log_artifact(folder, "data")
        backend = open_backend(url, **options)
        try:
            packs = [k for k in backend.list("objects/") if "/packs/" in k]
        finally:
            backend.close()
        assert len(packs) >= 10  # the data spans many packs
        s3_server.reset_count()
        with artifactstore.open(url, cache_dir=tmp_path / "r", **options) as store:
            store.artifact("data:v0").download(tmp_path / "out")
        pack_gets = [r for r in s3_server.requests if r.startswith("GET") and "/packs/" in r]
    assert (tmp_path / "out" / "d15" / "f7.bin").stat().st_size == 9_007
    assert len(pack_gets) <= len(packs) + 2, pack_gets
