"""Re-logging: copy a project's versions into a project with other keys (docs/design.md,
"Sync").

Vocabulary: a verbatim sync (:mod:`artifactstore.transfer.sync`) keeps keys and bytes, so it
can only copy a project into a project with the same keys. **Re-logging** moves
versions across keys instead (a private project published into a public one,
or into another private project): each version of the source project that the
target lacks is read through the source store, files verified, and logged into
the target with :meth:`Project.log_artifact`, which chunks, encrypts and signs it
under the target's keys. The copy is a **new version** (its own number, writer
and time; type, description and metadata kept). Aliases are then pointed at the
new versions.

Two versions are the **same content** when they hold the same paths with the same
file digests (plain BLAKE3), sizes and modes, or the same references: the
content digest of a version record is a keyed hash in a private project, so it
cannot be compared across keys. Runs and lineage are not re-logged: they belong
to the source project.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactstore.backends import open_store_backend
from artifactstore.core import encoding
from artifactstore.core.digest import Hasher
from artifactstore.core.errors import ConflictError, InvalidInputError, NotFoundError
from artifactstore.model.names import validate_project_name, version_label
from artifactstore.model.tree import Entry, FileEntry, iter_entries
from artifactstore.objects.store import Progress
from artifactstore.records.versions import VersionRecord
from artifactstore.repository.aliases import set_alias
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.download import materialize
from artifactstore.repository.ingest import log_version
from artifactstore.repository.opening import open_at
from artifactstore.repository.project import Project

__all__ = ["RelogReport", "content_key", "materialized", "relog"]

@dataclass
class RelogReport:
    """Versions logged into the target, versions it already held, alias moves."""

    source: str
    destination: str
    project: str
    to_project: str
    #: (source ref, target ref) of each new version
    logged: list[tuple[str, str]] = field(default_factory=list)
    #: (source ref, target ref) of versions whose content the target already held
    present: list[tuple[str, str]] = field(default_factory=list)
    #: "name:alias -> vN" for each alias set in the target
    aliases: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def raise_for_conflicts(self) -> None:
        if self.conflicts:
            raise ConflictError(f"{len(self.conflicts)} conflict(s): {self.conflicts[0]}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "destination": self.destination, "project": self.project,
            "to_project": self.to_project,
            "logged": [{"from": a, "to": b} for a, b in self.logged],
            "present": [{"from": a, "to": b} for a, b in self.present],
            "aliases": list(self.aliases), "conflicts": list(self.conflicts),
            "objects_copied": len(self.logged) + len(self.aliases),
        }  # fmt: skip


def content_key(entries: Iterable[Entry]) -> bytes:
    """What two versions in different key domains have equal when they hold the same
    files: a hash of every path, size, plain digest and mode, and of references."""
    hasher = Hasher(parallel=False)
    for e in entries:
        if isinstance(e, FileEntry):
            row: list[Any] = ["f", e.path, e.size, e.digest.raw, e.mode]
        else:
            row = ["r", e.path, e.uri, e.size, e.etag, e.version_id,
                   None if e.digest is None else e.digest.raw]
        hasher.update(encoding.pack(row))
    return hasher.digest().raw


def relog(
    src_url: str,
    dst_url: str,
    project: str,
    to_project: str,
    progress: Progress | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    src_options: Mapping[str, Any] | None = None,
    dst_options: Mapping[str, Any] | None = None,
    **backend_options: Any,
) -> RelogReport:
    """Log every version of ``project`` at ``src_url`` that ``to_project`` at ``dst_url``
    lacks, under the target's keys; then set the source's aliases in the target.

    Needs an identity that reads ``project`` and writes ``to_project``. Files pass
    through a temporary folder one version at a time (disk use: one version).
    """
    validate_project_name(project)
    validate_project_name(to_project)
    src_opts = {**backend_options, **(src_options or {})}
    dst_opts = {**backend_options, **(dst_options or {})}
    if (src_url, project) == (dst_url, to_project):
        raise InvalidInputError("re-logging a project into itself copies nothing")
    _require_project(src_url, project, src_opts)
    report = RelogReport(src_url, dst_url, project, to_project)
    with open_at(src_url, project, create=False, file_cache=False, cache_dir=cache_dir,
                 **src_opts) as src, \
            open_at(dst_url, to_project, create=True, file_cache=False, cache_dir=cache_dir,
                    **dst_opts) as dst:
        for name in src.refs.artifacts():
            try:
                _relog_artifact(src, dst, name, report, progress)
            except (InvalidInputError, ConflictError) as exc:
                report.conflicts.append(f"{name}: {exc}")
    return report


def _require_project(url: str, project: str, options: Mapping[str, Any]) -> None:
    """Refuse a source project that does not exist (opening it could create it)."""
    backend = open_store_backend(url, **options)  # a missing source store makes no folder
    try:
        if next(iter(backend.list(f"projects/{project}/")), None) is None:
            raise NotFoundError(f"project {project!r} is not in the store at {backend.url}")
    finally:
        backend.close()


def _relog_artifact(src: Project, dst: Project, name: str, report: RelogReport,
                    progress: Progress | None) -> None:
    keys: dict[bytes, int] = {}  # content key -> target number
    try:
        for record in dst.refs.versions(name):
            keys.setdefault(_key_of(dst, record), record.number)
    except NotFoundError:
        pass  # the target has no version of it yet
    numbers: dict[int, int] = {}  # source number -> target number
    for record in src.refs.versions(name):
        key = _key_of(src, record)
        found = keys.get(key)
        if found is None:
            found = _log_copy(src, dst, record, progress)
            keys[key] = found
            report.logged.append((record.ref, f"{name}:{version_label(found)}"))
        else:
            report.present.append((record.ref, f"{name}:{version_label(found)}"))
        numbers[record.number] = found
    current = dst.refs.aliases(name)
    for alias, number in sorted(src.refs.aliases(name).items()):
        target = numbers.get(number)
        if target is None or current.get(alias) == target:
            continue
        protected = src.refs.alias_history(name, alias)[-1].protected
        try:
            set_alias(dst, f"{name}:{version_label(target)}", alias,
                      protect=protected or None)
        except ConflictError as exc:  # protected in the target and pointing elsewhere
            report.conflicts.append(f"{name}:{alias}: {exc}")
            continue
        report.aliases.append(f"{name}:{alias} -> {version_label(target)}")


def _key_of(store: Project, record: VersionRecord) -> bytes:
    return content_key(iter_entries(record.digest, store.objects_for(record).read_blob))


def _log_copy(src: Project, dst: Project, record: VersionRecord,
              progress: Progress | None) -> int:
    """Log one source version into the target; returns the target's number."""
    with materialized(src, record) as artifact:
        version = log_version(dst, artifact, progress=progress)
    return version.number


@contextmanager
def materialized(src: Project, record: VersionRecord) -> Iterator[Artifact]:
    """An :class:`Artifact` of ``record``'s type, description, metadata and entries,
    its files read from ``src`` (each verified against its digest) into a temporary
    folder that lives until the block ends (disk use: one version)."""
    objects = src.objects_for(record)
    artifact = Artifact(record.artifact, record.type, record.description,
                        dict(record.metadata))
    with tempfile.TemporaryDirectory(prefix="artifactstore-relog-") as scratch:
        root = Path(scratch)
        for entry in iter_entries(record.digest, objects.read_blob):
            if isinstance(entry, FileEntry):
                materialize(objects, [entry], root)  # verified against its digest
                path = root / entry.path
                path.chmod(entry.mode | 0o400)  # logging records the mode it reads
                artifact.add_file(path, entry.path)
            else:
                artifact.add_reference(entry.uri, entry.path, checksum=entry.digest is not None)
        yield artifact
