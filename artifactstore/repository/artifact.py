"""``Artifact``: the builder a user fills before logging a new version.

Vocabulary: the builder *stages* entries (a local file, every file of a local
folder, a remote reference, or a file written through ``new_file``) under
artifact paths; nothing is read or uploaded until the store logs it, so staging
is cheap and a staging mistake costs nothing. Staging validates names and paths
at once, so errors point at the call that caused them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.local.localtree import (
    FileRun,
    Known,
    Skipped,
    check_folder,
    iter_folder,
    iter_runs,
    walk_folder,
)
from artifactstore.model.names import validate_artifact_name
from artifactstore.model.paths import validate_path

__all__ = ["Artifact", "Skipped", "StagedFile", "StagedFolder", "StagedReference"]


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A local file to store under ``path``."""

    path: str
    source: Path


@dataclass(frozen=True, slots=True)
class StagedReference:
    """A remote object to record by reference under ``path``."""

    path: str
    uri: str
    checksum: bool


Staged = StagedFile | StagedReference


@dataclass(frozen=True, slots=True)
class StagedFolder:
    """Every file of a local folder, checked but not listed: logging walks it again and
    stores its files as the walk meets them (a million staged paths are ~200 MB)."""

    root: Path
    follow_outside_links: bool
    skip_unreadable: bool
    #: each folder of files' signature when it was checked (:class:`FolderCheck`)
    signatures: Mapping[str, tuple[bytes, int]] = field(default_factory=dict)

    def files(self) -> Iterator[tuple[str, str]]:
        """(artifact path, absolute local path) in byte order of the artifact paths."""
        return iter_folder(self.root, follow_outside_links=self.follow_outside_links,
                           skip_unreadable=self.skip_unreadable)

    def runs(self) -> Iterator[FileRun]:
        """:meth:`files` in runs of one folder's files (a folder of files in one run)."""
        return iter_runs(self.root, follow_outside_links=self.follow_outside_links,
                         skip_unreadable=self.skip_unreadable, signed=self.signatures)


