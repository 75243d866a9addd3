"""Media logged by a run, staged and committed as versions of its media artifact
(docs/design.md §12.7).

Vocabulary:

- **media artifact**: ``media-<run id>``, type ``run-media``; each version holds all
  the run's media files so far, recorded as an output of the run with role ``media``.
- **staged file**: the bytes of a media value logged since the last commit, written
  to a temporary folder (so memory does not grow with the steps) until the commit.
  The folder is named ``artifactstore-media-<pid>-<random>``: a run killed before it
  could remove its folder leaves it behind, and the next run of this machine that
  stages media removes the folders whose process is gone (:func:`sweep_dead_stages`).
- **commit**: the next version of the media artifact, the previous one's files plus
  the staged ones (:func:`artifactstore.repository.ingest.extend_version`). The run
  commits before it writes the metrics segment that first references them, so a
  reader never meets a reference to a file no version holds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

from artifactstore.core.localproc import process_exists
from artifactstore.media.base import MediaValue
from artifactstore.records.refs import VersionRecord
from artifactstore.repository.ingest import extend_version
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion

__all__ = ["MEDIA_ROLE", "MEDIA_TYPE", "MediaStage", "media_artifact", "sweep_dead_stages"]

MEDIA_TYPE = "run-media"
MEDIA_ROLE = "media"
STAGE_PREFIX: Final = "artifactstore-media-"


def sweep_dead_stages(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the staging folders under ``parent`` (the temporary folder) left by runs
    whose process no longer exists; the folders removed. A live process's folder, or a
    name that does not carry a pid, is left alone."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(STAGE_PREFIX + "*"):
        pid_text = folder.name[len(STAGE_PREFIX):].partition("-")[0]
        if not pid_text.isdigit() or not folder.is_dir() or folder.is_symlink():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or process_exists(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


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
                sweep_dead_stages()
                self._folder = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-"))
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
