"""Serving the web UI: bind, print the URL, serve until Ctrl-C (``artifactstore ui``).

The socket is bound and listening before the URL is printed (``--port 0`` picks a
free port, and the URL names the port it got); uvicorn then serves the app on it and
stops cleanly on SIGINT/SIGTERM. Starlette, uvicorn and Jinja2 are the ``ui`` extra:
:func:`load_app` turns their absence into one line naming it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import artifactstore
from artifactstore.core.errors import InvalidInputError, MissingExtraError
from artifactstore.ui.access import new_token, token_required

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["Listener", "listen", "listen_socket", "load_app", "serve"]

UI_EXTRA = "the web UI needs starlette, uvicorn and jinja2: pip install 'artifactstore[ui]'"
UI_MODULES = frozenset({"starlette", "uvicorn", "jinja2", "anyio", "h11"})


def load_app(store: artifactstore.Store, *, token: str | None, loopback: bool) -> Starlette:
    """The app of :mod:`artifactstore.ui.app` (MissingExtraError without the extra)."""
    try:
        import uvicorn  # noqa: F401  (checked here so --check finds it missing too)

        from artifactstore.ui.app import create_app
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in UI_MODULES:
            raise MissingExtraError(UI_EXTRA) from exc
        raise
    return create_app(store, token=token, loopback=loopback)


@dataclass(frozen=True)
class Listener:
    """A bound, listening socket and the URL people open (with the token if any)."""

    sock: socket.socket
    host: str
    port: int
    token: str | None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"/?token={quote(self.token)}" if self.token else "/"
        return f"http://{host}:{self.port}{query}"

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "host": self.host, "port": self.port,
                "token": self.token is not None}


def listen_socket(host: str, port: int, *, what: str, hint: str,
                  backlog: int = 128) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port) and listening; ``what`` names
    the server in messages ("the UI"), ``hint`` the host to suggest. The UI and the team
    server (server/run.py) both bind this way: errors are one line, exit 2."""
    if not 0 <= port <= 65535:
        raise InvalidInputError(f"--port is 0 (any free port) to 65535, not {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInputError(f"cannot bind {what} to {host!r:.80}: unknown host ({exc}); "
                                f"use --host {hint}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                "pick another --port, or --port 0 for any free one") from None
    return sock


def listen(host: str, port: int) -> Listener:
    """Bind ``host:port`` (0: any free port) and listen; a token when ``host`` is not
    loopback (access.py)."""
    sock = listen_socket(host, port, what="the UI", hint="127.0.0.1")
    bound_port = sock.getsockname()[1]
    return Listener(sock, host, bound_port, new_token() if token_required(host) else None)


def serve(store: artifactstore.Store, listener: Listener,
          started: Callable[[Listener], None] | None = None) -> None:
    """Serve the UI of ``store`` on ``listener`` until Ctrl-C (or SIGTERM)."""
    app = load_app(store, token=listener.token, loopback=listener.token is None)
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    if started is not None:
        started(listener)
    try:
        server.run(sockets=[listener.sock])
    except KeyboardInterrupt:
        # uvicorn has shut down gracefully and re-raises the Ctrl-C it caught: a
        # stop the user asked for, not a failure
        pass
    finally:
        listener.sock.close()