class Artifact:
    """A new version of the artifact ``name`` of ``type``, being assembled."""

    def __init__(self, name: str, type: str, description: str | None = None,
                 metadata: Mapping[str, Any] | None = None) -> None:
        self.name = validate_artifact_name(name)
        if not isinstance(type, str) or not type.strip():
            raise InvalidInputError("artifact type must be a non-empty string, e.g. 'dataset'")
        self.type = type
        self.description = description
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._staged: dict[str, Staged] = {}
        #: a folder staged whole by :meth:`stream_dir`, listed only if something asks
        self._folder: StagedFolder | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        #: local entries ``add_dir`` left out (special files, folder links, and with
        #: ``skip_unreadable`` what it could not read), for the user to see
        self.skipped: list[Skipped] = []

    def __repr__(self) -> str:
        if self._folder is not None:
            return f"Artifact({self.name!r}, type={self.type!r}, folder {self._folder.root})"
        return f"Artifact({self.name!r}, type={self.type!r}, {len(self._staged)} entries)"

    @property
    def entries(self) -> tuple[Staged, ...]:
        self._list_folder()
        return tuple(self._staged[p] for p in sorted(self._staged))

    @property
    def streamed(self) -> StagedFolder | None:
        """The folder staged by :meth:`stream_dir`, when it is all that is staged."""
        return self._folder

    def stream_dir(self, path: str | os.PathLike[str], *, follow_outside_links: bool = False,
                   skip_unreadable: bool = False, known: Known | None = None) -> None:
        """Stage every file under the folder ``path`` like :meth:`add_dir` (the same
        policy, checked now), without listing them: logging streams them in bounded
        memory. On an artifact that has entries already, this is :meth:`add_dir`.
        ``known``: the signatures of folders as last logged into the store this will be
        logged into (the stat cache's folder rows), which spares the check an ``access``
        per file of an unchanged folder (:func:`~artifactstore.local.localtree.check_folder`)."""
        root = Path(path)
        if self._staged or self._folder is not None:
            self.add_dir(root, follow_outside_links=follow_outside_links,
                         skip_unreadable=skip_unreadable)
            return
        if not root.is_dir():
            raise NotFoundError(f"cannot add {root}: no such folder (check the path)")
        checked = check_folder(root, follow_outside_links=follow_outside_links,
                               skip_unreadable=skip_unreadable, known=known)
        self._folder = StagedFolder(root, follow_outside_links, skip_unreadable,
                                    checked.signatures)
        self.skipped.extend(checked.skipped)

    def _list_folder(self) -> None:
        """Stage the streamed folder's files one by one (a caller asks for entries)."""
        folder, self._folder = self._folder, None
        if folder is not None:
            for rel, source in folder.files():
                self._stage(StagedFile(validate_path(rel), Path(source)))

    def staged_bytes(self) -> int:
        """Total size of the staged files as they are on disk now (for progress bars)."""
        total = 0
        if self._folder is not None:
            for _, source in self._folder.files():
                try:
                    total += os.stat(source).st_size
                except OSError:
                    continue  # reported when logging reads it
        for entry in self._staged.values():
            if isinstance(entry, StagedReference):
                continue
            try:
                total += entry.source.stat().st_size
            except OSError:
                continue  # reported when logging reads it
        return total

    def add_file(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Stage the local file ``path`` as ``name`` (default: its file name)."""
        source = Path(path)
        if not source.is_file():
            raise NotFoundError(f"cannot add {source}: no such file (check the path)")
        return self._stage(StagedFile(validate_path(name or source.name), source))

    def add_dir(self, path: str | os.PathLike[str], name: str | None = None, *,
                follow_outside_links: bool = False, skip_unreadable: bool = False) -> list[str]:
        """Stage every file under the folder ``path``, below ``name`` if given.

        Symbolic links follow the policy of :mod:`artifactstore.local.localtree`: links to
        files inside are followed, links that leave the folder are refused unless
        ``follow_outside_links``; dangling links, loops and unreadable entries are
        refused unless ``skip_unreadable``. Nothing is staged when it refuses.
        What was left out is added to :attr:`skipped`.
        """
        root = Path(path)
        if not root.is_dir():
            raise NotFoundError(f"cannot add {root}: no such folder (check the path)")
        prefix = validate_path(name) + "/" if name else ""
        found = walk_folder(root, follow_outside_links=follow_outside_links,
                            skip_unreadable=skip_unreadable)
        staged = [StagedFile(validate_path(prefix + rel), source) for rel, source in found.files]
        added = [self._stage(entry) for entry in staged]
        self.skipped.extend(found.skipped)
        added.sort()
        return added

    def add_reference(self, uri: str, name: str | None = None, checksum: bool = True) -> str:
        """Record ``uri`` (s3://, gs://, https://, file://) without copying its bytes.

        Logging records its size and ETag/generation; with ``checksum`` it also
        reads it once for its BLAKE3 digest. Downloads fetch it from the source
        and refuse it if it changed since.
        """
        if "://" not in uri:
            raise InvalidInputError(
                f"reference {uri!r} is not a URI: use s3://, gs://, https:// or file://"
            )
        default = uri.rstrip("/").rsplit("/", 1)[-1]
        return self._stage(StagedReference(validate_path(name or default), uri, checksum))

    @contextmanager
    def new_file(self, name: str, mode: str = "w") -> Iterator[IO[Any]]:
        """Write a new file into the artifact: ``with art.new_file("a.txt") as f: ...``."""
        if mode not in ("w", "wb", "x", "xb"):
            raise InvalidInputError(f"new_file mode {mode!r}: use 'w' or 'wb'")
        path = validate_path(name)
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="artifactstore-new-")
        target = Path(self._scratch.name) / f"{len(self._staged)}-{Path(path).name}"
        encoding = None if "b" in mode else "utf-8"
        with open(target, mode.replace("x", "w"), encoding=encoding) as f:
            yield f
        self._stage(StagedFile(path, target))

    def remove(self, name: str) -> None:
        """Unstage ``name``, or every entry below it if it is a folder."""
        path = validate_path(name)
        self._list_folder()
        doomed = [p for p in self._staged if p == path or p.startswith(path + "/")]
        if not doomed:
            raise NotFoundError(f"{name!r} is not in artifact {self.name!r}")
        for p in doomed:
            del self._staged[p]

    def _stage(self, entry: Staged) -> str:
        if self._folder is not None:
            self._list_folder()
        self._staged[entry.path] = entry
        return entry.path

    def cleanup(self) -> None:
        """Remove files written with ``new_file`` (after logging, or to abandon)."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch.name, ignore_errors=True)
            self._scratch.cleanup()
            self._scratch = None

