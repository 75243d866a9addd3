"""import-from hf (issue 19.4): a hub cache written by the real huggingface_hub
(``snapshot_download`` in a subprocess, against a stand-in of the hub's routes on
127.0.0.1: tests/hub_server.py), each snapshot imported as a version byte-exact, its
blobs checked against their SHA-256 or git SHA-1, refs as aliases."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_calls import cli
from hub_server import Hub, git_sha1, serving

import artifactstore
from artifactstore import Store
from artifactstore.cli import main
from artifactstore.core.errors import IntegrityError

pytest.importorskip("huggingface_hub", reason="the cache is written by huggingface_hub")

DOWNLOAD = """
import sys
from huggingface_hub import snapshot_download
for rev in sys.argv[2:]:
    snapshot_download("org/tiny", revision=rev, cache_dir=sys.argv[1])
"""
V1 = {"config.json": b'{"hidden": 8}\n', "model.safetensors": bytes(range(256)) * 9,
      "tokenizer/vocab.txt": b"a\nb\nc\n"}
V2 = {**V1, "config.json": b'{"hidden": 16}\n', "model.safetensors": bytes(range(255)) * 11}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """org/tiny downloaded at tag v1.0 then at main (a later commit) into a cache."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    hub = Hub()
    hub.commit("org/tiny", V1, "v1.0")
    hub.commit("org/tiny", V2, "main")
    with serving(hub) as url:
        env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1",
               "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "HF_HOME": str(cache.parent / "home")}
        subprocess.run([sys.executable, "-c", DOWNLOAD, str(cache), "v1.0", "main"], env=env,
                       check=True, capture_output=True, timeout=120)
    return cache


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    assert main(["init", str(tmp_path / "store"), "--public", "-q"]) == 0
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache") as s:
        yield s


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_snapshots_round_trip_with_digests_and_refs(hub_cache: Path, store: Store,
                                                    tmp_path: Path) -> None:
    repo = hub_cache / "models--org--tiny"
    assert (repo / "blobs").is_dir()
    assert (repo / "refs" / "main").is_file()
    report = store.import_from("hf", hub_cache)
    assert [v["created"] for v in report.versions] == [True, True]
    for ref, files in (("org--tiny:v0", V1), ("org--tiny:v1", V2)):
        version = store.artifact(ref)
        version.download(tmp_path / ref)
        assert _files(tmp_path / ref) == files
        source = version.metadata["_source"]
        assert source["repo_id"] == "org/tiny"
        assert (repo / "snapshots" / source["commit"]).is_dir()
        assert source["files"]["model.safetensors"] == {
            "sha256": hashlib.sha256(files["model.safetensors"]).hexdigest()}
        assert source["files"]["config.json"] == {"git-sha1": git_sha1(files["config.json"])}
    assert store.artifact("org--tiny:v1.0").version == "v0"
    assert store.artifact("org--tiny:main").version == "v1"
    assert store.artifact("org--tiny:v1").metadata["_source"]["refs"] == ["main"]
    assert store.artifact("org--tiny:v0").type == "model"


def test_reimport_makes_nothing_new(hub_cache: Path, store: Store,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    store.import_from("hf", hub_cache / "models--org--tiny", artifact="tiny")
    code, out, _ = cli(capsys, "import-from", "hf", str(hub_cache / "models--org--tiny"),
                       "--artifact", "tiny", "--store", store.url)
    assert code == 0
    assert "nothing new" in out
    assert len(store.versions("tiny")) == 2


@pytest.mark.parametrize("which", ["model.safetensors", "config.json"])
def test_a_tampered_blob_byte_is_refused_by_name(hub_cache: Path, store: Store,
                                                 tmp_path: Path, which: str) -> None:
    cache = tmp_path / "hub"
    shutil.copytree(hub_cache, cache, symlinks=True)
    link = next((cache / "models--org--tiny" / "snapshots").glob(f"*/{which}"))
    blob = link.resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x40
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=blob.name) as caught:
        store.import_from("hf", cache)
    assert "sha256" in str(caught.value) if which.endswith(".safetensors") else \
        "git-sha1" in str(caught.value)
    assert store.artifacts() == []  # checked before anything was written
