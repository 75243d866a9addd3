"""``artifactstore ui`` (artifactstore/ui/app.py, views.py, access.py, server.py): the
routes through Starlette's TestClient, the token rule, hostile names, the command as a
real process, and the pages in a real headless Chromium against a uvicorn server on
127.0.0.1 that may reach nothing else."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import artifactstore
from artifactstore.testing.browser import SealedPage
from artifactstore.testing.uiserver import chart_drawn, serving
from artifactstore.ui import views
from artifactstore.ui.access import COOKIE, token_ok, token_required
from artifactstore.ui.app import create_app
from artifactstore.ui.server import Listener, listen

HOSTILE = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
#: the guide's screenshots are taken by this test when this names a folder (e.g.
#: ARTIFACTSTORE_SCREENSHOTS=docs/images pytest tests/test_ui_app.py); otherwise they go to
#: the test's temporary folder, so a test run never changes the checkout
SCREENSHOTS = os.environ.get("ARTIFACTSTORE_SCREENSHOTS")
LRS = (0.3, 0.01, 0.1)
STEPS = 2500


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three finished train runs (lr 0.3, 0.01, 0.1; loss and accuracy over 2,500 steps),
    a failed eval run whose name, tag, config and metric name are hostile, with an
    infinite config value and a NaN metric."""
    url = str(tmp_path_factory.mktemp("ui") / "store")
    with artifactstore.open(url) as store:
        for lr in LRS:
            with store.run(name=f"train-lr{lr}", job_type="train", tags=["sweep"],
                           config={"lr": lr, "optimizer": {"name": "adam"}}) as run:
                for step in range(STEPS):
                    run.log({"loss": math.exp(-step * lr / 200) + 0.03 * math.sin(step / 25),
                             "accuracy": 1 - math.exp(-step * lr / 300), "phase": "fit"})
        with pytest.raises(RuntimeError, match="diverged"):
            _hostile_run(store)
    return url


def _hostile_run(store: artifactstore.Store) -> None:
    with store.run(name=HOSTILE, job_type="eval", tags=[HOSTILE],
                   config={HOSTILE: HOSTILE, "threshold": math.inf}) as run:
        for step in range(5):
            run.log({HOSTILE: float(step), "score": math.nan})
        raise RuntimeError("diverged")


@pytest.fixture(scope="module")
def store(url: str) -> Iterator[artifactstore.Store]:
    with artifactstore.open(url) as opened:
        yield opened


@pytest.fixture
def client(store: artifactstore.Store) -> TestClient:
    return TestClient(create_app(store))


def _ids(store: artifactstore.Store) -> dict[str, str]:
    return {run.name or "": run.run_id for run in store.runs()}


# --- routes ------------------------------------------------------------------------


def test_runs_table_json_twin_sort_and_filters(client: TestClient) -> None:
    table = client.get("/api/p/default/").json()
    assert table == client.get("/p/default/?format=json").json()
    assert len(table["rows"]) == 4
    assert table["columns"][:6] == ["id", "name", "job_type", "status", "started", "tags"]
    assert {"config.lr", "config.optimizer", "summary.loss", "summary.accuracy"} \
        <= set(table["columns"])
    lrs = [r["config.lr"] for r in client.get("/api/p/default/?sort=config.lr").json()["rows"]]
    assert lrs == [0.01, 0.1, 0.3, None]  # a run without the key comes last
    lrs = [r["config.lr"]
           for r in client.get("/api/p/default/?sort=config.lr&order=desc").json()["rows"]]
    assert lrs == [0.3, 0.1, 0.01, None]
    assert [r["status"] for r in client.get("/api/p/default/?status=failed").json()["rows"]] \
        == ["failed"]
    assert len(client.get("/api/p/default/?tag=sweep").json()["rows"]) == 3
    assert [r["job_type"] for r in client.get("/api/p/default/?job_type=eval").json()["rows"]] \
        == ["eval"]
    assert client.get("/api/p/default/?job_type=nosuch").json()["rows"] == []
    html = client.get("/p/default/?sort=config.lr")
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in html.headers["content-security-policy"]
    order = [html.text.index(f"train-lr{lr}") for lr in (0.01, 0.1, 0.3)]
    assert order == sorted(order)


def test_bad_queries_say_what_to_do(client: TestClient) -> None:
    answer = client.get("/api/p/default/?sort=config.nosuch")
    assert answer.status_code == 400
    assert "use one of the columns" in answer.json()["message"]
    assert client.get("/api/p/default/?order=sideways").status_code == 400
    assert client.get("/api/p/default/?status=bogus").status_code == 400
    page = client.get("/p/default/runs/nosuchrun")
    assert page.status_code == 404
    assert "nosuchrun" in page.text
    assert client.get("/api/p/default/runs/nosuchrun").json()["error"] == "NotFoundError"
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/vendor/uPlot.LICENSE").status_code == 404  # not served
    assert client.get("/static/vendor/uPlot.iife.min.js").status_code == 200


