"""Audits: where a version came from, who moved its aliases, and whether its bytes hold.

Vocabulary:

- **provenance**: the version's upstream lineage as a tree: the run(s) that
  produced it, the versions those runs used, the runs that produced those, and
  so on. A node reached twice is shown once and referred to afterwards.
- **flag**: a finding that weakens reproducibility or integrity: a crashed,
  failed or still-running run, a dirty working tree or no code state, an
  ancestor whose record is gone (``missing-ancestor``, an error: nobody deleted it),
  a missing or corrupt blob. A **deleted or purged** ancestor or run
  (``deleted-ancestor``, ``purged-ancestor``, ``deleted-run``) is a warning that
  names when, by whom and why: the history stays answerable after a takedown, and
  release gates (``--strict``) refuse it. Auditing a deleted version itself works
  too (``name:vN``): it is flagged the same way, and a purged one's bytes are not
  checked (their absence is the purge's proof, not damage).
- **integrity check**: every blob reachable from the version (manifest, tree
  nodes, chunk lists, chunks) must be in the index; chunks are read and
  re-hashed, all of them or a deterministic sample (``sample`` = fraction: a
  chunk is read when the first 8 bytes of its id, as an integer, fall in the
  lowest ``sample`` share of the range, so repeated audits check the same ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from artifactstore.core.digest import Digest
from artifactstore.core.errors import (
    ArtifactStoreError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.lineage.graph import describe_state, run_node
from artifactstore.lineage.queries import lineage_node, upstream
from artifactstore.local.catalog import RunInfo
from artifactstore.model.names import version_label
from artifactstore.model.tree import FileEntry, ReferenceEntry, iter_entries
from artifactstore.objects.store import ObjectStore
from artifactstore.records.aliases import AliasEvent
from artifactstore.records.codec import Signature
from artifactstore.records.projectcheck import check_project
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion
from artifactstore.runs.queries import find_runs

if TYPE_CHECKING:
    import networkx as nx


__all__ = ["AuditFlag", "AuditReport", "Integrity", "audit"]

Severity = Literal["error", "warning"]
_RANGE: Final = 1 << 64
_BATCH: Final = 256


@dataclass(frozen=True, slots=True)
class AuditFlag:
    severity: Severity
    code: str  # stable, for scripts: run-crashed, run-failed, dirty-tree, missing-blob, …
    subject: str  # the version ref, run node or blob the finding is about
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "subject": self.subject,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class Integrity:
    blobs: int  # reachable blobs (manifest, nodes, chunk lists, chunks)
    chunks: int
    chunks_read: int  # chunks re-hashed (all, or the sample)
    bytes_read: int
    references: int  # reference entries: outside the store, not checked
    sample: float | None
    problems: tuple[tuple[str, str, str], ...]  # (blob id, path or "", what)

    def as_dict(self) -> dict[str, Any]:
        return {"blobs": self.blobs, "chunks": self.chunks, "chunks_read": self.chunks_read,
                "bytes_read": self.bytes_read, "references": self.references,
                "sample": self.sample,
                "problems": [{"blob": b, "path": p, "problem": w} for b, p, w in self.problems]}


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of :func:`audit`; render with ``to_text``, ``to_markdown``, ``to_json``."""

    ref: str
    version: dict[str, Any] = field(hash=False)
    graph: nx.DiGraph = field(hash=False, compare=False)
    runs: dict[str, RunInfo] = field(hash=False)
    alias_history: dict[str, list[AliasEvent]] = field(hash=False)
    integrity: Integrity
    flags: tuple[AuditFlag, ...]

    @property
    def ok(self) -> bool:
        return not self.flags

    def provenance(self) -> dict[str, Any]:
        """The upstream tree as nested dicts (shared ancestors appear once, then by name)."""
        shown: set[str] = set()

        def visit(node: str) -> dict[str, Any]:
            data = dict(self.graph.nodes[node])
            if node in shown:
                return {"node": node, "see_above": True}
            shown.add(node)
            if data["kind"] == "run":
                run = self.runs.get(data["run_id"])
                item: dict[str, Any] = {"node": node, "kind": "run",
                                        **(run.as_dict() if run else {})}
                item.pop("env", None)
                item.pop("outputs", None)
                item.pop("inputs", None)
            else:
                item = {"node": node, "kind": "version", "digest": data.get("digest"),
                        "aliases": data.get("aliases", []), "created_at": data.get("created_at"),
                        "missing": data.get("missing", False)}
            item.update(state=data.get("state", "live"), state_at=data.get("state_at"),
                        state_by=data.get("state_by"), state_reason=data.get("state_reason"))
            parents = sorted(self.graph.predecessors(node))
            if parents:
                item["from"] = [visit(p) for p in parents]
            return item

        return visit(self.ref)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "ok": self.ok, "version": self.version,
            "provenance": self.provenance(),
            "alias_history": {alias: [_event(e) for e in events]
                              for alias, events in self.alias_history.items()},
            "integrity": self.integrity.as_dict(),
            "flags": [f.as_dict() for f in self.flags],
        }  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True, default=_jsonable)

    def to_text(self) -> str:
        return "\n".join(self._lines(markdown=False)) + "\n"

    def to_markdown(self) -> str:
        return "\n".join(self._lines(markdown=True)) + "\n"

    def _lines(self, *, markdown: bool) -> list[str]:
        v = self.version
        head = f"Audit of {self.ref}: " + ("OK" if self.ok else f"{len(self.flags)} finding(s)")
        lines = [f"# {head}" if markdown else head, ""]
        lines.append(f"- digest {v['digest']}, {v['files']} files, {v['size']} bytes, "
                     f"type {v['type']}")
        lines.append(f"- created {v['created_at']} by {v['created_by']}; "
                     f"aliases: {', '.join(v['aliases']) or '-'}")
        lines.append(f"- signed by {v.get('signed_by') or 'nobody (unsigned)'}")
        if v.get("state", "live") != "live":
            lines.append(f"- {describe_state(self.ref, v)}")
        lines += ["", "## Findings" if markdown else "Findings:"]
        lines += [f"- {f.severity.upper()} {f.code} {f.subject}: {f.message}"
                  for f in self.flags] or ["- none"]
        lines += ["", "## Provenance" if markdown else "Provenance:"]
        if markdown:
            lines.append("```")
        lines += self._tree(self.provenance(), "")
        if markdown:
            lines.append("```")
        lines += ["", "## Alias history" if markdown else "Alias history:"]
        if not self.alias_history:
            lines.append("- none")
        for alias, events in sorted(self.alias_history.items()):
            for e in events:
                target = "removed" if e.target is None else version_label(e.target)
                before = "-" if e.previous is None else version_label(e.previous)
                extra = (" (forced)" if e.forced else "") + (" [protected]" if e.protected else "")
                signer = v.get("alias_signers", {}).get(f"{alias}#{e.seq}") or "unsigned"
                lines.append(f"- {alias} #{e.seq}: {before} -> {target} at {e.at} "
                             f"by {e.by}{extra}, signed by {signer}")
        i = self.integrity
        lines += ["", "## Integrity" if markdown else "Integrity:"]
        scope = "all chunks" if i.sample is None else f"sample {i.sample:.0%}"
        lines.append(f"- {i.blobs} blobs reachable, {i.chunks_read} of {i.chunks} chunks "
                     f"re-hashed ({scope}, {i.bytes_read} bytes), {len(i.problems)} problem(s)")
        lines += [f"- {w}: blob {b} {p}".rstrip() for b, p, w in i.problems]
        return lines

    def _tree(self, item: dict[str, Any], indent: str) -> list[str]:
        if item.get("see_above"):
            line = f"{item['node']} (see above)"
        elif item["kind"] == "run":
            code = item.get("code") or {}
            commit = (code.get("commit") or "no git")[:12]
            dirty = " dirty" if code.get("dirty") else ""
            line = (f"run {item['run_id']} {item.get('name') or item.get('job_type') or ''} "
                    f"[{item['status']}] {item['started_at']} -> {item.get('ended_at') or '?'} "
                    f"code {commit}{dirty} config {_short(item.get('config'))} "
                    f"summary {_short(item.get('summary'))}")
            if item.get("error"):
                line += f" error {item['error']!r}"
        else:
            aliases = ",".join(item.get("aliases") or [])
            digest = (item.get("digest") or "")[:16]
            line = f"{item['node']} {digest} {aliases}".rstrip()
        state = item.get("state", "live")
        if state != "live":
            line += f" {state.upper()}"
            if item.get("state_at"):
                line += (f" {str(item['state_at'])[:19]} by {item.get('state_by')}"
                         f" ({item.get('state_reason') or 'no reason given'})")
        lines = [indent + line]
        for child in item.get("from", []):
            lines += self._tree(child, indent + "  ")
        return lines


