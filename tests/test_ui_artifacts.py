"""The artifact, version, file, diff, lineage and audit pages of the web UI
(artifactstore/ui/artifactpages.py, artifactviews.py, lineagepages.py, static/graph.js):
routes and their JSON twins through Starlette's TestClient, hostile names and paths, and
the pages in a real headless Chromium against a uvicorn server on 127.0.0.1.

The project: a dataset (v0 with an image, a text, a CSV, a file with a hostile name and a
hostile description; v1 changes, adds and removes files; alias ``prod`` moved from v0 to
v1) -> a train run -> a model -> an eval run with a hostile name; ``scratch`` with a
deleted, a purged and a live version; ``gone`` with every version deleted; ``wide`` with
one folder of 2,100 files (a split tree directory)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient
from test_ui_app import HOSTILE, SCREENSHOTS

import artifactstore
from artifactstore.testing.browser import SealedPage
from artifactstore.testing.uiserver import serving
from artifactstore.ui import artifactviews
from artifactstore.ui.app import create_app
from artifactstore.ui.web import SANDBOXED_FILE

HOSTILE_FILE = HOSTILE.replace("/", "_")  # a file name: no folder separator
WIDE = 2100
BIG_TEXT = 100_000


def _dataset(folder: Path) -> None:
    (folder / "sub").mkdir(parents=True)
    pixels = (np.arange(32 * 48 * 3) % 251).astype("uint8").reshape(32, 48, 3)
    Image.fromarray(pixels).save(folder / "cat.png")
    (folder / "notes.txt").write_text("hello " + HOSTILE + "\n")
    rows = "".join(f"{i},{HOSTILE if i == 3 else 'x'}\n" for i in range(80))
    (folder / "table.csv").write_text("id,label\n" + rows)
    (folder / "sub" / "old.txt").write_text("old")
    (folder / "sub" / "big.log").write_text("a" * BIG_TEXT)
    (folder / HOSTILE_FILE).write_text("hostile")
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg">'
                                        '<script>window.pwned = 3</script></svg>')


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The store's URL (``url``) and the ids of its runs by name."""
    root = tmp_path_factory.mktemp("arts")
    url = str(root / "store")
    data = root / "data"
    _dataset(data)
    with artifactstore.open(url) as store:
        with store.run(name="prepare", job_type="prep") as run:
            run.log_artifact(str(data), name="dataset", type="dataset", aliases=["prod"],
                             description=HOSTILE, metadata={HOSTILE: HOSTILE, "rows": 80})
        (data / "table.csv").write_text("id,label\n1,y\n")
        (data / "sub" / "old.txt").unlink()
        (data / "new.txt").write_text("new")
        store.log_artifact(str(data), name="dataset", type="dataset")
        store.set_alias("dataset:v1", "prod")
        model = root / "model"
        model.mkdir()
        (model / "weights.bin").write_bytes(b"\0" * 1000)
        with store.run(name="train", job_type="train") as run:
            run.use("dataset:prod")
            run.log_artifact(str(model), name="model", type="model")
        with store.run(name=HOSTILE, job_type="eval") as run:
            run.use("model:latest")
        scratch = root / "scratch"
        scratch.mkdir()
        for i in range(3):
            (scratch / "f.txt").write_text(str(i))
            store.log_artifact(str(scratch), name="scratch", type="tmp")
        store.delete("scratch:v0", reason="not needed")
        store.purge("scratch:v1", reason="leaked", wait=False)
        store.log_artifact(str(scratch), name="gone", type="tmp")
        store.delete("gone:v0")
        wide = root / "wide" / "many"
        wide.mkdir(parents=True)
        for i in range(WIDE):
            (wide / f"f{i:05d}.txt").write_text(str(i))
        store.log_artifact(str(root / "wide"), name="wide", type="dataset")
        return {"url": url, **{run.name or "": run.run_id for run in store.runs()}}


@pytest.fixture(scope="module")
def store(ids: dict[str, str]) -> Iterator[artifactstore.Store]:
    with artifactstore.open(ids["url"]) as opened:
        yield opened


@pytest.fixture
def client(store: artifactstore.Store) -> TestClient:
    return TestClient(create_app(store))


