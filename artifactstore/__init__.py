"""artifactstore: content-addressed artifact versioning for ML datasets and models.

``artifactstore.open(url)`` returns a :class:`Store`; ``artifactstore.use("model:latest")``
reads a version from the discovered store in one line.
"""

from artifactstore.api.store import Store, init_run, open, use
from artifactstore.core.errors import ArtifactStoreError
from artifactstore.local.catalog import RunInfo
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.version import ArtifactVersion
from artifactstore.runs.run import Run

__version__ = "0.1.0"

__all__ = [
    "Artifact", "ArtifactStoreError", "ArtifactVersion", "Run", "RunInfo", "Store", "__version__",
    "init_run", "open", "use",
]  # fmt: skip
