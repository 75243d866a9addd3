"""The runs this process has started and not finished, and finishing them at exit.

A script that forgets ``run.finish()`` (or dies of an uncaught exception) still leaves
a finished, or failed, run: the first run started installs an ``atexit`` hook and a
``sys.excepthook`` wrapper (once per process, never on import) that finish every run
left active, failed with the uncaught error if there was one.
"""

from __future__ import annotations

import atexit
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from artifactstore.core.errors import ArtifactStoreError

if TYPE_CHECKING:
    from artifactstore.repository.project import Project

__all__ = ["ActiveRun", "forget", "latest", "remember"]


class ActiveRun(Protocol):
    """What this module needs of a run (:class:`artifactstore.runs.run.Run`)."""

    @property
    def id(self) -> str: ...

    @property
    def project(self) -> Project: ...

    def finish(self, error: BaseException | str | None = None) -> None: ...


_lock = threading.Lock()
_active: list[ActiveRun] = []
_uncaught: list[BaseException] = []
_hooks_installed = False


def latest(project: Project | None = None) -> ActiveRun | None:
    """The most recently started unfinished run of this process (of ``project``, if given)."""
    with _lock:
        for run in reversed(_active):
            if project is None or run.project.same_location(project):
                return run
    return None


def remember(run: ActiveRun) -> None:
    """``run`` has started: it is active until :func:`forget`."""
    with _lock:
        _install_exit_hooks()
        _active.append(run)


def forget(run: ActiveRun) -> None:
    """``run`` has finished (a run never remembered is ignored)."""
    with _lock:
        if run in _active:
            _active.remove(run)


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        _uncaught.append(value)
        previous(kind, value, tb)

    sys.excepthook = excepthook
    atexit.register(_finish_at_exit)


def _finish_at_exit() -> None:
    """Finish runs left active at interpreter exit: failed after an uncaught error."""
    error = _uncaught[-1] if _uncaught else None
    with _lock:
        left = list(_active)
    for run in reversed(left):
        try:
            run.finish(error=error)
        except ArtifactStoreError as exc:
            print(f"artifactstore: could not finish run {run.id}: {exc}", file=sys.stderr)
