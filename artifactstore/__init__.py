"""artifactstore: content-addressed artifact versioning for ML datasets and models."""

from artifactstore.errors import ArtifactStoreError

__version__ = "0.1.0"

__all__ = ["ArtifactStoreError", "__version__"]
