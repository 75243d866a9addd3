"""artifactstore: content-addressed artifact versioning for ML datasets and models.

``artifactstore.open(url)`` returns a :class:`Store`; ``artifactstore.use("model:latest")``
reads a version from the discovered store in one line. The package's layers, one
folder each, are described in docs/architecture.md.
"""

from typing import Any

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
from artifactstore.core.about import __version__
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


def __getattr__(name: str) -> Any:
    """``artifactstore.run``, ``.config``, ``.summary``: the active run's, as W&B's
    module attributes (``run`` is None without an active run)."""
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
