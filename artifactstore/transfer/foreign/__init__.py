"""Importers that keep history: DVC repositories, MLflow ``mlruns`` folders, Hugging
Face hub caches and W&B offline runs brought in as versions and runs (issue 19, part 4;
docs/guide.md, "Bring history in: import-from").

Vocabulary:

- the **source** is what another tool wrote (a DVC repository and its cache, an
  ``mlruns`` folder, a hub cache); a **foreign file** is one file of it with the digest
  that tool recorded for it (DVC's MD5, the hub's SHA-256 or git SHA-1), or none
  (MLflow keeps no digest of artifacts);
- each file is **checked** while it is copied into a scratch folder (:mod:`.checked`),
  and the copy is what gets logged: a file that changed or was tampered with is refused
  by name (IntegrityError) before anything of it is written;
- imported versions and runs are ordinary ones: what the source called them (paths, ids,
  times, digests) is kept under the ``_source`` key of a version's metadata and of a
  run's config. Re-importing finds them by that key and writes nothing new.

One module per source (:mod:`.dvc`, :mod:`.mlflow`, :mod:`.hf`, :mod:`.wandb`); :func:`import_from`
picks it by kind.
"""

from __future__ import annotations

import os
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.objects.store import Progress
from artifactstore.repository.project import Project
from artifactstore.transfer.foreign.checked import ForeignReport

__all__ = ["KINDS", "ForeignReport", "import_from"]

KINDS = ("dvc", "mlflow", "hf", "wandb")
"""The sources :func:`import_from` reads."""


def import_from(project: Project, kind: str, path: str | os.PathLike[str], *,
                progress: Progress | None = None, **options: Any) -> ForeignReport:
    """Import the source of ``kind`` at ``path`` into ``project``; ``options`` are the
    importer's (see each module's ``import_*`` function)."""
    if kind == "dvc":
        from artifactstore.transfer.foreign.dvc import import_dvc

        return import_dvc(project, path, progress=progress, **options)
    if kind == "mlflow":
        from artifactstore.transfer.foreign.mlflow import import_mlflow

        return import_mlflow(project, path, progress=progress, **options)
    if kind == "hf":
        from artifactstore.transfer.foreign.hf import import_hf

        return import_hf(project, path, progress=progress, **options)
    if kind == "wandb":
        from artifactstore.transfer.foreign.wandb import import_wandb

        return import_wandb(project, path, progress=progress, **options)
    raise InvalidInputError(f"cannot import from {kind!r}: use one of {', '.join(KINDS)}")
