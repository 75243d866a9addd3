"""The public API: the :class:`Store` facade and the one-line calls of scripts."""

from artifactstore.api.facade import Store, open
from artifactstore.api.session import init_run, use

__all__ = ["Store", "init_run", "open", "use"]
