"""The one-line calls of scripts: :func:`use` and :func:`init_run` on the discovered store.

Each process opens the store a script names (or discovery finds) once per mode and
keeps it, so that ``use`` inside an active run records the input on that run.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from artifactstore.api.facade import Store, open
from artifactstore.repository.discovery import discover
from artifactstore.repository.version import ArtifactVersion
from artifactstore.runs.run import Run, active_run

__all__ = ["init_run", "use"]

_default_lock = threading.Lock()
_default_stores: dict[tuple[str | None, str | None, str, bool | None], Store] = {}


def _default_store(url: str | None, project: str | None, *, create: bool | None) -> Store:
    """The store of ``url``/``project`` (discovered), opened once per process and mode."""
    key = (url, project, discover(url).url, create)
    with _default_lock:
        store = _default_stores.get(key)
        if store is None:
            store = _default_stores[key] = open(url, project, create=create)
    return store


def use(ref: str, *, url: str | None = None, project: str | None = None) -> ArtifactVersion:
    """The version ``ref`` from the discovered (or given) store, for scripts.

    Inside an active run of that store (``init_run`` or ``store.run``), the
    version is recorded as an input of the run.
    """
    store = _default_store(url, project, create=False)  # reading creates nothing
    version = store.artifact(ref)
    run = active_run(store.context)
    if run is not None:
        run.record_use(version, ref)
    return version


def init_run(
    name: str | None = None,
    job_type: str | None = None,
    config: Mapping[str, Any] | None = None,
    save_code: bool = False,
    tags: Sequence[str] = (),
    *,
    url: str | None = None,
    project: str | None = None,
    **options: Any,
) -> Run:
    """Start a run in the discovered store, for scripts without a ``with`` block.

    Finish it with ``run.finish()``; a run still active at interpreter exit is
    finished then (``failed`` after an uncaught exception).
    """
    # A run writes: the store and project are created by its start record if missing.
    store = _default_store(url, project, create=None)
    return store.run(name, job_type, config, save_code, tags, **options)
