"""artifactstore: content-addressed artifact versioning for ML datasets and models.

``artifactstore.open(url)`` returns a :class:`Store`; ``artifactstore.use("model:latest")``
reads a version from the discovered store in one line. The package's layers, one
folder each, are described in docs/architecture.md.

The names below are imported on first use (PEP 562), so ``import artifactstore`` and
the command line pay only for the layers a call needs.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from artifactstore.core.about import __version__

if TYPE_CHECKING:
    from artifactstore.api import (
        Store,
        artifact,
        finish,
        init,
        init_run,
        log,
        log_artifact,
        open,
        use,
        use_artifact,
    )
    from artifactstore.core.errors import ArtifactStoreError
    from artifactstore.local.catalog import RunInfo
    from artifactstore.media import Audio, Histogram, Html, Image, Plot, Table, Text, Video
    from artifactstore.repository.artifact import Artifact
    from artifactstore.repository.version import ArtifactVersion
    from artifactstore.runs.run import Run

__all__ = [
    "Artifact", "ArtifactStoreError", "ArtifactVersion", "Audio", "Histogram", "Html", "Image",
    "Plot", "Run", "RunInfo", "Store", "Table", "Text", "Video", "__version__", "artifact",
    "finish", "init", "init_run", "log", "log_artifact", "open", "use", "use_artifact",
]  # fmt: skip

#: where each public name lives (imported on first use)
_HOMES = {
    "Store": "artifactstore.api.facade", "open": "artifactstore.api.facade",
    **dict.fromkeys(("finish", "init", "init_run", "log", "log_artifact", "use", "use_artifact"),
                    "artifactstore.api.session"),
    "artifact": "artifactstore.api",
    "ArtifactStoreError": "artifactstore.core.errors",
    "RunInfo": "artifactstore.local.catalog",
    **dict.fromkeys(("Audio", "Histogram", "Html", "Image", "Plot", "Table", "Text", "Video"),
                    "artifactstore.media"),
    "Artifact": "artifactstore.repository.artifact",
    "ArtifactVersion": "artifactstore.repository.version",
    "Run": "artifactstore.runs.run",
}


def __getattr__(name: str) -> Any:
    """The public names, imported on first use; ``artifactstore.run``, ``.config``,
    ``.summary``: the active run's, as W&B's module attributes (``run`` is None
    without an active run)."""
    home = _HOMES.get(name)
    if home is not None:
        module = import_module(home)
        # ``artifact`` is a module of the API (``artifact.use(...)``), the rest attributes
        value = getattr(module, name) if hasattr(module, name) else import_module(
            f"{home}.{name}")
        globals()[name] = value  # the next access is a plain attribute
        return value
    if name in ("run", "config", "summary"):
        from artifactstore.runs.run import active_run

        current = active_run()
        if name == "run":
            return current
        if current is None:
            raise AttributeError(f"artifactstore.{name}: no active run; call "
                                 "artifactstore.init() first")
        return getattr(current, name)
    raise AttributeError(f"module 'artifactstore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
