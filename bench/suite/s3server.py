"""A moto S3 server on 127.0.0.1 that counts, on the server side, the requests it serves.

moto's WSGI app (``DomainDispatcherApplication(create_backend_app)``) is served by a
werkzeug thread of this process, behind :class:`CountingApp`, a middleware that
counts every request by *kind*: its HTTP method, except that a GET on a bucket that
lists keys (no key in the path, only listing parameters in the query) is a ``LIST``.
It also counts requests by *shape* (kind and path with ids replaced by ``*``, see
:func:`request_shape`), so a count can be read as "which requests", and adds up
request body bytes (``bytes_in``, what clients uploaded) and response body bytes
(``bytes_out``, what they downloaded).

Requests the benchmark makes itself (creating the bucket, resetting moto, listing
stored bytes) carry the :data:`HARNESS_HEADER` header and moto's own ``/moto-api``
paths are never counted, so a count is exactly what the tool under test sent.
Clients must use path-style addressing (``http://127.0.0.1:PORT/bucket/key``), which
every client here does for an IP endpoint.
"""

from __future__ import annotations

import contextlib
import re
import threading
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

HARNESS_HEADER = "X-Bench-Harness"
KINDS = ("GET", "PUT", "POST", "HEAD", "DELETE", "LIST")
# Query parameters of ListObjects (v1 and v2); a bucket GET with any other one
# (?location, ?versioning, ?uploads, ...) is not a key listing.
_LIST_PARAMS = frozenset({"list-type", "prefix", "delimiter", "marker", "continuation-token",
                          "start-after", "max-keys", "encoding-type", "fetch-owner"})

_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


_FANOUT = re.compile(r"[0-9a-f]{2}")
_ID = re.compile(r"[0-9a-f]{8,}|[0-9]{4,}")


def request_shape(kind: str, path: str, query: str) -> str:
    """What a request touched, without ids: ``PUT prefix/objects/packs/*/*``.

    The bucket is left out; runs of 8+ hex characters or 4+ digits, and path
    segments of two hex characters (fan-out folders), become ``*``; a listing shows
    the prefix it asked for.
    """
    if kind == "LIST":
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        target = params.get("prefix", "") + ("" if params.get("delimiter") else " (deep)")
    else:
        target = path.lstrip("/").partition("/")[2]
    return f"{kind} " + "/".join("*" if _FANOUT.fullmatch(p) else _ID.sub("*", p)
                                 for p in target.split("/"))


def request_kind(method: str, path: str, query: str) -> str:
    """``LIST`` for a key listing of a bucket, else the method (upper case)."""
    method = method.upper()
    if method != "GET":
        return method
    key = path.lstrip("/").partition("/")[2]
    params = {name for name, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
    if not key and params <= _LIST_PARAMS:  # also "GET /" (ListBuckets)
        return "LIST"
    return "GET"


class _CountedBody:
    """A response iterable that adds the bytes it yields to its app's ``bytes_out``."""

    def __init__(self, body: Iterable[bytes], app: CountingApp) -> None:
        self._body, self._app = body, app

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            with self._app.lock:
                self._app.bytes_out += len(chunk)
            yield chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class CountingApp:
    """WSGI middleware: count requests by kind and body bytes both ways."""

    def __init__(self, app: _WSGIApp) -> None:
        self._app = app
        self.lock = threading.Lock()
        self.kinds: Counter[str] = Counter()
        self.shapes: Counter[str] = Counter()
        self.bytes_in = self.bytes_out = 0

    def reset(self) -> None:
        with self.lock:
            self.kinds.clear()
            self.shapes.clear()
            self.bytes_in = self.bytes_out = 0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            by_kind = {k: self.kinds.get(k, 0) for k in KINDS}
            by_kind.update({k: n for k, n in self.kinds.items() if k not in KINDS})
            return {"requests": sum(self.kinds.values()), "by_kind": by_kind,
                    "by_shape": dict(self.shapes.most_common()),
                    "bytes_in": self.bytes_in, "bytes_out": self.bytes_out}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")

        def respond(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            # moto sends "Server: amazon.com" and werkzeug adds its own; strict HTTP
            # parsers (aiohttp's pure-Python one) reject the duplicate
            kept = [(name, value) for name, value in headers if name.lower() != "server"]
            return start_response(status, kept, *rest)

        harness = "HTTP_" + HARNESS_HEADER.upper().replace("-", "_")
        if environ.get(harness) or path.startswith("/moto-api"):
            return self._app(environ, respond)
        query = environ.get("QUERY_STRING", "")
        kind = request_kind(environ.get("REQUEST_METHOD", "GET"), path, query)
        shape = request_shape(kind, path, query)
        with self.lock:
            self.kinds[kind] += 1
            self.shapes[shape] += 1
            self.bytes_in += int(environ.get("CONTENT_LENGTH") or 0)
        return _CountedBody(self._app(environ, respond), self)


@dataclass
class CountingS3Server:
    """A running counting moto server; ``counts()`` is what clients sent since ``reset``."""

    endpoint_url: str
    region: str = "us-east-1"
    access_key: str = "bench-access-key"  # moto accepts any credentials
    secret_key: str = "bench-secret-key"
    _app: CountingApp | None = field(default=None, repr=False)

    def counts(self) -> dict[str, Any]:
        assert self._app is not None
        return self._app.snapshot()

    def reset_counts(self) -> None:
        assert self._app is not None
        self._app.reset()

    def _harness(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(f"{self.endpoint_url}{path}", method=method,
                                         headers={HARNESS_HEADER: "1"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body: bytes = response.read()
            return body

    def reset_state(self, bucket: str) -> None:
        """Drop every bucket and object moto holds (frees its memory), create ``bucket``."""
        self._harness("POST", "/moto-api/reset")
        self._harness("PUT", f"/{bucket}")
        self.reset_counts()

    def stored_bytes(self, bucket: str, prefix: str = "") -> tuple[int, int]:
        """Total size and number of the objects under ``prefix`` (uncounted listing)."""
        total = objects = 0
        token: str | None = None
        ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self._harness("GET", f"/{bucket}?"
                                               + urllib.parse.urlencode(query)))
            for size in root.findall("s3:Contents/s3:Size", ns):
                total += int(size.text or 0)
                objects += 1
            token = root.findtext("s3:NextContinuationToken", None, ns)
            if root.findtext("s3:IsTruncated", "false", ns) != "true" or not token:
                return total, objects


@contextlib.contextmanager
def counting_moto_server() -> Iterator[CountingS3Server]:
    """Serve moto's S3 on ``127.0.0.1:<free port>`` from a thread; stop it on exit."""
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

    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="bench-moto-s3", daemon=True)
    thread.start()
    try:
        yield CountingS3Server(endpoint_url=f"http://127.0.0.1:{server.server_port}", _app=app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