def test_run_page_and_downsampled_series(client: TestClient, store: artifactstore.Store) -> None:
    run_id = _ids(store)["train-lr0.1"]
    data = client.get(f"/api/p/default/runs/{run_id}").json()
    assert data == client.get(f"/p/default/runs/{run_id}?format=json").json()
    assert data["run"]["config"] == {"lr": 0.1, "optimizer": {"name": "adam"}}
    assert sorted(data["metrics"]) == ["accuracy", "loss"]  # the string metric is left out
    loss = data["metrics"]["loss"]
    assert loss["points"] == STEPS
    assert len(loss["x"]) <= views.MAX_POINTS
    assert loss["x"] == sorted(loss["x"])
    history = [row.values["loss"] for row in store.run_history(run_id)]
    assert max(loss["y"]) == max(history)  # the extremes survive
    assert min(loss["y"]) == min(history)
    html = client.get(f"/p/default/runs/{run_id}").text
    for part in ('id="config"', 'id="summary"', 'id="env"', 'id="inputs"', 'id="outputs"'):
        assert part in html


def test_downsample_keeps_short_series_and_bucket_extremes() -> None:
    assert views.downsample([0, 1, 2], [5, 6, 7], 10) == ([0, 1, 2], [5, 6, 7])
    xs = list(range(10_000))
    ys = [float(x % 100) for x in xs]
    ys[5_000] = 1e6
    dx, dy = views.downsample(xs, ys, 1000)
    assert len(dx) <= 1000
    assert dx == sorted(dx)
    assert 1e6 in dy
    assert 0.0 in dy


def test_hostile_names_are_escaped(client: TestClient, store: artifactstore.Store) -> None:
    html = client.get("/p/default/").text
    assert HOSTILE not in html
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html
    page = client.get(f"/p/default/runs/{_ids(store)[HOSTILE]}").text
    assert HOSTILE not in page
    assert "</script><img" not in page  # not even inside the JSON for the charts
    # the JSON data (metrics, labels, live state), uPlot, ours and media.js
    assert page.count("<script") == 6


def test_non_finite_values_are_strict_json(client: TestClient, store: artifactstore.Store) -> None:
    # JSON.parse refuses the NaN and Infinity that Python's json writes by default
    data = json.loads(client.get(f"/api/p/default/runs/{_ids(store)[HOSTILE]}").text,
                      parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))
    assert data["run"]["config"]["threshold"] == "inf"
    assert data["run"]["summary"]["score"] == "nan"
    assert sorted(data["metrics"]) == [HOSTILE]  # a metric with no finite value has no chart
    rows = json.loads(client.get("/api/p/default/?sort=summary.score").text,
                      parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))["rows"]
    assert rows[0]["summary.score"] == "nan"
    assert "NaN" not in client.get("/p/default/").text


# --- the token rule ----------------------------------------------------------------