def _twin(client: TestClient, path: str) -> dict[str, Any]:
    """The JSON of a page, checked equal at /api/... and at ?format=json."""
    answer = client.get("/api" + path)
    assert answer.status_code == 200, answer.text
    joiner = "&" if "?" in path else "?"
    assert client.get(path + joiner + "format=json").json() == answer.json()
    html = client.get(path)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    data: dict[str, Any] = answer.json()
    return data


# --- routes ------------------------------------------------------------------------


def test_artifacts_list_marks_or_hides_deleted(client: TestClient) -> None:
    data = _twin(client, "/p/default/artifacts")
    rows = {a["name"]: a for a in data["artifacts"]}
    assert sorted(rows) == ["dataset", "model", "scratch", "wide"]  # gone: no live version
    assert data["hidden"] == 1
    assert rows["dataset"] | {"size": 0, "created": ""} == {
        "name": "dataset", "type": "dataset", "versions": 2, "all_versions": 2,
        "newest": "v1", "aliases": ["latest", "prod"], "size": 0, "created": "",
        "deleted": False}
    assert (rows["scratch"]["versions"], rows["scratch"]["all_versions"]) == (1, 3)
    shown = {a["name"]: a for a in _twin(client, "/p/default/artifacts?deleted=1")["artifacts"]}
    assert shown["gone"]["deleted"] is True
    assert shown["gone"]["versions"] == 0
    page = client.get("/p/default/artifacts?deleted=1").text
    assert 'class="mark deleted"' in page
    assert "hide deleted artifacts" in page
    assert "show deleted artifacts" in client.get("/p/default/artifacts").text


def test_artifact_page_versions_states_runs_and_alias_history(
        client: TestClient, ids: dict[str, str]) -> None:
    data = _twin(client, "/p/default/artifacts/dataset")
    v0, v1 = data["versions"]
    assert (v0["label"], v0["run"], v0["files"], v0["aliases"]) == \
        ("v0", ids["prepare"], 8, [])
    assert v1["aliases"] == ["latest", "prod"]
    assert v1["run"] is None
    assert len(v0["short"]) == 12
    assert v0["digest"].startswith(v0["short"])
    history = data["aliases"]["prod"]
    assert [(e["target"], e["previous"], e["forced"]) for e in history] == \
        [(0, None, False), (1, 0, False)]
    assert data["live"] == ["v0", "v1"]
    page = client.get("/p/default/artifacts/dataset").text
    assert f'href="/p/default/runs/{ids["prepare"]}"' in page
    assert 'action="/p/default/diff"' in page
    scratch = _twin(client, "/p/default/artifacts/scratch")
    states = [(v["label"], v["state"], (v["state_reason"] or "").split(" (")[0])
              for v in scratch["versions"]]
    assert states == [("v0", "deleted", "not needed"), ("v1", "purged", "leaked"),
                      ("v2", "live", "")]
    page = client.get("/p/default/artifacts/scratch").text
    assert 'class="mark deleted"' in page
    assert 'class="mark purged"' in page
    assert client.get("/api/p/default/artifacts/nosuch").status_code == 404
    assert client.get("/api/p/default/artifacts/bad%20name").status_code == 400


