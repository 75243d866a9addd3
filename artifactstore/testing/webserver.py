"""Web servers on 127.0.0.1 for tests.

:func:`static_web_server` answers ``Range`` and sends ETags, as real object servers
do (references rely on both). :func:`stdlib_http_server` is ``python -m http.server``
itself, a real subprocess, which answers neither ``Range`` nor ``If-*``: what a user
may well serve a public store with.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

__all__ = ["serving_handler", "static_web_server", "stdlib_http_server"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    #: answer folder URLs with an HTML index, like nginx ``autoindex on``
    listings = False

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _target(self) -> Path | None:
        path = Path(self.translate_path(self.path))
        return path if path.is_file() else None

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        if self.listings and Path(self.translate_path(self.path)).is_dir():
            super().do_GET()  # the standard library's directory index
            return
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        target = self._target()
        if target is None:
            self.send_error(404)
            return
        data = target.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start, end, status = 0, len(data), 200
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            start = int(first or 0)
            end = min(len(data), int(last) + 1 if last else len(data))
            status = 206
        body = data[start:end]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if not head:
            self.wfile.write(body)


class _ListingHandler(_Handler):
    listings = True


@contextlib.contextmanager
def serving_handler(handler: Any) -> Iterator[str]:
    """A threading HTTP server of ``handler`` (a ``BaseHTTPRequestHandler`` class or a
    factory of one) on 127.0.0.1, a free port, until the block ends; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def static_web_server(root: Path, *, listings: bool = False) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) until the block ends; yields the base URL.

    With ``listings`` folders are answered with an HTML index of their entries, as
    web servers with directory indexes do (what reading a store over HTTP needs).
    """
    handler = partial(_ListingHandler if listings else _Handler, directory=str(root))
    with serving_handler(handler) as url:
        yield url


@contextlib.contextmanager
def stdlib_http_server(folder: Path, log_path: Path, *,
                       ready_path: str = "config") -> Iterator[str]:
    """``python -m http.server`` serving ``folder`` on 127.0.0.1 (a free port) until the
    block ends, its output in ``log_path``; yields the base URL once ``ready_path``
    answers (a condition, not a guess at how long starting takes)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
             "--directory", str(folder)], stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"{url}/{ready_path}", timeout=5) as answer:
                        if answer.status != 200:
                            raise AssertionError(f"http.server answered {answer.status}")
                    break
                if server.poll() is not None:
                    raise AssertionError("http.server did not start; see " + str(log_path))
                if time.monotonic() > deadline:
                    raise AssertionError("http.server did not answer within 30 s")
                time.sleep(0.05)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)
