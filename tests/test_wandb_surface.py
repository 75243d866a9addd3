"""Issue 19, part 1: the W&B-shaped surface (api/session.py ``init``/``log``/``finish``/
``use_artifact``/``log_artifact``, the module's ``run``/``config``/``summary``,
runs/config.py's RunConfig, ``run.log(commit=False)``, ``finish(exit_code=)``), and a
script written against W&B's calls that runs with only its import line changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import artifactstore
from artifactstore.core.errors import InvalidInputError
from artifactstore.runs.config import RunConfig
from artifactstore.testing.stores import init_quick_store

SCRIPT = Path(__file__).parent / "data" / "scripts" / "wandb_style.py"


def test_a_wandb_script_runs_with_only_its_import_changed(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "ARTIFACTSTORE_URL": url}
    done = subprocess.run([sys.executable, str(SCRIPT), str(work)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "done"
    with artifactstore.open(url, "mnist-demo", create=False) as store:
        prepare, train, evaluate = store.runs()
        assert [r.job_type for r in (prepare, train, evaluate)] == ["prepare", "train", "eval"]
        assert all(r.status == "finished" for r in (prepare, train, evaluate))
        # the config as it ended: the start's keys, the updates, the notes
        assert dict(train.config) == {"lr": 0.05, "epochs": 3, "batch_size": 32,
                                      "optimizer": "sgd", "_notes": "first try"}
        assert train.tags == ("baseline", "group:sweep-1")
        assert train.name == "lenet-1"
        rows = [(r.step, dict(r.values)) for r in store.run_history(train.run_id)]
        assert rows == [(0, {"epoch": 0, "loss": 1.0, "acc": 0.5}),
                        (1, {"epoch": 1, "loss": 0.5, "acc": 0.6}),
                        (2, {"epoch": 2, "loss": 1 / 3, "acc": 0.7})]
        assert train.summary["best_acc"] == 0.7
        assert train.inputs == ("mnist:v0",)
        assert train.outputs == ("lenet:v0",)
        assert evaluate.inputs == ("lenet:v0",)
        assert store.artifact("lenet:best").ref == "lenet:v0"
        assert store.artifact("mnist:raw").metadata["rows"] == 2
        assert sorted(f.path for f in store.artifact("mnist:v0").files()) == [
            "README.md", "labels.txt", "train.csv"]


def test_run_config_reads_and_writes_by_key_and_attribute() -> None:
    config = RunConfig({"lr": 0.1})
    assert (config.lr, config["lr"]) == (0.1, 0.1)
    config.batch = 32
    config["depth"] = 4
    config.update({"optimizer": "adam"}, allow_val_change=True)
    config.setdefaults({"lr": 9.0, "seed": 1})
    assert dict(config) == {"lr": 0.1, "batch": 32, "depth": 4, "optimizer": "adam",
                            "seed": 1}
    assert config.changed
    with pytest.raises(AttributeError, match="no key 'nosuch'"):
        _ = config.nosuch
    with pytest.raises(InvalidInputError, match="cannot be stored"):
        config.bad = object()
    assert "bad" not in config  # a refused value changes nothing
    del config.batch
    assert "batch" not in config
    assert not RunConfig({"a": 1}).changed


def test_an_unchanged_config_is_not_written_again(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    with artifactstore.open(url) as store:
        with store.run(config={"lr": 0.1}) as same:
            same.config["lr"] = 0.1  # set, but to what it was
        with store.run(config={"lr": 0.1}) as changed:
            changed.config.lr = 0.2
        assert store.get_run(same.id).config == {"lr": 0.1}
        assert store.get_run(changed.id).config == {"lr": 0.2}
    # another process reads the records afresh (no catalog of this one)
    with artifactstore.open(url, cache_dir=tmp_path / "other-cache") as store:
        assert store.get_run(changed.id).config == {"lr": 0.2}


def test_module_calls_need_an_active_run_and_exit_codes_fail_runs(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    assert artifactstore.run is None
    with pytest.raises(AttributeError, match="no active run"):
        _ = artifactstore.config
    with pytest.raises(InvalidInputError, match="no active run"):
        artifactstore.log({"loss": 1.0})
    artifactstore.finish()  # nothing to finish: no error, as in W&B
    with pytest.raises(InvalidInputError, match="mode='disabled'"):
        artifactstore.init(mode="disabled", url=url)
    run = artifactstore.init(job_type="train", url=url, entity="ignored", reinit=True)
    assert artifactstore.run is run
    assert artifactstore.config is run.config
    artifactstore.log({"a": 1}, commit=False)
    artifactstore.finish(exit_code=3)  # the held row is written first
    assert artifactstore.run is None
    with artifactstore.open(url) as store:
        info = store.get_run(run.id)
        assert (info.status, info.error) == ("failed", "exit code 3")
        assert [dict(r.values) for r in store.run_history(run.id)] == [{"a": 1}]


def test_use_artifact_checks_the_type(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    (tmp_path / "f.txt").write_text("x")
    with artifactstore.open(url) as store:
        store.log_artifact(tmp_path / "f.txt", name="d", type="dataset")
        with store.run() as run:
            with pytest.raises(InvalidInputError, match="is of type 'dataset', not 'model'"):
                run.use_artifact("d:latest", type="model")
            version = run.use_artifact("d:latest", type="dataset")
            assert run.use_artifact(version).ref == "d:v0"
            with pytest.raises(InvalidInputError, match="aliases"):
                run.use_artifact("d:latest", aliases=["x"])


def test_a_catalog_of_the_older_schema_is_rebuilt(tmp_path: Path) -> None:
    """Schema 4 added ``run_ends.config``: a client's catalog file of schema 3 (no such
    column) is dropped and rebuilt from the store on open, nothing lost."""
    import sqlite3

    url, cache = str(tmp_path / "store"), tmp_path / "cache"
    with artifactstore.open(url, cache_dir=cache) as store:
        with store.run(config={"lr": 0.1}) as run:
            run.config.lr = 0.2
        assert store.get_run(run.id).config == {"lr": 0.2}
        path = store.catalog._path  # the file this client keeps
    assert path is not None
    with sqlite3.connect(path) as db:  # what a schema-3 client left
        db.execute("ALTER TABLE run_ends DROP COLUMN config")
        db.execute("UPDATE meta SET v='3' WHERE k='schema'")
    with artifactstore.open(url, cache_dir=cache) as store:
        assert store.get_run(run.id, sync=True).config == {"lr": 0.2}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT v FROM meta WHERE k='schema'").fetchone() == ("4",)
