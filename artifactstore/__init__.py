"""artifactstore: content-addressed artifact versioning for ML datasets and models.

``artifactstore.open(url)`` returns a :class:`Store`; ``artifactstore.use("model:latest")``
reads a version from the discovered store in one line. The package's layers, one
folder each, are described in docs/architecture.md.
"""

from artifactstore.api import Store, artifact, init_run, open, use
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
    "init_run", "open", "use",
]  # fmt: skip
