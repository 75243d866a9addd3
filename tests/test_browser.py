"""The test kit's browser (artifactstore/testing/browser.py): a real headless Chromium
that reaches only the page it opens, reports console errors, runs JS, clicks and shoots."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from artifactstore.testing.browser import SealedPage, find_chromium

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="https://cdn.example.invalid/x.css"></head>
<body><button id="b" onclick="document.getElementById('out').textContent = 'clicked'">go</button>
<p id="out">not yet</p>
<img src="http://203.0.113.9/pixel.png">
<script>console.log("fine"); fetch("https://example.com/beacon").catch(() => {});</script>
</body></html>"""


def test_chromium_is_debians() -> None:
    assert Path(find_chromium(install=False)).name in ("chromium", "chromium-browser")


def test_a_file_page_reaches_no_network(sealed_page: SealedPage, tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(PAGE)
    sealed_page.open(page)
    sealed_page.wait_for("document.readyState === 'complete'")
    assert sealed_page.text("#out") == "not yet"
    sealed_page.click("#b")
    assert sealed_page.evaluate("document.getElementById('out').textContent") == "clicked"
    hosts = " ".join(sealed_page.blocked)
    assert "cdn.example.invalid" in hosts
    assert "203.0.113.9" in hosts
    sealed_page.wait_for("1")  # let the fetch settle
    # a blocked request is an error the page shows: a page that needs no network has none
    assert any("ERR_BLOCKED_BY_CLIENT" in e for e in sealed_page.errors), sealed_page.errors
    shot = sealed_page.screenshot(tmp_path / "shot.png")
    assert shot.startswith(b"\x89PNG")
    assert (tmp_path / "shot.png").stat().st_size > 1000


def test_console_errors_are_collected(sealed_page: SealedPage, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<script>console.error('boom'); undefinedFunction();</script>")
    sealed_page.open(page)
    text = "\n".join(sealed_page.errors)
    assert "boom" in text
    assert "undefinedFunction" in text


#: the local server answers /held.js only once this is set (or after 30 s)
HELD = threading.Event()


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text("<title>served</title><p id='x'>hello</p>")
    (tmp_path / "other.html").write_text("other")
    (tmp_path / "held.js").write_text("window.held = false;")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            if self.path == "/held.js":
                HELD.wait(30)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    HELD.set()  # a test that failed while holding it: server_close joins the handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_local_server_page(sealed_page: SealedPage, local_server: str) -> None:
    sealed_page.open(local_server + "/index.html")
    assert sealed_page.text("#x") == "hello"
    assert sealed_page.evaluate("fetch('/other.html').then(r => r.text())") == "other"
    with pytest.raises(ValueError, match="local pages only"):
        sealed_page.open("http://example.com/")


def test_wait_ready_waits_through_a_next_page_that_has_no_body_yet(
        sealed_page: SealedPage, local_server: str, tmp_path: Path) -> None:
    """CI saw ``document.body.dataset`` throw once: a click's navigation had committed
    while the next page's head was still loading. The same state, held on purpose."""
    (tmp_path / "a.html").write_text('<body data-ready="true"><a id="go" href="/b.html">b</a>')
    (tmp_path / "b.html").write_text('<head><script src="/held.js"></script></head>'
                                     '<body data-ready="true">b</body>')
    HELD.clear()
    sealed_page.open(local_server + "/a.html")
    sealed_page.wait_ready()
    sealed_page.click("#go")
    sealed_page.page.wait_for_url("**/b.html", wait_until="commit")
    assert sealed_page.evaluate("document.body") is None  # the parser waits for held.js
    with pytest.raises(Exception, match="Cannot read properties of null"):
        sealed_page.wait_for("() => document.body.dataset.ready === 'true'")
    release = threading.Timer(0.5, HELD.set)  # while wait_ready below is already polling
    release.start()
    try:
        sealed_page.wait_ready("location.pathname === '/b.html'")
    finally:
        release.join()
    assert sealed_page.evaluate("window.held") is False
    # the one error is the plain predicate's above; wait_ready's polls threw none
    assert sealed_page.errors == ["page error: Cannot read properties of null (reading 'dataset')"]
