"""bench/lineage_scale.py end to end at a small scale (a smoke test; nothing is timed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "lineage_scale.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("lineage_scale", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_plan_is_deterministic_and_deep(bench: ModuleType) -> None:
    plan = bench.make_plan(2000, 1000)
    shape = plan.summary()
    assert (shape["versions"], shape["runs"], shape["raw_datasets"]) == (2000, 1000, 200)
    assert shape["generation_max"] >= 5
    assert bench.make_plan(2000, 1000).steps == plan.steps
    steps = plan.steps
    assert all(1 <= len(s.inputs) <= 3 for s in steps if isinstance(s, bench.RunStep))
    assert all(1 <= len(s.outputs) <= 2 for s in steps if isinstance(s, bench.RunStep))


def test_plan_refuses_an_impossible_shape(bench: ModuleType) -> None:
    with pytest.raises(SystemExit, match="cannot lay out"):
        bench.make_plan(100, 1000)


@pytest.mark.s3
def test_small_run_end_to_end(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    assert bench.main(["--scale", "0.02", "--queries", "5", "--json", str(out)]) == 0
    result = json.loads(out.read_text())

    assert result["plan"]["versions"] == 40
    assert result["plan"]["runs"] == 20
    assert result["build"]["requests"] > 0
    first = result["first_sync"]
    assert first["fetched"] == first["listed"]  # every record once, from an empty cache
    assert first["requests"] >= first["fetched"]
    assert result["noop_sync"]["fetched"] == 0
    for direction in ("upstream", "downstream"):
        series = result[direction]
        assert len(series["seconds"]) == 5
        assert len(series["requests"]) == 5
        assert min(series["nodes"]) >= 1
    assert result["stale_query"]["requests"] >= 1  # the default sync=None lists when stale
    assert not result["before_sync"]["run"]
    after = result["after_sync"]
    assert after["run"]
    assert after["downstream_has_run"]
    assert after["downstream_has_output"]
    assert after["run_inputs"] == [result["late_run"]["input"]]
    assert result["late_sync"]["fetched"] >= 1
    assert result["later_sync"]["fetched"] == 0  # the catalog file persisted
    printed = capsys.readouterr().out
    assert "| reader: first sync |" in printed
    assert "saw the new run after its next sync: yes" in printed
