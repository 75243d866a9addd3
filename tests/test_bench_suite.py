"""bench/run.py end to end at a tiny scale: a smoke test of the suite; nothing is timed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.suite import runner, workloads  # noqa: E402
from bench.suite.tools import TOOLS  # noqa: E402

pytestmark = pytest.mark.slow


def test_workloads_are_deterministic_and_shaped(tmp_path: Path) -> None:
    a = workloads.generate("table", tmp_path / "a", 0.002)
    b = workloads.generate("table", tmp_path / "b", 0.002)
    assert a.labels == ("v1", "v2", "v3", "v4")
    for va, vb in zip(a.versions, b.versions, strict=True):
        assert (va / "table.csv").read_bytes() == (vb / "table.csv").read_bytes()
    assert a.nbytes[0] < a.nbytes[1] < a.nbytes[2] == a.nbytes[3]
    model = workloads.generate("model", tmp_path / "a", 0.002)
    assert model.nbytes[0] == model.nbytes[1] < model.nbytes[2]
    assert model.nbytes[0] % 4 == 0
    images = workloads.generate("images", tmp_path / "a", 0.01)
    assert images.files == (200, 209)  # 200 + 10 added - 1 deleted
    assert len({p.parent for p in workloads.files_of(images.versions[0])}) == 100


def test_verify_catches_a_changed_byte(tmp_path: Path) -> None:
    w = workloads.generate("images", tmp_path, 0.001)
    copy = tmp_path / "copy"
    shutil.copytree(w.versions[0], copy)
    assert runner.verify(w.versions[0], copy) == w.files[0]
    victim = copy / workloads.files_of(copy)[0]
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(runner.VerifyError, match="differs"):
        runner.verify(w.versions[0], copy)


def _run_suite(tmp_path: Path, tools: list[str], names: list[str]) -> dict[str, Any]:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--scale", "0.01", "--reps", "1",
         "--tools", ",".join(tools), "--workloads", ",".join(names), "--json", str(out_json),
         "--markdown", str(out_md), "--out", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc: dict[str, Any] = json.loads(out_json.read_text())
    assert set(doc["tools"]) == set(tools)
    assert doc["missing"] == []
    assert set(doc["workloads"]) == set(names)
    for w in doc["workloads"].values():
        assert set(w["tools"]) == set(tools)
        for s in w["tools"].values():
            assert s["verified"]
            assert len(s["add_s"]) == len(s["stored_bytes"]) == len(w["versions"])
            assert all(b > 0 for b in s["stored_bytes"])
            assert s["peak_rss"] > 0
        assert set(w["ratios_vs_best_other"]["artifactstore"]) == set(runner.METRICS)
    assert "| artifactstore |" in out_md.read_text()
    return doc


def test_suite_runs_artifactstore_on_every_workload(tmp_path: Path) -> None:
    _run_suite(tmp_path, ["artifactstore"], list(workloads.NAMES))


def test_suite_runs_every_installed_tool(tmp_path: Path) -> None:
    # Every tool installed here, on the smallest workload (each step is a process
    # start, so all tools on all workloads would take too long for a smoke test).
    others = [n for n, t in TOOLS.items() if n != "artifactstore" and t().available()]
    doc = _run_suite(tmp_path, ["artifactstore", *others], ["images"])
    print("tools run:", ", ".join(doc["tools"]))


def test_ratios_compare_with_other_programs_not_with_a_variant_of_the_same() -> None:
    def summary(seconds: float) -> dict[str, Any]:
        return {"add_total_s": seconds, "restore_s": seconds, "stored_bytes": [seconds],
                "peak_rss": seconds}

    got = runner.ratios({"artifactstore": summary(1.0), "artifactstore-public": summary(0.5),
                         "restic": summary(2.0), "dvc": summary(4.0)})
    assert got["artifactstore"]["add_total_s"] == 0.5  # over restic, not over its variant
    assert got["artifactstore-public"]["restore_s"] == 0.25
    assert got["restic"]["peak_rss"] == 4.0  # over the best of artifactstore's two
    assert got["dvc"]["final_stored_bytes"] == 8.0


def test_request_kinds_and_shapes() -> None:
    from bench.suite.s3server import request_kind, request_shape

    assert request_kind("get", "/b", "list-type=2&prefix=p%2F&delimiter=%2F") == "LIST"
    assert request_kind("GET", "/b/", "") == "LIST"  # ListObjects v1 without parameters
    assert request_kind("GET", "/b", "location") == "GET"
    assert request_kind("GET", "/b/p/key", "") == "GET"
    assert request_kind("HEAD", "/b/p/key", "") == "HEAD"
    assert request_shape("PUT", "/b/p/packs/6e/6e2a24cbe98026d67ce4a279", "") == "PUT p/packs/*/*"
    assert request_shape("LIST", "/b", "list-type=2&prefix=p%2Fidx%2F") == "LIST p/idx/ (deep)"


def test_launcher_reports_the_commands_rss_not_the_parents(tmp_path: Path) -> None:
    # A child started directly from a large process inherits its peak RSS as ru_maxrss.
    ballast = bytearray(256 << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    report = tmp_path / "measured"
    launcher = ROOT / "bench" / "suite" / "launch.py"
    subprocess.run([sys.executable, "-I", "-S", str(launcher), str(report), sys.executable,
                    "-c", "pass"], check=True, timeout=60)
    max_rss, seconds = report.read_text().split()
    assert 0 < int(max_rss) < 100 << 20
    assert float(seconds) > 0
    del ballast


@pytest.mark.slow
@pytest.mark.s3
def test_s3_case_counts_artifactstore_requests(tmp_path: Path) -> None:
    pytest.importorskip("moto")
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--s3", "--scale", "0.002", "--reps", "1",
         "--tools", "artifactstore,borg", "--workloads", "images", "--json", str(out_json),
         "--markdown", str(out_md), "--out", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc: dict[str, Any] = json.loads(out_json.read_text())
    assert doc["workloads"] == {}  # --s3 alone: no local case
    s3 = doc["s3"]
    assert s3["not_applicable"] == {"borg": "no S3 backend"}
    steps = s3["workloads"]["images"]["tools"]["artifactstore"]["steps"]
    for name in ("init", "push", "repush", "restore"):
        step = steps[name]
        assert step["requests"] > 0, name
        assert sum(step["by_kind"].values()) == step["requests"], name
        assert sum(step["by_shape"].values()) == step["requests"], name
        assert step["max_rss"] > 0, name
    assert steps["repush"]["requests"] < steps["push"]["requests"]
    assert steps["push"]["bytes_in"] > 0
    assert steps["restore"]["bytes_out"] > 0
    assert steps["restore"]["files_verified"] == s3["workloads"]["images"]["files"]
    text = out_md.read_text()
    assert "| artifactstore | push v1 |" in text
    assert "| borg | n/a: no S3 backend |" in text
