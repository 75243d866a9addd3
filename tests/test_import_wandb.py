"""import-from wandb (issue 19.4): offline runs written by the real wandb
(``WANDB_MODE=offline`` in a subprocess), imported with their config, history at
W&B's steps and timestamps, summary and status, and each logged artifact byte-exact
as a version made by the run, checked against W&B's MD5s."""

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

import artifactstore
from artifactstore import Store
from artifactstore.cli import main
from artifactstore.core.errors import IntegrityError

pytest.importorskip("wandb", reason="the offline runs are written by wandb (test extra)")
pytestmark = pytest.mark.slow  # wandb's offline service can take a minute to start

SCRIPT = r'''
import os, sys
import wandb
root = sys.argv[1]
data = os.path.join(root, "files")
os.makedirs(os.path.join(data, "split"), exist_ok=True)
open(os.path.join(data, "split", "train.csv"), "wb").write(b"a,b\n1,2\n")
open(os.path.join(data, "labels.bin"), "wb").write(bytes(range(256)) * 4)
run = wandb.init(project="vision", name="train-1", job_type="train",
                 config={"lr": 0.01, "layers": [4, 2]}, tags=["baseline"])
for step in range(4):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 4})
run.log({"big": 2**70, "points": [1, 2, 3]})
art = wandb.Artifact("images", type="dataset", metadata={"rows": 2})
art.add_dir(data)
run.log_artifact(art, aliases=["best"])
run.summary["best_acc"] = 0.75
run.finish()
run = wandb.init(project="vision", name="broken", job_type="train", config={"lr": 9})
run.log({"loss": 99.0})
run.finish(exit_code=3)
'''


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two offline runs of project vision: train-1 (4 rows, an artifact 'images' of two
    files with alias best, a summary key) and broken (exit code 3)."""
    root = tmp_path_factory.mktemp("wandb")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(root),
           "WANDB_DATA_DIR": str(root / "data"), "WANDB_CACHE_DIR": str(root / "cache"),
           "WANDB_CONFIG_DIR": str(root / "config"), "WANDB_SILENT": "true",
           "WANDB_DISABLE_GIT": "true", "WANDB_DISABLE_CODE": "true"}
    subprocess.run([sys.executable, "-c", SCRIPT, str(root)], env=env, check=True,
                   capture_output=True, timeout=240, cwd=root)
    return root / "wandb"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    assert main(["init", str(tmp_path / "store"), "--public", "-q"]) == 0
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache") as s:
        yield s


def test_runs_history_summary_and_artifacts(wandb_dir: Path, store: Store,
                                            tmp_path: Path) -> None:
    report = store.import_from("wandb", wandb_dir)
    assert report.created_runs == 2
    runs = {r.name: r for r in store.runs()}
    train = runs["train-1"]
    assert train.job_type == "train"
    assert train.status == "finished"
    assert train.config["lr"] == 0.01
    assert train.config["layers"] == [4, 2]
    assert train.config["_source"]["project"] == "vision"
    assert train.tags == ("baseline",)
    history = list(store.run_history(train.run_id))
    assert [r.step for r in history] == [0, 1, 2, 3, 4]
    assert [r.values["loss"] for r in history[:4]] == [1.0, 0.5, 1 / 3, 0.25]
    # an int past int64 becomes a float; a value that is no scalar is left out, said so
    assert history[-1].values["big"] == float(2**70)
    assert not any("points" in r.values for r in history)
    assert any("points" in note for note in report.notes)
    assert history[0].at < history[-1].at
    assert train.summary["best_acc"] == 0.75
    assert not any(k.startswith("_") for k in train.summary)
    assert train.outputs == ("images:v0",)
    version = store.artifact("images:best")
    assert version.metadata["rows"] == 2
    version.download(tmp_path / "out")
    source = wandb_dir.parent / "files"
    want = {p.relative_to(source).as_posix(): p.read_bytes()
            for p in source.rglob("*") if p.is_file()}
    got = {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes()
           for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert got == want
    md5s = version.metadata["_source"]["files"]
    assert md5s == {path: hashlib.md5(data).hexdigest() for path, data in want.items()}
    broken = runs["broken"]
    assert broken.status == "failed"
    assert broken.error == "exit code 3"


def test_reimport_makes_nothing_new(wandb_dir: Path, store: Store,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    store.import_from("wandb", wandb_dir)
    code, out, _ = cli(capsys, "import-from", "wandb", str(wandb_dir), "--store", store.url)
    assert code == 0
    assert "nothing new" in out
    assert len(store.runs()) == 2
    assert len(store.versions("images")) == 1


def _staged_copy(wandb_dir: Path) -> Path:
    """The copy of labels.bin W&B staged for upload (the run log names it)."""
    data = (wandb_dir.parent / "files" / "labels.bin").read_bytes()
    for staged in (wandb_dir.parent / "data").rglob("*"):
        if staged.is_file() and staged.read_bytes() == data:
            return staged
    raise AssertionError("no staged copy of labels.bin")


def test_a_tampered_staged_byte_is_refused_by_name(wandb_dir: Path, store: Store,
                                                   tmp_path: Path) -> None:
    staged = _staged_copy(wandb_dir)
    backup = tmp_path / "backup"
    shutil.copy2(staged, backup)
    os.chmod(staged, 0o644)
    data = bytearray(staged.read_bytes())
    data[100] ^= 1
    staged.write_bytes(bytes(data))
    try:
        with pytest.raises(IntegrityError, match=str(staged)):
            store.import_from("wandb", wandb_dir)
        assert store.runs() == []
    finally:
        shutil.copy2(backup, staged)


def test_a_tampered_run_log_byte_is_refused_by_name(wandb_dir: Path, store: Store,
                                                    tmp_path: Path) -> None:
    run_dir = next(d for d in sorted(wandb_dir.glob("offline-run-*")))
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    log = next(copy.glob("run-*.wandb"))
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 1
    log.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=log.name):
        store.import_from("wandb", copy)
    assert store.runs() == []
