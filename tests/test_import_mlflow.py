"""import-from mlflow (issue 19.4): an mlruns folder written by the real mlflow (a
``file:`` tracking URI, in a subprocess), imported with its params as config, its
metrics with their steps and timestamps as history, its tags and status, and each
run's artifacts byte-exact as a version made by the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_calls import cli

import artifactstore
from artifactstore import Store
from artifactstore.cli import main
from artifactstore.core.errors import InvalidInputError

pytest.importorskip("mlflow", reason="the fixture is written by mlflow (the test extra)")
pytest.importorskip("yaml", reason="the importer reads meta.yaml with PyYAML ([import])")

SCRIPT = r'''
import json, os, sys
import mlflow
root = sys.argv[1]
mlflow.set_tracking_uri("file:" + os.path.join(root, "mlruns"))
mlflow.set_experiment("vision")
out = {}
with mlflow.start_run(run_name="baseline") as run:
    mlflow.log_params({"lr": 0.1, "optimizer": "adam"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("acc", step / 10, step=step)
    mlflow.set_tag("team", "vision")
    art = os.path.join(root, "files")
    os.makedirs(os.path.join(art, "ckpt"), exist_ok=True)
    open(os.path.join(art, "model.bin"), "wb").write(bytes(range(256)) * 8)
    open(os.path.join(art, "ckpt", "epoch1.pt"), "wb").write(b"\x00\x01checkpoint")
    mlflow.log_artifact(os.path.join(art, "model.bin"))
    mlflow.log_artifacts(os.path.join(art, "ckpt"), artifact_path="ckpt")
    out["baseline"] = run.info.run_id
mlflow.set_experiment("nlp")
try:
    with mlflow.start_run(run_name="broken") as run:
        out["broken"] = run.info.run_id
        mlflow.log_param("lr", "0.5")
        mlflow.log_metric("loss", 9.0)
        raise RuntimeError("diverged")
except RuntimeError:
    pass
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Experiment vision (run baseline: params, 5 steps of loss and acc, a tag, two
    artifacts) and nlp (run broken, FAILED); returns the mlruns folder and run ids."""
    root = tmp_path_factory.mktemp("mlflow")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], check=True,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"})
    return root / "mlruns", json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    assert main(["init", str(tmp_path / "store"), "--public", "-q"]) == 0
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache") as s:
        yield s


def _run_dir(mlruns: Path, run_id: str) -> Path:
    return next(mlruns.glob(f"*/{run_id}"))


def test_runs_params_metrics_tags_status(mlruns: tuple[Path, dict[str, str]],
                                         store: Store) -> None:
    root, ids = mlruns
    report = store.import_from("mlflow", root)
    assert report.created_runs == 2
    runs = {r.name: r for r in store.runs(job_type="mlflow-run")}
    base = runs["baseline"]
    assert base.status == "finished"
    assert base.config["lr"] == "0.1"  # MLflow keeps params as strings
    assert base.config["optimizer"] == "adam"
    source = base.config["_source"]
    assert source["id"] == ids["baseline"]
    assert source["experiment"] == "vision"
    assert source["status"] == "FINISHED"
    assert source["tags"]["team"] == "vision"
    assert "experiment=vision" in base.tags
    assert "team=vision" in base.tags
    history = list(store.run_history(base.run_id))
    assert [r.step for r in history] == [0, 1, 2, 3, 4]
    metric_file = _run_dir(root, ids["baseline"]) / "metrics" / "loss"
    for row, line in zip(history, metric_file.read_text().splitlines(), strict=True):
        ms, value, step = line.split()
        assert row.step == int(step)
        assert row.values["loss"] == float(value)
        assert datetime.fromisoformat(row.at) == datetime.fromtimestamp(int(ms) / 1000, UTC)
    assert history[-1].values["acc"] == 0.4
    assert base.summary["loss"] == 0.2
    broken = runs["broken"]
    assert broken.status == "failed"
    assert "FAILED" in (broken.error or "")
    assert "experiment=nlp" in broken.tags


def test_artifacts_round_trip_as_a_version_made_by_the_run(
        mlruns: tuple[Path, dict[str, str]], store: Store, tmp_path: Path) -> None:
    root, ids = mlruns
    store.import_from("mlflow", root)
    version = store.artifact(f"mlflow-{ids['baseline']}")
    target = tmp_path / "out"
    version.download(target)
    source = _run_dir(root, ids["baseline"]) / "artifacts"
    got = {p.relative_to(target).as_posix(): p.read_bytes()
           for p in target.rglob("*") if p.is_file()}
    want = {p.relative_to(source).as_posix(): p.read_bytes()
            for p in source.rglob("*") if p.is_file()}
    assert got == want
    assert set(got) == {"model.bin", "ckpt/epoch1.pt"}
    assert version.metadata["_source"]["digests"] is None  # MLflow keeps none
    run = next(r for r in store.runs() if r.name == "baseline")
    assert run.outputs == (version.ref,)


def test_reimport_and_experiment_filter(mlruns: tuple[Path, dict[str, str]], store: Store,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = mlruns
    first = store.import_from("mlflow", root, experiment="nlp")
    assert [r["created"] for r in first.runs] == [True]
    second = store.import_from("mlflow", root)
    assert second.created_runs == 1  # only vision's run is new
    code, out, _ = cli(capsys, "import-from", "mlflow", str(root), "--store", store.url)
    assert code == 0
    assert "nothing new" in out
    assert len(store.runs()) == 2
    assert len(store.artifacts()) == 1


def test_a_damaged_metric_file_is_refused_by_name(mlruns: tuple[Path, dict[str, str]],
                                                  store: Store, tmp_path: Path) -> None:
    root, ids = mlruns
    copy = tmp_path / "mlruns"
    shutil.copytree(root, copy)
    metric = _run_dir(copy, ids["baseline"]) / "metrics" / "loss"
    data = bytearray(metric.read_bytes())
    data[data.index(b" ") + 1] = ord("x")  # a value that is no number
    metric.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match="metrics/loss"):
        store.import_from("mlflow", copy)
    assert store.runs() == []  # every run is read before any is written


def test_a_row_time_must_be_timezone_aware(store: Store) -> None:
    """run.log(at=) carries an imported row's time (here MLflow's); a naive time would
    be read as local time by some and UTC by others, so it is refused."""
    with store.run(capture_code=False) as run:
        with pytest.raises(InvalidInputError, match="timezone-aware"):
            run.log({"loss": 1.0}, step=0, at=datetime(2024, 5, 1, 12, 0))
        run.log({"loss": 1.0}, step=0, at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
        run_id = run.id
    (row,) = store.run_history(run_id)
    assert row.at == "2024-05-01T12:00:00.000000+00:00"
