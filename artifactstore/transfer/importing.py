"""Importing an export (docs/export-format.md): a new version and a run standing for its maker.

Vocabulary:

- the **original** version and run are those the export describes, in the
  store it came from; the **imported** version is the new version logged here;
- the **restored run** is a run recorded in this store for the original run:
  its name, job type, config, summary and code state, its tags plus
  ``imported_from=<original run id>``, its inputs and the imported version as
  its output. Its id, start time, environment and writer are new;
- an original input is **linked** when this store holds a version with the
  same content digest (preferring one of the same name), else one with the same
  ``name:vN`` (``matched_by`` says which); otherwise it is **missing**: the run
  records its name, number and digest, so lineage shows it as a missing version,
  except an input of the artifact being imported (its numbers here are new, so
  the edge could point at the imported version itself).

Order: read and verify the whole export (:mod:`artifactstore.transfer.exportreader`),
check what can be checked here (names, type, aliases, references), and only then
write: the run's start record, its input edges, the version, the end record. A
damaged export writes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import (
    ArtifactStoreError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.lineage.queries import lineage
from artifactstore.model.exports import ExportedInput, ExportedReference, ExportManifest
from artifactstore.model.names import validate_alias, validate_artifact_name
from artifactstore.objects.store import Progress
from artifactstore.repository.aliases import set_alias
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.ingest import log_version
from artifactstore.repository.project import Project
from artifactstore.repository.references import describe_reference
from artifactstore.repository.version import find_version
from artifactstore.runs.codestate import CodeState
from artifactstore.runs.run import Run
from artifactstore.transfer.exportreader import read_export

if TYPE_CHECKING:
    import networkx as nx

    from artifactstore.repository.version import ArtifactVersion

__all__ = ["IMPORTED_FROM", "ImportReport", "ImportedInput", "import_export"]

IMPORTED_FROM = "imported_from"
"""Tag prefix of a restored run: ``imported_from=<original run id>``."""


@dataclass(frozen=True, slots=True)
class ImportedInput:
    """An input of the original run and what stands for it in this store."""

    ref: str  # as the original store named it, name:vN
    digest: str | None  # its content digest there
    linked: str | None  # the version of this store recorded as the input, None when missing
    matched_by: Literal["digest", "name"] | None
    recorded: bool  # whether the restored run records it (as a missing version if not linked)

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "digest": self.digest, "linked": self.linked,
                "matched_by": self.matched_by, "missing": self.linked is None,
                "recorded": self.recorded}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did."""

    version: ArtifactVersion
    source_ref: str  # the original version, name:vN
    created: bool  # False when the content equalled the latest version here
    same_digest: bool  # the imported version's content digest equals the original's
    run_id: str | None  # the restored run, None when nothing was written for one
    original_run_id: str | None
    inputs: tuple[ImportedInput, ...]
    aliases: tuple[str, ...]  # set here (only with ``aliases=True``)
    skipped_references: tuple[str, ...]  # paths left out with ``references=False``

    def as_dict(self) -> dict[str, Any]:
        v = self.version
        return {
            "ref": v.ref, "name": v.name, "version": v.version, "type": v.type,
            "digest": v.digest, "size": v.size, "created": self.created,
            "source_ref": self.source_ref, "same_digest": self.same_digest,
            "run_id": self.run_id, "original_run_id": self.original_run_id,
            "inputs": [i.as_dict() for i in self.inputs], "aliases": list(self.aliases),
            "skipped_references": list(self.skipped_references),
        }  # fmt: skip


def import_export(
    project: Project,
    source: str | os.PathLike[str],
    name: str | None = None,
    *,
    aliases: bool = False,
    references: bool = True,
    progress: Progress | None = None,
    scratch_dir: str | os.PathLike[str] | None = None,
) -> ImportReport:
    """Import the export at ``source`` (a folder or tar file) into ``project``.

    ``name`` imports under another artifact name; ``aliases`` sets the
    aliases the export lists; ``references=False`` leaves reference entries
    out instead of checking them against their sources. ``progress`` counts
    the bytes read from the export, then those logged.
    """
    with read_export(source, scratch_dir=scratch_dir, progress=progress) as export:
        m = export.manifest
        artifact = Artifact(validate_artifact_name(name or m.name), m.type, m.description,
                            m.metadata)
        wanted = tuple(validate_alias(a) for a in m.aliases) if aliases else ()
        encoding.pack(artifact.metadata)  # refused here, not after the run has started
        for f in m.files:
            artifact.add_file(export.files[f.path], f.path)
        skipped = tuple(r.path for r in m.references) if not references else ()
        for r in m.references if references else ():
            _check_reference(project, r)
            artifact.add_reference(r.uri, r.path, checksum=r.blake3 is not None)
        # A write entry point: creates a pending store or project (so the reads below
        # see it) or refuses, after the export was checked and before anything is written.
        project.ensure_writable()
        latest = _latest(project, artifact.name)
        if latest is not None and latest.type != m.type:
            raise InvalidInputError(
                f"artifact {artifact.name!r} here has type {latest.type!r}, the export "
                f"{m.type!r}: import it under another name with --name"
            )
        if latest is not None and latest.digest == m.digest:
            # Already here (imported before): write no second run for it.
            for alias in wanted:
                set_alias(project, latest.ref, alias)
            return ImportReport(latest, m.ref, False, True, None, m.run_id, (), wanted, skipped)
        inputs = _match_inputs(project, m, artifact.name)
        run = _restored_run(project, m)
        version = _log(project, artifact, wanted, run, m, inputs, progress)
    return ImportReport(version, m.ref, version.created, version.digest == m.digest,
                        None if run is None else run.id, m.run_id, inputs, wanted, skipped)


