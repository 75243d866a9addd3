"""bench/ui_scale.py at a tiny scale: its parameters, its cached build, its report, and
one end-to-end run in the real browser (a smoke test; nothing is timed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import ui_scale  # noqa: E402

TINY = ui_scale.Params(runs=3, steps=20, metrics=3)


def test_parameters_and_their_defaults() -> None:
    args = ui_scale.parse_args([])
    assert (args.runs, args.steps, args.metrics, args.warm) == (1000, 10_000, 10, 5)
    args = ui_scale.parse_args(["--runs", "7", "--steps", "9", "--metrics", "12",
                                "--cache", "/x"])
    params = ui_scale.Params(args.runs, args.steps, args.metrics, args.seed)
    assert params.rows == 63
    assert params.folder == f"runs7-steps9-metrics12-seed{ui_scale.SEED}"
    assert args.cache == Path("/x")
    assert ui_scale.metric_names(12)[:2] == ["loss", "val_loss"]
    assert ui_scale.metric_names(12)[10:] == ["metric_10", "metric_11"]
    for bad in (["--runs", "0"], ["--steps", "-1"], ["--metrics", "0"], ["--warm", "-1"]):
        with pytest.raises(SystemExit):
            ui_scale.parse_args(bad)


def test_configs_and_tags_are_deterministic() -> None:
    a = [ui_scale.run_config(TINY, i) for i in range(50)]
    assert a == [ui_scale.run_config(TINY, i) for i in range(50)]
    assert len({c["lr"] for c in a}) == 50  # a sweep, not one config
    assert {c["optimizer"] for c in a} <= set(ui_scale.OPTIMIZERS)
    tags = [ui_scale.run_tags(TINY, i) for i in range(50)]
    assert all(t == sorted(set(t)) and set(t) <= set(ui_scale.TAGS) for t in tags)
    other = ui_scale.Params(3, 20, 3, seed=1)
    assert [ui_scale.run_config(other, i) for i in range(50)] != a


def test_build_is_cached_by_parameters(tmp_path: Path) -> None:
    said: list[str] = []
    root, done = ui_scale.cached_build(TINY, tmp_path, log=said.append)
    assert done["params"] == {"runs": 3, "steps": 20, "metrics": 3, "seed": ui_scale.SEED}
    figures = done["build"]
    assert figures["rows"] == 60
    assert figures["runs_listed"] == 3
    assert figures["rows_per_s"] > 0
    assert figures["store_bytes"] > 0
    assert said[0].startswith("building 3 runs x 20 steps x 3 metrics")

    said.clear()
    again, reused = ui_scale.cached_build(TINY, tmp_path, log=said.append)
    assert again == root
    assert reused == done
    assert said == [f"reusing the build in {root} (built {done['date']})"]

    # an unfinished build (no build.json) is never reused
    (root / "build.json").unlink()
    said.clear()
    ui_scale.cached_build(TINY, tmp_path, log=said.append)
    assert said[0].startswith("building")

    import artifactstore

    with ui_scale.client_cache(root / "client"):
        store = artifactstore.open(str(root / "store"), ui_scale.PROJECT, create=False)
        try:
            runs = store.runs()
            history = list(store.run_history(runs[1].run_id))
        finally:
            store.close()
    assert [r.name for r in runs] == ["run-0000", "run-0001", "run-0002"]
    assert runs[1].config == ui_scale.run_config(TINY, 1)
    assert list(runs[1].tags) == ui_scale.run_tags(TINY, 1)
    assert [r.step for r in history] == list(range(20))
    assert set(history[0].values) == {"loss", "val_loss", "acc"}
    assert "best_loss" in runs[1].summary


def _load(ready: float | None) -> dict[str, Any]:
    return {"server_ms": 12.5, "ttfb_ms": 20.0, "response_end_ms": 30.0,
            "dom_content_loaded_ms": 40.0, "load_ms": 50.0, "fcp_ms": 60.0,
            "ready_ms": ready, "html_bytes": 120_000}


def _result(cold: float | None, warm: float) -> dict[str, Any]:
    page = {"cold": _load(cold), "warm": [_load(warm)] * 3, "warm_median": _load(warm),
            "json": {"bytes": 45_000, "server_ms": 10.0, "seconds": 0.02}}
    return {"pages": {"runs_table": page, "run_page": page}}


def test_report_table_and_verdict() -> None:
    result = _result(900.0, 300.0)
    lines = ui_scale.table(result).splitlines()
    assert lines[0].startswith("| page | load | server (handler) ms |")
    assert lines[2] == "| runs table | cold | 12 | 20 | 60 | 900 | 120 | 45 |"
    assert lines[3].startswith("| runs table | warm (median of 3) | 12 |")
    assert lines[4].startswith("| run page | cold |")
    assert len(lines) == 6
    assert ui_scale.verdict(result) == (
        True, "target: each page ready in < 1 s (cold and warm): met (slowest 0.900 s)")
    ok, text = ui_scale.verdict(_result(1200.0, 300.0))
    assert not ok
    assert "MISSED (slowest 1.200 s)" in text
    ok, text = ui_scale.verdict(_result(None, 300.0))  # never ready: a miss
    assert not ok
    assert "| n/a |" in ui_scale.table(_result(None, 300.0))


def test_medians_skip_missing_values() -> None:
    loads = [_load(1.0), _load(3.0), _load(None)]
    assert ui_scale.medians(loads)["ready_ms"] == 2.0
    assert ui_scale.medians([]) == {}


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             chromium_browser: Any) -> None:
    out = tmp_path / "result.json"
    argv = ["--runs", "3", "--steps", "20", "--metrics", "3", "--warm", "1",
            "--cache", str(tmp_path / "cache"), "--json", str(out)]
    # the session's browser: Playwright's sync API runs one instance per thread
    assert ui_scale.main(argv, browser=chromium_browser) == 0
    result = json.loads(out.read_text())
    table, run = result["pages"]["runs_table"], result["pages"]["run_page"]
    assert table["rows"] == 3
    assert table["columns"] >= 6 + 9 + 3  # base, config and summary columns
    assert (run["charts"], run["drawn"]) == (3, 3)
    for page in (table, run):
        assert page["console_errors"] == []
        assert len(page["warm"]) == 1
        assert page["cold"]["server_ms"] is not None
        assert page["cold"]["ready_ms"] is not None
        assert page["json"]["bytes"] > 0
        assert page["peak_rss"] > 0
    empty = result["empty_catalog"]  # a server whose catalog syncs from nothing
    assert empty["server_start_s"] > 0
    assert empty["runs_table_json"]["bytes"] > 0
    printed = capsys.readouterr().out
    assert "| runs table | cold |" in printed
    assert "target: each page ready in < 1 s" in printed
    assert "empty local catalog (first sync at start)" in printed
