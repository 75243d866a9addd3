"""A small forwarding HTTP proxy on 127.0.0.1 for tests: absolute-form requests to plain
``http://`` origins are forwarded one by one, ``CONNECT`` opens a byte tunnel (for
``https://`` origins). With ``credentials`` it answers 407 unless the request carries
them as ``Proxy-Authorization: Basic``. It records what it saw."""

from __future__ import annotations

import base64
import http.client
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ProxyLog:
    """The request lines the proxy served (``CONNECT host:port`` or ``METHOD URL``)."""

    seen: list[str] = field(default_factory=list)
    refused: int = 0


class _Handler(socketserver.StreamRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(65536).decode("latin-1").strip()
            if not line:
                return
            method, target, _ = line.split(" ", 2)
            headers = self._headers()
            if not self._allowed(headers):
                self.server.log.refused += 1
                self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"test\"\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                continue
            self.server.log.seen.append(f"{method} {target}")
            if method == "CONNECT":
                self._tunnel(target)
                return
            self._forward(method, target, headers)

    def _headers(self) -> dict[str, str]:
        found: dict[str, str] = {}
        while True:
            line = self.rfile.readline(65536).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                return found
            name, _, value = line.partition(":")
            found[name.strip().lower()] = value.strip()

    def _allowed(self, headers: dict[str, str]) -> bool:
        wanted = self.server.credentials
        if wanted is None:
            return True
        given = headers.get("proxy-authorization", "")
        return given == "Basic " + base64.b64encode(wanted.encode()).decode()

    def _forward(self, method: str, target: str, headers: dict[str, str]) -> None:
        parts = urlsplit(target)
        body = self.rfile.read(int(headers.get("content-length", "0") or 0))
        sent = {k: v for k, v in headers.items()
                if k not in ("proxy-authorization", "proxy-connection", "connection")}
        origin = http.client.HTTPConnection(parts.hostname or "", parts.port or 80,
                                            timeout=60)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            origin.request(method, path, body=body or None, headers=sent)
            answer = origin.getresponse()
            data = answer.read()
        finally:
            origin.close()
        out = [f"HTTP/1.1 {answer.status} {answer.reason}"]
        out += [f"{k}: {v}" for k, v in answer.getheaders()
                if k.lower() not in ("transfer-encoding", "content-length", "connection")]
        if method != "HEAD" or not answer.getheader("content-length"):
            out.append(f"Content-Length: {len(data)}")
        else:
            out.append(f"Content-Length: {answer.getheader('content-length')}")
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)

    def _tunnel(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=60)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()

        def pump(source: socket.socket, sink: socket.socket) -> None:
            with suppress(OSError):  # either end closing ends the tunnel
                while data := source.recv(65536):
                    sink.sendall(data)
            for end in (sink, source):
                with suppress(OSError):  # already shut by the other pump
                    end.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, self.connection), daemon=True)
        back.start()
        pump(self.connection, upstream)
        back.join(60)
        upstream.close()


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, credentials: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.credentials = credentials
        self.log = ProxyLog()


@contextmanager
def running_proxy(credentials: str | None = None) -> Iterator[tuple[str, ProxyLog]]:
    """A proxy until the block ends: its URL ``http://127.0.0.1:PORT`` and its log."""
    server = _ProxyServer(credentials)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