def audit(project: Project, ref: str, *, sample: float | None = None,
          sync: bool | None = None) -> AuditReport:
    """Audit version ``ref`` of ``project`` (see the module docstring); ``sync=True``
    first lists the whole project, so that deleted records are seen."""
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int | float)
                               or not 0 < sample <= 1):
        raise InvalidInputError(f"sample must be a fraction in (0, 1], got {sample!r:.40}")
    if ref.startswith("run:"):
        raise InvalidInputError(f"audit takes a version, not a run ({ref!r:.60}); use "
                                "'artifactstore lineage' or 'artifactstore runs show'")
    if sync:
        # Why a full listing, not the journal's window (design §12.8): an audit must see a
        # record that vanished from the store, which no journal entry announces.
        project.catalog.sync(full=True)
    node = lineage_node(project, ref, sync=False if sync else sync)
    graph = upstream(project, node, sync=False)
    attrs = graph.nodes[node]
    record = project.refs.version(attrs["artifact"], attrs["number"], include_deleted=True)
    version = ArtifactVersion(project, record)  # deleted ones too: the audit answers for them
    runs = {r.run_id: r for r in find_runs(project, sync=False, include_deleted=True)
            if run_node(r.run_id) in graph}
    flags: list[AuditFlag] = []
    for name, data in sorted(graph.nodes(data=True)):
        state = data.get("state", "live")
        if data["kind"] == "version" and state == "missing":
            flags.append(AuditFlag("error", "missing-ancestor", name,
                                   "an ancestor version's record is gone from the store"))
        elif state != "live":
            # Deleted on purpose, by a recorded event: a finding, not damage.
            code = "deleted-run" if data["kind"] == "run" else f"{state}-ancestor"
            flags.append(AuditFlag("warning", code, name, describe_state(name, data) or ""))
    for run in sorted(runs.values(), key=lambda r: r.run_id):
        flags += _run_flags(run)
    history = {alias: events for alias, events in _alias_histories(project, record.artifact).items()
               if any(e.target == record.number for e in events)}
    # Forged, planted, contradictory or missing project records (projectcheck.py): who
    # signed what below means nothing while the membership itself cannot be trusted.
    for finding in check_project(project.objects.backend, project.name):
        flags.append(AuditFlag("error", "project-record", finding.key,
                               f"{finding.problem}; {finding.affects}"))
    try:
        signers, members = project.membership()
    except IntegrityError:
        signers, members = {}, []  # flagged just above
    current = {m.ed25519 for m in members} if signers else None
    signed_by: dict[str, str | None] = {}
    checked: set[str] = set()
    for name, data in sorted(graph.nodes(data=True)):
        if data["kind"] != "version" or data.get("missing"):
            continue
        signature = project.refs.version(data["artifact"], data["number"],
                                       include_deleted=True).signature
        signed_by[name] = _signer_name(signature, signers)
        flags += _signature_flags(name, signature, signers, current)
    # Who deleted or purged an ancestor is only as true as the event's signature: a
    # bucket writer could plant a tombstone that rewrites the record of a takedown.
    tombstones = project.catalog.lifecycle_state()
    for _, data in sorted(graph.nodes(data=True)):
        if not data.get("deleted"):
            continue
        tombstone = (tombstones.deleted_runs.get(data["run_id"]) if data["kind"] == "run"
                     else tombstones.tombstone(data["artifact"], data["number"]))
        if tombstone is None or f"lifecycle#{tombstone.seq}" in checked:
            continue
        subject = f"lifecycle#{tombstone.seq}"
        checked.add(subject)
        flags += _signature_flags(subject, project.refs.lifecycle.read(tombstone.seq).signature,
                                  signers, current)
    # The catalog keeps no signatures: read each event (cached) from the store.
    history = {alias: [project.refs.alias_event(record.artifact, alias, e.seq) for e in events]
               for alias, events in history.items()}
    alias_signers: dict[tuple[str, int], str | None] = {}
    for alias, events in sorted(history.items()):
        for event in events:
            alias_signers[(alias, event.seq)] = _signer_name(event.signature, signers)
            flags += _signature_flags(f"{record.artifact}:{alias}#{event.seq}",
                                      event.signature, signers, current)
    if attrs.get("state") == "purged":  # wiped on purpose: nothing left to re-hash
        integrity = Integrity(0, 0, 0, 0, 0, sample, ())
    else:
        integrity = _check_integrity(project.objects_for(record), record.manifest,
                                     record.digest, sample)
    for blob, path, what in integrity.problems:
        code = "missing-blob" if what.startswith("missing") else "corrupt-blob"
        flags.append(AuditFlag("error", code, blob, f"{what} {path}".rstrip()))
    facts = {"ref": node, "digest": version.digest, "type": version.type,
             "size": version.size, "files": record.files, "created_at": version.created_at,
             "created_by": version.created_by, "aliases": list(attrs.get("aliases", [])),
             "run": record.run, "signed_by": signed_by.get(node),
             "state": attrs.get("state", "live"), "state_at": attrs.get("state_at"),
             "state_by": attrs.get("state_by"), "state_reason": attrs.get("state_reason")}
    facts["alias_signers"] = {f"{a}#{s}": who for (a, s), who in alias_signers.items()}
    return AuditReport(node, facts, graph, runs, history, integrity, tuple(flags))


