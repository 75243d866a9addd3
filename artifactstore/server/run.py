"""Running the team server: bind, say where, serve with uvicorn until SIGTERM or Ctrl-C.

It serves plain HTTP for a TLS proxy in front (the usual deployment), or HTTPS itself
with ``--tls-cert`` and ``--tls-key``. The socket is bound before the URL is printed
(``--port 0`` picks a free port and the URL names the one it got). uvicorn serves the
app on it; on SIGTERM or Ctrl-C it stops accepting, lets requests in flight finish for
up to :data:`GRACE_SECONDS`, runs the app's shutdown (which closes the backing store)
and returns. Access lines and the server's warnings go to stderr, one JSON object per
access line; uvicorn's own access log is off (ours has the principal).

With ``--workers N`` uvicorn's supervisor runs N spawned worker processes on the one
socket; each builds its own app from the same settings (an instance per core: the
server keeps no state of its own, so workers share nothing but the store).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.applications import Starlette

from artifactstore.core.errors import InvalidInputError
from artifactstore.ui.server import listen_socket

__all__ = ["GRACE_SECONDS", "WORKER_ENV", "Bound", "bind", "log_to_stderr", "serve",
           "serve_workers", "worker_app"]

GRACE_SECONDS: Final = 30
#: how ``serve --workers N`` tells its workers the settings (a JSON object)
WORKER_ENV: Final = "ARTIFACTSTORE_SERVE_WORKER"


@dataclass(frozen=True)
class Bound:
    """A listening socket and the URLs people use: the server's and the store URL."""

    sock: socket.socket
    host: str
    port: int
    #: the certificate and key files when it serves HTTPS itself
    tls: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    @property
    def store_url(self) -> str:
        return f"artifactstore+{self.url}"

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "store_url": self.store_url, "host": self.host,
                "port": self.port}


def bind(host: str, port: int, *, tls: tuple[str, str] | None = None) -> Bound:
    """Bind ``host:port`` (0: any free port) and listen; ``tls``: (certificate, key)
    files, checked here so a bad pair fails before anything is served."""
    sock = listen_socket(host, port, what="the server", hint="127.0.0.1 or 0.0.0.0",
                         backlog=512)
    if tls is not None:
        _check_tls(tls, sock)
    return Bound(sock, host, sock.getsockname()[1], tls)


def _check_tls(tls: tuple[str, str], sock: socket.socket) -> None:
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*tls)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        raise InvalidInputError(f"cannot use the TLS certificate {tls[0]} with the key "
                                f"{tls[1]}: {getattr(exc, 'strerror', None) or exc}; give a "
                                "PEM certificate chain and its private key") from None


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


def worker_app() -> Starlette:
    """The app of one worker process of ``serve --workers N``, from the settings the
    parent named in :data:`WORKER_ENV` (uvicorn spawns workers: nothing else is shared)."""
    from artifactstore.server.app import create_server_app
    from artifactstore.server.settings import load_settings

    named = json.loads(os.environ[WORKER_ENV])
    log_to_stderr()
    return create_server_app(load_settings(named["config"], store=named["store"]))


def serve_workers(workers: int, bound: Bound, *, config: str | None, store: str | None,
                  started: Callable[[Bound], None] | None = None,
                  grace: int = GRACE_SECONDS) -> None:
    """Serve on ``bound`` with ``workers`` processes (uvicorn's supervisor restarts one
    that dies) until SIGTERM or Ctrl-C, each worker stopping gracefully."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[WORKER_ENV] = json.dumps(
        {"config": None if config is None else os.path.abspath(config), "store": store})
    settings = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=workers,
                              lifespan="on", access_log=False, log_level="warning",
                              timeout_graceful_shutdown=grace, server_header=False,
                              ssl_certfile=_tls(bound, 0), ssl_keyfile=_tls(bound, 1))
    if started is not None:
        started(bound)
    try:
        Multiprocess(settings, sockets=[bound.sock]).run()
    finally:
        bound.sock.close()


def serve(app: Starlette, bound: Bound, started: Callable[[Bound], None] | None = None,
          *, grace: int = GRACE_SECONDS) -> None:
    """Serve ``app`` on ``bound`` until SIGTERM or Ctrl-C (gracefully, ``grace`` s)."""
    import uvicorn

    config = uvicorn.Config(app, lifespan="on", access_log=False, log_level="warning",
                            timeout_graceful_shutdown=grace, server_header=False,
                            ssl_certfile=_tls(bound, 0), ssl_keyfile=_tls(bound, 1))
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


def _tls(bound: Bound, which: int) -> str | None:
    """The certificate (0) or key (1) file uvicorn serves HTTPS with, if any."""
    return None if bound.tls is None else bound.tls[which]


class _Stopped(Exception):
    """SIGTERM arrived (and uvicorn has already shut down gracefully)."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped
