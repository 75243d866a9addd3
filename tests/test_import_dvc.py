"""import-from dvc (issue 19.4): a repository made by the real dvc in a real git
repository, imported byte-exact with its MD5s kept and checked, its dvc.lock stages as
runs with their lineage, a tampered cache byte refused by name."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_calls import cli
from git_repos import git

import artifactstore
from artifactstore import Store
from artifactstore.cli import main
from artifactstore.core.errors import IntegrityError
from artifactstore.model.entries import FileEntry, ReferenceEntry

pytest.importorskip("dvc", reason="the fixtures are made by dvc (the test extra)")
pytest.importorskip("yaml", reason="the importer reads DVC's YAML with PyYAML ([import])")

PREPARE = "import pathlib\np = pathlib.Path('prepared'); p.mkdir(exist_ok=True)\n" \
          "for f in sorted(pathlib.Path('data').rglob('*.csv')):\n" \
          "    (p / f.name).write_bytes(f.read_bytes().upper())\n"
TRAIN = "import pathlib, yaml\nlr = yaml.safe_load(open('params.yaml'))['lr']\n" \
        "n = sum(len(f.read_bytes()) for f in pathlib.Path('prepared').iterdir())\n" \
        "pathlib.Path('model.pt').write_bytes(bytes([n % 256]) * 1000 + str(lr).encode())\n" \
        "pathlib.Path('metrics.json').write_text('{\"acc\": 0.75, \"loss\": {\"train\": 0.5}}')\n"


def _files_only(entries: list[FileEntry | ReferenceEntry]) -> list[FileEntry]:
    """The entries of a version logged from files: all of them files, no references."""
    files = [e for e in entries if isinstance(e, FileEntry)]
    assert len(files) == len(entries), entries
    return files


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True,
                   capture_output=True, timeout=120,
                   env={**os.environ, "DVC_NO_ANALYTICS": "1"})


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/ (a folder, a sub-folder, binary bytes) and weights.bin added with dvc add;
    stages prepare (data -> prepared/) and train (prepared, train.py, lr -> model.pt and
    metrics.json, uncached) run by dvc repro; everything committed to git."""
    repo = tmp_path_factory.mktemp("dvc") / "repo"
    repo.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CONFIG_GLOBAL", os.devnull)
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for who in ("GIT_AUTHOR", "GIT_COMMITTER"):
            mp.setenv(f"{who}_NAME", "t")
            mp.setenv(f"{who}_EMAIL", "t@example.com")
        git(repo, "init", "-q", "-b", "main")
        dvc(repo, "init", "-q")
        (repo / "data" / "sub").mkdir(parents=True)
        (repo / "data" / "a.csv").write_bytes(b"x,y\n1,2\n")
        (repo / "data" / "sub" / "b.csv").write_bytes(b"x,y\n3,4\n")
        (repo / "data" / "blob.bin").write_bytes(bytes(range(256)) * 40)
        (repo / "weights.bin").write_bytes(os.urandom(3000))
        dvc(repo, "add", "-q", "data", "weights.bin")
        (repo / "prepare.py").write_text(PREPARE)
        (repo / "train.py").write_text(TRAIN)
        (repo / "params.yaml").write_text("lr: 0.01\nepochs: 3\n")
        dvc(repo, "stage", "add", "-q", "-n", "prepare", "-d", "data", "-d", "prepare.py",
            "-o", "prepared", f"{sys.executable} prepare.py")
        dvc(repo, "stage", "add", "-q", "-n", "train", "-d", "prepared", "-d", "train.py",
            "-p", "lr", "-o", "model.pt", "-M", "metrics.json", f"{sys.executable} train.py")
        dvc(repo, "repro", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "pipeline")
    return repo


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    assert main(["init", str(tmp_path / "store"), "--public", "-q"]) == 0
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache") as s:
        yield s


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _downloaded(store: Store, ref: str, tmp: Path) -> dict[str, bytes]:
    target = tmp / ref.replace(":", "-")
    store.artifact(ref).download(target)
    return _files(target)


def test_outputs_round_trip_byte_exact_with_their_md5s(dvc_repo: Path, store: Store,
                                                       tmp_path: Path) -> None:
    report = store.import_from("dvc", dvc_repo)
    refs = {v["ref"] for v in report.versions}
    assert {"data:v0", "weights.bin:v0", "prepared:v0", "model.pt:v0", "train.py:v0",
            "prepare.py:v0"} <= refs
    assert _downloaded(store, "data:v0", tmp_path) == _files(dvc_repo / "data")
    assert _downloaded(store, "prepared:v0", tmp_path) == _files(dvc_repo / "prepared")
    assert _downloaded(store, "weights.bin:v0", tmp_path) == {
        "weights.bin": (dvc_repo / "weights.bin").read_bytes()}
    assert _downloaded(store, "model.pt:v0", tmp_path) == {
        "model.pt": (dvc_repo / "model.pt").read_bytes()}
    # DVC's digests are kept: the folder's manifest MD5 and each file's MD5
    import yaml

    recorded = yaml.safe_load((dvc_repo / "data.dvc").read_text())["outs"][0]
    source = store.artifact("data:v0").metadata["_source"]
    assert source["tool"] == "dvc"
    assert source["md5"] == recorded["md5"]
    assert source["md5"].endswith(".dir")
    for path, data in _files(dvc_repo / "data").items():
        assert source["files"][path] == hashlib.md5(data).hexdigest()
    # DVC's cache is read-only by design; the files it holds are not
    assert {e.mode for e in _files_only(store.artifact("data:v0").files())} == {0o644}
    weights = store.artifact("weights.bin:v0").metadata["_source"]
    assert weights["md5"] == hashlib.md5((dvc_repo / "weights.bin").read_bytes()).hexdigest()


def test_stages_become_runs_with_their_lineage(dvc_repo: Path, store: Store) -> None:
    store.import_from("dvc", dvc_repo)
    runs = {r.name: r for r in store.runs(job_type="dvc-stage")}
    assert set(runs) == {"prepare", "train"}
    train = runs["train"]
    assert train.status == "finished"
    assert train.config["cmd"].endswith("train.py")
    assert train.config["params"] == {"params.yaml": {"lr": 0.01}}
    assert train.config["_source"]["stage"] == "train"
    assert set(train.inputs) == {"prepared:v0", "train.py:v0"}
    assert set(train.outputs) == {"model.pt:v0", "metrics.json:v0"}
    assert train.summary == {"acc": 0.75, "loss.train": 0.5}  # dvc.yaml's metrics
    assert set(runs["prepare"].inputs) == {"data:v0", "prepare.py:v0"}
    assert runs["prepare"].outputs == ("prepared:v0",)
    graph = store.lineage()
    upstream = {n for n in graph.nodes if n in graph.nodes and
                graph.nodes[n].get("kind") == "version"}
    assert {"data:v0", "prepared:v0", "model.pt:v0"} <= upstream


def test_reimporting_makes_nothing_new_and_says_so(dvc_repo: Path, store: Store,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    first = store.import_from("dvc", dvc_repo)
    assert first.created_versions == 7
    assert first.created_runs == 2
    again = store.import_from("dvc", dvc_repo)
    assert again.created_versions == again.created_runs == 0
    assert all(not v["created"] for v in again.versions)
    assert len(store.runs()) == 2
    assert [len(store.versions(n)) for n in sorted(store.artifacts())] == [1] * 7
    code, out, _ = cli(capsys, "import-from", "dvc", str(dvc_repo), "--store", store.url)
    assert code == 0
    assert "nothing new" in out


def test_a_tampered_cache_byte_is_refused_by_name(dvc_repo: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(dvc_repo, repo, symlinks=True)
    md5 = hashlib.md5((repo / "data" / "sub" / "b.csv").read_bytes()).hexdigest()
    cached = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    os.chmod(cached, 0o644)  # dvc makes its cache read-only
    data = bytearray(cached.read_bytes())
    data[0] ^= 1
    cached.write_bytes(bytes(data))
    assert cli(capsys, "init", str(tmp_path / "store"), "--public")[0] == 0
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c") as store:
        with pytest.raises(IntegrityError, match=md5[2:]) as caught:
            store.import_from("dvc", repo)
        assert "sub/b.csv" in str(caught.value)
        # nothing half-imported: the check runs before any write
        assert store.artifacts() == []
        assert store.runs() == []
    code, _, err = cli(capsys, "import-from", "dvc", str(repo), "--store",
                       str(tmp_path / "store"))
    assert code == IntegrityError.exit_code == 5
    assert str(cached) in err


def test_outputs_are_renamed_and_typed(dvc_repo: Path, store: Store,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "import-from", "dvc", str(dvc_repo), "--name",
                       "data=raw-data", "--name", "model.pt=classifier", "--type", "model",
                       "--store", store.url, "--json")
    assert code == 0
    result = json.loads(out)
    refs = {v["ref"] for v in result["versions"]}
    assert {"raw-data:v0", "classifier:v0"} <= refs
    assert "data:v0" not in refs
    assert store.artifact("classifier:v0").type == "model"
    train = next(r for r in store.runs() if r.name == "train")
    assert set(train.outputs) == {"classifier:v0", "metrics.json:v0"}


def test_git_history_brings_older_versions_in(dvc_repo: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(dvc_repo, repo, symlinks=True)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for who in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{who}_NAME", "t")
        monkeypatch.setenv(f"{who}_EMAIL", "t@example.com")
    first = git(repo, "rev-parse", "HEAD")
    old = _files(repo / "data")
    (repo / "data" / "a.csv").write_bytes(b"x,y\n1,2\n5,6\n")
    (repo / "data" / "c.csv").write_bytes(b"x,y\n7,8\n")
    dvc(repo, "add", "-q", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "more data")
    assert main(["init", str(tmp_path / "store"), "--public", "-q"]) == 0
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c") as store:
        report = store.import_from("dvc", repo, git_history=True)
        assert [v.version for v in store.versions("data")] == ["v0", "v1"]
        assert _downloaded(store, "data:v0", tmp_path) == old
        assert _downloaded(store, "data:v1", tmp_path) == _files(repo / "data")
        assert store.artifact("data:v0").metadata["_source"]["commit"] == first
        assert "commit" not in store.artifact("data:v1").metadata["_source"]
        assert store.artifact("data:latest").version == "v1"
        # the stages ran on the old data: their run used data:v0
        prepare = next(r for r in store.runs() if r.name == "prepare")
        assert "data:v0" in prepare.inputs
        assert report.created_runs == 2
        again = store.import_from("dvc", repo, git_history=True)
        assert again.created_versions == again.created_runs == 0


def test_a_cache_moved_by_dvc_cache_dir_is_read(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    dvc(repo, "cache", "dir", str(tmp_path / "shared-cache"))
    (repo / "table.csv").write_bytes(b"k,v\n1,2\n")
    dvc(repo, "add", "-q", "table.csv")
    assert not (repo / ".dvc" / "cache").exists()
    assert (tmp_path / "shared-cache" / "files" / "md5").is_dir()
    (repo / "table.csv").unlink()  # only the cache holds it now
    assert main(["init", str(tmp_path / "store"), "--public", "-q"]) == 0
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c") as store:
        store.import_from("dvc", repo)
        assert store.artifact("table.csv:v0").read_bytes("table.csv") == b"k,v\n1,2\n"
