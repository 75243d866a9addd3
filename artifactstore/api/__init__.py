"""The public API: the :class:`Store` facade and the one-line calls of scripts."""

from artifactstore.api.session import init_run, use
from artifactstore.api.store import Store, open

__all__ = ["Store", "init_run", "open", "use"]
