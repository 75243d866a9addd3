"""Filtering the runs table by config, summary, status and tags (ui/runfilter.py): the
condition language, the runs page's ``where=`` (JSON twin, pager links, bad input), and
the filter form in a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

import artifactstore
from artifactstore.core.errors import InvalidInputError
from artifactstore.testing.browser import SealedPage
from artifactstore.testing.uiserver import serving
from artifactstore.ui.app import create_app
from artifactstore.ui.runfilter import Condition, matches, parse_conditions

COLUMNS = ["name", "tags", "status", "config.lr", "config.optimizer", "config.amp",
           "summary.loss"]


@pytest.mark.parametrize(("where", "expected"), [
    ("config.lr>=0.01", ["a", "b"]),
    ("config.lr=0.010", ["b"]),                      # as numbers
    ("config.optimizer=adam, summary.loss<0.5", ["a"]),
    ("config.optimizer!=adam", ["b", "c"]),          # missing counts as different
    ("name~RES", ["b"]),                             # contains, any case
    ("tags=sweep", ["a", "b"]),
    ("tags~swe", ["a", "b"]),
    ("tags!=sweep", ["c"]),
    ("config.amp=true", ["a"]),
    ("summary.loss>=0", ["a", "b"]),                 # a text or missing cell is no number
    (" , ", ["a", "b", "c"]),
])
def test_conditions(where: str, expected: list[str]) -> None:
    rows: list[dict[str, Any]] = [
        {"name": "a", "tags": ["sweep"], "config.lr": 0.1, "config.optimizer": "adam",
         "config.amp": True, "summary.loss": 0.2},
        {"name": "b-resnet", "tags": ["sweep", "x"], "config.lr": 0.01,
         "config.optimizer": "sgd", "summary.loss": 0.7},
        {"name": "c", "tags": [], "config.lr": "n/a", "summary.loss": "nan"},
    ]
    conditions = parse_conditions(where, COLUMNS)
    assert [r["name"][0] for r in rows if matches(r, conditions)] == [e[0] for e in expected]


@pytest.mark.parametrize(("where", "message"), [
    ("config.lr", "cannot read the condition"),
    ("config.nosuch=1", "no column 'config.nosuch'"),
    ("name<abc", "compares numbers"),
    ("config.lr>inf", "compares numbers"),
    (",".join(["name=a"] * 21), "at most 20"),
])
def test_bad_conditions_say_what_to_write(where: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_conditions(where, COLUMNS)


@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers()),
       st.floats(allow_nan=False, allow_infinity=False))
def test_order_conditions_agree_with_python(cell: float, bound: float) -> None:
    text = repr(bound)
    for op, holds in (("<", cell < bound), ("<=", cell <= bound), (">", cell > bound),
                      (">=", cell >= bound), ("=", cell == bound), ("!=", cell != bound)):
        assert matches({"config.lr": cell}, [Condition("config.lr", op, text)]) is holds


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[artifactstore.Store]:
    url = str(tmp_path_factory.mktemp("filter") / "store")
    with artifactstore.open(url) as opened:
        for i, (lr, optimizer) in enumerate([(0.3, "adam"), (0.01, "sgd"), (0.1, "adam"),
                                             (0.001, "sgd")]):
            with opened.run(name=f"run-{i}", job_type="train", config={
                    "lr": lr, "optimizer": optimizer}, tags=["sweep"] if i < 3 else []) as run:
                run.log({"loss": lr * 2})
        yield opened


def test_where_on_the_runs_page(store: artifactstore.Store) -> None:
    client = TestClient(create_app(store))
    table = client.get("/api/p/default/", params={"where": "config.optimizer=adam",
                                                  "sort": "config.lr"}).json()
    assert [r["name"] for r in table["rows"]] == ["run-2", "run-0"]
    assert table["total"] == 2
    assert table["filters"]["where"] == "config.optimizer=adam"
    assert table["query"]["where"] == "config.optimizer=adam"  # pager links keep it
    both = client.get("/api/p/default/", params={"where": "summary.loss<0.5, tags=sweep"})
    assert [r["name"] for r in both.json()["rows"]] == ["run-1", "run-2"]
    bad = client.get("/api/p/default/", params={"where": "config.nosuch=1"})
    assert bad.status_code == 400
    assert "no column 'config.nosuch'" in bad.json()["message"]
    page = client.get("/p/default/", params={"where": "config.lr>1"})
    assert "No runs match these filters" in page.text


def test_the_filter_form_in_a_real_browser(store: artifactstore.Store,
                                          sealed_page: SealedPage, tmp_path: Path) -> None:
    page = sealed_page
    with serving(store) as url:
        page.open(url)
        page.wait_ready()
        assert page.evaluate("document.querySelectorAll('#runs tbody tr').length") == 4
        page.page.fill("input[name=where]", "config.lr>=0.01, config.optimizer=sgd")
        page.page.click("form.filters button[type=submit]")
        page.wait_ready("location.search.includes('where=')")
        names = page.evaluate("[...document.querySelectorAll('#runs tbody tr')]"
                              ".map(r => r.cells[2].textContent.trim())")
        assert names == ["run-1"]
        assert page.evaluate("document.querySelector('input[name=where]').value") \
            == "config.lr>=0.01, config.optimizer=sgd"
        assert page.errors == []
        assert page.blocked == []