def test_version_page_facts_runs_and_previews(client: TestClient, ids: dict[str, str]) -> None:
    data = _twin(client, "/p/default/artifacts/dataset/v0")
    assert (data["ref"], data["description"]) == ("dataset:v0", HOSTILE)
    assert data["metadata"] == {HOSTILE: HOSTILE, "rows": 80}
    assert data["made_by"] == {"id": ids["prepare"], "label": "prepare", "status": "finished"}
    assert data["used_by"] == []
    names = [(i["name"], i["kind"]) for i in data["items"]]
    assert names == [(HOSTILE_FILE, "file"), ("cat.png", "file"), ("drawing.svg", "file"),
                     ("notes.txt", "file"), ("sub", "folder"), ("table.csv", "file"),
                     ("weights.bin", "file")]
    previews = {p["path"]: p for p in data["previews"]}
    assert sorted(previews) == ["cat.png", "notes.txt", "table.csv"]
    assert previews["cat.png"]["url"] == "/p/default/artifacts/dataset/v0/files/cat.png"
    assert previews["notes.txt"]["text"] == "hello " + HOSTILE + "\n"
    table = previews["table.csv"]
    assert table["columns"] == ["id", "label"]
    assert len(table["rows"]) == artifactviews.TABLE_ROWS
    assert table["truncated"] is True
    assert table["rows"][3] == ["3", HOSTILE]
    big = _twin(client, "/p/default/artifacts/dataset/v0?preview=sub/big.log")
    (text,) = big["previews"]
    assert len(text["text"]) == artifactviews.TEXT_BYTES
    assert text["truncated"] is True
    assert client.get("/api/p/default/artifacts/dataset/v0?preview=weights.bin").status_code == 400
    # an alias in place of vN; the model's page names the run that made it and the user
    prod = _twin(client, "/p/default/artifacts/dataset/prod")
    assert prod["ref"] == "dataset:v1"
    assert [r["id"] for r in prod["used_by"]] == [ids["train"]]
    model = _twin(client, "/p/default/artifacts/model/latest")
    assert model["made_by"]["id"] == ids["train"]
    assert [r["label"] for r in model["used_by"]] == [HOSTILE]
    page = client.get("/p/default/artifacts/model/v0").text
    assert f'href="/p/default/runs/{ids["train"]}"' in page
    assert 'href="/p/default/audit/model%3Av0"' in page
    # a deleted version answers 404 with how to restore it; a missing one 404
    answer = client.get("/api/p/default/artifacts/scratch/v0")
    assert answer.status_code == 404
    assert "restore" in answer.json()["message"]
    assert client.get("/api/p/default/artifacts/dataset/v7").status_code == 404
    assert client.get("/api/p/default/artifacts/dataset/nosuchalias").status_code == 404


def test_big_folders_are_listed_a_page_at_a_time(client: TestClient) -> None:
    top = _twin(client, "/p/default/artifacts/wide/v0")
    assert top["items"] == [{"path": "many", "name": "many", "kind": "folder",
                             "size": sum(len(str(i)) for i in range(WIDE)), "files": WIDE}]
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = _twin(client, f"/p/default/artifacts/wide/v0?folder=many&offset={offset}")
        items = page["items"]
        assert len(items) <= artifactviews.PAGE_SIZE
        seen += [i["path"] for i in items]
        offset = page["next_offset"]
    assert seen == [f"many/f{i:05d}.txt" for i in range(WIDE)]
    html = client.get("/p/default/artifacts/wide/v0?folder=many").text
    assert 'id="next-page"' in html
    assert html.count('<tr data-path="many/') == artifactviews.PAGE_SIZE
    assert client.get("/api/p/default/artifacts/wide/v0?folder=nosuch").status_code == 404
    assert client.get("/api/p/default/artifacts/wide/v0?folder=many&offset=-1").status_code == 400
    assert client.get("/api/p/default/artifacts/wide/v0?folder=..").status_code == 400


def test_file_endpoint_types_ranges_and_hostile_paths(client: TestClient,
                                                      store: artifactstore.Store) -> None:
    base = "/p/default/artifacts/dataset/v0/files/"
    version = store.artifact("dataset:v0")
    png = client.get(base + "cat.png")
    assert png.status_code == 200
    assert png.content == version.open("cat.png").read()
    assert png.headers["content-type"] == "image/png"
    assert png.headers["x-content-type-options"] == "nosniff"
    assert client.get(base + "notes.txt").headers["content-type"] == "text/plain; charset=utf-8"
    blob = client.get(base + "weights.bin")
    assert blob.headers["content-type"] == "application/octet-stream"
    assert blob.headers["content-disposition"].startswith("attachment;")
    assert blob.content == bytes(range(256)) * 4
    svg = client.get(base + "drawing.svg")
    assert svg.headers["content-security-policy"] == SANDBOXED_FILE
    hostile = client.get(base + HOSTILE_FILE.replace("?", "%3F"))
    assert hostile.status_code == 200
    assert hostile.headers["content-type"] == "application/octet-stream"
    assert hostile.content == b"hostile"
    part = client.get(base + "weights.bin", headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, bytes(range(10, 20)))
    assert part.headers["content-range"] == "bytes 10-19/1024"
    tail = client.get(base + "weights.bin", headers={"Range": "bytes=-4"})
    assert tail.content == bytes(range(252, 256))
    outside = client.get(base + "weights.bin", headers={"Range": "bytes=5000-"})
    assert (outside.status_code, outside.headers["content-range"]) == (416, "bytes */1024")
    by_alias = client.get("/p/default/artifacts/dataset/prod/files/new.txt")
    assert by_alias.content == b"new"
    for bad in ("%2e%2e/%2e%2e/etc/passwd", "sub/%2e%2e/cat.png", "/etc/passwd", "cat.png%00",
                "a%00b"):
        answer = client.get(base + bad)
        assert answer.status_code in (400, 404), bad
        assert b"root:" not in answer.content
    assert client.get(base + "sub").status_code == 404  # a folder
    assert client.get(base + "nosuch.txt").status_code == 404
    assert client.get("/p/default/artifacts/scratch/v1/files/f.txt").status_code == 404