def _latest(project: Project, name: str) -> ArtifactVersion | None:
    try:
        return find_version(project, name)
    except NotFoundError:
        return None


def _check_reference(project: Project, entry: ExportedReference) -> None:
    """The source must still hold what the original version recorded."""
    hint = "import with --skip-references to leave references out"
    try:
        now = describe_reference(entry.path, entry.uri, checksum=entry.blake3 is not None,
                                 options=project.backend_options)
    except ArtifactStoreError as exc:
        raise type(exc)(f"reference {entry.path} ({entry.uri}): {exc}; {hint}") from None
    changed = [what for what, old, new in (
        ("size", entry.size, now.size), ("etag", entry.etag, now.etag),
        ("version id", entry.version_id, now.version_id),
        ("BLAKE3", entry.blake3, None if now.digest is None else now.digest.hex),
    ) if old is not None and old != new]  # fmt: skip
    if changed:
        raise IntegrityError(
            f"reference {entry.path} ({entry.uri}) changed since it was exported "
            f"({', '.join(changed)} differ); {hint}"
        )


def _match_inputs(project: Project, m: ExportManifest, target: str) -> tuple[ImportedInput, ...]:
    if m.run is None or not m.run.inputs:
        return ()
    graph = lineage(project, sync=True)
    return tuple(_match(graph, i, target) for i in m.run.inputs)


def _match(graph: nx.DiGraph, original: ExportedInput, target: str) -> ImportedInput:
    versions = [(str(n), d) for n, d in graph.nodes(data=True)
                if d["kind"] == "version" and not d["missing"] and not d.get("deleted")]
    if original.digest is not None:
        same = sorted((n != original.ref, d["artifact"] != original.artifact, n)
                      for n, d in versions if d["digest"] == original.digest)
        if same:
            return ImportedInput(original.ref, original.digest, same[0][2], "digest", True)
    if any(n == original.ref for n, _ in versions):
        return ImportedInput(original.ref, original.digest, original.ref, "name", True)
    # Why not for the imported artifact: its numbers here are new, so "name:vN" may
    # soon be the imported version itself, and the edge would make a loop.
    recorded = original.digest is not None and original.artifact != target
    return ImportedInput(original.ref, original.digest, None, None, recorded)


def _restored_run(project: Project, m: ExportManifest) -> Run | None:
    if m.run_id is None:
        return None
    tag = f"{IMPORTED_FROM}={m.run_id}"
    original = m.run
    if original is None:  # the source store could not read it: keep the link only
        return Run(project, tags=[tag], capture_code=False)
    code: CodeState | bool = False
    if original.code is not None:
        code = CodeState.from_record(original.code)
    return Run(project, name=original.name, job_type=original.job_type, config=original.config,
               tags=[*original.tags, tag], capture_code=code)


def _log(project: Project, artifact: Artifact, aliases: tuple[str, ...], run: Run | None,
         m: ExportManifest, inputs: tuple[ImportedInput, ...],
         progress: Progress | None) -> ArtifactVersion:
    if run is None:
        return log_version(project, artifact, aliases=aliases, progress=progress)
    try:
        for i, original in zip(inputs, m.run.inputs if m.run else (), strict=True):
            if i.linked is not None:
                run.record_use(find_version(project, i.linked), original.ref)
            elif i.recorded and original.digest is not None:
                run.record_use_of(original.artifact, original.number,
                                  Digest.from_hex(original.digest), original.ref)
        version = run.log_artifact(artifact, aliases=aliases, progress=progress)
    except BaseException as exc:
        run.finish(error=exc)
        raise
    if m.run is not None:
        run.summary.clear()
        run.summary.update(m.run.summary)
    status = "finished" if m.run is None else m.run.status
    if status in ("failed", "crashed"):
        error = m.run.error if m.run is not None else None
        run.finish(error=error or f"the original run {m.run_id} {status}")
    else:
        run.finish()
    return version
