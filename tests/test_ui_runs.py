"""The runs part of the web UI (artifactstore/ui/projectpages.py, runpages.py, views.py,
workspace.py, static/ui.js): the projects page over ``Store.projects``, an unknown
project refused, runs compared, the run page's x = step | time, links to its inputs and
outputs, its code and code diff, and the live refresh of a running run; through
Starlette's TestClient and in a real headless Chromium against uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cli_calls import cli, cli_json
from git_repos import committed_repo, git, isolate_git
from starlette.testclient import TestClient

import artifactstore
from artifactstore.local.identity import load_or_create_identity
from artifactstore.maintenance.projects import create_project, project_listing
from artifactstore.runs.run import Run
from artifactstore.testing.browser import READY, SealedPage
from artifactstore.testing.liverun import live_run
from artifactstore.testing.uiserver import chart_drawn, serving
from artifactstore.ui import views
from artifactstore.ui.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage

#: see test_ui_app.py; resolved now, as the fixture moves the working directory
SCREENSHOTS = (Path(os.environ["ARTIFACTSTORE_SCREENSHOTS"]).resolve()
               if os.environ.get("ARTIFACTSTORE_SCREENSHOTS") else None)
HOSTILE = "<img src=x onerror=\"window.pwned = 1\">"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A store with project ``default`` (runs ``base`` and ``tuned`` started in a git
    repository with ``save_code``, different uncommitted edits, different configs and
    metrics; ``tuned`` used ``data:v0`` and logged ``model:v0``), a public project
    ``vision`` with one run and a private project ``secret`` of ANOTHER identity. The
    user of the tests is a third identity (ARTIFACTSTORE_CONFIG_DIR)."""
    root = tmp_path_factory.mktemp("ui-runs")
    url = str(root / "store")
    with pytest.MonkeyPatch.context() as patch:
        isolate_git(patch)
        repo = committed_repo(root / "code", {"train.py": "lr = 0.1\n", "util.py": "SEED = 1\n"})
        patch.chdir(repo)
        patch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(root / "owner"))
        with artifactstore.open(url, create=True) as store:
            (repo / "util.py").write_text("SEED = 2\n")
            with store.run(name="base", job_type="train", save_code=True,
                           config={"lr": 0.1, "batch": 32}) as run:
                for step in range(300):
                    run.log({"loss": math.exp(-step / 100), "accuracy": step / 300})
            (repo / "util.py").write_text("SEED = 3\n")
            (root / "data.txt").write_text("rows\n")
            store.log_artifact(str(root / "data.txt"), name="data")
            with store.run(name="tuned", job_type="train", save_code=True,
                           config={"lr": 0.05, "batch": 32, HOSTILE: 1}) as run:
                run.use("data:v0")
                for step in range(200):
                    run.log({"loss": math.exp(-step / 50), "grad_norm": 1 / (step + 1)})
                (root / "model.bin").write_bytes(b"weights")
                run.log_artifact(str(root / "model.bin"), name="model")
        with artifactstore.open(url, "vision") as store, store.run(name="resnet") as run:
            run.log({"loss": 1.0})
        create_project("secret", url, visibility="private")
        with artifactstore.open(url, "secret") as store, store.run(name="hidden") as run:
            run.log({"loss": 2.0})
        patch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(root / "me"))  # not a member of secret
        load_or_create_identity()
        patch.chdir(root)  # the UI runs outside the repository
        with artifactstore.open(url) as store:
            ids = {run.name or "": run.run_id for run in store.runs()}
        yield {"url": url, "repo": str(repo), **ids}


@pytest.fixture(scope="module")
def store(world: dict[str, str]) -> Iterator[artifactstore.Store]:
    with artifactstore.open(world["url"]) as opened:
        yield opened


@pytest.fixture
def client(store: artifactstore.Store) -> TestClient:
    return TestClient(create_app(store))


# --- projects ----------------------------------------------------------------------


