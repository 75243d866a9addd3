"""Reading a run's media back (docs/design.md §12.7).

Vocabulary: a **media entry** (:class:`MediaEntry`) is one media reference found in a
run's history (its step and key); a **media file** (:class:`MediaFile`) is the file a
reference names, resolved in the newest live version of ``media-<run id>`` and checked
against the reference's ``digest`` before anyone sees a byte of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import IntegrityError, InvalidInputError, NotFoundError
from artifactstore.media import decode
from artifactstore.media.base import FORMATS, is_file_reference, is_reference
from artifactstore.media.sniff import file_format
from artifactstore.model.names import version_label
from artifactstore.records.runs import RUN_ID_RE
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion, find_version
from artifactstore.runs.mediastage import media_artifact
from artifactstore.runs.queries import get_run, run_history

__all__ = ["MediaEntry", "MediaFile", "MediaTable", "media_entries", "media_file"]


@dataclass(frozen=True)
class MediaEntry:
    """One media reference in a run's history."""

    step: int
    key: str
    reference: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True)
class MediaTable:
    """A logged ``Table``: its columns and rows; media cells are references (resolve them
    with ``Store.media`` like any other)."""

    columns: list[str]
    rows: list[list[Any]]


class MediaFile:
    """The checked bytes of one media file and what to make of them."""

    def __init__(self, reference: Mapping[str, Any], data: bytes, version: ArtifactVersion):
        self.reference = dict(reference)
        self.version = version
        self._data = data

    def __repr__(self) -> str:
        return f"<MediaFile {self.path} {self.format} {len(self._data)} bytes>"

    @property
    def path(self) -> str:
        """Its path in the run's media artifact."""
        return str(self.reference["path"])

    @property
    def type(self) -> str:
        return str(self.reference["_type"])

    @property
    def format(self) -> str:
        return str(self.reference.get("format", ""))

    def read(self) -> bytes:
        return self._data

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the file to ``path`` (into it, under its own name, if it is a folder)."""
        target = Path(path)
        if target.is_dir():
            target = target / Path(self.path).name
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(self._data)
        tmp.replace(target)
        return target

    def to_pil(self) -> Any:
        """A PIL image (images, masks, PNG plots; needs the ``[media]`` extra)."""
        return decode.to_pil(self._data, self.format)

    def to_numpy(self) -> Any:
        """An array: pictures ``HxW[xC]`` uint8, WAV clips ``N x channels`` int16."""
        return decode.to_numpy(self._data, self.format)

    def text(self) -> str:
        """The file as UTF-8 text (texts, HTML, SVG, JSON)."""
        return self._data.decode("utf-8")

    def table(self) -> MediaTable:
        """A table's columns and rows (media cells stay references)."""
        if self.type != "table":
            raise InvalidInputError(f"{self.path} is a {self.type}, not a table")
        try:
            body = json.loads(self._data)
            columns, rows = body["columns"], body["rows"]
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"table {self.path} is not a table file") from None
        return MediaTable(list(columns), [list(r) for r in rows])


def media_version(project: Project, run_id: str) -> ArtifactVersion:
    """The newest live version of the run's media artifact."""
    name = media_artifact(run_id)
    try:
        return find_version(project, f"{name}:latest")
    except NotFoundError:
        raise NotFoundError(
            f"run {run_id} has no media (none logged, or deleted or purged); "
            f"'artifactstore runs media {run_id}' lists what its history references"
        ) from None


def media_file(project: Project, run_id: str, reference: Mapping[str, Any] | str) -> MediaFile:
    """The file ``reference`` names (a reference map, or a path in the media artifact).

    A whole run id this store holds no run of still resolves: the media artifact may
    have come by ``import`` (which restores the run under a new id)."""
    try:
        run_id = get_run(project, run_id).run_id
    except NotFoundError:
        if not isinstance(run_id, str) or RUN_ID_RE.fullmatch(run_id) is None:
            raise
    if isinstance(reference, str):
        reference = {"_type": "file", "path": reference}
    elif not is_file_reference(reference):
        if is_reference(reference):
            raise InvalidInputError(
                f"a {reference['_type']} reference is inline: its values are in it, no file"
            )
        raise InvalidInputError("not a media reference: pass a map from the run's history")
    version = media_version(project, run_id)
    path = str(reference["path"])
    try:
        with version.open(path) as f:
            data = f.read()
    except NotFoundError:
        raise NotFoundError(
            f"{path} is not in {version.name}:{version_label(version.number)}; the reference "
            "belongs to another run, or its media was deleted"
        ) from None
    expected = reference.get("digest")
    if expected is not None and hash_bytes(data).hex != expected:
        raise IntegrityError(f"{path} does not match the digest of its reference; "
                             "run 'artifactstore verify'")
    if "format" not in reference:  # a bare path: its format from its header or name
        reference = {**reference, "format": _format_of(path, data)}
    return MediaFile(reference, data, version)


def _format_of(path: str, data: bytes) -> str:
    found = file_format(data)
    if found is not None:
        return found
    by_extension = {ext: fmt for fmt, ext in FORMATS.items()}
    name = path.rsplit("/", 1)[-1]
    return next((fmt for ext, fmt in by_extension.items() if name.endswith(f".{ext}")), "")


def media_entries(project: Project, run_id: str, *, key: str | None = None,
                  step: int | None = None) -> Iterator[MediaEntry]:
    """The media references of a run's history (of ``key`` and ``step`` if given)."""
    for row in run_history(project, run_id):
        if step is not None and row.step != step:
            continue
        for name, value in row.values.items():
            if (key is None or name == key) and is_reference(value):
                yield MediaEntry(row.step, name, value)
