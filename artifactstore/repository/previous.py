"""The version a log goes on top of, for delta chunks (design §2.2, objects/deltas.py).

Vocabulary: the *previous version* of a log is the artifact's newest live version when
the log starts (what the new version follows); the *previous file* of a path is the
file at the same path in it. Its chunks are the bases the new chunks of a big
compressible file are tried against as deltas. Everything is read lazily: a log that
writes no big compressible file reads nothing of the previous version.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from artifactstore.core.errors import AccessDeniedError, NotFoundError
from artifactstore.model.tree import FileEntry, lookup
from artifactstore.objects.blobrefs import FileRef
from artifactstore.records.refs import VersionRecord
from artifactstore.repository.project import Project

__all__ = ["PreviousVersion"]


class PreviousVersion:
    """The previous version of a log of artifact ``name`` in ``project``; see the module."""

    def __init__(self, project: Project, name: str) -> None:
        self._project = project
        self._name = name
        self._record: VersionRecord | None = None
        self._looked = False

    def file(self, path: str) -> Callable[[], FileRef | None]:
        """What ``write_file``'s ``previous`` asks: the previous file at ``path``."""
        return partial(self._file_ref, path)

    def _file_ref(self, path: str) -> FileRef | None:
        record = self._version()
        if record is None:
            return None
        try:
            entry = lookup(record.digest, path, self._project.objects.read_blob)
        except NotFoundError:
            return None
        return entry.file_ref() if isinstance(entry, FileEntry) else None

    def _version(self) -> VersionRecord | None:
        if not self._looked:
            self._looked = True
            if not self._project.objects.config.delta_chunks:
                return None
            try:
                record = self._project.refs.latest(self._name)
                # Why: bases must be in the domain the new chunks go to (design §4)
                if self._project.objects_for(record) is self._project.objects:
                    self._record = record
            except (NotFoundError, AccessDeniedError):
                self._record = None
        return self._record
