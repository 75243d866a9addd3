"""Publishing one version of a private project into a public one (issue 15, point 7).

The private store holds a run that used ``raw:v0`` to make ``model:v0``, a later
``model:v1`` and an unrelated artifact, each with random marker bytes. Publishing
``model:v0`` with its lineage must give a public copy that an anonymous reader
reads over http (``python -m http.server`` on 127.0.0.1) with the run's config,
metrics and inputs, while a scan of every object of the target finds neither the
other versions' markers nor the other artifact's name.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from artifactstore.local.identity import load_or_create_identity
from artifactstore.maintenance.projects import create_project, show_project
from cli_calls import cli, cli_json

import artifactstore
from artifactstore.cli import main
from artifactstore.testing.webserver import stdlib_http_server

SECRET_NAME = "confidential-cohort-2026"  # an artifact name that must not be published
CONFIG = {"lr": 0.01, "epochs": 3}


@pytest.fixture
def private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes | str]:
    """Private project ``lab``: raw:v0 -> run "train" -> model:v0; model:v1; SECRET_NAME:v0."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "me"))
    load_or_create_identity()
    url = str(tmp_path / "private")
    assert main(["init", url]) == 0
    create_project("lab", url, visibility="private")
    markers = {name: os.urandom(64 << 10) for name in ("raw", "model0", "model1", "secret")}
    for name, data in markers.items():
        (tmp_path / f"{name}.bin").write_bytes(data)
    with artifactstore.open(url, "lab") as lab:
        lab.log_artifact(tmp_path / "raw.bin", name="raw", type="dataset",
                         metadata={"rows": 3})
        lab.log_artifact(tmp_path / "secret.bin", name=SECRET_NAME, type="dataset")
        with lab.run(name="train-1", job_type="train", config=CONFIG,
                     capture_code=False) as run:
            run.use("raw:v0")
            run.log({"accuracy": 0.93})
            run.log_artifact(tmp_path / "model0.bin", name="model", type="model")
        lab.log_artifact(tmp_path / "model1.bin", name="model", type="model")
    return {"url": url, **markers}


@pytest.fixture
def public_url(tmp_path: Path) -> str:
    url = str(tmp_path / "public")
    assert main(["init", url, "--public"]) == 0
    return url


def served(folder: str, log_path: Path) -> contextlib.AbstractContextManager[str]:
    """``folder`` served read-only by the standard library's web server on 127.0.0.1."""
    return stdlib_http_server(Path(folder), log_path)


def every_object(root: str) -> bytes:
    """The bytes of every file of a store, concatenated (names included)."""
    out = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            out += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return b"\n".join(out)


def holds(blob: bytes, marker: bytes | str) -> bool:
    assert isinstance(marker, bytes)
    return any(marker[i:i + 48] in blob for i in range(0, len(marker) - 48, 4096))


def test_publish_one_version_with_lineage_reads_anonymously_and_nothing_else(
        private_store: dict[str, bytes | str], public_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    src = str(private_store["url"])
    code, report = cli_json(capsys, "publish", "model:v0", "--store", src, "--project", "lab",
                            "--to", public_url, "--to-project", "release", "--with-lineage")
    assert code == 0, report
    assert (report["ref"], report["project"], report["created_project"]) == \
        ("model:v0", "release", True)
    assert report["source"] == "lab/model:v0"
    assert show_project("release", public_url).visibility == "public"

    # Nothing else of the private project reached the target, in any object or name.
    blob = every_object(public_url)
    assert holds(blob, private_store["model0"])  # the scan finds what is there
    for other in ("model1", "secret", "raw"):
        assert not holds(blob, private_store[other]), other
    assert SECRET_NAME.encode() not in blob

    # An anonymous reader (no identity) reads the copy and its lineage over http.
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "anonymous"))
    with served(public_url, tmp_path / "http.log") as url, \
            artifactstore.open(url, "release", cache_dir=tmp_path / "anon-cache") as public:
        assert public.artifacts() == ["model"]
        copy = public.artifact("model:latest")
        assert copy.ref == "model:v0"
        [entry] = copy.files()
        with copy.open(entry.path) as f:
            assert f.read() == private_store["model0"]
        [run] = public.runs()
        assert run.run_id == report["run_id"]
        assert (run.name, run.job_type, run.status, run.config) == \
            ("train-1", "train", "finished", CONFIG)
        assert run.summary["accuracy"] == 0.93
        assert "published_from=lab/model:v0" in run.tags
        assert f"imported_from={report['original_run_id']}" in run.tags
        assert run.inputs == ("raw:v0",)
        graph = public.upstream("model:v0")
        assert graph.nodes["raw:v0"]["missing"] is True  # named, its data not published
    # Read without an identity: none was made to read it.
    assert not any(p.name.startswith("identity") for p in (tmp_path / "anonymous").rglob("*"))


def test_publish_without_lineage_writes_no_run(
        private_store: dict[str, bytes | str], public_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    with artifactstore.open(str(private_store["url"]), "lab") as lab:
        report = lab.publish("model:v1", to=public_url)
    assert (report.ref, report.project, report.run_id) == ("model:v0", "lab", None)
    with artifactstore.open(public_url, "lab") as public:
        assert public.runs() == []
        assert public.artifacts() == ["model"]
    blob = every_object(public_url)
    assert holds(blob, private_store["model1"])
    assert not holds(blob, private_store["model0"])
    assert not holds(blob, private_store["raw"])


def test_publish_with_ancestors_publishes_what_it_was_made_from(
        private_store: dict[str, bytes | str], public_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """model:v0 was made from raw:v0: both are published, raw first, and the published
    run's input links to the published raw by content digest; nothing else goes."""
    code, out = cli_json(capsys, "publish", "model:v0", "--store", str(private_store["url"]),
                         "--project", "lab", "--to", public_url, "--with-ancestors")
    assert code == 0, out
    assert out["run_id"] is not None  # --with-ancestors implies --with-lineage
    assert [(i["ref"], i["linked"]) for i in out["inputs"]] == [("raw:v0", "raw:v0")]
    with artifactstore.open(public_url, "lab") as public:
        assert public.artifacts() == ["model", "raw"]
        assert public.artifact("raw:v0").metadata == {"rows": 3}  # its metadata travels
        assert public.upstream("model:v0").has_node("raw:v0")  # the lineage holds
    blob = every_object(public_url)
    assert holds(blob, private_store["model0"])
    assert holds(blob, private_store["raw"])
    assert not holds(blob, private_store["model1"])
    assert not holds(blob, private_store["secret"])
    assert SECRET_NAME.encode() not in blob


def test_publish_refuses_a_private_target_and_a_missing_store(
        private_store: dict[str, bytes | str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    src = str(private_store["url"])
    code, _, err = cli(capsys, "publish", "model:v0", "--store", src, "--project", "lab",
                       "--to", str(tmp_path / "typo"))
    assert code == 13, err  # StoreNotFoundError: publishing creates no store
    assert err.count("\n") == 1
    assert not (tmp_path / "typo").exists()
    create_project("closed", src, visibility="private")
    code, out = cli_json(capsys, "publish", "model:v0", "--store", src, "--project", "lab",
                         "--to", src, "--to-project", "closed")
    assert code == 2, out
    assert "not public" in out["message"], out
    with artifactstore.open(src, "closed", create=False) as closed:
        assert closed.artifacts() == []  # refused before anything was written
    code, out = cli_json(capsys, "publish", "model:v0", "--store", src, "--project", "lab",
                         "--to", src)
    assert code == 2, out
    assert "already in project lab" in out["message"]
