"""Importing a Hugging Face hub cache (not written yet)."""

from __future__ import annotations

import os

from artifactstore.core.errors import InvalidInputError
from artifactstore.objects.store import Progress
from artifactstore.repository.project import Project
from artifactstore.transfer.foreign.checked import ForeignReport

__all__ = ["import_hf"]


def import_hf(project: Project, path: str | os.PathLike[str], *, artifact: str | None = None,
              progress: Progress | None = None) -> ForeignReport:
    del project, path, artifact, progress
    raise InvalidInputError("import-from hf is not available yet")
