"""``from artifactstore import artifact; artifact.use("model:latest")``: the W&B-style
spelling of :func:`artifactstore.use`."""

from __future__ import annotations

from artifactstore.api.session import use
from artifactstore.repository.artifact import Artifact

__all__ = ["Artifact", "use"]