def test_diff_page_lists_changes_with_sizes(client: TestClient) -> None:
    data = _twin(client, "/p/default/diff?a=dataset:v0&b=dataset:v1")
    changes = {c["path"]: c for c in data["changes"]}
    assert changes["new.txt"] == {"path": "new.txt", "change": "added", "old_size": None,
                                  "new_size": 3}
    assert changes["sub/old.txt"]["change"] == "removed"
    assert (changes["table.csv"]["change"], changes["table.csv"]["new_size"]) == ("modified", 13)
    assert data["counts"] == {"added": 1, "removed": 1, "modified": 1}
    same = _twin(client, "/p/default/diff?a=dataset:prod&b=dataset:v1")  # prod is v1 now
    assert (same["a"], same["changes"]) == ("dataset:v1", [])
    assert "No differences" in client.get("/p/default/diff?a=dataset:v1&b=dataset:v1").text
    answer = client.get("/api/p/default/diff?a=dataset:v0")
    assert answer.status_code == 400
    assert "?a=name:vN&b=name:vM" in answer.json()["message"]
    assert client.get("/api/p/default/diff?a=dataset:v0&b=dataset:v9").status_code == 404


def test_lineage_and_audit_pages(client: TestClient, ids: dict[str, str]) -> None:
    graph = _twin(client, "/p/default/lineage")["graph"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert graph["base"] == "/p/default"
    # the app shows the state of the moment it is asked: no write time, so the same state
    # gives the same data (a time here once made this page's two twins differ by a second)
    assert re.fullmatch(r"project default · \d+ versions, \d+ runs", graph["subtitle"])
    assert nodes["scratch:v0"]["state"] == "deleted"
    assert nodes["scratch:v1"]["state"] == "purged"
    assert nodes[f"run:{ids['train']}"]["kind"] == "run"
    around = _twin(client, "/p/default/lineage?ref=model:v0&depth=1")["graph"]
    assert around["focus"] == "model:v0"
    assert {n["id"] for n in around["nodes"]} == {
        "model:v0", f"run:{ids['train']}", f"run:{ids[HOSTILE]}", "dataset:v1"}
    assert client.get("/api/p/default/lineage?depth=two").status_code == 400
    assert client.get("/api/p/default/lineage?ref=nosuch:v0").status_code == 404
    audit = _twin(client, "/p/default/audit/model:v0")
    assert audit["graph"]["kind"] == "audit"
    assert audit["graph"]["audit"]["ref"] == "model:v0"
    flags = audit["graph"]["audit"]["flags"]
    assert audit["ok"] is (not flags)
    assert {f["severity"] for f in flags} <= {"warning"}  # code state, from where tests run
    assert client.get("/api/p/default/audit/model:v0?sample=lots").status_code == 400
    assert client.get("/api/p/default/audit/nosuch:v0").status_code == 404
    page = client.get("/p/default/lineage").text
    assert '<script type="application/json" id="artifactstore-data">' in page
    assert '<script src="/static/graph.js">' in page


def test_hostile_strings_are_escaped(client: TestClient) -> None:
    for path in ("/p/default/artifacts/dataset/v0", "/p/default/artifacts/model/v0",
                 "/p/default/lineage", "/p/default/audit/dataset:v0",
                 "/p/default/artifacts/dataset/v0?folder=sub"):
        page = client.get(path).text
        assert HOSTILE not in page, path
        assert "<script>window.pwned" not in page, path
    page = client.get("/p/default/artifacts/dataset/v0").text
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page  # the description
    assert "<img src=x" not in page


def test_csv_preview_reads_tsv_and_quoted_cells() -> None:
    # the preview's parser is the csv module's: quoted commas and newlines stay in a cell
    text = io.StringIO('a,b\n"1,5","two\nlines"\n')
    assert list(csv.reader(text)) == [["a", "b"], ["1,5", "two\nlines"]]
    assert artifactviews.preview_kind("x/Y.TSV") == "table"
    assert artifactviews.preview_kind("x/.png") is None
    assert artifactviews.preview_kind("a.jpeg") == "image"


# --- in a real browser -------------------------------------------------------------


@pytest.fixture
def served(store: artifactstore.Store) -> Iterator[str]:
    """The UI of ``store`` served on 127.0.0.1 (artifactstore/testing/uiserver.py)."""
    with serving(store) as url:
        yield url


def _click_node(page: SealedPage, node: str) -> None:
    """A real mouse click on ``node`` of the cytoscape graph, where it is drawn."""
    x, y = page.evaluate("""id => {
        const box = document.getElementById('graph').getBoundingClientRect();
        const at = artifactstoreGraph.getElementById(id).renderedPosition();
        return [box.left + at.x, box.top + at.y];
    }""", node)
    page.page.mouse.click(x, y)


def test_pages_in_a_real_browser(served: str, ids: dict[str, str], sealed_page: SealedPage,
                                 tmp_path: Path) -> None:
    page = sealed_page
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)

    # the lineage graph: click the model, then the run that made it in the side panel
    page.open(served + "p/default/lineage")
    page.wait_ready()
    assert page.evaluate("artifactstoreGraph.nodes().length") >= 10
    assert page.evaluate("artifactstoreGraph.getElementById('scratch:v1').hasClass('purged')")
    assert page.evaluate("artifactstoreGraph.getElementById('scratch:v0').hasClass('deleted')")
    assert "purged" in page.text("#legend")
    _click_node(page, "model:v0")
    page.wait_for("() => document.getElementById('facts').dataset.node === 'model:v0'")
    page.screenshot(shots / "ui-lineage.png")
    assert (shots / "ui-lineage.png").stat().st_size > 10_000
    page.page.click("#facts [data-row='made by'] a")
    page.wait_ready("location.pathname.startsWith('/p/default/runs/')")
    assert page.evaluate("location.pathname") == f"/p/default/runs/{ids['train']}"

    # a version: the image loaded, the text and the CSV table shown as text
    page.open(served + "p/default/artifacts/dataset/v0")
    page.wait_ready()
    width = page.evaluate("document.querySelector('.preview-image img').naturalWidth")
    assert width == 48
    assert page.text(".preview-text pre") == "hello " + HOSTILE + "\n"
    assert page.evaluate("document.querySelectorAll('.preview-table tbody tr').length") == 50
    assert page.text(".preview-table tbody tr:nth-child(4) td:nth-child(2)") == HOSTILE
    assert page.text("#description") == HOSTILE
    assert f'"{HOSTILE.replace(chr(34), chr(92) + chr(34))}": ' in page.text("#metadata")
    assert HOSTILE_FILE in page.text("#files")
    assert page.evaluate("window.pwned === undefined")
    page.screenshot(shots / "ui-version.png", full_page=True)

    # the artifact: versions and alias history; its compare form opens the diff
    page.open(served + "p/default/artifacts/dataset")
    page.wait_ready()
    assert page.evaluate("document.querySelectorAll('#versions tbody tr').length") == 2
    page.screenshot(shots / "ui-artifact.png")
    page.page.click("#compare button[type=submit]")
    page.wait_ready("location.pathname === '/p/default/diff'")
    assert page.evaluate("[...document.querySelectorAll('#changes tbody tr')]"
                         ".map(r => r.dataset.path)") == ["new.txt", "sub/old.txt", "table.csv"]

    # the audit page, from the version page's link
    page.open(served + "p/default/artifacts/model/v0")
    page.wait_ready()
    page.page.click("#audit-link")
    page.wait_ready("location.pathname.startsWith('/p/default/audit/')")
    assert "Findings" in page.text("#report")
    assert page.evaluate("artifactstoreGraph.nodes().length") >= 3
    assert page.evaluate("window.pwned === undefined")
    assert page.blocked == []
    assert page.errors == []
