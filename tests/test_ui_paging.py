"""The runs table in pages (artifactstore/ui/views.py ``runs_table``, runs.html, ui.js): a
project of more runs than one page shows ``PAGE_ROWS`` of them, sorted and paged by the
server, through Starlette's TestClient and in a real headless Chromium (uvicorn on
127.0.0.1). Why pages: a browser needs about 1.5 s for 1,000 rows x 26 columns
(docs/benchmarks.md, "Web UI at scale")."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

import artifactstore
from artifactstore.testing.browser import SealedPage
from artifactstore.testing.uiserver import serving
from artifactstore.ui import views
from artifactstore.ui.app import create_app

RUNS = views.PAGE_ROWS + 3


def _lr(index: int) -> float:
    return ((index * 37) % RUNS) / 1000  # every value once, not in start order


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[artifactstore.Store]:
    url = str(tmp_path_factory.mktemp("paging") / "store")
    with artifactstore.open(url) as opened:
        for index in range(RUNS):
            with opened.run(name=f"run-{index:03d}", job_type="train", capture_code=False,
                            config={"lr": _lr(index)}) as run:
                run.log({"loss": 1.0 - _lr(index)})
        yield opened


@pytest.fixture
def client(store: artifactstore.Store) -> TestClient:
    return TestClient(create_app(store))


def test_pages_of_the_json_twin(client: TestClient) -> None:
    first = client.get("/api/p/default/?limit=40").json()
    assert (first["total"], first["offset"], first["limit"]) == (RUNS, 0, 40)
    assert (first["previous"], first["next"]) == (None, 40)
    assert len(first["rows"]) == 40
    last = client.get("/api/p/default/?limit=40&offset=80").json()
    assert len(last["rows"]) == RUNS - 80
    assert (last["previous"], last["next"]) == (40, None)
    default = client.get("/api/p/default/").json()
    assert len(default["rows"]) == views.PAGE_ROWS
    assert default["next"] == views.PAGE_ROWS
    assert default["query"] == {}

    # sorted by the server over every run, then paged
    pages = [client.get(f"/api/p/default/?sort=config.lr&order=desc&limit=40&offset={o}")
             .json()["rows"] for o in (0, 40, 80)]
    lrs = [row["config.lr"] for page in pages for row in page]
    assert lrs == sorted((_lr(i) for i in range(RUNS)), reverse=True)
    # the columns are those of every run, not of the page's runs only
    assert client.get("/api/p/default/?limit=1").json()["columns"] == default["columns"]


def test_bad_pages_say_what_to_do(client: TestClient) -> None:
    for query in ("limit=0", "limit=1001", "limit=abc", "offset=-1", "offset=1e3",
                  "limit=%D9%A3"):  # an Arabic-Indic digit: isdigit() says yes
        answer = client.get(f"/api/p/default/?{query}")
        assert answer.status_code == 400, query
        message = answer.json()["message"]
        assert "limit" in message or "offset" in message
    assert client.get("/api/p/default/?offset=5000").json()["rows"] == []


def test_pager_links_keep_filters_and_sort(client: TestClient) -> None:
    html = client.get("/p/default/?sort=config.lr&order=desc&job_type=train&limit=40"
                      "&offset=40").text
    assert f"runs 41\u201380 of {RUNS}" in html  # an en dash
    links = {}
    for rel in ("prev", "next"):
        start = html.index(f'rel="{rel}" href="') + len(f'rel="{rel}" href="')
        href = html[start:html.index('"', start)].replace("&amp;", "&")
        links[rel] = parse_qs(urlsplit(href).query)
    assert links["next"] == {"sort": ["config.lr"], "order": ["desc"], "job_type": ["train"],
                             "limit": ["40"], "offset": ["80"]}
    assert links["prev"]["offset"] == ["0"]
    assert 'aria-sort="descending"' in html
    small = client.get(f"/p/default/?limit={RUNS}").text
    assert 'class="pager"' not in small
    assert 'data-paged="false"' in small


@pytest.fixture
def served(store: artifactstore.Store) -> Iterator[str]:
    """The UI of ``store`` served on 127.0.0.1 (artifactstore/testing/uiserver.py)."""
    with serving(store) as url:
        yield url


def _lrs(page: SealedPage) -> list[float]:
    values: list[float] = page.evaluate("""() => {
        const heads = [...document.querySelectorAll('#runs thead th')];
        const i = heads.findIndex(h => h.textContent.trim().startsWith('config.lr'));
        return [...document.querySelectorAll('#runs tbody tr')]
            .map(r => JSON.parse(r.cells[i].dataset.value));
    }""")
    return values


def test_sorting_a_paged_table_in_a_real_browser(served: str,
                                                sealed_page: SealedPage) -> None:
    page = sealed_page
    page.open(served + "p/default/")
    page.wait_ready()
    assert page.evaluate("() => document.getElementById('runs').dataset.paged") == "true"
    assert len(_lrs(page)) == views.PAGE_ROWS

    every = sorted(_lr(i) for i in range(RUNS))
    with page.page.expect_navigation():
        page.click("#runs thead button[data-column='config.lr']")
    page.wait_ready()
    assert parse_qs(urlsplit(page.page.url).query) == {"sort": ["config.lr"],
                                                       "order": ["asc"]}
    assert _lrs(page) == every[:views.PAGE_ROWS]

    with page.page.expect_navigation():
        page.click("#runs thead button[data-column='config.lr']")  # again: descending
    page.wait_ready()
    assert _lrs(page) == every[::-1][:views.PAGE_ROWS]

    with page.page.expect_navigation():
        page.click(".pager a[rel='next']")
    page.wait_ready()
    assert _lrs(page) == every[::-1][views.PAGE_ROWS:]
    assert page.errors == []
    assert page.blocked == []


def test_a_short_table_still_sorts_in_the_browser(served: str,
                                                  sealed_page: SealedPage) -> None:
    page = sealed_page
    page.open(served + f"p/default/?limit={RUNS}")  # every run on one page
    page.wait_ready()
    assert page.evaluate("() => document.getElementById('runs').dataset.paged") == "false"
    before = page.page.url
    page.click("#runs thead button[data-column='config.lr']")
    assert page.page.url == before  # sorted here, no navigation
    assert _lrs(page) == sorted(_lr(i) for i in range(RUNS))
    assert page.errors == []
