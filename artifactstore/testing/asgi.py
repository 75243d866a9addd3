"""Any ASGI app served for tests by uvicorn in a thread on 127.0.0.1 (any free port),
stopped when the block ends (``should_exit``: off the main thread uvicorn installs no
signal handlers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

__all__ = ["serving_app"]


@contextmanager
def serving_app(app: Any, *, lifespan: Literal["on", "off"] = "on") -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its URL (``http://127.0.0.1:PORT``,
    no trailing slash)."""
    import uvicorn

    from artifactstore.ui.server import listen

    listener = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener.sock]},
                              daemon=True)
    thread.start()
    try:
        yield listener.url.rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.sock.close()
