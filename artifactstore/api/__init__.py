"""The public API: the :class:`Store` facade and the one-line calls of scripts.

Imported on first use (PEP 562): opening a store does not import the run machinery
the one-line calls need, and the reverse."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {"Store": "facade", "open": "facade",
          **dict.fromkeys(("finish", "init", "init_run", "log", "log_artifact", "use",
                           "use_artifact"), "session")}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'artifactstore.api' has no attribute {name!r}")
    value = getattr(import_module(f"artifactstore.api.{home}"), name)
    globals()[name] = value
    return value
