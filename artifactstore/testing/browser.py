"""A real headless Chromium for the tests: Debian's ``chromium`` driven by Playwright.

Vocabulary:

- **system Chromium**: the ``chromium`` binary Debian installs (``/usr/bin/chromium``).
  Playwright launches it through ``executable_path``; ``playwright install`` (which
  downloads a browser build of its own) is never run. :func:`find_chromium` installs
  the Debian package with ``apt-get`` when it is missing and the caller is root, as
  the test set-up must (docs/guide.md §9, "Running the tests").
- **sealed page**: a :class:`SealedPage` answers only the requests of the one origin it
  was opened on (the file itself for ``file://``, the ``http://127.0.0.1:PORT``
  server otherwise) and aborts every other request, so a test proves that a page
  needs no network. Aborted URLs are kept in ``blocked``.
- **console errors**: messages of type ``error`` on the console, uncaught page
  errors and failed requests of the allowed origin, in ``errors``; a test asserts
  the list is empty.

Why Playwright over Selenium: it routes every request through ``page.route`` (the
network block above is three lines), reports console messages and page errors as
events, and needs no ``chromium-driver`` of a matching version; its pip wheel ships
the driver it talks through, not a browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from artifactstore.testing.debian import ensure_tool

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route

__all__ = ["READY", "SealedPage", "chromium", "find_chromium"]

CANDIDATES: Final = ("chromium", "chromium-browser")
#: a UI page has rendered; ``?.`` because a navigating page has no ``<body>`` yet
RENDERED: Final = "document.body?.dataset.ready === 'true'"
#: the same as a function, not an expression: Playwright evaluates a bare expression
#: with eval(), which the UI's Content-Security-Policy refuses (as it should)
READY: Final = f"() => {RENDERED}"



def find_chromium(*, install: bool = True) -> str:
    """The path of the system Chromium, installed with apt-get when missing (as root)."""
    return ensure_tool(CANDIDATES, "chromium", install=install)


@contextmanager
def chromium(executable: str | None = None) -> Iterator[Browser]:
    """A headless Chromium (the system one), closed on exit."""
    from playwright.sync_api import sync_playwright

    path = executable or find_chromium()
    with sync_playwright() as playwright:
        # --no-sandbox: the suite runs as root in a container, where Chromium's sandbox
        # cannot start; the pages are our own files.
        browser = playwright.chromium.launch(
            executable_path=path, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


class SealedPage:
    """One page of ``browser`` that may reach only the origin it opens (module docstring)."""

    def __init__(self, browser: Browser, *, width: int = 1280, height: int = 800) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           service_workers="block")
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self._allowed: str | None = None
        self._also: set[str] = set()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("requestfailed", self._on_failed)
        self.context.route("**/*", self._route)

    def close(self) -> None:
        self.context.close()

    def __enter__(self) -> SealedPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _origin(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme == "file":
            return url.split("#", 1)[0]
        return f"{parts.scheme}://{parts.netloc}"

    def _route(self, route: Route, request: Request) -> None:
        url = request.url
        allowed = any(
            url.split("#", 1)[0] == origin or url.startswith(origin + "/")
            for origin in ({self._allowed} if self._allowed else set()) | self._also
        )
        if allowed or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _on_failed(self, request: Request) -> None:
        if request.url not in self.blocked:
            self.errors.append(f"request failed: {request.url} ({request.failure})")

    def allow(self, url: str) -> None:
        """Let the page also reach the origin of ``url`` (a sign-in provider on 127.0.0.1
        that the page is redirected to and back from)."""
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"tests reach local servers only, not {url}")
        self._also.add(self._origin(url))

    def open(self, target: str | os.PathLike[str]) -> None:
        """Load a file (a path or ``file://`` URL) or an ``http://127.0.0.1`` URL."""
        url = str(target)
        if "://" not in url:
            url = Path(url).resolve().as_uri()
        parts = urlsplit(url)
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"tests open local pages only, not {url}")
        if parts.scheme not in ("file", "http"):
            raise ValueError(f"open a file:// or http://127.0.0.1 page, not {url}")
        self._allowed = self._origin(url)
        self.page.goto(url, wait_until="load")

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """The value of JS ``script`` (an expression or a function of ``arg``)."""
        return self.page.evaluate(script, arg)

    def wait_for(self, script: str, timeout: float = 15.0) -> Any:
        """Wait until JS expression ``script`` is truthy; its value."""
        return self.page.wait_for_function(script, timeout=timeout * 1000).json_value()

    def wait_ready(self, where: str | None = None, timeout: float = 15.0) -> None:
        """Wait until the UI page has rendered (``<body data-ready="true">``) and, after a
        click that navigates, until JS condition ``where`` on ``location`` holds too: the
        old page stays ready until the next one replaces it, and the next one has no
        ``<body>`` while its head is parsed (a plain ``document.body.dataset`` throws)."""
        self.wait_for(f"() => {RENDERED} && ({where})" if where else READY, timeout)

    def click(self, selector: str) -> None:
        self.page.click(selector)

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def screenshot(self, path: str | os.PathLike[str], *, full_page: bool = False) -> bytes:
        data: bytes = self.page.screenshot(path=str(path), full_page=full_page)
        return data
