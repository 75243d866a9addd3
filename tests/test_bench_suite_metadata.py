"""Issue 20: the side-by-side suite reports artifactstore's local metadata after each step
(the report logic, with made-up measurements: no tool runs here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.suite import report, runner  # noqa: E402
from bench.suite.tools import ArtifactStore, Restic  # noqa: E402

MIB = 1 << 20


def rep(adds: list[int | None], restore: int | None, seconds: float = 1.0) -> dict[str, Any]:
    return {"adds": [{"version": f"v{i + 1}", "seconds": seconds, "max_rss": 10 * MIB,
                      "stored_bytes": 5 * MIB, "metadata_bytes": m}
                     for i, m in enumerate(adds)],
            "restore": {"version": "v1", "seconds": seconds, "max_rss": 10 * MIB,
                        "metadata_bytes": restore},
            "verified": True}


def test_summaries_take_the_median_of_each_steps_metadata() -> None:
    s = runner.summarize([rep([1 * MIB, 2 * MIB], 3 * MIB), rep([3 * MIB, 4 * MIB], 5 * MIB),
                          rep([2 * MIB, 9 * MIB], 4 * MIB)])
    assert s["metadata_bytes"] == [2 * MIB, 4 * MIB]
    assert s["restore_metadata_bytes"] == 4 * MIB
    other = runner.summarize([rep([None, None], None)])
    assert other["metadata_bytes"] == [None, None]
    assert other["restore_metadata_bytes"] is None


def test_the_table_shows_metadata_for_artifactstore_and_a_dash_for_others() -> None:
    tools = {"artifactstore": runner.summarize([rep([MIB, 2 * MIB], MIB // 2)]),
             "restic": runner.summarize([rep([None, None], None, seconds=2.0)])}
    doc = {"machine": {"cores": 2}, "date": "2026-12-07", "load_average": {
        "before": [1.0], "after": [1.0]}, "settings": {"scale": 0.01, "reps": 1, "seed": 1},
        "tools": {"artifactstore": "x", "restic": "y"}, "missing": [],
        "workloads": {"model": {"versions": ["v1", "v2"], "nbytes": [MIB, MIB],
                                "files": [1, 1], "tools": tools,
                                "ratios_vs_best_other": runner.ratios(tools)}}}
    text = report.markdown(doc)
    (ours,) = [line for line in text.splitlines() if line.startswith("| artifactstore |")]
    (theirs,) = [line for line in text.splitlines() if line.startswith("| restic |")]
    assert "| 1.00 / 2.00; restore 0.50 |" in ours
    assert "| - |" in theirs
    header = next(line for line in text.splitlines() if line.startswith("| tool |"))
    assert header.count("|") == ours.count("|") == theirs.count("|")


def test_metadata_cells() -> None:
    assert report.metadata_cell(None, None) == "-"
    assert report.metadata_cell([None], None) == "-"
    assert report.metadata_cell([MIB, None], None) == "1.00 / -"


def test_the_tool_measures_its_cache_folder(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("ARTIFACTSTORE_CACHE_DIR", raising=False)
    tool = ArtifactStore()
    tool.repo_dir = tmp_path
    cache = tmp_path / "home" / ".cache" / "artifactstore"
    for kind, size in (("catalog", 1000), ("refs", 200), ("known", 30), ("blobs", 10_000)):
        (cache / kind / "store-1").mkdir(parents=True)
        (cache / kind / "store-1" / "f").write_bytes(b"x" * size)
    assert tool.cache_root() == cache
    assert tool.metadata_bytes() == 1230  # the file cache ("blobs") is not metadata
    assert runner.metadata_bytes(tool) == 1230
    assert runner.metadata_bytes(Restic()) is None
