"""The public API: the :class:`Store` facade and the one-line calls of scripts."""

from artifactstore.api.facade import Store, open
from artifactstore.api.session import (
    finish,
    init,
    init_run,
    log,
    log_artifact,
    use,
    use_artifact,
)

__all__ = ["Store", "finish", "init", "init_run", "log", "log_artifact", "open", "use",
           "use_artifact"]
