"""A foreign file with its original digest -> staged, checked; and what every importer
shares: finding what an earlier import wrote, and the report.

Vocabulary: a :class:`ForeignFile` is one file of a source (where its bytes are, its path
in the version, and the digest its tool recorded, if any). :func:`staged` copies every
file of a version into a scratch folder, hashing the bytes as they are copied with the
tool's algorithm (``md5``; ``sha256``; ``git-sha1``, git's SHA-1 of
``blob <size>\\0<bytes>``), and yields an :class:`Artifact` of the copies. A mismatch is
an IntegrityError naming the file, raised before anything is written: the bytes that
are logged are the bytes that were checked, so a file changed between the check and
the log cannot slip in.

**Source key**: each imported version's metadata and run's config carry a ``_source``
mapping with ``tool`` and ``id`` (what the tool calls that output or run, e.g. a DVC
path and MD5, an MLflow run id); an import that finds a live version or run with the
same key writes none (:func:`imported_version`, :func:`imported_run`).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifactstore.core.errors import IntegrityError, InvalidInputError, NotFoundError
from artifactstore.local.catalog import RunInfo
from artifactstore.objects.store import Progress
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.ingest import log_version
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion, versions_of
from artifactstore.runs.queries import find_runs
from artifactstore.runs.run import Run

__all__ = ["ALGORITHMS", "SOURCE_KEY", "ForeignFile", "ForeignReport", "check", "file_digest",
           "imported_run", "imported_version", "log_staged", "staged"]

SOURCE_KEY = "_source"
"""The metadata (version) and config (run) key holding what the source called it."""

ALGORITHMS = ("md5", "sha256", "git-sha1")
_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class ForeignFile:
    """One file of a source: its path in the version, where its bytes are, and the
    digest its tool recorded (hex, of ``algorithm``), None when the tool keeps none."""

    path: str
    source: Path
    algorithm: str | None = None
    digest: str | None = None


@dataclass
class ForeignReport:
    """What an import wrote, and what it found already imported."""

    kind: str
    source: str
    #: {"ref", "source" (the source's name for it), "created"} per version met
    versions: list[dict[str, Any]] = field(default_factory=list)
    #: {"run_id", "source", "created", "inputs", "outputs"} per run met
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: things of the source that were not imported, and why
    notes: list[str] = field(default_factory=list)

    @property
    def created_versions(self) -> int:
        return sum(1 for v in self.versions if v["created"])

    @property
    def created_runs(self) -> int:
        return sum(1 for r in self.runs if r["created"])

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "versions": list(self.versions),
                "runs": list(self.runs), "notes": list(self.notes),
                "created_versions": self.created_versions, "created_runs": self.created_runs}


def _hasher(algorithm: str, size: int) -> Any:
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)  # DVC's choice; checked, not trusted
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "git-sha1":
        h = hashlib.sha1(usedforsecurity=False)  # git's object id
        h.update(b"blob %d\0" % size)
        return h
    raise InvalidInputError(f"unknown digest algorithm {algorithm!r}: one of {ALGORITHMS}")


def file_digest(path: Path, algorithm: str) -> str:
    """The hex ``algorithm`` digest of the file at ``path``."""
    with _open(path) as f:
        h = _hasher(algorithm, path.stat().st_size)
        while block := f.read(_BLOCK):
            h.update(block)
    return str(h.hexdigest())


def check(file: ForeignFile, tool: str) -> None:
    """Refuse ``file`` (IntegrityError naming it) when its bytes do not have the digest
    ``tool`` recorded."""
    if file.algorithm is None:
        return
    got = file_digest(file.source, file.algorithm)
    if got != (file.digest or "").lower():
        raise _mismatch(file, got, tool)


def _mismatch(file: ForeignFile, got: str, tool: str) -> IntegrityError:
    return IntegrityError(
        f"{file.source} ({file.path}): its {file.algorithm} is {got} but {tool} recorded "
        f"{file.digest}: the source was changed or damaged; nothing of it was imported"
    )


def _open(path: Path) -> Any:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file in the source (is its cache complete?)"
                            ) from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read it ({exc.strerror})") from None


def _copy_checked(file: ForeignFile, target: Path, tool: str,
                  progress: Progress | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _open(file.source) as src, target.open("wb") as dst:
        h = None if file.algorithm is None else _hasher(file.algorithm,
                                                         file.source.stat().st_size)
        while block := src.read(_BLOCK):
            if h is not None:
                h.update(block)
            dst.write(block)
            if progress is not None:
                progress(len(block))
    if h is not None and h.hexdigest() != (file.digest or "").lower():
        raise _mismatch(file, h.hexdigest(), tool)


@contextmanager
def staged(files: Iterable[ForeignFile], artifact: Artifact, *, tool: str,
           progress: Progress | None = None) -> Iterator[Artifact]:
    """``artifact`` with every file of ``files`` copied and checked into a scratch
    folder that lives until the block ends (disk use: one version)."""
    with tempfile.TemporaryDirectory(prefix="artifactstore-import-") as scratch:
        root = Path(scratch)
        for i, file in enumerate(files):
            copy = root / str(i)  # flat: a version path may be any depth
            _copy_checked(file, copy, tool, progress)
            # Why not the source's whole mode: DVC's cache and the hub's blobs are
            # read-only by design, which says nothing of the file; executability does.
            if file.source.stat().st_mode & 0o111:
                copy.chmod(copy.stat().st_mode | 0o111)
            artifact.add_file(copy, file.path)
        yield artifact


def log_staged(project: Project, artifact: Artifact, run: Run | None,
               progress: Progress | None = None) -> ArtifactVersion:
    """Log a staged artifact, as an output of ``run`` when given."""
    if run is not None:
        return run.log_artifact(artifact, progress=progress)
    return log_version(project, artifact, progress=progress)


def source_id(mapping: Mapping[str, Any] | None) -> tuple[Any, Any] | None:
    source = (mapping or {}).get(SOURCE_KEY)
    if not isinstance(source, Mapping):
        return None
    return source.get("tool"), source.get("id")


def imported_version(project: Project, name: str, tool: str, ident: str
                     ) -> ArtifactVersion | None:
    """The live version of ``name`` an earlier import made from ``ident``, if any."""
    try:
        versions = versions_of(project, name)
    except NotFoundError:
        return None
    for version in versions:
        if source_id(version.metadata) == (tool, ident):
            return version
    return None


def imported_runs(project: Project, tool: str) -> dict[str, RunInfo]:
    """Source id -> the run an earlier import of ``tool`` made and finished."""
    found: dict[str, RunInfo] = {}
    for run in find_runs(project, sync=True):
        key = source_id(run.config)
        # Why not a failed import: it wrote no outputs of its own, so it is done again.
        if key is not None and key[0] == tool and not (run.error or "").startswith(FAILED):
            found[str(key[1])] = run
    return found


def imported_run(project: Project, tool: str, ident: str) -> RunInfo | None:
    return imported_runs(project, tool).get(ident)


FAILED = "import-from failed: "
"""How the error of an imported run that failed while importing begins."""