def _signer_name(signature: Signature, signers: dict[bytes, str]) -> str | None:
    if signature.signer is None:
        return None
    return signers.get(signature.signer, f"unknown key {signature.signer.hex()[:16]}")


def _signature_flags(subject: str, signature: Signature, signers: dict[bytes, str],
                     current: set[bytes] | None = None) -> list[AuditFlag]:
    """A bad signature is an error; a signer who never was a member too; a missing
    signature only matters in a project with members (every writer signs there)."""
    if signature.state == "invalid":
        return [AuditFlag("error", "bad-signature", subject,
                          "the record's signature does not verify: it was altered or forged")]
    if signature.state == "unsigned":
        if not signers:
            return []
        return [AuditFlag("warning", "unsigned", subject, "the record is not signed")]
    if signers and signature.signer not in signers:
        return [AuditFlag("error", "signer-not-member", subject,
                          f"signed by {_signer_name(signature, signers)}, who was never a "
                          "member of the project")]
    if current is not None and signature.signer not in current:
        return [AuditFlag("warning", "signer-former-member", subject,
                          f"signed by {_signer_name(signature, signers)}, who is no longer a "
                          "member (written before the removal, or with an old key)")]
    return []


def _run_flags(run: RunInfo) -> list[AuditFlag]:
    subject = run_node(run.run_id)
    found = []
    if run.status == "crashed":
        found.append(AuditFlag("error", "run-crashed", subject,
                               "the run stopped without finishing (heartbeat lost)"))
    elif run.status == "failed":
        found.append(AuditFlag("error", "run-failed", subject, f"the run failed: {run.error}"))
    elif run.status == "running":
        found.append(AuditFlag("warning", "run-running", subject, "the run has not finished"))
    if run.code is None or run.code.get("commit") is None:
        found.append(AuditFlag("warning", "no-code-state", subject,
                               "no git commit was recorded for the run's code"))
    elif run.code.get("dirty"):
        found.append(AuditFlag("warning", "dirty-tree", subject,
                               f"the working tree had uncommitted changes on top of "
                               f"{str(run.code.get('commit'))[:12]}"))
    return found