def test_token_rule() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert not token_required(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org", "10.0.0.1"):
        assert token_required(host), host
    assert token_ok(None, None)
    assert token_ok("s3cret", "s3cret")
    assert not token_ok("s3cret", None)
    assert not token_ok("s3cret", "")
    assert not token_ok("s3cret", "s3cre")
    listener = listen("127.0.0.1", 0)  # (tests bind nothing but loopback)
    listener.sock.close()
    assert listener.token is None
    assert listener.url == f"http://127.0.0.1:{listener.port}/"
    shown = Listener(listener.sock, "::", 8800, "a-b_c")
    assert shown.url == "http://[::]:8800/?token=a-b_c"


def test_app_refuses_requests_without_the_token(store: artifactstore.Store) -> None:
    client = TestClient(create_app(store, token="s3cret"))
    for path in ("/", "/api/p/default/", f"/p/default/runs/{_ids(store)['train-lr0.1']}",
                 "/static/ui.js", "/static/vendor/uPlot.iife.min.js"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "token" in answer.text
        assert client.get(path, params={"token": "wrong"}).status_code == 403
    answer = client.get("/api/p/default/", params={"token": "s3cret"})
    assert answer.status_code == 200
    assert answer.cookies.get(COOKIE) == "s3cret"
    # the cookie lets the pages' links and assets through without the query
    assert client.get("/static/ui.js").status_code == 200
    client.cookies.clear()
    assert client.get("/static/ui.js").status_code == 403


def test_loopback_app_refuses_other_host_names(store: artifactstore.Store) -> None:
    client = TestClient(create_app(store, loopback=True), base_url="http://127.0.0.1:8000")
    assert client.get("/api/p/default/").status_code == 200
    assert client.get("/api/p/default/", headers={"host": "localhost:8000"}).status_code == 200
    # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1
    assert client.get("/api/p/default/", headers={"host": "evil.example:8000"}).status_code == 403


# --- the command -------------------------------------------------------------------


def test_ui_command_serves_until_ctrl_c(url: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "artifactstore", "ui", "--store", url, "--port", "0", "--json"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as process:
        try:
            assert process.stdout is not None
            started = json.loads(process.stdout.readline())
            assert started["host"] == "127.0.0.1"
            assert started["token"] is False
            assert started["url"] == f"http://127.0.0.1:{started['port']}/"
            with urllib.request.urlopen(started["url"] + "api/p/default/", timeout=30) as answer:
                assert answer.status == 200
                assert len(json.loads(answer.read())["rows"]) == 4
            process.send_signal(signal.SIGINT)  # Ctrl-C
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("module", ["starlette", "uvicorn", "jinja2"])
def test_missing_extra_names_it(url: str, module: str) -> None:
    # A real process where the module cannot be imported (a None entry in sys.modules).
    script = (f"import sys; sys.modules[{module!r}] = None; "
              "from artifactstore.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", script, "ui", "--check", "--store", url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 9
    assert done.stderr.strip().splitlines() == [
        "artifactstore: error: the web UI needs starlette, uvicorn and jinja2: "
        "pip install 'artifactstore[ui]'"]


# --- in a real browser -------------------------------------------------------------


@pytest.fixture
def served(store: artifactstore.Store) -> Iterator[str]:
    """The UI of ``store`` served on 127.0.0.1 (artifactstore/testing/uiserver.py)."""
    with serving(store) as url:
        yield url


def _column(page: SealedPage, name: str) -> list[object]:
    values: list[object] = page.evaluate("""name => {
        const heads = [...document.querySelectorAll('#runs thead th')];
        const i = heads.findIndex(h => h.textContent.trim().startsWith(name));
        return [...document.querySelectorAll('#runs tbody tr')]
            .map(r => JSON.parse(r.cells[i].dataset.value));
    }""", name)
    return values


def test_pages_in_a_real_browser(served: str, store: artifactstore.Store,
                                 sealed_page: SealedPage, tmp_path: Path) -> None:
    page = sealed_page
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    page.open(served)
    page.wait_ready()
    assert page.evaluate("document.querySelectorAll('#runs tbody tr').length") == 4
    page.click("#runs th button[data-column='config.lr']")
    assert _column(page, "config.lr") == [0.01, 0.1, 0.3, None]
    page.click("#runs th button[data-column='config.lr']")
    assert _column(page, "config.lr") == [0.3, 0.1, 0.01, None]
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(shots / "ui-runs.png")
    assert (shots / "ui-runs.png").stat().st_size > 10_000  # a page, not a blank
    assert page.evaluate("window.pwned === undefined")
    assert HOSTILE in page.text("#runs")  # shown as text

    page.page.click("#runs tbody tr:first-child td:nth-child(3) a")  # the name: lr 0.3
    page.wait_ready("location.pathname.startsWith('/p/default/runs/')")
    assert page.evaluate("location.pathname") == f"/p/default/runs/{_ids(store)['train-lr0.3']}"
    metrics = page.evaluate("[...document.querySelectorAll('.chart')].map(b => b.dataset.metric)")
    assert metrics == ["accuracy", "loss"]
    for metric in metrics:
        page.wait_for(f"() => artifactstoreCharts[{json.dumps(metric)}] !== undefined")
        assert chart_drawn(page, metric), metric
    assert '"lr": 0.3' in page.text("#config")
    page.screenshot(shots / "ui-run.png")

    page.open(served + f"p/default/runs/{_ids(store)[HOSTILE]}")
    page.wait_ready()
    assert chart_drawn(page, HOSTILE)
    assert page.evaluate("window.pwned === undefined")

    page.open(served)
    page.wait_ready()
    page.click("#runs th button[data-column='summary.score']")
    assert _column(page, "summary.score") == ["nan", None, None, None]  # NaN sorts as text
    assert page.blocked == []
    assert page.errors == []


def test_home_sends_to_the_project_and_pages_say_their_server_time(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (302, "/p/default/")
    timing = client.get("/api/p/default/").headers["server-timing"]
    assert timing.startswith("handler;dur=")
    assert float(timing.split("=")[1]) >= 0
