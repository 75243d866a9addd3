"""The Run API: metrics in segments, summaries, config errors, active runs, the catalog."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifactstore
from artifactstore import Store
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.local.catalog import RunInfo
from artifactstore.records.runs import RunLog, RunStart
from artifactstore.runs.run import active_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "cache")
    yield opened
    opened.close()


def test_metrics_are_written_in_bounded_segments(store: Store) -> None:
    with store.run(capture_code=False) as run:
        for step in range(2500):
            run.log({"loss": 1 / (step + 1), "epoch": step // 1000})
            if step == 1500:
                # Only the unflushed tail is held in memory.
                assert len(run._rows) == 501
        run.summary["best"] = 0.99
    log = RunLog(store.objects.backend, store.project)
    assert log.seqs(run.id, "metrics") == [0, 1, 2]
    history = list(store.run_history(run.id))
    assert [r.step for r in history] == list(range(2500))
    info = store.get_run(run.id)
    assert info.summary == {"loss": pytest.approx(1 / 2500), "epoch": 2, "best": 0.99}


def test_a_run_read_back_is_its_start_record_and_more(store: Store) -> None:
    started = {f.name for f in dataclasses.fields(RunStart)}
    assert started <= {f.name for f in dataclasses.fields(RunInfo)}
    assert not started & set(RunInfo.__annotations__)  # declared once, in RunStart
    with store.run(name="n", job_type="train", tags=["a"], config={"lr": 0.1},
                   capture_code=False) as run:
        run.summary["acc"] = 1.0
    info = store.get_run(run.id)
    assert isinstance(info, RunStart)
    assert (info.project, info.run_id, info.name, info.job_type, info.tags) == (
        store.project, run.id, "n", "train", ("a",))
    assert (dict(info.config), info.status, dict(info.summary)) == (
        {"lr": 0.1}, "finished", {"acc": 1.0})
    assert info.host == info.env["host"]
    assert info.as_dict()["config"] == {"lr": 0.1}


def test_explicit_steps_and_bad_metrics(store: Store) -> None:
    with store.run(capture_code=False) as run:
        run.log({"a": 1}, step=10)
        run.log({"a": 2})
        with pytest.raises(InvalidInputError, match="step must be"):
            run.log({"a": 3}, step=-1)
        with pytest.raises(InvalidInputError, match="metric 'x' is a dict"):
            run.log({"x": {}})
    assert [r.step for r in store.run_history(run.id)] == [10, 11]
    with pytest.raises(InvalidInputError, match="is finished"):
        run.log({"a": 4})


def test_unencodable_config_is_refused_before_anything_is_written(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="config cannot be stored"):
        store.run(config={"optimizer": object()})
    with pytest.raises(InvalidInputError, match="invalid job type"):
        store.run(job_type="has space")
    assert store.runs() == []


def test_use_and_log_artifact_record_edges_in_the_active_run(store: Store,
                                                             tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    store.log_artifact(tmp_path / "f", name="data", type="dataset")
    with store.run(capture_code=False) as run:
        assert active_run(store.context) is run
        store.log_artifact(tmp_path / "f", name="copy", type="dataset")
        same = store.log_artifact(tmp_path / "f", name="copy", type="dataset")
        assert same.created is False
    assert active_run(store.context) is None
    info = store.get_run(run.id)
    assert info.outputs == ("copy:v0",)  # logged twice, one version, one edge in the graph
    assert store.artifact("copy:v0").record.run == run.id


def test_module_level_use_records_the_input(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTSTORE_URL", str(tmp_path / "store"))
    (tmp_path / "f").write_text("x")
    with artifactstore.open() as store:
        store.log_artifact(tmp_path / "f", name="data", type="dataset")
    run = artifactstore.init_run(job_type="eval", capture_code=False)
    artifactstore.use("data:latest")
    run.finish()
    with artifactstore.open() as store:
        assert store.get_run(run.id[:24]).inputs == ("data:v0",)


def test_runs_filter_by_job_type_status_tag_and_time(store: Store) -> None:
    with store.run(job_type="train", tags=["gpu"], capture_code=False) as a:
        pass
    with pytest.raises(KeyError), store.run(job_type="eval", capture_code=False) as b:
        raise KeyError("k")
    assert [r.run_id for r in store.runs(job_type="train")] == [a.id]
    assert [r.run_id for r in store.runs(status="failed")] == [b.id]
    assert [r.run_id for r in store.runs(tag="gpu")] == [a.id]
    assert [r.run_id for r in store.runs(since=b.started_at)] == [b.id]
    assert [r.run_id for r in store.runs(until=b.started_at)] == [a.id]
    with pytest.raises(InvalidInputError, match="unknown status"):
        store.runs(status="done")
    with pytest.raises(InvalidInputError, match="not a time"):
        store.runs(since="yesterday")
    with pytest.raises(NotFoundError, match="runs ls"):
        store.get_run("2099")


def test_a_damaged_catalog_is_rebuilt(tmp_path: Path) -> None:
    url, cache = str(tmp_path / "store"), tmp_path / "cache"
    with artifactstore.open(url, cache_dir=cache) as store, store.run(capture_code=False) as run:
        pass
    (db,) = (cache / "catalog").rglob("*.sqlite")
    db.write_bytes(b"this is not a database" * 100)
    for leftover in db.parent.glob("*.sqlite-*"):
        leftover.unlink()
    with artifactstore.open(url, cache_dir=cache) as store:
        assert [r.run_id for r in store.runs()] == [run.id]
    assert sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_queries_do_not_list_the_store_when_the_catalog_is_fresh(store: Store) -> None:
    with store.run(capture_code=False):
        pass
    store.sync()
    before = store.catalog.generation
    listings = []
    backend = store.objects.backend
    original = backend.list

    def counting_list(prefix: str = ""):  # type: ignore[no-untyped-def]
        listings.append(prefix)
        return original(prefix)

    backend.list = counting_list  # type: ignore[method-assign]
    try:
        for _ in range(5):
            store.lineage(sync=None)
            store.runs(sync=None)
    finally:
        backend.list = original  # type: ignore[method-assign]
    assert listings == []
    assert store.catalog.generation == before


def test_environment_is_recorded_and_packages_only_when_asked(store: Store) -> None:
    import platform
    import sys

    with store.run(capture_code=False) as plain:
        pass
    with store.run(capture_code=False, packages=True) as detailed:
        pass
    env = store.get_run(plain.id).env
    assert env["python"] == platform.python_version()
    assert env["host"] == (platform.node() or "localhost")
    assert env["argv"] == sys.argv
    assert env["packages"] is None
    packages = dict(store.get_run(detailed.id).env["packages"])
    assert packages["artifactstore"] == artifactstore.__version__
    assert "networkx" in packages


def test_logging_back_unchanged_input_closes_no_loop(store: Store, tmp_path: Path) -> None:
    import networkx as nx

    (tmp_path / "f").write_text("x")
    store.log_artifact(tmp_path / "f", name="ds", type="dataset")
    with store.run(capture_code=False) as run:
        run.use("ds:v0")
        assert run.log_artifact(tmp_path / "f", name="ds", type="dataset").created is False
    graph = store.lineage()
    assert nx.is_directed_acyclic_graph(graph)
    assert list(graph.edges) == [("ds:v0", f"run:{run.id}")]
    assert store.impact("ds:v0") == []


@pytest.mark.parametrize("prefix", ["%", "_", "2026%", "'; DROP TABLE runs; --"])
def test_run_id_prefixes_are_literal(store: Store, prefix: str) -> None:
    with store.run(capture_code=False):
        pass
    with pytest.raises(NotFoundError, match="not found"):
        store.get_run(prefix)
