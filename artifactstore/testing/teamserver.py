"""The team server for tests: :func:`artifactstore.server.app.create_server_app` run by
uvicorn in a thread on 127.0.0.1 (any free port) until the block ends
(:func:`serving_team`), ``artifactstore serve`` in a child process
(:func:`serve_process`), and settings for an open server over a store URL.

Off the main thread uvicorn installs no signal handlers: ``should_exit`` stops it, and
the block waits for its shutdown (which closes a backing store the app opened).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from artifactstore.server.settings import SECRET_ENV, ServerSettings

__all__ = ["TEST_SECRET", "RequestCounter", "ServerProcess", "open_settings", "serve_process",
           "serving_team"]

TEST_SECRET = b"test-secret-test-secret-test-secret-0123"


def open_settings(store_url: str, *, role: str = "admin", **fields: Any) -> ServerSettings:
    """Settings of an open server (``[roles] everyone = role``) over ``store_url``."""
    return ServerSettings(store_url=store_url, secret=TEST_SECRET,
                          roles={"everyone": role}, **fields)


class RequestCounter:
    """ASGI middleware counting the HTTP requests that arrive (before any answer, so a
    client that got its answer finds its request counted), with their method and path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@contextmanager
def serving_team(settings: ServerSettings, *, counter: list[RequestCounter] | None = None,
                 tls: tuple[str, str] | None = None, **app_options: Any) -> Iterator[str]:
    """The server of ``settings`` (``create_server_app(settings, **app_options)``) until
    the block ends; yields its base URL ``http://127.0.0.1:PORT``. With ``counter``
    (a list), the app is wrapped in a :class:`RequestCounter` appended to it; with
    ``tls`` (certificate and key files) it serves HTTPS."""
    import uvicorn

    from artifactstore.server.app import create_server_app
    from artifactstore.server.run import bind

    bound = bind("127.0.0.1", 0, tls=tls)
    app: Any = create_server_app(settings, **app_options)
    if counter is not None:
        counter.append(RequestCounter(app))
        app = counter[-1]
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", lifespan="on", access_log=False,
        ssl_certfile=None if tls is None else tls[0], ssl_keyfile=None if tls is None else tls[1]))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [bound.sock]},
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the team server did not start")
        time.sleep(0.01)
    try:
        yield bound.url.rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        bound.sock.close()


class ServerProcess:
    """``artifactstore serve`` in a child process: its URL, its log file, its exit."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url.rstrip("/")
        self.log = log

    @property
    def store_url(self) -> str:
        """What clients pass as ``--store``."""
        return f"artifactstore+{self.url}/"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the graceful shutdown; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@contextmanager
def serve_process(store_url: str, log: Path, *, config: Path | None = None,
                  env: dict[str, str] | None = None, more: tuple[str, ...] = (),
                  timeout: float = 60) -> Iterator[ServerProcess]:
    """Start ``python -m artifactstore serve --store URL --port 0 --json *more`` (stderr,
    the access log, into ``log``), wait for the line naming its URL; stop it at the end."""
    argv = [sys.executable, "-m", "artifactstore", "serve", "--store", store_url,
            "--port", "0", "--json", *more]
    if config is not None:
        argv += ["--config", str(config)]
    environ = {**os.environ, SECRET_ENV: TEST_SECRET.decode(), **(env or {})}
    with open(log, "w", encoding="utf-8") as errors:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   env=environ, stdin=subprocess.DEVNULL)
    try:
        line = _first_line(process, timeout)
        if not line:
            process.wait(timeout)
            raise RuntimeError(f"the server did not start (exit {process.returncode}): "
                               f"{log.read_text(errors='replace')[-2000:]}")
        server = ServerProcess(process, json.loads(line)["url"], log)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line of ``process`` ("" if it ends first), within ``timeout``."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(
        process.stdout.readline() if process.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        process.kill()
        raise RuntimeError(f"the server printed nothing within {timeout} s")
    return found[0] if found else ""
