"""``lineage --html`` and ``audit --html`` (artifactstore/ui/reports.py): one self-contained
HTML file, opened in a real headless Chromium that may reach nothing but the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_calls import cli, cli_json
from git_repos import committed_repo, isolate_git

import artifactstore
from artifactstore.testing.browser import SealedPage

HOSTILE = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """raw:v0 -> run prep -> clean:v0 -> run train -> model:v0, a failed run that used
    clean too; old:v0 and leak:v0 used by prep, then deleted and purged; hostile text in
    user fields."""
    isolate_git(monkeypatch)
    monkeypatch.chdir(committed_repo(tmp_path / "code", {"train.py": "print(1)\n"}))
    url = str(tmp_path / "store")
    files = tmp_path / "files"
    files.mkdir()
    with artifactstore.open(url) as store:
        (files / "raw.csv").write_text("a\n1\n")
        store.log_artifact(files / "raw.csv", name="raw", type="dataset",
                           description=HOSTILE, metadata={"note": HOSTILE})
        (files / "old.csv").write_text("a\n0\n")
        store.log_artifact(files / "old.csv", name="old", type="dataset")
        (files / "leak.csv").write_text("a\nsecret\n")
        store.log_artifact(files / "leak.csv", name="leak", type="dataset")
        with store.run(name=HOSTILE, job_type="prep", config={"why": HOSTILE}) as run:
            run.use("raw:latest")
            run.use("old:latest")
            run.use("leak:latest")
            (files / "clean.csv").write_text("a\n2\n")
            run.log_artifact(files / "clean.csv", name="clean", type="dataset")
        with store.run(name="train", job_type="train", config={"lr": 0.1}) as run:
            run.use("clean:latest")
            (files / "m.bin").write_bytes(b"weights")
            run.log_artifact(files / "m.bin", name="model", type="model", aliases=["best"])
        with pytest.raises(RuntimeError, match="out of memory"):
            _failing_run(store)
        store.delete("old:v0", reason="licence withdrawn")
        # wait=False: nobody else writes to this store while it wipes
        store.purge("leak:v0", reason="personal data", wait=False)
    return url


def _failing_run(store: artifactstore.Store) -> None:
    with store.run(name="retry", job_type="train") as run:
        run.use("clean:latest")
        raise RuntimeError("out of memory")


def _run_id(url: str, name: str) -> str:
    with artifactstore.open(url) as store:
        return next(r.run_id for r in store.runs(sync=True) if r.name == name)


def _open(page: SealedPage, path: Path) -> None:
    page.open(path)
    page.wait_for("document.body.getAttribute('data-ready') === 'true'")
    # dagre has placed the nodes: not all at the origin
    page.wait_for("artifactstoreGraph.nodes().some(n => n.position('x') > 1)")


def _canvas_drawn(page: SealedPage) -> bool:
    return bool(page.evaluate("""() => {
        for (const c of document.querySelectorAll('#graph canvas')) {
            const ctx = c.getContext('2d');
            if (!c.width || !c.height) continue;
            const px = ctx.getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
        }
        return false;
    }"""))


def test_lineage_html_draws_the_graph_offline(url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              sealed_page: SealedPage) -> None:
    out = tmp_path / "lineage.html"
    code, summary = cli_json(capsys, "lineage", "model", "--html", str(out), "--store", url)
    assert code == 0
    train = _run_id(url, "train")
    # model <- train <- clean <- prep <- raw, old (deleted), leak (purged)
    assert (summary["ref"], summary["nodes"], summary["edges"]) == ("model:v0", 7, 6)
    text = out.read_text()
    assert HOSTILE not in text  # escaped wherever it appears
    assert not re.search(r"<script[^>]*\bsrc=", text)  # everything inline
    assert "cytoscape" in text
    _open(sealed_page, out)
    # a file outlives the state it shows, so it says when it was written
    assert re.fullmatch(r"project default · \d+ versions, \d+ runs · written "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by artifactstore \S+",
                        sealed_page.text("#subtitle"))
    assert sealed_page.evaluate("artifactstoreGraph.nodes().length") == 7
    assert sealed_page.evaluate("artifactstoreGraph.edges().length") == 6
    assert _canvas_drawn(sealed_page)
    # versions and runs are styled apart; the deleted one is marked
    shapes = sealed_page.evaluate("""Object.fromEntries(artifactstoreGraph.nodes().map(
        n => [n.id(), [n.style('shape'), n.style('border-style')]]))""")
    assert shapes["model:v0"] == ["round-rectangle", "solid"]
    assert shapes[f"run:{train}"][0] == "ellipse"
    assert shapes["old:v0"] == ["round-rectangle", "dashed"]
    assert shapes["leak:v0"] == ["round-rectangle", "dotted"]
    # clicking the model shows the run that made it
    pos = sealed_page.evaluate("artifactstoreGraph.getElementById('model:v0').renderedPosition()")
    box = sealed_page.page.locator("#graph").bounding_box()
    assert box is not None
    sealed_page.page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    sealed_page.wait_for("document.getElementById('facts').getAttribute('data-node') "
                         "=== 'model:v0'")
    made_by = sealed_page.evaluate("""[...document.querySelectorAll('#facts button.node-link')]
        .map(b => b.textContent)""")
    assert f"run:{train}" in made_by
    sealed_page.click(f"#facts button[data-node='run:{train}']")
    assert sealed_page.evaluate("document.getElementById('facts').getAttribute('data-node')") \
        == f"run:{train}"
    assert '"lr": 0.1' in sealed_page.text("#facts")
    assert sealed_page.evaluate("window.pwned === undefined")
    assert sealed_page.blocked == []
    assert sealed_page.errors == []


def test_hostile_user_text_is_shown_not_run(url: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            sealed_page: SealedPage) -> None:
    out = tmp_path / "all.html"
    code, summary = cli_json(capsys, "lineage", "--html", str(out), "--store", url)
    assert code == 0
    assert (summary["ref"], summary["nodes"]) == (None, 8)  # 5 versions, 3 runs
    _open(sealed_page, out)
    prep = _run_id(url, HOSTILE)
    tap = "id => { artifactstoreGraph.getElementById(id).emit('tap'); }"  # returns nothing
    sealed_page.evaluate(tap, f"run:{prep}")
    assert HOSTILE in sealed_page.text("#facts")  # shown as text
    sealed_page.evaluate(tap, "raw:v0")
    # the description as it is, the metadata as JSON (its quotes escaped)
    assert sealed_page.text("#facts").count("<script>window.pwned = 1</script>") == 2
    assert sealed_page.evaluate("document.querySelectorAll('#facts img, #facts script').length") \
        == 0
    assert sealed_page.evaluate("window.pwned === undefined")
    assert sealed_page.errors == []


def test_audit_html(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    sealed_page: SealedPage) -> None:
    out = tmp_path / "audit.html"
    code, summary = cli_json(capsys, "audit", "model:best", "--html", str(out), "--store", url)
    assert code == 0  # the deleted ancestor is a warning
    assert summary["format"] == "html"
    assert "deleted-ancestor" in {f["code"] for f in summary["flags"]}
    _open(sealed_page, out)
    assert sealed_page.evaluate("artifactstoreGraph.nodes().length") == 7
    assert _canvas_drawn(sealed_page)
    report = sealed_page.text("#report")
    assert "deleted-ancestor" in report
    assert "licence withdrawn" in report
    assert "purged-ancestor" in report
    assert "Integrity" in report
    assert sealed_page.text("#facts").startswith("model:v0")  # the audited version
    assert sealed_page.errors == []
    sealed_page.screenshot(tmp_path / "audit.png")


def test_html_refuses_format_and_output(url: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "lineage", "model", "--html", str(tmp_path / "a.html"),
                       "--format", "dot", "--store", url)
    assert code == 2
    assert "drop --format" in err
    code, _, err = cli(capsys, "lineage", "--store", url)
    assert code == 2
    assert "name a REF" in err
    code, out, _ = cli(capsys, "lineage", "--format", "json", "--store", url)
    assert code == 0
    assert len(json.loads(out)["nodes"]) == 8
