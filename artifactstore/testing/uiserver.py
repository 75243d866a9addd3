"""The web UI served for browser tests: ``artifactstore ui``'s app over an opened store,
run by uvicorn in a thread on 127.0.0.1 (any free port), stopped when the block ends;
and what the tests check in its pages.

Off the main thread uvicorn installs no signal handlers: ``should_exit`` stops it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import artifactstore

if TYPE_CHECKING:
    from artifactstore.testing.browser import SealedPage

__all__ = ["chart_drawn", "serving"]


@contextmanager
def serving(store: artifactstore.Store, **app_options: Any) -> Iterator[str]:
    """The UI of ``store`` (``create_app(store, loopback=True, **app_options)``) served
    until the block ends; yields its URL (``http://127.0.0.1:PORT/``)."""
    import uvicorn

    from artifactstore.ui.app import create_app
    from artifactstore.ui.server import listen

    listener = listen("127.0.0.1", 0)
    app = create_app(store, loopback=True, **app_options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener.sock]},
                              daemon=True)
    thread.start()
    try:
        yield listener.url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.sock.close()


def chart_drawn(page: SealedPage, metric: str) -> bool:
    """Whether the chart of ``metric`` (a ``.chart`` box whose ``data-metric`` names it)
    has a canvas with at least one painted pixel."""
    return bool(page.evaluate("""metric => {
        const box = [...document.querySelectorAll('.chart')].find(b => b.dataset.metric === metric);
        const c = box && box.querySelector('canvas');
        if (!c || !c.width || !c.height) return false;
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
        return false;
    }""", metric))
