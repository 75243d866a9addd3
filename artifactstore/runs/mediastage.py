"""Media logged by a run, staged and committed as versions of its media artifact
(docs/design.md §12.7).

Vocabulary:

- **media artifact**: ``media-<run id>``, type ``run-media``; each version holds all
  the run's media files so far, recorded as an output of the run with role ``media``.
- **staged file**: the bytes of a media value logged since the last commit, written
  to a temporary folder (so memory does not grow with the steps) until the commit.
- **commit**: the next version of the media artifact, the previous one's files plus
  the staged ones (:func:`artifactstore.repository.ingest.extend_version`). The run
  commits before it writes the metrics segment that first references them, so a
  reader never meets a reference to a file no version holds.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from artifactstore.media.base import MediaValue
from artifactstore.records.refs import VersionRecord
from artifactstore.repository.ingest import extend_version
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion

__all__ = ["MEDIA_ROLE", "MEDIA_TYPE", "MediaStage", "media_artifact"]

MEDIA_TYPE = "run-media"
MEDIA_ROLE = "media"


def media_artifact(run_id: str) -> str:
    """The name of the artifact that holds a run's media files."""
    return f"media-{run_id}"


class MediaStage:
    """The media files of one run waiting for their commit."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.name = media_artifact(run_id)
        #: the last version committed: the next one extends it
        self.base: VersionRecord | None = None
        self._folder: Path | None = None
        self._staged: dict[str, Path] = {}
        self._count = 0

    @property
    def pending(self) -> bool:
        return bool(self._staged)

    def stage(self, key: str, step: int, value: MediaValue) -> dict[str, Any]:
        """Write the files of ``value`` logged as ``key`` at ``step``; its reference."""
        rendered = value.render(key, step)
        for path, data in rendered.files.items():
            if path in self._staged:
                continue  # the same bytes at the same key and step: one file
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="artifactstore-media-"))
            self._count += 1
            source = self._folder / f"{self._count:08d}"
            source.write_bytes(data)
            self._staged[path] = source
        return rendered.reference

    def commit(self, project: Project) -> ArtifactVersion | None:
        """The next version of the media artifact with the staged files (None if none)."""
        if not self._staged:
            return None
        version = extend_version(project, self.name, MEDIA_TYPE, self.base,
                                 sorted(self._staged.items()),
                                 description=f"media logged by run {self.run_id}",
                                 run_id=self.run_id)
        self.base = version.record
        for source in self._staged.values():
            source.unlink(missing_ok=True)
        self._staged.clear()
        return version

    def cleanup(self) -> None:
        """Remove the temporary folder (staged files not committed are lost)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._staged.clear()