def test_projects_lists_each_with_visibility_access_and_counts(
        client: TestClient, store: artifactstore.Store, world: dict[str, str]) -> None:
    found = {p.project: p for p in store.projects()}
    assert sorted(found) == ["default", "secret", "vision"]
    assert (found["default"].visibility, found["default"].readable) == ("public", True)
    assert (found["default"].runs, found["default"].artifacts) == (2, 3)  # data, model, code
    assert (found["secret"].visibility, found["secret"].readable) == ("private", False)
    assert found["secret"].runs == 1  # counted off the listing, nothing decrypted
    assert project_listing(world["url"]) == list(found.values())
    answer = client.get("/api/projects").json()["projects"]
    assert [(p["project"], p["readable"], p["base"]) for p in answer] == [
        ("default", True, "/p/default"), ("secret", False, "/p/secret"),
        ("vision", True, "/p/vision")]
    html = client.get("/projects").text
    assert '<a href="/p/vision/">vision</a>' in html
    assert '<a href="/p/secret/">' not in html  # locked: listed, not linked
    assert "locked: you are not a member" in html
    assert client.get("/projects").headers["server-timing"].startswith("handler;dur=")


def test_project_ls_command(world: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, found = cli_json(capsys, "project", "ls", "--store", world["url"])
    assert code == 0
    assert [(p["project"], p["visibility"], p["readable"], p["runs"]) for p in found["projects"]] \
        == [("default", "public", True, 2), ("secret", "private", False, 1),
            ("vision", "public", True, 1)]
    code, out, _ = cli(capsys, "project", "ls", "--store", world["url"])
    assert code == 0
    assert "secret  private, locked: you are not a member  1 run(s), 0 artifact(s)" in out


def test_unknown_project_is_a_404_naming_the_projects(client: TestClient) -> None:
    answer = client.get("/api/p/nosuch/")
    assert answer.status_code == 404
    assert answer.json()["message"] == ("this store holds no project 'nosuch'; it holds: "
                                        "default, secret, vision")
    page = client.get("/p/nosuch/runs/x")
    assert page.status_code == 404
    assert "it holds: default, secret, vision" in page.text
    assert client.get("/api/p/vision/").json()["rows"][0]["name"] == "resnet"
    denied = client.get("/api/p/secret/")
    assert denied.status_code == 403
    assert "not a member" in denied.json()["message"]


# --- compare -----------------------------------------------------------------------


def test_compare_marks_differing_config_and_overlays_metrics(
        client: TestClient, world: dict[str, str]) -> None:
    base, tuned = world["base"], world["tuned"]
    data = client.get(f"/api/p/default/compare?runs={base[:-3]},{tuned}").json()
    assert [r["label"] for r in data["runs"]] == ["base", "tuned"]
    config = {row["key"]: row for row in data["config"]}
    assert config["lr"] == {"key": "lr", "values": [0.1, 0.05], "differs": True}
    assert config["batch"]["differs"] is False
    assert config[HOSTILE] == {"key": HOSTILE, "values": [None, 1], "differs": True}
    assert sorted(data["metrics"]) == ["accuracy", "grad_norm", "loss"]
    loss = data["metrics"]["loss"]
    assert [len(s["x"]) for s in loss] == [300, 200]
    assert all(len(s["t"]) == len(s["x"]) == len(s["y"]) for s in loss)
    assert all(s["t"] == sorted(s["t"]) and s["t"][0] >= 0 for s in loss)
    assert data["metrics"]["accuracy"][1] is None  # tuned logged no accuracy
    summary = {row["key"]: row for row in data["summary"]}
    assert summary["loss"]["differs"] is True
    html = client.get(f"/p/default/compare?runs={base},{tuned}").text
    assert HOSTILE not in html
    assert 'class="differs" data-key="lr"' in html


@pytest.mark.parametrize(("query", "message"), [
    ("", "compare 2 to 10 runs"),
    ("runs=onlyone", "compare 2 to 10 runs"),
    ("runs=" + ",".join(f"r{i}" for i in range(11)), "compare 2 to 10 runs"),
    ("runs=BASE,BASE_PREFIX", "the same run twice"),
])
def test_compare_refuses_bad_selections(client: TestClient, world: dict[str, str],
                                        query: str, message: str) -> None:
    query = query.replace("BASE_PREFIX", world["base"][:-2]).replace("BASE", world["base"])
    answer = client.get(f"/api/p/default/compare?{query}")
    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert client.get(f"/p/default/compare?{query}").status_code == 400


def test_compare_of_an_unknown_run_is_a_404(client: TestClient, world: dict[str, str]) -> None:
    answer = client.get(f"/api/p/default/compare?runs={world['base']},nosuchrun")
    assert answer.status_code == 404
    assert "nosuchrun" in answer.json()["message"]


# --- the run page ------------------------------------------------------------------


def test_run_page_has_time_links_and_code(client: TestClient, world: dict[str, str]) -> None:
    data = client.get(f"/api/p/default/runs/{world['tuned']}").json()
    loss = data["metrics"]["loss"]
    assert len(loss["t"]) == len(loss["x"]) == 200
    assert loss["t"] == sorted(loss["t"])
    assert data["inputs"] == [{"ref": "data:v0", "name": "data", "number": 0}]
    assert {"ref": "model:v0", "name": "model", "number": 0} in data["outputs"]
    code = data["code"]
    assert code["commit"] == git(Path(world["repo"]), "rev-parse", "HEAD")
    assert (code["branch"], code["dirty"]) == ("main", True)
    assert "+SEED = 3" in code["patch"]
    assert code["entry"] is None or isinstance(code["entry"], str)
    assert {o["label"] for o in data["others"]} == {"base"}
    html = client.get(f"/p/default/runs/{world['tuned']}").text
    assert '<a href="/p/default/artifacts/data/v0">data:v0</a>' in html
    assert '<a href="/p/default/artifacts/model/v0">model:v0</a>' in html
    assert '<span class="add">+SEED = 3</span>' in html
    assert 'name="xmode" value="time"' in html


def test_code_diff_of_two_runs(client: TestClient, world: dict[str, str]) -> None:
    answer = client.get(f"/api/p/default/runs/{world['base']}/diff-code",
                        params={"other": world["tuned"]})
    diff = answer.json()["diff"]
    assert diff["same_commit"] is True
    # a diff of the two saved patches
    assert "\n-+SEED = 2\n++SEED = 3\n" in diff["patch_diff"]
    html = client.get(f"/p/default/runs/{world['base']}/diff-code?other={world['tuned']}").text
    assert '<span class="del">' in html
    missing = client.get(f"/api/p/default/runs/{world['base']}/diff-code")
    assert missing.status_code == 400
    assert "?other=" in missing.json()["message"]


def test_run_page_since_gives_only_newer_rows(client: TestClient, world: dict[str, str]) -> None:
    whole = client.get(f"/api/p/default/runs/{world['base']}").json()
    assert whole["last_step"] == 299
    newer = client.get(f"/api/p/default/runs/{world['base']}?since=289").json()
    assert newer["metrics"]["loss"]["x"] == [float(s) for s in range(290, 300)]
    assert newer["last_step"] == 299
    assert "code" not in newer  # a poll asks for what changes only
    assert client.get(f"/api/p/default/runs/{world['base']}?since=-1").status_code == 400
    assert client.get(f"/api/p/default/runs/{world['base']}?since=x").status_code == 400


def test_run_ids_parse() -> None:
    assert views.run_ids(" a, b ,a,") == ["a", "b"]
    with pytest.raises(artifactstore.ArtifactStoreError, match="compare 2 to 10"):
        views.run_ids("a,a")


# --- in a real browser -------------------------------------------------------------


@pytest.fixture
def served(store: artifactstore.Store) -> Iterator[str]:
    """The UI of ``store`` served on 127.0.0.1 (artifactstore/testing/uiserver.py)."""
    with serving(store) as url:
        yield url


def _x_range(page: SealedPage, metric: str) -> list[float]:
    found: list[float] = page.evaluate("""metric => {
        const xs = artifactstoreCharts[metric].data[0];
        return [xs[0], xs[xs.length - 1]];
    }""", metric)
    return found


def test_compare_and_projects_in_a_real_browser(served: str, world: dict[str, str],
                                                sealed_page: SealedPage, tmp_path: Path) -> None:
    page = sealed_page
    shots = SCREENSHOTS or tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    page.open(served + "p/default/")
    page.wait_ready()
    assert page.evaluate("document.getElementById('compare').disabled")
    for name in ("base", "tuned"):
        page.click(f"#runs tr[data-run='{world[name]}'] input.pick")
    assert page.text("#compare") == "Compare 2"
    page.click("#compare")
    page.wait_ready("location.pathname === '/p/default/compare'")
    assert page.evaluate("location.search") == f"?runs={world['base']},{world['tuned']}"
    metrics = page.evaluate("[...document.querySelectorAll('.chart')].map(b => b.dataset.metric)")
    assert metrics == ["accuracy", "grad_norm", "loss"]
    for metric in metrics:
        assert page.evaluate(f"artifactstoreCharts[{json.dumps(metric)}].data.length") == 3
        assert chart_drawn(page, metric), metric
    labels = page.evaluate("artifactstoreCharts.loss.series.slice(1).map(s => s.label)")
    assert labels == ["base", "tuned"]
    assert _x_range(page, "loss") == [0, 299]
    assert page.evaluate("document.querySelector('#config tr.differs').dataset.key") \
        in ("lr", HOSTILE)
    page.screenshot(shots / "ui-compare.png", full_page=True)
    page.click("input[name='xmode'][value='time']")
    page.wait_for("() => document.body.dataset.xmode === 'time'")
    start, end = _x_range(page, "loss")
    assert 0 <= start < end < 299  # seconds since each run started, not steps
    assert chart_drawn(page, "loss")
    assert page.evaluate("window.pwned === undefined")

    page.open(served + "projects")
    page.wait_ready()
    rows = page.evaluate("[...document.querySelectorAll('#projects tbody tr')]"
                         ".map(r => [r.dataset.project, r.className])")
    assert rows == [["default", ""], ["secret", "locked"], ["vision", ""]]
    page.screenshot(shots / "ui-projects.png")
    page.click("#projects a[href='/p/vision/']")
    page.wait_ready("location.pathname === '/p/vision/'")
    assert page.evaluate("document.querySelectorAll('#runs tbody tr').length") == 1
    assert page.blocked == []
    assert page.errors == []


def test_run_page_and_code_diff_in_a_real_browser(served: str, world: dict[str, str],
                                                  sealed_page: SealedPage) -> None:
    page = sealed_page
    page.open(served + f"p/default/runs/{world['tuned']}")
    page.wait_ready()
    step_end = _x_range(page, "loss")[1]
    page.click("input[name='xmode'][value='time']")
    page.wait_for("() => document.body.dataset.xmode === 'time'")
    assert _x_range(page, "loss")[1] < step_end
    page.page.select_option("#diff-other", world["base"])
    page.wait_for("() => document.getElementById('code-diff').dataset.loaded")
    assert "+SEED = 2" in page.text("#code-diff")  # tuned -> base
    assert page.evaluate("document.querySelectorAll('#code-diff .add').length") > 0
    page.click("#outputs a[href='/p/default/artifacts/model/v0']")  # the artifacts pages
    page.wait_ready("location.pathname === '/p/default/artifacts/model/v0'")
    assert page.errors == []
    assert page.blocked == []


def _losses(start: int, stop: int) -> Callable[[Run], None]:
    def log(run: Run) -> None:
        for step in range(start, stop):  # 1,000 rows: one full metrics segment, written now
            run.log({"loss": 1 / (step + 1)})
    return log


def test_live_run_is_followed_in_a_real_browser(tmp_path: Path,
                                                sealed_page: SealedPage) -> None:
    """A run logs steps in a thread while the browser watches its page and the runs
    table; the charts grow, then the status reads finished."""
    url = str(tmp_path / "store")
    page = sealed_page
    with live_run(url, "live", _losses(0, 1000), _losses(1000, 2000)) as live, \
            artifactstore.open(url) as store, serving(store) as address:
        run_id = store.runs()[0].run_id
        page.open(address + f"p/default/runs/{run_id}")
        page.wait_ready()
        assert page.text("#run-status") == "running"
        before = page.evaluate("artifactstoreCharts.loss.data[0].length")
        assert before == 1000
        live.go_on()
        page.wait_for(f"() => artifactstoreCharts.loss.data[0].length > {before}",
                      timeout=60)
        assert '"loss"' in page.text("#summary")  # the live summary: last values
        # the runs table in a second tab of the same sealed context
        table = page.context.new_page()

        def console_error(message: ConsoleMessage) -> None:
            if message.type == "error":
                page.errors.append(message.text)

        table.on("console", console_error)
        table.goto(address + "p/default/", wait_until="load")
        table.wait_for_function(READY)
        assert table.evaluate("document.body.dataset.live") == "true"
        live.finish()
        page.wait_for("() => document.getElementById('run-status').textContent "
                      "=== 'finished'", timeout=60)
        assert page.evaluate("document.body.dataset.live") == "false"
        table.wait_for_function("() => document.querySelector('#runs tbody tr')"
                                ".dataset.status === 'finished'", timeout=60_000)
        assert table.evaluate("document.body.dataset.live") == "false"
        assert "finished" in table.inner_text("#runs tbody tr")
        assert page.errors == []
        assert page.blocked == []
