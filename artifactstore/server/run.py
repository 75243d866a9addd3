"""Running the team server: bind, say where, serve with uvicorn until SIGTERM or Ctrl-C.

The socket is bound before the URL is printed (``--port 0`` picks a free port and the
URL names the one it got). uvicorn serves the app on it; on SIGTERM or Ctrl-C it stops
accepting, lets requests in flight finish for up to :data:`GRACE_SECONDS`, runs the
app's shutdown (which closes the backing store) and returns. Access lines and the
server's warnings go to stderr, one JSON object per access line; uvicorn's own access
log is off (ours has the principal and never the query's secrets: there are none).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.applications import Starlette

from artifactstore.core.errors import InvalidInputError

__all__ = ["GRACE_SECONDS", "Bound", "bind", "log_to_stderr", "serve"]

GRACE_SECONDS: Final = 30


@dataclass(frozen=True)
class Bound:
    """A listening socket and the URLs people use: the server's and the store URL."""

    sock: socket.socket
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def store_url(self) -> str:
        return f"artifactstore+{self.url}"

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "store_url": self.store_url, "host": self.host,
                "port": self.port}


def bind(host: str, port: int) -> Bound:
    """Bind ``host:port`` (0: any free port) and listen."""
    if not 0 <= port <= 65535:
        raise InvalidInputError(f"--port is 0 (any free port) to 65535, not {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInputError(f"cannot bind the server to {host!r:.80}: unknown host "
                                f"({exc}); use --host 127.0.0.1 or 0.0.0.0") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(512)
    except OSError as exc:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                "pick another --port, or --port 0 for any free one") from None
    return Bound(sock, host, sock.getsockname()[1])


def log_to_stderr(*, quiet: bool = False) -> None:
    """The server's log lines (access and warnings) on stderr, one message per line;
    ``quiet``: none at all (``serve --check`` prints one answer). Calling it again
    replaces what an earlier call set up."""
    logger = logging.getLogger("artifactstore.server")
    for old in [h for h in logger.handlers if isinstance(h, _Stderr)]:
        logger.removeHandler(old)
    logger.addHandler(_Stderr(logging.CRITICAL + 1 if quiet else logging.INFO))
    logger.setLevel(logging.INFO)
    logger.propagate = False


class _Stderr(logging.Handler):
    """Each record's message on the ``sys.stderr`` of the moment."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(record.getMessage(), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def serve(app: Starlette, bound: Bound, started: Callable[[Bound], None] | None = None,
          *, grace: int = GRACE_SECONDS) -> None:
    """Serve ``app`` on ``bound`` until SIGTERM or Ctrl-C (gracefully, ``grace`` s)."""
    import uvicorn

    config = uvicorn.Config(app, lifespan="on", access_log=False, log_level="warning",
                            timeout_graceful_shutdown=grace, server_header=False)
    server = uvicorn.Server(config)
    if started is not None:
        started(bound)
    # uvicorn re-raises the signal that stopped it once it has shut down: with this
    # handler in place a SIGTERM ends the process normally (exit 0), as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        server.run(sockets=[bound.sock])
    except (KeyboardInterrupt, _Stopped):
        pass  # uvicorn stopped gracefully and re-raised the Ctrl-C or SIGTERM it caught
    finally:
        signal.signal(signal.SIGTERM, previous)
        bound.sock.close()


class _Stopped(Exception):
    """SIGTERM arrived (and uvicorn has already shut down gracefully)."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped
