"""The one-line calls of scripts: :func:`use` and :func:`init_run` on the discovered store,
and W&B's names for the same things (:func:`init`, :func:`log`, :func:`finish`,
:func:`use_artifact`, :func:`log_artifact`: the active run's calls).

Each process opens the store a script names (or discovery finds) once per mode and
keeps it, so that ``use`` inside an active run records the input on that run.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from artifactstore.api.facade import Store, open
from artifactstore.core.errors import InvalidInputError
from artifactstore.repository.discovery import discover
from artifactstore.repository.version import ArtifactVersion
from artifactstore.runs.run import Run, active_run

__all__ = ["finish", "init", "init_run", "log", "log_artifact", "use", "use_artifact"]

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


# -- W&B's names (same objects: a Run, its config, versions) --------------------------

#: W&B's ``mode`` values; "disabled" (a run that records nothing) is not offered
_MODES = (None, "online", "offline")


def init(
    project: str | None = None,
    name: str | None = None,
    job_type: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
    group: str | None = None,
    save_code: bool = False,
    *,
    entity: str | None = None,
    mode: str | None = None,
    dir: str | None = None,
    reinit: bool | None = None,
    url: str | None = None,
) -> Run:
    """Start a run as ``wandb.init`` does, in project ``project`` of the discovered (or
    given ``url``) store; the store, not a server, is where it goes.

    ``group`` becomes a tag ``group:<group>``; ``notes`` the config key ``_notes``.
    ``entity`` (a store has no entities), ``dir`` (nothing is written beside the
    script) and ``reinit`` (several runs may be active at once) are accepted and change
    nothing; ``mode`` may be "online" or "offline" (the same here: the store is the
    log), not "disabled"."""
    del entity, dir, reinit
    if mode not in _MODES:
        raise InvalidInputError(f"mode={mode!r:.30} is not supported: use 'online' or "
                                "'offline' (both record to the store)")
    settings = dict(config or {})
    if notes is not None:
        settings["_notes"] = notes
    labels = [*(tags or ()), *([f"group:{group}"] if group else [])]
    return init_run(name, job_type, settings, save_code, labels, url=url, project=project)


def _current() -> Run:
    run = active_run()
    if run is None:
        raise InvalidInputError("no active run: call artifactstore.init() first")
    return run


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """``run.log`` of the active run (``wandb.log``)."""
    _current().log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the active run, if any (``wandb.finish``)."""
    run = active_run()
    if run is not None:
        run.finish(exit_code=exit_code, quiet=quiet)


def use_artifact(artifact: str | ArtifactVersion, type: str | None = None) -> ArtifactVersion:
    """``run.use_artifact`` of the active run (``wandb.use_artifact``)."""
    return _current().use_artifact(artifact, type=type)


def log_artifact(artifact: Any, name: str | None = None, type: str | None = None,
                 aliases: Sequence[str] | None = None) -> ArtifactVersion:
    """``run.log_artifact`` of the active run (``wandb.log_artifact``)."""
    return _current().log_artifact(artifact, name, type, aliases or ())
