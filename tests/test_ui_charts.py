"""``runs plot`` (artifactstore/ui/charts.py): one metric of several runs on one chart."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
from cli_calls import cli, cli_json
from PIL import Image

import artifactstore


@pytest.fixture
def runs(tmp_path: Path) -> tuple[str, list[str]]:
    url = str(tmp_path / "store")
    ids = []
    with artifactstore.open(url) as store:
        for lr in (0.1, 0.01):
            with store.run(job_type="train", config={"lr": lr}, capture_code=False) as run:
                for step in range(50):
                    run.log({"loss": math.exp(-lr * step), "note": "text is skipped"})
                ids.append(run.id)
        with store.run(job_type="eval", capture_code=False) as run:
            run.log({"acc": 0.5})
            ids.append(run.id)
    return url, ids


def test_png_chart_of_two_runs(runs: tuple[str, list[str]], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    url, (a, b, _) = runs
    out = tmp_path / "loss.png"
    code, chart = cli_json(capsys, "runs", "plot", a, b[:-3], "--metric", "loss",
                           "--out", str(out), "--store", url)
    assert code == 0
    assert chart == {"output": str(out), "format": "png", "metric": "loss", "x": "step",
                     "runs": {a: 50, b: 50}}
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (800, 450)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None
    assert len(colours) > 20  # lines, text and antialiasing: not a blank canvas
    rgb = cast(list[tuple[int, tuple[int, int, int]]], colours)  # an RGB image's colours
    blue = sum(n for n, (r, g, bl) in rgb if bl > 150 and r < 80)  # matplotlib's C0 line
    assert blue > 100


def test_svg_chart_over_time(runs: tuple[str, list[str]], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    url, (a, _, c) = runs
    out = tmp_path / "loss.svg"
    code, out_text, _ = cli(capsys, "runs", "plot", a, c, "--metric", "loss", "--x", "time",
                            "--out", str(out), "--store", url)
    assert code == 0
    assert f"no numeric loss in: {c}" in out_text
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "<path" in svg
    assert "seconds since the run started" in svg


def test_plot_errors(runs: tuple[str, list[str]], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    url, (a, _, c) = runs
    code, _, err = cli(capsys, "runs", "plot", a, "--metric", "loss", "--out",
                       str(tmp_path / "x.jpg"), "--store", url)
    assert (code, "name a .png or .svg file" in err) == (2, True)
    code, _, err = cli(capsys, "runs", "plot", c, "--metric", "loss", "--out",
                       str(tmp_path / "x.png"), "--store", url)
    assert code == 3
    assert "no numeric values of metric 'loss'" in err
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_names_the_extra(runs: tuple[str, list[str]],
                                            tmp_path: Path) -> None:
    url, (a, _, _) = runs
    # A real process where matplotlib cannot be imported (a None entry in sys.modules).
    script = ("import sys; sys.modules['matplotlib'] = None; "
              "from artifactstore.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", script, "runs", "plot", a, "--metric", "loss",
                           "--out", str(tmp_path / "x.png"), "--store", url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 9
    assert done.stderr.strip().splitlines() == [
        "artifactstore: error: charts need matplotlib: pip install 'artifactstore[plot]'"]