def _alias_histories(project: Project, artifact: str) -> dict[str, list[AliasEvent]]:
    histories: dict[str, list[AliasEvent]] = {}
    for event in project.catalog.alias_events(artifact):
        histories.setdefault(event.alias, []).append(event)
    return histories


def _sampled(blob: Digest, sample: float | None) -> bool:
    return sample is None or int.from_bytes(blob.raw[:8], "little") < sample * _RANGE


def _check_integrity(objects: ObjectStore, manifest: Digest, root: Digest,
                     sample: float | None) -> Integrity:
    problems: list[tuple[str, str, str]] = []
    blobs = chunks = read = nbytes = refs = 0
    metadata_ids: list[Digest] = [manifest]
    to_read: list[tuple[Digest, str]] = []

    def note_node(blob: Digest) -> bytes:
        metadata_ids.append(blob)
        return objects.read_blob(blob)  # verified: a damaged node raises IntegrityError

    try:
        objects.read_blob(manifest)
        entries = list(iter_entries(root, note_node))
    except NotFoundError as exc:
        return Integrity(len(metadata_ids), 0, 0, 0, 0, sample,
                         ((metadata_ids[-1].hex, "", f"missing tree node: {exc}"),))
    except ArtifactStoreError as exc:
        return Integrity(len(metadata_ids), 0, 0, 0, 0, sample,
                         ((metadata_ids[-1].hex, "", f"corrupt tree node: {exc}"),))
    blobs = len(metadata_ids)
    for entry in entries:
        if isinstance(entry, ReferenceEntry):
            refs += 1
            continue
        assert isinstance(entry, FileEntry)
        for chunk in entry.chunks:
            chunks += 1
            blobs += 1
            if not objects.has_blob(chunk.id):
                problems.append((chunk.id.hex, entry.path, "missing chunk"))
            elif _sampled(chunk.id, sample):
                to_read.append((chunk.id, entry.path))
    for start in range(0, len(to_read), _BATCH):
        for blob, path in to_read[start:start + _BATCH]:
            try:
                nbytes += len(objects.read_blob(blob))
                read += 1
            except NotFoundError as exc:  # indexed, but its pack is gone
                problems.append((blob.hex, path, f"missing chunk: {exc}"))
            except ArtifactStoreError as exc:
                problems.append((blob.hex, path, f"corrupt chunk: {exc}"))
    return Integrity(blobs, chunks, read, nbytes, refs, sample, tuple(problems))


def _event(e: AliasEvent) -> dict[str, Any]:
    return {"seq": e.seq, "target": e.target, "previous": e.previous, "at": e.at, "by": e.by,
            "forced": e.forced, "protected": e.protected}


def _short(value: object, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=_jsonable)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, AliasEvent):
        return _event(value)
    return str(value)
