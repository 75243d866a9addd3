"""The stores the web UI reads: one store URL, one opened :class:`~artifactstore.Store`
per project, opened on first use and kept until the app stops.

The project the UI was started on (``--project``, else the store's default) is open
from the start; any other project of the same store is opened by name, read-only
(``create=False``: looking at a project that does not exist never creates it), with the
same backend options and the user's identity, so a private project the user is a member
of opens as it would in a script. A name the store holds no project of is refused
(NotFoundError naming the projects it holds), not shown as an empty project.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import artifactstore
from artifactstore.core.errors import NotFoundError

__all__ = ["Opener", "Workspace"]

Opener = Callable[[str], artifactstore.Store]


class Workspace:
    """The projects of one store, opened lazily (thread-safe)."""

    def __init__(self, store: artifactstore.Store, opener: Opener | None = None) -> None:
        self.default = store
        self.url = store.url
        self._opener = opener or self._open
        self._opened: dict[str, artifactstore.Store] = {store.project: store}
        self._lock = threading.Lock()

    def _open(self, project: str) -> artifactstore.Store:
        return artifactstore.open(self.url, project, create=False,
                                  **self.default.backend_options)

    def store(self, project: str) -> artifactstore.Store:
        """The opened project ``project`` (NotFoundError-family errors pass through)."""
        with self._lock:
            found = self._opened.get(project)
            if found is None:
                held = [p.project for p in self.default.projects()]
                if project not in held:
                    raise NotFoundError(f"this store holds no project {project!r:.80}; it "
                                        f"holds: {', '.join(held)[:400] or 'none'}")
                found = self._opened[project] = self._opener(project)
            return found

    def close(self) -> None:
        """Close every project this workspace opened (not the default: its opener's)."""
        with self._lock:
            for store in self._opened.values():
                if store is not self.default:
                    store.close()
            self._opened = {self.default.project: self.default}
